//! The SQS queue of the notifier route: S3 sends the watched bucket's object-created events to
//! it, ticklake's notifier worker reads them ([`receive`]), shapes messages (readable text, a
//! digest per interval, attributes for filter policies), publishes them to the topic
//! ([`crate::sns::publish`]) and deletes what it handled ([`delete_messages`]).
//!
//! Per `AlertSubscription`: the queue `owner.aws_name("events", 80)` and its dead-letter queue
//! `owner.aws_name("events-dlq", 80)`, both tagged:
//!
//! * the queue's access policy lets `s3.amazonaws.com` send only from the watched bucket
//!   (`aws:SourceArn`) of this account (`aws:SourceAccount`, taken from the queue ARN: the
//!   bucket is assumed to be in the operator's account);
//! * a message received [`MAX_RECEIVE_COUNT`] times without being deleted (the worker failed
//!   on it, or could not parse it and left it) moves to the dead-letter queue;
//! * events are kept [`RETENTION_SECONDS`] (4 days: a notifier that is down over a long weekend
//!   still catches up), dead letters [`DLQ_RETENTION_SECONDS`] (14 days, SQS's maximum);
//! * [`VISIBILITY_TIMEOUT_SECONDS`] is the worker's time to handle a batch before SQS hands it
//!   out again; [`WAIT_SECONDS`] makes receives long polls by default.
//!
//! A queue deleted less than 60 s ago cannot be re-created under its name; SQS answers
//! `QueueDeletedRecently`, which is reported as [`ErrorKind::Throttled`] (retry later).

use crate::clients::Clients;
use crate::error::{AwsError, ErrorKind};
use crate::sns::{arn_account, arn_partition, policy_matches};
use crate::tags::Owner;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
    QueueAttributeName,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

pub const RETENTION_SECONDS: u32 = 4 * 24 * 3600;
pub const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;
pub const MAX_RECEIVE_COUNT: u32 = 5;
pub const VISIBILITY_TIMEOUT_SECONDS: u32 = 60;
pub const WAIT_SECONDS: u32 = 20;

/// The queues of one `AlertSubscription`'s notifier route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDesired {
    /// `owner.aws_name("events", 80)` (at most 80 characters, SQS's limit).
    pub name: String,
    /// `owner.aws_name("events-dlq", 80)`.
    pub dlq_name: String,
    /// The watched bucket, allowed to send.
    pub bucket: String,
    pub tags: BTreeMap<String, String>,
    /// `MessageRetentionPeriod` of the queue and of the dead-letter queue.
    pub retention_seconds: u32,
    pub dlq_retention_seconds: u32,
    /// `maxReceiveCount` of the redrive policy.
    pub max_receive_count: u32,
    pub visibility_timeout_seconds: u32,
    /// `ReceiveMessageWaitTimeSeconds`.
    pub wait_seconds: u32,
}

/// What exists after [`ensure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueObserved {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    /// What [`ensure`] changed, for Events; empty when everything was in place.
    pub changes: Vec<String>,
}

/// The queues for an owner watching `bucket`.
pub fn desired(owner: &Owner, bucket: &str) -> QueueDesired {
    QueueDesired {
        name: owner.aws_name("events", 80),
        dlq_name: owner.aws_name("events-dlq", 80),
        bucket: bucket.to_string(),
        tags: owner.tags(),
        retention_seconds: RETENTION_SECONDS,
        dlq_retention_seconds: DLQ_RETENTION_SECONDS,
        max_receive_count: MAX_RECEIVE_COUNT,
        visibility_timeout_seconds: VISIBILITY_TIMEOUT_SECONDS,
        wait_seconds: WAIT_SECONDS,
    }
}

/// The queue's access policy: `s3.amazonaws.com` may `SendMessage` from `bucket` in the
/// queue's account, nothing else (the account's own principals use IAM).
pub fn queue_policy(queue_arn: &str, bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Id": "ticklake-s3-events",
        "Statement": [{
            "Sid": "ticklake-s3-send",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "SQS:SendMessage",
            "Resource": queue_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": format!("arn:{}:s3:::{bucket}", arn_partition(queue_arn))},
                "StringEquals": {"aws:SourceAccount": arn_account(queue_arn)}
            }
        }]
    })
}

/// The redrive policy sending messages to `dlq_arn` after `max_receive_count` receives.
pub fn redrive_policy(dlq_arn: &str, max_receive_count: u32) -> Value {
    json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
}

