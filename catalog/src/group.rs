//! Which files make which table: folder structure and schema similarity, as Glue's crawler
//! decides it.
//!
//! ## What Glue documents
//!
//! Glue's crawler "determines the root of a table in the folder structure and which folders
//! are partitions of a table … When the majority of schemas at a folder level are similar, the
//! crawler creates partitions of a table instead of separate tables." It considers *data
//! compatibility* (same format, same compression) and *schema similarity*. AWS's knowledge
//! center adds the two numbers: schemas are similar when the "partition threshold is higher
//! than 0.7 (70%)" and "the maximum number of different schemas (clusters) doesn't exceed
//! five". Glue does not publish its similarity measure. The option `CombineCompatibleSchemas`
//! ("Create a single schema for each S3 path") ignores similarity and keeps compatibility.
//!
//! ## What this module does
//!
//! * **Similarity** ([`similarity`]) is the Jaccard index of two schemas' top-level column
//!   names: |A ∩ B| / |A ∪ B|. Two schemas are *similar* when it is at least
//!   [`GroupOptions::similarity_threshold`] (0.7), and *compatible* when their format
//!   ([`TableFormat`]: classification, compression, CSV dialect) is the same.
//! * **Clusters**: the files of a folder are grouped by exact schema, most frequent first; each
//!   schema joins the first cluster whose seed (its first, most frequent schema) is compatible
//!   and similar, or starts a new one — at most [`GroupOptions::max_schemas`] (5) clusters;
//!   schemas beyond are set aside, not compared further. The largest cluster is *dominant*.
//! * **Folders decide tables, files never do.** A folder is *homogeneous* when all its
//!   subfolders are homogeneous and their dominant schemas are compatible and similar (a folder
//!   without subfolders is homogeneous). From the crawl root down: a homogeneous folder is one
//!   table; its subfolders are partitions. A heterogeneous folder is not a table: its own files
//!   (if any) make a table located there, and each subfolder is decided in turn.
//! * **Strays are set aside, with the reason**: in a table, files outside the dominant cluster
//!   (other schema, other format, beyond the cluster cap), files at another folder depth than
//!   most of the table's files, and files whose schema cannot be merged. Never a table per file.
//! * **Partitions**: the folder levels between a table's location and its files. A level where
//!   every folder is `key=value` with the same key is the column `key`; any other level is
//!   `partition_0`, `partition_1`, … (by position). Values that are all canonical integers make
//!   an `int` (or `bigint`) column — no leading zeros, so that a value prints back as its folder
//!   name: `year=2026` is an int, `month=01` a string — anything else a `string`;
//!   `key=value` values are percent-decoded, `__HIVE_DEFAULT_PARTITION__` is null.
//! * **Names**: the table folder's name, lower-cased, other characters than `a-z0-9_` replaced
//!   by `_` (`year=2017` → `year_2017`, as in Glue's documentation); the crawl root's table is
//!   [`GroupOptions::root_name`]. A name taken already gets `_2`, `_3`, … in crawl order.
//! * **Exclusions** ([`Exclusions`]): globs on the path relative to the crawl root. `*` and `?`
//!   stay within a folder, `**` as a whole segment crosses folders (`_tmp/**`, `**/x.json`),
//!   `{a,b}` alternatives are expanded; a `**` glued to other characters (`**.jsonl`, Glue's
//!   spelling) lets every `*` of that pattern cross folders.
//! * **Table level** ([`GroupOptions::table_level`], Glue's `TableLevelConfiguration`): when
//!   set, tables are exactly the folders at that depth (0 = the crawl root; Glue counts the
//!   bucket as level 1), whatever their similarity; files above it are set aside.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::Limits;
use crate::error::CatalogError;
use crate::infer::merge_schemas;
use crate::sniff::{Compression, CsvDialect, Format};
use crate::types::{DataType, Schema};

/// What makes files *compatible* (readable as one table): classification, compression and,
/// for CSV, the dialect. JSON layouts (lines, one object, array) are compatible with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableFormat {
    Json(Compression),
    Csv(CsvDialect, Compression),
    Parquet,
}

impl TableFormat {
    /// The format of a sniffed file, `None` for [`Format::Unknown`].
    pub fn of(format: &Format, compression: Compression) -> Option<TableFormat> {
        match format {
            Format::Json(_) => Some(TableFormat::Json(compression)),
            Format::Csv(d) => Some(TableFormat::Csv(*d, compression)),
            Format::Parquet => Some(TableFormat::Parquet),
            Format::Unknown { .. } => None,
        }
    }

    /// Glue's `classification` table property: `json`, `csv` or `parquet`.
    pub fn classification(&self) -> &'static str {
        match self {
            TableFormat::Json(_) => "json",
            TableFormat::Csv(..) => "csv",
            TableFormat::Parquet => "parquet",
        }
    }

    pub fn compression(&self) -> Compression {
        match self {
            TableFormat::Json(c) | TableFormat::Csv(_, c) => *c,
            TableFormat::Parquet => Compression::None,
        }
    }
}

/// `json`, `json+gzip`, `csv(delimiter='|', header)+zstd`, `parquet`.
impl fmt::Display for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableFormat::Csv(d, _) => {
                let delim = if d.delimiter == b'\t' { "\\t".to_string() } else { (d.delimiter as char).to_string() };
                write!(f, "csv(delimiter='{delim}', {})", if d.header { "header" } else { "no header" })?
            }
            other => f.write_str(other.classification())?,
        }
        match self.compression() {
            Compression::None => Ok(()),
            c => write!(f, "+{}", c.name()),
        }
    }
}

