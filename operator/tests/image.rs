//! The container images (`Dockerfile` at the repository root) against the binaries they package.
//!
//! No container runtime is needed: the Dockerfile is parsed line by line and checked against
//! what the workspace builds — the binary names, the paths the ENTRYPOINTs run, the user the
//! operator's pods run as, the image name the operator gives its workers, the toolchain the
//! dependencies need, and the shared libraries (`ldd`) the release binaries load, which must
//! all be in the runtime base image or installed on top of it.
//!
//! The release binaries are read from the target directory: `ticklake-operator` is built for
//! this test by cargo; `ticklake` (another crate) must have been built before, as
//! `scripts/test.sh` does (`cargo test --release --workspace` compiles every binary before any
//! test runs). Run alone: `cargo build --release -p ticklake && cargo test --release -p
//! ticklake-operator --test image`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use ticklake_operator::render::{RenderConfig, WORKER_UID};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The two images: Dockerfile target, the binary it runs.
const TARGETS: [(&str, &str); 2] = [("operator", "ticklake-operator"), ("worker", "ticklake")];

/// One build stage: `FROM <from> [AS <name>]` and its instructions (keyword upper-cased, the
/// rest with line continuations joined).
#[derive(Debug)]
struct Stage {
    name: Option<String>,
    from: String,
    instructions: Vec<(String, String)>,
}

struct Dockerfile {
    text: String,
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn load() -> &'static Dockerfile {
        static D: OnceLock<Dockerfile> = OnceLock::new();
        D.get_or_init(|| {
            let text = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).expect("reading Dockerfile");
            let stages = parse_stages(&text);
            Dockerfile { text, stages }
        })
    }

    fn stage(&self, name: &str) -> &Stage {
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("Dockerfile has no stage `{name}` (`FROM … AS {name}`)"))
    }

    /// The stage and the stages it is built `FROM`, base first.
    fn chain(&self, name: &str) -> Vec<&Stage> {
        let mut chain = vec![self.stage(name)];
        while let Some(parent) = self.stages.iter().find(|s| s.name.as_deref() == Some(chain[0].from.as_str())) {
            assert!(chain.len() < self.stages.len(), "stages built FROM each other in a loop");
            chain.insert(0, parent);
        }
        chain
    }

    /// The image a stage finally rests on (not another stage).
    fn base_image(&self, name: &str) -> &str {
        &self.chain(name)[0].from
    }

    /// Arguments of every `keyword` instruction of a stage and its parents, in order.
    fn all(&self, name: &str, keyword: &str) -> Vec<&str> {
        self.chain(name)
            .into_iter()
            .flat_map(|s| s.instructions.iter())
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
            .collect()
    }

    /// What `apt-get install` installs in a stage and its parents.
    fn apt_packages(&self, name: &str) -> BTreeSet<String> {
        let mut pkgs = BTreeSet::new();
        for run in self.all(name, "RUN") {
            for (i, _) in run.match_indices("apt-get install") {
                let args = &run[i + "apt-get install".len()..];
                let end = [";", "&&", "||"].iter().filter_map(|sep| args.find(sep)).min().unwrap_or(args.len());
                pkgs.extend(args[..end].split_whitespace().filter(|w| !w.starts_with('-')).map(String::from));
            }
        }
        pkgs
    }

    /// `LABEL k="v" …` of a stage and its parents; later ones win.
    fn labels(&self, name: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        for label in self.all(name, "LABEL") {
            let mut rest = label.trim();
            while let Some(eq) = rest.find('=') {
                let key = rest[..eq].trim().to_string();
                let after = &rest[eq + 1..];
                let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
                    let end = quoted.find('"').expect("unterminated LABEL value");
                    (&quoted[..end], &quoted[end + 1..])
                } else {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                };
                labels.insert(key, value.to_string());
                rest = tail.trim_start();
            }
        }
        labels
    }
}

fn parse_stages(text: &str) -> Vec<Stage> {
    // Join `\` continuations; comment lines inside a continuation are dropped, as Docker does.
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    assert!(current.trim().is_empty(), "Dockerfile ends inside a line continuation");

    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let (keyword, rest) = (keyword.to_ascii_uppercase(), rest.trim().to_string());
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                [_] => None,
                _ => panic!("cannot read `FROM {rest}`"),
            };
            stages.push(Stage { name, from: words[0].to_string(), instructions: Vec::new() });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, rest));
        }
    }
    stages
}

