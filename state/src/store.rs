//! The few object operations the lock and the journal need, with compare-and-swap.

use async_trait::async_trait;

use crate::Result;

/// An opaque version tag: S3's ETag, or a content hash for the local store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Etag(pub String);

/// A key-value store with conditional writes. A write whose precondition fails answers
/// `Ok(None)`; every other failure is an error.
#[async_trait]
pub trait Store: Send + Sync {
    /// The object and its version, or `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>>;
    /// Creates `key` only if it does not exist (`If-None-Match: *`).
    async fn put_new(&self, key: &str, body: &[u8]) -> Result<Option<Etag>>;
    /// Replaces `key` only if its version is still `etag` (`If-Match`).
    async fn put_if(&self, key: &str, body: &[u8], etag: &Etag) -> Result<Option<Etag>>;
    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Where `key` lives, for people: `s3://bucket/key` or a path.
    fn describe(&self, key: &str) -> String;
}
