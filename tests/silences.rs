//! Silences and maintenance windows against real parts: the server in-process with a
//! 1-second alert interval, points over the carbon plaintext port, aiosmtpd receiving the
//! mail, the `carbonhound silence` CLI against the running server, and headless Chromium
//! submitting the rule page's silence form. A missing aiosmtpd or chromium FAILS these tests.

mod common;

use common::chromium;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use carbonhound::config::{MaintenanceWindow, Settings, Weekly};
use carbonhound::server::{self, Running};
use common::{now, push, runtime, Sink};
use mail_parser::MessageParser;

const TOKEN: &str = "silence-test-token-0123456789";

const RULES: &str = r#"
[[alert]]
name = "Web load"
target = "test.web.*.load"
direction = "above"
crit = 1
labels = { team = "web" }

[[alert]]
name = "Db load"
target = "test.db.load"
direction = "above"
crit = 1
labels = { team = "db" }
"#;

fn setup(sink: &Sink, dir: &Path) -> Settings {
    common::alert_settings(dir, sink.port, "test.toml", RULES)
}

/// (status, body) of a request with an optional JSON body and bearer token.
fn call(
    running: &Running,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
) -> (u16, String) {
    let mut req = ureq::request(method, &format!("http://{}{path}", running.addrs.http));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let r = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Series `name` of rule `slug` in /api/alerts.
fn series(running: &Running, slug: &str, name: &str) -> serde_json::Value {
    let (_, body) = call(running, "GET", "/api/alerts", None, None);
    let j = json(&body);
    j["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["slug"] == slug)
        .and_then(|r| {
            r["series"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["series"] == name)
                .cloned()
        })
        .unwrap_or(serde_json::Value::Null)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (subject, text body) of the mails about `rule`.
fn mails(sink: &Sink, rule: &str) -> Vec<(String, String)> {
    sink.messages()
        .iter()
        .filter_map(|raw| {
            let m = MessageParser::default().parse(raw)?;
            let subject = m.subject().unwrap_or("").to_string();
            let text = m.body_text(0).map(|t| t.to_string()).unwrap_or_default();
            subject
                .contains(&format!("] {rule}: "))
                .then_some((subject, text))
        })
        .collect()
}

fn add(running: &Running, body: serde_json::Value) -> u64 {
    let (status, text) = call(running, "POST", "/api/silences", Some(&body), None);
    assert_eq!(status, 201, "{text}");
    json(&text)["id"].as_u64().unwrap()
}

/// The built-in rule page with a script that fills in and submits the whole-rule silence form
/// once (when no silence is listed yet): a user-editable template in `templates_dir`.
fn form_submitting_template(dir: &Path) {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/rule.html"))
            .unwrap();
    let script = r#"<script>
window.addEventListener("load", function () {
  if (document.getElementById("silences")) return;
  var f = document.getElementById("silence-rule");
  f.querySelector("[name=comment]").value = "chromium form";
  f.querySelector("[name=author]").value = "browser";
  f.querySelector("[name=duration]").value = "1h";
  f.submit();
});
</script>
{% endblock %}"#;
    let i = page.rfind("{% endblock %}").unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rule.html"), format!("{}{script}", &page[..i])).unwrap();
}

#[test]
fn silences_by_glob_and_label_hold_mail_until_expired_and_the_rule_page_form_adds_one() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = setup(&sink, dir.path());
    form_submitting_template(&settings.alerting.templates_dir);
    let rt = runtime();
    let running = rt.block_on(server::start(settings)).unwrap();

    // Bad input is refused naming the field.
    let (status, text) = call(
        &running,
        "POST",
        "/api/silences",
        Some(&serde_json::json!({"duration": "2h", "comment": "c", "author": "a"})),
        None,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("rule"), "{text}");
    let (status, text) = call(
        &running,
        "POST",
        "/api/silences",
        Some(
            &serde_json::json!({"rule": "Web load", "duration": "200d", "comment": "c", "author": "a"}),
        ),
        None,
    );
    assert!(
        status == 400 && text.contains("duration"),
        "{status} {text}"
    );
    assert_eq!(
        call(&running, "DELETE", "/api/silences/424242", None, None).0,
        404
    );

    let glob = add(
        &running,
        serde_json::json!({"rule": "Web load", "series": "test.web.a.*", "duration": "1h",
                           "comment": "reinstalling a", "author": "ops"}),
    );
    let label = add(
        &running,
        serde_json::json!({"labels": {"team": "db"}, "duration": "1h",
                           "comment": "db migration", "author": "dba"}),
    );
    let t = now();
    push(
        &running,
        &format!("test.web.a.load 5 {t}\ntest.db.load 5 {t}\n"),
    );
    wait_until("a silenced CRIT on the board", || {
        let s = series(&running, "web-load", "test.web.a.load");
        s["state"] == "crit" && s["silenced"]["by"] == format!("silence {glob}")
    });
    let s = series(&running, "web-load", "test.web.a.load");
    assert_eq!(s["silenced"]["author"], "ops");
    assert_eq!(s["silenced"]["comment"], "reinstalling a");
    assert!(s["silenced"]["until"].as_i64().unwrap() > t);
    assert_eq!(
        series(&running, "db-load", "test.db.load")["silenced"]["author"],
        "dba",
        "silenced by label"
    );
    // The board marks both rules as silenced, with who and why.
    let (_, board) = call(&running, "GET", "/", None, None);
    assert!(board.contains("silenced\" id=\"rule-web-load\""), "{board}");
    assert!(board.contains("reinstalling a"), "{board}");

    // Another series of the same rule fails: it mails, the silenced one is left out.
    std::thread::sleep(Duration::from_secs(3));
    assert!(mails(&sink, "Web load").is_empty(), "silenced: no mail");
    push(&running, &format!("test.web.b.load 7 {}\n", now()));
    wait_until("the mail of b", || !mails(&sink, "Web load").is_empty());
    let m = mails(&sink, "Web load");
    assert!(m[0].0.starts_with("[CRIT] Web load"), "{m:?}");
    assert!(m[0].1.contains("test.web.b.load"), "{m:?}");
    assert!(
        !m[0].1.contains("test.web.a.load"),
        "a is left out: {}",
        m[0].1
    );

    // Expired while a still fails: mailed then, as a change.
    let (status, text) = call(
        &running,
        "DELETE",
        &format!("/api/silences/{glob}"),
        None,
        None,
    );
    assert_eq!(status, 200, "{text}");
    wait_until("the mail of a", || mails(&sink, "Web load").len() >= 2);
    let m = mails(&sink, "Web load");
    assert!(m[1].1.contains("test.web.a.load"), "{m:?}");
    assert!(
        mails(&sink, "Db load").is_empty(),
        "the label silence holds"
    );

    // The list: the label silence in force first, the expired one after.
    let (_, text) = call(&running, "GET", "/api/silences", None, None);
    let list = json(&text);
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![label, glob], "{list}");
    assert_eq!(list[0]["active"], true);
    assert_eq!(list[1]["active"], false);

    // Headless Chromium opens the rule page, whose script submits the silence form; the
    // server redirects back to the page, which lists the new silence.
    let url = format!("http://{}/alerts/web-load", running.addrs.http);
    let profile = dir.path().join("chromium");
    let out = chromium(
        &["--virtual-time-budget=10000", "--dump-dom", &url],
        &profile,
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    wait_until("the form's silence", || {
        let (_, text) = call(&running, "GET", "/api/silences", None, None);
        json(&text)
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["author"] == "browser" && s["rule"] == "Web load" && s["active"] == true)
    });
    let (_, page) = call(&running, "GET", "/alerts/web-load", None, None);
    assert!(
        page.contains("chromium form") && page.contains("id=\"expire-"),
        "the rule page lists it with an Expire button; chromium saw: {dom}"
    );
    // A form post from another site is refused.
    let r = ureq::post(&format!(
        "http://{}/alerts/web-load/silence",
        running.addrs.http
    ))
    .set("Origin", "http://evil.example")
    .send_form(&[("duration", "1h"), ("comment", "x"), ("author", "y")]);
    assert!(matches!(r, Err(ureq::Error::Status(403, _))), "{r:?}");
    rt.block_on(running.shutdown());
}

/// A weekly window open now, in the wall-clock of UTC: `Mon 13:05-15:05`.
fn window_around_now() -> Weekly {
    let fmt = |t: i64, f: &str| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format(f)
            .to_string()
    };
    let t = now();
    let text = format!(
        "{} {}-{}",
        fmt(t - 3600, "%a"),
        fmt(t - 3600, "%H:%M"),
        fmt(t + 3600, "%H:%M")
    );
    Weekly::parse(&text).unwrap()
}