fn sqs_err<E, R>(operation: &'static str, err: aws_sdk_sqs::error::SdkError<E, R>) -> AwsError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let mut e = AwsError::from_sdk("sqs", operation, err);
    // SQS codes the shared classifier doesn't know (query-compatible names included).
    match e.code.as_deref().map(|c| c.rsplit('.').next().unwrap_or(c)) {
        Some("RequestThrottled" | "OverLimit" | "QueueDeletedRecently" | "KmsThrottled") => {
            e.kind = ErrorKind::Throttled
        }
        Some("NonExistentQueue" | "QueueDoesNotExist") => e.kind = ErrorKind::NotFound,
        Some("InvalidAttributeValue" | "InvalidAttributeName" | "InvalidParameterValue") => e.kind = ErrorKind::Invalid,
        _ => {}
    }
    e
}

/// Whether an observed attribute value is what we want. Policies compare as JSON (AWS
/// reformats them); the redrive policy too, with `maxReceiveCount` as a number or a string.
fn attribute_matches(name: &str, observed: Option<&str>, want: &str) -> bool {
    let Some(observed) = observed else { return false };
    match name {
        "Policy" => serde_json::from_str::<Value>(want).is_ok_and(|w| policy_matches(observed, &w)),
        "RedrivePolicy" => {
            let norm = |s: &str| -> Option<(String, u64)> {
                let v: Value = serde_json::from_str(s).ok()?;
                let arn = v.get("deadLetterTargetArn")?.as_str()?.to_string();
                let n = match v.get("maxReceiveCount")? {
                    Value::Number(n) => n.as_u64()?,
                    Value::String(s) => s.parse().ok()?,
                    _ => return None,
                };
                Some((arn, n))
            };
            norm(observed).is_some() && norm(observed) == norm(want)
        }
        _ => observed == want,
    }
}

