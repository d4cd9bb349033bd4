//! Prometheus metrics and health endpoints shared by the workers.
//!
//! One HTTP server per process serves:
//! * `GET /metrics` — Prometheus text format; each worker's series carry a `worker` label
//!   (`producer/<name>` or `sink/<name>`), so one local runner with several workers exposes
//!   them all;
//! * `GET /healthz` — liveness: 200 while every worker's loop has ticked within
//!   [`STALL_AFTER`]; a stuck loop turns it 503 so Kubernetes restarts the pod;
//! * `GET /readyz` — readiness: 200 once every worker is connected and working;
//! * `GET /status` — the [`StatusReport`] the operator reads for a resource's `status`: totals,
//!   messages per second over the last minute, consumer lag, the last object written.

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
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticklake_api::report::{StatusReport, WorkerKind, WorkerReport};

/// Messages per second are averaged over this window.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How often the rate window takes a sample of each worker's total.
const RATE_SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// A worker whose loop has not ticked for this long is reported dead.
pub const STALL_AFTER: Duration = Duration::from_secs(120);

/// Liveness and readiness of one worker.
#[derive(Debug)]
pub struct Health {
    name: String,
    ready: AtomicBool,
    last_beat_ms: AtomicI64,
}

impl Health {
    /// A worker's health: not ready yet, alive from now.
    pub fn new(name: &str) -> Health {
        Health { name: name.to_string(), ready: AtomicBool::new(false), last_beat_ms: AtomicI64::new(now_ms()) }
    }
    pub fn beat(&self) {
        self.last_beat_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.beat();
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
    pub fn is_live(&self) -> bool {
        now_ms() - self.last_beat_ms.load(Ordering::Relaxed) < STALL_AFTER.as_millis() as i64
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The process's metrics registry and the health of its workers.
#[derive(Default)]
pub struct Telemetry {
    registry: Mutex<Registry>,
    workers: Mutex<Vec<Arc<Health>>>,
    reports: Mutex<Vec<ReportSource>>,
}

/// What `/status` reads for one worker.
struct ReportSource {
    health: Arc<Health>,
    kind: WorkerKind,
    total: Counter,
    rate: RateWindow,
    sink: Option<SinkMetrics>,
}

/// Samples of a monotonic total over [`RATE_WINDOW`], for a rate per second.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<(i64, u64)>,
}

impl RateWindow {
    /// Bound on samples kept, whatever the sampling frequency.
    const MAX_SAMPLES: usize = 256;

    /// Records `total` at `now_ms`; keeps one sample at or before the window's start as base.
    pub fn sample(&mut self, now_ms: i64, total: u64) {
        if self.samples.back().is_some_and(|&(t, _)| t >= now_ms) {
            // Same millisecond (or a clock step back): replace, never reorder.
            self.samples.pop_back();
        }
        self.samples.push_back((now_ms, total));
        let start = now_ms - RATE_WINDOW.as_millis() as i64;
        while self.samples.len() > 2 && (self.samples[1].0 <= start || self.samples.len() > Self::MAX_SAMPLES) {
            self.samples.pop_front();
        }
    }

    /// Per second between the oldest and newest sample; 0 with fewer than two.
    pub fn per_second(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, v0)), Some(&(t1, v1))) if t1 > t0 => v1.saturating_sub(v0) as f64 * 1000.0 / (t1 - t0) as f64,
            _ => 0.0,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Latencies in milliseconds with fixed resolution — 1 ms to 1 s, 10 ms to 10 s, 100 ms to
/// 120 s, and one overflow bucket — for quantiles that Prometheus' coarse buckets cannot give
/// (the freshness benchmark reads p50/p99 from it).
#[derive(Debug)]
pub struct LatencyRecorder {
    buckets: Vec<std::sync::atomic::AtomicU64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder { buckets: (0..Self::BUCKETS).map(|_| std::sync::atomic::AtomicU64::new(0)).collect() }
    }
}

impl LatencyRecorder {
    const BUCKETS: usize = 1000 + 900 + 1100 + 1;

