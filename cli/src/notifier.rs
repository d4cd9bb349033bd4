//! `ticklake worker notifier`: an `AlertSubscription`'s notifier route (bucket → SQS queue →
//! this worker → SNS topic and/or SMTP). The work is in `ticklake_workers::notifier`.
//!
//! AWS credentials and region come from the default chain (IRSA in a cluster); `--aws-region`
//! (default: the sink's `spec.region`, then the chain's) and `--aws-endpoint` override them.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use ticklake_aws::{AwsSettings, Clients};
use ticklake_workers::notifier::{self, NotifierTelemetry, Outputs, Runtime, Settings};

#[derive(Args)]
pub struct NotifierArgs {
    /// The AlertSubscription manifest.
    #[arg(long, env = "TICKLAKE_RESOURCE")]
    resource: PathBuf,
    /// The S3Sink manifest the subscription watches (its bucket, prefix, layout and catalogue).
    #[arg(long, env = "TICKLAKE_SINK_RESOURCE")]
    sink: PathBuf,
    /// The SQS queue S3 sends the bucket's object-created events to.
    #[arg(long, env = "TICKLAKE_QUEUE_URL")]
    queue_url: String,
    /// The SNS topic to publish readable messages to.
    #[arg(long, env = "TICKLAKE_TOPIC_ARN")]
    topic_arn: Option<String>,
    /// Also send HTML + text emails to the spec's `email` endpoints through this SMTP server:
    /// `smtp://` (plain), `smtp+starttls://` or `smtps://`, `[user[:password]@]host[:port]`.
    /// Without a password in the URL it is read from TICKLAKE_SMTP_PASSWORD.
    #[arg(long, env = "TICKLAKE_SMTP_URL", hide_env_values = true, requires = "from")]
    smtp_url: Option<String>,
    /// The From: of the emails, e.g. `ticklake <alerts@example.com>`.
    #[arg(long, env = "TICKLAKE_SMTP_FROM", requires = "smtp_url")]
    from: Option<String>,
    /// AWS endpoint for SQS, SNS and S3 (e.g. a moto server); default: the SDK's.
    #[arg(long, env = "TICKLAKE_AWS_ENDPOINT")]
    aws_endpoint: Option<String>,
    /// AWS region; default: the sink's `spec.region`, then the default chain's.
    #[arg(long)]
    aws_region: Option<String>,
    #[arg(long, default_value = "0.0.0.0:9464", env = "TICKLAKE_METRICS_ADDR")]
    metrics_addr: SocketAddr,
}

pub async fn run(args: NotifierArgs, shutdown: tokio::sync::watch::Receiver<bool>) -> Result<()> {
    let crate::manifests::Resource::AlertSubscription(sub) = crate::manifests::load_one(&args.resource)? else {
        bail!("{} is not an AlertSubscription", args.resource.display())
    };
    let crate::manifests::Resource::S3Sink(sink) = crate::manifests::load_one(&args.sink)? else {
        bail!("{} is not an S3Sink", args.sink.display())
    };
    if args.topic_arn.is_none() && args.smtp_url.is_none() {
        bail!("give --topic-arn, --smtp-url (with --from), or both");
    }
    let settings = AwsSettings {
        region: args.aws_region.clone().or(sink.spec.region.clone()),
        endpoint: args.aws_endpoint.clone(),
        max_attempts: None,
    };
    let clients = Clients::new(&settings).await;
    let outputs = Outputs { topic_arn: args.topic_arn.clone(), smtp: args.smtp_url.is_some() };
    let s = Settings::new(&sub, &sink, &args.queue_url, &outputs, &clients.region)?;
    let mailer = match (&args.smtp_url, &args.from) {
        (Some(url), Some(from)) => Some(
            notifier::smtp::mailer(url, from, &|name| std::env::var(name).ok())
                .map_err(anyhow::Error::msg)
                .context("--smtp-url")?,
        ),
        _ => None,
    };
    if let Some(m) = &mailer {
        tracing::info!(smtp = %m.describe, recipients = s.email_to.len(), "emails go through SMTP");
    }
    let telemetry = NotifierTelemetry::new(&format!("notifier/{}", s.subscription));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics endpoint {}", args.metrics_addr))?;
    let bound = listener.local_addr()?;
    {
        let t = telemetry.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = t.serve(listener, stop).await {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        });
    }
    tracing::info!(addr = %bound, "metrics on /metrics, health on /healthz and /readyz");
    let rt = Runtime { s3: notifier::sink_s3_client(&clients, &sink), clients, mailer, telemetry };
    let summary = notifier::run(s, rt, shutdown).await?;
    tracing::info!(
        received = summary.received,
        unparseable = summary.unparseable,
        messages = summary.messages,
        objects = summary.notified,
        "done"
    );
    Ok(())
}
