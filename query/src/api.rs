//! The HTTP API, in Athena's manner: submit a query and get an execution id, poll it, page its
//! results as JSON or CSV, cancel it; history and saved (named) queries.
//!
//! | method and path | does |
//! |---|---|
//! | `POST /v1/queries` `{"query", "database"?, "timeout_ms"?, "memory_limit_bytes"?}` | starts an execution → `{"query_execution_id"}` |
//! | `GET /v1/queries?max_results=N` | the history, newest first |
//! | `GET /v1/queries/{id}` | state (`QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELLED`), reason, times, statistics |
//! | `GET /v1/queries/{id}/results?format=json\|csv&max_results=N&next_token=T` | one page of a succeeded query (409 before) |
//! | `POST /v1/queries/{id}/cancel` | cancels a queued or running query |
//! | `GET /v1/named-queries?database=D` | saved queries |
//! | `POST /v1/named-queries` `{"database", "name", "description"?, "query"}` | saves (replaces) one |
//! | `GET` / `DELETE /v1/named-queries/{database}/{name}` | one saved query |
//! | `POST /v1/named-queries/{database}/{name}/run` | starts an execution of it |
//! | `GET /v1/tables?database=D` | the catalog's tables |
//! | `GET /healthz` | `ok` |
//!
//! Errors are `{"error": "…"}` with 400 (bad request, SQL refused), 404, 409 (results not
//! ready) or 429 (queue full). Bounds: [`ApiOptions`] — concurrent queries (others wait in
//! `QUEUED`), queued queries, executions kept in the history (the oldest finished ones are
//! dropped with their results), rows per page. Results live in memory, bounded by the
//! engine's `max_result_rows`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ticklake_catalog::store::NamedQuery;
use tokio::sync::Semaphore;

use crate::engine::{Engine, QueryOptions, QueryStats};
use crate::error::QueryError;
use crate::output::{OutputFormat, render};

/// Bounds of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiOptions {
    pub max_concurrent_queries: usize,
    /// Queued plus running executions; more are refused with 429.
    pub max_pending_queries: usize,
    /// Executions kept (with their results) for polling and the history.
    pub max_history: usize,
    pub default_page_rows: usize,
    pub max_page_rows: usize,
    /// Bytes of one request body.
    pub max_request_bytes: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_concurrent_queries: 4,
            max_pending_queries: 64,
            max_history: 1_000,
            default_page_rows: 1_000,
            max_page_rows: 10_000,
            max_request_bytes: 1 << 20,
        }
    }
}

/// The state of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl ExecState {
    fn finished(self) -> bool {
        matches!(self, ExecState::Succeeded | ExecState::Failed | ExecState::Cancelled)
    }
}

/// What `GET /v1/queries/{id}` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    pub query_execution_id: String,
    pub query: String,
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_query: Option<String>,
    pub state: ExecState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_change_reason: Option<String>,
    pub submitted_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<QueryStats>,
}

struct Entry {
    exec: Execution,
    result: Option<Arc<RecordBatch>>,
    abort: Option<tokio::task::AbortHandle>,
}

struct Inner {
    engine: Arc<Engine>,
    opts: ApiOptions,
    running: Arc<Semaphore>,
    executions: Mutex<Executions>,
}

#[derive(Default)]
struct Executions {
    by_id: BTreeMap<String, Entry>,
    /// Ids, oldest first.
    order: VecDeque<String>,
}

impl Executions {
    fn pending(&self) -> usize {
        self.by_id.values().filter(|e| !e.exec.state.finished()).count()
    }

    /// Drops the oldest finished executions beyond `max`.
    fn trim(&mut self, max: usize) {
        let mut i = 0;
        while self.by_id.len() > max && i < self.order.len() {
            let id = &self.order[i];
            if self.by_id.get(id).is_some_and(|e| e.exec.state.finished()) {
                let id = self.order.remove(i).unwrap_or_default();
                self.by_id.remove(&id);
            } else {
                i += 1;
            }
        }
    }
}

