//! glyph.py's `LineGraph`, step by step in its order: colours and per-axis overrides, title,
//! vtitles, legend, room for the time labels, consolidation to the plot's width, the value
//! axes (repeated until their labels' width settles), the time axis, labels, grid, and the
//! series drawn in their `lineMode`, filled per `areaMode` and stacked.
//!
//! Series come in as [`Series`] with their [`crate::query::GraphHints`] (glyph.py's
//! `series.options` and `series.color`); nothing here reads the store.

use chrono_tz::Tz;

use super::canvas::{unquote_plus, Align, Canvas, LegendItem, VAlign};
use super::color::{parse_color, Rgba};
use super::error::GraphError;
use super::params::{AreaMode, AxisSettings, GraphParams, LineMode};
use super::ticks::AxisTicks;
use super::time_axis::{self, Clock, XAxisConfig};
use crate::query::Series;

/// graphite-web's LEGEND_MAX_ITEMS: more series than this hide the legend by default.
const LEGEND_MAX_ITEMS: usize = 10;

/// One series as glyph.py holds it: the values (raw, consolidated on reading), colour and
/// options.
struct Line {
    s: Series,
    color: Rgba,
    stacked: bool,
    second_y: bool,
    draw_as_infinite: bool,
    invisible: bool,
    alpha: Option<f64>,
    line_width: Option<f64>,
    dashed: Option<f64>,
    x_step: f64,
}

impl Line {
    /// The values as iterating a graphite-web `TimeSeries` gives them (consolidated).
    fn values(&self) -> Vec<Option<f64>> {
        self.s
            .consolidated()
            .iter()
            .map(|v| v.filter(|v| !v.is_nan()))
            .collect()
    }
}

/// One value axis' result: ticks and labels.
#[derive(Default, Clone)]
struct YAxis {
    top: f64,
    bottom: f64,
    label_values: Vec<f64>,
    labels: Vec<String>,
    label_width: f64,
}

/// The line graph being drawn.
struct LineGraph<'a> {
    c: Canvas,
    p: &'a GraphParams,
    lines: Vec<Line>,
    hide_axes: bool,
    hide_grid: bool,
    log_base: Option<f64>,
    line_width: f64,
    line_mode: LineMode,
    start: i64,
    end: i64,
    time_range: i64,
    graph_width: f64,
    /// The single axis, or the left one with a second y axis.
    y: YAxis,
    /// The right axis with a second y axis.
    y_right: YAxis,
    tz: Tz,
}

/// glyph.py's `dataLimits`: the smallest and largest value to draw (stacked: of the sums).
fn data_limits(lines: &[&Line], draw_null_as_zero: bool, stacked: bool) -> (f64, f64) {
    let missing = lines.iter().any(|l| l.s.values.iter().any(|v| v.is_none()));
    let finite: Vec<&&Line> = lines.iter().filter(|l| !l.draw_as_infinite).collect();
    let safe = |v: &Option<f64>| v.filter(|v| v.is_finite());
    let mins = finite
        .iter()
        .filter_map(|l| l.values().iter().filter_map(safe).reduce(f64::min));
    let Some(mut ymin) = mins.reduce(f64::min) else {
        return (0.0, 1.0);
    };
    if ymin > 0.0 && draw_null_as_zero && missing {
        ymin = 0.0;
    }
    let mut ymax = if stacked {
        let length = finite.iter().map(|l| l.s.values.len()).min().unwrap_or(0);
        (0..length)
            .map(|i| {
                finite
                    .iter()
                    .filter_map(|l| safe(&l.s.values[i]))
                    .sum::<f64>()
            })
            .reduce(f64::max)
            .unwrap_or(ymin)
    } else {
        finite
            .iter()
            .filter_map(|l| l.values().iter().filter_map(safe).reduce(f64::max))
            .reduce(f64::max)
            .unwrap_or(ymin)
    };
    if ymax < 0.0 && draw_null_as_zero && missing {
        ymax = 0.0;
    }
    (ymin, ymax)
}

