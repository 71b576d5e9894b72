//! What a run deploys, fixed when it starts: the revision and the SHA-256 of every
//! configuration file the pipeline carries (its own file and each stage's). Every stage
//! deploys exactly that; a stage whose files changed underneath the run is refused.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Pipeline;

/// The revision and configuration digests of one run. Files are keyed by their path relative
/// to the pipeline's directory (the pipeline's own file by its name), so that a run pinned on
/// one runner checks on another whose checkout sits elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub revision: String,
    /// Relative path → lower-case hex SHA-256 of the file's bytes.
    pub files: BTreeMap<PathBuf, String>,
}

/// A file is not what the run pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {change} since the run started; start a new run to deploy it", file.display())]
pub struct Changed {
    /// The file as a path from the working directory.
    pub file: PathBuf,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Change {
    #[error("changed (sha256 {pinned} then, {now} now)")]
    Modified { pinned: String, now: String },
    #[error("cannot be read ({0})")]
    Unreadable(String),
    #[error("is new to the pipeline")]
    Added,
    #[error("left the pipeline")]
    Removed,
}

impl Pin {
    /// Pins `revision` and the pipeline's files as they are now.
    pub fn compute(pipeline: &Pipeline, revision: &str) -> Result<Pin, Changed> {
        let mut files = BTreeMap::new();
        for rel in carried(pipeline) {
            let path = pipeline.dir().join(&rel);
            let digest = digest_file(&path).map_err(|e| Changed {
                file: path.clone(),
                change: Change::Unreadable(e.to_string()),
            })?;
            files.insert(rel, digest);
        }
        Ok(Pin {
            revision: revision.to_string(),
            files,
        })
    }

    /// Whether `pipeline`'s files are still the ones pinned: the first that is not, in path
    /// order.
    pub fn check(&self, pipeline: &Pipeline) -> Result<(), Changed> {
        let now = carried(pipeline);
        for rel in &now {
            let path = pipeline.dir().join(rel);
            let Some(pinned) = self.files.get(rel) else {
                return Err(Changed {
                    file: path,
                    change: Change::Added,
                });
            };
            let digest = digest_file(&path).map_err(|e| Changed {
                file: path.clone(),
                change: Change::Unreadable(e.to_string()),
            })?;
            if &digest != pinned {
                return Err(Changed {
                    file: path,
                    change: Change::Modified {
                        pinned: pinned.clone(),
                        now: digest,
                    },
                });
            }
        }
        if let Some(gone) = self.files.keys().find(|f| !now.contains(f)) {
            return Err(Changed {
                file: pipeline.dir().join(gone),
                change: Change::Removed,
            });
        }
        Ok(())
    }
}

/// The files a pipeline carries, relative to its directory, sorted and once each.
fn carried(pipeline: &Pipeline) -> Vec<PathBuf> {
    let own = pipeline
        .file
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| pipeline.file.clone());
    let mut files: Vec<PathBuf> = std::iter::once(own)
        .chain(pipeline.stages.iter().map(|s| s.config.clone()))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Lower-case hex SHA-256 of a file's bytes.
pub fn digest_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Pipeline) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("staging.toml"),
            "service = \"photos\"\nenvironment = \"staging\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("prod.toml"),
            "service = \"photos\"\nenvironment = \"prod\"\n",
        )
        .unwrap();
        let text = "service = \"photos\"\n[pipeline]\n\
            [[pipeline.stages]]\nname = \"staging\"\nconfig = \"staging.toml\"\nkind = \"stack\"\n\
            [[pipeline.stages]]\nname = \"canary\"\nconfig = \"prod.toml\"\nkind = \"canary\"\nneeds = [\"staging\"]\n\
            [[pipeline.stages]]\nname = \"promote\"\nconfig = \"prod.toml\"\nkind = \"promote\"\nneeds = [\"canary\"]\n";
        let file = dir.path().join("pipeline.toml");
        std::fs::write(&file, text).unwrap();
        let pipeline = crate::config::load(&file).unwrap();
        (dir, pipeline)
    }

    #[test]
    fn a_pin_holds_the_revision_and_each_file_once() {
        let (_dir, p) = fixture();
        let pin = Pin::compute(&p, "r-42").unwrap();
        assert_eq!(pin.revision, "r-42");
        let files: Vec<_> = pin.files.keys().map(|f| f.to_str().unwrap()).collect();
        assert_eq!(files, ["pipeline.toml", "prod.toml", "staging.toml"]);
        // sha256("service = \"photos\"\nenvironment = \"prod\"\n"), as `sha256sum` prints it.
        assert_eq!(
            pin.files[Path::new("prod.toml")],
            hex(&Sha256::digest(
                b"service = \"photos\"\nenvironment = \"prod\"\n"
            ))
        );
        assert_eq!(pin.files[Path::new("prod.toml")].len(), 64);
        assert_eq!(pin.check(&p), Ok(()));
        assert_eq!(
            Pin::compute(&p, "r-42").unwrap(),
            pin,
            "the same files, the same pin"
        );
    }

    #[test]
    fn hex_is_lower_case_sha256() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_changed_file_is_named() {
        let (dir, p) = fixture();
        let pin = Pin::compute(&p, "r-42").unwrap();
        std::fs::write(
            dir.path().join("prod.toml"),
            "service = \"photos\"\nenvironment = \"prod\"\nregion = \"eu-west-1\"\n",
        )
        .unwrap();
        let changed = pin.check(&p).unwrap_err();
        assert_eq!(changed.file, dir.path().join("prod.toml"));
        assert!(matches!(changed.change, Change::Modified { .. }));
        assert!(
            changed.to_string().contains("prod.toml: changed (sha256 "),
            "{changed}"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let (dir, p) = fixture();
        let pin = Pin::compute(&p, "r-42").unwrap();
        std::fs::remove_file(dir.path().join("staging.toml")).unwrap();
        let changed = pin.check(&p).unwrap_err();
        assert_eq!(changed.file, dir.path().join("staging.toml"));
        assert!(matches!(changed.change, Change::Unreadable(_)));
    }

    #[test]
    fn a_pin_of_another_set_of_files_is_refused() {
        let (dir, p) = fixture();
        let mut pin = Pin::compute(&p, "r-42").unwrap();
        pin.files.remove(Path::new("staging.toml"));
        assert_eq!(
            pin.check(&p).unwrap_err().change,
            Change::Added,
            "a stage config the run did not pin"
        );
        let mut pin = Pin::compute(&p, "r-42").unwrap();
        pin.files.insert(PathBuf::from("dev.toml"), "00".repeat(32));
        let changed = pin.check(&p).unwrap_err();
        assert_eq!(
            (changed.file, changed.change),
            (dir.path().join("dev.toml"), Change::Removed)
        );
    }

    #[test]
    fn a_pin_round_trips_through_serde_for_the_journal() {
        let (_dir, p) = fixture();
        let pin = Pin::compute(&p, "r-42").unwrap();
        let text = toml::to_string(&pin).unwrap();
        assert_eq!(toml::from_str::<Pin>(&text).unwrap(), pin);
    }
}
