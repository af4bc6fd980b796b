//! [`Scale`]: one value axis' mapping of (time, value) to the pixels of the plot, as
//! graphite-web's `getYCoord` and `xScaleFactor` do; the value scale runs upwards. Maps
//! coordinates only; it never draws.

use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::types::{RangedCoordf64, RangedCoordi64};
use plotters::coord::CoordTranslate;

use super::area::Area;

/// One value axis' mapping of (time, value) to pixels of the image.
pub struct Scale {
    coords: Cartesian2d<RangedCoordi64, RangedCoordf64>,
    start: i64,
    /// Value at the bottom edge.
    pub lo: f64,
    /// Value at the top edge.
    pub hi: f64,
}

impl Scale {
    /// `start..end` across `area`, `lo..hi` up it: the last pixel column and row are the
    /// ends, as plotters' `ChartBuilder` maps a drawing area.
    pub fn new(area: &Area, (start, end): (i64, i64), (lo, hi): (f64, f64)) -> Scale {
        Scale {
            coords: Cartesian2d::new(
                start..end,
                lo..hi,
                (area.left..area.right - 1, area.bottom - 1..area.top),
            ),
            start,
            lo,
            hi,
        }
    }

    /// The pixel of `(time, value)`.
    pub fn px(&self, point: &(i64, f64)) -> (i32, i32) {
        self.coords.translate(point)
    }

    /// The pixel row of value `v`.
    pub fn y(&self, v: f64) -> i32 {
        self.px(&(self.start, v)).1
    }
}
