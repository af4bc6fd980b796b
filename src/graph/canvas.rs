//! What glyph.py's `Graph` base class does for both graph types: the image, its margins and
//! the `area` still free for the plot, colours, fonts, `drawText`, `drawRectangle`,
//! `drawTitle` and `drawLegend`. Each step takes its room off `area` and hands the rest on.

use super::color::Rgba;
use super::params::GraphParams;
use super::surface::Surface;
use super::text::{FontExtents, FontSpec};

/// glyph.py's `self.area`: the part of the image still free, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    /// Left edge.
    pub xmin: f64,
    /// Right edge.
    pub xmax: f64,
    /// Top edge.
    pub ymin: f64,
    /// Bottom edge.
    pub ymax: f64,
}

/// Horizontal anchor of [`Canvas::draw_text`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Align {
    /// `x` is where the text starts.
    Left,
    /// `x` is its middle.
    Center,
    /// `x` is where it ends.
    Right,
}

/// Vertical anchor of [`Canvas::draw_text`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VAlign {
    /// `y` is the top of the font's ascent.
    Top,
    /// `y` is the middle of the font's height.
    Middle,
    /// `y` is the baseline.
    Baseline,
}

/// A legend entry: name, colour, and whether its series is on the right axis.
pub type LegendItem = (String, Rgba, bool);

/// The image being drawn and the room left on it.
pub struct Canvas {
    /// The drawing context.
    pub ctx: Surface,
    /// Image width in pixels.
    pub width: f64,
    /// Image height in pixels.
    pub height: f64,
    /// `margin` (glyph.py changes it for `graphOnly` and `yAxisSide=right`).
    pub margin: f64,
    /// The room left.
    pub area: Area,
    /// `fgcolor`.
    pub fg: Rgba,
    /// The default font (`fontSize`, `fontBold`, `fontItalic`).
    pub default_font: FontSpec,
    colors: Vec<Rgba>,
    next_color: usize,
    /// A second y axis is drawn (the legend puts its series on the right).
    pub second_y_axis: bool,
    /// `yAxisSide=right`.
    pub y_axis_right: bool,
}

/// glyph.py's `darkgrey`, the legend boxes' border.
const DARKGREY: Rgba = Rgba(111, 111, 111, 1.0);

impl Canvas {
    /// The image of `p`, filled with the background (glyph.py's `Graph.__init__`).
    pub fn new(mut ctx: Surface, p: &GraphParams) -> Canvas {
        let (w, h) = (f64::from(p.width), f64::from(p.height));
        let margin = p.margin as f64;
        ctx.set_color(p.bgcolor, p.bgcolor.3);
        ctx.rectangle(0.0, 0.0, w, h);
        ctx.fill();
        ctx.set_font(FontSpec {
            size: p.font_size,
            bold: p.font_bold,
            italic: p.font_italic,
            hinted: false,
        });
        let default_font = ctx.font();
        Canvas {
            ctx,
            width: w,
            height: h,
            margin,
            area: Area {
                xmin: margin + 10.0,
                xmax: w - margin,
                ymin: margin,
                ymax: h - margin,
            },
            fg: p.fgcolor,
            default_font,
            colors: if p.color_list.is_empty() {
                GraphParams::default().color_list
            } else {
                p.color_list.clone()
            },
            next_color: 0,
            second_y_axis: false,
            y_axis_right: p.y_axis_right,
        }
    }

    /// The next colour of `colorList`, cycling.
    pub fn next_color(&mut self) -> Rgba {
        let c = self.colors[self.next_color % self.colors.len()];
        self.next_color += 1;
        c
    }

    /// glyph.py's `setColor(value, alpha, forceAlpha)`: a colour given with its own alpha
    /// (`RRGGBBAA`) keeps it unless `force`.
    pub fn set_color(&mut self, c: Rgba, alpha: f64, force: bool) {
        let a = if c.3 < 1.0 && !force { c.3 } else { alpha };
        self.ctx.set_color(c, a);
    }

