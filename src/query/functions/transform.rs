//! Transform: functions that change each series' values (graphite-web's "Transform" group,
//! plus `powSeries`, which graphite-web files under "Combine").
//!
//! Each function follows graphite-web 1.1.8's `render/functions.py` line by line where the
//! result shows: the series name (`%g`, `%d`, `%s` of the arguments as Python prints them), the
//! tags it adds (always strings, as graphite-web's `Tags` stores them), whether it builds a new
//! series (`series.copy`, which resets `pathExpression` to the new name and drops graph
//! options) or renames in place, and Python's arithmetic (`round(x, 6)`, `math.pow`,
//! `math.exp` overflow). Where graphite-web raises (a `None` compared with `maxValue`,
//! `log` base 1, `exp` overflow), the request fails with `BadRequest` instead of a panic.
//! Functions that need data outside the request's range (`timeShift`, `timeStack`,
//! `smartSummarize`, `hitcount` with alignment) evaluate their first argument again over the
//! moved range, as graphite-web does. Nothing here fetches by itself or writes.
//!
//! Where carbonhound knowingly differs from graphite-web 1.1.8:
//! - Arguments on which graphite-web loops forever or builds unbounded lists (a zero or
//!   negative `summarize`/`smartSummarize`/`hitcount` interval, more buckets than the request's
//!   point budget, a `timeStack` of more shifts than `query.max_series_per_target`) are refused
//!   (400/413) instead.
//! - `timeSlice` reads its times relative to the request's `now` and time zone, and
//!   `timeShift(…, alignDST=true)` asks the request's time zone about DST; graphite-web uses
//!   the wall clock and the server's local time.
//! - On a series consolidated by `valuesPerPoint` (only `normalize` makes those), functions work
//!   on the consolidated values and the result is one value per point; graphite-web writes the
//!   consolidated results over the first raw values and keeps the rest.

use super::error::bad;
use super::time::date_param;
use chrono_tz::OffsetComponents;

use super::aggregate::{agg_func, xff_counts, AGG_FUNCS};
use super::callback::reevaluate;
use super::time::{shift_time, truncate_local};
use super::values::{copy_series, iter_values, rows, set_values};
use crate::python;
use crate::python::{format_d, format_g, repr_f64};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::parse_at_time;
use crate::query::series::Series;
use crate::query::signature::{
    Args, FunctionDef, LegacyOption, Param, ParamDefault, ParamType as T, PythonDefault,
};

/// Renames in place as graphite-web's `series.name = …; series.pathExpression = series.name`.
fn rename(s: &mut Series, name: String) {
    s.path_expression = name.clone();
    s.name = name;
}

/// Applies `f` to every iterated value, keeping nulls unless `f` decides otherwise.
fn map_values(
    s: &mut Series,
    mut f: impl FnMut(Option<f64>) -> Result<Option<f64>, EvalError>,
) -> Result<(), EvalError> {
    let vals = iter_values(s)
        .into_iter()
        .map(&mut f)
        .collect::<Result<Vec<_>, _>>()?;
    set_values(s, vals);
    Ok(())
}

/// The seconds of an interval string as graphite-web reads `delta.seconds + delta.days * 86400`.
fn offset_seconds(s: &str) -> Result<i64, EvalError> {
    super::time::py_time_offset(s)
}

fn scale(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let factor = args.float("factor")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("scale".into(), repr_f64(factor));
        rename(s, format!("scale({},{})", s.name, format_g(factor)));
        map_values(s, |v| Ok(v.map(|x| x * factor)))?;
    }
    Ok(list)
}

const SCALE: FunctionDef = FunctionDef {
    name: "scale",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant, and multiplies the \
        datapoint\n\
        by the constant provided at each point.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=scale(Server.instance01.threads.busy,10)\
        \n  &target=scale(Server.instance*.threads.busy,10)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("factor", T::Float),
    ],
    aggregator: false,
    imp: scale,
};

fn scale_to_seconds(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let seconds = args.float("seconds")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("scaleToSeconds".into(), repr_f64(seconds));
        rename(
            s,
            format!("scaleToSeconds({},{})", s.name, format_d(seconds)?),
        );
        let factor = seconds / s.step as f64;
        map_values(s, |v| Ok(v.map(|x| python::round(x * factor, 6))))?;
    }
    Ok(list)
}

const SCALE_TO_SECONDS: FunctionDef = FunctionDef {
    name: "scaleToSeconds",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList and returns \"value per seconds\" where\n\
        seconds is a last argument to this functions.\n\
        \n\
        Useful in conjunction with derivative or integral function if you want\n\
        to normalize its result to a known resolution for arbitrary retentions",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("seconds", T::Float),
    ],
    aggregator: false,
    imp: scale_to_seconds,
};

fn offset(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let factor = args.float("factor")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("offset".into(), repr_f64(factor));
        rename(s, format!("offset({},{})", s.name, format_g(factor)));
        map_values(s, |v| Ok(v.map(|x| x + factor)))?;
    }
    Ok(list)
}

const OFFSET: FunctionDef = FunctionDef {
    name: "offset",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant, and adds the constant \
        to\n\
        each datapoint.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=offset(Server.instance01.threads.busy,10)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("factor", T::Float),
    ],
    aggregator: false,
    imp: offset,
};

fn add(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let constant = args.float("constant")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("add".into(), repr_f64(constant));
        rename(s, format!("add({},{})", s.name, format_d(constant)?));
        map_values(s, |v| Ok(v.map(|x| x + constant)))?;
    }
    Ok(list)
}

const ADD: FunctionDef = FunctionDef {
    name: "add",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant, and adds the\n\
        constant to each datapoint. Also works for negative numbers.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=add(Server.instance01.threads.busy, 10)\
        \n  &target=add(Server.instance*.threads.busy, 10)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("constant", T::Float),
    ],
    aggregator: false,
    imp: add,
};

fn offset_to_zero(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        let vals = iter_values(s);
        let minimum = super::aggregate::safe_min(&vals);
        s.tags.insert(
            "offsetToZero".into(),
            minimum.map(repr_f64).unwrap_or_else(|| "None".into()),
        );
        rename(s, format!("offsetToZero({})", s.name));
        set_values(
            s,
            vals.into_iter()
                .map(|v| v.and_then(|x| minimum.map(|m| x - m)))
                .collect(),
        );
    }
    Ok(list)
}

