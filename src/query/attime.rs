//! Time references as graphite-web's `attime` reads them, for `from`, `until` and `now`:
//! relative offsets (`-5min`, `-1d`, `-2weeks`, `-1mon`, `-1y`), epoch seconds, absolute
//! `HH:MM_YYYYMMDD`, `YYYYMMDD`, `MM/DD/YY[YY]`, month-day (`jan1`), weekdays, `now`, `today`,
//! `yesterday`, `tomorrow`, `midnight`, `noon`, `teatime`, `3pm`, `15:30`, each with `+`/`-`
//! offsets, in the request's time zone.
//!
//! Like graphite-web: a month is 30 days, a year 365; `m` alone is not a unit (`min`, `mon`);
//! a local time that does not exist (DST gap) or exists twice is read as pytz's
//! `localize(is_dst=False)` reads it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A time reference graphite-web would refuse, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct AtTimeError(pub String);

impl std::fmt::Display for AtTimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AtTimeError {}

fn err<T>(msg: impl Into<String>) -> Result<T, AtTimeError> {
    Err(AtTimeError(msg.into()))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Seconds per unit as graphite-web's `getUnitString`: `s…` seconds, `min…` minutes, `h…`
/// hours, `d…` days, `w…` weeks, `mon…` 30 days, `y…` 365 days.
pub fn unit_seconds(unit: &str) -> Result<i64, AtTimeError> {
    Ok(if unit.starts_with('s') {
        1
    } else if unit.starts_with("min") {
        60
    } else if unit.starts_with('h') {
        3600
    } else if unit.starts_with('d') {
        86400
    } else if unit.starts_with('w') {
        7 * 86400
    } else if unit.starts_with("mon") {
        30 * 86400
    } else if unit.starts_with('y') {
        365 * 86400
    } else {
        return err(format!("Invalid offset unit '{unit}'"));
    })
}

/// graphite-web's `parseTimeOffset`: `[+|-]N unit [N unit …]` (`-1h30min`, `5min`, `+2d`) to
/// signed seconds; an empty string is 0.
pub fn parse_time_offset(offset: &str) -> Result<i64, AtTimeError> {
    if offset.is_empty() {
        return Ok(0);
    }
    let (sign, mut rest) = match offset.chars().next() {
        Some(c) if c.is_ascii_digit() => (1, offset),
        Some('+') => (1, &offset[1..]),
        Some('-') => (-1, &offset[1..]),
        _ => return err(format!("Invalid offset: {offset}")),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return err(format!(
                "Invalid offset: {offset} (expected a number before '{rest}')"
            ));
        }
        let num: i64 = rest[..digits]
            .parse()
            .map_err(|_| AtTimeError(format!("Invalid offset: {offset}")))?;
        rest = &rest[digits..];
        let letters = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let secs = unit_seconds(unit)?;
        total = num
            .checked_mul(secs)
            .and_then(|v| total.checked_add(sign * v))
            .ok_or_else(|| AtTimeError(format!("offset too large: {offset}")))?;
    }
    Ok(total)
}

/// Reads a naive local time in `tz` as pytz's `localize(dt, is_dst=False)`: the standard-time
/// reading of an ambiguous time, the pre-transition offset for a time in a DST gap.
pub fn localize(tz: &Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t,
        LocalResult::Ambiguous(a, b) => {
            // is_dst=False picks the reading whose offset is standard time (the smaller
            // DST-free offset is the later instant in the northern autumn).
            if a.timestamp() > b.timestamp() {
                a
            } else {
                b
            }
        }
        LocalResult::None => {
            let before = naive - Duration::hours(3);
            let offset = match tz.from_local_datetime(&before) {
                LocalResult::Single(t) => t.offset().fix(),
                LocalResult::Ambiguous(a, _) => a.offset().fix(),
                LocalResult::None => chrono::FixedOffset::east_opt(0).expect("zero offset"),
            };
            let utc = naive - Duration::seconds(offset.local_minus_utc() as i64);
            tz.from_utc_datetime(&utc)
        }
    }
}

use chrono::Offset;

