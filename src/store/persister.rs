//! Persister threads: drain the cache into whisper files, most-backed-up metrics first, one
//! `update_many` per metric per pass (as many points per write as have queued), creating each
//! new file from the storage rules.
//!
//! A slow disk therefore means bigger batches, not lost points. A writer also starts its next
//! pass no sooner than `cache.write_interval` after the start of its previous one, so a busy
//! metric's points collect into one larger write (the per-write cost — open, header, base
//! reads, propagation, close — is paid once per batch instead of once per few points); the
//! points stay queryable from the cache meanwhile. carbon reaches the same end with
//! `MAX_UPDATES_PER_SECOND`; an interval bounds how long a point waits instead.
//!
//! Plain threads with blocking file I/O; they never touch the network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::cache::Taken;
use super::{stat_add, unix_now, Store};
use crate::ratelimit::RateLimitedLog;
use crate::whisper::{create, CreateOptions, WhisperError, WhisperFile};

/// How long an idle persister sleeps before looking at the cache again.
const IDLE_SLEEP: Duration = Duration::from_millis(20);
/// How often idle cache entries are dropped.
const EVICT_EVERY: Duration = Duration::from_secs(300);

/// A token bucket limiting file creations per second (0 = unlimited).
#[derive(Debug)]
pub struct CreateLimiter {
    per_second: u32,
    state: Mutex<(f64, Instant)>,
}

impl CreateLimiter {
    /// A limiter allowing `per_second` creations per second with a burst of the same size.
    pub fn new(per_second: u32) -> Self {
        CreateLimiter {
            per_second,
            state: Mutex::new((per_second as f64, Instant::now())),
        }
    }

