//! `carbonhound metrics delete|rename|stale`: the metric lifecycle of a running server,
//! through its HTTP API (`POST /metrics/delete`, `/metrics/rename`, `/metrics/stale`), so the
//! server's index, cache, tags and open readers follow at once — as `carbonhound silence`
//! talks to the server that holds the silences.
//!
//! The server's address defaults to the settings' `[http] listen` (a wildcard host is reached
//! on loopback); the token to `--token`, else the first `[http] auth_tokens` entry of the
//! settings, sent as `Authorization: Bearer`. Prints one line per metric (or a count with
//! `--quiet`); an error carries the server's message, and an unreachable server is said so.
//! Never touches a file itself.

use std::path::Path;
use std::time::Duration;

use clap::Subcommand;

use crate::config::Settings;

/// The `metrics` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum MetricsCommand {
    /// Delete every metric PATTERN matches (graphite glob syntax, as /metrics/find; a tagged
    /// series by its full name): whisper files, cached points, index and tag entries.
    Delete {
        /// e.g. 'collectd.oldhost.*' or 'servers.web1'.
        pattern: String,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rename metric OLD, or branch OLD with every metric below it, to NEW (refused when NEW
    /// exists). Tagged series cannot be renamed.
    Rename {
        /// The metric or branch, e.g. servers.web1.
        old: String,
        /// Its new name, e.g. servers.web01.
        new: String,
    },
    /// List the metrics not updated for --older-than (file mtime, and no point waiting in
    /// the cache); with --delete, delete them.
    Stale {
        /// Graphite offset syntax: 30d, 12h, 90min, 1w.
        #[arg(long)]
        older_than: String,
        /// Delete the stale metrics.
        #[arg(long)]
        delete: bool,
        /// With --delete: list only (the same as without --delete).
        #[arg(long)]
        dry_run: bool,
    },
}

/// Where and how to reach the server, and how much to print.
#[derive(Debug, Clone, Default)]
pub struct Server {
    /// `--url` (`http://127.0.0.1:8080`); `None`: from the settings' `[http] listen`.
    pub url: Option<String>,
    /// `--token`; `None`: the settings' first `[http] auth_tokens` entry, if any.
    pub token: Option<String>,
    /// `--quiet`: print a count instead of one line per metric.
    pub quiet: bool,
}

/// Why a `metrics` command failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsCliError {
    /// The settings could not be read (for the default URL or token).
    #[error("{0}")]
    Settings(#[from] crate::config::ConfigError),
    /// The server refused, with its message.
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
    #[error("cannot reach the server at {url}: {message} (is `carbonhound serve` running there? --url sets the address)")]
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

/// The base URL and token: `--url` / `--token`, else from the settings.
fn target(
    config: Option<&Path>,
    server: &Server,
) -> Result<(String, Option<String>), MetricsCliError> {
    if let (Some(u), Some(t)) = (&server.url, &server.token) {
        return Ok((u.trim_end_matches('/').to_string(), Some(t.clone())));
    }
    let settings = Settings::load(config)?;
    let url = match &server.url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => settings.http.local_url(),
    };
    let token = server
        .token
        .clone()
        .or_else(|| settings.http.auth_tokens.first().cloned());
    Ok((url, token))
}

/// POSTs `form` to `path`; the JSON answer.
fn post(
    base: &str,
    token: Option<&str>,
    path: &str,
    form: &[(&str, &str)],
) -> Result<serde_json::Value, MetricsCliError> {
    let url = format!("{base}{path}");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(300))
        .build();
    let mut req = agent.post(&url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let text = |r: ureq::Response| r.into_string().unwrap_or_default();
    match req.send_form(form) {
        Ok(r) => serde_json::from_str(&text(r)).map_err(|e| MetricsCliError::Answer {
            url,
            message: e.to_string(),
        }),
        Err(ureq::Error::Status(status, r)) => {
            let body = text(r);
            // The lifecycle routes answer {"error": …}; others (auth) plain text.
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().to_string());
            Err(MetricsCliError::Refused {
                url,
                status,
                message,
            })
        }
        Err(e) => Err(MetricsCliError::Unreachable {
            url,
            message: e.to_string(),
        }),
    }
}

/// The names under `key` of an answer.
fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// One line per name (`verb name`), or with `quiet` one count line (`verb N metrics`).
fn report(verb: &str, list: &[String], quiet: bool) -> String {
    if quiet || list.is_empty() {
        let s = if list.len() == 1 { "" } else { "s" };
        return format!("{verb} {} metric{s}", list.len());
    }
    list.iter()
        .map(|n| format!("{verb} {n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one `metrics` command against the server; returns what to print.
pub fn run(
    command: &MetricsCommand,
    config: Option<&Path>,
    server: &Server,
) -> Result<String, MetricsCliError> {
    let (base, token) = target(config, server)?;
    let token = token.as_deref();
    match command {
        MetricsCommand::Delete { pattern, dry_run } => {
            let dry = if *dry_run { "true" } else { "false" };
            let v = post(
                &base,
                token,
                "/metrics/delete",
                &[("query", pattern), ("dryRun", dry)],
            )?;
            Ok(if *dry_run {
                report("would delete", &names(&v, "matched"), server.quiet)
            } else {
                report("deleted", &names(&v, "deleted"), server.quiet)
            })
        }
        MetricsCommand::Rename { old, new } => {
            let v = post(
                &base,
                token,
                "/metrics/rename",
                &[("from", old), ("to", new)],
            )?;
            let moved: Vec<String> = v["renamed"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| {
                            format!(
                                "{} -> {}",
                                r["from"].as_str().unwrap_or(""),
                                r["to"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(report("renamed", &moved, server.quiet))
        }
        MetricsCommand::Stale {
            older_than,
            delete,
            dry_run,
        } => {
            let delete = *delete && !*dry_run;
            let v = post(
                &base,
                token,
                "/metrics/stale",
                &[
                    ("olderThan", older_than),
                    ("delete", if delete { "true" } else { "false" }),
                ],
            )?;
            Ok(if delete {
                report("deleted", &names(&v, "deleted"), server.quiet)
            } else {
                report("stale", &names(&v, "stale"), server.quiet)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_lines_or_a_count() {
        let l = vec!["a.b".to_string(), "a.c".to_string()];
        assert_eq!(report("deleted", &l, false), "deleted a.b\ndeleted a.c");
        assert_eq!(report("deleted", &l, true), "deleted 2 metrics");
        assert_eq!(report("stale", &[], false), "stale 0 metrics");
        assert_eq!(report("deleted", &l[..1], true), "deleted 1 metric");
    }

    #[test]
    fn an_unreachable_server_is_named() {
        let server = Server {
            url: Some("http://127.0.0.1:9".into()),
            token: Some("t".into()),
            quiet: false,
        };
        let e = run(
            &MetricsCommand::Delete {
                pattern: "a".into(),
                dry_run: false,
            },
            None,
            &server,
        )
        .unwrap_err();
        assert!(matches!(e, MetricsCliError::Unreachable { .. }));
        assert!(e
            .to_string()
            .contains("cannot reach the server at http://127.0.0.1:9/metrics/delete"));
    }
}
