//! Filter and sort: functions that choose, drop or reorder whole series, or blank some of
//! their values (graphite-web's "Filter Series", "Filter Data" and "Sorting" groups:
//! `highestMax`, `exclude`, `removeBelowValue`, `sortByName`, …).
//!
//! Behaviour is graphite-web 1.1.8's, including where Python raises: comparing a null with a
//! number (`useSeriesAbove` on a series with nulls, `removeBetweenPercentile`,
//! `averageOutsidePercentile` on an all-null series) is an error here too. Regular
//! expressions and `re.sub` are Python's, from [`crate::python::re`]. Nothing here reads the
//! store except through the evaluation context.

use super::error::bad;
use std::cmp::Ordering;

use super::aggregate::{agg_func, safe_avg, safe_len, safe_max, safe_min, AggFn, AGG_FUNCS};
use super::combine::percentile;
use super::error::py_regex;
use crate::python::format_g;
use crate::python::slice_end;
use crate::python::Sub;
use crate::query::eval::{EvalContext, EvalError};
use crate::query::parse::parse_target;
use crate::query::series::Series;
use crate::query::signature::{
    Args, FunctionDef, Param, ParamDefault, ParamType as T, PythonDefault,
};

/// An aggregation over a whole series (its values as iterated: consolidated).
fn over(series: &Series, f: AggFn) -> Option<f64> {
    f(&series.consolidated())
}

/// graphite-web's `keyFunc`: null sorts as −∞.
fn key(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NEG_INFINITY)
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Sorts `list` by `key_of` as Python's stable `list.sort(key=…, reverse=…)` does (equal keys
/// keep their order either way).
fn sort_by_key(list: &mut [Series], key_of: impl Fn(&Series) -> f64, reverse: bool) {
    let mut keyed: Vec<(f64, usize)> = list
        .iter()
        .enumerate()
        .map(|(i, s)| (key_of(s), i))
        .collect();
    keyed.sort_by(|a, b| {
        if reverse {
            cmp_f64(b.0, a.0)
        } else {
            cmp_f64(a.0, b.0)
        }
    });
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    let old: Vec<Series> = list.to_vec();
    for (slot, i) in list.iter_mut().zip(order) {
        *slot = old[i].clone();
    }
}

/// graphite-web's `operatorFuncs`: how `filterSeries` compares an aggregate (null allowed)
/// with the threshold.
fn operator(op: &str) -> Option<fn(Option<f64>, f64) -> bool> {
    Some(match op {
        "=" => |v, t| v.is_some_and(|v| v == t),
        "!=" => |v, t| v.is_none_or(|v| v != t),
        ">" => |v, t| v.is_some_and(|v| v > t),
        ">=" => |v, t| v.is_some_and(|v| v >= t),
        "<" => |v, t| v.is_none_or(|v| v < t),
        "<=" => |v, t| v.is_none_or(|v| v <= t),
        _ => return None,
    })
}

fn filter_with(
    list: Vec<Series>,
    func: &str,
    op: &str,
    threshold: f64,
) -> Result<Vec<Series>, EvalError> {
    let f = agg_func(func)?;
    let cmp = operator(op).ok_or_else(|| bad(format!("Unsupported operator: {op}")))?;
    Ok(list
        .into_iter()
        .filter(|s| cmp(over(s, f), threshold))
        .collect())
}

fn filter_series(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    filter_with(
        args.series_list("seriesList")?,
        &args.string("func")?,
        &args.string("operator")?,
        args.float("threshold")?,
    )
}

const FILTER_SERIES: FunctionDef = FunctionDef {
    name: "filterSeries",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a consolidation function, an \
        operator and a threshold.\n\
        Draws only the metrics which match the filter expression.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=filterSeries(system.interface.eth*.packetsSent, 'max', '>', 1000)\n\
        \n\
        This would only display interfaces which has a peak throughput higher than 1000 \
        packets/min.\n\
        \n\
        Supported aggregation functions: ``average``, ``median``, ``sum``, ``min``,\n\
        ``max``, ``diff``, ``stddev``, ``range``, ``multiply`` & ``last``.\n\
        \n\
        Supported operators: ``=``, ``!=``, ``>``, ``>=``, ``<`` & ``<=``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("func", T::AggFunc).options(AGG_FUNCS),
        Param::req("operator", T::String).options(&["!=", "<", "<=", "=", ">", ">="]),
        Param::req("threshold", T::Float),
    ],
    aggregator: false,
    imp: filter_series,
};

macro_rules! threshold_filter {
    ($name:ident, $func:literal, $op:literal) => {
        fn $name(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
            filter_with(
                args.series_list("seriesList")?,
                $func,
                $op,
                args.float("n")?,
            )
        }
    };
}

