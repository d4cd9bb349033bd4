//! The bus conformance suite: what every [`Bus`] must do, written once over `Arc<dyn Bus>` and
//! run against each implementation.
//!
//! * The embedded log always runs: `cargo test --release -p ticklake-bus --test conformance`.
//! * Kafka runs with the `kafka-tests` feature and a broker:
//!   `TICKLAKE_TEST_KAFKA_BOOTSTRAP=localhost:9092 cargo test --release -p ticklake-bus
//!   --features kafka-tests --test conformance kafka`.
//!
//! Every test uses topic and group names of its own (prefix, process id, counter, clock), so
//! the suite can run against a shared broker, concurrently and repeatedly. Waits are loops of
//! short polls up to a generous deadline: Kafka group joins take seconds.

use std::sync::Arc;

use async_trait::async_trait;
use ticklake_bus::embedded::{EmbeddedLog, LogOptions};
use ticklake_bus::{Bus, Consumer, Producer, Result, TopicInfo};

mod suite {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use bytes::Bytes;
    use ticklake_bus::{Bus, Consumer, ConsumerEvent, OutRecord, Record, partition_for_key};

    /// How long any one expectation may take to come true.
    const DEADLINE: Duration = Duration::from_secs(60);
    /// One poll's timeout while waiting.
    const POLL: Duration = Duration::from_millis(250);
    /// How long to watch for records that should not arrive.
    const QUIET: Duration = Duration::from_secs(2);

    /// A topic or group name unique to this call: no other test, process or earlier run
    /// against the same broker uses it. Only `[A-Za-z0-9._-]`, as Kafka requires.
    pub fn unique(what: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        format!("ticklake-conformance-{what}-{}-{n}-{t}", std::process::id())
    }

