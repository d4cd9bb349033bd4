//! One catalog table as a DataFusion [`TableProvider`]: exactly the table's files, with their
//! partition values, pruned by the query's filters on partition columns before any file is
//! opened.
//!
//! A table is its file list, not its folder (see `ticklake_catalog::group`): the crawler may
//! have set aside strays or another table's files under the same location, and reading the
//! folder would read them too. New files become visible at the next (incremental) crawl — the
//! local runner crawls after every sink commit.
//!
//! Types follow the catalog (Glue's names) mapped to Arrow: `int` → Int32, `bigint` → Int64,
//! `double` → Float64, `decimal(p,s)` → Decimal128, `string` → Utf8, `date` → Date32, every
//! `timestamp` → Timestamp(µs) without a zone (UTC, as Athena's `timestamp`), `struct`,
//! `array`, `map`. Files whose physical types differ (Parquet dictionaries, zoned or
//! nanosecond timestamps) are cast by DataFusion's schema adapter while reading.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result, ScalarValue, plan_err};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::{expr_applicable_for_cols, filter_partitioned_file};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use ticklake_catalog::store::{FileRecord, TableRecord, decode_path};
use ticklake_catalog::{Compression, EpochUnit, TableFormat, TsRepr};

/// Files and bytes a query's scans kept and pruned, summed over every table it reads.
#[derive(Debug, Default)]
pub struct ScanStats {
    pub files_total: AtomicU64,
    pub files_scanned: AtomicU64,
    pub files_pruned: AtomicU64,
    /// Bytes of the files kept (what a scan may read at most).
    pub bytes_in_scanned_files: AtomicU64,
}

/// Where a table's files live, as DataFusion addresses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `file:///abs/dir/`
    Local,
    /// `s3://bucket/prefix/`
    S3 { bucket: String },
}

impl Location {
    /// The store and the (decoded) object path of an absolute, percent-encoded file URL.
    pub fn split(url: &str) -> std::result::Result<(Location, String), String> {
        let decode = |p: &str| decode_path(p).ok_or_else(|| format!("{url}: the path is not UTF-8"));
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!("{url}: a file URL must hold an absolute path"));
            }
            let path = decode(path)?;
            if path.split('/').any(|part| part == "..") {
                return Err(format!("{url}: `..` is not allowed in a location"));
            }
            return Ok((Location::Local, path.trim_start_matches('/').to_string()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid {
                return Err(format!("{url}: {bucket:?} is not a valid bucket name"));
            }
            return Ok((Location::S3 { bucket: bucket.to_string() }, decode(key)?));
        }
        Err(format!("{url}: only file:// and s3:// locations are supported"))
    }

    pub fn store_url(&self) -> ObjectStoreUrl {
        match self {
            Location::Local => ObjectStoreUrl::local_filesystem(),
            Location::S3 { bucket } => {
                ObjectStoreUrl::parse(format!("s3://{bucket}")).unwrap_or_else(|_| ObjectStoreUrl::local_filesystem())
            }
        }
    }
}

/// The Arrow type of a catalog type (see the module documentation).
pub fn arrow_type(t: &ticklake_catalog::DataType) -> DataType {
    use ticklake_catalog::DataType as C;
    match t {
        C::Null | C::String => DataType::Utf8,
        C::Boolean => DataType::Boolean,
        C::Int => DataType::Int32,
        C::BigInt => DataType::Int64,
        C::Double => DataType::Float64,
        C::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
        C::Binary => DataType::Binary,
        C::Date => DataType::Date32,
        // Epoch numbers keep their unit: the JSON reader takes an integer as a count of the
        // column type's unit, so `ts_ms` must be read as milliseconds, not microseconds.
        C::Timestamp(TsRepr::Epoch(u)) => DataType::Timestamp(time_unit(*u), None),
        C::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        C::Struct(fields) => DataType::Struct(fields.iter().map(arrow_field).collect::<Vec<_>>().into()),
        C::Array(item) => DataType::List(Arc::new(Field::new("item", arrow_type(item), true))),
        C::Map(k, v) => {
            let entries =
                Fields::from(vec![Field::new("key", arrow_type(k), false), Field::new("value", arrow_type(v), true)]);
            DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
        }
    }
}

