//! The crate's one error type.

use datafusion::error::DataFusionError;

/// Why a query was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL does not parse, or names something that does not exist.
    #[error("{0}")]
    Sql(String),

    /// A statement other than a query (DDL, DML, COPY, SET …): the engine is read-only.
    #[error("read-only: {0}")]
    ReadOnly(String),

    /// A table the query names is not in the catalog.
    #[error("table {0} is not in the catalog (see `ticklake catalog list`)")]
    NoSuchTable(String),

    /// The query ran longer than its timeout.
    #[error("the query ran longer than its timeout of {timeout_ms} ms (option `timeout_ms`)")]
    Timeout { timeout_ms: u64 },

    /// The query needed more memory than its cap.
    #[error("the query needed more than its memory cap of {limit_bytes} bytes (option `memory_limit_bytes`): {detail}")]
    MemoryCap { limit_bytes: usize, detail: String },

    /// The result has more rows than may be kept.
    #[error("the result has more than {limit} rows (option `max_result_rows`); add a LIMIT or aggregate")]
    ResultTooLarge { limit: usize },

    /// The query was cancelled.
    #[error("cancelled")]
    Cancelled,

    /// The catalog store failed.
    #[error("catalog: {0}")]
    Catalog(String),

    /// Execution failed (a file could not be read or decoded, …).
    #[error("{0}")]
    Execution(String),

    /// An option is out of its range.
    #[error("invalid option `{option}`: {reason}")]
    Options { option: &'static str, reason: String },
}

impl QueryError {
    /// Maps DataFusion's errors: resource exhaustion is the memory cap, planning errors are SQL
    /// errors, the rest execution errors.
    pub(crate) fn from_datafusion(e: DataFusionError, memory_limit_bytes: usize) -> Self {
        match e.find_root() {
            DataFusionError::ResourcesExhausted(detail) => {
                QueryError::MemoryCap { limit_bytes: memory_limit_bytes, detail: detail.clone() }
            }
            DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
                QueryError::Sql(e.strip_backtrace())
            }
            DataFusionError::NotImplemented(m) => QueryError::Sql(format!("not supported: {m}")),
            _ => QueryError::Execution(e.strip_backtrace()),
        }
    }
}
