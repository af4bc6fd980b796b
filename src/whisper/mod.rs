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
//!
//! # Compatibility
//!
//! The reference is whisper 1.1's `whisper.py` as Debian's python3-whisper runs it (CPython
//! 3.11); `tests/whisper_compat.rs` checks hundreds of random files both ways, value for value
//! and byte for byte. Where this module differs, on purpose:
//!
//! - **Bad files are refused, not half-read.** Beyond whisper.py's own `CorruptWhisperFile`
//!   checks, a header with no archive or more than 4096, an archive with zero
//!   `secondsPerPoint` or zero points, an archive outside the file (truncated) or over the
//!   header, or a `maxRetention` longer than every archive is `Corrupt` (whisper.py would
//!   divide by zero, read short, or answer up to 2³² nulls). Nothing is written to a file
//!   refused at open.
//! - **A run longer than the ring** (only with points in the future, in one `update_many`)
//!   leaves the ring's newest points; whisper.py writes such a run past the archive's end, into
//!   the next archive or beyond the end of the file.
//! - **Propagation order.** whisper.py propagates the intervals of one `update_many` in
//!   CPython's `set` order, we in ascending order. The same value reaches each lower slot; but
//!   an empty lower archive takes the first interval written as its base, so its ring may be
//!   rotated relative to whisper.py's (every read agrees), and when two intervals of one call lie
//!   exactly one lower retention apart (same slot) we keep the newer where whisper.py keeps
//!   whichever its set yields last.
//! - **Bounded reads.** A fetch over a never-written archive longer than max(points + 1, 2²⁰)
//!   steps is refused (`archiveToSelect` with a range far longer than that archive); whisper.py
//!   builds the list of nulls.
//! - **Stricter input.** `create` checks the xFilesFactor before creating the file (whisper.py
//!   leaves an empty file behind); retention definitions with zero precision or zero points and
//!   files over 4 GiB are refused; `set_aggregation` refuses a NaN xFilesFactor (whisper.py
//!   writes it, then cannot read the file); a timestamp outside 0..=2³²−1 is
//!   `InvalidTimeInterval` (whisper.py's `struct.error`).
//! - **Kept quirks**, so values and bytes match: exactly equal timestamps in one `update_many`
//!   keep the first given; `not previousInterval` treats interval 0 as "no previous"; a fetch
//!   range longer than the ring reads the ring once (fewer values than the range spans);
//!   `avg_zero` counts unknown slots as 0; sums run left to right as CPython ≤ 3.11's `sum`.

mod aggregate;
#[cfg(test)]
mod corrupt_tests;
mod error;
mod file;
mod header;
mod resize;
mod retention;

pub use aggregate::AggregationMethod;
pub use error::WhisperError;
#[cfg(test)]
pub(crate) use file::drop_cached_pages;
pub use file::{
    create, create_open, file_id, CreateOptions, FetchResult, Known, Preallocation, Residency,
    WhisperFile,
};
pub use header::{ArchiveInfo, Header, ARCHIVE_INFO_SIZE, METADATA_SIZE, POINT_SIZE};
pub use resize::{aggregate_into, read_archives};
pub use retention::{parse_retention_def, parse_retentions, validate_archive_list, Retention};

/// One data point as callers hand it to [`WhisperFile::update_many`]: `(timestamp, value)`,
/// the timestamp in epoch seconds.
pub type Point = (i64, f64);
