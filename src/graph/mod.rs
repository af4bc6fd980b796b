//! Graphs: the render API's PNG and SVG output, drawn with plotters and an embedded font
//! (DejaVu Sans, rasterized by [`text`]) so every machine draws the same picture.
//!
//! Knows only [`crate::query::Series`] and its graph hints; it never reads the store.

pub mod color;
pub mod params;
pub mod render;
pub mod text;

pub use params::GraphParams;
pub use render::{render_png, render_svg, GraphError};
