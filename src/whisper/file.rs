//! Creating, updating and fetching whisper files: whisper.py's `create`, `update_many`,
//! `update`, `fetch`, `setAggregationMethod`, with the same arithmetic and the same results.
//!
//! Where whisper.py does one seek/read per point or per propagated interval, this code batches:
//! contiguous runs are written with one `pwrite` and each propagation pass reads the span of
//! the higher archive it needs once. The values that land in each slot are the same.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::header::{ArchiveInfo, Header, ARCHIVE_INFO_SIZE, METADATA_SIZE, POINT_SIZE};
use super::{validate_archive_list, AggregationMethod, Point, Retention, WhisperError};

/// How [`create`] reserves the archive space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preallocation {
    /// Ask the filesystem for the blocks without writing them (`fallocate`), falling back to
    /// writing zeros where the filesystem cannot (whisper's `useFallocate`). The default: as
    /// safe as zeros (space is reserved, ENOSPC shows at create time) and far faster.
    #[default]
    Fallocate,
    /// Write zeros over the whole file (whisper's default).
    Zero,
    /// Only set the length; blocks are allocated on first write (whisper's `sparse`).
    Sparse,
}

/// Options of [`create`], with whisper's defaults (xFilesFactor 0.5, `average`).
#[derive(Debug, Clone, Copy)]
pub struct CreateOptions {
    /// Fraction of known points needed to propagate an interval (0..=1).
    pub x_files_factor: f32,
    /// How lower archives aggregate.
    pub aggregation_method: AggregationMethod,
    /// How the archive space is reserved.
    pub preallocation: Preallocation,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            x_files_factor: 0.5,
            aggregation_method: AggregationMethod::Average,
            preallocation: Preallocation::default(),
        }
    }
}

/// Creates a whisper file at `path` with these archives, as whisper.py's `create`.
///
/// The archive list is validated and sorted by precision as whisper.py's
/// `validateArchiveList`; the header holds the method, `maxRetention` = the longest archive
/// retention, the xFilesFactor (as f32) and one archive-info block per archive, archives laid
/// out back to back after the header; the data is all zeros (written, `fallocate`d or sparse).
/// The bytes are those whisper.py's `create` writes.
///
/// Fails with `InvalidConfiguration("File … already exists!")` if `path` exists and
/// `InvalidXFilesFactor` for an xFilesFactor outside 0..=1 — checked before the file is
/// created (whisper.py leaves an empty file behind in that case). The parent directory must
/// exist. A file half-written when an I/O error strikes is removed.
pub fn create(
    path: &Path,
    archives: &[Retention],
    opts: CreateOptions,
) -> Result<(), WhisperError> {
    create_file(path, archives, opts, true).map(|_| ())
}

/// [`create`], then the new file open for reading and writing, its header the one just
/// written (not read back): what the persister writes a new metric's first points with,
/// saving an open, a stat, a read and a close per file. The name is not looked up first (the
/// caller has just found it missing): linking the finished file fails if it exists, with the
/// same `InvalidConfiguration` error.
pub fn create_open(
    path: &Path,
    archives: &[Retention],
    opts: CreateOptions,
) -> Result<WhisperFile, WhisperError> {
    match create_file(path, archives, opts, false)? {
        Some((file, header)) => {
            no_readahead(&file);
            let meta = file.metadata().map_err(|e| WhisperError::io(path, e))?;
            Ok(WhisperFile::from_parts(file, path, header, file_id(&meta)))
        }
        None => WhisperFile::open_rw(path),
    }
}

/// [`create`]'s work; the open file and its header when it was made as an `O_TMPFILE`
/// (`None` after the temporary-name fallback, whose descriptor is write-only).
fn create_file(
    path: &Path,
    archives: &[Retention],
    opts: CreateOptions,
    look_first: bool,
) -> Result<Option<(File, Header)>, WhisperError> {
    let mut archives = archives.to_vec();
    validate_archive_list(&mut archives)?;
    if !(0.0..=1.0).contains(&opts.x_files_factor) {
        return Err(WhisperError::InvalidXFilesFactor(format!(
            "Invalid xFilesFactor {:?}, not between 0 and 1",
            opts.x_files_factor
        )));
    }
    let header = Header::for_archives(&archives, opts.x_files_factor, opts.aggregation_method);
    let exists =
        || WhisperError::InvalidConfiguration(format!("File {} already exists!", path.display()));
    if look_first && std::fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    // The file appears under its name only once complete (header written, space reserved),
    // so a concurrent reader never sees a half-made file: an unnamed O_TMPFILE linked into
    // place, or, where the filesystem lacks O_TMPFILE, a hidden temporary file hard-linked.
    // Linking fails if the name exists, so a racing creator cannot be overwritten.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match open_tmpfile(dir) {
        Ok(file) => {
            write_new_file(&file, &header, opts.preallocation)
                .map_err(|e| WhisperError::io(path, e))?;
            link_tmpfile(&file, path).map_err(|e| {
                if e.kind() == ErrorKind::AlreadyExists {
                    exists()
                } else {
                    WhisperError::io(path, e)
                }
            })?;
            Ok(Some((file, header)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Err(WhisperError::io(path, e)),
        Err(_) => {
            create_via_temp_name(path, dir, &header, opts.preallocation, exists).map(|()| None)
        }
    }
}

/// Opens an unnamed file in `dir` (Linux `O_TMPFILE`); errors as `open(2)` gives them
/// (`EOPNOTSUPP`/`EISDIR` where the filesystem or kernel has no `O_TMPFILE`).
fn open_tmpfile(dir: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    Ok(File::from(fd))
}

/// Gives an `O_TMPFILE` file its name; fails with `AlreadyExists` if the name is taken.
/// `AT_SYMLINK_FOLLOW` links the file the `/proc/self/fd` link points at, not the link.
fn link_tmpfile(file: &File, path: &Path) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, CWD};
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(CWD, from.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW)?;
    Ok(())
}

fn create_via_temp_name(
    path: &Path,
    dir: &Path,
    header: &Header,
    prealloc: Preallocation,
    exists: impl Fn() -> WhisperError,
) -> Result<(), WhisperError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".carbonhound-create.{}.{n}.tmp",
        std::process::id()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| WhisperError::io(path, e))?;
    let result =
        write_new_file(&file, header, prealloc).and_then(|()| std::fs::hard_link(&tmp, path));
    drop(file);
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(exists()),
        Err(e) => Err(WhisperError::io(path, e)),
    }
}

fn write_new_file(file: &File, header: &Header, prealloc: Preallocation) -> std::io::Result<()> {
    let head = header.encode();
    file.write_all_at(&head, 0)?;
    let total = header.file_size();
    let data_len = total - head.len() as u64;
    match prealloc {
        Preallocation::Sparse => file.set_len(total),
        Preallocation::Fallocate => {
            if fallocate(file, head.len() as u64, data_len).is_ok() {
                Ok(())
            } else {
                write_zeros(file, head.len() as u64, data_len)
            }
        }
        Preallocation::Zero => write_zeros(file, head.len() as u64, data_len),
    }
}

/// Reserves `len` bytes at `offset` (`fallocate(2)`, mode 0, as `posix_fallocate` asks
/// the kernel); where the filesystem cannot, the caller writes zeros instead.
fn fallocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), offset, len)?;
    Ok(())
}

fn write_zeros(file: &File, mut offset: u64, mut remaining: u64) -> std::io::Result<()> {
    const CHUNK: usize = 16384;
    let zeros = [0u8; CHUNK];
    while remaining > 0 {
        let n = remaining.min(CHUNK as u64) as usize;
        file.write_all_at(&zeros[..n], offset)?;
        offset += n as u64;
        remaining -= n as u64;
    }
    Ok(())
}

/// The answer of [`WhisperFile::fetch`], as whisper.py's `((fromInterval, untilInterval,
/// step), values)`: `values[i]` is the point at `from + i × step`, `None` where unknown.
///
/// As in whisper.py, `values` may be shorter than `(until - from) / step` when the range is
/// longer than the archive's ring (the read wraps at most once).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchResult {
    /// Timestamp (epoch seconds) of the first value.
    pub from: i64,
    /// One step past the last value's timestamp (exclusive end).
    pub until: i64,
    /// Seconds between values.
    pub step: i64,
    /// The values, oldest first.
    pub values: Vec<Option<f64>>,
}

/// Most values a fetch from a never-written archive returns beyond the archive's own size
/// (see [`WhisperFile::archive_fetch`]).
const MAX_EMPTY_FETCH: usize = 1 << 20;

/// whisper.py's `__archive_fetch` intervals: `from` and `until` rounded down to the step, plus
/// one step; a zero-length range gets one point. Saturating, so no input overflows.
fn fetch_intervals(step: i64, from: i64, until: i64) -> (i64, i64) {
    let from_interval = from
        .saturating_sub(from.rem_euclid(step))
        .saturating_add(step);
    let mut until_interval = until
        .saturating_sub(until.rem_euclid(step))
        .saturating_add(step);
    if from_interval == until_interval {
        until_interval = until_interval.saturating_add(step);
    }
    (from_interval, until_interval)
}

