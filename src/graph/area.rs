//! The rectangle of the image still free for drawing, as graphite-web's `glyph.py` keeps it in
//! its `area` dict (`xmin`, `xmax`, `ymin`, `ymax`): each drawing step (title, legend, vtitle,
//! axis labels) takes its strip off one side and hands the rest on; what is left is the plot.
//!
//! Pure arithmetic on pixels; it never draws.

/// A rectangle in whole pixels of the image. `right` and `bottom` are one past the last
/// pixel the plot's scales map to; the axis lines are drawn on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// Left edge (graphite-web's `xmin`).
    pub left: i32,
    /// Top edge (`ymin`).
    pub top: i32,
    /// Right edge (`xmax`).
    pub right: i32,
    /// Bottom edge (`ymax`).
    pub bottom: i32,
}

impl Area {
    /// The whole `width × height` image less `margin` pixels on every side.
    pub fn inset(width: i32, height: i32, margin: i32) -> Area {
        Area {
            left: margin,
            top: margin,
            right: width - margin,
            bottom: height - margin,
        }
    }

    /// Width in pixels (negative when the steps took more than there was).
    pub fn width(&self) -> i32 {
        self.right - self.left
    }

    /// Height in pixels (negative when the steps took more than there was).
    pub fn height(&self) -> i32 {
        self.bottom - self.top
    }

    /// The horizontal centre.
    pub fn center_x(&self) -> i32 {
        (self.left + self.right) / 2
    }

    /// The vertical centre.
    pub fn center_y(&self) -> i32 {
        (self.top + self.bottom) / 2
    }

    /// Takes a strip of `px` pixels off the top.
    pub fn take_top(&mut self, px: i32) {
        self.top += px;
    }

    /// Takes a strip of `px` pixels off the bottom.
    pub fn take_bottom(&mut self, px: i32) {
        self.bottom -= px;
    }

    /// Takes a strip of `px` pixels off the left.
    pub fn take_left(&mut self, px: i32) {
        self.left += px;
    }

    /// Takes a strip of `px` pixels off the right.
    pub fn take_right(&mut self, px: i32) {
        self.right -= px;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_take_strips_off_the_sides() {
        let mut a = Area::inset(330, 250, 6);
        assert_eq!((a.width(), a.height()), (318, 238));
        assert_eq!((a.center_x(), a.center_y()), (165, 125));
        a.take_top(20);
        a.take_bottom(30);
        a.take_left(40);
        a.take_right(10);
        assert_eq!(
            a,
            Area {
                left: 46,
                top: 26,
                right: 314,
                bottom: 214
            }
        );
    }
}
