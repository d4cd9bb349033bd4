//! Replay against real files written into a temporary directory: Kaggle-style
//! `indexProcessed.csv`, its gzip, Parquet (written with the Arrow writer), explicit mappings,
//! bad rows, limits, loops and shards.

use arrow_array::{
    ArrayRef, Date32Array, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, types::Int32Type,
};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use ticklake_api::crd::{ColumnMapping, MappingPreset, ReplayFormat, ReplayKind, ReplaySpec, SourceSpec};
use ticklake_api::tick::{Tick, TickBody};
use ticklake_sources::{EventTimePacer, FileFormat, Pacing, Replay, ReplayLimits, Shard, Source, SourceError};

const HEADER: &str = "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD";
const DAY_US: i64 = 86_400_000_000;

/// One Kaggle row: (index, date, open, high, low, close, adj close, volume, close usd).
type Row = (&'static str, &'static str, f64, f64, f64, f64, f64, f64, f64);

/// Like the real file: sorted by index, then date — not by time across indexes.
const FILE_A: &[Row] = &[
    ("IXIC", "1971-02-05", 100.0, 100.0, 100.0, 100.0, 100.0, 0.0, 100.0),
    ("IXIC", "1971-02-08", 100.84, 100.84, 100.84, 100.84, 100.84, 0.0, 100.84),
    ("IXIC", "1971-02-10", 100.76, 100.76, 100.76, 100.76, 100.76, 0.0, 100.76),
    ("NYA", "1965-12-31", 528.690002, 528.690002, 528.690002, 528.690002, 528.690002, 0.0, 528.690002),
    ("NYA", "1971-02-08", 527.210022, 527.210022, 527.210022, 527.210022, 527.210022, 0.0, 527.210022),
    ("NYA", "1971-02-09", 527.840027, 527.840027, 527.840027, 527.840027, 527.840027, 0.0, 527.840027),
];

/// A second file whose dates fall before, between and on those of the first.
const FILE_B: &[Row] = &[
    ("HSI", "1965-06-01", 2568.300049, 2570.0, 2560.5, 2568.300049, 2568.300049, 0.0, 333.87900637),
    ("HSI", "1971-02-08", 2540.100098, 2545.0, 2530.0, 2540.100098, 2540.100098, 1200.0, 330.21301274),
    ("HSI", "1971-02-11", 2552.399902, 2560.0, 2550.0, 2552.399902, 2552.399902, 0.0, 331.81198726),
    ("NYA", "1971-02-12", 530.0, 531.0, 529.0, 530.5, 530.5, 15_000_000.0, 530.5),
];

fn csv_text(rows: &[Row]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        s += &format!("{},{},{},{},{},{},{},{},{}\n", r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8);
    }
    s
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn write_gz(path: &Path, text: &str) -> PathBuf {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    path.to_path_buf()
}

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, compression: Compression) -> PathBuf {
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let props = WriterProperties::builder().set_compression(compression).set_max_row_group_row_count(Some(3)).build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    path.to_path_buf()
}

/// The Kaggle rows as Parquet, the date as text (as a CSV-to-Parquet conversion gives).
fn kaggle_parquet(path: &Path, rows: &[Row], compression: Compression) -> PathBuf {
    let s =
        |f: fn(&Row) -> &'static str| Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef;
    let n = |f: fn(&Row) -> f64| Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef;
    write_parquet(
        path,
        vec![
            ("Index", s(|r| r.0)),
            ("Date", s(|r| r.1)),
            ("Open", n(|r| r.2)),
            ("High", n(|r| r.3)),
            ("Low", n(|r| r.4)),
            ("Close", n(|r| r.5)),
            ("Adj Close", n(|r| r.6)),
            ("Volume", n(|r| r.7)),
            ("CloseUSD", n(|r| r.8)),
        ],
        compression,
    )
}

fn spec(files: &[&Path], mapping: ColumnMapping) -> ReplaySpec {
    ReplaySpec {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        format: ReplayFormat::Auto,
        mapping,
        speed: 0.0,
        loop_: false,
    }
}

fn kaggle() -> ColumnMapping {
    ColumnMapping { preset: Some(MappingPreset::KaggleIndexProcessed), ..Default::default() }
}

