//! The catalog store: databases, tables, schema versions (history), partitions, the crawler's
//! per-file state and saved (named) queries — in SQLite (the local default) or PostgreSQL.
//!
//! [`Store`] is the contract the SQL engine and the crawl driver program against; [`open`]
//! picks the backend from a URL. Both backends run the same SQL through one implementation
//! (`sql.rs`): a backend only opens transactions and moves values, so they cannot drift apart,
//! and one test suite (`tests/store.rs`) runs on both.
//!
//! ## Blocking
//!
//! Every method blocks. From async code call them in `tokio::task::spawn_blocking`. For
//! PostgreSQL this is a must, not a courtesy: the sync `postgres` client runs its own small
//! tokio runtime and panics when called on a runtime thread. (Dropping the store from async code
//! is safe: the PostgreSQL connection is then closed on a thread of its own.)
//!
//! ## What is stored
//!
//! | table | key | what |
//! |---|---|---|
//! | `schema_migrations` | version | applied migrations; a catalog newer than this build is refused |
//! | `databases` | name | |
//! | `tables` | (db, name) | location URL, format, schema, partition keys, properties (JSON), current version, deprecated |
//! | `table_versions` | (db, name, version) | every schema a table had, with the change that made it |
//! | `partitions` | (db, name, values) | location URL, files, bytes |
//! | `files` | (db, root, path) | crawl state: size, change tag (mtime ns or ETag), format + schema or the problem, table and partition values |
//! | `crawls` | (db, root) | when a root was last crawled |
//! | `named_queries` | (db, name) | description, SQL |
//!
//! Schemas, formats and partition keys are JSON (serde) of this crate's types. A crawl's
//! changes are applied in one transaction ([`Store::apply`]): a reader sees the catalog before
//! or after a crawl, never half of one.

/// `impl Store for $t` by delegating to its `inner: SqlStore<_>`.
macro_rules! delegate_store {
    ($t:ty) => {
        impl $crate::store::Store for $t {
            fn list_tables(&self, d: Option<&str>) -> Result<Vec<$crate::store::TableRecord>, StoreError> {
                self.inner.list_tables(d)
            }
            fn get_table(&self, d: &str, n: &str) -> Result<Option<$crate::store::TableRecord>, StoreError> {
                self.inner.get_table(d, n)
            }
            fn table_files(&self, d: &str, n: &str) -> Result<Vec<$crate::store::FileRecord>, StoreError> {
                self.inner.table_files(d, n)
            }
            fn partitions(&self, d: &str, n: &str) -> Result<Vec<$crate::store::PartitionRecord>, StoreError> {
                self.inner.partitions(d, n)
            }
            fn history(&self, d: &str, n: &str) -> Result<Vec<$crate::store::SchemaVersion>, StoreError> {
                self.inner.history(d, n)
            }
            fn list_databases(&self) -> Result<Vec<String>, StoreError> {
                self.inner.list_databases()
            }
            fn save_named_query(&self, q: &$crate::store::NamedQuery) -> Result<(), StoreError> {
                self.inner.save_named_query(q)
            }
            fn named_queries(&self, d: Option<&str>) -> Result<Vec<$crate::store::NamedQuery>, StoreError> {
                self.inner.named_queries(d)
            }
            fn delete_named_query(&self, d: &str, n: &str) -> Result<bool, StoreError> {
                self.inner.delete_named_query(d, n)
            }
            fn ensure_database(&self, n: &str, desc: &str) -> Result<bool, StoreError> {
                self.inner.ensure_database(n, desc)
            }
            fn file_states(&self, d: &str, root: &str) -> Result<Vec<$crate::store::FileState>, StoreError> {
                self.inner.file_states(d, root)
            }
            fn apply(&self, c: &$crate::store::Changes) -> Result<(), StoreError> {
                self.inner.apply(c)
            }
            fn register_table(&self, t: &$crate::store::TableRecord) -> Result<u32, StoreError> {
                self.inner.register_table(t)
            }
            fn last_crawl(&self, d: &str, root: &str) -> Result<Option<i64>, StoreError> {
                self.inner.last_crawl(d, root)
            }
        }
    };
}
use delegate_store;

