//! Authenticated writes against the real `carbonhound serve` (README "Security"): writes open
//! on a loopback listener without credentials and refused on any other; bearer tokens and
//! basic-auth users (hashed by `carbonhound hash-password`) with 401 and `WWW-Authenticate`
//! for missing or wrong ones; `protect_reads`; cross-site browser posts refused with 403
//! while same-origin and curl-like (no `Origin`) posts pass; the event store's total bound.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use base64::Engine;
use common::Server;

const TOKEN: &str = "deploy-token-0123456789";
const EVENT: &str = r#"{"what": "deploy", "tags": "web"}"#;

/// A request's answer: status, `WWW-Authenticate` values, body.
struct Answer {
    status: u16,
    challenges: Vec<String>,
    body: String,
}

fn answer(r: Result<ureq::Response, ureq::Error>, what: &str) -> Answer {
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{what}: {e}"),
    };
    Answer {
        status: r.status(),
        challenges: r
            .all("www-authenticate")
            .into_iter()
            .map(String::from)
            .collect(),
        body: r.into_string().unwrap_or_default(),
    }
}

/// POSTs `body` as JSON to `path` with extra `headers`.
fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let url = format!("http://{addr}{path}");
    let mut req = ureq::post(&url).set("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(req.send_string(body), &url)
}

/// POSTs a form (the tag API's bodies) with extra `headers`.
fn post_form(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Answer {
    let url = format!("http://{addr}{path}");
    let mut req = ureq::post(&url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(req.send_form(form), &url)
}

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let url = format!("http://{addr}{path}");
    let mut req = ureq::get(&url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(req.call(), &url)
}

/// The server's HTTP address as a client on this machine reaches it (a `0.0.0.0` listener
/// through 127.0.0.1).
fn local(server: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.http.port()))
}

fn basic(name: &str, password: &str) -> String {
    let pair = format!("{name}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `carbonhound hash-password` of `password`, as an operator makes one.
fn hash_password(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run hash-password");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn loopback_without_auth_writes_are_open_but_cross_site_posts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let addr = server.http;
    assert_eq!(post(addr, "/events/", &[], EVENT).status, 200, "curl-like");
    let own = format!("http://{addr}");
    let same = post(addr, "/events/", &[("Origin", &own)], EVENT);
    assert_eq!(same.status, 200, "same origin: {}", same.body);
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let cross = post(addr, "/events/", &[("Origin", origin)], EVENT);
        assert_eq!(cross.status, 403, "{origin}: {}", cross.body);
        assert!(cross.body.contains("cross-site"), "{}", cross.body);
        let tags = post_form(
            addr,
            "/tags/tagSeries",
            &[("Origin", origin)],
            &[("path", "disk.used;dc=x")],
        );
        assert_eq!(tags.status, 403, "{origin}: {}", tags.body);
    }
    let tags = post_form(addr, "/tags/tagSeries", &[], &[("path", "disk.used;dc=x")]);
    assert_eq!(tags.status, 200, "{}", tags.body);
    let read = get(addr, "/events/get_data", &[]);
    assert_eq!(read.status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&read.body)
            .unwrap()
            .as_array()
            .map(Vec::len),
        Some(2),
        "only the two accepted posts stored: {}",
        read.body
    );
    // A read is not a write: a cross-site read is answered (as graphite-web does).
    let find = get(
        addr,
        "/metrics/find?query=*",
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(find.status, 200);
}

#[test]
fn a_listener_not_on_loopback_refuses_writes_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_HTTP__LISTEN", "0.0.0.0:0")]);
    let addr = local(&server);
    let refused = post(addr, "/events/", &[], EVENT);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("auth_tokens") && refused.body.contains("[[http.users]]"),
        "the refusal says what to set: {}",
        refused.body
    );
    let tags = post_form(addr, "/tags/delSeries", &[], &[("path", "a;b=c")]);
    assert_eq!(tags.status, 403, "{}", tags.body);
    assert_eq!(
        get(addr, "/metrics/find?query=*", &[]).status,
        200,
        "reads open"
    );
    assert_eq!(get(addr, "/events/get_data", &[]).status, 200);
}

