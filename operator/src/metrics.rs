//! The operator's Prometheus metrics and its health endpoints.
//!
//! Served on one port: `GET /metrics`, `GET /healthz` (the process and its API connection are
//! alive), `GET /readyz` (started; a standby replica is ready too — it is healthy, just not
//! leading).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ticklake_operator_reconciles_total` | counter | `kind`, `outcome` (`ok`, `error`) |
//! | `ticklake_operator_reconcile_errors_total` | counter | `kind`, `reason` |
//! | `ticklake_operator_reconcile_duration_seconds` | histogram | `kind` |
//! | `ticklake_operator_writes_total` | counter | `kind`, `object` (`ConfigMap`, `StatefulSet`, `Deployment`, `status`, `topic`) |
//! | `ticklake_operator_queue_depth` | gauge | `kind`: resources whose latest generation is not yet reconciled |
//! | `ticklake_operator_resources` | gauge | `kind`: resources watched |
//! | `ticklake_operator_reconciles_in_flight` | gauge | `kind` |
//! | `ticklake_operator_leader` | gauge | 1 while this replica leads |

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub kind: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabel {
    pub kind: String,
    pub object: String,
}

/// Gauges computed when scraped (from the controllers' caches).
pub type Sampler = Box<dyn Fn(&Metrics) + Send + Sync>;

pub struct Metrics {
    registry: Mutex<Registry>,
    pub reconciles: Family<OutcomeLabel, Counter>,
    pub errors: Family<ReasonLabel, Counter>,
    pub duration: Family<KindLabel, Histogram>,
    pub writes: Family<ObjectLabel, Counter>,
    pub queue_depth: Family<KindLabel, Gauge>,
    pub resources: Family<KindLabel, Gauge>,
    pub in_flight: Family<KindLabel, Gauge>,
    pub leader: Gauge,
    samplers: Mutex<Vec<Sampler>>,
    ready: AtomicBool,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.002, 2.0, 14))),
            writes: Family::default(),
            queue_depth: Family::default(),
            resources: Family::default(),
            in_flight: Family::default(),
            leader: Gauge::default(),
            samplers: Mutex::default(),
            ready: AtomicBool::new(false),
        };
        {
            let mut r = m.registry.lock().expect("metrics lock");
            let r = r.sub_registry_with_prefix("ticklake_operator");
            r.register("reconciles", "Reconciles, by kind and outcome", m.reconciles.clone());
            r.register("reconcile_errors", "Failed reconciles, by kind and reason", m.errors.clone());
            r.register("reconcile_duration_seconds", "Time of one reconcile", m.duration.clone());
            r.register("writes", "Writes to the API server and Kafka, by kind and object", m.writes.clone());
            r.register("queue_depth", "Resources whose latest generation is not reconciled yet", m.queue_depth.clone());
            r.register("resources", "Resources watched", m.resources.clone());
            r.register("reconciles_in_flight", "Reconciles running now", m.in_flight.clone());
            r.register("leader", "1 while this replica leads", m.leader.clone());
        }
        Arc::new(m)
    }

    pub fn kind(kind: &str) -> KindLabel {
        KindLabel { kind: kind.to_string() }
    }

    pub fn wrote(&self, kind: &str, object: &str) {
        self.writes.get_or_create(&ObjectLabel { kind: kind.into(), object: object.into() }).inc();
    }

    /// Registers a function that sets gauges just before each scrape.
    pub fn add_sampler(&self, s: Sampler) {
        self.samplers.lock().expect("metrics lock").push(s);
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn encode(&self) -> String {
        for s in self.samplers.lock().expect("metrics lock").iter() {
            s(self);
        }
        let mut out = String::new();
        let reg = self.registry.lock().expect("metrics lock");
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encoding metrics to a string");
        out
    }

    /// Serves `/metrics`, `/healthz`, `/readyz` until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(|State(m): State<Arc<Metrics>>| async move { m.encode() }))
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/readyz",
                get(|State(m): State<Arc<Metrics>>| async move {
                    if m.ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                    }
                }),
            )
            .with_state(self);
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await
    }
}