fn date_us(d: &str) -> i64 {
    let d: chrono::NaiveDate = d.parse().unwrap();
    d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros()
}

fn drain(r: &mut Replay) -> Vec<Tick> {
    let mut out = Vec::new();
    while !r.next_batch(&mut out, 3).finished {}
    out
}

fn assert_seq_per_symbol(ticks: &[Tick]) {
    let mut next: HashMap<&str, u64> = HashMap::new();
    for t in ticks {
        let want = next.entry(&t.symbol).or_insert(0);
        assert_eq!(t.seq, *want, "{t:?}");
        *want += 1;
    }
}

#[test]
fn kaggle_csv_gzip_and_parquet_replay_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir.path().join("indexProcessed-1.csv"), &csv_text(FILE_A));
    let b = write_gz(&dir.path().join("indexProcessed-2.csv.gz"), &csv_text(FILE_B));
    let mut r = Replay::open(&spec(&[&a, &b], kaggle()), Shard::ALL).unwrap();
    assert_eq!(r.rows(), FILE_A.len() + FILE_B.len());
    assert_eq!(r.pacing(), Pacing::Unthrottled);
    assert_eq!(r.time_range(), Some((date_us("1965-06-01"), date_us("1971-02-12"))));
    let ticks = drain(&mut r);
    assert!(r.bad_rows().is_empty());
    assert_eq!(ticks.len(), 10);

    // Event-time order across both files; equal times keep file, then row, order.
    let order: Vec<(&str, i64)> = ticks.iter().map(|t| (t.symbol.as_str(), t.ts_us)).collect();
    assert_eq!(
        order,
        [
            ("HSI", date_us("1965-06-01")),
            ("NYA", date_us("1965-12-31")),
            ("IXIC", date_us("1971-02-05")),
            ("IXIC", date_us("1971-02-08")),
            ("NYA", date_us("1971-02-08")),
            ("HSI", date_us("1971-02-08")),
            ("NYA", date_us("1971-02-09")),
            ("IXIC", date_us("1971-02-10")),
            ("HSI", date_us("1971-02-11")),
            ("NYA", date_us("1971-02-12")),
        ]
    );
    assert!(ticks.windows(2).all(|w| w[0].ts_us <= w[1].ts_us));
    assert_seq_per_symbol(&ticks);
    assert_eq!(ticks[1].ts_us, -126_316_800_000_000); // 1965-12-31T00:00:00Z
    assert_eq!(
        ticks[5].body,
        TickBody::Bar {
            open: 2540.100098,
            high: 2545.0,
            low: 2530.0,
            close: 2540.100098,
            adj_close: Some(2540.100098),
            volume: 1200.0,
            close_usd: Some(330.21301274),
        }
    );
    // Every tick survives the wire format.
    for t in &ticks {
        assert_eq!(&Tick::decode(&t.encode(), 4096).unwrap(), t);
    }

    // The same rows as Parquet (zstd and snappy) give the same ticks.
    let pa = kaggle_parquet(&dir.path().join("a.parquet"), FILE_A, Compression::ZSTD(ZstdLevel::default()));
    let pb = kaggle_parquet(&dir.path().join("b.parquet"), FILE_B, Compression::SNAPPY);
    let mut p = Replay::open(&spec(&[&pa, &pb], kaggle()), Shard::ALL).unwrap();
    assert_eq!(drain(&mut p), ticks);

    // And a glob over a directory with the CSV files.
    let pattern = dir.path().join("indexProcessed*").display().to_string();
    let mut g = Replay::open(&ReplaySpec { files: vec![pattern], ..spec(&[], kaggle()) }, Shard::ALL).unwrap();
    assert_eq!(g.files(), [a.clone(), b.clone()]);
    assert_eq!(drain(&mut g), ticks);
}

