//! The AWS side of `S3Sink` and `AlertSubscription`: Glue, Athena, SNS, SQS and S3 bucket
//! notifications, through `ticklake-aws` (which holds the desired state, the reconcile calls
//! and the ownership rules). This module decides what is wanted for a resource, runs the
//! `ensure`/`delete` calls, and turns what they saw into status fields, problems and Events.
//!
//! Rules:
//! * AWS resources exist only for data on AWS S3: a sink with its own `endpoint` (MinIO, …)
//!   cannot be crawled by Glue nor notify SNS — reported, not attempted.
//! * Every failure becomes a problem in status with the AWS error's reason; throttling and
//!   unavailability are retried with the per-object backoff (the SDK's own retries first).
//! * The finalizer deletes what the resource created (tagged as its own); data is never deleted.

use super::{Context, Error};
use crate::conditions::Problem;
use kube::{Resource, ResourceExt};
use ticklake_api::crd::{AlertSubscription, AthenaStatus, CatalogMode, CatalogStatus, S3Sink};
use ticklake_aws::{AwsError, Clients, Owner, athena, glue, s3notify, sns, sqs};

/// What the AWS part of a reconcile produced besides status fields.
#[derive(Default)]
pub struct CloudOutcome {
    pub problems: Vec<Problem>,
    /// A transient AWS failure: retry with backoff once the status is written.
    pub retry: Option<AwsError>,
}

impl CloudOutcome {
    fn failed(&mut self, e: AwsError) {
        let p = Problem::new(e.reason(), e.to_string());
        if e.is_transient() && self.retry.is_none() {
            self.retry = Some(e);
        }
        self.problems.push(p);
    }
}

fn owner<K: Resource<DynamicType = ()>>(obj: &K) -> Owner {
    Owner::new(&K::kind(&()), obj.meta().namespace.as_deref().unwrap_or(""), obj.meta().name.as_deref().unwrap_or(""))
}

/// Whether a sink has AWS resources to own (and therefore a finalizer).
pub fn sink_wants_aws(sink: &S3Sink) -> bool {
    sink.spec.glue.is_some() || sink.spec.athena.is_some()
}

/// Id prefix of the bucket notification rules a resource owns.
fn rule_prefix(o: &Owner) -> String {
    s3notify::id_prefix(o)
}

async fn announce<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, changes: &[String]) {
    for c in changes {
        ctx.metrics.wrote(&K::kind(&()), "aws");
        ctx.event(obj, false, "AwsResourceChanged", c.clone()).await;
    }
}

/// Glue and Athena for a sink: ensures them and fills `catalog` / `athena` of the status.
pub async fn sink(
    sink: &S3Sink,
    ctx: &Context,
    catalog: &mut Option<CatalogStatus>,
    athena_status: &mut Option<AthenaStatus>,
) -> CloudOutcome {
    let mut out = CloudOutcome::default();
    if !sink_wants_aws(sink) {
        return out;
    }
    if let Some(endpoint) = &sink.spec.endpoint {
        out.problems.push(Problem::new(
            "CatalogNeedsAwsS3",
            format!(
                "Glue and Athena read AWS S3; this sink writes to {endpoint}. Remove spec.glue/spec.athena, \
                 or use the local runner's catalog for S3-compatible stores"
            ),
        ));
        return out;
    }
    let clients = ctx.aws().await;
    let o = owner(sink);
    let mut table = None;
    if let Some(g) = &sink.spec.glue {
        let role = g.crawler_role.clone().or_else(|| ctx.settings.glue_crawler_role.clone());
        let needs_role = g.mode != CatalogMode::Projection;
        if needs_role && role.is_none() {
            out.problems.push(Problem::new(
                "CrawlerRoleMissing",
                "spec.glue.crawlerRole is not set and the operator has no --glue-crawler-role: a crawler needs an IAM role",
            ));
        } else {
            let mut queue_arn = None;
            if g.mode == CatalogMode::Event {
                match event_queue(sink, &clients, &o).await {
                    Ok((arn, changes)) => {
                        announce(ctx, sink, &changes).await;
                        queue_arn = Some(arn);
                    }
                    Err(e) => out.failed(e),
                }
            }
            if g.mode != CatalogMode::Event || queue_arn.is_some() {
                if let Some(d) = glue::desired(&sink.spec, &o, role.as_deref().unwrap_or(""), queue_arn.as_deref()) {
                    for w in &d.warnings {
                        if !catalog.as_ref().is_some_and(|c| c.table == format!("{}.{}", d.database, d.table)) {
                            ctx.event(sink, true, "CatalogWarning", w.clone()).await;
                        }
                    }
                    match glue::ensure(&clients, &d, &o).await {
                        Ok(seen) => {
                            announce(ctx, sink, &seen.changes).await;
                            table = Some((seen.database.clone(), seen.table.clone()));
                            *catalog = Some(CatalogStatus {
                                table: format!("{}.{}", seen.database, seen.table),
                                crawler: seen.crawler.clone(),
                                crawler_state: seen.crawler_state.clone(),
                                last_crawl: seen.last_crawl_status.clone(),
                                last_crawl_error: seen.last_crawl_error.clone(),
                                last_crawl_time: seen.last_crawl_start.clone(),
                            });
                        }
                        Err(e) => out.failed(e),
                    }
                }
            }
            if g.mode != CatalogMode::Event {
                // A sink that left event mode: its queue and rule go.
                if let Err(e) = drop_event_queue(sink, &clients, &o).await {
                    out.failed(e);
                }
            }
        }
    }
    if sink.spec.athena.is_some() {
        let (database, table) = table.clone().unwrap_or_default();
        if let Some(d) = athena::desired(&sink.spec, &database, &table) {
            let account = match ctx.aws_account().await {
                Ok(a) => a,
                Err(Error::Aws(e)) => {
                    out.failed(e);
                    return out;
                }
                Err(e) => {
                    out.problems.push(Problem::new(e.reason(), e.to_string()));
                    return out;
                }
            };
            match athena::ensure(&clients, &d, &o, &account).await {
                Ok(seen) => {
                    announce(ctx, sink, &seen.changes).await;
                    *athena_status = Some(AthenaStatus {
                        workgroup: seen.workgroup.clone(),
                        named_queries: seen.named_queries.keys().cloned().collect(),
                    });
                }
                Err(e) => out.failed(e),
            }
        }
    }
    out
}