/// `cargo metadata` of the workspace (locked, offline, this host's platform only).
fn metadata() -> &'static Value {
    static M: OnceLock<Value> = OnceLock::new();
    M.get_or_init(|| {
        let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let out = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", &host])
            .current_dir(ROOT)
            .output()
            .expect("running cargo metadata");
        assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON")
    })
}

/// A key of the root Cargo.toml's `[workspace.package]`.
fn workspace_package(key: &str) -> String {
    let toml = std::fs::read_to_string(format!("{ROOT}/Cargo.toml")).expect("reading Cargo.toml");
    let mut in_section = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section && let Some((k, v)) = line.split_once('=') {
            if k.trim() == key {
                return v.trim().trim_matches('"').to_string();
            }
        }
    }
    panic!("Cargo.toml has no [workspace.package] {key}")
}

fn version(s: &str) -> Vec<u64> {
    s.split('.').map(|p| p.parse().unwrap_or_else(|_| panic!("`{s}` is not a version"))).collect()
}

/// Where a release binary of the workspace is.
fn release_binary(name: &str) -> PathBuf {
    let operator = Path::new(env!("CARGO_BIN_EXE_ticklake-operator"));
    let path = operator.with_file_name(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo build --release -p {name}`; scripts/test.sh builds \
         every binary of the workspace before running the tests)",
        path.display()
    );
    path
}

#[test]
fn both_targets_exist_and_run_as_a_numeric_non_root_user() {
    let d = Dockerfile::load();
    for (target, _) in TARGETS {
        let users = d.all(target, "USER");
        let user = users.last().unwrap_or_else(|| panic!("target `{target}` sets no USER: it would run as root"));
        let (uid, gid) = user.split_once(':').unwrap_or((user, user));
        let uid: i64 = uid.parse().unwrap_or_else(|_| {
            panic!("target `{target}`: USER {user} is not numeric; the kubelet can only verify runAsNonRoot for a uid")
        });
        let gid: i64 =
            gid.parse().unwrap_or_else(|_| panic!("target `{target}`: USER {user}: the group is not numeric"));
        assert_ne!(uid, 0, "target `{target}` runs as root");
        // The operator renders the worker pods with this uid; one uid for both images.
        assert_eq!((uid, gid), (WORKER_UID, WORKER_UID), "target `{target}`: USER {user}");
    }
}

#[test]
fn entrypoints_run_the_binaries_the_builder_compiled() {
    let d = Dockerfile::load();
    let builds: Vec<&str> = d.all("builder", "RUN").into_iter().filter(|r| r.contains("cargo build")).collect();
    assert_eq!(builds.len(), 1, "the builder stage should have one `cargo build` step");
    let build = builds[0];
    for flag in ["--release", "--locked"] {
        assert!(build.contains(flag), "the builder's cargo build lacks {flag}: {build}");
    }

    // The binaries as the workspace names them.
    let bins: BTreeSet<String> = metadata()["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"].is_null())
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();

    let words: Vec<&str> = build.split(|c: char| c.is_whitespace() || c == ';').filter(|w| !w.is_empty()).collect();
    let file_name = |p: &str| Path::new(p).file_name().unwrap().to_string_lossy().to_string();

    for (target, bin) in TARGETS {
        assert!(bins.contains(bin), "the workspace builds no binary `{bin}` (it has {bins:?})");
        assert!(words.windows(2).any(|w| w == ["-p", bin]), "the builder's cargo build lacks -p {bin}: {build}");
        let release = format!("target/release/{bin}");
        assert!(words.contains(&release.as_str()), "the builder does not take {release} out of the cache mount");

        let entrypoints = d.all(target, "ENTRYPOINT");
        let entrypoint: Vec<String> = serde_json::from_str(entrypoints.last().expect("no ENTRYPOINT"))
            .unwrap_or_else(|e| panic!("target `{target}`: ENTRYPOINT is not in exec (JSON) form: {e}"));
        // The operator sets only `args` on the worker pods, so the ENTRYPOINT is the bare binary.
        assert_eq!(entrypoint.len(), 1, "target `{target}`: ENTRYPOINT {entrypoint:?} has arguments");
        let exe = entrypoint[0].as_str();

        // COPY --from=builder <src> <dest>: exactly one binary, this one, at the ENTRYPOINT's path.
        let copies: Vec<Vec<&str>> = d
            .all(target, "COPY")
            .into_iter()
            .filter_map(|c| c.strip_prefix("--from=builder "))
            .map(|c| c.split_whitespace().collect())
            .collect();
        assert_eq!(copies.len(), 1, "target `{target}`: one COPY --from=builder expected, got {copies:?}");
        let [src, dest] = copies[0][..] else { panic!("target `{target}`: COPY {:?}", copies[0]) };
        assert_eq!(dest, exe, "target `{target}`: copies {src} to {dest} but runs {exe}");
        assert_eq!(file_name(src), bin, "target `{target}` copies {src}");
        assert!(words.contains(&src), "target `{target}` copies {src}, which the build step does not write");
    }
}

#[test]
fn image_names_and_labels_follow_the_workspace() {
    let d = Dockerfile::load();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(version, workspace_package("version"));

    // The workspace version is the only version: none in the Dockerfile.
    let bounded = |i: usize, len: usize| {
        let before = d.text[..i].chars().last();
        let after = d.text[i + len..].chars().next();
        ![before, after].into_iter().flatten().any(|c| c.is_ascii_alphanumeric() || c == '.')
    };
    assert!(
        !d.text.match_indices(version).any(|(i, v)| bounded(i, v.len())),
        "the Dockerfile names version {version}: it must come from Cargo.toml (build ARG VERSION)"
    );

    // The header's build commands tag the worker image the operator renders by default, and the
    // operator image beside it.
    let worker_image = RenderConfig::default().worker_image;
    let worker_repo = worker_image.strip_suffix(&format!(":{version}")).expect("worker image tagged with the version");
    for (target, repo) in [("operator", format!("{worker_repo}-operator")), ("worker", worker_repo.to_string())] {
        let line = d
            .text
            .lines()
            .find(|l| l.contains("docker build") && l.contains(&format!("--target {target} ")))
            .unwrap_or_else(|| panic!("no documented `docker build --target {target}` command"));
        let tag = line.split_whitespace().skip_while(|w| *w != "-t").nth(1).expect("no -t");
        assert_eq!(tag, format!("{repo}:$VERSION"), "{line}");
        assert!(line.contains("--build-arg VERSION=$VERSION"), "{line}");

        let labels = d.labels(target);
        assert_eq!(labels.get("org.opencontainers.image.version").map(String::as_str), Some("${VERSION}"));
        assert_eq!(labels.get("org.opencontainers.image.licenses"), Some(&workspace_package("license")));
        assert_eq!(labels.get("org.opencontainers.image.source"), Some(&workspace_package("repository")));
        assert!(d.all(target, "ARG").contains(&"VERSION"), "target `{target}` does not bring ARG VERSION into scope");
    }
}

#[test]
fn builder_toolchain_is_new_enough() {
    let d = Dockerfile::load();
    let from = d.base_image("builder");
    let tag = from.strip_prefix("rust:").unwrap_or_else(|| panic!("the builder is not an official rust image: {from}"));
    let (rust, _) =
        tag.split_once('-').unwrap_or_else(|| panic!("builder {from}: name the Debian release (-bookworm)"));
    let rust = version(rust);
    assert_eq!(rust.len(), 3, "builder {from}: pin a full Rust version (1.x.y)");

    let mut needs = vec![("the workspace's rust-version".to_string(), workspace_package("rust-version"))];
    for p in metadata()["packages"].as_array().unwrap() {
        if let Some(v) = p["rust_version"].as_str() {
            needs.push((format!("{} {}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap()), v.to_string()));
        }
    }
    for (who, need) in needs {
        assert!(rust >= version(&need), "builder {from} is older than Rust {need}, which {who} needs");
    }

    // librdkafka's bundled build (rdkafka-sys `cmake-build`) needs cmake in the builder.
    let cmake_build = metadata()["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["id"].as_str().unwrap().contains("rdkafka-sys"))
        .any(|n| n["features"].as_array().unwrap().iter().any(|f| f == "cmake-build"));
    if cmake_build {
        assert!(d.apt_packages("builder").contains("cmake"), "the builder does not install cmake");
    }
}

/// Shared libraries (sonames) of Debian 12 packages, amd64 and arm64: from the packages' file
/// lists (`dpkg -L`, packages.debian.org/bookworm/<arch>/<package>/filelist).
fn package_sonames(package: &str) -> &'static [&'static str] {
    match package {
        "libc6" => &[
            "libc.so.6",
            "libm.so.6",
            "libpthread.so.0",
            "libdl.so.2",
            "librt.so.1",
            "libresolv.so.2",
            "libutil.so.1",
            "ld-linux-x86-64.so.2",
            "ld-linux-aarch64.so.1",
        ],
        "libgcc-s1" => &["libgcc_s.so.1"],
        "libstdc++6" => &["libstdc++.so.6"],
        "libgomp1" => &["libgomp.so.1"],
        "libssl3" => &["libssl.so.3", "libcrypto.so.3"],
        "zlib1g" => &["libz.so.1"],
        "libzstd1" => &["libzstd.so.1"],
        "libcurl4" => &["libcurl.so.4"],
        _ => &[],
    }
}

/// Debian packages a runtime base image is known to contain, and its Debian release.
/// * debian:bookworm-slim: only what every Debian system has and the binaries may rely on:
///   libc6 (Priority: required) and libgcc-s1 (a dependency of libc6). Anything else that
///   slim happens to carry (zlib1g, libzstd1 for dpkg) must be installed explicitly, so it
///   stays when the base changes.
/// * gcr.io/distroless/*-debian12: GoogleContainerTools/distroless `base/config.bzl`
///   (BASE_PACKAGES debian12: libc6, libssl3) and `cc/config.bzl` (CC_PACKAGES debian12:
///   libgomp1, libstdc++6, libgcc-s1, gcc-12-base). Debian 12 distroless has no zlib1g.
fn base_packages(image: &str) -> (&'static str, &'static [&'static str]) {
    let name = image.split(['@', ':']).next().unwrap();
    let tag = image.split('@').next().unwrap().split_once(':').map(|(_, t)| t).unwrap_or("latest");
    match name {
        "debian" if tag.starts_with("bookworm") || tag.starts_with("12") => ("bookworm", &["libc6", "libgcc-s1"]),
        "gcr.io/distroless/cc-debian12" => ("bookworm", &["libc6", "libssl3", "libgcc-s1", "libgomp1", "libstdc++6"]),
        "gcr.io/distroless/base-debian12" => ("bookworm", &["libc6", "libssl3"]),
        _ => panic!("runtime base {image}: unknown here; add its packages to base_packages()"),
    }
}

/// The sonames `ldd` says a binary loads; panics on any it cannot find.
fn ldd(binary: &Path) -> BTreeSet<String> {
    let out = Command::new("ldd").arg(binary).output().expect("running ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ldd {}: {text}{}", binary.display(), String::from_utf8_lossy(&out.stderr));
    let mut libs = BTreeSet::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(!line.contains("not found"), "ldd {}: {line}", binary.display());
        let first = line.split_whitespace().next().unwrap();
        let soname = Path::new(first).file_name().unwrap().to_string_lossy().to_string();
        if !soname.starts_with("linux-vdso") && !soname.starts_with("linux-gate") && line != "statically linked" {
            libs.insert(soname);
        }
    }
    libs
}

#[test]
fn binaries_need_only_libraries_the_runtime_image_has() {
    let d = Dockerfile::load();
    let builder_from = d.base_image("builder");
    for (target, bin) in TARGETS {
        let base = d.base_image(target);
        let (release, base_pkgs) = base_packages(base);
        // Linked against the builder's glibc: the runtime must be the same Debian release.
        assert!(builder_from.ends_with(&format!("-{release}")), "builder {builder_from} vs runtime {base} ({release})");

        let installed = d.apt_packages(target);
        if base.starts_with("gcr.io/distroless/") {
            // No shell, no apt: nothing can be installed on top of it with RUN.
            assert!(d.all(target, "RUN").is_empty(), "target `{target}`: RUN on {base}, which has no shell");
        }
        let provided: BTreeSet<&str> = base_pkgs
            .iter()
            .copied()
            .chain(installed.iter().map(String::as_str))
            .flat_map(package_sonames)
            .copied()
            .collect();
        let needed = ldd(&release_binary(bin));
        assert!(needed.contains("libc.so.6"), "ldd {bin}: {needed:?}");
        let missing: Vec<&String> = needed.iter().filter(|l| !provided.contains(l.as_str())).collect();
        assert!(
            missing.is_empty(),
            "target `{target}` ({base} + apt {installed:?}) lacks {missing:?}, which {bin} loads (ldd: {needed:?})"
        );
    }
}

/// Whether a `.dockerignore` pattern excludes `path` (a file's path from the repository root):
/// Go's filepath.Match per segment plus `**`, a pattern also excluding what is under it.
fn ignored(pattern: &str, path: &str) -> bool {
    fn segment(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => segment(&p[1..], s) || (!s.is_empty() && segment(p, &s[1..])),
            (Some(b'?'), Some(_)) => segment(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => segment(&p[1..], &s[1..]),
            _ => false,
        }
    }
    fn segments(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, _) => true, // a matched directory excludes everything below it
            (Some(&"**"), _) => segments(&p[1..], s) || (!s.is_empty() && segments(p, &s[1..])),
            (Some(ps), Some(ss)) => segment(ps.as_bytes(), ss.as_bytes()) && segments(&p[1..], &s[1..]),
            (Some(_), None) => false,
        }
    }
    let p: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segments(&p, &s)
}

#[test]
fn dockerignore_keeps_the_sources_and_drops_the_rest() {
    let text = std::fs::read_to_string(format!("{ROOT}/.dockerignore")).expect("reading .dockerignore");
    let patterns: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(!patterns.iter().any(|p| p.starts_with('!')), "exceptions (!) are not understood by this test");
    let excluded = |path: &str| patterns.iter().any(|p| ignored(p, path));

    for path in ["target/release/ticklake", ".git/HEAD", ".ticklake/log/x", "operator/target/x"] {
        assert!(excluded(path), ".dockerignore lets {path} into the build context");
    }

    // Every file of every workspace member, and the workspace's own manifest and lock.
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    let root = std::fs::canonicalize(ROOT).unwrap();
    for p in metadata()["packages"].as_array().unwrap().iter().filter(|p| p["source"].is_null()) {
        let dir = Path::new(p["manifest_path"].as_str().unwrap()).parent().unwrap().to_path_buf();
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    if entry.file_name() != "target" {
                        stack.push(path);
                    }
                } else {
                    needed.push(path.strip_prefix(&root).unwrap().to_string_lossy().to_string());
                }
            }
        }
    }
    assert!(needed.len() > 20, "found too few workspace files: {needed:?}");
    // And what the sources embed from outside their crate (`include_str!("../../deploy/…")`).
    let mut embedded = Vec::new();
    for file in needed.iter().filter(|f| f.ends_with(".rs")) {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for piece in text.split(macro_name).skip(1) {
                let Some(rel) = piece.split('"').next() else { continue };
                let base = Path::new(file).parent().unwrap();
                let mut parts: Vec<&str> = base.to_str().unwrap().split('/').filter(|p| !p.is_empty()).collect();
                for seg in rel.split('/') {
                    match seg {
                        ".." => {
                            parts.pop();
                        }
                        "." | "" => {}
                        s => parts.push(s),
                    }
                }
                embedded.push(parts.join("/"));
            }
        }
    }
    assert!(embedded.iter().any(|f| f.starts_with("deploy/athena/")), "the named queries are embedded: {embedded:?}");
    needed.extend(embedded);
    let dropped: Vec<&String> = needed.iter().filter(|f| excluded(f)).collect();
    assert!(dropped.is_empty(), ".dockerignore leaves out files the build needs: {dropped:?}");
}
