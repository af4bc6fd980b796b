//! Drawing a series list as graphite-web's render API does: title, legend, time and value
//! axes with a grid, one line per series (nulls break the line), graph hints from functions
//! (`color`, `dashed`, `lineWidth`, `stacked`, `drawAsInfinite`, `alpha`, `areaBetween`,
//! `secondYAxis`), and a "No Data" picture when there is nothing to draw. The same drawing
//! code serves PNG (bitmap) and SVG.

use chrono::TimeZone;
use chrono_tz::Tz;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, RGBAColor};

use super::color::{parse_color, Rgba};
use super::params::GraphParams;
use crate::query::Series;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "carbonhound-sans";

fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

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

/// One line to draw: points (timestamp, value-or-null), its color and style.
struct Line {
    name: String,
    points: Vec<(i64, Option<f64>)>,
    color: Rgba,
    width: f64,
    dashed: Option<f64>,
    infinite: bool,
    fill: bool,
}

fn prepare(series: &[Series], p: &GraphParams, plot_width: u32) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut stack: Vec<Option<f64>> = Vec::new();
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
            .map(|(v, t)| (t, if p.draw_null_as_zero { Some(v.unwrap_or(0.0)) } else { v }))
            .collect();
        let stacked = s.hints.stacked.is_some() || p.area_mode == "stacked";
        if stacked {
            if stack.len() < points.len() {
                stack.resize(points.len(), Some(0.0));
            }
            for (j, pt) in points.iter_mut().enumerate() {
                let below = stack[j].unwrap_or(0.0);
                if let Some(v) = pt.1 {
                    pt.1 = Some(v + below);
                    stack[j] = pt.1;
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
            fill: stacked || p.area_mode == "all" || (p.area_mode == "first" && i == 0) || s.hints.area_between,
        });
    }
    lines
}

fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(f64::MIN_POSITIVE);
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
    let s = if (x - x.round()).abs() < 1e-9 { format!("{:.0}", x) } else if x.abs() >= 10.0 { format!("{:.1}", x) } else { format!("{:.2}", x) };
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{suffix}")
}

fn y_range(lines: &[Line], p: &GraphParams) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for l in lines.iter().filter(|l| !l.infinite) {
        for v in l.points.iter().filter_map(|(_, v)| *v).filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if lines.iter().any(|l| l.fill) {
        lo = lo.min(0.0);
    }
    let mut lo = p.y_min.unwrap_or(lo);
    let mut hi = p.y_max.unwrap_or(hi);
    if hi <= lo {
        if p.y_max.is_none() {
            hi = lo + if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        } else {
            lo = hi - 1.0;
        }
    }
    // Round outward to nice ticks, as graphite's axis does, unless pinned.
    let step = nice_step(hi - lo, 5.0);
    if p.y_min.is_none() {
        lo = (lo / step).floor() * step;
    }
    if p.y_max.is_none() {
        hi = (hi / step).ceil() * step;
        if hi <= lo {
            hi = lo + step;
        }
    }
    (lo, hi)
}