impl FetchResult {
    /// What fetching `from..until` (epoch seconds, already clipped) from a never-written
    /// `archive` answers, as whisper.py's `__archive_fetch` when the archive's base is 0: the
    /// intervals `from` and `until` rounded down to the step plus one step (at least one
    /// point), every value `None`. Callers bound the range (see [`Header::fetch_window`]).
    pub fn empty(archive: &ArchiveInfo, from: i64, until: i64) -> FetchResult {
        let step = archive.seconds_per_point as i64;
        let (from_interval, until_interval) = fetch_intervals(step, from, until);
        let n = (until_interval.saturating_sub(from_interval) / step).max(0) as usize;
        FetchResult {
            from: from_interval,
            until: until_interval,
            step,
            values: vec![None; n],
        }
    }
}

/// An open whisper file with its header read and checked.
#[derive(Debug)]
pub struct WhisperFile {
    file: File,
    path: PathBuf,
    header: Header,
    /// Each archive's base interval once seen non-zero (0 = not yet known). A base, once
    /// set, only ever changes by whole ring turns (slot 0 is rewritten one retention later),
    /// which map every timestamp to the same slot, so a remembered base stays valid for the
    /// life of the file and saves a read per fetch and per propagation.
    bases: Vec<std::sync::atomic::AtomicU64>,
    /// [`file_id`] of the descriptor at open: what [`Known`] is checked against.
    file_id: u32,
    /// Whether the header came from a [`Known`] (not read from the file).
    from_known: bool,
}

/// A 32-bit fingerprint of a file's identity: device, inode and birth time (`statx`'s
/// btime, where the file system keeps one; 0 otherwise). The birth time tells a file deleted
/// and made again apart even when it gets the freed inode back, as ext4 readily gives it.
pub fn file_id(meta: &std::fs::Metadata) -> u32 {
    use std::hash::BuildHasher;
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
    let h = foldhash::fast::FixedState::with_seed(0x7768_6973_7065_7221).hash_one((
        meta.dev(),
        meta.ino(),
        born,
    ));
    (h ^ (h >> 32)) as u32
}

/// What a writer may remember of a file from one update to the next, so the next update
/// reads neither the header nor the archive bases ([`WhisperFile::open_rw_known`]). At two
/// million metrics those are three of an update's ten system calls, and the header page is
/// otherwise read every round.
///
/// Trusted only while the path names the same file ([`file_id`]: `whisper-resize.py` and
/// friends rename a new file over the old; a file removed and made again is born anew) of the
/// length the header gives. A base once non-zero stays valid for the file's life (see
/// `WhisperFile::bases`); a zero base is read again. What this cannot see is a header
/// rewritten in place (`whisper-set-aggregation.py`): the caller bounds how long it trusts a
/// header read (the persister: until the next minute).
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// [`file_id`] of the file when `header` was read.
    pub id: u32,
    /// The header read then.
    pub header: &'a Header,
    /// The first archives' base intervals (epoch seconds; 0 = unknown, read when needed).
    pub bases: &'a [u32],
}

fn decode_point(b: &[u8]) -> (u32, f64) {
    let ts = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let v = f64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
    (ts, v)
}

