//! The operator process: metrics endpoint, leader election, the three controllers.

use crate::controller::{Context, Settings, alertsubscription, drain, error_policy, s3sink, scoped_api, stockstream};
use crate::leader::LeaseLock;
use crate::metrics::Metrics;
use crate::render::MANAGED_BY;
use futures::FutureExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use std::net::SocketAddr;
use std::time::Duration;
use ticklake_api::crd::{AlertSubscription, S3Sink, StockStream};
use tokio::sync::watch;

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
}

/// Everything the process needs.
#[derive(Clone, Debug)]
pub struct Options {
    pub settings: Settings,
    /// `None`: no election (one replica only).
    pub leader: Option<LeaderOptions>,
    pub metrics_addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binding the metrics endpoint {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("lost the leader lease: another replica leads now; exiting so Kubernetes restarts this one as a candidate")]
    LostLeadership,
}

/// Runs until `shutdown` turns true (then stops cleanly, releasing the lease) or leadership
/// is lost (an error: the binary exits non-zero).
pub async fn run(client: Client, opts: Options, mut shutdown: watch::Receiver<bool>) -> Result<(), RunError> {
    let metrics = Metrics::new();
    let listener = tokio::net::TcpListener::bind(opts.metrics_addr)
        .await
        .map_err(|source| RunError::Bind { addr: opts.metrics_addr, source })?;
    let bound = listener.local_addr().map_err(|source| RunError::Bind { addr: opts.metrics_addr, source })?;
    {
        let mut s = shutdown.clone();
        let m = metrics.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = s.wait_for(|v| *v).await;
            };
            if let Err(e) = m.serve(listener, stop).await {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        });
    }
    tracing::info!(addr = %bound, "metrics on /metrics, health on /healthz and /readyz");
    metrics.set_ready();

    let mut lock = opts.leader.as_ref().map(|l| {
        LeaseLock::new(
            Api::<Lease>::namespaced(client.clone(), &l.lease_namespace),
            &l.lease_name,
            &l.identity,
            l.lease_duration,
        )
    });
    if let Some(lock) = lock.as_mut() {
        tokio::select! {
            _ = lock.acquire() => {}
            _ = shutdown.wait_for(|v| *v) => return Ok(()),
        }
        metrics.leader.set(1);
    }

    let ns = opts.settings.namespace.as_deref();
    let owned = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let (streams_reader, streams_writer) = reflector::store();
    let (sinks_reader, sinks_writer) = reflector::store();
    let ctx = Context::new(client.clone(), opts.settings.clone(), metrics.clone());
    let cfg = ControllerConfig::default().concurrency(opts.settings.concurrency);
    let stop = {
        let s = shutdown.clone();
        move || {
            let mut s = s.clone();
            async move {
                let _ = s.wait_for(|v| *v).await;
            }
        }
    };

    let streams =
        Controller::for_stream(spec_changes(scoped_api::<StockStream>(&client, ns), streams_writer), streams_reader)
            .owns(scoped_api::<StatefulSet>(&client, ns), owned.clone())
            .owns(scoped_api::<ConfigMap>(&client, ns), owned.clone())
            .with_config(cfg.clone())
            .graceful_shutdown_on(stop());
    sample(&metrics, stockstream::KIND, streams.store(), |s: &StockStream| {
        s.status.as_ref().and_then(|st| st.observed_generation)
    });
    let sinks = Controller::for_stream(spec_changes(scoped_api::<S3Sink>(&client, ns), sinks_writer), sinks_reader)
        .owns(scoped_api::<Deployment>(&client, ns), owned.clone())
        .owns(scoped_api::<ConfigMap>(&client, ns), owned)
        .with_config(cfg.clone())
        .graceful_shutdown_on(stop());
    sample(&metrics, s3sink::KIND, sinks.store(), |s: &S3Sink| s.status.as_ref().and_then(|st| st.observed_generation));
    let alerts = Controller::new(scoped_api::<AlertSubscription>(&client, ns), watcher::Config::default())
        .with_config(cfg)
        .graceful_shutdown_on(stop());
    let alert_store = alerts.store();
    sample(&metrics, alertsubscription::KIND, alert_store.clone(), |s: &AlertSubscription| {
        s.status.as_ref().and_then(|st| st.observed_generation)
    });
    // A subscription waiting for its sink is reconciled when the sink appears or goes.
    let alerts = alerts.watches(scoped_api::<S3Sink>(&client, ns), watcher::Config::default(), move |sink: S3Sink| {
        let (name, ns) = (sink.name_any(), sink.namespace());
        alert_store
            .state()
            .into_iter()
            .filter(|a| a.namespace() == ns && a.spec.watch.sink_ref.as_deref() == Some(name.as_str()))
            .map(|a| ObjectRef::from_obj(a.as_ref()))
            .collect::<Vec<_>>()
    });

    let controllers = futures::future::join3(
        drain(stockstream::KIND, streams.run(stockstream::reconcile, error_policy, ctx.clone())),
        drain(s3sink::KIND, sinks.run(s3sink::reconcile, error_policy, ctx.clone())),
        drain(alertsubscription::KIND, alerts.run(alertsubscription::reconcile, error_policy, ctx.clone())),
    );
    tracing::info!(namespace = ns.unwrap_or("(all)"), "controllers running");
    let result = match lock.as_mut() {
        None => {
            controllers.await;
            Ok(())
        }
        Some(lock) => {
            let mut controllers = controllers.boxed();
            tokio::select! {
                _ = &mut controllers => Ok(()),
                _ = lock.keep() => Err(RunError::LostLeadership),
            }
        }
    };
    if let Some(lock) = lock.as_mut()
        && result.is_ok()
    {
        lock.release().await;
    }
    metrics.leader.set(0);
    result
}

/// The resources of `api` whose spec (generation) or finalizers changed — what a reconcile
/// acts on. Status-only updates, most of them the operator's own status writes, are filtered
/// out: reacting to them would only repeat a reconcile that already wrote that status. The
/// live figures are refreshed by the requeue after every reconcile; owned objects' changes
/// trigger reconciles through their own watches.
fn spec_changes<K>(
    api: kube::Api<K>,
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation.combine(predicates::finalizers), Default::default())
}

/// Registers gauges of a controller's cache: resources watched, and resources whose latest
/// generation has not been reconciled (the queue depth that matters to users).
fn sample<K>(metrics: &Metrics, kind: &'static str, store: Store<K>, observed: fn(&K) -> Option<i64>)
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    metrics.add_sampler(Box::new(move |m| {
        let all = store.state();
        let pending =
            all.iter().filter(|o| o.meta().generation.is_some() && observed(o) != o.meta().generation).count();
        m.resources.get_or_create(&Metrics::kind(kind)).set(all.len() as i64);
        m.queue_depth.get_or_create(&Metrics::kind(kind)).set(pending as i64);
    }));
}
