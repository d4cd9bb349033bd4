//! SNS topics and subscriptions, S3 bucket notifications and the notifier's SQS queue against
//! the moto peer (`.ci/moto/peer.py`: moto's server plus fault injection) at
//! `TICKLAKE_TEST_AWS_ENDPOINT`.
//!
//! moto confirms every subscription at once (no pending state: that path is unit-tested in
//! `sns.rs`), accepts overlapping bucket rules (the overlap check is ours, tested here against
//! a real configuration), and delivers S3 events to its SNS and SQS, so the routes run end to
//! end. It POSTs to https subscribers on Publish: the https endpoints here point at a closed
//! loopback port and their topics are never published to.
//!
//! Tests share one server and run in parallel: every name is unique, nothing is reset. The
//! throttling test injects faults into SNS `Subscribe`, which any test would hit: tests that
//! subscribe hold [`FAULTS`] for reading, the throttling test for writing.
#![cfg(feature = "aws-tests")]

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration,
    S3KeyFilter, TopicConfiguration,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use ticklake_api::crd::AlertSubscriptionSpec;
use ticklake_aws::s3notify::{self, Rule, S3Object, Target};
use ticklake_aws::{AwsSettings, Clients, ErrorKind, Owner, sns, sqs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static FAULTS: LazyLock<tokio::sync::RwLock<()>> = LazyLock::new(|| tokio::sync::RwLock::new(()));

const ACCOUNT: &str = "123456789012";

fn endpoint() -> String {
    std::env::var("TICKLAKE_TEST_AWS_ENDPOINT").expect(
        "TICKLAKE_TEST_AWS_ENDPOINT: the moto peer's URL, e.g. http://127.0.0.1:15001 (scripts/test.sh sets it)",
    )
}

/// Clients as the operator builds them, at the peer, with moto's test credentials (whatever
/// the environment holds).
async fn clients(max_attempts: Option<u32>) -> Clients {
    let settings = AwsSettings { region: Some("us-east-1".into()), endpoint: Some(endpoint()), max_attempts };
    let c = Clients::new(&settings).await;
    let creds = aws_sdk_sns::config::Credentials::new("testing", "testing", None, None, "ticklake-tests");
    Clients {
        sns: aws_sdk_sns::Client::from_conf(c.sns.config().to_builder().credentials_provider(creds.clone()).build()),
        sqs: aws_sdk_sqs::Client::from_conf(c.sqs.config().to_builder().credentials_provider(creds.clone()).build()),
        s3: aws_sdk_s3::Client::from_conf(c.s3.config().to_builder().credentials_provider(creds.clone()).build()),
        glue: aws_sdk_glue::Client::from_conf(c.glue.config().to_builder().credentials_provider(creds.clone()).build()),
        athena: aws_sdk_athena::Client::from_conf(c.athena.config().to_builder().credentials_provider(creds).build()),
        region: c.region,
    }
}

/// A name no other test (or earlier run against the same server) uses: lower case, digits, `-`.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{:x}-{}", (nanos as u64) & 0xff_ffff_ffff, N.fetch_add(1, Ordering::Relaxed))
}

fn new_owner(prefix: &str) -> Owner {
    Owner::new("AlertSubscription", "sns-tests", &unique(prefix))
}

fn spec(endpoints: &[(&str, &str)], filter_policy: Option<&str>, digest: u32) -> AlertSubscriptionSpec {
    let endpoints: Vec<Value> = endpoints.iter().map(|(p, a)| json!({"protocol": p, "address": a})).collect();
    let mut v = json!({"watch": {"bucket": "lake", "suffix": ".parquet"}, "endpoints": endpoints,
                       "digestIntervalSeconds": digest});
    if let Some(f) = filter_policy {
        v["filterPolicy"] = json!(f);
    }
    serde_json::from_value(v).unwrap()
}

/// A plain queue (a subscriber's, or another owner's): (url, arn).
async fn raw_queue(c: &Clients, prefix: &str) -> (String, String) {
    let out = c.sqs.create_queue().queue_name(unique(prefix)).send().await.unwrap();
    let url = out.queue_url().unwrap().to_string();
    let attrs = c
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    (url, arn)
}

