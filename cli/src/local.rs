//! `ticklake local up`: the manifests' workers on this machine, with embedded defaults.
//!
//! * A `StockStream` or `S3Sink` without `kafka.bootstrapServers` uses the embedded durable
//!   log under `<data-dir>/log` (Kafka's model: topics, partitions, offsets, groups).
//! * An `S3Sink` without `endpoint` writes the same object layout to `<data-dir>/s3/<bucket>/`.
//! * Workers that fail are restarted with backoff (1 s doubling to 30 s), as Kubernetes would;
//!   recovery makes that safe. Ctrl-C stops cleanly: producers drain, sinks write out their
//!   buffers and commit; a restart continues where it stopped.
//! * `AlertSubscription`s are delivered by ticklake's own notifier (`ticklake-notify`): every
//!   object the sinks write becomes an `object.created` event; the outbox lives in
//!   `<data-dir>/notify/outbox.sqlite`; SMTP, the link endpoint and limits come from
//!   `--notify-config` (see `notify/README.md`). Events a crash lost on their way (objects
//!   landed, events still in memory) are re-derived from the sinks' claims: see [`crate::landed`].

use crate::manifests::{self, Resource};
use anyhow::{Context, Result};
use clap::Args;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ticklake_api::crd::Protocol;
use ticklake_bus::Bus;
use ticklake_bus::embedded::{EmbeddedLog, LogOptions};
use ticklake_workers::sink::LandedBatch;
use ticklake_workers::telemetry::Telemetry;
use tokio::sync::{mpsc, watch};

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
    /// The notifier's configuration (YAML: smtp, http, retry limits, …), for AlertSubscriptions.
    #[arg(long, env = "TICKLAKE_NOTIFY_CONFIG")]
    notify_config: Option<PathBuf>,
    /// The catalog the sinks' tables are crawled into: a path, `sqlite:///path` or
    /// `postgres://…`. Default: `<data-dir>/catalog.sqlite`.
    #[arg(long, env = "TICKLAKE_CATALOG")]
    catalog: Option<String>,
    /// Seconds between scheduled crawls of each sink's prefix (crawls also follow every
    /// landed batch).
    #[arg(long, default_value_t = 300)]
    crawl_interval_secs: u64,
    /// Where the SQL API (Athena-style) listens.
    #[arg(long, default_value = "127.0.0.1:8089")]
    sql_addr: SocketAddr,
    /// No SQL API.
    #[arg(long)]
    no_sql: bool,
}

/// Landed batches waiting for the notifier at most (sinks wait when it is full).
const LANDED_CHANNEL: usize = 256;

