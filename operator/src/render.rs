//! Desired state: from a custom resource to the Kubernetes objects that run it.
//!
//! Pure functions, no client: the same input always renders the same objects, which is what
//! makes reconciling idempotent (the reconciler compares these with what the API server has and
//! writes only on a difference) and what the unit tests below pin down.
//!
//! | resource      | objects                                                                  |
//! |---------------|--------------------------------------------------------------------------|
//! | `StockStream` | ConfigMap `<name>-producer-config`, StatefulSet `<name>-producer`        |
//! | `S3Sink`      | ConfigMap `<name>-sink-config`, Deployment `<name>-sink`                 |
//!
//! **Why a StatefulSet for producers.** Each simulator producer makes its own share of the
//! symbols (`--shard i/n`), and a restarted producer resumes its own deterministic stream after
//! the ticks already in the topic. Both need a stable index per pod, which a StatefulSet gives
//! (`apps.kubernetes.io/pod-index`) and a Deployment does not: two Deployment pods could claim
//! the same share and produce every tick twice. Sinks are interchangeable members of one Kafka
//! consumer group, so they are a Deployment.
//!
//! The worker's configuration is the custom resource itself (`resource.yaml` in the ConfigMap,
//! mounted at [`CONFIG_DIR`]); a hash of it is a pod-template annotation, so a spec change
//! rolls the pods. Credentials never enter the ConfigMap: they are `secretKeyRef` environment
//! variables (Kafka SASL: `username`/`password`; S3: `AWS_ACCESS_KEY_ID`/
//! `AWS_SECRET_ACCESS_KEY`) or a mounted Secret (Kafka TLS), or come from the pod's
//! ServiceAccount (IRSA).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use ticklake_api::crd::{AlertSubscription, KafkaConnection, S3Sink, SecurityProtocol, StockStream};

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "ticklake-operator";
/// Where the worker's `resource.yaml` is mounted.
pub const CONFIG_DIR: &str = "/etc/ticklake";
/// File name of the resource in the ConfigMap.
pub const CONFIG_FILE: &str = "resource.yaml";
/// Where a Kafka TLS Secret is mounted.
pub const KAFKA_TLS_DIR: &str = "/etc/ticklake/kafka-tls";
/// Port of the workers' `/metrics`, `/healthz`, `/readyz` and `/status`.
pub const METRICS_PORT: i32 = 9464;
/// Name of that container port; the operator finds the port by this name.
pub const METRICS_PORT_NAME: &str = "metrics";
/// Pod-template annotation carrying the hash of the worker configuration.
pub const CONFIG_HASH_ANNOTATION: &str = "ticklake.dev/config-hash";
/// Label of the worker role: `producer` or `sink`.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Value of `app.kubernetes.io/managed-by` on everything the operator creates.
pub const MANAGED_BY: &str = "ticklake-operator";
/// Non-root user and group of the worker containers (the distroless `nonroot` user).
pub const WORKER_UID: i64 = 65532;

/// Operator-wide settings that shape the workers.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderConfig {
    /// Image of the `ticklake` binary the workers run.
    pub worker_image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: String,
    /// Kafka bootstrap servers for resources whose spec names none — the cluster's Kafka (MSK,
    /// self-run, or the chart's trial broker), set once in the operator's configuration. With
    /// it, the same manifests run under `ticklake local up` (embedded log) and in a cluster.
    pub default_kafka_bootstrap: Option<String>,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            worker_image: format!("ghcr.io/ticklake/ticklake:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: "IfNotPresent".to_string(),
            default_kafka_bootstrap: None,
        }
    }
}

/// The worker role of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Producer,
    Sink,
    /// An AlertSubscription's notifier worker (the `Notifier` route).
    Notifier,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Producer => "producer",
            Component::Sink => "sink",
            Component::Notifier => "notifier",
        }
    }
}

/// Name of the workload (StatefulSet or Deployment) of a resource.
pub fn workload_name(resource: &str, c: Component) -> String {
    format!("{resource}-{}", c.as_str())
}

/// Name of the ConfigMap holding a resource's worker configuration.
pub fn config_map_name(resource: &str, c: Component) -> String {
    format!("{resource}-{}-config", c.as_str())
}

