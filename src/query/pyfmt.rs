//! Python's number formatting, now owned by [`crate::python::format`]; this path re-exports it
//! so the call sites that still name `query::pyfmt` (the evaluator, argument binding, the
//! event store, the whisper CLI) keep compiling. New code should name `crate::python::format`.

pub use crate::python::format::{format_g, format_g_prec, repr_f64, str_number};