/// Appends one point as whisper's `struct.pack("!Ld", interval, value)`; the caller has
/// checked the interval with [`check_interval`].
fn encode_point(out: &mut Vec<u8>, ts: i64, v: f64) {
    out.extend_from_slice(&(ts as u32).to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

/// Checks that an interval fits the u32 timestamps of the format (whisper.py fails in
/// `struct.pack` there, before writing anything of that archive).
fn check_interval(ts: i64) -> Result<(), WhisperError> {
    if (0..=u32::MAX as i64).contains(&ts) {
        Ok(())
    } else {
        Err(WhisperError::InvalidTimeInterval(format!(
            "timestamp {ts} is outside the range whisper can store (0..=4294967295)"
        )))
    }
}

/// `t - (t % step)` with Python's floor modulo: the start of `t`'s interval. An error only for
/// timestamps so far below zero that the interval cannot be represented.
fn align(t: i64, step: i64) -> Result<i64, WhisperError> {
    t.checked_sub(t.rem_euclid(step)).ok_or_else(|| {
        WhisperError::InvalidTimeInterval(format!(
            "timestamp {t} is outside the range whisper can store (0..=4294967295)"
        ))
    })
}

impl WhisperFile {
    /// Opens `path` read-only and reads its header (see [`Header::parse`] for the checks: a
    /// corrupt or truncated file is [`WhisperError::Corrupt`], never a panic).
    pub fn open(path: &Path) -> Result<WhisperFile, WhisperError> {
        let file = File::open(path).map_err(|e| WhisperError::io(path, e))?;
        Self::from_file(file, path)
    }

    /// Opens `path` for reading and writing and reads its header. Nothing is written by
    /// opening: a file refused here is left as it was.
    ///
    /// Opened `O_NOATIME` where the process may (it owns the file): the reads an update makes
    /// (header, archive base) are the writer's own, and under `relatime` each one after a
    /// write would otherwise dirty the inode again — 15 % of a persister's time at a million
    /// metrics. Reads for queries ([`WhisperFile::open`]) keep the access time.
    pub fn open_rw(path: &Path) -> Result<WhisperFile, WhisperError> {
        let file = Self::open_rw_file(path)?;
        Self::from_file(file, path)
    }

    /// [`WhisperFile::open_rw`], taking the header and bases from `known` instead of the file
    /// when the opened file is the one `known` describes (same [`file_id`] and length);
    /// otherwise (or with `None`) read as `open_rw` does. Errors as `open_rw`.
    pub fn open_rw_known(path: &Path, known: Option<Known>) -> Result<WhisperFile, WhisperError> {
        Self::open_rw_known_in(None, path, path, known)
    }

    /// [`WhisperFile::open_rw_known`] of `rel` under the directory `dir` is open on
    /// (`openat`), so the open walks only `rel`'s components; with `None`, of `path`.
    /// `path` (the same file's full path) names the file in errors and later messages.
    ///
    /// The persister holds the whisper directory open: at two million metrics the walk of
    /// the data directory's own components (`/var/lib/carbonhound/whisper`) on every update
    /// was most of the 9 % of its time the kernel spent looking up names. Errors as `open_rw`;
    /// a `dir` since removed gives `NotFound`, which the caller answers by opening `path`. A
    /// `dir` moved elsewhere still opens its own files: noticing that is the caller's (the
    /// persister looks the path up again every second).
    pub fn open_rw_known_in(
        dir: Option<std::os::fd::BorrowedFd<'_>>,
        rel: &Path,
        path: &Path,
        known: Option<Known>,
    ) -> Result<WhisperFile, WhisperError> {
        let file = Self::open_rw_file_in(dir, rel, path)?;
        let Some(known) = known else {
            return Self::from_file(file, path);
        };
        let meta = file.metadata().map_err(|e| WhisperError::io(path, e))?;
        match Self::as_known(file, path, &meta, known) {
            Ok(f) => Ok(f),
            Err(file) => Self::from_file_meta(file, path, &meta),
        }
    }

    /// `file` with the header and bases of `known`, when its metadata `meta` shows it is the
    /// file `known` describes (same [`file_id`], the header's length); `Err` gives it back.
    fn as_known(
        file: File,
        path: &Path,
        meta: &std::fs::Metadata,
        known: Known,
    ) -> Result<WhisperFile, File> {
        let id = file_id(meta);
        if id != known.id || meta.len() != known.header.file_size() {
            return Err(file);
        }
        let mut f = WhisperFile::from_parts(file, path, known.header.clone(), id);
        f.from_known = true;
        for (cell, &base) in f.bases.iter().zip(known.bases) {
            cell.store(u64::from(base), std::sync::atomic::Ordering::Relaxed);
        }
        Ok(f)
    }

    /// A descriptor this process kept open since an earlier write of the file (the
    /// persister's open files), taken as the file `known` describes if it still is that file:
    /// still linked (a file removed, or replaced by renaming another over it as
    /// `whisper-resize.py` does, has no link left, so its descriptor would write where no
    /// reader looks), of the same [`file_id`], and of the length `known`'s header gives.
    /// One `statx`, where opening the path again is an `openat`, a `statx`, an `fadvise` and
    /// a `close`: half of a one-point update's time on this machine (BENCHMARKS.md).
    ///
    /// `Err` hands the descriptor back when it is not the known file (or cannot be
    /// examined): the caller closes it and opens the path. What a held descriptor cannot see
    /// is the path renamed (the file, or a directory above it, moved elsewhere while still
    /// linked); the caller bounds how long it trusts one without opening the path.
    pub fn reuse_known(file: File, path: &Path, known: Known) -> Result<WhisperFile, File> {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = file.metadata() else {
            return Err(file);
        };
        if meta.nlink() == 0 {
            return Err(file);
        }
        Self::as_known(file, path, &meta, known)
    }

    /// The descriptor, for keeping open after this write ([`WhisperFile::reuse_known`]).
    pub fn into_file(self) -> File {
        self.file
    }

    /// The file opened for writing, header unread: `O_NOATIME` where the process may (see
    /// [`WhisperFile::open_rw`]), no readahead (`no_readahead`).
    fn open_rw_file(path: &Path) -> Result<File, WhisperError> {
        Self::open_rw_file_in(None, path, path)
    }

    /// [`WhisperFile::open_rw_file`] of `rel` under `dir` (`openat`), or of `path` without.
    fn open_rw_file_in(
        dir: Option<std::os::fd::BorrowedFd<'_>>,
        rel: &Path,
        path: &Path,
    ) -> Result<File, WhisperError> {
        use rustix::fs::{Mode, OFlags};
        let open = |extra: OFlags| -> std::io::Result<File> {
            let flags = OFlags::RDWR | OFlags::CLOEXEC | extra;
            let fd = match dir {
                Some(dir) => rustix::fs::openat(dir, rel, flags, Mode::empty()),
                None => rustix::fs::open(path, flags, Mode::empty()),
            }?;
            Ok(File::from(fd))
        };
        let file = match open(OFlags::NOATIME) {
            // EPERM: not the file's owner (another user's file, or a tool's copy).
            Err(e) if e.kind() == ErrorKind::PermissionDenied => open(OFlags::empty()),
            other => other,
        }
        .map_err(|e| WhisperError::io(path, e))?;
        no_readahead(&file);
        Ok(file)
    }

    /// [`file_id`] of the descriptor at open (for [`Known`]).
    pub fn file_id(&self) -> u32 {
        self.file_id
    }

    /// Whether [`WhisperFile::open_rw_known`] took the header from its [`Known`] (`false`:
    /// the header was read from the file).
    pub fn header_was_known(&self) -> bool {
        self.from_known
    }

    /// The archives' base intervals this handle knows (epoch seconds, 0 = not known): read at
    /// open, during updates, or given by [`Known`]. One per archive, in header order.
    pub fn known_bases(&self) -> impl Iterator<Item = u32> + '_ {
        self.bases
            .iter()
            .map(|b| b.load(std::sync::atomic::Ordering::Relaxed) as u32)
    }

    /// A file whose header is known (just written by [`create_open`], or [`Known`]).
    fn from_parts(file: File, path: &Path, header: Header, file_id: u32) -> WhisperFile {
        let bases = header
            .archives
            .iter()
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect();
        WhisperFile {
            file,
            path: path.to_path_buf(),
            header,
            bases,
            file_id,
            from_known: false,
        }
    }

    fn from_file(file: File, path: &Path) -> Result<WhisperFile, WhisperError> {
        let meta = file.metadata().map_err(|e| WhisperError::io(path, e))?;
        Self::from_file_meta(file, path, &meta)
    }

    fn from_file_meta(
        file: File,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<WhisperFile, WhisperError> {
        let len = meta.len();
        // One read holds the metadata, up to four archive-info blocks and the first archive's
        // base point after them: one read for almost every file; a header announcing more
        // archives is read whole below.
        const FIRST_READ: usize = METADATA_SIZE + 4 * ARCHIVE_INFO_SIZE + POINT_SIZE;
        let mut buf = vec![0u8; (len.min(FIRST_READ as u64)) as usize];
        read_exact_at(&file, &mut buf, 0, path)?;
        let header = match Header::parse(&buf, len, path)? {
            Some(h) => h,
            None => {
                // `parse` has checked that the announced archive-info blocks fit in the file.
                let count = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
                let mut full = vec![0u8; METADATA_SIZE + ARCHIVE_INFO_SIZE * count];
                read_exact_at(&file, &mut full, 0, path)?;
                Header::parse(&full, len, path)?
                    .ok_or_else(|| WhisperError::corrupt(path, "Unable to read header"))?
            }
        };
        let f = WhisperFile::from_parts(file, path, header, file_id(meta));
        // The first archive starts right after the header: its base came with the read.
        let first = f
            .header
            .archives
            .first()
            .map_or(usize::MAX, |a| a.offset as usize);
        if let Some(point) = buf.get(first..first.saturating_add(POINT_SIZE)) {
            let base = decode_point(point).0;
            if base != 0 {
                f.bases[0].store(u64::from(base), std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(f)
    }

    /// Whether the file's 16-byte metadata block still says what it said at open (an
    /// in-place `set-aggregation` changes it). A read error counts as changed.
    pub fn metadata_unchanged(&self) -> bool {
        let mut b = [0u8; METADATA_SIZE];
        self.read_at(&mut b, 0).is_ok() && b == self.header.encode_metadata()
    }

    /// The open file's (device, inode), to tell whether a path still names it.
    pub fn identity(&self) -> std::io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = self.file.metadata()?;
        Ok((m.dev(), m.ino()))
    }

    /// The header read at open.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), WhisperError> {
        read_exact_at(&self.file, buf, offset, &self.path)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), WhisperError> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| WhisperError::io(&self.path, e))
    }

    /// The timestamp in an archive's first slot: the base of its ring arithmetic, 0 while the
    /// archive has never been written.
    fn base_interval(&self, archive: &ArchiveInfo) -> Result<i64, WhisperError> {
        use std::sync::atomic::Ordering::Relaxed;
        let slot = self
            .header
            .archives
            .iter()
            .position(|a| a.offset == archive.offset)
            .and_then(|i| self.bases.get(i));
        if let Some(known) = slot.map(|b| b.load(Relaxed)).filter(|b| *b != 0) {
            return Ok(known as i64);
        }
        let mut b = [0u8; POINT_SIZE];
        self.read_at(&mut b, archive.offset as u64)?;
        let base = decode_point(&b).0;
        if let Some(cell) = slot {
            if base != 0 {
                cell.store(base as u64, Relaxed);
            }
        }
        Ok(base as i64)
    }

    /// Ring slot (0..points) of `interval` in `archive` given its base, as whisper.py's
    /// `((interval - base) // secondsPerPoint * 12) % size` (floor division, non-negative
    /// modulo).
    fn slot_index(archive: &ArchiveInfo, base: i64, interval: i64) -> usize {
        let point_distance =
            (interval as i128 - base as i128).div_euclid(archive.seconds_per_point as i128);
        point_distance.rem_euclid(archive.points as i128) as usize
    }

    /// Byte offset (absolute) of the slot for `interval` in `archive`, given its base.
    fn slot_offset(archive: &ArchiveInfo, base: i64, interval: i64) -> u64 {
        archive.offset as u64 + (Self::slot_index(archive, base, interval) * POINT_SIZE) as u64
    }

    /// Writes bytes (at most one archive's worth) starting at `offset` inside `archive`,
    /// wrapping to the archive's start where they run past its end.
    fn write_wrapping(
        &self,
        archive: &ArchiveInfo,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), WhisperError> {
        let end = archive.end();
        let first = ((end - offset) as usize).min(bytes.len());
        self.write_at(&bytes[..first], offset)?;
        if first < bytes.len() {
            self.write_at(&bytes[first..], archive.offset as u64)?;
        }
        Ok(())
    }

    /// Reads `count` points (count ≤ archive points) starting at `offset`, wrapping.
    fn read_wrapping(
        &self,
        archive: &ArchiveInfo,
        offset: u64,
        count: usize,
    ) -> Result<Vec<u8>, WhisperError> {
        let mut buf = vec![0u8; count * POINT_SIZE];
        let end = archive.end();
        let first = ((end - offset) as usize).min(buf.len());
        self.read_at(&mut buf[..first], offset)?;
        if first < buf.len() {
            self.read_at(&mut buf[first..], archive.offset as u64)?;
        }
        Ok(buf)
    }

    /// Whether the page-cache pages that `update_many(points, now)` would write or read are
    /// in memory, without waiting for any: for each point, the slot of the archive that takes
    /// it and, down the lower-precision archives, the slot it propagates to and the higher
    /// archive's window read for that (an archive whose base is not known yet stands for its
    /// first slot, where the base read and an empty archive's first write go). At most
    /// [`PROBED_PAGES`] distinct pages are looked at, each with `cachestat(2)` (or, before
    /// Linux 6.5, a one-byte `preadv2(RWF_NOWAIT)`, which fails with `EAGAIN` rather than read
    /// the disk).
    ///
    /// A page that is not in memory is asked for (`POSIX_FADV_WILLNEED`: the kernel starts
    /// the read and returns) and the answer is [`Residency::Fetching`]: a writer that does
    /// other files' updates meanwhile and comes back finds the pages read, where a blocking
    /// write would have waited the whole read (at two million metrics the writers otherwise
    /// spent most of their time waiting on such reads, one at a time; BENCHMARKS.md, "W-ingest
    /// L"). Only the pages are looked at, never the bytes; nothing is written.
    /// [`Residency::Unknown`]: neither way works here (a file system that refuses
    /// `RWF_NOWAIT` on a kernel without `cachestat`, or not Linux), so the caller should stop
    /// asking.
    pub fn prefetch_update(&self, points: &[Point], now: i64) -> Residency {
        let page = rustix::param::page_size() as u64;
        let mut pages = [0u64; PROBED_PAGES];
        let mut n = 0usize;
        let mut add = |offset: u64| {
            let p = offset / page;
            if n < PROBED_PAGES && !pages[..n].contains(&p) {
                pages[n] = p;
                n += 1;
            }
        };
        let archives = &self.header.archives;
        // Where the update's I/O in archive `i` for `interval` lands.
        let slot = |i: usize, interval: i64| match self.bases[i]
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => archives[i].offset as u64,
            b => Self::slot_offset(&archives[i], b as i64, interval),
        };
        for &(t, _) in points {
            let age = now.saturating_sub(t);
            let Some(first) = archives.iter().position(|a| a.retention() >= age) else {
                continue;
            };
            // The archive the propagation into archive `i` reads from.
            let mut higher: Option<usize> = None;
            for (i, a) in archives.iter().enumerate().skip(first) {
                let interval = t - t.rem_euclid(a.seconds_per_point as i64);
                add(slot(i, interval));
                if let Some(h) = higher {
                    let from = slot(h, interval);
                    let per = (a.seconds_per_point / archives[h].seconds_per_point) as u64;
                    add(from);
                    add((from + per * POINT_SIZE as u64 - 1).min(archives[h].end() - 1));
                }
                higher = Some(i);
            }
        }
        probe_pages(&self.file, &pages[..n], page)
    }

    /// Writes many points at once, as whisper.py's `update_many(path, points, now)`.
    ///
    /// `points` are `(timestamp, value)` in any order, timestamps in epoch seconds (whisper.py
    /// truncates float timestamps with `int()`; callers do that). Following whisper.py step
    /// by step:
    /// - the points are stably sorted newest first, so exactly equal timestamps keep the order
    ///   they were given in;
    /// - walking that list, each point goes to the first archive (header order) whose
    ///   retention covers its age `now - timestamp`; once a point is too old for an archive,
    ///   the points collected so far go to that archive and the walk moves on to the next;
    ///   points older than the last archive are dropped; points in the future (negative age)
    ///   go to the first archive (unlike [`WhisperFile::update`], which refuses them);
    /// - each archive's points, put back in time order, are aligned to its `secondsPerPoint`
    ///   and of each run of equal intervals the last is kept: within one interval the newest
    ///   timestamp wins, and of exactly equal timestamps the FIRST given wins;
    /// - contiguous intervals are written together; an empty archive takes the first run's
    ///   start as its base;
    /// - every lower-precision archive (larger `secondsPerPoint`) then receives each lower
    ///   interval the points touch (see `propagate`), stopping at the first archive for which
    ///   no interval had enough known points.
    ///
    /// I/O is batched: one write per contiguous run (two where it wraps the ring), one read of
    /// the higher archive and one write per contiguous run of lower slots per propagation pass.
    ///
    /// Errors: `InvalidTimeInterval` for an interval outside the u32 range of the format
    /// (whisper.py's `struct.error`), raised before anything is written to that archive, but
    /// after newer points went to higher-precision archives, as in whisper.py; I/O errors.
    pub fn update_many(&mut self, points: &[Point], now: i64) -> Result<(), WhisperError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<Point> = points.to_vec();
        // Newest first; stable, so equal timestamps keep their given order (Python's
        // `list.sort(key=…, reverse=True)` is stable too).
        sorted.sort_by_key(|p| std::cmp::Reverse(p.0));
        let archives = self.header.archives.clone();
        let mut index = 0usize;
        let mut current: Vec<Point> = Vec::new();
        let mut exhausted = false;
        for &point in &sorted {
            let age = now.saturating_sub(point.0);
            while archives[index].retention() < age {
                if !current.is_empty() {
                    current.reverse();
                    self.archive_update_many(&archives, index, &current)?;
                    current.clear();
                }
                index += 1;
                if index == archives.len() {
                    exhausted = true;
                    break;
                }
            }
            if exhausted {
                break;
            }
            current.push(point);
        }
        if !exhausted && !current.is_empty() {
            current.reverse();
            self.archive_update_many(&archives, index, &current)?;
        }
        Ok(())
    }

    /// whisper.py's `__archive_update_many`: writes `points` (time order) into archive
    /// `index` and propagates them into the lower-precision archives.
    fn archive_update_many(
        &mut self,
        archives: &[ArchiveInfo],
        index: usize,
        points: &[Point],
    ) -> Result<(), WhisperError> {
        let archive = archives[index];
        let step = archive.seconds_per_point as i64;
        let aligned: Vec<Point> = points
            .iter()
            .map(|&(t, v)| align(t, step).map(|i| (i, v)))
            .collect::<Result<_, _>>()?;

        // Contiguous runs of intervals, the last point of each run of equal intervals kept.
        let mut runs: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        let mut previous: Option<i64> = None;
        for i in 0..aligned.len() {
            if i + 1 < aligned.len() && aligned[i].0 == aligned[i + 1].0 {
                continue;
            }
            let (interval, value) = aligned[i];
            check_interval(interval)?;
            // whisper.py tests `not previousInterval`, which is also true for an interval of 0
            // (1970-01-01, only reachable with a tiny `now`): the point after it then joins the
            // run even when it is not contiguous. Kept, so such files match byte for byte.
            let continues = match previous {
                None | Some(0) => true,
                Some(p) => interval == p + step,
            };
            if !continues {
                let n = (current.len() / POINT_SIZE) as i64;
                let start = previous.unwrap_or(0) - step * (n - 1);
                runs.push((start, std::mem::take(&mut current)));
            }
            encode_point(&mut current, interval, value);
            previous = Some(interval);
        }
        if !current.is_empty() {
            let n = (current.len() / POINT_SIZE) as i64;
            let start = previous.unwrap_or(0) - step * (n - 1);
            runs.push((start, current));
        }

        let mut base = self.base_interval(&archive)?;
        if base == 0 {
            base = runs[0].0;
        }
        let archive_bytes = archive.size() as usize;
        for (start, bytes) in &runs {
            // A run longer than the ring keeps its newest points: the slots a correct ring
            // write leaves. whisper.py writes such a run (reachable only with points in the
            // future) past the archive's end when it is longer than ring + 1; for a run of
            // ring + 1 points both leave the same bytes.
            let (start, bytes) = if bytes.len() > archive_bytes {
                let skip = bytes.len() - archive_bytes;
                (start + (skip / POINT_SIZE) as i64 * step, &bytes[skip..])
            } else {
                (*start, &bytes[..])
            };
            let offset = Self::slot_offset(&archive, base, start);
            self.write_wrapping(&archive, offset, bytes)?;
        }

        // Propagate to every lower-precision archive, stopping at the first that takes nothing.
        let mut higher = archive;
        for lower in archives
            .iter()
            .filter(|a| a.seconds_per_point > archive.seconds_per_point)
        {
            let lstep = lower.seconds_per_point as i64;
            let mut intervals: Vec<i64> = aligned
                .iter()
                .map(|&(t, _)| t - t.rem_euclid(lstep))
                .collect();
            // whisper.py walks a `set` of these intervals (CPython's iteration order); we walk
            // them in ascending order. Every interval reads the same higher points either way,
            // so each lower slot gets the same value. Two differences remain, neither visible
            // to a read of the intervals: an empty lower archive takes as its base the first
            // interval written (so its ring may be rotated relative to whisper.py's), and when
            // two intervals of one call fall on the same lower slot (they lie exactly one lower
            // retention apart) we keep the newer, whisper.py whichever its set yields last.
            intervals.sort_unstable();
            intervals.dedup();
            if !self.propagate(&higher, lower, &intervals)? {
                break;
            }
            higher = *lower;
        }
        Ok(())
    }

    /// whisper.py's `__propagate(fh, header, interval, higher, lower)` for each of
    /// `intervals` (sorted, aligned to `lower`). Returns whether any interval was written.
    ///
    /// For one interval: read the higher archive's points from the slot of the interval's
    /// start — `lower.secondsPerPoint // higher.secondsPerPoint` of them, wrapping the ring at
    /// most once (so a count that is a multiple of the ring reads the ring once, a larger count
    /// reads count mod ring, as whisper.py does), from the archive's first slot while the
    /// higher archive is empty. A point is known when its stored timestamp is the interval's
    /// start plus its index times the higher step. With no known point, or a known fraction
    /// (`known / read`) below the header's xFilesFactor, nothing is written; otherwise the
    /// aggregate ([`AggregationMethod::aggregate`]) goes to the interval's lower slot (slot 0,
    /// becoming the base, when the lower archive is empty).
    ///
    /// The higher archive is read once for all intervals (a window, or the whole ring when
    /// the intervals spread over more than one ring), and adjacent lower slots are written in
    /// one call.
    fn propagate(
        &mut self,
        higher: &ArchiveInfo,
        lower: &ArchiveInfo,
        intervals: &[i64],
    ) -> Result<bool, WhisperError> {
        if intervals.is_empty() {
            return Ok(false);
        }
        let method = self.header.aggregation_method;
        let xff = self.header.x_files_factor as f64;
        let hstep = higher.seconds_per_point as i64;
        let hpoints = higher.points as usize;
        let per_interval = (lower.seconds_per_point / higher.seconds_per_point) as usize;
        let count = match per_interval % hpoints {
            0 => hpoints,
            r => r,
        };
        let higher_base = self.base_interval(higher)?;

        // Ring slot of each interval's first higher point.
        let starts: Vec<usize> = intervals
            .iter()
            .map(|&i| {
                if higher_base == 0 {
                    0
                } else {
                    Self::slot_index(higher, higher_base, i)
                }
            })
            .collect();
        let first_start = starts[0];
        let reach = starts
            .iter()
            .map(|&s| (s + hpoints - first_start) % hpoints)
            .max()
            .unwrap_or(0)
            + count;
        let (origin, window_len) = if reach <= hpoints {
            (first_start, reach)
        } else {
            (0, hpoints)
        };
        let window = self.read_wrapping(
            higher,
            higher.offset as u64 + (origin * POINT_SIZE) as u64,
            window_len,
        )?;

        let mut lower_base = self.base_interval(lower)?;
        let mut neighbors: Vec<Option<f64>> = vec![None; count];
        let mut writes: Vec<(u64, i64, f64)> = Vec::new();
        for (&interval, &start) in intervals.iter().zip(&starts) {
            let rel = (start + hpoints - origin) % hpoints;
            let mut known = 0usize;
            for (k, slot) in neighbors.iter_mut().enumerate() {
                let idx = (rel + k) % hpoints;
                let (ts, v) = decode_point(&window[idx * POINT_SIZE..(idx + 1) * POINT_SIZE]);
                let expected = interval + k as i64 * hstep;
                *slot = if ts as i64 == expected {
                    known += 1;
                    Some(v)
                } else {
                    None
                };
            }
            if known == 0 {
                continue;
            }
            let known_percent = known as f64 / count as f64;
            if known_percent < xff {
                continue;
            }
            let value = method.aggregate(&neighbors);
            check_interval(interval)?;
            if lower_base == 0 {
                // First propagated point of this archive: it becomes the base, in slot 0.
                lower_base = interval;
                writes.push((lower.offset as u64, interval, value));
            } else {
                writes.push((
                    Self::slot_offset(lower, lower_base, interval),
                    interval,
                    value,
                ));
            }
        }
        if writes.is_empty() {
            return Ok(false);
        }
        // Coalesce adjacent slots into one write each (later writes to a slot still win).
        let mut i = 0;
        let mut buf = Vec::new();
        while i < writes.len() {
            let start = writes[i].0;
            buf.clear();
            let mut j = i;
            while j < writes.len() && writes[j].0 == start + ((j - i) * POINT_SIZE) as u64 {
                encode_point(&mut buf, writes[j].1, writes[j].2);
                j += 1;
            }
            self.write_at(&buf, start)?;
            i = j;
        }
        Ok(true)
    }

    /// Writes one point, as whisper.py's `update(path, value, timestamp, now)`.
    ///
    /// `timestamp` (epoch seconds) defaults to `now`. A point with `now - timestamp` not
    /// within `0..maxRetention` (in the future, or as old as the file's retention or older)
    /// is refused with `TimestampNotCovered`, unlike [`WhisperFile::update_many`]. The point
    /// goes to the first archive whose retention covers its age, aligned to its step (slot 0
    /// when the archive is empty), then propagates archive by archive (`propagate`) into
    /// every archive after it in the header, stopping at the first that takes nothing.
    pub fn update(
        &mut self,
        value: f64,
        timestamp: Option<i64>,
        now: i64,
    ) -> Result<(), WhisperError> {
        let timestamp = timestamp.unwrap_or(now);
        let diff = now.saturating_sub(timestamp);
        if !(diff < self.header.max_retention as i64 && diff >= 0) {
            return Err(WhisperError::TimestampNotCovered);
        }
        let archives = self.header.archives.clone();
        let Some(index) = archives.iter().position(|a| a.retention() >= diff) else {
            return Err(WhisperError::TimestampNotCovered);
        };
        let archive = archives[index];
        let step = archive.seconds_per_point as i64;
        let interval = align(timestamp, step)?;
        check_interval(interval)?;
        let mut bytes = Vec::with_capacity(POINT_SIZE);
        encode_point(&mut bytes, interval, value);
        let base = self.base_interval(&archive)?;
        let offset = if base == 0 {
            archive.offset as u64
        } else {
            Self::slot_offset(&archive, base, interval)
        };
        self.write_at(&bytes, offset)?;
        let mut higher = archive;
        for lower in &archives[index + 1..] {
            let fitted = align(interval, lower.seconds_per_point as i64)?;
            if !self.propagate(&higher, lower, &[fitted])? {
                break;
            }
            higher = *lower;
        }
        Ok(())
    }

    /// Reads `from..until` (epoch seconds) as whisper.py's `fetch(path, fromTime, untilTime,
    /// now, archiveToSelect)`: [`Header::fetch_window`] clips the range and picks the archive
    /// (`until` defaults to `now`; `archive_to_select` is a `secondsPerPoint`), then
    /// [`WhisperFile::archive_fetch`] reads it.
    ///
    /// Returns `Ok(None)` when the range lies wholly in the future or beyond the retention;
    /// `InvalidTimeInterval` when `from > until`; `InvalidConfiguration` when no archive has
    /// the selected precision.
    pub fn fetch(
        &self,
        from: i64,
        until: Option<i64>,
        now: i64,
        archive_to_select: Option<u32>,
    ) -> Result<Option<FetchResult>, WhisperError> {
        match self
            .header
            .fetch_window(from, until, now, archive_to_select)?
        {
            Some((archive, from, until)) => self.archive_fetch(&archive, from, until).map(Some),
            None => Ok(None),
        }
    }

    /// Reads `from..until` from one archive, as whisper.py's `__archive_fetch` (no clipping).
    ///
    /// The answer starts at `from` rounded down to the step plus one step and ends (exclusive)
    /// at `until` rounded the same way (one step more for a zero-length range). An empty
    /// archive answers all `None`. Otherwise the slots from the first interval's to the end
    /// interval's are read, wrapping at most once (a range of a whole number of rings reads
    /// the ring once, a longer one fewer values than the range spans — as whisper.py), each
    /// value `None` unless its stored timestamp is the one expected there.
    ///
    /// Beyond whisper.py, to bound memory: a range over an empty archive longer than
    /// max(points + 1, 2²⁰) steps is refused with `InvalidTimeInterval` (whisper.py would
    /// build that list of `None`; ranges from [`WhisperFile::fetch`] without
    /// `archive_to_select` never come near it).
    pub fn archive_fetch(
        &self,
        archive: &ArchiveInfo,
        from: i64,
        until: i64,
    ) -> Result<FetchResult, WhisperError> {
        let step = archive.seconds_per_point as i64;
        let (from_interval, until_interval) = fetch_intervals(step, from, until);
        let base = self.base_interval(archive)?;
        if base == 0 {
            let n = (until_interval.saturating_sub(from_interval) / step).max(0) as u64;
            let limit = (archive.points as u64 + 1).max(MAX_EMPTY_FETCH as u64);
            if n > limit {
                return Err(WhisperError::InvalidTimeInterval(format!(
                    "Invalid time interval: {n} points of {step} seconds requested from an archive of {} points",
                    archive.points
                )));
            }
            return Ok(FetchResult::empty(archive, from, until));
        }
        let from_off = Self::slot_offset(archive, base, from_interval);
        let until_off = Self::slot_offset(archive, base, until_interval);
        let count = if from_off < until_off {
            (until_off - from_off) as usize / POINT_SIZE
        } else {
            ((archive.end() - from_off) + (until_off - archive.offset as u64)) as usize / POINT_SIZE
        };
        let buf = self.read_wrapping(archive, from_off, count)?;
        let mut values = Vec::with_capacity(count);
        let mut expected = from_interval;
        for chunk in buf.chunks_exact(POINT_SIZE) {
            let (ts, v) = decode_point(chunk);
            values.push(if ts as i64 == expected { Some(v) } else { None });
            expected = expected.saturating_add(step);
        }
        Ok(FetchResult {
            from: from_interval,
            until: until_interval,
            step,
            values,
        })
    }

    /// Every slot of archive `index` as stored: `(timestamp, value)` in slot order, as
    /// whisper-dump.py prints them. `None` if there is no such archive.
    pub fn archive_slots(&self, index: usize) -> Result<Option<Vec<(u32, f64)>>, WhisperError> {
        let Some(archive) = self.header.archives.get(index).copied() else {
            return Ok(None);
        };
        let mut buf = vec![0u8; archive.size() as usize];
        self.read_at(&mut buf, archive.offset as u64)?;
        Ok(Some(
            buf.chunks_exact(POINT_SIZE).map(decode_point).collect(),
        ))
    }

    /// Changes the aggregation method and/or xFilesFactor in place, as whisper.py's
    /// `setAggregationMethod` / `setXFilesFactor`; `None` keeps the current one. Rewrites only
    /// the 16-byte metadata block (maxRetention and archive count unchanged). Returns the
    /// previous `(method, xFilesFactor)`.
    ///
    /// An xFilesFactor outside 0..=1 is `InvalidXFilesFactor("Invalid xFilesFactor X, not
    /// between 0 and 1")` and nothing is written; unlike whisper.py, NaN is refused too
    /// (whisper.py writes it, then refuses to read the file).
    pub fn set_aggregation(
        &mut self,
        method: Option<AggregationMethod>,
        x_files_factor: Option<f32>,
    ) -> Result<(AggregationMethod, f32), WhisperError> {
        let old = (self.header.aggregation_method, self.header.x_files_factor);
        if let Some(x) = x_files_factor {
            if !(0.0..=1.0).contains(&x) {
                return Err(WhisperError::InvalidXFilesFactor(format!(
                    "Invalid xFilesFactor {x:?}, not between 0 and 1"
                )));
            }
        }
        let mut header = self.header.clone();
        if let Some(m) = method {
            header.aggregation_method = m;
        }
        if let Some(x) = x_files_factor {
            header.x_files_factor = x;
        }
        self.write_at(&header.encode_metadata(), 0)?;
        self.header = header;
        Ok(old)
    }

    /// Writes `points` (oldest first, each timestamp already the start of its interval, no
    /// two in one interval) into archive `index` as a whole new ring, based at the first
    /// point, with no propagation: what a resize needs to fill each archive of a new file
    /// with exactly the points computed for it (`update_many` would send a coarse archive's
    /// recent points to the finest archive). Only the newest `points` intervals fit; older
    /// points are left out. Every other slot of the archive is cleared.
    ///
    /// Errors: `InvalidConfiguration` for an archive the file does not have,
    /// `InvalidTimeInterval` for a timestamp outside the u32 range; I/O errors.
    pub fn fill_archive(&mut self, index: usize, points: &[Point]) -> Result<(), WhisperError> {
        let Some(archive) = self.header.archives.get(index).copied() else {
            return Err(WhisperError::InvalidConfiguration(format!(
                "no archive {index} in {}",
                self.path.display()
            )));
        };
        let step = archive.seconds_per_point as i64;
        let newest = points.last().map_or(0, |p| p.0);
        let oldest_kept = newest.saturating_sub((archive.points as i64 - 1) * step);
        let kept = &points[points.partition_point(|p| p.0 < oldest_kept)..];
        let mut ring = vec![0u8; archive.size() as usize];
        let base = kept.first().map_or(0, |p| p.0);
        for &(t, v) in kept {
            check_interval(t)?;
            let at = Self::slot_index(&archive, base, t) * POINT_SIZE;
            let mut point = Vec::with_capacity(POINT_SIZE);
            encode_point(&mut point, t, v);
            ring[at..at + POINT_SIZE].copy_from_slice(&point);
        }
        self.write_at(&ring, archive.offset as u64)?;
        self.bases[index].store(base as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// How many distinct pages [`WhisperFile::prefetch_update`] looks at: an update of a
/// three-archive file touches about six (a slot and a window in each); a longer batch
/// (after a restart, or a slow disk) probes only its first pages.
pub const PROBED_PAGES: usize = 8;

/// What [`WhisperFile::prefetch_update`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// Every page looked at is in the page cache: the update will not wait for the disk.
    Resident,
    /// Some page is not; its read has been started.
    Fetching,
    /// Nothing here can say (no `cachestat` and `RWF_NOWAIT` refused, or not Linux).
    Unknown,
}

/// Whether each of `pages` (page numbers of `page` bytes) is in the page cache, by
/// `cachestat(2)` (Linux 6.5; 0.35 µs a page here) or, where the kernel lacks it, a one-byte
/// `preadv2(RWF_NOWAIT)` (0.6 µs); `POSIX_FADV_WILLNEED` for each that is not.
#[cfg(target_os = "linux")]
fn probe_pages(file: &File, pages: &[u64], page: u64) -> Residency {
    use rustix::io::{Errno, ReadWriteFlags};
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    static NO_CACHESTAT: AtomicBool = AtomicBool::new(false);
    let mut answer = Residency::Resident;
    for &p in pages {
        let counted = match NO_CACHESTAT.load(Relaxed) {
            true => None,
            false => cachestat_pages(file, p * page, page),
        };
        let cached = match counted {
            Some(n) => n > 0,
            None => {
                NO_CACHESTAT.store(true, Relaxed);
                let mut byte = [0u8; 1];
                let mut bufs = [std::io::IoSliceMut::new(&mut byte)];
                match rustix::io::preadv2(file, &mut bufs, p * page, ReadWriteFlags::NOWAIT) {
                    // 0: past the end; the update itself will say the file is short.
                    Ok(_) | Err(Errno::INTR) => true,
                    Err(Errno::AGAIN) => false,
                    Err(_) => return Residency::Unknown,
                }
            }
        };
        if !cached {
            let _ = rustix::fs::fadvise(
                file,
                p * page,
                std::num::NonZeroU64::new(page),
                rustix::fs::Advice::WillNeed,
            );
            answer = Residency::Fetching;
        }
    }
    answer
}

/// `cachestat(fd, {offset, len}, &stat, 0)`: how many pages of the range are in the page
/// cache (a page still being read counts). `None` where the kernel refuses the call (before
/// 6.5: `ENOSYS`). Neither rustix nor libc wraps it yet; its number is 451 on every
/// architecture (the generic system-call table).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cachestat_pages(file: &File, offset: u64, len: u64) -> Option<u64> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range { off: offset, len };
    let mut stat = Stat::default();
    // SAFETY: cachestat reads one `struct cachestat_range` and writes one `struct cachestat`,
    // both `#[repr(C)]` with the kernel's layout (u64 fields) and alive across the call; the
    // descriptor is open for the call's duration (borrowed from `file`); flags must be 0.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    (rc == 0).then_some(stat.nr_cache)
}

