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
//! Running out of file descriptors (`EMFILE`, `ENFILE`: the open-file limit set too low for the
//! metrics, or something else in the process holding many) loses nothing either: the writer
//! that meets it closes the files it keeps open and halves its share, tells the other writers
//! to do the same (the `descriptorRefusals` count they watch), and opens again; if that still
//! fails the points go back to the cache and the pass is retried every [`DISK_FULL_RETRY`],
//! with an ERROR once a minute, as for a full disk.
//!
//! A write need not read its file's header again: the cache entry keeps a 16-byte memo of the
//! file ([`Memo`]: which header, the file's identity, the first two archive bases), trusted
//! while the path names the same file and for [`TRUST_HEADER_FOR`] after the header was read
//! (an in-place `whisper-set-aggregation.py` is seen within that). Nor need it open the file:
//! each writer keeps the files it wrote open for their next write ([`OpenFiles`], up to its
//! share of `[cache] open_files`), and writes through a kept descriptor only while it is the
//! memo's file and still linked, so a file an operator removes, or replaces by renaming another
//! over it, is never written through the old one; the path is opened again at least every
//! [`KEEP_OPEN_FOR`] (a file renamed away while still linked is followed within that). An
//! update is then a stat, the writes and the propagation read: four system calls. Without a
//! kept file it is open, stat, advise, the same three, close; the open is relative to the
//! whisper directory, which each writer holds open ([`Root`]), so only the metric's own path
//! components are looked up.
//!
//! Nor need a write wait for the disk while other files' writes could go on: when pages an
//! update needs are not in the page cache ([`WhisperFile::prefetch_update`], asked before every
//! update while misses are being seen, one in [`PROBE_SAMPLE`] otherwise: [`Probing`]), their
//! reads are started, the points go back to the cache and the metric is written again after
//! [`MAX_DEFERRED`] more were put off or at the end of its group, so the reads overlap each
//! other and the writes instead of being waited for one at a time.
//!
//! Plain threads with blocking file I/O; they never touch the network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::cache::{Memo, Taken};
use super::{stat_add, unix_now, Store};
use crate::ratelimit::RateLimitedLog;
use crate::whisper::{
    create_open, CreateOptions, Header, Known, Residency, WhisperError, WhisperFile,
};

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
            descriptors: RateLimitedLog::new(Duration::from_secs(60), 1),
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
    descriptors: RateLimitedLog,
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
    let mut kept = Kept {
        scratch: Vec::new(),
        headers: Headers::default(),
        root: Root::new(store.whisper_dir()),
        open: OpenFiles::new(store.open_files_for_writes() / writers.max(1)),
        shed_seen: store.stats.descriptor_refusals.load(Ordering::Relaxed),
        probing: Probing::default(),
    };
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
        let mut out_of_descriptors = 0usize;
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
            // The group's metrics in order; one put off while its pages are read
            // (`Outcome::Fetching`) is written, without asking again, once MAX_DEFERRED
            // others have been put off after it, or at the end of the group.
            let mut deferred: std::collections::VecDeque<usize> = Default::default();
            let mut next = 0usize;
            loop {
                let (index, probe) = if deferred.len() >= MAX_DEFERRED
                    || (next == backlog.len() && !deferred.is_empty())
                {
                    (deferred.pop_front().unwrap_or_default(), false)
                } else if next < backlog.len() {
                    next += 1;
                    (next - 1, kept.probing.wanted())
                } else {
                    break;
                };
                let item = &backlog[index];
                if out_of_tokens && !stopping && waiting_for_file.contains(&item.name) {
                    throttled += 1;
                    continue;
                }
                // A delete or rename waits for this write, and none starts during it.
                let _shared = store.lifecycle.read();
                let Some(mut taken) = store.cache.take(item) else {
                    continue;
                };
                let outcome = write(store, &mut taken, &mut kept, limiter, stopping, probe, log);
                match outcome {
                    Outcome::Fetching => {
                        stat_add(&store.stats.prefetched_writes, 1);
                        store.cache.requeue(taken);
                        deferred.push_back(index);
                    }
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
                    Outcome::OutOfDescriptors => {
                        out_of_descriptors += 1;
                        store.cache.requeue(taken);
                    }
                }
            }
            if out_of_space > 0 || out_of_descriptors > 0 {
                // The other groups would fail the same way: retry the pass later.
                break;
            }
        }
        if found == 0 {
            if stopping {
                // Other writers' in-flight points are theirs to finish.
                return;
            }
            // Files of metrics that stopped are closed even when nothing else is written.
            kept.open.sweep(kept.root.generation, unix_now());
            if id == 0 && last_evict.elapsed() > EVICT_EVERY {
                store.cache.evict_idle();
                last_evict = Instant::now();
            }
            std::thread::sleep(IDLE_SLEEP);
            continue;
        }
        if out_of_space > 0 || out_of_descriptors > 0 {
            let (log, what, remedy) = if out_of_space > 0 {
                store.stats.disk_full.store(true, Ordering::Relaxed);
                (
                    &logs.disk_full,
                    "disk full",
                    "Free space on that file system.",
                )
            } else {
                (
                    &logs.descriptors,
                    "out of file descriptors",
                    "Raise the open-file limit (LimitNOFILE) or lower cache.open_files.",
                )
            };
            log.error(format_args!(
                "{what} under {}: {} points of {} metrics wait in the cache and are retried \
                 every {:?}; nothing is dropped, but at cache.max_size ({}) the listeners stop \
                 reading. {remedy}",
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
    /// Pages the update needs were not in memory: their reads are started, the points go
    /// back to the cache and the metric is written again after the rest of its group.
    Fetching,
    Throttled,
    /// The file system had no room: the points go back to the cache.
    OutOfSpace,
    /// No file descriptor to open the file with, even after closing the kept ones: the
    /// points go back to the cache.
    OutOfDescriptors,
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
        "shutting down with a full disk (or no file descriptors): {lost} cached points could not be written within \
         {SHUTDOWN_DISK_FULL_GRACE:?} and are lost"
    );
}

/// How long a writer trusts a file's header after reading it, if the path still names the same
/// file. What it cannot see is a header rewritten in place (`whisper-set-aggregation.py`): that
/// takes effect in the writes at most this much later. Five minutes: a metric sent every 10 s
/// reads its header on one write in 30, one sent every 60 s on one in 5.
pub const TRUST_HEADER_FOR: Duration = Duration::from_secs(300);

/// How often a writer checks that the whisper directory it holds open ([`Root`]) is still the
/// one the configured path names.
const ROOT_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The whisper directory, held open by one writer so an update opens its file relative to it
/// (`big/h01234/m01.wsp`) and the kernel does not walk the data directory's components for
/// each of two hundred thousand updates a second. Once a [`ROOT_CHECK_EVERY`] the path is
/// looked up again: a data directory moved, replaced or removed under a running server is
/// followed within a second (meanwhile a file missing under the held directory is opened by
/// its full path before it is created anew). `None` (the directory cannot be opened): full
/// paths, as before.
struct Root {
    dir: std::path::PathBuf,
    held: Option<(std::os::fd::OwnedFd, (u64, u64))>,
    checked: Option<Instant>,
    /// Counts the times the held directory changed (or went): the files a writer keeps open
    /// ([`OpenFiles`]) belong to one generation.
    generation: u64,
}

impl Root {
    fn new(dir: &std::path::Path) -> Root {
        Root {
            dir: dir.to_path_buf(),
            held: None,
            checked: None,
            generation: 0,
        }
    }

    /// The held directory as last looked up.
    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.held.as_ref().map(|h| h.0.as_fd())
    }

    /// Looks the path up again when [`ROOT_CHECK_EVERY`] has passed, reopening the directory
    /// (and counting a new generation) when it names another or none.
    fn refresh(&mut self) {
        use rustix::fs::{Mode, OFlags};
        use std::os::unix::fs::MetadataExt;
        if self.checked.is_none_or(|t| t.elapsed() >= ROOT_CHECK_EVERY) {
            self.checked = Some(Instant::now());
            let named = std::fs::metadata(&self.dir)
                .ok()
                .map(|m| (m.dev(), m.ino()));
            if named.is_none() || self.held.as_ref().map(|h| h.1) != named {
                if self.held.is_some() {
                    self.generation += 1;
                }
                self.held = None;
                let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
                if let Ok(fd) = rustix::fs::open(&self.dir, flags, Mode::empty()) {
                    if let Ok(st) = rustix::fs::fstat(&fd) {
                        self.held = Some((fd, (st.st_dev, st.st_ino)));
                    }
                }
            }
        }
    }
}