fn time_format(span: i64) -> &'static str {
    if span <= 2 * 86400 {
        "%H:%M"
    } else if span <= 14 * 86400 {
        "%a %d"
    } else {
        "%m/%d"
    }
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, series: &[Series], p: &GraphParams, tz: Tz) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    ensure_font();
    root.fill(&rgba(p.bgcolor)).map_err(err)?;
    let fg = rgba(p.fgcolor);
    let font_px = (p.font_size * 1.25).round().max(6.0) as u32;
    let text = TextStyle::from((FAMILY, font_px).into_font()).color(&fg);
    let (w, h) = root.dim_in_pixel();

    let has_data = series.iter().any(|s| s.values.iter().any(|v| v.is_some()));
    let graph_only = p.graph_only;
    let mut area = root.clone();
    if let Some(title) = p.title.as_ref().filter(|_| !graph_only) {
        let title_h = font_px + 8;
        let (top, rest) = area.split_vertically(title_h);
        let tstyle = TextStyle::from((FAMILY, font_px + 2).into_font()).color(&fg).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
        top.draw_text(title, &tstyle, ((w / 2) as i32, (title_h / 2) as i32)).map_err(err)?;
        area = rest;
    }
    if !has_data {
        let style = TextStyle::from((FAMILY, font_px * 2).into_font()).color(&fg).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
        let (aw, ah) = area.dim_in_pixel();
        area.draw_text(&p.no_data_message, &style, ((aw / 2) as i32, (ah / 2) as i32)).map_err(err)?;
        return root.present().map_err(err);
    }

    let show_legend = !graph_only && p.hide_legend.map(|h| !h).unwrap_or(series.len() <= 10);
    let plot_width = w.saturating_sub(if p.hide_axes || graph_only { 0 } else { 60 });
    let lines = prepare(series, p, plot_width);

    if show_legend {
        // Lay the legend out in rows: a colour box and the name per entry.
        let char_w = (font_px as f64 * 0.6).ceil() as u32;
        let row_h = font_px + 6;
        let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
        let mut x = 0u32;
        for (i, l) in lines.iter().enumerate() {
            let entry_w = 20 + char_w * l.name.chars().count().min(80) as u32 + 10;
            if x + entry_w > w.saturating_sub(10) && !rows.last().is_none_or(|r| r.is_empty()) {
                rows.push(Vec::new());
                x = 0;
            }
            rows.last_mut().expect("a row").push(i);
            x += entry_w;
        }
        let legend_h = (rows.len() as u32 * row_h + 6).min(h / 2);
        let (_, ah) = area.dim_in_pixel();
        let (top, bottom) = area.split_vertically(ah.saturating_sub(legend_h));
        for (r, row) in rows.iter().enumerate() {
            let y = 3 + (r as u32 * row_h) as i32;
            let mut x = 8i32;
            for &i in row {
                let l = &lines[i];
                bottom
                    .draw(&Rectangle::new([(x, y + 2), (x + 10, y + 2 + font_px as i32 - 4)], rgba(l.color).filled()))
                    .map_err(err)?;
                let name: String = l.name.chars().take(80).collect();
                bottom.draw_text(&name, &text, (x + 14, y)).map_err(err)?;
                x += (20 + char_w * name.chars().count() as u32 + 10) as i32;
            }
        }
        area = top;
    }

    let start = lines.iter().filter_map(|l| l.points.first().map(|p| p.0)).min().unwrap_or(0);
    let end = lines.iter().filter_map(|l| l.points.last().map(|p| p.0)).max().unwrap_or(start + 1).max(start + 1);
    let (lo, hi) = y_range(&lines, p);
    let axes = !(p.hide_axes || graph_only);
    let mut builder = ChartBuilder::on(&area);
    builder.margin(if axes { 6 } else { 0 });
    if axes {
        builder.x_label_area_size(font_px + 8).y_label_area_size(46);
    }
    let mut chart = builder.build_cartesian_2d(start..end, lo..hi).map_err(err)?;
    {
        let fmt = time_format(end - start);
        let x_fmt = |t: &i64| tz.timestamp_opt(*t, 0).single().map(|d| d.format(fmt).to_string()).unwrap_or_default();
        let y_fmt = |v: &f64| format_si(*v);
        let mut mesh = chart.configure_mesh();
        mesh.x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_labels(((w / 90).max(2)) as usize)
            .y_labels(((h / 40).max(2)) as usize)
            .label_style(text.clone())
            .axis_style(fg)
            .bold_line_style(rgba(p.major_grid_color))
            .light_line_style(rgba(p.minor_grid_color));
        if p.hide_grid || graph_only {
            mesh.disable_mesh();
        }
        if !axes {
            mesh.disable_axes().disable_x_mesh().disable_y_mesh();
        }
        if let Some(v) = &p.vtitle {
            mesh.y_desc(v.as_str());
        }
        mesh.draw().map_err(err)?;
    }
    for l in &lines {
        let color = rgba(l.color);
        let style = ShapeStyle { color, filled: false, stroke_width: l.width.round().max(1.0) as u32 };
        if l.infinite {
            for (t, v) in &l.points {
                if v.is_some_and(|v| v != 0.0) {
                    chart.draw_series(LineSeries::new(vec![(*t, lo), (*t, hi)], style)).map_err(err)?;
                }
            }
            continue;
        }
        // Contiguous non-null runs; a single isolated point is drawn as a dot.
        let mut run: Vec<(i64, f64)> = Vec::new();
        let mut runs: Vec<Vec<(i64, f64)>> = Vec::new();
        for (t, v) in &l.points {
            match v.filter(|v| v.is_finite()) {
                Some(v) => run.push((*t, v.clamp(lo - (hi - lo), hi + (hi - lo)))),
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
        for r in runs {
            if l.fill {
                let fill = RGBAColor(l.color.0, l.color.1, l.color.2, l.color.3 * 0.5);
                chart.draw_series(AreaSeries::new(r.clone(), lo.max(0.0).min(hi), fill).border_style(style)).map_err(err)?;
            } else if r.len() == 1 {
                chart.draw_series(std::iter::once(Circle::new(r[0], 1, style.filled()))).map_err(err)?;
            } else if let Some(d) = l.dashed {
                let len = (d.max(1.0) * 2.0) as u32;
                chart.draw_series(DashedLineSeries::new(r, len, len, style)).map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(r, style)).map_err(err)?;
            }
        }
    }
    root.present().map_err(err)
}

