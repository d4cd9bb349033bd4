//! The Glue Data Catalog of an `S3Sink`: its database, and either a crawler over the sink's
//! prefix (modes `crawler` and `event`) or a table kept with partition projection (mode
//! `projection`).
//!
//! **Crawler modes.** One crawler per sink, named by [`Owner::aws_name`], with one S3
//! target: the sink's prefix, excluding the dead-letter folder, the exactly-once claims
//! (`_ticklake/**`) and objects of the other format. Its `Configuration` makes one prefix one
//! table (`CombineCompatibleSchemas`, and `TableLevelConfiguration` = the level of the prefix,
//! counting the bucket as level 1) and lets partitions inherit the table's schema. Glue names a
//! table after the last folder of the include path (lower-cased, other characters than letters,
//! digits and `_` replaced by `_`; the bucket's name for an empty prefix), prefixed with the
//! crawler's `TablePrefix`; so the desired table name is reached with `TablePrefix` = the name
//! minus that folder name when it ends with it, and otherwise cannot be: the table is then
//! named after the folder, [`GlueDesired::table`] says so, and [`GlueDesired::warnings`]
//! explains why (for an explicit `glue.table`). Mode `crawler` runs on `schedule`; mode
//! `event` crawls only what the S3 event queue reports (`CRAWL_EVENT_MODE`).
//!
//! A crawler is started once right after it is created, so the data already landed is
//! catalogued without waiting for the schedule (or for the first event); later runs are the
//! schedule's. A crawler is updated only while it is not crawling (Glue refuses otherwise):
//! [`ensure`] then answers [`ErrorKind::Unavailable`] and the operator tries again later.
//!
//! **Projection mode.** No crawler: the table is written by the operator, with the tick schema
//! (see `workers/src/sink/encode.rs`) and partition projection, so every new hour folder is
//! queryable in Athena at once. Partition keys are strings as in the Hive folders (`year`,
//! `month`, `day`, `hour`, and `symbol` when partitioning by symbol), the same types a crawler
//! gives them, so the named queries work in every mode.
//!
//! **When to use which.** `projection` for the tick layout ticklake writes itself: no crawler
//! cost, no delay, nothing to run; queries must filter on `year` (and should on `month`/`day`)
//! because projection enumerates the partitions a query may touch. `crawler` when the schema
//! may change (the crawler follows it) or other tools read the crawled partitions;
//! `event` for big prefixes, where a crawl of only the new folders is much cheaper than a full
//! crawl.
//!
//! **Ownership.** The database, crawler and table carry the owner's tags (a table is tagged
//! right after `CreateTable`, which takes no tags, and also carries the owner in its
//! parameters so a failed tagging cannot orphan it). A table the sink's own crawler wrote
//! (`UPDATED_BY_CRAWLER` = our crawler) is ours too. The database may be shared by several
//! sinks: it is created when missing, never updated, and deleted only when it is ours and
//! holds no table any more.

use crate::Clients;
use crate::error::{AwsError, ErrorKind};
use crate::tags::{OWNER_KEY, Owner};
use aws_sdk_glue::error::ProvideErrorMetadata;
use aws_sdk_glue::types::{
    Column, Crawler, CrawlerTargets, DatabaseInput, DeleteBehavior, RecrawlBehavior, RecrawlPolicy, S3Target,
    SchemaChangePolicy as GluePolicy, SerDeInfo, StorageDescriptor, Table, TableInput, UpdateBehavior,
};
use std::collections::{BTreeMap, HashMap};
use ticklake_api::crd::{CatalogMode, S3SinkSpec, SchemaChangePolicy, SinkFormat, TimeGranularity};

const SERVICE: &str = "glue";

/// Table parameter naming the owner (besides the tags): see the module docs.
pub const OWNER_PARAMETER: &str = OWNER_KEY;
/// Table parameter Glue crawlers set to their name.
pub const UPDATED_BY_CRAWLER: &str = "UPDATED_BY_CRAWLER";
/// Folder of the sink's exactly-once claims, below its prefix.
pub const CLAIMS_FOLDER: &str = "_ticklake";
/// First year partition projection covers (the tick format accepts event times from 1900 on).
pub const PROJECTION_FIRST_YEAR: u32 = 1900;

/// What the catalogue of one sink should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlueDesired {
    pub database: String,
    /// The table the catalogue will hold (see the module docs for crawler naming).
    pub table: String,
    /// `s3://<bucket>/<prefix>/`: the table's location and the crawler's include path.
    pub location: String,
    /// The crawler this owner's sink uses, whether desired or not: a crawler of that name
    /// that is ours but not desired (after a mode change) is deleted.
    pub crawler_name: String,
    /// Modes `crawler` and `event`.
    pub crawler: Option<CrawlerDesired>,
    /// Mode `projection`.
    pub projection_table: Option<TableDesired>,
    /// Things the spec asks for that cannot be done as asked (for Events).
    pub warnings: Vec<String>,
}

/// A crawler's settings, as [`ensure`] sets and compares them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrawlerDesired {
    pub name: String,
    /// IAM role ARN (or name) the crawler runs as.
    pub role: String,
    pub database: String,
    pub description: String,
    /// The S3 include path, `s3://<bucket>/<prefix>/`.
    pub path: String,
    /// Glob patterns relative to `path`.
    pub exclusions: Vec<String>,
    /// The SQS queue of S3 events (mode `event`).
    pub event_queue_arn: Option<String>,
    /// Glue cron expression (mode `crawler`); `None` runs on demand only.
    pub schedule: Option<String>,
    pub table_prefix: Option<String>,
    /// `UPDATE_IN_DATABASE` or `LOG`.
    pub update_behavior: String,
    /// Always `LOG`: a crawler never deletes tables or partitions.
    pub delete_behavior: String,
    /// `CRAWL_EVERYTHING` or `CRAWL_EVENT_MODE`.
    pub recrawl_behavior: String,
    /// The crawler's `Configuration` JSON.
    pub configuration: String,
}

/// A column of a Glue table (Hive type names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDesired {
    pub name: String,
    pub r#type: String,
}

/// A table's definition, as [`ensure`] writes and compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDesired {
    pub name: String,
    pub database: String,
    pub description: String,
    pub location: String,
    pub columns: Vec<ColumnDesired>,
    pub partition_keys: Vec<ColumnDesired>,
    pub input_format: String,
    pub output_format: String,
    pub serde_library: String,
    pub serde_parameters: BTreeMap<String, String>,
    /// Table parameters: classification, partition projection, the owner.
    pub parameters: BTreeMap<String, String>,
}

/// What [`ensure`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlueObserved {
    pub database: String,
    pub table: String,
    pub crawler: Option<String>,
    /// `READY`, `RUNNING` or `STOPPING`.
    pub crawler_state: Option<String>,
    /// `SUCCEEDED`, `CANCELLED` or `FAILED`.
    pub last_crawl_status: Option<String>,
    pub last_crawl_error: Option<String>,
    /// RFC 3339.
    pub last_crawl_start: Option<String>,
    /// Human-readable, for Events: `created crawler ticklake-ns-x`.
    pub changes: Vec<String>,
}