impl LineGraph<'_> {
    fn lines_where(&self, right: Option<bool>) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| right.is_none_or(|r| l.second_y == r))
            .collect()
    }

    /// One axis' ticks from its data and settings (the shared part of glyph.py's
    /// `setupYAxis` and `setupTwoYAxes`).
    fn ticks(&self, right: Option<bool>, settings: &AxisSettings) -> Result<AxisTicks, GraphError> {
        let (min, max) = data_limits(
            &self.lines_where(right),
            self.p.draw_null_as_zero,
            self.p.area_mode == AreaMode::Stacked,
        );
        let mut t = AxisTicks::new(min, max, self.p.y_unit_system, self.log_base)?;
        t.apply(settings.min, settings.max, settings.limit)?;
        match settings.step {
            Some(step) => t.set_step(step)?,
            None => t.choose_step(
                &self.p.y_divisors,
                self.p.y_unit_system == super::params::UnitSystem::Binary,
            ),
        }
        t.choose_limits()?;
        Ok(t)
    }

    fn axis_of(&self, t: &mut AxisTicks, labelled: bool) -> Result<YAxis, GraphError> {
        let mut y = YAxis {
            top: t.top,
            bottom: t.bottom,
            ..YAxis::default()
        };
        if labelled {
            y.label_values = t.label_values()?;
            y.labels = y.label_values.iter().map(|v| t.label(*v)).collect();
            y.label_width = y
                .labels
                .iter()
                .map(|l| self.c.text_width(l))
                .fold(0.0, f64::max);
        }
        Ok(y)
    }

    /// glyph.py's `setupYAxis`.
    fn setup_y_axis(&mut self) -> Result<(), GraphError> {
        let mut t = self.ticks(None, &self.p.y)?;
        self.y = self.axis_of(&mut t, !self.hide_axes)?;
        if !self.hide_axes && !self.p.hide_y_axis {
            if !self.c.y_axis_right {
                let xmin = self.c.margin + self.y.label_width * 1.02;
                if self.c.area.xmin < xmin {
                    self.c.area.xmin = xmin;
                }
            } else {
                let xmax = self.c.margin - self.y.label_width * 1.02;
                if self.c.area.xmax >= xmax {
                    self.c.area.xmax = xmax;
                }
            }
        }
        Ok(())
    }

    /// glyph.py's `setupTwoYAxes`.
    fn setup_two_y_axes(&mut self) -> Result<(), GraphError> {
        let mut l = self.ticks(Some(false), &self.p.y_left)?;
        let mut r = self.ticks(Some(true), &self.p.y_right)?;
        self.y = self.axis_of(&mut l, true)?;
        self.y_right = self.axis_of(&mut r, true)?;
        let xmin = self.c.margin + self.y.label_width * 1.02;
        if self.c.area.xmin < xmin {
            self.c.area.xmin = xmin;
        }
        let xmax = self.c.width - self.y_right.label_width * 1.02;
        if self.c.area.xmax >= xmax {
            self.c.area.xmax = xmax;
        }
        Ok(())
    }

    /// glyph.py's `getYCoord`: the pixel row of `value` on the axis (`right`: the second).
    fn y_coord(&self, value: f64, right: bool) -> Option<f64> {
        let axis = if right { &self.y_right } else { &self.y };
        let (highest, lowest) = if axis.label_values.is_empty() {
            (axis.top, axis.bottom)
        } else {
            (
                axis.label_values.iter().copied().fold(f64::MIN, f64::max),
                axis.label_values.iter().copied().fold(f64::MAX, f64::min),
            )
        };
        let pixel_range = self.c.area.ymax - self.c.area.ymin;
        let (relative, range) = match self.log_base {
            Some(base) => {
                if value <= 0.0 {
                    return None;
                }
                (
                    value.log(base) - lowest.log(base),
                    highest.log(base) - lowest.log(base),
                )
            }
            None => (value - lowest, highest - lowest),
        };
        Some(self.c.area.ymax - pixel_range / range * relative)
    }

    /// glyph.py's `consolidateDataPoints`: fewer points than pixels (at `minXStep`).
    fn consolidate(&mut self) {
        let pixels = self.c.area.xmax - self.c.area.xmin - (self.line_width + 1.0);
        self.graph_width = pixels;
        let range = self.time_range as f64;
        for l in &mut self.lines {
            let points = range / l.s.step as f64;
            let best = pixels / points;
            if best < self.p.min_x_step {
                // At least one drawable point (glyph.py divides by zero when minXStep is
                // wider than the graph), and never more values per point than there are.
                let drawable = (pixels / self.p.min_x_step).trunc().max(1.0);
                let per_pixel = (points / drawable).ceil().clamp(1.0, points.max(1.0));
                l.s.consolidate(per_pixel as usize);
                l.x_step = pixels * per_pixel / points;
            } else {
                l.x_step = best;
            }
        }
    }

    fn x_conf(&self) -> &'static XAxisConfig {
        let spp = self.time_range as f64 / self.graph_width;
        time_axis::choose(spp, self.time_range)
    }

    /// glyph.py's `drawLabels`.
    fn draw_labels(&mut self, clock: &Clock, conf: &XAxisConfig) {
        if !self.p.hide_y_axis {
            if !self.c.second_y_axis {
                let (values, labels, w) = (
                    self.y.label_values.clone(),
                    self.y.labels.clone(),
                    self.y.label_width,
                );
                for (v, label) in values.iter().zip(&labels) {
                    let x = if self.c.y_axis_right {
                        self.c.area.xmax + w * 0.02
                    } else {
                        self.c.area.xmin - w * 0.02
                    };
                    let Some(mut y) = self.y_coord(*v, false) else {
                        continue;
                    };
                    if y < 0.0 {
                        y = 0.0;
                    }
                    let align = if self.c.y_axis_right {
                        Align::Left
                    } else {
                        Align::Right
                    };
                    self.c.draw_text(label, x, y, align, VAlign::Middle, 0.0);
                }
            } else {
                for right in [false, true] {
                    let axis = if right { &self.y_right } else { &self.y };
                    let (values, labels, w) = (
                        axis.label_values.clone(),
                        axis.labels.clone(),
                        axis.label_width,
                    );
                    for (v, label) in values.iter().zip(&labels) {
                        let x = if right {
                            self.c.area.xmax + w * 0.02 + 3.0
                        } else {
                            self.c.area.xmin - w * 0.02
                        };
                        let Some(mut y) = self.y_coord(*v, right) else {
                            continue;
                        };
                        if y < 0.0 {
                            y = 0.0;
                        }
                        let align = if right { Align::Left } else { Align::Right };
                        self.c.draw_text(label, x, y, align, VAlign::Middle, 0.0);
                    }
                }
            }
        }
        if !self.p.hide_x_axis {
            let (mut t, delta) = clock.first(self.start, conf.label_unit, conf.label_step);
            let format = self.p.x_format.as_deref().unwrap_or(conf.format);
            let scale = self.graph_width / self.time_range as f64;
            while t < self.end {
                let label = clock.format(t, format);
                let x = self.c.area.xmin + (t - self.start) as f64 * scale;
                let y = self.c.area.ymax + self.c.extents().ascent;
                self.c
                    .draw_text(&label, x, y, Align::Center, VAlign::Top, 0.0);
                t += delta;
            }
        }
    }

    fn hline(&mut self, y: f64) {
        let (l, r) = (self.c.area.xmin, self.c.area.xmax);
        self.c.ctx.move_to(l, y);
        self.c.ctx.line_to(r, y);
        self.c.ctx.stroke();
    }

    /// glyph.py's `drawGridLines`.
    fn draw_grid_lines(&mut self, clock: &Clock, conf: &XAxisConfig) {
        let major = self.p.major_grid_color;
        let minor = self.p.minor_grid_color;
        let labels = self.y.label_values.clone();
        for (i, value) in labels.iter().enumerate() {
            self.c.ctx.set_line_width(0.4);
            self.c.set_color(major, 1.0, false);
            match self.y_coord(*value, false) {
                Some(y) if y >= 0.0 => self.hline(y),
                _ => continue,
            }
            if self.p.minor_y >= 1 && i + 1 < labels.len() {
                let (lower, upper) = if *value <= labels[i + 1] {
                    (*value, labels[i + 1])
                } else {
                    (labels[i + 1], *value)
                };
                let distance = (upper - lower) / (1 + self.p.minor_y) as f64;
                for m in 0..self.p.minor_y {
                    self.c.ctx.set_line_width(0.3);
                    self.c.set_color(minor, 1.0, false);
                    let v = lower + (1 + m) as f64 * distance;
                    let top_factor = self.log_base.map(|b| b * b).unwrap_or(1.0);
                    if v >= top_factor * self.y.top {
                        continue;
                    }
                    match self.y_coord(v, false) {
                        Some(y) if y >= 0.0 => self.hline(y),
                        _ => continue,
                    }
                }
            }
        }
        let (top, bottom) = (self.c.area.ymin, self.c.area.ymax);
        let scale = self.graph_width / self.time_range as f64;
        for (width, color, unit, step) in [
            (0.25, minor, conf.minor_unit, conf.minor_step),
            (0.33, major, conf.major_unit, conf.major_step),
        ] {
            self.c.ctx.set_line_width(width);
            self.c.set_color(color, 1.0, false);
            let (mut t, delta) = clock.first(self.start, unit, step);
            while t < self.end {
                let x = self.c.area.xmin + (t - self.start) as f64 * scale;
                if x < self.c.area.xmax {
                    self.c.ctx.move_to(x, bottom);
                    self.c.ctx.line_to(x, top);
                    self.c.ctx.stroke();
                }
                t += delta;
            }
        }
        self.c.ctx.set_line_width(0.5);
        let (l, r) = (self.c.area.xmin, self.c.area.xmax);
        self.c.ctx.move_to(r, bottom);
        self.c.ctx.line_to(r, top);
        self.c.ctx.move_to(l, bottom);
        self.c.ctx.line_to(l, top);
        self.c.ctx.stroke();
    }

    /// glyph.py's `fillAreaAndClip`: fills from the line down (or up) to `area_y_from`, then
    /// clips the rest of the plot to what is outside that fill.
    fn fill_area_and_clip(&mut self, x: f64, y: f64, start_x: f64, area_y_from: Option<f64>) {
        let _ = y;
        let a = self.c.area;
        let start_x = if start_x == 0.0 { a.xmin } else { start_x };
        let from = match area_y_from {
            Some(v) if v != 0.0 => v,
            _ => a.ymax,
        };
        let pattern = self.c.ctx.copy_path();
        let ctx = &mut self.c.ctx;
        ctx.line_to(x, from);
        ctx.line_to(start_x, from);
        ctx.close_path();
        ctx.fill();
        ctx.append_path(&pattern);
        ctx.line_to(x, from);
        ctx.line_to(a.xmax, from);
        ctx.line_to(a.xmax, a.ymin);
        ctx.line_to(a.xmin, a.ymin);
        ctx.line_to(a.xmin, from);
        ctx.line_to(start_x, from);
        ctx.line_to(x, from);
        ctx.line_to(a.xmax, from);
        ctx.line_to(a.xmax, a.ymax);
        ctx.line_to(a.xmin, a.ymax);
        ctx.line_to(a.xmin, from);
        ctx.line_to(start_x, from);
        ctx.close_path();
        ctx.clip();
    }

    fn zero_y(&self, l_right: bool) -> Option<f64> {
        self.y_coord(0.0, self.c.second_y_axis && l_right)
    }

    /// glyph.py's `drawLines`.
    fn draw_lines(&mut self) {
        let original_width = self.line_width;
        self.c.ctx.set_line_width(original_width);
        self.c.ctx.set_dash(None);
        if self.lines.iter().any(|l| l.stacked) {
            // sort_stacked: stacked series first, each group in its order.
            let (mut stacked, rest): (Vec<Line>, Vec<Line>) = std::mem::take(&mut self.lines)
                .into_iter()
                .partition(|l| l.stacked);
            stacked.extend(rest);
            self.lines = stacked;
        }
        match self.p.area_mode {
            AreaMode::Stacked if !self.c.second_y_axis => {
                let mut total: Vec<f64> = Vec::new();
                for l in &mut self.lines {
                    if l.draw_as_infinite {
                        continue;
                    }
                    l.stacked = true;
                    for (i, v) in l.s.values.iter_mut().enumerate() {
                        if total.len() <= i {
                            total.push(0.0);
                        }
                        if let Some(v) = v {
                            let original = *v;
                            *v += total[i];
                            total[i] += original;
                        }
                    }
                }
            }
            AreaMode::First => {
                if let Some(l) = self.lines.first_mut() {
                    l.stacked = true;
                }
            }
            AreaMode::All => {
                for l in &mut self.lines {
                    if !l.draw_as_infinite {
                        l.stacked = true;
                    }
                }
            }
            _ => {}
        }
        if let Some(alpha) = self.p.area_alpha {
            let mut strokes = Vec::new();
            for l in &mut self.lines {
                if l.stacked {
                    l.alpha = Some(alpha);
                    let values = l.values();
                    let mut s = l.s.derive(l.s.name.clone(), values);
                    s.step = l.s.step * l.s.values_per_point as i64;
                    s.values_per_point = 1;
                    strokes.push(Line {
                        s,
                        color: l.color,
                        stacked: false,
                        second_y: l.second_y,
                        draw_as_infinite: false,
                        invisible: false,
                        alpha: None,
                        line_width: None,
                        dashed: None,
                        x_step: l.x_step,
                    });
                }
            }
            self.lines.extend(strokes);
        }

        let a = self.c.area;
        self.c.ctx.set_line_width(1.0);
        self.c
            .ctx
            .rectangle(a.xmin, a.ymin, a.xmax - a.xmin, a.ymax - a.ymin);
        self.c.ctx.clip();
        self.c.ctx.set_line_width(original_width);
        self.c.ctx.save();
        let mut clip_restored = false;

        let lines = std::mem::take(&mut self.lines);
        for l in &lines {
            if !l.stacked && !clip_restored {
                clip_restored = true;
                self.c.ctx.restore();
            }
            if let Some(w) = l.line_width {
                self.c.ctx.set_line_width(w);
            }
            self.c.ctx.set_dash(l.dashed.map(|d| (d, 1.0)));
            let missing = (l.s.start - self.start) as f64 / l.s.step as f64;
            let start_shift = l.x_step * (missing / l.s.values_per_point as f64);
            let mut x = a.xmin + start_shift + self.line_width / 2.0;
            let mut y = a.ymin;
            let mut start_x = x;
            if l.invisible {
                self.c.set_color(l.color, 0.0, true);
            } else {
                self.c.set_color(l.color, l.alpha.unwrap_or(1.0), false);
            }
            let mut nones = 0usize;
            for (index, value) in l.values().into_iter().enumerate() {
                let mut value = value;
                if value.is_none() && self.p.draw_null_as_zero {
                    value = Some(0.0);
                }
                // A value a log axis cannot place (≤ 0) is drawn as a gap: glyph.py fails
                // there (it hands Cairo a row of None), carbonhound leaves the point out.
                let coord = value.and_then(|v| {
                    self.y_coord(v, self.c.second_y_axis && l.second_y)
                        .map(|y| (v, y))
                });
                let Some((v, mut yy)) = coord else {
                    if nones == 0 {
                        self.c.ctx.line_to(x, y);
                        if l.stacked {
                            let from = self.zero_y(l.second_y);
                            self.fill_area_and_clip(x, y, start_x, from);
                        }
                    }
                    x += l.x_step;
                    nones += 1;
                    continue;
                };
                if yy < 0.0 {
                    yy = 0.0;
                }
                y = yy;
                if l.draw_as_infinite && v > 0.0 {
                    self.c.ctx.move_to(x, a.ymax);
                    self.c.ctx.line_to(x, a.ymin);
                    self.c.ctx.stroke();
                    x += l.x_step;
                    continue;
                }
                self.point(l, &mut x, y, &mut start_x, nones, index);
                nones = 0;
            }
            if l.stacked {
                let x_pos = if self.line_mode == LineMode::Staircase {
                    x
                } else {
                    x - l.x_step
                };
                let from = self.zero_y(l.second_y);
                self.fill_area_and_clip(x_pos, y, start_x, from);
            } else {
                self.c.ctx.stroke();
            }
            self.c.ctx.set_line_width(original_width);
        }
        self.lines = lines;
    }

    /// One non-null point of `drawLines`, in the line mode.
    fn point(
        &mut self,
        l: &Line,
        x: &mut f64,
        y: f64,
        start_x: &mut f64,
        nones: usize,
        index: usize,
    ) {
        if nones > 0 {
            *start_x = *x;
        }
        let ctx = &mut self.c.ctx;
        match self.line_mode {
            LineMode::Staircase => {
                if nones > 0 {
                    ctx.move_to(*x, y);
                } else {
                    ctx.line_to(*x, y);
                }
                *x += l.x_step;
                ctx.line_to(*x, y);
            }
            LineMode::Slope => {
                if nones > 0 {
                    ctx.move_to(*x, y);
                }
                ctx.line_to(*x, y);
                *x += l.x_step;
            }
            LineMode::Connected => {
                if nones as f64 > self.p.connected_limit || nones == index {
                    ctx.move_to(*x, y);
                }
                ctx.line_to(*x, y);
                *x += l.x_step;
            }
        }
    }

    /// glyph.py's `drawVTitle`.
    fn draw_vtitle(&mut self, text: &str, right: bool) {
        let line_height = self.c.extents().height;
        let y = self.c.height / 2.0;
        if right {
            self.c.ctx.header("vtitleRight");
            let mut x = self.c.area.xmax - line_height;
            for line in text.split('\n') {
                self.c
                    .draw_text(line, x, y, Align::Center, VAlign::Baseline, 90.0);
                x -= line_height;
            }
            self.c.area.xmax = x - self.c.margin - line_height;
        } else {
            self.c.ctx.header("vtitle");
            let mut x = self.c.area.xmin + line_height;
            for line in text.split('\n') {
                self.c
                    .draw_text(line, x, y, Align::Center, VAlign::Baseline, 270.0);
                x += line_height;
            }
            self.c.area.xmin = x + self.c.margin + line_height;
        }
    }

    /// The JSON of graphite-web's SVG `metadata` script (x range, area, y ticks, series).
    fn metadata(&self) -> String {
        let series: Vec<serde_json::Value> = self
            .lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.s.name,
                    "start": l.s.start,
                    "end": l.s.end,
                    "step": l.s.step,
                    "valuesPerPoint": l.s.values_per_point,
                    "color": format!("#{:02x}{:02x}{:02x}", l.color.0, l.color.1, l.color.2),
                    "data": l.values(),
                })
            })
            .collect();
        let a = self.c.area;
        let mut m = serde_json::json!({
            "x": {"start": self.start, "end": self.end},
            "options": {"lineWidth": self.line_width},
            "font": {"name": self.p.font_name, "size": self.c.default_font.size,
                     "bold": self.p.font_bold, "italic": self.p.font_italic},
            "area": {"xmin": a.xmin, "xmax": a.xmax, "ymin": a.ymin, "ymax": a.ymax},
            "series": series,
        });
        if !self.c.second_y_axis {
            m["y"] = serde_json::json!({
                "top": self.y.top, "bottom": self.y.bottom,
                "labels": self.y.labels, "labelValues": self.y.label_values,
            });
        }
        m.to_string()
    }
}

