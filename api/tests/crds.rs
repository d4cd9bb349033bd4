//! The CustomResourceDefinitions, as the API server and `kubectl` will see them.
//!
//! * the committed `crds/*.yaml` (and the Helm chart's copy) are what [`ticklake_api::crd::generate`] returns
//!   (`TICKLAKE_UPDATE_CRDS=1` rewrites them);
//! * every schema is a *structural* schema, every field documented, every CEL rule compiles
//!   and fits the API server's cost budget;
//! * the example manifests in `deploy/examples/` parse into the typed resources and pass the
//!   schema and its CEL rules — evaluated here with kube's client-side CEL evaluator, after
//!   the schema's defaults are applied, as the API server does;
//! * each CEL rule accepts what it should and refuses what it should;
//! * serde's defaults and the schema's defaults agree.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::core::cel::{ScopeContext, Validator, WarningKind, analyze_rule, apply_defaults, compile_schema};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use ticklake_api::crd::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("api/ has a parent").to_path_buf()
}

/// The three CRDs by kind.
fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("StockStream", StockStream::crd()),
        ("S3Sink", S3Sink::crd()),
        ("AlertSubscription", AlertSubscription::crd()),
    ]
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("a schema");
    serde_json::to_value(schema).expect("the schema serializes")
}

fn schema_for_kind(kind: &str) -> Value {
    let (_, crd) = crds().into_iter().find(|(k, _)| *k == kind).unwrap_or_else(|| panic!("no CRD {kind}"));
    schema_of(&crd)
}

/// Every YAML document of a file (a `---`-separated stream), empty documents skipped.
fn documents(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde_yaml::Value::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn example_files() -> Vec<PathBuf> {
    let dir = workspace_root().join("deploy/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

fn example(name: &str) -> Value {
    let path = workspace_root().join("deploy/examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = documents(&text);
    assert_eq!(docs.len(), 1, "{name}: one resource per file");
    serde_json::to_value(docs.remove(0)).expect("YAML converts to JSON")
}

/// A typed resource of any ticklake kind.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Resource {
    StockStream(StockStream),
    S3Sink(S3Sink),
    AlertSubscription(AlertSubscription),
}

/// Parses one manifest into its typed resource, by `apiVersion` and `kind`.
fn parse_resource(doc: &Value) -> Result<Resource, String> {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if api_version != "ticklake.dev/v1alpha1" {
        return Err(format!("apiVersion {api_version:?} is not ticklake.dev/v1alpha1"));
    }
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let err = |e: serde_json::Error| format!("{kind}: {e}");
    match kind {
        "StockStream" => serde_json::from_value(doc.clone()).map(Resource::StockStream).map_err(err),
        "S3Sink" => serde_json::from_value(doc.clone()).map(Resource::S3Sink).map_err(err),
        "AlertSubscription" => serde_json::from_value(doc.clone()).map(Resource::AlertSubscription).map_err(err),
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// The same, through serde_yaml (what the local runner does with a manifest file).
fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_yaml::Error> {
    serde_yaml::from_str(text)
}

/// RFC 7386 JSON merge patch: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn patched(base: &Value, patch: Value) -> Value {
    let mut v = base.clone();
    merge(&mut v, &patch);
    v
}

// --- a small OpenAPI v3 value validator: what the API server checks besides CEL ---------------

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => false,
    }
}

/// Checks `value` against the OpenAPI constraints of `schema` (types, enums, bounds, patterns,
/// required and unknown fields, list-type uniqueness), appending readable errors.
fn openapi_errors(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let get = |k: &str| schema.get(k);
    if value.is_null() {
        if get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    if get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(format!("{path}: must be an integer or a string"));
        }
        return;
    }
    let Some(ty) = get("type").and_then(Value::as_str) else {
        return; // x-kubernetes-preserve-unknown-fields without a type: anything goes
    };
    if !type_matches(ty, value) {
        errors.push(format!("{path}: expected {ty}, got {value}"));
        return;
    }
    if let Some(allowed) = get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    match value {
        Value::String(s) => {
            let n = s.chars().count() as u64;
            if let Some(min) = get("minLength").and_then(Value::as_u64)
                && n < min
            {
                errors.push(format!("{path}: shorter than {min}"));
            }
            if let Some(max) = get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                errors.push(format!("{path}: longer than {max}"));
            }
            if let Some(p) = get("pattern").and_then(Value::as_str)
                && !regex::Regex::new(p).expect("pattern compiles").is_match(s)
            {
                errors.push(format!("{path}: {s:?} does not match {p}"));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().expect("finite");
            if let Some(min) = get("minimum").and_then(Value::as_f64)
                && x < min
            {
                errors.push(format!("{path}: {x} is below {min}"));
            }
            if let Some(max) = get("maximum").and_then(Value::as_f64)
                && x > max
            {
                errors.push(format!("{path}: {x} is above {max}"));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = get("minItems").and_then(Value::as_u64)
                && n < min
            {
                errors.push(format!("{path}: fewer than {min} items"));
            }
            if let Some(max) = get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                errors.push(format!("{path}: more than {max} items"));
            }
            match get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => {
                    let distinct: BTreeSet<String> = items.iter().map(Value::to_string).collect();
                    if distinct.len() != items.len() {
                        errors.push(format!("{path}: duplicate values in a set"));
                    }
                }
                Some("map") => {
                    let keys: Vec<&str> = get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let distinct: BTreeSet<String> = items
                        .iter()
                        .map(|item| {
                            keys.iter()
                                .map(|k| item.get(*k).map(Value::to_string).unwrap_or_default())
                                .collect::<Vec<_>>()
                                .join("/")
                        })
                        .collect();
                    if distinct.len() != items.len() {
                        errors.push(format!("{path}: duplicate entries for the keys {keys:?}"));
                    }
                }
                _ => {}
            }
            if let Some(item_schema) = get("items") {
                for (i, item) in items.iter().enumerate() {
                    openapi_errors(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(fields) => {
            for name in get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = name.as_str().expect("required names are strings");
                if !fields.contains_key(name) {
                    errors.push(format!("{path}.{name}: required"));
                }
            }
            if let Some(max) = get("maxProperties").and_then(Value::as_u64)
                && fields.len() as u64 > max
            {
                errors.push(format!("{path}: more than {max} entries"));
            }
            let properties = get("properties").and_then(Value::as_object);
            let additional = get("additionalProperties").filter(|a| a.is_object());
            let preserve = get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            for (name, v) in fields {
                let child = format!("{path}.{name}");
                if let Some(s) = properties.and_then(|p| p.get(name)) {
                    openapi_errors(s, v, &child, errors);
                } else if let Some(s) = additional {
                    openapi_errors(s, v, &child, errors);
                } else if !preserve {
                    errors.push(format!("{child}: unknown field"));
                }
            }
        }
        _ => {}
    }
}

/// What the API server would say about creating (or, with `old`, updating) `object`: schema
/// defaults applied, then the OpenAPI constraints, then the CEL rules. Empty means accepted.
fn admission_errors(object: &Value, old: Option<&Value>) -> Vec<String> {
    let kind = object["kind"].as_str().expect("a kind");
    let schema = schema_for_kind(kind);
    let defaulted = apply_defaults(&schema, object);
    let mut errors = Vec::new();
    // apiVersion, kind and metadata are the API server's own business.
    for part in ["spec", "status"] {
        if let Some(v) = defaulted.get(part) {
            openapi_errors(&schema["properties"][part], v, part, &mut errors);
        }
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        if defaulted.get(name.as_str().unwrap()).is_none() {
            errors.push(format!("{name}: required"));
        }
    }
    if let Err(cel) = Validator::new().validate(&schema, object, old) {
        errors.extend(cel.iter().map(|e| format!("{} ({:?}: {})", e, e.kind, e.rule)));
    }
    errors
}

fn assert_admitted(what: &str, object: &Value) {
    let errors = admission_errors(object, None);
    assert!(errors.is_empty(), "{what}: expected to be accepted, got {errors:#?}");
}

fn assert_refused(what: &str, object: &Value, expected: &str) {
    let errors = admission_errors(object, None);
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "{what}: expected an error containing {expected:?}, got {errors:#?}"
    );
}

/// Visits every schema node with its path (`.properties.x`, `.items`, `.additionalProperties`).
fn walk<'a>(schema: &'a Value, path: String, visit: &mut dyn FnMut(&str, &'a Value)) {
    visit(&path, schema);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(child, format!("{path}.{name}"), visit);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, format!("{path}[*]"), visit);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        walk(additional, format!("{path}{{*}}"), visit);
    }
}