async fn bucket(c: &Clients, prefix: &str) -> String {
    let name = unique(prefix);
    c.s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

async fn subscription_attributes(c: &Clients, arn: &str) -> HashMap<String, String> {
    c.sns.get_subscription_attributes().subscription_arn(arn).send().await.unwrap().attributes().unwrap().clone()
}

/// (protocol, endpoint) → subscription ARN.
async fn subscriptions(c: &Clients, topic_arn: &str) -> BTreeMap<(String, String), String> {
    let out = c.sns.list_subscriptions_by_topic().topic_arn(topic_arn).send().await.unwrap();
    out.subscriptions()
        .iter()
        .map(|s| {
            (
                (s.protocol().unwrap().to_string(), s.endpoint().unwrap().to_string()),
                s.subscription_arn().unwrap().to_string(),
            )
        })
        .collect()
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Receives until `done` says enough or `timeout` passes; deletes what it received. Returns
/// the bodies.
async fn drain(c: &Clients, url: &str, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut bodies = Vec::new();
    while Instant::now() < deadline && !done(&bodies) {
        let got = sqs::receive(c, url, 10, 1).await.unwrap();
        let receipts: Vec<String> = got.iter().map(|(r, _)| r.clone()).collect();
        bodies.extend(got.into_iter().map(|(_, b)| b));
        if !receipts.is_empty() {
            sqs::delete_messages(c, url, &receipts).await.unwrap();
        }
    }
    bodies
}

fn objects(bodies: &[String]) -> Vec<S3Object> {
    bodies.iter().flat_map(|b| s3notify::parse_s3_events(b).unwrap_or_else(|e| panic!("{b}: {e}"))).collect()
}

/// Adds a fault to the peer: the next `count` calls of `action` fail.
async fn inject(fault: Value) {
    let url = endpoint();
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let body = fault.to_string();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST /_ticklake/faults HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"), "{answer}");
}

// ---------------------------------------------------------------------------------- SNS

#[tokio::test]
async fn topic_with_tags_policy_and_filtered_subscriptions_is_idempotent() {
    let _g = FAULTS.read().await;
    let c = clients(None).await;
    let owner = new_owner("topic");
    let (_, queue_arn) = raw_queue(&c, "subscriber").await;
    let https = "https://127.0.0.1:9/sns-hook"; // never published to
    let s = spec(
        &[
            ("email", "ops@example.com"),
            ("email-json", "robot@example.com"),
            ("https", https),
            ("sqs", &queue_arn),
            ("webhook", "http://127.0.0.1:9/hook"),
        ],
        Some(r#"{"symbol": ["AAPL", "MSFT"]}"#),
        300,
    );
    assert_eq!(sns::route(&s), sns::Route::Notifier);
    let d = sns::desired(&s, &owner, "lake-bucket");
    let o = sns::ensure(&c, &d, &owner).await.unwrap();

    assert!(o.arn.ends_with(&format!(":{ACCOUNT}:{}", owner.aws_name("", 256))), "{}", o.arn);
    assert!(o.changes[0].starts_with("created SNS topic"), "{:?}", o.changes);
    assert_eq!(o.changes.len(), 5, "created + 4 subscriptions: {:?}", o.changes);
    let states: Vec<(&str, &str)> = o.endpoints.iter().map(|e| (e.protocol.as_str(), e.state.as_str())).collect();
    assert_eq!(
        states,
        [
            ("email", "Confirmed"), // moto confirms at once
            ("email-json", "Confirmed"),
            ("https", "Confirmed"),
            ("sqs", "Confirmed"),
            ("webhook", "NotSubscribed"),
        ]
    );
    assert!(o.endpoints[..4].iter().all(|e| e.subscription_arn.is_some()));
    assert_eq!(o.endpoints[4].subscription_arn, None);

    // Tags.
    let tags = c.sns.list_tags_for_resource().resource_arn(&o.arn).send().await.unwrap();
    let tags: BTreeMap<String, String> = tags.tags().iter().map(|t| (t.key().into(), t.value().into())).collect();
    assert_eq!(tags, owner.tags());

    // The policy lets S3 publish from this bucket of this account only.
    let attrs = c.sns.get_topic_attributes().topic_arn(&o.arn).send().await.unwrap();
    let attrs = attrs.attributes().unwrap();
    assert_eq!(attrs["DisplayName"], d.display_name);
    let policy = json_of(&attrs["Policy"]);
    let statements = policy["Statement"].as_array().unwrap();
    let s3: Vec<&Value> = statements.iter().filter(|s| s["Principal"]["Service"] == "s3.amazonaws.com").collect();
    assert_eq!(s3.len(), 1, "{policy}");
    assert_eq!(s3[0]["Effect"], "Allow");
    assert_eq!(s3[0]["Action"], "SNS:Publish");
    assert_eq!(s3[0]["Resource"], o.arn.as_str());
    assert_eq!(s3[0]["Condition"]["ArnLike"]["aws:SourceArn"], "arn:aws:s3:::lake-bucket");
    assert_eq!(s3[0]["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);
    for st in statements.iter().filter(|s| s["Principal"]["Service"] != "s3.amazonaws.com") {
        assert_eq!(st["Condition"]["StringEquals"]["AWS:SourceOwner"], ACCOUNT, "only the owner account: {st}");
    }

    // Subscriptions with the filter policy on message attributes; raw delivery for SQS only.
    let subs = subscriptions(&c, &o.arn).await;
    assert_eq!(subs.len(), 4, "{subs:?}");
    for ((protocol, endpoint), arn) in &subs {
        let a = subscription_attributes(&c, arn).await;
        assert_eq!(json_of(&a["FilterPolicy"]), json!({"symbol": ["AAPL", "MSFT"]}), "{protocol}");
        assert_eq!(a["FilterPolicyScope"], "MessageAttributes");
        let raw = a.get("RawMessageDelivery").map(String::as_str).unwrap_or("false");
        assert_eq!(raw, if protocol == "sqs" { "true" } else { "false" }, "{protocol} {endpoint}");
    }
    let endpoints: Vec<&str> = subs.keys().map(|(_, e)| e.as_str()).collect();
    assert!(endpoints.contains(&https) && endpoints.contains(&queue_arn.as_str()));

    // Nothing to do the second time.
    let again = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(again.changes, Vec::<String>::new());
    assert_eq!(again.endpoints, o.endpoints);
    assert_eq!(again.arn, o.arn);

    assert_eq!(sns::delete(&c, &owner).await.unwrap().len(), 1);
}

#[tokio::test]
async fn drifted_subscriptions_and_policy_are_repaired() {
    let _g = FAULTS.read().await;
    let c = clients(None).await;
    let owner = new_owner("drift");
    let (_, q1) = raw_queue(&c, "q1").await;
    let (_, q2) = raw_queue(&c, "q2").await;
    let fp_a = r#"{"symbol":["AAPL"]}"#;
    let all = [("sqs", q1.as_str()), ("sqs", q2.as_str()), ("email", "ops@example.com")];
    let d = sns::desired(&spec(&all, Some(fp_a), 300), &owner, "lake");
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(subscriptions(&c, &o.arn).await.len(), 3);

    // An endpoint removed from the spec is unsubscribed.
    let d = sns::desired(&spec(&[all[0], all[2]], Some(fp_a), 300), &owner, "lake");
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes, vec![format!("unsubscribed sqs endpoint {q2}")]);
    let subs = subscriptions(&c, &o.arn).await;
    assert_eq!(subs.len(), 2);
    assert!(!subs.contains_key(&("sqs".to_string(), q2.clone())));

    // A subscription deleted by hand is subscribed again, with its attributes.
    let q1_sub = subs[&("sqs".to_string(), q1.clone())].clone();
    c.sns.unsubscribe().subscription_arn(&q1_sub).send().await.unwrap();
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes, vec![format!("subscribed sqs endpoint {q1}")]);
    let q1_sub = subscriptions(&c, &o.arn).await[&("sqs".to_string(), q1.clone())].clone();
    let a = subscription_attributes(&c, &q1_sub).await;
    assert_eq!(json_of(&a["FilterPolicy"]), json_of(fp_a));
    assert_eq!(a["RawMessageDelivery"], "true");

    // Attributes changed by hand are set back.
    for (name, value) in [("RawMessageDelivery", "false"), ("FilterPolicy", r#"{"symbol":["IBM"]}"#)] {
        c.sns
            .set_subscription_attributes()
            .subscription_arn(&q1_sub)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .unwrap();
    }
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes, vec![format!("set FilterPolicy, RawMessageDelivery of the sqs subscription of {q1}")]);
    let a = subscription_attributes(&c, &q1_sub).await;
    assert_eq!((json_of(&a["FilterPolicy"]), a["RawMessageDelivery"].as_str()), (json_of(fp_a), "true"));

    // A changed filter policy is set on every subscription.
    let fp_b = r#"{"symbol":["MSFT"],"table":["ticks"]}"#;
    let d = sns::desired(&spec(&[all[0], all[2]], Some(fp_b), 300), &owner, "lake");
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes.len(), 2, "{:?}", o.changes);
    for arn in subscriptions(&c, &o.arn).await.values() {
        assert_eq!(json_of(&subscription_attributes(&c, arn).await["FilterPolicy"]), json_of(fp_b));
    }

    // A removed filter policy is cleared, once.
    let d = sns::desired(&spec(&[all[0], all[2]], None, 300), &owner, "lake");
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes.len(), 2, "{:?}", o.changes);
    for arn in subscriptions(&c, &o.arn).await.values() {
        let fp = subscription_attributes(&c, arn).await.get("FilterPolicy").cloned().unwrap_or_default();
        assert!(fp.is_empty() || json_of(&fp) == json!({}), "{fp}");
    }
    assert_eq!(sns::ensure(&c, &d, &owner).await.unwrap().changes, Vec::<String>::new());

    // A policy replaced by hand is set back.
    c.sns
        .set_topic_attributes()
        .topic_arn(&o.arn)
        .attribute_name("Policy")
        .attribute_value(sns::topic_policy(&o.arn, "someone-elses-bucket").to_string())
        .send()
        .await
        .unwrap();
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes, vec![format!("set the access policy of SNS topic {}", o.arn)]);

    sns::delete(&c, &owner).await.unwrap();
}