#[test]
fn bad_rows_are_reported_with_file_and_line_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEADER}\n\
         NYA,1965-12-31,528.69,528.69,528.69,528.69,528.69,0.0,528.69\n\
         NYA,1966-01-03,abc,527.21,527.21,527.21,527.21,0.0,527.21\n\
         NYA,1966-01-04,527.84,,527.84,527.84,527.84,0.0,527.84\n\
         \"NYA\",\"1966-01-05\",\"527.5\",\"528\",\"527\",\"527.5\",\"527.5\",\"0\",\"527.5\"\n\
         NYA,1966-01-06,527.84,527.84,-1.5,527.84,527.84,0.0,527.84\n\
         NYA,1966-02-30,527.84,527.84,527.84,527.84,527.84,0.0,527.84\n\
         NYA,1966-01-07,527.84,527.84\n\
         ,1966-01-08,1,1,1,1,1,0,1\n\
         IXIC,1971-02-05,100,100,100,100,100,0,100\n"
    );
    let f = write(&dir.path().join("messy.csv"), &text);
    let gz = write_gz(&dir.path().join("messy.csv.gz"), &text);
    for file in [&f, &gz] {
        let mut r = Replay::open(&spec(&[file], kaggle()), Shard::ALL).unwrap();
        let mut out = Vec::new();
        let first = r.next_batch(&mut out, 100);
        let got: Vec<(u64, &str)> = first.bad_rows.iter().map(|b| (b.line, b.reason.as_str())).collect();
        assert_eq!(
            got,
            [
                (3, "column `Open`: \"abc\" is not a number"),
                (4, "column `High`: missing value"),
                (6, "column `Low`: negative price -1.5"),
                (7, "column `Date`: \"1966-02-30\" is not a date (YYYY-MM-DD)"),
                (8, "column `Low`: missing value"),
                (9, "column `Index`: missing value"),
            ]
        );
        assert!(first.bad_rows.iter().all(|b| &b.file == file && b.format == FileFormat::Csv));
        assert_eq!(
            first.bad_rows[0].to_string(),
            format!("{}:3: column `Open`: \"abc\" is not a number", file.display())
        );
        assert_eq!(r.bad_rows_total(), 6);
        assert_eq!(r.bad_rows(), first.bad_rows.as_slice());
        // The good rows, including the quoted one, came through; later batches repeat no bad rows.
        assert_eq!(out.len(), 3);
        assert!(first.finished);
        assert!(r.next_batch(&mut out, 100).bad_rows.is_empty());
    }

    // Only the first bad rows keep details; the rest are counted.
    let limits = ReplayLimits { max_bad_row_details: 2, ..ReplayLimits::default() };
    let mut r = Replay::open_with_limits(&spec(&[&f], kaggle()), Shard::ALL, limits).unwrap();
    let o = r.next_batch(&mut Vec::new(), 10);
    assert_eq!((o.bad_rows.len(), o.bad_rows_unlisted), (2, 4));
}

#[test]
fn missing_mapped_column_is_a_hard_error_naming_column_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir.path().join("short.csv"), "Index,Date,Open,High,Low,Volume\nNYA,1965-12-31,1,1,1,0\n");
    let err = Replay::open(&spec(&[&f], kaggle()), Shard::ALL).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(&err, SourceError::MissingColumn { column, .. } if column == "Close"), "{msg}");
    assert!(msg.contains("short.csv") && msg.contains("\"Close\"") && msg.contains("Index, Date"), "{msg}");

    let p = write_parquet(
        &dir.path().join("short.parquet"),
        vec![("Index", Arc::new(StringArray::from(vec!["NYA"])) as ArrayRef)],
        Compression::UNCOMPRESSED,
    );
    let msg = Replay::open(&spec(&[&p], kaggle()), Shard::ALL).unwrap_err().to_string();
    assert!(msg.contains("short.parquet") && msg.contains("\"Date\""), "{msg}");

    // Other hard errors: no file, unknown format, empty file, a file that is not Parquet.
    let nothing = dir.path().join("none-*.csv");
    let e = Replay::open(&spec(&[&nothing], kaggle()), Shard::ALL).unwrap_err();
    assert!(matches!(e, SourceError::NoMatch { .. }), "{e}");
    let txt = write(&dir.path().join("data.txt"), "x");
    assert!(matches!(Replay::open(&spec(&[&txt], kaggle()), Shard::ALL), Err(SourceError::UnknownFormat { .. })));
    let empty = write(&dir.path().join("empty.csv"), "");
    let e = Replay::open(&spec(&[&empty], kaggle()), Shard::ALL).unwrap_err().to_string();
    assert!(e.contains("empty.csv") && e.contains("no header"), "{e}");
    let fake = write(&dir.path().join("fake.parquet"), "Index,Date\n");
    let e = Replay::open(&spec(&[&fake], kaggle()), Shard::ALL).unwrap_err().to_string();
    assert!(e.contains("fake.parquet") && e.contains("Parquet"), "{e}");
}

