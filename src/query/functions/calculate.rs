//! Calculate: functions that derive new series from each series' values over time — moving
//! windows, exponential moving average, percentiles, standard deviation, Holt-Winters
//! forecasts, linear regression, aggregate lines (graphite-web's "Calculate" group).
//!
//! As graphite-web 1.1.8's `render/functions.py`: moving windows and Holt-Winters evaluate
//! their first argument again over a range that starts earlier by the window (or the
//! `bootstrapInterval`, 7 days by default) and drop that bootstrap from the result; names,
//! tags (strings), steps and nulls follow graphite-web, including its quirks (an
//! exponential moving average of a time window uses the window in seconds as its constant).
//! Window loops check the request deadline and refuse outputs beyond the request's point
//! budget, so no window size makes memory or time unbounded. Nothing here writes.
//!
//! Where carbonhound knowingly differs from graphite-web 1.1.8: `linearRegression`'s
//! `startSourceAt`/`endSourceAt` are read relative to the request's `now` and time zone (not
//! the wall clock and the server's zone); `nPercentile` sorts NaN data last (Python leaves it
//! wherever its comparisons happen to); a window whose output would exceed the request's point
//! budget is refused (413) instead of built.

use super::aggregate::{agg_func, safe_avg, xff_counts, AGG_FUNCS};
use super::callback::reevaluate;
use super::error::bad;
use super::naming::py_str_value;
use super::time::date_param;
use super::time::shift_time;
use super::values::{copy_series, iter_values};
use crate::python::round as py_round;
use crate::python::{format_g, repr_f64};
use crate::python::{index_of as py_index_of, slice_range as py_slice_range};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::series::Series;
use crate::query::signature::{Args, FunctionDef, Param, ParamDefault, ParamType as T};

fn offset_seconds(s: &str) -> Result<i64, EvalError> {
    super::time::py_time_offset(s)
}

/// A `windowSize` argument: a count of points or a time string.
enum Window {
    /// `'5min'`: the seconds (absolute) and the string as written.
    Interval(i64, String),
    /// A number of points (`int(windowSize)`) and its Python `str()`.
    Points(i64, String),
}

impl Window {
    fn from_args(args: &Args<'_>) -> Result<Window, EvalError> {
        Ok(match args.raw_value("windowSize")? {
            Some(Value::Str(s)) => Window::Interval(offset_seconds(&s)?.abs(), s),
            Some(v @ Value::Int(i)) => Window::Points(i, py_str_value(&v)),
            Some(v @ Value::Float(f)) if f.is_finite() => {
                Window::Points(f.trunc() as i64, py_str_value(&v))
            }
            Some(v @ Value::Bool(b)) => Window::Points(b as i64, py_str_value(&v)),
            Some(other) => return Err(bad(format!("invalid windowSize {}", py_str_value(&other)))),
            None => return Err(bad("Missing required parameter \"windowSize\"")),
        })
    }

    /// graphite-web's `previewSeconds`: how much earlier the bootstrap fetch starts.
    fn preview_seconds(&self, list: &[Series]) -> Result<i64, EvalError> {
        match self {
            Window::Interval(secs, _) => Ok(*secs),
            Window::Points(n, _) => {
                let step = list.iter().map(|s| s.step).max().unwrap_or(0);
                step.checked_mul(*n)
                    .ok_or_else(|| bad("windowSize too large"))
            }
        }
    }

    /// graphite-web's `windowPoints` for a series of `step` seconds.
    fn points(&self, step: i64) -> i64 {
        match self {
            Window::Interval(secs, _) => secs.div_euclid(step.max(1)),
            Window::Points(n, _) => *n,
        }
    }

    /// The window as it appears in names: `"5min"` quoted, a count bare.
    fn name_part(&self) -> String {
        match self {
            Window::Interval(_, s) => format!("\"{s}\""),
            Window::Points(_, s) => s.clone(),
        }
    }

    fn tag(&self) -> String {
        match self {
            Window::Interval(_, s) | Window::Points(_, s) => s.clone(),
        }
    }
}

fn check_points(ctx: &EvalContext<'_>, n: i64) -> Result<(), EvalError> {
    if n > ctx.limits.max_points as i64 {
        return Err(EvalError::TooLarge(format!(
            "the window would produce {n} values, more than the request's point limit ({})",
            ctx.limits.max_points
        )));
    }
    Ok(())
}

