//! One event (graphite-web's `Event` model: `id`, `when`, `what`, `data`, `tags`), reading
//! a posted event as graphite-web's `post_event` does, and writing an event as its two JSON
//! shapes: `as_dict` through `EventEncoder` (`/events/get_data`) and `model_to_dict` through
//! Django's `DjangoJSONEncoder` (`/events/<id>`), byte for byte as Python's `json.dumps`.
//!
//! Pure: no storage, no clock except the default `when` of a posted event.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventError, MAX_DATA_BYTES, MAX_TAGS_CHARS, MAX_WHAT_CHARS};
use crate::python::{repr_f64, split as py_split};

/// Microseconds per second: `when` is kept to the microsecond, as Django's `DateTimeField`.
const US: i64 = 1_000_000;
/// The earliest and latest `when` Python's `datetime` can hold (years 1 to 9999), in epoch
/// seconds: graphite-web fails on anything outside.
const WHEN_MIN: f64 = -62_135_596_800.0;
const WHEN_MAX: f64 = 253_402_300_800.0;

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its id: 1, 2, 3, … in posting order, as the database ids of graphite-web.
    pub id: u64,
    /// When it happened, in microseconds since the epoch (UTC).
    pub when_us: i64,
    /// What happened (at most [`MAX_WHAT_CHARS`] characters).
    pub what: String,
    /// Free text (at most [`MAX_DATA_BYTES`] bytes); `""` when none was given.
    pub data: String,
    /// The tag string as posted (a list joined with spaces); `""` for none. Tag queries match
    /// the names django-tagging parses from it ([`super::tags::parse_tag_input`]); the JSON
    /// answers list it split on white space, as graphite-web's `as_dict` does.
    pub tags: String,
}

/// A posted event, checked, before it has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// When, in microseconds since the epoch; `None` for "now".
    pub when_us: Option<i64>,
    /// What happened.
    pub what: String,
    /// Free text.
    pub data: String,
    /// The tag string.
    pub tags: String,
}

/// Django's `CharField.to_python` of a JSON value: strings as they are, numbers and booleans
/// as Python's `str()` prints them. `None` for null, arrays and objects.
fn py_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => repr_f64(n.as_f64().unwrap_or(f64::NAN)),
        }),
        _ => None,
    }
}

/// Epoch seconds (a JSON number) to microseconds, rounding the fraction to the nearest
/// microsecond (half to even) as Python's `datetime.utcfromtimestamp`.
fn when_micros(v: &Value) -> Result<i64, EventError> {
    let bad = || {
        EventError::BadRequest(format!(
            "\"when\" must be a number of seconds since the epoch between {WHEN_MIN} and {WHEN_MAX} (got {v})"
        ))
    };
    let n = match v {
        Value::Number(n) => n,
        _ => return Err(bad()),
    };
    if let Some(i) = n.as_i64() {
        if !(WHEN_MIN..WHEN_MAX).contains(&(i as f64)) {
            return Err(bad());
        }
        return Ok(i * US);
    }
    let f = n.as_f64().ok_or_else(bad)?;
    if !(WHEN_MIN..WHEN_MAX).contains(&f) {
        return Err(bad());
    }
    let secs = f.trunc();
    let frac = ((f - secs) * 1e6).round_ties_even();
    Ok(secs as i64 * US + frac as i64)
}

