//! The event store end to end, against the real `carbonhound serve`: events posted over HTTP
//! (tags as a string and as a list, with and without `when`), read back through
//! `/events/get_data`, `/events/<id>` and `/render` (`events()`), after a restart too; bad
//! bodies refused; `drawAsInfinite(events(...))` drawn in a PNG.
//!
//! The reference is graphite-web 1.1.8 itself: tests/support/graphite_events.py posts the same
//! bodies to graphite-web's own views (Django test client, sqlite) and answers the same reads;
//! `get_data` and detail answers must match byte for byte, render JSON value for value. The
//! test fails when graphite-web (Debian's python3-graphite-web) is missing.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{enc, now, Server};
use serde_json::{json, Value};

/// The reference time: 2023-11-14 22:13:20 UTC.
const T: i64 = 1_700_000_000;
/// Both sides read `from`/`until` in this zone (graphite-web's TIME_ZONE, our query.timezone).
const ZONE: &str = "Europe/Berlin";

fn post(server: &Server, path: &str, body: &str) -> (u16, String) {
    let url = format!("http://{}{path}", server.http);
    let r = ureq::post(&url)
        .set("Content-Type", "application/json")
        .send_string(body);
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    let status = r.status();
    (status, r.into_string().expect("body"))
}

/// GET with an `Accept` header; (status, content type, body).
fn get_accept(server: &Server, path: &str, accept: &str) -> (u16, String, String) {
    let url = format!("http://{}{path}", server.http);
    let r = match ureq::get(&url).set("Accept", accept).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = r.status();
    let ct = r.content_type().to_string();
    (status, ct, r.into_string().expect("body"))
}

fn get_text(server: &Server, path: &str) -> (u16, String, String) {
    let (status, ct, body) = server.get(path);
    (status, ct, String::from_utf8(body).expect("utf-8 body"))
}

