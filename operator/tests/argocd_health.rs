//! The Argo CD health checks in `deploy/argocd/`, run with Lua 5.1 (the language of Argo CD's
//! gopher-lua) the way Argo CD runs them: base, package and table libraries only, the resource as
//! the global `obj` (JSON null as nil, arrays as plain tables), a table with `status` and
//! `message` returned.
//!
//! * every case of every `health_test.yaml` (Argo CD's own test format);
//! * the scripts against statuses made by the operator's own code
//!   ([`ticklake_operator::conditions`]), so they cannot drift from what the operator writes;
//! * the three scripts are one, and `argocd-cm-patch.yaml` holds exact copies;
//! * the Argo CD `Application`s point at paths that exist.
//!
//! A Lua error (indexing nil, comparing a string with a number, ...) fails the test with it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use mlua::{Lua, LuaOptions, LuaSerdeExt, StdLib};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use ticklake_api::crd::condition::{DEGRADED, PROGRESSING, READY};
use ticklake_api::crd::{
    AlertSubscription, AlertSubscriptionStatus, S3Sink, S3SinkStatus, StockStream, StockStreamStatus, find_condition,
};
use ticklake_operator::conditions::{self, Observed, Problem};
use ticklake_operator::controller::workload_state;
use ticklake_operator::render::{Component, workload_name};

const KINDS: [&str; 3] = ["StockStream", "S3Sink", "AlertSubscription"];
const GROUP: &str = "ticklake.dev";
/// What Argo CD accepts as `hs.status` (anything else becomes Unknown).
const STATUSES: [&str; 6] = ["Healthy", "Progressing", "Suspended", "Degraded", "Missing", "Unknown"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("operator/ is in the repository").to_path_buf()
}

fn argocd() -> PathBuf {
    repo().join("deploy/argocd")
}

fn kind_dir(kind: &str) -> PathBuf {
    argocd().join("resource_customizations").join(GROUP).join(kind)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn script(kind: &str) -> String {
    read(&kind_dir(kind).join("health.lua"))
}

/// What a health script returned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Health {
    status: String,
    message: String,
}

/// Runs a health script on `obj` as Argo CD does (util/lua/lua.go: `SkipOpenLibs` unless
/// `useOpenLibs`, then package, base, table and a safe os — no string or math library, so a
/// script using them fails here as it would there).
fn health(script: &str, obj: &Value) -> Result<Health, String> {
    let lua = Lua::new_with(StdLib::PACKAGE | StdLib::TABLE, LuaOptions::default()).map_err(|e| e.to_string())?;
    // As Argo CD's decodeValue: null becomes nil, arrays are plain tables, numbers are numbers.
    let options = mlua::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
        .set_array_metatable(false)
        .detect_serde_json_arbitrary_precision(true);
    let value = lua.to_value_with(obj, options).map_err(|e| e.to_string())?;
    lua.globals().set("obj", value).map_err(|e| e.to_string())?;
    let table: mlua::Table = lua.load(script).set_name("health.lua").eval().map_err(|e| e.to_string())?;
    let status: Option<String> = table.get("status").map_err(|e| format!("hs.status: {e}"))?;
    let message: Option<String> = table.get("message").map_err(|e| format!("hs.message: {e}"))?;
    let status = status.ok_or("hs.status is not set")?;
    if !STATUSES.contains(&status.as_str()) {
        return Err(format!("hs.status {status:?} is not an Argo CD health status (Argo CD would show Unknown)"));
    }
    Ok(Health { status, message: message.ok_or("hs.message is not set")? })
}

/// [`health`] with `kind`'s script, panicking with the Lua error.
fn health_of(kind: &str, obj: &Value, case: &str) -> Health {
    health(&script(kind), obj).unwrap_or_else(|e| panic!("{kind} {case}: the health script failed: {e}"))
}

fn health_is(status: &str, message: impl Into<String>) -> Health {
    Health { status: status.to_string(), message: message.into() }
}

// ---- health_test.yaml ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    health_status: Health,
    input_path: String,
}

/// A testdata sample must be a resource the API server would accept back: its typed form parses
/// (the specs deny unknown fields; conditions need every field).
fn check_typed(kind: &str, obj: &Value, path: &Path) {
    let parsed = match kind {
        "StockStream" => serde_json::from_value::<StockStream>(obj.clone()).map(|_| ()),
        "S3Sink" => serde_json::from_value::<S3Sink>(obj.clone()).map(|_| ()),
        "AlertSubscription" => serde_json::from_value::<AlertSubscription>(obj.clone()).map(|_| ()),
        other => panic!("unknown kind {other}"),
    };
    parsed.unwrap_or_else(|e| panic!("{}: not a valid {kind}: {e}", path.display()));
    assert_eq!(obj["apiVersion"], "ticklake.dev/v1alpha1", "{}", path.display());
    assert_eq!(obj["kind"], kind, "{}", path.display());
}

