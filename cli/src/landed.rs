//! From the sinks to the notifier: every object a sink lands becomes an `object.created`
//! event, by two roads that meet in the outbox (which de-duplicates on the event id).
//!
//! ```text
//!  sink ──LandedBatch (bounded channel)──▶ forward ──publish──▶ intake ──▶ outbox      live, fast
//!  sink ──claims (durable, in the store)──▶ replay pass ──────────────────▶ outbox      + mark, same tx
//! ```
//!
//! * **Live**: the sink reports a batch after writing its objects and before committing its
//!   offset; [`forward`] turns the report into events. Fast, but in memory: a process killed
//!   while reports sit in the channels loses them, and the restarted sink does not land those
//!   objects again (its claims say they are done).
//! * **Replay**: the claims are the durable record of every landed batch. For every sink a
//!   subscription watches (a *stream*: the sink and its claims folder), the outbox keeps a
//!   mark per partition — the first offset whose events it may not hold. A pass
//!   ([`replay_pass`]) reads the complete claims at or after each mark
//!   (`ticklake_workers::sink::replay`: the chain's last claim only once its objects exist),
//!   queues their events and moves the mark in one transaction. It runs at every start (so
//!   a crash loses nothing) and every `replayIntervalMs` (so marks stay close and a restart
//!   replays little), at most `replayMaxEvents` events per pass.
//! * A stream seen for the first time starts where its chains end *before the sinks start*
//!   ([`follow_new`], bounded by [`FOLLOW_TIMEOUT`]): history is not news. A stream nothing
//!   watches in this run is forgotten.
//!
//! Invariant: once a batch's objects exist, its events reach the outbox — by the live road,
//! or by the next replay pass at the latest — and each event is queued once per endpoint.

use anyhow::Result;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use ticklake_notify::Replayer;
use ticklake_notify::event::{Event, ObjectWritten, object_created};
use ticklake_notify::outbox::ReplayMark;
use ticklake_workers::sink::LandedBatch;
use ticklake_workers::sink::layout::Layout;
use ticklake_workers::sink::replay;
use ticklake_workers::store::ObjectStore;
use tokio::sync::{mpsc, watch};

/// Test only: the live road waits this long (ms) before forwarding each landed batch, which
/// holds the window "objects landed, events not yet in the outbox" open, so a test can kill
/// the process inside it and check that the replay closes it. Never set it in production.
pub const TEST_STALL_ENV: &str = "TICKLAKE_TEST_LANDED_STALL_MS";
/// How long the start may spend finding where new streams' chains end.
pub const FOLLOW_TIMEOUT: Duration = Duration::from_secs(10);
/// Partitions of one sink followed at most.
const MAX_PARTITIONS: usize = 10_000;
/// Claims read per store request during a pass.
const PAGE_BATCHES: usize = 100;

/// Where a sink's objects are, for events.
#[derive(Clone, Debug)]
pub struct SinkTarget {
    pub bucket: String,
    pub region: String,
}

/// The `object.created` events of a landed batch.
pub fn events(b: &LandedBatch, t: &SinkTarget) -> Vec<Event> {
    b.objects
        .iter()
        .map(|o| {
            object_created(&ObjectWritten {
                bucket: t.bucket.clone(),
                region: t.region.clone(),
                sink: b.sink.clone(),
                topic: b.topic.clone(),
                partition: b.partition,
                first_offset: b.first,
                last_offset: b.last,
                key: o.key.clone(),
                rows: o.rows,
                bytes: o.bytes,
                dead_letter: o.dead_letter,
                time_ms: b.landed_at_ms,
            })
        })
        .collect()
}

/// The live road: publishes the events of every batch the sinks report, until every sender
/// is dropped.
pub fn forward(
    mut rx: mpsc::Receiver<LandedBatch>,
    sinks: HashMap<String, SinkTarget>,
    handle: ticklake_notify::NotifierHandle,
) -> tokio::task::JoinHandle<()> {
    let stall = std::env::var(TEST_STALL_ENV).ok().and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis);
    if let Some(d) = stall {
        tracing::warn!(ms = d.as_millis() as u64, "{TEST_STALL_ENV} is set: landed batches are held back (tests only)");
    }
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if let Some(d) = stall {
                tokio::time::sleep(d).await;
            }
            let Some(t) = sinks.get(&b.sink) else { continue };
            for e in events(&b, t) {
                let key = e.key().unwrap_or_default().to_string();
                if let Err(e) = handle.publish(e).await {
                    tracing::error!(error = %e, key = %key, "object.created event not queued");
                }
            }
        }
    })
}

/// A sink whose claims are replayed.
#[derive(Clone)]
pub struct Stream {
    /// `sink/<name> s3://<bucket>/<claims folder>`: the key of its marks in the outbox.
    pub id: String,
    pub sink: String,
    pub target: SinkTarget,
    pub layout: Layout,
    pub store: Arc<dyn ObjectStore>,
}

