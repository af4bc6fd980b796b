//! The differential test of the metric tree against graphite-web 1.1.8: every request of
//! `tests/fixtures/graphite/find_cases.txt` (`/metrics/find` in each format, `/metrics/expand`)
//! is sent to carbonhound's real router over HTTP, on a copy of the committed whisper fixture
//! plus the entries of `tests/fixtures/graphite/find_tree.txt` (empty directories, a leaf beside
//! a branch of the same name, files that are not metrics), and compared with what graphite-web
//! answered (`tests/fixtures/graphite/find_expected.jsonl`, written by
//! `/usr/bin/python3 tests/support/find_reference.py --regenerate`).
//!
//! Compared: a 200 with the same content type and the same body, byte for byte (Python's
//! `json.dumps` spacing, key order and `\uXXXX` escapes; a difference is shown as JSON first, so
//! the order and the deduplication of nodes read plainly); a request graphite-web refuses or
//! fails on must fail here too (any non-200). The `intervals` of `format=json` are checked for
//! shape and sense, then removed before the comparison (the script removes graphite-web's: they
//! come from the wall clock and the files' mtimes).
//!
//! A case line may end in `## divergence: reason`: it is still run and its differences
//! printed, but they do not fail the test. `find_expectations_are_current` re-runs the script
//! into a temporary directory and checks the committed expectations match it byte for byte.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use carbonhound::api::{router, ApiConfig, AppState};
use carbonhound::config::{parse_schemas, StorageRules};
use carbonhound::store::Store;
use carbonhound::whisper::Preallocation;
use serde_json::Value as Json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graphite")
}

