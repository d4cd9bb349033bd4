//! SNS-style filter policies: which events an endpoint receives. Pure: parse once, evaluate
//! many times.
//!
//! A policy is a JSON object. Each key names an event attribute (see
//! [`crate::event::Event::attributes`]) and lists the values it accepts:
//!
//! ```json
//! {
//!   "eventType": ["object.created"],
//!   "key": [{"prefix": "ticks/year=2026/"}],
//!   "objectKind": [{"anything-but": ["dead_letter"]}],
//!   "rows": [{"numeric": [">=", 1000, "<", 100000]}],
//!   "partition": [0, 1, 2],
//!   "$or": [{"sink": ["ticks-lake"]}, {"table": [{"exists": true}]}]
//! }
//! ```
//!
//! * **AND across keys, OR within a key's list**: every key must match; a key matches when any
//!   of its list's entries matches. `$or` takes a list of sub-policies, one of which must match.
//! * Entries: a string or number (exact; a number matches numerically, `300` = `300.0`);
//!   `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`;
//!   `{"anything-but": v}` where `v` is a value, a list of values or `{"prefix": s}` (matches
//!   a *present* attribute that is none of them); `{"numeric": [op, n, (op, n)]}` with `=`,
//!   `<`, `<=`, `>`, `>=` (a range is two comparisons, lower then upper);
//!   `{"exists": true|false}` (present or absent).
//! * An absent attribute matches only `{"exists": false}`. An array attribute matches when any
//!   element does.
//! * Limits, as SNS has them: at most 150 entries in all, `$or` nested at most 3 deep. A
//!   policy that breaks a rule is refused with an error saying which and where.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Entries allowed across the whole policy.
pub const MAX_ENTRIES: usize = 150;
/// `$or` nesting allowed.
pub const MAX_OR_DEPTH: usize = 3;

/// Why a policy was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("filter policy: {0}")]
pub struct PolicyError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    root: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Key(String, Vec<Matcher>),
    Or(Vec<Vec<Clause>>),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Literal),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Literal>),
    AnythingButPrefix(String),
    Numeric(Vec<(Op, f64)>),
    Exists(bool),
}

impl FilterPolicy {
    /// Parses a policy from its JSON text.
    pub fn parse(text: &str) -> Result<FilterPolicy, PolicyError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PolicyError(format!("not JSON: {e}")))?;
        let Value::Object(m) = v else { return err("must be a JSON object, e.g. {\"symbol\": [\"AAPL\"]}") };
        let mut entries = 0;
        let root = parse_object(&m, "", 0, &mut entries)?;
        if root.is_empty() {
            return err("is empty: give at least one key (or no policy at all)");
        }
        Ok(FilterPolicy { root })
    }

    /// Whether an event with these attributes passes.
    pub fn matches(&self, attributes: &BTreeMap<String, Value>) -> bool {
        all(&self.root, attributes)
    }
}

fn parse_object(
    m: &Map<String, Value>,
    at: &str,
    depth: usize,
    entries: &mut usize,
) -> Result<Vec<Clause>, PolicyError> {
    let mut out = Vec::new();
    for (k, v) in m {
        let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
        if k == "$or" {
            if depth >= MAX_OR_DEPTH {
                return err(format!("{path}: $or nested more than {MAX_OR_DEPTH} deep"));
            }
            let Value::Array(alts) = v else { return err(format!("{path}: $or takes a list of objects")) };
            if alts.len() < 2 {
                return err(format!("{path}: $or needs at least two alternatives"));
            }
            let mut parsed = Vec::new();
            for (i, a) in alts.iter().enumerate() {
                let Value::Object(am) = a else {
                    return err(format!("{path}[{i}]: each $or alternative is an object"));
                };
                let clauses = parse_object(am, &format!("{path}[{i}]"), depth + 1, entries)?;
                if clauses.is_empty() {
                    return err(format!("{path}[{i}]: an empty alternative"));
                }
                parsed.push(clauses);
            }
            out.push(Clause::Or(parsed));
            continue;
        }
        if k.is_empty() {
            return err("an empty attribute name");
        }
        let Value::Array(list) = v else {
            return err(format!("{path}: the accepted values are a list, e.g. \"{k}\": [\"a\", \"b\"]"));
        };
        if list.is_empty() {
            return err(format!("{path}: an empty list matches nothing"));
        }
        let mut ms = Vec::new();
        for (i, e) in list.iter().enumerate() {
            *entries += 1;
            if *entries > MAX_ENTRIES {
                return err(format!("more than {MAX_ENTRIES} entries in all"));
            }
            ms.push(parse_matcher(e, &format!("{path}[{i}]"))?);
        }
        out.push(Clause::Key(k.clone(), ms));
    }
    Ok(out)
}

