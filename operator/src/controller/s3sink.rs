//! `S3Sink` → ConfigMap + sink Deployment (one Kafka consumer group), and on AWS the Glue
//! database, crawler or projection table and the Athena workgroup with its named queries
//! ([`super::cloud`]).
//!
//! Credentials are only referenced: a Secret for S3 keys, a ServiceAccount for IRSA, the
//! `kafka.secretRef` Secret for SASL. The sink reads its topic but does not create it (its
//! `StockStream` does); a missing topic is reported, `Ready=False` with reason `TopicMissing`.
//! With `glue` or `athena` the sink owns AWS resources, so it gets a finalizer that deletes
//! them (never the data); removing `glue` or `athena` from the spec deletes theirs.

use super::{
    Context, Error, cloud, finalize, instrumented, report_problems, status_conditions, workload_state, write_status,
};
use crate::apply::Outcome;
use crate::conditions::{Observed, Problem};
use crate::render::{self, Component};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use ticklake_api::crd::{S3Sink, S3SinkStatus};
use ticklake_api::report::Totals;

pub const KIND: &str = "S3Sink";

pub async fn reconcile(sink: Arc<S3Sink>, ctx: Arc<Context>) -> Result<Action, Error> {
    instrumented(KIND, sink.clone(), &ctx, reconcile_inner(sink.clone(), &ctx)).await
}

async fn reconcile_inner(sink: Arc<S3Sink>, ctx: &Context) -> Result<Action, Error> {
    let ns = sink.namespace().unwrap_or_default();
    let api: Api<S3Sink> = Api::namespaced(ctx.client.clone(), &ns);
    let old_status = sink.status.clone().unwrap_or_default();
    let owns_aws = (cloud::sink_wants_aws(&sink) && sink.spec.endpoint.is_none())
        || old_status.catalog.is_some()
        || old_status.athena.is_some();
    if let Some(done) = finalize(&api, sink.as_ref(), owns_aws, cloud::sink_cleanup(&sink, ctx)).await? {
        return Ok(done);
    }
    let name = sink.name_any();
    let mut observed = Observed { generation: sink.meta().generation, ..Default::default() };
    let mut status = S3SinkStatus { observed_generation: sink.meta().generation, ..Default::default() };

    match render::s3sink(&sink, &ctx.settings.render) {
        Err(e) => observed.problems.push(Problem::new(e.reason(), e.to_string())),
        Ok(objects) => {
            ctx.ensure_owned(sink.as_ref(), &ns, &objects.config_map).await?;
            let dep_name = render::workload_name(&name, Component::Sink);
            let (live, outcome) = ctx.ensure_owned(sink.as_ref(), &ns, &objects.deployment).await?;
            let live_status = live.as_ref().and_then(|l| l.status.clone()).unwrap_or_default();
            observed.workload = Some(workload_state(
                format!("Deployment/{dep_name}"),
                live.as_ref().and_then(|l| l.metadata.generation),
                sink.spec.replicas.max(0),
                live_status.observed_generation,
                live_status.ready_replicas,
                live_status.updated_replicas,
                outcome != Outcome::Unchanged,
            ));
            status.ready_replicas = Some(live_status.ready_replicas.unwrap_or(0));

            // The topic must exist for the sink to land anything.
            match topic_exists(&sink, ctx).await {
                Ok(true) => {}
                Ok(false) => {
                    observed.not_ready = Some(Problem::new(
                        "TopicMissing",
                        format!(
                            "topic {} does not exist yet (the StockStream producing it creates it)",
                            sink.spec.topic
                        ),
                    ))
                }
                Err(e) => observed.problems.push(Problem::new(e.reason(), e.to_string())),
            }

            let reports = ctx.worker_reports(&ns, &name, Component::Sink, live_status.ready_replicas).await?;
            if !reports.is_empty() {
                let t = Totals::of(&reports);
                status.messages_per_second = Some((t.messages_per_second * 10.0).round() / 10.0);
                status.consumer_lag = t.consumer_lag;
                status.dead_letters = t.dead_letters.map(|d| d as i64);
                status.objects_written = t.objects.map(|o| o as i64);
                if let Some((key, at_ms)) = t.last_object {
                    status.last_object_key = Some(key);
                    status.last_object_time = k8s_openapi::jiff::Timestamp::from_millisecond(at_ms)
                        .ok()
                        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                }
            } else {
                // Keep the last known object: it is still the last one written.
                status.last_object_key = old_status.last_object_key.clone();
                status.last_object_time = old_status.last_object_time.clone();
            }
        }
    }

    // Glue and Athena: the last known state stays in status while AWS cannot be asked.
    status.catalog = old_status.catalog.clone();
    status.athena = old_status.athena.clone();
    cloud::sink_removed_parts(&sink, ctx, &mut status.catalog, &mut status.athena).await?;
    let aws = cloud::sink(&sink, ctx, &mut status.catalog, &mut status.athena).await;
    observed.problems.extend(aws.problems);

    report_problems(ctx, sink.as_ref(), &old_status.conditions, &observed.problems).await;
    let kafka_failed = observed.problems.iter().any(|p| p.reason == "KafkaUnavailable");
    status.conditions = status_conditions(&old_status.conditions, &observed);
    let old = serde_json::to_value(&old_status).unwrap_or(json!({}));
    write_status(&api, sink.as_ref(), &old, serde_json::to_value(&status).unwrap_or(json!({})), ctx).await?;
    if let Some(e) = aws.retry {
        return Err(Error::Aws(e));
    }
    if kafka_failed {
        // Retried with backoff; the status above already says why.
        return Err(Error::Kafka(format!("topic {} unreachable", sink.spec.topic)));
    }
    Ok(Action::requeue(super::refresh_after(ctx, status.ready_replicas)))
}

async fn topic_exists(sink: &S3Sink, ctx: &Context) -> Result<bool, Error> {
    let (bus, cluster) = ctx.kafka_admin(&sink.namespace().unwrap_or_default(), &sink.spec.kafka).await?;
    if ctx.admins.recently_verified(&cluster, &sink.spec.topic).is_some() {
        return Ok(true);
    }
    let have = bus
        .topic_partitions(&sink.spec.topic)
        .await
        .map_err(|e| Error::Kafka(format!("topic {}: {e}", sink.spec.topic)))?;
    if let Some(p) = have {
        ctx.admins.verified(&cluster, &sink.spec.topic, p);
    }
    Ok(have.is_some())
}
