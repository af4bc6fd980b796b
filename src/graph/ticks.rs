//! Value-axis ticks and their labels, as glyph.py's `_AxisTics`, `_LinearAxisTics`,
//! `_LogAxisTics`, `format_units` and `makeLabel`: the bounds are snapped to the chosen step
//! (or to powers of the log base), so the top and bottom of the plot are ticks.

use super::error::GraphError;
use super::params::{AxisMax, UnitSystem};
use crate::python::{format_f, format_g};

/// Most labelled values one axis gets (glyph.py has no bound: `logBase=1.0000001` would ask
/// for millions). No image is tall enough to show more than a few hundred.
pub const MAX_LABELS: usize = 500;

/// glyph.py's `EPSILON`: tolerance for values fractionally outside a bound.
const EPSILON: f64 = 0.0001;

/// Where a bound came from (glyph.py's `minValueSource` / `maxValueSource`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Data,
    Min,
    Max,
    Extremum,
    Limit,
}

/// The ticks of one value axis: built from the data's range, then [`AxisTicks::apply`],
/// [`AxisTicks::choose_step`] (or [`AxisTicks::set_step`]) and [`AxisTicks::choose_limits`],
/// in glyph.py's `setupYAxis` order.
#[derive(Debug, Clone)]
pub struct AxisTicks {
    min: f64,
    min_source: Source,
    max: f64,
    max_source: Source,
    limit: Option<f64>,
    unit_system: UnitSystem,
    /// `Some(base)` for logarithmic ticks.
    log_base: Option<f64>,
    binary: bool,
    /// Distance between ticks (`None` on a log axis).
    pub step: Option<f64>,
    /// The lowest value drawn.
    pub bottom: f64,
    /// The highest value drawn.
    pub top: f64,
    /// `top - bottom`.
    pub span: f64,
}

fn finite(v: f64, what: &str) -> Result<f64, GraphError> {
    if v.is_nan() {
        Err(GraphError::Axis(format!("Encountered NaN {what}")))
    } else if v.is_infinite() {
        Err(GraphError::Axis(format!("Encountered infinite {what}")))
    } else {
        Ok(v)
    }
}

fn choose_delta(x: f64) -> f64 {
    if x.abs() < 1.0e-9 {
        1.0
    } else {
        0.1 * x.abs()
    }
}

impl AxisTicks {
    /// Ticks for data from `min` to `max`; `log_base` makes them logarithmic.
    pub fn new(
        min: f64,
        max: f64,
        unit_system: UnitSystem,
        log_base: Option<f64>,
    ) -> Result<AxisTicks, GraphError> {
        Ok(AxisTicks {
            min: finite(min, "data value")?,
            min_source: Source::Data,
            max: finite(max, "data value")?,
            max_source: Source::Data,
            limit: None,
            unit_system,
            log_base,
            binary: false,
            step: None,
            bottom: 0.0,
            top: 0.0,
            span: 0.0,
        })
    }

    /// glyph.py's `reconcileLimits`.
    fn reconcile(&mut self) -> Result<(), GraphError> {
        if self.min < self.max {
            return Ok(());
        }
        let min_fixed = self.min_source == Source::Min;
        let max_fixed = matches!(self.max_source, Source::Max | Source::Limit);
        if min_fixed && max_fixed {
            return Err(GraphError::Axis(format!(
                "The {} must be less than the {}",
                "min",
                if self.max_source == Source::Max {
                    "max"
                } else {
                    "limit"
                }
            )));
        } else if min_fixed {
            self.max = self.min + choose_delta(self.min);
        } else if max_fixed {
            self.min = self.max - choose_delta(self.max);
        } else {
            let delta = choose_delta(self.min.abs().max(self.max.abs()));
            let average = (self.min + self.max) / 2.0;
            self.min = average - delta;
            self.max = average + delta;
        }
        Ok(())
    }

    /// The user's `yMin`, `yMax` and `yLimit` (glyph.py's `applySettings`).
    pub fn apply(
        &mut self,
        min: Option<f64>,
        max: Option<AxisMax>,
        limit: Option<f64>,
    ) -> Result<(), GraphError> {
        if let Some(m) = min {
            self.min_source = Source::Min;
            self.min = finite(m, "axis min")?;
        }
        match max {
            Some(AxisMax::Max) => self.max_source = Source::Extremum,
            Some(AxisMax::Value(m)) => {
                self.max_source = Source::Max;
                self.max = finite(m, "axis max")?;
            }
            None => {}
        }
        match limit {
            None => self.limit = None,
            Some(l) if l < self.max => {
                self.max = finite(l, "axis limit")?;
                self.max_source = Source::Limit;
                self.limit = None;
            }
            Some(l) if l.is_infinite() => self.limit = None,
            Some(l) => self.limit = Some(l),
        }
        self.reconcile()
    }

