//! Whisper's named errors, worded as whisper.py words them so an operator who knows Graphite
//! recognises them.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading or writing a whisper file.
///
/// Each variant matches an exception of whisper.py (`InvalidConfiguration`,
/// `InvalidAggregationMethod`, `InvalidTimeInterval`, `InvalidXFilesFactor`,
/// `TimestampNotCovered`, `CorruptWhisperFile`) plus plain I/O failures.
#[derive(Debug)]
pub enum WhisperError {
    /// A retention list or create request whisper refuses (duplicate precision, precision
    /// that does not divide the next, shrinking retention, too few points, file exists).
    InvalidConfiguration(String),
    /// An aggregation method name or type number that whisper does not know.
    InvalidAggregationMethod(String),
    /// A fetch whose `from` is after its `until`.
    InvalidTimeInterval(String),
    /// An xFilesFactor that is not a number between 0 and 1.
    InvalidXFilesFactor(String),
    /// A single-point `update` whose timestamp is in the future or older than the file keeps.
    TimestampNotCovered,
    /// The file's header or size does not describe a whisper file; the file is not touched.
    Corrupt {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong, e.g. `Unable to read header`.
        error: String,
    },
    /// The operating system refused a read or write.
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl WhisperError {
    /// Whether this is the file system saying it has no room (`ENOSPC`, or a quota's
    /// `EDQUOT`): the write may succeed later, so the caller keeps the points and retries.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            WhisperError::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error()
                    || code == rustix::io::Errno::DQUOT.raw_os_error()
            ),
            _ => false,
        }
    }

    /// Whether the process (`EMFILE`) or the system (`ENFILE`) had no file descriptor left to
    /// open the file: another open may succeed once descriptors are closed, so the caller
    /// keeps the points and retries, as for [`WhisperError::is_out_of_space`].
    pub fn is_out_of_descriptors(&self) -> bool {
        match self {
            WhisperError::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
                    || code == rustix::io::Errno::NFILE.raw_os_error()
            ),
            _ => false,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, error: impl Into<String>) -> Self {
        WhisperError::Corrupt {
            path: path.to_path_buf(),
            error: error.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: io::Error) -> Self {
        WhisperError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for WhisperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WhisperError::InvalidConfiguration(m)
            | WhisperError::InvalidAggregationMethod(m)
            | WhisperError::InvalidTimeInterval(m)
            | WhisperError::InvalidXFilesFactor(m) => f.write_str(m),
            WhisperError::TimestampNotCovered => {
                f.write_str("Timestamp not covered by any archives in this database.")
            }
            WhisperError::Corrupt { path, error } => write!(f, "{error} ({})", path.display()),
            WhisperError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for WhisperError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WhisperError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
