//! Retention mismatches and their online migration: after a `storage-schemas.conf` change,
//! which whisper files have an archive list (seconds per point, points) other than the one
//! their matching rule would create now, and — with `[cache] migrate_retentions = true` —
//! rewriting them to the rule's archives while the server runs.
//!
//! One background thread ([`RetentionScanner`]) walks the whisper directory at start-up and
//! after each SIGHUP, reading headers only, at most [`SCAN_FILES_PER_SECOND`], so a million
//! files cost minutes of background reads, not the machine. Counts go to
//! [`Store::retentions`] (`/health`'s `retentions`).
//!
//! A migration (one file at a time, at most `[cache] migrate_per_second` files and
//! [`MIGRATE_BYTES_PER_SECOND`] a second) follows whisper-resize.py with `--aggregate`
//! (`crate::whisper::aggregate_into`): each new archive gets, per step, the file's
//! aggregationMethod over the old points in it, with the file's xFilesFactor; method and
//! xFilesFactor stay the file's. It never loses a point and never shows readers a half-made
//! file:
//!
//! 1. the metric is held off the persister ([`super::Cache::hold`]): points arriving meanwhile
//!    stay in the cache, readable, and a write already in flight is waited for;
//! 2. the old file is read and the new one written beside it under a hidden temporary name
//!    ([`temp_path`]: `.<node>.wsp.migrating`, which the index and this scan ignore), synced;
//! 3. `rename(2)` swaps it in (readers see the old file or the new one, never a half-written
//!    one), the open-reader cache forgets the old file, and the hold ends: the persister
//!    writes the held points into the new file.
//!
//! A crash before the rename leaves the old file as it was and a temporary file, removed at the
//! next start ([`remove_temp_files`]). Nothing is written outside the whisper directory: the
//! walk follows no symbolic link and the temporary file sits beside the file it replaces.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::index::{walk_tree, Walked};
use super::{unix_now, Store};
use crate::config::StorageRules;
use crate::ratelimit::RateLimitedLog;
use crate::whisper::{
    aggregate_into, create, read_archives, AggregationMethod, CreateOptions, Header, Retention,
    WhisperError, WhisperFile,
};

/// Most whisper headers the background scan reads per second.
pub const SCAN_FILES_PER_SECOND: u32 = 5000;
/// Most bytes of new whisper files a migration writes per second (32 MiB), whatever
/// `[cache] migrate_per_second` allows.
pub const MIGRATE_BYTES_PER_SECOND: u64 = 32 << 20;
/// How many mismatched files `/health` shows as examples.
pub const EXAMPLES_KEPT: usize = 10;
/// The suffix of a migration's temporary file (its name also starts with a dot).
pub const TEMP_SUFFIX: &str = ".wsp.migrating";
/// Longest wait for a persister write already in flight before a migration gives up (the
/// file is then counted as failed, and tried again at the next scan).
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(30);

/// A whisper file whose archives differ from what its storage-schemas rule would create.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The metric (a tagged series with its tags).
    pub metric: String,
    /// Its file.
    pub path: PathBuf,
    /// The file's archives, finest first.
    pub file_retentions: Vec<Retention>,
    /// The storage-schemas section that matches the metric (`None`: none does, carbon's
    /// default `60:10080` applies).
    pub rule: Option<String>,
    /// What that rule would create, finest first.
    pub rule_retentions: Vec<Retention>,
}

impl Mismatch {
    /// The rule's name as reports show it: the section name, or `(carbon default)`.
    pub fn rule_name(&self) -> &str {
        self.rule.as_deref().unwrap_or("(carbon default)")
    }
}

/// The archives of a header as retentions (seconds per point, points), finest first.
pub fn file_retentions(header: &Header) -> Vec<Retention> {
    header
        .archives
        .iter()
        .map(|a| Retention {
            seconds_per_point: a.seconds_per_point,
            points: a.points,
        })
        .collect()
}

