//! graphite-web's `graphTemplates.conf` (its `GRAPHTEMPLATES_CONF`; here `[query]
//! graph_templates`): named sets of default colours and font for graphs, picked by the
//! `template` render parameter. Read as glyph.py's `loadTemplate` reads it: the built-in
//! defaults (`defaultGraphOptions`: white background, black foreground, rose and grey grid,
//! its twelve line colours, Sans 10) updated by the file's `[default]` section; a request's
//! `template=NAME` takes section `NAME` where the file has one (each key it lacks from those
//! defaults), else the defaults. Keys are `background`, `foreground`, `majorLine`, `minorLine`,
//! `lineColors` (comma-separated), `fontName`, `fontSize`, `fontBold`, `fontItalic`, in any
//! case, as Python's configparser reads them; a `[DEFAULT]` section's keys count in every
//! section, as there. Request parameters (`bgcolor`, `colorList`, …) still win.
//!
//! graphite-web reads the file at every graph and fails every graph when it has no
//! `[default]` section or a colour it cannot parse; here the file is read once at start and
//! such a file is refused with its path, line and what is wrong. The INI syntax is read by the
//! `rust-ini` crate (`%` interpolation, which configparser would apply, is not).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::color::{parse_color, Rgba, DEFAULT_COLOR_LIST};

/// One template: what a graph starts from before its request parameters apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// `background` (glyph.py's `defaultBackground`).
    pub background: Rgba,
    /// `foreground`: text, axes and the legend's border.
    pub foreground: Rgba,
    /// `majorLine`: major grid lines.
    pub major_line: Rgba,
    /// `minorLine`: minor grid lines.
    pub minor_line: Rgba,
    /// `lineColors`: series colours in turn.
    pub line_colors: Vec<Rgba>,
    /// `fontName`.
    pub font_name: String,
    /// `fontSize` in points, truncated to a whole number as glyph.py's `int(…)`.
    pub font_size: f64,
    /// `fontBold` (`true` in any case; anything else is false).
    pub font_bold: bool,
    /// `fontItalic`.
    pub font_italic: bool,
}

impl Default for Template {
    /// glyph.py's `defaultGraphOptions`.
    fn default() -> Self {
        let c = |s: &str| parse_color(s).expect("a known color");
        Template {
            background: c("white"),
            foreground: c("black"),
            major_line: c("rose"),
            minor_line: c("grey"),
            line_colors: DEFAULT_COLOR_LIST.iter().map(|s| c(s)).collect(),
            font_name: "Sans".into(),
            font_size: 10.0,
            font_bold: false,
            font_italic: false,
        }
    }
}

/// A file refused: its path, the line (1-based; 0 when the problem is the whole file) and
/// what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct TemplateError {
    /// The file.
    pub path: PathBuf,
    /// Its line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The templates of one `graphTemplates.conf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphTemplates {
    default: Template,
    named: HashMap<String, Template>,
}

impl GraphTemplates {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<GraphTemplates, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|e| TemplateError {
            path: path.to_path_buf(),
            line: 0,
            message: format!("cannot read graph templates: {e}"),
        })?;
        GraphTemplates::parse(&text, path)
    }

    /// Reads the text of a `graphTemplates.conf`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<GraphTemplates, TemplateError> {
        let err = |line: usize, message: String| TemplateError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let ini = ini::Ini::load_from_str(text).map_err(|e| err(e.line, e.msg.to_string()))?;
        // Sections as configparser gives them: keys lower-cased, [DEFAULT]'s in every one.
        let mut all: Vec<(String, HashMap<String, String>)> = Vec::new();
        let mut shared: HashMap<String, String> = HashMap::new();
        for (section, props) in ini.iter() {
            let keys: HashMap<String, String> = props
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            match section {
                None if keys.is_empty() => {}
                None => {
                    let key = props.iter().next().map(|(k, _)| k).unwrap_or("");
                    return Err(err(
                        line_of(text, None, key),
                        format!("'{key}' comes before any [section] header"),
                    ));
                }
                Some("DEFAULT") => shared.extend(keys),
                Some(name) => all.push((name.to_string(), keys)),
            }
        }
        let Some(default_keys) = all.iter().find(|(n, _)| n == "default").map(|(_, k)| k) else {
            return Err(err(
                0,
                "no [default] section (graphite-web fails every graph without one)".into(),
            ));
        };
        let builtin = Template::default();
        let mut merged_default = shared.clone();
        merged_default.extend(default_keys.clone());
        let default = template(&merged_default, &builtin)
            .map_err(|(key, m)| err(line_of(text, Some("default"), &key), m))?;
        let mut named = HashMap::new();
        for (name, keys) in &all {
            let mut merged = shared.clone();
            merged.extend(keys.clone());
            let t = template(&merged, &default)
                .map_err(|(key, m)| err(line_of(text, Some(name), &key), m))?;
            named.insert(name.clone(), t);
        }
        Ok(GraphTemplates { default, named })
    }

    /// The template `name` picks: its section, else `[default]` (as glyph.py, an unknown name
    /// is not an error).
    pub fn get(&self, name: &str) -> &Template {
        self.named.get(name).unwrap_or(&self.default)
    }
}