mod postgres;
mod sql;
mod sqlite;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::group::{PartitionKey, TableFormat};
use crate::types::{DataType, Schema};

pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;

/// Why the catalog could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The catalog URL is not one [`open`] understands.
    #[error("catalog URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("SQLite catalog: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error, with the server's message when there is one.
    #[error("PostgreSQL catalog: {0}")]
    Postgres(String),
    #[error("creating the catalog's folder {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The catalog was written by a newer ticklake.
    #[error("the catalog's schema is version {found}, newer than this ticklake's {supported}: upgrade ticklake")]
    TooNew { found: i64, supported: i64 },
    /// Stored data that does not decode (hand edits, a bug).
    #[error("corrupt catalog data: {0}")]
    Corrupt(String),
    /// A name or value the catalog refuses.
    #[error("{0}")]
    Invalid(String),
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        let mut s = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        let mut source = std::error::Error::source(&e);
        if e.as_db_error().is_none() {
            while let Some(inner) = source {
                let _ = write!(s, ": {inner}");
                source = inner.source();
            }
        }
        StoreError::Postgres(s)
    }
}

/// A table in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRecord {
    pub database: String,
    pub name: String,
    /// Absolute URL ending in `/`: `file:///abs/dir/` or `s3://bucket/prefix/`, percent-encoded
    /// (see [`encode_path`]).
    pub location: String,
    pub format: TableFormat,
    pub schema: Schema,
    pub partition_keys: Vec<PartitionKey>,
    /// Glue-style properties: `classification`, `compression`, and `ticklake.*` (crawl root,
    /// files, bytes, …).
    pub properties: BTreeMap<String, String>,
    pub schema_version: u32,
    /// The table's files all vanished (Glue's `DEPRECATE_IN_DATABASE`).
    pub deprecated: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// One of a table's current files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Absolute, percent-encoded: `file:///…` or `s3://bucket/key`.
    pub url: String,
    pub size: u64,
    /// Change tag when last crawled: the modification time in nanoseconds (local) or the ETag
    /// (S3). Readers key caches of the file's contents on it.
    pub tag: String,
    /// One per partition key (`None`: Hive's default partition).
    pub partition_values: Vec<Option<String>>,
}

/// One partition of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub values: Vec<Option<String>>,
    /// Absolute URL of its folder, ending in `/`.
    pub location: String,
    pub files: u64,
    pub bytes: u64,
}

/// A schema a table had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaVersion {
    pub version: u32,
    pub schema: Schema,
    pub partition_keys: Vec<PartitionKey>,
    pub created_ms: i64,
    /// What changed: `created`, or e.g. `added column x: double; widened y int→bigint`.
    pub change: String,
}

/// A saved query (Athena's named queries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedQuery {
    pub database: String,
    pub name: String,
    pub description: String,
    pub sql: String,
}

/// What the crawler knows about one file of a crawl root, so that an unchanged file is not
/// read again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    /// Relative to the crawl root, `/`-separated, not encoded.
    pub path: String,
    pub size: u64,
    /// Change tag: the modification time in nanoseconds (local) or the ETag (S3).
    pub tag: String,
    /// What the file is, or why it could not be read as data.
    pub found: Result<(TableFormat, Schema), String>,
    /// The table it belongs to (in the crawl's database), if any.
    pub table: Option<String>,
    pub partition_values: Vec<Option<String>>,
}

/// A table written by [`Store::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableChange {
    /// The whole record as it is to be (replaces the stored one).
    pub record: TableRecord,
    /// A new history entry (`record.schema_version` must equal its version).
    pub new_version: Option<SchemaVersion>,
}

/// Partitions of one table written by [`Store::apply`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartitionChanges {
    pub table: String,
    /// Inserted or replaced (keyed by values).
    pub upsert: Vec<PartitionRecord>,
    /// Removed, by values.
    pub delete: Vec<Vec<Option<String>>>,
}

