//! Drawing a series list as graphite-web's render API does: title, legend, a time axis and a
//! value axis (a second one on the right for `secondYAxis` series) with their grid, one line
//! per series (nulls break the line), the graph hints functions attach (`color`, `dashed`,
//! `lineWidth`, `stacked`, `drawAsInfinite`, `alpha`, `areaBetween`, `secondYAxis`), the
//! `areaMode` parameter, and a "No Data" picture when there is nothing to draw.
//!
//! plotters maps coordinates and draws the shapes; the layout and every piece of text are
//! ours (see [`super::text`]), so PNG and SVG show the same picture.

use chrono::TimeZone;
use chrono_tz::Tz;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::RGBAColor;

use super::color::{parse_color, Rgba};
use super::params::GraphParams;
use super::text::{line_height, rasterize, text_width, HAlign, TextItem, VAlign};
use crate::query::Series;

/// Why a graph could not be drawn.
#[derive(Debug)]
pub struct GraphError(pub String);

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GraphError {}

fn err<E: std::fmt::Debug>(e: E) -> GraphError {
    GraphError(format!("drawing failed: {e:?}"))
}

fn rgba(c: Rgba) -> RGBAColor {
    RGBAColor(c.0, c.1, c.2, c.3)
}

/// One line to draw: points (timestamp, value-or-null), its colour and style.
struct Line {
    name: String,
    points: Vec<(i64, Option<f64>)>,
    color: Rgba,
    width: f64,
    dashed: Option<f64>,
    infinite: bool,
    fill: bool,
    area_between: bool,
    second_axis: bool,
}

fn prepare(series: &[Series], p: &GraphParams, plot_width: u32) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut stack: Vec<f64> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let mut s = s.clone();
        // At most one point per pixel, as graphite-web consolidates for drawing.
        let n = s.consolidated().len().max(1);
        let vpp = n.div_ceil(plot_width.max(1) as usize).max(1);
        if vpp > 1 {
            s.consolidate(s.values_per_point * vpp);
        }
        let mut points: Vec<(i64, Option<f64>)> = s
            .datapoints()
            .into_iter()
            .map(|(v, t)| {
                (
                    t,
                    if p.draw_null_as_zero {
                        Some(v.unwrap_or(0.0))
                    } else {
                        v
                    },
                )
            })
            .collect();
        // areaMode=stacked stacks here; `stacked()` already stacked its values.
        if p.area_mode == "stacked" && s.hints.stacked.is_none() {
            if stack.len() < points.len() {
                stack.resize(points.len(), 0.0);
            }
            for (j, pt) in points.iter_mut().enumerate() {
                if let Some(v) = pt.1 {
                    stack[j] += v;
                    pt.1 = Some(stack[j]);
                }
            }
        }
        let mut color = s
            .hints
            .color
            .as_deref()
            .and_then(parse_color)
            .unwrap_or_else(|| p.color_list[i % p.color_list.len().max(1)]);
        if let Some(a) = s.hints.alpha {
            color.3 = a.clamp(0.0, 1.0);
        }
        lines.push(Line {
            name: s.name.clone(),
            points,
            color,
            width: s.hints.line_width.unwrap_or(p.line_width),
            dashed: s.hints.dashed,
            infinite: s.hints.draw_as_infinite,
            fill: s.hints.stacked.is_some()
                || p.area_mode == "stacked"
                || p.area_mode == "all"
                || (p.area_mode == "first" && i == 0),
            area_between: s.hints.area_between,
            second_axis: s.hints.second_y_axis,
        });
    }
    lines
}

/// A "nice" tick step (1, 2, 2.5 or 5 × 10ⁿ) giving about `ticks` steps over `range`.
pub fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks.max(1.0)).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Value-axis labels with SI prefixes, as graphite-web's default `yUnitSystem=si`.
pub fn format_si(v: f64) -> String {
    let a = v.abs();
    let (d, suffix) = if a >= 1e15 {
        (1e15, "P")
    } else if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "K")
    } else {
        (1.0, "")
    };
    let x = v / d;
    let s = if (x - x.round()).abs() < 1e-9 {
        format!("{:.0}", x)
    } else if x.abs() >= 10.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// Value range of `lines` with the `yMin`/`yMax` bounds, rounded out to whole ticks; returns
