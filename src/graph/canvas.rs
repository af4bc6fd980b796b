//! The picture being drawn: the plotters drawing area that takes the shapes, the text queued
//! for [`super::text`] to draw on top (PNG) or as `<text>` (SVG), and the font and
//! foreground colour every step writes in.
//!
//! Draws what a step asks, where it asks; it decides no layout.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::RGBAColor;

use super::color::Rgba;
use super::error::{err, GraphError};
use super::text::{line_height, HAlign, TextItem, VAlign};

/// A [`Rgba`] as plotters takes it.
pub fn rgba(c: Rgba) -> RGBAColor {
    RGBAColor(c.0, c.1, c.2, c.3)
}

/// The drawing area of one image, with its queued text.
pub struct Canvas<'a, DB: DrawingBackend> {
    root: &'a DrawingArea<DB, Shift>,
    /// Text in the order it is drawn (later items over earlier ones).
    pub texts: Vec<TextItem>,
    /// The font size in pixels: graphite-web's `fontSize` points × 1.25.
    pub font_px: f32,
    /// Height of a line of text at `font_px`, rounded up.
    pub line_h: i32,
    /// The colour of text, axes and legend names (`fgcolor`).
    pub fg: Rgba,
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB>
where
    DB::ErrorType: 'static,
{
    /// A canvas on `root`, writing `font_px` text in `fg`.
    pub fn new(root: &'a DrawingArea<DB, Shift>, font_px: f32, fg: Rgba) -> Self {
        Canvas {
            root,
            texts: Vec::new(),
            font_px,
            line_h: line_height(font_px).ceil() as i32,
            fg,
        }
    }

    /// Width and height of the whole image in pixels.
    pub fn size(&self) -> (i32, i32) {
        let (w, h) = self.root.dim_in_pixel();
        (w as i32, h as i32)
    }

    /// Queues `text` at pixel `at` in the foreground colour, anchored by `align`.
    pub fn text(
        &mut self,
        text: impl Into<String>,
        at: (i32, i32),
        size: f32,
        align: (HAlign, VAlign),
    ) {
        self.texts.push(TextItem {
            text: text.into(),
            x: at.0,
            y: at.1,
            size,
            color: self.fg,
            h: align.0,
            v: align.1,
            vertical: false,
        });
    }

    /// Queues `text` reading upwards (a quarter turn counter-clockwise), centred on `at.y`,
    /// the top of its line (its left side once turned) at `at.x`: how `vtitle` is drawn.
    pub fn vertical_text(&mut self, text: impl Into<String>, at: (i32, i32)) {
        self.texts.push(TextItem {
            text: text.into(),
            x: at.0,
            y: at.1,
            size: self.font_px,
            color: self.fg,
            h: HAlign::Center,
            v: VAlign::Top,
            vertical: true,
        });
    }

    /// The foreground colour as plotters takes it, for axis lines and ticks.
    pub fn fg_color(&self) -> RGBAColor {
        rgba(self.fg)
    }

    /// Fills the whole image with `color`.
    pub fn fill(&self, color: Rgba) -> Result<(), GraphError> {
        self.root.fill(&rgba(color)).map_err(err)
    }

    /// A polyline through `points`.
    pub fn path(
        &self,
        points: Vec<(i32, i32)>,
        style: impl Into<ShapeStyle>,
    ) -> Result<(), GraphError> {
        self.root
            .draw(&PathElement::new(points, style))
            .map_err(err)
    }

    /// A polyline through `points` in dashes of `dash` pixels with gaps as long.
    pub fn dashed_path(
        &self,
        points: Vec<(i32, i32)>,
        dash: u32,
        style: ShapeStyle,
    ) -> Result<(), GraphError> {
        self.root
            .draw(&DashedPathElement::new(points, dash, dash, style))
            .map_err(err)
    }

    /// A filled polygon.
    pub fn polygon(&self, points: Vec<(i32, i32)>, color: RGBAColor) -> Result<(), GraphError> {
        self.root.draw(&Polygon::new(points, color)).map_err(err)
    }

    /// A filled rectangle between two corners.
    pub fn rect(&self, corners: [(i32, i32); 2], color: Rgba) -> Result<(), GraphError> {
        self.root
            .draw(&Rectangle::new(corners, rgba(color).filled()))
            .map_err(err)
    }

    /// A dot of radius 1 (a run of one point).
    pub fn dot(&self, at: (i32, i32), style: ShapeStyle) -> Result<(), GraphError> {
        self.root.draw(&Circle::new(at, 1, style)).map_err(err)
    }
}
