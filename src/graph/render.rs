//! The two entry points: a series list drawn as PNG or SVG with the same steps (glyph.py's
//! `LineGraph` or `PieGraph` by `graphType`) on a bitmap or an SVG [`Surface`].

use chrono_tz::Tz;

use super::canvas::Canvas;
pub use super::error::GraphError;
use super::params::{GraphParams, GraphType};
use super::surface::Surface;
use super::{line_graph, pie_graph};
use crate::query::Series;

fn draw(
    ctx: Surface,
    series: &[Series],
    p: &GraphParams,
    tz: Tz,
) -> Result<(Canvas, String), GraphError> {
    let c = Canvas::new(ctx, p);
    match p.graph_type {
        GraphType::Line => line_graph::draw(c, series, p, tz),
        GraphType::Pie => Ok((pie_graph::draw(c, series, p), "{}".into())),
    }
}

/// Draws `series` as a PNG of `params.width × params.height` (anti-aliased lines, fills and
/// text), times in `tz` (graphite-web's `tz`, else its TIME_ZONE).
pub fn render_png(series: &[Series], params: &GraphParams, tz: Tz) -> Result<Vec<u8>, GraphError> {
    let ctx = Surface::raster(params.width, params.height)?;
    let (c, _) = draw(ctx, series, params, tz)?;
    c.ctx.finish_png()
}

/// Draws `series` as an SVG document laid out as graphite-web's: `<g class="graphite">` holding
/// one `<g class="…">` per drawing step (title, legend, axes, grid, lines), text as `<text>`
/// elements at their baseline start, and the trailing `metadata` script.
pub fn render_svg(series: &[Series], params: &GraphParams, tz: Tz) -> Result<String, GraphError> {
    let ctx = Surface::svg(params.width, params.height, false);
    let (c, meta) = draw(ctx, series, params, tz)?;
    Ok(c.ctx.finish_svg(&meta))
}

/// The PNG's drawing written as SVG: [`render_svg`] with the PNG's hinted font metrics (Cairo's
/// image surface rounds them, so graphite-web's PNG and SVG layouts differ by a pixel or two).
/// For checking the PNG's layout against graphite-web's; `render_png` draws the same shapes.
pub fn render_png_as_svg(
    series: &[Series],
    params: &GraphParams,
    tz: Tz,
) -> Result<String, GraphError> {
    let ctx = Surface::svg(params.width, params.height, true);
    let (c, meta) = draw(ctx, series, params, tz)?;
    Ok(c.ctx.finish_svg(&meta))
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

    fn ramp(name: &str, f: impl Fn(usize) -> Option<f64>) -> Series {
        Series::new(name, 0, 600, 60, (0..10).map(f).collect(), 0.0)
    }

    #[test]
    fn draws_lines_of_the_requested_size() {
        let s = ramp("a.b", |i| if i == 5 { None } else { Some(i as f64) });
        let p = GraphParams {
            width: 400,
            height: 200,
            title: Some("t".into()),
            line_width: 3.0,
            ..GraphParams::default()
        };
        let png = render_png(std::slice::from_ref(&s), &p, Tz::UTC).unwrap();
        let (w, h, pixels) = decode(&png);
        assert_eq!((w, h), (400, 200));
        // Some pixel carries the first colour of graphite's colorList (blue 100,100,255).
        assert!(pixels.chunks(3).any(|px| px == [100, 100, 255]));
        let svg = render_svg(&[s], &p, Tz::UTC).unwrap();
        assert!(svg.contains("<g class=\"graphite\">"), "{svg}");
        assert!(svg.contains(">a.b</text>"), "{svg}");
        assert!(svg.contains("<g class=\"lines\">"), "{svg}");
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
            pixels.chunks(3).any(|px| px[0] > 150 && px[1] < 100),
            "red text on white"
        );
    }

    #[test]
    fn hints_and_modes_draw() {
        let mut a = ramp("a", |i| Some(i as f64));
        let mut b = ramp("b", |i| Some(20.0 - i as f64));
        a.hints.stacked = Some("__DEFAULT__".into());
        b.hints.stacked = Some("__DEFAULT__".into());
        b.hints.invisible = true;
        let mut c = ramp("c", |i| Some(i as f64 * 1000.0));
        c.hints.second_y_axis = true;
        c.hints.color = Some("darkred".into());
        c.hints.line_width = Some(3.0);
        let mut d = ramp("d", |i| Some((i % 3) as f64));
        d.hints.draw_as_infinite = true;
        d.hints.dashed = Some(3.0);
        for mode in ["none", "first", "all", "stacked"] {
            let p = GraphParams::from_query(&[
                ("width".to_string(), "300".to_string()),
                ("height".to_string(), "200".to_string()),
                ("areaMode".to_string(), mode.to_string()),
                ("vtitle".to_string(), "v".to_string()),
            ])
            .unwrap();
            let png =
                render_png(&[a.clone(), b.clone(), c.clone(), d.clone()], &p, Tz::UTC).unwrap();
            let (_, _, px) = decode(&png);
            assert!(
                px.chunks(3).any(|p| p == [255, 0, 0]),
                "red second-axis line in mode {mode}"
            );
        }
        // Infinite, NaN and huge values, odd bounds and a tiny image still render.
        let odd = ramp("odd", |i| match i {
            0 => Some(f64::INFINITY),
            1 => Some(f64::NEG_INFINITY),
            2 => Some(f64::NAN),
            3 => Some(1e300),
            _ => Some(-(i as f64)),
        });
        for q in [
            &[("areaMode", "stacked")][..],
            &[("logBase", "10"), ("yMin", "0.1")],
            &[("yMin", "5"), ("yMax", "5")],
            &[("minorY", "100000"), ("margin", "400")],
            &[("graphType", "pie")],
            // Wider than the graph: one point for everything (glyph.py divides by zero).
            &[("minXStep", "1e15")],
        ] {
            let pairs: Vec<(String, String)> = q
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let p = GraphParams::from_query(&pairs).unwrap();
            let _ = render_png(&[odd.clone(), a.clone()], &p, Tz::UTC);
            let _ = render_svg(&[odd.clone(), a.clone()], &p, Tz::UTC);
        }
        // A base barely above 1 would label every 1e-7 step: the labels stop at MAX_LABELS.
        let pairs = vec![("logBase".to_string(), "1.0000001".to_string())];
        let p = GraphParams::from_query(&pairs).unwrap();
        let svg = render_svg(&[ramp("log", |i| Some(1.0 + i as f64))], &p, Tz::UTC).unwrap();
        let labels = svg.matches("<text").count();
        assert!(
            labels <= super::super::ticks::MAX_LABELS + 20,
            "{labels} texts"
        );
        let p = GraphParams {
            width: 20,
            height: 10,
            ..GraphParams::default()
        };
        assert!(render_png(&[a], &p, Tz::UTC).is_ok());
    }
}