// ------------------------------------------------------------------------------ desired (pure)

/// The default table name: the topic, lower-cased, other characters than letters and digits
/// replaced by `_`.
pub fn default_table(topic: &str) -> String {
    topic.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// How Glue turns a folder name into a table name: lower-case; other characters than letters,
/// digits and `_` become `_`.
pub fn glue_table_name(folder: &str) -> String {
    folder.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// `s3://<bucket>/<prefix>/` (`s3://<bucket>/` for an empty prefix).
pub fn location(spec: &S3SinkSpec) -> String {
    if spec.prefix.is_empty() {
        format!("s3://{}/", spec.bucket)
    } else {
        format!("s3://{}/{}/", spec.bucket, spec.prefix)
    }
}

/// The crawler `TableLevelConfiguration` of the sink's prefix: the bucket is level 1, each
/// folder of the prefix one more.
pub fn table_level(spec: &S3SinkSpec) -> usize {
    if spec.prefix.is_empty() { 1 } else { 1 + spec.prefix.split('/').count() }
}

/// The crawler `Configuration` JSON: one table per prefix, partitions inherit the table's
/// schema.
pub fn crawler_configuration(table_level: usize) -> String {
    serde_json::json!({
        "Version": 1.0,
        "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas", "TableLevelConfiguration": table_level},
        "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
    })
    .to_string()
}

/// The crawler's exclusions, relative to the include path: the dead letters, the claims, and
/// objects of the other format.
pub fn exclusions(spec: &S3SinkSpec) -> Vec<String> {
    let other = match spec.format {
        SinkFormat::Parquet => "**.jsonl",
        SinkFormat::JsonLines => "**.parquet",
    };
    vec![format!("{}/**", spec.dead_letter.prefix), format!("{CLAIMS_FOLDER}/**"), other.to_string()]
}

/// The catalogue of `spec` (None without `spec.glue`). `role` is the crawler's IAM role (the
/// spec's `glue.crawlerRole` or the operator's default); `event_queue_arn` the SQS queue of
/// the bucket's events, for mode `event`.
pub fn desired(spec: &S3SinkSpec, owner: &Owner, role: &str, event_queue_arn: Option<&str>) -> Option<GlueDesired> {
    let g = spec.glue.as_ref()?;
    let location = location(spec);
    let crawler_name = owner.aws_name("", 255);
    let wanted = g.table.clone().unwrap_or_else(|| default_table(&spec.topic));
    let mut warnings = Vec::new();
    let (table, crawler, projection_table) = match g.mode {
        CatalogMode::Projection => {
            let t = projection_table(spec, &g.database, &wanted, owner, &mut warnings);
            (wanted, None, Some(t))
        }
        CatalogMode::Crawler | CatalogMode::Event => {
            let folder = spec.prefix.rsplit('/').next().filter(|f| !f.is_empty()).unwrap_or(&spec.bucket);
            let crawled = glue_table_name(folder);
            let (table, table_prefix) = match wanted.strip_suffix(crawled.as_str()) {
                Some(p) => (wanted.clone(), Some(p.to_string()).filter(|p| !p.is_empty())),
                None => {
                    if g.table.is_some() {
                        warnings.push(format!(
                            "glue.table {wanted:?} cannot be a crawler's table here: Glue names the table after the \
                             last folder of {location} ({crawled:?}), after an optional prefix; the table will be \
                             {crawled:?} (use a name ending in {crawled:?}, or mode projection)"
                        ));
                    }
                    (crawled.clone(), None)
                }
            };
            let event = g.mode == CatalogMode::Event;
            if event && event_queue_arn.is_none() {
                warnings.push(
                    "mode event: no S3 event queue yet; the crawler crawls everything until it has one".to_string(),
                );
            }
            let event_mode = event && event_queue_arn.is_some();
            let crawler = CrawlerDesired {
                name: crawler_name.clone(),
                role: role.to_string(),
                database: g.database.clone(),
                description: format!(
                    "ticklake: catalogues {location} for {} (managed by the ticklake operator; edits are reverted)",
                    owner.id()
                ),
                path: location.clone(),
                exclusions: exclusions(spec),
                event_queue_arn: if event_mode { event_queue_arn.map(str::to_string) } else { None },
                schedule: if g.mode == CatalogMode::Crawler { g.schedule.clone() } else { None },
                table_prefix,
                update_behavior: match g.schema_change_policy {
                    SchemaChangePolicy::Update => "UPDATE_IN_DATABASE",
                    SchemaChangePolicy::Log => "LOG",
                }
                .to_string(),
                delete_behavior: "LOG".to_string(),
                recrawl_behavior: if event_mode { "CRAWL_EVENT_MODE" } else { "CRAWL_EVERYTHING" }.to_string(),
                configuration: crawler_configuration(table_level(spec)),
            };
            (table, Some(crawler), None)
        }
    };
    Some(GlueDesired {
        database: g.database.clone(),
        table,
        location,
        crawler_name,
        crawler,
        projection_table,
        warnings,
    })
}

fn col(name: &str, t: &str) -> ColumnDesired {
    ColumnDesired { name: name.to_string(), r#type: t.to_string() }
}

/// The columns of the objects a sink writes, as Glue (Hive) types: the Parquet schema of
/// `workers/src/sink/encode.rs` (dictionary strings → `string`, timestamp(µs, UTC) →
/// `timestamp`, int64 → `bigint`, float64 → `double`), or the fields of a version-1 tick
/// message for JSON lines.
pub fn tick_columns(format: SinkFormat) -> Vec<ColumnDesired> {
    let head: Vec<ColumnDesired> = match format {
        SinkFormat::Parquet => {
            vec![col("symbol", "string"), col("kind", "string"), col("event_time", "timestamp"), col("seq", "bigint")]
        }
        SinkFormat::JsonLines => vec![
            col("v", "int"),
            col("symbol", "string"),
            col("ts_us", "bigint"),
            col("seq", "bigint"),
            col("kind", "string"),
        ],
    };
    let body = [
        ("price", "double"),
        ("size", "bigint"),
        ("bid", "double"),
        ("bid_size", "bigint"),
        ("ask", "double"),
        ("ask_size", "bigint"),
        ("open", "double"),
        ("high", "double"),
        ("low", "double"),
        ("close", "double"),
        ("adj_close", "double"),
        ("volume", "double"),
        ("close_usd", "double"),
    ];
    head.into_iter().chain(body.iter().map(|(n, t)| col(n, t))).collect()
}

/// Partition projection parameters of the sink's Hive layout (plus `storage.location.template`).
///
/// * `year`: `date` projection, format `yyyy`, from [`PROJECTION_FIRST_YEAR`] to `NOW`;
/// * `month`, `day`, `hour`: `enum` of the zero-padded folder values (`01`..`12`, `01`..`31`,
///   `00`..`23`);
/// * `symbol` (partitioning by symbol): `injected` — symbols are not known in advance, so
///   every query must then say `symbol = '...'`.
pub fn projection_parameters(spec: &S3SinkSpec) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    let list = |from: u32, to: u32| (from..=to).map(|i| format!("{i:02}")).collect::<Vec<_>>().join(",");
    put("projection.enabled", "true".into());
    put("projection.year.type", "date".into());
    put("projection.year.format", "yyyy".into());
    put("projection.year.range", format!("{PROJECTION_FIRST_YEAR},NOW"));
    put("projection.year.interval", "1".into());
    put("projection.year.interval.unit", "YEARS".into());
    put("projection.month.type", "enum".into());
    put("projection.month.values", list(1, 12));
    put("projection.day.type", "enum".into());
    put("projection.day.values", list(1, 31));
    let mut template = format!("{}year=${{year}}/month=${{month}}/day=${{day}}/", location(spec));
    if spec.partitioning.granularity == TimeGranularity::Hour {
        put("projection.hour.type", "enum".into());
        put("projection.hour.values", list(0, 23));
        template.push_str("hour=${hour}/");
    }
    if spec.partitioning.by_symbol {
        put("projection.symbol.type", "injected".into());
        template.push_str("symbol=${symbol}/");
    }
    put("storage.location.template", template);
    p
}

/// The partition keys of the sink's layout (strings, as the folders and a crawler have them).
pub fn partition_keys(spec: &S3SinkSpec) -> Vec<ColumnDesired> {
    let mut keys = vec![col("year", "string"), col("month", "string"), col("day", "string")];
    if spec.partitioning.granularity == TimeGranularity::Hour {
        keys.push(col("hour", "string"));
    }
    if spec.partitioning.by_symbol {
        keys.push(col("symbol", "string"));
    }
    keys
}

fn projection_table(
    spec: &S3SinkSpec,
    database: &str,
    name: &str,
    owner: &Owner,
    warnings: &mut Vec<String>,
) -> TableDesired {
    let mut columns = tick_columns(spec.format);
    if spec.partitioning.by_symbol {
        // A partition key cannot also be a column; the folder gives the value.
        columns.retain(|c| c.name != "symbol");
        warnings.push(
            "partitioning.bySymbol with mode projection: symbol is an injected projection, so every query must \
             filter on one symbol (symbol = '...'); the named queries over all symbols need mode crawler"
                .to_string(),
        );
    }
    let (input, output, serde, classification) = match spec.format {
        SinkFormat::Parquet => (
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "parquet",
        ),
        SinkFormat::JsonLines => (
            "org.apache.hadoop.mapred.TextInputFormat",
            "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "org.openx.data.jsonserde.JsonSerDe",
            "json",
        ),
    };
    let mut parameters = projection_parameters(spec);
    parameters.insert("classification".into(), classification.into());
    parameters.insert("EXTERNAL".into(), "TRUE".into());
    parameters.insert(OWNER_PARAMETER.into(), owner.id());
    let serde_parameters = match spec.format {
        SinkFormat::Parquet => BTreeMap::from([("serialization.format".to_string(), "1".to_string())]),
        SinkFormat::JsonLines => BTreeMap::from([("ignore.malformed.json".to_string(), "true".to_string())]),
    };
    TableDesired {
        name: name.to_string(),
        database: database.to_string(),
        description: format!(
            "ticklake: ticks of topic {} landed by {} (partition projection; managed by the ticklake operator)",
            spec.topic,
            owner.id()
        ),
        location: location(spec),
        columns,
        partition_keys: partition_keys(spec),
        input_format: input.to_string(),
        output_format: output.to_string(),
        serde_library: serde.to_string(),
        serde_parameters,
        parameters,
    }
}

// ------------------------------------------------------------------------------ comparisons (pure)

/// Whether two IAM role references name the same role (Glue may answer with the name where it
/// was given the ARN, or the other way round).
fn same_role(a: &str, b: &str) -> bool {
    let name = |r: &str| r.rsplit_once(":role/").map(|(_, n)| n.to_string()).unwrap_or_else(|| r.to_string());
    a == b || name(a) == name(b) || name(a).rsplit('/').next() == name(b).rsplit('/').next() && !a.is_empty()
}

/// Whether two JSON documents are equal, numbers compared by value (`1.0` equals `1`).
fn same_json(a: &str, b: &str) -> bool {
    fn eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value::*;
        match (a, b) {
            (Number(x), Number(y)) => x.as_f64() == y.as_f64(),
            (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| eq(x, y)),
            (Object(x), Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w))),
            _ => a == b,
        }
    }
    match (serde_json::from_str(a), serde_json::from_str(b)) {
        (Ok(x), Ok(y)) => eq(&x, &y),
        _ => a == b,
    }
}

