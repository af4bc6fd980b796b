//! carbon's plaintext protocol: one `path value timestamp` line per point, fields separated by
//! whitespace, lines by `\n` (a trailing `\r` is whitespace). A timestamp of `-1` means "now"
//! (carbon's convention); timestamps may carry a fraction, which is dropped.
//!
//! Pure functions over bytes, no I/O: the listeners feed them, the tests and fuzzers call them
//! directly.
//!
//! Two paths give the same answers: [`parse_line`] first tries a single-pass scanner for the
//! line every collector sends (`plain.ascii.name 12.5 1700000000`, one space between
//! fields); anything else (tags, tabs, `-1`, exponents, fractions of seconds, non-ASCII,
//! errors) goes to the nom grammar, which is the definition. The tests check that the
//! scanner never disagrees with the grammar.

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
    /// The value is not a number.
    BadValue,
    /// The value is NaN or infinite: dropped as carbon drops NaN (collectd sends `nan` as the
    /// first value of every rate), counted apart (`nan_dropped`), not an error and not logged.
    NotFinite,
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
            LineError::BadValue => f.write_str("value is not a number"),
            LineError::NotFinite => f.write_str("value is NaN or infinite (dropped)"),
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

/// The three fields of a line: name, value, timestamp.
type Fields<'a> = (&'a [u8], &'a [u8], &'a [u8]);

fn fields(input: &[u8]) -> IResult<&[u8], Fields<'_>> {
    let ws0 = || take_while(is_ws);
    let ws1 = || take_while1(is_ws);
    let field = || take_till1(is_ws);
    let (rest, (_, name, _, value, _, ts, _, _)) =
        (ws0(), field(), ws1(), field(), ws1(), field(), ws0(), eof).parse(input)?;
    Ok((rest, (name, value, ts)))
}

/// The value field: a number (`BadValue` otherwise), finite (`NotFinite` otherwise).
fn parse_value(b: &[u8]) -> Result<f64, LineError> {
    // Fast path: plain integers, the commonest value of all.
    if b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &d in b {
            n = n * 10 + (d - b'0') as u64;
        }
        return Ok(n as f64);
    }
    let s = std::str::from_utf8(b).map_err(|_| LineError::BadValue)?;
    let v: f64 = s.parse().map_err(|_| LineError::BadValue)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(LineError::NotFinite)
    }
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

/// Powers of ten exactly representable as f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Byte classes of the scanner: a byte of a plain name, `.`, the field separator, or
/// anything that sends the line to the grammar (controls, DEL, `/`, `;`, non-ASCII).
const NAME: u8 = 0;
const DOT: u8 = 1;
const SPACE: u8 = 2;
const OTHER: u8 = 3;
static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = NAME;
        b += 1;
    }
    t[b'.' as usize] = DOT;
    t[b' ' as usize] = SPACE;
    t[b'/' as usize] = OTHER;
    t[b';' as usize] = OTHER;
    t
};

/// The scanner of the common line: `name SP value SP timestamp [CR]`, a plain ASCII name,
/// a decimal value of at most 15 significant digits, a timestamp of 1..=10 digits. `None`
/// whenever the line is anything else, even a valid one.
fn fast_line(line: &[u8]) -> Option<Line<'_>> {
    let n = line.len();
    let mut i = 0;
    let mut node_len = 0usize;
    while i < n {
        match CLASS[line[i] as usize] {
            NAME => node_len += 1,
            DOT if node_len > 0 && node_len <= super::name::MAX_NODE_LEN => node_len = 0,
            SPACE => break,
            _ => return None,
        }
        i += 1;
    }
    if node_len == 0 || node_len > super::name::MAX_NODE_LEN || i == n {
        return None;
    }
    let name_end = i;
    i += 1;

    // Value: -?digits(.digits)?, exact through the integer mantissa when it has at most 15
    // digits (m < 2^53 and 10^k exact, so m / 10^k is the correctly rounded value).
    let negative = line.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut fraction = 0usize;
    let mut seen_dot = false;
    let value_start = i;
    while i < n {
        let c = line[i];
        if c.is_ascii_digit() {
            mantissa = mantissa * 10 + (c - b'0') as u64;
            digits += 1;
            if digits > 15 {
                return None;
            }
            if seen_dot {
                fraction += 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else if c == b' ' {
            break;
        } else {
            return None;
        }
        i += 1;
    }
    // A value with no digit, or a dot at either end ("1.", ".5"): leave to the grammar.
    if digits == 0 || i == n || line[value_start] == b'.' || line[i - 1] == b'.' {
        return None;
    }
    let magnitude = mantissa as f64 / POW10[fraction];
    let value = if negative { -magnitude } else { magnitude };
    i += 1;

    let mut end = n;
    if line[end - 1] == b'\r' {
        end -= 1;
    }
    let ts = &line[i..end];
    if ts.is_empty() || ts.len() > 10 || !ts.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let t = ts.iter().fold(0i64, |acc, &d| acc * 10 + (d - b'0') as i64);
    if !(1..=u32::MAX as i64).contains(&t) {
        return None;
    }
    // SAFETY: every byte of the name was checked above to be printable ASCII (class NAME or
    // DOT), which is valid UTF-8.
    let name = unsafe { std::str::from_utf8_unchecked(&line[..name_end]) };
    Some(Line {
        name: Cow::Borrowed(name),
        value,
        timestamp: Some(t),
    })
}

/// Parses one line (without its `\n`), validating and normalizing the name.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    if let Some(l) = fast_line(line) {
        return Ok(l);
    }
    parse_line_grammar(line)
}

