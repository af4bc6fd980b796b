//! `format=msgpack` answers of the cluster protocol, as graphite-web 1.1.8 writes them
//! (`msgpack.dumps(…, use_bin_type=True)`, with its bundled u-msgpack-python when the
//! `msgpack` module is absent) and a graphite-web front's remote finder and reader read them
//! (`msgpack.unpackb`, content type `application/x-msgpack`):
//!
//! - `/render`: `renderViewMsgPack`, an array of `series.getInfo()` maps ([`series`]);
//! - `/metrics/find`: `find_view`'s `msgpack_nodes`, an array of `{path, is_leaf[,
//!   intervals]}` maps ([`nodes`]).
//!
//! Encoded with `rmp-serde`, structs as maps with their field names as keys (in field order,
//! which is graphite-web's dict order): strings as msgpack str, integers in their smallest
//! form, floats as float 64, `None` as nil — the bytes Python's packers write for the same
//! values.
//!
//! carbonapi's `msgpack` backend reads the render answer as it is (it skips the keys it does
//! not know) but expects a find node's leaf flag under `isLeaf` (graphite-web 0.9's name), so
//! it takes every node of this answer, as of graphite-web's, for a branch.

use std::borrow::Cow;

use serde::Serialize;

use crate::query::Series;

use super::metrics::NodeInfo;

/// The content type of every answer here, as graphite-web sends it.
pub const CONTENT_TYPE: &str = "application/x-msgpack";

/// One series as graphite-web's `TimeSeries.getInfo()`.
#[derive(Serialize)]
struct SeriesInfo<'a> {
    name: &'a str,
    start: i64,
    end: i64,
    step: i64,
    values: Cow<'a, [Option<f64>]>,
    #[serde(rename = "pathExpression")]
    path_expression: &'a str,
    #[serde(rename = "valuesPerPoint")]
    values_per_point: usize,
    #[serde(rename = "consolidationFunc")]
    consolidation_func: &'static str,
    #[serde(rename = "xFilesFactor")]
    x_files_factor: f64,
}

/// One node as graphite-web's `msgpack_nodes`: `intervals` only for a leaf, each interval
/// its `(start, end)` tuple.
#[derive(Serialize)]
struct Node<'a> {
    path: &'a str,
    is_leaf: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    intervals: Option<Vec<(f64, f64)>>,
}

fn encode(value: &impl Serialize) -> Vec<u8> {
    // Writing plain structs, strings and numbers into a Vec cannot fail.
    rmp_serde::to_vec_named(value).expect("msgpack encoding into memory")
}

/// `/render?format=msgpack`: an array of maps `name` (str), `start`, `end`, `step` (int,
/// epoch seconds; `step` the raw step), `values` (array of float 64 or nil, consolidated when
/// `valuesPerPoint` > 1), `pathExpression` (str), `valuesPerPoint` (int),
/// `consolidationFunc` (str, e.g. `average`), `xFilesFactor` (float 64), in that key order.
pub fn series(series: &[Series]) -> Vec<u8> {
    let infos: Vec<SeriesInfo> = series
        .iter()
        .map(|s| SeriesInfo {
            name: &s.name,
            start: s.start,
            end: s.end,
            step: s.step,
            values: s.consolidated(),
            path_expression: &s.path_expression,
            values_per_point: s.values_per_point,
            consolidation_func: s.consolidation_func.name(),
            x_files_factor: s.x_files_factor,
        })
        .collect();
    encode(&infos)
}

/// `/metrics/find?format=msgpack`: an array of maps `path` (str), `is_leaf` (bool) and, for a
/// leaf only, `intervals` (array of `[start, end]` float 64 pairs, epoch seconds).
pub fn nodes(nodes: &[NodeInfo]) -> Vec<u8> {
    let nodes: Vec<Node> = nodes
        .iter()
        .map(|n| Node {
            path: n.path,
            is_leaf: n.is_leaf,
            intervals: n
                .intervals
                .as_ref()
                .map(|list| list.iter().map(|i| (i.start, i.end)).collect()),
        })
        .collect();
    encode(&nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Interval;

    /// A msgpack str of up to 31 bytes (fixstr).
    fn fixstr(out: &mut Vec<u8>, s: &str) {
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }

    fn f64(out: &mut Vec<u8>, v: f64) {
        out.push(0xcb);
        out.extend_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn find_nodes_bytes() {
        let got = nodes(&[
            NodeInfo {
                path: "a.b",
                is_leaf: false,
                intervals: None,
            },
            NodeInfo {
                path: "a.c",
                is_leaf: true,
                intervals: Some(vec![Interval {
                    start: 1.5,
                    end: 20.25,
                }]),
            },
        ]);
        let mut want = vec![0x92, 0x82];
        fixstr(&mut want, "path");
        fixstr(&mut want, "a.b");
        fixstr(&mut want, "is_leaf");
        want.push(0xc2);
        want.push(0x83);
        fixstr(&mut want, "path");
        fixstr(&mut want, "a.c");
        fixstr(&mut want, "is_leaf");
        want.push(0xc3);
        fixstr(&mut want, "intervals");
        want.extend_from_slice(&[0x91, 0x92]);
        f64(&mut want, 1.5);
        f64(&mut want, 20.25);
        assert_eq!(got, want);
    }

    #[test]
    fn series_bytes_use_the_smallest_ints() {
        let s = Series::new(
            "a.b",
            1_700_000_000,
            1_700_000_180,
            60,
            vec![Some(1.0), None, Some(-2.5)],
            0.0,
        );
        let got = series(&[s]);
        let mut want = vec![0x91, 0x89];
        fixstr(&mut want, "name");
        fixstr(&mut want, "a.b");
        fixstr(&mut want, "start");
        want.push(0xce);
        want.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        fixstr(&mut want, "end");
        want.push(0xce);
        want.extend_from_slice(&1_700_000_180u32.to_be_bytes());
        fixstr(&mut want, "step");
        want.push(60);
        fixstr(&mut want, "values");
        want.push(0x93);
        f64(&mut want, 1.0);
        want.push(0xc0);
        f64(&mut want, -2.5);
        fixstr(&mut want, "pathExpression");
        fixstr(&mut want, "a.b");
        fixstr(&mut want, "valuesPerPoint");
        want.push(1);
        fixstr(&mut want, "consolidationFunc");
        fixstr(&mut want, "average");
        fixstr(&mut want, "xFilesFactor");
        f64(&mut want, 0.0);
        assert_eq!(got, want);
        assert_eq!(series(&[]), vec![0x90]);
    }

    #[test]
    fn negative_and_wide_values() {
        let mut s = Series::new("x", -300, 200, 250, vec![None, None], 0.0);
        s.step = 70_000;
        let got = series(&[s]);
        // start -300 is int 16 (0xd1), step 70000 uint 32 (0xce).
        assert!(
            got.windows(3).any(|w| w == [0xd1, 0xfe, 0xd4]),
            "{got:02x?}"
        );
        assert!(got.windows(5).any(|w| w == [0xce, 0x00, 0x01, 0x11, 0x70]));
    }
}
