//! # The embedded durable log
//!
//! The local runner's stand-in for Kafka: topics, partitions, offsets and consumer groups with
//! Kafka's semantics, kept in one directory and owned by one process. Nothing to install, and
//! the workers cannot tell it from Kafka: both implement [`Bus`], and `tests/conformance.rs`
//! runs the same suite against both.
//!
//! ## The anchor: kdb+'s tickerplant log
//!
//! A kdb+ tickerplant writes every update it receives to a log file *before* publishing it,
//! and keeps a count of the messages in it (`.u.i`). A subscriber that (re)starts replays the
//! log up to that count (`-11!`) and then takes live updates; after a crash, `-11!(-2;file)`
//! finds how much of the log is intact, and a cut-short last message is dropped. Durability
//! is "written to the operating system", not "fsynced per message": a crashed *process* loses
//! nothing, a crashed *machine* may lose the last moments.
//!
//! This log is the same design with Kafka's shape: an append-only file per partition instead
//! of one per day, the offset of a record instead of the message count, a group's committed
//! offset instead of a subscriber's replay count, and a checksum per record so the intact
//! prefix is found exactly.
//!
//! ## On disk
//!
//! ```text
//! <dir>/LOCK                                   held exclusively (flock) while open
//! <dir>/topics/<topic>/meta.json               {"partitions": N}
//! <dir>/topics/<topic>/<partition>/<base_offset:020>.log   segments
//! <dir>/groups/<group>.json                    committed offsets of a consumer group
//! ```
//!
//! A partition is a sequence of *segment* files; each is named by the offset of its first
//! record (zero-padded to 20 digits, so names sort as offsets do). Appends go to the last
//! segment; when it would grow past [`LogOptions::segment_bytes`] a new one is started.
//! Offsets are contiguous from 0. A segment is a plain sequence of frames:
//!
//! ```text
//! u32 len | u32 crc32 | i64 offset | i64 timestamp_ms | i32 key_len (-1 = no key) | key | value
//! ```
//!
//! little-endian; `len` counts the bytes after itself and the CRC-32 covers everything after
//! itself. Storing the offset in each frame makes every frame self-describing: recovery and
//! readers check that offsets continue, and a misplaced frame cannot pass for the next one.
//!
//! Group offsets are small JSON files replaced atomically (temporary file, fsync, rename,
//! fsync of the directory), so a crash leaves either the old or the new commit. A topic
//! exists once its `meta.json` does; that file is written last when a topic is created, so a
//! creation cut short by a crash is simply redone by the next `ensure_topic`.
//!
//! ## Opening and crash repair
//!
//! [`EmbeddedLog::open`] takes `LOCK` (a second process gets [`BusError::Locked`]), then for
//! each partition scans **only the last segment**. Its intact prefix — frames that are
//! complete, whose checksums match and whose offsets continue from the segment's base — is
//! kept; anything after it is a torn tail left by a crash in the middle of a write, and is
//! truncated away with a `tracing` warning naming the file and the bytes dropped. Earlier
//! segments are trusted: a segment is fsynced before the next one is created, so only the
//! last one can have a torn tail. Opening therefore costs one read of the active segment per
//! partition, not of the whole log.
//!
//! ## Durability
//!
//! * [`Producer::send_batch`] returns once the batch has been written with `write(2)`: it is in
//!   the kernel's page cache and survives the process crashing or being killed (`SIGKILL`).
//! * fsync (which makes it survive a power cut or kernel crash) happens in the background at
//!   most every [`LogOptions::fsync_interval_ms`] (default 1 s), when a segment is sealed,
//!   on [`Producer::flush`] and [`EmbeddedLog::sync`], and when the log is dropped. A machine
//!   crash can lose up to that interval of acknowledged writes; recovery then truncates to
//!   what reached the disk. Producers of ticks de-duplicate by (symbol, seq) anyway.
//! * `fsync_interval_ms: 0` fsyncs every batch before `send_batch` returns: nothing
//!   acknowledged is ever lost, at the cost of an fsync per batch.
//!
//! Like Kafka (which also leaves fsync to the OS by default), the log relies on the page cache
//! for durability across process crashes, not on its own buffers: there are none.
//!
//! ## Writing and reading
//!
//! A producer picks the partition for each record (the record's own, else
//! [`partition_for_key`](crate::partition_for_key) of its key — Kafka's murmur2 — else
//! round-robin), checks the whole batch against the limits, and appends it on a blocking
//! thread (`spawn_blocking`, so neither `write(2)` nor fsync stalls the async runtime). Each
//! partition's batch is encoded into one buffer and written with one `write(2)`. Waiting
//! consumers are woken through a per-topic [`tokio::sync::Notify`].
//!
//! A partition's length (the end readers may read up to) moves only after a write of whole
//! frames has returned, under the partition's lock. Readers take that lock only to learn the
//! end and which segment holds an offset (binary search on base offsets), then read without
//! it: bytes below the end never change, so readers and the writer do not wait for each
//! other. A consumer keeps a cursor per partition — the open segment file and the byte
//! position of its next record — so reading on sequentially costs no search and no rescan;
//! after a `seek` the cursor is rebuilt by skipping frame headers forward from the start of
//! the segment holding the offset (there is no offset index).
//!
//! Reads run on the polling task with plain file I/O, kept short: a poll returns at most
//! `max_records` records and about [`LogOptions::max_poll_bytes`] (8 MiB) of frames, in 64 KiB
//! reads, normally served from the page cache since consumers read what was just written.
//!
//! ## Consumer groups
//!
//! Groups live in this process (the log has one owner). Each member reads one topic; a
//! group's partitions are spread over its members by Kafka's *range* assignor, in join order.
//! When a member joins or leaves (`close`, or drop), the group rebalances with Kafka's
//! **eager** protocol:
//!
//! 1. every member that owns partitions gets `Revoked(old)` from its next `poll` and stops
//!    reading. It still owns them until it polls again, so it can write out what it buffered
//!    and commit (as a Java consumer does in `onPartitionsRevoked`);
//! 2. once every owner has polled again (or after [`LogOptions::rebalance_timeout_ms`],
//!    Kafka's `max.poll.interval.ms`, for members that stopped polling), the generation bumps
//!    and each member's next `poll` returns `Assigned(new)`. A partition starts at the group's
//!    committed offset, else at the earliest offset (0), unless the member seeks.
//!
//! A commit is accepted only for partitions the member owns in the current generation;
//! anything else is refused with [`BusError::NotAssigned`] — Kafka's generation fencing, so a
//! member that lost a partition cannot move its offset back under the new owner.
//!
//! ## Limits
//!
//! Every input is bounded: a record (key + value) is at most
//! [`LogOptions::max_record_bytes`] (1 MiB, else [`BusError::TooLarge`], checked for the whole
//! batch before any of it is written), a poll returns at most `max_records` records and about
//! `max_poll_bytes`, and a frame read from disk is never trusted beyond the file's length.
//! Topic names follow Kafka's rules (`[A-Za-z0-9._-]`, at most 249 characters); group names
//! may be anything non-empty (they are percent-encoded into file names).
//!
//! ## Not implemented (yet)
//!
//! No retention or deletion: the log grows until the directory is removed, so the low
//! watermark is always 0. No compaction, no transactions, no offset index (seeks scan one
//! segment's frame headers), no partition-count growth, and no sharing of the log between
//! processes.