/// How long a writer writes through a descriptor it kept open ([`OpenFiles`]) before it opens
/// the path again. A kept descriptor sees a file removed or replaced (it has no link left,
/// [`WhisperFile::reuse_known`]) at the next write, but not the file or a directory above it
/// renamed while still linked (`mv whisper/web1 whisper/web1-old`): for at most this long its
/// points land in the renamed file, where before they went to a new file at the old path.
/// A metric sent every 10 s opens its path on one write in six.
const KEEP_OPEN_FOR: Duration = Duration::from_secs(60);

/// The open-file budget of the writers when `[cache] open_files` is `"auto"`: three quarters
/// of the open-file `limit` that `reserved` descriptors (the readers' cache, the listeners'
/// connections) and 1,024 more (log segments, sled, HTTP clients, creations, migrations) leave.
/// At 20,000 (this machine's hard limit) that is 10,392 files; at 1,048,576 (the systemd
/// unit's `LimitNOFILE`) 781,824.
pub fn open_files_budget(limit: u64, reserved: u64) -> usize {
    let spare = limit.saturating_sub(reserved.saturating_add(1024));
    usize::try_from(spare / 4 * 3).unwrap_or(usize::MAX)
}

/// A descriptor kept open after a write, for the metric's next one.
struct KeptOpen {
    file: std::fs::File,
    /// When the path was last opened for it (epoch seconds).
    opened_at: i64,
}

