//! Combine: functions that merge several series into fewer, or match series of two lists
//! (graphite-web's "Combine" group: `sumSeries`, `asPercent`, `divideSeries`, `groupByNode`,
//! `applyByNode`, `reduceSeries`, …).
//!
//! Every function follows graphite-web 1.1.8's `functions.py` to the character: result names,
//! tags, step alignment of series with different steps (the least common multiple, finer
//! series consolidated in place as graphite-web's `normalize` does to the objects it is
//! handed), and the quirks that make its output what it is (`asPercent` keeping the
//! numerator's step, `applyByNode` giving every result the last input's start and end, …).
//! Nothing here reads the store except through the evaluation context.

use super::error::bad;
use std::collections::HashMap;

use super::aggregate::{agg_func, safe_sum, xff_counts, xff_ok, AGG_FUNCS};
use super::callback::call_function;
use super::naming::{agg_key, format_path_expressions, py_str};
use super::values::{for_each_row, lcm, normalize, rows};
use crate::python::{index as py_index, slice_end as py_slice_end};
use crate::query::ast::Expr;
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::parse::parse_target;
use crate::query::series::Series;
use crate::query::signature::{Args, FunctionDef, Param, ParamDefault, ParamType as T};
use crate::store::parse_tagged;

/// Names an `aggOrSeriesFunc` parameter accepts (graphite-web's options for it): every
/// aggregation function and every aggregating series function.
pub const AGG_OR_SERIES_FUNCS: &[&str] = &[
    "average",
    "avg_zero",
    "median",
    "sum",
    "min",
    "max",
    "diff",
    "stddev",
    "count",
    "range",
    "multiply",
    "last",
    "rangeOf",
    "avg",
    "total",
    "current",
    "asPercent",
    "averageSeries",
    "averageSeriesWithWildcards",
    "countSeries",
    "diffSeries",
    "diffSeriesLists",
    "maxSeries",
    "minSeries",
    "multiplySeries",
    "multiplySeriesLists",
    "multiplySeriesWithWildcards",
    "pct",
    "powSeries",
    "rangeOfSeries",
    "stddevSeries",
    "sumSeries",
    "sumSeriesLists",
    "sumSeriesWithWildcards",
];

/// graphite-web's `normalize` applied to some of the series of `pool` (by index, repeats
/// allowed): each is consolidated in place to the least common multiple of their steps;
/// returns `(start, end, step)` with `end` trimmed to a whole number of steps, `None` for no
/// series.
pub fn normalize_at(pool: &mut [Series], idx: &[usize]) -> Option<(i64, i64, i64)> {
    let step = idx.iter().map(|&i| pool[i].step.max(1)).reduce(lcm)?;
    for &i in idx {
        let s = &mut pool[i];
        s.consolidate((step / s.step.max(1)) as usize);
    }
    let start = idx.iter().map(|&i| pool[i].start).min()?;
    let mut end = idx.iter().map(|&i| pool[i].end).max()?;
    end -= (end - start).rem_euclid(step);
    Some((start, end, step))
}

/// `izip_longest` over two series' (consolidated) values, mapped by `f`.
fn zip_longest(
    a: &Series,
    b: &Series,
    f: impl Fn(Option<f64>, Option<f64>) -> Option<f64>,
) -> Vec<Option<f64>> {
    let (a, b) = (a.consolidated(), b.consolidated());
    (0..a.len().max(b.len()))
        .map(|i| f(a.get(i).copied().flatten(), b.get(i).copied().flatten()))
        .collect()
}

/// graphite-web's `safeDiv`: null for a null dividend or a null or zero divisor.
pub fn safe_div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    (b != 0.0).then(|| a / b)
}

/// graphite-web's `safeMul` of two values: null if either is.
fn safe_mul2(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? * b?)
}

/// `asPercent`'s value: `v1 / v2 * 100`, null where `safeDiv` is.
fn percent(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    safe_mul2(safe_div(a, b), Some(100.0))
}

/// graphite-web's `safePow` (`math.pow`, null where Python raises: a domain error or an
/// overflow).
pub fn safe_pow(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let r = a.powf(b);
    if (r.is_nan() && !a.is_nan() && !b.is_nan())
        || (r.is_infinite() && a.is_finite() && b.is_finite())
    {
        return None;
    }
    Some(r)
}

/// A percentile rank outside the values (graphite-web's `IndexError`, e.g. for `n` > 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankOutOfRange;

/// graphite-web's `_getPercentile` (NIST method) over the non-null `points`: `Ok(None)` when
/// there are none; `Err` where graphite-web raises `IndexError`.
pub fn percentile(
    points: &[Option<f64>],
    n: f64,
    interpolate: bool,
) -> Result<Option<f64>, RankOutOfRange> {
    let mut sorted: Vec<f64> = points.iter().flatten().copied().collect();
    if sorted.is_empty() {
        return Ok(None);
    }
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let len = sorted.len() as i64;
    let fractional_rank = (n / 100.0) * (len + 1) as f64;
    let mut rank = fractional_rank as i64;
    let rank_fraction = fractional_rank - rank as f64;
    if !interpolate {
        rank = rank.saturating_add(rank_fraction.ceil() as i64);
    }
    let mut value = if rank == 0 {
        sorted[0]
    } else if rank.saturating_sub(1) == len {
        sorted[sorted.len() - 1]
    } else {
        *py_index(&sorted, rank.saturating_sub(1)).ok_or(RankOutOfRange)?
    };
    if interpolate && rank != len {
        let next = *py_index(&sorted, rank).ok_or(RankOutOfRange)?;
        value += rank_fraction * (next - value);
    }
    Ok(Some(value))
}

fn xff(ctx: &EvalContext<'_>) -> f64 {
    ctx.default_x_files_factor()
}

/// graphite-web's `aggregate()` core: normalize the lists, aggregate each row with `func`
/// (rows below the xFilesFactor are null), name the result `<func>Series(<paths>)`, keep the
/// tags all series share, and add `aggregatedBy`. A `func` ending in `Series` is taken
/// without it. No series gives no result.
pub fn aggregate_lists(
    ctx: &EvalContext<'_>,
    lists: Vec<Vec<Series>>,
    func: &str,
    x_files_factor: Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    let func = func.strip_suffix("Series").unwrap_or(func);
    let agg = agg_func(func)?;
    let Some((series, start, end, step)) = normalize(lists) else {
        return Ok(Vec::new());
    };
    let xff = x_files_factor.unwrap_or(ctx.default_x_files_factor());
    let name = format!("{func}Series({})", format_path_expressions(&series));
    let values = match func {
        "sum" | "total" => column_sums(&series, xff, false),
        "average" | "avg" => column_sums(&series, xff, true),
        _ => {
            let mut values: Vec<Option<f64>> = Vec::new();
            for_each_row(&series, |_, row| {
                values.push(if xff_ok(row, xff) { agg(row) } else { None })
            });
            values
        }
    };
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

/// `safeSum` (or `safeAvg` with `average`) of every row under graphite-web's `xffValues`, as
/// the row-by-row path of [`aggregate_lists`] computes it, but read series by series: a row
/// of ten thousand series gathered point by point misses the processor's cache at every
/// value. Each column adds its known values in series order, from 0, as `safeSum` does, so
/// the sums are the same to the bit.
fn column_sums(series: &[Series], xff: f64, average: bool) -> Vec<Option<f64>> {
    let cols: Vec<std::borrow::Cow<'_, [Option<f64>]>> =
        series.iter().map(|s| s.consolidated()).collect();
    let len = cols.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut sums = vec![0.0f64; len];
    let mut known = vec![0usize; len];
    for col in &cols {
        for ((sum, n), v) in sums.iter_mut().zip(known.iter_mut()).zip(col.iter()) {
            if let Some(v) = v {
                *sum += v;
                *n += 1;
            }
        }
    }
    let total = series.len() as f64;
    sums.into_iter()
        .zip(known)
        .map(|(sum, n)| {
            xff_counts(n, total, xff).then(|| if average { sum / n as f64 } else { sum })
        })
        .collect()
}

/// Applies a `groupByNode(s)`/`groupByTags` callback to one group, as graphite-web does: a
/// series function of that name is called with the group, otherwise `aggregate` with that
/// aggregation; the first resulting series is the group's.
fn apply_callback(
    ctx: &EvalContext<'_>,
    callback: &str,
    group: Vec<Series>,
) -> Result<Series, EvalError> {
    let out = if super::lookup(callback).is_some() {
        call_function(ctx, callback, vec![Value::Series(group)])?
    } else {
        aggregate_lists(ctx, vec![group], callback, None)?
    };
    out.into_iter()
        .next()
        .ok_or_else(|| bad(format!("callback '{callback}' returned no series")))
}

/// Groups series by a key, keeping the first-seen order of keys (a Python dict).
fn group_by<K: Fn(&Series) -> String>(list: Vec<Series>, key: K) -> Vec<(String, Vec<Series>)> {
    let mut order: Vec<(String, Vec<Series>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for s in list {
        let k = key(&s);
        match at.get(&k) {
            Some(&i) => order[i].1.push(s),
            None => {
                at.insert(k.clone(), order.len());
                order.push((k, vec![s]));
            }
        }
    }
    order
}

fn node_values(args: &Args<'_>, name: &str) -> Result<Vec<Value>, EvalError> {
    args.values(name)
}

fn int_values(args: &Args<'_>, name: &str) -> Result<Vec<i64>, EvalError> {
    args.values(name)?
        .into_iter()
        .map(|v| match v {
            Value::Int(i) => Ok(i),
            Value::Float(f) if f.fract() == 0.0 && f.is_finite() => Ok(f as i64),
            other => Err(bad(format!(
                "{}: '{}' is not a node number",
                args.def().name,
                py_str(&other)
            ))),
        })
        .collect()
}

fn sum_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "sum", None)
}

