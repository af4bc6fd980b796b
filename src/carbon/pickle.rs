//! carbon's pickle protocol: frames of a 4-byte big-endian length followed by a pickle of
//! `[(path, (timestamp, value)), …]`, as carbon-relay, collectd's write_graphite in pickle
//! mode and many clients send.
//!
//! This is not an unpickler. It interprets only the opcodes that build strings, numbers,
//! `None`/booleans, tuples and lists (and the memo that references them), for protocols 0–5.
//! Every opcode that could name a global, call a function or build an object (`GLOBAL`,
//! `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ`, `PERSID`, …) is refused, and the
//! whole frame is counted as a bad pickle.
//!
//! Memory and time are bounded by the frame size, whatever the frame says: tuples and lists
//! live in an arena and are referred to by index, so a list appended to after it was
//! memoized is shared as in Python (never copied), a list that contains itself is harmless,
//! deep nesting needs no recursion to free, and the memo is a map (a large key costs
//! nothing).
//!
//! Pure: bytes in, entries out. Reading frames off a connection is the listener's
//! ([`super::listener`]).

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;

use super::name::normalize;
use super::plaintext::LineError;

/// A value the safe subset can build. Tuples and lists are indices into their
/// [`Pickle`]'s arena.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// An integer that fits 64 bits (larger ones are refused).
    Int(i64),
    /// A float.
    Float(f64),
    /// A text or bytes string (bytes must be UTF-8 to be used as a name).
    Str(Rc<str>),
    /// Bytes that are not UTF-8.
    Bytes(Rc<[u8]>),
    /// A tuple: its items are [`Pickle::items`].
    Tuple(usize),
    /// A list: its items are [`Pickle::items`].
    List(usize),
}

/// A decoded pickle: the value `STOP` returned and the arena of its tuples and lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Pickle {
    /// The pickled object.
    pub root: Value,
    containers: Vec<Vec<Value>>,
}

impl Pickle {
    /// The items of a tuple or list value; `None` for any other value.
    pub fn items(&self, v: &Value) -> Option<&[Value]> {
        match v {
            Value::Tuple(i) | Value::List(i) => self.containers.get(*i).map(|c| &c[..]),
            _ => None,
        }
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum PickleError {
    /// An opcode outside the safe subset (the byte, and where).
    Forbidden(u8, usize),
    /// The stream ended inside an opcode or without `STOP`.
    Truncated,
    /// The opcodes do not fit together (stack underflow, missing mark, bad memo key, …).
    Invalid(&'static str),
    /// Decoded fine, but not a list.
    NotAList,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickleError::Forbidden(op, at) => write!(f, "pickle opcode {op:#04x} at byte {at} is not allowed (only lists of (path, (timestamp, value)))"),
            PickleError::Truncated => f.write_str("pickle ends early"),
            PickleError::Invalid(why) => write!(f, "invalid pickle: {why}"),
            PickleError::NotAList => f.write_str("pickle is not a list of (path, (timestamp, value))"),
        }
    }
}

enum Item {
    Mark,
    Val(Value),
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.b.len() - self.i < n {
            return Err(PickleError::Truncated);
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16le(&mut self) -> Result<usize, PickleError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]) as usize)
    }
    fn u32le(&mut self) -> Result<usize, PickleError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }
    fn u64le(&mut self) -> Result<usize, PickleError> {
        let s = self.take(8)?;
        let v = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        usize::try_from(v).map_err(|_| PickleError::Truncated)
    }
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.b[self.i..];
        let n = memchr::memchr(b'\n', rest).ok_or(PickleError::Truncated)?;
        self.i += n + 1;
        Ok(&rest[..n])
    }
}

fn text(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::Str(s.into()),
        Err(_) => Value::Bytes(bytes.into()),
    }
}