/// The labels selecting a resource's worker pods (also on every object rendered for it).
pub fn selector_labels(resource: &str, c: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "ticklake".to_string()),
        ("app.kubernetes.io/instance".to_string(), resource.to_string()),
        (COMPONENT_LABEL.to_string(), c.as_str().to_string()),
    ])
}

/// `key=value,...` of [`selector_labels`], for list calls.
pub fn label_selector(resource: &str, c: Component) -> String {
    selector_labels(resource, c).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

fn labels(resource: &str, c: Component) -> BTreeMap<String, String> {
    let mut l = selector_labels(resource, c);
    l.insert("app.kubernetes.io/managed-by".to_string(), MANAGED_BY.to_string());
    l.insert("app.kubernetes.io/part-of".to_string(), "ticklake".to_string());
    l
}

/// Objects rendered for one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ProducerObjects {
    pub config_map: ConfigMap,
    pub stateful_set: StatefulSet,
}

/// Objects rendered for one `S3Sink`.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkObjects {
    pub config_map: ConfigMap,
    pub deployment: Deployment,
}

/// Objects rendered for one `AlertSubscription` on the `Notifier` route.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifierObjects {
    pub config_map: ConfigMap,
    pub deployment: Deployment,
}

/// Where the notifier worker reads events and publishes messages (from the AWS reconcile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifierWiring {
    pub queue_url: String,
    pub topic_arn: String,
    /// AWS region and endpoint the operator uses, passed on (`AWS_REGION`, `AWS_ENDPOINT_URL`).
    pub aws_region: Option<String>,
    pub aws_endpoint: Option<String>,
}

/// Name of the sink manifest in a notifier's ConfigMap.
pub const SINK_FILE: &str = "sink.yaml";

/// Why a resource cannot be rendered. Reported in its status; never a crash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "spec.kafka.bootstrapServers is not set: the operator's workers need a Kafka cluster (only the local runner has an embedded log)"
    )]
    KafkaNotConfigured,
    #[error("the resource has no {0}")]
    Missing(&'static str),
}

impl RenderError {
    /// CamelCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            RenderError::KafkaNotConfigured => "KafkaNotConfigured",
            RenderError::Missing(_) => "InvalidResource",
        }
    }
}

/// The Kafka connection a resource's workers use: its own, or the operator's default
/// bootstrap servers when it names none.
pub fn effective_kafka(k: &KafkaConnection, cfg: &RenderConfig) -> Result<KafkaConnection, RenderError> {
    let mut k = k.clone();
    if k.bootstrap_servers.as_deref().is_none_or(|s| s.trim().is_empty()) {
        k.bootstrap_servers = Some(cfg.default_kafka_bootstrap.clone().ok_or(RenderError::KafkaNotConfigured)?);
    }
    Ok(k)
}

fn owner_reference<K: Resource<DynamicType = ()>>(obj: &K) -> Result<OwnerReference, RenderError> {
    obj.controller_owner_ref(&()).ok_or(RenderError::Missing("metadata.uid"))
}

/// The manifest a worker reads: apiVersion, kind, name, namespace and spec, as YAML.
fn worker_manifest<K: Resource<DynamicType = ()> + serde::Serialize>(obj: &K, spec: &Value) -> String {
    let doc = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": obj.meta().name, "namespace": obj.meta().namespace},
        "spec": spec,
    });
    // A serde_json::Value always serializes to YAML.
    serde_yaml::to_string(&doc).expect("a JSON value serializes to YAML")
}

/// First 16 hex digits of SHA-256.
pub fn short_hash(data: &str) -> String {
    let d = Sha256::digest(data.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn config_map(name: &str, ns: &str, c: Component, owner: &OwnerReference, manifest: String) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(name, c),
            "namespace": ns,
            "labels": labels(name, c),
            "ownerReferences": [owner],
        },
        "data": {CONFIG_FILE: manifest},
    }))
    .expect("a rendered ConfigMap is a valid ConfigMap")
}

