//! The HTTP accept loop: serves the API router over HTTP/1.1 (hyper) with the limits that
//! keep slow and idle clients from holding connections — `[http] header_timeout` (a request
//! line and headers must arrive within it, from the connection's start or from the first
//! byte of the next request on a keep-alive connection) and `[http] keepalive_timeout`
//! (a keep-alive connection idle between requests is closed; so is one whose client reads
//! none of a response for that long, as nginx's `send_timeout`). `[http] body_timeout` is a
//! tower layer on the router (see `server::start`). On shutdown it stops accepting and lets
//! each connection finish the request in flight (hyper's graceful shutdown), as
//! `axum::serve` did.
//!
//! Owns the sockets of HTTP clients only; it never looks inside a request (the router does)
//! and never bounds a request in progress: a long render is `[query] request_timeout`'s.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The limits on slow and idle clients (`None`: no limit, `"0s"` in the settings).
#[derive(Debug, Clone, Copy)]
pub(super) struct ClientLimits {
    /// `[http] header_timeout`.
    pub header: Option<Duration>,
    /// `[http] keepalive_timeout`.
    pub keepalive: Option<Duration>,
}

impl ClientLimits {
    /// From settings durations, zero meaning no limit.
    pub(super) fn new(header: Duration, keepalive: Duration) -> ClientLimits {
        let limit = |d: Duration| (!d.is_zero()).then_some(d);
        ClientLimits {
            header: limit(header),
            keepalive: limit(keepalive),
        }
    }
}

/// Accepts connections until `cancel` fires, then waits for every connection to finish.
pub(super) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ClientLimits,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => match a {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("http listener: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(stream, app.clone(), limits, cancel.clone()));
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Where a connection is between requests, which says which limit applies.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head, since this instant (the connection's start, or the first
    /// byte after an idle spell): `header_timeout` applies.
    Head(Instant),
    /// This many requests being handled: no limit here.
    Busy(usize),
    /// Nothing in flight since this instant (the last response, or its last write):
    /// `keepalive_timeout` applies.
    Idle(Instant),
}

/// A connection's phase, updated by its socket wrapper and its service.
struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Watch {
    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut p = self.phase.lock();
        *p = f(*p);
        self.changed.notify_one();
    }

    /// When the current phase's limit runs out, if it has one.
    fn deadline(&self, limits: ClientLimits) -> Option<Instant> {
        match *self.phase.lock() {
            Phase::Head(since) => limits.header.map(|d| since + d),
            Phase::Busy(_) => None,
            Phase::Idle(since) => limits.keepalive.map(|d| since + d),
        }
    }
}

/// Marks a request in flight until dropped (also when the request is cancelled).
struct InFlight(Arc<Watch>);

impl InFlight {
    fn begin(watch: &Arc<Watch>) -> InFlight {
        watch.set(|p| match p {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        InFlight(watch.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(|p| match p {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

async fn connection(
    stream: TcpStream,
    app: axum::Router,
    limits: ClientLimits,
    cancel: CancellationToken,
) {
    let watch = Arc::new(Watch {
        phase: Mutex::new(Phase::Head(Instant::now())),
        changed: Notify::new(),
    });
    let io = TokioIo::new(Watched {
        inner: stream,
        watch: watch.clone(),
    });
    let service_watch = watch.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = InFlight::begin(&service_watch);
        let mut app = app.clone();
        async move {
            let response = app.call(req).await;
            drop(in_flight);
            response
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // hyper's own header timer also runs while a keep-alive connection is idle, which
        // would cap keepalive_timeout at header_timeout: the watch below does both.
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = watch.deadline(limits);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("http connection: {e}");
                }
                return;
            }
            _ = cancel.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = watch.changed.notified() => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                // The phase may have moved on since the deadline was read: check again.
                if watch.deadline(limits).is_some_and(|d| d <= Instant::now()) {
                    // A slow head, or an idle keep-alive connection: nothing is in flight,
                    // so closing loses no response.
                    return;
                }
            }
        }
    }
}

/// The client's socket, reporting to the [`Watch`]: the first bytes after an idle spell
/// start a request head, and writing a response counts as activity.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && matches!(*self.watch.phase.lock(), Phase::Idle(_)) {
            self.watch.set(|_| Phase::Head(Instant::now()));
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            let mut p = self.watch.phase.lock();
            if let Phase::Idle(_) = *p {
                *p = Phase::Idle(Instant::now());
            }
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            let mut p = self.watch.phase.lock();
            if let Phase::Idle(_) = *p {
                *p = Phase::Idle(Instant::now());
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
