//! One `kube::runtime::Controller` per kind, sharing a [`Context`].
//!
//! Each reconcile follows the same steps (Stackable's and controller-rs' shape):
//!
//! 1. **finalizer** — add it when the resource owns something outside Kubernetes, run the
//!    cleanup and remove it on deletion ([`finalize`]);
//! 2. **render** — the desired objects, without a client ([`crate::render`]); a spec that
//!    cannot be rendered becomes a problem in status, never a crash;
//! 3. **apply** — each object written only when it differs from the live one
//!    ([`crate::apply::ensure`]), so drift is repaired and an unchanged resource costs reads only;
//! 4. **external state** — the Kafka topic;
//! 5. **observe** — the workload's rollout, the workers' own figures ([`crate::scrape`]);
//! 6. **status** — conditions with `observedGeneration`, written only when it changed.
//!
//! Failures are retried with a per-object exponential backoff (1 s doubling to 5 min, reset on
//! success) and shown in status (`Degraded`) and as Kubernetes Events. Successful reconciles
//! requeue after the status interval, to refresh the live figures.

pub mod alertsubscription;
pub mod cloud;
pub mod s3sink;
pub mod stockstream;

use crate::conditions::{self, Observed, Problem, Workload};
use crate::kafka::Admins;
use crate::metrics::{Metrics, ReasonLabel};
use crate::render::{FIELD_MANAGER, RenderConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The finalizer the operator puts on resources that own something outside Kubernetes.
pub const FINALIZER: &str = "ticklake.dev/cleanup";
/// Default of [`Settings::resync`].
pub const RESYNC: Duration = Duration::from_secs(60);
/// Longest retry delay after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a reconcile failed; every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("AWS {0}")]
    Aws(#[from] ticklake_aws::AwsError),
}

impl Error {
    /// CamelCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Kafka(_) => "KafkaUnavailable",
            Error::Aws(e) => e.reason(),
        }
    }
}

/// Settings of the controllers.
#[derive(Clone, Debug)]
pub struct Settings {
    pub render: RenderConfig,
    /// Resources with ready workers are reconciled again after this long, to refresh their
    /// live figures.
    pub status_interval: Duration,
    /// Every resource is reconciled at least this often, whatever the watches say (ACK resyncs
    /// every 10 h, Crossplane every minute); drift outside Kubernetes — a deleted topic — is
    /// found within this time.
    pub resync: Duration,
    /// Watch this namespace only (`None`: all).
    pub namespace: Option<String>,
    /// Reconciles running at once per kind.
    pub concurrency: u16,
    /// Identity in Events (the pod name).
    pub instance: String,
    /// How to reach AWS (Glue, Athena, SNS, SQS, S3 bucket notifications).
    pub aws: ticklake_aws::AwsSettings,
    /// IAM role of Glue crawlers for sinks that name none.
    pub glue_crawler_role: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            render: RenderConfig::default(),
            status_interval: Duration::from_secs(30),
            resync: RESYNC,
            namespace: None,
            concurrency: 32,
            instance: "ticklake-operator".into(),
            aws: ticklake_aws::AwsSettings::default(),
            glue_crawler_role: None,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub admins: Admins,
    failures: Mutex<HashMap<String, u32>>,
    aws: tokio::sync::OnceCell<Arc<ticklake_aws::Clients>>,
    aws_account: tokio::sync::OnceCell<ticklake_aws::athena::Account>,
}

