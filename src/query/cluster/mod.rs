//! Federation: any carbonhound server answers for the whole cluster. [`ClusterSource`] is a
//! [`MetricSource`] over this server's own data and the `[cluster].servers` it names, as a
//! graphite-web 1.1.8 front reads its `CLUSTER_SERVERS` (`finders/remote.py`,
//! `readers/remote.py`, `storage.py`, `render/datalib.py`):
//!
//! - **find** asks every server at once (`/metrics/find?local=1&format=msgpack`) while the
//!   local index answers, and merges the nodes by path ([`merge::merge_nodes`]);
//! - **fetch** of a path expression asks every server once for the whole expression
//!   (`/render?target=<expression>&local=1&format=msgpack`, [`MetricSource::fetch_batch`]),
//!   not once per series, and merges the copies of each series
//!   ([`merge::merge_series`], `_merge_results` with `REMOTE_STORE_MERGE_RESULTS = True`);
//!   functions then run once, on the merged series, above the source;
//! - **tags** (`find_tagged`) unions the servers' `/tags/findSeries?local=1`; `seriesByTag`
//!   calls are sent whole, as graphite-web sends them to a finder that supports tags.
//!
//! Every call carries `local=1`, so a server asked never asks further: there is no
//! recursion, whatever the servers list. A server that is down, slower than
//! `remote_timeout` or answers garbage leaves the answer *partial*, never failed and never
//! late: its share is missing, [`ClusterSource::partial`] says which server and why (the
//! API puts it in an `X-Carbonhound-Partial` header), [`Cluster::health`] counts it; the
//! server is then not asked again for `retry_delay` (graphite-web's `REMOTE_RETRY_DELAY`).
//!
//! Owns the servers' health ([`Cluster`]) and the merge rules; never writes anything, and
//! never evaluates a target (servers are asked for raw series only).

mod merge;
mod peer;

pub use merge::{merge_nodes, merge_series};
pub use peer::PeerError;

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::source::{BatchVisitor, MetricSource, RegexBuilderFn, SourceError, TagExpr};
use crate::config::Settings;
use crate::events::Event;
use crate::store::{FetchedSeries, FoundNode, Interval};
use peer::{Client, Peer};

/// The servers of `[cluster]` and their health, shared by every request and the alert
/// scheduler (one per process). Cheap to share (`Arc`).
pub struct Cluster {
    peers: Vec<Peer>,
    client: Client,
    retry_delay: Duration,
    /// Answers (renders, finds) that went out partial.
    partial_answers: AtomicU64,
}

impl Cluster {
    /// The cluster `[cluster]` describes, each call bounded by `remote_timeout` and by
    /// `[query].max_memory` bytes of answer; `None` when `servers` is empty (this server's
    /// data only, exactly as without federation).
    pub fn from_settings(settings: &Settings) -> Option<Arc<Cluster>> {
        let c = &settings.cluster;
        if c.servers.is_empty() {
            return None;
        }
        Some(Arc::new(Cluster::new(
            c.servers.iter().cloned().map(Peer::new).collect(),
            c.remote_timeout,
            c.retry_delay,
            settings.query.memory_budget() as u64,
        )))
    }

    fn new(peers: Vec<Peer>, timeout: Duration, retry_delay: Duration, max_bytes: u64) -> Cluster {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .user_agent(concat!("carbonhound/", env!("CARGO_PKG_VERSION")))
            .build();
        Cluster {
            peers,
            client: Client {
                agent,
                timeout,
                max_bytes,
            },
            retry_delay,
            partial_answers: AtomicU64::new(0),
        }
    }

    /// The entries of `[cluster].servers`, as written.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.peers.iter().map(Peer::name)
    }

    /// Counts one answer that went out partial (the API calls it once per answer).
    pub fn count_partial(&self) {
        self.partial_answers.fetch_add(1, Ordering::Relaxed);
    }

    /// What `/health` shows under `cluster`: `{"servers": [{server, url, state ("up",
    /// "down", "unknown"), calls, failures, last_error, retry_in_seconds}],
    /// "partial_answers": count since start, "remote_timeout_seconds",
    /// "retry_delay_seconds"}`.
    pub fn health(&self) -> serde_json::Value {
        serde_json::json!({
            "servers": self
                .peers
                .iter()
                .map(|p| p.health(self.retry_delay))
                .collect::<Vec<_>>(),
            "partial_answers": self.partial_answers.load(Ordering::Relaxed),
            "remote_timeout_seconds": self.client.timeout.as_secs_f64(),
            "retry_delay_seconds": self.retry_delay.as_secs_f64(),
        })
    }
}

