//! The Athena workgroup of an `S3Sink`, its named queries, and running one.
//!
//! **Workgroup.** Created from `spec.athena` with the result location and encryption, the
//! bytes-scanned cutoff, `EnforceWorkGroupConfiguration` (clients cannot send results
//! elsewhere) and CloudWatch metrics, tagged with the owner; updated when any of these drifts
//! (a cutoff dropped from the spec is removed), and enabled again when disabled by hand. A
//! workgroup of that name without our tags is left alone ([`ErrorKind::NotOwned`]).
//!
//! Checking tags needs the workgroup's ARN, which no Athena call returns: it is built from the
//! account, which the operator learns once with `sts:GetCallerIdentity` ([`caller_account`],
//! a call every identity may make) and passes to [`ensure`] and [`delete`].
//!
//! **Named queries** (Athena cannot tag them) belong to our workgroup and carry the
//! [`NAMED_QUERY_PREFIX`]: [`ensure`] creates the missing ones, restores edited SQL, and deletes
//! ours that are no longer desired — never a query of another name in the workgroup. Their SQL
//! is checked in under `deploy/athena/` with `{{database}}` and `{{table}}` placeholders; they
//! are made only for sinks with a Glue table (`spec.glue`) in Parquet (they read `event_time`).

use crate::error::{AwsError, ErrorKind};
use crate::tags::{OWNER_KEY, Owner};
use crate::{AwsSettings, Clients};
use aws_sdk_athena::error::ProvideErrorMetadata;
use aws_sdk_athena::types::{
    EncryptionConfiguration, EncryptionOption, NamedQuery, QueryExecutionContext, QueryExecutionState,
    ResultConfiguration, ResultConfigurationUpdates, Tag, WorkGroup, WorkGroupConfiguration,
    WorkGroupConfigurationUpdates, WorkGroupState,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use ticklake_api::crd::{AthenaEncryption, S3SinkSpec, SinkFormat};

const SERVICE: &str = "athena";

/// Names of the named queries ticklake owns start with this.
pub const NAMED_QUERY_PREFIX: &str = "ticklake-";
/// Most named queries of a workgroup [`ensure`] and [`run_named_query`] read.
pub const MAX_NAMED_QUERIES: usize = 1000;
/// Most rows [`run_named_query`] returns, whatever it is asked for.
pub const MAX_ROWS: usize = 1_000_000;

/// A named query's SQL template, from `deploy/athena/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryTemplate {
    /// `ticklake-latest-price`.
    pub name: &'static str,
    /// The file under `deploy/athena/`.
    pub file: &'static str,
    /// The SQL, with `{{database}}` and `{{table}}`; its leading `--` comment describes it.
    pub sql: &'static str,
}

/// The named queries every sink with a Glue table gets.
pub const QUERIES: [QueryTemplate; 4] = [
    QueryTemplate {
        name: "ticklake-latest-price",
        file: "latest-price.sql",
        sql: include_str!("../../deploy/athena/latest-price.sql"),
    },
    QueryTemplate {
        name: "ticklake-ohlcv-1m",
        file: "ohlcv-1m.sql",
        sql: include_str!("../../deploy/athena/ohlcv-1m.sql"),
    },
    QueryTemplate {
        name: "ticklake-top-movers",
        file: "top-movers.sql",
        sql: include_str!("../../deploy/athena/top-movers.sql"),
    },
    QueryTemplate {
        name: "ticklake-ticks-per-hour",
        file: "ticks-per-hour.sql",
        sql: include_str!("../../deploy/athena/ticks-per-hour.sql"),
    },
];

impl QueryTemplate {
    /// The leading comment, without the `-- <name>:` label, as one line.
    pub fn description(&self) -> String {
        let text: Vec<&str> = self
            .sql
            .lines()
            .map_while(|l| l.trim_start().strip_prefix("--"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let text = text.join(" ");
        let label = format!("{}:", self.name);
        text.strip_prefix(&label).unwrap_or(&text).trim().to_string()
    }

    /// The SQL for a table.
    pub fn render(&self, database: &str, table: &str) -> String {
        render(self.sql, database, table)
    }
}

/// Substitutes `{{database}}` and `{{table}}` (Glue names: lower-case letters, digits, `_`,
/// so they are safe inside the templates' double quotes).
pub fn render(sql: &str, database: &str, table: &str) -> String {
    assert!(safe_name(database) && safe_name(table), "Glue names are [a-z0-9_]: {database:?}.{table:?}");
    sql.replace("{{database}}", database).replace("{{table}}", table)
}

fn safe_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A named query as it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedQueryDesired {
    pub name: String,
    pub description: String,
    pub database: String,
    pub sql: String,
}

/// The workgroup of one sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AthenaDesired {
    pub workgroup: String,
    /// `s3://bucket/prefix/` for query results.
    pub result_location: String,
    pub encryption: AthenaEncryption,
    /// With [`AthenaEncryption::SseKms`].
    pub kms_key: Option<String>,
    /// BytesScannedCutoffPerQuery; `None` means no limit.
    pub bytes_cutoff: Option<i64>,
    pub named_queries: Vec<NamedQueryDesired>,
}

/// What [`ensure`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AthenaObserved {
    pub workgroup: String,
    /// `ENABLED` or `DISABLED`.
    pub state: Option<String>,
    pub output_location: Option<String>,
    /// Our named queries: name → id.
    pub named_queries: BTreeMap<String, String>,
    /// Human-readable, for Events.
    pub changes: Vec<String>,
}

