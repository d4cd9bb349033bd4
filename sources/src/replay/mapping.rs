//! From columns to tick fields: the pure core of replay.
//!
//! `Plan::from_mapping` resolves a [`ColumnMapping`] once, before any file is opened:
//!
//! * `preset: kaggleIndexProcessed` means kind `bar`, symbol column `Index`, time column
//!   `Date` read as `date` (midnight UTC), and `open,high,low,close,adj_close,volume,close_usd`
//!   from `Open,High,Low,Close,Adj Close,Volume,CloseUSD`. Explicit `kind`, `symbol`, `time`,
//!   `timeFormat` and `fields` entries override the preset's (the preset's field columns apply
//!   only while the kind stays `bar`).
//! * Without a preset, `kind` is required. The symbol and time columns default to columns
//!   named `symbol` and `time`; each tick field defaults to a column of its own name.
//! * Tick fields per kind: `trade` — `price, size`; `quote` — `bid, bid_size, ask, ask_size`;
//!   `bar` — `open, high, low, close, volume` and the optional `adj_close, close_usd`.
//!   `fields` keys may also be written in camelCase (`bidSize`, `adjClose`, `closeUsd`…); a key
//!   that is no field of the kind is a configuration error, to catch typos.
//!
//! `Plan::bind` then finds the columns in each file's header: a column the plan needs that
//! is missing is a hard error naming the column and the file. Optional bar fields that were
//! not named explicitly (only through the preset) may be absent from a file.
//!
//! `Plan::map_row` turns one row's cells into a symbol, a time and the field values — or a
//! reason the row is bad: an empty or `null`/`NA` cell in a required column, text that is not
//! a number, a non-finite or negative price, a negative or fractional size, a bad date or a bad
//! symbol. Optional fields that are empty or NaN become absent (`None`).

use super::time::TimeFormat;
use crate::SourceError;
use crate::symbols::symbol_problem;
use std::borrow::Cow;
use std::path::Path;
use ticklake_api::crd::{ColumnMapping, MappingPreset, ReplayKind};

/// One cell, as a reader found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    /// Absent: a null, or a CSV row too short to have this column.
    Null,
    Text(&'a str),
    /// CSV bytes that are not UTF-8.
    BadUtf8,
    Float(f64),
    Int(i64),
    /// A native timestamp or date column, already in UTC µs.
    TimeUs(i64),
}

/// What a tick field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Price,
    OptionalPrice,
    Size,
    Volume,
}

/// (tick field, camelCase alias, kind) per replay kind, in storage order.
const TRADE_FIELDS: &[(&str, &str, FieldKind)] =
    &[("price", "price", FieldKind::Price), ("size", "size", FieldKind::Size)];
const QUOTE_FIELDS: &[(&str, &str, FieldKind)] = &[
    ("bid", "bid", FieldKind::Price),
    ("bid_size", "bidSize", FieldKind::Size),
    ("ask", "ask", FieldKind::Price),
    ("ask_size", "askSize", FieldKind::Size),
];
const BAR_FIELDS: &[(&str, &str, FieldKind)] = &[
    ("open", "open", FieldKind::Price),
    ("high", "high", FieldKind::Price),
    ("low", "low", FieldKind::Price),
    ("close", "close", FieldKind::Price),
    ("adj_close", "adjClose", FieldKind::OptionalPrice),
    ("volume", "volume", FieldKind::Volume),
    ("close_usd", "closeUsd", FieldKind::OptionalPrice),
];

fn fields_of(kind: ReplayKind) -> &'static [(&'static str, &'static str, FieldKind)] {
    match kind {
        ReplayKind::Trade => TRADE_FIELDS,
        ReplayKind::Quote => QUOTE_FIELDS,
        ReplayKind::Bar => BAR_FIELDS,
    }
}

pub(crate) fn kind_name(kind: ReplayKind) -> &'static str {
    match kind {
        ReplayKind::Trade => "trade",
        ReplayKind::Quote => "quote",
        ReplayKind::Bar => "bar",
    }
}

/// Where one tick field comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldPlan {
    pub field: &'static str,
    pub column: String,
    pub kind: FieldKind,
    /// The column must be in every file's header.
    pub must_exist: bool,
}

/// A resolved mapping. See the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub kind: ReplayKind,
    pub symbol: String,
    pub time: String,
    pub time_format: TimeFormat,
    pub fields: Vec<FieldPlan>,
}

/// A plan's columns found in one file: indices into its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bound {
    pub symbol: usize,
    pub time: usize,
    pub fields: Vec<Option<usize>>,
}

