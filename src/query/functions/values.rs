//! The values of series as graphite-web's functions iterate, combine and copy them:
//! `normalize` to a common step, rows across series (`izip_longest`), `TimeSeries.copy`, and
//! the consolidated values a function sees. Never renames a series (see [`super::naming`]).

use crate::query::series::{GraphHints, Series};

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

#[cfg(test)]
mod tests {
    use super::*;

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
