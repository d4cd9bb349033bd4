//! `ticklake crawl URL…` and `ticklake catalog list|show|history`: the local catalog
//! (`ticklake-catalog`): SQLite at `<data-dir>/catalog.sqlite` by default (the runner's data
//! folder), or any catalog URL (`postgres://…`).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use ticklake_catalog::GroupOptions;
use ticklake_catalog::crawler::{self, CrawlConfig, Location, S3Config, SchemaChangePolicy};
use ticklake_catalog::store::{self, Store, TableRecord};

/// Where the catalog is.
#[derive(Args, Clone)]
pub struct CatalogLocation {
    /// Catalog URL: `postgres://…`, `sqlite:///path` or a path. Default: `<data-dir>/catalog.sqlite`.
    #[arg(long, env = "TICKLAKE_CATALOG", global = true)]
    catalog: Option<String>,
    /// Local runner data folder.
    #[arg(long, default_value = ".ticklake", env = "TICKLAKE_DATA_DIR", global = true)]
    data_dir: PathBuf,
}

impl CatalogLocation {
    /// The catalog URL these options name.
    pub fn url(&self) -> String {
        self.catalog.clone().unwrap_or_else(|| self.data_dir.join("catalog.sqlite").display().to_string())
    }

    /// Opens the catalog (off the runtime's threads: the PostgreSQL client blocks).
    async fn open(&self) -> Result<Arc<dyn Store>> {
        let url = self.url();
        let store = tokio::task::spawn_blocking(move || {
            store::open(&url).with_context(|| format!("opening the catalog {url}"))
        })
        .await??;
        Ok(Arc::from(store))
    }
}

#[derive(Args)]
pub struct CrawlArgs {
    /// Folders or prefixes: `s3://bucket/prefix/`, `file:///abs/dir` or a path.
    #[arg(required = true)]
    urls: Vec<String>,
    #[command(flatten)]
    catalog: CatalogLocation,
    /// The catalog database the tables go to.
    #[arg(long, default_value = "default")]
    database: String,
    /// The name of the table at the crawl root (one URL only). Default: the folder's name.
    #[arg(long)]
    table: Option<String>,
    /// Glob of paths to leave out, relative to the root (`tmp/**`, `**.bak`); repeatable.
    #[arg(long = "exclude")]
    exclude: Vec<String>,
    /// What a changed schema does: `update` (a new version) or `log` (keep it, warn).
    #[arg(long, default_value = "update")]
    schema_change_policy: SchemaChangePolicy,
    /// Least column-name similarity for folders to be partitions of one table.
    #[arg(long, default_value_t = 0.7)]
    similarity_threshold: f64,
    /// Most distinct schemas per table.
    #[arg(long, default_value_t = 5)]
    max_schemas: usize,
    /// Bytes read from the start of each file.
    #[arg(long, default_value_t = 64 * 1024)]
    sample_bytes: usize,
    /// Most files listed per URL.
    #[arg(long, default_value_t = 100_000)]
    max_files: usize,
    /// S3 endpoint (MinIO); default AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
    #[arg(long)]
    endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    region: Option<String>,
}

#[derive(Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    catalog: CatalogLocation,
    #[command(subcommand)]
    cmd: CatalogCmd,
}

