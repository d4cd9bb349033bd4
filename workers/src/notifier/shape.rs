//! What a notification says and carries: the readable text (SNS email subscribers get it as
//! it is), the HTML of the SMTP email, the subject, and the message attributes subscriptions'
//! filter policies match. Pure: landed objects in, messages out.
//!
//! ## Attributes
//!
//! SNS takes at most 10 message attributes ([`ticklake_aws::sns::MAX_ATTRIBUTES`]). Numbers
//! (`rows`, `bytes`, `objects`, `partition`) are SNS `Number`s, so `numeric` conditions match
//! them; everything else is a `String`.
//!
//! * **Per object**: first every attribute the filter policy names (so SNS evaluates the
//!   policy on what the notifier evaluated it on), then, while there is room, in this order:
//!   `event_id`, `key`, `table`, `year`, `month`, `day`, `hour`, `symbol`, `rows`, `bytes`,
//!   `bucket`, `kind` (= `object`). With hourly folders and `bySymbol` that is full at `bytes`:
//!   `bucket` (the same for every message of a subscription) is left out then.
//! * **Digest**: the notifier applies the filter policy itself, per object, before digesting
//!   ([`Context::wanted`]), so a digest lists only matching objects. The operator also sets the
//!   same policy on every SNS subscription, which SNS evaluates on the digest's attributes — so
//!   every attribute the policy names carries the value of the digest's **first listed
//!   object** (which matched: SNS lets the digest through). Then, while there is room:
//!   `event_id` (the digest's id), `kind` (= `digest`), `objects`, `rows` and `bytes` (totals;
//!   `rows` over the objects whose footer was read), `table`, then `year`, `month`, `day`,
//!   `hour`, `symbol` when every listed object has the same value, then `bucket`.
//!
//! The attribute names the filter policy can use are those of [`super::object::attributes`]
//! (notify's `object.created` attributes plus the partition and table): a policy on another
//! name matches nothing, here as in SNS.

use super::object::{Landed, Partition, Source, attributes, console_url, partition_query, partitions_query, s3_uri};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use ticklake_aws::sns::{Attribute, MAX_ATTRIBUTES, subject_line};
use ticklake_notify::event::stable_id;
use ticklake_notify::filter::FilterPolicy;
use ticklake_notify::render::{html_escape, human_bytes};

/// Per-object attributes after the policy's, in order of preference.
pub const OBJECT_ATTRIBUTES: [&str; 12] =
    ["event_id", "key", "table", "year", "month", "day", "hour", "symbol", "rows", "bytes", "bucket", "kind"];
/// Digest attributes after the policy's, in order of preference.
pub const DIGEST_ATTRIBUTES: [&str; 12] =
    ["event_id", "kind", "objects", "rows", "bytes", "table", "year", "month", "day", "hour", "symbol", "bucket"];

/// Everything a message needs besides its objects.
#[derive(Clone, Debug)]
pub struct Context {
    /// `<namespace>/<name>` of the `AlertSubscription`.
    pub subscription: String,
    pub source: Source,
    /// For console links.
    pub region: String,
    /// Links to the S3 console (AWS S3 only, not for other endpoints).
    pub console_links: bool,
    pub filter: Option<FilterPolicy>,
    /// Attribute names the filter policy uses ([`policy_names`]).
    pub filter_names: Vec<String>,
    /// Objects listed by name in a digest.
    pub max_listed: usize,
    /// Partition lines in a digest.
    pub max_partitions: usize,
}

impl Context {
    /// Whether the filter policy lets `o` through (no policy: everything).
    pub fn wanted(&self, o: &Landed) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(&attributes(&self.source, o)))
    }
}

/// The attribute names a filter policy (JSON) uses, `$or` alternatives included, sorted.
pub fn policy_names(policy: &str) -> Vec<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                if k == "$or" {
                    for alt in v.as_array().into_iter().flatten() {
                        walk(alt, out);
                    }
                } else {
                    out.insert(k.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(v) = serde_json::from_str::<Value>(policy) {
        walk(&v, &mut out);
    }
    out.into_iter().collect()
}

/// One message or digest, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// The event id (one object) or digest id: de-duplicate by it.
    pub id: String,
    pub digest: bool,
    /// Printable ASCII, under 100 characters.
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attributes: BTreeMap<String, Attribute>,
    /// Objects it covers.
    pub objects: usize,
}

