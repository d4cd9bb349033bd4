//! Schema inference: the type of every value, and how types merge across records and files.
//!
//! ## Values
//!
//! | value | type |
//! |---|---|
//! | JSON `true`/`false`; CSV `true`/`false` (any case) | `boolean` |
//! | integer in −2³¹…2³¹−1 | `int` |
//! | other integer in i64 | `bigint` |
//! | integer beyond i64, any number with `.` or exponent | `double` |
//! | CSV integer with a leading zero (`007`, `01234`) | `string` (an identifier, not a number) |
//! | text `YYYY-MM-DD` (a real calendar date) | `date` |
//! | text `YYYY-MM-DD[T or space]HH:MM:SS[.f…f][Z or ±HH:MM or ±HHMM]` | `timestamp` |
//! | an integer in a *time-named* column, in a plausible range (below) | `timestamp` (epoch) |
//! | JSON `null`, an empty CSV cell | unknown (`null`): the column is nullable |
//! | JSON object | `struct<…>`, fields in the order first seen |
//! | JSON array | `array<e>`, `e` the merge of its elements (`array<string>` if always empty) |
//! | anything else (JSON strings, CSV text) | `string` |
//!
//! JSON strings are never numbers or booleans (`"42"` is a `string`): JSON says what is a
//! number. CSV has only text, so its cells go through the whole table (surrounding spaces
//! ignored). `NaN`, `inf` and the like are strings.
//!
//! **Epoch numbers** ([`epoch_unit`]): an integer is a timestamp only when its column's name
//! says time *and* its value is plausible. A name says time when, lower-cased and without a
//! unit suffix (`_s`, `_ms`, `_us`, `_ns`), it is `ts`, `time`, `timestamp` or `datetime`, or
//! ends with `_ts`, `_time`, `timestamp`, `_datetime` or `_at`. With a unit suffix
//! (`ts_us`, `event_time_ms`) the unit is the suffix's and any instant in 1900–2200 is
//! plausible (ticklake's own `ts_us` goes back to the 1960s). Without one, the magnitude
//! decides: an instant in 2000–2100 counted in seconds, milliseconds, microseconds or
//! nanoseconds (those four ranges do not overlap). Floats never are epochs.
//!
//! ## Merging ([`merge`])
//!
//! | a ⊔ b | result |
//! |---|---|
//! | t ⊔ t | t |
//! | `null` ⊔ t | t, and the column is nullable |
//! | `int` ⊔ `bigint` | `bigint` |
//! | `int`/`bigint` ⊔ `double` | `double` |
//! | epoch timestamp ⊔ `int`/`bigint`, or epochs in two units | `bigint` (not every value is a plausible instant in one unit) |
//! | epoch timestamp ⊔ `double` | `double` |
//! | `decimal` ⊔ another number (or another `decimal(p,s)`) | `double` |
//! | `struct` ⊔ `struct` | fields merged by name, recursively; a field missing on one side is nullable |
//! | `array<a>` ⊔ `array<b>` | `array<a ⊔ b>` |
//! | `map<k1,v1>` ⊔ `map<k2,v2>` | `map<k1 ⊔ k2, v1 ⊔ v2>` |
//! | anything else (`date` ⊔ `timestamp`, `boolean` ⊔ `int`, `string` ⊔ …, struct ⊔ scalar) | `string` |
//!
//! The merge is commutative and associative except for field order (first seen first), so the
//! order files are read in changes only the column order.
//!
//! ## Parquet
//!
//! [`parquet_schema`] reads the footer (the arrow schema when the writer stored one) and maps:
//! 8/16/32-bit integers and 8/16-bit unsigned → `int`; 64-bit and 32/64-bit unsigned →
//! `bigint`; floats → `double`; decimals → `decimal(p,s)`; UTF-8 → `string`; binary →
//! `binary`; dates → `date`; timestamps → `timestamp`; lists → `array`; structs → `struct`;
//! maps → `map`; dictionaries and run-end encodings → their values' type. Types Glue has no
//! name for (time of day, duration, interval, union) are listed as `string`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::Limits;
use crate::error::CatalogError;
use crate::sniff::{CsvDialect, Format, Sniffed, cell, csv_rows, scan_json};
use crate::types::{DataType, EpochUnit, Field, Schema, TsRepr};

/// The schema of one file's sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    pub schema: Schema,
    /// Records read from the sample.
    pub records: usize,
}

/// Infers the schema of a sniffed JSON or CSV sample. Parquet takes its schema from the
/// footer instead ([`parquet_schema`]); an unknown format is [`CatalogError::UnknownFormat`].
pub fn infer(sniffed: &Sniffed, limits: &Limits) -> Result<Inferred, CatalogError> {
    match &sniffed.format {
        Format::Json(_) => infer_json(&sniffed.sample, sniffed.truncated, limits),
        Format::Csv(dialect) => infer_csv(&sniffed.sample, sniffed.truncated, *dialect, limits),
        Format::Parquet => {
            Err(CatalogError::Parquet("a Parquet schema comes from the footer: use parquet_schema".into()))
        }
        Format::Unknown { reason } => Err(CatalogError::UnknownFormat(reason.clone())),
    }
}

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

/// 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z, in seconds.
const WIDE_RANGE_S: (i128, i128) = (-2_208_988_800, 7_258_118_400);
/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z, in seconds.
const NARROW_RANGE_S: (i128, i128) = (946_684_800, 4_102_444_800);

fn is_time_name(stem: &str) -> bool {
    matches!(stem, "ts" | "time" | "timestamp" | "datetime")
        || ["_ts", "_time", "timestamp", "_datetime", "_at"].iter().any(|s| stem.ends_with(s) && stem.len() > s.len())
}

