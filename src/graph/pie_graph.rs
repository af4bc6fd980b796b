//! glyph.py's `PieGraph`: one slice per series, its value from `pieMode` (graphite-web's
//! `pieAverage`, `pieMaximum`, `pieMinimum` over the series' values), drawn clockwise from
//! the top, with the legend and `valueLabels` (percent or number) at the slices' middles.

use super::canvas::{unquote_plus, Align, Canvas, LegendItem, VAlign};
use super::params::{GraphParams, PieMode};
use crate::query::Series;

/// The slice value of `s` for `mode` (0 when it has no values, as graphite-web's `or 0`).
pub fn pie_value(s: &Series, mode: PieMode) -> f64 {
    let values: Vec<f64> = s
        .consolidated()
        .iter()
        .filter_map(|v| v.filter(|v| v.is_finite()))
        .collect();
    let v = match mode {
        PieMode::Maximum => values.iter().copied().reduce(f64::max),
        PieMode::Minimum => values.iter().copied().reduce(f64::min),
        PieMode::Average => {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        }
    };
    v.filter(|v| *v != 0.0).unwrap_or(0.0)
}

/// Draws `series` as glyph.py's `PieGraph.drawGraph`.
pub fn draw(mut c: Canvas, series: &[Series], p: &GraphParams) -> Canvas {
    if series.is_empty() {
        c.draw_no_data();
        return c;
    }
    let data: Vec<(String, f64)> = series
        .iter()
        .map(|s| (s.name.clone(), pie_value(s, p.pie_mode)))
        .collect();
    let total: f64 = data.iter().map(|d| d.1).sum();
    let alpha = p.area_alpha.unwrap_or(1.0);
    struct Slice {
        name: String,
        value: f64,
        percent: f64,
        color: super::color::Rgba,
        mid: f64,
    }
    let mut slices: Vec<Slice> = data
        .into_iter()
        .map(|(name, value)| Slice {
            name,
            value,
            percent: if total != 0.0 { value / total } else { 0.0 },
            color: c.next_color(),
            mid: 0.0,
        })
        .collect();
    let title_size = c.default_font.size + c.default_font.size.ln().floor();
    c.set_font_size(title_size);
    let fg = c.fg;
    c.set_color(fg, 1.0, false);
    if let Some(t) = p.title.as_deref().filter(|t| !t.is_empty()) {
        c.draw_title(&unquote_plus(t));
    }
    c.set_default_font();
    if !p.hide_legend.unwrap_or(false) {
        let elements: Vec<LegendItem> = slices
            .iter()
            .map(|s| (s.name.clone(), s.color, false))
            .collect();
        c.draw_legend(&elements, false);
    }
    // drawSlices
    let mut theta = 3.0 * std::f64::consts::PI / 2.0;
    let a = c.area;
    let half_x = (a.xmax - a.xmin) / 2.0;
    let half_y = (a.ymax - a.ymin) / 2.0;
    let (x0, y0) = (a.xmin + half_x, a.ymin + half_y);
    let radius = half_x.min(half_y) * 0.95;
    for s in &mut slices {
        c.set_color(s.color, alpha, false);
        c.ctx.move_to(x0, y0);
        let phi = theta + 2.0 * std::f64::consts::PI * s.percent;
        c.ctx.arc(x0, y0, radius, theta, phi);
        c.ctx.line_to(x0, y0);
        c.ctx.fill();
        s.mid = ((theta + phi) / 2.0).rem_euclid(2.0 * std::f64::consts::PI);
        theta = phi;
    }
    if p.value_labels == "none" {
        return c;
    }
    c.set_default_font();
    c.set_color(p.value_labels_color, 1.0, false);
    for s in &slices {
        let label = if p.value_labels == "percent" {
            if s.percent * 100.0 < p.value_labels_min {
                continue;
            }
            format!("%{:.2}", s.percent * 100.0)
        } else {
            if s.value < p.value_labels_min {
                continue;
            }
            if s.value < 10.0 && s.value != s.value.trunc() {
                format!("{:.2}", s.value)
            } else {
                format!("{}", s.value.trunc() as i64)
            }
        };
        let mut theta = s.mid;
        let x = x0 + radius / 2.0 * theta.cos();
        let y = y0 + radius / 2.0 * theta.sin();
        if p.pie_labels_rotated {
            if theta > std::f64::consts::PI / 2.0 && theta <= 3.0 * std::f64::consts::PI / 2.0 {
                theta -= std::f64::consts::PI;
            }
            c.draw_text(
                &label,
                x,
                y,
                Align::Center,
                VAlign::Middle,
                theta.to_degrees(),
            );
        } else {
            c.draw_text(&label, x, y, Align::Center, VAlign::Middle, 0.0);
        }
    }
    c
}