/// `Some` when the file of `metric` at `path`, whose header is `header`, has an archive list
/// other than the one `rules` would create for it now. Only the archives count: a different
/// aggregationMethod or xFilesFactor is not a retention mismatch.
pub fn mismatch_of(
    metric: &str,
    path: &Path,
    header: &Header,
    rules: &StorageRules,
) -> Option<Mismatch> {
    let want = rules.plan(metric).retentions;
    let have = file_retentions(header);
    (have != want).then(|| Mismatch {
        metric: metric.to_string(),
        path: path.to_path_buf(),
        file_retentions: have,
        rule: rules.schema_name(metric).map(str::to_string),
        rule_retentions: want,
    })
}

/// A file whose aggregationMethod or xFilesFactor differs from what storage-aggregation.conf
/// gives its metric now. Reported apart from retention mismatches and never migrated here
/// (`carbonhound whisper set-aggregation`, as whisper-set-aggregation-method.py, changes it).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationMismatch {
    /// The file's (aggregationMethod, xFilesFactor).
    pub file: (AggregationMethod, f32),
    /// What the rules give.
    pub rule: (AggregationMethod, f32),
}

/// `Some` when the header's aggregationMethod or xFilesFactor is not what `rules` give
/// `metric` now.
pub fn aggregation_mismatch_of(
    metric: &str,
    header: &Header,
    rules: &StorageRules,
) -> Option<AggregationMismatch> {
    let plan = rules.plan(metric);
    let file = (header.aggregation_method, header.x_files_factor);
    let rule = (plan.aggregation_method, plan.x_files_factor);
    (file != rule).then_some(AggregationMismatch { file, rule })
}

/// Retentions as storage-schemas.conf writes them, each part in its largest whole unit:
/// `1m:1d,10m:30d` (seconds per point `:` time covered). whisper reads this form back.
pub fn retentions_string(retentions: &[Retention]) -> String {
    fn unit(seconds: u64) -> String {
        for (suffix, size) in [("y", 31_536_000), ("d", 86_400)] {
            if seconds >= size && seconds % size == 0 {
                return format!("{}{suffix}", seconds / size);
            }
        }
        for (suffix, size) in [("h", 3600), ("m", 60)] {
            if seconds >= size && seconds % size == 0 {
                return format!("{}{suffix}", seconds / size);
            }
        }
        format!("{seconds}s")
    }
    retentions
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                unit(r.seconds_per_point as u64),
                unit(r.retention())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Walks the whisper directory, calling `visit(metric, path)` for every whisper file whose
/// metric name can be known: `a/b/c.wsp` is `a.b.c`, `_tagged/xxx/yyy/name;t=v.wsp` the
/// tagged series (`_DOT_` read as `.`; hash-only names cannot be decoded and are left out).
/// Hidden entries (a migration's temporary files among them) and symbolic links are skipped,
/// as the metric index skips them. Stops when `visit` breaks; returns whether it did.
pub fn walk_whisper_files(
    whisper_dir: &Path,
    visit: &mut dyn FnMut(&str, &Path) -> ControlFlow<()>,
) -> ControlFlow<()> {
    walk_tree(whisper_dir, &mut String::new(), &mut |entry| match entry {
        Walked::File {
            name,
            path,
            regular: true,
        } => visit(name, path),
        _ => ControlFlow::Continue(()),
    })?;
    let tagged = whisper_dir.join("_tagged");
    for level1 in read_dirs(&tagged) {
        for level2 in read_dirs(&level1) {
            let Ok(files) = std::fs::read_dir(&level2) else {
                continue;
            };
            for f in files.flatten() {
                if !f.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let file_name = f.file_name();
                let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".wsp")) else {
                    continue;
                };
                if stem.starts_with('.') || !stem.contains(';') {
                    continue;
                }
                visit(&stem.replace("_DOT_", "."), &f.path())?;
            }
        }
    }
    ControlFlow::Continue(())
}

