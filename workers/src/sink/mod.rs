//! The S3 sink worker: a topic landed exactly once as Parquet (or JSON lines) objects.
//!
//! ```text
//!  bus ──poll──▶ per-partition buffer ──flush──▶ encode (pure) ──▶ claim ──▶ upload ──▶ commit
//!                 (decode + validate;            Hive folders      create-if-     objects   Kafka
//!                  bad → dead letters)           sorted rows       absent                   offset
//! ```
//!
//! * One buffer per assigned Kafka partition; a buffer is written out when it holds
//!   `flush.maxRecords` ticks or `flush.maxBytes` bytes, or its oldest tick waited
//!   `flush.intervalMs`, or the sink's memory limit is reached (then the largest buffer goes
//!   first). While a batch is written the sink does not poll: that is its backpressure.
//! * Exactly once: see [`claim`]. In short — a batch's objects have deterministic names, a
//!   create-if-absent claim decides who writes each batch, and recovery on assignment rewrites
//!   a claimed batch whose upload was cut short.
//! * Refused messages (see `ticklake_api::tick::Tick::decode`) are written, with their raw
//!   bytes and reason, to the batch's dead-letter object; the good rows around them land
//!   normally.

pub mod claim;
pub mod encode;
pub mod layout;

use crate::store::{ObjectStore, StoreError};
use crate::telemetry::{Health, ReasonLabel, SinkMetrics, now_ms};
use bytes::Bytes;
use claim::{Claim, ClaimError, ClaimedObject};
use encode::DeadLetter;
use futures::StreamExt;
use layout::Layout;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticklake_api::crd::{S3SinkSpec, SinkFormat};
use ticklake_api::tick::Tick;
use ticklake_bus::{Bus, BusError, Consumer, ConsumerEvent, Record};
use tokio::sync::watch;

/// Most records taken from the bus per poll.
const POLL_MAX_RECORDS: usize = 50_000;
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Uploads in flight per batch.
const UPLOAD_CONCURRENCY: usize = 8;
/// Estimated memory of one buffered tick beyond its message bytes.
const TICK_OVERHEAD_BYTES: u64 = 96;
const LAG_EVERY: Duration = Duration::from_secs(5);

/// How a sink runs.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Worker name for logs and metrics.
    pub name: String,
    pub topic: String,
    pub group: String,
    pub layout: Layout,
    pub max_records: u64,
    pub max_bytes: u64,
    pub interval: Duration,
    pub max_message_bytes: usize,
    /// All partitions' buffers together stay under this.
    pub memory_limit_bytes: u64,
    /// Identifies this process in claims.
    pub writer: String,
}

impl SinkConfig {
    /// The configuration an `S3Sink` resource named `name` asks for.
    pub fn from_spec(name: &str, spec: &S3SinkSpec) -> SinkConfig {
        SinkConfig {
            name: name.to_string(),
            topic: spec.topic.clone(),
            group: spec.consumer_group.clone().unwrap_or_else(|| format!("ticklake-sink-{name}")),
            layout: Layout {
                prefix: spec.prefix.trim_matches('/').to_string(),
                topic: spec.topic.clone(),
                granularity: spec.partitioning.granularity,
                by_symbol: spec.partitioning.by_symbol,
                format: spec.format,
                dead_letter_prefix: spec.dead_letter.prefix.clone(),
            },
            max_records: spec.flush.max_records,
            max_bytes: spec.flush.max_bytes,
            interval: Duration::from_millis(spec.flush.interval_ms),
            max_message_bytes: spec.dead_letter.max_message_bytes as usize,
            memory_limit_bytes: 1024 * 1024 * 1024,
            writer: default_writer(),
        }
    }
}

/// `<hostname or pod>/<pid>`.
pub fn default_writer() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .or_else(|_| std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()))
        .unwrap_or_else(|_| "unknown".into());
    format!("{host}/{}", std::process::id())
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error("encoding batch {first}..={last} of partition {partition}: {detail}")]
    Encode { partition: i32, first: i64, last: i64, detail: String },
}

/// What a finished sink did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SinkSummary {
    pub records: u64,
    pub dead_letters: u64,
    pub objects: u64,
    pub batches: u64,
}

