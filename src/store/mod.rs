//! Storage: the write-back cache in front of one whisper file per metric, the persister
//! threads that drain it, the metric and tag indexes, and `fetch`, which answers from cache
//! and file together so a point is readable the moment a listener accepts it.
//!
//! The store never parses a protocol and never evaluates a target: listeners hand it points
//! ([`Store::insert_points`]; logged first in the write-ahead log, [`Wal`], when it is on),
//! the query side asks it for series ([`Store::fetch`]), names ([`Store::find`]) and the
//! time spans of leaves for the cluster protocol ([`Store::intervals`]); `query` wraps it
//! as a `MetricSource` (`query::LocalSource`). The API's admin routes delete, rename and list
//! stale metrics through it ([`Store::delete`], [`Store::rename`], [`Store::stale`]), the
//! files, cache, indexes, open readers and the write-ahead log following at once.

mod cache;
mod glob;
mod index;
mod interval;
mod layout;
mod lifecycle;
mod migrate;
mod persister;
mod readers;
mod tags;
mod wal;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{StorageRules, WalSync};
use crate::whisper::{AggregationMethod, FetchResult, Header, Preallocation, WhisperError};

pub use cache::{Backlog, Cache, Memo, Taken};
pub use glob::{expand_braces, PathGlob};
pub use index::{FoundNode, MetricIndex};
pub use interval::Interval;
pub use lifecycle::{LifecycleError, Renamed};
pub use migrate::{
    aggregation_mismatch_of, mismatch_of, remove_temp_files, retentions_string, walk_whisper_files,
    AggregationMismatch, Mismatch, RetentionScanner, RetentionStatus,
};
pub use persister::Persisters;
pub use tags::{parse_tagged, python_regex, RegexBuilderFn, TagExpr, TagIndex, TagOp};
pub use wal::{Points, ReplayReport, Tombstone, Wal, WalInfo, NO_SEGMENT};

/// Counters of the store, read by the self metrics (`carbon.agents.<host>.*`) and `/health`.
/// Each counts since start.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Points accepted into the cache (`metricsReceived`).
    pub metrics_received: AtomicU64,
    /// Points written to whisper files (`committedPoints`).
    pub committed_points: AtomicU64,
    /// `update_many` calls (`updateOperations`).
    pub update_operations: AtomicU64,
    /// Of those, the ones written through a descriptor a writer kept open from the file's
    /// previous write (no open of the path; `[cache] open_files`).
    pub kept_open_writes: AtomicU64,
    /// Updates put off because pages they needed were not in the page cache: the reads were
    /// started and the update done later in the pass (`prefetchedWrites`).
    pub prefetched_writes: AtomicU64,
    /// Nanoseconds spent in `update_many` calls, all together (for `avgUpdateTime`).
    pub update_nanos: AtomicU64,
    /// Whisper files created (`creates`).
    pub creates: AtomicU64,
    /// Whisper creates or updates that failed (`errors`, counted per operation as carbon
    /// counts it); their points are dropped and counted in `dropped_points`.
    pub errors: AtomicU64,
    /// Points dropped because their file could not be created or written.
    pub dropped_points: AtomicU64,
    /// Points dropped because whisper's retention did not cover them.
    pub dropped_out_of_retention: AtomicU64,
    /// Whether the last write attempt found the file system full (`ENOSPC`/`EDQUOT`): the
    /// points stay in the cache and are retried; `/health` and `diskFull` report it.
    pub disk_full: AtomicBool,
    /// Write attempts (creates or updates) refused for lack of space, their points kept.
    pub disk_full_refusals: AtomicU64,
    /// Opens or creates refused because the process or the system was out of file
    /// descriptors (`EMFILE`/`ENFILE`): their points were kept in the cache and retried, and
    /// every writer closed the files it kept open (`descriptorRefusals`).
    pub descriptor_refusals: AtomicU64,
    /// Reads that failed on a file that is there but unreadable (truncated, garbled header,
    /// I/O error): `corruptReads`.
    pub corrupt_reads: AtomicU64,
    /// The metrics whose file failed to read, with the reason, most recent last; at most
    /// [`CORRUPT_FILES_KEPT`] (the oldest go first), for `/health`.
    pub corrupt_files: parking_lot::Mutex<std::collections::VecDeque<(String, String)>>,
}

