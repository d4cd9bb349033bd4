//! No panic on bad input: a deterministic mutation run over valid files of every format (bit
//! flips, byte overwrites, truncations, splices), through the per-file pure step. A stand-in
//! until the `cargo fuzz` targets of issue #5; it fails if anything panics.

use std::io::Write as _;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ticklake_catalog::{FileSample, Limits, inspect, parquet_schema, sniff};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 17
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let json = br#"{"a":1,"b":[1,2.5,{"c":"2024-01-01T00:00:00Z"}],"ts_ms":1714570200000,"d":{"e":null}}
{"a":3000000000,"b":[],"s":"x\u00e9"}
"#
    .to_vec();
    let array = br#"[{"k":1},{"k":"v","n":[true,false]}]"#.to_vec();
    let csv = b"id,name,px,at\n007,\"Smith, J\",1.5,2024-05-01 10:00:00\n8,\"a \"\"q\"\"\",,2024-05-02\n".to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&csv[..], 3).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["a", "b"])),
        Arc::new(Int64Array::from(vec![1, 2])),
        Arc::new(Float64Array::from(vec![1.5, 2.5])),
    ];
    let mut pq = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut pq, schema.clone(), None).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap()).unwrap();
    w.close().unwrap();
    vec![("a.json", json), ("b.json", array), ("c.csv", csv), ("d.json.gz", gz), ("e.csv.zst", zst), ("f.parquet", pq)]
}

fn mutate(rng: &mut Lcg, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = [b'{', b'}', b'[', b']', b'"', b',', b'\n', 0, 0xff, b'\\'][rng.below(10)];
            }
            2 => b.truncate(rng.below(b.len() + 1)),
            3 => {
                let at = rng.below(b.len() + 1);
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                b.splice(at..at, other[from..to].iter().copied());
            }
            _ => {
                let n = rng.below(b.len() + 1);
                b.drain(..n.min(8));
            }
        }
    }
    b
}

#[test]
fn mutated_inputs_never_panic() {
    let seeds = seeds();
    let limits = Limits { sample_bytes: 4096, max_depth: 8, max_columns: 64, ..Limits::default() };
    let mut rng = Lcg(7);
    let mut outcomes = [0usize; 2];
    for round in 0..4000 {
        let (name, input) = &seeds[round % seeds.len()];
        let other = &seeds[rng.below(seeds.len())].1;
        let bytes = mutate(&mut rng, input, other);
        // As a whole file, and as a cut head of a longer one.
        let whole = FileSample::whole(name, &bytes);
        outcomes[usize::from(inspect(&whole, &limits).is_ok())] += 1;
        let cut = FileSample { name, len: bytes.len() as u64 + 100, head: &bytes, tail: &[] };
        let _ = sniff(&cut, &limits);
        let _ = inspect(&cut, &limits);
        let _ = parquet_schema(&bytes, &limits);
    }
    // Both outcomes occur: the mutations are neither all harmless nor all fatal.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}
