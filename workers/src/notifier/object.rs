//! What one landed object is: its key read back into the sink's layout (Hive partition, Kafka
//! partition and offsets), the table it belongs to, the Athena query that shows it, and the
//! attributes filter policies see. Pure: no I/O.

use crate::sink::layout::Layout;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use ticklake_api::crd::{S3SinkSpec, TimeGranularity};
use ticklake_notify::event::{OBJECT_CREATED, stable_id};

/// Why an announced key gets no notification (the `reason` label of
/// `ticklake_notifier_skipped_keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// An event for another bucket than the sink's.
    OtherBucket,
    /// Outside the subscription's `watch.prefix` / `watch.suffix`.
    NotWatched,
    /// A dead-letter object of the sink (refused messages, not table data).
    DeadLetter,
    /// One of the sink's claims (`_ticklake/claims/…`), or anything else under `_ticklake/`.
    Claim,
    /// A temporary object (`.tmp…` names).
    Temporary,
    /// Any other key that is not a data object of the sink's layout (other topic, other format,
    /// unknown folders).
    NotLayout,
}

impl Skip {
    pub const ALL: [Skip; 6] =
        [Skip::OtherBucket, Skip::NotWatched, Skip::DeadLetter, Skip::Claim, Skip::Temporary, Skip::NotLayout];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::OtherBucket => "other_bucket",
            Skip::NotWatched => "not_watched",
            Skip::DeadLetter => "dead_letter",
            Skip::Claim => "claim",
            Skip::Temporary => "temporary",
            Skip::NotLayout => "not_layout",
        }
    }
}

/// The Hive partition of an object: its folders below the sink's prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    pub year: String,
    pub month: String,
    pub day: String,
    /// `None` with day granularity.
    pub hour: Option<String>,
    /// With `partitioning.bySymbol`.
    pub symbol: Option<String>,
}

impl Partition {
    /// `year=2026/month=01/day=02/hour=03[/symbol=AAPL]`, as in the key.
    pub fn path(&self) -> String {
        let mut p = format!("year={}/month={}/day={}", self.year, self.month, self.day);
        if let Some(h) = &self.hour {
            let _ = write!(p, "/hour={h}");
        }
        if let Some(s) = &self.symbol {
            let _ = write!(p, "/symbol={s}");
        }
        p
    }

    /// `2026-01-02 03h[ AAPL]`, for subjects.
    pub fn short(&self) -> String {
        let mut p = format!("{}-{}-{}", self.year, self.month, self.day);
        if let Some(h) = &self.hour {
            let _ = write!(p, " {h}h");
        }
        if let Some(s) = &self.symbol {
            let _ = write!(p, " {s}");
        }
        p
    }

    /// [`Partition::short`] without the symbol: `2026-01-02 03h`.
    pub fn time_short(&self) -> String {
        match &self.hour {
            Some(h) => format!("{}-{}-{} {h}h", self.year, self.month, self.day),
            None => format!("{}-{}-{}", self.year, self.month, self.day),
        }
    }

    /// The time folders as one sortable string: `2026010203` (`20260102` by day).
    pub fn time_key(&self) -> String {
        format!("{}{}{}{}", self.year, self.month, self.day, self.hour.as_deref().unwrap_or(""))
    }
}

/// What a data key says about its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub partition: Partition,
    /// The Kafka partition the batch came from.
    pub kafka_partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Which keys of the sink's bucket the subscription wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub bucket: String,
    pub layout: Layout,
    /// The full key prefix: the sink's prefix as a folder, then `watch.prefix`.
    pub key_prefix: String,
    pub suffix: String,
}

impl Watch {
    /// The keys a subscription watching `sink` with `watch_prefix`/`watch_suffix` wants.
    pub fn new(bucket: &str, layout: Layout, watch_prefix: &str, watch_suffix: &str) -> Watch {
        let key_prefix = ticklake_aws::s3notify::key_prefix(&layout.prefix, watch_prefix);
        Watch { bucket: bucket.to_string(), layout, key_prefix, suffix: watch_suffix.to_string() }
    }