#[test]
fn every_health_test_yaml_case_passes() {
    for kind in KINDS {
        let dir = kind_dir(kind);
        let tests: HealthTests = yaml(&dir.join("health_test.yaml"));
        assert!(!tests.tests.is_empty(), "{kind}: health_test.yaml has no tests");
        let mut used = BTreeSet::new();
        let mut seen_statuses = BTreeSet::new();
        for t in &tests.tests {
            let path = dir.join(&t.input_path);
            let obj: Value = yaml(&path);
            check_typed(kind, &obj, &path);
            let got = health_of(kind, &obj, &t.input_path);
            assert_eq!(got, t.health_status, "{kind} {}", t.input_path);
            used.insert(path.file_name().unwrap().to_string_lossy().to_string());
            seen_statuses.insert(got.status);
        }
        // Every sample is a test.
        let samples: BTreeSet<String> = std::fs::read_dir(dir.join("testdata"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(samples, used, "{kind}: testdata/ files not named in health_test.yaml");
        for status in ["Healthy", "Progressing", "Degraded"] {
            assert!(seen_statuses.contains(status), "{kind}: no {status} case in health_test.yaml");
        }
    }
}

// ---- statuses made by the operator's code ------------------------------------------------------

/// How the expected message is found in the conditions the operator wrote.
#[derive(Clone, Copy, Debug)]
enum Says {
    /// The message of this condition.
    Message(&'static str),
    /// `Ready`'s reason and message: `Reason: message`.
    ReadyReasonAndMessage,
    /// "waiting for the operator to observe generation N".
    Waiting,
}

/// The resource `kind` with `metadata.generation` and the status the operator writes for
/// `observed` (the same typed status structs the controllers fill).
fn resource(kind: &str, name: &str, generation: i64, conditions: &[Condition], observed_generation: i64) -> Value {
    let status = match kind {
        "StockStream" => serde_json::to_value(StockStreamStatus {
            observed_generation: Some(observed_generation),
            conditions: conditions.to_vec(),
            ready_replicas: Some(2),
            topic_partitions: Some(6),
            ..Default::default()
        }),
        "S3Sink" => serde_json::to_value(S3SinkStatus {
            observed_generation: Some(observed_generation),
            conditions: conditions.to_vec(),
            ready_replicas: Some(2),
            ..Default::default()
        }),
        "AlertSubscription" => serde_json::to_value(AlertSubscriptionStatus {
            observed_generation: Some(observed_generation),
            conditions: conditions.to_vec(),
            ..Default::default()
        }),
        other => panic!("unknown kind {other}"),
    }
    .unwrap();
    json!({
        "apiVersion": "ticklake.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ticklake-demo", "generation": generation},
        "spec": {},
        "status": status,
    })
}

fn expected_message(says: Says, conditions: &[Condition], generation: i64) -> String {
    match says {
        Says::Message(t) => find_condition(conditions, t).unwrap().message.clone(),
        Says::ReadyReasonAndMessage => {
            let r = find_condition(conditions, READY).unwrap();
            format!("{}: {}", r.reason, r.message)
        }
        Says::Waiting => format!("waiting for the operator to observe generation {generation}"),
    }
}

#[test]
fn operator_statuses_map_to_the_right_health() {
    const GENERATION: i64 = 7;
    let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_748_855_645).unwrap());
    let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(1_748_855_741).unwrap());
    let kafka_down = || Problem::new("KafkaUnavailable", "Kafka: topic ticks: kafka: no broker answered");
    let cannot_shrink = || Problem::new("PartitionsCannotShrink", "topic ticks has 12 partitions, the spec asks for 6");

    for (kind, name, component) in [
        ("StockStream", "ticks", Some(Component::Producer)),
        ("S3Sink", "ticks-lake", Some(Component::Sink)),
        ("AlertSubscription", "ticks-landed", None),
    ] {
        let workload_kind = if kind == "StockStream" { "StatefulSet" } else { "Deployment" };
        // As the controllers build it: (desired, ready, updated, just written / not yet observed).
        let workload = |desired: i32, ready: i32, updated: i32, current: bool| {
            let c = component.expect("a kind with a workload");
            Some(workload_state(
                format!("{workload_kind}/{}", workload_name(name, c)),
                Some(3),
                desired,
                Some(if current { 3 } else { 2 }),
                Some(ready),
                Some(updated),
                false,
            ))
        };
        let base = Observed { generation: Some(GENERATION), ..Default::default() };
        let mut cases: Vec<(&str, Observed, &str, Says)> = vec![
            // What every kind can reach.
            ("no workload, nothing to do", base.clone(), "Healthy", Says::Message(READY)),
            (
                "spec cannot be rendered",
                Observed {
                    problems: vec![Problem::new("KafkaNotConfigured", "spec.kafka.bootstrapServers is not set")],
                    ..base.clone()
                },
                "Degraded",
                Says::Message(DEGRADED),
            ),
            (
                "not ready, nothing wrong, nothing moving",
                Observed {
                    not_ready: Some(Problem::new(
                        "DeliveryNotAvailable",
                        "in a cluster, alerts are delivered through Amazon SNS",
                    )),
                    ..base.clone()
                },
                "Degraded",
                Says::ReadyReasonAndMessage,
            ),
            (
                "a referenced resource is missing",
                Observed {
                    not_ready: Some(Problem::new(
                        "SinkNotFound",
                        "S3Sink ticks-lake does not exist in namespace ticklake-demo",
                    )),
                    ..base.clone()
                },
                "Degraded",
                Says::ReadyReasonAndMessage,
            ),
        ];
        if component.is_some() {
            cases.extend([
                (
                    "pods starting",
                    Observed { workload: workload(2, 0, 2, true), ..base.clone() },
                    "Progressing",
                    Says::Message(PROGRESSING),
                ),
                (
                    "rolling out",
                    Observed { workload: workload(2, 2, 1, true), ..base.clone() },
                    "Progressing",
                    Says::Message(PROGRESSING),
                ),
                (
                    "new spec not yet picked up by the workload controller",
                    Observed { workload: workload(2, 2, 2, false), ..base.clone() },
                    "Progressing",
                    Says::Message(PROGRESSING),
                ),
                (
                    "running",
                    Observed { workload: workload(2, 2, 2, true), ..base.clone() },
                    "Healthy",
                    Says::Message(READY),
                ),
                (
                    "scaled to zero",
                    Observed { workload: workload(0, 0, 0, true), ..base.clone() },
                    "Suspended",
                    Says::Message(READY),
                ),
                (
                    "scaled to zero, the workload not caught up yet",
                    Observed { workload: workload(0, 1, 0, false), ..base.clone() },
                    "Suspended",
                    Says::Message(READY),
                ),
                (
                    "a problem while running",
                    Observed { workload: workload(2, 2, 2, true), problems: vec![kafka_down()], ..base.clone() },
                    "Degraded",
                    Says::Message(DEGRADED),
                ),
                (
                    "two problems while rolling out",
                    Observed {
                        workload: workload(2, 1, 1, true),
                        problems: vec![kafka_down(), cannot_shrink()],
                        ..base.clone()
                    },
                    "Degraded",
                    Says::Message(DEGRADED),
                ),
                (
                    "not ready while running",
                    Observed {
                        workload: workload(2, 2, 2, true),
                        not_ready: Some(Problem::new("TopicMissing", "topic ticks does not exist yet")),
                        ..base.clone()
                    },
                    "Degraded",
                    Says::ReadyReasonAndMessage,
                ),
                (
                    "not ready while pods start",
                    Observed {
                        workload: workload(2, 0, 2, true),
                        not_ready: Some(Problem::new("TopicMissing", "topic ticks does not exist yet")),
                        ..base.clone()
                    },
                    "Progressing",
                    Says::Message(PROGRESSING),
                ),
            ]);
        }

        for (case, observed, want_status, says) in cases {
            // A first status, and the same one written over an earlier "nothing to run" status
            // (merge keeps the times of unchanged conditions), as the controllers write them.
            let first = conditions::merge(&[], conditions::conditions(&observed), t0.clone());
            let earlier = conditions::merge(
                &[],
                conditions::conditions(&Observed { workload: None, ..base.clone() }),
                t0.clone(),
            );
            let later = conditions::merge(&earlier, conditions::conditions(&observed), t1.clone());
            for conds in [&first, &later] {
                assert!(conds.iter().all(|c| c.observed_generation == Some(GENERATION)), "{kind} {case}");
                let obj = resource(kind, name, GENERATION, conds, GENERATION);
                let got = health_of(kind, &obj, case);
                let want = health_is(want_status, expected_message(says, conds, GENERATION));
                assert_eq!(got, want, "{kind} {case}: conditions {}", serde_json::to_string(conds).unwrap());
            }

            // The spec changed since: whatever the conditions say, Argo CD must wait.
            let stale = resource(kind, name, GENERATION + 1, &first, GENERATION);
            let got = health_of(kind, &stale, case);
            assert_eq!(got, health_is("Progressing", expected_message(Says::Waiting, &first, GENERATION + 1)));
            // Only the conditions stale (status.observedGeneration already bumped): the same.
            let stale = resource(kind, name, GENERATION + 1, &first, GENERATION + 1);
            assert_eq!(health_of(kind, &stale, case).status, "Progressing", "{kind} {case}: stale conditions");
        }

        // Just created: no status at all, then a status without conditions.
        let mut obj = resource(kind, name, 1, &[], 1);
        assert_eq!(
            health_of(kind, &obj, "no conditions"),
            health_is("Progressing", "waiting for the operator to observe generation 1")
        );
        obj.as_object_mut().unwrap().remove("status");
        assert_eq!(
            health_of(kind, &obj, "no status"),
            health_is("Progressing", "waiting for the operator to observe generation 1")
        );
    }
}