/// Draws `series` as glyph.py's `LineGraph.drawGraph` onto `c`; returns the SVG metadata.
pub fn draw(
    mut c: Canvas,
    series: &[Series],
    p: &GraphParams,
    tz: Tz,
) -> Result<(Canvas, String), GraphError> {
    let start = series.iter().map(|s| s.start).min();
    let end = series.iter().map(|s| s.end).max();
    let (Some(start), Some(end)) = (start, end) else {
        c.draw_no_data();
        return Ok((c, "{}".into()));
    };
    if end - start == 0 {
        c.draw_no_data();
        return Ok((c, "{}".into()));
    }
    let mut lines: Vec<Line> = series
        .iter()
        .map(|s| {
            let h = &s.hints;
            Line {
                s: s.clone(),
                color: Rgba(0, 0, 0, 1.0),
                stacked: h.stacked.is_some(),
                second_y: h.second_y_axis,
                draw_as_infinite: h.draw_as_infinite,
                invisible: h.invisible,
                alpha: h.alpha,
                line_width: h.line_width,
                dashed: h.dashed,
                x_step: 1.0,
            }
        })
        .collect();
    c.second_y_axis = lines.iter().any(|l| l.second_y);
    let mut hide_axes = p.hide_axes;
    let mut hide_grid = p.hide_grid;
    let mut hide_legend = p.hide_legend;
    let mut title = p.title.clone();
    let mut vtitle = p.vtitle.clone();
    if p.graph_only {
        hide_legend = Some(true);
        hide_grid = true;
        hide_axes = true;
        c.y_axis_right = false;
        title = None;
        vtitle = None;
        c.margin = 0.0;
        c.area.xmin = 0.0;
        c.area.xmax = c.width;
        c.area.ymin = 0.0;
        c.area.ymax = c.height;
    }
    // graphOnly still draws both axes' labels off: glyph.py only resets hideXAxis/hideYAxis to
    // False, and hideAxes covers them.
    if c.second_y_axis {
        c.y_axis_right = false;
    }
    if c.y_axis_right {
        c.margin = c.width;
    }
    let line_width = p.line_width;
    let mut line_mode = p.line_mode;
    if line_mode == LineMode::Slope && lines.iter().any(|l| l.s.values.len() == 1) {
        line_mode = LineMode::Staircase;
    }
    if c.second_y_axis {
        for l in &mut lines {
            let (w, d, col) = if l.second_y {
                (p.right_width, p.right_dashed, p.right_color)
            } else {
                (p.left_width, p.left_dashed, p.left_color)
            };
            if w.is_some() {
                l.line_width = w;
            }
            if d.is_some() {
                l.dashed = d;
            }
            if let Some(col) = col {
                l.s.hints.color = Some(format!(
                    "{:02x}{:02x}{:02x}{:02x}",
                    col.0,
                    col.1,
                    col.2,
                    (col.3 * 255.0).round() as u8
                ));
            }
        }
    }
    for l in &mut lines {
        l.color = match l.s.hints.color.as_deref().and_then(parse_color) {
            Some(col) => col,
            None => c.next_color(),
        };
    }

    let title_size = c.default_font.size + c.default_font.size.ln().floor();
    c.set_font_size(title_size);
    let fg = c.fg;
    c.set_color(fg, 1.0, false);
    if let Some(t) = title.as_deref().filter(|t| !t.is_empty()) {
        c.draw_title(&unquote_plus(t));
    }
    let mut g = LineGraph {
        c,
        p,
        lines,
        hide_axes,
        hide_grid,
        log_base: p.log_base,
        line_width,
        line_mode,
        start,
        end,
        time_range: 0,
        graph_width: 0.0,
        y: YAxis::default(),
        y_right: YAxis::default(),
        tz,
    };
    if let Some(t) = vtitle.as_deref().filter(|t| !t.is_empty()) {
        g.draw_vtitle(&unquote_plus(t), false);
    }
    if g.c.second_y_axis {
        if let Some(t) = p.vtitle_right.as_deref().filter(|t| !t.is_empty()) {
            g.draw_vtitle(&unquote_plus(t), true);
        }
    }
    g.c.set_default_font();

    if !hide_legend.unwrap_or(g.lines.len() > LEGEND_MAX_ITEMS) {
        let elements: Vec<LegendItem> = g
            .lines
            .iter()
            .filter(|l| !l.s.name.is_empty())
            .filter(|l| !(p.hide_null_from_legend && l.s.values.iter().all(|v| v.is_none())))
            .map(|l| (unquote_plus(&l.s.name), l.color, l.second_y))
            .collect();
        if !elements.is_empty() {
            g.c.draw_legend(&elements, p.unique_legend);
        }
    }
    if !g.hide_axes && !p.hide_x_axis {
        g.c.area.ymax -= g.c.extents().ascent * 2.0;
    }
    g.end = if g.line_mode == LineMode::Staircase {
        end
    } else {
        g.lines
            .iter()
            .map(|l| l.s.end - l.s.step)
            .max()
            .unwrap_or(end)
    };
    g.time_range = g.end - g.start;
    if g.time_range <= 0 {
        // Series ending before their second step (end - step ≤ start): glyph.py divides by
        // zero further on; draw no data.
        let mut c = g.c;
        c.draw_no_data();
        return Ok((c, "{}".into()));
    }
    g.consolidate();
    g.c.ctx.header("axes");
    let two = g.c.second_y_axis;
    let setup = |g: &mut LineGraph| {
        if two {
            g.setup_two_y_axes()
        } else {
            g.setup_y_axis()
        }
    };
    let (mut cur_min, mut cur_max) = (g.c.area.xmin, g.c.area.xmax);
    setup(&mut g)?;
    let mut rounds = 0;
    while (cur_min != g.c.area.xmin || cur_max != g.c.area.xmax) && rounds < 100 {
        g.consolidate();
        cur_min = g.c.area.xmin;
        cur_max = g.c.area.xmax;
        setup(&mut g)?;
        rounds += 1;
    }
    let conf = g.x_conf();
    let clock = Clock::new(g.tz, g.start);
    if !g.hide_axes {
        g.draw_labels(&clock, conf);
        if !g.hide_grid {
            g.c.ctx.header("grid");
            g.draw_grid_lines(&clock, conf);
        }
    }
    g.c.ctx.header("lines");
    g.draw_lines();
    let meta = g.metadata();
    Ok((g.c, meta))
}
