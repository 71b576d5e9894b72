//! The state every acting command goes through: one fenced lock per service and environment,
//! and a journal of runs, kept in S3 (feature `aws`) or in a local directory.
//!
//! # The rules
//!
//! - **One lock, fenced.** `<scope>/lock.json` is created with `If-None-Match: *` and changed
//!   only with `If-Match: <etag>` (compare-and-swap): take, renew, take over and release are
//!   each one conditional write, never delete-then-create. The object is never deleted: a
//!   release marks it free and keeps its generation, so every acquisition gets a generation
//!   (the fencing token) larger than any before. See [`lock`].
//! - **One object per record.** A run's records are `<scope>/runs/<run>/<seq:08>.json`, each
//!   written with `If-None-Match: *`, so two writers can never both write record N. Every
//!   record carries the run id, its sequence number and the writer's lock generation; a writer
//!   that finds its slot taken by a newer generation has been fenced and stops. See
//!   [`journal`].
//! - **Replay refuses nonsense.** Reading a run checks every record's envelope (format, run,
//!   contiguous sequence, generations never going back) and names the object that breaks a
//!   rule; the domain (the canary machine, maintenance, pipelines) then refuses transitions
//!   that are illegal in its own terms.
//! - **Holders can be checked.** A holder records who, host, pid and the process's start time,
//!   so "is the holder alive on this host" is always answerable (pid reuse included); a holder
//!   renews its lease on a timer, so a lease that stops moving belongs to a dead holder.
//!
//! Why S3 conditional writes: they are the only compare-and-swap the rails stack already has
//! (SSM's create-only put has none for update or delete; DynamoDB would be one more resource
//! to provision and emulate). ARCHITECTURE.md says more.

pub mod clock;
pub mod config;
pub mod holder;
pub mod journal;
pub mod local;
pub mod lock;
#[cfg(feature = "aws")]
pub mod s3;
pub mod store;

use std::sync::Arc;

pub use config::{Backend, StateConfig};
pub use holder::Holder;
pub use journal::{Envelope, RunJournal};
pub use lock::{Claim, Lease, LockInfo, LockState};
pub use store::{Etag, Store};

/// What can go wrong with shared state. Every variant names the object to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The lock is held by someone else and may not be taken.
    #[error("{0}")]
    Held(Box<lock::Refusal>),
    /// A newer holder (a later generation) has taken over: this process must stop acting.
    #[error(
        "{key}: the lock was taken over (generation {theirs}, this process holds {ours}): \
         stopped without acting further"
    )]
    Fenced { key: String, ours: u64, theirs: u64 },
    /// A conditional write lost a race that is not a takeover (retry the command).
    #[error("{key}: {message}")]
    Conflict { key: String, message: String },
    /// An object that is not ours, cannot be read, or comes from a newer format.
    #[error("{key}: {message}")]
    Foreign { key: String, message: String },
    /// A record that replay refuses.
    #[error("{key}: {message}")]
    Illegal { key: String, message: String },
    /// The backend failed (network, permissions, disk).
    #[error("{key}: {message}")]
    Backend { key: String, message: String },
}

pub type Result<T> = std::result::Result<T, StateError>;

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scope({})", self.location())
    }
}

/// The state of one service and environment (`photos-prod`) in one store.
#[derive(Clone)]
pub struct Scope {
    store: Arc<dyn Store>,
    /// `<prefix>/<service>-<environment>`, no trailing slash.
    root: String,
}

impl Scope {
    /// `name` is the service and environment (`photos-prod`), already validated by the
    /// configuration; it is checked again here because it becomes part of every key.
    pub fn new(store: Arc<dyn Store>, prefix: &str, name: &str) -> Result<Self> {
        let prefix = prefix.trim_matches('/');
        for part in prefix.split('/').chain([name]) {
            let empty_prefix = part.is_empty() && prefix.is_empty();
            if !(safe_segment(part) || empty_prefix) {
                return Err(StateError::Foreign {
                    key: format!("{prefix}/{name}"),
                    message: format!(
                        "{part:?} is not a safe key segment (letters, digits, `-`, `_`, `.`; \
                         not `.` or `..`)"
                    ),
                });
            }
        }
        let root = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        Ok(Scope { store, root })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Where a person finds this state: `s3://bucket/prefix/photos-prod` or a directory.
    pub fn location(&self) -> String {
        self.store.describe(&self.root)
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.root)
    }

    /// The key of the lock object.
    pub fn lock_key(&self) -> String {
        self.key("lock.json")
    }

    /// Every run journaled under this scope, oldest first (run ids sort by start time).
    pub async fn runs(&self) -> Result<Vec<String>> {
        let prefix = self.key("runs/");
        let mut runs: Vec<String> = self
            .store
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| {
                let rest = k.strip_prefix(&prefix)?;
                Some(rest.split_once('/')?.0.to_string())
            })
            .collect();
        runs.sort();
        runs.dedup();
        Ok(runs)
    }

    /// A document kept beside the runs (a worker fleet's roles...), read with its etag.
    pub async fn read_doc(&self, name: &str) -> Result<Option<(Vec<u8>, Etag)>> {
        check_segment(&self.root, name)?;
        self.store.get(&self.key(&format!("docs/{name}"))).await
    }

    /// Writes a document only over the version read (`None`: only if absent).
    pub async fn write_doc(&self, name: &str, body: &[u8], over: Option<&Etag>) -> Result<Etag> {
        check_segment(&self.root, name)?;
        let key = self.key(&format!("docs/{name}"));
        let put = match over {
            None => self.store.put_new(&key, body).await?,
            Some(etag) => self.store.put_if(&key, body, etag).await?,
        };
        put.ok_or_else(|| StateError::Conflict {
            key,
            message: "changed by another writer since it was read: run the command again".into(),
        })
    }
}

/// A key segment built from names a user controls: no separators, no `.`/`..`.
pub fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_segment(root: &str, s: &str) -> Result<()> {
    if safe_segment(s) {
        Ok(())
    } else {
        Err(StateError::Foreign {
            key: format!("{root}/{s}"),
            message: format!("{s:?} is not a safe key segment"),
        })
    }
}

/// Reads `body` as JSON and checks its `format` is `format`: an object of another family is
/// foreign (`noun` says what it is not, `hint` what to do about it), one of a newer version of
/// the family asks for an upgrade. Every object the state layer reads goes through here.
pub(crate) fn check_format(
    key: &str,
    body: &[u8],
    (format, family): (&str, &str),
    noun: &str,
    hint: &str,
) -> Result<serde_json::Value> {
    let foreign = |message: String| StateError::Foreign {
        key: key.to_string(),
        message,
    };
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| foreign(format!("not a gatekeeper {noun} (not JSON: {e})")))?;
    let found = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if found == format {
        return Ok(value);
    }
    Err(foreign(if found.starts_with(family) {
        format!(
            "written in format {found}, newer than this gatekeeper reads ({format}): upgrade \
             gatekeeper"
        )
    } else {
        format!("not a gatekeeper {noun} (no `format: {format}`){hint}")
    }))
}
