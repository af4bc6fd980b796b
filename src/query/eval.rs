//! The evaluator: turns a parsed target into a series list, fetching path expressions from the
//! request's [`MetricSource`] and calling registered functions, as graphite-web's
//! `evaluateTarget` does.
//!
//! The context carries the request's time range (`start`/`end`, epoch seconds), its `now`
//! (which picks the whisper archive), time zone, xFilesFactor, template values and limits.
//! Functions that need data from another range (moving windows, `timeShift`, Holt-Winters)
//! evaluate their argument again in a context from [`EvalContext::with_range`]. Nothing here
//! writes.

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono_tz::Tz;
use parking_lot::Mutex;

use super::ast::{Call, Expr};
use super::budget::{series_bytes, BudgetError, RequestMemory};
use super::series::Series;
use super::source::{FetchedSeries, MetricSource};

/// Why a target could not be evaluated; the API maps each kind to an HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// The request is wrong (unknown function, bad argument, …): HTTP 400.
    BadRequest(String),
    /// The answer would exceed a limit (series, points): HTTP 413.
    TooLarge(String),
    /// The request ran past its time limit: HTTP 503.
    Timeout(String),
    /// Every series the request read failed to read (corrupt or unreadable files): HTTP 500,
    /// as graphite-web fails when all its fetches fail.
    Unreadable(String),
    /// The render memory budget (`query.max_memory`) stayed taken by other requests: HTTP 503.
    Busy(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::BadRequest(m)
            | EvalError::TooLarge(m)
            | EvalError::Timeout(m)
            | EvalError::Unreadable(m)
            | EvalError::Busy(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EvalError {}

/// An evaluated argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A series list.
    Series(Vec<Series>),
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// `None`.
    None,
}

/// Limits of one request.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Most series one path expression may match.
    pub max_series_per_target: usize,
    /// Most datapoints fetched for the whole request.
    pub max_points: usize,
    /// Deepest call nesting.
    pub max_depth: usize,
}

impl QueryLimits {
    /// The limits `[query]` sets (`max_series_per_target`, `max_points_per_response`,
    /// `max_expression_depth`), the same for `/render` and the alert evaluator.
    pub fn from_settings(q: &crate::config::QuerySettings) -> QueryLimits {
        QueryLimits {
            max_series_per_target: q.max_series_per_target,
            max_points: q.max_points_per_response,
            max_depth: q.max_expression_depth,
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_series_per_target: 50_000,
            max_points: 50_000_000,
            max_depth: 64,
        }
    }
}

/// Fetched series of one request by (path expression, start, end, now); `None` for a path
/// fetched once so far (see [`EvalContext::fetch`]).
type FetchCache = HashMap<(String, i64, i64, i64), Option<Vec<Series>>>;

/// State shared by every context of one request: fetch cache and budgets, and the two pieces
/// of graphite-web's `requestContext` that functions change for the rest of the request.
#[derive(Default)]
pub struct RequestState {
    fetched: Mutex<FetchCache>,
    points: AtomicUsize,
    /// Series read successfully so far (to tell "some failed" from "all failed").
    pub read: AtomicUsize,
    /// Series that failed to read (corrupt files): `name: reason`, in the order met.
    pub failures: Mutex<Vec<String>>,
    /// graphite-web's `requestContext['totalStack']`: the running totals of each named stack
    /// of `stacked()`, shared by every target of the request (one value per step index).
    pub stacks: Mutex<HashMap<String, Vec<f64>>>,
    /// graphite-web's `requestContext['xFilesFactor']` once `setXFilesFactor` changed it: the
    /// xFilesFactor of series fetched afterwards and of series functions build from nothing.
    pub x_files_factor: Mutex<Option<f64>>,
    /// The request's share of the render memory budget, charged by every fetch; `None` for
    /// evaluations outside it (alert rules, tests).
    pub memory: Option<RequestMemory>,
    /// The leaves of path expressions the memory estimate already looked up, taken by their
    /// first fetch instead of a second find (ten thousand names are 15 ms of index walk).
    found: Mutex<HashMap<String, Vec<String>>>,
}