#[test]
fn explicit_trade_and_quote_mappings() {
    let dir = tempfile::tempdir().unwrap();
    let trades = write(
        &dir.path().join("trades.csv"),
        "ticker,when,px,qty,venue\n\
         AAPL,1709303400250,189.23,100,X\n\
         MSFT,1709303400100,410.5,7,X\n\
         AAPL,1709303400200,189.22,300,X\n\
         AAPL,1709303400300,189.24,1.5,X\n",
    );
    let fields = BTreeMap::from([("price".to_string(), "px".to_string()), ("size".to_string(), "qty".to_string())]);
    let mapping = ColumnMapping {
        kind: Some(ReplayKind::Trade),
        symbol: Some("ticker".into()),
        time: Some("when".into()),
        time_format: Some("epochMillis".into()),
        fields,
        ..Default::default()
    };
    let mut r = Replay::open(&spec(&[&trades], mapping), Shard::ALL).unwrap();
    let ticks = drain(&mut r);
    let got: Vec<(&str, i64, u64, &TickBody)> =
        ticks.iter().map(|t| (t.symbol.as_str(), t.ts_us, t.seq, &t.body)).collect();
    assert_eq!(
        got,
        [
            ("MSFT", 1_709_303_400_100_000, 0, &TickBody::Trade { price: 410.5, size: 7 }),
            ("AAPL", 1_709_303_400_200_000, 0, &TickBody::Trade { price: 189.22, size: 300 }),
            ("AAPL", 1_709_303_400_250_000, 1, &TickBody::Trade { price: 189.23, size: 100 }),
        ]
    );
    assert_eq!(r.bad_rows()[0].line, 5);
    assert!(r.bad_rows()[0].reason.contains("whole number"), "{:?}", r.bad_rows());

    // Quotes, columns named after the fields, a chrono format, camelCase field keys.
    let quotes = write(
        &dir.path().join("quotes.csv"),
        "symbol,time,bid,bidSz,ask,ask_size\n\
         AAPL,2024-03-01 14:30:00,189.22,300,189.24,200\n\
         AAPL,2024-03-01 14:29:59,189.20,100,189.25,100\n",
    );
    let mapping = ColumnMapping {
        kind: Some(ReplayKind::Quote),
        time_format: Some("%Y-%m-%d %H:%M:%S".into()),
        fields: BTreeMap::from([("bidSize".to_string(), "bidSz".to_string())]),
        ..Default::default()
    };
    let mut r = Replay::open(&spec(&[&quotes], mapping), Shard::ALL).unwrap();
    let ticks = drain(&mut r);
    assert_eq!(ticks.len(), 2);
    assert_eq!(ticks[0].ts_us, 1_709_303_399_000_000);
    assert_eq!(ticks[1].body, TickBody::Quote { bid: 189.22, bid_size: 300, ask: 189.24, ask_size: 200 });
    assert_eq!((ticks[0].seq, ticks[1].seq), (0, 1));
}

