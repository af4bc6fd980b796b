//! Alias and legend: functions that rename series (graphite-web's "Alias" group, and
//! `cactiStyle`/`substr`, which it files under "Special").
//!
//! Names follow graphite-web 1.1.8 character for character: `aliasByNode` picks nodes of the
//! first path expression of a function-call name, `aliasSub` is Python's `re.sub`, legends
//! use Python's `%` formatting and glyph's unit prefixes; the Python parts (patterns,
//! templates, formatting) are [`crate::python`]'s, including where they knowingly differ from
//! CPython (listed in [`crate::python::re`]). Nothing here fetches by itself (except
//! `aliasQuery`, which evaluates the targets it builds, as graphite-web does) or writes.

use super::error::bad;

use super::aggregate::{agg_func, safe_last, safe_max, safe_min};
use super::naming::{first_path_expression_checked, format_units, py_str_value};
use crate::python::Sub;
use crate::python::{format_f, ljust, percent_format, repr_f64};
use crate::python::{index_of, slice_range};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::series::Series;
use crate::query::signature::{Args, FunctionDef, Param, ParamDefault, ParamType as T};

fn alias(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let name = args.string("newName")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = name.clone();
    }
    Ok(list)
}

const ALIAS: FunctionDef = FunctionDef {
    name: "alias",
    group: "Alias",
    description: "\
        Takes one metric or a wildcard seriesList and a string in quotes.\n\
        Prints the string instead of the metric name in the legend.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=alias(Sales.widgets.largeBlue,\"Large Blue Widgets\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("newName", T::String),
    ],
    aggregator: false,
    imp: alias,
};

/// `re.sub(search, replace, …)` from the call's `search` and `replace` arguments; a bad
/// pattern or template is a 400 naming `function`.
fn sub_of(args: &Args<'_>, function: &str) -> Result<Sub, EvalError> {
    Sub::new(&args.string("search")?, &args.string("replace")?)
        .map_err(|e| bad(format!("{function}: {e}")))
}

fn alias_sub(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let sub = sub_of(args, "aliasSub")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = sub.replace_all(&s.name)?;
    }
    Ok(list)
}

const ALIAS_SUB: FunctionDef = FunctionDef {
    name: "aliasSub",
    group: "Alias",
    description: "\
        Runs series names through a regex search/replace.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasSub(ip.*TCP*,\"^.*TCP(\\d+)\",\"\\1\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("search", T::String),
        Param::req("replace", T::String),
    ],
    aggregator: false,
    imp: alias_sub,
};

fn alias_query(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let sub = sub_of(args, "aliasQuery")?;
    let new_name = args.string("newName")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        let query = sub.replace_all(&s.name)?;
        let expr =
            crate::query::parse::parse_target(&query, ctx.limits.max_depth).map_err(|e| {
                bad(format!(
                    "aliasQuery built '{query}', which does not parse: {e}"
                ))
            })?;
        let found = ctx.eval_target(&expr)?;
        let first = found
            .first()
            .ok_or_else(|| bad(format!("No series found with query: {query}")))?;
        let current = safe_last(&first.consolidated())
            .ok_or_else(|| bad(format!("Cannot get last value of series: {}", first.name)))?;
        s.name = percent_format(&new_name, current)?;
    }
    Ok(list)
}

const ALIAS_QUERY: FunctionDef = FunctionDef {
    name: "aliasQuery",
    group: "Alias",
    description: "\
        Performs a query to alias the metrics in seriesList.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasQuery(channel.power.*,\"channel\\.power\\.([0-9]+)\",\"\
        channel.frequency.\\1\", \"Channel %d MHz\")\n\
        \n\
        The series in seriesList will be aliased by first translating the series names using\n\
        the search & replace parameters, then using the last value of the resulting series\n\
        to construct the alias using sprintf-style syntax.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("search", T::String),
        Param::req("replace", T::String),
        Param::req("newName", T::String),
    ],
    aggregator: false,
    imp: alias_query,
};

