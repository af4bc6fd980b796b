//! Graph: hints for the graph renderer carried on [`Series::hints`] (`color`, `dashed`,
//! `lineWidth`, `stacked`, `secondYAxis`, `drawAsInfinite`, `alpha`, `areaBetween`) and lines
//! drawn without stored data (`constantLine`, `threshold`, `verticalLine`) — graphite-web's
//! "Graph" group and its `constantLine`.
//!
//! Values pass through unchanged except for `stacked`, which adds each series onto the
//! running total of its stack as graphite-web's does (the totals live in the request, so
//! several `stacked()` targets of one request stack on each other). Names and tags follow
//! graphite-web 1.1.8. Nothing here fetches by itself or writes.
//!
//! Where carbonhound knowingly differs from graphite-web 1.1.8: `verticalLine` without a label
//! is named `None` (graphite-web's name is Python's `None`, `null` in JSON); its time is read
//! relative to the request's `now`. graphite-web has no hint that hides a series from the
//! legend, so neither does carbonhound.

use super::error::bad;
use super::naming::py_str_value;
use crate::python::{format_g, repr_f64};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::parse_at_time;
use crate::query::series::{GraphHints, Series};
use crate::query::signature::{
    Args, FunctionDef, Param, ParamDefault, ParamType as T, PythonDefault,
};

/// graphite-web's default stack name (`stacked(seriesList, stackName='__DEFAULT__')`), also
/// the stack of series graphite-web marks `stacked` without naming one (`areaBetween`).
pub const DEFAULT_STACK: &str = "__DEFAULT__";

/// graphite-web's `constantLine(value)`: three points spanning the request (step half the
/// range), named by Python's `str(value)`, with the request's xFilesFactor.
pub fn constant_line(ctx: &EvalContext<'_>, value: f64) -> Series {
    constant_line_of(ctx, Some(value), false)
}

/// [`constant_line`] for a value that may be `None` (named `None`, three nulls) or a Python
/// int (`is_int`: named without `.0`, as `aggregateLine(…, 'count')` makes it).
pub fn constant_line_of(ctx: &EvalContext<'_>, value: Option<f64>, is_int: bool) -> Series {
    let text = match value {
        None => "None".to_string(),
        Some(v) if is_int => py_str_value(&Value::Int(v as i64)),
        Some(v) => repr_f64(v),
    };
    let step = ((ctx.end - ctx.start) as f64 / 2.0) as i64;
    let mut s = Series::new(
        text.clone(),
        ctx.start,
        ctx.end,
        step,
        vec![value; 3],
        ctx.default_x_files_factor(),
    );
    s.path_expression = format!("constantLine({text})");
    s
}

fn constant_line_fn(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    Ok(vec![constant_line(ctx, args.float("value")?)])
}

const CONSTANT_LINE: FunctionDef = FunctionDef {
    name: "constantLine",
    group: "Special",
    description: "\
        Takes a float F.\n\
        \n\
        Draws a horizontal line at value F across the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=constantLine(123.456)",
    params: &[Param::req("value", T::Float)],
    aggregator: false,
    imp: constant_line_fn,
};

fn threshold(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut s = constant_line(ctx, args.float("value")?);
    if let Some(label) = args.opt_str("label")?.filter(|l| !l.is_empty()) {
        s.name = label;
    }
    if let Some(color) = args.opt_str("color")?.filter(|c| !c.is_empty()) {
        s.hints.color = Some(color);
    }
    Ok(vec![s])
}

const THRESHOLD: FunctionDef = FunctionDef {
    name: "threshold",
    group: "Graph",
    description: "\
        Takes a float F, followed by a label (in double quotes) and a color.\n\
        (See ``bgcolor`` in the :doc:`Render API <render_api>` for valid color names & formats.)\n\
        \n\
        Draws a horizontal line at value F across the graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=threshold(123.456, \"omgwtfbbq\", \"red\")",
    params: &[
        Param::req("value", T::Float),
        Param::opt("label", T::String),
        Param::opt("color", T::String),
    ],
    aggregator: false,
    imp: threshold,
};

