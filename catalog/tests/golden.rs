//! Golden tests: fixture trees generated under a temporary folder, inspected and crawled, the
//! result rendered as text and compared with `tests/golden/*.txt` (see `common/mod.rs`).

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use ticklake_catalog::{CrawlOptions, GroupOptions, Limits, crawl_dir, inspect_file};

use common::{gzip, lake_fixtures, parquet_ticks, write, zstd};

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
