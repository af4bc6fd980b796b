//! Text for the graphs: measured and, for PNG, rasterized with ab_glyph from the embedded
//! DejaVu Sans, every glyph on one common baseline (plotters' own bitmap text places glyphs
//! by their individual bounds, which lifts dots and flat-bottomed letters).

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};

use super::color::Rgba;

/// The embedded font (DejaVu Sans, see assets/DejaVuSans-LICENSE.txt).
pub static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("the embedded font parses")
}

/// Horizontal anchor of a text item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HAlign {
    /// `x` is the left edge.
    Left,
    /// `x` is the centre.
    Center,
    /// `x` is the right edge.
    Right,
}

/// Vertical anchor of a text item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VAlign {
    /// `y` is the top of the line box.
    Top,
    /// `y` is the middle of the line box.
    Middle,
}

/// One piece of text to draw, in pixels of the whole image.
#[derive(Debug, Clone)]
pub struct TextItem {
    /// The text (one line).
    pub text: String,
    /// Anchor x.
    pub x: i32,
    /// Anchor y.
    pub y: i32,
    /// Size in pixels (the em height).
    pub size: f32,
    /// Colour.
    pub color: Rgba,
    /// Horizontal anchor.
    pub h: HAlign,
    /// Vertical anchor.
    pub v: VAlign,
    /// Drawn rotated a quarter turn counter-clockwise (reading upwards), for `vtitle`.
    pub vertical: bool,
}

/// Width in pixels of `text` at `size` pixels.
pub fn text_width(text: &str, size: f32) -> f32 {
    let f = font();
    let scaled = f.as_scaled(PxScale::from(size));
    let mut w = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            w += scaled.kern(p, id);
        }
        w += scaled.h_advance(id);
        prev = Some(id);
    }
    w
}

/// Height in pixels of a line of text at `size` pixels (ascent + descent).
pub fn line_height(size: f32) -> f32 {
    let f = font();
    let scaled = f.as_scaled(PxScale::from(size));
    scaled.ascent() - scaled.descent()
}

/// Blends `color` with coverage `cov` (0..1) into the RGB pixel at (x, y).
fn blend(buf: &mut [u8], w: u32, h: u32, x: i32, y: i32, color: Rgba, cov: f32) {
    if x < 0 || y < 0 || x as u32 >= w || y as u32 >= h {
        return;
    }
    let a = (cov.clamp(0.0, 1.0) as f64) * color.3;
    let i = (y as usize * w as usize + x as usize) * 3;
    for (k, c) in [color.0, color.1, color.2].into_iter().enumerate() {
        let old = buf[i + k] as f64;
        buf[i + k] = (old + (c as f64 - old) * a).round().clamp(0.0, 255.0) as u8;
    }
}

/// Draws every item onto an RGB8 buffer of `w × h` pixels.
pub fn rasterize(buf: &mut [u8], w: u32, h: u32, items: &[TextItem]) {
    let f = font();
    for item in items {
        let scaled = f.as_scaled(PxScale::from(item.size));
        let width = text_width(&item.text, item.size);
        let height = scaled.ascent() - scaled.descent();
        // Offsets of the text's top-left corner from the anchor, along the text.
        let along = match item.h {
            HAlign::Left => 0.0,
            HAlign::Center => -width / 2.0,
            HAlign::Right => -width,
        };
        let across = match item.v {
            VAlign::Top => 0.0,
            VAlign::Middle => -height / 2.0,
        };
        let baseline = across + scaled.ascent();
        let mut pen = along;
        let mut prev = None;
        for c in item.text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(item.size, point(pen, baseline));
            if let Some(outline) = f.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    // (u, v): pixel in text space, u along the text, v down across it.
                    let u = b.min.x as i32 + gx as i32;
                    let v = b.min.y as i32 + gy as i32;
                    let (px, py) = if item.vertical {
                        (item.x + v, item.y - u)
                    } else {
                        (item.x + u, item.y + v)
                    };
                    blend(buf, w, h, px, py, item.color, cov);
                });
            }
            pen += scaled.h_advance(id);
            prev = Some(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_share_a_baseline() {
        // A period and an "l" drawn side by side end on the same pixel row.
        let (w, h) = (60u32, 40u32);
        let bottom = |t: &str| {
            let mut buf = vec![255u8; (w * h * 3) as usize];
            rasterize(
                &mut buf,
                w,
                h,
                &[TextItem {
                    text: t.into(),
                    x: 5,
                    y: 5,
                    size: 24.0,
                    color: Rgba(0, 0, 0, 1.0),
                    h: HAlign::Left,
                    v: VAlign::Top,
                    vertical: false,
                }],
            );
            (0..h)
                .rev()
                .find(|&y| (0..w).any(|x| buf[((y * w + x) * 3) as usize] < 100))
                .unwrap()
        };
        assert_eq!(bottom("."), bottom("l"));
        assert_eq!(bottom("w"), bottom("l"));
        assert!(text_width("abc", 20.0) > text_width("a", 20.0));
    }
}
