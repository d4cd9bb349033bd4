//! The notifier worker: the `Notifier` route of an `AlertSubscription` (bucket → SQS queue →
//! this worker → SNS topic, and optionally SMTP), in the role the original design gave a Lambda.
//! It turns S3's object-created events into messages a person reads — what landed (table,
//! partition, rows, bytes), where (an `s3://` link, the console), and the Athena query that
//! shows it — one per object, or one digest per interval.
//!
//! ```text
//! ticklake worker notifier --resource alertsubscription.yaml --sink s3sink.yaml \
//!     --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/ticklake-…-events \
//!     [--topic-arn arn:aws:sns:…] [--smtp-url smtp+starttls://user@host:587 --from ADDR]
//! ```
//!
//! ## What it does with a message
//!
//! 1. **Intake**: long polls of at most [`limits::RECEIVE_MAX_MESSAGES`]; each body is parsed
//!    with `ticklake_aws::s3notify::parse_s3_events` (S3 events, SNS-wrapped ones, test
//!    events). A body that is none of those is **not deleted**: it is logged, counted
//!    (`ticklake_notifier_unparseable_messages`) and left, so the queue's redrive policy moves
//!    it to the dead-letter queue after `maxReceiveCount` receives. Keys that are no data
//!    object of the sink's layout (dead letters, claims, temporary names, other folders or
//!    buckets) are skipped and counted by reason (`ticklake_notifier_skipped_keys`).
//! 2. **Enrich**: rows from each Parquet object's footer (ranged GETs of its last bytes,
//!    bounded: [`footer`]; on failure the rows are "unknown" and the message says so), the
//!    table (`database.table` of the sink's Glue catalogue, else the topic), the Hive
//!    partition from the key, the ready-to-run Athena query, links ([`object`]).
//! 3. **Filter**: the subscription's `filterPolicy`, evaluated per object with notify's SNS
//!    filter policy engine on the object's attributes ([`object::attributes`]); objects that
//!    don't match are dropped here (`ticklake_notifier_objects_filtered`).
//! 4. **Shape** ([`shape`]): `digestIntervalSeconds: 0` → one message per object; otherwise one
//!    digest per interval (counted from the first object waiting), with totals, per-partition
//!    lines, the first and last object, up to [`limits::MAX_LISTED`] objects by name and "and
//!    N more". Subjects are printable ASCII under 100 characters.
//! 5. **Deliver**: to the SNS topic (`--topic-arn`) as readable text with typed message
//!    attributes for the subscriptions' filter policies (see [`shape`] for which); and with
//!    `--smtp-url`, an HTML + text email to each `email` endpoint of the spec — SNS email is
//!    plain text, this is the way to HTML digests (Amazon SES's SMTP interface in AWS).
//!    Failed outputs are retried with backoff, only what failed; a message SNS refuses as
//!    invalid, or [`limits::MAX_ATTEMPTS`] failures, abandon the delivery and hand its SQS
//!    messages back to the queue (and so, eventually, to the dead-letter queue).
//! 6. **Delete** the SQS messages once every object they announced is delivered.
//!
//! ## Delivery guarantee and de-duplication
//!
//! At least once. A crash after publishing and before deleting re-delivers the messages
//! (after their visibility timeout), and they are published again. Every SNS message carries
//! the attribute `event_id` (and the text shows it): for one object `evt_` + 32 hex digits of
//! SHA-256 over the bucket, key and ETag (the S3 sequencer when the event has no ETag) — the
//! same object announced twice has the same id; for a digest `dig_` + 32 hex digits over its
//! objects' ids. Emails carry it as `Message-ID: <id@ticklake>`. Receivers de-duplicate by it.
//! (A digest re-built after a crash may group objects differently, hence another digest id:
//! the objects' own ids are stable.)
//!
//! While the worker holds messages (waiting for a digest, the rate limit or a retry), it keeps
//! them hidden with `ChangeMessageVisibility` until they are due plus the queue's own
//! visibility timeout. SQS hides a message at most 12 hours in all: a digest interval longer
//! than that (up to a day is allowed) sends its digest early, when the oldest message it holds
//! nears the limit. On SIGTERM, held messages are made visible again at once.
//!
//! ## Limits
//!
//! 10 messages per receive; at most [`limits::MAX_HELD_OBJECTS`] objects held in memory — when
//! full the worker stops receiving (the queue keeps the rest) and sends its digest early, so a
//! digest covers at most that many; [`limits::MAX_LISTED`] objects listed by name,
//! [`limits::MAX_PARTITION_LINES`] partition lines; footers read with at most
//! `FIRST_READ_BYTES` + `MAX_FOOTER_BYTES` ([`footer`]); `rateLimitPerMinute` of the spec as
//! messages per minute (each message goes to every endpoint once, so this is also per
//! endpoint), over it messages wait, none is dropped.
//!
//! Run one replica per subscription: two would split the queue and each send its own digests.
//!
//! ## AWS calls (IAM)
//!
//! `sqs:ReceiveMessage`, `sqs:DeleteMessage` (batch), `sqs:ChangeMessageVisibility` (batch),
//! `sqs:GetQueueAttributes` on the queue; `sns:Publish` on the topic; `s3:GetObject` on the
//! sink's `<bucket>/<prefix>/*` (ranged reads of footers). Credentials from the default chain
//! (IRSA in a cluster).