/// What became of one row.
#[derive(Debug, PartialEq)]
pub(crate) enum RowOutcome<'a> {
    /// A good row of this shard; the values were written to `vals`.
    Mapped { symbol: Cow<'a, str>, ts_us: i64 },
    /// A row of a symbol another shard replays (not parsed further).
    NotOurs,
    /// A bad row. `ours` says whether this shard should report it: true when its symbol is
    /// this shard's, `None` when the symbol itself could not be read.
    Bad { reason: String, ours: Option<bool> },
}

impl Plan {
    /// Resolves the mapping; errors name the offending `mapping.*` entry.
    pub(crate) fn from_mapping(m: &ColumnMapping) -> Result<Plan, SourceError> {
        let preset = m.preset.map(|MappingPreset::KaggleIndexProcessed| {
            (
                ReplayKind::Bar,
                "Index",
                "Date",
                "date",
                [
                    ("open", "Open"),
                    ("high", "High"),
                    ("low", "Low"),
                    ("close", "Close"),
                    ("adj_close", "Adj Close"),
                    ("volume", "Volume"),
                    ("close_usd", "CloseUSD"),
                ],
            )
        });
        let kind = match (m.kind, preset) {
            (Some(k), _) => k,
            (None, Some(p)) => p.0,
            (None, None) => {
                return Err(SourceError::config("mapping.kind is required without a preset (trade, quote or bar)"));
            }
        };
        let symbol = m.symbol.clone().or(preset.map(|p| p.1.to_string())).unwrap_or_else(|| "symbol".into());
        let time = m.time.clone().or(preset.map(|p| p.2.to_string())).unwrap_or_else(|| "time".into());
        let time_format_text = m.time_format.as_deref().or(preset.map(|p| p.3));
        let time_format = TimeFormat::from_spec(time_format_text).map_err(SourceError::Config)?;
        for name in [&symbol, &time] {
            check_column_name(name)?;
        }

        let allowed = fields_of(kind);
        for key in m.fields.keys() {
            if !allowed.iter().any(|(snake, camel, _)| key == snake || key == camel) {
                let names: Vec<&str> = allowed.iter().map(|f| f.0).collect();
                return Err(SourceError::config(format!(
                    "mapping.fields.{key} is not a field of {} ticks (they have {})",
                    kind_name(kind),
                    names.join(", ")
                )));
            }
        }
        let mut fields = Vec::with_capacity(allowed.len());
        for &(snake, camel, fkind) in allowed {
            let explicit = m.fields.get(snake).or_else(|| m.fields.get(camel));
            if m.fields.contains_key(snake) && m.fields.contains_key(camel) && snake != camel {
                return Err(SourceError::config(format!("mapping.fields names both {snake} and {camel}; keep one")));
            }
            let from_preset = preset
                .filter(|p| p.0 == kind)
                .and_then(|p| p.4.iter().find(|(f, _)| *f == snake).map(|(_, c)| c.to_string()));
            let column = explicit.cloned().or(from_preset).unwrap_or_else(|| snake.to_string());
            check_column_name(&column)?;
            fields.push(FieldPlan {
                field: snake,
                column,
                kind: fkind,
                must_exist: fkind != FieldKind::OptionalPrice || explicit.is_some(),
            });
        }
        Ok(Plan { kind, symbol, time, time_format, fields })
    }

    /// Values stored per row.
    pub(crate) fn width(&self) -> usize {
        self.fields.len()
    }

