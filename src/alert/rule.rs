//! Alert rules: the `[[alert]]` tables of `alerts.d/*.toml`, checked as they are read.
//!
//! A rule is Hound's alert (`Name`, `Metric`, `Threshold`, `Direction`, `Type`, `EmailTo`,
//! `RunBookLink`) in TOML. Reading never half-succeeds: a directory of rule files is either
//! accepted whole or refused with every problem named as `path:line:column: message`, so a
//! running server keeps its old rules when an edit is bad. This file reads files; it never
//! writes anything.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::query::{parse_target, Expr};

/// Longest rule name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Largest rule file read, in bytes (rule files are small; this bounds memory).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Which side of the threshold is a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Fails when the value is at or above the threshold (Hound: `>=`).
    Above,
    /// Fails when the value is at or below the threshold (Hound: `<=`).
    Below,
}

impl Direction {
    /// `"above"` or `"below"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }

    /// Whether `value` crosses `threshold` in this direction. The threshold itself counts
    /// as crossed, as in Hound (`>=` for above, `<=` for below).
    pub fn crossed(self, value: f64, threshold: f64) -> bool {
        match self {
            Direction::Above => value >= threshold,
            Direction::Below => value <= threshold,
        }
    }

    /// Of two values, the one further on the failing side (the "worst").
    pub fn worse(self, a: f64, b: f64) -> f64 {
        match self {
            Direction::Above => a.max(b),
            Direction::Below => a.min(b),
        }
    }
}

/// Hound's alert types: an alert means a human must act now; a notice is for information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    /// Mail subject `[ALERT] name`. (Hound's spelling `Alert` is accepted too.)
    #[default]
    #[serde(alias = "Alert")]
    Alert,
    /// Mail subject `[NOTICE] name`. (Hound's spelling `Notice` is accepted too.)
    #[serde(alias = "Notice")]
    Notice,
}

impl RuleType {
    /// `"alert"` or `"notice"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Alert => "alert",
            RuleType::Notice => "notice",
        }
    }
}

/// One checked rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rule {
    /// Unique name, used in subjects and as the key of its state.
    pub name: String,
    /// URL-safe form of the name (`/alerts/<slug>`), unique too.
    pub slug: String,
    /// Any target the render API takes.
    pub target: String,
    /// The threshold value.
    pub threshold: f64,
    /// Which side fails.
    pub direction: Direction,
    /// Alert or notice.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// Recipients; empty means `[alerting].email_to`.
    pub email_to: Vec<String>,
    /// Optional runbook link (http or https).
    pub runbook: Option<String>,
    /// File and line the rule came from (`alerts.d/load.toml:3`).
    pub source: String,
}

impl Rule {
    /// The recipients of this rule's mail: its own, or `defaults` when it names none.
    pub fn recipients<'a>(&'a self, defaults: &'a [String]) -> &'a [String] {
        if self.email_to.is_empty() {
            defaults
        } else {
            &self.email_to
        }
    }
}

/// A problem in a rule file, located to the line and column (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// The file.
    pub path: PathBuf,
    /// Line and column, when known.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                line,
                col,
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Every problem found while reading a rules directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

/// The rules of a directory, with a fingerprint of the files they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSet {
    /// Rules in file-name order, then file order.
    pub rules: Vec<Rule>,
    /// Files read.
    pub files: Vec<PathBuf>,
}

impl RuleSet {
    /// The rule whose name or slug is `key`.
    pub fn find(&self, key: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.name == key)
            .or_else(|| self.rules.iter().find(|r| r.slug == key))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    alert: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Spanned<String>,
    target: Spanned<String>,
    threshold: Spanned<f64>,
    direction: Direction,
    #[serde(rename = "type", default)]
    rule_type: RuleType,
    email_to: Option<Spanned<OneOrMany>>,
    runbook: Option<Spanned<String>>,
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

/// The URL-safe name of a rule: ASCII letters and digits lower-cased, every other run of
/// characters one `-` (`"Load high on web1"` → `load-high-on-web1`); `rule` if nothing is left.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("rule");
    }
    out
}

fn unknown_functions(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Call(c) => {
            if crate::query::functions::lookup(&c.name).is_none() {
                out.push(c.name.clone());
            }
            for a in c.args.iter().chain(c.kwargs.iter().map(|(_, a)| a)) {
                unknown_functions(a, out);
            }
        }
        Expr::Template(t) => unknown_functions(&t.expr, out),
        _ => {}
    }
}

