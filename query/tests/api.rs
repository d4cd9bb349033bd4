//! The HTTP API end to end, over a real socket: submit, poll, page (JSON and CSV), cancel,
//! history, named queries (save, list, run, delete), errors, and the read-only refusal.

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use ticklake_query::{Api, ApiOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Client(std::net::SocketAddr);

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut s = tokio::net::TcpStream::connect(self.0).await.unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            let mut out = String::new();
            let mut rest = body;
            loop {
                let (len, after) = rest.split_once("\r\n").unwrap();
                let len = usize::from_str_radix(len.trim(), 16).unwrap();
                if len == 0 {
                    break;
                }
                out.push_str(&after[..len]);
                rest = &after[len + 2..];
            }
            out
        } else {
            body.to_string()
        };
        Reply { status, headers: head.to_ascii_lowercase(), body }
    }

    /// Polls until the execution has finished; returns it.
    async fn wait(&self, id: &str) -> Value {
        for _ in 0..600 {
            let e = self.call("GET", &format!("/v1/queries/{id}"), None).await.json();
            if !matches!(e["state"].as_str(), Some("QUEUED" | "RUNNING")) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("query {id} did not finish");
    }

    async fn start(&self, query: &str) -> String {
        let r = self.call("POST", "/v1/queries", Some(json!({ "query": query }))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["query_execution_id"].as_str().unwrap().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_athena_style_api_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::ticks_engine(dir.path()).await;
    let api = Api::new(
        engine,
        ApiOptions { max_concurrent_queries: 1, max_pending_queries: 3, max_history: 20, ..ApiOptions::default() },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = Client(listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api.router()).await.unwrap() });

    assert_eq!(c.call("GET", "/healthz", None).await.status, 200);

    // Submit, poll, page through JSON results 3 rows at a time.
    let id = c.start("SELECT symbol, event_time, price FROM ticks ORDER BY event_time").await;
    let e = c.wait(&id).await;
    assert_eq!(e["state"], "SUCCEEDED", "{e}");
    assert_eq!(e["statistics"]["rows"], 7);
    assert_eq!(e["statistics"]["files_scanned"], 2);
    assert!(e["statistics"]["bytes_scanned"].as_u64().unwrap() > 0);
    let mut prices = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/v1/queries/{id}/results?max_results=3&next_token={t}"),
            None => format!("/v1/queries/{id}/results?max_results=3"),
        };
        let page = c.call("GET", &path, None).await.json();
        assert_eq!(page["total_rows"], 7);
        assert_eq!(page["columns"][0]["name"], "symbol");
        for row in page["rows"].as_array().unwrap() {
            prices.push(row.get("price").and_then(Value::as_f64));
        }
        match page["next_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(prices, vec![Some(100.0), Some(50.0), None, Some(102.0), Some(49.0), Some(101.0), Some(110.0)]);

    // CSV, with the next token in a header.
    let csv = c.call("GET", &format!("/v1/queries/{id}/results?format=csv&max_results=2"), None).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers.contains("content-type: text/csv"), "{}", csv.headers);
    assert!(csv.headers.contains("x-next-token: 2"), "{}", csv.headers);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "symbol,event_time,price");
    assert!(lines[1].starts_with("AAPL,2026-11-24T09:30:00"), "{}", lines[1]);
    assert_eq!(lines.len(), 3);

    // Bad paging and unknown executions.
    assert_eq!(c.call("GET", &format!("/v1/queries/{id}/results?next_token=abc"), None).await.status, 400);
    assert_eq!(c.call("GET", &format!("/v1/queries/{id}/results?max_results=0"), None).await.status, 400);
    assert_eq!(c.call("GET", "/v1/queries/nope", None).await.status, 404);
    assert_eq!(c.call("POST", "/v1/queries", Some(json!({ "sql": "SELECT 1" }))).await.status, 400);

    // Read-only: a refused statement is a FAILED execution with the reason.
    let id = c.start("DROP TABLE ticks").await;
    let e = c.wait(&id).await;
    assert_eq!(e["state"], "FAILED");
    assert!(e["state_change_reason"].as_str().unwrap().contains("read-only"), "{e}");
    let r = c.call("GET", &format!("/v1/queries/{id}/results"), None).await;
    assert_eq!(r.status, 409);

    // Cancel a long query; with one query at a time, the next one waits QUEUED meanwhile.
    let long = c.start("SELECT count(*) FROM generate_series(1, 100000000000) AS t(x)").await;
    let queued = c.start("SELECT 1 AS one").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.call("GET", &format!("/v1/queries/{long}"), None).await.json()["state"], "RUNNING");
    assert_eq!(c.call("GET", &format!("/v1/queries/{queued}"), None).await.json()["state"], "QUEUED");
    let r = c.call("POST", &format!("/v1/queries/{long}/cancel"), None).await.json();
    assert_eq!(r["cancelled"], true);
    assert_eq!(c.wait(&long).await["state"], "CANCELLED");
    // The permit came back: the queued query runs.
    assert_eq!(c.wait(&queued).await["state"], "SUCCEEDED");
    let again = c.call("POST", &format!("/v1/queries/{long}/cancel"), None).await.json();
    assert_eq!(again["cancelled"], false);

    // The queue is bounded: 429 beyond max_pending_queries.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(c.start("SELECT count(*) FROM generate_series(1, 100000000000) AS t(x)").await);
    }
    let r = c.call("POST", "/v1/queries", Some(json!({ "query": "SELECT 1" }))).await;
    assert_eq!(r.status, 429, "{}", r.body);
    for id in &held {
        c.call("POST", &format!("/v1/queries/{id}/cancel"), None).await;
    }

    // History, newest first.
    let h = c.call("GET", "/v1/queries?max_results=50", None).await.json();
    let ids: Vec<&str> =
        h["executions"].as_array().unwrap().iter().map(|e| e["query_execution_id"].as_str().unwrap()).collect();
    assert_eq!(ids.first().copied(), held.last().map(String::as_str));
    assert!(ids.contains(&long.as_str()));

    // Named queries: save, list, get, run, delete.
    let saved = c
        .call(
            "POST",
            "/v1/named-queries",
            Some(json!({ "database": "market", "name": "trades", "description": "trades", "query": "SELECT count(*) AS n FROM ticks WHERE kind = 'trade'" })),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let list = c.call("GET", "/v1/named-queries?database=market", None).await.json();
    assert_eq!(list["named_queries"].as_array().unwrap().len(), 1);
    assert_eq!(c.call("GET", "/v1/named-queries/market/trades", None).await.json()["name"], "trades");
    let run = c.call("POST", "/v1/named-queries/market/trades/run", None).await.json();
    let id = run["query_execution_id"].as_str().unwrap().to_string();
    let e = c.wait(&id).await;
    assert_eq!(e["named_query"], "market.trades");
    let page = c.call("GET", &format!("/v1/queries/{id}/results"), None).await.json();
    assert_eq!(page["rows"][0]["n"], 6);
    assert_eq!(c.call("DELETE", "/v1/named-queries/market/trades", None).await.status, 200);
    assert_eq!(c.call("GET", "/v1/named-queries/market/trades", None).await.status, 404);
    assert_eq!(c.call("POST", "/v1/named-queries/market/trades/run", None).await.status, 404);

    // The catalog's tables.
    let t = c.call("GET", "/v1/tables?database=market", None).await.json();
    assert_eq!(t["tables"][0]["name"], "ticks");
    assert_eq!(t["tables"][0]["partition_keys"], json!(["year", "month", "day", "hour"]));
}
