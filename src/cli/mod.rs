//! Command-line tools beside `serve`: the `whisper` subcommands that stand in for
//! python3-whisper's `whisper-info.py`, `whisper-fetch.py`, `whisper-dump.py`,
//! `whisper-create.py`, `whisper-set-aggregation-method.py` and `whisper-resize.py`, printing
//! what they print.
//!
//! Each tool works on the file it is given and nothing else: no server, no settings, no
//! store. Errors go to stderr with exit status 1; a tool never panics on a bad file.
//!
//! `metrics` (delete, rename, stale) is the exception that proves it: it works on nothing
//! itself, asking the running server over HTTP, which owns the files, cache and indexes.

mod metrics;
mod whisper;

pub use metrics::{run as run_metrics, MetricsCliError, MetricsCommand, Server as MetricsServer};
pub use whisper::{run as run_whisper, DropFilter, WhisperCommand};