fn parse_reference(
    reference: &str,
    tz: &Tz,
    now: DateTime<Tz>,
) -> Result<DateTime<Tz>, AtTimeError> {
    if reference.is_empty() || reference == "now" {
        return Ok(now);
    }
    let raw = reference;
    let mut r = reference;
    let (mut hour, mut minute) = (0u32, 0u32);
    let int = |s: &str| -> Result<u32, AtTimeError> {
        s.parse::<u32>()
            .map_err(|_| AtTimeError(format!("Unknown time reference: {raw}")))
    };

    // HH:MM[am|pm]
    if let Some(i) = r.find(':') {
        if (1..3).contains(&i) {
            hour = int(&r[..i])?;
            minute = int(r.get(i + 1..i + 3).unwrap_or(""))?;
            r = r.get(i + 3..).unwrap_or("");
            if let Some(x) = r.strip_prefix("am") {
                r = x;
            } else if let Some(x) = r.strip_prefix("pm") {
                hour = (hour + 12) % 24;
                r = x;
            }
        }
    }
    if let Some(i) = r.find("am") {
        if (1..3).contains(&i) {
            hour = int(&r[..i])?;
            r = &r[i + 2..];
        }
    }
    if let Some(i) = r.find("pm") {
        if (1..3).contains(&i) {
            hour = (int(&r[..i])? + 12) % 24;
            r = &r[i + 2..];
        }
    }
    if let Some(x) = r.strip_prefix("noon") {
        (hour, minute) = (12, 0);
        r = x;
    } else if let Some(x) = r.strip_prefix("midnight") {
        (hour, minute) = (0, 0);
        r = x;
    } else if let Some(x) = r.strip_prefix("teatime") {
        (hour, minute) = (16, 0);
        r = x;
    }
    let time = NaiveTime::from_hms_opt(hour, minute, 0)
        .ok_or_else(|| AtTimeError(format!("Invalid time of day in '{raw}'")))?;
    let today = now.naive_local().date();
    let date = |y: i32, m: u32, d: u32| {
        NaiveDate::from_ymd_opt(y, m, d)
            .ok_or_else(|| AtTimeError(format!("Invalid date in '{raw}'")))
    };
    let day: NaiveDate = if r == "yesterday" {
        today - Duration::days(1)
    } else if r == "tomorrow" {
        today + Duration::days(1)
    } else if r == "today" {
        today
    } else if r.matches('/').count() == 2 {
        let parts: Vec<&str> = r.split('/').collect();
        let m = int(parts[0])?;
        let d = int(parts[1])?;
        let mut y = int(parts[2])? as i32;
        if y < 1900 {
            y += 1900;
        }
        if y < 1970 {
            y += 100;
        }
        date(y, m, d)?
    } else if r.len() == 8 && r.chars().all(|c| c.is_ascii_digit()) {
        date(int(&r[..4])? as i32, int(&r[4..6])?, int(&r[6..8])?)?
    } else if let Some(m) = r.get(..3).and_then(|p| MONTHS.iter().position(|x| *x == p)) {
        let m = m as u32 + 1;
        let tail2 = r.get(r.len().saturating_sub(2)..).unwrap_or("");
        let tail1 = r.get(r.len() - 1..).unwrap_or("");
        let d = if tail2.len() == 2 && tail2.chars().all(|c| c.is_ascii_digit()) {
            int(tail2)?
        } else if tail1.chars().all(|c| c.is_ascii_digit()) && !tail1.is_empty() {
            int(tail1)?
        } else {
            return err("Day of month required after month name");
        };
        date(today.year(), m, d)?
    } else if let Some(target) = r
        .get(..3)
        .and_then(|p| WEEKDAYS.iter().position(|x| *x == p))
    {
        let today_idx = today.weekday().num_days_from_sunday() as i64;
        let target = target as i64;
        let mut offset = today_idx - target;
        if offset < 0 {
            offset += 7;
        }
        today - Duration::days(offset)
    } else if r.is_empty() {
        today
    } else {
        return err(format!("Unknown day reference: {raw}"));
    };
    Ok(localize(tz, day.and_time(time)))
}

/// graphite-web's `parseATTime`: a time reference to epoch seconds, relative to `now`
/// (epoch seconds) in time zone `tz`.
pub fn parse_at_time(s: &str, tz: &Tz, now: i64) -> Result<i64, AtTimeError> {
    let s: String = s
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    if s.is_empty() {
        return Ok(now);
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        let looks_like_date = s.len() == 8
            && s[..4].parse::<u32>().is_ok_and(|y| y > 1900)
            && s[4..6].parse::<u32>().is_ok_and(|m| m < 13)
            && s[6..].parse::<u32>().is_ok_and(|d| d < 32);
        if !looks_like_date {
            return s
                .parse::<i64>()
                .map_err(|_| AtTimeError(format!("Invalid timestamp: {s}")));
        }
    }
    let (reference, offset) = if let Some(i) = s.find('+') {
        (&s[..i], &s[i..])
    } else if let Some(i) = s.find('-') {
        (&s[..i], &s[i..])
    } else {
        (&s[..], "")
    };
    let now_dt = Utc
        .timestamp_opt(now, 0)
        .single()
        .ok_or_else(|| AtTimeError("invalid now".into()))?
        .with_timezone(tz);
    let base = parse_reference(reference, tz, now_dt)?;
    let off = parse_time_offset(offset)?;
    Ok(base.timestamp() + off)
}

