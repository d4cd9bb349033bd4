//! The engine end to end over crawled fixtures: the shipped named queries unchanged against
//! results computed independently in Rust, partition pruning in the statistics, the limits
//! (memory cap, timeout, result rows), the realistic JSON case, compressed CSV.

mod common;

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, Timelike, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use ticklake_api::tick::{Tick, TickBody};
use ticklake_query::{EngineOptions, QueryError, QueryOptions, named};

fn one(out: &ticklake_query::QueryOutput) -> RecordBatch {
    concat_batches(&out.schema, &out.batches).unwrap()
}

fn strings(b: &RecordBatch, col: &str) -> Vec<String> {
    let a =
        datafusion::arrow::compute::cast(b.column_by_name(col).unwrap(), &datafusion::arrow::datatypes::DataType::Utf8)
            .unwrap();
    let a = a.as_string::<i32>();
    (0..a.len()).map(|i| if a.is_null(i) { "NULL".into() } else { a.value(i).to_string() }).collect()
}

fn f64s(b: &RecordBatch, col: &str) -> Vec<f64> {
    b.column_by_name(col).unwrap().as_primitive::<Float64Type>().values().to_vec()
}

fn i64s(b: &RecordBatch, col: &str) -> Vec<i64> {
    b.column_by_name(col).unwrap().as_primitive::<Int64Type>().values().to_vec()
}