/// The fields in which `have` differs from `want`, by their Glue API names.
pub fn crawler_diff(want: &CrawlerDesired, have: &CrawlerDesired) -> Vec<&'static str> {
    let mut d = Vec::new();
    let norm = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    if !same_role(&want.role, &have.role) {
        d.push("Role");
    }
    if want.database != have.database {
        d.push("DatabaseName");
    }
    if want.description != have.description {
        d.push("Description");
    }
    if want.path != have.path {
        d.push("Targets.S3Targets.Path");
    }
    let (mut we, mut he) = (want.exclusions.clone(), have.exclusions.clone());
    we.sort();
    he.sort();
    if we != he {
        d.push("Targets.S3Targets.Exclusions");
    }
    if norm(&want.event_queue_arn) != norm(&have.event_queue_arn) {
        d.push("Targets.S3Targets.EventQueueArn");
    }
    if norm(&want.schedule) != norm(&have.schedule) {
        d.push("Schedule");
    }
    if norm(&want.table_prefix) != norm(&have.table_prefix) {
        d.push("TablePrefix");
    }
    if want.update_behavior != have.update_behavior || want.delete_behavior != have.delete_behavior {
        d.push("SchemaChangePolicy");
    }
    if want.recrawl_behavior != have.recrawl_behavior {
        d.push("RecrawlPolicy");
    }
    if !same_json(&want.configuration, &have.configuration) {
        d.push("Configuration");
    }
    d
}