fn rules_at(schema: &Value) -> Vec<&str> {
    schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("rule").and_then(Value::as_str))
        .collect()
}

/// The schema node at a dotted path such as `spec.source.replay.mapping` (`[*]` for items).
fn node<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut cur = schema;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, items) = match part.strip_suffix("[*]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        cur = cur
            .get("properties")
            .and_then(|p| p.get(name))
            .unwrap_or_else(|| panic!("no property {name} on the way to {path}"));
        if items {
            cur = cur.get("items").unwrap_or_else(|| panic!("{name} is not an array"));
        }
    }
    cur
}

// ---------------------------------------------------------------------------------------------
// (a) committed CRDs are current
// ---------------------------------------------------------------------------------------------

#[test]
fn committed_crds_match_generate() {
    let generated = generate();
    let names: Vec<&str> = generated.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["stockstreams.yaml", "s3sinks.yaml", "alertsubscriptions.yaml"]);

    // crds/ and the Helm chart's copy (a chart cannot read files outside its folder).
    for folder in ["crds", "charts/ticklake/files/crds"] {
        let dir = workspace_root().join(folder);
        let update = std::env::var("TICKLAKE_UPDATE_CRDS").is_ok_and(|v| v == "1");
        let mut stale = Vec::new();
        for (name, yaml) in &generated {
            assert!(yaml.starts_with("# Generated by `ticklake crdgen` — do not edit.\n"), "{name}: header");
            let path = dir.join(name);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != *yaml {
                if update {
                    std::fs::create_dir_all(&dir).expect("crds/ can be created");
                    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    eprintln!("wrote {}", path.display());
                } else {
                    stale.push(*name);
                }
            }
        }
        // Nothing else in crds/: a kind that was renamed or removed leaves no orphan behind.
        let mut orphans: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        orphans.retain(|f| f.ends_with(".yaml") && !names.contains(&f.as_str()));
        assert!(orphans.is_empty(), "{folder}/ holds files `generate()` does not make: {orphans:?}; delete them");
        assert!(
            stale.is_empty(),
            "{folder}/{stale:?} differ from what the Rust types generate (or are missing). Regenerate them with \
         `TICKLAKE_UPDATE_CRDS=1 cargo test -p ticklake-api --release --test crds` or `ticklake crdgen`, \
         and commit the result."
        );
    }
}

#[test]
fn generated_yaml_reads_back_as_the_same_crd() {
    for ((kind, crd), (file, yaml)) in crds().into_iter().zip(generate()) {
        let back: CustomResourceDefinition = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(back, crd, "{file} ({kind}) does not read back as the CRD it was made from");
        assert_eq!(format!("{}.yaml", crd.spec.names.plural), file);
    }
}

// ---------------------------------------------------------------------------------------------
// Structure of the CRDs and their schemas
// ---------------------------------------------------------------------------------------------

#[test]
fn crds_have_group_version_scope_and_status() {
    for (kind, crd) in crds() {
        assert_eq!(crd.spec.group, "ticklake.dev", "{kind}");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.metadata.name.as_deref(), Some(format!("{}.ticklake.dev", crd.spec.names.plural).as_str()));
        assert_eq!(crd.spec.versions.len(), 1, "{kind}");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1", "{kind}");
        assert!(v.served && v.storage, "{kind}: served and stored");
        let sub = v.subresources.as_ref().expect("subresources");
        assert!(sub.status.is_some(), "{kind}: status subresource");
        let schema = schema_of(&crd);
        let description = schema["description"].as_str().unwrap_or_default();
        assert!(
            !description.is_empty() && !description.contains("Auto-generated"),
            "{kind}: the root description is what `kubectl explain {kind}` shows; got {description:?}"
        );
    }
}

