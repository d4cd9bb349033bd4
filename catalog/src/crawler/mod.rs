//! The incremental crawl driver: a local folder or an S3 prefix → the catalog [`Store`].
//!
//! ```text
//!  list (sizes, change tags) ──▶ unchanged? reuse the stored format and schema
//!                            └─▶ new or changed: ranged reads of the sample (+ Parquet footer) ──▶ inspect
//!  all files ──▶ group (pure) ──▶ plan against the stored tables (pure) ──▶ apply (one transaction)
//! ```
//!
//! * A file whose size and change tag (modification time in ns; the ETag on S3) equal its
//!   stored state is not read again; vanished files are dropped from the state. A file that
//!   could not be read (I/O, S3) keeps its stored state and is tried again next time.
//! * Grouping always runs over every file (cheap and pure), so tables are decided as in a first
//!   crawl; [`plan`] turns the difference into changes (the rules are in its module).
//! * Bounded: [`CrawlConfig::max_files`] files listed (more is an error, not a partial
//!   catalog), [`CrawlConfig::concurrency`] reads in flight, [`Limits`] bytes per file.
//! * Store calls run in `spawn_blocking` (the PostgreSQL client must not run on a runtime
//!   thread).
//!
//! [`crawl`] runs one crawl; [`Recrawler`] is the trigger a runner calls when a sink committed
//! new objects (notifications during a crawl coalesce into one more crawl).

pub mod plan;
mod source;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::crawl::Problem;
use crate::error::CatalogError;
use crate::group::{Exclusions, FileEntry, GroupOptions, SetAside, group};
use crate::store::{FileState, Store, StoreError, validate_name};

pub use plan::{Plan, PlanInput, SchemaChangePolicy, folder_url, plan};
pub use source::{Location, S3Config};

/// Why a crawl stopped (files that cannot be read do not stop it: they are in the summary).
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error("crawl location {0}")]
    Location(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("S3: {0}")]
    S3(String),
    #[error("{0}")]
    Io(String),
}

/// How a crawl runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CrawlConfig {
    /// The catalog database the tables go to.
    pub database: String,
    /// The name of the table at the crawl root (a sink's prefix → `ticks`); default: the
    /// folder's, the prefix's last segment's or the bucket's name.
    pub table_name: Option<String>,
    /// Similarity threshold, max schemas, exclusions, sample size and other limits
    /// (`root_name` is replaced by `table_name`).
    pub group: GroupOptions,
    pub policy: SchemaChangePolicy,
    /// Most files listed; more is an error.
    pub max_files: usize,
    /// Files read at once.
    pub concurrency: usize,
    pub s3: S3Config,
    /// Draw a progress bar on stderr while reading (only when stderr is a terminal).
    pub progress: bool,
}

impl Default for CrawlConfig {
    fn default() -> Self {
        CrawlConfig {
            database: "default".into(),
            table_name: None,
            group: GroupOptions::default(),
            policy: SchemaChangePolicy::Update,
            max_files: 100_000,
            concurrency: 16,
            s3: S3Config::default(),
            progress: false,
        }
    }
}

/// What a crawl did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrawlSummary {
    pub root: String,
    pub database: String,
    /// Files listed (hidden ones not included).
    pub files_listed: usize,
    pub hidden: usize,
    pub excluded: usize,
    /// Files read (new or changed).
    pub read: usize,
    /// Files not read: unchanged since the last crawl.
    pub skipped: usize,
    /// Files stored before and gone now.
    pub vanished: usize,
    /// Bytes fetched from the files (samples and footers).
    pub bytes_fetched: u64,
    pub tables_created: Vec<String>,
    pub tables_updated: Vec<String>,
    pub tables_deprecated: Vec<String>,
    pub partitions_added: usize,
    /// `table `t` version 2: added column x: double`.
    pub schema_changes: Vec<String>,
    pub warnings: Vec<String>,
    pub set_aside: Vec<SetAside>,
    /// Files that could not be read, or are not readable data, with the reason.
    pub errors: Vec<Problem>,
    pub duration: Duration,
}

fn names(v: &[String]) -> String {
    if v.is_empty() { String::new() } else { format!(" ({})", v.join(", ")) }
}