const SUM_SERIES: FunctionDef = FunctionDef {
    name: "sumSeries",
    group: "Combine",
    description: "\
        Short form: sum()\n\
        \n\
        This will add metrics together and return the sum at each datapoint. (See\n\
        integral for a sum over time)\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sum(company.server.application*.requestsHandled)\n\
        \n\
        This would show the sum of all requests handled per minute (provided\n\
        requestsHandled are collected once a minute).   If metrics with different\n\
        retention rates are combined, the coarsest metric is graphed, and the sum\n\
        of the other metrics is averaged for the metrics with finer retention rates.\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``sum``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: sum_series,
};
const SUM: FunctionDef = SUM_SERIES.alias("sum");

fn average_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "average", None)
}

const AVERAGE_SERIES: FunctionDef = FunctionDef {
    name: "averageSeries",
    group: "Combine",
    description: "\
        Short Alias: avg()\n\
        \n\
        Takes one metric or a wildcard seriesList.\n\
        Draws the average value of all metrics passed at each time.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=averageSeries(company.server.*.threads.busy)\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``average``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: average_series,
};
const AVG: FunctionDef = AVERAGE_SERIES.alias("avg");

fn min_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "min", None)
}

const MIN_SERIES: FunctionDef = FunctionDef {
    name: "minSeries",
    group: "Combine",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        For each datapoint from each metric passed in, pick the minimum value and graph it.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=minSeries(Server*.connections.total)\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``min``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: min_series,
};

fn max_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "max", None)
}

const MAX_SERIES: FunctionDef = FunctionDef {
    name: "maxSeries",
    group: "Combine",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        For each datapoint from each metric passed in, pick the maximum value and graph it.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=maxSeries(Server*.connections.total)\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``max``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: max_series,
};

fn diff_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "diff", None)
}

const DIFF_SERIES: FunctionDef = FunctionDef {
    name: "diffSeries",
    group: "Combine",
    description: "\
        Subtracts series 2 through n from series 1.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=diffSeries(service.connections.total,service.connections.failed)\n\
        \n\
        To diff a series and a constant, one should use offset instead of (or in\n\
        addition to) diffSeries\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=offset(service.connections.total,-5)\n\
        \n  &target=offset(diffSeries(service.connections.total,service.connections.failed),-4)\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``diff``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: diff_series,
};

fn stddev_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "stddev", None)
}

const STDDEV_SERIES: FunctionDef = FunctionDef {
    name: "stddevSeries",
    group: "Combine",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        Draws the standard deviation of all metrics passed at each time.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=stddevSeries(company.server.*.threads.busy)\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``stddev``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: stddev_series,
};

fn range_of_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_lists(ctx, args.series_lists("seriesLists")?, "rangeOf", None)
}

const RANGE_OF_SERIES: FunctionDef = FunctionDef {
    name: "rangeOfSeries",
    group: "Combine",
    description: "\
        Takes a wildcard seriesList.\n\
        Distills down a set of inputs into the range of the series\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n    &target=rangeOfSeries(Server*.connections.total)\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``rangeOf``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: range_of_series,
};

fn multiply_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let lists = args.series_lists("seriesLists")?;
    // graphite-web's legacy case: one series alone comes back untouched.
    if lists.len() == 1 && lists[0].len() == 1 {
        return Ok(lists.into_iter().flatten().collect());
    }
    aggregate_lists(ctx, lists, "multiply", None)
}

const MULTIPLY_SERIES: FunctionDef = FunctionDef {
    name: "multiplySeries",
    group: "Combine",
    description: "\
        Takes two or more series and multiplies their points. A constant may not be\n\
        used. To multiply by a constant, use the scale() function.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=multiplySeries(Series.dividends,Series.divisors)\n\
        \n\
        This is an alias for :py:func:`aggregate <aggregate>` with aggregation ``multiply``.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: multiply_series,
};

fn aggregate(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let func = args.string("func")?;
    agg_func(func.strip_suffix("Series").unwrap_or(&func))?;
    aggregate_lists(ctx, vec![list], &func, args.opt_float("xFilesFactor")?)
}

const AGGREGATE: FunctionDef = FunctionDef {
    name: "aggregate",
    group: "Combine",
    description: "\
        Aggregate series using the specified function.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aggregate(host.cpu-[0-7].cpu-{user,system}.value, \"sum\")\n\
        \n\
        This would be the equivalent of\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sumSeries(host.cpu-[0-7].cpu-{user,system}.value)\n\
        \n\
        This function can be used with aggregation functions ``average`` (or ``avg``), \
        ``avg_zero``,\n\
        ``median``, ``sum`` (or ``total``), ``min``, ``max``, ``diff``, ``stddev``, ``count``,\n\
        ``range`` (or ``rangeOf``) , ``multiply`` & ``last`` (or ``current``).",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("func", T::AggFunc).options(AGG_FUNCS),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: aggregate,
};

fn aggregate_series_lists_with(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
    func: &str,
    x_files_factor: Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    let first = args.series_list("seriesListFirstPos")?;
    let second = args.series_list("seriesListSecondPos")?;
    agg_func(func.strip_suffix("Series").unwrap_or(func))?;
    if first.len() != second.len() {
        return Err(bad(
            "seriesListFirstPos and seriesListSecondPos argument must have equal length",
        ));
    }
    let mut out = Vec::new();
    for (a, b) in first.into_iter().zip(second) {
        let names = format!("{},{}", a.name, b.name);
        let Some(mut result) = aggregate_lists(ctx, vec![vec![a, b]], func, x_files_factor)?
            .into_iter()
            .next()
        else {
            continue;
        };
        let prefix = result
            .name
            .find("Series(")
            .map(|i| result.name[..i].to_string())
            .unwrap_or_default();
        result.name = format!("{prefix}Series({names})");
        out.push(result);
    }
    Ok(out)
}

fn aggregate_series_lists(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let func = args.string("func")?;
    aggregate_series_lists_with(ctx, args, &func, args.opt_float("xFilesFactor")?)
}