#[test]
fn parquet_native_types_and_row_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let day = |d: &str| (date_us(d) / DAY_US) as i32;
    let sym: DictionaryArray<Int32Type> = vec!["NYA", "HSI", "NYA", "HSI"].into_iter().collect();
    let p = write_parquet(
        &dir.path().join("native.parquet"),
        vec![
            ("Index", Arc::new(sym) as ArrayRef),
            (
                "Date",
                Arc::new(Date32Array::from(vec![
                    day("2001-01-03"),
                    day("2001-01-02"),
                    day("2001-01-02"),
                    day("2001-01-04"),
                ])),
            ),
            ("Open", Arc::new(Float64Array::from(vec![Some(1.0), Some(2.0), None, Some(4.0)]))),
            ("High", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
            ("Low", Arc::new(StringArray::from(vec!["1", "2", "3", "-4"]))),
            ("Close", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0]))),
            ("Volume", Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 40.0]))),
        ],
        Compression::ZSTD(ZstdLevel::default()),
    );
    let mut r = Replay::open(&spec(&[&p], kaggle()), Shard::ALL).unwrap();
    let ticks = drain(&mut r);
    let got: Vec<(&str, i64)> = ticks.iter().map(|t| (t.symbol.as_str(), t.ts_us)).collect();
    assert_eq!(got, [("HSI", date_us("2001-01-02")), ("NYA", date_us("2001-01-03"))]);
    assert_eq!(
        ticks[0].body,
        TickBody::Bar { open: 2.0, high: 2.0, low: 2.0, close: 2.0, adj_close: None, volume: 20.0, close_usd: None }
    );
    let bad: Vec<String> = r.bad_rows().iter().map(|b| b.to_string()).collect();
    assert_eq!(
        bad,
        [
            format!("{} row 2: column `Open`: missing value", p.display()),
            format!("{} row 3: column `Low`: negative price -4", p.display()),
        ]
    );

    // Timestamps in milliseconds for trades; an unusable column type is a hard error.
    let t = write_parquet(
        &dir.path().join("trades.parquet"),
        vec![
            ("symbol", Arc::new(StringArray::from(vec!["AAPL", "AAPL"])) as ArrayRef),
            (
                "time",
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_709_303_400_250, 1_709_303_400_000]).with_timezone("UTC"),
                ),
            ),
            ("price", Arc::new(Float64Array::from(vec![189.23, 189.2]))),
            ("size", Arc::new(Int64Array::from(vec![100, 5]))),
            ("flag", Arc::new(arrow_array::BooleanArray::from(vec![true, false]))),
        ],
        Compression::SNAPPY,
    );
    let trade = ColumnMapping { kind: Some(ReplayKind::Trade), ..Default::default() };
    let mut r = Replay::open(&spec(&[&t], trade.clone()), Shard::ALL).unwrap();
    let ticks = drain(&mut r);
    assert_eq!(ticks[0].ts_us, 1_709_303_400_000_000);
    assert_eq!(ticks[1].body, TickBody::Trade { price: 189.23, size: 100 });

    let mut bad_type = trade.clone();
    bad_type.fields.insert("size".into(), "flag".into());
    let e = Replay::open(&spec(&[&t], bad_type), Shard::ALL).unwrap_err().to_string();
    assert!(e.contains("\"flag\"") && e.contains("Boolean") && e.contains("size"), "{e}");

    let ints = write_parquet(
        &dir.path().join("ints.parquet"),
        vec![
            ("symbol", Arc::new(StringArray::from(vec!["A"])) as ArrayRef),
            ("time", Arc::new(Int64Array::from(vec![1_709_303_400]))),
            ("price", Arc::new(Float64Array::from(vec![1.0]))),
            ("size", Arc::new(Int64Array::from(vec![1]))),
        ],
        Compression::UNCOMPRESSED,
    );
    let e = Replay::open(&spec(&[&ints], trade.clone()), Shard::ALL).unwrap_err().to_string();
    assert!(e.contains("timeFormat"), "{e}");
    let mut secs = trade;
    secs.time_format = Some("epochSeconds".into());
    let mut r = Replay::open(&spec(&[&ints], secs), Shard::ALL).unwrap();
    assert_eq!(r.next_tick().unwrap().ts_us, 1_709_303_400_000_000);
}

