//! `carbonhound silence add|list|expire`: silences of a running server, through its HTTP
//! API (`/api/silences`), since the server holds the state database. The server's address
//! defaults to the settings' `[http] listen` (a wildcard host is reached on 127.0.0.1); a
//! `--token` is sent as `Authorization: Bearer`. Prints what the server answered; an error
//! carries the server's message (e.g. which field was refused).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::config::Settings;

/// Where and how to reach the server.
#[derive(Debug, Clone, Default)]
pub struct Server {
    /// `--url` (`http://127.0.0.1:8080`); `None`: from the settings' `[http] listen`.
    pub url: Option<String>,
    /// `--token`: a `[http] auth_tokens` entry.
    pub token: Option<String>,
}

/// `silence add`'s options.
#[derive(Debug, Clone, Default)]
pub struct AddArgs {
    /// `--rule`: a rule's name or slug.
    pub rule: Option<String>,
    /// `--series`: a Graphite glob over series names.
    pub series: Option<String>,
    /// `--label k=v`, each.
    pub labels: Vec<String>,
    /// `--duration 2h`.
    pub duration: Option<String>,
    /// `--until EPOCH`.
    pub until: Option<i64>,
    /// `--comment`.
    pub comment: String,
    /// `--author`.
    pub author: String,
}

/// Why a silence command failed.
#[derive(Debug, thiserror::Error)]
pub enum SilenceCliError {
    /// The settings could not be read (for the default URL).
    #[error("{0}")]
    Settings(#[from] crate::config::ConfigError),
    /// A `--label` that is not `key=value`.
    #[error("--label '{0}' is not key=value")]
    Label(String),
    /// The server answered with an error.
    #[error("{url}: HTTP {status}: {message}")]
    Refused {
        /// The request URL.
        url: String,
        /// Its status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached.
    #[error("{url}: {message} (is `carbonhound serve` running there? --url sets the address)")]
    Unreachable {
        /// The request URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// An answer that is not the JSON expected.
    #[error("{url}: unexpected answer: {message}")]
    Answer {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// The base URL: `--url`, else `http://<[http] listen>` (0.0.0.0 / [::] → loopback).
fn base_url(config: Option<&Path>, server: &Server) -> Result<String, SilenceCliError> {
    if let Some(u) = &server.url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    Ok(Settings::load(config)?.http.local_url())
}

fn call(
    server: &Server,
    method: &str,
    url: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, SilenceCliError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.request(method, url);
    if let Some(t) = &server.token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let answer = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let text = |r: ureq::Response| r.into_string().unwrap_or_default();
    match answer {
        Ok(r) => {
            let body = text(r);
            serde_json::from_str(&body).map_err(|e| SilenceCliError::Answer {
                url: url.to_string(),
                message: e.to_string(),
            })
        }
        Err(ureq::Error::Status(status, r)) => Err(SilenceCliError::Refused {
            url: url.to_string(),
            status,
            message: text(r).trim().to_string(),
        }),
        Err(e) => Err(SilenceCliError::Unreachable {
            url: url.to_string(),
            message: e.to_string(),
        }),
    }
}

fn utc(v: &serde_json::Value) -> String {
    v.as_i64()
        .map(super::super::format::utc)
        .unwrap_or_default()
}

/// `silence add`: posts the silence; returns `silence N added, until …`.
pub fn add(
    config: Option<&Path>,
    server: &Server,
    args: &AddArgs,
) -> Result<String, SilenceCliError> {
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| SilenceCliError::Label(l.clone()))?;
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    let mut body = serde_json::json!({
        "rule": args.rule,
        "series": args.series,
        "labels": labels,
        "comment": args.comment,
        "author": args.author,
    });
    if let Some(d) = &args.duration {
        body["duration"] = d.clone().into();
    }
    if let Some(u) = args.until {
        body["until"] = u.into();
    }
    let url = format!("{}/api/silences", base_url(config, server)?);
    let v = call(server, "POST", &url, Some(body))?;
    Ok(format!(
        "silence {} added, until {}",
        v["id"],
        utc(&v["ends"])
    ))
}

/// `silence list`: one line per silence, active first (`12 active until … rule=… series=…
/// by ops: comment`).
pub fn list(config: Option<&Path>, server: &Server) -> Result<String, SilenceCliError> {
    let url = format!("{}/api/silences", base_url(config, server)?);
    let v = call(server, "GET", &url, None)?;
    let items = v.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Ok("no silences".into());
    }
    let lines: Vec<String> = items
        .iter()
        .map(|s| {
            let mut what = Vec::new();
            if let Some(r) = s["rule"].as_str() {
                what.push(format!("rule={r}"));
            }
            if let Some(g) = s["series"].as_str() {
                what.push(format!("series={g}"));
            }
            if let Some(m) = s["labels"].as_object() {
                for (k, v) in m {
                    what.push(format!("{k}={}", v.as_str().unwrap_or("")));
                }
            }
            format!(
                "{} {} {} {} by {}: {}",
                s["id"],
                if s["active"].as_bool() == Some(true) {
                    "active until"
                } else {
                    "ended"
                },
                utc(&s["ends"]),
                what.join(" "),
                s["author"].as_str().unwrap_or(""),
                s["comment"].as_str().unwrap_or("")
            )
        })
        .collect();
    Ok(lines.join("\n"))
}

/// `silence expire ID`: ends it now.
pub fn expire(config: Option<&Path>, server: &Server, id: u64) -> Result<String, SilenceCliError> {
    let url = format!("{}/api/silences/{id}", base_url(config, server)?);
    let v = call(server, "DELETE", &url, None)?;
    Ok(format!(
        "silence {} expired at {}",
        v["id"],
        utc(&v["ends"])
    ))
}
