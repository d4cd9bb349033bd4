//! S3 bucket notifications: the rules an `AlertSubscription` needs on the watched bucket,
//! merged into whatever else the bucket already notifies, and the parser for what S3 sends.
//!
//! A bucket has **one** notification configuration, shared by every owner (other teams'
//! Lambda triggers, queues, EventBridge). So the operator never writes its own rules alone: it
//! reads the configuration, [`merge`]s — every rule whose Id is not ours is kept verbatim,
//! ours are replaced — and writes it back only when our part differs ([`ensure`]).
//!
//! **Which rules are ours**: a rule's Id is ours when it equals the owner's Id prefix
//! ([`id_prefix`], `ticklake/<kind>/<namespace>/<name>`) or starts with it followed by `/`.
//! Kind, namespace and name cannot contain `/`, so no owner's prefix matches another owner's
//! rules (unlike a `-`-joined prefix, where `ticklake-a-b` would match `ticklake-a-b-c`).
//!
//! **Overlaps**: S3 refuses two rules for a common event type whose prefixes overlap (one
//! starts with the other, or either is empty) *and* whose suffixes overlap (one ends with the
//! other, or either is empty): `InvalidArgument: Configurations overlap`. [`merge`] detects
//! that itself and names the rule in the way, because moto accepts overlapping rules and
//! AWS's message doesn't say which rule conflicts.
//!
//! **Races**: S3 has no conditional write for this configuration; two writers doing
//! read-merge-write at the same moment can lose one's rule. The operator repairs its own on the
//! next reconcile; another owner's tool is expected to do the same.

use crate::error::{AwsError, ErrorKind};
use crate::tags::Owner;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter, TopicConfiguration,
};
use serde_json::Value;

/// The events our rules subscribe to: every way an object is created (Put, Post, Copy,
/// CompleteMultipartUpload).
pub const EVENTS: &[&str] = &["s3:ObjectCreated:*"];

/// Where S3 sends an event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// An SNS topic ARN (the direct route: bucket → topic → subscribers).
    Topic(String),
    /// An SQS queue ARN (the notifier route: bucket → queue → notifier worker → topic).
    Queue(String),
}

/// One notification rule of ours: object-created events ([`EVENTS`]) under `prefix` ending
/// with `suffix` go to `target`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// The rule's Id: [`id_prefix`] itself, or `<id_prefix>/<anything>`.
    pub id: String,
    pub target: Target,
    /// Key prefix, e.g. `lake/ticks/` (see [`key_prefix`]); empty: every key.
    pub prefix: String,
    /// Key suffix, e.g. `.parquet`; empty: every key.
    pub suffix: String,
}

/// The Id prefix of an owner's rules: `ticklake/<kind>/<namespace>/<name>`, e.g.
/// `ticklake/AlertSubscription/data/new-ticks` (the kind keeps an `S3Sink`'s rules, should it
/// have any, apart from a same-named `AlertSubscription`'s).
pub fn id_prefix(owner: &Owner) -> String {
    format!("ticklake/{}", owner.id())
}