    /// The default font at another size (glyph.py's `setFont(size=…)`).
    pub fn set_font_size(&mut self, size: f64) {
        self.ctx.set_font(FontSpec {
            size,
            ..self.default_font
        });
    }

    /// Back to the default font (glyph.py's `setFont()`).
    pub fn set_default_font(&mut self) {
        self.ctx.set_font(self.default_font);
    }

    /// The current font's extents.
    pub fn extents(&self) -> FontExtents {
        self.ctx.font().extents()
    }

    /// The advance width of `text` in the current font.
    pub fn text_width(&self, text: &str) -> f64 {
        self.ctx.font().width(text)
    }

    /// glyph.py's `drawText`: `text` anchored at (x, y) by `align`/`valign`, turned `rotate`
    /// degrees clockwise around the anchor.
    pub fn draw_text(
        &mut self,
        text: &str,
        x: f64,
        y: f64,
        align: Align,
        valign: VAlign,
        rotate: f64,
    ) {
        let e = self.extents();
        let width = self.text_width(text);
        let angle = rotate.to_radians();
        let horizontal = match align {
            Align::Left => 0.0,
            Align::Center => width / 2.0,
            Align::Right => width,
        };
        let vertical = match valign {
            VAlign::Top => e.ascent,
            VAlign::Middle => e.height / 2.0 - e.descent,
            VAlign::Baseline => 0.0,
        };
        self.ctx.move_to(x, y);
        self.ctx
            .rel_move_to(angle.sin() * -vertical, angle.cos() * vertical);
        // After Cairo's rotate, the relative move is along the turned text.
        self.ctx
            .rel_move_to(-horizontal * angle.cos(), -horizontal * angle.sin());
        self.ctx.show_text(text, angle);
    }

    /// glyph.py's `drawRectangle`: filled, or its border in the current line width.
    pub fn draw_rectangle(&mut self, x: f64, y: f64, w: f64, h: f64, fill: bool) {
        if fill {
            self.ctx.rectangle(x, y, w, h);
            self.ctx.fill();
        } else {
            let o = self.ctx.line_width() / 2.0;
            self.ctx.rectangle(x + o, y + o, w - o, h - o);
            self.ctx.set_dash(None);
            self.ctx.stroke();
        }
    }

    /// glyph.py's `drawTitle`: centred lines at the top, in the current (title) font.
    pub fn draw_title(&mut self, text: &str) {
        self.ctx.header("title");
        let mut y = self.area.ymin;
        let x = self.width / 2.0;
        let line_height = self.extents().height;
        for line in text.split('\n') {
            self.draw_text(line, x, y, Align::Center, VAlign::Top, 0.0);
            y += line_height;
        }
        self.area.ymin = if self.y_axis_right {
            y
        } else {
            y + self.margin
        };
    }

    /// One legend entry as glyph.py's `drawLegend` draws it: a box of the series' colour
    /// (`colors.0`) with a dark grey border at `(at.0, at.2)`, its name in the foreground
    /// colour (`colors.1`) at `(at.1, at.2)`, aligned `align`.
    fn legend_entry(
        &mut self,
        name: &str,
        colors: (Rgba, Rgba),
        at: (f64, f64, f64),
        box_size: f64,
        align: Align,
    ) {
        let (box_x, text_x, y) = at;
        self.set_color(colors.0, 1.0, false);
        self.draw_rectangle(box_x, y, box_size, box_size, true);
        self.set_color(DARKGREY, 1.0, false);
        self.draw_rectangle(box_x, y, box_size, box_size, false);
        self.set_color(colors.1, 1.0, false);
        self.draw_text(name, text_x, y, align, VAlign::Top, 0.0);
    }

