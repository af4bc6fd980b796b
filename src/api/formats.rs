//! Render output formats as graphite-web writes them: `json` (with `maxDataPoints`
//! consolidation, `noNullPoints`, `tags`, `jsonp`), `csv`, `raw` and `pickle`.

use std::fmt::Write;

use chrono_tz::Tz;

use crate::python::repr_f64;
use crate::query::format_local;
use crate::query::Series;

/// Where a format writes: a buffer that is either the whole answer ([`Out::whole`]) or is
/// handed on in chunks of about [`CHUNK`] bytes as it fills ([`Out::streamed`]), so that a
/// large answer never exists whole in memory.
pub struct Out {
    buf: Vec<u8>,
    sink: Option<Sink>,
}

/// Takes one full chunk of a streamed answer; an error (the client went away or stopped
/// reading) ends the writing.
pub type Sink = Box<dyn FnMut(Vec<u8>) -> std::io::Result<()> + Send>;

/// Bytes a streamed answer buffers before it hands a chunk on.
pub const CHUNK: usize = 64 * 1024;

impl Out {
    /// A buffer for a whole answer, `capacity` bytes reserved.
    pub fn whole(capacity: usize) -> Out {
        Out {
            buf: Vec::with_capacity(capacity),
            sink: None,
        }
    }

    /// A buffer handing each chunk to `sink`.
    pub fn streamed(sink: Sink) -> Out {
        Out {
            buf: Vec::with_capacity(CHUNK + 4096),
            sink: Some(sink),
        }
    }

    fn push_str(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn push(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// Hands a chunk on once enough is buffered (a no-op for a whole answer).
    pub fn spill(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Some(sink) if self.buf.len() >= CHUNK => {
                let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
                sink(full)
            }
            _ => Ok(()),
        }
    }

    /// Hands on whatever is buffered, however little (the end of a streamed answer).
    pub fn flush_all(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Some(sink) if !self.buf.is_empty() => sink(std::mem::take(&mut self.buf)),
            _ => Ok(()),
        }
    }

    /// Ends the answer: the whole text, or (streamed) the last chunk handed on and an empty
    /// vector returned.
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        if self.sink.is_none() {
            return Ok(std::mem::take(&mut self.buf));
        }
        self.flush_all()?;
        Ok(Vec::new())
    }
}

impl Write for Out {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// How often (in datapoints) a long series checks whether a chunk is due.
const SPILL_EVERY: usize = 1024;

/// JSON text of a float as graphite-web emits it: Python's repr, `null` for NaN, `1e9999`
/// for infinity (its encoder's substitute; valid JSON that reads back as infinity).
fn json_number(out: &mut Out, v: f64) {
    if v.is_nan() {
        out.push_str("null");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "1e9999" } else { "-1e9999" });
    } else {
        out.push_str(&repr_f64(v));
    }
}

/// A JSON string literal.
fn json_string(out: &mut Out, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// graphite-web's `maxDataPoints` handling in `renderViewJson`: for each series whose span
/// has more points than asked, consolidate by `ceil(points / maxDataPoints)` with its
/// consolidation function, nudging `start` so buckets align between calls.
pub fn apply_max_data_points(series: &mut [Series], max_data_points: usize) {
    if series.is_empty() || max_data_points == 0 {
        return;
    }
    let start = series.iter().map(|s| s.start).min().unwrap_or(0);
    let end = series.iter().map(|s| s.end).max().unwrap_or(0);
    let time_range = (end - start) as f64;
    for s in series.iter_mut() {
        if max_data_points == 1 {
            let n = s.values.len();
            s.consolidate(n);
            continue;
        }
        let points = time_range / s.step as f64;
        if (max_data_points as f64) < points {
            let vpp = (points / max_data_points as f64).ceil() as i64;
            let seconds_per_point = vpp * s.step;
            let nudge = seconds_per_point + s.start.rem_euclid(s.step)
                - s.start.rem_euclid(seconds_per_point);
            s.start += nudge;
            let lose = (nudge as f64 / s.step as f64) as i64;
            // graphite-web deletes `valuesToLose - 1` leading values.
            let drop = (lose - 1).clamp(0, s.values.len() as i64) as usize;
            s.values.drain(..drop);
            s.consolidate(vpp as usize);
        }
    }
}

/// The formats a render answer can be streamed in (everything but the images).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `format=json`, with `noNullPoints` when set.
    Json {
        /// Leave out null points, and series with no other.
        no_null_points: bool,
    },
    /// `format=csv`.
    Csv,
    /// `format=raw`.
    Raw,
    /// `format=pickle`.
    Pickle,
}

