//! Inline SVG drawn on the server for the status pages (no script, no library, no external
//! request): the board's chart of how many rules were WARN, CRIT, NODATA or ERROR over the
//! last 24 hours or 7 days, and one rule's state timeline.
//!
//! Drawing goes in steps, as `graph` does: the frame takes the room of the axes, the grid
//! and time labels are drawn in it, then the areas or segments. Colours are never written
//! here: every shape carries a class (`s-crit`, `s-warn`, …) that the page's stylesheet
//! (`templates/page.html`) paints, so the squares, the charts and the timeline share one
//! palette. Only numbers and fixed words are written; nothing of a rule's text.

use std::fmt::Write;

use chrono::TimeZone;
use chrono_tz::Tz;

use crate::alert::{BoardSample, SAMPLE_SECS};

/// Width and height of every chart, in CSS pixels.
const WIDTH: f64 = 900.0;
/// Height of the board chart.
const CHART_HEIGHT: f64 = 170.0;
/// Room for the y labels (left) and the time labels (bottom).
const LEFT: f64 = 40.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 20.0;

/// The plot area left once the axes took their room.
struct Frame {
    from: i64,
    to: i64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn new(from: i64, to: i64, height: f64) -> Frame {
        Frame {
            from,
            to,
            x0: LEFT,
            x1: WIDTH - RIGHT,
            y0: TOP,
            y1: height - BOTTOM,
        }
    }

    fn x(&self, t: i64) -> f64 {
        let t = t.clamp(self.from, self.to);
        self.x0 + (self.x1 - self.x0) * (t - self.from) as f64 / (self.to - self.from).max(1) as f64
    }
}

/// Time labels every `every` seconds (aligned in `tz`), formatted with `fmt`, with a light
/// vertical grid line at each.
fn draw_time_axis(out: &mut String, f: &Frame, tz: Tz, every: i64, fmt: &str) {
    let offset = tz
        .timestamp_opt(f.to, 0)
        .single()
        .map(|d| chrono::Offset::fix(d.offset()).local_minus_utc() as i64)
        .unwrap_or(0);
    let mut t = (f.from + offset).div_euclid(every) * every - offset;
    while t <= f.to {
        if t >= f.from {
            let x = f.x(t);
            let label = tz
                .timestamp_opt(t, 0)
                .single()
                .map(|d| d.format(fmt).to_string())
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<line class="grid" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="axis" x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
                f.y0,
                f.y1,
                f.y1 + 14.0
            );
        }
        t += every;
    }
}

