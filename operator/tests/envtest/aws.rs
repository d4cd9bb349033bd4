//! The AWS side through the operator: an S3Sink's Glue database, crawler and Athena workgroup
//! with its named queries, an AlertSubscription's SNS topic, subscriptions and bucket
//! notification — created, updated, repaired after drift, retried under throttling, reported in
//! status and deleted by the finalizers. AWS is moto's server (`.ci/moto/peer.py`), S3 included
//! (MinIO refuses SNS/SQS bucket notifications).

use crate::harness::*;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::Duration;
use ticklake_api::crd::{AlertSubscription, S3Sink};
use ticklake_aws::sdk::s3::types::{NotificationConfiguration, QueueConfiguration};

/// Adds a fault to the AWS peer: the next `count` calls of `action` fail with its error.
pub async fn inject_fault(fault: Value) {
    let endpoint = need("TICKLAKE_TEST_AWS_ENDPOINT");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
    let body = fault.to_string();
    let req = format!(
        "POST /_ticklake/faults HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.contains(" 200 "), "{answer}");
}

/// moto finishes a Glue crawl only when someone lists the crawler's crawls (its "manual"
/// progression); a real crawl ends by itself. This thread plays that part for the whole test
/// process: every half second it lists every crawler's crawls, so a started crawl runs, then
/// completes, and a stopped one stops — as on AWS, only faster.
pub fn drive_crawls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let aws = aws_clients().await;
                loop {
                    if let Ok(out) = aws.glue.list_crawlers().max_results(1000).send().await {
                        for name in out.crawler_names() {
                            let _ = aws.glue.list_crawls().crawler_name(name).send().await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        });
    });
}

