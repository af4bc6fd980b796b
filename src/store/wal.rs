//! The write-ahead log: every point a listener accepts is appended to a segment file under
//! `data_dir/wal` before it enters the cache, so a crash of the process (SIGKILL, a panic, the
//! OOM killer) loses at most the points of the last `[cache] wal_sync` interval instead of the
//! whole cache. A segment goes once its points are in whisper's page cache, not once they are
//! on the disk (whisper files are never fsynced, as in carbon), so a power loss can also lose
//! what the kernel had not yet written back (README, "Durability"). At start
//! [`Wal::open`] replays every segment into the cache; a clean shutdown flushes the cache to
//! whisper and removes the log ([`Wal::finish`]).
//!
//! Never reads a whisper file, never writes outside its directory, and never drops a point:
//! a failed append is logged (rate-limited) and counted, and the point still enters the cache.
//!
//! # Format
//!
//! A segment is a sequence of records, one per listener read ([`Points`]): a 12-byte header
//! — magic `b"CWAL"`, payload length (u32 LE), CRC-32 of the payload (u32 LE) — then the
//! payload, one entry per point: name length (u32 LE), name (UTF-8), timestamp (i64 LE),
//! value (f64 bits LE). Segments are named `<id>.wal` (20 digits, ids increase) and are
//! rotated at [`ROTATE_BYTES`] or when older than [`ROTATE_AGE`].
//!
//! A delete or rename of metrics ([`super::Store::delete`], [`super::Store::rename`]) writes a
//! tombstone record: magic `b"CWAT"`, the same length and CRC-32, then one entry per metric —
//! kind (u8: 1 delete, 2 rename), name length (u32 LE), name, and for a rename the new name's
//! length and the new name. Replay applies it in log order through its second callback: the
//! points of that name replayed so far are dropped (delete) or moved to the new name (rename),
//! so a restart never brings back what was deleted, while a point logged after the tombstone
//! (the metric recreated) is replayed as any other.
//!
//! Replay checks each record's magic, length and checksum. A bad record followed by a good one
//! (found by scanning for the next valid header) is skipped with a counted WARN; a bad record
//! with nothing valid after it is a torn tail (a write cut by the crash): the file is truncated
//! there and replay goes on with the next segment.
//!
//! # When a segment may go
//!
//! A closed segment may be deleted once every point it holds is in a whisper file. Each cache
//! entry remembers the lowest segment id of its queued points and of its in-flight points
//! (`Cache::oldest_segment` takes the minimum over all entries); the persister's `finish`
//! forgets the in-flight one, a `requeue` keeps it. A point reaches the cache only after its
//! append returned, so in between it is counted in its segment's `unsettled` counter (the
//! [`Ticket`]). [`Wal::collect`], called about once a second by a persister, takes the closed
//! segments whose `unsettled` is zero (final: a closed segment takes no appends), *then* scans
//! the cache, and deletes those older than the oldest id still referenced — oldest first,
//! stopping at the first that must stay, so the segments left are always the newest ones and a
//! replay (in id order, a timestamp's last value winning) never puts an older value over a
//! newer one already in whisper. This works under
//! continuous load, when the cache is never empty: a segment goes once the metrics it touched
//! have each been written once since. If closed segments pile up past [`PILE_UP_BYTES`] (the
//! disk is full, or the persisters cannot keep up) an ERROR says so once a minute; nothing is
//! deleted early.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::WalSync;
use crate::ratelimit::RateLimitedLog;

/// The segment id of a cached point that is in no segment (no WAL, or a self metric).
pub const NO_SEGMENT: u64 = u64::MAX;
/// A segment is closed and a new one started once it holds this many bytes.
pub const ROTATE_BYTES: u64 = 64 << 20;
/// …or once it is this old and not empty (so an idle server's last points can be dropped).
pub const ROTATE_AGE: Duration = Duration::from_secs(60);
/// Closed segments waiting for the persisters beyond this many bytes are logged as an ERROR.
pub const PILE_UP_BYTES: u64 = 4 << 30;

const MAGIC: &[u8; 4] = b"CWAL";
/// The magic of a tombstone record (deletes and renames).
const TOMBSTONE_MAGIC: &[u8; 4] = b"CWAT";
const KIND_DELETE: u8 = 1;
const KIND_RENAME: u8 = 2;
const HEADER: usize = 12;

