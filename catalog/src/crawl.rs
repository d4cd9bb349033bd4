//! The I/O edge: one file ([`inspect_file`]) and a local folder ([`crawl_dir`]).
//!
//! [`inspect`] is the pure per-file step — sniff, then infer (or read the Parquet footer) —
//! over the bytes a caller read. [`inspect_file`] reads those bytes from a local file: the
//! first [`Limits::sample_bytes`], and for Parquet the footer (64 KiB from the end, more only
//! if the footer says so, never beyond [`Limits::max_footer_bytes`]). An S3 lister in #5 does
//! the same with two ranged GETs.
//!
//! [`crawl_dir`] walks a folder (sorted, symbolic links not followed, at most
//! [`CrawlOptions::max_files`] files), leaves out hidden entries (names starting with `.` or
//! `_`, which Hive, Spark and Athena treat as not data: `_SUCCESS`, `.crc`, `_temporary/`) and
//! excluded paths, inspects the rest and groups them ([`group`](crate::group::group)). Everything that went
//! wrong is in the [`CrawlReport`], with the file's name; only an unreadable root folder, an
//! invalid option or the file limit stop the crawl.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::Limits;
use crate::error::CatalogError;
use crate::group::{Exclusions, FileEntry, GroupOptions, Grouping, SetAside, Table, TableFormat, group};
use crate::infer::{infer, parquet_schema};
use crate::sniff::{FileSample, Format, JsonLayout, sniff};
use crate::types::Schema;

/// What one file is.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    pub format: TableFormat,
    /// For JSON, how the records are laid out.
    pub json_layout: Option<JsonLayout>,
    pub schema: Schema,
    /// Records read from the sample (`None` for Parquet, whose schema is in the footer).
    pub records: Option<usize>,
    /// True when the file is longer than the sample that was read.
    pub sampled: bool,
}

/// Sniffs and infers one file from the bytes the caller read. For Parquet, `sample.tail`
/// must hold the footer; if it is too short the error is [`CatalogError::NeedTail`] with the
/// length to read.
pub fn inspect(sample: &FileSample<'_>, limits: &Limits) -> Result<Inspected, CatalogError> {
    let sniffed = sniff(sample, limits);
    let format = match &sniffed.format {
        Format::Unknown { reason } => return Err(CatalogError::UnknownFormat(reason.clone())),
        f => TableFormat::of(f, sniffed.compression).ok_or_else(|| CatalogError::UnknownFormat("unknown".into()))?,
    };
    if sniffed.format == Format::Parquet {
        let schema = parquet_schema(sample.end(), limits)?;
        return Ok(Inspected { format, json_layout: None, schema, records: None, sampled: false });
    }
    let inferred = infer(&sniffed, limits)?;
    let json_layout = match sniffed.format {
        Format::Json(layout) => Some(layout),
        _ => None,
    };
    Ok(Inspected {
        format,
        json_layout,
        schema: inferred.schema,
        records: Some(inferred.records),
        sampled: sniffed.truncated,
    })
}

/// Bytes read from the end of a Parquet file at first.
const TAIL_BYTES: u64 = 64 * 1024;

fn read_at(file: &mut File, from: u64, len: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Inspects a local file, reading at most the sample and the Parquet footer. `name` is the
/// path shown to the sniffer (its extension is a hint).
pub fn inspect_file(path: &Path, name: &str, limits: &Limits) -> Result<Inspected, CatalogError> {
    let io = |source| CatalogError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let head = read_at(&mut file, 0, limits.sample_bytes as u64).map_err(io)?;
    let whole = head.len() as u64 >= len;
    let mut tail = Vec::new();
    if head.starts_with(b"PAR1") && !whole {
        let n = TAIL_BYTES.min(len);
        tail = read_at(&mut file, len - n, n).map_err(io)?;
    }
    let sample = FileSample { name, len, head: &head, tail: &tail };
    match inspect(&sample, limits) {
        Err(CatalogError::NeedTail { bytes }) if bytes <= len && bytes <= limits.max_footer_bytes as u64 + 8 => {
            let tail = read_at(&mut file, len - bytes, bytes).map_err(io)?;
            inspect(&FileSample { tail: &tail, ..sample }, limits)
        }
        other => other,
    }
}

/// How a local crawl runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CrawlOptions {
    /// Grouping, exclusions and the per-file limits. An empty `root_name` names the root's
    /// table after the crawled folder.
    pub group: GroupOptions,
    /// Most files listed (hidden ones not counted); more is an error, not a partial catalog.
    pub max_files: usize,
    /// Leave out names starting with `.` or `_`.
    pub skip_hidden: bool,
}