impl Context {
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>) -> Arc<Context> {
        let recorder = Recorder::new(
            client.clone(),
            Reporter { controller: "ticklake-operator".into(), instance: Some(settings.instance.clone()) },
        );
        Arc::new(Context {
            client,
            settings,
            metrics,
            recorder,
            admins: Admins::default(),
            failures: Mutex::default(),
            aws: tokio::sync::OnceCell::new(),
            aws_account: tokio::sync::OnceCell::new(),
        })
    }

    /// The AWS clients, made on first use (credentials are resolved lazily by the SDK).
    pub async fn aws(&self) -> Arc<ticklake_aws::Clients> {
        self.aws.get_or_init(|| async { Arc::new(ticklake_aws::Clients::new(&self.settings.aws).await) }).await.clone()
    }

    /// The AWS account the operator's credentials belong to (`sts:GetCallerIdentity`, asked once
    /// successfully), for ARNs no API returns.
    pub async fn aws_account(&self) -> Result<ticklake_aws::athena::Account, Error> {
        let account = self
            .aws_account
            .get_or_try_init(|| async { ticklake_aws::athena::caller_account(&self.settings.aws).await })
            .await?;
        Ok(account.clone())
    }

    /// Publishes an Event about `obj` (best effort: an Event that cannot be written is logged).
    pub async fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, warning: bool, reason: &str, note: String) {
        let ev = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note.chars().take(1024).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }

    fn key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
        format!(
            "{}/{}/{}",
            K::kind(&()),
            obj.meta().namespace.as_deref().unwrap_or(""),
            obj.meta().name.as_deref().unwrap_or("")
        )
    }

    fn succeeded<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        self.failures.lock().expect("backoff lock").remove(&Self::key(obj));
    }

    /// The delay before retrying `obj` after one more failure: 1 s, 2 s, 4 s, … 5 min.
    fn backoff<K: Resource<DynamicType = ()>>(&self, obj: &K) -> Duration {
        let mut f = self.failures.lock().expect("backoff lock");
        let n = f.entry(Self::key(obj)).or_insert(0);
        *n = n.saturating_add(1);
        backoff_delay(*n)
    }

    /// What a connection's `kafka.secretRef` Secret in `ns` holds for Kafka: SASL credentials
    /// and TLS material. A missing Secret is an error with SASL (its credentials are required);
    /// with SSL it means no TLS material, as for the workers, whose Secret volume is optional.
    pub async fn kafka_secret(
        &self,
        ns: &str,
        kafka: &ticklake_api::crd::KafkaConnection,
    ) -> Result<Option<crate::kafka::KafkaSecret>, Error> {
        use ticklake_api::crd::SecurityProtocol;
        let Some(secret) = &kafka.secret_ref else { return Ok(None) };
        if kafka.security_protocol == SecurityProtocol::Plaintext {
            return Ok(None);
        }
        let Some(s) = Api::<Secret>::namespaced(self.client.clone(), ns).get_opt(&secret.name).await? else {
            if matches!(kafka.security_protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
                return Err(Error::Kafka(format!("Secret {} (kafka.secretRef) not found", secret.name)));
            }
            return Ok(None);
        };
        let data = s.data.unwrap_or_default();
        Ok(Some(crate::kafka::KafkaSecret::from_data(data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())))))
    }

    /// The admin connection to a resource's Kafka cluster (its own or the operator's default),
    /// with the cluster's key in [`Admins`]. SASL credentials and TLS material (CA, client
    /// certificate) come from `kafka.secretRef`, as for the workers.
    pub async fn kafka_admin(
        &self,
        ns: &str,
        kafka: &ticklake_api::crd::KafkaConnection,
    ) -> Result<(Arc<ticklake_bus::kafka::KafkaBus>, String), Error> {
        let k =
            crate::render::effective_kafka(kafka, &self.settings.render).map_err(|e| Error::Kafka(e.to_string()))?;
        let secret = self.kafka_secret(ns, &k).await?;
        let props = crate::kafka::properties(&k, secret.as_ref()).map_err(|e| match &k.secret_ref {
            Some(s) => Error::Kafka(format!("{e} (Secret {})", s.name)),
            None => Error::Kafka(e),
        })?;
        let key = crate::kafka::cluster_key(&props);
        Ok((self.admins.get(props).map_err(|e| Error::Kafka(e.to_string()))?, key))
    }

    /// Makes the owned object `desired` so (see [`crate::apply::ensure`]), counts and announces
    /// a write; returns the live object as it was before, and what was done.
    pub async fn ensure_owned<O, K>(
        &self,
        owner: &K,
        ns: &str,
        desired: &O,
    ) -> Result<(Option<O>, crate::apply::Outcome), Error>
    where
        O: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + serde::Serialize
            + DeserializeOwned,
        K: Resource<DynamicType = ()>,
    {
        let api: Api<O> = Api::namespaced(self.client.clone(), ns);
        let name = desired.name_any();
        let live = api.get_opt(&name).await?;
        let outcome = crate::apply::ensure(&api, desired, live.as_ref()).await?;
        let (owner_kind, object) = (K::kind(&()).to_string(), O::kind(&()).to_string());
        match &outcome {
            crate::apply::Outcome::Unchanged => {}
            crate::apply::Outcome::Created => {
                self.metrics.wrote(&owner_kind, &object);
                self.event(owner, false, "Created", format!("{object} {name} created")).await;
            }
            crate::apply::Outcome::Updated(path) => {
                self.metrics.wrote(&owner_kind, &object);
                tracing::info!(kind = %owner_kind, %object, %name, difference = %path, "updated");
                self.event(owner, false, "Updated", format!("{object} {name} updated (it differed at {path})")).await;
            }
        }
        Ok((live, outcome))
    }

    /// The live figures of a resource's workers — asked only when some are ready (only ready
    /// pods serve them).
    pub async fn worker_reports(
        &self,
        ns: &str,
        resource: &str,
        component: crate::render::Component,
        ready: Option<i32>,
    ) -> Result<Vec<ticklake_api::report::WorkerReport>, Error> {
        if ready.unwrap_or(0) <= 0 {
            return Ok(Vec::new());
        }
        let selector = crate::render::label_selector(resource, component);
        let pods =
            Api::<Pod>::namespaced(self.client.clone(), ns).list(&ListParams::default().labels(&selector)).await?;
        Ok(crate::scrape::reports(&pods.items).await)
    }
}

/// When to reconcile a healthy resource again: after the status interval while it has ready
/// workers (their live figures change), else after the resync period — a resource without ready
/// workers has no figures to refresh, and its workload's changes trigger a reconcile anyway.
pub fn refresh_after(ctx: &Context, ready_workers: Option<i32>) -> Duration {
    if ready_workers.unwrap_or(0) > 0 { ctx.settings.status_interval } else { ctx.settings.resync }
}

