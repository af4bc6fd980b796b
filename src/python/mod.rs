//! Python's semantics, where graphite-web's output depends on them. This is the only place
//! carbonhound emulates CPython (3.11, the interpreter graphite-web 1.1.8 and python3-whisper
//! run on in the reference setup): every other module asks here instead of re-deriving what
//! Python would print, round, slice or match.
//!
//! - `re`: Python `re` patterns translated for the Rust regex engine (the one translator,
//!   for `grep`, `exclude`, `aliasSub`, `aliasQuery`, `useSeriesAbove`, `seriesByTag` and the
//!   `/tags` filters), and `re.sub` with Python's replacement templates.
//! - `format`: `repr(float)`, `str()` of numbers, and `%`-formatting (`%d`, `%.Nf`, `%.Ne`,
//!   `%g`, `%s`, one-argument `fmt % value`, `%-Ns`).
//! - `number`: `round(x, n)`, `math.pow`, `math.exp`, with Python's errors.
//! - `sequence`: indexing and slicing (`seq[i]`, `seq[a:b]`) with negative indices.
//! - `datetime`: the ranges `datetime` and `timedelta` can hold.
//! - `text`: `str.isspace()`, `strip()`, `split()`, `capitalize()`, `repr()` of a string.
//! - `json`: `json.dumps` (`json_dumps`, `json_push_str`), as graphite-web writes its JSON.
//!
//! It must never know about series, the store, HTTP or evaluation: functions take and return
//! plain numbers and text, and report Python's exceptions as [`PyError`] (callers turn them
//! into their own errors, e.g. an HTTP 400).

mod datetime;
mod format;
mod json;
mod number;
mod re;
mod sequence;
mod text;

pub use datetime::{DATETIME_RANGE, TIMEDELTA_MAX_SECONDS};
pub use format::{
    format_d, format_f, format_g, format_g_prec, ljust, percent_format, repr_f64, str_number,
};
pub use json::{dumps as json_dumps, push_str as json_push_str};
pub use number::{math_exp, math_pow, round};
pub use re::{Regex, Sub, BACKTRACK_LIMIT};
pub use sequence::{index, index_of, slice_end, slice_range};
pub use text::{capitalize, repr_str, split, strip};

/// The exception Python would raise: its message as `str(exc)` gives it (with a word of
/// context where the bare message would puzzle a Graphite user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyError(pub String);

impl PyError {
    pub(crate) fn new(msg: impl Into<String>) -> PyError {
        PyError(msg.into())
    }
}

impl std::fmt::Display for PyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PyError {}