/// A crawl's changes, applied in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    pub database: String,
    /// The crawl root's URL (ending in `/`).
    pub root: String,
    pub now_ms: i64,
    pub tables: Vec<TableChange>,
    pub partitions: Vec<PartitionChanges>,
    /// New or changed file states (a changed table assignment included).
    pub files_upsert: Vec<FileState>,
    /// Vanished files, by path.
    pub files_delete: Vec<String>,
}

impl Changes {
    /// True when applying would change nothing but the crawl's time.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.partitions.is_empty()
            && self.files_upsert.is_empty()
            && self.files_delete.is_empty()
    }
}

/// The catalog. Every method blocks (see the module documentation on async callers).
pub trait Store: Send + Sync {
    fn list_tables(&self, database: Option<&str>) -> Result<Vec<TableRecord>, StoreError>;
    fn get_table(&self, database: &str, name: &str) -> Result<Option<TableRecord>, StoreError>;
    /// The table's current files, with their partition values (one per partition key). Empty
    /// for a table registered without a crawl: a reader then lists its location.
    fn table_files(&self, database: &str, name: &str) -> Result<Vec<FileRecord>, StoreError>;
    fn partitions(&self, database: &str, name: &str) -> Result<Vec<PartitionRecord>, StoreError>;
    /// Every schema version, oldest first.
    fn history(&self, database: &str, name: &str) -> Result<Vec<SchemaVersion>, StoreError>;
    fn list_databases(&self) -> Result<Vec<String>, StoreError>;
    /// Inserts or replaces by (database, name); creates the database when missing.
    fn save_named_query(&self, q: &NamedQuery) -> Result<(), StoreError>;
    fn named_queries(&self, database: Option<&str>) -> Result<Vec<NamedQuery>, StoreError>;
    /// True when there was one.
    fn delete_named_query(&self, database: &str, name: &str) -> Result<bool, StoreError>;

    /// Creates the database when missing; true when it was created.
    fn ensure_database(&self, name: &str, description: &str) -> Result<bool, StoreError>;
    /// The crawl state of every file under `root` (a URL ending in `/`) crawled into `database`.
    fn file_states(&self, database: &str, root: &str) -> Result<Vec<FileState>, StoreError>;
    /// Applies a crawl's changes in one transaction (creates the database when missing).
    fn apply(&self, changes: &Changes) -> Result<(), StoreError>;
    /// Registers a table directly (the sink's own table, without a crawl): creates it at
    /// version 1, or updates it — a new version when its format, schema or partition keys
    /// differ (the change described as [`describe_change`] does), the same version otherwise.
    /// `schema_version`, `created_ms` and `deprecated` of `table` are ignored. Returns the
    /// table's version.
    fn register_table(&self, table: &TableRecord) -> Result<u32, StoreError>;
    /// When `root` was last crawled into `database` (ms since the epoch).
    fn last_crawl(&self, database: &str, root: &str) -> Result<Option<i64>, StoreError>;
}

/// Opens (and creates or migrates) a catalog: `postgres://…` or `postgresql://…` → PostgreSQL;
/// `sqlite:///abs/path`, `sqlite://rel/path`, `sqlite:path` or a plain path → SQLite (created
/// with its parent folders, WAL journal).
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(PostgresStore::connect(url)?));
    }
    let path = if let Some(p) = url.strip_prefix("sqlite://") {
        p
    } else if let Some(p) = url.strip_prefix("sqlite:") {
        p
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::Url {
            url: url.to_string(),
            reason: format!("unknown scheme {scheme:?}: use postgres://…, sqlite:///path or a path"),
        });
    } else {
        url
    };
    if path.is_empty() {
        return Err(StoreError::Url { url: url.to_string(), reason: "no path".into() });
    }
    Ok(Box::new(SqliteStore::open(std::path::Path::new(path))?))
}

/// Refuses database and table names other than Glue's: 1 to 255 of `a-z`, `0-9`, `_`.
pub fn validate_name(kind: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > 255
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Invalid(format!(
            "invalid {kind} name {name:?}: use 1 to 255 lower-case letters, digits and `_`"
        )));
    }
    Ok(())
}