pub mod footer;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod object;
pub mod shape;
pub mod smtp;
mod worker;

pub use metrics::NotifierTelemetry;
pub use worker::{Runtime, run};

use crate::sink::layout::Layout;
use object::{Source, Table, Watch};
use shape::{Context, policy_names};
use ticklake_api::crd::{AlertSubscription, Protocol, S3Sink};
use ticklake_notify::filter::FilterPolicy;

/// Why the notifier could not run.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("the queue can't be read: {0}")]
    Queue(ticklake_aws::AwsError),
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// SQS messages received.
    pub received: u64,
    /// Unparseable ones among them.
    pub unparseable: u64,
    /// Messages or digests delivered.
    pub messages: u64,
    /// Objects in them.
    pub notified: u64,
}

/// Where notifications go.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// `--topic-arn`.
    pub topic_arn: Option<String>,
    /// Whether `--smtp-url` is set (the spec's `email` endpoints then get SMTP emails).
    pub smtp: bool,
}

/// Everything the loop needs to know, from the two resources and the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<namespace>/<name>` of the `AlertSubscription`.
    pub subscription: String,
    pub watch: Watch,
    pub context: Context,
    /// 0: one message per object.
    pub digest_interval_ms: i64,
    pub rate_limit_per_minute: Option<u32>,
    pub queue_url: String,
    pub topic_arn: Option<String>,
    /// The spec's `email` endpoints (with SMTP).
    pub email_to: Vec<String>,
    /// Buffer bound, also a digest's.
    pub max_held_objects: usize,
}

fn namespaced(namespace: &Option<String>, name: &Option<String>) -> (String, String) {
    (namespace.clone().unwrap_or_else(|| "default".to_string()), name.clone().unwrap_or_default())
}

