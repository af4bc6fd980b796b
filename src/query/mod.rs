//! The Graphite target language: parse a target (`parse`), read `from`/`until` (`attime`),
//! evaluate it (`eval`) with the registered functions (`functions`) against a
//! [`MetricSource`] (`source`: the local store, a cluster, or [`MemorySource`] in tests),
//! giving [`Series`] for the output formats and the graph renderer.
//!
//! Read-only: nothing in here writes to a source, and nothing here knows whether a series
//! came from disk or from a peer.

mod ast;
mod attime;
mod eval;
// A namespace: the function registry (`functions::lookup`, `functions::all`), one file per
// graphite-web family inside it.
pub mod functions;
mod local;
mod memory;
mod parse;
mod series;
mod signature;
mod source;

pub use ast::{Call, Expr, Template};
pub use attime::{format_local, parse_at_time, AtTimeError};
pub use eval::{EvalContext, EvalError, QueryLimits, RequestState, Value};
pub use local::LocalSource;
pub use memory::MemorySource;
pub use parse::{parse_target, ParseError};
pub use series::{ConsolidationFunc, GraphHints, Series};
pub use signature::{
    Args, FunctionDef, LegacyOption, Param, ParamDefault, ParamType, PythonDefault,
};
pub use source::{MetricSource, RegexBuilderFn, TagExpr, NO_EVENT_STORE};

use std::time::{Duration, Instant};

use chrono_tz::Tz;

/// One evaluation request: what `/render` and the alert evaluator both ask.
#[derive(Debug, Clone)]
pub struct Request {
    /// Targets, each a full expression.
    pub targets: Vec<String>,
    /// Start of the range (epoch seconds).
    pub start: i64,
    /// End of the range (epoch seconds).
    pub end: i64,
    /// Reference "now" (epoch seconds).
    pub now: i64,
    /// Time zone.
    pub tz: Tz,
    /// Default xFilesFactor.
    pub x_files_factor: f64,
    /// `maxDataPoints`, if any (functions may read it; output applies it).
    pub max_data_points: Option<usize>,
    /// `template[name]=value` parameters.
    pub template: Vec<(String, String)>,
    /// Time allowed.
    pub timeout: Duration,
}

/// Why a request could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    /// A target did not parse.
    Parse(ParseError),
    /// Evaluation failed.
    Eval(EvalError),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Parse(e) => write!(f, "{e}"),
            QueryError::Eval(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// Parses and evaluates every target of `req`, concatenating their series in target order
/// (graphite-web's `evaluateTarget` over the target list), reading `source`. Blank targets
/// are skipped. Series whose file cannot be read are left out (see [`evaluate_reporting`]).
pub fn evaluate(
    source: &dyn MetricSource,
    limits: &QueryLimits,
    req: &Request,
) -> Result<Vec<Series>, QueryError> {
    evaluate_reporting(source, limits, req).map(|(series, _)| series)
}

/// As [`evaluate`], also returning the series that failed to read (`name: reason`, e.g. a
/// truncated whisper file), which were left out of the answer. When the request read series
/// and every one failed, it fails with [`EvalError::Unreadable`], as graphite-web fails when
/// all its fetches fail.
pub fn evaluate_reporting(
    source: &dyn MetricSource,
    limits: &QueryLimits,
    req: &Request,
) -> Result<(Vec<Series>, Vec<String>), QueryError> {
    let state = RequestState::default();
    let ctx = EvalContext {
        source,
        start: req.start,
        end: req.end,
        now: req.now,
        tz: req.tz,
        x_files_factor: req.x_files_factor,
        max_data_points: req.max_data_points,
        limits,
        deadline: Instant::now() + req.timeout,
        request_template: &req.template,
        replacements: None,
        state: &state,
        call: functions::call,
    };
    let mut out = Vec::new();
    for t in &req.targets {
        if t.trim().is_empty() {
            continue;
        }
        let expr = parse_target(t, limits.max_depth).map_err(QueryError::Parse)?;
        out.extend(ctx.eval_target(&expr).map_err(QueryError::Eval)?);
    }
    let failures = std::mem::take(&mut *state.failures.lock());
    if !failures.is_empty() && state.read.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return Err(QueryError::Eval(EvalError::Unreadable(format!(
            "every series failed to read: {}",
            failures.join("; ")
        ))));
    }
    Ok((out, failures))
}

#[cfg(test)]
mod eval_tests {
    use std::time::Instant;

    use chrono_tz::Tz;

    use super::*;

    #[test]
    fn fetches_globs_sorted_and_templates_substitute() {
        let now = 1_700_000_000;
        let source = MemorySource::with_points(&[
            ("a.y", now - 30, 2.0),
            ("a.x", now - 30, 1.0),
            ("b.x", now - 30, 5.0),
        ]);
        let limits = QueryLimits::default();
        let state = RequestState::default();
        let ctx = EvalContext {
            source: &source,
            start: now - 60,
            end: now,
            now,
            tz: Tz::UTC,
            x_files_factor: 0.0,
            max_data_points: None,
            limits: &limits,
            deadline: Instant::now() + std::time::Duration::from_secs(10),
            request_template: &[],
            replacements: None,
            state: &state,
            call: functions::call,
        };
        let s = ctx.eval_target(&parse_target("a.*", 10).unwrap()).unwrap();
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            vec!["a.x", "a.y"]
        );
        assert_eq!(s[0].path_expression, "a.*");
        assert_eq!(s[0].step, 10);
        let s = ctx
            .eval_target(&parse_target("template($p.x, p='b')", 10).unwrap())
            .unwrap();
        assert_eq!(s[0].name, "b.x");
        let e = ctx
            .eval_target(&parse_target("nosuch(a.x)", 10).unwrap())
            .unwrap_err();
        assert!(matches!(e, EvalError::BadRequest(m) if m.contains("unknown function 'nosuch'")));
        let tight = QueryLimits {
            max_series_per_target: 1,
            ..QueryLimits::default()
        };
        let fresh = RequestState::default();
        let ctx2 = EvalContext {
            limits: &tight,
            state: &fresh,
            ..ctx.clone()
        };
        assert!(matches!(
            ctx2.eval_target(&parse_target("a.*", 10).unwrap()),
            Err(EvalError::TooLarge(_))
        ));
    }
}
