//! A read-only [`ObjectStore`] over one S3 (or S3-compatible: MinIO) bucket, on `aws-sdk-s3`.
//!
//! DataFusion reads files through `object_store`. Its own S3 backend needs `reqwest` and `ring`;
//! ticklake already links `aws-sdk-s3` (with IRSA, retries and MinIO's path-style addressing
//! configured once), so this adapter maps the four read operations onto it — ranged `GET`,
//! `HEAD`, and `ListObjectsV2` with and without a delimiter — and refuses every write. The
//! refusal is the point: the SQL engine's object stores cannot change data, whatever the SQL.

use std::fmt;
use std::ops::Range;

use aws_sdk_s3::error::ProvideErrorMetadata;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

const STORE: &str = "S3 (read-only)";

/// How to reach S3: the default AWS chain plus an optional endpoint (MinIO) and region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:9000`; path-style addressing is used when set.
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl S3Config {
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, and `AWS_REGION`, from the environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        S3Config { endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")), region: var("AWS_REGION") }
    }

    /// A client for this configuration.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = &self.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let shared = loader.load().await;
        let mut b = aws_sdk_s3::config::Builder::from(&shared).force_path_style(self.endpoint.is_some());
        if shared.region().is_none() {
            b = b.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(ep) = &self.endpoint {
            b = b.endpoint_url(ep);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}

/// One bucket, read-only.
#[derive(Clone)]
pub struct ReadOnlyS3 {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl ReadOnlyS3 {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        ReadOnlyS3 { client, bucket: bucket.into() }
    }

    /// The URL DataFusion registers this store under: `s3://<bucket>`.
    pub fn url(&self) -> ObjectStoreUrl {
        // A bucket name is a valid host; an invalid one never gets here (see `table::location`).
        ObjectStoreUrl::parse(format!("s3://{}", self.bucket)).expect("a bucket name is a valid URL host")
    }
}

impl fmt::Debug for ReadOnlyS3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadOnlyS3({})", self.bucket)
    }
}

impl fmt::Display for ReadOnlyS3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{} (read-only)", self.bucket)
    }
}

fn generic<E: ProvideErrorMetadata + fmt::Debug>(op: &str, path: &str, e: &E) -> object_store::Error {
    let detail = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => format!("{e:?}"),
    };
    object_store::Error::Generic { store: STORE, source: format!("{op} {path}: {detail}").into() }
}

fn not_found_or<E: ProvideErrorMetadata + fmt::Debug>(op: &str, path: &str, e: &E) -> object_store::Error {
    if matches!(e.code(), Some("NoSuchKey" | "NotFound")) {
        return object_store::Error::NotFound { path: path.to_string(), source: format!("{op}: no such key").into() };
    }
    generic(op, path, e)
}

fn read_only(op: &str) -> object_store::Error {
    object_store::Error::NotSupported { source: format!("{op}: the SQL engine's object stores are read-only").into() }
}

fn time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())).unwrap_or_default()
}

/// What `object_store` knows of an object, from a HeadObject or GetObject reply.
fn object_meta(
    location: &Path,
    last_modified: Option<&aws_sdk_s3::primitives::DateTime>,
    size: u64,
    e_tag: Option<&str>,
) -> ObjectMeta {
    ObjectMeta {
        location: location.clone(),
        last_modified: time(last_modified),
        size,
        e_tag: e_tag.map(str::to_string),
        version: None,
    }
}

fn range_header(r: &GetRange) -> String {
    match r {
        GetRange::Bounded(b) => format!("bytes={}-{}", b.start, b.end.saturating_sub(1)),
        GetRange::Offset(o) => format!("bytes={o}-"),
        GetRange::Suffix(n) => format!("bytes=-{n}"),
    }
}

/// `Content-Range: bytes a-b/size` → (a..b+1, size).
fn parse_content_range(v: &str) -> Option<(Range<u64>, u64)> {
    let rest = v.strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b, size): (u64, u64, u64) = (a.parse().ok()?, b.parse().ok()?, size.parse().ok()?);
    Some((a..b + 1, size))
}