/// One `nodeOrTag` argument: a node index or a tag name.
pub enum NodeOrTag {
    /// A node of the dotted name (negative counts from the end).
    Node(i64),
    /// A tag name.
    Tag(String),
}

fn nodes_of(args: &Args<'_>, param: &str) -> Result<Vec<NodeOrTag>, EvalError> {
    args.values(param)?
        .into_iter()
        .map(|v| match v {
            Value::Int(i) => Ok(NodeOrTag::Node(i)),
            // graphite-web indexes a list with it: a float fails there.
            Value::Float(f) if f.fract() == 0.0 => Err(bad(format!(
                "list indices must be integers, not float ({})",
                repr_f64(f)
            ))),
            other => Ok(NodeOrTag::Tag(py_str_value(&other))),
        })
        .collect()
}

/// graphite-web's `aggKey(series, nodes)`: the chosen nodes of the series' name (of the first
/// path expression when the name is a function call, tags stripped) or its tag values, joined
/// by dots; a missing node or tag gives an empty part.
pub fn agg_key(s: &Series, nodes: &[NodeOrTag]) -> Result<String, EvalError> {
    let path = if s.name.ends_with(')') {
        first_path_expression_checked(&s.name)?
    } else {
        None
    };
    let source = path.as_deref().unwrap_or(&s.name);
    let base = source.split(';').next().unwrap_or("");
    let parts: Vec<&str> = base.split('.').collect();
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        out.push(match n {
            NodeOrTag::Node(i) => match index_of(parts.len(), *i) {
                Some(j) => parts[j].to_string(),
                None => s.tags.get(&i.to_string()).cloned().unwrap_or_default(),
            },
            NodeOrTag::Tag(t) => s.tags.get(t).cloned().unwrap_or_default(),
        });
    }
    Ok(out.join("."))
}

fn alias_by_node(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let nodes = nodes_of(args, "nodes")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = agg_key(s, &nodes)?;
    }
    Ok(list)
}

const ALIAS_BY_NODE: FunctionDef = FunctionDef {
    name: "aliasByNode",
    group: "Alias",
    description: "\
        Takes a seriesList and applies an alias derived from one or more \"node\"\n\
        portion/s of the target name or tags. Node indices are 0 indexed.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasByNode(ganglia.*.cpu.load5,1)\n\
        \n\
        Each node may be an integer referencing a node in the series name or a string identifying \
        a tag.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=seriesByTag(\"name=~cpu.load.*\", \"server=~server[1-9]+\", \
        \"datacenter=dc1\")|aliasByNode(\"datacenter\", \"server\", 1)\n\
        \n  # will produce output series like\
        \n  # dc1.server1.load5, dc1.server2.load5, dc1.server1.load10, dc1.server2.load10",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("nodes", T::NodeOrTag).many(),
    ],
    aggregator: false,
    imp: alias_by_node,
};

fn alias_by_tags(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let nodes = nodes_of(args, "tags")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = agg_key(s, &nodes)?;
    }
    Ok(list)
}

const ALIAS_BY_TAGS: FunctionDef = FunctionDef {
    name: "aliasByTags",
    group: "Alias",
    description: "\
        Takes a seriesList and applies an alias derived from one or more tags and/or nodes\n\
        \n\
        .. code-block:: none\n\
        \n  &target=seriesByTag(\"name=cpu\")|aliasByTags(\"server\",\"name\")\n\
        \n\
        This is an alias for :py:func:`aliasByNode <aliasByNode>`.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("tags", T::NodeOrTag).many(),
    ],
    aggregator: false,
    imp: alias_by_tags,
};