fn typed(v: &Value) -> Option<Attribute> {
    match v {
        Value::String(s) if !s.is_empty() => Some(Attribute::string(s.clone())),
        Value::Number(n) => Some(Attribute::number(n)),
        Value::Bool(b) => Some(Attribute::string(b.to_string())),
        _ => None,
    }
}

/// At most [`MAX_ATTRIBUTES`]: the policy's `names` from `for_policy` first, then `order` from
/// `rest`.
pub fn select_attributes(
    for_policy: &BTreeMap<String, Value>,
    names: &[String],
    rest: &BTreeMap<String, Value>,
    order: &[&str],
) -> BTreeMap<String, Attribute> {
    let mut out = BTreeMap::new();
    for n in names {
        if out.len() == MAX_ATTRIBUTES {
            break;
        }
        if let Some(a) = for_policy.get(n).and_then(typed) {
            out.insert(n.clone(), a);
        }
    }
    for n in order {
        if out.len() == MAX_ATTRIBUTES {
            break;
        }
        if !out.contains_key(*n)
            && let Some(a) = rest.get(*n).and_then(typed)
        {
            out.insert(n.to_string(), a);
        }
    }
    out
}

/// `19824` → `19,824`.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn subject(s: &str) -> String {
    subject_line(s).unwrap_or_else(|| "[ticklake] new data".to_string())
}

fn rows_text(rows: Option<u64>) -> String {
    match rows {
        Some(r) => format!("{} rows", grouped(r)),
        None => "rows unknown".to_string(),
    }
}

fn footer_text(ctx: &Context, what: &str, id: &str) -> String {
    format!("--\nticklake notifier for AlertSubscription {} · {what} {id}\n", ctx.subscription)
}

fn html_page(body: &str) -> String {
    format!("<!DOCTYPE html><html><body style=\"font-family: sans-serif\">\n{body}</body></html>\n")
}

fn query_intro(ctx: &Context, them: &str) -> String {
    match &ctx.source.table.workgroup {
        Some(w) => format!("Query {them} in Athena (workgroup {w}):"),
        None => format!("Query {them} in Athena:"),
    }
}

const NO_QUERY: &str = "No Glue table is configured for this sink (spec.glue), so there is no Athena query.";

/// The message for one object (`digestIntervalSeconds: 0`).
pub fn object_message(ctx: &Context, o: &Landed) -> Outgoing {
    let table = &ctx.source.table.display;
    let p = &o.info.partition;
    let uri = s3_uri(&o.bucket, &o.key);
    let subject = subject(&match o.rows {
        Some(r) => format!("[ticklake] {table}: {} rows landed in {}", grouped(r), p.short()),
        None => format!("[ticklake] {table}: new object in {}", p.short()),
    });
    let rows = match o.rows {
        Some(r) => grouped(r),
        None => "unknown (the Parquet footer could not be read)".to_string(),
    };
    let size = format!("{} ({} bytes)", human_bytes(o.bytes), grouped(o.bytes));
    let offsets = format!(
        "topic {}, Kafka partition {}, offsets {} to {}",
        ctx.source.topic, o.info.kafka_partition, o.info.first_offset, o.info.last_offset
    );
    let mut fields: Vec<(&str, String)> = vec![
        ("Table", table.clone()),
        ("Partition", p.path()),
        ("Rows", rows),
        ("Size", size),
        ("Object", uri.clone()),
    ];
    if ctx.console_links {
        fields.push(("Console", console_url(&ctx.region, &o.bucket, &o.key)));
    }
    if !o.event_time.is_empty() {
        fields.push(("Landed at", o.event_time.clone()));
    }
    fields.push(("From", offsets));
    let query = partition_query(&ctx.source.table, p);

    let mut text = format!("New data landed in {table}.\n\n");
    for (k, v) in &fields {
        let _ = writeln!(text, "{:<11} {v}", format!("{k}:"));
    }
    text.push('\n');
    match &query {
        Some(q) => {
            let _ = writeln!(text, "{}\n  {q};\n", query_intro(ctx, "it"));
        }
        None => {
            let _ = writeln!(text, "{NO_QUERY}\n");
        }
    }
    text.push_str(&footer_text(ctx, "event id", &o.event_id));

    let mut body = format!("<p>New data landed in <b>{}</b>.</p>\n<table>\n", html_escape(table));
    for (k, v) in &fields {
        let value =
            if v.starts_with("https://") { format!("<a href=\"{0}\">{0}</a>", html_escape(v)) } else { html_escape(v) };
        let _ = writeln!(body, "<tr><th align=\"left\">{}</th><td>{value}</td></tr>", html_escape(k));
    }
    body.push_str("</table>\n");
    match &query {
        Some(q) => {
            let _ = writeln!(body, "<p>{}</p>\n<pre>{};</pre>", html_escape(&query_intro(ctx, "it")), html_escape(q));
        }
        None => {
            let _ = writeln!(body, "<p>{}</p>", html_escape(NO_QUERY));
        }
    }
    let _ = writeln!(
        body,
        "<p style=\"color:#666;font-size:small\">ticklake notifier for AlertSubscription {} · event id {}</p>",
        html_escape(&ctx.subscription),
        html_escape(&o.event_id)
    );

    let all = attributes(&ctx.source, o);
    Outgoing {
        id: o.event_id.clone(),
        digest: false,
        subject,
        text,
        html: html_page(&body),
        attributes: select_attributes(&all, &ctx.filter_names, &all, &OBJECT_ATTRIBUTES),
        objects: 1,
    }
}

