//! carbon's self metrics: every `carbon.stats_interval` the server writes its own counters as
//! ordinary points under `<stats_prefix>.<hostname>.` (carbon-cache's instrumentation, with
//! the host name's dots written `_`), through the normal cache path, so they are stored in
//! whisper files and queryable like any metric.
//!
//! Names and meanings follow carbon 1.1 (`lib/carbon/instrumentation.py`): counters are what
//! happened *during the last interval*, not since start.
//!
//! | name | value |
//! |---|---|
//! | `metricsReceived` | points accepted by all listeners |
//! | `committedPoints` | points written to whisper files |
//! | `updateOperations` | `update_many` calls |
//! | `pointsPerUpdate` | `committedPoints / updateOperations` (only when points were written) |
//! | `avgUpdateTime` | mean seconds per `update_many` (only when there were updates) |
//! | `creates` | whisper files created |
//! | `errors` | whisper creates or updates that failed (their points are dropped) |
//! | `cache.size` | points in the cache now (queued or being written) |
//! | `cache.queues` | metrics with an entry in the cache now |
//! | `cpuUsage` | CPU time of the process over the interval, in percent of one core |
//! | `memUsage` | resident set size now, in bytes |
//!
//! carbonhound adds, under `listeners.<listener>.` (`plaintext_tcp`, `plaintext_udp`,
//! `pickle_tcp`), each listener's counters of [`ListenerStats::snapshot`] for the interval:
//! `points`, `connections`, `idle_closed` and `evicted` (TCP connections closed for
//! `carbon.idle_timeout`, or to admit a new one at `carbon.max_connections`), `errors`, each
//! refusal reason (`malformed`, `bad_value`, …) and `nan_dropped` (NaN/inf values dropped as
//! carbon drops them, not errors);
//! `droppedPoints` (points lost with the failed operations of `errors`) and
//! `droppedOutOfRetention` (points older than their file's retention, which whisper drops);
//! `corruptReads` (renders that met a whisper file they could not read; `/health` names them);
//! `diskFull` (1 while writes find the file system full and the points wait in the cache).
//! `wal.segments` and `wal.bytes` (the write-ahead log's size now, when `[cache] wal` is on).
//!
//! This module only reads counters and inserts points; it never touches files or sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::stats::{CarbonStats, ListenerStats};
use crate::store::{unix_now, Store, StoreStats};

/// The host name as carbon writes it in metric names: `socket.gethostname()` with `.` → `_`.
pub fn hostname() -> String {
    let h = gethostname::gethostname()
        .to_string_lossy()
        .replace('.', "_");
    if h.is_empty() {
        "localhost".to_string()
    } else {
        h
    }
}

/// Cumulative counters read at one instant; the difference of two is an interval's worth.
#[derive(Debug, Default, Clone)]
struct Totals {
    received: u64,
    committed: u64,
    updates: u64,
    update_nanos: u64,
    creates: u64,
    errors: u64,
    dropped: u64,
    out_of_retention: u64,
    corrupt_reads: u64,
    listeners: Vec<(&'static str, Vec<(&'static str, u64)>)>,
}

impl Totals {
    fn read(store: &StoreStats, carbon: &CarbonStats) -> Totals {
        use std::sync::atomic::Ordering::Relaxed;
        let l = |name: &'static str, s: &ListenerStats| (name, s.snapshot());
        Totals {
            received: store.metrics_received.load(Relaxed),
            committed: store.committed_points.load(Relaxed),
            updates: store.update_operations.load(Relaxed),
            update_nanos: store.update_nanos.load(Relaxed),
            creates: store.creates.load(Relaxed),
            errors: store.errors.load(Relaxed),
            dropped: store.dropped_points.load(Relaxed),
            out_of_retention: store.dropped_out_of_retention.load(Relaxed),
            corrupt_reads: store.corrupt_reads.load(Relaxed),
            listeners: vec![
                l("plaintext_tcp", &carbon.plaintext_tcp),
                l("plaintext_udp", &carbon.plaintext_udp),
                l("pickle_tcp", &carbon.pickle_tcp),
            ],
        }
    }
}

/// Seconds of CPU (user + system, all threads) this process has used: the process CPU-time
/// clock (`CLOCK_PROCESS_CPUTIME_ID`), the same account `getrusage(RUSAGE_SELF)` sums.
pub fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Resident set size of this process in bytes (`/proc/self/statm`, as carbon's
/// `getMemUsage`); 0 where that file is missing.
pub fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64
}

/// The self-metrics recorder: remembers the last totals so each record writes one
/// interval's worth.
pub struct SelfMetrics {
    store: Arc<Store>,
    carbon: Arc<CarbonStats>,
    /// `<stats_prefix>.<hostname>.`
    prefix: String,
    last: Totals,
    last_cpu: (f64, Instant),
}

impl SelfMetrics {
    /// A recorder writing under `<prefix>.<host>.` (`prefix` may be empty: then `<host>.`).
    pub fn new(
        store: Arc<Store>,
        carbon: Arc<CarbonStats>,
        prefix: &str,
        host: &str,
    ) -> SelfMetrics {
        let prefix = prefix.trim_matches('.');
        let prefix = if prefix.is_empty() {
            format!("{host}.")
        } else {
            format!("{prefix}.{host}.")
        };
        let last = Totals::read(&store.stats, &carbon);
        SelfMetrics {
            store,
            carbon,
            prefix,
            last,
            last_cpu: (cpu_seconds(), Instant::now()),
        }
    }

