//! Glue and Athena reconcilers against the moto peer (`.ci/moto/peer.py`: moto's server with
//! the Glue/Athena operations moto lacks, and fault injection). scripts/test.sh starts it and
//! exports `TICKLAKE_TEST_AWS_ENDPOINT`; by hand:
//!
//! ```sh
//! /root/.cache/ticklake/moto-venv/bin/python .ci/moto/peer.py -p 15001 &
//! TICKLAKE_TEST_AWS_ENDPOINT=http://127.0.0.1:15001 AWS_ACCESS_KEY_ID=testing \
//!   AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
//!   cargo test --release -p ticklake-aws --features aws-tests --test glue_athena
//! ```
//!
//! The server is shared by tests running in parallel (and by other test binaries): every test
//! uses its own names, and nothing resets the server. Injected faults and Athena's seeded
//! results are server-wide, so the tests that use them take [`EXCLUSIVE`] for writing and the
//! others for reading.
//!
//! What moto cannot show: crawls never create tables or fail (a test checks what was
//! configured and the states moto reports; a crawl advances one step per ListCrawls), and
//! query results are what a test seeds.
#![cfg(feature = "aws-tests")]

use aws_sdk_glue::types::{CrawlerTargets, DatabaseInput, S3Target, TableInput};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use ticklake_api::crd::S3SinkSpec;
use ticklake_aws::athena::{self, Account};
use ticklake_aws::glue::{self, GlueDesired};
use ticklake_aws::{AwsSettings, Clients, ErrorKind, Owner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::RwLock;

static EXCLUSIVE: RwLock<()> = RwLock::const_new(());
const ROLE: &str = "arn:aws:iam::123456789012:role/ticklake-glue-crawler";

fn endpoint() -> String {
    std::env::var("TICKLAKE_TEST_AWS_ENDPOINT")
        .expect("TICKLAKE_TEST_AWS_ENDPOINT: the moto peer's URL (scripts/test.sh starts it)")
}

fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

fn settings(max_attempts: Option<u32>) -> AwsSettings {
    AwsSettings { region: Some(region()), endpoint: Some(endpoint()), max_attempts }
}

async fn clients(max_attempts: Option<u32>) -> Clients {
    Clients::new(&settings(max_attempts)).await
}

/// A name no other test (or earlier run against the same server) uses: `[a-z0-9]`.
fn uniq(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}{:x}{}", (nanos as u64) ^ u64::from(std::process::id()) << 40, N.fetch_add(1, Ordering::Relaxed))
}

fn spec(v: serde_json::Value) -> S3SinkSpec {
    serde_json::from_value(v).unwrap()
}

/// A sink with a Glue catalogue; `glue` is merged into the defaults.
fn sink(id: &str, glue: serde_json::Value) -> S3SinkSpec {
    let mut g = serde_json::json!({"database": format!("db_{id}")});
    for (k, v) in glue.as_object().unwrap() {
        g[k] = v.clone();
    }
    spec(serde_json::json!({"topic": "ticks", "bucket": "lake", "prefix": format!("data/{id}"), "glue": g}))
}

fn glue_desired(s: &S3SinkSpec, owner: &Owner) -> GlueDesired {
    glue::desired(s, owner, ROLE, None).unwrap()
}

