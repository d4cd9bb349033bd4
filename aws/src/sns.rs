//! The SNS topic of an `AlertSubscription` and its subscriptions.
//!
//! Per `AlertSubscription`: a topic named `owner.aws_name("", 256)`, tagged, whose access policy keeps
//! the account's default statement and lets `s3.amazonaws.com` publish only from the watched
//! bucket of this account ([`topic_policy`]); one subscription per endpoint whose protocol SNS
//! has (`email`, `email-json`, `https`, `sqs`). `webhook`, `slack` and `discord` are
//! ticklake's notifier's own: they get no subscription and show as [`STATE_NOT_SUBSCRIBED`].
//!
//! ## Routes
//!
//! [`route`] picks how events reach the topic:
//!
//! * [`Route::Direct`] — bucket → topic: S3 publishes its own event JSON, SNS fans it out.
//!   Only when that JSON is what subscribers should get: one message per object
//!   (`digestIntervalSeconds: 0`), no `filterPolicy` (S3's messages carry no message
//!   attributes to filter on), no rate limit and no `webhook`/`slack`/`discord` endpoint (SNS
//!   can't apply or reach those).
//! * [`Route::Notifier`] — bucket → queue ([`crate::sqs`]) → notifier worker → topic
//!   ([`publish`]): readable messages, digests, attributes for the filter policy.
//!
//! ## Subscription attributes
//!
//! * `FilterPolicy` = the spec's `filterPolicy` with `FilterPolicyScope` =
//!   `MessageAttributes`: it matches the message attributes the notifier worker sets on
//!   [`publish`] (e.g. `symbol`, `table`), not the message text — which is prose for email. A
//!   removed `filterPolicy` is cleared by setting `{}` (SNS's way to remove one).
//! * `RawMessageDelivery` = `true` for `sqs`: the queue gets the message itself (and the
//!   attributes as SQS message attributes), not SNS's JSON envelope around it; consumers read
//!   the S3 event or the notifier's message directly ([`crate::s3notify::parse_s3_events`]
//!   takes both forms anyway). `false` for `https`: the endpoint must answer SNS's
//!   `SubscriptionConfirmation` (always enveloped) and should verify the envelope's signature,
//!   which raw delivery drops. Email protocols have no such attribute.
//!
//! ## Subscription state and drift
//!
//! [`ensure`] lists the topic's subscriptions and, per endpoint of the spec:
//!
//! * subscribed with an ARN → `GetSubscriptionAttributes`: `PendingConfirmation` = `true` →
//!   [`STATE_PENDING`], else [`STATE_CONFIRMED`] and attributes that drifted are set again;
//! * listed as `PendingConfirmation` (SNS shows no ARN until the endpoint confirms) →
//!   [`STATE_PENDING`], and **nothing is done**: a new `Subscribe` would re-send the
//!   confirmation email on every reconcile. SNS deletes a subscription unconfirmed for 3 days;
//!   the next reconcile then finds the endpoint missing and subscribes again, so an endpoint
//!   that never confirms gets at most one confirmation request per ~3 days. Attributes of a
//!   pending subscription were set by its `Subscribe`; if the spec changed meanwhile, they are
//!   repaired once it is confirmed and has an ARN;
//! * missing (never subscribed, or unsubscribed by hand) → `Subscribe` (drift repair).
//!
//! Subscriptions on our topic that the spec doesn't have are unsubscribed; a pending one can't
//! be (no ARN) and expires as above, or is unsubscribed once confirmed.

use crate::clients::Clients;
use crate::error::{AwsError, ErrorKind};
use crate::tags::Owner;
use aws_sdk_sns::types::{MessageAttributeValue, Tag};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use ticklake_api::crd::{AlertSubscriptionSpec, Protocol};

/// The endpoint waits for its owner to confirm (email link, HTTPS confirmation, cross-account
/// queue).
pub const STATE_PENDING: &str = "PendingConfirmation";
/// SNS delivers to the endpoint.
pub const STATE_CONFIRMED: &str = "Confirmed";
/// Not an SNS protocol (`webhook`, `slack`, `discord`): no subscription; only ticklake's
/// notifier worker can deliver to it.
pub const STATE_NOT_SUBSCRIBED: &str = "NotSubscribed";

/// SNS's limit on a message, attributes included.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SNS's limit on message attributes per message.
pub const MAX_ATTRIBUTES: usize = 10;

/// How events reach the topic; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Bucket → topic.
    Direct,
    /// Bucket → queue → notifier worker → topic.
    Notifier,
}

/// Direct when every message is an S3 event as it is: one per object, no filter policy, no
/// rate limit, only SNS protocols. Otherwise the notifier.
pub fn route(spec: &AlertSubscriptionSpec) -> Route {
    let direct = spec.digest_interval_seconds == 0
        && normalize_filter_policy(spec.filter_policy.as_deref()).is_none()
        && spec.rate_limit_per_minute.is_none()
        && spec.endpoints.iter().all(|e| sns_protocol(e.protocol).is_some());
    if direct { Route::Direct } else { Route::Notifier }
}

/// The SNS protocol of an endpoint protocol, if SNS has it.
pub fn sns_protocol(p: Protocol) -> Option<&'static str> {
    match p {
        Protocol::Email => Some("email"),
        Protocol::EmailJson => Some("email-json"),
        Protocol::Https => Some("https"),
        Protocol::Sqs => Some("sqs"),
        Protocol::Webhook | Protocol::Slack | Protocol::Discord => None,
    }
}

/// One endpoint of the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointDesired {
    /// As in the spec (`email`, `webhook`, ...).
    pub protocol: String,
    pub address: String,
    /// Whether it gets an SNS subscription (an SNS protocol).
    pub subscribe: bool,
    /// The subscription's attributes (`FilterPolicy`, `FilterPolicyScope`,
    /// `RawMessageDelivery`); empty when not subscribed.
    pub attributes: BTreeMap<String, String>,
}

