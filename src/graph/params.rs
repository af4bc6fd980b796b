//! The render API's image parameters, read as graphite-web 1.1.8 reads them: `views.py`'s
//! `parseOptions` (numbers, `true`/`false`, empty and `default` ignored) and the defaults of
//! glyph.py (`defaultGraphOptions`: white background, black foreground, rose major and grey
//! minor grid lines, its colorList, Sans 10; 330×250 from `parseOptions`).

use super::color::{parse_color, Rgba, DEFAULT_COLOR_LIST};
use super::template::GraphTemplates;

/// `graphType`: which of glyph.py's graph classes draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphType {
    /// `LineGraph`.
    Line,
    /// `PieGraph`: one slice per series, its value from `pieMode`.
    Pie,
}

/// `lineMode`: how consecutive points are joined (glyph.py's `drawLines`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    /// A straight line from point to point; nulls break the line.
    Slope,
    /// Each value held flat for its step.
    Staircase,
    /// Like slope, but gaps of at most `connectedLimit` nulls are bridged.
    Connected,
}

/// `areaMode`: which series are filled down to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaMode {
    /// Lines only.
    None,
    /// The first series filled.
    First,
    /// Every series filled.
    All,
    /// Series stacked on one another and filled.
    Stacked,
}

/// `pieMode`: the value of a series' pie slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieMode {
    /// The largest non-null value.
    Maximum,
    /// The smallest non-null value.
    Minimum,
    /// Sum of the non-null values over their count (graphite-web's default).
    Average,
}

/// `yUnitSystem`: the prefixes of value-axis labels (glyph.py's `UnitSystems`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitSystem {
    /// k, M, G, T, P (powers of 1000).
    Si,
    /// Ki, Mi, Gi, Ti, Pi (powers of 1024).
    Binary,
    /// Seconds: m, H, D, M, Y.
    Sec,
    /// Milliseconds: s, m, H, D, M, Y.
    Msec,
    /// No prefixes.
    None,
}

/// `yMax`: a number, or `max` (the data's largest value, not rounded up to a tick).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisMax {
    /// A fixed top.
    Value(f64),
    /// `max`: graphite-web's `extremum` source.
    Max,
}

/// The bounds and tick step the user set for one value axis.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AxisSettings {
    /// `yMin` (`yMinLeft`, `yMinRight`).
    pub min: Option<f64>,
    /// `yMax` (…).
    pub max: Option<AxisMax>,
    /// `yLimit` (…): the top is never above this.
    pub limit: Option<f64>,
    /// `yStep` (…): distance between ticks.
    pub step: Option<f64>,
}

