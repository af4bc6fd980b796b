//! How the answers of several servers become one: found nodes by path, series by name, as
//! graphite-web 1.1.8 merges what its finders return (`Store._list_nodes` for finds,
//! `render.datalib._merge_results` with `REMOTE_STORE_MERGE_RESULTS = True` for fetches).
//!
//! Pure functions over answers already in memory: nothing here asks a server.

use crate::store::{FetchedSeries, FoundNode, Interval};

/// The union of several finds of one pattern, each node once, sorted by path with a branch
/// before the leaf of the same path (the order [`crate::store::Store::find`] answers in), at
/// most `limit` nodes.
///
/// As graphite-web's `_list_nodes`: nodes are grouped by path; a path is a leaf when any
/// server says so, and a branch (listed once) when any server says so — a path that is a
/// metric on one server and a folder on another is both, as it would be on one server
/// holding both.
pub fn merge_nodes(answers: Vec<Vec<FoundNode>>, limit: usize) -> Vec<FoundNode> {
    let mut all: Vec<FoundNode> = answers.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all.truncate(limit);
    all
}

/// The union of intervals, sorted by start, overlapping (or touching) ones joined: the
/// intervals of a leaf several servers hold, as graphite-web's `IntervalSet` of the merged
/// node (`union_overlapping` over the sorted list).
pub fn union_intervals(mut all: Vec<Interval>) -> Vec<Interval> {
    all.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.end.total_cmp(&b.end)));
    let mut out: Vec<Interval> = Vec::with_capacity(all.len());
    for i in all {
        match out.last_mut() {
            Some(last) if last.end >= i.start => last.end = last.end.max(i.end),
            _ => out.push(i),
        }
    }
    out
}

/// Merges `candidate`, another server's copy of the series `known` (same name, same
/// request), into `known`, as graphite-web's `_merge_results` does with
/// `REMOTE_STORE_MERGE_RESULTS = True`: when `known` has gaps (`None`s) and the candidate
/// has as many values, each gap is filled from the candidate's value at the same index, if
/// it has one. Copies are merged in the order the answers are taken (this server's own
/// first, then `[cluster].servers` in order), so the first known value of a slot wins.
///
/// Where the two copies are laid out differently (another length, start or step, as when
/// the servers keep different retentions), graphite-web replaces the known copy by
/// whichever answered next, without counting its gaps, so its answer depends on which
/// server was quicker; here the copy with fewer gaps is kept (the first on a tie), which is
/// graphite-web's choice with `REMOTE_STORE_MERGE_RESULTS = False` and the same whatever the
/// timing.
pub fn merge_series(known: &mut FetchedSeries, candidate: FetchedSeries) {
    let gaps = |s: &FetchedSeries| s.values.iter().filter(|v| v.is_none()).count();
    let known_gaps = gaps(known);
    if known_gaps == 0 || candidate.values.is_empty() {
        return;
    }
    let same_layout = candidate.values.len() == known.values.len()
        && candidate.start == known.start
        && candidate.step == known.step;
    if same_layout {
        for (k, c) in known.values.iter_mut().zip(candidate.values) {
            if k.is_none() {
                *k = c;
            }
        }
    } else if gaps(&candidate) < known_gaps {
        *known = candidate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_joined_where_they_overlap() {
        let i = |start, end| Interval { start, end };
        let got = union_intervals(vec![i(5.0, 9.0), i(0.0, 2.0), i(1.0, 3.0), i(9.0, 9.5)]);
        assert_eq!(got, vec![i(0.0, 3.0), i(5.0, 9.5)]);
        assert!(union_intervals(Vec::new()).is_empty());
    }
    use crate::whisper::AggregationMethod;

    fn series(start: i64, step: i64, values: &[Option<f64>]) -> FetchedSeries {
        FetchedSeries {
            name: "a.b".into(),
            start,
            end: start + step * values.len() as i64,
            step,
            values: values.to_vec(),
            aggregation_method: AggregationMethod::Average,
            x_files_factor: 0.5,
        }
    }

    fn node(path: &str, is_leaf: bool) -> FoundNode {
        FoundNode {
            path: path.into(),
            is_leaf,
        }
    }

    #[test]
    fn nodes_are_one_per_path_and_kind_in_store_order() {
        let merged = merge_nodes(
            vec![
                vec![node("a.c", true), node("a.b", true)],
                vec![node("a.b", false), node("a.c", true)],
                vec![node("a.a", true)],
            ],
            10,
        );
        assert_eq!(
            merged,
            vec![
                node("a.a", true),
                node("a.b", false),
                node("a.b", true),
                node("a.c", true)
            ]
        );
        assert_eq!(merge_nodes(vec![merged], 2).len(), 2);
    }

    #[test]
    fn gaps_fill_from_a_copy_of_the_same_layout() {
        let mut known = series(60, 60, &[Some(1.0), None, None, Some(4.0)]);
        merge_series(
            &mut known,
            series(60, 60, &[Some(9.0), Some(2.0), None, None]),
        );
        assert_eq!(known.values, vec![Some(1.0), Some(2.0), None, Some(4.0)]);
        merge_series(
            &mut known,
            series(60, 60, &[None, None, Some(3.0), Some(8.0)]),
        );
        assert_eq!(
            known.values,
            vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]
        );
        // Complete: nothing changes any more.
        merge_series(&mut known, series(60, 60, &[Some(7.0); 4]));
        assert_eq!(known.values[0], Some(1.0));
    }

    #[test]
    fn another_layout_is_kept_only_with_fewer_gaps() {
        let mut known = series(60, 60, &[Some(1.0), None, None, None]);
        merge_series(&mut known, series(0, 300, &[None, None, None]));
        assert_eq!(known.step, 60, "as many gaps or more: the first copy stays");
        merge_series(&mut known, series(0, 300, &[Some(5.0)]));
        assert_eq!((known.step, known.values.clone()), (300, vec![Some(5.0)]));
        let mut known = series(60, 60, &[None, None]);
        merge_series(&mut known, series(60, 60, &[]));
        assert_eq!(known.values.len(), 2, "an empty copy is ignored");
    }
}