fn literal(v: &Value, at: &str) -> Result<Literal, PolicyError> {
    match v {
        Value::String(s) => Ok(Literal::Str(s.clone())),
        Value::Number(n) => Ok(Literal::Num(n.as_f64().unwrap_or(f64::NAN))),
        _ => err(format!("{at}: expected a string or a number, got {v}")),
    }
}

fn string(v: &Value, at: &str, op: &str) -> Result<String, PolicyError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => err(format!("{at}: {op} takes a non-empty string")),
    }
}

fn parse_matcher(e: &Value, at: &str) -> Result<Matcher, PolicyError> {
    let Value::Object(m) = e else {
        return match e {
            Value::Null | Value::Bool(_) | Value::Array(_) => {
                err(format!("{at}: expected a string, a number or an operator object, got {e}"))
            }
            _ => Ok(Matcher::Exact(literal(e, at)?)),
        };
    };
    if m.len() != 1 {
        return err(format!("{at}: an operator object has exactly one operator"));
    }
    let (op, arg) = m.iter().next().expect("one entry");
    match op.as_str() {
        "prefix" => Ok(Matcher::Prefix(string(arg, at, "prefix")?)),
        "suffix" => Ok(Matcher::Suffix(string(arg, at, "suffix")?)),
        "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(string(arg, at, "equals-ignore-case")?)),
        "exists" => match arg {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            _ => err(format!("{at}: exists takes true or false")),
        },
        "anything-but" => match arg {
            Value::Array(vs) if !vs.is_empty() => {
                Ok(Matcher::AnythingBut(vs.iter().map(|v| literal(v, at)).collect::<Result<_, _>>()?))
            }
            Value::Object(pm) if pm.len() == 1 && pm.contains_key("prefix") => {
                Ok(Matcher::AnythingButPrefix(string(&pm["prefix"], at, "anything-but prefix")?))
            }
            Value::String(_) | Value::Number(_) => Ok(Matcher::AnythingBut(vec![literal(arg, at)?])),
            _ => err(format!("{at}: anything-but takes a value, a non-empty list or {{\"prefix\": s}}")),
        },
        "numeric" => {
            let Value::Array(xs) = arg else {
                return err(format!("{at}: numeric takes a list like [\">\", 0, \"<=\", 5]"));
            };
            if xs.len() != 2 && xs.len() != 4 {
                return err(format!("{at}: numeric takes one comparison or two (a range)"));
            }
            let mut cmps = Vec::new();
            for pair in xs.chunks(2) {
                let op = match pair[0].as_str() {
                    Some("=") => Op::Eq,
                    Some("<") => Op::Lt,
                    Some("<=") => Op::Le,
                    Some(">") => Op::Gt,
                    Some(">=") => Op::Ge,
                    _ => return err(format!("{at}: numeric operators are =, <, <=, >, >=; got {}", pair[0])),
                };
                let Some(n) = pair[1].as_f64() else {
                    return err(format!("{at}: numeric compares with numbers; got {}", pair[1]));
                };
                cmps.push((op, n));
            }
            if cmps.len() == 2 {
                let lower = matches!(cmps[0].0, Op::Gt | Op::Ge);
                let upper = matches!(cmps[1].0, Op::Lt | Op::Le);
                if !lower || !upper {
                    return err(format!("{at}: a numeric range is a lower bound (> or >=) then an upper (< or <=)"));
                }
                if cmps[0].1 > cmps[1].1 {
                    return err(format!("{at}: the numeric range is empty (lower bound above upper)"));
                }
            }
            Ok(Matcher::Numeric(cmps))
        }
        other => err(format!(
            "{at}: unknown operator {other:?} (known: prefix, suffix, equals-ignore-case, anything-but, numeric, exists)"
        )),
    }
}

fn all(clauses: &[Clause], attrs: &BTreeMap<String, Value>) -> bool {
    clauses.iter().all(|c| match c {
        Clause::Key(k, ms) => ms.iter().any(|m| matches_attr(m, attrs.get(k))),
        Clause::Or(alts) => alts.iter().any(|a| all(a, attrs)),
    })
}

