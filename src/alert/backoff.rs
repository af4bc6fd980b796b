//! When reminders go out while a rule stays failed: Hound's backoff ladder — 5 min, 30 min,
//! 1 h, 2 h, 4 h, 8 h, then every 24 h — counted from the first failing check.
//!
//! Reminder `k` (0-based) is due `offset(k)` seconds after the failure began:
//! +5m, +30m, +1h, +2h, +4h, +8h, +24h, +48h, +72h, … Pure arithmetic; no clock.
//!
//! Hound's README words the ladder as gaps between mails ("another 5 minutes later, another
//! 30 minutes after that, …"); carbonhound counts every rung from the start of the failure,
//! so the schedule does not drift with the check interval and survives restarts exactly.

/// Reminder offsets below one day, in seconds.
const LADDER: [i64; 6] = [5 * 60, 30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600];
/// After the ladder, one reminder per this many seconds.
pub const DAILY: i64 = 86_400;

/// Seconds after the failure began at which reminder `k` (0-based) is due.
pub fn offset(k: u32) -> i64 {
    match LADDER.get(k as usize) {
        Some(&o) => o,
        None => DAILY * (i64::from(k) - LADDER.len() as i64 + 1),
    }
}

/// How many reminder slots have come due `elapsed` seconds after the failure began
/// (0 before +5m, 1 from +5m, …, 7 from +24h, 8 from +48h).
pub fn slots_due(elapsed: i64) -> u32 {
    if elapsed < 0 {
        return 0;
    }
    match LADDER.iter().position(|&o| elapsed < o) {
        Some(k) => k as u32,
        None => LADDER.len() as u32 + (elapsed / DAILY).min(u32::MAX as i64 / 2) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder() {
        let want = [300, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(offset(k as u32), *w, "reminder {k}");
        }
        assert_eq!(slots_due(-5), 0);
        assert_eq!(slots_due(299), 0);
        assert_eq!(slots_due(300), 1);
        assert_eq!(slots_due(1799), 1);
        assert_eq!(slots_due(1800), 2);
        assert_eq!(slots_due(28800), 6);
        assert_eq!(slots_due(86399), 6);
        assert_eq!(slots_due(86400), 7);
        assert_eq!(slots_due(172799), 7);
        assert_eq!(slots_due(172800), 8);
        // slots_due is the inverse of offset: exactly the slots whose offset has passed.
        for e in (0..400_000).step_by(97) {
            let n = slots_due(e);
            assert!(n == 0 || offset(n - 1) <= e, "{e}");
            assert!(offset(n) > e, "{e}");
        }
    }
}