    /// The full name of one self metric (`carbon.agents.web1.metricsReceived`).
    pub fn name(&self, metric: &str) -> String {
        format!("{}{}", self.prefix, metric)
    }

    /// Computes the interval's values (as `(metric, value)` pairs, names without prefix) and
    /// starts the next interval.
    pub fn collect(&mut self) -> Vec<(String, f64)> {
        // Cache figures first, before our own points enter the cache (as carbon does).
        let cache_size = self.store.cache.size() as f64;
        let cache_queues = self.store.cache.queues() as f64;
        let now = Totals::read(&self.store.stats, &self.carbon);
        let store_disk_full = self
            .store
            .stats
            .disk_full
            .load(std::sync::atomic::Ordering::Relaxed);
        let prev = std::mem::replace(&mut self.last, now.clone());
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
        let mut out: Vec<(String, f64)> = Vec::with_capacity(48);
        let mut put = |name: &str, v: f64| out.push((name.to_string(), v));
        put("cache.size", cache_size);
        put("cache.queues", cache_queues);
        let updates = d(now.updates, prev.updates);
        let committed = d(now.committed, prev.committed);
        if updates > 0.0 {
            put(
                "avgUpdateTime",
                d(now.update_nanos, prev.update_nanos) / 1e9 / updates,
            );
        }
        if committed > 0.0 && updates > 0.0 {
            put("pointsPerUpdate", committed / updates);
        }
        put("updateOperations", updates);
        put("committedPoints", committed);
        put("creates", d(now.creates, prev.creates));
        put("errors", d(now.errors, prev.errors));
        put("droppedPoints", d(now.dropped, prev.dropped));
        put(
            "droppedOutOfRetention",
            d(now.out_of_retention, prev.out_of_retention),
        );
        put("corruptReads", d(now.corrupt_reads, prev.corrupt_reads));
        put("diskFull", if store_disk_full { 1.0 } else { 0.0 });
        if let Some(w) = self.store.wal_info() {
            put("wal.segments", w.segments as f64);
            put("wal.bytes", w.bytes as f64);
        }
        put("metricsReceived", d(now.received, prev.received));
        let cpu = cpu_seconds();
        let at = Instant::now();
        let wall = at.duration_since(self.last_cpu.1).as_secs_f64().max(1e-6);
        put("cpuUsage", (cpu - self.last_cpu.0).max(0.0) / wall * 100.0);
        self.last_cpu = (cpu, at);
        put("memUsage", rss_bytes() as f64);
        for ((listener, counters), (_, before)) in now.listeners.iter().zip(prev.listeners.iter()) {
            for ((counter, v), (_, b)) in counters.iter().zip(before.iter()) {
                put(&format!("listeners.{listener}.{counter}"), d(*v, *b));
            }
        }
        out
    }

    /// Records one interval: writes every value at `timestamp` (epoch seconds) into the
    /// store. Returns how many points were written. The points are not counted in
    /// `metricsReceived` (carbon writes its own metrics straight into its cache too).
    pub fn record(&mut self, timestamp: i64) -> usize {
        let values = self.collect();
        for (metric, v) in &values {
            self.store
                .insert_uncounted(&self.name(metric), timestamp, *v);
        }
        values.len()
    }

    /// Records every `interval` until `cancel` fires. The first record comes one interval
    /// after the start.
    pub async fn run(mut self, interval: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    self.record(unix_now());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageRules;
    use crate::whisper::Preallocation;

    #[test]
    fn records_interval_counters_under_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(
                dir.path(),
                StorageRules::embedded(),
                1000,
                Preallocation::Sparse,
                0,
            )
            .unwrap(),
        );
        let carbon = Arc::new(CarbonStats::default());
        let mut sm = SelfMetrics::new(
            store.clone(),
            carbon.clone(),
            "carbon.agents",
            "web1_example_com",
        );
        store.insert("a.b", 100, 1.0);
        store.insert("a.c", 100, 1.0);
        carbon
            .plaintext_tcp
            .malformed
            .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        let v: std::collections::HashMap<String, f64> = sm.collect().into_iter().collect();
        assert_eq!(v["metricsReceived"], 2.0);
        assert_eq!(v["cache.size"], 2.0);
        assert_eq!(v["cache.queues"], 2.0);
        assert_eq!(v["listeners.plaintext_tcp.malformed"], 3.0);
        assert_eq!(v["listeners.plaintext_tcp.errors"], 3.0);
        assert!(
            !v.contains_key("pointsPerUpdate"),
            "no updates, no pointsPerUpdate (as carbon)"
        );
        // The next interval starts from zero.
        let n = sm.record(1_700_000_000);
        assert!(n > 10);
        let name = sm.name("metricsReceived");
        assert_eq!(name, "carbon.agents.web1_example_com.metricsReceived");
        assert_eq!(store.cache.get(&name), vec![(1_700_000_000, 0.0)]);
        assert!(store.index.contains(&name));
    }
}
