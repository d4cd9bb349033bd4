//! The one implementation of [`Store`] over any SQL backend: the backends (`sqlite.rs`,
//! `postgres.rs`) only open transactions and move values. The SQL here is the common subset of
//! SQLite and PostgreSQL: `?` placeholders (PostgreSQL's backend numbers them), `TEXT` and
//! `BIGINT` columns, `INSERT … ON CONFLICT … DO UPDATE`, no `SUM` (PostgreSQL's is `numeric`).

use super::*;

/// A statement parameter. Nulls are typed: PostgreSQL checks a parameter's type even when null.
pub(crate) enum P<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

fn int(v: i64) -> P<'static> {
    P::Int(Some(v))
}

fn text(v: &str) -> P<'_> {
    P::Text(Some(v))
}

/// A value read back.
#[derive(Debug)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
}

/// One open transaction.
pub(crate) trait Tx {
    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Vec<Val>>, StoreError>;
    /// Serialises concurrent migrations (PostgreSQL: an advisory lock; SQLite's write
    /// transactions already are).
    fn lock_for_migration(&mut self) -> Result<(), StoreError>;
}

/// A connection that runs closures in transactions (committed when they return `Ok`).
pub(crate) trait Backend: Send + Sync {
    fn transaction<R>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<R, StoreError>) -> Result<R, StoreError>;
}

/// Schema migrations, in order. Never edit one that shipped: add the next.
const MIGRATIONS: &[(i64, &str, &[&str])] = &[(
    1,
    "catalog: databases, tables, table_versions, partitions, files, crawls, named_queries",
    &[
        "CREATE TABLE databases (name TEXT PRIMARY KEY, description TEXT NOT NULL, created_ms BIGINT NOT NULL)",
        "CREATE TABLE tables (db TEXT NOT NULL REFERENCES databases (name), name TEXT NOT NULL, \
         location TEXT NOT NULL, format_json TEXT NOT NULL, schema_json TEXT NOT NULL, \
         partition_keys_json TEXT NOT NULL, properties_json TEXT NOT NULL, schema_version BIGINT NOT NULL, \
         deprecated BIGINT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, PRIMARY KEY (db, name))",
        "CREATE TABLE table_versions (db TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL, \
         schema_json TEXT NOT NULL, partition_keys_json TEXT NOT NULL, created_ms BIGINT NOT NULL, \
         change TEXT NOT NULL, PRIMARY KEY (db, name, version), \
         FOREIGN KEY (db, name) REFERENCES tables (db, name) ON DELETE CASCADE)",
        "CREATE TABLE partitions (db TEXT NOT NULL, name TEXT NOT NULL, values_json TEXT NOT NULL, \
         location TEXT NOT NULL, files BIGINT NOT NULL, bytes BIGINT NOT NULL, \
         PRIMARY KEY (db, name, values_json), FOREIGN KEY (db, name) REFERENCES tables (db, name) ON DELETE CASCADE)",
        "CREATE TABLE files (db TEXT NOT NULL, root TEXT NOT NULL, path TEXT NOT NULL, size BIGINT NOT NULL, \
         tag TEXT NOT NULL, format_json TEXT, schema_json TEXT, problem TEXT, table_name TEXT, \
         partition_values_json TEXT NOT NULL, PRIMARY KEY (db, root, path))",
        "CREATE INDEX files_by_table ON files (db, table_name)",
        "CREATE TABLE crawls (db TEXT NOT NULL, root TEXT NOT NULL, last_ms BIGINT NOT NULL, PRIMARY KEY (db, root))",
        "CREATE TABLE named_queries (db TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, \
         query_sql TEXT NOT NULL, PRIMARY KEY (db, name))",
    ],
)];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Brings the catalog's schema to [`SCHEMA_VERSION`]; refuses a newer one.
pub(crate) fn migrate(b: &impl Backend) -> Result<(), StoreError> {
    b.transaction(|tx| {
        tx.lock_for_migration()?;
        tx.exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             applied_ms BIGINT NOT NULL)",
            &[],
        )?;
        let rows = tx.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?;
        let current = rows.into_iter().next().and_then(|r| r.into_iter().next()).map(|v| v.int()).transpose()?;
        let current = current.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found: current, supported: SCHEMA_VERSION });
        }
        for (version, description, statements) in MIGRATIONS {
            if *version <= current {
                continue;
            }
            for s in *statements {
                tx.exec(s, &[])?;
            }
            tx.exec(
                "INSERT INTO schema_migrations (version, description, applied_ms) VALUES (?, ?, ?)",
                &[int(*version), text(description), int(now_ms())],
            )?;
        }
        Ok(())
    })
}