/// The points of one listener read, encoded as one WAL record: appended with one `write`,
/// then inserted into the cache ([`super::Store::insert_points`]).
#[derive(Debug, Clone)]
pub struct Points {
    buf: Vec<u8>,
    count: u64,
}

impl Default for Points {
    fn default() -> Self {
        Points::new()
    }
}

impl Points {
    /// An empty batch.
    pub fn new() -> Points {
        Points {
            buf: vec![0; HEADER],
            count: 0,
        }
    }

    /// Adds one point.
    pub fn push(&mut self, name: &str, timestamp: i64, value: f64) {
        self.buf.reserve(name.len() + 20);
        self.buf
            .extend_from_slice(&(name.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(&timestamp.to_le_bytes());
        self.buf.extend_from_slice(&value.to_bits().to_le_bytes());
        self.count += 1;
    }

    /// Points in the batch.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the batch holds no point.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.truncate(HEADER);
        self.count = 0;
    }

    /// The points, in the order pushed.
    pub fn iter(&self) -> PointIter<'_> {
        PointIter(&self.buf[HEADER..])
    }

    /// The record: header filled in, then the payload.
    fn seal(&mut self) -> &[u8] {
        let len = (self.buf.len() - HEADER) as u32;
        let crc = crc32fast::hash(&self.buf[HEADER..]);
        self.buf[0..4].copy_from_slice(MAGIC);
        self.buf[4..8].copy_from_slice(&len.to_le_bytes());
        self.buf[8..12].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }
}

/// The points of a record's payload. Stops at the first malformed entry (only a checked
/// payload is iterated, see [`payload_is_valid`]).
pub struct PointIter<'a>(&'a [u8]);

impl<'a> Iterator for PointIter<'a> {
    type Item = (&'a str, i64, f64);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        let len = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
        let end = 4usize.checked_add(len)?;
        let name = std::str::from_utf8(b.get(4..end)?).ok()?;
        let ts = i64::from_le_bytes(b.get(end..end + 8)?.try_into().ok()?);
        let v = f64::from_bits(u64::from_le_bytes(
            b.get(end + 8..end + 16)?.try_into().ok()?,
        ));
        self.0 = &b[end + 16..];
        Some((name, ts, v))
    }
}

/// Whether a payload decodes completely into points.
fn payload_is_valid(mut b: &[u8]) -> bool {
    while !b.is_empty() {
        let Some(len) = b.get(0..4) else { return false };
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        let Some(end) = 4usize.checked_add(len).and_then(|e| e.checked_add(16)) else {
            return false;
        };
        if b.len() < end || std::str::from_utf8(&b[4..4 + len]).is_err() {
            return false;
        }
        b = &b[end..];
    }
    true
}

/// One entry of a tombstone record: what a delete or rename did to one metric, replayed in
/// log order (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tombstone {
    /// The metric was deleted: its points logged before this are gone.
    Delete(String),
    /// The metric was renamed: its points logged before this belong to the new name.
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// A tombstone record (header and payload) of `entries`.
fn tombstone_record(entries: &[Tombstone]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER];
    for t in entries {
        match t {
            Tombstone::Delete(name) => {
                buf.push(KIND_DELETE);
                push_str(&mut buf, name);
            }
            Tombstone::Rename { from, to } => {
                buf.push(KIND_RENAME);
                push_str(&mut buf, from);
                push_str(&mut buf, to);
            }
        }
    }
    let len = (buf.len() - HEADER) as u32;
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[0..4].copy_from_slice(TOMBSTONE_MAGIC);
    buf[4..8].copy_from_slice(&len.to_le_bytes());
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// Reads a length-prefixed string at the front of `b`: (string, rest).
fn take_str(b: &[u8]) -> Option<(&str, &[u8])> {
    let len = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    let s = std::str::from_utf8(b.get(4..end)?).ok()?;
    Some((s, &b[end..]))
}

