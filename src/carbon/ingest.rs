//! What every carbon listener shares: [`Ingest`] (the store points go to, the counters,
//! the limits, the rate-limited log of refused input, the registry of open connections), the
//! per-read [`Batch`] that counts accepted points once, and `ConnReader`, which reads a TCP
//! connection with backpressure (waiting while the cache is full), closes it when idle past
//! `carbon.idle_timeout`, and drains it on shutdown or eviction.
//!
//! Owns no socket and parses no protocol: the listeners ([`super::listener`]) accept and run
//! the connection loops, the parsers ([`super::plaintext`], [`super::pickle`]) read bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::plaintext::{parse_line, LineError};
use super::registry::{Connections, Slot};
use super::stats::{CarbonStats, ListenerStats};
use crate::ratelimit::RateLimitedLog;
use crate::store::{unix_now, Points, Store};

/// Everything a listener needs, shared by its connections.
pub struct Ingest {
    /// Where points go.
    pub store: Arc<Store>,
    /// Counters of all listeners.
    pub stats: Arc<CarbonStats>,
    /// Longest plaintext line accepted.
    pub max_line_length: usize,
    /// Largest pickle frame accepted.
    pub max_pickle_frame: usize,
    /// A TCP connection that delivers no bytes for this long is closed, as carbon's
    /// `idle_timeout` does (time spent waiting for cache room does not count); `None`
    /// (`"0s"`) never closes one.
    pub idle_timeout: Option<Duration>,
    log: RateLimitedLog,
    /// The TCP connections being served (`carbon.max_connections` at most); at the limit the
    /// longest-idle one is closed for a newcomer (see [`Connections`]).
    pub(crate) connections: Arc<Connections>,
}

impl Ingest {
    /// Shared listener state. `idle_timeout` zero never closes an idle connection.
    pub fn new(
        store: Arc<Store>,
        stats: Arc<CarbonStats>,
        max_line_length: usize,
        max_pickle_frame: usize,
        max_connections: usize,
        idle_timeout: Duration,
    ) -> Arc<Ingest> {
        Arc::new(Ingest {
            store,
            stats,
            max_line_length,
            max_pickle_frame,
            idle_timeout: (!idle_timeout.is_zero()).then_some(idle_timeout),
            log: RateLimitedLog::new(Duration::from_secs(10), 10),
            connections: Connections::new(max_connections),
        })
    }

    /// Logs a refused input, rate-limited: which listener, from whom, why, and the start of
    /// the offending bytes.
    pub fn refuse(
        &self,
        listener: &str,
        peer: SocketAddr,
        why: &dyn std::fmt::Display,
        bytes: &[u8],
    ) {
        // Formatted only when the rate limit lets the message through: a flood of bad lines
        // costs a counter increment each, not a string.
        let shown = Shown(&bytes[..bytes.len().min(200)]);
        self.log.warn(format_args!(
            "{listener}: refused input from {peer}: {why}: \"{shown}\""
        ));
    }

    /// Parses and stores one plaintext line, counting it in `stats`.
    pub(crate) fn line(
        &self,
        stats: &ListenerStats,
        batch: &mut Batch,
        listener: &str,
        peer: SocketAddr,
        line: &[u8],
    ) {
        if line.len() > self.max_line_length {
            stats
                .too_long
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.refuse(listener, peer, &LineError::TooLong, line);
            return;
        }
        match parse_line(line) {
            Ok(l) => {
                batch
                    .points
                    .push(&l.name, l.timestamp.unwrap_or(batch.now), l.value);
            }
            Err(e) => {
                stats.refused(&e);
                // NaN/inf is dropped silently, as carbon does: counted, never logged.
                if e != LineError::NotFinite {
                    self.refuse(listener, peer, &e, line);
                }
            }
        }
    }
}

/// The start of refused input as printable text, written lazily: lossy UTF-8, the line end
/// (`\r`, as collectd and Windows senders end lines) left out, and every other control
/// character shown as `?`, so a log line never carries terminal escapes or stray `\r`s.
struct Shown<'a>(&'a [u8]);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        let text = String::from_utf8_lossy(self.0);
        for c in text.trim_end_matches(['\r', '\n']).chars() {
            f.write_char(if c.is_control() { '?' } else { c })?;
        }
        Ok(())
    }
}

