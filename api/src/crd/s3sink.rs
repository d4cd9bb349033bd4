//! `S3Sink`: a topic landed exactly once in S3 as Parquet, crawled by Glue, queried by Athena.

use super::common::{DNS_SUBDOMAIN_PATTERN, KafkaConnection, SecretReference};
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of an S3 bucket name (lower-case letters, digits, `.` and `-`).
pub(crate) const BUCKET_PATTERN: &str = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$";

/// Lands a Kafka topic in S3 (or any S3-compatible store) exactly once.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "ticklake.dev",
    version = "v1alpha1",
    kind = "S3Sink",
    namespaced,
    status = "S3SinkStatus",
    shortname = "s3s",
    category = "ticklake",
    derive = "PartialEq",
    doc = "Lands a Kafka topic in S3 (or any S3-compatible store) exactly once, as Hive-style partitioned Parquet; optionally catalogued by AWS Glue and queried with Amazon Athena.",
    validation = Rule::new("self.metadata.name.size() <= 63")
        .message("the name must be at most 63 characters: it becomes a label value of the workers")
        .reason(Reason::FieldValueInvalid),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Bucket","type":"string","jsonPath":".spec.bucket"}"#,
    printcolumn = r#"{"name":"Msg/s","type":"number","jsonPath":".status.messagesPerSecond"}"#,
    printcolumn = r#"{"name":"Lag","type":"integer","jsonPath":".status.consumerLag"}"#,
    printcolumn = r#"{"name":"Dead","type":"integer","jsonPath":".status.deadLetters"}"#,
    printcolumn = r#"{"name":"Last Object","type":"string","priority":1,"jsonPath":".status.lastObjectKey"}"#,
    printcolumn = r#"{"name":"Table","type":"string","priority":1,"jsonPath":".status.catalog.table"}"#,
    printcolumn = r#"{"name":"Crawler","type":"string","priority":1,"jsonPath":".status.catalog.crawlerState"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!has(self.forcePathStyle) || !self.forcePathStyle || has(self.endpoint)")
        .message("forcePathStyle: true needs an endpoint: path-style addressing is for S3-compatible stores")
        .field_path(".forcePathStyle"),
    validation = Rule::new("self.deadLetter.maxMessageBytes <= self.flush.maxBytes")
        .message("deadLetter.maxMessageBytes must not exceed flush.maxBytes")
        .field_path(".deadLetter.maxMessageBytes"),
    validation = Rule::new("!has(self.athena) || !(self.prefix == '' ? self.athena.resultLocation.startsWith('s3://' + self.bucket + '/') || self.athena.resultLocation == 's3://' + self.bucket : (self.athena.resultLocation + '/').startsWith('s3://' + self.bucket + '/' + self.prefix + '/'))")
        .message("athena.resultLocation must not be inside the sink's own data (s3://<bucket>/<prefix>/): Glue would catalogue the query results as table data")
        .field_path(".athena.resultLocation")
)]
#[schemars(transform = crate::crd::common::unwrap_descriptions)]
pub struct S3SinkSpec {
    /// Topic to land. Letters, digits, `.`, `_` and `-`.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("'.' and '..' are not valid Kafka topic names"))]
    pub topic: String,
    /// Consumer group of the sink workers; default `ticklake-sink-<name>`. Its committed
    /// offsets are where the sink resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249))]
    pub consumer_group: Option<String>,
    /// The Kafka cluster to read from. Without `bootstrapServers` the local runner uses its
    /// embedded log; in a cluster set them.
    #[serde(default)]
    pub kafka: KafkaConnection,
    /// Bucket to write to (3 to 63 lower-case letters, digits, `.` and `-`).
    #[schemars(length(min = 3, max = 63), regex(pattern = BUCKET_PATTERN))]
    pub bucket: String,
    /// Key prefix under which the table's objects are written (no leading or trailing `/`;
    /// default empty: the bucket's root).
    #[serde(default)]
    #[schemars(length(max = 512), regex(pattern = r"^([^/].*[^/]|[^/])?$"))]
    pub prefix: String,
    /// AWS region, e.g. `eu-west-1`; absent means the default chain's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible store (e.g. `http://minio.minio:9000`). Absent means
    /// AWS S3; the local runner then writes the same layout to a local directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"))]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which MinIO and most S3-compatible
    /// stores need; defaults to true when `endpoint` is set. `true` needs `endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Secret (same namespace) with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`; absent
    /// means the default credential chain (IRSA in EKS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretReference>,
    /// Object format: `parquet` (default; zstd-compressed, one row per tick) or `jsonLines`
    /// (one JSON object per line, for compatibility with older consumers).
    #[serde(default)]
    pub format: SinkFormat,
    /// How objects are laid out in Hive-style folders by event time (UTC).
    #[serde(default)]
    pub partitioning: PartitioningSpec,
    /// When buffered ticks are written out: whichever limit is reached first.
    #[serde(default)]
    pub flush: FlushSpec,
    /// Where refused messages go (malformed, oversized, unsupported version...).
    #[serde(default)]
    pub dead_letter: DeadLetterSpec,
    /// AWS Glue Data Catalog settings (used by the operator's Glue reconciler); absent means
    /// no catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue: Option<GlueSpec>,
    /// Amazon Athena settings (used by the operator's Athena reconciler); absent means no
    /// workgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub athena: Option<AthenaSpec>,
    /// Sink worker pods (default 1); 0 stops landing. Kafka spreads the topic's partitions over
    /// them, so more pods than partitions leaves some idle.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 256))]
    pub replicas: i32,
    /// Compute resources (CPU, memory requests and limits) of each sink pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// ServiceAccount (same namespace) of the sink pods, e.g. one annotated for IRSA; absent
    /// means the namespace's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub service_account_name: Option<String>,
}

