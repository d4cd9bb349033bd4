//! A local directory as an object store: key `a/b/c.parquet` is the file `<root>/a/b/c.parquet`.
//!
//! Writes go to a temporary file in the target folder, are fsynced, then renamed into place
//! (replace) or hard-linked (create-if-absent), so a reader never sees half an object and a
//! crash leaves at most a stray `.tmp-*` file, which listing skips.

use super::{ObjectMeta, ObjectStore, Result, StoreError, check_key};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct LocalStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LocalStore {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalStore> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| io("create", &root.display().to_string(), e))?;
        Ok(LocalStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn write_tmp(path: &Path, body: &[u8], key: &str) -> Result<PathBuf> {
        let dir = path.parent().expect("object paths have a parent");
        std::fs::create_dir_all(dir).map_err(|e| io("mkdir", key, e))?;
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", key, e))?;
        f.write_all(body).map_err(|e| io("write", key, e))?;
        f.sync_all().map_err(|e| io("fsync", key, e))?;
        Ok(tmp)
    }
}

fn io(op: &'static str, key: &str, source: std::io::Error) -> StoreError {
    StoreError::Io { op, key: key.to_string(), source }
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let path = self.path(key)?;
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let tmp = Self::write_tmp(&path, &body, &key)?;
            std::fs::rename(&tmp, &path).map_err(|e| io("rename", &key, e))?;
            sync_dir(&path);
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Config(format!("blocking task failed: {e}")))?
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        let path = self.path(key)?;
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let tmp = Self::write_tmp(&path, &body, &key)?;
            let res = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match res {
                Ok(()) => {
                    sync_dir(&path);
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(io("link", &key, e)),
            }
        })
        .await
        .map_err(|e| StoreError::Config(format!("blocking task failed: {e}")))?
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", key, e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("stat", key, e)),
        }
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            // Walk only the deepest folder the prefix names completely.
            let base = match prefix.rfind('/') {
                Some(i) => root.join(&prefix[..i]),
                None => root.clone(),
            };
            let mut keys = Vec::new();
            walk(&root, &base, &prefix, &mut keys)?;
            keys.sort_by(|a: &ObjectMeta, b| a.key.cmp(&b.key));
            Ok(keys
                .into_iter()
                .filter(|o| start_after.as_deref().is_none_or(|s| o.key.as_str() > s))
                .take(limit)
                .collect())
        })
        .await
        .map_err(|e| StoreError::Config(format!("blocking task failed: {e}")))?
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("delete", key, e)),
        }
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectMeta>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("list", &dir.display().to_string(), e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| io("list", &dir.display().to_string(), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") {
            continue;
        }
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("walk stays under root").to_string_lossy().replace('\\', "/");
        let ft = entry.file_type().map_err(|e| io("stat", &rel, e))?;
        if ft.is_dir() {
            // Descend only where keys can still match the prefix.
            let as_dir = format!("{rel}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, out)?;
            }
        } else if ft.is_file() && rel.starts_with(prefix) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(ObjectMeta { key: rel, size });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_list_delete_and_conditional_create() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path()).unwrap();
        s.put("a/b/1.txt", Bytes::from_static(b"one")).await.unwrap();
        s.put("a/b/2.txt", Bytes::from_static(b"two")).await.unwrap();
        s.put("a/c/3.txt", Bytes::from_static(b"three")).await.unwrap();
        assert_eq!(s.get("a/b/1.txt").await.unwrap().unwrap(), Bytes::from_static(b"one"));
        assert!(s.get("a/b/9.txt").await.unwrap().is_none());
        let keys: Vec<_> = s.list("a/", None, 10).await.unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["a/b/1.txt", "a/b/2.txt", "a/c/3.txt"]);
        let keys: Vec<_> = s.list("a/b/", Some("a/b/1.txt"), 10).await.unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["a/b/2.txt"]);
        assert!(s.put_if_absent("a/claim", Bytes::from_static(b"x")).await.unwrap());
        assert!(!s.put_if_absent("a/claim", Bytes::from_static(b"y")).await.unwrap());
        assert_eq!(s.get("a/claim").await.unwrap().unwrap(), Bytes::from_static(b"x"));
        s.delete("a/claim").await.unwrap();
        s.delete("a/claim").await.unwrap();
        assert!(!s.exists("a/claim").await.unwrap());
        assert!(s.put("../escape", Bytes::new()).await.is_err());
        assert!(s.put("/abs", Bytes::new()).await.is_err());
    }
}