threshold_filter!(maximum_above, "max", ">");

const MAXIMUM_ABOVE: FunctionDef = FunctionDef {
    name: "maximumAbove",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant n.\n\
        Draws only the metrics with a maximum value above n.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=maximumAbove(system.interface.eth*.packetsSent,1000)\n\
        \n\
        This would only display interfaces which sent more than 1000 packets/min.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: maximum_above,
};

threshold_filter!(minimum_above, "min", ">");

const MINIMUM_ABOVE: FunctionDef = FunctionDef {
    name: "minimumAbove",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant n.\n\
        Draws only the metrics with a minimum value above n.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=minimumAbove(system.interface.eth*.packetsSent,1000)\n\
        \n\
        This would only display interfaces which sent more than 1000 packets/min.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: minimum_above,
};

threshold_filter!(maximum_below, "max", "<=");

const MAXIMUM_BELOW: FunctionDef = FunctionDef {
    name: "maximumBelow",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant n.\n\
        Draws only the metrics with a maximum value below n.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=maximumBelow(system.interface.eth*.packetsSent,1000)\n\
        \n\
        This would only display interfaces which sent less than 1000 packets/min.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: maximum_below,
};

threshold_filter!(minimum_below, "min", "<=");

const MINIMUM_BELOW: FunctionDef = FunctionDef {
    name: "minimumBelow",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant n.\n\
        Draws only the metrics with a minimum value below or equal to n.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=minimumBelow(system.interface.eth*.packetsSent,1000)\n\
        \n\
        This would only display interfaces which at one point sent less than 1000 packets/min.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: minimum_below,
};

threshold_filter!(current_above, "last", ">");

const CURRENT_ABOVE: FunctionDef = FunctionDef {
    name: "currentAbove",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant N.\n\
        Out of all metrics passed, draws only the  metrics whose value is above N\n\
        at the end of the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=currentAbove(server*.instance*.threads.busy,50)\n\
        \n\
        Draws the servers with more than 50 busy threads.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: current_above,
};

threshold_filter!(current_below, "last", "<=");

const CURRENT_BELOW: FunctionDef = FunctionDef {
    name: "currentBelow",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant N.\n\
        Out of all metrics passed, draws only the  metrics whose value is below N\n\
        at the end of the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=currentBelow(server*.instance*.threads.busy,3)\n\
        \n\
        Draws the servers with less than 3 busy threads.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: current_below,
};

threshold_filter!(average_above, "average", ">");

const AVERAGE_ABOVE: FunctionDef = FunctionDef {
    name: "averageAbove",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant N.\n\
        Out of all metrics passed, draws only the metrics with an average value\n\
        above N for the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=averageAbove(server*.instance*.threads.busy,25)\n\
        \n\
        Draws the servers with average values above 25.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: average_above,
};

threshold_filter!(average_below, "average", "<=");

const AVERAGE_BELOW: FunctionDef = FunctionDef {
    name: "averageBelow",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant N.\n\
        Out of all metrics passed, draws only the metrics with an average value\n\
        below N for the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=averageBelow(server*.instance*.threads.busy,25)\n\
        \n\
        Draws the servers with average values below 25.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: average_below,
};

/// `highest`/`lowest`: sorted by the aggregate (null as −∞), the first `n` (Python slice).
fn top(list: Vec<Series>, n: i64, func: &str, highest: bool) -> Result<Vec<Series>, EvalError> {
    let f = agg_func(func)?;
    let mut list = list;
    sort_by_key(&mut list, |s| key(over(s, f)), highest);
    let end = slice_end(list.len(), n);
    list.truncate(end);
    Ok(list)
}

fn highest(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    top(
        args.series_list("seriesList")?,
        args.int("n")?,
        &args.string("func")?,
        true,
    )
}

const HIGHEST: FunctionDef = FunctionDef {
    name: "highest",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N and an aggregation \
        function.\n\
        Out of all metrics passed, draws only the N metrics with the highest aggregated value over \
        the\n\
        time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=highest(server*.instance*.threads.busy,5,'max')\n\
        \n\
        Draws the 5 servers with the highest number of busy threads.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer).python_default(PythonDefault::Value(ParamDefault::Int(1))),
        Param::def("func", T::AggFunc, ParamDefault::Str("average")).options(AGG_FUNCS),
    ],
    aggregator: false,
    imp: highest,
};

fn lowest(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    top(
        args.series_list("seriesList")?,
        args.int("n")?,
        &args.string("func")?,
        false,
    )
}

