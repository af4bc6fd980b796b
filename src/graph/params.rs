//! The render API's graph parameters, with graphite-web's defaults (330×250, black
//! background, white foreground, its colorList).

use super::color::{parse_color, Rgba, DEFAULT_COLOR_LIST};

/// How the graph looks. Built from request parameters by [`GraphParams::from_query`].
#[derive(Debug, Clone)]
pub struct GraphParams {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Title drawn at the top.
    pub title: Option<String>,
    /// Vertical axis label.
    pub vtitle: Option<String>,
    /// Background.
    pub bgcolor: Rgba,
    /// Text, axes and legend.
    pub fgcolor: Rgba,
    /// Major grid lines.
    pub major_grid_color: Rgba,
    /// Minor grid lines.
    pub minor_grid_color: Rgba,
    /// Series colors in turn.
    pub color_list: Vec<Rgba>,
    /// `Some(true)` hides the legend, `Some(false)` forces it; `None`: shown up to 10 series.
    pub hide_legend: Option<bool>,
    /// No axes or their labels.
    pub hide_axes: bool,
    /// No grid lines.
    pub hide_grid: bool,
    /// Only the plot: no title, legend, axes or grid.
    pub graph_only: bool,
    /// Lower bound of the value axis.
    pub y_min: Option<f64>,
    /// Upper bound of the value axis.
    pub y_max: Option<f64>,
    /// Line width in pixels.
    pub line_width: f64,
    /// Font size in points.
    pub font_size: f64,
    /// `none`, `first`, `all` or `stacked`: which series are drawn as filled areas.
    pub area_mode: String,
    /// Draw nulls as zero instead of gaps.
    pub draw_null_as_zero: bool,
    /// Text drawn when there is nothing to plot.
    pub no_data_message: String,
    /// The time range to draw, `(from, until)` epoch seconds (the request's); `None` draws
    /// the span of the data.
    pub x_range: Option<(i64, i64)>,
}

impl Default for GraphParams {
    fn default() -> Self {
        GraphParams {
            width: 330,
            height: 250,
            title: None,
            vtitle: None,
            bgcolor: Rgba(0, 0, 0, 1.0),
            fgcolor: Rgba(255, 255, 255, 1.0),
            major_grid_color: Rgba(255, 255, 255, 0.25),
            minor_grid_color: Rgba(255, 255, 255, 0.1),
            color_list: DEFAULT_COLOR_LIST
                .iter()
                .filter_map(|c| parse_color(c))
                .collect(),
            hide_legend: None,
            hide_axes: false,
            hide_grid: false,
            graph_only: false,
            y_min: None,
            y_max: None,
            line_width: 1.2,
            font_size: 10.0,
            area_mode: "none".into(),
            draw_null_as_zero: false,
            no_data_message: "No Data".into(),
            x_range: None,
        }
    }
}

/// Largest image side accepted, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// Most pixels in one image (width × height): 8 M pixels, a 24 MiB drawing buffer, bounds the
/// memory of one request.
pub const MAX_PIXELS: u64 = 8 * 1024 * 1024;

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
}

