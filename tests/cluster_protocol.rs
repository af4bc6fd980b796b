//! The node side of graphite-web's cluster protocol, against the real graphite-web 1.1.8
//! (Debian's package, run by `tests/support/graphite_web.py`):
//!
//! - graphite-web as the cluster front: with `CLUSTER_SERVERS` naming a carbonhound node and
//!   no data of its own, it must answer finds (treejson, completer, json, nodelist, with and
//!   without `from`/`until`), expands, the index and renders (json; several targets, globs,
//!   functions, `maxDataPoints`) exactly as the node answers the same requests itself. Over
//!   pickle (graphite-web's default) by GET, and over msgpack by POST
//!   (`REMOTE_STORE_USE_POST`: `multipart/form-data`, many targets in one fetch); the node is
//!   listed twice, so graphite-web merges the nodes and series both copies found.
//! - graphite-web as a fellow node: carbonhound's pickle and msgpack answers of
//!   `/metrics/find` and `/render` (GET and a many-target POST, `local=1`) are decoded by
//!   graphite-web's own `RemoteFinder` code (`tests/support/cluster_decode.py`) and must equal
//!   graphite-web's answers to the same requests on the same whisper files — the same
//!   content type, key order, classes and number types; the intervals' `start`, graphite-web's
//!   `time.time() - maxRetention`, within a few seconds — and a msgpack answer must be the
//!   bytes graphite-web's packer writes for it.
//!
//! A front shuffles the paths it found (`Store._list_nodes`), so nodes of one name under
//! different paths come in any order: the completer's list, which keeps them all, is compared
//! sorted. graphite-web's bundled msgpack decoder needs an alias Python 3.10 removed, which
//! the scripts put back (see `python310_compat`). A missing graphite-web or python3-whisper
//! FAILS these tests.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::graphite_web::{ClusterFront, GraphiteWeb};
use common::{enc, http_post_form, Server};
use serde_json::Value as Json;

/// The metrics of the node: a leaf beside a branch of the same name (`servers.db1`), leaves
/// at several depths, a top-level leaf.
const METRICS: &[&str] = &[
    "servers.web1.cpu.user",
    "servers.web1.cpu.system",
    "servers.web2.cpu.user",
    "servers.web2.cpu.system",
    "servers.db1",
    "servers.db1.load",
    "apps.api.requests",
    "apps.web.requests",
    "top",
];

/// Writes METRICS under argv[1] (one minute for a day, average, xFilesFactor 0.5): 120
/// minutes from argv[2], a value per minute with a gap every 11.
const WRITE_WHISPER: &str = r#"
import os, sys, whisper
root, base = sys.argv[1], int(sys.argv[2])
for i, name in enumerate(sys.argv[3:]):
    path = os.path.join(root, *name.split('.')) + '.wsp'
    os.makedirs(os.path.dirname(path), exist_ok=True)
    whisper.create(path, [(60, 1440)], xFilesFactor=0.5, aggregationMethod='average')
    whisper.update_many(path, [(base + k * 60, (k * (i + 3)) % 23 + 0.25 * i)
                               for k in range(120) if (k + i) % 11])
"#;

