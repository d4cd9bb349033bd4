//! The Grafana dashboard of the Helm chart queries only metrics that ticklake really exports.
//!
//! [`metric_names`] reads the series names out of a PromQL expression (a small tokenizer: it
//! skips strings, numbers, durations, range and subquery brackets, label matchers, grouping
//! labels, functions and keywords, and Grafana's `$variables`). [`assert_dashboard_metrics_exported`]
//! checks every name used by a panel or a template variable against the series of real scrapes.
//! Names are compared as exposed series, suffix included — `x_total` of a counter,
//! `x_bucket`/`x_sum`/`x_count` of a histogram — so a suffix only passes where the exported
//! metric really has it. A metric family with no series yet (a counter of errors that did not
//! happen) counts through its `# TYPE` line.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The dashboard shipped with the chart.
pub fn dashboard_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/ticklake/dashboards/ticklake.json")
}

pub fn load_dashboard() -> Value {
    let path = dashboard_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// PromQL functions and `@` modifiers' `start()`/`end()`.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "end",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "start",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Aggregation operators: followed by `(` or by `by`/`without`.
const AGGREGATIONS: &[&str] = &[
    "avg",
    "bottomk",
    "count",
    "count_values",
    "group",
    "limit_ratio",
    "limitk",
    "max",
    "min",
    "quantile",
    "stddev",
    "stdvar",
    "sum",
    "topk",
];

/// Keywords followed by a parenthesised list of label names (optional for `group_*`).
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Binary operators and modifiers spelled as words.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// A number or a duration (`0.99`, `1e3`, `5m`, `0x1f`).
    Num,
    /// A Grafana variable: `$name` or `${name...}`.
    Var,
    Punct(&'static str),
}

fn lex(expr: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident_start = |ch: char| ch.is_ascii_alphabetic() || ch == '_' || ch == ':';
    let ident_char = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':';
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '#' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '"' || ch == '\'' || ch == '`' {
            let quote = ch;
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = c.get(i) else { return Err(format!("unterminated string in {expr:?}")) };
                i += 1;
                if d == quote {
                    break;
                }
                if d == '\\' && quote != '`' {
                    let Some(&e) = c.get(i) else { return Err(format!("unterminated string in {expr:?}")) };
                    i += 1;
                    s.push(e);
                } else {
                    s.push(d);
                }
            }
            out.push(Tok::Str(s));
        } else if ch.is_ascii_digit() || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '_') {
                // An exponent's sign: `1e-3`.
                if matches!(c[i], 'e' | 'E') && matches!(c.get(i + 1), Some('+' | '-')) {
                    i += 1;
                }
                i += 1;
            }
            out.push(Tok::Num);
        } else if ch == '$' {
            i += 1;
            if c.get(i) == Some(&'{') {
                while i < c.len() && c[i] != '}' {
                    i += 1;
                }
                if i == c.len() {
                    return Err(format!("unterminated ${{...}} in {expr:?}"));
                }
                i += 1;
            } else {
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
            }
            out.push(Tok::Var);
        } else if ident_start(ch) {
            let start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let p = match two.as_str() {
                "=~" | "!~" | "!=" | "==" | ">=" | "<=" => {
                    i += 2;
                    match two.as_str() {
                        "=~" => "=~",
                        "!~" => "!~",
                        "!=" => "!=",
                        "==" => "==",
                        ">=" => ">=",
                        _ => "<=",
                    }
                }
                _ => {
                    i += 1;
                    match ch {
                        '(' => "(",
                        ')' => ")",
                        '{' => "{",
                        '}' => "}",
                        '[' => "[",
                        ']' => "]",
                        ',' => ",",
                        '=' => "=",
                        '+' => "+",
                        '-' => "-",
                        '*' => "*",
                        '/' => "/",
                        '%' => "%",
                        '^' => "^",
                        '<' => "<",
                        '>' => ">",
                        '@' => "@",
                        other => return Err(format!("unexpected {other:?} in {expr:?}")),
                    }
                }
            };
            out.push(Tok::Punct(p));
        }
    }
    Ok(out)
}

/// The metric names of `__name__ =~ "a|b"`: only plain alternatives can be checked.
fn name_regex(re: &str, expr: &str) -> Result<Vec<String>, String> {
    let re = re.strip_prefix('^').unwrap_or(re);
    let re = re.strip_suffix('$').unwrap_or(re);
    let re = re.strip_prefix('(').and_then(|r| r.strip_suffix(')')).unwrap_or(re);
    re.split('|')
        .map(|alt| {
            let plain = !alt.is_empty() && alt.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':');
            if plain {
                Ok(alt.to_string())
            } else {
                Err(format!("__name__ regex alternative {alt:?} in {expr:?} is not a plain metric name"))
            }
        })
        .collect()
}