/// A bucket on the AWS peer's S3, with another owner's notification rule on it (which must
/// survive everything the operator does).
pub async fn bucket_with_foreign_rule(aws: &ticklake_aws::Clients, bucket: &str) {
    let _ = aws.s3.create_bucket().bucket(bucket).send().await; // exists from an earlier run: fine
    let queue = aws.sqs.create_queue().queue_name(format!("foreign-{bucket}")).send().await.unwrap();
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(queue.queue_url().unwrap())
        .attribute_names(ticklake_aws::sdk::sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes().unwrap()[&ticklake_aws::sdk::sqs::types::QueueAttributeName::QueueArn].clone();
    let rule = QueueConfiguration::builder()
        .id("someone-else")
        .queue_arn(arn)
        .events(ticklake_aws::sdk::s3::types::Event::S3ObjectRemovedDelete)
        .build()
        .unwrap();
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(NotificationConfiguration::builder().queue_configurations(rule).build())
        .send()
        .await
        .unwrap();
}

/// The Ids of the bucket's notification rules.
pub async fn rule_ids(aws: &ticklake_aws::Clients, bucket: &str) -> Vec<String> {
    let Ok(n) = aws.s3.get_bucket_notification_configuration().bucket(bucket).send().await else {
        return Vec::new(); // moto answers an empty configuration in a shape the SDK refuses
    };
    let mut ids: Vec<String> = Vec::new();
    ids.extend(n.queue_configurations().iter().filter_map(|q| q.id().map(String::from)));
    ids.extend(n.topic_configurations().iter().filter_map(|t| t.id().map(String::from)));
    ids.extend(n.lambda_function_configurations().iter().filter_map(|l| l.id().map(String::from)));
    ids
}

async fn crawler(aws: &ticklake_aws::Clients, name: &str) -> Option<ticklake_aws::sdk::glue::types::Crawler> {
    aws.glue.get_crawler().name(name).send().await.ok()?.crawler().cloned()
}

async fn topic_subscriptions(aws: &ticklake_aws::Clients, topic: &str) -> Vec<(String, String, String)> {
    let Ok(out) = aws.sns.list_subscriptions_by_topic().topic_arn(topic).send().await else { return Vec::new() };
    out.subscriptions()
        .iter()
        .map(|s| {
            (
                s.protocol().unwrap_or_default().to_string(),
                s.endpoint().unwrap_or_default().to_string(),
                s.subscription_arn().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn sink(name: &str, bucket: &str, database: &str, workgroup: &str) -> Value {
    json!({
        "apiVersion": "ticklake.dev/v1alpha1", "kind": "S3Sink", "metadata": {"name": name},
        "spec": {
            "topic": unique("t"), "bucket": bucket, "prefix": "ticks",
            "kafka": {"bootstrapServers": need("TICKLAKE_TEST_KAFKA_BOOTSTRAP")},
            "glue": {"database": database, "table": "ticks", "schedule": "cron(0 * * * ? *)"},
            "athena": {"workgroup": workgroup, "resultLocation": format!("s3://{bucket}/athena-results/")},
        },
    })
}

/// Create, update, drift, throttling and deletion of a sink's and a subscription's AWS side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_resources_follow_the_spec_through_drift_throttling_and_deletion() {
    let _serial = examples_lock().await; // fault injection is server-wide
    let c = client().await;
    install_crds(&c).await;
    let aws = aws_clients().await;
    drive_crawls();
    let ns = namespace(&c, "aws").await;
    let bucket = unique("tl-aws").to_lowercase();
    bucket_with_foreign_rule(&aws, &bucket).await;
    let database = format!("db_{}", bucket.replace('-', "_"));
    let workgroup = format!("wg-{bucket}");
    let op = Operator::start(&ns, "aws", &["--aws-max-attempts", "1"]).await;

    // --- create: the sink's catalog and workgroup, the subscription's topic and rule.
    apply(&c, &ns, sink("lake", &bucket, &database, &workgroup)).await;
    let queue = aws.sqs.create_queue().queue_name(unique("subscriber")).send().await.unwrap();
    let queue_arn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(queue.queue_url().unwrap())
        .attribute_names(ticklake_aws::sdk::sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&ticklake_aws::sdk::sqs::types::QueueAttributeName::QueueArn]
        .clone();
    apply(
        &c,
        &ns,
        json!({
            "apiVersion": "ticklake.dev/v1alpha1", "kind": "AlertSubscription", "metadata": {"name": "landed"},
            "spec": {
                "watch": {"sinkRef": "lake"},
                "endpoints": [{"protocol": "email", "address": "ops@example.com"}, {"protocol": "sqs", "address": queue_arn}],
                "digestIntervalSeconds": 0,
            },
        }),
    )
    .await;
    let status = wait_for(Duration::from_secs(60), "the sink's catalog and workgroup in status", || async {
        let s = get_json(&c, &ns, "s3sinks", "lake").await?;
        (s["status"]["catalog"]["table"] == format!("{database}.ticks")
            && s["status"]["athena"]["namedQueries"].as_array()?.len() == 4)
            .then_some(s["status"].clone())
    })
    .await;
    let crawler_name = status["catalog"]["crawler"].as_str().unwrap().to_string();
    let cr = crawler(&aws, &crawler_name).await.expect("the crawler exists in Glue");
    assert_eq!(cr.database_name(), Some(database.as_str()));
    assert_eq!(cr.schedule().and_then(|s| s.schedule_expression()), Some("cron(0 * * * ? *)"));
    let target = &cr.targets().unwrap().s3_targets()[0];
    assert_eq!(target.path(), Some(format!("s3://{bucket}/ticks/").as_str()));
    assert!(target.exclusions().iter().any(|e| e.contains("_dead_letters")), "{:?}", target.exclusions());
    assert!(cr.configuration().unwrap().contains("CombineCompatibleSchemas"));
    aws.glue.get_database().name(&database).send().await.expect("the database exists");
    let wg = aws.athena.get_work_group().work_group(&workgroup).send().await.unwrap();
    let cfg = wg.work_group().unwrap().configuration().unwrap();
    assert_eq!(
        cfg.result_configuration().unwrap().output_location(),
        Some(format!("s3://{bucket}/athena-results/").as_str())
    );
    let queries = aws.athena.list_named_queries().work_group(&workgroup).send().await.unwrap();
    assert_eq!(queries.named_query_ids().len(), 4, "the four named queries");

    let alert = wait_for(Duration::from_secs(60), "the subscription's topic in status", || async {
        let a = get_json(&c, &ns, "alertsubscriptions", "landed").await?;
        (a["status"]["topicArn"].is_string() && a["status"]["route"] == "Direct").then_some(a["status"].clone())
    })
    .await;
    let topic = alert["topicArn"].as_str().unwrap().to_string();
    let subs = topic_subscriptions(&aws, &topic).await;
    assert!(subs.iter().any(|(p, e, _)| p == "email" && e == "ops@example.com"), "{subs:?}");
    assert!(subs.iter().any(|(p, e, _)| p == "sqs" && *e == queue_arn), "{subs:?}");
    assert_eq!(alert["confirmedEndpoints"], 2, "moto confirms at once: {alert}");
    let ids = rule_ids(&aws, &bucket).await;
    assert!(ids.contains(&"someone-else".to_string()), "the other owner's rule is kept: {ids:?}");
    assert!(ids.iter().any(|i| i.starts_with(&format!("ticklake/AlertSubscription/{ns}/landed"))), "{ids:?}");
    let api: Api<S3Sink> = Api::namespaced(c.clone(), &ns);
    assert!(
        api.get("lake").await.unwrap().metadata.finalizers.unwrap_or_default().contains(&"ticklake.dev/cleanup".into())
    );

    // --- update: a new schedule and a bytes-scanned cutoff reach Glue and Athena.
    let patch = json!({"spec": {"glue": {"schedule": "cron(0/15 * * * ? *)"},
                                "athena": {"bytesScannedCutoffPerQuery": 1_073_741_824u64}}});
    api.patch("lake", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    wait_for(Duration::from_secs(60), "the crawler's new schedule", || async {
        let cr = crawler(&aws, &crawler_name).await?;
        (cr.schedule()?.schedule_expression()? == "cron(0/15 * * * ? *)").then_some(())
    })
    .await;
    wait_for(Duration::from_secs(60), "the workgroup's cutoff", || async {
        let wg = aws.athena.get_work_group().work_group(&workgroup).send().await.ok()?;
        (wg.work_group()?.configuration()?.bytes_scanned_cutoff_per_query()? == 1_073_741_824).then_some(())
    })
    .await;

    // --- drift: a crawler deleted and a subscription removed by hand come back.
    aws.glue.delete_crawler().name(&crawler_name).send().await.unwrap();
    let sqs_sub = subs.iter().find(|(p, _, _)| p == "sqs").unwrap().2.clone();
    aws.sns.unsubscribe().subscription_arn(&sqs_sub).send().await.unwrap();
    wait_for(Duration::from_secs(60), "the crawler recreated", || async { crawler(&aws, &crawler_name).await }).await;
    wait_for(Duration::from_secs(60), "the sqs subscription recreated", || async {
        let subs = topic_subscriptions(&aws, &topic).await;
        subs.iter().any(|(p, e, _)| p == "sqs" && *e == queue_arn).then_some(())
    })
    .await;
    let events = kubectl(&["get", "events", "-n", &ns]);
    assert!(events.contains("AwsResourceChanged"), "{events}");

    // --- throttling: Glue refuses calls for a while; status says so, then recovers.
    inject_fault(json!({"service": "glue", "action": "GetCrawler", "count": 4})).await;
    wait_conditions(&c, &ns, "s3sinks", "lake", "AwsThrottled").await;
    wait_for(Duration::from_secs(90), "recovery after throttling", || async {
        let s = get_json(&c, &ns, "s3sinks", "lake").await?;
        let cs = s["status"]["conditions"].as_array()?.clone();
        cs.iter().any(|c| c["type"] == "Degraded" && c["status"] == "False").then_some(())
    })
    .await;
    let errors = metric_sum(&op.metrics().await, "ticklake_operator_reconcile_errors_total");
    assert!(errors >= 1.0, "throttled reconciles are counted as errors and retried");

    // --- deletion: the finalizers remove what was created, and only that.
    // The sink goes first: the subscription's cleanup must still find the bucket's rule.
    let subs_api: Api<AlertSubscription> = Api::namespaced(c.clone(), &ns);
    api.delete("lake", &DeleteParams::default()).await.unwrap();
    wait_for(Duration::from_secs(90), "the sink gone", || async {
        api.get_opt("lake").await.ok()?.is_none().then_some(())
    })
    .await;
    subs_api.delete("landed", &DeleteParams::default()).await.unwrap();
    wait_for(Duration::from_secs(90), "both resources gone (finalizers done)", || async {
        (api.get_opt("lake").await.ok()?.is_none() && subs_api.get_opt("landed").await.ok()?.is_none()).then_some(())
    })
    .await;
    assert!(crawler(&aws, &crawler_name).await.is_none(), "crawler deleted");
    assert!(aws.glue.get_database().name(&database).send().await.is_err(), "our empty database deleted");
    assert!(aws.athena.get_work_group().work_group(&workgroup).send().await.ok().and_then(|w| w.work_group).is_none());
    assert!(aws.sns.get_topic_attributes().topic_arn(&topic).send().await.is_err(), "topic deleted");
    let ids = rule_ids(&aws, &bucket).await;
    assert_eq!(ids, vec!["someone-else".to_string()], "only our rule removed");
    assert!(aws.s3.head_bucket().bucket(&bucket).send().await.is_ok(), "the bucket (data) is kept");
    drop(op);
    drop_namespace(&c, &ns).await;
}

/// The "done when": `kubectl apply -f deploy/examples/` creates the workers, a Glue
/// crawler and database, an Athena workgroup with named queries, an SNS topic with an email
/// subscription and the bucket notification; deleting removes exactly what was created.
pub async fn examples_on_aws(c: &kube::Client, ns: &str) -> ExamplesAws {
    let aws = aws_clients().await;
    let sinks: Api<S3Sink> = Api::namespaced(c.clone(), ns);
    let sink_status = wait_for(Duration::from_secs(90), "the example sink's catalog and workgroup", || async {
        let s = sinks.get_opt("ticks-lake").await.ok()??.status?;
        (s.catalog.as_ref()?.crawler.is_some() && s.athena.as_ref()?.named_queries.len() == 4).then_some(s)
    })
    .await;
    let catalog = sink_status.catalog.unwrap();
    assert_eq!(catalog.table, "ticklake.ticks");
    let crawler_name = catalog.crawler.unwrap();
    assert!(crawler(&aws, &crawler_name).await.is_some(), "the crawler");
    aws.glue.get_database().name("ticklake").send().await.expect("the database");
    let queries = aws.athena.list_named_queries().work_group("ticklake").send().await.unwrap();
    assert_eq!(queries.named_query_ids().len(), 4);
    let alerts: Api<AlertSubscription> = Api::namespaced(c.clone(), ns);
    let a = wait_for(Duration::from_secs(90), "the example subscription's topic", || async {
        let s = alerts.get_opt("ticks-landed").await.ok()??.status?;
        (s.topic_arn.is_some() && s.queue_url.is_some()).then_some(s)
    })
    .await;
    assert_eq!(a.route.as_deref(), Some("Notifier"), "a digest goes through the notifier worker");
    let topic = a.topic_arn.unwrap();
    let subs = topic_subscriptions(&aws, &topic).await;
    assert!(subs.iter().any(|(p, e, _)| p == "email" && e == "alerts@example.com"), "{subs:?}");
    let ids = rule_ids(&aws, "ticklake-demo").await;
    assert!(ids.iter().any(|i| i.starts_with(&format!("ticklake/AlertSubscription/{ns}/ticks-landed"))), "{ids:?}");
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), ns);
    let notifier = wait_for(Duration::from_secs(60), "the notifier worker", || async {
        deployments.get_opt("ticks-landed-notifier").await.ok().flatten()
    })
    .await;
    let args = notifier.spec.unwrap().template.spec.unwrap().containers[0].args.clone().unwrap();
    assert!(args.contains(&a.queue_url.clone().unwrap()) && args.contains(&topic), "{args:?}");
    ExamplesAws { crawler: crawler_name, topic, queue_url: a.queue_url.unwrap(), ns: ns.to_string() }
}

/// What the examples made on AWS, to check it is gone after deletion.
pub struct ExamplesAws {
    crawler: String,
    topic: String,
    queue_url: String,
    ns: String,
}

impl ExamplesAws {
    pub async fn assert_removed(&self) {
        let aws = aws_clients().await;
        wait_for(Duration::from_secs(60), "the examples' AWS resources removed", || async {
            let crawler_gone = crawler(&aws, &self.crawler).await.is_none();
            let topic_gone = aws.sns.get_topic_attributes().topic_arn(&self.topic).send().await.is_err();
            let queue_gone = aws.sqs.get_queue_attributes().queue_url(&self.queue_url).send().await.is_err();
            let wg_gone = aws.athena.get_work_group().work_group("ticklake").send().await.ok()?.work_group.is_none();
            let db_gone = aws.glue.get_database().name("ticklake").send().await.is_err();
            let ids = rule_ids(&aws, "ticklake-demo").await;
            let rule_gone = !ids.iter().any(|i| i.starts_with(&format!("ticklake/AlertSubscription/{}/", self.ns)));
            (crawler_gone && topic_gone && queue_gone && wg_gone && db_gone && rule_gone).then_some(())
        })
        .await;
        assert!(aws.s3.head_bucket().bucket("ticklake-demo").send().await.is_ok(), "the data bucket stays");
    }
}

/// The examples' bucket on the AWS peer (their `s3sink.yaml` names AWS S3).
pub async fn examples_bucket() {
    drive_crawls();
    let aws = aws_clients().await;
    let _ = aws.s3.create_bucket().bucket("ticklake-demo").send().await;
}
