//! Creating, updating and fetching whisper files: whisper.py's `create`, `update_many`,
//! `update`, `fetch`, `setAggregationMethod`, with the same arithmetic and the same results.
//!
//! Where whisper.py does one seek/read per point or per propagated interval, this code batches:
//! contiguous runs are written with one `pwrite` and each propagation pass reads the span of
//! the higher archive it needs once. The values that land in each slot are the same.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::header::{ArchiveInfo, Header, POINT_SIZE};
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
/// The archive list is validated (and sorted) as whisper validates it. Fails with
/// `InvalidConfiguration("File … already exists!")` if `path` exists; the parent directory
/// must exist. A file half-written when an I/O error strikes is removed.
pub fn create(path: &Path, archives: &[Retention], opts: CreateOptions) -> Result<(), WhisperError> {
    let mut archives = archives.to_vec();
    validate_archive_list(&mut archives)?;
    if !(0.0..=1.0).contains(&opts.x_files_factor) {
        return Err(WhisperError::InvalidXFilesFactor(format!(
            "Invalid xFilesFactor {}, not between 0 and 1",
            opts.x_files_factor
        )));
    }
    let header = Header::for_archives(&archives, opts.x_files_factor, opts.aggregation_method);
    let file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(WhisperError::InvalidConfiguration(format!(
                "File {} already exists!",
                path.display()
            )))
        }
        Err(e) => return Err(WhisperError::io(path, e)),
    };
    let result = write_new_file(&file, &header, opts.preallocation);
    if let Err(e) = result {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(WhisperError::io(path, e));
    }
    Ok(())
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

fn fallocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a valid, owned file descriptor; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), offset as libc::off_t, len as libc::off_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
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