/// The sub-directories of `dir` (not following links).
fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Where the migration of the file at `path` writes its new file: beside it, hidden,
/// `.<file name>.migrating` (`a/b/.c.wsp.migrating` for `a/b/c.wsp`).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{}.migrating", name))
}

/// Removes every migration temporary file (`.*.wsp.migrating`, regular files only) under
/// `whisper_dir`, left by a migration a crash interrupted; returns how many. Follows no link.
pub fn remove_temp_files(whisper_dir: &Path) -> usize {
    fn clean(dir: &Path, removed: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if ft.is_dir() {
                clean(&entry.path(), removed);
            } else if ft.is_file()
                && name.starts_with('.')
                && name.ends_with(TEMP_SUFFIX)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                *removed += 1;
            }
        }
    }
    let mut removed = 0;
    clean(whisper_dir, &mut removed);
    removed
}

/// What `/health` reports under `retentions` (see `api::health`). Counts are those of the
/// last scan (reset when one starts), `migrated` and `failed` of its migrations.
#[derive(Debug, Default)]
pub struct RetentionStatus {
    /// Whisper headers read by the scan.
    pub checked: AtomicU64,
    /// Files found whose archives differ from their rule's.
    pub mismatched: AtomicU64,
    /// Files whose aggregationMethod or xFilesFactor differs from storage-aggregation.conf's
    /// (reported only; see [`AggregationMismatch`]).
    pub aggregation_mismatched: AtomicU64,
    /// Mismatched files rewritten to their rule's archives.
    pub migrated: AtomicU64,
    /// Migrations that failed (the old file is kept; logged with the reason).
    pub failed: AtomicU64,
    /// Whether `[cache] migrate_retentions` is on.
    pub migrate: AtomicBool,
    /// Whether a scan is under way (`"running"`; `"done"` otherwise); set as the scanner
    /// starts, so `/health` never says done before the first scan ends.
    pub running: AtomicBool,
    /// The first [`EXAMPLES_KEPT`] mismatches the scan met.
    pub examples: Mutex<Vec<Mismatch>>,
}

impl RetentionStatus {
    /// Nothing scanned yet, no scan running.
    pub fn new() -> RetentionStatus {
        RetentionStatus::default()
    }

