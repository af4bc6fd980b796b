//! Retention definitions (`60:1440`, `10s:6h`, `1m:7d`) and whisper's rules for a valid
//! archive list, as whisper.py's `parseRetentionDef` and `validateArchiveList`.

use std::fmt;

use super::WhisperError;

/// One archive's shape: a point every `seconds_per_point` seconds, `points` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Retention {
    /// Precision: seconds between two points (> 0).
    pub seconds_per_point: u32,
    /// How many points the archive holds (> 0).
    pub points: u32,
}

impl Retention {
    /// Seconds of history the archive covers: `seconds_per_point × points`.
    pub fn retention(&self) -> u64 {
        self.seconds_per_point as u64 * self.points as u64
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seconds_per_point, self.points)
    }
}

const UNITS: [(&str, u64); 6] = [
    ("seconds", 1),
    ("minutes", 60),
    ("hours", 3600),
    ("days", 86400),
    ("weeks", 86400 * 7),
    ("years", 86400 * 365),
];

/// whisper's `getUnitString`: the first unit whose full name starts with `s`
/// (`s`, `sec`, `m`, `min`, `h`, `d`, `w`, `y`, ...).
fn unit_seconds(s: &str) -> Result<u64, String> {
    UNITS
        .iter()
        .find(|(name, _)| name.starts_with(s))
        .map(|(_, mult)| *mult)
        .ok_or_else(|| format!("Invalid unit '{s}'"))
}

/// Splits `123abc` into (123, "abc"); `None` unless it is digits followed by lowercase letters.
fn number_and_unit(s: &str) -> Option<(u64, &str)> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() || unit.is_empty() || !unit.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    Some((digits.parse().ok()?, unit))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// Parses one retention definition as whisper.py's `parseRetentionDef`:
/// `PRECISION:POINTS`, each either a bare number (seconds, or a point count) or a number with a
/// unit (`10s:6h` = 2160 points of 10 s). A points-with-unit divides down to whole points.
///
/// Errors carry whisper's wording (`Invalid retention definition '…'`,
/// `Invalid precision specification '…'`, `Invalid retention specification '…'`,
/// `Invalid unit '…'`).
pub fn parse_retention_def(def: &str) -> Result<Retention, WhisperError> {
    let invalid = WhisperError::InvalidConfiguration;
    let def = def.trim();
    let (precision, points) = def
        .split_once(':')
        .ok_or_else(|| invalid(format!("Invalid retention definition '{def}'")))?;
    let precision_secs: u64 = if is_digits(precision) {
        precision
            .parse()
            .map_err(|_| invalid(format!("Invalid precision specification '{precision}'")))?
    } else {
        let (n, unit) = number_and_unit(precision)
            .ok_or_else(|| invalid(format!("Invalid precision specification '{precision}'")))?;
        n.saturating_mul(unit_seconds(unit).map_err(invalid)?)
    };
    if precision_secs == 0 || precision_secs > u32::MAX as u64 {
        return Err(invalid(format!(
            "Invalid precision specification '{precision}'"
        )));
    }
    let point_count: u64 = if is_digits(points) {
        points
            .parse()
            .map_err(|_| invalid(format!("Invalid retention specification '{points}'")))?
    } else {
        let (n, unit) = number_and_unit(points)
            .ok_or_else(|| invalid(format!("Invalid retention specification '{points}'")))?;
        n.saturating_mul(unit_seconds(unit).map_err(invalid)?) / precision_secs
    };
    if point_count == 0 || point_count > u32::MAX as u64 {
        return Err(invalid(format!("Invalid retention specification '{points}'")));
    }
    Ok(Retention {
        seconds_per_point: precision_secs as u32,
        points: point_count as u32,
    })
}

/// Parses a comma-separated list (`10s:6h,1m:7d`) as carbon's `retentions =` line, then
/// validates it with [`validate_archive_list`]. Returns the archives sorted by precision.
pub fn parse_retentions(list: &str) -> Result<Vec<Retention>, WhisperError> {
    let mut archives = list
        .split(',')
        .map(parse_retention_def)
        .collect::<Result<Vec<_>, _>>()?;
    validate_archive_list(&mut archives)?;
    Ok(archives)
}

