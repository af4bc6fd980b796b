//! The legend under the plot, as graphite-web's `drawLegend`: a colour box and the series name
//! per entry, entries in rows wrapped to the width, at most half the image high. It takes its
//! rows off the bottom of the [`Area`].
//!
//! Decides only the legend's own placement; it never touches the plot.

use plotters::prelude::DrawingBackend;

use super::area::Area;
use super::canvas::Canvas;
use super::error::GraphError;
use super::line::Line;
use super::params::GraphParams;
use super::text::{text_width, HAlign, VAlign};

/// Most characters of a name shown.
const MAX_NAME_CHARS: usize = 120;

/// Series shown in a legend by default: graphite-web's `LEGEND_MAX_ITEMS`.
const LEGEND_MAX_ITEMS: usize = 10;

/// Whether the legend is drawn: never with `graphOnly`; else as `hideLegend` says, or, when it
/// is not given, for at most [`LEGEND_MAX_ITEMS`] series.
pub fn shown(p: &GraphParams, series: usize) -> bool {
    !p.graph_only
        && p.hide_legend
            .map(|hl| !hl)
            .unwrap_or(series <= LEGEND_MAX_ITEMS)
}

/// Draws one entry per line at the bottom of `area` and takes the legend (and a gap of 4
/// pixels) off the bottom. Rows that do not fit in half the image are left out.
pub fn draw_legend<DB: DrawingBackend>(
    canvas: &mut Canvas<'_, DB>,
    area: &mut Area,
    lines: &[Line],
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    let font_px = canvas.font_px;
    let line_h = canvas.line_h;
    let (_, image_h) = canvas.size();
    let box_px = (font_px * 0.8).round() as i32;
    let row_h = line_h + 3;
    let shown_name = |l: &Line| -> String { l.name.chars().take(MAX_NAME_CHARS).collect() };

    // Rows of (line index, x), each entry as wide as its box, gap, name and padding.
    let mut rows: Vec<Vec<(usize, i32)>> = vec![Vec::new()];
    let mut x = area.left;
    for (i, l) in lines.iter().enumerate() {
        let entry_w = box_px + 5 + text_width(&shown_name(l), font_px).ceil() as i32 + 14;
        if x + entry_w > area.right && !rows.last().is_some_and(|r| r.is_empty()) {
            rows.push(Vec::new());
            x = area.left;
        }
        rows.last_mut().expect("a row").push((i, x));
        x += entry_w;
    }

    let legend_h = (rows.len() as i32 * row_h).min(image_h / 2);
    let legend_top = area.bottom - legend_h;
    for (r, row) in rows.iter().enumerate() {
        let y = legend_top + r as i32 * row_h;
        if y + row_h > area.bottom + 1 {
            break;
        }
        for &(i, x) in row {
            let l = &lines[i];
            let by = y + (line_h - box_px) / 2;
            canvas.rect([(x, by), (x + box_px, by + box_px)], l.color)?;
            canvas.text(
                shown_name(l),
                (x + box_px + 5, y),
                font_px,
                (HAlign::Left, VAlign::Top),
            );
        }
    }
    area.take_bottom(legend_h + 4);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_up_to_ten_series_unless_told() {
        let p = GraphParams::default();
        assert!(shown(&p, 10));
        assert!(!shown(&p, 11));
        let forced = GraphParams {
            hide_legend: Some(false),
            ..GraphParams::default()
        };
        assert!(shown(&forced, 20));
        let hidden = GraphParams {
            hide_legend: Some(true),
            ..GraphParams::default()
        };
        assert!(!shown(&hidden, 1));
        let graph_only = GraphParams {
            graph_only: true,
            ..forced
        };
        assert!(!shown(&graph_only, 1));
    }
}
