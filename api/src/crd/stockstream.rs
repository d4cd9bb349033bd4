//! `StockStream`: stock ticks produced into a Kafka topic by producer workers.

use super::common::{DeletionPolicy, KafkaConnection};
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A stream of stock ticks — simulated or replayed from files — produced into a Kafka topic.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "ticklake.dev",
    version = "v1alpha1",
    kind = "StockStream",
    namespaced,
    status = "StockStreamStatus",
    shortname = "sst",
    category = "ticklake",
    derive = "PartialEq",
    doc = "A stream of stock ticks — simulated or replayed from files — produced into a Kafka topic by producer workers.",
    validation = Rule::new("self.metadata.name.size() <= 43")
        .message("the name must be at most 43 characters: the producers' StatefulSet <name>-producer must fit in 52 characters, Kubernetes' limit for a StatefulSet whose pods get a revision label")
        .reason(Reason::FieldValueInvalid),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Topic","type":"string","jsonPath":".spec.topic"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Msg/s","type":"number","jsonPath":".status.messagesPerSecond"}"#,
    printcolumn = r#"{"name":"Produced","type":"integer","jsonPath":".status.producedTotal"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = crate::crd::common::unwrap_descriptions)]
pub struct StockStreamSpec {
    /// Where ticks come from: exactly one of `simulator` or `replay`.
    pub source: SourceSpec,
    /// The Kafka cluster to produce into. Without `bootstrapServers` the local runner uses its
    /// embedded log; in a cluster set them.
    #[serde(default)]
    pub kafka: KafkaConnection,
    /// Topic to produce into; created when missing. Letters, digits, `.`, `_` and `-`.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("'.' and '..' are not valid Kafka topic names"))]
    pub topic: String,
    /// Partitions of the topic when ticklake creates it (default 6). The value can only grow:
    /// Kafka cannot remove partitions.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 10000))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("partitions can only grow: Kafka cannot remove partitions from a topic"))]
    pub partitions: i32,
    /// Replication factor of the topic when ticklake creates it (default 1; use 3 on a
    /// production cluster).
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1, max = 16))]
    pub replication_factor: i16,
    /// Producer worker pods (default 1); 0 stops producing. Each simulator worker produces its
    /// own share of the symbols.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 64))]
    pub replicas: i32,
    /// Compression of produced batches: `lz4`, `zstd` (default) or `none`.
    #[serde(default)]
    pub compression: ProducerCompression,
    /// Compute resources (CPU, memory requests and limits) of each producer pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// What deleting this StockStream does to its Kafka topic: `retain` (default) keeps the
    /// topic and its data for other readers; `delete` deletes the topic once the producers are
    /// stopped.
    #[serde(default)]
    pub topic_deletion_policy: DeletionPolicy,
}

fn default_partitions() -> i32 {
    6
}
fn default_replication_factor() -> i16 {
    1
}
fn default_replicas() -> i32 {
    1
}

/// Compression codec of produced record batches.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProducerCompression {
    Lz4,
    #[default]
    Zstd,
    None,
}

/// Exactly one of the fields is set.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.simulator) != has(self.replay)")
    .message("exactly one of source.simulator or source.replay must be set"))]
pub struct SourceSpec {
    /// Simulated ticks: a market simulator (geometric Brownian motion with jumps, trades and
    /// quotes). Exclusive with `replay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator: Option<SimulatorSpec>,
    /// Replayed ticks: historical CSV or Parquet files, in event-time order. Exclusive with
    /// `simulator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplaySpec>,
}

/// A market simulator: geometric Brownian motion with jumps, trades and quotes, U-shaped
/// intraday volume. Deterministic for a given seed, symbols and start time.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulatorSpec {
    /// Symbols to simulate, each listed once (1 to 32 characters, no `/`, `=` or control
    /// characters); empty (the default) means the built-in list of about 50 US tickers.
    #[serde(default)]
    #[schemars(length(max = 10000), inner(length(min = 1, max = 32), regex(pattern = r"^[^/=[:cntrl:]]+$")))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub symbols: Vec<String>,
    /// Ticks per second across all symbols (per stream, split over the replicas), default
    /// 1000; 0 means as fast as the broker takes them.
    #[serde(default = "default_ticks_per_second")]
    #[schemars(range(min = 0, max = 100000000))]
    pub ticks_per_second: u64,
    /// Random seed (default 42); the same seed, symbols and start time give the same ticks.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Share of ticks that are quotes rather than trades, 0 to 1 (default 0.6).
    #[serde(default = "default_quote_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub quote_ratio: f64,
    /// Event time of the first tick, RFC 3339 (e.g. `2026-11-25T14:30:00Z`); absent means now.
    /// Simulated time then advances with the tick rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub start_time: Option<String>,
    /// Stop after this many ticks (per stream); absent means run forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_ticks: Option<u64>,
}

fn default_ticks_per_second() -> u64 {
    1000
}
fn default_seed() -> u64 {
    42
}
fn default_quote_ratio() -> f64 {
    0.6
}

/// Replay of historical files, in event-time order.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = no_schema_default_for_mapping)]
#[x_kube(validation = Rule::new("has(self.mapping)")
    .message("replay needs a mapping: a preset, or the symbol, time and kind columns")
    .field_path(".mapping")
    .reason(Reason::FieldValueRequired))]