impl fmt::Display for CrawlSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "crawled {} into database `{}` in {:.2} s", self.root, self.database, self.duration.as_secs_f64())?;
        writeln!(
            f,
            "files: {} listed, {} read ({} bytes fetched), {} skipped (unchanged), {} vanished, {} hidden, {} excluded, {} set aside, {} errors",
            self.files_listed,
            self.read,
            self.bytes_fetched,
            self.skipped,
            self.vanished,
            self.hidden,
            self.excluded,
            self.set_aside.len(),
            self.errors.len()
        )?;
        writeln!(
            f,
            "tables: {} created{}, {} updated{}, {} deprecated{}; partitions added: {}",
            self.tables_created.len(),
            names(&self.tables_created),
            self.tables_updated.len(),
            names(&self.tables_updated),
            self.tables_deprecated.len(),
            names(&self.tables_deprecated),
            self.partitions_added
        )?;
        for c in &self.schema_changes {
            writeln!(f, "schema: {c}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if !self.set_aside.is_empty() {
            writeln!(f, "set aside:")?;
            for s in &self.set_aside {
                writeln!(f, "  {}: {}", s.path, s.reason)?;
            }
        }
        if !self.errors.is_empty() {
            writeln!(f, "errors:")?;
            for e in &self.errors {
                writeln!(f, "  {}: {}", e.path, e.reason)?;
            }
        }
        Ok(())
    }
}

/// Runs a store call off the runtime's threads.
async fn blocking<R: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, CrawlError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| CrawlError::Io(e.to_string()))?
        .map_err(Into::into)
}

