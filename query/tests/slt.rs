//! Runs the sqllogictest files of `tests/slt/` against the engine over crawled fixtures.

mod common;

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};
use ticklake_query::{Engine, QueryError, QueryOptions};

#[derive(Clone)]
struct Db(Arc<Engine>);

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

/// One cell as the .slt files spell it: NULL, `(empty)`, floats in Rust's shortest form.
fn cell(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    match array.data_type() {
        DataType::Float64 => format!("{}", array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => format!("{}", array.as_primitive::<Float32Type>().value(row)),
        _ => {
            let f = ArrayFormatter::try_new(array, &FormatOptions::default()).unwrap();
            let s = f.value(row).to_string();
            if s.is_empty() { "(empty)".into() } else { s }
        }
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = QueryError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryError> {
        let out = self.0.execute(sql, &QueryOptions::default()).await?;
        let types = out.schema.fields().iter().map(|f| column_type(f.data_type())).collect();
        let mut rows = Vec::new();
        for b in &out.batches {
            for r in 0..b.num_rows() {
                rows.push(b.columns().iter().map(|c| cell(c.as_ref(), r)).collect());
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "ticklake"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db(common::ticks_engine(dir.path()).await);
    let slt = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&slt).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 2, "the .slt files are missing: {files:?}");
    for file in files {
        let db = db.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let db = db.clone();
            async move { Ok(db) }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}:\n{e}", file.display());
        }
    }
}