/// graphite-web's `substr(series, start, stop)` naming: the dot-separated nodes `start:stop`
/// (Python slice; `stop` 0 means to the end) of the innermost argument text, cut at its first
/// comma.
fn substr_name(name: &str, start: i64, stop: i64) -> String {
    let left = name.rfind('(').map_or(0, |i| i + 1);
    let right = name.find(')').unwrap_or(name.len());
    let clean = if right > left { &name[left..right] } else { "" };
    let parts: Vec<&str> = clean.split('.').collect();
    let range = slice_range(
        parts.len(),
        Some(start),
        if stop == 0 { None } else { Some(stop) },
    );
    let joined = parts[range].join(".");
    match joined.find(',') {
        Some(i) => joined[..i].to_string(),
        None => joined,
    }
}

fn substr(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let start = args.int("start")?;
    let stop = args.int("stop")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = substr_name(&s.name, start, stop);
    }
    Ok(list)
}

const SUBSTR: FunctionDef = FunctionDef {
    name: "substr",
    group: "Special",
    description: "\
        Takes one metric or a wildcard seriesList followed by 1 or 2 integers.  Assume that the\n\
        metric name is a list or array, with each element separated by dots.  Prints\n\
        n - length elements of the array (if only one integer n is passed) or n - m\n\
        elements of the array (if two integers n and m are passed).  The list starts\n\
        with element 0 and ends with element (length - 1).\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=substr(carbon.agents.hostname.avgUpdateTime,2,4)\n\
        \n\
        The label would be printed as \"hostname.avgUpdateTime\".",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("start", T::Node, ParamDefault::Int(0)),
        Param::def("stop", T::Node, ParamDefault::Int(0)),
    ],
    aggregator: false,
    imp: substr,
};

fn alias_by_metric(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = substr_name(&s.name, -1, 0);
    }
    Ok(list)
}

const ALIAS_BY_METRIC: FunctionDef = FunctionDef {
    name: "aliasByMetric",
    group: "Alias",
    description: "\
        Takes a seriesList and applies an alias derived from the base metric name.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasByMetric(carbon.agents.graphite.creates)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: alias_by_metric,
};

/// Python's `str()` of an aggregation result: `None`, an int for `count`, else a float repr.
fn agg_str(v: Option<f64>, is_int: bool) -> String {
    match v {
        None => "None".into(),
        Some(x) if is_int => format!("{}", x as i64),
        Some(x) => repr_f64(x),
    }
}

fn legend_value(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut types: Vec<String> = args
        .values("valuesTypes")?
        .iter()
        .map(py_str_value)
        .collect();
    let Some(last) = types.last() else {
        return Err(bad(
            "tuple index out of range (legendValue needs a value type)",
        ));
    };
    let system = if last == "si" || last == "binary" {
        types.pop()
    } else {
        None
    };
    let mut list = args.series_list("seriesList")?;
    for value_type in &types {
        let func = agg_func(value_type).ok();
        for s in &mut list {
            let vals = s.consolidated().into_owned();
            if func.is_some() && value_type == "multiply" && vals.is_empty() {
                return Err(bad("reduce() of empty iterable with no initial value (multiply of an empty series)"));
            }
            // An unknown (deprecated `…Series`) name shows as `(?)`, as graphite-web's.
            let value: Result<Option<f64>, ()> = func.map(|f| f(&vals)).ok_or(());
            let is_int = value_type == "count";
            match &system {
                None => {
                    let text = match value {
                        Ok(v) => agg_str(v, is_int),
                        Err(()) => "(?)".into(),
                    };
                    s.name = format!("{} ({}: {})", s.name, value_type, text);
                }
                Some(sys) => {
                    let formatted = match value {
                        Err(()) => "(?)".to_string(),
                        Ok(None) => "None".to_string(),
                        Ok(Some(v)) => {
                            let (v2, prefix) = format_units(v, sys, None);
                            format!("{}{}", format_f(v2, 2), prefix)
                        }
                    };
                    s.name = format!(
                        "{}{}{}",
                        ljust(&s.name, 20),
                        ljust(value_type, 5),
                        ljust(&formatted, 10)
                    );
                }
            }
        }
    }
    Ok(list)
}