/// graphite-web's `movingWindow`: for each point, `func` over the known values of the
/// `windowSize` points before it (bootstrapped from earlier data), null unless the known ones
/// reach `xFilesFactor` (the series' own by default).
fn moving(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
    func: &str,
    x_files_factor: Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let window = Window::from_args(args)?;
    let preview = window.preview_seconds(&list)?;
    let agg = agg_func(func)?;
    let start = shift_time(ctx.start, -preview)?;
    let preview_list = reevaluate(ctx, args, start, ctx.end)?;
    let tag_name = format!("moving{}", crate::python::capitalize(func));
    let mut out = Vec::with_capacity(preview_list.len());
    for mut s in preview_list {
        let wp = window.points(s.step);
        let name = format!("{tag_name}({},{})", s.name, window.name_part());
        s.tags.insert(tag_name.clone(), window.tag());
        let xff = x_files_factor.unwrap_or(s.x_files_factor);
        let vals = iter_values(&s);
        let n = vals.len() as i64;
        check_points(ctx, n - wp)?;
        let mut values = Vec::with_capacity((n - wp).max(0) as usize);
        let mut buf: Vec<Option<f64>> = Vec::new();
        let mut i = wp;
        while i < n {
            if (i - wp) % 4096 == 0 {
                ctx.check_deadline()?;
            }
            buf.clear();
            buf.extend(
                vals[py_slice_range(vals.len(), Some(i - wp), Some(i))]
                    .iter()
                    .filter(|v| v.is_some()),
            );
            values.push(
                if !buf.is_empty() && xff_counts(buf.len(), wp as f64, xff) {
                    agg(&buf)
                } else {
                    None
                },
            );
            i += 1;
        }
        let mut n = copy_series(&s, name, values);
        n.start = shift_time(s.start, preview)?;
        out.push(n);
    }
    Ok(out)
}

fn moving_window(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let func = args.string("func")?;
    moving(ctx, args, &func, args.opt_float("xFilesFactor")?)
}

const MOVING_WINDOW: FunctionDef = FunctionDef {
    name: "movingWindow",
    group: "Calculate",
    description: "\
        Graphs a moving window function of a metric (or metrics) over a fixed number of\n\
        past points, or a time interval.\n\
        \n\
        Takes one metric or a wildcard seriesList, a number N of datapoints\n\
        or a quoted string with a length of time like '1hour' or '5min' (See ``from /\n\
        until`` in the :doc:`Render API <render_api>` for examples of time formats), a function to \
        apply to the points\n\
        in the window to produce the output, and an xFilesFactor value to specify how many points \
        in the\n\
        window must be non-null for the output to be considered valid. Graphs the\n\
        output of the function for the preceeding datapoints for each point on the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=movingWindow(Server.instance01.threads.busy,10)\
        \n  &target=movingWindow(Server.instance*.threads.idle,'5min','median',0.5)\n\
        \n\
        .. note::\n\
        \n  `xFilesFactor` follows the same semantics as in Whisper storage schemas.  Setting it \
        to 0 (the\
        \n  default) means that only a single value in a given interval needs to be non-null, \
        setting it to\
        \n  1 means that all values in the interval must be non-null.  A setting of 0.5 means that \
        at least\
        \n  half the values in the interval must be non-null.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("windowSize", T::IntOrInterval),
        Param::def("func", T::AggFunc, ParamDefault::Str("average")).options(AGG_FUNCS),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: moving_window,
};

fn moving_average(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    moving(ctx, args, "average", args.opt_float("xFilesFactor")?)
}

const MOVING_AVERAGE: FunctionDef = FunctionDef {
    name: "movingAverage",
    group: "Calculate",
    description: "\
        Graphs the moving average of a metric (or metrics) over a fixed number of\n\
        past points, or a time interval.\n\
        \n\
        Takes one metric or a wildcard seriesList followed by a number N of datapoints\n\
        or a quoted string with a length of time like '1hour' or '5min' (See ``from /\n\
        until`` in the :doc:`Render API <render_api>` for examples of time formats), and an \
        xFilesFactor value to specify\n\
        how many points in the window must be non-null for the output to be considered valid. \
        Graphs the\n\
        average of the preceeding datapoints for each point on the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=movingAverage(Server.instance01.threads.busy,10)\
        \n  &target=movingAverage(Server.instance*.threads.idle,'5min')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("windowSize", T::IntOrInterval),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: moving_average,
};

fn moving_median(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    moving(ctx, args, "median", args.opt_float("xFilesFactor")?)
}

const MOVING_MEDIAN: FunctionDef = FunctionDef {
    name: "movingMedian",
    group: "Calculate",
    description: "\
        Graphs the moving median of a metric (or metrics) over a fixed number of\n\
        past points, or a time interval.\n\
        \n\
        Takes one metric or a wildcard seriesList followed by a number N of datapoints\n\
        or a quoted string with a length of time like '1hour' or '5min' (See ``from /\n\
        until`` in the :doc:`Render API <render_api>` for examples of time formats), and an \
        xFilesFactor value to specify\n\
        how many points in the window must be non-null for the output to be considered valid. \
        Graphs the\n\
        median of the preceeding datapoints for each point on the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=movingMedian(Server.instance01.threads.busy,10)\
        \n  &target=movingMedian(Server.instance*.threads.idle,'5min')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("windowSize", T::IntOrInterval),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: moving_median,
};

fn moving_sum(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    moving(ctx, args, "sum", args.opt_float("xFilesFactor")?)
}

const MOVING_SUM: FunctionDef = FunctionDef {
    name: "movingSum",
    group: "Calculate",
    description: "\
        Graphs the moving sum of a metric (or metrics) over a fixed number of\n\
        past points, or a time interval.\n\
        \n\
        Takes one metric or a wildcard seriesList followed by a number N of datapoints\n\
        or a quoted string with a length of time like '1hour' or '5min' (See ``from /\n\
        until`` in the :doc:`Render API <render_api>` for examples of time formats), and an \
        xFilesFactor value to specify\n\
        how many points in the window must be non-null for the output to be considered valid. \
        Graphs the\n\
        sum of the preceeding datapoints for each point on the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=movingSum(Server.instance01.requests,10)\
        \n  &target=movingSum(Server.instance*.errors,'5min')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("windowSize", T::IntOrInterval),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: moving_sum,
};