/// An AWS account and its partition, for ARNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// `123456789012`.
    pub id: String,
    /// `aws`, `aws-cn`, `aws-us-gov`...
    pub partition: String,
}

impl Account {
    pub fn new(id: &str, partition: &str) -> Account {
        Account { id: id.to_string(), partition: partition.to_string() }
    }

    /// From an ARN of the account (`arn:aws:sts::123456789012:assumed-role/...`).
    pub fn from_arn(arn: &str) -> Option<Account> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, _, _, id, _] if !partition.is_empty() && !id.is_empty() => {
                Some(Account::new(id, partition))
            }
            _ => None,
        }
    }

    /// `arn:<partition>:athena:<region>:<account>:workgroup/<name>`.
    pub fn workgroup_arn(&self, region: &str, name: &str) -> String {
        format!("arn:{}:athena:{region}:{}:workgroup/{name}", self.partition, self.id)
    }
}

/// The account the default credential chain (with `settings`) belongs to, by
/// `sts:GetCallerIdentity`. The operator calls this once and keeps the answer.
pub async fn caller_account(settings: &AwsSettings) -> Result<Account, AwsError> {
    use aws_config::BehaviorVersion;
    use aws_config::retry::RetryConfig;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.unwrap_or(3).max(1)));
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    let sts = aws_sdk_sts::Client::new(&loader.load().await);
    let out = sts.get_caller_identity().send().await.map_err(|e| AwsError::from_sdk("sts", "GetCallerIdentity", e))?;
    let partition = out.arn().and_then(Account::from_arn).map(|a| a.partition).unwrap_or_else(|| "aws".into());
    match out.account() {
        Some(id) if !id.is_empty() => Ok(Account::new(id, &partition)),
        _ => Err(AwsError::new(ErrorKind::Other, "sts", "GetCallerIdentity", "no account in the answer")),
    }
}

// ------------------------------------------------------------------------------ desired (pure)

/// The named queries of a sink's table.
pub fn named_queries(database: &str, table: &str) -> Vec<NamedQueryDesired> {
    QUERIES
        .iter()
        .map(|q| NamedQueryDesired {
            name: q.name.to_string(),
            description: format!("{} (ticklake; deploy/athena/{})", q.description(), q.file),
            database: database.to_string(),
            sql: q.render(database, table),
        })
        .collect()
}

/// The workgroup of `spec` (None without `spec.athena`), with named queries over
/// `database`.`table` when the sink has a Glue table in Parquet.
pub fn desired(spec: &S3SinkSpec, database: &str, table: &str) -> Option<AthenaDesired> {
    let a = spec.athena.as_ref()?;
    let queries = spec.glue.is_some() && spec.format == SinkFormat::Parquet && safe_name(database) && safe_name(table);
    Some(AthenaDesired {
        workgroup: a.workgroup.clone(),
        result_location: a.result_location.clone(),
        encryption: a.encryption,
        kms_key: if a.encryption == AthenaEncryption::SseKms { a.kms_key.clone() } else { None },
        bytes_cutoff: a.bytes_scanned_cutoff_per_query.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        named_queries: if queries { named_queries(database, table) } else { Vec::new() },
    })
}

/// A workgroup's managed settings, for comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkGroupSettings {
    pub output_location: Option<String>,
    /// `(EncryptionOption, KmsKey)`; `None` for no encryption.
    pub encryption: Option<(String, Option<String>)>,
    pub bytes_cutoff: Option<i64>,
    pub enforce: bool,
    pub publish_metrics: bool,
    pub enabled: bool,
}

impl AthenaDesired {
    pub fn settings(&self) -> WorkGroupSettings {
        WorkGroupSettings {
            output_location: Some(self.result_location.clone()),
            encryption: match self.encryption {
                AthenaEncryption::SseS3 => Some(("SSE_S3".to_string(), None)),
                AthenaEncryption::SseKms => Some(("SSE_KMS".to_string(), self.kms_key.clone())),
                AthenaEncryption::None => None,
            },
            bytes_cutoff: self.bytes_cutoff,
            enforce: true,
            publish_metrics: true,
            enabled: true,
        }
    }
}

