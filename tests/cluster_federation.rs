//! Federation against real servers: `carbonhound serve` binaries on 127.0.0.1, each holding a
//! share of one data set (points sent straight to each one's plaintext port), one of them
//! with `[cluster] servers` naming the others, and one single server holding everything.
//!
//! - A differential corpus, generated as combinations (path expressions across shards ×
//!   functions × time ranges, `seriesByTag` calls × functions, find/expand/index requests),
//!   must give byte-identical JSON from the federating node and from the single node.
//!   Replicas with complementary gaps merge into the whole series.
//! - With a server stopped, metrics replicated elsewhere stay complete; a metric only it held
//!   is missing, the answer says so (`X-Carbonhound-Partial`) at once, and `/health` counts it.
//! - A server that never answers, one that answers garbage and one that refuses connections
//!   leave answers partial within `remote_timeout`, and are not asked again meanwhile.
//! - An alert rule over a glob spanning every shard fires from the federating node.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::graphite_web::{ClusterFront, GraphiteWeb};
use common::{enc, now, wait_for, Server};
use serde_json::Value as Json;

/// The header a partial answer carries.
const PARTIAL: &str = "x-carbonhound-partial";

/// Which slots of a series a server holds.
#[derive(Clone, Copy, PartialEq)]
enum Slots {
    All,
    Even,
    Odd,
}

/// One metric of the data set and where it lives (server indexes 0, 1, 2).
struct Metric {
    name: String,
    on: Vec<(usize, Slots)>,
}

/// Slots per series: one a minute for four hours before `end`.
const SLOTS: i64 = 240;

fn value(m: usize, slot: i64) -> f64 {
    ((m as i64 * 31 + slot * 17) % 101) as f64 * 0.5 + m as f64
}

/// The data set: 36 sharded metrics (plain and tagged; `mixed.a` a leaf on one server and a
/// branch on another), 6 replicated with complementary gaps (even slots on one server, odd
/// on another), 6 replicated whole.
fn data_set() -> Vec<Metric> {
    let mut sharded = Vec::new();
    for dc in ["east", "west"] {
        for h in 1..=4 {
            for kind in ["user", "system"] {
                sharded.push(format!("servers.{dc}.web{h}.cpu.{kind}"));
            }
        }
        for h in 1..=2 {
            for kind in ["read", "write"] {
                sharded.push(format!("servers.{dc}.db{h}.disk.{kind}"));
            }
        }
    }
    for app in ["frontend", "backend", "worker"] {
        for kind in ["ok", "error"] {
            sharded.push(format!("apps.{app}.requests.{kind}"));
        }
    }
    for h in 1..=6 {
        let dc = if h % 2 == 0 { "west" } else { "east" };
        sharded.push(format!("cpu.usage;dc={dc};host=h{h}"));
    }
    let mut out: Vec<Metric> = sharded
        .into_iter()
        .enumerate()
        .map(|(i, name)| Metric {
            name,
            on: vec![(i % 3, Slots::All)],
        })
        .collect();
    out.push(Metric {
        name: "mixed.a".into(),
        on: vec![(1, Slots::All)],
    });
    out.push(Metric {
        name: "mixed.a.b".into(),
        on: vec![(2, Slots::All)],
    });
    let pairs = [(0, 1), (1, 2), (2, 0)];
    for r in 0..6 {
        let (x, y) = pairs[r % 3];
        out.push(Metric {
            name: format!("rep.r{}.val", r + 1),
            on: vec![(x, Slots::Even), (y, Slots::Odd)],
        });
        out.push(Metric {
            name: format!("dup.d{}.val", r + 1),
            on: vec![(x, Slots::All), (y, Slots::All)],
        });
    }
    out
}