/// One readable file: where it is, how big, what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    /// Path relative to the crawl root, `/`-separated (`year=2024/month=01/part-0.json`).
    pub path: String,
    pub size: u64,
    pub format: TableFormat,
    pub schema: Schema,
}

/// How files are grouped into tables.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOptions {
    /// Least Jaccard similarity of top-level column names for two schemas to share a table.
    pub similarity_threshold: f64,
    /// Most schema clusters tracked per table (Glue: 5).
    pub max_schemas: usize,
    /// Globs of paths to leave out (see the module documentation).
    pub exclusions: Vec<String>,
    /// The name of a table whose location is the crawl root.
    pub root_name: String,
    /// Glue's `CombineCompatibleSchemas`: compatible files share a table whatever their columns.
    pub combine_compatible_schemas: bool,
    /// Glue's `TableLevelConfiguration`, counted from the crawl root (0).
    pub table_level: Option<usize>,
    /// Folder levels below the crawl root beyond which files are set aside.
    pub max_folder_depth: usize,
    /// Bounds on each schema (`max_columns` applies to a table's merged schema).
    pub limits: Limits,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            similarity_threshold: 0.7,
            max_schemas: 5,
            exclusions: Vec::new(),
            root_name: "root".into(),
            combine_compatible_schemas: false,
            table_level: None,
            max_folder_depth: 32,
            limits: Limits::default(),
        }
    }
}

impl GroupOptions {
    /// Refuses values out of range.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |option, reason: &str| Err(CatalogError::Options { option, reason: reason.into() });
        if !(0.0..=1.0).contains(&self.similarity_threshold) {
            return bad("similarity_threshold", "must be between 0 and 1");
        }
        if !(1..=100).contains(&self.max_schemas) {
            return bad("max_schemas", "must be 1 to 100");
        }
        if !(1..=256).contains(&self.max_folder_depth) {
            return bad("max_folder_depth", "must be 1 to 256");
        }
        if self.table_level.is_some_and(|l| l > self.max_folder_depth) {
            return bad("table_level", "must not exceed max_folder_depth");
        }
        self.limits.validate()
    }
}

/// A partition column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionKey {
    pub name: String,
    /// `int`, `bigint` or `string`.
    pub data_type: DataType,
}

/// One partition: a folder holding some of a table's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The folder, relative to the crawl root.
    pub location: String,
    /// One value per partition key (`None`: Hive's default partition, null).
    pub values: Vec<Option<String>>,
    pub files: usize,
}

/// A table found by the crawler.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    /// The table's folder, relative to the crawl root (`""` is the root itself).
    pub location: String,
    pub format: TableFormat,
    /// The merge of its files' schemas, finished (unknown types are `string`).
    pub schema: Schema,
    pub partition_keys: Vec<PartitionKey>,
    pub partitions: Vec<Partition>,
    /// The table's files, relative to the crawl root, sorted. The location may hold other
    /// files too (set aside, unreadable, or another table's): the list is the table.
    pub files: Vec<String>,
    pub bytes: u64,
    /// How many different exact schemas were merged.
    pub distinct_schemas: usize,
    /// Things a reader should know (a partition key named like a data column).
    pub warnings: Vec<String>,
}

/// A readable file that belongs to no table, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub path: String,
    /// The table it was compared with, if any.
    pub table: Option<String>,
    pub reason: String,
}

/// The outcome of [`group`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grouping {
    pub tables: Vec<Table>,
    pub set_aside: Vec<SetAside>,
    /// Paths left out by an exclusion pattern.
    pub excluded: Vec<String>,
}

/// Jaccard similarity of two schemas' top-level column names (1 for two empty schemas).
pub fn similarity(a: &Schema, b: &Schema) -> f64 {
    jaccard(&sorted_names(a), &sorted_names(b))
}

fn sorted_names(s: &Schema) -> Vec<String> {
    let mut v: Vec<String> = s.names().map(str::to_string).collect();
    v.sort();
    v.dedup();
    v
}

fn jaccard(a: &[String], b: &[String]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 { 1.0 } else { common as f64 / union as f64 }
}

// ---------------------------------------------------------------------------------------------
// Exclusions
// ---------------------------------------------------------------------------------------------

/// Compiled exclusion globs.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    rules: Vec<(String, glob::Pattern, glob::MatchOptions)>,
}