/// How many corrupt files [`StoreStats::corrupt_files`] remembers.
pub const CORRUPT_FILES_KEPT: usize = 100;

impl StoreStats {
    /// Notes that `name`'s file failed to read with `reason`.
    fn corrupt(&self, name: &str, reason: &str) {
        self.corrupt_reads.fetch_add(1, Ordering::Relaxed);
        let mut files = self.corrupt_files.lock();
        files.retain(|(n, _)| n != name);
        if files.len() >= CORRUPT_FILES_KEPT {
            files.pop_front();
        }
        files.push_back((name.to_string(), reason.to_string()));
    }
}

/// A series as read from the store: whisper's fetch answer with the cache merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedSeries {
    /// Metric name.
    pub name: String,
    /// Timestamp of the first value (epoch seconds).
    pub start: i64,
    /// One step past the last value (exclusive).
    pub end: i64,
    /// Seconds between values.
    pub step: i64,
    /// Values, `None` where unknown.
    pub values: Vec<Option<f64>>,
    /// The file's aggregation method (how the render API consolidates by default).
    pub aggregation_method: AggregationMethod,
    /// The file's xFilesFactor.
    pub x_files_factor: f32,
}

/// Why a series could not be read.
#[derive(Debug)]
pub enum StoreError {
    /// The whisper file is corrupt or unreadable.
    Whisper(WhisperError),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Whisper(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The store: cache, indexes and the whisper directory. Share it in an `Arc`.
pub struct Store {
    whisper_dir: PathBuf,
    /// The write-back cache.
    pub cache: Cache,
    /// Plain metric names.
    pub index: MetricIndex,
    /// Tagged series.
    pub tags: TagIndex,
    rules: ArcSwap<StorageRules>,
    /// Counters.
    pub stats: StoreStats,
    preallocation: Preallocation,
    max_creates_per_second: u32,
    /// Whisper files kept open for reading.
    readers: readers::Readers,
    /// Whisper files the writers may keep open between writes, all writers together
    /// ([`Store::size_open_files`]).
    open_files_for_writes: std::sync::atomic::AtomicUsize,
    /// The write-ahead log, when `[cache] wal` is on ([`Store::open_wal`]).
    wal: Option<Wal>,
    /// Held shared by every insert batch and every persister write (take → write → finish);
    /// exclusively by a delete or rename, which therefore sees no point in
    /// flight and no write under way, and orders its tombstone in the log against inserts.
    lifecycle: parking_lot::RwLock<()>,
    /// The retention scan's findings and migrations ([`RetentionScanner`]), for `/health`.
    pub retentions: RetentionStatus,
    /// Whether the start scan is still filling [`Store::index`] ([`Store::open_serving`]).
    index_loading: IndexLoading,
}

/// The start scan's state: `loading` until [`Store::load_index`] ends, waited on with the
/// condition variable.
#[derive(Default)]
struct IndexLoading {
    loading: AtomicBool,
    lock: parking_lot::Mutex<()>,
    done: parking_lot::Condvar,
}

/// `[carbon] max_connections`'s default: the connections a store opened without the server's
/// settings leaves descriptors for ([`Store::size_open_files`]).
const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// A store over `whisper_dir` (created if missing), its indexes filled by a scan.
    pub fn open(
        whisper_dir: &Path,
        rules: StorageRules,
        max_cache_points: usize,
        preallocation: Preallocation,
        max_creates_per_second: u32,
    ) -> std::io::Result<Store> {
        let store = Store::open_serving(
            whisper_dir,
            rules,
            max_cache_points,
            preallocation,
            max_creates_per_second,
        )?;
        store.load_index();
        Ok(store)
    }

    /// As [`Store::open`], but only the tag index is filled now: the metric index waits for
    /// [`Store::load_index`] (the server runs it in the background, so it answers within
    /// seconds of a restart over a million files, as the issue asks). Until it ends,
    /// [`Store::find`] reads the directory itself beside the partial index, so answers are
    /// the same; what needs every name ([`Store::rename`], [`Store::stale`], `index.json`)
    /// waits for it ([`Store::wait_for_index`]).
    pub fn open_serving(
        whisper_dir: &Path,
        rules: StorageRules,
        max_cache_points: usize,
        preallocation: Preallocation,
        max_creates_per_second: u32,
    ) -> std::io::Result<Store> {
        std::fs::create_dir_all(whisper_dir)?;
        let store = Store {
            whisper_dir: whisper_dir.to_path_buf(),
            cache: Cache::new(max_cache_points),
            index: MetricIndex::new(),
            tags: TagIndex::new(),
            rules: ArcSwap::from_pointee(rules),
            stats: StoreStats::default(),
            preallocation,
            max_creates_per_second,
            readers: readers::Readers::sized_for_this_process(),
            open_files_for_writes: std::sync::atomic::AtomicUsize::new(0),
            wal: None,
            lifecycle: parking_lot::RwLock::new(()),
            retentions: RetentionStatus::new(),
            index_loading: IndexLoading::default(),
        };
        store.index_loading.loading.store(true, Ordering::SeqCst);
        store.size_open_files(None, DEFAULT_MAX_CONNECTIONS);
        store.tags.scan(whisper_dir);
        Ok(store)
    }

    /// Sets how many whisper files the writers may keep open between writes (read when
    /// [`Persisters::start`] starts them): `configured` (`[cache] open_files`; 0 keeps none),
    /// or with `None` (`"auto"`) [`persister::open_files_budget`] of the open-file limit
    /// after the readers' cache and `max_connections`. A configured number above that budget
    /// is lowered to it (logged), so kept files never starve the listeners of descriptors.
    /// Returns the number set.
    pub fn size_open_files(&self, configured: Option<usize>, max_connections: usize) -> usize {
        let limit = readers::raise_nofile_limit();
        let reserved = (self.readers.capacity() as u64).saturating_add(max_connections as u64);
        let budget = persister::open_files_budget(limit, reserved);
        let n = match configured {
            Some(n) if n > budget => {
                tracing::warn!(
                    "cache.open_files = {n} is more than the open-file limit ({limit}) leaves \
                     beside the readers and {max_connections} connections: {budget} used"
                );
                budget
            }
            Some(n) => n,
            None => budget,
        };
        self.open_files_for_writes.store(n, Ordering::Relaxed);
        n
    }

    /// Whisper files the writers may keep open between writes, all together.
    pub fn open_files_for_writes(&self) -> usize {
        self.open_files_for_writes.load(Ordering::Relaxed)
    }

    /// Fills the metric index from the whisper directory (the start scan of
    /// [`Store::open_serving`]), then wakes whoever waits for it; returns the metrics found.
    /// Names the cache or a delete changed meanwhile stay right: the scan only adds what it
    /// finds on disk, as any rescan does.
    pub fn load_index(&self) -> usize {
        let n = self.index.scan(&self.whisper_dir);
        let _guard = self.index_loading.lock.lock();
        self.index_loading.loading.store(false, Ordering::SeqCst);
        self.index_loading.done.notify_all();
        n
    }

    /// Whether the start scan is still filling the metric index.
    pub fn index_loading(&self) -> bool {
        self.index_loading.loading.load(Ordering::SeqCst)
    }

    /// Blocks until the start scan has filled the metric index, at most `timeout` (`None`:
    /// no limit); returns whether it has.
    pub fn wait_for_index(&self, timeout: Option<std::time::Duration>) -> bool {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut guard = self.index_loading.lock.lock();
        while self.index_loading() {
            match deadline {
                Some(d) => {
                    if self
                        .index_loading
                        .done
                        .wait_until(&mut guard, d)
                        .timed_out()
                    {
                        return !self.index_loading();
                    }
                }
                None => self.index_loading.done.wait(&mut guard),
            }
        }
        true
    }

    /// Opens the write-ahead log in `dir` (under `data_dir`) and replays it into the cache,
    /// before anything else inserts; from now on [`Store::insert_points`] logs every batch
    /// before caching it. The replayed points are counted in the cache size, not in
    /// `metricsReceived`. A tombstone drops (delete) or moves (rename) the points of its
    /// metric replayed before it, so nothing deleted comes back.
    pub fn open_wal(&mut self, dir: &Path, sync: WalSync) -> std::io::Result<ReplayReport> {
        let (wal, report) = Wal::open(
            dir,
            sync,
            |segment, name, ts, v| self.insert_one(name, ts, v, segment),
            |tombstone| self.replay_tombstone(tombstone),
        )?;
        self.cache.add_size(report.points as usize);
        self.wal = Some(wal);
        Ok(report)
    }

    /// Deletes the write-ahead-log segments whose points are all in whisper files (the
    /// persisters call it about once a second).
    pub fn collect_wal(&self) {
        if let Some(wal) = &self.wal {
            wal.collect(|| self.cache.oldest_segment());
        }
    }

    /// At shutdown, after the persisters flushed: removes the write-ahead log when every
    /// logged point reached whisper; keeps it (replayed at the next start) when some did not
    /// (a full disk).
    pub fn close_wal(&self) {
        if let Some(wal) = &self.wal {
            let persisted = self.cache.oldest_segment() == NO_SEGMENT
                && !self.stats.disk_full.load(Ordering::Relaxed);
            wal.finish(persisted);
        }
    }

    /// The write-ahead log's size, `None` when it is off.
    pub fn wal_info(&self) -> Option<WalInfo> {
        self.wal.as_ref().map(Wal::info)
    }

    /// Rescans the whisper directory into the indexes; returns (metrics, tagged series) found.
    pub fn rescan(&self) -> (usize, usize) {
        self.wait_for_index(None);
        // Not under the lifecycle lock: a scan of a million files takes minutes, and a delete
        // waiting for it would hold up every insert behind it (the lock lets a waiting writer
        // go first). A delete or rename racing a scan can leave a name of a file it just
        // removed in the index until the next scan (find lists it; it renders nothing).
        (
            self.index.scan(&self.whisper_dir),
            self.tags.scan(&self.whisper_dir),
        )
    }

    /// The whisper directory.
    pub fn whisper_dir(&self) -> &Path {
        &self.whisper_dir
    }

    /// Replaces the storage rules (a reload); files already created keep their layout.
    pub fn set_rules(&self, rules: StorageRules) {
        self.rules.store(Arc::new(rules));
    }

    /// The storage rules in force.
    pub fn rules(&self) -> Arc<StorageRules> {
        self.rules.load_full()
    }

    /// The absolute file of a metric, `None` for a name that cannot be stored safely.
    pub fn path_of(&self, name: &str) -> Option<PathBuf> {
        layout::relative_path(name).map(|p| self.whisper_dir.join(p))
    }

    /// Accepts one point (a validated, normalized metric name): logged, then cached; a new
    /// name enters the index at once. Does not wait: listeners check [`Cache::is_full`].
    pub fn insert(&self, name: &str, timestamp: i64, value: f64) {
        let mut points = Points::new();
        points.push(name, timestamp, value);
        self.insert_points(&mut points);
    }

    /// The listeners' insert: a read's worth of points goes to the write-ahead log as one
    /// record (one `write`; synced first with `wal_sync = "always"`), then into the cache and
    /// the indexes, counted once in the cache size and `metricsReceived`. Empties `points`.
    pub fn insert_points(&self, points: &mut Points) {
        if points.is_empty() {
            return;
        }
        // A delete or rename logs its tombstone and empties the cache either before this batch
        // or after it, never in between.
        let _shared = self.lifecycle.read();
        // Held until the points are in the cache, so their segment is not deleted meanwhile.
        let ticket = self.wal.as_ref().map(|w| w.append(points));
        let segment = ticket.as_ref().map_or(NO_SEGMENT, |t| t.segment);
        for (name, ts, v) in points.iter() {
            self.insert_one(name, ts, v, segment);
        }
        drop(ticket);
        self.count_received(points.len());
        points.clear();
    }

    fn insert_one(&self, name: &str, timestamp: i64, value: f64, segment: u64) {
        if self.cache.insert_logged(name, timestamp, value, segment) {
            if name.contains(';') {
                self.tags.insert(name);
            } else {
                self.index.insert(name);
            }
        }
    }

    /// As [`Store::insert`] without counting it in `metricsReceived` and without the
    /// write-ahead log (the self metrics: a crash may lose their last interval).
    pub fn insert_uncounted(&self, name: &str, timestamp: i64, value: f64) {
        self.insert_deferred(name, timestamp, value);
        self.cache.add_size(1);
    }

    /// The point is queued and indexed, but counted neither in the cache size nor in
    /// `metricsReceived` (nor logged: not for accepted points, see [`Store::insert_points`]).
    fn insert_deferred(&self, name: &str, timestamp: i64, value: f64) {
        self.insert_one(name, timestamp, value, NO_SEGMENT);
    }

    /// Counts `n` points in the cache size and in `metricsReceived`.
    fn count_received(&self, n: u64) {
        self.cache.add_size(n as usize);
        self.stats.metrics_received.fetch_add(n, Ordering::Relaxed);
    }

    /// Metric names matching a path expression (see [`MetricIndex::find`]); a tagged name
    /// (with `;`) is found when the series is known.
    pub fn find(&self, pattern: &str, leaves_only: bool, limit: usize) -> Vec<FoundNode> {
        if self.index_loading() && !pattern.contains(';') {
            // The start scan has not met every file yet: the directory answers for them, the
            // partial index for names only the cache knows so far.
            let mut out = index::fs_find(&self.whisper_dir, pattern, leaves_only, limit);
            out.extend(self.index.find(pattern, leaves_only, limit));
            out.sort();
            out.dedup();
            out.truncate(limit);
            return out;
        }
        find_in(&self.index, &self.tags, pattern, leaves_only, limit)
    }

    /// Reads one metric over `from..until` (epoch seconds) as graphite-web reads it: whisper's
    /// fetch relative to `now` (which picks the archive), then the cached points merged in as
    /// graphite-web's `merge_with_cache` merges carbon's (the last point of each raw interval,
    /// consolidated with the file's aggregation method when the archive is coarser).
    ///
    /// A metric with cached points but no file yet reads as the file its storage rules would
    /// create. `Ok(None)` when the metric is unknown or the range lies outside its retention;
    /// `Err` when its file is corrupt (that series fails, nothing else).
    pub fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, StoreError> {
        let cached = self.cache.get(name);
        let file = match self.readers.get(name, || self.path_of(name)) {
            Ok(file) => file,
            Err(WhisperError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return fetch_unwritten(name, cached, &self.rules(), from, until, now);
            }
            Err(e) => {
                // Out of descriptors is the process's state, not the file's: not counted as corrupt.
                if !e.is_out_of_descriptors() {
                    self.stats.corrupt(name, &e.to_string());
                }
                return Err(StoreError::Whisper(e));
            }
        };
        match file.fetch(from, Some(until), now, None) {
            Ok(Some(r)) => {
                let h = file.header();
                Ok(Some(with_cache(
                    name,
                    r,
                    cached,
                    h.archives[0].seconds_per_point as i64,
                    h.aggregation_method,
                    h.x_files_factor,
                )))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.readers.evict(name);
                self.stats.corrupt(name, &e.to_string());
                Err(StoreError::Whisper(e))
            }
        }
    }

    /// [`Store::fetch`] of every name, each result handed to `visit` in `names`' order until
    /// it breaks. A batch of [`PARALLEL_FETCH_FROM`] names or more (a `sumSeries` of ten
    /// thousand hosts) is read by every core in rounds of [`FETCH_ROUND`]: the reads are
    /// independent system calls and header parses, so two cores read it in about half the
    /// time; results still come in order, as the sequential read gives them.
    pub fn fetch_each(
        &self,
        names: &[&str],
        from: i64,
        until: i64,
        now: i64,
        visit: &mut FetchVisitor<'_>,
    ) {
        let threads = fetch_threads();
        if threads == 1 || names.len() < PARALLEL_FETCH_FROM {
            for name in names {
                if visit(name, self.fetch(name, from, until, now)).is_break() {
                    return;
                }
            }
            return;
        }
        for round in names.chunks(FETCH_ROUND) {
            let part = round.len().div_ceil(threads);
            let read = |names: &[&str]| -> Vec<_> {
                names
                    .iter()
                    .map(|n| self.fetch(n, from, until, now))
                    .collect()
            };
            let results: Vec<_> = std::thread::scope(|scope| {
                let mut parts = round.chunks(part);
                let mine = parts.next().unwrap_or_default();
                let others: Vec<_> = parts.map(|p| scope.spawn(move || read(p))).collect();
                let mut all = read(mine);
                for handle in others {
                    match handle.join() {
                        Ok(r) => all.extend(r),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                all
            });
            for (name, result) in round.iter().zip(results) {
                if visit(name, result).is_break() {
                    return;
                }
            }
        }
    }
}

/// What [`Store::fetch_each`] hands each result to; it breaks to stop the batch.
pub type FetchVisitor<'a> =
    dyn FnMut(&str, Result<Option<FetchedSeries>, StoreError>) -> ControlFlow<()> + 'a;

/// Batches at least this long are read by several threads ([`Store::fetch_each`]).
const PARALLEL_FETCH_FROM: usize = 256;
/// Names read per round of [`Store::fetch_each`]: the results of one round wait for
/// `visit` together, so a visitor that stops early (a limit) leaves at most this many read.
const FETCH_ROUND: usize = 1024;

/// Threads [`Store::fetch_each`] reads with: the cores, at most 4.
fn fetch_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
    })
}