#[derive(Default)]
struct Buffer {
    first: Option<i64>,
    last: i64,
    ticks: Vec<Tick>,
    dead: Vec<DeadLetter>,
    /// Kafka timestamps of the buffered messages (for freshness).
    kafka_ts: Vec<i64>,
    bytes: u64,
    since: Option<Instant>,
}

impl Buffer {
    fn len(&self) -> u64 {
        (self.ticks.len() + self.dead.len()) as u64
    }
}

struct PartState {
    /// Next offset to land; `None` until known.
    next: Option<i64>,
    buf: Buffer,
    rebuild: Option<Claim>,
}

/// An object ready to upload.
#[derive(Debug, Clone)]
pub struct PendingObject {
    pub key: String,
    pub body: Bytes,
    pub rows: u64,
}

/// Encodes a batch into its objects: one per Hive folder, plus one dead-letter object when
/// any message was refused. Pure and deterministic.
pub fn build_objects(
    layout: &Layout,
    partition: i32,
    first: i64,
    last: i64,
    ticks: Vec<Tick>,
    dead: &[DeadLetter],
) -> Result<Vec<PendingObject>, String> {
    let mut groups: BTreeMap<String, Vec<Tick>> = BTreeMap::new();
    for t in ticks {
        let folder = layout.folder(t.ts_us, &t.symbol);
        groups.entry(folder).or_default().push(t);
    }
    let mut out = Vec::with_capacity(groups.len() + 1);
    for (folder, mut ticks) in groups {
        encode::sort_ticks(&mut ticks);
        let body = match layout.format {
            SinkFormat::Parquet => encode::parquet(&ticks).map_err(|e| e.to_string())?,
            SinkFormat::JsonLines => encode::json_lines(&ticks),
        };
        out.push(PendingObject {
            key: layout.data_key(&folder, partition, first, last),
            body: Bytes::from(body),
            rows: ticks.len() as u64,
        });
    }
    if !dead.is_empty() {
        out.push(PendingObject {
            key: layout.dead_letter_key(partition, first, last),
            body: Bytes::from(encode::dead_letters(dead)),
            rows: dead.len() as u64,
        });
    }
    Ok(out)
}

/// A sink worker.
pub struct Sink {
    cfg: SinkConfig,
    bus: Arc<dyn Bus>,
    store: Arc<dyn ObjectStore>,
    metrics: SinkMetrics,
    health: Arc<Health>,
    parts: HashMap<i32, PartState>,
    buffered_bytes: u64,
    summary: SinkSummary,
}

impl Sink {
    pub fn new(
        cfg: SinkConfig,
        bus: Arc<dyn Bus>,
        store: Arc<dyn ObjectStore>,
        metrics: SinkMetrics,
        health: Arc<Health>,
    ) -> Sink {
        assert!(cfg.max_records > 0 && cfg.max_bytes > 0, "flush limits are positive");
        Sink {
            cfg,
            bus,
            store,
            metrics,
            health,
            parts: HashMap::new(),
            buffered_bytes: 0,
            summary: SinkSummary::default(),
        }
    }

    /// Runs until `shutdown` turns true, then writes out what is buffered, commits and leaves
    /// the group. An error means the process should exit (and be restarted): nothing
    /// acknowledged is lost, recovery on restart completes what was cut short.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<SinkSummary, SinkError> {
        let mut consumer = self.bus.consumer(&self.cfg.topic, &self.cfg.group).await?;
        tracing::info!(sink = %self.cfg.name, topic = %self.cfg.topic, group = %self.cfg.group, store = %self.store.describe(), "sink started");
        self.health.set_ready(true);
        let mut last_lag = Instant::now() - LAG_EVERY;
        let result = loop {
            if *shutdown.borrow() {
                break Ok(());
            }
            let ev = tokio::select! {
                ev = consumer.poll(POLL_MAX_RECORDS, POLL_TIMEOUT) => ev,
                _ = shutdown.changed() => continue,
            };
            let step = match ev {
                Ok(ev) => self.handle(consumer.as_mut(), ev).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = step {
                break Err(e);
            }
            if let Err(e) = self.flush_due(consumer.as_mut()).await {
                break Err(e);
            }
            if last_lag.elapsed() >= LAG_EVERY {
                last_lag = Instant::now();
                self.update_lag().await;
            }
            self.health.beat();
        };
        let result = match result {
            Ok(()) => {
                tracing::info!(sink = %self.cfg.name, "shutting down: writing out buffers");
                let parts: Vec<i32> = self.parts.keys().copied().collect();
                let mut r = Ok(());
                for p in parts {
                    if let Err(e) = self.flush(consumer.as_mut(), p).await {
                        r = Err(e);
                        break;
                    }
                }
                r
            }
            Err(e) => Err(e),
        };
        self.health.set_ready(false);
        if let Err(e) = consumer.close().await {
            tracing::warn!(error = %e, "leaving the consumer group failed");
        }
        result.map(|()| self.summary.clone())
    }

