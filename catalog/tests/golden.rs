//! Golden tests: fixture trees generated under a temporary folder, inspected and crawled, the
//! result rendered as text and compared with `tests/golden/*.txt` (see `common/mod.rs`).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StructArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use ticklake_catalog::{CrawlOptions, GroupOptions, Limits, crawl_dir, inspect_file};

use common::write;

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(b, 3).unwrap()
}

/// A small Parquet file shaped like the sink's ticks, plus the nested and typed columns Parquet
/// carries that JSON cannot (dictionary, decimal, date, list, struct).
fn parquet_ticks(rows: usize, first_seq: i64) -> Vec<u8> {
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

const EVENTS: &str = concat!(
    r#"{"id":1,"sym":"AAPL","px":189.5,"qty":100,"ok":true,"day":"2024-05-01","at":"2024-05-01T13:30:00.123Z","ts_us":1714570200123000,"created_at":1714570200,"latency_ms":12,"q":{"bid":189.4,"ask":189.6},"tags":["tech"],"legs":[{"px":1.5}],"note":null}"#,
    "\n",
    r#"{"id":3000000000,"sym":"MSFT","px":410,"qty":7.5,"ok":false,"day":"2024-05-02","at":"2024-05-02 13:30:00","ts_us":1714656600000000,"created_at":1714656600,"latency_ms":3,"q":{"bid":410.1,"ask":410.3,"venue":"XNAS"},"tags":[],"legs":[{"px":2,"qty":3}],"note":"halted","extra":1}"#,
    "\n",
    r#"{"id":2,"sym":"GOOG","px":170.25,"qty":12,"ok":"yes","day":"2024-05-03","at":"2024-05-03T13:30:00+02:00","ts_us":1714743000000000,"created_at":0,"latency_ms":5,"q":{"bid":170.2,"ask":170.3},"tags":["ads","search"],"legs":[],"note":null}"#,
    "\n",
);

/// One file per inference rule family; the golden shows what each became.
fn inference_fixtures(root: &Path) {
    write(root, "events.jsonl", EVENTS);
    write(root, "events.jsonl.gz", gzip(EVENTS.as_bytes()));
    write(root, "events.jsonl.zst", zstd(EVENTS.as_bytes()));
    write(
        root,
        "one.json",
        "{\n  \"Index\": \"NYA\",\n  \"Date\": \"1965-12-31\",\n  \"Open\": 528.690002,\n  \"Volume\": 0\n}\n",
    );
    write(
        root,
        "array.json",
        r#"[{"a": 1, "b": null}, {"a": 2.5, "b": "2024-01-01"}, {"a": 3, "c": [1, 3000000000]}]"#,
    );
    write(
        root,
        "ticklake.jsonl",
        concat!(
            "{\"v\":1,\"kind\":\"trade\",\"symbol\":\"AAPL\",\"ts_us\":1764000000000000,\"seq\":42,\"price\":189.23,\"size\":100}\n",
            "{\"v\":1,\"kind\":\"quote\",\"symbol\":\"AAPL\",\"ts_us\":1764000000000150,\"seq\":43,\"bid\":189.22,\"bid_size\":300,\"ask\":189.24,\"ask_size\":200}\n",
            "{\"v\":1,\"kind\":\"bar\",\"symbol\":\"NYA\",\"ts_us\":-126316800000000,\"seq\":0,\"open\":528.69,\"high\":528.69,\"low\":528.69,\"close\":528.69,\"volume\":0.0}\n",
        ),
    );
    write(
        root,
        "quoted.csv",
        "id,name,note,active,since,updated,score\n\
         007,\"Smith, J\",\"said \"\"hi\"\"\nand left\",TRUE,2024-05-01,2024-05-01 10:00:00,1.5\n\
         008,Doe,,false,2024-05-02,2024-05-02T11:00:00Z,\n\
         010,\"Roe\",plain,true,2024-05-03,2024-05-03 12:00:00.250,-2e3\n",
    );
    write(root, "prices.psv", "sym|px|qty|trade_time_s\nAAPL|189.5|100|1714570200\nMSFT|410.25|7|1714656600\n");
    write(root, "ticks.tsv", "1714570200000\tAAPL\t189.5\n1714570201000\tMSFT\t410.25\n");
    write(root, "eu.csv", "sym;px;qty\nSAP;\"181,5\";10\nSIE;\"170,25\";20\n");
    write(root, "names.csv", "name,city\nann,paris\nbob,rome\n");
    write(root, "ticks.parquet", parquet_ticks(4, 0));
    write(root, "notes.txt", "Nothing tabular here.\nJust a few words, and a comma.\nAnd; a semicolon.\n");
    write(root, "blob.bin", b"\x00\x01\x02binary\x00\xff");
    write(root, "broken.json", "{\"a\":1}\n{\"a\":1,,}\n");
    write(root, "fake.parquet", "{\"a\":1}\n");
    write(root, "deep.json", format!("{{\"a\":{}1{}}}", "[".repeat(20), "]".repeat(20)));
    let big: String = (0..3000).map(|i| format!("{{\"n\":{i},\"label\":\"row number {i:06}\"}}\n")).collect();
    write(root, "big.jsonl", &big);
    write(root, "empty.json", "");
    write(root, "old.json.bz2", b"BZh91AY&SY\x00\x00");
    write(root, "objects.json", "{}\n{}\n");
}

#[test]
fn inference_golden() {
    let dir = tempfile::tempdir().unwrap();
    inference_fixtures(dir.path());
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        out.push_str(&format!("== {name}\n"));
        match inspect_file(&dir.path().join(&name), &name, &Limits::default()) {
            Ok(i) => {
                let layout = i.json_layout.map(|l| format!(" ({l:?})").to_lowercase()).unwrap_or_default();
                let records =
                    i.records.map(|n| format!(", records: {n}")).unwrap_or_else(|| ", schema from the footer".into());
                let sampled = if i.sampled { ", sampled" } else { "" };
                out.push_str(&format!("{}{layout}{records}{sampled}\n", i.format));
                for line in i.schema.to_string().lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            Err(e) => out.push_str(&format!("error: {e}\n")),
        }
        out.push('\n');
    }
    common::check("inference", &out);
}

fn jsonl(rows: &[String]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

/// A small lake: Hive partitions, plain folder levels, dissimilar tables side by side, strays,
/// mixed formats, files at the wrong depth, hidden and excluded files, Parquet.
fn lake_fixtures(root: &Path) {
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

#[test]
fn grouping_golden() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    lake_fixtures(&root);
    let opts = CrawlOptions {
        group: GroupOptions {
            root_name: String::new(),
            exclusions: vec!["tmp/**".into(), "**.bak".into()],
            ..GroupOptions::default()
        },
        ..CrawlOptions::default()
    };
    let report = crawl_dir(&root, &opts).unwrap();
    common::check("grouping", &report.to_string());
}

#[test]
fn grouping_golden_with_a_table_level_and_combined_schemas() {
    // Glue's TableLevelConfiguration and CombineCompatibleSchemas on the same lake: tables are
    // the folders one level down, whatever their columns.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    lake_fixtures(&root);
    let opts = CrawlOptions {
        group: GroupOptions {
            root_name: String::new(),
            exclusions: vec!["tmp/**".into(), "**.bak".into()],
            table_level: Some(1),
            combine_compatible_schemas: true,
            ..GroupOptions::default()
        },
        ..CrawlOptions::default()
    };
    let report = crawl_dir(&root, &opts).unwrap();
    common::check("grouping_table_level", &report.to_string());
}

#[test]
fn parquet_with_a_footer_beyond_the_first_tail_read() {
    // Many columns make a footer larger than the 64 KiB first read: the edge reads more.
    let fields: Vec<Field> =
        (0..1500).map(|i| Field::new(format!("column_with_a_long_name_{i:05}"), DataType::Int64, true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let columns: Vec<ArrayRef> = (0..1500).map(|_| Arc::new(Int64Array::from(vec![1i64, 2])) as ArrayRef).collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let len = out.len();
    let meta = u32::from_le_bytes(out[len - 8..len - 4].try_into().unwrap()) as usize;
    assert!(meta > 64 * 1024, "footer of {meta} bytes: the test needs more than 64 KiB");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "wide.parquet", &out);
    let limits = Limits { max_columns: 2000, ..Limits::default() };
    let i = inspect_file(&dir.path().join("wide.parquet"), "wide.parquet", &limits).unwrap();
    assert_eq!(i.schema.columns.len(), 1500);
    // And the footer limit is honoured.
    let small = Limits { max_footer_bytes: 1024, max_columns: 2000, ..Limits::default() };
    let e = inspect_file(&dir.path().join("wide.parquet"), "wide.parquet", &small).unwrap_err();
    assert!(e.to_string().contains("max_footer_bytes"), "{e}");
}

#[test]
fn crawl_limits() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write(dir.path(), &format!("f{i}.json"), r#"{"a":1}"#);
    }
    let e = crawl_dir(dir.path(), &CrawlOptions { max_files: 4, ..CrawlOptions::default() }).unwrap_err();
    assert!(e.to_string().contains("max_files"), "{e}");
    write(dir.path(), "a/b/c/d.json", r#"{"a":1}"#);
    let opts = CrawlOptions {
        group: GroupOptions { root_name: String::new(), max_folder_depth: 2, ..GroupOptions::default() },
        ..CrawlOptions::default()
    };
    let r = crawl_dir(dir.path(), &opts).unwrap();
    assert_eq!(r.unreadable.len(), 1);
    assert_eq!(r.unreadable[0].path, "a/b/c/");
    assert!(r.unreadable[0].reason.contains("max_folder_depth"));
    assert!(crawl_dir(&dir.path().join("missing"), &CrawlOptions::default()).is_err());
}

#[cfg(unix)]
#[test]
fn symlinks_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data/a.json", r#"{"a":1}"#);
    std::os::unix::fs::symlink(dir.path(), dir.path().join("data/loop")).unwrap();
    let r = crawl_dir(&dir.path().join("data"), &CrawlOptions::default()).unwrap();
    assert_eq!(r.tables.len(), 1);
    assert_eq!(r.unreadable[0].path, "loop");
    assert!(r.unreadable[0].reason.contains("symbolic link"));
}