/// Plaintext lines for server `node` (`None`: the single server, everything), the slots
/// ending at `end`, and a last `sentinel.done` line.
fn lines_for(data: &[Metric], node: Option<usize>, end: i64) -> String {
    let mut text = String::new();
    for (m, metric) in data.iter().enumerate() {
        let slots = match node {
            None => Some(Slots::All),
            Some(n) => metric.on.iter().find(|(i, _)| *i == n).map(|(_, s)| *s),
        };
        let Some(slots) = slots else { continue };
        for slot in 0..SLOTS {
            let keep = match slots {
                Slots::All => true,
                Slots::Even => slot % 2 == 0,
                Slots::Odd => slot % 2 == 1,
            };
            if keep {
                let t = end - slot * 60;
                text.push_str(&format!("{} {} {t}\n", metric.name, value(m, slot)));
            }
        }
    }
    text.push_str(&format!("sentinel.done 1 {end}\n"));
    text
}

/// Sends `text` to `server` and waits until its last line (the sentinel) is readable.
fn load(server: &Server, text: &str, end: i64) {
    server.send_tcp(text);
    let q = format!(
        "/render?target=sentinel.done&local=1&format=json&from={}&until={}&now={}",
        end - 60,
        end + 60,
        end + 60
    );
    wait_for(60, "the data set to be ingested", || {
        let (status, _, body) = server.get(&q);
        (status == 200 && String::from_utf8_lossy(&body).contains("[1.0,")).then_some(())
    });
}