/// Points ingested in one read, handed to the store at the end: one write-ahead-log record
/// and one count per read, not per point.
pub struct Batch {
    /// "Now" for `-1` timestamps, read once per batch.
    pub now: i64,
    /// Points accepted so far.
    pub points: Points,
}

impl Batch {
    /// A new batch stamped with the current time.
    pub fn new() -> Batch {
        Batch {
            now: unix_now(),
            points: Points::new(),
        }
    }

    /// Hands the points to the store (logged, then cached; see [`Store::insert_points`]) and
    /// counts them in the listener's counters.
    pub fn commit(mut self, ingest: &Ingest, stats: &ListenerStats) {
        if !self.points.is_empty() {
            stats
                .points
                .fetch_add(self.points.len(), std::sync::atomic::Ordering::Relaxed);
            ingest.store.insert_points(&mut self.points);
        }
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

/// On shutdown a connection reads on until its peer goes quiet for this long…
pub(crate) const DRAIN_QUIET: Duration = Duration::from_millis(250);
/// …or this much time has passed, so points already sent are not lost.
pub(crate) const DRAIN_MAX: Duration = Duration::from_secs(5);

/// What one read of a connection gave.
pub(crate) enum ReadOutcome {
    /// `n` bytes.
    Data(usize),
    /// The peer closed the connection (or it failed).
    Eof,
    /// Shutting down (or evicted) and the peer went quiet, or the connection was idle past
    /// `carbon.idle_timeout`: stop, dropping any unfinished line or frame.
    Stopped,
}

/// Reads a connection for a listener: waits while the cache is full (backpressure), stops
/// when a read waits longer than `carbon.idle_timeout`, and once the slot's token fires
/// (shutdown, or evicted for a newcomer) switches to draining (reads on without waiting for
/// room, until the peer is quiet for [`DRAIN_QUIET`] or [`DRAIN_MAX`] has passed).
pub(crate) struct ConnReader<'a> {
    slot: &'a Slot,
    cancel: CancellationToken,
    drain_until: Option<tokio::time::Instant>,
}

impl<'a> ConnReader<'a> {
    pub(crate) fn new(slot: &'a Slot) -> ConnReader<'a> {
        ConnReader {
            slot,
            cancel: slot.cancel().clone(),
            drain_until: None,
        }
    }

    pub(crate) async fn read(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut [u8],
        ingest: &Ingest,
    ) -> ReadOutcome {
        let slot = self.slot;
        let done = |r: std::io::Result<usize>| match r {
            Ok(0) | Err(_) => ReadOutcome::Eof,
            Ok(n) => {
                slot.touch();
                ReadOutcome::Data(n)
            }
        };
        if self.drain_until.is_none() {
            if ingest.store.cache.is_full() {
                tokio::select! {
                    _ = self.cancel.cancelled() => {}
                    _ = ingest.store.cache.wait_for_room() => {}
                }
            }
            if !self.cancel.is_cancelled() {
                let idle = async {
                    match ingest.idle_timeout {
                        Some(d) => tokio::time::sleep(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = self.cancel.cancelled() => {}
                    r = stream.read(buf) => return done(r),
                    _ = idle => {
                        slot.mark_idle_closed();
                        return ReadOutcome::Stopped;
                    }
                }
            }
            self.drain_until = Some(tokio::time::Instant::now() + DRAIN_MAX);
        }
        let drain_until = self.drain_until.unwrap_or_else(tokio::time::Instant::now);
        // The persisters still run while listeners drain: wait for room, within the deadline,
        // so memory stays bounded during shutdown too.
        if ingest.store.cache.is_full() {
            let _ = tokio::time::timeout_at(drain_until, ingest.store.cache.wait_for_room()).await;
            if ingest.store.cache.is_full() {
                return ReadOutcome::Stopped;
            }
        }
        let deadline = drain_until.min(tokio::time::Instant::now() + DRAIN_QUIET);
        match tokio::time::timeout_at(deadline, stream.read(buf)).await {
            Ok(r) => done(r),
            Err(_) => ReadOutcome::Stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shown;

    #[test]
    fn refused_input_is_shown_without_control_characters() {
        assert_eq!(Shown(b"bad..name 1 2\r").to_string(), "bad..name 1 2");
        assert_eq!(Shown(b"a\x1b[31mred\x00 1 2").to_string(), "a?[31mred? 1 2");
        assert_eq!(Shown(b"\xff\xfe.bad").to_string(), "\u{fffd}\u{fffd}.bad");
    }
}