    fn now_ms() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }

    fn out(key: Option<&str>, value: String, partition: Option<i32>, timestamp_ms: i64) -> OutRecord {
        OutRecord {
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Bytes::from(value),
            timestamp_ms,
            partition,
        }
    }

    fn text(b: &Bytes) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// A consumer plus what it has been told: the partitions it owns, its assignment events
    /// in order, and the records it received.
    struct Member {
        name: &'static str,
        consumer: Box<dyn Consumer>,
        owned: BTreeSet<i32>,
        events: Vec<ConsumerEvent>,
        records: Vec<Record>,
    }

    impl Member {
        async fn join(bus: &Arc<dyn Bus>, topic: &str, group: &str, name: &'static str) -> Member {
            let consumer = bus.consumer(topic, group).await.expect("consumer");
            Member { name, consumer, owned: BTreeSet::new(), events: Vec::new(), records: Vec::new() }
        }

        /// One poll, applying what it returns.
        async fn poll(&mut self) {
            let event = self.consumer.poll(500, POLL).await.expect("poll");
            match &event {
                ConsumerEvent::Assigned(p) => {
                    self.owned = p.iter().copied().collect();
                    self.events.push(event);
                }
                ConsumerEvent::Revoked(p) => {
                    for p in p {
                        self.owned.remove(p);
                    }
                    self.events.push(event);
                }
                ConsumerEvent::Records(r) => {
                    assert!(!r.is_empty(), "{}: an empty Records event", self.name);
                    for rec in r {
                        assert!(
                            self.owned.contains(&rec.partition),
                            "{}: record from unowned partition {}",
                            self.name,
                            rec.partition
                        );
                    }
                    self.records.extend(r.iter().cloned());
                }
                ConsumerEvent::Idle => {}
            }
            let mut assignment = self.consumer.assignment();
            assignment.sort_unstable();
            assert_eq!(assignment, self.owned.iter().copied().collect::<Vec<_>>(), "{}: assignment()", self.name);
        }

        /// Polls until `done` holds, failing after the deadline.
        async fn poll_until(&mut self, what: &str, done: impl Fn(&Member) -> bool) {
            let deadline = Instant::now() + DEADLINE;
            while !done(self) {
                assert!(
                    Instant::now() < deadline,
                    "{}: timed out waiting for {what}; events {:?}",
                    self.name,
                    self.events
                );
                self.poll().await;
            }
        }

        /// Polls until `n` records arrived in all.
        async fn collect(&mut self, n: usize) {
            self.poll_until(&format!("{n} records"), |m| m.records.len() >= n).await;
            assert_eq!(self.records.len(), n, "{}: more records than produced", self.name);
        }

        /// Polls for a while, expecting no records.
        async fn expect_quiet(&mut self) {
            let before = self.records.len();
            let until = Instant::now() + QUIET;
            while Instant::now() < until {
                self.poll().await;
            }
            assert_eq!(self.records.len(), before, "{}: unexpected records {:?}", self.name, &self.records[before..]);
        }

        /// Drops received records and polls until `n` new ones arrived.
        async fn collect_fresh(&mut self, n: usize) -> Vec<Record> {
            self.records.clear();
            self.collect(n).await;
            std::mem::take(&mut self.records)
        }

        /// The assignment events since the `from`-th.
        fn assignment_events(&self, from: usize) -> &[ConsumerEvent] {
            &self.events[from.min(self.events.len())..]
        }
    }

    fn all(partitions: i32) -> BTreeSet<i32> {
        (0..partitions).collect()
    }

    /// Creating a topic, finding it again, and never shrinking (or growing) it.
    pub async fn ensure_topic(bus: Arc<dyn Bus>) {
        let topic = unique("ensure");
        let info = bus.ensure_topic(&topic, 3, 1).await.expect("create");
        assert_eq!((info.name.as_str(), info.partitions, info.created), (topic.as_str(), 3, true));
        let again = bus.ensure_topic(&topic, 3, 1).await.expect("existing");
        assert_eq!((again.partitions, again.created), (3, false));
        let fewer = bus.ensure_topic(&topic, 1, 1).await.expect("existing, asked for fewer");
        assert_eq!((fewer.partitions, fewer.created), (3, false), "an existing topic is never shrunk");
        let more = bus.ensure_topic(&topic, 6, 1).await.expect("existing, asked for more");
        assert_eq!((more.partitions, more.created), (3, false), "an existing topic is returned as it is");
        assert_eq!(bus.partitions(&topic).await.expect("partitions"), 3);
    }

    /// Keyed records land in `partition_for_key`'s partition, an explicit partition wins, and
    /// a consumer reads everything back, in offset order per partition, keys, values and
    /// timestamps intact.
    pub async fn produce_and_consume(bus: Arc<dyn Bus>) {
        const PARTITIONS: i32 = 4;
        const KEYED: usize = 600;
        const EXPLICIT: usize = 12;
        let topic = unique("produce");
        bus.ensure_topic(&topic, PARTITIONS, 1).await.expect("topic");
        let producer = bus.producer(&topic).await.expect("producer");
        let t0 = now_ms();
        let mut sent: Vec<OutRecord> = (0..KEYED)
            .map(|i| {
                let key = format!("SYM{}", i % 13);
                out(Some(&key), format!("{key}:{i}"), None, t0 + i as i64)
            })
            .collect();
        sent.extend(
            (0..EXPLICIT).map(|i| {
                out(Some("pinned"), format!("pinned:{i}"), Some(i as i32 % PARTITIONS), t0 + (KEYED + i) as i64)
            }),
        );
        for batch in sent.chunks(50) {
            producer.send_batch(batch.to_vec()).await.expect("send");
        }
        producer.flush().await.expect("flush");

        let mut c = Member::join(&bus, &topic, &unique("produce-group"), "consumer").await;
        c.collect(KEYED + EXPLICIT).await;

        // Everything arrived once, unchanged.
        let by_value: BTreeMap<String, &OutRecord> = sent.iter().map(|r| (text(&r.value), r)).collect();
        let mut seen = BTreeSet::new();
        for r in &c.records {
            let v = text(&r.value);
            let s = by_value.get(&v).unwrap_or_else(|| panic!("unknown record {v}"));
            assert!(seen.insert(v.clone()), "{v} delivered twice");
            assert_eq!(r.key, s.key, "key of {v}");
            assert_eq!(r.timestamp_ms, s.timestamp_ms, "timestamp of {v}");
            let want = match s.partition {
                Some(p) => p,
                None => partition_for_key(s.key.as_deref().expect("keyed"), PARTITIONS),
            };
            assert_eq!(r.partition, want, "partition of {v}");
        }

        // Per partition: offsets 0, 1, 2, ... in delivery order, up to the high watermark;
        // per key, the order it was produced in.
        let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
        for r in &c.records {
            by_partition.entry(r.partition).or_default().push(r);
        }
        for p in 0..PARTITIONS {
            let records = by_partition.get(&p).map(Vec::as_slice).unwrap_or_default();
            let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, (0..records.len() as i64).collect::<Vec<_>>(), "offsets of partition {p}");
            assert_eq!(bus.watermarks(&topic, p).await.expect("watermarks"), (0, records.len() as i64));
            let mut last_seq: BTreeMap<String, usize> = BTreeMap::new();
            for r in records {
                let v = text(&r.value);
                let (key, seq) = v.split_once(':').expect("key:seq");
                let seq: usize = seq.parse().expect("seq");
                if let Some(prev) = last_seq.insert(key.to_string(), seq) {
                    assert!(prev < seq, "{key}: {seq} after {prev} in partition {p}");
                }
            }
        }
        c.consumer.close().await.expect("close");
    }

    /// A commit is what the group's next member starts from.
    pub async fn commit_and_resume(bus: Arc<dyn Bus>) {
        let topic = unique("commit");
        let group = unique("commit-group");
        bus.ensure_topic(&topic, 3, 1).await.expect("topic");
        let producer = bus.producer(&topic).await.expect("producer");
        let t0 = now_ms();
        let batch = (0..20).map(|i| out(None, format!("p{}:{}", i % 2, i / 2), Some(i % 2), t0)).collect();
        producer.send_batch(batch).await.expect("send");
        producer.flush().await.expect("flush");

        let mut a = Member::join(&bus, &topic, &group, "a").await;
        a.collect(20).await;
        a.consumer.commit(&[(0, 7), (1, 3)]).await.expect("commit");
        assert_eq!(a.consumer.committed(&[0, 1, 2]).await.expect("committed"), [Some(7), Some(3), None]);
        a.consumer.close().await.expect("close");

        let mut b = Member::join(&bus, &topic, &group, "b").await;
        b.collect(10).await;
        let mut firsts: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &b.records {
            firsts.entry(r.partition).or_insert(r.offset);
        }
        assert_eq!(firsts, BTreeMap::from([(0, 7), (1, 3)]), "b resumes at the committed offsets");
        assert_eq!(b.records.iter().filter(|r| r.partition == 0).count(), 3);
        assert_eq!(b.consumer.committed(&[0, 1, 2]).await.expect("committed"), [Some(7), Some(3), None]);
        b.expect_quiet().await;
        b.consumer.close().await.expect("close");
    }

    /// `seek` moves the read position, right after assignment and later, back and forth.
    pub async fn seek(bus: Arc<dyn Bus>) {
        let topic = unique("seek");
        bus.ensure_topic(&topic, 1, 1).await.expect("topic");
        let producer = bus.producer(&topic).await.expect("producer");
        let t0 = now_ms();
        producer.send_batch((0..50).map(|i| out(None, format!("v{i}"), Some(0), t0)).collect()).await.expect("send");
        producer.flush().await.expect("flush");

        let mut c = Member::join(&bus, &topic, &unique("seek-group"), "consumer").await;
        c.poll_until("assignment", |m| m.owned.contains(&0)).await;
        c.consumer.seek(0, 30).await.expect("seek after assignment");
        let got = c.collect_fresh(20).await;
        assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), (30..50).collect::<Vec<_>>());
        assert_eq!(text(&got[0].value), "v30");

        c.consumer.seek(0, 5).await.expect("seek back");
        let got = c.collect_fresh(45).await;
        assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), (5..50).collect::<Vec<_>>());

        c.consumer.seek(0, 48).await.expect("seek forward");
        let got = c.collect_fresh(2).await;
        assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), [48, 49]);
        c.consumer.close().await.expect("close");
    }

    /// Two members split the partitions; when one leaves, the other gets them all back,
    /// through `Revoked` then `Assigned`, and reads all of them.
    pub async fn group_rebalance(bus: Arc<dyn Bus>) {
        const PARTITIONS: i32 = 4;
        let topic = unique("group");
        let group = unique("group-group");
        bus.ensure_topic(&topic, PARTITIONS, 1).await.expect("topic");

        let mut a = Member::join(&bus, &topic, &group, "a").await;
        a.poll_until("all partitions", |m| m.owned == all(PARTITIONS)).await;
        assert_eq!(a.events.len(), 1, "a's first event is its assignment: {:?}", a.events);

        // b joins: both must keep polling for the rebalance to complete.
        let mut b = Member::join(&bus, &topic, &group, "b").await;
        let deadline = Instant::now() + DEADLINE;
        loop {
            let split = !a.owned.is_empty()
                && !b.owned.is_empty()
                && a.owned.is_disjoint(&b.owned)
                && a.owned.union(&b.owned).copied().collect::<BTreeSet<_>>() == all(PARTITIONS);
            let a_settled = matches!(a.events.last(), Some(ConsumerEvent::Assigned(_))) && a.events.len() >= 3;
            if split && a_settled {
                break;
            }
            assert!(Instant::now() < deadline, "no split: a {:?} b {:?}", a.events, b.events);
            a.poll().await;
            b.poll().await;
        }
        assert!(
            matches!(&a.events[1], ConsumerEvent::Revoked(p) if p.iter().copied().collect::<BTreeSet<_>>() == all(PARTITIONS)),
            "a gave up all its partitions first: {:?}",
            a.events
        );
        assert!(matches!(b.events.first(), Some(ConsumerEvent::Assigned(_))), "b's first event: {:?}", b.events);

        // b leaves: a gets everything back.
        let mark = a.events.len();
        let a_before = a.owned.clone();
        b.consumer.close().await.expect("close b");
        a.poll_until("all partitions again", |m| m.owned == all(PARTITIONS)).await;
        let events = a.assignment_events(mark);
        assert!(
            matches!(events.first(), Some(ConsumerEvent::Revoked(p)) if p.iter().copied().collect::<BTreeSet<_>>() == a_before),
            "a's partitions are revoked first: {events:?}"
        );
        assert!(
            matches!(events.last(), Some(ConsumerEvent::Assigned(p)) if p.iter().copied().collect::<BTreeSet<_>>() == all(PARTITIONS)),
            "then all are assigned: {events:?}"
        );

        // And a reads from all of them.
        let producer = bus.producer(&topic).await.expect("producer");
        let t0 = now_ms();
        producer
            .send_batch((0..PARTITIONS).map(|p| out(None, format!("to {p}"), Some(p), t0)).collect())
            .await
            .expect("send");
        producer.flush().await.expect("flush");
        let got = a.collect_fresh(PARTITIONS as usize).await;
        assert_eq!(got.iter().map(|r| r.partition).collect::<BTreeSet<_>>(), all(PARTITIONS));
        a.consumer.close().await.expect("close a");
    }

    /// `(low, high)`: 0 and the next offset.
    pub async fn watermarks(bus: Arc<dyn Bus>) {
        let topic = unique("watermarks");
        bus.ensure_topic(&topic, 2, 1).await.expect("topic");
        assert_eq!(bus.watermarks(&topic, 0).await.expect("wm"), (0, 0));
        assert_eq!(bus.watermarks(&topic, 1).await.expect("wm"), (0, 0));
        let producer = bus.producer(&topic).await.expect("producer");
        let t0 = now_ms();
        let batch = (0..8).map(|i| out(None, format!("{i}"), Some(if i < 5 { 0 } else { 1 }), t0)).collect();
        producer.send_batch(batch).await.expect("send");
        producer.flush().await.expect("flush");
        assert_eq!(bus.watermarks(&topic, 0).await.expect("wm"), (0, 5));
        assert_eq!(bus.watermarks(&topic, 1).await.expect("wm"), (0, 3));
    }
}

