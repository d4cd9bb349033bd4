//! `ticklake` — the command-line tool: the local runner, the workers' entry point, the CRD
//! generator and the tools around them. Glue only: the work happens in the library crates.

mod athena;
mod bench;
mod bench_sql;
mod catalog_cmd;
mod landed;
mod local;
mod local_catalog;
mod manifests;
mod notifier;
mod notify;
mod sql;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use ticklake_workers::telemetry::Telemetry;

#[derive(Parser)]
#[command(
    name = "ticklake",
    version,
    about = "A real-time stock data pipeline: Kafka → S3 as Parquet, declared as Kubernetes resources"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TICKLAKE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs manifests on this machine with embedded defaults.
    Local {
        #[command(subcommand)]
        cmd: LocalCmd,
    },
    /// Runs one worker from its resource manifest (what the operator's pods run).
    Worker {
        #[command(subcommand)]
        cmd: WorkerCmd,
    },
    /// Writes the CustomResourceDefinitions to folders (default: crds/ and the Helm chart's copy).
    Crdgen {
        #[arg(long, default_values = ["crds", "charts/ticklake/files/crds"])]
        out: Vec<PathBuf>,
    },
    /// Inspects what a sink wrote.
    Lake {
        #[command(subcommand)]
        cmd: LakeCmd,
    },
    /// Benchmarks (figures, not tests).
    Bench(bench::BenchArgs),
    /// Crawls folders or S3 prefixes into the local catalog (Glue's crawler, incremental).
    Crawl(catalog_cmd::CrawlArgs),
    /// The local catalog: tables, their schemas and schema history.
    Catalog(catalog_cmd::CatalogArgs),
    /// The local notifier's outbox: delivery log, endpoints, dead letters, redrive.
    Notify(notify::NotifyArgs),
    /// Amazon Athena: an S3Sink's named queries, and running one to see its data.
    Athena(athena::AthenaArgs),
    /// SQL over the local catalog's tables (DataFusion, read-only).
    Sql(sql::SqlArgs),
    /// The Athena-style HTTP API over the local catalog: submit, poll, page, cancel, named queries.
    SqlServer(sql::ServeArgs),
}

#[derive(Subcommand)]
enum LocalCmd {
    /// Runs every StockStream and S3Sink in the manifests until Ctrl-C.
    Up(local::UpArgs),
}

#[derive(Subcommand)]
enum WorkerCmd {
    /// Produces a StockStream's ticks.
    Producer {
        /// The StockStream manifest.
        #[arg(long, env = "TICKLAKE_RESOURCE")]
        resource: PathBuf,
        /// This worker's share of the symbols, `index/count`.
        #[arg(long, default_value = "0/1", env = "TICKLAKE_SHARD")]
        shard: String,
        #[arg(long, default_value = "0.0.0.0:9464", env = "TICKLAKE_METRICS_ADDR")]
        metrics_addr: SocketAddr,
    },
    /// Lands an S3Sink's topic in its bucket.
    Sink {
        /// The S3Sink manifest.
        #[arg(long, env = "TICKLAKE_RESOURCE")]
        resource: PathBuf,
        #[arg(long, default_value = "0.0.0.0:9464", env = "TICKLAKE_METRICS_ADDR")]
        metrics_addr: SocketAddr,
        /// Create the bucket when missing (for S3-compatible stores in trials and tests).
        #[arg(long)]
        create_bucket: bool,
    },
    /// Tells an AlertSubscription's subscribers what landed: S3 events from its SQS queue in,
    /// readable messages and digests out to its SNS topic and/or by SMTP.
    Notifier(notifier::NotifierArgs),
}

#[derive(Subcommand)]
enum LakeCmd {
    /// Reads every object an S3Sink wrote and counts ticks: rows, distinct, duplicates.
    Verify {
        /// The S3Sink manifest.
        #[arg(long)]
        resource: PathBuf,
        /// Local runner data folder (for sinks without an endpoint).
        #[arg(long, default_value = ".ticklake")]
        data_dir: PathBuf,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,rdkafka=warn")
    });
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

/// A watch channel that turns true on SIGINT or SIGTERM.
pub fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("stopping: finishing in-flight work (signal again to abort)");
        let _ = tx.send(true);
        let _ = tokio::signal::ctrl_c().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    rx
}

/// Serves metrics and health on `addr` until shutdown.
pub async fn serve_telemetry(
    t: Arc<Telemetry>,
    addr: SocketAddr,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<SocketAddr> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the metrics endpoint {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = t.serve(listener, stop).await {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    });
    tracing::info!(addr = %bound, "metrics on /metrics, health on /healthz and /readyz");
    Ok(bound)
}