impl Exclusions {
    /// Most patterns after `{a,b}` expansion.
    pub const MAX_PATTERNS: usize = 256;
    /// Most `{` in one pattern (the expansion recurses once per group).
    pub const MAX_BRACES: usize = 32;

    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, CatalogError> {
        let mut rules = Vec::new();
        for p in patterns {
            let p = p.as_ref();
            let err = |reason: String| CatalogError::Exclusion { pattern: p.to_string(), reason };
            if p.matches('{').count() > Self::MAX_BRACES {
                return Err(err(format!("more than {} `{{` in one pattern", Self::MAX_BRACES)));
            }
            let mut expanded = Vec::new();
            expand_braces(p, &mut expanded, Self::MAX_PATTERNS.saturating_sub(rules.len())).map_err(err)?;
            for e in expanded {
                let glued = e.split('/').any(|seg| seg.contains("**") && seg != "**");
                let text = if glued { collapse_stars(&e) } else { e };
                let pattern = glob::Pattern::new(&text).map_err(|x| err(x.to_string()))?;
                let options = glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: !glued,
                    require_literal_leading_dot: false,
                };
                rules.push((p.to_string(), pattern, options));
            }
        }
        Ok(Exclusions { rules })
    }

    /// The pattern (as given) that excludes `path`, if any.
    pub fn matching(&self, path: &str) -> Option<&str> {
        self.rules.iter().find(|(_, pat, opt)| pat.matches_with(path, *opt)).map(|(p, _, _)| p.as_str())
    }
}

fn collapse_stars(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if !(c == '*' && out.ends_with('*')) {
            out.push(c);
        }
    }
    out
}

/// `a/{b,c}/*.{json,csv}` → four patterns; at most `budget`.
fn expand_braces(p: &str, out: &mut Vec<String>, budget: usize) -> Result<(), String> {
    let Some(open) = p.find('{') else {
        if out.len() >= budget {
            return Err(format!("more than {} patterns after expanding {{…}}", Exclusions::MAX_PATTERNS));
        }
        out.push(p.to_string());
        return Ok(());
    };
    let mut depth = 0;
    let mut close = None;
    let mut splits = Vec::new();
    for (i, c) in p[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => splits.push(open + i),
            _ => {}
        }
    }
    let Some(close) = close else { return Err("unbalanced `{`".into()) };
    let (prefix, suffix) = (&p[..open], &p[close + 1..]);
    let mut start = open + 1;
    for end in splits.into_iter().chain(std::iter::once(close)) {
        expand_braces(&format!("{prefix}{}{suffix}", &p[start..end]), out, budget)?;
        start = end + 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Grouping
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Node {
    /// Relative folder path (`""` for the root).
    location: String,
    children: BTreeMap<String, Node>,
    /// Files directly here (indices into the sorted input).
    files: Vec<usize>,
    /// Files here and below, sorted.
    all: Vec<usize>,
    homogeneous: bool,
    /// Seed schema id of the dominant cluster of `all`.
    dominant: Option<usize>,
}

struct Cluster {
    seed: usize,
    files: Vec<usize>,
}

struct Grouper<'a> {
    files: Vec<&'a FileEntry>,
    opts: &'a GroupOptions,
    /// Per file: its distinct (format, schema) id.
    ids: Vec<usize>,
    /// Per id: the format and the sorted top-level names.
    distinct: Vec<(TableFormat, Vec<String>)>,
    out: Grouping,
    names: HashMap<String, usize>,
}

/// Groups files into tables (the rules are in the module documentation). Pure: the input is a
/// listing with schemas, the output is tables and the files set aside, sorted by path.
pub fn group(files: &[FileEntry], opts: &GroupOptions) -> Result<Grouping, CatalogError> {
    opts.validate()?;
    let exclusions = Exclusions::new(&opts.exclusions)?;
    let mut sorted: Vec<&FileEntry> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Grouping::default();
    let mut kept = Vec::with_capacity(sorted.len());
    for f in sorted {
        if exclusions.matching(&f.path).is_some() {
            out.excluded.push(f.path.clone());
            continue;
        }
        let segments: Vec<&str> = f.path.split('/').collect();
        if f.path.is_empty() || segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
            out.set_aside.push(SetAside {
                path: f.path.clone(),
                table: None,
                reason: "invalid path (empty, absolute, or with empty, `.` or `..` segments)".into(),
            });
            continue;
        }
        if segments.len() - 1 > opts.max_folder_depth {
            out.set_aside.push(SetAside {
                path: f.path.clone(),
                table: None,
                reason: format!("deeper than {} folder levels (max_folder_depth)", opts.max_folder_depth),
            });
            continue;
        }
        kept.push(f);
    }
    let mut ids = Vec::with_capacity(kept.len());
    let mut distinct = Vec::new();
    let mut index: HashMap<(TableFormat, &Schema), usize> = HashMap::new();
    for f in &kept {
        let id = *index.entry((f.format, &f.schema)).or_insert_with(|| {
            distinct.push((f.format, sorted_names(&f.schema)));
            distinct.len() - 1
        });
        ids.push(id);
    }
    let mut g = Grouper { files: kept, opts, ids, distinct, out, names: HashMap::new() };
    let mut root = Node::default();
    for i in 0..g.files.len() {
        let path = &g.files[i].path;
        let mut node = &mut root;
        let mut folders: Vec<&str> = path.split('/').collect();
        folders.pop();
        for (depth, seg) in folders.iter().enumerate() {
            let location = folders[..=depth].join("/");
            node = node.children.entry(seg.to_string()).or_insert_with(|| Node { location, ..Node::default() });
        }
        node.files.push(i);
    }
    g.assess(&mut root);
    g.plan(&root, 0);
    g.out.set_aside.sort_by(|a, b| a.path.cmp(&b.path));
    g.out.tables.sort_by(|a, b| a.location.cmp(&b.location).then(a.name.cmp(&b.name)));
    Ok(g.out)
}