/// A raw HTTP/1.1 request to the peer (its control endpoints are not AWS APIs).
async fn http(method: &str, path: &str, body: &str) -> (u16, String) {
    let ep = endpoint();
    let host = ep.trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut s = tokio::net::TcpStream::connect(&host).await.expect("connecting to the moto peer");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

async fn inject(service: &str, action: &str, count: u32) {
    let body = serde_json::json!({"service": service, "action": action, "count": count}).to_string();
    let (status, _) = http("POST", "/_ticklake/faults", &body).await;
    assert_eq!(status, 200, "injecting {service}.{action}");
}

async fn account_of_catalog(c: &Clients, db: &str) -> String {
    let out = c.glue.get_database().name(db).send().await.unwrap();
    out.database().unwrap().catalog_id().unwrap().to_string()
}

async fn glue_tags(c: &Clients, arn: String) -> HashMap<String, String> {
    c.glue.get_tags().resource_arn(arn).send().await.unwrap().tags().cloned().unwrap_or_default()
}

/// Moves the crawler's crawls on by one state (moto advances them on ListCrawls).
async fn advance_crawls(c: &Clients, name: &str) {
    c.glue.list_crawls().crawler_name(name).send().await.unwrap();
}

async fn crawler_state(c: &Clients, name: &str) -> Option<String> {
    let out = c.glue.get_crawler().name(name).send().await.ok()?;
    out.crawler().and_then(|c| c.state()).map(|s| s.as_str().to_string())
}

async fn crawler_exists(c: &Clients, name: &str) -> bool {
    match c.glue.get_crawler().name(name).send().await {
        Ok(_) => true,
        Err(e) => {
            let e = ticklake_aws::AwsError::from_sdk("glue", "GetCrawler", e);
            assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
            false
        }
    }
}

async fn table_exists(c: &Clients, db: &str, t: &str) -> bool {
    c.glue.get_table().database_name(db).name(t).send().await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawler_is_created_kept_updated_repaired_and_deleted() {
    let _shared = EXCLUSIVE.read().await;
    let c = clients(None).await;
    let id = uniq("cr");
    let owner = Owner::new("S3Sink", "lake", &id);
    let s = sink(&id, serde_json::json!({"table": format!("prod_{id}"), "schedule": "cron(0/15 * * * ? *)"}));
    let d = glue_desired(&s, &owner);
    let name = d.crawler_name.clone();
    assert_eq!(d.table, format!("prod_{id}"));

    // Create: database, crawler, first crawl.
    let o = glue::ensure(&c, &d, &owner).await.unwrap();
    assert_eq!(
        o.changes,
        [
            format!("created Glue database db_{id}"),
            format!("created crawler {name}"),
            format!("started crawler {name} (first crawl)")
        ]
    );
    assert_eq!(o.crawler.as_deref(), Some(name.as_str()));
    assert_eq!(o.crawler_state.as_deref(), Some("RUNNING"));
    assert!(o.last_crawl_start.is_some(), "{o:?}");
    assert_eq!((o.database.as_str(), o.table.as_str()), (d.database.as_str(), d.table.as_str()));

    // The AWS side.
    let account = account_of_catalog(&c, &d.database).await;
    let cr = c.glue.get_crawler().name(&name).send().await.unwrap().crawler().cloned().unwrap();
    assert_eq!(cr.role(), Some(ROLE));
    assert_eq!(cr.database_name(), Some(d.database.as_str()));
    let t = &cr.targets().unwrap().s3_targets()[0];
    assert_eq!(t.path(), Some(format!("s3://lake/data/{id}/").as_str()));
    assert_eq!(t.exclusions(), ["_dead_letters/**", "_ticklake/**", "**.jsonl"]);
    assert_eq!(t.event_queue_arn(), None);
    let conf: serde_json::Value = serde_json::from_str(cr.configuration().unwrap()).unwrap();
    assert_eq!(
        conf,
        serde_json::json!({"Version": 1.0,
            "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas", "TableLevelConfiguration": 3},
            "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}})
    );
    assert_eq!(cr.schedule().and_then(|s| s.schedule_expression()), Some("cron(0/15 * * * ? *)"));
    assert_eq!(cr.table_prefix(), Some("prod_"));
    let p = cr.schema_change_policy().unwrap();
    assert_eq!(p.update_behavior().map(|b| b.as_str()), Some("UPDATE_IN_DATABASE"));
    assert_eq!(p.delete_behavior().map(|b| b.as_str()), Some("LOG"));
    assert_eq!(cr.recrawl_policy().and_then(|r| r.recrawl_behavior()).map(|b| b.as_str()), Some("CRAWL_EVERYTHING"));
    let tags = glue_tags(&c, format!("arn:aws:glue:{}:{account}:crawler/{name}", region())).await;
    assert!(owner.owns(&tags), "{tags:?}");
    let tags = glue_tags(&c, format!("arn:aws:glue:{}:{account}:database/{}", region(), d.database)).await;
    assert!(owner.owns(&tags), "{tags:?}");

    // Idempotent, also while crawling.
    let o = glue::ensure(&c, &d, &owner).await.unwrap();
    assert!(o.changes.is_empty(), "{:?}", o.changes);

    // An update waits until the crawl ends.
    let s2 = sink(
        &id,
        serde_json::json!({"table": format!("prod_{id}"), "schedule": "cron(0 3 * * ? *)", "schemaChangePolicy": "log"}),
    );
    let d2 = glue_desired(&s2, &owner);
    let e = glue::ensure(&c, &d2, &owner).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    assert!(e.message.contains("Schedule, SchemaChangePolicy"), "{e}");
    advance_crawls(&c, &name).await;
    let o = glue::ensure(&c, &d2, &owner).await.unwrap();
    assert_eq!(o.changes, [format!("updated crawler {name} (Schedule, SchemaChangePolicy)")]);
    assert_eq!(o.crawler_state.as_deref(), Some("READY"));
    assert!(o.last_crawl_status.is_some(), "{o:?}");
    let cr = c.glue.get_crawler().name(&name).send().await.unwrap().crawler().cloned().unwrap();
    assert_eq!(cr.schedule().and_then(|s| s.schedule_expression()), Some("cron(0 3 * * ? *)"));
    assert_eq!(cr.schema_change_policy().and_then(|p| p.update_behavior()).map(|b| b.as_str()), Some("LOG"));
    assert!(glue::ensure(&c, &d2, &owner).await.unwrap().changes.is_empty());

    // Drift: deleted by hand → created (and started) again.
    c.glue.delete_crawler().name(&name).send().await.unwrap();
    let o = glue::ensure(&c, &d2, &owner).await.unwrap();
    assert_eq!(o.changes, [format!("created crawler {name}"), format!("started crawler {name} (first crawl)")]);
    let cr = c.glue.get_crawler().name(&name).send().await.unwrap().crawler().cloned().unwrap();
    assert_eq!(cr.schedule().and_then(|s| s.schedule_expression()), Some("cron(0 3 * * ? *)"));

    // Delete: a running crawler is stopped first, then deleted; the empty database of ours too.
    let e = glue::delete(&c, &d2, &owner).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    assert_eq!(crawler_state(&c, &name).await.as_deref(), Some("STOPPING"));
    advance_crawls(&c, &name).await;
    let gone = glue::delete(&c, &d2, &owner).await.unwrap();
    assert_eq!(gone, [format!("deleted crawler {name}"), format!("deleted Glue database db_{id}")]);
    assert!(!crawler_exists(&c, &name).await);
    assert!(c.glue.get_database().name(&d.database).send().await.is_err());
    // Deleting again: nothing left, nothing to do.
    assert!(glue::delete(&c, &d2, &owner).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_named_crawler_and_table_of_others_are_left_alone() {
    let _shared = EXCLUSIVE.read().await;
    let c = clients(None).await;
    let id = uniq("no");
    let owner = Owner::new("S3Sink", "lake", &id);
    let d = glue_desired(&sink(&id, serde_json::json!({"schedule": "cron(0 * * * ? *)"})), &owner);
    let name = d.crawler_name.clone();
    c.glue
        .create_database()
        .database_input(DatabaseInput::builder().name(&d.database).build().unwrap())
        .send()
        .await
        .unwrap();
    c.glue
        .create_crawler()
        .name(&name)
        .role("someone-elses-role")
        .database_name(&d.database)
        .targets(CrawlerTargets::builder().s3_targets(S3Target::builder().path("s3://elsewhere/").build()).build())
        .send()
        .await
        .unwrap();
    let e = glue::ensure(&c, &d, &owner).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotOwned, "{e}");
    assert!(e.message.contains(&name), "{e}");
    let cr = c.glue.get_crawler().name(&name).send().await.unwrap().crawler().cloned().unwrap();
    assert_eq!(cr.role(), Some("someone-elses-role"));
    assert_eq!(cr.targets().unwrap().s3_targets()[0].path(), Some("s3://elsewhere/"));
    assert_eq!(cr.schedule(), None);
    // The finalizer leaves it (and the database that is not ours) alone.
    assert!(glue::delete(&c, &d, &owner).await.unwrap().is_empty());
    assert!(crawler_exists(&c, &name).await);
    assert!(c.glue.get_database().name(&d.database).send().await.is_ok());

    // A projection table of the same name made by someone else.
    let id2 = uniq("nt");
    let owner2 = Owner::new("S3Sink", "lake", &id2);
    let mut s = sink(&id2, serde_json::json!({"mode": "projection"}));
    s.glue.as_mut().unwrap().database = d.database.clone();
    let d2 = glue_desired(&s, &owner2);
    c.glue
        .create_table()
        .database_name(&d.database)
        .table_input(TableInput::builder().name(&d2.table).description("mine").build().unwrap())
        .send()
        .await
        .unwrap();
    let e = glue::ensure(&c, &d2, &owner2).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotOwned, "{e}");
    let t = c.glue.get_table().database_name(&d.database).name(&d2.table).send().await.unwrap();
    assert_eq!(t.table().unwrap().description(), Some("mine"));
    assert!(glue::delete(&c, &d2, &owner2).await.unwrap().is_empty());
    assert!(table_exists(&c, &d.database, &d2.table).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_change_replaces_the_crawler_with_a_projection_table() {
    let _shared = EXCLUSIVE.read().await;
    let c = clients(None).await;
    let id = uniq("mc");
    let owner = Owner::new("S3Sink", "lake", &id);
    let crawled = glue_desired(&sink(&id, serde_json::json!({})), &owner);
    let name = crawled.crawler_name.clone();
    glue::ensure(&c, &crawled, &owner).await.unwrap();
    assert_eq!(crawler_state(&c, &name).await.as_deref(), Some("RUNNING"));

    let projected = glue_desired(&sink(&id, serde_json::json!({"mode": "projection", "table": "ticks"})), &owner);
    assert!(projected.crawler.is_none());
    // The crawler is crawling: stopped first, removed once stopped.
    let e = glue::ensure(&c, &projected, &owner).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    advance_crawls(&c, &name).await;
    let o = glue::ensure(&c, &projected, &owner).await.unwrap();
    assert_eq!(
        o.changes,
        [format!("deleted crawler {name}"), format!("created table db_{id}.ticks (partition projection)")]
    );
    assert_eq!((o.crawler, o.crawler_state), (None, None));
    assert!(!crawler_exists(&c, &name).await);

    let t = c.glue.get_table().database_name(&projected.database).name("ticks").send().await.unwrap();
    let t = t.table().unwrap();
    let p = t.parameters().unwrap();
    assert_eq!(p["projection.enabled"], "true");
    assert_eq!(p["projection.year.type"], "date");
    assert_eq!(p["projection.year.range"], "1900,NOW");
    assert_eq!(p["projection.hour.type"], "enum");
    assert_eq!(
        p["storage.location.template"],
        format!("s3://lake/data/{id}/year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}/")
    );
    let keys: Vec<(&str, Option<&str>)> = t.partition_keys().iter().map(|k| (k.name(), k.r#type())).collect();
    assert_eq!(
        keys,
        [("year", Some("string")), ("month", Some("string")), ("day", Some("string")), ("hour", Some("string"))]
    );
    let sd = t.storage_descriptor().unwrap();
    assert_eq!(sd.location(), Some(format!("s3://lake/data/{id}/").as_str()));
    assert_eq!(
        sd.serde_info().and_then(|s| s.serialization_library()),
        Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    );
    assert!(sd.columns().iter().any(|c| c.name() == "event_time" && c.r#type() == Some("timestamp")));
    let account = account_of_catalog(&c, &projected.database).await;
    let tags = glue_tags(&c, format!("arn:aws:glue:{}:{account}:table/{}/ticks", region(), projected.database)).await;
    assert!(owner.owns(&tags), "{tags:?}");
    assert!(glue::ensure(&c, &projected, &owner).await.unwrap().changes.is_empty());

    // Drift of the table: projection switched off by hand → restored.
    let mut input = TableInput::builder().name("ticks").table_type("EXTERNAL_TABLE");
    let mut params = p.clone();
    params.remove("projection.enabled");
    input = input.set_parameters(Some(params)).set_partition_keys(Some(t.partition_keys().to_vec()));
    input =
        input.set_storage_descriptor(t.storage_descriptor().cloned()).description(t.description().unwrap_or_default());
    c.glue.update_table().database_name(&projected.database).table_input(input.build().unwrap()).send().await.unwrap();
    let o = glue::ensure(&c, &projected, &owner).await.unwrap();
    assert_eq!(o.changes, [format!("updated table db_{id}.ticks (Parameters)")]);

    // And back to a crawler: our projection table goes, the crawler will write its own (named
    // after the folder: "ticks" cannot be a crawler's table over data/<id>/).
    let back = glue_desired(&sink(&id, serde_json::json!({"table": "ticks"})), &owner);
    assert_eq!(back.table, id);
    assert_eq!(back.warnings.len(), 1, "{:?}", back.warnings);
    let o = glue::ensure(&c, &back, &owner).await.unwrap();
    assert_eq!(
        o.changes,
        [
            format!("created crawler {name}"),
            format!("started crawler {name} (first crawl)"),
            format!("deleted table db_{id}.ticks (not desired any more)"),
        ]
    );
    assert!(!table_exists(&c, &projected.database, "ticks").await);
    assert!(glue::ensure(&c, &back, &owner).await.unwrap().changes.is_empty());

    // Delete: the running crawler is stopped, then deleted with the (empty) database.
    assert_eq!(glue::delete(&c, &back, &owner).await.unwrap_err().kind, ErrorKind::Unavailable);
    advance_crawls(&c, &name).await;
    let gone = glue::delete(&c, &back, &owner).await.unwrap();
    assert_eq!(gone, [format!("deleted crawler {name}"), format!("deleted Glue database db_{id}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_keeps_a_database_other_tables_are_in() {
    let _shared = EXCLUSIVE.read().await;
    let c = clients(None).await;
    let id = uniq("sh");
    let owner = Owner::new("S3Sink", "lake", &id);
    let d = glue_desired(&sink(&id, serde_json::json!({"mode": "projection"})), &owner);
    glue::ensure(&c, &d, &owner).await.unwrap();
    c.glue
        .create_table()
        .database_name(&d.database)
        .table_input(TableInput::builder().name("someone_elses").build().unwrap())
        .send()
        .await
        .unwrap();
    let gone = glue::delete(&c, &d, &owner).await.unwrap();
    assert_eq!(
        gone,
        [
            format!("deleted table {}.{}", d.database, d.table),
            format!("kept Glue database {}: other tables are in it", d.database)
        ]
    );
    assert!(!table_exists(&c, &d.database, &d.table).await);
    assert!(table_exists(&c, &d.database, "someone_elses").await);
    assert!(c.glue.get_database().name(&d.database).send().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_reaches_the_caller_only_past_the_sdk_retries() {
    let _exclusive = EXCLUSIVE.write().await;
    // One attempt per call: every injected fault surfaces as Throttled.
    let c = clients(Some(1)).await;
    let id = uniq("th");
    let owner = Owner::new("S3Sink", "lake", &id);
    let d = glue_desired(&sink(&id, serde_json::json!({})), &owner);
    inject("glue", "CreateCrawler", 5).await;
    for i in 0..5 {
        let e = glue::ensure(&c, &d, &owner).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Throttled, "attempt {i}: {e}");
        assert_eq!((e.operation, e.code.as_deref()), ("CreateCrawler", Some("ThrottlingException")));
        assert!(e.is_transient());
    }
    let o = glue::ensure(&c, &d, &owner).await.unwrap();
    assert!(o.changes.contains(&format!("created crawler {}", d.crawler_name)), "{:?}", o.changes);

    // The SDK's standard retries (3 attempts) absorb two in a row.
    let c3 = clients(None).await;
    let id = uniq("th");
    let owner = Owner::new("S3Sink", "lake", &id);
    let d = glue_desired(&sink(&id, serde_json::json!({})), &owner);
    inject("glue", "CreateCrawler", 2).await;
    let o = glue::ensure(&c3, &d, &owner).await.unwrap();
    assert!(o.changes.contains(&format!("created crawler {}", d.crawler_name)), "{:?}", o.changes);
    let (_, faults) = http("GET", "/_ticklake/faults", "").await;
    let faults: serde_json::Value = serde_json::from_str(&faults).unwrap();
    assert!(!faults["faults"].as_array().unwrap().iter().any(|f| f["action"] == "CreateCrawler"), "{faults}");
}

// ------------------------------------------------------------------------------ Athena

fn athena_sink(id: &str, athena: serde_json::Value) -> S3SinkSpec {
    let mut a = serde_json::json!({"workgroup": format!("wg-{id}"), "resultLocation": "s3://results/athena/"});
    for (k, v) in athena.as_object().unwrap() {
        a[k] = v.clone();
    }
    spec(serde_json::json!({"topic": "ticks", "bucket": "lake", "prefix": "ticks",
        "glue": {"database": format!("db_{id}"), "table": "ticks", "mode": "projection"}, "athena": a}))
}

async fn account() -> Account {
    athena::caller_account(&settings(None)).await.unwrap()
}

/// The workgroup's named queries: name → (id, database, sql).
async fn named_queries(c: &Clients, wg: &str) -> HashMap<String, (String, String, String)> {
    let ids = c.athena.list_named_queries().work_group(wg).send().await.unwrap().named_query_ids().to_vec();
    let mut out = HashMap::new();
    for id in ids {
        let q = c.athena.get_named_query().named_query_id(&id).send().await.unwrap();
        let q = q.named_query().unwrap();
        out.insert(q.name().to_string(), (id.clone(), q.database().to_string(), q.query_string().to_string()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workgroup_and_named_queries_are_created_kept_repaired_and_deleted() {
    let _shared = EXCLUSIVE.read().await;
    let c = clients(None).await;
    let acct = account().await;
    assert_eq!(acct.partition, "aws");
    let id = uniq("wg");
    let owner = Owner::new("S3Sink", "lake", &id);
    let s = athena_sink(&id, serde_json::json!({"bytesScannedCutoffPerQuery": 10485760}));
    let d = athena::desired(&s, &format!("db_{id}"), "ticks").unwrap();
    let wg = d.workgroup.clone();

    let o = athena::ensure(&c, &d, &owner, &acct).await.unwrap();
    assert_eq!(o.changes[0], format!("created Athena workgroup {wg}"));
    assert_eq!(o.changes.len(), 5, "{:?}", o.changes);
    assert_eq!(o.named_queries.len(), 4);
    assert_eq!(o.state.as_deref(), Some("ENABLED"));

    let w = c.athena.get_work_group().work_group(&wg).send().await.unwrap().work_group().cloned().unwrap();
    let conf = w.configuration().unwrap();
    let rc = conf.result_configuration().unwrap();
    assert_eq!(rc.output_location(), Some("s3://results/athena/"));
    assert_eq!(rc.encryption_configuration().unwrap().encryption_option().as_str(), "SSE_S3");
    assert_eq!(conf.bytes_scanned_cutoff_per_query(), Some(10485760));
    assert_eq!(conf.enforce_work_group_configuration(), Some(true));
    assert_eq!(conf.publish_cloud_watch_metrics_enabled(), Some(true));
    let tags = c.athena.list_tags_for_resource().resource_arn(acct.workgroup_arn(&region(), &wg)).send().await.unwrap();
    let tags: HashMap<String, String> =
        tags.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect();
    assert!(owner.owns(&tags), "{tags:?}");
    let qs = named_queries(&c, &wg).await;
    for q in &d.named_queries {
        let (qid, db, sql) = &qs[&q.name];
        assert_eq!((db, sql), (&q.database, &q.sql));
        assert_eq!(o.named_queries[&q.name], *qid);
        assert!(sql.contains(&format!("\"db_{id}\".\"ticks\"")));
    }

    // Idempotent.
    assert!(athena::ensure(&c, &d, &owner, &acct).await.unwrap().changes.is_empty());

    // The cutoff changes, then goes; the encryption changes to KMS.
    let s2 = athena_sink(&id, serde_json::json!({"bytesScannedCutoffPerQuery": 1073741824}));
    let d2 = athena::desired(&s2, &format!("db_{id}"), "ticks").unwrap();
    let o = athena::ensure(&c, &d2, &owner, &acct).await.unwrap();
    assert_eq!(o.changes, [format!("updated Athena workgroup {wg} (BytesScannedCutoffPerQuery)")]);
    let w = c.athena.get_work_group().work_group(&wg).send().await.unwrap().work_group().cloned().unwrap();
    assert_eq!(w.configuration().unwrap().bytes_scanned_cutoff_per_query(), Some(1073741824));
    let s3 = athena_sink(
        &id,
        serde_json::json!({"encryption": "SSE_KMS", "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/k"}),
    );
    let d3 = athena::desired(&s3, &format!("db_{id}"), "ticks").unwrap();
    let o = athena::ensure(&c, &d3, &owner, &acct).await.unwrap();
    assert_eq!(
        o.changes,
        [format!("updated Athena workgroup {wg} (EncryptionConfiguration, BytesScannedCutoffPerQuery)")]
    );
    let w = c.athena.get_work_group().work_group(&wg).send().await.unwrap().work_group().cloned().unwrap();
    let conf = w.configuration().unwrap();
    assert_eq!(conf.bytes_scanned_cutoff_per_query(), None);
    let enc = conf.result_configuration().unwrap().encryption_configuration().unwrap();
    assert_eq!(
        (enc.encryption_option().as_str(), enc.kms_key()),
        ("SSE_KMS", Some("arn:aws:kms:us-east-1:123456789012:key/k"))
    );
    assert!(athena::ensure(&c, &d3, &owner, &acct).await.unwrap().changes.is_empty());

    // Drift: a named query deleted, another's SQL edited, a query of someone else's and a
    // stale one of ours added.
    let qs = named_queries(&c, &wg).await;
    let (gone, edited) = (&d3.named_queries[0], &d3.named_queries[1]);
    c.athena.delete_named_query().named_query_id(&qs[&gone.name].0).send().await.unwrap();
    c.athena
        .update_named_query()
        .named_query_id(&qs[&edited.name].0)
        .name(&edited.name)
        .query_string("SELECT 42")
        .send()
        .await
        .unwrap();
    for (name, sql) in [("my-query", "SELECT 1"), ("ticklake-retired", "SELECT 2")] {
        c.athena
            .create_named_query()
            .work_group(&wg)
            .name(name)
            .database("default")
            .query_string(sql)
            .send()
            .await
            .unwrap();
    }
    let o = athena::ensure(&c, &d3, &owner, &acct).await.unwrap();
    let mut changes = o.changes.clone();
    changes.sort();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0], format!("created named query {}", gone.name));
    assert!(changes[1].starts_with("deleted named query ticklake-retired"), "{changes:?}");
    assert_eq!(changes[2], format!("restored named query {}", edited.name));
    let qs = named_queries(&c, &wg).await;
    assert_eq!(qs.len(), 5, "{:?}", qs.keys());
    assert_eq!(qs[&edited.name].2, edited.sql);
    assert_eq!(qs[&gone.name].2, gone.sql);
    assert_eq!(qs["my-query"].2, "SELECT 1");
    assert!(athena::ensure(&c, &d3, &owner, &acct).await.unwrap().changes.is_empty());

    // Delete: the workgroup with its named queries.
    assert_eq!(
        athena::delete(&c, &d3, &owner, &acct).await.unwrap(),
        [format!("deleted Athena workgroup {wg} and its named queries")]
    );
    assert!(c.athena.get_work_group().work_group(&wg).send().await.map(|o| o.work_group().is_none()).unwrap_or(true));
    assert!(athena::delete(&c, &d3, &owner, &acct).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workgroup_of_others_is_left_alone() {
    let _shared = EXCLUSIVE.read().await;
    let c = clients(None).await;
    let acct = account().await;
    let id = uniq("wo");
    let owner = Owner::new("S3Sink", "lake", &id);
    let d = athena::desired(&athena_sink(&id, serde_json::json!({})), &format!("db_{id}"), "ticks").unwrap();
    c.athena.create_work_group().name(&d.workgroup).description("theirs").send().await.unwrap();
    let e = athena::ensure(&c, &d, &owner, &acct).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotOwned, "{e}");
    assert!(named_queries(&c, &d.workgroup).await.is_empty());
    assert!(athena::delete(&c, &d, &owner, &acct).await.unwrap().is_empty());
    let w = c.athena.get_work_group().work_group(&d.workgroup).send().await.unwrap().work_group().cloned().unwrap();
    assert_eq!(w.description(), Some("theirs"));
    // Tagged by another sink: not ours either.
    let other = Owner::new("S3Sink", "lake", &format!("{id}x"));
    let d2 =
        athena::desired(&athena_sink(&format!("{id}y"), serde_json::json!({})), &format!("db_{id}"), "ticks").unwrap();
    athena::ensure(&c, &d2, &other, &acct).await.unwrap();
    assert_eq!(athena::ensure(&c, &d2, &owner, &acct).await.unwrap_err().kind, ErrorKind::NotOwned);
    assert!(athena::delete(&c, &d2, &owner, &acct).await.unwrap().is_empty());
    athena::delete(&c, &d2, &other, &acct).await.unwrap();
}

async fn seed(rows: &[&[&str]], types: &[&str]) {
    let header = rows[0];
    let column_info: Vec<serde_json::Value> = header
        .iter()
        .zip(types)
        .map(|(n, t)| {
            serde_json::json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": n, "Label": n,
                "Type": t, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": true})
        })
        .collect();
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::json!({"Data": r.iter().map(|v| serde_json::json!({"VarCharValue": v})).collect::<Vec<_>>()}))
        .collect();
    let body = serde_json::json!({"account_id": account().await.id, "region": region(),
        "results": [{"rows": rows, "column_info": column_info}]});
    let (status, text) = http("POST", "/moto-api/static/athena/query-results", &body.to_string()).await;
    assert!(status == 200 || status == 201, "seeding: {status} {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_query_runs_and_its_rows_are_read() {
    // Seeded results are a server-wide queue: no other query may read them meanwhile.
    let _exclusive = EXCLUSIVE.write().await;
    let c = clients(None).await;
    let acct = account().await;
    let id = uniq("rq");
    let owner = Owner::new("S3Sink", "lake", &id);
    let d = athena::desired(&athena_sink(&id, serde_json::json!({})), &format!("db_{id}"), "ticks").unwrap();
    athena::ensure(&c, &d, &owner, &acct).await.unwrap();

    seed(
        &[
            &["symbol", "price", "event_time"],
            &["AAPL", "187.5", "2026-11-26 14:30:00.000"],
            &["MSFT", "411.25", "2026-11-26 14:30:01.000"],
        ],
        &["varchar", "double", "timestamp"],
    )
    .await;
    let o = athena::run_named_query(&c, &d.workgroup, "ticklake-latest-price", Duration::from_secs(30), 1000)
        .await
        .unwrap();
    assert!(o.succeeded(), "{o:?}");
    assert!(!o.query_execution_id.is_empty());
    assert_eq!(o.columns, ["symbol", "price", "event_time"]);
    assert_eq!(o.column_types, ["varchar", "double", "timestamp"]);
    assert_eq!(
        o.rows,
        [
            vec![Some("AAPL".to_string()), Some("187.5".to_string()), Some("2026-11-26 14:30:00.000".to_string())],
            vec![Some("MSFT".to_string()), Some("411.25".to_string()), Some("2026-11-26 14:30:01.000".to_string())],
        ]
    );
    assert!(!o.truncated);
    assert_eq!(o.data_scanned_bytes, Some(0), "moto's statistics are zeros");

    // At most max_rows rows.
    seed(
        &[
            &["hour_start", "ticks"],
            &["2026-11-26 13:00:00.000", "10"],
            &["2026-11-26 14:00:00.000", "20"],
            &["2026-11-26 15:00:00.000", "30"],
        ],
        &["timestamp", "bigint"],
    )
    .await;
    let o =
        athena::run_named_query(&c, &d.workgroup, "ticklake-ticks-per-hour", Duration::from_secs(30), 2).await.unwrap();
    assert_eq!(o.rows.len(), 2);
    assert!(o.truncated);
    assert_eq!(o.rows[1][1].as_deref(), Some("20"));

    // An unknown name.
    let e = athena::run_named_query(&c, &d.workgroup, "ticklake-nope", Duration::from_secs(5), 10).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    // A query that does not finish in time is stopped.
    let set = serde_json::json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000000}});
    http("POST", "/moto-api/state-manager/set-transition", &set.to_string()).await;
    let o = athena::run_named_query(&c, &d.workgroup, "ticklake-top-movers", Duration::from_millis(700), 10).await;
    http("POST", "/moto-api/state-manager/unset-transition", r#"{"model_name": "athena::execution"}"#).await;
    let o = o.unwrap();
    assert!(o.timed_out, "{o:?}");
    assert!(!o.succeeded());
    assert!(o.rows.is_empty());
    assert!(o.state_change_reason.unwrap().contains("timed out"));

    athena::delete(&c, &d, &owner, &acct).await.unwrap();
}
