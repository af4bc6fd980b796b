//! Alert rules: the `[[alert]]` tables of `alerts.d/*.toml`, checked as they are read.
//!
//! Two kinds of rule:
//! - a **threshold rule** (`target`, `direction`, `warn` and/or `crit`; Hound's `threshold`
//!   means `crit`): every series of the target is reduced over `window` (`reduce`, Hound's
//!   last value by default) and compared with the levels;
//! - an **expression rule** (`targets = { name = "target", … }` with `crit`/`warn` conditions
//!   such as `"errors / total > 0.05 && total > 10"`, as Moira's expressions): each target is
//!   reduced the same way and the condition is evaluated by the `evalexpr` crate.
//!
//! Every key of Hound's files (`name`, `target`, `threshold`, `direction`, `type`,
//! `email_to`, `runbook`) keeps its meaning. Reading never half-succeeds: a directory of rule
//! files is either accepted whole or refused with every problem named as
//! `path:line:column: message`, so a running server keeps its old rules when an edit is bad.
//! This file reads files; it never writes anything.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use evalexpr::{DefaultNumericTypes, HashMapContext, Node};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::query::{parse_target, Expr};

/// Longest rule name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Largest rule file read, in bytes (rule files are small; this bounds memory).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Default `window`, in seconds: Hound's ten minutes.
pub const DEFAULT_WINDOW: i64 = 600;
/// Most targets of one expression rule.
pub const MAX_TARGETS: usize = 16;
/// Most labels of one rule.
pub const MAX_LABELS: usize = 32;
/// Hound's reminder ladder, as offsets from the start of an incident (seconds): 5 min,
/// 30 min, 1 h, 2 h, 4 h, 8 h, 24 h, then every 24 h.
pub const HOUND_LADDER: [i64; 7] = [300, 1800, 3600, 7200, 14400, 28800, 86400];

/// Which side of a level is a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Fails when the value is at or above the level (Hound: `>=`).
    Above,
    /// Fails when the value is at or below the level (Hound: `<=`).
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

    /// The other side (`above` ↔ `below`): where a recovered value is.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Above => Direction::Below,
            Direction::Below => Direction::Above,
        }
    }

    /// Whether `value` crosses `level` in this direction. The level itself counts as
    /// crossed, as in Hound (`>=` for above, `<=` for below).
    pub fn crossed(self, value: f64, level: f64) -> bool {
        match self {
            Direction::Above => value >= level,
            Direction::Below => value <= level,
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
    /// Subjects `[CRIT] name: …`, `[WARN] name: …`. (Hound's spelling `Alert` is accepted too.)
    #[default]
    #[serde(alias = "Alert")]
    Alert,
    /// Subjects `[NOTICE] name: …` (Hound's). (Hound's spelling `Notice` is accepted too.)
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

/// A failing level. `Crit` is worse than `Warn`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `warn`: look soon.
    Warn,
    /// `crit` (Hound's `threshold`): act now.
    Crit,
}

impl Level {
    /// `"warn"` or `"crit"`, as the rule files spell them.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warn => "warn",
            Level::Crit => "crit",
        }
    }
}

/// What a series that stops reporting becomes (`no_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoData {
    /// NODATA, which is mailed (`[NO DATA] …`) like a failure. The default.
    #[default]
    Alert,
    /// OK: silence is fine (a batch job that reports only while it runs).
    Ok,
    /// Keeps the state it had before it went quiet.
    Keep,
}

impl NoData {
    /// `"alert"`, `"ok"` or `"keep"`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoData::Alert => "alert",
            NoData::Ok => "ok",
            NoData::Keep => "keep",
        }
    }
}

/// How the points of a series in the rule's `window` become the one value compared
/// (`reduce`). Nulls are skipped by every reducer.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Reduce {
    /// The last non-null value (Hound's `keepLastValue`, the default).
    Last,
    /// The mean.
    Avg,
    /// The smallest.
    Min,
    /// The largest.
    Max,
    /// The sum.
    Sum,
    /// The middle value (mean of the two middle ones), as graphite-web's `median`.
    Median,
    /// How many non-null points there are.
    Count,
    /// The `n`th percentile, nearest rank, as graphite-web's `percentileOfSeries`.
    Percentile(f64),
}

impl Reduce {
    /// Parses `last`, `avg` (or `average`), `min`, `max`, `sum`, `median`, `count` and `pNN`
    /// (`p95`, `p99.9`; 0 ≤ NN ≤ 100).
    pub fn parse(s: &str) -> Result<Reduce, String> {
        Ok(match s {
            "last" => Reduce::Last,
            "avg" | "average" => Reduce::Avg,
            "min" => Reduce::Min,
            "max" => Reduce::Max,
            "sum" => Reduce::Sum,
            "median" => Reduce::Median,
            "count" => Reduce::Count,
            p if p.starts_with('p') => match p[1..].parse::<f64>() {
                Ok(n) if (0.0..=100.0).contains(&n) => Reduce::Percentile(n),
                _ => {
                    return Err(format!(
                        "reduce '{s}': a percentile is p0 to p100, e.g. p95"
                    ))
                }
            },
            _ => {
                return Err(format!(
                    "reduce '{s}' is not one of last, avg, min, max, sum, median, count, pNN"
                ))
            }
        })
    }

