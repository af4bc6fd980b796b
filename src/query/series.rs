//! `Series`: graphite-web's `TimeSeries` — a name, `start`/`end`/`step` in epoch seconds,
//! values with nulls, the consolidation it applies when drawn or when `maxDataPoints` asks,
//! its tags and the graph hints functions attach.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// How consecutive values merge into one when a series is consolidated (graphite-web's
/// `consolidationFunc`, set by `consolidateBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsolidationFunc {
    /// Mean of the non-null values (the default).
    #[default]
    Average,
    /// Mean with nulls counted as 0.
    AvgZero,
    /// Sum of the non-null values.
    Sum,
    /// Largest.
    Max,
    /// Smallest.
    Min,
    /// First non-null.
    First,
    /// Last non-null.
    Last,
}

impl ConsolidationFunc {
    /// Parses graphite-web's names (`average`/`avg`, `avg_zero`, `sum`, `max`, `min`,
    /// `first`, `last`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "average" | "avg" => ConsolidationFunc::Average,
            "avg_zero" => ConsolidationFunc::AvgZero,
            "sum" => ConsolidationFunc::Sum,
            "max" => ConsolidationFunc::Max,
            "min" => ConsolidationFunc::Min,
            "first" => ConsolidationFunc::First,
            "last" => ConsolidationFunc::Last,
            _ => return None,
        })
    }

    /// graphite-web's name.
    pub fn name(self) -> &'static str {
        match self {
            ConsolidationFunc::Average => "average",
            ConsolidationFunc::AvgZero => "avg_zero",
            ConsolidationFunc::Sum => "sum",
            ConsolidationFunc::Max => "max",
            ConsolidationFunc::Min => "min",
            ConsolidationFunc::First => "first",
            ConsolidationFunc::Last => "last",
        }
    }

    /// Applies the function to the kept values of one bucket (nulls already removed, or
    /// replaced by 0 for `avg_zero`); `buf` is never empty.
    fn apply(self, buf: &[f64]) -> f64 {
        match self {
            ConsolidationFunc::Average | ConsolidationFunc::AvgZero => {
                buf.iter().sum::<f64>() / buf.len() as f64
            }
            ConsolidationFunc::Sum => buf.iter().sum(),
            ConsolidationFunc::Max => {
                buf.iter()
                    .copied()
                    .fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m })
            }
            ConsolidationFunc::Min => {
                buf.iter()
                    .copied()
                    .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })
            }
            ConsolidationFunc::First => buf[0],
            ConsolidationFunc::Last => buf[buf.len() - 1],
        }
    }
}

/// Hints functions attach for the graph renderer (graphite-web's `series.options` and
/// `series.color`). They never change values: functions that stack (`stacked()`) have already
/// added the running totals into the values when they set `stacked`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphHints {
    /// `color()`, `threshold(…, color)`, `verticalLine(…, color)`: a name or hex.
    pub color: Option<String>,
    /// `dashed()`: dash length.
    pub dashed: Option<f64>,
    /// `lineWidth()`.
    pub line_width: Option<f64>,
    /// graphite-web's `options['stacked']`: the series is drawn as a filled area from the axis
    /// and sorted before unstacked ones. Holds the stack's name for `stacked()`
    /// (`__DEFAULT__` unless named), `__DEFAULT__` for `areaBetween` bounds. Values are
    /// already stacked by the function; a renderer must not add them up again.
    pub stacked: Option<String>,
    /// `secondYAxis()`.
    pub second_y_axis: bool,
    /// `drawAsInfinite()` and `verticalLine()`: a positive value draws a full-height line.
    pub draw_as_infinite: bool,
    /// `alpha()`: 0..1.
    pub alpha: Option<f64>,
    /// `areaBetween()` and `holtWintersConfidenceArea()`: this series is one bound of a filled
    /// band (the lower bound is also `invisible`).
    pub area_between: bool,
    /// graphite-web's `options['invisible']`: drawn with alpha 0 (the lower bound of
    /// `areaBetween`, which only clips the band's fill).
    pub invisible: bool,
}

/// A series of values at a fixed step, nulls allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name shown in legends and JSON `target` (e.g. `sumSeries(a.*)`).
    pub name: String,
    /// The path expression it came from (graphite-web's `pathExpression`).
    pub path_expression: String,
    /// Timestamp of the first value (epoch seconds).
    pub start: i64,
    /// End of the series (epoch seconds, exclusive as whisper gives it).
    pub end: i64,
    /// Seconds between values (> 0).
    pub step: i64,
    /// The values; `None` is Graphite's null.
    pub values: Vec<Option<f64>>,
    /// How the series consolidates.
    pub consolidation_func: ConsolidationFunc,
    /// Values merged into one on output (1 = none); set by [`Series::consolidate`].
    pub values_per_point: usize,
    /// Fraction of non-null values a consolidated bucket needs to be non-null.
    pub x_files_factor: f64,
    /// Tags (`name` plus any `tag=value` of a tagged series).
    pub tags: BTreeMap<String, String>,
    /// Graph hints.
    pub hints: GraphHints,
}

