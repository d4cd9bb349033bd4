//! One suite, every backend: [`suite`] runs on SQLite always and on a real PostgreSQL server
//! with `--features postgres-tests` (`TICKLAKE_TEST_POSTGRES_URL`, started by scripts/test.sh;
//! each run gets a database of its own, dropped at the end).

use std::collections::BTreeMap;

use ticklake_catalog::store::{
    self, Changes, FileState, NamedQuery, PartitionChanges, PartitionRecord, SchemaVersion, Store, StoreError,
    TableChange, TableRecord,
};
use ticklake_catalog::{
    Compression, CsvDialect, DataType, EpochUnit, Field, PartitionKey, Schema, TableFormat, TsRepr,
};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("symbol", DataType::String, false),
        Field::new("ts", DataType::Timestamp(TsRepr::Epoch(EpochUnit::Micros)), false),
        Field::new("px", DataType::Double, true),
        Field::new(
            "book",
            DataType::Struct(vec![Field::new("bid", DataType::Decimal { precision: 18, scale: 4 }, true)]),
            true,
        ),
        Field::new("lots", DataType::Array(Box::new(DataType::Int)), true),
    ])
}

fn keys() -> Vec<PartitionKey> {
    vec![
        PartitionKey { name: "year".into(), data_type: DataType::Int },
        PartitionKey { name: "month".into(), data_type: DataType::String },
    ]
}

fn table(db: &str, name: &str, location: &str) -> TableRecord {
    TableRecord {
        database: db.into(),
        name: name.into(),
        location: location.into(),
        format: TableFormat::Parquet,
        schema: schema(),
        partition_keys: keys(),
        properties: BTreeMap::from([("classification".to_string(), "parquet".to_string())]),
        schema_version: 1,
        deprecated: false,
        created_ms: 1_000,
        updated_ms: 1_000,
    }
}

fn file(path: &str, table: Option<&str>, values: &[Option<&str>]) -> FileState {
    FileState {
        path: path.into(),
        size: 123,
        tag: "\"etag-1\"".into(),
        found: Ok((TableFormat::Parquet, schema())),
        table: table.map(str::to_string),
        partition_values: values.iter().map(|v| v.map(str::to_string)).collect(),
    }
}