    /// Takes one token; `false` when the rate is exhausted for now.
    pub fn try_acquire(&self) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let mut st = self.state.lock();
        let now = Instant::now();
        let refill = now.duration_since(st.1).as_secs_f64() * self.per_second as f64;
        st.0 = (st.0 + refill).min(self.per_second as f64);
        st.1 = now;
        if st.0 >= 1.0 {
            st.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How long a pacing writer sleeps at a time (so it notices a stop request quickly).
const PACE_SLICE: Duration = Duration::from_millis(20);

/// The running persister threads.
pub struct Persisters {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Persisters {
    /// Starts `writers` threads over `store`; each starts a pass over its part of the cache
    /// at most every `write_interval` (zero: continuously).
    pub fn start(store: Arc<Store>, writers: usize, write_interval: Duration) -> Persisters {
        let stop = Arc::new(AtomicBool::new(false));
        let limiter = Arc::new(CreateLimiter::new(store.max_creates_per_second));
        let log = Arc::new(RateLimitedLog::new(Duration::from_secs(10), 5));
        let handles = (0..writers)
            .map(|id| {
                let store = store.clone();
                let stop = stop.clone();
                let limiter = limiter.clone();
                let log = log.clone();
                std::thread::Builder::new()
                    .name(format!("persister-{id}"))
                    .spawn(move || run(&store, id, writers, write_interval, &stop, &limiter, &log))
                    .expect("spawn persister thread")
            })
            .collect();
        Persisters { stop, handles }
    }

    /// Flushes: waits until every cached point is on disk (or dropped with a counted error),
    /// then stops the threads. Listeners must be stopped first. Throttled creations are
    /// forced through, so nothing stays behind.
    pub fn flush_and_stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

fn run(
    store: &Store,
    id: usize,
    writers: usize,
    write_interval: Duration,
    stop: &AtomicBool,
    limiter: &CreateLimiter,
    log: &RateLimitedLog,
) {
    let mut last_evict = Instant::now();
    let mut scratch: Vec<(i64, f64)> = Vec::new();
    // Start of the last pass that wrote something.
    let mut last_pass: Option<Instant> = None;
    // Metrics whose file creation was throttled (no file yet).
    let mut waiting_for_file: std::collections::HashSet<Arc<str>> =
        std::collections::HashSet::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if !stopping {
            let wait = last_pass.map_or(Duration::ZERO, |t| {
                write_interval.saturating_sub(t.elapsed())
            });
            if !wait.is_zero() {
                std::thread::sleep(wait.min(PACE_SLICE));
                continue;
            }
        }
        let mut backlog = store.cache.backlog(|shard| shard % writers == id);
        if backlog.is_empty() {
            if stopping {
                // Other writers' in-flight points are theirs to finish.
                return;
            }
            if id == 0 && last_evict.elapsed() > EVICT_EVERY {
                store.cache.evict_idle();
                last_evict = Instant::now();
            }
            std::thread::sleep(IDLE_SLEEP);
            continue;
        }
        backlog.sort_unstable_by_key(|b| std::cmp::Reverse(b.len));
        last_pass = Some(Instant::now());
        let mut throttled = 0usize;
        // Once the create limiter has said no in this pass, metrics already known to wait
        // for their file are skipped without being taken (no lock, open or requeue).
        let mut out_of_tokens = false;
        for item in &backlog {
            if out_of_tokens && !stopping && waiting_for_file.contains(&item.name) {
                throttled += 1;
                continue;
            }
            let Some(taken) = store.cache.take(item) else {
                continue;
            };
            match write(store, &taken, &mut scratch, limiter, stopping, log) {
                Outcome::Done => {
                    if !waiting_for_file.is_empty() {
                        waiting_for_file.remove(&taken.name);
                    }
                    store.cache.finish(taken)
                }
                Outcome::Throttled => {
                    throttled += 1;
                    out_of_tokens = true;
                    waiting_for_file.insert(taken.name.clone());
                    store.cache.requeue(taken);
                }
            }
        }
        if throttled == backlog.len() {
            // Everything left waits for creation tokens: don't spin.
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}

enum Outcome {
    Done,
    Throttled,
}

fn write(
    store: &Store,
    taken: &Taken,
    scratch: &mut Vec<(i64, f64)>,
    limiter: &CreateLimiter,
    force: bool,
    log: &RateLimitedLog,
) -> Outcome {
    // Sort by time (stable) and keep the last arrival of each timestamp, as carbon's cache.
    scratch.clear();
    scratch.extend_from_slice(&taken.points);
    scratch.sort_by_key(|p| p.0);
    let mut w = 0;
    for r in 0..scratch.len() {
        if w > 0 && scratch[w - 1].0 == scratch[r].0 {
            scratch[w - 1] = scratch[r];
        } else {
            scratch[w] = scratch[r];
            w += 1;
        }
    }
    scratch.truncate(w);

    let name = &*taken.name;
    let Some(path) = store.path_of(name) else {
        stat_add(&store.stats.errors, 1);
        stat_add(&store.stats.dropped_points, taken.points.len() as u64);
        log.warn(format_args!(
            "metric {name:?} cannot be stored safely; {} points dropped",
            taken.points.len()
        ));
        return Outcome::Done;
    };
    let now = unix_now();
    let file = match WhisperFile::open_rw(&path) {
        Ok(f) => Ok(f),
        Err(WhisperError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            if !force && !limiter.try_acquire() {
                return Outcome::Throttled;
            }
            let plan = store.rules().plan(name);
            let opts = CreateOptions {
                x_files_factor: plan.x_files_factor,
                aggregation_method: plan.aggregation_method,
                preallocation: store.preallocation,
            };
            let created = match create(&path, &plan.retentions, opts) {
                Err(WhisperError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    // The directory is missing: make it, then try once more.
                    match path.parent().map(std::fs::create_dir_all) {
                        Some(Err(e)) => Err(WhisperError::Io {
                            path: path.clone(),
                            source: e,
                        }),
                        _ => create(&path, &plan.retentions, opts),
                    }
                }
                other => other,
            };
            match created {
                Ok(()) => {
                    stat_add(&store.stats.creates, 1);
                    WhisperFile::open_rw(&path)
                }
                // Another writer (or tool) created it in between: use it.
                Err(WhisperError::InvalidConfiguration(_)) if path.exists() => {
                    WhisperFile::open_rw(&path)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let started = Instant::now();
    let result = file.and_then(|mut f| {
        let max_retention = f.header().max_retention as i64;
        let kept = scratch
            .iter()
            .filter(|p| now - p.0 <= max_retention)
            .count();
        f.update_many(scratch, now)
            .map(|()| (kept, scratch.len() - kept))
    });
    stat_add(
        &store.stats.update_nanos,
        started.elapsed().as_nanos() as u64,
    );
    match result {
        Ok((kept, dropped)) => {
            stat_add(&store.stats.committed_points, kept as u64);
            stat_add(&store.stats.update_operations, 1);
            if dropped > 0 {
                stat_add(&store.stats.dropped_out_of_retention, dropped as u64);
            }
        }
        Err(e) => {
            stat_add(&store.stats.errors, 1);
            stat_add(&store.stats.dropped_points, taken.points.len() as u64);
            log.warn(format_args!(
                "{} points of {name} dropped: {e}",
                taken.points.len()
            ));
        }
    }
    Outcome::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_schemas, StorageRules};
    use crate::whisper::Preallocation;

    #[test]
    fn persists_cached_points_and_flushes_on_stop() {
        let dir = tempfile::tempdir().unwrap();
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 1s:1h,60s:1d\n", "t").unwrap(),
            vec![],
        );
        let store =
            Arc::new(Store::open(dir.path(), rules, 100_000, Preallocation::Fallocate, 0).unwrap());
        let now = unix_now();
        for i in 0..100 {
            store.insert("x.y.z", now - 100 + i, i as f64);
            store.insert("x.w", now - 100 + i, -(i as f64));
        }
        let p = Persisters::start(store.clone(), 2, Duration::from_secs(1));
        p.flush_and_stop();
        assert_eq!(store.cache.size(), 0);
        let f = WhisperFile::open(&dir.path().join("x/y/z.wsp")).unwrap();
        let r = f.fetch(now - 101, Some(now), now, None).unwrap().unwrap();
        let known: Vec<f64> = r.values.iter().flatten().copied().collect();
        assert_eq!(known.len(), 100);
        assert_eq!(known[99], 99.0);
        assert_eq!(store.stats.creates.load(Ordering::Relaxed), 2);
        assert_eq!(store.stats.committed_points.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn a_corrupt_file_is_one_counted_error_and_other_metrics_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 1s:1h\n", "t").unwrap(),
            vec![],
        );
        let store =
            Arc::new(Store::open(dir.path(), rules, 100_000, Preallocation::Sparse, 0).unwrap());
        std::fs::create_dir_all(dir.path().join("bad")).unwrap();
        std::fs::write(dir.path().join("bad/file.wsp"), b"not a whisper file").unwrap();
        let now = unix_now();
        for i in 0..10 {
            store.insert("bad.file", now - 20 + i, 1.0);
            store.insert("good.file", now - 20 + i, 2.0);
        }
        Persisters::start(store.clone(), 1, Duration::ZERO).flush_and_stop();
        assert_eq!(store.stats.errors.load(Ordering::Relaxed), 1);
        assert_eq!(store.stats.dropped_points.load(Ordering::Relaxed), 10);
        assert_eq!(store.stats.committed_points.load(Ordering::Relaxed), 10);
        assert_eq!(store.cache.size(), 0);
        assert_eq!(
            std::fs::read(dir.path().join("bad/file.wsp")).unwrap(),
            b"not a whisper file"
        );
    }

    #[test]
    fn limiter_counts_tokens() {
        let l = CreateLimiter::new(2);
        assert!(l.try_acquire());
        assert!(l.try_acquire());
        assert!(!l.try_acquire());
        assert!(CreateLimiter::new(0).try_acquire());
    }
}
