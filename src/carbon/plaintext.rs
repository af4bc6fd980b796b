//! carbon's plaintext protocol: one `path value timestamp` line per point, fields separated by
//! whitespace, lines by `\n` (a trailing `\r` is whitespace). A timestamp of `-1` means "now"
//! (carbon's convention); timestamps may carry a fraction, which is dropped.
//!
//! Pure functions over bytes, no I/O: the listeners feed them, the tests and fuzzers call them
//! directly.

use std::borrow::Cow;
use std::fmt;

use nom::bytes::complete::{take_till1, take_while, take_while1};
use nom::combinator::eof;
use nom::IResult;
use nom::Parser;

use super::name::{normalize, NameError};

/// A parsed line, borrowing from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// The metric name, validated and normalized (tags sorted); borrowed when unchanged.
    pub name: Cow<'a, str>,
    /// The value, finite.
    pub value: f64,
    /// Epoch seconds; `None` when the line said `-1` (now).
    pub timestamp: Option<i64>,
}

/// Why a line was refused. Each is counted per listener.
#[derive(Debug, Clone, PartialEq)]
pub enum LineError {
    /// Not three whitespace-separated fields.
    Malformed,
    /// Not UTF-8.
    NotUtf8,
    /// The value is not a number, or is NaN or infinite.
    BadValue,
    /// The timestamp is not a number, not finite, or outside 1..=4294967295 (or -1).
    BadTimestamp,
    /// The metric name is refused.
    BadName(NameError),
    /// Longer than the configured maximum.
    TooLong,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Malformed => f.write_str("expected 'path value timestamp'"),
            LineError::NotUtf8 => f.write_str("line is not UTF-8"),
            LineError::BadValue => f.write_str("value is not a finite number"),
            LineError::BadTimestamp => {
                f.write_str("timestamp is not a number in 1..=4294967295 (or -1 for now)")
            }
            LineError::BadName(e) => write!(f, "{e}"),
            LineError::TooLong => f.write_str("line longer than carbon.max_line_length"),
        }
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn fields(input: &[u8]) -> IResult<&[u8], (&[u8], &[u8], &[u8])> {
    let ws0 = || take_while(is_ws);
    let ws1 = || take_while1(is_ws);
    let field = || take_till1(is_ws);
    let (rest, (_, name, _, value, _, ts, _, _)) =
        (ws0(), field(), ws1(), field(), ws1(), field(), ws0(), eof).parse(input)?;
    Ok((rest, (name, value, ts)))
}

fn parse_value(b: &[u8]) -> Option<f64> {
    // Fast path: plain integers, the commonest value of all.
    if b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &d in b {
            n = n * 10 + (d - b'0') as u64;
        }
        return Some(n as f64);
    }
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

fn parse_timestamp(b: &[u8]) -> Result<Option<i64>, LineError> {
    if b == b"-1" {
        return Ok(None);
    }
    let t: i64 = if !b.is_empty() && b.len() <= 10 && b.iter().all(u8::is_ascii_digit) {
        b.iter().fold(0i64, |n, &d| n * 10 + (d - b'0') as i64)
    } else {
        let s = std::str::from_utf8(b).map_err(|_| LineError::BadTimestamp)?;
        let f: f64 = s.parse().map_err(|_| LineError::BadTimestamp)?;
        if !f.is_finite() {
            return Err(LineError::BadTimestamp);
        }
        if f.trunc() == -1.0 {
            return Ok(None);
        }
        if !(1.0..=u32::MAX as f64 + 0.999).contains(&f) {
            return Err(LineError::BadTimestamp);
        }
        f.trunc() as i64
    };
    if (1..=u32::MAX as i64).contains(&t) {
        Ok(Some(t))
    } else {
        Err(LineError::BadTimestamp)
    }
}

