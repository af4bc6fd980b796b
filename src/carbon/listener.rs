//! The carbon listeners: plaintext over TCP and UDP and pickle over TCP (frames decoded by
//! [`super::pickle`]), each handing points to the store through [`Ingest`].
//!
//! Every connection is its own task. Before each read it checks the cache: at its limit the
//! task waits, so the sender feels TCP backpressure and nothing is dropped. A refused line is
//! counted and logged (rate-limited) and the connection reads on. UDP has no backpressure:
//! while the cache is full, datagrams wait in the socket's receive buffer and the kernel drops
//! what does not fit (counted by the kernel, in `/proc/net/udp`).
//!
//! At most `carbon.max_connections` TCP connections are served at once (each holds a 64 KiB
//! buffer). At the limit the connection idle longest is closed (counted as `evicted`) to
//! admit the new sender, as long as it has been quiet for 1 s (`EVICT_AFTER_IDLE`); when
//! every connection is busier than that, the listeners accept no more until one closes or
//! goes quiet, and clients wait in the kernel's accept queue, so memory stays bounded. A
//! connection that sends nothing for `carbon.idle_timeout` (carbon's default, 2 min) is
//! closed (counted as `idle_closed`); an unfinished line or frame it left is dropped.
//!
//! On shutdown the listeners stop accepting (connections the kernel already completed are
//! still served), and each connection drains (an evicted one does the same): it reads on, without waiting for cache room,
//! until its peer closes, goes quiet for 250 ms, or 5 s have passed — so points a client sent
//! just before SIGTERM are stored, not left in the socket buffer. Then the tasks end.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ingest::{Batch, ConnReader, Ingest, ReadOutcome, DRAIN_MAX};
use super::pickle::{decode_list, entry, Entry};
use super::plaintext::{for_each_line, LineError};
use super::registry::Slot;
use super::stats::ListenerStats;

/// Bytes read from a plaintext connection at a time (at least one line more).
const READ_BUFFER: usize = 64 * 1024;

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