    async fn handle(&mut self, consumer: &mut dyn Consumer, ev: ConsumerEvent) -> Result<(), SinkError> {
        match ev {
            ConsumerEvent::Assigned(ps) => {
                let hints = consumer.committed(&ps).await?;
                for (p, hint) in ps.into_iter().zip(hints) {
                    // The consumer starts reading at the committed offset.
                    self.resume_partition(consumer, p, hint, hint).await?;
                }
                self.metrics.assigned_partitions.set(self.parts.len() as i64);
            }
            ConsumerEvent::Revoked(ps) => {
                for p in ps {
                    // Whoever gets the partition next resumes from the claim chain; buffered
                    // records are simply read again there.
                    self.drop_part(p);
                    tracing::info!(sink = %self.cfg.name, partition = p, "partition revoked");
                }
                self.metrics.assigned_partitions.set(self.parts.len() as i64);
            }
            ConsumerEvent::Records(rs) => {
                for r in rs {
                    self.accept(consumer, r).await?;
                }
            }
            ConsumerEvent::Idle => {}
        }
        Ok(())
    }

    /// Follows the claim chain of `p` from `hint` and puts the partition in the state it says:
    /// where to continue, and which claimed batch to rewrite first. Seeks the consumer unless
    /// it already reads at that offset (`reading_at`).
    async fn resume_partition(
        &mut self,
        consumer: &mut dyn Consumer,
        p: i32,
        hint: Option<i64>,
        reading_at: Option<i64>,
    ) -> Result<(), SinkError> {
        let resume = claim::recover(self.store.as_ref(), &self.cfg.layout, p, hint).await?;
        tracing::info!(sink = %self.cfg.name, partition = p, hint = ?hint, resume = ?resume.next, rebuild = resume.rebuild.is_some(), "partition resumed from the claim chain");
        if let Some(c) = &resume.rebuild {
            self.metrics.rebuilds.inc();
            tracing::warn!(partition = p, first = c.first, last = c.last, "rewriting an incomplete batch");
        }
        if let Some(next) = resume.next
            && Some(next) != reading_at
        {
            consumer.seek(p, next).await?;
        }
        self.drop_part(p);
        self.parts.insert(p, PartState { next: resume.next, buf: Buffer::default(), rebuild: resume.rebuild });
        Ok(())
    }

    fn drop_part(&mut self, p: i32) {
        if let Some(old) = self.parts.remove(&p) {
            self.buffered_bytes -= old.buf.bytes;
        }
    }