const AGGREGATE_SERIES_LISTS: FunctionDef = FunctionDef {
    name: "aggregateSeriesLists",
    group: "Combine",
    description: "\
        Iterates over a two lists and aggregates using specified function\n\
        list1[0] to list2[0], list1[1] to list2[1] and so on.\n\
        The lists will need to be the same length\n\
        \n\
        Position of seriesList matters. For example using \"sum\" function\n\
        ``aggregateSeriesLists(list1[0..n], list2[0..n], \"sum\")``\n\
        it would find sum for each member\n\
        of the list ``list1[0] + list2[0], list1[1] + list2[1], list1[n] + list2[n]``.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aggregateSeriesLists(mining.{carbon,graphite,diamond}.extracted,mining.{carbon,\
        graphite,diamond}.shipped, 'sum')\n\
        \n\
        An example above would be the same as running :py:func:`aggregate <aggregate>` for each \
        member of the list:\n\
        \n\
        .. code-block:: none\n\
        \n  ?target=aggregate(mining.carbon.extracted,mining.carbon.shipped, 'sum')\
        \n  &target=aggregate(mining.graphite.extracted,mining.graphite.shipped, 'sum')\
        \n  &target=aggregate(mining.diamond.extracted,mining.diamond.shipped, 'sum')\n\
        \n\
        This function can be used with aggregation functions ``average`` (or ``avg``), \
        ``avg_zero``,\n\
        ``median``, ``sum`` (or ``total``), ``min``, ``max``, ``diff``, ``stddev``, ``count``,\n\
        ``range`` (or ``rangeOf``) , ``multiply`` & ``last`` (or ``current``).",
    params: &[
        Param::req("seriesListFirstPos", T::SeriesList),
        Param::req("seriesListSecondPos", T::SeriesList),
        Param::req("func", T::AggFunc).options(AGG_FUNCS),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: aggregate_series_lists,
};

fn sum_series_lists(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_series_lists_with(ctx, args, "sum", None)
}

const SUM_SERIES_LISTS: FunctionDef = FunctionDef {
    name: "sumSeriesLists",
    group: "Combine",
    description: "\
        Iterates over a two lists and subtracts series lists 2 through n from series 1\n\
        list1[0] to list2[0], list1[1] to list2[1] and so on.\n\
        The lists will need to be the same length\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sumSeriesLists(mining.{carbon,graphite,diamond}.extracted,mining.{carbon,\
        graphite,diamond}.shipped)\n\
        \n\
        An example above would be the same as running :py:func:`sumSeries <sumSeries>` for each \
        member of the list:\n\
        \n\
        .. code-block:: none\n\
        \n  ?target=sumSeries(mining.carbon.extracted,mining.carbon.shipped)\
        \n  &target=sumSeries(mining.graphite.extracted,mining.graphite.shipped)\
        \n  &target=sumSeries(mining.diamond.extracted,mining.diamond.shipped)\n\
        \n\
        This is an alias for :py:func:`aggregateSeriesLists <aggregateSeriesLists>` with \
        aggregation ``sum``.",
    params: &[
        Param::req("seriesListFirstPos", T::SeriesList),
        Param::req("seriesListSecondPos", T::SeriesList),
    ],
    aggregator: true,
    imp: sum_series_lists,
};

fn diff_series_lists(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_series_lists_with(ctx, args, "diff", None)
}

const DIFF_SERIES_LISTS: FunctionDef = FunctionDef {
    name: "diffSeriesLists",
    group: "Combine",
    description: "\
        Iterates over a two lists and subtracts series lists 2 through n from series 1\n\
        list1[0] to list2[0], list1[1] to list2[1] and so on.\n\
        The lists will need to be the same length\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=diffSeriesLists(mining.{carbon,graphite,diamond}.extracted,mining.{carbon,\
        graphite,diamond}.shipped)\n\
        \n\
        An example above would be the same as running :py:func:`diffSeries <diffSeries>` for each \
        member of the list:\n\
        \n\
        .. code-block:: none\n\
        \n  ?target=diffSeries(mining.carbon.extracted,mining.carbon.shipped)\
        \n  &target=diffSeries(mining.graphite.extracted,mining.graphite.shipped)\
        \n  &target=diffSeries(mining.diamond.extracted,mining.diamond.shipped)\n\
        \n\
        \n\
        This is an alias for :py:func:`aggregateSeriesLists <aggregateSeriesLists>` with \
        aggregation ``diff``.",
    params: &[
        Param::req("seriesListFirstPos", T::SeriesList),
        Param::req("seriesListSecondPos", T::SeriesList),
    ],
    aggregator: true,
    imp: diff_series_lists,
};

fn multiply_series_lists(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    aggregate_series_lists_with(ctx, args, "multiply", None)
}

const MULTIPLY_SERIES_LISTS: FunctionDef = FunctionDef {
    name: "multiplySeriesLists",
    group: "Combine",
    description: "\
        Iterates over a two lists and subtracts series lists 2 through n from series 1\n\
        list1[0] to list2[0], list1[1] to list2[1] and so on.\n\
        The lists will need to be the same length\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=multiplySeriesLists(mining.{carbon,graphite,diamond}.extracted,mining.{carbon,\
        graphite,diamond}.shipped)\n\
        \n\
        An example above would be the same as running :py:func:`multiplySeries <multiplySeries>` \
        for each member of the list:\n\
        \n\
        .. code-block:: none\n\
        \n  ?target=multiplySeries(mining.carbon.extracted,mining.carbon.shipped)\
        \n  &target=multiplySeries(mining.graphite.extracted,mining.graphite.shipped)\
        \n  &target=multiplySeries(mining.diamond.extracted,mining.diamond.shipped)\n\
        \n\
        This is an alias for :py:func:`aggregateSeriesLists <aggregateSeriesLists>` with \
        aggregation ``multiply``.",
    params: &[
        Param::req("seriesListFirstPos", T::SeriesList),
        Param::req("seriesListSecondPos", T::SeriesList),
    ],
    aggregator: true,
    imp: multiply_series_lists,
};

/// `aggregateWithWildcards`: groups by the name without the nodes at `positions` (plain
/// indices: a negative one matches nothing), aggregates each group, names it by the key.
fn aggregate_with_wildcards_of(
    ctx: &EvalContext<'_>,
    list: Vec<Series>,
    func: &str,
    positions: &[i64],
) -> Result<Vec<Series>, EvalError> {
    agg_func(func.strip_suffix("Series").unwrap_or(func))?;
    let groups = group_by(list, |s| {
        s.name
            .split('.')
            .enumerate()
            .filter(|(i, _)| !positions.contains(&(*i as i64)))
            .map(|(_, n)| n)
            .collect::<Vec<_>>()
            .join(".")
    });
    let mut out = Vec::with_capacity(groups.len());
    for (key, group) in groups {
        if let Some(mut s) = aggregate_lists(ctx, vec![group], func, None)?
            .into_iter()
            .next()
        {
            s.name = key;
            out.push(s);
        }
    }
    Ok(out)
}

fn aggregate_with_wildcards(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let func = args.string("func")?;
    aggregate_with_wildcards_of(
        ctx,
        args.series_list("seriesList")?,
        &func,
        &int_values(args, "position")?,
    )
}

const AGGREGATE_WITH_WILDCARDS: FunctionDef = FunctionDef {
    name: "aggregateWithWildcards",
    group: "Combine",
    description: "\
        Call aggregator after inserting wildcards at the given position(s).\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aggregateWithWildcards(host.cpu-[0-7].cpu-{user,system}.value, \"sum\", 1)\n\
        \n\
        This would be the equivalent of\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sumSeries(host.cpu-[0-7].cpu-user.value)&target=sumSeries(\
        host.cpu-[0-7].cpu-system.value)\
        \n  # or\
        \n  &target=aggregate(host.cpu-[0-7].cpu-user.value,\"sum\")&target=aggregate(\
        host.cpu-[0-7].cpu-system.value,\"sum\")\n\
        \n\
        This function can be used with all aggregation functions supported by\n\
        :py:func:`aggregate <aggregate>`: ``average``, ``median``, ``sum``, ``min``, ``max``, \
        ``diff``,\n\
        ``stddev``, ``range`` & ``multiply``.\n\
        \n\
        This complements :py:func:`groupByNodes <groupByNodes>` which takes a list of nodes that \
        must match in each group.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("func", T::AggFunc).options(AGG_FUNCS),
        // graphite-web's Param says `position`, its Python argument `*positions`.
        Param::opt("position", T::Node)
            .many()
            .python_name("positions"),
    ],
    aggregator: false,
    imp: aggregate_with_wildcards,
};

fn sum_series_with_wildcards(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    aggregate_with_wildcards_of(
        ctx,
        args.series_list("seriesList")?,
        "sum",
        &int_values(args, "position")?,
    )
}

const SUM_SERIES_WITH_WILDCARDS: FunctionDef = FunctionDef {
    name: "sumSeriesWithWildcards",
    group: "Combine",
    description: "\
        Categorizes the provided series in groups by name, by ignoring\n\
        (\"wildcarding\") the given position(s) and calls sumSeries on each group.\n\
        Important: the introduction of wildcards only happens *after* retrieving\n\
        the input.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sumSeriesWithWildcards(host.cpu-[0-7].cpu-{user,system}.value, 1)\n\
        \n\
        This would be the equivalent of\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sumSeries(host.cpu-[0-7].cpu-user.value)&target=sumSeries(\
        host.cpu-[0-7].cpu-system.value)\n\
        \n\
        This is an alias for :py:func:`aggregateWithWildcards <aggregateWithWildcards>` with \
        aggregation ``sum``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("position", T::Node).many(),
    ],
    aggregator: true,
    imp: sum_series_with_wildcards,
};

fn average_series_with_wildcards(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    aggregate_with_wildcards_of(
        ctx,
        args.series_list("seriesList")?,
        "average",
        &int_values(args, "position")?,
    )
}

const AVERAGE_SERIES_WITH_WILDCARDS: FunctionDef = FunctionDef {
    name: "averageSeriesWithWildcards",
    group: "Combine",
    description: "\
        Categorizes the provided series in groups by name, by ignoring\n\
        (\"wildcarding\") the given position(s) and calls averageSeries on each group.\n\
        Important: the introduction of wildcards only happens *after* retrieving\n\
        the input.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=averageSeriesWithWildcards(host.cpu-[0-7].cpu-{user,system}.value, 1)\n\
        \n\
        This would be the equivalent of\n\
        \n\
        .. code-block:: none\n\
        \n  &target=averageSeries(host.cpu-[0-7].cpu-user.value)&target=averageSeries(\
        host.cpu-[0-7].cpu-system.value)\n\
        \n\
        This is an alias for :py:func:`aggregateWithWildcards <aggregateWithWildcards>` with \
        aggregation ``average``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("position", T::Node).many(),
    ],
    aggregator: true,
    imp: average_series_with_wildcards,
};

fn multiply_series_with_wildcards(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    aggregate_with_wildcards_of(
        ctx,
        args.series_list("seriesList")?,
        "multiply",
        &int_values(args, "position")?,
    )
}

const MULTIPLY_SERIES_WITH_WILDCARDS: FunctionDef = FunctionDef {
    name: "multiplySeriesWithWildcards",
    group: "Combine",
    description: "\
        Categorizes the provided series in groups by name, by ignoring\n\
        (\"wildcarding\") the given position(s) and calls multiplySeries on each group.\n\
        Important: the introduction of wildcards only happens *after* retrieving\n\
        the input.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=multiplySeriesWithWildcards(web.host-[0-7].{avg-response,total-request}.value, \
        2)\n\
        \n\
        This would be the equivalent of\n\
        \n\
        .. code-block:: none\n\
        \n  &target=multiplySeries(web.host-0.{avg-response,total-request}.value)\
        &target=multiplySeries(web.host-1.{avg-response,total-request}.value)...\n\
        \n\
        This is an alias for :py:func:`aggregateWithWildcards <aggregateWithWildcards>` with \
        aggregation ``multiply``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("position", T::Node).many(),
    ],
    aggregator: true,
    imp: multiply_series_with_wildcards,
};

fn count_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let lists = args.series_lists("seriesLists")?;
    if lists.is_empty() {
        // graphite-web draws constantLine(0), renamed.
        let step = (ctx.end - ctx.start) / 2;
        if step <= 0 {
            return Err(bad(
                "countSeries(): the time range is too short for a constant line",
            ));
        }
        let mut s = Series::new("0", ctx.start, ctx.end, step, vec![Some(0.0); 3], xff(ctx));
        s.path_expression = "countSeries()".into();
        return Ok(vec![s]);
    }
    let Some((series, start, end, step)) = normalize(lists) else {
        return Ok(Vec::new());
    };
    let name = format!("countSeries({})", format_path_expressions(&series));
    let n = series.len() as f64;
    let values = rows(&series).iter().map(|_| Some(n)).collect();
    let mut s = Series::new(name.clone(), start, end, step, values, xff(ctx));
    s.path_expression = name;
    Ok(vec![s])
}