impl Protocol {
    fn stats(self, ingest: &Ingest) -> &ListenerStats {
        match self {
            Protocol::Plaintext => &ingest.stats.plaintext_tcp,
            Protocol::Pickle => &ingest.stats.pickle_tcp,
        }
    }
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
                // Bounded connections: this one is served once it has a slot (the
                // longest-idle connection closed for it); until then the loop accepts no
                // other (the rest wait in the kernel's accept queue).
                let slot = loop {
                    if let Some(slot) = ingest.connections.admit(&cancel) {
                        break slot;
                    }
                    tokio::select! {
                        _ = cancel.cancelled(), if stop_accepting_at.is_none() => {
                            break ingest.connections.admit_draining(&cancel);
                        }
                        _ = ingest.connections.wait_for_room() => {}
                    }
                };
                let _ = stream.set_nodelay(true);
                let ingest = ingest.clone();
                let stats = protocol.stats(&ingest);
                stats.connections.fetch_add(1, Ordering::Relaxed);
                tracker.spawn(async move {
                    match protocol {
                        Protocol::Plaintext => {
                            plaintext_connection(stream, peer, &ingest, &slot).await
                        }
                        Protocol::Pickle => pickle_connection(stream, peer, &ingest, &slot).await,
                    }
                    let stats = protocol.stats(&ingest);
                    if slot.idle_closed() {
                        stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    if slot.evicted() {
                        stats.evicted.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("carbon listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn plaintext_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ingest: &Ingest,
    slot: &Slot,
) {
    let stats = &ingest.stats.plaintext_tcp;
    let cap = READ_BUFFER.max(ingest.max_line_length + 1);
    let mut buf = vec![0u8; cap];
    let mut filled = 0usize;
    // Inside a line already refused as too long: skip bytes up to its end.
    let mut discarding = false;
    let mut reader = ConnReader::new(slot);
    loop {
        let n = match reader.read(&mut stream, &mut buf[filled..], ingest).await {
            ReadOutcome::Data(n) => n,
            ReadOutcome::Eof => {
                // End of stream: a last line without '\n' still counts.
                if filled > 0 && !discarding {
                    let mut batch = Batch::new();
                    ingest.line(stats, &mut batch, "plaintext_tcp", peer, &buf[..filled]);
                    batch.commit(ingest, stats);
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
        batch.commit(ingest, stats);
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

/// Fills `buf` completely from the connection. `Err` with the outcome that stopped it
/// (end of stream or shutdown) when it could not.
async fn fill(
    reader: &mut ConnReader<'_>,
    stream: &mut TcpStream,
    buf: &mut [u8],
    ingest: &Ingest,
) -> Result<(), ReadOutcome> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(stream, &mut buf[got..], ingest).await {
            ReadOutcome::Data(n) => got += n,
            other => return Err(other),
        }
    }
    Ok(())
}

/// Serves one pickle connection: frames until EOF or shutdown. A frame over the size limit is
/// skipped (counted as too long) and the connection goes on with the next; a connection
/// closed inside a frame counts that frame as a bad pickle.
async fn pickle_connection(mut stream: TcpStream, peer: SocketAddr, ingest: &Ingest, slot: &Slot) {
    let stats = &ingest.stats.pickle_tcp;
    let mut reader = ConnReader::new(slot);
    let mut frame = Vec::new();
    loop {
        let mut len = [0u8; 4];
        // A connection may end between frames, or inside the length prefix.
        match reader.read(&mut stream, &mut len[..1], ingest).await {
            ReadOutcome::Data(_) => {}
            _ => return,
        }
        if fill(&mut reader, &mut stream, &mut len[1..], ingest)
            .await
            .is_err()
        {
            stats.bad_pickle.fetch_add(1, Ordering::Relaxed);
            ingest.refuse(
                "pickle_tcp",
                peer,
                &"connection closed inside a frame's length prefix",
                &len,
            );
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > ingest.max_pickle_frame {
            stats.too_long.fetch_add(1, Ordering::Relaxed);
            ingest.refuse(
                "pickle_tcp",
                peer,
                &format_args!("frame of {len} bytes exceeds carbon.max_pickle_frame"),
                &[],
            );
            let mut skip = vec![0u8; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(skip.len());
                if fill(&mut reader, &mut stream, &mut skip[..n], ingest)
                    .await
                    .is_err()
                {
                    return;
                }
                left -= n;
            }
            continue;
        }
        frame.resize(len, 0);
        if fill(&mut reader, &mut stream, &mut frame, ingest)
            .await
            .is_err()
        {
            stats.bad_pickle.fetch_add(1, Ordering::Relaxed);
            ingest.refuse(
                "pickle_tcp",
                peer,
                &format_args!("connection closed inside a frame of {len} bytes"),
                &[],
            );
            return;
        }
        match decode_list(&frame) {
            Ok(pickle) => {
                let mut batch = Batch::new();
                let items = pickle.items(&pickle.root).unwrap_or(&[]);
                for e in items.iter().map(|item| entry(&pickle, item)) {
                    match e {
                        Entry::Point {
                            name,
                            timestamp,
                            value,
                        } => {
                            batch
                                .points
                                .push(&name, timestamp.unwrap_or(batch.now), value);
                        }
                        Entry::Bad { reason, detail } => {
                            stats.refused(&reason);
                            // NaN/inf is dropped silently, as carbon does.
                            if reason != LineError::NotFinite {
                                ingest.refuse("pickle_tcp", peer, &detail, &[]);
                            }
                        }
                    }
                }
                batch.commit(ingest, stats);
            }
            Err(e) => {
                stats.bad_pickle.fetch_add(1, Ordering::Relaxed);
                ingest.refuse("pickle_tcp", peer, &e, &frame[..frame.len().min(64)]);
            }
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
