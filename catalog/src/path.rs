//! Percent-encoding of relative paths in URLs.
//!
//! A catalog records a file as a URL (`file:///…/` or `s3://bucket/…`) while grouping and
//! partition discovery work on the decoded relative path. The two functions here are the only
//! conversion between them, so a Hive folder such as `k=a%2Fb` (Hive's own escape of `/`)
//! survives the round trip: it is `k=a%252Fb` in a URL and `k=a%2Fb` on disk.
//!
//! Pure: no I/O, so the fuzz targets and the pure grouping core use it without the store.

use std::fmt::Write as _;

/// Percent-encodes a relative path for a URL: every byte but `A-Z a-z 0-9 - . _ ~`, the
/// sub-delimiters `! $ & ' ( ) * + , ; =`, `:`, `@` and `/` becomes `%XX` (so a Hive folder
/// `k=a%2Fb` is `k=a%252Fb` in a URL, and decodes back to its name).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Undoes [`encode_path`] (any `%XX`); `None` when the result is not UTF-8.
pub fn decode_path(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}