/// [`Store::find`] over any pair of indexes (the in-memory test source has its own).
pub fn find_in(
    index: &MetricIndex,
    tags: &TagIndex,
    pattern: &str,
    leaves_only: bool,
    limit: usize,
) -> Vec<FoundNode> {
    if pattern.contains(';') {
        return if tags.contains(pattern) {
            vec![FoundNode {
                path: pattern.to_string(),
                is_leaf: true,
            }]
        } else {
            Vec::new()
        };
    }
    index.find(pattern, leaves_only, limit)
}

/// Reads a metric that has no file yet as the file `rules` would create for it (layout,
/// method, xFilesFactor), holding only its `cached` points (arrival order); `Ok(None)` when
/// there are none or the range lies outside that retention. What [`Store::fetch`] answers
/// before the persister first writes a new metric; also the in-memory test source's fetch.
pub fn fetch_unwritten(
    name: &str,
    cached: Vec<(i64, f64)>,
    rules: &StorageRules,
    from: i64,
    until: i64,
    now: i64,
) -> Result<Option<FetchedSeries>, StoreError> {
    if cached.is_empty() {
        return Ok(None);
    }
    let plan = rules.plan(name);
    let header = Header::for_archives(
        &plan.retentions,
        plan.x_files_factor,
        plan.aggregation_method,
    );
    match header.fetch_window(from, Some(until), now, None) {
        Ok(Some((archive, f, u))) => Ok(Some(with_cache(
            name,
            FetchResult::empty(&archive, f, u),
            cached,
            header.archives[0].seconds_per_point as i64,
            header.aggregation_method,
            header.x_files_factor,
        ))),
        Ok(None) => Ok(None),
        Err(e) => Err(StoreError::Whisper(e)),
    }
}