    /// Applies the reducer to a window's values (time order; nulls skipped). `None` when
    /// no value is known (for `count`: never; an empty window counts 0).
    pub fn apply(self, values: &[Option<f64>]) -> Option<f64> {
        let known = || values.iter().flatten().copied().filter(|v| !v.is_nan());
        match self {
            Reduce::Last => known().next_back(),
            Reduce::Count => Some(known().count() as f64),
            Reduce::Sum => {
                let mut it = known().peekable();
                it.peek()?;
                Some(it.sum())
            }
            Reduce::Avg => {
                let (s, n) = known().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                (n > 0).then(|| s / n as f64)
            }
            Reduce::Min => known().reduce(f64::min),
            Reduce::Max => known().reduce(f64::max),
            Reduce::Median => {
                let v: Vec<Option<f64>> = known().map(Some).collect();
                crate::query::functions::safe_median(&v)
            }
            Reduce::Percentile(n) => {
                let mut v: Vec<f64> = known().collect();
                v.sort_by(|a, b| a.total_cmp(b));
                crate::query::functions::percentile(&v, n, false)
                    .ok()
                    .flatten()
            }
        }
    }
}

impl fmt::Display for Reduce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reduce::Last => f.write_str("last"),
            Reduce::Avg => f.write_str("avg"),
            Reduce::Min => f.write_str("min"),
            Reduce::Max => f.write_str("max"),
            Reduce::Sum => f.write_str("sum"),
            Reduce::Median => f.write_str("median"),
            Reduce::Count => f.write_str("count"),
            Reduce::Percentile(n) => write!(f, "p{n}"),
        }
    }
}

/// A condition of an expression rule: its text and the parsed tree (`evalexpr`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Condition {
    /// As written (`"errors / total > 0.05 && total > 10"`).
    pub text: String,
    #[serde(skip)]
    node: Node<DefaultNumericTypes>,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Condition) -> bool {
        self.text == other.text
    }
}

impl Condition {
    /// Parses `text` and checks that it only names `vars` and gives true or false.
    pub fn parse(text: &str, vars: &[&str]) -> Result<Condition, String> {
        let node = evalexpr::build_operator_tree::<DefaultNumericTypes>(text)
            .map_err(|e| format!("condition '{text}': {e}"))?;
        for v in node.iter_variable_identifiers() {
            if !vars.contains(&v) {
                return Err(format!(
                    "condition '{text}' names '{v}', which is not one of the targets ({})",
                    vars.join(", ")
                ));
            }
        }
        if let Some(f) = node.iter_function_identifiers().next() {
            return Err(format!(
                "condition '{text}' calls '{f}': conditions compare numbers with + - * / % ^ \
                 < <= > >= == != && || ! and parentheses"
            ));
        }
        let c = Condition {
            text: text.to_string(),
            node,
        };
        let probe: Vec<(&str, f64)> = vars.iter().map(|v| (*v, 1.0)).collect();
        c.eval(&probe)?;
        Ok(c)
    }

    /// Evaluates the condition with each variable bound to its value (floats, so `a / b`
    /// divides as a float and a division by zero is infinite rather than an error).
    /// `Err` when the expression does not give true or false.
    pub fn eval(&self, values: &[(&str, f64)]) -> Result<bool, String> {
        let mut ctx = HashMapContext::<DefaultNumericTypes>::new();
        for (k, v) in values {
            use evalexpr::ContextWithMutableVariables;
            ctx.set_value((*k).to_string(), evalexpr::Value::Float(*v))
                .map_err(|e| e.to_string())?;
        }
        match self.node.eval_with_context(&ctx) {
            Ok(evalexpr::Value::Boolean(b)) => Ok(b),
            Ok(other) => Err(format!(
                "condition '{}' gives {other}, not true or false",
                self.text
            )),
            Err(e) => Err(format!("condition '{}': {e}", self.text)),
        }
    }
}

/// What a rule compares.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Check {
    /// Each series of `target` against numeric levels.
    Threshold {
        /// Any target the render API takes; a glob gives one state per series.
        target: String,
        /// Which side fails.
        direction: Direction,
        /// The warn level, if any.
        warn: Option<f64>,
        /// The crit level (Hound's `threshold`), if any.
        crit: Option<f64>,
    },
    /// Conditions over several named targets.
    Expression {
        /// Name → target, in name order.
        targets: Vec<(String, String)>,
        /// The warn condition, if any.
        warn: Option<Condition>,
        /// The crit condition, if any.
        crit: Option<Condition>,
    },
}