/// (low, high, tick step).
fn y_range<'a>(
    lines: impl Iterator<Item = &'a Line> + Clone,
    y_min: Option<f64>,
    y_max: Option<f64>,
    ticks: f64,
) -> (f64, f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for l in lines.clone().filter(|l| !l.infinite) {
        for v in l
            .points
            .iter()
            .filter_map(|(_, v)| *v)
            .filter(|v| v.is_finite())
        {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if lines.clone().any(|l| l.fill) {
        lo = lo.min(0.0);
    }
    let mut lo = y_min.unwrap_or(lo);
    let mut hi = y_max.unwrap_or(hi);
    if hi <= lo {
        if y_max.is_none() {
            hi = lo + if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        } else {
            lo = hi - 1.0;
        }
    }
    let step = nice_step(hi - lo, ticks);
    if y_min.is_none() {
        lo = (lo / step).floor() * step;
    }
    if y_max.is_none() {
        hi = (hi / step).ceil() * step;
        if hi <= lo {
            hi = lo + step;
        }
    }
    (lo, hi, step)
}

/// Value ticks from `lo` to `hi` every `step`.
fn y_ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut k = (lo / step).ceil();
    while k * step <= hi + step * 1e-9 && out.len() < 200 {
        out.push(k * step);
        k += 1.0;
    }
    out
}

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
    while t <= end && ticks.len() < 1000 {
        ticks.push(t);
        t += step;
    }
    (ticks, fmt)
}

struct Layout {
    font_px: f32,
    texts: Vec<TextItem>,
}