#[tokio::test]
async fn a_topic_not_ours_is_left_alone_and_delete_removes_only_ours() {
    let _g = FAULTS.read().await;
    let c = clients(None).await;
    let (_, q) = raw_queue(&c, "sub").await;
    let d_spec = spec(&[("sqs", &q)], None, 0);

    // Someone else's topic with our name, without our tags.
    let theirs = new_owner("theirs");
    let name = theirs.aws_name("", 256);
    let their_arn = c.sns.create_topic().name(&name).send().await.unwrap().topic_arn().unwrap().to_string();
    let e = sns::ensure(&c, &sns::desired(&d_spec, &theirs, "lake"), &theirs).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotOwned, "{e}");
    assert!(e.message.contains(&their_arn), "{e}");
    assert_eq!(sns::delete(&c, &theirs).await.unwrap(), Vec::<String>::new());
    let still = c.sns.get_topic_attributes().topic_arn(&their_arn).send().await;
    assert!(still.is_ok(), "a topic not ours survives delete");
    assert!(subscriptions(&c, &their_arn).await.is_empty(), "and gets no subscriptions");
    c.sns.delete_topic().topic_arn(&their_arn).send().await.unwrap();

    // Ours goes, with its subscriptions.
    let ours = new_owner("ours");
    let o = sns::ensure(&c, &sns::desired(&d_spec, &ours, "lake"), &ours).await.unwrap();
    let sub = o.endpoints[0].subscription_arn.clone().unwrap();
    assert_eq!(
        sns::delete(&c, &ours).await.unwrap(),
        vec![format!("deleted SNS topic {} and its subscriptions", o.arn)]
    );
    let gone = c.sns.get_topic_attributes().topic_arn(&o.arn).send().await.unwrap_err();
    assert_eq!(aws_sdk_sns::error::ProvideErrorMetadata::code(&gone), Some("NotFound"));
    let sub_gone = c.sns.get_subscription_attributes().subscription_arn(&sub).send().await;
    assert!(sub_gone.is_err(), "subscriptions go with the topic");
    assert_eq!(sns::delete(&c, &ours).await.unwrap(), Vec::<String>::new(), "deleting twice is fine");
}