/// Whisper's answer with the cached points merged in, as a [`FetchedSeries`].
fn with_cache(
    name: &str,
    mut result: FetchResult,
    cached: Vec<(i64, f64)>,
    raw_step: i64,
    method: AggregationMethod,
    x_files_factor: f32,
) -> FetchedSeries {
    if !cached.is_empty() {
        merge_with_cache(&mut result, cached, raw_step, method);
    }
    FetchedSeries {
        name: name.to_string(),
        start: result.from,
        end: result.until,
        step: result.step,
        values: result.values,
        aggregation_method: method,
        x_files_factor,
    }
}

/// graphite-web's `merge_with_cache`: cached points (arrival order) overwrite fetched values.
/// First each raw interval keeps its newest point (as whisper would store it); when the
/// fetched step is coarser than the raw step, the intervals of each step are aggregated with
/// the file's method; points before the range or past its end are ignored.
pub fn merge_with_cache(
    result: &mut FetchResult,
    mut cached: Vec<(i64, f64)>,
    raw_step: i64,
    method: AggregationMethod,
) {
    // Sort by time (stable: of equal timestamps the later arrival wins, as carbon's cache dict).
    cached.sort_by_key(|p| p.0);
    let mut per_raw: Vec<(i64, f64)> = Vec::with_capacity(cached.len());
    for (ts, v) in cached {
        let interval = if raw_step > 1 {
            ts - ts.rem_euclid(raw_step)
        } else {
            ts
        };
        match per_raw.last_mut() {
            Some(last) if last.0 == interval => last.1 = v,
            _ => per_raw.push((interval, v)),
        }
    }
    let step = result.step;
    let mut place = |interval: i64, value: Option<f64>| {
        let i = (interval - result.from).div_euclid(step);
        if i >= 0 && (i as usize) < result.values.len() {
            result.values[i as usize] = value;
        }
    };
    if step != raw_step {
        let mut i = 0;
        while i < per_raw.len() {
            let bucket = per_raw[i].0 - per_raw[i].0.rem_euclid(step);
            let mut vals: Vec<Option<f64>> = Vec::new();
            while i < per_raw.len() && per_raw[i].0 - per_raw[i].0.rem_euclid(step) == bucket {
                vals.push(Some(per_raw[i].1));
                i += 1;
            }
            // graphite-web's consolidate() knows no absmax/absmin (it raises); whisper's do.
            place(bucket, Some(method.aggregate(&vals)));
        }
    } else {
        for (interval, v) in per_raw {
            place(interval, Some(v));
        }
    }
}

