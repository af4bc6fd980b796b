//! Functions calling back into evaluation, as graphite-web's do: evaluating the first argument
//! again over another range (`evaluateTarget` with a new request context) and calling another
//! registered function with evaluated arguments (`SeriesFunctions[name](…)`). The only place
//! a function evaluates anything besides its own arguments.

use crate::query::ast::{Call, Expr};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::series::Series;

/// Calls the registered function `name` with already evaluated positional arguments, as
/// graphite-web's callbacks do (`SeriesFunctions[name](requestContext, *args)`: the
/// `groupByNode` callbacks, `reduceSeries`' reduce function). The arguments reach the function
/// as template values bound to placeholder paths, so the function binds and validates them
/// exactly as it would from a target. Errors: unknown function, or whatever the function says.
pub fn call_function(
    ctx: &EvalContext<'_>,
    name: &str,
    args: Vec<Value>,
) -> Result<Vec<Series>, EvalError> {
    if super::lookup(name).is_none() {
        return Err(EvalError::BadRequest(format!("unknown function '{name}'")));
    }
    // A control character cannot appear in a template name a user writes, so these
    // placeholders never collide with the request's own template values.
    let mut reps: Vec<(String, Value)> = Vec::with_capacity(args.len());
    let mut exprs = Vec::with_capacity(args.len());
    for (i, v) in args.into_iter().enumerate() {
        let var = format!("\u{1}arg{i}");
        exprs.push(Expr::Path(format!("${var}")));
        reps.push((var, v));
    }
    if let Some(outer) = &ctx.replacements {
        reps.extend(outer.iter().cloned());
    }
    let call = Call {
        name: name.to_string(),
        args: exprs,
        kwargs: Vec::new(),
        raw: format!("{name}(…)"),
        position: 0,
    };
    let inner = EvalContext {
        replacements: Some(std::sync::Arc::new(reps)),
        ..ctx.clone()
    };
    inner.eval_series(&Expr::Call(call))
}

/// Evaluates the call's first argument again over `[start, end)`: graphite-web's
/// `evaluateTarget(newContext, requestContext['args'][0])`, which functions needing data
/// outside the request's range (moving windows, Holt-Winters, `timeShift`, …) do.
pub fn reevaluate(
    ctx: &crate::query::eval::EvalContext<'_>,
    args: &crate::query::signature::Args<'_>,
    start: i64,
    end: i64,
) -> Result<Vec<Series>, EvalError> {
    let expr = args
        .expr("seriesList")
        .ok_or_else(|| EvalError::BadRequest(format!("{} needs a series list", args.def().name)))?;
    ctx.with_range(start, end).eval_series(expr)
}