#[tokio::test]
async fn published_messages_reach_sqs_subscribers_through_the_filter_policy() {
    let _g = FAULTS.read().await;
    let c = clients(None).await;
    let owner = new_owner("publish");
    let (url, q) = raw_queue(&c, "filtered").await;
    let d = sns::desired(&spec(&[("sqs", &q)], Some(r#"{"symbol":["AAPL"]}"#), 300), &owner, "lake");
    let o = sns::ensure(&c, &d, &owner).await.unwrap();

    let attrs = |symbol: &str| BTreeMap::from([("symbol".to_string(), symbol.to_string())]);
    let id =
        sns::publish(&c, &o.arn, "New data: AAPL\n(2 objects) – ticks", "2 objects landed in ticks", &attrs("AAPL"))
            .await
            .unwrap();
    assert!(!id.is_empty());
    sns::publish(&c, &o.arn, "New data: IBM", "filtered out", &attrs("IBM")).await.unwrap();
    sns::publish(&c, &o.arn, "", "no symbol: filtered out too", &BTreeMap::new()).await.unwrap();
    let bodies = drain(&c, &url, Duration::from_secs(3), |_| false).await;
    // Raw delivery: the message itself, not SNS's envelope.
    assert_eq!(bodies, vec!["2 objects landed in ticks".to_string()]);

    let e =
        sns::publish(&c, &o.arn, "big", &"x".repeat(sns::MAX_MESSAGE_BYTES + 1), &BTreeMap::new()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("256 KiB"), "{e}");

    sns::delete(&c, &owner).await.unwrap();
}

#[tokio::test]
async fn throttled_subscribe_is_reported_then_succeeds() {
    let _g = FAULTS.write().await;
    let c = clients(Some(1)).await; // no SDK retries: every throttle reaches us
    let owner = new_owner("throttle");
    let (_, q1) = raw_queue(&c, "t1").await;
    let (_, q2) = raw_queue(&c, "t2").await;

    inject(json!({"service": "sns", "action": "Subscribe", "count": 5, "code": "Throttling"})).await;
    let d = sns::desired(&spec(&[("sqs", &q1)], None, 0), &owner, "lake");
    let mut throttled = 0;
    let o = loop {
        match sns::ensure(&c, &d, &owner).await {
            Ok(o) => break o,
            Err(e) => {
                assert_eq!(
                    (e.kind, e.operation, e.code.as_deref()),
                    (ErrorKind::Throttled, "Subscribe", Some("Throttling"))
                );
                assert!(e.is_transient());
                throttled += 1;
                assert!(throttled <= 5, "still throttled after the faults ran out");
            }
        }
    };
    assert_eq!(throttled, 5);
    assert_eq!(o.endpoints[0].state, sns::STATE_CONFIRMED);
    assert_eq!(o.changes, vec![format!("subscribed sqs endpoint {q1}")], "the topic came on the first try");

    // SNS's own throttling code is `Throttled`.
    inject(json!({"service": "sns", "action": "Subscribe", "count": 1})).await;
    let d = sns::desired(&spec(&[("sqs", &q1), ("sqs", &q2)], None, 0), &owner, "lake");
    let e = sns::ensure(&c, &d, &owner).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (ErrorKind::Throttled, Some("Throttled")));
    let o = sns::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes, vec![format!("subscribed sqs endpoint {q2}")]);

    sns::delete(&c, &owner).await.unwrap();
}

// ------------------------------------------------------------------- bucket notifications

fn key_filter(prefix: &str) -> NotificationConfigurationFilter {
    NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build())
                .build(),
        )
        .build()
}

