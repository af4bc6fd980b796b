//! Checking a rule: its targets evaluated over the rule's window, each series reduced to
//! one value (`reduce`, Hound's last value by default) and compared with the rule's levels
//! or conditions. Also the series drawn in the mail's graphs.
//!
//! Owns what a check finds ([`Outcome`], [`Reading`]) and where targets are evaluated
//! ([`Backend`]: in-process through [`crate::query`], or a remote Graphite). The state
//! machine (`state.rs`) steps on outcomes; nothing here knows of rule state. Reads only.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::remote::RemoteGraphite;
use super::rule::{Check, Level, Rule};
use crate::config::QuerySettings;
use crate::query::{evaluate, MetricSource, QueryLimits, Request, Series};

/// How a check evaluates targets: limits, zone and time allowed (from `[query]`).
#[derive(Debug, Clone)]
pub struct QueryContext {
    /// Evaluation limits.
    pub limits: QueryLimits,
    /// Zone for from/until arithmetic and the times shown in mail.
    pub tz: Tz,
    /// Time allowed per evaluation.
    pub timeout: Duration,
}

impl QueryContext {
    /// From `[query]`: the same zone, limits and timeout as `/render` requests get.
    pub fn from_settings(q: &QuerySettings) -> QueryContext {
        QueryContext {
            limits: QueryLimits::from_settings(q),
            tz: q.timezone,
            timeout: q.request_timeout,
        }
    }
}

/// Where targets are evaluated.
#[derive(Clone)]
pub enum Backend {
    /// In-process, on this server's data (the store, with the event store for `events()`).
    Local {
        /// The data.
        source: Arc<dyn MetricSource>,
        /// Limits, zone and timeout.
        ctx: QueryContext,
    },
    /// Remote mode (`[alerting] graphite_url`): another Graphite's `/render?format=json`.
    Remote(Arc<RemoteGraphite>),
}

impl Backend {
    /// The series of `target` over `[from, until]` (epoch seconds), or why it failed.
    pub fn evaluate(&self, target: &str, from: i64, until: i64) -> Result<Vec<Series>, String> {
        match self {
            Backend::Local { source, ctx } => evaluate(
                &**source,
                &ctx.limits,
                &Request {
                    targets: vec![target.to_string()],
                    start: from,
                    end: until,
                    now: until,
                    tz: ctx.tz,
                    x_files_factor: 0.0,
                    max_data_points: None,
                    template: Vec::new(),
                    timeout: ctx.timeout,
                },
            )
            .map_err(|e| e.to_string()),
            Backend::Remote(r) => r
                .render(&[target.to_string()], from, until)
                .map_err(|e| e.to_string()),
        }
    }
}

/// What one series of a rule looks like at a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The series name (as `/render` names it); `""` stands for the whole target when it
    /// gives no series at all.
    pub series: String,
    /// The reduced value; `None` when the series has no data (no point within
    /// `no_data_after`). For an expression rule: the first target's value.
    pub value: Option<f64>,
    /// The level it crosses, if any.
    pub level: Option<Level>,
    /// Timestamp of its last non-null point (epoch seconds), if one was in the fetched span.
    pub last_seen: Option<i64>,
    /// For expression rules, every variable's value (`errors = 7, total = 100`); empty else.
    pub detail: String,
}

/// The result of evaluating a rule once.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Evaluated: one reading per series (an empty list: the target matched no series).
    Checked(Vec<Reading>),
    /// A target could not be evaluated (parse or evaluation error, timeout, remote down),
    /// or a condition failed to give true or false.
    Error(String),
}

/// The last non-null (and non-NaN) value of `s`, with its timestamp.
pub fn last_value(s: &Series) -> Option<(f64, i64)> {
    s.datapoints()
        .into_iter()
        .rev()
        .find_map(|(v, t)| v.filter(|v| !v.is_nan()).map(|v| (v, t)))
}

/// The reduced value of `s` at `now` and its last point's time: `None` value when no point
/// lies within `no_data_after`; over the window when it has points, otherwise the last
/// value (a window shorter than `no_data_after`).
fn reduce(rule: &Rule, s: &Series, now: i64) -> (Option<f64>, Option<i64>) {
    let last = last_value(s);
    let Some((last_v, last_t)) = last else {
        return (None, None);
    };
    if last_t < now - rule.no_data_after {
        return (None, Some(last_t));
    }
    let from = now - rule.window;
    let window: Vec<Option<f64>> = s
        .datapoints()
        .into_iter()
        .filter(|(_, t)| *t >= from && *t <= now)
        .map(|(v, _)| v)
        .collect();
    let v = rule.reduce.apply(&window).or(Some(last_v));
    (v, Some(last_t))
}

/// The span fetched for a check: enough for both the window and the no-data horizon.
pub fn span(rule: &Rule) -> i64 {
    rule.window.max(rule.no_data_after).max(1)
}