const LOWEST: FunctionDef = FunctionDef {
    name: "lowest",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N and an aggregation \
        function.\n\
        Out of all metrics passed, draws only the N metrics with the lowest aggregated value over \
        the\n\
        time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=lowest(server*.instance*.threads.busy,5,'min')\n\
        \n\
        Draws the 5 servers with the lowest number of busy threads.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer).python_default(PythonDefault::Value(ParamDefault::Int(1))),
        Param::def("func", T::AggFunc, ParamDefault::Str("average")).options(AGG_FUNCS),
    ],
    aggregator: false,
    imp: lowest,
};

macro_rules! top_by {
    ($name:ident, $func:literal, $highest:literal) => {
        fn $name(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
            top(
                args.series_list("seriesList")?,
                args.int("n")?,
                $func,
                $highest,
            )
        }
    };
}

top_by!(highest_current, "current", true);

const HIGHEST_CURRENT: FunctionDef = FunctionDef {
    name: "highestCurrent",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        Out of all metrics passed, draws only the N metrics with the highest value\n\
        at the end of the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=highestCurrent(server*.instance*.threads.busy,5)\n\
        \n\
        Draws the 5 servers with the highest busy threads.\n\
        \n\
        This is an alias for :py:func:`highest <highest>` with aggregation ``current``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer),
    ],
    aggregator: false,
    imp: highest_current,
};

top_by!(highest_max, "max", true);

const HIGHEST_MAX: FunctionDef = FunctionDef {
    name: "highestMax",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        \n\
        Out of all metrics passed, draws only the N metrics with the highest maximum\n\
        value in the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=highestMax(server*.instance*.threads.busy,5)\n\
        \n\
        Draws the top 5 servers who have had the most busy threads during the time\n\
        period specified.\n\
        \n\
        This is an alias for :py:func:`highest <highest>` with aggregation ``max``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer),
    ],
    aggregator: false,
    imp: highest_max,
};

top_by!(highest_average, "average", true);

const HIGHEST_AVERAGE: FunctionDef = FunctionDef {
    name: "highestAverage",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        Out of all metrics passed, draws only the top N metrics with the highest\n\
        average value for the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=highestAverage(server*.instance*.threads.busy,5)\n\
        \n\
        Draws the top 5 servers with the highest average value.\n\
        \n\
        This is an alias for :py:func:`highest <highest>` with aggregation ``average``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer),
    ],
    aggregator: false,
    imp: highest_average,
};

top_by!(lowest_current, "current", false);

const LOWEST_CURRENT: FunctionDef = FunctionDef {
    name: "lowestCurrent",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        Out of all metrics passed, draws only the N metrics with the lowest value at\n\
        the end of the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=lowestCurrent(server*.instance*.threads.busy,5)\n\
        \n\
        Draws the 5 servers with the least busy threads right now.\n\
        \n\
        This is an alias for :py:func:`lowest <lowest>` with aggregation ``current``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer),
    ],
    aggregator: false,
    imp: lowest_current,
};

top_by!(lowest_average, "average", false);

const LOWEST_AVERAGE: FunctionDef = FunctionDef {
    name: "lowestAverage",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        Out of all metrics passed, draws only the bottom N metrics with the lowest\n\
        average value for the time period specified.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=lowestAverage(server*.instance*.threads.busy,5)\n\
        \n\
        Draws the bottom 5 servers with the lowest average value.\n\
        \n\
        This is an alias for :py:func:`lowest <lowest>` with aggregation ``average``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer),
    ],
    aggregator: false,
    imp: lowest_average,
};

/// Python's `a < b` where `None` is not comparable: `Err` as graphite-web's `TypeError`.
fn lt(a: Option<f64>, b: Option<f64>, function: &str) -> Result<bool, EvalError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok(a < b),
        _ => Err(bad(format!(
            "{function}: cannot compare a null value (graphite-web raises TypeError)"
        ))),
    }
}

fn average_outside_percentile(
    _ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let mut n = args.float("n")?;
    let averages: Vec<Option<f64>> = list.iter().map(|s| over(s, safe_avg)).collect();
    if n < 50.0 {
        n = 100.0 - n;
    }
    let err =
        |_| bad("averageOutsidePercentile: percentile out of range (list index out of range)");
    let low = percentile(&averages, 100.0 - n, false).map_err(err)?;
    let high = percentile(&averages, n, false).map_err(err)?;
    let mut out = Vec::new();
    for (s, avg) in list.into_iter().zip(averages) {
        // Python's chained `low < avg < high`: the second comparison only when the first holds.
        let inside =
            lt(low, avg, "averageOutsidePercentile")? && lt(avg, high, "averageOutsidePercentile")?;
        if !inside {
            out.push(s);
        }
    }
    Ok(out)
}

const AVERAGE_OUTSIDE_PERCENTILE: FunctionDef = FunctionDef {
    name: "averageOutsidePercentile",
    group: "Filter Series",
    description: "\
        Removes series lying inside an average percentile interval",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: average_outside_percentile,
};