/// The epoch unit of integer `value` in column `column`, if the column's name says time and
/// the value is a plausible instant (see the module documentation).
pub fn epoch_unit(column: &str, value: i64) -> Option<EpochUnit> {
    let lower = column.to_ascii_lowercase();
    let suffixes =
        [("_ms", EpochUnit::Millis), ("_us", EpochUnit::Micros), ("_ns", EpochUnit::Nanos), ("_s", EpochUnit::Seconds)];
    let (stem, unit) = suffixes
        .iter()
        .find(|(s, _)| lower.len() > s.len() && lower.ends_with(s))
        .map(|(s, u)| (&lower[..lower.len() - s.len()], Some(*u)))
        .unwrap_or((lower.as_str(), None));
    if !is_time_name(stem) {
        return None;
    }
    let v = value as i128;
    let within = |u: EpochUnit, (lo, hi): (i128, i128)| (lo * u.per_second()..hi * u.per_second()).contains(&v);
    match unit {
        Some(u) => within(u, WIDE_RANGE_S).then_some(u),
        None => EpochUnit::ALL.into_iter().find(|&u| within(u, NARROW_RANGE_S)),
    }
}

/// The type of an integer in column `column` (epoch rule, then `int` or `bigint`).
fn integer_type(column: Option<&str>, v: i64) -> DataType {
    if let Some(unit) = column.and_then(|c| epoch_unit(c, v)) {
        DataType::Timestamp(TsRepr::Epoch(unit))
    } else if i32::try_from(v).is_ok() {
        DataType::Int
    } else {
        DataType::BigInt
    }
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn num(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |n, d| n.saturating_mul(10).saturating_add(u32::from(d - b'0')))
}

/// `YYYY-MM-DD`, a real calendar date (years 0001–9999).
fn is_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(&b[..4]) || !digits(&b[5..7]) || !digits(&b[8..]) {
        return false;
    }
    let (y, m, d) = (num(&b[..4]), num(&b[5..7]), num(&b[8..]));
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// A date, `T` or space, `HH:MM:SS`, optional fraction of 1–9 digits, optional zone.
fn is_timestamp(b: &[u8]) -> bool {
    if b.len() < 19 || !is_date(&b[..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return false;
    }
    let t = &b[11..19];
    if t[2] != b':' || t[5] != b':' || !digits(&t[..2]) || !digits(&t[3..5]) || !digits(&t[6..]) {
        return false;
    }
    if num(&t[..2]) > 23 || num(&t[3..5]) > 59 || num(&t[6..]) > 59 {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [] | [b'Z'] | [b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            let hm = [*h1, *h2, *m1, *m2];
            digits(&hm) && num(&hm[..2]) <= 23 && num(&hm[2..]) <= 59
        }
        _ => false,
    }
}

/// The type of a JSON string: `timestamp`, `date` or `string`.
pub fn json_string_type(s: &str) -> DataType {
    let b = s.as_bytes();
    if is_timestamp(b) {
        DataType::Timestamp(TsRepr::Text)
    } else if is_date(b) {
        DataType::Date
    } else {
        DataType::String
    }
}

/// A decimal number with a `.` or an exponent (integers are handled before).
fn is_float(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"+").or_else(|| b.strip_prefix(b"-")).unwrap_or(b);
    let (mantissa, exponent) = match b.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mantissa_ok = match mantissa.iter().position(|&c| c == b'.') {
        Some(i) => {
            let (int, frac) = (&mantissa[..i], &mantissa[i + 1..]);
            (digits(int) || int.is_empty()) && (digits(frac) || frac.is_empty()) && !(int.is_empty() && frac.is_empty())
        }
        None => digits(mantissa),
    };
    let exponent_ok = match exponent {
        None => mantissa.contains(&b'.'),
        Some(e) => digits(e.strip_prefix(b"+").or_else(|| e.strip_prefix(b"-")).unwrap_or(e)),
    };
    mantissa_ok && exponent_ok
}

/// The type of a CSV cell (or any text that may hold a number), in column `column` (for the
/// epoch rule; `None` skips it). See the module documentation for the table.
pub fn infer_text(cell: &str, column: Option<&str>) -> DataType {
    let s = cell.trim();
    let b = s.as_bytes();
    if s.is_empty() {
        return DataType::Null;
    }
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return DataType::Boolean;
    }
    let unsigned = b.strip_prefix(b"+").or_else(|| b.strip_prefix(b"-")).unwrap_or(b);
    if digits(unsigned) {
        if unsigned.len() > 1 && unsigned[0] == b'0' {
            return DataType::String;
        }
        return match s.parse::<i64>() {
            Ok(v) => integer_type(column, v),
            Err(_) => DataType::Double,
        };
    }
    if is_float(b) {
        return DataType::Double;
    }
    json_string_type(s)
}

// ---------------------------------------------------------------------------------------------
// Merging
// ---------------------------------------------------------------------------------------------

fn is_integral(t: &DataType) -> bool {
    matches!(t, DataType::Int | DataType::BigInt | DataType::Timestamp(TsRepr::Epoch(_)))
}

/// The least type holding both `a` and `b` (the widening table in the module documentation).
pub fn merge(a: &DataType, b: &DataType) -> DataType {
    use DataType as T;
    match (a, b) {
        _ if a == b => a.clone(),
        (T::Null, t) | (t, T::Null) => t.clone(),
        (x, y) if is_integral(x) && is_integral(y) => T::BigInt,
        (x, y) if (is_integral(x) || x.is_numeric()) && (is_integral(y) || y.is_numeric()) => T::Double,
        (T::Struct(fa), T::Struct(fb)) => T::Struct(merge_fields(fa, fb)),
        (T::Array(ea), T::Array(eb)) => T::Array(Box::new(merge(ea, eb))),
        (T::Map(ka, va), T::Map(kb, vb)) => T::Map(Box::new(merge(ka, kb)), Box::new(merge(va, vb))),
        _ => T::String,
    }
}

