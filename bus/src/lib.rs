//! # ticklake-bus
//!
//! The message bus ticklake's workers talk to, behind one interface with two implementations:
//!
//! * [`kafka`] — Apache Kafka through rdkafka (librdkafka), for clusters and AWS MSK;
//! * [`embedded`] — an embedded durable log with Kafka's model (topics, partitions, offsets,
//!   consumer groups), for the local runner: no broker to install.
//!
//! The workers see only [`Bus`], [`Producer`] and [`Consumer`], so the same producer and sink
//! code runs on both, and the same conformance suite (`tests/conformance.rs`) checks both.
//!
//! ## Model
//! A topic has partitions; each partition is an append-only sequence of [`Record`]s numbered by
//! offset from 0. A producer picks the partition from the key with Kafka's murmur2 partitioner
//! (librdkafka is configured with `murmur2_random` too), so one symbol's ticks land in one
//! partition on both buses. A consumer joins a group; the group spreads the topic's partitions
//! over its members and tells each member what it got and lost ([`ConsumerEvent`]). Committed
//! offsets are the group's "next offset to read" per partition.

pub mod embedded;
pub mod kafka;
mod murmur2;

use async_trait::async_trait;
use bytes::Bytes;

pub use murmur2::{murmur2, partition_for_key};

/// Errors from either bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("embedded log I/O on {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("embedded log is corrupt at {path}: {detail}")]
    Corrupt { path: std::path::PathBuf, detail: String },
    #[error("embedded log at {0} is used by another process")]
    Locked(std::path::PathBuf),
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("partition {partition} of topic {topic:?} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("partition {0} is not assigned to this consumer")]
    NotAssigned(i32),
    #[error("offset {offset} is out of range {low}..{high} for partition {partition}")]
    OffsetOutOfRange { partition: i32, offset: i64, low: i64, high: i64 },
    #[error("record of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("the bus is closed")]
    Closed,
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;

/// One message as read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    /// Producer-set timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
}

/// One message to produce. `partition: None` means "by key" (murmur2), or round-robin
/// without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub timestamp_ms: i64,
    pub partition: Option<i32>,
}

/// A topic as the bus sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    /// True when this call created the topic.
    pub created: bool,
}

/// What a consumer learns from [`Consumer::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// These partitions are now this member's; reading starts at the group's committed
    /// offset (or at the earliest offset when none is committed) unless the caller seeks.
    Assigned(Vec<i32>),
    /// These partitions are no longer this member's; anything buffered for them must be
    /// dropped or written out before the next poll.
    Revoked(Vec<i32>),
    /// Records, in offset order within each partition.
    Records(Vec<Record>),
    /// Nothing arrived within the poll timeout.
    Idle,
}

/// Creates producers and consumers, and administers topics.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Creates the topic when missing. An existing topic is returned as it is, with its own
    /// partition count, and never shrunk.
    async fn ensure_topic(&self, topic: &str, partitions: i32, replication_factor: i16) -> Result<TopicInfo>;
    /// Partitions of an existing topic.
    async fn partitions(&self, topic: &str) -> Result<i32>;
    /// `(low, high)` watermarks: the earliest offset still stored and the next offset to be
    /// written.
    async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)>;
    /// A producer for one topic.
    async fn producer(&self, topic: &str) -> Result<Box<dyn Producer>>;
    /// A consumer of one topic in a consumer group.
    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>>;
}

/// Writes records to one topic.
#[async_trait]
pub trait Producer: Send + Sync {
    /// Writes a batch and returns once every record is durable on the bus (acknowledged by
    /// the brokers, or written to the embedded log). On error, some records of the batch may
    /// have been written: producers of ticks rely on (symbol, seq) for de-duplication.
    async fn send_batch(&self, batch: Vec<OutRecord>) -> Result<()>;
    /// Waits for everything sent to be durable.
    async fn flush(&self) -> Result<()>;
}

/// Reads one topic as a member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// The next event: an assignment change, records (at most `max_records`), or `Idle` after
    /// `timeout`.
    async fn poll(&mut self, max_records: usize, timeout: std::time::Duration) -> Result<ConsumerEvent>;
    /// Continues reading `partition` at `offset` (which must be between the watermarks).
    async fn seek(&mut self, partition: i32, offset: i64) -> Result<()>;
    /// Records the next offset to read for each partition in the group.
    async fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<()>;
    /// The group's committed next offsets for these partitions (`None`: never committed).
    async fn committed(&mut self, partitions: &[i32]) -> Result<Vec<Option<i64>>>;
    /// Partitions currently assigned to this member.
    fn assignment(&self) -> Vec<i32>;
    /// Leaves the group (revoking this member's partitions from it).
    async fn close(&mut self) -> Result<()>;
}
