//! The series themselves, as graphite-web's `drawLines`: filled areas first (`areaMode`,
//! `stacked`; the largest stack first), then `areaBetween` bands, then every line on top;
//! nulls break a line, a lone point is a dot, `dashed` lines are dashed and
//! `drawAsInfinite` lines span the plot's height at each non-zero value.
//!
//! Draws inside the plot only; values far outside the axis are clamped to a span beyond it.

use plotters::prelude::DrawingBackend;
use plotters::style::{RGBAColor, ShapeStyle};

use super::canvas::{rgba, Canvas};
use super::error::GraphError;
use super::line::Line;
use super::plot::Plot;

/// Alpha of an area fill, relative to its line's.
const FILL_ALPHA: f64 = 0.6;

/// Alpha of an `areaBetween` band, relative to its upper line's.
const BAND_ALPHA: f64 = 0.5;

/// Draws `lines` on `plot`: fills, bands, then strokes.
pub fn draw_lines<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    lines: &[Line],
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    for l in lines.iter().rev().filter(|l| l.fill && !l.infinite) {
        draw_fill(canvas, plot, l)?;
    }
    // areaBetween: consecutive pairs of flagged series bound a filled band.
    let between: Vec<&Line> = lines.iter().filter(|l| l.area_between).collect();
    for pair in between.chunks(2) {
        if let [upper, lower] = pair {
            draw_band(canvas, plot, upper, lower)?;
        }
    }
    for l in lines {
        draw_stroke(canvas, plot, l)?;
    }
    Ok(())
}

/// The runs of non-null finite points of `l`, values clamped to one axis span beyond
/// `lo..hi` either way.
fn runs(l: &Line, lo: f64, hi: f64) -> Vec<Vec<(i64, f64)>> {
    let mut runs = Vec::new();
    let mut run: Vec<(i64, f64)> = Vec::new();
    let span = hi - lo;
    for (t, v) in &l.points {
        match v.filter(|v| v.is_finite()) {
            Some(v) => run.push((*t, v.clamp(lo - span, hi + span))),
            None => {
                if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
            }
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Fills each run of `l` down (or up) to zero, or to the axis' nearer end when zero is off
/// it.
fn draw_fill<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    l: &Line,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    let fill = RGBAColor(l.color.0, l.color.1, l.color.2, l.color.3 * FILL_ALPHA);
    let scale = plot.scale_of(l);
    let base = scale.lo.max(0.0).min(scale.hi);
    for r in runs(l, scale.lo, scale.hi) {
        let mut poly: Vec<(i32, i32)> = r.iter().map(|pt| scale.px(pt)).collect();
        poly.push(scale.px(&(r[r.len() - 1].0, base)));
        poly.push(scale.px(&(r[0].0, base)));
        canvas.polygon(poly, fill)?;
    }
    Ok(())
}

/// Fills the band between `upper` and `lower` where both have values, on the left axis.
fn draw_band<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    upper: &Line,
    lower: &Line,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    let c = upper.color;
    let fill = RGBAColor(c.0, c.1, c.2, c.3 * BAND_ALPHA);
    let scale = &plot.left;
    let (lo, hi) = (scale.lo, scale.hi);
    let mut top = Vec::new();
    let mut bottom = Vec::new();
    for ((t, va), (_, vb)) in upper.points.iter().zip(lower.points.iter()) {
        if let (Some(x), Some(y)) = (va, vb) {
            top.push(scale.px(&(*t, x.clamp(lo, hi))));
            bottom.push(scale.px(&(*t, y.clamp(lo, hi))));
        }
    }
    if top.len() > 1 {
        bottom.reverse();
        top.extend(bottom);
        canvas.polygon(top, fill)?;
    }
    Ok(())
}

/// Strokes `l`: its runs (dots for lone points, dashed when asked), or for `drawAsInfinite`
/// a full-height line at each non-zero value.
fn draw_stroke<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    l: &Line,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    let style = ShapeStyle {
        color: rgba(l.color),
        filled: false,
        stroke_width: l.width.round().max(1.0) as u32,
    };
    let scale = plot.scale_of(l);
    if l.infinite {
        let area = plot.area;
        for (t, v) in &l.points {
            if v.is_some_and(|v| v != 0.0) {
                let (x, _) = scale.px(&(*t, scale.lo));
                canvas.path(vec![(x, area.top), (x, area.bottom)], style)?;
            }
        }
        return Ok(());
    }
    for r in runs(l, scale.lo, scale.hi) {
        let px: Vec<(i32, i32)> = r.iter().map(|pt| scale.px(pt)).collect();
        if px.len() == 1 {
            canvas.dot(px[0], style.filled())?;
        } else if let Some(d) = l.dashed {
            let len = (d.max(1.0) * 2.0) as u32;
            canvas.dashed_path(px, len, style)?;
        } else {
            canvas.path(px, style)?;
        }
    }
    Ok(())
}