/// Objects the operator does not write but Argo CD may still hand over: the script must give an
/// answer, never a Lua error.
#[test]
fn odd_objects_get_an_answer_not_a_lua_error() {
    let cond = |t: &str, s: &str, reason: &str| json!({"type": t, "status": s, "reason": reason, "message": ""});
    let ok = [
        cond("Ready", "True", "Running"),
        cond("Progressing", "False", "RolledOut"),
        cond("Degraded", "False", "AsExpected"),
    ];
    let cases = [
        ("no metadata, no status", json!({}), health_is("Progressing", "waiting for the operator to report status")),
        (
            "status null",
            json!({"metadata": {"generation": 2}, "status": null}),
            health_is("Progressing", "waiting for the operator to observe generation 2"),
        ),
        (
            "conditions null",
            json!({"metadata": {"generation": 2}, "status": {"conditions": null}}),
            health_is("Progressing", "waiting for the operator to observe generation 2"),
        ),
        (
            "one condition missing",
            json!({"metadata": {"generation": 2}, "status": {"conditions": [ok[0], ok[1]]}}),
            health_is("Progressing", "waiting for the operator to observe generation 2"),
        ),
        (
            "no observedGeneration anywhere, empty messages",
            json!({"metadata": {"generation": 2}, "status": {"conditions": ok}}),
            health_is("Healthy", "Running"),
        ),
        (
            "no metadata.generation",
            json!({"status": {"observedGeneration": 5, "conditions": ok}}),
            health_is("Healthy", "Running"),
        ),
        (
            "Ready=Unknown",
            json!({"metadata": {"generation": 1}, "status": {"conditions": [
                {"type": "Ready", "status": "Unknown", "reason": "Pending", "message": "not known yet"}, ok[1], ok[2]
            ]}}),
            health_is("Progressing", "not known yet"),
        ),
        (
            "Ready=False without a reason",
            json!({"metadata": {"generation": 1}, "status": {"conditions": [
                {"type": "Ready", "status": "False", "message": "no reason given"}, ok[1], ok[2]
            ]}}),
            health_is("Degraded", "no reason given"),
        ),
    ];
    for kind in KINDS {
        for (case, obj, want) in &cases {
            assert_eq!(&health_of(kind, obj, case), want, "{kind} {case}");
        }
    }
    // And the harness does report Lua errors (here: comparing a string with a number).
    let bad = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": "two", "conditions": ok}});
    let err = health(&script("S3Sink"), &bad).expect_err("a Lua error must surface");
    assert!(err.contains("attempt to compare"), "{err}");
}

