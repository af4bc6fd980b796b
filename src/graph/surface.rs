//! A small Cairo-like drawing context, so glyph.py's drawing code ports nearly line by line:
//! a current path (`move_to`, `line_to`, `rectangle`, `arc`, …), a source colour, line width
//! and dash, `stroke`, `fill`, `clip` with `save`/`restore`, and `show_text` at the current
//! point. Two outputs behind it: an anti-aliased bitmap (tiny-skia, encoded as PNG) and an SVG
//! document laid out as graphite-web's (`<g class="graphite">`, then a `<g class="…">` per
//! `encodeHeader` step: title, legend, axes, grid, lines).
//!
//! Decides nothing about the picture; it draws what it is told, where it is told.

use std::fmt::Write as _;

use tiny_skia::{
    FillRule, LineCap, LineJoin, Mask, Paint, PathBuilder, Pixmap, Stroke, StrokeDash, Transform,
};

use super::color::Rgba;
use super::error::{err, GraphError};
use super::text::FontSpec;

/// One step of a path, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seg {
    /// Starts a sub-path.
    Move(f64, f64),
    /// A straight line from the current point.
    Line(f64, f64),
    /// Closes the sub-path back to its start.
    Close,
}

/// The graphics state `save` keeps and `restore` brings back (Cairo's gstate).
#[derive(Clone)]
struct State {
    color: Rgba,
    line_width: f64,
    dash: Option<(f64, f64)>,
    clip: Option<Mask>,
    /// SVG: `<g clip-path>` groups opened in this state.
    open_clips: usize,
    font: FontSpec,
}

enum Output {
    Raster(Pixmap),
    Svg {
        body: String,
        next_clip: usize,
        /// The `encodeHeader` group is open.
        in_header: bool,
    },
}

/// The drawing context of one image.
pub struct Surface {
    /// Text measured with hinted metrics (Cairo's image surface), see [`FontSpec::hinted`].
    hinted: bool,
    width: u32,
    height: u32,
    out: Output,
    state: State,
    saved: Vec<State>,
    path: Vec<Seg>,
    current: Option<(f64, f64)>,
    subpath_start: Option<(f64, f64)>,
}

