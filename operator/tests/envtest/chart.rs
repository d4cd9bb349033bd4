//! The Helm chart `charts/ticklake`: linted and rendered with the defaults and with every
//! documented option (`charts/ticklake/ci/*-values.yaml`), refused with bad values, every
//! rendering accepted by the real API server (server-side dry-run), installed for real with
//! `helm install`, and the operator run exactly as the chart's Deployment runs it — its args,
//! its environment, its ServiceAccount's token — until `kubectl apply -f deploy/examples/`
//! gives workers.

use crate::harness::*;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// `charts/ticklake/ci/*-values.yaml`, sorted.
fn ci_values() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(format!("{}/ci", chart_dir()))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "ci values files: {files:?}");
    files
}

/// `helm template ticklake <chart> -n <ns> [-f values] [--set ...]`.
fn render(ns: &str, values: Option<&str>, sets: &[&str]) -> Result<String, String> {
    let chart = chart_dir();
    let mut args = vec!["template", "ticklake", &chart, "--namespace", ns];
    if let Some(v) = values {
        args.extend(["-f", v]);
    }
    for s in sets {
        args.extend(["--set", s]);
    }
    helm(&args)
}

/// Every document of a YAML stream, as JSON.
fn docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).expect("valid YAML")).unwrap())
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendering"))
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect()
}

fn args_of(deploy: &Value) -> Vec<String> {
    deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Every pod template: restricted Pod Security (non-root, seccomp, no escalation, no
/// capabilities), memory limits; a read-only root filesystem except where documented.
fn check_pod_security(docs: &[Value], file: &str) {
    for d in docs.iter().filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet") {
        let name = format!("{file}: {} {}", d["kind"], d["metadata"]["name"]);
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
            assert!(c["resources"]["limits"]["memory"].is_string(), "{name}: a memory limit");
            // The Kafka image writes its generated configuration at start (documented in values).
            let read_only = c["name"] != "kafka";
            assert_eq!(sc["readOnlyRootFilesystem"], read_only, "{name}");
            if c["name"] == "operator" {
                for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                    assert!(c[probe]["httpGet"]["path"].is_string(), "{name}: {probe}");
                }
            }
        }
    }
}

/// The keys of values.yaml and the properties of values.schema.json are the same (each
/// documented value is checked; no checked value is undocumented), down every closed object.
fn same_keys(values: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    if schema["additionalProperties"] != false {
        return;
    }
    let props = schema["properties"].as_object().unwrap();
    let vals = values.as_object().cloned().unwrap_or_default();
    for k in props.keys() {
        if !vals.contains_key(k) && k != "global" {
            problems.push(format!("{path}{k} is in the schema but not in values.yaml"));
        }
    }
    for (k, v) in &vals {
        match props.get(k) {
            None => problems.push(format!("{path}{k} is in values.yaml but not in the schema")),
            Some(s) => same_keys(v, s, &format!("{path}{k}."), problems),
        }
    }
}

