//! Every function of the target language, one file per family as graphite-web groups them.
//! [`all`] is the registry: evaluation, `/functions` and the docs all read it, so a function
//! exists exactly when it is listed here.
//!
//! As in graphite-web's `functions.py`, each function's definition (its [`FunctionDef`]: group,
//! docstring, params) sits right under the Rust function that implements it, and a name
//! graphite-web lists for the same Python function (`'sum': sumSeries`) is declared with
//! [`FunctionDef::alias`], not copied. A family's `FUNCTIONS` only lists its definitions.

mod alias;
mod calculate;
mod combine;
// Helpers the families share (graphite-web's functions.py preamble, safe.py, aggfuncs.py):
mod aggregate;
mod callback;
mod error;
mod events;
mod filter;
mod graph;
mod naming;
mod special;
mod tags;
mod time;
mod transform;
mod values;

use std::collections::HashMap;
use std::sync::LazyLock;

use super::ast::Call;
use super::eval::{EvalContext, EvalError};
use super::series::Series;
use super::signature::{Args, FunctionDef};

pub use aggregate::safe_median;
pub use calculate::percentile;
pub use error::py_regex;

/// Every family's functions, in registry order.
const FAMILIES: &[&[FunctionDef]] = &[
    combine::FUNCTIONS,
    filter::FUNCTIONS,
    tags::FUNCTIONS,
    transform::FUNCTIONS,
    calculate::FUNCTIONS,
    alias::FUNCTIONS,
    graph::FUNCTIONS,
    special::FUNCTIONS,
    events::FUNCTIONS,
];

static REGISTRY: LazyLock<HashMap<&'static str, &'static FunctionDef>> = LazyLock::new(|| {
    let mut m = HashMap::new();
    for family in FAMILIES {
        for f in family.iter() {
            m.insert(f.name, f);
        }
    }
    m
});

/// The function called `name`, if implemented.
pub fn lookup(name: &str) -> Option<&'static FunctionDef> {
    REGISTRY.get(name).copied()
}

/// Evaluates a function call: looks `call.name` up in the registry, binds the arguments to
/// its parameters (graphite-web's `validateParams`), and runs it. An unknown name or a bad
/// argument is a `BadRequest` giving the call's character position. This is the
/// [`EvalContext::call`](crate::query::EvalContext) that [`crate::query::evaluate`] hands the
/// evaluator.
pub fn call(ctx: &EvalContext<'_>, call: &Call) -> Result<Vec<Series>, EvalError> {
    let def = lookup(&call.name).ok_or_else(|| {
        EvalError::BadRequest(format!(
            "unknown function '{}' at character {}",
            call.name, call.position
        ))
    })?;
    let args = Args::bind(def, call, ctx).map_err(|e| match e {
        EvalError::BadRequest(m) => {
            EvalError::BadRequest(format!("{m} (at character {})", call.position))
        }
        other => other,
    })?;
    (def.imp)(ctx, &args)
}

/// Every implemented function, sorted by name.
pub fn all() -> Vec<&'static FunctionDef> {
    let mut v: Vec<&'static FunctionDef> = REGISTRY.values().copied().collect();
    v.sort_by_key(|f| f.name);
    v
}

#[cfg(test)]
mod registry_tests {
    use super::FAMILIES;

    #[test]
    fn no_function_is_registered_twice() {
        let mut seen = std::collections::HashMap::new();
        for family in FAMILIES {
            for f in family.iter() {
                if let Some(prev) = seen.insert(f.name, f.group) {
                    panic!("{} registered twice ({} and {})", f.name, prev, f.group);
                }
            }
        }
        assert!(seen.len() > 100, "{} functions", seen.len());
    }

    #[test]
    fn every_default_fits_its_parameter() {
        use crate::query::signature::{ParamDefault as D, ParamType as T};
        for family in FAMILIES {
            for f in family.iter() {
                for p in f.params {
                    let Some(d) = p.call_default() else { continue };
                    let fits = match (p.kind, d) {
                        (T::Boolean, D::Bool(_)) => true,
                        (T::Integer | T::Node, D::Int(_)) => true,
                        (T::Float, D::Int(_) | D::Float(_)) => true,
                        (T::IntOrInf, D::Int(_)) => true,
                        (T::IntOrInf, D::Float(x)) => x.is_infinite(),
                        (T::IntOrInterval, D::Int(_) | D::Str(_)) => true,
                        (T::Interval | T::Date | T::String | T::Tag, D::Str(_)) => true,
                        (T::AggFunc | T::AggOrSeriesFunc, D::Str(s)) => p.options.contains(&s),
                        (T::Any, _) => true,
                        _ => false,
                    };
                    assert!(
                        fits,
                        "{}: {}'s default {d:?} is not a {:?}",
                        f.name, p.name, p.kind
                    );
                    if let (false, D::Str(s)) = (p.options.is_empty(), d) {
                        assert!(
                            p.options.contains(&s),
                            "{}: {}'s default {s} is no option",
                            f.name,
                            p.name
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Evaluating targets against series built in memory ([`MemorySource`]).
    use std::time::Duration;

    use chrono_tz::Tz;

    use crate::query::eval::{EvalError, QueryLimits};
    use crate::query::series::Series;
    use crate::query::{evaluate, MemorySource, MetricSource, QueryError, Request};

    /// A source holding `points` (10 s steps, kept a day).
    pub fn source(points: &[(&str, i64, f64)]) -> MemorySource {
        MemorySource::with_points(points)
    }

    /// Evaluates `target` over `[start, end)` (now = end) against `source`.
    pub fn eval_in(
        source: &dyn MetricSource,
        target: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, EvalError> {
        let req = Request {
            targets: vec![target.to_string()],
            start,
            end,
            now: end,
            tz: Tz::UTC,
            x_files_factor: 0.0,
            max_data_points: None,
            template: Vec::new(),
            timeout: Duration::from_secs(30),
        };
        evaluate(source, &QueryLimits::default(), &req).map_err(|e| match e {
            QueryError::Parse(p) => EvalError::BadRequest(p.to_string()),
            QueryError::Eval(e) => e,
        })
    }

    /// Evaluates `target` over `[start, end)` against a source holding `points` (10 s steps).
    pub fn eval(
        points: &[(&str, i64, f64)],
        target: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, EvalError> {
        eval_in(&source(points), target, start, end)
    }
}