impl Default for CrawlOptions {
    fn default() -> Self {
        CrawlOptions {
            group: GroupOptions { root_name: String::new(), ..GroupOptions::default() },
            max_files: 100_000,
            skip_hidden: true,
        }
    }
}

/// A file or folder that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// What a crawl found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrawlReport {
    /// Regular files found (hidden ones not included).
    pub files_listed: usize,
    /// Hidden files and folders left out (a folder counts once).
    pub hidden: usize,
    /// Paths left out by an exclusion pattern.
    pub excluded: Vec<String>,
    /// Files inspected.
    pub read: usize,
    /// Files (and folders) that could not be read or have no readable format.
    pub unreadable: Vec<Problem>,
    pub tables: Vec<Table>,
    /// Readable files that belong to no table.
    pub set_aside: Vec<SetAside>,
}

pub(crate) struct Listed {
    pub(crate) rel: String,
    pub(crate) abs: std::path::PathBuf,
}

pub(crate) fn walk(
    dir: &Path,
    rel: &str,
    depth: usize,
    opts: &CrawlOptions,
    files: &mut Vec<Listed>,
    report: &mut CrawlReport,
) -> Result<(), CatalogError> {
    let io = |source| CatalogError::Io { path: dir.to_path_buf(), source };
    let mut entries: Vec<std::fs::DirEntry> =
        std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            let shown = format!("{rel}{}", os_name.to_string_lossy());
            report.unreadable.push(Problem { path: shown, reason: "name is not UTF-8".into() });
            continue;
        };
        if opts.skip_hidden && (name.starts_with('.') || name.starts_with('_')) {
            report.hidden += 1;
            continue;
        }
        let path = format!("{rel}{name}");
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) => {
                report.unreadable.push(Problem { path, reason: e.to_string() });
                continue;
            }
        };
        if kind.is_symlink() {
            report.unreadable.push(Problem { path, reason: "symbolic link (not followed)".into() });
        } else if kind.is_dir() {
            if depth + 1 > opts.group.max_folder_depth {
                let reason = format!("folder deeper than {} levels (max_folder_depth)", opts.group.max_folder_depth);
                report.unreadable.push(Problem { path: format!("{path}/"), reason });
                continue;
            }
            match walk(&entry.path(), &format!("{path}/"), depth + 1, opts, files, report) {
                Err(CatalogError::Io { source, .. }) => {
                    report.unreadable.push(Problem { path: format!("{path}/"), reason: source.to_string() })
                }
                other => other?,
            }
        } else if kind.is_file() {
            report.files_listed += 1;
            if report.files_listed > opts.max_files {
                return Err(CatalogError::limit("the number of files", opts.max_files, "max_files"));
            }
            files.push(Listed { rel: path, abs: entry.path() });
        } else {
            report.unreadable.push(Problem { path, reason: "not a regular file".into() });
        }
    }
    Ok(())
}

