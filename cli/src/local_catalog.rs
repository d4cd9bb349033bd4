//! The local runner's catalog and SQL: what Glue and Athena are on AWS (issue #5).
//!
//! * Every `S3Sink` gets a table: `spec.glue.database` (default `default`) and `spec.glue.table`
//!   (default: the topic, as the operator names Glue tables). Its prefix — the local folder
//!   `<data-dir>/s3/<bucket>/<prefix>/` or the `s3://` prefix on the sink's endpoint — is crawled
//!   into `<data-dir>/catalog.sqlite` (or `--catalog`) with the Glue crawler's exclusions (dead
//!   letters, claims) and the sink's schema change policy.
//! * Crawls run at start, after every batch the sink lands (coalesced: a burst of batches makes
//!   one more crawl), every `--crawl-interval-secs`, and once more at stop. They are incremental:
//!   only new or changed files are read.
//! * The named queries the operator installs in Athena are saved for each table, and the SQL API
//!   (`ticklake-query`) serves the catalog on `--sql-addr`.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use ticklake_api::crd::S3Sink;
use ticklake_catalog::crawler::{CrawlConfig, Location, Recrawler, S3Config, SchemaChangePolicy};
use ticklake_catalog::store::Store;

/// One sink's table.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkTable {
    pub sink: String,
    pub database: String,
    pub table: String,
    /// What is crawled: a local folder or `s3://bucket/prefix/`.
    pub root: String,
    pub exclusions: Vec<String>,
    pub policy: SchemaChangePolicy,
    /// The sink's endpoint (MinIO) and region, for an `s3://` root.
    pub s3: S3Config,
}

/// The table of a sink run by the local runner (see the module documentation).
pub fn sink_table(sink: &S3Sink, data_dir: &Path) -> Result<SinkTable> {
    let name = sink.metadata.name.clone().unwrap_or_default();
    let spec = &sink.spec;
    let glue = spec.glue.as_ref();
    let database = glue.map(|g| g.database.clone()).unwrap_or_else(|| "default".into());
    let table = glue.and_then(|g| g.table.clone()).unwrap_or_else(|| ticklake_aws::glue::default_table(&spec.topic));
    let root = if spec.endpoint.is_some() {
        ticklake_aws::glue::location(spec)
    } else {
        let abs = std::path::absolute(data_dir).with_context(|| format!("resolving {}", data_dir.display()))?;
        let mut dir = abs.join("s3").join(&spec.bucket);
        if !spec.prefix.is_empty() {
            dir = dir.join(&spec.prefix);
        }
        dir.display().to_string()
    };
    let policy = match glue.map(|g| &g.schema_change_policy) {
        Some(ticklake_api::crd::SchemaChangePolicy::Log) => SchemaChangePolicy::Log,
        _ => SchemaChangePolicy::Update,
    };
    let s3 = S3Config {
        endpoint: spec.endpoint.clone(),
        region: spec.region.clone(),
        force_path_style: spec.force_path_style,
    };
    Ok(SinkTable { sink: name, database, table, root, exclusions: ticklake_aws::glue::exclusions(spec), policy, s3 })
}

/// The running crawlers, by sink name.
pub struct LocalCatalog {
    pub store: Arc<dyn Store>,
    recrawlers: Arc<HashMap<String, Recrawler>>,
    schedule: tokio::task::JoinHandle<()>,
    tables: Vec<SinkTable>,
}

fn config(t: &SinkTable) -> CrawlConfig {
    let mut cfg = CrawlConfig {
        database: t.database.clone(),
        table_name: Some(t.table.clone()),
        policy: t.policy,
        s3: t.s3.clone(),
        ..CrawlConfig::default()
    };
    cfg.group.exclusions = t.exclusions.clone();
    cfg
}

/// How long the crawl at stop may take.
const FINAL_CRAWL_TIMEOUT: Duration = Duration::from_secs(60);

