//! Where a configuration comes from: a file, a git revision of a file, or an SSM parameter
//! tree. This crate never talks to AWS: SSM is reached through [`ParameterSource`], which the
//! CLI implements.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use crate::error::LoadError;
use crate::parse::{parse, Format, MAX_BYTES};
use crate::value::{Config, Key, Location, Map, Node, Value};

/// A configuration source as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A YAML, JSON, TOML or `.env` file.
    File(String),
    /// `git:<rev>:<path>`: the file as of a revision, through `git show <rev>:<path>`.
    Git { rev: String, path: String },
    /// `ssm:/<path>`: every parameter under the path, recursively.
    Ssm(String),
}

impl Source {
    /// Reads `git:<rev>:<path>`, `ssm:/<path>`, or else a file path.
    pub fn parse(spec: &str) -> Result<Source, LoadError> {
        if let Some(rest) = spec.strip_prefix("git:") {
            return match rest.split_once(':') {
                Some((rev, path)) if !rev.is_empty() && !path.is_empty() => Ok(Source::Git {
                    rev: rev.to_string(),
                    path: path.to_string(),
                }),
                _ => Err(LoadError::Git {
                    spec: spec.to_string(),
                    message: "expected git:<rev>:<path>, e.g. git:HEAD~1:config/app.yaml".into(),
                }),
            };
        }
        if let Some(path) = spec.strip_prefix("ssm:") {
            if !path.starts_with('/') {
                return Err(LoadError::Ssm {
                    spec: spec.to_string(),
                    message: "expected ssm:/<path>, e.g. ssm:/photos/prod".into(),
                });
            }
            return Ok(Source::Ssm(path.to_string()));
        }
        Ok(Source::File(spec.to_string()))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => f.write_str(p),
            Source::Git { rev, path } => write!(f, "git:{rev}:{path}"),
            Source::Ssm(p) => write!(f, "ssm:{p}"),
        }
    }
}

/// The kind of an SSM parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterKind {
    String,
    StringList,
    SecureString,
}

/// One parameter of a tree. A SecureString's value is hashed as soon as it is loaded.
#[derive(Clone)]
pub struct Parameter {
    /// The full name, e.g. `/photos/prod/db/host`.
    pub name: String,
    pub value: String,
    pub kind: ParameterKind,
}

impl fmt::Debug for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.kind == ParameterKind::SecureString {
            "<secret>"
        } else {
            self.value.as_str()
        };
        f.debug_struct("Parameter")
            .field("name", &self.name)
            .field("value", &value)
            .field("kind", &self.kind)
            .finish()
    }
}

/// A parameter store: every parameter under a path, recursively, decrypted.
pub trait ParameterSource {
    fn parameters_by_path(&self, path: &str) -> Result<Vec<Parameter>, String>;
}

/// Loads a source. `ssm` is needed only for `ssm:` sources.
pub fn load(source: &Source, ssm: Option<&dyn ParameterSource>) -> Result<Config, LoadError> {
    match source {
        Source::File(path) => load_file(Path::new(path)),
        Source::Git { rev, path } => load_git(rev, path),
        Source::Ssm(path) => match ssm {
            Some(store) => load_ssm(path, store),
            None => Err(LoadError::Ssm {
                spec: source.to_string(),
                message: "no parameter store available".into(),
            }),
        },
    }
}

/// Loads the two sides of a check, each as [`load`] does; on failure, the error of `old`
/// first. Files and `git:` revisions are read on two threads: a large configuration costs its
/// parse, and the two are independent. A parameter store is asked from this thread, one side
/// after the other.
pub fn load_both(
    old: &Source,
    new: &Source,
    ssm: Option<&dyn ParameterSource>,
) -> Result<(Config, Config), LoadError> {
    if matches!(old, Source::Ssm(_)) || matches!(new, Source::Ssm(_)) {
        return Ok((load(old, ssm)?, load(new, ssm)?));
    }
    let (old, new) = std::thread::scope(|scope| {
        let other = scope.spawn(|| load(new, None));
        let old = load(old, None);
        // A panic in the parser is a bug; it surfaces as it would on this thread.
        let new = other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (old, new)
    });
    Ok((old?, new?))
}

fn format_of(path: &str) -> Result<Format, LoadError> {
    Format::from_path(path).ok_or_else(|| LoadError::UnknownFormat {
        file: path.to_string(),
    })
}