/// How the graph looks. Built from request parameters by [`GraphParams::from_query`]; every
/// field is named after the graphite-web parameter it comes from.
#[derive(Debug, Clone)]
pub struct GraphParams {
    /// `width` in pixels (330).
    pub width: u32,
    /// `height` in pixels (250).
    pub height: u32,
    /// `graphType`: line or pie.
    pub graph_type: GraphType,
    /// `margin` in pixels around everything (10).
    pub margin: i64,
    /// `title`: drawn at the top, one line per `\n`.
    pub title: Option<String>,
    /// `vtitle`: the left axis' title, reading upwards.
    pub vtitle: Option<String>,
    /// `vtitleRight`: the right axis' title (only with a second y axis).
    pub vtitle_right: Option<String>,
    /// `bgcolor`.
    pub bgcolor: Rgba,
    /// `fgcolor`: text, legend names.
    pub fgcolor: Rgba,
    /// `majorGridLineColor`.
    pub major_grid_color: Rgba,
    /// `minorGridLineColor`.
    pub minor_grid_color: Rgba,
    /// `colorList`: series colours in turn.
    pub color_list: Vec<Rgba>,
    /// `fontSize` in pixels (glyph.py takes `int()` of it).
    pub font_size: f64,
    /// `fontBold`.
    pub font_bold: bool,
    /// `fontItalic`.
    pub font_italic: bool,
    /// `fontName`: kept for the SVG metadata; every name draws DejaVu Sans (Debian's "Sans").
    pub font_name: String,
    /// `hideLegend`: `None` shows it up to 10 series (graphite-web's LEGEND_MAX_ITEMS).
    pub hide_legend: Option<bool>,
    /// `hideAxes`: no axes, labels or grid.
    pub hide_axes: bool,
    /// `hideXAxis`: no time labels.
    pub hide_x_axis: bool,
    /// `hideYAxis`: no value labels.
    pub hide_y_axis: bool,
    /// `hideGrid`.
    pub hide_grid: bool,
    /// `graphOnly`: only the plot, the whole image.
    pub graph_only: bool,
    /// `uniqueLegend`: a name once in the legend.
    pub unique_legend: bool,
    /// `hideNullFromLegend`: series of only nulls left out of the legend.
    pub hide_null_from_legend: bool,
    /// `yAxisSide=right`: value labels on the right.
    pub y_axis_right: bool,
    /// `yMin`, `yMax`, `yLimit`, `yStep` (also `min`, `max`).
    pub y: AxisSettings,
    /// The `…Left` forms, with a second y axis.
    pub y_left: AxisSettings,
    /// The `…Right` forms, with a second y axis.
    pub y_right: AxisSettings,
    /// `yDivisors`: tick counts to choose from (4,5,6).
    pub y_divisors: Vec<i64>,
    /// `yUnitSystem` (si).
    pub y_unit_system: UnitSystem,
    /// `logBase` (`e` or a number > 1): a logarithmic value axis.
    pub log_base: Option<f64>,
    /// `minorY`: minor grid lines between two major ones (1, at most [`MAX_MINOR_Y`]).
    pub minor_y: i64,
    /// `lineWidth` (also `thickness`) in pixels (1.2).
    pub line_width: f64,
    /// `lineMode` (slope).
    pub line_mode: LineMode,
    /// `connectedLimit`: longest run of nulls `connected` bridges (unbounded).
    pub connected_limit: f64,
    /// `areaMode` (none).
    pub area_mode: AreaMode,
    /// `areaAlpha`: filled areas at this opacity, with their line drawn on top.
    pub area_alpha: Option<f64>,
    /// `drawNullAsZero`.
    pub draw_null_as_zero: bool,
    /// `minXStep`: fewest pixels between points before they are consolidated (1).
    pub min_x_step: f64,
    /// `xFormat`: strftime format of the time labels.
    pub x_format: Option<String>,
    /// `leftColor`, `rightColor`: colour of the series on that axis.
    pub left_color: Option<Rgba>,
    /// See `left_color`.
    pub right_color: Option<Rgba>,
    /// `leftDashed`, `rightDashed`: dash length of the series on that axis.
    pub left_dashed: Option<f64>,
    /// See `left_dashed`.
    pub right_dashed: Option<f64>,
    /// `leftWidth`, `rightWidth`: line width of the series on that axis.
    pub left_width: Option<f64>,
    /// See `left_width`.
    pub right_width: Option<f64>,
    /// `pieMode` (average, as graphite-web's views).
    pub pie_mode: PieMode,
    /// `pieLabels=rotated`: slice labels turned along the slice.
    pub pie_labels_rotated: bool,
    /// `valueLabels`: `none`, `number` or `percent` (percent).
    pub value_labels: String,
    /// `valueLabelsMin`: smallest value (or percent) labelled (5).
    pub value_labels_min: f64,
    /// `valueLabelsColor` (black).
    pub value_labels_color: Rgba,
    /// `template`: the graphTemplates.conf section ([`GraphParams::from_query_with`] applies
    /// it; `default`).
    pub template: String,
}

