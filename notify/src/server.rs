//! The runner's link endpoint: `GET /notify/confirm?token=…` confirms an email endpoint,
//! `GET` or `POST /notify/unsubscribe?token=…` unsubscribes any endpoint (POST is RFC 8058's
//! one-click unsubscribe). Tokens are 256-bit random values; only the SHA-256 of a
//! confirmation token is stored, and an expired one gets a fresh confirmation email.

use crate::notifier::Inner;
use crate::render::html_escape;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Html;
use axum::routing::get;
use std::sync::Arc;

fn page(status: StatusCode, title: &str, text: &str) -> (StatusCode, Html<String>) {
    (
        status,
        Html(format!(
            "<!DOCTYPE html><html><head><title>{t}</title></head><body style=\"font-family: sans-serif\"><h1>{t}</h1><p>{x}</p></body></html>",
            t = html_escape(title),
            x = html_escape(text)
        )),
    )
}

/// The `token` query parameter: hex only, at most 128 characters.
fn token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|t| t.to_ascii_lowercase())
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/notify/confirm", get(confirm))
        .route("/notify/unsubscribe", get(unsubscribe).post(unsubscribe))
        .route("/notify/healthz", get(|| async { "ok\n" }))
        .with_state(inner)
}

async fn confirm(State(inner): State<Arc<Inner>>, uri: Uri) -> (StatusCode, Html<String>) {
    let Some(t) = token(&uri) else {
        return page(StatusCode::BAD_REQUEST, "Invalid link", "The link has no valid token.");
    };
    match inner.confirm(&t) {
        Ok(Confirm::Confirmed(sub)) => page(
            StatusCode::OK,
            "Subscription confirmed",
            &format!(
                "You will now receive ticklake notifications for \"{sub}\". Every email has a link to unsubscribe."
            ),
        ),
        Ok(Confirm::Already(sub)) => {
            page(StatusCode::OK, "Already confirmed", &format!("Your subscription to \"{sub}\" was already confirmed."))
        }
        Ok(Confirm::Expired) => page(
            StatusCode::GONE,
            "Link expired",
            "This confirmation link has expired. A new confirmation email is on its way.",
        ),
        Ok(Confirm::Unknown) => page(StatusCode::NOT_FOUND, "Unknown link", "This confirmation link is not valid."),
        Err(e) => {
            tracing::error!(error = %e, "confirming a subscription failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "Something went wrong; try again later.")
        }
    }
}

async fn unsubscribe(State(inner): State<Arc<Inner>>, uri: Uri) -> (StatusCode, Html<String>) {
    let Some(t) = token(&uri) else {
        return page(StatusCode::BAD_REQUEST, "Invalid link", "The link has no valid token.");
    };
    match inner.unsubscribe(&t) {
        Ok(Some(sub)) => page(
            StatusCode::OK,
            "Unsubscribed",
            &format!("You will no longer receive ticklake notifications for \"{sub}\"."),
        ),
        Ok(None) => page(StatusCode::NOT_FOUND, "Unknown link", "This unsubscribe link is not valid."),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribing failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "Something went wrong; try again later.")
        }
    }
}

/// What a confirmation link did.
pub(crate) enum Confirm {
    Confirmed(String),
    Already(String),
    Expired,
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hex_only() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(token(&u("/c?token=ABCdef01")), Some("abcdef01".into()));
        assert_eq!(token(&u("/c?x=1&token=00ff")), Some("00ff".into()));
        assert_eq!(token(&u("/c?token=zz")), None);
        assert_eq!(token(&u("/c?token=")), None);
        assert_eq!(token(&u("/c")), None);
    }
}