const OFFSET_TO_ZERO: FunctionDef = FunctionDef {
    name: "offsetToZero",
    group: "Transform",
    description: "\
        Offsets a metric or wildcard seriesList by subtracting the minimum\n\
        value in the series from each datapoint.\n\
        \n\
        Useful to compare different series where the values in each series\n\
        may be higher or lower on average but you're only interested in the\n\
        relative difference.\n\
        \n\
        An example use case is for comparing different round trip time\n\
        results. When measuring RTT (like pinging a server), different\n\
        devices may come back with consistently different results due to\n\
        network latency which will be different depending on how many\n\
        network hops between the probe and the device. To compare different\n\
        devices in the same graph, the network latency to each has to be\n\
        factored out of the results. This is a shortcut that takes the\n\
        fastest response (lowest number in the series) and sets that to zero\n\
        and then offsets all of the other datapoints in that series by that\n\
        amount. This makes the assumption that the lowest response is the\n\
        fastest the device can respond, of course the more datapoints that\n\
        are in the series the more accurate this assumption is.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=offsetToZero(Server.instance01.responseTime)\
        \n  &target=offsetToZero(Server.instance*.responseTime)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: offset_to_zero,
};

/// The functions that rename to `name(series)`, tag `tag=1`, and map each value.
fn simple_map(
    args: &Args<'_>,
    func: &str,
    tag: (&str, &str),
    f: impl Fn(f64) -> Result<Option<f64>, EvalError>,
) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert(tag.0.into(), tag.1.into());
        rename(s, format!("{func}({})", s.name));
        map_values(s, |v| match v {
            Some(x) => f(x),
            None => Ok(None),
        })?;
    }
    Ok(list)
}

fn exp(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    simple_map(args, "exp", ("exp", "e"), |x| {
        Ok(Some(python::math_exp(x)?))
    })
}

const EXP: FunctionDef = FunctionDef {
    name: "exp",
    group: "Transform",
    description: "\
        Raise e to the power of the datapoint,\n\
        where e = 2.718281... is the base of natural logarithms.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n    &target=exp(Server.instance01.threads.busy)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: exp,
};

fn sigmoid(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    simple_map(args, "sigmoid", ("sigmoid", "sigmoid"), |x| {
        Ok(Some(1.0 / (1.0 + python::math_exp(-x)?)))
    })
}

const SIGMOID: FunctionDef = FunctionDef {
    name: "sigmoid",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList and applies the sigmoid\n\
        function `1 / (1 + exp(-x))` to each datapoint.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sigmoid(Server.instance01.threads.busy)\
        \n  &target=sigmoid(Server.instance*.threads.busy)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: sigmoid,
};

fn logit(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    simple_map(args, "logit", ("logit", "logit"), |x| {
        let d = 1.0 - x;
        if d == 0.0 {
            return Ok(None); // ZeroDivisionError
        }
        let r = x / d;
        Ok(if r.is_nan() {
            Some(r)
        } else if r <= 0.0 {
            None // math.log's ValueError
        } else {
            Some(r.ln())
        })
    })
}

const LOGIT: FunctionDef = FunctionDef {
    name: "logit",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList and applies the logit\n\
        function `log(x / (1 - x))` to each datapoint.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=logit(Server.instance01.threads.busy)\
        \n  &target=logit(Server.instance*.threads.busy)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: logit,
};

fn square_root(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    simple_map(args, "squareRoot", ("squareRoot", "1"), |x| {
        Ok(python::math_pow(x, 0.5))
    })
}

const SQUARE_ROOT: FunctionDef = FunctionDef {
    name: "squareRoot",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList, and computes the square root of each \
        datapoint.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=squareRoot(Server.instance01.threads.busy)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: square_root,
};

fn invert(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    simple_map(args, "invert", ("invert", "1"), |x| {
        Ok(python::math_pow(x, -1.0))
    })
}

const INVERT: FunctionDef = FunctionDef {
    name: "invert",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList, and inverts each datapoint (i.e. 1/x).\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=invert(Server.instance01.threads.busy)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: invert,
};

fn absolute(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    simple_map(args, "absolute", ("absolute", "1"), |x| Ok(Some(x.abs())))
}

const ABSOLUTE: FunctionDef = FunctionDef {
    name: "absolute",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList and applies the mathematical abs function to \
        each\n\
        datapoint transforming it to its absolute value.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=absolute(Server.instance01.threads.busy)\
        \n  &target=absolute(Server.instance*.threads.busy)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: absolute,
};

fn pow(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let factor = args.float("factor")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("pow".into(), repr_f64(factor));
        rename(s, format!("pow({},{})", s.name, format_g(factor)));
        map_values(s, |v| Ok(v.and_then(|x| python::math_pow(x, factor))))?;
    }
    Ok(list)
}

const POW: FunctionDef = FunctionDef {
    name: "pow",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList followed by a constant, and raises the \
        datapoint\n\
        by the power of the constant provided at each point.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=pow(Server.instance01.threads.busy,10)\
        \n  &target=pow(Server.instance*.threads.busy,10)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("factor", T::Float),
    ],
    aggregator: false,
    imp: pow,
};

fn round_fn(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let given = args.has("precision");
    let precision = if given { args.int("precision")? } else { 0 };
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("round".into(), precision.to_string());
        let name = if given {
            format!("round({},{})", s.name, precision)
        } else {
            format!("round({})", s.name)
        };
        rename(s, name);
        map_values(s, |v| Ok(v.map(|x| python::round(x, precision))))?;
    }
    Ok(list)
}

const ROUND: FunctionDef = FunctionDef {
    name: "round",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList optionally followed by a precision, and rounds \
        each\n\
        datapoint to the specified precision.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=round(Server.instance01.threads.busy)\
        \n  &target=round(Server.instance01.threads.busy,2)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        // graphite-web's Param says 0, its Python default is None (and names the series
        // `round(x)` rather than `round(x,0)`).
        Param::def("precision", T::Integer, ParamDefault::Int(0))
            .python_default(PythonDefault::None),
    ],
    aggregator: false,
    imp: round_fn,
};

fn logarithm(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let base = args.int("base")?;
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let mut vals = Vec::with_capacity(s.len());
        for v in iter_values(&s) {
            vals.push(match v {
                None => None,
                Some(x) if x <= 0.0 => None,
                Some(x) => {
                    // math.log(x, base) = log(x) / log(base); Python raises for base ≤ 0 or 1.
                    if base <= 0 {
                        return Err(bad("math domain error (log base must be positive)"));
                    }
                    let den = (base as f64).ln();
                    if den == 0.0 {
                        return Err(bad("float division by zero (log base 1)"));
                    }
                    Some(x.ln() / den)
                }
            });
        }
        s.tags.insert("log".into(), base.to_string());
        let name = format!("log({}, {})", s.name, base);
        out.push(copy_series(&s, name, vals));
    }
    Ok(out)
}

const LOG: FunctionDef = FunctionDef {
    name: "log",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList, a base, and draws the y-axis in logarithmic\n\
        format.  If base is omitted, the function defaults to base 10.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=log(carbon.agents.hostname.avgUpdateTime,2)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("base", T::Integer, ParamDefault::Int(10)),
    ],
    aggregator: false,
    imp: logarithm,
};

