//! graphite-web's null-safe aggregations (`safe.py`, `aggfuncs.py`'s `getAggFunc` and its
//! aliases) and its xFilesFactor checks (`xffValues`, `xff`): what every combining, summarizing
//! and legend function reduces a row or a series with. Pure functions of values; nothing here
//! reads a series' metadata.

use crate::query::eval::EvalError;

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

/// graphite-web's `xff(nonNull, total, xFilesFactor)`: whether `non_null` known values out of
/// `total` are enough (false when either is zero).
pub fn xff_counts(non_null: usize, total: f64, x_files_factor: f64) -> bool {
    non_null > 0 && total != 0.0 && non_null as f64 / total >= x_files_factor
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
}