/// Lint, render and check what every documented option promises; the chart and the repository
/// agree (versions, CRDs, the plain-manifest install in deploy/operator/).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_lints_and_renders_with_every_documented_option() {
    let chart = chart_dir();
    for file in ci_values() {
        helm(&["lint", "--strict", &chart, "-f", &file]).unwrap();
        let out = render("ticklake-system", Some(&file), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
        let docs = docs(&out);
        check_pod_security(&docs, &file);
        let short = file.rsplit('/').next().unwrap().to_string();
        match short.as_str() {
            "default-values.yaml" => {
                let d = find(&docs, "Deployment", "ticklake-operator");
                assert_eq!(d["spec"]["replicas"], 2);
                let args = args_of(d);
                assert!(args.contains(&"--lease-name=ticklake-operator".to_string()), "{args:?}");
                assert!(args.contains(&format!("--worker-image=ghcr.io/ticklake/ticklake:{VERSION}")), "{args:?}");
                // The chart's default worker image is the operator binary's own default.
                let binary_default = ticklake_operator::render::RenderConfig::default().worker_image;
                assert!(args.contains(&format!("--worker-image={binary_default}")), "{args:?}");
                assert_eq!(
                    d["spec"]["template"]["spec"]["containers"][0]["image"],
                    format!("ghcr.io/ticklake/ticklake-operator:{VERSION}")
                );
                assert!(!args.iter().any(|a| a.starts_with("--namespace")), "watches all namespaces");
                for kind in ["ClusterRole", "ClusterRoleBinding", "PodDisruptionBudget", "NetworkPolicy", "Service"] {
                    assert!(kinds(&docs).contains(kind), "{kind} by default");
                }
                let crd = find(&docs, "CustomResourceDefinition", "stockstreams.ticklake.dev");
                assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
                for kind in ["ServiceMonitor", "PodMonitor", "StatefulSet", "ConfigMap"] {
                    assert!(!kinds(&docs).contains(kind), "no {kind} by default");
                }
            }
            "all-options-values.yaml" => {
                let d = find(&docs, "Deployment", "lake-operator");
                let args = args_of(d);
                assert!(args.contains(&"--default-kafka-bootstrap=lake-kafka.ticklake-system.svc:9092".to_string()));
                assert!(args.contains(&"--worker-image=registry.example.com/ticklake/ticklake:0.1.0-custom".into()));
                assert!(args.contains(&"--lease-name=custom-lease".to_string()), "extraArgs: {args:?}");
                assert!(args.contains(&"--aws-region=eu-west-1".to_string()), "{args:?}");
                assert!(args.contains(&"--aws-endpoint-url=https://vpce.example.com".to_string()), "{args:?}");
                assert!(args.iter().any(|a| a.starts_with("--glue-crawler-role=arn:aws:iam::")), "{args:?}");
                assert_eq!(
                    d["spec"]["template"]["spec"]["containers"][0]["image"],
                    "registry.example.com/ticklake/ticklake-operator@sha256:0000000000000000000000000000000000000000000000000000000000000000"
                );
                assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "lake-operator-sa");
                let sa = find(&docs, "ServiceAccount", "lake-operator-sa");
                assert_eq!(
                    sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
                    "arn:aws:iam::123456789012:role/ticklake-operator"
                );
                let kafka = find(&docs, "StatefulSet", "lake-kafka");
                let pod = &kafka["spec"]["template"]["spec"];
                assert_eq!(pod["nodeSelector"]["eks.amazonaws.com/nodegroup"], "kafka");
                assert_eq!(pod["tolerations"][0]["value"], "kafka");
                assert_eq!(kafka["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"], "gp3");
                let policy = find(&docs, "NetworkPolicy", "lake-operator");
                assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
                let monitor = find(&docs, "PodMonitor", "lake-workers");
                assert_eq!(
                    monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/managed-by"],
                    "ticklake-operator"
                );
                find(&docs, "ServiceMonitor", "lake-operator");
                let dash = find(&docs, "ConfigMap", "lake-dashboard");
                assert_eq!(dash["metadata"]["labels"]["grafana_dashboard"], "1");
                let json: Value = serde_json::from_str(dash["data"]["ticklake.json"].as_str().unwrap())
                    .expect("the dashboard in the ConfigMap is JSON");
                assert!(json["panels"].as_array().is_some_and(|p| !p.is_empty()), "dashboard panels");
                let crd = find(&docs, "CustomResourceDefinition", "s3sinks.ticklake.dev");
                assert!(crd["metadata"]["annotations"].get("helm.sh/resource-policy").is_none(), "crds.keep=false");
            }
            "namespaced-values.yaml" => {
                let args = args_of(find(&docs, "Deployment", "ticklake-operator"));
                assert!(args.contains(&"--namespace=pipelines".to_string()), "{args:?}");
                assert!(args.contains(&"--no-leader-election".to_string()), "{args:?}");
                let role = find(&docs, "Role", "ticklake-operator");
                assert_eq!(role["metadata"]["namespace"], "pipelines");
                let k = kinds(&docs);
                for kind in ["ClusterRole", "CustomResourceDefinition", "ServiceAccount", "PodDisruptionBudget"] {
                    assert!(!k.contains(kind), "no {kind} when namespaced: {k:?}");
                }
            }
            "msk-values.yaml" => {
                let args = args_of(find(&docs, "Deployment", "ticklake-operator"));
                assert!(args.iter().any(|a| a.starts_with("--default-kafka-bootstrap=b-1.ticklake")), "{args:?}");
                assert!(!kinds(&docs).contains("StatefulSet"), "no in-chart Kafka");
            }
            other => panic!("{other}: add what this values file promises to this test"),
        }
    }

    // Guards in the templates.
    let err = render("x", None, &["operator.leaderElection.enabled=false"]).unwrap_err();
    assert!(err.contains("needs operator.leaderElection.enabled"), "{err}");
    let err = render("x", None, &["serviceAccount.create=false"]).unwrap_err();
    assert!(err.contains("serviceAccount.name is required"), "{err}");

    // One version: the workspace's, in Chart.yaml's version and appVersion.
    let meta: Value = serde_yaml::from_str(&std::fs::read_to_string(format!("{chart}/Chart.yaml")).unwrap()).unwrap();
    assert_eq!(meta["version"], VERSION, "Chart.yaml version follows the workspace version");
    assert_eq!(meta["appVersion"], VERSION, "Chart.yaml appVersion follows the workspace version");

    // (That the chart's CRDs are the generated ones is checked by api/tests/crds.rs.)

    // values.yaml and values.schema.json document the same keys.
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(format!("{chart}/values.yaml")).unwrap()).unwrap();
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(format!("{chart}/values.schema.json")).unwrap())
        .expect("values.schema.json is JSON");
    let mut problems = vec![];
    same_keys(&values, &schema, "", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");

    // deploy/operator/ticklake-operator.yaml is the chart rendered with its defaults (no CRDs:
    // those are applied from crds/ first); TICKLAKE_UPDATE_DEPLOY=1 rewrites it.
    let plain = render("ticklake-system", None, &["crds.install=false"]).unwrap();
    let header = "# Generated from charts/ticklake with its default values (crds.install=false) by the\n\
                  # envtest chart_lints_and_renders_with_every_documented_option with TICKLAKE_UPDATE_DEPLOY=1;\n\
                  # do not edit. Install without Helm:\n\
                  #   kubectl apply --server-side -f crds/\n\
                  #   kubectl create namespace ticklake-system\n\
                  #   kubectl apply -f deploy/operator/\n";
    let expected = format!("{header}{plain}");
    let path = repo("deploy/operator/ticklake-operator.yaml");
    if std::env::var("TICKLAKE_UPDATE_DEPLOY").is_ok() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == expected, "{path} is stale: rerun with TICKLAKE_UPDATE_DEPLOY=1");
}

