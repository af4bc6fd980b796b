//! Shared pieces of graphite-web's functions.py: the null-safe aggregations (`safe.py`,
//! `aggfuncs.py`), `normalize` for combining series of different steps, and
//! `formatPathExpressions`.

use crate::query::eval::EvalError;
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
    (!v.is_empty()).then(|| v.iter().map(|x| x.unwrap_or(0.0)).fold(0.0, |a, b| a + b) / v.len() as f64)
}

/// `safeMedian`: the middle value, or the mean of the two middle values.
pub fn safe_median(v: &[Option<f64>]) -> Option<f64> {
    let mut s: Vec<f64> = known(v).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 0 { (s[mid - 1] + s[mid]) / 2.0 } else { s[mid] })
}

/// `safeMin`.
pub fn safe_min(v: &[Option<f64>]) -> Option<f64> {
    known(v).fold(None, |m: Option<f64>, x| Some(match m { Some(m) if m <= x => m, _ => x }))
}

/// `safeMax`.
pub fn safe_max(v: &[Option<f64>]) -> Option<f64> {
    known(v).fold(None, |m: Option<f64>, x| Some(match m { Some(m) if m >= x => m, _ => x }))
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
        p = Some(match p { Some(p) => p * x, None => x });
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
        _ => return Err(EvalError::BadRequest(format!("Unsupported aggregation function: {name}"))),
    })
}

/// Names accepted by [`agg_func`], for parameter options.
pub const AGG_FUNCS: &[&str] = &[
    "average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range", "multiply", "last", "rangeOf", "avg", "total", "current",
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

/// Least common multiple (graphite-web's `lcm`).
pub fn lcm(a: i64, b: i64) -> i64 {
    if a == b {
        return a;
    }
    let (a, b) = if a < b { (b, a) } else { (a, b) };
    a / gcd(a, b) * b
}

/// graphite-web's `normalize`: all series to a common step (the least common multiple,
/// consolidating finer ones), the earliest start, and the latest end trimmed to a whole
/// number of steps. Returns `(series, start, end, step)`; `None` when there is no series.
pub fn normalize(lists: Vec<Vec<Series>>) -> Option<(Vec<Series>, i64, i64, i64)> {
    let mut all: Vec<Series> = lists.into_iter().flatten().collect();
    if all.is_empty() {
        return None;
    }
    let step = all.iter().map(|s| s.step).reduce(lcm)?;
    for s in &mut all {
        s.consolidate((step / s.step) as usize);
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
    let cols: Vec<std::borrow::Cow<'_, [Option<f64>]>> = series.iter().map(|s| s.consolidated()).collect();
    let len = cols.iter().map(|c| c.len()).max().unwrap_or(0);
    (0..len).map(|i| cols.iter().map(|c| c.get(i).copied().flatten()).collect()).collect()
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