mod consumer;
mod frame;
mod fsutil;
mod group;
mod partition;
mod producer;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use fs2::FileExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use self::consumer::EmbeddedConsumer;
use self::fsutil::{io_err, lock, sync_dir, write_all_at, write_atomic};
use self::group::Group;
use self::partition::Partition;
use self::producer::EmbeddedProducer;
use crate::{Bus, BusError, Consumer, Producer, Result, TopicInfo};

/// The most partitions a topic may have.
pub const MAX_PARTITIONS: i32 = 10_000;

/// Tuning of an [`EmbeddedLog`]. `LogOptions::default()` suits the local runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment is sealed and a new one started when an append would grow it past this
    /// (a single larger record still gets a segment of its own). Default 64 MiB.
    pub segment_bytes: u64,
    /// Written data is fsynced at most this long after it was written (and on flush, segment
    /// roll and close). `0` fsyncs every batch before `send_batch` returns. Default 1000.
    pub fsync_interval_ms: u64,
    /// The largest record accepted, key plus value. Default 1 MiB.
    pub max_record_bytes: usize,
    /// About the most bytes one poll returns (it returns at least one record whatever its
    /// size). Default 8 MiB.
    pub max_poll_bytes: usize,
    /// How long a rebalance waits for members to come back after `Revoked` before it
    /// reassigns their partitions without them. Default 60 000 (Kafka's default for
    /// `max.poll.interval.ms` is 300 000).
    pub rebalance_timeout_ms: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 << 20,
            fsync_interval_ms: 1000,
            max_record_bytes: 1 << 20,
            max_poll_bytes: 8 << 20,
            rebalance_timeout_ms: 60_000,
        }
    }
}