fn derivative(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let mut prev: Option<f64> = None;
        let vals = iter_values(&s)
            .into_iter()
            .map(|v| {
                let r = match (prev, v) {
                    (Some(p), Some(x)) => Some(x - p),
                    _ => None,
                };
                prev = v;
                r
            })
            .collect();
        s.tags.insert("derivative".into(), "1".into());
        let name = format!("derivative({})", s.name);
        out.push(copy_series(&s, name, vals));
    }
    Ok(out)
}

const DERIVATIVE: FunctionDef = FunctionDef {
    name: "derivative",
    group: "Transform",
    description: "\
        This is the opposite of the integral function.  This is useful for taking a\n\
        running total metric and calculating the delta between subsequent data points.\n\
        \n\
        This function does not normalize for periods of time, as a true derivative would.\n\
        Instead see the perSecond() function to calculate a rate of change over time.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=derivative(company.server.application01.ifconfig.TXPackets)\n\
        \n\
        Each time you run ifconfig, the RX and TXPackets are higher (assuming there\n\
        is network traffic.) By applying the derivative function, you can get an\n\
        idea of the packets per minute sent or received, even though you're only\n\
        recording the total.",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: derivative,
};

/// graphite-web's `_nonNegativeDelta(val, prev, maxValue, minValue)` → (delta, new prev).
/// Comparing a null with `maxValue`/`minValue` is a `TypeError` in graphite-web (Python 3), so
/// it is an error here too.
fn non_negative_delta(
    val: Option<f64>,
    prev: Option<f64>,
    max: Option<f64>,
    min: Option<f64>,
) -> Result<(Option<f64>, Option<f64>), EvalError> {
    let none_cmp = || {
        bad("'>' not supported between instances of 'NoneType' and 'float' (a null with maxValue/minValue)")
    };
    if let Some(m) = max {
        if val.ok_or_else(none_cmp)? > m {
            return Ok((None, None));
        }
    }
    if let Some(m) = min {
        if val.ok_or_else(none_cmp)? < m {
            return Ok((None, None));
        }
    }
    let (Some(p), Some(v)) = (prev, val) else {
        return Ok((None, val));
    };
    if v >= p {
        return Ok((Some(v - p), val));
    }
    if let Some(m) = max {
        return Ok((Some(m + 1.0 + v - p - min.unwrap_or(0.0)), val));
    }
    if let Some(m) = min {
        return Ok((Some(v - m), val));
    }
    Ok((None, val))
}

fn non_negative_derivative(
    _ctx: &EvalContext<'_>,
    args: &Args<'_>,
) -> Result<Vec<Series>, EvalError> {
    let (max, min) = (args.opt_float("maxValue")?, args.opt_float("minValue")?);
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let mut prev = None;
        let mut vals = Vec::with_capacity(s.len());
        for v in iter_values(&s) {
            let (d, p) = non_negative_delta(v, prev, max, min)?;
            prev = p;
            vals.push(d);
        }
        s.tags.insert("nonNegativeDerivative".into(), "1".into());
        let name = format!("nonNegativeDerivative({})", s.name);
        out.push(copy_series(&s, name, vals));
    }
    Ok(out)
}

const NON_NEGATIVE_DERIVATIVE: FunctionDef = FunctionDef {
    name: "nonNegativeDerivative",
    group: "Transform",
    description: "\
        Same as the derivative function above, but ignores datapoints that trend\n\
        down.  Useful for counters that increase for a long time, then wrap or\n\
        reset. (Such as if a network interface is destroyed and recreated by unloading\n\
        and re-loading a kernel module, common with USB / WiFi cards.\n\
        \n\
        By default, a null value is returned in place of negative datapoints. When\n\
        ``maxValue`` is supplied, the missing value is computed as if the counter\n\
        had wrapped at ``maxValue``. When ``minValue`` is supplied, the missing\n\
        value is computed as if the counter had wrapped to ``minValue``.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=nonNegativederivative(company.server.application01.ifconfig.TXPackets)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("maxValue", T::Float),
        Param::opt("minValue", T::Float),
    ],
    aggregator: false,
    imp: non_negative_derivative,
};

fn per_second(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let (max, min) = (args.opt_float("maxValue")?, args.opt_float("minValue")?);
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let step = s.step as f64;
        let mut prev = None;
        let mut vals = Vec::with_capacity(s.len());
        for v in iter_values(&s) {
            let (d, p) = non_negative_delta(v, prev, max, min)?;
            prev = p;
            vals.push(d.map(|d| python::round(d / step, 6)));
        }
        s.tags.insert("perSecond".into(), "1".into());
        let name = format!("perSecond({})", s.name);
        out.push(copy_series(&s, name, vals));
    }
    Ok(out)
}

const PER_SECOND: FunctionDef = FunctionDef {
    name: "perSecond",
    group: "Transform",
    description: "\
        NonNegativeDerivative adjusted for the series time interval\n\
        This is useful for taking a running total metric and showing how many requests\n\
        per second were handled.\n\
        \n\
        The optional ``minValue`` and ``maxValue`` parameters have the same\n\
        meaning as in ``nonNegativeDerivative``.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=perSecond(company.server.application01.ifconfig.TXPackets)\n\
        \n\
        Each time you run ifconfig, the RX and TXPackets are higher (assuming there\n\
        is network traffic.) By applying the perSecond function, you can get an\n\
        idea of the packets per second sent or received, even though you're only\n\
        recording the total.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("maxValue", T::Float),
        Param::opt("minValue", T::Float),
    ],
    aggregator: false,
    imp: per_second,
};

fn delay(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let steps = args.int("steps")?;
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        // graphite-web slices the raw list: series[-steps:] + [None]*… or [None]*… + series[:-steps].
        let raw = &s.values;
        let n = raw.len();
        let vals: Vec<Option<f64>> = if steps < 0 {
            let k = steps.unsigned_abs().min(n as u64) as usize;
            let r = python::slice_range(n, Some(steps.saturating_neg()), None);
            raw[r]
                .iter()
                .copied()
                .chain(std::iter::repeat_n(None, k))
                .collect()
        } else {
            let k = (steps as u64).min(n as u64) as usize;
            let r = python::slice_range(n, None, Some(steps.saturating_neg()));
            std::iter::repeat_n(None, k)
                .chain(raw[r].iter().copied())
                .collect()
        };
        s.tags.insert("delay".into(), steps.to_string());
        let name = format!("delay({},{})", s.name, steps);
        out.push(copy_series(&s, name, vals));
    }
    Ok(out)
}

const DELAY: FunctionDef = FunctionDef {
    name: "delay",
    group: "Transform",
    description: "\
        This shifts all samples later by an integer number of steps. This can be\n\
        used for custom derivative calculations, among other things. Note: this\n\
        will pad the early end of the data with None for every step shifted.\n\
        \n\
        This complements other time-displacement functions such as timeShift and\n\
        timeSlice, in that this function is indifferent about the step intervals\n\
        being shifted.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=divideSeries(server.FreeSpace,delay(server.FreeSpace,1))\n\
        \n\
        This computes the change in server free space as a percentage of the previous\n\
        free space.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("steps", T::Integer),
    ],
    aggregator: false,
    imp: delay,
};