/// A carbonhound node over METRICS's whisper files (no self metrics, so its tree holds
/// nothing else).
struct Node {
    _dir: tempfile::TempDir,
    server: Server,
    whisper: PathBuf,
    /// The first minute of the data (epoch seconds); the data spans two hours from it.
    base: i64,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let whisper = dir.path().join("data").join("whisper");
        let now = common::now();
        let base = now - now % 60 - 3 * 3600;
        let mut args = vec![whisper.to_str().unwrap().to_string(), base.to_string()];
        args.extend(METRICS.iter().map(|m| m.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::python(WRITE_WHISPER, &args);
        let server = Server::start_in(dir.path(), &[("CARBONHOUND_CARBON__STATS_INTERVAL", "0s")]);
        Node {
            _dir: dir,
            server,
            whisper,
            base,
        }
    }

    /// `from=…&until=…` over the data.
    fn range(&self) -> String {
        format!("from={}&until={}", self.base, self.base + 7200)
    }

    /// The node as a `CLUSTER_SERVERS` entry, with `?format=` when `format` is given.
    fn cluster_server(&self, format: Option<&str>) -> String {
        let port = self.server.http.port();
        match format {
            Some(f) => format!("127.0.0.1:{port}?format={f}"),
            None => format!("127.0.0.1:{port}"),
        }
    }

    /// The modification time of `metric`'s file, fractional epoch seconds.
    fn mtime(&self, metric: &str) -> f64 {
        let path = self
            .whisper
            .join(format!("{}.wsp", metric.replace('.', "/")));
        std::fs::metadata(path)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }
}

/// Decodes a pickle or msgpack answer with graphite-web's `RemoteFinder` (see
/// `tests/support/cluster_decode.py` for the spelling of the JSON it returns).
fn decode(content_type: &str, body: &[u8]) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/cluster_decode.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(content_type)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (apt-get install python3 graphite-web)");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "graphite-web could not decode this {content_type} answer ({}): {}\nbody: {:02x?}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        &body[..body.len().min(400)]
    );
    serde_json::from_slice(&out.stdout).expect("cluster_decode.py prints JSON")
}

/// The spelled `{"dict": [[k, v], …]}` of a decoded dict, as pairs.
fn pairs(v: &Json) -> Vec<(&str, &Json)> {
    v["dict"]
        .as_array()
        .unwrap_or_else(|| panic!("not a dict: {v}"))
        .iter()
        .map(|p| (p[0].as_str().unwrap(), &p[1]))
        .collect()
}

fn keys(v: &Json) -> Vec<&str> {
    pairs(v).into_iter().map(|(k, _)| k).collect()
}

fn get<'a>(v: &'a Json, key: &str) -> &'a Json {
    pairs(v)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Whether two decoded answers are the same: equal everywhere, except that floats of 1,000
/// or more (the intervals' epoch seconds and sizes: graphite-web takes the wall clock when
/// it answers) may differ by up to 5 s. Panics with the path of the first difference.
fn assert_equivalent(ours: &Json, theirs: &Json, at: &str) {
    match (ours, theirs) {
        (Json::Array(a), Json::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{at}: lengths differ: {ours} vs {theirs}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_equivalent(x, y, &format!("{at}[{i}]"));
            }
        }
        (Json::Object(a), Json::Object(b)) => {
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, x) in a {
                assert_equivalent(x, &b[k], &format!("{at}.{k}"));
            }
        }
        (Json::Number(x), Json::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if x.abs() >= 1000.0 {
                assert!((x - y).abs() <= 5.0, "{at}: {x} vs graphite-web's {y}");
            } else {
                assert_eq!(x, y, "{at}");
            }
        }
        _ => assert_eq!(ours, theirs, "{at}"),
    }
}

/// The find answers' `intervals` removed (a front's json find carries those the node sent),
/// and a completer's list sorted by path (a front lists same-named nodes in any order).
fn normalize_find(v: &mut Json) {
    if let Some(list) = v.as_array_mut() {
        for node in list {
            if let Some(o) = node.as_object_mut() {
                o.remove("intervals");
            }
        }
    }
    if let Some(list) = v.get_mut("metrics").and_then(Json::as_array_mut) {
        list.sort_by_key(|a| a.to_string());
    }
}

/// GETs `path_and_query` from the front and from the node and asserts the JSON answers are
/// equal once both are `normalize`d.
fn assert_same(front: &GraphiteWeb, node: &Server, path_and_query: &str, normalize: fn(&mut Json)) {
    let mut theirs = front.get_json(path_and_query);
    let mut ours = node.get_json(path_and_query);
    normalize(&mut theirs);
    normalize(&mut ours);
    assert_eq!(
        theirs, ours,
        "GET {path_and_query}: graphite-web's front (left) and the carbonhound node (right) differ"
    );
}

