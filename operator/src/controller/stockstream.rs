//! `StockStream` → ConfigMap + producer StatefulSet + Kafka topic.
//!
//! The topic is created when missing and grown when the spec asks for more partitions; one
//! with more partitions than the spec is left alone and reported (`PartitionsCannotShrink`).
//! With `topicDeletionPolicy: delete` the resource carries the [`super::FINALIZER`]: on deletion
//! the producers are stopped first, then the topic is deleted.

use super::{Context, Error, finalize, instrumented, report_problems, status_conditions, workload_state, write_status};
use crate::apply::Outcome;
use crate::conditions::{Observed, Problem};
use crate::kafka::{self, TopicPlan};
use crate::render::{self, Component};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use ticklake_api::crd::{DeletionPolicy, StockStream, StockStreamStatus};
use ticklake_api::report::Totals;
use ticklake_bus::Bus;

pub const KIND: &str = "StockStream";

pub async fn reconcile(ss: Arc<StockStream>, ctx: Arc<Context>) -> Result<Action, Error> {
    instrumented(KIND, ss.clone(), &ctx, reconcile_inner(ss.clone(), &ctx)).await
}

async fn reconcile_inner(ss: Arc<StockStream>, ctx: &Context) -> Result<Action, Error> {
    let ns = ss.namespace().unwrap_or_default();
    let api: Api<StockStream> = Api::namespaced(ctx.client.clone(), &ns);
    let needs_finalizer = ss.spec.topic_deletion_policy == DeletionPolicy::Delete;
    if let Some(done) = finalize(&api, ss.as_ref(), needs_finalizer, cleanup(&ss, ctx)).await? {
        return Ok(done);
    }
    apply(&api, &ss, ctx).await
}

/// Stops the producers, then deletes the topic when the policy says so.
async fn cleanup(ss: &StockStream, ctx: &Context) -> Result<(), Error> {
    let ns = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    let sts: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    match sts.delete(&render::workload_name(&name, Component::Producer), &DeleteParams::background()).await {
        Ok(_) => tracing::info!(%ns, %name, "producers stopped before deleting the topic"),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    if ss.spec.topic_deletion_policy == DeletionPolicy::Delete {
        let (bus, cluster) = ctx.kafka_admin(&ns, &ss.spec.kafka).await?;
        ctx.admins.forget(&cluster, &ss.spec.topic);
        let deleted = bus.delete_topic(&ss.spec.topic).await.map_err(|e| Error::Kafka(e.to_string()))?;
        ctx.metrics.wrote(KIND, "topic");
        if deleted {
            ctx.event(
                ss,
                false,
                "TopicDeleted",
                format!("topic {} deleted (topicDeletionPolicy: delete)", ss.spec.topic),
            )
            .await;
        }
    }
    Ok(())
}

async fn apply(api: &Api<StockStream>, ss: &Arc<StockStream>, ctx: &Context) -> Result<Action, Error> {
    let ns = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    let old_status = ss.status.clone().unwrap_or_default();
    let mut observed = Observed { generation: ss.meta().generation, ..Default::default() };
    let mut status = StockStreamStatus { observed_generation: ss.meta().generation, ..Default::default() };
    let mut failure: Option<Error> = None;

    match render::stockstream(ss, &ctx.settings.render) {
        Err(e) => observed.problems.push(Problem::new(e.reason(), e.to_string())),
        Ok(objects) => {
            // Kubernetes objects.
            ctx.ensure_owned(ss.as_ref(), &ns, &objects.config_map).await?;
            let sts_name = render::workload_name(&name, Component::Producer);
            let (live, outcome) = ctx.ensure_owned(ss.as_ref(), &ns, &objects.stateful_set).await?;
            let live_status = live.as_ref().and_then(|l| l.status.clone()).unwrap_or_default();
            observed.workload = Some(workload_state(
                format!("StatefulSet/{sts_name}"),
                live.as_ref().and_then(|l| l.metadata.generation),
                ss.spec.replicas.max(0),
                live_status.observed_generation,
                live_status.ready_replicas,
                live_status.updated_replicas,
                outcome != Outcome::Unchanged,
            ));
            status.ready_replicas = Some(live_status.ready_replicas.unwrap_or(0));

            // The topic.
            match topic(ss, ctx).await {
                Ok((partitions, problem)) => {
                    status.topic_partitions = Some(partitions);
                    observed.problems.extend(problem);
                }
                Err(e) => {
                    observed.problems.push(Problem::new(e.reason(), e.to_string()));
                    status.topic_partitions = old_status.topic_partitions;
                    failure = Some(e);
                }
            }

            // The workers' own figures.
            let reports = ctx.worker_reports(&ns, &name, Component::Producer, live_status.ready_replicas).await?;
            if !reports.is_empty() {
                let t = Totals::of(&reports);
                status.messages_per_second = Some((t.messages_per_second * 10.0).round() / 10.0);
                status.produced_total = Some(t.total as i64);
            }
        }
    }

    report_problems(ctx, ss.as_ref(), &old_status.conditions, &observed.problems).await;
    status.conditions = status_conditions(&old_status.conditions, &observed);
    let old = serde_json::to_value(&old_status).unwrap_or(json!({}));
    write_status(api, ss.as_ref(), &old, serde_json::to_value(&status).unwrap_or(json!({})), ctx).await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(Action::requeue(super::refresh_after(ctx, status.ready_replicas))),
    }
}

