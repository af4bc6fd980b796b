//! Drawing a series list as graphite-web's render API does (`render/glyph.py`'s
//! `LineGraph.drawGraph`): a sequence of steps, each drawing its part and taking its room off
//! the [`Area`] still free, so what is left at the end is the plot — title, legend, vtitle,
//! the axes' label room, then grid, axes and series on the plot. A "No Data" picture when
//! there is nothing to draw.
//!
//! plotters maps coordinates and draws the shapes; the layout and every piece of text are
//! ours (see [`super::text`]), so PNG and SVG show the same picture. This file owns the order
//! of the steps and the two output formats; the steps live in their own files.

use chrono_tz::Tz;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::area::Area;
use super::axes::draw_axes;
use super::canvas::{rgba, Canvas};
use super::error::err;
pub use super::error::GraphError;
use super::grid::draw_grid;
use super::legend::{self, draw_legend};
use super::line;
use super::lines::draw_lines;
use super::params::GraphParams;
use super::plot::Plot;
use super::text::{rasterize, HAlign, VAlign};
use super::time_axis::{self, TimeAxis};
use super::title::{draw_no_data, draw_title, draw_vtitle};
use super::value_axis::ValueAxes;
use crate::query::Series;

/// Space around everything but a `graphOnly` plot, in pixels.
const MARGIN: i32 = 6;

/// Draws `series` onto `canvas`, step by step as graphite-web's `drawGraph`.
fn draw<DB: DrawingBackend>(
    canvas: &mut Canvas<'_, DB>,
    series: &[Series],
    p: &GraphParams,
    tz: Tz,
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    canvas.fill(p.bgcolor)?;
    let (w, h) = canvas.size();
    let mut area = Area::inset(w, h, if p.graph_only { 0 } else { MARGIN });
    let axes = !(p.hide_axes || p.graph_only);

    if let Some(title) = p.title.as_ref().filter(|_| !p.graph_only) {
        draw_title(canvas, &mut area, title);
    }
    if !series.iter().any(|s| s.values.iter().any(|v| v.is_some())) {
        draw_no_data(canvas, &area, &p.no_data_message);
        return Ok(());
    }
    let lines = line::prepare(series, p, w.max(1) as u32);
    if legend::shown(p, series.len()) {
        draw_legend(canvas, &mut area, &lines)?;
    }
    // The value ranges (their tick count follows the height left) decide how much room
    // the value labels need.
    let values = ValueAxes::setup(&lines, p.y_min, p.y_max, area.height(), canvas.line_h);
    if axes {
        if let Some(vtitle) = &p.vtitle {
            draw_vtitle(canvas, &mut area, vtitle);
        }
        values.take_label_room(&mut area, canvas.font_px, canvas.line_h);
        time_axis::take_label_room(&mut area, canvas.line_h);
    }
    let span = time_axis::span(&lines, p.x_range);
    let Some(plot) = Plot::new(area, span, &values) else {
        return Ok(()); // Too small for a plot: the legend and title are all there is room for.
    };
    let times = TimeAxis::setup(span.0, span.1, plot.area.width() as u32, &tz);

    if !p.hide_grid && !p.graph_only {
        draw_grid(
            canvas,
            &plot,
            &values.left.ticks,
            &times.ticks,
            (p.minor_grid_color, p.major_grid_color),
        )?;
    }
    if axes {
        draw_axes(canvas, &plot, &values, &times, &tz)?;
    }
    draw_lines(canvas, &plot, &lines)
}

/// The font size in pixels for `params.font_size` points.
fn font_px(params: &GraphParams) -> f32 {
    (params.font_size * 1.25) as f32
}

/// Draws `series` as a PNG of `params.width × params.height`, times in `tz`.
pub fn render_png(series: &[Series], params: &GraphParams, tz: Tz) -> Result<Vec<u8>, GraphError> {
    let (w, h) = (params.width, params.height);
    let mut buf = vec![0u8; (w as usize) * (h as usize) * 3];
    let texts = {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let mut canvas = Canvas::new(&root, font_px(params), params.fgcolor);
        draw(&mut canvas, series, params, tz)?;
        root.present().map_err(err)?;
        canvas.texts
    };
    rasterize(&mut buf, w, h, &texts);
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
    {
        let root =
            SVGBackend::with_string(&mut svg, (params.width, params.height)).into_drawing_area();
        let mut canvas = Canvas::new(&root, font_px(params), params.fgcolor);
        draw(&mut canvas, series, params, tz)?;
        draw_svg_texts(&root, &canvas.texts)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Writes the queued text as SVG `<text>` elements (the viewer's font draws them).
fn draw_svg_texts<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    texts: &[super::text::TextItem],
) -> Result<(), GraphError>
where
    DB::ErrorType: 'static,
{
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    for t in texts {
        let anchor = Pos::new(
            match t.h {
                HAlign::Left => HPos::Left,
                HAlign::Center => HPos::Center,
                HAlign::Right => HPos::Right,
            },
            match t.v {
                VAlign::Top => VPos::Top,
                VAlign::Middle => VPos::Center,
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
    Ok(())
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
}
