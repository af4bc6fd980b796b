//! Checking a rule: its target evaluated over the last ten minutes (Hound's window, where
//! Hound asks graphite-web for `keepLastValue(target)&from=-10mins`), in-process or by a
//! remote Graphite (an [`Evaluator`]), keeping the last non-null value of every series. Also
//! the series drawn in the mail's graph.
//!
//! Owns what a check finds ([`Outcome`], [`Reading`]) and its window ([`WINDOW`]);
//! the state machine (`state.rs`) steps on outcomes, and nothing here knows of rule state.
//! A client of [`crate::query`] (or of a remote render API) only: reads, never writes.

use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::remote::Evaluator;
use super::rule::Rule;
use crate::config::QuerySettings;
use crate::query::{QueryLimits, Series};

/// The check window, in seconds: a rule looks at the last non-null value within it.
pub const WINDOW: i64 = 600;

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

/// The last non-null value of one series in the check window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The series name (as `/render` names it).
    pub series: String,
    /// Its last non-null value.
    pub value: f64,
    /// Timestamp of that value (epoch seconds).
    pub at: i64,
}

/// The result of evaluating a rule's target once.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Evaluated: one reading per series that had a value; `series` counts all series.
    Checked {
        /// Readings of the series with data.
        readings: Vec<Reading>,
        /// Series the target gave, with or without data.
        series: usize,
    },
    /// Evaluation failed (parse or evaluation error, timeout).
    Error(String),
}

/// The last non-null (and non-NaN) value of `s`, with its timestamp.
pub fn last_value(s: &Series) -> Option<(f64, i64)> {
    s.datapoints()
        .into_iter()
        .rev()
        .find_map(|(v, t)| v.filter(|v| !v.is_nan()).map(|v| (v, t)))
}

/// Evaluates `rule`'s target over `[now - WINDOW, now]` (epoch seconds), in-process or in
/// remote mode as `eval` says. Never panics on bad data: an evaluation failure is
/// [`Outcome::Error`] with its message.
pub fn check(eval: &Evaluator<'_>, rule: &Rule, now: i64) -> Outcome {
    match eval.series(&rule.target, now - WINDOW, now) {
        Err(e) => Outcome::Error(e.to_string()),
        Ok(series) => {
            let readings = series
                .iter()
                .filter_map(|s| {
                    last_value(s).map(|(value, at)| Reading {
                        series: s.name.clone(),
                        value,
                        at,
                    })
                })
                .collect();
            Outcome::Checked {
                readings,
                series: series.len(),
            }
        }
    }
}

/// The series of `rule`'s target over `[now - span, now]`, for graphs. An evaluation error
/// gives no series (the graph then says "No Data").
pub fn history(eval: &Evaluator<'_>, rule: &Rule, now: i64, span: i64) -> Vec<Series> {
    eval.series(&rule.target, now - span, now)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::Direction;
    use crate::config::{parse_schemas, StorageRules};
    use crate::store::Store;
    use crate::whisper::Preallocation;

    #[test]
    fn last_non_null_value_of_each_series() {
        let dir = tempfile::tempdir().unwrap();
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 10s:1d\n", "t").unwrap(),
            vec![],
        );
        let store = Store::open(dir.path(), rules, 100_000, Preallocation::Sparse, 0).unwrap();
        let now = 1_700_000_000;
        store.insert("h.a.load", now - 100, 1.0);
        store.insert("h.a.load", now - 50, 3.0);
        store.insert("h.b.load", now - 300, 9.0);
        store.insert("h.c.load", now - 3000, 9.0);
        let q = QueryContext {
            limits: QueryLimits::default(),
            tz: Tz::UTC,
            timeout: Duration::from_secs(10),
        };
        let mut rule = crate::alert::rule::tests::rule(5.0, Direction::Above);
        rule.target = "h.*.load".into();
        let eval = Evaluator::Local {
            source: &store,
            ctx: &q,
        };
        let Outcome::Checked { readings, series } = check(&eval, &rule, now) else {
            panic!("evaluates")
        };
        assert_eq!(series, 3);
        assert_eq!(
            readings,
            vec![
                Reading {
                    series: "h.a.load".into(),
                    value: 3.0,
                    at: now - 50
                },
                Reading {
                    series: "h.b.load".into(),
                    value: 9.0,
                    at: now - 300
                }
            ]
        );
        rule.target = "h.nothing".into();
        assert_eq!(
            check(&eval, &rule, now),
            Outcome::Checked {
                readings: vec![],
                series: 0
            }
        );
        rule.target = "nosuch(h.a.load)".into();
        assert!(matches!(check(&eval, &rule, now), Outcome::Error(_)));
    }
}