/// Every metric (series) name `expr` selects: the identifiers that are not functions,
/// aggregations, keywords, label names, or inside strings and brackets; plus
/// `{__name__="..."}` and plain `{__name__=~"a|b"}` selectors. An unknown function is an error
/// (it would otherwise be read as a metric name).
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let toks = lex(expr)?;
    let mut names = BTreeSet::new();
    let mut i = 0;
    let punct = |i: usize, p: &str| matches!(toks.get(i), Some(Tok::Punct(q)) if *q == p);
    // Skips a balanced group opened at `i` by `open`; returns the index after its close.
    let skip_group = |mut i: usize, open: &str, close: &str| -> Result<usize, String> {
        let mut depth = 0;
        while let Some(t) = toks.get(i) {
            match t {
                Tok::Punct(p) if *p == open => depth += 1,
                Tok::Punct(p) if *p == close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        Err(format!("unbalanced {open}{close} in {expr:?}"))
    };
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct("[") => i = skip_group(i, "[", "]")?,
            Tok::Punct("{") => {
                // Label matchers: `label op "value"`, comma separated.
                let end = skip_group(i, "{", "}")?;
                let mut j = i + 1;
                while j < end - 1 {
                    match (&toks[j], toks.get(j + 1), toks.get(j + 2)) {
                        (
                            Tok::Ident(label) | Tok::Str(label),
                            Some(Tok::Punct(op @ ("=" | "!=" | "=~" | "!~"))),
                            Some(Tok::Str(v)),
                        ) => {
                            if label == "__name__" {
                                match *op {
                                    "=" => {
                                        names.insert(v.clone());
                                    }
                                    "=~" => names.extend(name_regex(v, expr)?),
                                    _ => return Err(format!("__name__{op} cannot be checked in {expr:?}")),
                                }
                            }
                            j += 3;
                        }
                        // A bare quoted metric name, `{"name"}` (Prometheus 3).
                        (Tok::Str(v), Some(Tok::Punct("," | "}")), _) => {
                            names.insert(v.clone());
                            j += 1;
                        }
                        (Tok::Punct(","), _, _) => j += 1,
                        (t, _, _) => return Err(format!("unexpected {t:?} in the label matchers of {expr:?}")),
                    }
                }
                i = end;
            }
            Tok::Ident(id) => {
                let lower = id.to_ascii_lowercase();
                if GROUPING.contains(&id.as_str()) {
                    i = if punct(i + 1, "(") { skip_group(i + 1, "(", ")")? } else { i + 1 };
                } else if FUNCTIONS.contains(&id.as_str())
                    || AGGREGATIONS.contains(&id.as_str())
                    || KEYWORDS.contains(&id.as_str())
                    || lower == "inf"
                    || lower == "nan"
                {
                    i += 1;
                } else if punct(i + 1, "(") {
                    return Err(format!("unknown function {id}() in {expr:?}"));
                } else {
                    names.insert(id.clone());
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(names)
}

/// The PromQL selector of a Grafana Prometheus variable query: `label_values(sel, label)` →
/// `sel`, `label_values(label)` and `label_names()` → nothing, `query_result(q)` → `q`.
fn variable_selector(query: &str) -> Result<Option<String>, String> {
    let q = query.trim();
    let inner = |prefix: &str| q.strip_prefix(prefix).and_then(|r| r.trim_end().strip_suffix(')')).map(str::trim);
    if let Some(args) = inner("label_values(") {
        return Ok(args.rsplit_once(',').map(|(sel, _label)| sel.trim().to_string()));
    }
    if q.starts_with("label_names(") {
        return Ok(None);
    }
    if let Some(e) = inner("query_result(") {
        return Ok(Some(e.to_string()));
    }
    if q.starts_with("metrics(") {
        return Err(format!("variable query {q:?} lists metric names by regex and cannot be checked"));
    }
    Ok(Some(q.to_string()))
}

/// Every panel, including those inside collapsed rows.
pub fn all_panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(ps: &'a Value, out: &mut Vec<&'a Value>) {
        for p in ps.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

/// `(where, PromQL)` of every panel target and every query variable.
pub fn queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in all_panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("panel {:?} has a target without expr", p["title"]));
            out.push((format!("panel {:?} target {}", p["title"], t["refId"]), expr.to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str()).or(v["definition"].as_str());
            let q = q.unwrap_or_else(|| panic!("variable {:?} has no query", v["name"]));
            let sel = variable_selector(q).unwrap_or_else(|e| panic!("variable {:?}: {e}", v["name"]));
            if let Some(sel) = sel {
                out.push((format!("variable {:?}", v["name"]), sel));
            }
        }
    }
    out
}

/// Metric name → where the dashboard uses it.
pub fn dashboard_metrics(d: &Value) -> BTreeMap<String, Vec<String>> {
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (place, expr) in queries(d) {
        let names = metric_names(&expr).unwrap_or_else(|e| panic!("{place}: {e}"));
        assert!(!names.is_empty(), "{place} queries no metric: {expr}");
        for n in names {
            used.entry(n).or_default().push(place.clone());
        }
    }
    used
}

/// The series names a Prometheus/OpenMetrics text exposes: those of its samples, and those its
/// `# TYPE` lines declare (a family may have no series yet).
pub fn exported_series(scrape: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in scrape.lines() {
        let line = line.trim();
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let mut parts = decl.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
            match kind {
                "counter" if name.ends_with("_total") => {
                    out.insert(name.to_string());
                }
                "counter" => {
                    out.insert(format!("{name}_total"));
                }
                "histogram" | "gaugehistogram" => {
                    let (count, sum) = if kind == "histogram" { ("_count", "_sum") } else { ("_gcount", "_gsum") };
                    for suffix in ["_bucket", count, sum] {
                        out.insert(format!("{name}{suffix}"));
                    }
                }
                "summary" => {
                    for suffix in ["", "_count", "_sum"] {
                        out.insert(format!("{name}{suffix}"));
                    }
                }
                "info" => {
                    out.insert(format!("{name}_info"));
                }
                _ => {
                    out.insert(name.to_string());
                }
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            out.insert(line[..end].to_string());
        }
    }
    out
}

/// Fails naming every metric the dashboard queries that none of `scrapes` exports, and when the
/// dashboard queries no metric at all.
pub fn assert_dashboard_metrics_exported(scrapes: &[String]) {
    let d = load_dashboard();
    let used = dashboard_metrics(&d);
    assert!(!used.is_empty(), "the dashboard {} references no metric", dashboard_path().display());
    let exported: BTreeSet<String> = scrapes.iter().flat_map(|s| exported_series(s)).collect();
    let missing: Vec<String> = used
        .iter()
        .filter(|(name, _)| !exported.contains(*name))
        .map(|(name, places)| format!("  {name} (used by {})", places.join(", ")))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard {} queries metrics no scrape exports:\n{}\nexported: {exported:?}",
        dashboard_path().display(),
        missing.join("\n")
    );
    let samples: BTreeSet<&str> = scrapes
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let declared_only: Vec<&String> = used.keys().filter(|n| !samples.contains(n.as_str())).collect();
    eprintln!(
        "dashboard: {} metrics, all exported ({} declared without series yet: {declared_only:?})",
        used.len(),
        declared_only.len()
    );
}

