//! `AlertSubscription`: validated and reported; delivery in a cluster is not wired yet.
//!
//! The local runner delivers subscriptions itself (its own email and webhook notifier). In a
//! cluster, delivery goes through Amazon SNS, which the AWS reconcilers add. Until then the
//! operator checks what it can — the referenced `S3Sink` exists — and says plainly in
//! `Ready=False` why nothing is delivered, instead of pretending.

use super::{Context, Error, instrumented, status_conditions, write_status};
use crate::conditions::{Observed, Problem};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use ticklake_api::crd::{AlertSubscription, S3Sink};

pub const KIND: &str = "AlertSubscription";

pub async fn reconcile(sub: Arc<AlertSubscription>, ctx: Arc<Context>) -> Result<Action, Error> {
    instrumented(KIND, sub.clone(), &ctx, reconcile_inner(sub.clone(), &ctx)).await
}

async fn reconcile_inner(sub: Arc<AlertSubscription>, ctx: &Context) -> Result<Action, Error> {
    if sub.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = sub.namespace().unwrap_or_default();
    let api: Api<AlertSubscription> = Api::namespaced(ctx.client.clone(), &ns);
    // Read as JSON: only the fields this reconciler owns are compared and written.
    let whole = serde_json::to_value(sub.as_ref()).unwrap_or(json!({}));
    let old_status = whole.get("status").cloned().unwrap_or(json!({}));
    let old_conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> =
        serde_json::from_value(old_status.get("conditions").cloned().unwrap_or(json!([]))).unwrap_or_default();
    let mut observed = Observed { generation: sub.meta().generation, ..Default::default() };
    let sink_ref = whole.pointer("/spec/watch/sinkRef").and_then(|v| v.as_str()).map(str::to_string);
    let reason = match &sink_ref {
        Some(sink) => match Api::<S3Sink>::namespaced(ctx.client.clone(), &ns).get_opt(sink).await? {
            None => Problem::new("SinkNotFound", format!("S3Sink {sink} does not exist in namespace {ns}")),
            Some(_) => not_delivering(),
        },
        None => not_delivering(),
    };
    let changed = old_conditions.iter().all(|c| c.reason != reason.reason);
    observed.not_ready = Some(reason.clone());
    let conditions = status_conditions(&old_conditions, &observed);
    let mut status = serde_json::Map::new();
    status.insert("observedGeneration".into(), json!(sub.meta().generation));
    status.insert("conditions".into(), serde_json::to_value(conditions).unwrap_or(json!([])));
    // Keep fields other writers (the local runner's notifier, the SNS reconciler) report.
    let mut merged = old_status.as_object().cloned().unwrap_or_default();
    merged.extend(status);
    if write_status(&api, sub.as_ref(), &old_status, serde_json::Value::Object(merged), ctx).await? && changed {
        ctx.event(sub.as_ref(), true, &reason.reason, reason.message).await;
    }
    Ok(Action::requeue(ctx.settings.resync))
}

fn not_delivering() -> Problem {
    Problem::new(
        "DeliveryNotAvailable",
        "in a cluster, alerts are delivered through Amazon SNS, which this operator version does not configure yet; \
         `ticklake local up` delivers this subscription with its own notifier",
    )
}