/// Re-exported for the persister and tests.
pub(crate) fn stat_add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{parse_schemas, StorageRules};

    /// A store in `dir` with `10s:1h,60s:1d` for every metric (shared by the store's tests).
    pub(crate) fn store(dir: &Path) -> Store {
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 10s:1h,60s:1d\n", "t").unwrap(),
            vec![],
        );
        Store::open(dir, rules, 1000, Preallocation::Sparse, 0).unwrap()
    }

    /// A batch large enough to be read by several threads comes back in order, missing
    /// names as `None`, and a visitor that stops is not called again.
    #[test]
    fn fetch_each_reads_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        let now = unix_now();
        let ts = now - now % 10 - 20;
        let names: Vec<String> = (0..PARALLEL_FETCH_FROM * 3 + 7)
            .map(|i| format!("f.m{i:04}"))
            .collect();
        for (i, n) in names.iter().enumerate() {
            if i % 5 != 3 {
                s.insert(n, ts, i as f64);
            }
        }
        Persisters::start(s.clone(), 2, std::time::Duration::ZERO).flush_and_stop();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut seen = Vec::new();
        s.fetch_each(&refs, ts - 60, ts + 10, now, &mut |name, r| {
            let r = r.unwrap();
            let value = r.and_then(|f| f.values.iter().flatten().next().copied());
            seen.push((name.to_string(), value));
            ControlFlow::Continue(())
        });
        assert_eq!(seen.len(), names.len());
        for (i, (name, value)) in seen.iter().enumerate() {
            assert_eq!(name, &names[i]);
            assert_eq!(*value, (i % 5 != 3).then_some(i as f64), "{name}");
        }
        let mut calls = 0;
        s.fetch_each(&refs, ts - 60, ts + 10, now, &mut |_, _| {
            calls += 1;
            if calls == 10 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(calls, 10);
    }

    /// A store opened to serve before its scan: find answers from the directory (and the
    /// cache's new names) exactly as after the scan; rename waits for the scan.
    #[test]
    fn serves_find_before_the_start_scan() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            for name in ["a.b.c", "a.b.d", "a.x", "q.r"] {
                s.insert(name, 1_000_000_000, 1.0);
            }
            Persisters::start(Arc::new(s), 1, std::time::Duration::ZERO).flush_and_stop();
        }
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 10s:1h\n", "t").unwrap(),
            vec![],
        );
        let s = Arc::new(
            Store::open_serving(dir.path(), rules, 1000, Preallocation::Sparse, 0).unwrap(),
        );
        assert!(s.index_loading() && s.index.is_empty());
        assert!(!s.wait_for_index(Some(std::time::Duration::from_millis(10))));
        s.insert("a.new", 1_000_000_000, 2.0);
        let paths =
            |found: Vec<FoundNode>| -> Vec<String> { found.into_iter().map(|f| f.path).collect() };
        // What a store that scanned first answers, the cache's new name included.
        let reference = store(dir.path());
        reference.insert("a.new", 1_000_000_000, 2.0);
        for pattern in ["a.*", "*", "a.b.*", "**", "a.{new,x}", "a..b", "nope"] {
            for leaves_only in [false, true] {
                assert_eq!(
                    s.find(pattern, leaves_only, 100),
                    reference.find(pattern, leaves_only, 100),
                    "{pattern}"
                );
            }
        }
        assert_eq!(paths(s.find("a.*", true, 100)), ["a.new", "a.x"]);
        assert_eq!(
            paths(s.find("a.*", false, 2)),
            ["a.b", "a.new"],
            "limit holds"
        );
        // A rename started now waits for the scan, then sees every file below `from`.
        let renamer = {
            let s = s.clone();
            std::thread::spawn(move || s.rename("a.b", "moved.b").map(|r| r.len()))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!renamer.is_finished(), "rename waits for the index");
        let s2 = s.clone();
        let loaded = std::thread::spawn(move || s2.load_index());
        assert_eq!(loaded.join().unwrap(), 4);
        assert!(s.wait_for_index(None) && !s.index_loading());
        assert_eq!(renamer.join().unwrap().unwrap(), 2);
        assert_eq!(paths(s.find("a.*", false, 100)), ["a.new", "a.x"]);
        assert_eq!(
            paths(s.find("moved.b.*", true, 100)),
            ["moved.b.c", "moved.b.d"]
        );
    }

    #[test]
    fn cached_points_are_readable_before_any_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let now = 1_700_000_000;
        s.insert("a.b", now - 25, 1.0);
        s.insert("a.b", now - 21, 2.0); // same 10 s interval: newest wins
        s.insert("a.b", now - 5, 3.0);
        let f = s.fetch("a.b", now - 60, now, now).unwrap().unwrap();
        assert_eq!(f.step, 10);
        let known: Vec<(i64, f64)> = f
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (f.start + i as i64 * 10, v)))
            .collect();
        assert_eq!(known, vec![(now - 30, 2.0), (now - 10, 3.0)]);
        assert_eq!(s.find("a.*", false, 10).len(), 1);
        assert!(s.fetch("nope", now - 60, now, now).unwrap().is_none());
    }

    #[test]
    fn logged_points_are_replayed_written_and_their_segments_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        let now = unix_now();
        {
            let mut s = store(&dir.path().join("whisper"));
            s.open_wal(&wal_dir, WalSync::Always).unwrap();
            let mut p = Points::new();
            p.push("a.b", now - 20, 1.0);
            p.push("a.c", now - 20, 2.0);
            s.insert_points(&mut p);
            assert!(p.is_empty());
            assert_eq!(s.cache.size(), 2);
            assert_eq!(s.stats.metrics_received.load(Ordering::Relaxed), 2);
        } // dropped without close_wal: as a crash
        let mut s = store(&dir.path().join("whisper"));
        let report = s.open_wal(&wal_dir, WalSync::Always).unwrap();
        assert_eq!((report.segments, report.points), (1, 2));
        assert_eq!(s.cache.size(), 2);
        assert_eq!(
            s.find("a.*", false, 10).len(),
            2,
            "replayed names are indexed"
        );
        assert_eq!(s.cache.oldest_segment(), 0);
        let s = Arc::new(s);
        Persisters::start(s.clone(), 1, std::time::Duration::ZERO).flush_and_stop();
        assert_eq!(s.cache.oldest_segment(), NO_SEGMENT);
        s.collect_wal();
        assert_eq!(
            s.wal_info().unwrap().segments,
            1,
            "only the open segment is left"
        );
        s.close_wal();
        assert_eq!(std::fs::read_dir(&wal_dir).unwrap().count(), 0);
    }

    #[test]
    fn coarse_archives_aggregate_cached_points() {
        let mut r = FetchResult {
            from: 0,
            until: 180,
            step: 60,
            values: vec![None; 3],
        };
        merge_with_cache(
            &mut r,
            vec![(60, 1.0), (70, 3.0), (130, 5.0), (500, 9.0)],
            10,
            AggregationMethod::Average,
        );
        assert_eq!(r.values, vec![None, Some(2.0), Some(5.0)]);
    }
}