impl<'a> Grouper<'a> {
    fn compatible(&self, seed: usize, id: usize) -> bool {
        let (fa, na) = &self.distinct[seed];
        let (fb, nb) = &self.distinct[id];
        fa == fb && (self.opts.combine_compatible_schemas || jaccard(na, nb) >= self.opts.similarity_threshold)
    }

    /// Clusters files (see the module documentation); returns the clusters, largest first, and
    /// the files beyond the `max_schemas` cap.
    fn cluster(&self, files: &[usize]) -> (Vec<Cluster>, Vec<usize>) {
        let mut by_id: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &f in files {
            by_id.entry(self.ids[f]).or_default().push(f);
        }
        let mut order: Vec<(usize, Vec<usize>)> = by_id.into_iter().collect();
        order.sort_by(|(_, a), (_, b)| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        let mut clusters: Vec<Cluster> = Vec::new();
        let mut overflow = Vec::new();
        for (id, members) in order {
            if let Some(c) = clusters.iter_mut().find(|c| self.compatible(c.seed, id)) {
                c.files.extend(members);
            } else if clusters.len() < self.opts.max_schemas {
                clusters.push(Cluster { seed: id, files: members });
            } else {
                overflow.extend(members);
            }
        }
        clusters.sort_by(|a, b| b.files.len().cmp(&a.files.len()));
        for c in &mut clusters {
            c.files.sort_unstable();
        }
        overflow.sort_unstable();
        (clusters, overflow)
    }

    /// Bottom-up: files below each folder, homogeneity, dominant schema.
    fn assess(&self, node: &mut Node) {
        let mut all = node.files.clone();
        let mut homogeneous = true;
        let mut members: Vec<(usize, usize)> = Vec::new(); // (weight, seed)
        for child in node.children.values_mut() {
            self.assess(child);
            all.extend_from_slice(&child.all);
            homogeneous &= child.homogeneous;
            if let Some(seed) = child.dominant {
                members.push((child.all.len(), seed));
            }
        }
        if homogeneous {
            members.sort_by(|a, b| b.0.cmp(&a.0));
            if let Some(&(_, first)) = members.first() {
                homogeneous = members.iter().all(|&(_, seed)| self.compatible(first, seed));
            }
        }
        all.sort_unstable();
        node.dominant = self.cluster(&all).0.first().map(|c| c.seed);
        node.homogeneous = homogeneous;
        node.all = all;
    }

    /// Top-down: where tables are.
    fn plan(&mut self, node: &Node, depth: usize) {
        if let Some(level) = self.opts.table_level {
            if depth == level {
                self.make_table(&node.location, node.all.clone());
                return;
            }
            for &f in &node.files {
                self.set_aside(f, None, format!("above the table level {level} (table_level)"));
            }
        } else if node.homogeneous {
            self.make_table(&node.location, node.all.clone());
            return;
        } else if !node.files.is_empty() {
            self.make_table(&node.location, node.files.clone());
        }
        for child in node.children.values() {
            self.plan(child, depth + 1);
        }
    }

    fn set_aside(&mut self, file: usize, table: Option<&str>, reason: String) {
        self.out.set_aside.push(SetAside {
            path: self.files[file].path.clone(),
            table: table.map(str::to_string),
            reason,
        });
    }

    fn table_name(&mut self, location: &str) -> String {
        let base =
            if location.is_empty() { self.opts.root_name.as_str() } else { location.rsplit('/').next().unwrap_or("") };
        let mut name: String =
            base.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        if name.is_empty() {
            name = "table".into();
        }
        let n = self.names.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 { format!("{name}_{n}") } else { name }
    }

    /// Folder levels between `location` and the file.
    fn levels(&self, location: &str, file: usize) -> Vec<&'a str> {
        let entry: &'a FileEntry = self.files[file];
        let path: &'a str = &entry.path;
        let rest = if location.is_empty() { path } else { path.get(location.len() + 1..).unwrap_or("") };
        let mut segs: Vec<&str> = rest.split('/').collect();
        segs.pop();
        segs
    }

