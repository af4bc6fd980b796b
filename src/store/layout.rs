//! Where a metric's whisper file lives under the whisper directory, as carbon lays it out:
//! `a.b.c` → `a/b/c.wsp`; a tagged series `name;tag=value` → `_tagged/<h[0..3]>/<h[3..6]>/`
//! followed by the name with `.` written `_DOT_` (h = sha256 hex of the normalized tagged
//! name), or the bare hash when that file name would be too long for the filesystem.
//!
//! Every path built here stays inside the whisper directory: a name with an empty, `.` or `..`
//! node, a `/` or a NUL is refused ([`relative_path`] returns `None`).

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// Longest file name most filesystems accept, in bytes.
const MAX_FILE_NAME: usize = 255;

/// The sha256 of a tagged series' normalized name, in lowercase hex (carbon's encoding).
pub fn tagged_hash(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn node_is_safe(node: &str) -> bool {
    !node.is_empty() && node != "." && node != ".." && !node.contains(['/', '\0'])
}

/// The file of `name`, relative to the whisper directory; `None` for a name that cannot be
/// stored safely.
pub fn relative_path(name: &str) -> Option<PathBuf> {
    if name.contains(';') {
        if name.contains(['/', '\0']) {
            return None;
        }
        let hash = tagged_hash(name);
        let readable = format!("{}.wsp", name.replace('.', "_DOT_"));
        let file = if readable.len() <= MAX_FILE_NAME {
            readable
        } else {
            format!("{hash}.wsp")
        };
        let mut p = PathBuf::from("_tagged");
        p.push(&hash[0..3]);
        p.push(&hash[3..6]);
        p.push(file);
        return Some(p);
    }
    let mut p = PathBuf::new();
    let mut nodes = name.split('.').peekable();
    while let Some(node) = nodes.next() {
        if !node_is_safe(node) || node.len() + 4 > MAX_FILE_NAME {
            return None;
        }
        if nodes.peek().is_some() {
            p.push(node);
        } else {
            p.push(format!("{node}.wsp"));
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tagged_paths() {
        assert_eq!(relative_path("a.b.c").unwrap(), PathBuf::from("a/b/c.wsp"));
        let p = relative_path("some.metric;tag1=value2;tag2=value.2").unwrap();
        let h = tagged_hash("some.metric;tag1=value2;tag2=value.2");
        assert_eq!(
            p,
            PathBuf::from(format!(
                "_tagged/{}/{}/some_DOT_metric;tag1=value2;tag2=value_DOT_2.wsp",
                &h[0..3],
                &h[3..6]
            ))
        );
        let long = format!("m;t={}", "x".repeat(300));
        assert!(relative_path(&long)
            .unwrap()
            .ends_with(format!("{}.wsp", tagged_hash(&long))));
    }

    #[test]
    fn refuses_escapes() {
        for bad in [
            "", "a..b", ".a", "a.", "a/b", "..", "a.../b", "a\0b", "x;t=a/b",
        ] {
            assert!(relative_path(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn hash_matches_sha256() {
        assert_eq!(
            tagged_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
