//! Render output formats as graphite-web writes them: `json` (with `maxDataPoints`
//! consolidation, `noNullPoints`, `tags`, `jsonp`), `csv`, `raw` and `pickle` (whose writer
//! is in `pickle.rs`; `msgpack` is in `msgpack.rs`).

use std::fmt::Write;

use chrono_tz::Tz;

use crate::python::repr_f64;
use crate::query::format_local;
use crate::query::Series;

/// JSON text of a float as graphite-web emits it: Python's repr, `null` for NaN, `1e9999`
/// for infinity (its encoder's substitute; valid JSON that reads back as infinity).
pub fn json_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("null");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "1e9999" } else { "-1e9999" });
    } else {
        out.push_str(&repr_f64(v));
    }
}

/// A JSON string literal.
pub fn json_string(out: &mut String, s: &str) {
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

/// `format=json`: `[{"target": …, "tags": {…}, "datapoints": [[value|null, ts], …]}, …]`.
pub fn json(series: &[Series], no_null_points: bool) -> String {
    let mut out =
        String::with_capacity(64 + series.iter().map(|s| s.values.len() * 24).sum::<usize>());
    out.push('[');
    let mut first = true;
    for s in series {
        let points = s.datapoints();
        if no_null_points && !points.iter().any(|(v, _)| v.is_some_and(|v| !v.is_nan())) {
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str("{\"target\": ");
        json_string(&mut out, &s.name);
        out.push_str(", \"tags\": {");
        for (i, (k, v)) in s.tags.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json_string(&mut out, k);
            out.push_str(": ");
            json_string(&mut out, v);
        }
        out.push_str("}, \"datapoints\": [");
        let mut firstp = true;
        for (v, t) in points {
            if no_null_points && v.is_none_or(|v| v.is_nan()) {
                continue;
            }
            if !firstp {
                out.push_str(", ");
            }
            firstp = false;
            out.push('[');
            match v {
                Some(v) => json_number(&mut out, v),
                None => out.push_str("null"),
            }
            let _ = write!(out, ", {t}]");
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// `format=csv`: `name,YYYY-MM-DD HH:MM:SS,value` rows (empty value for null), times in the
/// request's zone, `\r\n` line ends (Python's csv "excel" dialect). As in graphite-web, the
/// timestamp advances by the raw step even for a consolidated series.
pub fn csv(series: &[Series], tz: &Tz) -> String {
    let mut out = String::new();
    for s in series {
        for (i, v) in s.consolidated().iter().enumerate() {
            csv_field(&mut out, &s.name);
            out.push(',');
            out.push_str(&format_local(s.start + i as i64 * s.step, tz));
            out.push(',');
            if let Some(v) = v {
                out.push_str(&repr_f64(*v));
            }
            out.push_str("\r\n");
        }
    }
    out
}

/// `format=raw`: `name,start,end,step|v1,v2,…` per series, values as Python's repr, `None`
/// for null.
pub fn raw(series: &[Series]) -> String {
    let mut out = String::new();
    for s in series {
        let _ = write!(out, "{},{},{},{}|", s.name, s.start, s.end, s.step);
        for (i, v) in s.consolidated().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match v {
                Some(v) => out.push_str(&repr_f64(*v)),
                None => out.push_str("None"),
            }
        }
        out.push('\n');
    }
    out
}

/// `format=pickle`: a list of dicts as graphite-web's `series.getInfo()` (name, start, end,
/// step, values, pathExpression, valuesPerPoint, consolidationFunc, xFilesFactor); written by
/// [`super::pickle::series`], beside the cluster protocol's other pickles.
pub fn pickle(series: &[Series]) -> Vec<u8> {
    super::pickle::series(series)
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