/// The API's state; [`router`](Api::router) serves it.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An error response.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn not_found(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, msg.into())
}

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartQuery {
    query: String,
    database: Option<String>,
    timeout_ms: Option<u64>,
    memory_limit_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveNamedQuery {
    database: String,
    name: String,
    #[serde(default)]
    description: String,
    query: String,
}

#[derive(Debug, Deserialize)]
struct ResultsParams {
    format: Option<String>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListParams {
    max_results: Option<usize>,
    database: Option<String>,
}

#[derive(Serialize)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
}

#[derive(Serialize)]
struct ResultsPage<'a> {
    columns: Vec<Column>,
    rows: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    total_rows: usize,
}

impl Api {
    pub fn new(engine: Arc<Engine>, opts: ApiOptions) -> Result<Self, QueryError> {
        if opts.max_concurrent_queries == 0 || opts.max_pending_queries < opts.max_concurrent_queries {
            return Err(QueryError::Options {
                option: "max_pending_queries",
                reason: "must be at least max_concurrent_queries, which must be at least 1".into(),
            });
        }
        if opts.max_history < opts.max_pending_queries || opts.default_page_rows == 0 || opts.max_page_rows == 0 {
            return Err(QueryError::Options {
                option: "max_history",
                reason: "must be at least max_pending_queries; page sizes must be at least 1".into(),
            });
        }
        let running = Arc::new(Semaphore::new(opts.max_concurrent_queries));
        Ok(Api(Arc::new(Inner { engine, opts, running, executions: Mutex::new(Executions::default()) })))
    }

