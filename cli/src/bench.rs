//! `ticklake bench`: figures, not tests. BENCHMARKS.md says how to run them and what they gave.
//!
//! * `simulator` — ticks/s the simulator generates and encodes as JSON (one core);
//! * `produce` — ticks/s the producer worker gets acknowledged by a bus;
//! * `sink` — ticks/s one sink worker lands from a pre-filled topic into the store, and bytes
//!   per tick in the objects;
//! * `freshness` — producer at a fixed rate, one sink with a 1 s flush: produced → object
//!   visible, p50/p99;
//! * `sql`, `crawl` — the catalog and SQL figures of issue #5 (see [`crate::bench_sql`]).
//!
//! Without `--bootstrap` the embedded log is the bus; without `--endpoint` a temporary local
//! folder is the store.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticklake_api::crd::{S3SinkSpec, StockStreamSpec};
use ticklake_bus::Bus;
use ticklake_bus::embedded::{EmbeddedLog, LogOptions};
use ticklake_workers::producer::ProducerWorker;
use ticklake_workers::sink::{Sink, SinkConfig};
use ticklake_workers::store::{ObjectStore, S3Options, S3Store};
use ticklake_workers::telemetry::Telemetry;
use tokio::sync::watch;

#[derive(Args)]
pub struct BenchArgs {
    /// `simulator`, `produce`, `sink`, `freshness`, `sql` or `crawl`.
    which: String,
    /// Ticks to generate (default: 2,000,000; `sql`: 100,000,000).
    #[arg(long)]
    ticks: Option<u64>,
    /// Kafka bootstrap servers; absent: the embedded log.
    #[arg(long)]
    bootstrap: Option<String>,
    /// S3 endpoint (e.g. MinIO); absent: a temporary local folder.
    #[arg(long)]
    endpoint: Option<String>,
    /// Ticks per second for `freshness`.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Seconds `freshness` runs.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// `sql`, `crawl`: where the data set is generated (once) and reused.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// `sql`: runs of the query per engine (the first is cold).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// `sql`: a Python with the `duckdb` package, to compare with DuckDB in the same run.
    #[arg(long, env = "TICKLAKE_DUCKDB_PYTHON")]
    duckdb_python: Option<std::path::PathBuf>,
    /// `sql`: threads both engines use (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// `crawl`: JSON files to crawl.
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// `crawl`: their total size in bytes.
    #[arg(long, default_value_t = 1_000_000_000)]
    bytes: u64,
}

fn stream(topic: &str, n: u64, rate: u64) -> Result<StockStreamSpec> {
    Ok(serde_yaml::from_str(&format!(
        "topic: {topic}\npartitions: 6\nsource:\n  simulator:\n    ticksPerSecond: {rate}\n    seed: 1\n    maxTicks: {n}\n    startTime: \"2026-11-25T14:30:00Z\"\n"
    ))?)
}