    /// Finds the plan's columns in a header (first match wins).
    pub(crate) fn bind(&self, file: &Path, header: &[String]) -> Result<Bound, SourceError> {
        let find = |column: &str, field: &'static str, required: bool| -> Result<Option<usize>, SourceError> {
            match header.iter().position(|h| h == column) {
                Some(i) => Ok(Some(i)),
                None if !required => Ok(None),
                None => Err(SourceError::MissingColumn {
                    file: file.to_path_buf(),
                    column: column.to_string(),
                    field,
                    available: header.iter().take(50).cloned().collect(),
                }),
            }
        };
        // `required` is true, so the Option is always Some.
        let symbol = find(&self.symbol, "symbol", true)?.unwrap_or(0);
        let time = find(&self.time, "ts_us", true)?.unwrap_or(0);
        let fields =
            self.fields.iter().map(|f| find(&f.column, f.field, f.must_exist)).collect::<Result<Vec<_>, _>>()?;
        Ok(Bound { symbol, time, fields })
    }

    /// Maps one row. `cell(i)` is the row's cell in header column `i`; `owns` says whether
    /// a symbol belongs to this shard; `vals` (of [`Plan::width`]) receives the field values,
    /// NaN for an absent optional field.
    pub(crate) fn map_row<'a>(
        &self,
        bound: &Bound,
        cell: impl Fn(usize) -> Cell<'a>,
        owns: impl FnOnce(&str) -> bool,
        vals: &mut [f64],
    ) -> RowOutcome<'a> {
        let symbol = match read_symbol(cell(bound.symbol)) {
            Ok(s) => s,
            Err(why) => {
                return RowOutcome::Bad { reason: format!("column `{}`: {why}", self.symbol), ours: None };
            }
        };
        if !owns(&symbol) {
            return RowOutcome::NotOurs;
        }
        let bad = |column: &str, why: String| RowOutcome::Bad {
            reason: format!("column `{column}`: {why}"),
            ours: Some(true),
        };
        let ts_us = match read_time(cell(bound.time), &self.time_format) {
            Ok(t) => t,
            Err(why) => return bad(&self.time, why),
        };
        for ((plan, col), out) in self.fields.iter().zip(&bound.fields).zip(vals.iter_mut()) {
            let c = col.map_or(Cell::Null, &cell);
            match read_value(c, plan.kind) {
                Ok(v) => *out = v,
                Err(why) => return bad(&plan.column, why),
            }
        }
        RowOutcome::Mapped { symbol, ts_us }
    }
}

fn check_column_name(name: &str) -> Result<(), SourceError> {
    if name.is_empty() || name.len() > 256 {
        return Err(SourceError::config(format!("mapping column name {name:?} must be 1 to 256 bytes")));
    }
    Ok(())
}

fn is_missing_text(s: &str) -> bool {
    s.is_empty() || ["null", "na", "n/a", "none"].iter().any(|m| s.eq_ignore_ascii_case(m))
}

fn read_symbol(c: Cell<'_>) -> Result<Cow<'_, str>, String> {
    let s: Cow<'_, str> = match c {
        Cell::Text(t) if !is_missing_text(t) => Cow::Borrowed(t),
        Cell::Int(i) => Cow::Owned(i.to_string()),
        Cell::Null | Cell::Text(_) => return Err("missing value".into()),
        Cell::BadUtf8 => return Err("not valid UTF-8".into()),
        Cell::Float(_) | Cell::TimeUs(_) => return Err("a number is not a symbol".into()),
    };
    match symbol_problem(&s) {
        None => Ok(s),
        Some(p) => Err(p),
    }
}

fn read_time(c: Cell<'_>, format: &TimeFormat) -> Result<i64, String> {
    match c {
        Cell::Text(t) if !is_missing_text(t) => format.parse_text(t),
        Cell::Null | Cell::Text(_) => Err("missing value".into()),
        Cell::BadUtf8 => Err("not valid UTF-8".into()),
        Cell::Int(i) => format.parse_int(i),
        Cell::Float(f) => format.parse_float(f),
        Cell::TimeUs(us) => super::time::in_range(us),
    }
}

/// A field value as f64 (sizes are whole and ≤ 2⁵³, so they survive); NaN = absent optional.
fn read_value(c: Cell<'_>, kind: FieldKind) -> Result<f64, String> {
    let optional = kind == FieldKind::OptionalPrice;
    let v = match c {
        Cell::Text(t) if !is_missing_text(t) => {
            if kind == FieldKind::Size
                && let Ok(u) = t.parse::<u64>()
            {
                return whole_size(u as f64, t);
            }
            match t.parse::<f64>() {
                Ok(v) => v,
                Err(_) => return Err(format!("{t:?} is not a number")),
            }
        }
        Cell::Null | Cell::Text(_) if optional => return Ok(f64::NAN),
        Cell::Null | Cell::Text(_) => return Err("missing value".into()),
        Cell::BadUtf8 => return Err("not valid UTF-8".into()),
        Cell::Float(f) => f,
        Cell::Int(i) => i as f64,
        Cell::TimeUs(_) => return Err("a time is not a number".into()),
    };
    if v.is_nan() && optional {
        return Ok(f64::NAN);
    }
    if !v.is_finite() {
        return Err(format!("{v} is not a finite number"));
    }
    match kind {
        FieldKind::Price | FieldKind::OptionalPrice if v < 0.0 => Err(format!("negative price {v}")),
        FieldKind::Volume if v < 0.0 => Err(format!("negative volume {v}")),
        FieldKind::Size => whole_size(v, &v.to_string()),
        _ => Ok(v),
    }
}

