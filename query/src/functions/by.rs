//! Trino's `max_by(x, y)` / `min_by(x, y)`: the `x` of the row with the largest (smallest) `y`.
//!
//! Two accumulators, chosen per call by the argument types:
//!
//! * [`ByGroups`] — the grouped one, for a primitive `x` (numbers, dates, timestamps,
//!   decimals) and an integer-like `y` (integers, dates, timestamps of any unit). `y` is viewed
//!   as `i64` and every group keeps one `(x, y)` pair in flat vectors: one comparison of two
//!   `i64` per row, no per-row dynamic dispatch. It is what a 1-minute OHLCV's `open` and
//!   `close` run on.
//! * [`ByAccumulator`] — any other types (strings, floats as `y`, nested values): the batch's
//!   best row is found with Arrow's comparator, then compared with the kept `ScalarValue`.
//!
//! Rules, the same on both paths: rows with a null `y` are ignored; a null `x` on the best row
//! is the result (Trino's rule); no row with a non-null `y` gives null. Ties in `y` keep the
//! first row seen for `min_by` and the last for `max_by`, so over rows stored in time order the
//! result is the first or last of them. Across parallel partitions the order in which partial
//! states merge is not fixed, so which of several tied rows wins is not specified (as in Trino).
//!
//! The state of both is `[x, y]` in the arguments' own types, so partial and final
//! aggregation may run on different paths.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray, Int64Array, PrimitiveArray, make_comparator,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::{SortOptions, cast};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Field, FieldRef, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility};

/// `max_by(x, y)` / `min_by(x, y)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct By {
    name: &'static str,
    aliases: Vec<String>,
    /// True for `max_by`.
    max: bool,
    signature: Signature,
}