fn remove_between_percentile(
    _ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let mut n = args.float("n")?;
    if n < 50.0 {
        n = 100.0 - n;
    }
    let cols: Vec<std::borrow::Cow<'_, [Option<f64>]>> =
        list.iter().map(|s| s.consolidated()).collect();
    // zip(*seriesList): as long as the shortest series.
    let width = cols.iter().map(|c| c.len()).min().unwrap_or(0);
    let err = |_| bad("removeBetweenPercentile: percentile out of range (list index out of range)");
    let mut lows = Vec::with_capacity(width);
    let mut highs = Vec::with_capacity(width);
    for i in 0..width {
        let col: Vec<Option<f64>> = cols.iter().map(|c| c[i]).collect();
        lows.push(percentile(&col, 100.0 - n, false).map_err(err)?);
        highs.push(percentile(&col, n, false).map_err(err)?);
    }
    let mut keep = Vec::with_capacity(list.len());
    for c in &cols {
        let mut outside = 0usize;
        for (i, v) in c.iter().enumerate() {
            let (Some(low), Some(high)) = (lows.get(i), highs.get(i)) else {
                return Err(bad("removeBetweenPercentile: series of different lengths (list index out of range)"));
            };
            let inside = lt(*low, *v, "removeBetweenPercentile")?
                && lt(*v, *high, "removeBetweenPercentile")?;
            outside += usize::from(!inside);
        }
        keep.push(outside > 0);
    }
    Ok(list
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(s, _)| s)
        .collect())
}

const REMOVE_BETWEEN_PERCENTILE: FunctionDef = FunctionDef {
    name: "removeBetweenPercentile",
    group: "Filter Series",
    description: "\
        Removes series that do not have an value lying in the x-percentile of all the values at a \
        moment",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: remove_between_percentile,
};

/// Sets to null, in the series' own values, each value whose position (as iterated) `drop`
/// selects: graphite-web assigns by the iterated index.
fn blank(s: &mut Series, drop: impl Fn(Option<f64>) -> bool) {
    let iterated = s.consolidated().into_owned();
    for (i, v) in iterated.into_iter().enumerate() {
        if drop(v) {
            if let Some(slot) = s.values.get_mut(i) {
                *slot = None;
            }
        }
    }
}

/// `removeAbove/BelowPercentile`: graphite-web's `nPercentile` of the series (which also
/// tags it `nPercentile=n`), then the values beyond it blanked. A series without values, or
/// whose percentile does not exist, is only renamed.
fn remove_percentile(
    args: &Args<'_>,
    function: &str,
    above: bool,
) -> Result<Vec<Series>, EvalError> {
    let n = args.float("n")?;
    let mut list = args.series_list("seriesList")?;
    if n == 0.0 && !list.is_empty() {
        return Err(bad(
            "The requested percent is required to be greater than 0",
        ));
    }
    for s in &mut list {
        s.name = format!("{function}({}, {})", s.name, format_g(n));
        s.path_expression = s.name.clone();
        let values = s.consolidated().into_owned();
        if !values.iter().any(Option::is_some) {
            continue;
        }
        let Ok(Some(p)) = percentile(&values, n, false) else {
            continue;
        };
        s.tags
            .insert("nPercentile".into(), crate::python::repr_f64(n));
        let points = if s.step > 0 {
            (s.end - s.start) / s.step
        } else {
            0
        };
        if points <= 0 {
            continue;
        }
        if above {
            blank(s, |v| v.is_some_and(|v| v > p));
        } else {
            blank(s, |v| v.is_none_or(|v| v < p));
        }
    }
    Ok(list)
}

fn remove_above_percentile(
    _ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    remove_percentile(args, "removeAbovePercentile", true)
}

const REMOVE_ABOVE_PERCENTILE: FunctionDef = FunctionDef {
    name: "removeAbovePercentile",
    group: "Filter Data",
    description: "\
        Removes data above the nth percentile from the series or list of series provided.\n\
        Values above this percentile are assigned a value of None.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: remove_above_percentile,
};

fn remove_below_percentile(
    _ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    remove_percentile(args, "removeBelowPercentile", false)
}

const REMOVE_BELOW_PERCENTILE: FunctionDef = FunctionDef {
    name: "removeBelowPercentile",
    group: "Filter Data",
    description: "\
        Removes data below the nth percentile from the series or list of series provided.\n\
        Values below this percentile are assigned a value of None.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: remove_below_percentile,
};

