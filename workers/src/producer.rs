//! The producer worker: a `StockStream`'s source into its topic.
//!
//! The source (simulator or replay, `ticklake-sources`) fills batches; each tick becomes a
//! version-1 JSON message keyed by its symbol (so a symbol's ticks stay in one partition, in
//! order) and stamped with the produce time (which the sink's freshness metric measures
//! from). Up to [`MAX_IN_FLIGHT_BATCHES`] batches are in flight at once; pacing follows the
//! source: a steady rate (token bucket), unthrottled, or event time × speed for replays.

use crate::telemetry::{Health, ProducerMetrics, now_ms};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticklake_api::crd::StockStreamSpec;
use ticklake_api::tick::Tick;
use ticklake_bus::{Bus, BusError, OutRecord};
use ticklake_sources::{Pacing, Shard, Source, SourceError};
use tokio::sync::watch;

/// Batches sent but not yet acknowledged.
pub const MAX_IN_FLIGHT_BATCHES: usize = 4;
/// Largest batch taken from the source at once.
pub const MAX_BATCH: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("source: {0}")]
    Source(#[from] SourceError),
}

/// What a finished producer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerSummary {
    pub produced: u64,
    pub bad_rows: u64,
    /// The source ran out (replay without loop, or `maxTicks` reached).
    pub exhausted: bool,
    /// Ticks skipped at start because the topic already held them (see [`ProducerWorker::run`]).
    pub resumed_after: u64,
}

/// A producer worker for one `StockStream`.
pub struct ProducerWorker {
    pub name: String,
    pub spec: StockStreamSpec,
    pub shard: Shard,
    pub bus: Arc<dyn Bus>,
    pub metrics: ProducerMetrics,
    pub health: Arc<Health>,
}

impl ProducerWorker {
    /// Continues a stream instead of starting it over. Sources are deterministic (a seed, or
    /// files), so a single producer (shard `0/1`) that finds `k` messages in its topic skips
    /// its first `k` ticks: (`symbol`, `seq`) stay unique across restarts, and `maxTicks`
    /// counts the whole stream. This assumes the stream is its topic's only writer. After a
    /// clean stop the resume is exact; after a crash, batches in flight may have landed out of
    /// order, so up to [`MAX_IN_FLIGHT_BATCHES`] × [`MAX_BATCH`] ticks can be repeated or
    /// skipped.
    async fn resume(&self, source: &mut Source, topic: &str, partitions: i32) -> Result<u64, ProducerError> {
        if self.shard.count != 1 {
            return Ok(0);
        }
        let mut written: u64 = 0;
        for p in 0..partitions {
            let (_, high) = self.bus.watermarks(topic, p).await?;
            written += high.max(0) as u64;
        }
        if written == 0 {
            return Ok(0);
        }
        let t0 = Instant::now();
        let mut scratch = Vec::with_capacity(MAX_BATCH);
        let mut skipped = 0u64;
        while skipped < written {
            scratch.clear();
            let o = source.next_batch(&mut scratch, (written - skipped).min(MAX_BATCH as u64) as usize)?;
            skipped += scratch.len() as u64;
            if o.finished || scratch.is_empty() {
                break;
            }
        }
        tracing::info!(stream = %self.name, topic, skipped, ms = t0.elapsed().as_millis() as u64, "resuming the stream after the ticks already in the topic");
        Ok(skipped)
    }

    /// Creates the topic when missing, then produces until the source is exhausted or
    /// `shutdown` turns true; waits for every sent tick to be acknowledged before returning.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<ProducerSummary, ProducerError> {
        let topic = self.bus.ensure_topic(&self.spec.topic, self.spec.partitions, self.spec.replication_factor).await?;
        if topic.partitions < self.spec.partitions {
            tracing::warn!(topic = %topic.name, has = topic.partitions, wants = self.spec.partitions, "topic has fewer partitions than the spec asks; it is never resized here");
        }
        let producer = self.bus.producer(&self.spec.topic).await?;
        let mut source = Source::from_spec(&self.spec.source, self.shard, now_ms() * 1000)?;
        let resumed = self.resume(&mut source, &topic.name, topic.partitions).await?;
        let pacing = source.pacing();
        tracing::info!(stream = %self.name, topic = %topic.name, partitions = topic.partitions, created = topic.created, ?pacing, shard = ?self.shard, "producer started");
        self.health.set_ready(true);