/// Runs graphite-web's events views on `spec` (see the script's docs).
fn graphite_reference(spec: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/graphite_events.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 is required to run graphite-web");
    serde_json::to_writer(child.stdin.take().unwrap(), spec).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "graphite-web reference failed (is python3-graphite-web installed? \
         apt-get install graphite-web): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}

/// The query string of a `{"key": "value"}` object.
fn query(params: &Value) -> String {
    params
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v.as_str().unwrap())))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every number as an f64 (graphite-web writes counts as `1`, carbonhound as `1.0`).
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_floats).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The posted bodies: tags as a string, a list, with commas and quotes, none, null; `when`
/// fractional, integral, negative, shared by two events; numbers as `what`/`data`; two
/// bodies graphite-web refuses with its tags message.
fn posts() -> Vec<String> {
    let t = T as f64;
    [
        json!({"what": "deploy web 1", "tags": "deploy web", "when": t + 0.5, "data": "v1"}),
        json!({"what": "deploy db", "tags": ["deploy", "db"], "when": T + 10}),
        json!({"what": "comma", "tags": "a,b c", "when": T + 5}),
        json!({"what": "untagged", "when": T + 3}),
        json!({"what": 5, "data": 1.5, "tags": "n", "when": T + 4}),
        json!({"what": "bad tags", "tags": 5}),
        json!({"what": "same second", "tags": "deploy", "when": T}),
        json!({"what": "tie 1", "tags": "tie", "when": T + 7}),
        json!({"what": "tie 2", "tags": ["tie", "deploy"], "when": T + 7}),
        json!({"what": "quoted", "tags": "\"x y\" z", "when": T + 8}),
        json!({"what": "unicode é☃😀", "tags": ["é"], "when": t + 6.0004,
               "data": "line\nnext \"q\" \\ \u{7f}"}),
        json!({"what": "an hour before", "tags": "deploy", "when": T - 3600}),
        json!({"what": "negative", "when": -5.25}),
        json!({"what": "empty list", "tags": [], "when": T + 9}),
        json!({"what": "null tags", "tags": null, "when": T + 9}),
        json!({"what": "bad list", "tags": {"a": 1}}),
        json!({"what": "dup", "tags": "deploy deploy web", "when": T + 2}),
        json!({"what": "later", "tags": "deploy", "when": T + 20}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

fn get_data_queries() -> Vec<Value> {
    let (from, until) = ((T - 10).to_string(), (T + 30).to_string());
    let mut q = vec![
        json!({}),
        json!({"from": "-100y"}),
        json!({"from": from, "until": until}),
        json!({"from": (T + 7).to_string(), "until": (T + 7).to_string()}),
        json!({"from": (T + 8).to_string(), "until": (T + 7).to_string()}),
        json!({"from": "22:13_20231114", "until": "22:14_20231114"}),
        json!({"from": "20231114", "until": "23:00_20231114"}),
        json!({"set": "union"}),
    ];
    for (tags, set) in [
        ("deploy", None),
        ("deploy zzz", None),
        ("deploy zzz", Some("intersection")),
        ("deploy web", Some("intersection")),
        ("deploy deploy", Some("intersection")),
        ("web db", Some("union")),
        ("zzz", Some("union")),
        ("a", None),
        ("a", Some("intersection")),
        ("b c", None),
        ("x y", Some("union")),
        ("z", None),
        ("", None),
        ("tie", None),
        ("é", None),
        ("n", None),
        ("deploy", Some("other")),
    ] {
        let mut p = json!({"from": from, "until": until, "tags": tags});
        if let Some(s) = set {
            p["set"] = json!(s);
        }
        q.push(p);
    }
    q.push(json!({"tags": "deploy", "jsonp": "cb"}));
    q
}

fn render_cases() -> Vec<Value> {
    let (from, until) = ((T - 2).to_string(), (T + 12).to_string());
    let mut cases: Vec<Value> = [
        "events(\"deploy\")",
        "events(\"*\")",
        "events('deploy', 'web')",
        "events(\"zzz\", \"web\")",
        "events(\"deploy web\")",
        "events(\"tie\")",
        "events(\"a\")",
        "events(\"*\", \"n\")",
        "drawAsInfinite(events(\"deploy\"))",
    ]
    .iter()
    .map(|t| json!({"target": t, "from": from, "until": until}))
    .collect();
    cases.push(
        json!({"target": "events(\"deploy\")", "from": from, "until": until,
                      "maxDataPoints": 4}),
    );
    cases.push(
        json!({"target": "events(\"*\")", "from": from, "until": until,
                      "maxDataPoints": 3, "xFilesFactor": 0.5}),
    );
    cases.push(
        json!({"target": "events(\"deploy\")", "from": (T - 3601).to_string(),
                      "until": (T + 21).to_string()}),
    );
    cases
}

/// Compares every read of `spec` against graphite-web's answers.
fn check_reads(server: &Server, spec: &Value, reference: &Value) {
    for (params, want) in spec["get_data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reference["get_data"].as_array().unwrap())
    {
        let path = format!("/events/get_data?{}", query(params));
        let (status, ct, body) = get_text(server, &path);
        assert_eq!(status, want["status"], "{path}: {body}");
        assert_eq!(ct, want["content_type"].as_str().unwrap(), "{path}");
        assert_eq!(body, want["body"].as_str().unwrap(), "{path}");
    }
    for (d, want) in spec["details"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reference["details"].as_array().unwrap())
    {
        let pretty = if d["pretty"] == true { "?pretty=1" } else { "" };
        let path = format!("/events/{}{pretty}", d["id"]);
        let (status, _, body) = get_accept(server, &path, "application/json");
        assert_eq!(status, want["status"], "{path}: {body}");
        assert_eq!(body, want["body"].as_str().unwrap(), "{path}");
    }
    for (case, want) in spec["render"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reference["render"].as_array().unwrap())
    {
        let mut params = case.clone();
        params["format"] = json!("json");
        for k in ["maxDataPoints", "xFilesFactor"] {
            if let Some(v) = params.get(k).cloned() {
                params[k] = json!(v.to_string());
            }
        }
        let path = format!("/render?{}", query(&params));
        let (status, _, body) = get_text(server, &path);
        assert_eq!(status, want["status"], "{path}: {body}");
        let ours: Value = serde_json::from_str(&body).unwrap();
        let theirs: Value = serde_json::from_str(want["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            numbers_as_floats(&ours),
            numbers_as_floats(&theirs),
            "{}",
            case["target"]
        );
    }
}

#[test]
fn events_match_graphite_web_and_survive_a_restart() {
    let posts = posts();
    let accepted = 16; // the bodies graphite-web stores (all but the two with bad tags)
    let details: Vec<Value> = (1..=accepted + 1)
        .map(|id| json!({"id": id, "pretty": id == 2}))
        .chain([json!({"id": accepted + 1, "pretty": true})])
        .collect();
    let spec = json!({
        "time_zone": ZONE,
        "posts": posts,
        "get_data": get_data_queries(),
        "details": details,
        "render": render_cases(),
        "functions": ["events"],
    });
    let reference = graphite_reference(&spec);
    let stored = reference["posts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == 200)
        .count();
    assert_eq!(stored, accepted as usize, "{}", reference["posts"]);

    let dir = tempfile::tempdir().unwrap();
    let env = [("CARBONHOUND_QUERY__TIMEZONE", ZONE)];
    let mut server = Server::start_in(dir.path(), &env);
    for (body, want) in posts.iter().zip(reference["posts"].as_array().unwrap()) {
        let (status, answer) = post(&server, "/events/", body);
        assert_eq!(status, want["status"], "{body}: {answer}");
        if status == 200 {
            assert_eq!(answer, "", "{body}");
        } else {
            assert_eq!(answer, want["body"].as_str().unwrap(), "{body}");
        }
    }
    check_reads(&server, &spec, &reference);
    // The function editor's entry.
    let ours = server.get_json("/functions/events");
    let theirs: Value =
        serde_json::from_str(reference["functions"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(ours, theirs);

    // Everything is still there after a restart, and ids go on from the last one.
    assert!(server.terminate().success());
    drop(server);
    let server = Server::start_in(dir.path(), &env);
    check_reads(&server, &spec, &reference);
    let (status, _) = post(
        &server,
        "/events",
        &json!({"what": "after restart", "tags": "restart", "when": T + 100}).to_string(),
    );
    assert_eq!(status, 200);
    let got = server.get_json("/events/get_data?tags=restart");
    assert_eq!(got[0]["id"], json!(accepted + 1), "{got}");
    assert_eq!(got[0]["when"], json!(T + 100));
}

#[test]
fn when_defaults_to_now_and_relative_times_read_the_server_clock() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let before = now();
    let (status, body) = post(
        &server,
        "/events/",
        r#"{"what": "deploy now", "tags": "deploy now"}"#,
    );
    assert_eq!((status, body.as_str()), (200, ""));
    let after = now();
    let (status, _) = post(
        &server,
        "/events/",
        &json!({"what": "half an hour ago", "tags": ["deploy"], "when": before - 1800}).to_string(),
    );
    assert_eq!(status, 200);

    let got = server.get_json("/events/get_data?from=-10min&tags=deploy");
    assert_eq!(got.as_array().unwrap().len(), 1, "{got}");
    let when = got[0]["when"].as_i64().unwrap();
    assert!(
        (before..=after).contains(&when),
        "{when} not in {before}..={after}"
    );
    assert_eq!(got[0]["tags"], json!(["deploy", "now"]));
    let got = server.get_json("/events/get_data?from=-1h&until=now&tags=deploy");
    assert_eq!(got.as_array().unwrap().len(), 2, "{got}");
    assert_eq!(got[0]["what"], "half an hour ago", "oldest first");
    let got = server.get_json("/events/get_data?until=-20min");
    assert_eq!(got.as_array().unwrap().len(), 1, "{got}");

    // The detail page: JSON for Accept: application/json, HTML otherwise, 404 for unknown ids.
    let (status, ct, body) = get_accept(&server, "/events/1", "application/json");
    assert_eq!((status, ct.as_str()), (200, "application/json"), "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["what"], "deploy now");
    assert_eq!(detail["tags"], json!(["deploy", "now"]));
    let (status, ct, body) = get_accept(&server, "/events/2/", "text/html");
    assert_eq!((status, ct.as_str()), (200, "text/html"));
    assert!(body.contains("half an hour ago"), "{body}");
    for path in ["/events/3", "/events/999999999999", "/events/x1"] {
        let (status, _, body) = get_accept(&server, path, "application/json");
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, r#"{"error": "Event matching query does not exist"}"#);
    }

    // The events page lists them, and answers JSON when asked.
    let (status, ct, body) = get_text(&server, "/events/");
    assert_eq!((status, ct.as_str()), (200, "text/html"));
    assert!(
        body.contains("<a href=\"/events/1\">deploy now</a>"),
        "{body}"
    );
    let (status, _, body) = get_accept(&server, "/events?tags=now", "application/json");
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn bad_bodies_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let big_data = format!(r#"{{"what": "x", "data": "{}"}}"#, "d".repeat(70_000));
    let long_what = format!(r#"{{"what": "{}"}}"#, "w".repeat(256));
    let long_tags = json!({"what": "x", "tags": vec!["t"; 129]}).to_string();
    for (body, status, needle) in [
        (
            r#"{"what": "x", "tags": 5}"#,
            400,
            "\"tags\" must be an array",
        ),
        (
            r#"{"what": "x", "tags": [1, 2]}"#,
            400,
            "\"tags\" must be an array",
        ),
        ("[1, 2]", 400, "must be a JSON object, not an array"),
        ("\"deploy\"", 400, "must be a JSON object, not a string"),
        ("what=deploy", 400, "must be a JSON object"),
        ("", 400, "must be a JSON object"),
        (r#"{"tags": "deploy"}"#, 400, "\"what\" is required"),
        (r#"{"what": ["x"]}"#, 400, "\"what\" must be a string"),
        (
            r#"{"what": "x", "when": "yesterday"}"#,
            400,
            "\"when\" must be a number",
        ),
        (
            r#"{"what": "x", "when": 1e300}"#,
            400,
            "\"when\" must be a number",
        ),
        (
            r#"{"what": "x", "data": null}"#,
            400,
            "\"data\" must be a string",
        ),
        (long_what.as_str(), 400, "longer than 255 characters"),
        (long_tags.as_str(), 400, "\"tags\" is longer than 255"),
        (big_data.as_str(), 413, "longer than 65536 bytes"),
    ] {
        let (got, answer) = post(&server, "/events/", body);
        assert_eq!(got, status, "{body:.80}: {answer}");
        let err: Value = serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{answer}"));
        assert!(
            err["error"].as_str().unwrap().contains(needle),
            "{body:.80}: {answer}"
        );
    }
    // Larger than the request body limit (query.max_body_bytes, 1 MiB): refused once the
    // limit is passed (the rest of the body need not be read).
    let mut conn = std::net::TcpStream::connect(server.http).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let size = 2 << 20;
    let mut writer = conn.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let head = format!(
            "POST /events/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&vec![b' '; size]);
    });
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let _ = sending.join();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Bad reads.
    let (status, _, body) = get_text(&server, "/events/get_data?from=notatime");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid from"), "{body}");
    assert_eq!(server.get_json("/events/get_data"), json!([]));
}

/// Decodes an RGB(A) PNG: (width, height, pixels as RGB).
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    let mut reader = png::Decoder::new(bytes).read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG image data");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width as usize, info.height as usize, pixels)
}

/// Columns red over at least half the height. Lines are anti-aliased (as Cairo draws them
/// for graphite-web): a 1.2 px line covers two columns partly, so a pixel counts as red when
/// red clearly dominates the black background the requests ask for.
fn red_columns(png: &[u8]) -> Vec<usize> {
    let (w, h, px) = decode_png(png);
    let red = |p: [u8; 3]| p[0] >= 100 && p[1] < 50 && p[2] < 50;
    (0..w)
        .filter(|x| (0..h).filter(|y| red(px[y * w + x])).count() >= h / 2)
        .collect()
}

#[test]
fn events_are_drawn_as_vertical_lines_and_counted_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    for (what, tags, when) in [
        ("a", "deploy", T + 100),
        ("b", "deploy web", T + 100),
        ("c", "other", T + 200),
        ("d", "deploy", T + 300),
    ] {
        let body = json!({"what": what, "tags": tags, "when": when}).to_string();
        assert_eq!(post(&server, "/events/", &body).0, 200);
    }
    let range = format!("from={}&until={}", T, T + 300);

    // JSON: a value at the right seconds, nulls elsewhere; the event exactly at `until` has
    // no slot and is left out (graphite-web fails the request instead).
    let got = server.get_json(&format!(
        "/render?format=json&{range}&target={}",
        enc("events(\"deploy\")")
    ));
    assert_eq!(got[0]["target"], "events(\"deploy\")");
    let points = got[0]["datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 300);
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p[1], json!(T + i as i64));
        let want = if i == 100 { json!(2.0) } else { Value::Null };
        assert_eq!(numbers_as_floats(&p[0]), want, "second {i}");
    }
    let all = server.get_json(&format!(
        "/render?format=json&{range}&target={}",
        enc("events(\"*\")")
    ));
    let counted: Vec<(i64, f64)> = all[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p[0].is_null())
        .map(|p| (p[1].as_i64().unwrap(), p[0].as_f64().unwrap()))
        .collect();
    assert_eq!(counted, vec![(T + 100, 2.0), (T + 200, 1.0)]);

    // Over the request's point budget: refused with 413, nothing allocated.
    let (status, _, body) = server.get(&format!(
        "/render?format=json&from=0&until={T}&target={}",
        enc("events(\"*\")")
    ));
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));

    // PNG: one red vertical line where the deploy events are, none for a tag without events.
    let png_of = |target: &str| {
        let (status, ct, body) = server.get(&format!(
            "/render?{range}&width=600&height=300&hideLegend=true&colorList=ff0000&bgcolor=000000&target={}",
            enc(target)
        ));
        assert_eq!((status, ct.as_str()), (200, "image/png"), "{target}");
        assert_eq!(&body[..8], b"\x89PNG\r\n\x1a\n");
        body
    };
    let lines = red_columns(&png_of("drawAsInfinite(events(\"deploy\"))"));
    assert!(
        !lines.is_empty() && lines.len() <= 3,
        "expected one vertical line, red columns: {lines:?}"
    );
    assert!(
        lines.windows(2).all(|w| w[1] == w[0] + 1),
        "one line, not several: {lines:?}"
    );
    let (w, _, _) = decode_png(&png_of("drawAsInfinite(events(\"deploy\"))"));
    let x = lines[0] as f64 / w as f64;
    assert!((0.2..0.5).contains(&x), "line at {x} of the width");
    assert!(red_columns(&png_of("drawAsInfinite(events(\"nosuch\"))")).is_empty());
}