fn remove_value(args: &Args<'_>, function: &str, above: bool) -> Result<Vec<Series>, EvalError> {
    let n = args.float("n")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = format!("{function}({}, {})", s.name, format_g(n));
        s.path_expression = s.name.clone();
        if above {
            blank(s, |v| v.is_some_and(|v| v > n));
        } else {
            blank(s, |v| v.is_none_or(|v| v < n));
        }
    }
    Ok(list)
}

fn remove_above_value(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    remove_value(args, "removeAboveValue", true)
}

const REMOVE_ABOVE_VALUE: FunctionDef = FunctionDef {
    name: "removeAboveValue",
    group: "Filter Data",
    description: "\
        Removes data above the given threshold from the series or list of series provided.\n\
        Values above this threshold are assigned a value of None.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: remove_above_value,
};

fn remove_below_value(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    remove_value(args, "removeBelowValue", false)
}

const REMOVE_BELOW_VALUE: FunctionDef = FunctionDef {
    name: "removeBelowValue",
    group: "Filter Data",
    description: "\
        Removes data below the given threshold from the series or list of series provided.\n\
        Values below this threshold are assigned a value of None.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: remove_below_value,
};

fn limit(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let n = args.int("n")?;
    let mut list = args.series_list("seriesList")?;
    let end = slice_end(list.len(), n);
    list.truncate(end);
    Ok(list)
}

const LIMIT: FunctionDef = FunctionDef {
    name: "limit",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        \n\
        Only draw the first N metrics.  Useful when testing a wildcard in a metric.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=limit(server*.instance*.memory.free,5)\n\
        \n\
        Draws only the first 5 instance's memory free.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer),
    ],
    aggregator: false,
    imp: limit,
};

fn exclude(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let re = py_regex(&args.string("pattern")?, "exclude")?;
    let mut kept = Vec::new();
    for s in args.series_list("seriesList")? {
        if !re.is_match(&s.name)? {
            kept.push(s);
        }
    }
    Ok(kept)
}

const EXCLUDE: FunctionDef = FunctionDef {
    name: "exclude",
    group: "Filter Series",
    description: "\
        Takes a metric or a wildcard seriesList, followed by a regular expression\n\
        in double quotes.  Excludes metrics that match the regular expression.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=exclude(servers*.instance*.threads.busy,\"server02\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("pattern", T::String),
    ],
    aggregator: false,
    imp: exclude,
};

fn grep(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let re = py_regex(&args.string("pattern")?, "grep")?;
    let mut kept = Vec::new();
    for s in args.series_list("seriesList")? {
        if re.is_match(&s.name)? {
            kept.push(s);
        }
    }
    Ok(kept)
}

const GREP: FunctionDef = FunctionDef {
    name: "grep",
    group: "Filter Series",
    description: "\
        Takes a metric or a wildcard seriesList, followed by a regular expression\n\
        in double quotes.  Excludes metrics that don't match the regular expression.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=grep(servers*.instance*.threads.busy,\"server02\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("pattern", T::String),
    ],
    aggregator: false,
    imp: grep,
};

fn remove_empty_series(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let xff = args.opt_float("xFilesFactor")?.unwrap_or(0.0);
    Ok(args
        .series_list("seriesList")?
        .into_iter()
        .filter(|s| {
            // graphite-web's xffValues over the series: non-null values as iterated, over its
            // raw length.
            let non_null = s.consolidated().iter().filter(|v| v.is_some()).count();
            non_null > 0 && !s.values.is_empty() && non_null as f64 / s.values.len() as f64 >= xff
        })
        .collect())
}

const REMOVE_EMPTY_SERIES: FunctionDef = FunctionDef {
    name: "removeEmptySeries",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        Out of all metrics passed, draws only the metrics with not empty data\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=removeEmptySeries(server*.instance*.threads.busy)\n\
        \n\
        Draws only live servers with not empty data.\n\
        \n\
        `xFilesFactor` follows the same semantics as in Whisper storage schemas.  Setting it to 0 \
        (the\n\
        default) means that only a single value in the series needs to be non-null for it to be\n\
        considered non-empty, setting it to 1 means that all values in the series must be \
        non-null.\n\
        A setting of 0.5 means that at least half the values in the series must be non-null.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: remove_empty_series,
};

fn unique(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut seen = std::collections::HashSet::new();
    Ok(args
        .series_lists("seriesLists")?
        .into_iter()
        .flatten()
        .filter(|s| seen.insert(s.name.clone()))
        .collect())
}

const UNIQUE: FunctionDef = FunctionDef {
    name: "unique",
    group: "Filter Series",
    description: "\
        Takes an arbitrary number of seriesLists and returns unique series, filtered by name.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=unique(mostDeviant(server.*.disk_free,5),lowestCurrent(server.*.disk_free,5))\n\
        \n\
        Draws servers with low disk space, and servers with highly deviant disk space, but never \
        the same series twice.",
    params: &[Param::req("seriesLists", T::SeriesList).many()],
    aggregator: false,
    imp: unique,
};