/// Whether a rule Id belongs to the owner of `id_prefix`.
pub fn owns_id(id: &str, id_prefix: &str) -> bool {
    id.strip_prefix(id_prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The key prefix to watch: the sink's prefix (no leading or trailing `/`, may be empty) as a
/// folder, then the watch prefix below it. `("lake/ticks", "year=2026/")` →
/// `lake/ticks/year=2026/`; `("lake", "")` → `lake/` (so `lakeside/...` does not match);
/// `("", "x/")` → `x/`.
pub fn key_prefix(sink_prefix: &str, watch_prefix: &str) -> String {
    let sink = sink_prefix.trim_matches('/');
    if sink.is_empty() { watch_prefix.to_string() } else { format!("{sink}/{watch_prefix}") }
}

/// Any rule on the bucket, ours or not, reduced to what matters for ownership and overlap.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Existing {
    id: String,
    /// `topic`, `queue`, `lambda`
    kind: &'static str,
    arn: String,
    events: Vec<String>,
    prefix: String,
    suffix: String,
}

fn filter_values(filter: Option<&NotificationConfigurationFilter>) -> (String, String) {
    let (mut prefix, mut suffix) = (String::new(), String::new());
    for r in filter.and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default() {
        // GET answers `Prefix`/`Suffix`; the API takes `prefix`/`suffix`.
        let name = r.name().map(|n| n.as_str().to_ascii_lowercase()).unwrap_or_default();
        let value = r.value().unwrap_or_default().to_string();
        match name.as_str() {
            "prefix" => prefix = value,
            "suffix" => suffix = value,
            _ => {}
        }
    }
    (prefix, suffix)
}

fn existing_rules(c: &NotificationConfiguration) -> Vec<Existing> {
    let events = |e: &[Event]| {
        let mut v: Vec<String> = e.iter().map(|e| e.as_str().to_string()).collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for t in c.topic_configurations() {
        let (prefix, suffix) = filter_values(t.filter());
        let id = t.id().unwrap_or_default().to_string();
        out.push(Existing {
            id,
            kind: "topic",
            arn: t.topic_arn().to_string(),
            events: events(t.events()),
            prefix,
            suffix,
        });
    }
    for q in c.queue_configurations() {
        let (prefix, suffix) = filter_values(q.filter());
        let id = q.id().unwrap_or_default().to_string();
        out.push(Existing {
            id,
            kind: "queue",
            arn: q.queue_arn().to_string(),
            events: events(q.events()),
            prefix,
            suffix,
        });
    }
    for l in c.lambda_function_configurations() {
        let (prefix, suffix) = filter_values(l.filter());
        let id = l.id().unwrap_or_default().to_string();
        let arn = l.lambda_function_arn().to_string();
        out.push(Existing { id, kind: "lambda", arn, events: events(l.events()), prefix, suffix });
    }
    out
}

fn as_existing(r: &Rule) -> Existing {
    let (kind, arn) = match &r.target {
        Target::Topic(a) => ("topic", a.clone()),
        Target::Queue(a) => ("queue", a.clone()),
    };
    let mut events: Vec<String> = EVENTS.iter().map(|e| e.to_string()).collect();
    events.sort();
    Existing { id: r.id.clone(), kind, arn, events, prefix: r.prefix.clone(), suffix: r.suffix.clone() }
}

/// Whether two event names share an event type: equal, or one is a `...:*` wildcard covering
/// the other (`s3:ObjectCreated:*` covers `s3:ObjectCreated:Put`).
fn events_overlap(a: &str, b: &str) -> bool {
    let covers = |w: &str, e: &str| w.strip_suffix('*').is_some_and(|stem| e.starts_with(stem));
    a == b || covers(a, b) || covers(b, a)
}

fn overlaps(a: &Existing, b: &Existing) -> bool {
    let events = a.events.iter().any(|x| b.events.iter().any(|y| events_overlap(x, y)));
    let prefixes = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
    let suffixes = a.suffix.ends_with(&b.suffix) || b.suffix.ends_with(&a.suffix);
    events && prefixes && suffixes
}

fn describe(e: &Existing) -> String {
    format!("{} → {} ({}, prefix {:?}, suffix {:?})", e.kind, e.arn, e.events.join(","), e.prefix, e.suffix)
}

fn invalid(message: String) -> AwsError {
    AwsError::new(ErrorKind::Invalid, "s3", "PutBucketNotificationConfiguration", message)
}

fn key_filter(prefix: &str, suffix: &str) -> Option<NotificationConfigurationFilter> {
    if prefix.is_empty() && suffix.is_empty() {
        return None;
    }
    let mut key = S3KeyFilter::builder();
    if !prefix.is_empty() {
        key = key.filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build());
    }
    if !suffix.is_empty() {
        key = key.filter_rules(FilterRule::builder().name(FilterRuleName::Suffix).value(suffix).build());
    }
    Some(NotificationConfigurationFilter::builder().key(key.build()).build())
}

fn build_error(e: aws_smithy_types::error::operation::BuildError) -> AwsError {
    AwsError::new(ErrorKind::Other, "s3", "PutBucketNotificationConfiguration", e.to_string())
}

/// The bucket's configuration with our rules replaced by `ours`: every Topic, Queue and
/// LambdaFunction configuration whose Id is not ours stays as it was, in its order, and the
/// EventBridge setting is untouched; ours come after the others'. Idempotent:
/// `merge(merge(x, r), r) == merge(x, r)`. `merge(x, &[], p)` removes ours.
///
/// Errors ([`ErrorKind::Invalid`]): a rule in `ours` whose Id is not ours, two of ours with the
/// same Id, or a rule of ours that overlaps another rule (see the module docs) — the message
/// names the conflicting rule's Id.
pub fn merge(
    existing: &NotificationConfiguration,
    ours: &[Rule],
    id_prefix: &str,
) -> Result<NotificationConfiguration, AwsError> {
    for (i, r) in ours.iter().enumerate() {
        if !owns_id(&r.id, id_prefix) {
            return Err(invalid(format!("rule Id {:?} is not below our Id prefix {id_prefix:?}", r.id)));
        }
        if ours[..i].iter().any(|o| o.id == r.id) {
            return Err(invalid(format!("two rules with the Id {:?}", r.id)));
        }
        let (Target::Topic(arn) | Target::Queue(arn)) = &r.target;
        if arn.is_empty() {
            return Err(invalid(format!("rule {:?} has no target ARN", r.id)));
        }
    }
    let others: Vec<Existing> = existing_rules(existing).into_iter().filter(|e| !owns_id(&e.id, id_prefix)).collect();
    let mine: Vec<Existing> = ours.iter().map(as_existing).collect();
    for (i, m) in mine.iter().enumerate() {
        if let Some(o) = others.iter().find(|o| overlaps(m, o)) {
            let id = if o.id.is_empty() { "(no Id)" } else { &o.id };
            return Err(invalid(format!(
                "bucket notification rule {:?} ({}) overlaps rule {id:?} of another owner ({}): S3 refuses rules \
                 whose prefixes and suffixes overlap for a common event type; choose a prefix or suffix that \
                 does not overlap, or have rule {id:?} changed",
                m.id,
                describe(m),
                describe(o)
            )));
        }
        if let Some(o) = mine[..i].iter().find(|o| overlaps(m, o)) {
            return Err(invalid(format!(
                "our rules {:?} and {:?} overlap ({} / {}): S3 refuses that",
                o.id,
                m.id,
                describe(o),
                describe(m)
            )));
        }
    }

    let not_ours = |id: Option<&str>| !id.is_some_and(|id| owns_id(id, id_prefix));
    let mut topics: Vec<TopicConfiguration> =
        existing.topic_configurations().iter().filter(|t| not_ours(t.id())).cloned().collect();
    let mut queues: Vec<QueueConfiguration> =
        existing.queue_configurations().iter().filter(|q| not_ours(q.id())).cloned().collect();
    let lambdas: Vec<LambdaFunctionConfiguration> =
        existing.lambda_function_configurations().iter().filter(|l| not_ours(l.id())).cloned().collect();
    for r in ours {
        let events: Vec<Event> = EVENTS.iter().map(|e| Event::from(*e)).collect();
        let filter = key_filter(&r.prefix, &r.suffix);
        match &r.target {
            Target::Topic(arn) => topics.push(
                TopicConfiguration::builder()
                    .id(&r.id)
                    .topic_arn(arn)
                    .set_events(Some(events))
                    .set_filter(filter)
                    .build()
                    .map_err(build_error)?,
            ),
            Target::Queue(arn) => queues.push(
                QueueConfiguration::builder()
                    .id(&r.id)
                    .queue_arn(arn)
                    .set_events(Some(events))
                    .set_filter(filter)
                    .build()
                    .map_err(build_error)?,
            ),
        }
    }
    Ok(NotificationConfiguration::builder()
        .set_topic_configurations((!topics.is_empty()).then_some(topics))
        .set_queue_configurations((!queues.is_empty()).then_some(queues))
        .set_lambda_function_configurations((!lambdas.is_empty()).then_some(lambdas))
        .set_event_bridge_configuration(existing.event_bridge_configuration().cloned())
        .build())
}

/// Whether the rules of ours in `existing` are exactly `ours` (in any order).
fn ours_unchanged(existing: &NotificationConfiguration, ours: &[Rule], id_prefix: &str) -> bool {
    let mut have: Vec<Existing> = existing_rules(existing).into_iter().filter(|e| owns_id(&e.id, id_prefix)).collect();
    let mut want: Vec<Existing> = ours.iter().map(as_existing).collect();
    have.sort();
    want.sort();
    have == want
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<NotificationConfiguration, AwsError> {
    let out = match s3.get_bucket_notification_configuration().bucket(bucket).send().await {
        Ok(out) => out,
        Err(aws_sdk_s3::error::SdkError::ServiceError(ctx))
            if ctx.raw().status().as_u16() == 200 && ctx.raw().body().bytes().is_some_and(empty_but_misnamed) =>
        {
            return Ok(NotificationConfiguration::builder().build());
        }
        Err(e) => return Err(AwsError::from_sdk("s3", "GetBucketNotificationConfiguration", e)),
    };
    Ok(NotificationConfiguration::builder()
        .set_topic_configurations(out.topic_configurations.clone())
        .set_queue_configurations(out.queue_configurations.clone())
        .set_lambda_function_configurations(out.lambda_function_configurations.clone())
        .set_event_bridge_configuration(out.event_bridge_configuration.clone())
        .build())
}

/// moto 5.2.5 answers a bucket without notifications with an empty
/// `<GetBucketNotificationResponse/>` where S3 sends `<NotificationConfiguration/>`, which the
/// SDK can't parse: a 200 whose body is that element and names no configuration is empty.
fn empty_but_misnamed(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("GetBucketNotificationResponse") && !text.contains("Configuration")
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, config: NotificationConfiguration) -> Result<(), AwsError> {
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3", "PutBucketNotificationConfiguration", e))?;
    Ok(())
}

/// Puts `rules` (all of ours, see [`owns_id`]) on the bucket: Get → [`merge`] → Put, the Put
/// only when our rules differ from what is there. Returns whether it wrote. S3 validates the
/// targets on Put (the topic or queue policy must let this bucket send) and then sends an
/// `s3:TestEvent` to each destination ([`parse_s3_events`] returns no objects for it).
pub async fn ensure(s3: &aws_sdk_s3::Client, bucket: &str, rules: &[Rule], id_prefix: &str) -> Result<bool, AwsError> {
    let existing = get(s3, bucket).await?;
    let merged = merge(&existing, rules, id_prefix)?;
    if ours_unchanged(&existing, rules, id_prefix) {
        return Ok(false);
    }
    put(s3, bucket, merged).await?;
    Ok(true)
}

/// Removes our rules from the bucket, keeping everyone else's. Returns whether there were any.
/// A bucket that is gone has no rules to remove: `Ok(false)`.
pub async fn remove(s3: &aws_sdk_s3::Client, bucket: &str, id_prefix: &str) -> Result<bool, AwsError> {
    let existing = match get(s3, bucket).await {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if ours_unchanged(&existing, &[], id_prefix) {
        return Ok(false);
    }
    put(s3, bucket, merge(&existing, &[], id_prefix)?).await?;
    Ok(true)
}

// ------------------------------------------------------------------------------------------
// What S3 sends

/// An object S3 announced as created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    /// URL-decoded: S3 sends keys form-URL-encoded (`+` is a space, `%3D` is `=`).
    pub key: String,
    /// Bytes; 0 when the event has no size.
    pub size: u64,
    /// Without quotes, as S3 sends it; empty when absent.
    pub etag: String,
    /// ISO 8601, e.g. `2026-01-02T03:04:05.678Z`, as S3 sends it; empty when absent.
    pub event_time: String,
    /// Orders events for the same key (hex string; longer or greater is later); empty when
    /// absent.
    pub sequencer: String,
}

/// The created objects in a message body as S3, SNS or SQS deliver it:
///
/// * an S3 event notification: `{"Records":[{"eventName":"ObjectCreated:Put","s3":{...}}]}`
///   (also MinIO's, whose event names carry an `s3:` prefix);
/// * the same inside an SNS envelope `{"Type":"Notification","Message":"<that JSON as a
///   string>"}` (an SQS subscription without raw delivery, an HTTPS subscription);
/// * S3's `s3:TestEvent` (sent when the configuration is written), bare or in an envelope:
///   no objects, not an error.
///
/// Records of other event types (ObjectRemoved, ...) are skipped. Anything else is an error
/// with the reason, for the dead-letter queue.
pub fn parse_s3_events(body: &str) -> Result<Vec<S3Object>, String> {
    let v: Value = serde_json::from_str(body.trim()).map_err(|e| format!("not JSON: {e}"))?;
    parse_value(&v, false)
}

fn parse_value(v: &Value, in_envelope: bool) -> Result<Vec<S3Object>, String> {
    let obj = v.as_object().ok_or("not a JSON object")?;
    if let Some(t) = obj.get("Type").and_then(Value::as_str) {
        if in_envelope {
            return Err("an SNS envelope inside an SNS envelope".into());
        }
        if t != "Notification" {
            return Err(format!("an SNS {t} message, not a notification"));
        }
        let message = obj.get("Message").and_then(Value::as_str).ok_or("an SNS notification without a Message")?;
        let inner: Value =
            serde_json::from_str(message).map_err(|e| format!("the SNS notification's Message is not JSON: {e}"))?;
        return parse_value(&inner, true);
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let Some(records) = obj.get("Records") else {
        return Err("neither an S3 event notification (Records), an SNS notification, nor an s3:TestEvent".into());
    };
    let records = records.as_array().ok_or("Records is not an array")?;
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let name = r.get("eventName").and_then(Value::as_str).ok_or_else(|| format!("record {i} has no eventName"))?;
        if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
            continue;
        }
        let s3 = r.get("s3").ok_or_else(|| format!("record {i} ({name}) has no s3 element"))?;
        let str_at = |path: &[&str]| {
            let mut v = s3;
            for p in path {
                v = v.get(p)?;
            }
            v.as_str().map(str::to_string)
        };
        let bucket = str_at(&["bucket", "name"]).ok_or_else(|| format!("record {i} has no s3.bucket.name"))?;
        let raw_key = str_at(&["object", "key"]).ok_or_else(|| format!("record {i} has no s3.object.key"))?;
        let key = decode_key(&raw_key).map_err(|e| format!("record {i}: {e}"))?;
        let size = match s3.get("object").and_then(|o| o.get("size")) {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| format!("record {i}: size {n} is not a byte count"))?,
            Some(Value::String(s)) => s.parse().map_err(|_| format!("record {i}: size {s:?} is not a byte count"))?,
            Some(other) => return Err(format!("record {i}: size {other} is not a byte count")),
        };
        out.push(S3Object {
            bucket,
            key,
            size,
            etag: str_at(&["object", "eTag"]).unwrap_or_default().trim_matches('"').to_string(),
            event_time: r.get("eventTime").and_then(Value::as_str).unwrap_or_default().to_string(),
            sequencer: str_at(&["object", "sequencer"]).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Decodes a key as S3 puts it into events: form URL encoding, `+` is a space, `%XX` a byte.
/// A `%` not followed by two hex digits stays as it is.
pub fn decode_key(encoded: &str) -> Result<String, String> {
    let b = encoded.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("key {encoded:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "ticklake/AlertSubscription/data/new-ticks";

    fn filter(prefix: &str, suffix: &str) -> Option<NotificationConfigurationFilter> {
        // As GET returns them: capitalised names.
        let mut key = S3KeyFilter::builder();
        if !prefix.is_empty() {
            key = key.filter_rules(FilterRule::builder().name(FilterRuleName::from("Prefix")).value(prefix).build());
        }
        if !suffix.is_empty() {
            key = key.filter_rules(FilterRule::builder().name(FilterRuleName::from("Suffix")).value(suffix).build());
        }
        Some(NotificationConfigurationFilter::builder().key(key.build()).build())
    }

    fn topic(id: &str, arn: &str, event: &str, prefix: &str, suffix: &str) -> TopicConfiguration {
        TopicConfiguration::builder()
            .id(id)
            .topic_arn(arn)
            .events(Event::from(event))
            .set_filter(filter(prefix, suffix))
            .build()
            .unwrap()
    }

    fn queue(id: &str, arn: &str, event: &str, prefix: &str, suffix: &str) -> QueueConfiguration {
        QueueConfiguration::builder()
            .id(id)
            .queue_arn(arn)
            .events(Event::from(event))
            .set_filter(filter(prefix, suffix))
            .build()
            .unwrap()
    }

    fn lambda(id: &str, event: &str, prefix: &str) -> LambdaFunctionConfiguration {
        LambdaFunctionConfiguration::builder()
            .id(id)
            .lambda_function_arn("arn:aws:lambda:us-east-1:1:function:thumbs")
            .events(Event::from(event))
            .set_filter(filter(prefix, ""))
            .build()
            .unwrap()
    }

    /// Other owners' rules: a queue, a topic, a Lambda trigger, EventBridge on.
    fn others() -> NotificationConfiguration {
        NotificationConfiguration::builder()
            .queue_configurations(queue("etl", "arn:aws:sqs:us-east-1:1:etl", "s3:ObjectCreated:*", "raw/", ""))
            .topic_configurations(topic("audit", "arn:aws:sns:us-east-1:1:audit", "s3:ObjectRemoved:*", "", ""))
            .lambda_function_configurations(lambda("thumbs", "s3:ObjectCreated:Put", "images/"))
            .event_bridge_configuration(aws_sdk_s3::types::EventBridgeConfiguration::builder().build())
            .build()
    }

    fn ours(prefix: &str, suffix: &str) -> Rule {
        Rule {
            id: P.to_string(),
            target: Target::Topic("arn:aws:sns:us-east-1:1:ticklake-data-new-ticks".into()),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn ids_and_prefixes() {
        let owner = Owner::new("AlertSubscription", "data", "new-ticks");
        assert_eq!(id_prefix(&owner), P);
        assert!(owns_id(P, P));
        assert!(owns_id("ticklake/AlertSubscription/data/new-ticks/queue", P));
        assert!(!owns_id("ticklake/AlertSubscription/data/new-ticks-2", P), "another owner whose name extends ours");
        assert!(!owns_id("ticklake/AlertSubscription/data/new", P));
        assert!(!owns_id("ticklake/S3Sink/data/new-ticks", P), "another kind");
        assert!(!owns_id("etl", P));
        assert_eq!(key_prefix("lake/ticks", "year=2026/"), "lake/ticks/year=2026/");
        assert_eq!(key_prefix("lake", ""), "lake/");
        assert_eq!(key_prefix("", "x/"), "x/");
        assert_eq!(key_prefix("", ""), "");
    }

    #[test]
    fn merge_keeps_other_owners_and_is_idempotent() {
        let existing = others();
        let rule = ours("lake/ticks/", ".parquet");
        let merged = merge(&existing, std::slice::from_ref(&rule), P).unwrap();
        assert_eq!(merged.queue_configurations(), existing.queue_configurations());
        assert_eq!(merged.lambda_function_configurations(), existing.lambda_function_configurations());
        assert_eq!(merged.event_bridge_configuration(), existing.event_bridge_configuration());
        assert_eq!(merged.topic_configurations().len(), 2);
        assert_eq!(merged.topic_configurations()[0], existing.topic_configurations()[0]);
        let t = &merged.topic_configurations()[1];
        assert_eq!(t.id(), Some(P));
        assert_eq!(t.events(), &[Event::S3ObjectCreated]);
        assert_eq!(filter_values(t.filter()), ("lake/ticks/".to_string(), ".parquet".to_string()));

        let again = merge(&merged, std::slice::from_ref(&rule), P).unwrap();
        assert_eq!(again, merged);
        assert!(ours_unchanged(&merged, std::slice::from_ref(&rule), P));
        assert!(!ours_unchanged(&existing, std::slice::from_ref(&rule), P));

        // Changing our rule (a topic → a queue, a new suffix) replaces it.
        let queued = Rule {
            target: Target::Queue("arn:aws:sqs:us-east-1:1:ticklake-data-new-ticks-events".into()),
            suffix: String::new(),
            ..rule.clone()
        };
        let changed = merge(&merged, std::slice::from_ref(&queued), P).unwrap();
        assert_eq!(changed.topic_configurations(), existing.topic_configurations());
        assert_eq!(changed.queue_configurations().len(), 2);
        assert!(!ours_unchanged(&merged, std::slice::from_ref(&queued), P));

        // Removing ours gives back exactly the others' configuration.
        assert_eq!(merge(&changed, &[], P).unwrap(), existing);
        assert!(ours_unchanged(&existing, &[], P));
    }

    #[test]
    fn merge_on_an_empty_bucket_and_without_filters() {
        let empty = NotificationConfiguration::builder().build();
        let merged = merge(&empty, &[ours("", "")], P).unwrap();
        assert_eq!(merged.topic_configurations().len(), 1);
        assert!(merged.topic_configurations()[0].filter().is_none());
        assert!(merged.queue_configurations().is_empty() && merged.event_bridge_configuration().is_none());
        assert_eq!(merge(&merged, &[], P).unwrap(), empty);
    }

    #[test]
    fn merge_refuses_overlaps_naming_the_rule() {
        let existing = others();
        // etl watches raw/ for every created object: our prefix below it overlaps.
        let e = merge(&existing, &[ours("raw/ticks/", ".parquet")], P).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("\"etl\""), "{}", e.message);
        // The Lambda's ObjectCreated:Put under images/ overlaps our ObjectCreated:* there.
        let e = merge(&existing, &[ours("images/", "")], P).unwrap_err();
        assert!(e.message.contains("\"thumbs\""), "{}", e.message);
        // An empty prefix overlaps everything for the same events.
        assert!(merge(&existing, &[ours("", ".parquet")], P).is_err());
        // The audit topic is for ObjectRemoved: no overlap with ObjectCreated, whatever the keys.
        assert!(merge(&existing, &[ours("lake/", "")], P).is_ok());
        // Overlapping prefixes with suffixes that don't overlap are fine.
        let parquet_only = NotificationConfiguration::builder()
            .queue_configurations(queue("csv", "arn:aws:sqs:us-east-1:1:csv", "s3:ObjectCreated:*", "lake/", ".csv"))
            .build();
        assert!(merge(&parquet_only, &[ours("lake/ticks/", ".parquet")], P).is_ok());
        assert!(merge(&parquet_only, &[ours("lake/ticks/", "")], P).is_err());
        // Our own rule in the existing configuration is replaced, not an overlap.
        let merged = merge(&existing, &[ours("lake/", "")], P).unwrap();
        assert!(merge(&merged, &[ours("lake/", ".parquet")], P).is_ok());
    }

    #[test]
    fn merge_refuses_rules_not_ours() {
        let mut r = ours("lake/", "");
        r.id = "etl".into();
        assert_eq!(merge(&others(), &[r], P).unwrap_err().kind, ErrorKind::Invalid);
        let a = Rule { id: format!("{P}/a"), ..ours("lake/a/", "") };
        let b = Rule { id: format!("{P}/a"), ..ours("lake/b/", "") };
        assert!(merge(&others(), &[a.clone(), b], P).unwrap_err().message.contains("two rules"));
        let overlapping = Rule { id: format!("{P}/b"), ..ours("lake/a/x/", "") };
        assert!(merge(&others(), &[a, overlapping], P).unwrap_err().message.contains("our rules"));
    }

    #[test]
    fn event_overlap() {
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectCreated:Copy", "s3:ObjectCreated:*"));
        assert!(events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:Put"));
        assert!(!events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:Post"));
        assert!(!events_overlap("s3:ObjectCreated:*", "s3:ObjectRemoved:*"));
        assert!(!events_overlap("s3:ObjectRestore:*", "s3:ObjectRemoved:Delete"));
    }

    // Shapes from the S3 user guide ("Event message structure", "test event") and the SNS
    // developer guide (HTTP/S notification JSON), with ticklake's key layout.
    const PUT_EVENT: &str = r#"{
      "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2026-01-02T03:04:05.678Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {
          "s3SchemaVersion": "1.0",
          "configurationId": "ticklake/AlertSubscription/data/new-ticks",
          "bucket": {"name": "lake", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::lake"},
          "object": {
            "key": "ticks/year%3D2026/month%3D01/day%3D02/hour%3D03/ticks%2B0%2B00000000000000000009%2B00000000000000001200.parquet",
            "size": 104857,
            "eTag": "0123456789abcdef0123456789abcdef",
            "sequencer": "0055AED6DCD90281E5"
          }
        }
      }, {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2026-01-02T03:04:06.000Z",
        "eventName": "ObjectRemoved:Delete",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "lake"},
               "object": {"key": "old.parquet", "sequencer": "0055AED6DCD90281E6"}}
      }, {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2026-01-02T03:04:07.000Z",
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "lake"},
               "object": {"key": "notes/a+b%C3%A9.parquet", "size": 5, "eTag": "abc-2", "sequencer": "0055AED6DCD90281E7"}}
      }]
    }"#;

    const TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z","Bucket":"lake","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;

    fn envelope(message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ticklake-data-new-ticks",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2026-01-02T03:04:06.001Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:t:c9135db0"
        })
        .to_string()
    }

    #[test]
    fn parses_s3_events() {
        let objects = parse_s3_events(PUT_EVENT).unwrap();
        assert_eq!(
            objects,
            vec![
                S3Object {
                    bucket: "lake".into(),
                    key: "ticks/year=2026/month=01/day=02/hour=03/ticks+0+00000000000000000009+00000000000000001200.parquet"
                        .into(),
                    size: 104857,
                    etag: "0123456789abcdef0123456789abcdef".into(),
                    event_time: "2026-01-02T03:04:05.678Z".into(),
                    sequencer: "0055AED6DCD90281E5".into(),
                },
                S3Object {
                    bucket: "lake".into(),
                    key: "notes/a bé.parquet".into(),
                    size: 5,
                    etag: "abc-2".into(),
                    event_time: "2026-01-02T03:04:07.000Z".into(),
                    sequencer: "0055AED6DCD90281E7".into(),
                },
            ],
            "the ObjectRemoved record is skipped"
        );
        assert_eq!(parse_s3_events(&envelope(PUT_EVENT)).unwrap(), objects);
        assert_eq!(parse_s3_events(TEST_EVENT).unwrap(), vec![]);
        assert_eq!(parse_s3_events(&envelope(TEST_EVENT)).unwrap(), vec![]);
        assert_eq!(parse_s3_events(r#"{"Records":[]}"#).unwrap(), vec![]);
    }

    #[test]
    fn parses_minio_events() {
        // MinIO: an `s3:` prefix on the event name, the key form-encoded, size a number.
        let minio = r#"{"EventName":"s3:ObjectCreated:Put","Key":"lake/ticks/a b.parquet","Records":[{
            "eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-01-02T03:04:05.678Z",
            "eventName":"s3:ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","configurationId":"Config",
            "bucket":{"name":"lake","arn":"arn:aws:s3:::lake"},
            "object":{"key":"ticks%2Fa+b.parquet","size":12,"eTag":"e","sequencer":"17F9"}}}]}"#;
        let o = parse_s3_events(minio).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].key, "ticks/a b.parquet");
        assert_eq!(o[0].size, 12);
    }

    #[test]
    fn refuses_other_messages_with_a_reason() {
        for (body, reason) in [
            ("", "not JSON"),
            ("hello", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"foo":1}"#, "neither"),
            (r#"{"Records":{}}"#, "not an array"),
            (r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#, "no s3 element"),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}"#,
                "no s3.object.key",
            ),
            (r#"{"Records":[{"s3":{}}]}"#, "no eventName"),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":-1}}}]}"#,
                "not a byte count",
            ),
            (
                r#"{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe"}"#,
                "SubscriptionConfirmation",
            ),
            (r#"{"Type":"Notification","Message":"New data landed"}"#, "Message is not JSON"),
            (r#"{"Type":"Notification"}"#, "without a Message"),
        ] {
            let e = parse_s3_events(body).unwrap_err();
            assert!(e.contains(reason), "{body}: {e}");
        }
        let nested = envelope(&envelope(TEST_EVENT));
        assert!(parse_s3_events(&nested).unwrap_err().contains("inside an SNS envelope"));
    }

    #[test]
    fn motos_empty_answer_is_an_empty_configuration() {
        let moto = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<GetBucketNotificationResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>";
        assert!(empty_but_misnamed(moto));
        assert!(!empty_but_misnamed(
            b"<GetBucketNotificationResponse><TopicConfiguration/></GetBucketNotificationResponse>"
        ));
        assert!(!empty_but_misnamed(b"<Error><Code>InternalError</Code></Error>"));
    }

    #[test]
    fn decodes_keys() {
        assert_eq!(decode_key("a+b%3Dc%2Fd").unwrap(), "a b=c/d");
        assert_eq!(decode_key("plain/key.parquet").unwrap(), "plain/key.parquet");
        assert_eq!(decode_key("%E2%82%AC").unwrap(), "€");
        assert_eq!(decode_key("100%").unwrap(), "100%");
        assert_eq!(decode_key("%zz%4").unwrap(), "%zz%4");
        assert_eq!(decode_key("%2b").unwrap(), "+");
        assert!(decode_key("%FF").is_err());
    }
}
