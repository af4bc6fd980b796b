//! Graphs: the render API's PNG and SVG output, drawn as graphite-web 1.1.8's
//! `render/glyph.py` draws them, ported step by step.
//!
//! Layout (following the drawing):
//! - `params`: every image parameter glyph.py reads, parsed as graphite-web's `parseOptions`.
//! - `render`: [`render_png`] and [`render_svg`], which pick `line_graph` or `pie_graph`.
//! - `canvas`: glyph.py's `Graph` base: margins and the free `area`, `drawText`,
//!   `drawTitle`, `drawLegend`. Each step takes its room off the area and hands the rest on.
//! - `line_graph`: `LineGraph` (vtitles, value axes, time axis, labels, grid, `drawLines`
//!   with every lineMode and areaMode, stacking, a second y axis); `ticks` its value-axis
//!   ticks and labels (`_LinearAxisTics`, `_LogAxisTics`, `format_units`); `time_axis` its
//!   `xAxisConfigs` and `find_x_times`.
//! - `pie_graph`: `PieGraph`.
//! - `surface`: a small Cairo-like context (paths, stroke, fill, clip, save/restore, text) over
//!   an anti-aliased tiny-skia bitmap or an SVG writer laid out as graphite-web's SVG.
//! - `text`: the embedded DejaVu Sans faces (regular, bold, oblique, bold oblique — what "Sans"
//!   is on a Debian graphite-web), measured as Cairo's toy text API measures them.
//!
//! Checked against graphite-web itself by `tests/graph_reference.rs`, which renders a corpus
//! of requests with glyph.py (through `tests/support/graph_reference.py`) and compares text,
//! positions and series paths.
//!
//! `template` picks a section of the `graphTemplates.conf` that `[query] graph_templates` names
//! ([`GraphTemplates`]), as graphite-web's GRAPHTEMPLATES_CONF; without one every name draws
//! glyph.py's `defaultGraphOptions`. Known gaps and deliberate differences: `fontName` is recorded
//! but every name draws DejaVu Sans; text in SVG is `<text>` (graphite-web's Cairo writes glyph
//! outlines); PNG text is laid out with Cairo's hinted font extents and rounded glyph advances,
//! but DejaVu's bytecode hinting can widen or narrow a string by a few pixels in Cairo's PNG
//! ([`render_png_as_svg`] shows the PNG's layout). Where graphite-web fails on a bug of its
//! own, carbonhound draws: a value ≤ 0 on a log axis is a gap (glyph.py hands Cairo a row of
//! None), `yAxisSide=right` with a `vtitle` gets a plot (glyph.py divides by zero). Axis
//! settings glyph.py rejects are a [`GraphError::Axis`], which the render API answers with 400.
//!
//! Knows only [`crate::query::Series`] and its graph hints; it never reads the store.

mod canvas;
mod color;
mod error;
mod line_graph;
mod params;
mod pie_graph;
mod render;
mod surface;
mod template;
mod text;
mod ticks;
mod time_axis;

pub use color::{parse_color, Rgba};
pub use error::GraphError;
pub use params::{
    AreaMode, AxisMax, AxisSettings, GraphParams, GraphType, LineMode, PieMode, UnitSystem,
};
pub use pie_graph::pie_value;
pub use render::{render_png, render_png_as_svg, render_svg};
pub use template::{GraphTemplates, Template, TemplateError};
