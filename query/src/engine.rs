//! The query engine: one SQL text in, a bounded result and its statistics out.
//!
//! ```text
//!  SQL ──▶ parse ──▶ read-only check ──▶ table references ──▶ catalog store ──▶ providers
//!                     (queries only)      ("db"."table")       (blocking pool)    (file lists)
//!      ──▶ plan ──▶ verify (no DDL/DML/SET) ──▶ execute under a memory pool and a timeout
//!      ──▶ batches (≤ max_result_rows) + statistics (rows, bytes scanned, files pruned)
//! ```
//!
//! Every query gets its own `SessionContext`, memory pool and statistics, so queries never
//! share state, and a query only sees the tables it names: they are loaded from the store
//! (which may be PostgreSQL, whose client blocks — hence `spawn_blocking`) before planning.
//!
//! ## Read-only
//!
//! Only `SELECT`/`WITH`/`VALUES` queries, `EXPLAIN` of one, `SHOW TABLES|COLUMNS` and
//! `DESCRIBE` are accepted; everything else is refused before planning, and the plan is
//! verified again with DDL, DML and statements disallowed. There are no functions that read
//! files or URLs (DataFusion's URL tables are off), and every table's files are checked to be
//! inside its catalog location; S3 is reached through a store that refuses writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::common::TableReference;
use datafusion::datasource::empty::EmptyTable;
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, FileMetadataCache};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanVisitor, accept};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::StreamExt;
use ticklake_catalog::store::{Store, validate_name};
use tokio::sync::Mutex;

use crate::error::QueryError;
use crate::s3::{ReadOnlyS3, S3Config};
use crate::table::{CatalogTable, Location, ScanStats};

/// Memory for parsed Parquet footers and page indexes kept between queries.
const METADATA_CACHE_BYTES: usize = 64 << 20;

/// The DataFusion catalog every database is a schema of.
pub const CATALOG: &str = "ticklake";

/// Bounds and defaults of every query.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// The database unqualified table names resolve in.
    pub default_database: String,
    /// Memory a query may hold (hash tables, sorts, buffered batches). No spilling: beyond
    /// this the query fails with a clear error.
    pub memory_limit_bytes: usize,
    /// Wall time a query may run, planning included.
    pub timeout_ms: u64,
    /// Rows a result may hold.
    pub max_result_rows: usize,
    /// Tables one query may name.
    pub max_tables_per_query: usize,
    /// Threads (partitions) a query uses; 0 = the number of cores.
    pub target_partitions: usize,
    /// Evaluate data-column filters inside the Parquet reader (late materialization: the
    /// other columns are decoded only for rows that pass). On by default: it takes the
    /// OHLCV benchmark's `kind = 'trade'` filter off the critical path (see BENCHMARKS.md).
    pub parquet_filter_pushdown: bool,
    /// How S3 locations are reached.
    pub s3: S3Config,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            default_database: "default".into(),
            memory_limit_bytes: 2 << 30,
            timeout_ms: 300_000,
            max_result_rows: 1_000_000,
            max_tables_per_query: 64,
            target_partitions: 0,
            parquet_filter_pushdown: true,
            s3: S3Config::default(),
        }
    }
}

impl EngineOptions {
    pub fn validate(&self) -> Result<(), QueryError> {
        let bad = |option, reason: &str| Err(QueryError::Options { option, reason: reason.into() });
        if self.memory_limit_bytes < 1 << 20 {
            return bad("memory_limit_bytes", "must be at least 1 MiB");
        }
        if !(1..=86_400_000).contains(&self.timeout_ms) {
            return bad("timeout_ms", "must be 1 ms to 24 h");
        }
        if !(1..=100_000_000).contains(&self.max_result_rows) {
            return bad("max_result_rows", "must be 1 to 100,000,000");
        }
        if !(1..=10_000).contains(&self.max_tables_per_query) {
            return bad("max_tables_per_query", "must be 1 to 10,000");
        }
        if self.default_database.is_empty() {
            return bad("default_database", "must not be empty");
        }
        Ok(())
    }
}