impl LogOptions {
    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(BusError::Config(format!("embedded log: {what}")));
        if self.segment_bytes == 0 {
            return bad("segment_bytes must be positive");
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > 1 << 30 {
            return bad("max_record_bytes must be between 1 byte and 1 GiB");
        }
        if self.max_poll_bytes == 0 {
            return bad("max_poll_bytes must be positive");
        }
        Ok(())
    }
}

/// `topics/<topic>/meta.json`.
#[derive(Serialize, Deserialize)]
struct TopicMeta {
    partitions: i32,
}

/// A topic: its partitions, and the wake-up for consumers waiting for records.
pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) partitions: Vec<Partition>,
    pub(crate) data: Notify,
}

type Topics = RwLock<HashMap<String, Arc<Topic>>>;

/// fsyncs everything written so far, in every topic.
fn sync_topics(topics: &Topics) -> Result<()> {
    let topics: Vec<Arc<Topic>> = topics.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
    for t in topics {
        for p in &t.partitions {
            p.sync()?;
        }
    }
    Ok(())
}

/// Stops the background fsync thread.
struct Flusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The embedded durable log: a [`Bus`] kept in a local directory. See the [module
/// docs](self) for the design.
///
/// [`EmbeddedLog::open`] returns an `Arc<EmbeddedLog>`, which is an `Arc<dyn Bus>` by
/// coercion. Producers and consumers keep the log alive; it is fsynced and unlocked when the
/// last of them and of the `Arc`s is dropped.
pub struct EmbeddedLog {
    dir: PathBuf,
    options: LogOptions,
    this: Weak<EmbeddedLog>,
    /// Shared with the fsync thread, which therefore never owns the log itself: the log is
    /// closed (fsynced, unlocked) on the thread that drops its last handle.
    topics: Arc<Topics>,
    /// Serializes topic creation.
    admin: Mutex<()>,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    flusher: Mutex<Option<Flusher>>,
    lock_file: File,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog").field("dir", &self.dir).field("options", &self.options).finish_non_exhaustive()
    }
}