fn moving_min(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    moving(ctx, args, "min", args.opt_float("xFilesFactor")?)
}

const MOVING_MIN: FunctionDef = FunctionDef {
    name: "movingMin",
    group: "Calculate",
    description: "\
        Graphs the moving minimum of a metric (or metrics) over a fixed number of\n\
        past points, or a time interval.\n\
        \n\
        Takes one metric or a wildcard seriesList followed by a number N of datapoints\n\
        or a quoted string with a length of time like '1hour' or '5min' (See ``from /\n\
        until`` in the :doc:`Render API <render_api>` for examples of time formats), and an \
        xFilesFactor value to specify\n\
        how many points in the window must be non-null for the output to be considered valid. \
        Graphs the\n\
        minimum of the preceeding datapoints for each point on the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=movingMin(Server.instance01.requests,10)\
        \n  &target=movingMin(Server.instance*.errors,'5min')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("windowSize", T::IntOrInterval),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: moving_min,
};

fn moving_max(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    moving(ctx, args, "max", args.opt_float("xFilesFactor")?)
}

const MOVING_MAX: FunctionDef = FunctionDef {
    name: "movingMax",
    group: "Calculate",
    description: "\
        Graphs the moving maximum of a metric (or metrics) over a fixed number of\n\
        past points, or a time interval.\n\
        \n\
        Takes one metric or a wildcard seriesList followed by a number N of datapoints\n\
        or a quoted string with a length of time like '1hour' or '5min' (See ``from /\n\
        until`` in the :doc:`Render API <render_api>` for examples of time formats), and an \
        xFilesFactor value to specify\n\
        how many points in the window must be non-null for the output to be considered valid. \
        Graphs the\n\
        maximum of the preceeding datapoints for each point on the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=movingMax(Server.instance01.requests,10)\
        \n  &target=movingMax(Server.instance*.errors,'5min')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("windowSize", T::IntOrInterval),
        Param::opt("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: moving_max,
};

fn exponential_moving_average(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let window = Window::from_args(args)?;
    let preview = window.preview_seconds(&list)?;
    // graphite-web: 2 / (seconds + 1) for a time window (sic), 2 / (points + 1) for a count.
    let denominator = match &window {
        Window::Interval(secs, _) => *secs as f64 + 1.0,
        Window::Points(n, _) => *n as f64 + 1.0,
    };
    if denominator == 0.0 {
        return Err(bad("float division by zero (windowSize -1)"));
    }
    let constant = 2.0 / denominator;
    let start = shift_time(ctx.start, -preview)?;
    let preview_list = reevaluate(ctx, args, start, ctx.end)?;
    let mut out = Vec::with_capacity(preview_list.len());
    for mut s in preview_list {
        let wp = window.points(s.step);
        let name = format!(
            "exponentialMovingAverage({},{})",
            s.name,
            window.name_part()
        );
        s.tags
            .insert("exponentialMovingAverage".into(), window.tag());
        let vals = iter_values(&s);
        let n = vals.len() as i64;
        check_points(ctx, n - wp + 1)?;
        let mut ema = safe_avg(&vals[py_slice_range(vals.len(), None, Some(wp))])
            .filter(|v| *v != 0.0)
            .unwrap_or(0.0);
        let mut values = Vec::with_capacity((n - wp + 1).max(1) as usize);
        values.push(Some(py_round(ema, 6)));
        let mut i = wp;
        while i < n {
            let idx = py_index_of(vals.len(), i).ok_or_else(|| bad("list index out of range"))?;
            match vals[idx] {
                Some(v) => {
                    ema = constant * v + (1.0 - constant) * ema;
                    values.push(Some(py_round(ema, 6)));
                }
                None => values.push(None),
            }
            i += 1;
        }
        let mut n = copy_series(&s, name, values);
        n.start = shift_time(s.start, preview)?;
        out.push(n);
    }
    Ok(out)
}

const EXPONENTIAL_MOVING_AVERAGE: FunctionDef = FunctionDef {
    name: "exponentialMovingAverage",
    group: "Calculate",
    description: "\
        Takes a series of values and a window size and produces an exponential moving\n\
        average utilizing the following formula:\n\
        \n\
        .. code-block:: none\n\
        \n  ema(current) = constant * (Current Value) + (1 - constant) * ema(previous)\n\
        \n\
        The Constant is calculated as:\n\
        \n\
        .. code-block:: none\n\
        \n  constant = 2 / (windowSize + 1)\n\
        \n\
        The first period EMA uses a simple moving average for its value.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=exponentialMovingAverage(*.transactions.count, 10)\
        \n  &target=exponentialMovingAverage(*.transactions.count, '-10s')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("windowSize", T::IntOrInterval),
    ],
    aggregator: false,
    imp: exponential_moving_average,
};