fn integral(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let mut current = 0.0;
        let vals = iter_values(&s)
            .into_iter()
            .map(|v| {
                v.map(|x| {
                    current += x;
                    current
                })
            })
            .collect();
        s.tags.insert("integral".into(), "1".into());
        let name = format!("integral({})", s.name);
        out.push(copy_series(&s, name, vals));
    }
    Ok(out)
}

const INTEGRAL: FunctionDef = FunctionDef {
    name: "integral",
    group: "Transform",
    description: "\
        This will show the sum over time, sort of like a continuous addition function.\n\
        Useful for finding totals or trends in metrics that are collected per minute.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=integral(company.sales.perMinute)\n\
        \n\
        This would start at zero on the left side of the graph, adding the sales each\n\
        minute, and show the total sales for the time period selected at the right\n\
        side, (time now, or the time specified by '&until=').",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: integral,
};

fn integral_by_interval(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let unit = args.string("intervalUnit")?;
    let duration = offset_seconds(&unit)?.abs();
    if duration == 0 {
        return Err(bad(
            "integer division or modulo by zero (intervalUnit of zero length)",
        ));
    }
    let start_time = ctx.start;
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let mut t = s.start;
        let mut current = 0.0;
        let mut vals = Vec::with_capacity(s.len());
        for v in iter_values(&s) {
            if (t - start_time).div_euclid(duration)
                != (t - start_time - s.step).div_euclid(duration)
            {
                current = 0.0;
            }
            if let Some(x) = v {
                current += x;
            }
            vals.push(Some(current));
            t += s.step;
        }
        s.tags.insert("integralByInterval".into(), unit.clone());
        let name = format!("integralByInterval({},'{}')", s.name, unit);
        out.push(copy_series(&s, name, vals));
    }
    Ok(out)
}

const INTEGRAL_BY_INTERVAL: FunctionDef = FunctionDef {
    name: "integralByInterval",
    group: "Transform",
    description: "\
        This will do the same as integral() funcion, except resetting the total to 0\n\
        at the given time in the parameter \"from\"\n\
        Useful for finding totals per hour/day/week/..\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=integralByInterval(company.sales.perMinute, \"1d\")&from=midnight-10days\n\
        \n\
        This would start at zero on the left side of the graph, adding the sales each\n\
        minute, and show the evolution of sales per day during the last 10 days.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("intervalUnit", T::String),
    ],
    aggregator: false,
    imp: integral_by_interval,
};

fn keep_last_value(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let limit = args.opt_float("limit")?.unwrap_or(f64::INFINITY);
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        rename(s, format!("keepLastValue({})", s.name));
        let mut vals = iter_values(s);
        let mut nones = 0usize;
        let mut last: Option<f64> = None;
        for i in 0..vals.len() {
            match vals[i] {
                None => nones += 1,
                Some(v) => {
                    if nones > 0 && (nones as f64) <= limit {
                        if let Some(l) = last {
                            vals[i - nones..i].fill(Some(l));
                        }
                    }
                    nones = 0;
                    last = Some(v);
                }
            }
        }
        if nones > 0 && (nones as f64) <= limit {
            if let Some(l) = last {
                let n = vals.len();
                vals[n - nones..].fill(Some(l));
            }
        }
        set_values(s, vals);
    }
    Ok(list)
}

const KEEP_LAST_VALUE: FunctionDef = FunctionDef {
    name: "keepLastValue",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList, and optionally a limit to the number of 'None' \
        values to skip over.\n\
        Continues the line with the last received value when gaps ('None' values) appear in your \
        data, rather than breaking your line.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=keepLastValue(Server01.connections.handled)\
        \n  &target=keepLastValue(Server01.connections.handled, 10)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("limit", T::IntOrInf, ParamDefault::Float(f64::INFINITY)),
    ],
    aggregator: false,
    imp: keep_last_value,
};

fn interpolate(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let limit = args.opt_float("limit")?.unwrap_or(f64::INFINITY);
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        rename(s, format!("interpolate({})", s.name));
        let mut vals = iter_values(s);
        let mut nones = 0usize;
        for i in 1..vals.len() {
            match vals[i] {
                None => nones += 1,
                Some(_) if nones == 0 => {}
                Some(v) => {
                    let base = i - nones - 1;
                    match vals[base] {
                        None => nones = 0,
                        Some(a) => {
                            if (nones as f64) <= limit {
                                for (k, slot) in vals[i - nones..i].iter_mut().enumerate() {
                                    let steps = (i - nones + k - base) as f64;
                                    *slot = Some(a + steps * (v - a) / (nones + 1) as f64);
                                }
                            }
                            nones = 0;
                        }
                    }
                }
            }
        }
        set_values(s, vals);
    }
    Ok(list)
}

const INTERPOLATE: FunctionDef = FunctionDef {
    name: "interpolate",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList, and optionally a limit to the number of 'None' \
        values to skip over.\n\
        Continues the line with the last received value when gaps ('None' values) appear in your \
        data, rather than breaking your line.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=interpolate(Server01.connections.handled)\
        \n  &target=interpolate(Server01.connections.handled, 10)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("limit", T::IntOrInf, ParamDefault::Float(f64::INFINITY)),
    ],
    aggregator: false,
    imp: interpolate,
};

fn min_max(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        rename(s, format!("minMax({})", s.name));
        let vals = iter_values(s);
        let lo = super::aggregate::safe_min(&vals).unwrap_or(0.0);
        let hi = super::aggregate::safe_max(&vals).unwrap_or(0.0);
        let range = hi - lo;
        set_values(
            s,
            vals.into_iter()
                .map(|v| v.map(|x| if range == 0.0 { 0.0 } else { (x - lo) / range }))
                .collect(),
        );
    }
    Ok(list)
}

const MIN_MAX: FunctionDef = FunctionDef {
    name: "minMax",
    group: "Transform",
    description: "\
        Applies the popular min max normalization technique, which takes\n\
        each point and applies the following normalization transformation\n\
        to it: normalized = (point - min) / (max - min).\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=minMax(Server.instance01.threads.busy)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: min_max,
};