/// A crawler's settings as Glue reports them, in the shape of [`CrawlerDesired`].
pub fn crawler_settings(c: &Crawler) -> CrawlerDesired {
    let target = c.targets().and_then(|t| t.s3_targets().first());
    CrawlerDesired {
        name: c.name().unwrap_or_default().to_string(),
        role: c.role().unwrap_or_default().to_string(),
        database: c.database_name().unwrap_or_default().to_string(),
        description: c.description().unwrap_or_default().to_string(),
        path: target.and_then(|t| t.path()).unwrap_or_default().to_string(),
        exclusions: target.map(|t| t.exclusions().to_vec()).unwrap_or_default(),
        event_queue_arn: target.and_then(|t| t.event_queue_arn()).map(str::to_string),
        schedule: c.schedule().and_then(|s| s.schedule_expression()).map(str::to_string),
        table_prefix: c.table_prefix().map(str::to_string),
        update_behavior: c
            .schema_change_policy()
            .and_then(|p| p.update_behavior())
            .map(|b| b.as_str().to_string())
            .unwrap_or_default(),
        delete_behavior: c
            .schema_change_policy()
            .and_then(|p| p.delete_behavior())
            .map(|b| b.as_str().to_string())
            .unwrap_or_default(),
        recrawl_behavior: c
            .recrawl_policy()
            .and_then(|p| p.recrawl_behavior())
            .map(|b| b.as_str().to_string())
            .unwrap_or_else(|| "CRAWL_EVERYTHING".to_string()),
        configuration: c.configuration().unwrap_or_default().to_string(),
    }
}

