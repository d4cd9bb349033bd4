//! SQL over a table on a real MinIO (`--features s3-tests`; scripts/test.sh starts it and
//! exports TICKLAKE_TEST_S3_ENDPOINT and the credentials): the crawled `s3://` prefix is
//! queried through the read-only object store, with the same answers and pruning as the same
//! files on a local disk, and the store refuses writes.
#![cfg(feature = "s3-tests")]

mod common;

use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use ticklake_catalog::crawler::{CrawlConfig, Location, S3Config, crawl};
use ticklake_query::s3::ReadOnlyS3;
use ticklake_query::{Engine, EngineOptions, QueryOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_table_answers_like_the_same_local_files() {
    let endpoint = std::env::var("TICKLAKE_TEST_S3_ENDPOINT").expect("TICKLAKE_TEST_S3_ENDPOINT (scripts/test.sh)");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake/ticks");
    common::slt_ticks(&local);

    let s3 = ticklake_query::s3::S3Config { endpoint: Some(endpoint.clone()), region: None };
    let client = s3.client().await;
    let bucket = format!(
        "query-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let mut stack = vec![local.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let key = format!("lake/ticks/{}", p.strip_prefix(&local).unwrap().display());
                client
                    .put_object()
                    .bucket(&bucket)
                    .key(key)
                    .body(std::fs::read(&p).unwrap().into())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    let store = common::catalog(dir.path());
    common::crawl(&store, &local, "disk", "ticks").await;
    let cfg = CrawlConfig {
        database: "minio".into(),
        table_name: Some("ticks".into()),
        s3: S3Config { endpoint: Some(endpoint.clone()), ..S3Config::default() },
        ..CrawlConfig::default()
    };
    let loc = Location::parse(&format!("s3://{bucket}/lake/ticks/")).unwrap();
    let summary = crawl(store.clone(), &loc, &cfg).await.unwrap();
    assert!(summary.errors.is_empty(), "{summary}");
    assert!(store.get_table("minio", "ticks").unwrap().unwrap().location.starts_with("s3://"));

    let engine = Engine::new(store, EngineOptions { s3, ..EngineOptions::default() }).unwrap();
    let sql = |db: &str| {
        format!(
            "SELECT symbol, count(*) AS n, max_by(price, event_time) AS last, sum(size) AS volume
             FROM {db}.ticks WHERE day = 24 GROUP BY symbol ORDER BY symbol"
        )
    };
    let q = QueryOptions::default();
    let disk = engine.execute(&sql("disk"), &q).await.unwrap();
    let minio = engine.execute(&sql("minio"), &q).await.unwrap();
    let render = |o: &ticklake_query::QueryOutput| {
        String::from_utf8(ticklake_query::render(&o.batches, &o.schema, ticklake_query::OutputFormat::Csv).unwrap())
            .unwrap()
    };
    assert_eq!(render(&disk), render(&minio));
    assert_eq!(render(&minio), "symbol,n,last,volume\nAAPL,3,101.0,40\nMSFT,3,49.0,200\n");
    assert_eq!((minio.stats.files_scanned, minio.stats.files_pruned), (1, 1));
    assert!(minio.stats.bytes_scanned > 0);

    // The engine's store cannot write.
    let ro = Arc::new(ReadOnlyS3::new(client.clone(), bucket.clone()));
    let e = ro.put(&ObjectPath::from("lake/ticks/evil.parquet"), b"x".to_vec().into()).await.unwrap_err();
    assert!(matches!(e, object_store::Error::NotSupported { .. }), "{e}");
    let listed = client.list_objects_v2().bucket(&bucket).prefix("lake/ticks/evil").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
}
