//! The sink's landed-batch hook: every object it writes is reported once, with its batch's
//! partition and offsets, and matches what is in the store.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticklake_api::crd::S3SinkSpec;
use ticklake_bus::Bus;
use ticklake_bus::embedded::{EmbeddedLog, LogOptions};
use ticklake_workers::sink::{LandedBatch, Sink, SinkConfig};
use ticklake_workers::store::{LocalStore, ObjectStore, list_all};
use ticklake_workers::telemetry::Telemetry;
use tokio::sync::{mpsc, watch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_landed_object_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = EmbeddedLog::open(&dir.path().join("log"), LogOptions::default()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("s3")).unwrap());
    let stream: ticklake_api::crd::StockStreamSpec = serde_yaml::from_str(
        "topic: ev\npartitions: 3\nsource:\n  simulator:\n    seed: 3\n    ticksPerSecond: 0\n    maxTicks: 6000\n    startTime: \"2026-11-25T14:30:00Z\"\n",
    )
    .unwrap();
    let t = Telemetry::new();
    let (metrics, health) = t.producer("producer/ev");
    let (_ptx, prx) = watch::channel(false);
    let w = ticklake_workers::producer::ProducerWorker {
        name: "ev".into(),
        spec: stream,
        shard: ticklake_sources::Shard::ALL,
        bus: bus.clone(),
        metrics,
        health,
    };
    assert_eq!(w.run(prx).await.unwrap().produced, 6000);

    let spec: S3SinkSpec =
        serde_yaml::from_str("topic: ev\nbucket: lake\nprefix: ticks\nflush:\n  maxRecords: 700\n  intervalMs: 200\n")
            .unwrap();
    let (metrics, health) = t.sink("sink/ev");
    let mut cfg = SinkConfig::from_spec("ev-lake", &spec);
    // A small channel: the sink must wait for the listener, not drop events.
    let (tx, mut rx) = mpsc::channel::<LandedBatch>(1);
    cfg.landed_events = Some(tx);
    let (stop, stop_rx) = watch::channel(false);
    let h = tokio::spawn(Sink::new(cfg, bus, store.clone(), metrics, health).run(stop_rx));
    let mut batches = Vec::new();
    let mut rows = 0;
    let until = Instant::now() + Duration::from_secs(60);
    while rows < 6000 && Instant::now() < until {
        if let Ok(Some(b)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            // Slow listener: the sink waits.
            tokio::time::sleep(Duration::from_millis(20)).await;
            rows += b.objects.iter().filter(|o| !o.dead_letter).map(|o| o.rows).sum::<u64>();
            batches.push(b);
        }
    }
    stop.send(true).unwrap();
    h.await.unwrap().unwrap();
    while let Ok(b) = rx.try_recv() {
        batches.push(b);
    }
    assert_eq!(rows, 6000, "every tick's object reported");
    let reported: Vec<String> = batches.iter().flat_map(|b| b.objects.iter().map(|o| o.key.clone())).collect();
    let unique: BTreeSet<String> = reported.iter().cloned().collect();
    assert_eq!(unique.len(), reported.len(), "no object reported twice");
    let stored: BTreeSet<String> = list_all(store.as_ref(), "ticks/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !k.starts_with("ticks/_ticklake/"))
        .collect();
    assert_eq!(unique, stored, "reported objects are exactly the stored ones");
    for b in &batches {
        assert_eq!(b.sink, "ev-lake");
        assert!(b.first <= b.last && (0..3).contains(&b.partition));
        for o in &b.objects {
            assert!(o.key.contains(&format!("ev+{}+{:020}+{:020}", b.partition, b.first, b.last)), "{}", o.key);
            assert!(o.bytes > 0);
        }
    }
}