/// Found nodes of one request by (pattern, leaves only, limit).
type FindMemo = HashMap<(String, bool, usize), Vec<FoundNode>>;

/// [`MetricSource`] over this server's data (`local`) and the cluster's servers (see the
/// module documentation). Made per request by the API ([`ClusterSource::for_request`]:
/// finds are remembered for the request, so the memory estimate and the fetch ask once, and
/// [`ClusterSource::partial`] tells what was missing), or once for the alert scheduler
/// ([`ClusterSource::shared`]: nothing remembered, failures only logged).
pub struct ClusterSource {
    local: Arc<dyn MetricSource>,
    cluster: Arc<Cluster>,
    /// `None` for a shared source.
    finds: Option<Mutex<FindMemo>>,
    /// The intervals each server's finds gave each leaf, by path; `None` for a shared
    /// source.
    intervals: Option<Mutex<HashMap<String, Vec<Interval>>>>,
    /// Which servers' shares are missing, and why (the first reason of each); `None` for a
    /// shared source. A server in it is not asked again by this source.
    partial: Option<Mutex<BTreeMap<String, String>>>,
}

impl ClusterSource {
    /// A source for one request (an HTTP answer): finds remembered, what is missing noted.
    pub fn for_request(local: Arc<dyn MetricSource>, cluster: Arc<Cluster>) -> ClusterSource {
        ClusterSource {
            local,
            cluster,
            finds: Some(Mutex::new(HashMap::new())),
            intervals: Some(Mutex::new(HashMap::new())),
            partial: Some(Mutex::new(BTreeMap::new())),
        }
    }

    /// A source for the life of the process (the alert scheduler): nothing remembered
    /// between calls; a failing server is logged and rests as always.
    pub fn shared(local: Arc<dyn MetricSource>, cluster: Arc<Cluster>) -> ClusterSource {
        ClusterSource {
            local,
            cluster,
            finds: None,
            intervals: None,
            partial: None,
        }
    }

