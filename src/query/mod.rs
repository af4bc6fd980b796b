//! The Graphite target language: parse a target (`parse`), read `from`/`until` (`attime`),
//! evaluate it against the store (`eval`) with the registered functions (`functions`), giving
//! [`Series`] for the output formats and the graph renderer.
//!
//! Read-only: nothing in here writes to the store.

pub mod ast;
pub mod attime;
pub mod eval;
pub mod functions;
pub mod parse;
pub mod pyfmt;
pub mod registry;
pub mod series;

pub use ast::Expr;
pub use eval::{EvalContext, EvalError, QueryLimits, RequestState, Value};
pub use parse::{parse_target, ParseError};
pub use series::Series;
