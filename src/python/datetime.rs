//! The ranges of Python's `datetime` and `timedelta`: graphite-web moves request times with
//! them, so an offset or a shifted time beyond them fails there (`OverflowError`) and must
//! fail here too. Keeping within them also keeps every sum of epoch seconds far from `i64`
//! overflow.

/// Earliest and latest epoch seconds Python's `datetime` can hold (years 1 and 9999).
pub const DATETIME_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// The largest `timedelta` in seconds (`timedelta.max`: 999,999,999 days and 86,399 s);
/// `-TIMEDELTA_MAX_SECONDS` is the most negative whole-second one graphite-web builds.
pub const TIMEDELTA_MAX_SECONDS: i64 = 999_999_999 * 86_400 + 86_399;