fn progress_bar(len: usize, enabled: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !enabled || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(len as u64), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("reading {pos}/{len} files [{bar:30}] {elapsed} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Crawls `location` into the catalog (see the module documentation).
pub async fn crawl(store: Arc<dyn Store>, location: &Location, cfg: &CrawlConfig) -> Result<CrawlSummary, CrawlError> {
    let started = Instant::now();
    validate_name("database", &cfg.database)?;
    if let Some(t) = &cfg.table_name {
        validate_name("table", t)?;
    }
    let bad = |option, reason: &str| Err(CrawlError::Catalog(CatalogError::Options { option, reason: reason.into() }));
    if cfg.max_files == 0 {
        return bad("max_files", "must be at least 1");
    }
    if !(1..=256).contains(&cfg.concurrency) {
        return bad("concurrency", "must be 1 to 256");
    }
    let mut group_opts = cfg.group.clone();
    group_opts.root_name = cfg.table_name.clone().unwrap_or_else(|| location.default_table_name());
    group_opts.validate()?;
    let exclusions = Exclusions::new(&group_opts.exclusions)?;
    let root = location.url();
    let db = cfg.database.clone();

    let reader = source::Reader::new(location, &cfg.s3).await;
    let listing = reader.list(cfg.max_files, &group_opts).await?;
    let previous = {
        let (db, root) = (db.clone(), root.clone());
        blocking(&store, move |s| s.file_states(&db, &root)).await?
    };
    let stored: std::collections::HashMap<&str, &FileState> = previous.iter().map(|f| (f.path.as_str(), f)).collect();

    let mut summary = CrawlSummary {
        root: root.clone(),
        database: db.clone(),
        files_listed: listing.files.len(),
        hidden: listing.hidden,
        errors: listing.problems,
        ..CrawlSummary::default()
    };
    let mut current: Vec<FileState> = Vec::with_capacity(listing.files.len());
    let mut to_read = Vec::new();
    for f in listing.files {
        if exclusions.matching(&f.path).is_some() {
            summary.excluded += 1;
            continue;
        }
        match stored.get(f.path.as_str()) {
            Some(s) if s.size == f.size && s.tag == f.tag && !f.tag.is_empty() => {
                summary.skipped += 1;
                current.push((*s).clone());
            }
            _ => to_read.push(f),
        }
    }

    summary.read = to_read.len();
    let bar = progress_bar(to_read.len(), cfg.progress);
    let limits = &group_opts.limits;
    let reader = &reader;
    let read: Vec<_> = futures::stream::iter(to_read)
        .map(|f| {
            let bar = bar.clone();
            async move {
                let r = reader.sample(&f, limits).await;
                bar.inc(1);
                (f, r)
            }
        })
        .buffer_unordered(cfg.concurrency)
        .collect()
        .await;
    bar.finish_and_clear();
    for (f, r) in read {
        match r {
            Ok((inspected, fetched)) => {
                summary.bytes_fetched += fetched;
                let found = inspected.map(|i| (i.format, i.schema)).map_err(|e| e.to_string());
                current.push(FileState {
                    path: f.path,
                    size: f.size,
                    tag: f.tag,
                    found,
                    table: None,
                    partition_values: Vec::new(),
                });
            }
            Err(reason) => {
                if let Some(s) = stored.get(f.path.as_str()) {
                    current.push((*s).clone()); // keep what we knew; read again next time
                }
                summary.errors.push(Problem { path: f.path, reason });
            }
        }
    }
    current.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &current {
        if let Err(reason) = &f.found {
            summary.errors.push(Problem { path: f.path.clone(), reason: reason.clone() });
        }
    }
    summary.errors.sort_by(|a, b| a.path.cmp(&b.path));
    let current_paths: std::collections::HashSet<&str> = current.iter().map(|f| f.path.as_str()).collect();
    summary.vanished = previous.iter().filter(|f| !current_paths.contains(f.path.as_str())).count();

    let entries: Vec<FileEntry> = current
        .iter()
        .filter_map(|f| {
            let (format, schema) = f.found.as_ref().ok()?;
            Some(FileEntry { path: f.path.clone(), size: f.size, format: *format, schema: schema.clone() })
        })
        .collect();
    let grouping = group(&entries, &group_opts)?;
    summary.set_aside = grouping.set_aside.clone();

    let (existing, existing_partitions) = {
        let (db, root) = (db.clone(), root.clone());
        blocking(&store, move |s| {
            let tables = s.list_tables(Some(&db))?;
            let mut parts = std::collections::HashMap::new();
            for t in tables.iter().filter(|t| t.location.starts_with(&root)) {
                parts.insert(t.name.clone(), s.partitions(&db, &t.name)?);
            }
            Ok((tables, parts))
        })
        .await?
    };
    let p = plan(&PlanInput {
        database: &db,
        root: &root,
        now_ms: now_ms(),
        policy: cfg.policy,
        existing: &existing,
        existing_partitions: &existing_partitions,
        previous: &previous,
        current: &current,
        grouping: &grouping,
    });
    let Plan { changes, created, updated, deprecated, partitions_added, schema_changes, warnings } = p;
    blocking(&store, move |s| s.apply(&changes)).await?;
    summary.tables_created = created;
    summary.tables_updated = updated;
    summary.tables_deprecated = deprecated;
    summary.partitions_added = partitions_added;
    summary.schema_changes = schema_changes;
    summary.warnings = warnings;
    summary.duration = started.elapsed();
    Ok(summary)
}

/// The trigger a runner calls after a sink committed new objects: one background task per
/// crawl root that recrawls (incrementally) after each [`Recrawler::objects_committed`];
/// notifications that arrive during a crawl make exactly one more crawl. Each outcome goes to
/// `on_done` (log it). [`Recrawler::shutdown`] lets a crawl in progress finish and ends the
/// task; dropping the `Recrawler` instead aborts it (a crawl's changes are applied in one
/// transaction or not at all, but an abandoned transaction may still be committing).
pub struct Recrawler {
    notify: Arc<tokio::sync::Notify>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Recrawler {
    /// Starts the task (on the current tokio runtime).
    pub fn spawn(
        store: Arc<dyn Store>,
        location: Location,
        cfg: CrawlConfig,
        mut on_done: impl FnMut(Result<CrawlSummary, CrawlError>) + Send + 'static,
    ) -> Recrawler {
        use std::sync::atomic::Ordering;
        let notify = Arc::new(tokio::sync::Notify::new());
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (n, stop) = (notify.clone(), stopping.clone());
        let task = tokio::spawn(async move {
            loop {
                n.notified().await;
                if stop.load(Ordering::Acquire) {
                    return;
                }
                on_done(crawl(store.clone(), &location, &cfg).await);
            }
        });
        Recrawler { notify, stopping, task: Some(task) }
    }

    /// New objects landed under the root: crawl (soon, once).
    pub fn objects_committed(&self) {
        self.notify.notify_one();
    }

    /// Stops the task after the crawl in progress, if any, has finished (pending
    /// notifications are dropped), so that nothing else writes this root's tables afterwards.
    pub async fn shutdown(mut self) {
        self.stopping.store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Recrawler {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