/// Creates or grows the topic; the partitions it has and a problem when it has more than asked.
async fn topic(ss: &StockStream, ctx: &Context) -> Result<(i32, Option<Problem>), Error> {
    let (bus, cluster) = ctx.kafka_admin(&ss.namespace().unwrap_or_default(), &ss.spec.kafka).await?;
    let t = &ss.spec.topic;
    if ctx.admins.recently_verified(&cluster, t) == Some(ss.spec.partitions) {
        return Ok((ss.spec.partitions, None));
    }
    let kafka_err = |e: ticklake_bus::BusError| Error::Kafka(format!("topic {t}: {e}"));
    let have = bus.topic_partitions(t).await.map_err(kafka_err)?;
    let result = topic_plan(ss, ctx, &bus, have).await;
    match &result {
        Ok((partitions, _)) => ctx.admins.verified(&cluster, t, *partitions),
        Err(_) => ctx.admins.forget(&cluster, t),
    }
    result
}

async fn topic_plan(
    ss: &StockStream,
    ctx: &Context,
    bus: &ticklake_bus::kafka::KafkaBus,
    have: Option<i32>,
) -> Result<(i32, Option<Problem>), Error> {
    let t = &ss.spec.topic;
    let kafka_err = |e: ticklake_bus::BusError| Error::Kafka(format!("topic {t}: {e}"));
    match kafka::plan(have, ss.spec.partitions) {
        TopicPlan::AsSpecified { partitions } => Ok((partitions, None)),
        TopicPlan::Create { partitions } => {
            let info = bus.ensure_topic(t, partitions, ss.spec.replication_factor).await.map_err(kafka_err)?;
            ctx.metrics.wrote(KIND, "topic");
            if info.created {
                ctx.event(
                    ss,
                    false,
                    "TopicCreated",
                    format!(
                        "topic {t} created with {} partitions, replication factor {}",
                        info.partitions, ss.spec.replication_factor
                    ),
                )
                .await;
            }
            Ok((info.partitions, None))
        }
        TopicPlan::Grow { from, to } => {
            bus.grow_partitions(t, to).await.map_err(kafka_err)?;
            ctx.metrics.wrote(KIND, "topic");
            ctx.event(ss, false, "TopicResized", format!("topic {t} grown from {from} to {to} partitions")).await;
            Ok((to, None))
        }
        TopicPlan::LargerThanSpec { have, want } => Ok((
            have,
            Some(Problem::new(
                "PartitionsCannotShrink",
                format!(
                    "topic {t} has {have} partitions, the spec asks for {want}: Kafka cannot remove partitions; set spec.partitions to {have}"
                ),
            )),
        )),
    }
}
