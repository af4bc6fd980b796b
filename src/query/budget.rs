//! [`MemoryBudget`]: the process-wide bound on the memory render work holds (`[query]
//! max_memory`). graphite-web has no such bound: one request for 120,000 series can take a
//! server's memory. Here every `/render` reserves, before it fetches, what its series will
//! hold (an estimate: series × ([`BYTES_PER_SERIES`] + points × [`BYTES_PER_POINT`])), grows the reservation while it
//! fetches if the estimate was short, and gives it back as its answer is written out.
//!
//! A request larger than the whole budget is refused at once (HTTP 413); one that fits but
//! finds the budget taken by others waits up to [`MemoryBudget::wait`] for room, then gets a
//! 503. Nothing here allocates: it only counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Bytes one datapoint of a series holds while a request is evaluated and answered: a value
/// slot (`Option<f64>`, 16 bytes).
pub const BYTES_PER_POINT: usize = 16;

/// Bytes a series holds beside its datapoints while a request is evaluated and answered: the
/// [`crate::query::Series`] itself, its name and pathExpression, and the B-tree node of its
/// tags. Without it a request for 20,000 short series held a fifth more than it counted.
pub const BYTES_PER_SERIES: usize = 512;

/// What a series of `points` datapoints is counted as holding: `points` ×
/// [`BYTES_PER_POINT`] + [`BYTES_PER_SERIES`].
pub fn series_bytes(points: usize) -> usize {
    points
        .saturating_mul(BYTES_PER_POINT)
        .saturating_add(BYTES_PER_SERIES)
}

/// The shared budget (see the module doc). Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MemoryBudget {
    total: usize,
    wait: Duration,
    used: Mutex<usize>,
    freed: Condvar,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetError {
    /// The request alone needs more than the whole budget (HTTP 413).
    TooLarge {
        /// Bytes the request needs in all.
        need: usize,
        /// The budget, bytes.
        total: usize,
    },
    /// Other requests hold the budget and did not free enough within the wait (HTTP 503).
    Busy {
        /// Bytes the request asked for.
        need: usize,
        /// Bytes other requests held when the wait ended.
        in_use: usize,
        /// The budget, bytes.
        total: usize,
    },
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl std::fmt::Display for BudgetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetError::TooLarge { need, total } => write!(
                f,
                "this request would hold about {} of series data, more than the {} all renders \
                 may use at once (query.max_memory): ask for fewer series, a shorter range or \
                 fewer targets",
                mib(*need),
                mib(*total)
            ),
            BudgetError::Busy {
                need,
                in_use,
                total,
            } => write!(
                f,
                "render memory is busy: this request needs {} and other requests hold {} of \
                 the {} budget (query.max_memory); try again shortly",
                mib(*need),
                mib(*in_use),
                mib(*total)
            ),
        }
    }
}

impl std::error::Error for BudgetError {}

impl MemoryBudget {
    /// A budget of `total` bytes; a reservation that does not fit waits up to `wait` for
    /// others to finish.
    pub fn new(total: usize, wait: Duration) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            total: total.max(1),
            wait,
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// The budget, bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes reserved now, by every request together.
    pub fn in_use(&self) -> usize {
        *self.used.lock()
    }

    /// How long a reservation waits for room before it is refused as busy.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Reserves `bytes`, waiting for room until `deadline` at the latest (and never longer
    /// than [`Self::wait`]). Errors: [`BudgetError::TooLarge`] at once when `bytes` exceeds
    /// the budget, [`BudgetError::Busy`] when the wait ends without room.
    pub fn reserve(
        self: &Arc<MemoryBudget>,
        bytes: usize,
        deadline: Instant,
    ) -> Result<Reservation, BudgetError> {
        let mut r = Reservation {
            budget: self.clone(),
            bytes: 0,
            peak: 0,
            untrimmed: 0,
        };
        r.grow(bytes, deadline)?;
        Ok(r)
    }

    fn take(&self, held: usize, extra: usize, deadline: Instant) -> Result<(), BudgetError> {
        if held.saturating_add(extra) > self.total {
            return Err(BudgetError::TooLarge {
                need: held.saturating_add(extra),
                total: self.total,
            });
        }
        let deadline = deadline.min(Instant::now() + self.wait);
        let mut used = self.used.lock();
        while *used + extra > self.total {
            if self.freed.wait_until(&mut used, deadline).timed_out() && *used + extra > self.total
            {
                return Err(BudgetError::Busy {
                    need: held + extra,
                    in_use: used.saturating_sub(held),
                    total: self.total,
                });
            }
        }
        *used += extra;
        Ok(())
    }

    fn give_back(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut used = self.used.lock();
        *used = used.saturating_sub(bytes);
        drop(used);
        self.freed.notify_all();
    }
}

/// Bytes one request holds of a [`MemoryBudget`]; everything still held returns to the
/// budget when it is dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
    peak: usize,
    /// Bytes given back by [`Reservation::release`] since the allocator was last trimmed.
    untrimmed: usize,
}