fn fmt_num(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Surface {
    /// A transparent bitmap of `width × height` pixels.
    pub fn raster(width: u32, height: u32) -> Result<Surface, GraphError> {
        let pixmap = Pixmap::new(width.max(1), height.max(1))
            .ok_or_else(|| GraphError::Drawing(format!("cannot draw a {width}×{height} image")))?;
        Ok(Surface::with(width, height, Output::Raster(pixmap), true))
    }

    /// An SVG document of `width × height` pixels; `hinted` measures text as the PNG does.
    pub fn svg(width: u32, height: u32, hinted: bool) -> Surface {
        Surface::with(
            width,
            height,
            Output::Svg {
                body: String::new(),
                next_clip: 0,
                in_header: false,
            },
            hinted,
        )
    }

    fn with(width: u32, height: u32, out: Output, hinted: bool) -> Surface {
        Surface {
            hinted,
            width,
            height,
            out,
            state: State {
                color: Rgba(0, 0, 0, 1.0),
                line_width: 2.0,
                dash: None,
                clip: None,
                open_clips: 0,
                font: FontSpec {
                    size: 10.0,
                    bold: false,
                    italic: false,
                    hinted,
                },
            },
            saved: Vec::new(),
            path: Vec::new(),
            current: None,
            subpath_start: None,
        }
    }

    /// Sets the source colour; `alpha` multiplies the colour's own.
    pub fn set_color(&mut self, c: Rgba, alpha: f64) {
        self.state.color = Rgba(c.0, c.1, c.2, alpha);
    }

    /// Sets the stroke width in pixels.
    pub fn set_line_width(&mut self, w: f64) {
        self.state.line_width = w;
    }

    /// The stroke width in pixels.
    pub fn line_width(&self) -> f64 {
        self.state.line_width
    }

    /// Dashes of `on` pixels with gaps as long, starting `offset` into the pattern (Cairo's
    /// `set_dash([on], offset)`); `None` for solid lines.
    pub fn set_dash(&mut self, dash: Option<(f64, f64)>) {
        self.state.dash = dash.filter(|(on, _)| *on > 0.0);
    }

    /// Selects the font later text is measured and drawn in (hinted as the surface is).
    pub fn set_font(&mut self, font: FontSpec) {
        self.state.font = FontSpec {
            hinted: self.hinted,
            ..font
        };
    }

    /// The current font.
    pub fn font(&self) -> FontSpec {
        self.state.font
    }

    /// Starts a new sub-path at (x, y).
    pub fn move_to(&mut self, x: f64, y: f64) {
        self.path.push(Seg::Move(x, y));
        self.current = Some((x, y));
        self.subpath_start = Some((x, y));
    }

    /// A line to (x, y); without a current point, Cairo's `line_to` is a `move_to`.
    pub fn line_to(&mut self, x: f64, y: f64) {
        if self.current.is_none() {
            self.move_to(x, y);
            return;
        }
        self.path.push(Seg::Line(x, y));
        self.current = Some((x, y));
    }

    /// Moves the current point by (dx, dy) (no-op without one).
    pub fn rel_move_to(&mut self, dx: f64, dy: f64) {
        if let Some((x, y)) = self.current {
            self.move_to(x + dx, y + dy);
        }
    }

    /// Closes the current sub-path.
    pub fn close_path(&mut self) {
        if self.current.is_some() {
            self.path.push(Seg::Close);
            self.current = self.subpath_start;
        }
    }

    /// A closed rectangle sub-path.
    pub fn rectangle(&mut self, x: f64, y: f64, w: f64, h: f64) {
        self.move_to(x, y);
        self.line_to(x + w, y);
        self.line_to(x + w, y + h);
        self.line_to(x, y + h);
        self.close_path();
    }

    /// An arc around (xc, yc) from angle `a1` to `a2` (radians, clockwise on screen), joined
    /// to the current point by a line as Cairo's `arc` does; drawn as segments of ≤ 1°.
    pub fn arc(&mut self, xc: f64, yc: f64, r: f64, a1: f64, a2: f64) {
        let span = (a2 - a1).max(0.0);
        let n = ((span.to_degrees()).ceil() as usize).max(1);
        for i in 0..=n {
            let a = a1 + span * i as f64 / n as f64;
            self.line_to(xc + r * a.cos(), yc + r * a.sin());
        }
    }

    /// A copy of the current path (Cairo's `copy_path`).
    pub fn copy_path(&self) -> Vec<Seg> {
        self.path.clone()
    }

    /// Appends `segs` to the current path (Cairo's `append_path`).
    pub fn append_path(&mut self, segs: &[Seg]) {
        for s in segs {
            match *s {
                Seg::Move(x, y) => self.move_to(x, y),
                Seg::Line(x, y) => self.line_to(x, y),
                Seg::Close => self.close_path(),
            }
        }
    }

    fn take_path(&mut self) -> Vec<Seg> {
        self.current = None;
        self.subpath_start = None;
        std::mem::take(&mut self.path)
    }

    fn skia_path(segs: &[Seg]) -> Option<tiny_skia::Path> {
        let mut pb = PathBuilder::new();
        for s in segs {
            match *s {
                Seg::Move(x, y) => pb.move_to(x as f32, y as f32),
                Seg::Line(x, y) => pb.line_to(x as f32, y as f32),
                Seg::Close => pb.close(),
            }
        }
        pb.finish()
    }

    fn svg_d(segs: &[Seg]) -> String {
        let mut d = String::new();
        for s in segs {
            match *s {
                Seg::Move(x, y) => {
                    let _ = write!(d, "M {} {} ", fmt_num(x), fmt_num(y));
                }
                Seg::Line(x, y) => {
                    let _ = write!(d, "L {} {} ", fmt_num(x), fmt_num(y));
                }
                Seg::Close => d.push_str("Z "),
            }
        }
        d.trim_end().to_string()
    }

    fn paint(&self) -> Paint<'static> {
        let c = self.state.color;
        let mut paint = Paint::default();
        paint.set_color_rgba8(c.0, c.1, c.2, (c.3.clamp(0.0, 1.0) * 255.0).round() as u8);
        paint.anti_alias = true;
        paint
    }

    fn svg_color(&self) -> (String, f64) {
        let c = self.state.color;
        (format!("rgb({},{},{})", c.0, c.1, c.2), c.3.clamp(0.0, 1.0))
    }

    /// Strokes the current path and clears it.
    pub fn stroke(&mut self) {
        let segs = self.take_path();
        if !segs.iter().any(|s| matches!(s, Seg::Line(..))) {
            return;
        }
        let paint = self.paint();
        let (color, opacity) = self.svg_color();
        let lw = self.state.line_width;
        let dash = self.state.dash;
        match &mut self.out {
            Output::Raster(pixmap) => {
                let Some(path) = Surface::skia_path(&segs) else {
                    return;
                };
                let stroke = Stroke {
                    width: lw as f32,
                    miter_limit: 10.0,
                    line_cap: LineCap::Butt,
                    line_join: LineJoin::Miter,
                    dash: dash.and_then(|(on, off)| {
                        StrokeDash::new(vec![on as f32, on as f32], off as f32)
                    }),
                };
                pixmap.stroke_path(
                    &path,
                    &paint,
                    &stroke,
                    Transform::identity(),
                    self.state.clip.as_ref(),
                );
            }
            Output::Svg { body, .. } => {
                let dash = dash
                    .map(|(on, off)| {
                        format!(
                            " stroke-dasharray=\"{0},{0}\" stroke-dashoffset=\"{1}\"",
                            fmt_num(on),
                            fmt_num(off)
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    body,
                    "<path fill=\"none\" stroke=\"{color}\" stroke-opacity=\"{}\" stroke-width=\"{}\" stroke-miterlimit=\"10\"{dash} d=\"{}\"/>",
                    fmt_num(opacity),
                    fmt_num(lw),
                    Surface::svg_d(&segs)
                );
            }
        }
    }

    /// Fills the current path (non-zero winding, as Cairo's default) and clears it.
    pub fn fill(&mut self) {
        let segs = self.take_path();
        let paint = self.paint();
        let (color, opacity) = self.svg_color();
        match &mut self.out {
            Output::Raster(pixmap) => {
                if let Some(path) = Surface::skia_path(&segs) {
                    pixmap.fill_path(
                        &path,
                        &paint,
                        FillRule::Winding,
                        Transform::identity(),
                        self.state.clip.as_ref(),
                    );
                }
            }
            Output::Svg { body, .. } => {
                if segs.is_empty() {
                    return;
                }
                let _ = writeln!(
                    body,
                    "<path fill=\"{color}\" fill-opacity=\"{}\" stroke=\"none\" d=\"{}\"/>",
                    fmt_num(opacity),
                    Surface::svg_d(&segs)
                );
            }
        }
    }

    /// Intersects the clip with the current path and clears it.
    pub fn clip(&mut self) {
        let segs = self.take_path();
        let (w, h) = (self.width.max(1), self.height.max(1));
        match &mut self.out {
            Output::Raster(_) => {
                let Some(path) = Surface::skia_path(&segs) else {
                    return;
                };
                match &mut self.state.clip {
                    Some(mask) => {
                        mask.intersect_path(&path, FillRule::Winding, true, Transform::identity())
                    }
                    None => {
                        if let Some(mut mask) = Mask::new(w, h) {
                            mask.fill_path(&path, FillRule::Winding, true, Transform::identity());
                            self.state.clip = Some(mask);
                        }
                    }
                }
            }
            Output::Svg {
                body, next_clip, ..
            } => {
                let id = *next_clip;
                *next_clip += 1;
                let _ = writeln!(
                    body,
                    "<clipPath id=\"clip{id}\"><path clip-rule=\"nonzero\" d=\"{}\"/></clipPath>\n<g clip-path=\"url(#clip{id})\">",
                    Surface::svg_d(&segs)
                );
                self.state.open_clips += 1;
            }
        }
    }

    /// Keeps the graphics state (colour, width, dash, clip, font).
    pub fn save(&mut self) {
        let mut kept = self.state.clone();
        kept.open_clips = 0;
        // The groups opened so far belong to the kept state; the new one counts from zero.
        self.saved.push(std::mem::replace(&mut self.state, kept));
    }

    /// Brings back the state of the matching `save`, closing the clips set since.
    pub fn restore(&mut self) {
        if let Some(prev) = self.saved.pop() {
            let opened = self.state.open_clips;
            if let Output::Svg { body, .. } = &mut self.out {
                for _ in 0..opened {
                    body.push_str("</g>\n");
                }
            }
            self.state = prev;
        }
    }

    /// Fills `text` in the current font and colour with its baseline starting at the current
    /// point, turned `angle` radians clockwise around it (Cairo's `rotate` + `text_path` +
    /// `fill`). Clears the path.
    pub fn show_text(&mut self, text: &str, angle: f64) {
        let Some((x, y)) = self.current else {
            return;
        };
        self.take_path();
        let font = self.state.font;
        let paint = self.paint();
        let (color, opacity) = self.svg_color();
        match &mut self.out {
            Output::Raster(pixmap) => {
                let t = Transform::from_rotate(angle.to_degrees() as f32)
                    .post_translate(x as f32, y as f32);
                if let Some(path) = font.outline(text, t) {
                    pixmap.fill_path(
                        &path,
                        &paint,
                        FillRule::Winding,
                        Transform::identity(),
                        self.state.clip.as_ref(),
                    );
                }
            }
            Output::Svg { body, .. } => {
                let rotate = if angle != 0.0 {
                    format!(
                        " transform=\"rotate({} {} {})\"",
                        fmt_num(angle.to_degrees()),
                        fmt_num(x),
                        fmt_num(y)
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    body,
                    "<text x=\"{}\" y=\"{}\"{rotate} font-family=\"DejaVu Sans, sans-serif\" font-size=\"{}\"{}{} fill=\"{color}\" fill-opacity=\"{}\">{}</text>",
                    fmt_num(x),
                    fmt_num(y),
                    fmt_num(font.size),
                    if font.bold { " font-weight=\"bold\"" } else { "" },
                    if font.italic { " font-style=\"oblique\"" } else { "" },
                    fmt_num(opacity),
                    xml_escape(text)
                );
            }
        }
    }

    /// Starts the SVG group of one drawing step (glyph.py's `encodeHeader`): closes the group
    /// before it and opens `<g class="name">`. Nothing on a bitmap.
    pub fn header(&mut self, name: &str) {
        if let Output::Svg {
            body, in_header, ..
        } = &mut self.out
        {
            if *in_header {
                body.push_str("</g>\n");
            }
            let _ = writeln!(body, "<g class=\"{name}\">");
            *in_header = true;
        }
    }

    /// The finished bitmap as PNG bytes.
    pub fn finish_png(self) -> Result<Vec<u8>, GraphError> {
        let Output::Raster(pixmap) = self.out else {
            return Err(GraphError::Drawing("not a bitmap surface".into()));
        };
        // Opaque RGB, as the background always covers the image.
        let (w, h) = (pixmap.width(), pixmap.height());
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for px in pixmap.pixels() {
            let c = px.demultiply();
            rgb.extend_from_slice(&[c.red(), c.green(), c.blue()]);
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut writer = enc.write_header().map_err(err)?;
            writer.write_image_data(&rgb).map_err(err)?;
        }
        Ok(out)
    }

    /// The finished SVG document; `metadata` is the JSON of graphite-web's trailing
    /// `<script>` (its `metadata = …`).
    pub fn finish_svg(mut self, metadata: &str) -> String {
        while !self.saved.is_empty() {
            self.restore();
        }
        let opened = self.state.open_clips;
        let (w, h) = (self.width, self.height);
        let Output::Svg {
            body, in_header, ..
        } = &mut self.out
        else {
            return String::new();
        };
        for _ in 0..opened {
            body.push_str("</g>\n");
        }
        if *in_header {
            body.push_str("</g>\n");
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}px\" height=\"{h}px\" viewBox=\"0 0 {w} {h}\" version=\"1.1\">\n<g class=\"graphite\">\n{body}</g>\n<script>\n  <![CDATA[\n    metadata = {}\n  ]]>\n</script>\n</svg>",
            metadata.replace("]]>", "]]&gt;")
        )
    }
}