impl NewEvent {
    /// Reads a posted body as graphite-web's `post_event`: a JSON object with `what`
    /// (required), `tags` (a space-separated string or an array of strings), `when` (epoch
    /// seconds, default now) and `data` (default `""`). Numbers and booleans in `what` and
    /// `data` become text as Python's `str()` writes them.
    ///
    /// Errors: [`EventError::BadRequest`] for a body that is not a JSON object, bad `tags`
    /// (graphite-web's message), a missing or null `what`, `what`/`data` that are arrays or
    /// objects, a `when` that is not a number in Python's datetime range, `what` over
    /// [`MAX_WHAT_CHARS`] or tags over [`MAX_TAGS_CHARS`] characters (graphite-web's column
    /// sizes); [`EventError::TooLarge`] for `data` over [`MAX_DATA_BYTES`].
    pub fn from_json(body: &[u8]) -> Result<NewEvent, EventError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            EventError::BadRequest(format!("the request body must be a JSON object: {e}"))
        })?;
        let Value::Object(obj) = value else {
            let kind = match value {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            return Err(EventError::BadRequest(format!(
                "the request body must be a JSON object, not {kind}"
            )));
        };
        let tags_error =
            || EventError::BadRequest("\"tags\" must be an array or space-separated string".into());
        let tags = match obj.get("tags") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => {
                let mut words = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => words.push(s.as_str()),
                        _ => return Err(tags_error()),
                    }
                }
                words.join(" ")
            }
            Some(_) => return Err(tags_error()),
        };
        if tags.chars().count() > MAX_TAGS_CHARS {
            return Err(EventError::BadRequest(format!(
                "\"tags\" is longer than {MAX_TAGS_CHARS} characters (joined with spaces)"
            )));
        }
        let what = match obj.get("what") {
            None | Some(Value::Null) => {
                return Err(EventError::BadRequest("\"what\" is required".into()))
            }
            Some(v) => py_str(v).ok_or_else(|| {
                EventError::BadRequest("\"what\" must be a string (or a number)".into())
            })?,
        };
        if what.chars().count() > MAX_WHAT_CHARS {
            return Err(EventError::BadRequest(format!(
                "\"what\" is longer than {MAX_WHAT_CHARS} characters"
            )));
        }
        let data = match obj.get("data") {
            None => String::new(),
            Some(v) => py_str(v).ok_or_else(|| {
                EventError::BadRequest("\"data\" must be a string (or a number)".into())
            })?,
        };
        if data.len() > MAX_DATA_BYTES {
            return Err(EventError::TooLarge(format!(
                "\"data\" is longer than {MAX_DATA_BYTES} bytes"
            )));
        }
        let when_us = obj.get("when").map(when_micros).transpose()?;
        Ok(NewEvent {
            when_us,
            what,
            data,
            tags,
        })
    }
}

fn push_str_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        crate::python::json_push_str(out, t);
    }
    out.push(']');
}

impl Event {
    /// `when` in whole epoch seconds, rounded down (graphite-web's `epoch()` of the time).
    pub fn when_seconds(&self) -> i64 {
        self.when_us.div_euclid(US)
    }

    /// The tags as graphite-web lists them: the tag string split on white space.
    pub fn listed_tags(&self) -> Vec<String> {
        py_split(&self.tags)
    }