/// What a query measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueryStats {
    pub rows: u64,
    /// Bytes read from files: Parquet's own count where it reports one, else the size of the
    /// JSON/CSV files scanned.
    pub bytes_scanned: u64,
    pub files_total: u64,
    pub files_scanned: u64,
    pub files_pruned: u64,
    pub planning_ms: u64,
    pub execution_ms: u64,
}

/// A finished query.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub stats: QueryStats,
}

/// Per-query overrides.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub database: Option<String>,
    /// Lower than the engine's `timeout_ms` (a larger value is cut to it; 0 counts as 1).
    pub timeout_ms: Option<u64>,
    /// Lower than the engine's `memory_limit_bytes` (a larger value is cut to it; at least 1 MiB).
    pub memory_limit_bytes: Option<usize>,
}

/// The engine: a catalog store and the options. Cheap to share (`Arc`).
pub struct Engine {
    store: Arc<dyn Store>,
    opts: EngineOptions,
    s3_client: Mutex<Option<aws_sdk_s3::Client>>,
    /// Parsed Parquet footers and page indexes, shared by every query of this engine.
    metadata_cache: Arc<FileMetadataCache>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("opts", &self.opts).finish_non_exhaustive()
    }
}

/// Refuses every statement that is not a query (see the module documentation).
pub fn check_read_only(statement: &DfStatement) -> Result<(), QueryError> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::Query(_)
            | SqlStatement::ShowTables { .. }
            | SqlStatement::ShowColumns { .. }
            | SqlStatement::ExplainTable { .. } => Ok(()),
            SqlStatement::Explain { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(_) => Ok(()),
                other => Err(QueryError::ReadOnly(format!("only queries can be explained, not: {}", head(other)))),
            },
            other => Err(QueryError::ReadOnly(format!("only queries are allowed, not: {}", head(other)))),
        },
        DfStatement::Explain(e) => check_read_only(&e.statement),
        DfStatement::CreateExternalTable(_) => Err(QueryError::ReadOnly("CREATE EXTERNAL TABLE is not allowed".into())),
        DfStatement::CopyTo(_) => Err(QueryError::ReadOnly("COPY is not allowed".into())),
        DfStatement::Reset(_) => Err(QueryError::ReadOnly("RESET is not allowed".into())),
    }
}

/// The first words of a statement, for messages.
fn head(s: &impl std::fmt::Display) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    words.join(" ")
}

struct BytesScanned(u64, bool);

