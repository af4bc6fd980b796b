//! Shared pieces of graphite-web's functions.py: the null-safe aggregations (`safe.py`,
//! `aggfuncs.py`), `normalize` for combining series of different steps,
//! `formatPathExpressions`, `TimeSeries.copy`, glyph's `format_units`, and the adapters from
//! [`crate::python`] (the one home of Python's semantics) to evaluation errors.

use crate::python::format::repr_f64;
use crate::python::PyError;
use crate::query::ast::{Call, Expr};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::series::{GraphHints, Series};

/// An HTTP-400 evaluation error with `msg`.
pub fn bad(msg: impl Into<String>) -> EvalError {
    EvalError::BadRequest(msg.into())
}

/// A `date` parameter as graphite-web's `parseATTime` reads it, relative to the request's
/// `now` and time zone; graphite-web fails on anything but a string (`int` has no
/// `.strip()`), and so does this.
pub fn date_param(
    ctx: &EvalContext<'_>,
    args: &crate::query::registry::Args<'_>,
    name: &str,
) -> Result<Option<i64>, EvalError> {
    match args.raw_value(name)? {
        None | Some(Value::None) => Ok(None),
        Some(Value::Str(s)) => crate::query::attime::parse_at_time(&s, &ctx.tz, ctx.now)
            .map(Some)
            .map_err(|e| bad(format!("{name}: {e}"))),
        Some(other) => Err(bad(format!(
            "{name} must be a quoted time ('{}' has no .strip(), as graphite-web fails)",
            py_str_value(&other)
        ))),
    }
}

/// An aggregation over a row of values, nulls allowed (graphite-web's `aggFuncs`).
pub type AggFn = fn(&[Option<f64>]) -> Option<f64>;

fn known(values: &[Option<f64>]) -> impl Iterator<Item = f64> + '_ {
    values.iter().flatten().copied()
}

/// `safeSum`: sum of the non-null values, null if none.
pub fn safe_sum(v: &[Option<f64>]) -> Option<f64> {
    let mut it = known(v).peekable();
    it.peek()?;
    Some(it.fold(0.0, |a, b| a + b))
}

/// `safeAvg`.
pub fn safe_avg(v: &[Option<f64>]) -> Option<f64> {
    let (s, n) = known(v).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// `safeAvgZero`: nulls count as 0; null only for an empty row.
pub fn safe_avg_zero(v: &[Option<f64>]) -> Option<f64> {
    (!v.is_empty())
        .then(|| v.iter().map(|x| x.unwrap_or(0.0)).fold(0.0, |a, b| a + b) / v.len() as f64)
}

/// `safeMedian`: the middle value, or the mean of the two middle values.
pub fn safe_median(v: &[Option<f64>]) -> Option<f64> {
    let mut s: Vec<f64> = known(v).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 0 {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    })
}

/// `safeMin`.
pub fn safe_min(v: &[Option<f64>]) -> Option<f64> {
    known(v).fold(None, |m: Option<f64>, x| {
        Some(match m {
            Some(m) if m <= x => m,
            _ => x,
        })
    })
}

/// `safeMax`.
pub fn safe_max(v: &[Option<f64>]) -> Option<f64> {
    known(v).fold(None, |m: Option<f64>, x| {
        Some(match m {
            Some(m) if m >= x => m,
            _ => x,
        })
    })
}

/// `safeDiff`: the first non-null minus the others.
pub fn safe_diff(v: &[Option<f64>]) -> Option<f64> {
    let mut it = known(v);
    let first = it.next()?;
    Some(it.fold(first, |a, b| a + -b))
}

/// `safeStdDev`: population standard deviation of the non-null values.
pub fn safe_stddev(v: &[Option<f64>]) -> Option<f64> {
    let n = known(v).count();
    if n == 0 {
        return None;
    }
    let avg = safe_sum(v)? / n as f64;
    let sum = known(v).fold(0.0, |s, x| s + (x - avg) * (x - avg));
    Some((sum / n as f64).sqrt())
}

