//! `ticklake bench sql` and `ticklake bench crawl`: the figures issue #5 names.
//!
//! * `sql` — one-minute OHLCV per symbol over `--ticks` simulator ticks (default 100 M) written
//!   by the sink's Parquet encoder in the sink's Hive layout, crawled into a catalog, queried
//!   `--runs` times by ticklake (the first run cold, the others hot) and, when
//!   `--duckdb-python` is given, by DuckDB on the same files with the same SQL text in the same
//!   run. The data set is generated once into `--dir` and reused.
//! * `crawl` — `--files` JSON-lines files totalling about `--bytes` (default 10,000 and 1 GB)
//!   crawled from scratch, then recrawled with nothing changed (incremental: nothing read).
//!
//! Both print the figures and the commands' parameters; BENCHMARKS.md records them.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use ticklake_query::{Engine, EngineOptions, QueryOptions};

/// The benchmark's query: the shipped `ticklake-ohlcv-1m` without its "today" filter, so it
/// covers every tick. The same text runs in DuckDB (which has `min_by`/`max_by` too).
pub const OHLCV_ALL: &str = "SELECT symbol,
       date_trunc('minute', event_time) AS minute_start,
       min_by(price, event_time) AS open,
       max(price) AS high,
       min(price) AS low,
       max_by(price, event_time) AS close,
       sum(size) AS volume,
       sum(price * size) / nullif(sum(size), 0) AS vwap,
       count(*) AS trades
FROM ticks
WHERE kind = 'trade'
GROUP BY symbol, date_trunc('minute', event_time)
ORDER BY symbol, minute_start";