/// (kind, id, target, events, prefix, suffix) of every rule on the bucket, sorted.
async fn rules_on(c: &Clients, bucket: &str) -> Vec<(String, String, String, Vec<String>, String, String)> {
    let out = c.s3.get_bucket_notification_configuration().bucket(bucket).send().await.unwrap();
    let fv = |f: Option<&NotificationConfigurationFilter>, which: &str| {
        f.and_then(|f| f.key())
            .map(|k| k.filter_rules())
            .unwrap_or_default()
            .iter()
            .find(|r| r.name().is_some_and(|n| n.as_str().eq_ignore_ascii_case(which)))
            .and_then(|r| r.value())
            .unwrap_or_default()
            .to_string()
    };
    let ev = |e: &[Event]| e.iter().map(|e| e.as_str().to_string()).collect::<Vec<_>>();
    let mut rules = Vec::new();
    for t in out.topic_configurations() {
        let f = t.filter();
        rules.push((
            "topic".into(),
            t.id().unwrap().into(),
            t.topic_arn().into(),
            ev(t.events()),
            fv(f, "prefix"),
            fv(f, "suffix"),
        ));
    }
    for q in out.queue_configurations() {
        let f = q.filter();
        rules.push((
            "queue".into(),
            q.id().unwrap().into(),
            q.queue_arn().into(),
            ev(q.events()),
            fv(f, "prefix"),
            fv(f, "suffix"),
        ));
    }
    rules.sort();
    rules
}