fn long_le(bytes: &[u8]) -> Result<Value, PickleError> {
    if bytes.is_empty() {
        return Ok(Value::Int(0));
    }
    if bytes.len() > 8 {
        return Err(PickleError::Invalid("integer too large"));
    }
    let neg = bytes[bytes.len() - 1] & 0x80 != 0;
    let mut buf = [if neg { 0xff } else { 0 }; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(Value::Int(i64::from_le_bytes(buf)))
}

/// Python 2's protocol-0 quoted string (`'abc'` or `"abc"` with backslash escapes).
fn quoted(line: &[u8]) -> Result<Value, PickleError> {
    if line.len() < 2 || line[0] != line[line.len() - 1] || !(line[0] == b'\'' || line[0] == b'"') {
        return Err(PickleError::Invalid("bad quoted string"));
    }
    let inner = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            i += 1;
            match inner[i] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b'\'' => out.push(b'\''),
                b'"' => out.push(b'"'),
                b'x' => {
                    let h = inner
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or(PickleError::Invalid("bad \\x escape"))?;
                    out.push(h);
                    i += 2;
                }
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
        } else {
            out.push(inner[i]);
        }
        i += 1;
    }
    Ok(text(&out))
}

fn parse_int_line(line: &[u8]) -> Result<Value, PickleError> {
    let s = std::str::from_utf8(line).map_err(|_| PickleError::Invalid("bad integer"))?;
    let s = s.trim_end_matches('L');
    match s {
        "00" => return Ok(Value::Bool(false)),
        "01" => return Ok(Value::Bool(true)),
        _ => {}
    }
    s.parse::<i64>()
        .map(Value::Int)
        .map_err(|_| PickleError::Invalid("bad integer"))
}

