//! The Graphite target language: parse a target (`parse`), read `from`/`until` (`attime`),
//! evaluate it (`eval`) with the registered functions (`functions`) against a
//! [`MetricSource`] (`source`: the local store, the cluster of `[cluster].servers` merged
//! with it ([`ClusterSource`]), or [`MemorySource`] in tests),
//! giving [`Series`] for the output formats and the graph renderer.
//!
//! Read-only: nothing in here writes to a source, and nothing here knows whether a series
//! came from disk or from a peer.

mod ast;
mod attime;
mod budget;
mod cluster;
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
pub use attime::{format_local, parse_at_time, parse_time_offset, AtTimeError};
pub use budget::{series_bytes, BudgetError, MemoryBudget, Reservation, BYTES_PER_POINT};
pub use cluster::{merge_nodes, merge_series, Cluster, ClusterSource, PeerError};
pub use eval::{EvalContext, EvalError, QueryLimits, RequestState, Value};
pub use local::LocalSource;
pub use memory::MemorySource;
pub use parse::{parse_target, ParseError};
pub use series::{ConsolidationFunc, GraphHints, Series};
pub use signature::{
    Args, FunctionDef, LegacyOption, Param, ParamDefault, ParamType, PythonDefault,
};
pub use source::{BatchVisitor, MetricSource, RegexBuilderFn, TagExpr, NO_EVENT_STORE};

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
    let exprs = parse_all(req, limits)?;
    evaluate_parsed(source, limits, req, &exprs, RequestState::default()).map(|(s, f, _)| (s, f))
}

/// As [`evaluate_reporting`], within the render memory budget `budget`: before anything is
/// fetched the request reserves what its series are estimated to hold (for each path
/// expression, the series it matches × [`series_bytes`] of [`MetricSource::points_hint`]); each fetch charges what it really read, growing the reservation
/// when the estimate fell short; the reservation returned covers the answer's series, to be
/// held until they are written out. Errors as [`evaluate_reporting`], and
/// [`EvalError::TooLarge`] (more than the whole budget) or [`EvalError::Busy`] (the budget
/// stayed taken by other requests).
pub fn evaluate_within(
    source: &dyn MetricSource,
    limits: &QueryLimits,
    req: &Request,
    budget: &std::sync::Arc<MemoryBudget>,
) -> Result<(Vec<Series>, Vec<String>, Reservation), QueryError> {
    let exprs = parse_all(req, limits)?;
    let deadline = Instant::now() + req.timeout;
    let mut found = Vec::new();
    let estimate = estimate_bytes(source, limits, req, &exprs, &mut found);
    let reservation = budget
        .reserve(estimate, deadline)
        .map_err(|e| QueryError::Eval(e.into()))?;
    let state = RequestState::with_memory(budget::RequestMemory::new(reservation, deadline));
    for (pattern, leaves) in found {
        state.note_found(&pattern, leaves);
    }
    let (series, failures, memory) = evaluate_parsed(source, limits, req, &exprs, state)?;
    let mut reservation = match memory {
        Some(m) => m.into_reservation(),
        None => budget
            .reserve(0, deadline)
            .map_err(|e| QueryError::Eval(e.into()))?,
    };
    // What is held now is the answer (fetched series not in it are gone): the reservation
    // follows it, up or down.
    let held: usize = series.iter().map(|s| series_bytes(s.values.len())).sum();
    if held > reservation.bytes() {
        reservation
            .grow(held - reservation.bytes(), deadline)
            .map_err(|e| QueryError::Eval(e.into()))?;
    } else {
        reservation.release(reservation.bytes() - held);
    }
    Ok((series, failures, reservation))
}

fn parse_all(req: &Request, limits: &QueryLimits) -> Result<Vec<Expr>, QueryError> {
    req.targets
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| parse_target(t, limits.max_depth).map_err(QueryError::Parse))
        .collect()
}

/// The bytes the series `exprs` will fetch hold, as far as can be told before fetching: for
/// each path expression (templated ones aside), the series it matches × [`series_bytes`] of
/// the points the first, middle and last of them would return (the most of the three). Functions that widen the range
/// (`movingAverage`'s preview, `timeStack`) or find series by tags are not foreseen: their
/// fetches charge as they go. The leaves each path expression matched (within the
/// series limit) go to `found`, for the fetches to use rather than find them again.
fn estimate_bytes(
    source: &dyn MetricSource,
    limits: &QueryLimits,
    req: &Request,
    exprs: &[Expr],
    found: &mut Vec<(String, Vec<String>)>,
) -> usize {
    let mut paths = Vec::new();
    for e in exprs {
        e.paths(&mut paths);
    }
    // Each occurrence is fetched (or copied from the request's fetch cache) into its own
    // series; a path met more than once also keeps one copy in that cache.
    paths.sort_unstable();
    let mut total = 0usize;
    for group in paths.chunk_by(|a, b| a == b) {
        let p = group[0];
        let copies = if group.len() > 1 { group.len() + 1 } else { 1 };
        if p.contains('$') {
            continue;
        }
        let nodes = source.find(p, true, limits.max_series_per_target + 1);
        let leaves: Vec<&str> = nodes
            .iter()
            .filter(|n| n.is_leaf)
            .map(|n| n.path.as_str())
            .collect();
        if nodes.len() > limits.max_series_per_target {
            continue;
        }
        found.push((
            p.to_string(),
            leaves.iter().map(|l| l.to_string()).collect(),
        ));
        if leaves.is_empty() {
            continue;
        }
        let per = [0, leaves.len() / 2, leaves.len() - 1]
            .iter()
            .map(|&i| source.points_hint(leaves[i], req.start, req.end, req.now))
            .max()
            .unwrap_or(0);
        total = total.saturating_add(
            series_bytes(per)
                .saturating_mul(leaves.len())
                .saturating_mul(copies),
        );
    }
    total
}

type Evaluated = (Vec<Series>, Vec<String>, Option<budget::RequestMemory>);

fn evaluate_parsed(
    source: &dyn MetricSource,
    limits: &QueryLimits,
    req: &Request,
    exprs: &[Expr],
    state: RequestState,
) -> Result<Evaluated, QueryError> {
    // A path met more than once (`asPercent(a.*, sumSeries(a.*))`) is read once.
    let mut paths = Vec::new();
    for e in exprs {
        e.paths(&mut paths);
    }
    paths.sort_unstable();
    let repeated: Vec<&str> = paths
        .chunk_by(|a, b| a == b)
        .filter(|g| g.len() > 1 && !g[0].contains('$'))
        .map(|g| g[0])
        .collect();
    state.expect_repeats(&repeated, req.start, req.end, req.now);
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
    for expr in exprs {
        out.extend(ctx.eval_target(expr).map_err(QueryError::Eval)?);
    }
    let failures = std::mem::take(&mut *state.failures.lock());
    if !failures.is_empty() && state.read.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return Err(QueryError::Eval(EvalError::Unreadable(format!(
            "every series failed to read: {}",
            failures.join("; ")
        ))));
    }
    Ok((out, failures, state.memory))
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
