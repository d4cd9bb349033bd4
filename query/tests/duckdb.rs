//! An independent engine agrees: DuckDB (from PyPI, `.ci/duckdb/run.py`) reads the same
//! Parquet files the sink's encoder wrote, and its counts and 1-minute OHLCV bars equal
//! ticklake's exactly (open, high, low, close and volume bit for bit; VWAP, a floating-point
//! sum whose order differs between engines, within 1e-12 relative).
//!
//! Needs `TICKLAKE_TEST_DUCKDB_PYTHON` (scripts/test.sh installs DuckDB in a virtualenv).
#![cfg(feature = "duckdb-tests")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use ticklake_api::tick::{Tick, TickBody};
use ticklake_query::QueryOptions;

/// Irregular ticks of 40 symbols over two days, 12 files; per symbol, event times are unique
/// (ties would make open and close depend on the engine).
fn ticks(dir: &std::path::Path) -> usize {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut total = 0;
    for (day, hours) in [("2026-11-24", [9, 10, 11, 12, 13, 14]), ("2026-11-25", [9, 10, 11, 12, 13, 14])] {
        for hour in hours {
            let base = common::micros(&format!("{day} {hour:02}:00:00"));
            let mut ticks = Vec::new();
            let mut seq = 0;
            for s in 0..40u64 {
                let symbol = format!("S{s:02}");
                let mut t = base;
                let mut price = 20.0 + s as f64 * 7.5;
                while t < base + 3_600_000_000 {
                    t += 1 + (next() % 2_000_000) as i64;
                    seq += 1;
                    // Prices on a 1/10,000 grid, as exchanges quote them.
                    price = ((price + ((next() % 2001) as f64 - 1000.0) / 10_000.0).max(0.01) * 10_000.0).round()
                        / 10_000.0;
                    let body = if next() % 4 == 0 {
                        TickBody::Quote { bid: price - 0.01, bid_size: 100, ask: price + 0.01, ask_size: 200 }
                    } else {
                        TickBody::Trade { price, size: 1 + next() % 500 }
                    };
                    ticks.push(Tick { symbol: symbol.clone(), ts_us: t, seq, body });
                }
            }
            total += ticks.len();
            let (y, m, d) = (&day[0..4], &day[5..7], &day[8..10]);
            common::write_parquet(dir, &format!("year={y}/month={m}/day={d}/hour={hour:02}/part-0.parquet"), &ticks);
        }
    }
    total
}

const OHLCV: &str = "
SELECT symbol,
       date_trunc('minute', event_time) AS minute_start,
       min_by(price, event_time) AS open,
       max(price) AS high,
       min(price) AS low,
       max_by(price, event_time) AS close,
       sum(size) AS volume,
       sum(price * size) / sum(size) AS vwap,
       count(*) AS trades
FROM ticks
WHERE kind = 'trade'
GROUP BY symbol, date_trunc('minute', event_time)
ORDER BY symbol, minute_start";

#[derive(Debug, PartialEq, Clone)]
struct Row {
    symbol: String,
    minute: String,
    ohlc: [u64; 4],
    volume: i64,
    vwap: f64,
    trades: i64,
}