    /// Reads a key of `bucket` back into the layout, or says why it is skipped.
    pub fn classify(&self, bucket: &str, key: &str) -> Result<KeyInfo, Skip> {
        if bucket != self.bucket {
            return Err(Skip::OtherBucket);
        }
        if !key.starts_with(&self.key_prefix) || !key.ends_with(&self.suffix) {
            return Err(Skip::NotWatched);
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        if name.starts_with(".tmp") || name.ends_with(".tmp") {
            return Err(Skip::Temporary);
        }
        if self.layout.is_dead_letter_key(key) {
            return Err(Skip::DeadLetter);
        }
        let rest = if self.layout.prefix.is_empty() {
            key
        } else {
            key.strip_prefix(&self.layout.prefix).and_then(|r| r.strip_prefix('/')).ok_or(Skip::NotLayout)?
        };
        if rest.starts_with("_ticklake/") {
            return Err(Skip::Claim);
        }
        parse_data_key(&self.layout, rest).ok_or(Skip::NotLayout)
    }
}

fn folder<'a>(
    seg: Option<&'a str>,
    name: &str,
    digits: usize,
    range: std::ops::RangeInclusive<u32>,
) -> Option<&'a str> {
    let v = seg?.strip_prefix(name)?.strip_prefix('=')?;
    let ok = v.len() == digits && v.bytes().all(|b| b.is_ascii_digit()) && range.contains(&v.parse().ok()?);
    ok.then_some(v)
}

/// `year=…/month=…/day=…[/hour=…][/symbol=…]/<topic>+<p>+<first>+<last>.<ext>` (the key below
/// the prefix) → its parts.
fn parse_data_key(layout: &Layout, rest: &str) -> Option<KeyInfo> {
    let mut segs = rest.split('/');
    let year = folder(segs.next(), "year", 4, 0..=9999)?;
    let month = folder(segs.next(), "month", 2, 1..=12)?;
    let day = folder(segs.next(), "day", 2, 1..=31)?;
    let hour = match layout.granularity {
        TimeGranularity::Hour => Some(folder(segs.next(), "hour", 2, 0..=23)?.to_string()),
        TimeGranularity::Day => None,
    };
    let symbol = if layout.by_symbol {
        let s = segs.next()?.strip_prefix("symbol=")?;
        if s.is_empty() {
            return None;
        }
        Some(s.to_string())
    } else {
        None
    };
    let name = segs.next()?;
    if segs.next().is_some() {
        return None;
    }
    let stem = name.strip_suffix(layout.extension())?.strip_suffix('.')?;
    // The topic has no `+` (letters, digits, `.`, `_`, `-`): split from the right.
    let mut parts = stem.rsplitn(4, '+');
    let last = parts.next()?;
    let first = parts.next()?;
    let p = parts.next()?;
    let topic = parts.next()?;
    let offset = |s: &str| (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<i64>().ok())?;
    let (first_offset, last_offset) = (offset(first)?, offset(last)?);
    if topic != layout.topic || first_offset > last_offset {
        return None;
    }
    // As the sink writes it: no sign, no leading zeros.
    let kafka_partition: i32 = p.parse().ok().filter(|n: &i32| *n >= 0 && n.to_string() == p)?;
    Some(KeyInfo {
        partition: Partition { year: year.to_string(), month: month.to_string(), day: day.to_string(), hour, symbol },
        kafka_partition,
        first_offset,
        last_offset,
    })
}

/// Where the sink's data is catalogued, for the "what landed" text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// `database.table` with a Glue catalogue, else the topic.
    pub display: String,
    /// Glue database and table (both or neither).
    pub glue: Option<(String, String)>,
    /// The sink's Athena workgroup, if it has one.
    pub workgroup: Option<String>,
}

