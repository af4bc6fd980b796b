//! Metric names as carbon accepts them, and the rules that keep every name storable inside
//! the data directory.
//!
//! A plain name is dot-separated nodes. A tagged name is `name;tag=value;…` (carbon 1.1 /
//! graphite-web's `TaggedSeries`), normalized to the name followed by its tags sorted by tag,
//! so `cpu;host=a;dc=x` and `cpu;dc=x;host=a` are one series.
//!
//! Refused (each a counted bad line): an empty node (`a..b`, `.a`, `a.`), a node longer than
//! 250 bytes, `/`, NUL or any control character, invalid UTF-8, and tags carbon refuses.

use std::borrow::Cow;
use std::fmt;

/// Longest node (the part between dots) in bytes: the node becomes a file or directory name.
pub const MAX_NODE_LEN: usize = 250;

/// Why a metric name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// `a..b`, a leading or trailing dot.
    EmptyNode,
    /// A node longer than [`MAX_NODE_LEN`] bytes.
    NodeTooLong,
    /// `/`, NUL or a control character, which could not be a file name.
    ForbiddenChar(char),
    /// A tag segment carbon refuses, with the reason.
    BadTag(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("empty metric name"),
            NameError::EmptyNode => {
                f.write_str("empty path component ('..', or a leading/trailing '.')")
            }
            NameError::NodeTooLong => write!(f, "path component longer than {MAX_NODE_LEN} bytes"),
            NameError::ForbiddenChar(c) => write!(f, "forbidden character {c:?} in metric name"),
            NameError::BadTag(m) => write!(f, "bad tag: {m}"),
        }
    }
}

fn check_chars(s: &str) -> Result<(), NameError> {
    match s.chars().find(|&c| c == '/' || c.is_control()) {
        Some(c) => Err(NameError::ForbiddenChar(c)),
        None => Ok(()),
    }
}

fn check_nodes(s: &str) -> Result<(), NameError> {
    for node in s.split('.') {
        if node.is_empty() {
            return Err(NameError::EmptyNode);
        }
        if node.len() > MAX_NODE_LEN {
            return Err(NameError::NodeTooLong);
        }
    }
    Ok(())
}

/// The hot path: one pass over the bytes of a plain ASCII name. `true` when it is a valid
/// plain name (no tags, no forbidden character, no empty or over-long node); `false` when
/// the full rules must decide (non-ASCII, tags, or an error to name precisely).
pub fn is_simple_valid(b: &[u8]) -> bool {
    let mut node_len = 0usize;
    for &c in b {
        if c == b'.' {
            if node_len == 0 {
                return false;
            }
            node_len = 0;
            continue;
        }
        // Control characters, DEL, '/', ';' (tags) and any non-ASCII byte leave the fast path.
        if !(0x20..0x7f).contains(&c) || c == b'/' || c == b';' {
            return false;
        }
        node_len += 1;
    }
    // Checking the node length once per node would cost a branch per byte; nodes are
    // short, so check the longest only when the whole name could hold a long one.
    node_len > 0
        && (b.len() <= MAX_NODE_LEN || b.split(|&c| c == b'.').all(|n| n.len() <= MAX_NODE_LEN))
}