fn default_replicas() -> i32 {
    1
}

/// Format of the objects a sink writes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SinkFormat {
    /// Apache Parquet, zstd-compressed, one row per tick.
    #[default]
    Parquet,
    /// One JSON object per line, as the hand-wired consumers wrote (compatibility).
    JsonLines,
}

/// Hive-style layout: `year=YYYY/month=MM/day=DD/hour=HH/` by event time (UTC).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartitioningSpec {
    /// Finest time folder: `day` (`.../day=DD/`) or `hour` (default, `.../hour=HH/`).
    #[serde(default)]
    pub granularity: TimeGranularity,
    /// Add a `symbol=XYZ/` folder below the time folders (default false).
    #[serde(default)]
    pub by_symbol: bool,
}

impl Default for PartitioningSpec {
    fn default() -> Self {
        PartitioningSpec { granularity: TimeGranularity::Hour, by_symbol: false }
    }
}

/// Finest time folder of the Hive-style layout.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TimeGranularity {
    Day,
    #[default]
    Hour,
}

/// Rotation: a Kafka partition's buffer is written out when any limit is reached.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlushSpec {
    /// Ticks buffered per Kafka partition before a write (default 1000000).
    #[serde(default = "default_max_records")]
    #[schemars(range(min = 1, max = 50000000))]
    pub max_records: u64,
    /// Bytes of message values buffered per Kafka partition before a write (default 268435456,
    /// 256 MiB).
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 1024, max = 4294967296_u64))]
    pub max_bytes: u64,
    /// Longest a tick waits in the buffer, in milliseconds (default 60000, one minute).
    #[serde(default = "default_interval_ms")]
    #[schemars(range(min = 100, max = 86400000))]
    pub interval_ms: u64,
}

fn default_max_records() -> u64 {
    1_000_000
}
fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_interval_ms() -> u64 {
    60_000
}

impl Default for FlushSpec {
    fn default() -> Self {
        FlushSpec {
            max_records: default_max_records(),
            max_bytes: default_max_bytes(),
            interval_ms: default_interval_ms(),
        }
    }
}

/// Refused messages are written under `<prefix>/<deadLetter.prefix>/` with their raw bytes,
/// topic, partition, offset and the reason.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetterSpec {
    /// Folder below the sink's prefix (default `_dead_letters`); starts with `_` so Athena and
    /// Glue skip it.
    #[serde(default = "default_dead_letter_prefix")]
    #[schemars(length(min = 2, max = 128), regex(pattern = r"^_[A-Za-z0-9._-]+$"))]
    pub prefix: String,
    /// Messages larger than this many bytes are refused as `oversized` (default 65536); at most
    /// `flush.maxBytes`.
    #[serde(default = "default_max_message_bytes")]
    #[schemars(range(min = 64, max = 104857600))]
    pub max_message_bytes: u64,
}

fn default_dead_letter_prefix() -> String {
    "_dead_letters".to_string()
}
fn default_max_message_bytes() -> u64 {
    64 * 1024
}

impl Default for DeadLetterSpec {
    fn default() -> Self {
        DeadLetterSpec { prefix: default_dead_letter_prefix(), max_message_bytes: default_max_message_bytes() }
    }
}

/// Glue Data Catalog: database, table and crawler.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.schedule) || self.mode == 'crawler'")
    .message("schedule applies only to mode crawler")
    .field_path(".schedule"))]