    fn bucket(ms: i64) -> usize {
        let ms = ms.max(0) as usize;
        if ms < 1000 {
            ms
        } else if ms < 10_000 {
            1000 + (ms - 1000) / 10
        } else if ms < 120_000 {
            1900 + (ms - 10_000) / 100
        } else {
            Self::BUCKETS - 1
        }
    }

    /// Upper bound of a bucket, in milliseconds.
    fn upper_ms(b: usize) -> u64 {
        match b {
            0..1000 => b as u64 + 1,
            1000..1900 => 1000 + (b as u64 - 999) * 10,
            1900..3000 => 10_000 + (b as u64 - 1899) * 100,
            _ => u64::MAX,
        }
    }

    pub fn record(&self, ms: i64) {
        self.buckets[Self::bucket(ms)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The smallest bucket bound (ms) under which at least `q` of the samples lie.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        assert!((0.0..=1.0).contains(&q), "a quantile is within 0..=1");
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= want {
                return Some(Self::upper_ms(i));
            }
        }
        None
    }
}

/// Metrics of one sink worker.
#[derive(Clone)]
pub struct SinkMetrics {
    /// Ticks landed in data objects.
    pub records: Counter,
    /// Refused messages by reason code.
    pub dead_letters: Family<ReasonLabel, Counter>,
    pub objects: Counter,
    pub bytes: Counter,
    pub flush_seconds: Histogram,
    /// Seconds from a message's Kafka timestamp to its object being visible.
    pub freshness_seconds: Histogram,
    /// The same samples at millisecond resolution, for quantiles.
    pub freshness: Arc<LatencyRecorder>,
    /// Messages in assigned partitions not yet landed.
    pub lag: Gauge,
    /// Batches found claimed but incomplete after a crash, and rewritten.
    pub rebuilds: Counter,
    /// Claims lost to another worker (a rebalance race).
    pub claim_conflicts: Counter,
    pub assigned_partitions: Gauge,
    /// All dead letters, whatever the reason.
    pub dead_letters_total: Counter,
    /// Key of the last data object written and when (ms since the epoch).
    pub last_object: Arc<Mutex<Option<(String, i64)>>>,
}

impl SinkMetrics {
    /// Records a data object just written.
    pub fn object_written(&self, key: &str) {
        *self.last_object.lock().expect("last object lock") = Some((key.to_string(), now_ms()));
    }
}

/// Metrics of one producer worker.
#[derive(Clone)]
pub struct ProducerMetrics {
    pub produced: Counter,
    pub bad_rows: Counter,
    pub batch_seconds: Histogram,
}

impl Telemetry {
    pub fn new() -> Arc<Telemetry> {
        Arc::new(Telemetry::default())
    }

    fn health(&self, worker: &str) -> Arc<Health> {
        let h = Arc::new(Health::new(worker));
        self.workers.lock().expect("telemetry lock").push(h.clone());
        h
    }

    /// Registers a sink's metrics under `worker`.
    pub fn sink(&self, worker: &str) -> (SinkMetrics, Arc<Health>) {
        let m = SinkMetrics {
            records: Counter::default(),
            dead_letters: Family::default(),
            objects: Counter::default(),
            bytes: Counter::default(),
            flush_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            freshness_seconds: Histogram::new(
                [0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0].into_iter(),
            ),
            freshness: Arc::new(LatencyRecorder::default()),
            lag: Gauge::default(),
            rebuilds: Counter::default(),
            claim_conflicts: Counter::default(),
            assigned_partitions: Gauge::default(),
            dead_letters_total: Counter::default(),
            last_object: Arc::default(),
        };
        for code in ticklake_api::tick::RejectReason::CODES {
            drop(m.dead_letters.get_or_create(&ReasonLabel { reason: code.to_string() }));
        }
        let mut reg = self.registry.lock().expect("telemetry lock");
        let r = reg.sub_registry_with_label(("worker".into(), worker.to_string().into()));
        r.register("ticklake_sink_records", "Ticks landed in data objects", m.records.clone());
        r.register("ticklake_sink_dead_letters", "Messages refused, by reason", m.dead_letters.clone());
        r.register("ticklake_sink_objects", "Objects written", m.objects.clone());
        r.register("ticklake_sink_bytes", "Bytes written", m.bytes.clone());
        r.register("ticklake_sink_flush_seconds", "Time to encode and write one batch", m.flush_seconds.clone());
        r.register(
            "ticklake_sink_freshness_seconds",
            "Seconds from a message's Kafka timestamp to its object being visible",
            m.freshness_seconds.clone(),
        );
        r.register("ticklake_sink_consumer_lag", "Messages not yet landed in assigned partitions", m.lag.clone());
        r.register("ticklake_sink_rebuilds", "Claimed batches rewritten after a crash", m.rebuilds.clone());
        r.register(
            "ticklake_sink_claim_conflicts",
            "Batches claimed first by another worker",
            m.claim_conflicts.clone(),
        );
        r.register("ticklake_sink_assigned_partitions", "Kafka partitions assigned", m.assigned_partitions.clone());
        drop(reg);
        let health = self.health(worker);
        self.reports.lock().expect("telemetry lock").push(ReportSource {
            health: health.clone(),
            kind: WorkerKind::Sink,
            total: m.records.clone(),
            rate: RateWindow::default(),
            sink: Some(m.clone()),
        });
        (m, health)
    }