    /// `when` as Django's `DjangoJSONEncoder` writes an aware UTC time: ISO 8601, the
    /// fraction cut to milliseconds and only when there is one, `Z` for UTC
    /// (`2023-11-14T22:13:20.500Z`).
    pub fn when_iso(&self) -> String {
        let secs = self.when_seconds();
        let micros = self.when_us.rem_euclid(US);
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        let date = chrono::NaiveDate::from_num_days_from_ce_opt((days + 719_163) as i32)
            .unwrap_or_default();
        use chrono::Datelike;
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            date.year(),
            date.month(),
            date.day(),
            tod / 3600,
            tod % 3600 / 60,
            tod % 60
        );
        if micros != 0 {
            s.push_str(&format!(".{:03}", micros / 1000));
        }
        s.push('Z');
        s
    }

    /// Appends graphite-web's `as_dict` through `EventEncoder`, as `/events/get_data` lists
    /// it: `{"when": 1700000000, "what": "…", "data": "…", "tags": ["…"], "id": 1}` (`when`
    /// in whole epoch seconds).
    pub fn push_as_dict_json(&self, out: &mut String) {
        out.push_str("{\"when\": ");
        out.push_str(&self.when_seconds().to_string());
        out.push_str(", \"what\": ");
        crate::python::json_push_str(out, &self.what);
        out.push_str(", \"data\": ");
        crate::python::json_push_str(out, &self.data);
        out.push_str(", \"tags\": ");
        push_str_list(out, &self.listed_tags());
        out.push_str(", \"id\": ");
        out.push_str(&self.id.to_string());
        out.push('}');
    }

    /// graphite-web's `/events/<id>` JSON (`model_to_dict` through `DjangoJSONEncoder`):
    /// `{"id": 1, "when": "2023-11-14T22:13:20Z", "what": "…", "data": "…", "tags": ["…"]}`;
    /// with `pretty`, indented by two and keys sorted, as graphite-web's `jsonResponse`.
    pub fn model_to_dict_json(&self, pretty: bool) -> String {
        let mut out = String::new();
        let tags = self.listed_tags();
        if !pretty {
            out.push_str("{\"id\": ");
            out.push_str(&self.id.to_string());
            out.push_str(", \"when\": ");
            crate::python::json_push_str(&mut out, &self.when_iso());
            out.push_str(", \"what\": ");
            crate::python::json_push_str(&mut out, &self.what);
            out.push_str(", \"data\": ");
            crate::python::json_push_str(&mut out, &self.data);
            out.push_str(", \"tags\": ");
            push_str_list(&mut out, &tags);
            out.push('}');
            return out;
        }
        out.push_str("{\n  \"data\": ");
        crate::python::json_push_str(&mut out, &self.data);
        out.push_str(",\n  \"id\": ");
        out.push_str(&self.id.to_string());
        out.push_str(",\n  \"tags\": ");
        if tags.is_empty() {
            out.push_str("[]");
        } else {
            out.push('[');
            for (i, t) in tags.iter().enumerate() {
                out.push_str(if i > 0 { ",\n    " } else { "\n    " });
                crate::python::json_push_str(&mut out, t);
            }
            out.push_str("\n  ]");
        }
        out.push_str(",\n  \"what\": ");
        crate::python::json_push_str(&mut out, &self.what);
        out.push_str(",\n  \"when\": ");
        crate::python::json_push_str(&mut out, &self.when_iso());
        out.push_str("\n}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(when_us: i64, what: &str, tags: &str) -> Event {
        Event {
            id: 7,
            when_us,
            what: what.into(),
            data: String::new(),
            tags: tags.into(),
        }
    }

    #[test]
    fn posted_bodies_as_post_event_reads_them() {
        let e = NewEvent::from_json(
            br#"{"what": "deploy", "tags": ["a", "b"], "when": 1700000000.5, "data": "v1"}"#,
        )
        .unwrap();
        assert_eq!(e.tags, "a b");
        assert_eq!(e.when_us, Some(1_700_000_000_500_000));
        assert_eq!(e.data, "v1");
        let e = NewEvent::from_json(br#"{"what": true, "data": 1.5, "when": -5.25}"#).unwrap();
        assert_eq!((e.what.as_str(), e.data.as_str()), ("True", "1.5"));
        assert_eq!(e.when_us, Some(-5_250_000));
        assert_eq!(e.tags, "");
        let e = NewEvent::from_json(br#"{"what": 5, "tags": null}"#).unwrap();
        assert_eq!((e.what.as_str(), e.when_us), ("5", None));
        for (body, needle) in [
            (
                &br#"{"what": "x", "tags": 5}"#[..],
                "\"tags\" must be an array",
            ),
            (
                br#"{"what": "x", "tags": [1]}"#,
                "\"tags\" must be an array",
            ),
            (br#"[1, 2]"#, "not an array"),
            (br#"nope"#, "must be a JSON object"),
            (br#""#, "must be a JSON object"),
            (br#"{"tags": "a"}"#, "\"what\" is required"),
            (br#"{"what": {"a": 1}}"#, "\"what\" must be a string"),
            (
                br#"{"what": "x", "data": null}"#,
                "\"data\" must be a string",
            ),
            (
                br#"{"what": "x", "when": "123"}"#,
                "\"when\" must be a number",
            ),
            (
                br#"{"what": "x", "when": 1e20}"#,
                "\"when\" must be a number",
            ),
        ] {
            match NewEvent::from_json(body) {
                Err(EventError::BadRequest(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        let long = format!(r#"{{"what": "{}"}}"#, "w".repeat(MAX_WHAT_CHARS + 1));
        assert!(matches!(
            NewEvent::from_json(long.as_bytes()),
            Err(EventError::BadRequest(_))
        ));
        let big = format!(
            r#"{{"what": "x", "data": "{}"}}"#,
            "d".repeat(MAX_DATA_BYTES + 1)
        );
        assert!(matches!(
            NewEvent::from_json(big.as_bytes()),
            Err(EventError::TooLarge(_))
        ));
    }

    #[test]
    fn json_as_graphite_web_writes_it() {
        // Expected strings are what graphite-web 1.1.8 answered for the same events.
        let mut s = String::new();
        ev(1_700_000_001_000_000, "é☃😀\n\x7f'\"", "é").push_as_dict_json(&mut s);
        assert_eq!(
            s,
            r#"{"when": 1700000001, "what": "\u00e9\u2603\ud83d\ude00\n\u007f'\"", "data": "", "tags": ["\u00e9"], "id": 7}"#
        );
        let e = ev(-5_250_000, "x", "");
        assert_eq!(e.when_seconds(), -6);
        assert_eq!(
            e.model_to_dict_json(false),
            r#"{"id": 7, "when": "1969-12-31T23:59:54.750Z", "what": "x", "data": "", "tags": []}"#
        );
        assert_eq!(
            ev(1_700_000_000_000_400, "x", "").when_iso(),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            ev(1_700_000_000_000_000, "x", "a b").model_to_dict_json(true),
            "{\n  \"data\": \"\",\n  \"id\": 7,\n  \"tags\": [\n    \"a\",\n    \"b\"\n  ],\n  \"what\": \"x\",\n  \"when\": \"2023-11-14T22:13:20Z\"\n}"
        );
    }
}
