//! The carbon protocols: line parsers for plaintext, a safe decoder for pickle, the TCP and
//! UDP listeners, the rules for metric names and tags, the per-listener counters, and
//! carbon's self metrics (`carbon.agents.<host>.*`, [`self_metrics`]).
//!
//! Parsers are pure functions over bytes; listeners own the sockets and hand each accepted
//! point to [`crate::store::Store`]. Nothing here writes files (the store does) or
//! evaluates a target.

pub mod ingest;
pub mod listener;
pub mod name;
pub mod pickle;
pub mod plaintext;
pub mod self_metrics;
pub mod stats;

pub use ingest::Ingest;
pub use listener::Listeners;
pub use stats::CarbonStats;