#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
fn cachestat_pages(_file: &File, _offset: u64, _len: u64) -> Option<u64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn probe_pages(_file: &File, _pages: &[u64], _page: u64) -> Residency {
    Residency::Unknown
}

/// Test support: writes `path`'s dirty pages and drops all its pages from the page cache
/// (`POSIX_FADV_DONTNEED`), so the next access reads the disk (on tmpfs nothing is dropped;
/// callers check with `mincore`).
#[cfg(test)]
pub(crate) fn drop_cached_pages(path: &Path) {
    let f = File::open(path).unwrap();
    f.sync_all().unwrap();
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

/// Tells the kernel the writer's accesses to `file` are random (`POSIX_FADV_RANDOM`), so a
/// read that misses the page cache brings in the pages asked for and no readahead.
///
/// An update reads a few dozen bytes at up to three places (header, archive bases, the
/// propagation window). Without this, the first miss on a cold file reads ahead the next pages
/// too — for a `10s:1h,1m:12h` file (13,000 bytes) all four of its pages, of which the update
/// then touches two. At two million metrics that doubles the page cache the writers need
/// (32 GB instead of 16 GB on this 23 GiB machine), and the cyclic access of a 10-second
/// round turns the surplus into a re-read of every file every round. Advice only: an error
/// (a file system that ignores it) changes nothing, so it is not reported.
fn no_readahead(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Random);
}