fn transform_null(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let given = args.has("default");
    let default = if given { args.float("default")? } else { 0.0 };
    let tag = if given {
        repr_f64(default)
    } else {
        "0".to_string()
    };
    let reference = args.series_list("referenceSeries")?;
    let defaults: Option<Vec<Option<f64>>> = if reference.is_empty() {
        None
    } else {
        let d: Vec<Option<f64>> = rows(&reference)
            .into_iter()
            .map(|row| row.iter().any(|v| v.is_some()).then_some(default))
            .collect();
        (!d.is_empty()).then_some(d)
    };
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("transformNull".into(), tag.clone());
        if !reference.is_empty() {
            s.tags.insert("referenceSeries".into(), "1".into());
            rename(
                s,
                format!(
                    "transformNull({},{},referenceSeries)",
                    s.name,
                    format_g(default)
                ),
            );
        } else {
            rename(
                s,
                format!("transformNull({},{})", s.name, format_g(default)),
            );
        }
        let vals = iter_values(s);
        let out: Vec<Option<f64>> = match &defaults {
            Some(d) => (0..vals.len().max(d.len()))
                .map(|i| {
                    vals.get(i)
                        .copied()
                        .flatten()
                        .or_else(|| d.get(i).copied().flatten())
                })
                .collect(),
            None => vals
                .into_iter()
                .map(|v| Some(v.unwrap_or(default)))
                .collect(),
        };
        set_values(s, out);
    }
    Ok(list)
}

const TRANSFORM_NULL: FunctionDef = FunctionDef {
    name: "transformNull",
    group: "Transform",
    description: "\
        Takes a metric or wildcard seriesList and replaces null values with the value\n\
        specified by `default`.  The value 0 used if not specified.  The optional\n\
        referenceSeries, if specified, is a metric or wildcard series list that governs\n\
        which time intervals nulls should be replaced.  If specified, nulls are replaced\n\
        only in intervals where a non-null is found for the same interval in any of\n\
        referenceSeries.  This method compliments the drawNullAsZero function in\n\
        graphical mode, but also works in text-only mode.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=transformNull(webapp.pages.*.views,-1)\n\
        \n\
        This would take any page that didn't have values and supply negative 1 as a default.\n\
        Any other numeric value may be used as well.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("default", T::Float, ParamDefault::Int(0)),
        Param::opt("referenceSeries", T::SeriesList),
    ],
    aggregator: false,
    imp: transform_null,
};

fn is_non_null(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("isNonNull".into(), "1".into());
        rename(s, format!("isNonNull({})", s.name));
        map_values(s, |v| Ok(Some(if v.is_some() { 1.0 } else { 0.0 })))?;
    }
    Ok(list)
}

const IS_NON_NULL: FunctionDef = FunctionDef {
    name: "isNonNull",
    group: "Transform",
    description: "\
        Takes a metric or wildcard seriesList and counts up the number of non-null\n\
        values.  This is useful for understanding the number of metrics that have data\n\
        at a given point in time (i.e. to count which servers are alive).\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=isNonNull(webapp.pages.*.views)\n\
        \n\
        Returns a seriesList where 1 is specified for non-null values, and\n\
        0 is specified for null values.",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: is_non_null,
};

/// The `timeShift`/`timeStack` unit with graphite-web's default sign: a leading digit means
/// back in time.
fn shift_unit(s: &str) -> Result<String, EvalError> {
    match s.chars().next() {
        None => Err(bad("string index out of range (empty time shift)")),
        Some(c) if c.is_ascii_digit() => Ok(format!("-{s}")),
        Some(_) => Ok(s.to_string()),
    }
}

/// Whether `t` is in daylight saving time in `tz` (Python's `localtime().tm_isdst`).
fn is_dst(t: i64, tz: &chrono_tz::Tz) -> bool {
    use chrono::TimeZone;
    tz.timestamp_opt(t, 0)
        .single()
        .is_some_and(|d| d.offset().dst_offset().num_seconds() != 0)
}

fn time_shift(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    if args.call().kwargs.iter().any(|(k, _)| k == "alignDst") {
        // graphite-web's parameter is listed as alignDst but the Python argument is alignDST.
        return Err(bad(
            "timeShift() got an unexpected keyword argument 'alignDst'",
        ));
    }
    let shift = shift_unit(&args.string("timeShift")?)?;
    let reset_end = args.opt_bool("resetEnd")?.unwrap_or(true);
    let align_dst = args.opt_bool("alignDst")?.unwrap_or(false);
    let delta = offset_seconds(&shift)?;
    let mut start = shift_time(ctx.start, delta)?;
    let mut end = shift_time(ctx.end, delta)?;
    if align_dst {
        let (rs, re) = (is_dst(ctx.start, &ctx.tz), is_dst(ctx.end, &ctx.tz));
        let (ms, me) = (is_dst(start, &ctx.tz), is_dst(end, &ctx.tz));
        let dst_offset = if rs && re && !ms && !me {
            3600
        } else if !rs && !re && ms && me {
            -3600
        } else {
            0
        };
        start = shift_time(start, dst_offset)?;
        end = shift_time(end, dst_offset)?;
    }
    let list = args.series_list("seriesList")?;
    let Some(first) = list.first() else {
        return Ok(Vec::new());
    };
    let (first_start, first_end) = (first.start, first.end);
    let mut out = reevaluate(ctx, args, start, end)?;
    for s in &mut out {
        s.tags.insert("timeShift".into(), shift.clone());
        s.name = format!("timeShift({}, \"{}\")", s.name, shift);
        s.end = if reset_end {
            first_end
        } else {
            s.end - s.start + first_start
        };
        s.start = first_start;
    }
    Ok(out)
}

const TIME_SHIFT: FunctionDef = FunctionDef {
    name: "timeShift",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList, followed by a quoted string with the\n\
        length of time (See ``from / until`` in the :doc:`Render API <render_api>` for examples of \
        time formats).\n\
        \n\
        Draws the selected metrics shifted in time. If no sign is given, a minus sign ( - ) is\n\
        implied which will shift the metric back in time. If a plus sign ( + ) is given, the\n\
        metric will be shifted forward in time.\n\
        \n\
        Will reset the end date range automatically to the end of the base stat unless\n\
        resetEnd is False. Example case is when you timeshift to last week and have the graph\n\
        date range set to include a time in the future, will limit this timeshift to pretend\n\
        ending at the current time. If resetEnd is False, will instead draw full range including\n\
        future time.\n\
        \n\
        Because time is shifted by a fixed number of seconds, comparing a time period with DST to\n\
        a time period without DST, and vice-versa, will result in an apparent misalignment. For\n\
        example, 8am might be overlaid with 7am. To compensate for this, use the alignDST option.\n\
        \n\
        Useful for comparing a metric against itself at a past periods or correcting data\n\
        stored at an offset.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=timeShift(Sales.widgets.largeBlue,\"7d\")\
        \n  &target=timeShift(Sales.widgets.largeBlue,\"-7d\")\
        \n  &target=timeShift(Sales.widgets.largeBlue,\"+1h\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("timeShift", T::Interval),
        Param::def("resetEnd", T::Boolean, ParamDefault::Bool(true)),
        // graphite-web's Param says `alignDst`, its Python argument `alignDST`.
        Param::def("alignDst", T::Boolean, ParamDefault::Bool(false)).python_name("alignDST"),
    ],
    aggregator: false,
    imp: time_shift,
};