    async fn accept(&mut self, consumer: &mut dyn Consumer, r: Record) -> Result<(), SinkError> {
        let Some(st) = self.parts.get_mut(&r.partition) else {
            tracing::debug!(partition = r.partition, offset = r.offset, "record of an unassigned partition dropped");
            return Ok(());
        };
        if let Some(next) = st.next {
            if r.offset < next {
                return Ok(()); // landed already
            }
            if r.offset > next && st.buf.first.is_none() && st.rebuild.is_none() {
                tracing::debug!(
                    partition = r.partition,
                    expected = next,
                    got = r.offset,
                    "offset gap (compaction, retention or transaction markers)"
                );
            } else if r.offset > next && st.rebuild.is_some() {
                tracing::error!(
                    partition = r.partition,
                    expected = next,
                    got = r.offset,
                    "offsets of a claimed batch are gone from the topic; rewriting what remains"
                );
            }
        }
        let size = r.value.len() as u64 + TICK_OVERHEAD_BYTES;
        let buf = &mut st.buf;
        if buf.first.is_none() {
            buf.first = Some(r.offset);
            buf.since = Some(Instant::now());
        }
        buf.last = r.offset;
        buf.bytes += size;
        buf.kafka_ts.push(r.timestamp_ms);
        self.buffered_bytes += size;
        match Tick::decode(&r.value, self.cfg.max_message_bytes) {
            Ok(t) => buf.ticks.push(t),
            Err(reason) => {
                self.metrics.dead_letters.get_or_create(&ReasonLabel { reason: reason.code().to_string() }).inc();
                buf.dead.push(DeadLetter {
                    topic: self.cfg.topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    reason: reason.code().to_string(),
                    detail: reason.to_string(),
                    key_base64: r.key.as_ref().map(|k| encode::base64(k)),
                    value_base64: encode::base64(&r.value),
                });
            }
        }
        st.next = Some(r.offset + 1);
        if let Some(c) = &st.rebuild
            && r.offset >= c.last
        {
            let p = r.partition;
            self.rewrite(consumer, p).await?;
        }
        Ok(())
    }