fn time_unit(u: EpochUnit) -> TimeUnit {
    match u {
        EpochUnit::Seconds => TimeUnit::Second,
        EpochUnit::Millis => TimeUnit::Millisecond,
        EpochUnit::Micros => TimeUnit::Microsecond,
        EpochUnit::Nanos => TimeUnit::Nanosecond,
    }
}

fn arrow_field(f: &ticklake_catalog::Field) -> Field {
    // Every column is nullable: a later file may lack it (the crawler's "missing → nullable"
    // is about the sample, and a table grows).
    Field::new(&f.name, arrow_type(&f.data_type), true)
}

/// The Arrow schema of a table: its columns, then its partition keys.
pub fn arrow_schema(record: &TableRecord) -> Schema {
    let mut fields: Vec<Field> = record.schema.columns.iter().map(arrow_field).collect();
    fields.extend(record.partition_keys.iter().map(|k| Field::new(&k.name, arrow_type(&k.data_type), true)));
    Schema::new(fields)
}

/// A catalog table, ready to scan.
#[derive(Debug)]
pub struct CatalogTable {
    file_schema: SchemaRef,
    /// Columns (by index) the reader yields as integers and the table types as timestamps.
    epoch_casts: Vec<(usize, DataType)>,
    partition_fields: Vec<FieldRef>,
    table_schema: SchemaRef,
    files: Vec<PartitionedFile>,
    /// Set when the catalog holds no file list (a table registered without a crawl): the
    /// scan lists this folder (decoded object path) instead.
    list_root: Option<String>,
    table_format: TableFormat,
    format: Arc<dyn FileFormat>,
    location: Location,
    stats: Arc<ScanStats>,
}

/// Most files one listing of a registered table's folder may yield.
const MAX_LISTED_FILES: usize = 1_000_000;

/// Whether a listed file name fits the table's format (by extension, compression included).
fn fits_format(name: &str, format: &TableFormat) -> bool {
    let base = match format.compression() {
        Compression::None => name,
        Compression::Gzip => match name.strip_suffix(".gz") {
            Some(b) => b,
            None => return false,
        },
        Compression::Zstd => match name.strip_suffix(".zst") {
            Some(b) => b,
            None => return false,
        },
    };
    let ext = base.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match format {
        TableFormat::Parquet => ext == "parquet",
        TableFormat::Json(_) => matches!(ext.as_str(), "json" | "jsonl" | "ndjson"),
        TableFormat::Csv(..) => matches!(ext.as_str(), "csv" | "tsv" | "txt" | "psv"),
    }
}

/// A time standing for a file's change tag: the modification time itself when the tag is one
/// (nanoseconds, local files), else a hash of it (an S3 ETag). Different tags give different
/// times, so a cache keyed on (path, size, time) never serves a changed file's old contents.
fn change_stamp(tag: &str) -> chrono::DateTime<chrono::Utc> {
    let nanos = tag.parse::<i64>().unwrap_or_else(|_| {
        // FNV-1a: stable across runs and builds, unlike the standard library's hasher.
        let h = tag.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        (h >> 1) as i64
    });
    chrono::DateTime::from_timestamp_nanos(nanos)
}

/// The partition values of a file at `rel` (relative to the table's folder) for `keys`:
/// `key=value` folders (percent-decoded; Hive's default partition is null) or, for positional
/// keys (`partition_0`, …), the folder name. `None` when the depth or a key does not match.
fn partition_values_of(rel: &str, keys: &[String]) -> Option<Vec<Option<String>>> {
    let parts: Vec<&str> = rel.split('/').collect();
    let (_, dirs) = parts.split_last()?;
    if dirs.len() != keys.len() {
        return None;
    }
    let mut values = Vec::with_capacity(keys.len());
    for (dir, key) in dirs.iter().zip(keys) {
        let raw = match dir.split_once('=') {
            Some((k, v)) if k == key => v,
            Some(_) => return None,
            None if key.starts_with("partition_") => dir,
            None => return None,
        };
        let value = decode_path(raw)?;
        values.push((value != "__HIVE_DEFAULT_PARTITION__").then_some(value));
    }
    Some(values)
}

