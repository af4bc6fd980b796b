//! Shared pieces of graphite-web's functions.py: the null-safe aggregations (`safe.py`,
//! `aggfuncs.py`), `normalize` for combining series of different steps,
//! `formatPathExpressions`, `TimeSeries.copy`, and the few Python built-ins whose exact
//! behaviour shows in names and values (`round`, slicing, `str()`, `%` formatting,
//! `math.pow`, glyph's `format_units`).

use crate::query::ast::{Call, Expr};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::pyfmt::{format_g_prec, repr_f64};
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
    args: &crate::query::signature::Args<'_>,
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

/// Python's `seq[i]`: a negative `i` counts from the end; `None` where Python raises
/// `IndexError`.
pub fn py_index<T>(seq: &[T], i: i64) -> Option<&T> {
    let len = seq.len() as i64;
    let i = if i < 0 { i.checked_add(len)? } else { i };
    if (0..len).contains(&i) {
        seq.get(i as usize)
    } else {
        None
    }
}

/// The end of Python's slice `seq[:n]` for a sequence of `len` items (a negative `n` counts
/// from the end; out-of-range values clamp).
pub fn py_slice_end(len: usize, n: i64) -> usize {
    let len_i = len as i64;
    let end = if n < 0 { len_i.saturating_add(n) } else { n };
    end.clamp(0, len_i) as usize
}

