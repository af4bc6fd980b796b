//! Text for the graphs: the embedded DejaVu Sans faces (regular, bold, oblique, bold oblique:
//! what fontconfig gives Cairo's toy font "Sans" on a Debian graphite-web host), measured as
//! Cairo's toy text API measures them (unhinted advances, no kerning) and turned into outlines
//! that [`super::surface`] fills.
//!
//! Never decides where text goes; `line_graph` and `pie_graph` do, as glyph.py's `drawText`.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, OutlineCurve};
use tiny_skia::{Path, PathBuilder, Transform};

/// DejaVu Sans (see assets/DejaVuSans-LICENSE.txt, which covers all four faces).
static REGULAR: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// DejaVu Sans Bold, for `fontBold=true`.
static BOLD: &[u8] = include_bytes!("../../assets/DejaVuSans-Bold.ttf");
/// DejaVu Sans Oblique, for `fontItalic=true`.
static OBLIQUE: &[u8] = include_bytes!("../../assets/DejaVuSans-Oblique.ttf");
/// DejaVu Sans Bold Oblique, for both.
static BOLD_OBLIQUE: &[u8] = include_bytes!("../../assets/DejaVuSans-BoldOblique.ttf");

/// A font as glyph.py's `setFont` selects it: a face and a size in pixels (Cairo user units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FontSpec {
    /// Em size in pixels.
    pub size: f64,
    /// Bold face.
    pub bold: bool,
    /// Oblique face.
    pub italic: bool,
    /// Metrics as Cairo's image surface reports them (hinted, for PNG): ascent and descent
    /// rounded up and the height rounded to whole pixels, as FreeType's hinted size metrics,
    /// and each glyph's advance rounded. Unhinted (SVG) otherwise.
    pub hinted: bool,
}

fn face(bold: bool, italic: bool) -> &'static FontRef<'static> {
    static FACES: OnceLock<[FontRef<'static>; 4]> = OnceLock::new();
    let faces = FACES.get_or_init(|| {
        [REGULAR, BOLD, OBLIQUE, BOLD_OBLIQUE]
            .map(|bytes| FontRef::try_from_slice(bytes).expect("the embedded fonts parse"))
    });
    &faces[usize::from(bold) + 2 * usize::from(italic)]
}

/// Cairo's `font_extents()` of a font: ascent, descent and line height in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FontExtents {
    /// `maxAscent`.
    pub ascent: f64,
    /// `maxDescent` (positive).
    pub descent: f64,
    /// `maxHeight`: ascent + descent + line gap.
    pub height: f64,
}

impl FontSpec {
    fn font(&self) -> &'static FontRef<'static> {
        face(self.bold, self.italic)
    }

    fn scale(&self) -> f64 {
        self.size / f64::from(self.font().units_per_em().unwrap_or(2048.0))
    }

    /// The font's extents, as Cairo's `font_extents()` without hinting.
    pub fn extents(&self) -> FontExtents {
        let f = self.font();
        let k = self.scale();
        let ascent = f64::from(f.ascent_unscaled()) * k;
        let descent = -f64::from(f.descent_unscaled()) * k;
        let height = ascent + descent + f64::from(f.line_gap_unscaled()) * k;
        if self.hinted {
            FontExtents {
                ascent: (ascent - 1e-9).ceil(),
                descent: (descent - 1e-9).ceil(),
                height: height.round(),
            }
        } else {
            FontExtents {
                ascent,
                descent,
                height,
            }
        }
    }

    /// The advance of one glyph in pixels (rounded when hinted).
    fn advance(&self, id: ab_glyph::GlyphId) -> f64 {
        let a = f64::from(self.font().h_advance_unscaled(id)) * self.scale();
        if self.hinted {
            a.round()
        } else {
            a
        }
    }

    /// The advance of `text` in pixels (Cairo's `text_extents(text).x_advance`: the sum of the
    /// glyphs' advances, no kerning, as the toy text API lays text out).
    pub fn width(&self, text: &str) -> f64 {
        let f = self.font();
        text.chars().map(|c| self.advance(f.glyph_id(c))).sum()
    }

    /// The outline of `text` with its baseline starting at the origin, then moved by
    /// `transform` (Cairo's `text_path` at the current point under the current rotation).
    /// `None` for text with no visible glyphs.
    pub fn outline(&self, text: &str, transform: Transform) -> Option<Path> {
        let f = self.font();
        let k = self.scale() as f32;
        let mut pb = PathBuilder::new();
        let mut pen = 0f32;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(outline) = f.outline(id) {
                // Font units are y-up; the image is y-down.
                let p = |pt: ab_glyph::Point| (pen + pt.x * k, -pt.y * k);
                let mut last: Option<(f32, f32)> = None;
                for curve in &outline.curves {
                    let (start, end) = match curve {
                        OutlineCurve::Line(a, b) => (p(*a), p(*b)),
                        OutlineCurve::Quad(a, _, b) => (p(*a), p(*b)),
                        OutlineCurve::Cubic(a, _, _, b) => (p(*a), p(*b)),
                    };
                    if last != Some(start) {
                        if last.is_some() {
                            pb.close();
                        }
                        pb.move_to(start.0, start.1);
                    }
                    match curve {
                        OutlineCurve::Line(_, _) => pb.line_to(end.0, end.1),
                        OutlineCurve::Quad(_, c1, _) => {
                            let c1 = p(*c1);
                            pb.quad_to(c1.0, c1.1, end.0, end.1)
                        }
                        OutlineCurve::Cubic(_, c1, c2, _) => {
                            let (c1, c2) = (p(*c1), p(*c2));
                            pb.cubic_to(c1.0, c1.1, c2.0, c2.1, end.0, end.1)
                        }
                    }
                    last = Some(end);
                }
                if last.is_some() {
                    pb.close();
                }
            }
            pen += self.advance(id) as f32;
        }
        pb.finish()?.transform(transform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_as_cairo_does() {
        // pycairo on an SVG surface, "Sans" 10 (DejaVu Sans): font_extents
        // (9.2822265625, 2.3583984375, 11.640625), text_extents("12:00").x_advance 28.818359375.
        let mut f = FontSpec {
            size: 10.0,
            bold: false,
            italic: false,
            hinted: false,
        };
        let e = f.extents();
        assert!((e.ascent - 9.2822265625).abs() < 1e-6, "{e:?}");
        assert!((e.descent - 2.3583984375).abs() < 1e-6, "{e:?}");
        assert!((e.height - 11.640625).abs() < 1e-6, "{e:?}");
        assert!((f.width("12:00") - 28.818359375).abs() < 1e-6);
        assert!((f.width("Hello World AVAV") - 88.310546875).abs() < 1e-6);
        assert!(f.outline("a", Transform::identity()).is_some());
        assert!(f.outline(" ", Transform::identity()).is_none());
        // pycairo on an image surface (hinted): (10, 3, 12), "12:00" 27.
        f.hinted = true;
        let e = f.extents();
        assert_eq!((e.ascent, e.descent, e.height), (10.0, 3.0, 12.0));
        assert_eq!(f.width("12:00"), 27.0);
    }
}
