//! Per-listener counters: what each listener received and what it refused, by reason.

use std::sync::atomic::{AtomicU64, Ordering};

use super::plaintext::LineError;

/// Counters of one listener (`plaintext_tcp`, `plaintext_udp`, `pickle_tcp`), since start.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Points accepted into the store.
    pub points: AtomicU64,
    /// Connections accepted (TCP) or datagrams received (UDP).
    pub connections: AtomicU64,
    /// TCP connections the server closed because they sent nothing for
    /// `carbon.idle_timeout`.
    pub idle_closed: AtomicU64,
    /// TCP connections closed, as the longest idle, to admit a new one at
    /// `carbon.max_connections`.
    pub evicted: AtomicU64,
    /// Lines (or pickle entries) refused: not `path value timestamp`.
    pub malformed: AtomicU64,
    /// Refused: value not a number.
    pub bad_value: AtomicU64,
    /// Dropped, not an error: value NaN or infinite, as carbon drops NaN (collectd's first
    /// value of every rate is `nan`). Not in [`ListenerStats::errors`].
    pub nan_dropped: AtomicU64,
    /// Refused: timestamp unusable.
    pub bad_timestamp: AtomicU64,
    /// Refused: metric name unusable (empty node, `/`, control character, bad tag, …).
    pub bad_name: AtomicU64,
    /// Refused: line over `carbon.max_line_length`, or pickle frame over its limit.
    pub too_long: AtomicU64,
    /// Refused: not UTF-8.
    pub not_utf8: AtomicU64,
    /// Refused pickle frames: not the `[(path, (timestamp, value)), …]` shape, or an opcode
    /// outside the safe subset.
    pub bad_pickle: AtomicU64,
}

impl ListenerStats {
    /// Counts one refused line or pickle entry under its reason.
    pub fn refused(&self, reason: &LineError) {
        let c = match reason {
            LineError::Malformed => &self.malformed,
            LineError::NotUtf8 => &self.not_utf8,
            LineError::BadValue => &self.bad_value,
            LineError::NotFinite => &self.nan_dropped,
            LineError::BadTimestamp => &self.bad_timestamp,
            LineError::BadName(_) => &self.bad_name,
            LineError::TooLong => &self.too_long,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// All refusals together (NaN and infinite values are dropped, not refused: not here).
    pub fn errors(&self) -> u64 {
        [
            &self.malformed,
            &self.bad_value,
            &self.bad_timestamp,
            &self.bad_name,
            &self.too_long,
            &self.not_utf8,
            &self.bad_pickle,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    /// The counters as `(name, value)` pairs, for `/health` and the self metrics.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("points", l(&self.points)),
            ("connections", l(&self.connections)),
            ("idle_closed", l(&self.idle_closed)),
            ("evicted", l(&self.evicted)),
            ("errors", self.errors()),
            ("malformed", l(&self.malformed)),
            ("bad_value", l(&self.bad_value)),
            ("nan_dropped", l(&self.nan_dropped)),
            ("bad_timestamp", l(&self.bad_timestamp)),
            ("bad_name", l(&self.bad_name)),
            ("too_long", l(&self.too_long)),
            ("not_utf8", l(&self.not_utf8)),
            ("bad_pickle", l(&self.bad_pickle)),
        ]
    }
}

/// Counters of every listener.
#[derive(Debug, Default)]
pub struct CarbonStats {
    /// Plaintext over TCP.
    pub plaintext_tcp: ListenerStats,
    /// Plaintext over UDP.
    pub plaintext_udp: ListenerStats,
    /// Pickle over TCP.
    pub pickle_tcp: ListenerStats,
}

impl CarbonStats {
    /// Refusals of all listeners together.
    pub fn errors(&self) -> u64 {
        self.plaintext_tcp.errors() + self.plaintext_udp.errors() + self.pickle_tcp.errors()
    }
}