fn log(sink: &str, r: Result<ticklake_catalog::crawler::CrawlSummary, ticklake_catalog::crawler::CrawlError>) {
    if let Ok(s) = &r {
        // The first few of each (unchanged failing files are reported by every crawl).
        for w in s.warnings.iter().chain(&s.schema_changes).take(3) {
            tracing::warn!(sink, "crawl: {w}");
        }
        for e in s.errors.iter().take(3) {
            tracing::warn!(sink, path = %e.path, reason = %e.reason, errors = s.errors.len(), "crawl error");
        }
        if !s.set_aside.is_empty() {
            tracing::warn!(sink, files = s.set_aside.len(), first = %s.set_aside[0].path, reason = %s.set_aside[0].reason, "files set aside");
        }
    }
    match r {
        Ok(s) if s.read > 0 || s.vanished > 0 || !s.errors.is_empty() => tracing::info!(
            sink, read = s.read, skipped = s.skipped, tables_created = ?s.tables_created,
            tables_updated = ?s.tables_updated, partitions_added = s.partitions_added,
            errors = s.errors.len(), ms = s.duration.as_millis() as u64, "crawled"
        ),
        Ok(_) => tracing::debug!(sink, "crawled: nothing new"),
        Err(e) => tracing::warn!(sink, error = %e, "crawl failed; retried at the next trigger"),
    }
}

impl LocalCatalog {
    /// Saves the named queries, then starts one recrawler per sink (which crawls at once:
    /// whatever an earlier run landed) and the schedule.
    pub async fn start(store: Arc<dyn Store>, tables: Vec<SinkTable>, interval: Duration) -> Result<LocalCatalog> {
        for t in &tables {
            let queries = ticklake_query::named::for_table(&t.database, &t.table);
            let s = store.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                for q in &queries {
                    s.save_named_query(q)?;
                }
                Ok(())
            })
            .await??;
        }
        let mut recrawlers = HashMap::new();
        for t in &tables {
            // A fresh runner has landed nothing yet: the sink's folder appears with its first
            // object, but the crawler needs it to exist (it is resolved once, here).
            if !t.root.starts_with("s3://") {
                std::fs::create_dir_all(&t.root).with_context(|| format!("sink {}: creating {}", t.sink, t.root))?;
            }
            let location =
                Location::parse(&t.root).with_context(|| format!("sink {}: crawl root {}", t.sink, t.root))?;
            let sink = t.sink.clone();
            let r = Recrawler::spawn(store.clone(), location, config(t), move |r| log(&sink, r));
            r.objects_committed();
            recrawlers.insert(t.sink.clone(), r);
        }
        let recrawlers = Arc::new(recrawlers);
        let scheduled = recrawlers.clone();
        let schedule = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                for r in scheduled.values() {
                    r.objects_committed();
                }
            }
        });
        Ok(LocalCatalog { store, recrawlers, schedule, tables })
    }

    /// A sink landed objects: its table is recrawled (soon, once).
    pub fn landed(&self, sink: &str) {
        if let Some(r) = self.recrawlers.get(sink) {
            r.objects_committed();
        }
    }

    /// Stops the triggers, then crawls every root a last time so that everything the sinks
    /// landed before stopping is in the catalog.
    pub async fn stop(self) {
        self.schedule.abort();
        let _ = self.schedule.await; // its copy of the recrawlers is dropped
        // Crawls in progress finish before the final crawl starts: never two on one table.
        match Arc::try_unwrap(self.recrawlers) {
            Ok(recrawlers) => {
                for r in recrawlers.into_values() {
                    r.shutdown().await;
                }
            }
            Err(_) => tracing::warn!("the recrawlers are still shared: no final crawl (the next start catches up)"),
        }
        for t in &self.tables {
            let location = match Location::parse(&t.root) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(sink = %t.sink, error = %e, "final crawl skipped");
                    continue;
                }
            };
            // Bounded: an unreachable S3 endpoint must not hold the runner's exit.
            let cfg = config(t);
            let crawl = ticklake_catalog::crawler::crawl(self.store.clone(), &location, &cfg);
            match tokio::time::timeout(FINAL_CRAWL_TIMEOUT, crawl).await {
                Ok(r) => log(&t.sink, r),
                Err(_) => tracing::warn!(
                    sink = %t.sink, secs = FINAL_CRAWL_TIMEOUT.as_secs(),
                    "final crawl timed out; the next start crawls what it missed"
                ),
            }
        }
    }
}