/// Decodes one pickle (protocols 0–5) within the safe subset.
pub fn decode(bytes: &[u8]) -> Result<Pickle, PickleError> {
    let mut r = Reader { b: bytes, i: 0 };
    let mut containers: Vec<Vec<Value>> = Vec::new();
    fn new_container(containers: &mut Vec<Vec<Value>>, items: Vec<Value>) -> usize {
        containers.push(items);
        containers.len() - 1
    }
    let mut stack: Vec<Item> = Vec::new();
    // A map, not a vector: a single PUT with a large key must not allocate a large table.
    let mut memo: std::collections::HashMap<usize, Value> = std::collections::HashMap::new();
    fn pop(stack: &mut Vec<Item>) -> Result<Value, PickleError> {
        match stack.pop() {
            Some(Item::Val(v)) => Ok(v),
            _ => Err(PickleError::Invalid("stack underflow")),
        }
    }
    fn pop_mark(stack: &mut Vec<Item>) -> Result<Vec<Value>, PickleError> {
        let pos = stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or(PickleError::Invalid("missing MARK"))?;
        let items = stack.split_off(pos + 1);
        stack.pop();
        Ok(items
            .into_iter()
            .filter_map(|i| if let Item::Val(v) = i { Some(v) } else { None })
            .collect())
    }
    fn top(stack: &[Item]) -> Result<&Value, PickleError> {
        match stack.last() {
            Some(Item::Val(v)) => Ok(v),
            _ => Err(PickleError::Invalid("stack underflow")),
        }
    }
    fn memo_put(
        memo: &mut std::collections::HashMap<usize, Value>,
        key: usize,
        v: Value,
    ) -> Result<(), PickleError> {
        memo.insert(key, v);
        Ok(())
    }
    fn extend_list(
        stack: &[Item],
        containers: &mut [Vec<Value>],
        items: Vec<Value>,
    ) -> Result<(), PickleError> {
        match stack.last() {
            Some(Item::Val(Value::List(i))) => {
                containers[*i].extend(items);
                Ok(())
            }
            _ => Err(PickleError::Invalid("APPEND to something not a list")),
        }
    }
    loop {
        let at = r.i;
        let op = r.u8()?;
        match op {
            0x80 => {
                r.u8()?;
            } // PROTO
            0x95 => {
                r.u64le()?;
            } // FRAME
            b'.' => {
                // STOP
                let root = pop(&mut stack)?;
                return Ok(Pickle { root, containers });
            }
            b'(' => stack.push(Item::Mark),
            b']' => stack.push(Item::Val(Value::List(new_container(
                &mut containers,
                Vec::new(),
            )))),
            b')' => stack.push(Item::Val(Value::Tuple(new_container(
                &mut containers,
                Vec::new(),
            )))),
            b'l' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Item::Val(Value::List(new_container(
                    &mut containers,
                    items,
                ))));
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Item::Val(Value::Tuple(new_container(
                    &mut containers,
                    items,
                ))));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop(&mut stack)?);
                }
                items.reverse();
                stack.push(Item::Val(Value::Tuple(new_container(
                    &mut containers,
                    items,
                ))));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                extend_list(&stack, &mut containers, vec![v])?;
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                extend_list(&stack, &mut containers, items)?;
            }
            b'0' => {
                stack.pop().ok_or(PickleError::Invalid("stack underflow"))?;
            }
            b'1' => {
                pop_mark(&mut stack)?;
            }
            b'2' => {
                let v = top(&stack)?.clone();
                stack.push(Item::Val(v));
            }
            b'N' => stack.push(Item::Val(Value::None)),
            0x88 => stack.push(Item::Val(Value::Bool(true))),
            0x89 => stack.push(Item::Val(Value::Bool(false))),
            b'J' => {
                let s = r.take(4)?;
                stack.push(Item::Val(Value::Int(
                    i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as i64,
                )));
            }
            b'K' => {
                let v = r.u8()?;
                stack.push(Item::Val(Value::Int(v as i64)));
            }
            b'M' => {
                let v = r.u16le()?;
                stack.push(Item::Val(Value::Int(v as i64)));
            }
            0x8a => {
                let n = r.u8()? as usize;
                stack.push(Item::Val(long_le(r.take(n)?)?));
            }
            0x8b => {
                let n = r.u32le()?;
                stack.push(Item::Val(long_le(r.take(n)?)?));
            }
            b'I' | b'L' => {
                let line = r.line()?;
                stack.push(Item::Val(parse_int_line(line)?));
            }
            b'G' => {
                let s = r.take(8)?;
                stack.push(Item::Val(Value::Float(f64::from_be_bytes([
                    s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
                ]))));
            }
            b'F' => {
                let line = r.line()?;
                let v = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or(PickleError::Invalid("bad float"))?;
                stack.push(Item::Val(Value::Float(v)));
            }
            0x8c | b'U' | b'C' => {
                let n = r.u8()? as usize;
                stack.push(Item::Val(text(r.take(n)?)));
            }
            b'X' | b'T' | b'B' => {
                let n = r.u32le()?;
                stack.push(Item::Val(text(r.take(n)?)));
            }
            0x8d | 0x8e => {
                let n = r.u64le()?;
                stack.push(Item::Val(text(r.take(n)?)));
            }
            b'S' => {
                let line = r.line()?;
                stack.push(Item::Val(quoted(line)?));
            }
            b'V' => {
                // raw-unicode-escape; carbon names are ASCII, so plain UTF-8 is taken as is.
                let line = r.line()?;
                stack.push(Item::Val(text(line)));
            }
            0x94 => {
                let v = top(&stack)?.clone();
                let key = memo.len();
                memo_put(&mut memo, key, v)?;
            }
            b'q' => {
                let key = r.u8()? as usize;
                let v = top(&stack)?.clone();
                memo_put(&mut memo, key, v)?;
            }
            b'r' => {
                let key = r.u32le()?;
                let v = top(&stack)?.clone();
                memo_put(&mut memo, key, v)?;
            }
            b'p' => {
                let line = r.line()?;
                let key = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or(PickleError::Invalid("bad memo key"))?;
                let v = top(&stack)?.clone();
                memo_put(&mut memo, key, v)?;
            }
            b'h' | b'j' | b'g' => {
                let key = match op {
                    b'h' => r.u8()? as usize,
                    b'j' => r.u32le()?,
                    _ => {
                        let line = r.line()?;
                        std::str::from_utf8(line)
                            .ok()
                            .and_then(|s| s.parse::<usize>().ok())
                            .ok_or(PickleError::Invalid("bad memo key"))?
                    }
                };
                let v = memo
                    .get(&key)
                    .cloned()
                    .ok_or(PickleError::Invalid("memo key not set"))?;
                stack.push(Item::Val(v));
            }
            other => return Err(PickleError::Forbidden(other, at)),
        }
    }
}