    fn begin(&self) {
        for c in [
            &self.checked,
            &self.mismatched,
            &self.migrated,
            &self.failed,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.examples.lock().clear();
        self.running.store(true, Ordering::Relaxed);
    }

    fn found(&self, m: &Mismatch) {
        self.mismatched.fetch_add(1, Ordering::Relaxed);
        let mut examples = self.examples.lock();
        if examples.len() < EXAMPLES_KEPT {
            examples.push(m.clone());
        }
    }
}

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Reading the old file or writing the new one failed.
    #[error(transparent)]
    Whisper(#[from] WhisperError),
    /// The swap or a clean-up failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file found is not where the store writes this metric (an odd tagged name).
    #[error("{} is not the file the store writes for {metric}; left as it is", path.display())]
    NotTheStoreFile {
        /// The metric.
        metric: String,
        /// The file found.
        path: PathBuf,
    },
    /// A persister write stayed in flight longer than 30 s.
    #[error("a write of {0} stayed in flight for 30 s; migration skipped")]
    Busy(String),
}

/// Rewrites the file of `m` to its rule's archives, holding the metric off the persister
/// meanwhile (see the module doc for the steps). Returns the new file's size in bytes.
pub fn migrate_file(store: &Store, m: &Mismatch) -> Result<u64, MigrateError> {
    if store.path_of(&m.metric).as_deref() != Some(m.path.as_path()) {
        return Err(MigrateError::NotTheStoreFile {
            metric: m.metric.clone(),
            path: m.path.clone(),
        });
    }
    let temp = temp_path(&m.path);
    let busy = store.cache.hold(&m.metric);
    let result = (|| {
        if busy {
            let since = Instant::now();
            while store.cache.in_flight(&m.metric) {
                if since.elapsed() > IN_FLIGHT_WAIT {
                    return Err(MigrateError::Busy(m.metric.clone()));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        rewrite(store, m, &temp)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    store.cache.release(&m.metric);
    result
}

/// Steps 2 and 3 of a migration, the metric held.
fn rewrite(store: &Store, m: &Mismatch, temp: &Path) -> Result<u64, MigrateError> {
    let now = unix_now();
    let old = WhisperFile::open(&m.path)?;
    let header = old.header().clone();
    let data = read_archives(&old, now)?;
    drop(old);
    match std::fs::remove_file(temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(MigrateError::Io {
                path: temp.to_path_buf(),
                source,
            })
        }
    }
    let opts = CreateOptions {
        x_files_factor: header.x_files_factor,
        aggregation_method: header.aggregation_method,
        preallocation: store.preallocation,
    };
    create(temp, &m.rule_retentions, opts)?;
    let mut new = WhisperFile::open_rw(temp)?;
    aggregate_into(
        &data,
        &mut new,
        f64::from(header.x_files_factor),
        header.aggregation_method,
        now,
    )?;
    let size = new.header().file_size();
    drop(new);
    let io = |source| MigrateError::Io {
        path: temp.to_path_buf(),
        source,
    };
    // On disk before the rename, so a crash after it finds the whole new file.
    std::fs::File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(temp, &m.path).map_err(io)?;
    store.readers.evict(&m.metric);
    Ok(size)
}

/// Waits for the next item of a paced loop: at most `per_second` a second, and — for work
/// measured in bytes — at most `bytes_per_second` of them. Sleeps in short slices so that
/// `interrupted` (a stop or a new scan) is noticed quickly; returns `false` then.
struct Pacer {
    next: Instant,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer {
            next: Instant::now(),
        }
    }

    /// Books `cost` (a duration of the budget) and waits until it is due.
    fn wait(&mut self, cost: Duration, interrupted: &dyn Fn() -> bool) -> bool {
        let now = Instant::now();
        if self.next < now {
            self.next = now;
        }
        self.next += cost;
        while Instant::now() < self.next {
            if interrupted() {
                return false;
            }
            let left = self.next.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        !interrupted()
    }
}

struct Shared {
    /// A scan was asked for (start-up, SIGHUP) and has not begun yet.
    requested: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || *self.requested.lock()
    }
}

/// The background scan (and migration) thread. Share it in an `Arc` (SIGHUP asks it for a
/// rescan, the shutdown sequence stops it). Dropping it without [`RetentionScanner::stop`]
/// leaves the thread to finish alone.
pub struct RetentionScanner {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl RetentionScanner {
    /// Starts the thread: it removes temporary files a crash left, then scans at once.
    /// `migrate` is `[cache] migrate_retentions`, `per_second` `[cache] migrate_per_second`
    /// (files migrated per second at most, ≥ 1).
    pub fn start(store: Arc<Store>, migrate: bool, per_second: u32) -> RetentionScanner {
        store.retentions.migrate.store(migrate, Ordering::Relaxed);
        store.retentions.running.store(true, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            requested: Mutex::new(true),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let handle = std::thread::Builder::new()
            .name("retention-scan".into())
            .spawn(move || run(&store, &worker, migrate, per_second.max(1)))
            .expect("spawn retention scan thread");
        RetentionScanner {
            shared,
            handle: Mutex::new(Some(handle)),
        }
    }

    /// Asks for a new scan (after SIGHUP reloaded the rules): a scan under way stops at its
    /// next file and starts over with the new rules.
    pub fn rescan(&self) {
        *self.shared.requested.lock() = true;
        self.shared.wake.notify_all();
    }

    /// Stops the thread after the file it is on (a migration under way finishes and releases
    /// its metric) and waits for it. Call before the persisters' final flush.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        let handle = self.handle.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn run(store: &Store, shared: &Shared, migrate: bool, per_second: u32) {
    // After the start scan of the metric index, which it would only slow down (both read
    // every directory); checking for a stop every second meanwhile.
    while !store.wait_for_index(Some(std::time::Duration::from_secs(1))) {
        if shared.stop.load(Ordering::Relaxed) {
            store.retentions.running.store(false, Ordering::Relaxed);
            return;
        }
    }
    let removed = remove_temp_files(store.whisper_dir());
    if removed > 0 {
        tracing::info!(
            "removed {removed} temporary files of interrupted retention migrations under {}",
            store.whisper_dir().display()
        );
    }
    loop {
        {
            let mut requested = shared.requested.lock();
            while !*requested && !shared.stop.load(Ordering::Relaxed) {
                shared.wake.wait(&mut requested);
            }
            if shared.stop.load(Ordering::Relaxed) {
                store.retentions.running.store(false, Ordering::Relaxed);
                return;
            }
            *requested = false;
        }
        scan(store, shared, migrate, per_second);
    }
}

/// One scan; returns early (counts as they are) when interrupted.
fn scan(store: &Store, shared: &Shared, migrate: bool, per_second: u32) {
    let status = &store.retentions;
    status.begin();
    let rules = store.rules();
    let started = Instant::now();
    let interrupted = || shared.interrupted();
    let mut scan_pace = Pacer::new();
    let mut migrate_pace = Pacer::new();
    let per_file = Duration::from_secs(1) / SCAN_FILES_PER_SECOND;
    let per_migration = Duration::from_secs(1) / per_second;
    let log = RateLimitedLog::new(Duration::from_secs(10), 20);
    let flow = walk_whisper_files(store.whisper_dir(), &mut |metric, path| {
        if !scan_pace.wait(per_file, &interrupted) {
            return ControlFlow::Break(());
        }
        let Ok(file) = WhisperFile::open(path) else {
            // Unreadable: the reads report it (`corrupt_files`); nothing to compare.
            return ControlFlow::Continue(());
        };
        status.checked.fetch_add(1, Ordering::Relaxed);
        if aggregation_mismatch_of(metric, file.header(), &rules).is_some() {
            status
                .aggregation_mismatched
                .fetch_add(1, Ordering::Relaxed);
        }
        let Some(m) = mismatch_of(metric, path, file.header(), &rules) else {
            return ControlFlow::Continue(());
        };
        drop(file);
        status.found(&m);
        if !migrate {
            return ControlFlow::Continue(());
        }
        let began = Instant::now();
        match migrate_file(store, &m) {
            Ok(bytes) => {
                status.migrated.fetch_add(1, Ordering::Relaxed);
                if log.allow() {
                    tracing::info!(
                        "retentions of {} migrated from {} to {} (rule {}) in {:?}",
                        m.metric,
                        retentions_string(&m.file_retentions),
                        retentions_string(&m.rule_retentions),
                        m.rule_name(),
                        began.elapsed()
                    );
                }
                let by_bytes =
                    Duration::from_secs_f64(bytes as f64 / MIGRATE_BYTES_PER_SECOND as f64);
                let paced = migrate_pace.wait(per_migration.max(by_bytes), &interrupted);
                // Once more, a moment later: a reader that opened the old file just before the
                // rename may have put it back in the open-reader cache after the first evict.
                store.readers.evict(&m.metric);
                if !paced {
                    return ControlFlow::Break(());
                }
            }
            Err(e) => {
                status.failed.fetch_add(1, Ordering::Relaxed);
                log.warn(format_args!(
                    "retention migration of {} failed, old file kept: {e}",
                    m.metric
                ));
            }
        }
        ControlFlow::Continue(())
    });
    status.running.store(false, Ordering::Relaxed);
    if flow.is_break() {
        return;
    }
    let (checked, mismatched, migrated, failed) = (
        status.checked.load(Ordering::Relaxed),
        status.mismatched.load(Ordering::Relaxed),
        status.migrated.load(Ordering::Relaxed),
        status.failed.load(Ordering::Relaxed),
    );
    if mismatched == 0 {
        tracing::info!(
            "retention scan: {checked} whisper files match storage-schemas.conf ({:?})",
            started.elapsed()
        );
    } else if !migrate {
        tracing::warn!(
            "retention scan: {mismatched} of {checked} whisper files have retentions other \
             than storage-schemas.conf gives them (see /health or `carbonhound check-config \
             --data`); set [cache] migrate_retentions = true to migrate them online"
        );
    } else if failed > 0 {
        tracing::warn!(
            "retention migration: {migrated} of {mismatched} mismatched files migrated, \
             {failed} failed (old files kept; retried at the next scan) in {:?}",
            started.elapsed()
        );
    } else {
        tracing::info!(
            "retention migration: {migrated} of {checked} whisper files migrated to their \
             storage-schemas.conf retentions in {:?}",
            started.elapsed()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_schemas;
    use crate::whisper::{AggregationMethod, Preallocation};

    fn make_rules(text: &str) -> StorageRules {
        StorageRules::new(parse_schemas(text, "t").unwrap(), vec![])
    }

    fn r(seconds_per_point: u32, points: u32) -> Retention {
        Retention {
            seconds_per_point,
            points,
        }
    }

    #[test]
    fn a_mismatch_is_a_different_archive_list() {
        let rules = make_rules(
            "[web]\npattern = ^web\\.\nretentions = 60s:7d,10m:30d\n\
             [rest]\npattern = .*\nretentions = 60s:1d\n",
        );
        let header =
            |archives: &[Retention], xff, method| Header::for_archives(archives, xff, method);
        let avg = AggregationMethod::Average;
        let p = Path::new("w.wsp");
        // Same archives: no mismatch, whatever the aggregation.
        assert_eq!(
            mismatch_of(
                "other.x",
                p,
                &header(&[r(60, 1440)], 0.1, AggregationMethod::Sum),
                &rules
            ),
            None
        );
        let m = mismatch_of("web.x", p, &header(&[r(60, 1440)], 0.5, avg), &rules).unwrap();
        assert_eq!(m.file_retentions, vec![r(60, 1440)]);
        assert_eq!(m.rule.as_deref(), Some("web"));
        assert_eq!(m.rule_retentions, vec![r(60, 10080), r(600, 4320)]);
        assert_eq!(retentions_string(&m.rule_retentions), "1m:7d,10m:30d");
        assert_eq!(retentions_string(&m.file_retentions), "1m:1d");
        // Same precisions, different lengths; or an archive more: mismatches too.
        assert!(mismatch_of("other.x", p, &header(&[r(60, 1441)], 0.5, avg), &rules).is_some());
        assert!(mismatch_of(
            "web.x",
            p,
            &header(&[r(60, 10080), r(600, 4320), r(3600, 100)], 0.5, avg),
            &rules
        )
        .is_some());
        // No rule at all: carbon's default.
        let none = make_rules("[web]\npattern = ^web\\.\nretentions = 10s:1h\n");
        let m = mismatch_of("x", p, &header(&[r(10, 360)], 0.5, avg), &none).unwrap();
        assert_eq!(
            (m.rule_name(), m.rule_retentions.clone()),
            ("(carbon default)", vec![r(60, 10080)])
        );
        assert_eq!(retentions_string(&[r(7, 3)]), "7s:21s");
    }

    #[test]
    fn aggregation_mismatches_are_told_apart() {
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 60s:1d\n", "t").unwrap(),
            crate::config::parse_aggregation(
                "[sums]\npattern = \\.count$\nxFilesFactor = 0\naggregationMethod = sum\n",
                "t",
            )
            .unwrap(),
        );
        let h = Header::for_archives(&[r(60, 1440)], 0.5, AggregationMethod::Average);
        assert_eq!(aggregation_mismatch_of("a.b", &h, &rules), None);
        let m = aggregation_mismatch_of("a.count", &h, &rules).unwrap();
        assert_eq!(m.file, (AggregationMethod::Average, 0.5));
        assert_eq!(m.rule, (AggregationMethod::Sum, 0.0));
        assert_eq!(mismatch_of("a.count", Path::new("x"), &h, &rules), None);
    }

    #[test]
    fn temp_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::create_dir_all(d.join("_tagged/abc/def")).unwrap();
        for f in [
            "a/b/.c.wsp.migrating",
            "a/.d.wsp.migrating",
            "_tagged/abc/def/.x;t=v.wsp.migrating",
            "a/b/c.wsp",
            "a/c.wsp.migrating",
            "a/.hidden",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join(".o.wsp.migrating"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("link")).unwrap();
        assert_eq!(remove_temp_files(d), 3);
        assert!(d.join("a/b/c.wsp").exists());
        assert!(d.join("a/c.wsp.migrating").exists(), "not hidden: not ours");
        assert!(d.join("a/.hidden").exists());
        assert!(
            outside.path().join(".o.wsp.migrating").exists(),
            "links not followed"
        );
        assert_eq!(
            temp_path(&d.join("a/b/c.wsp")),
            d.join("a/b/.c.wsp.migrating")
        );
        assert_eq!(remove_temp_files(d), 0);
    }

    #[test]
    fn the_walk_names_plain_and_tagged_files_and_skips_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::create_dir_all(d.join("_tagged/abc/def")).unwrap();
        for f in [
            "a/b/c.wsp",
            "a/b/.c.wsp.migrating",
            "a/d.wsp",
            "_tagged/abc/def/cpu_DOT_load;host=h1.wsp",
            "_tagged/abc/def/0123abcd.wsp",
        ] {
            std::fs::write(d.join(f), b"").unwrap();
        }
        let mut seen = Vec::new();
        let _ = walk_whisper_files(d, &mut |m, p| {
            seen.push((m.to_string(), p.strip_prefix(d).unwrap().to_path_buf()));
            ControlFlow::Continue(())
        });
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("a.b.c".to_string(), PathBuf::from("a/b/c.wsp")),
                ("a.d".to_string(), PathBuf::from("a/d.wsp")),
                (
                    "cpu.load;host=h1".to_string(),
                    PathBuf::from("_tagged/abc/def/cpu_DOT_load;host=h1.wsp")
                ),
            ]
        );
    }

    #[test]
    fn a_migration_keeps_every_point_and_the_held_ones_land_in_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(
                dir.path(),
                make_rules("[all]\npattern = .*\nretentions = 60s:1d\n"),
                100_000,
                Preallocation::Sparse,
                0,
            )
            .unwrap(),
        );
        let now = unix_now();
        let base = now - now % 60 - 3600;
        for i in 0..30 {
            store.insert("a.b", base + 60 * i, i as f64);
        }
        super::super::Persisters::start(store.clone(), 1, Duration::ZERO).flush_and_stop();
        store.set_rules(make_rules(
            "[all]\npattern = .*\nretentions = 60s:7d,10m:30d\n",
        ));
        let path = dir.path().join("a/b.wsp");
        let header = WhisperFile::open(&path).unwrap().header().clone();
        let m = mismatch_of("a.b", &path, &header, &store.rules()).unwrap();
        // A point arriving during the migration waits in the cache.
        store.cache.hold("a.b");
        store.insert("a.b", base + 60 * 30, 30.0);
        store.cache.release("a.b");
        migrate_file(&store, &m).unwrap();
        assert!(!temp_path(&path).exists());
        let header = WhisperFile::open(&path).unwrap().header().clone();
        assert_eq!(file_retentions(&header), vec![r(60, 10080), r(600, 4320)]);
        super::super::Persisters::start(store.clone(), 1, Duration::ZERO).flush_and_stop();
        let f = store.fetch("a.b", base - 60, now, now).unwrap().unwrap();
        assert_eq!(f.step, 60);
        for i in 0..=30 {
            let at = ((base + 60 * i - f.start) / 60) as usize;
            assert_eq!(f.values[at], Some(i as f64), "point {i}");
        }
    }
}
