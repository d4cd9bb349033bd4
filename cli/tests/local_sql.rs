//! Issue #5's "done when", as a user meets it: `ticklake local up` runs a StockStream and an
//! S3Sink with embedded defaults (embedded log, local object folder), crawls what the sink lands
//! into `<data-dir>/catalog.sqlite`, and answers SQL about it by table name — over its
//! Athena-style HTTP API while it runs, and through `ticklake sql` after it stopped — with the
//! named queries it saved for the table.
//!
//! A real child process, real sockets; nothing is mocked.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TICKS: u64 = 20_000;

/// One HTTP/1.1 request with `Connection: close`; the status and the (de-chunked) body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head in {raw:?}"));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap();
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return (status, rest.to_string());
    }
    let (mut out, mut rest) = (String::new(), rest);
    loop {
        let (len, after) = rest.split_once("\r\n").unwrap();
        let len = usize::from_str_radix(len.trim(), 16).unwrap();
        if len == 0 {
            return (status, out);
        }
        out.push_str(&after[..len]);
        rest = &after[len + 2..];
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Waits for an execution to finish; its final state and reason, and the CSV result if it
/// succeeded.
fn finish(addr: &str, id: &str) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http(addr, "GET", &format!("/v1/queries/{id}"), "");
        assert_eq!(status, 200, "{body}");
        let e = json(&body);
        let state = e["state"].as_str().unwrap().to_string();
        if state != "QUEUED" && state != "RUNNING" {
            let reason = e["state_change_reason"].as_str().unwrap_or_default().to_string();
            let csv = if state == "SUCCEEDED" {
                let (status, csv) = http(addr, "GET", &format!("/v1/queries/{id}/results?format=csv"), "");
                assert_eq!(status, 200, "{csv}");
                csv
            } else {
                String::new()
            };
            return (state, reason, csv);
        }
        assert!(Instant::now() < deadline, "query {id} still {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit(addr: &str, sql: &str) -> String {
    let (status, body) = http(addr, "POST", "/v1/queries", &serde_json::json!({ "query": sql }).to_string());
    assert_eq!(status, 200, "{body}");
    json(&body)["query_execution_id"].as_str().unwrap().to_string()
}

/// The one value of a one-row, one-column CSV result.
fn scalar(csv: &str) -> i64 {
    let mut lines = csv.lines();
    lines.next();
    lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("not a scalar: {csv:?}"))
}