/// The digest id of a set of objects: `dig_` and 32 hex digits over their sorted event ids.
pub fn digest_id(objects: &[Landed]) -> String {
    let mut ids: Vec<&str> = objects.iter().map(|o| o.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    stable_id("dig", &ids)
}

struct PartitionLine {
    objects: u64,
    rows: u64,
    unknown: u64,
    bytes: u64,
}

/// One message for what landed during an interval: counts and totals, one line per partition,
/// the first and last object, up to `max_listed` objects by name, and a query over them.
/// `objects` must not be empty.
pub fn digest_message(ctx: &Context, objects: &[Landed]) -> Outgoing {
    assert!(!objects.is_empty(), "a digest of nothing");
    let mut sorted: Vec<&Landed> = objects.iter().collect();
    sorted.sort_by(|a, b| (&a.event_time, &a.key).cmp(&(&b.event_time, &b.key)));
    let n = sorted.len() as u64;
    let rows: u64 = sorted.iter().filter_map(|o| o.rows).sum();
    let unknown = sorted.iter().filter(|o| o.rows.is_none()).count() as u64;
    let bytes: u64 = sorted.iter().map(|o| o.bytes).sum();
    let mut by_partition: BTreeMap<&Partition, PartitionLine> = BTreeMap::new();
    for o in &sorted {
        let l = by_partition.entry(&o.info.partition).or_insert(PartitionLine {
            objects: 0,
            rows: 0,
            unknown: 0,
            bytes: 0,
        });
        l.objects += 1;
        l.bytes += o.bytes;
        match o.rows {
            Some(r) => l.rows += r,
            None => l.unknown += 1,
        }
    }
    let parts: Vec<&Partition> = by_partition.keys().copied().collect();
    let table = &ctx.source.table.display;
    let id = digest_id(objects);
    let plural =
        |k: u64, one: &str, many: &str| if k == 1 { format!("1 {one}") } else { format!("{} {many}", grouped(k)) };
    let (lo, hi) = (parts[0].time_short(), parts.iter().map(|p| p.time_short()).max().unwrap_or_default());
    let span = if lo == hi { lo.clone() } else { format!("{lo} to {hi}") };
    let subject = subject(&format!(
        "[ticklake] {table}: {}, {} ({span})",
        plural(n, "new object", "new objects"),
        plural(rows, "row", "rows")
    ));
    let headline = format!(
        "{} landed in {table}: {}, {}.",
        plural(n, "new object", "new objects"),
        plural(rows, "row", "rows"),
        human_bytes(bytes)
    );
    let (first, last) = (sorted[0], sorted[sorted.len() - 1]);
    let window = match (first.event_time.as_str(), last.event_time.as_str()) {
        ("", _) | (_, "") => None,
        (a, b) if a == b => Some(format!("At {a}.")),
        (a, b) => Some(format!("Between {a} and {b}.")),
    };
    let partition_line = |p: &Partition, l: &PartitionLine| {
        let mut s =
            format!("{} — {}, {}", p.path(), plural(l.objects, "object", "objects"), plural(l.rows, "row", "rows"));
        if l.unknown > 0 {
            let _ = write!(s, " (rows unknown for {})", plural(l.unknown, "object", "objects"));
        }
        let _ = write!(s, ", {}", human_bytes(l.bytes));
        s
    };
    let object_line =
        |o: &Landed| format!("{} — {}, {}", s3_uri(&o.bucket, &o.key), rows_text(o.rows), human_bytes(o.bytes));
    let more_partitions = parts.len().saturating_sub(ctx.max_partitions);
    let listed = &sorted[..sorted.len().min(ctx.max_listed)];
    let more_objects = sorted.len() - listed.len();
    let query = partitions_query(&ctx.source.table, &parts);
    let totals =
        format!("Totals: {}, {}, {}.", plural(n, "object", "objects"), plural(rows, "row", "rows"), human_bytes(bytes));
    let unknown_note = (unknown > 0).then(|| {
        format!(
            "Rows unknown for {}: the Parquet footer could not be read; not in the totals.",
            plural(unknown, "object", "objects")
        )
    });

    // Text.
    let mut text = format!("{headline}\n");
    if let Some(w) = &window {
        let _ = writeln!(text, "{w}");
    }
    let _ = writeln!(text, "\nBy partition:");
    for (p, l) in by_partition.iter().take(ctx.max_partitions) {
        let _ = writeln!(text, "  {}", partition_line(p, l));
    }
    if more_partitions > 0 {
        let _ = writeln!(text, "  … and {more_partitions} more partitions");
    }
    let _ = writeln!(text, "\nFirst object: {}", s3_uri(&first.bucket, &first.key));
    let _ = writeln!(text, "Last object:  {}", s3_uri(&last.bucket, &last.key));
    let _ = writeln!(text, "\nObjects:");
    for o in listed {
        let _ = writeln!(text, "  - {}", object_line(o));
    }
    if more_objects > 0 {
        let _ = writeln!(text, "  … and {more_objects} more");
    }
    text.push('\n');
    match &query {
        Some(q) => {
            let _ = writeln!(text, "{}\n  {q};\n", query_intro(ctx, "them"));
        }
        None => {
            let _ = writeln!(text, "{NO_QUERY}\n");
        }
    }
    let _ = writeln!(text, "{totals}");
    if let Some(u) = &unknown_note {
        let _ = writeln!(text, "{u}");
    }
    text.push('\n');
    text.push_str(&footer_text(ctx, "digest id", &id));

    // HTML.
    let mut body = format!("<p><b>{}</b></p>\n", html_escape(&headline));
    if let Some(w) = &window {
        let _ = writeln!(body, "<p>{}</p>", html_escape(w));
    }
    body.push_str("<h3>By partition</h3>\n<table>\n");
    body.push_str("<tr><th align=\"left\">Partition</th><th>Objects</th><th>Rows</th><th>Size</th></tr>\n");
    for (p, l) in by_partition.iter().take(ctx.max_partitions) {
        let rows =
            if l.unknown > 0 { format!("{} (+{} unknown)", grouped(l.rows), l.unknown) } else { grouped(l.rows) };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td></tr>",
            html_escape(&p.path()),
            grouped(l.objects),
            html_escape(&rows),
            html_escape(&human_bytes(l.bytes))
        );
    }
    body.push_str("</table>\n");
    if more_partitions > 0 {
        let _ = writeln!(body, "<p>… and {more_partitions} more partitions</p>");
    }
    let _ = writeln!(
        body,
        "<p>First object: <code>{}</code><br>Last object: <code>{}</code></p>",
        html_escape(&s3_uri(&first.bucket, &first.key)),
        html_escape(&s3_uri(&last.bucket, &last.key))
    );
    body.push_str("<h3>Objects</h3>\n<ul>\n");
    for o in listed {
        let mut li = format!(
            "<code>{}</code> — {}, {}",
            html_escape(&s3_uri(&o.bucket, &o.key)),
            html_escape(&rows_text(o.rows)),
            html_escape(&human_bytes(o.bytes))
        );
        if ctx.console_links {
            let _ =
                write!(li, " (<a href=\"{}\">console</a>)", html_escape(&console_url(&ctx.region, &o.bucket, &o.key)));
        }
        let _ = writeln!(body, "<li>{li}</li>");
    }
    if more_objects > 0 {
        let _ = writeln!(body, "<li>… and {more_objects} more</li>");
    }
    body.push_str("</ul>\n");
    match &query {
        Some(q) => {
            let _ = writeln!(body, "<p>{}</p>\n<pre>{};</pre>", html_escape(&query_intro(ctx, "them")), html_escape(q));
        }
        None => {
            let _ = writeln!(body, "<p>{}</p>", html_escape(NO_QUERY));
        }
    }
    let _ = writeln!(body, "<p>{}</p>", html_escape(&totals));
    if let Some(u) = &unknown_note {
        let _ = writeln!(body, "<p>{}</p>", html_escape(u));
    }
    let _ = writeln!(
        body,
        "<p style=\"color:#666;font-size:small\">ticklake notifier for AlertSubscription {} · digest id {}</p>",
        html_escape(&ctx.subscription),
        html_escape(&id)
    );

    // Attributes.
    let first_attrs = attributes(&ctx.source, first);
    let mut whole: BTreeMap<String, Value> = BTreeMap::new();
    whole.insert("event_id".into(), Value::from(id.clone()));
    whole.insert("kind".into(), Value::from("digest"));
    whole.insert("objects".into(), Value::from(n));
    whole.insert("rows".into(), Value::from(rows));
    whole.insert("bytes".into(), Value::from(bytes));
    whole.insert("table".into(), Value::from(table.clone()));
    whole.insert("bucket".into(), Value::from(first.bucket.clone()));
    let shared = |f: &dyn Fn(&Partition) -> Option<&str>| {
        let v = f(&sorted[0].info.partition)?;
        sorted.iter().all(|o| f(&o.info.partition) == Some(v)).then(|| v.to_string())
    };
    for (name, value) in [
        ("year", shared(&|p| Some(p.year.as_str()))),
        ("month", shared(&|p| Some(p.month.as_str()))),
        ("day", shared(&|p| Some(p.day.as_str()))),
        ("hour", shared(&|p| p.hour.as_deref())),
        ("symbol", shared(&|p| p.symbol.as_deref())),
    ] {
        if let Some(v) = value {
            whole.insert(name.into(), Value::from(v));
        }
    }

    Outgoing {
        id,
        digest: true,
        subject,
        text,
        html: html_page(&body),
        attributes: select_attributes(&first_attrs, &ctx.filter_names, &whole, &DIGEST_ATTRIBUTES),
        objects: sorted.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::object::{KeyInfo, Table, event_id};
    use ticklake_aws::sns::{AttributeType, check_typed_message};

    fn ctx(glue: bool, policy: Option<&str>) -> Context {
        Context {
            subscription: "data/new-ticks".into(),
            source: Source {
                sink: "ticks-lake".into(),
                topic: "ticks".into(),
                table: Table {
                    display: if glue { "market.ticks".into() } else { "ticks".into() },
                    glue: glue.then(|| ("market".to_string(), "ticks".to_string())),
                    workgroup: glue.then(|| "analysts".to_string()),
                },
            },
            region: "eu-west-1".into(),
            console_links: true,
            filter: policy.map(|p| FilterPolicy::parse(p).unwrap()),
            filter_names: policy.map(policy_names).unwrap_or_default(),
            max_listed: 3,
            max_partitions: 2,
        }
    }

    fn landed(hour: &str, symbol: Option<&str>, p: i32, first: i64, rows: Option<u64>) -> Landed {
        let sym = symbol.map(|s| format!("/symbol={s}")).unwrap_or_default();
        let key = format!(
            "lake/ticks/year=2026/month=01/day=02/hour={hour}{sym}/ticks+{p}+{first:020}+{:020}.parquet",
            first + 99
        );
        Landed {
            bucket: "lake".into(),
            event_id: event_id("lake", &key, &format!("etag{first}"), ""),
            key,
            bytes: 2048 + first as u64,
            etag: format!("etag{first}"),
            sequencer: String::new(),
            event_time: format!("2026-01-02T{hour}:00:{:02}.000Z", first % 60),
            info: KeyInfo {
                partition: Partition {
                    year: "2026".into(),
                    month: "01".into(),
                    day: "02".into(),
                    hour: Some(hour.into()),
                    symbol: symbol.map(String::from),
                },
                kafka_partition: p,
                first_offset: first,
                last_offset: first + 99,
            },
            rows,
        }
    }

    fn attr(m: &Outgoing, k: &str) -> Option<(AttributeType, String)> {
        m.attributes.get(k).map(|a| (a.data_type, a.value.clone()))
    }

    #[test]
    fn one_object_reads_well_and_carries_its_attributes() {
        let c = ctx(true, None);
        let o = landed("03", None, 3, 9, Some(1200));
        let m = object_message(&c, &o);
        assert_eq!(m.subject, "[ticklake] market.ticks: 1,200 rows landed in 2026-01-02 03h");
        assert_eq!(m.id, o.event_id);
        for want in [
            "New data landed in market.ticks.",
            "Partition:  year=2026/month=01/day=02/hour=03\n",
            "Rows:       1,200\n",
            "Size:       2.0 KiB (2,057 bytes)\n",
            &format!("Object:     s3://lake/{}\n", o.key),
            "Console:    https://s3.console.aws.amazon.com/s3/object/lake?region=eu-west-1&prefix=lake/ticks/year%3D2026",
            "Landed at:  2026-01-02T03:00:09.000Z\n",
            "From:       topic ticks, Kafka partition 3, offsets 9 to 108\n",
            "Query it in Athena (workgroup analysts):\n  SELECT * FROM \"market\".\"ticks\" WHERE year = '2026' AND month = '01' AND day = '02' AND hour = '03' LIMIT 100;",
            &format!("AlertSubscription data/new-ticks · event id {}", o.event_id),
        ] {
            assert!(m.text.contains(want), "{want:?} in\n{}", m.text);
        }
        assert!(m.html.contains("<th align=\"left\">Rows</th><td>1,200</td>"), "{}", m.html);
        assert!(m.html.contains("&quot;market&quot;.&quot;ticks&quot;"), "escaped: {}", m.html);
        assert_eq!(attr(&m, "event_id"), Some((AttributeType::String, o.event_id.clone())));
        assert_eq!(attr(&m, "table"), Some((AttributeType::String, "market.ticks".into())));
        assert_eq!(attr(&m, "rows"), Some((AttributeType::Number, "1200".into())));
        assert_eq!(attr(&m, "bytes"), Some((AttributeType::Number, "2057".into())));
        assert_eq!(attr(&m, "hour"), Some((AttributeType::String, "03".into())));
        assert_eq!(attr(&m, "bucket"), Some((AttributeType::String, "lake".into())));
        assert_eq!(attr(&m, "symbol"), None);
        assert_eq!(m.attributes.len(), 10);
        assert!(check_typed_message(&m.text, &m.attributes).is_ok());

        let unknown = object_message(&ctx(false, None), &landed("03", Some("AAPL"), 0, 0, None));
        assert_eq!(unknown.subject, "[ticklake] ticks: new object in 2026-01-02 03h AAPL");
        assert!(unknown.text.contains("Rows:       unknown (the Parquet footer could not be read)"));
        assert!(unknown.text.contains("No Glue table is configured"), "{}", unknown.text);
        assert_eq!(attr(&unknown, "rows"), None);
        assert_eq!(attr(&unknown, "symbol"), Some((AttributeType::String, "AAPL".into())));
    }

    #[test]
    fn attributes_stay_within_ten_and_keep_what_the_policy_names() {
        // Hourly folders by symbol: eleven candidates, bucket left out.
        let o = landed("03", Some("AAPL"), 1, 5, Some(7));
        let m = object_message(&ctx(true, None), &o);
        assert_eq!(m.attributes.len(), MAX_ATTRIBUTES);
        let names: Vec<&str> = m.attributes.keys().map(String::as_str).collect();
        assert_eq!(names, ["bytes", "day", "event_id", "hour", "key", "month", "rows", "symbol", "table", "year"]);
        // A policy on bucket and the Kafka partition keeps them, dropping the least wanted.
        let c = ctx(true, Some(r#"{"bucket": ["lake"], "$or": [{"partition": [1]}, {"objectKind": ["x"]}]}"#));
        assert_eq!(c.filter_names, ["bucket", "objectKind", "partition"]);
        let m = object_message(&c, &o);
        assert_eq!(m.attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(attr(&m, "bucket"), Some((AttributeType::String, "lake".into())));
        assert_eq!(attr(&m, "partition"), Some((AttributeType::Number, "1".into())));
        assert_eq!(attr(&m, "objectKind"), Some((AttributeType::String, "data".into())));
        assert!(m.attributes.contains_key("event_id") && m.attributes.contains_key("key"));
        assert!(!m.attributes.contains_key("bytes") && !m.attributes.contains_key("rows"));
    }

    #[test]
    fn the_filter_policy_is_applied_per_object() {
        let c = ctx(true, Some(r#"{"symbol": ["AAPL", "MSFT"], "rows": [{"numeric": [">", 10]}]}"#));
        assert!(c.wanted(&landed("03", Some("AAPL"), 0, 0, Some(11))));
        assert!(!c.wanted(&landed("03", Some("IBM"), 0, 0, Some(11))));
        assert!(!c.wanted(&landed("03", Some("MSFT"), 0, 0, Some(10))));
        assert!(!c.wanted(&landed("03", Some("MSFT"), 0, 0, None)), "unknown rows match no numeric condition");
        let table = ctx(true, Some(r#"{"table": ["market.ticks"], "key": [{"prefix": "lake/ticks/year=2026/"}]}"#));
        assert!(table.wanted(&landed("03", None, 0, 0, Some(1))));
        assert!(ctx(true, None).wanted(&landed("03", None, 0, 0, None)));
    }

    #[test]
    fn a_digest_lists_what_landed_with_totals() {
        let c = ctx(true, None);
        let objects = vec![
            landed("04", Some("MSFT"), 1, 300, Some(30)),
            landed("03", Some("AAPL"), 0, 100, Some(10)),
            landed("03", Some("AAPL"), 0, 200, None),
            landed("05", Some("IBM"), 2, 400, Some(40)),
            landed("03", Some("MSFT"), 1, 500, Some(50)),
        ];
        let m = digest_message(&c, &objects);
        assert!(m.digest && m.objects == 5);
        assert_eq!(m.id, digest_id(&objects));
        let mut reversed = objects.clone();
        reversed.reverse();
        assert_eq!(digest_id(&reversed), m.id, "the same objects, the same id");
        assert!(m.id.starts_with("dig_"));
        assert_eq!(m.subject, "[ticklake] market.ticks: 5 new objects, 130 rows (2026-01-02 03h to 2026-01-02 05h)");
        assert!(m.subject.len() < 100);
        for want in [
            "5 new objects landed in market.ticks: 130 rows, 11.5 KiB.\n",
            "Between 2026-01-02T03:00:20.000Z and 2026-01-02T05:00:40.000Z.\n",
            "By partition:\n  year=2026/month=01/day=02/hour=03/symbol=AAPL — 2 objects, 10 rows (rows unknown for 1 object), 4.3 KiB\n",
            "  year=2026/month=01/day=02/hour=03/symbol=MSFT — 1 object, 50 rows, 2.5 KiB\n",
            "  … and 2 more partitions\n",
            "First object: s3://lake/lake/ticks/year=2026/month=01/day=02/hour=03/symbol=AAPL/ticks+0+00000000000000000200",
            "Last object:  s3://lake/lake/ticks/year=2026/month=01/day=02/hour=05/symbol=IBM/ticks+2+00000000000000000400",
            "  - s3://lake/lake/ticks/year=2026/month=01/day=02/hour=03/symbol=AAPL/ticks+0+00000000000000000200+00000000000000000299.parquet — rows unknown, 2.2 KiB\n",
            "  … and 2 more\n",
            "Query them in Athena (workgroup analysts):\n  SELECT * FROM \"market\".\"ticks\" WHERE concat(year, month, day, hour) BETWEEN '2026010203' AND '2026010205' AND symbol IN ('AAPL', 'IBM', 'MSFT') LIMIT 100;\n",
            "Totals: 5 objects, 130 rows, 11.5 KiB.\n",
            "Rows unknown for 1 object: the Parquet footer could not be read; not in the totals.\n",
            &format!("digest id {}", m.id),
        ] {
            assert!(m.text.contains(want), "{want:?} in\n{}", m.text);
        }
        assert_eq!(m.text.matches("\n  - s3://").count(), 3, "max_listed");
        assert!(m.html.contains("<li>… and 2 more</li>") && m.html.contains("<h3>By partition</h3>"), "{}", m.html);
        assert!(m.html.contains(">console</a>"));
        assert_eq!(attr(&m, "kind"), Some((AttributeType::String, "digest".into())));
        assert_eq!(attr(&m, "event_id"), Some((AttributeType::String, m.id.clone())));
        assert_eq!(attr(&m, "objects"), Some((AttributeType::Number, "5".into())));
        assert_eq!(attr(&m, "rows"), Some((AttributeType::Number, "130".into())));
        assert_eq!(attr(&m, "bytes"), Some((AttributeType::Number, "11740".into())));
        assert_eq!(attr(&m, "day"), Some((AttributeType::String, "02".into())), "shared by all");
        assert_eq!(attr(&m, "hour"), None, "not shared");
        assert_eq!(attr(&m, "symbol"), None);
        assert!(check_typed_message(&m.text, &m.attributes).is_ok());

        // One object, one partition: its own query, "1 new object".
        let one = digest_message(&c, &objects[..1]);
        assert_eq!(one.subject, "[ticklake] market.ticks: 1 new object, 30 rows (2026-01-02 04h)");
        assert!(one.text.contains("AND hour = '04' AND symbol = 'MSFT' LIMIT 100;"), "{}", one.text);
        assert!(one.text.contains("At 2026-01-02T04:00:00.000Z."));
        assert_eq!(attr(&one, "hour"), Some((AttributeType::String, "04".into())));
        assert_eq!(attr(&one, "symbol"), None, "no room left");
        assert_eq!(one.attributes.len(), MAX_ATTRIBUTES);
    }

    #[test]
    fn a_digest_carries_the_policys_attributes_of_its_first_object() {
        let c = ctx(true, Some(r#"{"symbol": ["AAPL"], "rows": [{"numeric": ["<", 100]}]}"#));
        let objects = vec![landed("03", Some("AAPL"), 0, 100, Some(60)), landed("04", Some("AAPL"), 0, 200, Some(70))];
        let m = digest_message(&c, &objects);
        // The policy's names as the first object has them (so SNS lets the digest through),
        // even rows, whose total (130) would not pass.
        assert_eq!(attr(&m, "symbol"), Some((AttributeType::String, "AAPL".into())));
        assert_eq!(attr(&m, "rows"), Some((AttributeType::Number, "60".into())));
        assert_eq!(attr(&m, "objects"), Some((AttributeType::Number, "2".into())));
        assert!(m.attributes.len() <= MAX_ATTRIBUTES);
    }

    #[test]
    fn big_digests_stay_within_snss_limits() {
        let c = Context { max_listed: crate::notifier::limits::MAX_LISTED, max_partitions: 24, ..ctx(true, None) };
        let objects: Vec<Landed> = (0..crate::notifier::limits::MAX_HELD_OBJECTS as i64)
            .map(|i| {
                landed(
                    &format!("{:02}", i % 24),
                    Some(&format!("SYM{}", i % 500)),
                    (i % 16) as i32,
                    i * 100,
                    Some(1000),
                )
            })
            .collect();
        let m = digest_message(&c, &objects);
        assert!(m.subject.len() < 100);
        assert!(m.text.contains("… and 9950 more\n"));
        assert!(m.text.contains("more partitions"));
        assert!(m.text.len() < 64 * 1024, "{}", m.text.len());
        assert!(check_typed_message(&m.text, &m.attributes).is_ok());
        assert_eq!(attr(&m, "rows"), Some((AttributeType::Number, "10000000".into())));
    }

    #[test]
    fn numbers_and_names() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(19_824), "19,824");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(policy_names("not json"), Vec::<String>::new());
        assert_eq!(policy_names(r#"{"a":[1],"$or":[{"b":[1]},{"$or":[{"c":[1]},{"a":[2]}]}]}"#), ["a", "b", "c"]);
    }
}