fn matches_attr(m: &Matcher, v: Option<&Value>) -> bool {
    match (m, v) {
        (Matcher::Exists(want), v) => v.is_some_and(|v| !v.is_null()) == *want,
        (_, None | Some(Value::Null)) => false,
        (_, Some(Value::Array(items))) => items.iter().any(|i| matches_value(m, i)),
        (_, Some(v)) => matches_value(m, v),
    }
}

fn literal_eq(l: &Literal, v: &Value) -> bool {
    match (l, v) {
        (Literal::Str(s), Value::String(x)) => s == x,
        (Literal::Num(n), Value::Number(x)) => x.as_f64() == Some(*n),
        _ => false,
    }
}

fn matches_value(m: &Matcher, v: &Value) -> bool {
    match m {
        Matcher::Exact(l) => literal_eq(l, v),
        Matcher::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        Matcher::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
        Matcher::EqualsIgnoreCase(p) => v.as_str().is_some_and(|s| s.to_lowercase() == p.to_lowercase()),
        Matcher::AnythingBut(ls) => !ls.iter().any(|l| literal_eq(l, v)),
        Matcher::AnythingButPrefix(p) => v.as_str().is_some_and(|s| !s.starts_with(p.as_str())),
        Matcher::Numeric(cmps) => v.as_f64().is_some_and(|x| {
            cmps.iter().all(|(op, n)| match op {
                Op::Eq => x == *n,
                Op::Lt => x < *n,
                Op::Le => x <= *n,
                Op::Gt => x > *n,
                Op::Ge => x >= *n,
            })
        }),
        Matcher::Exists(_) => unreachable!("handled in matches_attr"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    /// (policy, attributes, expected) for every operator, both ways.
    #[test]
    fn every_operator_matches_and_refuses() {
        let table: Vec<(Value, Value, bool)> = vec![
            // exact strings, OR within the list
            (json!({"sink": ["a", "b"]}), json!({"sink": "b"}), true),
            (json!({"sink": ["a", "b"]}), json!({"sink": "c"}), false),
            (json!({"sink": ["a"]}), json!({}), false),
            // exact numbers, numerically
            (json!({"partition": [3]}), json!({"partition": 3}), true),
            (json!({"partition": [3]}), json!({"partition": 3.0}), true),
            (json!({"partition": [3]}), json!({"partition": "3"}), false),
            (json!({"partition": ["3"]}), json!({"partition": 3}), false),
            // prefix / suffix / equals-ignore-case
            (json!({"key": [{"prefix": "ticks/year=2026"}]}), json!({"key": "ticks/year=2026/x"}), true),
            (json!({"key": [{"prefix": "ticks/year=2026"}]}), json!({"key": "ticks/year=2025/x"}), false),
            (json!({"key": [{"suffix": ".parquet"}]}), json!({"key": "a.parquet"}), true),
            (json!({"key": [{"suffix": ".parquet"}]}), json!({"key": "a.jsonl"}), false),
            (json!({"sink": [{"equals-ignore-case": "TICKS"}]}), json!({"sink": "ticks"}), true),
            (json!({"sink": [{"equals-ignore-case": "TICKS"}]}), json!({"sink": "tick"}), false),
            // anything-but: a value, a list, a prefix; absent never matches
            (json!({"objectKind": [{"anything-but": "dead_letter"}]}), json!({"objectKind": "data"}), true),
            (json!({"objectKind": [{"anything-but": ["dead_letter"]}]}), json!({"objectKind": "dead_letter"}), false),
            (json!({"objectKind": [{"anything-but": ["dead_letter"]}]}), json!({}), false),
            (json!({"partition": [{"anything-but": [1, 2]}]}), json!({"partition": 3}), true),
            (json!({"partition": [{"anything-but": [1, 2]}]}), json!({"partition": 2}), false),
            (json!({"key": [{"anything-but": {"prefix": "_dead"}}]}), json!({"key": "ticks/a"}), true),
            (json!({"key": [{"anything-but": {"prefix": "_dead"}}]}), json!({"key": "_dead/a"}), false),
            // numeric: one comparison, ranges, equality; strings never match
            (json!({"rows": [{"numeric": [">", 0]}]}), json!({"rows": 1}), true),
            (json!({"rows": [{"numeric": [">", 0]}]}), json!({"rows": 0}), false),
            (json!({"rows": [{"numeric": [">=", 10, "<", 20]}]}), json!({"rows": 10}), true),
            (json!({"rows": [{"numeric": [">=", 10, "<", 20]}]}), json!({"rows": 20}), false),
            (json!({"rows": [{"numeric": [">", 10, "<=", 20]}]}), json!({"rows": 20}), true),
            (json!({"rows": [{"numeric": [">", 10, "<=", 20]}]}), json!({"rows": 10}), false),
            (json!({"rows": [{"numeric": ["=", 5]}]}), json!({"rows": 5}), true),
            (json!({"rows": [{"numeric": ["<=", 5]}]}), json!({"rows": 6}), false),
            (json!({"rows": [{"numeric": ["<", 5]}]}), json!({"rows": "4"}), false),
            // exists
            (json!({"table": [{"exists": true}]}), json!({"table": "t"}), true),
            (json!({"table": [{"exists": true}]}), json!({}), false),
            (json!({"table": [{"exists": false}]}), json!({}), true),
            (json!({"table": [{"exists": false}]}), json!({"table": "t"}), false),
            // arrays: any element
            (json!({"symbols": ["AAPL"]}), json!({"symbols": ["MSFT", "AAPL"]}), true),
            (json!({"symbols": ["AAPL"]}), json!({"symbols": ["MSFT"]}), false),
            // AND across keys
            (json!({"sink": ["a"], "rows": [{"numeric": [">", 5]}]}), json!({"sink": "a", "rows": 6}), true),
            (json!({"sink": ["a"], "rows": [{"numeric": [">", 5]}]}), json!({"sink": "a", "rows": 5}), false),
            // $or, also beside other keys
            (json!({"$or": [{"sink": ["a"]}, {"table": [{"exists": true}]}]}), json!({"table": "t"}), true),
            (json!({"$or": [{"sink": ["a"]}, {"table": [{"exists": true}]}]}), json!({"sink": "b"}), false),
            (
                json!({"eventType": ["object.created"], "$or": [{"partition": [0]}, {"rows": [{"numeric": [">", 100]}]}]}),
                json!({"eventType": "object.created", "partition": 1, "rows": 101}),
                true,
            ),
            (
                json!({"eventType": ["object.created"], "$or": [{"partition": [0]}, {"rows": [{"numeric": [">", 100]}]}]}),
                json!({"eventType": "table.schema_changed", "partition": 0}),
                false,
            ),
        ];
        for (i, (policy, a, want)) in table.into_iter().enumerate() {
            let p = FilterPolicy::parse(&policy.to_string()).unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(p.matches(&attrs(a.clone())), want, "case {i}: {policy} on {a}");
        }
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        let bad: Vec<(&str, &str)> = vec![
            ("[]", "must be a JSON object"),
            ("{", "not JSON"),
            ("{}", "is empty"),
            (r#"{"a": "x"}"#, "are a list"),
            (r#"{"a": []}"#, "empty list"),
            (r#"{"a": [true]}"#, "expected a string, a number"),
            (r#"{"a": [{"wildcard": "x*"}]}"#, "unknown operator \"wildcard\""),
            (r#"{"a": [{"prefix": ""}]}"#, "non-empty string"),
            (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, "exactly one operator"),
            (r#"{"a": [{"numeric": [">", "5"]}]}"#, "compares with numbers"),
            (r#"{"a": [{"numeric": ["~", 5]}]}"#, "numeric operators"),
            (r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#, "lower bound"),
            (r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, "range is empty"),
            (r#"{"a": [{"exists": "yes"}]}"#, "true or false"),
            (r#"{"a": [{"anything-but": []}]}"#, "anything-but takes"),
            (r#"{"$or": [{"a": ["x"]}]}"#, "at least two"),
            (r#"{"$or": {"a": ["x"]}}"#, "list of objects"),
        ];
        for (text, want) in bad {
            let e = FilterPolicy::parse(text).expect_err(text);
            assert!(e.to_string().contains(want), "{text}: {e} (wanted {want:?})");
        }
        let many: Vec<u32> = (0..151).collect();
        let e = FilterPolicy::parse(&json!({ "a": many }).to_string()).unwrap_err();
        assert!(e.to_string().contains("more than 150"), "{e}");
        let deep = json!({"$or": [{"$or": [{"$or": [{"$or": [{"a": [1]}, {"b": [1]}]}, {"c": [1]}]}, {"d": [1]}]}, {"e": [1]}]});
        assert!(FilterPolicy::parse(&deep.to_string()).unwrap_err().to_string().contains("nested"));
    }
}