impl RequestState {
    /// Notes that each of `paths` will be fetched more than once over `[start, end)` at
    /// `now`, so that its first fetch is kept for the others (as graphite-web prefetches each
    /// path of a request once): without it a path is kept only from its second fetch on,
    /// and read twice — from every server, in a cluster.
    pub fn expect_repeats(&self, paths: &[&str], start: i64, end: i64, now: i64) {
        let mut fetched = self.fetched.lock();
        for p in paths {
            fetched
                .entry((p.to_string(), start, end, now))
                .or_insert(None);
        }
    }

    /// Keeps `leaves`, the leaf names path expression `pattern` matched just now (within
    /// `query.max_series_per_target`), for its first fetch.
    pub fn note_found(&self, pattern: &str, leaves: Vec<String>) {
        self.found.lock().insert(pattern.to_string(), leaves);
    }

    /// The state of a request evaluated within its share of the render memory budget.
    pub fn with_memory(memory: RequestMemory) -> RequestState {
        RequestState {
            memory: Some(memory),
            ..RequestState::default()
        }
    }
}

impl From<BudgetError> for EvalError {
    fn from(e: BudgetError) -> Self {
        match e {
            BudgetError::TooLarge { .. } => EvalError::TooLarge(e.to_string()),
            BudgetError::Busy { .. } => EvalError::Busy(e.to_string()),
        }
    }
}

/// Everything a target is evaluated against.
#[derive(Clone)]
pub struct EvalContext<'a> {
    /// What to read series, tagged names and events from.
    pub source: &'a dyn MetricSource,
    /// Start of the range (epoch seconds).
    pub start: i64,
    /// End of the range (epoch seconds).
    pub end: i64,
    /// The request's "now" (epoch seconds): picks the whisper archive, anchors relative times.
    pub now: i64,
    /// Time zone of the request.
    pub tz: Tz,
    /// Default xFilesFactor of fetched series (graphite-web's `xFilesFactor` parameter).
    pub x_files_factor: f64,
    /// The request's `maxDataPoints`, if any.
    pub max_data_points: Option<usize>,
    /// Limits.
    pub limits: &'a QueryLimits,
    /// When the request must be done.
    pub deadline: Instant,
    /// The request's `template[name]=value` parameters.
    pub request_template: &'a [(String, String)],
    /// Template substitutions in force (`$name` → value), in graphite-web's order.
    pub replacements: Option<std::sync::Arc<Vec<(String, Value)>>>,
    /// Shared per-request state.
    pub state: &'a RequestState,
    /// How a function call is evaluated: the registry's dispatch (`functions::call`: look the
    /// name up, bind the arguments, run it), handed in by [`crate::query::evaluate`] so that
    /// the evaluator does not import the functions that import it.
    pub call: CallFn,
}