const COUNT_SERIES: FunctionDef = FunctionDef {
    name: "countSeries",
    group: "Combine",
    description: "\
        Draws a horizontal line representing the number of nodes found in the seriesList.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=countSeries(carbon.agents.*.*)",
    params: &[Param::opt("seriesLists", T::SeriesList).many()],
    aggregator: true,
    imp: count_series,
};

fn group(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    Ok(args
        .series_lists("seriesLists")?
        .into_iter()
        .flatten()
        .collect())
}

const GROUP: FunctionDef = FunctionDef {
    name: "group",
    group: "Combine",
    description: "\
        Takes an arbitrary number of seriesLists and adds them to a single seriesList. This is \
        used\n\
        to pass multiple seriesLists to a function which only takes one",
    params: &[Param::opt("seriesLists", T::SeriesList).many()],
    aggregator: false,
    imp: group,
};

fn percentile_of_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let n = args.float("n")?;
    let interpolate = args.bool("interpolate")?;
    if n <= 0.0 {
        return Err(bad(
            "The requested percent is required to be greater than 0",
        ));
    }
    let list = args.series_list("seriesList")?;
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let name = format!(
        "percentileOfSeries({},{})",
        list[0].path_expression,
        crate::python::format_g(n)
    );
    let Some((series, start, end, step)) = normalize(vec![list]) else {
        return Ok(Vec::new());
    };
    let values = rows(&series)
        .iter()
        .map(|row| percentile(row, n, interpolate))
        .collect::<Result<Vec<_>, RankOutOfRange>>()
        .map_err(|_| {
            bad(format!(
                "percentileOfSeries: no {n} percentile of the values (list index out of range)"
            ))
        })?;
    Ok(vec![Series::new(name, start, end, step, values, xff(ctx))])
}

const PERCENTILE_OF_SERIES: FunctionDef = FunctionDef {
    name: "percentileOfSeries",
    group: "Combine",
    description: "\
        percentileOfSeries returns a single series which is composed of the n-percentile\n\
        values taken across a wildcard series at each point. Unless `interpolate` is\n\
        set to True, percentile values are actual values contained in one of the\n\
        supplied series.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
        Param::def("interpolate", T::Boolean, ParamDefault::Bool(false)),
    ],
    aggregator: false,
    imp: percentile_of_series,
};

fn pow_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let Some((series, start, end, step)) = normalize(args.series_lists("seriesList")?) else {
        return Ok(Vec::new());
    };
    let name = format!(
        "powSeries({})",
        series
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    let values = rows(&series)
        .into_iter()
        .map(|row| {
            let mut it = row.into_iter();
            let first = it.next().flatten();
            it.fold(first, safe_pow)
        })
        .collect();
    Ok(vec![Series::new(name, start, end, step, values, xff(ctx))])
}

const POW_SERIES: FunctionDef = FunctionDef {
    name: "powSeries",
    group: "Combine",
    description: "\
        Takes two or more series and pows their points. A constant line may be\n\
        used.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=powSeries(Server.instance01.app.requests, Server.instance01.app.replies)",
    // graphite-web's Param says `seriesList`, its Python argument `*seriesLists`.
    params: &[Param::req("seriesList", T::SeriesList)
        .many()
        .python_name("seriesLists")],
    aggregator: true,
    imp: pow_series,
};

fn divide_pair(ctx: &EvalContext<'_>, mut dividend: Series, mut divisor: Series) -> Series {
    let name = format!("divideSeries({},{})", dividend.name, divisor.name);
    let step = lcm(dividend.step.max(1), divisor.step.max(1));
    dividend.consolidate((step / dividend.step.max(1)) as usize);
    divisor.consolidate((step / divisor.step.max(1)) as usize);
    let start = dividend.start.min(divisor.start);
    let mut end = dividend.end.max(divisor.end);
    end -= (end - start).rem_euclid(step);
    let values = zip_longest(&dividend, &divisor, safe_div);
    Series::new(name, start, end, step, values, xff(ctx))
}

fn divide_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut dividends = args.series_list("dividendSeriesList")?;
    let divisor = args.series_list("divisorSeries")?;
    if divisor.is_empty() {
        for s in &mut dividends {
            s.name = format!("divideSeries({},MISSING)", s.name);
            s.path_expression = s.name.clone();
            s.values.iter_mut().for_each(|v| *v = None);
        }
        return Ok(dividends);
    }
    if divisor.len() > 1 {
        return Err(bad(format!(
            "divideSeries second argument must reference exactly 1 series (got {})",
            divisor.len()
        )));
    }
    let divisor = &divisor[0];
    Ok(dividends
        .into_iter()
        .map(|d| divide_pair(ctx, d, divisor.clone()))
        .collect())
}

const DIVIDE_SERIES: FunctionDef = FunctionDef {
    name: "divideSeries",
    group: "Combine",
    description: "\
        Takes a dividend metric and a divisor metric and draws the division result.\n\
        A constant may *not* be passed. To divide by a constant, use the scale()\n\
        function (which is essentially a multiplication operation) and use the inverse\n\
        of the dividend. (Division by 8 = multiplication by 1/8 or 0.125)\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=divideSeries(Series.dividends,Series.divisors)",
    params: &[
        Param::req("dividendSeriesList", T::SeriesList),
        Param::req("divisorSeries", T::SeriesList),
    ],
    aggregator: false,
    imp: divide_series,
};

fn divide_series_lists(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let dividends = args.series_list("dividendSeriesList")?;
    let divisors = args.series_list("divisorSeriesList")?;
    if dividends.len() != divisors.len() {
        return Err(bad(
            "dividendSeriesList and divisorSeriesList argument must have equal length",
        ));
    }
    Ok(dividends
        .into_iter()
        .zip(divisors)
        .map(|(a, b)| divide_pair(ctx, a, b))
        .collect())
}

const DIVIDE_SERIES_LISTS: FunctionDef = FunctionDef {
    name: "divideSeriesLists",
    group: "Combine",
    description: "\
        Iterates over a two lists and divides list1[0] by list2[0], list1[1] by list2[1] and so \
        on.\n\
        The lists need to be the same length",
    params: &[
        Param::req("dividendSeriesList", T::SeriesList),
        Param::req("divisorSeriesList", T::SeriesList),
    ],
    aggregator: false,
    imp: divide_series_lists,
};

/// Python's `str()` of `asPercent`'s numeric total.
fn total_text(v: &Value) -> Option<(f64, String)> {
    match v {
        Value::Int(i) => Some((*i as f64, i.to_string())),
        Value::Float(f) => Some((*f, crate::python::repr_f64(*f))),
        Value::Bool(b) => Some((
            *b as u8 as f64,
            if *b { "True" } else { "False" }.to_string(),
        )),
        _ => None,
    }
}

fn as_percent(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut pool = args.series_list("seriesList")?;
    let total = args.raw_value("total")?;
    let nodes = node_values(args, "nodes")?;
    let n = pool.len();
    let all: Vec<usize> = (0..n).collect();
    if normalize_at(&mut pool, &all).is_none() {
        return Ok(Vec::new());
    }
    let xff = xff(ctx);
    if !nodes.is_empty() {
        return as_percent_by_nodes(ctx, pool, total, &nodes);
    }
    // (values to divide by, the total's text, the total list's pool indices)
    let (total_values, text, total_idx): (Vec<Option<f64>>, String, Vec<usize>) = match total {
        None | Some(Value::None) => {
            let values = rows(&pool).iter().map(|r| safe_sum(r)).collect();
            (
                values,
                format!("sumSeries({})", format_path_expressions(&pool)),
                Vec::new(),
            )
        }
        Some(Value::Series(list)) => {
            if list.len() != 1 && list.len() != n {
                return Err(bad("asPercent second argument must be missing, a single digit, reference exactly 1 series or reference the same number of series as the first argument"));
            }
            let base = pool.len();
            pool.extend(list);
            let idx: Vec<usize> = (base..pool.len()).collect();
            if idx.len() == 1 {
                let with_total: Vec<usize> =
                    all.iter().copied().chain(idx.iter().copied()).collect();
                normalize_at(&mut pool, &with_total);
                let t = &pool[idx[0]];
                (t.consolidated().into_owned(), t.name.clone(), idx)
            } else {
                (Vec::new(), String::new(), idx)
            }
        }
        Some(other) => match total_text(&other) {
            Some((value, text)) => (vec![Some(value); pool[0].values.len()], text, Vec::new()),
            None => {
                return Err(bad(format!(
                    "asPercent: total must be a number or a series list, not '{}'",
                    py_str(&other)
                )))
            }
        },
    };
    let mut out = Vec::new();
    if !total_idx.is_empty() && total_idx.len() == n {
        // matchSeries: both lists sorted by name, paired.
        let mut left = all.clone();
        left.sort_by(|&a, &b| pool[a].name.cmp(&pool[b].name));
        let mut right = total_idx.clone();
        right.sort_by(|&a, &b| pool[a].name.cmp(&pool[b].name));
        for (a, b) in left.into_iter().zip(right) {
            let name = format!("asPercent({},{})", pool[a].name, pool[b].name);
            let (start, end, step) = normalize_at(&mut pool, &[a, b]).unwrap_or((0, 0, 1));
            let values = zip_longest(&pool[a], &pool[b], percent);
            out.push(Series::new(name, start, end, step, values, xff));
        }
        return Ok(out);
    }
    for s in &pool[..n] {
        let values = zip_longest(
            s,
            &Series::new("", 0, 0, 1, total_values.clone(), 0.0),
            percent,
        );
        let shown = if text.is_empty() {
            s.path_expression.as_str()
        } else {
            text.as_str()
        };
        let name = format!("asPercent({},{shown})", s.name);
        out.push(Series::new(name, s.start, s.end, s.step, values, xff));
    }
    Ok(out)
}

