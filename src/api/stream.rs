//! Streamed answers: a body written chunk by chunk by a blocking task while hyper sends it,
//! so a large render answer never exists whole in memory (issue: 872 MB of JSON built in one
//! string). The writer waits for the client: a client that stops reading for
//! [`STALL_TIMEOUT`] ends the answer, and an answer that ends early is cut off with an error
//! (the connection closes) rather than ended as if complete.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::formats::{Out, Sink};

/// Longest a streamed answer waits for the client to take the next chunk.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Chunks buffered between the writer and the connection.
const QUEUE: usize = 4;

/// The body side: chunks as they come; the writer's end without [`Done`] is an error.
struct Chunks {
    rx: mpsc::Receiver<Vec<u8>>,
    done: Arc<AtomicBool>,
    ended: bool,
}

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(Bytes::from(chunk)))),
            Poll::Ready(None) => {
                self.ended = true;
                if self.done.load(Ordering::Acquire) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(std::io::Error::other("answer cut short"))))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A 200 answer of `content_type` whose body `write` produces into an [`Out`] on a blocking
/// thread; `write` returning an error (the client left or stalled) cuts the answer off.
/// Must be called within the tokio runtime (a handler, or a blocking task it spawned).
pub fn streamed<F>(content_type: &'static str, write: F) -> Response
where
    F: FnOnce(&mut Out) -> std::io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let done = Arc::new(AtomicBool::new(false));
    let handle = tokio::runtime::Handle::current();
    let finished = done.clone();
    let send_handle = handle.clone();
    let sink: Sink = Box::new(move |chunk| {
        match send_handle.block_on(tokio::time::timeout(STALL_TIMEOUT, tx.send(chunk))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            )),
        }
    });
    handle.spawn_blocking(move || {
        let mut out = Out::streamed(sink);
        let result = write(&mut out).and_then(|()| out.flush_all());
        match result {
            Ok(()) => finished.store(true, Ordering::Release),
            Err(e) => tracing::debug!("streamed answer cut short: {e}"),
        }
        // Dropping `out` drops the sender: the body ends (or fails, when not done).
        drop(out);
    });
    let body = Body::from_stream(Chunks {
        rx,
        done,
        ended: false,
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