/// The whisper files one writer keeps open between writes, so an update need not open, advise
/// and close its file (half of a one-point update's time on this machine, BENCHMARKS.md). At
/// most `capacity` (the writer's share of `[cache] open_files`), first come; keyed by a 64-bit
/// hash of the metric name, and a kept descriptor is used only for the file the metric's memo
/// describes ([`WhisperFile::reuse_known`] checks identity, length and that it is still
/// linked), so a hash collision costs an open, never a write to another metric's file.
/// Descriptors not used for [`KEEP_OPEN_FOR`] are closed by [`OpenFiles::sweep`]; all of
/// them when the held whisper directory changes ([`Root`]).
struct OpenFiles {
    files: std::collections::HashMap<u64, KeptOpen, foldhash::fast::FixedState>,
    capacity: usize,
    generation: u64,
    swept: i64,
}

impl OpenFiles {
    fn new(capacity: usize) -> OpenFiles {
        OpenFiles {
            files: Default::default(),
            capacity,
            generation: 0,
            swept: 0,
        }
    }

    fn key(name: &str) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x6f70_656e_6669_6c65).hash_one(name)
    }

    /// The descriptor kept for `key`, if it may still be written through at `now` without
    /// opening the path; an older one is closed.
    fn take(&mut self, key: u64, now: i64) -> Option<KeptOpen> {
        let kept = self.files.remove(&key)?;
        Self::fresh(&kept, now).then_some(kept)
    }

    /// Whether `kept` was opened less than [`KEEP_OPEN_FOR`] before `now`; a clock set back
    /// past its opening makes it old, not fresh for the hours it went back.
    fn fresh(kept: &KeptOpen, now: i64) -> bool {
        (0..KEEP_OPEN_FOR.as_secs() as i64).contains(&(now - kept.opened_at))
    }

    /// Keeps `file` (opened at `opened_at`) for `key`'s next write, if there is room.
    fn keep(&mut self, key: u64, file: std::fs::File, opened_at: i64) {
        if self.files.len() < self.capacity || self.files.contains_key(&key) {
            self.files.insert(key, KeptOpen { file, opened_at });
        }
    }

    /// Keeps `file` for a write retried within the pass ([`Outcome::Fetching`]), even past
    /// the capacity: the retry takes it back.
    fn keep_for_retry(&mut self, key: u64, file: std::fs::File, opened_at: i64) {
        self.files.insert(key, KeptOpen { file, opened_at });
    }

    /// Closes every kept file and halves the capacity: the process ran out of descriptors.
    fn shed(&mut self) {
        self.files.clear();
        self.capacity /= 2;
    }

    /// Closes what the writer holds of directory generation other than `generation`, and, once
    /// a [`KEEP_OPEN_FOR`], what is too old to be written through (metrics that stopped).
    fn sweep(&mut self, generation: u64, now: i64) {
        if generation != self.generation {
            self.files.clear();
            self.generation = generation;
        }
        if !(0..KEEP_OPEN_FOR.as_secs() as i64).contains(&(now - self.swept)) {
            self.files.retain(|_, k| Self::fresh(k, now));
            self.swept = now;
        }
    }
}

