//! The differential test against graphite-web 1.1.8: every case of
//! `tests/fixtures/graphite/cases.txt` is rendered by carbonhound's real `/render` (the axum
//! router over HTTP, on a copy of the committed whisper fixture) as `format=json` and
//! `format=raw`, and compared with what graphite-web answered for the same request
//! (`tests/fixtures/graphite/expected.jsonl`, written by
//! `/usr/bin/python3 tests/support/graphite_reference.py --regenerate`).
//!
//! Compared: the series, in order, by `target` and `tags`; each datapoint's timestamp exactly
//! and value within a relative tolerance of 1e-9 (null only equals null; ±inf and NaN equal
//! themselves); the `format=raw` header (`name,start,end,step`) and value count of each
//! series. A request graphite-web refuses or fails on must fail here too (any non-200).
//!
//! A case may carry `"divergence": "reason"`: it is still run and its differences printed,
//! but they do not fail the test. `expectations_are_current` re-runs the reference script
//! into a temporary directory and checks the committed fixture and expectations match it
//! byte for byte; it fails when graphite-web (or Python's whisper) is missing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use carbonhound::api::{router, ApiConfig, AppState};
use carbonhound::config::{parse_schemas, StorageRules};
use carbonhound::store::Store;
use carbonhound::whisper::Preallocation;
use serde_json::Value as Json;

/// The reference time of the fixture (must match `NOW` in graphite_reference.py).
const NOW: i64 = 1_700_000_000;
/// The default `from` of a case (must match `DEFAULT_FROM` in graphite_reference.py).
const DEFAULT_FROM: &str = "-20min";
/// Relative tolerance of value comparison.
const TOLERANCE: f64 = 1e-9;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graphite")
}

/// One line of cases.txt.
struct Case {
    line: String,
    spec: Json,
}

fn read_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("cases.txt"))
        .expect("tests/fixtures/graphite/cases.txt");
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let spec = if line.starts_with('{') {
            let v: Json = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("cases.txt:{}: bad JSON case: {e}", n + 1));
            assert!(
                v.get("target").is_some(),
                "cases.txt:{}: a JSON case needs \"target\"",
                n + 1
            );
            v
        } else {
            serde_json::json!({ "target": line })
        };
        out.push(Case {
            line: line.to_string(),
            spec,
        });
    }
    out
}

fn read_expected() -> HashMap<String, Json> {
    let text = std::fs::read_to_string(fixtures().join("expected.jsonl"))
        .expect("tests/fixtures/graphite/expected.jsonl (run /usr/bin/python3 tests/support/graphite_reference.py --regenerate)");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Json = serde_json::from_str(l).expect("expected.jsonl line");
            (v["case"].as_str().expect("case key").to_string(), v)
        })
        .collect()
}