    /// The routes of the module documentation.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/v1/queries", post(start_query).get(list_queries))
            .route("/v1/queries/{id}", get(get_query))
            .route("/v1/queries/{id}/results", get(get_results))
            .route("/v1/queries/{id}/cancel", post(cancel_query))
            .route("/v1/named-queries", get(list_named).post(save_named))
            .route("/v1/named-queries/{database}/{name}", get(get_named).delete(delete_named))
            .route("/v1/named-queries/{database}/{name}/run", post(run_named))
            .route("/v1/tables", get(list_tables))
            .layer(axum::extract::DefaultBodyLimit::max(self.0.opts.max_request_bytes))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Executions> {
        // A panic while holding the lock is a bug elsewhere; the data stays usable.
        self.0.executions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an execution; returns its id.
    pub fn start(&self, sql: String, q: QueryOptions, named_query: Option<String>) -> Result<String, ApiError> {
        if sql.trim().is_empty() {
            return Err(bad("the query is empty"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let database = q.database.clone().unwrap_or_else(|| self.0.engine.options().default_database.clone());
        {
            let mut ex = self.lock();
            if ex.pending() >= self.0.opts.max_pending_queries {
                return Err(ApiError(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{} queries are queued or running (max_pending_queries)", self.0.opts.max_pending_queries),
                ));
            }
            let exec = Execution {
                query_execution_id: id.clone(),
                query: sql.clone(),
                database,
                named_query,
                state: ExecState::Queued,
                state_change_reason: None,
                submitted_ms: now_ms(),
                completed_ms: None,
                statistics: None,
            };
            ex.by_id.insert(id.clone(), Entry { exec, result: None, abort: None });
            ex.order.push_back(id.clone());
            ex.trim(self.0.opts.max_history);
        }
        let api = self.clone();
        let task_id = id.clone();
        let handle = tokio::spawn(async move {
            let Ok(_permit) = api.0.running.clone().acquire_owned().await else { return };
            api.update(&task_id, |e| {
                if e.exec.state == ExecState::Queued {
                    e.exec.state = ExecState::Running;
                }
            });
            let outcome = api.0.engine.execute(&sql, &q).await;
            let result = match outcome {
                Ok(out) => match concat_batches(&out.schema, &out.batches) {
                    Ok(batch) => Ok((batch, out.stats)),
                    Err(e) => Err(QueryError::Execution(e.to_string())),
                },
                Err(e) => Err(e),
            };
            api.update(&task_id, move |e| {
                if e.exec.state.finished() {
                    return;
                }
                e.exec.completed_ms = Some(now_ms());
                e.abort = None;
                match result {
                    Ok((batch, stats)) => {
                        e.exec.state = ExecState::Succeeded;
                        e.exec.statistics = Some(stats);
                        e.result = Some(Arc::new(batch));
                    }
                    Err(err) => {
                        e.exec.state = ExecState::Failed;
                        e.exec.state_change_reason = Some(err.to_string());
                    }
                }
            });
        });
        self.update(&id, |e| {
            if !e.exec.state.finished() {
                e.abort = Some(handle.abort_handle());
            }
        });
        Ok(id)
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.lock().by_id.get_mut(id) {
            f(e);
        }
    }

    /// Cancels an execution; false when it had already finished.
    pub fn cancel(&self, id: &str) -> Result<bool, ApiError> {
        let mut ex = self.lock();
        let Some(e) = ex.by_id.get_mut(id) else { return Err(not_found(format!("no query execution {id}"))) };
        if e.exec.state.finished() {
            return Ok(false);
        }
        if let Some(a) = e.abort.take() {
            a.abort();
        }
        e.exec.state = ExecState::Cancelled;
        e.exec.state_change_reason = Some("cancelled by request".into());
        e.exec.completed_ms = Some(now_ms());
        Ok(true)
    }

    /// One execution.
    pub fn execution(&self, id: &str) -> Option<Execution> {
        self.lock().by_id.get(id).map(|e| e.exec.clone())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ticklake_catalog::store::Store) -> Result<T, ticklake_catalog::store::StoreError>
        + Send
        + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(self.0.engine.store());
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| internal(format!("catalog task failed: {e}")))?
            .map_err(|e| internal(format!("catalog: {e}")))
    }
}

async fn start_query(
    State(api): State<Api>,
    body: Result<Json<StartQuery>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
    let q = QueryOptions {
        database: body.database,
        timeout_ms: body.timeout_ms,
        memory_limit_bytes: body.memory_limit_bytes,
    };
    let id = api.start(body.query, q, None)?;
    Ok(Json(serde_json::json!({ "query_execution_id": id })))
}

async fn list_queries(State(api): State<Api>, Query(p): Query<ListParams>) -> Json<serde_json::Value> {
    let max = p.max_results.unwrap_or(50).min(api.0.opts.max_history);
    let ex = api.lock();
    let list: Vec<&Execution> =
        ex.order.iter().rev().filter_map(|id| ex.by_id.get(id)).map(|e| &e.exec).take(max).collect();
    Json(serde_json::json!({ "executions": list }))
}

async fn get_query(State(api): State<Api>, Path(id): Path<String>) -> Result<Json<Execution>, ApiError> {
    api.execution(&id).map(Json).ok_or_else(|| not_found(format!("no query execution {id}")))
}

async fn cancel_query(State(api): State<Api>, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let cancelled = api.cancel(&id)?;
    Ok(Json(serde_json::json!({ "cancelled": cancelled })))
}

async fn get_results(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(p): Query<ResultsParams>,
) -> Result<Response, ApiError> {
    let format: OutputFormat = match p.format.as_deref() {
        None => OutputFormat::Json,
        Some(f) => f.parse().map_err(bad)?,
    };
    if format == OutputFormat::Table {
        return Err(bad("format must be json or csv"));
    }
    let (state, reason, batch) = {
        let ex = api.lock();
        let e = ex.by_id.get(&id).ok_or_else(|| not_found(format!("no query execution {id}")))?;
        (e.exec.state, e.exec.state_change_reason.clone(), e.result.clone())
    };
    let Some(batch) = batch else {
        let msg = match state {
            ExecState::Failed | ExecState::Cancelled => {
                format!("query execution {id} is {state:?}: {}", reason.unwrap_or_default())
            }
            _ => format!("query execution {id} has not finished ({state:?})"),
        };
        return Err(ApiError(StatusCode::CONFLICT, msg));
    };
    let page = p.max_results.unwrap_or(api.0.opts.default_page_rows);
    if page == 0 || page > api.0.opts.max_page_rows {
        return Err(bad(format!("max_results must be 1 to {}", api.0.opts.max_page_rows)));
    }
    let offset: usize = match p.next_token.as_deref() {
        None => 0,
        Some(t) => t.parse().map_err(|_| bad(format!("invalid next_token {t:?}")))?,
    };
    let total = batch.num_rows();
    if offset > total {
        return Err(bad(format!("invalid next_token {offset}: the result has {total} rows")));
    }
    let len = page.min(total - offset);
    let slice = batch.slice(offset, len);
    let next = (offset + len < total).then(|| (offset + len).to_string());
    let schema = batch.schema();
    let body = render(std::slice::from_ref(&slice), &schema, format).map_err(|e| internal(e.to_string()))?;
    match format {
        OutputFormat::Csv => {
            let mut resp = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
            if let Some(n) = next {
                if let Ok(v) = n.parse() {
                    resp.headers_mut().insert("x-next-token", v);
                }
            }
            Ok(resp)
        }
        _ => {
            let text = String::from_utf8(body).map_err(|e| internal(e.to_string()))?;
            let rows = RawValue::from_string(text.trim_end().to_string()).map_err(|e| internal(e.to_string()))?;
            let columns = schema
                .fields()
                .iter()
                .map(|f| Column { name: f.name().clone(), data_type: f.data_type().to_string() })
                .collect();
            Ok(Json(ResultsPage { columns, rows: &rows, next_token: next, total_rows: total }).into_response())
        }
    }
}

async fn list_named(State(api): State<Api>, Query(p): Query<ListParams>) -> Result<Json<serde_json::Value>, ApiError> {
    let db = p.database.clone();
    let list = api.blocking(move |s| s.named_queries(db.as_deref())).await?;
    Ok(Json(serde_json::json!({ "named_queries": list.iter().map(named_json).collect::<Vec<_>>() })))
}

fn named_json(q: &NamedQuery) -> serde_json::Value {
    serde_json::json!({ "database": q.database, "name": q.name, "description": q.description, "query": q.sql })
}

async fn save_named(
    State(api): State<Api>,
    body: Result<Json<SaveNamedQuery>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(b) = body.map_err(|e| bad(e.body_text()))?;
    if b.name.is_empty() || b.name.len() > 128 || b.database.is_empty() || b.query.trim().is_empty() {
        return Err(bad("database, name (at most 128 characters) and query are required"));
    }
    let q = NamedQuery { database: b.database, name: b.name, description: b.description, sql: b.query };
    let json = named_json(&q);
    api.blocking(move |s| s.save_named_query(&q)).await?;
    Ok(Json(json))
}

async fn find_named(api: &Api, database: String, name: String) -> Result<NamedQuery, ApiError> {
    let (db, n) = (database.clone(), name.clone());
    let list = api.blocking(move |s| s.named_queries(Some(&db))).await?;
    list.into_iter().find(|q| q.name == n).ok_or_else(|| not_found(format!("no named query {database}.{name}")))
}

async fn get_named(
    State(api): State<Api>,
    Path((database, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(named_json(&find_named(&api, database, name).await?)))
}

async fn delete_named(
    State(api): State<Api>,
    Path((database, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (db, n) = (database.clone(), name.clone());
    if api.blocking(move |s| s.delete_named_query(&db, &n)).await? {
        Ok(Json(serde_json::json!({ "deleted": true })))
    } else {
        Err(not_found(format!("no named query {database}.{name}")))
    }
}

async fn run_named(
    State(api): State<Api>,
    Path((database, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = find_named(&api, database.clone(), name.clone()).await?;
    let opts = QueryOptions { database: Some(database.clone()), ..QueryOptions::default() };
    let id = api.start(q.sql, opts, Some(format!("{database}.{name}")))?;
    Ok(Json(serde_json::json!({ "query_execution_id": id })))
}

async fn list_tables(State(api): State<Api>, Query(p): Query<ListParams>) -> Result<Json<serde_json::Value>, ApiError> {
    let db = p.database.clone();
    let tables = api.blocking(move |s| s.list_tables(db.as_deref())).await?;
    let list: Vec<serde_json::Value> = tables
        .iter()
        .map(|t| {
            serde_json::json!({
                "database": t.database, "name": t.name, "location": t.location,
                "format": t.format.to_string(), "columns": t.schema.columns.len(),
                "partition_keys": t.partition_keys.iter().map(|k| k.name.clone()).collect::<Vec<_>>(),
                "schema_version": t.schema_version, "deprecated": t.deprecated,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "tables": list })))
}
