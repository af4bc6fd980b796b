//! Graphs: the render API's PNG and SVG output, drawn with plotters and an embedded font
//! (DejaVu Sans, rasterized by [`text`]) so every machine draws the same picture.
//!
//! [`render`] runs the drawing steps of graphite-web's `glyph.py` in order, each in its own
//! file: [`title`], [`legend`], [`value_axis`] and [`time_axis`] take their room off the
//! [`area`]; [`grid`], [`axes`] and [`lines`] draw on the [`plot`] that is left.
//!
//! Knows only [`crate::query::Series`] and its graph hints; it never reads the store.

pub mod area;
pub mod axes;
pub mod canvas;
pub mod color;
pub mod error;
pub mod grid;
pub mod legend;
pub mod line;
pub mod lines;
pub mod params;
pub mod plot;
pub mod render;
pub mod text;
pub mod time_axis;
pub mod title;
pub mod value_axis;

pub use error::GraphError;
pub use params::GraphParams;
pub use render::{render_png, render_svg};
