//! The notifier's Prometheus metrics and health, served like the other workers'
//! (`crate::telemetry`): `GET /metrics`, `/healthz` (the loop ticked within
//! [`crate::telemetry::STALL_AFTER`]), `/readyz` (the queue answered). Every series carries
//! `worker="notifier/<namespace>/<name>"`.

use crate::telemetry::{Health, ReasonLabel};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// `output` label: `sns` or `smtp`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutputLabel {
    pub output: String,
}

/// `operation` label of SQS calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: String,
}

/// Counters are exposed with Prometheus' `_total` suffix.
#[derive(Clone, Default)]
pub struct NotifierMetrics {
    /// `ticklake_notifier_messages_received`: SQS messages received (a message received again
    /// after its visibility timeout counts again).
    pub messages_received: Counter,
    /// `ticklake_notifier_events_received`: object-created records in them.
    pub events_received: Counter,
    /// `ticklake_notifier_unparseable_messages`: messages that are no S3 event, left in the
    /// queue for its redrive policy to move to the dead-letter queue (counted per receive).
    pub unparseable: Counter,
    /// `ticklake_notifier_skipped_keys{reason}`: keys that are no data object of the sink
    /// (`other_bucket`, `not_watched`, `dead_letter`, `claim`, `temporary`, `not_layout`).
    pub skipped_keys: Family<ReasonLabel, Counter>,
    /// `ticklake_notifier_objects_filtered`: objects the filter policy excluded.
    pub objects_filtered: Counter,
    /// `ticklake_notifier_footer_failures`: objects whose rows are unknown (footer unread).
    pub footer_failures: Counter,
    /// `ticklake_notifier_objects_notified`: objects in a delivered message or digest.
    pub objects_notified: Counter,
    /// `ticklake_notifier_sns_published`: messages published to the topic.
    pub published: Counter,
    /// `ticklake_notifier_emails_sent`: emails accepted by the SMTP server.
    pub emails_sent: Counter,
    /// `ticklake_notifier_delivery_failures{output}`: failed attempts (retried with backoff).
    pub delivery_failures: Family<OutputLabel, Counter>,
    /// `ticklake_notifier_deliveries_abandoned`: deliveries given up (a refused message, or
    /// too many attempts); their SQS messages go back to the queue.
    pub abandoned: Counter,
    /// `ticklake_notifier_rate_limited`: times a delivery waited for the per-minute limit.
    pub rate_limited: Counter,
    /// `ticklake_notifier_sqs_deleted`: SQS messages deleted after delivery.
    pub deleted: Counter,
    /// `ticklake_notifier_sqs_errors{operation}`: failed SQS calls.
    pub sqs_errors: Family<OperationLabel, Counter>,
    /// `ticklake_notifier_held_objects`: objects received and not yet delivered.
    pub held_objects: Gauge,
}

/// The registry, the metrics and the health of one notifier.
pub struct NotifierTelemetry {
    registry: Registry,
    pub metrics: NotifierMetrics,
    pub health: Health,
}

impl NotifierTelemetry {
    pub fn new(worker: &str) -> Arc<NotifierTelemetry> {
        let m = NotifierMetrics::default();
        for s in super::object::Skip::ALL {
            drop(m.skipped_keys.get_or_create(&ReasonLabel { reason: s.as_str().to_string() }));
        }
        for o in ["sns", "smtp"] {
            drop(m.delivery_failures.get_or_create(&OutputLabel { output: o.to_string() }));
        }
        let mut registry = Registry::default();
        let r = registry.sub_registry_with_label(("worker".into(), worker.to_string().into()));
        r.register("ticklake_notifier_messages_received", "SQS messages received", m.messages_received.clone());
        r.register("ticklake_notifier_events_received", "Object-created records received", m.events_received.clone());
        r.register(
            "ticklake_notifier_unparseable_messages",
            "Messages that are no S3 event, left for the dead-letter queue",
            m.unparseable.clone(),
        );
        r.register(
            "ticklake_notifier_skipped_keys",
            "Keys that are no data object of the sink",
            m.skipped_keys.clone(),
        );
        r.register(
            "ticklake_notifier_objects_filtered",
            "Objects the filter policy excluded",
            m.objects_filtered.clone(),
        );
        r.register(
            "ticklake_notifier_footer_failures",
            "Objects whose Parquet footer could not be read (rows unknown)",
            m.footer_failures.clone(),
        );
        r.register(
            "ticklake_notifier_objects_notified",
            "Objects in delivered notifications",
            m.objects_notified.clone(),
        );
        r.register("ticklake_notifier_sns_published", "Messages published to the SNS topic", m.published.clone());
        r.register("ticklake_notifier_emails_sent", "Emails accepted by the SMTP server", m.emails_sent.clone());
        r.register(
            "ticklake_notifier_delivery_failures",
            "Failed delivery attempts, by output",
            m.delivery_failures.clone(),
        );
        r.register(
            "ticklake_notifier_deliveries_abandoned",
            "Deliveries given up; their messages went back to the queue",
            m.abandoned.clone(),
        );
        r.register(
            "ticklake_notifier_rate_limited",
            "Deliveries that waited for the rate limit",
            m.rate_limited.clone(),
        );
        r.register("ticklake_notifier_sqs_deleted", "SQS messages deleted after delivery", m.deleted.clone());
        r.register("ticklake_notifier_sqs_errors", "Failed SQS calls, by operation", m.sqs_errors.clone());
        r.register("ticklake_notifier_held_objects", "Objects received and not yet delivered", m.held_objects.clone());
        Arc::new(NotifierTelemetry { registry, metrics: m, health: Health::new(worker) })
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding metrics to a string");
        out
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let status = |ok: bool, what: &str| {
            (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, format!("notifier {what}={ok}\n"))
        };
        let app = Router::new()
            .route("/metrics", get(|State(t): State<Arc<NotifierTelemetry>>| async move { t.encode() }))
            .route(
                "/healthz",
                get(move |State(t): State<Arc<NotifierTelemetry>>| async move { status(t.health.is_live(), "live") }),
            )
            .route(
                "/readyz",
                get(move |State(t): State<Arc<NotifierTelemetry>>| async move { status(t.health.is_ready(), "ready") }),
            )
            .with_state(self);
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_the_worker_label() {
        let t = NotifierTelemetry::new("notifier/data/new-ticks");
        t.metrics.published.inc();
        t.metrics.skipped_keys.get_or_create(&ReasonLabel { reason: "claim".into() }).inc_by(2);
        t.metrics.held_objects.set(7);
        let text = t.encode();
        for want in [
            "ticklake_notifier_sns_published_total{worker=\"notifier/data/new-ticks\"} 1",
            "ticklake_notifier_skipped_keys_total{worker=\"notifier/data/new-ticks\",reason=\"claim\"} 2",
            "ticklake_notifier_skipped_keys_total{worker=\"notifier/data/new-ticks\",reason=\"temporary\"} 0",
            "ticklake_notifier_delivery_failures_total{worker=\"notifier/data/new-ticks\",output=\"smtp\"} 0",
            "ticklake_notifier_held_objects{worker=\"notifier/data/new-ticks\"} 7",
            "ticklake_notifier_unparseable_messages_total{worker=\"notifier/data/new-ticks\"} 0",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        assert!(!t.health.is_ready() && t.health.is_live());
    }
}
