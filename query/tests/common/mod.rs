//! Fixtures the query tests generate: ticks written by the sink's own Parquet encoder in the
//! sink's Hive layout, the realistic `stock_market_N.json` case, a CSV table; crawled into a
//! SQLite catalog by the real crawler.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use ticklake_api::tick::{Tick, TickBody};
use ticklake_catalog::store::Store;
use ticklake_query::{Engine, EngineOptions};

pub fn trade(symbol: &str, ts: &str, seq: u64, price: f64, size: u64) -> Tick {
    Tick { symbol: symbol.into(), ts_us: micros(ts), seq, body: TickBody::Trade { price, size } }
}

pub fn quote(symbol: &str, ts: &str, seq: u64, bid: f64, ask: f64) -> Tick {
    Tick {
        symbol: symbol.into(),
        ts_us: micros(ts),
        seq,
        body: TickBody::Quote { bid, bid_size: 100, ask, ask_size: 100 },
    }
}

/// `2026-11-24 09:30:00` (UTC) in µs.
pub fn micros(ts: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_micros()
}

/// Writes `ticks` as one Parquet file at `dir/rel` with the sink's encoder.
pub fn write_parquet(dir: &Path, rel: &str, ticks: &[Tick]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, ticklake_workers::sink::encode::parquet(ticks).unwrap()).unwrap();
}

/// The 7 ticks of `tests/slt/ticks.slt`.
pub fn slt_ticks(dir: &Path) {
    write_parquet(
        dir,
        "year=2026/month=11/day=24/hour=09/ticks+0+00000000000000000001+00000000000000000006.parquet",
        &[
            trade("AAPL", "2026-11-24 09:30:00", 1, 100.0, 10),
            trade("AAPL", "2026-11-24 09:30:30", 2, 102.0, 20),
            trade("AAPL", "2026-11-24 09:31:10", 3, 101.0, 10),
            trade("MSFT", "2026-11-24 09:30:05", 1, 50.0, 100),
            trade("MSFT", "2026-11-24 09:30:50", 2, 49.0, 100),
            quote("MSFT", "2026-11-24 09:30:20", 3, 49.5, 50.5),
        ],
    );
    write_parquet(
        dir,
        "year=2026/month=11/day=25/hour=14/ticks+0+00000000000000000007+00000000000000000007.parquet",
        &[trade("AAPL", "2026-11-25 14:00:00", 4, 110.0, 5)],
    );
}

/// `n` files `stock_market_N.json`, one object each (the realistic case), and
/// `strays` objects of another shape.
pub fn stock_market(dir: &Path, n: usize, strays: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let close = 100.0 + (i % 50) as f64;
        let body = serde_json::json!({
            "Index": (["NYA", "IXIC", "HSI"][i % 3]),
            "Date": format!("20{:02}-{:02}-{:02}", 10 + i / 365 % 10, i % 12 + 1, i % 28 + 1),
            "Open": close - 1.0, "High": close + 2.0, "Low": close - 2.5, "Close": close,
            "Adj Close": close, "Volume": (i * 1000) as f64, "CloseUSD": close * 1.1,
        });
        std::fs::write(dir.join(format!("stock_market_{i}.json")), body.to_string()).unwrap();
    }
    for i in 0..strays {
        std::fs::write(dir.join(format!("stock_market_stray_{i}.json")), format!("{{\"name\": \"stray {i}\"}}"))
            .unwrap();
    }
}

/// A SQLite catalog in `dir`.
pub fn catalog(dir: &Path) -> Arc<dyn Store> {
    Arc::from(ticklake_catalog::store::open(&dir.join("catalog.sqlite").display().to_string()).unwrap())
}

/// An engine over `store` with `database` as the default.
pub fn engine(store: Arc<dyn Store>, database: &str) -> Arc<Engine> {
    let opts = EngineOptions { default_database: database.into(), ..EngineOptions::default() };
    Arc::new(Engine::new(store, opts).unwrap())
}

/// Crawls `dir` into `database` with the real crawler; the root table is named `table`.
pub async fn crawl(store: &Arc<dyn Store>, dir: &Path, database: &str, table: &str) {
    use ticklake_catalog::crawler::{CrawlConfig, Location, crawl};
    let location = Location::parse(&dir.display().to_string()).unwrap();
    let cfg = CrawlConfig { database: database.into(), table_name: Some(table.into()), ..CrawlConfig::default() };
    let summary = crawl(store.clone(), &location, &cfg).await.unwrap();
    assert!(summary.errors.is_empty(), "{summary}");
}

/// The `.slt` tick fixture under `dir/lake/ticks`, crawled into `market.ticks` of a catalog in
/// `dir`, and an engine over it with `market` as the default database.
pub async fn ticks_engine(dir: &Path) -> Arc<Engine> {
    let data = dir.join("lake/ticks");
    slt_ticks(&data);
    let store = catalog(dir);
    crawl(&store, &data, "market", "ticks").await;
    engine(store, "market")
}
