//! Remote mode: rules evaluated by another Graphite render API instead of in-process, as Hound
//! asks graphite-web. Set by `[alerting].graphite_url` (graphite-web, carbonapi or another
//! carbonhound); the check window, the state machine and the mail are the same either way.
//!
//! Owns [`RemoteGraphite`] (one `GET <base>/render?target=…&format=json&from=…&until=…` per
//! evaluation, its answer parsed into [`Series`]) and its errors ([`RemoteError`]);
//! `check::Backend::Remote` is how checks and mail graphs use it. Reads only; never writes
//! the store.
//!
//! Limits: a request is bounded by `[query].request_timeout` (connect, send and the whole
//! answer together) and an answer by [`MAX_RESPONSE_BYTES`] after decompression; credentials
//! in the URL go out as basic auth and appear in no message. HTTPS is checked against the
//! web's public roots (Mozilla's, built in), not the system's store.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::config::{GraphiteUrl, Settings};
use crate::query::Series;

/// Largest render answer read, in bytes (decompressed); a larger one is refused with
/// [`RemoteError::TooLarge`], so a runaway glob cannot exhaust memory.
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// How much of an error answer's body a [`RemoteError::Status`] quotes, in bytes.
const BODY_QUOTED: usize = 200;

/// The render API of another Graphite server, as graphite-web 1.1 answers
/// `/render?format=json`: `[{"target": name, "tags": {…}, "datapoints": [[value|null, ts], …]}]`.
/// Cheap to clone (the HTTP agent and its connection pool are shared).
#[derive(Clone)]
pub struct RemoteGraphite {
    url: GraphiteUrl,
    /// `<public base>/render`: where requests go and what errors name.
    render_url: String,
    /// `Basic …` when the URL carries credentials.
    authorization: Option<String>,
    timeout: Duration,
    max_bytes: u64,
    agent: ureq::Agent,
}

