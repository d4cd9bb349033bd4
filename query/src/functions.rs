//! The SQL functions ticklake adds to DataFusion: Athena's (Trino's) `max_by`, `min_by` and
//! `date_format`, so the named queries Athena runs also run here unchanged, and the tick helper
//! `vwap(price, size)`.
//!
//! | function | meaning | how |
//! |---|---|---|
//! | `max_by(x, y)` (alias `arg_max`) | the `x` of the row with the largest `y`; rows with a null `y` ignored | its own accumulators ([`by`]): grouped for a primitive `x` and an integer-like `y` |
//! | `min_by(x, y)` (alias `arg_min`) | the `x` of the row with the smallest `y` | the same |
//! | `vwap(price, size)` | `Σ price·size / Σ size` over rows where both are non-null; null when `Σ size = 0` | its own (grouped) accumulator, in `f64` |
//! | `date_format(t, fmt)` | `t` (a date or timestamp, as UTC) formatted with MySQL/Trino specifiers (`%Y %m %d %H %i %s …`) | translated to chrono's; an unknown specifier is an error |
//!
//! `max_by`/`min_by` were first rewritten to DataFusion's `first_value`/`last_value(x ORDER BY
//! y)`. Their grouped accumulator compares rows through a dynamic lexicographic comparator, and
//! the rewrite adds a `FILTER (WHERE y IS NOT NULL)`: together 17 % of the CPU of a 1-minute OHLCV
//! over 100 M ticks. [`by`] compares two `i64` per row instead (see BENCHMARKS.md). Ties in `y`
//! pick any of the tied rows, as in Trino.
//!
//! DataFusion's own `date_bin(interval, t[, origin])`, `date_trunc`, `first_value`/`last_value`
//! (`ORDER BY` inside the call) complete the tick helpers. `date_trunc` is DataFusion's behind a
//! wrapper ([`date_trunc`]) that truncates UTC timestamps to a millisecond … day with constant
//! divisors.

mod by;
mod date_trunc;

use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Registers every function of this module on `ctx`.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    ctx.register_udaf(AggregateUDF::from(by::By::max_by()));
    ctx.register_udaf(AggregateUDF::from(by::By::min_by()));
    ctx.register_udaf(AggregateUDF::from(Vwap::new()));
    ctx.register_udf(ScalarUDF::from(DateFormat::new()));
    // Replaces DataFusion's own (same name): see `date_trunc`.
    ctx.register_udf(ScalarUDF::from(date_trunc::DateTrunc::new()));
}

// ---------------------------------------------------------------------------------------------
// vwap

/// `vwap(price, size)`: see the module documentation.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Vwap {
    signature: Signature,
}

impl Vwap {
    fn new() -> Self {
        Vwap { signature: Signature::uniform(2, vec![DataType::Float64], Volatility::Immutable) }
    }
}

impl AggregateUDFImpl for Vwap {
    fn name(&self) -> &str {
        "vwap"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(VwapAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format!("{}[price_x_size]", args.name), DataType::Float64, false)),
            Arc::new(Field::new(format!("{}[size]", args.name), DataType::Float64, false)),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(VwapGroups::default()))
    }
}

fn f64_args(values: &[ArrayRef]) -> Result<(&Float64Array, &Float64Array)> {
    match values {
        [a, b] => match (a.as_primitive_opt::<Float64Type>(), b.as_primitive_opt::<Float64Type>()) {
            (Some(a), Some(b)) if a.len() == b.len() => Ok((a, b)),
            _ => internal_err!("vwap expects two float64 columns of one length"),
        },
        _ => internal_err!("vwap expects two columns, got {}", values.len()),
    }
}

/// Applies `f(row, a, b)` to the rows where both values are valid and the filter (if any) holds.
fn each_valid(a: &Float64Array, b: &Float64Array, filter: Option<&BooleanArray>, mut f: impl FnMut(usize, f64, f64)) {
    let (av, bv) = (a.values(), b.values());
    if a.null_count() == 0 && b.null_count() == 0 && filter.is_none() {
        for i in 0..a.len() {
            f(i, av[i], bv[i]);
        }
        return;
    }
    for i in 0..a.len() {
        if a.is_valid(i) && b.is_valid(i) && filter.is_none_or(|m| m.is_valid(i) && m.value(i)) {
            f(i, av[i], bv[i]);
        }
    }
}

fn vwap_of(price_x_size: f64, size: f64) -> Option<f64> {
    (size != 0.0).then(|| price_x_size / size)
}

#[derive(Debug, Default)]
struct VwapAccumulator {
    price_x_size: f64,
    size: f64,
}

impl Accumulator for VwapAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (price, size) = f64_args(values)?;
        each_valid(price, size, None, |_, p, s| {
            self.price_x_size += p * s;
            self.size += s;
        });
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(vwap_of(self.price_x_size, self.size)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Float64(Some(self.price_x_size)), ScalarValue::Float64(Some(self.size))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (pxs, size) = f64_args(states)?;
        each_valid(pxs, size, None, |_, p, s| {
            self.price_x_size += p;
            self.size += s;
        });
        Ok(())
    }
}

#[derive(Debug, Default)]
struct VwapGroups {
    price_x_size: Vec<f64>,
    size: Vec<f64>,
}

