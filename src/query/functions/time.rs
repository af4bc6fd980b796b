//! Times in function arguments, as graphite-web reads them: `date` parameters (`parseATTime`),
//! interval offsets (`parseTimeOffset`) within Python's `timedelta`, request times moved within
//! Python's `datetime`, and a time truncated to a calendar unit in the request's zone.

use super::error::bad;
use super::naming::py_str_value;
use crate::query::eval::{EvalContext, EvalError, Value};

/// A `date` parameter as graphite-web's `parseATTime` reads it, relative to the request's
/// `now` and time zone; graphite-web fails on anything but a string (`int` has no
/// `.strip()`), and so does this.
pub fn date_param(
    ctx: &EvalContext<'_>,
    args: &crate::query::signature::Args<'_>,
    name: &str,
) -> Result<Option<i64>, EvalError> {
    match args.raw_value(name)? {
        None | Some(Value::None) => Ok(None),
        Some(Value::Str(s)) => crate::query::parse_at_time(&s, &ctx.tz, ctx.now)
            .map(Some)
            .map_err(|e| bad(format!("{name}: {e}"))),
        Some(other) => Err(bad(format!(
            "{name} must be a quoted time ('{}' has no .strip(), as graphite-web fails)",
            py_str_value(&other)
        ))),
    }
}

/// graphite-web's `parseTimeOffset` in seconds (`delta.seconds + delta.days * 86400`), with
/// Python's `timedelta` limit ([`crate::python::TIMEDELTA_MAX_SECONDS`]): beyond it
/// graphite-web fails, and so does this.
pub fn py_time_offset(s: &str) -> Result<i64, EvalError> {
    const MAX: i64 = crate::python::TIMEDELTA_MAX_SECONDS;
    let secs = crate::query::attime::parse_time_offset(s)
        .map_err(|e| EvalError::BadRequest(format!("Invalid interval value: '{s}': {e}")))?;
    if !(-MAX..=MAX).contains(&secs) {
        return Err(EvalError::BadRequest(format!(
            "interval '{s}' is beyond Python's timedelta range (999999999 days)"
        )));
    }
    Ok(secs)
}

/// `start + delta` (epoch seconds) as graphite-web moves `requestContext['startTime']` with a
/// `timedelta`: an error where Python's datetime would overflow.
pub fn shift_time(t: i64, delta: i64) -> Result<i64, EvalError> {
    t.checked_add(delta)
        .filter(|v| crate::python::DATETIME_RANGE.contains(v))
        .ok_or_else(|| {
            EvalError::BadRequest(format!(
                "date value out of range (shifting {t} by {delta} seconds)"
            ))
        })
}

/// `t` (epoch seconds) truncated to the start of its `unit` in time zone `tz`, as graphite-web
/// builds `datetime(s.year, …, tzinfo=s.tzinfo)`: the local wall time truncated, read back with
/// the UTC offset `t` itself has. `unit` is one of `years`, `months`, `weeks` (back to ISO
/// weekday `iso_weekday`, 1 = Monday), `days`, `hours`, `minutes`, `seconds`.
pub fn truncate_local(
    t: i64,
    tz: &chrono_tz::Tz,
    unit: &str,
    iso_weekday: u32,
) -> Result<i64, EvalError> {
    use chrono::{Datelike, NaiveDate, Offset, TimeZone, Timelike};
    let bad = || EvalError::BadRequest(format!("time {t} cannot be aligned"));
    let local = tz.timestamp_opt(t, 0).single().ok_or_else(bad)?;
    let offset = local.offset().fix().local_minus_utc() as i64;
    let (y, mo, d, h, mi, s) = (
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
    );
    let date = |y: i32, mo: u32, d: u32| NaiveDate::from_ymd_opt(y, mo, d).ok_or_else(bad);
    let naive = match unit {
        "years" => date(y, 1, 1)?.and_hms_opt(0, 0, 0),
        "months" => date(y, mo, 1)?.and_hms_opt(0, 0, 0),
        "weeks" => {
            let today = date(y, mo, d)?;
            let mut back = today.weekday().number_from_monday() as i64 - iso_weekday as i64;
            if back < 0 {
                back += 7;
            }
            (today - chrono::Duration::days(back)).and_hms_opt(0, 0, 0)
        }
        "days" => date(y, mo, d)?.and_hms_opt(0, 0, 0),
        "hours" => date(y, mo, d)?.and_hms_opt(h, 0, 0),
        "minutes" => date(y, mo, d)?.and_hms_opt(h, mi, 0),
        _ => date(y, mo, d)?.and_hms_opt(h, mi, s),
    }
    .ok_or_else(bad)?;
    Ok(naive.and_utc().timestamp() - offset)
}