impl Settings {
    /// The settings of `sub` watching `sink`. `region` is the clients' (for console links).
    pub fn new(
        sub: &AlertSubscription,
        sink: &S3Sink,
        queue_url: &str,
        outputs: &Outputs,
        region: &str,
    ) -> Result<Settings, NotifierError> {
        let err = |m: String| NotifierError::Config(m);
        let (ns, name) = namespaced(&sub.metadata.namespace, &sub.metadata.name);
        let (sink_ns, sink_name) = namespaced(&sink.metadata.namespace, &sink.metadata.name);
        let spec = &sub.spec;
        match (&spec.watch.sink_ref, &spec.watch.bucket) {
            (Some(r), _) if *r != sink_name => {
                return Err(err(format!("the AlertSubscription watches S3Sink {r:?}, not {sink_name:?}")));
            }
            (None, Some(b)) if *b != sink.spec.bucket => {
                return Err(err(format!(
                    "the AlertSubscription watches bucket {b:?}, not the sink's bucket {:?}",
                    sink.spec.bucket
                )));
            }
            _ => {}
        }
        if queue_url.trim().is_empty() {
            return Err(err("--queue-url is empty".into()));
        }
        let mut email_to: Vec<String> = Vec::new();
        if outputs.smtp {
            for e in spec.endpoints.iter().filter(|e| e.protocol == Protocol::Email) {
                if !email_to.iter().any(|a| a.eq_ignore_ascii_case(&e.address)) {
                    email_to.push(e.address.clone());
                }
            }
            if email_to.is_empty() {
                tracing::warn!("--smtp-url is set but the AlertSubscription has no email endpoint: no email is sent");
            }
        }
        if outputs.topic_arn.is_none() && email_to.is_empty() {
            return Err(err(
                "nowhere to deliver: give --topic-arn, or --smtp-url with email endpoints in the spec".into()
            ));
        }
        let policy = spec.filter_policy.as_deref().map(str::trim).filter(|p| {
            !p.is_empty() && serde_json::from_str::<serde_json::Value>(p).ok() != Some(serde_json::json!({}))
        });
        let filter = policy
            .map(FilterPolicy::parse)
            .transpose()
            .map_err(|e| err(format!("AlertSubscription {ns}/{name}: {e}")))?;
        let layout = Layout {
            prefix: sink.spec.prefix.trim_matches('/').to_string(),
            topic: sink.spec.topic.clone(),
            granularity: sink.spec.partitioning.granularity,
            by_symbol: sink.spec.partitioning.by_symbol,
            format: sink.spec.format,
            dead_letter_prefix: sink.spec.dead_letter.prefix.clone(),
        };
        let context = Context {
            subscription: format!("{ns}/{name}"),
            source: Source {
                sink: sink_name.clone(),
                topic: sink.spec.topic.clone(),
                table: Table::of_sink(&sink_ns, &sink_name, &sink.spec),
            },
            region: region.to_string(),
            console_links: sink.spec.endpoint.is_none(),
            filter,
            filter_names: policy.map(policy_names).unwrap_or_default(),
            max_listed: limits::MAX_LISTED,
            max_partitions: limits::MAX_PARTITION_LINES,
        };
        Ok(Settings {
            subscription: format!("{ns}/{name}"),
            watch: Watch::new(&sink.spec.bucket, layout, &spec.watch.prefix, &spec.watch.suffix),
            context,
            digest_interval_ms: spec.digest_interval_seconds as i64 * 1000,
            rate_limit_per_minute: spec.rate_limit_per_minute,
            queue_url: queue_url.to_string(),
            topic_arn: outputs.topic_arn.clone(),
            email_to,
            max_held_objects: limits::MAX_HELD_OBJECTS,
        })
    }
}