fn vertical_line(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let ts = match args.raw_value("ts")? {
        Some(Value::Str(s)) => {
            parse_at_time(&s, &ctx.tz, ctx.now).map_err(|e| bad(format!("ts: {e}")))?
        }
        Some(other) => {
            return Err(bad(format!(
                "ts must be a quoted time, not {}",
                py_str_value(&other)
            )))
        }
        None => {
            return Err(bad(
                "Missing required parameter \"ts\" for function \"verticalLine\"",
            ))
        }
    };
    if ts < ctx.start {
        return Err(bad(format!(
            "verticalLine(): timestamp {ts} exists before start of range"
        )));
    }
    if ts > ctx.end {
        return Err(bad(format!(
            "verticalLine(): timestamp {ts} exists after end of range"
        )));
    }
    // graphite-web names it by the label, `None` when there is none.
    let label = args.opt_str("label")?.unwrap_or_else(|| "None".to_string());
    let mut s = Series::new(
        label,
        ts,
        ts,
        1,
        vec![Some(1.0), Some(1.0)],
        ctx.default_x_files_factor(),
    );
    s.hints.draw_as_infinite = true;
    if let Some(color) = args.opt_str("color")?.filter(|c| !c.is_empty()) {
        s.hints.color = Some(color);
    }
    Ok(vec![s])
}

const VERTICAL_LINE: FunctionDef = FunctionDef {
    name: "verticalLine",
    group: "Graph",
    description: "\
        Takes a timestamp string ts.\n\
        \n\
        Draws a vertical line at the designated timestamp with optional\n\
        'label' and 'color'. Supported timestamp formats include both\n\
        relative (e.g. -3h) and absolute (e.g. 16:00_20110501) strings,\n\
        such as those used with ``from`` and ``until`` parameters. When\n\
        set, the 'label' will appear in the graph legend.\n\
        \n\
        Note: Any timestamps defined outside the requested range will\n\
        raise a 'ValueError' exception.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=verticalLine(\"12:3420131108\",\"event\",\"blue\")\
        \n  &target=verticalLine(\"16:00_20110501\",\"event\")\
        \n  &target=verticalLine(\"-5mins\")",
    params: &[
        Param::req("ts", T::Date),
        Param::opt("label", T::String),
        Param::opt("color", T::String),
    ],
    aggregator: false,
    imp: vertical_line,
};

fn stacked(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    if args.call().kwargs.iter().any(|(k, _)| k == "stack") {
        // graphite-web lists the parameter as `stack`; its Python argument is `stackName`.
        return Err(bad("stacked() got an unexpected keyword argument 'stack'"));
    }
    let stack_name = args
        .opt_str("stack")?
        .unwrap_or_else(|| DEFAULT_STACK.to_string());
    let list = args.series_list("seriesList")?;
    let mut stacks = ctx.state.stacks.lock();
    let mut total = stacks.get(&stack_name).cloned().unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let raw = &s.values;
        let mut values = Vec::with_capacity(raw.len());
        for (i, v) in raw.iter().enumerate() {
            if total.len() <= i {
                total.push(0.0);
            }
            match v {
                Some(x) => {
                    total[i] += x;
                    values.push(Some(total[i]));
                }
                None => values.push(None),
            }
        }
        let name = if stack_name == DEFAULT_STACK {
            s.tags.insert("stacked".into(), stack_name.clone());
            format!("stacked({})", s.name)
        } else {
            s.name.clone()
        };
        let mut n = super::values::copy_series(&s, name, values);
        n.hints.stacked = Some(stack_name.clone());
        out.push(n);
    }
    stacks.insert(stack_name, total);
    Ok(out)
}

const STACKED: FunctionDef = FunctionDef {
    name: "stacked",
    group: "Graph",
    description: "\
        Takes one metric or a wildcard seriesList and change them so they are\n\
        stacked. This is a way of stacking just a couple of metrics without having\n\
        to use the stacked area mode (that stacks everything). By means of this a mixed\n\
        stacked and non stacked graph can be made\n\
        \n\
        It can also take an optional argument with a name of the stack, in case there is\n\
        more than one, e.g. for input and output metrics.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=stacked(company.server.application01.ifconfig.TXPackets, 'tx')",
    params: &[
        // graphite-web's Params say `seriesList` and `stack`; the Python arguments are
        // `seriesLists` and `stackName='__DEFAULT__'`.
        Param::req("seriesList", T::SeriesList).python_name("seriesLists"),
        Param::opt("stack", T::String)
            .python_name("stackName")
            .python_default(PythonDefault::Value(ParamDefault::Str(DEFAULT_STACK))),
    ],
    aggregator: false,
    imp: stacked,
};

