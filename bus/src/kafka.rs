//! Apache Kafka through rdkafka (librdkafka built from its bundled source).
//!
//! * Producers are idempotent (`enable.idempotence=true`: no duplicates from retries, order
//!   kept per partition), batch with `linger.ms`, compress with zstd or lz4, and partition by
//!   key with `murmur2_random` — the Java client's partitioner, which the embedded log uses too.
//! * Consumers never auto-commit: the sink commits only after its objects are safe in S3.
//!   Rebalances are observed in librdkafka's callbacks and handed to the caller as
//!   [`ConsumerEvent::Revoked`] / [`ConsumerEvent::Assigned`], in order with the records.
//! * librdkafka's calls block; each one runs on tokio's blocking pool.
//! * A connection the brokers refuse — a certificate that does not verify, a TLS handshake the
//!   broker rejects (no or an unknown client certificate), failed SASL authentication — is an
//!   error with librdkafka's reason, returned by the call that was waiting (metadata, topic
//!   administration, a consumer's poll), not a timeout and not an endless retry.

use crate::{Bus, BusError, Consumer, ConsumerEvent, OutRecord, Producer, Record, Result, TopicInfo};
use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Timeout of metadata and admin calls.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Most delivery futures awaited at once by one `send_batch` before enqueuing more.
const MAX_IN_FLIGHT: usize = 500_000;
/// A metadata wait is cut in slices this long, between which the client's errors are served,
/// so that a refused connection ends it early.
const METADATA_SLICE: Duration = Duration::from_millis(500);
/// How long the client's queued events are served after each slice.
const EVENTS_WAIT: Duration = Duration::from_millis(10);

/// Whether an error librdkafka reports means the brokers refuse this client as configured, so
/// that retrying with the same settings cannot help: SASL authentication failed; our CA does
/// not verify the broker's certificate; or the broker ended the TLS session with an alert about
/// our certificate (none, or one it does not trust) — with TLS 1.3 that alert comes after the
/// handshake, as a transport error. A connection dropped mid-handshake (a broker restarting)
/// is not a refusal.
fn refusal(code: RDKafkaErrorCode, reason: &str) -> bool {
    let tls_refused = reason.contains("certificate verify failed")
        || (reason.contains(" alert ")
            && ["certificate", "unknown ca", "handshake failure", "access denied"].iter().any(|w| reason.contains(w)));
    match code {
        RDKafkaErrorCode::Authentication => true,
        RDKafkaErrorCode::SSL | RDKafkaErrorCode::BrokerTransportFailure => tls_refused,
        _ => false,
    }
}

/// The last refusal ([`refusal`]) librdkafka reported to a client, and when.
#[derive(Default)]
struct Refusals(Mutex<Option<(Instant, String)>>);

impl Refusals {
    fn record(&self, error: &KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
        if let Some(code) = error.rdkafka_error_code()
            && refusal(code, reason)
        {
            *self.0.lock().expect("refusals lock") = Some((Instant::now(), reason.to_string()));
        }
    }

    /// The last refusal reported at or after `since`.
    fn since(&self, since: Instant) -> Option<String> {
        self.0.lock().expect("refusals lock").as_ref().filter(|(at, _)| *at >= since).map(|(_, r)| r.clone())
    }

    fn last(&self) -> Option<String> {
        self.0.lock().expect("refusals lock").as_ref().map(|(_, r)| r.clone())
    }

    fn clear(&self) {
        *self.0.lock().expect("refusals lock") = None;
    }
}

/// The error for a call that failed with `e` because the brokers refused the connection.
fn refused(e: &KafkaError, reason: &str) -> BusError {
    BusError::Config(format!("the Kafka brokers refused the connection ({e}): {reason}"))
}

/// Context of the admin and metadata clients: keeps their refusals.
#[derive(Default)]
struct BusContext {
    refusals: Refusals,
}

impl ClientContext for BusContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.refusals.record(&error, reason);
    }
}

impl ConsumerContext for BusContext {}

/// A Kafka cluster.
pub struct KafkaBus {
    base: BTreeMap<String, String>,
    producer_props: BTreeMap<String, String>,
    admin: AdminClient<BusContext>,
    meta: Arc<BaseConsumer<BusContext>>,
    admin_timeout: Duration,
}

