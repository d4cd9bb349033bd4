//! Reading ticklake manifests — the same YAML users `kubectl apply` — from files and folders.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use ticklake_api::crd::{AlertSubscription, S3Sink, StockStream};

/// One resource read from a manifest.
#[derive(Debug, Clone)]
pub enum Resource {
    StockStream(StockStream),
    S3Sink(S3Sink),
    AlertSubscription(AlertSubscription),
}

impl Resource {
    pub fn name(&self) -> String {
        let m = match self {
            Resource::StockStream(r) => &r.metadata,
            Resource::S3Sink(r) => &r.metadata,
            Resource::AlertSubscription(r) => &r.metadata,
        };
        m.name.clone().unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Every `.yaml`/`.yml` file in `paths` (folders read one level deep, in name order), every
/// document in each. Documents of other kinds are skipped with a note; a ticklake document
/// that does not match its schema is an error naming the file and document.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Resource>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            bail!("{} does not exist", p.display());
        }
    }
    let mut out = Vec::new();
    for f in files {
        out.extend(load_file(&f)?);
    }
    Ok(out)
}

fn load_file(path: &Path) -> Result<Vec<Resource>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc)
            .with_context(|| format!("{}: document {} is not YAML", path.display(), i + 1))?;
        if value.is_null() {
            continue;
        }
        let tm: TypeMeta =
            serde_yaml::from_value(value.clone()).with_context(|| format!("{}: document {}", path.display(), i + 1))?;
        if !tm.api_version.starts_with("ticklake.dev/") {
            tracing::info!(file = %path.display(), kind = %tm.kind, "not a ticklake resource; skipped");
            continue;
        }
        let ctx = || format!("{}: document {} ({})", path.display(), i + 1, tm.kind);
        let r = match tm.kind.as_str() {
            "StockStream" => Resource::StockStream(serde_yaml::from_value(value).with_context(ctx)?),
            "S3Sink" => Resource::S3Sink(serde_yaml::from_value(value).with_context(ctx)?),
            "AlertSubscription" => Resource::AlertSubscription(serde_yaml::from_value(value).with_context(ctx)?),
            other => bail!("{}: unknown ticklake kind {other:?}", ctx()),
        };
        if r.name().is_empty() {
            bail!("{}: metadata.name is required", ctx());
        }
        out.push(r);
    }
    Ok(out)
}

/// Reads exactly one resource of the expected kind (the worker's mounted configuration).
pub fn load_one(path: &Path) -> Result<Resource> {
    let mut rs = load_file(path)?;
    match rs.len() {
        1 => Ok(rs.remove(0)),
        n => bail!("{} holds {n} ticklake resources; a worker reads exactly one", path.display()),
    }
}