#[test]
fn looping_replay_keeps_counting_seq_and_flags_each_new_pass() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir.path().join("a.csv"), &csv_text(FILE_A));
    let mut s = spec(&[&a], kaggle());
    s.loop_ = true;
    s.speed = 86_400.0; // a day of event time per wall second
    let mut r = Replay::open(&s, Shard::ALL).unwrap();
    assert_eq!(r.pacing(), Pacing::EventTime { speed: 86_400.0 });
    let mut out = Vec::new();
    let mut flags = Vec::new();
    for _ in 0..5 {
        let o = r.next_batch(&mut out, 4);
        assert!(!o.finished);
        flags.push((o.produced, o.new_pass));
    }
    // 6 rows per pass, batches of 4 never span passes.
    assert_eq!(flags, [(4, false), (2, false), (4, true), (2, false), (4, true)]);
    assert_eq!(r.pass(), 2);
    assert_seq_per_symbol(&out);
    let ixic: Vec<u64> = out.iter().filter(|t| t.symbol == "IXIC").map(|t| t.seq).collect();
    assert_eq!(ixic, (0..ixic.len() as u64).collect::<Vec<_>>());
    assert_eq!(out[6].ts_us, out[0].ts_us); // event time starts over

    // Pacing the loop: the pacer re-anchors at each new pass.
    let mut pacer = EventTimePacer::new(86_400.0);
    let now = Duration::from_secs(10);
    assert_eq!(pacer.delay(out[0].ts_us, now), Duration::ZERO);
    let wait = pacer.delay(out[1].ts_us, now); // 1965-12-31 → 1971-02-05
    assert_eq!(wait.as_secs(), (date_us("1971-02-05") - date_us("1965-12-31")) as u64 / DAY_US as u64);
    assert_eq!(pacer.delay(out[6].ts_us, now + wait), Duration::ZERO);

    // The iterator crosses passes too.
    let mut it = Replay::open(&s, Shard::ALL).unwrap();
    assert_eq!(it.by_ref().take(13).count(), 13);
    assert_eq!(it.pass(), 2);

    // A looping replay with no rows ends instead of spinning.
    let empty = write(&dir.path().join("empty.csv"), &format!("{HEADER}\n"));
    let mut s2 = spec(&[&empty], kaggle());
    s2.loop_ = true;
    let mut r = Replay::open(&s2, Shard::ALL).unwrap();
    assert!(r.next_batch(&mut Vec::new(), 10).finished);
    assert_eq!(r.next_tick(), None);
}

#[test]
fn replay_shards_partition_the_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("{HEADER}\n");
    for i in 0..60 {
        text += &format!("S{i},2000-01-{:02},1,1,1,1,1,0,1\n", 1 + i % 28);
    }
    text += ",2000-01-01,1,1,1,1,1,0,1\n"; // unreadable symbol: reported once, by shard 0
    text += "S1,2000-13-01,1,1,1,1,1,0,1\n"; // bad row: reported by S1's shard only
    let f = write(&dir.path().join("many.csv"), &text);
    let all = drain(&mut Replay::open(&spec(&[&f], kaggle()), Shard::ALL).unwrap());
    let mut union: Vec<Tick> = Vec::new();
    let mut bad = 0;
    for index in 0..3 {
        let mut r = Replay::open(&spec(&[&f], kaggle()), Shard::new(index, 3).unwrap()).unwrap();
        bad += r.bad_rows().len();
        let ticks = drain(&mut r);
        assert!(!ticks.is_empty());
        assert!(ticks.iter().all(|t| Shard::new(index, 3).unwrap().owns_symbol(&t.symbol)));
        union.extend(ticks);
    }
    assert_eq!(bad, 2);
    let key = |t: &Tick| (t.symbol.clone(), t.seq);
    union.sort_by_key(key);
    let mut all = all;
    all.sort_by_key(key);
    assert_eq!(union, all);
}

#[test]
fn row_limit_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir.path().join("a.csv"), &csv_text(FILE_A));
    let limits = ReplayLimits { max_rows: 5, ..ReplayLimits::default() };
    let e = Replay::open_with_limits(&spec(&[&a], kaggle()), Shard::ALL, limits).unwrap_err().to_string();
    assert!(e.contains("more than 5 rows") && e.contains("a.csv:7"), "{e}");
    let limits = ReplayLimits { max_symbols: 1, ..ReplayLimits::default() };
    let e = Replay::open_with_limits(&spec(&[&a], kaggle()), Shard::ALL, limits).unwrap_err().to_string();
    assert!(e.contains("distinct symbols") && e.contains("a.csv:5"), "{e}");
    let mut s = spec(&[&a], kaggle());
    s.speed = -1.0;
    assert!(Replay::open(&s, Shard::ALL).unwrap_err().to_string().contains("speed"));
}

#[test]
fn source_from_spec_builds_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir.path().join("a.csv"), &csv_text(FILE_A));
    let mut s = spec(&[&a], kaggle());
    s.speed = 2.0;
    let mut src = Source::from_spec(&SourceSpec { simulator: None, replay: Some(s) }, (0, 1), 0).unwrap();
    assert_eq!(src.pacing(), Pacing::EventTime { speed: 2.0 });
    let mut out = Vec::new();
    let o = src.next_batch(&mut out, 100).unwrap();
    assert_eq!((o.produced, o.finished), (6, true));
    assert!(src.is_finished());
}
