//! The plot: the [`Area`] left once title, legend and axis labels have taken theirs, and the
//! scales that map (time, value) to its pixels, one per value axis, as graphite-web's
//! `getYCoord` and `xScaleFactor` do. The value scale runs upwards; the time scale spans the
//! width.
//!
//! Maps coordinates only (with plotters' `Cartesian2d`); it never draws.

use super::area::Area;
use super::line::Line;
use super::scale::Scale;
use super::value_axis::ValueAxes;

/// Least width and height of a plot, in pixels; smaller pictures get no plot.
pub const MIN_PLOT_PX: i32 = 10;

/// The plot area and its scales.
pub struct Plot {
    /// The rectangle the series are drawn in; the axes are its left and bottom edges.
    pub area: Area,
    /// The scale of the left value axis (and of the grid and `areaBetween` bands).
    pub left: Scale,
    /// The scale of the `secondYAxis` series.
    pub right: Option<Scale>,
}

impl Plot {
    /// The plot on `area` showing `span` (epoch seconds) against `axes`; `None` when `area` is
    /// narrower or lower than [`MIN_PLOT_PX`].
    pub fn new(area: Area, span: (i64, i64), axes: &ValueAxes) -> Option<Plot> {
        if area.width() < MIN_PLOT_PX || area.height() < MIN_PLOT_PX {
            return None;
        }
        Some(Plot {
            left: Scale::new(&area, span, (axes.left.lo, axes.left.hi)),
            right: axes
                .right
                .as_ref()
                .map(|a| Scale::new(&area, span, (a.lo, a.hi))),
            area,
        })
    }

    /// The pixel column of time `t`.
    pub fn x(&self, t: i64) -> i32 {
        self.left.px(&(t, self.left.lo)).0
    }

    /// The scale `line` is drawn on: the right one for a `secondYAxis` line.
    pub fn scale_of(&self, line: &Line) -> &Scale {
        match &self.right {
            Some(right) if line.second_axis => right,
            _ => &self.left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::value_axis::ValueAxis;

    fn axes() -> ValueAxes {
        ValueAxes {
            left: ValueAxis {
                lo: 0.0,
                hi: 10.0,
                ticks: vec![0.0, 5.0, 10.0],
            },
            right: None,
        }
    }

    #[test]
    fn scales_span_the_area_upwards() {
        let area = Area {
            left: 40,
            top: 10,
            right: 140,
            bottom: 110,
        };
        let plot = Plot::new(area, (1000, 2000), &axes()).unwrap();
        assert_eq!(plot.left.px(&(1000, 0.0)), (40, 109));
        assert_eq!(plot.left.px(&(2000, 10.0)), (139, 10));
        assert_eq!(plot.x(1500), plot.left.px(&(1500, 3.0)).0);
        assert!(plot.right.is_none());
        let tiny = Area { bottom: 19, ..area };
        assert!(Plot::new(tiny, (1000, 2000), &axes()).is_none());
    }
}