impl ReadOnlyS3 {
    async fn list_page(
        &self,
        prefix: Option<&Path>,
        delimiter: bool,
        token: Option<String>,
    ) -> object_store::Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output> {
        let prefix = prefix.map(|p| format!("{p}/")).filter(|p| p != "/");
        let mut req = self.client.list_objects_v2().bucket(&self.bucket).set_prefix(prefix.clone());
        if delimiter {
            req = req.delimiter("/");
        }
        req.set_continuation_token(token)
            .send()
            .await
            .map_err(|e| generic("ListObjectsV2", prefix.as_deref().unwrap_or(""), &e))
    }
}

fn meta_of(o: &aws_sdk_s3::types::Object) -> Option<ObjectMeta> {
    let location = Path::parse(o.key()?).ok()?;
    Some(object_meta(&location, o.last_modified(), o.size().unwrap_or(0).max(0) as u64, o.e_tag()))
}

#[async_trait::async_trait]
impl ObjectStore for ReadOnlyS3 {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> object_store::Result<PutResult> {
        Err(read_only("put"))
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only("multipart put"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let key = location.to_string();
        if options.head {
            let out = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| not_found_or("HeadObject", &key, &e))?;
            let size = out.content_length().unwrap_or(0).max(0) as u64;
            let meta = object_meta(location, out.last_modified(), size, out.e_tag());
            options.check_preconditions(&meta)?;
            return Ok(GetResult {
                payload: GetResultPayload::Stream(stream::empty().boxed()),
                meta,
                range: 0..0,
                attributes: Default::default(),
            });
        }
        let mut req = self.client.get_object().bucket(&self.bucket).key(&key);
        if let Some(r) = &options.range {
            req = req.range(range_header(r));
        }
        let out = req.send().await.map_err(|e| not_found_or("GetObject", &key, &e))?;
        let length = out.content_length().unwrap_or(0).max(0) as u64;
        let (range, size) = match out.content_range().and_then(parse_content_range) {
            Some((r, size)) => (r, size),
            None => (0..length, length),
        };
        let meta = object_meta(location, out.last_modified(), size, out.e_tag());
        options.check_preconditions(&meta)?;
        let body = out.body;
        let key_for_err = key.clone();
        let chunks = stream::unfold(Some(body), move |body| {
            let key = key_for_err.clone();
            async move {
                let mut body = body?;
                match body.try_next().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
                    Ok(None) => None,
                    Err(e) => Some((
                        Err(object_store::Error::Generic {
                            store: STORE,
                            source: format!("reading {key}: {e}").into(),
                        }),
                        None,
                    )),
                }
            }
        });
        Ok(GetResult {
            payload: GetResultPayload::Stream(chunks.map(|r: object_store::Result<Bytes>| r).boxed()),
            meta,
            range,
            attributes: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations.map(|_| Err(read_only("delete"))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.cloned();
        // (next token, done)
        stream::unfold((None::<String>, false), move |(token, done)| {
            let this = this.clone();
            let prefix = prefix.clone();
            async move {
                if done {
                    return None;
                }
                match this.list_page(prefix.as_ref(), false, token).await {
                    Ok(page) => {
                        let next = page.next_continuation_token().map(str::to_string);
                        let done = next.is_none();
                        let metas: Vec<object_store::Result<ObjectMeta>> =
                            page.contents().iter().filter_map(meta_of).map(Ok).collect();
                        Some((stream::iter(metas), (next, done)))
                    }
                    Err(e) => Some((stream::iter(vec![Err(e)]), (None, true))),
                }
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut result = ListResult { common_prefixes: Vec::new(), objects: Vec::new() };
        let mut token = None;
        loop {
            let page = self.list_page(prefix, true, token).await?;
            result.objects.extend(page.contents().iter().filter_map(meta_of));
            for p in page.common_prefixes() {
                if let Some(p) = p.prefix().and_then(|p| Path::parse(p.trim_end_matches('/')).ok()) {
                    result.common_prefixes.push(p);
                }
            }
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(result),
            }
        }
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> object_store::Result<()> {
        Err(read_only("copy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_content_ranges() {
        assert_eq!(range_header(&GetRange::Bounded(10..20)), "bytes=10-19");
        assert_eq!(range_header(&GetRange::Suffix(8)), "bytes=-8");
        assert_eq!(range_header(&GetRange::Offset(5)), "bytes=5-");
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10..20, 100)));
        assert_eq!(parse_content_range("bytes */100"), None);
    }
}