impl GraphParams {
    /// Reads graphite-web's graph parameters from the request's `(key, value)` pairs
    /// (`width`, `height`, `title`, `vtitle`, `bgcolor`, `fgcolor`, `majorGridLineColor`,
    /// `minorGridLineColor`, `colorList`, `hideLegend`, `hideAxes`, `hideGrid`, `graphOnly`,
    /// `yMin`, `yMax`, `lineWidth`, `fontSize`, `areaMode`, `drawNullAsZero`). Empty values and
    /// `default` are ignored, as in graphite-web. Errors name the parameter.
    pub fn from_query(pairs: &[(String, String)]) -> Result<GraphParams, String> {
        let mut p = GraphParams::default();
        for (k, v) in pairs {
            if v.is_empty() || v.eq_ignore_ascii_case("default") {
                continue;
            }
            let num = |what: &str| {
                v.parse::<f64>()
                    .map_err(|_| format!("{what} must be a number, not '{v}'"))
            };
            let color =
                |what: &str| parse_color(v).ok_or_else(|| format!("{what}: unknown color '{v}'"));
            match k.as_str() {
                "width" | "height" => {
                    let n = num(k)?;
                    if !(1.0..=MAX_SIDE as f64).contains(&n) {
                        return Err(format!("{k} must be between 1 and {MAX_SIDE}, not {v}"));
                    }
                    if k == "width" {
                        p.width = n as u32;
                    } else {
                        p.height = n as u32;
                    }
                }
                "title" => p.title = Some(v.clone()),
                "vtitle" => p.vtitle = Some(v.clone()),
                "bgcolor" => p.bgcolor = color(k)?,
                "fgcolor" => p.fgcolor = color(k)?,
                "majorGridLineColor" => p.major_grid_color = color(k)?,
                "minorGridLineColor" => p.minor_grid_color = color(k)?,
                "colorList" => {
                    let list: Result<Vec<Rgba>, String> = v
                        .split(',')
                        .map(|c| {
                            parse_color(c).ok_or_else(|| format!("colorList: unknown color '{c}'"))
                        })
                        .collect();
                    p.color_list = list?;
                    if p.color_list.is_empty() {
                        p.color_list = GraphParams::default().color_list;
                    }
                }
                "hideLegend" => p.hide_legend = Some(truthy(v)),
                "hideAxes" => p.hide_axes = truthy(v),
                "hideGrid" => p.hide_grid = truthy(v),
                "graphOnly" => p.graph_only = truthy(v),
                "yMin" => p.y_min = Some(num(k)?),
                "yMax" => p.y_max = Some(num(k)?),
                "lineWidth" => p.line_width = num(k)?.clamp(0.1, 50.0),
                "fontSize" => p.font_size = num(k)?.clamp(1.0, 100.0),
                "areaMode" => {
                    if !matches!(v.as_str(), "none" | "first" | "all" | "stacked") {
                        return Err(format!(
                            "areaMode must be none, first, all or stacked, not '{v}'"
                        ));
                    }
                    p.area_mode = v.clone();
                }
                "drawNullAsZero" => p.draw_null_as_zero = truthy(v),
                _ => {}
            }
        }
        if p.width as u64 * p.height as u64 > MAX_PIXELS {
            return Err(format!(
                "width × height must be at most {MAX_PIXELS} pixels, not {} × {}",
                p.width, p.height
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<GraphParams, String> {
        GraphParams::from_query(
            &pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn reads_hound_parameters() {
        let p = q(&[
            ("width", "800"),
            ("height", "400"),
            ("title", "Load"),
            ("bgcolor", "FFFFFF"),
            ("fgcolor", "black"),
            ("colorList", "red,00ff00"),
            ("hideLegend", "true"),
            ("yMin", "0"),
            ("yMax", "10"),
        ])
        .unwrap();
        assert_eq!((p.width, p.height), (800, 400));
        assert_eq!(p.title.as_deref(), Some("Load"));
        assert_eq!(p.bgcolor, Rgba(255, 255, 255, 1.0));
        assert_eq!(p.color_list.len(), 2);
        assert_eq!(p.hide_legend, Some(true));
        assert_eq!((p.y_min, p.y_max), (Some(0.0), Some(10.0)));
        assert!(q(&[("width", "0")]).is_err());
        assert!(q(&[("width", "99999")]).is_err());
        assert!(
            q(&[("width", "8000"), ("height", "8000")]).is_err(),
            "64 M pixels"
        );
        assert!(q(&[("width", "4000"), ("height", "2000")]).is_ok());
        assert!(q(&[("bgcolor", "nocolor")]).is_err());
        assert_eq!(q(&[("width", "")]).unwrap().width, 330);
    }
}