/// The client that reads footers from the sink's bucket: the clients' S3 (region and endpoint
/// of the flags), at the sink's own endpoint when it has one (an S3-compatible store, path
/// style unless `forcePathStyle: false`), in the sink's region when it names one.
pub fn sink_s3_client(clients: &ticklake_aws::Clients, sink: &S3Sink) -> aws_sdk_s3::Client {
    let spec = &sink.spec;
    if spec.endpoint.is_none() && spec.region.as_deref().is_none_or(|r| r == clients.region) {
        return clients.s3.clone();
    }
    let mut b = clients.s3.config().to_builder();
    if let Some(ep) = &spec.endpoint {
        b = b.endpoint_url(ep).force_path_style(spec.force_path_style.unwrap_or(true));
    }
    if let Some(r) = &spec.region {
        b = b.region(aws_sdk_s3::config::Region::new(r.clone()));
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(yaml: &str) -> AlertSubscription {
        serde_yaml::from_str(&format!(
            "apiVersion: ticklake.dev/v1alpha1\nkind: AlertSubscription\nmetadata: {{name: new-ticks, namespace: data}}\nspec:\n{yaml}"
        ))
        .unwrap()
    }

    fn sink() -> S3Sink {
        serde_yaml::from_str(
            "apiVersion: ticklake.dev/v1alpha1\nkind: S3Sink\nmetadata: {name: lake, namespace: data}\nspec:\n  topic: ticks\n  bucket: b\n  prefix: t/ticks\n  partitioning: {bySymbol: true}\n  glue: {database: market}\n",
        )
        .unwrap()
    }

    const EP: &str = "  endpoints: [{protocol: email, address: A@x.io}, {protocol: email, address: a@X.io}, {protocol: sqs, address: 'arn:aws:sqs:us-east-1:123456789012:q'}]\n";

    #[test]
    fn settings_come_from_the_two_resources() {
        let s = Settings::new(
            &sub(&format!("  watch: {{sinkRef: lake, suffix: .parquet}}\n  digestIntervalSeconds: 60\n  rateLimitPerMinute: 5\n  filterPolicy: '{{\"symbol\": [\"AAPL\"]}}'\n{EP}")),
            &sink(),
            "https://q",
            &Outputs { topic_arn: Some("arn:t".into()), smtp: true },
            "eu-west-1",
        )
        .unwrap();
        assert_eq!(s.subscription, "data/new-ticks");
        assert_eq!(s.digest_interval_ms, 60_000);
        assert_eq!(s.rate_limit_per_minute, Some(5));
        assert_eq!(s.email_to, ["A@x.io"], "email endpoints once, whatever the case");
        assert_eq!(s.watch.key_prefix, "t/ticks/");
        assert_eq!(s.watch.suffix, ".parquet");
        assert!(s.watch.layout.by_symbol);
        assert_eq!(s.context.source.table.display, "market.ticks");
        assert_eq!(s.context.filter_names, ["symbol"]);
        assert!(s.context.filter.is_some() && s.context.console_links);

        // Without SMTP no emails; `{}` is no policy.
        let s = Settings::new(
            &sub(&format!("  watch: {{bucket: b}}\n  filterPolicy: '{{}}'\n{EP}")),
            &sink(),
            "https://q",
            &Outputs { topic_arn: Some("arn:t".into()), smtp: false },
            "eu-west-1",
        )
        .unwrap();
        assert!(s.email_to.is_empty() && s.context.filter.is_none());
        assert_eq!(s.digest_interval_ms, 300_000, "the spec's default");
    }

    #[test]
    fn settings_refuse_what_cannot_work() {
        let topic = Outputs { topic_arn: Some("arn:t".into()), smtp: false };
        for (yaml, outputs, why) in [
            (format!("  watch: {{sinkRef: other}}\n{EP}"), &topic, "S3Sink \"other\""),
            (format!("  watch: {{bucket: other}}\n{EP}"), &topic, "bucket \"other\""),
            (format!("  watch: {{sinkRef: lake}}\n  filterPolicy: '{{\"a\": 1}}'\n{EP}"), &topic, "filter policy"),
            (format!("  watch: {{sinkRef: lake}}\n{EP}"), &Outputs::default(), "nowhere to deliver"),
            (
                "  watch: {sinkRef: lake}\n  endpoints: [{protocol: sqs, address: 'arn:aws:sqs:us-east-1:123456789012:q'}]\n".to_string(),
                &Outputs { topic_arn: None, smtp: true },
                "nowhere to deliver",
            ),
        ] {
            let e = Settings::new(&sub(&yaml), &sink(), "https://q", outputs, "r").unwrap_err();
            assert!(e.to_string().contains(why), "{yaml}: {e}");
        }
        let e =
            Settings::new(&sub(&format!("  watch: {{sinkRef: lake}}\n{EP}")), &sink(), " ", &topic, "r").unwrap_err();
        assert!(e.to_string().contains("--queue-url"));
    }
}
