//! # ticklake-query
//!
//! SQL over the local catalog (issue #5): what Amazon Athena does for the Glue Data Catalog,
//! done by Apache DataFusion over `ticklake-catalog`'s store, for the local runner and any
//! S3-compatible store.
//!
//! ```text
//!   ticklake sql "SELECT …"  ─┐
//!   HTTP API (api)           ─┼─▶ Engine (engine) ──▶ catalog store: table, files, partitions
//!   local runner             ─┘        │                      │
//!                                      ▼                      ▼
//!                               DataFusion session ◀── CatalogTable (table): the table's files,
//!                               + functions              partition-pruned before any is opened
//!                                      │
//!                                      ▼
//!                           file:// or s3:// (s3: read-only store on aws-sdk-s3)
//! ```
//!
//! * [`engine`] — one query: parse, refuse anything that is not a query, load the tables it
//!   names, plan, run under a memory cap and a timeout, collect at most `max_result_rows`, and
//!   measure (rows, bytes scanned, files pruned).
//! * [`table`] — a catalog table as a DataFusion table provider, with partition pruning.
//! * [`functions`] — Trino's `max_by`, `min_by`, `date_format` and the tick helper `vwap`.
//! * [`named`] — the named queries shipped for Athena (`deploy/athena/*.sql`), rendered for a
//!   table and run here unchanged.
//! * [`api`] — the Athena-style HTTP API: submit, poll, page, cancel, history, named queries.
//! * [`output`] — results as a table, CSV or JSON.
//! * [`s3`] — the read-only object store over `aws-sdk-s3`.
//!
//! ## Invariants
//!
//! * Read-only: no statement but queries reaches the planner, the plan is verified again, and
//!   the only files a query opens are its tables' catalogued files (inside their locations).
//! * Bounded: every query has a memory pool without spilling, a timeout, a result-row cap and
//!   a cap on the tables it names; the API bounds concurrency, the queue and the history.
//! * The catalog store is only called from the blocking pool (PostgreSQL's client blocks).

pub mod api;
pub mod engine;
mod error;
pub mod functions;
pub mod named;
pub mod output;
pub mod s3;
pub mod table;

pub use api::{Api, ApiOptions};
pub use engine::{Engine, EngineOptions, QueryOptions, QueryOutput, QueryStats};
pub use error::QueryError;
pub use output::{OutputFormat, render};