fn time_stack(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let unit = shift_unit(&args.string("timeShiftUnit")?)?;
    let delta = offset_seconds(&unit)?;
    let from = args.int("timeShiftStart")?;
    let to = args.int("timeShiftEnd")?;
    let list = args.series_list("seriesList")?;
    let Some(first) = list.first() else {
        return Ok(Vec::new());
    };
    if to.saturating_sub(from) > ctx.limits.max_series_per_target as i64 {
        return Err(EvalError::TooLarge(format!(
            "timeStack over {} shifts exceeds query.max_series_per_target ({})",
            to.saturating_sub(from),
            ctx.limits.max_series_per_target
        )));
    }
    let (first_start, first_end) = (first.start, first.end);
    let mut out = Vec::new();
    let mut shift = from;
    while shift < to {
        ctx.check_deadline()?;
        let inner = delta
            .checked_mul(shift)
            .ok_or_else(|| bad("date value out of range"))?;
        let shifted = reevaluate(
            ctx,
            args,
            shift_time(ctx.start, inner)?,
            shift_time(ctx.end, inner)?,
        )?;
        for mut s in shifted {
            s.tags.insert("timeShiftUnit".into(), unit.clone());
            s.tags.insert("timeShift".into(), shift.to_string());
            let name = format!("timeShift({}, {}, {})", s.name, unit, shift);
            rename(&mut s, name);
            s.start = first_start;
            s.end = first_end;
            out.push(s);
        }
        shift += 1;
    }
    Ok(out)
}

const TIME_STACK: FunctionDef = FunctionDef {
    name: "timeStack",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard seriesList, followed by a quoted string with the\n\
        length of time (See ``from / until`` in the :doc:`Render API <render_api>` for examples of \
        time formats).\n\
        Also takes a start multiplier and end multiplier for the length of time\n\
        \n\
        create a seriesList which is composed the original metric series stacked with time shifts\n\
        starting time shifts from the start multiplier through the end multiplier\n\
        \n\
        Useful for looking at history, or feeding into averageSeries or stddevSeries.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=timeStack(Sales.widgets.largeBlue,\"1d\",0,7)    # create a series for today \
        and each of the previous 7 days",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("timeShiftUnit", T::Interval, ParamDefault::Str("1d")),
        Param::def("timeShiftStart", T::Integer, ParamDefault::Int(0)),
        Param::def("timeShiftEnd", T::Integer, ParamDefault::Int(7)),
    ],
    aggregator: false,
    imp: time_stack,
};

fn time_slice(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let start = date_param(ctx, args, "startSliceAt")?
        .ok_or_else(|| bad("Missing required parameter \"startSliceAt\""))?;
    let end = match date_param(ctx, args, "endSliceAt")? {
        Some(e) => e,
        None => parse_at_time("now", &ctx.tz, ctx.now).map_err(|e| bad(e.to_string()))?,
    };
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("timeSliceStart".into(), start.to_string());
        s.tags.insert("timeSliceEnd".into(), end.to_string());
        s.name = format!("timeSlice({}, {}, {})", s.name, start, end);
        let mut curr = ctx.start;
        let step = s.step;
        map_values(s, |v| {
            let r = if curr < start || curr > end { None } else { v };
            curr += step;
            Ok(r)
        })?;
    }
    Ok(list)
}

const TIME_SLICE: FunctionDef = FunctionDef {
    name: "timeSlice",
    group: "Transform",
    description: "\
        Takes one metric or a wildcard metric, followed by a quoted string with the\n\
        time to start the line and another quoted string with the time to end the line.\n\
        The start and end times are inclusive. See ``from / until`` in the :doc:`Render API \
        <render_api>`\n\
        for examples of time formats.\n\
        \n\
        Useful for filtering out a part of a series of data from a wider range of\n\
        data.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=timeSlice(network.core.port1,\"00:00 20140101\",\"11:59 20140630\")\
        \n  &target=timeSlice(network.core.port1,\"12:00 20140630\",\"now\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("startSliceAt", T::Date),
        Param::def("endSliceAt", T::Date, ParamDefault::Str("now")),
    ],
    aggregator: false,
    imp: time_slice,
};

/// Buckets needed for `[start, end)` at `interval`, refused past the request's point budget.
fn check_buckets(
    ctx: &EvalContext<'_>,
    start: i64,
    end: i64,
    interval: i64,
) -> Result<(), EvalError> {
    let buckets = (end as i128 - start as i128) / interval as i128;
    if buckets > ctx.limits.max_points as i128 {
        return Err(EvalError::TooLarge(format!(
            "{buckets} buckets of {interval} s exceed the request's point limit ({})",
            ctx.limits.max_points
        )));
    }
    Ok(())
}

/// graphite-web's `_summarizeValues`: buckets of `interval` seconds from `new_start` while below
/// `new_end`; each takes the values from the last timestamp at or before its start to before
/// its end, null unless the known ones reach the series' xFilesFactor. Returns the values and
/// the end of the last bucket.
#[allow(clippy::too_many_arguments)]
fn summarize_values(
    ctx: &EvalContext<'_>,
    s: &Series,
    func: &str,
    interval: i64,
    new_start: i64,
    new_end: i64,
) -> Result<(Vec<Option<f64>>, i64), EvalError> {
    let agg = agg_func(func)?;
    check_buckets(ctx, new_start, new_end, interval)?;
    let values = iter_values(s);
    let count = if s.end > s.start {
        (s.end - s.start + s.step - 1) / s.step
    } else {
        0
    };
    let num = (count.max(0) as usize).min(values.len());
    let interval_points = interval as f64 / s.step as f64;
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut t = new_start;
    while t < new_end {
        let mut first = i;
        let mut non_null = 0usize;
        while i < num {
            let ts = s.start + i as i64 * s.step;
            if ts >= t + interval {
                break;
            }
            if ts <= t {
                first = i;
            }
            if ts >= t && values[i].is_some() {
                non_null += 1;
            }
            i += 1;
        }
        out.push(if xff_counts(non_null, interval_points, s.x_files_factor) {
            agg(&values[first..i])
        } else {
            None
        });
        t += interval;
    }
    Ok((out, t))
}

fn positive_interval(s: &str) -> Result<i64, EvalError> {
    let interval = offset_seconds(s)?;
    if interval <= 0 {
        // graphite-web loops forever or divides by zero on these.
        return Err(bad(format!("interval '{s}' must be positive")));
    }
    Ok(interval)
}