    async fn flush_due(&mut self, consumer: &mut dyn Consumer) -> Result<(), SinkError> {
        let due: Vec<i32> = self
            .parts
            .iter()
            .filter(|(_, s)| {
                s.rebuild.is_none()
                    && s.buf.first.is_some()
                    && (s.buf.len() >= self.cfg.max_records
                        || s.buf.bytes >= self.cfg.max_bytes
                        || s.buf.since.is_some_and(|t| t.elapsed() >= self.cfg.interval))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.flush(consumer, p).await?;
        }
        while self.buffered_bytes > self.cfg.memory_limit_bytes {
            let Some(p) = self
                .parts
                .iter()
                .filter(|(_, s)| s.rebuild.is_none() && s.buf.first.is_some())
                .max_by_key(|(_, s)| s.buf.bytes)
                .map(|(p, _)| *p)
            else {
                break;
            };
            self.flush(consumer, p).await?;
        }
        Ok(())
    }

    fn take(&mut self, p: i32) -> Option<(i64, i64, Buffer)> {
        let st = self.parts.get_mut(&p)?;
        let first = st.buf.first?;
        let buf = std::mem::take(&mut st.buf);
        self.buffered_bytes -= buf.bytes;
        Some((first, buf.last, buf))
    }

    async fn encode(
        &self,
        layout: &Layout,
        p: i32,
        first: i64,
        last: i64,
        buf: Buffer,
    ) -> Result<(Vec<PendingObject>, u64, u64, Vec<i64>), SinkError> {
        let layout = layout.clone();
        let records = buf.ticks.len() as u64;
        let dead = buf.dead.len() as u64;
        let kafka_ts = buf.kafka_ts;
        let (ticks, dl) = (buf.ticks, buf.dead);
        let objects = tokio::task::spawn_blocking(move || build_objects(&layout, p, first, last, ticks, &dl))
            .await
            .map_err(|e| SinkError::Encode { partition: p, first, last, detail: e.to_string() })?
            .map_err(|detail| SinkError::Encode { partition: p, first, last, detail })?;
        Ok((objects, records, dead, kafka_ts))
    }

    async fn upload(&self, objects: Vec<PendingObject>) -> Result<u64, SinkError> {
        let store = self.store.clone();
        let mut bytes = 0;
        let mut results = futures::stream::iter(objects.into_iter().map(|o| {
            let store = store.clone();
            async move {
                let n = o.body.len() as u64;
                store.put(&o.key, o.body).await.map(|()| n)
            }
        }))
        .buffer_unordered(UPLOAD_CONCURRENCY);
        while let Some(r) = results.next().await {
            bytes += r?;
        }
        Ok(bytes)
    }

    /// Writes out partition `p`'s buffer as a new claimed batch.
    async fn flush(&mut self, consumer: &mut dyn Consumer, p: i32) -> Result<(), SinkError> {
        if self.parts.get(&p).is_some_and(|s| s.rebuild.is_some()) {
            return Ok(()); // an incomplete rewrite is redone by the next owner
        }
        let Some((first, last, buf)) = self.take(p) else { return Ok(()) };
        let started = Instant::now();
        let layout = self.cfg.layout.clone();
        let (objects, records, dead, kafka_ts) = self.encode(&layout, p, first, last, buf).await?;
        let claim = Claim {
            v: 1,
            topic: self.cfg.topic.clone(),
            partition: p,
            first,
            last,
            records,
            dead_letters: dead,
            writer: self.cfg.writer.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            layout,
            objects: objects
                .iter()
                .map(|o| ClaimedObject { key: o.key.clone(), rows: o.rows, bytes: o.body.len() as u64 })
                .collect(),
        };
        let key = self.cfg.layout.claim_key(p, first);
        let body = Bytes::from(serde_json::to_vec_pretty(&claim).expect("serialising a claim cannot fail"));
        if !self.store.put_if_absent(&key, body).await? {
            // Another worker claimed these offsets first: follow the chain from its claim.
            self.metrics.claim_conflicts.inc();
            tracing::warn!(partition = p, first, last, "batch already claimed by another worker; following its claim");
            // The consumer has read past `first`: always seek.
            self.resume_partition(consumer, p, Some(first), None).await?;
            return Ok(());
        }
        let bytes = self.upload(objects).await?;
        self.landed(consumer, p, &claim, bytes, &kafka_ts, started).await;
        Ok(())
    }

    /// Rewrites the claimed batch of partition `p` from the records re-read into its buffer.
    async fn rewrite(&mut self, consumer: &mut dyn Consumer, p: i32) -> Result<(), SinkError> {
        let Some(st) = self.parts.get_mut(&p) else { return Ok(()) };
        let Some(c) = st.rebuild.take() else { return Ok(()) };
        let buf = std::mem::take(&mut st.buf);
        self.buffered_bytes -= buf.bytes;
        let started = Instant::now();
        let (objects, _, _, kafka_ts) = self.encode(&c.layout, p, c.first, c.last, buf).await?;
        let want: std::collections::BTreeSet<&str> = c.objects.iter().map(|o| o.key.as_str()).collect();
        let got: std::collections::BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        if want != got {
            tracing::error!(
                partition = p,
                first = c.first,
                last = c.last,
                ?want,
                ?got,
                "rewritten batch differs from its claim (records lost to retention?)"
            );
        }
        let bytes = self.upload(objects).await?;
        self.landed(consumer, p, &c, bytes, &kafka_ts, started).await;
        Ok(())
    }

    async fn landed(
        &mut self,
        consumer: &mut dyn Consumer,
        p: i32,
        c: &Claim,
        bytes: u64,
        kafka_ts: &[i64],
        started: Instant,
    ) {
        let now = now_ms();
        for ts in kafka_ts {
            self.metrics.freshness_seconds.observe((now - ts).max(0) as f64 / 1000.0);
        }
        self.metrics.records.inc_by(c.records);
        self.metrics.objects.inc_by(c.objects.len() as u64);
        self.metrics.bytes.inc_by(bytes);
        self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        self.summary.records += c.records;
        self.summary.dead_letters += c.dead_letters;
        self.summary.objects += c.objects.len() as u64;
        self.summary.batches += 1;
        tracing::info!(
            sink = %self.cfg.name, partition = p, first = c.first, last = c.last, ticks = c.records,
            dead_letters = c.dead_letters, objects = c.objects.len(), bytes, ms = started.elapsed().as_millis() as u64,
            last_object = %c.objects.first().map(|o| o.key.as_str()).unwrap_or(""), "batch landed"
        );
        // The commit is only a hint for recovery: a failure here costs a longer chain walk.
        if let Err(e) = consumer.commit(&[(p, c.last + 1)]).await {
            tracing::warn!(partition = p, error = %e, "committing the offset failed (recovery follows the claim chain)");
        }
    }

    async fn update_lag(&self) {
        let mut lag = 0i64;
        for (p, st) in &self.parts {
            match self.bus.watermarks(&self.cfg.topic, *p).await {
                Ok((low, high)) => {
                    let landed_up_to = st.buf.first.or(st.next).unwrap_or(low).max(low);
                    lag += (high - landed_up_to).max(0);
                }
                Err(e) => tracing::debug!(partition = p, error = %e, "watermarks unavailable"),
            }
        }
        self.metrics.lag.set(lag);
    }
}