/// What the spec no longer asks for but status says exists: `glue` or `athena` removed from
/// the spec. Deleted (if ours) and cleared from status.
pub async fn sink_removed_parts(
    sink: &S3Sink,
    ctx: &Context,
    catalog: &mut Option<CatalogStatus>,
    athena_status: &mut Option<AthenaStatus>,
) -> Result<(), Error> {
    let o = owner(sink);
    if sink.spec.glue.is_none() {
        if let Some(c) = catalog.take() {
            let clients = ctx.aws().await;
            let (database, table) = c.table.split_once('.').unwrap_or((c.table.as_str(), ""));
            let mut spec = sink.spec.clone();
            spec.glue = Some(ticklake_api::crd::GlueSpec {
                database: database.to_string(),
                table: Some(table.to_string()),
                mode: CatalogMode::Crawler,
                schedule: None,
                schema_change_policy: Default::default(),
                crawler_role: None,
            });
            if let Some(d) = glue::desired(&spec, &o, "", None) {
                let changes = glue::delete(&clients, &d, &o).await?;
                announce(ctx, sink, &changes).await;
            }
            drop_event_queue(sink, &clients, &o).await?;
        }
    }
    if sink.spec.athena.is_none() {
        if let Some(a) = athena_status.take() {
            let clients = ctx.aws().await;
            let mut spec = sink.spec.clone();
            spec.athena = Some(ticklake_api::crd::AthenaSpec {
                workgroup: a.workgroup.clone(),
                result_location: "s3://unused/".to_string(),
                bytes_scanned_cutoff_per_query: None,
                encryption: Default::default(),
                kms_key: None,
            });
            if let Some(d) = athena::desired(&spec, "", "") {
                let account = ctx.aws_account().await?;
                let changes = athena::delete(&clients, &d, &o, &account).await?;
                announce(ctx, sink, &changes).await;
            }
        }
    }
    Ok(())
}

/// Event mode: an SQS queue the bucket notifies of new objects, which the crawler reads.
async fn event_queue(sink: &S3Sink, clients: &Clients, o: &Owner) -> Result<(String, Vec<String>), AwsError> {
    let d = sqs::desired(o, &sink.spec.bucket);
    let q = sqs::ensure(clients, &d, o).await?;
    let rules = [s3notify::Rule {
        id: format!("{}/crawler", rule_prefix(o)),
        target: s3notify::Target::Queue(q.arn.clone()),
        prefix: s3notify::key_prefix(&sink.spec.prefix, ""),
        suffix: ".parquet".to_string(),
    }];
    let mut changes = q.changes.clone();
    if s3notify::ensure(&clients.s3, &sink.spec.bucket, &rules, &rule_prefix(o)).await? {
        changes.push(format!("bucket {} notifies queue {} of new objects", sink.spec.bucket, q.url));
    }
    Ok((q.arn, changes))
}

async fn drop_event_queue(sink: &S3Sink, clients: &Clients, o: &Owner) -> Result<(), AwsError> {
    match s3notify::remove(&clients.s3, &sink.spec.bucket, &rule_prefix(o)).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    sqs::delete(clients, o).await.map(|_| ())
}

