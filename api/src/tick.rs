//! The tick message format: what a producer writes into a topic and a sink reads back.
//!
//! Every Kafka message value is one JSON object, **format version 1**:
//!
//! ```json
//! {"v":1,"kind":"trade","symbol":"AAPL","ts_us":1764000000000000,"seq":42,"price":189.23,"size":100}
//! {"v":1,"kind":"quote","symbol":"AAPL","ts_us":1764000000000150,"seq":43,"bid":189.22,"bid_size":300,"ask":189.24,"ask_size":200}
//! {"v":1,"kind":"bar","symbol":"NYA","ts_us":-126316800000000,"seq":0,"open":528.69,"high":528.69,"low":528.69,"close":528.69,"volume":0.0}
//! ```
//!
//! * `v` — format version. Readers refuse versions they do not know (dead letter, reason
//!   `unsupported_version`); additive fields do not bump it, readers ignore unknown fields.
//! * `kind` — `trade`, `quote` or `bar` (an OHLCV bar, as replayed from daily files).
//! * `symbol` — 1 to [`MAX_SYMBOL_LEN`] bytes; also the Kafka message key, so one symbol's ticks
//!   stay in one partition, in order.
//! * `ts_us` — event time, UTC microseconds since the Unix epoch (negative before 1970; bars from
//!   the 1960s exist), within [`MIN_TS_US`, `MAX_TS_US`].
//! * `seq` — per-symbol sequence number: (`symbol`, `seq`) identifies a tick uniquely within
//!   one stream, which is what exactly-once delivery is checked against.
//! * prices are finite and not negative; sizes and volumes are not negative.
//!
//! [`Tick::decode`] is the one place a message is validated; it never panics, and every refusal
//! carries a [`RejectReason`] that the sink writes next to the raw bytes in its dead-letter prefix.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The version this crate writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Longest symbol accepted, in bytes.
pub const MAX_SYMBOL_LEN: usize = 32;
/// 1900-01-01T00:00:00Z in microseconds.
pub const MIN_TS_US: i64 = -2_208_988_800_000_000;
/// 2200-01-01T00:00:00Z in microseconds.
pub const MAX_TS_US: i64 = 7_258_118_400_000_000;

/// One market event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub symbol: String,
    /// Event time, UTC microseconds since the Unix epoch.
    pub ts_us: i64,
    /// Per-symbol sequence number.
    pub seq: u64,
    #[serde(flatten)]
    pub body: TickBody,
}

/// What happened: a trade, a top-of-book quote, or an OHLCV bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TickBody {
    Trade {
        price: f64,
        size: u64,
    },
    Quote {
        bid: f64,
        bid_size: u64,
        ask: f64,
        ask_size: u64,
    },
    Bar {
        open: f64,
        high: f64,
        low: f64,
        close: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adj_close: Option<f64>,
        volume: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_usd: Option<f64>,
    },
}

impl TickBody {
    /// The `kind` string as written on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            TickBody::Trade { .. } => "trade",
            TickBody::Quote { .. } => "quote",
            TickBody::Bar { .. } => "bar",
        }
    }
}