impl CatalogTable {
    /// Builds the provider from the catalog's record and file list. Refuses files outside the
    /// table's location (nothing outside the catalog's locations is ever read).
    pub fn new(record: &TableRecord, files: &[FileRecord], stats: Arc<ScanStats>) -> Result<Self> {
        let (location, _) = match Location::split(&record.location) {
            Ok(l) => l,
            Err(e) => return plan_err!("table {}.{}: {e}", record.database, record.name),
        };
        let columns: Vec<Field> = record.schema.columns.iter().map(arrow_field).collect();
        // The CSV reader parses timestamps from text only: an epoch column is read as its
        // integer and cast to its timestamp type above the scan (see `scan`).
        let mut epoch_casts = Vec::new();
        let mut file_columns = columns.clone();
        if matches!(record.format, TableFormat::Csv(..)) {
            for (i, c) in record.schema.columns.iter().enumerate() {
                if let ticklake_catalog::DataType::Timestamp(TsRepr::Epoch(_)) = c.data_type {
                    epoch_casts.push((i, columns[i].data_type().clone()));
                    file_columns[i] = Field::new(&c.name, DataType::Int64, true);
                }
            }
        }
        let file_schema: SchemaRef = Arc::new(Schema::new(file_columns));
        let partition_fields: Vec<FieldRef> = record
            .partition_keys
            .iter()
            .map(|k| Arc::new(Field::new(&k.name, arrow_type(&k.data_type), true)))
            .collect();
        let mut all: Vec<FieldRef> = columns.into_iter().map(Arc::new).collect();
        all.extend(partition_fields.iter().cloned());
        let table_schema = Arc::new(Schema::new(all));
        let mut parts = Vec::with_capacity(files.len());
        for f in files {
            // Inside the folder, not merely sharing a prefix (`…/t` vs `…/t2/x`).
            if !f.url.starts_with(&record.location)
                || !(record.location.ends_with('/') || f.url[record.location.len()..].starts_with('/'))
            {
                return plan_err!(
                    "table {}.{}: file {} is outside its location {}",
                    record.database,
                    record.name,
                    f.url,
                    record.location
                );
            }
            let (file_location, path) = match Location::split(&f.url) {
                Ok(l) => l,
                Err(e) => return plan_err!("table {}.{}: {e}", record.database, record.name),
            };
            if file_location != location {
                return plan_err!("table {}.{}: file {} is in another store", record.database, record.name, f.url);
            }
            if f.partition_values.len() != partition_fields.len() {
                return plan_err!(
                    "table {}.{}: file {} has {} partition values for {} partition keys",
                    record.database,
                    record.name,
                    f.url,
                    f.partition_values.len(),
                    partition_fields.len()
                );
            }
            let mut values = Vec::with_capacity(partition_fields.len());
            for (v, field) in f.partition_values.iter().zip(&partition_fields) {
                let text = ScalarValue::Utf8(v.clone());
                values.push(text.cast_to(field.data_type())?);
            }
            let mut part = PartitionedFile::new(path, f.size).with_partition_values(values);
            // The engine's Parquet metadata cache is valid for a (path, size, last_modified);
            // the crawl's change tag stands in for the modification time.
            part.object_meta.last_modified = change_stamp(&f.tag);
            parts.push(part);
        }
        let format = file_format(&record.format, &record.properties);
        let list_root = if files.is_empty() && !record.deprecated {
            match Location::split(&record.location) {
                Ok((_, root)) => Some(root.trim_end_matches('/').to_string()),
                Err(e) => return plan_err!("table {}.{}: {e}", record.database, record.name),
            }
        } else {
            None
        };
        Ok(CatalogTable {
            file_schema,
            epoch_casts,
            partition_fields,
            table_schema,
            files: parts,
            list_root,
            table_format: record.format,
            format,
            location,
            stats,
        })
    }

