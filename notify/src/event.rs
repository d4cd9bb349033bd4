//! The events the notifier delivers, and how they are shaped. Pure: no I/O.
//!
//! Every event has an `id` that is a pure function of *what happened* — for an object, its
//! bucket and key — so an object written twice (a sink rewriting a batch after a crash) is
//! one event, and a receiver can de-duplicate deliveries by `id` alone.
//!
//! Two types exist:
//!
//! * `object.created` — an object an `S3Sink` wrote ([`object_created`]). Besides ticklake's
//!   own fields, it carries a `Records` array shaped like an Amazon S3 event notification
//!   record (`eventName: ObjectCreated:Put`, `s3.bucket.name`, `s3.object.key`, `size`), so
//!   code written for S3 events reads it unchanged.
//! * `table.schema_changed` — a table's schema changed ([`schema_changed`]). The local crawler
//!   (a later issue) calls [`crate::NotifierHandle::publish_schema_changed`] with a
//!   [`SchemaChange`] each time it records a new schema version.
//!
//! `attributes` is the flat map that filter policies ([`crate::filter`]) are evaluated
//! against, like SNS message attributes. See `notify/README.md` for full examples.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// `object.created`.
pub const OBJECT_CREATED: &str = "object.created";
/// `table.schema_changed`.
pub const SCHEMA_CHANGED: &str = "table.schema_changed";

/// One event, as delivered (webhook body, `email-json` body, an entry of a digest).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Stable id: the same occurrence always has the same id (receivers de-duplicate by it).
    pub id: String,
    /// `object.created` or `table.schema_changed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Who reported it, e.g. `ticklake:sink/ticks-lake` or `ticklake:crawler`.
    pub source: String,
    /// Flat attributes (strings and numbers) that filter policies see.
    pub attributes: BTreeMap<String, Value>,
    /// `object.created` only: one record shaped like an S3 event notification record.
    #[serde(rename = "Records", default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<S3EventRecord>,
    /// `table.schema_changed` only: what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaChange>,
}

impl Event {
    /// The object key (`object.created`), if any.
    pub fn key(&self) -> Option<&str> {
        self.records.first().map(|r| r.s3.object.key.as_str())
    }
    /// Rows in the object (`object.created`), else 0.
    pub fn rows(&self) -> u64 {
        self.records.first().map(|r| r.ticklake.rows).unwrap_or(0)
    }
    /// Bytes of the object (`object.created`), else 0.
    pub fn bytes(&self) -> u64 {
        self.records.first().map(|r| r.s3.object.size).unwrap_or(0)
    }
}

/// An S3 event notification record (the subset S3 consumers read), plus ticklake's batch
/// details under `ticklake`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3EventRecord {
    /// `2.1`, as S3.
    pub event_version: String,
    /// `ticklake:s3`.
    pub event_source: String,
    pub aws_region: String,
    pub event_time: String,
    /// `ObjectCreated:Put`.
    pub event_name: String,
    pub s3: S3Entity,
    pub ticklake: BatchInfo,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Entity {
    /// `1.0`.
    pub s3_schema_version: String,
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct S3Bucket {
    pub name: String,
    /// `arn:aws:s3:::<bucket>`.
    pub arn: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct S3Object {
    pub key: String,
    pub size: u64,
    /// Orders events for the same key, as S3's: here the batch's first offset, 20 digits.
    pub sequencer: String,
}

/// Where an object came from in the stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    /// The `S3Sink` that wrote it.
    pub sink: String,
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub rows: u64,
    /// `data`, or `dead_letter` for an object of refused messages.
    pub object_kind: String,
}

/// What the sink tells about one object (input of [`object_created`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectWritten {
    pub bucket: String,
    pub region: String,
    pub sink: String,
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub dead_letter: bool,
    /// When it became visible, ms since the epoch.
    pub time_ms: i64,
}

/// A table schema change, as the crawler reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaChange {
    pub database: String,
    pub table: String,
    /// The table's location, e.g. `s3://ticklake-demo/ticks/`.
    pub location: String,
    /// The new schema version (increases by one per change; part of the event id).
    pub version: u64,
    #[serde(default)]
    pub added_columns: Vec<Column>,
    #[serde(default)]
    pub removed_columns: Vec<Column>,
    /// Columns whose type changed: `type` is the new type.
    #[serde(default)]
    pub changed_columns: Vec<Column>,
}