fn unique(p: &str) -> String {
    format!("{p}-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs())
}

struct Env {
    bus: Arc<dyn Bus>,
    store: Arc<dyn ObjectStore>,
    _tmp: tempfile::TempDir,
}

async fn env(args: &BenchArgs, bucket: &str) -> Result<Env> {
    let tmp = tempfile::tempdir()?;
    let bus: Arc<dyn Bus> = match &args.bootstrap {
        Some(b) => Arc::new(ticklake_bus::kafka::KafkaBus::new(b)?),
        None => EmbeddedLog::open(&tmp.path().join("log"), LogOptions::default())?,
    };
    let store: Arc<dyn ObjectStore> = match &args.endpoint {
        Some(e) => {
            let s = S3Store::connect(S3Options {
                bucket: bucket.into(),
                region: Some("us-east-1".into()),
                endpoint: Some(e.clone()),
                force_path_style: true,
                max_attempts: None,
            })
            .await?;
            s.ensure_bucket().await?;
            Arc::new(s)
        }
        None => Arc::new(ticklake_workers::store::LocalStore::new(tmp.path().join("s3"))?),
    };
    Ok(Env { bus, store, _tmp: tmp })
}

async fn produce(bus: Arc<dyn Bus>, spec: StockStreamSpec) -> Result<(u64, Duration)> {
    let t = Telemetry::new();
    let (metrics, health) = t.producer("producer/bench");
    let (_tx, rx) = watch::channel(false);
    let w = ProducerWorker { name: "bench".into(), spec, shard: ticklake_sources::Shard::ALL, bus, metrics, health };
    let t0 = Instant::now();
    let s = w.run(rx).await?;
    Ok((s.produced, t0.elapsed()))
}

fn sink_spec(topic: &str, max_records: u64, interval_ms: u64) -> Result<S3SinkSpec> {
    Ok(serde_yaml::from_str(&format!(
        "topic: {topic}\nconsumerGroup: {topic}-bench\nbucket: bench\nprefix: ticks\nflush:\n  maxRecords: {max_records}\n  intervalMs: {interval_ms}\n"
    ))?)
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let ticks = args.ticks.unwrap_or(2_000_000);
    match args.which.as_str() {
        "sql" => {
            return crate::bench_sql::sql(crate::bench_sql::SqlBenchArgs {
                ticks: args.ticks.unwrap_or(100_000_000),
                dir: args.dir.clone().unwrap_or_else(|| "/var/tmp/ticklake-bench/sql".into()),
                runs: args.runs,
                duckdb_python: args.duckdb_python.clone(),
                threads: args.threads,
            })
            .await;
        }
        "crawl" => {
            return crate::bench_sql::crawl(crate::bench_sql::CrawlBenchArgs {
                files: args.files,
                bytes: args.bytes,
                dir: args.dir.clone().unwrap_or_else(|| "/var/tmp/ticklake-bench/crawl".into()),
            })
            .await;
        }
        "simulator" => {
            let spec = stream("bench", ticks, 0)?;
            let mut src = ticklake_sources::Source::from_spec(&spec.source, ticklake_sources::Shard::ALL, 0)?;
            let mut buf = Vec::with_capacity(10_000);
            let mut bytes = Vec::with_capacity(256);
            let (mut n, mut total_bytes) = (0u64, 0u64);
            let t0 = Instant::now();
            loop {
                buf.clear();
                let o = src.next_batch(&mut buf, 10_000)?;
                for t in &buf {
                    bytes.clear();
                    t.encode_into(&mut bytes);
                    total_bytes += bytes.len() as u64;
                }
                n += buf.len() as u64;
                if o.finished {
                    break;
                }
            }
            let s = t0.elapsed().as_secs_f64();
            println!(
                "simulator+json: {n} ticks in {s:.2} s = {:.0} ticks/s, {:.1} bytes/message",
                n as f64 / s,
                total_bytes as f64 / n as f64
            );
        }
        "produce" => {
            let topic = unique("bench-produce");
            let e = env(&args, "bench").await?;
            let (n, d) = produce(e.bus.clone(), stream(&topic, ticks, 0)?).await?;
            println!(
                "producer: {n} ticks acknowledged in {:.2} s = {:.0} ticks/s",
                d.as_secs_f64(),
                n as f64 / d.as_secs_f64()
            );
        }
        "sink" => {
            let topic = unique("bench-sink");
            let e = env(&args, &topic.to_lowercase()).await?;
            let (n, d) = produce(e.bus.clone(), stream(&topic, ticks, 0)?).await?;
            println!(
                "pre-filled {topic}: {n} ticks in {:.2} s ({:.0} ticks/s)",
                d.as_secs_f64(),
                n as f64 / d.as_secs_f64()
            );
            let t = Telemetry::new();
            let (metrics, health) = t.sink("sink/bench");
            let cfg = SinkConfig::from_spec("bench", &sink_spec(&topic, 250_000, 1000)?);
            let (tx, rx) = watch::channel(false);
            let records = metrics.records.clone();
            let t0 = Instant::now();
            let h = tokio::spawn(Sink::new(cfg, e.bus.clone(), e.store.clone(), metrics, health).run(rx));
            while records.get() < n {
                if h.is_finished() {
                    bail!("sink stopped early");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let d = t0.elapsed();
            tx.send(true).ok();
            h.await?.context("sink")?;
            let stats = ticklake_workers::verify::scan(e.store.as_ref(), "ticks", "_dead_letters").await?;
            println!(
                "sink: {n} ticks landed in {:.2} s = {:.0} ticks/s; {} objects, {} bytes = {:.2} bytes/tick; distinct {} duplicates {}",
                d.as_secs_f64(),
                n as f64 / d.as_secs_f64(),
                stats.data_objects,
                stats.data_bytes,
                stats.data_bytes as f64 / stats.rows.max(1) as f64,
                stats.distinct,
                stats.duplicates
            );
        }
        "freshness" => {
            let topic = unique("bench-fresh");
            let e = env(&args, &topic.to_lowercase()).await?;
            let n = args.rate * args.seconds;
            e.bus.ensure_topic(&topic, 6, 1).await?;
            let t = Telemetry::new();
            let (metrics, health) = t.sink("sink/bench");
            let cfg = SinkConfig::from_spec("bench", &sink_spec(&topic, 2_000_000, 1000)?);
            let (tx, rx) = watch::channel(false);
            let m = metrics.clone();
            let h = tokio::spawn(Sink::new(cfg, e.bus.clone(), e.store.clone(), metrics, health).run(rx));
            let (produced, d) = produce(e.bus.clone(), stream(&topic, n, args.rate)?).await?;
            let until = Instant::now() + Duration::from_secs(30);
            while m.records.get() < produced && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tx.send(true).ok();
            h.await?.context("sink")?;
            let (p50, p99) = (m.freshness.quantile_ms(0.5), m.freshness.quantile_ms(0.99));
            let fmt = |v: Option<u64>| v.map(|ms| format!("{:.3}", ms as f64 / 1000.0)).unwrap_or_else(|| "n/a".into());
            println!(
                "freshness at {:.0} ticks/s for {:.1} s, 1 s flush, {} ticks: p50 {} s, p99 {} s (1 ms resolution below 1 s, 10 ms below 10 s)",
                produced as f64 / d.as_secs_f64(),
                d.as_secs_f64(),
                m.freshness.count(),
                fmt(p50),
                fmt(p99)
            );
        }
        other => bail!("unknown benchmark {other:?}: simulator, produce, sink or freshness"),
    }
    Ok(())
}