/// `safeLen`: count of non-null values (never null).
pub fn safe_len(v: &[Option<f64>]) -> Option<f64> {
    Some(known(v).count() as f64)
}

/// `safeLast`: the last non-null value.
pub fn safe_last(v: &[Option<f64>]) -> Option<f64> {
    v.iter().rev().flatten().next().copied()
}

/// `range`: max − min.
pub fn safe_range(v: &[Option<f64>]) -> Option<f64> {
    Some(safe_max(v)? - safe_min(v)?)
}

/// `multiply`: product, null if any value is null.
pub fn safe_multiply(v: &[Option<f64>]) -> Option<f64> {
    let mut p: Option<f64> = None;
    for x in v {
        let x = (*x)?;
        p = Some(match p {
            Some(p) => p * x,
            None => x,
        });
    }
    p
}

/// graphite-web's `getAggFunc`: the aggregation named `name` (or an alias: `avg`, `total`,
/// `current`, `rangeOf`). Errors as `Unsupported aggregation function: NAME`.
pub fn agg_func(name: &str) -> Result<AggFn, EvalError> {
    Ok(match name {
        "average" | "avg" => safe_avg,
        "avg_zero" => safe_avg_zero,
        "median" => safe_median,
        "sum" | "total" => safe_sum,
        "min" => safe_min,
        "max" => safe_max,
        "diff" => safe_diff,
        "stddev" => safe_stddev,
        "count" => safe_len,
        "range" | "rangeOf" => safe_range,
        "multiply" => safe_multiply,
        "last" | "current" => safe_last,
        _ => {
            return Err(EvalError::BadRequest(format!(
                "Unsupported aggregation function: {name}"
            )))
        }
    })
}

/// Names accepted by [`agg_func`], for parameter options.
pub const AGG_FUNCS: &[&str] = &[
    "average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range",
    "multiply", "last", "rangeOf", "avg", "total", "current",
];