impl std::fmt::Debug for RemoteGraphite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteGraphite")
            .field("render_url", &self.render_url)
            .field("basic_auth", &self.authorization.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a remote render gave no series. Every message names the render URL (without
/// credentials), so an operator knows which server to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// Nothing listens at the address (the server is down, or the port is wrong).
    #[error("graphite at {url}: connection refused (is it running, and is graphite_url right?)")]
    Refused {
        /// The render URL.
        url: String,
    },
    /// No complete answer within `[query].request_timeout`.
    #[error("graphite at {url}: no complete answer within {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The render URL.
        url: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The connection failed otherwise (name resolution, TLS, reset).
    #[error("graphite at {url}: cannot connect: {reason}")]
    Connect {
        /// The render URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with an HTTP error (e.g. 400 for a target it cannot parse).
    #[error("graphite at {url} answered HTTP {status}: {body}")]
    Status {
        /// The render URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body (at most 200 bytes, control characters as spaces).
        body: String,
    },
    /// The answer is larger than [`MAX_RESPONSE_BYTES`].
    #[error("graphite at {url}: the answer is larger than {limit} bytes; narrow the target")]
    TooLarge {
        /// The render URL.
        url: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The answer could not be read to its end.
    #[error("graphite at {url}: reading the answer failed: {reason}")]
    Read {
        /// The render URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The answer is not graphite's render JSON.
    #[error(
        "graphite at {url}: the answer is not graphite's render JSON \
         ([{{\"target\": …, \"datapoints\": [[value, timestamp], …]}}, …]): {reason}"
    )]
    Shape {
        /// The render URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl RemoteGraphite {
    /// A client of the render API at `url`, each request bounded by `timeout`.
    pub fn new(url: GraphiteUrl, timeout: Duration) -> RemoteGraphite {
        let render_url = format!("{}/render", url.public());
        let authorization = url.credentials().map(|(user, password)| {
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .user_agent(concat!("carbonhound/", env!("CARGO_PKG_VERSION")))
            .build();
        RemoteGraphite {
            url,
            render_url,
            authorization,
            timeout,
            max_bytes: MAX_RESPONSE_BYTES,
            agent,
        }
    }

    /// Remote mode as the settings ask: `[alerting].graphite_url` with
    /// `[query].request_timeout`, or `None` when rules are evaluated in-process.
    pub fn from_settings(s: &Settings) -> Option<RemoteGraphite> {
        s.alerting
            .graphite_url
            .clone()
            .map(|url| RemoteGraphite::new(url, s.query.request_timeout))
    }

    /// The same client with another answer size limit, in bytes (tests use a small one).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> RemoteGraphite {
        self.max_bytes = max_bytes;
        self
    }

    /// The base URL it was made with.
    pub fn url(&self) -> &GraphiteUrl {
        &self.url
    }

    /// The render URL requests go to, without credentials (`http://graphite:8080/render`).
    pub fn render_url(&self) -> &str {
        &self.render_url
    }

    /// Renders `targets` over `[from, until]` (epoch seconds) in one request, and returns the
    /// series in the server's order. Each series takes its step from its timestamps (a single
    /// point: `until - from`, or 60 s when that is not positive), its end is the last
    /// timestamp plus the step, and its tags are the answer's `tags` when it has them (else
    /// graphite-web's `name` tag). `±inf` and NaN, which graphite-web writes as `1e9999`,
    /// `-1e9999` (and other servers as `Infinity`, `NaN`), are read as such.
    ///
    /// Blocking. Errors: connection refused, timeout, other connection failures, an HTTP
    /// error status (with the start of its body), an answer over the size limit, or one that
    /// is not graphite's JSON; each names the render URL.
    pub fn render(
        &self,
        targets: &[String],
        from: i64,
        until: i64,
    ) -> Result<Vec<Series>, RemoteError> {
        let mut request = self
            .agent
            .get(&self.render_url)
            .query("format", "json")
            .query("from", &from.to_string())
            .query("until", &until.to_string());
        for t in targets {
            request = request.query("target", t);
        }
        if let Some(auth) = &self.authorization {
            request = request.set("Authorization", auth);
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let mut body = Vec::new();
                // The quote is a courtesy: a body that fails to read quotes what arrived.
                let _ = r
                    .into_reader()
                    .take(BODY_QUOTED as u64 * 4)
                    .read_to_end(&mut body);
                return Err(RemoteError::Status {
                    url: self.render_url.clone(),
                    status,
                    body: quote(&body),
                });
            }
            Err(ureq::Error::Transport(t)) => return Err(self.transport_error(&t)),
        };
        let mut body = Vec::new();
        response
            .into_reader()
            .take(self.max_bytes + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.read_error(&e))?;
        if body.len() as u64 > self.max_bytes {
            return Err(RemoteError::TooLarge {
                url: self.render_url.clone(),
                limit: self.max_bytes,
            });
        }
        parse_render_json(&body, from, until).map_err(|reason| RemoteError::Shape {
            url: self.render_url.clone(),
            reason,
        })
    }

    fn transport_error(&self, t: &ureq::Transport) -> RemoteError {
        let url = self.render_url.clone();
        match io_error_of(t).map(std::io::Error::kind) {
            Some(std::io::ErrorKind::ConnectionRefused) => RemoteError::Refused { url },
            Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                RemoteError::Timeout {
                    url,
                    timeout: self.timeout,
                }
            }
            // ureq's own message names the URL it was given, which has no credentials.
            _ => RemoteError::Connect {
                url,
                reason: t
                    .message()
                    .map(str::to_string)
                    .or_else(|| io_error_of(t).map(|e| e.to_string()))
                    .unwrap_or_else(|| t.kind().to_string()),
            },
        }
    }

    fn read_error(&self, e: &std::io::Error) -> RemoteError {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => RemoteError::Timeout {
                url: self.render_url.clone(),
                timeout: self.timeout,
            },
            _ => RemoteError::Read {
                url: self.render_url.clone(),
                reason: e.to_string(),
            },
        }
    }
}

/// The I/O error under a ureq transport error, if any.
fn io_error_of(t: &ureq::Transport) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = e.source();
    }
    None
}

/// The first [`BODY_QUOTED`] bytes of `body` as text: lossy UTF-8, cut at a character
/// boundary, whitespace runs and control characters as one space.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_QUOTED)]);
    let mut out = String::new();
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    let out = out.trim().to_string();
    if out.is_empty() {
        "(empty body)".into()
    } else if body.len() > BODY_QUOTED {
        format!("{out}…")
    } else {
        out
    }
}

