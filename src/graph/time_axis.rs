//! The time axis as glyph.py's `setupXAxis` chooses it: the `xAxisConfigs` table (rrdtool's,
//! by seconds per pixel and the time range), `find_x_times` for the first label or grid line,
//! and labels in strftime formats.
//!
//! Times are handled as Python's pytz datetimes behave in glyph.py: in the fixed UTC offset the
//! time zone has at the graph's start (pytz's `replace` and `+ timedelta` never re-normalise).

use chrono::{DateTime, FixedOffset, Offset, TimeZone};
use chrono_tz::Tz;

const SEC: i64 = 1;
const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// One row of glyph.py's `xAxisConfigs`.
#[derive(Debug, Clone, Copy)]
pub struct XAxisConfig {
    /// Smallest seconds per pixel this row is for.
    pub seconds: f64,
    /// Unit of the minor grid lines, in seconds.
    pub minor_unit: i64,
    /// Minor grid lines every this many units.
    pub minor_step: f64,
    /// Unit of the major grid lines.
    pub major_unit: i64,
    /// Major grid lines every this many units.
    pub major_step: f64,
    /// Unit of the labels.
    pub label_unit: i64,
    /// Labels every this many units.
    pub label_step: f64,
    /// strftime format of the labels (`%m/%d` is graphite-web's DATE_FORMAT).
    pub format: &'static str,
    /// Longest time range this row is for, in seconds (`None`: any).
    pub max_interval: Option<i64>,
}

macro_rules! conf {
    ($s:expr, $mu:expr, $ms:expr, $ju:expr, $js:expr, $lu:expr, $ls:expr, $f:expr, $mi:expr) => {
        XAxisConfig {
            seconds: $s,
            minor_unit: $mu,
            minor_step: $ms,
            major_unit: $ju,
            major_step: $js,
            label_unit: $lu,
            label_step: $ls,
            format: $f,
            max_interval: $mi,
        }
    };
}

/// glyph.py's `xAxisConfigs`, in its order.
pub const X_AXIS_CONFIGS: &[XAxisConfig] = &[
    conf!(
        0.00,
        SEC,
        5.0,
        MIN,
        1.0,
        SEC,
        5.0,
        "%H:%M:%S",
        Some(10 * MIN)
    ),
    conf!(
        0.07,
        SEC,
        10.0,
        MIN,
        1.0,
        SEC,
        10.0,
        "%H:%M:%S",
        Some(20 * MIN)
    ),
    conf!(
        0.14,
        SEC,
        15.0,
        MIN,
        1.0,
        SEC,
        15.0,
        "%H:%M:%S",
        Some(30 * MIN)
    ),
    conf!(0.27, SEC, 30.0, MIN, 2.0, MIN, 1.0, "%H:%M", Some(2 * HOUR)),
    conf!(0.5, MIN, 1.0, MIN, 2.0, MIN, 1.0, "%H:%M", Some(2 * HOUR)),
    conf!(1.2, MIN, 1.0, MIN, 4.0, MIN, 2.0, "%H:%M", Some(3 * HOUR)),
    conf!(2.0, MIN, 1.0, MIN, 10.0, MIN, 5.0, "%H:%M", Some(6 * HOUR)),
    conf!(
        5.0,
        MIN,
        2.0,
        MIN,
        10.0,
        MIN,
        10.0,
        "%H:%M",
        Some(12 * HOUR)
    ),
    conf!(10.0, MIN, 5.0, MIN, 20.0, MIN, 20.0, "%H:%M", Some(DAY)),
    conf!(
        30.0,
        MIN,
        10.0,
        HOUR,
        1.0,
        HOUR,
        1.0,
        "%H:%M",
        Some(2 * DAY)
    ),
    conf!(
        60.0,
        MIN,
        30.0,
        HOUR,
        2.0,
        HOUR,
        2.0,
        "%H:%M",
        Some(2 * DAY)
    ),
    conf!(
        100.0,
        HOUR,
        2.0,
        HOUR,
        4.0,
        HOUR,
        4.0,
        "%a %H:%M",
        Some(6 * DAY)
    ),
    conf!(
        255.0,
        HOUR,
        6.0,
        HOUR,
        12.0,
        HOUR,
        12.0,
        "%m/%d %H:%M",
        Some(10 * DAY)
    ),
    conf!(
        600.0,
        HOUR,
        6.0,
        DAY,
        1.0,
        DAY,
        1.0,
        "%m/%d",
        Some(14 * DAY)
    ),
    conf!(
        1000.0,
        HOUR,
        12.0,
        DAY,
        1.0,
        DAY,
        1.0,
        "%m/%d",
        Some(365 * DAY)
    ),
    conf!(
        2000.0,
        DAY,
        1.0,
        DAY,
        2.0,
        DAY,
        2.0,
        "%m/%d",
        Some(365 * DAY)
    ),
    conf!(
        4000.0,
        DAY,
        2.0,
        DAY,
        4.0,
        DAY,
        4.0,
        "%m/%d",
        Some(365 * DAY)
    ),
    conf!(
        8000.0,
        DAY,
        3.5,
        DAY,
        7.0,
        DAY,
        7.0,
        "%m/%d",
        Some(365 * DAY)
    ),
    conf!(
        16000.0,
        DAY,
        7.0,
        DAY,
        14.0,
        DAY,
        14.0,
        "%m/%d",
        Some(365 * DAY)
    ),
    conf!(
        32000.0,
        DAY,
        15.0,
        DAY,
        30.0,
        DAY,
        30.0,
        "%m/%d",
        Some(365 * DAY)
    ),
    conf!(64000.0, DAY, 30.0, DAY, 60.0, DAY, 60.0, "%m/%d %Y", None),
    conf!(100000.0, DAY, 60.0, DAY, 120.0, DAY, 120.0, "%m/%d %Y", None),
    conf!(120000.0, DAY, 120.0, DAY, 240.0, DAY, 240.0, "%m/%d %Y", None),
];

