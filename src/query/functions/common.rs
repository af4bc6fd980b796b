//! Shared pieces of graphite-web's functions.py: the null-safe aggregations (`safe.py`,
//! `aggfuncs.py`), `normalize` for combining series of different steps, and
//! `formatPathExpressions`.

use crate::query::ast::{Call, Expr};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::series::Series;

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

#[cfg(test)]
mod tests {
    use super::*;

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
