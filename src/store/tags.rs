//! The tag index: every tagged series (`name;tag=value;…`) known on disk or in the cache,
//! by tag and value, for `seriesByTag` and the `/tags` API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use parking_lot::RwLock;

/// Tags of one series: `name` plus each `tag=value`, sorted by tag.
pub type TagSet = BTreeMap<String, String>;

/// Parses a normalized tagged name `name;a=1;b=2` into its tags (with `name`), as
/// graphite-web's `TaggedSeries.parse`. `None` if a segment has no `=`.
pub fn parse_tagged(series: &str) -> Option<TagSet> {
    let mut parts = series.split(';');
    let name = parts.next()?;
    let mut tags = TagSet::new();
    for seg in parts {
        let (k, v) = seg.split_once('=')?;
        if k.is_empty() {
            return None;
        }
        tags.insert(k.to_string(), v.to_string());
    }
    tags.insert("name".into(), name.trim_start_matches('~').to_string());
    Some(tags)
}

#[derive(Debug, Default)]
struct Inner {
    /// tag → value → series.
    by_tag: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    series: BTreeSet<String>,
}

/// The tag index; `&self` methods, internally locked.
#[derive(Debug, Default)]
pub struct TagIndex {
    inner: RwLock<Inner>,
}

impl TagIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a normalized tagged series; returns whether it was new.
    pub fn insert(&self, series: &str) -> bool {
        if self.inner.read().series.contains(series) {
            return false;
        }
        let Some(tags) = parse_tagged(series) else {
            return false;
        };
        let mut inner = self.inner.write();
        if !inner.series.insert(series.to_string()) {
            return false;
        }
        for (k, v) in tags {
            inner.by_tag.entry(k).or_default().entry(v).or_default().insert(series.to_string());
        }
        true
    }

    /// Whether the series is known.
    pub fn contains(&self, series: &str) -> bool {
        self.inner.read().series.contains(series)
    }

    /// Every known series, sorted.
    pub fn all_series(&self) -> Vec<String> {
        self.inner.read().series.iter().cloned().collect()
    }

    /// Every tag name, sorted.
    pub fn tags(&self) -> Vec<String> {
        self.inner.read().by_tag.keys().cloned().collect()
    }

    /// Every value of `tag` with how many series carry it, sorted by value.
    pub fn values(&self, tag: &str) -> Vec<(String, usize)> {
        self.inner
            .read()
            .by_tag
            .get(tag)
            .map(|vals| vals.iter().map(|(v, s)| (v.clone(), s.len())).collect())
            .unwrap_or_default()
    }

    /// Series that carry `tag` with a value `pred` accepts (sorted). Used by the
    /// `seriesByTag` evaluation for each expression.
    pub fn series_where(&self, tag: &str, pred: impl Fn(&str) -> bool) -> BTreeSet<String> {
        let inner = self.inner.read();
        let mut out = BTreeSet::new();
        if let Some(vals) = inner.by_tag.get(tag) {
            for (v, series) in vals {
                if pred(v) {
                    out.extend(series.iter().cloned());
                }
            }
        }
        out
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.inner.read().series.len()
    }

    /// Whether no series is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every readable tagged file under `whisper_dir/_tagged` (hash-only names cannot be
    /// decoded and are skipped); returns how many were found.
    pub fn scan(&self, whisper_dir: &Path) -> usize {
        let mut n = 0;
        let root = whisper_dir.join("_tagged");
        let Ok(l1) = std::fs::read_dir(root) else { return 0 };
        for a in l1.flatten() {
            let Ok(l2) = std::fs::read_dir(a.path()) else { continue };
            for b in l2.flatten() {
                let Ok(files) = std::fs::read_dir(b.path()) else { continue };
                for f in files.flatten() {
                    let name = f.file_name();
                    let Some(name) = name.to_str() else { continue };
                    let Some(stem) = name.strip_suffix(".wsp") else { continue };
                    if !stem.contains(';') {
                        continue;
                    }
                    if self.insert(&stem.replace("_DOT_", ".")) {
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_by_tag_and_value() {
        let t = TagIndex::new();
        assert!(t.insert("cpu;dc=a;host=web1"));
        assert!(t.insert("cpu;dc=b;host=web2"));
        assert!(!t.insert("cpu;dc=a;host=web1"));
        assert_eq!(t.tags(), vec!["dc", "host", "name"]);
        assert_eq!(t.values("dc"), vec![("a".to_string(), 1), ("b".to_string(), 1)]);
        assert_eq!(t.series_where("name", |v| v == "cpu").len(), 2);
        assert_eq!(t.series_where("host", |v| v.ends_with('2')).into_iter().collect::<Vec<_>>(), vec!["cpu;dc=b;host=web2"]);
        let tags = parse_tagged("disk.used;host=a").unwrap();
        assert_eq!(tags.get("name").unwrap(), "disk.used");
    }
}