/// Wrong values fail before anything reaches the cluster, with a message naming the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_violate_the_schema_fail() {
    let cases = [
        ("operator.replicas=0", "/operator/replicas"),
        ("operator.replika=2", "additional properties 'replika' not allowed"),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("operator.image.pullPolicy=Sometimes", "/operator/image/pullPolicy"),
        ("kafka.bootstrapServers=kafka without port", "/kafka/bootstrapServers"),
        ("serviceAccount.awsRoleArn=my-role", "/serviceAccount/awsRoleArn"),
        ("metrics.serviceMonitor.interval=30", "/metrics/serviceMonitor/interval"),
        ("operator.extraArgs[0]=namespace", "/operator/extraArgs/0"),
        ("kafka.inChart.persistence.size=lots", "/kafka/inChart/persistence/size"),
        ("operator.metricsPort=80", "/operator/metricsPort"),
    ];
    for (set, expected) in cases {
        let err = render("x", None, &[set]).expect_err(&format!("--set {set} must be refused"));
        assert!(err.contains("values don't meet the specifications of the schema"), "{set}: {err}");
        assert!(err.contains(expected), "{set}: expected {expected:?} in: {err}");
    }
    // `helm install` refuses too, and leaves nothing behind.
    let c = client().await;
    let ns = namespace(&c, "badvalues").await;
    let err = helm(&["install", "bad", &chart_dir(), "-n", &ns, "--set", "operator.replicas=0"]).unwrap_err();
    assert!(err.contains("/operator/replicas"), "{err}");
    assert_eq!(helm(&["list", "-n", &ns, "-q"]).unwrap().trim(), "", "no release");
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    assert!(deployments.list(&Default::default()).await.unwrap().items.is_empty());
    drop_namespace(&c, &ns).await;
}