impl KafkaBus {
    /// A cluster reached at `bootstrap` (`host:port,…`) in plaintext.
    pub fn new(bootstrap: &str) -> Result<KafkaBus> {
        let mut base = BTreeMap::new();
        base.insert("bootstrap.servers".to_string(), bootstrap.to_string());
        KafkaBus::with_properties(base)
    }

    /// A cluster described by librdkafka properties (`bootstrap.servers` required; security
    /// settings such as `security.protocol`, `sasl.mechanism`, `sasl.username`, … as needed).
    pub fn with_properties(base: BTreeMap<String, String>) -> Result<KafkaBus> {
        if !base.contains_key("bootstrap.servers") {
            return Err(BusError::Config("bootstrap.servers is required".into()));
        }
        let admin: AdminClient<BusContext> = config(&base).create_with_context(BusContext::default())?;
        let meta: BaseConsumer<BusContext> = config(&base).create_with_context(BusContext::default())?;
        Ok(KafkaBus {
            base,
            producer_props: BTreeMap::new(),
            admin,
            meta: Arc::new(meta),
            admin_timeout: ADMIN_TIMEOUT,
        })
    }

    /// Sets a librdkafka property on the producers this bus creates
    /// (e.g. `compression.type` = `zstd`).
    pub fn with_producer_property(mut self, key: &str, value: &str) -> KafkaBus {
        self.producer_props.insert(key.to_string(), value.to_string());
        self
    }

    /// Limits metadata and admin calls to `timeout` (default 30 s); an operator reconciling
    /// many resources wants a short one, so that one unreachable cluster does not hold it up.
    pub fn with_admin_timeout(mut self, timeout: Duration) -> KafkaBus {
        self.admin_timeout = timeout;
        self
    }

    /// Partitions of `topic` once every partition has a leader; `None` when it does not exist.
    pub async fn topic_partitions(&self, topic: &str) -> Result<Option<i32>> {
        let meta = self.meta.clone();
        let topic = topic.to_string();
        let timeout = self.admin_timeout;
        blocking(move || {
            let md = fetch_metadata(&meta, &topic, timeout)?;
            let Some(t) = md.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
            match t.error() {
                // Usable once every partition has a leader (right after creation some do not).
                None if t.partitions().iter().all(|p| p.leader() >= 0 && p.error().is_none()) => {
                    Ok(Some(t.partitions().len() as i32))
                }
                None => Ok(None),
                Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => Ok(None),
                Some(e) => Err(KafkaError::MetadataFetch(e.into()).into()),
            }
        })
        .await
    }

    /// Raises `topic`'s partition count to `total`. Kafka cannot remove partitions: asking for
    /// fewer than the topic has is an error, never a silent no-op.
    pub async fn grow_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let have = self.partitions(topic).await?;
        if total < have {
            return Err(BusError::Config(format!(
                "topic {topic:?} has {have} partitions; Kafka cannot shrink it to {total}"
            )));
        }
        if total == have {
            return Ok(());
        }
        let opts = AdminOptions::new().operation_timeout(Some(self.admin_timeout));
        let results = self.admin.create_partitions([&NewPartitions::new(topic, total as usize)], &opts).await?;
        for r in results {
            if let Err((name, code)) = r {
                return Err(BusError::Config(format!("adding partitions to topic {name:?} failed: {code}")));
            }
        }
        let deadline = Instant::now() + self.admin_timeout;
        while self.topic_partitions(topic).await? != Some(total) {
            if Instant::now() > deadline {
                return Err(BusError::Timeout(self.admin_timeout));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Deletes `topic`; `Ok(false)` when it did not exist.
    pub async fn delete_topic(&self, topic: &str) -> Result<bool> {
        let opts = AdminOptions::new().operation_timeout(Some(self.admin_timeout));
        let results = self.admin.delete_topics(&[topic], &opts).await?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => return Ok(false),
                Err((name, code)) => return Err(BusError::Config(format!("deleting topic {name:?} failed: {code}"))),
            }
        }
        Ok(true)
    }
}

