//! Golden (snapshot) files: `tests/golden/<name>.txt` holds the expected text of a test.
//!
//! A test renders what it found as text and calls [`check`]. On a difference the test fails
//! and shows the first differing line. `TICKLAKE_UPDATE_GOLDEN=1 cargo test -p
//! ticklake-catalog` rewrites the files instead; review the change with `git diff`.

#![allow(dead_code)]

use std::path::PathBuf;

pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"))
}

pub fn check(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var("TICKLAKE_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("rewrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}\n(run with TICKLAKE_UPDATE_GOLDEN=1 to create it)\n--- actual ---\n{actual}", path.display())
    });
    if expected == actual {
        return;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let line = (0..e.len().max(a.len())).find(|&i| e.get(i) != a.get(i)).unwrap_or(0);
    panic!(
        "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
         If the change is intended, rerun with TICKLAKE_UPDATE_GOLDEN=1 and review `git diff`.\n--- actual ---\n{actual}",
        path.display(),
        line + 1,
        e.get(line).copied().unwrap_or("<end of file>"),
        a.get(line).copied().unwrap_or("<end of file>"),
    );
}

/// Writes `bytes` at `root/rel`, creating folders.
pub fn write(root: &std::path::Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}
