//! The value (y) axes, as graphite-web's `setupYAxis` / `setupTwoYAxes` and the y half of
//! `drawLabels`: the range of the values rounded out to "nice" ticks, honouring `yMin` /
//! `yMax` on the left axis; a second axis on the right for `secondYAxis` series; tick labels
//! with SI prefixes (`yUnitSystem=si`, graphite-web's default), whose width is taken off the
//! sides of the [`Area`].
//!
//! Knows values and ticks; the pixel mapping is [`super::plot`]'s.

use plotters::prelude::DrawingBackend;

use super::area::Area;
use super::canvas::Canvas;
use super::error::GraphError;
use super::line::Line;
use super::scale::Scale;
use super::text::{text_width, HAlign, VAlign};

/// Most ticks on one axis.
const MAX_TICKS: usize = 200;

/// Pixels between a tick label and the axis line.
const LABEL_GAP: i32 = 5;

/// Room for a label column beyond the widest label, in pixels.
const LABEL_PAD: i32 = 8;

/// One value axis: the range it spans and its ticks.
pub struct ValueAxis {
    /// Bottom of the axis.
    pub lo: f64,
    /// Top of the axis.
    pub hi: f64,
    /// The tick values, from `lo` up.
    pub ticks: Vec<f64>,
}

/// The left value axis and, when some series is on `secondYAxis`, the right one.
pub struct ValueAxes {
    /// For the series not on the second axis (and the grid).
    pub left: ValueAxis,
    /// For the `secondYAxis` series.
    pub right: Option<ValueAxis>,
}

impl ValueAxes {
    /// The axes for `lines` on a plot about `plot_height` pixels high: about one tick per 2.5
    /// lines of text, 2 to 10 of them. `y_min` / `y_max` bound the left axis only.
    pub fn setup(
        lines: &[Line],
        y_min: Option<f64>,
        y_max: Option<f64>,
        plot_height: i32,
        line_h: i32,
    ) -> ValueAxes {
        let target_ticks = (plot_height as f64 / (line_h as f64 * 2.5)).clamp(2.0, 10.0);
        let left_lines = || lines.iter().filter(|l| !l.second_axis);
        let right_lines = || lines.iter().filter(|l| l.second_axis);
        let axis = |(lo, hi, step): (f64, f64, f64)| ValueAxis {
            lo,
            hi,
            ticks: y_ticks(lo, hi, step),
        };
        ValueAxes {
            left: axis(y_range(left_lines(), y_min, y_max, target_ticks)),
            right: right_lines()
                .next()
                .is_some()
                .then(|| axis(y_range(right_lines(), None, None, target_ticks))),
        }
    }

    /// Takes the label columns off the sides of `area` (the left one, and the right one for a
    /// second axis), and half a line off the top so the top label fits.
    pub fn take_label_room(&self, area: &mut Area, font_px: f32, line_h: i32) {
        area.take_left(label_width(&self.left.ticks, font_px));
        if let Some(right) = &self.right {
            area.take_right(label_width(&right.ticks, font_px));
        }
        area.take_top(line_h / 2);
    }
}

/// Width of a label column: the widest label and some room.
fn label_width(ticks: &[f64], font_px: f32) -> i32 {
    ticks
        .iter()
        .map(|t| text_width(&format_si(*t), font_px).ceil() as i32)
        .max()
        .unwrap_or(0)
        + LABEL_PAD
}

/// Draws the left axis' tick marks and labels left of `area`.
pub fn draw_left_labels<DB: DrawingBackend>(
    canvas: &mut Canvas<'_, DB>,
    area: &Area,
    axis: &ValueAxis,
    scale: &Scale,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    for t in &axis.ticks {
        let y = scale.y(*t);
        canvas.path(vec![(area.left - 3, y), (area.left, y)], canvas.fg_color())?;
        canvas.text(
            format_si(*t),
            (area.left - LABEL_GAP, y),
            canvas.font_px,
            (HAlign::Right, VAlign::Middle),
        );
    }
    Ok(())
}

/// Draws the right axis' line and labels right of `area`.
pub fn draw_right_labels<DB: DrawingBackend>(
    canvas: &mut Canvas<'_, DB>,
    area: &Area,
    axis: &ValueAxis,
    scale: &Scale,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    canvas.path(
        vec![(area.right, area.top), (area.right, area.bottom)],
        canvas.fg_color(),
    )?;
    for t in &axis.ticks {
        let y = scale.y(*t);
        canvas.text(
            format_si(*t),
            (area.right + LABEL_GAP, y),
            canvas.font_px,
            (HAlign::Left, VAlign::Middle),
        );
    }
    Ok(())
}

/// A "nice" tick step (1, 2, 2.5 or 5 × 10ⁿ) giving about `ticks` steps over `range`.
pub fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks.max(1.0)).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Value-axis labels with SI prefixes, as graphite-web's default `yUnitSystem=si`.
pub fn format_si(v: f64) -> String {
    let a = v.abs();
    let (d, suffix) = if a >= 1e15 {
        (1e15, "P")
    } else if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "K")
    } else {
        (1.0, "")
    };
    let x = v / d;
    let s = if (x - x.round()).abs() < 1e-9 {
        format!("{:.0}", x)
    } else if x.abs() >= 10.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// Value range of `lines` with the `yMin`/`yMax` bounds, rounded out to whole ticks; returns
/// (low, high, tick step). `drawAsInfinite` lines do not count; a filled line brings in zero.
fn y_range<'a>(
    lines: impl Iterator<Item = &'a Line> + Clone,
    y_min: Option<f64>,
    y_max: Option<f64>,
    ticks: f64,
) -> (f64, f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for l in lines.clone().filter(|l| !l.infinite) {
        for v in l
            .points
            .iter()
            .filter_map(|(_, v)| *v)
            .filter(|v| v.is_finite())
        {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if lines.clone().any(|l| l.fill) {
        lo = lo.min(0.0);
    }
    let mut lo = y_min.unwrap_or(lo);
    let mut hi = y_max.unwrap_or(hi);
    if hi <= lo {
        if y_max.is_none() {
            hi = lo + if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        } else {
            lo = hi - 1.0;
        }
    }
    let step = nice_step(hi - lo, ticks);
    if y_min.is_none() {
        lo = (lo / step).floor() * step;
    }
    if y_max.is_none() {
        hi = (hi / step).ceil() * step;
        if hi <= lo {
            hi = lo + step;
        }
    }
    (lo, hi, step)
}

/// Value ticks from `lo` to `hi` every `step`.
fn y_ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut k = (lo / step).ceil();
    while k * step <= hi + step * 1e-9 && out.len() < MAX_TICKS {
        out.push(k * step);
        k += 1.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_labels_and_value_ticks() {
        assert_eq!(format_si(1500.0), "1.5K");
        assert_eq!(format_si(2e6), "2M");
        assert_eq!(format_si(0.25), "0.25");
        assert_eq!(format_si(0.0), "0");
        assert_eq!(y_ticks(0.0, 10.0, 2.5), vec![0.0, 2.5, 5.0, 7.5, 10.0]);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
    }
}