fn area_between(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    if list.len() != 2 {
        return Err(bad(format!(
            "areaBetween series argument must reference *exactly* 2 series (got {})",
            list.len()
        )));
    }
    let name = format!("areaBetween({})", list[1].path_expression);
    list[1].tags.insert("areaBetween".into(), "1".into());
    let tags = list[1].tags.clone();
    for (i, s) in list.iter_mut().enumerate() {
        s.hints.stacked = Some(DEFAULT_STACK.to_string());
        s.hints.area_between = true;
        if i == 0 {
            s.hints.invisible = true;
        }
        s.tags = tags.clone();
        s.name = name.clone();
    }
    Ok(list)
}

const AREA_BETWEEN: FunctionDef = FunctionDef {
    name: "areaBetween",
    group: "Graph",
    description: "\
        Draws the vertical area in between the two series in seriesList. Useful for\n\
        visualizing a range such as the minimum and maximum latency for a service.\n\
        \n\
        areaBetween expects **exactly one argument** that results in exactly two series\n\
        (see example below). The order of the lower and higher values series does not\n\
        matter. The visualization only works when used in conjunction with\n\
        ``areaMode=stacked``.\n\
        \n\
        Most likely use case is to provide a band within which another metric should\n\
        move. In such case applying an ``alpha()``, as in the second example, gives\n\
        best visual results.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=areaBetween(service.latency.{min,max})&areaMode=stacked\n\
        \n  &target=alpha(areaBetween(service.latency.{min,max}),0.3)&areaMode=stacked\n\
        \n\
        If for instance, you need to build a seriesList, you should use the ``group``\n\
        function, like so:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=areaBetween(group(minSeries(a.*.min),maxSeries(a.*.max)))",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: area_between,
};

/// Sets one hint on every series, leaving names alone.
fn hint(args: &Args<'_>, set: impl Fn(&mut GraphHints)) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        set(&mut s.hints);
    }
    Ok(list)
}

fn alpha(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let a = args.float("alpha")?;
    hint(args, |h| h.alpha = Some(a))
}

const ALPHA: FunctionDef = FunctionDef {
    name: "alpha",
    group: "Graph",
    description: "\
        Assigns the given alpha transparency setting to the series. Takes a float value between 0 \
        and 1.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("alpha", T::Float),
    ],
    aggregator: false,
    imp: alpha,
};

fn color(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let c = args.string("theColor")?;
    hint(args, |h| h.color = Some(c.clone()))
}

const COLOR: FunctionDef = FunctionDef {
    name: "color",
    group: "Graph",
    description: "\
        Assigns the given color to the seriesList\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=color(collectd.hostname.cpu.0.user, 'green')\
        \n  &target=color(collectd.hostname.cpu.0.system, 'ff0000')\
        \n  &target=color(collectd.hostname.cpu.0.idle, 'gray')\
        \n  &target=color(collectd.hostname.cpu.0.idle, '6464ffaa')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("theColor", T::String),
    ],
    aggregator: false,
    imp: color,
};

fn line_width(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let w = args.float("width")?;
    hint(args, |h| h.line_width = Some(w))
}

const LINE_WIDTH: FunctionDef = FunctionDef {
    name: "lineWidth",
    group: "Graph",
    description: "\
        Takes one metric or a wildcard seriesList, followed by a float F.\n\
        \n\
        Draw the selected metrics with a line width of F, overriding the default\n\
        value of 1, or the &lineWidth=X.X parameter.\n\
        \n\
        Useful for highlighting a single metric out of many, or having multiple\n\
        line widths in one graph.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=lineWidth(server01.instance01.memory.free,5)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("width", T::Float),
    ],
    aggregator: false,
    imp: line_width,
};

fn second_y_axis(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.hints.second_y_axis = true;
        s.tags.insert("secondYAxis".into(), "1".into());
        s.name = format!("secondYAxis({})", s.name);
    }
    Ok(list)
}

const SECOND_Y_AXIS: FunctionDef = FunctionDef {
    name: "secondYAxis",
    group: "Graph",
    description: "\
        Graph the series on the secondary Y axis.",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: second_y_axis,
};

fn draw_as_infinite(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.hints.draw_as_infinite = true;
        s.tags.insert("drawAsInfinite".into(), "1".into());
        s.name = format!("drawAsInfinite({})", s.name);
    }
    Ok(list)
}