/// Parses one rule file's text. `path` is only used in messages; `max_depth` is the query
/// limit on call nesting that targets must respect. Errors carry line and column.
pub fn parse_rules(path: &Path, text: &str, max_depth: usize) -> Result<Vec<Rule>, RuleErrors> {
    let at = |offset: usize| Some(line_col(text, offset));
    let file: RulesFile = toml::from_str(text).map_err(|e| {
        RuleErrors(vec![RuleError {
            path: path.to_path_buf(),
            at: e.span().map(|s| line_col(text, s.start)),
            message: e.message().trim().to_string(),
        }])
    })?;
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    for spec in file.alert {
        let err = |offset: usize, message: String| RuleError {
            path: path.to_path_buf(),
            at: at(offset),
            message,
        };
        let before = errors.len();
        let name = spec.name.get_ref().trim().to_string();
        if name.is_empty() {
            errors.push(err(spec.name.span().start, "name must not be empty".into()));
        } else if name.chars().count() > MAX_NAME_CHARS {
            errors.push(err(
                spec.name.span().start,
                format!("name is longer than {MAX_NAME_CHARS} characters"),
            ));
        } else if name.chars().any(char::is_control) {
            errors.push(err(
                spec.name.span().start,
                "name must not contain control characters".into(),
            ));
        }
        let target = spec.target.get_ref().trim().to_string();
        if target.is_empty() {
            errors.push(err(
                spec.target.span().start,
                "target must not be empty".into(),
            ));
        } else {
            match parse_target(&target, max_depth) {
                Err(e) => errors.push(err(spec.target.span().start, e.to_string())),
                Ok(expr) => {
                    let mut unknown = Vec::new();
                    unknown_functions(&expr, &mut unknown);
                    if let Some(f) = unknown.first() {
                        errors.push(err(
                            spec.target.span().start,
                            format!("unknown function '{f}' in target '{target}'"),
                        ));
                    }
                }
            }
        }
        let threshold = *spec.threshold.get_ref();
        if !threshold.is_finite() {
            errors.push(err(
                spec.threshold.span().start,
                format!("threshold must be a finite number, not {threshold}"),
            ));
        }
        let mut email_to = Vec::new();
        if let Some(list) = &spec.email_to {
            let items: Vec<String> = match list.get_ref() {
                OneOrMany::One(s) => s
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                OneOrMany::Many(v) => v.iter().map(|s| s.trim().to_string()).collect(),
            };
            for a in items {
                if let Err(e) = a.parse::<lettre::message::Mailbox>() {
                    errors.push(err(
                        list.span().start,
                        format!("email_to: '{a}' is not an e-mail address ({e})"),
                    ));
                } else {
                    email_to.push(a);
                }
            }
        }
        let runbook = match &spec.runbook {
            Some(r) => {
                let link = r.get_ref().trim().to_string();
                if !(link.starts_with("http://") || link.starts_with("https://")) {
                    errors.push(err(
                        r.span().start,
                        format!("runbook must be an http:// or https:// link, not '{link}'"),
                    ));
                }
                Some(link).filter(|l| !l.is_empty())
            }
            None => None,
        };
        if errors.len() == before {
            let (line, _) = line_col(text, spec.name.span().start);
            rules.push(Rule {
                slug: slugify(&name),
                name,
                target,
                threshold,
                direction: spec.direction,
                rule_type: spec.rule_type,
                email_to,
                runbook,
                source: format!("{}:{}", path.display(), line),
            });
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(RuleErrors(errors))
    }
}

/// The `*.toml` files of `dir`, sorted by name. A missing directory has none.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, RuleErrors> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RuleErrors(vec![RuleError {
                path: dir.to_path_buf(),
                at: None,
                message: format!("cannot read directory: {e}"),
            }]))
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads `path`, refusing files over [`MAX_FILE_BYTES`] and text that is not UTF-8.
fn read_rule_file(path: &Path) -> Result<String, RuleError> {
    let e = |message: String| RuleError {
        path: path.to_path_buf(),
        at: None,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|x| e(format!("cannot read: {x}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(e(format!(
            "file is {} bytes; rule files may be at most {MAX_FILE_BYTES}",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|x| e(format!("cannot read: {x}")))?;
    String::from_utf8(bytes).map_err(|_| e("file is not UTF-8 text".into()))
}

/// A digest of the rule files' names and contents: the scheduler re-reads the rules only
/// when it changes, so an unchanged bad file is reported once, not every interval.
pub fn fingerprint(dir: &Path) -> Vec<u8> {
    let mut h = Sha256::new();
    if let Ok(files) = rule_files(dir) {
        for f in files {
            h.update(f.to_string_lossy().as_bytes());
            h.update([0]);
            match std::fs::read(&f) {
                Ok(b) if b.len() as u64 <= MAX_FILE_BYTES => h.update(&b),
                Ok(b) => h.update(b.len().to_le_bytes()),
                Err(e) => h.update(e.to_string().as_bytes()),
            }
            h.update([0]);
        }
    } else {
        h.update(b"unreadable");
    }
    h.finalize().to_vec()
}

/// Reads every `*.toml` rule file of `dir`. Names (and their slugs) must be unique across
/// files. `default_to` is `[alerting].email_to`: a rule with no `email_to` of its own needs it
/// to be non-empty. All problems of all files are returned together.
pub fn load_dir(
    dir: &Path,
    max_depth: usize,
    default_to: &[String],
) -> Result<RuleSet, RuleErrors> {
    let files = rule_files(dir)?;
    let mut errors = Vec::new();
    let mut rules: Vec<Rule> = Vec::new();
    for path in &files {
        match read_rule_file(path) {
            Err(e) => errors.push(e),
            Ok(text) => match parse_rules(path, &text, max_depth) {
                Ok(r) => rules.extend(r),
                Err(RuleErrors(e)) => errors.extend(e),
            },
        }
    }
    let mut names: HashMap<&str, &Rule> = HashMap::new();
    let mut slugs: HashMap<&str, &Rule> = HashMap::new();
    for r in &rules {
        let split = |source: &str| -> (PathBuf, Option<(usize, usize)>) {
            match source.rsplit_once(':') {
                Some((p, l)) => (PathBuf::from(p), l.parse().ok().map(|l| (l, 1))),
                None => (PathBuf::from(source), None),
            }
        };
        if let Some(first) = names.get(r.name.as_str()) {
            let (path, at) = split(&r.source);
            errors.push(RuleError {
                path,
                at,
                message: format!("rule name '{}' is already used at {}", r.name, first.source),
            });
        } else if let Some(first) = slugs.get(r.slug.as_str()) {
            let (path, at) = split(&r.source);
            errors.push(RuleError {
                path,
                at,
                message: format!(
                    "rule name '{}' gives the same page address /alerts/{} as '{}' at {}",
                    r.name, r.slug, first.name, first.source
                ),
            });
        } else {
            names.insert(&r.name, r);
            slugs.insert(&r.slug, r);
        }
        if r.email_to.is_empty() && default_to.is_empty() {
            let (path, at) = split(&r.source);
            errors.push(RuleError {
                path,
                at,
                message: format!(
                    "rule '{}' has no email_to and [alerting].email_to is empty",
                    r.name
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(RuleSet { rules, files })
    } else {
        Err(RuleErrors(errors))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A rule for the unit tests of the other alert modules: `Load high` on `a.b`.
    pub(crate) fn rule(threshold: f64, direction: Direction) -> Rule {
        Rule {
            name: "Load high".into(),
            slug: "load-high".into(),
            target: "a.b".into(),
            threshold,
            direction,
            rule_type: RuleType::Alert,
            email_to: vec![],
            runbook: None,
            source: "t.toml:1".into(),
        }
    }

    fn parse(text: &str) -> Result<Vec<Rule>, RuleErrors> {
        parse_rules(Path::new("alerts.d/t.toml"), text, 64)
    }

    #[test]
    fn reads_a_rule() {
        let r = parse(
            "[[alert]]\nname = \"Load high on web1\"\ntarget = \"collectd.web1.load.load.shortterm\"\nthreshold = 4.0\ndirection = \"above\"\ntype = \"notice\"\nemail_to = [\"oncall@example.com\"]\nrunbook = \"https://wiki.example.com/load\"\n",
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.name, "Load high on web1");
        assert_eq!(r.slug, "load-high-on-web1");
        assert_eq!(r.threshold, 4.0);
        assert_eq!(r.direction, Direction::Above);
        assert_eq!(r.rule_type, RuleType::Notice);
        assert_eq!(r.email_to, vec!["oncall@example.com"]);
        assert_eq!(r.source, "alerts.d/t.toml:2");
        let r = parse("[[alert]]\nname = \"x\"\ntarget = \"a.b\"\nthreshold = 1\ndirection = \"below\"\nemail_to = \"a@b.c, d@e.f\"\n").unwrap();
        assert_eq!(
            r[0].rule_type,
            RuleType::Alert,
            "type defaults to alert, as in Hound"
        );
        let hound = parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\nthreshold = 1\ndirection = \"above\"\ntype = \"Notice\"\n").unwrap();
        assert_eq!(
            hound[0].rule_type,
            RuleType::Notice,
            "Hound's capitalised type"
        );
        assert_eq!(
            r[0].threshold, 1.0,
            "an integer threshold is read as a float"
        );
        assert_eq!(
            r[0].email_to.len(),
            2,
            "a comma-separated string, as Hound's EmailTo"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("[[alert]]\nname = \"x\"\ntarget = \"a.b\"\nthreshold = 1\ndirection = \"above\"\ncolour = \"red\"\n").unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(6), "{e}");
        assert!(e.to_string().starts_with("alerts.d/t.toml:6:"), "{e}");
        assert!(e.to_string().contains("colour"), "{e}");
        let e = parse(
            "[[alert]]\nname = \"x\"\ntarget = \"a.b\"\nthreshold = 1\ndirection = \"sideways\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(5), "{e}");
        let e = parse("[[alert]]\nname = \"x\"\n\ntarget = \"sumSeries(a.b\"\nthreshold = 1\ndirection = \"above\"\n").unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(4), "{e}");
        let e = parse("[[alert]]\nname = \"x\"\ntarget = \"nosuchFunction(a.b)\"\nthreshold = 1\ndirection = \"above\"\n").unwrap_err();
        assert!(e.to_string().contains("nosuchFunction"), "{e}");
        let e = parse(
            "[[alert]]\nname = \"x\"\ntarget = \"a\"\nthreshold = nan\ndirection = \"above\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(4), "{e}");
        let e = parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\nthreshold = 1\ndirection = \"above\"\nemail_to = [\"not an address\"]\n").unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(6), "{e}");
        let e = parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\nthreshold = 1\ndirection = \"above\"\nrunbook = \"javascript:alert(1)\"\n").unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(6), "{e}");
        let e =
            parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\ndirection = \"above\"\n").unwrap_err();
        assert!(e.to_string().contains("threshold"), "{e}");
        let e = parse("[[alert]\n").unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(1), "{e}");
    }

    #[test]
    fn names_are_unique_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let rule = |n: &str| {
            format!(
                "[[alert]]\nname = \"{n}\"\ntarget = \"a\"\nthreshold = 1\ndirection = \"above\"\n"
            )
        };
        std::fs::write(dir.path().join("a.toml"), rule("Disk full")).unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            format!("# comment\n{}", rule("Disk full")),
        )
        .unwrap();
        let e = load_dir(dir.path(), 64, &["root@localhost".into()]).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("b.toml:3"), "{s}");
        assert!(s.contains("a.toml:2"), "{s}");
        std::fs::write(dir.path().join("b.toml"), rule("disk  FULL")).unwrap();
        let e = load_dir(dir.path(), 64, &["root@localhost".into()]).unwrap_err();
        assert!(e.to_string().contains("/alerts/disk-full"), "{e}");
        std::fs::write(dir.path().join("b.toml"), rule("Disk nearly full")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a rule file").unwrap();
        let set = load_dir(dir.path(), 64, &["root@localhost".into()]).unwrap();
        assert_eq!(set.rules.len(), 2);
        assert_eq!(
            set.find("disk-nearly-full").unwrap().name,
            "Disk nearly full"
        );
        assert!(
            load_dir(dir.path(), 64, &[]).is_err(),
            "no recipients anywhere"
        );
        assert_eq!(
            load_dir(&dir.path().join("missing"), 64, &[])
                .unwrap()
                .rules
                .len(),
            0
        );
    }

    #[test]
    fn the_example_rules_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts.d");
        let set = load_dir(&dir, 64, &["root@localhost".into()]).unwrap_or_else(|e| panic!("{e}"));
        assert!(set.rules.len() >= 4);
        assert!(set
            .rules
            .iter()
            .any(|r| r.target == "collectd.*.load.load.shortterm"));
        assert!(set.rules.iter().any(|r| r.direction == Direction::Below));
    }

    #[test]
    fn slugs_and_thresholds() {
        assert_eq!(slugify("  Load: web1 / 5m  "), "load-web1-5m");
        assert_eq!(slugify("✓"), "rule");
        assert!(Direction::Above.crossed(4.0, 4.0));
        assert!(!Direction::Above.crossed(3.9, 4.0));
        assert!(Direction::Below.crossed(4.0, 4.0));
        assert!(!Direction::Below.crossed(4.1, 4.0));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
