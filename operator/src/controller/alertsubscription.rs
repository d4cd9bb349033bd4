//! `AlertSubscription` → an SNS topic with one subscription per endpoint, the watched bucket's
//! notification rule, and on the `Notifier` route an SQS queue plus the notifier worker that
//! turns S3 events into readable messages and digests (see [`super::cloud`] and
//! `ticklake_aws::sns::route`).
//!
//! What it watches: an `S3Sink` by name (its bucket and prefix, objects of its format) or a
//! bucket with a prefix and suffix. Data on an S3-compatible store (a sink with its own
//! `endpoint`) cannot notify SNS or SQS: that is reported, and `ticklake local up` delivers such
//! subscriptions with its own notifier. The finalizer removes the rule, the queue and the topic.

use super::cloud::{self, Watched};
use super::{Context, Error, finalize, instrumented, report_problems, status_conditions, workload_state, write_status};
use crate::apply::Outcome;
use crate::conditions::{Observed, Problem};
use crate::render::{self, Component, NotifierWiring};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use ticklake_api::crd::{AlertSubscription, AlertSubscriptionStatus, EndpointStatus, S3Sink, SinkFormat};
use ticklake_aws::sns::{self, Route};

pub const KIND: &str = "AlertSubscription";

pub async fn reconcile(sub: Arc<AlertSubscription>, ctx: Arc<Context>) -> Result<Action, Error> {
    instrumented(KIND, sub.clone(), &ctx, reconcile_inner(sub.clone(), &ctx)).await
}

/// The watched bucket, key prefix and suffix; `Err` when the referenced sink is missing.
fn watched(sub: &AlertSubscription, sink: Option<&S3Sink>) -> Result<Watched, Problem> {
    let w = &sub.spec.watch;
    match (&w.sink_ref, &w.bucket) {
        (Some(name), _) => {
            let Some(sink) = sink else {
                return Err(Problem::new(
                    "SinkNotFound",
                    format!("S3Sink {name} does not exist in namespace {}", sub.namespace().unwrap_or_default()),
                ));
            };
            // Only the sink's data objects: not its claims or dead letters.
            let suffix = if w.suffix.is_empty() {
                match sink.spec.format {
                    SinkFormat::Parquet => ".parquet".to_string(),
                    SinkFormat::JsonLines => ".jsonl".to_string(),
                }
            } else {
                w.suffix.clone()
            };
            Ok(Watched {
                bucket: sink.spec.bucket.clone(),
                prefix: ticklake_aws::s3notify::key_prefix(&sink.spec.prefix, &w.prefix),
                suffix,
                endpoint: sink.spec.endpoint.clone(),
            })
        }
        (None, Some(bucket)) => {
            Ok(Watched { bucket: bucket.clone(), prefix: w.prefix.clone(), suffix: w.suffix.clone(), endpoint: None })
        }
        (None, None) => Err(Problem::new("InvalidSpec", "watch needs sinkRef or bucket")),
    }
}

async fn reconcile_inner(sub: Arc<AlertSubscription>, ctx: &Context) -> Result<Action, Error> {
    let ns = sub.namespace().unwrap_or_default();
    let name = sub.name_any();
    let api: Api<AlertSubscription> = Api::namespaced(ctx.client.clone(), &ns);
    let old_status = sub.status.clone().unwrap_or_default();
    let sink = match &sub.spec.watch.sink_ref {
        Some(s) => Api::<S3Sink>::namespaced(ctx.client.clone(), &ns).get_opt(s).await?,
        None => None,
    };
    let watched = watched(&sub, sink.as_ref());
    // AWS resources exist once a topic was made; on AWS S3 they will be.
    let owns_aws = old_status.topic_arn.is_some() || watched.as_ref().is_ok_and(|w| w.endpoint.is_none());
    let bucket = watched.as_ref().ok().map(|w| w.bucket.clone());
    if let Some(done) =
        finalize(&api, sub.as_ref(), owns_aws, cloud::alert_cleanup(&sub, ctx, bucket.as_deref())).await?
    {
        return Ok(done);
    }

    let mut observed = Observed { generation: sub.meta().generation, ..Default::default() };
    let mut status = AlertSubscriptionStatus {
        observed_generation: sub.meta().generation,
        topic_arn: old_status.topic_arn.clone(),
        endpoints: old_status.endpoints.clone(),
        confirmed_endpoints: old_status.confirmed_endpoints,
        ..Default::default()
    };
    let mut retry = None;
    match &watched {
        Err(p) => observed.problems.push(p.clone()),
        Ok(w) => {
            let seen = cloud::alert(&sub, ctx, w).await;
            observed.problems.extend(seen.outcome.problems);
            retry = seen.outcome.retry;
            if let Some(arn) = seen.topic_arn {
                status.topic_arn = Some(arn);
                status.endpoints = seen
                    .endpoints
                    .iter()
                    .map(|(address, state)| EndpointStatus { address: address.clone(), state: state.clone() })
                    .collect();
                status.confirmed_endpoints =
                    Some(seen.endpoints.iter().filter(|(_, s)| s == sns::STATE_CONFIRMED).count() as i32);
            }
            status.route = seen.route.map(|r| format!("{r:?}"));
            status.queue_url = seen.queue_url.clone();
            if let (Some(Route::Notifier), Some(queue_url), Some(topic_arn)) =
                (seen.route, seen.queue_url, status.topic_arn.clone())
            {
                let wiring = NotifierWiring {
                    queue_url,
                    topic_arn,
                    aws_region: ctx.settings.aws.region.clone(),
                    aws_endpoint: ctx.settings.aws.endpoint.clone(),
                };
                match render::notifier(&sub, sink.as_ref(), &wiring, &ctx.settings.render) {
                    Err(e) => observed.problems.push(Problem::new(e.reason(), e.to_string())),
                    Ok(objects) => {
                        ctx.ensure_owned(sub.as_ref(), &ns, &objects.config_map).await?;
                        let dep = render::workload_name(&name, Component::Notifier);
                        let (live, outcome) = ctx.ensure_owned(sub.as_ref(), &ns, &objects.deployment).await?;
                        let live_status = live.as_ref().and_then(|l| l.status.clone()).unwrap_or_default();
                        observed.workload = Some(workload_state(
                            format!("Deployment/{dep}"),
                            live.as_ref().and_then(|l| l.metadata.generation),
                            1,
                            live_status.observed_generation,
                            live_status.ready_replicas,
                            live_status.updated_replicas,
                            outcome != Outcome::Unchanged,
                        ));
                    }
                }
            }
            let pending: Vec<&str> =
                seen.endpoints.iter().filter(|(_, s)| s == sns::STATE_PENDING).map(|(a, _)| a.as_str()).collect();
            if !pending.is_empty() && observed.problems.is_empty() && observed.workload.is_none() {
                // Ready (messages flow), but say who has not confirmed yet.
                tracing::debug!(subscription = %name, ?pending, "endpoints pending confirmation");
            }
        }
    }

    report_problems(ctx, sub.as_ref(), &old_status.conditions, &observed.problems).await;
    status.conditions = status_conditions(&old_status.conditions, &observed);
    let old = serde_json::to_value(&old_status).unwrap_or(json!({}));
    write_status(&api, sub.as_ref(), &old, serde_json::to_value(&status).unwrap_or(json!({})), ctx).await?;
    if let Some(e) = retry {
        return Err(Error::Aws(e));
    }
    Ok(Action::requeue(ctx.settings.resync))
}