/// The lines of a fixture list, without comments and blank lines.
fn read_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixtures().join(name))
        .unwrap_or_else(|e| panic!("tests/fixtures/graphite/{name}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A case line's request (before any `## divergence:`), and the divergence reason.
fn split_case(line: &str) -> (&str, Option<&str>) {
    match line.split_once("## divergence:") {
        Some((req, why)) => (req.trim(), Some(why.trim())),
        None => (line, None),
    }
}

fn read_expected() -> HashMap<String, Json> {
    let text = std::fs::read_to_string(fixtures().join("find_expected.jsonl")).expect(
        "tests/fixtures/graphite/find_expected.jsonl (run /usr/bin/python3 tests/support/find_reference.py --regenerate)",
    );
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Json = serde_json::from_str(l).expect("find_expected.jsonl line");
            (v["case"].as_str().expect("case key").to_string(), v)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixture tree plus find_tree.txt's entries: a `.wsp` file is a small whisper file
/// (`60:60`, as the script makes it with `whisper.create`), any other file is empty.
fn build_tree(root: &Path) {
    copy_dir(&fixtures().join("whisper"), root);
    for entry in read_lines("find_tree.txt") {
        let path = root.join(entry.trim_end_matches('/'));
        if entry.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            if entry.ends_with(".wsp") {
                let one = carbonhound::whisper::Retention {
                    seconds_per_point: 60,
                    points: 60,
                };
                carbonhound::whisper::create(&path, &[one], Default::default()).unwrap();
            } else {
                std::fs::write(&path, b"").unwrap();
            }
        }
    }
}

/// A carbonhound API server over the find tree, on a loopback port.
struct Server {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    let rules = StorageRules::new(
        parse_schemas("[all]\npattern = .*\nretentions = 60s:1d\n", "test").unwrap(),
        vec![],
    );
    let store = Store::open(dir.path(), rules, 100_000, Preallocation::Sparse, 0).unwrap();
    let state = AppState::new(Arc::new(store), ApiConfig::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    Server {
        addr,
        _dir: dir,
        _runtime: runtime,
    }
}

/// `(status, content type, body)` of a case's request, its query re-encoded as the script's
/// `parse_qsl` reads it.
fn get(server: &Server, request: &str) -> (u16, String, String) {
    let (path, qs) = request.split_once('?').unwrap_or((request, ""));
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(qs.as_bytes()) {
        q.append_pair(&k, &v);
    }
    let url = format!("http://{}{path}?{}", server.addr, q.finish());
    let parts = |r: ureq::Response| {
        (
            r.status(),
            r.content_type().to_string(),
            r.into_string().unwrap_or_default(),
        )
    };
    match ureq::get(&url).call() {
        Ok(r) => parts(r),
        Err(ureq::Error::Status(_, r)) => parts(r),
        Err(e) => (0, String::new(), e.to_string()),
    }
}

/// A body's JSON, and its jsonp callback if it has one.
fn parse_body(body: &str) -> Result<(Option<String>, Json), String> {
    let body = body.trim();
    let (callback, json) = match body.find('(') {
        Some(i) if body.ends_with(')') && !body.starts_with(['[', '{']) => {
            (Some(body[..i].to_string()), &body[i + 1..body.len() - 1])
        }
        _ => (None, body),
    };
    serde_json::from_str(json)
        .map(|v| (callback, v))
        .map_err(|e| format!("not JSON ({e}): {body:.300}"))
}

/// Checks the `intervals` of each leaf of a `format=json` answer (one interval, `start` the
/// file's retention before now, `end` at or after `start` and not in the future) and returns
/// the body without them, as the reference script writes graphite-web's (whose intervals come
/// from its own clock and the files' mtimes).
fn strip_intervals(body: &str, diffs: &mut Vec<String>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    if let Ok((_, Json::Array(nodes))) = parse_body(body) {
        for n in &nodes {
            let leaf = n["is_leaf"].as_bool().unwrap_or(false);
            match (leaf, n.get("intervals")) {
                (false, None) => {}
                (true, Some(Json::Array(list))) if list.len() == 1 => {
                    let (s, e) = (list[0]["start"].as_f64(), list[0]["end"].as_f64());
                    let sane = matches!((s, e), (Some(s), Some(e))
                        if s <= e && e <= now + 1.0 && s < now - 59.0 && s > now - 1e9);
                    if !sane {
                        diffs.push(format!("intervals of {}: {list:?}", n["path"]));
                    }
                }
                _ => diffs.push(format!("intervals of {n}")),
            }
        }
    }
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find(", \"intervals\": [") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        rest = rest.find(']').map_or("", |j| &rest[j + 1..]);
    }
    out.push_str(rest);
    out
}

fn check(server: &Server, request: &str, expected: &Json) -> Vec<String> {
    let (status, content_type, body) = get(server, request);
    let mut diffs = Vec::new();
    let body = if status == 200 && request.contains("format=json") {
        strip_intervals(&body, &mut diffs)
    } else {
        body
    };
    if let Some(err) = expected.get("error") {
        return if status == 200 {
            vec![format!(
                "graphite-web failed ({err}) but carbonhound answered 200: {body:.300}"
            )]
        } else {
            Vec::new()
        };
    }
    let want_status = expected["status"].as_u64().unwrap_or(0);
    if want_status != 200 {
        return if status == 200 {
            vec![format!(
                "graphite-web answered {want_status} ({}) but carbonhound 200: {body:.300}",
                expected["body"].as_str().unwrap_or("").trim()
            )]
        } else {
            Vec::new()
        };
    }
    if status != 200 {
        return vec![format!("carbonhound answered {status}: {body:.300}")];
    }
    let want_type = expected["content_type"].as_str().unwrap_or("");
    let base = |t: &str| t.split(';').next().unwrap_or("").trim().to_string();
    if base(want_type) != base(&content_type) {
        diffs.push(format!(
            "content type: graphite-web {want_type:?}, carbonhound {content_type:?}"
        ));
    }
    let want = parse_body(expected["body"].as_str().unwrap_or(""));
    let ours = parse_body(&body);
    let want_text = expected["body"].as_str().unwrap_or("");
    match (want, ours) {
        (Ok(w), Ok(o)) if w == o => {
            if want_text != body {
                diffs.push(format!(
                    "same JSON, other text:\n    graphite-web: {want_text:.400}\n    carbonhound:  {body:.400}"
                ));
            }
        }
        (Ok((wc, w)), Ok((oc, o))) => {
            if wc != oc {
                diffs.push(format!("jsonp: graphite-web {wc:?}, carbonhound {oc:?}"));
            }
            if w != o {
                diffs.push(format!("graphite-web: {w}\n    carbonhound:  {o}"));
            }
        }
        (Err(e), _) => diffs.push(format!("graphite-web's body: {e}")),
        (_, Err(e)) => diffs.push(format!("carbonhound's body: {e}")),
    }
    diffs
}

#[test]
fn find_matches_graphite_web() {
    let cases = read_lines("find_cases.txt");
    let expected = read_expected();
    let server = start_server();
    let mut failures = Vec::new();
    let mut diverging = Vec::new();
    for line in &cases {
        let (request, divergence) = split_case(line);
        let Some(want) = expected.get(line.as_str()) else {
            failures.push(format!(
                "{line}: no expectation (run /usr/bin/python3 tests/support/find_reference.py --regenerate)"
            ));
            continue;
        };
        let diffs = check(&server, request, want);
        if diffs.is_empty() {
            continue;
        }
        let report = format!("{request}\n  {}", diffs.join("\n  "));
        match divergence {
            Some(why) => diverging.push(format!("{report}\n  (divergence: {why})")),
            None => failures.push(report),
        }
    }
    if !diverging.is_empty() {
        eprintln!(
            "{} case(s) differ on purpose:\n\n{}",
            diverging.len(),
            diverging.join("\n\n")
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} find cases differ from graphite-web 1.1.8:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn find_expectations_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/find_reference.py");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(&script)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("/usr/bin/python3 must exist (graphite-web 1.1.8 and whisper are the reference)");
    assert!(
        out.status.success(),
        "the find reference script failed (is graphite-web 1.1.8 installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = std::fs::read_to_string(dir.path().join("find_expected.jsonl")).unwrap();
    let old = std::fs::read_to_string(fixtures().join("find_expected.jsonl")).unwrap_or_default();
    if fresh != old {
        let first = fresh.lines().zip(old.lines()).position(|(a, b)| a != b);
        panic!(
            "tests/fixtures/graphite/find_expected.jsonl is stale (first differing line: {:?}; {} vs {} lines): run /usr/bin/python3 tests/support/find_reference.py --regenerate",
            first.map(|i| i + 1),
            fresh.lines().count(),
            old.lines().count()
        );
    }
}