/// Another owner's rules: a queue under `raw/`, a topic under `logs/`.
async fn put_other_owners_rules(c: &Clients, bucket: &str) -> (String, String) {
    let (_, other_queue) = raw_queue(c, "other-etl").await;
    let other_topic =
        c.sns.create_topic().name(unique("other-audit")).send().await.unwrap().topic_arn().unwrap().to_string();
    let config = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("other-etl")
                .queue_arn(&other_queue)
                .events(Event::from("s3:ObjectCreated:*"))
                .filter(key_filter("raw/"))
                .build()
                .unwrap(),
        )
        .topic_configurations(
            TopicConfiguration::builder()
                .id("other-audit")
                .topic_arn(&other_topic)
                .events(Event::from("s3:ObjectCreated:*"))
                .filter(key_filter("logs/"))
                .build()
                .unwrap(),
        )
        .build();
    c.s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .unwrap();
    (other_queue, other_topic)
}

#[tokio::test]
async fn bucket_notifications_keep_other_owners_rules() {
    let c = clients(None).await;
    let bucket = bucket(&c, "merge").await;
    let (other_queue, other_topic) = put_other_owners_rules(&c, &bucket).await;
    let others = rules_on(&c, &bucket).await;
    assert_eq!(others.len(), 2);

    let owner = new_owner("notify");
    let prefix = s3notify::id_prefix(&owner);
    let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:{}", owner.aws_name("", 256));
    let mut rule = Rule {
        id: prefix.clone(),
        target: Target::Topic(topic.clone()),
        prefix: s3notify::key_prefix("lake/ticks", ""),
        suffix: ".parquet".into(),
    };
    assert!(s3notify::ensure(&c.s3, &bucket, std::slice::from_ref(&rule), &prefix).await.unwrap());
    let mut want = others.clone();
    want.push((
        "topic".into(),
        prefix.clone(),
        topic.clone(),
        vec!["s3:ObjectCreated:*".into()],
        "lake/ticks/".into(),
        ".parquet".into(),
    ));
    want.sort();
    assert_eq!(rules_on(&c, &bucket).await, want);
    assert!(others.iter().any(|r| r.1 == "other-etl" && r.2 == other_queue && r.4 == "raw/"));
    assert!(others.iter().any(|r| r.1 == "other-audit" && r.2 == other_topic && r.4 == "logs/"));

    // Idempotent.
    assert!(!s3notify::ensure(&c.s3, &bucket, std::slice::from_ref(&rule), &prefix).await.unwrap());

    // A changed rule replaces ours only.
    rule.suffix = ".json".into();
    assert!(s3notify::ensure(&c.s3, &bucket, std::slice::from_ref(&rule), &prefix).await.unwrap());
    let now = rules_on(&c, &bucket).await;
    assert_eq!(now.len(), 3);
    assert!(now.iter().any(|r| r.1 == prefix && r.5 == ".json"));

    // Another AlertSubscription's rule on the same bucket, another prefix: both stay.
    let second = new_owner("notify2");
    let second_prefix = s3notify::id_prefix(&second);
    let second_rule = Rule {
        id: second_prefix.clone(),
        target: Target::Topic(topic.clone()),
        prefix: "lake/quotes/".into(),
        suffix: String::new(),
    };
    assert!(s3notify::ensure(&c.s3, &bucket, &[second_rule], &second_prefix).await.unwrap());
    assert_eq!(rules_on(&c, &bucket).await.len(), 4);

    // Remove ours: the others stay, exactly.
    assert!(s3notify::remove(&c.s3, &bucket, &prefix).await.unwrap());
    assert!(!s3notify::remove(&c.s3, &bucket, &prefix).await.unwrap());
    assert!(s3notify::remove(&c.s3, &bucket, &second_prefix).await.unwrap());
    assert_eq!(rules_on(&c, &bucket).await, others);
    assert!(!s3notify::remove(&c.s3, "no-such-bucket-ticklake-tests", &prefix).await.unwrap());
}