/// How many distinct headers a writer remembers (a [`Memo`]'s `layout` is one byte); files of
/// further layouts are written without a memo (their header read every time).
const MAX_HEADERS: usize = 255;

/// A writer's table of the headers its files have (an installation has a handful: one per
/// storage schema, xFilesFactor and aggregation method), which the cache entries' [`Memo`]s
/// index. A writer alone writes the metrics of its shards, so the table is its own.
#[derive(Default)]
struct Headers {
    seen: Vec<Header>,
}

impl Headers {
    /// What `memo` lets a write at `now` (epoch seconds) skip: the header and the first two
    /// bases, when the header was read less than [`TRUST_HEADER_FOR`] ago.
    fn known<'a>(&'a self, memo: &'a Memo, now: i64) -> Option<Known<'a>> {
        let age = (now as u16).wrapping_sub(memo.read_at);
        if memo.layout == 0 || u64::from(age) >= TRUST_HEADER_FOR.as_secs() {
            return None;
        }
        Some(Known {
            id: memo.file,
            header: self.seen.get(usize::from(memo.layout) - 1)?,
            bases: &memo.bases,
        })
    }

    /// The memo of `f` after a write at `now`: its header's index (added if new), identity,
    /// first two bases, and when the header was read (kept from `previous` when it came from
    /// there); nothing once [`MAX_HEADERS`] layouts are known.
    fn remember(&mut self, f: &WhisperFile, previous: &Memo, now: i64) -> Memo {
        let header = f.header();
        let layout = match previous.layout {
            l if l != 0 && self.seen.get(usize::from(l) - 1) == Some(header) => usize::from(l),
            _ => match self.seen.iter().position(|h| h == header) {
                Some(i) => i + 1,
                None if self.seen.len() < MAX_HEADERS => {
                    self.seen.push(header.clone());
                    self.seen.len()
                }
                None => return Memo::default(),
            },
        };
        let mut bases = [0u32; 2];
        for (b, known) in bases.iter_mut().zip(f.known_bases()) {
            *b = known;
        }
        Memo {
            layout: layout as u8,
            file: f.file_id(),
            bases,
            read_at: if f.header_was_known() {
                previous.read_at
            } else {
                now as u16
            },
        }
    }
}

/// What a writer keeps from one update to the next.
struct Kept {
    /// The points of the update being written, sorted (reused: no allocation per update).
    scratch: Vec<(i64, f64)>,
    headers: Headers,
    root: Root,
    open: OpenFiles,
    /// `descriptorRefusals` when this writer last closed its kept files: a writer that runs
    /// out of descriptors counts one, and every writer that sees the count move sheds its own.
    shed_seen: u64,
    probing: Probing,
}

/// How many metrics a writer has put off at most while their pages are read
/// ([`Outcome::Fetching`]): the oldest is written when one more would pass this, so each read
/// has the time of a few thousand other updates to finish. Each keeps its descriptor open
/// meanwhile, beyond the writer's share of `[cache] open_files` (the budget leaves a quarter
/// of the limit spare).
const MAX_DEFERRED: usize = 256;
/// How long a writer keeps asking before every update whether its pages are in memory after
/// it last found some that were not.
const PROBE_FOR: i64 = 30;
/// While no page was missing for [`PROBE_FOR`], one update in this many asks.
const PROBE_SAMPLE: u32 = 64;

/// When a writer asks whether an update's pages are in memory
/// ([`WhisperFile::prefetch_update`]: a `cachestat` a page, about two an update). While the
/// files fit in the page cache the answer is always yes and asking is waste, so it asks one
/// update in [`PROBE_SAMPLE`]; from a miss on, every update for [`PROBE_FOR`] seconds. Never
/// again once neither `cachestat` nor `RWF_NOWAIT` works.
#[derive(Default)]
struct Probing {
    /// Until when (epoch seconds) every update asks; 0 once that passed.
    every_until: i64,
    /// Updates since the last sampled one.
    count: u32,
    unsupported: bool,
}

impl Probing {
    fn wanted(&mut self) -> bool {
        if self.unsupported {
            return false;
        }
        self.count = self.count.wrapping_add(1);
        if self.count % PROBE_SAMPLE == 0 {
            return true;
        }
        // The clock is read only while misses are recent (0: none since the last expiry).
        if self.every_until != 0 && unix_now() >= self.every_until {
            self.every_until = 0;
        }
        self.every_until != 0
    }

