//! A small HTTP/1.1 client for webhooks — one request per connection, over hyper and rustls
//! (both already in ticklake's dependency graph) — with two safety rules, and the webhook
//! signature.
//!
//! * **Targets are checked after DNS resolution**, and the connection goes to the checked
//!   address (so a name cannot resolve to something else between check and connect): loopback
//!   (127.0.0.0/8, ::1) and private or link-local ranges (10/8, 172.16/12, 192.168/16,
//!   100.64/10, 169.254/16, fc00::/7, fe80::/10) are refused unless [`TargetPolicy`] allows
//!   them; unspecified, multicast and broadcast addresses are always refused.
//! * **Responses are read up to 64 KiB** and every request has a timeout.
//!
//! ## The signature
//!
//! Webhook requests carry `X-Ticklake-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA256, keyed with the endpoint's secret, of `<unix seconds>.<raw request body>`.
//! A receiver recomputes it over the raw bytes it received, compares in constant time, and
//! refuses timestamps far from its clock (replays): see [`verify`], and `notify/README.md`.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_rustls::rustls;

/// Largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {0:?}: {1}")]
    Url(String, String),
    #[error("target refused: {0}")]
    Refused(String),
    #[error("resolving {0}: {1}")]
    Resolve(String, String),
    #[error("connecting to {0}: {1}")]
    Connect(String, String),
    #[error("TLS with {0}: {1}")]
    Tls(String, String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("timed out after {0} ms")]
    Timeout(u64),
}

/// Which address ranges requests may go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_loopback: bool,
    pub allow_private: bool,
}

impl TargetPolicy {
    /// Any address but unspecified, multicast and broadcast (tests' own clients).
    pub const ANY: TargetPolicy = TargetPolicy { allow_loopback: true, allow_private: true };

    /// Why `ip` is refused, if it is.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(format!("{ip} is an unspecified or multicast address"));
        }
        let (loopback, private) = match ip {
            IpAddr::V4(v4) => {
                if v4.is_broadcast() {
                    return Err(format!("{ip} is a broadcast address"));
                }
                let o = v4.octets();
                let cgnat = o[0] == 100 && (o[1] & 0xc0) == 64;
                (v4.is_loopback(), v4.is_private() || v4.is_link_local() || cgnat || o[0] == 0)
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                (v6.is_loopback(), (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80)
            }
        };
        if loopback && !self.allow_loopback {
            return Err(format!(
                "{ip} is a loopback address (allowLoopbackTargets is false in the notifier configuration)"
            ));
        }
        if private && !self.allow_private {
            return Err(format!(
                "{ip} is in a private or link-local range (allowPrivateTargets is false in the notifier configuration)"
            ));
        }
        Ok(())
    }
}

/// A response: status and (at most [`MAX_RESPONSE_BYTES`] of) body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err("no trusted root certificates found on this system".into());
            }
            let cfg =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            Ok(Arc::new(cfg))
        })
        .clone()
}

/// Sends one request. `policy` decides which resolved addresses may be connected to.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
    policy: TargetPolicy,
) -> Result<Response, HttpError> {
    let ms = timeout.as_millis() as u64;
    tokio::time::timeout(timeout, request_inner(method, url, headers, body, policy))
        .await
        .map_err(|_| HttpError::Timeout(ms))?
}