async fn queue_url(c: &Clients, name: &str) -> Result<Option<String>, AwsError> {
    match c.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_string)),
        Err(e) => {
            let e = sqs_err("GetQueueUrl", e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

async fn owned(c: &Clients, url: &str, owner: &Owner) -> Result<bool, AwsError> {
    let out = c.sqs.list_queue_tags().queue_url(url).send().await.map_err(|e| sqs_err("ListQueueTags", e))?;
    Ok(owner.owns(out.tags().unwrap_or(&HashMap::new())))
}

/// Creates the queue if missing (with `fixed`), refuses one that is not ours, and sets the
/// attributes that differ from `fixed` plus `with_arn(arn)` (those that need the queue's own
/// ARN, like its policy). Returns (url, arn).
async fn ensure_queue(
    c: &Clients,
    name: &str,
    owner: &Owner,
    fixed: &BTreeMap<&'static str, String>,
    with_arn: impl Fn(&str) -> BTreeMap<&'static str, String>,
    changes: &mut Vec<String>,
) -> Result<(String, String), AwsError> {
    let mut created = false;
    let url = match queue_url(c, name).await? {
        Some(url) => {
            if !owned(c, &url, owner).await? {
                return Err(AwsError::new(
                    ErrorKind::NotOwned,
                    "sqs",
                    "ListQueueTags",
                    format!("SQS queue {name} exists but is not tagged as belonging to {}; left alone", owner.id()),
                ));
            }
            url
        }
        None => {
            let mut create = c.sqs.create_queue().queue_name(name);
            for (k, v) in fixed {
                create = create.attributes(QueueAttributeName::from(*k), v);
            }
            for (k, v) in owner.tags() {
                create = create.tags(k, v);
            }
            let out = create.send().await.map_err(|e| sqs_err("CreateQueue", e))?;
            changes.push(format!("created SQS queue {name}"));
            created = true;
            out.queue_url()
                .map(str::to_string)
                .ok_or_else(|| AwsError::new(ErrorKind::Other, "sqs", "CreateQueue", "no QueueUrl in the answer"))?
        }
    };
    let out = c
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| sqs_err("GetQueueAttributes", e))?;
    let observed: HashMap<&str, &str> =
        out.attributes().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let arn = observed
        .get("QueueArn")
        .map(|a| a.to_string())
        .ok_or_else(|| AwsError::new(ErrorKind::Other, "sqs", "GetQueueAttributes", format!("{name}: no QueueArn")))?;
    let mut want = fixed.clone();
    want.extend(with_arn(&arn));
    let differ: Vec<&str> =
        want.iter().filter(|(k, v)| !attribute_matches(k, observed.get(*k).copied(), v)).map(|(k, _)| *k).collect();
    if !differ.is_empty() {
        // All of them, not only those that differ: one write of the whole desired state (moto
        // 5.2.5 also drops a queue's policy on any SetQueueAttributes without one).
        let mut set = c.sqs.set_queue_attributes().queue_url(&url);
        for (k, v) in &want {
            set = set.attributes(QueueAttributeName::from(*k), v);
        }
        set.send().await.map_err(|e| sqs_err("SetQueueAttributes", e))?;
        if !created {
            changes.push(format!("set {} of SQS queue {name}", differ.join(", ")));
        }
    }
    Ok((url, arn))
}

/// Creates or repairs both queues (the dead-letter queue first: the queue's redrive policy
/// names it). A queue with our name but without our tags: [`ErrorKind::NotOwned`].
pub async fn ensure(c: &Clients, d: &QueueDesired, owner: &Owner) -> Result<QueueObserved, AwsError> {
    let mut changes = Vec::new();
    let dlq_fixed = BTreeMap::from([("MessageRetentionPeriod", d.dlq_retention_seconds.to_string())]);
    let (dlq_url, dlq_arn) = ensure_queue(c, &d.dlq_name, owner, &dlq_fixed, |_| BTreeMap::new(), &mut changes).await?;
    let fixed = BTreeMap::from([
        ("MessageRetentionPeriod", d.retention_seconds.to_string()),
        ("VisibilityTimeout", d.visibility_timeout_seconds.to_string()),
        ("ReceiveMessageWaitTimeSeconds", d.wait_seconds.to_string()),
        ("RedrivePolicy", redrive_policy(&dlq_arn, d.max_receive_count).to_string()),
    ]);
    let bucket = d.bucket.clone();
    let (url, arn) = ensure_queue(
        c,
        &d.name,
        owner,
        &fixed,
        |arn| BTreeMap::from([("Policy", queue_policy(arn, &bucket).to_string())]),
        &mut changes,
    )
    .await?;
    Ok(QueueObserved { url, arn, dlq_url, dlq_arn, changes })
}

/// Deletes the queue and its dead-letter queue, each only if tagged ours (a same-named queue
/// of someone else is left alone, logged). Messages in them go with them.
pub async fn delete(c: &Clients, owner: &Owner) -> Result<Vec<String>, AwsError> {
    let mut changes = Vec::new();
    for name in [owner.aws_name("events", 80), owner.aws_name("events-dlq", 80)] {
        let Some(url) = queue_url(c, &name).await? else { continue };
        if !owned(c, &url, owner).await? {
            tracing::warn!(queue = %name, owner = %owner.id(), "SQS queue not tagged as ours: not deleted");
            continue;
        }
        match c.sqs.delete_queue().queue_url(&url).send().await {
            Ok(_) => changes.push(format!("deleted SQS queue {name}")),
            Err(e) => {
                let e = sqs_err("DeleteQueue", e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
    }
    Ok(changes)
}

/// Receives up to `max` (1 to 10) messages, waiting up to `wait_seconds` (0 to 20) for the
/// first: (receipt handle, body) pairs. Delete each handled one with [`delete_messages`];
/// one left alone comes back after the visibility timeout, and after
/// [`MAX_RECEIVE_COUNT`] receives lands in the dead-letter queue.
pub async fn receive(c: &Clients, url: &str, max: i32, wait_seconds: i32) -> Result<Vec<(String, String)>, AwsError> {
    let out = c
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(wait_seconds.clamp(0, 20))
        .send()
        .await
        .map_err(|e| sqs_err("ReceiveMessage", e))?;
    Ok(out
        .messages()
        .iter()
        .filter_map(|m| Some((m.receipt_handle()?.to_string(), m.body().unwrap_or_default().to_string())))
        .collect())
}

/// Deletes received messages by receipt handle, 10 per call. Entries SQS refuses (e.g. an
/// expired receipt handle: the message was handed out again) make an error listing them,
/// after all others were deleted.
pub async fn delete_messages(c: &Clients, url: &str, receipts: &[String]) -> Result<(), AwsError> {
    let mut failed = Vec::new();
    for chunk in receipts.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(r).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::new(ErrorKind::Other, "sqs", "DeleteMessageBatch", e.to_string()))?;
        let out = c
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_err("DeleteMessageBatch", e))?;
        for f in out.failed() {
            failed.push(format!("{}: {}", f.code(), f.message().unwrap_or_default()));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(AwsError::new(
            ErrorKind::Other,
            "sqs",
            "DeleteMessageBatch",
            format!("{} of {} messages not deleted: {}", failed.len(), receipts.len(), failed.join("; ")),
        ))
    }
}

/// SQS's limit on a message's visibility timeout: 12 hours from when it was received
/// ([`change_visibility`] can't hide a message longer than that in all).
pub const MAX_VISIBILITY_SECONDS: u32 = 12 * 3600;

/// A received message with what the notifier worker needs beyond its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// SQS's id of the message: the same on every receive (the receipt handle is not).
    pub message_id: String,
    /// This receive's handle, for [`delete_messages`] and [`change_visibility`].
    pub receipt: String,
    pub body: String,
    /// How often the message has been received, this time included (1 the first time); after
    /// the redrive policy's `maxReceiveCount` receives it moves to the dead-letter queue.
    pub receive_count: u32,
}

/// [`receive`] with each message's id and receive count.
pub async fn receive_messages(c: &Clients, url: &str, max: i32, wait_seconds: i32) -> Result<Vec<Received>, AwsError> {
    let out = c
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(wait_seconds.clamp(0, 20))
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| sqs_err("ReceiveMessage", e))?;
    Ok(out
        .messages()
        .iter()
        .filter_map(|m| {
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            Some(Received {
                message_id: m.message_id()?.to_string(),
                receipt: m.receipt_handle()?.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count,
            })
        })
        .collect())
}

