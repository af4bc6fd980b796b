//! `[[maintenance]]`: weekly maintenance windows during which matching alert rules send no
//! mail (they are still checked and shown). Parsed once at load into [`MaintenanceWindow`]s;
//! a bad table is refused naming the window and the key. Knows nothing of rules: it matches
//! a rule's name, slug and labels as given.
//!
//! ```toml
//! [[maintenance]]
//! name = "backups"                     # optional, shown on the board
//! match = { team = "web" }             # rule labels; the key `rule` matches a rule's name or slug
//! weekly = "Sun 02:00-04:00"           # also "Mon-Fri 22:00-23:30", "Sat 23:00-01:00" (to Sunday)
//! timezone = "Europe/Paris"            # IANA name, wall-clock times (DST-correct); default UTC
//! ```

use std::collections::BTreeMap;

use chrono::{Datelike, Duration as Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

/// Most `[[maintenance]]` tables.
pub const MAX_WINDOWS: usize = 1000;

/// One weekly window: on each of `days`, from `start` to `end` minutes after local midnight;
/// `end <= start` crosses midnight into the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weekly {
    /// Days the window opens on, Monday = 0 … Sunday = 6.
    pub days: [bool; 7],
    /// Minutes after midnight it opens (0..1440).
    pub start: u32,
    /// Minutes after midnight it closes (1..=1440); at or before `start`: the next day.
    pub end: u32,
    /// As written, for the board.
    pub text: String,
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A day by its English name or first three letters, any case; Monday = 0.
fn day(s: &str) -> Result<usize, String> {
    let l = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == l || (l.len() == 3 && d.starts_with(&l)))
        .ok_or_else(|| format!("'{s}' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn minutes(s: &str) -> Result<u32, String> {
    let bad = || format!("'{s}' is not a time (HH:MM, 00:00 to 24:00)");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl Weekly {
    /// Parses `"Sun 02:00-04:00"`, `"Mon-Fri 22:00-23:30"`, `"Mon,Wed,Fri 12:00-13:00"`,
    /// `"Sat 23:00-01:00"` (ends Sunday 01:00) or `"daily 03:00-03:30"`. Day ranges may wrap
    /// (`Fri-Mon`). Errors say what part is wrong and what is accepted.
    pub fn parse(text: &str) -> Result<Weekly, String> {
        let t = text.trim();
        let (days_text, times) = t.split_once(char::is_whitespace).ok_or_else(|| {
            format!("'{text}' is not DAYS HH:MM-HH:MM (e.g. \"Sun 02:00-04:00\")")
        })?;
        let mut days = [false; 7];
        if days_text.eq_ignore_ascii_case("daily") || days_text == "*" {
            days = [true; 7];
        } else {
            for part in days_text.split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day(a)?, day(b)?);
                        let mut d = a;
                        loop {
                            days[d] = true;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => days[day(part)?] = true,
                }
            }
        }
        let (a, b) = times
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("'{times}' is not HH:MM-HH:MM"))?;
        let (start, end) = (minutes(a)?, minutes(b)?);
        if start == end || start == 1440 {
            return Err(format!("'{times}' is an empty window"));
        }
        Ok(Weekly {
            days,
            start,
            end: if end == 0 { 1440 } else { end },
            text: t.to_string(),
        })
    }

    /// When the occurrence open at `now` (epoch seconds) closes, in `tz`'s wall-clock time;
    /// `None` when the window is closed at `now`.
    pub fn open_until(&self, now: i64, tz: Tz) -> Option<i64> {
        let local = tz.timestamp_opt(now, 0).single()?.naive_local();
        let minute = local.hour() * 60 + local.minute();
        let today = local.date();
        let wd = |d: NaiveDate| d.weekday().num_days_from_monday() as usize;
        let crosses = self.end <= self.start;
        let opened_on =
            if self.days[wd(today)] && minute >= self.start && (crosses || minute < self.end) {
                today
            } else {
                let yesterday = today.pred_opt()?;
                if crosses && self.days[wd(yesterday)] && minute < self.end {
                    yesterday
                } else {
                    return None;
                }
            };
        let end_day = if crosses || self.end == 1440 {
            opened_on + Days::days(1)
        } else {
            opened_on
        };
        let end_min = self.end % 1440;
        let naive = NaiveDateTime::new(
            end_day,
            NaiveTime::from_hms_opt(end_min / 60, end_min % 60, 0)?,
        );
        // A closing time in a DST gap (02:30 on the spring-forward night) closes when the
        // clocks reach it, an hour later in wall-clock terms.
        tz.from_local_datetime(&naive)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(naive + Days::hours(1))).earliest())
            .map(|t| t.timestamp())
    }
}

