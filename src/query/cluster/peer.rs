//! One `[cluster].servers` entry: the node side of graphite-web's cluster protocol asked over
//! HTTP, always with `local=1` (so the server answers from its own data and never asks
//! further) and `format=msgpack`, as graphite-web 1.1.8's `RemoteFinder` and `RemoteReader`
//! ask a `CLUSTER_SERVERS` entry:
//!
//! - `GET /metrics/find/?local=1&format=msgpack&query=…` → `[{path, is_leaf, intervals}]`;
//! - `GET /render/?local=1&format=msgpack&target=…&from=…&until=…&now=…` →
//!   `[{name, start, end, step, values, …}]`;
//! - `GET /tags/findSeries?local=1&expr=…` → `["name;tag=value", …]` (JSON);
//! - `GET /metrics/index.json?local=1` → `["a.b", …]` (JSON).
//!
//! Owns the server's health as graphite-web's `RemoteFinder` keeps it (`last_failure`,
//! `disabled` for `REMOTE_RETRY_DELAY` after a failure, reset by the next success) and the
//! errors of a call ([`PeerError`]). Every call is bounded by `remote_timeout` (connecting
//! and reading the whole answer) and by a largest answer size. Reads only.

use std::io::Read;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;

use crate::config::ClusterServer;
use crate::store::{FetchedSeries, FoundNode, Interval};
use crate::whisper::AggregationMethod;

/// Why a server's answer is missing from a merged one. Messages are short (they go into
/// the `X-Carbonhound-Partial` header after the server's name) and say what to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PeerError {
    /// Nothing listens there (the server is down, or the entry's port is wrong).
    #[error("connection refused")]
    Refused,
    /// No complete answer within `[cluster].remote_timeout`.
    #[error("no complete answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// Connecting failed otherwise (name resolution, TLS, reset).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server answered with an error status (the start of its body quoted).
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer is larger than the largest one read (`[query].max_memory`).
    #[error("answer larger than {0} bytes")]
    TooLarge(u64),
    /// The answer is not what the protocol says (not msgpack or JSON of that shape).
    #[error("unreadable answer: {0}")]
    Garbage(String),
    /// Failed earlier, and not asked again until `[cluster].retry_delay` has passed
    /// (graphite-web's disabled finder).
    #[error("not asked for {}s after it failed: {last}", .retry_in.as_secs().max(1))]
    Resting {
        /// What failed last.
        last: String,
        /// How long until it is asked again.
        retry_in: Duration,
    },
}

/// How much of an error answer's body a [`PeerError::Status`] quotes, in bytes.
const BODY_QUOTED: usize = 120;

/// A server of the cluster and what is known of its health.
pub struct Peer {
    server: ClusterServer,
    health: Mutex<Health>,
}

/// graphite-web's `RemoteFinder.last_failure`, with counters for `/health`.
#[derive(Default, Clone)]
struct Health {
    /// When the last call failed, while no call has succeeded since.
    failed_at: Option<Instant>,
    /// Why the last failing call failed.
    last_error: Option<String>,
    /// Calls made (not those skipped while resting).
    calls: u64,
    /// Calls that failed.
    failures: u64,
    /// Whether a call ever succeeded.
    answered: bool,
}

/// How a request to a server is made: the HTTP agent (its timeout is `remote_timeout`) and
/// the largest answer read.
pub struct Client {
    /// The agent, `remote_timeout` bounding each whole call.
    pub agent: ureq::Agent,
    /// `[cluster].remote_timeout`, for messages.
    pub timeout: Duration,
    /// Largest answer read, in bytes.
    pub max_bytes: u64,
}

/// One node of a msgpack find, in graphite-web 1.x's keys or 0.9's (`metric_path`,
/// `isLeaf`), as `RemoteFinder.find_nodes` reads both; a leaf's `intervals` are
/// `[start, end]` pairs (float epoch seconds), kept for `format=json` finds.
#[derive(Deserialize)]
struct WireNode {
    path: Option<String>,
    metric_path: Option<String>,
    is_leaf: Option<bool>,
    #[serde(rename = "isLeaf")]
    is_leaf_09: Option<bool>,
    #[serde(default)]
    intervals: Option<Vec<(f64, f64)>>,
}

/// One series of a msgpack render (`TimeSeries.getInfo()`); numbers as floats, so an int a
/// Python packer wrote reads too.
#[derive(Deserialize)]
struct WireSeries {
    name: String,
    start: f64,
    end: f64,
    step: f64,
    values: Vec<Option<f64>>,
}

