//! The sink end to end on the embedded log and a local directory: every tick lands exactly
//! once, hostile messages become dead letters, and crashes (tasks aborted mid-flight at random
//! moments) neither lose nor duplicate a tick.

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticklake_api::crd::{S3SinkSpec, SimulatorSpec, SourceSpec, StockStreamSpec};
use ticklake_api::tick::{Tick, TickBody};
use ticklake_bus::embedded::{EmbeddedLog, LogOptions};
use ticklake_bus::{Bus, OutRecord};
use ticklake_workers::producer::ProducerWorker;
use ticklake_workers::sink::encode::base64_decode;
use ticklake_workers::sink::{Sink, SinkConfig};
use ticklake_workers::store::{LocalStore, ObjectStore, list_all};
use ticklake_workers::telemetry::Telemetry;
use ticklake_workers::verify;
use tokio::sync::watch;

fn sink_spec(topic: &str, yaml_extra: &str) -> S3SinkSpec {
    serde_yaml::from_str(&format!(
        "topic: {topic}\nbucket: lake\nprefix: ticks\nflush:\n  maxRecords: 2500\n  intervalMs: 200\n{yaml_extra}"
    ))
    .unwrap()
}

fn stream_spec(topic: &str, max_ticks: u64) -> StockStreamSpec {
    StockStreamSpec {
        source: SourceSpec {
            simulator: Some(SimulatorSpec {
                symbols: vec![],
                ticks_per_second: 0,
                seed: 7,
                quote_ratio: 0.5,
                start_time: Some("2026-11-25T14:30:00Z".into()),
                max_ticks: Some(max_ticks),
            }),
            replay: None,
        },
        kafka: Default::default(),
        topic: topic.into(),
        partitions: 4,
        replication_factor: 1,
        replicas: 1,
        compression: Default::default(),
        resources: None,
        topic_deletion_policy: Default::default(),
    }
}

async fn produce(bus: Arc<dyn Bus>, topic: &str, n: u64) {
    let t = Telemetry::new();
    let (metrics, health) = t.producer("producer/test");
    let (_tx, rx) = watch::channel(false);
    let w = ProducerWorker {
        name: "test".into(),
        spec: stream_spec(topic, n),
        shard: ticklake_sources::Shard::ALL,
        bus,
        metrics,
        health,
    };
    let s = w.run(rx).await.unwrap();
    assert_eq!(s.produced, n);
}

fn start_sink(
    bus: Arc<dyn Bus>,
    store: Arc<dyn ObjectStore>,
    spec: &S3SinkSpec,
    name: &str,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<Result<ticklake_workers::sink::SinkSummary, ticklake_workers::sink::SinkError>>,
) {
    let t = Telemetry::new();
    let (metrics, health) = t.sink(name);
    let mut cfg = SinkConfig::from_spec("test", spec);
    cfg.writer = name.to_string();
    let (tx, rx) = watch::channel(false);
    let h = tokio::spawn(Sink::new(cfg, bus, store, metrics, health).run(rx));
    (tx, h)
}

