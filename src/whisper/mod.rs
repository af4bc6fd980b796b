//! The Whisper 1.1 file format: create, open, `update_many`, `fetch`, `info`, exactly as
//! graphite-project/whisper's `whisper.py` does them, so files move freely between
//! carbonhound and every other Graphite tool.
//!
//! This module owns the bytes of a `.wsp` file and nothing else: plain synchronous file I/O
//! (`pread`/`pwrite`), no tokio, no knowledge of the server, the cache or metric names.
//!
//! # Layout (all integers unsigned 32-bit big-endian, values IEEE-754 big-endian)
//!
//! ```text
//! Header     = Metadata ArchiveInfo+
//! Metadata   = aggregationType(u32) maxRetention(u32) xFilesFactor(f32) archiveCount(u32)   16 bytes
//! ArchiveInfo= offset(u32) secondsPerPoint(u32) points(u32)                                 12 bytes each
//! Archive    = Point+            (points × 12 bytes, starting at `offset`)
//! Point      = timestamp(u32) value(f64)                                                    12 bytes
//! ```
//!
//! An archive is a ring: the slot of timestamp `t` is `((t - base) / step) mod points`, where
//! `base` is the timestamp stored in the archive's first slot (0 while the archive is empty).
//! A slot whose stored timestamp is not the one expected holds stale data and reads as null.
//!
//! Writes go to the highest-precision archive whose retention covers the point's age, then
//! propagate into each lower-precision archive: the `secondsPerPoint` of the lower archive is
//! one aggregation interval; its value is the `aggregationMethod` of the known higher points in
//! that interval, written only when the known fraction is at least `xFilesFactor`.

mod aggregate;
#[cfg(test)]
mod corrupt_tests;
mod error;
mod file;
mod header;
mod retention;

pub use aggregate::AggregationMethod;
pub use error::WhisperError;
pub use file::{create, CreateOptions, FetchResult, Preallocation, WhisperFile};
pub use header::{ArchiveInfo, Header, ARCHIVE_INFO_SIZE, METADATA_SIZE, POINT_SIZE};
pub use retention::{parse_retention_def, parse_retentions, validate_archive_list, Retention};

/// One data point as callers hand it to [`WhisperFile::update_many`]: `(timestamp, value)`,
/// the timestamp in epoch seconds.
pub type Point = (i64, f64);
