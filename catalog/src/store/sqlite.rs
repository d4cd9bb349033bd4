//! The SQLite backend: one connection behind a mutex, WAL journal, write transactions taken
//! at their start (`BEGIN IMMEDIATE`), 10 s busy timeout for other processes' writers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;
use super::sql::{Backend, P, SqlStore, Tx, Val, migrate};

/// A catalog in one SQLite file.
pub struct SqliteStore {
    inner: SqlStore<Sqlite>,
    path: PathBuf,
}

pub(crate) struct Sqlite {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens or creates the catalog at `path` (and its parent folders), migrating its schema.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::Io { path: parent.display().to_string(), source })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let backend = Sqlite { conn: Mutex::new(conn) };
        migrate(&backend)?;
        Ok(SqliteStore { inner: SqlStore { backend }, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            P::Int(Some(i)) => ToSqlOutput::from(*i),
            P::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            P::Int(None) | P::Text(None) => ToSqlOutput::from(rusqlite::types::Null),
        })
    }
}

struct SqliteTx<'c>(&'c rusqlite::Transaction<'c>);

impl Tx for SqliteTx<'_> {
    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Vec<Val>>, StoreError> {
        let mut stmt = self.0.prepare(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut r = Vec::with_capacity(n);
            for i in 0..n {
                r.push(match row.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                    other => return Err(StoreError::Corrupt(format!("unexpected value {other:?} in {sql}"))),
                });
            }
            out.push(r);
        }
        Ok(out)
    }

    fn lock_for_migration(&mut self) -> Result<(), StoreError> {
        Ok(()) // BEGIN IMMEDIATE holds the write lock already
    }
}

impl Backend for Sqlite {
    fn transaction<R>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let r = f(&mut SqliteTx(&tx))?;
        tx.commit()?;
        Ok(r)
    }
}

super::delegate_store!(SqliteStore);
