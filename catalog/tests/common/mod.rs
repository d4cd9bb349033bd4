//! Golden (snapshot) files: `tests/golden/<name>.txt` holds the expected text of a test.
//!
//! A test renders what it found as text and calls [`check`]. On a difference the test fails
//! and shows the first differing line. `TICKLAKE_UPDATE_GOLDEN=1 cargo test -p
//! ticklake-catalog` rewrites the files instead; review the change with `git diff`.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StructArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};

pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"))
}

pub fn check(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var("TICKLAKE_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("rewrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}\n(run with TICKLAKE_UPDATE_GOLDEN=1 to create it)\n--- actual ---\n{actual}", path.display())
    });
    if expected == actual {
        return;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let line = (0..e.len().max(a.len())).find(|&i| e.get(i) != a.get(i)).unwrap_or(0);
    panic!(
        "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
         If the change is intended, rerun with TICKLAKE_UPDATE_GOLDEN=1 and review `git diff`.\n--- actual ---\n{actual}",
        path.display(),
        line + 1,
        e.get(line).copied().unwrap_or("<end of file>"),
        a.get(line).copied().unwrap_or("<end of file>"),
    );
}

/// Writes `bytes` at `root/rel`, creating folders.
pub fn write(root: &std::path::Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

pub fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(b, 3).unwrap()
}

/// A small Parquet file shaped like the sink's ticks, plus the nested and typed columns Parquet
/// carries that JSON cannot (dictionary, decimal, date, list, struct).
pub fn parquet_ticks(rows: usize, first_seq: i64) -> Vec<u8> {
    let mut symbols = StringDictionaryBuilder::<Int32Type>::new();
    let mut lots = ListBuilder::new(Int32Builder::new());
    for i in 0..rows {
        symbols.append_value(["AAPL", "MSFT"][i % 2]);
        lots.values().append_value(100);
        lots.values().append_value(i as i32);
        lots.append(true);
    }
    let book = StructArray::from(vec![
        (
            Arc::new(Field::new("bid", DataType::Float64, true)),
            Arc::new(Float64Array::from(vec![189.1; rows])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("ask", DataType::Float64, true)),
            Arc::new(Float64Array::from(vec![189.2; rows])) as ArrayRef,
        ),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("seq", DataType::Int64, false),
        Field::new("price", DataType::Float64, true),
        Field::new("notional", DataType::Decimal128(18, 4), true),
        Field::new("trade_date", DataType::Date32, true),
        Field::new("lots", DataType::List(Arc::new(Field::new("item", DataType::Int32, true))), true),
        Field::new(
            "book",
            DataType::Struct(Fields::from(vec![
                Field::new("bid", DataType::Float64, true),
                Field::new("ask", DataType::Float64, true),
            ])),
            true,
        ),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(symbols.finish()),
        Arc::new(
            TimestampMicrosecondArray::from((0..rows as i64).map(|i| 1_764_100_800_000_000 + i).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(Int64Array::from((0..rows as i64).map(|i| first_seq + i).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(vec![189.15; rows])),
        Arc::new(Decimal128Array::from(vec![1_891_500_000i128; rows]).with_precision_and_scale(18, 4).unwrap()),
        Arc::new(Date32Array::from(vec![20_417; rows])),
        Arc::new(lots.finish()),
        Arc::new(book),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

pub fn jsonl(rows: &[String]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

/// A small lake: Hive partitions, plain folder levels, dissimilar tables side by side, strays,
/// mixed formats, files at the wrong depth, hidden and excluded files, Parquet.
pub fn lake_fixtures(root: &Path) {
    for (m, d) in [("01", "01"), ("01", "02"), ("02", "01"), ("02", "02")] {
        let mut rows: Vec<String> = (0..2)
            .map(|i| {
                format!(
                    r#"{{"order_id":{i},"sym":"AAPL","qty":{},"px":189.5,"at":"2024-{m}-{d}T10:00:0{i}Z"}}"#,
                    10 + i
                )
            })
            .collect();
        if (m, d) == ("02", "01") {
            // A later writer added a column: 5 of 6 names shared, similar.
            rows.push(
                r#"{"order_id":9,"sym":"MSFT","qty":1.5,"px":410.0,"at":"2024-02-01T10:00:09Z","discount":0.1}"#.into(),
            );
        }
        write(root, &format!("sales/year=2024/month={m}/day={d}/part-0.json"), jsonl(&rows));
    }
    write(root, "sales/year=2024/month=02/day=02/stray.json", r#"{"name":"not an order"}"#);
    write(root, "sales/_SUCCESS", "");
    write(root, "sales/year=2024/month=01/day=01/.part-0.json.crc", "crc");
    write(root, "logs/2024/01/app.csv", "level,code,message\nINFO,200,started\nWARN,429,slow down\n");
    write(root, "logs/2024/02/app.csv", "level,code,message\nERROR,500,failed\nINFO,200,recovered\n");
    write(root, "orders/region=eu/o.json", r#"{"id":1,"qty":3,"px":10.5}"#);
    write(root, "orders/region=us/o.json", r#"{"id":2,"qty":4,"px":11.5}"#);
    write(root, "customers/c1.csv", "id,name,email\n1,ann,ann@example.com\n2,bob,bob@example.com\n");
    write(root, "customers/c2.csv", "id,name,email\n3,cid,cid@example.com\n4,dee,dee@example.com\n");
    write(root, "mixed/a.json", r#"{"k":1,"v":"x"}"#);
    write(root, "mixed/b.json", r#"{"k":2,"v":"y"}"#);
    write(root, "mixed/c.csv", "k,v\n3,z\n4,w\n");
    write(
        root,
        "ticks/year=2026/month=11/day=25/hour=20/ticks+3+00000000000000000000+00000000000000000003.parquet",
        parquet_ticks(4, 0),
    );
    write(
        root,
        "ticks/year=2026/month=11/day=25/hour=21/ticks+3+00000000000000000004+00000000000000000007.parquet",
        parquet_ticks(4, 4),
    );
    write(root, "ragged/top.json", r#"{"a":1,"b":2}"#);
    write(root, "ragged/k=1/x.json", r#"{"a":1,"b":2}"#);
    write(root, "ragged/k=2/y.json", r#"{"a":3,"b":4}"#);
    write(root, "tmp/scratch.json", r#"{"scratch":true}"#);
    write(root, "backup/old.json.bak", r#"{"a":1}"#);
    write(root, "notes/readme.txt", "Just words.\n");
    write(root, "README", "This lake holds test data only.\n");
    write(root, "manifest.json", r#"{"created_by":"fixture","tables":7}"#);
}