impl Peer {
    /// A server not asked yet.
    pub fn new(server: ClusterServer) -> Peer {
        Peer {
            server,
            health: Mutex::new(Health::default()),
        }
    }

    /// The entry as written in `[cluster].servers` (`10.0.0.2:8080`).
    pub fn name(&self) -> &str {
        self.server.name()
    }

    /// `Ok` when the server may be asked now; [`PeerError::Resting`] while `retry_delay`
    /// has not passed since it failed (graphite-web's `RemoteFinder.disabled`).
    pub fn ready(&self, retry_delay: Duration) -> Result<(), PeerError> {
        let h = self.health.lock();
        match h.failed_at {
            Some(at) if at.elapsed() < retry_delay => Err(PeerError::Resting {
                last: h.last_error.clone().unwrap_or_default(),
                retry_in: retry_delay - at.elapsed(),
            }),
            _ => Ok(()),
        }
    }

    /// The nodes matching `pattern` on this server (`leavesOnly=1` asks for leaves only;
    /// a graphite-web server ignores it, and the branches it sends are dropped), each leaf
    /// with the intervals the server gave it (those with `start > end` dropped).
    pub fn find(
        &self,
        client: &Client,
        pattern: &str,
        leaves_only: bool,
    ) -> Result<Vec<(FoundNode, Vec<Interval>)>, PeerError> {
        let mut query = vec![
            ("local", "1".to_string()),
            ("format", "msgpack".to_string()),
            ("query", pattern.to_string()),
        ];
        if leaves_only {
            query.push(("leavesOnly", "1".to_string()));
        }
        let body = self.get(client, "/metrics/find/", &query)?;
        let nodes: Vec<WireNode> = self.decode(rmp_serde::from_slice(&body))?;
        let mut out = Vec::with_capacity(nodes.len());
        for n in nodes {
            let Some(path) = n.path.or(n.metric_path) else {
                return self.garbage("a find node without a path".into());
            };
            let is_leaf = n.is_leaf.or(n.is_leaf_09).unwrap_or(false);
            if is_leaf || !leaves_only {
                let intervals = n
                    .intervals
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(start, end)| start <= end)
                    .map(|(start, end)| Interval { start, end })
                    .collect();
                out.push((FoundNode { path, is_leaf }, intervals));
            }
        }
        Ok(out)
    }

    /// The raw series `target` (a path expression or a `seriesByTag(…)` call) gives on this
    /// server over `[from, until)` relative to `now` (epoch seconds), as
    /// `RemoteReader.fetch_multi` asks for them.
    pub fn render(
        &self,
        client: &Client,
        target: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<FetchedSeries>, PeerError> {
        let query = [
            ("local", "1".to_string()),
            ("format", "msgpack".to_string()),
            ("target", target.to_string()),
            ("from", from.to_string()),
            ("until", until.to_string()),
            ("now", now.to_string()),
        ];
        let body = self.get(client, "/render/", &query)?;
        let series: Vec<WireSeries> = self.decode(rmp_serde::from_slice(&body))?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let (start, end, step) = (s.start as i64, s.end as i64, s.step as i64);
            if step <= 0 || end < start {
                return self.garbage(format!(
                    "series {} has start {start}, end {end}, step {step}",
                    s.name
                ));
            }
            out.push(FetchedSeries {
                name: s.name,
                start,
                end,
                step,
                values: s.values,
                // Not sent by the protocol, and not read by evaluation: whisper's defaults.
                aggregation_method: AggregationMethod::Average,
                x_files_factor: 0.5,
            });
        }
        Ok(out)
    }

    /// The tagged series matching every expression on this server (graphite-web's
    /// `/tags/findSeries`, a JSON list of names).
    pub fn find_series(&self, client: &Client, exprs: &[String]) -> Result<Vec<String>, PeerError> {
        let mut query = vec![("local", "1".to_string())];
        query.extend(exprs.iter().map(|e| ("expr", e.clone())));
        let body = self.get(client, "/tags/findSeries", &query)?;
        self.decode(serde_json::from_slice(&body))
    }

    /// Every metric name on this server (graphite-web's `/metrics/index.json`).
    pub fn index(&self, client: &Client) -> Result<Vec<String>, PeerError> {
        let body = self.get(client, "/metrics/index.json", &[("local", "1".to_string())])?;
        self.decode(serde_json::from_slice(&body))
    }

    /// What `/health` shows of this server: `{server, url, state ("up", "down" while
    /// resting after a failure, "unknown" before the first call), calls, failures,
    /// last_error, retry_in_seconds}`.
    pub fn health(&self, retry_delay: Duration) -> serde_json::Value {
        let h = self.health.lock().clone();
        let resting = h
            .failed_at
            .map(|at| retry_delay.saturating_sub(at.elapsed()));
        let state = match (h.failed_at, h.answered) {
            (Some(_), _) => "down",
            (None, true) => "up",
            (None, false) => "unknown",
        };
        serde_json::json!({
            "server": self.server.name(),
            "url": self.server.base_url(),
            "state": state,
            "calls": h.calls,
            "failures": h.failures,
            "last_error": h.last_error,
            "retry_in_seconds": resting.map(|d| d.as_secs_f64()),
        })
    }

    /// One GET of `path` with `query`, its body read whole (at most `client.max_bytes`);
    /// the outcome is recorded in the server's health.
    fn get(
        &self,
        client: &Client,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<u8>, PeerError> {
        let result = self.get_unrecorded(client, path, query);
        self.record(result.as_ref().err());
        result
    }

    fn get_unrecorded(
        &self,
        client: &Client,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<u8>, PeerError> {
        let mut request = client
            .agent
            .get(&format!("{}{path}", self.server.base_url()));
        for (k, v) in query {
            request = request.query(k, v);
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let mut body = Vec::new();
                let _ = r
                    .into_reader()
                    .take(BODY_QUOTED as u64)
                    .read_to_end(&mut body);
                return Err(PeerError::Status {
                    status,
                    body: quote(&body),
                });
            }
            Err(ureq::Error::Transport(t)) => return Err(transport_error(&t, client.timeout)),
        };
        let mut body = Vec::new();
        response
            .into_reader()
            .take(client.max_bytes + 1)
            .read_to_end(&mut body)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    PeerError::Timeout(client.timeout)
                }
                _ => PeerError::Connect(e.to_string()),
            })?;
        if body.len() as u64 > client.max_bytes {
            return Err(PeerError::TooLarge(client.max_bytes));
        }
        Ok(body)
    }

    /// A decoded answer, or [`PeerError::Garbage`] (recorded as a failure).
    fn decode<T, E: std::fmt::Display>(&self, decoded: Result<T, E>) -> Result<T, PeerError> {
        decoded.or_else(|e| self.garbage(e.to_string()))
    }

    fn garbage<T>(&self, reason: String) -> Result<T, PeerError> {
        let e = PeerError::Garbage(reason);
        self.record(Some(&e));
        Err(e)
    }

    /// Notes a call's outcome: a failure rests the server (logged when it was answering),
    /// a success makes it ready again (logged when it was resting), as graphite-web's
    /// `RemoteFinder.fail` and the `last_failure = 0` of a good answer.
    fn record(&self, error: Option<&PeerError>) {
        let mut h = self.health.lock();
        match error {
            Some(e) => {
                // A garbage answer was counted as a call when its bytes arrived.
                if !matches!(e, PeerError::Garbage(_)) {
                    h.calls += 1;
                }
                h.failures += 1;
                if h.failed_at.is_none() {
                    tracing::warn!("cluster server {} failed: {e}", self.name());
                }
                h.failed_at = Some(Instant::now());
                h.last_error = Some(e.to_string());
            }
            None => {
                h.calls += 1;
                h.answered = true;
                if h.failed_at.take().is_some() {
                    tracing::info!("cluster server {} answers again", self.name());
                }
            }
        }
    }
}

/// A transport error in [`PeerError`]'s words.
fn transport_error(t: &ureq::Transport, timeout: Duration) -> PeerError {
    let io = {
        let mut source = std::error::Error::source(t);
        let mut found = None;
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                found = Some(io);
                break;
            }
            source = e.source();
        }
        found
    };
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => PeerError::Refused,
        Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
            PeerError::Timeout(timeout)
        }
        _ => PeerError::Connect(
            t.message()
                .map(str::to_string)
                .or_else(|| io.map(|e| e.to_string()))
                .unwrap_or_else(|| t.kind().to_string()),
        ),
    }
}

/// The start of an error body as one line of printable text.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    if line.is_empty() {
        "(empty body)".into()
    } else {
        line
    }
}
