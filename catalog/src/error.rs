//! The crate's one error type.
//!
//! Every function that can refuse its input returns [`CatalogError`]; none panics on bad
//! bytes. A refusal names what was wrong and, for limits, which option bounds it, so the
//! message tells the user what to raise.

use std::path::PathBuf;

/// Why a file, an option or a crawl was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The content is not a format the crawler reads; `reason` says what was seen.
    #[error("unknown format: {0}")]
    UnknownFormat(String),

    /// A bound was hit: `what` exceeded `limit`, set by the option `option`.
    #[error("{what} exceeds the limit of {limit} (option `{option}`)")]
    Limit { what: String, limit: u64, option: &'static str },

    /// JSON that the sniffer accepted but that could not be read into a schema.
    #[error("invalid JSON: {0}")]
    Json(String),

    /// CSV that could not be read into a schema.
    #[error("invalid CSV: {0}")]
    Csv(String),

    /// A Parquet footer that could not be decoded.
    #[error("unreadable Parquet footer: {0}")]
    Parquet(String),

    /// The Parquet footer is larger than the tail the caller provided; read this many bytes
    /// from the end of the file and call again.
    #[error("the Parquet footer needs the last {bytes} bytes of the file")]
    NeedTail { bytes: u64 },

    /// The records were read but carry no column at all (`{}` objects).
    #[error("no columns: {0}")]
    NoColumns(String),

    /// An option is out of its range.
    #[error("invalid option `{option}`: {reason}")]
    Options { option: &'static str, reason: String },

    /// An exclusion glob that does not compile.
    #[error("invalid exclusion pattern {pattern:?}: {reason}")]
    Exclusion { pattern: String, reason: String },

    /// A file or folder of a local crawl could not be read.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl CatalogError {
    pub(crate) fn limit(what: impl Into<String>, limit: usize, option: &'static str) -> Self {
        CatalogError::Limit { what: what.into(), limit: limit as u64, option }
    }
}
