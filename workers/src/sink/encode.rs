//! Turning a batch of ticks into object bodies — pure functions, no I/O.
//!
//! **Parquet schema** (one row per tick; columns that do not apply to a kind are null):
//!
//! | column | type | |
//! |---|---|---|
//! | `symbol` | string | dictionary-encoded |
//! | `kind` | string | `trade`, `quote`, `bar` |
//! | `event_time` | timestamp(µs, UTC) | delta-encoded |
//! | `seq` | int64 | per-symbol sequence |
//! | `price`, `size` | double, int64 | trades |
//! | `bid`, `bid_size`, `ask`, `ask_size` | double, int64 | quotes |
//! | `open`, `high`, `low`, `close`, `adj_close`, `volume`, `close_usd` | double | bars |
//!
//! Rows are sorted by (`kind`, `symbol`, `event_time`, `seq`) inside an object: deterministic
//! output for the same batch, small deltas for the encoders, and page and row-group statistics
//! that let engines skip kinds and symbols. `kind` comes first because queries almost always ask
//! for one kind (`WHERE kind = 'trade'`): its rows are then one run, the reader skips the other
//! kinds' pages without decoding them, and the null columns of each kind compress to nothing.
//! Interleaved kinds made a 1-minute OHLCV over 100 M ticks twice as slow (BENCHMARKS.md).
//! Compression is zstd.
//!
//! **JSON lines**: one version-1 tick message per line (the format producers write), same order.

use arrow_array::builder::{Float64Builder, Int64Builder, StringDictionaryBuilder, TimestampMicrosecondBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::borrow::Borrow;
use std::sync::{Arc, LazyLock};
use ticklake_api::tick::{Tick, TickBody};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// The Arrow schema of the Parquet objects.
pub fn tick_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
        Arc::new(Schema::new(vec![
            f("symbol", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
            f("kind", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
            f("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            f("seq", DataType::Int64, false),
            f("price", DataType::Float64, true),
            f("size", DataType::Int64, true),
            f("bid", DataType::Float64, true),
            f("bid_size", DataType::Int64, true),
            f("ask", DataType::Float64, true),
            f("ask_size", DataType::Int64, true),
            f("open", DataType::Float64, true),
            f("high", DataType::Float64, true),
            f("low", DataType::Float64, true),
            f("close", DataType::Float64, true),
            f("adj_close", DataType::Float64, true),
            f("volume", DataType::Float64, true),
            f("close_usd", DataType::Float64, true),
        ]))
    });
    SCHEMA.clone()
}

fn writer_properties() -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("zstd level 3 is valid")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by("ticklake".to_string());
    for c in ["event_time", "seq"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    for c in ["size", "bid_size", "ask_size"] {
        b = b.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    b.build()
}

/// Sorts ticks the way objects store them: (`kind`, `symbol`, `event_time`, `seq`).
pub fn sort_ticks(ticks: &mut [Tick]) {
    ticks.sort_unstable_by(|a, b| {
        (kind_rank(&a.body), &a.symbol, a.ts_us, a.seq).cmp(&(kind_rank(&b.body), &b.symbol, b.ts_us, b.seq))
    });
}

/// A kind's place in the row order: the order of the `kind` strings (`bar` < `quote` <
/// `trade`), so the column's statistics and the rows agree.
pub fn kind_rank(body: &TickBody) -> u8 {
    match body {
        TickBody::Bar { .. } => 0,
        TickBody::Quote { .. } => 1,
        TickBody::Trade { .. } => 2,
    }
}

/// Encodes sorted ticks as one Parquet file.
pub fn parquet<T: Borrow<Tick>>(ticks: &[T]) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let schema = tick_schema();
    let mut out = Vec::with_capacity(ticks.len() * 16 + 4096);
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), Some(writer_properties()))?;
    for chunk in ticks.chunks(ROW_GROUP_ROWS) {
        w.write(&record_batch(&schema, chunk)?)?;
    }
    w.close()?;
    Ok(out)
}

