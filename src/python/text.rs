//! Python's `str` methods where graphite-web's answers depend on them: white space as
//! `str.isspace()` sees it, `strip()`, `split()` with no separator, `capitalize()`, and
//! `repr()` of a string.

use std::fmt::Write;

/// Python's `str.isspace()` for one character: Unicode white space plus the ASCII
/// information separators `\x1c`–`\x1f`, which Python also counts.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `s.strip()`: `s` without leading and trailing white space as `str.isspace()` sees it.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `s.split()` (no separator): the words between runs of white space, none empty.
pub fn split(s: &str) -> Vec<String> {
    s.split(is_space)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Python's `s.capitalize()`: the first character upper case, the rest lower case.
pub fn capitalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut c = lower.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Python's `repr()` of a string: single quotes unless the text holds a single quote and no
/// double quote, backslash escapes for `\\`, `\n`, `\t`, `\r`, the quote, and `\xNN` for other
/// control characters.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_python_prints_them() {
        // Checked against CPython 3.11.
        assert_eq!(split(" a\x1cb  c\u{3000}d "), ["a", "b", "c", "d"]);
        assert_eq!(strip("\x1f x \t"), "x");
        assert_eq!(capitalize("sUM"), "Sum");
        assert_eq!(capitalize(""), "");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_str("/tmp/x\n\x01"), "'/tmp/x\\n\\x01'");
    }
}
