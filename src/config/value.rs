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
    /// Not a cluster server (`host:port`, `http://` or `https://` optional).
    #[error("invalid cluster server '{value}': {reason}")]
    ClusterServer {
        /// The text given, any password in it replaced by `***`.
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// Not the base URL of a Graphite render API.
    #[error("invalid graphite URL '{value}': {reason}")]
    GraphiteUrl {
        /// The text given, any password in it replaced by `***`.
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
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

/// `[alerting].graphite_url`: the base URL of a Graphite render API (graphite-web, carbonapi
/// or another carbonhound), to which `/render` is appended: `http://graphite:8080` or
/// `https://user:password@graphite.example.com/prefix`. Checked once, at load: `http` or
/// `https`, a host, no query or fragment, and not already ending in `/render` (Hound's
/// `GraphiteBase` does; carbonhound wants the base). A trailing `/` is dropped.
///
/// Credentials in the URL are sent as HTTP basic auth and never shown: `Display` and `Debug`
/// give the URL without them (see [`GraphiteUrl::public`]).
#[derive(Clone, PartialEq, Eq)]
pub struct GraphiteUrl {
    url: url::Url,
}

impl GraphiteUrl {
    /// Parses and checks `text` (see the type's documentation for what is accepted).
    pub fn parse(text: &str) -> Result<GraphiteUrl, ValueError> {
        let bad = |reason: &str| ValueError::GraphiteUrl {
            value: redact(text),
            reason: reason.to_string(),
        };
        let mut url = url::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "must be the base URL, without ?query or #fragment (/render?... is added)",
            ));
        }
        let path = url.path().trim_end_matches('/').to_string();
        if path.ends_with("/render") {
            return Err(bad(
                "must be the base URL without /render (carbonhound adds /render itself)",
            ));
        }
        url.set_path(&path);
        Ok(GraphiteUrl { url })
    }

    /// The URL without user name and password, and without a trailing `/`
    /// (`http://graphite:8080`, `https://graphite.example.com/prefix`): where requests go
    /// (with `/render` added) and what messages show.
    pub fn public(&self) -> String {
        let mut u = self.url.clone();
        // Cannot fail for http(s) URLs with a host, which parse() guarantees.
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.as_str().trim_end_matches('/').to_string()
    }

    /// The user name and password of the URL, percent-decoded, when it has a user name.
    pub fn credentials(&self) -> Option<(String, String)> {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        if self.url.username().is_empty() {
            return None;
        }
        Some((
            decode(self.url.username()),
            decode(self.url.password().unwrap_or("")),
        ))
    }
}

impl FromStr for GraphiteUrl {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        GraphiteUrl::parse(s)
    }
}

/// The public form: credentials are never shown.
impl std::fmt::Display for GraphiteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.public())
    }
}

/// As `Display`: settings are printed in logs and tests, passwords must not be.
impl std::fmt::Debug for GraphiteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GraphiteUrl({})", self.public())
    }
}

/// One `[cluster].servers` entry: another server answering graphite-web's cluster protocol
/// (`/metrics/find?local=1`, `/render?local=1`, `/tags/findSeries?local=1`), as graphite-web's
/// `RemoteFinder.parse_host` reads a `CLUSTER_SERVERS` entry: `host:port`, `host` (port 80),
/// or with an `http://` / `https://` scheme and a path prefix (`http://graphite/gw`). Checked
/// once, at load: a host, no user name or password, no query or fragment (graphite-web reads
/// `format`/`local` from one; carbonhound always asks `local=1&format=msgpack`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterServer {
    /// The entry as written, without a trailing `/` (what logs, headers and `/health` show).
    name: String,
    /// The base URL requests go to, without a trailing `/`.
    base: String,
}

impl ClusterServer {
    /// Parses and checks one entry (see the type's documentation).
    pub fn parse(text: &str) -> Result<ClusterServer, ValueError> {
        let text = text.trim();
        let shown = match text.contains("://") {
            true => redact(text),
            false => redact(&format!("http://{text}"))["http://".len()..].to_string(),
        };
        let bad = |reason: &str| ValueError::ClusterServer {
            value: shown.clone(),
            reason: reason.to_string(),
        };
        let with_scheme = if text.starts_with("http://") || text.starts_with("https://") {
            text.to_string()
        } else if text.contains("://") {
            return Err(bad("must be host:port, or start with http:// or https://"));
        } else {
            format!("http://{text}")
        };
        let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "must be host:port or a base URL, without ?query or #fragment",
            ));
        }
        let base = url.as_str().trim_end_matches('/').to_string();
        Ok(ClusterServer {
            name: text.trim_end_matches('/').to_string(),
            base,
        })
    }

    /// The entry as written (`10.0.0.2:8080`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL requests go to (`http://10.0.0.2:8080`), `/render` etc. appended.
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