/// graphite-web's `_getPercentile` (NIST method, nearest rank unless `interpolate`) of sorted,
/// known values; `Err` where graphite-web's indexing raises.
pub fn percentile(sorted: &[f64], n: f64, interpolate: bool) -> Result<Option<f64>, EvalError> {
    if sorted.is_empty() {
        return Ok(None);
    }
    let len = sorted.len();
    let fractional_rank = (n / 100.0) * (len as f64 + 1.0);
    if !fractional_rank.is_finite() || fractional_rank.abs() > 4.0 * (len as f64 + 2.0) {
        // Far outside the list: graphite-web's indexing raises (or int(nan) does).
        return Err(bad("list index out of range (percentile)"));
    }
    let mut rank = fractional_rank.trunc() as i64;
    let rank_fraction = fractional_rank - rank as f64;
    if !interpolate {
        rank += rank_fraction.ceil() as i64;
    }
    let at = |i: i64| {
        py_index_of(len, i)
            .map(|j| sorted[j])
            .ok_or_else(|| bad("list index out of range (percentile)"))
    };
    let mut p = if rank == 0 {
        sorted[0]
    } else if rank - 1 == len as i64 {
        sorted[len - 1]
    } else {
        at(rank - 1)?
    };
    if interpolate && rank != len as i64 {
        let next = at(rank)?;
        p += rank_fraction * (next - p);
    }
    Ok(Some(p))
}

fn n_percentile(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let n = args.float("n")?;
    if n == 0.0 {
        return Err(bad(
            "The requested percent is required to be greater than 0",
        ));
    }
    let list = args.series_list("seriesList")?;
    let mut out = Vec::new();
    for mut s in list {
        let mut sorted: Vec<f64> = iter_values(&s).into_iter().flatten().collect();
        if sorted.is_empty() {
            continue;
        }
        // Python sorts NaN wherever its comparisons leave it; a total order puts it last.
        sorted.sort_by(|a, b| a.total_cmp(b));
        let Some(p) = percentile(&sorted, n, false)? else {
            continue;
        };
        s.tags.insert("nPercentile".into(), repr_f64(n));
        let name = format!("nPercentile({}, {})", s.name, format_g(n));
        let count = ((s.end - s.start) as f64 / s.step as f64).trunc().max(0.0) as usize;
        out.push(copy_series(&s, name, vec![Some(p); count]));
    }
    Ok(out)
}

const N_PERCENTILE: FunctionDef = FunctionDef {
    name: "nPercentile",
    group: "Calculate",
    description: "\
        Returns n-percent of each series in the seriesList.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("n", T::Float),
    ],
    aggregator: false,
    imp: n_percentile,
};

fn stdev(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let points = args.int("points")?;
    let tolerance = args.float("windowTolerance")?;
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        s.tags.insert("stdev".into(), points.to_string());
        let name = format!("stdev({},{})", s.name, points);
        let vals = iter_values(&s);
        let mut valid: i64 = 0;
        let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
        let mut result = Vec::with_capacity(vals.len());
        for (index, new) in vals.iter().enumerate() {
            let index = index as i64;
            let bootstrapping = index < points;
            let dropped = if bootstrapping {
                None
            } else {
                let j = py_index_of(vals.len(), index - points)
                    .ok_or_else(|| bad("list index out of range (stdev points)"))?;
                vals[j]
            };
            if let (false, Some(d)) = (bootstrapping, dropped) {
                valid -= 1;
                sum -= d;
                sum_sq -= d.powf(2.0);
            }
            if let Some(v) = new {
                valid += 1;
                sum += v;
                sum_sq += v.powf(2.0);
            }
            if valid > 0 {
                if points == 0 {
                    return Err(bad("float division by zero (stdev points 0)"));
                }
                if valid as f64 / points as f64 >= tolerance {
                    let inner = valid as f64 * sum_sq - sum.powf(2.0);
                    result.push(if inner < 0.0 {
                        None
                    } else {
                        Some(inner.sqrt() / valid as f64)
                    });
                    continue;
                }
            }
            result.push(None);
        }
        out.push(copy_series(&s, name, result));
    }
    Ok(out)
}

const STDEV: FunctionDef = FunctionDef {
    name: "stdev",
    group: "Calculate",
    description: "\
        Takes one metric or a wildcard seriesList followed by an integer N.\n\
        Draw the Standard Deviation of all metrics passed for the past N datapoints.\n\
        If the ratio of null points in the window is greater than windowTolerance,\n\
        skip the calculation. The default for windowTolerance is 0.1 (up to 10% of points\n\
        in the window can be missing). Note that if this is set to 0.0, it will cause large\n\
        gaps in the output anywhere a single point is missing.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=stdev(server*.instance*.threads.busy,30)\
        \n  &target=stdev(server*.instance*.cpu.system,30,0.0)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("points", T::Integer),
        Param::def("windowTolerance", T::Float, ParamDefault::Float(0.1)),
    ],
    aggregator: false,
    imp: stdev,
};

/// What graphite-web's `holtWintersAnalysis` returns that the functions use.
struct HoltWinters {
    predictions: Vec<Option<f64>>,
    deviations: Vec<Option<f64>>,
}