        let batch_size = match pacing {
            Pacing::Rate(r) => ((r / 20.0) as usize).clamp(1, MAX_BATCH),
            _ => MAX_BATCH,
        };
        let started = Instant::now();
        let mut started_pass = started;
        let mut first_event_us: Option<i64> = None;
        let mut summary = ProducerSummary { resumed_after: resumed, ..ProducerSummary::default() };
        let mut generated: u64 = 0;
        let mut in_flight = FuturesUnordered::new();
        let mut ticks: Vec<Tick> = Vec::with_capacity(batch_size);
        let result: Result<(), ProducerError> = loop {
            if *shutdown.borrow() {
                break Ok(());
            }
            ticks.clear();
            let outcome = match source.next_batch(&mut ticks, batch_size) {
                Ok(o) => o,
                Err(e) => break Err(e.into()),
            };
            for bad in &outcome.bad_rows {
                tracing::warn!(stream = %self.name, %bad, "bad replay row skipped");
            }
            let bad = outcome.bad_rows.len() as u64 + outcome.bad_rows_unlisted;
            if outcome.bad_rows_unlisted > 0 {
                tracing::warn!(stream = %self.name, count = outcome.bad_rows_unlisted, "further bad replay rows skipped (details not listed)");
            }
            summary.bad_rows += bad;
            self.metrics.bad_rows.inc_by(bad);
            if outcome.new_pass {
                // A looping replay started over: pace the new pass from now.
                first_event_us = None;
                started_pass = Instant::now();
            }
            // Pace before sending: the batch is due when its last tick is.
            let due = match pacing {
                Pacing::Rate(r) if r > 0.0 => {
                    Some(started + Duration::from_secs_f64((generated + ticks.len() as u64) as f64 / r))
                }
                Pacing::EventTime { speed } if speed > 0.0 => match (ticks.last(), first_event_us) {
                    (Some(last), Some(first)) => {
                        Some(started_pass + Duration::from_secs_f64(((last.ts_us - first).max(0) as f64 / 1e6) / speed))
                    }
                    _ => None,
                },
                _ => None,
            };
            if first_event_us.is_none() {
                first_event_us = ticks.first().map(|t| t.ts_us);
            }
            if let Some(due) = due {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = shutdown.changed() => {}
                }
            }
            generated += ticks.len() as u64;
            if !ticks.is_empty() {
                let now = now_ms();
                let batch: Vec<OutRecord> = ticks
                    .iter()
                    .map(|t| OutRecord {
                        key: Some(Bytes::copy_from_slice(t.symbol.as_bytes())),
                        value: Bytes::from(t.encode()),
                        timestamp_ms: now,
                        partition: None,
                    })
                    .collect();
                let n = batch.len() as u64;
                let p = producer.as_ref();
                let metrics = self.metrics.clone();
                in_flight.push(async move {
                    let t0 = Instant::now();
                    let r = p.send_batch(batch).await;
                    metrics.batch_seconds.observe(t0.elapsed().as_secs_f64());
                    r.map(|()| n)
                });
            }
            while in_flight.len() >= MAX_IN_FLIGHT_BATCHES {
                match in_flight.next().await {
                    Some(Ok(n)) => {
                        summary.produced += n;
                        self.metrics.produced.inc_by(n);
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => break,
                }
            }
            self.health.beat();
            if outcome.finished {
                summary.exhausted = true;
                break Ok(());
            }
        };
        while let Some(r) = in_flight.next().await {
            let n = r?;
            summary.produced += n;
            self.metrics.produced.inc_by(n);
        }
        producer.flush().await?;
        self.health.set_ready(false);
        tracing::info!(stream = %self.name, produced = summary.produced, bad_rows = summary.bad_rows, exhausted = summary.exhausted, "producer stopped");
        result.map(|()| summary)
    }
}
