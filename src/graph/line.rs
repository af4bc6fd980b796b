//! One series made ready to draw: consolidated to at most a point per pixel (graphite-web's
//! `consolidateDataPoints`), stacked for `areaMode=stacked`, nulls drawn as zero for
//! `drawNullAsZero`, with its colour (the `color` hint or the next of `colorList`, with
//! `alpha`) and the hints that say how it is drawn.
//!
//! Knows nothing of pixels beyond the width it consolidates to; it never draws.

use super::color::{parse_color, Rgba};
use super::params::GraphParams;
use crate::query::Series;

/// A series as drawn: points (timestamp, value-or-null), its colour and style.
pub struct Line {
    /// The legend name.
    pub name: String,
    /// (epoch seconds, value); `None` breaks the line.
    pub points: Vec<(i64, Option<f64>)>,
    /// Stroke colour; fills use it with less alpha.
    pub color: Rgba,
    /// Stroke width in pixels (rounded when drawn, at least 1).
    pub width: f64,
    /// `dashed()`: dash length.
    pub dashed: Option<f64>,
    /// `drawAsInfinite()`: a full-height line at each non-zero value.
    pub infinite: bool,
    /// Drawn as a filled area down to the axis (`stacked` or `areaMode`).
    pub fill: bool,
    /// One bound of an `areaBetween` band.
    pub area_between: bool,
    /// On the right-hand value axis (`secondYAxis()`).
    pub second_axis: bool,
}

/// The lines of `series` in order, consolidated for a plot `plot_width` pixels wide.
pub fn prepare(series: &[Series], p: &GraphParams, plot_width: u32) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut stack: Vec<f64> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let mut s = s.clone();
        // At most one point per pixel, as graphite-web consolidates for drawing.
        let n = s.consolidated().len().max(1);
        let vpp = n.div_ceil(plot_width.max(1) as usize).max(1);
        if vpp > 1 {
            s.consolidate(s.values_per_point * vpp);
        }
        let mut points: Vec<(i64, Option<f64>)> = s
            .datapoints()
            .into_iter()
            .map(|(v, t)| {
                (
                    t,
                    if p.draw_null_as_zero {
                        Some(v.unwrap_or(0.0))
                    } else {
                        v
                    },
                )
            })
            .collect();
        // areaMode=stacked stacks here; `stacked()` already stacked its values.
        if p.area_mode == "stacked" && s.hints.stacked.is_none() {
            if stack.len() < points.len() {
                stack.resize(points.len(), 0.0);
            }
            for (j, pt) in points.iter_mut().enumerate() {
                if let Some(v) = pt.1 {
                    stack[j] += v;
                    pt.1 = Some(stack[j]);
                }
            }
        }
        let mut color = s
            .hints
            .color
            .as_deref()
            .and_then(parse_color)
            .unwrap_or_else(|| p.color_list[i % p.color_list.len().max(1)]);
        if let Some(a) = s.hints.alpha {
            color.3 = a.clamp(0.0, 1.0);
        }
        lines.push(Line {
            name: s.name.clone(),
            points,
            color,
            width: s.hints.line_width.unwrap_or(p.line_width),
            dashed: s.hints.dashed,
            infinite: s.hints.draw_as_infinite,
            fill: s.hints.stacked.is_some()
                || p.area_mode == "stacked"
                || p.area_mode == "all"
                || (p.area_mode == "first" && i == 0),
            area_between: s.hints.area_between,
            second_axis: s.hints.second_y_axis,
        });
    }
    lines
}