pub struct GlueSpec {
    /// Glue database (lower-case letters, digits and `_`); created when missing.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[a-z0-9_]+$"))]
    pub database: String,
    /// Table name (lower-case letters, digits and `_`); default derived from the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[a-z0-9_]+$"))]
    pub table: Option<String>,
    /// How the table learns about new partitions: `crawler` (default; a crawler on
    /// `schedule`), `event` (a crawler started by S3 events) or `projection` (no crawler:
    /// partition projection).
    #[serde(default)]
    pub mode: CatalogMode,
    /// Crawler schedule for mode `crawler`, a Glue cron expression such as
    /// `cron(0/15 * * * ? *)`; absent means the crawler only runs on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 7, max = 256), regex(pattern = r"^cron\(.+\)$"))]
    pub schedule: Option<String>,
    /// What the crawler does when the schema changes: `update` (default) the table, or only
    /// `log` it.
    #[serde(default)]
    pub schema_change_policy: SchemaChangePolicy,
    /// IAM role the crawler runs as (ARN); it needs read access to the prefix and the Glue
    /// service policy. Default: the operator's `--glue-crawler-role`. Not used by mode
    /// `projection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048), regex(pattern = r"^arn:aws[a-zA-Z-]*:iam::[0-9]{12}:role/.+$"))]
    pub crawler_role: Option<String>,
}

/// How a Glue table learns about new partitions.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CatalogMode {
    /// A crawler on `schedule`.
    #[default]
    Crawler,
    /// A crawler started by S3 events.
    Event,
    /// No crawler: the table is kept with partition projection.
    Projection,
}

/// What a Glue crawler does when the schema changes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SchemaChangePolicy {
    #[default]
    Update,
    Log,
}

/// Athena workgroup.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.kmsKey) == (self.encryption == 'SSE_KMS')")
    .message("kmsKey is required with encryption SSE_KMS, and only then")
    .field_path(".kmsKey"))]
pub struct AthenaSpec {
    /// Workgroup name; created when missing.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub workgroup: String,
    /// `s3://bucket/prefix/` for query results; not inside the sink's own `bucket`/`prefix`.
    #[schemars(length(min = 8, max = 1024), regex(pattern = r"^s3://[a-z0-9][a-z0-9.-]*[a-z0-9](/.*)?$"))]
    pub result_location: String,
    /// Queries scanning more than this many bytes are cancelled (at least 10485760, 10 MiB);
    /// absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10485760))]
    pub bytes_scanned_cutoff_per_query: Option<u64>,
    /// Encryption of query results: `SSE_S3` (default), `SSE_KMS` (needs `kmsKey`) or `NONE`.
    #[serde(default)]
    pub encryption: AthenaEncryption,
    /// KMS key ARN or ID encrypting query results; required with `encryption: SSE_KMS`, not
    /// allowed otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key: Option<String>,
}

/// Encryption of Athena query results.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AthenaEncryption {
    #[default]
    #[serde(rename = "SSE_S3")]
    SseS3,
    #[serde(rename = "SSE_KMS")]
    SseKms,
    #[serde(rename = "NONE")]
    None,
}

/// What the operator and the workers observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::crd::common::unwrap_descriptions)]
pub struct S3SinkStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`; one entry per type.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Sink pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Ticks per second landed over the last minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_second: Option<f64>,
    /// Messages in the topic not yet landed, all partitions together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// Messages refused and written to the dead-letter prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<i64>,
    /// Objects written to the bucket since the workers started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_written: Option<i64>,
    /// Key of the last object written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_object_key: Option<String>,
    /// RFC 3339 time the last object was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_object_time: Option<String>,
    /// The Glue Data Catalog side (with `spec.glue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogStatus>,
    /// The Athena side (with `spec.athena`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub athena: Option<AthenaStatus>,
}

/// What the operator observed of the Glue database, table and crawler.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogStatus {
    /// `database.table`, as Athena queries it.
    pub table: String,
    /// The crawler's name (absent in mode `projection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crawler: Option<String>,
    /// `READY`, `RUNNING` or `STOPPING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crawler_state: Option<String>,
    /// Result of the last crawl: `SUCCEEDED`, `FAILED` or `CANCELLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crawl: Option<String>,
    /// Why the last crawl failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crawl_error: Option<String>,
    /// RFC 3339 start time of the last crawl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crawl_time: Option<String>,
}

/// What the operator observed of the Athena workgroup.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AthenaStatus {
    /// The workgroup queries run in.
    pub workgroup: String,
    /// Names of the named queries in the workgroup (`ticklake athena run --query <name>`).
    #[serde(default)]
    pub named_queries: Vec<String>,
}