impl Val {
    fn int(self) -> Result<i64, StoreError> {
        match self {
            Val::Int(i) => Ok(i),
            other => Err(StoreError::Corrupt(format!("expected an integer, found {other:?}"))),
        }
    }

    fn text(self) -> Result<String, StoreError> {
        match self {
            Val::Text(s) => Ok(s),
            other => Err(StoreError::Corrupt(format!("expected text, found {other:?}"))),
        }
    }

    fn opt_text(self) -> Result<Option<String>, StoreError> {
        match self {
            Val::Null => Ok(None),
            other => other.text().map(Some),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, StoreError> {
        let s = self.text()?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{e} in {s:?}")))
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("catalog types serialize")
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const TABLE_COLS: &str = "db, name, location, format_json, schema_json, partition_keys_json, properties_json, \
                          schema_version, deprecated, created_ms, updated_ms";

fn table_row(row: Vec<Val>) -> Result<TableRecord, StoreError> {
    let mut it = row.into_iter();
    let mut next = || it.next().ok_or_else(|| StoreError::Corrupt("short row".into()));
    Ok(TableRecord {
        database: next()?.text()?,
        name: next()?.text()?,
        location: next()?.text()?,
        format: next()?.json()?,
        schema: next()?.json()?,
        partition_keys: next()?.json()?,
        properties: next()?.json()?,
        schema_version: next()?.int()? as u32,
        deprecated: next()?.int()? != 0,
        created_ms: next()?.int()?,
        updated_ms: next()?.int()?,
    })
}

fn ensure_database(tx: &mut dyn Tx, name: &str, description: &str, now: i64) -> Result<bool, StoreError> {
    validate_name("database", name)?;
    let n = tx.exec(
        "INSERT INTO databases (name, description, created_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        &[text(name), text(description), int(now)],
    )?;
    Ok(n > 0)
}

fn get_table(tx: &mut dyn Tx, database: &str, name: &str) -> Result<Option<TableRecord>, StoreError> {
    let rows =
        tx.query(&format!("SELECT {TABLE_COLS} FROM tables WHERE db = ? AND name = ?"), &[text(database), text(name)])?;
    rows.into_iter().next().map(table_row).transpose()
}

fn put_table(tx: &mut dyn Tx, t: &TableRecord) -> Result<(), StoreError> {
    validate_name("table", &t.name)?;
    let (format, schema, keys, props) =
        (json(&t.format), json(&t.schema), json(&t.partition_keys), json(&t.properties));
    tx.exec(
        &format!(
            "INSERT INTO tables ({TABLE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (db, name) DO UPDATE SET \
             location = excluded.location, format_json = excluded.format_json, schema_json = excluded.schema_json, \
             partition_keys_json = excluded.partition_keys_json, properties_json = excluded.properties_json, \
             schema_version = excluded.schema_version, deprecated = excluded.deprecated, updated_ms = excluded.updated_ms"
        ),
        &[
            text(&t.database),
            text(&t.name),
            text(&t.location),
            text(&format),
            text(&schema),
            text(&keys),
            text(&props),
            int(t.schema_version as i64),
            int(t.deprecated as i64),
            int(t.created_ms),
            int(t.updated_ms),
        ],
    )?;
    Ok(())
}

fn put_version(tx: &mut dyn Tx, database: &str, name: &str, v: &SchemaVersion) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO table_versions (db, name, version, schema_json, partition_keys_json, created_ms, change) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            text(database),
            text(name),
            int(v.version as i64),
            text(&json(&v.schema)),
            text(&json(&v.partition_keys)),
            int(v.created_ms),
            text(&v.change),
        ],
    )?;
    Ok(())
}

fn put_file(tx: &mut dyn Tx, database: &str, root: &str, f: &FileState) -> Result<(), StoreError> {
    let (format, schema, problem) = match &f.found {
        Ok((format, schema)) => (Some(json(format)), Some(json(schema)), None),
        Err(p) => (None, None, Some(p.as_str())),
    };
    let values = json(&f.partition_values);
    tx.exec(
        "INSERT INTO files (db, root, path, size, tag, format_json, schema_json, problem, table_name, partition_values_json) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (db, root, path) DO UPDATE SET size = excluded.size, \
         tag = excluded.tag, format_json = excluded.format_json, schema_json = excluded.schema_json, \
         problem = excluded.problem, table_name = excluded.table_name, \
         partition_values_json = excluded.partition_values_json",
        &[
            text(database),
            text(root),
            text(&f.path),
            int(to_i64(f.size)),
            text(&f.tag),
            P::Text(format.as_deref()),
            P::Text(schema.as_deref()),
            P::Text(problem),
            P::Text(f.table.as_deref()),
            text(&values),
        ],
    )?;
    Ok(())
}

/// [`Store`] over a [`Backend`].
pub(crate) struct SqlStore<B> {
    pub(crate) backend: B,
}

impl<B: Backend> Store for SqlStore<B> {
    fn list_tables(&self, database: Option<&str>) -> Result<Vec<TableRecord>, StoreError> {
        self.backend.transaction(|tx| {
            let rows = match database {
                Some(db) => {
                    tx.query(&format!("SELECT {TABLE_COLS} FROM tables WHERE db = ? ORDER BY name"), &[text(db)])?
                }
                None => tx.query(&format!("SELECT {TABLE_COLS} FROM tables ORDER BY db, name"), &[])?,
            };
            rows.into_iter().map(table_row).collect()
        })
    }