/// A template from a section's `keys`, each missing one taken from `defaults`. An error names
/// the key and what is wrong with its value.
fn template(
    keys: &HashMap<String, String>,
    defaults: &Template,
) -> Result<Template, (String, String)> {
    let color = |key: &str, or: Rgba| -> Result<Rgba, (String, String)> {
        match keys.get(key) {
            None => Ok(or),
            Some(v) => parse_color(v)
                .ok_or_else(|| (key.to_string(), format!("{key}: unknown color '{v}'"))),
        }
    };
    let line_colors = match keys.get("linecolors") {
        None => defaults.line_colors.clone(),
        Some(v) => v
            .split(',')
            .map(|c| {
                parse_color(c).ok_or_else(|| {
                    (
                        "linecolors".to_string(),
                        format!("lineColors: unknown color '{}'", c.trim()),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let font_size = match keys.get("fontsize") {
        None => defaults.font_size,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| n.trunc().clamp(1.0, 200.0))
            .ok_or_else(|| {
                (
                    "fontsize".to_string(),
                    format!("fontSize must be a number, not '{v}'"),
                )
            })?,
    };
    let flag = |key: &str, or: bool| keys.get(key).map_or(or, |v| v.eq_ignore_ascii_case("true"));
    Ok(Template {
        background: color("background", defaults.background)?,
        foreground: color("foreground", defaults.foreground)?,
        major_line: color("majorline", defaults.major_line)?,
        minor_line: color("minorline", defaults.minor_line)?,
        line_colors,
        font_name: keys
            .get("fontname")
            .cloned()
            .unwrap_or_else(|| defaults.font_name.clone()),
        font_size,
        font_bold: flag("fontbold", defaults.font_bold),
        font_italic: flag("fontitalic", defaults.font_italic),
    })
}

/// The 1-based line of `key` (any case) in `section` (`None`: before any header) of `text`;
/// 0 if it cannot be found.
fn line_of(text: &str, section: Option<&str>, key: &str) -> usize {
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.split_once(']')) {
            current = Some(name.0.trim().to_string());
            continue;
        }
        if current.as_deref() != section {
            continue;
        }
        let k = t.split(['=', ':']).next().unwrap_or("").trim();
        if !k.is_empty() && k.eq_ignore_ascii_case(key) {
            return i + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "\
[default]
background = black
foreground = white
majorLine = white
minorLine = grey
lineColors = blue,green,red
fontName = Sans
fontSize = 10
fontBold = False
fontItalic = False

[noc]
background = white
foreground = #000000
lineColors = 2b908f,90ee7e
fontSize = 12.7
fontBold = True
";

    #[test]
    fn sections_fall_back_to_default_then_to_glyph_py() {
        let t = GraphTemplates::parse(CONF, Path::new("g.conf")).unwrap();
        let d = t.get("default");
        assert_eq!(d.background, parse_color("black").unwrap());
        assert_eq!(d.line_colors.len(), 3);
        assert!(!d.font_bold);
        let noc = t.get("noc");
        assert_eq!(noc.background, parse_color("white").unwrap());
        assert_eq!(noc.foreground, parse_color("000000").unwrap());
        assert_eq!(
            noc.major_line,
            parse_color("white").unwrap(),
            "from [default]"
        );
        assert_eq!(noc.font_size, 12.0, "int() as glyph.py");
        assert!(noc.font_bold);
        assert_eq!(t.get("nosuch"), d, "an unknown name is the default");
        // Without [default]'s keys, glyph.py's own defaults.
        let t =
            GraphTemplates::parse("[default]\n[x]\nfontItalic = true\n", Path::new("g")).unwrap();
        assert_eq!(t.get("default"), &Template::default());
        assert!(t.get("x").font_italic);
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        let e =
            GraphTemplates::parse("[noc]\nbackground = black\n", Path::new("g.conf")).unwrap_err();
        assert!(e.to_string().contains("no [default] section"), "{e}");
        let bad = CONF.replace("foreground = #000000", "foreground = nocolor");
        let e = GraphTemplates::parse(&bad, Path::new("g.conf")).unwrap_err();
        assert_eq!(e.line, 14, "{e}");
        assert!(
            e.to_string()
                .starts_with("g.conf:14: foreground: unknown color"),
            "{e}"
        );
        let e = GraphTemplates::parse("background = black\n[default]\n", Path::new("g.conf"))
            .unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e =
            GraphTemplates::parse("[default]\nfontSize = big\n", Path::new("g.conf")).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "fontSize must be a number, not 'big'")
        );
    }
}