impl Default for GraphParams {
    fn default() -> Self {
        let c = |s: &str| parse_color(s).expect("a known color");
        GraphParams {
            width: 330,
            height: 250,
            graph_type: GraphType::Line,
            margin: 10,
            title: None,
            vtitle: None,
            vtitle_right: None,
            bgcolor: c("white"),
            fgcolor: c("black"),
            major_grid_color: c("rose"),
            minor_grid_color: c("grey"),
            color_list: DEFAULT_COLOR_LIST.iter().map(|s| c(s)).collect(),
            font_size: 10.0,
            font_bold: false,
            font_italic: false,
            font_name: "Sans".into(),
            hide_legend: None,
            hide_axes: false,
            hide_x_axis: false,
            hide_y_axis: false,
            hide_grid: false,
            graph_only: false,
            unique_legend: false,
            hide_null_from_legend: false,
            y_axis_right: false,
            y: AxisSettings::default(),
            y_left: AxisSettings::default(),
            y_right: AxisSettings::default(),
            y_divisors: vec![4, 5, 6],
            y_unit_system: UnitSystem::Si,
            log_base: None,
            minor_y: 1,
            line_width: 1.2,
            line_mode: LineMode::Slope,
            connected_limit: f64::INFINITY,
            area_mode: AreaMode::None,
            area_alpha: None,
            draw_null_as_zero: false,
            min_x_step: 1.0,
            x_format: None,
            left_color: None,
            right_color: None,
            left_dashed: None,
            right_dashed: None,
            left_width: None,
            right_width: None,
            pie_mode: PieMode::Average,
            pie_labels_rotated: false,
            value_labels: "percent".into(),
            value_labels_min: 5.0,
            value_labels_color: c("black"),
            template: "default".into(),
        }
    }
}

/// Most minor grid lines between two major ones (`minorY`), bounding the work of one graph.
pub const MAX_MINOR_Y: i64 = 100;

/// Largest image side accepted, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// Most pixels in one image (width × height): 8 M pixels, a 32 MiB drawing buffer, bounds the
/// memory of one request.
pub const MAX_PIXELS: u64 = 8 * 1024 * 1024;

/// Python's truth of a parameter as `parseOptions` leaves it: `false` and numeric zero are
/// false, any other text is true.
fn truthy(v: &str) -> bool {
    !(v.eq_ignore_ascii_case("false") || v.parse::<f64>().map(|n| n == 0.0).unwrap_or(false))
}

impl GraphParams {
    /// Reads graphite-web's image parameters from the request's `(key, value)` pairs. Empty
    /// values and `default` are ignored, as in graphite-web; a value graphite-web would fail
    /// on is an error naming the parameter.
    pub fn from_query(pairs: &[(String, String)]) -> Result<GraphParams, String> {
        GraphParams::from_query_with(pairs, None)
    }