/// Parses one line (without its `\n`), validating and normalizing the name.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    let (_, (name, value, ts)) = fields(line).map_err(|_| LineError::Malformed)?;
    let name = std::str::from_utf8(name).map_err(|_| LineError::NotUtf8)?;
    let value = parse_value(value).ok_or(LineError::BadValue)?;
    let timestamp = parse_timestamp(ts)?;
    let name = normalize(name).map_err(LineError::BadName)?;
    Ok(Line {
        name,
        value,
        timestamp,
    })
}

/// Splits `buf` into complete lines and calls `each` on every one (without `\n`); returns how
/// many bytes were consumed (up to and including the last `\n`). Blank lines are skipped.
pub fn for_each_line(buf: &[u8], mut each: impl FnMut(&[u8])) -> usize {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', buf) {
        let line = &buf[start..nl];
        if !line.iter().all(|&b| is_ws(b)) {
            each(line);
        }
        start = nl + 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_lines() {
        let l = parse_line(b"a.b.c 12.5 1700000000").unwrap();
        assert_eq!(
            l,
            Line {
                name: "a.b.c".into(),
                value: 12.5,
                timestamp: Some(1_700_000_000)
            }
        );
        let l = parse_line(b"  a.b\t-3e2   1700000000.75\r").unwrap();
        assert_eq!((l.value, l.timestamp), (-300.0, Some(1_700_000_000)));
        assert_eq!(parse_line(b"a 1 -1").unwrap().timestamp, None);
        assert_eq!(parse_line(b"a 42 1").unwrap().value, 42.0);
        assert_eq!(
            parse_line(b"cpu;host=a;dc=b 1 1700000000").unwrap().name,
            "cpu;dc=b;host=a"
        );
    }

    #[test]
    fn refuses_bad_lines() {
        assert_eq!(parse_line(b"garbage"), Err(LineError::Malformed));
        assert_eq!(parse_line(b"a 1"), Err(LineError::Malformed));
        assert_eq!(parse_line(b"a 1 2 3"), Err(LineError::Malformed));
        assert_eq!(parse_line(b"a nan 1700000000"), Err(LineError::BadValue));
        assert_eq!(parse_line(b"a NaN 1700000000"), Err(LineError::BadValue));
        assert_eq!(parse_line(b"a inf 1700000000"), Err(LineError::BadValue));
        assert_eq!(
            parse_line(b"a -Infinity 1700000000"),
            Err(LineError::BadValue)
        );
        assert_eq!(parse_line(b"a x1 1700000000"), Err(LineError::BadValue));
        assert_eq!(parse_line(b"a 1 yesterday"), Err(LineError::BadTimestamp));
        assert_eq!(parse_line(b"a 1 0"), Err(LineError::BadTimestamp));
        assert_eq!(parse_line(b"a 1 99999999999"), Err(LineError::BadTimestamp));
        assert_eq!(parse_line(b"a 1 nan"), Err(LineError::BadTimestamp));
        assert_eq!(
            parse_line(b"a..b 1 1700000000"),
            Err(LineError::BadName(NameError::EmptyNode))
        );
        assert_eq!(
            parse_line(b"../../etc/passwd 1 1700000000"),
            Err(LineError::BadName(NameError::ForbiddenChar('/')))
        );
        assert_eq!(
            parse_line(b"..etc 1 1700000000"),
            Err(LineError::BadName(NameError::EmptyNode))
        );
        assert_eq!(
            parse_line(b"a/b 1 1700000000"),
            Err(LineError::BadName(NameError::ForbiddenChar('/')))
        );
        assert_eq!(
            parse_line(b"\xff\xfe 1 1700000000"),
            Err(LineError::NotUtf8)
        );
    }

    #[test]
    fn splits_lines_and_keeps_partial_tail() {
        let mut seen = Vec::new();
        let used = for_each_line(b"a 1 1\n\nb 2 2\r\nc 3", |l| seen.push(l.to_vec()));
        assert_eq!(used, 14);
        assert_eq!(seen, vec![b"a 1 1".to_vec(), b"b 2 2\r".to_vec()]);
    }
}