/// A GET with its headers: (status, the partial header if any, body).
fn get(addr: SocketAddr, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let url = format!("http://{addr}{path}");
    let r = match ureq::get(&url).timeout(Duration::from_secs(60)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = r.status();
    let partial = r.header(PARTIAL).map(str::to_string);
    let mut body = Vec::new();
    r.into_reader().read_to_end(&mut body).unwrap();
    (status, partial, body)
}

/// `servers` as `[cluster] servers` in the environment: `127.0.0.1:port,…`.
fn servers_env(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The path expressions of the corpus: globs across shards, braces, ranges, an exact name,
/// replicas, a leaf-and-branch path, and nothing.
const PATTERNS: &[&str] = &[
    "servers.*.*.cpu.user",
    "servers.east.*.cpu.*",
    "servers.*.web{1,3}.cpu.system",
    "servers.west.db*.disk.*",
    "servers.*.web[2-4].cpu.user",
    "servers.east.web1.cpu.user",
    "apps.*.requests.*",
    "apps.{frontend,worker}.requests.ok",
    "rep.*.val",
    "dup.*.val",
    "mixed.*",
    "nosuch.*.x",
];

/// Functions over a path expression (`{}` stands for it).
const FUNCTIONS: &[&str] = &[
    "{}",
    "sumSeries({})",
    "averageSeries({})",
    "maxSeries({})",
    "groupByNode({},1,'sum')",
    "aliasByNode({},1,-1)",
    "asPercent({})",
    "timeShift({},'1h')",
    "movingAverage({},5)",
    "highestAverage({},2)",
    "nonNegativeDerivative({})",
    "countSeries({})",
];

const TAG_CALLS: &[&str] = &[
    "seriesByTag('name=cpu.usage')",
    "seriesByTag('name=cpu.usage','dc=east')",
    "seriesByTag('host=~h[1-3]')",
];

const TAG_FUNCTIONS: &[&str] = &[
    "{}",
    "sumSeries({})",
    "groupByTags({},'sum','dc')",
    "aliasByTags({},'host')",
    "averageSeries({})",
];

/// Every request of the differential corpus (path and query), and how many are renders.
fn corpus(end: i64) -> (Vec<String>, usize) {
    let ranges = [
        format!("from={}&until={end}&now={end}", end - 3600),
        format!(
            "from={}&until={}&now={end}&maxDataPoints=20",
            end - 7200,
            end - 1800
        ),
    ];
    let mut targets = Vec::new();
    for p in PATTERNS {
        for f in FUNCTIONS {
            targets.push(f.replace("{}", p));
        }
    }
    for t in TAG_CALLS {
        for f in TAG_FUNCTIONS {
            targets.push(f.replace("{}", t));
        }
    }
    let mut out = Vec::new();
    for range in &ranges {
        for t in &targets {
            out.push(format!("/render?format=json&target={}&{range}", enc(t)));
        }
    }
    let renders = out.len();
    let mut finds: Vec<&str> = PATTERNS.to_vec();
    finds.extend([
        "*",
        "servers.*",
        "servers.*.*",
        "apps.*",
        "mixed.a.*",
        "cpu.*",
    ]);
    for q in finds {
        let q = enc(q);
        for extra in ["", "&format=completer", "&format=json", "&wildcards=1"] {
            out.push(format!("/metrics/find?query={q}{extra}"));
        }
        for extra in ["", "&leavesOnly=1", "&groupByExpr=1"] {
            out.push(format!("/metrics/expand?query={q}{extra}"));
        }
    }
    out.push("/metrics/expand?query=servers.east.*&query=apps.*&groupByExpr=1".into());
    out.push("/metrics/index.json".into());
    (out, renders)
}

/// The data set on three servers (`shards`, each holding its share) and on one `single`
/// server holding everything, loaded and ingested.
struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    single: Server,
    shards: [Server; 3],
}

impl Cluster {
    /// Starts and loads the servers; with `federate`, the first shard's `[cluster] servers`
    /// names the other two.
    fn start(data: &[Metric], end: i64, federate: bool) -> Cluster {
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let single = Server::start_in(dirs[3].path(), &[]);
        let b = Server::start_in(dirs[1].path(), &[]);
        let c = Server::start_in(dirs[2].path(), &[]);
        let servers = servers_env(&[b.http, c.http]);
        let env: &[(&str, &str)] = if federate {
            &[("CARBONHOUND_CLUSTER__SERVERS", servers.as_str())]
        } else {
            &[]
        };
        let a = Server::start_in(dirs[0].path(), env);
        load(&single, &lines_for(data, None, end), end);
        let shards = [a, b, c];
        for (i, server) in shards.iter().enumerate() {
            load(server, &lines_for(data, Some(i), end), end);
        }
        Cluster {
            _dirs: dirs,
            single,
            shards,
        }
    }
}

/// Three servers each holding a share, a fourth (`a`, index 0) federating the other two, and
/// one single server holding everything, answering the whole corpus byte for byte alike;
/// then one server stopped.
#[test]
fn a_federating_node_answers_as_one_node_holding_everything() {
    let data = data_set();
    let end = now() / 60 * 60 - 60;
    let Cluster {
        single,
        shards: [a, mut b, _c],
        _dirs,
    } = Cluster::start(&data, end, true);

    let (requests, renders) = corpus(end);
    assert!(renders >= 200, "{renders} render targets");
    let mut differ = Vec::new();
    let mut with_series = 0;
    for path in &requests {
        let (sa, partial, mut body_a) = get(a.http, path);
        let (ss, _, mut body_s) = get(single.http, path);
        assert_eq!(partial, None, "{path}: every server is up");
        if path.starts_with("/metrics/find") && path.contains("format=json") && sa == 200 {
            body_a = without_intervals(path, &body_a);
            body_s = without_intervals(path, &body_s);
        }
        if sa != ss || body_a != body_s {
            differ.push(format!(
                "{path}\n  federated {sa}: {}\n  single    {ss}: {}",
                String::from_utf8_lossy(&body_a),
                String::from_utf8_lossy(&body_s)
            ));
        }
        if sa == 200 && body_a.starts_with(b"[{") {
            with_series += 1;
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} requests differ:\n{}",
        differ.len(),
        requests.len(),
        differ[..differ.len().min(5)].join("\n")
    );
    // The corpus is not vacuous: most renders have series, and gaps really were filled.
    assert!(
        with_series > renders / 2,
        "{with_series} of {renders} renders"
    );
    let q = format!(
        "/render?format=json&target=rep.r2.val&from={}&until={end}&now={end}",
        end - 3600
    );
    let full: serde_json::Value = serde_json::from_slice(&get(a.http, &q).2).unwrap();
    let own: serde_json::Value =
        serde_json::from_slice(&get(b.http, &format!("{q}&local=1")).2).unwrap();
    let nulls = |v: &serde_json::Value| {
        v[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0].is_null())
            .count()
    };
    let whole: serde_json::Value = serde_json::from_slice(&get(single.http, &q).2).unwrap();
    // 10-second slots, a point a minute: the whole series has 300 gaps of its own.
    assert_eq!(nulls(&full), nulls(&whole), "both halves merged");
    assert!(
        nulls(&own) >= nulls(&whole) + 29,
        "one server holds half of rep.r2.val's points"
    );
    let (_, _, health) = get(a.http, "/health");
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["cluster"]["partial_answers"], 0, "{health}");
    assert_eq!(health["cluster"]["servers"][0]["state"], "up", "{health}");
    let (_, _, alone) = get(single.http, "/health");
    let alone: serde_json::Value = serde_json::from_slice(&alone).unwrap();
    assert!(alone["cluster"].is_null(), "no [cluster]: {alone}");

    // One server stopped: what is replicated elsewhere stays complete; the answer says which
    // server is missing, at once (nothing listens: refused).
    b.terminate();
    for f in FUNCTIONS {
        let path = format!(
            "/render?format=json&target={}&from={}&until={end}&now={end}",
            enc(&f.replace("{}", "dup.*.val")),
            end - 3600
        );
        let (sa, partial, body_a) = get(a.http, &path);
        let (_, _, body_s) = get(single.http, &path);
        assert_eq!(sa, 200);
        assert_eq!(
            String::from_utf8_lossy(&body_a),
            String::from_utf8_lossy(&body_s),
            "{path}"
        );
        let partial = partial.unwrap_or_else(|| panic!("{path}: no partial header"));
        assert!(partial.contains(&b.http.to_string()), "{partial}");
    }
    // `servers.east.web1.cpu.system` (index 1 of the data set) lived on the stopped server only.
    let only_b = &data[1].name;
    assert!(
        data[1].on.len() == 1 && data[1].on[0].0 == 1,
        "{only_b} is on b only"
    );
    let t0 = Instant::now();
    let (status, partial, body) = get(
        a.http,
        &format!(
            "/render?format=json&target={only_b}&from={}&until={end}&now={end}",
            end - 3600
        ),
    );
    let elapsed = t0.elapsed();
    assert_eq!((status, body.as_slice()), (200, &b"[]"[..]));
    let partial = partial.expect("a partial answer is flagged");
    assert!(partial.contains(&b.http.to_string()), "{partial}");
    assert!(
        elapsed < Duration::from_secs(5),
        "within remote_timeout: {elapsed:?}"
    );
    let (_, partial, _) = get(a.http, "/metrics/find?query=servers.*");
    assert!(partial.is_some(), "finds fan out and say so too");
    let (_, _, health) = get(a.http, "/health");
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    let cluster = &health["cluster"];
    assert!(
        cluster["partial_answers"].as_u64().unwrap() >= FUNCTIONS.len() as u64 + 2,
        "{cluster}"
    );
    assert_eq!(cluster["servers"][0]["server"], b.http.to_string());
    assert_eq!(cluster["servers"][0]["state"], "down", "{cluster}");
    assert_eq!(cluster["servers"][1]["state"], "up", "{cluster}");
    // A server asking (local=1) gets this server's own data only, and no header.
    let (status, partial, body) = get(
        a.http,
        &format!(
            "/render?format=json&local=1&target=dup.*.val&from={}&until={end}&now={end}",
            end - 3600
        ),
    );
    assert_eq!((status, partial), (200, None));
    let own: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        own.as_array().unwrap().len(),
        4,
        "dup.d1, d3, d4, d6 are on a: {own}"
    );
}

