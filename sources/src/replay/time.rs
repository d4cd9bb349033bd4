//! Reading event times from a time column.
//!
//! `mapping.timeFormat` says how a **text** cell is written:
//!
//! | `timeFormat`      | example                      | meaning                                  |
//! |-------------------|------------------------------|------------------------------------------|
//! | `rfc3339`         | `2024-03-01T14:30:00.25Z`    | with its offset (the default)            |
//! | `date`            | `2024-03-01`                 | midnight UTC                             |
//! | `epochSeconds`    | `1709303400` or `…400.25`    | seconds since 1970, fractions allowed    |
//! | `epochMillis`     | `1709303400250`              | milliseconds since 1970                  |
//! | `epochMicros`     | `1709303400250000`           | microseconds since 1970                  |
//! | anything with `%` | `%Y-%m-%d %H:%M:%S`          | a chrono format; UTC unless it has `%z`; |
//! |                   |                              | a date-only format means midnight UTC    |
//!
//! Numeric cells (Parquet integer or float columns) are read as epoch values in the unit of
//! an `epoch*` format, and need one. Parquet `Timestamp`, `Date32` and `Date64` columns carry
//! their own unit and are taken as they are, whatever `timeFormat` says (a timestamp with a
//! time zone is an instant; one without is read as UTC).
//!
//! Every result is checked against the tick format's range (1900–2200).

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDate};
use ticklake_api::tick::{MAX_TS_US, MIN_TS_US};

/// A parsed `timeFormat`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TimeFormat {
    Rfc3339,
    Date,
    Epoch { unit: EpochUnit },
    Pattern { items: Vec<Item<'static>>, text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochUnit {
    Seconds,
    Millis,
    Micros,
}

impl EpochUnit {
    fn micros_per_unit(self) -> i64 {
        match self {
            EpochUnit::Seconds => 1_000_000,
            EpochUnit::Millis => 1_000,
            EpochUnit::Micros => 1,
        }
    }
}

impl TimeFormat {
    /// Parses the spec's `timeFormat` (absent = `rfc3339`). The error names the problem.
    pub(crate) fn from_spec(spec: Option<&str>) -> Result<TimeFormat, String> {
        let Some(text) = spec else { return Ok(TimeFormat::Rfc3339) };
        Ok(match text {
            "rfc3339" => TimeFormat::Rfc3339,
            "date" => TimeFormat::Date,
            "epochSeconds" => TimeFormat::Epoch { unit: EpochUnit::Seconds },
            "epochMillis" => TimeFormat::Epoch { unit: EpochUnit::Millis },
            "epochMicros" => TimeFormat::Epoch { unit: EpochUnit::Micros },
            t if t.contains('%') => {
                if t.len() > 256 {
                    return Err("mapping.timeFormat is longer than 256 bytes".into());
                }
                let items = StrftimeItems::new(t)
                    .parse_to_owned()
                    .map_err(|e| format!("mapping.timeFormat {t:?} is not a valid chrono format: {e}"))?;
                TimeFormat::Pattern { items, text: t.to_string() }
            }
            other => {
                return Err(format!(
                    "mapping.timeFormat {other:?} is unknown: use rfc3339, date, epochSeconds, \
                     epochMillis, epochMicros or a chrono format such as %Y-%m-%d %H:%M:%S"
                ));
            }
        })
    }

    /// The epoch unit, if this is an `epoch*` format.
    pub(crate) fn epoch_unit(&self) -> Option<EpochUnit> {
        match self {
            TimeFormat::Epoch { unit } => Some(*unit),
            _ => None,
        }
    }

    /// Event time of a text cell, UTC µs.
    pub(crate) fn parse_text(&self, s: &str) -> Result<i64, String> {
        let us = match self {
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(s)
                .map_err(|_| format!("{s:?} is not an RFC 3339 time"))?
                .timestamp_micros(),
            TimeFormat::Date => {
                s.parse::<NaiveDate>().map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)")).and_then(date_micros)?
            }
            TimeFormat::Epoch { unit } => {
                if let Ok(v) = s.parse::<i64>() {
                    return self.parse_int(v);
                }
                match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => return epoch_float(v, *unit),
                    _ => return Err(format!("{s:?} is not a number of {}", unit_name(*unit))),
                }
            }
            TimeFormat::Pattern { items, text } => {
                pattern_micros(s, items).ok_or_else(|| format!("{s:?} does not match the time format {text:?}"))?
            }
        };
        in_range(us)
    }

    /// Event time of an integer cell: an epoch value in this format's unit.
    pub(crate) fn parse_int(&self, v: i64) -> Result<i64, String> {
        match self {
            TimeFormat::Epoch { unit } => v
                .checked_mul(unit.micros_per_unit())
                .ok_or_else(|| format!("{v} {} is out of range", unit_name(*unit)))
                .and_then(in_range),
            _ => Err(format!("{v} is a number; set mapping.timeFormat to epochSeconds, epochMillis or epochMicros")),
        }
    }

    /// Event time of a float cell: an epoch value in this format's unit.
    pub(crate) fn parse_float(&self, v: f64) -> Result<i64, String> {
        match self {
            TimeFormat::Epoch { unit } if v.is_finite() => epoch_float(v, *unit),
            TimeFormat::Epoch { .. } => Err(format!("{v} is not a finite time")),
            _ => Err(format!("{v} is a number; set mapping.timeFormat to epochSeconds, epochMillis or epochMicros")),
        }
    }
}