    /// The cluster it asks.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The servers whose share is missing from what this source answered so far, with the
    /// reason (`("10.0.0.2:8080", "connection refused")`), in name order; empty when every
    /// server answered (or for a shared source).
    pub fn partial(&self) -> Vec<(String, String)> {
        self.partial
            .as_ref()
            .map(|p| {
                p.lock()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every metric name on this server and the others, sorted, each once (graphite-web's
    /// `Store.get_index` over its finders); `local` is this server's list.
    pub fn index(&self, local: Vec<String>) -> Vec<String> {
        let (local, answers) = self.ask(|p, c| p.index(c), || local);
        let mut all: Vec<String> = local
            .into_iter()
            .chain(answers.into_iter().flatten().flatten())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Asks every server that may be asked `call`, each on its own thread, while `local`
    /// runs on this one; returns `local`'s result and each server's answer (`None` where it
    /// was not asked or failed: noted as partial).
    fn ask<T: Send, L>(
        &self,
        call: impl Fn(&Peer, &Client) -> Result<T, PeerError> + Sync,
        local: impl FnOnce() -> L,
    ) -> (L, Vec<Option<T>>) {
        let peers = &self.cluster.peers;
        let client = &self.cluster.client;
        let call = &call;
        std::thread::scope(|scope| {
            let handles: Vec<_> = peers
                .iter()
                .map(|peer| {
                    if self.failed_here(peer) {
                        return None;
                    }
                    if let Err(e) = peer.ready(self.cluster.retry_delay) {
                        self.note(peer, &e);
                        return None;
                    }
                    let spawned = std::thread::Builder::new()
                        .name("cluster-peer".into())
                        .spawn_scoped(scope, move || call(peer, client));
                    match spawned {
                        Ok(h) => Some(h),
                        Err(e) => {
                            self.note(peer, &PeerError::Connect(format!("no thread: {e}")));
                            None
                        }
                    }
                })
                .collect();
            let mine = local();
            let answers = handles
                .into_iter()
                .zip(peers)
                .map(|(h, peer)| {
                    let result = h?.join().unwrap_or_else(|_| {
                        Err(PeerError::Garbage("the call panicked (logged)".into()))
                    });
                    result.map_err(|e| self.note(peer, &e)).ok()
                })
                .collect();
            (mine, answers)
        })
    }

    /// Whether `peer` already failed for this request (then it is not asked again by it).
    fn failed_here(&self, peer: &Peer) -> bool {
        self.partial
            .as_ref()
            .is_some_and(|p| p.lock().contains_key(peer.name()))
    }

    /// Notes that `peer`'s share is missing because of `e`.
    fn note(&self, peer: &Peer, e: &PeerError) {
        if let Some(p) = &self.partial {
            p.lock()
                .entry(peer.name().to_string())
                .or_insert_with(|| e.to_string());
        }
    }
}

impl MetricSource for ClusterSource {
    fn find(&self, pattern: &str, leaves_only: bool, limit: usize) -> Vec<FoundNode> {
        let key = (pattern.to_string(), leaves_only, limit);
        if let Some(hit) = self
            .finds
            .as_ref()
            .and_then(|m| m.lock().get(&key).cloned())
        {
            return hit;
        }
        let (mine, answers) = self.ask(
            |p, c| p.find(c, pattern, leaves_only),
            || self.local.find(pattern, leaves_only, limit),
        );
        let mut all = vec![mine];
        for answer in answers.into_iter().flatten() {
            let mut nodes = Vec::with_capacity(answer.len());
            for (node, intervals) in answer {
                if let (Some(memo), true) = (&self.intervals, node.is_leaf) {
                    memo.lock()
                        .entry(node.path.clone())
                        .or_default()
                        .extend(intervals);
                }
                nodes.push(node);
            }
            all.push(nodes);
        }
        let merged = merge_nodes(all, limit);
        if let Some(m) = &self.finds {
            m.lock().insert(key, merged.clone());
        }
        merged
    }

    fn intervals(&self, name: &str) -> Vec<Interval> {
        let mut all = self.local.intervals(name);
        if let Some(memo) = &self.intervals {
            all.extend(memo.lock().get(name).into_iter().flatten().copied());
        }
        merge::union_intervals(all)
    }

    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        let mut out = Ok(None);
        self.fetch_batch(name, &[name], from, until, now, &mut |_, r| {
            out = r;
            ControlFlow::Break(())
        });
        out
    }

    /// This server's copy of each name, read while every server is asked once for
    /// `expression`; then for each name its copies merged in order (this server's first,
    /// then the servers in `[cluster].servers` order, [`merge_series`]). A name this server
    /// cannot read (a corrupt file) is taken from the others when they have it. Series the
    /// servers send that are not among `names` (created since the find) are left out. The
    /// whole batch is read before `visit` is first called.
    fn fetch_batch(
        &self,
        expression: &str,
        names: &[&str],
        from: i64,
        until: i64,
        now: i64,
        visit: &mut BatchVisitor<'_>,
    ) {
        if names.is_empty() {
            return;
        }
        let (mine, answers) = self.ask(
            |p, c| p.render(c, expression, from, until, now),
            || {
                // Through the local source's batch read (the store reads a large batch on
                // every core), one result per name, in order.
                let mut own = Vec::with_capacity(names.len());
                self.local
                    .fetch_batch(expression, names, from, until, now, &mut |_, r| {
                        own.push(r);
                        ControlFlow::Continue(())
                    });
                own
            },
        );
        let mut theirs: HashMap<String, Vec<FetchedSeries>> = HashMap::new();
        for series in answers.into_iter().flatten().flatten() {
            theirs.entry(series.name.clone()).or_default().push(series);
        }
        for (name, own) in names.iter().zip(mine) {
            let copies = theirs.remove(*name).unwrap_or_default();
            let result = match own {
                Ok(known) => {
                    let mut known = known;
                    for c in copies {
                        match &mut known {
                            Some(k) => merge_series(k, c),
                            None => known = Some(c),
                        }
                    }
                    Ok(known)
                }
                Err(e) => {
                    let mut copies = copies.into_iter();
                    match copies.next() {
                        None => Err(e),
                        Some(mut first) => {
                            tracing::warn!(
                                "series {name}: unreadable here ({e}), read from another server"
                            );
                            for c in copies {
                                merge_series(&mut first, c);
                            }
                            Ok(Some(first))
                        }
                    }
                }
            };
            if visit(name, result).is_break() {
                return;
            }
        }
    }

    fn points_hint(&self, name: &str, from: i64, until: i64, now: i64) -> usize {
        self.local.points_hint(name, from, until, now)
    }

    fn find_tagged(
        &self,
        exprs: &[TagExpr],
        regex: RegexBuilderFn<'_>,
    ) -> Result<Vec<String>, String> {
        // A bad expression or regex is the request's error: found here, before asking.
        let mine = self.local.find_tagged(exprs, regex)?;
        let texts: Vec<String> = exprs.iter().map(TagExpr::to_string).collect();
        let (mine, answers) = self.ask(|p, c| p.find_series(c, &texts), || mine);
        let mut all: Vec<String> = mine
            .into_iter()
            .chain(answers.into_iter().flatten().flatten())
            .collect();
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    fn events(
        &self,
        from_us: i64,
        until_us: i64,
        tags: Option<Vec<String>>,
        visit: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        // Events are this server's own (graphite-web's events are not federated either).
        self.local.events(from_us, until_us, tags, visit)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    use serde::Serialize;

    use super::*;
    use crate::config::ClusterServer;
    use crate::query::{evaluate, MemorySource, QueryLimits, Request};

    #[derive(Serialize)]
    struct Node {
        path: &'static str,
        is_leaf: bool,
    }

    #[derive(Serialize)]
    struct Wire {
        name: &'static str,
        start: i64,
        end: i64,
        step: i64,
        values: Vec<Option<f64>>,
    }

    /// A server answering finds with `a.y` (and `a.x`), renders with its copies of them,
    /// counting the requests of each path.
    fn fake_peer(now: i64) -> (String, Arc<[AtomicUsize; 2]>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let seen = counts.clone();
        std::thread::spawn(move || {
            for stream in l.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                // Skip the headers.
                let mut h = String::new();
                while reader.read_line(&mut h).unwrap() > 2 {
                    h.clear();
                }
                // As whisper lays out [now - 60, now): the first slot after `from`.
                let start = now - 50;
                let body = if line.contains("/metrics/find/") {
                    seen[0].fetch_add(1, Ordering::SeqCst);
                    rmp_serde::to_vec_named(&[
                        Node {
                            path: "a.x",
                            is_leaf: true,
                        },
                        Node {
                            path: "a.y",
                            is_leaf: true,
                        },
                    ])
                    .unwrap()
                } else {
                    seen[1].fetch_add(1, Ordering::SeqCst);
                    let mut x = vec![None; 6];
                    x[1] = Some(9.0);
                    x[2] = Some(7.0);
                    rmp_serde::to_vec_named(&[
                        Wire {
                            name: "a.x",
                            start,
                            end: now,
                            step: 10,
                            values: x,
                        },
                        Wire {
                            name: "a.y",
                            start,
                            end: now,
                            step: 10,
                            values: vec![Some(2.0); 6],
                        },
                    ])
                    .unwrap()
                };
                let mut s = reader.into_inner();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-msgpack\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
            }
        });
        (addr, counts)
    }

    #[test]
    fn one_render_per_expression_and_copies_merged_local_first() {
        let now = 1_700_000_040;
        let local = MemorySource::with_points(&[("a.x", now - 50, 1.0), ("a.x", now - 20, 4.0)]);
        let (addr, counts) = fake_peer(now);
        let cluster = Arc::new(Cluster::new(
            vec![Peer::new(ClusterServer::parse(&addr).unwrap())],
            Duration::from_secs(5),
            Duration::from_secs(60),
            1 << 20,
        ));
        let source = ClusterSource::for_request(Arc::new(local), cluster.clone());
        let req = Request {
            targets: vec!["a.*".into(), "sumSeries(a.*)".into()],
            start: now - 60,
            end: now,
            now,
            tz: chrono_tz::Tz::UTC,
            x_files_factor: 0.0,
            max_data_points: None,
            template: vec![],
            timeout: Duration::from_secs(10),
        };
        let series = evaluate(&source, &QueryLimits::default(), &req).unwrap();
        let values: Vec<(&str, Vec<Option<f64>>)> = series
            .iter()
            .map(|s| (s.name.as_str(), s.values.clone()))
            .collect();
        // a.x: this server's 1.0 and 4.0, the peer's 9.0 only where this one has a gap.
        let x = vec![Some(1.0), Some(9.0), Some(7.0), Some(4.0), None, None];
        assert_eq!(values[0], ("a.x", x));
        assert_eq!(values[1], ("a.y", vec![Some(2.0); 6]));
        assert_eq!(values[2].1[0], Some(3.0));
        // Two fetches of `a.*` (the second from the request's cache), one find kept for the
        // request: each server asked once for each.
        assert_eq!(counts[0].load(Ordering::SeqCst), 1, "finds");
        assert_eq!(counts[1].load(Ordering::SeqCst), 1, "renders");
        assert!(source.partial().is_empty());
        assert_eq!(cluster.health()["servers"][0]["state"], "up");
    }
}