/// graphite-web's `holtWintersAnalysis`: triple exponential smoothing (alpha = gamma = 0.1,
/// beta = 0.0035) with a season of `seasonality` (a time string) over the series' values.
/// Graphite-web fails when a season is shorter than two steps; so does this.
fn holt_winters_analysis(
    vals: &[Option<f64>],
    step: i64,
    seasonality: &str,
) -> Result<HoltWinters, EvalError> {
    let (alpha, gamma, beta) = (0.1f64, 0.1f64, 0.0035f64);
    let season_length = offset_seconds(seasonality)?.div_euclid(step.max(1));
    let n = vals.len();
    let mut intercepts: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut slopes: Vec<f64> = Vec::with_capacity(n);
    let mut seasonals: Vec<f64> = Vec::with_capacity(n);
    let mut predictions: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut deviations: Vec<Option<f64>> = Vec::with_capacity(n);
    let lookup = |v: &[f64], i: i64| -> Result<f64, EvalError> {
        let j = i - season_length;
        if j < 0 {
            return Ok(0.0);
        }
        v.get(j as usize).copied().ok_or_else(|| {
            bad(format!(
                "list index out of range (seasonality '{seasonality}' is shorter than two steps)"
            ))
        })
    };
    let mut next_pred: Option<f64> = None;
    for (i, actual) in vals.iter().enumerate() {
        let Some(actual) = *actual else {
            intercepts.push(None);
            slopes.push(0.0);
            seasonals.push(0.0);
            predictions.push(next_pred);
            deviations.push(Some(0.0));
            next_pred = None;
            continue;
        };
        let (last_intercept, last_slope, prediction) = if i == 0 {
            (actual, 0.0, Some(actual))
        } else {
            (
                intercepts.last().copied().flatten().unwrap_or(actual),
                slopes.last().copied().unwrap_or(0.0),
                next_pred,
            )
        };
        let i = i as i64;
        let last_seasonal = lookup(&seasonals, i)?;
        let next_last_seasonal = lookup(&seasonals, i + 1)?;
        let last_seasonal_dev = {
            let j = i - season_length;
            if j < 0 {
                0.0
            } else {
                deviations
                    .get(j as usize)
                    .copied()
                    .ok_or_else(|| {
                        bad("list index out of range (seasonality shorter than two steps)")
                    })?
                    .unwrap_or(0.0)
            }
        };
        let intercept =
            alpha * (actual - last_seasonal) + (1.0 - alpha) * (last_intercept + last_slope);
        let slope = beta * (intercept - last_intercept) + (1.0 - beta) * last_slope;
        let seasonal = gamma * (actual - intercept) + (1.0 - gamma) * last_seasonal;
        next_pred = Some(intercept + slope + next_last_seasonal);
        let deviation =
            gamma * (actual - prediction.unwrap_or(0.0)).abs() + (1.0 - gamma) * last_seasonal_dev;
        intercepts.push(Some(intercept));
        slopes.push(slope);
        seasonals.push(seasonal);
        predictions.push(prediction);
        deviations.push(Some(deviation));
    }
    Ok(HoltWinters {
        predictions,
        deviations,
    })
}

/// The bootstrap and seasonality arguments, and the series over the bootstrap-extended range.
struct HoltWintersInput {
    preview: i64,
    seasonality: String,
    series: Vec<Series>,
}

/// Reads the Holt-Winters arguments and evaluates the series over the bootstrap-extended
/// range; `evaluate_plain` also evaluates the argument as given first, as graphite-web's
/// evaluator does before calling the function (the caller did it already when false).
fn holt_winters_input(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
    evaluate_plain: bool,
) -> Result<HoltWintersInput, EvalError> {
    let bootstrap = args.string("bootstrapInterval")?;
    let seasonality = args.string("seasonality")?;
    let preview = offset_seconds(&bootstrap)?;
    if evaluate_plain {
        args.series_list("seriesList")?;
    }
    let start = shift_time(ctx.start, -preview)?;
    let series = reevaluate(ctx, args, start, ctx.end)?;
    Ok(HoltWintersInput {
        preview,
        seasonality,
        series,
    })
}

fn holt_winters_forecast(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let input = holt_winters_input(ctx, args, true)?;
    let mut out = Vec::with_capacity(input.series.len());
    for mut s in input.series {
        ctx.check_deadline()?;
        let hw = holt_winters_analysis(&iter_values(&s), s.step, &input.seasonality)?;
        for t in ["holtWintersForecast", "holtWintersDeviation"] {
            s.tags.insert(t.into(), "1".into());
        }
        let wp = input.preview.div_euclid(s.step);
        let values = hw.predictions[py_slice_range(hw.predictions.len(), Some(wp), None)].to_vec();
        let name = format!("holtWintersForecast({})", s.name);
        let mut f = Series::new(
            name,
            shift_time(s.start, input.preview)?,
            s.end,
            s.step,
            values,
            s.x_files_factor,
        );
        f.tags = s.tags;
        out.push(f);
    }
    Ok(out)
}

const HOLT_WINTERS_FORECAST: FunctionDef = FunctionDef {
    name: "holtWintersForecast",
    group: "Calculate",
    description: "\
        Performs a Holt-Winters forecast using the series as input data. Data from\n\
        `bootstrapInterval` (one week by default) previous to the series is used to bootstrap the \
        initial forecast.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("bootstrapInterval", T::Interval, ParamDefault::Str("7d")),
        Param::def("seasonality", T::Interval, ParamDefault::Str("1d")),
    ],
    aggregator: false,
    imp: holt_winters_forecast,
};

