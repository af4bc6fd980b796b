//! The core of a resize with aggregation (whisper-resize.py's `--aggregate`): read every
//! archive of the old file, then give each archive of the new file, per step, the aggregate
//! of the old points in that step. Shared by `carbonhound whisper resize --aggregate` and the
//! server's online retention migration (`store::migrate`).
//!
//! Only the arithmetic and the archive writes live here; creating, naming and swapping files
//! is the caller's business.

use super::{AggregationMethod, FetchResult, Point, WhisperError, WhisperFile};

/// whisper-resize.py's "Retrieving all data from the archives": each archive of `file` read
/// over its whole retention ending at `now` (epoch seconds), lowest precision first (the
/// order the script sorts them in). `None` where whisper's fetch answers nothing.
pub fn read_archives(
    file: &WhisperFile,
    now: i64,
) -> Result<Vec<Option<FetchResult>>, WhisperError> {
    let mut archives = file.header().archives.clone();
    archives.sort_by_key(|a| std::cmp::Reverse(a.seconds_per_point));
    archives
        .iter()
        .map(|a| {
            let from = now - a.retention() + a.seconds_per_point as i64;
            file.fetch(from, Some(now), now, None)
        })
        .collect()
}

/// Every old point, oldest first, as `(timestamp, value or None)`: where archives overlap the
/// finest one's points are kept (as whisper-resize.py merges them). `data` is
/// [`read_archives`]' answer.
fn merged(data: &[Option<FetchResult>]) -> Vec<(i64, Option<f64>)> {
    let mut merged: Vec<(i64, Option<f64>)> = Vec::new();
    for fetched in data.iter().rev().flatten() {
        let first_kept = merged.first().map_or(i64::MAX, |p| p.0);
        let older: Vec<(i64, Option<f64>)> = fetched
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (fetched.from + i as i64 * fetched.step, *v))
            .filter(|(t, _)| *t < first_kept)
            .collect();
        merged.splice(0..0, older);
    }
    merged
}

/// The points of one new archive of `step` seconds and `points` slots, from the `merged` old
/// points: one per step interval (aligned to the step, as whisper stores them) among the
/// newest `points` ending at `now`'s interval, the `method`'s aggregate of the old values in
/// it, written only when the known fraction of those values reaches `x_files_factor` (as
/// whisper-resize.py and whisper's propagation decide). A new archive as fine as the old or
/// finer gets each old point unchanged.
fn aggregated(
    merged: &[(i64, Option<f64>)],
    step: i64,
    points: u32,
    x_files_factor: f64,
    method: AggregationMethod,
    now: i64,
) -> Vec<Point> {
    let last = now - now.rem_euclid(step);
    let first = last - (points as i64 - 1) * step;
    let start = merged.partition_point(|p| p.0 < first);
    let end = merged.partition_point(|p| p.0 < last + step);
    let mut out = Vec::new();
    let mut values: Vec<Option<f64>> = Vec::new();
    let mut i = start;
    while i < end {
        let interval = merged[i].0 - merged[i].0.rem_euclid(step);
        values.clear();
        while i < end && merged[i].0 - merged[i].0.rem_euclid(step) == interval {
            values.push(merged[i].1);
            i += 1;
        }
        let known = values.iter().flatten().count();
        if known > 0 && known as f64 / values.len() as f64 >= x_files_factor {
            out.push((interval, method.aggregate(&values)));
        }
    }
    out
}

/// Fills every archive of `new` (a freshly created file) from `data` ([`read_archives`] of
/// the old file): each archive gets its own aggregated points (see the module doc), written
/// with [`WhisperFile::fill_archive`] so no archive's points spill into another.
/// `x_files_factor` and `method` decide the aggregation (normally the new file's).
///
/// Errors: those of the writes (I/O, a timestamp outside whisper's range).
pub fn aggregate_into(
    data: &[Option<FetchResult>],
    new: &mut WhisperFile,
    x_files_factor: f64,
    method: AggregationMethod,
    now: i64,
) -> Result<(), WhisperError> {
    let merged = merged(data);
    let archives = new.header().archives.clone();
    for (index, a) in archives.iter().enumerate() {
        let points = aggregated(
            &merged,
            a.seconds_per_point as i64,
            a.points,
            x_files_factor,
            method,
            now,
        );
        new.fill_archive(index, &points)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whisper::{create, CreateOptions, Preallocation, Retention};

    fn r(seconds_per_point: u32, points: u32) -> Retention {
        Retention {
            seconds_per_point,
            points,
        }
    }

    #[test]
    fn every_point_is_kept_and_coarser_archives_aggregate() {
        let dir = tempfile::tempdir().unwrap();
        let (old_path, new_path) = (dir.path().join("old.wsp"), dir.path().join("new.wsp"));
        let opts = CreateOptions {
            x_files_factor: 0.5,
            aggregation_method: AggregationMethod::Average,
            preallocation: Preallocation::Sparse,
        };
        create(&old_path, &[r(60, 1440)], opts).unwrap();
        let now = 1_800_000_000i64;
        let aligned = now - now % 600;
        let mut old = WhisperFile::open_rw(&old_path).unwrap();
        let points: Vec<Point> = (1..=120).map(|i| (aligned - 60 * i, i as f64)).collect();
        old.update_many(&points, now).unwrap();

        create(&new_path, &[r(60, 10080), r(600, 4320)], opts).unwrap();
        let mut new = WhisperFile::open_rw(&new_path).unwrap();
        let data = read_archives(&old, now).unwrap();
        aggregate_into(&data, &mut new, 0.5, AggregationMethod::Average, now).unwrap();

        let fine = new
            .fetch(aligned - 7300, Some(now), now, None)
            .unwrap()
            .unwrap();
        assert_eq!(fine.step, 60);
        for &(t, v) in &points {
            let i = ((t - fine.from) / 60) as usize;
            assert_eq!(fine.values[i], Some(v), "point at {t}");
        }
        let coarse = new
            .fetch(aligned - 7300, Some(now), now, Some(600))
            .unwrap()
            .unwrap();
        // The ten minutes before `aligned - 600` hold the points 11..=20 (average 15.5).
        let i = ((aligned - 1200 - coarse.from) / 600) as usize;
        assert_eq!(coarse.values[i], Some(15.5));
    }

    #[test]
    fn the_xfilesfactor_decides_sparse_intervals() {
        let merged: Vec<(i64, Option<f64>)> = (0..10)
            .map(|i| (6000 + i * 60, (i < 4).then_some(1.0)))
            .collect();
        let sum = AggregationMethod::Sum;
        assert_eq!(aggregated(&merged, 600, 10, 0.5, sum, 7000), vec![]);
        assert_eq!(
            aggregated(&merged, 600, 10, 0.4, sum, 7000),
            vec![(6000, 4.0)]
        );
    }
}
