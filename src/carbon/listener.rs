//! The carbon listeners: plaintext over TCP and UDP (and pickle over TCP, see
//! [`super::pickle`]), each handing points to the store.
//!
//! Every connection is its own task. Before each read it checks the cache: at its limit the
//! task waits, so the sender feels TCP backpressure and nothing is dropped. A refused line is
//! counted and logged (rate-limited) and the connection reads on. UDP has no backpressure:
//! while the cache is full, datagrams wait in the socket's receive buffer and the kernel drops
//! what does not fit (counted by the kernel, in `/proc/net/udp`). At most
//! `carbon.max_connections` TCP connections are served at once (each holds a 64 KiB buffer);
//! beyond that the listeners accept no more until one closes, and clients wait in the
//! kernel's accept queue, so memory stays bounded.
//!
//! On shutdown the listeners stop accepting (connections the kernel already completed are
//! still served), and each connection drains: it reads on, without waiting for cache room,
//! until its peer closes, goes quiet for 250 ms, or 5 s have passed — so points a client sent
//! just before SIGTERM are stored, not left in the socket buffer. Then the tasks end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::plaintext::{for_each_line, parse_line, LineError};
use super::stats::{CarbonStats, ListenerStats};
use crate::ratelimit::RateLimitedLog;
use crate::store::{unix_now, Store};

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
    log: RateLimitedLog,
    /// One permit per TCP connection being served (`carbon.max_connections`); at the limit
    /// the listeners stop accepting until a connection closes, and new ones wait in the
    /// kernel's accept queue.
    connections: Arc<tokio::sync::Semaphore>,
}

impl Ingest {
    /// Shared listener state.
    pub fn new(
        store: Arc<Store>,
        stats: Arc<CarbonStats>,
        max_line_length: usize,
        max_pickle_frame: usize,
        max_connections: usize,
    ) -> Arc<Ingest> {
        Arc::new(Ingest {
            store,
            stats,
            max_line_length,
            max_pickle_frame,
            log: RateLimitedLog::new(Duration::from_secs(10), 10),
            connections: Arc::new(tokio::sync::Semaphore::new(max_connections.max(1))),
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
    fn line(
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
                self.store
                    .insert_deferred(&l.name, l.timestamp.unwrap_or(batch.now), l.value);
                batch.points += 1;
            }
            Err(e) => {
                stats.refused(&e);
                self.refuse(listener, peer, &e, line);
            }
        }
    }
}

/// The start of refused input as printable text (lossy UTF-8, escaped), written lazily.
struct Shown<'a>(&'a [u8]);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(self.0).escape_debug())
    }
}

/// Points ingested in one read, counted once at the end (one atomic add per read, not per
/// point).
pub struct Batch {
    /// "Now" for `-1` timestamps, read once per batch.
    pub now: i64,
    /// Points accepted so far.
    pub points: u64,
}

impl Batch {
    /// A new batch stamped with the current time.
    pub fn new() -> Batch {
        Batch {
            now: unix_now(),
            points: 0,
        }
    }