impl By {
    pub(super) fn max_by() -> Self {
        By {
            name: "max_by",
            aliases: vec!["arg_max".into()],
            max: true,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    pub(super) fn min_by() -> Self {
        By {
            name: "min_by",
            aliases: vec!["arg_min".into()],
            max: false,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    fn arg_types<'a>(&self, fields: &'a [FieldRef]) -> Result<(&'a DataType, &'a DataType)> {
        match fields {
            [x, y] => Ok((x.data_type(), y.data_type())),
            _ => plan_err!("{}(x, y) takes two arguments", self.name),
        }
    }
}

impl AggregateUDFImpl for By {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [x, _] => Ok(x.clone()),
            _ => plan_err!("{}(x, y) takes two arguments", self.name),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct || !args.order_bys.is_empty() {
            return plan_err!("{}(x, y) takes neither DISTINCT nor ORDER BY: y is the order", self.name);
        }
        let (x, y) = self.arg_types(args.expr_fields)?;
        Ok(Box::new(ByAccumulator { max: self.max, x_type: x.clone(), y_type: y.clone(), best: None }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let (x, y) = self.arg_types(args.input_fields)?;
        Ok(vec![
            Arc::new(Field::new(format!("{}[x]", args.name), x.clone(), true)),
            Arc::new(Field::new(format!("{}[y]", args.name), y.clone(), true)),
        ])
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.is_distinct
            && args.order_bys.is_empty()
            && self.arg_types(args.expr_fields).is_ok_and(|(x, y)| groups_for(x, y, self.max).is_some())
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let (x, y) = self.arg_types(args.expr_fields)?;
        match groups_for(x, y, self.max) {
            Some(g) => Ok(g),
            None => internal_err!("{}: no grouped accumulator for ({x}, {y})", self.name),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Grouped: primitive x, integer-like y.

/// `y` types viewed as `i64` without changing order.
fn y_is_integer_like(y: &DataType) -> bool {
    matches!(
        y,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
    )
}

/// The grouped accumulator for `(x, y)`, or `None` when those types take the general path.
fn groups_for(x: &DataType, y: &DataType, max: bool) -> Option<Box<dyn GroupsAccumulator>> {
    if !y_is_integer_like(y) {
        return None;
    }
    macro_rules! make {
        ($t:ty) => {
            Some(Box::new(ByGroups::<$t>::new(max, x.clone(), y.clone())) as Box<dyn GroupsAccumulator>)
        };
    }
    match x {
        DataType::Int8 => make!(Int8Type),
        DataType::Int16 => make!(Int16Type),
        DataType::Int32 => make!(Int32Type),
        DataType::Int64 => make!(Int64Type),
        DataType::UInt8 => make!(UInt8Type),
        DataType::UInt16 => make!(UInt16Type),
        DataType::UInt32 => make!(UInt32Type),
        DataType::UInt64 => make!(UInt64Type),
        DataType::Float32 => make!(Float32Type),
        DataType::Float64 => make!(Float64Type),
        DataType::Date32 => make!(Date32Type),
        DataType::Date64 => make!(Date64Type),
        DataType::Decimal128(_, _) => make!(Decimal128Type),
        DataType::Timestamp(TimeUnit::Second, _) => make!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => make!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => make!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => make!(TimestampNanosecondType),
        _ => None,
    }
}

/// One group's kept row.
#[derive(Debug, Clone, Copy, Default)]
struct Slot<N> {
    /// The kept row's `y` (meaningful when `seen`).
    y: i64,
    /// The kept row's `x` (meaningful when `x_valid`).
    x: N,
    /// A row with a non-null `y` has been kept.
    seen: bool,
    x_valid: bool,
}

/// One `(x, y)` per group in a flat vector; see the module documentation.
#[derive(Debug)]
struct ByGroups<T: ArrowPrimitiveType> {
    max: bool,
    x_type: DataType,
    y_type: DataType,
    slots: Vec<Slot<T::Native>>,
}

impl<T: ArrowPrimitiveType> ByGroups<T> {
    fn new(max: bool, x_type: DataType, y_type: DataType) -> Self {
        ByGroups { max, x_type, y_type, slots: Vec::new() }
    }

    /// Offers every row of `(x, y)` to its group: rows the filter drops or with a null `y`
    /// are skipped.
    ///
    /// Rows of one group usually come in runs (objects store rows by symbol and time): the
    /// best row of a run is found in registers and written to the group's slot once.
    fn offer(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let [x, y] = values else {
            return internal_err!("max_by/min_by: expected 2 columns, got {}", values.len());
        };
        if x.len() != group_indices.len() || y.len() != group_indices.len() {
            return internal_err!(
                "max_by/min_by: {} group indices for {}/{} rows",
                group_indices.len(),
                x.len(),
                y.len()
            );
        }
        if opt_filter.is_some_and(|f| f.len() != group_indices.len()) {
            return internal_err!("max_by/min_by: filter length differs from the rows'");
        }
        let Some(x) = x.as_primitive_opt::<T>() else {
            return internal_err!("max_by/min_by: x is {}, expected {}", x.data_type(), T::DATA_TYPE);
        };
        let y = cast(y, &DataType::Int64)?;
        let y = y.as_primitive::<Int64Type>();
        if group_indices.iter().any(|&g| g >= total_num_groups) {
            return internal_err!("max_by/min_by: a group index is not below {total_num_groups}");
        }
        self.slots.resize(total_num_groups, Slot::default());
        // Rows that count: a valid y and a filter that holds.
        let mut keep = y.nulls().map(|n| n.inner().clone());
        if let Some(f) = opt_filter {
            let pass = match f.nulls() {
                Some(n) => f.values() & n.inner(),
                None => f.values().clone(),
            };
            keep = Some(match keep {
                Some(k) => &k & &pass,
                None => pass,
            });
        }
        let x_nulls = x.nulls();
        if self.max {
            self.offer_rows(x.values(), x_nulls, y.values(), keep.as_ref(), group_indices, |k, best| k >= best);
        } else {
            self.offer_rows(x.values(), x_nulls, y.values(), keep.as_ref(), group_indices, |k, best| k < best);
        }
        Ok(())
    }

    /// The loop of [`Self::offer`], monomorphized for max and min; `wins(k, best)` says whether
    /// a row with `y = k` replaces the kept one.
    #[inline(always)]
    fn offer_rows(
        &mut self,
        xs: &[T::Native],
        x_nulls: Option<&NullBuffer>,
        ys: &[i64],
        keep: Option<&BooleanBuffer>,
        group_indices: &[usize],
        wins: impl Fn(i64, i64) -> bool,
    ) {
        let n = group_indices.len();
        debug_assert!(xs.len() == n && ys.len() == n && keep.is_none_or(|k| k.len() == n));
        let x_valid = |i: usize| x_nulls.is_none_or(|nb| nb.is_valid(i));
        let mut i = 0;
        while i < n {
            let g = group_indices[i];
            // The run of rows of group `g` starting at `i`, and its best row.
            let mut best: Option<usize> = None;
            let mut j = i;
            while j < n && group_indices[j] == g {
                if keep.is_none_or(|k| k.value(j)) && best.is_none_or(|b| wins(ys[j], ys[b])) {
                    best = Some(j);
                }
                j += 1;
            }
            if let Some(b) = best {
                let slot = &mut self.slots[g];
                if !slot.seen || wins(ys[b], slot.y) {
                    *slot = Slot { y: ys[b], x: xs[b], seen: true, x_valid: x_valid(b) };
                }
            }
            i = j;
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Slot<T::Native>> {
        emit_to.take_needed(&mut self.slots)
    }

    fn x_array(&self, slots: &[Slot<T::Native>]) -> ArrayRef {
        let values: Vec<T::Native> = slots.iter().map(|s| s.x).collect();
        let nulls = NullBuffer::new(BooleanBuffer::collect_bool(slots.len(), |i| slots[i].seen && slots[i].x_valid));
        Arc::new(PrimitiveArray::<T>::new(values.into(), Some(nulls)).with_data_type(self.x_type.clone()))
    }
}

impl<T: ArrowPrimitiveType> GroupsAccumulator for ByGroups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.offer(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let slots = self.take(emit_to);
        Ok(self.x_array(&slots))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let slots = self.take(emit_to);
        let x = self.x_array(&slots);
        let ys: Vec<i64> = slots.iter().map(|s| s.y).collect();
        let seen = NullBuffer::new(BooleanBuffer::collect_bool(slots.len(), |i| slots[i].seen));
        let y: ArrayRef = Arc::new(Int64Array::new(ys.into(), Some(seen)));
        Ok(vec![x, cast(&y, &self.y_type)?])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.offer(values, group_indices, None, total_num_groups)
    }

    /// Each row as a one-row state `[x, y]`, `y` null where the filter drops the row.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let [x, y] = values else {
            return internal_err!("max_by/min_by: expected 2 columns, got {}", values.len());
        };
        let y = match opt_filter {
            None => Arc::clone(y),
            Some(f) => {
                let keep = BooleanBuffer::collect_bool(f.len(), |i| f.is_valid(i) && f.value(i));
                let nulls = NullBuffer::union(y.logical_nulls().as_ref(), Some(&NullBuffer::new(keep)));
                let y64 = cast(y, &DataType::Int64)?;
                let y64: ArrayRef = Arc::new(Int64Array::new(y64.as_primitive::<Int64Type>().values().clone(), nulls));
                cast(&y64, &self.y_type)?
            }
        };
        Ok(vec![Arc::clone(x), y])
    }

    fn size(&self) -> usize {
        self.slots.capacity() * size_of::<Slot<T::Native>>()
    }
}

// ---------------------------------------------------------------------------------------------
// General: any types.

/// The kept `(x, y)` as scalars; see the module documentation.
#[derive(Debug)]
struct ByAccumulator {
    max: bool,
    x_type: DataType,
    y_type: DataType,
    best: Option<(ScalarValue, ScalarValue)>,
}

impl ByAccumulator {
    fn wins(&self, o: Ordering) -> bool {
        if self.max { o.is_ge() } else { o.is_lt() }
    }

    fn offer(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [x, y] = values else {
            return internal_err!("max_by/min_by: expected 2 columns, got {}", values.len());
        };
        let cmp = make_comparator(y.as_ref(), y.as_ref(), SortOptions::default())?;
        let mut best: Option<usize> = None;
        for i in 0..y.len() {
            if y.is_null(i) {
                continue;
            }
            if best.is_none_or(|b| self.wins(cmp(i, b))) {
                best = Some(i);
            }
        }
        let Some(i) = best else { return Ok(()) };
        let (xv, yv) = (ScalarValue::try_from_array(x, i)?, ScalarValue::try_from_array(y, i)?);
        let take = match &self.best {
            None => true,
            Some((_, kept)) => match yv.partial_cmp(kept) {
                Some(o) => self.wins(o),
                None => return exec_err!("max_by/min_by: cannot compare {yv} with {kept}"),
            },
        };
        if take {
            self.best = Some((xv, yv));
        }
        Ok(())
    }
}

impl Accumulator for ByAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(values)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(states)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.best {
            Some((x, _)) => Ok(x.clone()),
            None => ScalarValue::try_from(&self.x_type),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        match &self.best {
            Some((x, y)) => Ok(vec![x.clone(), y.clone()]),
            None => Ok(vec![ScalarValue::try_from(&self.x_type)?, ScalarValue::try_from(&self.y_type)?]),
        }
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.best.as_ref().map_or(0, |(x, y)| x.size() + y.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray, TimestampMicrosecondArray};

    fn ts(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(v.to_vec()).with_timezone("UTC"))
    }

    fn f64s(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    fn ts_type() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    fn grouped(max: bool) -> Box<dyn GroupsAccumulator> {
        groups_for(&DataType::Float64, &ts_type(), max).expect("f64 by timestamp is grouped")
    }

    fn general(max: bool, x: DataType, y: DataType) -> ByAccumulator {
        ByAccumulator { max, x_type: x, y_type: y, best: None }
    }

    #[test]
    fn grouped_picks_extremes_ignores_null_y_keeps_null_x_and_ties_by_arrival() {
        // group 0: y 5 → 1.0, y 3 → 2.0, y null → 9.0 (ignored), y 5 → 4.0 (tie)
        // group 1: y 7 → null x
        // group 2: only a null y → null
        let x = f64s(&[Some(1.0), Some(2.0), Some(9.0), None, Some(4.0), Some(8.0)]);
        let y = ts(&[Some(5), Some(3), None, Some(7), Some(5), None]);
        let groups = [0, 0, 0, 1, 0, 2];
        for (max, want) in [(true, [Some(4.0), None, None]), (false, [Some(2.0), None, None])] {
            let mut acc = grouped(max);
            acc.update_batch(&[x.clone(), y.clone()], &groups, None, 3).unwrap();
            let out = acc.evaluate(EmitTo::All).unwrap();
            let out: Vec<Option<f64>> = out.as_primitive::<Float64Type>().iter().collect();
            assert_eq!(out, want, "max={max}");
        }
    }

    #[test]
    fn grouped_filter_drops_rows_and_states_merge_across_partitions() {
        let x = f64s(&[Some(1.0), Some(2.0), Some(3.0)]);
        let y = ts(&[Some(1), Some(2), Some(3)]);
        let filter = BooleanArray::from(vec![Some(true), Some(true), None]);
        let mut a = grouped(true);
        a.update_batch(&[x.clone(), y.clone()], &[0, 0, 0], Some(&filter), 1).unwrap();
        let mut b = grouped(true);
        b.update_batch(&[f64s(&[Some(7.0)]), ts(&[Some(0)])], &[0], None, 2).unwrap();
        // Partial states: a says (2.0 @ 2), b says (7.0 @ 0) for group 0 and nothing for group 1.
        let sa = a.state(EmitTo::All).unwrap();
        let sb = b.state(EmitTo::All).unwrap();
        assert_eq!(sa[1].data_type(), &ts_type(), "the state keeps y's type");
        assert_eq!(sb[0].null_count(), 1, "an empty group's state is null");
        let mut fin = grouped(true);
        fin.merge_batch(&sb, &[0, 1], 2).unwrap();
        fin.merge_batch(&sa, &[0], 2).unwrap();
        let out = fin.evaluate(EmitTo::All).unwrap();
        let out: Vec<Option<f64>> = out.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(out, [Some(2.0), None]);
    }

    #[test]
    fn grouped_convert_to_state_nulls_filtered_rows() {
        let acc = grouped(false);
        let filter = BooleanArray::from(vec![true, false]);
        let s = acc.convert_to_state(&[f64s(&[Some(1.0), Some(2.0)]), ts(&[Some(1), Some(2)])], Some(&filter)).unwrap();
        assert_eq!(s[1].data_type(), &ts_type());
        assert!(s[1].is_valid(0) && s[1].is_null(1));
        let mut fin = grouped(false);
        fin.merge_batch(&s, &[0, 0], 1).unwrap();
        let out = fin.evaluate(EmitTo::All).unwrap();
        assert_eq!(out.as_primitive::<Float64Type>().value(0), 1.0);
    }

    #[test]
    fn grouped_states_keep_every_integer_like_y_type() {
        let ys: Vec<ArrayRef> = vec![
            Arc::new(datafusion::arrow::array::Int8Array::from(vec![1, 3])),
            Arc::new(datafusion::arrow::array::Int16Array::from(vec![1, 3])),
            Arc::new(datafusion::arrow::array::Int32Array::from(vec![1, 3])),
            Arc::new(Int64Array::from(vec![1, 3])),
            Arc::new(datafusion::arrow::array::UInt8Array::from(vec![1, 3])),
            Arc::new(datafusion::arrow::array::UInt16Array::from(vec![1, 3])),
            Arc::new(datafusion::arrow::array::UInt32Array::from(vec![1, 3])),
            Arc::new(datafusion::arrow::array::Date32Array::from(vec![1, 3])),
            Arc::new(datafusion::arrow::array::Date64Array::from(vec![86_400_000, 3 * 86_400_000])),
            Arc::new(datafusion::arrow::array::TimestampSecondArray::from(vec![1, 3]).with_timezone("+00:00")),
            ts(&[Some(1), Some(3)]),
        ];
        for y in ys {
            let y_type = y.data_type().clone();
            let mut acc = groups_for(&DataType::Float64, &y_type, true).expect("grouped");
            acc.update_batch(&[f64s(&[Some(1.0), Some(3.0)]), y], &[0, 0], None, 1).unwrap();
            let state = acc.state(EmitTo::All).unwrap();
            assert_eq!(state[1].data_type(), &y_type);
            let mut fin = groups_for(&DataType::Float64, &y_type, true).unwrap();
            fin.merge_batch(&state, &[0], 1).unwrap();
            let out = fin.evaluate(EmitTo::All).unwrap();
            assert_eq!(out.as_primitive::<Float64Type>().value(0), 3.0, "{y_type}");
        }
    }

    #[test]
    fn grouped_path_only_for_primitive_x_and_integer_like_y() {
        assert!(groups_for(&DataType::Utf8, &ts_type(), true).is_none());
        assert!(groups_for(&DataType::Float64, &DataType::Float64, true).is_none());
        assert!(groups_for(&DataType::Float64, &DataType::Utf8, true).is_none());
        assert!(groups_for(&DataType::Int64, &DataType::Date32, true).is_some());
    }

    #[test]
    fn general_path_handles_strings_and_float_ordering_and_merges() {
        let x: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("b"), Some("c"), None]));
        let y = f64s(&[Some(0.5), Some(2.5), None, Some(-1.0)]);
        let mut max = general(true, DataType::Utf8, DataType::Float64);
        max.update_batch(&[x.clone(), y.clone()]).unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Utf8(Some("b".into())));
        let mut min = general(false, DataType::Utf8, DataType::Float64);
        min.update_batch(&[x, y]).unwrap();
        assert_eq!(min.evaluate().unwrap(), ScalarValue::Utf8(None), "the best row's x is null");
        // A second partition's state with a larger y wins the merge; an empty one changes nothing.
        let mut other = general(true, DataType::Utf8, DataType::Float64);
        other.update_batch(&[Arc::new(StringArray::from(vec!["z"])), f64s(&[Some(9.0)])]).unwrap();
        let empty = general(true, DataType::Utf8, DataType::Float64).state().unwrap();
        let to_arrays = |s: Vec<ScalarValue>| s.into_iter().map(|v| v.to_array().unwrap()).collect::<Vec<_>>();
        max.merge_batch(&to_arrays(other.state().unwrap())).unwrap();
        max.merge_batch(&to_arrays(empty)).unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Utf8(Some("z".into())));
        assert_eq!(general(true, DataType::Utf8, DataType::Float64).evaluate().unwrap(), ScalarValue::Utf8(None));
    }
}
