//! Any bytes, as a whole file or as the cut head of a longer one, under any of the names the
//! sniffer takes hints from: `sniff`, `inspect` (sniff + infer) and the Parquet footer reader
//! must return a value or an error, never panic, loop or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticklake_catalog::{FileSample, HeaderRule, Limits, inspect, parquet_schema, sniff};

const NAMES: [&str; 8] = ["a.json", "b.csv", "c.parquet", "d.json.gz", "e.csv.zst", "f.tsv", "g", "h.jsonl"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let name = NAMES[usize::from(selector) % NAMES.len()];
    // Small limits, so the bounds themselves are exercised.
    let limits = Limits {
        sample_bytes: 4096,
        max_records: 64,
        max_depth: 8,
        max_columns: 64,
        max_footer_bytes: 1 << 16,
        csv_header: [HeaderRule::Detect, HeaderRule::Always, HeaderRule::Never][usize::from(selector >> 4) % 3],
    };
    let whole = FileSample::whole(name, bytes);
    let _ = sniff(&whole, &limits);
    let _ = inspect(&whole, &limits);
    let cut = FileSample { name, len: bytes.len() as u64 + 4096, head: bytes, tail: bytes };
    let _ = inspect(&cut, &limits);
    let _ = parquet_schema(bytes, &limits);
});
