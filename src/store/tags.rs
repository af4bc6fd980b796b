//! The tag index: every tagged series (`name;tag=value;…`) known on disk or in the cache,
//! by tag and value, for `seriesByTag` and the `/tags` API.
//!
//! [`TagIndex::find_series`] answers `seriesByTag` expressions (`tag=value`, `tag!=value`,
//! `tag=~regex`, `tag!=~regex`) with graphite-web's `LocalDatabaseTagDB` semantics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use parking_lot::RwLock;

use crate::python::Regex;

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

/// The operator of a tag expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOp {
    /// `tag=value`: the value is exactly `value`.
    Eq,
    /// `tag!=value`: the value is not `value`.
    NotEq,
    /// `tag=~regex`: the value matches the regex, anchored at its start.
    Match,
    /// `tag!=~regex`: the value does not match the regex, anchored at its start.
    NotMatch,
}

/// One `seriesByTag` expression, parsed as graphite-web's `parse_tagspec`
/// (`^([^;!=]+)(!?=~?)([^;]*)$`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagExpr {
    /// The tag (`name` for the metric name).
    pub tag: String,
    /// The operator.
    pub op: TagOp,
    /// The value or regular expression.
    pub spec: String,
}

impl TagExpr {
    /// Parses `tag=value`, `tag!=value`, `tag=~re` or `tag!=~re`; the error says which
    /// expression is invalid (graphite-web's `Invalid tagspec …`).
    pub fn parse(expr: &str) -> Result<TagExpr, String> {
        let invalid = || format!("Invalid tagspec {expr}");
        let at = expr.find(['!', '=']).ok_or_else(invalid)?;
        let tag = &expr[..at];
        if tag.is_empty() || tag.contains(';') {
            return Err(invalid());
        }
        let rest = &expr[at..];
        let (op, spec) = if let Some(r) = rest.strip_prefix("!=~") {
            (TagOp::NotMatch, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (TagOp::NotEq, r)
        } else if let Some(r) = rest.strip_prefix("=~") {
            (TagOp::Match, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (TagOp::Eq, r)
        } else {
            return Err(invalid());
        };
        if spec.contains(';') {
            return Err(invalid());
        }
        Ok(TagExpr {
            tag: tag.to_string(),
            op,
            spec: spec.to_string(),
        })
    }
}

/// The expression as graphite-web writes it (`tag=value`, `tag!=~re`): what
/// [`TagExpr::parse`] reads back to the same expression.
impl std::fmt::Display for TagExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            TagOp::Eq => "=",
            TagOp::NotEq => "!=",
            TagOp::Match => "=~",
            TagOp::NotMatch => "!=~",
        };
        write!(f, "{}{op}{}", self.tag, self.spec)
    }
}

/// A compiled expression: how it tests a series' value of its tag (`None` when the series
/// has no such tag).
struct Compiled<'a> {
    expr: &'a TagExpr,
    /// For `=~`/`!=~`: the regex as graphite-web's SQL uses it (`re.search` of the anchored
    /// pattern) and as its Python filter uses it (`re.match`, anchored at the start).
    search: Option<Regex>,
    matcher: Option<Regex>,
    /// Whether the expression accepts an empty (missing) value: such an expression only
    /// filters; the others select.
    matches_empty: bool,
}

impl Compiled<'_> {
    /// graphite-web's selection (SQL join) for a non-empty-matching expression: the series
    /// must carry the tag, with a value that satisfies it. Errors: the regex engine gave up.
    fn selects(&self, value: Option<&str>) -> Result<bool, String> {
        let Some(v) = value else { return Ok(false) };
        Ok(match self.expr.op {
            TagOp::Eq => v == self.expr.spec,
            TagOp::NotEq => v != self.expr.spec,
            TagOp::Match => matches(self.search.as_ref(), v)?,
            TagOp::NotMatch => !matches(self.search.as_ref(), v)?,
        })
    }

    /// graphite-web's filter for an expression that matches the empty value: applied to
    /// the value, `""` when the tag is missing. Errors: the regex engine gave up.
    fn filters(&self, value: Option<&str>) -> Result<bool, String> {
        let v = value.unwrap_or("");
        Ok(match self.expr.op {
            TagOp::Eq => v == self.expr.spec,
            TagOp::NotEq => v != self.expr.spec,
            TagOp::Match => matches(self.matcher.as_ref(), v)?,
            TagOp::NotMatch => !matches(self.matcher.as_ref(), v)?,
        })
    }

    fn accepts(&self, value: Option<&str>) -> Result<bool, String> {
        if self.matches_empty {
            self.filters(value)
        } else {
            self.selects(value)
        }
    }
}