/// Writes one format series by series: [`Self::start`], [`Self::series`] for each (in
/// order), [`Self::end`], so a streamed answer can drop each series once it is written.
pub struct Writer {
    format: Format,
    tz: Tz,
    first: bool,
}

impl Writer {
    /// A writer of `format`, CSV times in `tz`.
    pub fn new(format: Format, tz: Tz) -> Writer {
        Writer {
            format,
            tz,
            first: true,
        }
    }

    /// The opening of the answer.
    pub fn start(&mut self, out: &mut Out) {
        match self.format {
            Format::Json { .. } => out.push(b'['),
            Format::Pickle => out.buf.extend_from_slice(&[0x80, 2, b']', b'(']),
            Format::Csv | Format::Raw => {}
        }
    }

    /// One series of the answer.
    pub fn series(&mut self, out: &mut Out, s: &Series) -> std::io::Result<()> {
        match self.format {
            Format::Json { no_null_points } => self.json_series(out, s, no_null_points),
            Format::Csv => csv_series(out, s, &self.tz),
            Format::Raw => raw_series(out, s),
            Format::Pickle => pickle_series(out, s),
        }
    }

    /// The close of the answer.
    pub fn end(&mut self, out: &mut Out) {
        match self.format {
            Format::Json { .. } => out.push(b']'),
            Format::Pickle => out.buf.extend_from_slice(b"e."),
            Format::Csv | Format::Raw => {}
        }
    }

    /// `format=json`: `[{"target": …, "tags": {…}, "datapoints": [[value|null, ts], …]}, …]`.
    fn json_series(&mut self, out: &mut Out, s: &Series, no_null: bool) -> std::io::Result<()> {
        let points = s.datapoints();
        if no_null && !points.iter().any(|(v, _)| v.is_some_and(|v| !v.is_nan())) {
            return Ok(());
        }
        if !self.first {
            out.push_str(", ");
        }
        self.first = false;
        out.push_str("{\"target\": ");
        json_string(out, &s.name);
        out.push_str(", \"tags\": {");
        for (i, (k, v)) in s.tags.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json_string(out, k);
            out.push_str(": ");
            json_string(out, v);
        }
        out.push_str("}, \"datapoints\": [");
        let mut firstp = true;
        for (i, (v, t)) in points.into_iter().enumerate() {
            if no_null && v.is_none_or(|v| v.is_nan()) {
                continue;
            }
            if !firstp {
                out.push_str(", ");
            }
            firstp = false;
            out.push(b'[');
            match v {
                Some(v) => json_number(out, v),
                None => out.push_str("null"),
            }
            let _ = write!(out, ", {t}]");
            if i % SPILL_EVERY == SPILL_EVERY - 1 {
                out.spill()?;
            }
        }
        out.push_str("]}");
        out.spill()
    }
}

/// A whole answer of `series` in `format`.
pub fn whole(format: Format, series: &[Series], tz: &Tz) -> Vec<u8> {
    let points: usize = series.iter().map(|s| s.values.len()).sum();
    let mut out = Out::whole(64 + points * 24);
    let mut w = Writer::new(format, *tz);
    w.start(&mut out);
    for s in series {
        // A whole answer has no sink, so writing cannot fail.
        let _ = w.series(&mut out, s);
    }
    w.end(&mut out);
    out.finish().unwrap_or_default()
}