fn targets_query(targets: &[&str]) -> String {
    targets
        .iter()
        .map(|t| format!("target={}", enc(t)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Everything a front is asked, compared with the node's own answers.
fn front_answers_as_the_node(front: &GraphiteWeb, node: &Node) {
    let range = node.range();
    for query in [
        "*",
        "servers.*",
        "servers.*.*",
        "servers.*.cpu.*",
        "servers.db1*",
        "apps.{api,web}.requests",
        "servers.web[12].cpu.u*",
        "nothing.*",
    ] {
        let q = enc(query);
        for format in ["treejson", "completer", "json", "nodelist"] {
            let path = format!("/metrics/find?query={q}&format={format}");
            assert_same(front, &node.server, &path, normalize_find);
        }
        let path = format!("/metrics/find/?query={q}&format=json&{range}");
        assert_same(front, &node.server, &path, normalize_find);
    }
    // Not vacuous: the front found the node's leaf, with the interval the node sent.
    let found = front.get_json("/metrics/find?query=servers.db1*&format=json");
    assert_eq!(found[1]["path"], "servers.db1", "{found}");
    let interval = &found[1]["intervals"][0];
    let now = common::now() as f64;
    assert!(
        (interval["start"].as_f64().unwrap() - (now - 86400.0)).abs() < 60.0,
        "{interval}"
    );
    assert!((interval["end"].as_f64().unwrap() - node.mtime("servers.db1")).abs() < 1e-3);

    for query in [
        "query=servers.*.cpu.*&query=apps.*",
        "query=servers.*.cpu.*&query=apps.*&groupByExpr=1",
        "query=servers.*&query=*&leavesOnly=1",
    ] {
        let path = format!("/metrics/expand?{query}");
        assert_same(front, &node.server, &path, |_| {});
    }
    assert_same(front, &node.server, "/metrics/index.json", |_| {});

    let renders: &[&[&str]] = &[
        &["servers.web1.cpu.user"],
        &[
            "servers.web1.cpu.user",
            "servers.*.cpu.system",
            "apps.{api,web}.requests",
            "top",
            "servers.db1*",
        ],
        &[
            "sumSeries(servers.*.cpu.*)",
            "maxSeries(servers.web[12].cpu.user)",
            "alias(servers.db1.load, 'db load')",
        ],
        &[
            "movingAverage(servers.web1.cpu.user, 5)",
            "scale(servers.db1, 2)",
            "asPercent(servers.web1.cpu.user, sumSeries(servers.web1.cpu.*))",
        ],
        &["nothing.*"],
    ];
    for targets in renders {
        let t = targets_query(targets);
        for extra in ["", "&maxDataPoints=25", "&maxDataPoints=1"] {
            let path = format!("/render?{t}&format=json&{range}{extra}");
            assert_same(front, &node.server, &path, |_| {});
        }
    }
    let sum = front.get_json(&format!(
        "/render?target={}&format=json&{range}",
        enc("sumSeries(servers.*.cpu.*)")
    ));
    let points = sum[0]["datapoints"].as_array().unwrap();
    assert!(
        points.len() >= 119 && points.iter().filter(|p| p[0].is_number()).count() > 100,
        "the front got the node's data: {sum}"
    );
}

/// Many targets, each a different spelling of a pattern, so the front sends the node one
/// fetch with many `target`s (a POST with `REMOTE_STORE_USE_POST`).
fn many_targets() -> Vec<String> {
    let mut targets = Vec::new();
    for (i, m) in METRICS.iter().enumerate() {
        targets.push(m.to_string());
        targets.push(format!("{m}*"));
        targets.push(format!("alias({m}, 'n{i}')"));
    }
    targets
}

fn front(node: &Node, format: Option<&str>, use_post: bool) -> GraphiteWeb {
    // The node twice: two finders hold every node, and the front merges them.
    GraphiteWeb::start_front(&ClusterFront {
        servers: vec![node.cluster_server(format), node.cluster_server(format)],
        use_post,
    })
}

#[test]
fn graphite_web_front_over_pickle_answers_as_the_node() {
    let node = Node::start();
    let front = front(&node, None, false);
    front_answers_as_the_node(&front, &node);
}

#[test]
fn graphite_web_front_over_msgpack_by_post_answers_as_the_node() {
    let node = Node::start();
    let front = front(&node, Some("msgpack"), true);
    front_answers_as_the_node(&front, &node);

    let targets = many_targets();
    let t: Vec<&str> = targets.iter().map(String::as_str).collect();
    let path = format!("/render?{}&format=json&{}", targets_query(&t), node.range());
    let theirs = front.get_json(&path);
    assert_eq!(theirs.as_array().unwrap().len(), targets.len());
    let mut form: Vec<(&str, &str)> = t.iter().map(|t| ("target", *t)).collect();
    let (from, until) = (node.base.to_string(), (node.base + 7200).to_string());
    form.extend([("format", "json"), ("from", &from), ("until", &until)]);
    let (status, _, body) = http_post_form(node.server.http, "/render", &form);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(theirs, serde_json::from_slice::<Json>(&body).unwrap());
}

/// A node request in both formats, to carbonhound and to graphite-web on the same files.
fn assert_node_answers_match(node: &Node, gw: &GraphiteWeb, path: &str) {
    let (status, ours_type, ours) = node.server.get(path);
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&ours)
    );
    let (status, theirs_type, theirs) = gw.get(path);
    assert_eq!(
        status,
        200,
        "graphite-web: GET {path}: {}",
        String::from_utf8_lossy(&theirs)
    );
    assert_eq!(ours_type, theirs_type, "GET {path}: content type");
    let (ours_decoded, theirs_decoded) = (decode(&ours_type, &ours), decode(&theirs_type, &theirs));
    if path.starts_with("/metrics/find") {
        // graphite-web's own Store shuffles paths before sorting by name, so nodes of one
        // name come in any order there; ours come sorted by name, then path.
        let names: Vec<String> = ours_decoded["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                get(n, "path")
                    .as_str()
                    .unwrap()
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(names.is_sorted(), "{path}: sorted by name: {names:?}");
        let canonical = |v: &Json| {
            let mut list = v.as_array().unwrap().clone();
            list.sort_by_key(|n| (get(n, "path").to_string(), get(n, "is_leaf").to_string()));
            Json::Array(list)
        };
        assert_equivalent(
            &canonical(&ours_decoded["value"]),
            &canonical(&theirs_decoded["value"]),
            path,
        );
    } else {
        assert_equivalent(&ours_decoded["value"], &theirs_decoded["value"], path);
    }
    if ours_type == "application/x-msgpack" {
        assert_eq!(
            ours_decoded["reencoded_equal"], true,
            "{path}: bytes as graphite-web packs them"
        );
        if path.starts_with("/render") {
            assert_eq!(ours, theirs, "{path}: graphite-web's very bytes");
        }
    }
    // Our own intervals: the file's mtime, a tuple and size that agree with start and end.
    for n in ours_decoded["value"].as_array().unwrap() {
        let Some((_, intervals)) = pairs(n).into_iter().find(|(k, _)| *k == "intervals") else {
            continue;
        };
        let mtime = node.mtime(get(n, "path").as_str().unwrap());
        let list = match intervals.get("object") {
            Some(_) => get(intervals, "intervals").as_array().unwrap().clone(),
            None => intervals.as_array().unwrap().clone(),
        };
        assert_eq!(list.len(), 1, "{intervals}");
        let (start, end) = match list[0].get("object") {
            Some(_) => {
                let i = &list[0];
                assert_eq!(keys(i), ["start", "end", "tuple", "size"]);
                let (s, e) = (
                    get(i, "start").as_f64().unwrap(),
                    get(i, "end").as_f64().unwrap(),
                );
                assert_eq!(get(i, "tuple")["tuple"], serde_json::json!([s, e]));
                // Within a unit in the last place of `start`: serde_json reads floats that
                // near, not always exactly.
                let size = |v: &Json| v.as_f64().unwrap();
                assert!((size(get(i, "size")) - (e - s)).abs() < 1e-6);
                assert!((size(get(intervals, "size")) - (e - s)).abs() < 1e-6);
                (s, e)
            }
            None => (list[0][0].as_f64().unwrap(), list[0][1].as_f64().unwrap()),
        };
        assert!(
            (end - mtime).abs() < 1e-3,
            "{path}: end {end} is the file's mtime {mtime}"
        );
        assert!(start < end);
    }
}

#[test]
fn node_answers_decode_as_graphite_web_nodes_answers() {
    let node = Node::start();
    // graphite-web as a second node, on the very same files.
    let gw = GraphiteWeb::start(&node.whisper);
    let range = node.range();
    for format in ["pickle", "msgpack"] {
        for query in ["servers.db1*", "*", "servers.*.cpu.*", "nothing"] {
            let q = enc(query);
            let path = format!("/metrics/find/?local=1&format={format}&query={q}");
            assert_node_answers_match(&node, &gw, &path);
            let path = format!("{path}&{range}");
            assert_node_answers_match(&node, &gw, &path);
        }
        let t = targets_query(&["servers.web1.cpu.user", "servers.*.cpu.system", "nothing.*"]);
        let path = format!("/render/?local=1&noCache=1&format={format}&{t}&{range}");
        assert_node_answers_match(&node, &gw, &path);
    }

    // The structure, spelled out once: a branch and a leaf beside it.
    let (_, ct, body) = node
        .server
        .get("/metrics/find/?local=1&format=pickle&query=servers.db1*");
    assert_eq!(ct, "application/pickle");
    let v = decode(&ct, &body)["value"].clone();
    assert_eq!(keys(&v[0]), ["path", "is_leaf"]);
    assert_eq!(get(&v[0], "is_leaf"), &Json::Bool(false));
    assert_eq!(keys(&v[1]), ["path", "is_leaf", "intervals"]);
    let intervals = get(&v[1], "intervals");
    assert_eq!(intervals["object"], "graphite.intervals.IntervalSet");
    assert_eq!(keys(intervals), ["intervals", "size"]);
    assert_eq!(
        get(intervals, "intervals")[0]["object"],
        "graphite.intervals.Interval"
    );
    let (_, ct, body) = node.server.get(&format!(
        "/render/?local=1&format=msgpack&target=servers.web1.cpu.user&{range}"
    ));
    assert_eq!(ct, "application/x-msgpack");
    let v = decode(&ct, &body)["value"].clone();
    assert_eq!(
        keys(&v[0]),
        [
            "name",
            "start",
            "end",
            "step",
            "values",
            "pathExpression",
            "valuesPerPoint",
            "consolidationFunc",
            "xFilesFactor"
        ]
    );
    assert_eq!(get(&v[0], "step"), &Json::from(60));
    assert!(get(&v[0], "xFilesFactor").is_f64());

    // Many targets in one POST, as a front with REMOTE_STORE_USE_POST sends them.
    let targets = many_targets();
    let (from, until) = (node.base.to_string(), (node.base + 7200).to_string());
    let gw_addr = SocketAddr::from(([127, 0, 0, 1], gw.port));
    for format in ["pickle", "msgpack"] {
        let mut form: Vec<(&str, &str)> = targets.iter().map(|t| ("target", t.as_str())).collect();
        form.extend([
            ("format", format),
            ("local", "1"),
            ("noCache", "1"),
            ("from", &from),
            ("until", &until),
        ]);
        let (status, ct, ours) = http_post_form(node.server.http, "/render/", &form);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&ours));
        let (status, _, theirs) = http_post_form(gw_addr, "/render/", &form);
        assert_eq!(
            status,
            200,
            "graphite-web: {}",
            String::from_utf8_lossy(&theirs)
        );
        let ours = decode(&ct, &ours)["value"].clone();
        assert_equivalent(&ours, &decode(&ct, &theirs)["value"], "POST /render/");
        let expressions: Vec<&Json> = ours
            .as_array()
            .unwrap()
            .iter()
            .map(|s| get(s, "pathExpression"))
            .collect();
        assert_eq!(expressions.len(), targets.len(), "one series per target");
    }
}