/// A column: name and (Glue/Hive) type, e.g. `double`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// `evt_` and 32 hex digits of SHA-256 over the parts, NUL-separated.
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    format!("{prefix}_{}", hex::encode(&d[..16]))
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `object.created` event of an object.
pub fn object_created(o: &ObjectWritten) -> Event {
    let time = rfc3339(o.time_ms);
    let kind = if o.dead_letter { "dead_letter" } else { "data" };
    let mut attributes = BTreeMap::new();
    attributes.insert("eventType".into(), Value::from(OBJECT_CREATED));
    attributes.insert("bucket".into(), Value::from(o.bucket.clone()));
    attributes.insert("key".into(), Value::from(o.key.clone()));
    attributes.insert("sink".into(), Value::from(o.sink.clone()));
    attributes.insert("topic".into(), Value::from(o.topic.clone()));
    attributes.insert("partition".into(), Value::from(o.partition));
    attributes.insert("rows".into(), Value::from(o.rows));
    attributes.insert("bytes".into(), Value::from(o.bytes));
    attributes.insert("objectKind".into(), Value::from(kind));
    Event {
        id: stable_id("evt", &[OBJECT_CREATED, &o.bucket, &o.key]),
        event_type: OBJECT_CREATED.into(),
        time: time.clone(),
        source: format!("ticklake:sink/{}", o.sink),
        attributes,
        records: vec![S3EventRecord {
            event_version: "2.1".into(),
            event_source: "ticklake:s3".into(),
            aws_region: o.region.clone(),
            event_time: time,
            event_name: "ObjectCreated:Put".into(),
            s3: S3Entity {
                s3_schema_version: "1.0".into(),
                bucket: S3Bucket { name: o.bucket.clone(), arn: format!("arn:aws:s3:::{}", o.bucket) },
                object: S3Object { key: o.key.clone(), size: o.bytes, sequencer: format!("{:020}", o.first_offset) },
            },
            ticklake: BatchInfo {
                sink: o.sink.clone(),
                topic: o.topic.clone(),
                partition: o.partition,
                first_offset: o.first_offset,
                last_offset: o.last_offset,
                rows: o.rows,
                object_kind: kind.into(),
            },
        }],
        schema: None,
    }
}

/// The `table.schema_changed` event of a schema change observed at `time_ms`.
pub fn schema_changed(c: &SchemaChange, time_ms: i64) -> Event {
    let mut attributes = BTreeMap::new();
    attributes.insert("eventType".into(), Value::from(SCHEMA_CHANGED));
    attributes.insert("database".into(), Value::from(c.database.clone()));
    attributes.insert("table".into(), Value::from(c.table.clone()));
    attributes.insert("location".into(), Value::from(c.location.clone()));
    attributes.insert("version".into(), Value::from(c.version));
    Event {
        id: stable_id("evt", &[SCHEMA_CHANGED, &c.database, &c.table, &c.version.to_string()]),
        event_type: SCHEMA_CHANGED.into(),
        time: rfc3339(time_ms),
        source: "ticklake:crawler".into(),
        attributes,
        records: Vec::new(),
        schema: Some(c.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str) -> ObjectWritten {
        ObjectWritten {
            bucket: "demo".into(),
            region: "local".into(),
            sink: "ticks-lake".into(),
            topic: "ticks".into(),
            partition: 3,
            first_offset: 10,
            last_offset: 19,
            key: key.into(),
            rows: 10,
            bytes: 1234,
            dead_letter: false,
            time_ms: 1_764_000_000_123,
        }
    }

    #[test]
    fn object_created_is_shaped_like_an_s3_record_with_a_stable_id() {
        let e = object_created(&obj("ticks/year=2026/a.parquet"));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "object.created");
        assert_eq!(v["Records"][0]["eventName"], "ObjectCreated:Put");
        assert_eq!(v["Records"][0]["s3"]["bucket"]["name"], "demo");
        assert_eq!(v["Records"][0]["s3"]["object"]["key"], "ticks/year=2026/a.parquet");
        assert_eq!(v["Records"][0]["s3"]["object"]["size"], 1234);
        assert_eq!(v["Records"][0]["ticklake"]["firstOffset"], 10);
        assert_eq!(v["attributes"]["partition"], 3);
        assert_eq!(v["time"], "2025-11-24T16:00:00.123Z");
        // Same object, later write: same id. Other key: other id.
        let mut again = obj("ticks/year=2026/a.parquet");
        again.time_ms += 5000;
        assert_eq!(object_created(&again).id, e.id);
        assert_ne!(object_created(&obj("ticks/year=2026/b.parquet")).id, e.id);
        assert!(e.id.starts_with("evt_") && e.id.len() == 36);
        // It reads back.
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn schema_changed_ids_follow_the_version() {
        let c = SchemaChange {
            database: "ticklake".into(),
            table: "ticks".into(),
            location: "s3://demo/ticks/".into(),
            version: 2,
            added_columns: vec![Column { name: "venue".into(), data_type: "string".into() }],
            removed_columns: vec![],
            changed_columns: vec![],
        };
        let e = schema_changed(&c, 0);
        assert_eq!(e.event_type, SCHEMA_CHANGED);
        assert_eq!(e.attributes["table"], "ticks");
        assert_eq!(e.schema.as_ref().unwrap().added_columns[0].data_type, "string");
        let mut c3 = c.clone();
        c3.version = 3;
        assert_ne!(schema_changed(&c3, 0).id, e.id);
        assert_eq!(schema_changed(&c, 99).id, e.id);
        let v = serde_json::to_value(&e).unwrap();
        assert!(v.get("Records").is_none());
        assert_eq!(v["schema"]["addedColumns"][0]["type"], "string");
    }
}