    /// A fixed step (`yStep`); ignored on a log axis.
    pub fn set_step(&mut self, step: f64) -> Result<(), GraphError> {
        if self.log_base.is_none() {
            self.step = Some(finite(step, "axis step")?);
        }
        Ok(())
    }

    fn steps(&self, min_step: f64) -> impl Iterator<Item = f64> {
        let (base, mantissas, mut exponent): (f64, &'static [f64], f64) = if self.binary {
            (2.0, &[1.0], (min_step.log2() - EPSILON).floor())
        } else {
            (10.0, &[1.0, 2.0, 5.0], (min_step.log10() - EPSILON).floor())
        };
        let mut queue: Vec<f64> = Vec::new();
        std::iter::from_fn(move || loop {
            if let Some(v) = queue.pop() {
                return Some(v);
            }
            let multiplier = base.powf(exponent);
            for m in mantissas.iter().rev() {
                let value = m * multiplier;
                if value >= min_step * (1.0 - EPSILON) {
                    queue.push(value);
                }
            }
            exponent += 1.0;
        })
    }

    fn slop(&self, step: f64, divisor: f64) -> Option<f64> {
        let bottom = step * (self.min / step + EPSILON).floor();
        let top = bottom + step * divisor;
        (top >= self.max - EPSILON * step).then(|| (top - self.max).max(self.min - bottom))
    }

    /// Picks the step that wastes the least room for one of `divisors` tick counts
    /// (glyph.py's `chooseStep`); powers of two when `binary`.
    pub fn choose_step(&mut self, divisors: &[i64], binary: bool) {
        if self.log_base.is_some() {
            self.step = None;
            return;
        }
        self.binary = binary;
        if self.min == self.max {
            if self.min == 0.0 {
                self.max = 1.0;
            } else if self.min < 0.0 {
                self.min *= 1.1;
                self.max *= 0.9;
            } else {
                self.min *= 0.9;
                self.max *= 1.1;
            }
        }
        let variance = self.max - self.min;
        let dmax = *divisors.iter().max().unwrap_or(&6) as f64;
        let dmin = *divisors.iter().min().unwrap_or(&4) as f64;
        let mut best: Option<(f64, f64)> = None;
        {
            for (n, step) in self.steps(variance / dmax).enumerate() {
                if let Some((slop, _)) = best {
                    if step * dmin >= 2.0 * slop + variance {
                        break;
                    }
                }
                for d in divisors {
                    if let Some(slop) = self.slop(step, *d as f64) {
                        if best.is_none_or(|(b, _)| slop < b) {
                            best = Some((slop, step));
                        }
                    }
                }
                if n > 10_000 {
                    break;
                }
            }
        }
        self.step = best.map(|(_, s)| s);
    }

    /// Snaps the bounds to the step (glyph.py's `chooseLimits`).
    pub fn choose_limits(&mut self) -> Result<(), GraphError> {
        if let Some(base) = self.log_base {
            if self.min <= 0.0 {
                return Err(GraphError::Axis(
                    "Logarithmic scale specified with a dataset with a minimum value less than or equal to zero".into(),
                ));
            }
            self.bottom = base.powf(self.min.log(base).floor());
            self.top = base.powf(self.max.log(base).ceil());
            self.span = self.top - self.bottom;
            if self.span == 0.0 {
                self.top *= base;
                self.span = self.top - self.bottom;
            }
            return Ok(());
        }
        let step = self
            .step
            .ok_or_else(|| GraphError::Axis("no axis step could be chosen".into()))?;
        self.bottom = if self.min_source == Source::Data {
            step * (self.min / step + EPSILON).floor()
        } else {
            self.min
        };
        if self.max_source == Source::Data {
            self.top = step * (self.max / step - EPSILON).ceil();
            if let Some(l) = self.limit {
                if self.top > l + EPSILON * step {
                    self.top = l;
                }
            }
        } else {
            self.top = self.max;
        }
        self.span = self.top - self.bottom;
        if self.span == 0.0 {
            self.top += 1.0;
            self.span += 1.0;
        }
        Ok(())
    }