fn whole_size(v: f64, text: &str) -> Result<f64, String> {
    if v < 0.0 {
        Err(format!("negative size {text}"))
    } else if v.fract() != 0.0 {
        Err(format!("size {text} is not a whole number"))
    } else if v > 9_007_199_254_740_992.0 {
        Err(format!("size {text} is too large"))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn kaggle() -> ColumnMapping {
        ColumnMapping { preset: Some(MappingPreset::KaggleIndexProcessed), ..Default::default() }
    }

    fn header(cols: &str) -> Vec<String> {
        cols.split(',').map(String::from).collect()
    }

    const KAGGLE_HEADER: &str = "Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD";

    fn map<'a>(plan: &Plan, bound: &Bound, row: &'a [&'a str], vals: &mut [f64]) -> RowOutcome<'a> {
        plan.map_row(bound, |i| row.get(i).map_or(Cell::Null, |s| Cell::Text(s)), |_| true, vals)
    }

    #[test]
    fn kaggle_preset_maps_a_row_to_bar_values() {
        let plan = Plan::from_mapping(&kaggle()).unwrap();
        assert_eq!(plan.kind, ReplayKind::Bar);
        let bound = plan.bind(Path::new("k.csv"), &header(KAGGLE_HEADER)).unwrap();
        let row = ["HSI", "1986-12-31", "2568.3", "2570", "2560.1", "2568.3", "2568.3", "0.0", "333.879"];
        let mut vals = vec![0.0; plan.width()];
        let out = map(&plan, &bound, &row, &mut vals);
        assert_eq!(out, RowOutcome::Mapped { symbol: "HSI".into(), ts_us: 536_371_200_000_000 });
        assert_eq!(vals, [2568.3, 2570.0, 2560.1, 2568.3, 2568.3, 0.0, 333.879]);
    }

    #[test]
    fn optional_preset_columns_may_be_absent_but_explicit_ones_not() {
        let plan = Plan::from_mapping(&kaggle()).unwrap();
        let h = header("Index,Date,Open,High,Low,Close,Volume");
        let bound = plan.bind(Path::new("k.csv"), &h).unwrap();
        let row = ["NYA", "1965-12-31", "1", "2", "0.5", "1.5", "7"];
        let mut vals = vec![0.0; plan.width()];
        assert!(matches!(map(&plan, &bound, &row, &mut vals), RowOutcome::Mapped { .. }));
        assert!(vals[4].is_nan() && vals[6].is_nan());

        let mut m = kaggle();
        m.fields.insert("closeUsd".into(), "USD".into());
        let plan = Plan::from_mapping(&m).unwrap();
        let e = plan.bind(Path::new("k.csv"), &h).unwrap_err().to_string();
        assert!(e.contains("k.csv") && e.contains("\"USD\"") && e.contains("close_usd"), "{e}");
    }

    #[test]
    fn missing_required_column_names_it() {
        let plan = Plan::from_mapping(&kaggle()).unwrap();
        let e = plan.bind(Path::new("/data/x.csv"), &header("Index,Date,Open,High,Low,Volume")).unwrap_err();
        let SourceError::MissingColumn { file, column, field, .. } = &e else { panic!("{e}") };
        assert_eq!((file.to_str().unwrap(), column.as_str(), *field), ("/data/x.csv", "Close", "close"));
    }

    #[test]
    fn explicit_mapping_defaults_and_overrides() {
        let mut fields = BTreeMap::new();
        fields.insert("price".to_string(), "Last".to_string());
        let m = ColumnMapping {
            kind: Some(ReplayKind::Trade),
            symbol: Some("Ticker".into()),
            time_format: Some("epochMillis".into()),
            fields,
            ..Default::default()
        };
        let plan = Plan::from_mapping(&m).unwrap();
        assert_eq!(plan.time, "time");
        assert_eq!(plan.fields[0].column, "Last");
        assert_eq!(plan.fields[1].column, "size");
        let bound = plan.bind(Path::new("t.csv"), &header("time,Ticker,Last,size")).unwrap();
        assert_eq!(bound, Bound { symbol: 1, time: 0, fields: vec![Some(2), Some(3)] });

        assert!(Plan::from_mapping(&ColumnMapping::default()).unwrap_err().to_string().contains("mapping.kind"));
        let mut bad = m.clone();
        bad.fields.insert("open".into(), "O".into());
        assert!(Plan::from_mapping(&bad).unwrap_err().to_string().contains("mapping.fields.open"));
        let mut bad = m.clone();
        bad.time_format = Some("weird".into());
        assert!(Plan::from_mapping(&bad).unwrap_err().to_string().contains("timeFormat"));
    }

    #[test]
    fn bad_cells_have_reasons_naming_the_column() {
        let plan = Plan::from_mapping(&kaggle()).unwrap();
        let bound = plan.bind(Path::new("k.csv"), &header(KAGGLE_HEADER)).unwrap();
        let reason = |row: &[&str]| -> String {
            let mut vals = vec![0.0; plan.width()];
            match plan.map_row(&bound, |i| row.get(i).map_or(Cell::Null, |s| Cell::Text(s)), |_| true, &mut vals) {
                RowOutcome::Bad { reason, .. } => reason,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            reason(&["NYA", "1965-13-01", "1", "1", "1", "1", "1", "1", "1"]),
            "column `Date`: \"1965-13-01\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            reason(&["NYA", "1965-12-01", "abc", "1", "1", "1", "1", "1", "1"]),
            "column `Open`: \"abc\" is not a number"
        );
        assert_eq!(reason(&["NYA", "1965-12-01", "1", "", "1", "1", "1", "1", "1"]), "column `High`: missing value");
        assert_eq!(
            reason(&["NYA", "1965-12-01", "1", "1", "-2.5", "1", "1", "1", "1"]),
            "column `Low`: negative price -2.5"
        );
        assert_eq!(
            reason(&["NYA", "1965-12-01", "1", "1", "1", "NaN", "1", "1", "1"]),
            "column `Close`: NaN is not a finite number"
        );
        assert_eq!(
            reason(&["NYA", "1965-12-01", "1", "1", "1", "1", "1", "-1", "1"]),
            "column `Volume`: negative volume -1"
        );
        assert_eq!(reason(&["NYA", "1965-12-01", "1", "1", "1", "1"]), "column `Volume`: missing value");
        assert_eq!(reason(&["", "1965-12-01"]), "column `Index`: missing value");
        assert!(reason(&["A/B", "1965-12-01"]).contains("'/'"));
        // Optional fields: null is absent, garbage is bad.
        let row = ["NYA", "1965-12-01", "1", "1", "1", "1", "null", "1", ""];
        let mut vals = vec![0.0; plan.width()];
        assert!(matches!(map(&plan, &bound, &row, &mut vals), RowOutcome::Mapped { .. }));
        assert_eq!(
            reason(&["NYA", "1965-12-01", "1", "1", "1", "1", "x", "1", "1"]),
            "column `Adj Close`: \"x\" is not a number"
        );
    }

    #[test]
    fn sizes_must_be_whole_and_not_negative() {
        assert_eq!(read_value(Cell::Text("100"), FieldKind::Size), Ok(100.0));
        assert_eq!(read_value(Cell::Text("100.0"), FieldKind::Size), Ok(100.0));
        assert_eq!(read_value(Cell::Int(7), FieldKind::Size), Ok(7.0));
        assert!(read_value(Cell::Text("1.5"), FieldKind::Size).unwrap_err().contains("whole"));
        assert!(read_value(Cell::Text("-3"), FieldKind::Size).unwrap_err().contains("negative"));
        assert!(read_value(Cell::Float(-3.0), FieldKind::Size).unwrap_err().contains("negative"));
        assert!(read_value(Cell::Text("1e30"), FieldKind::Size).unwrap_err().contains("too large"));
        assert_eq!(read_value(Cell::Float(f64::NAN), FieldKind::OptionalPrice).map(f64::is_nan), Ok(true));
    }

    #[test]
    fn shard_filter_skips_other_symbols_and_reports_unreadable_ones_as_unowned() {
        let plan = Plan::from_mapping(&kaggle()).unwrap();
        let bound = plan.bind(Path::new("k.csv"), &header(KAGGLE_HEADER)).unwrap();
        let mut vals = vec![0.0; plan.width()];
        let row = ["HSI", "garbage"];
        let cell = |i: usize| row.get(i).map_or(Cell::Null, |s| Cell::Text(s));
        assert_eq!(plan.map_row(&bound, cell, |_| false, &mut vals), RowOutcome::NotOurs);
        assert!(matches!(plan.map_row(&bound, cell, |_| true, &mut vals), RowOutcome::Bad { ours: Some(true), .. }));
        let row = ["", "garbage"];
        let cell = |i: usize| row.get(i).map_or(Cell::Null, |s| Cell::Text(s));
        assert!(matches!(plan.map_row(&bound, cell, |_| true, &mut vals), RowOutcome::Bad { ours: None, .. }));
    }
}