impl Table {
    /// The table of an `S3Sink` named `name` in `namespace`: the one the operator's Glue
    /// reconciler keeps (`ticklake_aws::glue::desired`), or the topic without `spec.glue`.
    pub fn of_sink(namespace: &str, name: &str, spec: &S3SinkSpec) -> Table {
        let owner = ticklake_aws::Owner::new("S3Sink", namespace, name);
        let glue = ticklake_aws::glue::desired(spec, &owner, "", None).map(|g| (g.database, g.table));
        Table {
            display: match &glue {
                Some((db, t)) => format!("{db}.{t}"),
                None => spec.topic.clone(),
            },
            glue,
            workgroup: spec.athena.as_ref().map(|a| a.workgroup.clone()),
        }
    }
}

/// Rows shown by the ready-to-run queries.
pub const QUERY_LIMIT: u32 = 100;

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The Athena query that shows one partition:
/// `SELECT * FROM "db"."t" WHERE year = '2026' AND month = '01' AND day = '02' AND hour = '03'
/// [AND symbol = 'AAPL'] LIMIT 100`. `None` without a Glue table.
pub fn partition_query(table: &Table, p: &Partition) -> Option<String> {
    let (db, t) = table.glue.as_ref()?;
    let mut q = format!(
        "SELECT * FROM \"{db}\".\"{t}\" WHERE year = {} AND month = {} AND day = {}",
        sql_string(&p.year),
        sql_string(&p.month),
        sql_string(&p.day)
    );
    if let Some(h) = &p.hour {
        let _ = write!(q, " AND hour = {}", sql_string(h));
    }
    if let Some(s) = &p.symbol {
        let _ = write!(q, " AND symbol = {}", sql_string(s));
    }
    let _ = write!(q, " LIMIT {QUERY_LIMIT}");
    Some(q)
}

/// Symbols listed in a digest's query at most; with more, the query covers every symbol of the
/// time range.
pub const QUERY_MAX_SYMBOLS: usize = 50;

/// The Athena query that shows every partition of a digest: one partition exactly as
/// [`partition_query`], several as the time range they span
/// (`concat(year, month, day[, hour]) BETWEEN '2026010203' AND '2026010205'`, the partition
/// columns being strings) and their symbols (`symbol IN (…)`, up to [`QUERY_MAX_SYMBOLS`]).
pub fn partitions_query(table: &Table, partitions: &[&Partition]) -> Option<String> {
    let (db, t) = table.glue.as_ref()?;
    let first = partitions.iter().min()?;
    if partitions.iter().all(|p| p == first) {
        return partition_query(table, first);
    }
    let lo = partitions.iter().map(|p| p.time_key()).min()?;
    let hi = partitions.iter().map(|p| p.time_key()).max()?;
    let columns = if first.hour.is_some() { "year, month, day, hour" } else { "year, month, day" };
    let mut q = if lo == hi {
        format!("SELECT * FROM \"{db}\".\"{t}\" WHERE concat({columns}) = {}", sql_string(&lo))
    } else {
        format!(
            "SELECT * FROM \"{db}\".\"{t}\" WHERE concat({columns}) BETWEEN {} AND {}",
            sql_string(&lo),
            sql_string(&hi)
        )
    };
    let mut symbols: Vec<&str> = partitions.iter().filter_map(|p| p.symbol.as_deref()).collect();
    symbols.sort_unstable();
    symbols.dedup();
    if !symbols.is_empty() && symbols.len() <= QUERY_MAX_SYMBOLS {
        let list: Vec<String> = symbols.iter().map(|s| sql_string(s)).collect();
        let _ = write!(q, " AND symbol IN ({})", list.join(", "));
    }
    let _ = write!(q, " LIMIT {QUERY_LIMIT}");
    Some(q)
}

/// An object announced by S3, read back into the layout, with its rows when the footer told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Landed {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub etag: String,
    pub sequencer: String,
    /// As S3 sent it (ISO 8601); may be empty.
    pub event_time: String,
    pub info: KeyInfo,
    /// From the Parquet footer; `None` when it could not be read.
    pub rows: Option<u64>,
    /// [`event_id`].
    pub event_id: String,
}

