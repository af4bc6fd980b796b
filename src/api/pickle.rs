//! `format=pickle` answers of the cluster protocol, as a graphite-web front's remote finder and
//! reader read them (`graphite.util.unpickle`, whose restricted unpickler allows only
//! `graphite.intervals.Interval`/`IntervalSet` and a few builtins as classes):
//!
//! - `/render`: graphite-web 1.1.8's `renderViewPickle`, a list of `series.getInfo()` dicts,
//!   written series by series (streamed) by [`super::formats::Writer`];
//! - `/metrics/find`: its `find_view`'s `pickle_nodes`, a list of `{'path', 'is_leaf'[,
//!   'intervals']}` dicts ([`nodes`]).
//!
//! Written as pickle protocol 2 (graphite-web writes the highest protocol, 5 on Python 3.11;
//! every Python 3 reads 2, and the objects read back are the same). No memo: a repeated key
//! is written again rather than fetched with `BINGET`.

use crate::store::Interval;

use super::metrics::NodeInfo;

/// The content type of every answer here, as graphite-web sends it.
pub const CONTENT_TYPE: &str = "application/pickle";

/// The opcodes used, from CPython's `pickle.py`.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const EMPTY_LIST: u8 = b']';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEMS: u8 = b'u';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE2: u8 = 0x86;
    pub const BINUNICODE: u8 = b'X';
    pub const BINFLOAT: u8 = b'G';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const GLOBAL: u8 = b'c';
    pub const NEWOBJ: u8 = 0x81;
    pub const BUILD: u8 = b'b';
}

/// A pickle being written: values are pushed in the order the unpickler's stack takes them.
struct Pickler {
    out: Vec<u8>,
}

impl Pickler {
    fn new() -> Pickler {
        Pickler {
            out: vec![op::PROTO, 2],
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(op::STOP);
        self.out
    }

    fn op(&mut self, code: u8) {
        self.out.push(code);
    }

    /// A `str` (UTF-8).
    fn str(&mut self, v: &str) {
        self.op(op::BINUNICODE);
        self.out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.out.extend_from_slice(v.as_bytes());
    }

    /// A `float` (big-endian double, as `BINFLOAT` has it).
    fn float(&mut self, v: f64) {
        self.op(op::BINFLOAT);
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn bool(&mut self, v: bool) {
        self.op(if v { op::NEWTRUE } else { op::NEWFALSE });
    }

    /// A list of `items`, each written by `item`.
    fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Pickler, &T)) {
        self.op(op::EMPTY_LIST);
        self.op(op::MARK);
        for i in items {
            item(self, i);
        }
        self.op(op::APPENDS);
    }

    /// A dict whose keys and values `entries` writes (key, value, key, value, …).
    fn dict(&mut self, entries: impl FnOnce(&mut Pickler)) {
        self.op(op::EMPTY_DICT);
        self.op(op::MARK);
        entries(self);
        self.op(op::SETITEMS);
    }

    /// An instance of `module.name` made without `__init__` (`cls.__new__(cls)`) whose
    /// `__dict__` is the dict `state` writes: what `pickle` does for a plain class.
    fn object(&mut self, module: &str, name: &str, state: impl FnOnce(&mut Pickler)) {
        self.op(op::GLOBAL);
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        self.op(op::EMPTY_TUPLE);
        self.op(op::NEWOBJ);
        self.dict(state);
        self.op(op::BUILD);
    }

    /// A `graphite.intervals.Interval`: `__dict__` `{start, end, tuple: (start, end), size}`.
    fn interval(&mut self, i: &Interval) {
        self.object("graphite.intervals", "Interval", |p| {
            p.str("start");
            p.float(i.start);
            p.str("end");
            p.float(i.end);
            p.str("tuple");
            p.float(i.start);
            p.float(i.end);
            p.op(op::TUPLE2);
            p.str("size");
            p.float(i.size());
        });
    }

    /// A `graphite.intervals.IntervalSet`: `__dict__` `{intervals: [Interval, …], size}`, the
    /// size the sum of the intervals' (which graphite-web's constructor computes; the
    /// intervals given are already disjoint).
    fn interval_set(&mut self, intervals: &[Interval]) {
        self.object("graphite.intervals", "IntervalSet", |p| {
            p.str("intervals");
            p.list(intervals, |p, i| p.interval(i));
            p.str("size");
            p.float(intervals.iter().map(Interval::size).sum());
        });
    }
}