/// Tags graphite-web gives a series named `name`: parsed from a tagged name
/// (`name;a=b` → name, a), otherwise just `name`.
pub fn tags_for_name(name: &str) -> BTreeMap<String, String> {
    if name.contains(';') && !looks_like_call(name) {
        if let Some(t) = crate::store::parse_tagged(name) {
            return t;
        }
    }
    let mut t = BTreeMap::new();
    t.insert("name".to_string(), name.to_string());
    t
}

/// graphite-web's test `^[a-z]+[(].+[)]$` (case-insensitive): a name that is a function call.
fn looks_like_call(name: &str) -> bool {
    let Some(open) = name.find('(') else {
        return false;
    };
    open > 0
        && name[..open].chars().all(|c| c.is_ascii_alphabetic())
        && name.ends_with(')')
        && name.len() > open + 2
}

impl Series {
    /// A series with graphite-web's defaults: consolidation `average`, one value per point,
    /// tags from the name.
    pub fn new(
        name: impl Into<String>,
        start: i64,
        end: i64,
        step: i64,
        values: Vec<Option<f64>>,
        x_files_factor: f64,
    ) -> Series {
        let name = name.into();
        Series {
            tags: tags_for_name(&name),
            path_expression: name.clone(),
            name,
            start,
            end,
            step,
            values,
            consolidation_func: ConsolidationFunc::Average,
            values_per_point: 1,
            x_files_factor,
            hints: GraphHints::default(),
        }
    }

    /// A copy with a new name, new values, and graphite-web's `copy()` defaults for the rest
    /// (tags kept, so a renamed copy keeps its tags as graphite-web does).
    pub fn derive(&self, name: impl Into<String>, values: Vec<Option<f64>>) -> Series {
        Series {
            name: name.into(),
            values,
            ..self.clone()
        }
    }

    /// Sets how many values merge into one on output (graphite-web's `consolidate(n)`).
    pub fn consolidate(&mut self, values_per_point: usize) {
        self.values_per_point = values_per_point.max(1);
    }

    /// The values as iterated in graphite-web (`for v in series`): consolidated by
    /// `values_per_point` with the consolidation function and xFilesFactor; borrowed when no
    /// consolidation applies. A bucket is null unless it has a non-null value and its
    /// non-null fraction reaches the xFilesFactor; a short last bucket is divided by the full
    /// bucket size, as graphite-web does.
    pub fn consolidated(&self) -> Cow<'_, [Option<f64>]> {
        let n = self.values_per_point;
        if n <= 1 {
            return Cow::Borrowed(&self.values);
        }
        let mut out = Vec::with_capacity(self.values.len().div_ceil(n));
        let mut buf: Vec<f64> = Vec::with_capacity(n.min(self.values.len()));
        for chunk in self.values.chunks(n) {
            buf.clear();
            let mut non_null = 0usize;
            for v in chunk {
                match v {
                    Some(x) => {
                        buf.push(*x);
                        non_null += 1;
                    }
                    None if self.consolidation_func == ConsolidationFunc::AvgZero => buf.push(0.0),
                    None => {}
                }
            }
            if non_null > 0 && non_null as f64 / n as f64 >= self.x_files_factor {
                out.push(Some(self.consolidation_func.apply(&buf)));
            } else {
                out.push(None);
            }
        }
        Cow::Owned(out)
    }

    /// `(value, timestamp)` pairs as graphite-web's `datapoints()`: timestamps from `start`
    /// in steps of `step × values_per_point`, as many as there are (consolidated) values and
    /// timestamps up to `end` inclusive.
    pub fn datapoints(&self) -> Vec<(Option<f64>, i64)> {
        let values = self.consolidated();
        let step = self.step * self.values_per_point as i64;
        let mut out = Vec::with_capacity(values.len());
        let mut t = self.start;
        for v in values.iter() {
            if t > self.end {
                break;
            }
            out.push((*v, t));
            t += step;
        }
        out
    }

    /// Number of (unconsolidated) values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consolidates_like_graphite_web() {
        let mut s = Series::new(
            "a",
            0,
            50,
            10,
            vec![Some(1.0), None, Some(3.0), Some(4.0), None],
            0.0,
        );
        s.consolidate(2);
        assert_eq!(&*s.consolidated(), &[Some(1.0), Some(3.5), None]);
        s.consolidation_func = ConsolidationFunc::AvgZero;
        assert_eq!(
            &*s.consolidated(),
            &[Some(0.5), Some(3.5), None],
            "an all-null bucket stays null even for avg_zero"
        );
        s.consolidation_func = ConsolidationFunc::Sum;
        s.x_files_factor = 0.6;
        assert_eq!(&*s.consolidated(), &[None, Some(7.0), None]);
        assert_eq!(s.datapoints(), vec![(None, 0), (Some(7.0), 20), (None, 40)]);
    }

    #[test]
    fn tags_from_names() {
        assert_eq!(tags_for_name("a.b").get("name").unwrap(), "a.b");
        let t = tags_for_name("cpu;host=a");
        assert_eq!(t.get("host").unwrap(), "a");
        assert_eq!(t.get("name").unwrap(), "cpu");
        assert_eq!(tags_for_name("sumSeries(cpu;host=a)").len(), 1);
    }
}