impl ExecutionPlanVisitor for BytesScanned {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, plan: &dyn ExecutionPlan) -> Result<bool, Self::Error> {
        if let Some(m) = plan.metrics()
            && let Some(v) = m.sum_by_name("bytes_scanned")
        {
            self.0 += v.as_usize() as u64;
            self.1 = true;
        }
        Ok(true)
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, opts: EngineOptions) -> Result<Self, QueryError> {
        opts.validate()?;
        let metadata_cache: Arc<FileMetadataCache> =
            Arc::new(DefaultCache::new(METADATA_CACHE_BYTES).with_name("ticklake-parquet-metadata"));
        Ok(Engine { store, opts, s3_client: Mutex::new(None), metadata_cache })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn session(&self, database: &str, memory_limit: usize) -> Result<SessionContext, QueryError> {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, database)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true);
        if self.opts.target_partitions > 0 {
            config = config.with_target_partitions(self.opts.target_partitions);
        }
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = self.opts.parquet_filter_pushdown;
        parquet.reorder_filters = self.opts.parquet_filter_pushdown;
        let caches = CacheManagerConfig::default()
            .with_file_metadata_cache(Some(Arc::clone(&self.metadata_cache)))
            .with_metadata_cache_limit(METADATA_CACHE_BYTES);
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(caches)
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(memory_limit)))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(|e| QueryError::Execution(e.to_string()))?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        crate::functions::register(&ctx);
        Ok(ctx)
    }

    async fn s3(&self) -> aws_sdk_s3::Client {
        let mut guard = self.s3_client.lock().await;
        if let Some(c) = guard.as_ref() {
            return c.clone();
        }
        let c = self.opts.s3.client().await;
        *guard = Some(c.clone());
        c
    }

    /// Loads the named tables from the store into a fresh catalog of `ctx`.
    async fn register_tables(
        &self,
        ctx: &SessionContext,
        refs: Vec<TableReference>,
        database: &str,
        stats: Arc<ScanStats>,
    ) -> Result<(), QueryError> {
        let mut wanted: BTreeMap<(String, String), ()> = BTreeMap::new();
        let mut information_schema = false;
        for r in refs {
            let (schema, table) = match &r {
                TableReference::Bare { table } => (database.to_string(), table.to_string()),
                TableReference::Partial { schema, table } => (schema.to_string(), table.to_string()),
                TableReference::Full { catalog, schema, table } => {
                    if catalog.as_ref() != CATALOG {
                        return Err(QueryError::NoSuchTable(format!("{catalog}.{schema}.{table}")));
                    }
                    (schema.to_string(), table.to_string())
                }
            };
            if schema == "information_schema" {
                information_schema = true;
                continue;
            }
            // Table functions (`generate_series`, `range`) are reported as references too.
            if matches!(r, TableReference::Bare { .. }) && ctx.state().table_functions().contains_key(table.as_str()) {
                continue;
            }
            if validate_name("database", &schema).is_err() || validate_name("table", &table).is_err() {
                // Paths and URLs (`SELECT * FROM '/etc/passwd'`) are names like any other here.
                return Err(QueryError::NoSuchTable(r.to_string()));
            }
            wanted.insert((schema, table), ());
        }
        if wanted.len() > self.opts.max_tables_per_query {
            return Err(QueryError::Options {
                option: "max_tables_per_query",
                reason: format!(
                    "the query names {} tables, more than {}",
                    wanted.len(),
                    self.opts.max_tables_per_query
                ),
            });
        }
        let store = Arc::clone(&self.store);
        let keys: Vec<(String, String)> = wanted.into_keys().collect();
        let loaded = tokio::task::spawn_blocking(move || {
            // information_schema shows every table's columns: their records, not their files.
            let mut described = Vec::new();
            if information_schema {
                // Records only (no file lists), so every table is listed: a cut list would
                // answer SHOW TABLES wrongly without saying so.
                described = store.list_tables(None).map_err(|e| QueryError::Catalog(e.to_string()))?;
            }
            let mut out = Vec::new();
            for (db, name) in keys {
                let record = store.get_table(&db, &name).map_err(|e| QueryError::Catalog(e.to_string()))?;
                let Some(record) = record else {
                    return Err(QueryError::NoSuchTable(format!("{db}.{name}")));
                };
                let files = store.table_files(&db, &name).map_err(|e| QueryError::Catalog(e.to_string()))?;
                out.push((record, files));
            }
            Ok((out, described))
        })
        .await
        .map_err(|e| QueryError::Catalog(format!("catalog task failed: {e}")))??;

        let catalog = Arc::new(MemoryCatalogProvider::new());
        let mut schemas: HashMap<String, Arc<MemorySchemaProvider>> = HashMap::new();
        // The default database exists even when empty, so unqualified names give "not found"
        // from the catalog rather than a missing schema.
        schemas.insert(database.to_string(), Arc::new(MemorySchemaProvider::new()));
        let (loaded, described) = loaded;
        for record in described {
            let schema =
                schemas.entry(record.database.clone()).or_insert_with(|| Arc::new(MemorySchemaProvider::new()));
            let provider = EmptyTable::new(Arc::new(crate::table::arrow_schema(&record)));
            schema
                .register_table(record.name.clone(), Arc::new(provider))
                .map_err(|e| QueryError::Execution(e.to_string()))?;
        }
        for (record, files) in loaded {
            let table = CatalogTable::new(&record, &files, Arc::clone(&stats))
                .map_err(|e| QueryError::from_datafusion(e, self.opts.memory_limit_bytes))?;
            if let Location::S3 { bucket } = table.location() {
                let store = ReadOnlyS3::new(self.s3().await, bucket.clone());
                ctx.register_object_store(store.url().as_ref(), Arc::new(store));
            }
            let schema =
                schemas.entry(record.database.clone()).or_insert_with(|| Arc::new(MemorySchemaProvider::new()));
            // Replaces the schema-only entry information_schema may have made.
            let _ = schema.deregister_table(&record.name);
            schema
                .register_table(record.name.clone(), Arc::new(table))
                .map_err(|e| QueryError::Execution(e.to_string()))?;
        }
        for (name, schema) in schemas {
            catalog.register_schema(&name, schema).map_err(|e| QueryError::Execution(e.to_string()))?;
        }
        ctx.register_catalog(CATALOG, catalog);
        Ok(())
    }

    /// Runs one query to completion (see the module documentation).
    pub async fn execute(&self, sql: &str, q: &QueryOptions) -> Result<QueryOutput, QueryError> {
        // A query may ask for less than the engine's bounds, never more (nor zero).
        let timeout_ms = q.timeout_ms.map_or(self.opts.timeout_ms, |t| t.clamp(1, self.opts.timeout_ms));
        match tokio::time::timeout(Duration::from_millis(timeout_ms), self.execute_inner(sql, q)).await {
            Ok(r) => r,
            Err(_) => Err(QueryError::Timeout { timeout_ms }),
        }
    }

    async fn execute_inner(&self, sql: &str, q: &QueryOptions) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let database = q.database.clone().unwrap_or_else(|| self.opts.default_database.clone());
        let memory_limit = q
            .memory_limit_bytes
            .map_or(self.opts.memory_limit_bytes, |m| m.clamp(1 << 20, self.opts.memory_limit_bytes.max(1 << 20)));
        let df_err = |e| QueryError::from_datafusion(e, memory_limit);
        let ctx = self.session(&database, memory_limit)?;
        let state = ctx.state();
        let statement = state.sql_to_statement(sql, &datafusion::config::Dialect::Generic).map_err(df_err)?;
        check_read_only(&statement)?;
        let refs = state.resolve_table_references(&statement).map_err(df_err)?;
        let stats = Arc::new(ScanStats::default());
        self.register_tables(&ctx, refs, &database, Arc::clone(&stats)).await?;
        let state = ctx.state();
        let plan = state.statement_to_plan(statement).await.map_err(df_err)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| QueryError::ReadOnly(e.strip_backtrace()))?;
        let df = ctx.execute_logical_plan(plan).await.map_err(df_err)?;
        let physical = df.create_physical_plan().await.map_err(df_err)?;
        let planning_ms = started.elapsed().as_millis() as u64;
        let schema = physical.schema();
        let mut stream =
            datafusion::physical_plan::execute_stream(Arc::clone(&physical), ctx.task_ctx()).map_err(df_err)?;
        let mut batches = Vec::new();
        let mut rows = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(df_err)?;
            rows += batch.num_rows();
            if rows > self.opts.max_result_rows {
                return Err(QueryError::ResultTooLarge { limit: self.opts.max_result_rows });
            }
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        let mut visitor = BytesScanned(0, false);
        let _ = accept(physical.as_ref(), &mut visitor);
        let bytes_scanned = if visitor.1 { visitor.0 } else { stats.bytes_in_scanned_files.load(Ordering::Relaxed) };
        let stats = QueryStats {
            rows: rows as u64,
            bytes_scanned,
            files_total: stats.files_total.load(Ordering::Relaxed),
            files_scanned: stats.files_scanned.load(Ordering::Relaxed),
            files_pruned: stats.files_pruned.load(Ordering::Relaxed),
            planning_ms,
            execution_ms: started.elapsed().as_millis() as u64 - planning_ms,
        };
        Ok(QueryOutput { schema, batches, stats })
    }
}