const LEGEND_VALUE: FunctionDef = FunctionDef {
    name: "legendValue",
    group: "Alias",
    description: "\
        Takes one metric or a wildcard seriesList and a string in quotes.\n\
        Appends a value to the metric name in the legend.  Currently one or several of: `last`, \
        `avg`,\n\
        `total`, `min`, `max`.\n\
        The last argument can be `si` (default) or `binary`, in that case values will be formatted \
        in the\n\
        corresponding system.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=legendValue(Sales.widgets.largeBlue, 'avg', 'max', 'si')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        // graphite-web's Param says `valuesTypes`, its Python argument `*valueTypes`.
        Param::opt("valuesTypes", T::String)
            .many()
            .python_name("valueTypes")
            .options(&[
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
                "averageSeries",
                "avg_zeroSeries",
                "medianSeries",
                "sumSeries",
                "minSeries",
                "maxSeries",
                "diffSeries",
                "stddevSeries",
                "countSeries",
                "rangeSeries",
                "multiplySeries",
                "lastSeries",
                "rangeOfSeries",
                "avgSeries",
                "totalSeries",
                "currentSeries",
                "si",
                "binary",
            ]),
    ],
    aggregator: false,
    imp: legend_value,
};

fn cacti_style(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let system = args.opt_str("system")?.filter(|s| !s.is_empty());
    let units = args.opt_str("units")?.filter(|s| !s.is_empty());
    let mut list = args.series_list("seriesList")?;
    if list.is_empty() {
        return Ok(list);
    }
    let fmt = |x: f64| -> String {
        match (&system, &units) {
            (Some(sys), Some(u)) => {
                let (v, p) = format_units(x, sys, Some(u));
                format!("{} {}", format_f(v, 2), p)
            }
            (Some(sys), None) => {
                let (v, p) = format_units(x, sys, None);
                format!("{}{}", format_f(v, 2), p)
            }
            (None, Some(u)) => format!("{} {}", format_f(x, 2), u),
            (None, None) => format_f(x, 2),
        }
    };
    // Column widths from int(value or 3), as graphite-web measures them (int() of inf or nan
    // fails there).
    let width_of = |v: Option<f64>| -> Result<usize, EvalError> {
        let x = match v {
            Some(x) if !x.is_finite() => {
                return Err(bad(format!(
                    "cannot convert float {} to integer",
                    repr_f64(x)
                )))
            }
            Some(x) if x != 0.0 => x.trunc(),
            _ => 3.0,
        };
        Ok(fmt(x).chars().count())
    };
    // (last, max, min) of each series.
    type Stats = (Option<f64>, Option<f64>, Option<f64>);
    let stats: Vec<Stats> = list
        .iter()
        .map(|s| {
            let v = s.consolidated();
            (safe_last(&v), safe_max(&v), safe_min(&v))
        })
        .collect();
    let widest = |pick: fn(&Stats) -> Option<f64>| -> Result<usize, EvalError> {
        let mut w = 0;
        for t in &stats {
            w = w.max(width_of(pick(t))?);
        }
        Ok(w + 3)
    };
    let name_len = list
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let last_len = widest(|t| t.0)?;
    let max_len = widest(|t| t.1)?;
    let min_len = widest(|t| t.2)?;
    let show = |v: Option<f64>| v.map(&fmt).unwrap_or_else(|| "nan".into());
    for (s, (last, max, min)) in list.iter_mut().zip(stats) {
        s.name = format!(
            "{} Current:{} Max:{} Min:{} ",
            ljust(&s.name, name_len),
            ljust(&show(last), last_len),
            ljust(&show(max), max_len),
            ljust(&show(min), min_len)
        );
    }
    Ok(list)
}

