//! `ticklake sql` and `ticklake sql-server`: SQL over the local catalog (`ticklake-query`).
//!
//! ```text
//! ticklake sql "SELECT count(*) FROM ticks" --database market
//! ticklake sql --named ticklake-ohlcv-1m --database market --format csv
//! ticklake sql-server --listen 127.0.0.1:8089     # the Athena-style HTTP API
//! ```
//!
//! The catalog is the local runner's (`<data-dir>/catalog.sqlite`) unless `--catalog` names
//! another (a path, `sqlite:///path` or `postgres://…`).

use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use ticklake_query::{Api, ApiOptions, Engine, EngineOptions, OutputFormat, QueryOptions};

/// Where the catalog is, and the engine's bounds.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// The catalog: a path, `sqlite:///path` or `postgres://…`. Default: the local runner's,
    /// `<data-dir>/catalog.sqlite`.
    #[arg(long, env = "TICKLAKE_CATALOG")]
    catalog: Option<String>,
    /// The local runner's data folder (for the default catalog).
    #[arg(long, default_value = ".ticklake", env = "TICKLAKE_DATA_DIR")]
    data_dir: PathBuf,
    /// The database unqualified table names are looked up in.
    #[arg(long, short = 'd', default_value = "default")]
    database: String,
    /// Memory one query may hold, in MiB (no spilling: beyond it the query fails).
    #[arg(long, default_value_t = 2048)]
    memory_limit_mb: usize,
    /// Wall time one query may take, in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    timeout_ms: u64,
    /// Rows a result may hold.
    #[arg(long, default_value_t = 1_000_000)]
    max_result_rows: usize,
}

impl EngineArgs {
    pub fn catalog_url(&self) -> String {
        self.catalog.clone().unwrap_or_else(|| self.data_dir.join("catalog.sqlite").display().to_string())
    }

    async fn engine(&self) -> Result<Arc<Engine>> {
        let url = self.catalog_url();
        // The default catalog is the runner's: a missing one is a wrong --data-dir, not an
        // empty catalog to create.
        if self.catalog.is_none() && !std::path::Path::new(&url).exists() {
            bail!(
                "no catalog at {url}: run `ticklake local up` (or `ticklake crawl`) first, or pass --data-dir or --catalog"
            );
        }
        let open_url = url.clone();
        let store = tokio::task::spawn_blocking(move || ticklake_catalog::store::open(&open_url))
            .await?
            .with_context(|| format!("opening the catalog {url}"))?;
        let opts = EngineOptions {
            default_database: self.database.clone(),
            memory_limit_bytes: self.memory_limit_mb.saturating_mul(1 << 20),
            timeout_ms: self.timeout_ms,
            max_result_rows: self.max_result_rows,
            s3: ticklake_query::s3::S3Config::from_env(),
            ..EngineOptions::default()
        };
        Ok(Arc::new(Engine::new(Arc::from(store), opts)?))
    }
}

#[derive(Args)]
pub struct SqlArgs {
    /// The query (read-only: SELECT, WITH, VALUES, EXPLAIN, SHOW, DESCRIBE).
    #[arg(required_unless_present = "named", conflicts_with = "named")]
    query: Option<String>,
    /// Run a saved (named) query of the database instead, e.g. `ticklake-ohlcv-1m`.
    #[arg(long)]
    named: Option<String>,
    /// Output: table, csv or json.
    #[arg(long, short = 'o', default_value = "table")]
    format: OutputFormat,
    /// Print the statistics (rows, bytes scanned, files pruned, time) to stderr.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub async fn run(args: SqlArgs) -> Result<()> {
    let engine = args.engine.engine().await?;
    let sql = match (&args.query, &args.named) {
        (Some(q), None) => q.clone(),
        (None, Some(name)) => {
            let (store, db, n) = (Arc::clone(engine.store()), args.engine.database.clone(), name.clone());
            let saved = tokio::task::spawn_blocking(move || store.named_queries(Some(&db))).await??;
            match saved.into_iter().find(|q| q.name == n) {
                Some(q) => q.sql,
                None => bail!(
                    "no named query {name:?} in database {:?} (the local runner saves ticklake's for each sink's table)",
                    args.engine.database
                ),
            }
        }
        _ => bail!("give a query or --named"),
    };
    let out = engine.execute(&sql, &QueryOptions::default()).await?;
    let text = ticklake_query::render(&out.batches, &out.schema, args.format)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&text)?;
    stdout.flush()?;
    if args.stats {
        let s = &out.stats;
        eprintln!(
            "{} rows; {} bytes scanned; files: {} scanned, {} pruned of {}; planning {} ms, execution {} ms",
            s.rows, s.bytes_scanned, s.files_scanned, s.files_pruned, s.files_total, s.planning_ms, s.execution_ms
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct ServeArgs {
    /// Where the HTTP API listens.
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Queries run at once; others wait (QUEUED).
    #[arg(long, default_value_t = 4)]
    max_concurrent_queries: usize,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Serves the API until `stop` turns true.
pub async fn serve_api(
    engine: Arc<Engine>,
    opts: ApiOptions,
    listen: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let api = Api::new(engine, opts)?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "SQL API listening");
    let handle = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|v| *v).await;
        };
        if let Err(e) = axum::serve(listener, api.router()).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "SQL API stopped");
        }
    });
    Ok((addr, handle))
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let engine = args.engine.engine().await?;
    let opts = ApiOptions { max_concurrent_queries: args.max_concurrent_queries, ..ApiOptions::default() };
    let stop = crate::shutdown_signal();
    let (_, handle) = serve_api(engine, opts, args.listen, stop).await?;
    handle.await?;
    Ok(())
}