/// Rewrites a Python `re` pattern into the `regex` crate's syntax where the two read the same
/// text differently: inside a character class `[`, `&` and `~` are literal in Python (the
/// crate reads `[[:digit:]]` as a POSIX class and `&&`/`~~` as set operations), so they are
/// escaped; `\Z` (end of text) becomes `\z`; a `{` that does not start a valid repetition is
/// literal in Python, so it is escaped; `{,n}` becomes `{0,n}`.
pub fn py_regex_syntax(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(&n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' => in_class = false,
                '[' | '&' | '~' => out.push('\\'),
                _ => {}
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` right after the opening is a literal member in Python.
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '{' => {
                // Python's repetition: {m}, {m,}, {,n}, {m,n}; anything else is a literal `{`.
                let rest: String = chars[i + 1..].iter().take_while(|c| **c != '}').collect();
                let closed = chars.len() > i + 1 + rest.chars().count();
                let (lo, hi) = rest.split_once(',').unwrap_or((&rest, ""));
                let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
                let valid = closed
                    && !rest.is_empty()
                    && digits(lo)
                    && digits(hi)
                    && (rest.contains(',') || !lo.is_empty())
                    && rest != ",";
                if valid {
                    out.push('{');
                    if lo.is_empty() {
                        out.push('0');
                    }
                    out.push_str(&rest);
                    out.push('}');
                    i += rest.chars().count() + 2;
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
            }
            ']' => {
                out.push_str("\\]");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Compiles a pattern written for Python's `re` (graphite-web's `grep`, `exclude`,
/// `useSeriesAbove`, …) with the `regex` crate, after [`py_regex_syntax`]. What the crate
/// cannot do — look-around, backreferences, octal escapes — is refused with a clear error
/// naming the function; everything else Graphite users write matches as in Python (both
/// treat `\d`, `\w`, `\s` as Unicode classes).
pub fn py_regex(pattern: &str, function: &str) -> Result<regex::Regex, EvalError> {
    regex::RegexBuilder::new(&py_regex_syntax(pattern))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            EvalError::BadRequest(format!(
                "{function}: invalid regular expression '{pattern}': {e}"
            ))
        })
}

/// Python's `re.sub(regex, repl, s)`: every match replaced by `repl`, where `\1`…`\99`,
/// `\g<1>` and `\g<name>` insert a group (empty when it did not take part), `\n`, `\t`, `\\`
/// and the other C escapes insert that character, and other backslashes stay as written.
pub fn py_sub(re: &regex::Regex, repl: &str, s: &str) -> Result<String, EvalError> {
    enum Piece {
        Lit(String),
        Group(usize),
        Named(String),
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = repl.chars().collect();
    let mut i = 0;
    let bad = |m: String| EvalError::BadRequest(format!("invalid replacement '{repl}': {m}"));
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 == chars.len() {
            lit.push(c);
            i += 1;
            continue;
        }
        let n = chars[i + 1];
        match n {
            '0'..='9' => {
                let mut j = i + 1;
                let mut num = String::new();
                while j < chars.len() && j < i + 3 && chars[j].is_ascii_digit() {
                    num.push(chars[j]);
                    j += 1;
                }
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                pieces.push(Piece::Group(num.parse().unwrap_or(0)));
                i = j;
            }
            'g' => {
                let rest: String = chars[i + 2..].iter().collect();
                let Some(close) = rest.strip_prefix('<').and_then(|r| r.find('>')) else {
                    return Err(bad("missing group name after \\g".into()));
                };
                let name = &rest[1..close + 1];
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                match name.parse::<usize>() {
                    Ok(g) => pieces.push(Piece::Group(g)),
                    Err(_) => pieces.push(Piece::Named(name.to_string())),
                }
                i += 2 + name.chars().count() + 2;
            }
            'n' => {
                lit.push('\n');
                i += 2;
            }
            't' => {
                lit.push('\t');
                i += 2;
            }
            'r' => {
                lit.push('\r');
                i += 2;
            }
            'f' => {
                lit.push('\x0c');
                i += 2;
            }
            'v' => {
                lit.push('\x0b');
                i += 2;
            }
            'a' => {
                lit.push('\x07');
                i += 2;
            }
            'b' => {
                lit.push('\x08');
                i += 2;
            }
            '\\' => {
                lit.push('\\');
                i += 2;
            }
            c if c.is_ascii_alphabetic() => return Err(bad(format!("bad escape \\{c}"))),
            _ => {
                lit.push('\\');
                i += 1;
            }
        }
    }
    pieces.push(Piece::Lit(lit));
    for p in &pieces {
        match p {
            Piece::Group(g) if *g >= re.captures_len() => {
                return Err(bad(format!("invalid group reference {g}")))
            }
            Piece::Named(n) if !re.capture_names().any(|c| c == Some(n.as_str())) => {
                return Err(bad(format!("unknown group name '{n}'")))
            }
            _ => {}
        }
    }
    Ok(re
        .replace_all(s, |caps: &regex::Captures<'_>| {
            let mut out = String::new();
            for p in &pieces {
                match p {
                    Piece::Lit(l) => out.push_str(l),
                    Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
                    Piece::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
                }
            }
            out
        })
        .into_owned())
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
        if let Some(node) = py_index(&nodes, *i) {
            return node.to_string();
        }
    }
    let key = match n {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
        Value::Float(f) => crate::query::pyfmt::repr_f64(*f),
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

/// Python's `str()` of a literal argument (for names such as `weightedAverage(…, 0,1)`).
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
        Value::Float(f) => crate::query::pyfmt::repr_f64(*f),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".to_string(),
        Value::Series(_) => "[…]".to_string(),
    }
}

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

/// Python's `round(x, ndigits)` for a float: the decimal rounding of the exact binary value,
/// ties to even; `inf`/`nan` pass through.
pub fn py_round(x: f64, ndigits: i64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    if ndigits >= 0 {
        if ndigits > 340 {
            return x;
        }
        // Rust's fixed-precision formatting rounds the exact value, ties to even, as CPython's
        // dtoa-based round does.
        return format!("{:.*}", ndigits as usize, x).parse().unwrap_or(x);
    }
    // Negative ndigits: round to a multiple of 10^-ndigits using the exact decimal expansion.
    let k = ndigits.unsigned_abs() as usize;
    let exact = format!("{:.0}", x.abs().trunc());
    let frac_nonzero = x.fract() != 0.0;
    let digits = exact.as_bytes();
    if k > digits.len() {
        return 0.0 * x.signum();
    }
    let keep = digits.len() - k;
    let mut head: Vec<u8> = digits[..keep].to_vec();
    let tail = &digits[keep..];
    let half = tail[0] > b'5'
        || (tail[0] == b'5' && (tail[1..].iter().any(|&d| d != b'0') || frac_nonzero));
    let tie = tail[0] == b'5' && tail[1..].iter().all(|&d| d == b'0') && !frac_nonzero;
    let last_odd = head.last().is_some_and(|d| (d - b'0') % 2 == 1);
    if half || (tie && last_odd) {
        let mut i = head.len();
        loop {
            if i == 0 {
                head.insert(0, b'1');
                break;
            }
            i -= 1;
            if head[i] == b'9' {
                head[i] = b'0';
            } else {
                head[i] += 1;
                break;
            }
        }
    }
    let mut s = String::from_utf8(head).unwrap_or_default();
    if s.is_empty() {
        s.push('0');
    }
    s.push_str(&"0".repeat(k));
    let v: f64 = s.parse().unwrap_or(0.0);
    if x < 0.0 {
        -v
    } else {
        v
    }
}

/// Python's slice `seq[start:stop]` bounds (step 1) for a sequence of `len` items: negative
/// indices count from the end, out-of-range ones clamp. Returns `start..stop` (empty when
/// `stop <= start`).
pub fn py_slice_range(len: usize, start: Option<i64>, stop: Option<i64>) -> std::ops::Range<usize> {
    let n = len as i64;
    let clamp = |i: i64| -> usize {
        let i = if i < 0 { i + n } else { i };
        i.clamp(0, n) as usize
    };
    let a = start.map(clamp).unwrap_or(0);
    let b = stop.map(clamp).unwrap_or(len);
    a..b.max(a)
}

/// Python's `seq[i]`: negative indices count from the end; `None` where Python raises
/// `IndexError`.
pub fn py_index_of(len: usize, i: i64) -> Option<usize> {
    let n = len as i64;
    let j = if i < 0 { i + n } else { i };
    (0..n).contains(&j).then_some(j as usize)
}

/// Python's `str()` of an evaluated argument, as graphite-web puts arguments in tags and names.
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

/// Python's `'%d' % x` for a float: truncated toward zero, all digits; errors as Python does
/// for `inf` and `nan`.
pub fn py_percent_d(x: f64) -> Result<String, EvalError> {
    if x.is_nan() {
        return Err(EvalError::BadRequest(
            "cannot convert float NaN to integer".into(),
        ));
    }
    if x.is_infinite() {
        return Err(EvalError::BadRequest(
            "cannot convert float infinity to integer".into(),
        ));
    }
    let t = x.trunc();
    Ok(if t == 0.0 {
        "0".to_string()
    } else {
        format!("{t:.0}")
    })
}

/// Python's `math.pow(a, b)` as graphite-web's `safePow` uses it: `None` where Python raises
/// (a negative base with a fractional exponent, zero to a negative power, overflow).
pub fn py_pow(a: f64, b: f64) -> Option<f64> {
    let r = a.powf(b);
    if a.is_finite() && b.is_finite() && !r.is_finite() {
        return None;
    }
    Some(r)
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

/// Python's `'%.Nf' % x`.
pub fn py_fixed(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{x:.prec$}")
}

/// Python's `'%.Ne' % x`: mantissa with `prec` decimals, exponent signed with at least two
/// digits.
pub fn py_exp(x: f64, prec: usize, upper: bool) -> String {
    if !x.is_finite() {
        let s = py_fixed(x, 0);
        return if upper { s.to_uppercase() } else { s };
    }
    let s = format!("{x:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    format!(
        "{mant}{e}{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// Python's `fmt % value` for a format with exactly one conversion and one float argument
/// (graphite-web's `aliasQuery` formats the last value so). Supports the flags `-+ 0#`, width,
/// precision and the conversions `d i u f F e E g G s r a %`; Python's errors (no conversion,
/// two conversions, `%x` of a float, a mapping key) are `BadRequest`.
pub fn py_percent_format(fmt: &str, value: f64) -> Result<String, EvalError> {
    let bad = |m: &str| EvalError::BadRequest(m.to_string());
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut used = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        if i < chars.len() && chars[i] == '(' {
            return Err(bad("format requires a mapping"));
        }
        let (mut left, mut plus, mut space, mut zero) = (false, false, false, false);
        while i < chars.len() && "-+ 0#".contains(chars[i]) {
            match chars[i] {
                '-' => left = true,
                '+' => plus = true,
                ' ' => space = true,
                '0' => zero = true,
                _ => {}
            }
            i += 1;
        }
        let mut width = 0usize;
        if i < chars.len() && chars[i] == '*' {
            return Err(bad("not enough arguments for format string"));
        }
        while i < chars.len() && chars[i].is_ascii_digit() {
            width = width
                .saturating_mul(10)
                .saturating_add(chars[i] as usize - '0' as usize);
            i += 1;
        }
        let mut prec: Option<usize> = None;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut p = 0usize;
            while i < chars.len() && chars[i].is_ascii_digit() {
                p = p
                    .saturating_mul(10)
                    .saturating_add(chars[i] as usize - '0' as usize);
                i += 1;
            }
            prec = Some(p);
        }
        while i < chars.len() && "hlL".contains(chars[i]) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            return Err(bad("incomplete format"));
        };
        i += 1;
        if conv == '%' {
            out.push('%');
            continue;
        }
        if used {
            return Err(bad("not enough arguments for format string"));
        }
        used = true;
        if width > 10_000 || prec.is_some_and(|p| p > 10_000) {
            return Err(bad("format width or precision too large"));
        }
        let numeric = !matches!(conv, 's' | 'r' | 'a');
        let mut body = match conv {
            'd' | 'i' | 'u' => py_percent_d(value)?,
            'f' | 'F' => {
                let s = py_fixed(value, prec.unwrap_or(6));
                if conv == 'F' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            'e' | 'E' => py_exp(value, prec.unwrap_or(6), conv == 'E'),
            'g' | 'G' => {
                let s = format_g_prec(value, prec.unwrap_or(6).max(1));
                if conv == 'G' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            's' | 'r' | 'a' => {
                let s = repr_f64(value);
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            'x' | 'X' | 'o' | 'c' => {
                return Err(bad(&format!(
                    "%{conv} format: an integer is required, not float"
                )))
            }
            other => return Err(bad(&format!("unsupported format character '{other}'"))),
        };
        if numeric && !body.starts_with('-') {
            if plus {
                body.insert(0, '+');
            } else if space {
                body.insert(0, ' ');
            }
        }
        let len = body.chars().count();
        if len < width {
            let pad = width - len;
            if left {
                body.push_str(&" ".repeat(pad));
            } else if zero && numeric && value.is_finite() {
                let sign_len = usize::from(body.starts_with(['-', '+', ' ']));
                body.insert_str(sign_len, &"0".repeat(pad));
            } else {
                body.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&body);
    }
    if !used {
        return Err(bad("not all arguments converted during string formatting"));
    }
    Ok(out)
}

/// graphite-web's `xff(nonNull, total, xFilesFactor)`: whether `non_null` known values out of
/// `total` are enough (false when either is zero).
pub fn xff_counts(non_null: usize, total: f64, x_files_factor: f64) -> bool {
    non_null > 0 && total != 0.0 && non_null as f64 / total >= x_files_factor
}

/// graphite-web's `parseTimeOffset` in seconds (`delta.seconds + delta.days * 86400`), with
/// Python's `timedelta` limit (±999,999,999 days): beyond it graphite-web fails, and so does
/// this, which keeps every offset far from `i64` overflow.
pub fn py_time_offset(s: &str) -> Result<i64, EvalError> {
    const MAX: i64 = 999_999_999 * 86_400 + 86_399;
    let secs = crate::query::attime::parse_time_offset(s)
        .map_err(|e| EvalError::BadRequest(format!("Invalid interval value: '{s}': {e}")))?;
    if !(-MAX..=MAX).contains(&secs) {
        return Err(EvalError::BadRequest(format!(
            "interval '{s}' is beyond Python's timedelta range (999999999 days)"
        )));
    }
    Ok(secs)
}

/// Earliest and latest epoch seconds Python's `datetime` can hold (years 1 and 9999): moving
/// a request's range beyond them fails in graphite-web with an `OverflowError`.
pub const PY_DATETIME_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// `start + delta` (epoch seconds) as graphite-web moves `requestContext['startTime']` with a
/// `timedelta`: an error where Python's datetime would overflow.
pub fn shift_time(t: i64, delta: i64) -> Result<i64, EvalError> {
    t.checked_add(delta)
        .filter(|v| PY_DATETIME_RANGE.contains(v))
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
    args: &crate::query::signature::Args<'_>,
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
    fn python_round_slices_and_formats() {
        // Expected values are CPython 3.11's.
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(2.5, 0), 2.0);
        assert_eq!(py_round(1234.5, -1), 1230.0);
        assert_eq!(py_round(1250.0, -2), 1200.0);
        assert_eq!(py_round(1350.0, -2), 1400.0);
        assert_eq!(py_round(1250.0001, -2), 1300.0);
        assert_eq!(py_round(-1250.0001, -2), -1300.0);
        assert_eq!(py_round(49.0, -2), 0.0);
        assert_eq!(py_round(12.0, -5), 0.0);
        assert!(py_round(f64::NAN, 3).is_nan());
        assert_eq!(py_slice_range(5, Some(-2), None), 3..5);
        assert_eq!(py_slice_range(5, None, Some(-7)), 0..0);
        assert_eq!(py_slice_range(5, Some(7), Some(9)), 5..5);
        assert_eq!(py_index_of(3, -1), Some(2));
        assert_eq!(py_index_of(3, 3), None);
        assert_eq!(py_percent_d(-2.7).unwrap(), "-2");
        assert_eq!(py_percent_d(1e20).unwrap(), "100000000000000000000");
        assert!(py_percent_d(f64::INFINITY).is_err());
        assert_eq!(py_exp(1234.5, 2, false), "1.23e+03");
        assert_eq!(
            py_percent_format("Channel %d MHz", 433.9).unwrap(),
            "Channel 433 MHz"
        );
        assert_eq!(py_percent_format("%.2f%%", 1.005).unwrap(), "1.00%");
        assert_eq!(py_percent_format("[%-6s]", 1.5).unwrap(), "[1.5   ]");
        assert_eq!(py_percent_format("%+08.3f", 3.25159).unwrap(), "+003.252");
        assert_eq!(py_percent_format("%g", 1e-5).unwrap(), "1e-05");
        assert!(py_percent_format("plain", 1.0).is_err());
        assert!(py_percent_format("%d %d", 1.0).is_err());
        assert!(py_percent_format("%x", 1.0).is_err());
        assert_eq!(
            format_units(1536.0, "binary", None),
            (1.5, "Ki".to_string())
        );
        assert_eq!(
            format_units(2_000_000.0, "si", Some("b")),
            (2.0, "Mb".to_string())
        );
        assert_eq!(py_pow(-8.0, 1.0 / 3.0), None);
        assert_eq!(py_pow(0.0, -1.0), None);
        assert_eq!(py_pow(f64::NAN, 0.0), Some(1.0));
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
    fn python_regex_syntax() {
        assert_eq!(py_regex_syntax("web[[:digit:]]"), "web[\\[:digit:]\\]");
        assert_eq!(py_regex_syntax("a{,3}b{2}c{x"), "a{0,3}b{2}c\\{x");
        assert_eq!(
            py_regex_syntax("end\\Z|[]a&&b~~]"),
            "end\\z|[\\]a\\&\\&b\\~\\~]"
        );
        assert_eq!(py_regex_syntax("x{}y{,}"), "x\\{}y\\{,}");
        let re = py_regex("web[[:digit:]]", "grep").unwrap();
        assert!(!re.is_match("web1") && re.is_match("web:]"));
        assert!(py_regex("(?<=a)b", "grep").is_err());
        let re = py_regex("(web)(\\d)", "t").unwrap();
        assert_eq!(
            py_sub(&re, "\\2-\\g<1>\\n\\.", "a.web1.b").unwrap(),
            "a.1-web\n\\..b"
        );
        assert!(py_sub(&re, "\\q", "web1").is_err());
        assert!(py_sub(&re, "\\3", "web1").is_err());
        assert_eq!(py_index(&[1, 2, 3], -1), Some(&3));
        assert_eq!(py_index(&[1, 2, 3], 3), None);
        assert_eq!(py_index(&[1, 2, 3], i64::MIN), None);
        assert_eq!(py_slice_end(3, -1), 2);
        assert_eq!(py_slice_end(3, i64::MAX), 3);
        assert_eq!(py_slice_end(3, i64::MIN), 0);
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