/// Whether two JSON answers are the same: numbers within 1e-9 relative, everything else
/// equal (objects key by key, arrays in order). The first difference, with its path.
fn json_difference(front: &Json, single: &Json, at: &str) -> Option<String> {
    match (front, single) {
        (Json::Array(a), Json::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{at}: {} vs {} items", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| json_difference(x, y, &format!("{at}[{i}]")))
        }
        (Json::Object(a), Json::Object(b)) => {
            if !a.keys().eq(b.keys()) {
                return Some(format!("{at}: keys {:?} vs {:?}", a.keys(), b.keys()));
            }
            a.iter()
                .find_map(|(k, x)| json_difference(x, &b[k], &format!("{at}.{k}")))
        }
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let close = x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
            (!close).then(|| format!("{at}: {x} vs {y}"))
        }
        _ => (front != single).then(|| format!("{at}: {front} vs {single}")),
    }
}

/// A find answer's list of nodes (treejson and json: the answer; completer: its
/// `metrics`), sorted by their JSON text. A front finds nodes on every server and lists
/// same-named ones (`mixed.a`, a leaf on one server and a branch on another) in whatever
/// order its finders answered (`Store._list_nodes` runs them in a pool), so that order is
/// not graphite-web's to define; the order of names is checked before sorting. The json
/// format's `intervals` are removed: a front passes on those each server sent with its
/// nodes (`time.time() - maxRetention` to the file's mtime), which one node asked without
/// `from`/`until` does not list.
fn sorted_nodes(v: &mut Json) -> Option<Vec<String>> {
    let list = match v.get_mut("metrics") {
        Some(list) => list.as_array_mut()?,
        None => v.as_array_mut()?,
    };
    let names = list
        .iter()
        .map(|n| {
            let name = n
                .get("text")
                .or_else(|| n.get("name"))
                .or_else(|| n.get("path"));
            name.map_or_else(String::new, Json::to_string)
        })
        .collect();
    for node in list.iter_mut() {
        if let Some(n) = node.as_object_mut() {
            n.remove("intervals");
        }
    }
    list.sort_by_key(|n| n.to_string());
    Some(names)
}

