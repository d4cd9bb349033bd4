//! Against a real Apache Kafka broker and a real MinIO (started by `scripts/test.sh`):
//! the S3 store's semantics on MinIO, and exactly-once landing while `ticklake worker sink`
//! processes are SIGKILLed at random moments — with one sink, and with two in one group.
#![cfg(feature = "it")]

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticklake_api::crd::S3Sink;
use ticklake_bus::Bus;
use ticklake_bus::kafka::KafkaBus;
use ticklake_workers::store::{ObjectStore, S3Options, S3Store, list_all};
use ticklake_workers::telemetry::Telemetry;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run these tests through scripts/test.sh, which starts Kafka and MinIO")
    })
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() % 1_000_000_000
    )
}

async fn minio(bucket: &str) -> S3Store {
    let s = S3Store::connect(S3Options {
        bucket: bucket.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(env("TICKLAKE_TEST_S3_ENDPOINT")),
        force_path_style: true,
        max_attempts: Some(3),
    })
    .await
    .unwrap();
    s.ensure_bucket().await.unwrap();
    s
}

#[tokio::test]
async fn minio_store_semantics() {
    let s = minio(&unique("store").to_lowercase()).await;
    assert!(s.put_if_absent("a/claim.json", Bytes::from_static(b"first")).await.unwrap());
    assert!(
        !s.put_if_absent("a/claim.json", Bytes::from_static(b"second")).await.unwrap(),
        "MinIO must refuse a second create"
    );
    assert_eq!(s.get("a/claim.json").await.unwrap().unwrap(), Bytes::from_static(b"first"));
    assert!(s.get("a/none").await.unwrap().is_none());
    assert!(!s.exists("a/none").await.unwrap());
    // Multipart: 40 MiB, above the threshold.
    let big: Vec<u8> = (0..40 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    s.put("a/big.bin", Bytes::from(big.clone())).await.unwrap();
    assert_eq!(s.get("a/big.bin").await.unwrap().unwrap().len(), big.len());
    assert_eq!(s.get("a/big.bin").await.unwrap().unwrap(), Bytes::from(big));
    // Listing pages in key order.
    for i in 0..1205 {
        s.put(&format!("l/{i:05}"), Bytes::from_static(b"x")).await.unwrap();
    }
    let all = list_all(&s, "l/").await.unwrap();
    assert_eq!(all.len(), 1205);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key));
    let after = s.list("l/", Some("l/01000"), 10).await.unwrap();
    assert_eq!(after[0].key, "l/01001");
    s.delete("a/claim.json").await.unwrap();
    assert!(!s.exists("a/claim.json").await.unwrap());
}

fn write_sink_manifest(dir: &Path, topic: &str, bucket: &str) -> std::path::PathBuf {
    let m = format!(
        r#"apiVersion: ticklake.dev/v1alpha1
kind: S3Sink
metadata:
  name: crash
spec:
  topic: {topic}
  consumerGroup: {topic}-sink
  kafka:
    bootstrapServers: "{bootstrap}"
  bucket: {bucket}
  prefix: ticks
  endpoint: "{endpoint}"
  flush:
    maxRecords: 20000
    intervalMs: 300
"#,
        bootstrap = env("TICKLAKE_TEST_KAFKA_BOOTSTRAP"),
        endpoint = env("TICKLAKE_TEST_S3_ENDPOINT"),
    );
    // It must be a valid S3Sink as users would write it.
    let _: S3Sink = serde_yaml::from_str(&m).unwrap();
    let path = dir.join("sink.yaml");
    std::fs::write(&path, m).unwrap();
    path
}

fn spawn_sink(manifest: &Path, log: &Path) -> Child {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ticklake"))
        .args(["worker", "sink", "--create-bucket", "--metrics-addr", "127.0.0.1:0", "--resource"])
        .arg(manifest)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap()
}

async fn produce(bus: Arc<dyn Bus>, topic: String, n: u64, rate: u64) {
    let spec: ticklake_api::crd::StockStreamSpec = serde_yaml::from_str(&format!(
        "topic: {topic}\npartitions: 6\nsource:\n  simulator:\n    ticksPerSecond: {rate}\n    seed: 11\n    maxTicks: {n}\n    startTime: \"2026-11-25T14:30:00Z\"\n"
    ))
    .unwrap();
    let t = Telemetry::new();
    let (metrics, health) = t.producer("producer/crash");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let w = ticklake_workers::producer::ProducerWorker {
        name: "crash".into(),
        spec,
        shard: ticklake_sources::Shard::ALL,
        bus,
        metrics,
        health,
    };
    assert_eq!(w.run(rx).await.unwrap().produced, n);
}

async fn crash_test(sinks: usize) {
    let seed: u64 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("crash schedule seed {seed}");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let topic = unique(&format!("crash{sinks}"));
    let bucket = topic.to_lowercase();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sink_manifest(dir.path(), &topic, &bucket);
    let store = minio(&bucket).await;
    let bus: Arc<dyn Bus> = Arc::new(KafkaBus::new(&env("TICKLAKE_TEST_KAFKA_BOOTSTRAP")).unwrap());
    const N: u64 = 300_000;
    bus.ensure_topic(&topic, 6, 1).await.unwrap();
    // The producer keeps writing while sinks die.
    let producer = tokio::spawn(produce(bus.clone(), topic.clone(), N, 40_000));
    let log = dir.path().join("sinks.log");
    let mut procs: Vec<Child> = (0..sinks).map(|_| spawn_sink(&manifest, &log)).collect();
    let mut kills = 0;
    while kills < 6 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(800..3000))).await;
        let i = rng.random_range(0..sinks);
        procs[i].kill().unwrap(); // SIGKILL
        procs[i].wait().unwrap();
        kills += 1;
        procs[i] = spawn_sink(&manifest, &log);
    }
    producer.await.unwrap();
    let until = Instant::now() + Duration::from_secs(180);
    let stats = loop {
        let s = ticklake_workers::verify::scan(&store, "ticks", "_dead_letters").await.unwrap();
        if s.distinct >= N || Instant::now() > until {
            break s;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for p in &mut procs {
        let _ = Command::new("kill").arg("-TERM").arg(p.id().to_string()).status();
    }
    for p in &mut procs {
        let status = p.wait().unwrap();
        assert!(
            status.success(),
            "sink exited with {status} after SIGTERM; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let after = ticklake_workers::verify::scan(&store, "ticks", "_dead_letters").await.unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        (stats.rows, stats.distinct, stats.duplicates),
        (N, N, 0),
        "kills={kills} {stats:?}\n{}",
        &log_text[log_text.len().saturating_sub(5000)..]
    );
    assert_eq!((after.rows, after.distinct, after.duplicates), (N, N, 0), "{after:?}");
    assert_eq!(after.seq_end.values().sum::<u64>(), N, "per-symbol sequences have holes");
    let claims = list_all(&store, "ticks/_ticklake/claims/").await.unwrap();
    assert!(!claims.is_empty());
    eprintln!(
        "{sinks} sink(s), {kills} SIGKILLs: {} ticks in {} objects, {} claims",
        after.rows,
        after.data_objects,
        claims.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_one_sink_sigkilled() {
    crash_test(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_two_sinks_one_group_sigkilled() {
    crash_test(2).await;
}