    fn get_table(&self, database: &str, name: &str) -> Result<Option<TableRecord>, StoreError> {
        self.backend.transaction(|tx| get_table(tx, database, name))
    }

    fn table_files(&self, database: &str, name: &str) -> Result<Vec<FileRecord>, StoreError> {
        self.backend.transaction(|tx| {
            let rows = tx.query(
                "SELECT root, path, size, tag, partition_values_json FROM files WHERE db = ? AND table_name = ? \
                 ORDER BY root, path",
                &[text(database), text(name)],
            )?;
            rows.into_iter()
                .map(|r| {
                    let mut it = r.into_iter();
                    let (root, path, size, tag, values) = (it.next(), it.next(), it.next(), it.next(), it.next());
                    let short = || StoreError::Corrupt("short row".into());
                    let root = root.ok_or_else(short)?.text()?;
                    let path = path.ok_or_else(short)?.text()?;
                    Ok(FileRecord {
                        url: format!("{root}{}", encode_path(&path)),
                        size: size.ok_or_else(short)?.int()? as u64,
                        tag: tag.ok_or_else(short)?.text()?,
                        partition_values: values.ok_or_else(short)?.json()?,
                    })
                })
                .collect()
        })
    }

    fn partitions(&self, database: &str, name: &str) -> Result<Vec<PartitionRecord>, StoreError> {
        self.backend.transaction(|tx| {
            let rows = tx.query(
                "SELECT values_json, location, files, bytes FROM partitions WHERE db = ? AND name = ? ORDER BY location",
                &[text(database), text(name)],
            )?;
            rows.into_iter()
                .map(|r| {
                    let mut it = r.into_iter();
                    let mut next = || it.next().ok_or_else(|| StoreError::Corrupt("short row".into()));
                    Ok(PartitionRecord {
                        values: next()?.json()?,
                        location: next()?.text()?,
                        files: next()?.int()? as u64,
                        bytes: next()?.int()? as u64,
                    })
                })
                .collect()
        })
    }