fn notify_config(path: Option<&PathBuf>) -> Result<ticklake_notify::NotifierConfig> {
    let Some(path) = path else { return Ok(ticklake_notify::NotifierConfig::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: ticklake_notify::NotifierConfig =
        serde_yaml::from_str(&text).with_context(|| format!("{}: not a notifier configuration", path.display()))?;
    cfg.validate().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(cfg)
}

/// The running notifier and the roads from the sinks to it (see [`crate::landed`]).
struct Notifier {
    /// What sinks report landed batches to.
    tx: mpsc::Sender<LandedBatch>,
    running: ticklake_notify::Running,
    forward: tokio::task::JoinHandle<()>,
    replay: tokio::task::JoinHandle<()>,
}

/// Starts the notifier for the manifests' AlertSubscriptions, the live road turning landed
/// batches into `object.created` events, and the replay of the watched sinks' claims (new
/// streams are followed from where their chains end before this returns, i.e. before any
/// sink starts).
async fn start_notifier(
    resources: &[Resource],
    args: &UpArgs,
    stop: watch::Receiver<bool>,
) -> Result<Option<Notifier>> {
    let subs: Vec<_> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::AlertSubscription(a) => Some(a),
            _ => None,
        })
        .collect();
    if subs.is_empty() {
        return Ok(None);
    }
    // name → (bucket, prefix, region)
    let sinks: HashMap<String, (String, String, String)> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::S3Sink(s) => Some((
                s.metadata.name.clone().unwrap_or_default(),
                (s.spec.bucket.clone(), s.spec.prefix.clone(), s.spec.region.clone().unwrap_or_else(|| "local".into())),
            )),
            _ => None,
        })
        .collect();
    let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let lookup = |n: &str| sinks.get(n).map(|(b, p, _)| (b.clone(), p.clone()));
    let mut resolved = Vec::new();
    for a in subs {
        let name = a.metadata.name.clone().unwrap_or_default();
        resolved.push(ticklake_notify::Subscription::from_spec(&name, &a.spec, &lookup, &env)?);
    }
    let cfg = notify_config(args.notify_config.as_ref())?;
    if cfg.smtp.is_none() {
        // The example manifests subscribe an email address: without an SMTP server the
        // runner still runs the pipeline (and any other endpoint), and says what it skips.
        for s in &mut resolved {
            s.endpoints.retain(|e| {
                let email = matches!(e.protocol, Protocol::Email | Protocol::EmailJson);
                if email {
                    tracing::warn!(
                        subscription = %s.name, address = %e.address,
                        "email endpoint not delivered: no SMTP server configured (give --notify-config with smtp; see notify/README.md)"
                    );
                }
                !email
            });
        }
        resolved.retain(|s| !s.endpoints.is_empty());
        if resolved.is_empty() {
            return Ok(None);
        }
    }
    // The sinks some subscription watches: their claims are replayed.
    let mut streams = Vec::new();
    for r in resources {
        let Resource::S3Sink(sink) = r else { continue };
        let name = sink.metadata.name.clone().unwrap_or_default();
        let watched = resolved.iter().any(|s| match &s.watch.sink {
            Some(n) => *n == name,
            None => s.watch.bucket == sink.spec.bucket,
        });
        if !watched {
            continue;
        }
        let store = ticklake_workers::connect::sink_store(&sink.spec, Some(&args.data_dir.join("s3"))).await?;
        let layout = ticklake_workers::sink::SinkConfig::from_spec(&name, &sink.spec).layout;
        let (bucket, _, region) = sinks[&name].clone();
        streams.push(crate::landed::Stream::new(&name, crate::landed::SinkTarget { bucket, region }, layout, store));
    }
    let (interval, max_events) = (Duration::from_millis(cfg.replay_interval_ms), cfg.replay_max_events as usize);
    let running =
        ticklake_notify::start(cfg, resolved, &args.data_dir.join("notify").join("outbox.sqlite"), &env, stop.clone())
            .await?;
    let replayer = running.replayer();
    crate::landed::follow_new(&replayer, &streams).await;
    let replay = crate::landed::spawn_replay(replayer, streams, interval, max_events, stop);
    let (tx, rx) = mpsc::channel::<LandedBatch>(LANDED_CHANNEL);
    let targets =
        sinks.into_iter().map(|(n, (bucket, _, region))| (n, crate::landed::SinkTarget { bucket, region })).collect();
    let forward = crate::landed::forward(rx, targets, running.handle.clone());
    Ok(Some(Notifier { tx, running, forward, replay }))
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

    let notifier = start_notifier(&resources, &args, stop_rx.clone()).await?;
    let catalog = start_catalog(&resources, &args, stop_rx.clone()).await?;
    // Every landed batch: a crawl trigger for its sink's table, then the notifier's event.
    let (landed_tx, mut landed_rx) = mpsc::channel::<LandedBatch>(LANDED_CHANNEL);
    let landed = Some(landed_tx);
    let dispatch = {
        let to_notifier = notifier.as_ref().map(|n| n.tx.clone());
        let crawlers = catalog.as_ref().map(|c| c.0.clone());
        tokio::spawn(async move {
            while let Some(batch) = landed_rx.recv().await {
                if let Some(c) = &crawlers {
                    c.landed(&batch.sink);
                }
                if let Some(tx) = &to_notifier
                    && tx.send(batch).await.is_err()
                {
                    tracing::error!("the notifier stopped taking landed batches");
                }
            }
        })
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
                let mut cfg = ticklake_workers::sink::SinkConfig::from_spec(&name, &sink.spec);
                cfg.landed_events = landed.clone();
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
            Resource::AlertSubscription(_) => {} // the notifier runs them (started above)
        }
    }
    drop(landed);
    let mut failed = false;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "worker task panicked");
            failed = true;
        }
    }
    // The sinks have stopped and dropped their senders: the dispatcher drains and ends.
    let _ = dispatch.await;
    if let Some(Notifier { tx, running, forward, replay }) = notifier {
        // Every sink has stopped: the last landed batches are forwarded, then the notifier
        // takes them in and stops. (The replay has stopped with `stop`; the next start
        // replays whatever it had not reached.)
        drop(tx);
        let _ = forward.await;
        let _ = replay.await;
        running.stopped().await;
    }
    if let Some((crawlers, api)) = catalog {
        // The dispatcher, the only other holder, has ended (awaited above).
        match Arc::try_unwrap(crawlers) {
            Ok(c) => c.stop().await,
            Err(_) => tracing::warn!("the catalog is still shared: no final crawl (the next start catches up)"),
        }
        if let Some(api) = api {
            let _ = api.await;
        }
    }
    tracing::info!("local runner stopped");
    if failed { anyhow::bail!("a worker failed") } else { Ok(()) }
}