impl EmbeddedLog {
    /// Opens the log in `dir` (creating it when missing), takes its lock and repairs torn
    /// tails. Blocking: call it before starting work, or from `spawn_blocking`.
    pub fn open(dir: &Path, options: LogOptions) -> Result<Arc<EmbeddedLog>> {
        options.validate()?;
        let topics_dir = dir.join("topics");
        let groups_dir = dir.join("groups");
        for d in [dir, &topics_dir, &groups_dir] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let lock_path = dir.join("LOCK");
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        if let Err(e) = lock_file.try_lock_exclusive() {
            let contended = e.kind() == std::io::ErrorKind::WouldBlock
                || e.raw_os_error() == fs2::lock_contended_error().raw_os_error();
            return Err(if contended {
                BusError::Locked(dir.to_path_buf())
            } else {
                BusError::Io { path: lock_path, source: e }
            });
        }
        // For whoever wonders who holds the lock; not relied upon.
        let pid = format!("{}\n", std::process::id());
        lock_file.set_len(0).and_then(|()| write_all_at(&lock_file, pid.as_bytes(), 0)).map_err(io_err(&lock_path))?;

        let mut topics = HashMap::new();
        for entry in fs::read_dir(&topics_dir).map_err(io_err(&topics_dir))? {
            let entry = entry.map_err(io_err(&topics_dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_topic(&name).is_err() || !entry.path().is_dir() {
                continue;
            }
            if let Some(topic) = load_topic(&entry.path(), &name, options.segment_bytes)? {
                topics.insert(name, Arc::new(topic));
            }
        }

        let log = Arc::new_cyclic(|this| EmbeddedLog {
            dir: dir.to_path_buf(),
            options,
            this: this.clone(),
            topics: Arc::new(RwLock::new(topics)),
            admin: Mutex::new(()),
            groups: Mutex::new(HashMap::new()),
            flusher: Mutex::new(None),
            lock_file,
        });
        if log.options.fsync_interval_ms > 0 {
            *lock(&log.flusher) = Some(start_flusher(&log)?);
        }
        Ok(log)
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    /// fsyncs everything written so far, in every topic. Blocking.
    pub fn sync(&self) -> Result<()> {
        sync_topics(&self.topics)
    }

    fn arc(&self) -> Result<Arc<EmbeddedLog>> {
        self.this.upgrade().ok_or(BusError::Closed)
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| BusError::UnknownTopic(name.to_string()))
    }

    /// Creates a topic (blocking). The partitions and their first segments come first, then
    /// `meta.json`, which makes the topic exist.
    fn create_topic(&self, name: &str, partitions: i32) -> Result<TopicInfo> {
        let _admin = lock(&self.admin);
        if let Ok(t) = self.topic(name) {
            return Ok(TopicInfo { name: name.to_string(), partitions: t.partitions.len() as i32, created: false });
        }
        let topics_dir = self.dir.join("topics");
        let dir = topics_dir.join(name);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let parts = (0..partitions)
            .map(|p| Partition::open(&dir.join(p.to_string()), p, self.options.segment_bytes, true))
            .collect::<Result<Vec<_>>>()?;
        sync_dir(&dir)?;
        let meta = serde_json::to_vec(&TopicMeta { partitions })
            .map_err(|e| BusError::Io { path: dir.clone(), source: std::io::Error::other(e) })?;
        write_atomic(&dir.join("meta.json"), &meta)?;
        sync_dir(&topics_dir)?;
        let topic = Topic { name: name.to_string(), partitions: parts, data: Notify::new() };
        self.topics.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), Arc::new(topic));
        Ok(TopicInfo { name: name.to_string(), partitions, created: true })
    }

    /// The group, loading its committed offsets the first time (blocking).
    fn group(&self, name: &str) -> Result<Arc<Group>> {
        let mut groups = lock(&self.groups);
        if let Some(g) = groups.get(name) {
            return Ok(Arc::clone(g));
        }
        let timeout = Duration::from_millis(self.options.rebalance_timeout_ms);
        let g = Arc::new(Group::load(&self.dir.join("groups"), name, timeout)?);
        groups.insert(name.to_string(), Arc::clone(&g));
        Ok(g)
    }
}

fn sync_quietly(topics: &Topics, dir: &Path) {
    if let Err(e) = sync_topics(topics) {
        tracing::error!(dir = %dir.display(), error = %e, "embedded log: fsync failed");
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        if let Some(mut f) = lock(&self.flusher).take() {
            *lock(&f.stop.0) = true;
            f.stop.1.notify_all();
            if let Some(t) = f.thread.take() {
                let _ = t.join();
            }
        }
        sync_quietly(&self.topics, &self.dir);
        if let Err(e) = FileExt::unlock(&self.lock_file) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "embedded log: unlocking failed");
        }
    }
}