impl Stream {
    pub fn new(sink: &str, target: SinkTarget, layout: Layout, store: Arc<dyn ObjectStore>) -> Stream {
        let id = format!("sink/{sink} s3://{}/{}", target.bucket, layout.claims_root());
        Stream { id, sink: sink.to_string(), target, layout, store }
    }
}

/// Where a stream's chains end now (see [`replay::end_mark`]).
async fn end_marks(s: &Stream) -> Result<BTreeMap<i32, i64>> {
    let mut marks = BTreeMap::new();
    for p in replay::partitions(s.store.as_ref(), &s.layout, MAX_PARTITIONS).await? {
        marks.insert(p, replay::end_mark(s.store.as_ref(), &s.layout, p).await?);
    }
    Ok(marks)
}

async fn ensure_followed(r: &Replayer, s: &Stream) -> Result<BTreeMap<i32, i64>> {
    if let Some(m) = r.marks(&s.id)? {
        return Ok(m);
    }
    let marks = end_marks(s).await?;
    r.follow(&s.id, &marks)?;
    tracing::info!(stream = %s.id, partitions = marks.len(), "following a sink's claims from where they end now");
    Ok(marks)
}

/// Forgets streams nothing watches, and starts following new ones where their chains end —
/// to be called before the sinks start, so that what they land in this run counts as new.
/// Bounded by [`FOLLOW_TIMEOUT`]: a stream not followed by then is followed by the first
/// pass (what lands before that and is lost in a crash at that moment is not replayed).
pub async fn follow_new(r: &Replayer, streams: &[Stream]) {
    let keep: Vec<String> = streams.iter().map(|s| s.id.clone()).collect();
    match r.forget_except(&keep) {
        Ok(n) if n > 0 => tracing::info!(forgotten = n, "streams nothing watches any more are forgotten"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "forgetting unwatched streams failed"),
    }
    let all = async {
        for s in streams {
            if let Err(e) = ensure_followed(r, s).await {
                tracing::warn!(stream = %s.id, error = format!("{e:#}"), "could not read the sink's claims; retried by the next pass");
            }
        }
    };
    if tokio::time::timeout(FOLLOW_TIMEOUT, all).await.is_err() {
        tracing::warn!(
            secs = FOLLOW_TIMEOUT.as_secs(),
            "finding where the sinks' claims end takes long; continuing in the background"
        );
    }
}

/// One replay pass over every stream: queues the events of complete batches at or after the
/// marks, at most `max_events` (a batch is never split). Returns the events replayed (most
/// are duplicates the outbox ignores when the live road works).
pub async fn replay_pass(r: &Replayer, streams: &[Stream], max_events: usize) -> usize {
    let mut replayed = 0usize;
    for s in streams {
        if replayed >= max_events {
            break;
        }
        match replay_stream(r, s, max_events - replayed).await {
            Ok(n) => replayed += n,
            Err(e) => {
                tracing::warn!(stream = %s.id, error = format!("{e:#}"), "replaying the sink's claims failed; retried at the next pass")
            }
        }
    }
    replayed
}

async fn replay_stream(r: &Replayer, s: &Stream, max_events: usize) -> Result<usize> {
    let mut replayed = 0usize;
    let marks = ensure_followed(r, s).await?;
    for p in replay::partitions(s.store.as_ref(), &s.layout, MAX_PARTITIONS).await? {
        let mut next = marks.get(&p).copied().unwrap_or(0);
        loop {
            if replayed >= max_events {
                return Ok(replayed);
            }
            let page = replay::landed_from(s.store.as_ref(), &s.layout, p, next, PAGE_BATCHES).await?;
            if page.next == next {
                break; // nothing complete after the mark
            }
            let events: Vec<Event> = replay::batches(&s.sink, &page, ticklake_notify::notifier::now_ms())
                .iter()
                .flat_map(|b| events(b, &s.target))
                .collect();
            let mark = ReplayMark { stream: s.id.clone(), partition: p, next: page.next };
            let q = r.intake(&events, &mark)?;
            if q.inserted > 0 {
                // The live road lost these (or has not got there yet).
                tracing::info!(stream = %s.id, partition = p, from = next, to = page.next, events = events.len(), queued = q.inserted, "landed objects replayed from the sink's claims");
            }
            replayed += events.len();
            next = page.next;
            if !page.more {
                break;
            }
        }
    }
    Ok(replayed)
}

/// Runs a pass at once, then every `interval`, until `stop` turns true.
pub fn spawn_replay(
    r: Replayer,
    streams: Vec<Stream>,
    interval: Duration,
    max_events: usize,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let n = replay_pass(&r, &streams, max_events).await;
            tracing::debug!(events = n, "replay pass done");
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    })
}
