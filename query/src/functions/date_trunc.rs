//! `date_trunc(granularity, t)` with constant divisors on its hot path.
//!
//! DataFusion's `date_trunc` truncates a timestamp array to a second, minute, hour or day with
//! `v - v.rem_euclid(unit)` where `unit` is only known at run time: one 64-bit division per row,
//! 6 % of the CPU of a 1-minute OHLCV over 100 M ticks. This wrapper takes over the case that
//! query runs — an array of timestamps in UTC (no time zone, `UTC` or `+00:00`) truncated to a
//! `millisecond`, `second`, `minute`, `hour` or `day` — with the divisor a compile-time constant,
//! which the compiler turns into a multiplication. Everything else (other granularities, other
//! time zones, scalars, dates and times) goes to DataFusion's function unchanged, and the
//! wrapper's name, aliases, signature, return type and ordering are DataFusion's.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ArrowPrimitiveType, AsArray, PrimitiveArray};
use datafusion::arrow::datatypes::{
    DataType, FieldRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// See the module documentation.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DateTrunc {
    inner: Arc<ScalarUDF>,
}

impl DateTrunc {
    pub(super) fn new() -> Self {
        DateTrunc { inner: datafusion::functions::datetime::date_trunc() }
    }
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.inner().output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [granularity, ColumnarValue::Array(t)] = args.args.as_slice()
            && let Some(out) = fast(granularity, t)
        {
            return Ok(ColumnarValue::Array(out));
        }
        self.inner.invoke_with_args(args)
    }
}

/// Microseconds in a granularity this module truncates to itself.
fn granularity_us(granularity: &ColumnarValue) -> Option<i64> {
    let g = match granularity {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(g)) | ScalarValue::Utf8View(Some(g)) | ScalarValue::LargeUtf8(Some(g)),
        ) => g,
        _ => return None,
    };
    Some(match g.to_ascii_lowercase().as_str() {
        "millisecond" => 1_000,
        "second" => 1_000_000,
        "minute" => 60_000_000,
        "hour" => 3_600_000_000,
        "day" => 86_400_000_000,
        _ => return None,
    })
}

/// The truncated array, or `None` for the cases DataFusion's function handles.
fn fast(granularity: &ColumnarValue, t: &ArrayRef) -> Option<ArrayRef> {
    let DataType::Timestamp(unit, tz) = t.data_type() else { return None };
    if tz.as_deref().is_some_and(|tz| !matches!(tz, "UTC" | "+00:00")) {
        return None;
    }
    let us = granularity_us(granularity)?;
    // One arm per (unit, granularity): the divisor is a constant in each.
    macro_rules! arms {
        ($t:ty, $per_us_num:expr, $per_us_den:expr) => {
            match us {
                1_000 => trunc::<$t, { 1_000 * $per_us_num / $per_us_den }>(t),
                1_000_000 => trunc::<$t, { 1_000_000 * $per_us_num / $per_us_den }>(t),
                60_000_000 => trunc::<$t, { 60_000_000 * $per_us_num / $per_us_den }>(t),
                3_600_000_000 => trunc::<$t, { 3_600_000_000 * $per_us_num / $per_us_den }>(t),
                86_400_000_000 => trunc::<$t, { 86_400_000_000 * $per_us_num / $per_us_den }>(t),
                _ => None,
            }
        };
    }
    match unit {
        TimeUnit::Second => match us {
            // Truncating seconds to a millisecond is the identity; DataFusion handles it.
            1_000_000 => trunc::<TimestampSecondType, 1>(t),
            60_000_000 => trunc::<TimestampSecondType, 60>(t),
            3_600_000_000 => trunc::<TimestampSecondType, 3_600>(t),
            86_400_000_000 => trunc::<TimestampSecondType, 86_400>(t),
            _ => None,
        },
        TimeUnit::Millisecond => arms!(TimestampMillisecondType, 1, 1_000),
        TimeUnit::Microsecond => arms!(TimestampMicrosecondType, 1, 1),
        TimeUnit::Nanosecond => arms!(TimestampNanosecondType, 1_000, 1),
    }
}