/// The row for `seconds_per_pixel` over `time_range` seconds (the last that fits).
pub fn choose(seconds_per_pixel: f64, time_range: i64) -> &'static XAxisConfig {
    X_AXIS_CONFIGS
        .iter()
        .rev()
        .find(|c| {
            c.seconds <= seconds_per_pixel && c.max_interval.unwrap_or(time_range + 1) >= time_range
        })
        .unwrap_or(&X_AXIS_CONFIGS[X_AXIS_CONFIGS.len() - 1])
}

/// The graph's clock: `tz`'s offset at the graph's start, held for the whole graph.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    offset: FixedOffset,
}

impl Clock {
    /// The clock of a graph starting at `start` (epoch seconds) in `tz`.
    pub fn new(tz: Tz, start: i64) -> Clock {
        let offset = tz
            .timestamp_opt(start, 0)
            .single()
            .map(|d| d.offset().fix())
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"));
        Clock { offset }
    }

    fn at(&self, t: i64) -> DateTime<FixedOffset> {
        self.offset
            .timestamp_opt(t, 0)
            .single()
            .unwrap_or_else(|| self.offset.timestamp_opt(0, 0).unwrap())
    }

    /// glyph.py's `find_x_times`: the first multiple of `step` `unit`s (in wall-clock terms)
    /// at or after `start`, and the distance between them, both epoch seconds.
    pub fn first(&self, start: i64, unit: i64, step: f64) -> (i64, i64) {
        let local = start + i64::from(self.offset.local_minus_utc());
        let day_start = local.div_euclid(DAY) * DAY;
        let in_day = local - day_start;
        let (h, m, s) = (in_day / HOUR, (in_day % HOUR) / MIN, in_day % MIN);
        let istep = step as i64;
        let floored_local = match unit {
            SEC => day_start + h * HOUR + m * MIN + (s - s % istep.max(1)),
            MIN => day_start + h * HOUR + (m - m % istep.max(1)) * MIN,
            HOUR => day_start + (h - h % istep.max(1)) * HOUR,
            _ => day_start,
        };
        let delta = (step * unit as f64) as i64;
        let mut t = floored_local - i64::from(self.offset.local_minus_utc());
        while t < start {
            t += delta.max(1);
        }
        (t, delta.max(1))
    }

    /// `t` in strftime `format` (Python's codes; `%l` is the space-padded 12-hour hour).
    pub fn format(&self, t: i64, format: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        if write!(out, "{}", self.at(t).format(format)).is_err() {
            return format.to_string();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_label_is_on_the_unit() {
        let c = Clock::new(Tz::UTC, 0);
        assert_eq!(c.first(61, MIN, 5.0), (300, 300));
        assert_eq!(c.first(3600 * 5 + 1, HOUR, 4.0), (3600 * 8, 3600 * 4));
        assert_eq!(c.format(0, "%H:%M"), "00:00");
        assert_eq!(choose(2.5, 3600).format, "%H:%M");
    }
}
