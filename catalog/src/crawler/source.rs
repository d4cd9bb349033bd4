//! Where a crawl reads: a local folder or an S3-compatible prefix. Listing gives each file's
//! size and change tag; reading fetches only the sample (the first [`Limits::sample_bytes`])
//! and, for Parquet, the footer from the end — ranged GETs on S3, conditional on the listed
//! ETag (`If-Match`), so a file that changes mid-crawl is reported and read again next time.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use aws_sdk_s3::error::DisplayErrorContext;

use crate::crawl::{CrawlOptions, CrawlReport, Problem, walk};
use crate::error::CatalogError;
use crate::group::GroupOptions;
use crate::sniff::FileSample;
use crate::store::{decode_path, encode_path};
use crate::{Inspected, Limits, inspect};

use super::CrawlError;

/// What a crawl covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute local folder.
    Local(PathBuf),
    /// A bucket and a key prefix (empty, or ending in `/`).
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// `s3://bucket/prefix/`, `file:///abs/dir/` or a local path (which must be a folder).
    /// URLs are percent-decoded.
    pub fn parse(s: &str) -> Result<Location, CrawlError> {
        let bad = |reason: &str| CrawlError::Location(format!("{s:?}: {reason}"));
        if let Some(rest) = s.strip_prefix("s3://") {
            let rest = decode_path(rest).ok_or_else(|| bad("not UTF-8 once decoded"))?;
            let (bucket, prefix) = rest.split_once('/').unwrap_or((&rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            let mut prefix = prefix.to_string();
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix });
        }
        let path = if let Some(rest) = s.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("file URLs are file:///absolute/path"));
            }
            PathBuf::from(decode_path(rest).ok_or_else(|| bad("not UTF-8 once decoded"))?)
        } else if s.contains("://") {
            return Err(bad("use s3://bucket/prefix/, file:///path or a path"));
        } else {
            PathBuf::from(s)
        };
        let abs = std::fs::canonicalize(&path).map_err(|e| bad(&e.to_string()))?;
        if !abs.is_dir() {
            return Err(bad("not a folder"));
        }
        if abs.to_str().is_none() {
            return Err(bad("the path is not UTF-8"));
        }
        Ok(Location::Local(abs))
    }

    /// The root URL, ending in `/`, percent-encoded.
    pub fn url(&self) -> String {
        match self {
            Location::Local(p) => {
                let s = p.to_str().unwrap_or_default().trim_end_matches('/');
                format!("file://{}/", encode_path(s))
            }
            Location::S3 { bucket, prefix } => format!("s3://{}/{}", encode_path(bucket), encode_path(prefix)),
        }
    }

    /// The name a table at the root gets by default: the folder's (or the prefix's last
    /// segment, or the bucket's) name.
    pub fn default_table_name(&self) -> String {
        match self {
            Location::Local(p) => p.file_name().and_then(|n| n.to_str()).unwrap_or("root").to_string(),
            Location::S3 { bucket, prefix } => {
                prefix.trim_end_matches('/').rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or(bucket).to_string()
            }
        }
    }
}

/// How to reach S3 (or MinIO).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL; default: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint: Option<String>,
    /// Region; default: the AWS default chain, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing; default: on when an endpoint is set (MinIO).
    pub force_path_style: Option<bool>,
}

/// One listed file.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub path: String,
    pub size: u64,
    pub tag: String,
}

#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub files: Vec<Listed>,
    pub hidden: usize,
    pub problems: Vec<Problem>,
}

/// Reads files of one location.
pub(crate) enum Reader {
    Local(PathBuf),
    S3 { client: aws_sdk_s3::Client, bucket: String, prefix: String },
}

/// Bytes read from the end of a Parquet file at first (as `inspect_file`).
const TAIL_BYTES: u64 = 64 * 1024;

fn hidden(path: &str) -> bool {
    path.split('/').any(|s| s.starts_with('.') || s.starts_with('_'))
}

