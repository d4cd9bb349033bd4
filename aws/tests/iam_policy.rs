//! The IAM policies in `deploy/aws/` grant exactly what the code calls — no call without its
//! permission (it would fail with AccessDenied only on real AWS, which no test here reaches), no
//! permission without a call (least privilege).
//!
//! The calls are read from the sources: every `<client>.<operation>()` on a Glue, Athena, SNS,
//! SQS or S3 client. Who makes them decides the policy: the operator (aws/src, except the
//! query runner and the notifier's calls), the notifier worker (workers/src/notifier), and users
//! of `ticklake athena run` (the query runner).

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `service:Action` of every SDK call in the files, by a small scan of `<client> . <op> ( )`.
fn calls(files: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(root().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join("");
        for service in ["glue", "athena", "sns", "sqs", "s3"] {
            for piece in flat.split(&format!("{service}.")).skip(1) {
                let op: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if op.is_empty() || !piece[op.len()..].starts_with("()") {
                    continue;
                }
                if ["as_ref", "as_mut", "is_some", "clone", "config", "unwrap"].contains(&op.as_str()) {
                    continue;
                }
                out.insert(action(service, &op));
            }
        }
    }
    out
}

/// The IAM action of an SDK operation.
fn action(service: &str, op: &str) -> String {
    let special = match (service, op) {
        ("s3", "get_bucket_notification_configuration") => Some("GetBucketNotification"),
        ("s3", "put_bucket_notification_configuration") => Some("PutBucketNotification"),
        ("sqs", "delete_message_batch") => Some("DeleteMessage"),
        ("sqs", "change_message_visibility_batch") => Some("ChangeMessageVisibility"),
        _ => None,
    };
    let name = special
        .map(String::from)
        .unwrap_or_else(|| op.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<Vec<_>>().join(""));
    format!("{service}:{name}")
}

/// The actions a policy document allows.
fn allowed(path: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().expect("Statement") {
        assert_eq!(st["Effect"], "Allow", "{path}: only Allow statements");
        match &st["Action"] {
            serde_json::Value::String(a) => {
                out.insert(a.clone());
            }
            serde_json::Value::Array(a) => out.extend(a.iter().map(|v| v.as_str().unwrap().to_string())),
            other => panic!("{path}: Action {other}"),
        }
        let resources = match &st["Resource"] {
            serde_json::Value::String(r) => vec![r.clone()],
            serde_json::Value::Array(r) => r.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
            other => panic!("{path}: Resource {other}"),
        };
        assert!(!resources.is_empty(), "{path}: a statement without resources");
    }
    assert!(!out.iter().any(|a| a.contains('*')), "{path}: no wildcard actions");
    out
}

fn check(policy: &str, needed: BTreeSet<String>, also_needed: &[&str], beyond_code: &[&str]) {
    let mut needed = needed;
    needed.extend(also_needed.iter().map(|s| s.to_string()));
    let allowed = allowed(policy);
    let missing: Vec<&String> = needed.difference(&allowed).collect();
    let extra: Vec<&String> = allowed.difference(&needed).filter(|a| !beyond_code.contains(&a.as_str())).collect();
    assert!(missing.is_empty(), "{policy} lacks actions the code calls: {missing:?}");
    assert!(extra.is_empty(), "{policy} grants actions nothing calls: {extra:?}");
}

/// Calls of the query runner (users of `ticklake athena run`), not of the operator.
const QUERY_CALLS: [&str; 4] =
    ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution"];
/// Calls of the notifier worker made through aws/src helpers.
const NOTIFIER_CALLS_IN_AWS: [&str; 5] =
    ["sns:Publish", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"];

#[test]
fn the_operator_policy_is_exactly_what_the_operator_calls() {
    let files = ["aws/src/glue.rs", "aws/src/athena.rs", "aws/src/sns.rs", "aws/src/sqs.rs", "aws/src/s3notify.rs"];
    let mut needed = calls(&files);
    for q in QUERY_CALLS {
        assert!(needed.remove(q), "the query runner calls {q}");
    }
    for n in ["sns:Publish", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"] {
        needed.remove(n);
    }
    assert!(needed.len() > 30, "the scan found the calls: {needed:?}");
    // Tags given on create need the tagging permission too; the crawler's role is passed to Glue.
    check(
        "deploy/aws/operator-iam-policy.json",
        needed,
        &["glue:TagResource", "athena:TagResource", "sns:TagResource", "sqs:TagQueue", "iam:PassRole"],
        &[],
    );
}

#[test]
fn the_notifier_policy_is_exactly_what_the_notifier_worker_calls() {
    let dir = root().join("workers/src/notifier");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| format!("workers/src/notifier/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".rs"))
        .collect();
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let needed = calls(&refs);
    check("deploy/aws/notifier-iam-policy.json", needed, &NOTIFIER_CALLS_IN_AWS, &[]);
}

#[test]
fn the_query_policy_covers_the_query_runner() {
    let needed: BTreeSet<String> = calls(&["aws/src/athena.rs"])
        .into_iter()
        .filter(|a| QUERY_CALLS.contains(&a.as_str()) || a == "athena:ListNamedQueries" || a == "athena:GetNamedQuery")
        .collect();
    check(
        "deploy/aws/athena-query-iam-policy.json",
        needed,
        &[],
        // What Athena itself reads and writes on the caller's behalf (documented in the policy).
        &[
            "glue:GetDatabase",
            "glue:GetTable",
            "glue:GetPartitions",
            "s3:GetBucketLocation",
            "s3:ListBucket",
            "s3:GetObject",
            "s3:PutObject",
        ],
    );
}

#[test]
fn the_scan_maps_operations_to_actions() {
    assert_eq!(action("glue", "get_crawler"), "glue:GetCrawler");
    assert_eq!(action("s3", "put_bucket_notification_configuration"), "s3:PutBucketNotification");
    assert_eq!(action("sqs", "delete_message_batch"), "sqs:DeleteMessage");
}