/// graphite-web 1.1.8 with `CLUSTER_SERVERS` naming the three shards (none federating, no
/// data of its own) answers the whole corpus as the single server: renders and finds
/// compared as parsed JSON (see `json_difference`, `sorted_nodes`). No request is excluded:
/// graphite-web answers every one of them as the single server does.
#[test]
fn graphite_web_in_front_of_the_three_shards_answers_as_one_node() {
    let data = data_set();
    let end = now() / 60 * 60 - 60;
    let Cluster {
        single,
        shards,
        _dirs,
    } = Cluster::start(&data, end, false);
    let gw = GraphiteWeb::start_front(&ClusterFront {
        servers: shards.iter().map(|s| s.http.to_string()).collect(),
        use_post: false,
    });
    let front: SocketAddr = ([127, 0, 0, 1], gw.port).into();

    let (requests, renders) = corpus(end);
    let t0 = Instant::now();
    let mut differ = Vec::new();
    let (mut compared_renders, mut with_series) = (0, 0);
    for (i, path) in requests.iter().enumerate() {
        let (sf, _, body_f) = get(front, path);
        let (ss, _, body_s) = get(single.http, path);
        let text = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .chars()
                .take(300)
                .collect::<String>()
        };
        let parsed = (
            serde_json::from_slice::<Json>(&body_f),
            serde_json::from_slice::<Json>(&body_s),
        );
        let difference = match parsed {
            _ if sf != ss => Some(format!("status {sf} vs {ss}")),
            (Ok(mut f), Ok(mut s)) => {
                if path.starts_with("/metrics/find") {
                    let names = (sorted_nodes(&mut f), sorted_nodes(&mut s));
                    if names.0 != names.1 {
                        Some(format!("names {:?} vs {:?}", names.0, names.1))
                    } else {
                        json_difference(&f, &s, "")
                    }
                } else {
                    json_difference(&f, &s, "")
                }
            }
            (Err(e), _) => Some(format!("the front's answer is not JSON: {e}")),
            (_, Err(e)) => Some(format!("the single server's answer is not JSON: {e}")),
        };
        if let Some(d) = difference {
            differ.push(format!(
                "{path}: {d}\n  front  {sf}: {}\n  single {ss}: {}",
                text(&body_f),
                text(&body_s)
            ));
        }
        if i < renders {
            compared_renders += 1;
            if sf == 200 && body_s.starts_with(b"[{") {
                with_series += 1;
            }
        }
    }
    eprintln!(
        "{} requests compared ({compared_renders} renders) in {:?}",
        requests.len(),
        t0.elapsed()
    );
    assert!(
        differ.is_empty(),
        "{} of {} requests differ:\n{}",
        differ.len(),
        requests.len(),
        differ.join("\n")
    );
    assert!(
        compared_renders >= 200,
        "{compared_renders} renders compared"
    );
    assert!(
        with_series > compared_renders / 2,
        "{with_series} of {compared_renders} renders have series"
    );
}

