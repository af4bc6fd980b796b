//! Colors as graphite-web's render API names them: its color aliases (`red`, `blue`, …,
//! with graphite's own RGB values) or hex `RRGGBB` / `#RRGGBB` / `RRGGBBAA`.

/// An RGBA color.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rgba(pub u8, pub u8, pub u8, pub f64);

/// graphite-web's `colorAliases`.
const ALIASES: &[(&str, (u8, u8, u8))] = &[
    ("black", (0, 0, 0)),
    ("white", (255, 255, 255)),
    ("blue", (100, 100, 255)),
    ("green", (0, 200, 0)),
    ("red", (200, 0, 50)),
    ("yellow", (255, 255, 0)),
    ("orange", (255, 165, 0)),
    ("purple", (200, 100, 255)),
    ("brown", (150, 100, 50)),
    ("cyan", (0, 255, 255)),
    ("aqua", (0, 150, 150)),
    ("gray", (175, 175, 175)),
    ("grey", (175, 175, 175)),
    ("magenta", (255, 0, 255)),
    ("pink", (255, 100, 100)),
    ("gold", (200, 200, 0)),
    ("rose", (200, 150, 200)),
    ("darkblue", (0, 0, 255)),
    ("darkgreen", (0, 255, 0)),
    ("darkred", (255, 0, 0)),
    ("darkgray", (111, 111, 111)),
    ("darkgrey", (111, 111, 111)),
];

/// graphite-web's default `colorList`.
pub const DEFAULT_COLOR_LIST: &[&str] = &[
    "blue", "green", "red", "purple", "brown", "yellow", "aqua", "grey", "magenta", "pink", "gold",
    "rose",
];

/// Parses a color name or hex value; `None` if it is neither.
pub fn parse_color(s: &str) -> Option<Rgba> {
    let s = s.trim();
    if let Some((_, (r, g, b))) = ALIASES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Some(Rgba(*r, *g, *b, 1.0));
    }
    let hex = s.strip_prefix('#').unwrap_or(s);
    let hex = hex.strip_prefix("%23").unwrap_or(hex);
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    match hex.len() {
        6 => Some(Rgba(byte(0)?, byte(2)?, byte(4)?, 1.0)),
        8 => Some(Rgba(byte(0)?, byte(2)?, byte(4)?, byte(6)? as f64 / 255.0)),
        3 => {
            let d = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok().map(|v| v * 17);
            Some(Rgba(d(0)?, d(1)?, d(2)?, 1.0))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hex() {
        assert_eq!(parse_color("red"), Some(Rgba(200, 0, 50, 1.0)));
        assert_eq!(parse_color("FFFFFF"), Some(Rgba(255, 255, 255, 1.0)));
        assert_eq!(parse_color("#00ff0080").unwrap().3, 128.0 / 255.0);
        assert_eq!(parse_color("fff"), Some(Rgba(255, 255, 255, 1.0)));
        assert_eq!(parse_color("nope"), None);
    }
}