#[derive(Subcommand)]
enum CatalogCmd {
    /// Tables, one per line.
    List {
        /// Only this database.
        #[arg(long)]
        database: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One table: location, format, columns, partition keys, partitions, properties, version.
    Show {
        /// `database.table` (`table` alone: database `default`).
        table: String,
        #[arg(long)]
        json: bool,
    },
    /// A table's schema versions, oldest first, with what changed.
    History {
        /// `database.table`.
        table: String,
    },
}

pub async fn crawl(args: CrawlArgs) -> Result<()> {
    if args.table.is_some() && args.urls.len() > 1 {
        bail!("--table names the root table of one URL; crawl the URLs one at a time");
    }
    let locations: Vec<Location> = args.urls.iter().map(|u| Location::parse(u)).collect::<Result<_, _>>()?;
    let store = args.catalog.open().await?;
    let mut group = GroupOptions {
        similarity_threshold: args.similarity_threshold,
        max_schemas: args.max_schemas,
        exclusions: args.exclude.clone(),
        ..GroupOptions::default()
    };
    group.limits.sample_bytes = args.sample_bytes;
    let cfg = CrawlConfig {
        database: args.database.clone(),
        table_name: args.table.clone(),
        group,
        policy: args.schema_change_policy,
        max_files: args.max_files,
        s3: S3Config { endpoint: args.endpoint.clone(), region: args.region.clone(), force_path_style: None },
        progress: true,
        ..CrawlConfig::default()
    };
    for (i, location) in locations.iter().enumerate() {
        let summary = crawler::crawl(store.clone(), location, &cfg)
            .await
            .with_context(|| format!("crawling {}", location.url()))?;
        if i > 0 {
            println!();
        }
        print!("{summary}");
    }
    Ok(())
}

pub async fn catalog(args: CatalogArgs) -> Result<()> {
    let store = args.catalog.open().await?;
    tokio::task::spawn_blocking(move || run(store.as_ref(), args.cmd)).await?
}

fn split(name: &str) -> (&str, &str) {
    name.split_once('.').unwrap_or(("default", name))
}

fn time(ms: i64) -> String {
    ticklake_notify::event::rfc3339(ms)
}

fn get(store: &dyn Store, name: &str) -> Result<TableRecord> {
    let (db, table) = split(name);
    store.get_table(db, table)?.with_context(|| format!("no table {db}.{table} in the catalog"))
}

fn run(store: &dyn Store, cmd: CatalogCmd) -> Result<()> {
    match cmd {
        CatalogCmd::List { database, json } => {
            let tables = store.list_tables(database.as_deref())?;
            if json {
                for t in &tables {
                    println!("{}", serde_json::to_string(t)?);
                }
                return Ok(());
            }
            println!(
                "{:<16} {:<24} {:<10} {:>7} {:<24} {:>7}  LOCATION",
                "DATABASE", "TABLE", "FORMAT", "COLUMNS", "PARTITION KEYS", "VERSION"
            );
            for t in &tables {
                let keys: Vec<&str> = t.partition_keys.iter().map(|k| k.name.as_str()).collect();
                println!(
                    "{:<16} {:<24} {:<10} {:>7} {:<24} {:>7}  {}{}",
                    t.database,
                    t.name,
                    t.format.classification(),
                    t.schema.columns.len(),
                    if keys.is_empty() { "-".to_string() } else { keys.join(",") },
                    t.schema_version,
                    t.location,
                    if t.deprecated { "  (deprecated)" } else { "" }
                );
            }
            Ok(())
        }
        CatalogCmd::Show { table, json } => {
            let t = get(store, &table)?;
            let partitions = store.partitions(&t.database, &t.name)?;
            let files = store.table_files(&t.database, &t.name)?;
            if json {
                let v = serde_json::json!({ "table": t, "partitions": partitions.len(), "files": files.len() });
                println!("{v}");
                return Ok(());
            }
            println!("table {}.{}", t.database, t.name);
            println!("location: {}", t.location);
            println!("format: {}", t.format);
            println!(
                "version: {}{}",
                t.schema_version,
                if t.deprecated { " (deprecated: its files vanished)" } else { "" }
            );
            println!("created: {}, updated: {}", time(t.created_ms), time(t.updated_ms));
            println!("columns:");
            for c in &t.schema.columns {
                println!("  {} {}{}", c.name, c.data_type, if c.nullable { "" } else { " not null" });
            }
            if t.partition_keys.is_empty() {
                println!("partition keys: none");
            } else {
                let keys: Vec<String> =
                    t.partition_keys.iter().map(|k| format!("{} {}", k.name, k.data_type)).collect();
                println!("partition keys: {}", keys.join(", "));
                println!("partitions: {}", partitions.len());
            }
            let bytes: u64 = files.iter().map(|f| f.size).sum();
            println!("files: {} ({bytes} bytes)", files.len());
            println!("properties:");
            for (k, v) in &t.properties {
                println!("  {k} = {v}");
            }
            Ok(())
        }
        CatalogCmd::History { table } => {
            let t = get(store, &table)?;
            for v in store.history(&t.database, &t.name)? {
                println!("version {} at {}: {}", v.version, time(v.created_ms), v.change);
                let cols: Vec<String> =
                    v.schema.columns.iter().map(|c| format!("{} {}", c.name, c.data_type)).collect();
                println!("  columns: {}", cols.join(", "));
                if !v.partition_keys.is_empty() {
                    let keys: Vec<String> =
                        v.partition_keys.iter().map(|k| format!("{} {}", k.name, k.data_type)).collect();
                    println!("  partition keys: {}", keys.join(", "));
                }
            }
            Ok(())
        }
    }
}