    fn make_table(&mut self, location: &str, files: Vec<usize>) {
        if files.is_empty() {
            return;
        }
        let name = self.table_name(location);
        let (clusters, overflow) = self.cluster(&files);
        let Some((dominant, others)) = clusters.split_first() else { return };
        let (seed_format, seed_names) = self.distinct[dominant.seed].clone();
        for c in others {
            for &f in &c.files {
                let (format, names) = &self.distinct[self.ids[f]];
                let reason = if *format != seed_format {
                    format!("format {format} differs from table `{name}`'s {seed_format}")
                } else {
                    format!(
                        "schema differs from table `{name}`: column similarity {:.2} is below {:.2} (columns: {})",
                        jaccard(names, &seed_names),
                        self.opts.similarity_threshold,
                        preview(names)
                    )
                };
                self.set_aside(f, Some(&name), reason);
            }
        }
        for f in overflow {
            let reason = format!(
                "one of more than {} distinct schemas under table `{name}` (max_schemas): not compared",
                self.opts.max_schemas
            );
            self.set_aside(f, Some(&name), reason);
        }
        // The partition depth is the one most of the dominant files have (the shallower on a tie).
        let mut depths: BTreeMap<usize, usize> = BTreeMap::new();
        for &f in &dominant.files {
            *depths.entry(self.levels(location, f).len()).or_default() += 1;
        }
        let depth = depths.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(d, _)| *d).unwrap_or(0);
        let mut members = Vec::new();
        for &f in &dominant.files {
            let d = self.levels(location, f).len();
            if d == depth {
                members.push(f);
            } else {
                let place = if d == 0 { "directly in".to_string() } else { format!("{d} folder level(s) below") };
                let reason = format!("{place} table `{name}`'s folder, whose files are {depth} folder level(s) down");
                self.set_aside(f, Some(&name), reason);
            }
        }
        let mut schema: Option<Schema> = None;
        let mut kept = Vec::with_capacity(members.len());
        let mut ids = std::collections::BTreeSet::new();
        for f in members {
            let s = &self.files[f].schema;
            let merged = match &schema {
                None => Ok(s.clone()),
                Some(acc) => merge_schemas(acc, s, &self.opts.limits),
            };
            match merged {
                Ok(m) => {
                    schema = Some(m);
                    ids.insert(self.ids[f]);
                    kept.push(f);
                }
                Err(e) => self.set_aside(f, Some(&name), format!("cannot be merged into table `{name}`: {e}")),
            }
        }
        let Some(schema) = schema else { return };
        let schema = schema.finished();
        let (partition_keys, partitions) = self.partitions(location, &kept, depth);
        let warnings = partition_keys
            .iter()
            .filter(|k| schema.column(&k.name).is_some())
            .map(|k| format!("partition key `{}` is also a data column", k.name))
            .collect();
        self.out.tables.push(Table {
            name,
            location: location.to_string(),
            format: seed_format,
            schema,
            partition_keys,
            partitions,
            files: kept.iter().map(|&f| self.files[f].path.clone()).collect(),
            bytes: kept.iter().map(|&f| self.files[f].size).sum(),
            distinct_schemas: ids.len(),
            warnings,
        });
    }

    fn partitions(&self, location: &str, files: &[usize], depth: usize) -> (Vec<PartitionKey>, Vec<Partition>) {
        let levels: Vec<Vec<&str>> = files.iter().map(|&f| self.levels(location, f)).collect();
        let mut keys = Vec::with_capacity(depth);
        for i in 0..depth {
            let hive_key = |s: &str| s.split_once('=').map(|(k, _)| k.to_string()).filter(|k| !k.is_empty());
            let first = levels.first().and_then(|l| l.get(i)).and_then(|s| hive_key(s));
            let hive = first.filter(|k| levels.iter().all(|l| l.get(i).and_then(|s| hive_key(s)).as_ref() == Some(k)));
            keys.push(hive);
        }
        let mut parts: BTreeMap<Vec<&str>, usize> = BTreeMap::new();
        for l in &levels {
            *parts.entry(l.clone()).or_default() += 1;
        }
        let value = |i: usize, seg: &str| -> Option<String> {
            match &keys[i] {
                Some(_) => {
                    let v = percent_decode(seg.split_once('=').map(|(_, v)| v).unwrap_or(""));
                    (v != "__HIVE_DEFAULT_PARTITION__").then_some(v)
                }
                None => Some(seg.to_string()),
            }
        };
        let partitions: Vec<Partition> = parts
            .into_iter()
            .map(|(segs, n)| Partition {
                location: if location.is_empty() { segs.join("/") } else { format!("{location}/{}", segs.join("/")) },
                values: segs.iter().enumerate().map(|(i, s)| value(i, s)).collect(),
                files: n,
            })
            .collect();
        let partition_keys = (0..depth)
            .map(|i| {
                let mut t = DataType::Null;
                for p in &partitions {
                    if let Some(v) = &p.values[i] {
                        t = match (t, partition_value_type(v)) {
                            (DataType::Null, x) => x,
                            (DataType::Int, DataType::Int) => DataType::Int,
                            (DataType::Int | DataType::BigInt, DataType::Int | DataType::BigInt) => DataType::BigInt,
                            _ => DataType::String,
                        };
                    }
                }
                let data_type = if t == DataType::Null { DataType::String } else { t };
                PartitionKey { name: keys[i].clone().unwrap_or_else(|| format!("partition_{i}")), data_type }
            })
            .collect();
        (partition_keys, partitions)
    }
}

/// `int` for canonical integers in i32, `bigint` in i64, else `string`. Canonical: no leading
/// zeros, no `+`, no `-0` — the value printed back must be the folder's text (`month=01` is the
/// string `'01'`, as Athena queries compare it), or a typed value could not find its folder.
fn partition_value_type(v: &str) -> DataType {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return DataType::String;
    }
    if (digits.len() > 1 && digits.starts_with('0')) || v == "-0" {
        return DataType::String;
    }
    match v.parse::<i64>() {
        Ok(n) if i32::try_from(n).is_ok() => DataType::Int,
        Ok(_) => DataType::BigInt,
        Err(_) => DataType::String,
    }
}

/// Hive escapes partition values with `%XX`; undo it when the result is UTF-8.
fn percent_decode(s: &str) -> String {
    crate::path::decode_path(s).unwrap_or_else(|| s.to_string())
}