/// Structural-schema rules of the API server (apiextensions validation), plus our own policy:
/// no `$ref`/`anyOf`/`oneOf`/`allOf`/`not`, every node typed, lists typed, defaults valid, map
/// keys required, every pattern compiles, transition rules only where old values correlate.
#[test]
fn schemas_are_structural() {
    const TYPES: [&str; 6] = ["object", "array", "string", "integer", "number", "boolean"];
    const KEYS: [&str; 27] = [
        "type",
        "format",
        "description",
        "default",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "maximum",
        "minimum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "maxProperties",
        "minProperties",
        "title",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    ];
    // schemars also writes int16/uint32/uint64 for Rust integers; kube-apiserver 1.34 accepts
    // them without a warning (it ignores formats it does not know), and their bounds are
    // spelled out with minimum/maximum where they matter.
    const FORMATS: [&str; 10] =
        ["int32", "int64", "float", "double", "date-time", "date", "byte", "int16", "uint32", "uint64"];
    let mut errors = Vec::new();
    for (kind, crd) in crds() {
        let schema = schema_of(&crd);
        let root_keys: BTreeSet<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(root_keys, BTreeSet::from(["spec", "status"]), "{kind}: root properties");
        assert_eq!(schema["type"], "object");

        // Walk, tracking whether old values can be correlated (for transition rules).
        fn check(kind: &str, path: &str, s: &Value, correlatable: bool, errors: &mut Vec<String>) {
            let at = format!("{kind}{path}");
            let obj = s.as_object().expect("a schema is an object");
            for key in obj.keys() {
                if !KEYS.contains(&key.as_str()) {
                    errors.push(format!("{at}: keyword {key:?} is not allowed here"));
                }
            }
            let int_or_string = s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
            let preserve = s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            let ty = s.get("type").and_then(Value::as_str);
            match ty {
                Some(t) if !TYPES.contains(&t) => errors.push(format!("{at}: type {t:?}")),
                None if !int_or_string && !preserve => errors.push(format!("{at}: no type")),
                _ => {}
            }
            if int_or_string && ty.is_some() {
                errors.push(format!("{at}: x-kubernetes-int-or-string with a type"));
            }
            if let Some(f) = s.get("format").and_then(Value::as_str)
                && !FORMATS.contains(&f)
            {
                errors.push(format!("{at}: format {f:?} is not one the API server knows"));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str)
                && let Err(e) = regex::Regex::new(p)
            {
                errors.push(format!("{at}: pattern {p:?} does not compile: {e}"));
            }
            if let Some(values) = s.get("enum").and_then(Value::as_array) {
                let nullable = s.get("nullable") == Some(&Value::Bool(true));
                for v in values {
                    let ok = (v.is_null() && nullable) || ty.is_some_and(|t| type_matches(t, v));
                    if !ok {
                        errors.push(format!("{at}: enum value {v} does not match the type"));
                    }
                }
            }
            if let Some(d) = s.get("default") {
                let mut errs = Vec::new();
                openapi_errors(s, d, "default", &mut errs);
                errors.extend(errs.into_iter().map(|e| format!("{at}: invalid {e}")));
            }
            if s.get("uniqueItems") == Some(&Value::Bool(true)) {
                errors.push(format!("{at}: uniqueItems is forbidden; use x-kubernetes-list-type: set"));
            }
            if let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) {
                for r in rules {
                    let rule = r["rule"].as_str().unwrap_or_default();
                    if rule.trim().is_empty() {
                        errors.push(format!("{at}: empty CEL rule"));
                    }
                    if r.get("message").and_then(Value::as_str).is_some_and(|m| m.contains('\n')) {
                        errors.push(format!("{at}: a rule's message must be one line"));
                    }
                    if rule.contains("oldSelf") && !correlatable {
                        errors.push(format!("{at}: transition rule {rule:?} where old values cannot be correlated"));
                    }
                }
            }
            match ty {
                Some("array") => {
                    let Some(items) = s.get("items").filter(|i| i.is_object()) else {
                        errors.push(format!("{at}: an array needs one items schema"));
                        return;
                    };
                    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
                    match list_type {
                        Some("map") => {
                            if items.get("type").and_then(Value::as_str) != Some("object") {
                                errors.push(format!("{at}: list-type map needs object items"));
                            }
                            let required: Vec<&Value> = items
                                .get("required")
                                .and_then(Value::as_array)
                                .map(|r| r.iter().collect())
                                .unwrap_or_default();
                            let keys = s.get("x-kubernetes-list-map-keys").and_then(Value::as_array);
                            if keys.is_none_or(|k| k.is_empty()) {
                                errors.push(format!("{at}: list-type map without keys"));
                            }
                            for key in keys.into_iter().flatten() {
                                let has_default = items["properties"]
                                    .get(key.as_str().unwrap())
                                    .and_then(|p| p.get("default"))
                                    .is_some();
                                if !required.contains(&key) && !has_default {
                                    errors.push(format!("{at}: map key {key} must be required or defaulted"));
                                }
                            }
                        }
                        Some("set") => {
                            let item_ty = items.get("type").and_then(Value::as_str);
                            if !matches!(item_ty, Some("string" | "integer" | "number" | "boolean")) {
                                errors.push(format!("{at}: list-type set needs scalar items"));
                            }
                        }
                        Some("atomic") | None => {}
                        Some(other) => errors.push(format!("{at}: list-type {other:?}")),
                    }
                    let item_correlatable = correlatable && list_type == Some("map");
                    check(kind, &format!("{path}[*]"), items, item_correlatable, errors);
                }
                Some("object") => {
                    let props = s.get("properties").and_then(Value::as_object);
                    let additional = s.get("additionalProperties");
                    if props.is_some() && additional.is_some() {
                        errors.push(format!("{at}: properties and additionalProperties together"));
                    }
                    if additional == Some(&Value::Bool(false)) {
                        errors.push(format!("{at}: additionalProperties: false is forbidden"));
                    }
                    for name in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                        if !props.is_some_and(|p| p.contains_key(name.as_str().unwrap_or_default())) {
                            errors.push(format!("{at}: required {name} is not a property"));
                        }
                    }
                    for (name, child) in props.into_iter().flatten() {
                        check(kind, &format!("{path}.{name}"), child, correlatable, errors);
                    }
                    if let Some(a) = additional.filter(|a| a.is_object()) {
                        check(kind, &format!("{path}{{*}}"), a, correlatable, errors);
                    }
                }
                _ => {
                    for key in ["properties", "items", "additionalProperties"] {
                        if s.get(key).is_some() && !preserve {
                            errors.push(format!("{at}: {key} on a non-object, non-array"));
                        }
                    }
                }
            }
        }
        check(kind, "", &schema, true, &mut errors);
    }
    // The text form too: nothing that a structural schema forbids, anywhere.
    for (file, yaml) in generate() {
        for word in ["$ref", "anyOf", "oneOf", "allOf", "definitions", "$schema"] {
            if yaml.contains(word) {
                errors.push(format!("{file}: contains {word}"));
            }
        }
    }
    assert!(errors.is_empty(), "not structural:\n{}", errors.join("\n"));
}

/// `kubectl explain` shows descriptions: every field of every kind has one.
#[test]
fn every_field_is_documented() {
    let mut missing = Vec::new();
    for (kind, crd) in crds() {
        let schema = schema_of(&crd);
        for part in ["spec", "status"] {
            walk(&schema["properties"][part], format!("{kind}.{part}"), &mut |path, s| {
                let is_field = !path.ends_with("[*]") && !path.ends_with("{*}");
                let d = s.get("description").and_then(Value::as_str).unwrap_or_default();
                if is_field && d.trim().is_empty() {
                    missing.push(path.to_string());
                }
                // Our own descriptions are unwrapped (kubectl explain wraps); k8s-openapi's
                // (resources, conditions) keep their paragraphs.
                let ours = !path.contains(".resources") && !path.contains(".conditions");
                if ours && d.replace("\n\n", "").contains('\n') {
                    missing.push(format!("{path}: hard-wrapped description {d:?}"));
                }
            });
        }
    }
    assert!(missing.is_empty(), "fields without a description (add a doc comment):\n{}", missing.join("\n"));
}

#[test]
fn option_resource_requirements_renders_as_a_plain_nullable_object() {
    for kind in ["StockStream", "S3Sink"] {
        let schema = schema_for_kind(kind);
        let r = node(&schema, "spec.resources");
        assert_eq!(r["type"], "object", "{kind}");
        assert_eq!(r["nullable"], true, "{kind}");
        for q in ["limits", "requests"] {
            assert_eq!(r["properties"][q]["type"], "object", "{kind}.{q}");
            assert_eq!(r["properties"][q]["additionalProperties"]["x-kubernetes-int-or-string"], true, "{kind}.{q}");
        }
        let required: Vec<&str> = node(&schema, "spec")
            .get("required")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(!required.contains(&"resources"), "{kind}: resources is optional");
    }
    // And a manifest using it is accepted and parses.
    let ss = patched(
        &example("stockstream.yaml"),
        json!({"spec": {"resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": 1073741824}}}}),
    );
    assert_admitted("resources", &ss);
    let Resource::StockStream(ss) = parse_resource(&ss).unwrap() else { panic!() };
    assert_eq!(ss.spec.resources.unwrap().requests.unwrap()["cpu"].0, "500m");
}