/// The embedded log in a temporary directory, removed when the bus is dropped.
fn embedded_bus() -> Arc<dyn Bus> {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments, so the suite also reads across segment boundaries.
    let options = LogOptions { segment_bytes: 4096, fsync_interval_ms: 100, ..LogOptions::default() };
    let log = EmbeddedLog::open(dir.path(), options).expect("open the embedded log");
    Arc::new(TempBus { log, _dir: dir })
}

/// A bus that owns the directory it lives in.
struct TempBus {
    log: Arc<EmbeddedLog>,
    _dir: tempfile::TempDir,
}

#[async_trait]
impl Bus for TempBus {
    async fn ensure_topic(&self, topic: &str, partitions: i32, replication_factor: i16) -> Result<TopicInfo> {
        self.log.ensure_topic(topic, partitions, replication_factor).await
    }
    async fn partitions(&self, topic: &str) -> Result<i32> {
        self.log.partitions(topic).await
    }
    async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.log.watermarks(topic, partition).await
    }
    async fn producer(&self, topic: &str) -> Result<Box<dyn Producer>> {
        self.log.producer(topic).await
    }
    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>> {
        self.log.consumer(topic, group).await
    }
}

#[tokio::test]
async fn embedded_ensure_topic() {
    suite::ensure_topic(embedded_bus()).await
}