impl Layout {
    /// Queues `text` at pixel `at`, anchored by `align`.
    fn text(
        &mut self,
        text: impl Into<String>,
        at: (i32, i32),
        size: f32,
        color: Rgba,
        align: (HAlign, VAlign),
    ) {
        self.texts.push(TextItem {
            text: text.into(),
            x: at.0,
            y: at.1,
            size,
            color,
            h: align.0,
            v: align.1,
            vertical: false,
        });
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[Series],
    p: &GraphParams,
    tz: Tz,
    out: &mut Layout,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    root.fill(&rgba(p.bgcolor)).map_err(err)?;
    let fg = p.fgcolor;
    let font_px = out.font_px;
    let line_h = line_height(font_px).ceil() as i32;
    let (w, h) = root.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let graph_only = p.graph_only;
    let axes = !(p.hide_axes || graph_only);
    let margin = if graph_only { 0 } else { 6 };
    let mut top = margin;
    let mut bottom = h - margin;

    if let Some(title) = p.title.as_ref().filter(|_| !graph_only) {
        let size = font_px * 1.2;
        out.text(
            title.clone(),
            (w / 2, top),
            size,
            fg,
            (HAlign::Center, VAlign::Top),
        );
        top += line_height(size).ceil() as i32 + 4;
    }
    let has_data = series.iter().any(|s| s.values.iter().any(|v| v.is_some()));
    if !has_data {
        out.text(
            p.no_data_message.clone(),
            (w / 2, (top + bottom) / 2),
            font_px * 1.8,
            fg,
            (HAlign::Center, VAlign::Middle),
        );
        return Ok(());
    }

    let show_legend = !graph_only && p.hide_legend.map(|hl| !hl).unwrap_or(series.len() <= 10);
    let lines = prepare(series, p, (w.max(1)) as u32);

    if show_legend {
        // Rows of entries: a colour box and the name, wrapped to the width.
        let box_px = (font_px * 0.8).round() as i32;
        let row_h = line_h + 3;
        let mut rows: Vec<Vec<(usize, i32)>> = vec![Vec::new()];
        let mut x = margin;
        for (i, l) in lines.iter().enumerate() {
            let name: String = l.name.chars().take(120).collect();
            let entry_w = box_px + 5 + text_width(&name, font_px).ceil() as i32 + 14;
            if x + entry_w > w - margin && !rows.last().is_some_and(|r| r.is_empty()) {
                rows.push(Vec::new());
                x = margin;
            }
            rows.last_mut().expect("a row").push((i, x));
            x += entry_w;
        }
        let legend_h = (rows.len() as i32 * row_h).min(h / 2);
        let legend_top = bottom - legend_h;
        for (r, row) in rows.iter().enumerate() {
            let y = legend_top + r as i32 * row_h;
            if y + row_h > bottom + 1 {
                break;
            }
            for &(i, x) in row {
                let l = &lines[i];
                let by = y + (line_h - box_px) / 2;
                root.draw(&Rectangle::new(
                    [(x, by), (x + box_px, by + box_px)],
                    rgba(l.color).filled(),
                ))
                .map_err(err)?;
                let name: String = l.name.chars().take(120).collect();
                out.text(
                    name,
                    (x + box_px + 5, y),
                    font_px,
                    fg,
                    (HAlign::Left, VAlign::Top),
                );
            }
        }
        bottom = legend_top - 4;
    }

    // Value ranges and tick labels decide how much room the axes need.
    let target_ticks = ((bottom - top) as f64 / (line_h as f64 * 2.5)).clamp(2.0, 10.0);
    let left_lines = || lines.iter().filter(|l| !l.second_axis);
    let right_lines = || lines.iter().filter(|l| l.second_axis);
    let (lo, hi, step) = y_range(left_lines(), p.y_min, p.y_max, target_ticks);
    let ticks = y_ticks(lo, hi, step);
    let second = right_lines()
        .next()
        .is_some()
        .then(|| y_range(right_lines(), None, None, target_ticks));
    let label_w = |ticks: &[f64]| {
        ticks
            .iter()
            .map(|t| text_width(&format_si(*t), font_px).ceil() as i32)
            .max()
            .unwrap_or(0)
            + 8
    };
    let mut plot_left = margin;
    let mut plot_right = w - margin;
    let mut plot_bottom = bottom;
    if axes {
        if let Some(v) = &p.vtitle {
            out.texts.push(TextItem {
                text: v.clone(),
                x: plot_left,
                y: (top + bottom) / 2,
                size: font_px,
                color: fg,
                h: HAlign::Center,
                v: VAlign::Top,
                vertical: true,
            });
            plot_left += line_h + 2;
        }
        plot_left += label_w(&ticks);
        if let Some((lo2, hi2, s2)) = second {
            plot_right -= label_w(&y_ticks(lo2, hi2, s2));
        }
        plot_bottom -= line_h + 4;
    }
    let plot_top = top + if axes { line_h / 2 } else { 0 };
    if plot_right - plot_left < 10 || plot_bottom - plot_top < 10 {
        return Ok(()); // Too small for a plot: the legend and title are all there is room for.
    }

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
    let (start, end) = p.x_range.filter(|(a, b)| b > a).unwrap_or((start, end));

    let area = root.clone().shrink(
        (plot_left, plot_top),
        (
            (plot_right - plot_left) as u32,
            (plot_bottom - plot_top) as u32,
        ),
    );
    let chart = ChartBuilder::on(&area)
        .build_cartesian_2d(start..end, lo..hi)
        .map_err(err)?;
    let chart2 = match second {
        Some((lo2, hi2, _)) => Some(
            ChartBuilder::on(&area)
                .build_cartesian_2d(start..end, lo2..hi2)
                .map_err(err)?,
        ),
        None => None,
    };

    // Grid.
    let (x_ticks, x_fmt) = time_ticks(start, end, (plot_right - plot_left) as u32, 80, &tz);
    if !p.hide_grid && !graph_only {
        let minor = rgba(p.minor_grid_color);
        let major = rgba(p.major_grid_color);
        for pair in ticks.windows(2) {
            let mid = (pair[0] + pair[1]) / 2.0;
            let (_, y) = chart.backend_coord(&(start, mid));
            root.draw(&PathElement::new(
                vec![(plot_left, y), (plot_right, y)],
                minor,
            ))
            .map_err(err)?;
        }
        for t in &ticks {
            let (_, y) = chart.backend_coord(&(start, *t));
            root.draw(&PathElement::new(
                vec![(plot_left, y), (plot_right, y)],
                major,
            ))
            .map_err(err)?;
        }
        for t in &x_ticks {
            let (x, _) = chart.backend_coord(&(*t, lo));
            root.draw(&PathElement::new(
                vec![(x, plot_top), (x, plot_bottom)],
                major,
            ))
            .map_err(err)?;
        }
    }
    // Axes and their labels.
    if axes {
        let fgc = rgba(fg);
        root.draw(&PathElement::new(
            vec![
                (plot_left, plot_top),
                (plot_left, plot_bottom),
                (plot_right, plot_bottom),
            ],
            fgc,
        ))
        .map_err(err)?;
        for t in &ticks {
            let (_, y) = chart.backend_coord(&(start, *t));
            root.draw(&PathElement::new(
                vec![(plot_left - 3, y), (plot_left, y)],
                fgc,
            ))
            .map_err(err)?;
            out.text(
                format_si(*t),
                (plot_left - 5, y),
                font_px,
                fg,
                (HAlign::Right, VAlign::Middle),
            );
        }
        if let (Some((lo2, hi2, s2)), Some(c2)) = (second, chart2.as_ref()) {
            root.draw(&PathElement::new(
                vec![(plot_right, plot_top), (plot_right, plot_bottom)],
                fgc,
            ))
            .map_err(err)?;
            for t in y_ticks(lo2, hi2, s2) {
                let (_, y) = c2.backend_coord(&(start, t));
                out.text(
                    format_si(t),
                    (plot_right + 5, y),
                    font_px,
                    fg,
                    (HAlign::Left, VAlign::Middle),
                );
            }
        }
        for t in &x_ticks {
            let (x, _) = chart.backend_coord(&(*t, lo));
            root.draw(&PathElement::new(
                vec![(x, plot_bottom), (x, plot_bottom + 3)],
                fgc,
            ))
            .map_err(err)?;
            let label = tz
                .timestamp_opt(*t, 0)
                .single()
                .map(|d| d.format(x_fmt).to_string())
                .unwrap_or_default();
            out.text(
                label,
                (x, plot_bottom + 4),
                font_px,
                fg,
                (HAlign::Center, VAlign::Top),
            );
        }
    }

    // Series: filled areas first (largest stack first), then lines on top.
    let runs = |l: &Line, lo: f64, hi: f64| -> Vec<Vec<(i64, f64)>> {
        let mut runs = Vec::new();
        let mut run: Vec<(i64, f64)> = Vec::new();
        let span = hi - lo;
        for (t, v) in &l.points {
            match v.filter(|v| v.is_finite()) {
                Some(v) => run.push((*t, v.clamp(lo - span, hi + span))),
                None => {
                    if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        runs
    };
    macro_rules! on_axis {
        ($l:expr, |$c:ident, $lo:ident, $hi:ident| $body:expr) => {
            match (&chart2, second) {
                (Some($c), Some(($lo, $hi, _))) if $l.second_axis => $body,
                _ => {
                    let $c = &chart;
                    let ($lo, $hi) = (lo, hi);
                    $body
                }
            }
        };
    }
    for l in lines.iter().rev().filter(|l| l.fill && !l.infinite) {
        let fill = RGBAColor(l.color.0, l.color.1, l.color.2, l.color.3 * 0.6);
        on_axis!(l, |c, lo_, hi_| {
            let base = lo_.max(0.0).min(hi_);
            for r in runs(l, lo_, hi_) {
                let mut poly: Vec<(i32, i32)> = r.iter().map(|pt| c.backend_coord(pt)).collect();
                poly.push(c.backend_coord(&(r[r.len() - 1].0, base)));
                poly.push(c.backend_coord(&(r[0].0, base)));
                root.draw(&Polygon::new(poly, fill)).map_err(err)?;
            }
        });
    }
    // areaBetween: consecutive pairs of flagged series bound a filled band.
    let between: Vec<&Line> = lines.iter().filter(|l| l.area_between).collect();
    for pair in between.chunks(2) {
        if let [a, b] = pair {
            let fill = RGBAColor(a.color.0, a.color.1, a.color.2, a.color.3 * 0.5);
            let mut upper = Vec::new();
            let mut lower = Vec::new();
            for ((t, va), (_, vb)) in a.points.iter().zip(b.points.iter()) {
                if let (Some(x), Some(y)) = (va, vb) {
                    upper.push(chart.backend_coord(&(*t, x.clamp(lo, hi))));
                    lower.push(chart.backend_coord(&(*t, y.clamp(lo, hi))));
                }
            }
            if upper.len() > 1 {
                lower.reverse();
                upper.extend(lower);
                root.draw(&Polygon::new(upper, fill)).map_err(err)?;
            }
        }
    }
    for l in &lines {
        let style = ShapeStyle {
            color: rgba(l.color),
            filled: false,
            stroke_width: l.width.round().max(1.0) as u32,
        };
        on_axis!(l, |c, lo_, hi_| {
            if l.infinite {
                for (t, v) in &l.points {
                    if v.is_some_and(|v| v != 0.0) {
                        let (x, _) = c.backend_coord(&(*t, lo_));
                        root.draw(&PathElement::new(
                            vec![(x, plot_top), (x, plot_bottom)],
                            style,
                        ))
                        .map_err(err)?;
                    }
                }
            } else {
                for r in runs(l, lo_, hi_) {
                    let px: Vec<(i32, i32)> = r.iter().map(|pt| c.backend_coord(pt)).collect();
                    if px.len() == 1 {
                        root.draw(&Circle::new(px[0], 1, style.filled()))
                            .map_err(err)?;
                    } else if let Some(d) = l.dashed {
                        let len = (d.max(1.0) * 2.0) as u32;
                        root.draw(&plotters::element::DashedPathElement::new(
                            px, len, len, style,
                        ))
                        .map_err(err)?;
                    } else {
                        root.draw(&PathElement::new(px, style)).map_err(err)?;
                    }
                }
            }
        });
    }
    Ok(())
}

fn layout(params: &GraphParams) -> Layout {
    Layout {
        font_px: (params.font_size * 1.25) as f32,
        texts: Vec::new(),
    }
}

/// Draws `series` as a PNG of `params.width × params.height`, times in `tz`.
pub fn render_png(series: &[Series], params: &GraphParams, tz: Tz) -> Result<Vec<u8>, GraphError> {
    let (w, h) = (params.width, params.height);
    let mut buf = vec![0u8; (w as usize) * (h as usize) * 3];
    let mut out = layout(params);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root, series, params, tz, &mut out)?;
        root.present().map_err(err)?;
    }
    rasterize(&mut buf, w, h, &out.texts);
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(&buf).map_err(err)?;
    }
    Ok(png_bytes)
}

/// Draws `series` as an SVG document of `params.width × params.height`.
pub fn render_svg(series: &[Series], params: &GraphParams, tz: Tz) -> Result<String, GraphError> {
    let mut svg = String::new();
    let mut out = layout(params);
    {
        let root =
            SVGBackend::with_string(&mut svg, (params.width, params.height)).into_drawing_area();
        draw(&root, series, params, tz, &mut out)?;
        for t in &out.texts {
            let anchor = plotters::style::text_anchor::Pos::new(
                match t.h {
                    HAlign::Left => plotters::style::text_anchor::HPos::Left,
                    HAlign::Center => plotters::style::text_anchor::HPos::Center,
                    HAlign::Right => plotters::style::text_anchor::HPos::Right,
                },
                match t.v {
                    VAlign::Top => plotters::style::text_anchor::VPos::Top,
                    VAlign::Middle => plotters::style::text_anchor::VPos::Center,
                    VAlign::Bottom => plotters::style::text_anchor::VPos::Bottom,
                },
            );
            let color = rgba(t.color);
            // plotters' SVG backend writes font sizes divided by 1.24; undo that.
            let mut style =
                TextStyle::from(("DejaVu Sans, sans-serif", t.size as f64 * 1.24).into_font())
                    .color(&color)
                    .pos(anchor);
            if t.vertical {
                style = style.transform(FontTransform::Rotate270);
            }
            root.draw_text(&t.text, &style, (t.x, t.y)).map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let dec = png::Decoder::new(png_bytes);
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        (info.width, info.height, buf)
    }

    #[test]
    fn draws_lines_of_the_requested_size() {
        let s = Series::new(
            "a.b",
            0,
            600,
            60,
            (0..10)
                .map(|i| if i == 5 { None } else { Some(i as f64) })
                .collect(),
            0.0,
        );
        let p = GraphParams {
            width: 400,
            height: 200,
            title: Some("t".into()),
            ..GraphParams::default()
        };
        let png = render_png(std::slice::from_ref(&s), &p, Tz::UTC).unwrap();
        let (w, h, pixels) = decode(&png);
        assert_eq!((w, h), (400, 200));
        // Some pixel carries the first colour of graphite's colorList (blue 100,100,255).
        assert!(pixels.chunks(3).any(|px| px == [100, 100, 255]));
        let svg = render_svg(&[s], &p, Tz::UTC).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("a.b\n</text>"),
            "{svg}"
        );
    }

    #[test]
    fn no_data_picture() {
        let p = GraphParams {
            width: 200,
            height: 100,
            ..GraphParams::default()
        };
        let png = render_png(&[], &p, Tz::UTC).unwrap();
        let (w, h, pixels) = decode(&png);
        assert_eq!((w, h), (200, 100));
        assert!(
            pixels.chunks(3).any(|px| px[0] > 200),
            "white text on black"
        );
    }

    #[test]
    fn hints_and_modes_draw() {
        let mut a = Series::new(
            "a",
            0,
            600,
            60,
            (0..10).map(|i| Some(i as f64)).collect(),
            0.0,
        );
        let mut b = Series::new(
            "b",
            0,
            600,
            60,
            (0..10).map(|i| Some(20.0 - i as f64)).collect(),
            0.0,
        );
        a.hints.area_between = true;
        b.hints.area_between = true;
        let mut c = Series::new(
            "c",
            0,
            600,
            60,
            (0..10).map(|i| Some(i as f64 * 1000.0)).collect(),
            0.0,
        );
        c.hints.second_y_axis = true;
        c.hints.color = Some("red".into());
        let mut d = Series::new(
            "d",
            0,
            600,
            60,
            (0..10).map(|i| Some((i % 3) as f64)).collect(),
            0.0,
        );
        d.hints.draw_as_infinite = true;
        d.hints.dashed = Some(3.0);
        for mode in ["none", "first", "all", "stacked"] {
            let p = GraphParams {
                width: 300,
                height: 200,
                area_mode: mode.into(),
                vtitle: Some("v".into()),
                ..GraphParams::default()
            };
            let png =
                render_png(&[a.clone(), b.clone(), c.clone(), d.clone()], &p, Tz::UTC).unwrap();
            let (_, _, px) = decode(&png);
            assert!(
                px.chunks(3).any(|p| p == [255, 0, 0]),
                "red second-axis line in mode {mode}"
            );
        }
        // A tiny image still renders.
        let p = GraphParams {
            width: 20,
            height: 10,
            ..GraphParams::default()
        };
        assert!(render_png(&[a], &p, Tz::UTC).is_ok());
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

    #[test]
    fn si_labels_and_value_ticks() {
        assert_eq!(format_si(1500.0), "1.5K");
        assert_eq!(format_si(2e6), "2M");
        assert_eq!(format_si(0.25), "0.25");
        assert_eq!(format_si(0.0), "0");
        assert_eq!(y_ticks(0.0, 10.0, 2.5), vec![0.0, 2.5, 5.0, 7.5, 10.0]);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
    }
}