/// Every rendering — defaults and each documented option — is accepted by the real API server
/// (server-side dry-run apply, which runs its validation and admission). The prometheus-operator
/// CRDs are installed so that ServiceMonitor and PodMonitor are checked against their schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rendering_is_accepted_by_the_api_server() {
    let c = client().await;
    install_crds(&c).await;
    let prom = need("TICKLAKE_TEST_PROMETHEUS_CRDS");
    for crd in ["servicemonitors", "podmonitors"] {
        kubectl(&["apply", "--server-side", "-f", &format!("{prom}/monitoring.coreos.com_{crd}.yaml")]);
    }
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    for name in ["servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com"] {
        wait_for(Duration::from_secs(30), &format!("{name} established"), || async {
            let crd = crds.get(name).await.ok()?;
            crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await;
    }
    let _ = kubectl_try(&["create", "namespace", "pipelines"]); // namespaced-values.yaml watches it
    for file in ci_values() {
        let ns = namespace(&c, "dryrun").await;
        let out = render(&ns, Some(&file), &[]).unwrap();
        let path = std::env::temp_dir().join(format!("{ns}.yaml"));
        std::fs::write(&path, &out).unwrap();
        let res = kubectl_try(&["apply", "--server-side", "--dry-run=server", "-f", path.to_str().unwrap()]);
        let applied = res.unwrap_or_else(|e| panic!("{file}: the API server refused the rendering: {e}"));
        assert_eq!(applied.lines().count(), docs(&out).len(), "{file}: every object applied:\n{applied}");
        drop_namespace(&c, &ns).await;
    }
    // A schema-valid but wrong object would be refused: the check can fail.
    let ns = namespace(&c, "dryrun").await;
    let out = render(&ns, None, &[]).unwrap().replace("maxUnavailable: 0", "maxUnavailable: -1");
    let path = std::env::temp_dir().join(format!("{ns}.yaml"));
    std::fs::write(&path, &out).unwrap();
    let err = kubectl_try(&["apply", "--server-side", "--dry-run=server", "-f", path.to_str().unwrap()]).unwrap_err();
    assert!(err.contains("maxUnavailable"), "{err}");
    drop_namespace(&c, &ns).await;
}

/// `helm install` into the real API server, the operator run as its Deployment says (args,
/// environment, ServiceAccount token; only the metrics address moved to a free port, and the
/// kubeconfig standing in for the in-cluster configuration, as there is no kubelet to run the
/// pod), then `kubectl apply -f deploy/examples/` gives the workers; `helm uninstall` removes
/// the operator and keeps the CRDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_then_the_examples_run() {
    let _one_at_a_time = examples_lock().await;
    crate::aws::examples_bucket().await;
    let c = client().await;
    install_crds(&c).await; // as other tests do: the release adopts them
    let ns = namespace(&c, "helm").await;
    let kafka = need("TICKLAKE_TEST_KAFKA_BOOTSTRAP");
    let (rel, rel_ns) = (CHART_RELEASE, CHART_RELEASE_NAMESPACE);
    let out = helm(&[
        "upgrade",
        "--install",
        rel,
        &chart_dir(),
        "-n",
        rel_ns,
        "--create-namespace",
        "--set",
        &format!("operator.watchNamespace={ns}"),
        "--set",
        &format!("kafka.bootstrapServers={kafka}"),
        "--set",
        "operator.statusIntervalSeconds=2",
        "--set",
        &format!("aws.endpointUrl={}", need("TICKLAKE_TEST_AWS_ENDPOINT")),
        "--set",
        "aws.region=us-east-1",
        "--set",
        &format!("aws.glueCrawlerRoleArn={TEST_CRAWLER_ROLE}"),
    ])
    .unwrap();
    assert!(out.contains("It watches namespace"), "NOTES are shown: {out}");

    // What the release made.
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), rel_ns);
    let deploy = deployments.get("ticklake-operator").await.expect("the operator Deployment");
    for (kind, name, namespace) in [
        ("serviceaccount", "ticklake-operator", rel_ns),
        ("role", "ticklake-operator", ns.as_str()),
        ("rolebinding", "ticklake-operator", ns.as_str()),
        ("role", "ticklake-operator-leader-election", rel_ns),
        ("service", "ticklake-operator-metrics", rel_ns),
        ("poddisruptionbudget", "ticklake-operator", rel_ns),
        ("networkpolicy", "ticklake-operator", rel_ns),
    ] {
        kubectl(&["get", kind, name, "-n", namespace]);
    }
    let crd = Api::<CustomResourceDefinition>::all(c.clone()).get("stockstreams.ticklake.dev").await.unwrap();
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get("meta.helm.sh/release-name").map(String::as_str), Some(rel));
    assert_eq!(annotations.get("helm.sh/resource-policy").map(String::as_str), Some("keep"));

    // The operator, as the pod would run it.
    let pod = deploy.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let addr = format!("127.0.0.1:{}", free_port());
    let pod_name = "ticklake-operator-5d9f8-x2x7q";
    let mut args: Vec<String> = container
        .args
        .clone()
        .unwrap()
        .into_iter()
        .map(|a| if a.starts_with("--metrics-addr=") { format!("--metrics-addr={addr}") } else { a })
        .collect();
    assert!(args.contains(&format!("--metrics-addr={addr}")), "the chart sets the metrics address: {args:?}");
    let sa = pod.service_account_name.clone().unwrap();
    args.push(format!("--kubeconfig={}", service_account_kubeconfig(rel_ns, &sa)));
    assert!(args.iter().any(|a| a.starts_with("--aws-endpoint-url=")), "the chart's aws values: {args:?}");
    let env: Vec<(String, String)> = container
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let value = match (e.value, e.value_from.and_then(|f| f.field_ref).map(|f| f.field_path)) {
                (Some(v), _) => v,
                (None, Some(path)) if path == "metadata.name" => pod_name.to_string(),
                (None, Some(path)) if path == "metadata.namespace" => rel_ns.to_string(),
                other => panic!("env {} from {other:?}: teach this test", e.name),
            };
            (e.name, value)
        })
        .collect();
    // IRSA's web identity stands in as static credentials (there is no EKS webhook here).
    let env: Vec<(String, String)> = env.into_iter().chain(aws_credentials()).collect();
    let lease = "ticklake-operator";
    let op = Operator::spawn("helm-release", &args, &env, &addr, pod_name, lease, rel_ns).await;

    // The examples, as a user applies them.
    kubectl(&["apply", "-n", &ns, "-f", &repo("deploy/examples/")]);
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), &ns);
    let sinks: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let producer = wait_for(Duration::from_secs(60), "the example's producers", || async {
        sets.get_opt("ticks-producer").await.ok().flatten()
    })
    .await;
    wait_for(Duration::from_secs(60), "the replay example's producers", || async {
        sets.get_opt("kaggle-indexes-producer").await.ok().flatten()
    })
    .await;
    wait_for(Duration::from_secs(60), "the example's sink", || async {
        sinks.get_opt("ticks-lake-sink").await.ok().flatten()
    })
    .await;
    let image = producer.spec.unwrap().template.spec.unwrap().containers[0].image.clone().unwrap();
    assert_eq!(image, format!("ghcr.io/ticklake/ticklake:{VERSION}"), "the chart's worker image");
    let leases: Api<Lease> = Api::namespaced(c.clone(), rel_ns);
    let holder = leases.get(lease).await.unwrap().spec.unwrap().holder_identity;
    assert_eq!(holder.as_deref(), Some(pod_name), "the pod's name from the downward API leads");
    let (ready, _) = wait_conditions(&c, &ns, "stockstreams", "ticks", "PodsStarting").await;
    assert_eq!(ready["observedGeneration"], 1);
    let bus = ticklake_bus::kafka::KafkaBus::new(&kafka).unwrap();
    assert!(bus.topic_partitions("ticks").await.unwrap().is_some(), "the topic, on the chart's default Kafka");

    // Clean up as a user would; the CRDs stay (helm.sh/resource-policy: keep).
    kubectl(&["delete", "-n", &ns, "-f", &repo("deploy/examples/"), "--wait=true", "--timeout=90s"]);
    drop(op);
    helm(&["uninstall", rel, "-n", rel_ns]).unwrap();
    wait_for(Duration::from_secs(30), "the operator Deployment removed", || async {
        deployments.get_opt("ticklake-operator").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        Api::<CustomResourceDefinition>::all(c.clone()).get_opt("stockstreams.ticklake.dev").await.unwrap().is_some(),
        "the CRDs are kept"
    );
    drop_namespace(&c, &ns).await;
}