fn use_series_above(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let value = args.float("value")?;
    let re = py_regex(&args.string("search")?, "useSeriesAbove")?;
    let replace = args.string("replace")?;
    let list = args.series_list("seriesList")?;
    // graphite-web reads the template in `re.sub`, per series: a bad one fails only when
    // there is a series to rename.
    let sub = match list.is_empty() {
        true => None,
        false => {
            Some(Sub::with_regex(re, &replace).map_err(|e| bad(format!("useSeriesAbove: {e}")))?)
        }
    };
    let mut names = Vec::new();
    for s in list {
        let new_name = match &sub {
            Some(sub) => sub.replace_all(&s.name)?,
            None => String::new(),
        };
        // Python's max() over the values: refuses nulls among numbers, and an empty series.
        let values = s.consolidated();
        if values.is_empty() || values.iter().any(Option::is_none) {
            return Err(bad(format!(
                "useSeriesAbove: {} has {} (graphite-web's max() fails on it)",
                s.name,
                if values.is_empty() {
                    "no values"
                } else {
                    "null values"
                }
            )));
        }
        let max = values
            .iter()
            .flatten()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if max > value {
            names.push(new_name);
        }
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let target = format!("group({})", names.join(","));
    let expr = parse_target(&target, ctx.limits.max_depth)
        .map_err(|e| bad(format!("useSeriesAbove: {e}")))?;
    Ok(ctx
        .eval_target(&expr)?
        .into_iter()
        .filter(|s| !s.values.is_empty())
        .collect())
}

const USE_SERIES_ABOVE: FunctionDef = FunctionDef {
    name: "useSeriesAbove",
    group: "Filter Series",
    description: "\
        Compares the maximum of each series against the given `value`. If the series\n\
        maximum is greater than `value`, the regular expression search and replace is\n\
        applied against the series name to plot a related metric\n\
        \n\
        e.g. given useSeriesAbove(ganglia.metric1.reqs,10,'reqs','time'),\n\
        the response time metric will be plotted only when the maximum value of the\n\
        corresponding request/s metric is > 10\n\
        \n\
        .. code-block:: none\n\
        \n  &target=useSeriesAbove(ganglia.metric1.reqs,10,\"reqs\",\"time\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("value", T::Float),
        Param::req("search", T::String),
        Param::req("replace", T::String),
    ],
    aggregator: false,
    imp: use_series_above,
};

fn most_deviant(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let n = args.int("n")?;
    let mut deviants: Vec<(f64, Series)> = Vec::new();
    for s in args.series_list("seriesList")? {
        let values = s.consolidated().into_owned();
        let Some(mean) = safe_avg(&values) else {
            continue;
        };
        let square_sum = values
            .iter()
            .flatten()
            .fold(0.0, |acc, v| acc + (v - mean) * (v - mean));
        let count = safe_len(&values).unwrap_or(0.0);
        if count == 0.0 {
            continue;
        }
        deviants.push((square_sum / count, s));
    }
    // Stable, descending by sigma, as Python's sort(reverse=True).
    deviants.sort_by(|a, b| cmp_f64(b.0, a.0));
    let end = slice_end(deviants.len(), n);
    Ok(deviants.into_iter().take(end).map(|(_, s)| s).collect())
}

const MOST_DEVIANT: FunctionDef = FunctionDef {
    name: "mostDeviant",
    group: "Filter Series",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        Draws the N most deviant metrics.\n\
        To find the deviants, the standard deviation (sigma) of each series\n\
        is taken and ranked. The top N standard deviations are returned.\n\
        \n  Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=mostDeviant(server*.instance*.memory.free, 5)\n\
        \n\
        Draws the 5 instances furthest from the average memory free.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Integer),
    ],
    aggregator: false,
    imp: most_deviant,
};

fn sort_by(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let f = agg_func(&args.string("func")?)?;
    let reverse = args.bool("reverse")?;
    let mut list = args.series_list("seriesList")?;
    sort_by_key(&mut list, |s| key(over(s, f)), reverse);
    Ok(list)
}

const SORT_BY: FunctionDef = FunctionDef {
    name: "sortBy",
    group: "Sorting",
    description: "\
        Takes one metric or a wildcard seriesList followed by an aggregation function and an\n\
        optional ``reverse`` parameter.\n\
        \n\
        Returns the metrics sorted according to the specified function.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sortBy(server*.instance*.threads.busy,'max')\n\
        \n\
        Draws the servers in ascending order by maximum.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("func", T::AggFunc, ParamDefault::Str("average")).options(AGG_FUNCS),
        Param::def("reverse", T::Boolean, ParamDefault::Bool(false)),
    ],
    aggregator: false,
    imp: sort_by,
};

