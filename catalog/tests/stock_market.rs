//! The realistic case of issue #5: one folder of 3,000 `stock_market_N.json` files, one JSON
//! object each (`Index, Date, Open, High, Low, Close, Adj Close, Volume, CloseUSD`), salted
//! with 5 stray `{"name": "…"}` objects under the same naming pattern. The crawler must make
//! exactly one table with the 9 columns, and set the 5 strays aside by name — never a table
//! per file.

mod common;

use std::time::Instant;

use ticklake_catalog::{CrawlOptions, DataType, crawl_dir};

const STRAYS: [usize; 5] = [17, 600, 1234, 2222, 3004];
const INDEXES: [&str; 8] = ["NYA", "IXIC", "HSI", "000001.SS", "GSPTSE", "N225", "GDAXI", "J203.JO"];

/// A deterministic pseudo-random stream (an LCG: the test needs variety, not quality).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn date(n: usize) -> String {
    // Consecutive calendar days from 1990-01-01, month lengths respected.
    let (mut y, mut m, mut d) = (1990, 1, 1);
    for _ in 0..n {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
        d += 1;
        if d > days {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
    format!("{y:04}-{m:02}-{d:02}")
}

fn generate(root: &std::path::Path) {
    let mut rng = Lcg(42);
    let mut stock = 0;
    for n in 0..3005 {
        let body = if STRAYS.contains(&n) {
            format!("{{\"name\": \"stray object {n}\"}}\n")
        } else {
            stock += 1;
            let open = 100.0 + 900.0 * rng.next();
            let (high, low) = (open * (1.0 + 0.02 * rng.next()), open * (1.0 - 0.02 * rng.next()));
            let close = low + (high - low) * rng.next();
            let volume = (1_000_000.0 * rng.next()).round();
            // Volume as an integer in some files and as a float in others: the column widens to double.
            let volume = if n % 3 == 0 { format!("{volume:.1}") } else { format!("{}", volume as i64) };
            format!(
                "{{\"Index\": \"{}\", \"Date\": \"{}\", \"Open\": {open:.6}, \"High\": {high:.6}, \"Low\": {low:.6}, \
                 \"Close\": {close:.6}, \"Adj Close\": {close:.6}, \"Volume\": {volume}, \"CloseUSD\": {:.6}}}\n",
                INDEXES[n % INDEXES.len()],
                date(n),
                close * 0.9
            )
        };
        std::fs::write(root.join(format!("stock_market_{n}.json")), body).unwrap();
    }
    assert_eq!(stock, 3000);
}

#[test]
fn thousands_of_one_object_files_make_one_table_and_strays_are_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("stock_market");
    std::fs::create_dir(&root).unwrap();
    generate(&root);

    let started = Instant::now();
    let report = crawl_dir(&root, &CrawlOptions::default()).unwrap();
    let took = started.elapsed();

    assert_eq!(report.files_listed, 3005);
    assert_eq!(report.read, 3005);
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    assert_eq!(report.tables.len(), 1, "one table, never one per file:\n{report}");
    let t = &report.tables[0];
    assert_eq!(t.name, "stock_market");
    assert_eq!(t.location, "");
    assert_eq!(t.files.len(), 3000);
    assert_eq!(t.distinct_schemas, 2, "Volume as int and as double");
    assert!(t.partition_keys.is_empty());
    let columns: Vec<(&str, String, bool)> =
        t.schema.columns.iter().map(|c| (c.name.as_str(), c.data_type.glue_type(), c.nullable)).collect();
    let double = || "double".to_string();
    assert_eq!(
        columns,
        [
            ("Index", "string".to_string(), false),
            ("Date", "date".to_string(), false),
            ("Open", double(), false),
            ("High", double(), false),
            ("Low", double(), false),
            ("Close", double(), false),
            ("Adj Close", double(), false),
            ("Volume", double(), false),
            ("CloseUSD", double(), false),
        ]
    );
    assert_eq!(t.schema.column("Volume").unwrap().data_type, DataType::Double);

    let strays: Vec<&str> = report.set_aside.iter().map(|s| s.path.as_str()).collect();
    let mut want: Vec<String> = STRAYS.iter().map(|n| format!("stock_market_{n}.json")).collect();
    want.sort();
    assert_eq!(strays, want);
    for s in &report.set_aside {
        assert_eq!(s.table.as_deref(), Some("stock_market"));
        assert!(s.reason.contains("column similarity 0.00 is below 0.70 (columns: name)"), "{}", s.reason);
    }
    eprintln!("crawled 3,005 files in {took:?}");
    common::check("stock_market", &report.to_string());
}