/// The nom grammar of a line: the definition [`parse_line`]'s scanner must agree with.
fn parse_line_grammar(line: &[u8]) -> Result<Line<'_>, LineError> {
    let (_, (name, value, ts)) = fields(line).map_err(|_| LineError::Malformed)?;
    let name = std::str::from_utf8(name).map_err(|_| LineError::NotUtf8)?;
    let value = parse_value(value)?;
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
        // Blank lines are skipped; a line starting with a non-blank byte is not blank.
        if line.first().is_some_and(|&b| !is_ws(b)) || !line.iter().all(|&b| is_ws(b)) {
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
        assert_eq!(parse_line(b"a nan 1700000000"), Err(LineError::NotFinite));
        assert_eq!(parse_line(b"a NaN 1700000000"), Err(LineError::NotFinite));
        assert_eq!(parse_line(b"a inf 1700000000"), Err(LineError::NotFinite));
        assert_eq!(
            parse_line(b"a -Infinity 1700000000\r"),
            Err(LineError::NotFinite)
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

    /// The scanner answers only when the grammar gives the same answer.
    fn agree(line: &[u8]) {
        if let Some(fast) = fast_line(line) {
            let slow = parse_line_grammar(line).unwrap_or_else(|e| {
                panic!(
                    "{:?}: scanner accepted, grammar refused: {e}",
                    String::from_utf8_lossy(line)
                )
            });
            assert_eq!(fast.name, slow.name, "{line:?}");
            assert_eq!(fast.timestamp, slow.timestamp, "{line:?}");
            assert_eq!(
                fast.value.to_bits(),
                slow.value.to_bits(),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn scanner_agrees_with_grammar() {
        let fixed: &[&[u8]] = &[
            b"a.b.c 12.5 1700000000",
            b"a.b.c 12.5 1700000000\r",
            b"a.b.c -0 1700000000",
            b"a.b.c -0.000 1700000000",
            b"a 1. 1700000000",
            b"a .5 1700000000",
            b"a 1.5.5 1700000000",
            b"a - 1700000000",
            b"a 1 0",
            b"a 1 4294967295",
            b"a 1 4294967296",
            b"a 123456789012345 1",
            b"a 1234567890123456 1",
            b"a 0.000000000000001 1",
            b"a..b 1 1",
            b"a/b 1 1",
            b"a;t=v 1 1",
            b"a  1 1",
            b"a 1 1 ",
            b"a 1 1 2",
            b"a 1e3 1",
            b"a 1 -1",
            b"a 1 1.5",
            b"\x7f 1 1",
        ];
        for l in fixed {
            agree(l);
        }
        // Many decimal values: exactness of m / 10^k against the standard parser.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut fast = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let int_digits = (x % 10) as u32; // 0..=9
            let frac_digits = ((x >> 8) % 7) as usize; // 0..=6
            let int = (x >> 16) % 10u64.pow(int_digits);
            let frac = (x >> 24) % 10u64.pow(frac_digits as u32);
            let sign = if x & (1 << 60) != 0 { "-" } else { "" };
            let v = if frac_digits == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac:0frac_digits$}")
            };
            let line = format!("m.x {v} 1700000000");
            fast += fast_line(line.as_bytes()).is_some() as usize;
            agree(line.as_bytes());
        }
        assert!(fast > 190_000, "the scanner took only {fast} lines");
    }

    #[test]
    fn random_lines_never_panic_and_paths_agree() {
        let alphabet = b"ab.. \t\r-0123456789/;=e\x01\xc3\xa9";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            let mut line = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                line.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            agree(&line);
            let _ = parse_line(&line);
        }
    }

    #[test]
    fn splits_lines_and_keeps_partial_tail() {
        let mut seen = Vec::new();
        let used = for_each_line(b"a 1 1\n\nb 2 2\r\nc 3", |l| seen.push(l.to_vec()));
        assert_eq!(used, 14);
        assert_eq!(seen, vec![b"a 1 1".to_vec(), b"b 2 2\r".to_vec()]);
    }
}
