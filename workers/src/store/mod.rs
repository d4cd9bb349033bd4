//! Object stores the sink writes to: Amazon S3 or any S3-compatible store ([`S3Store`]), or a
//! local directory with the same key layout ([`LocalStore`], the local runner's default).
//!
//! The sink needs one operation beyond put/get/list/delete: [`ObjectStore::put_if_absent`], a
//! create that fails when the key exists. S3 offers it as a conditional write
//! (`If-None-Match: *`, answered `412 Precondition Failed` when the key exists; AWS S3 since
//! 2024, and MinIO); the local store uses `link(2)`, which refuses an existing name. It is how
//! two sink workers racing for the same Kafka offsets agree on one winner.

mod local;
mod s3;

pub use local::LocalStore;
pub use s3::{S3Options, S3Store};

use async_trait::async_trait;
use bytes::Bytes;

/// Errors from a store; `key` names the object involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {key}: {source}")]
    Io { op: &'static str, key: String, source: std::io::Error },
    #[error("{op} {key}: {detail}")]
    S3 { op: &'static str, key: String, detail: String },
    #[error("invalid object key {0:?}")]
    BadKey(String),
    #[error("store configuration: {0}")]
    Config(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

/// A flat key space of immutable-ish objects.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Writes (or replaces) an object.
    async fn put(&self, key: &str, body: Bytes) -> Result<()>;
    /// Creates an object only if no object has the key; `Ok(false)` when one does.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool>;
    /// Reads an object; `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Whether an object exists.
    async fn exists(&self, key: &str) -> Result<bool>;
    /// Objects whose key starts with `prefix` and sorts after `start_after`, in key order,
    /// at most `limit`.
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectMeta>>;
    /// Deletes an object (absent is fine).
    async fn delete(&self, key: &str) -> Result<()>;
    /// Where this store is, for logs (`s3://bucket`, `file:///dir`).
    fn describe(&self) -> String;
}

/// Lists every object under `prefix` (paging through [`ObjectStore::list`]).
pub async fn list_all(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<ObjectMeta>> {
    const PAGE: usize = 1000;
    let mut out: Vec<ObjectMeta> = Vec::new();
    loop {
        let after = out.last().map(|o| o.key.clone());
        let page = store.list(prefix, after.as_deref(), PAGE).await?;
        let n = page.len();
        out.extend(page);
        if n < PAGE {
            return Ok(out);
        }
    }
}

/// Keys are relative, `/`-separated, without `.`/`..` segments or empty segments.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.split('/').any(|s| s == "." || s == "..")
        || key.contains("//")
        || key.contains('\0');
    if bad { Err(StoreError::BadKey(key.to_string())) } else { Ok(()) }
}