/// Environment and volumes for a Kafka connection's credentials (never their values).
fn kafka_env(k: &KafkaConnection, env: &mut Vec<Value>, mounts: &mut Vec<Value>, volumes: &mut Vec<Value>) {
    let Some(secret) = &k.secret_ref else { return };
    if matches!(k.security_protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
        for (var, key) in [("KAFKA_SASL_USERNAME", "username"), ("KAFKA_SASL_PASSWORD", "password")] {
            env.push(json!({"name": var, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": key}}}));
        }
    }
    if matches!(k.security_protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
        env.push(json!({"name": "TICKLAKE_KAFKA_TLS_DIR", "value": KAFKA_TLS_DIR}));
        mounts.push(json!({"name": "kafka-tls", "mountPath": KAFKA_TLS_DIR, "readOnly": true}));
        volumes.push(json!({"name": "kafka-tls", "secret": {"secretName": secret.name, "optional": true}}));
    }
}

struct PodParts {
    component: Component,
    args: Vec<String>,
    env: Vec<Value>,
    mounts: Vec<Value>,
    volumes: Vec<Value>,
    resources: Value,
    service_account: Option<String>,
    config_hash: String,
    grace_seconds: i64,
}

fn pod_template(name: &str, cfg: &RenderConfig, p: PodParts) -> Value {
    let c = p.component;
    let mut env = vec![
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "TICKLAKE_METRICS_ADDR", "value": format!("0.0.0.0:{METRICS_PORT}")}),
        json!({"name": "TICKLAKE_LOG_FORMAT", "value": "json"}),
    ];
    env.extend(p.env);
    let mut mounts = vec![
        json!({"name": "config", "mountPath": CONFIG_DIR, "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    mounts.extend(p.mounts);
    let mut volumes = vec![
        json!({"name": "config", "configMap": {"name": config_map_name(name, c)}}),
        json!({"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}),
    ];
    volumes.extend(p.volumes);
    let probe = |path: &str, delay: i32| {
        json!({
            "httpGet": {"path": path, "port": METRICS_PORT_NAME},
            "initialDelaySeconds": delay, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3,
        })
    };
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": p.grace_seconds,
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": WORKER_UID, "runAsGroup": WORKER_UID, "fsGroup": WORKER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": c.as_str(),
            "image": cfg.worker_image,
            "imagePullPolicy": cfg.image_pull_policy,
            "args": p.args,
            "env": env,
            "ports": [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
            "readinessProbe": probe("/readyz", 2),
            "livenessProbe": probe("/healthz", 10),
            "resources": p.resources,
            "securityContext": {
                "runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    });
    if let Some(sa) = p.service_account {
        // IRSA: EKS injects the web-identity token for this ServiceAccount regardless of
        // automountServiceAccountToken (which is about the Kubernetes API token, unused here).
        spec["serviceAccountName"] = json!(sa);
    }
    json!({
        "metadata": {
            "labels": labels(name, c),
            "annotations": {CONFIG_HASH_ANNOTATION: p.config_hash},
        },
        "spec": spec,
    })
}

fn resources_or(spec: Option<&k8s_openapi::api::core::v1::ResourceRequirements>, default: Value) -> Value {
    spec.map(|r| serde_json::to_value(r).expect("ResourceRequirements serialize")).unwrap_or(default)
}

/// The producers of a `StockStream`.
pub fn stockstream(ss: &StockStream, cfg: &RenderConfig) -> Result<ProducerObjects, RenderError> {
    let name = ss.meta().name.as_deref().ok_or(RenderError::Missing("metadata.name"))?;
    let ns = ss.meta().namespace.as_deref().ok_or(RenderError::Missing("metadata.namespace"))?;
    let mut spec = ss.spec.clone();
    spec.kafka = effective_kafka(&spec.kafka, cfg)?;
    let owner = owner_reference(ss)?;
    let c = Component::Producer;
    let manifest = worker_manifest(ss, &serde_json::to_value(&spec).expect("spec serializes"));
    let replicas = ss.spec.replicas.max(0);
    // The shard count is part of the configuration: changing replicas re-shares the symbols,
    // so every producer restarts with its new share.
    let config_hash = short_hash(&format!("{manifest}\nshards={replicas}"));
    let (mut env, mut mounts, mut volumes) = (Vec::new(), Vec::new(), Vec::new());
    env.push(json!({"name": "POD_INDEX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}}));
    env.push(json!({"name": "TICKLAKE_SHARD", "value": format!("$(POD_INDEX)/{}", replicas.max(1))}));
    kafka_env(&spec.kafka, &mut env, &mut mounts, &mut volumes);
    let template = pod_template(
        name,
        cfg,
        PodParts {
            component: c,
            args: ["worker", "producer", "--resource", &format!("{CONFIG_DIR}/{CONFIG_FILE}")]
                .map(String::from)
                .to_vec(),
            env,
            mounts,
            volumes,
            resources: resources_or(
                ss.spec.resources.as_ref(),
                json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}),
            ),
            service_account: None,
            config_hash,
            grace_seconds: 30,
        },
    );
    let stateful_set = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": workload_name(name, c),
            "namespace": ns,
            "labels": labels(name, c),
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector_labels(name, c)},
            "template": template,
        },
    }))
    .expect("a rendered StatefulSet is a valid StatefulSet");
    Ok(ProducerObjects { config_map: config_map(name, ns, c, &owner, manifest), stateful_set })
}

/// The sink workers of an `S3Sink`.
pub fn s3sink(sink: &S3Sink, cfg: &RenderConfig) -> Result<SinkObjects, RenderError> {
    let name = sink.meta().name.as_deref().ok_or(RenderError::Missing("metadata.name"))?;
    let ns = sink.meta().namespace.as_deref().ok_or(RenderError::Missing("metadata.namespace"))?;
    let mut spec = sink.spec.clone();
    spec.kafka = effective_kafka(&spec.kafka, cfg)?;
    let owner = owner_reference(sink)?;
    let c = Component::Sink;
    let manifest = worker_manifest(sink, &serde_json::to_value(&spec).expect("spec serializes"));
    let config_hash = short_hash(&manifest);
    let (mut env, mut mounts, mut volumes) = (Vec::new(), Vec::new(), Vec::new());
    kafka_env(&spec.kafka, &mut env, &mut mounts, &mut volumes);
    if let Some(region) = &sink.spec.region {
        env.push(json!({"name": "AWS_REGION", "value": region}));
    }
    if let Some(secret) = &sink.spec.credentials_secret_ref {
        for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            env.push(json!({"name": key, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": key}}}));
        }
    }
    let template = pod_template(
        name,
        cfg,
        PodParts {
            component: c,
            args: ["worker", "sink", "--resource", &format!("{CONFIG_DIR}/{CONFIG_FILE}")].map(String::from).to_vec(),
            env,
            mounts,
            volumes,
            resources: resources_or(
                sink.spec.resources.as_ref(),
                json!({"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}),
            ),
            service_account: sink.spec.service_account_name.clone(),
            config_hash,
            // Long enough to write out the buffers and commit (the flush interval is 60 s by
            // default; a crash is safe anyway, this only avoids rewriting work).
            grace_seconds: 90,
        },
    );
    let deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": workload_name(name, c),
            "namespace": ns,
            "labels": labels(name, c),
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": sink.spec.replicas.max(0),
            "selector": {"matchLabels": selector_labels(name, c)},
            // One new pod before an old one stops: the group rebalances once per pod, and the
            // claims keep every batch exactly once across the handover.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": template,
        },
    }))
    .expect("a rendered Deployment is a valid Deployment");
    Ok(SinkObjects { config_map: config_map(name, ns, c, &owner, manifest), deployment })
}

/// The notifier worker of an `AlertSubscription` on the `Notifier` route: one pod reading the
/// subscription's SQS queue and publishing readable messages (or digests) to its SNS topic.
/// The ConfigMap holds the subscription and, when it watches a sink, the sink (for the table,
/// layout and partition of each object).
pub fn notifier(
    sub: &AlertSubscription,
    sink: Option<&S3Sink>,
    wiring: &NotifierWiring,
    cfg: &RenderConfig,
) -> Result<NotifierObjects, RenderError> {
    let name = sub.meta().name.as_deref().ok_or(RenderError::Missing("metadata.name"))?;
    let ns = sub.meta().namespace.as_deref().ok_or(RenderError::Missing("metadata.namespace"))?;
    let owner = owner_reference(sub)?;
    let c = Component::Notifier;
    let manifest = worker_manifest(sub, &serde_json::to_value(&sub.spec).expect("spec serializes"));
    let sink_manifest = sink.map(|s| worker_manifest(s, &serde_json::to_value(&s.spec).expect("spec serializes")));
    let config_hash = short_hash(&format!(
        "{manifest}\n{}\n{}\n{}",
        sink_manifest.as_deref().unwrap_or(""),
        wiring.queue_url,
        wiring.topic_arn
    ));
    let mut env = Vec::new();
    if let Some(region) = &wiring.aws_region {
        env.push(json!({"name": "AWS_REGION", "value": region}));
    }
    if let Some(endpoint) = &wiring.aws_endpoint {
        env.push(json!({"name": "AWS_ENDPOINT_URL", "value": endpoint}));
    }
    let mut args: Vec<String> =
        ["worker", "notifier", "--resource", &format!("{CONFIG_DIR}/{CONFIG_FILE}")].map(String::from).to_vec();
    if sink_manifest.is_some() {
        args.extend(["--sink".to_string(), format!("{CONFIG_DIR}/{SINK_FILE}")]);
    }
    args.extend(["--queue-url".to_string(), wiring.queue_url.clone()]);
    args.extend(["--topic-arn".to_string(), wiring.topic_arn.clone()]);
    let template = pod_template(
        name,
        cfg,
        PodParts {
            component: c,
            args,
            env,
            mounts: Vec::new(),
            volumes: Vec::new(),
            resources: json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}),
            service_account: sub.spec.service_account_name.clone(),
            config_hash,
            grace_seconds: 30,
        },
    );
    let mut config_map = config_map(name, ns, c, &owner, manifest);
    if let Some(m) = sink_manifest {
        config_map.data.get_or_insert_with(Default::default).insert(SINK_FILE.to_string(), m);
    }
    let deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": workload_name(name, c),
            "namespace": ns,
            "labels": labels(name, c),
            "ownerReferences": [owner],
        },
        "spec": {
            // One reader: SQS hands each message to one receiver anyway, and a digest is one
            // mail per interval, not one per replica.
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(name, c)},
            "strategy": {"type": "Recreate"},
            "template": template,
        },
    }))
    .expect("a rendered Deployment is a valid Deployment");
    Ok(NotifierObjects { config_map, deployment })
}
#[cfg(test)]
mod tests {
    use super::*;
    use ticklake_api::crd::{S3SinkSpec, StockStreamSpec};