fn summarize(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let interval_string = args.string("intervalString")?;
    let func = args.string("func")?;
    let align_to_from = args.opt_bool("alignToFrom")?.unwrap_or(false);
    let interval = positive_interval(&interval_string)?;
    let list = args.series_list("seriesList")?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let (new_start, mut new_end) = if align_to_from {
            (s.start, s.end)
        } else {
            (
                s.start - s.start.rem_euclid(interval),
                s.end - s.end.rem_euclid(interval) + interval,
            )
        };
        let (vals, aligned_end) = summarize_values(ctx, &s, &func, interval, new_start, new_end)?;
        if align_to_from {
            new_end = aligned_end;
        }
        s.tags.insert("summarize".into(), interval_string.clone());
        s.tags.insert("summarizeFunction".into(), func.clone());
        let name = format!(
            "summarize({}, \"{}\", \"{}\"{})",
            s.name,
            interval_string,
            func,
            if align_to_from { ", true" } else { "" }
        );
        let mut n = copy_series(&s, name, vals);
        n.start = new_start;
        n.end = new_end;
        n.step = interval;
        out.push(n);
    }
    Ok(out)
}

const SUMMARIZE: FunctionDef = FunctionDef {
    name: "summarize",
    group: "Transform",
    description: "\
        Summarize the data into interval buckets of a certain size.\n\
        \n\
        By default, the contents of each interval bucket are summed together. This is\n\
        useful for counters where each increment represents a discrete event and\n\
        retrieving a \"per X\" value requires summing all the events in that interval.\n\
        \n\
        Specifying 'average' instead will return the mean for each bucket, which can be more\n\
        useful when the value is a gauge that represents a certain value in time.\n\
        \n\
        This function can be used with aggregation functions ``average``, ``median``, ``sum``, \
        ``min``,\n\
        ``max``, ``diff``, ``stddev``, ``count``, ``range``, ``multiply`` & ``last``.\n\
        \n\
        By default, buckets are calculated by rounding to the nearest interval. This\n\
        works well for intervals smaller than a day. For example, 22:32 will end up\n\
        in the bucket 22:00-23:00 when the interval=1hour.\n\
        \n\
        Passing alignToFrom=true will instead create buckets starting at the from\n\
        time. In this case, the bucket for 22:32 depends on the from time. If\n\
        from=6:30 then the 1hour bucket for 22:32 is 22:30-23:30.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=summarize(counter.errors, \"1hour\") # total errors per hour\
        \n  &target=summarize(nonNegativeDerivative(gauge.num_users), \"1week\") # new users per \
        week\
        \n  &target=summarize(queue.size, \"1hour\", \"avg\") # average queue size per hour\
        \n  &target=summarize(queue.size, \"1hour\", \"max\") # maximum queue size during each hour\
        \n  &target=summarize(metric, \"13week\", \"avg\", true)&from=midnight+20100101 # 2010 \
        Q1-4",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("intervalString", T::Interval),
        Param::def("func", T::AggFunc, ParamDefault::Str("sum")).options(AGG_FUNCS),
        Param::def("alignToFrom", T::Boolean, ParamDefault::Bool(false)),
    ],
    aggregator: false,
    imp: summarize,
};

fn smart_summarize(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let interval_string = args.string("intervalString")?;
    let func = args.string("func")?;
    let interval = positive_interval(&interval_string)?;
    let list = match args.raw_value("alignTo")? {
        Some(Value::Str(unit)) => {
            let iso_weekday = match unit.chars().last() {
                Some(c) if !c.is_alphabetic() => c.to_digit(10).unwrap_or(1),
                _ => 1,
            };
            let canonical = match () {
                _ if unit.starts_with('s') => "seconds",
                _ if unit.starts_with("min") => "minutes",
                _ if unit.starts_with('h') => "hours",
                _ if unit.starts_with('d') => "days",
                _ if unit.starts_with('w') => "weeks",
                _ if unit.starts_with("mon") => "months",
                _ if unit.starts_with('y') => "years",
                _ => return Err(bad(format!("Invalid offset unit '{unit}'"))),
            };
            let start = truncate_local(ctx.start, &ctx.tz, canonical, iso_weekday)?;
            // graphite-web evaluates the argument as given first, then again over the aligned range.
            args.series_list("seriesList")?;
            reevaluate(ctx, args, start, ctx.end)?
        }
        _ => args.series_list("seriesList")?,
    };
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let (vals, aligned_end) = summarize_values(ctx, &s, &func, interval, s.start, s.end)?;
        s.tags
            .insert("smartSummarize".into(), interval_string.clone());
        s.tags.insert("smartSummarizeFunction".into(), func.clone());
        let name = format!(
            "smartSummarize({}, \"{}\", \"{}\")",
            s.name, interval_string, func
        );
        let mut n = copy_series(&s, name, vals);
        n.end = aligned_end;
        n.step = interval;
        out.push(n);
    }
    Ok(out)
}

const SMART_SUMMARIZE: FunctionDef = FunctionDef {
    name: "smartSummarize",
    group: "Transform",
    description: "\
        Smarter version of summarize.\n\
        \n\
        The alignToFrom boolean parameter has been replaced by alignTo and no longer has any \
        effect.\n\
        Alignment can be to years, months, weeks, days, hours, and minutes.\n\
        \n\
        This function can be used with aggregation functions ``average``, ``median``, ``sum``, \
        ``min``,\n\
        ``max``, ``diff``, ``stddev``, ``count``, ``range``, ``multiply`` & ``last``.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("intervalString", T::Interval),
        Param::def("func", T::AggFunc, ParamDefault::Str("sum")).options(AGG_FUNCS),
        Param::opt("alignTo", T::String)
            .options(&[
                "years", "months", "weeks", "days", "hours", "minutes", "seconds",
            ])
            .legacy_options(&[
                LegacyOption::None,
                LegacyOption::Bool(true),
                LegacyOption::Bool(false),
            ]),
    ],
    aggregator: false,
    imp: smart_summarize,
};