/// `meta.fetch_metadata` for `topic`, waiting at most `timeout` — and less when the brokers
/// refuse the connection: the wait is cut in slices, between which the client's error events
/// are served, and a refusal reported meanwhile ends it with librdkafka's reason. A timeout
/// names the last refusal, if any, too (reconnection backoff may space them out).
fn fetch_metadata(meta: &BaseConsumer<BusContext>, topic: &str, timeout: Duration) -> Result<Metadata> {
    let started = Instant::now();
    let deadline = started + timeout;
    let refusals = &meta.context().refusals;
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).min(METADATA_SLICE);
        let result = meta.fetch_metadata(Some(topic), slice);
        // Serve the queued events (the client has no group: this polls no records). An error
        // event comes back at once; log events are served quietly until the short wait ends
        // (with no wait, one log event would end the call and the errors behind it would stay
        // queued).
        for _ in 0..100 {
            if meta.poll(EVENTS_WAIT).is_none() {
                break;
            }
        }
        match result {
            Ok(md) => {
                refusals.clear();
                return Ok(md);
            }
            Err(e) => {
                if let Some(reason) = refusals.since(started) {
                    return Err(refused(&e, &reason));
                }
                let waiting = matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::OperationTimedOut
                            | RDKafkaErrorCode::BrokerTransportFailure
                            | RDKafkaErrorCode::AllBrokersDown
                    )
                );
                if !waiting || Instant::now() >= deadline {
                    return Err(match refusals.last() {
                        Some(reason) if waiting => refused(&e, &reason),
                        _ => e.into(),
                    });
                }
            }
        }
    }
}

fn config(props: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BusError::Config(format!("blocking task failed: {e}")))?
}