/// One `[[maintenance]]` table, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    /// `name`, or `maintenance N` (1-based) when none was given.
    pub name: String,
    /// `match.rule`: a rule name or slug the window is limited to.
    pub rule: Option<String>,
    /// The other `match` keys: labels a rule must all have, with these values.
    pub labels: BTreeMap<String, String>,
    /// `weekly`.
    pub weekly: Weekly,
    /// `timezone` (default UTC).
    pub timezone: Tz,
}

impl MaintenanceWindow {
    /// Whether a rule with this name, slug and labels is covered (at any time).
    pub fn covers(&self, name: &str, slug: &str, labels: &BTreeMap<String, String>) -> bool {
        self.rule.as_deref().is_none_or(|r| r == name || r == slug)
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// When the occurrence open at `now` (epoch seconds) ends; `None` while closed.
    pub fn open_until(&self, now: i64) -> Option<i64> {
        self.weekly.open_until(now, self.timezone)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    name: String,
    #[serde(rename = "match")]
    matches: BTreeMap<String, String>,
    weekly: String,
    #[serde(default)]
    timezone: String,
}

/// Deserializes the `maintenance` array of tables into typed windows.
pub fn windows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MaintenanceWindow>, D::Error> {
    use serde::de::Error;
    let specs = Vec::<Spec>::deserialize(d)?;
    if specs.len() > MAX_WINDOWS {
        return Err(D::Error::custom(format!(
            "at most {MAX_WINDOWS} [[maintenance]] windows"
        )));
    }
    specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let name = if s.name.trim().is_empty() {
                format!("maintenance {}", i + 1)
            } else {
                s.name.trim().to_string()
            };
            let fail = |what: String| D::Error::custom(format!("[[maintenance]] '{name}': {what}"));
            if name.chars().any(char::is_control) || name.chars().count() > 200 {
                return Err(fail("name: at most 200 characters, no control characters".into()));
            }
            let mut labels = s.matches;
            let rule = labels.remove("rule");
            if rule.is_none() && labels.is_empty() {
                return Err(fail(
                    "match: give at least one key (rule = \"name\" or a label such as team = \"web\")"
                        .into(),
                ));
            }
            let weekly = Weekly::parse(&s.weekly).map_err(|e| fail(format!("weekly: {e}")))?;
            let timezone = if s.timezone.is_empty() {
                Tz::UTC
            } else {
                s.timezone
                    .parse::<Tz>()
                    .map_err(|_| fail(format!("timezone: '{}' is not an IANA time zone (e.g. Europe/Paris)", s.timezone)))?
            };
            Ok(MaintenanceWindow {
                name,
                rule,
                labels,
                weekly,
                timezone,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp()
    }

    #[test]
    fn weekly_windows_parse_and_open() {
        let paris = chrono_tz::Europe::Paris;
        // 2024-06-02 is a Sunday.
        let w = Weekly::parse("Sun 02:00-04:00").unwrap();
        assert_eq!(w.open_until(at(paris, 2024, 6, 2, 1, 59), paris), None);
        assert_eq!(
            w.open_until(at(paris, 2024, 6, 2, 2, 0), paris),
            Some(at(paris, 2024, 6, 2, 4, 0))
        );
        assert_eq!(w.open_until(at(paris, 2024, 6, 2, 4, 0), paris), None);
        assert_eq!(w.open_until(at(paris, 2024, 6, 3, 3, 0), paris), None);
        let w = Weekly::parse("Mon-Fri 22:00-23:30").unwrap();
        assert!(w
            .open_until(at(Tz::UTC, 2024, 6, 7, 22, 10), Tz::UTC)
            .is_some());
        assert!(w
            .open_until(at(Tz::UTC, 2024, 6, 8, 22, 10), Tz::UTC)
            .is_none());
        // Saturday 23:00 to Sunday 01:00.
        let w = Weekly::parse("Sat 23:00-01:00").unwrap();
        let until = Some(at(Tz::UTC, 2024, 6, 2, 1, 0));
        assert_eq!(
            w.open_until(at(Tz::UTC, 2024, 6, 1, 23, 30), Tz::UTC),
            until
        );
        assert_eq!(w.open_until(at(Tz::UTC, 2024, 6, 2, 0, 30), Tz::UTC), until);
        assert_eq!(w.open_until(at(Tz::UTC, 2024, 6, 2, 23, 30), Tz::UTC), None);
        assert_eq!(w.open_until(at(Tz::UTC, 2024, 6, 3, 0, 30), Tz::UTC), None);
        // DST: on 2024-03-31 Paris jumps 02:00 → 03:00; "02:00-04:00" lasts one real hour.
        let w = Weekly::parse("Sun 02:00-04:00").unwrap();
        let t = at(paris, 2024, 3, 31, 3, 30);
        assert_eq!(w.open_until(t, paris), Some(at(paris, 2024, 3, 31, 4, 0)));
        assert_eq!(
            at(paris, 2024, 3, 31, 4, 0) - at(paris, 2024, 3, 31, 1, 59),
            3660
        );
        assert!(Weekly::parse("daily 00:00-24:00").unwrap().days == [true; 7]);
        assert!(Weekly::parse("Fri-Mon 10:00-11:00").unwrap().days[6]);
        for bad in [
            "Sun",
            "Sun 2-4",
            "Sonntag 02:00-04:00",
            "Sun 02:00-02:00",
            "Sun 25:00-26:00",
        ] {
            assert!(Weekly::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_read_windows_and_refuse_bad_ones_by_key() {
        let load = |t: &str| super::super::Settings::from_toml(t, std::path::Path::new("c.toml"));
        let s = load("[[maintenance]]\nname = \"backups\"\nmatch = { team = \"web\", rule = \"Disk\" }\nweekly = \"Sun 02:00-04:00\"\ntimezone = \"Europe/Paris\"\n").unwrap();
        let w = &s.maintenance[0];
        assert_eq!(
            (w.name.as_str(), w.rule.as_deref()),
            ("backups", Some("Disk"))
        );
        assert_eq!(w.labels.get("team").map(String::as_str), Some("web"));
        assert_eq!(w.timezone, chrono_tz::Europe::Paris);
        assert!(super::super::Settings::defaults().maintenance.is_empty());
        for (text, want) in [
            ("[[maintenance]]\nmatch = { team = \"web\" }\nweekly = \"Sun 2-4\"\n", "weekly"),
            ("[[maintenance]]\nmatch = {}\nweekly = \"Sun 02:00-04:00\"\n", "match"),
            ("[[maintenance]]\nmatch = { a = \"b\" }\nweekly = \"Sun 02:00-04:00\"\ntimezone = \"Mars/Base\"\n", "timezone"),
            ("[[maintenance]]\nmatch = { a = \"b\" }\nweekly = \"Sun 02:00-04:00\"\nzone = \"UTC\"\n", "zone"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains("maintenance") && e.contains(want), "{text}: {e}");
        }
    }
}