const DRAW_AS_INFINITE: FunctionDef = FunctionDef {
    name: "drawAsInfinite",
    group: "Graph",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        If the value is zero, draw the line at 0.  If the value is above zero, draw\n\
        the line at infinity. If the value is null or less than zero, do not draw\n\
        the line.\n\
        \n\
        Useful for displaying on/off metrics, such as exit codes. (0 = success,\n\
        anything else = failure.)\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  drawAsInfinite(Testing.script.exitCode)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: draw_as_infinite,
};

fn dashed(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let len = args.int("dashLength")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("dashed".into(), len.to_string());
        s.name = format!("dashed({}, {})", s.name, format_g(len as f64));
        s.hints.dashed = Some(len as f64);
    }
    Ok(list)
}

const DASHED: FunctionDef = FunctionDef {
    name: "dashed",
    group: "Graph",
    description: "\
        Takes one metric or a wildcard seriesList, followed by a float F.\n\
        \n\
        Draw the selected metrics with a dotted line with segments of length F\n\
        If omitted, the default length of the segments is 5.0\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=dashed(server01.instance01.memory.free,2.5)",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("dashLength", T::Integer, ParamDefault::Int(5)),
    ],
    aggregator: false,
    imp: dashed,
};

/// The Graph family (and `constantLine`, which graphite-web files under "Special").
pub const FUNCTIONS: &[FunctionDef] = &[
    STACKED,
    AREA_BETWEEN,
    ALPHA,
    COLOR,
    SECOND_Y_AXIS,
    DRAW_AS_INFINITE,
    LINE_WIDTH,
    DASHED,
    VERTICAL_LINE,
    THRESHOLD,
    CONSTANT_LINE,
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use crate::query::eval::EvalError;

    #[test]
    fn constant_lines_need_no_data() {
        let s = eval(&[], "constantLine(100)", 1000, 2000).unwrap();
        assert_eq!(s[0].name, "100.0");
        assert_eq!(
            s[0].datapoints(),
            vec![
                (Some(100.0), 1000),
                (Some(100.0), 1500),
                (Some(100.0), 2000)
            ]
        );
        let s = eval(&[], "threshold(4, 'max load', 'red')", 1000, 2000).unwrap();
        assert_eq!(s[0].name, "max load");
        assert_eq!(s[0].hints.color.as_deref(), Some("red"));
        let s = eval(&[], "verticalLine('1500', 'deploy')", 1000, 2000).unwrap();
        assert_eq!(
            (s[0].start, s[0].end, s[0].name.as_str()),
            (1500, 1500, "deploy")
        );
        assert!(s[0].hints.draw_as_infinite);
        assert!(matches!(
            eval(&[], "verticalLine('2500')", 1000, 2000),
            Err(EvalError::BadRequest(_))
        ));
    }

    #[test]
    fn hints_and_stacks() {
        let t0 = 1_700_000_000 - 100;
        let pts = [
            ("a.x", t0 + 10, 1.0),
            ("a.y", t0 + 10, 2.0),
            ("a.y", t0 + 20, 5.0),
        ];
        let s = eval(&pts, "stacked(a.*)", t0, t0 + 30).unwrap();
        assert_eq!(s[1].name, "stacked(a.y)");
        assert_eq!(s[1].values, vec![Some(3.0), Some(5.0), None]);
        assert!(s.iter().all(|s| s.hints.stacked.is_some()));
        let s = eval(&pts, "areaBetween(a.*)", t0, t0 + 30).unwrap();
        assert_eq!(s[0].name, "areaBetween(a.*)");
        assert!(s[0].hints.invisible && !s[1].hints.invisible && s[1].hints.area_between);
        let s = eval(
            &pts,
            "lineWidth(dashed(secondYAxis(alpha(a.x, 0.5))), 3)",
            t0,
            t0 + 30,
        )
        .unwrap();
        let h = &s[0].hints;
        assert_eq!(
            (h.alpha, h.dashed, h.line_width, h.second_y_axis),
            (Some(0.5), Some(5.0), Some(3.0), true)
        );
        assert_eq!(s[0].name, "dashed(secondYAxis(a.x), 5)");
        assert!(matches!(
            eval(&pts, "stacked(a.x, stack='s')", t0, t0 + 30),
            Err(EvalError::BadRequest(_))
        ));
    }
}
