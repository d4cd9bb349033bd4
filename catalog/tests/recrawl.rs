//! The incremental crawl driver on a local tree and a SQLite catalog: what a recrawl reads,
//! the versions a drifted file makes (policy update) or does not (policy log), deprecated
//! tables, the trigger.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::write;
use ticklake_catalog::crawler::{CrawlConfig, CrawlSummary, Location, Recrawler, SchemaChangePolicy, crawl};
use ticklake_catalog::store::{self, Store};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn orders(root: &Path, month: &str, name: &str, n: usize) {
    let rows: String =
        (0..n).map(|i| format!("{{\"id\":{i},\"qty\":{},\"px\":10.5,\"sym\":\"AAPL\"}}\n", i + 1)).collect();
    write(root, &format!("orders/year=2026/month={month}/{name}"), rows);
}

fn customers(root: &Path, name: &str, extra: bool) {
    let vip = if extra { ",\"vip\":true" } else { "" };
    write(
        root,
        &format!("customers/{name}"),
        format!("{{\"cid\":1,\"name\":\"ann\",\"email\":\"a@x\",\"city\":\"Oslo\"{vip}}}\n"),
    );
}

fn products(root: &Path) {
    write(root, "products/p.csv", "sku,title,weight\nA1,chair,4.5\nB2,table,20.0\n");
}

fn run(store: &Arc<dyn Store>, root: &Path, cfg: &CrawlConfig) -> CrawlSummary {
    let s = rt().block_on(crawl(store.clone(), &Location::parse(root.to_str().unwrap()).unwrap(), cfg)).unwrap();
    eprintln!("{s}");
    s
}

#[test]
fn recrawls_read_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    orders(&root, "01", "a.json", 3);
    orders(&root, "02", "b.json", 2);
    customers(&root, "c1.json", false);
    customers(&root, "c2.json", false);
    products(&root);
    write(&root, "orders/_SUCCESS", "");
    write(&root, "notes.txt", "just words\n");
    let store: Arc<dyn Store> = Arc::from(store::open(dir.path().join("catalog.sqlite").to_str().unwrap()).unwrap());
    let cfg = CrawlConfig { database: "shop".into(), ..CrawlConfig::default() };

    // First crawl: everything read.
    let s = run(&store, &root, &cfg);
    assert_eq!((s.files_listed, s.read, s.skipped, s.hidden), (6, 6, 0, 1));
    assert_eq!(s.tables_created, ["customers", "orders", "products"]);
    assert_eq!(s.partitions_added, 2);
    assert_eq!(s.errors.len(), 1, "notes.txt is not data: {:?}", s.errors);
    assert!(s.errors[0].path == "notes.txt");
    assert!(s.bytes_fetched > 0);
    let t = store.get_table("shop", "orders").unwrap().unwrap();
    let root_url = Location::parse(root.to_str().unwrap()).unwrap().url();
    assert_eq!(t.location, format!("{root_url}orders/"));
    let keys: Vec<String> = t.partition_keys.iter().map(|k| format!("{} {}", k.name, k.data_type)).collect();
    assert_eq!(keys, ["year int", "month string"], "month=01 is not canonical: a string");
    let files = store.table_files("shop", "orders").unwrap();
    assert_eq!(files[0].url, format!("{root_url}orders/year=2026/month=01/a.json"));
    assert_eq!(files[0].partition_values, [Some("2026".to_string()), Some("01".to_string())]);
    assert_eq!(t.properties["classification"], "json");
    assert_eq!(t.properties["ticklake.files"], "2");

    // Nothing changed: nothing read, nothing written.
    let s = run(&store, &root, &cfg);
    assert_eq!((s.read, s.skipped), (0, 6));
    assert!(s.tables_created.is_empty() && s.tables_updated.is_empty() && s.tables_deprecated.is_empty());
    assert_eq!(s.errors.len(), 1, "a stored problem is still reported");

    // A new file in a new partition: one read.
    orders(&root, "03", "c.json", 1);
    let s = run(&store, &root, &cfg);
    assert_eq!((s.read, s.skipped, s.partitions_added), (1, 6, 1));
    assert_eq!(s.tables_updated, ["orders"]);
    assert_eq!(store.partitions("shop", "orders").unwrap().len(), 3);
    assert_eq!(store.get_table("shop", "orders").unwrap().unwrap().schema_version, 1, "same schema");

    // A changed file (a drifted schema): read again, version 2 with the change.
    customers(&root, "c2.json", true);
    let s = run(&store, &root, &cfg);
    assert_eq!((s.read, s.skipped), (1, 6));
    assert_eq!(s.schema_changes, ["table `customers` version 2: added column vip: boolean"]);
    let h = store.history("shop", "customers").unwrap();
    assert_eq!(
        h.iter().map(|v| (v.version, v.change.as_str())).collect::<Vec<_>>(),
        [(1, "created"), (2, "added column vip: boolean")]
    );
    assert!(h[1].schema.column("vip").unwrap().nullable);

    // A table's files all gone: deprecated, its files dropped; the others untouched.
    std::fs::remove_dir_all(root.join("customers")).unwrap();
    let s = run(&store, &root, &cfg);
    assert_eq!((s.read, s.vanished), (0, 2));
    assert_eq!(s.tables_deprecated, ["customers"]);
    let c = store.get_table("shop", "customers").unwrap().unwrap();
    assert!(c.deprecated);
    assert_eq!(c.schema_version, 2, "kept");
    assert!(store.table_files("shop", "customers").unwrap().is_empty());
    assert!(!store.get_table("shop", "orders").unwrap().unwrap().deprecated);
    assert_eq!(store.file_states("shop", &root_url).unwrap().len(), 5);

    // Back again: no longer deprecated.
    customers(&root, "c1.json", false);
    let s = run(&store, &root, &cfg);
    assert_eq!(s.tables_updated, ["customers"]);
    assert!(!store.get_table("shop", "customers").unwrap().unwrap().deprecated);
}