    /// Adds the batch's count to the listener's and the store's counters.
    pub fn commit(self, ingest: &Ingest, stats: &ListenerStats) {
        if self.points > 0 {
            stats
                .points
                .fetch_add(self.points, std::sync::atomic::Ordering::Relaxed);
            ingest.store.count_received(self.points);
        }
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

/// The addresses the listeners actually bound (port 0 resolved), `None` for disabled ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundAddrs {
    /// Plaintext TCP.
    pub plaintext_tcp: Option<SocketAddr>,
    /// Plaintext UDP.
    pub plaintext_udp: Option<SocketAddr>,
    /// Pickle TCP.
    pub pickle_tcp: Option<SocketAddr>,
}

/// The running listeners.
pub struct Listeners {
    /// Where they listen.
    pub addrs: BoundAddrs,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Listeners {
    /// Binds every configured listener ("" disables one) and starts accepting.
    /// Errors name the address that could not be bound.
    pub async fn start(
        ingest: Arc<Ingest>,
        plaintext_tcp: &str,
        plaintext_udp: &str,
        pickle_tcp: &str,
    ) -> Result<Listeners, String> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut addrs = BoundAddrs::default();
        if !plaintext_tcp.is_empty() {
            let l = TcpListener::bind(plaintext_tcp).await.map_err(|e| {
                format!("cannot listen on {plaintext_tcp} (carbon.plaintext_tcp): {e}")
            })?;
            addrs.plaintext_tcp = l.local_addr().ok();
            tracker.spawn(accept_loop(
                l,
                ingest.clone(),
                cancel.clone(),
                tracker.clone(),
                Protocol::Plaintext,
            ));
        }
        if !pickle_tcp.is_empty() {
            let l = TcpListener::bind(pickle_tcp)
                .await
                .map_err(|e| format!("cannot listen on {pickle_tcp} (carbon.pickle_tcp): {e}"))?;
            addrs.pickle_tcp = l.local_addr().ok();
            tracker.spawn(accept_loop(
                l,
                ingest.clone(),
                cancel.clone(),
                tracker.clone(),
                Protocol::Pickle,
            ));
        }
        if !plaintext_udp.is_empty() {
            let s = UdpSocket::bind(plaintext_udp).await.map_err(|e| {
                format!("cannot listen on {plaintext_udp} (carbon.plaintext_udp): {e}")
            })?;
            addrs.plaintext_udp = s.local_addr().ok();
            tracker.spawn(udp_loop(s, ingest.clone(), cancel.clone()));
        }
        tracker.close();
        Ok(Listeners {
            addrs,
            cancel,
            tracker,
        })
    }