/// The topic and subscriptions an `AlertSubscription` should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDesired {
    /// `owner.aws_name("", 256)` (at most 256 characters, SNS's limit).
    pub name: String,
    /// Shown as the sender name of emails: `ticklake <ns>/<name>` (at most 100 characters).
    pub display_name: String,
    /// The watched bucket, allowed to publish (direct route).
    pub bucket: String,
    pub tags: BTreeMap<String, String>,
    /// The spec's filter policy as compact JSON; `None` when absent or `{}`. Kept verbatim if
    /// it is not JSON, and [`ensure`] refuses it.
    pub filter_policy: Option<String>,
    /// Every endpoint of the spec, in its order.
    pub endpoints: Vec<EndpointDesired>,
}

/// One endpoint as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointObserved {
    pub protocol: String,
    pub address: String,
    /// [`STATE_PENDING`], [`STATE_CONFIRMED`] or [`STATE_NOT_SUBSCRIBED`].
    pub state: String,
    /// The subscription's ARN once confirmed; `None` while pending or not subscribed.
    pub subscription_arn: Option<String>,
}

/// What exists after [`ensure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicObserved {
    pub arn: String,
    /// One per endpoint of the spec, in its order.
    pub endpoints: Vec<EndpointObserved>,
    /// What [`ensure`] changed, for Events; empty when everything was in place.
    pub changes: Vec<String>,
}

fn normalize_filter_policy(fp: Option<&str>) -> Option<String> {
    let fp = fp?.trim();
    match serde_json::from_str::<Value>(fp) {
        Ok(Value::Object(m)) if m.is_empty() => None,
        Ok(v @ Value::Object(_)) => Some(v.to_string()),
        _ if fp.is_empty() => None,
        _ => Some(fp.to_string()),
    }
}

/// The attributes a subscription of `protocol` gets (see the module docs).
pub fn subscription_attributes(protocol: &str, filter_policy: Option<&str>) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    if let Some(fp) = filter_policy {
        a.insert("FilterPolicy".to_string(), fp.to_string());
        a.insert("FilterPolicyScope".to_string(), "MessageAttributes".to_string());
    }
    match protocol {
        "sqs" => {
            a.insert("RawMessageDelivery".to_string(), "true".to_string());
        }
        "https" | "http" => {
            a.insert("RawMessageDelivery".to_string(), "false".to_string());
        }
        _ => {}
    }
    a
}