/// Evaluates `rule` at `now` (epoch seconds). Never panics on bad data: an evaluation
/// failure is [`Outcome::Error`] with its message.
pub fn check(backend: &Backend, rule: &Rule, now: i64) -> Outcome {
    let from = now - span(rule);
    match &rule.check {
        Check::Threshold {
            target,
            direction,
            warn,
            crit,
        } => match backend.evaluate(target, from, now) {
            Err(e) => Outcome::Error(e),
            Ok(series) => Outcome::Checked(
                series
                    .iter()
                    .map(|s| {
                        let (value, last_seen) = reduce(rule, s, now);
                        let level = value.and_then(|v| {
                            if crit.is_some_and(|c| direction.crossed(v, c)) {
                                Some(Level::Crit)
                            } else if warn.is_some_and(|w| direction.crossed(v, w)) {
                                Some(Level::Warn)
                            } else {
                                None
                            }
                        });
                        Reading {
                            series: s.name.clone(),
                            value,
                            level,
                            last_seen,
                            detail: String::new(),
                        }
                    })
                    .collect(),
            ),
        },
        Check::Expression {
            targets,
            warn,
            crit,
        } => {
            let mut evaluated = Vec::with_capacity(targets.len());
            for (name, target) in targets {
                match backend.evaluate(target, from, now) {
                    Err(e) => return Outcome::Error(format!("targets.{name}: {e}")),
                    Ok(s) => evaluated.push((name.as_str(), s)),
                }
            }
            let many: Vec<&str> = evaluated
                .iter()
                .filter(|(_, s)| s.len() > 1)
                .map(|(n, _)| *n)
                .collect();
            if many.len() > 1 {
                return Outcome::Error(format!(
                    "targets {} each give several series; at most one target of an expression \
                     rule may (the others must give one series each, e.g. with sumSeries)",
                    many.join(" and ")
                ));
            }
            // The series dimension: the one target with several series, else the first.
            let dim = many
                .first()
                .and_then(|m| evaluated.iter().position(|(n, _)| n == m))
                .unwrap_or(0);
            let rows = evaluated[dim].1.len();
            if evaluated.iter().all(|(_, s)| s.is_empty()) {
                return Outcome::Checked(Vec::new());
            }
            let mut readings = Vec::with_capacity(rows.max(1));
            for i in 0..rows.max(1) {
                let mut vars: Vec<(&str, f64)> = Vec::with_capacity(evaluated.len());
                let mut missing = false;
                let mut last_seen: Option<i64> = None;
                for (j, (name, series)) in evaluated.iter().enumerate() {
                    let s = if j == dim {
                        series.get(i)
                    } else {
                        series.first()
                    };
                    let (v, seen) = match s {
                        Some(s) => reduce(rule, s, now),
                        None => (None, None),
                    };
                    last_seen = match (last_seen, seen) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    match v {
                        Some(v) => vars.push((name, v)),
                        None => missing = true,
                    }
                }
                let series = evaluated[dim]
                    .1
                    .get(i)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let detail = vars
                    .iter()
                    .map(|(n, v)| format!("{n} = {}", super::format::value(*v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut level = None;
                if !missing {
                    for (l, c) in [(Level::Crit, crit), (Level::Warn, warn)] {
                        if let Some(c) = c {
                            match c.eval(&vars) {
                                Ok(true) => {
                                    level = Some(l);
                                    break;
                                }
                                Ok(false) => {}
                                Err(e) => return Outcome::Error(e),
                            }
                        }
                    }
                }
                readings.push(Reading {
                    series,
                    value: if missing {
                        None
                    } else {
                        vars.first().map(|v| v.1)
                    },
                    level,
                    last_seen,
                    detail,
                });
            }
            Outcome::Checked(readings)
        }
    }
}

/// The series of `rule`'s targets over `[now - span, now]`, for graphs. A target that
/// fails to evaluate gives no series (the graph then says "No Data").
pub fn history(backend: &Backend, rule: &Rule, now: i64, span: i64) -> Vec<Series> {
    let mut out = Vec::new();
    for (_, target) in rule.targets() {
        if let Ok(s) = backend.evaluate(target, now - span, now) {
            out.extend(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::tests::parse;
    use crate::config::{parse_schemas, StorageRules};
    use crate::store::Store;
    use crate::whisper::Preallocation;

    fn backend(points: &[(&str, i64, f64)]) -> (tempfile::TempDir, Backend) {
        let dir = tempfile::tempdir().unwrap();
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 10s:1d\n", "t").unwrap(),
            vec![],
        );
        let store = Store::open(dir.path(), rules, 100_000, Preallocation::Sparse, 0).unwrap();
        for (m, t, v) in points {
            store.insert(m, *t, *v);
        }
        let ctx = QueryContext {
            limits: QueryLimits::default(),
            tz: Tz::UTC,
            timeout: Duration::from_secs(10),
        };
        (
            dir,
            Backend::Local {
                source: Arc::new(store),
                ctx,
            },
        )
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn each_series_is_reduced_and_levelled() {
        let (_d, b) = backend(&[
            ("h.a.load", NOW - 100, 1.0),
            ("h.a.load", NOW - 50, 3.0),
            ("h.b.load", NOW - 300, 9.0),
            ("h.c.load", NOW - 3000, 9.0),
            ("h.d.load", NOW - 20, 6.0),
        ]);
        let rule = parse("[[alert]]\nname = \"x\"\ntarget = \"h.*.load\"\nwarn = 5\ncrit = 8\n")
            .unwrap()
            .remove(0);
        let Outcome::Checked(r) = check(&b, &rule, NOW) else {
            panic!("evaluates")
        };
        let got: Vec<(&str, Option<f64>, Option<Level>)> = r
            .iter()
            .map(|r| (r.series.as_str(), r.value, r.level))
            .collect();
        assert_eq!(
            got,
            vec![
                ("h.a.load", Some(3.0), None),
                ("h.b.load", Some(9.0), Some(Level::Crit)),
                ("h.c.load", None, None),
                ("h.d.load", Some(6.0), Some(Level::Warn)),
            ]
        );
        assert_eq!(r[2].last_seen, None, "older than the fetched span");
        let avg = parse("[[alert]]\nname = \"x\"\ntarget = \"h.a.load\"\ncrit = 2.5\ndirection = \"below\"\nreduce = \"avg\"\n")
            .unwrap()
            .remove(0);
        let Outcome::Checked(r) = check(&b, &avg, NOW) else {
            panic!()
        };
        assert_eq!((r[0].value, r[0].level), (Some(2.0), Some(Level::Crit)));
        let nothing = parse(
            "[[alert]]\nname = \"x\"\ntarget = \"h.nothing\"\ncrit = 1\ndirection = \"above\"\n",
        )
        .unwrap()
        .remove(0);
        assert_eq!(check(&b, &nothing, NOW), Outcome::Checked(vec![]));
        let bad = parse(
            "[[alert]]\nname = \"x\"\ntarget = \"h.a.load\"\ncrit = 1\ndirection = \"above\"\n",
        )
        .unwrap()
        .remove(0);
        let mut bad = bad;
        bad.check = Check::Threshold {
            target: "nosuch(h.a.load)".into(),
            direction: super::super::rule::Direction::Above,
            warn: None,
            crit: Some(1.0),
        };
        assert!(matches!(check(&b, &bad, NOW), Outcome::Error(_)));
    }

    #[test]
    fn no_data_after_a_quiet_span() {
        let (_d, b) = backend(&[("q.a", NOW - 700, 5.0), ("q.b", NOW - 1000, 5.0)]);
        let rule = parse("[[alert]]\nname = \"x\"\ntarget = \"q.*\"\ncrit = 1\ndirection = \"above\"\nno_data_after = \"15m\"\n")
            .unwrap()
            .remove(0);
        let Outcome::Checked(r) = check(&b, &rule, NOW) else {
            panic!()
        };
        assert_eq!(
            r[0].value,
            Some(5.0),
            "outside the window, inside no_data_after: the last value"
        );
        assert_eq!(r[1].value, None);
        assert_eq!(r[1].last_seen, None, "older than the fetched span");
    }

    #[test]
    fn expression_rules_broadcast_single_series() {
        let (_d, b) = backend(&[
            ("ng.web1.status.5xx", NOW - 10, 6.0),
            ("ng.web2.status.5xx", NOW - 10, 1.0),
            ("ng.web1.requests", NOW - 10, 50.0),
            ("ng.web2.requests", NOW - 10, 50.0),
        ]);
        let rule = parse("[[alert]]\nname = \"ratio\"\ntargets = { errors = \"ng.*.status.5xx\", total = \"sumSeries(ng.*.requests)\" }\ncrit = \"errors / total > 0.05 && total > 10\"\nwarn = \"errors / total > 0.01\"\n")
            .unwrap()
            .remove(0);
        let Outcome::Checked(r) = check(&b, &rule, NOW) else {
            panic!()
        };
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].series.as_str(), r[0].level),
            ("ng.web1.status.5xx", Some(Level::Crit))
        );
        assert_eq!(r[1].level, None, "1/100 is not above 0.01");
        assert_eq!(r[0].detail, "errors = 6, total = 100");
        let both = parse("[[alert]]\nname = \"x\"\ntargets = { a = \"ng.*.status.5xx\", b = \"ng.*.requests\" }\ncrit = \"a > b\"\n")
            .unwrap()
            .remove(0);
        assert!(matches!(check(&b, &both, NOW), Outcome::Error(m) if m.contains("several series")));
    }
}