pub use crate::path::{decode_path, encode_path};

fn is_widening(from: &DataType, to: &DataType) -> bool {
    matches!(
        (from, to),
        (DataType::Int, DataType::BigInt) | (DataType::Int | DataType::BigInt, DataType::Double) | (DataType::Null, _)
    )
}

fn keys_text(keys: &[PartitionKey]) -> String {
    let k: Vec<String> = keys.iter().map(|k| format!("{} {}", k.name, k.data_type)).collect();
    format!("({})", k.join(", "))
}

/// What changed between two shapes of a table, one clause per change, in a stable order:
/// format, added / removed / widened / changed columns, nullability, order, partition keys.
/// Empty when nothing did.
pub fn describe_change(
    old: (&TableFormat, &Schema, &[PartitionKey]),
    new: (&TableFormat, &Schema, &[PartitionKey]),
) -> Vec<String> {
    let mut out = Vec::new();
    if old.0 != new.0 {
        out.push(format!("format {} → {}", old.0, new.0));
    }
    for c in &new.1.columns {
        match old.1.column(&c.name) {
            None => out.push(format!("added column {}: {}", c.name, c.data_type)),
            Some(o) if o.data_type != c.data_type => {
                let verb = if is_widening(&o.data_type, &c.data_type) { "widened" } else { "changed" };
                out.push(format!("{verb} {} {}→{}", c.name, o.data_type, c.data_type));
            }
            Some(_) => {}
        }
    }
    for o in &old.1.columns {
        if new.1.column(&o.name).is_none() {
            out.push(format!("removed column {}", o.name));
        }
    }
    for c in &new.1.columns {
        if let Some(o) = old.1.column(&c.name)
            && o.nullable != c.nullable
        {
            out.push(format!("{} {}", c.name, if c.nullable { "now nullable" } else { "no longer nullable" }));
        }
    }
    let common_old: Vec<&str> = old.1.names().filter(|n| new.1.column(n).is_some()).collect();
    let common_new: Vec<&str> = new.1.names().filter(|n| old.1.column(n).is_some()).collect();
    if common_old != common_new {
        out.push("reordered columns".into());
    }
    if old.2 != new.2 {
        out.push(format!("partition keys {} → {}", keys_text(old.2), keys_text(new.2)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::Compression;
    use crate::types::Field;

    #[test]
    fn urls_encode_and_decode_paths() {
        assert_eq!(encode_path("year=2024/k=a%2Fb/x y.json"), "year=2024/k=a%252Fb/x%20y.json");
        assert_eq!(decode_path("year=2024/k=a%252Fb/x%20y.json").unwrap(), "year=2024/k=a%2Fb/x y.json");
        assert_eq!(encode_path("é"), "%C3%A9");
    }

    #[test]
    fn names_are_glue_names() {
        validate_name("table", "ticks_2").unwrap();
        assert!(validate_name("table", "Ticks").is_err());
        assert!(validate_name("database", "").is_err());
        assert!(validate_name("database", "a-b").is_err());
    }

    #[test]
    fn changes_are_described() {
        let f = TableFormat::Json(Compression::None);
        let old = Schema::new(vec![
            Field::new("a", DataType::Int, false),
            Field::new("b", DataType::Int, false),
            Field::new("c", DataType::String, false),
        ]);
        let new = Schema::new(vec![
            Field::new("a", DataType::BigInt, false),
            Field::new("b", DataType::String, true),
            Field::new("x", DataType::Double, true),
        ]);
        let keys = [PartitionKey { name: "year".into(), data_type: DataType::Int }];
        let changed = describe_change((&f, &old, &[]), (&f, &new, &keys));
        assert_eq!(
            changed,
            [
                "widened a int→bigint",
                "changed b int→string",
                "added column x: double",
                "removed column c",
                "b now nullable",
                "partition keys () → (year int)"
            ]
        );
        assert!(describe_change((&f, &old, &[]), (&f, &old, &[])).is_empty());
    }
}