#[test]
fn policy_log_keeps_the_schema_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ticks");
    write(&root, "year=2026/a.json", "{\"sym\":\"AAPL\",\"px\":1.5,\"qty\":1}\n");
    let store: Arc<dyn Store> = Arc::from(store::open(dir.path().join("c.sqlite").to_str().unwrap()).unwrap());
    let cfg = CrawlConfig {
        database: "market".into(),
        table_name: Some("trades".into()),
        policy: SchemaChangePolicy::Log,
        ..CrawlConfig::default()
    };
    let s = run(&store, &root, &cfg);
    assert_eq!(s.tables_created, ["trades"], "the root table takes the configured name");
    write(&root, "year=2027/b.json", "{\"sym\":\"MSFT\",\"px\":2.5,\"qty\":2,\"venue\":\"XNAS\"}\n");
    let s = run(&store, &root, &cfg);
    assert!(s.schema_changes.is_empty());
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("schema change not applied (schema change policy log): added column venue: string"));
    assert!(s.to_string().contains("warning: table `trades`: schema change not applied"));
    let t = store.get_table("market", "trades").unwrap().unwrap();
    assert_eq!((t.schema_version, t.schema.columns.len()), (1, 3));
    assert_eq!(store.history("market", "trades").unwrap().len(), 1);
    assert_eq!(s.partitions_added, 1, "partitions are still added");
    assert_eq!(store.table_files("market", "trades").unwrap().len(), 2);
    // The same change under update: version 2.
    let s = run(&store, &root, &CrawlConfig { policy: SchemaChangePolicy::Update, ..cfg });
    assert_eq!(s.schema_changes, ["table `trades` version 2: added column venue: string"]);
}

#[test]
fn the_trigger_recrawls_after_commits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ticks");
    write(&root, "a.json", "{\"sym\":\"AAPL\",\"px\":1.5}\n");
    let store: Arc<dyn Store> = Arc::from(store::open(dir.path().join("c.sqlite").to_str().unwrap()).unwrap());
    let rt = rt();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let r = Recrawler::spawn(
            store.clone(),
            Location::parse(root.to_str().unwrap()).unwrap(),
            CrawlConfig::default(),
            move |res| {
                let _ = tx.send(res.map(|s| (s.read, s.skipped)).map_err(|e| e.to_string()));
            },
        );
        r.objects_committed();
        assert_eq!(rx.recv().await.unwrap().unwrap(), (1, 0));
        write(&root, "b.json", "{\"sym\":\"MSFT\",\"px\":2.5}\n");
        r.objects_committed();
        assert_eq!(rx.recv().await.unwrap().unwrap(), (1, 1));
    });
    let t = store.get_table("default", "ticks").unwrap().unwrap();
    assert_eq!(t.properties["ticklake.files"], "2");
}