/// graphite-web's `holtWintersConfidenceBands` for every series: (lower, upper) pairs, each
/// carrying the tags graphite-web's shared tag object ends up with.
fn confidence_bands(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
    evaluate_plain: bool,
) -> Result<Vec<Series>, EvalError> {
    let delta = args.int("delta")? as f64;
    let input = holt_winters_input(ctx, args, evaluate_plain)?;
    let mut out = Vec::with_capacity(2 * input.series.len());
    for mut s in input.series {
        ctx.check_deadline()?;
        let hw = holt_winters_analysis(&iter_values(&s), s.step, &input.seasonality)?;
        let wp = input.preview.div_euclid(s.step);
        let forecast = &hw.predictions[py_slice_range(hw.predictions.len(), Some(wp), None)];
        let deviation = &hw.deviations[py_slice_range(hw.deviations.len(), Some(wp), None)];
        let mut upper = Vec::with_capacity(forecast.len());
        let mut lower = Vec::with_capacity(forecast.len());
        for (i, f) in forecast.iter().enumerate() {
            match (f, deviation.get(i).copied().flatten()) {
                (Some(f), Some(d)) => {
                    let scaled = delta * d;
                    upper.push(Some(f + scaled));
                    lower.push(Some(f - scaled));
                }
                _ => {
                    upper.push(None);
                    lower.push(None);
                }
            }
        }
        for t in [
            "holtWintersForecast",
            "holtWintersDeviation",
            "holtWintersConfidenceUpper",
            "holtWintersConfidenceLower",
        ] {
            s.tags.insert(t.into(), "1".into());
        }
        let start = shift_time(s.start, input.preview)?;
        let mut lo = Series::new(
            format!("holtWintersConfidenceLower({})", s.name),
            start,
            s.end,
            s.step,
            lower,
            s.x_files_factor,
        );
        let mut up = Series::new(
            format!("holtWintersConfidenceUpper({})", s.name),
            start,
            s.end,
            s.step,
            upper,
            s.x_files_factor,
        );
        for b in [&mut lo, &mut up] {
            b.tags = s.tags.clone();
            b.path_expression = s.path_expression.clone();
        }
        out.push(lo);
        out.push(up);
    }
    Ok(out)
}

fn holt_winters_confidence_bands(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    confidence_bands(ctx, args, true)
}

const HOLT_WINTERS_CONFIDENCE_BANDS: FunctionDef = FunctionDef {
    name: "holtWintersConfidenceBands",
    group: "Calculate",
    description: "\
        Performs a Holt-Winters forecast using the series as input data and plots\n\
        upper and lower bands with the predicted forecast deviations.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("delta", T::Integer, ParamDefault::Int(3)),
        Param::def("bootstrapInterval", T::Interval, ParamDefault::Str("7d")),
        Param::def("seasonality", T::Interval, ParamDefault::Str("1d")),
    ],
    aggregator: false,
    imp: holt_winters_confidence_bands,
};

fn holt_winters_aberration(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let bands = confidence_bands(ctx, args, false)?;
    let find = |name: String| {
        bands
            .iter()
            .rev()
            .find(|b| b.name == name)
            .ok_or_else(|| bad(format!("KeyError: '{name}' (holtWintersAberration)")))
    };
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let lower = find(format!("holtWintersConfidenceLower({})", s.name))?;
        let upper = find(format!("holtWintersConfidenceUpper({})", s.name))?;
        let vals = iter_values(&s);
        let mut aberration = Vec::with_capacity(vals.len());
        for (i, v) in vals.iter().enumerate() {
            let Some(v) = *v else {
                aberration.push(Some(0.0));
                continue;
            };
            let band = |b: &Series| {
                b.values
                    .get(i)
                    .copied()
                    .ok_or_else(|| bad("list index out of range (holtWintersAberration)"))
            };
            let up = band(upper)?;
            if let Some(u) = up.filter(|u| v > *u) {
                aberration.push(Some(v - u));
                continue;
            }
            let lo = band(lower)?;
            if let Some(l) = lo.filter(|l| v < *l) {
                aberration.push(Some(v - l));
                continue;
            }
            aberration.push(Some(0.0));
        }
        s.tags.insert("holtWintersAberration".into(), "1".into());
        let mut a = Series::new(
            format!("holtWintersAberration({})", s.name),
            s.start,
            s.end,
            s.step,
            aberration,
            s.x_files_factor,
        );
        a.tags = s.tags;
        out.push(a);
    }
    Ok(out)
}

const HOLT_WINTERS_ABERRATION: FunctionDef = FunctionDef {
    name: "holtWintersAberration",
    group: "Calculate",
    description: "\
        Performs a Holt-Winters forecast using the series as input data and plots the\n\
        positive or negative deviation of the series data from the forecast.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("delta", T::Integer, ParamDefault::Int(3)),
        Param::def("bootstrapInterval", T::Interval, ParamDefault::Str("7d")),
        Param::def("seasonality", T::Interval, ParamDefault::Str("1d")),
    ],
    aggregator: false,
    imp: holt_winters_aberration,
};