/// The de-duplication id of an object-created event: `evt_` and 32 hex digits of SHA-256 over
/// `object.created`, bucket, key and ETag (the ETag is the content's: the same batch rewritten
/// after a crash is the same event, other content under the key a new one); over the S3
/// sequencer instead when the event has no ETag.
pub fn event_id(bucket: &str, key: &str, etag: &str, sequencer: &str) -> String {
    let version = if etag.is_empty() { sequencer } else { etag };
    stable_id("evt", &[OBJECT_CREATED, bucket, key, version])
}

/// `s3://bucket/key`.
pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// The S3 console page of an object.
pub fn console_url(region: &str, bucket: &str, key: &str) -> String {
    let mut enc = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            enc.push(b as char);
        } else {
            let _ = write!(enc, "%{b:02X}");
        }
    }
    format!("https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={enc}")
}

/// Who wrote the objects, for attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The `S3Sink`'s name.
    pub sink: String,
    pub topic: String,
    pub table: Table,
}

/// The attributes of an object that filter policies see — notify's `object.created` attributes
/// (`eventType`, `bucket`, `key`, `sink`, `topic`, `partition` (the Kafka partition), `rows`,
/// `bytes`, `objectKind`), so a policy reads the same here as in `ticklake local up`, plus
/// `event_id`, `kind` (`object`), `table`, and the Hive partition (`year`, `month`, `day`,
/// `hour`, `symbol`). `rows` is absent when the footer could not be read.
pub fn attributes(src: &Source, o: &Landed) -> BTreeMap<String, Value> {
    let mut a = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        a.insert(k.to_string(), v);
    };
    put("eventType", Value::from(OBJECT_CREATED));
    put("event_id", Value::from(o.event_id.clone()));
    put("kind", Value::from("object"));
    put("bucket", Value::from(o.bucket.clone()));
    put("key", Value::from(o.key.clone()));
    put("sink", Value::from(src.sink.clone()));
    put("topic", Value::from(src.topic.clone()));
    put("table", Value::from(src.table.display.clone()));
    put("partition", Value::from(o.info.kafka_partition));
    put("objectKind", Value::from("data"));
    put("bytes", Value::from(o.bytes));
    if let Some(r) = o.rows {
        put("rows", Value::from(r));
    }
    let p = &o.info.partition;
    put("year", Value::from(p.year.clone()));
    put("month", Value::from(p.month.clone()));
    put("day", Value::from(p.day.clone()));
    if let Some(h) = &p.hour {
        put("hour", Value::from(h.clone()));
    }
    if let Some(s) = &p.symbol {
        put("symbol", Value::from(s.clone()));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticklake_api::crd::SinkFormat;

    fn layout(prefix: &str, granularity: TimeGranularity, by_symbol: bool) -> Layout {
        Layout {
            prefix: prefix.into(),
            topic: "ticks".into(),
            granularity,
            by_symbol,
            format: SinkFormat::Parquet,
            dead_letter_prefix: "_dead_letters".into(),
        }
    }

    const KEY: &str =
        "lake/ticks/year=2026/month=01/day=02/hour=03/ticks+3+00000000000000000009+00000000000000001200.parquet";

    #[test]
    fn data_keys_read_back_into_the_layout() {
        let w = Watch::new("b", layout("lake/ticks", TimeGranularity::Hour, false), "", ".parquet");
        let i = w.classify("b", KEY).unwrap();
        assert_eq!(i.partition.path(), "year=2026/month=01/day=02/hour=03");
        assert_eq!(i.partition.short(), "2026-01-02 03h");
        assert_eq!(i.partition.time_key(), "2026010203");
        assert_eq!((i.kafka_partition, i.first_offset, i.last_offset), (3, 9, 1200));

        // What the sink writes is what reads back, for every layout.
        for (prefix, g, sym) in [
            ("", TimeGranularity::Hour, false),
            ("a/b", TimeGranularity::Day, false),
            ("x", TimeGranularity::Hour, true),
            ("", TimeGranularity::Day, true),
        ] {
            let l = layout(prefix, g, sym);
            let folder = l.folder(1_767_323_045_000_000, "BRK.B");
            let key = l.data_key(&folder, 12, 0, 41);
            let w = Watch::new("b", l.clone(), "", "");
            let i = w.classify("b", &key).unwrap_or_else(|s| panic!("{key}: {s:?}"));
            assert_eq!(i.partition.path(), folder, "{key}");
            assert_eq!((i.kafka_partition, i.first_offset, i.last_offset), (12, 0, 41));
            assert_eq!(i.partition.symbol.as_deref(), sym.then_some("BRK.B"));
            assert_eq!(i.partition.hour.is_some(), g == TimeGranularity::Hour);
        }
    }

    #[test]
    fn other_keys_are_skipped_with_a_reason() {
        let l = layout("lake/ticks", TimeGranularity::Hour, false);
        let w = Watch::new("b", l.clone(), "", ".parquet");
        assert_eq!(w.classify("other", KEY), Err(Skip::OtherBucket));
        assert_eq!(w.classify("b", "elsewhere/x.parquet"), Err(Skip::NotWatched));
        assert_eq!(
            w.classify("b", "lake/ticksother/year=2026/x.parquet"),
            Err(Skip::NotWatched),
            "a folder, not a prefix"
        );
        assert_eq!(w.classify("b", &KEY.replace(".parquet", ".jsonl")), Err(Skip::NotWatched), "suffix");
        let all = Watch::new("b", l.clone(), "", "");
        assert_eq!(all.classify("b", &l.dead_letter_key(0, 1, 2)), Err(Skip::DeadLetter));
        assert_eq!(all.classify("b", &l.claim_key(3, 9)), Err(Skip::Claim));
        assert_eq!(all.classify("b", "lake/ticks/year=2026/month=01/day=02/hour=03/.tmp-12-1"), Err(Skip::Temporary));
        assert_eq!(all.classify("b", &format!("{KEY}.tmp")), Err(Skip::Temporary));
        for bad in [
            KEY.replace(".parquet", ".jsonl"),
            KEY.replace("ticks+3", "quotes+3"),
            KEY.replace("hour=03", "hour=24"),
            KEY.replace("month=01", "month=13"),
            KEY.replace("month=01", "month=1"),
            KEY.replace("/hour=03", ""),
            KEY.replace("hour=03/", "hour=03/extra/"),
            KEY.replace("+3+", "+-3+"),
            KEY.replace("+3+", "+03+"),
            KEY.replace("+00000000000000000009+", "+9+"),
            KEY.replace("00000000000000000009+00000000000000001200", "00000000000000001201+00000000000000001200"),
            "lake/ticks/year=2026/notes.txt".to_string(),
        ] {
            assert_eq!(all.classify("b", &bad), Err(Skip::NotLayout), "{bad}");
        }
        // A watch prefix below the sink's prefix narrows what is wanted.
        let narrow = Watch::new("b", l, "year=2026/month=02/", "");
        assert_eq!(narrow.key_prefix, "lake/ticks/year=2026/month=02/");
        assert_eq!(narrow.classify("b", KEY), Err(Skip::NotWatched));
    }

    fn table(glue: bool) -> Table {
        Table {
            display: if glue { "market.ticks".into() } else { "ticks".into() },
            glue: glue.then(|| ("market".to_string(), "ticks".to_string())),
            workgroup: None,
        }
    }

    fn part(day: &str, hour: Option<&str>, symbol: Option<&str>) -> Partition {
        Partition {
            year: "2026".into(),
            month: "01".into(),
            day: day.into(),
            hour: hour.map(String::from),
            symbol: symbol.map(String::from),
        }
    }

    #[test]
    fn athena_queries_select_the_partitions() {
        let p = part("02", Some("03"), None);
        assert_eq!(
            partition_query(&table(true), &p).unwrap(),
            "SELECT * FROM \"market\".\"ticks\" WHERE year = '2026' AND month = '01' AND day = '02' AND hour = '03' LIMIT 100"
        );
        assert_eq!(partition_query(&table(false), &p), None, "no catalogue, no query");
        let s = part("02", None, Some("O'NEIL"));
        assert_eq!(
            partition_query(&table(true), &s).unwrap(),
            "SELECT * FROM \"market\".\"ticks\" WHERE year = '2026' AND month = '01' AND day = '02' AND symbol = 'O''NEIL' LIMIT 100"
        );
        // One partition (however often): the same query.
        assert_eq!(partitions_query(&table(true), &[&p, &p]), partition_query(&table(true), &p));
        let (a, b, c) = (
            part("02", Some("03"), Some("AAPL")),
            part("02", Some("05"), Some("MSFT")),
            part("02", Some("04"), Some("AAPL")),
        );
        assert_eq!(
            partitions_query(&table(true), &[&a, &b, &c]).unwrap(),
            "SELECT * FROM \"market\".\"ticks\" WHERE concat(year, month, day, hour) BETWEEN '2026010203' AND '2026010205' \
             AND symbol IN ('AAPL', 'MSFT') LIMIT 100"
        );
        let (d, e) = (part("02", Some("03"), Some("AAPL")), part("02", Some("03"), Some("IBM")));
        assert_eq!(
            partitions_query(&table(true), &[&d, &e]).unwrap(),
            "SELECT * FROM \"market\".\"ticks\" WHERE concat(year, month, day, hour) = '2026010203' AND symbol IN ('AAPL', 'IBM') LIMIT 100"
        );
        let (f, g) = (part("02", None, None), part("09", None, None));
        assert_eq!(
            partitions_query(&table(true), &[&g, &f]).unwrap(),
            "SELECT * FROM \"market\".\"ticks\" WHERE concat(year, month, day) BETWEEN '20260102' AND '20260109' LIMIT 100"
        );
        let many: Vec<Partition> =
            (0..=QUERY_MAX_SYMBOLS).map(|i| part("02", Some("03"), Some(&format!("S{i}")))).collect();
        let refs: Vec<&Partition> = many.iter().collect();
        assert!(!partitions_query(&table(true), &refs).unwrap().contains("symbol"), "too many symbols: all of them");
        assert_eq!(partitions_query(&table(false), &[&f, &g]), None);
    }

    #[test]
    fn tables_are_the_operators() {
        let spec: S3SinkSpec = serde_json::from_value(serde_json::json!({
            "topic": "Ticks.V1", "bucket": "lake", "prefix": "data/ticks",
            "glue": {"database": "market", "mode": "crawler"},
            "athena": {"workgroup": "wg", "resultLocation": "s3://results/"}
        }))
        .unwrap();
        let t = Table::of_sink("ns", "s", &spec);
        // A crawler names the table after the prefix's last folder.
        assert_eq!(t.display, "market.ticks");
        assert_eq!(t.glue, Some(("market".into(), "ticks".into())));
        assert_eq!(t.workgroup.as_deref(), Some("wg"));
        let mut projection = spec.clone();
        projection.glue.as_mut().unwrap().mode = ticklake_api::crd::CatalogMode::Projection;
        assert_eq!(Table::of_sink("ns", "s", &projection).display, "market.ticks_v1", "the topic's default name");
        let mut bare = spec;
        bare.glue = None;
        bare.athena = None;
        assert_eq!(Table::of_sink("ns", "s", &bare), Table { display: "Ticks.V1".into(), glue: None, workgroup: None });
    }

    #[test]
    fn event_ids_follow_the_content() {
        let a = event_id("b", "k", "etag1", "0001");
        assert!(a.starts_with("evt_") && a.len() == 36);
        assert_eq!(a, event_id("b", "k", "etag1", "0002"), "a rewrite of the same bytes is the same event");
        assert_ne!(a, event_id("b", "k", "etag2", "0001"));
        assert_ne!(a, event_id("b", "k2", "etag1", "0001"));
        assert_ne!(event_id("b", "k", "", "0001"), event_id("b", "k", "", "0002"), "no ETag: the sequencer");
    }

    #[test]
    fn links() {
        assert_eq!(s3_uri("b", "a/k.parquet"), "s3://b/a/k.parquet");
        assert_eq!(
            console_url("eu-west-1", "b", "t/year=2026/t+0+1.parquet"),
            "https://s3.console.aws.amazon.com/s3/object/b?region=eu-west-1&prefix=t/year%3D2026/t%2B0%2B1.parquet"
        );
    }
}