#[async_trait]
impl Bus for KafkaBus {
    async fn ensure_topic(&self, topic: &str, partitions: i32, replication_factor: i16) -> Result<TopicInfo> {
        if let Some(n) = self.topic_partitions(topic).await? {
            return Ok(TopicInfo { name: topic.to_string(), partitions: n, created: false });
        }
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication_factor as i32));
        let opts = AdminOptions::new().operation_timeout(Some(self.admin_timeout));
        let results = self.admin.create_topics([&new], &opts).await?;
        let mut created = true;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => created = false,
                Err((name, code)) => {
                    return Err(BusError::Config(format!("creating topic {name:?} failed: {code}")));
                }
            }
        }
        // Metadata propagates to every broker asynchronously: wait until it is visible.
        let deadline = Instant::now() + self.admin_timeout;
        loop {
            if let Some(n) = self.topic_partitions(topic).await? {
                return Ok(TopicInfo { name: topic.to_string(), partitions: n, created });
            }
            if Instant::now() > deadline {
                return Err(BusError::Timeout(self.admin_timeout));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn partitions(&self, topic: &str) -> Result<i32> {
        self.topic_partitions(topic).await?.ok_or_else(|| BusError::UnknownTopic(topic.to_string()))
    }

    async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        let meta = self.meta.clone();
        let topic = topic.to_string();
        let timeout = self.admin_timeout;
        blocking(move || {
            // Leadership moves (and settles after creation): retry the retriable answers.
            let deadline = Instant::now() + timeout;
            loop {
                match meta.fetch_watermarks(&topic, partition, timeout) {
                    Ok(w) => return Ok(w),
                    Err(e)
                        if Instant::now() < deadline
                            && matches!(
                                e.rdkafka_error_code(),
                                Some(RDKafkaErrorCode::NotLeaderForPartition | RDKafkaErrorCode::LeaderNotAvailable)
                            ) =>
                    {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        })
        .await
    }

    async fn producer(&self, topic: &str) -> Result<Box<dyn Producer>> {
        let mut c = config(&self.base);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("batch.num.messages", "100000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("compression.type", "zstd");
        for (k, v) in &self.producer_props {
            c.set(k, v);
        }
        let producer: FutureProducer = c.create()?;
        Ok(Box::new(KafkaProducer { producer, topic: topic.to_string() }))
    }

    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>> {
        let state = Arc::new(Mutex::new(GroupState::default()));
        let mut c = config(&self.base);
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.max.bytes", "52428800")
            .set("max.partition.fetch.bytes", "8388608")
            .set("queued.max.messages.kbytes", "262144");
        let consumer: BaseConsumer<GroupContext> =
            c.create_with_context(GroupContext { state: state.clone(), refusals: Refusals::default() })?;
        consumer.subscribe(&[topic])?;
        Ok(Box::new(KafkaConsumer { consumer: Arc::new(consumer), topic: topic.to_string(), state, carry: None }))
    }
}

struct KafkaProducer {
    producer: FutureProducer,
    topic: String,
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send_batch(&self, batch: Vec<OutRecord>) -> Result<()> {
        let mut pending: VecDeque<rdkafka::producer::DeliveryFuture> = VecDeque::with_capacity(batch.len());
        for rec in &batch {
            loop {
                let mut fr: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&self.topic).payload(&rec.value[..]).timestamp(rec.timestamp_ms);
                if let Some(k) = &rec.key {
                    fr = fr.key(&k[..]);
                }
                if let Some(p) = rec.partition {
                    fr = fr.partition(p);
                }
                match self.producer.send_result(fr) {
                    Ok(f) => {
                        pending.push_back(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // Backpressure: wait for the oldest deliveries before enqueuing more.
                        let n = (pending.len() / 2).max(1);
                        if pending.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        for _ in 0..n.min(pending.len()) {
                            await_delivery(pending.pop_front().expect("non-empty")).await?;
                        }
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
            if pending.len() >= MAX_IN_FLIGHT {
                await_delivery(pending.pop_front().expect("non-empty")).await?;
            }
        }
        for f in pending {
            await_delivery(f).await?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        let p = self.producer.clone();
        blocking(move || Ok(p.flush(Duration::from_secs(60))?)).await
    }
}

async fn await_delivery(f: rdkafka::producer::DeliveryFuture) -> Result<()> {
    match f.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e.into()),
        Err(_) => Err(BusError::Closed),
    }
}

#[derive(Default)]
struct GroupState {
    events: VecDeque<ConsumerEvent>,
    assignment: Vec<i32>,
}

struct GroupContext {
    state: Arc<Mutex<GroupState>>,
    refusals: Refusals,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.refusals.record(&error, reason);
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    let mut v: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    v.sort_unstable();
    v
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = partitions_of(tpl);
            let mut s = self.state.lock().expect("group state lock");
            s.assignment.retain(|p| !parts.contains(p));
            if !parts.is_empty() {
                s.events.push_back(ConsumerEvent::Revoked(parts));
            }
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts = partitions_of(tpl);
                let mut s = self.state.lock().expect("group state lock");
                s.assignment.extend(parts.iter().copied());
                s.assignment.sort_unstable();
                s.assignment.dedup();
                if !parts.is_empty() {
                    s.events.push_back(ConsumerEvent::Assigned(parts));
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "kafka rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

struct KafkaConsumer {
    consumer: Arc<BaseConsumer<GroupContext>>,
    topic: String,
    state: Arc<Mutex<GroupState>>,
    /// A record that arrived in the same librdkafka poll as a rebalance: it belongs after
    /// that rebalance's events, so it is held back until they have been handed out.
    carry: Option<Record>,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<ConsumerEvent> {
        assert!(max_records > 0, "poll needs room for at least one record");
        if let Some(ev) = self.state.lock().expect("group state lock").events.pop_front() {
            return Ok(ev);
        }
        if let Some(r) = self.carry.take() {
            return Ok(ConsumerEvent::Records(vec![r]));
        }
        let consumer = self.consumer.clone();
        let state = self.state.clone();
        let (records, carry) = blocking(move || {
            let started = Instant::now();
            let deadline = started + timeout;
            let mut out = Vec::new();
            loop {
                let wait =
                    if out.is_empty() { deadline.saturating_duration_since(Instant::now()) } else { Duration::ZERO };
                // A rebalance callback runs inside this call; the events queue is empty before it
                // (we stop as soon as it is not), so events seen after it came from this call.
                let polled = consumer.poll(wait);
                let rebalanced = !state.lock().expect("group state lock").events.is_empty();
                match polled {
                    Some(Ok(m)) => {
                        let r = Record {
                            partition: m.partition(),
                            offset: m.offset(),
                            timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                            key: m.key().map(Bytes::copy_from_slice),
                            value: Bytes::copy_from_slice(m.payload().unwrap_or(&[])),
                        };
                        if rebalanced {
                            return Ok((out, Some(r)));
                        }
                        out.push(r);
                    }
                    Some(Err(e)) => {
                        // The context has just seen this error with its reason: a refusal (bad
                        // certificate, failed authentication) is returned, for good.
                        if let Some(reason) = consumer.context().refusals.since(started) {
                            return Err(refused(&e, &reason));
                        }
                        // librdkafka reports transient trouble (a broker restarting, a timeout)
                        // here and recovers by itself; fatal errors surface on every call.
                        tracing::warn!(error = %e, "kafka consumer error");
                        break;
                    }
                    None => {
                        if !out.is_empty() || Instant::now() >= deadline {
                            break;
                        }
                    }
                }
                // Stop at a rebalance so records and assignment changes stay in order.
                if out.len() >= max_records || rebalanced {
                    break;
                }
            }
            Ok((out, None))
        })
        .await?;
        self.carry = carry;
        if !records.is_empty() {
            return Ok(ConsumerEvent::Records(records));
        }
        if let Some(ev) = self.state.lock().expect("group state lock").events.pop_front() {
            return Ok(ev);
        }
        Ok(match self.carry.take() {
            Some(r) => ConsumerEvent::Records(vec![r]),
            None => ConsumerEvent::Idle,
        })
    }

    async fn seek(&mut self, partition: i32, offset: i64) -> Result<()> {
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        blocking(move || {
            // Right after an assignment librdkafka may not have started the partition's
            // fetcher yet ("erroneous state"): retry for a while.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match consumer.seek(&topic, partition, Offset::Offset(offset), Duration::from_secs(5)) {
                    Ok(()) => return Ok(()),
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!(partition, offset, error = %e, "seek not possible yet, retrying");
                        // Serve callbacks meanwhile; messages are discarded by the seek's
                        // version barrier anyway.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        })
        .await
    }

    async fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in offsets {
            tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o))?;
        }
        let consumer = self.consumer.clone();
        blocking(move || Ok(consumer.commit(&tpl, CommitMode::Sync)?)).await
    }

    async fn committed(&mut self, partitions: &[i32]) -> Result<Vec<Option<i64>>> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&self.topic, *p);
        }
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        let parts = partitions.to_vec();
        blocking(move || {
            let got = consumer.committed_offsets(tpl, ADMIN_TIMEOUT)?;
            Ok(parts
                .iter()
                .map(|p| match got.find_partition(&topic, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                })
                .collect())
        })
        .await
    }

    fn assignment(&self) -> Vec<i32> {
        self.state.lock().expect("group state lock").assignment.clone()
    }

    async fn close(&mut self) -> Result<()> {
        let consumer = self.consumer.clone();
        blocking(move || {
            consumer.unsubscribe();
            // Serve the revoke callback so the group rebalances now rather than after the
            // session timeout.
            let _ = consumer.poll(Duration::from_millis(100));
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_from_transient_trouble() {
        use RDKafkaErrorCode::*;
        // What librdkafka 2.12 reports (workers/tests/kafka_tls.rs meets each of them).
        let wrong_ca = "ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate \
                        verify failed: broker certificate could not be verified (after 4ms in state SSL_HANDSHAKE)";
        let no_client_cert = "ssl://127.0.0.1:9094/bootstrap: Receive failed: error:0A000412:SSL routines::sslv3 alert \
                              bad certificate: SSL alert number 42 (after 0ms in state APIVERSION_QUERY)";
        let bad_password = "sasl_ssl://127.0.0.1:9096/bootstrap: SASL authentication error: Authentication failed \
                            during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        assert!(refusal(SSL, wrong_ca));
        assert!(refusal(BrokerTransportFailure, no_client_cert));
        assert!(refusal(Authentication, bad_password));
        // A broker going away is not a refusal, whatever the protocol.
        let dropped =
            "ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: Disconnected (after 2ms in state SSL_HANDSHAKE)";
        assert!(!refusal(SSL, dropped));
        let down = "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused";
        assert!(!refusal(BrokerTransportFailure, down));
        assert!(!refusal(AllBrokersDown, "1/1 brokers are down"));
    }
}