/// Evaluates one function call in a context (see [`EvalContext::call`]).
pub type CallFn = fn(&EvalContext<'_>, &Call) -> Result<Vec<Series>, EvalError>;

impl<'a> EvalContext<'a> {
    /// A copy over another time range (same `now`): for functions that need earlier data.
    pub fn with_range(&self, start: i64, end: i64) -> EvalContext<'a> {
        EvalContext {
            start,
            end,
            ..self.clone()
        }
    }

    /// The request's xFilesFactor as graphite-web's `requestContext.get('xFilesFactor')` reads
    /// it: the `xFilesFactor` parameter, or what `setXFilesFactor` last set in this request.
    pub fn default_x_files_factor(&self) -> f64 {
        self.state
            .x_files_factor
            .lock()
            .unwrap_or(self.x_files_factor)
    }

    /// Errors with [`EvalError::Timeout`] once the request is past its deadline; long loops in
    /// functions call it now and then.
    pub fn check_deadline(&self) -> Result<(), EvalError> {
        if Instant::now() > self.deadline {
            Err(EvalError::Timeout(
                "request took longer than query.request_timeout".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Counts `n` datapoints a function builds without fetching (e.g. `events`) against the
    /// request's budget, as fetched series are counted: [`EvalError::TooLarge`] once the
    /// request would hold more than `query.max_points_per_response`.
    pub fn charge_points(&self, n: usize) -> Result<(), EvalError> {
        let max = self.limits.max_points;
        if n > max || self.state.points.fetch_add(n, Ordering::Relaxed) + n > max {
            return Err(EvalError::TooLarge(format!(
                "request reads more than {max} datapoints (query.max_points_per_response)"
            )));
        }
        Ok(())
    }

    /// Evaluates one whole target to its series list.
    pub fn eval_target(&self, expr: &Expr) -> Result<Vec<Series>, EvalError> {
        if expr.depth() > self.limits.max_depth {
            return Err(EvalError::BadRequest(format!(
                "target nests more than {} function calls",
                self.limits.max_depth
            )));
        }
        self.eval_series(expr)
    }

    /// Evaluates an expression that must give a series list.
    pub fn eval_series(&self, expr: &Expr) -> Result<Vec<Series>, EvalError> {
        match self.eval_value(expr)? {
            Value::Series(s) => Ok(s),
            other => Err(EvalError::BadRequest(format!(
                "expected a series list, got {other:?}"
            ))),
        }
    }

    /// Evaluates any expression: literals to themselves, paths to fetched series, calls to
    /// their function's result.
    pub fn eval_value(&self, expr: &Expr) -> Result<Value, EvalError> {
        match expr {
            Expr::Str(s) => Ok(Value::Str(s.clone())),
            Expr::Int(i) => Ok(Value::Int(*i)),
            Expr::Float(f) => Ok(Value::Float(*f)),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::None => Ok(Value::None),
            Expr::Path(p) => self.eval_path(p),
            Expr::Call(c) => self.eval_call(c).map(Value::Series),
            Expr::Template(t) => {
                // graphite-web: template kwargs, then positional `$1…`, then the request's
                // template[...] parameters, later ones overriding.
                let mut reps: Vec<(String, Value)> = Vec::new();
                let mut set = |k: String, v: Value| match reps.iter_mut().find(|(n, _)| *n == k) {
                    Some(slot) => slot.1 = v,
                    None => reps.push((k, v)),
                };
                for (k, e) in &t.kwargs {
                    set(k.clone(), self.eval_value(e)?);
                }
                for (i, e) in t.args.iter().enumerate() {
                    set((i + 1).to_string(), self.eval_value(e)?);
                }
                for (k, v) in self.request_template {
                    set(k.clone(), Value::Str(v.clone()));
                }
                let inner = EvalContext {
                    replacements: Some(std::sync::Arc::new(reps)),
                    ..self.clone()
                };
                inner.eval_value(&t.expr)
            }
        }
    }

    fn eval_path(&self, path: &str) -> Result<Value, EvalError> {
        let mut expression = path.to_string();
        if let Some(reps) = &self.replacements {
            for (name, val) in reps.iter() {
                let var = format!("${name}");
                if expression == var {
                    return Ok(match val {
                        Value::Str(s) if is_numeric(s) => Value::Float(s.parse().unwrap_or(0.0)),
                        other => other.clone(),
                    });
                }
                expression = expression.replace(&var, &value_str(val));
            }
        }
        self.fetch(&expression).map(Value::Series)
    }

    /// Charges a copy of fetched series (the request's fetch cache) to the memory budget.
    fn charge_copy(&self, series: &[Series]) -> Result<(), EvalError> {
        if let Some(m) = &self.state.memory {
            m.charge(series.iter().map(|s| series_bytes(s.values.len())).sum())?;
        }
        Ok(())
    }

    fn eval_call(&self, call: &Call) -> Result<Vec<Series>, EvalError> {
        self.check_deadline()?;
        (self.call)(self, call)
    }

    /// Fetches every metric a path expression matches, over this context's range, as series
    /// sorted by name (graphite-web's `fetchData`). Tagged names and globs both work. A
    /// metric whose file is corrupt is left out and noted in the request's failures. The
    /// matches are read with one [`MetricSource::fetch_batch`] for the expression.
    pub fn fetch(&self, pattern: &str) -> Result<Vec<Series>, EvalError> {
        self.fetch_expression(pattern, || {
            if let Some(leaves) = self.state.found.lock().remove(pattern) {
                return Ok(leaves);
            }
            let limit = self.limits.max_series_per_target;
            let nodes = self.source.find(pattern, true, limit + 1);
            if nodes.len() > limit {
                return Err(EvalError::TooLarge(format!(
                    "'{pattern}' matches more than {limit} series (query.max_series_per_target)"
                )));
            }
            Ok(nodes
                .into_iter()
                .filter(|n| n.is_leaf)
                .map(|n| n.path)
                .collect())
        })
    }

    /// Fetches the tagged series `names` that `expression` (a `seriesByTag(…)` call as
    /// written) selected, as [`Self::fetch`] fetches a path expression's matches: one
    /// [`MetricSource::fetch_batch`] for the call, series sorted by name, each with the
    /// call as its path expression, kept for a second use in the request.
    pub fn fetch_named(
        &self,
        expression: &str,
        names: Vec<String>,
    ) -> Result<Vec<Series>, EvalError> {
        self.fetch_expression(expression, || Ok(names))
    }

    /// The fetch of one expression whose series are named by `names` (called only when the
    /// request has not kept the expression's series): the request's fetch cache, the point
    /// and memory budgets, and the failures list.
    fn fetch_expression(
        &self,
        expression: &str,
        names: impl FnOnce() -> Result<Vec<String>, EvalError>,
    ) -> Result<Vec<Series>, EvalError> {
        self.check_deadline()?;
        let key = (expression.to_string(), self.start, self.end, self.now);
        let xff = self.default_x_files_factor();
        // A path fetched twice in one request (e.g. `asPercent(a.*, sumSeries(a.*))`) is kept
        // from its second fetch on (from its first when the request said it would repeat,
        // `RequestState::expect_repeats`); a first fetch only notes it, so the common request
        // that reads each path once pays for no copy.
        let seen_before = match self.state.fetched.lock().get(&key) {
            Some(Some(hit)) => {
                let mut hit = hit.clone();
                self.charge_copy(&hit)?;
                for s in &mut hit {
                    s.x_files_factor = xff;
                }
                return Ok(hit);
            }
            Some(None) => true,
            None => false,
        };
        let names = names()?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut out = Vec::with_capacity(names.len());
        let mut stopped = None;
        let mut visit = |name: &str, result: Result<Option<FetchedSeries>, _>| {
            match result {
                Ok(Some(f)) => {
                    if let Err(e) = self.charge_fetched(&f) {
                        stopped = Some(e);
                        return ControlFlow::Break(());
                    }
                    let mut s = Series::new(f.name, f.start, f.end, f.step, f.values, xff);
                    s.path_expression = expression.to_string();
                    out.push(s);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("series {name} skipped: {e}");
                    self.state.failures.lock().push(format!("{name}: {e}"));
                }
            }
            ControlFlow::Continue(())
        };
        self.source.fetch_batch(
            expression, &names, self.start, self.end, self.now, &mut visit,
        );
        if let Some(e) = stopped {
            return Err(e);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        if seen_before {
            self.charge_copy(&out)?;
        }
        let keep = seen_before.then(|| out.clone());
        self.state.fetched.lock().insert(key, keep);
        Ok(out)
    }

    /// Counts one fetched series against `query.max_points_per_response` and the request's
    /// memory share, and as read.
    fn charge_fetched(&self, f: &FetchedSeries) -> Result<(), EvalError> {
        let n = self
            .state
            .points
            .fetch_add(f.values.len(), Ordering::Relaxed)
            + f.values.len();
        if n > self.limits.max_points {
            return Err(EvalError::TooLarge(format!(
                "request reads more than {} datapoints (query.max_points_per_response)",
                self.limits.max_points
            )));
        }
        if let Some(m) = &self.state.memory {
            m.charge(series_bytes(f.values.len()))?;
        }
        self.state.read.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn is_numeric(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') && s.parse::<f64>().is_ok()
}

/// Python's `str()` of a template value.
fn value_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => crate::python::repr_f64(*f),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".to_string(),
        Value::Series(_) => String::new(),
    }
}
