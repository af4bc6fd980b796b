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
//! A full disk (`ENOSPC`, or a quota's `EDQUOT`) loses nothing: a write refused for space puts
//! its points back in the cache, the writer pauses [`DISK_FULL_RETRY`] between passes, and
//! everything is written when space returns. Meanwhile the cache fills and, at
//! `cache.max_size`, the listeners stop reading (TCP backpressure); an ERROR is logged once a
//! minute with the counts, and `/health` and the `diskFull` self metric say so. A file is never
//! left half-made (a failed create removes it); a refused `update_many` is simply applied again.
//! At shutdown a full disk is retried for [`SHUTDOWN_DISK_FULL_GRACE`], then the points still
//! unwritten are counted as dropped and logged.
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
use crate::whisper::{create_open, CreateOptions, WhisperError, WhisperFile};

/// The groups a writer's shards are gone over in, one backlog list at a time.
const BACKLOG_GROUPS: usize = 16;
/// How long an idle persister sleeps before looking at the cache again.
const IDLE_SLEEP: Duration = Duration::from_millis(20);
/// How often the first writer deletes the write-ahead-log segments already persisted.
const COLLECT_WAL_EVERY: Duration = Duration::from_secs(1);
/// How often idle cache entries are dropped.
const EVICT_EVERY: Duration = Duration::from_secs(300);
/// How long a writer waits between passes while the disk is full.
pub const DISK_FULL_RETRY: Duration = Duration::from_secs(1);
/// How long a stopping writer keeps retrying a full disk before it gives the points up.
pub const SHUTDOWN_DISK_FULL_GRACE: Duration = Duration::from_secs(30);

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
        let log = Arc::new(Logs {
            errors: RateLimitedLog::new(Duration::from_secs(10), 5),
            disk_full: RateLimitedLog::new(Duration::from_secs(60), 1),
        });
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

/// The persisters' rate-limited logs: write errors (5 per 10 s), and the full-disk ERROR (one a
/// minute, with the counts).
struct Logs {
    errors: RateLimitedLog,
    disk_full: RateLimitedLog,
}

fn run(
    store: &Store,
    id: usize,
    writers: usize,
    write_interval: Duration,
    stop: &AtomicBool,
    limiter: &CreateLimiter,
    logs: &Logs,
) {
    let log = &logs.errors;
    // When this writer, stopping, first met a full disk.
    let mut stopping_full_since: Option<Instant> = None;
    let mut last_evict = Instant::now();
    let mut last_collect = Instant::now();
    let mut scratch: Vec<(i64, f64)> = Vec::new();
    // Start of the last pass that wrote something.
    let mut last_pass: Option<Instant> = None;
    // Metrics whose file creation was throttled (no file yet).
    let mut waiting_for_file: std::collections::HashSet<super::cache::Name> =
        std::collections::HashSet::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if id == 0 && !stopping && last_collect.elapsed() >= COLLECT_WAL_EVERY {
            store.collect_wal();
            last_collect = Instant::now();
        }
        if !stopping {
            let wait = last_pass.map_or(Duration::ZERO, |t| {
                write_interval.saturating_sub(t.elapsed())
            });
            if !wait.is_zero() {
                std::thread::sleep(wait.min(PACE_SLICE));
                continue;
            }
        }
        // A pass goes over this writer's shards a group at a time, so the list of metrics to
        // write holds a group's (a million metrics: 1 MB, not 32 MB); within a group the
        // fullest queues go first.
        let mut found = 0usize;
        let mut throttled = 0usize;
        // Once the create limiter has said no in this pass, metrics already known to wait
        // for their file are skipped without being taken (no lock, open or requeue).
        let mut out_of_tokens = false;
        let mut out_of_space = 0usize;
        for group in 0..BACKLOG_GROUPS {
            let mut backlog = store.cache.backlog(|shard| {
                shard % writers == id && (shard / writers) % BACKLOG_GROUPS == group
            });
            if backlog.is_empty() {
                continue;
            }
            if found == 0 {
                last_pass = Some(Instant::now());
            }
            found += backlog.len();
            backlog.sort_unstable_by_key(|b| std::cmp::Reverse(b.len));
            for item in &backlog {
                if out_of_tokens && !stopping && waiting_for_file.contains(&item.name) {
                    throttled += 1;
                    continue;
                }
                // A delete or rename waits for this write, and none starts during it.
                let _shared = store.lifecycle.read();
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
                    Outcome::OutOfSpace => {
                        out_of_space += 1;
                        store.cache.requeue(taken);
                    }
                }
            }
            if out_of_space > 0 {
                // The other groups would fail the same way: retry the pass later.
                break;
            }
        }
        if found == 0 {
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
        if out_of_space > 0 {
            store.stats.disk_full.store(true, Ordering::Relaxed);
            logs.disk_full.error(format_args!(
                "disk full under {}: {} points of {} metrics wait in the cache and are retried \
                 every {:?}; nothing is dropped, but at cache.max_size ({}) the listeners stop \
                 reading. Free space on that file system.",
                store.whisper_dir().display(),
                store.cache.size(),
                store.cache.queues(),
                DISK_FULL_RETRY,
                store.cache.max_size(),
            ));
            if stopping {
                let since = *stopping_full_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SHUTDOWN_DISK_FULL_GRACE {
                    give_up_at_shutdown(store, id, writers);
                    return;
                }
            }
            std::thread::sleep(DISK_FULL_RETRY);
            continue;
        }
        if store.stats.disk_full.swap(false, Ordering::Relaxed) {
            tracing::info!("disk space is back: the cached points are being written");
        }
        if throttled == found {
            // Everything left waits for creation tokens: don't spin.
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}

enum Outcome {
    Done,
    Throttled,
    /// The file system had no room: the points go back to the cache.
    OutOfSpace,
}

/// Shutdown with a full disk past the grace time: this writer's remaining points are counted as
/// dropped and logged, so the process can exit.
fn give_up_at_shutdown(store: &Store, id: usize, writers: usize) {
    let mut lost = 0u64;
    for item in store.cache.backlog(|shard| shard % writers == id) {
        if let Some(taken) = store.cache.take(&item) {
            lost += taken.points.len() as u64;
            store.cache.finish(taken);
        }
    }
    stat_add(&store.stats.dropped_points, lost);
    tracing::error!(
        "shutting down with a full disk: {lost} cached points could not be written within \
         {SHUTDOWN_DISK_FULL_GRACE:?} and are lost"
    );
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
            let created = match create_open(&path, &plan.retentions, opts) {
                Err(WhisperError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    // The directory is missing: make it, then try once more.
                    match path.parent().map(std::fs::create_dir_all) {
                        Some(Err(e)) => Err(WhisperError::Io {
                            path: path.clone(),
                            source: e,
                        }),
                        _ => create_open(&path, &plan.retentions, opts),
                    }
                }
                other => other,
            };
            match created {
                Err(e) if e.is_out_of_space() => {
                    stat_add(&store.stats.disk_full_refusals, 1);
                    return Outcome::OutOfSpace;
                }
                Ok(file) => {
                    stat_add(&store.stats.creates, 1);
                    Ok(file)
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
        Err(e) if e.is_out_of_space() => {
            stat_add(&store.stats.disk_full_refusals, 1);
            return Outcome::OutOfSpace;
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
