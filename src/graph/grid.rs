//! The grid behind the series, as graphite-web's `drawGridLines`: a major line at each value
//! tick and time tick, a minor line halfway between value ticks (`majorGridLineColor`,
//! `minorGridLineColor`).
//!
//! Draws inside the plot only; it takes no room and writes no text.

use plotters::prelude::DrawingBackend;

use super::canvas::{rgba, Canvas};
use super::color::Rgba;
use super::error::GraphError;
use super::plot::Plot;

/// Draws the minor lines, then the major value lines, then the major time lines, at the left
/// value axis' `value_ticks` and at `time_ticks`.
pub fn draw_grid<DB: DrawingBackend>(
    canvas: &Canvas<'_, DB>,
    plot: &Plot,
    value_ticks: &[f64],
    time_ticks: &[i64],
    (minor, major): (Rgba, Rgba),
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    let area = plot.area;
    let (minor, major) = (rgba(minor), rgba(major));
    for pair in value_ticks.windows(2) {
        let y = plot.left.y((pair[0] + pair[1]) / 2.0);
        canvas.path(vec![(area.left, y), (area.right, y)], minor)?;
    }
    for t in value_ticks {
        let y = plot.left.y(*t);
        canvas.path(vec![(area.left, y), (area.right, y)], major)?;
    }
    for t in time_ticks {
        let x = plot.x(*t);
        canvas.path(vec![(x, area.top), (x, area.bottom)], major)?;
    }
    Ok(())
}