// ---- one script, and its argocd-cm copies -------------------------------------------------------

/// Argo CD keys health scripts by kind and has no way for one to load another (no `require` of
/// files in a ConfigMap), so each kind has its own health.lua. The logic is the same for the three
/// (they write the same conditions), so the files are kept byte-identical.
#[test]
fn the_three_scripts_are_one() {
    let first = script(KINDS[0]);
    for kind in &KINDS[1..] {
        assert!(script(kind) == first, "{kind}/health.lua differs from {}/health.lua: keep them identical", KINDS[0]);
    }
}

#[test]
fn argocd_cm_patch_holds_the_scripts() {
    let patch: Value = yaml(&argocd().join("argocd-cm-patch.yaml"));
    assert_eq!(patch["kind"], "ConfigMap");
    assert_eq!(patch["metadata"]["name"], "argocd-cm");
    let data = patch["data"].as_object().expect("argocd-cm-patch.yaml has data");
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    let want: BTreeSet<String> = KINDS.iter().map(|k| format!("resource.customizations.health.{GROUP}_{k}")).collect();
    assert_eq!(keys, want.iter().map(String::as_str).collect(), "argocd-cm-patch.yaml keys");
    for kind in KINDS {
        let inline = data[&format!("resource.customizations.health.{GROUP}_{kind}")].as_str().unwrap();
        assert!(
            inline == script(kind),
            "argocd-cm-patch.yaml: the {kind} script differs from resource_customizations/{GROUP}/{kind}/health.lua"
        );
    }
}

