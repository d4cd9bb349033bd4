//! `ticklake athena …`: the named queries the operator keeps for an `S3Sink`, and running one
//! in the sink's workgroup to see data without opening the console.
//!
//! AWS credentials, region and endpoint come from the default chain (`AWS_PROFILE`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, ...); `--aws-region` and `--aws-endpoint` override them.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Duration;
use ticklake_api::crd::S3Sink;
use ticklake_aws::athena::{self, QueryOutcome};
use ticklake_aws::{AwsSettings, Clients, Owner, glue};

#[derive(Args)]
pub struct AthenaArgs {
    #[command(subcommand)]
    cmd: AthenaCmd,
}

#[derive(Subcommand)]
enum AthenaCmd {
    /// Lists the named queries the operator keeps in the sink's workgroup (from its spec; no
    /// AWS call).
    Queries {
        /// The S3Sink manifest.
        #[arg(long)]
        resource: PathBuf,
        /// Print each query's SQL too.
        #[arg(long)]
        sql: bool,
    },
    /// Runs a named query in the sink's workgroup and prints the result.
    Run {
        /// The S3Sink manifest.
        #[arg(long)]
        resource: PathBuf,
        /// The named query, e.g. `ticklake-latest-price` (see `ticklake athena queries`).
        #[arg(long)]
        query: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Rows printed at most.
        #[arg(long, default_value_t = 1000)]
        max_rows: usize,
        /// The query is stopped after this long.
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
        /// AWS endpoint (e.g. a moto server); default: the SDK's.
        #[arg(long, env = "TICKLAKE_AWS_ENDPOINT")]
        aws_endpoint: Option<String>,
        /// AWS region; default: the sink's `spec.region`, then the default chain's.
        #[arg(long)]
        aws_region: Option<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned columns.
    Table,
    /// RFC 4180 CSV with a header line; NULL is an empty field.
    Csv,
    /// One JSON object: columns, types, rows (strings or null), statistics.
    Json,
}

fn load_sink(path: &Path) -> Result<S3Sink> {
    match crate::manifests::load_one(path)? {
        crate::manifests::Resource::S3Sink(s) => Ok(s),
        _ => bail!("{} is not an S3Sink", path.display()),
    }
}

/// The owner, database and table the operator uses for the sink.
fn catalog(sink: &S3Sink) -> (Owner, Option<glue::GlueDesired>) {
    let ns = sink.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let owner = Owner::new("S3Sink", &ns, sink.metadata.name.as_deref().unwrap_or_default());
    let g = glue::desired(&sink.spec, &owner, "", None);
    (owner, g)
}

pub async fn run(args: AthenaArgs) -> Result<()> {
    match args.cmd {
        AthenaCmd::Queries { resource, sql } => {
            let sink = load_sink(&resource)?;
            let Some(a) = &sink.spec.athena else {
                bail!("{} has no spec.athena: no workgroup, no named queries", resource.display())
            };
            let (_, g) = catalog(&sink);
            let (db, table) = g.as_ref().map(|g| (g.database.as_str(), g.table.as_str())).unwrap_or(("", ""));
            let d = athena::desired(&sink.spec, db, table).context("spec.athena is set")?;
            if d.named_queries.is_empty() {
                eprintln!(
                    "workgroup {}: no named queries (they need spec.glue, for a table, and format parquet)",
                    a.workgroup
                );
            }
            for q in &d.named_queries {
                println!("{:<26} {}.{}  {}", q.name, db, table, q.description);
                if sql {
                    println!("{}\n", q.sql.trim_end());
                }
            }
            Ok(())
        }
        AthenaCmd::Run { resource, query, format, max_rows, timeout_seconds, aws_endpoint, aws_region } => {
            let sink = load_sink(&resource)?;
            let Some(a) = &sink.spec.athena else {
                bail!("{} has no spec.athena: no workgroup to run queries in", resource.display())
            };
            let settings = AwsSettings {
                region: aws_region.or(sink.spec.region.clone()),
                endpoint: aws_endpoint,
                max_attempts: None,
            };
            let clients = Clients::new(&settings).await;
            let o =
                athena::run_named_query(&clients, &a.workgroup, &query, Duration::from_secs(timeout_seconds), max_rows)
                    .await?;
            if !o.succeeded() {
                bail!(
                    "query {query} {}: {} (query execution {})",
                    if o.timed_out { "timed out" } else { o.state.as_str() },
                    o.state_change_reason.as_deref().unwrap_or("no reason given"),
                    o.query_execution_id
                );
            }
            print!("{}", render(&o, format));
            eprintln!("{}", summary(&o, max_rows));
            Ok(())
        }
    }
}

fn summary(o: &QueryOutcome, max_rows: usize) -> String {
    let mut s = format!("{} row{}", o.rows.len(), if o.rows.len() == 1 { "" } else { "s" });
    if o.truncated {
        s.push_str(&format!(" (stopped at --max-rows {max_rows})"));
    }
    if let Some(ms) = o.execution_ms {
        s.push_str(&format!(" in {:.1} s", ms as f64 / 1000.0));
    }
    if let Some(b) = o.data_scanned_bytes {
        s.push_str(&format!(", {:.1} MB scanned", b as f64 / 1e6));
    }
    s.push_str(&format!("; query execution {}", o.query_execution_id));
    s
}

/// The result as text in `format` (ends with a newline unless empty).
fn render(o: &QueryOutcome, format: Format) -> String {
    match format {
        Format::Table => {
            let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".to_string());
            let mut widths: Vec<usize> = o.columns.iter().map(|c| c.chars().count()).collect();
            for r in &o.rows {
                for (i, v) in r.iter().enumerate() {
                    if i >= widths.len() {
                        widths.push(0);
                    }
                    widths[i] = widths[i].max(cell(v).chars().count());
                }
            }
            let line = |cells: Vec<String>| {
                let padded: Vec<String> = cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
                    .collect();
                format!("{}\n", padded.join("  ").trim_end())
            };
            let mut out = line(o.columns.clone());
            out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
            for r in &o.rows {
                out.push_str(&line(r.iter().map(cell).collect()));
            }
            out
        }
        Format::Csv => {
            let field = |v: &str| {
                if v.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", v.replace('"', "\"\""))
                } else {
                    v.to_string()
                }
            };
            let mut out = String::new();
            let mut line = |cells: Vec<String>| {
                out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
                out.push_str("\r\n");
            };
            line(o.columns.clone());
            for r in &o.rows {
                line(r.iter().map(|v| v.clone().unwrap_or_default()).collect());
            }
            out
        }
        Format::Json => {
            let v = serde_json::json!({
                "columns": o.columns, "types": o.column_types, "rows": o.rows, "truncated": o.truncated,
                "queryExecutionId": o.query_execution_id, "dataScannedBytes": o.data_scanned_bytes,
                "executionMs": o.execution_ms,
            });
            format!("{v}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> QueryOutcome {
        QueryOutcome {
            query_execution_id: "q1".into(),
            state: "SUCCEEDED".into(),
            columns: vec!["symbol".into(), "price".into()],
            column_types: vec!["varchar".into(), "double".into()],
            rows: vec![vec![Some("AAPL".into()), Some("187.5".into())], vec![Some("A,\"B\"".into()), None]],
            data_scanned_bytes: Some(2_500_000),
            execution_ms: Some(1234),
            ..QueryOutcome::default()
        }
    }

    #[test]
    fn formats() {
        let o = outcome();
        assert_eq!(render(&o, Format::Table), "symbol  price\n------  -----\nAAPL    187.5\nA,\"B\"   NULL\n");
        assert_eq!(render(&o, Format::Csv), "symbol,price\r\nAAPL,187.5\r\n\"A,\"\"B\"\"\",\r\n");
        let j: serde_json::Value = serde_json::from_str(&render(&o, Format::Json)).unwrap();
        assert_eq!(j["rows"][1], serde_json::json!(["A,\"B\"", null]));
        assert_eq!(j["columns"], serde_json::json!(["symbol", "price"]));
        assert_eq!(summary(&o, 10), "2 rows in 1.2 s, 2.5 MB scanned; query execution q1");
    }
}