fn parse_shard(s: &str) -> Result<ticklake_sources::Shard> {
    let (i, n) = s.split_once('/').context("shard is index/count, e.g. 0/1")?;
    let (index, count): (u32, u32) = (i.parse().context("shard index")?, n.parse().context("shard count")?);
    Ok(ticklake_sources::Shard::new(index, count)?)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Local { .. } | Cmd::Worker { .. }) {
        // Commands that print for a pipe (`ticklake notify deliveries | head`) end quietly when
        // the reader goes away, as Unix tools do, instead of panicking in `println!`. The
        // long-running runner and workers keep Rust's default (SIGPIPE ignored): a peer closing
        // a socket must be an error they handle, never a signal that kills them.
        // SAFETY: called before any thread is started; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_logs(cli.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Local { cmd: LocalCmd::Up(args) } => local::up(args).await,
            Cmd::Worker { cmd } => worker(cmd).await,
            Cmd::Crdgen { out } => {
                for dir in out {
                    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                    for (name, yaml) in ticklake_api::crd::generate() {
                        let path = dir.join(name);
                        std::fs::write(&path, &yaml).with_context(|| format!("writing {}", path.display()))?;
                        println!("wrote {}", path.display());
                    }
                }
                Ok(())
            }
            Cmd::Lake { cmd: LakeCmd::Verify { resource, data_dir } } => {
                let manifests::Resource::S3Sink(sink) = manifests::load_one(&resource)? else {
                    bail!("{} is not an S3Sink", resource.display())
                };
                let store = ticklake_workers::connect::sink_store(&sink.spec, Some(&data_dir.join("s3"))).await?;
                let s =
                    ticklake_workers::verify::scan(store.as_ref(), &sink.spec.prefix, &sink.spec.dead_letter.prefix)
                        .await?;
                let bytes_per_tick = if s.rows > 0 { s.data_bytes as f64 / s.rows as f64 } else { 0.0 };
                println!(
                    "{}",
                    serde_json::json!({
                        "data_objects": s.data_objects, "data_bytes": s.data_bytes, "rows": s.rows,
                        "distinct": s.distinct, "duplicates": s.duplicates, "dead_letters": s.dead_letters,
                        "claims": s.claims, "bytes_per_tick": (bytes_per_tick * 100.0).round() / 100.0,
                    })
                );
                Ok(())
            }
            Cmd::Bench(args) => bench::run(args).await,
            Cmd::Crawl(args) => catalog_cmd::crawl(args).await,
            Cmd::Catalog(args) => catalog_cmd::catalog(args).await,
            Cmd::Notify(args) => notify::run(args),
            Cmd::Athena(args) => athena::run(args).await,
            Cmd::Sql(args) => sql::run(args).await,
            Cmd::SqlServer(args) => sql::serve(args).await,
        }
    })
}

async fn worker(cmd: WorkerCmd) -> Result<()> {
    let shutdown = shutdown_signal();
    let telemetry = Telemetry::new();
    match cmd {
        WorkerCmd::Producer { resource, shard, metrics_addr } => {
            let manifests::Resource::StockStream(ss) = manifests::load_one(&resource)? else {
                bail!("{} is not a StockStream", resource.display())
            };
            let name = ss.metadata.name.clone().unwrap_or_default();
            let compression = match ss.spec.compression {
                ticklake_api::crd::ProducerCompression::Lz4 => "lz4",
                ticklake_api::crd::ProducerCompression::Zstd => "zstd",
                ticklake_api::crd::ProducerCompression::None => "none",
            };
            let bus = ticklake_workers::connect::kafka_bus(&ss.spec.kafka, Some(compression))?.context(
                "the producer worker needs spec.kafka.bootstrapServers (the embedded log is for `ticklake local up`)",
            )?;
            serve_telemetry(telemetry.clone(), metrics_addr, shutdown.clone()).await?;
            let (metrics, health) = telemetry.producer(&format!("producer/{name}"));
            let w = ticklake_workers::producer::ProducerWorker {
                name,
                spec: ss.spec,
                shard: parse_shard(&shard)?,
                bus,
                metrics,
                health,
            };
            let s = w.run(shutdown).await?;
            tracing::info!(produced = s.produced, bad_rows = s.bad_rows, "done");
            Ok(())
        }
        WorkerCmd::Sink { resource, metrics_addr, create_bucket } => {
            let manifests::Resource::S3Sink(sink) = manifests::load_one(&resource)? else {
                bail!("{} is not an S3Sink", resource.display())
            };
            let name = sink.metadata.name.clone().unwrap_or_default();
            let bus = ticklake_workers::connect::kafka_bus(&sink.spec.kafka, None)?.context(
                "the sink worker needs spec.kafka.bootstrapServers (the embedded log is for `ticklake local up`)",
            )?;
            if create_bucket {
                ticklake_workers::store::S3Store::connect(ticklake_workers::store::S3Options {
                    bucket: sink.spec.bucket.clone(),
                    region: sink.spec.region.clone(),
                    endpoint: sink.spec.endpoint.clone(),
                    force_path_style: sink.spec.force_path_style.unwrap_or(sink.spec.endpoint.is_some()),
                    max_attempts: None,
                })
                .await?
                .ensure_bucket()
                .await?;
            }
            let store = ticklake_workers::connect::sink_store(&sink.spec, None).await?;
            serve_telemetry(telemetry.clone(), metrics_addr, shutdown.clone()).await?;
            let (metrics, health) = telemetry.sink(&format!("sink/{name}"));
            let cfg = ticklake_workers::sink::SinkConfig::from_spec(&name, &sink.spec);
            let s = ticklake_workers::sink::Sink::new(cfg, bus, store, metrics, health).run(shutdown).await?;
            tracing::info!(records = s.records, dead_letters = s.dead_letters, objects = s.objects, "done");
            Ok(())
        }
        WorkerCmd::Notifier(args) => notifier::run(args, shutdown).await,
    }
}