/// The topic for `spec`, owned by `owner`, watching `bucket` (the operator resolves a
/// `sinkRef` to its sink's bucket).
pub fn desired(spec: &AlertSubscriptionSpec, owner: &Owner, bucket: &str) -> TopicDesired {
    let filter_policy = normalize_filter_policy(spec.filter_policy.as_deref());
    let mut endpoints: Vec<EndpointDesired> = Vec::new();
    for e in &spec.endpoints {
        let protocol = e.protocol.as_str();
        if endpoints.iter().any(|d| d.protocol == protocol && same_endpoint(protocol, &d.address, &e.address)) {
            continue;
        }
        let sns = sns_protocol(e.protocol);
        endpoints.push(EndpointDesired {
            protocol: protocol.to_string(),
            address: e.address.clone(),
            subscribe: sns.is_some(),
            attributes: sns.map(|p| subscription_attributes(p, filter_policy.as_deref())).unwrap_or_default(),
        });
    }
    let mut display_name = format!("ticklake {}/{}", owner.namespace, owner.name);
    display_name.truncate(100);
    TopicDesired {
        name: owner.aws_name("", 256),
        display_name,
        bucket: bucket.to_string(),
        tags: owner.tags(),
        filter_policy,
        endpoints,
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` → account; empty if malformed.
pub(crate) fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// → partition (`aws`, `aws-cn`, `aws-us-gov`); `aws` if malformed.
pub(crate) fn arn_partition(arn: &str) -> &str {
    arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws")
}

/// The topic's access policy: SNS's default statement (the owner account may manage,
/// subscribe and publish), and `s3.amazonaws.com` may publish from `bucket` of the topic's
/// account — no other bucket, no other account.
pub fn topic_policy(topic_arn: &str, bucket: &str) -> Value {
    let account = arn_account(topic_arn);
    json!({
        "Version": "2012-10-17",
        "Id": "ticklake-topic-policy",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "SNS:GetTopicAttributes",
                    "SNS:SetTopicAttributes",
                    "SNS:AddPermission",
                    "SNS:RemovePermission",
                    "SNS:DeleteTopic",
                    "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic",
                    "SNS:Publish"
                ],
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
            },
            {
                "Sid": "ticklake-s3-publish",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": format!("arn:{}:s3:::{bucket}", arn_partition(topic_arn))},
                    "StringEquals": {"aws:SourceAccount": account}
                }
            }
        ]
    })
}

/// A policy as AWS may give it back: one-element lists as scalars, lists in any order.
fn normalize_policy(v: &Value) -> Value {
    match v {
        Value::Array(a) if a.len() == 1 => normalize_policy(&a[0]),
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normalize_policy).collect();
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize_policy(v))).collect()),
        other => other.clone(),
    }
}

/// Whether the policy text AWS returned means `want`.
pub(crate) fn policy_matches(observed: &str, want: &Value) -> bool {
    serde_json::from_str::<Value>(observed).is_ok_and(|o| normalize_policy(&o) == normalize_policy(want))
}

fn sns_err<E, R>(operation: &'static str, err: aws_sdk_sns::error::SdkError<E, R>) -> AwsError
where
    E: aws_sdk_sns::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let mut e = AwsError::from_sdk("sns", operation, err);
    // SNS's own codes the shared classifier doesn't know: its throttling error is `Throttled`.
    match e.code.as_deref() {
        Some("Throttled" | "KMSThrottling") => e.kind = ErrorKind::Throttled,
        Some("InvalidSecurity" | "KMSAccessDenied") => e.kind = ErrorKind::AccessDenied,
        _ => {}
    }
    e
}

fn same_endpoint(protocol: &str, a: &str, b: &str) -> bool {
    if protocol.starts_with("email") { a.eq_ignore_ascii_case(b) } else { a == b }
}

/// A subscription as `ListSubscriptionsByTopic` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub protocol: String,
    pub endpoint: String,
    /// `None` while pending confirmation (SNS lists `PendingConfirmation` instead of an ARN).
    pub arn: Option<String>,
}

impl Listed {
    /// From the API's fields; `None` for a subscription being deleted (ARN `Deleted`).
    pub fn from_api(protocol: &str, endpoint: &str, arn: &str) -> Option<Listed> {
        let arn = match arn {
            a if a.starts_with("arn:") => Some(a.to_string()),
            "Deleted" => return None,
            _ => None, // "PendingConfirmation", "pending confirmation"
        };
        Some(Listed { protocol: protocol.to_string(), endpoint: endpoint.to_string(), arn })
    }
}

/// What [`ensure`] does about subscriptions, decided from the spec and the listing alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Endpoint `i` is subscribed as this ARN: read its state, repair attributes.
    Check(usize, String),
    /// Endpoint `i` is pending confirmation without an ARN: leave it (see module docs).
    Pending(usize),
    /// Endpoint `i` has no subscription: subscribe.
    Subscribe(usize),
    /// Endpoint `i` is not an SNS protocol.
    NotSubscribed(usize),
    /// A subscription the spec doesn't have: unsubscribe.
    Unsubscribe(Listed),
    /// A subscription the spec doesn't have, pending without an ARN: can't be removed; it
    /// expires after 3 days, or is unsubscribed once confirmed.
    LeavePending(Listed),
}

/// The subscription steps for `endpoints` given what the topic lists.
pub fn plan(endpoints: &[EndpointDesired], listed: &[Listed]) -> Vec<Step> {
    let mut used = vec![false; listed.len()];
    let mut steps = Vec::new();
    for (i, d) in endpoints.iter().enumerate() {
        if !d.subscribe {
            steps.push(Step::NotSubscribed(i));
            continue;
        }
        let matching: Vec<usize> = (0..listed.len())
            .filter(|&j| {
                listed[j].protocol == d.protocol && same_endpoint(&d.protocol, &listed[j].endpoint, &d.address)
            })
            .collect();
        if let Some(&j) = matching.iter().find(|&&j| listed[j].arn.is_some()) {
            used[j] = true;
            steps.push(Step::Check(i, listed[j].arn.clone().unwrap_or_default()));
        } else if let Some(&j) = matching.first() {
            used[j] = true;
            steps.push(Step::Pending(i));
        } else {
            steps.push(Step::Subscribe(i));
        }
    }
    for (j, l) in listed.iter().enumerate() {
        if !used[j] {
            steps.push(if l.arn.is_some() { Step::Unsubscribe(l.clone()) } else { Step::LeavePending(l.clone()) });
        }
    }
    steps
}

fn filter_policy_value(s: Option<&String>) -> Option<Value> {
    let s = s?.trim();
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) if m.is_empty() => None,
        Ok(v) => Some(v),
        Err(_) if s.is_empty() => None,
        Err(_) => Some(Value::String(s.to_string())),
    }
}

/// The attributes to set on a confirmed subscription so it has `want`, in a safe order
/// (`FilterPolicy` before `FilterPolicyScope`: a flat policy is valid in both scopes).
pub fn attribute_updates(want: &BTreeMap<String, String>, observed: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut updates = Vec::new();
    let have_fp = filter_policy_value(observed.get("FilterPolicy"));
    match want.get("FilterPolicy") {
        Some(fp) => {
            if have_fp != filter_policy_value(Some(fp)) {
                updates.push(("FilterPolicy".to_string(), fp.clone()));
            }
            let scope = want.get("FilterPolicyScope").map(String::as_str).unwrap_or("MessageAttributes");
            if observed.get("FilterPolicyScope").map(String::as_str).unwrap_or("MessageAttributes") != scope {
                updates.push(("FilterPolicyScope".to_string(), scope.to_string()));
            }
        }
        None if have_fp.is_some() => updates.push(("FilterPolicy".to_string(), "{}".to_string())),
        None => {}
    }
    if let Some(raw) = want.get("RawMessageDelivery") {
        let have = observed.get("RawMessageDelivery").map(|s| s.to_ascii_lowercase()).unwrap_or("false".into());
        if have != *raw {
            updates.push(("RawMessageDelivery".to_string(), raw.clone()));
        }
    }
    updates
}

/// The topic's ARN, found by name.
async fn find_topic(c: &Clients, name: &str) -> Result<Option<String>, AwsError> {
    let mut token: Option<String> = None;
    loop {
        let out = c.sns.list_topics().set_next_token(token).send().await.map_err(|e| sns_err("ListTopics", e))?;
        if let Some(arn) =
            out.topics().iter().filter_map(|t| t.topic_arn()).find(|a| a.rsplit(':').next() == Some(name))
        {
            return Ok(Some(arn.to_string()));
        }
        token = out.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

async fn topic_owned(c: &Clients, arn: &str, owner: &Owner) -> Result<bool, AwsError> {
    let out =
        c.sns.list_tags_for_resource().resource_arn(arn).send().await.map_err(|e| sns_err("ListTagsForResource", e))?;
    let tags: HashMap<String, String> =
        out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    Ok(owner.owns(&tags))
}

async fn list_subscriptions(c: &Clients, topic_arn: &str) -> Result<Vec<Listed>, AwsError> {
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sns_err("ListSubscriptionsByTopic", e))?;
        listed.extend(out.subscriptions().iter().filter_map(|s| {
            Listed::from_api(s.protocol().unwrap_or_default(), s.endpoint().unwrap_or_default(), s.subscription_arn()?)
        }));
        token = out.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(listed);
        }
    }
}

/// The subscription's attributes; `None` if it is gone.
async fn subscription_attributes_of(c: &Clients, arn: &str) -> Result<Option<HashMap<String, String>>, AwsError> {
    match c.sns.get_subscription_attributes().subscription_arn(arn).send().await {
        Ok(out) => Ok(Some(out.attributes().cloned().unwrap_or_default())),
        Err(e) => {
            let e = sns_err("GetSubscriptionAttributes", e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

fn is_pending(attrs: &HashMap<String, String>) -> bool {
    attrs.get("PendingConfirmation").is_some_and(|p| p.eq_ignore_ascii_case("true"))
}

/// Subscribes endpoint `d`; returns its state and ARN (the ARN only once confirmed).
async fn subscribe(c: &Clients, topic_arn: &str, d: &EndpointDesired) -> Result<(String, Option<String>), AwsError> {
    let out = c
        .sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol(&d.protocol)
        .endpoint(&d.address)
        .set_attributes(Some(d.attributes.clone().into_iter().collect()))
        .return_subscription_arn(true)
        .send()
        .await
        .map_err(|e| sns_err("Subscribe", e))?;
    let Some(arn) = out.subscription_arn().filter(|a| a.starts_with("arn:")) else {
        return Ok((STATE_PENDING.to_string(), None));
    };
    // A new email/https subscription waits for confirmation; Subscribe of an endpoint that is
    // already confirmed returns the existing one.
    match subscription_attributes_of(c, arn).await? {
        Some(a) if !is_pending(&a) => Ok((STATE_CONFIRMED.to_string(), Some(arn.to_string()))),
        _ => Ok((STATE_PENDING.to_string(), None)),
    }
}

fn invalid(operation: &'static str, message: String) -> AwsError {
    AwsError::new(ErrorKind::Invalid, "sns", operation, message)
}

/// Creates or repairs the topic (tags, policy, display name) and its subscriptions (see the
/// module docs). A topic with our name but without our tags: [`ErrorKind::NotOwned`], nothing
/// touched. A `filterPolicy` that is not a JSON object: [`ErrorKind::Invalid`], before any call.
pub async fn ensure(c: &Clients, d: &TopicDesired, owner: &Owner) -> Result<TopicObserved, AwsError> {
    if let Some(fp) = &d.filter_policy
        && !matches!(serde_json::from_str::<Value>(fp), Ok(Value::Object(_)))
    {
        return Err(invalid("Subscribe", format!("filterPolicy is not a JSON object: {fp}")));
    }
    let mut changes = Vec::new();
    let (arn, created) = match find_topic(c, &d.name).await? {
        Some(arn) => {
            if !topic_owned(c, &arn, owner).await? {
                return Err(AwsError::new(
                    ErrorKind::NotOwned,
                    "sns",
                    "ListTagsForResource",
                    format!("SNS topic {arn} exists but is not tagged as belonging to {}; left alone", owner.id()),
                ));
            }
            (arn, false)
        }
        None => {
            let tags = d
                .tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AwsError::new(ErrorKind::Other, "sns", "CreateTopic", e.to_string()))?;
            let out = c
                .sns
                .create_topic()
                .name(&d.name)
                .attributes("DisplayName", &d.display_name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| sns_err("CreateTopic", e))?;
            let arn = out
                .topic_arn()
                .ok_or_else(|| AwsError::new(ErrorKind::Other, "sns", "CreateTopic", "no TopicArn in the answer"))?;
            changes.push(format!("created SNS topic {arn}"));
            (arn.to_string(), true)
        }
    };

    let attrs = c
        .sns
        .get_topic_attributes()
        .topic_arn(&arn)
        .send()
        .await
        .map_err(|e| sns_err("GetTopicAttributes", e))?
        .attributes()
        .cloned()
        .unwrap_or_default();
    let policy = topic_policy(&arn, &d.bucket);
    if !attrs.get("Policy").is_some_and(|p| policy_matches(p, &policy)) {
        c.sns
            .set_topic_attributes()
            .topic_arn(&arn)
            .attribute_name("Policy")
            .attribute_value(policy.to_string())
            .send()
            .await
            .map_err(|e| sns_err("SetTopicAttributes", e))?;
        if !created {
            changes.push(format!("set the access policy of SNS topic {arn}"));
        }
    }
    if attrs.get("DisplayName").map(String::as_str).unwrap_or_default() != d.display_name {
        c.sns
            .set_topic_attributes()
            .topic_arn(&arn)
            .attribute_name("DisplayName")
            .attribute_value(&d.display_name)
            .send()
            .await
            .map_err(|e| sns_err("SetTopicAttributes", e))?;
        if !created {
            changes.push(format!("set the display name of SNS topic {arn}"));
        }
    }

    let listed = list_subscriptions(c, &arn).await?;
    let mut endpoints: Vec<Option<EndpointObserved>> = vec![None; d.endpoints.len()];
    let observed = |i: usize, state: &str, arn: Option<String>| EndpointObserved {
        protocol: d.endpoints[i].protocol.clone(),
        address: d.endpoints[i].address.clone(),
        state: state.to_string(),
        subscription_arn: arn,
    };
    for step in plan(&d.endpoints, &listed) {
        match step {
            Step::NotSubscribed(i) => endpoints[i] = Some(observed(i, STATE_NOT_SUBSCRIBED, None)),
            Step::Pending(i) => endpoints[i] = Some(observed(i, STATE_PENDING, None)),
            Step::Check(i, sub_arn) => {
                let e = &d.endpoints[i];
                let Some(a) = subscription_attributes_of(c, &sub_arn).await? else {
                    // Gone between listing and reading: subscribe again.
                    let (state, sub) = subscribe(c, &arn, e).await?;
                    changes.push(format!("subscribed {} endpoint {}", e.protocol, e.address));
                    endpoints[i] = Some(observed(i, &state, sub));
                    continue;
                };
                if is_pending(&a) {
                    endpoints[i] = Some(observed(i, STATE_PENDING, None));
                    continue;
                }
                let updates = attribute_updates(&e.attributes, &a);
                for (name, value) in &updates {
                    c.sns
                        .set_subscription_attributes()
                        .subscription_arn(&sub_arn)
                        .attribute_name(name)
                        .attribute_value(value)
                        .send()
                        .await
                        .map_err(|e| sns_err("SetSubscriptionAttributes", e))?;
                }
                if !updates.is_empty() {
                    let names: Vec<&str> = updates.iter().map(|(n, _)| n.as_str()).collect();
                    changes.push(format!(
                        "set {} of the {} subscription of {}",
                        names.join(", "),
                        e.protocol,
                        e.address
                    ));
                }
                endpoints[i] = Some(observed(i, STATE_CONFIRMED, Some(sub_arn)));
            }
            Step::Subscribe(i) => {
                let e = &d.endpoints[i];
                let (state, sub) = subscribe(c, &arn, e).await?;
                let pending = if state == STATE_PENDING { " (pending confirmation)" } else { "" };
                changes.push(format!("subscribed {} endpoint {}{pending}", e.protocol, e.address));
                endpoints[i] = Some(observed(i, &state, sub));
            }
            Step::Unsubscribe(l) => {
                let sub_arn = l.arn.clone().unwrap_or_default();
                match c.sns.unsubscribe().subscription_arn(&sub_arn).send().await {
                    Ok(_) => changes.push(format!("unsubscribed {} endpoint {}", l.protocol, l.endpoint)),
                    Err(e) => {
                        let e = sns_err("Unsubscribe", e);
                        if !e.is_not_found() {
                            return Err(e);
                        }
                    }
                }
            }
            Step::LeavePending(l) => {
                tracing::info!(topic = %arn, protocol = %l.protocol, endpoint = %l.endpoint,
                    "endpoint no longer in the spec is pending confirmation: SNS gives no ARN to unsubscribe it; \
                     it expires unconfirmed, or is unsubscribed once confirmed");
            }
        }
    }
    let endpoints = endpoints.into_iter().map(|e| e.expect("plan covers every endpoint")).collect();
    Ok(TopicObserved { arn, endpoints, changes })
}

/// Deletes the owner's topic (found by name) if it is tagged ours; its subscriptions go with
/// it. A same-named topic without our tags is left alone (logged): nothing to report.
/// The bucket an owner's topic lets publish (from its policy): what an AlertSubscription
/// watched, still known when the S3Sink it named is gone — so its cleanup finds the bucket rule.
pub async fn watched_bucket(c: &Clients, owner: &Owner) -> Result<Option<String>, AwsError> {
    let Some(arn) = find_topic(c, &owner.aws_name("", 256)).await? else { return Ok(None) };
    let out = match c.sns.get_topic_attributes().topic_arn(&arn).send().await {
        Ok(out) => out,
        Err(e) => {
            let e = sns_err("GetTopicAttributes", e);
            return if e.is_not_found() { Ok(None) } else { Err(e) };
        }
    };
    let policy = out.attributes().and_then(|a| a.get("Policy")).cloned().unwrap_or_default();
    Ok(bucket_in_policy(&policy))
}

/// The bucket of the first `arn:<partition>:s3:::<bucket>` source in a topic policy.
pub fn bucket_in_policy(policy: &str) -> Option<String> {
    let at = policy.find(":s3:::")?;
    let rest = &policy[at + ":s3:::".len()..];
    let bucket: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect();
    (!bucket.is_empty()).then_some(bucket)
}

pub async fn delete(c: &Clients, owner: &Owner) -> Result<Vec<String>, AwsError> {
    let name = owner.aws_name("", 256);
    let Some(arn) = find_topic(c, &name).await? else { return Ok(Vec::new()) };
    if !topic_owned(c, &arn, owner).await? {
        tracing::warn!(topic = %arn, owner = %owner.id(), "SNS topic not tagged as ours: not deleted");
        return Ok(Vec::new());
    }
    match c.sns.delete_topic().topic_arn(&arn).send().await {
        Ok(_) => Ok(vec![format!("deleted SNS topic {arn} and its subscriptions")]),
        Err(e) => {
            let e = sns_err("DeleteTopic", e);
            if e.is_not_found() { Ok(Vec::new()) } else { Err(e) }
        }
    }
}

/// An SNS subject from any text: printable ASCII only (other characters become `?`, line
/// breaks and control characters spaces), trimmed, shorter than 100 characters (cut with
/// `...`). `None` when nothing is left (SNS then uses its default subject).
pub fn subject_line(subject: &str) -> Option<String> {
    let ascii: String = subject
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        })
        .collect();
    let s = ascii.trim();
    if s.is_empty() {
        return None;
    }
    if s.len() < 100 {
        return Some(s.to_string());
    }
    Some(format!("{}...", s[..96].trim_end()))
}

/// The SNS data type of a message attribute ([`publish_typed`]). Filter policies compare by
/// type: `numeric` conditions and numeric values (`"rows": [{"numeric": [">", 0]}]`,
/// `"partition": [3]`) match `Number` attributes only; string conditions match `String` ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeType {
    String,
    /// A decimal number, e.g. `1200` or `-0.5`.
    Number,
}

impl AttributeType {
    /// The `DataType` SNS takes: `String` or `Number`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "String",
            AttributeType::Number => "Number",
        }
    }
}

/// A message attribute with its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub data_type: AttributeType,
    pub value: String,
}

impl Attribute {
    pub fn string(value: impl Into<String>) -> Attribute {
        Attribute { data_type: AttributeType::String, value: value.into() }
    }
    pub fn number(value: impl std::fmt::Display) -> Attribute {
        Attribute { data_type: AttributeType::Number, value: value.to_string() }
    }
}

/// Checks a message for [`publish`]: not empty; at most [`MAX_MESSAGE_BYTES`] with its
/// attributes (names, the type `String`, values); at most [`MAX_ATTRIBUTES`] attributes, with
/// names SNS accepts. Attributes with empty values are dropped (SNS refuses them); the rest
/// are returned.
pub fn check_message<'a>(
    message: &str,
    attributes: &'a BTreeMap<String, String>,
) -> Result<Vec<(&'a str, &'a str)>, AwsError> {
    let attrs: Vec<(&str, &str)> =
        attributes.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
    check(message, attrs.iter().map(|(k, v)| (*k, AttributeType::String, *v)))?;
    Ok(attrs)
}

/// [`check_message`] for typed attributes; a `Number` must also be a finite decimal number.
pub fn check_typed_message<'a>(
    message: &str,
    attributes: &'a BTreeMap<String, Attribute>,
) -> Result<Vec<(&'a str, &'a Attribute)>, AwsError> {
    let attrs: Vec<(&str, &Attribute)> =
        attributes.iter().filter(|(_, a)| !a.value.is_empty()).map(|(k, a)| (k.as_str(), a)).collect();
    for (k, a) in &attrs {
        let number = a.value.parse::<f64>().is_ok_and(f64::is_finite)
            && a.value.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
        if a.data_type == AttributeType::Number && !number {
            return Err(invalid(
                "Publish",
                format!("message attribute {k:?} is a Number but {:?} is not one", a.value),
            ));
        }
    }
    check(message, attrs.iter().map(|(k, a)| (*k, a.data_type, a.value.as_str())))?;
    Ok(attrs)
}

fn check<'a>(
    message: &str,
    attrs: impl Iterator<Item = (&'a str, AttributeType, &'a str)> + Clone,
) -> Result<(), AwsError> {
    if message.is_empty() {
        return Err(invalid("Publish", "the message is empty".to_string()));
    }
    let count = attrs.clone().count();
    if count > MAX_ATTRIBUTES {
        return Err(invalid("Publish", format!("{count} message attributes; SNS takes at most {MAX_ATTRIBUTES}")));
    }
    for (k, _, _) in attrs.clone() {
        let lower = k.to_ascii_lowercase();
        let ok = !k.is_empty()
            && k.len() <= 256
            && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !k.starts_with('.')
            && !k.ends_with('.')
            && !k.contains("..")
            && !lower.starts_with("aws.")
            && !lower.starts_with("amazon.");
        if !ok {
            return Err(invalid(
                "Publish",
                format!(
                    "message attribute name {k:?}: SNS takes 1 to 256 of A-Z a-z 0-9 _ - . (no leading, trailing or \
                     double dot, not starting with AWS. or Amazon.)"
                ),
            ));
        }
    }
    let size = message.len() + attrs.map(|(k, t, v)| k.len() + t.as_str().len() + v.len()).sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(invalid(
            "Publish",
            format!(
                "the message is {size} bytes with its attributes; SNS takes at most {MAX_MESSAGE_BYTES} (256 KiB): \
                 shorten it (a digest could list fewer objects and link the rest)"
            ),
        ));
    }
    Ok(())
}

/// Publishes a message to the topic (the notifier worker's way in), with string message
/// attributes for the subscriptions' filter policies. The subject (email only) is made
/// acceptable with [`subject_line`]; the message is checked with [`check_message`]. Returns
/// SNS's message id.
pub async fn publish(
    c: &Clients,
    topic_arn: &str,
    subject: &str,
    message: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let typed = attributes.iter().map(|(k, v)| (k.clone(), Attribute::string(v.clone()))).collect();
    publish_typed(c, topic_arn, subject, message, &typed).await
}

/// [`publish`] with typed attributes ([`check_typed_message`]): `Number` ones are what
/// `numeric` filter policy conditions match.
pub async fn publish_typed(
    c: &Clients,
    topic_arn: &str,
    subject: &str,
    message: &str,
    attributes: &BTreeMap<String, Attribute>,
) -> Result<String, AwsError> {
    let attrs = check_typed_message(message, attributes)?;
    let mut req = c.sns.publish().topic_arn(topic_arn).message(message).set_subject(subject_line(subject));
    for (k, a) in attrs {
        let value = MessageAttributeValue::builder()
            .data_type(a.data_type.as_str())
            .string_value(&a.value)
            .build()
            .map_err(|e| AwsError::new(ErrorKind::Other, "sns", "Publish", e.to_string()))?;
        req = req.message_attributes(k, value);
    }
    let out = req.send().await.map_err(|e| sns_err("Publish", e))?;
    Ok(out.message_id().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> AlertSubscriptionSpec {
        serde_json::from_value(v).unwrap()
    }

    fn base(digest: u32, filter: Option<&str>, protocols: &[(&str, &str)]) -> AlertSubscriptionSpec {
        let endpoints: Vec<Value> = protocols.iter().map(|(p, a)| json!({"protocol": p, "address": a})).collect();
        let mut v = json!({"watch": {"sinkRef": "ticks-lake", "suffix": ".parquet"}, "endpoints": endpoints,
                           "digestIntervalSeconds": digest});
        if let Some(f) = filter {
            v["filterPolicy"] = json!(f);
        }
        spec(v)
    }

    #[test]
    fn the_watched_bucket_is_read_back_from_the_topic_policy() {
        let policy = topic_policy("arn:aws:sns:us-east-1:123456789012:ticklake-alert-ns-x", "my.bucket-1").to_string();
        assert_eq!(bucket_in_policy(&policy).as_deref(), Some("my.bucket-1"));
        assert_eq!(bucket_in_policy("{}"), None);
    }

    #[test]
    fn route_is_direct_only_for_plain_per_object_sns_delivery() {
        let email = [("email", "ops@example.com")];
        assert_eq!(route(&base(0, None, &email)), Route::Direct);
        assert_eq!(route(&base(0, Some("{}"), &email)), Route::Direct, "an empty filter policy filters nothing");
        assert_eq!(route(&base(300, None, &email)), Route::Notifier, "digests need the notifier");
        assert_eq!(route(&base(0, Some(r#"{"symbol":["AAPL"]}"#), &email)), Route::Notifier);
        assert_eq!(
            route(&base(0, None, &[("email", "a@b.c"), ("slack", "https://hooks.slack.com/x")])),
            Route::Notifier
        );
        let mut limited = base(0, None, &email);
        limited.rate_limit_per_minute = Some(10);
        assert_eq!(route(&limited), Route::Notifier);
        // The default digest interval is 300 s: an absent field means the notifier.
        let default = spec(json!({"watch": {"bucket": "lake"}, "endpoints": [{"protocol": "sqs",
            "address": "arn:aws:sqs:us-east-1:123456789012:q"}]}));
        assert_eq!(route(&default), Route::Notifier);
    }

    #[test]
    fn desired_topic_and_endpoints() {
        let s = base(
            300,
            Some(r#" { "symbol" : ["AAPL", "MSFT"] } "#),
            &[
                ("email", "ops@example.com"),
                ("email-json", "robot@example.com"),
                ("https", "https://hooks.example.com/sns"),
                ("sqs", "arn:aws:sqs:eu-west-1:123456789012:alerts"),
                ("webhook", "http://notify.local/hook"),
                ("email", "OPS@example.com"),
            ],
        );
        let owner = Owner::new("AlertSubscription", "data", "new-ticks");
        let d = desired(&s, &owner, "lake");
        assert_eq!(d.name, owner.aws_name("", 256));
        assert!(d.name.ends_with("-data-new-ticks"), "{}", d.name);
        assert_eq!(d.display_name, "ticklake data/new-ticks");
        assert_eq!(d.bucket, "lake");
        assert_eq!(d.filter_policy.as_deref(), Some(r#"{"symbol":["AAPL","MSFT"]}"#));
        assert_eq!(d.tags, owner.tags());
        assert_eq!(d.endpoints.len(), 5, "the same email in another case is one endpoint");
        let by = |p: &str| d.endpoints.iter().find(|e| e.protocol == p).unwrap();
        assert_eq!(by("email").attributes["FilterPolicy"], r#"{"symbol":["AAPL","MSFT"]}"#);
        assert_eq!(by("email").attributes["FilterPolicyScope"], "MessageAttributes");
        assert!(!by("email").attributes.contains_key("RawMessageDelivery"));
        assert_eq!(by("sqs").attributes["RawMessageDelivery"], "true");
        assert_eq!(by("https").attributes["RawMessageDelivery"], "false");
        assert!(!by("webhook").subscribe && by("webhook").attributes.is_empty());

        let plain = desired(&base(0, None, &[("sqs", "arn:aws:sqs:eu-west-1:123456789012:alerts")]), &owner, "lake");
        assert_eq!(plain.filter_policy, None);
        assert_eq!(plain.endpoints[0].attributes, BTreeMap::from([("RawMessageDelivery".into(), "true".into())]));
        let broken = desired(&base(0, Some("{not json}"), &[("email", "a@b.c")]), &owner, "lake");
        assert_eq!(broken.filter_policy.as_deref(), Some("{not json}"), "kept for ensure to refuse");
    }

    #[test]
    fn topic_policy_allows_the_bucket_and_the_owner_account_only() {
        let arn = "arn:aws:sns:eu-west-1:111122223333:ticklake-data-new-ticks";
        let p = topic_policy(arn, "lake");
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        let default = &statements[0];
        assert_eq!(default["Condition"]["StringEquals"]["AWS:SourceOwner"], "111122223333");
        assert_eq!(default["Resource"], arn);
        let s3 = &statements[1];
        assert_eq!(s3["Principal"], json!({"Service": "s3.amazonaws.com"}));
        assert_eq!(s3["Action"], "SNS:Publish");
        assert_eq!(s3["Resource"], arn);
        assert_eq!(s3["Condition"]["ArnLike"]["aws:SourceArn"], "arn:aws:s3:::lake");
        assert_eq!(s3["Condition"]["StringEquals"]["aws:SourceAccount"], "111122223333");
        let gov = topic_policy("arn:aws-us-gov:sns:us-gov-west-1:111122223333:t", "lake");
        assert_eq!(gov["Statement"][1]["Condition"]["ArnLike"]["aws:SourceArn"], "arn:aws-us-gov:s3:::lake");

        // AWS may return it reformatted: one-element lists as scalars and back, other order.
        let mut reformatted = p.clone();
        reformatted["Statement"][1]["Action"] = json!(["SNS:Publish"]);
        reformatted["Statement"][0]["Action"].as_array_mut().unwrap().reverse();
        assert!(policy_matches(&serde_json::to_string_pretty(&reformatted).unwrap(), &p));
        assert!(!policy_matches(&topic_policy(arn, "other-bucket").to_string(), &p));
        assert!(!policy_matches("not json", &p));
    }

    fn ep(protocol: &str, address: &str, subscribe: bool) -> EndpointDesired {
        EndpointDesired { protocol: protocol.into(), address: address.into(), subscribe, attributes: BTreeMap::new() }
    }

    fn listed(protocol: &str, endpoint: &str, arn: &str) -> Listed {
        Listed::from_api(protocol, endpoint, arn).unwrap()
    }

    #[test]
    fn listed_arns() {
        assert_eq!(listed("email", "a@b.c", "PendingConfirmation").arn, None);
        assert_eq!(listed("email", "a@b.c", "pending confirmation").arn, None);
        assert_eq!(listed("sqs", "q", "arn:aws:sns:r:1:t:uuid").arn.as_deref(), Some("arn:aws:sns:r:1:t:uuid"));
        assert_eq!(Listed::from_api("sqs", "q", "Deleted"), None);
    }

    #[test]
    fn plan_subscribes_missing_keeps_pending_and_removes_extra() {
        let endpoints = [
            ep("email", "ops@example.com", true),
            ep("email", "new@example.com", true),
            ep("sqs", "arn:aws:sqs:us-east-1:1:q", true),
            ep("slack", "https://hooks.slack.com/x", false),
        ];
        let l = [
            listed("email", "Ops@Example.com", "PendingConfirmation"),
            listed("sqs", "arn:aws:sqs:us-east-1:1:q", "arn:aws:sns:us-east-1:1:t:s1"),
            listed("https", "https://old.example.com/", "arn:aws:sns:us-east-1:1:t:s2"),
            listed("email", "gone@example.com", "PendingConfirmation"),
        ];
        assert_eq!(
            plan(&endpoints, &l),
            vec![
                Step::Pending(0),
                Step::Subscribe(1),
                Step::Check(2, "arn:aws:sns:us-east-1:1:t:s1".into()),
                Step::NotSubscribed(3),
                Step::Unsubscribe(l[2].clone()),
                Step::LeavePending(l[3].clone()),
            ]
        );
        // A pending endpoint is never subscribed again while SNS lists it (no confirmation
        // mail per reconcile); once SNS drops it, it is.
        assert_eq!(plan(&endpoints[..1], &l[..1]), vec![Step::Pending(0)]);
        assert_eq!(plan(&endpoints[..1], &[]), vec![Step::Subscribe(0)]);
        // Protocols are not mixed up: an email-json subscription isn't the email one.
        assert_eq!(
            plan(&endpoints[..1], &[listed("email-json", "ops@example.com", "arn:aws:sns:r:1:t:s")]),
            vec![Step::Subscribe(0), Step::Unsubscribe(listed("email-json", "ops@example.com", "arn:aws:sns:r:1:t:s"))]
        );
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn attribute_updates_repair_drift_only() {
        let want = subscription_attributes("sqs", Some(r#"{"symbol":["AAPL"]}"#));
        let good = map(&[
            ("FilterPolicy", "{\n  \"symbol\": [\"AAPL\"]\n}"),
            ("FilterPolicyScope", "MessageAttributes"),
            ("RawMessageDelivery", "true"),
            ("PendingConfirmation", "false"),
        ]);
        assert_eq!(attribute_updates(&want, &good), vec![]);
        let drifted = map(&[("FilterPolicy", r#"{"symbol":["MSFT"]}"#), ("FilterPolicyScope", "MessageBody")]);
        assert_eq!(
            attribute_updates(&want, &drifted),
            vec![
                ("FilterPolicy".into(), r#"{"symbol":["AAPL"]}"#.into()),
                ("FilterPolicyScope".into(), "MessageAttributes".into()),
                ("RawMessageDelivery".into(), "true".into()),
            ]
        );
        // The scope defaults to MessageAttributes when absent.
        let no_scope = map(&[("FilterPolicy", r#"{"symbol":["AAPL"]}"#), ("RawMessageDelivery", "true")]);
        assert_eq!(attribute_updates(&want, &no_scope), vec![]);
        // A filter policy removed from the spec is cleared with {}, once.
        let email = subscription_attributes("email", None);
        assert_eq!(
            attribute_updates(&email, &map(&[("FilterPolicy", r#"{"symbol":["AAPL"]}"#)])),
            vec![("FilterPolicy".into(), "{}".into())]
        );
        assert_eq!(attribute_updates(&email, &map(&[("FilterPolicy", "{}")])), vec![]);
        assert_eq!(attribute_updates(&email, &map(&[("FilterPolicy", "")])), vec![]);
        assert_eq!(attribute_updates(&email, &map(&[])), vec![]);
        let https = subscription_attributes("https", None);
        assert_eq!(attribute_updates(&https, &map(&[])), vec![]);
        assert_eq!(
            attribute_updates(&https, &map(&[("RawMessageDelivery", "true")])),
            vec![("RawMessageDelivery".into(), "false".into())]
        );
    }

    #[test]
    fn subjects_are_made_acceptable() {
        assert_eq!(subject_line("  New data: AAPL  "), Some("New data: AAPL".into()));
        assert_eq!(subject_line("Neue Daten – AAPL\nzwei"), Some("Neue Daten ? AAPL zwei".into()));
        assert_eq!(subject_line(" \n\t "), None);
        let long = subject_line(&"x".repeat(300)).unwrap();
        assert!(long.len() < 100 && long.ends_with("..."), "{long}");
        assert_eq!(subject_line(&"y".repeat(99)).unwrap().len(), 99);
    }

    #[test]
    fn messages_are_checked() {
        let attrs = BTreeMap::from([("symbol".to_string(), "AAPL".to_string()), ("empty".to_string(), String::new())]);
        assert_eq!(check_message("hello", &attrs).unwrap(), vec![("symbol", "AAPL")]);
        let e = check_message("", &attrs).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = check_message(&"x".repeat(MAX_MESSAGE_BYTES), &attrs).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("262160 bytes") && e.message.contains("256 KiB"), "{}", e.message);
        assert!(check_message(&"x".repeat(MAX_MESSAGE_BYTES - 16), &attrs).is_ok());
        for bad in ["AWS.thing", "amazon.x", ".a", "a.", "a..b", "sp ace", ""] {
            let a = BTreeMap::from([(bad.to_string(), "v".to_string())]);
            assert_eq!(check_message("m", &a).unwrap_err().kind, ErrorKind::Invalid, "{bad:?}");
        }
        let many: BTreeMap<String, String> = (0..11).map(|i| (format!("a{i}"), "v".to_string())).collect();
        assert!(check_message("m", &many).unwrap_err().message.contains("at most 10"));
    }

    #[test]
    fn typed_messages_are_checked() {
        let attrs = BTreeMap::from([
            ("rows".to_string(), Attribute::number(1200)),
            ("ratio".to_string(), Attribute::number(-0.5)),
            ("symbol".to_string(), Attribute::string("AAPL")),
            ("empty".to_string(), Attribute::string("")),
        ]);
        let checked = check_typed_message("hello", &attrs).unwrap();
        let names: Vec<(&str, &str, &str)> =
            checked.iter().map(|(k, a)| (*k, a.data_type.as_str(), a.value.as_str())).collect();
        assert_eq!(names, vec![("ratio", "Number", "-0.5"), ("rows", "Number", "1200"), ("symbol", "String", "AAPL")]);
        for bad in ["x", "1,200", "NaN", "inf", " 1"] {
            let a =
                BTreeMap::from([("n".to_string(), Attribute { data_type: AttributeType::Number, value: bad.into() })]);
            let e = check_typed_message("m", &a).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{bad:?}");
            assert!(e.message.contains("not one"), "{}", e.message);
        }
        // The size counts the type's name too.
        let n = BTreeMap::from([("n".to_string(), Attribute::number(1))]);
        assert!(check_typed_message(&"x".repeat(MAX_MESSAGE_BYTES - 8), &n).is_ok());
        assert!(check_typed_message(&"x".repeat(MAX_MESSAGE_BYTES - 7), &n).is_err());
        let many: BTreeMap<String, Attribute> = (0..11).map(|i| (format!("a{i}"), Attribute::number(i))).collect();
        assert!(check_typed_message("m", &many).unwrap_err().message.contains("at most 10"));
    }
}