    fn stream(yaml: &str) -> StockStream {
        let spec: StockStreamSpec = serde_yaml::from_str(yaml).unwrap();
        let mut s = StockStream::new("ticks", spec);
        s.metadata.namespace = Some("prod".into());
        s.metadata.uid = Some("uid-1".into());
        s
    }

    fn sink(yaml: &str) -> S3Sink {
        let spec: S3SinkSpec = serde_yaml::from_str(yaml).unwrap();
        let mut s = S3Sink::new("lake", spec);
        s.metadata.namespace = Some("prod".into());
        s.metadata.uid = Some("uid-2".into());
        s
    }

    const STREAM: &str = "{source: {simulator: {}}, topic: t, replicas: 3, kafka: {bootstrapServers: 'k:9092'}}";
    const SINK: &str = "{topic: t, bucket: b, kafka: {bootstrapServers: 'k:9092'}, replicas: 2}";

    fn container(pod: &Option<k8s_openapi::api::core::v1::PodTemplateSpec>) -> Value {
        serde_json::to_value(&pod.as_ref().unwrap().spec.as_ref().unwrap().containers[0]).unwrap()
    }

    fn env_of(c: &Value) -> BTreeMap<String, Value> {
        c["env"].as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap().to_string(), e.clone())).collect()
    }

    #[test]
    fn producers_are_a_statefulset_with_one_shard_per_pod() {
        let o = stockstream(&stream(STREAM), &RenderConfig::default()).unwrap();
        let sts = &o.stateful_set;
        assert_eq!(sts.metadata.name.as_deref(), Some("ticks-producer"));
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        let c = container(&Some(spec.template.clone()));
        let env = env_of(&c);
        assert_eq!(env["TICKLAKE_SHARD"]["value"], "$(POD_INDEX)/3");
        assert_eq!(
            env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['apps.kubernetes.io/pod-index']"
        );
        assert_eq!(c["args"], json!(["worker", "producer", "--resource", "/etc/ticklake/resource.yaml"]));
        // Owner reference: the StockStream, as controller, so deletion cascades.
        let owner = &sts.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()), ("StockStream", "ticks", "uid-1"));
        assert_eq!(owner.controller, Some(true));
        assert_eq!(o.config_map.metadata.owner_references.as_ref().unwrap()[0], *owner);
    }

    #[test]
    fn workers_run_locked_down() {
        let o = stockstream(&stream(STREAM), &RenderConfig::default()).unwrap();
        let c = container(&Some(o.stateful_set.spec.unwrap().template));
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["ports"][0]["name"], METRICS_PORT_NAME);
        assert!(c["resources"]["limits"]["memory"].is_string());
    }

    #[test]
    fn the_config_map_is_the_resource_and_its_hash_rolls_the_pods() {
        let cfg = RenderConfig::default();
        let a = stockstream(&stream(STREAM), &cfg).unwrap();
        let manifest = &a.config_map.data.as_ref().unwrap()[CONFIG_FILE];
        let back: ticklake_api::crd::StockStream = serde_yaml::from_str(manifest).unwrap();
        assert_eq!(back.spec, stream(STREAM).spec);
        assert_eq!(back.metadata.namespace.as_deref(), Some("prod"));
        let hash = |o: &ProducerObjects| {
            o.stateful_set.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()
                [CONFIG_HASH_ANNOTATION]
                .clone()
        };
        // Same input, same objects: what makes a second reconcile write nothing.
        assert_eq!(stockstream(&stream(STREAM), &cfg).unwrap(), a);
        let faster = stockstream(&stream(&STREAM.replace("simulator: {}", "simulator: {ticksPerSecond: 5}")), &cfg);
        assert_ne!(hash(&faster.unwrap()), hash(&a));
    }

    #[test]
    fn credentials_are_references_never_values() {
        let s = sink(
            "{topic: t, bucket: b, region: eu-west-1, credentialsSecretRef: {name: s3-creds}, serviceAccountName: irsa,
              kafka: {bootstrapServers: 'k:9092', securityProtocol: SASL_SSL, saslMechanism: SCRAM-SHA-512, secretRef: {name: kafka-creds}}}",
        );
        let o = s3sink(&s, &RenderConfig::default()).unwrap();
        let manifest = &o.config_map.data.as_ref().unwrap()[CONFIG_FILE];
        assert!(!manifest.contains("password") && !manifest.contains("AWS_SECRET"));
        let spec = o.deployment.spec.unwrap();
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("irsa"));
        let env = env_of(&container(&Some(spec.template.clone())));
        assert_eq!(
            env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"],
            json!({"name": "kafka-creds", "key": "password"})
        );
        assert_eq!(
            env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"],
            json!({"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"})
        );
        assert_eq!(env["AWS_REGION"]["value"], "eu-west-1");
        assert_eq!(env["TICKLAKE_KAFKA_TLS_DIR"]["value"], KAFKA_TLS_DIR);
        assert!(pod.volumes.as_ref().unwrap().iter().any(|v| v.name == "kafka-tls"));
    }

    #[test]
    fn sinks_are_a_deployment_of_one_group() {
        let o = s3sink(&sink(SINK), &RenderConfig::default()).unwrap();
        assert_eq!(o.deployment.metadata.name.as_deref(), Some("lake-sink"));
        let spec = o.deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.selector.match_labels.unwrap()[COMPONENT_LABEL], "sink");
    }

    #[test]
    fn no_kafka_is_reported_not_rendered() {
        let e = stockstream(&stream("{source: {simulator: {}}, topic: t}"), &RenderConfig::default()).unwrap_err();
        assert_eq!(e, RenderError::KafkaNotConfigured);
        assert_eq!(e.reason(), "KafkaNotConfigured");
        let e = s3sink(&sink("{topic: t, bucket: b}"), &RenderConfig::default()).unwrap_err();
        assert_eq!(e, RenderError::KafkaNotConfigured);
    }

    #[test]
    fn the_operators_default_kafka_fills_a_spec_without_one() {
        let cfg = RenderConfig { default_kafka_bootstrap: Some("kafka.kafka:9092".into()), ..RenderConfig::default() };
        let o = s3sink(&sink("{topic: t, bucket: b}"), &cfg).unwrap();
        let worker: ticklake_api::crd::S3Sink = serde_yaml::from_str(&o.config_map.data.unwrap()[CONFIG_FILE]).unwrap();
        assert_eq!(worker.spec.kafka.bootstrap_servers.as_deref(), Some("kafka.kafka:9092"));
        // A spec's own servers win.
        let own = stockstream(&stream(STREAM), &cfg).unwrap();
        assert!(own.config_map.data.unwrap()[CONFIG_FILE].contains("k:9092"));
    }
}
