//! Email over real SMTP with `lettre`: plain, STARTTLS (required) or TLS, optional AUTH with
//! the password taken from the environment. Each email has a text and an HTML body, a
//! `Message-ID` derived from the ticklake message id, and (except confirmations) a
//! `List-Unsubscribe` header with the endpoint's unsubscribe link.

use crate::config::{SmtpConfig, SmtpTls};
use crate::render::EmailBody;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// The server refused it for good (a 5xx reply): retrying will not help.
    pub permanent: bool,
}

/// An SMTP client.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port (tls)`, for logs.
    pub describe: String,
}

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Mailer {
    /// Builds the client; `env` reads the password variable named by `passwordEnv`.
    pub fn new(cfg: &SmtpConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Mailer, String> {
        let from: Mailbox = cfg.from.parse().map_err(|e| format!("smtp.from {:?} is not an address: {e}", cfg.from))?;
        let port = cfg.port();
        let builder = match cfg.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(|e| format!("smtp: {e}"))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(|e| format!("smtp: {e}"))?,
        };
        let mut builder = builder.port(port).timeout(Some(Duration::from_millis(cfg.timeout_ms)));
        if let Some(user) = &cfg.username {
            let password = match &cfg.password_env {
                Some(var) => env(var).ok_or_else(|| format!("smtp.passwordEnv names {var}, which is not set"))?,
                None => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let tls = match cfg.tls {
            SmtpTls::None => "plain",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        };
        Ok(Mailer { transport: builder.build(), from, describe: format!("{}:{port} ({tls})", cfg.host) })
    }

    /// Sends one email with text and HTML bodies (or a text-only body when `html` is empty).
    pub async fn send(
        &self,
        to: &str,
        body: &EmailBody,
        message_id: &str,
        unsubscribe_url: Option<&str>,
    ) -> Result<(), SendError> {
        let to: Mailbox =
            to.parse().map_err(|e| SendError { message: format!("{to:?} is not an address: {e}"), permanent: true })?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(body.subject.clone())
            .message_id(Some(format!("<{message_id}@ticklake>")));
        if let Some(u) = unsubscribe_url {
            b = b.header(ListUnsubscribe(format!("<{u}>")));
        }
        let built = if body.html.is_empty() {
            b.header(ContentType::TEXT_PLAIN).body(body.text.clone())
        } else {
            b.multipart(MultiPart::alternative_plain_html(body.text.clone(), body.html.clone()))
        };
        let msg = built.map_err(|e| SendError { message: format!("building the email: {e}"), permanent: true })?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) => Err(SendError { message: format!("SMTP {}: {e}", self.describe), permanent: e.is_permanent() }),
        }
    }
}