/// The dashboard's shape: uid, schema, the datasource variable used by every panel and query
/// variable, unique panel ids and refIds, panels inside the 24-column grid without overlaps.
pub fn check_dashboard_structure(d: &Value) {
    const DS: &str = "${datasource}";
    assert_eq!(d["uid"], "ticklake-pipeline");
    let schema = d["schemaVersion"].as_i64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no variable {name}"));
    let ds = var("datasource");
    assert_eq!((ds["type"].as_str(), ds["query"].as_str()), (Some("datasource"), Some("prometheus")));
    for name in ["namespace", "resource"] {
        assert_eq!(var(name)["type"], "query", "variable {name}");
    }
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert_eq!(v["datasource"]["uid"], DS, "variable {:?} must query the ${{datasource}}", v["name"]);
    }
    let panels = all_panels(d);
    let mut ids = BTreeSet::new();
    for p in &panels {
        let id = p["id"].as_i64().unwrap_or_else(|| panic!("panel {:?} has no id", p["title"]));
        assert!(ids.insert(id), "panel id {id} is used twice");
        if p["type"] == "row" {
            assert!(p["targets"].is_null(), "row {:?} has queries", p["title"]);
            continue;
        }
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "panel {id} has no title");
        assert_eq!(
            (p["datasource"]["type"].as_str(), p["datasource"]["uid"].as_str()),
            (Some("prometheus"), Some(DS)),
            "panel {:?} must use the ${{datasource}} variable",
            p["title"]
        );
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {:?} has no targets", p["title"]));
        assert!(!targets.is_empty(), "panel {:?} has no targets", p["title"]);
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(refs.insert(t["refId"].as_str().expect("refId")), "panel {:?}: refId twice", p["title"]);
            if !t["datasource"].is_null() {
                assert_eq!(t["datasource"]["uid"], DS, "panel {:?} target {}", p["title"], t["refId"]);
            }
        }
    }
    // The grid of the top level (rows are expanded, so their panels are there too).
    let rects: Vec<(String, [i64; 4])> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| {
            let g = &p["gridPos"];
            let n = |k: &str| g[k].as_i64().unwrap_or_else(|| panic!("panel {:?}: gridPos.{k}", p["title"]));
            let r = [n("x"), n("y"), n("w"), n("h")];
            assert!(r[0] >= 0 && r[1] >= 0 && r[2] > 0 && r[3] > 0 && r[0] + r[2] <= 24, "{:?}: {r:?}", p["title"]);
            (p["title"].to_string(), r)
        })
        .collect();
    for (i, (a, ra)) in rects.iter().enumerate() {
        for (b, rb) in &rects[i + 1..] {
            let apart =
                ra[0] + ra[2] <= rb[0] || rb[0] + rb[2] <= ra[0] || ra[1] + ra[3] <= rb[1] || rb[1] + rb[3] <= ra[1];
            assert!(apart, "panels {a} {ra:?} and {b} {rb:?} overlap");
        }
    }
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |e: &str| metric_names(e).unwrap().into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (namespace, le) (rate(ticklake_sink_freshness_seconds_bucket{namespace=~"$namespace", pod!="x"}[$__rate_interval])))"#
        ),
        ["ticklake_sink_freshness_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum(rate(a_sum[5m])) by (kind) / on (kind) group_left (pod) sum without (le) (rate(a_count[1m:30s] offset 1h))"
        ),
        ["a_count", "a_sum"]
    );
    assert_eq!(
        names("max by (pod) (ticklake_operator_leader) == bool 1 and up > 1e-3"),
        ["ticklake_operator_leader", "up"]
    );
    assert_eq!(names(r#"label_replace(x, "dst", "$1", "src", "(by|sum).*") # rate(y[5m])"#), ["x"]);
    assert_eq!(names(r#"{__name__=~"^(p_total|s_total)$", namespace=~"$ns"}"#), ["p_total", "s_total"]);
    assert_eq!(names(r#"{__name__="a:b:rate5m"} * ${factor} + Inf - NaN"#), ["a:b:rate5m"]);
    assert_eq!(names("sum by(kind)(x{outcome='ok'}) @ end() - count(y offset -5m)"), ["x", "y"]);
    assert_eq!(names(r#"{"quoted_total", job="j"} / ignoring(le) z"#), ["quoted_total", "z"]);
    assert!(metric_names("x{a=b}").is_err());
    assert!(metric_names("ratee(x[5m])").unwrap_err().contains("unknown function ratee"));
    assert!(metric_names(r#"{__name__=~"ticklake_.*"}"#).is_err());
    assert!(metric_names(r#"x{a="b}"#).is_err());
    assert!(metric_names("sum(x").is_ok(), "only brackets/braces are matched; the parser is not a validator");
    assert_eq!(variable_selector("label_values(m{a=\"b\"}, ns)").unwrap().as_deref(), Some("m{a=\"b\"}"));
    assert_eq!(variable_selector("label_values(ns)").unwrap(), None);
}

#[test]
fn exported_series_come_from_samples_and_type_lines() {
    let scrape = "# HELP e Errors.\n# TYPE e counter\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_sum 0\nh_count 0\n\
                  # TYPE g gauge\ng{kind=\"S3Sink\"} 3\n# TYPE c counter\nc_total 1\n# EOF\n";
    let got = exported_series(scrape);
    let want: BTreeSet<String> =
        ["e_total", "h_bucket", "h_sum", "h_count", "g", "c_total"].iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want);
    assert!(!got.contains("e") && !got.contains("h") && !got.contains("g_count"));
}

#[test]
fn dashboard_is_well_formed_and_queries_ticklake_metrics() {
    let d = load_dashboard();
    check_dashboard_structure(&d);
    let used = dashboard_metrics(&d);
    assert!(!used.is_empty(), "the dashboard references no metric");
    for name in used.keys() {
        assert!(name.starts_with("ticklake_"), "{name} is not a ticklake metric");
    }
    // What the issue asks the dashboard to show.
    for m in [
        "ticklake_producer_ticks_total",
        "ticklake_sink_records_total",
        "ticklake_sink_objects_total",
        "ticklake_sink_bytes_total",
        "ticklake_sink_consumer_lag",
        "ticklake_sink_freshness_seconds_bucket",
        "ticklake_sink_dead_letters_total",
        "ticklake_sink_flush_seconds_bucket",
        "ticklake_sink_rebuilds_total",
        "ticklake_sink_claim_conflicts_total",
        "ticklake_sink_assigned_partitions",
        "ticklake_operator_reconciles_total",
        "ticklake_operator_reconcile_errors_total",
        "ticklake_operator_reconcile_duration_seconds_bucket",
        "ticklake_operator_queue_depth",
        "ticklake_operator_resources",
        "ticklake_operator_leader",
    ] {
        assert!(used.contains_key(m), "the dashboard does not show {m}");
    }
}