/// The catalog of the sinks' tables, their crawlers and the SQL API (see
/// [`crate::local_catalog`]); `None` without sinks.
async fn start_catalog(
    resources: &[Resource],
    args: &UpArgs,
    stop: watch::Receiver<bool>,
) -> Result<Option<(Arc<crate::local_catalog::LocalCatalog>, Option<tokio::task::JoinHandle<()>>)>> {
    let mut tables = Vec::new();
    for r in resources {
        if let Resource::S3Sink(s) = r {
            tables.push(crate::local_catalog::sink_table(s, &args.data_dir)?);
        }
    }
    if tables.is_empty() {
        return Ok(None);
    }
    let url = args.catalog.clone().unwrap_or_else(|| args.data_dir.join("catalog.sqlite").display().to_string());
    let open_url = url.clone();
    let store: Arc<dyn ticklake_catalog::store::Store> = Arc::from(
        tokio::task::spawn_blocking(move || ticklake_catalog::store::open(&open_url))
            .await?
            .with_context(|| format!("opening the catalog {url}"))?,
    );
    // The SQL engine reaches S3 tables through the first sink endpoint given (MinIO), else AWS.
    let s3 = tables
        .iter()
        .find(|t| t.s3.endpoint.is_some())
        .map(|t| ticklake_query::s3::S3Config { endpoint: t.s3.endpoint.clone(), region: t.s3.region.clone() })
        .unwrap_or_else(ticklake_query::s3::S3Config::from_env);
    let default_database = tables[0].database.clone();
    for t in &tables {
        tracing::info!(sink = %t.sink, table = %format!("{}.{}", t.database, t.table), root = %t.root, catalog = %url, "cataloguing the sink's prefix");
    }
    let interval = Duration::from_secs(args.crawl_interval_secs.max(1));
    let crawlers = Arc::new(crate::local_catalog::LocalCatalog::start(store.clone(), tables, interval).await?);
    let api = if args.no_sql {
        None
    } else {
        let opts = ticklake_query::EngineOptions { default_database, s3, ..ticklake_query::EngineOptions::default() };
        let engine = Arc::new(ticklake_query::Engine::new(store, opts)?);
        let (addr, handle) =
            crate::sql::serve_api(engine, ticklake_query::ApiOptions::default(), args.sql_addr, stop).await?;
        tracing::info!(%addr, "SQL API: POST /v1/queries, or `ticklake sql --data-dir …`");
        Some(handle)
    };
    Ok(Some((crawlers, api)))
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