    /// Registers a producer's metrics under `worker`.
    pub fn producer(&self, worker: &str) -> (ProducerMetrics, Arc<Health>) {
        let m = ProducerMetrics {
            produced: Counter::default(),
            bad_rows: Counter::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        };
        let mut reg = self.registry.lock().expect("telemetry lock");
        let r = reg.sub_registry_with_label(("worker".into(), worker.to_string().into()));
        r.register("ticklake_producer_ticks", "Ticks acknowledged by the bus", m.produced.clone());
        r.register("ticklake_producer_bad_rows", "Replay rows skipped as invalid", m.bad_rows.clone());
        r.register("ticklake_producer_batch_seconds", "Time to produce one batch", m.batch_seconds.clone());
        drop(reg);
        let health = self.health(worker);
        self.reports.lock().expect("telemetry lock").push(ReportSource {
            health: health.clone(),
            kind: WorkerKind::Producer,
            total: m.produced.clone(),
            rate: RateWindow::default(),
            sink: None,
        });
        (m, health)
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().expect("telemetry lock");
        // Encoding into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encoding metrics to a string");
        out
    }

    /// Takes a sample of every worker's total for its rate.
    pub fn sample_rates(&self) {
        let now = now_ms();
        for r in self.reports.lock().expect("telemetry lock").iter_mut() {
            r.rate.sample(now, r.total.get());
        }
    }

    /// The live figures of every worker (takes a rate sample first).
    pub fn report(&self) -> StatusReport {
        self.sample_rates();
        let reports = self.reports.lock().expect("telemetry lock");
        let workers = reports
            .iter()
            .map(|r| {
                let last = r.sink.as_ref().and_then(|s| s.last_object.lock().expect("last object lock").clone());
                WorkerReport {
                    worker: r.health.name.clone(),
                    kind: r.kind,
                    ready: r.health.is_ready(),
                    total: r.total.get(),
                    messages_per_second: (r.rate.per_second() * 1000.0).round() / 1000.0,
                    consumer_lag: r.sink.as_ref().map(|s| s.lag.get()),
                    dead_letters: r.sink.as_ref().map(|s| s.dead_letters_total.get()),
                    objects: r.sink.as_ref().map(|s| s.objects.get()),
                    last_object_time_ms: last.as_ref().map(|l| l.1),
                    last_object_key: last.map(|l| l.0),
                }
            })
            .collect();
        StatusReport { workers }
    }

    /// `(ready, live, detail)` over all workers.
    pub fn status(&self) -> (bool, bool, String) {
        let ws = self.workers.lock().expect("telemetry lock");
        let mut detail = String::new();
        let (mut ready, mut live) = (true, true);
        for w in ws.iter() {
            let (r, l) = (w.is_ready(), w.is_live());
            ready &= r;
            live &= l;
            detail.push_str(&format!("{} ready={} live={}\n", w.name, r, l));
        }
        (ready, live, detail)
    }