    fn missed(&mut self, now: i64) {
        self.every_until = now + PROBE_FOR;
    }
}

/// Counts a refusal for lack of descriptors; returns the new count (the writers' signal).
fn refused(store: &Store) -> u64 {
    store
        .stats
        .descriptor_refusals
        .fetch_add(1, Ordering::Relaxed)
        + 1
}

fn write(
    store: &Store,
    taken: &mut Taken,
    kept: &mut Kept,
    limiter: &CreateLimiter,
    force: bool,
    probe: bool,
    log: &RateLimitedLog,
) -> Outcome {
    let Kept {
        scratch,
        headers,
        root,
        open,
        shed_seen,
        probing,
    } = kept;
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
    let Some(rel) = super::layout::relative_path(name) else {
        stat_add(&store.stats.errors, 1);
        stat_add(&store.stats.dropped_points, taken.points.len() as u64);
        log.warn(format_args!(
            "metric {name:?} cannot be stored safely; {} points dropped",
            taken.points.len()
        ));
        return Outcome::Done;
    };
    let path = store.whisper_dir().join(&rel);
    let now = unix_now();
    let memo = std::mem::take(&mut taken.memo);
    let known = headers.known(&memo, now);
    root.refresh();
    open.sweep(root.generation, now);
    let refusals = store.stats.descriptor_refusals.load(Ordering::Relaxed);
    if refusals != *shed_seen {
        // A writer (perhaps this one) ran out of descriptors: each closes what it keeps.
        open.shed();
        *shed_seen = refusals;
    }
    let dir = root.fd();
    let key = OpenFiles::key(name);
    // A descriptor kept from the last write, if it is still this metric's file; without a
    // memo to check it against (a new entry, a header to read again) the path is opened.
    let kept_open = open.take(key, now);
    let reused = match (kept_open, known) {
        (Some(k), Some(known)) => WhisperFile::reuse_known(k.file, &path, known)
            .ok()
            .map(|f| (f, k.opened_at)),
        _ => None,
    };
    let open_path = |dir: Option<std::os::fd::BorrowedFd<'_>>| match dir {
        Some(dir) => match WhisperFile::open_rw_known_in(Some(dir), &rel, &path, known) {
            // Perhaps only the held directory is gone: the path decides.
            Err(WhisperError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                WhisperFile::open_rw_known(&path, known)
            }
            other => other,
        },
        None => WhisperFile::open_rw_known(&path, known),
    };
    let (opened, opened_at) = match reused {
        Some((f, at)) => {
            stat_add(&store.stats.kept_open_writes, 1);
            (Ok(f), at)
        }
        None => {
            let mut opened = open_path(dir);
            if matches!(&opened, Err(e) if e.is_out_of_descriptors()) {
                // Out of descriptors: every writer's kept ones go first (the others see the
                // count), then this open is tried again.
                log.warn(format_args!(
                    "out of file descriptors with {} whisper files kept open by this writer: \
                     all writers close theirs; raise the open-file limit or lower \
                     cache.open_files",
                    open.files.len()
                ));
                *shed_seen = refused(store);
                open.shed();
                opened = open_path(dir);
            }
            (opened, now)
        }
    };
    let file = match opened {
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
                Err(e) if e.is_out_of_descriptors() => {
                    *shed_seen = refused(store);
                    open.shed();
                    return Outcome::OutOfDescriptors;
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
        Err(e) if e.is_out_of_descriptors() => {
            *shed_seen = refused(store);
            return Outcome::OutOfDescriptors;
        }
        Err(e) => Err(e),
    };
    let file = match file {
        Ok(f) if probe => match f.prefetch_update(scratch, now) {
            Residency::Fetching => {
                probing.missed(now);
                // Kept past the budget for the retry (at most MAX_DEFERRED of them).
                open.keep_for_retry(key, f.into_file(), opened_at);
                taken.memo = memo;
                return Outcome::Fetching;
            }
            Residency::Unknown => {
                probing.unsupported = true;
                Ok(f)
            }
            Residency::Resident => Ok(f),
        },
        other => other,
    };
    let started = Instant::now();
    let result = file.and_then(|mut f| {
        let max_retention = f.header().max_retention as i64;
        let kept = scratch
            .iter()
            .filter(|p| now - p.0 <= max_retention)
            .count();
        f.update_many(scratch, now)?;
        taken.memo = headers.remember(&f, &memo, now);
        open.keep(key, f.into_file(), opened_at);
        Ok((kept, scratch.len() - kept))
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

    /// Waits (20 s at most) until `n` points are on disk.
    fn wait_committed(store: &Store, n: u64) {
        let t = Instant::now();
        while store.stats.committed_points.load(Ordering::Relaxed) < n {
            assert!(t.elapsed() < Duration::from_secs(20), "points not written");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

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

    /// Writers open files relative to the whisper directory they hold ([`Root`]); a data
    /// directory removed or replaced under them is followed: no point lands in the old one
    /// once the new one is a second old, and a removed one is made again at once.
    #[test]
    fn a_whisper_directory_replaced_or_removed_under_the_writers_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("w");
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 1s:1h\n", "t").unwrap(),
            vec![],
        );
        let store = Arc::new(Store::open(&w, rules, 100_000, Preallocation::Sparse, 0).unwrap());
        let p = Persisters::start(store.clone(), 1, Duration::ZERO);
        let now = unix_now();
        let wait_written = |n: u64| wait_committed(&store, n);
        let values = |path: &std::path::Path| -> Vec<f64> {
            let f = WhisperFile::open(path).unwrap();
            let r = f.fetch(now - 100, Some(now), now, None).unwrap().unwrap();
            r.values.iter().flatten().copied().collect()
        };
        store.insert("a.b", now - 30, 1.0);
        wait_written(1);

        // Replaced: the old directory moved aside, an empty one in its place.
        std::fs::rename(&w, dir.path().join("old")).unwrap();
        std::fs::create_dir(&w).unwrap();
        std::thread::sleep(ROOT_CHECK_EVERY + Duration::from_millis(100));
        store.insert("a.b", now - 20, 2.0);
        wait_written(2);
        assert_eq!(values(&w.join("a/b.wsp")), [2.0]);
        assert_eq!(values(&dir.path().join("old/a/b.wsp")), [1.0]);

        // Removed: made again, the point not lost.
        std::fs::remove_dir_all(&w).unwrap();
        store.insert("a.b", now - 10, 3.0);
        wait_written(3);
        p.flush_and_stop();
        assert_eq!(values(&w.join("a/b.wsp")), [3.0]);
        assert_eq!(store.stats.errors.load(Ordering::Relaxed), 0);
    }

    /// A writer keeps each file open after its write and writes the next update through it;
    /// a file removed, or replaced by renaming another over it (as `whisper-resize.py` does),
    /// is never written through the old descriptor: its next point is in the file the path
    /// names, and none is lost. With `open_files = 0` nothing is kept.
    #[test]
    fn kept_files_are_written_through_until_removed_or_replaced() {
        use crate::whisper::{create, Retention};
        for budget in [16, 0] {
            let dir = tempfile::tempdir().unwrap();
            let rules = StorageRules::new(
                parse_schemas("[all]\npattern = .*\nretentions = 1s:1h\n", "t").unwrap(),
                vec![],
            );
            let store = Arc::new(
                Store::open(dir.path(), rules, 100_000, Preallocation::Sparse, 0).unwrap(),
            );
            assert_eq!(
                store.size_open_files(Some(budget), 0),
                budget,
                "the open-file limit leaves room for {budget} kept files"
            );
            let p = Persisters::start(store.clone(), 1, Duration::ZERO);
            let now = unix_now();
            let wait_written = |n: u64| wait_committed(&store, n);
            let path = dir.path().join("a/b.wsp");
            let values = |from: i64| -> Vec<(i64, f64)> {
                let f = WhisperFile::open(&path).unwrap();
                let r = f.fetch(from, Some(now), now, None).unwrap().unwrap();
                r.values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (r.from + i as i64 * r.step, v)))
                    .collect()
            };
            let kept = || store.stats.kept_open_writes.load(Ordering::Relaxed);
            store.insert("a.b", now - 50, 1.0);
            wait_written(1);
            store.insert("a.b", now - 40, 2.0);
            wait_written(2);
            assert_eq!(kept(), u64::from(budget > 0));
            assert_eq!(values(now - 100), [(now - 50, 1.0), (now - 40, 2.0)]);

            // Removed: made again, the point in the new file.
            std::fs::remove_file(&path).unwrap();
            store.insert("a.b", now - 30, 3.0);
            wait_written(3);
            assert_eq!(values(now - 100), [(now - 30, 3.0)]);

            // Replaced by a rename: the new file (another retention) takes the point.
            let new = dir.path().join("new.wsp");
            let r = Retention {
                seconds_per_point: 10,
                points: 720,
            };
            create(&new, &[r], CreateOptions::default()).unwrap();
            std::fs::rename(&new, &path).unwrap();
            store.insert("a.b", now - 20, 4.0);
            wait_written(4);
            let f = WhisperFile::open(&path).unwrap();
            assert_eq!(f.header().archives[0].seconds_per_point, 10);
            let r = f.fetch(now - 100, Some(now), now, None).unwrap().unwrap();
            assert_eq!(
                r.values.iter().flatten().copied().collect::<Vec<_>>(),
                [4.0]
            );
            // And the one after is written through the file kept from that write.
            store.insert("a.b", now - 10, 5.0);
            wait_written(5);
            p.flush_and_stop();
            let r = f.fetch(now - 100, Some(now), now, None).unwrap().unwrap();
            assert_eq!(
                r.values.iter().flatten().copied().collect::<Vec<_>>(),
                [4.0, 5.0]
            );
            assert_eq!(kept(), if budget > 0 { 2 } else { 0 });
            assert_eq!(store.stats.errors.load(Ordering::Relaxed), 0);
        }
    }

    /// Files whose pages left the page cache are written all the same when the writer finds
    /// them missing: the updates are put off while the pages are read
    /// ([`Outcome::Fetching`], counted in `prefetched_writes`), the deferral queue overflows
    /// and is drained, and every point is in its file after. On the disk under the crate:
    /// tmpfs never drops a page, so nothing would be missing there.
    #[test]
    fn updates_whose_pages_are_not_in_memory_are_put_off_and_written() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 10s:1h,1m:12h\n", "t").unwrap(),
            vec![],
        );
        let store =
            Arc::new(Store::open(dir.path(), rules, 1_000_000, Preallocation::Zero, 0).unwrap());
        let p = Persisters::start(store.clone(), 1, Duration::ZERO);
        let now = unix_now();
        let metrics = MAX_DEFERRED * 2;
        let name = |i: usize| format!("m.n{i:04}");
        for i in 0..metrics {
            store.insert(&name(i), now - 3000, 1.0);
        }
        wait_committed(&store, metrics as u64);
        // Every file's pages out of memory.
        for i in 0..metrics {
            crate::whisper::drop_cached_pages(&dir.path().join(format!("m/n{i:04}.wsp")));
        }
        for i in 0..metrics {
            store.insert(&name(i), now - 5, i as f64);
        }
        wait_committed(&store, 2 * metrics as u64);
        p.flush_and_stop();
        let deferred = store.stats.prefetched_writes.load(Ordering::Relaxed);
        // One update in PROBE_SAMPLE asks first; from its miss on, every one.
        assert!(
            deferred as usize > metrics - 2 * PROBE_SAMPLE as usize,
            "{deferred} of {metrics} updates put off (tmpfs under the crate?)"
        );
        for i in 0..metrics {
            let f = WhisperFile::open(&dir.path().join(format!("m/n{i:04}.wsp"))).unwrap();
            let r = f.fetch(now - 3600, Some(now), now, None).unwrap().unwrap();
            let known: Vec<f64> = r.values.iter().flatten().copied().collect();
            assert_eq!(known, [1.0, i as f64], "{}", name(i));
        }
        assert_eq!(store.stats.errors.load(Ordering::Relaxed), 0);
    }

    /// [`OpenFiles`] keeps at most its capacity, hands a descriptor back for
    /// [`KEEP_OPEN_FOR`] after its path was opened and not after, closes those a sweep finds
    /// older, and all of them when the whisper directory changed.
    #[test]
    fn open_files_are_bounded_in_number_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let file = |i: u64| std::fs::File::create(dir.path().join(i.to_string())).unwrap();
        let limit = KEEP_OPEN_FOR.as_secs() as i64;
        let mut open = OpenFiles::new(2);
        for i in 0..3 {
            open.keep(i, file(i), 1000);
        }
        assert_eq!(open.files.len(), 2, "first come, up to the capacity");
        assert!(open.take(2, 1000).is_none());
        let k = open.take(0, 1000 + limit - 1).expect("still fresh");
        assert!(open.take(0, 1000).is_none(), "taken out");
        open.keep(0, k.file, k.opened_at);
        assert!(open.take(1, 1000 + limit).is_none(), "too old: closed");
        open.keep(1, file(1), 1000);
        assert!(open.take(1, 999).is_none(), "a clock set back: old");
        assert_eq!(open.files.len(), 1);
        open.keep(5, file(5), 1000 + limit);
        open.sweep(0, 1000 + limit);
        assert_eq!(open.files.len(), 1, "the sweep closed the old one");
        assert!(open.files.contains_key(&5));
        open.sweep(0, 1000 + limit + 1);
        assert_eq!(open.files.len(), 1, "one sweep a KEEP_OPEN_FOR");
        open.sweep(1, 1000 + limit + 1);
        assert!(open.files.is_empty(), "a new directory: nothing kept");
        assert_eq!(OpenFiles::new(0).capacity, 0);
        let mut none = OpenFiles::new(0);
        none.keep(1, file(1), 0);
        assert!(none.files.is_empty());
    }

    /// The automatic budget leaves the readers, the connections and 1,024 descriptors
    /// alone, and takes three quarters of the rest.
    #[test]
    fn the_open_file_budget_leaves_room_for_the_rest_of_the_server() {
        assert_eq!(open_files_budget(20_000, 4096 + 1024), 10_392);
        assert_eq!(open_files_budget(1_048_576, 4096 + 1024), 781_824);
        assert_eq!(open_files_budget(1024, 256 + 1024), 0);
        assert!(open_files_budget(u64::MAX, 0) > 0);
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

    /// A header is taken from the memo for [`TRUST_HEADER_FOR`] after it was read (a write
    /// that used the memo keeps the read time); files of one layout share one table entry.
    #[test]
    fn a_remembered_header_is_trusted_for_five_minutes_after_its_read() {
        use crate::whisper::{create, Retention};
        let dir = tempfile::tempdir().unwrap();
        let r = |s, p| Retention {
            seconds_per_point: s,
            points: p,
        };
        let paths: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| dir.path().join(format!("{n}.wsp")))
            .collect();
        create(
            &paths[0],
            &[r(10, 360), r(60, 720)],
            CreateOptions::default(),
        )
        .unwrap();
        create(
            &paths[1],
            &[r(10, 360), r(60, 720)],
            CreateOptions::default(),
        )
        .unwrap();
        create(&paths[2], &[r(60, 60)], CreateOptions::default()).unwrap();
        let files: Vec<_> = paths
            .iter()
            .map(|p| WhisperFile::open_rw(p).unwrap())
            .collect();
        let mut headers = Headers::default();
        let memos: Vec<Memo> = files
            .iter()
            .map(|f| headers.remember(f, &Memo::default(), 500))
            .collect();
        assert_eq!(
            memos.iter().map(|m| m.layout).collect::<Vec<_>>(),
            [1, 1, 2]
        );
        assert_eq!(memos[0].file, files[0].file_id());
        assert_ne!(memos[0].file, memos[1].file);
        let known = headers.known(&memos[2], 500).unwrap();
        assert_eq!(known.header, files[2].header());
        assert_eq!(known.id, files[2].file_id());
        assert!(headers.known(&memos[2], 799).is_some());
        assert!(
            headers.known(&memos[2], 800).is_none(),
            "300 s on it is read again"
        );
        assert!(headers.known(&memos[2], 499).is_none(), "a clock set back");
        assert!(headers.known(&Memo::default(), 500).is_none());
        // Seconds are kept mod 2^16: the window carries over the wrap.
        let late = headers.remember(&files[2], &Memo::default(), 65_500);
        assert!(headers.known(&late, 65_536 + 100).is_some());
        assert!(headers.known(&late, 65_536 + 264).is_none());
        // A write through the memo keeps the time of the read; one that read it, its own.
        let path = &paths[2];
        let used = WhisperFile::open_rw_known(path, headers.known(&memos[2], 700)).unwrap();
        assert!(used.header_was_known());
        assert_eq!(headers.remember(&used, &memos[2], 700).read_at, 500);
        let read = WhisperFile::open_rw_known(path, None).unwrap();
        assert!(!read.header_was_known());
        assert_eq!(headers.remember(&read, &memos[2], 700).read_at, 700);
        // Once MAX_HEADERS layouts are known, a new one gets no memo.
        headers.seen = (0..MAX_HEADERS)
            .map(|_| files[0].header().clone())
            .collect();
        assert_eq!(
            headers.remember(&files[2], &Memo::default(), 500),
            Memo::default()
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