/// `sortByName(natural=True)`'s key: each run of digits zero-padded to ten places (Python's
/// `"{0:010}".format(int(run))`; ASCII digits only).
fn natural_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let trimmed = run.trim_start_matches('0');
        let digits = if trimmed.is_empty() { "0" } else { trimmed };
        for _ in digits.len()..10 {
            out.push('0');
        }
        out.push_str(digits);
        run.clear();
    };
    for c in name.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn sort_by_name(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let natural = args.bool("natural")?;
    let reverse = args.bool("reverse")?;
    let mut keyed: Vec<(String, Series)> = args
        .series_list("seriesList")?
        .into_iter()
        .map(|s| {
            (
                if natural {
                    natural_key(&s.name)
                } else {
                    s.name.clone()
                },
                s,
            )
        })
        .collect();
    keyed.sort_by(|a, b| {
        if reverse {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        }
    });
    Ok(keyed.into_iter().map(|(_, s)| s).collect())
}

const SORT_BY_NAME: FunctionDef = FunctionDef {
    name: "sortByName",
    group: "Sorting",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        Sorts the list of metrics by the metric name using either alphabetical order or natural \
        sorting.\n\
        Natural sorting allows names containing numbers to be sorted more naturally, e.g:\n\
        - Alphabetical sorting: server1, server11, server12, server2\n\
        - Natural sorting: server1, server2, server11, server12",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("natural", T::Boolean, ParamDefault::Bool(false)),
        Param::def("reverse", T::Boolean, ParamDefault::Bool(false)),
    ],
    aggregator: false,
    imp: sort_by_name,
};

fn sort_by_total(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    sort_by_key(
        &mut list,
        |s| key(over(s, super::aggregate::safe_sum)),
        true,
    );
    Ok(list)
}

const SORT_BY_TOTAL: FunctionDef = FunctionDef {
    name: "sortByTotal",
    group: "Sorting",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        \n\
        Sorts the list of metrics in descending order by the sum of values across the time period\n\
        specified.",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: sort_by_total,
};

fn sort_by_maxima(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    sort_by_key(&mut list, |s| key(over(s, safe_max)), true);
    Ok(list)
}

const SORT_BY_MAXIMA: FunctionDef = FunctionDef {
    name: "sortByMaxima",
    group: "Sorting",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        \n\
        Sorts the list of metrics in descending order by the maximum value across the time period\n\
        specified.  Useful with the &areaMode=all parameter, to keep the\n\
        lowest value lines visible.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sortByMaxima(server*.instance*.memory.free)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: sort_by_maxima,
};

fn sort_by_minima(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list: Vec<Series> = args
        .series_list("seriesList")?
        .into_iter()
        .filter(|s| over(s, safe_max).unwrap_or(0.0) > 0.0)
        .collect();
    sort_by_key(&mut list, |s| key(over(s, safe_min)), false);
    Ok(list)
}

const SORT_BY_MINIMA: FunctionDef = FunctionDef {
    name: "sortByMinima",
    group: "Sorting",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        \n\
        Sorts the list of metrics by the lowest value across the time period\n\
        specified, including only series that have a maximum value greater than 0.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sortByMinima(server*.instance*.memory.free)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: sort_by_minima,
};