/// Whether `re` (when there is one) matches `v`; the error when the engine gave up.
fn matches(re: Option<&Regex>, v: &str) -> Result<bool, String> {
    match re {
        Some(r) => r.is_match(v).map_err(|e| e.to_string()),
        None => Ok(false),
    }
}

/// Compiles a Python `re` pattern (the text of `=~`/`!=~`, anchored as graphite-web does);
/// the caller words the error (`seriesByTag` names itself). [`python_regex`] is the plain one.
pub type RegexBuilderFn<'f> = &'f dyn Fn(&str) -> Result<Regex, String>;

fn compile<'a>(expr: &'a TagExpr, build: RegexBuilderFn<'_>) -> Result<Compiled<'a>, String> {
    let (search, matcher, matches_empty) = match expr.op {
        TagOp::Eq => (None, None, expr.spec.is_empty()),
        TagOp::NotEq => (None, None, !expr.spec.is_empty()),
        TagOp::Match | TagOp::NotMatch => {
            // graphite-web anchors a pattern that does not start with `^` as `^(pattern)`.
            let anchored = if expr.spec.starts_with('^') {
                expr.spec.clone()
            } else {
                format!("^({})", expr.spec)
            };
            let search = build(&anchored)?;
            let matcher = build(&format!("\\A(?:{anchored})"))?;
            let empty = matcher.is_match("").map_err(|e| e.to_string())?;
            (
                Some(search),
                Some(matcher),
                if expr.op == TagOp::Match {
                    empty
                } else {
                    !empty
                },
            )
        }
    };
    Ok(Compiled {
        expr,
        search,
        matcher,
        matches_empty,
    })
}