/// Merges two field lists by name: `a`'s order, then `b`'s new fields; a field on one side
/// only is nullable.
fn merge_fields(a: &[Field], b: &[Field]) -> Vec<Field> {
    let index: HashMap<&str, usize> = b.iter().enumerate().map(|(i, f)| (f.name.as_str(), i)).collect();
    let mut used = vec![false; b.len()];
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    for fa in a {
        match index.get(fa.name.as_str()) {
            Some(&i) => {
                used[i] = true;
                let fb = &b[i];
                out.push(Field::new(&fa.name, merge(&fa.data_type, &fb.data_type), fa.nullable || fb.nullable));
            }
            None => out.push(Field::new(&fa.name, fa.data_type.clone(), true)),
        }
    }
    for (fb, used) in b.iter().zip(used) {
        if !used {
            out.push(Field::new(&fb.name, fb.data_type.clone(), true));
        }
    }
    out
}

/// Merges two schemas (records of a file, or files of a table), bounded by `max_columns`.
pub fn merge_schemas(a: &Schema, b: &Schema, limits: &Limits) -> Result<Schema, CatalogError> {
    let merged = Schema::new(merge_fields(&a.columns, &b.columns));
    check_columns(&merged, limits)?;
    Ok(merged)
}

fn check_columns(s: &Schema, limits: &Limits) -> Result<(), CatalogError> {
    let n = s.field_count();
    if n > limits.max_columns {
        return Err(CatalogError::limit(
            format!("{n} columns (nested fields included)"),
            limits.max_columns,
            "max_columns",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// Shared state of one record's deserialization: the limits, and the limit error that stopped
/// it (so the caller reports it rather than serde_json's generic message).
struct Ctx<'l> {
    limits: &'l Limits,
    hit: RefCell<Option<CatalogError>>,
}

/// Deserializes one JSON value straight into its type (no `serde_json::Value` in between, so
/// field order is the file's and nesting is checked as it is read).
#[derive(Clone, Copy)]
struct TypeSeed<'c, 'n> {
    ctx: &'c Ctx<'c>,
    /// The field this value belongs to (for the epoch rule).
    name: Option<&'n str>,
    /// 0 for the record itself, 1 for its columns' values, …
    level: usize,
}

impl TypeSeed<'_, '_> {
    fn fail<E: de::Error>(&self, e: CatalogError) -> E {
        let msg = e.to_string();
        self.ctx.hit.borrow_mut().get_or_insert(e);
        E::custom(msg)
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        let max = self.ctx.limits.max_depth;
        if self.level > max {
            return Err(self.fail(CatalogError::limit("JSON nesting", max, "max_depth")));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for TypeSeed<'_, '_> {
    type Value = DataType;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<DataType, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TypeSeed<'_, '_> {
    type Value = DataType;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<DataType, E> {
        Ok(DataType::Boolean)
    }

    fn visit_i64<E>(self, v: i64) -> Result<DataType, E> {
        Ok(integer_type(self.name, v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<DataType, E> {
        Ok(i64::try_from(v).map(|v| integer_type(self.name, v)).unwrap_or(DataType::Double))
    }

    fn visit_f64<E>(self, _: f64) -> Result<DataType, E> {
        Ok(DataType::Double)
    }

    fn visit_str<E>(self, v: &str) -> Result<DataType, E> {
        Ok(json_string_type(v))
    }

    fn visit_unit<E>(self) -> Result<DataType, E> {
        Ok(DataType::Null)
    }

    fn visit_none<E>(self) -> Result<DataType, E> {
        Ok(DataType::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DataType, A::Error> {
        self.enter::<A::Error>()?;
        let child = TypeSeed { ctx: self.ctx, name: None, level: self.level + 1 };
        let mut element = DataType::Null;
        while let Some(t) = seq.next_element_seed(child)? {
            element = merge(&element, &t);
            let n = element.nested_field_count();
            if n > self.ctx.limits.max_columns {
                let max = self.ctx.limits.max_columns;
                return Err(self.fail(CatalogError::limit(
                    format!("{n} fields in an array's elements"),
                    max,
                    "max_columns",
                )));
            }
        }
        Ok(DataType::Array(Box::new(element)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataType, A::Error> {
        self.enter::<A::Error>()?;
        let mut fields: Vec<Field> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let t = map.next_value_seed(TypeSeed { ctx: self.ctx, name: Some(&key), level: self.level + 1 })?;
            if let Some(&i) = index.get(&key) {
                // A repeated key: both values count.
                let f = &mut fields[i];
                f.nullable |= t == DataType::Null;
                f.data_type = merge(&f.data_type, &t);
                continue;
            }
            if fields.len() >= self.ctx.limits.max_columns {
                let max = self.ctx.limits.max_columns;
                return Err(self.fail(CatalogError::limit("the keys of one JSON object", max, "max_columns")));
            }
            index.insert(key.clone(), fields.len());
            fields.push(Field::new(key, t.clone(), t == DataType::Null));
        }
        Ok(DataType::Struct(fields))
    }
}

/// The type of one JSON record (an object) as its fields.
fn json_record(bytes: &[u8], limits: &Limits) -> Result<Vec<Field>, CatalogError> {
    let ctx = Ctx { limits, hit: RefCell::new(None) };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = TypeSeed { ctx: &ctx, name: None, level: 0 };
    match seed.deserialize(&mut de) {
        Ok(DataType::Struct(fields)) => Ok(fields),
        Ok(other) => Err(CatalogError::Json(format!("a record is a {other}, not an object"))),
        Err(e) => Err(ctx.hit.take().unwrap_or_else(|| CatalogError::Json(e.to_string()))),
    }
}

/// Infers the schema of a JSON sample (any [`crate::JsonLayout`]): the merge of its records.
pub fn infer_json(sample: &[u8], truncated: bool, limits: &Limits) -> Result<Inferred, CatalogError> {
    let scan = scan_json(sample, truncated, limits.max_records).map_err(CatalogError::UnknownFormat)?;
    let mut schema: Option<Schema> = None;
    for range in &scan.records {
        let record = Schema::new(json_record(sample.get(range.clone()).unwrap_or_default(), limits)?);
        schema = Some(match schema {
            None => {
                check_columns(&record, limits)?;
                record
            }
            Some(s) => merge_schemas(&s, &record, limits)?,
        });
    }
    let schema = schema.unwrap_or_default();
    if schema.columns.is_empty() {
        return Err(CatalogError::NoColumns("every JSON record is an empty object".into()));
    }
    Ok(Inferred { schema, records: scan.records.len() })
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// Infers the schema of a CSV sample: names from the header (else `col0`, `col1`, …), each
/// column the merge of its cells' types; an empty or missing cell makes it nullable.
pub fn infer_csv(
    sample: &[u8],
    truncated: bool,
    dialect: CsvDialect,
    limits: &Limits,
) -> Result<Inferred, CatalogError> {
    let max_rows = limits.max_records + usize::from(dialect.header);
    let rows =
        csv_rows(sample, dialect.delimiter, truncated, max_rows).map_err(|e| CatalogError::Csv(e.to_string()))?;
    let (header, data) = match (dialect.header, rows.split_first()) {
        (true, Some((h, d))) => (Some(h), d),
        _ => (None, &rows[..]),
    };
    let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if width > limits.max_columns {
        return Err(CatalogError::limit(format!("{width} CSV columns"), limits.max_columns, "max_columns"));
    }
    let mut names: Vec<String> = Vec::with_capacity(width);
    for j in 0..width {
        let given = header.and_then(|h| h.get(j)).map(|f| cell(f).trim()).filter(|s| !s.is_empty());
        let base = given.map(str::to_string).unwrap_or_else(|| format!("col{j}"));
        let mut name = base.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        names.push(name);
    }
    let mut types = vec![DataType::Null; width];
    let mut nullable = vec![false; width];
    for row in data {
        for j in 0..width {
            let t = row.get(j).map(|f| infer_text(cell(f), Some(&names[j]))).unwrap_or(DataType::Null);
            nullable[j] |= t == DataType::Null;
            types[j] = merge(&types[j], &t);
        }
    }
    if width == 0 {
        return Err(CatalogError::NoColumns("no CSV rows".into()));
    }
    let columns = names.into_iter().zip(types).zip(nullable).map(|((n, t), null)| Field::new(n, t, null)).collect();
    Ok(Inferred { schema: Schema::new(columns), records: data.len() })
}

// ---------------------------------------------------------------------------------------------
// Parquet
// ---------------------------------------------------------------------------------------------

/// The schema in a Parquet footer. `tail` is the end of the file: at least the 8-byte footer
/// tail; if the metadata does not fit in it, the error says how many bytes to pass.
pub fn parquet_schema(tail: &[u8], limits: &Limits) -> Result<Schema, CatalogError> {
    use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
    let Some(last8) = tail.len().checked_sub(8).and_then(|at| <[u8; 8]>::try_from(&tail[at..]).ok()) else {
        return Err(CatalogError::Parquet("shorter than the 8-byte footer".into()));
    };
    let footer = FooterTail::try_new(&last8).map_err(|e| CatalogError::Parquet(e.to_string()))?;
    if footer.is_encrypted_footer() {
        return Err(CatalogError::UnknownFormat("Parquet with an encrypted footer (PARE) is not supported".into()));
    }
    let len = footer.metadata_length();
    if len > limits.max_footer_bytes {
        return Err(CatalogError::limit(
            format!("a Parquet footer of {len} bytes"),
            limits.max_footer_bytes,
            "max_footer_bytes",
        ));
    }
    let Some(start) = tail.len().checked_sub(len + 8) else {
        return Err(CatalogError::NeedTail { bytes: len as u64 + 8 });
    };
    let metadata = &tail[start..tail.len() - 8];
    // The parquet crate is not fuzzed by us: a panic in its decoder is one more bad file.
    let decoded = std::panic::catch_unwind(|| {
        let md = ParquetMetaDataReader::decode_metadata(metadata)?;
        let fm = md.file_metadata();
        parquet::arrow::parquet_to_arrow_schema(fm.schema_descr(), fm.key_value_metadata())
    });
    let arrow = match decoded {
        Ok(Ok(schema)) => schema,
        Ok(Err(e)) => return Err(CatalogError::Parquet(e.to_string())),
        Err(_) => return Err(CatalogError::Parquet("the footer decoder panicked".into())),
    };
    let mut columns = Vec::with_capacity(arrow.fields().len());
    for f in arrow.fields() {
        columns.push(Field::new(f.name(), from_arrow(f.data_type(), 1, limits)?, f.is_nullable()));
    }
    let schema = Schema::new(columns);
    check_columns(&schema, limits)?;
    Ok(schema)
}

fn from_arrow(t: &arrow_schema::DataType, level: usize, limits: &Limits) -> Result<DataType, CatalogError> {
    use arrow_schema::DataType as A;
    let nested = |level: usize| {
        if level > limits.max_depth {
            Err(CatalogError::limit("Parquet nesting", limits.max_depth, "max_depth"))
        } else {
            Ok(level + 1)
        }
    };
    Ok(match t {
        A::Null => DataType::Null,
        A::Boolean => DataType::Boolean,
        A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16 => DataType::Int,
        A::Int64 | A::UInt32 | A::UInt64 => DataType::BigInt,
        A::Float16 | A::Float32 | A::Float64 => DataType::Double,
        A::Decimal32(p, s) | A::Decimal64(p, s) | A::Decimal128(p, s) | A::Decimal256(p, s) => {
            DataType::Decimal { precision: *p, scale: *s }
        }
        A::Utf8 | A::LargeUtf8 | A::Utf8View => DataType::String,
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => DataType::Binary,
        A::Date32 | A::Date64 => DataType::Date,
        A::Timestamp(_, _) => DataType::Timestamp(TsRepr::Native),
        A::List(f) | A::LargeList(f) | A::ListView(f) | A::LargeListView(f) | A::FixedSizeList(f, _) => {
            DataType::Array(Box::new(from_arrow(f.data_type(), nested(level)?, limits)?))
        }
        A::Struct(fields) => {
            let next = nested(level)?;
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                out.push(Field::new(f.name(), from_arrow(f.data_type(), next, limits)?, f.is_nullable()));
            }
            DataType::Struct(out)
        }
        A::Map(entries, _) => {
            let next = nested(level)?;
            match entries.data_type() {
                A::Struct(kv) if kv.len() == 2 => DataType::Map(
                    Box::new(from_arrow(kv[0].data_type(), next, limits)?),
                    Box::new(from_arrow(kv[1].data_type(), next, limits)?),
                ),
                _ => DataType::String,
            }
        }
        A::Dictionary(_, values) => from_arrow(values, level, limits)?,
        A::RunEndEncoded(_, values) => from_arrow(values.data_type(), level, limits)?,
        A::Time32(_) | A::Time64(_) | A::Duration(_) | A::Interval(_) | A::Union(_, _) => DataType::String,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::{FileSample, sniff};

    fn json(text: &str) -> Schema {
        infer_json(text.as_bytes(), false, &Limits::default()).unwrap().schema
    }

    fn col(s: &Schema, name: &str) -> String {
        let f = s.column(name).unwrap_or_else(|| panic!("no column {name} in\n{s}"));
        format!("{}{}", f.data_type, if f.nullable { "?" } else { "" })
    }

    #[test]
    fn json_scalars() {
        let s = json(
            r#"{"i":1,"big":3000000000,"neg":-2147483649,"f":1.5,"fi":2.0,"e":1e3,"b":true,"s":"x","n":null,"huge":18446744073709551615}"#,
        );
        assert_eq!(col(&s, "i"), "int");
        assert_eq!(col(&s, "big"), "bigint");
        assert_eq!(col(&s, "neg"), "bigint");
        assert_eq!(col(&s, "f"), "double");
        assert_eq!(col(&s, "fi"), "double", "2.0 is written as a float");
        assert_eq!(col(&s, "e"), "double");
        assert_eq!(col(&s, "b"), "boolean");
        assert_eq!(col(&s, "s"), "string");
        assert_eq!(col(&s, "n"), "null?");
        assert_eq!(col(&s, "huge"), "double", "beyond i64");
        assert_eq!(
            s.names().collect::<Vec<_>>(),
            ["i", "big", "neg", "f", "fi", "e", "b", "s", "n", "huge"],
            "file order"
        );
    }

    #[test]
    fn json_strings_are_never_numbers_but_may_be_dates_and_timestamps() {
        let s = json(
            r#"{"num":"42","bool":"true","d":"2024-02-29","bad_d":"2023-02-29","t1":"2024-05-01T10:00:00Z","t2":"2024-05-01 10:00:00.123","t3":"2024-05-01T10:00:00.123456789+02:00","t4":"2024-05-01T10:00:00-0500","no_sec":"2024-05-01T10:00","bad_h":"2024-05-01T24:00:00"}"#,
        );
        assert_eq!(col(&s, "num"), "string");
        assert_eq!(col(&s, "bool"), "string");
        assert_eq!(col(&s, "d"), "date");
        assert_eq!(col(&s, "bad_d"), "string", "2023 is not a leap year");
        for t in ["t1", "t2", "t3", "t4"] {
            assert_eq!(col(&s, t), "timestamp", "{t}");
        }
        assert_eq!(col(&s, "no_sec"), "string", "seconds are required");
        assert_eq!(col(&s, "bad_h"), "string");
    }

    #[test]
    fn nested_structs_and_arrays() {
        let s = json(
            r#"{"q":{"bid":1.5,"sizes":[1,2,3]},"tags":["a","b"],"legs":[{"px":1},{"px":2.5,"qty":3}],"empty":[]}"#,
        );
        assert_eq!(col(&s, "q"), "struct<bid:double,sizes:array<int>>");
        assert_eq!(col(&s, "tags"), "array<string>");
        assert_eq!(col(&s, "legs"), "array<struct<px:double,qty:int>>", "elements merge; qty missing in one");
        assert_eq!(col(&s, "empty"), "array<null>");
        let legs = &s.column("legs").unwrap().data_type;
        let DataType::Array(e) = legs else { panic!() };
        let DataType::Struct(f) = &**e else { panic!() };
        assert!(f[1].nullable, "qty is missing from the first element");
        assert_eq!(s.clone().finished().column("empty").unwrap().data_type.glue_type(), "array<string>");
    }

    #[test]
    fn widening_int_bigint_double() {
        assert_eq!(merge(&DataType::Int, &DataType::BigInt), DataType::BigInt);
        assert_eq!(merge(&DataType::BigInt, &DataType::Int), DataType::BigInt);
        assert_eq!(merge(&DataType::Int, &DataType::Double), DataType::Double);
        assert_eq!(merge(&DataType::BigInt, &DataType::Double), DataType::Double);
        let s = json("{\"v\":1}\n{\"v\":3000000000}\n");
        assert_eq!(col(&s, "v"), "bigint");
        let s = json("{\"v\":1}\n{\"v\":3000000000}\n{\"v\":0.5}\n");
        assert_eq!(col(&s, "v"), "double");
    }

    #[test]
    fn conflicting_kinds_become_string() {
        for (a, b) in [
            (DataType::Boolean, DataType::Int),
            (DataType::Date, DataType::Timestamp(TsRepr::Text)),
            (DataType::String, DataType::Double),
            (DataType::Struct(vec![]), DataType::Int),
            (DataType::Array(Box::new(DataType::Int)), DataType::Int),
            (DataType::Timestamp(TsRepr::Text), DataType::Timestamp(TsRepr::Epoch(EpochUnit::Seconds))),
            (DataType::Binary, DataType::String),
        ] {
            assert_eq!(merge(&a, &b), DataType::String, "{a} ⊔ {b}");
            assert_eq!(merge(&b, &a), DataType::String, "{b} ⊔ {a}");
        }
        let s = json("{\"v\":1,\"w\":{\"a\":1}}\n{\"v\":\"x\",\"w\":[1]}\n");
        assert_eq!(col(&s, "v"), "string");
        assert_eq!(col(&s, "w"), "string");
    }

    #[test]
    fn missing_or_null_makes_nullable_and_null_gives_way() {
        let s = json("{\"a\":1,\"b\":null}\n{\"a\":2,\"b\":2.5,\"c\":true}\n{\"b\":1}\n");
        assert_eq!(col(&s, "a"), "int?", "missing in record 3");
        assert_eq!(col(&s, "b"), "double?", "null in record 1");
        assert_eq!(col(&s, "c"), "boolean?", "missing in records 1 and 3");
        let only_null = json("{\"a\":1,\"z\":null}\n");
        assert_eq!(col(&only_null, "z"), "null?");
        assert_eq!(col(&only_null.finished(), "z"), "string?", "a table finishes unknown as string");
    }

    #[test]
    fn structs_merge_recursively_and_arrays_merge_elements() {
        let s = json(
            "{\"q\":{\"a\":1,\"b\":{\"x\":1}},\"l\":[1]}\n{\"q\":{\"b\":{\"x\":2.5,\"y\":\"s\"},\"c\":[]},\"l\":[3000000000]}\n",
        );
        assert_eq!(col(&s, "q"), "struct<a:int,b:struct<x:double,y:string>,c:array<null>>");
        assert_eq!(col(&s, "l"), "array<bigint>");
        let a = DataType::Map(Box::new(DataType::String), Box::new(DataType::Int));
        let b = DataType::Map(Box::new(DataType::String), Box::new(DataType::Double));
        assert_eq!(merge(&a, &b).glue_type(), "map<string,double>");
    }

    #[test]
    fn merge_is_commutative_and_associative() {
        let types = [
            DataType::Null,
            DataType::Boolean,
            DataType::Int,
            DataType::BigInt,
            DataType::Double,
            DataType::Decimal { precision: 10, scale: 2 },
            DataType::String,
            DataType::Date,
            DataType::Timestamp(TsRepr::Text),
            DataType::Timestamp(TsRepr::Epoch(EpochUnit::Millis)),
            DataType::Timestamp(TsRepr::Epoch(EpochUnit::Seconds)),
            DataType::Array(Box::new(DataType::Int)),
        ];
        for a in &types {
            for b in &types {
                assert_eq!(merge(a, b), merge(b, a), "{a} ⊔ {b}");
                for c in &types {
                    assert_eq!(merge(&merge(a, b), c), merge(a, &merge(b, c)), "({a} ⊔ {b}) ⊔ {c}");
                }
            }
        }
    }

    #[test]
    fn decimals_widen_to_double() {
        let d = DataType::Decimal { precision: 10, scale: 2 };
        assert_eq!(merge(&d, &d), d);
        assert_eq!(merge(&d, &DataType::Decimal { precision: 12, scale: 2 }), DataType::Double);
        assert_eq!(merge(&d, &DataType::Int), DataType::Double);
    }

    #[test]
    fn epoch_rule_by_name_and_range() {
        let s = 1_714_557_600i64; // 2024-05-01T10:00:00Z
        // Time names without a unit: the magnitude picks the unit, 2000–2100 only.
        assert_eq!(epoch_unit("ts", s), Some(EpochUnit::Seconds));
        assert_eq!(epoch_unit("event_ts", s * 1_000), Some(EpochUnit::Millis));
        assert_eq!(epoch_unit("trade_time", s * 1_000_000), Some(EpochUnit::Micros));
        assert_eq!(epoch_unit("EventTimestamp", s * 1_000_000_000), Some(EpochUnit::Nanos));
        assert_eq!(epoch_unit("created_at", s), Some(EpochUnit::Seconds));
        assert_eq!(epoch_unit("datetime", s), Some(EpochUnit::Seconds));
        assert_eq!(epoch_unit("ts", 0), None, "1970 is not plausible without a unit");
        assert_eq!(epoch_unit("ts", 5_000_000_000), None, "between the seconds and milliseconds ranges");
        // A unit suffix names the unit and widens the range to 1900–2200.
        assert_eq!(epoch_unit("ts_us", -126_316_800_000_000), Some(EpochUnit::Micros), "a 1966 bar");
        assert_eq!(epoch_unit("event_time_ms", s * 1_000), Some(EpochUnit::Millis));
        assert_eq!(epoch_unit("time_s", s), Some(EpochUnit::Seconds));
        assert_eq!(epoch_unit("ts_ms", s), Some(EpochUnit::Millis), "seconds read as ms: still 1970, in range");
        assert_eq!(epoch_unit("ts_ns", i64::MAX), None, "2262 is beyond 2200");
        // Not time names.
        for name in ["volume", "latency_ms", "runtime", "status", "at", "_at", "seq_us", "timestamps"] {
            assert_eq!(epoch_unit(name, s), None, "{name}");
        }
    }

    #[test]
    fn epoch_columns_in_json_and_their_merges() {
        let s = json(&format!(
            "{{\"ts_us\":{},\"created_at\":1714557600,\"latency_ms\":1714557600000,\"ts\":1.7e9}}",
            1_714_557_600_000_000i64
        ));
        assert_eq!(col(&s, "ts_us"), "timestamp(epoch_us)");
        assert_eq!(col(&s, "created_at"), "timestamp(epoch_s)");
        assert_eq!(col(&s, "latency_ms"), "bigint", "latency is not a time name");
        assert_eq!(col(&s, "ts"), "double", "floats are never epochs");
        assert_eq!(s.column("ts_us").unwrap().data_type.glue_type(), "timestamp");
        // One implausible value: the column stays a number.
        let s = json("{\"created_at\":1714557600}\n{\"created_at\":0}\n");
        assert_eq!(col(&s, "created_at"), "bigint");
        // Two units in one column: a number.
        let s = json("{\"ts\":1714557600}\n{\"ts\":1714557600000}\n");
        assert_eq!(col(&s, "ts"), "bigint");
        // With a double: double. With text timestamps: string.
        assert_eq!(merge(&DataType::Timestamp(TsRepr::Epoch(EpochUnit::Seconds)), &DataType::Double), DataType::Double);
        // Nulls keep it a timestamp.
        let s = json("{\"ts\":1714557600}\n{\"ts\":null}\n");
        assert_eq!(col(&s, "ts"), "timestamp(epoch_s)?");
    }

    #[test]
    fn ticklake_tick_messages() {
        let s = json(concat!(
            "{\"v\":1,\"kind\":\"trade\",\"symbol\":\"AAPL\",\"ts_us\":1764000000000000,\"seq\":42,\"price\":189.23,\"size\":100}\n",
            "{\"v\":1,\"kind\":\"quote\",\"symbol\":\"AAPL\",\"ts_us\":1764000000000150,\"seq\":43,\"bid\":189.22,\"bid_size\":300,\"ask\":189.24,\"ask_size\":200}\n",
            "{\"v\":1,\"kind\":\"bar\",\"symbol\":\"NYA\",\"ts_us\":-126316800000000,\"seq\":0,\"open\":528.69,\"high\":528.69,\"low\":528.69,\"close\":528.69,\"volume\":0.0}\n",
        ));
        assert_eq!(col(&s, "ts_us"), "timestamp(epoch_us)");
        assert_eq!(col(&s, "seq"), "int");
        assert_eq!(col(&s, "price"), "double?");
        assert_eq!(col(&s, "volume"), "double?");
    }

    #[test]
    fn csv_cells() {
        let t = |c: &str| infer_text(c, None).to_string();
        assert_eq!(t(""), "null");
        assert_eq!(t("  "), "null");
        assert_eq!(t("TRUE"), "boolean");
        assert_eq!(t("false"), "boolean");
        assert_eq!(t("yes"), "string");
        assert_eq!(t("42"), "int");
        assert_eq!(t(" -7 "), "int", "spaces ignored");
        assert_eq!(t("+7"), "int");
        assert_eq!(t("0"), "int");
        assert_eq!(t("3000000000"), "bigint");
        assert_eq!(t("99999999999999999999"), "double", "beyond i64");
        assert_eq!(t("007"), "string", "leading zero: an identifier");
        assert_eq!(t("1.5"), "double");
        assert_eq!(t(".5"), "double");
        assert_eq!(t("1."), "double");
        assert_eq!(t("-1.5e-3"), "double");
        assert_eq!(t("2E10"), "double");
        assert_eq!(t("0.25"), "double");
        assert_eq!(t("."), "string");
        assert_eq!(t("1e"), "string");
        assert_eq!(t("NaN"), "string");
        assert_eq!(t("inf"), "string");
        assert_eq!(t("1,5"), "string");
        assert_eq!(t("2024-05-01"), "date");
        assert_eq!(t("2024-05-01 10:00:00"), "timestamp");
        assert_eq!(t("2024-13-01"), "string");
        assert_eq!(infer_text("1714557600", Some("updated_at")).to_string(), "timestamp(epoch_s)");
    }

    fn csv(text: &str) -> Inferred {
        let s = sniff(&FileSample::whole("t.csv", text.as_bytes()), &Limits::default());
        infer(&s, &Limits::default()).unwrap()
    }

    #[test]
    fn csv_schema_with_and_without_header() {
        let i = csv("sym,px,qty,day,ok\nAAPL,189.5,100,2024-05-01,true\nMSFT,,7,2024-05-02,false\n");
        assert_eq!(i.records, 2);
        let s = &i.schema;
        assert_eq!(col(s, "sym"), "string");
        assert_eq!(col(s, "px"), "double?", "an empty cell");
        assert_eq!(col(s, "qty"), "int");
        assert_eq!(col(s, "day"), "date");
        assert_eq!(col(s, "ok"), "boolean");
        let i = csv("1,2.5\n3,4\n");
        assert_eq!(i.records, 2);
        assert_eq!(i.schema.names().collect::<Vec<_>>(), ["col0", "col1"]);
        assert_eq!(col(&i.schema, "col1"), "double", "2.5 ⊔ 4");
    }

    #[test]
    fn csv_repeated_or_empty_header_names_are_made_unique() {
        let limits = Limits { csv_header: crate::HeaderRule::Always, ..Limits::default() };
        let text = b"a,a,,b\n1,2,3,4\n5,6,7,8\n";
        let s = sniff(&FileSample::whole("t.csv", text), &limits);
        let i = infer(&s, &limits).unwrap();
        assert_eq!(i.schema.names().collect::<Vec<_>>(), ["a", "a_2", "col2", "b"]);
    }

    #[test]
    fn limits_are_errors_that_name_the_option() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(20), "]".repeat(20));
        let e = infer_json(deep.as_bytes(), false, &Limits::default()).unwrap_err();
        assert!(matches!(e, CatalogError::Limit { option: "max_depth", .. }), "{e}");
        // serde_json's own limit (128) is beyond ours (≤ 100): ours speaks first.
        let deeper = format!("{{\"a\":{}1{}}}", "[".repeat(120), "]".repeat(120));
        let e = infer_json(deeper.as_bytes(), false, &Limits { max_depth: 100, ..Limits::default() }).unwrap_err();
        assert!(matches!(e, CatalogError::Limit { option: "max_depth", .. }), "{e}");
        let just_enough = format!("{{\"a\":{}1{}}}", "[".repeat(16), "]".repeat(16));
        infer_json(just_enough.as_bytes(), false, &Limits::default()).unwrap();

        let wide: String = (0..20).map(|i| format!("{{\"c{i}\":1}}\n")).collect();
        let limits = Limits { max_columns: 10, ..Limits::default() };
        let e = infer_json(wide.as_bytes(), false, &limits).unwrap_err();
        assert!(matches!(e, CatalogError::Limit { option: "max_columns", .. }), "{e}");
        let one_wide = format!("{{{}}}", (0..20).map(|i| format!("\"c{i}\":1")).collect::<Vec<_>>().join(","));
        let e = infer_json(one_wide.as_bytes(), false, &limits).unwrap_err();
        assert!(matches!(e, CatalogError::Limit { option: "max_columns", .. }), "{e}");
        let arr = format!("{{\"a\":[{}]}}", (0..20).map(|i| format!("{{\"k{i}\":1}}")).collect::<Vec<_>>().join(","));
        let e = infer_json(arr.as_bytes(), false, &limits).unwrap_err();
        assert!(matches!(e, CatalogError::Limit { option: "max_columns", .. }), "{e}");
        let e = csv_wide(11, &limits);
        assert!(matches!(e, CatalogError::Limit { option: "max_columns", .. }), "{e}");
    }

    fn csv_wide(n: usize, limits: &Limits) -> CatalogError {
        let row = (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let text = format!("{row}\n{row}\n");
        infer_csv(text.as_bytes(), false, CsvDialect { delimiter: b',', header: false }, limits).unwrap_err()
    }

    #[test]
    fn records_are_bounded_by_max_records() {
        let lines: String = (0..100).map(|i| format!("{{\"i\":{i}}}\n")).collect();
        let i = infer_json(lines.as_bytes(), false, &Limits { max_records: 10, ..Limits::default() }).unwrap();
        assert_eq!(i.records, 10);
        let rows: String = std::iter::once("a,b\n".to_string()).chain((0..100).map(|i| format!("x,{i}\n"))).collect();
        let limits = Limits { max_records: 10, ..Limits::default() };
        let i = infer_csv(rows.as_bytes(), false, CsvDialect { delimiter: b',', header: true }, &limits).unwrap();
        assert_eq!(i.records, 10);
    }

    #[test]
    fn repeated_keys_and_empty_objects() {
        let s = json("{\"a\":1,\"a\":\"x\"}");
        assert_eq!(col(&s, "a"), "string");
        let e = infer_json(b"{}\n{}\n", false, &Limits::default()).unwrap_err();
        assert!(matches!(e, CatalogError::NoColumns(_)), "{e}");
    }

    #[test]
    fn unknown_formats_are_errors_not_schemas() {
        let s = sniff(&FileSample::whole("x.txt", b"just words"), &Limits::default());
        assert!(matches!(infer(&s, &Limits::default()), Err(CatalogError::UnknownFormat(_))));
    }

    #[test]
    fn parquet_footer_errors() {
        let e = parquet_schema(b"PAR1", &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("shorter than"), "{e}");
        let e = parquet_schema(b"xxxxxxxxxxxx", &Limits::default()).unwrap_err();
        assert!(matches!(e, CatalogError::Parquet(_)), "{e}");
        // A footer claiming 100 bytes of metadata with 4 given: ask for more.
        let mut tail = vec![0u8; 4];
        tail.extend_from_slice(&100u32.to_le_bytes());
        tail.extend_from_slice(b"PAR1");
        assert!(matches!(parquet_schema(&tail, &Limits::default()), Err(CatalogError::NeedTail { bytes: 108 })));
        let limits = Limits { max_footer_bytes: 50, ..Limits::default() };
        assert!(matches!(parquet_schema(&tail, &limits), Err(CatalogError::Limit { option: "max_footer_bytes", .. })));
        // Garbage metadata of the right length: an error, not a panic.
        let mut garbage = vec![0xffu8; 100];
        garbage.extend_from_slice(&100u32.to_le_bytes());
        garbage.extend_from_slice(b"PAR1");
        assert!(matches!(parquet_schema(&garbage, &Limits::default()), Err(CatalogError::Parquet(_))));
    }

    #[test]
    fn arrow_types_map_to_glue_names() {
        use arrow_schema::{DataType as A, Field as AF, Fields, TimeUnit};
        use std::sync::Arc;
        let l = Limits::default();
        let m = |t: A| from_arrow(&t, 1, &l).unwrap().glue_type();
        assert_eq!(m(A::Int16), "int");
        assert_eq!(m(A::UInt32), "bigint");
        assert_eq!(m(A::Int64), "bigint");
        assert_eq!(m(A::Float32), "double");
        assert_eq!(m(A::Decimal128(18, 4)), "decimal(18,4)");
        assert_eq!(m(A::LargeUtf8), "string");
        assert_eq!(m(A::Binary), "binary");
        assert_eq!(m(A::Date32), "date");
        assert_eq!(m(A::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))), "timestamp");
        assert_eq!(m(A::Dictionary(Box::new(A::Int32), Box::new(A::Utf8))), "string");
        assert_eq!(m(A::List(Arc::new(AF::new("item", A::Int32, true)))), "array<int>");
        let st = A::Struct(Fields::from(vec![AF::new("a", A::Boolean, true), AF::new("b", A::Float64, false)]));
        assert_eq!(m(st), "struct<a:boolean,b:double>");
        let entries = AF::new(
            "entries",
            A::Struct(Fields::from(vec![AF::new("key", A::Utf8, false), AF::new("value", A::Int64, true)])),
            false,
        );
        assert_eq!(m(A::Map(Arc::new(entries), false)), "map<string,bigint>");
        assert_eq!(m(A::Time64(TimeUnit::Nanosecond)), "string");
        let mut deep = A::Int32;
        for _ in 0..20 {
            deep = A::List(Arc::new(AF::new("item", deep, true)));
        }
        assert!(matches!(from_arrow(&deep, 1, &l), Err(CatalogError::Limit { option: "max_depth", .. })));
    }
}