/// `pread` of exactly `buf.len()` bytes; a file that ends early is corrupt (truncated).
fn read_exact_at(
    file: &File,
    buf: &mut [u8],
    offset: u64,
    path: &Path,
) -> Result<(), WhisperError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == ErrorKind::UnexpectedEof {
            WhisperError::corrupt(
                path,
                format!(
                    "unexpected end of file reading {} bytes at offset {offset}",
                    buf.len()
                ),
            )
        } else {
            WhisperError::io(path, e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: u32, p: u32) -> Retention {
        Retention {
            seconds_per_point: s,
            points: p,
        }
    }

    #[test]
    fn a_file_appears_only_complete() {
        // A reader racing the creator either finds no file or a whole one, never a
        // half-written header (the persister creates while queries read).
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..300)
            .map(|i| dir.path().join(format!("m{i}.wsp")))
            .collect();
        let reader_paths = paths.clone();
        let reader = std::thread::spawn(move || {
            let mut opened = 0;
            for _ in 0..20 {
                for p in &reader_paths {
                    match WhisperFile::open(p) {
                        Ok(_) => opened += 1,
                        Err(WhisperError::Io { source, .. })
                            if source.kind() == ErrorKind::NotFound => {}
                        Err(e) => panic!("reader saw an unfinished file: {e}"),
                    }
                }
            }
            opened
        });
        for p in &paths {
            create(
                p,
                &[r(10, 2160), r(60, 10080)],
                CreateOptions {
                    preallocation: Preallocation::Zero,
                    ..CreateOptions::default()
                },
            )
            .unwrap();
        }
        reader.join().unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 300, "no temporary files left: {names:?}");
        let e = create(&paths[0], &[r(60, 10)], CreateOptions::default()).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }

    /// The file `create_open` hands back writes as a reopened one does, the bytes on disk
    /// are `create`'s, and an existing name is refused without being touched.
    #[test]
    fn create_open_gives_the_new_file_open() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.wsp"), dir.path().join("b.wsp"));
        let opts = CreateOptions {
            preallocation: Preallocation::Zero,
            ..CreateOptions::default()
        };
        let archives = [r(60, 10), r(300, 12)];
        let mut opened = create_open(&a, &archives, opts).unwrap();
        create(&b, &archives, opts).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let points = [(NOW - 120, 1.5), (NOW - 60, 2.5)];
        opened.update_many(&points, NOW).unwrap();
        WhisperFile::open_rw(&b)
            .unwrap()
            .update_many(&points, NOW)
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let before = std::fs::read(&a).unwrap();
        let e = create_open(&a, &archives, opts).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&a).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    /// An update's own reads leave the access time alone (`O_NOATIME`); its write moves the
    /// modification time as ever. (On a `noatime` mount this holds either way.)
    #[test]
    fn updates_leave_the_access_time() {
        use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wsp");
        create(&path, &[r(60, 10)], CreateOptions::default()).unwrap();
        let old = Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        };
        utimensat(
            CWD,
            &path,
            &Timestamps {
                last_access: old,
                last_modification: old,
            },
            AtFlags::empty(),
        )
        .unwrap();
        for i in 0..3 {
            let mut f = WhisperFile::open_rw(&path).unwrap();
            f.update_many(&[(NOW - 60 * i, 1.0)], NOW).unwrap();
        }
        let m = std::fs::metadata(&path).unwrap();
        assert!(m.mtime() > 1_000_000_000, "written");
        assert_eq!(m.atime(), 1_000_000_000, "not read-touched");
    }

    /// Pages of `path` in the page cache (`mincore` over a read-only mapping, which faults
    /// nothing in).
    fn resident_pages(path: &Path) -> usize {
        use std::os::fd::AsRawFd;
        let f = File::open(path).unwrap();
        let len = f.metadata().unwrap().len() as usize;
        let pages = len.div_ceil(4096);
        let mut vec = vec![0u8; pages];
        // SAFETY: a fresh shared read-only mapping of `len` bytes of an open file, only
        // passed to mincore and unmapped before return; `vec` holds one byte per page.
        unsafe {
            let addr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            );
            assert_ne!(addr, libc::MAP_FAILED);
            assert_eq!(libc::mincore(addr, len, vec.as_mut_ptr()), 0);
            libc::munmap(addr, len);
        }
        vec.iter().filter(|b| **b & 1 == 1).count()
    }

    /// A writer's read of a cold file brings in the page it reads and no readahead: at two
    /// million metrics readahead doubled the page cache the writers need (see `no_readahead`).
    /// Runs on the disk under the crate (tmpfs keeps every page resident, so the cold start
    /// this needs cannot be made there).
    #[test]
    fn a_writer_reads_only_the_pages_it_needs() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("cold.wsp");
        // 10s:1h,1m:12h: 13,000 bytes, four pages, all of them real blocks.
        let opts = CreateOptions {
            preallocation: Preallocation::Zero,
            ..CreateOptions::default()
        };
        create(&path, &[r(10, 360), r(60, 720)], opts).unwrap();
        let drop_cache = || drop_cached_pages(&path);
        drop_cache();
        assert_eq!(
            resident_pages(&path),
            0,
            "the file system under {} keeps pages it was asked to drop (tmpfs?): this test \
             needs a disk",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut f = WhisperFile::open_rw(&path).unwrap();
        assert_eq!(resident_pages(&path), 1, "the header read: page 0 only");
        // A point in slot 0 of both archives: the update touches page 0 (header, first
        // archive) and page 1 (the second archive's base and first slot), never pages 2 and 3.
        f.update_many(&[(NOW - 5, 1.0)], NOW).unwrap();
        assert_eq!(resident_pages(&path), 2);
        drop(f);
        drop_cache();
        let mut f =
            create_open(&dir.path().join("new.wsp"), &[r(10, 360), r(60, 720)], opts).unwrap();
        let new = dir.path().join("new.wsp");
        drop_cached_pages(&new);
        f.update_many(&[(NOW - 5, 1.0)], NOW).unwrap();
        assert_eq!(
            resident_pages(&new),
            2,
            "a new file's first update, likewise"
        );
    }

    /// [`WhisperFile::prefetch_update`] finds the pages an update needs missing after they
    /// were dropped, starts their reads without waiting for them, and brings in only those:
    /// here page 1, where both archives' current slots lie, and not page 0, whose bases the
    /// handle knows. Once read, the answer is `Resident`, and the update needs no other page.
    #[test]
    fn an_update_s_pages_are_prefetched_and_no_others() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("probe.wsp");
        let opts = CreateOptions {
            preallocation: Preallocation::Zero,
            ..CreateOptions::default()
        };
        let mut f = create_open(&path, &[r(10, 360), r(60, 720)], opts).unwrap();
        // Bases an hour back, in slot 0 of both archives (page 0, page 1).
        let old: Vec<Point> = (0..6).map(|i| (NOW - 3590 + i * 10, 1.0)).collect();
        f.update_many(&old, NOW).unwrap();
        drop_cached_pages(&path);
        assert_eq!(resident_pages(&path), 0, "needs a disk, not tmpfs");
        // Now: archive 0 slot 358 (byte 4336) and archive 1 slot 59 (byte 5068), both page 1.
        let new = [(NOW - 5, 2.0)];
        assert_eq!(f.prefetch_update(&new, NOW), Residency::Fetching);
        let started = std::time::Instant::now();
        // `cachestat` counts a page whose read is under way, `mincore` only one that is read.
        while f.prefetch_update(&new, NOW) != Residency::Resident || resident_pages(&path) == 0 {
            assert!(started.elapsed().as_secs() < 10, "the read never finished");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(resident_pages(&path), 1, "page 1 only");
        f.update_many(&new, NOW).unwrap();
        assert_eq!(
            resident_pages(&path),
            1,
            "the update needed no page but page 1"
        );
        let r = f.fetch(NOW - 60, Some(NOW), NOW, None).unwrap().unwrap();
        assert_eq!(
            r.values.iter().flatten().copied().collect::<Vec<_>>(),
            [2.0]
        );
    }

    /// With a [`Known`] that matches, an update reads neither the header nor the bases: on a
    /// cold file whose current slots lie past page 0, page 0 stays out of the page cache,
    /// and the bytes written are those a plain open writes.
    #[test]
    fn a_known_file_is_written_without_reading_its_header() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let (a, b) = (dir.path().join("a.wsp"), dir.path().join("b.wsp"));
        let opts = CreateOptions {
            preallocation: Preallocation::Zero,
            x_files_factor: 0.0,
            ..CreateOptions::default()
        };
        let archives = [r(10, 360), r(60, 720)];
        // Slot 0 of both archives at NOW - 3000. NOW + 425 then goes to slot 342 of the first
        // archive (byte 4144, page 1), its minute reads slots 342..=347 (page 1) and goes to
        // slot 57 of the second (byte 5044, page 1): only the header and the first base are
        // on page 0.
        let first = [(NOW - 3000, 1.0)];
        for p in [&a, &b] {
            create(p, &archives, opts).unwrap();
            WhisperFile::open_rw(p)
                .unwrap()
                .update_many(&first, NOW)
                .unwrap();
        }
        let f = WhisperFile::open_rw(&a).unwrap();
        let mut f2 = WhisperFile::open_rw(&a).unwrap();
        f2.update_many(&[(NOW - 2990, 2.0)], NOW).unwrap();
        let bases: Vec<u32> = f2.known_bases().collect();
        assert!(bases.iter().all(|b| *b != 0), "{bases:?}");
        let (header, id) = (f.header().clone(), f.file_id());
        drop((f, f2));
        WhisperFile::open_rw(&b)
            .unwrap()
            .update_many(&[(NOW - 2990, 2.0)], NOW)
            .unwrap();
        let cold = |p: &Path| {
            drop_cached_pages(p);
            assert_eq!(resident_pages(p), 0);
        };
        let later = [(NOW + 425, 3.0)];
        cold(&a);
        let known = Known {
            id,
            header: &header,
            bases: &bases,
        };
        let mut k = WhisperFile::open_rw_known(&a, Some(known)).unwrap();
        k.update_many(&later, NOW + 430).unwrap();
        let page0 = {
            let f = File::open(&a).unwrap();
            let mut v = [0u8; 1];
            // SAFETY: as in `resident_pages`, one page mapped and queried.
            unsafe {
                use std::os::fd::AsRawFd;
                let addr = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    f.as_raw_fd(),
                    0,
                );
                assert_ne!(addr, libc::MAP_FAILED);
                assert_eq!(libc::mincore(addr, 4096, v.as_mut_ptr()), 0);
                libc::munmap(addr, 4096);
            }
            v[0] & 1 == 1
        };
        assert!(!page0, "page 0 (header, first base) was read");
        WhisperFile::open_rw(&b)
            .unwrap()
            .update_many(&later, NOW + 430)
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    /// A [`Known`] for a file that has since been replaced — renamed over (as
    /// `whisper-resize.py` does) or removed and made again, both with a header of the same
    /// size — is not trusted: the new file's header is read.
    #[test]
    fn a_replaced_file_is_not_taken_for_the_known_one() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("m.wsp");
        let old_layout = [r(10, 360), r(60, 720)];
        // Same number of points, so the same file size, but another step.
        let new_layout = [r(20, 360), r(60, 720)];
        let opts = CreateOptions::default();
        create(&path, &old_layout, opts).unwrap();
        let f = WhisperFile::open_rw(&path).unwrap();
        let (header, id) = (f.header().clone(), f.file_id());
        drop(f);
        let known = || Known {
            id,
            header: &header,
            bases: &[0, 0],
        };
        assert_eq!(
            WhisperFile::open_rw_known(&path, Some(known()))
                .unwrap()
                .file_id(),
            id
        );
        let tmp = dir.path().join("m.wsp.tmp");
        create(&tmp, &new_layout, opts).unwrap();
        assert_eq!(
            std::fs::metadata(&tmp).unwrap().len(),
            header.file_size(),
            "same size"
        );
        std::fs::rename(&tmp, &path).unwrap();
        let f = WhisperFile::open_rw_known(&path, Some(known())).unwrap();
        assert_eq!(f.header().archives[0].seconds_per_point, 20, "renamed over");
        let renamed_id = f.file_id();
        drop(f);
        std::fs::remove_file(&path).unwrap();
        create(&path, &old_layout, opts).unwrap();
        let f = WhisperFile::open_rw(&path).unwrap();
        let recreated = f.file_id();
        drop(f);
        std::fs::remove_file(&path).unwrap();
        create(&path, &new_layout, opts).unwrap();
        let known = Known {
            id: recreated,
            header: &header,
            bases: &[0, 0],
        };
        let f = WhisperFile::open_rw_known(&path, Some(known)).unwrap();
        assert_eq!(
            f.header().archives[0].seconds_per_point,
            20,
            "removed and made again"
        );
        assert_ne!(f.file_id(), recreated);
        assert_ne!(renamed_id, id);
    }

    #[test]
    fn the_temporary_name_fallback_creates_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.wsp");
        let header = Header::for_archives(&[r(60, 10)], 0.5, AggregationMethod::Average);
        let exists = || WhisperError::InvalidConfiguration("exists".into());
        create_via_temp_name(&path, dir.path(), &header, Preallocation::Zero, exists).unwrap();
        assert_eq!(WhisperFile::open(&path).unwrap().header(), &header);
        assert!(
            create_via_temp_name(&path, dir.path(), &header, Preallocation::Zero, exists).is_err()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn new_file(
        dir: &Path,
        archives: &[Retention],
        xff: f32,
        method: AggregationMethod,
    ) -> WhisperFile {
        let path = dir.join("t.wsp");
        let opts = CreateOptions {
            x_files_factor: xff,
            aggregation_method: method,
            preallocation: Preallocation::Sparse,
        };
        create(&path, archives, opts).unwrap();
        WhisperFile::open_rw(&path).unwrap()
    }

    const NOW: i64 = 1_700_000_100; // a multiple of 60 and 300

    #[test]
    fn equal_timestamps_first_given_wins_same_interval_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = new_file(dir.path(), &[r(60, 10)], 0.5, AggregationMethod::Average);
        // Exactly equal timestamps: whisper.py's stable newest-first sort, then reversal per
        // archive, makes the first given the last of the run, which is kept.
        f.update_many(&[(NOW - 120, 1.0), (NOW - 120, 2.0)], NOW)
            .unwrap();
        // Same interval, different timestamps: the newest timestamp wins whatever the order.
        f.update_many(&[(NOW - 59, 5.0), (NOW - 60, 4.0)], NOW)
            .unwrap();
        let got = f.fetch(NOW - 180, Some(NOW), NOW, None).unwrap().unwrap();
        assert_eq!(got.from, NOW - 120);
        assert_eq!(got.values, vec![Some(1.0), Some(5.0), None]);
    }

    #[test]
    fn update_many_keeps_future_points_update_refuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = new_file(
            dir.path(),
            &[r(60, 10), r(300, 10)],
            0.0,
            AggregationMethod::Sum,
        );
        f.update_many(&[(NOW + 60, 7.0)], NOW).unwrap();
        assert!(matches!(
            f.update(8.0, Some(NOW + 60), NOW),
            Err(WhisperError::TimestampNotCovered)
        ));
        let got = f
            .fetch(NOW, Some(NOW + 120), NOW + 120, None)
            .unwrap()
            .unwrap();
        assert_eq!(got.from, NOW + 60);
        assert_eq!(got.values[0], Some(7.0));
    }

    #[test]
    fn points_older_than_the_retention_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = new_file(
            dir.path(),
            &[r(60, 10), r(300, 10)],
            0.0,
            AggregationMethod::Sum,
        );
        f.update_many(&[(NOW - 3001, 1.0)], NOW).unwrap();
        for i in 0..2 {
            assert!(f
                .archive_slots(i)
                .unwrap()
                .unwrap()
                .iter()
                .all(|&(t, _)| t == 0));
        }
        assert!(matches!(
            f.update(1.0, Some(NOW - 3000), NOW),
            Err(WhisperError::TimestampNotCovered)
        ));
    }

    #[test]
    fn propagation_honours_the_xfilesfactor() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = new_file(
            dir.path(),
            &[r(60, 10), r(300, 10)],
            0.5,
            AggregationMethod::Average,
        );
        // 2 of the 5 minutes of [NOW-600, NOW-300): 0.4 < 0.5, nothing propagates.
        f.update_many(&[(NOW - 600, 1.0), (NOW - 540, 2.0)], NOW)
            .unwrap();
        assert!(f
            .archive_slots(1)
            .unwrap()
            .unwrap()
            .iter()
            .all(|&(t, _)| t == 0));
        // A third: 0.6 ≥ 0.5, the average of the known three.
        f.update_many(&[(NOW - 480, 6.0)], NOW).unwrap();
        let lower = f.header().archives[1];
        let got = f.archive_fetch(&lower, NOW - 900, NOW - 300).unwrap();
        assert_eq!(got.from, NOW - 600);
        assert_eq!(got.values[0], Some(3.0));
    }

    #[test]
    fn a_run_longer_than_the_ring_keeps_its_newest_points() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = new_file(dir.path(), &[r(60, 5)], 0.5, AggregationMethod::Average);
        let points: Vec<Point> = (0..12).map(|i| (NOW - 240 + 60 * i, i as f64)).collect();
        f.update_many(&points, NOW).unwrap();
        let mut slots = f.archive_slots(0).unwrap().unwrap();
        slots.sort_by_key(|s| s.0);
        let want: Vec<(u32, f64)> = (7..12)
            .map(|i| ((NOW - 240 + 60 * i) as u32, i as f64))
            .collect();
        assert_eq!(slots, want);
    }

    #[test]
    fn timestamps_the_format_cannot_hold_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = new_file(dir.path(), &[r(60, 10)], 0.5, AggregationMethod::Average);
        for (t, now) in [
            (i64::MAX, i64::MAX),
            (-30, 0),
            (i64::MIN, i64::MIN),
            (1 << 40, 1 << 40),
        ] {
            assert!(f.update_many(&[(t, 1.0)], now).is_err(), "{t} {now}");
            assert!(f.update(1.0, Some(t), now).is_err());
        }
        assert!(f.fetch(i64::MIN, Some(i64::MAX), i64::MAX, None).is_ok());
        assert!(f.fetch(i64::MIN, None, i64::MIN, Some(60)).is_ok());
        let a = f.header().archives[0];
        assert!(
            f.archive_fetch(&a, i64::MIN, i64::MAX).is_err(),
            "an unbounded range over an empty archive"
        );
        f.update_many(&[(NOW, 1.0)], NOW).unwrap();
        assert!(
            f.archive_fetch(&a, i64::MIN, i64::MAX)
                .unwrap()
                .values
                .len()
                <= 10
        );
    }

    #[test]
    fn set_aggregation_rewrites_only_the_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = new_file(
            dir.path(),
            &[r(60, 10), r(300, 12)],
            0.5,
            AggregationMethod::Average,
        );
        f.update_many(&[(NOW, 1.0)], NOW).unwrap();
        let before = std::fs::read(f.path()).unwrap();
        assert!(f.set_aggregation(None, Some(f32::NAN)).is_err());
        assert!(f.set_aggregation(None, Some(1.5)).is_err());
        assert_eq!(std::fs::read(f.path()).unwrap(), before);
        let old = f
            .set_aggregation(Some(AggregationMethod::Max), Some(0.25))
            .unwrap();
        assert_eq!(old, (AggregationMethod::Average, 0.5));
        let after = std::fs::read(f.path()).unwrap();
        assert_eq!(after[16..], before[16..]);
        let reopened = WhisperFile::open(f.path()).unwrap();
        assert_eq!(reopened.header().aggregation_method, AggregationMethod::Max);
        assert_eq!(reopened.header().x_files_factor, 0.25);
    }
}