/// `/metrics/find?format=pickle`: a list of dicts as graphite-web's `pickle_nodes` — `path`
/// (str), `is_leaf` (bool) and, for a leaf only, `intervals` (a `graphite.intervals.IntervalSet`
/// of `Interval`s, float epoch seconds), in that key order.
pub fn nodes(nodes: &[NodeInfo]) -> Vec<u8> {
    let mut p = Pickler::new();
    p.list(nodes, |p, n| {
        p.dict(|p| {
            p.str("path");
            p.str(n.path);
            p.str("is_leaf");
            p.bool(n.is_leaf);
            if let Some(intervals) = &n.intervals {
                p.str("intervals");
                p.interval_set(intervals);
            }
        });
    });
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_nodes_as_graphite_web_pickles_them() {
        let intervals = [Interval {
            start: 1.5,
            end: 20.25,
        }];
        let p = nodes(&[
            NodeInfo {
                path: "a.b",
                is_leaf: false,
                intervals: None,
            },
            NodeInfo {
                path: "a.c",
                is_leaf: true,
                intervals: Some(intervals.to_vec()),
            },
        ]);
        let mut want: Vec<u8> = vec![0x80, 2, b']', b'(', b'}', b'('];
        let s = |w: &mut Vec<u8>, v: &str| {
            w.push(b'X');
            w.extend_from_slice(&(v.len() as u32).to_le_bytes());
            w.extend_from_slice(v.as_bytes());
        };
        let f = |w: &mut Vec<u8>, v: f64| {
            w.push(b'G');
            w.extend_from_slice(&v.to_be_bytes());
        };
        s(&mut want, "path");
        s(&mut want, "a.b");
        s(&mut want, "is_leaf");
        want.extend_from_slice(&[0x89, b'u', b'}', b'(']);
        s(&mut want, "path");
        s(&mut want, "a.c");
        s(&mut want, "is_leaf");
        want.push(0x88);
        s(&mut want, "intervals");
        want.extend_from_slice(b"cgraphite.intervals\nIntervalSet\n)\x81}(");
        s(&mut want, "intervals");
        want.extend_from_slice(b"](cgraphite.intervals\nInterval\n)\x81}(");
        s(&mut want, "start");
        f(&mut want, 1.5);
        s(&mut want, "end");
        f(&mut want, 20.25);
        s(&mut want, "tuple");
        f(&mut want, 1.5);
        f(&mut want, 20.25);
        want.push(0x86);
        s(&mut want, "size");
        f(&mut want, 18.75);
        want.extend_from_slice(b"ube");
        s(&mut want, "size");
        f(&mut want, 18.75);
        want.extend_from_slice(b"ubue.");
        assert_eq!(p, want);
    }

    #[test]
    fn series_values_are_floats_or_none() {
        let mut s = crate::query::Series::new(
            "a.b",
            60,
            300,
            60,
            vec![Some(1.0), None, Some(3.0), None],
            0.0,
        );
        let p = super::super::formats::pickle(std::slice::from_ref(&s));
        assert_eq!(&p[..4], &[0x80, 2, b']', b'(']);
        assert!(p.ends_with(b"ue."));
        let values = |p: &[u8]| {
            let at = p.windows(6).position(|w| w == b"values").unwrap() + 6;
            p[at..]
                .iter()
                .position(|b| *b == b'e')
                .map(|end| p[at..at + end].to_vec())
        };
        let mut want = b"](G".to_vec();
        want.extend_from_slice(&1.0f64.to_be_bytes());
        want.push(b'N');
        want.push(b'G');
        want.extend_from_slice(&3.0f64.to_be_bytes());
        want.push(b'N');
        assert_eq!(values(&p).unwrap(), want);
        // Consolidated: two values per point, the raw step kept.
        s.consolidate(2);
        let p = super::super::formats::pickle(&[s]);
        let mut want = b"](G".to_vec();
        want.extend_from_slice(&1.0f64.to_be_bytes());
        want.push(b'G');
        want.extend_from_slice(&3.0f64.to_be_bytes());
        assert_eq!(values(&p).unwrap(), want);
    }
}
