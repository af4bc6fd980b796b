//! Graphs: the render API's PNG and SVG output, drawn with plotters and an embedded font
//! (DejaVu Sans, rasterized by `text`) so every machine draws the same picture.
//!
//! `render` ([`render_png`], [`render_svg`]) runs the drawing steps of graphite-web's `glyph.py` in order, each in its own
//! file: `title`, `legend`, `value_axis` and `time_axis` take their room off the `area`;
//! `grid`, `axes` and `lines` draw on the `plot` that is left. `line` prepares the series,
//! `canvas` takes the shapes and queues the text.
//!
//! Knows only [`crate::query::Series`] and its graph hints; it never reads the store.

mod area;
mod axes;
mod canvas;
mod color;
mod error;
mod grid;
mod legend;
mod line;
mod lines;
mod params;
mod plot;
mod render;
mod scale;
mod text;
mod time_axis;
mod title;
mod value_axis;

pub use color::{parse_color, Rgba};
pub use error::GraphError;
pub use params::GraphParams;
pub use render::{render_png, render_svg};
