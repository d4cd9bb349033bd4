//! `AlertSubscription`: who is told when data lands, and how.

use super::common::DNS_SUBDOMAIN_PATTERN;
use super::s3sink::BUCKET_PATTERN;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Subscribers told (through Amazon SNS, or ticklake's own notifier) when new data lands.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "ticklake.dev",
    version = "v1alpha1",
    kind = "AlertSubscription",
    namespaced,
    status = "AlertSubscriptionStatus",
    shortname = "tlalert",
    category = "ticklake",
    derive = "PartialEq",
    doc = "Subscribers told (through Amazon SNS, or ticklake's own notifier) when new data lands in S3: by email, HTTPS, SQS, webhook, Slack or Discord, one message per object or a digest.",
    validation = Rule::new("self.metadata.name.size() <= 63")
        .message("the name must be at most 63 characters: it becomes a label value")
        .reason(Reason::FieldValueInvalid),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".spec.watch.sinkRef"}"#,
    printcolumn = r#"{"name":"Bucket","type":"string","priority":1,"jsonPath":".spec.watch.bucket"}"#,
    printcolumn = r#"{"name":"Endpoints","type":"integer","jsonPath":".status.confirmedEndpoints"}"#,
    printcolumn = r#"{"name":"Route","type":"string","priority":1,"jsonPath":".status.route"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = crate::crd::common::unwrap_descriptions)]
pub struct AlertSubscriptionSpec {
    /// What to watch: an `S3Sink` by name, or a bucket with a prefix and suffix.
    pub watch: WatchSpec,
    /// Who is told: 1 to 100 endpoints, each (protocol, address) once.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["protocol".into(), "address".into()]))]
    pub endpoints: Vec<EndpointSpec>,
    /// An SNS filter policy (a JSON object, as a string) applied to the event's attributes,
    /// e.g. `{"symbol": ["AAPL", "MSFT"]}`; absent means every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 16384))]
    #[x_kube(validation = Rule::new("self.trim().startsWith('{') && self.trim().endsWith('}')")
        .message("filterPolicy must be a JSON object, e.g. {\"symbol\": [\"AAPL\"]}"))]
    pub filter_policy: Option<String>,
    /// Seconds between digests (default 300). 0: one message per new object; otherwise one
    /// digest message per interval listing what landed (at most 86400, a day).
    #[serde(default = "default_digest")]
    #[schemars(range(min = 0, max = 86400))]
    pub digest_interval_seconds: u32,
    /// Messages per minute at most, per endpoint (ticklake's own notifier; SNS has its own
    /// limits). Messages over the limit wait; none is dropped. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 6000))]
    pub rate_limit_per_minute: Option<u32>,
    /// ServiceAccount of the notifier worker's pod (in a cluster, on the `Notifier` route), e.g.
    /// one with an IRSA role allowed `sqs:ReceiveMessage`, `sqs:DeleteMessage`, `sns:Publish`
    /// and `s3:GetObject` on the watched prefix (deploy/aws/notifier-iam-policy.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub service_account_name: Option<String>,
}

fn default_digest() -> u32 {
    300
}

/// Exactly one of `sinkRef` or `bucket`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.sinkRef) != has(self.bucket)")
    .message("exactly one of watch.sinkRef or watch.bucket must be set"))]
pub struct WatchSpec {
    /// Name of an `S3Sink` in the same namespace (exclusive with `bucket`): its bucket and
    /// prefix are watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub sink_ref: Option<String>,
    /// A bucket, for objects not written by an `S3Sink` (exclusive with `sinkRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 63), regex(pattern = BUCKET_PATTERN))]
    pub bucket: Option<String>,
    /// Only keys starting with this (no leading `/`); with `sinkRef`, below the sink's own
    /// prefix. Default empty: every key.
    #[serde(default)]
    #[schemars(length(max = 1024), regex(pattern = r"^([^/].*)?$"))]
    pub prefix: String,
    /// Only keys ending with this, e.g. `.parquet`. Default empty: every key.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub suffix: String,
}

