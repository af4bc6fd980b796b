//! The INI dialect of carbon's `.conf` files (Python's `ConfigParser`): `[section]` headers,
//! `key = value` or `key: value` lines, `#`/`;` comment lines, keys case-insensitive,
//! indented lines continuing the previous value. Every item remembers its line so errors can
//! point at it.

use std::fmt;

/// One `[section]` with its keys, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The name between the brackets, as written.
    pub name: String,
    /// 1-based line of the `[section]` header.
    pub line: usize,
    /// `(key lowercased, value trimmed, 1-based line)` in file order.
    pub items: Vec<(String, String, usize)>,
}

impl Section {
    /// The value of `key` (case-insensitive) and its line, the last one if repeated.
    pub fn get(&self, key: &str) -> Option<(&str, usize)> {
        let key = key.to_ascii_lowercase();
        self.items
            .iter()
            .rev()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, l)| (v.as_str(), *l))
    }
}

/// A syntax error: the 1-based line and what was wrong there.
#[derive(Debug, Clone, PartialEq)]
pub struct IniError {
    /// 1-based line number.
    pub line: usize,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses carbon-style INI text into its sections, in order.
///
/// Errors: a key line before any section, a line that is neither a header, a comment nor
/// `key = value`, an unterminated `[`, or a section declared twice (as Python 3's strict
/// ConfigParser refuses it).
pub fn parse(text: &str) -> Result<Vec<Section>, IniError> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with(' ') || raw.starts_with('\t');
        if indented {
            if let Some(last) = sections.last_mut().and_then(|s| s.items.last_mut()) {
                last.1.push('\n');
                last.1.push_str(trimmed);
                continue;
            }
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(IniError {
                    line: line_no,
                    message: format!("expected ']' to close the section header '{trimmed}'"),
                });
            };
            let name = name.trim().to_string();
            if sections.iter().any(|s| s.name == name) {
                return Err(IniError {
                    line: line_no,
                    message: format!("section [{name}] is declared twice"),
                });
            }
            sections.push(Section {
                name,
                line: line_no,
                items: Vec::new(),
            });
            continue;
        }
        let Some(pos) = trimmed.find(['=', ':']) else {
            return Err(IniError {
                line: line_no,
                message: format!("expected '[section]' or 'key = value', found '{trimmed}'"),
            });
        };
        let key = trimmed[..pos].trim().to_ascii_lowercase();
        let value = trimmed[pos + 1..].trim().to_string();
        if key.is_empty() {
            return Err(IniError {
                line: line_no,
                message: format!("missing key before '{}'", &trimmed[pos..pos + 1]),
            });
        }
        let Some(section) = sections.last_mut() else {
            return Err(IniError {
                line: line_no,
                message: "key before the first [section] header".into(),
            });
        };
        section.items.push((key, value, line_no));
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_carbon_files() {
        let text = "# comment\n[carbon]\npattern = ^carbon\\.\nretentions: 60:90d\n\n; other\n[default]\nPATTERN = .*\nretentions = 60s:1d,\n  5m:30d\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "carbon");
        assert_eq!(s[0].get("pattern"), Some(("^carbon\\.", 3)));
        assert_eq!(s[0].get("retentions"), Some(("60:90d", 4)));
        assert_eq!(s[1].get("pattern"), Some((".*", 8)));
        assert_eq!(s[1].get("retentions").unwrap().0, "60s:1d,\n5m:30d");
    }

    #[test]
    fn errors_point_at_lines() {
        assert_eq!(parse("pattern = x\n").unwrap_err().line, 1);
        assert_eq!(parse("[a]\nnonsense\n").unwrap_err().line, 2);
        assert_eq!(parse("[a]\n[a\n").unwrap_err().line, 2);
        assert_eq!(parse("[a]\n[a]\n").unwrap_err().line, 2);
    }
}
