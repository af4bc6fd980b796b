//! The setting values that are more than TOML scalars — durations, time zones, file
//! preallocation, SMTP TLS modes, optional paths — and their serde parsers. Each parser
//! refuses a bad value with what is accepted, so a typo fails at load instead of falling
//! back to a default later; the `config` crate appends "for key `section.key`". Never reads
//! files.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

use crate::whisper::Preallocation;

/// A setting value that does not parse; the `config` crate adds the key.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// Not a humantime duration.
    #[error("invalid duration '{value}': {source}")]
    Duration {
        /// The text given.
        value: String,
        /// humantime's reason.
        source: humantime::DurationError,
    },
    /// Not one of `none`, `starttls`, `tls`.
    #[error("invalid value '{0}' (expected none, starttls or tls)")]
    SmtpTls(String),
}

/// Parses durations such as `60s`, `5m`, `1h 30m`, `500ms` (humantime's syntax).
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    humantime::parse_duration(s.trim()).map_err(|source| ValueError::Duration {
        value: s.to_string(),
        source,
    })
}

/// `[smtp].tls`: how the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `none`: plain SMTP.
    None,
    /// `starttls`: STARTTLS, required (not opportunistic).
    StartTls,
    /// `tls`: implicit TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    /// The setting's spelling: `none`, `starttls` or `tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
}

impl FromStr for SmtpTls {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            other => Err(ValueError::SmtpTls(other.to_string())),
        }
    }
}

impl<'de> Deserialize<'de> for SmtpTls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A duration in humantime's syntax (`60s`, `5m`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// `[smtp].timeout`: a duration where zero means lettre's usual 30 s (a zero timeout
/// would fail every send).
pub(crate) fn smtp_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = duration(d)?;
    Ok(if t.is_zero() {
        Duration::from_secs(30)
    } else {
        t
    })
}

/// An IANA time zone name (`UTC`, `Europe/Berlin`), as graphite-web's `TIME_ZONE`.
pub(crate) fn time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "'{s}' is not a known time zone (IANA name expected)"
        ))
    })
}

/// `fallocate`, `zero` or `sparse` (whisper's `useFallocate`, default, `sparse`).
pub(crate) fn preallocation<'de, D: Deserializer<'de>>(d: D) -> Result<Preallocation, D::Error> {
    match String::deserialize(d)?.as_str() {
        "fallocate" => Ok(Preallocation::Fallocate),
        "zero" => Ok(Preallocation::Zero),
        "sparse" => Ok(Preallocation::Sparse),
        other => Err(serde::de::Error::custom(format!(
            "invalid value '{other}' (expected fallocate, zero or sparse)"
        ))),
    }
}

/// A path where `""` (or blanks) means "none": the embedded default is used instead.
pub(crate) fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.trim().is_empty()).then(|| PathBuf::from(s)))
}

/// A string where `""` means "none" (e.g. no SMTP login).
pub(crate) fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.is_empty()).then_some(s))
}

/// Checks a listen address: `host:port` with a port number, or `""` (disabled) where
/// `may_be_off`. The host is resolved only when the listener binds, as carbon does.
pub(crate) fn check_listen(value: &str, may_be_off: bool) -> Result<(), String> {
    if value.is_empty() && may_be_off {
        return Ok(());
    }
    let port_ok = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if port_ok {
        Ok(())
    } else if may_be_off {
        Err(format!(
            "must be host:port (port 0 picks a free one) or \"\" to disable, not '{value}'"
        ))
    } else {
        Err(format!(
            "must be host:port (port 0 picks a free one), not '{value}'"
        ))
    }
}
