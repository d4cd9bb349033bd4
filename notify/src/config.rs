//! The notifier's own configuration: the SMTP server, the link endpoint, limits. Read by the
//! local runner from `--notify-config <file>` (YAML); every field has a default except the
//! SMTP server, which email endpoints need.
//!
//! ```yaml
//! smtp:
//!   host: 127.0.0.1
//!   port: 1025
//!   tls: none              # none | starttls | tls
//!   from: ticklake@example.com
//!   username: ticklake     # optional; the password comes from the environment:
//!   passwordEnv: TICKLAKE_SMTP_PASSWORD
//! http:
//!   listen: 127.0.0.1:9465
//!   publicBaseUrl: http://127.0.0.1:9465   # what links in emails point at
//! allowLoopbackTargets: false   # webhooks to 127.0.0.0/8 and ::1
//! allowPrivateTargets: false    # webhooks to 10/8, 172.16/12, 192.168/16, fc00::/7, link-local
//! retry:
//!   email: {maxAttempts: 50, maxAgeMs: 21600000, baseDelayMs: 1000, maxDelayMs: 600000}
//! replayIntervalMs: 30000       # re-read the sinks' claims for events a crash lost
//! replayMaxEvents: 10000        # per replay pass
//! ```

use crate::backoff::RetryPolicy;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// How the SMTP connection is secured.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a local relay or a test server only).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The SMTP server email is sent through.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// The `From:` address, e.g. `ticklake <alerts@example.com>`.
    pub from: String,
    /// User name for SMTP AUTH; absent: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable holding the SMTP password (never the password itself).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Per-email timeout.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_ms: u64,
}

fn default_smtp_timeout() -> u64 {
    30_000
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }
}

/// The HTTP endpoint serving confirmation and unsubscribe links.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpConfig {
    /// Where to listen (port 0: any free port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The base of links in emails, e.g. `https://ticklake.example.com`; default
    /// `http://<listen address>`.
    #[serde(default)]
    pub public_base_url: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9465))
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: default_listen(), public_base_url: None }
    }
}

/// Retry policies per protocol.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryConfig {
    /// `email`, `email-json` (and confirmation emails).
    #[serde(default = "RetryPolicy::email")]
    pub email: RetryPolicy,
    /// `webhook`, `https`.
    #[serde(default = "RetryPolicy::webhook")]
    pub webhook: RetryPolicy,
    /// `slack`, `discord`.
    #[serde(default = "RetryPolicy::chat")]
    pub chat: RetryPolicy,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { email: RetryPolicy::email(), webhook: RetryPolicy::webhook(), chat: RetryPolicy::chat() }
    }
}

/// The notifier's configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifierConfig {
    /// The SMTP server; without it email endpoints are refused at start.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    /// Allow webhook targets on loopback addresses (127.0.0.0/8, ::1). Default false.
    #[serde(default)]
    pub allow_loopback_targets: bool,
    /// Allow webhook targets in private and link-local ranges. Default false.
    #[serde(default)]
    pub allow_private_targets: bool,
    #[serde(default)]
    pub retry: RetryConfig,
    /// How long a confirmation link stays valid (default 3 days, as SNS).
    #[serde(default = "default_confirm_ttl")]
    pub confirmation_ttl_seconds: u64,
    /// Undelivered messages plus undigested events kept at most; beyond, new events are
    /// refused (logged at error level and counted in the delivery log), never dropped silently.
    #[serde(default = "default_outbox_max")]
    pub outbox_max_pending: u64,
    /// Events in one digest message at most; more wait for the next one.
    #[serde(default = "default_digest_max_events")]
    pub digest_max_events: u32,
    /// Events listed by name in an email or chat message (totals always cover all).
    #[serde(default = "default_max_listed")]
    pub max_listed: u32,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub delivery_concurrency: u32,
    /// Per webhook request.
    #[serde(default = "default_http_timeout")]
    pub webhook_timeout_ms: u64,
    /// How often due messages are looked for when nothing wakes the delivery loop.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Delivery log entries kept (oldest pruned).
    #[serde(default = "default_log_max")]
    pub delivery_log_max_rows: u64,
    /// How often the runner re-reads the sinks' claims for landed objects whose events never
    /// reached the outbox (a crash while they were in memory). It also runs at every start.
    #[serde(default = "default_replay_interval")]
    pub replay_interval_ms: u64,
    /// Events re-derived from claims per replay pass at most (the rest wait for the next).
    #[serde(default = "default_replay_max_events")]
    pub replay_max_events: u32,
}

fn default_confirm_ttl() -> u64 {
    3 * 24 * 3600
}
fn default_outbox_max() -> u64 {
    100_000
}
fn default_digest_max_events() -> u32 {
    1000
}
fn default_max_listed() -> u32 {
    200
}
fn default_concurrency() -> u32 {
    4
}
fn default_http_timeout() -> u64 {
    15_000
}
fn default_poll() -> u64 {
    500
}
fn default_log_max() -> u64 {
    50_000
}
fn default_replay_interval() -> u64 {
    30_000
}
fn default_replay_max_events() -> u32 {
    10_000
}

impl Default for NotifierConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl NotifierConfig {
    /// Checks limits and policies; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.retry.email.validate("retry.email")?;
        self.retry.webhook.validate("retry.webhook")?;
        self.retry.chat.validate("retry.chat")?;
        if self.confirmation_ttl_seconds == 0 {
            return Err("confirmationTtlSeconds must be positive".into());
        }
        if self.outbox_max_pending == 0 || self.digest_max_events == 0 || self.delivery_concurrency == 0 {
            return Err("outboxMaxPending, digestMaxEvents and deliveryConcurrency must be positive".into());
        }
        if self.delivery_concurrency > 64 {
            return Err("deliveryConcurrency is at most 64".into());
        }
        if self.webhook_timeout_ms == 0 || self.poll_interval_ms == 0 {
            return Err("webhookTimeoutMs and pollIntervalMs must be positive".into());
        }
        if self.replay_interval_ms == 0 || self.replay_max_events == 0 {
            return Err("replayIntervalMs and replayMaxEvents must be positive".into());
        }
        if let Some(s) = &self.smtp {
            if s.host.is_empty() {
                return Err("smtp.host is empty".into());
            }
            if s.password_env.is_some() && s.username.is_none() {
                return Err("smtp.passwordEnv needs smtp.username".into());
            }
        }
        if let Some(u) = &self.http.public_base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err("http.publicBaseUrl must start with http:// or https://".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_typos() {
        let c = NotifierConfig::default();
        assert_eq!(c.retry.email.max_attempts, 50);
        assert!(!c.allow_loopback_targets);
        c.validate().unwrap();
        let e = serde_json::from_str::<NotifierConfig>(r#"{"allowLoopbackTarget": true}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let s: SmtpConfig = serde_json::from_str(r#"{"host": "h", "from": "a@b", "tls": "tls"}"#).unwrap();
        assert_eq!(s.port(), 465);
        let bad: NotifierConfig = serde_json::from_str(
            r#"{"retry": {"email": {"maxAttempts": 0, "maxAgeMs": 1, "baseDelayMs": 1, "maxDelayMs": 1}}}"#,
        )
        .unwrap();
        assert!(bad.validate().unwrap_err().contains("retry.email.maxAttempts"));
    }
}
