//! `ticklake local up`: the manifests' workers on this machine, with embedded defaults.
//!
//! * A `StockStream` or `S3Sink` without `kafka.bootstrapServers` uses the embedded durable
//!   log under `<data-dir>/log` (Kafka's model: topics, partitions, offsets, groups).
//! * An `S3Sink` without `endpoint` writes the same object layout to `<data-dir>/s3/<bucket>/`.
//! * Workers that fail are restarted with backoff (1 s doubling to 30 s), as Kubernetes would;
//!   recovery makes that safe. Ctrl-C stops cleanly: producers drain, sinks write out their
//!   buffers and commit; a restart continues where it stopped.

use crate::manifests::{self, Resource};
use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ticklake_bus::Bus;
use ticklake_bus::embedded::{EmbeddedLog, LogOptions};
use ticklake_workers::telemetry::Telemetry;
use tokio::sync::watch;

#[derive(Args)]
pub struct UpArgs {
    /// Manifest files or folders (every .yaml/.yml inside).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Where the embedded log and local objects live.
    #[arg(long, default_value = ".ticklake", env = "TICKLAKE_DATA_DIR")]
    data_dir: PathBuf,
    /// Metrics and health endpoint.
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
    /// Stop by itself after this many seconds (demos, CI).
    #[arg(long)]
    duration_secs: Option<u64>,
}

pub async fn up(args: UpArgs) -> Result<()> {
    let resources = manifests::load(&args.files)?;
    if resources.is_empty() {
        anyhow::bail!("no ticklake resources found in {:?}", args.files);
    }
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let shutdown = crate::shutdown_signal();
    let (stop_tx, stop_rx) = watch::channel(false);
    {
        let mut s = shutdown.clone();
        let limit = args.duration_secs;
        tokio::spawn(async move {
            match limit {
                Some(secs) => {
                    tokio::select! {
                        _ = s.wait_for(|v| *v) => {}
                        _ = tokio::time::sleep(Duration::from_secs(secs)) => tracing::info!(secs, "duration reached; stopping"),
                    }
                }
                None => {
                    let _ = s.wait_for(|v| *v).await;
                }
            }
            let _ = stop_tx.send(true);
        });
    }
    let telemetry = Telemetry::new();
    crate::serve_telemetry(telemetry.clone(), args.metrics_addr, stop_rx.clone()).await?;

    let mut embedded: Option<Arc<dyn Bus>> = None;
    let mut embedded_bus = || -> Result<Arc<dyn Bus>> {
        if let Some(b) = &embedded {
            return Ok(b.clone());
        }
        let dir = args.data_dir.join("log");
        let log = EmbeddedLog::open(&dir, LogOptions::default())
            .with_context(|| format!("opening the embedded log at {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), "embedded log open (no kafka.bootstrapServers given)");
        let b: Arc<dyn Bus> = log;
        embedded = Some(b.clone());
        Ok(b)
    };

    let mut tasks = tokio::task::JoinSet::new();
    for r in resources {
        match r {
            Resource::StockStream(ss) => {
                let name = ss.metadata.name.clone().unwrap_or_default();
                let bus = match ticklake_workers::connect::kafka_bus(&ss.spec.kafka, None)? {
                    Some(b) => b,
                    None => embedded_bus()?,
                };
                let (metrics, health) = telemetry.producer(&format!("producer/{name}"));
                let stop = stop_rx.clone();
                tasks.spawn(supervise(format!("producer/{name}"), stop.clone(), move || {
                    let w = ticklake_workers::producer::ProducerWorker {
                        name: name.clone(),
                        spec: ss.spec.clone(),
                        shard: ticklake_sources::Shard::ALL,
                        bus: bus.clone(),
                        metrics: metrics.clone(),
                        health: health.clone(),
                    };
                    let stop = stop.clone();
                    async move { w.run(stop).await.map(|s| s.exhausted).map_err(anyhow::Error::from) }
                }));
            }
            Resource::S3Sink(sink) => {
                let name = sink.metadata.name.clone().unwrap_or_default();
                let bus = match ticklake_workers::connect::kafka_bus(&sink.spec.kafka, None)? {
                    Some(b) => b,
                    None => embedded_bus()?,
                };
                let store = ticklake_workers::connect::sink_store(&sink.spec, Some(&args.data_dir.join("s3"))).await?;
                tracing::info!(sink = %name, store = %store.describe(), prefix = %sink.spec.prefix, "sink target");
                let (metrics, health) = telemetry.sink(&format!("sink/{name}"));
                let cfg = ticklake_workers::sink::SinkConfig::from_spec(&name, &sink.spec);
                let stop = stop_rx.clone();
                tasks.spawn(supervise(format!("sink/{name}"), stop.clone(), move || {
                    let s = ticklake_workers::sink::Sink::new(
                        cfg.clone(),
                        bus.clone(),
                        store.clone(),
                        metrics.clone(),
                        health.clone(),
                    );
                    let stop = stop.clone();
                    async move { s.run(stop).await.map(|_| false).map_err(anyhow::Error::from) }
                }));
            }
            Resource::AlertSubscription(a) => {
                tracing::warn!(
                    subscription = %a.metadata.name.clone().unwrap_or_default(),
                    "AlertSubscription is read and validated, but the local runner does not deliver notifications yet (tracked in the notifications issue)"
                );
            }
        }
    }
    let mut failed = false;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "worker task panicked");
            failed = true;
        }
    }
    tracing::info!("local runner stopped");
    if failed { anyhow::bail!("a worker failed") } else { Ok(()) }
}

/// Runs a worker, restarting it with backoff when it fails, until `stop` turns true or it
/// finishes by itself (returns `Ok(true)`: its source is exhausted).
async fn supervise<F, Fut>(name: String, mut stop: watch::Receiver<bool>, mut make: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let mut backoff = Duration::from_secs(1);
    loop {
        match make().await {
            Ok(true) => {
                tracing::info!(worker = %name, "finished: its source is exhausted");
                return;
            }
            Ok(false) => {
                if *stop.borrow() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(worker = %name, error = format!("{e:#}"), retry_in_secs = backoff.as_secs(), "worker failed; restarting");
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