/// One element of graphite's render JSON.
#[derive(Deserialize)]
struct RawSeries {
    target: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    datapoints: Vec<RawPoint>,
}

/// `[value, timestamp]`: value a number, `null`, or (after [`quote_non_finite`]) one of the
/// strings `inf`, `-inf`, `nan`; timestamp an integer (or an integral float).
struct RawPoint(Option<f64>, i64);

impl<'de> Deserialize<'de> for RawPoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PointVisitor;
        impl<'de> Visitor<'de> for PointVisitor {
            type Value = RawPoint;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a datapoint [value or null, timestamp]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPoint, A::Error> {
                let value: Value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let ts: Timestamp = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(RawPoint(value.0, ts.0))
            }
        }
        d.deserialize_seq(PointVisitor)
    }
}

/// A datapoint's value.
struct Value(Option<f64>);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or null")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value(Some(v as f64)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                match v {
                    NON_FINITE_INF => Ok(Value(Some(f64::INFINITY))),
                    NON_FINITE_NEG_INF => Ok(Value(Some(f64::NEG_INFINITY))),
                    NON_FINITE_NAN => Ok(Value(Some(f64::NAN))),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

/// A datapoint's timestamp, epoch seconds.
struct Timestamp(i64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TsVisitor;
        impl Visitor<'_> for TsVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer timestamp (epoch seconds)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(Timestamp(v as i64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(TsVisitor)
    }
}

// The strings non-finite JSON numbers are rewritten to before parsing. They cannot be
// confused with a real datapoint: graphite never writes a string as a value.
const NON_FINITE_INF: &str = "inf";
const NON_FINITE_NEG_INF: &str = "-inf";
const NON_FINITE_NAN: &str = "nan";

