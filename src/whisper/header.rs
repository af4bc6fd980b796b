//! The whisper header: metadata and archive info, read with one `pread` and checked against
//! the file's size so that a corrupt or truncated file is an error, never a panic.

use std::path::Path;

use super::{AggregationMethod, Retention, WhisperError};

/// Bytes of the metadata block: aggregationType, maxRetention, xFilesFactor, archiveCount.
pub const METADATA_SIZE: usize = 16;
/// Bytes of one archive-info block: offset, secondsPerPoint, points.
pub const ARCHIVE_INFO_SIZE: usize = 12;
/// Bytes of one point: timestamp (u32) and value (f64).
pub const POINT_SIZE: usize = 12;

/// Most archives a header may declare; whisper sets no limit, but a header claiming more is
/// far more likely corrupt than real, and the bound keeps a bad file from costing memory.
const MAX_ARCHIVES: u32 = 4096;

/// One archive as the header describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// Byte offset of the archive's first point in the file.
    pub offset: u32,
    /// Seconds between two points.
    pub seconds_per_point: u32,
    /// Number of points (slots) in the ring.
    pub points: u32,
}

impl ArchiveInfo {
    /// Seconds of history: `seconds_per_point × points` (whisper's `retention`).
    pub fn retention(&self) -> i64 {
        self.seconds_per_point as i64 * self.points as i64
    }

    /// Bytes the archive occupies: `points × 12` (whisper's `size`).
    pub fn size(&self) -> u64 {
        self.points as u64 * POINT_SIZE as u64
    }

    /// Byte offset one past the archive's last point.
    pub fn end(&self) -> u64 {
        self.offset as u64 + self.size()
    }
}

/// A whisper file's header, as whisper.py's `info()` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// How points propagate into lower-precision archives.
    pub aggregation_method: AggregationMethod,
    /// Seconds of history the whole file keeps (the largest archive retention).
    pub max_retention: u32,
    /// Fraction (0..=1) of an interval's points that must be known to propagate it.
    pub x_files_factor: f32,
    /// The archives, highest precision first.
    pub archives: Vec<ArchiveInfo>,
}

impl Header {
    /// The header whisper.py's `create` writes for these (already validated) archives.
    pub fn for_archives(
        archives: &[Retention],
        x_files_factor: f32,
        aggregation_method: AggregationMethod,
    ) -> Header {
        let mut offset = (METADATA_SIZE + ARCHIVE_INFO_SIZE * archives.len()) as u32;
        let infos = archives
            .iter()
            .map(|r| {
                let info = ArchiveInfo {
                    offset,
                    seconds_per_point: r.seconds_per_point,
                    points: r.points,
                };
                offset += r.points * POINT_SIZE as u32;
                info
            })
            .collect();
        Header {
            aggregation_method,
            max_retention: archives.iter().map(|a| a.retention()).max().unwrap_or(0) as u32,
            x_files_factor,
            archives: infos,
        }
    }

    /// Bytes of the header: metadata plus one archive-info block per archive.
    pub fn header_size(&self) -> usize {
        METADATA_SIZE + ARCHIVE_INFO_SIZE * self.archives.len()
    }

    /// Bytes of the whole file: header plus every archive.
    pub fn file_size(&self) -> u64 {
        self.archives
            .iter()
            .map(|a| a.end())
            .max()
            .unwrap_or(self.header_size() as u64)
    }

    /// whisper.py's `file_fetch` before it reads: clips `from..until` (until defaulting to
    /// `now`) to the retention and to `now`, and picks the archive — the first whose retention
    /// covers `now - from`, or the one whose `secondsPerPoint` is `archive_to_select`.
    ///
    /// Returns `(archive, from, until)`, `Ok(None)` when the range is wholly in the future or
    /// beyond the retention, `InvalidTimeInterval` when `from > until`, and
    /// `InvalidConfiguration("Invalid granularity: …")` for an unknown precision.
    pub fn fetch_window(
        &self,
        from: i64,
        until: Option<i64>,
        now: i64,
        archive_to_select: Option<u32>,
    ) -> Result<Option<(ArchiveInfo, i64, i64)>, WhisperError> {
        let mut until = until.unwrap_or(now);
        let mut from = from;
        if from > until {
            return Err(WhisperError::InvalidTimeInterval(format!(
                "Invalid time interval: from time '{from}' is after until time '{until}'"
            )));
        }
        let oldest = now - self.max_retention as i64;
        if from > now || until < oldest {
            return Ok(None);
        }
        if from < oldest {
            from = oldest;
        }
        if until > now {
            until = now;
        }
        let diff = now - from;
        let archive = match archive_to_select {
            Some(spp) => *self
                .archives
                .iter()
                .find(|a| a.seconds_per_point == spp)
                .ok_or_else(|| WhisperError::InvalidConfiguration(format!("Invalid granularity: {spp}")))?,
            // whisper.py would fail here (no archive covers the range: a header whose
            // maxRetention exceeds every archive); the last archive answers instead.
            None => match self.archives.iter().find(|a| a.retention() >= diff) {
                Some(a) => *a,
                None => match self.archives.last() {
                    Some(a) => *a,
                    None => return Ok(None),
                },
            },
        };
        Ok(Some((archive, from, until)))
    }