const AS_PERCENT: FunctionDef = FunctionDef {
    name: "asPercent",
    group: "Combine",
    description: "\
        Calculates a percentage of the total of a wildcard series. If `total` is specified,\n\
        each series will be calculated as a percentage of that total. If `total` is not \
        specified,\n\
        the sum of all points in the wildcard series will be used instead.\n\
        \n\
        A list of nodes can optionally be provided, if so they will be used to match series with \
        their\n\
        corresponding totals following the same logic as :py:func:`groupByNodes <groupByNodes>`.\n\
        \n\
        When passing `nodes` the `total` parameter may be a series list or `None`.  If it is \
        `None` then\n\
        for each series in `seriesList` the percentage of the sum of series in that group will be \
        returned.\n\
        \n\
        When not passing `nodes`, the `total` parameter may be a single series, reference the same \
        number\n\
        of series as `seriesList` or be a numeric value.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  # Server01 connections failed and succeeded as a percentage of Server01 connections \
        attempted\
        \n  &target=asPercent(Server01.connections.{failed,succeeded}, \
        Server01.connections.attempted)\n\
        \n  # For each server, its connections failed as a percentage of its connections attempted\
        \n  &target=asPercent(Server*.connections.failed, Server*.connections.attempted)\n\
        \n  # For each server, its connections failed and succeeded as a percentage of its \
        connections attemped\
        \n  &target=asPercent(Server*.connections.{failed,succeeded}, \
        Server*.connections.attempted, 0)\n\
        \n  # apache01.threads.busy as a percentage of 1500\
        \n  &target=asPercent(apache01.threads.busy,1500)\n\
        \n  # Server01 cpu stats as a percentage of its total\
        \n  &target=asPercent(Server01.cpu.*.jiffies)\n\
        \n  # cpu stats for each server as a percentage of its total\
        \n  &target=asPercent(Server*.cpu.*.jiffies, None, 0)\n\
        \n\
        When using `nodes`, any series or totals that can't be matched will create output series \
        with\n\
        names like ``asPercent(someSeries,MISSING)`` or ``asPercent(MISSING,someTotalSeries)`` and \
        all\n\
        values set to None. If desired these series can be filtered out by piping the result \
        through\n\
        ``|exclude(\"MISSING\")`` as shown below:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=asPercent(Server{1,2}.memory.used,Server{1,3}.memory.total,0)\n\
        \n  # will produce 3 output series:\
        \n  # asPercent(Server1.memory.used,Server1.memory.total) [values will be as expected]\
        \n  # asPercent(Server2.memory.used,MISSING) [all values will be None]\
        \n  # asPercent(MISSING,Server3.memory.total) [all values will be None]\n\
        \n  &target=asPercent(Server{1,2}.memory.used,Server{1,3}.memory.total,0)|exclude(\"\
        MISSING\")\n\
        \n  # will produce 1 output series:\
        \n  # asPercent(Server1.memory.used,Server1.memory.total) [values will be as expected]\n\
        \n\
        Each node may be an integer referencing a node in the series name or a string identifying \
        a tag.\n\
        \n\
        .. note::\n\
        \n  When `total` is a seriesList, specifying `nodes` to match series with the \
        corresponding total\
        \n  series will increase reliability.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("total", T::Any),
        Param::opt("nodes", T::NodeOrTag).many(),
    ],
    aggregator: true,
    imp: as_percent,
};
const PCT: FunctionDef = AS_PERCENT.alias("pct");

/// `asPercent` with nodes: numerators and totals matched by their node/tag key; a key
/// present on one side only gives an all-null `…MISSING…` series. Start, end and step of a
/// series are those of graphite-web's most recent `normalize` (its local variables), as there.
fn as_percent_by_nodes(
    ctx: &EvalContext<'_>,
    mut pool: Vec<Series>,
    total: Option<Value>,
    nodes: &[Value],
) -> Result<Vec<Series>, EvalError> {
    let xff = xff(ctx);
    let mut keys: Vec<String> = Vec::new();
    let mut meta: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in pool.iter().enumerate() {
        let key = agg_key(s, nodes);
        meta.entry(key.clone())
            .or_insert_with(|| {
                keys.push(key.clone());
                Vec::new()
            })
            .push(i);
    }
    let mut last: Option<(i64, i64, i64)> = None;
    let mut totals: HashMap<String, usize> = HashMap::new();
    let sum_group =
        |pool: &mut Vec<Series>, group: &[usize], last: &mut Option<(i64, i64, i64)>| -> usize {
            let members: Vec<Series> = group.iter().map(|&i| pool[i].clone()).collect();
            let name = format!("sumSeries({})", format_path_expressions(&members));
            let (start, end, step) = normalize_at(pool, group).unwrap_or((0, 0, 1));
            *last = Some((start, end, step));
            let members: Vec<Series> = group.iter().map(|&i| pool[i].clone()).collect();
            let values = rows(&members).iter().map(|r| safe_sum(r)).collect();
            pool.push(Series::new(name, start, end, step, values, xff));
            pool.len() - 1
        };
    match total {
        None | Some(Value::None) => {
            for key in &keys {
                let group = meta[key].clone();
                let t = if group.len() == 1 {
                    group[0]
                } else {
                    sum_group(&mut pool, &group, &mut last)
                };
                totals.insert(key.clone(), t);
            }
        }
        Some(Value::Series(list)) => {
            let base = pool.len();
            pool.extend(list);
            let mut order: Vec<String> = Vec::new();
            let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
            for (j, s) in pool.iter().enumerate().skip(base) {
                let key = agg_key(s, nodes);
                if !groups.contains_key(&key) {
                    order.push(key.clone());
                    if !meta.contains_key(&key) {
                        keys.push(key.clone());
                    }
                }
                groups.entry(key).or_default().push(j);
            }
            for key in order {
                let group = groups[&key].clone();
                let t = if group.len() == 1 {
                    group[0]
                } else {
                    sum_group(&mut pool, &group, &mut last)
                };
                totals.insert(key, t);
            }
        }
        Some(_) => return Err(bad("total must be None or a seriesList")),
    }
    let unbound = || {
        bad("asPercent: no series to take the time range from (graphite-web: local variable 'start' referenced before assignment)")
    };
    let mut out = Vec::new();
    for key in &keys {
        let Some(members) = meta.get(key) else {
            let t = totals[key];
            let (start, end, step) = last.ok_or_else(unbound)?;
            let values = vec![None; pool[t].consolidated().len()];
            out.push(Series::new(
                format!("asPercent(MISSING,{})", pool[t].name),
                start,
                end,
                step,
                values,
                xff,
            ));
            continue;
        };
        for &i in members {
            match totals.get(key) {
                None => {
                    let (start, end, step) = last.ok_or_else(unbound)?;
                    let values = vec![None; pool[i].consolidated().len()];
                    out.push(Series::new(
                        format!("asPercent({},MISSING)", pool[i].name),
                        start,
                        end,
                        step,
                        values,
                        xff,
                    ));
                }
                Some(&t) => {
                    let name = format!("asPercent({},{})", pool[i].name, pool[t].name);
                    let r = normalize_at(&mut pool, &[i, t]).unwrap_or((0, 0, 1));
                    last = Some(r);
                    let values = zip_longest(&pool[i], &pool[t], percent);
                    out.push(Series::new(name, r.0, r.1, r.2, values, xff));
                }
            }
        }
    }
    Ok(out)
}

fn weighted_average(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let avgs = args.series_list("seriesListAvg")?;
    let weights = args.series_list("seriesListWeight")?;
    let nodes = node_values(args, "nodes")?;
    if avgs.len() != weights.len() {
        return Err(bad(format!(
            "weightedAverage must receive the same number of series for seriesListAvg and seriesListWeight but received respectively {} and {}",
            avgs.len(),
            weights.len()
        )));
    }
    // key → (avg index, weight index), in first-seen order
    let mut order: Vec<String> = Vec::new();
    let mut pairs: HashMap<String, (Option<usize>, Option<usize>)> = HashMap::new();
    for (i, (a, w)) in avgs.iter().zip(&weights).enumerate() {
        for (key, is_avg) in [(agg_key(a, &nodes), true), (agg_key(w, &nodes), false)] {
            let slot = pairs.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                (None, None)
            });
            if is_avg {
                slot.0 = Some(i);
            } else {
                slot.1 = Some(i);
            }
        }
    }
    let mut products = Vec::new();
    for key in &order {
        let (Some(a), Some(w)) = pairs[key] else {
            continue;
        };
        let (a, w) = (&avgs[a], &weights[w]);
        let values = zip_longest(a, w, safe_mul2);
        products.push(Series::new(
            format!("product({},{})", w.name, a.name),
            a.start,
            a.end,
            a.step,
            values,
            xff(ctx),
        ));
    }
    if products.is_empty() {
        return Ok(Vec::new());
    }
    let paths = |l: &[Series]| {
        let mut p: Vec<&str> = l.iter().map(|s| s.path_expression.as_str()).collect();
        p.sort();
        p.dedup();
        p.join(",")
    };
    let name = format!(
        "weightedAverage({}, {}, {})",
        paths(&avgs),
        paths(&weights),
        nodes.iter().map(py_str).collect::<Vec<_>>().join(",")
    );
    let first = |l: Vec<Series>| {
        l.into_iter()
            .next()
            .ok_or_else(|| bad("weightedAverage: nothing to sum"))
    };
    let sum_products = first(aggregate_lists(ctx, vec![products], "sum", None)?)?;
    let sum_weights = first(aggregate_lists(ctx, vec![weights], "sum", None)?)?;
    let values = zip_longest(&sum_products, &sum_weights, safe_div);
    Ok(vec![Series::new(
        name,
        sum_products.start,
        sum_products.end,
        sum_products.step,
        values,
        xff(ctx),
    )])
}