/// Today's local midnight etc. are computed from `now`; exposed for the CSV writer.
pub fn format_local(ts: i64, tz: &Tz) -> String {
    match Utc.timestamp_opt(ts, 0).single() {
        Some(t) => t.with_timezone(tz).format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC, a Tuesday

    fn at(s: &str) -> i64 {
        parse_at_time(s, &Tz::UTC, NOW).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn relative_and_epoch() {
        assert_eq!(at("now"), NOW);
        assert_eq!(at("-1h"), NOW - 3600);
        assert_eq!(at("-5min"), NOW - 300);
        assert_eq!(at("-24hours"), NOW - 86400);
        assert_eq!(at("-7d"), NOW - 7 * 86400);
        assert_eq!(at("-2weeks"), NOW - 14 * 86400);
        assert_eq!(at("-1mon"), NOW - 30 * 86400);
        assert_eq!(at("-1y"), NOW - 365 * 86400);
        assert_eq!(at("now-1h30min"), NOW - 5400);
        assert_eq!(at("1600000000"), 1_600_000_000);
        assert!(
            parse_at_time("-5m", &Tz::UTC, NOW).is_err(),
            "graphite refuses a bare m"
        );
        assert!(parse_at_time("-xd", &Tz::UTC, NOW).is_err());
        assert!(parse_at_time("soon", &Tz::UTC, NOW).is_err());
    }

    #[test]
    fn absolute_forms() {
        assert_eq!(at("20231101"), 1_698_796_800);
        assert_eq!(at("12:00_20231101"), 1_698_796_800 + 12 * 3600);
        assert_eq!(at("11/01/23"), 1_698_796_800);
        assert_eq!(at("11/01/2023"), 1_698_796_800);
        assert_eq!(at("midnight"), 1_699_920_000);
        assert_eq!(at("today"), 1_699_920_000);
        assert_eq!(at("yesterday"), 1_699_920_000 - 86400);
        assert_eq!(at("tomorrow"), 1_699_920_000 + 86400);
        assert_eq!(at("noon"), 1_699_920_000 + 12 * 3600);
        assert_eq!(at("teatime"), 1_699_920_000 + 16 * 3600);
        assert_eq!(at("noon yesterday"), 1_699_920_000 - 86400 + 12 * 3600);
        assert_eq!(at("3pm"), 1_699_920_000 + 15 * 3600);
        assert_eq!(at("8:30am"), 1_699_920_000 + 8 * 3600 + 1800);
        assert_eq!(at("midnight+1h"), 1_699_920_000 + 3600);
        assert_eq!(at("nov1"), 1_698_796_800);
        assert_eq!(at("monday"), 1_699_920_000 - 86400);
        assert_eq!(at("tuesday"), 1_699_920_000);
    }

    #[test]
    fn time_zones() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // midnight in New York on 2023-11-14 is 05:00 UTC.
        assert_eq!(parse_at_time("midnight", &ny, NOW).unwrap(), 1_699_938_000);
        // 2023-11-05 01:30 happens twice in New York; is_dst=False picks EST (06:30 UTC).
        assert_eq!(
            parse_at_time("01:30_20231105", &ny, NOW).unwrap(),
            1_699_165_800
        );
        // 2023-03-12 02:30 does not exist; pytz reads it with EST, i.e. 07:30 UTC.
        assert_eq!(
            parse_at_time("02:30_20230312", &ny, NOW).unwrap(),
            1_678_606_200
        );
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_time_offset("1h").unwrap(), 3600);
        assert_eq!(parse_time_offset("-1d2h").unwrap(), -(86400 + 7200));
        assert_eq!(parse_time_offset("+5min").unwrap(), 300);
        assert!(parse_time_offset("5").is_err());
        assert!(parse_time_offset("x").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;

    /// Deterministic pseudo-random strings over an alphabet mixing attime's vocabulary,
    /// digits, signs, separators and multi-byte characters.
    fn strings(n: usize) -> Vec<String> {
        let alphabet: Vec<&str> = vec![
            "now",
            "-",
            "+",
            "1",
            "2",
            "0",
            "9",
            "d",
            "h",
            "min",
            "mon",
            "s",
            "w",
            "y",
            ":",
            "/",
            "_",
            " ",
            ",",
            "am",
            "pm",
            "noon",
            "midnight",
            "teatime",
            "today",
            "yesterday",
            "tomorrow",
            "jan",
            "feb",
            "mon",
            "sun",
            "é",
            "ü",
            "日",
            "€",
            "🙂",
            "x",
            "12",
            "2023",
            "20231114",
            "31",
            "13",
            "99",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let len = (seed % 7) as usize;
                (0..len)
                    .map(|k| {
                        let v = seed.rotate_left(k as u32 * 9) as usize;
                        alphabet[v % alphabet.len()]
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn no_input_panics() {
        let ny: Tz = "America/New_York".parse().unwrap();
        for s in strings(20_000) {
            let _ = parse_at_time(&s, &Tz::UTC, 1_700_000_000);
            let _ = parse_at_time(&s, &ny, 1_700_000_000);
            let _ = parse_time_offset(&s);
        }
        for s in [
            "ééé",
            "日日日",
            "🙂",
            "é:é",
            "1:é",
            "12:3é",
            "jané",
            "moné",
            "-1é",
            "é+1d",
            "99:99",
            "25:00",
            "12:00_20231399",
            "99/99/99",
            "1:",
            ":1",
        ] {
            let _ = parse_at_time(s, &Tz::UTC, 1_700_000_000);
        }
    }
}