    fn history(&self, database: &str, name: &str) -> Result<Vec<SchemaVersion>, StoreError> {
        self.backend.transaction(|tx| {
            let rows = tx.query(
                "SELECT version, schema_json, partition_keys_json, created_ms, change FROM table_versions \
                 WHERE db = ? AND name = ? ORDER BY version",
                &[text(database), text(name)],
            )?;
            rows.into_iter()
                .map(|r| {
                    let mut it = r.into_iter();
                    let mut next = || it.next().ok_or_else(|| StoreError::Corrupt("short row".into()));
                    Ok(SchemaVersion {
                        version: next()?.int()? as u32,
                        schema: next()?.json()?,
                        partition_keys: next()?.json()?,
                        created_ms: next()?.int()?,
                        change: next()?.text()?,
                    })
                })
                .collect()
        })
    }

    fn list_databases(&self) -> Result<Vec<String>, StoreError> {
        self.backend.transaction(|tx| {
            tx.query("SELECT name FROM databases ORDER BY name", &[])?
                .into_iter()
                .map(|r| r.into_iter().next().ok_or_else(|| StoreError::Corrupt("short row".into()))?.text())
                .collect()
        })
    }

    fn save_named_query(&self, q: &NamedQuery) -> Result<(), StoreError> {
        if q.name.is_empty() || q.name.len() > 128 {
            return Err(StoreError::Invalid(format!("invalid named query name {:?}: 1 to 128 characters", q.name)));
        }
        self.backend.transaction(|tx| {
            ensure_database(tx, &q.database, "", now_ms())?;
            tx.exec(
                "INSERT INTO named_queries (db, name, description, query_sql) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (db, name) DO UPDATE SET description = excluded.description, query_sql = excluded.query_sql",
                &[text(&q.database), text(&q.name), text(&q.description), text(&q.sql)],
            )?;
            Ok(())
        })
    }

    fn named_queries(&self, database: Option<&str>) -> Result<Vec<NamedQuery>, StoreError> {
        self.backend.transaction(|tx| {
            let rows = match database {
                Some(db) => tx.query(
                    "SELECT db, name, description, query_sql FROM named_queries WHERE db = ? ORDER BY name",
                    &[text(db)],
                )?,
                None => {
                    tx.query("SELECT db, name, description, query_sql FROM named_queries ORDER BY db, name", &[])?
                }
            };
            rows.into_iter()
                .map(|r| {
                    let mut it = r.into_iter();
                    let mut next = || it.next().ok_or_else(|| StoreError::Corrupt("short row".into()));
                    Ok(NamedQuery {
                        database: next()?.text()?,
                        name: next()?.text()?,
                        description: next()?.text()?,
                        sql: next()?.text()?,
                    })
                })
                .collect()
        })
    }

    fn delete_named_query(&self, database: &str, name: &str) -> Result<bool, StoreError> {
        self.backend.transaction(|tx| {
            Ok(tx.exec("DELETE FROM named_queries WHERE db = ? AND name = ?", &[text(database), text(name)])? > 0)
        })
    }

    fn ensure_database(&self, name: &str, description: &str) -> Result<bool, StoreError> {
        self.backend.transaction(|tx| ensure_database(tx, name, description, now_ms()))
    }

    fn file_states(&self, database: &str, root: &str) -> Result<Vec<FileState>, StoreError> {
        self.backend.transaction(|tx| {
            let rows = tx.query(
                "SELECT path, size, tag, format_json, schema_json, problem, table_name, partition_values_json \
                 FROM files WHERE db = ? AND root = ? ORDER BY path",
                &[text(database), text(root)],
            )?;
            rows.into_iter()
                .map(|r| {
                    let mut it = r.into_iter();
                    let mut next = || it.next().ok_or_else(|| StoreError::Corrupt("short row".into()));
                    let path = next()?.text()?;
                    let size = next()?.int()? as u64;
                    let tag = next()?.text()?;
                    let (format, schema, problem) = (next()?, next()?, next()?.opt_text()?);
                    let found = match problem {
                        Some(p) => Err(p),
                        None => Ok((format.json()?, schema.json()?)),
                    };
                    Ok(FileState {
                        path,
                        size,
                        tag,
                        found,
                        table: next()?.opt_text()?,
                        partition_values: next()?.json()?,
                    })
                })
                .collect()
        })
    }