/// Compiles a Python `re` pattern with [`crate::python::Regex`], the one translator every
/// caller uses; the error is Python's complaint.
pub fn python_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| e.to_string())
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
            inner
                .by_tag
                .entry(k)
                .or_default()
                .entry(v)
                .or_default()
                .insert(series.to_string());
        }
        true
    }

    /// Forgets a series (graphite-web's `del_series`); returns whether it was known.
    pub fn remove(&self, series: &str) -> bool {
        let mut inner = self.inner.write();
        if !inner.series.remove(series) {
            return false;
        }
        if let Some(tags) = parse_tagged(series) {
            for (k, v) in tags {
                if let Some(values) = inner.by_tag.get_mut(&k) {
                    if let Some(set) = values.get_mut(&v) {
                        set.remove(series);
                        if set.is_empty() {
                            values.remove(&v);
                        }
                    }
                    if values.is_empty() {
                        inner.by_tag.remove(&k);
                    }
                }
            }
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

    /// The series matching every expression, sorted by name, as graphite-web's
    /// `LocalDatabaseTagDB.find_series`: an expression that cannot match an empty value
    /// selects series carrying the tag (`=~`/`!=~` test the value with the pattern anchored at
    /// its start, as `^(pattern)` unless it starts with `^`); one that can match an empty value
    /// also accepts series without the tag. Errors: a regex that does not compile, or no
    /// expression that needs a non-empty value (`At least one tagspec must not match the
    /// empty string`). `regex` compiles the patterns of `=~`/`!=~` (Python's syntax; see
    /// [`python_regex`]).
    pub fn find_series(
        &self,
        exprs: &[TagExpr],
        regex: RegexBuilderFn<'_>,
    ) -> Result<Vec<String>, String> {
        let compiled: Vec<Compiled<'_>> = exprs
            .iter()
            .map(|e| compile(e, regex))
            .collect::<Result<_, _>>()?;
        let Some(first) = compiled.iter().find(|c| !c.matches_empty) else {
            return Err("At least one tagspec must not match the empty string".into());
        };
        let inner = self.inner.read();
        let Some(values) = inner.by_tag.get(&first.expr.tag) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (value, series) in values {
            if !first.selects(Some(value))? {
                continue;
            }
            for name in series {
                let Some(tags) = parse_tagged(name) else {
                    continue;
                };
                let mut all = true;
                for c in &compiled {
                    if !c.accepts(tags.get(&c.expr.tag).map(String::as_str))? {
                        all = false;
                        break;
                    }
                }
                if all {
                    out.push(name.clone());
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
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
        let Ok(l1) = std::fs::read_dir(root) else {
            return 0;
        };
        for a in l1.flatten() {
            let Ok(l2) = std::fs::read_dir(a.path()) else {
                continue;
            };
            for b in l2.flatten() {
                let Ok(files) = std::fs::read_dir(b.path()) else {
                    continue;
                };
                for f in files.flatten() {
                    let name = f.file_name();
                    let Some(name) = name.to_str() else { continue };
                    let Some(stem) = name.strip_suffix(".wsp") else {
                        continue;
                    };
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
        assert_eq!(
            t.values("dc"),
            vec![("a".to_string(), 1), ("b".to_string(), 1)]
        );
        assert_eq!(t.series_where("name", |v| v == "cpu").len(), 2);
        assert_eq!(
            t.series_where("host", |v| v.ends_with('2'))
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["cpu;dc=b;host=web2"]
        );
        let tags = parse_tagged("disk.used;host=a").unwrap();
        assert_eq!(tags.get("name").unwrap(), "disk.used");
    }

    fn find(t: &TagIndex, exprs: &[&str]) -> Result<Vec<String>, String> {
        let exprs: Vec<TagExpr> = exprs
            .iter()
            .map(|e| TagExpr::parse(e))
            .collect::<Result<_, _>>()?;
        t.find_series(&exprs, &python_regex)
    }

    #[test]
    fn finds_series_as_graphite_web_does() {
        let t = TagIndex::new();
        for s in [
            "cpu;dc=east;host=web1",
            "cpu;dc=east;host=web2",
            "cpu;dc=west;host=db1",
            "cpu;host=x",
            "mem;dc=east;host=web1",
        ] {
            t.insert(s);
        }
        assert_eq!(
            find(&t, &["name=cpu", "dc=east"]).unwrap(),
            vec!["cpu;dc=east;host=web1", "cpu;dc=east;host=web2"]
        );
        // `!=` accepts series without the tag; `=` with an empty value selects them.
        assert_eq!(
            find(&t, &["name=cpu", "dc!=east"]).unwrap(),
            vec!["cpu;dc=west;host=db1", "cpu;host=x"]
        );
        assert_eq!(find(&t, &["name=cpu", "dc="]).unwrap(), vec!["cpu;host=x"]);
        // Regexes are anchored at the start only.
        assert_eq!(
            find(&t, &["host=~web"]).unwrap(),
            vec![
                "cpu;dc=east;host=web1",
                "cpu;dc=east;host=web2",
                "mem;dc=east;host=web1"
            ]
        );
        assert!(find(&t, &["host=~eb"]).unwrap().is_empty());
        assert_eq!(
            find(&t, &["name=~c", "host!=~web"]).unwrap(),
            vec!["cpu;dc=west;host=db1", "cpu;host=x"]
        );
        assert_eq!(
            find(&t, &["name!=", "dc=west"]).unwrap(),
            vec!["cpu;dc=west;host=db1"]
        );
        assert!(find(&t, &["dc!=east"])
            .unwrap_err()
            .contains("At least one tagspec"));
        assert!(
            find(&t, &["host=~.*"]).is_err(),
            "a regex matching the empty value only filters"
        );
        assert!(find(&t, &["host=~("]).is_err());
        assert!(TagExpr::parse("nooperator").is_err());
        assert!(TagExpr::parse("=x").is_err());
        assert_eq!(TagExpr::parse("a!=~b").unwrap().op, TagOp::NotMatch);
        assert!(find(&t, &["nosuchtag=x"]).unwrap().is_empty());
        // Python's `re` syntax, as graphite-web reads `=~` (issue #11's look-around and
        // backreferences; `{,}` was a literal here before, a repetition in Python).
        assert_eq!(
            find(&t, &["host=~web(?!1)"]).unwrap(),
            vec!["cpu;dc=east;host=web2"]
        );
        assert_eq!(
            find(&t, &["name=cpu", r"host=~\w+(?<=1)$"]).unwrap(),
            vec!["cpu;dc=east;host=web1", "cpu;dc=west;host=db1"]
        );
        assert_eq!(
            find(&t, &["name=mem", "dc=~(?P<x>e)(?!(?P=x))"]).unwrap(),
            vec!["mem;dc=east;host=web1"]
        );
        assert_eq!(
            find(&t, &["name=cpu", "host=~web{,}1"]).unwrap(),
            vec!["cpu;dc=east;host=web1"]
        );
    }
}