#[test]
fn status_conditions_are_a_map_keyed_by_type() {
    for (kind, crd) in crds() {
        let schema = schema_of(&crd);
        let c = node(&schema, "status.conditions");
        assert_eq!(c["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(c["x-kubernetes-list-map-keys"], json!(["type"]), "{kind}");
    }
}

// ---------------------------------------------------------------------------------------------
// (b) example manifests
// ---------------------------------------------------------------------------------------------

#[test]
fn example_manifests_parse_and_are_admitted() {
    let files = example_files();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["stockstream.yaml", "s3sink.yaml", "alertsubscription.yaml", "replay-kaggle.yaml"] {
        assert!(names.iter().any(|n| n == expected), "deploy/examples/{expected} is missing");
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = documents(&text);
        assert_eq!(docs.len(), 1, "{}: one resource per file", path.display());
        for doc in docs {
            let json = serde_json::to_value(&doc).unwrap();
            let resource = parse_resource(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(json["metadata"]["name"].is_string(), "{}: a name", path.display());
            assert!(json["metadata"].get("namespace").is_none(), "{}: no namespace, so -n applies", path.display());
            assert_admitted(&path.display().to_string(), &json);
            // And straight from the YAML text, as the local runner reads it.
            match resource {
                Resource::StockStream(_) => drop(parse_yaml::<StockStream>(&text).unwrap()),
                Resource::S3Sink(_) => drop(parse_yaml::<S3Sink>(&text).unwrap()),
                Resource::AlertSubscription(_) => drop(parse_yaml::<AlertSubscription>(&text).unwrap()),
            }
        }
    }
}

#[test]
fn multi_document_files_parse_document_by_document() {
    let text: String = ["stockstream.yaml", "s3sink.yaml", "alertsubscription.yaml", "replay-kaggle.yaml"]
        .iter()
        .map(|f| std::fs::read_to_string(workspace_root().join("deploy/examples").join(f)).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n");
    let text = format!("---\n{text}\n---\n");
    let kinds: Vec<&str> = documents(&text)
        .iter()
        .map(|d| match parse_resource(&serde_json::to_value(d).unwrap()).unwrap() {
            Resource::StockStream(_) => "StockStream",
            Resource::S3Sink(_) => "S3Sink",
            Resource::AlertSubscription(_) => "AlertSubscription",
        })
        .collect();
    assert_eq!(kinds, ["StockStream", "S3Sink", "AlertSubscription", "StockStream"]);
}

#[test]
fn examples_are_what_the_docs_promise() {
    let Resource::StockStream(ss) = parse_resource(&example("stockstream.yaml")).unwrap() else { panic!() };
    assert_eq!(ss.metadata.name.as_deref(), Some("ticks"));
    assert_eq!(ss.spec.topic, "ticks");
    assert_eq!(ss.spec.partitions, 6);
    assert_eq!(ss.spec.kafka.bootstrap_servers, None, "the local runner's embedded log");
    let sim = ss.spec.source.simulator.as_ref().expect("a simulator");
    assert!(sim.symbols.is_empty(), "the built-in symbols");
    assert_eq!(sim.ticks_per_second, 2000);
    assert!(ss.spec.source.replay.is_none());

    let Resource::S3Sink(sink) = parse_resource(&example("s3sink.yaml")).unwrap() else { panic!() };
    assert_eq!(sink.metadata.name.as_deref(), Some("ticks-lake"));
    assert_eq!(
        (sink.spec.topic.as_str(), sink.spec.bucket.as_str(), sink.spec.prefix.as_str()),
        ("ticks", "ticklake-demo", "ticks")
    );
    assert_eq!(sink.spec.endpoint, None, "the local runner's directory");
    assert_eq!(sink.spec.format, SinkFormat::Parquet);
    assert_eq!(sink.spec.partitioning.granularity, TimeGranularity::Hour);
    assert_eq!(sink.spec.flush.interval_ms, 5000);
    let glue = sink.spec.glue.as_ref().unwrap();
    assert_eq!((glue.database.as_str(), glue.table.as_deref()), ("ticklake", Some("ticks")));
    let athena = sink.spec.athena.as_ref().unwrap();
    assert_eq!(athena.workgroup, "ticklake");
    assert_eq!(athena.result_location, "s3://ticklake-demo/athena-results/");

    let Resource::AlertSubscription(alert) = parse_resource(&example("alertsubscription.yaml")).unwrap() else {
        panic!()
    };
    assert_eq!(alert.spec.watch.sink_ref.as_deref(), Some("ticks-lake"));
    assert_eq!(
        alert.spec.endpoints,
        [EndpointSpec { protocol: Protocol::Email, address: "alerts@example.com".into(), signing_secret_ref: None }]
    );
    assert_eq!(alert.spec.digest_interval_seconds, 300);

    let Resource::StockStream(replay) = parse_resource(&example("replay-kaggle.yaml")).unwrap() else { panic!() };
    let r = replay.spec.source.replay.as_ref().expect("a replay");
    assert!(r.files.iter().all(|f| f.ends_with("indexProcessed.csv")));
    assert_eq!(r.mapping.preset, Some(MappingPreset::KaggleIndexProcessed));
    assert_eq!(r.speed, 0.0);
}

#[test]
fn deny_unknown_fields_makes_typos_fail() {
    let cases = [
        ("stockstream.yaml", json!({"spec": {"topik": "ticks"}})),
        ("stockstream.yaml", json!({"spec": {"source": {"simulator": {"tickPerSecond": 5}}}})),
        ("stockstream.yaml", json!({"spec": {"kafka": {"bootstrapServer": "k:9092"}}})),
        ("stockstream.yaml", json!({"spec": {"source": {"simulaton": {}}}})),
        ("replay-kaggle.yaml", json!({"spec": {"source": {"replay": {"mapping": {"presets": "x"}}}}})),
        ("s3sink.yaml", json!({"spec": {"flush": {"intervalMS": 5000}}})),
        ("s3sink.yaml", json!({"spec": {"athena": {"resultsLocation": "s3://b/r/"}}})),
        ("s3sink.yaml", json!({"spec": {"glue": {"databse": "x"}}})),
        ("s3sink.yaml", json!({"spec": {"deadLetter": {"maxBytes": 10}}})),
        ("s3sink.yaml", json!({"spec": {"credentialsSecretRef": {"name": "s", "key": "k"}}})),
        ("alertsubscription.yaml", json!({"spec": {"watch": {"sinkref": "ticks-lake"}}})),
        ("alertsubscription.yaml", json!({"spec": {"endpoints": [{"protocol": "email", "adress": "a@b.c"}]}})),
        ("alertsubscription.yaml", json!({"spec": {"digestInterval": 60}})),
    ];
    for (file, patch) in cases {
        let bad = patched(&example(file), patch.clone());
        let err = parse_resource(&bad).err().unwrap_or_else(|| panic!("{file} + {patch}: a typo was accepted"));
        assert!(err.contains("unknown field"), "{file} + {patch}: {err}");
        // The API server refuses it as well (strict field validation; pruning otherwise).
        assert_refused(&format!("{file} + {patch}"), &bad, "unknown field");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) CEL rules
// ---------------------------------------------------------------------------------------------

#[test]
fn cel_rules_are_in_the_generated_schemas() {
    let expected: [(&str, &str, &str); 23] = [
        ("StockStream", "", "self.metadata.name.size() <= 43"),
        ("StockStream", "spec.source", "has(self.simulator) != has(self.replay)"),
        ("StockStream", "spec.kafka", "has(self.saslMechanism) == self.securityProtocol.startsWith('SASL_')"),
        ("StockStream", "spec.kafka", "!self.securityProtocol.startsWith('SASL_') || has(self.secretRef)"),
        ("StockStream", "spec.topic", "self != '.' && self != '..'"),
        ("StockStream", "spec.partitions", "self >= oldSelf"),
        ("StockStream", "spec.source.replay", "has(self.mapping)"),
        ("StockStream", "spec.source.replay.mapping", "has(self.preset) || (has(self.symbol) && has(self.time))"),
        ("StockStream", "spec.source.replay.mapping", "has(self.preset) || has(self.kind)"),
        ("S3Sink", "", "self.metadata.name.size() <= 63"),
        ("S3Sink", "spec", "!has(self.forcePathStyle) || !self.forcePathStyle || has(self.endpoint)"),
        ("S3Sink", "spec", "self.deadLetter.maxMessageBytes <= self.flush.maxBytes"),
        ("S3Sink", "spec.kafka", "has(self.saslMechanism) == self.securityProtocol.startsWith('SASL_')"),
        ("S3Sink", "spec.glue", "!has(self.schedule) || self.mode == 'crawler'"),
        ("S3Sink", "spec.athena", "has(self.kmsKey) == (self.encryption == 'SSE_KMS')"),
        ("AlertSubscription", "", "self.metadata.name.size() <= 63"),
        ("AlertSubscription", "spec.watch", "has(self.sinkRef) != has(self.bucket)"),
        (
            "AlertSubscription",
            "spec.endpoints[*]",
            "!(self.protocol in ['email', 'email-json']) || self.address.matches('^[^@ ]+@[^@ ]+$')",
        ),
        (
            "AlertSubscription",
            "spec.endpoints[*]",
            "self.protocol != 'https' || (self.address.startsWith('https://') && self.address.size() > 8)",
        ),
        (
            "AlertSubscription",
            "spec.endpoints[*]",
            "self.protocol != 'sqs' || self.address.matches('^arn:aws(-[a-z]+)*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+([.]fifo)?$')",
        ),
        (
            "AlertSubscription",
            "spec.endpoints[*]",
            "!(self.protocol in ['webhook', 'slack', 'discord']) || self.address.matches('^https?://[^/ ]+(/[^ ]*)?$')",
        ),
        (
            "AlertSubscription",
            "spec.endpoints[*]",
            "!has(self.signingSecretRef) || self.protocol in ['webhook', 'https']",
        ),
        ("AlertSubscription", "spec.filterPolicy", "self.trim().startsWith('{') && self.trim().endsWith('}')"),
    ];
    for (kind, path, rule) in expected {
        let schema = schema_for_kind(kind);
        let rules = rules_at(node(&schema, path));
        assert!(rules.contains(&rule), "{kind} {path:?}: rule {rule:?} missing; has {rules:?}");
    }
    // The long ones, by their start.
    let schema = schema_for_kind("StockStream");
    let mapping_rules = rules_at(node(&schema, "spec.source.replay.mapping"));
    for start in ["!has(self.fields) || self.fields.all(f, f in (", "!has(self.fields) || !(('bid_size' in self.fields"]
    {
        assert!(mapping_rules.iter().any(|r| r.starts_with(start)), "mapping: no rule starting {start:?}");
    }
    let schema = schema_for_kind("S3Sink");
    assert!(
        rules_at(node(&schema, "spec")).iter().any(|r| r.starts_with("!has(self.athena) || !(self.prefix == ''")),
        "S3Sink: the athena.resultLocation rule"
    );
    // And in the committed YAML, as the API server receives it.
    for (file, yaml) in generate() {
        assert!(yaml.contains("x-kubernetes-validations:"), "{file}");
    }
    // Every rule carries a message a person can act on.
    for (kind, crd) in crds() {
        let schema = schema_of(&crd);
        walk(&schema, kind.to_string(), &mut |path, s| {
            for r in s.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
                let m = r.get("message").and_then(Value::as_str).unwrap_or_default();
                assert!(m.len() >= 15, "{path}: rule {} has no real message", r["rule"]);
            }
        });
    }
}

#[test]
fn cel_rules_compile_and_fit_the_cost_budget() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (kind, crd) in crds() {
        let schema = schema_of(&crd);
        walk(&schema, kind.to_string(), &mut |path, s| {
            let rules = rules_at(s);
            if rules.is_empty() {
                return;
            }
            let compiled = compile_schema(s);
            for e in compiled.compilation_errors() {
                problems.push(format!("{path}: {e}"));
            }
            for rule in rules {
                count += 1;
                for w in analyze_rule(rule, &compiled, ScopeContext::CrdValidation) {
                    // kube-cel's scope check also flags a macro's own iteration variable, as
                    // `f` in `self.all(f, ...)`: not a problem.
                    let iteration_variable = matches!(w.kind, WarningKind::WrongScope)
                        && ["all", "exists", "exists_one", "map", "filter"].iter().any(|m| {
                            w.message.split('\'').nth(1).is_some_and(|var| rule.contains(&format!(".{m}({var},")))
                        });
                    if !iteration_variable {
                        problems.push(format!("{path}: {rule}: {:?} {}", w.kind, w.message));
                    }
                }
            }
        });
    }
    assert!(count >= 20, "only {count} rules found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn stockstream_rules() {
    let ss = example("stockstream.yaml");
    let replay = example("replay-kaggle.yaml");

    // source: exactly one of simulator / replay
    let both = patched(
        &ss,
        json!({"spec": {"source": {"replay": {"files": ["a.csv"], "mapping": {"preset": "kaggleIndexProcessed"}}}}}),
    );
    assert_refused("simulator and replay", &both, "exactly one of source.simulator or source.replay");
    assert_refused("no source", &patched(&ss, json!({"spec": {"source": {"simulator": null}}})), "exactly one of");

    // kafka: saslMechanism iff SASL_*, and SASL needs a secret
    let kafka = |k: Value| patched(&ss, json!({"spec": {"kafka": k}}));
    assert_refused(
        "SASL without mechanism",
        &kafka(json!({"securityProtocol": "SASL_SSL", "secretRef": {"name": "k"}})),
        "saslMechanism is required",
    );
    assert_refused("mechanism without SASL", &kafka(json!({"saslMechanism": "PLAIN"})), "saslMechanism is required");
    assert_refused(
        "mechanism with SSL",
        &kafka(json!({"securityProtocol": "SSL", "saslMechanism": "PLAIN"})),
        "saslMechanism is required",
    );
    assert_refused(
        "SASL without secret",
        &kafka(json!({"securityProtocol": "SASL_PLAINTEXT", "saslMechanism": "PLAIN"})),
        "SASL needs secretRef",
    );
    assert_admitted(
        "SASL_SSL complete",
        &kafka(json!({
            "bootstrapServers": "b-1.msk.example:9096,b-2.msk.example:9096",
            "securityProtocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512", "secretRef": {"name": "kafka-credentials"}
        })),
    );
    assert_admitted(
        "SSL with a CA secret",
        &kafka(json!({"securityProtocol": "SSL", "secretRef": {"name": "kafka-tls"}})),
    );
    assert_refused(
        "spaces in bootstrapServers",
        &kafka(json!({"bootstrapServers": "a:9092, b:9092"})),
        "does not match",
    );
    assert_refused("no port", &kafka(json!({"bootstrapServers": "kafka"})), "does not match");
    assert_admitted("IPv6 and names", &kafka(json!({"bootstrapServers": "[::1]:9092,kafka-0.kafka:9092"})));

    // topic and name
    assert_refused("topic ..", &patched(&ss, json!({"spec": {"topic": ".."}})), "not valid Kafka topic names");
    assert_refused("topic with a slash", &patched(&ss, json!({"spec": {"topic": "a/b"}})), "does not match");
    let long = "x".repeat(44);
    assert_refused("44-character name", &patched(&ss, json!({"metadata": {"name": long}})), "at most 43 characters");
    assert_admitted("43-character name", &patched(&ss, json!({"metadata": {"name": "x".repeat(43)}})));

    // partitions only grow
    let grown = patched(&ss, json!({"spec": {"partitions": 12}}));
    let shrunk = patched(&ss, json!({"spec": {"partitions": 3}}));
    assert!(admission_errors(&grown, Some(&ss)).is_empty(), "growing partitions");
    let errs = admission_errors(&shrunk, Some(&ss));
    assert!(errs.iter().any(|e| e.contains("partitions can only grow")), "{errs:#?}");
    assert!(admission_errors(&shrunk, None).is_empty(), "a new stream may have few partitions");

    // simulator symbols: a set of plausible tickers
    let symbols = |s: Value| patched(&ss, json!({"spec": {"source": {"simulator": {"symbols": s}}}}));
    assert_admitted("symbols", &symbols(json!(["AAPL", "BRK.B", "^GSPC"])));
    assert_refused("duplicate symbols", &symbols(json!(["AAPL", "AAPL"])), "duplicate values");
    assert_refused("empty symbol", &symbols(json!([""])), "shorter than 1");
    assert_refused("symbol with =", &symbols(json!(["A=B"])), "does not match");
    assert_refused(
        "bad startTime type",
        &patched(&ss, json!({"spec": {"source": {"simulator": {"startTime": 5}}}})),
        "expected string",
    );

    // replay mapping: a preset, or symbol + time + kind
    let mapping = |m: Value| {
        let mut v = replay.clone();
        v["spec"]["source"]["replay"]["mapping"] = m;
        v
    };
    assert_admitted("preset", &mapping(json!({"preset": "kaggleIndexProcessed"})));
    assert_admitted(
        "preset with overrides",
        &mapping(json!({"preset": "kaggleIndexProcessed", "fields": {"close": "Adj Close"}})),
    );
    assert_admitted(
        "explicit",
        &mapping(
            json!({"kind": "trade", "symbol": "Ticker", "time": "Time", "timeFormat": "epochMillis", "fields": {"price": "Last", "size": "Qty"}}),
        ),
    );
    assert_refused(
        "empty mapping",
        &mapping(json!({})),
        "mapping needs a preset, or both the symbol and the time columns",
    );
    let mut no_mapping = replay.clone();
    no_mapping["spec"]["source"]["replay"].as_object_mut().unwrap().remove("mapping");
    assert_refused("no mapping at all", &no_mapping, "replay needs a mapping");
    assert_refused(
        "symbol without time",
        &mapping(json!({"kind": "trade", "symbol": "Ticker"})),
        "mapping needs a preset, or both",
    );
    assert_refused("no kind", &mapping(json!({"symbol": "Ticker", "time": "Time"})), "mapping needs a kind");
    const NOT_OF_THE_KIND: &str = "mapping.fields keys must be fields of the mapping's kind";
    let preset_fields = |f: Value| mapping(json!({"preset": "kaggleIndexProcessed", "fields": f}));
    assert_refused("unknown field name", &preset_fields(json!({"prise": "Last"})), NOT_OF_THE_KIND);
    assert_refused("a trade field for bars", &preset_fields(json!({"price": "Close"})), NOT_OF_THE_KIND);
    assert_admitted("camelCase", &preset_fields(json!({"adjClose": "Adj Close", "close_usd": "USD"})));
    assert_refused(
        "a bar field for trades",
        &mapping(json!({"kind": "trade", "symbol": "s", "time": "t", "fields": {"open": "O"}})),
        NOT_OF_THE_KIND,
    );
    assert_admitted(
        "quote fields",
        &mapping(json!({"kind": "quote", "symbol": "s", "time": "t", "fields": {"bidSize": "BS", "ask_size": "AS"}})),
    );
    assert_refused(
        "a field twice",
        &mapping(json!({"kind": "quote", "symbol": "s", "time": "t", "fields": {"bidSize": "BS", "bid_size": "BS2"}})),
        "names a field twice",
    );
    assert_refused("unknown preset", &mapping(json!({"preset": "yahoo"})), "is not one of");
    assert_refused(
        "no files",
        &patched(&replay, json!({"spec": {"source": {"replay": {"files": []}}}})),
        "fewer than 1 items",
    );
    assert_refused(
        "negative speed",
        &patched(&replay, json!({"spec": {"source": {"replay": {"speed": -1}}}})),
        "below 0",
    );
}

#[test]
fn s3sink_rules() {
    let sink = example("s3sink.yaml");
    let with = |p: Value| patched(&sink, json!({"spec": p}));

    assert_refused(
        "forcePathStyle without endpoint",
        &with(json!({"forcePathStyle": true})),
        "forcePathStyle: true needs an endpoint",
    );
    assert_admitted("forcePathStyle false without endpoint", &with(json!({"forcePathStyle": false})));
    assert_admitted(
        "MinIO",
        &with(
            json!({"endpoint": "http://minio.minio:9000", "forcePathStyle": true, "credentialsSecretRef": {"name": "minio"}}),
        ),
    );
    assert_refused("endpoint without scheme", &with(json!({"endpoint": "minio:9000"})), "does not match");

    assert_refused(
        "dead letters bigger than a flush",
        &with(json!({"flush": {"maxBytes": 1048576}, "deadLetter": {"maxMessageBytes": 2097152}})),
        "deadLetter.maxMessageBytes must not exceed flush.maxBytes",
    );
    assert_admitted(
        "dead letters within a flush",
        &with(json!({"flush": {"maxBytes": 1048576}, "deadLetter": {"maxMessageBytes": 1048576}})),
    );
    assert_refused("dead-letter prefix without _", &with(json!({"deadLetter": {"prefix": "dead"}})), "does not match");

    let results = |loc: &str| with(json!({"athena": {"resultLocation": loc}}));
    assert_refused(
        "results inside the table",
        &results("s3://ticklake-demo/ticks/athena/"),
        "athena.resultLocation must not be inside",
    );
    assert_refused("results at the table", &results("s3://ticklake-demo/ticks"), "must not be inside");
    assert_admitted("results beside the table", &results("s3://ticklake-demo/ticks-results/"));
    assert_admitted("results in another bucket", &results("s3://ticklake-athena/ticks/"));
    let at_root = patched(&results("s3://ticklake-demo/athena-results/"), json!({"spec": {"prefix": ""}}));
    assert_refused("table at the bucket root, results in the same bucket", &at_root, "must not be inside");
    assert_refused("not an s3:// URL", &results("https://ticklake-demo/x/"), "does not match");

    assert_refused("SSE_KMS without a key", &with(json!({"athena": {"encryption": "SSE_KMS"}})), "kmsKey is required");
    assert_admitted(
        "SSE_KMS with a key",
        &with(json!({"athena": {"encryption": "SSE_KMS", "kmsKey": "arn:aws:kms:eu-west-1:123456789012:key/abcd"}})),
    );
    assert_refused("a key without SSE_KMS", &with(json!({"athena": {"kmsKey": "alias/x"}})), "kmsKey is required");
    assert_refused("small scan cutoff", &with(json!({"athena": {"bytesScannedCutoffPerQuery": 1000}})), "below");

    assert_refused(
        "schedule with projection",
        &with(json!({"glue": {"mode": "projection", "schedule": "cron(0/15 * * * ? *)"}})),
        "schedule applies only to mode crawler",
    );
    assert_admitted("schedule with crawler", &with(json!({"glue": {"schedule": "cron(0/15 * * * ? *)"}})));
    assert_refused("schedule not cron()", &with(json!({"glue": {"schedule": "*/15 * * * *"}})), "does not match");
    assert_refused("upper-case table", &with(json!({"glue": {"table": "Ticks"}})), "does not match");

    assert_refused("bucket with capitals", &with(json!({"bucket": "Ticklake"})), "does not match");
    assert_refused("prefix with a leading /", &with(json!({"prefix": "/ticks"})), "does not match");
    assert_refused("prefix with a trailing /", &with(json!({"prefix": "ticks/"})), "does not match");
    assert_refused(
        "SASL without mechanism",
        &with(json!({"kafka": {"securityProtocol": "SASL_SSL", "secretRef": {"name": "k"}}})),
        "saslMechanism is required",
    );
    assert_refused("bad service account", &with(json!({"serviceAccountName": "Sink_SA"})), "does not match");
    assert_refused("too many replicas", &with(json!({"replicas": 1000})), "above");
}

#[test]
fn alertsubscription_rules() {
    let alert = example("alertsubscription.yaml");
    let with = |p: Value| patched(&alert, json!({"spec": p}));

    assert_refused(
        "both sinkRef and bucket",
        &with(json!({"watch": {"bucket": "ticklake-demo"}})),
        "exactly one of watch.sinkRef or watch.bucket",
    );
    assert_refused(
        "neither",
        &with(json!({"watch": {"sinkRef": null}})),
        "exactly one of watch.sinkRef or watch.bucket",
    );
    assert_admitted(
        "a bucket",
        &with(
            json!({"watch": {"sinkRef": null, "bucket": "other-bucket", "prefix": "exports/", "suffix": ".parquet"}}),
        ),
    );

    let endpoint =
        |protocol: &str, address: &str| with(json!({"endpoints": [{"protocol": protocol, "address": address}]}));
    assert_admitted("email", &endpoint("email", "ops@example.com"));
    assert_admitted("email-json", &endpoint("email-json", "ops@example.com"));
    assert_refused("email without @", &endpoint("email", "ops.example.com"), "must be an email address");
    assert_refused("email-json with a space", &endpoint("email-json", "o ps@example.com"), "must be an email address");
    assert_admitted("https", &endpoint("https", "https://hooks.example.com/ticklake"));
    assert_refused("http", &endpoint("https", "http://hooks.example.com/ticklake"), "must be an https:// URL");
    assert_refused("bare https://", &endpoint("https", "https://"), "must be an https:// URL");
    assert_admitted("sqs", &endpoint("sqs", "arn:aws:sqs:eu-west-1:123456789012:ticklake-alerts"));
    assert_admitted("sqs fifo", &endpoint("sqs", "arn:aws:sqs:eu-west-1:123456789012:ticklake-alerts.fifo"));
    assert_admitted("sqs in China", &endpoint("sqs", "arn:aws-cn:sqs:cn-north-1:123456789012:q"));
    assert_refused(
        "an SNS ARN",
        &endpoint("sqs", "arn:aws:sns:eu-west-1:123456789012:topic"),
        "must be an SQS queue ARN",
    );
    assert_refused(
        "a queue URL",
        &endpoint("sqs", "https://sqs.eu-west-1.amazonaws.com/123456789012/q"),
        "must be an SQS queue ARN",
    );
    assert_refused("unknown protocol", &endpoint("sms", "+15555550100"), "is not one of");
    // ticklake's own notifier: webhooks (http allowed: receivers inside a cluster), Slack, Discord.
    assert_admitted("webhook over http", &endpoint("webhook", "http://receiver.default.svc:8080/hook"));
    assert_admitted("webhook over https", &endpoint("webhook", "https://hooks.example.com/ticklake?x=1"));
    assert_admitted("slack", &endpoint("slack", "https://hooks.slack.com/services/T0/B0/XXXX"));
    assert_admitted("discord", &endpoint("discord", "https://discord.com/api/webhooks/1/abc"));
    assert_refused(
        "webhook without scheme",
        &endpoint("webhook", "receiver:8080/hook"),
        "must be an http:// or https:// URL",
    );
    assert_refused(
        "slack with a space",
        &endpoint("slack", "https://hooks.slack.com/a b"),
        "must be an http:// or https:// URL",
    );
    assert_refused("discord ftp", &endpoint("discord", "ftp://discord.com/x"), "must be an http:// or https:// URL");
    let signed = |protocol: &str, address: &str| {
        with(
            json!({"endpoints": [{"protocol": protocol, "address": address, "signingSecretRef": {"name": "hook-key", "key": "hmac"}}]}),
        )
    };
    assert_admitted("signed webhook", &signed("webhook", "http://receiver:8080/hook"));
    assert_admitted("signed https", &signed("https", "https://hooks.example.com/t"));
    assert_refused(
        "signed email",
        &signed("email", "ops@example.com"),
        "signingSecretRef is for webhook and https endpoints only",
    );
    assert_refused(
        "signed slack",
        &signed("slack", "https://hooks.slack.com/x"),
        "signingSecretRef is for webhook and https endpoints only",
    );
    assert_refused(
        "secret key with a slash",
        &with(
            json!({"endpoints": [{"protocol": "webhook", "address": "http://r/h", "signingSecretRef": {"name": "k", "key": "a/b"}}]}),
        ),
        "does not match",
    );
    assert_admitted("rate limit", &with(json!({"rateLimitPerMinute": 60})));
    assert_refused("rate limit 0", &with(json!({"rateLimitPerMinute": 0})), "below");
    assert_refused("rate limit too high", &with(json!({"rateLimitPerMinute": 6001})), "above");
    assert_refused("no endpoints", &with(json!({"endpoints": []})), "fewer than 1 items");
    assert_refused(
        "the same endpoint twice",
        &with(
            json!({"endpoints": [{"protocol": "email", "address": "a@example.com"}, {"protocol": "email", "address": "a@example.com"}]}),
        ),
        "duplicate entries",
    );
    assert_admitted(
        "same address, two protocols",
        &with(
            json!({"endpoints": [{"protocol": "email", "address": "a@example.com"}, {"protocol": "email-json", "address": "a@example.com"}]}),
        ),
    );

    assert_admitted("filter policy", &with(json!({"filterPolicy": " {\"symbol\": [\"AAPL\", \"MSFT\"]}\n"})));
    assert_refused(
        "filter policy not an object",
        &with(json!({"filterPolicy": "[\"AAPL\"]"})),
        "filterPolicy must be a JSON object",
    );
    assert_refused("digest longer than a day", &with(json!({"digestIntervalSeconds": 86401})), "above");
    assert_refused(
        "64-character name",
        &patched(&alert, json!({"metadata": {"name": "a".repeat(64)}})),
        "at most 63 characters",
    );
}

// ---------------------------------------------------------------------------------------------
// (d) printer columns, short names, categories
// ---------------------------------------------------------------------------------------------

#[test]
fn printer_columns_short_names_and_categories() {
    // Short names of the built-in kinds (kubectl api-resources), which ours must not shadow.
    const BUILT_IN: [&str; 30] = [
        "cm", "cs", "csr", "cj", "crd", "crds", "deploy", "ds", "ep", "ev", "hpa", "ing", "limits", "netpol", "no",
        "ns", "pc", "pdb", "po", "psp", "pv", "pvc", "quota", "rc", "rs", "sa", "sc", "sts", "svc", "ingclass",
    ];
    let expected = [
        ("StockStream", "sst", vec!["Ready", "Topic", "Replicas", "Msg/s", "Produced", "Reason", "Age"]),
        (
            "S3Sink",
            "s3s",
            vec!["Ready", "Bucket", "Msg/s", "Lag", "Dead", "Last Object", "Table", "Crawler", "Reason", "Age"],
        ),
        ("AlertSubscription", "tlalert", vec!["Ready", "Sink", "Bucket", "Endpoints", "Route", "Reason", "Age"]),
    ];
    let mut all_short = BTreeSet::new();
    for ((kind, crd), (k, short, columns)) in crds().into_iter().zip(expected) {
        assert_eq!(kind, k);
        let names = &crd.spec.names;
        assert_eq!(names.short_names.as_deref(), Some(&[short.to_string()][..]), "{kind}");
        assert!(!BUILT_IN.contains(&short), "{kind}: {short} shadows a built-in short name");
        assert!(all_short.insert(short), "{kind}: {short} used twice");
        assert_eq!(names.categories.as_deref(), Some(&["ticklake".to_string()][..]), "{kind}");

        let schema = schema_of(&crd);
        let cols = crd.spec.versions[0].additional_printer_columns.as_ref().expect("printer columns");
        let got: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(got, columns, "{kind}: printer columns");
        let ready = &cols[0];
        assert_eq!(ready.json_path, r#".status.conditions[?(@.type=="Ready")].status"#, "{kind}");
        let age = cols.last().unwrap();
        assert_eq!((age.json_path.as_str(), age.type_.as_str()), (".metadata.creationTimestamp", "date"), "{kind}");
        for c in cols {
            // Details only with -o wide.
            let wide = ["Reason", "Last Object", "Table", "Crawler", "Route"].contains(&c.name.as_str())
                || (kind == "AlertSubscription" && c.name == "Bucket");
            assert_eq!(c.priority.unwrap_or(0) > 0, wide, "{kind} {}: priority", c.name);
            assert!(
                ["string", "integer", "number", "boolean", "date"].contains(&c.type_.as_str()),
                "{kind} {}",
                c.name
            );
            // Each column reads a field the schema has, of a matching type.
            if c.json_path.starts_with(".metadata") {
                continue;
            }
            let path = c.json_path.trim_start_matches('.');
            let path = path.split("[?").next().unwrap().replace(".conditions", ".conditions[*]");
            let path = if c.json_path.contains("[?") {
                format!("{path}.{}", c.json_path.rsplit('.').next().unwrap())
            } else {
                path
            };
            let field = node(&schema, &path);
            let ty = field["type"].as_str().unwrap();
            let fits = ty == c.type_ || (c.type_ == "number" && ty == "integer");
            assert!(fits, "{kind} {}: column type {} reads a {ty}", c.name, c.type_);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (e) defaults
// ---------------------------------------------------------------------------------------------

const MINIMAL_SIMULATOR: &str = r#"
apiVersion: ticklake.dev/v1alpha1
kind: StockStream
metadata: {name: s}
spec:
  topic: t
  source:
    simulator: {}
"#;
const MINIMAL_REPLAY: &str = r#"
apiVersion: ticklake.dev/v1alpha1
kind: StockStream
metadata: {name: r}
spec:
  topic: t
  source:
    replay:
      files: [a.csv]
      mapping: {preset: kaggleIndexProcessed}
"#;
const MINIMAL_SINK: &str = r#"
apiVersion: ticklake.dev/v1alpha1
kind: S3Sink
metadata: {name: k}
spec:
  topic: t
  bucket: b-1
  glue: {database: d}
  athena: {workgroup: w, resultLocation: "s3://other/results/"}
"#;
const MINIMAL_ALERT: &str = r#"
apiVersion: ticklake.dev/v1alpha1
kind: AlertSubscription
metadata: {name: a}
spec:
  watch: {sinkRef: k}
  endpoints: [{protocol: email, address: a@example.com}]
"#;

#[test]
fn minimal_manifests_get_the_documented_defaults() {
    let ss: StockStream = parse_yaml(MINIMAL_SIMULATOR).unwrap();
    let s = &ss.spec;
    assert_eq!((s.partitions, s.replication_factor, s.replicas), (6, 1, 1));
    assert_eq!(s.compression, ProducerCompression::Zstd);
    assert_eq!(
        s.kafka,
        KafkaConnection {
            bootstrap_servers: None,
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            secret_ref: None
        }
    );
    assert_eq!(s.resources, None);
    let sim = s.source.simulator.as_ref().unwrap();
    assert!(sim.symbols.is_empty());
    assert_eq!((sim.ticks_per_second, sim.seed, sim.quote_ratio), (1000, 42, 0.6));
    assert_eq!((sim.start_time.as_deref(), sim.max_ticks), (None, None));
    assert!(ss.status.is_none());

    let rs: StockStream = parse_yaml(MINIMAL_REPLAY).unwrap();
    let r = rs.spec.source.replay.as_ref().unwrap();
    assert_eq!((r.format, r.speed, r.loop_), (ReplayFormat::Auto, 0.0, false));
    assert_eq!((r.mapping.kind, r.mapping.symbol.as_deref(), r.mapping.time.as_deref()), (None, None, None));
    assert!(r.mapping.fields.is_empty());

    let sink: S3Sink = parse_yaml(MINIMAL_SINK).unwrap();
    let k = &sink.spec;
    assert_eq!(k.prefix, "");
    assert_eq!(
        (k.consumer_group.as_deref(), k.region.as_deref(), k.endpoint.as_deref(), k.force_path_style),
        (None, None, None, None)
    );
    assert_eq!(k.format, SinkFormat::Parquet);
    assert_eq!(k.partitioning, PartitioningSpec { granularity: TimeGranularity::Hour, by_symbol: false });
    assert_eq!(k.flush, FlushSpec { max_records: 1_000_000, max_bytes: 256 * 1024 * 1024, interval_ms: 60_000 });
    assert_eq!(k.dead_letter, DeadLetterSpec { prefix: "_dead_letters".into(), max_message_bytes: 65536 });
    assert_eq!(k.replicas, 1);
    let glue = k.glue.as_ref().unwrap();
    assert_eq!(
        (glue.table.as_deref(), glue.mode, glue.schedule.as_deref(), glue.schema_change_policy),
        (None, CatalogMode::Crawler, None, SchemaChangePolicy::Update)
    );
    let athena = k.athena.as_ref().unwrap();
    assert_eq!(
        (athena.encryption, athena.bytes_scanned_cutoff_per_query, athena.kms_key.as_deref()),
        (AthenaEncryption::SseS3, None, None)
    );

    let alert: AlertSubscription = parse_yaml(MINIMAL_ALERT).unwrap();
    assert_eq!(alert.spec.digest_interval_seconds, 300);
    assert_eq!((alert.spec.watch.prefix.as_str(), alert.spec.watch.suffix.as_str()), ("", ""));
    assert_eq!(alert.spec.filter_policy, None);

    // Each minimal manifest is also accepted by the schema.
    for m in [MINIMAL_SIMULATOR, MINIMAL_REPLAY, MINIMAL_SINK, MINIMAL_ALERT] {
        let v: Value = serde_yaml::from_str(m).unwrap();
        assert_admitted(m, &v);
    }
}

/// The API server fills in the schema's defaults before anyone reads the object; the workers
/// and the local runner fill in serde's. Both must give the same resource.
#[test]
fn schema_defaults_agree_with_serde_defaults() {
    let mut manifests: Vec<Value> = [MINIMAL_SIMULATOR, MINIMAL_REPLAY, MINIMAL_SINK, MINIMAL_ALERT]
        .iter()
        .map(|m| serde_yaml::from_str(m).unwrap())
        .collect();
    manifests.extend(["stockstream.yaml", "s3sink.yaml", "alertsubscription.yaml", "replay-kaggle.yaml"].map(example));
    for m in manifests {
        let schema = schema_for_kind(m["kind"].as_str().unwrap());
        let defaulted = apply_defaults(&schema, &m);
        let name = m["metadata"]["name"].clone();
        match (parse_resource(&m).unwrap(), parse_resource(&defaulted).unwrap()) {
            (Resource::StockStream(a), Resource::StockStream(b)) => assert_eq!(a, b, "{name}"),
            (Resource::S3Sink(a), Resource::S3Sink(b)) => assert_eq!(a, b, "{name}"),
            (Resource::AlertSubscription(a), Resource::AlertSubscription(b)) => assert_eq!(a, b, "{name}"),
            _ => unreachable!(),
        }
        // The API server's defaulted object is what serde writes back (modulo absent options).
        let reserialized = match parse_resource(&m).unwrap() {
            Resource::StockStream(r) => serde_json::to_value(r).unwrap(),
            Resource::S3Sink(r) => serde_json::to_value(r).unwrap(),
            Resource::AlertSubscription(r) => serde_json::to_value(r).unwrap(),
        };
        let mut missing = Vec::new();
        diff_defaults(&defaulted["spec"], &reserialized["spec"], "spec", &mut missing);
        assert!(
            missing.is_empty(),
            "{name}: the schema defaults fields serde leaves out, or differently: {missing:#?}"
        );
    }
}

/// Every field the API server's defaulting sets is present, with the same value, in serde's
/// serialization.
fn diff_defaults(server: &Value, serde: &Value, path: &str, out: &mut Vec<String>) {
    match (server, serde) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => diff_defaults(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: {v} only on the server")),
                }
            }
        }
        (a, b) if a.is_number() && b.is_number() && a.as_f64() != b.as_f64() => out.push(format!("{path}: {a} vs {b}")),
        (a, b) if !(a.is_number() && b.is_number()) && a != b => out.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

#[test]
fn typed_resources_round_trip_through_yaml() {
    for file in ["stockstream.yaml", "s3sink.yaml", "alertsubscription.yaml", "replay-kaggle.yaml"] {
        let v = example(file);
        match parse_resource(&v).unwrap() {
            Resource::StockStream(r) => {
                assert_eq!(parse_yaml::<StockStream>(&serde_yaml::to_string(&r).unwrap()).unwrap(), r)
            }
            Resource::S3Sink(r) => assert_eq!(parse_yaml::<S3Sink>(&serde_yaml::to_string(&r).unwrap()).unwrap(), r),
            Resource::AlertSubscription(r) => {
                assert_eq!(parse_yaml::<AlertSubscription>(&serde_yaml::to_string(&r).unwrap()).unwrap(), r)
            }
        }
    }
    // A status as the operator writes it reads back, and the schema accepts it.
    let mut ss = example("stockstream.yaml");
    ss["status"] = json!({
        "observedGeneration": 3, "readyReplicas": 1, "topicPartitions": 6, "messagesPerSecond": 1999.5, "producedTotal": 120000,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Producing", "message": "", "lastTransitionTime": "2026-11-25T14:30:00Z", "observedGeneration": 3}]
    });
    assert_admitted("status", &ss);
    let Resource::StockStream(r) = parse_resource(&ss).unwrap() else { panic!() };
    assert_eq!(find_condition(&r.status.unwrap().conditions, condition::READY).unwrap().reason, "Producing");
}
