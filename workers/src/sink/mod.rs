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
//!   first). Batches are encoded, claimed and uploaded in the background while the sink keeps
//!   polling — at most two at once, and one per partition at a time (so a partition's claim
//!   chain only ever has its last link incomplete); when both slots are busy the sink waits,
//!   which is its backpressure. Polled messages are decoded on two threads.
//! * Exactly once: see [`claim`]. In short — a batch's objects have deterministic names, a
//!   create-if-absent claim decides who writes each batch, and recovery on assignment rewrites
//!   a claimed batch whose upload was cut short.
//! * Refused messages (see `ticklake_api::tick::Tick::decode`) are written, with their raw
//!   bytes and reason, to the batch's dead-letter object; the good rows around them land
//!   normally.

pub mod claim;
pub mod encode;
pub mod layout;
pub mod replay;

use crate::store::{ObjectStore, StoreError};
use crate::telemetry::{Health, ReasonLabel, SinkMetrics, now_ms};
use bytes::Bytes;
use claim::{Claim, ClaimError, ClaimedObject};
use encode::DeadLetter;
use futures::StreamExt;
use layout::Layout;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticklake_api::crd::{S3SinkSpec, SinkFormat};
use ticklake_api::tick::{RejectReason, Tick};
use ticklake_bus::{Bus, BusError, Consumer, ConsumerEvent, Record};
use tokio::sync::watch;

/// Most records taken from the bus per poll.
const POLL_MAX_RECORDS: usize = 50_000;
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Uploads in flight per batch.
const UPLOAD_CONCURRENCY: usize = 8;
/// Batches written in the background at once (their memory is on top of the buffers').
const MAX_FLUSHES_IN_FLIGHT: usize = 2;
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
    /// Told about every landed batch (the notifier's `object.created` events), if set. The
    /// channel is bounded: when it is full the sink waits, after its objects are written and
    /// before it commits. Unset: nothing changes.
    pub landed_events: Option<tokio::sync::mpsc::Sender<LandedBatch>>,
}

/// A batch whose objects just became visible in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedBatch {
    /// The sink's name.
    pub sink: String,
    pub topic: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    pub objects: Vec<LandedObject>,
    /// When the batch landed, ms since the epoch.
    pub landed_at_ms: i64,
}

/// One object of a [`LandedBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedObject {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    /// An object of refused messages (under the dead-letter prefix).
    pub dead_letter: bool,
}

impl LandedBatch {
    /// The batch a claim records (the claim's layout tells dead-letter objects apart).
    /// [`replay`] uses it too, so a replayed batch reads exactly like the live report.
    pub fn from_claim(sink: &str, c: &Claim, landed_at_ms: i64) -> LandedBatch {
        LandedBatch {
            sink: sink.to_string(),
            topic: c.topic.clone(),
            partition: c.partition,
            first: c.first,
            last: c.last,
            objects: c
                .objects
                .iter()
                .map(|o| LandedObject {
                    key: o.key.clone(),
                    rows: o.rows,
                    bytes: o.bytes,
                    dead_letter: c.layout.is_dead_letter_key(&o.key),
                })
                .collect(),
            landed_at_ms,
        }
    }
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
            landed_events: None,
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
    #[error("background write failed: {0}")]
    Task(String),
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
    /// Id of this partition's batch being written in the background, if any. A partition
    /// writes one batch at a time, so only the last claim of its chain can be incomplete.
    flushing: Option<u64>,
}

/// How a background write of a batch ended.
enum FlushOutcome {
    Landed {
        claim: Claim,
        bytes: u64,
        kafka_ts: Vec<i64>,
        started: Instant,
    },
    /// Another worker claimed the batch's first offset first.
    Lost {
        first: i64,
        last: i64,
    },
}

type FlushResult = (i32, u64, Result<FlushOutcome, SinkError>);

/// An object ready to upload.
#[derive(Debug, Clone)]
pub struct PendingObject {
    pub key: String,
    pub body: Bytes,
    pub rows: u64,
}