#[cfg(test)]
/// `format=json` of `series`, whole (see [`Writer`]).
pub fn json(series: &[Series], no_null_points: bool) -> String {
    let bytes = whole(Format::Json { no_null_points }, series, &Tz::UTC);
    String::from_utf8(bytes).unwrap_or_default()
}

fn csv_field(out: &mut Out, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.push_str(&s.replace('"', "\"\""));
        out.push(b'"');
    } else {
        out.push_str(s);
    }
}

/// `format=csv`: `name,YYYY-MM-DD HH:MM:SS,value` rows (empty value for null), times in the
/// request's zone, `\r\n` line ends (Python's csv "excel" dialect). As in graphite-web, the
/// timestamp advances by the raw step even for a consolidated series.
fn csv_series(out: &mut Out, s: &Series, tz: &Tz) -> std::io::Result<()> {
    for (i, v) in s.consolidated().iter().enumerate() {
        csv_field(out, &s.name);
        out.push(b',');
        out.push_str(&format_local(s.start + i as i64 * s.step, tz));
        out.push(b',');
        if let Some(v) = v {
            out.push_str(&repr_f64(*v));
        }
        out.push_str("\r\n");
        if i % SPILL_EVERY == SPILL_EVERY - 1 {
            out.spill()?;
        }
    }
    out.spill()
}

#[cfg(test)]
/// `format=csv` of `series`, whole.
pub fn csv(series: &[Series], tz: &Tz) -> String {
    String::from_utf8(whole(Format::Csv, series, tz)).unwrap_or_default()
}

/// `format=raw`: `name,start,end,step|v1,v2,…` per series, values as Python's repr, `None`
/// for null.
fn raw_series(out: &mut Out, s: &Series) -> std::io::Result<()> {
    let _ = write!(out, "{},{},{},{}|", s.name, s.start, s.end, s.step);
    for (i, v) in s.consolidated().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match v {
            Some(v) => out.push_str(&repr_f64(*v)),
            None => out.push_str("None"),
        }
        if i % SPILL_EVERY == SPILL_EVERY - 1 {
            out.spill()?;
        }
    }
    out.push(b'\n');
    out.spill()
}

#[cfg(test)]
/// `format=raw` of `series`, whole.
pub fn raw(series: &[Series]) -> String {
    String::from_utf8(whole(Format::Raw, series, &Tz::UTC)).unwrap_or_default()
}

