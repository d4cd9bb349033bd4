//! Reading one Parquet file into the loader, through the Arrow reader.
//!
//! Only the mapped columns are read (a projection), in batches of 8192 rows. Column types:
//!
//! * symbol — strings (`Utf8`, `LargeUtf8`, `Utf8View`, or a dictionary of `Utf8`) or integers;
//! * time — `Timestamp` (any unit; taken as an instant), `Date32`/`Date64` (midnight UTC),
//!   integers or floats (with an `epoch*` `timeFormat`), or strings (parsed per `timeFormat`);
//! * values — integers, floats, `Decimal128`, or strings holding numbers.
//!
//! A mapped column of another type (a list, a struct, a binary…) is a hard error naming the
//! column, its type and the file. Nulls are missing values. Bad-row reports give the 0-based
//! row index within the file.

use super::Loader;
use super::mapping::{Bound, Cell};
use crate::{FileFormat, SourceError};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::path::Path;

const BATCH_ROWS: usize = 8192;

pub(crate) fn read(path: &Path, loader: &mut Loader<'_>) -> Result<(), SourceError> {
    let perr = |e: &dyn std::fmt::Display| SourceError::Format {
        file: path.to_path_buf(),
        message: format!("not readable as Parquet: {e}"),
    };
    let file = File::open(path).map_err(|source| SourceError::Io { path: path.to_path_buf(), source })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| perr(&e))?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let plan = loader.plan;
    let bound = plan.bind(path, &names)?;

    // Check the types of the mapped columns before reading anything.
    let mut used: Vec<(usize, &'static str, Role)> =
        vec![(bound.symbol, "symbol", Role::Symbol), (bound.time, "ts_us", Role::Time)];
    for (f, col) in plan.fields.iter().zip(&bound.fields) {
        if let Some(i) = col {
            used.push((*i, f.field, Role::Value));
        }
    }
    for &(i, field, role) in &used {
        let dt = schema.field(i).data_type();
        if !supported(dt, role) {
            return Err(SourceError::ColumnType {
                file: path.to_path_buf(),
                column: names[i].clone(),
                field,
                data_type: dt.to_string(),
            });
        }
        if role == Role::Time && is_numeric(dt) && plan.time_format.epoch_unit().is_none() {
            return Err(SourceError::Format {
                file: path.to_path_buf(),
                message: format!(
                    "time column {:?} holds {dt} numbers; set mapping.timeFormat to epochSeconds, epochMillis or epochMicros",
                    names[i]
                ),
            });
        }
    }

    // Read only the mapped columns; the batches keep them in schema order, so binding the
    // projected names again gives indices into each batch.
    let mut roots: Vec<usize> = used.iter().map(|u| u.0).collect();
    roots.sort_unstable();
    roots.dedup();
    let projected: Vec<String> = roots.iter().map(|&i| names[i].clone()).collect();
    let bound: Bound = plan.bind(path, &projected)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let reader = builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(|e| perr(&e))?;

    let mut row_base: u64 = 0;
    for batch in reader {
        let batch = batch.map_err(|e| perr(&e))?;
        let cols: Vec<Column<'_>> = batch.columns().iter().map(Column::new).collect();
        for r in 0..batch.num_rows() {
            loader.row(path, FileFormat::Parquet, row_base + r as u64, &bound, |i| cols[i].cell(r))?;
        }
        row_base += batch.num_rows() as u64;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Symbol,
    Time,
    Value,
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_integer() || matches!(dt, DataType::Float32 | DataType::Float64 | DataType::Decimal128(..))
}

fn is_text(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => matches!(v.as_ref(), DataType::Utf8),
        _ => false,
    }
}

fn supported(dt: &DataType, role: Role) -> bool {
    match role {
        Role::Symbol => is_text(dt) || dt.is_integer(),
        Role::Time => {
            is_text(dt) || is_numeric(dt) || matches!(dt, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64)
        }
        Role::Value => is_text(dt) || is_numeric(dt),
    }
}