/// A table's definition as Glue reports it, in the shape of [`TableDesired`].
pub fn table_settings(t: &Table) -> TableDesired {
    let cols = |cs: &[Column]| {
        cs.iter().map(|c| col(c.name(), c.r#type().unwrap_or_default())).collect::<Vec<ColumnDesired>>()
    };
    let sd = t.storage_descriptor();
    let serde = sd.and_then(|s| s.serde_info());
    let map = |m: Option<&HashMap<String, String>>| -> BTreeMap<String, String> {
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    };
    TableDesired {
        name: t.name().to_string(),
        database: t.database_name().unwrap_or_default().to_string(),
        description: t.description().unwrap_or_default().to_string(),
        location: sd.and_then(|s| s.location()).unwrap_or_default().to_string(),
        columns: sd.map(|s| cols(s.columns())).unwrap_or_default(),
        partition_keys: cols(t.partition_keys()),
        input_format: sd.and_then(|s| s.input_format()).unwrap_or_default().to_string(),
        output_format: sd.and_then(|s| s.output_format()).unwrap_or_default().to_string(),
        serde_library: serde.and_then(|s| s.serialization_library()).unwrap_or_default().to_string(),
        serde_parameters: map(serde.and_then(|s| s.parameters())),
        parameters: map(t.parameters()),
    }
}

/// Whether a table parameter is one [`ensure`] manages (others, such as those Athena or Glue
/// add, are left alone).
fn managed_parameter(k: &str) -> bool {
    k.starts_with("projection.") || k == "storage.location.template"
}

/// The parts in which `have` differs from `want`. Parameters: every desired one must be
/// there with its value, and no projection parameter may be there that is not desired.
pub fn table_diff(want: &TableDesired, have: &TableDesired) -> Vec<&'static str> {
    let mut d = Vec::new();
    if want.description != have.description {
        d.push("Description");
    }
    if want.location != have.location {
        d.push("Location");
    }
    if want.columns != have.columns {
        d.push("Columns");
    }
    if want.partition_keys != have.partition_keys {
        d.push("PartitionKeys");
    }
    if want.input_format != have.input_format || want.output_format != have.output_format {
        d.push("Formats");
    }
    if want.serde_library != have.serde_library || want.serde_parameters != have.serde_parameters {
        d.push("SerDeInfo");
    }
    let missing = want.parameters.iter().any(|(k, v)| have.parameters.get(k) != Some(v));
    let extra = have.parameters.keys().any(|k| managed_parameter(k) && !want.parameters.contains_key(k));
    if missing || extra {
        d.push("Parameters");
    }
    d
}

// ------------------------------------------------------------------------------ AWS

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`, ...), for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("eu-isoe-") {
        "aws-iso-e"
    } else {
        "aws"
    }
}

/// Glue ARNs of one catalogue (its id is the account).
struct Catalog {
    prefix: String,
}

impl Catalog {
    fn new(region: &str, catalog_id: &str) -> Catalog {
        Catalog { prefix: format!("arn:{}:glue:{region}:{catalog_id}:", partition(region)) }
    }
    fn database(&self, db: &str) -> String {
        format!("{}database/{db}", self.prefix)
    }
    fn table(&self, db: &str, t: &str) -> String {
        format!("{}table/{db}/{t}", self.prefix)
    }
    fn crawler(&self, name: &str) -> String {
        format!("{}crawler/{name}", self.prefix)
    }
}

fn err<E, R>(operation: &'static str) -> impl FnOnce(aws_sdk_glue::error::SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    move |e| AwsError::from_sdk(SERVICE, operation, e)
}

/// `Ok(None)` for a not-found error.
fn found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn not_owned(operation: &'static str, what: String, owner: &Owner) -> AwsError {
    AwsError::new(
        ErrorKind::NotOwned,
        SERVICE,
        operation,
        format!("{what} exists but is not tagged {OWNER_KEY}={}: left alone", owner.id()),
    )
}

fn rfc3339(t: &aws_smithy_types::DateTime) -> Option<String> {
    t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()
}

async fn get_tags(c: &Clients, arn: String) -> Result<HashMap<String, String>, AwsError> {
    let out = found(c.glue.get_tags().resource_arn(arn).send().await.map_err(err("GetTags")))?;
    Ok(out.and_then(|o| o.tags().cloned()).unwrap_or_default())
}

async fn get_crawler(c: &Clients, name: &str) -> Result<Option<Crawler>, AwsError> {
    let out = found(c.glue.get_crawler().name(name).send().await.map_err(err("GetCrawler")))?;
    Ok(out.and_then(|o| o.crawler().cloned()))
}

async fn get_table(c: &Clients, db: &str, name: &str) -> Result<Option<Table>, AwsError> {
    let out = found(c.glue.get_table().database_name(db).name(name).send().await.map_err(err("GetTable")))?;
    Ok(out.and_then(|o| o.table().cloned()))
}

async fn get_database(c: &Clients, name: &str) -> Result<Option<aws_sdk_glue::types::Database>, AwsError> {
    let out = found(c.glue.get_database().name(name).send().await.map_err(err("GetDatabase")))?;
    Ok(out.and_then(|o| o.database().cloned()))
}

/// The catalog id (account) of the database, creating the database when missing.
async fn ensure_database(
    c: &Clients,
    d: &GlueDesired,
    owner: &Owner,
    changes: &mut Vec<String>,
) -> Result<String, AwsError> {
    if get_database(c, &d.database).await?.is_none() {
        let input = DatabaseInput::builder()
            .name(&d.database)
            .description(format!("ticklake: tables of landed ticks (created for {})", owner.id()))
            .build()
            .map_err(|e| AwsError::new(ErrorKind::Invalid, SERVICE, "CreateDatabase", e.to_string()))?;
        match c
            .glue
            .create_database()
            .database_input(input)
            .set_tags(Some(owner.tags().into_iter().collect()))
            .send()
            .await
            .map_err(err("CreateDatabase"))
        {
            Ok(_) => changes.push(format!("created Glue database {}", d.database)),
            Err(e) if e.kind == ErrorKind::AlreadyExists => {} // another sink's reconcile was first
            Err(e) => return Err(e),
        }
    }
    get_database(c, &d.database)
        .await?
        .and_then(|db| db.catalog_id().map(str::to_string))
        .ok_or_else(|| AwsError::new(ErrorKind::NotFound, SERVICE, "GetDatabase", "no database, or no CatalogId in it"))
}

fn targets(w: &CrawlerDesired) -> CrawlerTargets {
    let t = S3Target::builder()
        .path(&w.path)
        .set_exclusions(Some(w.exclusions.clone()))
        .set_event_queue_arn(w.event_queue_arn.clone())
        .build();
    CrawlerTargets::builder().s3_targets(t).build()
}

fn policy(w: &CrawlerDesired) -> GluePolicy {
    GluePolicy::builder()
        .update_behavior(UpdateBehavior::from(w.update_behavior.as_str()))
        .delete_behavior(DeleteBehavior::from(w.delete_behavior.as_str()))
        .build()
}

fn recrawl(w: &CrawlerDesired) -> RecrawlPolicy {
    RecrawlPolicy::builder().recrawl_behavior(RecrawlBehavior::from(w.recrawl_behavior.as_str())).build()
}

async fn create_crawler(c: &Clients, w: &CrawlerDesired, owner: &Owner) -> Result<(), AwsError> {
    c.glue
        .create_crawler()
        .name(&w.name)
        .role(&w.role)
        .database_name(&w.database)
        .description(&w.description)
        .targets(targets(w))
        .set_schedule(w.schedule.clone())
        .set_table_prefix(w.table_prefix.clone())
        .schema_change_policy(policy(w))
        .recrawl_policy(recrawl(w))
        .configuration(&w.configuration)
        .set_tags(Some(owner.tags().into_iter().collect()))
        .send()
        .await
        .map_err(err("CreateCrawler"))?;
    Ok(())
}

async fn update_crawler(c: &Clients, w: &CrawlerDesired) -> Result<(), AwsError> {
    c.glue
        .update_crawler()
        .name(&w.name)
        .role(&w.role)
        .database_name(&w.database)
        .description(&w.description)
        .targets(targets(w))
        // An empty schedule or prefix removes it.
        .schedule(w.schedule.clone().unwrap_or_default())
        .table_prefix(w.table_prefix.clone().unwrap_or_default())
        .schema_change_policy(policy(w))
        .recrawl_policy(recrawl(w))
        .configuration(&w.configuration)
        .send()
        .await
        .map_err(err("UpdateCrawler"))?;
    Ok(())
}

fn crawler_state(c: &Crawler) -> Option<&str> {
    c.state().map(|s| s.as_str())
}

fn busy(c: &Crawler) -> bool {
    matches!(crawler_state(c), Some("RUNNING" | "STOPPING"))
}

/// Whether the crawler `name` carries our tags. Without a catalog id (the database is gone),
/// asks ListCrawlers for the crawlers with our owner tag.
async fn crawler_owned(c: &Clients, catalog: Option<&Catalog>, name: &str, owner: &Owner) -> Result<bool, AwsError> {
    if let Some(cat) = catalog {
        return Ok(owner.owns(&get_tags(c, cat.crawler(name)).await?));
    }
    let mut token = None;
    for _ in 0..1000 {
        let out = c
            .glue
            .list_crawlers()
            .tags(OWNER_KEY, owner.id())
            .set_next_token(token)
            .send()
            .await
            .map_err(err("ListCrawlers"))?;
        if out.crawler_names().iter().any(|n| n == name) {
            return Ok(true);
        }
        token = out.next_token().map(str::to_string).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    Ok(false)
}

/// Deletes our crawler; a crawling one is stopped first, and deleted on a later call
/// ([`ErrorKind::Unavailable`] until then).
async fn remove_crawler(c: &Clients, have: &Crawler, changes: &mut Vec<String>) -> Result<(), AwsError> {
    let name = have.name().unwrap_or_default();
    match crawler_state(have) {
        Some("RUNNING") => {
            match c.glue.stop_crawler().name(name).send().await.map_err(err("StopCrawler")) {
                Ok(_) => changes.push(format!("stopping crawler {name} to delete it")),
                Err(e)
                    if matches!(e.code.as_deref(), Some("CrawlerNotRunningException" | "CrawlerStoppingException")) => {
                }
                Err(e) => return Err(e),
            }
            return Err(AwsError::new(
                ErrorKind::Unavailable,
                SERVICE,
                "DeleteCrawler",
                format!("crawler {name} is running: stopping it, deleted once stopped"),
            ));
        }
        Some("STOPPING") => {
            return Err(AwsError::new(
                ErrorKind::Unavailable,
                SERVICE,
                "DeleteCrawler",
                format!("crawler {name} is stopping: deleted once stopped"),
            ));
        }
        _ => {}
    }
    if found(c.glue.delete_crawler().name(name).send().await.map_err(err("DeleteCrawler")))?.is_some() {
        changes.push(format!("deleted crawler {name}"));
    }
    Ok(())
}

fn table_input(t: &TableDesired) -> Result<TableInput, AwsError> {
    let bad =
        |e: aws_sdk_glue::error::BuildError| AwsError::new(ErrorKind::Invalid, SERVICE, "CreateTable", e.to_string());
    let cols = |cs: &[ColumnDesired]| -> Result<Vec<Column>, AwsError> {
        cs.iter().map(|c| Column::builder().name(&c.name).r#type(&c.r#type).build().map_err(bad)).collect()
    };
    let sd = StorageDescriptor::builder()
        .set_columns(Some(cols(&t.columns)?))
        .location(&t.location)
        .input_format(&t.input_format)
        .output_format(&t.output_format)
        .compressed(false)
        .number_of_buckets(-1)
        .stored_as_sub_directories(false)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(&t.serde_library)
                .set_parameters(Some(t.serde_parameters.clone().into_iter().collect()))
                .build(),
        )
        .build();
    TableInput::builder()
        .name(&t.name)
        .description(&t.description)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(t.parameters.clone().into_iter().collect()))
        .set_partition_keys(Some(cols(&t.partition_keys)?))
        .storage_descriptor(sd)
        .build()
        .map_err(bad)
}

/// Whose a table is: ours by tags, by our owner parameter (then re-tagged if the tags are
/// missing), or because our crawler wrote it.
#[derive(Debug, PartialEq, Eq)]
enum TableOwnership {
    Tagged,
    /// Created by us, tags missing (tagging failed after CreateTable).
    Marked,
    /// Written by our crawler.
    Crawled,
    Foreign,
}

async fn table_ownership(
    c: &Clients,
    cat: &Catalog,
    t: &Table,
    owner: &Owner,
    crawler_name: &str,
) -> Result<TableOwnership, AwsError> {
    let db = t.database_name().unwrap_or_default();
    let params = t.parameters();
    let param = |k: &str| params.and_then(|p| p.get(k)).map(String::as_str);
    if owner.owns(&get_tags(c, cat.table(db, t.name())).await?) {
        return Ok(TableOwnership::Tagged);
    }
    if param(OWNER_PARAMETER) == Some(owner.id().as_str()) {
        return Ok(TableOwnership::Marked);
    }
    if param(UPDATED_BY_CRAWLER) == Some(crawler_name) {
        return Ok(TableOwnership::Crawled);
    }
    Ok(TableOwnership::Foreign)
}

async fn tag_table(c: &Clients, cat: &Catalog, db: &str, name: &str, owner: &Owner) -> Result<(), AwsError> {
    c.glue
        .tag_resource()
        .resource_arn(cat.table(db, name))
        .set_tags_to_add(Some(owner.tags().into_iter().collect()))
        .send()
        .await
        .map_err(err("TagResource"))?;
    Ok(())
}

/// Most tables of a database [`marked_tables`] reads (pages of 100).
const MAX_TABLES_SCANNED: usize = 1000;

/// The tables of `db` carrying our owner parameter (the projection tables we created).
async fn marked_tables(c: &Clients, db: &str, owner: &Owner) -> Result<Vec<String>, AwsError> {
    let id = owner.id();
    let mut names = Vec::new();
    let mut token = None;
    for _ in 0..MAX_TABLES_SCANNED / 100 {
        let Some(out) = found(
            c.glue
                .get_tables()
                .database_name(db)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("GetTables")),
        )?
        else {
            break;
        };
        names.extend(
            out.table_list()
                .iter()
                .filter(|t| t.parameters().and_then(|p| p.get(OWNER_PARAMETER)) == Some(&id))
                .map(|t| t.name().to_string()),
        );
        token = out.next_token().map(str::to_string).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    Ok(names)
}

/// Deletes a table; whether it was there.
async fn delete_table(c: &Clients, db: &str, name: &str) -> Result<bool, AwsError> {
    Ok(found(c.glue.delete_table().database_name(db).name(name).send().await.map_err(err("DeleteTable")))?.is_some())
}

/// Creates or updates the catalogue: database, crawler or projection table. See the module
/// docs; answers [`ErrorKind::NotOwned`] for a same-named crawler or table that is not ours.
pub async fn ensure(c: &Clients, d: &GlueDesired, owner: &Owner) -> Result<GlueObserved, AwsError> {
    let mut changes = Vec::new();
    let catalog_id = ensure_database(c, d, owner, &mut changes).await?;
    let cat = Catalog::new(&c.region, &catalog_id);

    // The crawler: create, repair, update, or remove after a mode change.
    let name = &d.crawler_name;
    let existing = get_crawler(c, name).await?;
    let mut created = false;
    let crawler: Option<Crawler> = match (&d.crawler, existing) {
        (Some(want), None) => {
            create_crawler(c, want, owner).await?;
            created = true;
            changes.push(format!("created crawler {name}"));
            match c.glue.start_crawler().name(name).send().await.map_err(err("StartCrawler")) {
                Ok(_) => changes.push(format!("started crawler {name} (first crawl)")),
                Err(e) if e.code.as_deref() == Some("CrawlerRunningException") => {}
                // Not fatal: the schedule (or the next event) runs it.
                Err(e) => tracing::warn!(crawler = %name, error = %e, "starting the new crawler failed"),
            }
            get_crawler(c, name).await?
        }
        (Some(want), Some(have)) => {
            if !crawler_owned(c, Some(&cat), name, owner).await? {
                return Err(not_owned("GetTags", format!("crawler {name}"), owner));
            }
            let diff = crawler_diff(want, &crawler_settings(&have));
            if diff.is_empty() {
                Some(have)
            } else {
                if busy(&have) {
                    return Err(AwsError::new(
                        ErrorKind::Unavailable,
                        SERVICE,
                        "UpdateCrawler",
                        format!(
                            "crawler {name} is {}: its update ({}) waits until the crawl ends",
                            crawler_state(&have).unwrap_or("busy"),
                            diff.join(", ")
                        ),
                    ));
                }
                update_crawler(c, want).await?;
                changes.push(format!("updated crawler {name} ({})", diff.join(", ")));
                get_crawler(c, name).await?
            }
        }
        (None, Some(have)) => {
            if crawler_owned(c, Some(&cat), name, owner).await? {
                remove_crawler(c, &have, &mut changes).await?;
            }
            None
        }
        (None, None) => None,
    };

    // The table: kept by us in mode projection; left to the crawler otherwise.
    let table = get_table(c, &d.database, &d.table).await?;
    match (&d.projection_table, table) {
        (Some(want), None) => {
            c.glue
                .create_table()
                .database_name(&want.database)
                .table_input(table_input(want)?)
                .send()
                .await
                .map_err(err("CreateTable"))?;
            changes.push(format!("created table {}.{} (partition projection)", want.database, want.name));
            created = true;
            tag_table(c, &cat, &want.database, &want.name, owner).await?;
        }
        (Some(want), Some(have)) => {
            let who = table_ownership(c, &cat, &have, owner, name).await?;
            if who == TableOwnership::Foreign {
                return Err(not_owned("GetTable", format!("table {}.{}", want.database, want.name), owner));
            }
            let diff = table_diff(want, &table_settings(&have));
            if !diff.is_empty() {
                c.glue
                    .update_table()
                    .database_name(&want.database)
                    .table_input(table_input(want)?)
                    .send()
                    .await
                    .map_err(err("UpdateTable"))?;
                changes.push(format!("updated table {}.{} ({})", want.database, want.name, diff.join(", ")));
            }
            if who != TableOwnership::Tagged {
                tag_table(c, &cat, &want.database, &want.name, owner).await?;
            }
        }
        // A crawler's table (or a table of someone else's) in crawler modes: not ours to keep.
        (None, Some(_)) | (None, None) => {}
    }

    // Projection tables of ours that are not desired (any more): after a change of mode or of
    // table name. Looked for when something was just created (a mode or name change creates
    // the crawler or the new table), not on every call: it reads every table of the database.
    if created {
        let keep = d.projection_table.as_ref().map(|t| t.name.as_str());
        for t in marked_tables(c, &d.database, owner).await? {
            if Some(t.as_str()) != keep && delete_table(c, &d.database, &t).await? {
                changes.push(format!("deleted table {}.{t} (not desired any more)", d.database));
            }
        }
    }

    let last = crawler.as_ref().and_then(|c| c.last_crawl());
    Ok(GlueObserved {
        database: d.database.clone(),
        table: d.table.clone(),
        crawler: crawler.as_ref().map(|_| name.clone()),
        crawler_state: crawler.as_ref().and_then(crawler_state).map(str::to_string),
        last_crawl_status: last.and_then(|l| l.status()).map(|s| s.as_str().to_string()),
        last_crawl_error: last.and_then(|l| l.error_message()).map(str::to_string),
        last_crawl_start: last.and_then(|l| l.start_time()).and_then(rfc3339),
        changes,
    })
}

/// Removes what [`ensure`] made, for the finalizer: our crawler (stopped first if crawling:
/// [`ErrorKind::Unavailable`] until it has stopped), our table (the projection table, or the
/// one our crawler wrote; the data in S3 stays), and the database if it is ours and empty.
/// What is missing counts as deleted. Answers what it deleted.
pub async fn delete(c: &Clients, d: &GlueDesired, owner: &Owner) -> Result<Vec<String>, AwsError> {
    let mut changes = Vec::new();
    let db = get_database(c, &d.database).await?;
    let cat = db.as_ref().and_then(|db| db.catalog_id()).map(|id| Catalog::new(&c.region, id));

    if let Some(have) = get_crawler(c, &d.crawler_name).await? {
        if crawler_owned(c, cat.as_ref(), &d.crawler_name, owner).await? {
            remove_crawler(c, &have, &mut changes).await?;
        }
    }
    let Some(cat) = cat else { return Ok(changes) };
    if let Some(have) = get_table(c, &d.database, &d.table).await? {
        if table_ownership(c, &cat, &have, owner, &d.crawler_name).await? != TableOwnership::Foreign
            && delete_table(c, &d.database, &d.table).await?
        {
            changes.push(format!("deleted table {}.{}", d.database, d.table));
        }
    }
    for t in marked_tables(c, &d.database, owner).await? {
        if delete_table(c, &d.database, &t).await? {
            changes.push(format!("deleted table {}.{t}", d.database));
        }
    }
    if owner.owns(&get_tags(c, cat.database(&d.database)).await?) {
        let tables =
            c.glue.get_tables().database_name(&d.database).max_results(1).send().await.map_err(err("GetTables"))?;
        if tables.table_list().is_empty() {
            if found(c.glue.delete_database().name(&d.database).send().await.map_err(err("DeleteDatabase")))?.is_some()
            {
                changes.push(format!("deleted Glue database {}", d.database));
            }
        } else {
            changes.push(format!("kept Glue database {}: other tables are in it", d.database));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> S3SinkSpec {
        let mut v = serde_json::json!({"topic": "ticks.v2", "bucket": "lake", "prefix": "data/ticks-raw"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn owner() -> Owner {
        Owner::new("S3Sink", "data", "ticks")
    }

    #[test]
    fn nothing_without_glue() {
        assert_eq!(desired(&spec(serde_json::json!({})), &owner(), "role", None), None);
    }

    #[test]
    fn crawler_mode() {
        let s = spec(serde_json::json!({"glue": {"database": "lake", "schedule": "cron(0/15 * * * ? *)"}}));
        let d = desired(&s, &owner(), "arn:aws:iam::1:role/glue", None).unwrap();
        assert_eq!(d.location, "s3://lake/data/ticks-raw/");
        // The topic's default name "ticks_v2" cannot be reached (the folder is ticks-raw): no
        // warning, since nobody asked for it.
        assert_eq!(d.table, "ticks_raw");
        assert!(d.warnings.is_empty());
        assert_eq!(d.projection_table, None);
        let c = d.crawler.unwrap();
        assert_eq!(c.name, owner().aws_name("", 255));
        assert!(c.name.starts_with("ticklake-") && c.name.ends_with("-data-ticks"), "{}", c.name);
        assert_eq!(d.crawler_name, c.name);
        assert_eq!(c.path, "s3://lake/data/ticks-raw/");
        assert_eq!(c.exclusions, ["_dead_letters/**", "_ticklake/**", "**.jsonl"]);
        assert_eq!(c.schedule.as_deref(), Some("cron(0/15 * * * ? *)"));
        assert_eq!(c.update_behavior, "UPDATE_IN_DATABASE");
        assert_eq!(c.delete_behavior, "LOG");
        assert_eq!(c.recrawl_behavior, "CRAWL_EVERYTHING");
        assert_eq!(c.event_queue_arn, None);
        assert_eq!(c.table_prefix, None);
        let conf: serde_json::Value = serde_json::from_str(&c.configuration).unwrap();
        assert_eq!(conf["Version"], 1.0);
        assert_eq!(conf["Grouping"]["TableGroupingPolicy"], "CombineCompatibleSchemas");
        assert_eq!(conf["Grouping"]["TableLevelConfiguration"], 3);
        assert_eq!(conf["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"], "InheritFromTable");
    }

    #[test]
    fn table_names_through_the_table_prefix() {
        let named = |table: &str, prefix: &str| {
            let s = spec(serde_json::json!({"prefix": prefix, "glue": {"database": "lake", "table": table}}));
            desired(&s, &owner(), "r", None).unwrap()
        };
        let d = named("ticks_raw", "data/ticks-raw");
        assert_eq!((d.table.as_str(), d.crawler.unwrap().table_prefix), ("ticks_raw", None));
        let d = named("prod_ticks_raw", "data/ticks-raw");
        assert_eq!((d.table.as_str(), d.crawler.unwrap().table_prefix.as_deref()), ("prod_ticks_raw", Some("prod_")));
        let d = named("quotes", "data/ticks-raw");
        assert_eq!(d.table, "ticks_raw");
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].contains("\"ticks_raw\""), "{:?}", d.warnings);
        // An empty prefix: the table is named after the bucket, level 1.
        let s = spec(serde_json::json!({"prefix": "", "glue": {"database": "lake"}}));
        let d = desired(&s, &owner(), "r", None).unwrap();
        assert_eq!(d.location, "s3://lake/");
        assert_eq!(d.table, "lake");
        assert!(d.crawler.unwrap().configuration.contains("\"TableLevelConfiguration\":1"));
    }

    #[test]
    fn event_mode_and_log_policy() {
        let s = spec(serde_json::json!({"format": "jsonLines", "deadLetter": {"prefix": "_bad"},
            "glue": {"database": "lake", "mode": "event", "schemaChangePolicy": "log"}}));
        let d = desired(&s, &owner(), "r", Some("arn:aws:sqs:us-east-1:1:q")).unwrap();
        let c = d.crawler.unwrap();
        assert_eq!(c.recrawl_behavior, "CRAWL_EVENT_MODE");
        assert_eq!(c.event_queue_arn.as_deref(), Some("arn:aws:sqs:us-east-1:1:q"));
        assert_eq!(c.schedule, None);
        assert_eq!(c.update_behavior, "LOG");
        assert_eq!(c.exclusions, ["_bad/**", "_ticklake/**", "**.parquet"]);
        // No queue yet: crawls everything meanwhile, and says so.
        let d = desired(&s, &owner(), "r", None).unwrap();
        assert_eq!(d.crawler.unwrap().recrawl_behavior, "CRAWL_EVERYTHING");
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn projection_mode() {
        let s = spec(serde_json::json!({"glue": {"database": "lake", "mode": "projection"}}));
        let d = desired(&s, &owner(), "r", None).unwrap();
        assert_eq!(d.crawler, None);
        assert_eq!(d.crawler_name, owner().aws_name("", 255));
        assert_eq!(d.table, "ticks_v2");
        let t = d.projection_table.unwrap();
        assert_eq!(t.name, "ticks_v2");
        assert_eq!(t.location, "s3://lake/data/ticks-raw/");
        let keys: Vec<&str> = t.partition_keys.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(keys, ["year", "month", "day", "hour"]);
        assert!(t.partition_keys.iter().all(|c| c.r#type == "string"));
        let cols: Vec<(&str, &str)> = t.columns.iter().map(|c| (c.name.as_str(), c.r#type.as_str())).collect();
        assert_eq!(
            &cols[..5],
            [
                ("symbol", "string"),
                ("kind", "string"),
                ("event_time", "timestamp"),
                ("seq", "bigint"),
                ("price", "double")
            ]
        );
        assert_eq!(cols.len(), 17);
        assert_eq!(t.serde_library, "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe");
        let p = &t.parameters;
        assert_eq!(p["projection.enabled"], "true");
        assert_eq!(p["projection.year.type"], "date");
        assert_eq!(p["projection.year.format"], "yyyy");
        assert_eq!(p["projection.year.range"], "1900,NOW");
        assert_eq!(p["projection.month.values"].split(',').count(), 12);
        assert!(p["projection.month.values"].starts_with("01,02,"));
        assert_eq!(p["projection.day.values"].split(',').last(), Some("31"));
        assert_eq!(p["projection.hour.values"], (0..24).map(|h| format!("{h:02}")).collect::<Vec<_>>().join(","));
        assert_eq!(
            p["storage.location.template"],
            "s3://lake/data/ticks-raw/year=${year}/month=${month}/day=${day}/hour=${hour}/"
        );
        assert_eq!(p["classification"], "parquet");
        assert_eq!(p[OWNER_PARAMETER], "S3Sink/data/ticks");
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn projection_by_day_and_symbol() {
        let s = spec(serde_json::json!({"partitioning": {"granularity": "day", "bySymbol": true},
            "glue": {"database": "lake", "mode": "projection", "table": "t"}}));
        let d = desired(&s, &owner(), "r", None).unwrap();
        let t = d.projection_table.unwrap();
        let keys: Vec<&str> = t.partition_keys.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(keys, ["year", "month", "day", "symbol"]);
        assert!(!t.columns.iter().any(|c| c.name == "symbol"));
        assert!(!t.parameters.contains_key("projection.hour.type"));
        assert_eq!(t.parameters["projection.symbol.type"], "injected");
        assert_eq!(
            t.parameters["storage.location.template"],
            "s3://lake/data/ticks-raw/year=${year}/month=${month}/day=${day}/symbol=${symbol}/"
        );
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn json_lines_projection() {
        let s = spec(serde_json::json!({"format": "jsonLines", "glue": {"database": "lake", "mode": "projection"}}));
        let t = desired(&s, &owner(), "r", None).unwrap().projection_table.unwrap();
        assert_eq!(t.serde_library, "org.openx.data.jsonserde.JsonSerDe");
        assert!(t.columns.iter().any(|c| c.name == "ts_us" && c.r#type == "bigint"));
        assert_eq!(t.parameters["classification"], "json");
    }

    #[test]
    fn crawler_comparison_field_by_field() {
        let s = spec(serde_json::json!({"glue": {"database": "lake", "schedule": "cron(0 * * * ? *)"}}));
        let want = desired(&s, &owner(), "arn:aws:iam::123:role/service-role/glue", None).unwrap().crawler.unwrap();
        let mut have = want.clone();
        assert!(crawler_diff(&want, &have).is_empty());
        // Equivalent forms are equal: role name vs ARN, exclusions order, JSON spacing and 1 vs 1.0.
        have.role = "service-role/glue".into();
        have.exclusions.reverse();
        have.configuration = have.configuration.replace("1.0", "1").replace(',', ", ");
        have.table_prefix = Some(String::new());
        assert_eq!(crawler_diff(&want, &have), Vec::<&str>::new());
        have.schedule = Some("cron(5 * * * ? *)".into());
        have.exclusions.pop();
        have.configuration = crawler_configuration(2);
        have.update_behavior = "LOG".into();
        have.role = "arn:aws:iam::123:role/other".into();
        assert_eq!(
            crawler_diff(&want, &have),
            ["Role", "Targets.S3Targets.Exclusions", "Schedule", "SchemaChangePolicy", "Configuration"]
        );
    }

    #[test]
    fn table_comparison() {
        let s = spec(serde_json::json!({"glue": {"database": "lake", "mode": "projection"}}));
        let want = desired(&s, &owner(), "r", None).unwrap().projection_table.unwrap();
        let mut have = want.clone();
        // Parameters added by others do not count; stale projection parameters do.
        have.parameters.insert("transient_lastDdlTime".into(), "1".into());
        assert!(table_diff(&want, &have).is_empty());
        have.parameters.insert("projection.minute.type".into(), "enum".into());
        assert_eq!(table_diff(&want, &have), ["Parameters"]);
        let mut have = want.clone();
        have.partition_keys.pop();
        have.columns[2].r#type = "bigint".into();
        assert_eq!(table_diff(&want, &have), ["Columns", "PartitionKeys"]);
    }

    #[test]
    fn crawler_settings_read_back() {
        let s = spec(serde_json::json!({"glue": {"database": "lake", "schedule": "cron(0 * * * ? *)"}}));
        let want = desired(&s, &owner(), "r", None).unwrap().crawler.unwrap();
        let c = Crawler::builder()
            .name(&want.name)
            .role("r")
            .database_name("lake")
            .description(&want.description)
            .targets(targets(&want))
            .schedule(aws_sdk_glue::types::Schedule::builder().schedule_expression("cron(0 * * * ? *)").build())
            .schema_change_policy(policy(&want))
            .recrawl_policy(recrawl(&want))
            .configuration(&want.configuration)
            .build();
        assert_eq!(crawler_settings(&c), want);
    }

    #[test]
    fn partitions_of_regions() {
        assert_eq!(partition("us-east-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(Catalog::new("eu-west-1", "123").table("db", "t"), "arn:aws:glue:eu-west-1:123:table/db/t");
    }

    #[test]
    fn default_table_names() {
        assert_eq!(default_table("Ticks.v2-raw"), "ticks_v2_raw");
        assert_eq!(glue_table_name("Ticks_v2-raw"), "ticks_v2_raw");
    }
}