/// graphite-web's `xffValues`: whether a row has enough non-null values.
pub fn xff_ok(row: &[Option<f64>], x_files_factor: f64) -> bool {
    let total = row.len();
    let non_null = row.iter().filter(|v| v.is_some()).count();
    non_null > 0 && total > 0 && non_null as f64 / total as f64 >= x_files_factor
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Least common multiple (graphite-web's `lcm`) of two steps (> 0); saturates instead of
/// overflowing.
pub fn lcm(a: i64, b: i64) -> i64 {
    if a == b {
        return a;
    }
    let (a, b) = if a < b { (b, a) } else { (a, b) };
    let g = gcd(a, b);
    if g == 0 {
        return 0;
    }
    (a / g).saturating_mul(b)
}

/// graphite-web's `normalize`: all series to a common step (the least common multiple,
/// consolidating finer ones), the earliest start, and the latest end trimmed to a whole
/// number of steps. Returns `(series, start, end, step)`; `None` when there is no series.
pub fn normalize(lists: Vec<Vec<Series>>) -> Option<(Vec<Series>, i64, i64, i64)> {
    let mut all: Vec<Series> = lists.into_iter().flatten().collect();
    if all.is_empty() {
        return None;
    }
    // Steps are > 0 for every series the store or a function makes; `max(1)` only keeps a
    // malformed one from dividing by zero.
    let step = all.iter().map(|s| s.step.max(1)).reduce(lcm)?;
    for s in &mut all {
        s.consolidate((step / s.step.max(1)) as usize);
    }
    let start = all.iter().map(|s| s.start).min()?;
    let mut end = all.iter().map(|s| s.end).max()?;
    end -= (end - start) % step;
    Some((all, start, end, step))
}

/// graphite-web's `formatPathExpressions`: the distinct path expressions in order, joined by
/// commas.
pub fn format_path_expressions(series: &[Series]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in series {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

/// Rows across series as graphite-web's `izip_longest(*seriesList)`: each series iterated
/// consolidated, shorter ones padded with nulls.
pub fn rows(series: &[Series]) -> Vec<Vec<Option<f64>>> {
    let cols: Vec<std::borrow::Cow<'_, [Option<f64>]>> =
        series.iter().map(|s| s.consolidated()).collect();
    let len = cols.iter().map(|c| c.len()).max().unwrap_or(0);
    (0..len)
        .map(|i| cols.iter().map(|c| c.get(i).copied().flatten()).collect())
        .collect()
}

/// The rows of [`rows`], one at a time in a reused buffer (no allocation per row): `f` gets
/// each row, index from 0.
pub fn for_each_row(series: &[Series], mut f: impl FnMut(usize, &[Option<f64>])) {
    let cols: Vec<std::borrow::Cow<'_, [Option<f64>]>> =
        series.iter().map(|s| s.consolidated()).collect();
    let len = cols.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut row: Vec<Option<f64>> = Vec::with_capacity(cols.len());
    for i in 0..len {
        row.clear();
        row.extend(cols.iter().map(|c| c.get(i).copied().flatten()));
        f(i, &row);
    }
}

/// A Python `re` pattern compiled for graphite-web's function `function` (`grep`, `exclude`,
/// `useSeriesAbove`, `seriesByTag`, the `/tags` filters): see [`crate::python::re`]. Errors
/// are HTTP 400s naming the function.
pub fn py_regex(pattern: &str, function: &str) -> Result<crate::python::re::Regex, EvalError> {
    crate::python::re::Regex::new(pattern).map_err(|e| bad(format!("{function}: {e}")))
}

/// A Python exception from [`crate::python`] is the user's request failing, as in
/// graphite-web: an HTTP 400 with Python's message.
impl From<PyError> for EvalError {
    fn from(e: PyError) -> EvalError {
        EvalError::BadRequest(e.0)
    }
}

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

/// graphite-web's `_getFirstPathExpression`: the first path expression in a series name that
/// is itself a target (`sumSeries(a.b.*)` → `a.b.*`), following each call's first argument.
/// `None` when the name does not parse as a target or leads to no path.
pub fn first_path_expression(name: &str) -> Option<String> {
    let mut expr = crate::query::parse::parse_target(name, 256).ok()?;
    loop {
        match expr {
            Expr::Path(p) => return Some(p),
            Expr::Call(c) => expr = c.args.into_iter().next()?,
            Expr::Template(t) => expr = t.expr,
            _ => return None,
        }
    }
}

/// graphite-web's `getNodeOrTag`: for an integer `n`, node `n` (Python indexing) of the name
/// (or of `path_expression` when given) without its tags; otherwise — or when that node does
/// not exist — the value of tag `str(n)`, or `""`.
pub fn node_or_tag(series: &Series, n: &Value, path_expression: Option<&str>) -> String {
    if let Value::Int(i) = n {
        let base = path_expression.unwrap_or(&series.name);
        let untagged = base.split(';').next().unwrap_or("");
        let nodes: Vec<&str> = untagged.split('.').collect();
        if let Some(node) = crate::python::sequence::index(&nodes, *i) {
            return node.to_string();
        }
    }
    let key = match n {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
        Value::Float(f) => repr_f64(*f),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".to_string(),
        Value::Series(_) => String::new(),
    };
    series.tags.get(&key).cloned().unwrap_or_default()
}

/// graphite-web's `aggKey`: the nodes/tags `nodes` of a series joined by `.`; for a name that
/// ends in `)` (a function's output) the nodes come from its first path expression.
pub fn agg_key(series: &Series, nodes: &[Value]) -> String {
    let first = if series.name.ends_with(')') {
        first_path_expression(&series.name)
    } else {
        None
    };
    nodes
        .iter()
        .map(|n| node_or_tag(series, n, first.as_deref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Python's `str()` of an evaluated argument, as graphite-web puts arguments in tags and
/// names (`weightedAverage(…, 0,1)`): ints plain, floats as `repr`, `True`/`False`/`None`.
pub fn py_str_value(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => repr_f64(*f),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".to_string(),
        Value::Series(_) => "[…]".to_string(),
    }
}

/// The same function under the name `combine` uses (there were two identical copies).
pub use self::py_str_value as py_str;

/// graphite-web's `series.copy(name=…, values=…)`: a new `TimeSeries` with the same start, end,
/// step, consolidation function, xFilesFactor and tags, its `pathExpression` set to the new
/// name, one value per point, and no graph options or colour.
pub fn copy_series(s: &Series, name: String, values: Vec<Option<f64>>) -> Series {
    Series {
        path_expression: name.clone(),
        name,
        start: s.start,
        end: s.end,
        step: s.step,
        values,
        consolidation_func: s.consolidation_func,
        values_per_point: 1,
        x_files_factor: s.x_files_factor,
        tags: s.tags.clone(),
        hints: GraphHints::default(),
    }
}

/// The values a graphite-web function sees when it iterates a series (`for v in series`):
/// consolidated by `valuesPerPoint`, owned.
pub fn iter_values(s: &Series) -> Vec<Option<f64>> {
    s.consolidated().into_owned()
}

/// Replaces a series' values by what the function computed from its iterated values and makes
/// it one value per point again (graphite-web assigns `series[i]` over the iterated values).
pub fn set_values(s: &mut Series, values: Vec<Option<f64>>) {
    s.values = values;
    s.values_per_point = 1;
}

/// glyph's `format_units(v, system=…)`: `v` scaled to the largest prefix of `system` (`si`:
/// k, M, G, T, P by 1000; `binary`: Ki … Pi by 1024) it reaches, and the prefix (with `units`
/// appended when given).
pub fn format_units(v: f64, system: &str, units: Option<&str>) -> (f64, String) {
    const SI: [(&str, f64); 5] = [("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)];
    const BINARY: [(&str, f64); 5] = [
        ("Pi", 1125899906842624.0),
        ("Ti", 1099511627776.0),
        ("Gi", 1073741824.0),
        ("Mi", 1048576.0),
        ("Ki", 1024.0),
    ];
    let table: &[(&str, f64)] = match system {
        "si" => &SI,
        "binary" => &BINARY,
        _ => &[],
    };
    for (prefix, size) in table {
        if v.abs() >= *size {
            let mut v2 = v / size;
            if v2 - v2.floor() < 0.00000000001 && v > 1.0 {
                v2 = v2.floor();
            }
            let prefix = match units {
                Some(u) => format!("{prefix}{u}"),
                None => prefix.to_string(),
            };
            return (v2, prefix);
        }
    }
    let mut v = v;
    if v - v.floor() < 0.00000000001 && v > 1.0 {
        v = v.floor();
    }
    (v, units.unwrap_or("").to_string())
}

/// graphite-web's `xff(nonNull, total, xFilesFactor)`: whether `non_null` known values out of
/// `total` are enough (false when either is zero).
pub fn xff_counts(non_null: usize, total: f64, x_files_factor: f64) -> bool {
    non_null > 0 && total != 0.0 && non_null as f64 / total >= x_files_factor
}

/// graphite-web's `parseTimeOffset` in seconds (`delta.seconds + delta.days * 86400`), with
/// Python's `timedelta` limit ([`crate::python::datetime::TIMEDELTA_MAX_SECONDS`]): beyond it
/// graphite-web fails, and so does this.
pub fn py_time_offset(s: &str) -> Result<i64, EvalError> {
    const MAX: i64 = crate::python::datetime::TIMEDELTA_MAX_SECONDS;
    let secs = crate::query::attime::parse_time_offset(s)
        .map_err(|e| EvalError::BadRequest(format!("Invalid interval value: '{s}': {e}")))?;
    if !(-MAX..=MAX).contains(&secs) {
        return Err(EvalError::BadRequest(format!(
            "interval '{s}' is beyond Python's timedelta range (999999999 days)"
        )));
    }
    Ok(secs)
}

/// `start + delta` (epoch seconds) as graphite-web moves `requestContext['startTime']` with a
/// `timedelta`: an error where Python's datetime would overflow.
pub fn shift_time(t: i64, delta: i64) -> Result<i64, EvalError> {
    t.checked_add(delta)
        .filter(|v| crate::python::datetime::DATETIME_RANGE.contains(v))
        .ok_or_else(|| {
            EvalError::BadRequest(format!(
                "date value out of range (shifting {t} by {delta} seconds)"
            ))
        })
}

/// Evaluates the call's first argument again over `[start, end)`: graphite-web's
/// `evaluateTarget(newContext, requestContext['args'][0])`, which functions needing data
/// outside the request's range (moving windows, Holt-Winters, `timeShift`, …) do.
pub fn reevaluate(
    ctx: &crate::query::eval::EvalContext<'_>,
    args: &crate::query::registry::Args<'_>,
    start: i64,
    end: i64,
) -> Result<Vec<Series>, EvalError> {
    let expr = args
        .expr("seriesList")
        .ok_or_else(|| EvalError::BadRequest(format!("{} needs a series list", args.def().name)))?;
    ctx.with_range(start, end).eval_series(expr)
}

/// `t` (epoch seconds) truncated to the start of its `unit` in time zone `tz`, as graphite-web
/// builds `datetime(s.year, …, tzinfo=s.tzinfo)`: the local wall time truncated, read back with
/// the UTC offset `t` itself has. `unit` is one of `years`, `months`, `weeks` (back to ISO
/// weekday `iso_weekday`, 1 = Monday), `days`, `hours`, `minutes`, `seconds`.
pub fn truncate_local(
    t: i64,
    tz: &chrono_tz::Tz,
    unit: &str,
    iso_weekday: u32,
) -> Result<i64, EvalError> {
    use chrono::{Datelike, NaiveDate, Offset, TimeZone, Timelike};
    let bad = || EvalError::BadRequest(format!("time {t} cannot be aligned"));
    let local = tz.timestamp_opt(t, 0).single().ok_or_else(bad)?;
    let offset = local.offset().fix().local_minus_utc() as i64;
    let (y, mo, d, h, mi, s) = (
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
    );
    let date = |y: i32, mo: u32, d: u32| NaiveDate::from_ymd_opt(y, mo, d).ok_or_else(bad);
    let naive = match unit {
        "years" => date(y, 1, 1)?.and_hms_opt(0, 0, 0),
        "months" => date(y, mo, 1)?.and_hms_opt(0, 0, 0),
        "weeks" => {
            let today = date(y, mo, d)?;
            let mut back = today.weekday().number_from_monday() as i64 - iso_weekday as i64;
            if back < 0 {
                back += 7;
            }
            (today - chrono::Duration::days(back)).and_hms_opt(0, 0, 0)
        }
        "days" => date(y, mo, d)?.and_hms_opt(0, 0, 0),
        "hours" => date(y, mo, d)?.and_hms_opt(h, 0, 0),
        "minutes" => date(y, mo, d)?.and_hms_opt(h, mi, 0),
        _ => date(y, mo, d)?.and_hms_opt(h, mi, s),
    }
    .ok_or_else(bad)?;
    Ok(naive.and_utc().timestamp() - offset)
}

/// graphite-web's `_getFirstPathExpression`: the first path expression of a name that is a
/// function call (following each call's first argument). `None` when the first argument is not
/// a path. Like graphite-web's grammar (pyparsing's `parseString`, which matches a prefix), a
/// name that parses only up to some point is read up to there (`a.b (avg: 1.0)` reads as
/// `a.b`); a name with no parsable start is an error (graphite-web fails then too).
pub fn first_path_expression_checked(name: &str) -> Result<Option<String>, EvalError> {
    use crate::query::ast::Expr;
    let mut text = name;
    let expr = loop {
        match crate::query::parse::parse_target(text, 256) {
            Ok(e) => break e,
            Err(e) => {
                let cut = text
                    .char_indices()
                    .nth(e.position)
                    .map_or(text.len(), |(i, _)| i);
                if e.position == 0 || cut == text.len() {
                    // No call parses: pyparsing falls back to the leading path expression.
                    let path: &str = name
                        .split(['(', ')', ',', ' ', '\'', '"', '='])
                        .next()
                        .unwrap_or("");
                    if path.is_empty() {
                        return Err(EvalError::BadRequest(format!(
                            "series name '{name}' does not parse: {e}"
                        )));
                    }
                    return Ok(Some(path.to_string()));
                }
                text = &text[..cut];
            }
        }
    };
    let mut cur = &expr;
    loop {
        match cur {
            Expr::Path(p) => return Ok(Some(p.clone())),
            Expr::Call(c) => match c.args.first() {
                Some(a) => cur = a,
                None => return Ok(None),
            },
            Expr::Template(t) => cur = &t.expr,
            _ => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_first_path_expressions() {
        assert_eq!(
            format_units(1536.0, "binary", None),
            (1.5, "Ki".to_string())
        );
        assert_eq!(
            format_units(2_000_000.0, "si", Some("b")),
            (2.0, "Mb".to_string())
        );
        assert_eq!(
            first_path_expression_checked("sumSeries(scale(a.b,2),c)")
                .unwrap()
                .as_deref(),
            Some("a.b")
        );
        assert_eq!(
            first_path_expression_checked("constantLine(1)").unwrap(),
            None
        );
        assert_eq!(
            first_path_expression_checked("a.b (avg: 1.0)")
                .unwrap()
                .as_deref(),
            Some("a.b")
        );
        assert!(first_path_expression_checked("(z)").is_err());
        assert_eq!(
            first_path_expression_checked("sumSeries(a.b c)")
                .unwrap()
                .as_deref(),
            Some("sumSeries")
        );
    }

    #[test]
    fn safe_functions() {
        let v = [Some(1.0), None, Some(4.0), Some(-2.0)];
        assert_eq!(safe_sum(&v), Some(3.0));
        assert_eq!(safe_avg(&v), Some(1.0));
        assert_eq!(safe_median(&v), Some(1.0));
        assert_eq!(safe_min(&v), Some(-2.0));
        assert_eq!(safe_max(&v), Some(4.0));
        assert_eq!(safe_diff(&v), Some(-1.0));
        assert_eq!(safe_len(&v), Some(3.0));
        assert_eq!(safe_last(&v), Some(-2.0));
        assert_eq!(safe_range(&v), Some(6.0));
        assert_eq!(safe_multiply(&v), None);
        assert_eq!(safe_avg_zero(&v), Some(0.75));
        assert_eq!(safe_sum(&[None, None]), None);
        assert_eq!(safe_len(&[None]), Some(0.0));
        assert!(agg_func("median").is_ok());
        assert!(agg_func("mode").is_err());
    }

    #[test]
    fn first_path_expression_follows_first_arguments() {
        assert_eq!(
            first_path_expression("sumSeries(a.b.*,c)").as_deref(),
            Some("a.b.*")
        );
        assert_eq!(first_path_expression("a.b").as_deref(), Some("a.b"));
        assert_eq!(first_path_expression("f("), None);
    }

    #[test]
    fn lcm_and_normalize() {
        assert_eq!(lcm(10, 60), 60);
        assert_eq!(lcm(4, 6), 12);
        let a = Series::new("a", 0, 60, 10, vec![Some(1.0); 6], 0.0);
        let b = Series::new("b", 0, 60, 20, vec![Some(2.0); 3], 0.0);
        let (s, start, end, step) = normalize(vec![vec![a, b]]).unwrap();
        assert_eq!((start, end, step), (0, 60, 20));
        assert_eq!(s[0].values_per_point, 2);
    }
}