const WEIGHTED_AVERAGE: FunctionDef = FunctionDef {
    name: "weightedAverage",
    group: "Combine",
    description: "\
        Takes a series of average values and a series of weights and\n\
        produces a weighted average for all values.\n\
        The corresponding values should share one or more zero-indexed nodes and/or tags.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=weightedAverage(*.transactions.mean,*.transactions.count,0)\n\
        \n\
        Each node may be an integer referencing a node in the series name or a string identifying \
        a tag.",
    params: &[
        Param::req("seriesListAvg", T::SeriesList),
        Param::req("seriesListWeight", T::SeriesList),
        Param::opt("nodes", T::NodeOrTag).many(),
    ],
    aggregator: false,
    imp: weighted_average,
};

fn group_by_nodes_of(
    ctx: &EvalContext<'_>,
    list: Vec<Series>,
    callback: &str,
    nodes: &[Value],
) -> Result<Vec<Series>, EvalError> {
    let groups = group_by(list, |s| agg_key(s, nodes));
    let mut out = Vec::with_capacity(groups.len());
    for (key, group) in groups {
        let mut s = apply_callback(ctx, callback, group)?;
        s.name = key;
        out.push(s);
    }
    Ok(out)
}

fn group_by_node(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let node = args.raw_value("nodeNum")?.unwrap_or(Value::None);
    let callback = args.string("callback")?;
    group_by_nodes_of(ctx, args.series_list("seriesList")?, &callback, &[node])
}

const GROUP_BY_NODE: FunctionDef = FunctionDef {
    name: "groupByNode",
    group: "Combine",
    description: "\
        Takes a serieslist and maps a callback to subgroups within as defined by a common node\n\
        \n\
        .. code-block:: none\n\
        \n  &target=groupByNode(ganglia.by-function.*.*.cpu.load5,2,\"sumSeries\")\n\
        \n\
        Would return multiple series which are each the result of applying the \"sumSeries\" \
        function\n\
        to groups joined on the second node (0 indexed) resulting in a list of targets like\n\
        \n\
        .. code-block:: none\n\
        \n  sumSeries(ganglia.by-function.server1.*.cpu.load5),sumSeries(\
        ganglia.by-function.server2.*.cpu.load5),...\n\
        \n\
        Node may be an integer referencing a node in the series name or a string identifying a \
        tag.\n\
        \n\
        This is an alias for using :py:func:`groupByNodes <groupByNodes>` with a single node.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("nodeNum", T::NodeOrTag),
        Param::def("callback", T::AggOrSeriesFunc, ParamDefault::Str("average"))
            .options(AGG_OR_SERIES_FUNCS),
    ],
    aggregator: false,
    imp: group_by_node,
};

fn group_by_nodes(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let callback = args.string("callback")?;
    group_by_nodes_of(
        ctx,
        args.series_list("seriesList")?,
        &callback,
        &node_values(args, "nodes")?,
    )
}

const GROUP_BY_NODES: FunctionDef = FunctionDef {
    name: "groupByNodes",
    group: "Combine",
    description: "\
        Takes a serieslist and maps a callback to subgroups within as defined by multiple nodes\n\
        \n\
        .. code-block:: none\n\
        \n  &target=groupByNodes(ganglia.server*.*.cpu.load*,\"sum\",1,4)\n\
        \n\
        Would return multiple series which are each the result of applying the \"sum\" \
        aggregation\n\
        to groups joined on the nodes' list (0 indexed) resulting in a list of targets like\n\
        \n\
        .. code-block:: none\n\
        \n  sumSeries(ganglia.server1.*.cpu.load5),sumSeries(ganglia.server1.*.cpu.load10),\
        sumSeries(ganglia.server1.*.cpu.load15),sumSeries(ganglia.server2.*.cpu.load5),sumSeries(\
        ganglia.server2.*.cpu.load10),sumSeries(ganglia.server2.*.cpu.load15),...\n\
        \n\
        This function can be used with all aggregation functions supported by\n\
        :py:func:`aggregate <aggregate>`: ``average``, ``median``, ``sum``, ``min``, ``max``, \
        ``diff``,\n\
        ``stddev``, ``range`` & ``multiply``.\n\
        \n\
        Each node may be an integer referencing a node in the series name or a string identifying \
        a tag.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=seriesByTag(\"name=~cpu.load.*\", \"server=~server[1-9]+\", \
        \"datacenter=~dc[1-9]+\")|groupByNodes(\"average\", \"datacenter\", 1)\n\
        \n  # will produce output series like\
        \n  # dc1.load5, dc2.load5, dc1.load10, dc2.load10\n\
        \n\
        This complements :py:func:`aggregateWithWildcards <aggregateWithWildcards>` which takes a \
        list of wildcard nodes.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("callback", T::AggOrSeriesFunc).options(AGG_OR_SERIES_FUNCS),
        Param::opt("nodes", T::NodeOrTag).many(),
    ],
    aggregator: false,
    imp: group_by_nodes,
};

fn group_by_tags(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let callback = args.string("callback")?;
    let tags: Vec<String> = args.values("tags")?.iter().map(py_str).collect();
    if tags.is_empty() {
        return Err(bad("groupByTags(): no tags specified"));
    }
    let by_name = tags.iter().any(|t| t == "name");
    let name = if by_name {
        String::new()
    } else {
        let mut names: Vec<&str> = list
            .iter()
            .filter_map(|s| s.tags.get("name").map(String::as_str))
            .collect();
        names.sort();
        names.dedup();
        if names.len() == 1 {
            names[0].to_string()
        } else {
            callback.clone()
        }
    };
    let groups = group_by(list, |s| {
        let mut parts: Vec<String> = tags
            .iter()
            .filter(|t| !by_name || t.as_str() != "name")
            .map(|t| format!("{t}={}", s.tags.get(t).map(String::as_str).unwrap_or("")))
            .collect();
        parts.sort();
        let head = if by_name {
            s.tags.get("name").cloned().unwrap_or_default()
        } else {
            name.clone()
        };
        std::iter::once(head)
            .chain(parts)
            .collect::<Vec<_>>()
            .join(";")
    });
    let mut out = Vec::with_capacity(groups.len());
    for (key, group) in groups {
        let mut s = apply_callback(ctx, &callback, group)?;
        s.tags = tagged_series_tags(&key)?;
        s.name = key.clone();
        s.path_expression = key;
        out.push(s);
    }
    Ok(out)
}

const GROUP_BY_TAGS: FunctionDef = FunctionDef {
    name: "groupByTags",
    group: "Combine",
    description: "\
        Takes a serieslist and maps a callback to subgroups within as defined by multiple tags\n\
        \n\
        .. code-block:: none\n\
        \n  &target=seriesByTag(\"name=cpu\")|groupByTags(\"average\",\"dc\")\n\
        \n\
        Would return multiple series which are each the result of applying the \"averageSeries\" \
        function\n\
        to groups joined on the specified tags resulting in a list of targets like\n\
        \n\
        .. code-block :: none\n\
        \n  averageSeries(seriesByTag(\"name=cpu\",\"dc=dc1\")),averageSeries(seriesByTag(\"\
        name=cpu\",\"dc=dc2\")),...\n\
        \n\
        This function can be used with all aggregation functions supported by\n\
        :py:func:`aggregate <aggregate>`: ``average`` (or ``avg``), ``avg_zero``,\n\
        ``median``, ``sum`` (or ``total``), ``min``, ``max``, ``diff``, ``stddev``, ``count``,\n\
        ``range`` (or ``rangeOf``) , ``multiply`` & ``last`` (or ``current``).",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("callback", T::AggOrSeriesFunc).options(AGG_OR_SERIES_FUNCS),
        Param::req("tags", T::Tag).many(),
    ],
    aggregator: false,
    imp: group_by_tags,
};

/// graphite-web's `TaggedSeries.parse(path).tags`, with its validation (no empty tag or
/// value, no `;!^=` in a tag, no value starting with `~`).
fn tagged_series_tags(path: &str) -> Result<std::collections::BTreeMap<String, String>, EvalError> {
    let invalid = |why: String| bad(format!("Cannot parse path {path}: {why}"));
    let mut segments = path.split(';');
    if segments.next().unwrap_or("").is_empty() {
        return Err(invalid("no metric found".into()));
    }
    for seg in segments {
        let Some((tag, value)) = seg.split_once('=') else {
            return Err(invalid(format!("invalid segment {seg}")));
        };
        if tag.is_empty() {
            return Err(invalid(format!("invalid segment {seg}")));
        }
        if value.is_empty() {
            return Err(bad(format!("Value for tag \"{tag}\" may not be empty")));
        }
        if let Some(c) = tag.chars().find(|c| ";!^=".contains(*c)) {
            return Err(bad(format!(
                "Character \"{c}\" is not allowed in tag \"{tag}\""
            )));
        }
        if value.starts_with('~') {
            return Err(bad(format!(
                "Tag values are not allowed to start with \"~\" in tag \"{tag}\""
            )));
        }
    }
    let mut tags = parse_tagged(path).ok_or_else(|| invalid("unparseable".into()))?;
    if tags.get("name").is_some_and(|n| n.is_empty()) {
        return Err(invalid("results in empty string".into()));
    }
    tags.entry("name".into()).or_default();
    Ok(tags)
}