/// One checked rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rule {
    /// Unique name, used in subjects and as the key of its state.
    pub name: String,
    /// URL-safe form of the name (`/alerts/<slug>`), unique too.
    pub slug: String,
    /// What it compares.
    pub check: Check,
    /// Seconds a series must fail continuously before it fires (PENDING until then); 0 fires
    /// at the first failing check.
    #[serde(rename = "for")]
    pub for_secs: i64,
    /// How the window's points become one value.
    pub reduce: Reduce,
    /// Seconds of data reduced (default 600, as Hound).
    pub window: i64,
    /// What a series without data becomes.
    pub no_data: NoData,
    /// Seconds without any point after which a series has no data (default: `window`).
    pub no_data_after: i64,
    /// Seconds between checks of this rule; `None` is `[alerting].interval`.
    pub interval: Option<i64>,
    /// Free labels (`team = "web"`), shown on the board and used by routing.
    pub labels: BTreeMap<String, String>,
    /// Reminder offsets from the start of an incident, in seconds, ascending; after the last,
    /// one more every `last` seconds (Hound's ladder: every 24 h). Empty: no reminders.
    pub repeat: Vec<i64>,
    /// Alert or notice.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// Recipients; empty means `[alerting].email_to`.
    pub email_to: Vec<String>,
    /// Contacts (`[[contact]]` names) told directly, before any `[[route]]`.
    pub notify: Vec<String>,
    /// Optional runbook link (http or https).
    pub runbook: Option<String>,
    /// File and line of the rule's `[[alert]]` header (`alerts.d/load.toml:3`).
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

    /// The targets evaluated: `("", target)` for a threshold rule, `(name, target)` pairs
    /// for an expression rule.
    pub fn targets(&self) -> Vec<(&str, &str)> {
        match &self.check {
            Check::Threshold { target, .. } => vec![("", target.as_str())],
            Check::Expression { targets, .. } => targets
                .iter()
                .map(|(n, t)| (n.as_str(), t.as_str()))
                .collect(),
        }
    }

    /// The target as shown to people: the target, or `errors = …; total = …`.
    pub fn target_text(&self) -> String {
        match &self.check {
            Check::Threshold { target, .. } => target.clone(),
            Check::Expression { targets, .. } => targets
                .iter()
                .map(|(n, t)| format!("{n} = {t}"))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// The numeric level `level` of a threshold rule (`None` for expression rules or an
    /// unset level).
    pub fn level_value(&self, level: Level) -> Option<f64> {
        match &self.check {
            Check::Threshold { warn, crit, .. } => match level {
                Level::Warn => *warn,
                Level::Crit => *crit,
            },
            Check::Expression { .. } => None,
        }
    }

    /// The direction of a threshold rule; expression rules have none.
    pub fn direction(&self) -> Option<Direction> {
        match &self.check {
            Check::Threshold { direction, .. } => Some(*direction),
            Check::Expression { .. } => None,
        }
    }

    /// The level as shown after a value: `crit 95`, or the condition of an expression rule.
    pub fn level_text(&self, level: Level) -> String {
        match &self.check {
            Check::Threshold { warn, crit, .. } => {
                let v = match level {
                    Level::Warn => *warn,
                    Level::Crit => *crit,
                };
                match v {
                    Some(v) => format!("{} {}", level.as_str(), super::format::value(v)),
                    None => level.as_str().to_string(),
                }
            }
            Check::Expression { warn, crit, .. } => {
                let c = match level {
                    Level::Warn => warn,
                    Level::Crit => crit,
                };
                match c {
                    Some(c) => format!("{}: {}", level.as_str(), c.text),
                    None => level.as_str().to_string(),
                }
            }
        }
    }

    /// What decides the outcome of a check, as `(key, value)` pairs in a fixed order: kept
    /// with the state so that a recovery caused by editing the rule can say so ("crit 0 →
    /// 1000") rather than read like a real recovery.
    pub fn definition(&self) -> Vec<(String, String)> {
        let mut d = Vec::new();
        let opt = |v: Option<f64>| v.map(super::format::value).unwrap_or_else(|| "none".into());
        match &self.check {
            Check::Threshold {
                target,
                direction,
                warn,
                crit,
            } => {
                d.push(("target".into(), target.clone()));
                d.push(("direction".into(), direction.as_str().into()));
                d.push(("warn".into(), opt(*warn)));
                d.push(("crit".into(), opt(*crit)));
            }
            Check::Expression {
                targets,
                warn,
                crit,
            } => {
                for (n, t) in targets {
                    d.push((format!("targets.{n}"), t.clone()));
                }
                let text = |c: &Option<Condition>| {
                    c.as_ref()
                        .map(|c| c.text.clone())
                        .unwrap_or_else(|| "none".into())
                };
                d.push(("warn".into(), text(warn)));
                d.push(("crit".into(), text(crit)));
            }
        }
        d.push(("reduce".into(), self.reduce.to_string()));
        d.push(("window".into(), super::format::duration(self.window)));
        d.push(("for".into(), super::format::duration(self.for_secs)));
        d.push(("no_data".into(), self.no_data.as_str().into()));
        d
    }

    /// Seconds after the start of an incident at which reminder `k` (0-based) is due;
    /// `None` when the rule sends no reminders.
    pub fn reminder_offset(&self, k: u32) -> Option<i64> {
        let last = *self.repeat.last()?;
        Some(match self.repeat.get(k as usize) {
            Some(&o) => o,
            None => last
                .saturating_add(last.saturating_mul(i64::from(k) - self.repeat.len() as i64 + 1)),
        })
    }

    /// How many reminders have come due `elapsed` seconds after an incident began.
    pub fn reminders_due(&self, elapsed: i64) -> u32 {
        let Some(&last) = self.repeat.last() else {
            return 0;
        };
        if elapsed < 0 {
            return 0;
        }
        match self.repeat.iter().position(|&o| elapsed < o) {
            Some(k) => k as u32,
            None => {
                let beyond = (elapsed - last) / last.max(1);
                (self.repeat.len() as i64 + beyond).min(u32::MAX as i64 / 2) as u32
            }
        }
    }
}

/// A differences between two [`Rule::definition`]s, worded for a mail: `crit 0 → 1000`.
/// Empty when nothing that decides the outcome changed.
pub fn definition_change(old: &[(String, String)], new: &[(String, String)]) -> String {
    let old_map: HashMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let new_map: HashMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut parts = Vec::new();
    for (k, v) in new {
        match old_map.get(k.as_str()) {
            Some(o) if *o == v => {}
            Some(o) => parts.push(format!("{k} {o} → {v}")),
            None => parts.push(format!("{k} none → {v}")),
        }
    }
    for (k, o) in old {
        if !new_map.contains_key(k.as_str()) {
            parts.push(format!("{k} {o} → none"));
        }
    }
    parts.join(", ")
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

/// The rules of a directory, with the files they came from.
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

impl OneOrMany {
    fn items(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            OneOrMany::Many(v) => v.iter().map(|s| s.trim().to_string()).collect(),
        }
    }
}

/// A level as written: a number (threshold rules) or a condition (expression rules).
#[derive(Deserialize)]
#[serde(untagged)]
enum LevelSpec {
    Number(f64),
    Condition(String),
}

/// A duration as written: `"5m"` (humantime) or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationSpec {
    Seconds(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Spanned<String>,
    target: Option<Spanned<String>>,
    targets: Option<Spanned<BTreeMap<String, String>>>,
    threshold: Option<Spanned<f64>>,
    warn: Option<Spanned<LevelSpec>>,
    crit: Option<Spanned<LevelSpec>>,
    direction: Option<Spanned<Direction>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<DurationSpec>>,
    reduce: Option<Spanned<String>>,
    window: Option<Spanned<DurationSpec>>,
    no_data: Option<Spanned<NoData>>,
    no_data_after: Option<Spanned<DurationSpec>>,
    interval: Option<Spanned<DurationSpec>>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
    repeat: Option<Spanned<Vec<DurationSpec>>>,
    #[serde(rename = "type", default)]
    rule_type: RuleType,
    email_to: Option<Spanned<OneOrMany>>,
    notify: Option<Spanned<OneOrMany>>,
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

/// Where lines and `[[alert]]` headers start in a rule file, so each rule's positions are
/// found by binary search (a file of 10,000 rules reads in milliseconds, not seconds).
struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of every line's start.
    lines: Vec<usize>,
    /// Byte offset of every `[[alert]]` header (at its first `[`).
    headers: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let mut lines = vec![0];
        let mut headers = Vec::new();
        let mut pos = 0;
        for line in text.split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with("[[") && t.trim_start_matches('[').trim_start().starts_with("alert") {
                headers.push(pos + (line.len() - t.len()));
            }
            pos += line.len();
            lines.push(pos);
        }
        LineIndex {
            text,
            lines,
            headers,
        }
    }

    /// 1-based line and column of byte `offset`, as [`line_col`].
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.lines.partition_point(|&s| s <= offset).max(1);
        let start = self.lines[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map(|t| t.chars().count())
            .unwrap_or(0)
            + 1;
        (line, col)
    }

    /// Byte offset of the `[[alert]]` header that opens the table holding `offset`.
    fn header_before(&self, offset: usize) -> usize {
        match self.headers.partition_point(|&h| h <= offset) {
            0 => 0,
            k => self.headers[k - 1],
        }
    }
}