/// Today (UTC) at 00:10:59.9: the ticks (100,000 per event-second, unthrottled) straddle a
/// minute boundary, and they are "today" for the OHLCV query's partition filter.
fn start_time() -> String {
    let day = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 86_400;
    let (y, m, d) = civil(day as i64);
    format!("{y:04}-{m:02}-{d:02}T00:10:59.900Z")
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn spawn(dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("up.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ticklake"))
        .args(["local", "up", "--metrics-addr", "127.0.0.1:0", "--sql-addr", "127.0.0.1:0", "-f"])
        .arg(dir.join("manifests"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The SQL API's address, from the runner's log.
fn sql_addr(dir: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("SQL API listening")) {
            let at = line.find("addr=").unwrap_or_else(|| panic!("no addr= in {line}"));
            return line[at + 5..].split_whitespace().next().unwrap().to_string();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ticklake local up exited ({status}) before serving SQL:\n{log}");
        }
        assert!(Instant::now() < deadline, "no SQL API after 60 s:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ticklake(args: &[&str], data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ticklake")).args(args).arg("--data-dir").arg(data).output().unwrap();
    assert!(out.status.success(), "ticklake {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_local_runner_is_crawled_and_queryable_by_name_with_the_named_queries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    std::fs::write(
        dir.join("manifests/pipeline.yaml"),
        format!(
            r#"apiVersion: ticklake.dev/v1alpha1
kind: StockStream
metadata: {{name: ticks}}
spec:
  topic: ticks
  partitions: 2
  source:
    simulator: {{ticksPerSecond: 0, seed: 11, maxTicks: {TICKS}, startTime: "{start}"}}
---
apiVersion: ticklake.dev/v1alpha1
kind: S3Sink
metadata: {{name: lake}}
spec:
  topic: ticks
  bucket: demo
  prefix: ticks
  flush: {{maxRecords: 3000, intervalMs: 300}}
  glue: {{database: market}}
"#,
            start = start_time()
        ),
    )
    .unwrap();
    let mut child = spawn(dir);
    let addr = sql_addr(dir, &mut child);

    // While it runs: the table appears and fills as batches land and are crawled.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: (String, String);
    loop {
        let (state, reason, csv) = finish(&addr, &submit(&addr, "SELECT count(*) AS n FROM ticks"));
        if state == "SUCCEEDED" && scalar(&csv) == TICKS as i64 {
            break;
        }
        // Before the first crawl the table is not in the catalog: a clear refusal, no guess.
        if state == "FAILED" {
            assert!(reason.contains("ticks"), "{reason}");
        }
        last = (state, if reason.is_empty() { csv } else { reason });
        assert!(Instant::now() < deadline, "not every tick queryable after 120 s: {last:?}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // The tables the API lists, and the shipped named queries saved for this one.
    let (status, body) = http(&addr, "GET", "/v1/tables?database=market", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ticks\""), "{body}");
    let (status, body) = http(&addr, "GET", "/v1/named-queries?database=market", "");
    assert_eq!(status, 200, "{body}");
    for name in ["ticklake-latest-price", "ticklake-ohlcv-1m", "ticklake-ticks-per-hour", "ticklake-top-movers"] {
        assert!(body.contains(name), "{name} not saved: {body}");
    }

    // The OHLCV named query, run by name: its bars account for every trade, exactly.
    let (status, body) = http(&addr, "POST", "/v1/named-queries/market/ticklake-ohlcv-1m/run", "");
    assert_eq!(status, 200, "{body}");
    let (state, reason, bars) = finish(&addr, json(&body)["query_execution_id"].as_str().unwrap());
    assert_eq!(state, "SUCCEEDED", "{reason}");
    let header: Vec<&str> = bars.lines().next().unwrap().split(',').collect();
    assert_eq!(header, ["symbol", "minute_start", "open", "high", "low", "close", "volume", "vwap", "trades"]);
    let trades_in_bars: i64 = bars.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<i64>().unwrap()).sum();
    let (_, _, csv) = finish(&addr, &submit(&addr, "SELECT count(*) FROM market.ticks WHERE kind = 'trade'"));
    let trades = scalar(&csv);
    assert!(trades > 0 && trades < TICKS as i64, "{trades}");
    assert_eq!(trades_in_bars, trades, "the bars:\n{bars}");
    // Two minutes per symbol at most (00:10 and 00:11), and both occur.
    assert!(bars.contains("00:10:00") && bars.contains("00:11:00"), "{bars}");

    // Stopped with SIGTERM: the runner exits cleanly, after a last crawl.
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("up.log")).unwrap();
    assert!(status.success(), "exit {status}:\n{log}");

    // Afterwards, from the catalog file alone: `ticklake catalog` and `ticklake sql`.
    let data = dir.join("data");
    let shown = json(&ticklake(&["catalog", "show", "market.ticks", "--json"], &data));
    assert!(shown["files"].as_u64().unwrap() >= 2, "{shown}");
    let columns = shown["table"]["schema"]["columns"].to_string();
    for column in ["symbol", "event_time", "price", "size", "kind"] {
        assert!(columns.contains(&format!("\"{column}\"")), "{column} not in {columns}");
    }
    let n = ticklake(&["sql", "-d", "market", "-o", "csv", "SELECT count(*) AS n FROM ticks"], &data);
    assert_eq!(scalar(&n), TICKS as i64);
    let cli_bars = ticklake(&["sql", "-d", "market", "-o", "csv", "--named", "ticklake-ohlcv-1m"], &data);
    assert_eq!(cli_bars, bars, "the CLI and the API answer the named query alike");
    let unknown = Command::new(env!("CARGO_BIN_EXE_ticklake"))
        .args(["sql", "-d", "market", "--named", "no-such-query", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no named query"));
}