/// A reservation that held at least this much hands the allocator's free memory back to the
/// system when it ends ([`crate::malloc::give_back_free_memory`]).
const TRIM_AFTER: usize = 32 << 20;

/// A streamed answer hands free memory back every this many bytes it has written out (see
/// [`Reservation::release`]).
const TRIM_EVERY: usize = 8 << 20;

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `extra` more bytes, waiting as [`MemoryBudget::reserve`] does; on an error the
    /// reservation is unchanged.
    pub fn grow(&mut self, extra: usize, deadline: Instant) -> Result<(), BudgetError> {
        if extra == 0 {
            return Ok(());
        }
        self.budget.take(self.bytes, extra, deadline)?;
        self.bytes += extra;
        self.peak = self.peak.max(self.bytes);
        Ok(())
    }

    /// Gives `bytes` back (at most what is held): an answer's series as they are written out,
    /// each already dropped. Every [`TRIM_EVERY`] bytes the allocator's free memory goes back
    /// to the system first, so a request waiting for this room does not take fresh pages
    /// while the freed ones stay resident in another thread's arena.
    pub fn release(&mut self, bytes: usize) {
        let n = bytes.min(self.bytes);
        self.bytes -= n;
        self.untrimmed += n;
        if self.untrimmed >= TRIM_EVERY {
            self.untrimmed = 0;
            crate::malloc::give_back_free_memory();
        }
        self.budget.give_back(n);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
        if self.peak >= TRIM_AFTER {
            crate::malloc::give_back_free_memory();
        }
    }
}

/// A request's share of the budget while it is evaluated: the reservation and what its
/// fetches have charged so far (see [`crate::query::RequestState`]).
#[derive(Debug)]
pub struct RequestMemory {
    reservation: Mutex<Reservation>,
    charged: Mutex<usize>,
    deadline: Instant,
}

/// Reservations grow in steps of at least this much, so a request whose estimate fell short
/// does not take the budget's lock once per series.
const GROW_STEP: usize = 4 << 20;

impl RequestMemory {
    /// Evaluation under `reservation`, waiting for growth until `deadline` at most.
    pub fn new(reservation: Reservation, deadline: Instant) -> RequestMemory {
        RequestMemory {
            reservation: Mutex::new(reservation),
            charged: Mutex::new(0),
            deadline,
        }
    }

    /// Counts `bytes` more held by the request, growing the reservation when the charges pass
    /// it. Errors as [`Reservation::grow`].
    pub fn charge(&self, bytes: usize) -> Result<(), BudgetError> {
        let mut charged = self.charged.lock();
        let want = *charged + bytes;
        let mut r = self.reservation.lock();
        if want > r.bytes() {
            let short = want - r.bytes();
            let step = short
                .max(GROW_STEP)
                .min(r.budget.total.saturating_sub(r.bytes()));
            r.grow(step.max(short), self.deadline)?;
        }
        *charged = want;
        Ok(())
    }

    /// The reservation, to be held until the answer is written.
    pub fn into_reservation(self) -> Reservation {
        self.reservation.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn over_the_whole_budget_is_refused_at_once() {
        let b = MemoryBudget::new(1000, Duration::from_secs(5));
        let t = Instant::now();
        let e = b.reserve(1001, soon()).unwrap_err();
        assert!(matches!(e, BudgetError::TooLarge { need: 1001, .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains("query.max_memory"));
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn a_busy_budget_waits_then_refuses_and_frees_on_drop() {
        let b = MemoryBudget::new(1000, Duration::from_millis(100));
        let first = b.reserve(800, soon()).unwrap();
        let e = b.reserve(300, soon()).unwrap_err();
        assert!(matches!(e, BudgetError::Busy { in_use: 800, .. }), "{e}");
        drop(first);
        assert_eq!(b.in_use(), 0);
        assert_eq!(b.reserve(300, soon()).unwrap().bytes(), 300);
    }

    #[test]
    fn a_waiter_gets_in_when_another_releases() {
        let b = MemoryBudget::new(1000, Duration::from_secs(5));
        let mut first = b.reserve(900, soon()).unwrap();
        let b2 = b.clone();
        let waiter = std::thread::spawn(move || b2.reserve(500, soon()).map(|r| r.bytes()));
        std::thread::sleep(Duration::from_millis(50));
        first.release(600);
        assert_eq!(waiter.join().unwrap(), Ok(500));
        assert_eq!(b.in_use(), 300);
    }

    #[test]
    fn charges_grow_the_reservation_in_steps() {
        let b = MemoryBudget::new(64 << 20, Duration::from_millis(10));
        let m = RequestMemory::new(b.reserve(100, soon()).unwrap(), soon());
        m.charge(60).unwrap();
        assert_eq!(b.in_use(), 100);
        m.charge(60).unwrap();
        assert_eq!(b.in_use(), 100 + GROW_STEP);
        let e = m.charge(64 << 20).unwrap_err();
        assert!(matches!(e, BudgetError::TooLarge { .. }), "{e}");
        let r = m.into_reservation();
        assert_eq!(r.bytes(), 100 + GROW_STEP);
        drop(r);
        assert_eq!(b.in_use(), 0);
    }
}
