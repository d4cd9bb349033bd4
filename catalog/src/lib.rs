//! # ticklake-catalog
//!
//! The pure core of ticklake's crawler (issue #5): what AWS Glue's crawler does to a folder of
//! files, as functions over bytes and lists.
//!
//! ```text
//!  file bytes ──▶ sniff ──▶ infer ──▶ FileEntry ──┐
//!  (head, tail)   format,    schema    (path,      ├──▶ group ──▶ tables (+ partitions)
//!                 compression          size,       │              files set aside, with reasons
//!                                      schema)  ───┘
//! ```
//!
//! * [`sniff`](mod@sniff) — which format a file is (JSON lines / one object / array of objects, CSV with
//!   its delimiter and header, Parquet), gzip or zstd around it, from its first bytes; anything
//!   else is [`Format::Unknown`] with a reason — reported, never guessed.
//! * [`infer`](mod@infer) — the schema of a sample (or of a Parquet footer), in Glue's type names, and how
//!   schemas of records and files merge (`int` → `bigint` → `double`, other conflicts →
//!   `string`, missing → nullable).
//! * [`group`](mod@group) — which files make which table: folder structure, schema similarity, Hive
//!   `key=value` partitions, exclusions, strays set aside.
//! * [`crawl`](mod@crawl) — the I/O edge: [`crawl_dir`] walks a local folder, reads bounded samples and
//!   calls the three above; [`inspect`] is the per-file pure step it uses.
//!
//! * [`path`](mod@path) — the percent-encoding between a file's relative path and its URL.
//! * [`store`](mod@store) and [`crawler`](mod@crawler) (feature `io`, on by default) — the catalog
//!   database (SQLite or PostgreSQL) and the incremental crawl of local folders and S3 prefixes
//!   that fills it. Without `io` the crate is the pure core alone, which is what the `cargo fuzz`
//!   targets in `fuzz/` build.
//!
//! ## Pure functions, I/O at the edges
//!
//! `sniff`, `infer` and `group` take bytes and values and never touch a file, a clock or the
//! network, so the S3 lister, the incremental recrawl and the fuzz targets of #5 can drive them
//! unchanged. They never panic on input: every refusal is a [`CatalogError`] or an
//! [`Format::Unknown`] reason.
//!
//! ## Limits
//!
//! Everything is bounded, and exceeding a bound is an error naming the option:
//! [`Limits`] (sample bytes, records, nesting depth, columns, Parquet footer bytes),
//! [`GroupOptions::max_schemas`], [`GroupOptions::max_folder_depth`] and
//! [`CrawlOptions::max_files`].
//!
//! The rules, each with its test, are tabulated in `catalog/README.md`.

pub mod crawl;
#[cfg(feature = "io")]
pub mod crawler;
mod error;
pub mod group;
pub mod infer;
pub mod path;
pub mod sniff;
#[cfg(feature = "io")]
pub mod store;
pub mod types;

pub use crawl::{CrawlOptions, CrawlReport, Inspected, Problem, crawl_dir, inspect, inspect_file};
pub use error::CatalogError;
pub use group::{
    Exclusions, FileEntry, GroupOptions, Grouping, Partition, PartitionKey, SetAside, Table, TableFormat, group,
    similarity,
};
pub use infer::{Inferred, epoch_unit, infer, infer_text, merge, merge_schemas, parquet_schema};
pub use sniff::{Compression, CsvDialect, FileSample, Format, JsonLayout, Sniffed, sniff};
pub use types::{DataType, EpochUnit, Field, Schema, TsRepr};

/// Whether the first CSV row is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderRule {
    /// Glue's rule: a header when every cell of the first row is a non-empty, distinct string
    /// and at least one column of the other rows is typed (not `string`).
    #[default]
    Detect,
    /// The first row is always the header.
    Always,
    /// There is never a header: columns are `col0`, `col1`, …
    Never,
}

/// Bounds on reading one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of (decompressed) content sniffed and inferred per file. Glue reads 1 MB; 64 KiB
    /// keeps a crawl of thousands of files cheap and is plenty for row-shaped data.
    pub sample_bytes: usize,
    /// Records read per file (Glue: 1,000).
    pub max_records: usize,
    /// Nesting of structs and arrays below a top-level column (a struct of scalars is 1).
    pub max_depth: usize,
    /// Fields per schema, nested ones included.
    pub max_columns: usize,
    /// Bytes of Parquet footer metadata decoded per file.
    pub max_footer_bytes: usize,
    /// How CSV headers are decided.
    pub csv_header: HeaderRule,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sample_bytes: 64 * 1024,
            max_records: 1_000,
            max_depth: 16,
            max_columns: 1_000,
            max_footer_bytes: 16 * 1024 * 1024,
            csv_header: HeaderRule::Detect,
        }
    }
}

impl Limits {
    /// Largest accepted `sample_bytes` (64 MiB).
    pub const MAX_SAMPLE_BYTES: usize = 64 * 1024 * 1024;
    /// Largest accepted `max_depth`: below serde_json's own recursion limit (128), so the
    /// crawler's error, not the parser's, names the problem.
    pub const MAX_DEPTH: usize = 100;

    /// Refuses values out of range.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let check = |ok: bool, option: &'static str, reason: &str| {
            if ok { Ok(()) } else { Err(CatalogError::Options { option, reason: reason.to_string() }) }
        };
        check((1..=Self::MAX_SAMPLE_BYTES).contains(&self.sample_bytes), "sample_bytes", "must be 1 B to 64 MiB")?;
        check((1..=1_000_000).contains(&self.max_records), "max_records", "must be 1 to 1,000,000")?;
        check((1..=Self::MAX_DEPTH).contains(&self.max_depth), "max_depth", "must be 1 to 100")?;
        check((1..=100_000).contains(&self.max_columns), "max_columns", "must be 1 to 100,000")?;
        check((1..=1 << 30).contains(&self.max_footer_bytes), "max_footer_bytes", "must be 1 B to 1 GiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_out_of_range_values_are_named() {
        Limits::default().validate().unwrap();
        let e = Limits { max_depth: 200, ..Limits::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("max_depth"), "{e}");
        let e = Limits { sample_bytes: 0, ..Limits::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("sample_bytes"), "{e}");
    }
}