/// The background thread that fsyncs written data every `fsync_interval_ms`, until the log
/// is dropped.
fn start_flusher(log: &EmbeddedLog) -> Result<Flusher> {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let topics = Arc::clone(&log.topics);
    let dir = log.dir.clone();
    let interval = Duration::from_millis(log.options.fsync_interval_ms);
    let signal = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("ticklake-log-fsync".into())
        .spawn(move || {
            let (stopped, cv) = &*signal;
            loop {
                let guard = lock(stopped);
                let (guard, _) = cv.wait_timeout_while(guard, interval, |s| !*s).unwrap_or_else(|e| e.into_inner());
                if *guard {
                    return;
                }
                drop(guard);
                sync_quietly(&topics, &dir);
            }
        })
        .map_err(io_err(&log.dir))?;
    Ok(Flusher { stop, thread: Some(thread) })
}

/// Opens an existing topic directory; `None` when its creation never finished.
fn load_topic(dir: &Path, name: &str, segment_bytes: u64) -> Result<Option<Topic>> {
    let meta_path = dir.join("meta.json");
    let meta = match fs::read(&meta_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(dir = %dir.display(), "topic creation did not finish; ignoring the topic until it is created again");
            return Ok(None);
        }
        Err(e) => {
            return Err(BusError::Io { path: meta_path, source: e });
        }
    };
    let meta: TopicMeta = serde_json::from_slice(&meta)
        .map_err(|e| BusError::Corrupt { path: meta_path.clone(), detail: e.to_string() })?;
    if !(1..=MAX_PARTITIONS).contains(&meta.partitions) {
        let detail = format!("partition count {} out of range", meta.partitions);
        return Err(BusError::Corrupt { path: meta_path, detail });
    }
    let partitions = (0..meta.partitions)
        .map(|p| Partition::open(&dir.join(p.to_string()), p, segment_bytes, false))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Topic { name: name.to_string(), partitions, data: Notify::new() }))
}

/// Kafka's topic name rules: 1 to 249 of `[A-Za-z0-9._-]`, and not `.` or `..`.
fn validate_topic(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BusError::Config(format!("invalid topic name {name:?}: use 1 to 249 of [A-Za-z0-9._-]")))
    }
}

/// Runs blocking file work off the async runtime's threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(BusError::Closed),
    }
}

#[async_trait]
impl Bus for EmbeddedLog {
    /// Creates the topic, or returns the existing one as it is (never grown or shrunk).
    /// `replication_factor` is ignored: there is one copy.
    async fn ensure_topic(&self, topic: &str, partitions: i32, _replication_factor: i16) -> Result<TopicInfo> {
        validate_topic(topic)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(BusError::Config(format!("a topic has 1 to {MAX_PARTITIONS} partitions, not {partitions}")));
        }
        if let Ok(t) = self.topic(topic) {
            return Ok(TopicInfo { name: topic.to_string(), partitions: t.partitions.len() as i32, created: false });
        }
        let log = self.arc()?;
        let name = topic.to_string();
        blocking(move || log.create_topic(&name, partitions)).await
    }

    async fn partitions(&self, topic: &str) -> Result<i32> {
        Ok(self.topic(topic)?.partitions.len() as i32)
    }

    /// `(0, next offset)`: nothing is ever deleted, so the low watermark is always 0.
    async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        let t = self.topic(topic)?;
        let p = usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .ok_or_else(|| BusError::UnknownPartition { topic: topic.to_string(), partition })?;
        Ok((0, p.high()))
    }

    async fn producer(&self, topic: &str) -> Result<Box<dyn Producer>> {
        let topic = self.topic(topic)?;
        Ok(Box::new(EmbeddedProducer { log: self.arc()?, topic, next: AtomicU32::new(0) }))
    }

    /// Joins `group` (any non-empty name) as a new member reading `topic`; this starts a
    /// rebalance of the group, and the consumer's first poll returns its assignment.
    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>> {
        if group.is_empty() {
            return Err(BusError::Config("a consumer group needs a name".into()));
        }
        let t = self.topic(topic)?;
        let log = self.arc()?;
        let name = group.to_string();
        let g = blocking(move || log.group(&name)).await?;
        let member = g.join(&t.name, t.partitions.len() as i32);
        Ok(Box::new(EmbeddedConsumer::new(self.arc()?, t, g, member)))
    }
}
