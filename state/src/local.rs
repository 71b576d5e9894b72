//! The local backend: a directory, one file per key, for a laptop or a single runner with no
//! state bucket. The same keys and rules as in S3; each conditional write holds an exclusive
//! `flock` on `<root>/.lock` for the few microseconds of its check and write, and writes
//! through a temporary file and a rename, so a reader never sees half an object.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::store::{Etag, Store};
use crate::{Result, StateError};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(StateError::Foreign {
                key: key.to_string(),
                message: "not a key this store writes".into(),
            });
        }
        Ok(self.root.join(key))
    }

    fn fail(&self, key: &str, e: std::io::Error) -> StateError {
        StateError::Backend {
            key: self.describe(key),
            message: e.to_string(),
        }
    }

    /// Runs `f` holding the directory's exclusive lock.
    fn locked<T>(&self, key: &str, f: impl FnOnce() -> std::io::Result<T>) -> Result<T> {
        std::fs::create_dir_all(&self.root).map_err(|e| self.fail(key, e))?;
        let guard = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".lock"))
            .map_err(|e| self.fail(key, e))?;
        guard.lock().map_err(|e| self.fail(key, e))?;
        let out = f().map_err(|e| self.fail(key, e));
        let _ = guard.unlock();
        out
    }

    fn write(&self, path: &Path, body: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().expect("keys have a directory");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object")
        ));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

fn etag(body: &[u8]) -> Etag {
    let digest = Sha256::digest(body);
    Etag(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Store for LocalStore {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>> {
        let path = self.path(key)?;
        let body = read(&path).map_err(|e| self.fail(key, e))?;
        Ok(body.map(|b| {
            let t = etag(&b);
            (b, t)
        }))
    }

    async fn put_new(&self, key: &str, body: &[u8]) -> Result<Option<Etag>> {
        let path = self.path(key)?;
        self.locked(key, || {
            if path.exists() {
                return Ok(None);
            }
            self.write(&path, body)?;
            Ok(Some(etag(body)))
        })
    }

    async fn put_if(&self, key: &str, body: &[u8], want: &Etag) -> Result<Option<Etag>> {
        let path = self.path(key)?;
        self.locked(key, || {
            match read(&path)? {
                Some(current) if etag(&current) == *want => {}
                _ => return Ok(None),
            }
            self.write(&path, body)?;
            Ok(Some(etag(body)))
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // Keys are `a/b/c`; walk the directory under the prefix's directory part.
        let (dir, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let base = if dir.is_empty() {
            self.root.clone()
        } else {
            self.path(dir)?
        };
        let mut out = Vec::new();
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.fail(prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.fail(prefix, e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    continue;
                }
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn describe(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}