#[test]
fn a_maintenance_window_open_now_holds_mail_of_its_rules() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = setup(&sink, dir.path());
    settings.maintenance = vec![MaintenanceWindow {
        name: "web patching".into(),
        rule: None,
        labels: [("team".to_string(), "web".to_string())].into(),
        weekly: window_around_now(),
        timezone: chrono_tz::Tz::UTC,
    }];
    let rt = runtime();
    let running = rt.block_on(server::start(settings)).unwrap();
    let t = now();
    push(
        &running,
        &format!("test.web.a.load 5 {t}\ntest.db.load 5 {t}\n"),
    );
    wait_until("the db mail (not in the window)", || {
        !mails(&sink, "Db load").is_empty()
    });
    wait_until("the window on the board", || {
        series(&running, "web-load", "test.web.a.load")["silenced"]["by"]
            == "maintenance web patching"
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        mails(&sink, "Web load").is_empty(),
        "in maintenance: no mail"
    );
    assert_eq!(
        series(&running, "web-load", "test.web.a.load")["state"],
        "crit",
        "still checked"
    );
    rt.block_on(running.shutdown());
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn writes_need_the_token_and_the_cli_adds_lists_and_expires() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = setup(&sink, dir.path());
    settings.http.auth_tokens = vec![TOKEN.into()];
    let rt = runtime();
    let running = rt.block_on(server::start(settings)).unwrap();
    let body =
        serde_json::json!({"rule": "Db load", "duration": "2h", "comment": "c", "author": "a"});
    let (status, _) = call(&running, "POST", "/api/silences", Some(&body), None);
    assert!(status == 401 || status == 403, "{status}");
    let (status, _) = call(
        &running,
        "POST",
        "/api/silences",
        Some(&body),
        Some("wrong-token-wrong-token"),
    );
    assert_eq!(status, 401);
    let (status, text) = call(&running, "POST", "/api/silences", Some(&body), Some(TOKEN));
    assert_eq!(status, 201, "{text}");
    assert_eq!(
        call(&running, "DELETE", "/api/silences/1", None, None).0,
        401,
        "expiring is a write too"
    );

    let url = format!("http://{}", running.addrs.http);
    let base = ["--url", url.as_str(), "--token", TOKEN];
    let (ok, out) = cli(&[
        &[
            "silence",
            "add",
            "--rule",
            "Web load",
            "--series",
            "test.web.*.load",
        ][..],
        &["--label", "team=web", "--duration", "30m"],
        &["--comment", "deploy", "--author", "cli"],
        &base,
    ]
    .concat());
    assert!(ok, "{out}");
    let id: u64 = out
        .trim()
        .strip_prefix("silence ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let (ok, out) = cli(&[&["silence", "list"][..], &base].concat());
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("active until")
            && line.contains("rule=Web load")
            && line.contains("series=test.web.*.load")
            && line.contains("team=web")
            && line.contains("by cli: deploy"),
        "{line}"
    );
    let (ok, out) = cli(&[&["silence", "expire", &id.to_string()][..], &base].concat());
    assert!(ok && out.contains("expired"), "{out}");
    let (_, out) = cli(&[&["silence", "list"][..], &base].concat());
    assert!(out.contains(&format!("{id} ended")), "{out}");
    // Refusals carry the server's message; no token is a 401.
    let (ok, out) = cli(&[
        "silence",
        "add",
        "--rule",
        "x",
        "--duration",
        "1h",
        "--comment",
        "c",
        "--author",
        "a",
        "--url",
        &url,
    ]);
    assert!(!ok && out.contains("401"), "{out}");
    let (ok, out) = cli(&[
        &[
            "silence",
            "add",
            "--duration",
            "1h",
            "--comment",
            "c",
            "--author",
            "a",
        ][..],
        &base,
    ]
    .concat());
    assert!(!ok && out.contains("400") && out.contains("rule"), "{out}");
    rt.block_on(running.shutdown());
}