/// Why a message was refused. The `code` is stable (metrics label, dead-letter field).
#[derive(Debug, Clone, PartialEq)]
pub enum RejectReason {
    /// Larger than the configured limit.
    Oversized {
        bytes: usize,
        limit: usize,
    },
    /// Not a JSON object (syntax error, not UTF-8, wrong top-level type).
    Malformed(String),
    UnsupportedVersion(u64),
    MissingField(&'static str),
    /// A field has the wrong JSON type, or `kind` is unknown.
    WrongType {
        field: &'static str,
        detail: String,
    },
    /// A price is NaN or infinite (e.g. sent as a string `"NaN"` or an overflowing literal).
    NonFinite(&'static str),
    NegativePrice(&'static str),
    NegativeSize(&'static str),
    BadSymbol(String),
    TimestampOutOfRange(i64),
}

impl RejectReason {
    /// A short stable code: `oversized`, `malformed_json`, `unsupported_version`,
    /// `missing_field`, `wrong_type`, `non_finite`, `negative_price`, `negative_size`,
    /// `bad_symbol`, `timestamp_out_of_range`.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::Oversized { .. } => "oversized",
            RejectReason::Malformed(_) => "malformed_json",
            RejectReason::UnsupportedVersion(_) => "unsupported_version",
            RejectReason::MissingField(_) => "missing_field",
            RejectReason::WrongType { .. } => "wrong_type",
            RejectReason::NonFinite(_) => "non_finite",
            RejectReason::NegativePrice(_) => "negative_price",
            RejectReason::NegativeSize(_) => "negative_size",
            RejectReason::BadSymbol(_) => "bad_symbol",
            RejectReason::TimestampOutOfRange(_) => "timestamp_out_of_range",
        }
    }

    /// Every code, for pre-registering metric labels.
    pub const CODES: [&'static str; 10] = [
        "oversized",
        "malformed_json",
        "unsupported_version",
        "missing_field",
        "wrong_type",
        "non_finite",
        "negative_price",
        "negative_size",
        "bad_symbol",
        "timestamp_out_of_range",
    ];
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Oversized { bytes, limit } => {
                write!(f, "message of {bytes} bytes exceeds the limit of {limit} bytes")
            }
            RejectReason::Malformed(e) => write!(f, "not a JSON object: {e}"),
            RejectReason::UnsupportedVersion(v) => {
                write!(f, "format version {v} is not supported (this reader knows {FORMAT_VERSION})")
            }
            RejectReason::MissingField(name) => write!(f, "missing field `{name}`"),
            RejectReason::WrongType { field, detail } => write!(f, "field `{field}`: {detail}"),
            RejectReason::NonFinite(name) => write!(f, "field `{name}` is not a finite number"),
            RejectReason::NegativePrice(name) => write!(f, "price field `{name}` is negative"),
            RejectReason::NegativeSize(name) => write!(f, "size field `{name}` is negative"),
            RejectReason::BadSymbol(detail) => write!(f, "bad symbol: {detail}"),
            RejectReason::TimestampOutOfRange(ts) => {
                write!(f, "ts_us {ts} is outside 1900-01-01..2200-01-01")
            }
        }
    }
}

impl std::error::Error for RejectReason {}

/// The wire shape, permissive on purpose: every field optional and loosely typed, so that
/// [`Tick::decode`] can say precisely what is wrong instead of echoing a serde error.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default)]
    v: Option<serde_json::Value>,
    #[serde(default, borrow)]
    kind: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    symbol: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    ts_us: Option<serde_json::Value>,
    #[serde(default)]
    seq: Option<serde_json::Value>,
    #[serde(default)]
    price: Option<serde_json::Value>,
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default)]
    bid: Option<serde_json::Value>,
    #[serde(default)]
    bid_size: Option<serde_json::Value>,
    #[serde(default)]
    ask: Option<serde_json::Value>,
    #[serde(default)]
    ask_size: Option<serde_json::Value>,
    #[serde(default)]
    open: Option<serde_json::Value>,
    #[serde(default)]
    high: Option<serde_json::Value>,
    #[serde(default)]
    low: Option<serde_json::Value>,
    #[serde(default)]
    close: Option<serde_json::Value>,
    #[serde(default)]
    adj_close: Option<serde_json::Value>,
    #[serde(default)]
    volume: Option<serde_json::Value>,
    #[serde(default)]
    close_usd: Option<serde_json::Value>,
}

/// The wire shape of a valid message, typed: the fast path of [`Tick::decode`].
#[derive(Deserialize)]
struct Fast<'a> {
    v: Option<u64>,
    #[serde(borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    symbol: Option<std::borrow::Cow<'a, str>>,
    ts_us: Option<i64>,
    seq: Option<u64>,
    price: Option<f64>,
    size: Option<u64>,
    bid: Option<f64>,
    bid_size: Option<u64>,
    ask: Option<f64>,
    ask_size: Option<u64>,
    open: Option<f64>,
    high: Option<f64>,
    low: Option<f64>,
    close: Option<f64>,
    adj_close: Option<f64>,
    volume: Option<f64>,
    close_usd: Option<f64>,
}