/// One entry of a carbon pickle, or why it was refused. Borrows from the decoded frame: a
/// frame that lists one long name many times (memo references cost a few bytes each) is not
/// copied once per entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `(path, (timestamp, value))`, the path normalized.
    Point {
        name: Cow<'a, str>,
        timestamp: Option<i64>,
        value: f64,
    },
    /// Not of that shape, or unusable values (counted by `reason`, the rest of the frame
    /// goes on); `detail` says which item and why, for the log.
    Bad { reason: LineError, detail: String },
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Bool(b) => Some(*b as u8 as f64),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Decodes a frame that must hold a list (carbon's `[(path, (timestamp, value)), …]`); its
/// items (`pickle.items(&pickle.root)`) are read one by one with [`entry`].
pub fn decode_list(frame: &[u8]) -> Result<Pickle, PickleError> {
    let pickle = decode(frame)?;
    match pickle.root {
        Value::List(_) => Ok(pickle),
        _ => Err(PickleError::NotAList),
    }
}

fn pair<'a>(pickle: &'a Pickle, v: &Value) -> Option<&'a [Value]> {
    pickle.items(v).filter(|t| t.len() == 2)
}

fn bad(reason: LineError, detail: String) -> Entry<'static> {
    Entry::Bad { reason, detail }
}