    /// As [`GraphParams::from_query`], starting from the template the `template` parameter
    /// names in `templates` (a `graphTemplates.conf`, see [`GraphTemplates`]) instead of
    /// glyph.py's built-in defaults: background, foreground, grid colours, colour list and
    /// font, each of which a request parameter still overrides (glyph.py's `loadTemplate`).
    pub fn from_query_with(
        pairs: &[(String, String)],
        templates: Option<&GraphTemplates>,
    ) -> Result<GraphParams, String> {
        let mut p = GraphParams::default();
        if let Some(templates) = templates {
            let name = pairs
                .iter()
                .rev()
                .map(|(k, v)| (k, v.trim()))
                .find(|(k, v)| *k == "template" && !v.is_empty())
                .map_or("default", |(_, v)| v);
            let t = templates.get(name);
            p.bgcolor = t.background;
            p.fgcolor = t.foreground;
            p.major_grid_color = t.major_line;
            p.minor_grid_color = t.minor_line;
            p.color_list = t.line_colors.clone();
            p.font_name = t.font_name.clone();
            p.font_size = t.font_size;
            p.font_bold = t.font_bold;
            p.font_italic = t.font_italic;
        }
        let mut explicit_y_max = false;
        let mut explicit_y_min = false;
        let mut explicit_width = false;
        let mut fallback_min = None;
        let mut fallback_max = None;
        let mut thickness = None;
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() || v.eq_ignore_ascii_case("default") {
                continue;
            }
            let num = || {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| !n.is_nan())
                    .ok_or_else(|| format!("{k} must be a number, not '{v}'"))
            };
            let color = || parse_color(v).ok_or_else(|| format!("{k}: unknown color '{v}'"));
            let dashed = || {
                if v.eq_ignore_ascii_case("true") {
                    Ok(1.0)
                } else {
                    num()
                }
            };
            let y_max = || {
                if v == "max" {
                    Ok(AxisMax::Max)
                } else {
                    num().map(AxisMax::Value)
                }
            };
            match k.as_str() {
                "width" | "height" => {
                    let n = num()?;
                    if !(1.0..=MAX_SIDE as f64).contains(&n) {
                        return Err(format!("{k} must be between 1 and {MAX_SIDE}, not {v}"));
                    }
                    if k == "width" {
                        p.width = n as u32;
                    } else {
                        p.height = n as u32;
                    }
                }
                "graphType" => {
                    p.graph_type = match v {
                        "line" => GraphType::Line,
                        "pie" => GraphType::Pie,
                        _ => return Err(format!("graphType must be line or pie, not '{v}'")),
                    }
                }
                "margin" => {
                    let m = num()? as i64;
                    p.margin = if m < 0 { 10 } else { m };
                }
                "title" => p.title = Some(v.to_string()),
                "vtitle" => p.vtitle = Some(v.to_string()),
                "vtitleRight" => p.vtitle_right = Some(v.to_string()),
                "bgcolor" => p.bgcolor = color()?,
                "fgcolor" => p.fgcolor = color()?,
                "majorGridLineColor" => p.major_grid_color = color()?,
                "minorGridLineColor" => p.minor_grid_color = color()?,
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
                "fontSize" => p.font_size = num()?.trunc().clamp(1.0, 200.0),
                "fontBold" => p.font_bold = truthy(v),
                "fontItalic" => p.font_italic = truthy(v),
                "fontName" => p.font_name = v.to_string(),
                "hideLegend" => p.hide_legend = Some(truthy(v)),
                "hideAxes" => p.hide_axes = truthy(v),
                "hideXAxis" => p.hide_x_axis = truthy(v),
                "hideYAxis" => p.hide_y_axis = truthy(v),
                "hideGrid" => p.hide_grid = truthy(v),
                "graphOnly" => p.graph_only = truthy(v),
                "uniqueLegend" => p.unique_legend = truthy(v),
                "hideNullFromLegend" => p.hide_null_from_legend = truthy(v),
                "yAxisSide" => p.y_axis_right = v == "right",
                "yMin" => {
                    p.y.min = Some(num()?);
                    explicit_y_min = true;
                }
                "min" => fallback_min = Some(num()?),
                "yMax" => {
                    p.y.max = Some(y_max()?);
                    explicit_y_max = true;
                }
                "max" => fallback_max = Some(y_max()?),
                "yLimit" => p.y.limit = Some(num()?),
                "yStep" => p.y.step = Some(num()?),
                "yMinLeft" => p.y_left.min = Some(num()?),
                "yMaxLeft" => p.y_left.max = Some(y_max()?),
                "yLimitLeft" => p.y_left.limit = Some(num()?),
                "yStepLeft" => p.y_left.step = Some(num()?),
                "yMinRight" => p.y_right.min = Some(num()?),
                "yMaxRight" => p.y_right.max = Some(y_max()?),
                "yLimitRight" => p.y_right.limit = Some(num()?),
                "yStepRight" => p.y_right.step = Some(num()?),
                "yDivisors" => {
                    let d: Result<Vec<i64>, _> =
                        v.split(',').map(|d| d.trim().parse::<i64>()).collect();
                    match d {
                        Ok(d) if !d.is_empty() && d.iter().all(|d| *d >= 1) => p.y_divisors = d,
                        _ => {
                            return Err(format!(
                                "yDivisors must be integers of at least 1, not '{v}'"
                            ))
                        }
                    }
                }
                "yUnitSystem" => {
                    p.y_unit_system = match v.to_ascii_lowercase().as_str() {
                        "binary" => UnitSystem::Binary,
                        "sec" => UnitSystem::Sec,
                        "msec" => UnitSystem::Msec,
                        "none" => UnitSystem::None,
                        // graphite-web falls back to si for any other name.
                        _ => UnitSystem::Si,
                    }
                }
                "logBase" => {
                    p.log_base = if v == "e" {
                        Some(std::f64::consts::E)
                    } else {
                        let b = num()?;
                        // glyph.py ignores a base below 1; a base of 1 fails there.
                        if b == 1.0 {
                            return Err("logBase must be greater than one".into());
                        }
                        (b > 1.0).then_some(b)
                    }
                }
                // Bounded (glyph.py is not): each minor line is drawn per major gap.
                "minorY" => p.minor_y = (num()? as i64).min(MAX_MINOR_Y),
                "lineWidth" => {
                    p.line_width = num()?.clamp(0.0, 100.0);
                    explicit_width = true;
                }
                "thickness" => thickness = Some(num()?.clamp(0.0, 100.0)),
                "lineMode" => {
                    p.line_mode = match v.to_ascii_lowercase().as_str() {
                        "slope" => LineMode::Slope,
                        "staircase" => LineMode::Staircase,
                        "connected" => LineMode::Connected,
                        _ => {
                            return Err(format!(
                                "lineMode must be slope, staircase or connected, not '{v}'"
                            ))
                        }
                    }
                }
                "connectedLimit" => p.connected_limit = num()?,
                "areaMode" => {
                    p.area_mode = match v.to_ascii_lowercase().as_str() {
                        "none" => AreaMode::None,
                        "first" => AreaMode::First,
                        "all" => AreaMode::All,
                        "stacked" => AreaMode::Stacked,
                        _ => {
                            return Err(format!(
                                "areaMode must be none, first, all or stacked, not '{v}'"
                            ))
                        }
                    }
                }
                // glyph.py: a value that is not a number is 0.5; 0 means no alpha at all.
                "areaAlpha" => {
                    p.area_alpha = Some(v.parse::<f64>().unwrap_or(0.5)).filter(|a| *a != 0.0)
                }
                "drawNullAsZero" => p.draw_null_as_zero = truthy(v),
                "minXStep" => p.min_x_step = num()?.max(0.01),
                "xFormat" => p.x_format = Some(v.to_string()),
                "leftColor" => p.left_color = Some(color()?),
                "rightColor" => p.right_color = Some(color()?),
                "leftDashed" => p.left_dashed = Some(dashed()?),
                "rightDashed" => p.right_dashed = Some(dashed()?),
                "leftWidth" => p.left_width = Some(num()?),
                "rightWidth" => p.right_width = Some(num()?),
                "pieMode" => {
                    p.pie_mode = match v {
                        "maximum" => PieMode::Maximum,
                        "minimum" => PieMode::Minimum,
                        "average" => PieMode::Average,
                        _ => {
                            return Err(format!(
                                "pieMode must be maximum, minimum or average, not '{v}'"
                            ))
                        }
                    }
                }
                "pieLabels" => p.pie_labels_rotated = v == "rotated",
                "valueLabels" => {
                    if !matches!(v, "none" | "number" | "percent") {
                        return Err(format!(
                            "valueLabels must be none, number or percent, not '{v}'"
                        ));
                    }
                    p.value_labels = v.to_string();
                }
                "valueLabelsMin" => p.value_labels_min = num()?,
                "valueLabelsColor" => p.value_labels_color = color()?,
                "template" => p.template = v.to_string(),
                _ => {}
            }
        }
        if !explicit_y_min {
            if let Some(m) = fallback_min {
                p.y.min = Some(m);
            }
        }
        if !explicit_y_max {
            if let Some(m) = fallback_max {
                p.y.max = Some(m);
            }
        }
        if !explicit_width {
            if let Some(t) = thickness {
                p.line_width = t;
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
        assert_eq!(p.y.min, Some(0.0));
        assert_eq!(p.y.max, Some(AxisMax::Value(10.0)));
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

    #[test]
    fn aliases_and_python_truth() {
        let p = q(&[
            ("min", "1"),
            ("max", "max"),
            ("thickness", "3"),
            ("hideLegend", "0"),
        ])
        .unwrap();
        assert_eq!(p.y.min, Some(1.0));
        assert_eq!(p.y.max, Some(AxisMax::Max));
        assert_eq!(p.line_width, 3.0);
        assert_eq!(p.hide_legend, Some(false));
        let p = q(&[("yMin", "2"), ("min", "1"), ("logBase", "e")]).unwrap();
        assert_eq!(p.y.min, Some(2.0));
        assert_eq!(p.log_base, Some(std::f64::consts::E));
        assert!(q(&[("lineMode", "wiggly")]).is_err());
        assert_eq!(q(&[("areaAlpha", "x")]).unwrap().area_alpha, Some(0.5));
    }
}