#[derive(Args)]
pub struct SqlBenchArgs {
    /// Ticks in the data set.
    #[arg(long, default_value_t = 100_000_000)]
    pub ticks: u64,
    /// Where the data set and its catalog live (generated once, reused).
    #[arg(long, default_value = "/var/tmp/ticklake-bench/sql")]
    pub dir: PathBuf,
    /// Runs of the query per engine (the first is cold).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// A Python with the `duckdb` package: runs `.ci/duckdb/run.py` for the comparison.
    #[arg(long, env = "TICKLAKE_DUCKDB_PYTHON")]
    pub duckdb_python: Option<PathBuf>,
    /// Threads both engines use (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Args)]
pub struct CrawlBenchArgs {
    /// JSON files to crawl.
    #[arg(long, default_value_t = 10_000)]
    pub files: usize,
    /// Their total size, in bytes.
    #[arg(long, default_value_t = 1_000_000_000)]
    pub bytes: u64,
    /// Where they are written (generated once, reused).
    #[arg(long, default_value = "/var/tmp/ticklake-bench/crawl")]
    pub dir: PathBuf,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Generates the tick data set (sink encoder, Hive layout by hour) unless `dir/.complete` says
/// it holds `ticks` ticks.
/// The row order of the sink's Parquet objects (`ticklake_workers::sink::encode::sort_ticks`).
const ROW_ORDER: &str = "kind, symbol, event_time, seq";

fn generate(dir: &Path, ticks: u64) -> Result<()> {
    let marker = dir.join(".complete");
    // The encoder's row order is part of the data set: a set written by an older encoder is
    // written again.
    let want = format!("{ticks} ticks, rows by {ROW_ORDER}");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    // A trading day's worth of event time: 100 M ticks at 5,000/s span about 5.6 hours.
    let spec: ticklake_api::crd::StockStreamSpec = serde_yaml::from_str(&format!(
        "topic: bench\nsource:\n  simulator:\n    ticksPerSecond: 5000\n    seed: 7\n    maxTicks: {ticks}\n    startTime: \"2026-11-24T14:30:00Z\"\n"
    ))?;
    let mut src = ticklake_sources::Source::from_spec(&spec.source, ticklake_sources::Shard::ALL, 0)?;
    let progress = bar(ticks, "generating ticks");
    let started = Instant::now();
    let (mut n, mut files, mut bytes) = (0u64, 0u64, 0u64);
    let mut buf = Vec::with_capacity(2_000_000);
    loop {
        buf.clear();
        let o = src.next_batch(&mut buf, 2_000_000)?;
        // One file per hour of event time, as the sink's layout does.
        let mut by_hour: std::collections::BTreeMap<i64, Vec<ticklake_api::tick::Tick>> = Default::default();
        for t in buf.drain(..) {
            by_hour.entry(t.ts_us.div_euclid(3_600_000_000)).or_default().push(t);
        }
        for (hour, mut ticks) in by_hour {
            ticklake_workers::sink::encode::sort_ticks(&mut ticks);
            let time = chrono::DateTime::from_timestamp(hour * 3600, 0).context("event time out of range")?;
            let rel =
                format!("{}/bench+0+{:020}+{:020}.parquet", time.format("year=%Y/month=%m/day=%d/hour=%H"), n, files);
            let data = ticklake_workers::sink::encode::parquet(&ticks)?;
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
            std::fs::write(&path, &data).with_context(|| format!("writing {}", path.display()))?;
            n += ticks.len() as u64;
            files += 1;
            bytes += data.len() as u64;
            progress.set_position(n);
        }
        if o.finished {
            break;
        }
    }
    progress.finish_and_clear();
    println!(
        "generated {n} ticks in {files} Parquet files, {:.1} MB ({:.2} bytes/tick), in {:.1} s",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, want)?;
    Ok(())
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template(&format!("{what} {{pos}}/{{len}} [{{bar:30}}] {{elapsed}}"))
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn crawl_into(
    store: Arc<dyn ticklake_catalog::store::Store>,
    root: &Path,
    database: &str,
    table: &str,
) -> Result<ticklake_catalog::crawler::CrawlSummary> {
    use ticklake_catalog::crawler::{CrawlConfig, Location, crawl};
    let location = Location::parse(&root.display().to_string())?;
    let cfg = CrawlConfig {
        database: database.into(),
        table_name: Some(table.into()),
        max_files: 1_000_000,
        progress: true,
        ..CrawlConfig::default()
    };
    Ok(crawl(store, &location, &cfg).await?)
}

pub async fn sql(args: SqlBenchArgs) -> Result<()> {
    let data = args.dir.join("lake/ticks");
    let (d, t) = (data.clone(), args.ticks);
    tokio::task::spawn_blocking(move || generate(&d, t)).await??;
    let catalog_path = args.dir.join("catalog.sqlite");
    let _ = std::fs::remove_file(&catalog_path);
    let c = catalog_path.display().to_string();
    let store: Arc<dyn ticklake_catalog::store::Store> =
        Arc::from(tokio::task::spawn_blocking(move || ticklake_catalog::store::open(&c)).await??);
    let t0 = Instant::now();
    let summary = crawl_into(store.clone(), &data, "bench", "ticks").await?;
    println!("crawl of the data set: {:.2} s\n{summary}", t0.elapsed().as_secs_f64());
    let opts = EngineOptions {
        default_database: "bench".into(),
        target_partitions: args.threads,
        memory_limit_bytes: 8 << 30,
        ..EngineOptions::default()
    };
    let engine = Engine::new(store, opts)?;
    let mut ours = Vec::new();
    let mut rows = 0;
    for run in 0..args.runs.max(2) {
        let t0 = Instant::now();
        let out = engine.execute(OHLCV_ALL, &QueryOptions::default()).await?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        rows = out.stats.rows;
        println!(
            "ticklake run {run}: {ms:.0} ms, {} bars, {} bytes scanned, {} files",
            out.stats.rows, out.stats.bytes_scanned, out.stats.files_scanned
        );
        ours.push(ms);
    }
    let cold = ours[0];
    let hot = median(&mut ours[1..].to_vec());
    println!("ticklake: cold {cold:.0} ms, hot median {hot:.0} ms ({} ticks, {rows} bars)", args.ticks);
    let Some(python) = &args.duckdb_python else {
        println!("(no --duckdb-python: DuckDB not compared)");
        return Ok(());
    };
    let sql_file = tempfile::NamedTempFile::new()?;
    std::fs::write(sql_file.path(), OHLCV_ALL)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/duckdb/run.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg("--parquet")
        .arg(format!("{}/**/*.parquet", data.display()))
        .args(["--view", "ticks", "--no-rows", "--repeat", &args.runs.max(2).to_string()])
        .args(["--threads", &args.threads.to_string()])
        .arg("--sql-file")
        .arg(sql_file.path())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("duckdb: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8(out.stdout)?;
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or("{}"))?;
    let mut theirs: Vec<f64> =
        v["timings_ms"].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default();
    if theirs.len() < 2 {
        bail!("duckdb printed no timings: {line}");
    }
    if v["rows"].as_u64() != Some(rows) {
        bail!("DuckDB returned {} bars, ticklake {rows}", v["rows"]);
    }
    let duck_cold = theirs[0];
    let duck_hot = median(&mut theirs[1..]);
    println!("duckdb {}: cold {duck_cold:.0} ms, hot median {duck_hot:.0} ms", v["version"]);
    println!("ticklake / duckdb, hot: {:.2}×", hot / duck_hot);
    Ok(())
}

/// Writes `files` JSON-lines files of ticks totalling about `bytes`.
fn generate_json(dir: &Path, files: usize, bytes: u64) -> Result<()> {
    let marker = dir.join(".complete");
    let want = format!("{files} {bytes}");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let per_file = (bytes / files.max(1) as u64) as usize;
    let spec: ticklake_api::crd::StockStreamSpec = serde_yaml::from_str(
        "topic: bench\nsource:\n  simulator:\n    ticksPerSecond: 5000\n    seed: 3\n    startTime: \"2026-11-24T14:30:00Z\"\n",
    )?;
    let mut src = ticklake_sources::Source::from_spec(&spec.source, ticklake_sources::Shard::ALL, 0)?;
    let progress = bar(files as u64, "writing JSON files");
    let mut buf = Vec::new();
    let mut total = 0u64;
    for i in 0..files {
        let mut text = Vec::with_capacity(per_file + 512);
        while text.len() < per_file {
            buf.clear();
            src.next_batch(&mut buf, 64)?;
            for t in &buf {
                t.encode_into(&mut text);
                text.push(b'\n');
            }
        }
        let sub = dir.join(format!("day={:02}", i % 10 + 1));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(format!("ticks-{i:05}.json")), &text)?;
        total += text.len() as u64;
        progress.inc(1);
    }
    progress.finish_and_clear();
    println!("wrote {files} JSON files, {:.1} MB", total as f64 / 1e6);
    std::fs::write(&marker, want)?;
    Ok(())
}

pub async fn crawl(args: CrawlBenchArgs) -> Result<()> {
    let data = args.dir.join("json");
    let (d, f, b) = (data.clone(), args.files, args.bytes);
    tokio::task::spawn_blocking(move || generate_json(&d, f, b)).await??;
    let catalog = tempfile::tempdir()?;
    let c = catalog.path().join("catalog.sqlite").display().to_string();
    let store: Arc<dyn ticklake_catalog::store::Store> =
        Arc::from(tokio::task::spawn_blocking(move || ticklake_catalog::store::open(&c)).await??);
    let t0 = Instant::now();
    let first = crawl_into(store.clone(), &data, "bench", "json_ticks").await?;
    println!("full crawl of {} files: {:.2} s\n{first}", args.files, t0.elapsed().as_secs_f64());
    let t0 = Instant::now();
    let again = crawl_into(store, &data, "bench", "json_ticks").await?;
    println!("recrawl, nothing changed: {:.2} s\n{again}", t0.elapsed().as_secs_f64());
    Ok(())
}