/// Loads a file, refusing one over [`MAX_BYTES`] before reading it.
pub fn load_file(path: &Path) -> Result<Config, LoadError> {
    let label = path.display().to_string();
    let format = format_of(&label)?;
    let io = |source| LoadError::Io {
        file: label.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_BYTES {
        return Err(LoadError::TooLarge {
            file: label,
            size,
            limit: MAX_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse(&bytes, format, &label)
}

/// Loads `path` as of `rev` through `git show` (run in the current directory).
pub fn load_git(rev: &str, path: &str) -> Result<Config, LoadError> {
    let spec = format!("git:{rev}:{path}");
    let format = format_of(path)?;
    if rev.starts_with('-') {
        return Err(LoadError::Git {
            spec,
            message: "a revision cannot start with `-`".into(),
        });
    }
    let object = format!("{rev}:{}", path.trim_start_matches("./"));
    let output = Command::new("git")
        .args(["show", "--no-textconv", &object])
        .output()
        .map_err(|e| LoadError::Git {
            spec: spec.clone(),
            message: format!("cannot run git: {e}"),
        })?;
    if !output.status.success() {
        return Err(LoadError::Git {
            spec,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    parse(&output.stdout, format, &spec)
}

/// Builds a tree from the parameters under `path`: `/app/prod/db/host` under `/app/prod`
/// becomes `db.host`. StringList parameters become lists; SecureStrings become secrets.
pub fn load_ssm(path: &str, store: &dyn ParameterSource) -> Result<Config, LoadError> {
    let spec = format!("ssm:{path}");
    let err = |message: String| LoadError::Ssm {
        spec: spec.clone(),
        message,
    };
    let mut params = store.parameters_by_path(path).map_err(&err)?;
    params.sort_by(|a, b| a.name.cmp(&b.name));
    let prefix = path.trim_end_matches('/');
    let root_file: Arc<str> = Arc::from(spec.as_str());
    let mut root = Node::new(Value::Map(Map::new()), Location::new(&root_file, 0, 0));
    for p in params {
        let Some(rel) = p.name.strip_prefix(prefix) else {
            return Err(err(format!("{} is not under {path}", p.name)));
        };
        let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        if parts.is_empty() {
            return Err(err(format!(
                "{} is the path itself; give the parent path",
                p.name
            )));
        }
        let file: Arc<str> = Arc::from(format!("ssm:{}", p.name).as_str());
        let here = Location::new(&file, 0, 0);
        let leaf = match p.kind {
            ParameterKind::String => Node::new(Value::String(p.value.clone()), here.clone()),
            ParameterKind::StringList => Node::new(
                Value::List(
                    p.value
                        .split(',')
                        .map(|s| Node::new(Value::String(s.to_string()), here.clone()))
                        .collect(),
                ),
                here.clone(),
            ),
            ParameterKind::SecureString => crate::parse::secret_node(&p.value, here.clone()),
        };
        let mut node = &mut root;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let Value::Map(entries) = &mut node.value else {
                return Err(err(format!(
                    "{} sits under a parameter that has a value",
                    p.name
                )));
            };
            if entries.get(part).is_some() && last {
                return Err(err(format!(
                    "{} is both a parameter and a path prefix",
                    p.name
                )));
            }
            if entries.get(part).is_none() {
                let child = if last {
                    leaf.clone()
                } else {
                    Node::new(Value::Map(Map::new()), here.clone())
                };
                let key = Key {
                    name: Arc::from(*part),
                    location: here.clone(),
                };
                let _ = entries.insert(key, child);
            }
            node = entries.get_mut(part).expect("inserted above");
        }
    }
    Ok(Config {
        root,
        source: spec,
        typed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parameter store that counts the calls made to it.
    struct Store(std::cell::Cell<usize>);

    impl ParameterSource for Store {
        fn parameters_by_path(&self, path: &str) -> Result<Vec<Parameter>, String> {
            self.0.set(self.0.get() + 1);
            Ok(vec![Parameter {
                name: format!("{path}/port"),
                value: "80".into(),
                kind: ParameterKind::String,
            }])
        }
    }

    #[test]
    fn both_sides_load_and_the_old_error_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            Source::File(path.display().to_string())
        };
        let good = file("good.toml", "port = 80\n");
        let other = file("other.yaml", "port: 81\n");
        let bad_old = file("bad-old.json", "{\"port\": }");
        let bad_new = file("bad-new.toml", "port = \n");

        let (old, new) = load_both(&good, &other, None).unwrap();
        assert!(old.source.ends_with("good.toml"), "{}", old.source);
        assert!(new.source.ends_with("other.yaml"), "{}", new.source);

        let e = load_both(&bad_old, &bad_new, None).unwrap_err().to_string();
        assert!(e.contains("bad-old.json"), "{e}");
        let e = load_both(&good, &bad_new, None).unwrap_err().to_string();
        assert!(e.contains("bad-new.toml"), "{e}");
    }

    #[test]
    fn a_parameter_store_is_asked_once_a_side() {
        let store = Store(std::cell::Cell::new(0));
        let ssm = Source::parse("ssm:/svc").unwrap();
        let (old, new) = load_both(&ssm, &ssm, Some(&store)).unwrap();
        assert_eq!(store.0.get(), 2);
        for config in [old, new] {
            assert!(config.root.get("port").is_some(), "{:?}", config.root);
        }
    }
}