fn unit_name(unit: EpochUnit) -> &'static str {
    match unit {
        EpochUnit::Seconds => "seconds",
        EpochUnit::Millis => "milliseconds",
        EpochUnit::Micros => "microseconds",
    }
}

fn epoch_float(v: f64, unit: EpochUnit) -> Result<i64, String> {
    let us = (v * unit.micros_per_unit() as f64).round();
    // Both bounds are far inside i64, so the range check also guards the cast.
    if us >= MIN_TS_US as f64 && us < MAX_TS_US as f64 {
        Ok(us as i64)
    } else {
        Err(format!("{v} {} is outside 1900-01-01..2200-01-01", unit_name(unit)))
    }
}

fn date_micros(d: NaiveDate) -> Result<i64, String> {
    Ok(d.and_hms_opt(0, 0, 0).ok_or("impossible midnight")?.and_utc().timestamp_micros())
}

fn pattern_micros(s: &str, items: &[Item<'static>]) -> Option<i64> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    if parsed.offset().is_some() {
        return parsed.to_datetime().ok().map(|dt| dt.timestamp_micros());
    }
    match parsed.to_naive_datetime_with_offset(0) {
        Ok(dt) => Some(dt.and_utc().timestamp_micros()),
        // A date-only format: midnight UTC.
        Err(_) => parsed.to_naive_date().ok().and_then(|d| date_micros(d).ok()),
    }
}

/// Checks a time against the tick format's range.
pub(crate) fn in_range(us: i64) -> Result<i64, String> {
    if (MIN_TS_US..MAX_TS_US).contains(&us) {
        Ok(us)
    } else {
        Err(format!("time {us} µs is outside 1900-01-01..2200-01-01"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> TimeFormat {
        TimeFormat::from_spec(Some(s)).unwrap()
    }

    const T: i64 = 1_709_303_400_000_000; // 2024-03-01T14:30:00Z

    #[test]
    fn every_format_reads_its_examples() {
        let rfc = TimeFormat::from_spec(None).unwrap();
        assert_eq!(rfc.parse_text("2024-03-01T14:30:00Z"), Ok(T));
        assert_eq!(rfc.parse_text("2024-03-01T15:30:00.25+01:00"), Ok(T + 250_000));
        assert_eq!(f("date").parse_text("2024-03-01"), Ok(T - (14 * 3600 + 1800) * 1_000_000));
        assert_eq!(f("date").parse_text("1965-01-05"), Ok(-157_420_800_000_000));
        assert_eq!(f("epochSeconds").parse_text("1709303400"), Ok(T));
        assert_eq!(f("epochSeconds").parse_text("1709303400.25"), Ok(T + 250_000));
        assert_eq!(f("epochMillis").parse_text("1709303400250"), Ok(T + 250_000));
        assert_eq!(f("epochMicros").parse_text("1709303400250000"), Ok(T + 250_000));
        assert_eq!(f("epochMillis").parse_int(1_709_303_400_250), Ok(T + 250_000));
        assert_eq!(f("epochSeconds").parse_float(1_709_303_400.5), Ok(T + 500_000));
        assert_eq!(f("%Y-%m-%d %H:%M:%S").parse_text("2024-03-01 14:30:00"), Ok(T));
        assert_eq!(f("%d/%m/%Y").parse_text("01/03/2024"), Ok(T - (14 * 3600 + 1800) * 1_000_000));
        assert_eq!(f("%Y-%m-%d %H:%M:%S %z").parse_text("2024-03-01 09:30:00 -0500"), Ok(T));
    }

    #[test]
    fn bad_times_say_why() {
        assert!(f("date").parse_text("2024-13-01").unwrap_err().contains("not a date"));
        assert!(f("date").parse_text("").is_err());
        assert!(f("rfc3339").parse_text("2024-03-01").unwrap_err().contains("RFC 3339"));
        assert!(f("epochSeconds").parse_text("soon").unwrap_err().contains("seconds"));
        assert!(f("epochSeconds").parse_text("NaN").is_err());
        assert!(f("epochSeconds").parse_text("1e30").unwrap_err().contains("outside"));
        assert!(f("epochMicros").parse_int(i64::MAX).unwrap_err().contains("outside"));
        assert!(f("epochSeconds").parse_int(i64::MAX).unwrap_err().contains("out of range"));
        assert!(f("date").parse_int(5).unwrap_err().contains("timeFormat"));
        assert!(f("%Y-%m-%d").parse_text("01/03/2024").unwrap_err().contains("does not match"));
        assert!(f("date").parse_text("2300-01-01").unwrap_err().contains("outside"));
        assert!(TimeFormat::from_spec(Some("iso")).unwrap_err().contains("unknown"));
        assert!(TimeFormat::from_spec(Some("%Q")).is_err());
    }
}
