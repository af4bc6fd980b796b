//! The time (x) axis, as graphite-web's `setupXAxis` and the x half of `drawLabels`: the span
//! drawn (the request's `from`/`until`, else the data's), ticks at a step that keeps labels
//! apart and on the wall clock of the request's `tz`, and their labels under the plot, whose
//! line is taken off the bottom of the [`Area`].
//!
//! Knows times and ticks; the pixel mapping is [`super::plot`]'s.

use chrono::TimeZone;
use chrono_tz::Tz;
use plotters::prelude::DrawingBackend;

use super::area::Area;
use super::canvas::Canvas;
use super::error::GraphError;
use super::line::Line;
use super::plot::Plot;
use super::text::{HAlign, VAlign};

/// Least pixels between two time labels.
const MIN_LABEL_PX: u32 = 80;

/// Most ticks on the axis.
const MAX_TICKS: usize = 1000;

/// Steps the time axis may use, in seconds, finest first.
const TIME_STEPS: &[i64] = &[
    1,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    4 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    28 * 86400,
    91 * 86400,
    182 * 86400,
    364 * 86400,
];

/// Takes the label line (and the tick marks' room) off the bottom of `area`.
pub fn take_label_room(area: &mut Area, line_h: i32) {
    area.take_bottom(line_h + 4);
}

/// The span drawn, `(start, end)` epoch seconds: `x_range` (the request's) when it is not
/// empty, else from the first point of any line to the last (at least one second).
pub fn span(lines: &[Line], x_range: Option<(i64, i64)>) -> (i64, i64) {
    let start = lines
        .iter()
        .filter_map(|l| l.points.first().map(|p| p.0))
        .min()
        .unwrap_or(0);
    let end = lines
        .iter()
        .filter_map(|l| l.points.last().map(|p| p.0))
        .max()
        .unwrap_or(start + 1)
        .max(start + 1);
    x_range.filter(|(a, b)| b > a).unwrap_or((start, end))
}

/// The ticks of a time axis and how their labels are written.
pub struct TimeAxis {
    /// Tick timestamps, epoch seconds.
    pub ticks: Vec<i64>,
    /// strftime format of the labels.
    pub format: &'static str,
}

impl TimeAxis {
    /// Ticks from `start` to `end` on a plot `width_px` wide, labels at least
    /// [`MIN_LABEL_PX`] apart, in `tz`.
    pub fn setup(start: i64, end: i64, width_px: u32, tz: &Tz) -> TimeAxis {
        let (ticks, format) = time_ticks(start, end, width_px, MIN_LABEL_PX, tz);
        TimeAxis { ticks, format }
    }

    /// Draws a tick mark and a label under `plot` at each tick, times in `tz`.
    pub fn draw_labels<DB: DrawingBackend>(
        &self,
        canvas: &mut Canvas<'_, DB>,
        plot: &Plot,
        tz: &Tz,
    ) -> Result<(), GraphError>
    where
        DB::ErrorType: 'static,
    {
        let bottom = plot.area.bottom;
        for t in &self.ticks {
            let x = plot.x(*t);
            canvas.path(vec![(x, bottom), (x, bottom + 3)], canvas.fg_color())?;
            let label = tz
                .timestamp_opt(*t, 0)
                .single()
                .map(|d| d.format(self.format).to_string())
                .unwrap_or_default();
            canvas.text(
                label,
                (x, bottom + 4),
                canvas.font_px,
                (HAlign::Center, VAlign::Top),
            );
        }
        Ok(())
    }
}

/// Time-axis ticks as graphite draws them: a step chosen so labels are about `min_px` pixels
/// apart or more, aligned to local-time boundaries in `tz` (whole minutes, hours, midnights).
/// Returns the tick timestamps and the label format.
pub fn time_ticks(
    start: i64,
    end: i64,
    width_px: u32,
    min_px: u32,
    tz: &Tz,
) -> (Vec<i64>, &'static str) {
    let span = (end - start).max(1);
    let max_labels = (width_px / min_px.max(1)).max(1) as i64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| span / s <= max_labels)
        .unwrap_or(span);
    let fmt = if step >= 86400 {
        if span > 60 * 86400 {
            "%m/%d"
        } else {
            "%a %d"
        }
    } else if span > 2 * 86400 {
        "%a %H:%M"
    } else if step < 60 {
        "%H:%M:%S"
    } else {
        "%H:%M"
    };
    // Align to the zone's wall clock: offset of `start` from UTC.
    let offset = tz
        .timestamp_opt(start, 0)
        .single()
        .map(|d| {
            use chrono::Offset;
            d.offset().fix().local_minus_utc() as i64
        })
        .unwrap_or(0);
    let align = if step >= 86400 { 86400 } else { step };
    let mut t = (start + offset).div_euclid(align) * align - offset;
    while t < start {
        t += align;
    }
    let mut ticks = Vec::new();
    while t <= end && ticks.len() < MAX_TICKS {
        ticks.push(t);
        t += step;
    }
    (ticks, fmt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::params::GraphParams;
    use crate::query::Series;

    #[test]
    fn span_is_the_request_s_else_the_data_s() {
        let s = Series::new("a", 600, 1200, 60, vec![Some(1.0); 10], 0.0);
        let lines = super::super::line::prepare(&[s], &GraphParams::default(), 300);
        assert_eq!(span(&lines, None), (600, 1140));
        assert_eq!(span(&lines, Some((0, 3600))), (0, 3600));
        assert_eq!(
            span(&lines, Some((5, 5))),
            (600, 1140),
            "an empty range is ignored"
        );
        assert_eq!(span(&[], None), (0, 1));
    }

    #[test]
    fn time_ticks_align_to_the_clock() {
        // 24 h on 800 px: 3-hourly ticks on whole hours.
        let (ticks, fmt) = time_ticks(1_700_000_123, 1_700_086_523, 800, 80, &Tz::UTC);
        assert_eq!(fmt, "%H:%M");
        assert!(ticks.iter().all(|t| t % 3600 == 0), "{ticks:?}");
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == 3 * 3600));
        // 7 days: daily ticks at local midnight.
        let ny: Tz = "America/New_York".parse().unwrap();
        let (ticks, fmt) = time_ticks(1_700_000_000, 1_700_000_000 + 7 * 86400, 800, 80, &ny);
        assert_eq!(fmt, "%a %d");
        assert!(
            ticks.iter().all(|t| (t - 5 * 3600) % 86400 == 0),
            "{ticks:?}"
        );
    }
}