fn req<'v>(v: &'v Option<serde_json::Value>, name: &'static str) -> Result<&'v serde_json::Value, RejectReason> {
    match v {
        None | Some(serde_json::Value::Null) => Err(RejectReason::MissingField(name)),
        Some(v) => Ok(v),
    }
}

fn as_f64(v: &serde_json::Value, name: &'static str) -> Result<f64, RejectReason> {
    match v {
        serde_json::Value::Number(n) => n.as_f64().ok_or(RejectReason::NonFinite(name)),
        serde_json::Value::String(s)
            if matches!(s.to_ascii_lowercase().as_str(), "nan" | "inf" | "-inf" | "infinity" | "-infinity") =>
        {
            Err(RejectReason::NonFinite(name))
        }
        other => Err(RejectReason::WrongType {
            field: name,
            detail: format!("expected a number, found {}", json_kind(other)),
        }),
    }
}

fn price(v: &Option<serde_json::Value>, name: &'static str) -> Result<f64, RejectReason> {
    let x = as_f64(req(v, name)?, name)?;
    if !x.is_finite() {
        return Err(RejectReason::NonFinite(name));
    }
    if x < 0.0 {
        return Err(RejectReason::NegativePrice(name));
    }
    Ok(x)
}

fn opt_price(v: &Option<serde_json::Value>, name: &'static str) -> Result<Option<f64>, RejectReason> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(_) => price(v, name).map(Some),
    }
}

fn size(v: &Option<serde_json::Value>, name: &'static str) -> Result<u64, RejectReason> {
    match req(v, name)? {
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(u)
            } else if n.as_i64().is_some() || n.as_f64().is_some_and(|f| f < 0.0) {
                Err(RejectReason::NegativeSize(name))
            } else {
                Err(RejectReason::WrongType { field: name, detail: format!("expected a whole number, found {n}") })
            }
        }
        other => Err(RejectReason::WrongType {
            field: name,
            detail: format!("expected a whole number, found {}", json_kind(other)),
        }),
    }
}

fn volume(v: &Option<serde_json::Value>, name: &'static str) -> Result<f64, RejectReason> {
    let x = as_f64(req(v, name)?, name)?;
    if !x.is_finite() {
        return Err(RejectReason::NonFinite(name));
    }
    if x < 0.0 {
        return Err(RejectReason::NegativeSize(name));
    }
    Ok(x)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn raw_str<'a>(
    raw: Option<&'a serde_json::value::RawValue>,
    name: &'static str,
) -> Result<std::borrow::Cow<'a, str>, RejectReason> {
    let raw = raw.ok_or(RejectReason::MissingField(name))?;
    let text = raw.get();
    if text == "null" {
        return Err(RejectReason::MissingField(name));
    }
    // Fast path: a plain string literal without escapes borrows straight from the input.
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') && !text.contains('\\') {
        return Ok(std::borrow::Cow::Borrowed(&text[1..text.len() - 1]));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) => Ok(std::borrow::Cow::Owned(s)),
        Ok(other) => Err(RejectReason::WrongType {
            field: name,
            detail: format!("expected a string, found {}", json_kind(&other)),
        }),
        Err(e) => Err(RejectReason::Malformed(e.to_string())),
    }
}