/// A typed view of one batch column, so that reading a cell is a match, not a downcast.
enum Column<'a> {
    Str(&'a arrow_array::StringArray),
    LargeStr(&'a arrow_array::LargeStringArray),
    StrView(&'a arrow_array::StringViewArray),
    /// Dictionary of `Utf8`: the normalized keys and the values.
    Dict(&'a ArrayRef, Vec<usize>, &'a arrow_array::StringArray),
    F64(&'a arrow_array::Float64Array),
    F32(&'a arrow_array::Float32Array),
    I64(&'a arrow_array::Int64Array),
    I32(&'a arrow_array::Int32Array),
    I16(&'a arrow_array::Int16Array),
    I8(&'a arrow_array::Int8Array),
    U64(&'a arrow_array::UInt64Array),
    U32(&'a arrow_array::UInt32Array),
    U16(&'a arrow_array::UInt16Array),
    U8(&'a arrow_array::UInt8Array),
    Dec(&'a arrow_array::Decimal128Array, f64),
    /// A timestamp column and its unit.
    Ts(&'a dyn Array, TsUnit),
    Date32(&'a arrow_array::Date32Array),
    Date64(&'a arrow_array::Date64Array),
    /// Anything else reads as null (the schema check refuses it before reading).
    Other,
}

#[derive(Clone, Copy)]
enum TsUnit {
    Second,
    Milli,
    Micro,
    Nano,
}

impl<'a> Column<'a> {
    fn new(a: &'a ArrayRef) -> Column<'a> {
        match a.data_type() {
            DataType::Utf8 => Column::Str(a.as_string::<i32>()),
            DataType::LargeUtf8 => Column::LargeStr(a.as_string::<i64>()),
            DataType::Utf8View => Column::StrView(a.as_string_view()),
            DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8) => {
                let d = a.as_any_dictionary();
                let values = d.values().as_string::<i32>();
                // `normalized_keys` needs at least one value; with none, every key is null.
                let keys = if values.is_empty() { vec![0; a.len()] } else { d.normalized_keys() };
                Column::Dict(a, keys, values)
            }
            DataType::Float64 => Column::F64(a.as_primitive::<Float64Type>()),
            DataType::Float32 => Column::F32(a.as_primitive::<Float32Type>()),
            DataType::Int64 => Column::I64(a.as_primitive::<Int64Type>()),
            DataType::Int32 => Column::I32(a.as_primitive::<Int32Type>()),
            DataType::Int16 => Column::I16(a.as_primitive::<Int16Type>()),
            DataType::Int8 => Column::I8(a.as_primitive::<Int8Type>()),
            DataType::UInt64 => Column::U64(a.as_primitive::<UInt64Type>()),
            DataType::UInt32 => Column::U32(a.as_primitive::<UInt32Type>()),
            DataType::UInt16 => Column::U16(a.as_primitive::<UInt16Type>()),
            DataType::UInt8 => Column::U8(a.as_primitive::<UInt8Type>()),
            DataType::Decimal128(_, scale) => {
                Column::Dec(a.as_primitive::<Decimal128Type>(), 10f64.powi(-i32::from(*scale)))
            }
            DataType::Timestamp(unit, _) => Column::Ts(
                a.as_ref(),
                match unit {
                    TimeUnit::Second => TsUnit::Second,
                    TimeUnit::Millisecond => TsUnit::Milli,
                    TimeUnit::Microsecond => TsUnit::Micro,
                    TimeUnit::Nanosecond => TsUnit::Nano,
                },
            ),
            DataType::Date32 => Column::Date32(a.as_primitive::<Date32Type>()),
            DataType::Date64 => Column::Date64(a.as_primitive::<Date64Type>()),
            _ => Column::Other,
        }
    }

    fn cell(&self, r: usize) -> Cell<'a> {
        macro_rules! prim {
            ($arr:expr, $conv:expr) => {
                if $arr.is_null(r) { Cell::Null } else { $conv($arr.value(r)) }
            };
        }
        match self {
            Column::Str(a) => prim!(a, |s: &'a str| Cell::Text(s.trim())),
            Column::LargeStr(a) => prim!(a, |s: &'a str| Cell::Text(s.trim())),
            Column::StrView(a) => prim!(a, |s: &'a str| Cell::Text(s.trim())),
            Column::Dict(a, keys, values) => match keys.get(r) {
                Some(&k) if !a.is_null(r) && k < values.len() && !values.is_null(k) => {
                    Cell::Text(values.value(k).trim())
                }
                _ => Cell::Null,
            },
            Column::F64(a) => prim!(a, Cell::Float),
            Column::F32(a) => prim!(a, |v: f32| Cell::Float(f64::from(v))),
            Column::I64(a) => prim!(a, Cell::Int),
            Column::I32(a) => prim!(a, |v: i32| Cell::Int(i64::from(v))),
            Column::I16(a) => prim!(a, |v: i16| Cell::Int(i64::from(v))),
            Column::I8(a) => prim!(a, |v: i8| Cell::Int(i64::from(v))),
            Column::U64(a) => prim!(a, |v: u64| i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int)),
            Column::U32(a) => prim!(a, |v: u32| Cell::Int(i64::from(v))),
            Column::U16(a) => prim!(a, |v: u16| Cell::Int(i64::from(v))),
            Column::U8(a) => prim!(a, |v: u8| Cell::Int(i64::from(v))),
            Column::Dec(a, scale) => prim!(a, |v: i128| Cell::Float(v as f64 * scale)),
            Column::Ts(a, unit) => {
                if a.is_null(r) {
                    return Cell::Null;
                }
                // Out-of-range values saturate and are then refused by the range check.
                let us = match unit {
                    TsUnit::Second => a.as_primitive::<TimestampSecondType>().value(r).saturating_mul(1_000_000),
                    TsUnit::Milli => a.as_primitive::<TimestampMillisecondType>().value(r).saturating_mul(1_000),
                    TsUnit::Micro => a.as_primitive::<TimestampMicrosecondType>().value(r),
                    TsUnit::Nano => a.as_primitive::<TimestampNanosecondType>().value(r).div_euclid(1_000),
                };
                Cell::TimeUs(us)
            }
            Column::Date32(a) => prim!(a, |d: i32| Cell::TimeUs(i64::from(d) * 86_400_000_000)),
            Column::Date64(a) => prim!(a, |ms: i64| Cell::TimeUs(ms.saturating_mul(1_000))),
            Column::Other => Cell::Null,
        }
    }
}
