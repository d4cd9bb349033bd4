//! Reading the workers' live figures from their `GET /status` (see `ticklake_api::report`).
//!
//! The operator asks each ready pod of a resource on its `metrics` port, with a short timeout
//! and a size limit, over plain HTTP/1.1 inside the cluster network. A pod that does not answer
//! is skipped (its figures are missing from the sum, and the count of reporting workers says
//! so); it never fails the reconcile.

use k8s_openapi::api::core::v1::Pod;
use std::time::Duration;
use ticklake_api::report::{StatusReport, WorkerReport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::render::{METRICS_PORT, METRICS_PORT_NAME};

/// Longest wait for one pod's report.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest report read.
const MAX_BYTES: u64 = 256 * 1024;

/// `(ip, port)` of a pod's status endpoint, when it is ready and has an IP.
pub fn endpoint(pod: &Pod) -> Option<(String, u16)> {
    let status = pod.status.as_ref()?;
    let ready = status.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ip = status.pod_ip.clone()?;
    let port = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(METRICS_PORT_NAME))
        .map(|p| p.container_port)
        .unwrap_or(METRICS_PORT);
    Some((ip, u16::try_from(port).ok()?))
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {TIMEOUT:?}")]
    Timeout,
    #[error("HTTP answer not understood: {0}")]
    Protocol(String),
    #[error("report not understood: {0}")]
    Json(#[from] serde_json::Error),
}

/// `GET http://ip:port/status`.
pub async fn fetch(ip: &str, port: u16) -> Result<StatusReport, ScrapeError> {
    tokio::time::timeout(TIMEOUT, fetch_inner(ip, port)).await.map_err(|_| ScrapeError::Timeout)?
}

async fn fetch_inner(ip: &str, port: u16) -> Result<StatusReport, ScrapeError> {
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await?;
    let request =
        format!("GET /status HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(MAX_BYTES).read_to_end(&mut raw).await?;
    parse_response(&raw)
}

/// The body of an HTTP/1.1 `200` answer (`Content-Length` or chunked).
fn parse_response(raw: &[u8]) -> Result<StatusReport, ScrapeError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ScrapeError::Protocol("no end of headers".into()))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|e| ScrapeError::Protocol(e.to_string()))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(ScrapeError::Protocol(format!("status line {status:?}")));
    }
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    if !chunked {
        return Ok(serde_json::from_slice(body)?);
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| ScrapeError::Protocol("truncated chunk".into()))?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|e| ScrapeError::Protocol(e.to_string()))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| ScrapeError::Protocol(format!("chunk size {size_text:?}: {e}")))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            break;
        }
        if rest.len() < size {
            return Err(ScrapeError::Protocol("truncated chunk".into()));
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    Ok(serde_json::from_slice(&out)?)
}

/// The reports of every ready pod in `pods`, asked concurrently; pods that fail are logged
/// and left out.
pub async fn reports(pods: &[Pod]) -> Vec<WorkerReport> {
    let asks = pods.iter().filter_map(|p| {
        let (ip, port) = endpoint(p)?;
        let name = p.metadata.name.clone().unwrap_or_default();
        Some(async move {
            match fetch(&ip, port).await {
                Ok(r) => r.workers,
                Err(e) => {
                    tracing::debug!(pod = %name, %ip, port, error = %e, "worker status unavailable");
                    Vec::new()
                }
            }
        })
    });
    futures::future::join_all(asks).await.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_bodies() {
        let body = r#"{"workers":[{"worker":"sink/a","kind":"sink","ready":true,"total":5,"messagesPerSecond":1.5}]}"#;
        let plain = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        let r = parse_response(plain.as_bytes()).unwrap();
        assert_eq!(r.workers[0].total, 5);
        let (a, b) = body.split_at(20);
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        );
        assert_eq!(parse_response(chunked.as_bytes()).unwrap(), r);
        assert!(matches!(parse_response(b"HTTP/1.1 503 Unavailable\r\n\r\n"), Err(ScrapeError::Protocol(_))));
        assert!(matches!(parse_response(b"HTTP/1.1 200 OK\r\n\r\nnot json"), Err(ScrapeError::Json(_))));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn only_ready_pods_with_an_ip_are_asked() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "metrics", "containerPort": 9999}]}]},
            "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        assert_eq!(endpoint(&pod), Some(("10.0.0.7".to_string(), 9999)));
        let mut unready = pod.clone();
        unready.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        assert_eq!(endpoint(&unready), None);
        let mut no_ip = pod;
        no_ip.status.as_mut().unwrap().pod_ip = None;
        assert_eq!(endpoint(&no_ip), None);
    }
}