/// One list item as carbon's pickle receiver reads it: it must be `(path, (timestamp,
/// value))` (tuples or lists); timestamps and values may be ints, floats or numeric
/// strings; a timestamp of -1 means now. A bad item is refused alone.
pub fn entry<'a>(pickle: &'a Pickle, item: &'a Value) -> Entry<'a> {
    let Some([path, point]) = pair(pickle, item).map(|p| [&p[0], &p[1]]) else {
        return bad(
            LineError::Malformed,
            "item is not (path, (timestamp, value))".into(),
        );
    };
    let Some([ts, val]) = pair(pickle, point).map(|p| [&p[0], &p[1]]) else {
        return bad(
            LineError::Malformed,
            "datapoint is not (timestamp, value)".into(),
        );
    };
    let name: &str = match path {
        Value::Str(s) => s,
        Value::Bytes(_) => return bad(LineError::NotUtf8, "path is not UTF-8".into()),
        _ => return bad(LineError::Malformed, "path is not a string".into()),
    };
    let Some(value) = number(val) else {
        return bad(
            LineError::BadValue,
            format!("{name}: value is not a number"),
        );
    };
    if !value.is_finite() {
        return bad(
            LineError::NotFinite,
            format!("{name}: value is NaN or infinite (dropped)"),
        );
    }
    let Some(t) = number(ts).filter(|t| t.is_finite()) else {
        return bad(
            LineError::BadTimestamp,
            format!("{name}: timestamp is not a number"),
        );
    };
    let timestamp = if t.trunc() == -1.0 {
        None
    } else if (1.0..u32::MAX as f64 + 1.0).contains(&t) {
        Some(t.trunc() as i64)
    } else {
        return bad(
            LineError::BadTimestamp,
            format!("{name}: timestamp {t} out of range"),
        );
    };
    match normalize(name) {
        Ok(n) => Entry::Point {
            name: n,
            timestamp,
            value,
        },
        Err(e) => bad(LineError::BadName(e.clone()), format!("{name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of a frame, as the connection handler sees them.
    fn entries(frame: &[u8]) -> Result<Vec<Entry<'static>>, PickleError> {
        let pickle = decode_list(frame)?;
        Ok(pickle
            .items(&pickle.root)
            .unwrap_or(&[])
            .iter()
            .map(|v| match entry(&pickle, v) {
                Entry::Point {
                    name,
                    timestamp,
                    value,
                } => Entry::Point {
                    name: Cow::Owned(name.into_owned()),
                    timestamp,
                    value,
                },
                Entry::Bad { reason, detail } => Entry::Bad { reason, detail },
            })
            .collect())
    }

    // Produced by Python 3: pickle.dumps([("a.b", (1700000000, 1.5)), ("c", (1700000001, 2))], protocol=2)
    const P2: &[u8] = b"\x80\x02]q\x00(X\x03\x00\x00\x00a.bq\x01J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86q\x02\x86q\x03X\x01\x00\x00\x00cq\x04J\x01\xf1SeK\x02\x86q\x05\x86q\x06e.";

    #[test]
    fn random_and_mutated_frames_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..50_000 {
            let mut frame = P2.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() % frame.len() as u64) as usize;
                frame[at] = next() as u8;
            }
            let cut = (next() % (frame.len() as u64 + 1)) as usize;
            if let Ok(pickle) = decode_list(&frame[..cut]) {
                let items = pickle.items(&pickle.root).unwrap_or(&[]);
                for v in items {
                    let _ = entry(&pickle, v);
                }
            }
            let random: Vec<u8> = (0..(next() % 40)).map(|_| next() as u8).collect();
            let _ = decode(&random);
        }
    }

    #[test]
    fn decodes_carbon_frames() {
        let e = entries(P2).unwrap();
        assert_eq!(
            e,
            vec![
                Entry::Point {
                    name: "a.b".into(),
                    timestamp: Some(1_700_000_000),
                    value: 1.5
                },
                Entry::Point {
                    name: "c".into(),
                    timestamp: Some(1_700_000_001),
                    value: 2.0
                },
            ]
        );
    }

    #[test]
    fn protocol_0_and_lists() {
        // pickle.dumps([['x', [10, '3.5']]], protocol=0)
        let p0 = b"(lp0\n(lp1\nVx\np2\na(lp3\nI10\naV3.5\np4\naaa.";
        assert_eq!(
            entries(p0).unwrap(),
            vec![Entry::Point {
                name: "x".into(),
                timestamp: Some(10),
                value: 3.5
            }]
        );
    }

    #[test]
    fn refuses_objects_and_garbage() {
        // pickle.dumps(os.system) style: GLOBAL opcode.
        let evil = b"cos\nsystem\n(S'echo pwned'\ntR.";
        assert!(matches!(decode(evil), Err(PickleError::Forbidden(b'c', 0))));
        let evil4 = b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93.";
        assert!(matches!(
            decode(evil4),
            Err(PickleError::Forbidden(0x93, _))
        ));
        assert_eq!(
            decode(b"\x80\x02]q\x00(X\x03\x00"),
            Err(PickleError::Truncated)
        );
        assert_eq!(entries(b"K\x01."), Err(PickleError::NotAList));
        assert!(decode(b"a.").is_err());
        assert!(decode(b"h\x05.").is_err());
        // A large memo key allocates nothing in proportion to it.
        let p = decode(b"K\x01r\xff\xff\xff\x00j\xff\xff\xff\x00\x86.").unwrap();
        assert_eq!(p.items(&p.root), Some(&[Value::Int(1), Value::Int(1)][..]));
        // A list memoized, then appended to, is shared (not copied) as in Python; a list that
        // contains itself is harmless; deep nesting is freed without recursion.
        // Python: l = []; l.append(7); l.append(l) -> [7, [...]]
        let p = decode(b"]q\x00h\x00K\x07aa.").unwrap();
        assert_eq!(p.items(&p.root), Some(&[Value::Int(7), Value::List(0)][..]));
        let mut deep = b"\x80\x02".to_vec();
        deep.extend(std::iter::repeat_n(b']', 200_000));
        deep.extend(std::iter::repeat_n(b'a', 199_999));
        deep.push(b'.');
        let p = decode(&deep).unwrap();
        assert_eq!(p.items(&p.root).unwrap().len(), 1);
        drop(p);
        let selfref = decode(b"]q\x00h\x00a.").unwrap();
        assert!(matches!(
            selfref.items(&selfref.root),
            Some([Value::List(0)])
        ));
        // One entry referenced 1000 times through the memo: 1000 points, the name not copied.
        let mut frame = b"](X\x03\x00\x00\x00a.bJ\x00\xf1SeK\x01\x86\x86q\x01".to_vec();
        for _ in 0..999 {
            frame.extend_from_slice(b"h\x01");
        }
        frame.extend_from_slice(b"e.");
        let pickle = decode_list(&frame).unwrap();
        let all: Vec<Entry> = pickle
            .items(&pickle.root)
            .unwrap()
            .iter()
            .map(|v| entry(&pickle, v))
            .collect();
        assert_eq!(all.len(), 1000);
        assert!(all.iter().all(|e| matches!(
            e,
            Entry::Point {
                name: Cow::Borrowed("a.b"),
                timestamp: Some(1_700_000_000),
                ..
            }
        )));
        // A bad item is refused alone.
        let e = entries(
            b"](K\x01X\x01\x00\x00\x00aJ\x00\xf1SeG\x7f\xf8\x00\x00\x00\x00\x00\x00\x86\x86e.",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert!(matches!(
            e[0],
            Entry::Bad {
                reason: LineError::Malformed,
                ..
            }
        ));
        assert!(
            matches!(
                e[1],
                Entry::Bad {
                    reason: LineError::NotFinite,
                    ..
                }
            ),
            "NaN value dropped"
        );
    }
}
