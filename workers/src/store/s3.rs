//! Amazon S3 and S3-compatible stores through `aws-sdk-s3`.
//!
//! * Credentials and region come from the default AWS chain (environment, profile, IRSA web
//!   identity in EKS); `endpoint` and path-style addressing make MinIO and others work.
//! * Retries: the SDK's standard mode (exponential backoff with jitter, throttling and 5xx
//!   retried) with [`S3Options::max_attempts`] attempts.
//! * Objects above [`MULTIPART_THRESHOLD`] go up as a multipart upload in
//!   [`MULTIPART_PART_BYTES`] parts, aborted on failure so no parts are left billed.

use super::{ObjectMeta, ObjectStore, Result, StoreError, check_key};
use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 32 * 1024 * 1024;
/// Size of each part (S3's minimum is 5 MiB).
pub const MULTIPART_PART_BYTES: usize = 16 * 1024 * 1024;

/// How to reach the bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub bucket: String,
    pub region: Option<String>,
    /// e.g. `http://127.0.0.1:9000` for MinIO.
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    /// Attempts per request, including the first (default 8).
    pub max_attempts: Option<u32>,
}

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

fn s3err<E: ProvideErrorMetadata + std::fmt::Debug>(op: &'static str, key: &str, e: &E) -> StoreError {
    let detail = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => format!("{e:?}"),
    };
    StoreError::S3 { op, key: key.to_string(), detail }
}

impl S3Store {
    /// Builds a client from the default AWS configuration chain plus `opts`.
    pub async fn connect(opts: S3Options) -> Result<S3Store> {
        if opts.bucket.is_empty() {
            return Err(StoreError::Config("bucket is empty".into()));
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = &opts.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let shared = loader.load().await;
        let mut b = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(opts.max_attempts.unwrap_or(8)),
            )
            .force_path_style(opts.force_path_style);
        if shared.region().is_none() {
            // S3-compatible stores accept any region; AWS needs the real one.
            b = b.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(ep) = &opts.endpoint {
            b = b.endpoint_url(ep);
        }
        Ok(S3Store { client: aws_sdk_s3::Client::from_conf(b.build()), bucket: opts.bucket })
    }

    /// Creates the bucket when missing (tests, the local runner against MinIO).
    pub async fn ensure_bucket(&self) -> Result<()> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(_) => match self.client.create_bucket().bucket(&self.bucket).send().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let svc = e.into_service_error();
                    if svc.is_bucket_already_owned_by_you() || svc.is_bucket_already_exists() {
                        Ok(())
                    } else {
                        Err(s3err("create bucket", &self.bucket, &svc))
                    }
                }
            },
        }
    }

    async fn put_multipart(&self, key: &str, body: Bytes) -> Result<()> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3err("create multipart upload", key, &e.into_service_error()))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::S3 {
                op: "create multipart upload",
                key: key.into(),
                detail: "no upload id".into(),
            })?
            .to_string();
        let result: Result<Vec<CompletedPart>> = async {
            let mut parts = Vec::new();
            for (i, chunk) in body.chunks(MULTIPART_PART_BYTES).enumerate() {
                let n = i as i32 + 1;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(n)
                    .body(ByteStream::from(body.slice_ref(chunk)))
                    .send()
                    .await
                    .map_err(|e| s3err("upload part", key, &e.into_service_error()))?;
                parts.push(CompletedPart::builder().part_number(n).set_e_tag(out.e_tag().map(str::to_string)).build());
            }
            Ok(parts)
        }
        .await;
        match result {
            Ok(parts) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|e| s3err("complete multipart upload", key, &e.into_service_error()))?;
                Ok(())
            }
            Err(e) => {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        check_key(key)?;
        if body.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(key, body).await;
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3err("put", key, &e.into_service_error()))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        check_key(key)?;
        match self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if status == Some(412) {
                    return Ok(false);
                }
                Err(s3err("conditional put", key, &e.into_service_error()))
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        check_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| StoreError::S3 {
                    op: "get",
                    key: key.into(),
                    detail: e.to_string(),
                })?;
                Ok(Some(data.into_bytes()))
            }
            Err(e) => {
                let svc = e.into_service_error();
                if svc.is_no_such_key() { Ok(None) } else { Err(s3err("get", key, &svc)) }
            }
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let svc = e.into_service_error();
                if svc.is_not_found() { Ok(false) } else { Err(s3err("head", key, &svc)) }
            }
        }
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        while out.len() < limit {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys((limit - out.len()).min(1000) as i32);
            if let Some(t) = &token {
                req = req.continuation_token(t);
            } else if let Some(s) = start_after {
                req = req.start_after(s);
            }
            let page = req.send().await.map_err(|e| s3err("list", prefix, &e.into_service_error()))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectMeta { key: k.to_string(), size: o.size().unwrap_or(0).max(0) as u64 });
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3err("delete", key, &e.into_service_error()))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}