fn apply_by_node(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let node = args.int("nodeNum")?;
    let template = args.string("templateFunction")?;
    let new_name = args.opt_str("newName")?;
    let Some(last) = list.last() else {
        return Ok(Vec::new());
    };
    let mut prefixes: Vec<String> = list
        .iter()
        .map(|s| {
            let nodes: Vec<&str> = s.name.split('.').collect();
            let end = py_slice_end(nodes.len(), node.saturating_add(1));
            nodes[..end].join(".")
        })
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let mut out = Vec::new();
    for prefix in prefixes {
        let target = template.replace('%', &prefix);
        let expr = parse_target(&target, ctx.limits.max_depth)
            .map_err(|e| bad(format!("applyByNode: {e}")))?;
        for mut s in ctx.eval_target(&expr)? {
            if let Some(n) = new_name.as_deref().filter(|n| !n.is_empty()) {
                s.name = n.replace('%', &prefix);
            }
            s.path_expression = prefix.clone();
            // graphite-web assigns the loop variable left over from collecting prefixes:
            // the last input series.
            s.start = last.start;
            s.end = last.end;
            out.push(s);
        }
    }
    Ok(out)
}

const APPLY_BY_NODE: FunctionDef = FunctionDef {
    name: "applyByNode",
    group: "Combine",
    description: "\
        Takes a seriesList and applies some complicated function (described by a string), \
        replacing templates with unique\n\
        prefixes of keys from the seriesList (the key is all nodes up to the index given as \
        `nodeNum`).\n\
        \n\
        If the `newName` parameter is provided, the name of the resulting series will be given by \
        that parameter, with any\n\
        \"%\" characters replaced by the unique prefix.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=applyByNode(servers.*.disk.bytes_free,1,\"divideSeries(%.disk.bytes_free,\
        sumSeries(%.disk.bytes_*))\")\n\
        \n\
        Would find all series which match `servers.*.disk.bytes_free`, then trim them down to \
        unique series up to the node\n\
        given by nodeNum, then fill them into the template function provided (replacing % by the \
        prefixes).\n\
        \n\
        Additional Examples:\n\
        \n\
        Given keys of\n\
        \n\
        - `stats.counts.haproxy.web.2XX`\n\
        - `stats.counts.haproxy.web.3XX`\n\
        - `stats.counts.haproxy.web.5XX`\n\
        - `stats.counts.haproxy.microservice.2XX`\n\
        - `stats.counts.haproxy.microservice.3XX`\n\
        - `stats.counts.haproxy.microservice.5XX`\n\
        \n\
        The following will return the rate of 5XX's per service:\n\
        \n\
        .. code-block:: none\n\
        \n  applyByNode(stats.counts.haproxy.*.*XX, 3, \"asPercent(%.5XX, sumSeries(%.*XX))\", \
        \"%.pct_5XX\")\n\
        \n\
        The output series would have keys `stats.counts.haproxy.web.pct_5XX` and \
        `stats.counts.haproxy.microservice.pct_5XX`.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("nodeNum", T::Node),
        Param::req("templateFunction", T::String),
        Param::opt("newName", T::String),
    ],
    aggregator: false,
    imp: apply_by_node,
};

fn map_series(_ctx: &EvalContext<'_>, _args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    Err(bad(
        "mapSeries gives a list of series lists, usable only as the first argument of reduceSeries",
    ))
}

const MAP_SERIES: FunctionDef = FunctionDef {
    name: "mapSeries",
    group: "Combine",
    description: "\
        Short form: ``map()``\n\
        \n\
        Takes a seriesList and maps it to a list of seriesList. Each seriesList has the\n\
        given mapNodes in common.\n\
        \n\
        .. note:: This function is not very useful alone. It should be used with \
        :py:func:`reduceSeries`\n\
        \n\
        .. code-block:: none\n\
        \n  mapSeries(servers.*.cpu.*,1) =>\n\
        \n    [\
        \n      servers.server1.cpu.*,\
        \n      servers.server2.cpu.*,\
        \n      ...\
        \n      servers.serverN.cpu.*\
        \n    ]\n\
        \n\
        Each node may be an integer referencing a node in the series name or a string identifying \
        a tag.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("mapNodes", T::NodeOrTag).many(),
    ],
    aggregator: false,
    imp: map_series,
};
const MAP: FunctionDef = MAP_SERIES.alias("map");

/// `mapSeries`' groups: the series grouped by the key of `mapNodes`, in first-seen order.
fn map_groups(
    ctx: &EvalContext<'_>,
    call: &crate::query::ast::Call,
) -> Result<Vec<Vec<Series>>, EvalError> {
    let def = super::lookup("mapSeries").ok_or_else(|| bad("mapSeries is not registered"))?;
    let args = Args::bind(def, call, ctx)?;
    let nodes = node_values(&args, "mapNodes")?;
    Ok(
        group_by(args.series_list("seriesList")?, |s| agg_key(s, &nodes))
            .into_iter()
            .map(|(_, g)| g)
            .collect(),
    )
}

fn reduce_series(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let lists = match args.expr("seriesLists") {
        Some(Expr::Call(c)) if c.name == "mapSeries" || c.name == "map" => map_groups(ctx, c)?,
        _ => {
            if args.series_list("seriesLists")?.is_empty() {
                return Ok(Vec::new());
            }
            return Err(bad(
                "reduceSeries needs a list of series lists: give it mapSeries(…)",
            ));
        }
    };
    let function = args.string("reduceFunction")?;
    let node = args.int("reduceNode")?;
    let matchers: Vec<String> = args.values("reduceMatchers")?.iter().map(py_str).collect();
    let mut keys: Vec<String> = Vec::new();
    let mut slots: HashMap<String, Vec<Option<Series>>> = HashMap::new();
    for s in lists.into_iter().flatten() {
        let nodes: Vec<&str> = s.name.split('.').collect();
        let Some(at) = py_index(&nodes, node) else {
            return Err(bad(format!("reduceSeries: {} has no node {node}", s.name)));
        };
        let end = py_slice_end(nodes.len(), node);
        let key = format!("{}.reduce.{function}", nodes[..end].join("."));
        if let Some(i) = matchers.iter().position(|m| m == at) {
            let slot = slots.entry(key.clone()).or_insert_with(|| {
                keys.push(key.clone());
                vec![None; matchers.len()]
            });
            slot[i] = Some(s);
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let mut call_args = Vec::with_capacity(matchers.len());
        for (m, s) in matchers.iter().zip(slots.remove(&key).unwrap_or_default()) {
            match s {
                Some(s) => call_args.push(Value::Series(vec![s])),
                None => {
                    return Err(bad(format!(
                        "reduceSeries: no series matched '{m}' for {key}"
                    )))
                }
            }
        }
        let mut s = call_function(ctx, &function, call_args)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                bad(format!(
                    "reduceSeries: {function} returned no series for {key}"
                ))
            })?;
        s.name = key;
        out.push(s);
    }
    Ok(out)
}

const REDUCE_SERIES: FunctionDef = FunctionDef {
    name: "reduceSeries",
    group: "Combine",
    description: "\
        Short form: ``reduce()``\n\
        \n\
        Takes a list of seriesLists and reduces it to a list of series by means of the \
        reduceFunction.\n\
        \n\
        Reduction is performed by matching the reduceNode in each series against the list of\n\
        reduceMatchers. Then each series is passed to the reduceFunction as arguments in the \
        order\n\
        given by reduceMatchers. The reduceFunction should yield a single series.\n\
        \n\
        The resulting list of series are aliased so that they can easily be nested in other \
        functions.\n\
        \n\
        **Example**: Map/Reduce asPercent(bytes_used,total_bytes) for each server\n\
        \n\
        Assume that metrics in the form below exist:\n\
        \n\
        .. code-block:: none\n\
        \n     servers.server1.disk.bytes_used\
        \n     servers.server1.disk.total_bytes\
        \n     servers.server2.disk.bytes_used\
        \n     servers.server2.disk.total_bytes\
        \n     servers.server3.disk.bytes_used\
        \n     servers.server3.disk.total_bytes\
        \n     ...\
        \n     servers.serverN.disk.bytes_used\
        \n     servers.serverN.disk.total_bytes\n\
        \n\
        To get the percentage of disk used for each server:\n\
        \n\
        .. code-block:: none\n\
        \n    reduceSeries(mapSeries(servers.*.disk.*,1),\"asPercent\",3,\"bytes_used\",\"\
        total_bytes\") =>\n\
        \n      alias(asPercent(servers.server1.disk.bytes_used,servers.server1.disk.total_bytes),\
        \"servers.server1.disk.reduce.asPercent\"),\
        \n      alias(asPercent(servers.server2.disk.bytes_used,servers.server2.disk.total_bytes),\
        \"servers.server2.disk.reduce.asPercent\"),\
        \n      alias(asPercent(servers.server3.disk.bytes_used,servers.server3.disk.total_bytes),\
        \"servers.server3.disk.reduce.asPercent\"),\
        \n      ...\
        \n      alias(asPercent(servers.serverN.disk.bytes_used,servers.serverN.disk.total_bytes),\
        \"servers.serverN.disk.reduce.asPercent\")\n\
        \n\
        In other words, we will get back the following metrics::\n\
        \n    servers.server1.disk.reduce.asPercent\
        \n    servers.server2.disk.reduce.asPercent\
        \n    servers.server3.disk.reduce.asPercent\
        \n    ...\
        \n    servers.serverN.disk.reduce.asPercent\n\
        \n\
        .. seealso:: :py:func:`mapSeries`",
    params: &[
        Param::req("seriesLists", T::SeriesLists),
        Param::req("reduceFunction", T::String),
        Param::req("reduceNode", T::Node),
        Param::req("reduceMatchers", T::String).many(),
    ],
    aggregator: false,
    imp: reduce_series,
};
const REDUCE: FunctionDef = REDUCE_SERIES.alias("reduce");