#[tokio::test]
async fn an_overlap_with_another_owners_rule_is_refused() {
    let c = clients(None).await;
    let bucket = bucket(&c, "overlap").await;
    let (_, other_queue) = raw_queue(&c, "other-raw").await;
    let config = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("other-raw")
                .queue_arn(&other_queue)
                .events(Event::from("s3:ObjectCreated:Put"))
                .filter(key_filter("lake/"))
                .build()
                .unwrap(),
        )
        .build();
    c.s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(config)
        .send()
        .await
        .unwrap();
    let before = rules_on(&c, &bucket).await;

    let owner = new_owner("overlap");
    let prefix = s3notify::id_prefix(&owner);
    let rule = Rule {
        id: prefix.clone(),
        target: Target::Topic(format!("arn:aws:sns:us-east-1:{ACCOUNT}:x")),
        prefix: "lake/ticks/".into(),
        suffix: ".parquet".into(),
    };
    let e = s3notify::ensure(&c.s3, &bucket, &[rule], &prefix).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("\"other-raw\""), "{e}");
    assert_eq!(rules_on(&c, &bucket).await, before, "nothing written");
}

// -------------------------------------------------------------------------- end to end

#[tokio::test]
async fn direct_route_bucket_to_topic_to_an_sqs_subscriber() {
    let _g = FAULTS.read().await;
    let c = clients(None).await;
    let owner = new_owner("direct");
    let bucket = bucket(&c, "direct").await;
    let (url, q) = raw_queue(&c, "subscriber").await;
    let s = spec(&[("sqs", &q)], None, 0);
    assert_eq!(sns::route(&s), sns::Route::Direct);
    let topic = sns::ensure(&c, &sns::desired(&s, &owner, &bucket), &owner).await.unwrap();
    let prefix = s3notify::id_prefix(&owner);
    let rule = Rule {
        id: prefix.clone(),
        target: Target::Topic(topic.arn.clone()),
        prefix: "ticks/".into(),
        suffix: ".parquet".into(),
    };
    assert!(s3notify::ensure(&c.s3, &bucket, &[rule], &prefix).await.unwrap());

    let key = "ticks/year=2026/month=01/day=02/hour=03/a b+c.parquet";
    for (k, body) in [(key, "0123456789"), ("ticks/skip.tmp", "x"), ("other/x.parquet", "x")] {
        c.s3.put_object().bucket(&bucket).key(k).body(body.as_bytes().to_vec().into()).send().await.unwrap();
    }
    let bodies = drain(&c, &url, Duration::from_secs(10), |b| !objects(b).is_empty()).await;
    let got = objects(&bodies);
    assert_eq!(got.len(), 1, "{bodies:?}");
    assert_eq!((got[0].bucket.as_str(), got[0].key.as_str(), got[0].size), (bucket.as_str(), key, 10));
    assert!(!got[0].etag.is_empty() && !got[0].event_time.is_empty());
    // Nothing else arrives (the .tmp and other/ objects are filtered by the rule).
    let more = drain(&c, &url, Duration::from_secs(2), |_| false).await;
    assert_eq!(objects(&more), vec![], "{more:?}");

    assert!(s3notify::remove(&c.s3, &bucket, &prefix).await.unwrap());
    sns::delete(&c, &owner).await.unwrap();
}