pub struct ReplaySpec {
    /// Files to replay, at least one: paths (globs allowed) as seen by the worker, e.g. on a
    /// mounted volume. `.gz` files are decompressed.
    #[schemars(length(min = 1, max = 10000), inner(length(min = 1, max = 4096)))]
    pub files: Vec<String>,
    /// File format: `auto` (default) decides by extension (`.csv`, `.csv.gz`, `.parquet`);
    /// `csv` or `parquet` force one.
    #[serde(default)]
    pub format: ReplayFormat,
    /// How columns map to tick fields: a built-in `preset`, or explicit `symbol`, `time` and
    /// `kind` (with `fields`).
    #[serde(default)]
    pub mapping: ColumnMapping,
    /// Replay speed: 0 (default) means as fast as possible, k means k× real time by event time.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub speed: f64,
    /// Start again from the first row when the files are exhausted (default false).
    #[serde(default, rename = "loop")]
    pub loop_: bool,
}

/// serde's default for `mapping` (`{}`) is no valid mapping, and the API server refuses a CRD
/// whose defaults break its own CEL rules: the schema has no default there, and `has(self.mapping)`
/// says what is missing.
fn no_schema_default_for_mapping(schema: &mut schemars::Schema) {
    if let Some(mapping) =
        schema.get_mut("properties").and_then(|p| p.get_mut("mapping")).and_then(|m| m.as_object_mut())
    {
        mapping.remove("default");
    }
}

/// Format of replayed files.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReplayFormat {
    #[default]
    Auto,
    Csv,
    Parquet,
}

/// CEL: every `fields` key is a field of the mapping's kind (`bar` when only the preset gives it).
const FIELDS_OF_THE_KIND: &str = "!has(self.fields) || self.fields.all(f, f in ((has(self.kind) ? self.kind : 'bar') == 'trade' ? ['price', 'size'] : (has(self.kind) ? self.kind : 'bar') == 'quote' ? ['bid', 'bid_size', 'bidSize', 'ask', 'ask_size', 'askSize'] : ['open', 'high', 'low', 'close', 'volume', 'adj_close', 'adjClose', 'close_usd', 'closeUsd']))";

/// Column mapping of replayed files. With `preset: kaggleIndexProcessed` the columns
/// `Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD` become `bar` ticks.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("has(self.preset) || (has(self.symbol) && has(self.time))")
        .message("mapping needs a preset, or both the symbol and the time columns")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("has(self.preset) || has(self.kind)")
        .message("mapping needs a kind (trade, quote or bar) when it has no preset")
        .field_path(".kind")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new(FIELDS_OF_THE_KIND)
        .message("mapping.fields keys must be fields of the mapping's kind: trade: price, size; quote: bid, bid_size, ask, ask_size; bar (also the preset's kind): open, high, low, close, volume, adj_close, close_usd")
        .field_path(".fields"),
    validation = Rule::new("!has(self.fields) || !(('bid_size' in self.fields && 'bidSize' in self.fields) || ('ask_size' in self.fields && 'askSize' in self.fields) || ('adj_close' in self.fields && 'adjClose' in self.fields) || ('close_usd' in self.fields && 'closeUsd' in self.fields))")
        .message("mapping.fields names a field twice, in snake_case and in camelCase; keep one")
        .field_path(".fields")
)]
pub struct ColumnMapping {
    /// A built-in mapping: `kaggleIndexProcessed` (the Kaggle `indexProcessed.csv`, daily
    /// `bar` ticks). Explicit columns below override its entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<MappingPreset>,
    /// Tick kind produced: `trade`, `quote` or `bar`. From the preset when absent; required
    /// without a preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReplayKind>,
    /// Column holding the symbol (required without a preset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub symbol: Option<String>,
    /// Column holding the event time (required without a preset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub time: Option<String>,
    /// How the time column is written: `rfc3339`, `date` (YYYY-MM-DD, midnight UTC),
    /// `epochSeconds`, `epochMillis`, `epochMicros`, or a chrono format string such as
    /// `%Y-%m-%d %H:%M:%S` (read as UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub time_format: Option<String>,
    /// Tick field → column name, for the fields of the mapping's kind: `trade` — `price`,
    /// `size`; `quote` — `bid`, `bid_size`, `ask`, `ask_size`; `bar` — `open`, `high`, `low`,
    /// `close`, `volume`, `adj_close`, `close_usd` (camelCase such as `bidSize` also accepted).
    /// A field not listed is read from the column of its own name, e.g. `price: Last`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32, "additionalProperties" = {"type": "string", "minLength": 1, "maxLength": 256}))]
    pub fields: std::collections::BTreeMap<String, String>,
}

// No doc comment on the enum itself: with a documented variant it would replace the
// `preset` field's description in the CRD.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MappingPreset {
    /// The Kaggle `indexProcessed.csv`: `Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD`.
    KaggleIndexProcessed,
}

/// Kind of the ticks a replay produces.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReplayKind {
    Trade,
    Quote,
    Bar,
}

/// What the operator and the workers observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::crd::common::unwrap_descriptions)]
pub struct StockStreamStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`; one entry per type.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Producer pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Partitions the topic has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_partitions: Option<i32>,
    /// Ticks per second produced over the last minute, all workers together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_second: Option<f64>,
    /// Ticks produced since the workers started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced_total: Option<i64>,
}