/// The finalizer's cleanup of a sink: crawler, table, database (if ours and empty), workgroup
/// with its named queries, the event queue and its bucket rule. Data stays.
pub async fn sink_cleanup(sink: &S3Sink, ctx: &Context) -> Result<(), Error> {
    if sink.spec.endpoint.is_some() {
        return Ok(()); // nothing was created
    }
    let clients = ctx.aws().await;
    let o = owner(sink);
    let mut changes = Vec::new();
    if sink.spec.athena.is_some() {
        let (database, table) = sink
            .spec
            .glue
            .as_ref()
            .and_then(|_| glue::desired(&sink.spec, &o, "", None))
            .map(|d| (d.database, d.table))
            .unwrap_or_default();
        if let Some(d) = athena::desired(&sink.spec, &database, &table) {
            let account = ctx.aws_account().await?;
            changes.extend(athena::delete(&clients, &d, &o, &account).await.map_err(Error::Aws)?);
        }
    }
    if sink.spec.glue.is_some() {
        if let Some(d) = glue::desired(&sink.spec, &o, "", None) {
            changes.extend(glue::delete(&clients, &d, &o).await.map_err(Error::Aws)?);
        }
    }
    drop_event_queue(sink, &clients, &o).await.map_err(Error::Aws)?;
    announce(ctx, sink, &changes).await;
    Ok(())
}

/// Where an AlertSubscription's events come from: bucket and key prefix.
pub struct Watched {
    pub bucket: String,
    pub prefix: String,
    pub suffix: String,
    /// The sink writes to an S3-compatible endpoint, not AWS S3.
    pub endpoint: Option<String>,
}

/// What the SNS side of an AlertSubscription looks like after a reconcile.
#[derive(Default)]
pub struct AlertObserved {
    pub topic_arn: Option<String>,
    pub route: Option<sns::Route>,
    pub queue_url: Option<String>,
    pub endpoints: Vec<(String, String)>,
    pub outcome: CloudOutcome,
}

/// SNS topic and subscriptions, the SQS queue of the notifier route, and the bucket rule.
pub async fn alert(sub: &AlertSubscription, ctx: &Context, watched: &Watched) -> AlertObserved {
    let mut seen = AlertObserved::default();
    if let Some(endpoint) = &watched.endpoint {
        seen.outcome.problems.push(Problem::new(
            "BucketNotificationsUnsupported",
            format!(
                "the watched data is on {endpoint}, not AWS S3: S3-compatible stores do not notify SNS or SQS; \
                 `ticklake local up` delivers this subscription with its own notifier"
            ),
        ));
        return seen;
    }
    let clients = ctx.aws().await;
    let o = owner(sub);
    let route = sns::route(&sub.spec);
    seen.route = Some(route);
    let topic = match sns::ensure(&clients, &sns::desired(&sub.spec, &o, &watched.bucket), &o).await {
        Ok(t) => t,
        Err(e) => {
            seen.outcome.failed(e);
            return seen;
        }
    };
    announce(ctx, sub, &topic.changes).await;
    seen.topic_arn = Some(topic.arn.clone());
    seen.endpoints = topic.endpoints.iter().map(|e| (e.address.clone(), e.state.clone())).collect();
    let target = match route {
        sns::Route::Direct => {
            // A subscription that changed route leaves its queue behind: remove it.
            if let Err(e) = sqs::delete(&clients, &o).await {
                seen.outcome.failed(e);
            }
            s3notify::Target::Topic(topic.arn.clone())
        }
        sns::Route::Notifier => match sqs::ensure(&clients, &sqs::desired(&o, &watched.bucket), &o).await {
            Ok(q) => {
                announce(ctx, sub, &q.changes).await;
                seen.queue_url = Some(q.url.clone());
                s3notify::Target::Queue(q.arn)
            }
            Err(e) => {
                seen.outcome.failed(e);
                return seen;
            }
        },
    };
    let rules = [s3notify::Rule {
        id: rule_prefix(&o),
        target,
        prefix: watched.prefix.clone(),
        suffix: watched.suffix.clone(),
    }];
    match s3notify::ensure(&clients.s3, &watched.bucket, &rules, &rule_prefix(&o)).await {
        Ok(true) => {
            announce(ctx, sub, &[format!("bucket {} notifies {:?} route of new objects", watched.bucket, route)]).await
        }
        Ok(false) => {}
        Err(e) => seen.outcome.failed(e),
    }
    seen
}

/// The finalizer's cleanup of an AlertSubscription: the bucket rule, the queue, the topic (its
/// subscriptions go with it).
pub async fn alert_cleanup(sub: &AlertSubscription, ctx: &Context, bucket: Option<&str>) -> Result<(), Error> {
    let clients = ctx.aws().await;
    let o = owner(sub);
    let mut changes = Vec::new();
    // The sink it watched may be gone already: the topic's policy still names the bucket.
    let from_topic = match bucket {
        Some(_) => None,
        None => sns::watched_bucket(&clients, &o).await.map_err(Error::Aws)?,
    };
    if let Some(bucket) = bucket.or(from_topic.as_deref()) {
        match s3notify::remove(&clients.s3, bucket, &rule_prefix(&o)).await {
            Ok(true) => changes.push(format!("bucket {bucket}: notification rule removed")),
            Ok(false) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Error::Aws(e)),
        }
    }
    changes.extend(sqs::delete(&clients, &o).await.map_err(Error::Aws)?);
    changes.extend(sns::delete(&clients, &o).await.map_err(Error::Aws)?);
    announce(ctx, sub, &changes).await;
    let _ = sub.name_any();
    Ok(())
}