// ---- the Applications --------------------------------------------------------------------------

fn application(file: &str) -> Value {
    let app: Value = yaml(&argocd().join(file));
    assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1", "{file}");
    assert_eq!(app["kind"], "Application", "{file}");
    assert_eq!(app["metadata"]["namespace"], "argocd", "{file}");
    // The workspace's repository.
    let cargo = read(&repo().join("Cargo.toml"));
    let repository = cargo
        .lines()
        .find_map(|l| l.strip_prefix("repository = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("Cargo.toml names the repository");
    assert_eq!(app["spec"]["source"]["repoURL"], repository, "{file}");
    app
}

fn sync_options(app: &Value) -> Vec<&str> {
    app["spec"]["syncPolicy"]["syncOptions"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect()
}

fn wave(app: &Value) -> i64 {
    app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"].as_str().unwrap().parse().unwrap()
}

#[test]
fn applications_point_at_what_exists() {
    let operator = application("ticklake-operator.yaml");
    let chart = operator["spec"]["source"]["path"].as_str().unwrap();
    assert_eq!(chart, "charts/ticklake");
    // The chart itself (Chart.yaml) is written separately; the folder is there.
    assert!(repo().join(chart).is_dir(), "{chart} is not a directory");
    assert_eq!(operator["spec"]["destination"]["namespace"], "ticklake-system");
    let opts = sync_options(&operator);
    assert!(opts.contains(&"ServerSideApply=true") && opts.contains(&"CreateNamespace=true"), "{opts:?}");
    // Every value the Application sets is one the chart has (once the chart has its values.yaml).
    let values_file = repo().join(chart).join("values.yaml");
    let values_object = &operator["spec"]["source"]["helm"]["valuesObject"];
    if values_file.is_file() && !values_object.is_null() {
        let values: Value = yaml(&values_file);
        fn check(set: &Value, chart: &Value, at: &str) {
            let Some(set) = set.as_object() else { return };
            for (key, v) in set {
                let path = format!("{at}.{key}");
                let Some(has) = chart.get(key) else { panic!("valuesObject {path}: no such value in the chart") };
                if has.is_object() {
                    check(v, has, &path);
                }
            }
        }
        check(values_object, &values, "");
    }

    let examples = application("ticklake-examples.yaml");
    let dir = examples["spec"]["source"]["path"].as_str().unwrap();
    assert_eq!(dir, "deploy/examples");
    assert!(repo().join(dir).is_dir(), "{dir} is not a directory");
    assert_eq!(examples["spec"]["destination"]["namespace"], "ticklake-demo");
    let automated = &examples["spec"]["syncPolicy"]["automated"];
    assert_eq!((&automated["prune"], &automated["selfHeal"]), (&json!(true), &json!(true)));
    assert!(sync_options(&examples).contains(&"CreateNamespace=true"));
    assert!(wave(&examples) > wave(&operator), "the examples sync after the operator");

    // What the examples Application deploys: ticklake resources only, and an exclusion that
    // still names a file.
    let exclude = examples["spec"]["source"]["directory"]["exclude"].as_str().unwrap_or("");
    if !exclude.is_empty() {
        assert!(repo().join(dir).join(exclude).is_file(), "directory.exclude {exclude} names no file in {dir}");
    }
    let mut deployed = 0;
    for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")) || name == exclude {
            continue;
        }
        let obj: Value = yaml(&path);
        let api = obj["apiVersion"].as_str().unwrap_or("");
        assert!(api.starts_with("ticklake.dev/"), "{}: {api}", path.display());
        assert!(KINDS.contains(&obj["kind"].as_str().unwrap_or("")), "{}", path.display());
        deployed += 1;
    }
    assert!(deployed > 0, "the examples Application deploys nothing");
}