/// A round top for `max` rules: 1, 2, 5, 10, 20, 50, …
fn nice_ceiling(max: u32) -> u32 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= max {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// How many rules of one state a sample holds.
type Count = fn(&BoardSample) -> u32;

/// The layers stacked from the bottom: (class, value of a sample).
const LAYERS: [(&str, Count); 4] = [
    ("crit", |s| s.crit),
    ("warn", |s| s.warn),
    ("nodata", |s| s.nodata),
    ("error", |s| s.error),
];

/// The board chart of the `span` seconds before `now`: how many rules were CRIT, WARN,
/// NODATA and ERROR, stacked in that order from the bottom. Samples (one per 5 minutes) are
/// put in buckets of `bucket` seconds, each showing the most of each state in it; the last
/// bucket is the one `now` is in, drawn whole. Minutes without a sample (the server was
/// down) count as none failing. A state that never failed draws no area.
pub fn board_chart(samples: &[BoardSample], now: i64, span: i64, tz: Tz, what: &str) -> String {
    let (bucket, every, fmt) = if span <= 86_400 {
        (SAMPLE_SECS, 3 * 3600, "%H:%M")
    } else {
        (1800, 86_400, "%a %d")
    };
    let to = (now.div_euclid(bucket) + 1) * bucket;
    let from = to - span;
    let n = (span / bucket) as usize;
    let mut buckets = vec![[0u32; 4]; n];
    for s in samples.iter().filter(|s| s.at >= from && s.at < to) {
        let b = &mut buckets[((s.at - from) / bucket) as usize];
        for (k, (_, get)) in LAYERS.iter().enumerate() {
            b[k] = b[k].max(get(s));
        }
    }
    let top = nice_ceiling(
        buckets
            .iter()
            .map(|b| b.iter().sum())
            .max()
            .unwrap_or(0)
            .max(1),
    );
    let f = Frame::new(from, to, CHART_HEIGHT);
    let y = |v: u32| f.y1 - (f.y1 - f.y0) * f64::from(v) / f64::from(top);

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{CHART_HEIGHT}" viewBox="0 0 {WIDTH} {CHART_HEIGHT}" role="img"><title>{what}</title>"#
    );
    // Y axis: 0, half and top, with grid lines.
    for v in [0, top / 2, top] {
        if v == top / 2 && (top % 2 != 0 || top < 2) {
            continue;
        }
        let yy = y(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            f.x0,
            f.x1,
            f.x0 - 5.0,
            yy + 4.0
        );
    }
    draw_time_axis(&mut out, &f, tz, every, fmt);
    // The stacked areas, each a step outline: its top edge left to right, its bottom edge
    // back.
    let x = |i: usize| f.x(from + i as i64 * bucket);
    for (k, (class, _)) in LAYERS.iter().enumerate() {
        if buckets.iter().all(|b| b[k] == 0) {
            continue;
        }
        let lower: Vec<u32> = buckets.iter().map(|b| b[..k].iter().sum()).collect();
        let upper: Vec<u32> = buckets.iter().zip(&lower).map(|(b, l)| l + b[k]).collect();
        let mut d = format!("M{:.1},{:.1}", x(0), y(upper[0]));
        for i in 1..n {
            if upper[i] != upper[i - 1] {
                let _ = write!(d, "H{:.1}V{:.1}", x(i), y(upper[i]));
            }
        }
        let _ = write!(d, "H{:.1}V{:.1}", x(n), y(lower[n - 1]));
        for i in (1..n).rev() {
            if lower[i - 1] != lower[i] {
                let _ = write!(d, "H{:.1}V{:.1}", x(i), y(lower[i - 1]));
            }
        }
        let _ = write!(d, "H{:.1}Z", x(0));
        let _ = write!(out, r#"<path class="area s-{class}" d="{d}"/>"#);
    }
    let _ = write!(
        out,
        r#"<line class="frame" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/></svg>"#,
        f.x0, f.y1, f.x1, f.y1
    );
    out
}

/// Height of a rule's timeline.
const TIMELINE_HEIGHT: f64 = 48.0;

/// A rule's states over the 24 hours before `now` as a bar of coloured segments.
/// `changes` are its state changes `(time, state)`, oldest first (the history's events of kind
/// `ok`, `pending`, `warn`, `crit`, `nodata`, `error`); `current` its state now. Before the
/// first change known the state is drawn as unknown (`s-unchecked`): the history carried to
/// the page is bounded, so an old change may be missing.
pub fn timeline(changes: &[(i64, String)], current: &str, now: i64, tz: Tz) -> String {
    let span = 86_400;
    let f = Frame {
        from: now - span,
        to: now,
        x0: LEFT,
        x1: WIDTH - RIGHT,
        y0: 4.0,
        y1: TIMELINE_HEIGHT - BOTTOM,
    };
    // The state at the window's start: the last change before it.
    let before = changes
        .iter()
        .rev()
        .find(|(at, _)| *at < f.from)
        .map(|(_, s)| s.as_str());
    let mut segments: Vec<(i64, i64, &str)> = Vec::new();
    let mut start = f.from;
    let mut state = before.unwrap_or(if changes.is_empty() {
        current
    } else {
        "unchecked"
    });
    for (at, s) in changes.iter().filter(|(at, _)| *at >= f.from && *at <= now) {
        if *at > start {
            segments.push((start, *at, state));
        }
        start = *at;
        state = s;
    }
    segments.push((start, now, current));

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{TIMELINE_HEIGHT}" viewBox="0 0 {WIDTH} {TIMELINE_HEIGHT}" role="img"><title>state over the last 24 hours</title>"#
    );
    let hm = |t: i64| {
        tz.timestamp_opt(t, 0)
            .single()
            .map(|d| d.format("%H:%M").to_string())
            .unwrap_or_default()
    };
    for (a, b, s) in &segments {
        let (xa, xb) = (f.x(*a), f.x(*b));
        let _ = write!(
            out,
            r#"<rect class="seg s-{s}" x="{xa:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{} {}–{}</title></rect>"#,
            f.y0,
            (xb - xa).max(1.0),
            f.y1 - f.y0,
            label(s),
            hm(*a),
            hm(*b)
        );
    }
    draw_time_axis(&mut out, &f, tz, 3 * 3600, "%H:%M");
    out.push_str("</svg>");
    out
}

/// The label of a state's CSS name (`crit` → `CRIT`), for segment titles.
fn label(s: &str) -> &'static str {
    match s {
        "ok" => "OK",
        "pending" => "PENDING",
        "warn" => "WARN",
        "crit" => "CRIT",
        "nodata" => "NODATA",
        "error" => "ERROR",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, crit: u32, warn: u32) -> BoardSample {
        BoardSample {
            at,
            crit,
            warn,
            ..BoardSample::default()
        }
    }

    #[test]
    fn board_chart_draws_only_states_that_failed() {
        let now = 1_700_000_000;
        let svg = board_chart(
            &[sample(now - 600, 3, 0), sample(now, 2, 1)],
            now,
            86_400,
            Tz::UTC,
            "x",
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains(r#"class="area s-crit""#), "{svg}");
        assert!(svg.contains(r#"class="area s-warn""#), "{svg}");
        assert!(!svg.contains("s-nodata"), "{svg}");
        // Top of the y axis: 3 failing at most → 5.
        assert!(svg.contains(">5</text>"), "{svg}");
        let week = board_chart(&[], now, 7 * 86_400, Tz::UTC, "x");
        assert!(!week.contains("<path"), "{week}");
        assert_eq!(nice_ceiling(300), 500);
        assert_eq!(nice_ceiling(1), 1);
    }

    #[test]
    fn timeline_segments_follow_the_changes() {
        let now = 1_700_000_000;
        let changes = vec![
            (now - 90_000, "ok".to_string()),
            (now - 3600, "crit".to_string()),
            (now - 600, "ok".to_string()),
        ];
        let svg = timeline(&changes, "ok", now, Tz::UTC);
        let segs: Vec<&str> = svg
            .match_indices("class=\"seg s-")
            .map(|(i, _)| &svg[i + 13..i + 17])
            .collect();
        assert_eq!(segs, ["ok\" ", "crit", "ok\" "], "{svg}");
        let unknown = timeline(&changes[1..], "ok", now, Tz::UTC);
        assert!(unknown.contains("s-unchecked"), "{unknown}");
    }
}
