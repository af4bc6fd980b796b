//! The text that frames a graph: its `title` across the top (graphite-web's `drawTitle`), the
//! `vtitle` up the left side (`drawVTitle`), and the `noDataMessage` drawn instead of a plot.
//!
//! Each takes its strip off the [`Area`]; none of them draws a shape.

use plotters::prelude::DrawingBackend;

use super::area::Area;
use super::canvas::Canvas;
use super::text::{line_height, HAlign, VAlign};

/// Gap under the title, in pixels.
const TITLE_GAP: i32 = 4;

/// Gap right of the vtitle, in pixels.
const VTITLE_GAP: i32 = 2;

/// Writes `title` centred at the top of `area` at 1.2 × the font size and takes its line (and
/// a small gap) off the top.
pub fn draw_title<DB: DrawingBackend>(canvas: &mut Canvas<'_, DB>, area: &mut Area, title: &str)
where
    DB::ErrorType: 'static,
{
    let size = canvas.font_px * 1.2;
    canvas.text(
        title,
        (area.center_x(), area.top),
        size,
        (HAlign::Center, VAlign::Top),
    );
    area.take_top(line_height(size).ceil() as i32 + TITLE_GAP);
}

/// Writes `vtitle` reading upwards along the left edge of `area`, centred on its height, and
/// takes its line (and a small gap) off the left.
pub fn draw_vtitle<DB: DrawingBackend>(canvas: &mut Canvas<'_, DB>, area: &mut Area, vtitle: &str)
where
    DB::ErrorType: 'static,
{
    canvas.vertical_text(vtitle, (area.left, area.center_y()));
    area.take_left(canvas.line_h + VTITLE_GAP);
}

/// Writes `message` (the `noDataMessage`, "No Data" by default) in the middle of `area` at
/// 1.8 × the font size: the whole picture when no series has a value.
pub fn draw_no_data<DB: DrawingBackend>(canvas: &mut Canvas<'_, DB>, area: &Area, message: &str)
where
    DB::ErrorType: 'static,
{
    let size = canvas.font_px * 1.8;
    canvas.text(
        message,
        (area.center_x(), area.center_y()),
        size,
        (HAlign::Center, VAlign::Middle),
    );
}
