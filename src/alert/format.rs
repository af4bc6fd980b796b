//! Numbers, times and durations as people read them in alert mail and on status pages:
//! `5.2`, `3.21G`, `2024-05-01 03:02 UTC`, `1 h 5 min`. Pure functions.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A value for people: up to three decimals, trailing zeros dropped (`5.2`, `0.125`); SI
/// prefixes from 10 000 on (`12.5K`, `3.21G`), as the graph's axis labels; tiny values in
/// scientific notation (`1.5e-5`).
pub fn value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = v.abs();
    if a != 0.0 && a < 0.001 {
        return format!("{v:.2e}");
    }
    let (scaled, suffix) = match a {
        a if a >= 1e15 => (v / 1e15, "P"),
        a if a >= 1e12 => (v / 1e12, "T"),
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "K"),
        _ => (v, ""),
    };
    let decimals = if suffix.is_empty() { 3 } else { 2 };
    let s = format!("{scaled:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    let s = if s == "-0" { "0".to_string() } else { s };
    format!("{s}{suffix}")
}

/// How far `v` is past `threshold` on the failing side, and by what percentage of the
/// threshold (none when the threshold is 0): `("1.2", Some("30%"))`.
pub fn excess(v: f64, threshold: f64) -> (String, Option<String>) {
    let d = (v - threshold).abs();
    let pct = (threshold != 0.0).then(|| {
        let p = d / threshold.abs() * 100.0;
        if p >= 10.0 {
            format!("{p:.0}%")
        } else {
            format!("{p:.1}%")
        }
    });
    (value(d), pct)
}

/// `2024-05-01 03:02:07 UTC`.
pub fn utc(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// `2024-05-01 05:02:07 CEST` in `tz`.
pub fn local(t: i64, tz: Tz) -> String {
    tz.timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// A span in words, to the minute (seconds below one minute): `45 s`, `12 min`,
/// `1 h 5 min`, `2 d 4 h`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        return format!("{s} s");
    }
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(value(5.2), "5.2");
        assert_eq!(value(4.0), "4");
        assert_eq!(value(-0.0), "0");
        assert_eq!(value(0.125), "0.125");
        assert_eq!(value(1234.5), "1234.5");
        assert_eq!(value(12_500.0), "12.5K");
        assert_eq!(value(3.214e9), "3.21G");
        assert_eq!(value(-2e6), "-2M");
        assert_eq!(value(0.000015), "1.50e-5");
        assert_eq!(excess(5.2, 4.0), ("1.2".into(), Some("30%".into())));
        assert_eq!(excess(3.0, 0.0), ("3".into(), None));
        assert_eq!(excess(9.0, 10.0), ("1".into(), Some("10%".into())));
    }

    #[test]
    fn times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            local(0, "Europe/Berlin".parse().unwrap()),
            "1970-01-01 01:00:00 CET"
        );
        assert_eq!(duration(5), "5 s");
        assert_eq!(duration(720), "12 min");
        assert_eq!(duration(3900), "1 h 5 min");
        assert_eq!(duration(7200), "2 h");
        assert_eq!(duration(187_200), "2 d 4 h");
    }
}