impl Tick {
    /// Validates and decodes one message value. `max_bytes` is the size limit (the sink's
    /// `maxMessageBytes`). Never panics, whatever the input.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Tick, RejectReason> {
        if bytes.len() > max_bytes {
            return Err(RejectReason::Oversized { bytes: bytes.len(), limit: max_bytes });
        }
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(RejectReason::Malformed("expected a JSON object".into()));
        }
        // The common case — a valid message — takes a typed parse with no intermediate values;
        // anything it does not accept is judged by the slow path below, which names the reason.
        if let Some(t) = Self::decode_valid(bytes) {
            return Ok(t);
        }
        let wire: Wire<'_> = match serde_json::from_slice(bytes) {
            Ok(w) => w,
            Err(e) => {
                // A well-formed document whose field has an impossible shape is reported as
                // such; syntax errors and non-objects as malformed.
                return Err(RejectReason::Malformed(e.to_string()));
            }
        };
        match req(&wire.v, "v")? {
            serde_json::Value::Number(n) if n.as_u64() == Some(FORMAT_VERSION as u64) => {}
            serde_json::Value::Number(n) => {
                return Err(match n.as_u64() {
                    Some(v) => RejectReason::UnsupportedVersion(v),
                    None => {
                        RejectReason::WrongType { field: "v", detail: format!("expected a whole number, found {n}") }
                    }
                });
            }
            other => {
                return Err(RejectReason::WrongType {
                    field: "v",
                    detail: format!("expected a whole number, found {}", json_kind(other)),
                });
            }
        }
        let symbol = raw_str(wire.symbol, "symbol")?;
        if symbol.is_empty() || symbol.len() > MAX_SYMBOL_LEN {
            return Err(RejectReason::BadSymbol(format!("length {} is outside 1..={MAX_SYMBOL_LEN}", symbol.len())));
        }
        if symbol.chars().any(|c| c.is_control() || c == '/' || c == '=') {
            return Err(RejectReason::BadSymbol(format!("{symbol:?} contains a control character, '/' or '='")));
        }
        let ts_us = match req(&wire.ts_us, "ts_us")? {
            serde_json::Value::Number(n) => n.as_i64().ok_or_else(|| RejectReason::WrongType {
                field: "ts_us",
                detail: format!("expected whole microseconds, found {n}"),
            })?,
            other => {
                return Err(RejectReason::WrongType {
                    field: "ts_us",
                    detail: format!("expected whole microseconds, found {}", json_kind(other)),
                });
            }
        };
        if !(MIN_TS_US..MAX_TS_US).contains(&ts_us) {
            return Err(RejectReason::TimestampOutOfRange(ts_us));
        }
        let seq = match req(&wire.seq, "seq")? {
            serde_json::Value::Number(n) => n.as_u64().filter(|s| *s <= i64::MAX as u64).ok_or_else(|| {
                RejectReason::WrongType { field: "seq", detail: format!("expected a whole number ≥ 0, found {n}") }
            })?,
            other => {
                return Err(RejectReason::WrongType {
                    field: "seq",
                    detail: format!("expected a whole number, found {}", json_kind(other)),
                });
            }
        };
        let kind = raw_str(wire.kind, "kind")?;
        let body = match kind.as_ref() {
            "trade" => TickBody::Trade { price: price(&wire.price, "price")?, size: size(&wire.size, "size")? },
            "quote" => TickBody::Quote {
                bid: price(&wire.bid, "bid")?,
                bid_size: size(&wire.bid_size, "bid_size")?,
                ask: price(&wire.ask, "ask")?,
                ask_size: size(&wire.ask_size, "ask_size")?,
            },
            "bar" => TickBody::Bar {
                open: price(&wire.open, "open")?,
                high: price(&wire.high, "high")?,
                low: price(&wire.low, "low")?,
                close: price(&wire.close, "close")?,
                adj_close: opt_price(&wire.adj_close, "adj_close")?,
                volume: volume(&wire.volume, "volume")?,
                close_usd: opt_price(&wire.close_usd, "close_usd")?,
            },
            other => {
                return Err(RejectReason::WrongType {
                    field: "kind",
                    detail: format!("unknown kind {other:?} (expected trade, quote or bar)"),
                });
            }
        };
        Ok(Tick { symbol: symbol.into_owned(), ts_us, seq, body })
    }

    /// Decodes a message only if it is entirely valid; `None` for anything else (the caller
    /// then finds the reason). Same rules as the slow path: a test checks they agree.
    fn decode_valid(bytes: &[u8]) -> Option<Tick> {
        let w: Fast<'_> = serde_json::from_slice(bytes).ok()?;
        if w.v? != FORMAT_VERSION as u64 {
            return None;
        }
        let symbol = w.symbol?;
        if symbol.is_empty()
            || symbol.len() > MAX_SYMBOL_LEN
            || symbol.chars().any(|c| c.is_control() || c == '/' || c == '=')
        {
            return None;
        }
        let ts_us = w.ts_us.filter(|t| (MIN_TS_US..MAX_TS_US).contains(t))?;
        let seq = w.seq.filter(|s| *s <= i64::MAX as u64)?;
        let price = |x: Option<f64>| x.filter(|v| v.is_finite() && *v >= 0.0);
        let optional = |x: Option<f64>| match x {
            None => Some(None),
            Some(v) => price(Some(v)).map(Some),
        };
        let body = match w.kind?.as_ref() {
            "trade" => TickBody::Trade { price: price(w.price)?, size: w.size? },
            "quote" => {
                TickBody::Quote { bid: price(w.bid)?, bid_size: w.bid_size?, ask: price(w.ask)?, ask_size: w.ask_size? }
            }
            "bar" => TickBody::Bar {
                open: price(w.open)?,
                high: price(w.high)?,
                low: price(w.low)?,
                close: price(w.close)?,
                adj_close: optional(w.adj_close)?,
                volume: price(w.volume)?,
                close_usd: optional(w.close_usd)?,
            },
            _ => return None,
        };
        Some(Tick { symbol: symbol.into_owned(), ts_us, seq, body })
    }

    /// Encodes as a version-1 message value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        self.encode_into(&mut out);
        out
    }

    /// Appends the version-1 encoding to `out` (no allocation when `out` has room).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        #[derive(Serialize)]
        struct Out<'a> {
            v: u32,
            #[serde(flatten)]
            tick: &'a Tick,
        }
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_writer(&mut *out, &Out { v: FORMAT_VERSION, tick: self })
            .expect("serialising a tick to memory cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade() -> Tick {
        Tick {
            symbol: "AAPL".into(),
            ts_us: 1_764_000_000_000_000,
            seq: 42,
            body: TickBody::Trade { price: 189.23, size: 100 },
        }
    }

    #[test]
    fn round_trips_every_kind() {
        let ticks = [
            trade(),
            Tick {
                symbol: "MSFT".into(),
                ts_us: 1,
                seq: 0,
                body: TickBody::Quote { bid: 1.0, bid_size: 2, ask: 1.01, ask_size: 3 },
            },
            Tick {
                symbol: "NYA".into(),
                ts_us: -126_230_400_000_000,
                seq: 7,
                body: TickBody::Bar {
                    open: 1.0,
                    high: 2.0,
                    low: 0.5,
                    close: 1.5,
                    adj_close: Some(1.5),
                    volume: 0.0,
                    close_usd: None,
                },
            },
        ];
        for t in ticks {
            let bytes = t.encode();
            assert_eq!(Tick::decode(&bytes, 1024).unwrap(), t, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn wire_shape_is_documented_one() {
        let s = String::from_utf8(trade().encode()).unwrap();
        assert_eq!(
            s,
            r#"{"v":1,"symbol":"AAPL","ts_us":1764000000000000,"seq":42,"kind":"trade","price":189.23,"size":100}"#
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let t = Tick::decode(
            br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1.5,"size":3,"venue":"XNAS"}"#,
            1024,
        )
        .unwrap();
        assert_eq!(t.body, TickBody::Trade { price: 1.5, size: 3 });
    }

    fn code(b: &[u8]) -> &'static str {
        Tick::decode(b, 256).unwrap_err().code()
    }

    #[test]
    fn every_rejection_has_its_reason() {
        assert_eq!(code(&[b' '; 300]), "oversized");
        assert_eq!(code(b"{not json"), "malformed_json");
        assert_eq!(code(b"[1,2]"), "malformed_json");
        assert_eq!(code(&[0xff, 0xfe]), "malformed_json");
        assert_eq!(code(br#"{"v":2,"kind":"trade"}"#), "unsupported_version");
        assert_eq!(code(br#"{"kind":"trade"}"#), "missing_field");
        assert_eq!(code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"size":3}"#), "missing_field");
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":"1.5","size":3}"#),
            "wrong_type"
        );
        assert_eq!(code(br#"{"v":1,"kind":"trade","symbol":7,"ts_us":5,"seq":1,"price":1.5,"size":3}"#), "wrong_type");
        assert_eq!(code(br#"{"v":1,"kind":"swap","symbol":"A","ts_us":5,"seq":1}"#), "wrong_type");
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":"NaN","size":3}"#),
            "non_finite"
        );
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1e999,"size":3}"#),
            "malformed_json"
        );
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":-1.5,"size":3}"#),
            "negative_price"
        );
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1.5,"size":-3}"#),
            "negative_size"
        );
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1.5,"size":1.5}"#),
            "wrong_type"
        );
        assert_eq!(
            code(
                br#"{"v":1,"kind":"quote","symbol":"A","ts_us":5,"seq":1,"bid":1,"bid_size":1,"ask":-1,"ask_size":1}"#
            ),
            "negative_price"
        );
        assert_eq!(code(br#"{"v":1,"kind":"trade","symbol":"","ts_us":5,"seq":1,"price":1.5,"size":3}"#), "bad_symbol");
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A/B","ts_us":5,"seq":1,"price":1.5,"size":3}"#),
            "bad_symbol"
        );
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":99999999999999999,"seq":1,"price":1.5,"size":3}"#),
            "timestamp_out_of_range"
        );
        assert_eq!(
            code(br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":-1,"price":1.5,"size":3}"#),
            "wrong_type"
        );
    }

    /// The fast path accepts exactly what the slow path accepts, with the same result.
    #[test]
    fn fast_and_slow_paths_agree() {
        let samples: Vec<&[u8]> = vec![
            br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1.5,"size":3}"#,
            br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1,"size":3}"#,
            br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1.5,"size":3.0}"#,
            br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":null,"size":3}"#,
            br#"{"v":1,"kind":"quote","symbol":"A","ts_us":5,"seq":1,"bid":1,"bid_size":1,"ask":2,"ask_size":1}"#,
            br#"{"v":1,"kind":"bar","symbol":"A","ts_us":5,"seq":1,"open":1,"high":1,"low":1,"close":1,"volume":0}"#,
            br#"{"v":1,"kind":"bar","symbol":"A","ts_us":5,"seq":1,"open":1,"high":1,"low":1,"close":1,"volume":0,"adj_close":-1}"#,
            br#"{"v":1,"kind":"bar","symbol":"A","ts_us":5,"seq":1,"open":1,"high":1,"low":1,"close":1,"volume":-1}"#,
            br#"{"v":1,"kind":"trade","symbol":"A","ts_us":5,"seq":9223372036854775808,"price":1.5,"size":3}"#,
            br#"{"v":1,"kind":"trade","symbol":"A","symbol":"B","ts_us":5,"seq":1,"price":1.5,"size":3}"#,
            br#"{"v":1,"kind":"trade","symbol":"BRK.B","ts_us":5,"seq":1,"price":1.5,"size":3}"#,
            br#"{"v":1.0,"kind":"trade","symbol":"A","ts_us":5,"seq":1,"price":1.5,"size":3}"#,
            br#"{"v":1,"kind":"trade","symbol":"","ts_us":5,"seq":1,"price":1.5,"size":3}"#,
        ];
        for b in samples {
            let fast = Tick::decode_valid(b);
            let full = Tick::decode(b, 1 << 20);
            assert_eq!(fast.as_ref(), full.as_ref().ok(), "{}: full path says {full:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn escaped_symbols_decode() {
        let t = Tick::decode(
            br#"{"v":1,"kind":"trade","symbol":"BRK\u002eB","ts_us":5,"seq":1,"price":1.5,"size":3}"#,
            1024,
        )
        .unwrap();
        assert_eq!(t.symbol, "BRK.B");
    }
}