/// A workgroup's settings as Athena reports them.
pub fn workgroup_settings(w: &WorkGroup) -> WorkGroupSettings {
    let conf = w.configuration();
    let rc = conf.and_then(|c| c.result_configuration());
    WorkGroupSettings {
        output_location: rc.and_then(|r| r.output_location()).map(str::to_string),
        encryption: rc
            .and_then(|r| r.encryption_configuration())
            .map(|e| (e.encryption_option().as_str().to_string(), e.kms_key().map(str::to_string))),
        bytes_cutoff: conf.and_then(|c| c.bytes_scanned_cutoff_per_query()),
        enforce: conf.and_then(|c| c.enforce_work_group_configuration()).unwrap_or(false),
        publish_metrics: conf.and_then(|c| c.publish_cloud_watch_metrics_enabled()).unwrap_or(false),
        enabled: w.state().is_none_or(|s| *s == WorkGroupState::Enabled),
    }
}

/// The settings in which `have` differs from `want`.
pub fn workgroup_diff(want: &WorkGroupSettings, have: &WorkGroupSettings) -> Vec<&'static str> {
    let mut d = Vec::new();
    if want.output_location != have.output_location {
        d.push("OutputLocation");
    }
    if want.encryption != have.encryption {
        d.push("EncryptionConfiguration");
    }
    if want.bytes_cutoff != have.bytes_cutoff {
        d.push("BytesScannedCutoffPerQuery");
    }
    if want.enforce != have.enforce {
        d.push("EnforceWorkGroupConfiguration");
    }
    if want.publish_metrics != have.publish_metrics {
        d.push("PublishCloudWatchMetricsEnabled");
    }
    if want.enabled != have.enabled {
        d.push("State");
    }
    d
}

/// What to do with the named queries of a workgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamedQueryPlan {
    pub create: Vec<NamedQueryDesired>,
    /// (id, desired): SQL or description drifted.
    pub update: Vec<(String, NamedQueryDesired)>,
    /// (id, name): ours but not desired, duplicates, or in another database (Athena cannot
    /// move a named query to another database: deleted and created again).
    pub delete: Vec<(String, String)>,
}

/// An existing named query, as the plan reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedQueryFound {
    pub id: String,
    pub name: String,
    pub description: String,
    pub database: String,
    pub sql: String,
}

/// Compares the desired named queries with those found in the workgroup (only names with
/// [`NAMED_QUERY_PREFIX`] are ours; of several with one name the first by id is kept).
pub fn plan_named_queries(want: &[NamedQueryDesired], found: &[NamedQueryFound]) -> NamedQueryPlan {
    let mut plan = NamedQueryPlan::default();
    let mut ours: BTreeMap<&str, Vec<&NamedQueryFound>> = BTreeMap::new();
    for f in found.iter().filter(|f| f.name.starts_with(NAMED_QUERY_PREFIX)) {
        ours.entry(f.name.as_str()).or_default().push(f);
    }
    for list in ours.values_mut() {
        list.sort_by(|a, b| a.id.cmp(&b.id));
    }
    for w in want {
        match ours.remove(w.name.as_str()) {
            None => plan.create.push(w.clone()),
            Some(list) => {
                let (keep, extra) = list.split_first().expect("entries are never empty");
                plan.delete.extend(extra.iter().map(|f| (f.id.clone(), f.name.clone())));
                if keep.database != w.database {
                    plan.delete.push((keep.id.clone(), keep.name.clone()));
                    plan.create.push(w.clone());
                } else if keep.sql != w.sql || keep.description != w.description {
                    plan.update.push((keep.id.clone(), w.clone()));
                }
            }
        }
    }
    for list in ours.into_values() {
        plan.delete.extend(list.into_iter().map(|f| (f.id.clone(), f.name.clone())));
    }
    plan
}

// ------------------------------------------------------------------------------ AWS

fn err<E, R>(operation: &'static str) -> impl FnOnce(aws_sdk_athena::error::SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    move |e| AwsError::from_sdk(SERVICE, operation, e)
}

fn invalid(operation: &'static str) -> impl FnOnce(aws_sdk_athena::error::BuildError) -> AwsError {
    move |e| AwsError::new(ErrorKind::Invalid, SERVICE, operation, e.to_string())
}