    /// Serves `/metrics`, `/healthz`, `/readyz` and `/status` on `addr` until `shutdown`
    /// resolves; samples the rates every few seconds meanwhile.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(|State(t): State<Arc<Telemetry>>| async move { t.encode() }))
            .route(
                "/healthz",
                get(|State(t): State<Arc<Telemetry>>| async move {
                    let (_, live, detail) = t.status();
                    (if live { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, detail)
                }),
            )
            .route(
                "/readyz",
                get(|State(t): State<Arc<Telemetry>>| async move {
                    let (ready, _, detail) = t.status();
                    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, detail)
                }),
            )
            .route(
                "/status",
                get(|State(t): State<Arc<Telemetry>>| async move {
                    let body = serde_json::to_string(&t.report()).unwrap_or_else(|_| "{}".to_string());
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
                }),
            )
            .with_state(self.clone());
        let sampler = {
            let t = Arc::downgrade(&self);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(RATE_SAMPLE_EVERY);
                loop {
                    every.tick().await;
                    let Some(t) = t.upgrade() else { break };
                    t.sample_rates();
                }
            })
        };
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        sampler.abort();
        served
    }
}

#[cfg(test)]
mod tests {
    use super::{LatencyRecorder, RATE_WINDOW, RateWindow, Telemetry};

    #[test]
    fn rate_is_over_the_last_minute() {
        let mut r = RateWindow::default();
        assert_eq!(r.per_second(), 0.0);
        r.sample(0, 0);
        assert_eq!(r.per_second(), 0.0);
        r.sample(10_000, 1_000);
        assert_eq!(r.per_second(), 100.0);
        // A fast minute, then a slow one: the old samples leave the window.
        for s in 2..=20u64 {
            r.sample(s as i64 * 10_000, 1_000 * s.min(8) + 10 * s.saturating_sub(8));
        }
        let window = RATE_WINDOW.as_millis() as f64 / 1000.0;
        assert!((r.per_second() - 10.0 * 6.0 / window).abs() < 1e-9, "{}", r.per_second());
        assert!(r.samples.len() <= 8);
        // Same millisecond twice: replaced, not divided by zero.
        r.sample(200_000, 10_000);
        assert!(r.per_second().is_finite());
    }

    #[test]
    fn status_report_has_the_sink_figures() {
        let t = Telemetry::new();
        let (sink, health) = t.sink("sink/s");
        let (prod, _) = t.producer("producer/p");
        health.set_ready(true);
        sink.records.inc_by(40);
        sink.lag.set(7);
        sink.dead_letters_total.inc();
        sink.objects.inc_by(2);
        sink.object_written("ticks/year=2026/a.parquet");
        prod.produced.inc_by(5);
        let r = t.report();
        assert_eq!(r.workers.len(), 2);
        let s = &r.workers[0];
        assert_eq!((s.worker.as_str(), s.ready, s.total), ("sink/s", true, 40));
        assert_eq!((s.consumer_lag, s.dead_letters, s.objects), (Some(7), Some(1), Some(2)));
        assert_eq!(s.last_object_key.as_deref(), Some("ticks/year=2026/a.parquet"));
        assert!(s.last_object_time_ms.is_some());
        let p = &r.workers[1];
        assert_eq!((p.worker.as_str(), p.ready, p.total, p.consumer_lag), ("producer/p", false, 5, None));
    }

    #[test]
    fn latency_quantiles_have_the_documented_resolution() {
        let r = LatencyRecorder::default();
        assert_eq!(r.quantile_ms(0.5), None);
        for ms in 1..=1000 {
            r.record(ms);
        }
        assert_eq!(r.quantile_ms(0.5), Some(501));
        assert_eq!(r.quantile_ms(0.99), Some(991));
        r.record(1_234);
        r.record(45_678);
        r.record(10_000_000);
        assert_eq!(r.count(), 1003);
        assert_eq!(r.quantile_ms(1.0), Some(u64::MAX));
        let one = LatencyRecorder::default();
        one.record(1_234);
        assert_eq!(one.quantile_ms(0.5), Some(1_240));
        let two = LatencyRecorder::default();
        two.record(45_678);
        assert_eq!(two.quantile_ms(0.5), Some(45_700));
    }
}
