//! `ticklake-operator` — the operator binary: flags, logs, signals; the work is in the library.

use anyhow::{Context as _, Result};
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use ticklake_operator::controller::Settings;
use ticklake_operator::render::RenderConfig;
use ticklake_operator::run::{LeaderOptions, Options};

#[derive(Parser)]
#[command(
    name = "ticklake-operator",
    version,
    about = "Reconciles StockStream, S3Sink and AlertSubscription resources"
)]
struct Args {
    /// Image the worker pods run (the `ticklake` binary).
    #[arg(long, env = "TICKLAKE_WORKER_IMAGE", default_value_t = RenderConfig::default().worker_image)]
    worker_image: String,
    /// Pull policy of the worker image: Always, IfNotPresent or Never.
    #[arg(long, env = "TICKLAKE_WORKER_IMAGE_PULL_POLICY", default_value = "IfNotPresent")]
    worker_image_pull_policy: String,
    /// Kafka bootstrap servers for resources that name none (`host:port,...`): the cluster's
    /// Kafka, so the same manifests run locally (embedded log) and here.
    #[arg(long, env = "TICKLAKE_DEFAULT_KAFKA_BOOTSTRAP")]
    default_kafka_bootstrap: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "TICKLAKE_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Metrics and health endpoint.
    #[arg(long, env = "TICKLAKE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Resources with ready workers are reconciled again after this many seconds to refresh
    /// their live figures.
    #[arg(long, default_value_t = 30)]
    status_interval_seconds: u64,
    /// Every resource is reconciled at least this often (drift outside Kubernetes, such as a
    /// deleted topic, is found within this time).
    #[arg(long, default_value_t = 60)]
    resync_seconds: u64,
    /// Reconciles running at once per kind. Most of a reconcile is waiting (API server,
    /// Kafka admin), so this is well above the core count.
    #[arg(long, default_value_t = 32)]
    concurrency: u16,
    /// Run without leader election (only safe with one replica).
    #[arg(long)]
    no_leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "ticklake-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Seconds a leader keeps the Lease without renewing it.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// This replica's identity in the Lease and in Events (default: POD_NAME, else host and pid).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Path of a kubeconfig (default: in-cluster configuration, else KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "TICKLAKE_KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// AWS region of Glue, Athena, SNS and SQS (default: the AWS SDK's chain: AWS_REGION, profile,
    /// instance metadata).
    #[arg(long, env = "TICKLAKE_AWS_REGION")]
    aws_region: Option<String>,
    /// One endpoint for every AWS service (VPC endpoints; moto in the tests). Per-service
    /// AWS_ENDPOINT_URL_<SERVICE> variables are honoured too.
    #[arg(long, env = "TICKLAKE_AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
    /// Attempts per AWS call by the SDK (throttling, server errors) before the operator's own
    /// per-resource backoff takes over.
    #[arg(long, default_value_t = 3)]
    aws_max_attempts: u32,
    /// IAM role (ARN) Glue crawlers run as when an S3Sink names no spec.glue.crawlerRole.
    #[arg(long, env = "TICKLAKE_GLUE_CRAWLER_ROLE")]
    glue_crawler_role: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "TICKLAKE_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,rdkafka=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if args.log_format == "json" {
        logs.json().init()
    } else {
        logs.init()
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let client = match &args.kubeconfig {
        Some(path) => {
            let kc =
                kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
            kube::Client::try_from(cfg)?
        }
        None => kube::Client::try_default().await.context("no Kubernetes configuration (in-cluster or kubeconfig)")?,
    };
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        format!("{}-{}", if host.is_empty() { "ticklake-operator" } else { &host }, std::process::id())
    });
    let opts = Options {
        settings: Settings {
            render: RenderConfig {
                worker_image: args.worker_image,
                image_pull_policy: args.worker_image_pull_policy,
                default_kafka_bootstrap: args.default_kafka_bootstrap,
            },
            status_interval: Duration::from_secs(args.status_interval_seconds.max(1)),
            resync: Duration::from_secs(args.resync_seconds.max(1)),
            namespace: args.namespace,
            concurrency: args.concurrency.max(1),
            instance: identity.clone(),
            aws: ticklake_aws::AwsSettings {
                region: args.aws_region,
                endpoint: args.aws_endpoint_url,
                max_attempts: Some(args.aws_max_attempts.max(1)),
            },
            glue_crawler_role: args.glue_crawler_role,
        },
        leader: (!args.no_leader_election).then(|| LeaderOptions {
            lease_name: args.lease_name,
            lease_namespace: args.lease_namespace,
            identity,
            lease_duration: Duration::from_secs(args.lease_duration_seconds.max(2)),
        }),
        metrics_addr: args.metrics_addr,
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("stopping");
        let _ = tx.send(true);
    });
    ticklake_operator::run::run(client, opts, rx).await?;
    Ok(())
}