/// The Filter Series, Filter Data and Sorting families.
pub const FUNCTIONS: &[FunctionDef] = &[
    AVERAGE_ABOVE,
    AVERAGE_BELOW,
    AVERAGE_OUTSIDE_PERCENTILE,
    CURRENT_ABOVE,
    CURRENT_BELOW,
    EXCLUDE,
    FILTER_SERIES,
    GREP,
    HIGHEST,
    HIGHEST_AVERAGE,
    HIGHEST_CURRENT,
    HIGHEST_MAX,
    LIMIT,
    LOWEST,
    LOWEST_AVERAGE,
    LOWEST_CURRENT,
    MAXIMUM_ABOVE,
    MAXIMUM_BELOW,
    MINIMUM_ABOVE,
    MINIMUM_BELOW,
    MOST_DEVIANT,
    REMOVE_BETWEEN_PERCENTILE,
    REMOVE_EMPTY_SERIES,
    UNIQUE,
    USE_SERIES_ABOVE,
    REMOVE_ABOVE_PERCENTILE,
    REMOVE_ABOVE_VALUE,
    REMOVE_BELOW_PERCENTILE,
    REMOVE_BELOW_VALUE,
    SORT_BY,
    SORT_BY_MAXIMA,
    SORT_BY_MINIMA,
    SORT_BY_NAME,
    SORT_BY_TOTAL,
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use super::natural_key;

    const T0: i64 = 1_700_000_000 - 100;

    fn points() -> Vec<(&'static str, i64, f64)> {
        vec![
            ("s.a", T0 + 10, 1.0),
            ("s.a", T0 + 20, 9.0),
            ("s.b", T0 + 10, 5.0),
            ("s.b", T0 + 20, 5.0),
            ("s.c2", T0 + 10, -3.0),
            ("s.c10", T0 + 10, 0.0),
        ]
    }

    fn names(target: &str) -> Vec<String> {
        eval(&points(), target, T0, T0 + 40)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn filters_and_sorts() {
        assert_eq!(names("highestMax(s.*, 2)"), vec!["s.a", "s.b"]);
        assert_eq!(names("lowestAverage(s.*, 1)"), vec!["s.c2"]);
        assert_eq!(names("limit(s.*, -1)"), vec!["s.a", "s.b", "s.c10"]);
        assert_eq!(names("maximumAbove(s.*, 4)"), vec!["s.a", "s.b"]);
        assert_eq!(names("exclude(s.*, 'c')"), vec!["s.a", "s.b"]);
        assert_eq!(names("grep(s.*, 'c1\\d')"), vec!["s.c10"]);
        assert_eq!(
            names("sortByName(s.*, true)"),
            vec!["s.a", "s.b", "s.c2", "s.c10"]
        );
        assert_eq!(
            names("sortByMaxima(s.*)"),
            vec!["s.a", "s.b", "s.c10", "s.c2"]
        );
        assert_eq!(
            names("removeBelowValue(s.a, 5)"),
            vec!["removeBelowValue(s.a, 5)"]
        );
        let s = eval(&points(), "removeBelowValue(s.a, 5)", T0, T0 + 40).unwrap();
        assert_eq!(s[0].values[..3], [None, Some(9.0), None]);
        assert!(
            eval(&points(), "useSeriesAbove(s.a, 0, 'a', 'b')", T0, T0 + 40).is_err(),
            "max() over nulls fails as in graphite-web"
        );
        assert_eq!(natural_key("web1.x10"), "web0000000001.x0000000010");
        assert_eq!(natural_key("v000000000000012"), "v0000000012");
    }

    #[test]
    fn highest_and_lowest_default_to_one_by_average() {
        // graphite-web's Python `n=1, func='average'` (its Param says `n` is required, but its
        // default, non-strict validation lets the call through to the Python default).
        assert_eq!(names("lowest(s.*)"), names("lowest(s.*, 1, 'average')"));
        assert_eq!(names("lowest(s.*)"), vec!["s.c2"]);
        assert_eq!(names("highest(s.*)"), vec!["s.a"]);
        assert_eq!(names("highest(s.*, func='min')"), vec!["s.b"]);
        let err = eval(&points(), "highestMax(s.*)", T0, T0 + 40).unwrap_err();
        assert!(
            err.to_string().contains("Missing required parameter \"n\""),
            "{err}"
        );
    }

    #[test]
    fn grep_and_exclude_read_python_look_around_and_backreferences() {
        // Expected lists are what CPython 3.11's re.search keeps (issue #11).
        assert_eq!(names(r"grep(s.*, '(?<=s\.)c(?!2)')"), vec!["s.c10"]);
        assert_eq!(names(r"exclude(s.*, '^s\.(?=c)')"), vec!["s.a", "s.b"]);
        assert_eq!(
            names(r"exclude(s.*, '(\d)(?!\1)\d')"),
            vec!["s.a", "s.b", "s.c2"]
        );
        assert!(eval(&points(), "grep(s.*, '(?<=s+)a')", T0, T0 + 40).is_err());
    }

    #[test]
    fn odd_arguments_never_panic() {
        let big = "9223372036854775807";
        let targets = [
            format!("highest(s.*, -{big}, 'median')"),
            format!("mostDeviant(s.*, {big})"),
            "removeAbovePercentile(s.*, -1e308)".to_string(),
            "removeBelowPercentile(s.*, 1e308)".into(),
            "removeBetweenPercentile(s.*, 1e308)".into(),
            "averageOutsidePercentile(s.*, -1e308)".into(),
            "removeEmptySeries(s.*, -inf)".into(),
            "useSeriesAbove(s.b, 0, '', '\\g<')".into(),
            "useSeriesAbove(s.b, 0, '(', 'x')".into(),
            "grep(s.*, '')".into(),
            "exclude(s.*, '(?<=a)b')".into(),
            "filterSeries(s.*, 'multiply', '=', inf)".into(),
            "sortBy(s.*, 'diff', true)".into(),
        ];
        for t in &targets {
            let _ = eval(&points(), t, T0, T0 + 40);
        }
    }
}
