//! Python's `json.dumps` where its exact text matters (graphite-web's find, expand and event
//! answers): [`dumps`] writes any serializable value as `json.dumps(data, ensure_ascii=True,
//! indent=…)` does — `", "` and `": "` between items (`","` and newlines with `pretty`,
//! indented by two spaces), every character outside printable ASCII escaped as `\uXXXX`
//! (lowercase hex, surrogate pairs above U+FFFF), object keys in the order they are serialized
//! (so build answers from structs, not `serde_json::Value`, whose maps sort their keys);
//! [`push_str`] appends one string literal.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

/// Writes a string's unescaped run with Python's `ensure_ascii` escapes. Bytes, not chars,
/// are scanned: metric names are ASCII, and a run of printable ASCII is written in one go.
fn write_ascii<W: ?Sized + Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let bytes = fragment.as_bytes();
    let printable = |b: u8| (b' '..=b'~').contains(&b);
    let Some(first) = bytes.iter().position(|&b| !printable(b)) else {
        return writer.write_all(bytes);
    };
    writer.write_all(&bytes[..first])?;
    let mut start = first;
    for (i, c) in fragment[first..].char_indices() {
        let i = first + i;
        if (' '..='~').contains(&c) {
            continue;
        }
        writer.write_all(&bytes[start..i])?;
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            write!(writer, "\\u{unit:04x}")?;
        }
        start = i + c.len_utf8();
    }
    writer.write_all(&bytes[start..])
}

/// `json.dumps` without `indent`: `", "` and `": "`.
struct Spaced;

impl Formatter for Spaced {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_ascii(w, fragment)
    }
}

/// `json.dumps(indent=2)`: serde_json's pretty layout (the same), with ASCII escapes.
struct Indented(PrettyFormatter<'static>);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name<W: ?Sized + Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.0.$name(w $(, $arg)*)
        })*
    };
}

impl Formatter for Indented {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_ascii(w, fragment)
    }
}

/// `value` as graphite-web's `json_response_for` writes it (`pretty`: its `indent=2`).
/// Errors only when `value`'s own `Serialize` does.
pub fn dumps<T: Serialize + ?Sized>(value: &T, pretty: bool) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(256);
    if pretty {
        let formatter = Indented(PrettyFormatter::with_indent(b"  "));
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))?;
    } else {
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, Spaced,
        ))?;
    }
    // Only ASCII was written (every other character is escaped), so this never copies.
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Appends `s` as a JSON string the way Python's `json.dumps` writes it (`ensure_ascii`):
/// `"`, `\` and control characters escaped, everything outside printable ASCII as `\uXXXX`
/// (UTF-16, so surrogate pairs beyond the BMP).
pub fn push_str(out: &mut String, s: &str) {
    out.push_str(&dumps(s, false).expect("a string always serializes"));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn writes_as_python_json_dumps() {
        let v = json!({"a": [1, "x"], "b": {}, "c": []});
        let to_string = |v: &serde_json::Value, pretty| super::dumps(v, pretty).unwrap();
        assert_eq!(to_string(&v, false), r#"{"a": [1, "x"], "b": {}, "c": []}"#);
        assert_eq!(
            to_string(&v, true),
            "{\n  \"a\": [\n    1,\n    \"x\"\n  ],\n  \"b\": {},\n  \"c\": []\n}"
        );
        assert_eq!(
            to_string(&json!("café \u{1F600} \u{7f}\n\"\\\u{1}"), false),
            r#""caf\u00e9 \ud83d\ude00 \u007f\n\"\\\u0001""#
        );
    }

    #[test]
    fn ensure_ascii_as_python() {
        // json.dumps('a"\\\n\x01é😀') in CPython 3.11.
        let mut out = String::new();
        super::push_str(&mut out, "a\"\\\n\x01é😀");
        assert_eq!(out, r#""a\"\\\n\u0001\u00e9\ud83d\ude00""#);
    }
}