fn record_batch<T: Borrow<Tick>>(schema: &SchemaRef, ticks: &[T]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = ticks.len();
    let mut symbol = StringDictionaryBuilder::<Int32Type>::new();
    let mut kind = StringDictionaryBuilder::<Int32Type>::new();
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut seq = Int64Builder::with_capacity(n);
    let mut f: [Float64Builder; 11] = std::array::from_fn(|_| Float64Builder::with_capacity(n));
    let mut i: [Int64Builder; 3] = std::array::from_fn(|_| Int64Builder::with_capacity(n));
    // Column order in `f`: price bid ask open high low close adj_close volume close_usd (10) + spare.
    const PRICE: usize = 0;
    const BID: usize = 1;
    const ASK: usize = 2;
    const OPEN: usize = 3;
    const HIGH: usize = 4;
    const LOW: usize = 5;
    const CLOSE: usize = 6;
    const ADJ: usize = 7;
    const VOL: usize = 8;
    const USD: usize = 9;
    const SIZE: usize = 0;
    const BID_SIZE: usize = 1;
    const ASK_SIZE: usize = 2;
    for t in ticks {
        let t: &Tick = t.borrow();
        symbol.append_value(&t.symbol);
        kind.append_value(t.body.kind());
        ts.append_value(t.ts_us);
        seq.append_value(t.seq as i64);
        let mut fv: [Option<f64>; 10] = [None; 10];
        let mut iv: [Option<i64>; 3] = [None; 3];
        match &t.body {
            TickBody::Trade { price, size } => {
                fv[PRICE] = Some(*price);
                iv[SIZE] = Some(*size as i64);
            }
            TickBody::Quote { bid, bid_size, ask, ask_size } => {
                fv[BID] = Some(*bid);
                fv[ASK] = Some(*ask);
                iv[BID_SIZE] = Some(*bid_size as i64);
                iv[ASK_SIZE] = Some(*ask_size as i64);
            }
            TickBody::Bar { open, high, low, close, adj_close, volume, close_usd } => {
                fv[OPEN] = Some(*open);
                fv[HIGH] = Some(*high);
                fv[LOW] = Some(*low);
                fv[CLOSE] = Some(*close);
                fv[ADJ] = *adj_close;
                fv[VOL] = Some(*volume);
                fv[USD] = *close_usd;
            }
        }
        for (b, v) in f.iter_mut().zip(fv) {
            b.append_option(v);
        }
        for (b, v) in i.iter_mut().zip(iv) {
            b.append_option(v);
        }
    }
    let [mut price, mut bid, mut ask, mut open, mut high, mut low, mut close, mut adj, mut vol, mut usd, _] = f;
    let [mut size, mut bid_size, mut ask_size] = i;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(symbol.finish()),
        Arc::new(kind.finish()),
        Arc::new(ts.finish()),
        Arc::new(seq.finish()),
        Arc::new(price.finish()),
        Arc::new(size.finish()),
        Arc::new(bid.finish()),
        Arc::new(bid_size.finish()),
        Arc::new(ask.finish()),
        Arc::new(ask_size.finish()),
        Arc::new(open.finish()),
        Arc::new(high.finish()),
        Arc::new(low.finish()),
        Arc::new(close.finish()),
        Arc::new(adj.finish()),
        Arc::new(vol.finish()),
        Arc::new(usd.finish()),
    ];
    RecordBatch::try_new(schema.clone(), cols)
}

/// Encodes sorted ticks as JSON lines (version-1 messages).
pub fn json_lines<T: Borrow<Tick>>(ticks: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ticks.len() * 120);
    for t in ticks {
        let t: &Tick = t.borrow();
        t.encode_into(&mut out);
        out.push(b'\n');
    }
    out
}

/// One refused message, as a line of a dead-letter object.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    /// Stable reason code (see `ticklake_api::tick::RejectReason::code`).
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
    /// The key, base64 (standard alphabet), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The raw value, base64 (standard alphabet).
    pub value_base64: String,
}

/// Encodes dead letters as JSON lines.
pub fn dead_letters(items: &[DeadLetter]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in items {
        serde_json::to_writer(&mut out, d).expect("serialising to memory cannot fail");
        out.push(b'\n');
    }
    out
}

/// Standard base64 with padding (RFC 4648), small and dependency-free.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        s.push(A[(n >> 18) as usize & 63] as char);
        s.push(A[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
        s.push(if c.len() > 2 { A[n as usize & 63] as char } else { '=' });
    }
    s
}

/// Decodes [`base64`] output (for tools and tests).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for c in bytes.chunks(4) {
        let pad = c.iter().rev().take_while(|b| **b == b'=').count();
        let mut n = 0u32;
        for (i, b) in c.iter().enumerate() {
            n |= if *b == b'=' { 0 } else { val(*b)? } << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if pad < 2 {
            out.push((n >> 8) as u8);
        }
        if pad < 1 {
            out.push(n as u8);
        }
    }
    Some(out)
}