    /// Lists a registered table's folder (see `list_root`): data files of the table's format,
    /// hidden names (`.`/`_`) left out, partition values from the folders.
    async fn listed_files(&self, state: &dyn Session, root: &str) -> Result<Vec<PartitionedFile>> {
        use futures::StreamExt;
        let store = state.runtime_env().object_store(self.location.store_url())?;
        let prefix = object_store::path::Path::from(root);
        let keys: Vec<String> = self.partition_fields.iter().map(|f| f.name().clone()).collect();
        let mut out = Vec::new();
        let mut listing = store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let full = meta.location.to_string();
            let rel = full.strip_prefix(prefix.as_ref()).unwrap_or(&full).trim_start_matches('/');
            if rel.split('/').any(|p| p.starts_with('.') || p.starts_with('_')) {
                continue;
            }
            let name = rel.rsplit('/').next().unwrap_or(rel);
            if !fits_format(name, &self.table_format) {
                continue;
            }
            let Some(values) = partition_values_of(rel, &keys) else { continue };
            let mut typed = Vec::with_capacity(values.len());
            for (v, field) in values.into_iter().zip(&self.partition_fields) {
                // A folder value that does not fit the key's type is not this table's file.
                match ScalarValue::Utf8(v).cast_to(field.data_type()) {
                    Ok(t) => typed.push(t),
                    Err(_) => break,
                }
            }
            if typed.len() != self.partition_fields.len() {
                continue;
            }
            out.push(PartitionedFile::new_from_meta(meta).with_partition_values(typed));
            if out.len() > MAX_LISTED_FILES {
                return plan_err!("the table's folder holds more than {MAX_LISTED_FILES} files; crawl it instead");
            }
        }
        out.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
        Ok(out)
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn partition_names(&self) -> Vec<&str> {
        self.partition_fields.iter().map(|f| f.name().as_str()).collect()
    }
}

fn compression(c: Compression) -> FileCompressionType {
    match c {
        Compression::None => FileCompressionType::UNCOMPRESSED,
        Compression::Gzip => FileCompressionType::GZIP,
        Compression::Zstd => FileCompressionType::ZSTD,
    }
}

/// The DataFusion reader of a catalog format. JSON is read as one object after another
/// (lines, or one object per file); the `json_layout = array` property selects the reader of
/// files holding one array of objects.
fn file_format(format: &TableFormat, properties: &BTreeMap<String, String>) -> Arc<dyn FileFormat> {
    match format {
        TableFormat::Parquet => Arc::new(ParquetFormat::default()),
        TableFormat::Json(c) => Arc::new(
            JsonFormat::default()
                .with_file_compression_type(compression(*c))
                .with_newline_delimited(properties.get("json_layout").map(String::as_str) != Some("array")),
        ),
        TableFormat::Csv(d, c) => Arc::new(
            CsvFormat::default()
                .with_delimiter(d.delimiter)
                .with_has_header(d.header)
                .with_quote(b'"')
                .with_file_compression_type(compression(*c)),
        ),
    }
}