#[tokio::test]
async fn notifier_route_bucket_to_queue_with_dead_letters() {
    let c = clients(None).await;
    let owner = new_owner("queue");
    let bucket = bucket(&c, "queue").await;
    let d = sqs::desired(&owner, &bucket);
    let o = sqs::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(o.changes, vec![format!("created SQS queue {}", d.dlq_name), format!("created SQS queue {}", d.name)]);
    assert!(o.arn.ends_with(&d.name) && o.dlq_arn.ends_with(&d.dlq_name));

    let attrs = c
        .sqs
        .get_queue_attributes()
        .queue_url(&o.url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs: HashMap<&str, &str> =
        attrs.attributes().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(attrs["MessageRetentionPeriod"], "345600");
    let redrive = json_of(attrs["RedrivePolicy"]);
    assert_eq!(redrive["deadLetterTargetArn"], o.dlq_arn.as_str());
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "5");
    let policy = json_of(attrs["Policy"]);
    assert_eq!(policy["Statement"].as_array().unwrap().len(), 1);
    assert_eq!(policy["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"], format!("arn:aws:s3:::{bucket}"));
    assert_eq!(policy["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);
    for url in [&o.url, &o.dlq_url] {
        let tags = c.sqs.list_queue_tags().queue_url(url).send().await.unwrap();
        assert!(owner.owns(tags.tags().unwrap()));
    }
    assert_eq!(sqs::ensure(&c, &d, &owner).await.unwrap().changes, Vec::<String>::new(), "idempotent");

    // Drift: retention changed by hand (the policy passed along as it is: moto 5.2.5 drops a
    // policy a SetQueueAttributes doesn't repeat).
    c.sqs
        .set_queue_attributes()
        .queue_url(&o.url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod, "60")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, attrs["Policy"])
        .send()
        .await
        .unwrap();
    assert_eq!(
        sqs::ensure(&c, &d, &owner).await.unwrap().changes,
        vec![format!("set MessageRetentionPeriod of SQS queue {}", d.name)]
    );
    assert_eq!(sqs::ensure(&c, &d, &owner).await.unwrap().changes, Vec::<String>::new());

    // The bucket sends object-created events to the queue; the worker receives and parses them.
    let prefix = s3notify::id_prefix(&owner);
    let rule =
        Rule { id: prefix.clone(), target: Target::Queue(o.arn.clone()), prefix: "in/".into(), suffix: String::new() };
    assert!(s3notify::ensure(&c.s3, &bucket, &[rule], &prefix).await.unwrap());
    c.s3.put_object().bucket(&bucket).key("in/x y.parquet").body(b"abc".to_vec().into()).send().await.unwrap();
    let bodies = drain(&c, &o.url, Duration::from_secs(10), |b| !objects(b).is_empty()).await;
    assert!(
        bodies.iter().any(|b| b.contains("s3:TestEvent")),
        "S3 tests the destination when the configuration is written: {bodies:?}"
    );
    let got = objects(&bodies);
    assert_eq!(got.len(), 1, "{bodies:?}");
    assert_eq!((got[0].key.as_str(), got[0].size), ("in/x y.parquet", 3));
    assert_eq!(drain(&c, &o.url, Duration::from_secs(1), |_| false).await, Vec::<String>::new(), "deleted");

    assert!(s3notify::remove(&c.s3, &bucket, &prefix).await.unwrap());
    let deleted = sqs::delete(&c, &owner).await.unwrap();
    assert_eq!(deleted, vec![format!("deleted SQS queue {}", d.name), format!("deleted SQS queue {}", d.dlq_name)]);
    let gone = c.sqs.get_queue_url().queue_name(&d.name).send().await;
    assert!(gone.is_err());
    assert_eq!(sqs::delete(&c, &owner).await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_queue_not_ours_is_left_alone() {
    let c = clients(None).await;
    let owner = new_owner("q-theirs");
    let d = sqs::desired(&owner, "lake");
    c.sqs.create_queue().queue_name(&d.name).send().await.unwrap();
    let e = sqs::ensure(&c, &d, &owner).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotOwned, "{e}");
    // The dead-letter queue was created before (ours); delete takes it and leaves theirs.
    assert_eq!(sqs::delete(&c, &owner).await.unwrap(), vec![format!("deleted SQS queue {}", d.dlq_name)]);
    let theirs = c.sqs.get_queue_url().queue_name(&d.name).send().await.unwrap();
    c.sqs.delete_queue().queue_url(theirs.queue_url().unwrap()).send().await.unwrap();
}
