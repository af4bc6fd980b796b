//! The open carbon TCP connections (plaintext and pickle together): how many there are, when
//! each last delivered bytes, and the handle that closes one. This is what enforces
//! `carbon.max_connections`: at the limit, the connection idle longest is closed to admit
//! the new sender, unless every connection delivered bytes within [`EVICT_AFTER_IDLE`] —
//! then the newcomer waits (in the kernel's accept queue) until one closes or goes quiet, so
//! busy senders are never churned and memory stays bounded.
//!
//! Owns no socket and reads nothing: a connection task holds a [`Slot`], marks activity on it
//! and watches its token ([`Slot::cancel`]); closing is that task's job (it drains what the
//! peer already sent, as on shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A connection that delivered bytes more recently than this is never closed to admit a new
/// one: at the limit with every connection that busy, the newcomer waits its turn.
pub(crate) const EVICT_AFTER_IDLE: Duration = Duration::from_secs(1);

/// What the registry and the connection's task share.
struct Shared {
    /// Milliseconds since the registry's epoch at the last read that returned bytes.
    last_active_ms: AtomicU64,
    /// Closed to admit a newer connection (counted as `evicted`).
    evicted: AtomicBool,
    /// Closed by `carbon.idle_timeout` (counted as `idle_closed`).
    idle_closed: AtomicBool,
    /// Cancelled to close the connection: on eviction, or (as a child token) on shutdown.
    cancel: CancellationToken,
}

/// The registry of open connections, shared by the TCP listeners.
pub(crate) struct Connections {
    max: usize,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Shared>>>,
    /// Signalled when a connection leaves the registry.
    left: Notify,
}

/// One admitted connection. Dropping it (the connection's task ending) frees its place.
pub(crate) struct Slot {
    id: u64,
    shared: Arc<Shared>,
    registry: Arc<Connections>,
}

impl Connections {
    /// A registry admitting at most `max` connections at once (at least one).
    pub(crate) fn new(max: usize) -> Arc<Connections> {
        Connections::with_epoch(max, Instant::now())
    }

    fn with_epoch(max: usize, epoch: Instant) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            epoch,
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            left: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Admits a connection whose shutdown is `parent` (the slot's token is its child). At
    /// the limit, closes the longest-idle connection to make room (of equally idle ones, the
    /// oldest); `None` when every open
    /// connection was active within [`EVICT_AFTER_IDLE`].
    pub(crate) fn admit(self: &Arc<Self>, parent: &CancellationToken) -> Option<Slot> {
        let now = self.now_ms();
        let mut open = self.open.lock();
        if open.len() >= self.max {
            let (&id, oldest) = open
                .iter()
                .min_by_key(|(&id, s)| (s.last_active_ms.load(Ordering::Relaxed), id))?;
            let idle = now.saturating_sub(oldest.last_active_ms.load(Ordering::Relaxed));
            if idle < EVICT_AFTER_IDLE.as_millis() as u64 {
                return None;
            }
            oldest.evicted.store(true, Ordering::Relaxed);
            oldest.cancel.cancel();
            open.remove(&id);
        }
        Some(self.insert(&mut open, now, parent))
    }

    /// Admits a connection beyond the limit: one the kernel completed before shutdown, served
    /// (drained) rather than dropped with the points it carries.
    pub(crate) fn admit_draining(self: &Arc<Self>, parent: &CancellationToken) -> Slot {
        let now = self.now_ms();
        let mut open = self.open.lock();
        self.insert(&mut open, now, parent)
    }

    fn insert(
        self: &Arc<Self>,
        open: &mut HashMap<u64, Arc<Shared>>,
        now: u64,
        parent: &CancellationToken,
    ) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            last_active_ms: AtomicU64::new(now),
            evicted: AtomicBool::new(false),
            idle_closed: AtomicBool::new(false),
            cancel: parent.child_token(),
        });
        open.insert(id, shared.clone());
        Slot {
            id,
            shared,
            registry: self.clone(),
        }
    }

    /// Waits until a connection may be admitted: one left, or time passed so that one may
    /// have been idle long enough to be closed.
    pub(crate) async fn wait_for_room(&self) {
        tokio::select! {
            _ = self.left.notified() => {}
            _ = tokio::time::sleep(EVICT_AFTER_IDLE / 5) => {}
        }
    }

    /// Connections open now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.lock().len()
    }
}

impl Slot {
    /// Cancelled when the connection must close: it was evicted, or the server shuts down.
    pub(crate) fn cancel(&self) -> &CancellationToken {
        &self.shared.cancel
    }

    /// Records that the connection just delivered bytes.
    pub(crate) fn touch(&self) {
        self.shared
            .last_active_ms
            .store(self.registry.now_ms(), Ordering::Relaxed);
    }

    /// Records that the connection is being closed for `carbon.idle_timeout`.
    pub(crate) fn mark_idle_closed(&self) {
        self.shared.idle_closed.store(true, Ordering::Relaxed);
    }

    /// Whether it was closed to admit a newer connection.
    pub(crate) fn evicted(&self) -> bool {
        self.shared.evicted.load(Ordering::Relaxed)
    }

    /// Whether it was closed for `carbon.idle_timeout`.
    pub(crate) fn idle_closed(&self) -> bool {
        self.shared.idle_closed.load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // An evicted slot already left the map (its place went to the newcomer).
        if self.registry.open.lock().remove(&self.id).is_some() {
            self.registry.left.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(slot: &Slot, by: Duration) {
        let ms = slot.registry.now_ms() - by.as_millis() as u64;
        slot.shared.last_active_ms.store(ms, Ordering::Relaxed);
    }

    #[tokio::test]
    async fn at_the_limit_the_longest_idle_is_closed_for_a_newcomer() {
        let Some(epoch) = Instant::now().checked_sub(EVICT_AFTER_IDLE * 4) else {
            return;
        };
        let reg = Connections::with_epoch(2, epoch);
        let root = CancellationToken::new();
        let a = reg.admit(&root).unwrap();
        let b = reg.admit(&root).unwrap();
        assert!(reg.admit(&root).is_none(), "both busy: the newcomer waits");
        age(&a, EVICT_AFTER_IDLE * 3);
        age(&b, EVICT_AFTER_IDLE * 2);
        let c = reg.admit(&root).unwrap();
        assert!(a.evicted() && a.cancel().is_cancelled());
        assert!(!b.evicted() && !b.cancel().is_cancelled());
        assert_eq!(reg.len(), 2);
        drop(a);
        assert_eq!(reg.len(), 2, "an evicted slot frees nothing twice");
        drop(b);
        assert_eq!(reg.len(), 1);
        root.cancel();
        assert!(c.cancel().is_cancelled(), "shutdown reaches every slot");
    }
}