    fn apply(&self, c: &Changes) -> Result<(), StoreError> {
        self.backend.transaction(|tx| {
            ensure_database(tx, &c.database, "", c.now_ms)?;
            for t in &c.tables {
                if t.record.database != c.database {
                    return Err(StoreError::Invalid(format!(
                        "table {}.{} is not in the crawl's database {}",
                        t.record.database, t.record.name, c.database
                    )));
                }
                put_table(tx, &t.record)?;
                if let Some(v) = &t.new_version {
                    put_version(tx, &c.database, &t.record.name, v)?;
                }
            }
            for p in &c.partitions {
                for values in &p.delete {
                    tx.exec(
                        "DELETE FROM partitions WHERE db = ? AND name = ? AND values_json = ?",
                        &[text(&c.database), text(&p.table), text(&json(values))],
                    )?;
                }
                for r in &p.upsert {
                    tx.exec(
                        "INSERT INTO partitions (db, name, values_json, location, files, bytes) VALUES (?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (db, name, values_json) DO UPDATE SET location = excluded.location, \
                         files = excluded.files, bytes = excluded.bytes",
                        &[
                            text(&c.database),
                            text(&p.table),
                            text(&json(&r.values)),
                            text(&r.location),
                            int(to_i64(r.files)),
                            int(to_i64(r.bytes)),
                        ],
                    )?;
                }
            }
            for path in &c.files_delete {
                tx.exec("DELETE FROM files WHERE db = ? AND root = ? AND path = ?", &[
                    text(&c.database),
                    text(&c.root),
                    text(path),
                ])?;
            }
            for f in &c.files_upsert {
                put_file(tx, &c.database, &c.root, f)?;
            }
            tx.exec(
                "INSERT INTO crawls (db, root, last_ms) VALUES (?, ?, ?) ON CONFLICT (db, root) DO UPDATE SET \
                 last_ms = excluded.last_ms",
                &[text(&c.database), text(&c.root), int(c.now_ms)],
            )?;
            Ok(())
        })
    }

    fn register_table(&self, t: &TableRecord) -> Result<u32, StoreError> {
        if !t.location.ends_with('/') || !t.location.contains("://") {
            return Err(StoreError::Invalid(format!("table location {:?} is not a URL ending in '/'", t.location)));
        }
        self.backend.transaction(|tx| {
            let now = now_ms();
            ensure_database(tx, &t.database, "", now)?;
            let old = get_table(tx, &t.database, &t.name)?;
            let mut record = t.clone();
            record.deprecated = false;
            record.updated_ms = now;
            let version = match &old {
                None => {
                    record.schema_version = 1;
                    record.created_ms = now;
                    Some("created (registered)".to_string())
                }
                Some(o) => {
                    record.created_ms = o.created_ms;
                    record.schema_version = o.schema_version;
                    let changed = describe_change(
                        (&o.format, &o.schema, &o.partition_keys),
                        (&t.format, &t.schema, &t.partition_keys),
                    );
                    if changed.is_empty() {
                        None
                    } else {
                        record.schema_version = o.schema_version + 1;
                        Some(changed.join("; "))
                    }
                }
            };
            if old.as_ref().is_some_and(|o| {
                version.is_none() && o.location == record.location && o.properties == record.properties && !o.deprecated
            }) {
                return Ok(record.schema_version);
            }
            put_table(tx, &record)?;
            if let Some(change) = version {
                let v = SchemaVersion {
                    version: record.schema_version,
                    schema: record.schema.clone(),
                    partition_keys: record.partition_keys.clone(),
                    created_ms: now,
                    change,
                };
                put_version(tx, &record.database, &record.name, &v)?;
            }
            Ok(record.schema_version)
        })
    }

    fn last_crawl(&self, database: &str, root: &str) -> Result<Option<i64>, StoreError> {
        self.backend.transaction(|tx| {
            let rows =
                tx.query("SELECT last_ms FROM crawls WHERE db = ? AND root = ?", &[text(database), text(root)])?;
            rows.into_iter().next().and_then(|r| r.into_iter().next()).map(Val::int).transpose()
        })
    }
}
