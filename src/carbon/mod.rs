//! The carbon protocols: line parsers for plaintext, a safe decoder for pickle, the TCP and
//! UDP listeners, the rules for metric names and tags, the per-listener counters, and
//! carbon's self metrics (`carbon.agents.<host>.*`, [`SelfMetrics`]).
//!
//! Parsers are pure functions over bytes; listeners own the sockets and hand each accepted
//! point to [`crate::store::Store`]. Nothing here writes files (the store does) or
//! evaluates a target.

mod ingest;
mod listener;
mod name;
mod pickle;
mod plaintext;
mod registry;
mod self_metrics;
mod stats;

pub use ingest::Ingest;
pub use listener::{BoundAddrs, Listeners};
pub use name::{normalize, NameError, MAX_NODE_LEN};
pub use pickle::{
    decode, decode_list, entry as pickle_entry, Entry as PickleEntry, Pickle, PickleError,
    Value as PickleValue,
};
pub use plaintext::{for_each_line, parse_line, Line, LineError};
pub use self_metrics::{hostname, SelfMetrics};
pub use stats::{CarbonStats, ListenerStats};