/// The line of a single-table `[alert]` header, the common mistake for `[[alert]]`.
fn single_table_header(text: &str) -> Option<usize> {
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if let Some(inner) = t.strip_prefix('[').and_then(|t| t.split(']').next()) {
            if !t.starts_with("[[") && inner.trim() == "alert" {
                return Some(pos + (line.len() - line.trim_start().len()));
            }
        }
        pos += line.len();
    }
    None
}

fn parse_duration(d: &DurationSpec, key: &str) -> Result<i64, String> {
    match d {
        DurationSpec::Seconds(s) if *s >= 0 => Ok(*s),
        DurationSpec::Seconds(s) => Err(format!("{key} must not be negative ({s})")),
        DurationSpec::Text(t) => crate::config::parse_duration(t)
            .map(|d| d.as_secs().min(i64::MAX as u64 / 4) as i64)
            .map_err(|e| format!("{key} '{t}': {e} (write e.g. \"30s\", \"5m\", \"1h\")")),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && !matches!(s, "true" | "false")
}

fn check_target(target: &str, max_depth: usize) -> Result<(), String> {
    if target.is_empty() {
        return Err("target must not be empty".into());
    }
    let expr = parse_target(target, max_depth).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    unknown_functions(&expr, &mut unknown);
    match unknown.first() {
        Some(f) => Err(format!("unknown function '{f}' in target '{target}'")),
        None => Ok(()),
    }
}

/// Parses one rule file's text. `path` is only used in messages; `max_depth` is the query
/// limit on call nesting that targets must respect. Errors carry line and column; a rule's
/// own problems (a missing level, levels in the wrong order) point at its `[[alert]]` line.
pub fn parse_rules(path: &Path, text: &str, max_depth: usize) -> Result<Vec<Rule>, RuleErrors> {
    let index = LineIndex::new(text);
    let at = |offset: usize| Some(index.line_col(offset));
    let one = |offset: Option<usize>, message: String| {
        RuleErrors(vec![RuleError {
            path: path.to_path_buf(),
            at: offset.map(|o| line_col(text, o)),
            message,
        }])
    };
    let file: RulesFile = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            if let Some(h) = single_table_header(text) {
                return Err(one(
                    Some(h),
                    "[alert] declares one table, but rules are an array of tables: use [[alert]] \
                     (two brackets) for every rule"
                        .into(),
                ));
            }
            return Err(one(
                e.span().map(|s| s.start),
                e.message().trim().to_string(),
            ));
        }
    };
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    for spec in file.alert {
        let header = index.header_before(spec.name.span().start);
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
        let mut duration = |d: &Option<Spanned<DurationSpec>>, key: &str, default: i64| match d {
            None => default,
            Some(d) => match parse_duration(d.get_ref(), key) {
                Ok(s) => s,
                Err(m) => {
                    errors.push(err(d.span().start, m));
                    default
                }
            },
        };
        let for_secs = duration(&spec.for_, "for", 0);
        let window = duration(&spec.window, "window", DEFAULT_WINDOW);
        let no_data_after = duration(&spec.no_data_after, "no_data_after", window);
        let interval = spec
            .interval
            .as_ref()
            .map(|_| duration(&spec.interval, "interval", 60));
        let mut repeat = Vec::new();
        if let Some(r) = &spec.repeat {
            for d in r.get_ref() {
                match parse_duration(d, "repeat") {
                    Ok(s) if s > 0 => repeat.push(s),
                    Ok(_) => errors.push(err(
                        r.span().start,
                        "repeat: every step must be longer than 0".into(),
                    )),
                    Err(m) => errors.push(err(r.span().start, m)),
                }
            }
            if repeat.windows(2).any(|w| w[0] >= w[1]) {
                errors.push(err(
                    r.span().start,
                    "repeat: offsets from the start of the incident must increase (e.g. [\"5m\", \"30m\", \"1h\"])".into(),
                ));
            }
        } else {
            repeat = HOUND_LADDER.to_vec();
        }
        if window == 0 {
            if let Some(w) = &spec.window {
                errors.push(err(w.span().start, "window must be longer than 0".into()));
            }
        }
        if interval == Some(0) {
            if let Some(w) = &spec.interval {
                errors.push(err(w.span().start, "interval must be longer than 0".into()));
            }
        }
        let reduce = match &spec.reduce {
            None => Reduce::Last,
            Some(r) => Reduce::parse(r.get_ref().trim()).unwrap_or_else(|m| {
                errors.push(err(r.span().start, m));
                Reduce::Last
            }),
        };
        let mut labels = BTreeMap::new();
        if let Some(l) = &spec.labels {
            if l.get_ref().len() > MAX_LABELS {
                errors.push(err(l.span().start, format!("at most {MAX_LABELS} labels")));
            }
            for (k, v) in l.get_ref() {
                if !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    || k.is_empty()
                {
                    errors.push(err(
                        l.span().start,
                        format!("label name '{k}': use letters, digits, '_' and '-'"),
                    ));
                } else if v.chars().any(char::is_control) {
                    errors.push(err(
                        l.span().start,
                        format!("label '{k}': no control characters"),
                    ));
                } else {
                    labels.insert(k.clone(), v.clone());
                }
            }
        }
        let check = match (&spec.target, &spec.targets) {
            (Some(_), Some(t)) => {
                errors.push(err(
                    t.span().start,
                    "give either target (a threshold rule) or targets (an expression rule), not both".into(),
                ));
                None
            }
            (None, None) => {
                errors.push(err(
                    header,
                    format!("rule '{name}' needs a target (with warn/crit levels) or targets (with warn/crit conditions)"),
                ));
                None
            }
            (Some(t), None) => {
                let target = t.get_ref().trim().to_string();
                if let Err(m) = check_target(&target, max_depth) {
                    errors.push(err(t.span().start, m));
                }
                let mut number = |l: &Option<Spanned<LevelSpec>>, key: &str| match l {
                    None => None,
                    Some(s) => match s.get_ref() {
                        LevelSpec::Number(v) if v.is_finite() => Some(*v),
                        LevelSpec::Number(v) => {
                            errors.push(err(
                                s.span().start,
                                format!("{key} must be a finite number, not {v}"),
                            ));
                            None
                        }
                        LevelSpec::Condition(c) => {
                            errors.push(err(s.span().start, format!(
                                "{key} = \"{c}\": a rule with one target takes a number; conditions need targets = {{ name = \"target\", … }}"
                            )));
                            None
                        }
                    },
                };
                let warn = number(&spec.warn, "warn");
                let mut crit = number(&spec.crit, "crit");
                if let Some(th) = &spec.threshold {
                    let v = *th.get_ref();
                    if spec.crit.is_some() {
                        errors.push(err(
                            th.span().start,
                            "threshold means crit: give one of them, not both".into(),
                        ));
                    } else if !v.is_finite() {
                        errors.push(err(
                            th.span().start,
                            format!("threshold must be a finite number, not {v}"),
                        ));
                    } else {
                        crit = Some(v);
                    }
                }
                if warn.is_none()
                    && crit.is_none()
                    && spec.threshold.is_none()
                    && spec.crit.is_none()
                    && spec.warn.is_none()
                {
                    errors.push(err(
                        header,
                        format!("rule '{name}' has no level: give crit (or Hound's threshold) and/or warn"),
                    ));
                }
                let direction = match (&spec.direction, warn, crit) {
                    (Some(d), _, _) => Some(*d.get_ref()),
                    (None, Some(w), Some(c)) if w < c => Some(Direction::Above),
                    (None, Some(w), Some(c)) if w > c => Some(Direction::Below),
                    _ => {
                        errors.push(err(
                            header,
                            format!("rule '{name}' needs direction = \"above\" or \"below\""),
                        ));
                        None
                    }
                };
                if let (Some(d), Some(w), Some(c)) = (direction, warn, crit) {
                    let ordered = match d {
                        Direction::Above => w < c,
                        Direction::Below => w > c,
                    };
                    if !ordered {
                        let at = spec.warn.as_ref().map(|s| s.span().start).unwrap_or(header);
                        errors.push(err(
                            at,
                            format!(
                            "warn {} must be {} crit {} for direction {}: warn is crossed first",
                            super::format::value(w),
                            if d == Direction::Above { "below" } else { "above" },
                            super::format::value(c),
                            d.as_str()
                        ),
                        ));
                    }
                }
                direction.map(|direction| Check::Threshold {
                    target,
                    direction,
                    warn,
                    crit,
                })
            }
            (None, Some(t)) => {
                let mut targets = Vec::new();
                if t.get_ref().is_empty() || t.get_ref().len() > MAX_TARGETS {
                    errors.push(err(
                        t.span().start,
                        format!("targets needs 1 to {MAX_TARGETS} named targets"),
                    ));
                }
                for (n, target) in t.get_ref() {
                    if !is_identifier(n) {
                        errors.push(err(t.span().start, format!(
                            "target name '{n}': conditions use it as a variable, so letters, digits and '_', not starting with a digit"
                        )));
                    }
                    let target = target.trim().to_string();
                    if let Err(m) = check_target(&target, max_depth) {
                        errors.push(err(t.span().start, format!("targets.{n}: {m}")));
                    }
                    targets.push((n.clone(), target));
                }
                let vars: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
                if let Some(th) = &spec.threshold {
                    errors.push(err(
                        th.span().start,
                        "an expression rule (targets) takes crit/warn conditions, not threshold"
                            .into(),
                    ));
                }
                if let Some(d) = &spec.direction {
                    errors.push(err(d.span().start, "an expression rule (targets) has no direction: its conditions say what fails".into()));
                }
                let mut condition = |l: &Option<Spanned<LevelSpec>>, key: &str| match l {
                    None => None,
                    Some(s) => match s.get_ref() {
                        LevelSpec::Condition(c) => match Condition::parse(c.trim(), &vars) {
                            Ok(c) => Some(c),
                            Err(m) => {
                                errors.push(err(s.span().start, format!("{key}: {m}")));
                                None
                            }
                        },
                        LevelSpec::Number(v) => {
                            errors.push(err(s.span().start, format!(
                                "{key} = {v}: an expression rule takes a condition such as \"{} > {v}\"",
                                vars.first().copied().unwrap_or("x")
                            )));
                            None
                        }
                    },
                };
                let warn = condition(&spec.warn, "warn");
                let crit = condition(&spec.crit, "crit");
                if spec.warn.is_none() && spec.crit.is_none() {
                    errors.push(err(
                        header,
                        format!("rule '{name}' has no condition: give crit and/or warn"),
                    ));
                }
                Some(Check::Expression {
                    targets,
                    warn,
                    crit,
                })
            }
        };
        let mut email_to = Vec::new();
        if let Some(list) = &spec.email_to {
            for a in list.get_ref().items() {
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
        let notify = spec
            .notify
            .as_ref()
            .map(|n| n.get_ref().items())
            .unwrap_or_default();
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
        if let (true, Some(check)) = (errors.len() == before, check) {
            let (line, _) = index.line_col(header);
            rules.push(Rule {
                slug: slugify(&name),
                name,
                check,
                for_secs,
                reduce,
                window,
                no_data: spec.no_data.map(|n| n.into_inner()).unwrap_or_default(),
                no_data_after,
                interval,
                labels,
                repeat,
                rule_type: spec.rule_type,
                email_to,
                notify,
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

#[cfg(test)]
/// Reads every `*.toml` rule file of `dir`. Names (and their slugs) must be unique across
/// files. `default_to` is `[alerting].email_to`: a rule with no `email_to` (or `notify`) of
/// its own needs it to be non-empty. All problems of all files are returned together.
pub fn load_dir(
    dir: &Path,
    max_depth: usize,
    default_to: &[String],
) -> Result<RuleSet, RuleErrors> {
    load_dir_with(dir, max_depth, &|r: &Rule| {
        if r.email_to.is_empty() && r.notify.is_empty() && default_to.is_empty() {
            Err(format!(
                "rule '{}' has no email_to and [alerting].email_to is empty",
                r.name
            ))
        } else {
            Ok(())
        }
    })
}

/// As [`load_dir`], with `reaches` deciding whether each rule's notifications reach someone
/// (and its `notify` names contacts that exist); its `Err` is reported at the rule's line.
pub fn load_dir_with(
    dir: &Path,
    max_depth: usize,
    reaches: &dyn Fn(&Rule) -> Result<(), String>,
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
        if let Err(message) = reaches(r) {
            let (path, at) = split(&r.source);
            errors.push(RuleError { path, at, message });
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

    /// A rule for the unit tests of the other alert modules: `Load high` on `a.b`, crit at
    /// `threshold`, firing at once, Hound's ladder.
    pub(crate) fn rule(threshold: f64, direction: Direction) -> Rule {
        parse(&format!(
            "[[alert]]\nname = \"Load high\"\ntarget = \"a.b\"\nthreshold = {threshold:?}\ndirection = \"{}\"\n",
            direction.as_str()
        ))
        .unwrap()
        .remove(0)
    }

    /// Parses rule text as `alerts.d/t.toml`.
    pub(crate) fn parse(text: &str) -> Result<Vec<Rule>, RuleErrors> {
        parse_rules(Path::new("alerts.d/t.toml"), text, 64)
    }

    #[test]
    fn reads_a_hound_rule() {
        let r = parse(
            "[[alert]]\nname = \"Load high on web1\"\ntarget = \"collectd.web1.load.load.shortterm\"\nthreshold = 4.0\ndirection = \"above\"\ntype = \"notice\"\nemail_to = [\"oncall@example.com\"]\nrunbook = \"https://wiki.example.com/load\"\n",
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.name, "Load high on web1");
        assert_eq!(r.slug, "load-high-on-web1");
        assert_eq!(
            r.level_value(Level::Crit),
            Some(4.0),
            "threshold means crit"
        );
        assert_eq!(r.level_value(Level::Warn), None);
        assert_eq!(r.direction(), Some(Direction::Above));
        assert_eq!(r.rule_type, RuleType::Notice);
        assert_eq!(r.email_to, vec!["oncall@example.com"]);
        assert_eq!(r.source, "alerts.d/t.toml:1", "the [[alert]] line");
        assert_eq!((r.for_secs, r.window, r.no_data_after), (0, 600, 600));
        assert_eq!((r.reduce, r.no_data), (Reduce::Last, NoData::Alert));
        assert_eq!(r.repeat, HOUND_LADDER.to_vec());
        let r = parse("[[alert]]\nname = \"x\"\ntarget = \"a.b\"\nthreshold = 1\ndirection = \"below\"\nemail_to = \"a@b.c, d@e.f\"\n").unwrap();
        assert_eq!(
            r[0].rule_type,
            RuleType::Alert,
            "type defaults to alert, as in Hound"
        );
        assert_eq!(
            r[0].email_to.len(),
            2,
            "a comma-separated string, as Hound's EmailTo"
        );
        let hound = parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\nthreshold = 1\ndirection = \"above\"\ntype = \"Notice\"\n").unwrap();
        assert_eq!(
            hound[0].rule_type,
            RuleType::Notice,
            "Hound's capitalised type"
        );
    }

    #[test]
    fn reads_every_key_of_a_levelled_rule() {
        let r = parse(
            "# disks\n\n[[alert]]\nname = \"Root fs filling\"\ntarget = \"collectd.*.df-root.percent_bytes-used\"\ndirection = \"above\"\nwarn = 85\ncrit = 95\nfor = \"5m\"\nreduce = \"p95\"\nwindow = \"10m\"\nno_data = \"keep\"\nno_data_after = \"15m\"\ninterval = \"30s\"\nlabels = { team = \"web\", service = \"disk\" }\nrepeat = [\"5m\", \"30m\", \"1h\"]\ntype = \"alert\"\nrunbook = \"https://wiki.example.com/disk\"\n",
        )
        .unwrap()
        .remove(0);
        assert_eq!(r.source, "alerts.d/t.toml:3");
        assert_eq!(r.level_value(Level::Warn), Some(85.0));
        assert_eq!(r.level_value(Level::Crit), Some(95.0));
        assert_eq!(r.for_secs, 300);
        assert_eq!(r.reduce, Reduce::Percentile(95.0));
        assert_eq!(
            (r.window, r.no_data_after, r.interval),
            (600, 900, Some(30))
        );
        assert_eq!(r.no_data, NoData::Keep);
        assert_eq!(r.labels.get("team").map(String::as_str), Some("web"));
        assert_eq!(r.repeat, vec![300, 1800, 3600]);
        assert_eq!(r.level_text(Level::Crit), "crit 95");
        // Reminders after the ladder: every `last` seconds.
        assert_eq!(r.reminder_offset(2), Some(3600));
        assert_eq!(r.reminder_offset(3), Some(7200));
        assert_eq!(r.reminders_due(3599), 2);
        assert_eq!(r.reminders_due(7200), 4);
        // Without direction, the order of warn and crit says it.
        let below =
            parse("[[alert]]\nname = \"Free\"\ntarget = \"a\"\nwarn = 20\ncrit = 10\n").unwrap();
        assert_eq!(below[0].direction(), Some(Direction::Below));
        let none =
            parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\ncrit = 1\nrepeat = []\n").unwrap_err();
        assert!(none.to_string().contains("direction"), "{none}");
        let quiet = parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\ncrit = 1\ndirection = \"above\"\nrepeat = []\n").unwrap();
        assert_eq!(quiet[0].reminders_due(1_000_000), 0);
    }

    #[test]
    fn the_hound_ladder() {
        let r = rule(1.0, Direction::Above);
        let want = [300, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(r.reminder_offset(k as u32), Some(*w), "reminder {k}");
        }
        assert_eq!(r.reminders_due(-5), 0);
        assert_eq!(r.reminders_due(299), 0);
        assert_eq!(r.reminders_due(300), 1);
        assert_eq!(r.reminders_due(86399), 6);
        assert_eq!(r.reminders_due(86400), 7);
        assert_eq!(r.reminders_due(172800), 8);
        for e in (0..400_000).step_by(97) {
            let n = r.reminders_due(e);
            assert!(n == 0 || r.reminder_offset(n - 1).unwrap() <= e, "{e}");
            assert!(r.reminder_offset(n).unwrap() > e, "{e}");
        }
    }

    #[test]
    fn expression_rules() {
        let r = parse(
            "[[alert]]\nname = \"5xx ratio high while busy\"\ntargets = { errors = \"sumSeries(nginx.*.status.5xx)\", total = \"sumSeries(nginx.*.requests)\" }\ncrit = \"errors / total > 0.05 && total > 10\"\nwarn = \"errors / total > 0.01 && total > 10\"\n",
        )
        .unwrap()
        .remove(0);
        let Check::Expression {
            targets,
            warn,
            crit,
        } = &r.check
        else {
            panic!("an expression rule")
        };
        assert_eq!(targets[0].0, "errors");
        let crit = crit.as_ref().unwrap();
        assert!(crit.eval(&[("errors", 7.0), ("total", 100.0)]).unwrap());
        assert!(!crit.eval(&[("errors", 7.0), ("total", 8.0)]).unwrap());
        assert!(!warn
            .as_ref()
            .unwrap()
            .eval(&[("errors", 0.0), ("total", 0.0)])
            .unwrap());
        assert_eq!(
            r.level_text(Level::Crit),
            "crit: errors / total > 0.05 && total > 10"
        );
        for (bad, want) in [
            ("crit = \"errors > \"", "condition"),
            ("crit = \"nope > 1\"", "'nope'"),
            ("crit = \"errors + 1\"", "not true or false"),
            ("crit = \"errors = 1\"", "condition"),
            ("crit = \"max(errors, 1) > 2\"", "calls 'max'"),
            ("crit = 5", "condition such as"),
            (
                "crit = \"errors > 1\"\ndirection = \"above\"",
                "no direction",
            ),
        ] {
            let text =
                format!("[[alert]]\nname = \"x\"\ntargets = {{ errors = \"a.b\" }}\n{bad}\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
            let line = if bad.contains("direction") { 5 } else { 4 };
            assert!(
                e.starts_with(&format!("alerts.d/t.toml:{line}:")),
                "{bad}: {e}"
            );
        }
        let e =
            parse("[[alert]]\nname = \"x\"\ntargets = { \"5xx\" = \"a.b\" }\ncrit = \"a > 1\"\n")
                .unwrap_err();
        assert!(e.to_string().contains("'5xx'"), "{e}");
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
        // A rule's own problems point at its [[alert]] line.
        let e = parse("# one\n[[alert]]\nname = \"x\"\ntarget = \"a\"\ndirection = \"above\"\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("alerts.d/t.toml:2:"), "{e}");
        assert!(e.to_string().contains("no level"), "{e}");
        let e = parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\ndirection = \"above\"\nwarn = 95\ncrit = 85\n").unwrap_err();
        assert!(
            e.to_string().contains("warn 95 must be below crit 85"),
            "{e}"
        );
        let e = parse("[[alert]]\nname = \"x\"\ntarget = \"a\"\ndirection = \"above\"\nthreshold = 1\ncrit = 2\n").unwrap_err();
        assert!(e.to_string().contains("threshold means crit"), "{e}");
        for (bad, line) in [
            ("for = \"5 parsecs\"", 5),
            ("reduce = \"p101\"", 5),
            ("reduce = \"mode\"", 5),
            ("no_data = \"panic\"", 5),
            ("repeat = [\"1h\", \"5m\"]", 5),
            ("window = \"0s\"", 5),
        ] {
            let e = parse(&format!(
                "[[alert]]\nname = \"x\"\ntarget = \"a\"\ncrit = 1\n{bad}\ndirection = \"above\"\n"
            ))
            .unwrap_err();
            assert_eq!(e.0[0].at.map(|a| a.0), Some(line), "{bad}: {e}");
        }
        let e = parse("[[alert]\n").unwrap_err();
        assert_eq!(e.0[0].at.map(|a| a.0), Some(1), "{e}");
    }

    #[test]
    fn the_single_table_mistake_says_use_double_brackets() {
        let e = parse("# rules\n\n[alert]\nname = \"x\"\ntarget = \"a\"\nthreshold = 1\ndirection = \"above\"\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("alerts.d/t.toml:3:1:"), "{s}");
        assert!(s.contains("use [[alert]]"), "{s}");
    }

    #[test]
    fn reducers() {
        let v = [
            Some(3.0),
            None,
            Some(1.0),
            Some(f64::NAN),
            Some(2.0),
            Some(10.0),
        ];
        assert_eq!(Reduce::Last.apply(&v), Some(10.0));
        assert_eq!(Reduce::Avg.apply(&v), Some(4.0));
        assert_eq!(Reduce::Min.apply(&v), Some(1.0));
        assert_eq!(Reduce::Max.apply(&v), Some(10.0));
        assert_eq!(Reduce::Sum.apply(&v), Some(16.0));
        assert_eq!(Reduce::Median.apply(&v), Some(2.5));
        assert_eq!(Reduce::Count.apply(&v), Some(4.0));
        assert_eq!(
            Reduce::Percentile(50.0).apply(&v),
            Some(3.0),
            "nearest rank, as graphite-web"
        );
        assert_eq!(Reduce::Percentile(95.0).apply(&v), Some(10.0));
        assert_eq!(Reduce::Last.apply(&[None, None]), None);
        assert_eq!(Reduce::Sum.apply(&[None]), None);
        assert_eq!(Reduce::Count.apply(&[None]), Some(0.0));
        assert_eq!(Reduce::parse("p99.9"), Ok(Reduce::Percentile(99.9)));
    }

    #[test]
    fn definition_changes_are_worded() {
        let a = rule(0.0, Direction::Above);
        let b = rule(1000.0, Direction::Above);
        assert_eq!(
            definition_change(&a.definition(), &b.definition()),
            "crit 0 → 1000"
        );
        assert_eq!(definition_change(&a.definition(), &a.definition()), "");
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
        assert!(s.contains("b.toml:2"), "{s}");
        assert!(s.contains("a.toml:1"), "{s}");
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
            .any(|r| r.target_text() == "collectd.*.load.load.shortterm"));
        assert!(set
            .rules
            .iter()
            .any(|r| r.direction() == Some(Direction::Below)));
        assert!(set
            .rules
            .iter()
            .any(|r| matches!(r.check, Check::Expression { .. })));
    }

    #[test]
    fn slugs_and_levels() {
        assert_eq!(slugify("  Load: web1 / 5m  "), "load-web1-5m");
        assert_eq!(slugify("✓"), "rule");
        assert!(Direction::Above.crossed(4.0, 4.0));
        assert!(!Direction::Above.crossed(3.9, 4.0));
        assert!(Direction::Below.crossed(4.0, 4.0));
        assert!(!Direction::Below.crossed(4.1, 4.0));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        let text = "ab\n[[alert]]\nné = 1\n";
        let index = LineIndex::new(text);
        for offset in 0..=text.len() {
            if text.is_char_boundary(offset) {
                assert_eq!(index.line_col(offset), line_col(text, offset), "{offset}");
            }
        }
        assert_eq!(index.header_before(1), 0);
        assert_eq!(index.header_before(15), 3);
    }
}
