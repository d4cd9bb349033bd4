//! Pieces shared by the three kinds: Kafka connection, secret references, status conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of a Kubernetes object name (RFC 1123 subdomain), e.g. a Secret or ServiceAccount.
pub(crate) const DNS_SUBDOMAIN_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// How to reach Kafka. With no `bootstrapServers` the local runner uses its embedded log;
/// the operator requires them (reported in status).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("has(self.saslMechanism) == self.securityProtocol.startsWith('SASL_')")
        .message("saslMechanism is required when securityProtocol is SASL_PLAINTEXT or SASL_SSL, and only then")
        .field_path(".saslMechanism"),
    validation = Rule::new("!self.securityProtocol.startsWith('SASL_') || has(self.secretRef)")
        .message("SASL needs secretRef: a Secret with the keys username and password")
        .field_path(".secretRef")
        .reason(Reason::FieldValueRequired)
)]
pub struct KafkaConnection {
    /// Comma-separated `host:port` list without spaces, e.g.
    /// `b-1.msk.example:9098,b-2.msk.example:9098`. Absent: the local runner uses its embedded
    /// log; the operator cannot run the resource and says so in its `Ready` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096), regex(pattern = r"^[^,\s]+:[0-9]{1,5}(,[^,\s]+:[0-9]{1,5})*$"))]
    pub bootstrap_servers: Option<String>,
    /// Security protocol spoken to the brokers: `PLAINTEXT` (default), `SSL`,
    /// `SASL_PLAINTEXT` or `SASL_SSL`.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`. Required when
    /// `securityProtocol` is `SASL_PLAINTEXT` or `SASL_SSL`, not allowed otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// Secret (same namespace) holding credentials: keys `username` and `password` for SASL
    /// (then required), `ca.crt`, `tls.crt` and `tls.key` for TLS. Never put credentials in the
    /// spec itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
}

/// Security protocol spoken to Kafka brokers (the librdkafka / Java client spelling).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SecurityProtocol {
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SSL")]
    Ssl,
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka / Java client spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// SASL mechanism used with `SASL_PLAINTEXT` and `SASL_SSL`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// What happens to a resource outside Kubernetes (a Kafka topic, cloud resources) when the
/// custom resource that created it is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeletionPolicy {
    /// Keep it (and its data).
    #[default]
    Retain,
    /// Delete it.
    Delete,
}

/// A Secret in the resource's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretReference {
    /// Name of the Secret, in the resource's own namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// Joins the hard-wrapped lines of doc comments in every `description` below `schema`, so that
/// `kubectl explain` wraps them itself; paragraphs, lists and code blocks are kept as they are.
/// Used as `#[schemars(transform = ...)]` on the top-level spec and status structs (their
/// nested types are inlined, so one pass covers them).
pub(crate) fn unwrap_descriptions(schema: &mut schemars::Schema) {
    fn unwrap(text: &str) -> String {
        text.split("\n\n")
            .map(|paragraph| {
                let structured = paragraph.lines().any(|l| {
                    l.starts_with(char::is_whitespace)
                        || l.starts_with("- ")
                        || l.starts_with("* ")
                        || l.starts_with("```")
                });
                if structured {
                    paragraph.to_string()
                } else {
                    paragraph.lines().map(str::trim).collect::<Vec<_>>().join(" ")
                }
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }
    fn walk(map: &mut serde_json::Map<String, serde_json::Value>) {
        for (key, v) in map.iter_mut() {
            match v {
                serde_json::Value::String(text) if key == "description" => *text = unwrap(text),
                serde_json::Value::Object(child) => walk(child),
                serde_json::Value::Array(items) => items.iter_mut().filter_map(|i| i.as_object_mut()).for_each(walk),
                _ => {}
            }
        }
    }
    if let Some(map) = schema.as_object_mut() {
        walk(map);
    }
}

/// The condition types every ticklake kind reports.
pub mod condition {
    /// The resource does what its spec asks.
    pub const READY: &str = "Ready";
    /// A change is being rolled out.
    pub const PROGRESSING: &str = "Progressing";
    /// Something is wrong that the operator cannot fix by itself; the message says what.
    pub const DEGRADED: &str = "Degraded";
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
