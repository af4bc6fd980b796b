//! The time span a leaf holds data for, as graphite-web's readers report it through
//! `get_intervals()`: what the cluster protocol's `/metrics/find` answers carry, so that a
//! graphite-web front can choose among nodes holding the same metric (`_merge_leaf_nodes`).
//!
//! Only reads headers and file times; never reads points.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::whisper::{Header, WhisperError};

use super::Store;

/// A span of time in float epoch seconds, `start <= end`: graphite-web's
/// `graphite.intervals.Interval` (whose `size` is `end - start`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// First second covered (epoch seconds, fractional).
    pub start: f64,
    /// Last second covered (epoch seconds, fractional).
    pub end: f64,
}

impl Interval {
    /// `end - start`, seconds (graphite-web's `Interval.size`).
    pub fn size(&self) -> f64 {
        self.end - self.start
    }
}

/// Seconds since the epoch with the fraction, as Python's `time.time()`.
fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Store {
    /// The intervals of the leaf `name`, as graphite-web 1.1.8's
    /// `WhisperReader.get_intervals`: one `[now - maxRetention, max(mtime, start)]`, `now`
    /// being the wall clock and `mtime` the file's modification time, both fractional.
    ///
    /// A metric whose points are all still in the cache (no file yet) spans the retention its
    /// storage rules would give the file, up to now (graphite-web, reading files only, would
    /// not list it at all). A file that cannot be read has no interval (an empty list, which
    /// a front merging nodes counts as no coverage; graphite-web fails the whole find there),
    /// and is counted as a corrupt read.
    pub fn intervals(&self, name: &str) -> Vec<Interval> {
        let now = now_f64();
        match self.readers.get(name, || self.path_of(name)) {
            Ok(file) => {
                let start = now - f64::from(file.header().max_retention);
                let mtime = std::fs::metadata(file.path())
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(start, |d| d.as_secs_f64());
                vec![Interval {
                    start,
                    end: mtime.max(start),
                }]
            }
            Err(WhisperError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                if !self.cache.contains(name) {
                    return Vec::new();
                }
                let plan = self.rules().plan(name);
                let header = Header::for_archives(
                    &plan.retentions,
                    plan.x_files_factor,
                    plan.aggregation_method,
                );
                vec![Interval {
                    start: now - f64::from(header.max_retention),
                    end: now,
                }]
            }
            Err(e) => {
                if !e.is_out_of_descriptors() {
                    self.stats.corrupt(name, &e.to_string());
                }
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::store;

    #[test]
    fn a_file_spans_its_retention_up_to_its_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.insert("a.b", crate::store::unix_now() - 20, 1.0);
        // Only cached: the retention the rules give, up to now.
        let cached = s.intervals("a.b");
        assert_eq!(cached.len(), 1);
        assert!((cached[0].size() - 86400.0).abs() < 1e-6, "{cached:?}");
        let now = now_f64();
        assert!(cached[0].end <= now && cached[0].end > now - 5.0);
        crate::store::Persisters::start(std::sync::Arc::new(s), 1, std::time::Duration::ZERO)
            .flush_and_stop();
        let s = store(dir.path());
        let file = s.intervals("a.b");
        let mtime = std::fs::metadata(s.path_of("a.b").unwrap())
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert_eq!(file.len(), 1);
        assert_eq!(file[0].end, mtime);
        assert!(
            (now_f64() - 86400.0 - file[0].start).abs() < 5.0,
            "{file:?}"
        );
    }

    #[test]
    fn unknown_and_unreadable_metrics_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(s.intervals("no.such").is_empty());
        let path = s.path_of("bad.file").unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"not whisper").unwrap();
        assert!(s.intervals("bad.file").is_empty());
        assert_eq!(
            s.stats
                .corrupt_reads
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}