/// Reads ticks back from a Parquet object written by [`parquet`] (for verification tools,
/// tests and benchmarks).
pub fn read_parquet(bytes: bytes::Bytes) -> Result<Vec<Tick>, parquet::errors::ParquetError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| parquet::errors::ParquetError::General(format!("column {name} missing")))
        };
        let sym_arr = arrow_cast_utf8(&col("symbol")?)?;
        let kind_arr = arrow_cast_utf8(&col("kind")?)?;
        let ts = col("event_time")?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let seq = col("seq")?;
        let seq = seq.as_primitive::<Int64Type>();
        let fcol = |n: &str| -> Result<arrow_array::PrimitiveArray<Float64Type>, parquet::errors::ParquetError> {
            Ok(col(n)?.as_primitive::<Float64Type>().clone())
        };
        let icol = |n: &str| -> Result<arrow_array::PrimitiveArray<Int64Type>, parquet::errors::ParquetError> {
            Ok(col(n)?.as_primitive::<Int64Type>().clone())
        };
        let (price, size, bid, bid_size, ask, ask_size) =
            (fcol("price")?, icol("size")?, fcol("bid")?, icol("bid_size")?, fcol("ask")?, icol("ask_size")?);
        let (open, high, low, close, adj, vol, usd) = (
            fcol("open")?,
            fcol("high")?,
            fcol("low")?,
            fcol("close")?,
            fcol("adj_close")?,
            fcol("volume")?,
            fcol("close_usd")?,
        );
        let opt =
            |a: &arrow_array::PrimitiveArray<Float64Type>, r: usize| if a.is_null(r) { None } else { Some(a.value(r)) };
        use arrow_array::Array;
        for r in 0..batch.num_rows() {
            let body = match kind_arr[r].as_str() {
                "trade" => TickBody::Trade { price: price.value(r), size: size.value(r) as u64 },
                "quote" => TickBody::Quote {
                    bid: bid.value(r),
                    bid_size: bid_size.value(r) as u64,
                    ask: ask.value(r),
                    ask_size: ask_size.value(r) as u64,
                },
                _ => TickBody::Bar {
                    open: open.value(r),
                    high: high.value(r),
                    low: low.value(r),
                    close: close.value(r),
                    adj_close: opt(&adj, r),
                    volume: vol.value(r),
                    close_usd: opt(&usd, r),
                },
            };
            out.push(Tick { symbol: sym_arr[r].clone(), ts_us: ts.value(r), seq: seq.value(r) as u64, body });
        }
    }
    Ok(out)
}

fn arrow_cast_utf8(a: &ArrayRef) -> Result<Vec<String>, parquet::errors::ParquetError> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    match a.data_type() {
        DataType::Dictionary(_, _) => {
            let d = a.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            Ok(d.keys().iter().map(|k| values.value(k.unwrap_or(0) as usize).to_string()).collect())
        }
        DataType::Utf8 => Ok(a.as_string::<i32>().iter().map(|s| s.unwrap_or("").to_string()).collect()),
        other => Err(parquet::errors::ParquetError::General(format!("unexpected string column type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks() -> Vec<Tick> {
        let mut v = Vec::new();
        for s in 0..5u64 {
            for q in 0..200u64 {
                let symbol = format!("S{s}");
                let body = match q % 3 {
                    0 => TickBody::Trade { price: 100.0 + q as f64 * 0.01, size: 100 },
                    1 => TickBody::Quote { bid: 99.99, bid_size: 200, ask: 100.01, ask_size: 300 },
                    _ => TickBody::Bar {
                        open: 1.0,
                        high: 2.0,
                        low: 0.5,
                        close: 1.5,
                        adj_close: if q % 2 == 0 { Some(1.4) } else { None },
                        volume: 1e6,
                        close_usd: None,
                    },
                };
                v.push(Tick { symbol, ts_us: 1_764_000_000_000_000 + (q * 1000) as i64, seq: q, body });
            }
        }
        v
    }

    #[test]
    fn parquet_round_trips_every_kind() {
        let mut t = ticks();
        sort_ticks(&mut t);
        let bytes = parquet(&t).unwrap();
        let back = read_parquet(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn rows_sort_by_kind_symbol_time_and_kind_rank_follows_the_kind_strings() {
        let mut t = ticks();
        t.reverse();
        sort_ticks(&mut t);
        let keys: Vec<_> = t.iter().map(|t| (t.body.kind(), t.symbol.as_str(), t.ts_us, t.seq)).collect();
        assert!(keys.is_sorted(), "rows are in (kind, symbol, event_time, seq) order");
        // Each kind is one run: a reader filtering on kind reads one stretch of each column.
        let runs = t.chunk_by(|a, b| a.body.kind() == b.body.kind()).count();
        assert_eq!(runs, 3);
        let bodies = [&t[0].body, &t[t.len() / 2].body, &t[t.len() - 1].body];
        assert!(bodies.is_sorted_by_key(|b| kind_rank(b)) && bodies.is_sorted_by_key(|b| b.kind()));
    }

    #[test]
    fn parquet_is_deterministic() {
        let mut t = ticks();
        sort_ticks(&mut t);
        assert_eq!(parquet(&t).unwrap(), parquet(&t).unwrap());
    }

    #[test]
    fn json_lines_are_tick_messages() {
        let t = ticks();
        let out = json_lines(&t[..3]);
        let lines: Vec<_> = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3);
        for (l, want) in lines.iter().zip(&t) {
            assert_eq!(&Tick::decode(l, 1 << 20).unwrap(), want);
        }
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64(&data)).unwrap(), data);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
    }
}
