//! How a function fails: an HTTP-400 [`EvalError`] for a bad request, Python's exceptions
//! from [`crate::python`] as the same, and Python patterns compiled with the function's name
//! in their error. Never decides what Python would do; [`crate::python`] does.

use crate::python::PyError;
use crate::query::eval::EvalError;

/// An HTTP-400 evaluation error with `msg`.
pub fn bad(msg: impl Into<String>) -> EvalError {
    EvalError::BadRequest(msg.into())
}

/// A Python `re` pattern compiled for graphite-web's function `function` (`grep`, `exclude`,
/// `useSeriesAbove`, `seriesByTag`, the `/tags` filters): see [`crate::python::Regex`]. Errors
/// are HTTP 400s naming the function.
pub fn py_regex(pattern: &str, function: &str) -> Result<crate::python::Regex, EvalError> {
    crate::python::Regex::new(pattern).map_err(|e| bad(format!("{function}: {e}")))
}

/// A Python exception from [`crate::python`] is the user's request failing, as in
/// graphite-web: an HTTP 400 with Python's message.
impl From<PyError> for EvalError {
    fn from(e: PyError) -> EvalError {
        EvalError::BadRequest(e.0)
    }
}
