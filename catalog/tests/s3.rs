//! The crawl of an S3 prefix on a real MinIO (`--features s3-tests`; scripts/test.sh starts it
//! and exports TICKLAKE_TEST_S3_ENDPOINT and the credentials): the same tree crawled from a
//! local folder and from MinIO gives the same catalog, only ranged reads happen (the bytes
//! fetched are the same samples and footers as locally), and a recrawl goes by ETags.
#![cfg(feature = "s3-tests")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{lake_fixtures, parquet_ticks, write};
use ticklake_catalog::GroupOptions;
use ticklake_catalog::crawler::{CrawlConfig, CrawlSummary, Location, S3Config, crawl};
use ticklake_catalog::store::{self, Store};

fn files_under(root: &Path, rel: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        let name = format!("{rel}{}", e.file_name().to_str().unwrap());
        if e.file_type().unwrap().is_dir() {
            files_under(root, &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

/// What must agree between the two crawls: everything but the root URL.
fn catalog_view(store: &dyn Store, db: &str, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    for mut t in store.list_tables(Some(db)).unwrap() {
        t.properties.remove("ticklake.crawl_root");
        let rel = |u: &str| u.strip_prefix(root).unwrap_or_else(|| panic!("{u} not under {root}")).to_string();
        out.push(format!(
            "table {} at {:?}: {} v{} {:?} {:?} {:?}",
            t.name,
            rel(&t.location),
            t.format,
            t.schema_version,
            t.schema,
            t.partition_keys,
            t.properties
        ));
        for p in store.partitions(db, &t.name).unwrap() {
            out.push(format!("  partition {:?} at {} files {} bytes {}", p.values, rel(&p.location), p.files, p.bytes));
        }
        for f in store.table_files(db, &t.name).unwrap() {
            out.push(format!("  file {} {} {:?}", rel(&f.url), f.size, f.partition_values));
        }
    }
    out
}

#[test]
fn an_s3_prefix_crawls_like_the_same_local_tree() {
    let endpoint = std::env::var("TICKLAKE_TEST_S3_ENDPOINT").expect("TICKLAKE_TEST_S3_ENDPOINT (scripts/test.sh)");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    lake_fixtures(&root);
    // Big files: only their samples (and the Parquet footer) may be fetched.
    let big: String = (0..40_000).map(|i| format!("{{\"id\":{i},\"msg\":\"event number {i} of many\"}}\n")).collect();
    write(&root, "events/big.jsonl", &big);
    write(&root, "ticks/year=2026/month=11/day=25/hour=22/big.parquet", parquet_ticks(100_000, 8));
    let mut rels = Vec::new();
    files_under(&root, "", &mut rels);
    rels.sort();
    let total: u64 = rels.iter().map(|r| std::fs::metadata(root.join(r)).unwrap().len()).sum();
    assert!(std::fs::metadata(root.join("events/big.jsonl")).unwrap().len() > 1_000_000);
    assert!(
        std::fs::metadata(root.join("ticks/year=2026/month=11/day=25/hour=22/big.parquet")).unwrap().len() > 200_000
    );

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bucket = format!(
        "catalog-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    let client = rt.block_on(async {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        client.create_bucket().bucket(&bucket).send().await.unwrap();
        for r in &rels {
            let body = std::fs::read(root.join(r)).unwrap();
            client.put_object().bucket(&bucket).key(format!("data/lake/{r}")).body(body.into()).send().await.unwrap();
        }
        client
    });

    let store: Arc<dyn Store> = Arc::from(store::open(dir.path().join("c.sqlite").to_str().unwrap()).unwrap());
    let group = GroupOptions { exclusions: vec!["tmp/**".into(), "**.bak".into()], ..GroupOptions::default() };
    let local_cfg = CrawlConfig { database: "local".into(), group: group.clone(), ..CrawlConfig::default() };
    let s3_cfg = CrawlConfig {
        database: "remote".into(),
        group,
        s3: S3Config { endpoint: Some(endpoint.clone()), ..S3Config::default() },
        concurrency: 4,
        ..CrawlConfig::default()
    };
    let local_loc = Location::parse(root.to_str().unwrap()).unwrap();
    let s3_loc = Location::parse(&format!("s3://{bucket}/data/lake/")).unwrap();
    let run = |loc: &Location, cfg: &CrawlConfig| -> CrawlSummary {
        let s = rt.block_on(crawl(store.clone(), loc, cfg)).unwrap();
        eprintln!("{s}");
        s
    };
    let local = run(&local_loc, &local_cfg);
    let remote = run(&s3_loc, &s3_cfg);

    // The same catalog.
    let (lv, rv) = (
        catalog_view(store.as_ref(), "local", &local_loc.url()),
        catalog_view(store.as_ref(), "remote", &s3_loc.url()),
    );
    assert!(lv.len() > 10, "{lv:#?}");
    assert_eq!(lv, rv);
    assert_eq!((remote.files_listed, remote.read, remote.excluded), (local.files_listed, local.read, local.excluded));
    assert_eq!(remote.tables_created, local.tables_created);
    assert_eq!(remote.partitions_added, local.partitions_added);
    let paths = |s: &CrawlSummary| {
        let mut v: Vec<String> =
            s.set_aside.iter().map(|x| x.path.clone()).chain(s.errors.iter().map(|e| e.path.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(paths(&remote), paths(&local));

    // Ranged reads only: the same bytes as the local reads, a small part of the tree.
    assert_eq!(remote.bytes_fetched, local.bytes_fetched);
    assert!(remote.bytes_fetched < total / 4, "fetched {} of {total} bytes", remote.bytes_fetched);
    assert!(remote.bytes_fetched <= remote.read as u64 * 128 * 1024);
    eprintln!("fetched {} of {total} bytes in {} files", remote.bytes_fetched, remote.read);

    // Recrawl: ETags say nothing changed; a rewritten object is read again.
    let again = run(&s3_loc, &s3_cfg);
    assert_eq!((again.read, again.skipped, again.bytes_fetched), (0, remote.read, 0));
    rt.block_on(async {
        let body =
            b"{\"order_id\":1,\"sym\":\"AAPL\",\"qty\":3,\"px\":1.0,\"at\":\"2024-01-01T10:00:00Z\",\"venue\":\"X\"}\n"
                .to_vec();
        let key = "data/lake/sales/year=2024/month=01/day=01/part-0.json";
        client.put_object().bucket(&bucket).key(key).body(body.into()).send().await.unwrap();
    });
    let changed = run(&s3_loc, &s3_cfg);
    assert_eq!(changed.read, 1);
    assert_eq!(changed.schema_changes.len(), 1, "{changed}");
    assert!(changed.schema_changes[0].contains("added column venue: string"), "{changed}");
    let t: BTreeMap<String, u32> =
        store.list_tables(Some("remote")).unwrap().into_iter().map(|t| (t.name, t.schema_version)).collect();
    assert_eq!(t["sales"], 2);
}
