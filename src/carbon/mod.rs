//! The carbon protocols: line parsers for plaintext, a safe decoder for pickle, the TCP and
//! UDP listeners, and the rules for metric names and tags.
//!
//! Parsers are pure functions over bytes; listeners own the sockets and hand each accepted
//! point to [`crate::store::Store`]. Nothing here reads or writes files.

pub mod listener;
pub mod name;
pub mod pickle;
pub mod plaintext;
pub mod self_metrics;
pub mod stats;

pub use listener::{Ingest, Listeners};
pub use stats::CarbonStats;
