//! Results as text: an aligned table, CSV (with a header) or JSON (an array of objects, one
//! per row; timestamps as ISO-8601 strings).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::QueryError;

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!("unknown format {other:?}: table, csv or json")),
        }
    }
}

fn err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Execution(format!("formatting the result: {e}"))
}

/// Writes `batches` (all of one schema) in `format`.
pub fn render(
    batches: &[RecordBatch],
    schema: &datafusion::arrow::datatypes::SchemaRef,
    format: OutputFormat,
) -> Result<Vec<u8>, QueryError> {
    match format {
        OutputFormat::Table => {
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(schema.clone());
                return Ok(format!("{}\n", pretty_format_batches(&[empty]).map_err(err)?).into_bytes());
            }
            Ok(format!("{}\n", pretty_format_batches(batches).map_err(err)?).into_bytes())
        }
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                if batches.is_empty() {
                    w.write(&RecordBatch::new_empty(schema.clone())).map_err(err)?;
                }
                for b in batches {
                    w.write(b).map_err(err)?;
                }
            }
            Ok(out)
        }
        OutputFormat::Json => {
            let mut out = Vec::new();
            {
                let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
                w.finish().map_err(err)?;
            }
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            out.push(b'\n');
            Ok(out)
        }
    }
}