/// Retry delay after `failures` consecutive failures.
pub fn backoff_delay(failures: u32) -> Duration {
    let secs = 1u64.checked_shl(failures.saturating_sub(1).min(16)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// Runs the reconcile of one object with metrics, backoff bookkeeping and logging.
pub async fn instrumented<K, F>(kind: &str, obj: Arc<K>, ctx: &Context, body: F) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: Future<Output = Result<Action, Error>>,
{
    let started = Instant::now();
    let kl = Metrics::kind(kind);
    ctx.metrics.in_flight.get_or_create(&kl).inc();
    let result = body.await;
    ctx.metrics.in_flight.get_or_create(&kl).dec();
    ctx.metrics.duration.get_or_create(&kl).observe(started.elapsed().as_secs_f64());
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciles
        .get_or_create(&crate::metrics::OutcomeLabel { kind: kind.into(), outcome: outcome.into() })
        .inc();
    match &result {
        Ok(_) => ctx.succeeded(obj.as_ref()),
        Err(e) => {
            ctx.metrics.errors.get_or_create(&ReasonLabel { kind: kind.into(), reason: e.reason().into() }).inc();
            tracing::warn!(kind, name = %obj.meta().name.as_deref().unwrap_or(""), error = %e, "reconcile failed");
        }
    }
    result
}

/// The error policy of every controller: per-object exponential backoff.
pub fn error_policy<K: Resource<DynamicType = ()>>(obj: Arc<K>, _e: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff(obj.as_ref()))
}

/// Adds or removes [`FINALIZER`] and runs `cleanup` on deletion.
///
/// Returns `Some(action)` when the reconcile is over (deletion handled, or the finalizer was
/// just added and the resulting watch event brings the next reconcile), `None` to go on.
pub async fn finalize<K, C>(api: &Api<K>, obj: &K, needed: bool, cleanup: C) -> Result<Option<Action>, Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    C: Future<Output = Result<(), Error>>,
{
    let has = obj.finalizers().iter().any(|f| f == FINALIZER);
    let name = obj.name_any();
    let rv = obj.resource_version();
    let without: Vec<&String> = obj.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    if obj.meta().deletion_timestamp.is_some() {
        if has {
            cleanup.await?;
            // resourceVersion makes this a compare-and-swap: other finalizers are kept.
            let patch = serde_json::json!({"metadata": {"finalizers": without, "resourceVersion": rv}});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                // Already gone: the cleanup was the last thing keeping it.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Some(Action::await_change()));
    }
    if needed && !has {
        let mut with: Vec<&str> = without.iter().map(|s| s.as_str()).collect();
        with.push(FINALIZER);
        let patch = serde_json::json!({"metadata": {"finalizers": with, "resourceVersion": rv}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        return Ok(Some(Action::await_change()));
    }
    if !needed && has {
        let patch = serde_json::json!({"metadata": {"finalizers": without, "resourceVersion": rv}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    Ok(None)
}

/// The conditions for `observed`, with transition times carried over from `old`.
pub fn status_conditions(old: &[Condition], observed: &Observed) -> Vec<Condition> {
    conditions::merge(old, conditions::conditions(observed), Time(k8s_openapi::jiff::Timestamp::now()))
}

/// Writes `status` (a JSON object) when it differs from `old`: server-side apply of the status
/// subresource. Returns whether it wrote.
pub async fn write_status<K>(
    api: &Api<K>,
    obj: &K,
    old: &serde_json::Value,
    status: serde_json::Value,
    ctx: &Context,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    if crate::apply::first_difference(&status, old).is_none() && crate::apply::first_difference(old, &status).is_none()
    {
        return Ok(false);
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    ctx.metrics.wrote(&K::kind(&()), "status");
    Ok(true)
}

/// Publishes a Warning Event when the set of problems changed since the last status.
pub async fn report_problems<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    old_conditions: &[Condition],
    problems: &[Problem],
) {
    let old = ticklake_api::crd::find_condition(old_conditions, ticklake_api::crd::condition::DEGRADED);
    for p in problems {
        let already = old.is_some_and(|c| c.status == "True" && c.reason == p.reason && c.message.contains(&p.message));
        if !already {
            ctx.event(obj, true, &p.reason, p.message.clone()).await;
        }
    }
}

/// The rollout state of a workload from its spec and status.
pub fn workload_state(
    name: String,
    generation: Option<i64>,
    desired: i32,
    observed_generation: Option<i64>,
    ready: Option<i32>,
    updated: Option<i32>,
    just_written: bool,
) -> Workload {
    Workload {
        name,
        desired,
        ready: ready.unwrap_or(0),
        updated: updated.unwrap_or(0),
        observed_current: !just_written && generation.is_some() && observed_generation >= generation,
    }
}

/// Runs a controller's result stream to its end, logging what it yields.
pub async fn drain<S, T, E>(kind: &'static str, stream: S)
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    stream
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(kind, error = %e, "controller event");
            }
        })
        .await;
}

/// `Api` of a namespaced kind, in one namespace or all.
pub fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let d: Vec<u64> = (1..=12).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff_delay(u32::MAX), MAX_BACKOFF);
    }
}