/// Trades and quotes of 3 symbols over today's and yesterday's first minutes (UTC), written
/// per hour as the sink does.
fn today_ticks(dir: &std::path::Path) -> Vec<Tick> {
    let now = Utc::now();
    let today = now.date_naive();
    let mut all = Vec::new();
    let mut seq = 0;
    for (day, hours) in [(today - Duration::days(1), [10u32, 11]), (today, [0, 1])] {
        for hour in hours {
            let mut ticks = Vec::new();
            for i in 0..240u64 {
                for (s, symbol) in ["AAPL", "MSFT", "TSLA"].iter().enumerate() {
                    seq += 1;
                    let ts = day.and_hms_opt(hour, 0, 0).unwrap().and_utc().timestamp_micros()
                        + (i as i64) * 1_000_000
                        + s as i64 * 1_000;
                    let price = 100.0 * (s as f64 + 1.0) + ((i * 7 + s as u64 * 3) % 23) as f64 * 0.25;
                    let body = if i % 5 == 4 {
                        TickBody::Quote { bid: price - 0.01, bid_size: 100, ask: price + 0.01, ask_size: 100 }
                    } else {
                        TickBody::Trade { price, size: 10 + (i * 13 + s as u64) % 90 }
                    };
                    ticks.push(Tick { symbol: symbol.to_string(), ts_us: ts, seq, body });
                }
            }
            let rel = format!(
                "year={:04}/month={:02}/day={:02}/hour={:02}/ticks+0+{:020}+{:020}.parquet",
                day.year(),
                day.month(),
                day.day(),
                hour,
                seq,
                seq
            );
            common::write_parquet(dir, &rel, &ticks);
            all.extend(ticks);
        }
    }
    all
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Bar {
    open: (i64, f64),
    close: (i64, f64),
    high: f64,
    low: f64,
    volume: i64,
    pv: f64,
    trades: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_named_queries_run_unchanged_and_agree_with_a_computation_in_rust() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lake/ticks");
    let ticks = today_ticks(&data);
    let store = common::catalog(dir.path());
    common::crawl(&store, &data, "market", "ticks").await;
    let engine = common::engine(store, "market");

    // Every template runs as shipped.
    for t in named::TEMPLATES {
        let out = engine.execute(&t.render("market", "ticks"), &QueryOptions::default()).await;
        let out = out.unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert!(out.stats.rows > 0, "{} returned nothing", t.name);
    }

    // ohlcv-1m, checked against bars computed here from the ticks of today (UTC).
    let today = Utc::now().date_naive();
    let mut bars: BTreeMap<(String, i64), Bar> = BTreeMap::new();
    for t in &ticks {
        let TickBody::Trade { price, size } = t.body else { continue };
        let time = chrono::DateTime::from_timestamp_micros(t.ts_us).unwrap();
        if time.date_naive() != today {
            continue;
        }
        let minute = t.ts_us - t.ts_us.rem_euclid(60_000_000);
        let b = bars.entry((t.symbol.clone(), minute)).or_insert(Bar {
            open: (i64::MAX, 0.0),
            close: (i64::MIN, 0.0),
            high: f64::MIN,
            low: f64::MAX,
            ..Bar::default()
        });
        if t.ts_us < b.open.0 {
            b.open = (t.ts_us, price);
        }
        if t.ts_us > b.close.0 {
            b.close = (t.ts_us, price);
        }
        b.high = b.high.max(price);
        b.low = b.low.min(price);
        b.volume += size as i64;
        b.pv += price * size as f64;
        b.trades += 1;
        let _ = time.hour();
    }
    let sql = named::TEMPLATES.iter().find(|t| t.name == "ticklake-ohlcv-1m").unwrap().render("market", "ticks");
    let out = engine.execute(&sql, &QueryOptions::default()).await.unwrap();
    let b = one(&out);
    assert_eq!(b.num_rows(), bars.len());
    let (symbols, open, high, low, close, volume, vwap, trades) = (
        strings(&b, "symbol"),
        f64s(&b, "open"),
        f64s(&b, "high"),
        f64s(&b, "low"),
        f64s(&b, "close"),
        i64s(&b, "volume"),
        f64s(&b, "vwap"),
        i64s(&b, "trades"),
    );
    for (i, ((symbol, _), bar)) in bars.iter().enumerate() {
        assert_eq!(&symbols[i], symbol, "row {i}");
        assert_eq!((open[i], high[i], low[i], close[i]), (bar.open.1, bar.high, bar.low, bar.close.1), "row {i}");
        assert_eq!((volume[i], trades[i]), (bar.volume, bar.trades), "row {i}");
        let expected = bar.pv / bar.volume as f64;
        assert!((vwap[i] - expected).abs() <= 1e-9 * expected, "row {i}: vwap {} vs {expected}", vwap[i]);
    }
    // Only today's partitions were read: yesterday's two files were pruned.
    assert_eq!(out.stats.files_total, 4);
    assert_eq!(out.stats.files_pruned, 2, "{:?}", out.stats);
    assert!(out.stats.bytes_scanned > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_filters_prune_files_before_they_are_opened() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::ticks_engine(dir.path()).await;
    let q = QueryOptions::default();
    let all = engine.execute("SELECT count(*) FROM ticks", &q).await.unwrap();
    assert_eq!((all.stats.files_total, all.stats.files_scanned, all.stats.files_pruned), (2, 2, 0));
    let one_day = engine.execute("SELECT count(*) AS n FROM ticks WHERE day = 25", &q).await.unwrap();
    assert_eq!((one_day.stats.files_scanned, one_day.stats.files_pruned), (1, 1));
    assert_eq!(i64s(&one(&one_day), "n"), vec![1]);
    let none = engine.execute("SELECT count(*) AS n FROM ticks WHERE year = 1999", &q).await.unwrap();
    assert_eq!((none.stats.files_scanned, none.stats.files_pruned), (0, 2));
    assert_eq!(i64s(&one(&none), "n"), vec![0]);
    // A filter on a data column prunes nothing at this level.
    let data_filter = engine.execute("SELECT count(*) FROM ticks WHERE price > 100", &q).await.unwrap();
    assert_eq!(data_filter.stats.files_pruned, 0);
}

/// The engine keeps Parquet footers between queries. A file rewritten in place with the same
/// size must not be read with its old footer once recrawled: its statistics would prune the
/// row group the new rows are in (regression test for the metadata cache's key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_with_the_same_size_is_not_read_with_its_cached_footer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lake");
    let rel = "t/day=25/a.parquet";
    let write = |price: f64| {
        common::write_parquet(&data, rel, &[common::trade("AAPL", "2026-11-25 14:30:00", 1, price, 100)]);
        std::fs::metadata(data.join(rel)).unwrap().len()
    };
    let size_before = write(1.0);
    let store = common::catalog(dir.path());
    common::crawl(&store, &data.join("t"), "db", "t").await;
    let engine = common::engine(store.clone(), "db");
    let q = QueryOptions::default();
    let n = |out: &ticklake_query::QueryOutput| i64s(&one(out), "n")[0];
    let sql = "SELECT count(*) AS n FROM t WHERE price > 1.5";
    assert_eq!(n(&engine.execute(sql, &q).await.unwrap()), 0);
    // The same bytes but one price: same size, new statistics; a new modification time.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let size_after = write(2.0);
    assert_eq!(size_before, size_after, "the rewrite keeps the size, so only the change tag differs");
    common::crawl(&store, &data.join("t"), "db", "t").await;
    assert_eq!(n(&engine.execute(sql, &q).await.unwrap()), 1, "the new footer's statistics were used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_is_bounded_by_memory_time_and_result_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::catalog(dir.path());
    let engine = ticklake_query::Engine::new(
        store,
        EngineOptions { max_result_rows: 10, target_partitions: 2, ..EngineOptions::default() },
    )
    .unwrap();
    let tiny = QueryOptions { memory_limit_bytes: Some(1 << 20), ..QueryOptions::default() };
    let e = engine
        .execute("SELECT x % 2000000 AS k, count(*) FROM generate_series(1, 4000000) AS t(x) GROUP BY k LIMIT 1", &tiny)
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::MemoryCap { limit_bytes: 1048576, .. }), "{e}");
    assert!(e.to_string().contains("memory_limit_bytes"), "{e}");

    let quick = QueryOptions { timeout_ms: Some(300), ..QueryOptions::default() };
    let started = std::time::Instant::now();
    let e = engine.execute("SELECT count(*) FROM generate_series(1, 100000000000) AS t(x)", &quick).await.unwrap_err();
    assert!(matches!(e, QueryError::Timeout { timeout_ms: 300 }), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the timeout did not stop the query");

    let e = engine.execute("SELECT * FROM generate_series(1, 100)", &QueryOptions::default()).await.unwrap_err();
    assert!(matches!(e, QueryError::ResultTooLarge { limit: 10 }), "{e}");

    // A query asks for less than the engine's bounds, never more: an engine with a 300 ms
    // timeout, or with 4 MiB of memory, keeps it whatever a client (the HTTP API) asks for.
    let strict = ticklake_query::Engine::new(
        common::catalog(dir.path()),
        EngineOptions { timeout_ms: 300, ..EngineOptions::default() },
    )
    .unwrap();
    let greedy =
        QueryOptions { timeout_ms: Some(u64::MAX), memory_limit_bytes: Some(usize::MAX), ..QueryOptions::default() };
    let e = strict.execute("SELECT count(*) FROM generate_series(1, 100000000000) AS t(x)", &greedy).await.unwrap_err();
    assert!(matches!(e, QueryError::Timeout { timeout_ms: 300 }), "{e}");
    let small = ticklake_query::Engine::new(
        common::catalog(dir.path()),
        EngineOptions { memory_limit_bytes: 4 << 20, ..EngineOptions::default() },
    )
    .unwrap();
    let e = small
        .execute(
            "SELECT x % 2000000 AS k, count(*) FROM generate_series(1, 4000000) AS t(x) GROUP BY k LIMIT 1",
            &greedy,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::MemoryCap { limit_bytes: 4194304, .. }), "{e}");
    let ok = engine.execute("SELECT * FROM generate_series(1, 10)", &QueryOptions::default()).await.unwrap();
    assert_eq!(ok.stats.rows, 10);

    let e = ticklake_query::Engine::new(
        common::catalog(dir.path()),
        EngineOptions { memory_limit_bytes: 10, ..EngineOptions::default() },
    )
    .unwrap_err();
    assert!(e.to_string().contains("memory_limit_bytes"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realistic_stock_market_case_is_one_queryable_table_without_the_strays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("stock_market");
    common::stock_market(&data, 600, 4);
    let store = common::catalog(dir.path());
    common::crawl(&store, &data, "kaggle", "stock_market").await;
    let tables = store.list_tables(Some("kaggle")).unwrap();
    assert_eq!(tables.len(), 1, "{tables:?}");
    let engine = common::engine(store, "kaggle");
    let out = engine
        .execute(
            r#"SELECT count(*) AS n, sum("Close") AS close, count(DISTINCT "Index") AS idx, min("Date") AS first_day
               FROM stock_market"#,
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let b = one(&out);
    assert_eq!(i64s(&b, "n"), vec![600]);
    let expected: f64 = (0..600).map(|i| 100.0 + (i % 50) as f64).sum();
    assert_eq!(f64s(&b, "close"), vec![expected]);
    assert_eq!(i64s(&b, "idx"), vec![3]);
    assert_eq!(strings(&b, "first_day"), vec!["2010-01-01".to_string()]);
    assert_eq!(out.stats.files_scanned, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_csv_and_json_tables_are_read_with_their_dialect() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("quotes");
    std::fs::create_dir_all(&csv).unwrap();
    for part in 0..3 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        writeln!(gz, "symbol|bid|ask|note").unwrap();
        for i in 0..10 {
            writeln!(gz, "S{part}|{}.5|{}.75|\"a | quoted note\"", i, i).unwrap();
        }
        std::fs::write(csv.join(format!("part-{part}.csv.gz")), gz.finish().unwrap()).unwrap();
    }
    let store = common::catalog(dir.path());
    common::crawl(&store, &csv, "market", "quotes").await;
    let t = store.get_table("market", "quotes").unwrap().unwrap();
    assert_eq!(t.format.to_string(), "csv(delimiter='|', header)+gzip");
    let engine = common::engine(store, "market");
    let out = engine
        .execute("SELECT count(*) AS n, sum(bid) AS bids, max(note) AS note FROM quotes", &QueryOptions::default())
        .await
        .unwrap();
    let b = one(&out);
    assert_eq!(i64s(&b, "n"), vec![30]);
    assert_eq!(f64s(&b, "bids"), vec![3.0 * (45.0 + 5.0)]);
    assert_eq!(strings(&b, "note"), vec!["a | quoted note".to_string()]);
}

/// Regression: epoch-number timestamps (the crawler's epoch rule) are read in their own unit —
/// `ts_ms` in JSON as milliseconds, not as microseconds — and in CSV, whose reader parses
/// timestamps from text only, as integers cast to their timestamp type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_timestamps_are_read_in_their_unit_in_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("prints");
    let csv = dir.path().join("bars");
    std::fs::create_dir_all(&json).unwrap();
    std::fs::create_dir_all(&csv).unwrap();
    // 2024-05-01T13:30:00Z and one minute later.
    let s = 1_714_570_200_i64;
    std::fs::write(
        json.join("p.json"),
        format!("{{\"ts_ms\":{},\"px\":1.5}}\n{{\"ts_ms\":{},\"px\":2.5}}\n", s * 1000, (s + 60) * 1000),
    )
    .unwrap();
    std::fs::write(csv.join("b.csv"), format!("time_s,close\n{s},10.5\n{},11.5\n", s + 60)).unwrap();
    let store = common::catalog(dir.path());
    common::crawl(&store, &json, "market", "prints").await;
    common::crawl(&store, &csv, "market", "bars").await;
    let engine = common::engine(store, "market");
    for sql in [
        "SELECT CAST(min(ts_ms) AS VARCHAR) AS lo, CAST(max(ts_ms) AS VARCHAR) AS hi FROM prints",
        "SELECT CAST(min(time_s) AS VARCHAR) AS lo, CAST(max(time_s) AS VARCHAR) AS hi FROM bars",
    ] {
        let out = engine.execute(sql, &QueryOptions::default()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let b = one(&out);
        assert_eq!(strings(&b, "lo"), vec!["2024-05-01T13:30:00".to_string()], "{sql}");
        assert_eq!(strings(&b, "hi"), vec!["2024-05-01T13:31:00".to_string()], "{sql}");
    }
    // Filters and date_bin work on them as on any timestamp.
    let out = engine
        .execute(
            "SELECT count(*) AS n FROM bars WHERE time_s >= TIMESTAMP '2024-05-01 13:31:00' AND close > 11",
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(i64s(&one(&out), "n"), vec![1]);
}