fn holt_winters_confidence_area(
    ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let mut bands = confidence_bands(ctx, args, true)?;
    if bands.len() != 2 {
        return Err(bad("areaBetween series argument must reference *exactly* 2 series (holtWintersConfidenceArea takes one series)"));
    }
    let name = format!("areaBetween({})", bands[1].path_expression)
        .replace("areaBetween", "holtWintersConfidenceArea");
    let mut tags = bands[1].tags.clone();
    tags.remove("areaBetween");
    tags.insert("holtWintersConfidenceArea".into(), "1".into());
    for (i, b) in bands.iter_mut().enumerate() {
        b.name = name.clone();
        b.path_expression = name.clone();
        b.tags = tags.clone();
        b.hints.stacked = Some(super::graph::DEFAULT_STACK.to_string());
        b.hints.area_between = true;
        b.hints.invisible = i == 0;
    }
    Ok(bands)
}

const HOLT_WINTERS_CONFIDENCE_AREA: FunctionDef = FunctionDef {
    name: "holtWintersConfidenceArea",
    group: "Calculate",
    description: "\
        Performs a Holt-Winters forecast using the series as input data and plots the\n\
        area between the upper and lower bands of the predicted forecast deviations.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("delta", T::Integer, ParamDefault::Int(3)),
        Param::def("bootstrapInterval", T::Interval, ParamDefault::Str("7d")),
        Param::def("seasonality", T::Interval, ParamDefault::Str("1d")),
    ],
    aggregator: false,
    imp: holt_winters_confidence_area,
};

/// graphite-web's `_linearRegressionAnalysis`: least-squares factor (per second) and offset,
/// `None` when the known values cannot define a line.
fn linear_regression_analysis(s: &Series) -> Option<(f64, f64)> {
    let vals = iter_values(s);
    let (mut n, mut sum_i, mut sum_ii) = (0i128, 0i128, 0i128);
    let (mut sum_v, mut sum_iv) = (0.0f64, 0.0f64);
    for (i, v) in vals.iter().enumerate() {
        if let Some(v) = v {
            let i = i as i128;
            n += 1;
            sum_i += i;
            sum_ii += i * i;
            sum_v += v;
            sum_iv += i as f64 * v;
        }
    }
    let denominator = (n * sum_ii - sum_i * sum_i) as f64;
    if denominator == 0.0 {
        return None;
    }
    let factor = (n as f64 * sum_iv - sum_i as f64 * sum_v) / denominator / s.step as f64;
    let offset =
        (sum_ii as f64 * sum_v - sum_iv * sum_i as f64) / denominator - factor * s.start as f64;
    Some((factor, offset))
}

fn linear_regression(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let start = date_param(ctx, args, "startSourceAt")?.unwrap_or(ctx.start);
    let end = date_param(ctx, args, "endSourceAt")?.unwrap_or(ctx.end);
    let sources = reevaluate(ctx, args, start, end)?;
    let mut out = Vec::new();
    for (source, mut s) in sources.iter().zip(list) {
        s.tags
            .insert("linearRegressions".into(), format!("{start}, {end}"));
        let name = format!("linearRegression({}, {}, {})", s.name, start, end);
        let Some((factor, offset)) = linear_regression_analysis(source) else {
            continue;
        };
        let values = (0..s.values.len())
            .map(|i| Some(offset + (s.start + i as i64 * s.step) as f64 * factor))
            .collect();
        let mut r = Series::new(name, s.start, s.end, s.step, values, s.x_files_factor);
        r.tags = s.tags;
        out.push(r);
    }
    Ok(out)
}

const LINEAR_REGRESSION: FunctionDef = FunctionDef {
    name: "linearRegression",
    group: "Calculate",
    description: "\
        Graphs the linear regression function by least squares method.\n\
        \n\
        Takes one metric or a wildcard seriesList, followed by a quoted string with the\n\
        time to start the line and another quoted string with the time to end the line.\n\
        The start and end times are inclusive (default range is from to until). See\n\
        ``from / until`` in the :doc:`Render API <render_api>` for examples of time formats. \
        Datapoints\n\
        in the range is used to regression.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=linearRegression(Server.instance01.threads.busy, '-1d')\
        \n  &target=linearRegression(Server.instance*.threads.busy, \"00:00 20140101\",\"11:59 \
        20140630\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("startSourceAt", T::Date),
        Param::opt("endSourceAt", T::Date),
    ],
    aggregator: false,
    imp: linear_regression,
};

fn aggregate_line(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let func = args.string("func")?;
    let keep_step = args.opt_bool("keepStep")?.unwrap_or(false);
    let agg = agg_func(&func)?;
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let vals = iter_values(&s);
        if func == "multiply" && vals.is_empty() {
            return Err(bad(
                "reduce() of empty iterable with no initial value (multiply of an empty series)",
            ));
        }
        let value = agg(&vals);
        let is_count = func == "count";
        let name = match value {
            Some(v) => format!("aggregateLine({}, {})", s.name, format_g(v)),
            None => format!("aggregateLine({}, None)", s.name),
        };
        if keep_step {
            let n = s.values.len();
            out.push(copy_series(&s, name, vec![value; n]));
        } else {
            let mut line = super::graph::constant_line_of(ctx, value, is_count);
            line.name = name.clone();
            line.path_expression = name;
            out.push(line);
        }
    }
    Ok(out)
}