async fn wait_for_rows(store: &dyn ObjectStore, want: u64, deadline: Duration) -> verify::LakeStats {
    let until = Instant::now() + deadline;
    loop {
        let s = verify::scan(store, "ticks", "_dead_letters").await.unwrap();
        if s.distinct >= want || Instant::now() > until {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_lands_once_in_hive_folders() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = EmbeddedLog::open(&dir.path().join("log"), LogOptions::default()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("s3")).unwrap());
    const N: u64 = 30_000;
    produce(bus.clone(), "ticks", N).await;
    let (stop, h) = start_sink(bus.clone(), store.clone(), &sink_spec("ticks", ""), "sink-a");
    let s = wait_for_rows(store.as_ref(), N, Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    h.await.unwrap().unwrap();
    assert_eq!((s.rows, s.distinct, s.duplicates), (N, N, 0), "{s:?}");
    assert!(s.claims > 0);
    for o in list_all(store.as_ref(), "ticks/").await.unwrap() {
        if o.key.starts_with("ticks/_ticklake/") {
            continue;
        }
        let re_ok = o.key.starts_with("ticks/year=2026/month=11/day=25/hour=") && o.key.ends_with(".parquet");
        assert!(re_ok, "unexpected object {}", o.key);
    }
    // Every tick kept its content: sequence numbers per symbol are 0..n without holes.
    let total: u64 = s.seq_end.values().sum();
    assert_eq!(total, N, "per-symbol sequences have holes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_become_dead_letters_and_good_rows_land() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = EmbeddedLog::open(&dir.path().join("log"), LogOptions::default()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("s3")).unwrap());
    bus.ensure_topic("hostile", 2, 1).await.unwrap();
    let producer = bus.producer("hostile").await.unwrap();
    let hostile: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"[]".to_vec(),
        vec![0xff, 0x00, 0xfe],
        br#"{"v":1,"kind":"trade","symbol":"AAPL","ts_us":1764081000000000,"seq":1}"#.to_vec(),
        br#"{"v":1,"kind":"trade","symbol":"AAPL","ts_us":"soon","seq":2,"price":1,"size":1}"#.to_vec(),
        br#"{"v":1,"kind":"trade","symbol":"AAPL","ts_us":1764081000000000,"seq":3,"price":"NaN","size":1}"#.to_vec(),
        br#"{"v":1,"kind":"trade","symbol":"AAPL","ts_us":1764081000000000,"seq":4,"price":-5.0,"size":1}"#.to_vec(),
        br#"{"v":1,"kind":"trade","symbol":"AAPL","ts_us":1764081000000000,"seq":5,"price":5.0,"size":-1}"#.to_vec(),
        br#"{"v":9,"kind":"trade","symbol":"AAPL","ts_us":1764081000000000,"seq":6,"price":5.0,"size":1}"#.to_vec(),
        {
            let mut big = br#"{"v":1,"kind":"trade","symbol":"AAPL","ts_us":1764081000000000,"seq":7,"price":5.0,"size":1,"pad":""#.to_vec();
            big.extend(std::iter::repeat_n(b'x', 100_000));
            big.extend(b"\"}");
            big
        },
    ];
    let codes = [
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "missing_field",
        "wrong_type",
        "non_finite",
        "negative_price",
        "negative_size",
        "unsupported_version",
        "oversized",
    ];
    let mut batch = Vec::new();
    let mut good = 0u64;
    for (i, h) in hostile.iter().enumerate() {
        // Good rows around every bad one.
        for k in 0..3u64 {
            let t = Tick {
                symbol: "MSFT".into(),
                ts_us: 1_764_081_000_000_000 + (i as i64) * 1000 + k as i64,
                seq: good,
                body: TickBody::Trade { price: 400.0, size: 10 },
            };
            good += 1;
            batch.push(OutRecord {
                key: Some(Bytes::from_static(b"MSFT")),
                value: Bytes::from(t.encode()),
                timestamp_ms: 0,
                partition: Some(0),
            });
        }
        batch.push(OutRecord { key: None, value: Bytes::from(h.clone()), timestamp_ms: 0, partition: Some(0) });
    }
    producer.send_batch(batch).await.unwrap();
    let (stop, h) = start_sink(bus.clone(), store.clone(), &sink_spec("hostile", ""), "sink-h");
    let s = wait_for_rows(store.as_ref(), good, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    let summary = h.await.unwrap().unwrap();
    assert_eq!((s.rows, s.distinct, s.duplicates), (good, good, 0));
    assert_eq!(summary.dead_letters, hostile.len() as u64);
    // Read the dead letters back: reason, offset and the exact raw bytes.
    let mut letters = Vec::new();
    for o in list_all(store.as_ref(), "ticks/_dead_letters/").await.unwrap() {
        let body = store.get(&o.key).await.unwrap().unwrap();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            letters.push(serde_json::from_slice::<ticklake_workers::sink::encode::DeadLetter>(line).unwrap());
        }
    }
    letters.sort_by_key(|d| d.offset);
    assert_eq!(letters.len(), hostile.len());
    for (i, d) in letters.iter().enumerate() {
        assert_eq!(d.reason, codes[i], "letter {i}: {d:?}");
        assert_eq!(base64_decode(&d.value_base64).unwrap(), hostile[i]);
        assert_eq!(d.offset, (i as i64) * 4 + 3, "offset of letter {i}");
        assert_eq!(d.topic, "hostile");
        assert!(!d.detail.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_claimed_batch_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = EmbeddedLog::open(&dir.path().join("log"), LogOptions::default()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("s3")).unwrap());
    const N: u64 = 5_000;
    produce(bus.clone(), "ticks", N).await;
    let spec = sink_spec("ticks", "");
    let (stop, h) = start_sink(bus.clone(), store.clone(), &spec, "sink-1");
    let s = wait_for_rows(store.as_ref(), N, Duration::from_secs(30)).await;
    stop.send(true).unwrap();
    h.await.unwrap().unwrap();
    assert_eq!(s.distinct, N);
    // Simulate a crash mid-upload: the last claim of partition 0 stays, one of its objects goes,
    // and the Kafka commit never happened.
    let claims = list_all(store.as_ref(), "ticks/_ticklake/claims/ticks/00000/").await.unwrap();
    let last = claims.last().unwrap();
    let claim: ticklake_workers::sink::claim::Claim =
        serde_json::from_slice(&store.get(&last.key).await.unwrap().unwrap()).unwrap();
    store.delete(&claim.objects[0].key).await.unwrap();
    let mut c = bus.consumer("ticks", "ticklake-sink-test").await.unwrap();
    // Wait for our assignment, then rewind the committed offset to the claim's first.
    let until = Instant::now() + Duration::from_secs(10);
    while c.assignment().is_empty() && Instant::now() < until {
        let _ = c.poll(1, Duration::from_millis(100)).await.unwrap();
    }
    c.commit(&[(0, claim.first)]).await.unwrap();
    c.close().await.unwrap();
    drop(c);
    let missing = verify::scan(store.as_ref(), "ticks", "_dead_letters").await.unwrap();
    assert!(missing.distinct < N, "the deleted object held ticks");
    let (stop, h) = start_sink(bus.clone(), store.clone(), &spec, "sink-2");
    let s = wait_for_rows(store.as_ref(), N, Duration::from_secs(30)).await;
    stop.send(true).unwrap();
    h.await.unwrap().unwrap();
    assert_eq!((s.rows, s.distinct, s.duplicates), (N, N, 0), "{s:?}");
}

/// Two sinks in one group, each killed (its task aborted mid-flight, like a SIGKILL) at random
/// moments and restarted, while the producer keeps writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_when_two_sinks_crash_repeatedly() {
    let seed: u64 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("crash schedule seed {seed}");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = EmbeddedLog::open(&dir.path().join("log"), LogOptions::default()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("s3")).unwrap());
    const N: u64 = 60_000;
    let spec = sink_spec("ticks", "");
    let producer = tokio::spawn(produce(bus.clone(), "ticks", N));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut sinks =
        vec![start_sink(bus.clone(), store.clone(), &spec, "a"), start_sink(bus.clone(), store.clone(), &spec, "b")];
    for kill in 0..8 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..600))).await;
        let victim = rng.random_range(0..2);
        let name = if victim == 0 { "a" } else { "b" };
        let (tx, h) = std::mem::replace(
            &mut sinks[victim],
            start_sink(bus.clone(), store.clone(), &spec, &format!("{name}{kill}")),
        );
        h.abort();
        let _ = h.await;
        drop(tx);
    }
    producer.await.unwrap();
    let s = wait_for_rows(store.as_ref(), N, Duration::from_secs(60)).await;
    for (tx, h) in sinks {
        tx.send(true).unwrap();
        h.await.unwrap().unwrap();
    }
    let s2 = verify::scan(store.as_ref(), "ticks", "_dead_letters").await.unwrap();
    assert_eq!((s.distinct, s.duplicates), (N, 0), "{s:?}");
    assert_eq!((s2.rows, s2.distinct, s2.duplicates), (N, N, 0), "after shutdown: {s2:?}");
}