/// Draws `series` as a PNG of `params.width × params.height`, times in `tz`.
pub fn render_png(series: &[Series], params: &GraphParams, tz: Tz) -> Result<Vec<u8>, GraphError> {
    let (w, h) = (params.width, params.height);
    let mut buf = vec![0u8; (w as usize) * (h as usize) * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(root, series, params, tz)?;
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(&buf).map_err(err)?;
    }
    Ok(out)
}

/// Draws `series` as an SVG document of `params.width × params.height`.
pub fn render_svg(series: &[Series], params: &GraphParams, tz: Tz) -> Result<String, GraphError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (params.width, params.height)).into_drawing_area();
        draw(root, series, params, tz)?;
    }
    Ok(out)
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
        let s = Series::new("a.b", 0, 600, 60, (0..10).map(|i| if i == 5 { None } else { Some(i as f64) }).collect(), 0.0);
        let p = GraphParams { width: 400, height: 200, title: Some("t".into()), ..GraphParams::default() };
        let png = render_png(&[s.clone()], &p, Tz::UTC).unwrap();
        let (w, h, pixels) = decode(&png);
        assert_eq!((w, h), (400, 200));
        // Some pixel carries the first colour of graphite's colorList (blue 100,100,255).
        assert!(pixels.chunks(3).any(|px| px == [100, 100, 255]));
        let svg = render_svg(&[s], &p, Tz::UTC).unwrap();
        assert!(svg.starts_with("<svg"));
    }

    #[test]
    fn no_data_picture() {
        let p = GraphParams { width: 200, height: 100, ..GraphParams::default() };
        let png = render_png(&[], &p, Tz::UTC).unwrap();
        let (w, h, pixels) = decode(&png);
        assert_eq!((w, h), (200, 100));
        assert!(pixels.chunks(3).any(|px| px[0] > 200), "white text on black");
    }

    #[test]
    fn si_labels() {
        assert_eq!(format_si(1500.0), "1.5K");
        assert_eq!(format_si(2e6), "2M");
        assert_eq!(format_si(0.25), "0.25");
        assert_eq!(format_si(0.0), "0");
    }
}