impl FetchResult {
    /// What fetching `from..until` from a never-written `archive` answers: the intervals
    /// whisper.py's `__archive_fetch` computes (`from` and `until` rounded down to the step,
    /// plus one step; at least one point), every value `None`.
    pub fn empty(archive: &ArchiveInfo, from: i64, until: i64) -> FetchResult {
        let step = archive.seconds_per_point as i64;
        let from_interval = from - from.rem_euclid(step) + step;
        let mut until_interval = until - until.rem_euclid(step) + step;
        if from_interval == until_interval {
            until_interval += step;
        }
        let n = ((until_interval - from_interval) / step).max(0) as usize;
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
}

fn decode_point(b: &[u8]) -> (u32, f64) {
    let ts = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let v = f64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
    (ts, v)
}

fn encode_point(out: &mut Vec<u8>, ts: i64, v: f64) {
    out.extend_from_slice(&(ts as u32).to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

/// Checks that an interval fits the u32 timestamps of the format (whisper.py would fail in
/// `struct.pack`).
fn check_interval(ts: i64) -> Result<(), WhisperError> {
    if (0..=u32::MAX as i64).contains(&ts) {
        Ok(())
    } else {
        Err(WhisperError::InvalidTimeInterval(format!(
            "timestamp {ts} is outside the range whisper can store (0..=4294967295)"
        )))
    }
}

impl WhisperFile {
    /// Opens `path` read-only and reads its header (see [`Header::parse`] for the checks).
    pub fn open(path: &Path) -> Result<WhisperFile, WhisperError> {
        let file = File::open(path).map_err(|e| WhisperError::io(path, e))?;
        Self::from_file(file, path)
    }

    /// Opens `path` for reading and writing and reads its header.
    pub fn open_rw(path: &Path) -> Result<WhisperFile, WhisperError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| WhisperError::io(path, e))?;
        Self::from_file(file, path)
    }

    fn from_file(file: File, path: &Path) -> Result<WhisperFile, WhisperError> {
        let len = file.metadata().map_err(|e| WhisperError::io(path, e))?.len();
        let mut buf = vec![0u8; (len.min(4096)) as usize];
        read_exact_at(&file, &mut buf, 0, path)?;
        let header = match Header::parse(&buf, len, path)? {
            Some(h) => h,
            None => {
                let count = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
                let mut full = vec![0u8; 16 + 12 * count];
                read_exact_at(&file, &mut full, 0, path)?;
                Header::parse(&full, len, path)?
                    .ok_or_else(|| WhisperError::corrupt(path, "Unable to read header"))?
            }
        };
        Ok(WhisperFile {
            file,
            path: path.to_path_buf(),
            header,
        })
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
        let mut b = [0u8; POINT_SIZE];
        self.read_at(&mut b, archive.offset as u64)?;
        Ok(decode_point(&b).0 as i64)
    }

    /// Byte offset (absolute) of the slot for `interval` in `archive`, given its base.
    fn slot_offset(archive: &ArchiveInfo, base: i64, interval: i64) -> u64 {
        let point_distance = (interval - base).div_euclid(archive.seconds_per_point as i64);
        let byte_distance = point_distance as i128 * POINT_SIZE as i128;
        archive.offset as u64 + byte_distance.rem_euclid(archive.size() as i128) as u64
    }

    /// Writes bytes starting at `offset` inside `archive`, wrapping to the archive's start
    /// where they run past its end. At most one archive's worth is written.
    fn write_wrapping(&self, archive: &ArchiveInfo, offset: u64, bytes: &[u8]) -> Result<(), WhisperError> {
        let end = archive.end();
        let first = ((end - offset) as usize).min(bytes.len());
        self.write_at(&bytes[..first], offset)?;
        if first < bytes.len() {
            self.write_at(&bytes[first..], archive.offset as u64)?;
        }
        Ok(())
    }

    /// Reads `count` points (count ≤ archive points) starting at `offset`, wrapping.
    fn read_wrapping(&self, archive: &ArchiveInfo, offset: u64, count: usize) -> Result<Vec<u8>, WhisperError> {
        let mut buf = vec![0u8; count * POINT_SIZE];
        let end = archive.end();
        let first = ((end - offset) as usize).min(buf.len());
        self.read_at(&mut buf[..first], offset)?;
        if first < buf.len() {
            self.read_at(&mut buf[first..], archive.offset as u64)?;
        }
        Ok(buf)
    }

    /// Writes many points at once, as whisper.py's `update_many(path, points, now)`.
    ///
    /// `points` are `(timestamp, value)` in any order, timestamps in epoch seconds. Each point
    /// goes to the highest-precision archive whose retention covers its age (`now - ts`);
    /// points older than the file's retention are dropped; points in the future go to the
    /// first archive (unlike [`WhisperFile::update`], which refuses them). Within one archive
    /// interval the newest timestamp wins; of exactly equal timestamps the first given wins,
    /// as in whisper.py. Each touched interval then propagates into the lower archives.
    pub fn update_many(&mut self, points: &[Point], now: i64) -> Result<(), WhisperError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<Point> = points.to_vec();
        // Newest first; stable, so equal timestamps keep their given order (Python's sort
        // with reverse=True).
        sorted.sort_by(|a, b| b.0.cmp(&a.0));
        let archives = self.header.archives.clone();
        let mut index = 0usize;
        let mut current: Vec<Point> = Vec::new();
        let mut exhausted = false;
        for &point in &sorted {
            let age = now - point.0;
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

    /// whisper.py's `__archive_update_many`: `points` in chronological order.
    fn archive_update_many(&mut self, archives: &[ArchiveInfo], index: usize, points: &[Point]) -> Result<(), WhisperError> {
        let archive = archives[index];
        let step = archive.seconds_per_point as i64;
        let aligned: Vec<Point> = points.iter().map(|&(t, v)| (t - t.rem_euclid(step), v)).collect();

        // Contiguous runs of intervals, the last point of each duplicate run kept.
        let mut runs: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        let mut previous: Option<i64> = None;
        for i in 0..aligned.len() {
            if i + 1 < aligned.len() && aligned[i].0 == aligned[i + 1].0 {
                continue;
            }
            let (interval, value) = aligned[i];
            check_interval(interval)?;
            // `not previousInterval` in whisper.py is also true for an interval of 0.
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
            // A run longer than the ring (only possible with points far in the future) keeps
            // its newest points: whisper.py would write past the archive's end here.
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
        for lower in archives.iter().filter(|a| a.seconds_per_point > archive.seconds_per_point) {
            let lstep = lower.seconds_per_point as i64;
            let mut intervals: Vec<i64> = aligned.iter().map(|&(t, _)| t - t.rem_euclid(lstep)).collect();
            intervals.sort_unstable();
            intervals.dedup();
            if !self.propagate(&higher, lower, &intervals)? {
                break;
            }
            higher = *lower;
        }
        Ok(())
    }

    /// whisper.py's `__propagate` for each of `intervals` (sorted, lower-archive aligned), from
    /// `higher` into `lower`. Returns whether any interval was written.
    fn propagate(&mut self, higher: &ArchiveInfo, lower: &ArchiveInfo, intervals: &[i64]) -> Result<bool, WhisperError> {
        if intervals.is_empty() {
            return Ok(false);
        }
        let method = self.header.aggregation_method;
        let xff = self.header.x_files_factor as f64;
        let hstep = higher.seconds_per_point as i64;
        let per_interval = (lower.seconds_per_point / higher.seconds_per_point) as usize;
        if per_interval == 0 {
            return Ok(false);
        }
        let higher_base = self.base_interval(higher)?;
        let hpoints = higher.points as usize;

        // Read the span of the higher archive all intervals need once: a window when it fits
        // in the ring, else the whole ring, indexed by slot.
        let first = intervals[0];
        let last = *intervals.last().unwrap_or(&first);
        let span = ((last - first) / hstep) as usize + per_interval;
        let whole = !(span <= hpoints && per_interval <= hpoints);
        let window = if whole {
            let mut buf = vec![0u8; hpoints * POINT_SIZE];
            self.read_at(&mut buf, higher.offset as u64)?;
            buf
        } else if higher_base == 0 {
            // whisper.py reads from the archive's start while the higher base is unset.
            self.read_wrapping(higher, higher.offset as u64, per_interval)?
        } else {
            self.read_wrapping(higher, Self::slot_offset(higher, higher_base, first), span)?
        };

        let mut lower_base = self.base_interval(lower)?;
        let mut neighbors: Vec<Option<f64>> = vec![None; per_interval];
        let mut writes: Vec<(u64, i64, f64)> = Vec::new();
        for &interval in intervals {
            // Index (into `window`) of this interval's first higher point.
            let first_index = if higher_base == 0 {
                0
            } else if whole {
                (Self::slot_offset(higher, higher_base, interval) - higher.offset as u64) as usize / POINT_SIZE
            } else {
                ((interval - first) / hstep) as usize
            };
            let mut known = 0usize;
            for (k, slot) in neighbors.iter_mut().enumerate() {
                let idx = if whole { (first_index + k) % hpoints } else { first_index + k };
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
            let known_percent = known as f64 / per_interval as f64;
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
                writes.push((Self::slot_offset(lower, lower_base, interval), interval, value));
            }
        }
        if writes.is_empty() {
            return Ok(false);
        }
        // Coalesce adjacent slots into one write each.
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
    /// `timestamp` defaults to `now`. Unlike [`WhisperFile::update_many`], a point in the
    /// future or older than the file's retention is refused with `TimestampNotCovered`.
    pub fn update(&mut self, value: f64, timestamp: Option<i64>, now: i64) -> Result<(), WhisperError> {
        let timestamp = timestamp.unwrap_or(now);
        let diff = now - timestamp;
        if !(diff < self.header.max_retention as i64 && diff >= 0) {
            return Err(WhisperError::TimestampNotCovered);
        }
        let archives = self.header.archives.clone();
        let Some(index) = archives.iter().position(|a| a.retention() >= diff) else {
            return Err(WhisperError::TimestampNotCovered);
        };
        let archive = archives[index];
        let step = archive.seconds_per_point as i64;
        let interval = timestamp - timestamp.rem_euclid(step);
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
            let lstep = lower.seconds_per_point as i64;
            let fitted = interval - interval.rem_euclid(lstep);
            if !self.propagate(&higher, lower, &[fitted])? {
                break;
            }
            higher = *lower;
        }
        Ok(())
    }

    /// Reads `from..until` as whisper.py's `fetch(path, fromTime, untilTime, now,
    /// archiveToSelect)`.
    ///
    /// `until` defaults to `now`. The range is clipped to the file's retention and to `now`;
    /// the highest-precision archive covering `now - from` answers, unless
    /// `archive_to_select` names an archive's `secondsPerPoint`. Returns `Ok(None)` when the
    /// range lies wholly in the future or beyond the retention; `InvalidTimeInterval` when
    /// `from > until`; `InvalidConfiguration` when no archive has the selected precision.
    pub fn fetch(&self, from: i64, until: Option<i64>, now: i64, archive_to_select: Option<u32>) -> Result<Option<FetchResult>, WhisperError> {
        match self.header.fetch_window(from, until, now, archive_to_select)? {
            Some((archive, from, until)) => self.archive_fetch(&archive, from, until).map(Some),
            None => Ok(None),
        }
    }

    /// Reads `from..until` from one archive, as whisper.py's `__archive_fetch` (no clipping).
    pub fn archive_fetch(&self, archive: &ArchiveInfo, from: i64, until: i64) -> Result<FetchResult, WhisperError> {
        let empty = FetchResult::empty(archive, from, until);
        let (from_interval, until_interval, step) = (empty.from, empty.until, empty.step);
        let base = self.base_interval(archive)?;
        if base == 0 {
            return Ok(empty);
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
            expected += step;
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
        Ok(Some(buf.chunks_exact(POINT_SIZE).map(decode_point).collect()))
    }

    /// Changes the aggregation method and/or xFilesFactor in place, as whisper.py's
    /// `setAggregationMethod` / `setXFilesFactor`; `None` keeps the current one. Returns the
    /// previous `(method, xFilesFactor)`.
    pub fn set_aggregation(&mut self, method: Option<AggregationMethod>, x_files_factor: Option<f32>) -> Result<(AggregationMethod, f32), WhisperError> {
        let old = (self.header.aggregation_method, self.header.x_files_factor);
        if let Some(x) = x_files_factor {
            if !(0.0..=1.0).contains(&x) {
                return Err(WhisperError::InvalidXFilesFactor(format!(
                    "Invalid xFilesFactor {x}, not between 0 and 1"
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
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<(), WhisperError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == ErrorKind::UnexpectedEof {
            WhisperError::corrupt(path, format!("unexpected end of file reading {} bytes at offset {offset}", buf.len()))
        } else {
            WhisperError::io(path, e)
        }
    })
}