/// A fake server that accepts connections and never answers (kept open until the test
/// ends).
fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// A `format=json` find's body with its leaves' `intervals` removed, after checking every
/// leaf has them (one interval, as each copy's file spans `now - maxRetention` to its mtime
/// and the copies overlap): they come from each server's clock and file times, so two
/// servers never give the same bytes.
fn without_intervals(path: &str, body: &[u8]) -> Vec<u8> {
    let mut nodes: Json = serde_json::from_slice(body).expect("a JSON find");
    for n in nodes.as_array_mut().expect("a list of nodes") {
        let n = n.as_object_mut().expect("a node");
        let intervals = n.remove("intervals");
        if n["is_leaf"] == Json::Bool(true) {
            let list = intervals.as_ref().and_then(Json::as_array);
            assert!(
                list.is_some_and(|l| l.len() == 1 && l[0]["start"].as_f64() <= l[0]["end"].as_f64()),
                "{path}: intervals of {n:?}: {intervals:?}"
            );
        }
    }
    serde_json::to_vec(&nodes).unwrap()
}

/// A fake server answering every request `200 OK` with bytes that are not msgpack.
fn garbage_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = b"\xc1\xc1 this is not msgpack";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-msgpack\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    addr
}

/// A port nothing listens on.
fn refused_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    assert!(TcpStream::connect(addr).is_err());
    addr
}

