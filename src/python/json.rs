//! Python's `json.dumps` where its exact text matters (graphite-web's event JSON): strings with
//! `ensure_ascii`, as the standard library writes them.

/// Appends `s` as a JSON string the way Python's `json.dumps` writes it (`ensure_ascii`):
/// `"`, `\` and control characters escaped, everything outside printable ASCII as `\uXXXX`
/// (UTF-16, so surrogate pairs beyond the BMP).
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn ensure_ascii_as_python() {
        // json.dumps('a"\\\n\x01é😀') in CPython 3.11.
        let mut out = String::new();
        super::push_str(&mut out, "a\"\\\n\x01é😀");
        assert_eq!(out, r#""a\"\\\n\u0001\u00e9\ud83d\ude00""#);
    }
}