/// One subscriber.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!(self.protocol in ['email', 'email-json']) || self.address.matches('^[^@ ]+@[^@ ]+$')")
        .message("an email endpoint's address must be an email address, e.g. alerts@example.com")
        .field_path(".address"),
    validation = Rule::new("self.protocol != 'https' || (self.address.startsWith('https://') && self.address.size() > 8)")
        .message("an https endpoint's address must be an https:// URL")
        .field_path(".address"),
    validation = Rule::new("self.protocol != 'sqs' || self.address.matches('^arn:aws(-[a-z]+)*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+([.]fifo)?$')")
        .message("an sqs endpoint's address must be an SQS queue ARN, e.g. arn:aws:sqs:eu-west-1:123456789012:ticklake-alerts")
        .field_path(".address"),
    validation = Rule::new("!(self.protocol in ['webhook', 'slack', 'discord']) || self.address.matches('^https?://[^/ ]+(/[^ ]*)?$')")
        .message("a webhook, slack or discord endpoint's address must be an http:// or https:// URL")
        .field_path(".address"),
    validation = Rule::new("!has(self.signingSecretRef) || self.protocol in ['webhook', 'https']")
        .message("signingSecretRef is for webhook and https endpoints only")
        .field_path(".signingSecretRef")
)]
pub struct EndpointSpec {
    /// How the subscriber is told: `email`, `email-json`, `https` or `sqs` (SNS and
    /// ticklake's notifier; `sqs` only through SNS), or `webhook`, `slack`, `discord`
    /// (ticklake's notifier only).
    pub protocol: Protocol,
    /// By protocol: an email address (`email`, `email-json`), an `https://` URL (`https`), an
    /// SQS queue ARN such as `arn:aws:sqs:eu-west-1:123456789012:alerts` (`sqs`), an `http://`
    /// or `https://` URL (`webhook`), or an incoming-webhook URL (`slack`, `discord`).
    #[schemars(length(min = 3, max = 2048))]
    pub address: String,
    /// `webhook` and `https` only: a key of a Secret holding the HMAC-SHA256 key that signs
    /// each request (header `X-Ticklake-Signature`; see notify/README.md). The local runner
    /// reads it from the environment variable `TICKLAKE_SECRET_<NAME>_<KEY>` (upper case,
    /// other characters as `_`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_ref: Option<SecretKeySelector>,
}

/// One key of a Secret in the resource's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// The key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Delivery protocol of an endpoint: the SNS protocol names, and the webhook formats of
/// ticklake's own notifier.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Email,
    EmailJson,
    Https,
    Sqs,
    Webhook,
    Slack,
    Discord,
}

impl Protocol {
    /// The name used in manifests, e.g. `email-json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Email => "email",
            Protocol::EmailJson => "email-json",
            Protocol::Https => "https",
            Protocol::Sqs => "sqs",
            Protocol::Webhook => "webhook",
            Protocol::Slack => "slack",
            Protocol::Discord => "discord",
        }
    }
}

/// What the operator observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::crd::common::unwrap_descriptions)]
pub struct AlertSubscriptionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`; one entry per type.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Endpoints that confirmed their subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_endpoints: Option<i32>,
    /// Per endpoint: `PendingConfirmation`, `Confirmed`, `Unsubscribed`.
    #[serde(default)]
    pub endpoints: Vec<EndpointStatus>,
    /// The SNS topic subscribers are subscribed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// How events reach the topic: `Direct` (bucket notifications publish to the topic) or
    /// `Notifier` (bucket → SQS queue → the notifier worker, which writes readable messages and
    /// digests and sets the attributes filter policies match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The SQS queue of the `Notifier` route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
}

/// Subscription state of one endpoint.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// The endpoint's address, as in the spec.
    pub address: String,
    /// `PendingConfirmation` (an email or HTTPS endpoint has not confirmed yet), `Confirmed`
    /// or `Unsubscribed`.
    pub state: String,
}