/// `v - v.rem_euclid(D)` for every value; `None` when a value is so close to `i64::MIN` that
/// the result would not fit (DataFusion's function reports that case).
fn trunc<T: ArrowPrimitiveType<Native = i64>, const D: i64>(t: &ArrayRef) -> Option<ArrayRef> {
    const { assert!(D > 0) };
    let a = t.as_primitive_opt::<T>()?;
    let values = a.values();
    if values.iter().copied().min().is_some_and(|lo| lo < i64::MIN + D) {
        return None;
    }
    let out: Vec<i64> = values.iter().map(|&v| v - v.rem_euclid(D)).collect();
    Some(Arc::new(PrimitiveArray::<T>::new(out.into(), a.nulls().cloned()).with_data_type(a.data_type().clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{TimestampMicrosecondArray, TimestampNanosecondArray, TimestampSecondArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn call(udf: &dyn ScalarUDFImpl, granularity: &str, t: ArrayRef) -> ArrayRef {
        let args =
            vec![ColumnarValue::Scalar(ScalarValue::Utf8(Some(granularity.into()))), ColumnarValue::Array(t.clone())];
        let arg_fields = vec![
            Arc::new(Field::new("g", DataType::Utf8, false)),
            Arc::new(Field::new("t", t.data_type().clone(), true)),
        ];
        let args = ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: t.len(),
            return_field: Arc::new(Field::new("out", t.data_type().clone(), true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        match udf.invoke_with_args(args).unwrap() {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(s) => s.to_array().unwrap(),
        }
    }

    /// Values around the epoch, negative ones, nulls and large ones.
    fn values(scale: i64) -> Vec<Option<i64>> {
        let mut v = vec![None, Some(0), Some(-1), Some(1), Some(-scale), Some(59 * scale)];
        let mut x: i64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..500 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Within ±190 years of 1970 in this unit.
            v.push(Some(x % (6_000_000_000 * scale)));
        }
        v
    }

    #[test]
    fn agrees_with_datafusion_on_every_unit_granularity_and_utc_zone() {
        let ours = DateTrunc::new();
        let theirs = datafusion::functions::datetime::date_trunc();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(TimestampSecondArray::from(values(1))),
            Arc::new(datafusion::arrow::array::TimestampMillisecondArray::from(values(1_000))),
            Arc::new(TimestampMicrosecondArray::from(values(1_000_000))),
            Arc::new(TimestampMicrosecondArray::from(values(1_000_000)).with_timezone("UTC")),
            Arc::new(TimestampNanosecondArray::from(values(1_000_000_000)).with_timezone("+00:00")),
            // Handed to DataFusion: another zone.
            Arc::new(TimestampMicrosecondArray::from(values(1_000_000)).with_timezone("America/New_York")),
        ];
        for t in &arrays {
            for g in ["millisecond", "second", "Minute", "HOUR", "day", "week", "month", "year"] {
                let a = call(&ours, g, t.clone());
                let b = call(theirs.inner().as_ref(), g, t.clone());
                assert_eq!(&a, &b, "{g} on {}", t.data_type());
            }
        }
        // The fast path ran for the UTC cases: a constant-divisor result exists.
        assert!(fast(&ColumnarValue::Scalar(ScalarValue::Utf8(Some("minute".into()))), &arrays[2]).is_some());
        assert!(fast(&ColumnarValue::Scalar(ScalarValue::Utf8(Some("minute".into()))), &arrays[5]).is_none());
        assert!(fast(&ColumnarValue::Scalar(ScalarValue::Utf8(Some("week".into()))), &arrays[2]).is_none());
    }

    #[test]
    fn values_near_the_minimum_go_to_datafusion() {
        let t: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![i64::MIN + 5]));
        assert!(fast(&ColumnarValue::Scalar(ScalarValue::Utf8(Some("minute".into()))), &t).is_none());
    }
}