#[async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table_schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let names = self.partition_names();
        let partition_filters: Vec<Expr> =
            filters.iter().filter(|f| !names.is_empty() && expr_applicable_for_cols(&names, f)).cloned().collect();
        let listed;
        let files = match &self.list_root {
            Some(root) => {
                listed = self.listed_files(state, root).await?;
                &listed
            }
            None => &self.files,
        };
        let total = files.len() as u64;
        let kept: Vec<PartitionedFile> = if partition_filters.is_empty() {
            files.clone()
        } else {
            let partition_schema = DFSchema::try_from(Schema::new(self.partition_fields.clone()))?;
            let mut kept = Vec::new();
            for f in files {
                if let Some(f) = filter_partitioned_file(f.clone(), &partition_filters, &partition_schema)? {
                    kept.push(f);
                }
            }
            kept
        };
        let bytes: u64 = kept.iter().map(|f| f.object_meta.size).sum();
        self.stats.files_total.fetch_add(total, Ordering::Relaxed);
        self.stats.files_scanned.fetch_add(kept.len() as u64, Ordering::Relaxed);
        self.stats.files_pruned.fetch_add(total - kept.len() as u64, Ordering::Relaxed);
        self.stats.bytes_in_scanned_files.fetch_add(bytes, Ordering::Relaxed);
        if kept.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.table_schema.project(p)?),
                None => self.schema(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let groups = FileGroup::new(kept).split_files(state.config().target_partitions().max(1));
        let table_schema = TableSchemaBuilder::new(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let source = self.format.file_source(table_schema);
        let config = FileScanConfigBuilder::new(self.location.store_url(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        let plan = self.format.create_physical_plan(state, config).await?;
        if self.epoch_casts.is_empty() {
            return Ok(plan);
        }
        let out = plan.schema();
        let mut exprs = Vec::with_capacity(out.fields().len());
        for (j, field) in out.fields().iter().enumerate() {
            let t = projection.map_or(j, |p| p[j]);
            let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(field.name(), j));
            let expr = match self.epoch_casts.iter().find(|(i, _)| *i == t) {
                Some((_, to)) => Arc::new(CastExpr::new(column, to.clone(), None)) as Arc<dyn PhysicalExpr>,
                None => column,
            };
            exprs.push(ProjectionExpr { expr, alias: field.name().clone() });
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let names = self.partition_names();
        Ok(filters
            .iter()
            .map(|f| {
                if !names.is_empty() && expr_applicable_for_cols(&names, f) {
                    // Pruning decides whole files exactly: nothing is left to filter.
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_tags_stand_for_distinct_times() {
        assert_eq!(change_stamp("1764081000123456789").timestamp_nanos_opt(), Some(1_764_081_000_123_456_789));
        assert_eq!(
            change_stamp("\"9b2cf535f27731c974343645a3985328\""),
            change_stamp("\"9b2cf535f27731c974343645a3985328\"")
        );
        assert_ne!(
            change_stamp("\"9b2cf535f27731c974343645a3985328\""),
            change_stamp("\"9b2cf535f27731c974343645a3985329\"")
        );
        assert_ne!(change_stamp("1"), change_stamp("2"));
    }

    #[test]
    fn locations_are_split_and_others_refused() {
        assert_eq!(Location::split("file:///data/t/a.json").unwrap(), (Location::Local, "data/t/a.json".into()));
        assert_eq!(
            Location::split("s3://lake/ticks/x.parquet").unwrap(),
            (Location::S3 { bucket: "lake".into() }, "ticks/x.parquet".into())
        );
        assert!(Location::split("https://example.com/x").unwrap_err().contains("only file://"));
        assert!(Location::split("file://relative").unwrap_err().contains("absolute"));
        assert!(Location::split("s3://A_B/x").unwrap_err().contains("bucket"));
        assert_eq!(Location::split("file:///d/k=a%252Fb/x").unwrap().1, "d/k=a%2Fb/x");
        assert!(Location::split("file:///d/../etc/passwd").unwrap_err().contains(".."));
    }

    #[test]
    fn listed_files_fit_the_format_and_the_partition_keys() {
        let keys = vec!["year".to_string(), "partition_1".to_string()];
        assert_eq!(
            partition_values_of("year=2026/eu/a.parquet", &keys),
            Some(vec![Some("2026".into()), Some("eu".into())])
        );
        assert_eq!(
            partition_values_of("year=__HIVE_DEFAULT_PARTITION__/x/a.parquet", &keys),
            Some(vec![None, Some("x".into())])
        );
        assert_eq!(partition_values_of("month=1/x/a.parquet", &keys), None);
        assert_eq!(partition_values_of("year=2026/a.parquet", &keys), None);
        assert!(fits_format("a.parquet", &TableFormat::Parquet));
        assert!(!fits_format("a.json", &TableFormat::Parquet));
        assert!(fits_format("a.json.gz", &TableFormat::Json(Compression::Gzip)));
        assert!(!fits_format("a.json", &TableFormat::Json(Compression::Gzip)));
    }
}
