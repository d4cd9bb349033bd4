//! The PostgreSQL backend: the sync `postgres` client (no TLS: `sslmode=require` is refused;
//! reach a remote server through a TLS tunnel or keep it on a private network), one connection
//! behind a mutex, prepared statements cached, a broken connection re-opened at the next call.
//!
//! The sync client drives its connection on a tokio runtime of its own, so its calls panic on a
//! runtime thread: async callers must use `tokio::task::spawn_blocking`. Dropping the store on a
//! runtime thread is handled (the connection is closed on a thread of its own).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, Config, NoTls, Statement};

use super::StoreError;
use super::sql::{Backend, P, SqlStore, Tx, Val, migrate};

/// A catalog in a PostgreSQL database.
pub struct PostgresStore {
    inner: SqlStore<Pg>,
}

pub(crate) struct Pg {
    config: Config,
    conn: Mutex<Option<Conn>>,
}

struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PostgresStore {
    /// Connects (10 s connect timeout unless the URL sets `connect_timeout`) and migrates the
    /// schema. Blocks: see the module documentation.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: Config = url.parse().map_err(|e: ::postgres::Error| StoreError::Url {
            url: redact(url),
            reason: StoreError::from(e).to_string(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let client = config.connect(NoTls)?;
        let backend = Pg { config, conn: Mutex::new(Some(Conn { client, statements: HashMap::new() })) };
        migrate(&backend)?;
        Ok(PostgresStore { inner: SqlStore { backend } })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***{}", &url[..s], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// `?` placeholders → `$1`, `$2`, … (the shared SQL has no `?` elsewhere).
fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

struct PgTx<'a, 'c> {
    tx: &'a mut ::postgres::Transaction<'c>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&number_placeholders(sql))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

fn params<'p>(params: &'p [P<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            P::Int(v) => v as &(dyn ToSql + Sync),
            P::Text(v) => v as &(dyn ToSql + Sync),
        })
        .collect()
}

impl Tx for PgTx<'_, '_> {
    fn exec(&mut self, sql: &str, p: &[P<'_>]) -> Result<u64, StoreError> {
        let s = self.statement(sql)?;
        Ok(self.tx.execute(&s, &params(p))?)
    }

    fn query(&mut self, sql: &str, p: &[P<'_>]) -> Result<Vec<Vec<Val>>, StoreError> {
        let s = self.statement(sql)?;
        let rows = self.tx.query(&s, &params(p))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut r = Vec::with_capacity(row.len());
            for (i, c) in row.columns().iter().enumerate() {
                let t = c.type_();
                let v = if *t == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?.map(Val::Int)
                } else if *t == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)?.map(|v| Val::Int(v.into()))
                } else if *t == Type::INT2 {
                    row.try_get::<_, Option<i16>>(i)?.map(|v| Val::Int(v.into()))
                } else if *t == Type::BOOL {
                    row.try_get::<_, Option<bool>>(i)?.map(|v| Val::Int(v.into()))
                } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(t) {
                    row.try_get::<_, Option<String>>(i)?.map(Val::Text)
                } else {
                    return Err(StoreError::Corrupt(format!("unexpected column type {t} in {sql}")));
                };
                r.push(v.unwrap_or(Val::Null));
            }
            out.push(r);
        }
        Ok(out)
    }

    fn lock_for_migration(&mut self) -> Result<(), StoreError> {
        // Two processes migrating at once would race on CREATE TABLE: one waits here.
        self.tx.execute("SELECT pg_advisory_xact_lock(7413425301)", &[])?;
        Ok(())
    }
}

impl Backend for Pg {
    fn transaction<R>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = None;
            let client = self.config.connect(NoTls)?;
            *guard = Some(Conn { client, statements: HashMap::new() });
        }
        let Conn { client, statements } = guard.as_mut().expect("connected above");
        let mut tx = client.transaction()?;
        let r = f(&mut PgTx { tx: &mut tx, statements })?;
        tx.commit()?;
        Ok(r)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(c) = conn
            && tokio::runtime::Handle::try_current().is_ok()
        {
            // The client owns a runtime, which must not be dropped on a runtime thread.
            let _ = std::thread::Builder::new().name("catalog-pg-close".into()).spawn(move || drop(c));
        }
    }
}

super::delegate_store!(PostgresStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_and_passwords_hidden() {
        assert_eq!(number_placeholders("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