/// The Combine family.
pub const FUNCTIONS: &[FunctionDef] = &[
    AGGREGATE,
    AGGREGATE_SERIES_LISTS,
    AGGREGATE_WITH_WILDCARDS,
    APPLY_BY_NODE,
    AS_PERCENT,
    PCT,
    AVERAGE_SERIES,
    AVG,
    AVERAGE_SERIES_WITH_WILDCARDS,
    COUNT_SERIES,
    DIFF_SERIES,
    DIFF_SERIES_LISTS,
    DIVIDE_SERIES,
    DIVIDE_SERIES_LISTS,
    GROUP,
    GROUP_BY_NODE,
    GROUP_BY_NODES,
    GROUP_BY_TAGS,
    MAP,
    MAP_SERIES,
    MAX_SERIES,
    MIN_SERIES,
    MULTIPLY_SERIES,
    MULTIPLY_SERIES_LISTS,
    MULTIPLY_SERIES_WITH_WILDCARDS,
    PERCENTILE_OF_SERIES,
    POW_SERIES,
    RANGE_OF_SERIES,
    REDUCE,
    REDUCE_SERIES,
    STDDEV_SERIES,
    SUM,
    SUM_SERIES,
    SUM_SERIES_LISTS,
    SUM_SERIES_WITH_WILDCARDS,
    WEIGHTED_AVERAGE,
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use super::percentile;

    /// The column sums give what `safeSum`/`safeAvg` give row by row, to the bit: values
    /// that round differently in another order, nulls, shorter series, xFilesFactor.
    #[test]
    fn column_sums_are_the_row_sums() {
        use super::super::aggregate::safe_avg;
        use super::{column_sums, for_each_row, safe_sum, xff_ok};
        use crate::query::series::Series;
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let series: Vec<Series> = (0..40)
            .map(|k| {
                let len = 30 - (k % 4);
                let values = (0..len)
                    .map(|_| match next() % 5 {
                        0 => None,
                        1 => Some(1e16),
                        2 => Some(-1e16),
                        _ => Some((next() % 1000) as f64 / 7.0),
                    })
                    .collect();
                Series::new(format!("s{k}"), 0, len as i64 * 10, 10, values, 0.0)
            })
            .collect();
        for xff in [0.0, 0.5, 0.9] {
            for average in [false, true] {
                let mut rows = Vec::new();
                for_each_row(&series, |_, row| {
                    rows.push(if !xff_ok(row, xff) {
                        None
                    } else if average {
                        safe_avg(row)
                    } else {
                        safe_sum(row)
                    })
                });
                let cols = column_sums(&series, xff, average);
                let bits = |v: &[Option<f64>]| -> Vec<Option<u64>> {
                    v.iter().map(|x| x.map(f64::to_bits)).collect()
                };
                assert_eq!(bits(&cols), bits(&rows), "xff {xff} average {average}");
            }
        }
    }

    const T0: i64 = 1_700_000_000 - 100;

    fn points() -> Vec<(&'static str, i64, f64)> {
        vec![
            ("a.x", T0 + 10, 1.0),
            ("a.x", T0 + 20, 2.0),
            ("a.y", T0 + 10, 10.0),
            ("a.y", T0 + 30, -4.0),
            ("b.x", T0 + 10, 0.0),
        ]
    }

    #[test]
    fn sums_and_averages_with_nulls() {
        let pts = points();
        let s = eval(&pts, "sumSeries(a.*)", T0, T0 + 40).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "sumSeries(a.*)");
        assert_eq!(s[0].values, vec![Some(11.0), Some(2.0), Some(-4.0), None]);
        let s = eval(&pts, "averageSeries(a.x, a.y)", T0, T0 + 40).unwrap();
        assert_eq!(s[0].name, "averageSeries(a.x,a.y)");
        assert_eq!(s[0].values[0], Some(5.5));
        assert_eq!(s[0].tags.get("aggregatedBy").unwrap(), "average");
        assert!(eval(&pts, "sumSeries(nothing.*)", T0, T0 + 40)
            .unwrap()
            .is_empty());
        assert!(eval(&pts, "aggregate(a.*, 'mode')", T0, T0 + 40).is_err());
    }

    #[test]
    fn percent_divide_and_groups() {
        let pts = points();
        let s = eval(&pts, "asPercent(a.*)", T0, T0 + 40).unwrap();
        assert_eq!(s[0].name, "asPercent(a.x,sumSeries(a.*))");
        assert_eq!(s[0].values[1], Some(100.0));
        let s = eval(&pts, "divideSeries(a.*, b.x)", T0, T0 + 40).unwrap();
        assert_eq!(s[0].values[0], None, "division by zero is null");
        let s = eval(&pts, "divideSeries(a.*, nothing)", T0, T0 + 40).unwrap();
        assert_eq!(s[1].name, "divideSeries(a.y,MISSING)");
        assert!(s[1].values.iter().all(Option::is_none));
        let s = eval(&pts, "groupByNode(*.x, 1, 'sum')", T0, T0 + 40).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "x");
        assert_eq!(s[0].values[0], Some(1.0));
        let s = eval(
            &pts,
            "reduceSeries(mapSeries(a.*, 0), 'diffSeries', 1, 'y', 'x')",
            T0,
            T0 + 40,
        )
        .unwrap();
        assert_eq!(s[0].name, "a.reduce.diffSeries");
        assert_eq!(s[0].values[0], Some(9.0));
        let s = eval(
            &pts,
            "applyByNode(a.*, 0, 'sumSeries(%.*)', '%.total')",
            T0,
            T0 + 40,
        )
        .unwrap();
        assert_eq!(s[0].name, "a.total");
    }

    #[test]
    fn nist_percentiles() {
        let v: Vec<Option<f64>> = [15.0, 20.0, 35.0, 40.0, 50.0]
            .iter()
            .map(|x| Some(*x))
            .collect();
        assert_eq!(percentile(&v, 40.0, false), Ok(Some(35.0)));
        assert_eq!(percentile(&v, 100.0, false), Ok(Some(50.0)));
        assert!((percentile(&v, 40.0, true).unwrap().unwrap() - 26.0).abs() < 1e-9);
        assert!(percentile(&v, 200.0, false).is_err());
        assert_eq!(percentile(&[None], 50.0, false), Ok(None));
        assert!(percentile(&v, f64::NEG_INFINITY, false).is_err());
    }

    /// Any argument, however odd, gives series or an error: never a panic.
    #[test]
    fn odd_arguments_never_panic() {
        let pts = points();
        let big = "9223372036854775807";
        let targets = [
            format!("highest(a.*, {big})"),
            format!("limit(a.*, -{big})"),
            format!("groupByNode(a.*, -{big}, 'sum')"),
            format!("groupByNodes(a.*, 'sum', {big}, 'tag')"),
            format!("applyByNode(a.*, {big}, 'sumSeries(%)')"),
            format!("applyByNode(a.*, -{big}, '%')"),
            format!("reduceSeries(mapSeries(a.*, -{big}), 'sumSeries', -{big}, 'x')"),
            "reduceSeries(mapSeries(a.*, 0), 'nosuchfunction', 1, 'x', 'y')".to_string(),
            "reduceSeries(a.*, 'sumSeries', 1, 'x')".to_string(),
            format!("aggregateWithWildcards(a.*, 'sum', -{big}, {big})"),
            format!("asPercent(a.*, a.*, 'x', {big})"),
            format!("weightedAverage(a.*, a.*, -{big})"),
            "percentileOfSeries(a.*, 1e308)".into(),
            "percentileOfSeries(a.*, inf, true)".into(),
            "asPercent(a.*, 1e308)".into(),
            "asPercent(a.*, -0.0)".into(),
            "asPercent(a.*, 'text')".into(),
            "asPercent(nothing.*, None, 0)".into(),
            "asPercent(a.*, nothing.*, 0)".into(),
            "powSeries(a.*, a.*, b.x)".into(),
            "multiplySeries(a.*, a.*)".into(),
            "countSeries()".into(),
            "group()".into(),
            "groupByTags(a.*, 'sum', 'name')".into(),
            "groupByTags(a.*, 'sum', 'missing')".into(),
            "mapSeries(a.*, 0)".into(),
            "applyByNode(a.*, 0, 'sumSeries(%', '%')".into(),
            "divideSeriesLists(a.*, a.*)".into(),
            "sumSeriesLists(a.*, b.*)".into(),
        ];
        for t in &targets {
            let _ = eval(&pts, t, T0, T0 + 40);
            let _ = eval(&pts, t, T0, T0 + 1);
        }
    }
}