/// A federating node whose servers are one real server, one that never answers, one that
/// answers garbage and one that is not there: answers hold the real server's data, say which
/// others are missing and why, come within `remote_timeout` (1 s) and, once the failing ones
/// rest (`retry_delay`), at once.
#[test]
fn slow_garbage_and_refusing_servers_leave_answers_partial_within_remote_timeout() {
    let end = now() / 60 * 60 - 60;
    let dir_c = tempfile::tempdir().unwrap();
    let dir_d = tempfile::tempdir().unwrap();
    let c = Server::start_in(dir_c.path(), &[]);
    let mut text = String::new();
    for h in 1..=3 {
        for slot in 0..30 {
            text.push_str(&format!(
                "solo.h{h}.load {} {}\n",
                h * 10 + slot,
                end - slot * 60
            ));
        }
    }
    text.push_str(&format!("sentinel.done 1 {end}\n"));
    load(&c, &text, end);
    let (silent, garbage, refused) = (silent_server(), garbage_server(), refused_port());
    let servers = servers_env(&[c.http, silent, garbage, refused]);
    let d = Server::start_in(
        dir_d.path(),
        &[
            ("CARBONHOUND_CLUSTER__SERVERS", servers.as_str()),
            ("CARBONHOUND_CLUSTER__REMOTE_TIMEOUT", "1s"),
            ("CARBONHOUND_CLUSTER__RETRY_DELAY", "60s"),
        ],
    );
    let render = format!(
        "/render?format=json&target={}&from={}&until={end}&now={end}",
        enc("sumSeries(solo.*.load)"),
        end - 1800
    );
    let t0 = Instant::now();
    let (status, partial, body) = get(d.http, &render);
    let first = t0.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (_, _, alone) = get(c.http, &render);
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&alone)
    );
    let partial = partial.expect("flagged partial");
    for (who, why) in [
        (silent, "no complete answer within 1s"),
        (garbage, "unreadable answer"),
        (refused, "connection refused"),
    ] {
        assert!(partial.contains(&format!("{who}: {why}")), "{partial}");
    }
    assert!(!partial.contains(&c.http.to_string()), "{partial}");
    assert!(
        first < Duration::from_millis(2500),
        "one remote_timeout (1 s), not one per call: {first:?}"
    );

    // Resting now: not asked, so the next answer comes at once, still flagged.
    let t0 = Instant::now();
    let (status, partial, body) = get(
        d.http,
        &format!(
            "/render?format=json&target=nosuch.metric&from={}&until={end}&now={end}",
            end - 1800
        ),
    );
    let second = t0.elapsed();
    assert_eq!((status, body.as_slice()), (200, &b"[]"[..]));
    let partial = partial.expect("a metric on no live server: partial");
    assert!(partial.contains("not asked for"), "{partial}");
    assert!(second < Duration::from_millis(800), "{second:?}");
    let (status, partial, body) = get(d.http, "/metrics/find?query=solo.*");
    assert_eq!(status, 200);
    assert!(partial.is_some());
    assert_eq!(body, get(c.http, "/metrics/find?query=solo.*").2);

    let (_, _, health) = get(d.http, "/health");
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    let cluster = &health["cluster"];
    assert_eq!(cluster["partial_answers"], 3, "{cluster}");
    let states: Vec<&str> = cluster["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["up", "down", "down", "down"], "{cluster}");
    assert_eq!(cluster["remote_timeout_seconds"], 1.0);
}

/// An alert rule over `alerts.*.temp`, whose hot series live on the two other servers only,
/// goes CRIT on the federating node.
#[test]
fn an_alert_rule_over_every_shard_fires_from_one_node() {
    let t = now() / 60 * 60;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let b = Server::start_in(dirs[1].path(), &[]);
    let c = Server::start_in(dirs[2].path(), &[]);
    let temps = |host: &str, v: f64| {
        (0..5)
            .map(|i| format!("alerts.{host}.temp {v} {}\n", t - i * 60))
            .collect::<String>()
    };
    load(
        &b,
        &(temps("b", 95.0) + &format!("sentinel.done 1 {t}\n")),
        t,
    );
    load(
        &c,
        &(temps("c", 97.0) + &format!("sentinel.done 1 {t}\n")),
        t,
    );
    let rules = dirs[0].path().join("alerts.d");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("temp.toml"),
        "[[alert]]\nname = \"Temperature\"\ntarget = \"alerts.*.temp\"\nthreshold = 90\n\
         direction = \"above\"\n",
    )
    .unwrap();
    let servers = servers_env(&[b.http, c.http]);
    let a = Server::start_in(
        dirs[0].path(),
        &[
            ("CARBONHOUND_CLUSTER__SERVERS", servers.as_str()),
            ("CARBONHOUND_ALERTING__INTERVAL", "1s"),
        ],
    );
    a.send_tcp(&temps("a", 10.0));
    let rule = wait_for(60, "the rule to go crit with every shard's series", || {
        let (_, _, body) = get(a.http, "/api/alerts");
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let rule = v["rules"].as_array()?.first()?.clone();
        (rule["state"] == "crit" && rule["series"].as_array()?.len() == 3).then_some(rule)
    });
    let mut crit: Vec<&str> = rule["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "crit")
        .map(|s| s["series"].as_str().unwrap())
        .collect();
    crit.sort();
    assert_eq!(crit, ["alerts.b.temp", "alerts.c.temp"], "{rule}");
}
