//! What can go wrong, and how it is reported.
//!
//! Two kinds of trouble are kept apart on purpose:
//!
//! * [`SourceError`] — the source cannot run at all: a configuration that makes no sense, a
//!   file that cannot be opened, a mapped column that is not in a file's header, a limit
//!   exceeded. These are returned as `Err` and the worker should stop (and say why).
//! * [`BadRow`] — one row of a replayed file cannot become a tick (a number that does not
//!   parse, an empty cell, a negative price, an impossible date). The row is skipped and
//!   reported; the replay goes on. Historical files are messy, and one bad line among
//!   millions must not stop a stream.
//!
//! Nothing in this crate panics on bad input; every refusal carries the file (and line) it
//! came from.

use std::fmt;
use std::path::PathBuf;

/// The source cannot be built or cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The spec is inconsistent or out of range (the message says which field and why).
    #[error("invalid source configuration: {0}")]
    Config(String),

    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A `files` entry is not a valid glob pattern.
    #[error("replay file pattern {pattern:?} is not a valid glob: {message}")]
    BadPattern { pattern: String, message: String },

    /// A `files` entry (glob or plain path) matches no file.
    #[error("replay file pattern {pattern:?} matches no file")]
    NoMatch { pattern: String },

    /// The format cannot be told from the file name.
    #[error(
        "{}: cannot tell the format from the file name (expected .csv, .csv.gz or .parquet); set `format: csv` or `format: parquet`",
        file.display()
    )]
    UnknownFormat { file: PathBuf },

    /// A column the mapping needs is not in the file's header (or Parquet schema).
    #[error(
        "{}: column {column:?} (mapped to tick field `{field}`) is not in the file; its columns are: {}",
        file.display(),
        available.join(", ")
    )]
    MissingColumn { file: PathBuf, column: String, field: &'static str, available: Vec<String> },

    /// A Parquet column has a type that cannot hold the tick field it is mapped to.
    #[error("{}: column {column:?} has type {data_type}, which cannot hold tick field `{field}`", file.display())]
    ColumnType { file: PathBuf, column: String, field: &'static str, data_type: String },

    /// The file is not valid CSV or Parquet (beyond a single bad row).
    #[error("{}: {message}", file.display())]
    Format { file: PathBuf, message: String },

    /// A limit was reached; the message names the limit and how to stay under it.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

impl SourceError {
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        SourceError::Config(msg.into())
    }
}

/// The kind of file a [`BadRow`] came from, which says how to read its `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Parquet,
}

/// One row of a replayed file that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The file, as expanded from the spec's `files`.
    pub file: PathBuf,
    /// For CSV, the 1-based line number counting the header (the first data row is line 2;
    /// a quoted field spanning lines counts where the record starts). For Parquet, the 0-based
    /// row index within the file.
    pub line: u64,
    /// What is wrong, naming the column, e.g. ``column `Open`: "abc" is not a number``.
    pub reason: String,
    /// Which of the two meanings of `line` applies.
    pub format: FileFormat,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format {
            FileFormat::Csv => write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason),
            FileFormat::Parquet => write!(f, "{} row {}: {}", self.file.display(), self.line, self.reason),
        }
    }
}