    /// The 16-byte metadata block.
    pub fn encode_metadata(&self) -> [u8; METADATA_SIZE] {
        let mut b = [0u8; METADATA_SIZE];
        b[0..4].copy_from_slice(&self.aggregation_method.type_number().to_be_bytes());
        b[4..8].copy_from_slice(&self.max_retention.to_be_bytes());
        b[8..12].copy_from_slice(&self.x_files_factor.to_be_bytes());
        b[12..16].copy_from_slice(&(self.archives.len() as u32).to_be_bytes());
        b
    }

    /// The whole header as it is written at the start of the file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_size());
        out.extend_from_slice(&self.encode_metadata());
        for a in &self.archives {
            out.extend_from_slice(&a.offset.to_be_bytes());
            out.extend_from_slice(&a.seconds_per_point.to_be_bytes());
            out.extend_from_slice(&a.points.to_be_bytes());
        }
        out
    }

    /// Parses a header from the first bytes of a file of `file_len` bytes.
    ///
    /// Returns `Ok(None)` when `bytes` is too short to hold the archive-info blocks the
    /// metadata announces (the caller reads more and tries again). Errors, worded as
    /// whisper.py's `CorruptWhisperFile`, when the metadata is unreadable, the aggregation type
    /// or xFilesFactor is out of range, an archive has no points or a zero precision, or an
    /// archive runs past the end of the file (a truncated file).
    pub fn parse(bytes: &[u8], file_len: u64, path: &Path) -> Result<Option<Header>, WhisperError> {
        if bytes.len() < METADATA_SIZE {
            return Err(WhisperError::corrupt(path, "Unable to read header"));
        }
        let u32_at = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let aggregation_method = AggregationMethod::from_type_number(u32_at(0))
            .ok_or_else(|| WhisperError::corrupt(path, "Unable to read header"))?;
        let max_retention = u32_at(4);
        let x_files_factor = f32::from_bits(u32_at(8));
        if !(0.0..=1.0).contains(&x_files_factor) {
            return Err(WhisperError::corrupt(path, "Unable to read header"));
        }
        let count = u32_at(12);
        if count == 0 || count > MAX_ARCHIVES {
            return Err(WhisperError::corrupt(
                path,
                format!("Unable to read header: {count} archives"),
            ));
        }
        let needed = METADATA_SIZE + ARCHIVE_INFO_SIZE * count as usize;
        if needed as u64 > file_len {
            return Err(WhisperError::corrupt(
                path,
                format!("Unable to read archive{} metadata", (file_len.saturating_sub(METADATA_SIZE as u64) / ARCHIVE_INFO_SIZE as u64)),
            ));
        }
        if bytes.len() < needed {
            return Ok(None);
        }
        let mut archives = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let base = METADATA_SIZE + i * ARCHIVE_INFO_SIZE;
            let info = ArchiveInfo {
                offset: u32_at(base),
                seconds_per_point: u32_at(base + 4),
                points: u32_at(base + 8),
            };
            if info.seconds_per_point == 0 || info.points == 0 {
                return Err(WhisperError::corrupt(
                    path,
                    format!("Unable to read archive{i} metadata: empty archive"),
                ));
            }
            if (info.offset as usize) < needed || info.end() > file_len {
                return Err(WhisperError::corrupt(
                    path,
                    format!(
                        "archive{i} (bytes {}..{}) lies outside the file ({file_len} bytes): truncated?",
                        info.offset,
                        info.end()
                    ),
                ));
            }
            archives.push(info);
        }
        Ok(Some(Header {
            aggregation_method,
            max_retention,
            x_files_factor,
            archives,
        }))
    }
}