pub(crate) async fn s3_client(cfg: &S3Config) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &cfg.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    let shared = loader.load().await;
    let endpoint = cfg
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty());
    let mut b =
        aws_sdk_s3::config::Builder::from(&shared).force_path_style(cfg.force_path_style.unwrap_or(endpoint.is_some()));
    if shared.region().is_none() {
        b = b.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(ep) = endpoint {
        b = b.endpoint_url(ep);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

impl Reader {
    pub async fn new(location: &Location, s3: &S3Config) -> Reader {
        match location {
            Location::Local(p) => Reader::Local(p.clone()),
            Location::S3 { bucket, prefix } => {
                Reader::S3 { client: s3_client(s3).await, bucket: bucket.clone(), prefix: prefix.clone() }
            }
        }
    }

    /// Every file (hidden ones counted, not listed); more than `max_files` is an error.
    pub async fn list(&self, max_files: usize, group: &GroupOptions) -> Result<Listing, CrawlError> {
        match self {
            Reader::Local(root) => {
                let (root, opts) = (root.clone(), CrawlOptions { group: group.clone(), max_files, skip_hidden: true });
                tokio::task::spawn_blocking(move || {
                    let mut report = CrawlReport::default();
                    let mut files = Vec::new();
                    walk(&root, "", 0, &opts, &mut files, &mut report)?;
                    let mut listing =
                        Listing { hidden: report.hidden, problems: report.unreadable, ..Listing::default() };
                    for f in files {
                        match std::fs::symlink_metadata(&f.abs) {
                            Ok(m) => {
                                let nanos = m
                                    .modified()
                                    .ok()
                                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                                    .map(|d| d.as_nanos())
                                    .unwrap_or(0);
                                listing.files.push(Listed { path: f.rel, size: m.len(), tag: nanos.to_string() })
                            }
                            Err(e) => listing.problems.push(Problem { path: f.rel, reason: e.to_string() }),
                        }
                    }
                    Ok::<_, CatalogError>(listing)
                })
                .await
                .map_err(|e| CrawlError::Io(e.to_string()))?
                .map_err(CrawlError::Catalog)
            }
            Reader::S3 { client, bucket, prefix } => {
                let mut listing = Listing::default();
                let mut token: Option<String> = None;
                loop {
                    let mut req = client.list_objects_v2().bucket(bucket).prefix(prefix.as_str()).max_keys(1000);
                    if let Some(t) = token.take() {
                        req = req.continuation_token(t);
                    }
                    let page = req.send().await.map_err(|e| {
                        CrawlError::S3(format!("listing s3://{bucket}/{prefix}: {}", DisplayErrorContext(e)))
                    })?;
                    for o in page.contents() {
                        let Some(key) = o.key() else { continue };
                        let Some(rel) = key.strip_prefix(prefix.as_str()) else { continue };
                        if rel.is_empty() || rel.ends_with('/') {
                            continue; // the prefix itself or a folder marker
                        }
                        if hidden(rel) {
                            listing.hidden += 1;
                            continue;
                        }
                        listing.files.push(Listed {
                            path: rel.to_string(),
                            size: o.size().unwrap_or(0).max(0) as u64,
                            tag: o.e_tag().unwrap_or_default().to_string(),
                        });
                        if listing.files.len() > max_files {
                            return Err(CrawlError::Catalog(CatalogError::Limit {
                                what: "the number of files".into(),
                                limit: max_files as u64,
                                option: "max_files",
                            }));
                        }
                    }
                    match page.next_continuation_token() {
                        Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Ok(listing)
            }
        }
    }

    /// `len` bytes at `from` (fewer at the end of the file).
    async fn read(&self, f: &Listed, from: u64, len: u64) -> Result<Vec<u8>, String> {
        if len == 0 {
            return Ok(Vec::new());
        }
        match self {
            Reader::Local(root) => {
                let path = root.join(&f.path);
                tokio::task::spawn_blocking(move || {
                    let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                    let mut buf = vec![0u8; len as usize];
                    let mut got = 0;
                    while got < buf.len() {
                        match file.read_at(&mut buf[got..], from + got as u64) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    buf.truncate(got);
                    Ok(buf)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Reader::S3 { client, bucket, prefix } => {
                let mut req = client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{}", f.path))
                    .range(format!("bytes={from}-{}", from + len - 1));
                if !f.tag.is_empty() {
                    req = req.if_match(&f.tag);
                }
                let out = req.send().await.map_err(|e| {
                    let e = e.into_service_error();
                    if e.meta().code() == Some("PreconditionFailed") {
                        "changed while being crawled (ETag differs from the listing)".to_string()
                    } else {
                        DisplayErrorContext(e).to_string()
                    }
                })?;
                let body = out.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
                if body.len() as u64 > len {
                    return Err(format!("asked for {len} bytes, got {}: the store ignored the range", body.len()));
                }
                Ok(body.to_vec())
            }
        }
    }

    /// Reads a file's sample (and Parquet footer) and inspects it. `Err` is a read failure
    /// (retried next crawl); `Ok((Err(_), _))` a file that is not readable data. The count is
    /// the bytes fetched.
    pub async fn sample(&self, f: &Listed, limits: &Limits) -> Result<(Result<Inspected, CatalogError>, u64), String> {
        let head = self.read(f, 0, (limits.sample_bytes as u64).min(f.size)).await?;
        let mut fetched = head.len() as u64;
        let mut tail = Vec::new();
        if head.starts_with(b"PAR1") && (head.len() as u64) < f.size {
            let n = TAIL_BYTES.min(f.size);
            tail = self.read(f, f.size - n, n).await?;
            fetched += tail.len() as u64;
        }
        let run = |head: Vec<u8>, tail: Vec<u8>| {
            let (name, len, limits) = (f.path.clone(), f.size, limits.clone());
            tokio::task::spawn_blocking(move || {
                let r = inspect(&FileSample { name: &name, len, head: &head, tail: &tail }, &limits);
                (r, head)
            })
        };
        let (result, head) = run(head, tail).await.map_err(|e| e.to_string())?;
        match result {
            Err(CatalogError::NeedTail { bytes }) if bytes <= f.size && bytes <= limits.max_footer_bytes as u64 + 8 => {
                let tail = self.read(f, f.size - bytes, bytes).await?;
                fetched += tail.len() as u64;
                let (result, _) = run(head, tail).await.map_err(|e| e.to_string())?;
                Ok((result, fetched))
            }
            other => Ok((other, fetched)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_print_as_urls() {
        let s3 = Location::parse("s3://lake/ticks").unwrap();
        assert_eq!(s3, Location::S3 { bucket: "lake".into(), prefix: "ticks/".into() });
        assert_eq!(s3.url(), "s3://lake/ticks/");
        assert_eq!(s3.default_table_name(), "ticks");
        let bucket = Location::parse("s3://lake").unwrap();
        assert_eq!((bucket.url().as_str(), bucket.default_table_name().as_str()), ("s3://lake/", "lake"));
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("my data");
        std::fs::create_dir(&sub).unwrap();
        let local = Location::parse(sub.to_str().unwrap()).unwrap();
        let url = local.url();
        assert!(url.starts_with("file:///") && url.ends_with("/my%20data/"), "{url}");
        assert_eq!(Location::parse(&url).unwrap(), local, "the URL parses back");
        assert!(Location::parse("ftp://x/").is_err());
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse(dir.path().join("missing").to_str().unwrap()).is_err());
    }

    #[test]
    fn hidden_segments() {
        assert!(hidden("_ticklake/claims/x.json"));
        assert!(hidden("a/.x.crc"));
        assert!(!hidden("year=2026/a.parquet"));
    }
}