fn duckdb(parquet_glob: &str, sql: &str) -> Vec<serde_json::Value> {
    let python = std::env::var("TICKLAKE_TEST_DUCKDB_PYTHON").expect("TICKLAKE_TEST_DUCKDB_PYTHON (scripts/test.sh)");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/duckdb/run.py");
    let sql_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(sql_file.path(), sql).unwrap();
    let out = Command::new(python)
        .arg(script)
        .args(["--parquet", parquet_glob, "--view", "ticks", "--sql-file"])
        .arg(sql_file.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "duckdb: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines.pop(); // the timings
    lines
}

fn f64_of(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Object(o) => o["f64"].as_str().unwrap().parse().unwrap(),
        n => n.as_f64().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_agrees_exactly_on_counts_and_ohlcv() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lake/ticks");
    let n = ticks(&data);
    let store = common::catalog(dir.path());
    common::crawl(&store, &data, "market", "ticks").await;
    let engine = common::engine(store, "market");
    let glob = format!("{}/**/*.parquet", data.display());

    // Counts, overall and per kind and day.
    let counts = "SELECT kind, day, count(*) AS n, count(DISTINCT symbol) AS symbols FROM ticks GROUP BY kind, day ORDER BY kind, day";
    let ours = engine.execute(counts, &QueryOptions::default()).await.unwrap();
    let ours = concat_batches(&ours.schema, &ours.batches).unwrap();
    let theirs = duckdb(&glob, counts);
    assert_eq!(ours.num_rows(), theirs.len());
    let total: i64 = ours.column_by_name("n").unwrap().as_primitive::<Int64Type>().values().iter().sum();
    assert_eq!(total as usize, n);
    for (i, t) in theirs.iter().enumerate() {
        let day = cast(ours.column_by_name("day").unwrap(), &DataType::Utf8).unwrap();
        let kind = cast(ours.column_by_name("kind").unwrap(), &DataType::Utf8).unwrap();
        assert_eq!(kind.as_string::<i32>().value(i), t["kind"].as_str().unwrap());
        // DuckDB reads Hive values as text (`24`); the catalog typed day as int.
        assert_eq!(day.as_string::<i32>().value(i), t["day"].as_str().unwrap().trim_start_matches('0'));
        assert_eq!(ours.column_by_name("n").unwrap().as_primitive::<Int64Type>().value(i), t["n"].as_i64().unwrap());
        assert_eq!(
            ours.column_by_name("symbols").unwrap().as_primitive::<Int64Type>().value(i),
            t["symbols"].as_i64().unwrap()
        );
    }

    // One-minute OHLCV: the same SQL text in both engines.
    let out = engine.execute(OHLCV, &QueryOptions::default()).await.unwrap();
    let b = concat_batches(&out.schema, &out.batches).unwrap();
    let minute = cast(b.column_by_name("minute_start").unwrap(), &DataType::Utf8).unwrap();
    let f = |c: &str| b.column_by_name(c).unwrap().as_primitive::<Float64Type>().clone();
    let (open, high, low, close, vwap) = (f("open"), f("high"), f("low"), f("close"), f("vwap"));
    let symbol = cast(b.column_by_name("symbol").unwrap(), &DataType::Utf8).unwrap();
    let mut ours = BTreeMap::new();
    for i in 0..b.num_rows() {
        let r = Row {
            symbol: symbol.as_string::<i32>().value(i).to_string(),
            minute: minute.as_string::<i32>().value(i).to_string(),
            ohlc: [open.value(i).to_bits(), high.value(i).to_bits(), low.value(i).to_bits(), close.value(i).to_bits()],
            volume: b.column_by_name("volume").unwrap().as_primitive::<Int64Type>().value(i),
            vwap: vwap.value(i),
            trades: b.column_by_name("trades").unwrap().as_primitive::<Int64Type>().value(i),
        };
        ours.insert((r.symbol.clone(), r.minute.clone()), r);
    }
    let theirs = duckdb(&glob, OHLCV);
    assert!(theirs.len() > 10_000, "too few bars to mean anything: {}", theirs.len());
    assert_eq!(ours.len(), theirs.len());
    for t in &theirs {
        // DuckDB: `2026-11-24T09:00:00+00:00`; arrow: `2026-11-24T09:00:00`.
        let minute = t["minute_start"].as_str().unwrap().trim_end_matches("+00:00").to_string();
        let key = (t["symbol"].as_str().unwrap().to_string(), minute);
        let r = ours.get(&key).unwrap_or_else(|| panic!("DuckDB has bar {key:?}, ticklake does not"));
        let ohlc = [f64_of(&t["open"]), f64_of(&t["high"]), f64_of(&t["low"]), f64_of(&t["close"])].map(f64::to_bits);
        assert_eq!(r.ohlc, ohlc, "{key:?}");
        assert_eq!((r.volume, r.trades), (t["volume"].as_i64().unwrap(), t["trades"].as_i64().unwrap()), "{key:?}");
        let v = f64_of(&t["vwap"]);
        assert!((r.vwap - v).abs() <= 1e-12 * v.abs(), "{key:?}: vwap {} vs {v}", r.vwap);
    }
}