/// The behaviour every backend must have. `reopen` opens the same catalog again.
fn suite(s: &dyn Store, reopen: &dyn Fn() -> Box<dyn Store>) {
    assert!(s.list_databases().unwrap().is_empty());
    assert!(s.list_tables(None).unwrap().is_empty());
    assert!(s.get_table("market", "ticks").unwrap().is_none());

    // Databases.
    assert!(s.ensure_database("market", "ticks and bars").unwrap());
    assert!(!s.ensure_database("market", "again").unwrap());
    assert!(matches!(s.ensure_database("Market", ""), Err(StoreError::Invalid(_))));

    // A crawl's changes: a table with partitions and files, one transaction.
    let root = "s3://lake/ticks/";
    let t = table("market", "ticks", root);
    let v1 = SchemaVersion {
        version: 1,
        schema: schema(),
        partition_keys: keys(),
        created_ms: 1_000,
        change: "created".into(),
    };
    let p1 = PartitionRecord {
        values: vec![Some("2026".into()), Some("01".into())],
        location: format!("{root}year=2026/month=01/"),
        files: 2,
        bytes: 246,
    };
    let p2 = PartitionRecord {
        values: vec![Some("2026".into()), None],
        location: format!("{root}year=2026/month=__HIVE_DEFAULT_PARTITION__/"),
        files: 1,
        bytes: 123,
    };
    let mut bad = file("notes.txt", None, &[]);
    bad.found = Err("unknown format: text".into());
    let changes = Changes {
        database: "market".into(),
        root: root.into(),
        now_ms: 1_000,
        tables: vec![TableChange { record: t.clone(), new_version: Some(v1.clone()) }],
        partitions: vec![PartitionChanges {
            table: "ticks".into(),
            upsert: vec![p1.clone(), p2.clone()],
            delete: vec![],
        }],
        files_upsert: vec![
            file("year=2026/month=01/a b.parquet", Some("ticks"), &[Some("2026"), Some("01")]),
            file("year=2026/month=01/k=a%2Fb.parquet", Some("ticks"), &[Some("2026"), Some("01")]),
            file("year=2026/month=__HIVE_DEFAULT_PARTITION__/c.parquet", Some("ticks"), &[Some("2026"), None]),
            bad.clone(),
        ],
        files_delete: vec![],
    };
    s.apply(&changes).unwrap();
    assert_eq!(s.get_table("market", "ticks").unwrap().unwrap(), t);
    assert_eq!(s.list_tables(Some("market")).unwrap(), [t.clone()]);
    assert!(s.list_tables(Some("other")).unwrap().is_empty());
    assert_eq!(s.history("market", "ticks").unwrap(), [v1.clone()]);
    assert_eq!(s.partitions("market", "ticks").unwrap(), [p1.clone(), p2.clone()], "ordered by location");
    let files = s.table_files("market", "ticks").unwrap();
    let urls: Vec<&str> = files.iter().map(|f| f.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "s3://lake/ticks/year=2026/month=01/a%20b.parquet",
            "s3://lake/ticks/year=2026/month=01/k=a%252Fb.parquet",
            "s3://lake/ticks/year=2026/month=__HIVE_DEFAULT_PARTITION__/c.parquet"
        ],
        "absolute, percent-encoded"
    );
    assert_eq!(files[2].partition_values, [Some("2026".to_string()), None]);
    assert_eq!(files[0].size, 123);
    let states = s.file_states("market", root).unwrap();
    assert_eq!(states.len(), 4);
    assert_eq!(states.iter().find(|f| f.path == "notes.txt").unwrap(), &bad, "problems are kept");
    assert!(s.file_states("market", "s3://lake/other/").unwrap().is_empty());
    assert_eq!(s.last_crawl("market", root).unwrap(), Some(1_000));
    assert_eq!(s.last_crawl("market", "s3://x/").unwrap(), None);

    // A second crawl: new version, one partition gone, a file gone, a file moved.
    let mut t2 = table("market", "ticks", root);
    t2.schema.columns.push(Field::new("venue", DataType::String, true));
    t2.schema_version = 2;
    t2.updated_ms = 2_000;
    let v2 = SchemaVersion {
        version: 2,
        schema: t2.schema.clone(),
        change: "added column venue: string".into(),
        created_ms: 2_000,
        ..v1.clone()
    };
    let changes = Changes {
        database: "market".into(),
        root: root.into(),
        now_ms: 2_000,
        tables: vec![TableChange { record: t2.clone(), new_version: Some(v2.clone()) }],
        partitions: vec![PartitionChanges {
            table: "ticks".into(),
            upsert: vec![PartitionRecord { files: 1, bytes: 123, ..p1.clone() }],
            delete: vec![p2.values.clone()],
        }],
        files_upsert: vec![],
        files_delete: vec![
            "year=2026/month=__HIVE_DEFAULT_PARTITION__/c.parquet".into(),
            "year=2026/month=01/k=a%2Fb.parquet".into(),
        ],
    };
    s.apply(&changes).unwrap();
    assert_eq!(s.get_table("market", "ticks").unwrap().unwrap(), t2);
    assert_eq!(s.history("market", "ticks").unwrap(), [v1.clone(), v2.clone()]);
    assert_eq!(s.partitions("market", "ticks").unwrap(), [PartitionRecord { files: 1, bytes: 123, ..p1.clone() }]);
    assert_eq!(s.table_files("market", "ticks").unwrap().len(), 1);
    assert_eq!(s.file_states("market", root).unwrap().len(), 2);

    // One transaction: a failing change leaves nothing behind.
    let before = s.file_states("market", root).unwrap();
    let failing = Changes {
        database: "market".into(),
        root: root.into(),
        now_ms: 3_000,
        tables: vec![
            TableChange { record: table("market", "good", "s3://lake/ticks/good/"), new_version: None },
            TableChange { record: table("market", "Bad Name", "s3://lake/ticks/bad/"), new_version: None },
        ],
        partitions: vec![],
        files_upsert: vec![file("new.parquet", Some("good"), &[])],
        files_delete: vec![],
    };
    assert!(matches!(s.apply(&failing), Err(StoreError::Invalid(_))));
    assert!(s.get_table("market", "good").unwrap().is_none(), "rolled back");
    assert_eq!(s.file_states("market", root).unwrap(), before);
    assert_eq!(s.last_crawl("market", root).unwrap(), Some(2_000));

    // Registering directly (the sink's table): version 1, the same again, a new version on change.
    let mut reg = table("lake", "sink_ticks", "file:///data/s3/bucket/ticks/");
    reg.format = TableFormat::Csv(CsvDialect { delimiter: b'|', header: true }, Compression::Gzip);
    assert_eq!(s.register_table(&reg).unwrap(), 1);
    assert_eq!(s.register_table(&reg).unwrap(), 1);
    let h = s.history("lake", "sink_ticks").unwrap();
    assert_eq!((h.len(), h[0].change.as_str()), (1, "created (registered)"));
    let got = s.get_table("lake", "sink_ticks").unwrap().unwrap();
    assert_eq!(got.format, reg.format, "formats round-trip");
    reg.schema.columns[2].data_type = DataType::String;
    assert_eq!(s.register_table(&reg).unwrap(), 2);
    assert_eq!(s.history("lake", "sink_ticks").unwrap()[1].change, "changed px double→string");
    assert!(s.register_table(&TableRecord { location: "/no/url/".into(), ..reg.clone() }).is_err());
    assert_eq!(s.list_databases().unwrap(), ["lake", "market"]);
    assert_eq!(
        s.list_tables(None).unwrap().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["sink_ticks", "ticks"]
    );

    // Named queries.
    let q = |db: &str, name: &str, sql: &str| NamedQuery {
        database: db.into(),
        name: name.into(),
        description: format!("{name} please"),
        sql: sql.into(),
    };
    s.save_named_query(&q("market", "vwap", "SELECT 1")).unwrap();
    s.save_named_query(&q("market", "count", "SELECT count(*) FROM ticks")).unwrap();
    s.save_named_query(&q("market", "vwap", "SELECT vwap(px, qty) FROM ticks")).unwrap();
    s.save_named_query(&q("scratch", "x", "SELECT 'it''s ?'")).unwrap();
    let all = s.named_queries(None).unwrap();
    assert_eq!(
        all.iter().map(|q| (q.database.as_str(), q.name.as_str())).collect::<Vec<_>>(),
        [("market", "count"), ("market", "vwap"), ("scratch", "x")]
    );
    assert_eq!(s.named_queries(Some("market")).unwrap()[1].sql, "SELECT vwap(px, qty) FROM ticks", "upserted");
    assert_eq!(s.named_queries(Some("scratch")).unwrap()[0].sql, "SELECT 'it''s ?'");
    assert!(s.list_databases().unwrap().contains(&"scratch".to_string()), "saving creates the database");
    assert!(s.delete_named_query("market", "vwap").unwrap());
    assert!(!s.delete_named_query("market", "vwap").unwrap());
    assert!(s.save_named_query(&q("market", "", "SELECT 1")).is_err());

    // Persistence, and opening again does not migrate twice.
    let again = reopen();
    assert_eq!(again.get_table("market", "ticks").unwrap().unwrap(), t2);
    assert_eq!(again.history("lake", "sink_ticks").unwrap().len(), 2);
    assert_eq!(again.named_queries(None).unwrap().len(), 2);
}