#[tokio::test]
async fn embedded_produce_and_consume() {
    suite::produce_and_consume(embedded_bus()).await
}

#[tokio::test]
async fn embedded_commit_and_resume() {
    suite::commit_and_resume(embedded_bus()).await
}

#[tokio::test]
async fn embedded_seek() {
    suite::seek(embedded_bus()).await
}

#[tokio::test]
async fn embedded_group_rebalance() {
    suite::group_rebalance(embedded_bus()).await
}

#[tokio::test]
async fn embedded_watermarks() {
    suite::watermarks(embedded_bus()).await
}

/// The same suite against a real broker: `--features kafka-tests` and
/// `TICKLAKE_TEST_KAFKA_BOOTSTRAP=host:port`.
#[cfg(feature = "kafka-tests")]
mod kafka {
    use super::*;

    fn kafka_bus() -> Arc<dyn Bus> {
        let bootstrap = std::env::var("TICKLAKE_TEST_KAFKA_BOOTSTRAP")
            .expect("set TICKLAKE_TEST_KAFKA_BOOTSTRAP to a Kafka bootstrap address, e.g. localhost:9092");
        Arc::new(ticklake_bus::kafka::KafkaBus::new(&bootstrap).expect("connect to Kafka"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_ensure_topic() {
        suite::ensure_topic(kafka_bus()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_produce_and_consume() {
        suite::produce_and_consume(kafka_bus()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_commit_and_resume() {
        suite::commit_and_resume(kafka_bus()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_seek() {
        suite::seek(kafka_bus()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_group_rebalance() {
        suite::group_rebalance(kafka_bus()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_watermarks() {
        suite::watermarks(kafka_bus()).await
    }
}
