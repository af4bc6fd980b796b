//! Combine: functions that merge several series into fewer (graphite-web's "Combine" group).

use super::common::{agg_func, format_path_expressions, normalize, rows, xff_ok, AGG_FUNCS};
use crate::query::eval::{EvalContext, EvalError};
use crate::query::registry::{Args, FunctionDef, Param, ParamType as T};
use crate::query::series::Series;

/// graphite-web's `aggregate()` core: normalize the lists, aggregate each row with `func`
/// (rows below the xFilesFactor are null), name the result `<func>Series(<paths>)`, keep the
/// tags all series share, and add `aggregatedBy`.
pub fn aggregate_lists(ctx: &EvalContext<'_>, lists: Vec<Vec<Series>>, func: &str, x_files_factor: Option<f64>) -> Result<Vec<Series>, EvalError> {
    let func = func.strip_suffix("Series").unwrap_or(func);
    let agg = agg_func(func)?;
    let Some((series, start, end, step)) = normalize(lists) else {
        return Ok(Vec::new());
    };
    let xff = x_files_factor.unwrap_or(ctx.x_files_factor);
    let name = format!("{func}Series({})", format_path_expressions(&series));
    let values: Vec<Option<f64>> = rows(&series).iter().map(|row| if xff_ok(row, xff) { agg(row) } else { None }).collect();
    let mut tags = series[0].tags.clone();
    for s in &series[1..] {
        tags.retain(|k, v| s.tags.get(k) == Some(v));
    }
    tags.entry("name".into()).or_insert_with(|| name.clone());
    tags.insert("aggregatedBy".into(), func.to_string());
    let mut out = Series::new(name, start, end, step, values, xff);
    out.tags = tags;
    Ok(vec![out])
}

fn sum_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "sum", None)
}

fn average_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "average", None)
}

fn aggregate(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let func = args.string("func")?;
    if list.is_empty() {
        agg_func(func.strip_suffix("Series").unwrap_or(&func))?;
        return Ok(Vec::new());
    }
    aggregate_lists(ctx, vec![list], &func, args.opt_float("xFilesFactor")?)
}

/// The Combine family.
pub const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "sumSeries",
        group: "Combine",
        description: "Short form: sum()\n\nThis will add metrics together and return the sum at each datapoint. (See\nintegral for a sum over time)\n\nExample:\n\n.. code-block:: none\n\n  &target=sum(company.server.application*.requestsHandled)\n\nThis would show the sum of all requests handled per minute (provided\nrequestsHandled are collected once a minute).   If metrics with different\nretention rates are combined, the coarsest metric is graphed, and the sum\nof the other metrics is averaged for the metrics with finer retention rates.\n\nThis is an alias for :py:func:`aggregate <aggregate>` with aggregation ``sum``.",
        params: &[Param::req("seriesLists", T::SeriesList).many()],
        aggregator: true,
        imp: sum_series,
    },
    FunctionDef {
        name: "averageSeries",
        group: "Combine",
        description: "Short Alias: avg()\n\nTakes one metric or a wildcard seriesList.\nDraws the average value of all metrics passed at each time.\n\nExample:\n\n.. code-block:: none\n\n  &target=averageSeries(company.server.*.threads.busy)\n\nThis is an alias for :py:func:`aggregate <aggregate>` with aggregation ``average``.",
        params: &[Param::req("seriesLists", T::SeriesList).many()],
        aggregator: true,
        imp: average_series,
    },
    FunctionDef {
        name: "aggregate",
        group: "Combine",
        description: "Aggregate series using the specified function.\n\nExample:\n\n.. code-block:: none\n\n  &target=aggregate(host.cpu-[0-7].cpu-{user,system}.value, \"sum\")\n\nThis would be the equivalent of\n\n.. code-block:: none\n\n  &target=sumSeries(host.cpu-[0-7].cpu-{user,system}.value)\n\nThis function can be used with aggregation functions ``average`` (or ``avg``), ``avg_zero``,\n``median``, ``sum`` (or ``total``), ``min``, ``max``, ``diff``, ``stddev``, ``count``,\n``range`` (or ``rangeOf``) , ``multiply`` & ``last`` (or ``current``).",
        params: &[Param::req("seriesList", T::SeriesList), Param::req("func", T::AggFunc).options(AGG_FUNCS), Param::opt("xFilesFactor", T::Float)],
        aggregator: false,
        imp: aggregate,
    },
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;

    #[test]
    fn sums_and_averages_with_nulls() {
        let t0 = 1_700_000_000 - 100;
        let pts = [("a.x", t0 + 10, 1.0), ("a.x", t0 + 20, 2.0), ("a.y", t0 + 10, 10.0)];
        let s = eval(&pts, "sumSeries(a.*)", t0, t0 + 40).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "sumSeries(a.*)");
        let known: Vec<Option<f64>> = s[0].values.clone();
        assert!(known.contains(&Some(11.0)) && known.contains(&Some(2.0)));
        let s = eval(&pts, "averageSeries(a.x, a.y)", t0, t0 + 40).unwrap();
        assert_eq!(s[0].name, "averageSeries(a.x,a.y)");
        assert!(s[0].values.contains(&Some(5.5)));
        assert_eq!(s[0].tags.get("aggregatedBy").unwrap(), "average");
        assert!(eval(&pts, "sumSeries(nothing.*)", t0, t0 + 40).unwrap().is_empty());
        assert!(eval(&pts, "aggregate(a.*, 'mode')", t0, t0 + 40).is_err());
    }
}