fn param_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The query string of a case, as graphite_reference.py builds it.
fn query(spec: &Json, format: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    match &spec["target"] {
        Json::Array(ts) => {
            for t in ts {
                q.append_pair("target", &param_str(t));
            }
        }
        t => {
            q.append_pair("target", &param_str(t));
        }
    }
    q.append_pair(
        "from",
        &spec
            .get("from")
            .map(param_str)
            .unwrap_or_else(|| DEFAULT_FROM.to_string()),
    );
    if let Some(u) = spec.get("until") {
        q.append_pair("until", &param_str(u));
    }
    q.append_pair("now", &NOW.to_string());
    q.append_pair("format", format);
    for key in ["maxDataPoints", "xFilesFactor", "tz"] {
        if let Some(v) = spec.get(key) {
            q.append_pair(key, &param_str(v));
        }
    }
    if spec
        .get("noNullPoints")
        .is_some_and(|v| v.as_bool().unwrap_or(true))
    {
        q.append_pair("noNullPoints", "1");
    }
    q.finish()
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

/// A carbonhound API server over a copy of the fixture, on a loopback port.
struct Server {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("whisper"), dir.path());
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

/// `(status, body)` of a GET.
fn get(server: &Server, query: &str) -> (u16, String) {
    let url = format!("http://{}/render?{query}", server.addr);
    match ureq::get(&url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// A datapoint value: `None` for null.
#[derive(Debug, Clone, Copy)]
enum Point {
    Null,
    Num(f64),
}

fn point_of(v: &Json) -> Point {
    match v {
        Json::Null => Point::Null,
        Json::Number(n) => Point::Num(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) if s == "inf" => Point::Num(f64::INFINITY),
        Json::String(s) if s == "-inf" => Point::Num(f64::NEG_INFINITY),
        Json::String(s) if s == "nan" => Point::Num(f64::NAN),
        other => panic!("unexpected datapoint value {other}"),
    }
}

fn same(a: Point, b: Point) -> bool {
    match (a, b) {
        (Point::Null, Point::Null) => true,
        (Point::Num(x), Point::Num(y)) => {
            if x.is_nan() || y.is_nan() {
                return x.is_nan() && y.is_nan();
            }
            x == y || (x - y).abs() <= TOLERANCE * x.abs().max(y.abs())
        }
        _ => false,
    }
}

fn show(p: Point) -> String {
    match p {
        Point::Null => "null".into(),
        Point::Num(v) => format!("{v:?}"),
    }
}

/// Our JSON body made parseable by serde_json: graphite-web's `1e9999` for infinity becomes
/// the string form the expectations use.
fn parse_ours(body: &str) -> Result<Json, String> {
    let body = body
        .replace("[1e9999,", "[\"inf\",")
        .replace("[-1e9999,", "[\"-inf\",");
    serde_json::from_str(&body).map_err(|e| {
        format!(
            "our JSON does not parse ({e}): {}",
            &body[..body.len().min(300)]
        )
    })
}

/// graphite-web's tags are always strings (its `Tags` stores `str(value)`), as ours are.
fn tags_equal(expected: &Json, ours: &Json) -> bool {
    expected.is_object() && expected == ours
}

/// Differences between graphite-web's series and ours (empty when they agree).
fn diff_json(expected: &[Json], ours: &[Json]) -> Vec<String> {
    let mut out = Vec::new();
    let names = |l: &[Json]| {
        l.iter()
            .map(|s| s["target"].as_str().unwrap_or("?").to_string())
            .collect::<Vec<_>>()
    };
    if expected.len() != ours.len() {
        out.push(format!(
            "{} series expected, {} returned\n      expected: {:?}\n      ours:     {:?}",
            expected.len(),
            ours.len(),
            names(expected),
            names(ours)
        ));
        return out;
    }
    for (i, (e, o)) in expected.iter().zip(ours).enumerate() {
        let target = e["target"].as_str().unwrap_or("");
        if o["target"].as_str() != Some(target) {
            out.push(format!(
                "series {i}: target {:?} expected, ours {:?}",
                target, o["target"]
            ));
            continue;
        }
        if !tags_equal(&e["tags"], &o["tags"]) {
            out.push(format!(
                "{target}: tags {} expected, ours {}",
                e["tags"], o["tags"]
            ));
        }
        let values: Vec<Point> = e["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(point_of)
            .collect();
        let timestamps: Vec<i64> = match e.get("timestamps") {
            Some(ts) => ts
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap())
                .collect(),
            None => {
                let (t0, dt) = (e["t0"].as_i64().unwrap_or(0), e["dt"].as_i64().unwrap_or(0));
                (0..values.len() as i64).map(|k| t0 + k * dt).collect()
            }
        };
        let ours_points: Vec<(Point, i64)> = o["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (point_of(&p[0]), p[1].as_i64().unwrap_or(i64::MIN)))
            .collect();
        if ours_points.len() != values.len() {
            out.push(format!(
                "{target}: {} datapoints expected (from {:?}), ours {} (from {:?})",
                values.len(),
                timestamps.first(),
                ours_points.len(),
                ours_points.first().map(|p| p.1)
            ));
        }
        let mut shown = 0;
        for (k, ((ev, et), (ov, ot))) in
            values.iter().zip(&timestamps).zip(&ours_points).enumerate()
        {
            if *et != *ot || !same(*ev, *ov) {
                if shown < 5 {
                    out.push(format!(
                        "{target}: point {k}: expected [{}, {et}], ours [{}, {ot}]",
                        show(*ev),
                        show(*ov)
                    ));
                }
                shown += 1;
            }
        }
        if shown > 5 {
            out.push(format!("{target}: … {} differing points in all", shown));
        }
    }
    out
}

/// `name,start,end,step|count` of each line of a `format=raw` body.
fn raw_headers(body: &str) -> Vec<String> {
    body.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (head, values) = l.rsplit_once('|').unwrap_or((l, ""));
            let n = if values.is_empty() {
                0
            } else {
                values.split(',').count()
            };
            format!("{head}|{n}")
        })
        .collect()
}

/// Runs one case; the differences found (empty when it agrees with graphite-web).
fn check(server: &Server, case: &Case, expected: &Json) -> Vec<String> {
    let (status, body) = get(server, &query(&case.spec, "json"));
    if let Some(err) = expected.get("error") {
        return if status == 200 {
            vec![format!(
                "graphite-web fails ({}), ours answered 200: {}",
                err.as_str().unwrap_or(""),
                &body[..body.len().min(300)]
            )]
        } else {
            Vec::new()
        };
    }
    if status != 200 {
        return vec![format!("HTTP {status}: {}", body.trim())];
    }
    let ours = match parse_ours(&body) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut out = diff_json(
        expected["json"].as_array().unwrap(),
        ours.as_array().map(Vec::as_slice).unwrap_or(&[]),
    );
    let (status, raw) = get(server, &query(&case.spec, "raw"));
    if status != 200 {
        out.push(format!("format=raw: HTTP {status}: {}", raw.trim()));
        return out;
    }
    let want: Vec<String> = expected["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let got = raw_headers(&raw);
    if want != got {
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            if w != g {
                out.push(format!("format=raw line {i}: expected {w:?}, ours {g:?}"));
            }
        }
        if want.len() != got.len() {
            out.push(format!(
                "format=raw: {} series expected, ours {}",
                want.len(),
                got.len()
            ));
        }
    }
    out
}

#[test]
fn render_matches_graphite_web() {
    let cases = read_cases();
    let expected = read_expected();
    let server = start_server();
    let mut failures = Vec::new();
    let mut divergences = 0;
    for case in &cases {
        let Some(exp) = expected.get(&case.line) else {
            failures.push(format!(
                "{}\n    no expectation: run /usr/bin/python3 tests/support/graphite_reference.py --regenerate",
                case.line
            ));
            continue;
        };
        let diffs = check(&server, case, exp);
        if diffs.is_empty() {
            continue;
        }
        let text = format!("{}\n    {}", case.line, diffs.join("\n    "));
        match case.spec.get("divergence").and_then(Json::as_str) {
            Some(reason) => {
                divergences += 1;
                eprintln!("known divergence ({reason}):\n  {text}");
            }
            None => failures.push(text),
        }
    }
    eprintln!(
        "{} cases, {} failing, {} known divergences",
        cases.len(),
        failures.len(),
        divergences
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from graphite-web 1.1.8:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn expectations_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/graphite_reference.py");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(&script)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("/usr/bin/python3 must exist (graphite-web 1.1.8 and whisper are the reference)");
    assert!(
        out.status.success(),
        "the reference script failed (is graphite-web 1.1.8 installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = fixtures();
    let fresh = std::fs::read_to_string(dir.path().join("expected.jsonl")).unwrap();
    let old = std::fs::read_to_string(committed.join("expected.jsonl")).unwrap_or_default();
    if fresh != old {
        let first = fresh.lines().zip(old.lines()).position(|(a, b)| a != b);
        panic!(
            "tests/fixtures/graphite/expected.jsonl is stale (first differing line: {:?}; {} vs {} lines): run /usr/bin/python3 tests/support/graphite_reference.py --regenerate",
            first.map(|i| i + 1),
            fresh.lines().count(),
            old.lines().count()
        );
    }
    let new_files = files_under(&dir.path().join("whisper"));
    assert_eq!(
        new_files,
        files_under(&committed.join("whisper")),
        "the whisper fixture's file list is stale: regenerate"
    );
    for f in new_files {
        let a = std::fs::read(dir.path().join("whisper").join(&f)).unwrap();
        let b = std::fs::read(committed.join("whisper").join(&f)).unwrap();
        assert!(
            a == b,
            "whisper fixture file {} differs from what the script writes: regenerate",
            f.display()
        );
    }
}