/// `((time bucket, folder symbol rank), (kind, symbol rank, event time, seq), index)`.
type SortKey = ((i64, u32), (u8, u32, i64, u64), u32);

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
    // One sort puts the batch in folder order (time bucket, then symbol when folders are per
    // symbol) and, inside a folder, in the order objects store rows (kind, symbol, event time,
    // seq: see `encode`). It sorts compact keys — symbols replaced by their rank among the
    // batch's symbols — instead of moving ticks and comparing strings; each folder is then a
    // run of the order, its name formatted once.
    let mut symbols: Vec<&str> = ticks.iter().map(|t| t.symbol.as_str()).collect::<HashSet<_>>().into_iter().collect();
    symbols.sort_unstable();
    let rank: HashMap<&str, u32> = symbols.iter().enumerate().map(|(i, s)| (*s, i as u32)).collect();
    let bucket_us = layout.granularity_us();
    let folder_rank = |symbol_rank: u32| if layout.by_symbol { symbol_rank } else { 0 };
    let mut order: Vec<SortKey> = ticks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let r = rank[t.symbol.as_str()];
            ((t.ts_us.div_euclid(bucket_us), folder_rank(r)), (encode::kind_rank(&t.body), r, t.ts_us, t.seq), i as u32)
        })
        .collect();
    order.sort_unstable();
    let mut out = Vec::new();
    for run in order.chunk_by(|a, b| a.0 == b.0) {
        let rows: Vec<&Tick> = run.iter().map(|k| &ticks[k.2 as usize]).collect();
        let folder = layout.folder(rows[0].ts_us, &rows[0].symbol);
        let body = match layout.format {
            SinkFormat::Parquet => encode::parquet(&rows).map_err(|e| e.to_string())?,
            SinkFormat::JsonLines => encode::json_lines(&rows),
        };
        out.push(PendingObject {
            key: layout.data_key(&folder, partition, first, last),
            body: Bytes::from(body),
            rows: rows.len() as u64,
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

/// Polled batches at least this large are decoded on two threads.
const PARALLEL_DECODE_MIN: usize = 4096;

/// Decodes a polled batch, the second half on the blocking pool while this task decodes the
/// first: JSON decoding is the sink's largest cost after encoding.
async fn decode_all(rs: &[Record], max_bytes: usize) -> Result<Vec<Result<Tick, RejectReason>>, SinkError> {
    if rs.len() < PARALLEL_DECODE_MIN {
        return Ok(rs.iter().map(|r| Tick::decode(&r.value, max_bytes)).collect());
    }
    let mid = rs.len() / 2;
    let second: Vec<Bytes> = rs[mid..].iter().map(|r| r.value.clone()).collect();
    let other =
        tokio::task::spawn_blocking(move || second.iter().map(|v| Tick::decode(v, max_bytes)).collect::<Vec<_>>());
    let mut out: Vec<_> = rs[..mid].iter().map(|r| Tick::decode(&r.value, max_bytes)).collect();
    out.extend(other.await.map_err(|e| SinkError::Task(e.to_string()))?);
    Ok(out)
}

/// Encodes a batch off the async runtime. Returns its objects, ticks, dead letters and the
/// messages' Kafka timestamps.
async fn encode(
    layout: Layout,
    p: i32,
    first: i64,
    last: i64,
    buf: Buffer,
) -> Result<(Vec<PendingObject>, u64, u64, Vec<i64>), SinkError> {
    let records = buf.ticks.len() as u64;
    let dead = buf.dead.len() as u64;
    let (ticks, dl, kafka_ts) = (buf.ticks, buf.dead, buf.kafka_ts);
    let objects = tokio::task::spawn_blocking(move || build_objects(&layout, p, first, last, ticks, &dl))
        .await
        .map_err(|e| SinkError::Encode { partition: p, first, last, detail: e.to_string() })?
        .map_err(|detail| SinkError::Encode { partition: p, first, last, detail })?;
    Ok((objects, records, dead, kafka_ts))
}

/// Uploads objects, [`UPLOAD_CONCURRENCY`] at a time; returns the bytes written.
async fn upload(store: Arc<dyn ObjectStore>, objects: Vec<PendingObject>) -> Result<u64, SinkError> {
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

/// Encodes, claims and uploads one batch — the exactly-once write (see [`claim`]).
#[allow(clippy::too_many_arguments)]
async fn write_batch(
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    topic: String,
    writer: String,
    p: i32,
    first: i64,
    last: i64,
    buf: Buffer,
) -> Result<FlushOutcome, SinkError> {
    let started = Instant::now();
    let key = layout.claim_key(p, first);
    let (objects, records, dead, kafka_ts) = encode(layout.clone(), p, first, last, buf).await?;
    let claim = Claim {
        v: 1,
        topic,
        partition: p,
        first,
        last,
        records,
        dead_letters: dead,
        writer,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        layout,
        objects: objects
            .iter()
            .map(|o| ClaimedObject { key: o.key.clone(), rows: o.rows, bytes: o.body.len() as u64 })
            .collect(),
    };
    let body = Bytes::from(serde_json::to_vec_pretty(&claim).expect("serialising a claim cannot fail"));
    if !store.put_if_absent(&key, body).await? {
        return Ok(FlushOutcome::Lost { first, last });
    }
    let bytes = upload(store, objects).await?;
    Ok(FlushOutcome::Landed { claim, bytes, kafka_ts, started })
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
    /// Batches being encoded, claimed and uploaded while the sink keeps polling.
    in_flight: tokio::task::JoinSet<FlushResult>,
    next_flush_id: u64,
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
            in_flight: tokio::task::JoinSet::new(),
            next_flush_id: 0,
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
            if let Err(e) = self.reap(consumer.as_mut(), false).await {
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
                self.drain(consumer.as_mut()).await
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
                let decoded = decode_all(&rs, self.cfg.max_message_bytes).await?;
                for (r, d) in rs.into_iter().zip(decoded) {
                    self.accept(consumer, r, d).await?;
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
        self.parts.insert(
            p,
            PartState { next: resume.next, buf: Buffer::default(), rebuild: resume.rebuild, flushing: None },
        );
        Ok(())
    }

    fn drop_part(&mut self, p: i32) {
        if let Some(old) = self.parts.remove(&p) {
            self.buffered_bytes -= old.buf.bytes;
        }
    }

    async fn accept(
        &mut self,
        consumer: &mut dyn Consumer,
        r: Record,
        decoded: Result<Tick, RejectReason>,
    ) -> Result<(), SinkError> {
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
        match decoded {
            Ok(t) => buf.ticks.push(t),
            Err(reason) => {
                self.metrics.dead_letters.get_or_create(&ReasonLabel { reason: reason.code().to_string() }).inc();
                self.metrics.dead_letters_total.inc();
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
                    && s.flushing.is_none()
                    && s.buf.first.is_some()
                    && (s.buf.len() >= self.cfg.max_records
                        || s.buf.bytes >= self.cfg.max_bytes
                        || s.buf.since.is_some_and(|t| t.elapsed() >= self.cfg.interval))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.start_flush(consumer, p).await?;
        }
        while self.buffered_bytes > self.cfg.memory_limit_bytes {
            let Some(p) = self
                .parts
                .iter()
                .filter(|(_, s)| s.rebuild.is_none() && s.flushing.is_none() && s.buf.first.is_some())
                .max_by_key(|(_, s)| s.buf.bytes)
                .map(|(p, _)| *p)
            else {
                // Every buffer is waiting for its partition's previous batch.
                if self.in_flight.is_empty() {
                    break;
                }
                self.reap(consumer, true).await?;
                continue;
            };
            self.start_flush(consumer, p).await?;
        }
        Ok(())
    }

    /// Handles finished background writes: all that are done, or (with `wait`) at least one.
    async fn reap(&mut self, consumer: &mut dyn Consumer, wait: bool) -> Result<(), SinkError> {
        if wait && let Some(r) = self.in_flight.join_next().await {
            self.finish_flush(consumer, r).await?;
        }
        while let Some(r) = self.in_flight.try_join_next() {
            self.finish_flush(consumer, r).await?;
        }
        Ok(())
    }

    /// Waits for every background write, then writes out every buffer (shutdown).
    async fn drain(&mut self, consumer: &mut dyn Consumer) -> Result<(), SinkError> {
        while !self.in_flight.is_empty() {
            self.reap(consumer, true).await?;
        }
        let parts: Vec<i32> = self.parts.keys().copied().collect();
        for p in parts {
            self.start_flush(consumer, p).await?;
        }
        while !self.in_flight.is_empty() {
            self.reap(consumer, true).await?;
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

    /// Starts writing out partition `p`'s buffer as a new claimed batch in the background
    /// (waiting first for a slot when [`MAX_FLUSHES_IN_FLIGHT`] are running).
    async fn start_flush(&mut self, consumer: &mut dyn Consumer, p: i32) -> Result<(), SinkError> {
        if self.parts.get(&p).is_none_or(|s| s.rebuild.is_some() || s.flushing.is_some()) {
            return Ok(()); // an incomplete rewrite is redone by the next owner
        }
        while self.in_flight.len() >= MAX_FLUSHES_IN_FLIGHT {
            self.reap(consumer, true).await?;
        }
        // Reaping may have resumed the partition from another worker's claim.
        if self.parts.get(&p).is_none_or(|s| s.rebuild.is_some() || s.flushing.is_some()) {
            return Ok(());
        }
        let Some((first, last, buf)) = self.take(p) else { return Ok(()) };
        let id = self.next_flush_id;
        self.next_flush_id += 1;
        if let Some(st) = self.parts.get_mut(&p) {
            st.flushing = Some(id);
        }
        let (store, layout, topic, writer) =
            (self.store.clone(), self.cfg.layout.clone(), self.cfg.topic.clone(), self.cfg.writer.clone());
        self.in_flight.spawn(async move {
            let r = write_batch(store, layout, topic, writer, p, first, last, buf).await;
            (p, id, r)
        });
        Ok(())
    }

    async fn finish_flush(
        &mut self,
        consumer: &mut dyn Consumer,
        joined: Result<FlushResult, tokio::task::JoinError>,
    ) -> Result<(), SinkError> {
        let (p, id, outcome) = joined.map_err(|e| SinkError::Task(e.to_string()))?;
        let current = match self.parts.get_mut(&p) {
            Some(st) if st.flushing == Some(id) => {
                st.flushing = None;
                true
            }
            _ => false, // revoked, or resumed since: the chain decides, not this write
        };
        match outcome? {
            FlushOutcome::Landed { claim, bytes, kafka_ts, started } => {
                self.landed(consumer, p, &claim, bytes, &kafka_ts, started, current).await;
            }
            FlushOutcome::Lost { first, last } => {
                self.metrics.claim_conflicts.inc();
                tracing::warn!(
                    partition = p,
                    first,
                    last,
                    "batch already claimed by another worker; following its claim"
                );
                if current {
                    // The consumer has read past `first`: always seek.
                    self.resume_partition(consumer, p, Some(first), None).await?;
                }
            }
        }
        Ok(())
    }

    /// Rewrites the claimed batch of partition `p` from the records re-read into its buffer.
    async fn rewrite(&mut self, consumer: &mut dyn Consumer, p: i32) -> Result<(), SinkError> {
        let Some(st) = self.parts.get_mut(&p) else { return Ok(()) };
        let Some(c) = st.rebuild.take() else { return Ok(()) };
        let buf = std::mem::take(&mut st.buf);
        self.buffered_bytes -= buf.bytes;
        let started = Instant::now();
        let (objects, _, _, kafka_ts) = encode(c.layout.clone(), p, c.first, c.last, buf).await?;
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
        let bytes = upload(self.store.clone(), objects).await?;
        self.landed(consumer, p, &c, bytes, &kafka_ts, started, true).await;
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
        commit: bool,
    ) {
        let now = now_ms();
        for ts in kafka_ts {
            let ms = (now - ts).max(0);
            self.metrics.freshness_seconds.observe(ms as f64 / 1000.0);
            self.metrics.freshness.record(ms);
        }
        self.metrics.records.inc_by(c.records);
        self.metrics.objects.inc_by(c.objects.len() as u64);
        self.metrics.bytes.inc_by(bytes);
        self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        if let Some(o) = c.objects.iter().rev().find(|o| !self.cfg.layout.is_dead_letter_key(&o.key)) {
            self.metrics.object_written(&o.key);
        }
        self.summary.records += c.records;
        self.summary.dead_letters += c.dead_letters;
        self.summary.objects += c.objects.len() as u64;
        self.summary.batches += 1;
        tracing::info!(
            sink = %self.cfg.name, partition = p, first = c.first, last = c.last, ticks = c.records,
            dead_letters = c.dead_letters, objects = c.objects.len(), bytes, ms = started.elapsed().as_millis() as u64,
            last_object = %c.objects.first().map(|o| o.key.as_str()).unwrap_or(""), "batch landed"
        );
        if let Some(tx) = &self.cfg.landed_events {
            let batch = LandedBatch::from_claim(&self.cfg.name, c, now);
            if tx.send(batch).await.is_err() {
                tracing::warn!(sink = %self.cfg.name, partition = p, first = c.first, "landed-batch listener is gone; event not sent");
            }
        }
        // The commit is only a hint for recovery: a failure here costs a longer chain walk.
        if commit && let Err(e) = consumer.commit(&[(p, c.last + 1)]).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ticklake_api::crd::TimeGranularity;
    use ticklake_api::tick::TickBody;

    #[test]
    fn objects_are_one_per_folder_with_rows_in_encode_order() {
        let t0 = 1_764_081_000_000_000; // 2025-11-25T14:30:00Z
        let mut ticks = Vec::new();
        for i in 0..40u64 {
            let body = if i % 2 == 0 {
                TickBody::Trade { price: 1.0 + i as f64, size: 1 }
            } else {
                TickBody::Quote { bid: 1.0, bid_size: 1, ask: 2.0, ask_size: 1 }
            };
            // Two symbols, two hours, kinds interleaved, arriving out of order.
            let hour = (i % 4 / 2) as i64 * 3_600_000_000;
            let symbol = if i % 3 == 0 { "MSFT" } else { "AAPL" };
            ticks.push(Tick { symbol: symbol.into(), ts_us: t0 + hour + (40 - i as i64), seq: i, body });
        }
        for by_symbol in [false, true] {
            let layout = Layout {
                prefix: "lake".into(),
                topic: "ticks".into(),
                granularity: TimeGranularity::Hour,
                by_symbol,
                format: ticklake_api::crd::SinkFormat::Parquet,
                dead_letter_prefix: "_dead_letters".into(),
            };
            let objects = build_objects(&layout, 0, 0, 39, ticks.clone(), &[]).unwrap();
            assert_eq!(objects.len(), if by_symbol { 4 } else { 2 });
            let mut all = 0;
            for o in &objects {
                let rows = encode::read_parquet(o.body.clone()).unwrap();
                let mut sorted = rows.clone();
                encode::sort_ticks(&mut sorted);
                assert_eq!(rows, sorted, "{}: rows in (kind, symbol, event_time, seq) order", o.key);
                let folder = layout.folder(rows[0].ts_us, &rows[0].symbol);
                assert!(rows.iter().all(|r| layout.folder(r.ts_us, &r.symbol) == folder), "{}", o.key);
                all += rows.len();
            }
            assert_eq!(all, ticks.len());
        }
    }
}