async fn request_inner(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    policy: TargetPolicy,
) -> Result<Response, HttpError> {
    let bad = |why: &str| HttpError::Url(url.to_string(), why.to_string());
    let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let host = uri.host().ok_or_else(|| bad("no host"))?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| HttpError::Resolve(host.clone(), e.to_string()))?
        .collect();
    let mut refusals = Vec::new();
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match policy.check(a.ip()) {
            Ok(()) => true,
            Err(why) => {
                refusals.push(why);
                false
            }
        })
        .collect();
    if allowed.is_empty() {
        return Err(HttpError::Refused(if refusals.is_empty() {
            format!("{host} resolves to no address")
        } else {
            format!("{host}: {}", refusals.join("; "))
        }));
    }
    let mut last = String::new();
    let mut stream = None;
    for a in &allowed {
        match tokio::net::TcpStream::connect(a).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    let stream = stream.ok_or_else(|| HttpError::Connect(host.clone(), last))?;
    let _ = stream.set_nodelay(true);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let host_header = match uri.port_u16() {
        Some(p) => format!("{}:{p}", uri.host().unwrap_or_default()),
        None => uri.host().unwrap_or_default().to_string(),
    };
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", host_header);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req.body(Full::new(body)).map_err(|e| HttpError::Http(e.to_string()))?;
    if https {
        let cfg = tls_config().map_err(|e| HttpError::Tls(host.clone(), e))?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| HttpError::Tls(host.clone(), e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, stream)
            .await
            .map_err(|e| HttpError::Tls(host.clone(), e.to_string()))?;
        send(TokioIo::new(tls), req).await
    } else {
        send(TokioIo::new(stream), req).await
    }
}

async fn send<I>(io: I, req: hyper::Request<Full<Bytes>>) -> Result<Response, HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| HttpError::Http(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| HttpError::Http(e.to_string()));
    let out = match resp {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(Response { status, body })
        }
        Err(e) => Err(e),
    };
    conn.abort();
    out
}

/// The `X-Ticklake-Signature` value of `body` sent at `unix_seconds`.
pub fn sign(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    format!("t={unix_seconds},v1={}", hex::encode(mac(secret, unix_seconds, body)))
}

fn mac(secret: &[u8], unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(unix_seconds.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// What a receiver does: checks `header` (an `X-Ticklake-Signature` value) against the raw
/// `body`, refusing timestamps more than `tolerance_seconds` from `now_unix_seconds`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_unix_seconds: i64, tolerance_seconds: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now_unix_seconds - t).abs() > tolerance_seconds {
        return false;
    }
    sigs.iter().any(|s| {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
        m.update(t.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        m.verify_slice(s).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_ranges_are_refused_by_default() {
        let p = TargetPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
        ] {
            assert!(p.check(ip.parse().unwrap()).is_err(), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert!(p.check(ip.parse().unwrap()).is_ok(), "{ip} is public");
        }
        let lo = TargetPolicy { allow_loopback: true, allow_private: false };
        assert!(lo.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(lo.check("10.0.0.1".parse().unwrap()).unwrap_err().contains("allowPrivateTargets"));
        assert!(TargetPolicy::ANY.check("0.0.0.0".parse().unwrap()).is_err());
    }

    #[test]
    fn signatures_verify_and_refuse_tampering_and_replays() {
        let h = sign(b"s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert!(verify(b"s3cret", &h, b"{\"a\":1}", 1_700_000_100, 300));
        assert!(!verify(b"s3cret", &h, b"{\"a\":2}", 1_700_000_100, 300), "body changed");
        assert!(!verify(b"other", &h, b"{\"a\":1}", 1_700_000_100, 300), "wrong key");
        assert!(!verify(b"s3cret", &h, b"{\"a\":1}", 1_700_001_000, 300), "too old");
        assert!(!verify(b"s3cret", "garbage", b"", 0, 300));
        // Computed independently: Python's hmac.new(b"key", b"1.body", hashlib.sha256).
        assert_eq!(sign(b"key", 1, b"body"), "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5");
    }

    #[tokio::test]
    async fn refuses_before_connecting() {
        let e =
            request("POST", "http://127.0.0.1:9/x", &[], Bytes::new(), Duration::from_secs(2), TargetPolicy::default())
                .await
                .unwrap_err();
        assert!(matches!(e, HttpError::Refused(ref m) if m.contains("loopback")), "{e}");
        let e = request("POST", "ftp://x/", &[], Bytes::new(), Duration::from_secs(2), TargetPolicy::ANY)
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Url(..)), "{e}");
    }
}