fn preview(names: &[String]) -> String {
    let mut s = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        s.push_str(&format!(", … ({} in all)", names.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Field;

    fn schema(cols: &[(&str, DataType)]) -> Schema {
        Schema::new(cols.iter().map(|(n, t)| Field::new(*n, t.clone(), false)).collect())
    }

    fn names(cols: &str) -> Schema {
        schema(&cols.split(',').map(|c| (c, DataType::Int)).collect::<Vec<_>>())
    }

    fn file(path: &str, s: &Schema) -> FileEntry {
        FileEntry { path: path.into(), size: 10, format: TableFormat::Json(Compression::None), schema: s.clone() }
    }

    fn tables(g: &Grouping) -> Vec<(String, String, usize)> {
        g.tables.iter().map(|t| (t.name.clone(), t.location.clone(), t.files.len())).collect()
    }

    #[test]
    fn jaccard_similarity() {
        assert_eq!(similarity(&names("a,b,c"), &names("a,b,c")), 1.0);
        assert_eq!(similarity(&names("a,b,c,d"), &names("a,b,c")), 0.75);
        assert_eq!(similarity(&names("a,b"), &names("c,d")), 0.0);
        assert_eq!(similarity(&Schema::default(), &Schema::default()), 1.0);
        // 7 of 10 shared is exactly the default threshold: similar.
        let a = names("a,b,c,d,e,f,g,h,i");
        let b = names("a,b,c,d,e,f,g,x");
        assert!((similarity(&a, &b) - 0.7).abs() < 1e-9);
    }

    #[test]
    fn one_folder_one_table_and_strays_set_aside() {
        let s = names("a,b,c");
        let stray = names("name");
        let mut files: Vec<FileEntry> = (0..20).map(|i| file(&format!("f{i:02}.json"), &s)).collect();
        files.push(file("odd.json", &stray));
        let g = group(&files, &GroupOptions::default()).unwrap();
        assert_eq!(tables(&g), [("root".to_string(), String::new(), 20)]);
        assert_eq!(g.set_aside.len(), 1);
        assert_eq!(g.set_aside[0].path, "odd.json");
        assert_eq!(g.set_aside[0].table.as_deref(), Some("root"));
        assert!(
            g.set_aside[0].reason.contains("similarity 0.00 is below 0.70 (columns: name)"),
            "{}",
            g.set_aside[0].reason
        );
    }

    #[test]
    fn similar_schemas_share_a_table_and_their_types_widen() {
        let a = schema(&[("x", DataType::Int), ("y", DataType::Int), ("z", DataType::Int)]);
        let b =
            schema(&[("x", DataType::Double), ("y", DataType::Int), ("z", DataType::Int), ("w", DataType::Boolean)]);
        let g = group(&[file("p/1.json", &a), file("p/2.json", &b)], &GroupOptions::default()).unwrap();
        assert_eq!(g.tables.len(), 1);
        let t = &g.tables[0];
        assert_eq!(t.name, "root");
        assert_eq!(t.partition_keys[0].name, "partition_0");
        assert_eq!(t.schema.to_string(), "x: double\ny: int\nz: int\nw: boolean (nullable)\n");
        assert_eq!(t.distinct_schemas, 2);
    }

    #[test]
    fn hive_partitions_are_typed() {
        let s = names("a,b");
        let files: Vec<FileEntry> =
            ["year=2024/month=01/day=1", "year=2024/month=12/day=31", "year=2025/month=02/day=3"]
                .iter()
                .map(|p| file(&format!("sales/{p}/part-0.json"), &s))
                .collect();
        let g = group(&files, &GroupOptions::default()).unwrap();
        // The root's only subfolder is `sales`; the root is homogeneous, so `sales` is a level.
        let t = &g.tables[0];
        let keys: Vec<String> = t.partition_keys.iter().map(|k| format!("{}:{}", k.name, k.data_type)).collect();
        // `month=01` is not canonical (it would print back as 1): string; `day` values are canonical.
        assert_eq!(keys, ["partition_0:string", "year:int", "month:string", "day:int"]);
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(
            t.partitions[0].values,
            [Some("sales".into()), Some("2024".into()), Some("01".into()), Some("1".into())]
        );
        assert_eq!(t.partitions[0].location, "sales/year=2024/month=01/day=1");
        // Rooted at sales with table_level 1: only the Hive keys.
        let g = group(&files, &GroupOptions { table_level: Some(1), ..GroupOptions::default() }).unwrap();
        let t = &g.tables[0];
        assert_eq!((t.name.as_str(), t.location.as_str()), ("sales", "sales"));
        assert_eq!(t.partition_keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["year", "month", "day"]);
    }

    #[test]
    fn partition_value_types_and_decoding() {
        assert_eq!(partition_value_type("2026"), DataType::Int);
        assert_eq!(partition_value_type("0"), DataType::Int);
        assert_eq!(partition_value_type("-5"), DataType::Int);
        assert_eq!(partition_value_type("01"), DataType::String, "a leading zero would not round-trip");
        assert_eq!(partition_value_type("07"), DataType::String);
        assert_eq!(partition_value_type("-0"), DataType::String);
        assert_eq!(partition_value_type("+5"), DataType::String);
        assert_eq!(partition_value_type("3000000000"), DataType::BigInt);
        assert_eq!(partition_value_type("99999999999999999999"), DataType::String);
        assert_eq!(partition_value_type("2024-01-01"), DataType::String);
        assert_eq!(partition_value_type(""), DataType::String);
        assert_eq!(percent_decode("2024-01-01 10%3A00%3A00"), "2024-01-01 10:00:00");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%ff"), "%ff", "not UTF-8: kept");
        let s = names("a");
        let files = vec![
            file("t/k=a%2Fb/1.json", &s),
            file("t/k=__HIVE_DEFAULT_PARTITION__/2.json", &s),
            file("t/k=3/3.json", &s),
        ];
        let g = group(&files, &GroupOptions { table_level: Some(1), ..GroupOptions::default() }).unwrap();
        let t = &g.tables[0];
        assert_eq!(t.partition_keys[0].data_type, DataType::String, "a/b is not an integer");
        let values: Vec<_> = t.partitions.iter().map(|p| p.values[0].clone()).collect();
        assert_eq!(values, [Some("3".into()), None, Some("a/b".into())]);
        let files = vec![file("t/k=1/1.json", &s), file("t/k=__HIVE_DEFAULT_PARTITION__/2.json", &s)];
        let g = group(&files, &GroupOptions { table_level: Some(1), ..GroupOptions::default() }).unwrap();
        assert_eq!(g.tables[0].partition_keys[0].data_type, DataType::Int, "nulls do not change the type");
    }

    #[test]
    fn mixed_levels_are_positional() {
        let s = names("a");
        let files = vec![file("t/k=1/x/1.json", &s), file("t/j=2/y/2.json", &s)];
        let g = group(&files, &GroupOptions { table_level: Some(1), ..GroupOptions::default() }).unwrap();
        let keys: Vec<_> = g.tables[0].partition_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(keys, ["partition_0", "partition_1"], "different keys at one level: positional");
        assert_eq!(g.tables[0].partitions[0].values[0].as_deref(), Some("j=2"));
    }

    #[test]
    fn dissimilar_folders_are_separate_tables() {
        let orders = names("id,qty,px");
        let customers = names("id,name,email,city");
        let files = vec![
            file("orders/o1.json", &orders),
            file("orders/o2.json", &orders),
            file("customers/c1.json", &customers),
        ];
        let g = group(&files, &GroupOptions::default()).unwrap();
        assert_eq!(
            tables(&g),
            [("customers".to_string(), "customers".to_string(), 1), ("orders".to_string(), "orders".to_string(), 2)]
        );
        assert!(g.set_aside.is_empty());
        // Combining compatible schemas: one table, two partitions.
        let opts = GroupOptions { combine_compatible_schemas: true, ..GroupOptions::default() };
        let g = group(&files, &opts).unwrap();
        assert_eq!(tables(&g), [("root".to_string(), String::new(), 3)]);
        assert_eq!(g.tables[0].schema.columns.len(), 6);
    }

    #[test]
    fn a_heterogeneous_folder_is_not_a_table_but_its_own_files_are() {
        let a = names("a,b");
        let b = names("c,d");
        let files = vec![
            file("east/data/1.json", &a),
            file("east/meta/1.json", &b),
            file("west/data/1.json", &a),
            file("west/meta/1.json", &b),
            file("top.json", &names("t")),
        ];
        let g = group(&files, &GroupOptions::default()).unwrap();
        let mut got = tables(&g);
        got.sort();
        let want = [
            ("data", "east/data"),
            ("data_2", "west/data"),
            ("meta", "east/meta"),
            ("meta_2", "west/meta"),
            ("root", ""),
        ];
        assert_eq!(got, want.map(|(n, l)| (n.to_string(), l.to_string(), 1)));
    }

    #[test]
    fn files_at_another_depth_are_set_aside() {
        let s = names("a,b");
        let files = vec![file("t/x.json", &s), file("t/k=1/y.json", &s), file("t/k=2/z.json", &s)];
        let g = group(&files, &GroupOptions::default()).unwrap();
        assert_eq!(tables(&g), [("root".to_string(), String::new(), 2)]);
        assert_eq!(g.set_aside[0].path, "t/x.json");
        assert!(g.set_aside[0].reason.contains("1 folder level(s) below"), "{}", g.set_aside[0].reason);
    }

    #[test]
    fn incompatible_formats_never_share_a_table() {
        let s = names("a,b");
        let mut csv = file("t/b.csv", &s);
        csv.format = TableFormat::Csv(CsvDialect { delimiter: b',', header: true }, Compression::None);
        let mut gz = file("t/c.json.gz", &s);
        gz.format = TableFormat::Json(Compression::Gzip);
        let files = vec![file("t/a.json", &s), file("t/a2.json", &s), csv, gz];
        let g = group(&files, &GroupOptions::default()).unwrap();
        assert_eq!(g.tables[0].files, ["t/a.json", "t/a2.json"]);
        let reasons: Vec<_> = g.set_aside.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "format csv(delimiter=',', header) differs from table `root`'s json",
                "format json+gzip differs from table `root`'s json"
            ]
        );
    }

    #[test]
    fn the_schema_cap_sets_aside_what_it_cannot_compare() {
        let main = names("a,b,c");
        let mut files: Vec<FileEntry> = (0..10).map(|i| file(&format!("m{i}.json"), &main)).collect();
        for i in 0..6 {
            files.push(file(&format!("s{i}.json"), &names(&format!("x{i}"))));
        }
        let opts = GroupOptions { max_schemas: 3, ..GroupOptions::default() };
        let g = group(&files, &opts).unwrap();
        assert_eq!(g.tables[0].files.len(), 10);
        let capped = g.set_aside.iter().filter(|s| s.reason.contains("max_schemas")).count();
        assert_eq!(capped, 4, "clusters: main, x0, x1; x2..x5 beyond the cap");
        assert_eq!(g.set_aside.len(), 6);
    }

    #[test]
    fn merge_limits_set_a_file_aside() {
        let a = names("a,b,c");
        let b = names("a,b,c,d");
        let opts = GroupOptions { limits: Limits { max_columns: 3, ..Limits::default() }, ..GroupOptions::default() };
        let g = group(&[file("1.json", &a), file("2.json", &b)], &opts).unwrap();
        assert_eq!(g.tables[0].files, ["1.json"]);
        assert!(g.set_aside[0].reason.contains("max_columns"), "{}", g.set_aside[0].reason);
    }

    #[test]
    fn table_level_forces_roots_and_sets_aside_what_is_above() {
        let a = names("a,b");
        let b = names("c,d");
        let files = vec![file("x/1/f.json", &a), file("x/2/f.json", &b), file("loose.json", &a)];
        let g = group(&files, &GroupOptions { table_level: Some(2), ..GroupOptions::default() }).unwrap();
        assert_eq!(tables(&g), [("1".to_string(), "x/1".to_string(), 1), ("2".to_string(), "x/2".to_string(), 1)]);
        assert!(g.set_aside[0].reason.contains("above the table level 2"));
    }

    #[test]
    fn names_are_sanitised_and_unique() {
        let s = names("a");
        let files = vec![
            file("A/Year=2017/1.json", &names("q")),
            file("b/year=2017/1.json", &s),
            file("c/x.json", &names("z")),
        ];
        let g = group(&files, &GroupOptions { table_level: Some(2), ..GroupOptions::default() }).unwrap();
        let n: Vec<_> = g.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(n, ["year_2017", "year_2017_2"]);
    }

    #[test]
    fn partition_keys_colliding_with_columns_are_warned_about() {
        let s = names("year,v");
        let g = group(&[file("year=2024/1.json", &s)], &GroupOptions::default()).unwrap();
        assert_eq!(g.tables[0].warnings, ["partition key `year` is also a data column"]);
    }

    #[test]
    fn invalid_and_too_deep_paths_are_set_aside() {
        let s = names("a");
        let deep = format!("{}f.json", "d/".repeat(5));
        let files = vec![
            file("/abs.json", &s),
            file("a//b.json", &s),
            file("../x.json", &s),
            file(&deep, &s),
            file("ok.json", &s),
        ];
        let g = group(&files, &GroupOptions { max_folder_depth: 4, ..GroupOptions::default() }).unwrap();
        assert_eq!(g.tables[0].files, ["ok.json"]);
        assert_eq!(g.set_aside.len(), 4);
        assert!(g.set_aside.iter().any(|s| s.reason.contains("max_folder_depth")));
    }

    #[test]
    fn exclusions() {
        let ex = Exclusions::new(&["_tmp/**", "**/*.bak", "**.jsonl", "logs/{a,b}/*.json", "*.crc"]).unwrap();
        assert_eq!(ex.matching("_tmp/x/y.json"), Some("_tmp/**"));
        assert_eq!(ex.matching("a/b/c.bak"), Some("**/*.bak"));
        assert_eq!(ex.matching("c.bak"), Some("**/*.bak"), "** matches zero folders");
        assert_eq!(ex.matching("deep/er/x.jsonl"), Some("**.jsonl"), "Glue's glued **");
        assert_eq!(ex.matching("x.jsonl"), Some("**.jsonl"));
        assert_eq!(ex.matching("logs/b/1.json"), Some("logs/{a,b}/*.json"));
        assert_eq!(ex.matching("logs/c/1.json"), None);
        assert_eq!(ex.matching("logs/a/deeper/1.json"), None, "* stays in its folder");
        assert_eq!(ex.matching("x.crc"), Some("*.crc"));
        assert_eq!(ex.matching("sub/x.crc"), None);
        assert!(Exclusions::new(&["a/{b"]).is_err());
        assert!(Exclusions::new(&["[z-a"]).is_err());
        let many = "{a,b,c,d,e,f,g,h}/{a,b,c,d,e,f,g,h}/{a,b,c,d,e,f,g,h}";
        assert!(matches!(Exclusions::new(&[many]), Err(CatalogError::Exclusion { .. })));
        let nested = format!("{}a{}", "{".repeat(10_000), "}".repeat(10_000));
        assert!(matches!(Exclusions::new(&[nested]), Err(CatalogError::Exclusion { .. })));
        let s = names("a");
        let opts = GroupOptions { exclusions: vec!["*.bak".into()], ..GroupOptions::default() };
        let g = group(&[file("x.bak", &s), file("x.json", &s)], &opts).unwrap();
        assert_eq!(g.excluded, ["x.bak"]);
        assert_eq!(g.tables[0].files, ["x.json"]);
    }

    #[test]
    fn options_are_validated() {
        for o in [
            GroupOptions { similarity_threshold: 1.5, ..GroupOptions::default() },
            GroupOptions { max_schemas: 0, ..GroupOptions::default() },
            GroupOptions { table_level: Some(100), ..GroupOptions::default() },
        ] {
            assert!(matches!(group(&[], &o), Err(CatalogError::Options { .. })));
        }
        assert_eq!(group(&[], &GroupOptions::default()).unwrap(), Grouping::default());
    }
}
