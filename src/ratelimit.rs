//! Rate-limited warnings: bad input is logged, but a flood of it cannot flood the log.

use std::fmt::Arguments;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Logs at most `burst` warnings per `window`; the rest are counted and the count is reported
/// with the next warning that gets through.
#[derive(Debug)]
pub struct RateLimitedLog {
    window: Duration,
    burst: u32,
    state: Mutex<(Instant, u32)>,
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    /// A limiter letting `burst` messages through per `window`.
    pub fn new(window: Duration, burst: u32) -> Self {
        RateLimitedLog {
            window,
            burst,
            state: Mutex::new((Instant::now(), 0)),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a message may be logged now; counts it as suppressed otherwise.
    pub fn allow(&self) -> bool {
        let mut st = self.state.lock();
        if st.0.elapsed() >= self.window {
            *st = (Instant::now(), 0);
        }
        if st.1 < self.burst {
            st.1 += 1;
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Logs an error through `tracing` if the rate allows (a condition an operator must act
    /// on, such as a full disk).
    pub fn error(&self, msg: Arguments<'_>) {
        if self.allow() {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            if suppressed > 0 {
                tracing::error!("{msg} ({suppressed} similar messages suppressed)");
            } else {
                tracing::error!("{msg}");
            }
        }
    }

    /// Logs a warning through `tracing` if the rate allows.
    pub fn warn(&self, msg: Arguments<'_>) {
        if self.allow() {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            if suppressed > 0 {
                tracing::warn!("{msg} ({suppressed} similar messages suppressed)");
            } else {
                tracing::warn!("{msg}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_burst_through_then_counts() {
        let l = RateLimitedLog::new(Duration::from_secs(60), 2);
        assert!(l.allow());
        assert!(l.allow());
        assert!(!l.allow());
        assert!(!l.allow());
        assert_eq!(l.suppressed.load(Ordering::Relaxed), 2);
    }
}