    /// The values that get a label and a major grid line (glyph.py's `getLabelValues`).
    pub fn label_values(&mut self) -> Result<Vec<f64>, GraphError> {
        let mut values = Vec::new();
        if let Some(base) = self.log_base {
            let mut v = base.powf((self.bottom.log(base) - EPSILON).ceil());
            while v < self.top * (1.0 + EPSILON) && values.len() < MAX_LABELS {
                values.push(v);
                v *= base;
            }
            return Ok(values);
        }
        let mut step = self.step.unwrap_or(0.0);
        if step <= 0.0 {
            return Err(GraphError::Axis("The step size must be positive".into()));
        }
        if self.span > 1000.0 * step {
            self.choose_step(&[4, 5, 6], false);
            step = self.step.unwrap_or(step);
        }
        let start = step * (self.bottom / step - EPSILON).ceil();
        let mut i = 0.0;
        loop {
            let v = start + i * step;
            if v > self.top + EPSILON * step || values.len() >= MAX_LABELS {
                break;
            }
            values.push(v);
            i += 1.0;
        }
        Ok(values)
    }

    /// The label of `value`, as glyph.py's `makeLabel` (note the trailing space when there is
    /// no unit prefix: graphite-web's labels have it, and it counts in their width).
    pub fn label(&self, value: f64) -> String {
        let (v, prefix) = format_units(value, self.step, self.unit_system);
        let (span, span_prefix) = format_units(self.span, self.step, self.unit_system);
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix} ")
        };
        if v < 0.1 {
            format!("{} {prefix}", format_g(v))
        } else if v < 1.0 {
            format!("{} {prefix}", format_f(v, 2))
        } else if span > 10.0 || span_prefix != prefix.as_str() {
            // glyph.py compares the span's bare prefix with the value's spaced one.
            format!("{} {prefix}", format_f(v, 1))
        } else if span > 3.0 {
            format!("{} {prefix}", format_f(v, 1))
        } else if span > 0.1 {
            format!("{} {prefix}", format_f(v, 2))
        } else {
            format!("{} {prefix}", format_g(v))
        }
    }
}

/// The prefixes of a unit system, largest first (glyph.py's `UnitSystems`).
fn prefixes(system: UnitSystem) -> &'static [(&'static str, f64)] {
    const K: f64 = 1024.0;
    match system {
        UnitSystem::Binary => &[
            ("Pi", K * K * K * K * K),
            ("Ti", K * K * K * K),
            ("Gi", K * K * K),
            ("Mi", K * K),
            ("Ki", K),
        ],
        UnitSystem::Si => &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)],
        UnitSystem::Sec => &[
            ("Y", 31_536_000.0),
            ("M", 2_592_000.0),
            ("D", 86_400.0),
            ("H", 3_600.0),
            ("m", 60.0),
        ],
        UnitSystem::Msec => &[
            ("Y", 31_536_000_000.0),
            ("M", 2_592_000_000.0),
            ("D", 86_400_000.0),
            ("H", 3_600_000.0),
            ("m", 60_000.0),
            ("s", 1_000.0),
        ],
        UnitSystem::None => &[],
    }
}

/// glyph.py's `format_units`: `v` in the largest unit of `system` it and `step` reach.
pub fn format_units(v: f64, step: Option<f64>, system: UnitSystem) -> (f64, &'static str) {
    for (prefix, size) in prefixes(system) {
        if v.abs() >= *size && step.is_none_or(|s| s >= *size) {
            let mut v2 = v / size;
            if (v2 - v2.floor()) < 0.000_000_000_01 && v > 1.0 {
                v2 = v2.floor();
            }
            return (v2, prefix);
        }
    }
    let mut v = v;
    if (v - v.floor()) < 0.000_000_000_01 && v > 1.0 {
        v = v.floor();
    }
    (v, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(min: f64, max: f64) -> (Vec<f64>, Vec<String>) {
        let mut t = AxisTicks::new(min, max, UnitSystem::Si, None).unwrap();
        t.apply(None, None, None).unwrap();
        t.choose_step(&[4, 5, 6], false);
        t.choose_limits().unwrap();
        let v = t.label_values().unwrap();
        let l = v.iter().map(|v| t.label(*v)).collect();
        (v, l)
    }

    #[test]
    fn snaps_to_ticks_as_graphite_web() {
        // graphite-web 1.1.8's labels for these data ranges (pycairo-free: _LinearAxisTics).
        let (v, l) = axis(0.0, 9.0);
        assert_eq!(v, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(l, ["0 ", "2.0 ", "4.0 ", "6.0 ", "8.0 ", "10.0 "]);
        let (_, l) = axis(0.0, 2500.0);
        assert_eq!(l.last().unwrap(), "2500.0 ");
        assert_eq!(axis(0.0, 0.5).1[1], "0.10 ");
        assert_eq!(
            axis(3.0, 3.2).1,
            ["3.00 ", "3.05 ", "3.10 ", "3.15 ", "3.20 "]
        );
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_g(1234567.0), "1.23457e+06");
        assert_eq!(format_g(0.05), "0.05");
    }
}