impl VwapGroups {
    fn grow(&mut self, total_num_groups: usize) {
        self.price_x_size.resize(total_num_groups, 0.0);
        self.size.resize(total_num_groups, 0.0);
    }

    fn check(values: &[ArrayRef], group_indices: &[usize]) -> Result<()> {
        if values.first().is_some_and(|v| v.len() != group_indices.len()) {
            return exec_err!("vwap: {} group indices for {} rows", group_indices.len(), values[0].len());
        }
        Ok(())
    }
}

impl GroupsAccumulator for VwapGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        Self::check(values, group_indices)?;
        let (price, size) = f64_args(values)?;
        self.grow(total_num_groups);
        each_valid(price, size, opt_filter, |i, p, s| {
            let g = group_indices[i];
            self.price_x_size[g] += p * s;
            self.size[g] += s;
        });
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let pxs = emit_to.take_needed(&mut self.price_x_size);
        let size = emit_to.take_needed(&mut self.size);
        let out: Float64Array = pxs.into_iter().zip(size).map(|(p, s)| vwap_of(p, s)).collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let pxs = emit_to.take_needed(&mut self.price_x_size);
        let size = emit_to.take_needed(&mut self.size);
        Ok(vec![Arc::new(Float64Array::from(pxs)), Arc::new(Float64Array::from(size))])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        Self::check(values, group_indices)?;
        let (pxs, size) = f64_args(values)?;
        self.grow(total_num_groups);
        each_valid(pxs, size, None, |i, p, s| {
            let g = group_indices[i];
            self.price_x_size[g] += p;
            self.size[g] += s;
        });
        Ok(())
    }

    /// Each input row as a one-row state: `[price·size, size]`, zeros where a value is null
    /// or the filter drops the row (they add nothing when merged).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let (price, size) = f64_args(values)?;
        let mut pxs = vec![0.0; price.len()];
        let mut sizes = vec![0.0; price.len()];
        each_valid(price, size, opt_filter, |i, p, s| {
            pxs[i] = p * s;
            sizes[i] = s;
        });
        Ok(vec![Arc::new(Float64Array::from(pxs)), Arc::new(Float64Array::from(sizes))])
    }

    fn size(&self) -> usize {
        (self.price_x_size.capacity() + self.size.capacity()) * size_of::<f64>()
    }
}

// ---------------------------------------------------------------------------------------------
// date_format

/// `date_format(t, fmt)`: see the module documentation.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateFormat {
    signature: Signature,
}

impl DateFormat {
    fn new() -> Self {
        DateFormat { signature: Signature::any(2, Volatility::Immutable) }
    }
}

/// Translates MySQL/Trino `date_format` specifiers to chrono's. Only the specifiers Trino
/// documents are accepted; anything else is an error naming it (chrono itself would fail at
/// formatting time, too late for a clear message).
pub fn mysql_to_chrono(format: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(format.len() + 8);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err("the format ends with a lone %".into());
        };
        out.push_str(match spec {
            'a' => "%a",
            'b' => "%b",
            'c' => "%-m",
            'd' => "%d",
            'e' => "%-d",
            'f' => "%6f",
            'H' => "%H",
            'h' | 'I' => "%I",
            'i' => "%M",
            'j' => "%j",
            'k' => "%-H",
            'l' => "%-I",
            'M' => "%B",
            'm' => "%m",
            'p' => "%p",
            'r' => "%I:%M:%S %p",
            'S' | 's' => "%S",
            'T' => "%H:%M:%S",
            'W' => "%A",
            'Y' => "%Y",
            'y' => "%y",
            '%' => "%%",
            other => return Err(format!("unsupported specifier %{other} (Trino's date_format specifiers only)")),
        });
    }
    Ok(out)
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Null, _] => Ok(DataType::Utf8),
            [other, _] => plan_err!("date_format(t, fmt) needs a date or timestamp, not {other}"),
            _ => plan_err!("date_format(t, fmt) takes two arguments"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, fmt]: [ColumnarValue; 2] = match args.args.try_into() {
            Ok(a) => a,
            Err(_) => return exec_err!("date_format(t, fmt) takes two arguments"),
        };
        let fmt = match &fmt {
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            ) => s.clone(),
            _ => return exec_err!("date_format: the format must be a constant string"),
        };
        let chrono_fmt = match mysql_to_chrono(&fmt) {
            Ok(f) => f,
            Err(e) => return exec_err!("date_format({fmt:?}): {e}"),
        };
        let scalar = matches!(value, ColumnarValue::Scalar(_));
        let array = value.into_array(args.number_rows)?;
        let micros = cast(&array, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let out: StringArray = micros
            .iter()
            .map(|v| v.and_then(DateTime::from_timestamp_micros).map(|d| d.format(&chrono_fmt).to_string()))
            .collect();
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(Arc::new(out)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trino_specifiers_translate_and_unknown_ones_are_refused() {
        assert_eq!(mysql_to_chrono("%Y-%m-%d %H:%i:%s").unwrap(), "%Y-%m-%d %H:%M:%S");
        assert_eq!(mysql_to_chrono("100%% at %T").unwrap(), "100%% at %H:%M:%S");
        assert!(mysql_to_chrono("%Q").unwrap_err().contains("%Q"));
        assert!(mysql_to_chrono("abc%").unwrap_err().contains("lone"));
    }
}