/// The queue's `VisibilityTimeout` in seconds: how long a received message stays hidden
/// unless [`change_visibility`] says otherwise.
pub async fn visibility_timeout(c: &Clients, url: &str) -> Result<u32, AwsError> {
    let out = c
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| sqs_err("GetQueueAttributes", e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AwsError::new(ErrorKind::Other, "sqs", "GetQueueAttributes", "no VisibilityTimeout"))
}

/// Hides received messages for `seconds` from now (0: visible again at once, for another
/// consumer), 10 per call. The total since a message was received can't exceed
/// [`MAX_VISIBILITY_SECONDS`]. Returns the receipts SQS refused (expired handle, the 12-hour
/// limit reached): those messages come back when their current timeout ends.
pub async fn change_visibility(
    c: &Clients,
    url: &str,
    receipts: &[String],
    seconds: u32,
) -> Result<Vec<String>, AwsError> {
    let mut refused = Vec::new();
    for chunk in receipts.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(seconds.min(MAX_VISIBILITY_SECONDS) as i32)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::new(ErrorKind::Other, "sqs", "ChangeMessageVisibilityBatch", e.to_string()))?;
        let out = c
            .sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_err("ChangeMessageVisibilityBatch", e))?;
        for f in out.failed() {
            if let Some(r) = f.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                refused.push(r.clone());
            }
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_names_and_settings() {
        let owner = Owner::new("AlertSubscription", "data", "new-ticks");
        let d = desired(&owner, "lake");
        assert_eq!(d.name, owner.aws_name("events", 80));
        assert!(d.name.ends_with("-data-new-ticks-events"), "{}", d.name);
        assert_eq!(d.dlq_name, format!("{}-dlq", d.name));
        assert_eq!(d.retention_seconds, 345_600);
        assert_eq!(d.max_receive_count, 5);
        assert_eq!(d.tags["ticklake.dev/owner"], "AlertSubscription/data/new-ticks");
        let long = desired(&Owner::new("AlertSubscription", &"n".repeat(63), &"x".repeat(63)), "lake");
        assert!(long.name.len() <= 80 && long.dlq_name.len() <= 80);
        assert_ne!(long.name, long.dlq_name);
    }

    #[test]
    fn queue_policy_allows_only_the_bucket() {
        let p = queue_policy("arn:aws:sqs:eu-west-1:111122223333:q", "lake");
        let s = &p["Statement"][0];
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(s["Principal"]["Service"], "s3.amazonaws.com");
        assert_eq!(s["Action"], "SQS:SendMessage");
        assert_eq!(s["Resource"], "arn:aws:sqs:eu-west-1:111122223333:q");
        assert_eq!(s["Condition"]["ArnLike"]["aws:SourceArn"], "arn:aws:s3:::lake");
        assert_eq!(s["Condition"]["StringEquals"]["aws:SourceAccount"], "111122223333");
        let cn = queue_policy("arn:aws-cn:sqs:cn-north-1:111122223333:q", "lake");
        assert_eq!(cn["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"], "arn:aws-cn:s3:::lake");
    }

    #[test]
    fn attributes_compare_by_meaning() {
        let want = redrive_policy("arn:aws:sqs:us-east-1:1:dlq", 5).to_string();
        assert!(attribute_matches(
            "RedrivePolicy",
            Some(r#"{"maxReceiveCount":"5","deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq"}"#),
            &want
        ));
        assert!(!attribute_matches(
            "RedrivePolicy",
            Some(r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":3}"#),
            &want
        ));
        assert!(!attribute_matches("RedrivePolicy", None, &want));
        let p = queue_policy("arn:aws:sqs:us-east-1:1:q", "b");
        let reformatted = serde_json::to_string_pretty(&p)
            .unwrap()
            .replace(r#""Action": "SQS:SendMessage""#, r#""Action": ["SQS:SendMessage"]"#);
        assert!(attribute_matches("Policy", Some(&reformatted), &p.to_string()));
        assert!(!attribute_matches(
            "Policy",
            Some(&queue_policy("arn:aws:sqs:us-east-1:1:q", "c").to_string()),
            &p.to_string()
        ));
        assert!(attribute_matches("MessageRetentionPeriod", Some("345600"), "345600"));
        assert!(!attribute_matches("MessageRetentionPeriod", Some("60"), "345600"));
    }
}