fn hitcount(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let interval_string = args.string("intervalString")?;
    let align = args.opt_bool("alignToInterval")?.unwrap_or(false);
    let interval = positive_interval(&interval_string)?;
    let mut list = args.series_list("seriesList")?;
    if align {
        let unit = if interval >= 86400 {
            Some("days")
        } else if interval >= 3600 {
            Some("hours")
        } else if interval >= 60 {
            Some("minutes")
        } else {
            None
        };
        let start = match unit {
            Some(u) => truncate_local(ctx.start, &ctx.tz, u, 1)?,
            None => ctx.start,
        };
        list = reevaluate(ctx, args, start, ctx.end)?;
        for s in &mut list {
            let count = (s.end - s.start).div_euclid(interval);
            s.end = s.start + count * interval + interval;
        }
    }
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let step = s.step;
        let bucket_count = ((s.end - s.start) as f64 / interval as f64).ceil();
        if bucket_count > ctx.limits.max_points as f64 {
            return Err(EvalError::TooLarge(format!(
                "hitcount would make {bucket_count} buckets"
            )));
        }
        let bucket_count = bucket_count.max(0.0) as i64;
        let mut buckets: Vec<Option<f64>> = vec![None; bucket_count as usize];
        let new_start = s.end - bucket_count * interval;
        let mut add = |b: i64, x: f64| -> Result<(), EvalError> {
            let idx = python::index_of(buckets.len(), b)
                .ok_or_else(|| bad("list index out of range (hitcount bucket)"))?;
            buckets[idx] = Some(buckets[idx].unwrap_or(0.0) + x);
            Ok(())
        };
        for (i, v) in iter_values(&s).into_iter().enumerate() {
            let Some(value) = v else { continue };
            let start_time = s.start + i as i64 * step;
            let (start_bucket, start_mod) = (
                (start_time - new_start).div_euclid(interval),
                (start_time - new_start).rem_euclid(interval),
            );
            let end_time = start_time + step;
            let (mut end_bucket, mut end_mod) = (
                (end_time - new_start).div_euclid(interval),
                (end_time - new_start).rem_euclid(interval),
            );
            if end_bucket >= bucket_count {
                end_bucket = bucket_count - 1;
                end_mod = interval;
            }
            if start_bucket == end_bucket {
                if start_bucket >= 0 {
                    add(start_bucket, value * (end_mod - start_mod) as f64)?;
                }
            } else {
                if start_bucket >= 0 {
                    add(start_bucket, value * (interval - start_mod) as f64)?;
                }
                let hits_per_bucket = value * interval as f64;
                for j in (start_bucket + 1)..end_bucket {
                    add(j, hits_per_bucket)?;
                }
                if end_mod > 0 {
                    add(end_bucket, value * end_mod as f64)?;
                }
            }
        }
        s.tags.insert("hitcount".into(), interval_string.clone());
        let name = format!(
            "hitcount({}, \"{}\"{})",
            s.name,
            interval_string,
            if align { ", true" } else { "" }
        );
        let mut n = copy_series(&s, name, buckets);
        n.start = new_start;
        n.step = interval;
        out.push(n);
    }
    Ok(out)
}

const HITCOUNT: FunctionDef = FunctionDef {
    name: "hitcount",
    group: "Transform",
    description: "\
        Estimate hit counts from a list of time series.\n\
        \n\
        This function assumes the values in each time series represent\n\
        hits per second.  It calculates hits per some larger interval\n\
        such as per day or per hour.  This function is like summarize(),\n\
        except that it compensates automatically for different time scales\n\
        (so that a similar graph results from using either fine-grained\n\
        or coarse-grained records) and handles rarely-occurring events\n\
        gracefully.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("intervalString", T::Interval),
        Param::def("alignToInterval", T::Boolean, ParamDefault::Bool(false)),
    ],
    aggregator: false,
    imp: hitcount,
};

/// The Transform family.
pub const FUNCTIONS: &[FunctionDef] = &[
    SCALE,
    SCALE_TO_SECONDS,
    OFFSET,
    OFFSET_TO_ZERO,
    DERIVATIVE,
    NON_NEGATIVE_DERIVATIVE,
    PER_SECOND,
    INTEGRAL,
    INTEGRAL_BY_INTERVAL,
    ABSOLUTE,
    LOG,
    POW,
    SQUARE_ROOT,
    INVERT,
    EXP,
    ADD,
    SIGMOID,
    LOGIT,
    ROUND,
    TIME_SHIFT,
    TIME_SLICE,
    TIME_STACK,
    DELAY,
    SUMMARIZE,
    SMART_SUMMARIZE,
    HITCOUNT,
    TRANSFORM_NULL,
    IS_NON_NULL,
    KEEP_LAST_VALUE,
    INTERPOLATE,
    MIN_MAX,
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use crate::query::eval::EvalError;

    #[test]
    fn scale_and_keep_last_value() {
        let t0 = 1_700_000_000 - 100;
        let pts = [("a", t0 + 10, 1.0), ("a", t0 + 40, 4.0)];
        let s = eval(&pts, "scale(a, 0.5)", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "scale(a,0.5)");
        assert_eq!(s[0].tags.get("scale").map(String::as_str), Some("0.5"));
        assert_eq!(
            s[0].values.iter().flatten().copied().collect::<Vec<_>>(),
            vec![0.5, 2.0]
        );
        let s = eval(&pts, "keepLastValue(a)", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "keepLastValue(a)");
        assert_eq!(
            s[0].values,
            vec![
                Some(1.0),
                Some(1.0),
                Some(1.0),
                Some(4.0),
                Some(4.0),
                Some(4.0)
            ]
        );
        let s = eval(&pts, "keepLastValue(a, 1)", t0, t0 + 60).unwrap();
        assert_eq!(
            s[0].values,
            vec![Some(1.0), None, None, Some(4.0), None, None],
            "gaps longer than the limit stay"
        );
        let s = eval(&pts, "interpolate(a)", t0, t0 + 60).unwrap();
        assert_eq!(
            s[0].values,
            vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0), None, None]
        );
    }

    #[test]
    fn time_slice_ends_now_by_default() {
        // graphite-web's Python `endSliceAt='now'` (the request's now here, where graphite-web
        // reads the wall clock).
        let t0 = 1_700_000_000 - 100;
        let pts = [("a", t0 + 10, 1.0), ("a", t0 + 90, 2.0)];
        let omitted = eval(&pts, "timeSlice(a, '-1min')", t0, t0 + 100).unwrap();
        let given = eval(&pts, "timeSlice(a, '-1min', 'now')", t0, t0 + 100).unwrap();
        assert_eq!(omitted[0].name, given[0].name);
        assert_eq!(omitted[0].values, given[0].values);
    }

    #[test]
    fn degenerate_intervals_and_steps_are_refused_not_looped() {
        let t0 = 1_700_000_000 - 100;
        let pts = [("a", t0 + 10, 1.0)];
        for target in [
            "summarize(a, '0min')",
            "summarize(a, '-1h')",
            "smartSummarize(a, '0s')",
            "hitcount(a, '0s')",
            "integralByInterval(a, '0h')",
            "timeShift(a, '')",
            "timeStack(a, '')",
        ] {
            assert!(
                matches!(
                    eval(&pts, target, t0, t0 + 60),
                    Err(EvalError::BadRequest(_))
                ),
                "{target}"
            );
        }
        let s = eval(&pts, "delay(a, 9223372036854775807)", t0, t0 + 60).unwrap();
        assert!(s[0].values.iter().all(Option::is_none));
        let s = eval(&pts, "delay(a, -9223372036854775807)", t0, t0 + 60).unwrap();
        assert!(s[0].values.iter().all(Option::is_none));
        assert!(
            eval(&pts, "timeStack(a, '10s', 0, 3)", t0, t0 + 60)
                .unwrap()
                .len()
                == 3
        );
    }
}