/// whisper.py's `validateArchiveList`: sorts `archives` by precision and checks that there is
/// at least one, no two share a precision, each precision divides the next, each lower
/// precision covers a longer time, and each archive has enough points to consolidate into the
/// next. Also refuses a file whose header offsets would not fit in 32 bits.
pub fn validate_archive_list(archives: &mut [Retention]) -> Result<(), WhisperError> {
    let invalid = WhisperError::InvalidConfiguration;
    if archives.is_empty() {
        return Err(invalid(
            "You must specify at least one archive configuration!".into(),
        ));
    }
    archives.sort_by_key(|a| a.seconds_per_point);
    for i in 0..archives.len() - 1 {
        let (a, next) = (archives[i], archives[i + 1]);
        if a.seconds_per_point >= next.seconds_per_point {
            return Err(invalid(format!(
                "A Whisper database may not be configured having two archives with the same \
                 precision (archive{i}: ({}, {}), archive{}: ({}, {}))",
                a.seconds_per_point,
                a.points,
                i + 1,
                next.seconds_per_point,
                next.points
            )));
        }
        if next.seconds_per_point % a.seconds_per_point != 0 {
            return Err(invalid(format!(
                "Higher precision archives' precision must evenly divide all lower precision \
                 archives' precision (archive{i}: {}, archive{}: {})",
                a.seconds_per_point,
                i + 1,
                next.seconds_per_point
            )));
        }
        if next.retention() <= a.retention() {
            return Err(invalid(format!(
                "Lower precision archives must cover larger time intervals than higher \
                 precision archives (archive{i}: {} seconds, archive{}: {} seconds)",
                a.retention(),
                i + 1,
                next.retention()
            )));
        }
        let per_consolidation = next.seconds_per_point / a.seconds_per_point;
        if a.points < per_consolidation {
            return Err(invalid(format!(
                "Each archive must have at least enough points to consolidate to the next \
                 archive (archive{} consolidates {per_consolidation} of archive{i}'s points but \
                 it has only {} total points)",
                i + 1,
                a.points
            )));
        }
    }
    let header = super::METADATA_SIZE as u64 + super::ARCHIVE_INFO_SIZE as u64 * archives.len() as u64;
    let data: u64 = archives
        .iter()
        .map(|a| a.points as u64 * super::POINT_SIZE as u64)
        .sum();
    let oldest = archives.iter().map(|a| a.retention()).max().unwrap_or(0);
    if header + data > u32::MAX as u64 || oldest > u32::MAX as u64 {
        return Err(invalid(format!(
            "Archives too large for a whisper file ({} bytes, {oldest} seconds)",
            header + data
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: u32, p: u32) -> Retention {
        Retention {
            seconds_per_point: s,
            points: p,
        }
    }

    #[test]
    fn parses_whisper_forms() {
        assert_eq!(parse_retention_def("60:1440").unwrap(), r(60, 1440));
        assert_eq!(parse_retention_def("10s:6h").unwrap(), r(10, 2160));
        assert_eq!(parse_retention_def("1m:7d").unwrap(), r(60, 10080));
        assert_eq!(parse_retention_def("1min:1y").unwrap(), r(60, 525600));
        assert_eq!(parse_retention_def(" 1h:2w ").unwrap(), r(3600, 336));
        assert_eq!(parse_retention_def("15s:1d").unwrap(), r(15, 5760));
    }

    #[test]
    fn rejects_bad_definitions_with_whisper_wording() {
        let e = parse_retention_def("60").unwrap_err().to_string();
        assert_eq!(e, "Invalid retention definition '60'");
        let e = parse_retention_def("1q:10").unwrap_err().to_string();
        assert_eq!(e, "Invalid unit 'q'");
        let e = parse_retention_def("x:10").unwrap_err().to_string();
        assert_eq!(e, "Invalid precision specification 'x'");
        let e = parse_retention_def("10:1.5d").unwrap_err().to_string();
        assert_eq!(e, "Invalid retention specification '1.5d'");
        assert!(parse_retention_def("0:10").is_err());
        assert!(parse_retention_def("10:0").is_err());
    }

    #[test]
    fn validates_archive_lists() {
        assert!(parse_retentions("10s:6h,1m:7d,10m:5y").is_ok());
        let e = parse_retentions("60:10,60:20").unwrap_err().to_string();
        assert!(e.contains("same precision"), "{e}");
        let e = parse_retentions("60:100,90:1000").unwrap_err().to_string();
        assert!(e.contains("evenly divide"), "{e}");
        let e = parse_retentions("60:100,120:10").unwrap_err().to_string();
        assert!(e.contains("larger time intervals"), "{e}");
        let e = parse_retentions("60:3,300:100").unwrap_err().to_string();
        assert!(e.contains("enough points to consolidate"), "{e}");
        // Sorted by precision even when given out of order.
        let a = parse_retentions("1m:7d,10s:6h").unwrap();
        assert_eq!(a, vec![r(10, 2160), r(60, 10080)]);
    }
}