/// One series of `format=pickle` (protocol 2, a list of dicts as graphite-web's
/// `series.getInfo()`: name, start, end, step, values, pathExpression, valuesPerPoint,
/// consolidationFunc, xFilesFactor).
fn pickle_series(out: &mut Out, se: &Series) -> std::io::Result<()> {
    fn s(out: &mut Out, v: &str) {
        out.push(b'X');
        out.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.push_str(v);
    }
    fn int(out: &mut Out, v: i64) {
        if let Ok(i) = i32::try_from(v) {
            out.push(b'J');
            out.buf.extend_from_slice(&i.to_le_bytes());
        } else {
            out.push(0x8a);
            out.push(8);
            out.buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn float(out: &mut Out, v: f64) {
        out.push(b'G');
        out.buf.extend_from_slice(&v.to_be_bytes());
    }
    out.push(b'}');
    out.push(b'(');
    s(out, "name");
    s(out, &se.name);
    s(out, "start");
    int(out, se.start);
    s(out, "end");
    int(out, se.end);
    s(out, "step");
    int(out, se.step);
    s(out, "values");
    out.push(b']');
    out.push(b'(');
    for (i, v) in se.consolidated().iter().enumerate() {
        match v {
            Some(v) => float(out, *v),
            None => out.push(b'N'),
        }
        // A MARK ... APPENDS run may be split across chunks: the bytes stay in order.
        if i % SPILL_EVERY == SPILL_EVERY - 1 {
            out.spill()?;
        }
    }
    out.push(b'e');
    s(out, "pathExpression");
    s(out, &se.path_expression);
    s(out, "valuesPerPoint");
    int(out, se.values_per_point as i64);
    s(out, "consolidationFunc");
    s(out, se.consolidation_func.name());
    s(out, "xFilesFactor");
    float(out, se.x_files_factor);
    out.push(b'u');
    out.spill()
}

#[cfg(test)]
/// `format=pickle` of `series`, whole.
pub fn pickle(series: &[Series]) -> Vec<u8> {
    whole(Format::Pickle, series, &Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        Series::new("a.b", 60, 240, 60, vec![Some(1.0), None, Some(0.5)], 0.0)
    }

    #[test]
    fn json_shape() {
        let j = json(&[series()], false);
        assert_eq!(
            j,
            r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.0, 60], [null, 120], [0.5, 180]]}]"#
        );
        let j = json(&[series()], true);
        assert!(j.contains("[[1.0, 60], [0.5, 180]]"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert!(v.is_array());
    }

    #[test]
    fn csv_and_raw() {
        assert_eq!(csv(&[series()], &Tz::UTC), "a.b,1970-01-01 00:01:00,1.0\r\na.b,1970-01-01 00:02:00,\r\na.b,1970-01-01 00:03:00,0.5\r\n");
        assert_eq!(raw(&[series()]), "a.b,60,240,60|1.0,None,0.5\n");
    }

    #[test]
    fn streamed_answers_are_the_whole_answer_in_chunks() {
        let big: Vec<Series> = (0..3)
            .map(|k| {
                let values = (0..10_000)
                    .map(|i| (i % 7 != 0).then_some(i as f64 * 0.5 + k as f64))
                    .collect();
                Series::new(format!("big.s{k}"), 0, 100_000, 10, values, 0.0)
            })
            .collect();
        for format in [
            Format::Json {
                no_null_points: false,
            },
            Format::Json {
                no_null_points: true,
            },
            Format::Csv,
            Format::Raw,
            Format::Pickle,
        ] {
            let chunks = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<Vec<u8>>::new()));
            let seen = chunks.clone();
            let mut out = Out::streamed(Box::new(move |c| {
                seen.lock().push(c);
                Ok(())
            }));
            let mut w = Writer::new(format, Tz::UTC);
            w.start(&mut out);
            for s in &big {
                w.series(&mut out, s).unwrap();
            }
            w.end(&mut out);
            assert!(out.finish().unwrap().is_empty());
            let chunks = chunks.lock();
            assert!(chunks.len() > 1, "{format:?}: {} chunks", chunks.len());
            assert!(chunks.iter().all(|c| c.len() < 2 * CHUNK), "{format:?}");
            assert_eq!(chunks.concat(), whole(format, &big, &Tz::UTC), "{format:?}");
        }
    }

    #[test]
    fn a_failing_sink_stops_the_writer() {
        let s = Series::new("a", 0, 100_000, 10, vec![Some(1.0); 10_000], 0.0);
        let mut out = Out::streamed(Box::new(|_| Err(std::io::ErrorKind::BrokenPipe.into())));
        let mut w = Writer::new(Format::Csv, Tz::UTC);
        assert!(w.series(&mut out, &s).is_err());
    }

    #[test]
    fn max_data_points_consolidates() {
        let mut s = vec![Series::new(
            "a",
            0,
            600,
            60,
            (0..10).map(|i| Some(i as f64)).collect(),
            0.0,
        )];
        apply_max_data_points(&mut s, 5);
        assert_eq!(s[0].values_per_point, 2);
        let mut one = vec![series()];
        apply_max_data_points(&mut one, 1);
        assert_eq!(one[0].datapoints(), vec![(Some(0.75), 60)]);
    }

    #[test]
    fn pickle_reads_back_with_our_decoder() {
        let p = pickle(&[series()]);
        // The carbon decoder refuses dicts, which shows the frame is well-formed up to them.
        assert!(matches!(
            crate::carbon::decode(&p),
            Err(crate::carbon::PickleError::Forbidden(b'}', _))
        ));
        assert_eq!(&p[..2], &[0x80, 2]);
        assert_eq!(*p.last().unwrap(), b'.');
    }
}