#[test]
fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/folder/catalog.sqlite");
    let url = format!("sqlite://{}", path.display());
    let s = store::open(&url).unwrap();
    assert!(path.exists(), "created with its parent folders");
    suite(s.as_ref(), &|| store::open(path.to_str().unwrap()).unwrap());
    drop(s);
    // WAL journal.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    // A catalog written by a newer ticklake is refused, not misread.
    conn.execute("INSERT INTO schema_migrations (version, description, applied_ms) VALUES (999, 'future', 0)", [])
        .unwrap();
    drop(conn);
    let e = store::open(path.to_str().unwrap()).err().expect("refused");
    assert!(matches!(e, StoreError::TooNew { found: 999, .. }), "{e}");
}

#[test]
fn catalog_urls() {
    assert!(matches!(store::open("mysql://x/y").err(), Some(StoreError::Url { .. })));
    assert!(matches!(store::open("sqlite://").err(), Some(StoreError::Url { .. })));
    let e = store::open("postgres://nobody@127.0.0.1:1/none?connect_timeout=2").err().expect("no server on port 1");
    assert!(matches!(e, StoreError::Postgres(_)), "{e}");
}

#[cfg(feature = "postgres-tests")]
#[test]
fn postgres_store() {
    let admin_url = std::env::var("TICKLAKE_TEST_POSTGRES_URL").expect("TICKLAKE_TEST_POSTGRES_URL (scripts/test.sh)");
    let name = format!(
        "ticklake_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    // Same server and user, the new database.
    let (base, query) =
        admin_url.split_once('?').map(|(b, q)| (b, format!("?{q}"))).unwrap_or((&admin_url, String::new()));
    let url = format!("{}/{name}{query}", &base[..base.rfind('/').unwrap()]);
    {
        let s = store::open(&url).unwrap();
        suite(s.as_ref(), &|| store::open(&url).unwrap());
        drop(s);
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.execute("INSERT INTO schema_migrations (version, description, applied_ms) VALUES (999, 'future', 0)", &[])
            .unwrap();
        let e = store::open(&url).err().expect("refused");
        assert!(matches!(e, StoreError::TooNew { found: 999, .. }), "{e}");
    }
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).unwrap();
}