/// The workgroup, `None` when missing (Athena answers InvalidRequestException "... is not
/// found"; moto a `null` workgroup).
async fn get_workgroup(c: &Clients, name: &str) -> Result<Option<WorkGroup>, AwsError> {
    match c.athena.get_work_group().work_group(name).send().await.map_err(err("GetWorkGroup")) {
        Ok(out) => Ok(out.work_group().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The workgroup's tags; none when Athena says it has none or cannot find it.
async fn workgroup_tags(c: &Clients, arn: String) -> Result<HashMap<String, String>, AwsError> {
    let mut tags = HashMap::new();
    let mut token = None;
    for _ in 0..100 {
        let out = match c
            .athena
            .list_tags_for_resource()
            .resource_arn(&arn)
            .set_next_token(token)
            .send()
            .await
            .map_err(err("ListTagsForResource"))
        {
            Ok(out) => out,
            // moto answers an untagged resource with InvalidRequestException "... Does Not Exist".
            Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Invalid) => return Ok(tags),
            Err(e) => return Err(e),
        };
        for t in out.tags() {
            if let (Some(k), Some(v)) = (t.key(), t.value()) {
                tags.insert(k.to_string(), v.to_string());
            }
        }
        token = out.next_token().map(str::to_string).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    Ok(tags)
}

fn encryption(s: &WorkGroupSettings) -> Result<Option<EncryptionConfiguration>, AwsError> {
    s.encryption
        .as_ref()
        .map(|(option, key)| {
            EncryptionConfiguration::builder()
                .encryption_option(EncryptionOption::from(option.as_str()))
                .set_kms_key(key.clone())
                .build()
                .map_err(invalid("CreateWorkGroup"))
        })
        .transpose()
}

async fn create_workgroup(c: &Clients, d: &AthenaDesired, owner: &Owner) -> Result<(), AwsError> {
    let s = d.settings();
    let conf = WorkGroupConfiguration::builder()
        .result_configuration(
            ResultConfiguration::builder()
                .set_output_location(s.output_location.clone())
                .set_encryption_configuration(encryption(&s)?)
                .build(),
        )
        .enforce_work_group_configuration(s.enforce)
        .publish_cloud_watch_metrics_enabled(s.publish_metrics)
        .set_bytes_scanned_cutoff_per_query(s.bytes_cutoff)
        .build();
    let tags = owner.tags().into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    c.athena
        .create_work_group()
        .name(&d.workgroup)
        .description(workgroup_description(owner))
        .configuration(conf)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(err("CreateWorkGroup"))?;
    Ok(())
}

fn workgroup_description(owner: &Owner) -> String {
    format!("ticklake: queries of {} (managed by the ticklake operator)", owner.id())
}

async fn update_workgroup(c: &Clients, d: &AthenaDesired, have: &WorkGroupSettings) -> Result<(), AwsError> {
    let s = d.settings();
    let mut rc = ResultConfigurationUpdates::builder().set_output_location(s.output_location.clone());
    rc = match encryption(&s)? {
        Some(e) => rc.encryption_configuration(e),
        None => rc.remove_encryption_configuration(true),
    };
    let mut upd = WorkGroupConfigurationUpdates::builder()
        .enforce_work_group_configuration(s.enforce)
        .publish_cloud_watch_metrics_enabled(s.publish_metrics)
        .result_configuration_updates(rc.build());
    upd = match s.bytes_cutoff {
        Some(b) => upd.bytes_scanned_cutoff_per_query(b),
        None if have.bytes_cutoff.is_some() => upd.remove_bytes_scanned_cutoff_per_query(true),
        None => upd,
    };
    c.athena
        .update_work_group()
        .work_group(&d.workgroup)
        .configuration_updates(upd.build())
        .state(WorkGroupState::Enabled)
        .send()
        .await
        .map_err(err("UpdateWorkGroup"))?;
    Ok(())
}

/// Every named query in the workgroup (at most [`MAX_NAMED_QUERIES`]).
async fn list_named_queries(c: &Clients, workgroup: &str) -> Result<Vec<NamedQueryFound>, AwsError> {
    let mut ids = Vec::new();
    let mut token = None;
    while ids.len() < MAX_NAMED_QUERIES {
        let out = c
            .athena
            .list_named_queries()
            .work_group(workgroup)
            .set_next_token(token)
            .send()
            .await
            .map_err(err("ListNamedQueries"))?;
        ids.extend(out.named_query_ids().iter().cloned());
        token = out.next_token().map(str::to_string).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    ids.truncate(MAX_NAMED_QUERIES);
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let q = match c.athena.get_named_query().named_query_id(&id).send().await.map_err(err("GetNamedQuery")) {
            Ok(out) => out.named_query().cloned(),
            Err(e) if e.is_not_found() => None, // deleted meanwhile
            Err(e) => return Err(e),
        };
        if let Some(q) = q {
            found.push(found_query(&id, &q));
        }
    }
    Ok(found)
}

fn found_query(id: &str, q: &NamedQuery) -> NamedQueryFound {
    NamedQueryFound {
        id: q.named_query_id().unwrap_or(id).to_string(),
        name: q.name().to_string(),
        description: q.description().unwrap_or_default().to_string(),
        database: q.database().to_string(),
        sql: q.query_string().to_string(),
    }
}

async fn create_named_query(c: &Clients, workgroup: &str, q: &NamedQueryDesired) -> Result<String, AwsError> {
    let out = c
        .athena
        .create_named_query()
        .work_group(workgroup)
        .name(&q.name)
        .description(&q.description)
        .database(&q.database)
        .query_string(&q.sql)
        .send()
        .await
        .map_err(err("CreateNamedQuery"))?;
    Ok(out.named_query_id().unwrap_or_default().to_string())
}

/// Creates or updates the workgroup and its named queries. `account` gives the workgroup's
/// ARN for the ownership check ([`caller_account`]).
pub async fn ensure(
    c: &Clients,
    d: &AthenaDesired,
    owner: &Owner,
    account: &Account,
) -> Result<AthenaObserved, AwsError> {
    let mut changes = Vec::new();
    let wg = &d.workgroup;
    let have = match get_workgroup(c, wg).await? {
        None => {
            match create_workgroup(c, d, owner).await {
                Ok(()) => changes.push(format!("created Athena workgroup {wg}")),
                // Created meanwhile (a concurrent reconcile): checked below like any other.
                Err(e) if e.kind == ErrorKind::Invalid && e.message.to_lowercase().contains("already") => {}
                Err(e) => return Err(e),
            }
            get_workgroup(c, wg).await?.ok_or_else(|| {
                AwsError::new(
                    ErrorKind::NotFound,
                    SERVICE,
                    "GetWorkGroup",
                    format!("workgroup {wg} not found after creating it"),
                )
            })?
        }
        Some(have) => have,
    };
    if !owner.owns(&workgroup_tags(c, account.workgroup_arn(&c.region, wg)).await?) {
        return Err(AwsError::new(
            ErrorKind::NotOwned,
            SERVICE,
            "ListTagsForResource",
            format!("workgroup {wg} exists but is not tagged {OWNER_KEY}={}: left alone", owner.id()),
        ));
    }
    let mut settings = workgroup_settings(&have);
    let diff = workgroup_diff(&d.settings(), &settings);
    if !diff.is_empty() {
        update_workgroup(c, d, &settings).await?;
        changes.push(format!("updated Athena workgroup {wg} ({})", diff.join(", ")));
        settings = d.settings();
    }

    let found = list_named_queries(c, wg).await?;
    let plan = plan_named_queries(&d.named_queries, &found);
    let mut ids: BTreeMap<String, String> = found
        .iter()
        .filter(|f| f.name.starts_with(NAMED_QUERY_PREFIX))
        .map(|f| (f.name.clone(), f.id.clone()))
        .collect();
    for (id, name) in &plan.delete {
        match c.athena.delete_named_query().named_query_id(id).send().await.map_err(err("DeleteNamedQuery")) {
            Ok(_) => changes.push(format!("deleted named query {name} ({id})")),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        if ids.get(name) == Some(id) {
            ids.remove(name);
        }
    }
    for (id, q) in &plan.update {
        c.athena
            .update_named_query()
            .named_query_id(id)
            .name(&q.name)
            .description(&q.description)
            .query_string(&q.sql)
            .send()
            .await
            .map_err(err("UpdateNamedQuery"))?;
        changes.push(format!("restored named query {}", q.name));
    }
    for q in &plan.create {
        let id = create_named_query(c, wg, q).await?;
        changes.push(format!("created named query {}", q.name));
        ids.insert(q.name.clone(), id);
    }
    // Keep only the desired ones (deleted duplicates may have shared a name).
    ids.retain(|name, _| d.named_queries.iter().any(|q| &q.name == name));
    Ok(AthenaObserved {
        workgroup: wg.clone(),
        state: Some(if settings.enabled { "ENABLED" } else { "DISABLED" }.to_string()),
        output_location: settings.output_location,
        named_queries: ids,
        changes,
    })
}

/// Deletes the workgroup with its named queries (RecursiveDeleteOption) if it is ours; a
/// missing one counts as deleted, another's is left alone. Answers what it deleted.
pub async fn delete(c: &Clients, d: &AthenaDesired, owner: &Owner, account: &Account) -> Result<Vec<String>, AwsError> {
    let wg = &d.workgroup;
    if get_workgroup(c, wg).await?.is_none() {
        return Ok(Vec::new());
    }
    if !owner.owns(&workgroup_tags(c, account.workgroup_arn(&c.region, wg)).await?) {
        tracing::info!(workgroup = %wg, owner = %owner.id(), "Athena workgroup is not ours: left alone");
        return Ok(Vec::new());
    }
    match c
        .athena
        .delete_work_group()
        .work_group(wg)
        .recursive_delete_option(true)
        .send()
        .await
        .map_err(err("DeleteWorkGroup"))
    {
        Ok(_) => Ok(vec![format!("deleted Athena workgroup {wg} and its named queries")]),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

// ------------------------------------------------------------------------------ running a query

/// The result of [`run_named_query`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOutcome {
    pub query_execution_id: String,
    /// `SUCCEEDED`, `FAILED`, `CANCELLED`, or the last state seen when it timed out.
    pub state: String,
    /// Why it failed or was cancelled.
    pub state_change_reason: Option<String>,
    /// The timeout passed: the query was stopped.
    pub timed_out: bool,
    pub columns: Vec<String>,
    /// Athena types (`varchar`, `double`, `timestamp`...).
    pub column_types: Vec<String>,
    /// Values as Athena returns them (strings); `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows than `max_rows` exist.
    pub truncated: bool,
    pub data_scanned_bytes: Option<i64>,
    pub execution_ms: Option<i64>,
}

impl QueryOutcome {
    pub fn succeeded(&self) -> bool {
        self.state == "SUCCEEDED"
    }
}

/// Runs the named query `name` of `workgroup` in its database, waits for it (polling with
/// backoff, at most `timeout`, then stops it), and reads at most `max_rows` rows of the
/// result (capped at [`MAX_ROWS`]). A failed or cancelled query is an `Ok` outcome with its
/// reason; an unknown name is [`ErrorKind::NotFound`].
pub async fn run_named_query(
    c: &Clients,
    workgroup: &str,
    name: &str,
    timeout: Duration,
    max_rows: usize,
) -> Result<QueryOutcome, AwsError> {
    let max_rows = max_rows.min(MAX_ROWS);
    let query = list_named_queries(c, workgroup).await?.into_iter().find(|q| q.name == name).ok_or_else(|| {
        AwsError::new(
            ErrorKind::NotFound,
            SERVICE,
            "ListNamedQueries",
            format!("no named query {name:?} in workgroup {workgroup}"),
        )
    })?;
    let started = Instant::now();
    let out = c
        .athena
        .start_query_execution()
        .query_string(&query.sql)
        .work_group(workgroup)
        .query_execution_context(QueryExecutionContext::builder().database(&query.database).build())
        .send()
        .await
        .map_err(err("StartQueryExecution"))?;
    let id = out.query_execution_id().unwrap_or_default().to_string();
    let mut outcome = QueryOutcome { query_execution_id: id.clone(), ..QueryOutcome::default() };
    let mut pause = Duration::from_millis(100);
    loop {
        let exec =
            c.athena.get_query_execution().query_execution_id(&id).send().await.map_err(err("GetQueryExecution"))?;
        let exec = exec.query_execution();
        let status = exec.and_then(|e| e.status());
        let state = status.and_then(|s| s.state()).cloned().unwrap_or(QueryExecutionState::Queued);
        outcome.state = state.as_str().to_string();
        outcome.state_change_reason = status.and_then(|s| s.state_change_reason()).map(str::to_string);
        let stats = exec.and_then(|e| e.statistics());
        outcome.data_scanned_bytes = stats.and_then(|s| s.data_scanned_in_bytes());
        outcome.execution_ms =
            stats.and_then(|s| s.total_execution_time_in_millis().or(s.engine_execution_time_in_millis()));
        match state {
            QueryExecutionState::Succeeded => break,
            QueryExecutionState::Failed | QueryExecutionState::Cancelled => return Ok(outcome),
            _ => {}
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            match c
                .athena
                .stop_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .map_err(err("StopQueryExecution"))
            {
                Ok(_) => {}
                Err(e) => tracing::warn!(query_execution_id = %id, error = %e, "stopping the timed-out query failed"),
            }
            outcome.timed_out = true;
            outcome.state_change_reason = Some(format!("timed out after {} s: stopped", timeout.as_secs_f64()));
            return Ok(outcome);
        }
        tokio::time::sleep(pause.min(timeout - elapsed)).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
    read_results(c, &id, max_rows, &mut outcome).await?;
    Ok(outcome)
}

async fn read_results(c: &Clients, id: &str, max_rows: usize, outcome: &mut QueryOutcome) -> Result<(), AwsError> {
    let mut token: Option<String> = None;
    let mut first = true;
    loop {
        let page = c
            .athena
            .get_query_results()
            .query_execution_id(id)
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(err("GetQueryResults"))?;
        let Some(rs) = page.result_set() else { break };
        let mut rows: Vec<Vec<Option<String>>> = rs
            .rows()
            .iter()
            .map(|r| r.data().iter().map(|d| d.var_char_value().map(str::to_string)).collect())
            .collect();
        if first {
            first = false;
            let info = rs.result_set_metadata().map(|m| m.column_info()).unwrap_or_default();
            outcome.columns = info.iter().map(|c| c.label().unwrap_or(c.name()).to_string()).collect();
            outcome.column_types = info.iter().map(|c| c.r#type().to_string()).collect();
            // The first row of a SELECT's first page is the header.
            if let Some(header) = rows.first() {
                let names: Vec<Option<String>> = outcome.columns.iter().cloned().map(Some).collect();
                if outcome.columns.is_empty() {
                    outcome.columns = header.iter().map(|h| h.clone().unwrap_or_default()).collect();
                    rows.remove(0);
                } else if *header == names {
                    rows.remove(0);
                }
            }
        }
        for r in rows {
            if outcome.rows.len() == max_rows {
                outcome.truncated = true;
                return Ok(());
            }
            outcome.rows.push(r);
        }
        token = page.next_token().map(str::to_string).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> S3SinkSpec {
        let mut v = serde_json::json!({"topic": "ticks", "bucket": "lake", "prefix": "ticks",
            "athena": {"workgroup": "wg", "resultLocation": "s3://results/athena/"}});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn templates_render_completely() {
        assert_eq!(QUERIES.len(), 4);
        for q in QUERIES {
            assert!(q.name.starts_with(NAMED_QUERY_PREFIX));
            assert!(q.sql.contains("{{database}}") && q.sql.contains("{{table}}"), "{}", q.file);
            let sql = q.render("lake_db", "ticks_v2");
            assert!(!sql.contains("{{") && !sql.contains("}}"), "{}: leftover placeholder", q.file);
            assert!(sql.contains("FROM \"lake_db\".\"ticks_v2\""), "{}", q.file);
            // Superficial SQL checks: a SELECT, balanced parentheses and quotes, no `;` (Athena
            // runs one statement), partition pruning on year/month/day.
            let body: String = sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
            assert!(body.trim_start().starts_with("SELECT"), "{}", q.file);
            let depth = body.chars().try_fold(0i32, |d, ch| {
                let d = d + (ch == '(') as i32 - (ch == ')') as i32;
                (d >= 0).then_some(d)
            });
            assert_eq!(depth, Some(0), "{}: unbalanced parentheses", q.file);
            assert_eq!(body.matches('\'').count() % 2, 0, "{}: unbalanced quotes", q.file);
            assert_eq!(body.matches('"').count() % 2, 0, "{}", q.file);
            assert!(!body.contains(';'), "{}", q.file);
            for p in ["year", "month", "day"] {
                assert!(
                    body.contains(&format!("AND {p} ")) || body.contains(&format!("WHERE {p} ")),
                    "{}: {p}",
                    q.file
                );
            }
            // The leading comment names the query and says what it does.
            assert!(q.sql.starts_with(&format!("-- {}:", q.name)), "{}", q.file);
            assert!(q.description().len() > 30 && !q.description().starts_with("ticklake-"), "{}", q.description());
            // Only columns the Parquet schema (or the partitions) have.
            for word in ["ts_us", "timestamp_us", "ts "] {
                assert!(!body.contains(word), "{}: {word}", q.file);
            }
        }
        let names: Vec<&str> = QUERIES.iter().map(|q| q.name).collect();
        assert_eq!(
            names,
            ["ticklake-latest-price", "ticklake-ohlcv-1m", "ticklake-top-movers", "ticklake-ticks-per-hour"]
        );
    }

    #[test]
    #[should_panic(expected = "Glue names")]
    fn rendering_refuses_unsafe_names() {
        render("SELECT 1 FROM \"{{database}}\".\"{{table}}\"", "db\"; DROP", "t");
    }

    #[test]
    fn desired_workgroup_and_queries() {
        assert_eq!(desired(&spec(serde_json::json!({"athena": null})), "db", "t"), None);
        // Without Glue: a workgroup, no named queries.
        let d = desired(&spec(serde_json::json!({})), "", "").unwrap();
        assert_eq!(d.workgroup, "wg");
        assert_eq!(d.result_location, "s3://results/athena/");
        assert_eq!(d.encryption, AthenaEncryption::SseS3);
        assert_eq!(d.bytes_cutoff, None);
        assert!(d.named_queries.is_empty());
        let s = spec(serde_json::json!({"glue": {"database": "lake"},
            "athena": {"workgroup": "wg", "resultLocation": "s3://r/", "encryption": "SSE_KMS", "kmsKey": "k",
                       "bytesScannedCutoffPerQuery": 10485760}}));
        let d = desired(&s, "lake", "ticks").unwrap();
        assert_eq!(d.kms_key.as_deref(), Some("k"));
        assert_eq!(d.bytes_cutoff, Some(10485760));
        assert_eq!(d.named_queries.len(), 4);
        let q = &d.named_queries[0];
        assert_eq!((q.name.as_str(), q.database.as_str()), ("ticklake-latest-price", "lake"));
        assert!(q.sql.contains("\"lake\".\"ticks\""));
        assert!(q.description.contains("deploy/athena/latest-price.sql"), "{}", q.description);
        // JSON lines objects have no event_time: no named queries.
        let s = spec(serde_json::json!({"format": "jsonLines", "glue": {"database": "lake"}}));
        assert!(desired(&s, "lake", "ticks").unwrap().named_queries.is_empty());
        assert_eq!(
            d.settings(),
            WorkGroupSettings {
                output_location: Some("s3://r/".into()),
                encryption: Some(("SSE_KMS".into(), Some("k".into()))),
                bytes_cutoff: Some(10485760),
                enforce: true,
                publish_metrics: true,
                enabled: true,
            }
        );
    }

    #[test]
    fn workgroup_comparison() {
        let d = desired(&spec(serde_json::json!({})), "", "").unwrap();
        let want = d.settings();
        let mut have = want.clone();
        assert!(workgroup_diff(&want, &have).is_empty());
        have.bytes_cutoff = Some(1 << 30);
        have.encryption = None;
        have.enabled = false;
        assert_eq!(workgroup_diff(&want, &have), ["EncryptionConfiguration", "BytesScannedCutoffPerQuery", "State"]);
        // Read back from Athena's shape.
        let wg = WorkGroup::builder()
            .name("wg")
            .state(WorkGroupState::Enabled)
            .configuration(
                WorkGroupConfiguration::builder()
                    .result_configuration(
                        ResultConfiguration::builder()
                            .output_location("s3://results/athena/")
                            .encryption_configuration(encryption(&want).unwrap().unwrap())
                            .build(),
                    )
                    .enforce_work_group_configuration(true)
                    .publish_cloud_watch_metrics_enabled(true)
                    .build(),
            )
            .build()
            .unwrap();
        assert_eq!(workgroup_settings(&wg), want);
    }

    fn found(id: &str, name: &str, db: &str, sql: &str, description: &str) -> NamedQueryFound {
        NamedQueryFound {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            database: db.into(),
            sql: sql.into(),
        }
    }

    #[test]
    fn named_query_plans() {
        let want = named_queries("lake", "ticks");
        let [a, b, c, d] = [&want[0], &want[1], &want[2], &want[3]];
        let have = vec![
            found("1", &a.name, "lake", &a.sql, &a.description),     // as desired
            found("2", &b.name, "lake", "SELECT 1", &b.description), // SQL edited
            found("3", &b.name, "lake", &b.sql, &b.description),     // duplicate
            found("4", &c.name, "other", &c.sql, &c.description),    // other database
            found("5", "ticklake-retired", "lake", "SELECT 2", ""),  // ours, not desired
            found("6", "my-own-query", "lake", "SELECT 3", ""),      // someone else's
        ];
        let plan = plan_named_queries(&want, &have);
        assert_eq!(plan.update, vec![("2".to_string(), b.clone())]);
        assert_eq!(plan.create, vec![c.clone(), d.clone()]);
        let mut deleted: Vec<&str> = plan.delete.iter().map(|(id, _)| id.as_str()).collect();
        deleted.sort();
        assert_eq!(deleted, ["3", "4", "5"]);
        // All in place: nothing to do.
        let have: Vec<NamedQueryFound> = want
            .iter()
            .enumerate()
            .map(|(i, q)| found(&i.to_string(), &q.name, &q.database, &q.sql, &q.description))
            .collect();
        assert_eq!(plan_named_queries(&want, &have), NamedQueryPlan::default());
    }

    #[test]
    fn accounts_and_arns() {
        let a = Account::from_arn("arn:aws-cn:sts::123456789012:assumed-role/r/s").unwrap();
        assert_eq!(a, Account::new("123456789012", "aws-cn"));
        assert_eq!(a.workgroup_arn("cn-north-1", "wg"), "arn:aws-cn:athena:cn-north-1:123456789012:workgroup/wg");
        assert_eq!(Account::from_arn("nonsense"), None);
    }
}