/// The entries of a tombstone payload; `None` when it does not decode completely.
fn tombstones(mut b: &[u8]) -> Option<Vec<Tombstone>> {
    let mut out = Vec::new();
    while let Some((&kind, rest)) = b.split_first() {
        let (name, rest) = take_str(rest)?;
        match kind {
            KIND_DELETE => {
                out.push(Tombstone::Delete(name.to_string()));
                b = rest;
            }
            KIND_RENAME => {
                let (to, rest) = take_str(rest)?;
                out.push(Tombstone::Rename {
                    from: name.to_string(),
                    to: to.to_string(),
                });
                b = rest;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// What a valid record holds.
enum Record<'a> {
    /// A point batch's payload.
    Points(&'a [u8]),
    /// A tombstone's entries.
    Tombstones(Vec<Tombstone>),
}

/// The record starting at `off` if it is whole and its checksum matches: (record, next
/// offset).
fn record_at(data: &[u8], off: usize) -> Option<(Record<'_>, usize)> {
    let h = data.get(off..off.checked_add(HEADER)?)?;
    let tombstone = match &h[0..4] {
        m if m == MAGIC => false,
        m if m == TOMBSTONE_MAGIC => true,
        _ => return None,
    };
    let len = u32::from_le_bytes(h[4..8].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(h[8..12].try_into().ok()?);
    let start = off + HEADER;
    let payload = data.get(start..start.checked_add(len)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let record = if tombstone {
        Record::Tombstones(tombstones(payload)?)
    } else {
        payload_is_valid(payload).then_some(Record::Points(payload))?
    };
    Some((record, start + len))
}

/// What [`Wal::open`] found and replayed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segments read.
    pub segments: usize,
    /// Points handed to the cache.
    pub points: u64,
    /// Damaged records skipped in the middle of a segment.
    pub skipped_records: u64,
    /// Bytes of torn tails cut off (a record half-written at the crash).
    pub truncated_bytes: u64,
    /// Tombstone entries applied (metrics deleted or renamed while the log was kept).
    pub tombstones: u64,
}

/// The log's size, for `/health` and the self metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalInfo {
    /// Segment files, the open one included.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Appends or syncs that failed (their points are in the cache, not in the log).
    pub errors: u64,
}

/// A point batch's place in the log, held until its points are in the cache (so
/// [`Wal::collect`] does not delete a segment whose points are on their way there).
pub struct Ticket {
    /// The segment the batch went to.
    pub segment: u64,
    unsettled: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.unsettled.fetch_sub(1, Ordering::Release);
    }
}

struct Segment {
    id: u64,
    bytes: u64,
    unsettled: Arc<AtomicUsize>,
}

struct State {
    file: Arc<File>,
    current: Segment,
    opened: Instant,
    /// Written since the last sync.
    dirty: bool,
    closed: Vec<Segment>,
    /// Closed files not yet synced (the sync thread does it).
    unsynced: Vec<Arc<File>>,
    finished: bool,
}

struct Shared {
    dir: PathBuf,
    sync: WalSync,
    state: Mutex<State>,
    stop: Mutex<bool>,
    wake: Condvar,
    errors: AtomicU64,
    log: RateLimitedLog,
    pile_up: RateLimitedLog,
}

/// The write-ahead log. Appends from any thread; a background thread syncs it.
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// The segment ids in `dir`, ascending (other files are left alone).
fn segment_ids(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let stem = name.to_str()?.strip_suffix(".wal")?;
            stem.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn create_segment(dir: &Path, id: u64) -> std::io::Result<File> {
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(segment_path(dir, id))
}

/// Reads one segment, handing each point to `point` and each tombstone entry to
/// `tombstone`, in log order; cuts a torn tail off the file.
fn replay_segment(
    path: &Path,
    report: &mut ReplayReport,
    point: &mut impl FnMut(&str, i64, f64),
    tombstone: &mut impl FnMut(&Tombstone),
) -> std::io::Result<()> {
    let data = std::fs::read(path)?;
    let mut off = 0;
    while off < data.len() {
        if let Some((record, next)) = record_at(&data, off) {
            match record {
                Record::Points(payload) => {
                    for (name, ts, v) in PointIter(payload) {
                        point(name, ts, v);
                        report.points += 1;
                    }
                }
                Record::Tombstones(entries) => {
                    for t in &entries {
                        tombstone(t);
                        report.tombstones += 1;
                    }
                }
            }
            off = next;
            continue;
        }
        match (off + 1..data.len()).find(|&o| record_at(&data, o).is_some()) {
            Some(o) => {
                report.skipped_records += 1;
                tracing::warn!(
                    "write-ahead log {}: damaged record at byte {off} skipped ({} bytes)",
                    path.display(),
                    o - off
                );
                off = o;
            }
            None => {
                let torn = (data.len() - off) as u64;
                report.truncated_bytes += torn;
                tracing::warn!(
                    "write-ahead log {}: torn last record ({torn} bytes at byte {off}) cut off",
                    path.display()
                );
                OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_len(off as u64)?;
                break;
            }
        }
    }
    Ok(())
}

impl Wal {
    /// Opens the log in `dir` (created if missing): replays every segment in order through
    /// `point(segment id, name, timestamp, value)` and `tombstone(entry)` (a delete or rename,
    /// applied to the points replayed before it), keeps them as closed segments (deleted once
    /// their points are persisted), starts a new segment and the sync thread.
    pub fn open(
        dir: &Path,
        sync: WalSync,
        mut point: impl FnMut(u64, &str, i64, f64),
        mut tombstone: impl FnMut(&Tombstone),
    ) -> std::io::Result<(Wal, ReplayReport)> {
        std::fs::create_dir_all(dir)?;
        let mut report = ReplayReport::default();
        let mut closed = Vec::new();
        let ids = segment_ids(dir)?;
        for &id in &ids {
            let path = segment_path(dir, id);
            replay_segment(
                &path,
                &mut report,
                &mut |n, t, v| point(id, n, t, v),
                &mut tombstone,
            )?;
            report.segments += 1;
            closed.push(Segment {
                id,
                bytes: std::fs::metadata(&path)?.len(),
                unsettled: Arc::new(AtomicUsize::new(0)),
            });
        }
        let id = ids.last().map_or(0, |l| l + 1);
        let file = create_segment(dir, id)?;
        sync_dir(dir)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            sync,
            state: Mutex::new(State {
                file: Arc::new(file),
                current: Segment {
                    id,
                    bytes: 0,
                    unsettled: Arc::new(AtomicUsize::new(0)),
                },
                opened: Instant::now(),
                dirty: false,
                closed,
                unsynced: Vec::new(),
                finished: false,
            }),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            errors: AtomicU64::new(0),
            log: RateLimitedLog::new(Duration::from_secs(10), 5),
            pile_up: RateLimitedLog::new(Duration::from_secs(60), 1),
        });
        let bg = shared.clone();
        let syncer = std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || bg.run_syncer())?;
        Ok((
            Wal {
                shared,
                syncer: Mutex::new(Some(syncer)),
            },
            report,
        ))
    }

    /// Appends `points` as one record (one `write`); with `wal_sync = "always"` also syncs
    /// before returning. Hold the ticket until the points are in the cache.
    pub fn append(&self, points: &mut Points) -> Ticket {
        let sh = &*self.shared;
        let record = points.seal();
        let mut st = sh.state.lock();
        if !st.finished
            && (st.current.bytes >= ROTATE_BYTES
                || (st.current.bytes > 0 && st.opened.elapsed() >= ROTATE_AGE))
        {
            sh.rotate(&mut st);
        }
        let ticket = Ticket {
            segment: st.current.id,
            unsettled: st.current.unsettled.clone(),
        };
        ticket.unsettled.fetch_add(1, Ordering::AcqRel);
        if st.finished {
            return ticket;
        }
        let written = (&*st.file).write_all(record);
        st.current.bytes += record.len() as u64;
        st.dirty = true;
        let synced = match (written, sh.sync) {
            (Ok(()), WalSync::Always) => st.file.sync_data().map(|()| st.dirty = false),
            (r, _) => r,
        };
        if let Err(e) = synced {
            sh.failed("append", &e);
        }
        ticket
    }

    /// Logs a delete or rename of metrics as one tombstone record, synced before returning
    /// whatever `wal_sync` says: the caller removes the files next, and a crash after that
    /// must not replay the old points. A failed write or sync is logged and counted, and
    /// returned so the caller can refuse the operation.
    pub fn append_tombstones(&self, entries: &[Tombstone]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let sh = &*self.shared;
        let record = tombstone_record(entries);
        let mut st = sh.state.lock();
        if st.finished {
            return Ok(());
        }
        let result = (&*st.file)
            .write_all(&record)
            .and_then(|()| st.file.sync_data());
        st.current.bytes += record.len() as u64;
        match result {
            Ok(()) => {
                st.dirty = false;
                Ok(())
            }
            Err(e) => {
                st.dirty = true;
                sh.failed("tombstone append", &e);
                Err(e)
            }
        }
    }

    /// Deletes the closed segments whose points are all on disk. `oldest_in_cache` answers
    /// the lowest segment id any cached point still comes from (see the module doc).
    pub fn collect(&self, oldest_in_cache: impl FnOnce() -> u64) {
        let sh = &*self.shared;
        let settled: Vec<u64> = {
            let st = sh.state.lock();
            st.closed
                .iter()
                .filter(|s| s.unsettled.load(Ordering::Acquire) == 0)
                .map(|s| s.id)
                .collect()
        };
        if settled.is_empty() {
            return;
        }
        let oldest = oldest_in_cache();
        let mut st = sh.state.lock();
        // Oldest first, and only a prefix: what stays is always every segment from some id on,
        // so a replay never applies an older value over a newer one from a deleted segment.
        let go = st
            .closed
            .iter()
            .take_while(|s| s.id < oldest && settled.contains(&s.id))
            .count();
        let deleted: Vec<u64> = st.closed.drain(..go).map(|s| s.id).collect();
        let waiting: u64 = st.closed.iter().map(|s| s.bytes).sum();
        let waiting_segments = st.closed.len();
        drop(st);
        for id in deleted {
            if let Err(e) = std::fs::remove_file(segment_path(&sh.dir, id)) {
                sh.failed("delete", &e);
            }
        }
        if waiting > PILE_UP_BYTES {
            sh.pile_up.error(format_args!(
                "write-ahead log {}: {waiting_segments} segments ({waiting} bytes) wait for \
                 their points to be written to whisper; nothing is lost, but the disk fills. \
                 Is the disk full or are the persisters behind?",
                sh.dir.display()
            ));
        }
    }

    /// Stops the sync thread. With `persisted` (every logged point is in whisper) deletes
    /// every segment; otherwise syncs and keeps them, to be replayed at the next start.
    /// Appends after this write nothing.
    pub fn finish(&self, persisted: bool) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.syncer.lock().take() {
            let _ = h.join();
        }
        let sh = &*self.shared;
        let mut st = sh.state.lock();
        st.finished = true;
        if persisted {
            let current = st.current.id;
            let ids: Vec<u64> = st.closed.drain(..).map(|s| s.id).chain([current]).collect();
            st.current.bytes = 0;
            for id in ids {
                if let Err(e) = std::fs::remove_file(segment_path(&sh.dir, id)) {
                    sh.failed("delete", &e);
                }
            }
            let _ = sync_dir(&sh.dir);
        } else {
            let _ = st.file.sync_data();
            tracing::warn!(
                "write-ahead log {} kept: not every point reached whisper; it is replayed at \
                 the next start",
                sh.dir.display()
            );
        }
    }

    /// Segments and bytes now, and the failures counted since start.
    pub fn info(&self) -> WalInfo {
        let st = self.shared.state.lock();
        let open = usize::from(!st.finished || st.current.bytes > 0);
        WalInfo {
            segments: st.closed.len() + open,
            bytes: st.closed.iter().map(|s| s.bytes).sum::<u64>() + st.current.bytes,
            errors: self.shared.errors.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn failed(&self, what: &str, e: &std::io::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.log.error(format_args!(
            "write-ahead log {}: {what} failed: {e}; the points are in the cache but would not \
             survive a crash",
            self.dir.display()
        ));
    }

    /// Closes the current segment and opens the next. On failure the current one goes on.
    fn rotate(&self, st: &mut State) {
        let id = st.current.id + 1;
        let file = match create_segment(&self.dir, id) {
            Ok(f) => Arc::new(f),
            Err(e) => return self.failed("rotate", &e),
        };
        if self.sync == WalSync::Always {
            let _ = sync_dir(&self.dir);
        }
        let old = std::mem::replace(&mut st.file, file);
        if st.dirty {
            st.unsynced.push(old);
        }
        st.dirty = false;
        let closed = std::mem::replace(
            &mut st.current,
            Segment {
                id,
                bytes: 0,
                unsettled: Arc::new(AtomicUsize::new(0)),
            },
        );
        st.closed.push(closed);
        st.opened = Instant::now();
    }

    /// The sync thread: every `wal_sync` syncs what was written, rotates a segment past
    /// [`ROTATE_AGE`], until [`Wal::finish`].
    fn run_syncer(&self) {
        let every = match self.sync {
            WalSync::Every(d) => d,
            WalSync::Always => Duration::from_secs(1),
        };
        loop {
            {
                let mut stop = self.stop.lock();
                if !*stop {
                    self.wake.wait_for(&mut stop, every);
                }
                if *stop {
                    return;
                }
            }
            let (file, closed, rotated) = {
                let mut st = self.state.lock();
                let mut rotated = false;
                if st.current.bytes > 0 && st.opened.elapsed() >= ROTATE_AGE {
                    self.rotate(&mut st);
                    rotated = true;
                }
                let file = std::mem::take(&mut st.dirty).then(|| st.file.clone());
                (file, std::mem::take(&mut st.unsynced), rotated)
            };
            for f in closed.iter().chain(file.iter()) {
                if let Err(e) = f.sync_data() {
                    self.failed("sync", &e);
                }
            }
            if rotated && self.sync != WalSync::Always {
                let _ = sync_dir(&self.dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Vec<(u64, String, i64, f64)>;

    fn open(dir: &Path) -> (Wal, ReplayReport, Seen) {
        let seen = std::cell::RefCell::new(Vec::new());
        let (wal, report) = Wal::open(
            dir,
            WalSync::Every(Duration::from_millis(10)),
            |s, n, t, v| seen.borrow_mut().push((s, n.to_string(), t, v)),
            |t| {
                // A tombstone as the store applies it: earlier points of the name go or move.
                let mut seen = seen.borrow_mut();
                match t {
                    Tombstone::Delete(name) => seen.retain(|p| &p.1 != name),
                    Tombstone::Rename { from, to } => {
                        for p in seen.iter_mut().filter(|p| &p.1 == from) {
                            p.1 = to.clone();
                        }
                    }
                }
            },
        )
        .unwrap();
        (wal, report, seen.into_inner())
    }

    fn batch(points: &[(&str, i64, f64)]) -> Points {
        let mut p = Points::new();
        for &(n, t, v) in points {
            p.push(n, t, v);
        }
        p
    }

    fn segment_files(dir: &Path) -> Vec<u64> {
        segment_ids(dir).unwrap()
    }

    #[test]
    fn appended_points_are_replayed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, report, seen) = open(dir.path());
        assert_eq!((report.segments, seen.len()), (0, 0));
        let mut b = batch(&[("a.b", 10, 1.5), ("c;tag=x", 20, -2.0)]);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![("a.b", 10, 1.5), ("c;tag=x", 20, -2.0)]
        );
        let t = wal.append(&mut b);
        assert_eq!(t.segment, 0);
        drop(t);
        drop(wal.append(&mut batch(&[("a.b", 30, 3.0)])));
        assert_eq!(wal.info().segments, 1);
        drop(wal); // as SIGKILL: no finish
        let (_wal, report, seen) = open(dir.path());
        assert_eq!(report.segments, 1);
        assert_eq!(report.points, 3);
        assert_eq!(
            seen,
            vec![
                (0, "a.b".into(), 10, 1.5),
                (0, "c;tag=x".into(), 20, -2.0),
                (0, "a.b".into(), 30, 3.0)
            ]
        );
        assert_eq!(
            segment_files(dir.path()),
            vec![0, 1],
            "replayed kept, new one opened"
        );
    }

    #[test]
    fn a_torn_tail_is_cut_off_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        drop(wal.append(&mut batch(&[("a", 1, 1.0)])));
        drop(wal.append(&mut batch(&[("b", 2, 2.0), ("c", 3, 3.0)])));
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 5).unwrap();
        let (_wal, report, seen) = open(dir.path());
        assert_eq!(report.points, 1);
        assert_eq!(seen, vec![(0, "a".into(), 1, 1.0)]);
        assert!(report.truncated_bytes > 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 12 + 4 + 1 + 16);
    }

    #[test]
    fn a_damaged_middle_record_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            drop(wal.append(&mut batch(&[(n, i as i64, i as f64)])));
        }
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let mut data = std::fs::read(&path).unwrap();
        let rec = 12 + 4 + 1 + 16;
        data[rec + 20] ^= 0xff; // inside the second record's payload: checksum mismatch
        std::fs::write(&path, &data).unwrap();
        let (_wal, report, seen) = open(dir.path());
        assert_eq!(report.skipped_records, 1);
        assert_eq!(report.truncated_bytes, 0);
        let names: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
        assert_eq!(names, vec!["a", "c"]);
    }

    #[test]
    fn closed_segments_go_once_the_cache_no_longer_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        let t0 = wal.append(&mut batch(&[("a", 1, 1.0)]));
        {
            let mut st = wal.shared.state.lock();
            wal.shared.rotate(&mut st);
        }
        let t1 = wal.append(&mut batch(&[("b", 2, 2.0)]));
        assert_eq!((t0.segment, t1.segment), (0, 1));
        assert_eq!(segment_files(dir.path()), vec![0, 1]);
        // Segment 0's batch is not in the cache yet: kept whatever the cache says.
        wal.collect(|| NO_SEGMENT);
        assert_eq!(segment_files(dir.path()), vec![0, 1]);
        drop(t0);
        // The cache still holds a point of segment 0: kept.
        wal.collect(|| 0);
        assert_eq!(segment_files(dir.path()), vec![0, 1]);
        // Only a prefix goes: a newer settled segment waits behind an older one.
        {
            let mut st = wal.shared.state.lock();
            wal.shared.rotate(&mut st);
        }
        drop(wal.append(&mut batch(&[("c", 3, 3.0)])));
        {
            let mut st = wal.shared.state.lock();
            wal.shared.rotate(&mut st);
        }
        // Segment 1 is referenced: 0 goes, and 2 (settled) waits behind 1.
        wal.collect(|| 1);
        assert_eq!(segment_files(dir.path()), vec![1, 2, 3]);
        // 1's batch is not in the cache yet: nothing goes, whatever the cache says.
        wal.collect(|| NO_SEGMENT);
        assert_eq!(segment_files(dir.path()), vec![1, 2, 3]);
        drop(t1);
        wal.collect(|| NO_SEGMENT);
        assert_eq!(segment_files(dir.path()), vec![3]);
        assert_eq!(wal.info().segments, 1);
        wal.finish(true);
        assert!(segment_files(dir.path()).is_empty());
        assert_eq!(wal.info().bytes, 0);
    }

    #[test]
    fn tombstones_drop_or_move_earlier_points_only() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        drop(wal.append(&mut batch(&[
            ("gone", 1, 1.0),
            ("old", 1, 2.0),
            ("kept", 1, 3.0),
        ])));
        wal.append_tombstones(&[
            Tombstone::Delete("gone".into()),
            Tombstone::Rename {
                from: "old".into(),
                to: "new".into(),
            },
        ])
        .unwrap();
        // Recreated after the delete: replayed.
        drop(wal.append(&mut batch(&[("gone", 2, 4.0)])));
        drop(wal);
        let (_wal, report, seen) = open(dir.path());
        assert_eq!(report.tombstones, 2);
        assert_eq!(report.skipped_records, 0);
        let got: Vec<(&str, i64)> = seen.iter().map(|p| (p.1.as_str(), p.2)).collect();
        assert_eq!(got, vec![("new", 1), ("kept", 1), ("gone", 2)]);
        assert_eq!(
            tombstones(&tombstone_record(&[Tombstone::Delete("x".into())])[HEADER..]),
            Some(vec![Tombstone::Delete("x".into())])
        );
        assert_eq!(tombstones(&[9, 0, 0, 0, 0]), None, "unknown kind refused");
    }

    #[test]
    fn segments_rotate_at_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        wal.shared.state.lock().current.bytes = ROTATE_BYTES;
        let t = wal.append(&mut batch(&[("a", 1, 1.0)]));
        assert_eq!(t.segment, 1);
        drop(t);
        wal.finish(false);
        assert_eq!(
            segment_files(dir.path()),
            vec![0, 1],
            "kept when not persisted"
        );
    }
}