    /// glyph.py's `drawLegend`: coloured boxes and names below the plot, in as many columns
    /// as the widest name allows (left and right axes' series apart with a second y axis).
    pub fn draw_legend(&mut self, elements: &[LegendItem], unique: bool) {
        self.ctx.header("legend");
        let mut seen: Vec<&str> = Vec::new();
        let elements: Vec<&LegendItem> = elements
            .iter()
            .filter(|e| {
                if !unique {
                    return true;
                }
                if seen.contains(&e.0.as_str()) {
                    false
                } else {
                    seen.push(&e.0);
                    true
                }
            })
            .collect();
        let Some(longest) = elements
            .iter()
            .map(|e| e.0.as_str())
            .fold(None::<&str>, |best, n| match best {
                Some(b) if b.chars().count() > n.chars().count() => Some(b),
                _ => Some(n),
            })
        else {
            return;
        };
        let padding = 5.0;
        let test_name = format!("{longest} {longest}");
        let e = self.extents();
        let test_box = e.height - 1.0;
        let test_width = self.text_width(&test_name) + 2.0 * (test_box + padding);
        let right_side_labels = test_width + 50.0 < self.width;

        let box_size = e.height - 1.0;
        let line_height = e.height + 1.0;
        let label_width = self.text_width(longest) + 2.0 * (box_size + padding);
        let fg = self.fg;
        if self.second_y_axis && right_side_labels {
            let mut columns = ((self.width - self.area.xmin) / label_width)
                .floor()
                .max(1.0);
            let num_right = elements.iter().filter(|e| e.2).count() as f64;
            let lines = (elements.len() as f64 - num_right).max(num_right);
            columns = (columns / 2.0).floor();
            if columns < 1.0 {
                columns = 1.0;
            }
            let legend_height = (lines / columns).max(1.0) * line_height + padding;
            self.area.ymax -= legend_height;
            self.ctx.set_line_width(1.0);
            let mut x = self.area.xmin;
            let mut y = self.area.ymax + 2.0 * padding;
            let mut n = 0.0;
            let mut x_right = self.area.xmax - self.area.xmin;
            let mut y_right = y;
            let mut n_right = 0.0;
            for (name, color, right) in elements {
                if *right {
                    n_right += 1.0;
                    self.legend_entry(
                        name,
                        (*color, fg),
                        (x_right - padding, x_right - box_size, y_right),
                        box_size,
                        Align::Right,
                    );
                    x_right -= label_width;
                    if n_right % columns == 0.0 {
                        x_right = self.area.xmax - self.area.xmin;
                        y_right += line_height;
                    }
                } else {
                    n += 1.0;
                    self.legend_entry(
                        name,
                        (*color, fg),
                        (x, x + box_size + padding, y),
                        box_size,
                        Align::Left,
                    );
                    x += label_width;
                    if n % columns == 0.0 {
                        x = self.area.xmin;
                        y += line_height;
                    }
                }
            }
        } else {
            let columns = (self.width / label_width).floor().max(1.0);
            let lines = (elements.len() as f64 / columns).ceil();
            let legend_height = lines * line_height + padding;
            self.area.ymax -= legend_height;
            self.ctx.set_line_width(1.0);
            let mut x = self.area.xmin;
            let mut y = self.area.ymax + 2.0 * padding;
            for (i, (name, color, right)) in elements.into_iter().enumerate() {
                if *right {
                    self.legend_entry(
                        name,
                        (*color, fg),
                        (x + label_width + padding, x + label_width, y),
                        box_size,
                        Align::Right,
                    );
                } else {
                    self.legend_entry(
                        name,
                        (*color, fg),
                        (x, x + box_size + padding, y),
                        box_size,
                        Align::Left,
                    );
                }
                x += label_width;
                if (i as f64 + 1.0) % columns == 0.0 {
                    x = self.area.xmin;
                    y += line_height;
                }
            }
        }
    }

    /// glyph.py's "No Data" picture: red text of size ln(width × height), centred.
    pub fn draw_no_data(&mut self) {
        let (x, y) = (self.width / 2.0, self.height / 2.0);
        self.ctx.set_color(Rgba(200, 0, 50, 1.0), 1.0);
        self.set_font_size((self.width * self.height).ln());
        self.draw_text("No Data", x, y, Align::Center, VAlign::Top, 0.0);
    }
}

/// Python's `unquote_plus`, which glyph.py applies to titles and legend names: `+` is a
/// space and `%XX` a byte.
pub fn unquote_plus(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}