const CACTI_STYLE: FunctionDef = FunctionDef {
    name: "cactiStyle",
    group: "Special",
    description: "\
        Takes a series list and modifies the aliases to provide column aligned\n\
        output with Current, Max, and Min values in the style of cacti. Optionally\n\
        takes a \"system\" value to apply unit formatting in the same style as the\n\
        Y-axis, or a \"unit\" string to append an arbitrary unit suffix.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=cactiStyle(ganglia.*.net.bytes_out,\"si\")\
        \n  &target=cactiStyle(ganglia.*.net.bytes_out,\"si\",\"b\")\n\
        \n\
        A possible value for ``system`` is ``si``, which would express your values in\n\
        multiples of a thousand. A second option is to use ``binary`` which will\n\
        instead express your values in multiples of 1024 (useful for network devices).\n\
        \n\
        Column alignment of the Current, Max, Min values works under two conditions:\n\
        you use a monospace font such as terminus and use a single cactiStyle call, as\n\
        separate cactiStyle calls are not aware of each other. In case you have\n\
        different targets for which you would like to have cactiStyle to line up, you\n\
        can use ``group()`` to combine them before applying cactiStyle, such as:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=cactiStyle(group(metricA,metricB))",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("system", T::String).options(&["si", "binary"]),
        Param::opt("units", T::String),
    ],
    aggregator: false,
    imp: cacti_style,
};

/// The Alias family (and `cactiStyle`/`substr`, which graphite-web files under "Special").
pub const FUNCTIONS: &[FunctionDef] = &[
    ALIAS,
    ALIAS_BY_NODE,
    ALIAS_BY_METRIC,
    ALIAS_SUB,
    ALIAS_QUERY,
    ALIAS_BY_TAGS,
    LEGEND_VALUE,
    CACTI_STYLE,
    SUBSTR,
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use super::*;

    #[test]
    fn grafana_alias_sub_wrapping_and_renames() {
        let t0 = 1_700_000_000 - 100;
        let pts = [("a.b.c", t0 + 10, 1.0), ("a.b.d", t0 + 10, 2.0)];
        let s = eval(&pts, r#"aliasSub(a.b.c, "(^.*$)", "\1 A")"#, t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "a.b.c A");
        let s = eval(&pts, "alias(a.*.*, 'load')", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "load");
        let s = eval(&pts, "aliasByNode(a.b.*, 2, 0)", t0, t0 + 60).unwrap();
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["c.a", "d.a"]
        );
        let s = eval(&pts, "aliasByMetric(keepLastValue(a.b.c))", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "c");
        // Look-ahead and backreferences run as in Python (issue #11): CPython 3.11's
        // re.sub('(?=c)', 'x', 'a.b.c') and re.sub(r'(?<=\.)(\w)\.(?!\1)', r'\1_', 'a.b.c').
        let s = eval(&pts, "aliasSub(a.b.c, '(?=c)', 'x')", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "a.b.xc");
        let s = eval(
            &pts,
            r"aliasSub(a.b.c, '(?<=\.)(\w)\.(?!\1)', '\1_')",
            t0,
            t0 + 60,
        )
        .unwrap();
        assert_eq!(s[0].name, "a.b_c");
        assert!(matches!(
            eval(&pts, "aliasSub(a.b.c, '(?<=a+)b', 'x')", t0, t0 + 60),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&pts, "legendValue(a.b.c)", t0, t0 + 60),
            Err(EvalError::BadRequest(_))
        ));
        assert!(eval(&[], "cactiStyle(nothing.*)", t0, t0 + 60)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn substr_slices_like_python() {
        assert_eq!(substr_name("a.b.c.d", 1, 3), "b.c");
        assert_eq!(substr_name("scale(a.b.c,2)", -1, 0), "c");
        assert_eq!(substr_name("x)(", 0, 0), "");
        assert_eq!(substr_name("a.b", 9, -9), "");
    }
}