impl std::fmt::Debug for ClusterServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterServer({})", self.base)
    }
}

/// `[cluster].servers`: a list of [`ClusterServer`] entries; blank entries are skipped (so
/// `CARBONHOUND_CLUSTER__SERVERS=` means none), and an entry given twice is refused.
pub(crate) fn cluster_servers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<ClusterServer>, D::Error> {
    let entries = Vec::<String>::deserialize(d)?;
    let mut out: Vec<ClusterServer> = Vec::new();
    for e in entries.iter().filter(|e| !e.trim().is_empty()) {
        let server = ClusterServer::parse(e).map_err(serde::de::Error::custom)?;
        if out.iter().any(|s| s.base == server.base) {
            return Err(serde::de::Error::custom(format!(
                "cluster server '{}' is listed twice",
                server.name
            )));
        }
        out.push(server);
    }
    Ok(out)
}

/// `text` with whatever stands between `://` and the `@` of a `user:password@` replaced by
/// `***`, for messages about a URL that did not parse.
fn redact(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    match text[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &text[start + at..]),
        None => text.to_string(),
    }
}

/// `[alerting].graphite_url`: `""` is none (rules are evaluated in-process).
pub(crate) fn graphite_url<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<GraphiteUrl>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    GraphiteUrl::parse(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// A duration in humantime's syntax (`60s`, `5m`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// An optional duration (`escalate_after`): `""` or absent means none.
pub(crate) fn optional_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
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

/// `[cache].wal_sync`: when the write-ahead log is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalSync {
    /// `"always"`: before a read's points count as received (one fsync per listener read).
    Always,
    /// A duration: at most this often, by a background thread; a crash loses at most the
    /// points of the last interval.
    Every(Duration),
}

/// `always`, or a duration other than zero.
pub(crate) fn wal_sync<'de, D: Deserializer<'de>>(d: D) -> Result<WalSync, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim() == "always" {
        return Ok(WalSync::Always);
    }
    match parse_duration(&s) {
        Ok(d) if !d.is_zero() => Ok(WalSync::Every(d)),
        _ => Err(serde::de::Error::custom(format!(
            "invalid value '{s}' (expected always or a duration such as \"1s\", \"200ms\")"
        ))),
    }
}

/// A size in bytes: a whole number of bytes, or a number with a unit (`KiB`, `MiB`, `GiB`,
/// or `K`, `M`, `G` for the same powers of 1024, `B`), e.g. `"512MiB"`; `"auto"` is `None`
/// (the setting's own default, e.g. a fraction of RAM).
pub fn parse_byte_size(s: &str) -> Result<Option<usize>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => usize::MAX,
    };
    match digits.parse::<usize>().ok().and_then(|n| n.checked_mul(scale)) {
        Some(n) if n > 0 && scale != usize::MAX => Ok(Some(n)),
        _ => Err(format!(
            "invalid size '{s}' (expected \"auto\", a number of bytes or one with a unit such as \"512MiB\" or \"2GiB\")"
        )),
    }
}

/// [`parse_byte_size`] of a TOML string or integer.
pub(crate) fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Int(n) => n.to_string(),
        Raw::Text(s) => s,
    };
    parse_byte_size(&text).map_err(serde::de::Error::custom)
}

/// A count given as a TOML integer, or the string `"auto"` (`None`: the setting's own
/// default, e.g. one sized from a limit of the process).
pub(crate) fn count_or_auto<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => usize::try_from(n)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{n} is too large"))),
        Raw::Text(s) if s.trim().eq_ignore_ascii_case("auto") => Ok(None),
        Raw::Text(s) => match s.trim().parse::<usize>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(serde::de::Error::custom(format!(
                "invalid value '{s}' (expected \"auto\" or a whole number)"
            ))),
        },
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

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn byte_sizes_take_units_and_auto_and_refuse_the_rest() {
        assert_eq!(parse_byte_size("auto"), Ok(None));
        assert_eq!(parse_byte_size("1048576"), Ok(Some(1 << 20)));
        assert_eq!(parse_byte_size("512MiB"), Ok(Some(512 << 20)));
        assert_eq!(parse_byte_size("2 GiB"), Ok(Some(2 << 30)));
        assert_eq!(parse_byte_size("64k"), Ok(Some(64 << 10)));
        for bad in [
            "",
            "0",
            "12 parsecs",
            "-5MiB",
            "1.5GiB",
            "99999999999999999999GiB",
        ] {
            let e = parse_byte_size(bad).unwrap_err();
            assert!(e.contains("512MiB"), "{bad}: {e}");
        }
    }
}
