//! The axes around the plot, as graphite-web's `drawLabels` plus the axis lines: the left and
//! bottom edges in the foreground colour, then the value labels ([`super::value_axis`], the
//! right axis too when there is one) and the time labels ([`super::time_axis`]).
//!
//! Draws outside the plot only, in the room the axes took; it never moves the plot.

use chrono_tz::Tz;
use plotters::prelude::DrawingBackend;

use super::canvas::Canvas;
use super::error::GraphError;
use super::plot::Plot;
use super::time_axis::TimeAxis;
use super::value_axis::{draw_left_labels, draw_right_labels, ValueAxes};

/// Draws the axis lines and every label, times in `tz`.
pub fn draw_axes<DB: DrawingBackend>(
    canvas: &mut Canvas<'_, DB>,
    plot: &Plot,
    values: &ValueAxes,
    times: &TimeAxis,
    tz: &Tz,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    let a = plot.area;
    canvas.path(
        vec![(a.left, a.top), (a.left, a.bottom), (a.right, a.bottom)],
        canvas.fg_color(),
    )?;
    draw_left_labels(canvas, &a, &values.left, &plot.left)?;
    if let (Some(axis), Some(scale)) = (&values.right, &plot.right) {
        draw_right_labels(canvas, &a, axis, scale)?;
    }
    times.draw_labels(canvas, plot, tz)
}