/// Crawls a local folder: lists, samples, infers and groups (see the module documentation).
pub fn crawl_dir(root: &Path, opts: &CrawlOptions) -> Result<CrawlReport, CatalogError> {
    let mut group_opts = opts.group.clone();
    if group_opts.root_name.is_empty() {
        group_opts.root_name = root.file_name().and_then(|n| n.to_str()).unwrap_or("root").to_string();
    }
    group_opts.validate()?;
    if opts.max_files == 0 {
        return Err(CatalogError::Options { option: "max_files", reason: "must be at least 1".into() });
    }
    let exclusions = Exclusions::new(&group_opts.exclusions)?;
    let mut report = CrawlReport::default();
    let mut listed = Vec::new();
    walk(root, "", 0, opts, &mut listed, &mut report)?;
    let mut entries = Vec::with_capacity(listed.len());
    for f in listed {
        if exclusions.matching(&f.rel).is_some() {
            report.excluded.push(f.rel);
            continue;
        }
        report.read += 1;
        let size = std::fs::metadata(&f.abs).map(|m| m.len()).unwrap_or(0);
        match inspect_file(&f.abs, &f.rel, &group_opts.limits) {
            Ok(i) => entries.push(FileEntry { path: f.rel, size, format: i.format, schema: i.schema }),
            Err(e) => report.unreadable.push(Problem { path: f.rel, reason: e.to_string() }),
        }
    }
    let Grouping { tables, set_aside, excluded } = group(&entries, &group_opts)?;
    report.excluded.extend(excluded);
    report.tables = tables;
    report.set_aside = set_aside;
    report.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

/// Partitions listed per table in the text form; the rest are counted.
const SHOWN_PARTITIONS: usize = 20;

/// A readable summary: counts, each table (columns, partition keys, partitions), the files set
/// aside and the unreadable ones with their reasons. Deterministic (the golden tests compare it).
impl fmt::Display for CrawlReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "files: {} listed, {} hidden, {} excluded, {} read, {} unreadable, {} set aside; tables: {}",
            self.files_listed,
            self.hidden,
            self.excluded.len(),
            self.read,
            self.unreadable.len(),
            self.set_aside.len(),
            self.tables.len()
        )?;
        for t in &self.tables {
            writeln!(f)?;
            writeln!(f, "table {}", t.name)?;
            writeln!(f, "  location: {}", if t.location.is_empty() { "." } else { &t.location })?;
            writeln!(f, "  format: {}", t.format)?;
            writeln!(f, "  files: {} ({} bytes), distinct schemas: {}", t.files.len(), t.bytes, t.distinct_schemas)?;
            writeln!(f, "  columns:")?;
            for line in t.schema.to_string().lines() {
                writeln!(f, "    {line}")?;
            }
            if t.partition_keys.is_empty() {
                writeln!(f, "  partition keys: none")?;
            } else {
                let keys: Vec<String> =
                    t.partition_keys.iter().map(|k| format!("{}: {}", k.name, k.data_type)).collect();
                writeln!(f, "  partition keys: {}", keys.join(", "))?;
                writeln!(f, "  partitions: {}", t.partitions.len())?;
                for p in t.partitions.iter().take(SHOWN_PARTITIONS) {
                    let values: Vec<&str> = p.values.iter().map(|v| v.as_deref().unwrap_or("null")).collect();
                    writeln!(f, "    {} = ({}), {} file(s)", p.location, values.join(", "), p.files)?;
                }
                if t.partitions.len() > SHOWN_PARTITIONS {
                    writeln!(f, "    … {} more", t.partitions.len() - SHOWN_PARTITIONS)?;
                }
            }
            for w in &t.warnings {
                writeln!(f, "  warning: {w}")?;
            }
        }
        let lists: [(&str, Vec<(&str, &str)>); 3] = [
            ("set aside", self.set_aside.iter().map(|s| (s.path.as_str(), s.reason.as_str())).collect()),
            ("unreadable", self.unreadable.iter().map(|p| (p.path.as_str(), p.reason.as_str())).collect()),
            ("excluded", self.excluded.iter().map(|p| (p.as_str(), "")).collect()),
        ];
        for (title, items) in lists {
            if items.is_empty() {
                continue;
            }
            writeln!(f)?;
            writeln!(f, "{title}:")?;
            for (path, reason) in items {
                if reason.is_empty() {
                    writeln!(f, "  {path}")?;
                } else {
                    writeln!(f, "  {path}: {reason}")?;
                }
            }
        }
        Ok(())
    }
}