/// Validates a metric name and normalizes tags: `Cow::Borrowed` for a plain name (no
/// allocation on the hot path), `Cow::Owned` for a re-ordered tagged name.
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, NameError> {
    if is_simple_valid(raw.as_bytes()) {
        return Ok(Cow::Borrowed(raw));
    }
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    check_chars(raw)?;
    if !raw.contains(';') {
        check_nodes(raw)?;
        return Ok(Cow::Borrowed(raw));
    }
    let mut segments = raw.split(';');
    let metric = segments.next().unwrap_or("");
    if metric.is_empty() {
        return Err(NameError::BadTag(format!(
            "cannot parse path {raw}, no metric found"
        )));
    }
    // graphite-web's sanitize_name_as_tag_value: the series is named without leading '~'.
    let metric = metric.trim_start_matches('~');
    if metric.is_empty() {
        return Err(NameError::BadTag(format!(
            "metric name of {raw} is empty once '~' is removed"
        )));
    }
    check_nodes(metric)?;
    let mut tags: Vec<(&str, &str)> = Vec::new();
    for seg in segments {
        let Some((tag, value)) = seg.split_once('=') else {
            return Err(NameError::BadTag(format!("invalid segment {seg:?}")));
        };
        if tag.is_empty() {
            return Err(NameError::BadTag(format!("invalid segment {seg:?}")));
        }
        if let Some(c) = tag.chars().find(|c| ";!^=".contains(*c)) {
            return Err(NameError::BadTag(format!(
                "character {c:?} is not allowed in tag {tag:?}"
            )));
        }
        if value.is_empty() {
            return Err(NameError::BadTag(format!(
                "value for tag {tag:?} may not be empty"
            )));
        }
        if value.starts_with('~') {
            return Err(NameError::BadTag(format!(
                "tag values may not start with '~' (tag {tag:?})"
            )));
        }
        if tag == "name" {
            // graphite-web overwrites a `name` tag with the metric; drop it the same way.
            continue;
        }
        match tags.iter_mut().find(|(t, _)| *t == tag) {
            Some(slot) => slot.1 = value,
            None => tags.push((tag, value)),
        }
    }
    if tags.is_empty() {
        return Ok(Cow::Owned(metric.to_string()));
    }
    // graphite-web's TaggedSeries.format sorts the ';tag=value' strings.
    let mut parts: Vec<String> = tags.iter().map(|(t, v)| format!(";{t}={v}")).collect();
    parts.sort();
    let mut out = String::with_capacity(raw.len());
    out.push_str(metric);
    for p in parts {
        out.push_str(&p);
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_unchanged() {
        assert!(matches!(
            normalize("collectd.web1.load.load.shortterm"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(normalize("münchen.temp").is_ok());
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(normalize(""), Err(NameError::Empty));
        assert_eq!(normalize("a..b"), Err(NameError::EmptyNode));
        assert_eq!(normalize(".a"), Err(NameError::EmptyNode));
        assert_eq!(normalize("a."), Err(NameError::EmptyNode));
        assert_eq!(normalize("a/../../etc"), Err(NameError::ForbiddenChar('/')));
        assert_eq!(normalize("a\u{0}b"), Err(NameError::ForbiddenChar('\0')));
        assert_eq!(normalize(&"x".repeat(251)), Err(NameError::NodeTooLong));
        assert!(normalize("a;b").is_err());
        assert!(normalize("a;=v").is_err());
        assert!(normalize("a;t=").is_err());
        assert!(normalize("a;t=~v").is_err());
        assert!(normalize("a;t!x=v").is_err());
        assert!(normalize(";t=v").is_err());
    }

    #[test]
    fn fast_path_agrees_with_the_rules() {
        let long = format!("a.{}", "x".repeat(251));
        let ok = format!("a.{}", "x".repeat(250));
        for name in [
            "a",
            "a.b.c",
            "a..b",
            ".a",
            "a.",
            "",
            "a/b",
            "a\u{1}b",
            "a\u{7f}",
            "a;b=c",
            "münchen.t",
            &long,
            &ok,
            "a b",
        ] {
            let fast = is_simple_valid(name.as_bytes());
            if fast {
                assert!(
                    check_chars(name).is_ok() && check_nodes(name).is_ok() && !name.contains(';'),
                    "{name:?}"
                );
            }
        }
        assert!(is_simple_valid(ok.as_bytes()));
        assert!(!is_simple_valid(long.as_bytes()));
        assert_eq!(normalize(&long), Err(NameError::NodeTooLong));
    }

    #[test]
    fn tags_are_sorted() {
        assert_eq!(normalize("cpu;host=a;dc=x").unwrap(), "cpu;dc=x;host=a");
        assert_eq!(normalize("cpu;dc=x;host=a").unwrap(), "cpu;dc=x;host=a");
        assert_eq!(normalize("disk.used;b=1;a=2").unwrap(), "disk.used;a=2;b=1");
        assert_eq!(normalize("~x.y;b=2;a=1").unwrap(), "x.y;a=1;b=2");
        assert!(normalize("~~;a=1").is_err());
    }
}