#[test]
fn with_auth_tokens_a_write_needs_the_right_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[
            ("CARBONHOUND_HTTP__LISTEN", "0.0.0.0:0"),
            ("CARBONHOUND_HTTP__AUTH_TOKENS", TOKEN),
        ],
    );
    let addr = local(&server);
    let missing = post(addr, "/events/", &[], EVENT);
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert!(
        missing.challenges.iter().any(|c| c.starts_with("Bearer")),
        "{:?}",
        missing.challenges
    );
    let wrong = post(
        addr,
        "/events/",
        &[("Authorization", "Bearer deploy-token-0123456788")],
        EVENT,
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(!wrong.challenges.is_empty());
    let bearer = format!("Bearer {TOKEN}");
    let right = post(addr, "/events/", &[("Authorization", &bearer)], EVENT);
    assert_eq!(right.status, 200, "{}", right.body);
    let tags = post_form(
        addr,
        "/tags/tagMultiSeries",
        &[("Authorization", &bearer)],
        &[("path", "disk.used;dc=x")],
    );
    assert_eq!(tags.status, 200, "{}", tags.body);
    let cross = post(
        addr,
        "/events/",
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        EVENT,
    );
    assert_eq!(
        cross.status, 403,
        "a token does not make a cross-site post pass"
    );
    assert_eq!(get(addr, "/events/get_data", &[]).status, 200, "reads open");
    assert_eq!(get(addr, "/health", &[]).status, 200);
}

#[test]
fn basic_auth_with_a_hashed_password_and_protect_reads() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("correct horse");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let config = dir.path().join("carbonhound.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nprotect_reads = true\n\n[[http.users]]\nname = \"grafana\"\n\
             password_hash = \"{hash}\"\n"
        ),
    )
    .unwrap();
    let server = Server::start_with_args(
        dir.path(),
        &["--config", config.to_str().unwrap()],
        &[("CARBONHOUND_HTTP__LISTEN", "0.0.0.0:0")],
    );
    let addr = local(&server);
    let right = basic("grafana", "correct horse");
    let wrong = basic("grafana", "battery staple");
    let stranger = basic("nobody", "correct horse");
    for path in [
        "/metrics/find?query=*",
        "/events/get_data",
        "/health",
        "/alerts.json",
    ] {
        let open = get(addr, path, &[]);
        assert_eq!(open.status, 401, "{path}: {}", open.body);
        assert!(
            open.challenges.iter().any(|c| c.starts_with("Basic")),
            "{path}: {:?}",
            open.challenges
        );
        for bad in [&wrong, &stranger] {
            assert_eq!(
                get(addr, path, &[("Authorization", bad)]).status,
                401,
                "{path}"
            );
        }
        assert_eq!(
            get(addr, path, &[("Authorization", &right)]).status,
            200,
            "{path}"
        );
    }
    assert_eq!(post(addr, "/events/", &[], EVENT).status, 401);
    assert_eq!(
        post(addr, "/events/", &[("Authorization", &wrong)], EVENT).status,
        401
    );
    let posted = post(addr, "/events/", &[("Authorization", &right)], EVENT);
    assert_eq!(posted.status, 200, "{}", posted.body);
}

#[test]
fn the_event_store_refuses_posts_beyond_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_EVENTS__MAX_EVENTS", "2")]);
    let addr = server.http;
    assert_eq!(post(addr, "/events/", &[], EVENT).status, 200);
    assert_eq!(post(addr, "/events/", &[], EVENT).status, 200);
    let full = post(addr, "/events/", &[], EVENT);
    assert_eq!(full.status, 507, "{}", full.body);
    assert!(
        full.body.contains("events.max_events is 2"),
        "the refusal names the limit: {}",
        full.body
    );
    assert_eq!(
        get(addr, "/events/1", &[("Accept", "application/json")]).status,
        200
    );
}
