//! Tags: `seriesByTag`, which selects tagged series (`name;tag=value;…`) by tag expressions
//! through the source's tag lookup (locally the store's tag index), as graphite-web's
//! `STORE.fetch` resolves it with its `LocalDatabaseTagDB`.
//!
//! (`groupByTags` lives with the other grouping functions in `combine`; `aliasByTags` with
//! the aliases.) Nothing here writes.

use crate::query::ast::Expr;
use crate::query::eval::{EvalContext, EvalError};
use crate::query::series::Series;
use crate::query::signature::{Args, FunctionDef, Param, ParamType as T};
use crate::query::source::TagExpr;

/// `seriesByTag('tag=value', …)`: every tagged series matching all expressions (the
/// source's [`crate::query::MetricSource::find_tagged`]), fetched over the request's range
/// in one batch ([`EvalContext::fetch_named`]), sorted by name, each with the call's text
/// as its path expression (so `sumSeries(seriesByTag(…))` is named after it, as in
/// graphite-web). Only quoted string arguments count, as there; regexes read Python's
/// syntax ([`super::error::py_regex`]).
/// Errors: an invalid expression, a bad regex, or no expression needing a non-empty value.
fn series_by_tag(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let exprs: Vec<TagExpr> = args
        .exprs("tagExpressions")
        .into_iter()
        .filter_map(|e| match e {
            Expr::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .map(TagExpr::parse)
        .collect::<Result<_, _>>()
        .map_err(EvalError::BadRequest)?;
    let regex = |p: &str| super::error::py_regex(p, "seriesByTag").map_err(|e| e.to_string());
    let names = ctx
        .source
        .find_tagged(&exprs, &regex)
        .map_err(EvalError::BadRequest)?;
    // One batch for the call: a cluster asks each server for `seriesByTag(…)` once, as
    // graphite-web passes the call to a remote finder that supports tags.
    ctx.fetch_named(&args.call().raw, names)
}

const SERIES_BY_TAG: FunctionDef = FunctionDef {
    name: "seriesByTag",
    group: "Special",
    description: "\
        Returns a SeriesList of series matching all the specified tag expressions.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=seriesByTag(\"tag1=value1\",\"tag2!=value2\")\n\
        \n\
        Returns a seriesList of all series that have tag1 set to value1, AND do not have tag2 set \
        to value2.\n\
        \n\
        Tags specifiers are strings, and may have the following formats:\n\
        \n\
        .. code-block:: none\n\
        \n  tag=spec    tag value exactly matches spec\
        \n  tag!=spec   tag value does not exactly match spec\
        \n  tag=~value  tag value matches the regular expression spec\
        \n  tag!=~spec  tag value does not match the regular expression spec\n\
        \n\
        Any tag spec that matches an empty value is considered to match series that don't have \
        that tag.\n\
        \n\
        At least one tag spec must require a non-empty value.\n\
        \n\
        Regular expression conditions are treated as being anchored at the start of the value.\n\
        \n\
        See :ref:`querying tagged series <querying-tagged-series>` for more detail.",
    params: &[Param::req("tagExpressions", T::String).many()],
    aggregator: false,
    imp: series_by_tag,
};

/// The tag functions.
pub const FUNCTIONS: &[FunctionDef] = &[SERIES_BY_TAG];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;

    #[test]
    fn selects_tagged_series_named_by_the_call() {
        let t = 1_700_000_000 - 50;
        let pts = [
            ("cpu;dc=a;host=x", t, 1.0),
            ("cpu;dc=b;host=y", t, 2.0),
            ("mem;dc=a", t, 3.0),
            ("plain.metric", t, 4.0),
        ];
        let s = eval(&pts, "seriesByTag('name=cpu')", t - 50, t + 10).unwrap();
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            vec!["cpu;dc=a;host=x", "cpu;dc=b;host=y"]
        );
        assert_eq!(s[0].path_expression, "seriesByTag('name=cpu')");
        assert_eq!(s[0].tags.get("host").unwrap(), "x");
        let s = eval(&pts, "sumSeries(seriesByTag('dc=a'))", t - 50, t + 10).unwrap();
        assert_eq!(s[0].name, "sumSeries(seriesByTag('dc=a'))");
        assert!(eval(&pts, "seriesByTag('dc!=a')", t - 50, t + 10).is_err());
        assert!(eval(&pts, "seriesByTag('nope')", t - 50, t + 10).is_err());
        assert!(eval(&pts, "seriesByTag('name=nothing')", t - 50, t + 10)
            .unwrap()
            .is_empty());
    }
}