/// `json` with every number outside strings that overflows f64 (graphite-web's `1e9999`) and
/// every bare `Infinity`, `-Infinity` or `NaN` (Python's `json.dumps`) replaced by the quoted
/// strings `"inf"`, `"-inf"`, `"nan"`, which serde_json accepts (it refuses the originals).
/// Text inside strings is copied unchanged.
fn quote_non_finite(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if b == b'"' {
            // Copy the string, escapes included, up to its closing quote.
            let start = i;
            i += 1;
            while i < json.len() && json[i] != b'"' {
                i += if json[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(json.len());
            out.extend_from_slice(&json[start..i]);
            continue;
        }
        let rest = &json[i..];
        let word = [
            (&b"-Infinity"[..], NON_FINITE_NEG_INF),
            (&b"Infinity"[..], NON_FINITE_INF),
            (&b"NaN"[..], NON_FINITE_NAN),
        ]
        .into_iter()
        .find(|(w, _)| rest.starts_with(w));
        if let Some((w, replacement)) = word {
            out.push(b'"');
            out.extend_from_slice(replacement.as_bytes());
            out.push(b'"');
            i += w.len();
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let len = rest
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(rest.len());
            let token = &rest[..len];
            let parsed = std::str::from_utf8(token)
                .ok()
                .and_then(|t| t.parse::<f64>().ok());
            match parsed {
                Some(v) if v.is_infinite() => {
                    let r = if v > 0.0 {
                        NON_FINITE_INF
                    } else {
                        NON_FINITE_NEG_INF
                    };
                    out.push(b'"');
                    out.extend_from_slice(r.as_bytes());
                    out.push(b'"');
                }
                _ => out.extend_from_slice(token),
            }
            i += len;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Parses the body of graphite's `/render?format=json` answer, requested for
/// `[from, until]` (epoch seconds), into series: the parser of [`RemoteGraphite::render`]
/// (see it for the step, end and tag rules), apart from the socket. Pure; never panics on
/// any input. The error says what is wrong, naming the series when it is one of them.
pub fn parse_render_json(body: &[u8], from: i64, until: i64) -> Result<Vec<Series>, String> {
    let text = quote_non_finite(body);
    let raw: Vec<RawSeries> = serde_json::from_slice(&text).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        format!("{e} (the answer begins {start:?})")
    })?;
    let default_step = until.checked_sub(from).filter(|s| *s > 0).unwrap_or(60);
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let (start, step) = match r.datapoints.as_slice() {
            [] => (from, default_step),
            [only] => (only.1, default_step),
            [first, second, ..] => match second.1.checked_sub(first.1) {
                Some(step) if step > 0 => (first.1, step),
                _ => {
                    return Err(format!(
                        "series '{}': timestamps do not increase ({} then {})",
                        r.target, first.1, second.1
                    ))
                }
            },
        };
        for (i, p) in r.datapoints.iter().enumerate() {
            if Some(p.1)
                != (i as i64)
                    .checked_mul(step)
                    .and_then(|o| o.checked_add(start))
            {
                return Err(format!(
                    "series '{}': timestamps are not evenly spaced ({} is not {start} + {i} × {step})",
                    r.target, p.1
                ));
            }
        }
        let end = (r.datapoints.len() as i64)
            .checked_mul(step)
            .and_then(|n| n.checked_add(start))
            .ok_or_else(|| format!("series '{}': timestamps out of range", r.target))?;
        let values = r.datapoints.into_iter().map(|p| p.0).collect();
        let mut s = Series::new(r.target, start, end, step, values, 0.0);
        if let Some(tags) = r.tags {
            s.tags = tags;
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn client(port: u16, timeout: Duration) -> RemoteGraphite {
        let url = GraphiteUrl::parse(&format!("http://ops:secret@127.0.0.1:{port}")).unwrap();
        RemoteGraphite::new(url, timeout)
    }

    /// A one-shot HTTP server on 127.0.0.1 answering the first request with `response`
    /// (after `delay`); returns its port and the request it read.
    fn serve_once(response: Vec<u8>, delay: Duration) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 8192];
            let mut request = Vec::new();
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            std::thread::sleep(delay);
            let _ = conn.write_all(&response);
            String::from_utf8_lossy(&request).into_owned()
        });
        (port, t)
    }

    fn http(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn parses_graphite_json_with_nulls_tags_and_non_finite_values() {
        let body = br#"[{"target": "a.b", "tags": {"name": "a.b", "dc": "x"}, "datapoints": [[1.5, 100], [null, 160], [1e9999, 220], [-1e9999, 280]]},
            {"target": "say \"1e9999\" NaN", "datapoints": [[NaN, 100], [-Infinity, 110], [Infinity, 120], [7, 130]]},
            {"target": "one", "datapoints": [[2, 500]]},
            {"target": "none", "datapoints": []}]"#;
        let s = parse_render_json(body, 40, 340).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].start, s[0].step, s[0].end), (100, 60, 340));
        assert_eq!(s[0].values[..2], [Some(1.5), None]);
        assert_eq!(
            s[0].values[2..],
            [Some(f64::INFINITY), Some(f64::NEG_INFINITY)]
        );
        assert_eq!(s[0].tags.get("dc").map(String::as_str), Some("x"));
        assert_eq!(s[1].name, "say \"1e9999\" NaN", "strings are left alone");
        assert!(s[1].values[0].unwrap().is_nan());
        assert_eq!(
            s[1].values[1..],
            [Some(f64::NEG_INFINITY), Some(f64::INFINITY), Some(7.0)]
        );
        assert_eq!(
            s[1].tags.get("name").map(String::as_str),
            Some(s[1].name.as_str())
        );
        assert_eq!(
            (s[2].start, s[2].step, s[2].end),
            (500, 300, 800),
            "one point: until - from"
        );
        assert_eq!(
            parse_render_json(br#"[{"target":"x","datapoints":[[1,5]]}]"#, 9, 9).unwrap()[0].step,
            60
        );
        assert_eq!((s[3].start, s[3].end, s[3].values.len()), (40, 40, 0));
    }

    #[test]
    fn refuses_what_is_not_graphite_json() {
        for (body, what) in [
            (&b"<html>Server Error</html>"[..], "begins"),
            (br#"{"target": "a"}"#, "sequence"),
            (br#"[{"target": "a"}]"#, "datapoints"),
            (br#"[{"target": "a", "datapoints": [[1]]}]"#, "length"),
            (
                br#"[{"target": "a", "datapoints": [["x", 1]]}]"#,
                "number or null",
            ),
            (
                br#"[{"target": "a", "datapoints": [[1, 10], [1, 10]]}]"#,
                "do not increase",
            ),
            (
                br#"[{"target": "a", "datapoints": [[1, 10], [1, 20], [1, 25]]}]"#,
                "evenly spaced",
            ),
            (
                br#"[{"target": "a", "datapoints": [[1, 10.5]]}]"#,
                "integer timestamp",
            ),
            (
                br#"[{"target": "a", "tags": {"n": 1}, "datapoints": []}]"#,
                "string",
            ),
            (b"", "EOF"),
            (b"[\"", "EOF"),
        ] {
            let e = parse_render_json(body, 0, 60).unwrap_err();
            assert!(e.contains(what), "{}: {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn one_get_with_repeated_targets_epoch_times_and_basic_auth() {
        let (port, request) = serve_once(
            http(
                "200 OK",
                r#"[{"target":"a","datapoints":[[1,60],[2,120]]}]"#,
            ),
            Duration::ZERO,
        );
        let r = client(port, Duration::from_secs(10));
        let s = r
            .render(&["a".into(), "sumSeries(b.*)".into()], 0, 120)
            .unwrap();
        assert_eq!(s[0].values, vec![Some(1.0), Some(2.0)]);
        let request = request.join().unwrap();
        let line = request.lines().next().unwrap();
        assert!(line.starts_with("GET /render?"), "{line}");
        for part in [
            "format=json",
            "from=0",
            "until=120",
            "target=a",
            "target=sumSeries%28b.*%29",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
        // "ops:secret" in base64.
        assert!(
            request.contains("Authorization: Basic b3BzOnNlY3JldA=="),
            "{request}"
        );
        assert!(!format!("{r:?}").contains("secret"));
    }

    #[test]
    fn errors_name_the_url_without_credentials() {
        // Refused: a port that was just free.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = client(port, Duration::from_secs(5))
            .render(&["a".into()], 0, 60)
            .unwrap_err();
        let url = format!("http://127.0.0.1:{port}/render");
        assert_eq!(e, RemoteError::Refused { url: url.clone() });
        assert!(
            e.to_string().contains(&url) && !e.to_string().contains("secret"),
            "{e}"
        );

        // A status with the start of its body.
        let long = format!("Bad target: {}", "x".repeat(500));
        let (port, t) = serve_once(http("400 Bad Request", &long), Duration::ZERO);
        let e = client(port, Duration::from_secs(5))
            .render(&["a(".into()], 0, 60)
            .unwrap_err();
        t.join().unwrap();
        let RemoteError::Status { status, body, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*status, 400);
        assert!(
            body.starts_with("Bad target: xxx") && body.chars().count() <= BODY_QUOTED + 1,
            "{body}"
        );
        assert!(e.to_string().contains("HTTP 400"), "{e}");

        // Silence past the timeout.
        let (port, t) = serve_once(http("200 OK", "[]"), Duration::from_millis(1500));
        let e = client(port, Duration::from_millis(300))
            .render(&["a".into()], 0, 60)
            .unwrap_err();
        assert!(matches!(e, RemoteError::Timeout { .. }), "{e}");
        assert!(
            e.to_string().contains("300ms")
                && e.to_string().contains(&format!("127.0.0.1:{port}/render")),
            "{e}"
        );
        t.join().unwrap();

        // Too large.
        let big = format!(
            "[{}]",
            vec![r#"{"target":"a","datapoints":[]}"#; 100].join(",")
        );
        let (port, t) = serve_once(http("200 OK", &big), Duration::ZERO);
        let e = client(port, Duration::from_secs(5))
            .with_max_bytes(1000)
            .render(&["a".into()], 0, 60)
            .unwrap_err();
        t.join().unwrap();
        assert!(
            matches!(e, RemoteError::TooLarge { limit: 1000, .. }),
            "{e}"
        );

        // Not graphite's shape.
        let (port, t) = serve_once(http("200 OK", r#"{"error": "nope"}"#), Duration::ZERO);
        let e = client(port, Duration::from_secs(5))
            .render(&["a".into()], 0, 60)
            .unwrap_err();
        t.join().unwrap();
        assert!(
            matches!(e, RemoteError::Shape { .. }) && e.to_string().contains("render JSON"),
            "{e}"
        );
    }
}