    /// Stops accepting, lets every connection ingest what it already read, and waits for all
    /// listener tasks to end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Plaintext,
    Pickle,
}

async fn accept_loop(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    protocol: Protocol,
) {
    let mut stop_accepting_at: Option<std::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => {
                // Connections the kernel already completed may carry points: serve them
                // (they drain at once, see ConnReader) before closing the listener; a flood
                // of new connections cannot hold shutdown beyond DRAIN_MAX.
                let until = *stop_accepting_at.get_or_insert_with(|| std::time::Instant::now() + DRAIN_MAX);
                if std::time::Instant::now() >= until {
                    return;
                }
                match tokio::time::timeout(Duration::ZERO, listener.accept()).await {
                    Ok(a) => a,
                    Err(_) => return,
                }
            }
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Bounded connections: this one is served once a slot is free; until then
                // the loop accepts no other (the rest wait in the kernel's accept queue).
                let permit = tokio::select! {
                    _ = cancel.cancelled(), if stop_accepting_at.is_none() => None,
                    p = ingest.connections.clone().acquire_owned() => p.ok(),
                };
                let _ = stream.set_nodelay(true);
                let ingest = ingest.clone();
                let cancel = cancel.clone();
                match protocol {
                    Protocol::Plaintext => {
                        ingest
                            .stats
                            .plaintext_tcp
                            .connections
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracker.spawn(async move {
                            let _slot = permit;
                            plaintext_connection(stream, peer, ingest, cancel).await
                        });
                    }
                    Protocol::Pickle => {
                        ingest
                            .stats
                            .pickle_tcp
                            .connections
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracker.spawn(async move {
                            let _slot = permit;
                            super::pickle::pickle_connection(stream, peer, ingest, cancel).await
                        });
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("carbon listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

const READ_BUFFER: usize = 64 * 1024;
/// On shutdown a connection reads on until its peer goes quiet for this long…
const DRAIN_QUIET: Duration = Duration::from_millis(250);
/// …or this much time has passed, so points already sent are not lost.
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// What one read of a connection gave.
pub(crate) enum ReadOutcome {
    /// `n` bytes.
    Data(usize),
    /// The peer closed the connection (or it failed).
    Eof,
    /// Shutting down and the peer went quiet: stop, dropping any unfinished line or frame.
    Stopped,
}

/// Reads a connection for a listener: waits while the cache is full (backpressure), and on
/// shutdown switches to draining (reads on without waiting for room, until the peer is quiet
/// for [`DRAIN_QUIET`] or [`DRAIN_MAX`] has passed).
pub(crate) struct ConnReader {
    cancel: CancellationToken,
    drain_until: Option<tokio::time::Instant>,
}

impl ConnReader {
    pub(crate) fn new(cancel: CancellationToken) -> ConnReader {
        ConnReader {
            cancel,
            drain_until: None,
        }
    }

    pub(crate) async fn read(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut [u8],
        ingest: &Ingest,
    ) -> ReadOutcome {
        let done = |r: std::io::Result<usize>| match r {
            Ok(0) | Err(_) => ReadOutcome::Eof,
            Ok(n) => ReadOutcome::Data(n),
        };
        if self.drain_until.is_none() {
            if ingest.store.cache.is_full() {
                tokio::select! {
                    _ = self.cancel.cancelled() => {}
                    _ = ingest.store.cache.wait_for_room() => {}
                }
            }
            if !self.cancel.is_cancelled() {
                tokio::select! {
                    _ = self.cancel.cancelled() => {}
                    r = stream.read(buf) => return done(r),
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

async fn plaintext_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ingest: Arc<Ingest>,
    cancel: CancellationToken,
) {
    let stats = &ingest.stats.plaintext_tcp;
    let cap = READ_BUFFER.max(ingest.max_line_length + 1);
    let mut buf = vec![0u8; cap];
    let mut filled = 0usize;
    // Inside a line already refused as too long: skip bytes up to its end.
    let mut discarding = false;
    let mut reader = ConnReader::new(cancel);
    loop {
        let n = match reader.read(&mut stream, &mut buf[filled..], &ingest).await {
            ReadOutcome::Data(n) => n,
            ReadOutcome::Eof => {
                // End of stream: a last line without '\n' still counts.
                if filled > 0 && !discarding {
                    let mut batch = Batch::new();
                    ingest.line(stats, &mut batch, "plaintext_tcp", peer, &buf[..filled]);
                    batch.commit(&ingest, stats);
                }
                return;
            }
            // Shut down while the peer was still connected: an unfinished line is dropped.
            ReadOutcome::Stopped => return,
        };
        let scan_from = filled;
        filled += n;
        let mut start = 0;
        if discarding {
            match memchr::memchr(b'\n', &buf[scan_from..filled]) {
                Some(i) => {
                    start = scan_from + i + 1;
                    discarding = false;
                }
                None => {
                    filled = 0;
                    continue;
                }
            }
        }
        let mut batch = Batch::new();
        let used = for_each_line(&buf[start..filled], |line| {
            ingest.line(stats, &mut batch, "plaintext_tcp", peer, line)
        });
        batch.commit(&ingest, stats);
        let consumed = start + used;
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if filled > ingest.max_line_length {
            stats
                .too_long
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ingest.refuse("plaintext_tcp", peer, &LineError::TooLong, &buf[..filled]);
            discarding = true;
            filled = 0;
        }
    }
}

async fn udp_loop(socket: UdpSocket, ingest: Arc<Ingest>, cancel: CancellationToken) {
    let mut buf = vec![0u8; 65536];
    loop {
        if ingest.store.cache.is_full() {
            // UDP has no backpressure: datagrams wait in the socket's receive buffer.
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ingest.store.cache.wait_for_room() => {}
            }
        }
        let (n, peer) = tokio::select! {
            _ = cancel.cancelled() => {
                // Shutting down: take the datagrams already received (for at most
                // DRAIN_MAX, should they keep coming), then stop.
                let until = std::time::Instant::now() + DRAIN_MAX;
                while let Ok((n, peer)) = socket.try_recv_from(&mut buf) {
                    datagram(&ingest, &buf[..n], peer);
                    if std::time::Instant::now() >= until {
                        break;
                    }
                }
                return;
            }
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        datagram(&ingest, &buf[..n], peer);
    }
}

/// One UDP datagram: one or more lines, the last one may lack its `\n`.
fn datagram(ingest: &Ingest, data: &[u8], peer: SocketAddr) {
    let stats = &ingest.stats.plaintext_udp;
    stats
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut batch = Batch::new();
    let used = for_each_line(data, |line| {
        ingest.line(stats, &mut batch, "plaintext_udp", peer, line)
    });
    let tail = &data[used..];
    if !tail.iter().all(|b| b.is_ascii_whitespace()) {
        ingest.line(stats, &mut batch, "plaintext_udp", peer, tail);
    }
    batch.commit(ingest, stats);
}