const AGGREGATE_LINE: FunctionDef = FunctionDef {
    name: "aggregateLine",
    group: "Calculate",
    description: "\
        Takes a metric or wildcard seriesList and draws a horizontal line\n\
        based on the function applied to each series.\n\
        \n\
        If the optional keepStep parameter is set to True, the result will\n\
        have the same time period and step as the source series.\n\
        \n\
        Note: By default, the graphite renderer consolidates data points by\n\
        averaging data points over time. If you are using the 'min' or 'max'\n\
        function for aggregateLine, this can cause an unusual gap in the\n\
        line drawn by this function and the data itself. To fix this, you\n\
        should use the consolidateBy() function with the same function\n\
        argument you are using for aggregateLine. This will ensure that the\n\
        proper data points are retained and the graph should line up\n\
        correctly.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aggregateLine(server01.connections.total, 'avg')\
        \n  &target=aggregateLine(server*.connections.total, 'avg')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("func", T::AggFunc, ParamDefault::Str("average")).options(AGG_FUNCS),
        Param::def("keepStep", T::Boolean, ParamDefault::Bool(false)),
    ],
    aggregator: false,
    imp: aggregate_line,
};

fn identity(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let name = args.string("name")?;
    let step = 60;
    check_points(ctx, (ctx.end - ctx.start) / step)?;
    let values = (ctx.start..ctx.end)
        .step_by(step as usize)
        .map(|t| Some(t as f64))
        .collect();
    let mut s = Series::new(
        name.clone(),
        ctx.start,
        ctx.end,
        step,
        values,
        ctx.default_x_files_factor(),
    );
    s.path_expression = format!("identity(\"{name}\")");
    Ok(vec![s])
}

const IDENTITY: FunctionDef = FunctionDef {
    name: "identity",
    group: "Calculate",
    description: "\
        Identity function:\n\
        Returns datapoints where the value equals the timestamp of the datapoint.\n\
        Useful when you have another series where the value is a timestamp, and\n\
        you want to compare it to the time of the datapoint, to render an age\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=identity(\"The.time.series\")\n\
        \n\
        This would create a series named \"The.time.series\" that contains points where\n\
        x(t) == t.",
    params: &[Param::req("name", T::String)],
    aggregator: false,
    imp: identity,
};

/// The Calculate family.
pub const FUNCTIONS: &[FunctionDef] = &[
    MOVING_WINDOW,
    MOVING_AVERAGE,
    MOVING_MEDIAN,
    MOVING_SUM,
    MOVING_MIN,
    MOVING_MAX,
    EXPONENTIAL_MOVING_AVERAGE,
    N_PERCENTILE,
    STDEV,
    HOLT_WINTERS_FORECAST,
    HOLT_WINTERS_CONFIDENCE_BANDS,
    HOLT_WINTERS_CONFIDENCE_AREA,
    HOLT_WINTERS_ABERRATION,
    LINEAR_REGRESSION,
    AGGREGATE_LINE,
    IDENTITY,
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use super::*;

    #[test]
    fn percentiles_follow_nist() {
        // Expected values are graphite-web's _getPercentile on the same input.
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0, false).unwrap(), Some(3.0));
        assert_eq!(percentile(&v, 50.0, true).unwrap(), Some(2.5));
        assert_eq!(percentile(&v, 100.0, false).unwrap(), Some(4.0));
        assert_eq!(percentile(&[], 50.0, false).unwrap(), None);
        assert!(percentile(&v, 250.0, false).is_err());
    }

    #[test]
    fn windows_of_any_size_stay_bounded() {
        let t0 = 1_700_000_000 - 600;
        let pts: Vec<(&str, i64, f64)> = (0..60).map(|i| ("a", t0 + 10 * i, i as f64)).collect();
        let s = eval(&pts, "movingAverage(a, 3)", t0 + 300, t0 + 600).unwrap();
        assert_eq!(s[0].name, "movingAverage(a,3)");
        assert_eq!(
            s[0].values[0],
            Some(29.0),
            "bootstrapped from the three points before the range"
        );
        for target in [
            "movingAverage(a, 0)",
            "movingAverage(a, -4)",
            "movingAverage(a, 1000000000)",
            "movingSum(a, '1000000d')",
            "movingMax(a, '-3min')",
            "exponentialMovingAverage(a, 1000000000)",
            "stdev(a, 1000000000)",
            "nPercentile(a, 99.9)",
        ] {
            let r = eval(&pts, target, t0 + 300, t0 + 600);
            if let Ok(s) = r {
                assert!(s.iter().all(|s| s.len() <= 100), "{target}");
            }
        }
        assert!(matches!(
            eval(&pts, "movingAverage(a, 9223372036854775807)", t0, t0 + 600),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&pts, "exponentialMovingAverage(a, -1)", t0, t0 + 600),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&pts, "holtWintersForecast(a, '1h', '10s')", t0, t0 + 600),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&pts, "holtWintersConfidenceArea(nothing.*)", t0, t0 + 600),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&pts, "nPercentile(a, 0)", t0, t0 + 600),
            Err(EvalError::BadRequest(_))
        ));
    }
}
