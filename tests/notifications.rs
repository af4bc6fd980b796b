//! Notifications against real parts: the server started in-process with a 1-second alert
//! interval, points pushed over the carbon plaintext port, a real SMTP server (aiosmtpd,
//! `tests/support/smtp_sink.py`) and an HTTP receiver (`tests/support/http_receiver.py`)
//! standing in for a webhook endpoint, Slack's incoming webhooks and PagerDuty's Events API
//! v2, which validates every payload against that service's documented schema. A missing
//! aiosmtpd or python3 FAILS these tests.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use carbonhound::config::{ContactSettings, RouteSettings, Settings};
use carbonhound::server::{self, Running};
use common::{now, push, runtime, Sink};
use mail_parser::MessageParser;
use serde_json::Value;

/// The HTTP receiver: saves each valid request as `NNNN-<kind>.json`.
struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Receiver {
    fn start() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/http_receiver.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 runs the HTTP receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the HTTP receiver did not start: {line:?}"));
        Receiver { child, dir, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Valid requests of `kind` (`webhook`, `slack`, `pagerduty`), in arrival order.
    fn got(&self, kind: &str) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&format!("-{kind}.json")) && !n.starts_with('.'))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Requests refused as invalid, with the reason.
    fn invalid(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "invalid"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    fn set_down(&self, down: bool) {
        let f = self.dir.path().join("down");
        if down {
            std::fs::write(f, "").unwrap();
        } else {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(dir: &std::path::Path, smtp_port: u16, rules: &str) -> Settings {
    let mut s = common::alert_settings(dir, smtp_port, "rules.toml", rules);
    s.alerting.email_to = vec!["fallback@test.example".into()];
    s
}

fn contact(name: &str, email: &[&str]) -> ContactSettings {
    ContactSettings {
        name: name.into(),
        email: email.iter().map(|e| e.to_string()).collect(),
        webhook: String::new(),
        slack_webhook: String::new(),
        pagerduty_routing_key: String::new(),
        pagerduty_url: String::new(),
        max_per_hour: 0,
    }
}

fn route(matches: &[(&str, &str)], contacts: &[&str], cont: bool) -> RouteSettings {
    RouteSettings {
        matches: matches
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        contacts: contacts.iter().map(|c| c.to_string()).collect(),
        continue_: cont,
        escalate_after: None,
        escalate_to: Vec::new(),
    }
}

fn outbox(running: &Running) -> Vec<Value> {
    let (status, _, body) = common::http_get(running.addrs.http, "/api/outbox");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["notifications"].as_array().unwrap().clone()
}

/// (To, subject) of every mail the sink got, in arrival order.
fn mails(sink: &Sink) -> Vec<(String, String)> {
    sink.messages()
        .iter()
        .map(|raw| {
            let m = MessageParser::default().parse(raw).unwrap();
            (
                m.header_raw("To").unwrap_or("").trim().to_string(),
                m.subject().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn wait<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const RULES: &str = r#"
[[alert]]
name = "Web down"
target = "test.web"
direction = "above"
crit = 0
labels = { team = "web" }
runbook = "https://wiki.test.example/web"

[[alert]]
name = "DB slow"
target = "test.db"
direction = "above"
warn = 5
crit = 10
labels = { team = "db" }

[[alert]]
name = "Direct"
target = "test.direct"
direction = "above"
crit = 0
notify = ["db-oncall"]
"#;

#[test]
fn routes_contacts_and_every_channel() {
    let sink = Sink::start();
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), sink.port, RULES);
    let mut web = contact("web-oncall", &["web@test.example"]);
    web.webhook = rx.url("/hook");
    web.slack_webhook = rx.url("/slack/services/T000/B000/XXXX");
    web.pagerduty_routing_key = "R0UT1NGKEY".into();
    web.pagerduty_url = rx.url("/v2/enqueue");
    s.contact = vec![
        web,
        contact("db-oncall", &["db@test.example"]),
        contact("lead", &["lead@test.example"]),
    ];
    s.route = vec![
        route(&[("team", "web")], &["web-oncall"], true),
        route(&[("severity", "crit")], &["lead"], false),
        route(&[("team", "db")], &["db-oncall"], false),
    ];
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    let t = now();
    push(
        &running,
        &format!("test.web 5 {t}\ntest.db 7 {t}\ntest.direct 1 {t}\n"),
    );

    // Mail: "Web down" to web-oncall (route 1, continue) and lead (route 2, severity crit);
    // "DB slow" is WARN, so route 2 does not match and route 3 gives db-oncall; "Direct"
    // names db-oncall itself. Nobody gets the [alerting].email_to fallback.
    let got = wait(30, "four mails", || {
        let m = mails(&sink);
        (m.len() >= 4).then_some(m)
    });
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(
        got_sorted,
        vec![
            (
                "db@test.example".to_string(),
                "[CRIT] Direct: test.direct 1 (crit 0)".to_string()
            ),
            (
                "db@test.example".to_string(),
                "[WARN] DB slow: test.db 7 (warn 5)".to_string()
            ),
            (
                "lead@test.example".to_string(),
                "[CRIT] Web down: test.web 5 (crit 0)".to_string()
            ),
            (
                "web@test.example".to_string(),
                "[CRIT] Web down: test.web 5 (crit 0)".to_string()
            ),
        ]
    );

    // The other channels of web-oncall, each valid for its service.
    let hooks = wait(30, "the webhook", || {
        let h = rx.got("webhook");
        (!h.is_empty()).then_some(h)
    });
    let h = &hooks[0];
    assert_eq!(h["event"], "fire");
    assert_eq!(h["state"], "crit");
    assert_eq!(h["subject"], "[CRIT] Web down: test.web 5 (crit 0)");
    assert_eq!(h["rule"]["name"], "Web down");
    assert_eq!(h["rule"]["labels"]["team"], "web");
    assert_eq!(h["rule"]["runbook"], "https://wiki.test.example/web");
    assert_eq!(
        h["rule"]["url"],
        "http://carbonhound.test:8080/alerts/web-down"
    );
    assert_eq!(h["series"][0]["series"], "test.web");
    assert_eq!(h["series"][0]["value"], 5.0);
    assert!(h["graph_url"]
        .as_str()
        .unwrap()
        .starts_with("http://carbonhound.test:8080/render?"));
    let slack = wait(30, "the Slack message", || {
        let v = rx.got("slack");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(slack[0]["text"], "[CRIT] Web down: test.web 5 (crit 0)");
    assert_eq!(
        slack[0]["attachments"][0]["title_link"],
        "http://carbonhound.test:8080/alerts/web-down"
    );
    let pd = wait(30, "the PagerDuty event", || {
        let v = rx.got("pagerduty");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["routing_key"], "R0UT1NGKEY");
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    assert_eq!(pd[0]["payload"]["source"], "test.web");
    let dedup = pd[0]["dedup_key"].as_str().unwrap().to_string();
    assert_eq!(
        h["incident"]["id"],
        dedup.as_str(),
        "one incident id across channels"
    );

    // Recovery: every channel again, PagerDuty resolves the same incident.
    push(&running, &format!("test.web -1 {}\n", now()));
    let pd = wait(30, "the PagerDuty resolve", || {
        let v = rx.got("pagerduty");
        (v.len() >= 2).then_some(v)
    });
    assert_eq!(pd[1]["event_action"], "resolve");
    assert_eq!(pd[1]["dedup_key"], dedup.as_str());
    let hooks = wait(30, "the webhook recovery", || {
        let h = rx.got("webhook");
        (h.len() >= 2).then_some(h)
    });
    assert_eq!(hooks[1]["event"], "recovery");
    assert_eq!(hooks[1]["state"], "ok");
    assert_ne!(
        hooks[0]["id"], hooks[1]["id"],
        "each notification has its own id"
    );
    let m = wait(30, "the recovery mails", || {
        let m = mails(&sink);
        (m.len() >= 6).then_some(m)
    });
    let recovered: Vec<&(String, String)> = m
        .iter()
        .filter(|(_, s)| s.starts_with("[RECOVERED] Web down"))
        .collect();
    assert_eq!(recovered.len(), 2, "to web-oncall and lead: {m:?}");
    assert!(
        rx.invalid().is_empty(),
        "payloads refused by the receiver: {:?}",
        rx.invalid()
    );

    // The outbox lists every notification, delivered, without the secrets of its URLs.
    let ob = wait(10, "the outbox to show it all delivered", || {
        let ob = outbox(&running);
        let web: Vec<Value> = ob.into_iter().filter(|n| n["rule"] == "Web down").collect();
        (web.len() == 10 && web.iter().all(|n| n["status"] == "sent")).then_some(web)
    });
    let mut channels: Vec<&str> = ob.iter().map(|n| n["channel"].as_str().unwrap()).collect();
    channels.sort();
    channels.dedup();
    assert_eq!(channels, vec!["email", "pagerduty", "slack", "webhook"]);
    let text = serde_json::to_string(&ob).unwrap();
    assert!(
        !text.contains("XXXX") && !text.contains("R0UT1NGKEY"),
        "{text}"
    );
    let (_, _, page) = common::http_get(running.addrs.http, "/alerts/web-down");
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("id=\"notifications\"") && page.contains("pagerduty"),
        "rule page"
    );
    rt.block_on(running.shutdown());
}

#[test]
fn receivers_down_then_up_every_notification_arrives_once_in_order() {
    // Nothing listens on the SMTP port yet, and the HTTP receiver answers 503.
    let smtp_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rx = Receiver::start();
    rx.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(
        dir.path(),
        smtp_port,
        "[[alert]]\nname = \"Flappy\"\ntarget = \"test.flap\"\ndirection = \"above\"\ncrit = 0\nnotify = [\"ops\"]\n",
    );
    let mut ops = contact("ops", &["ops@test.example"]);
    ops.webhook = rx.url("/hook");
    s.contact = vec![ops];
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    let pending = |n: usize| {
        let ob = outbox(&running);
        (ob.len() == n && ob.iter().all(|x| x["status"] == "pending")).then_some(ob)
    };
    // Fire, recover, fire again, while both receivers are down.
    push(&running, &format!("test.flap 5 {}\n", now()));
    wait(30, "the first notifications queued", || pending(2));
    push(&running, &format!("test.flap -1 {}\n", now()));
    wait(30, "the recovery queued", || pending(4));
    push(&running, &format!("test.flap 7 {}\n", now()));
    let ob = wait(30, "the second alert queued", || pending(6));
    let tried = wait(30, "failed tries to be recorded", || {
        let ob = outbox(&running);
        ob.iter()
            .any(|n| n["attempts"].as_u64() >= Some(1) && n["last_error"].is_string())
            .then_some(ob)
    });
    let errors: Vec<&str> = tried
        .iter()
        .filter_map(|n| n["last_error"].as_str())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("503")) && errors.iter().any(|e| e.contains("SMTP")),
        "the errors name what failed: {errors:?}"
    );
    assert_eq!(ob.len(), 6);

    // Both come back: everything arrives, once, in order.
    let sink = Sink::start_on(smtp_port);
    rx.set_down(false);
    let m = wait(90, "three mails", || {
        let m = mails(&sink);
        (m.len() >= 3).then_some(m)
    });
    let subjects: Vec<&str> = m.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "[CRIT] Flappy: test.flap 5 (crit 0)",
            "[RECOVERED] Flappy: test.flap back below 0: -1",
            "[CRIT] Flappy: test.flap 7 (crit 0)",
        ]
    );
    let hooks = wait(90, "three webhooks", || {
        let h = rx.got("webhook");
        (h.len() >= 3).then_some(h)
    });
    let events: Vec<&str> = hooks.iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events, vec!["fire", "recovery", "fire"]);
    wait(10, "the outbox to show all six delivered", || {
        outbox(&running)
            .iter()
            .all(|n| n["status"] == "sent")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(mails(&sink).len(), 3, "nothing twice");
    assert_eq!(rx.got("webhook").len(), 3, "nothing twice");
    rt.block_on(running.shutdown());
}

#[test]
fn ack_by_link_stops_reminders_and_escalation_and_tells_pagerduty() {
    let sink = Sink::start();
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = "[[alert]]\nname = \"Acked\"\ntarget = \"test.acked\"\ndirection = \"above\"\ncrit = 0\nlabels = { team = \"ops\" }\nrepeat = [\"5s\", \"10s\"]\n\n[[alert]]\nname = \"Unacked\"\ntarget = \"test.unacked\"\ndirection = \"above\"\ncrit = 0\nlabels = { team = \"ops\" }\nrepeat = []\n";
    let mut s = settings(dir.path(), sink.port, rules);
    let mut ops = contact("ops", &["ops@test.example"]);
    ops.webhook = rx.url("/hook");
    ops.pagerduty_routing_key = "OPSKEY".into();
    ops.pagerduty_url = rx.url("/v2/enqueue");
    s.contact = vec![ops, contact("lead", &["lead@test.example"])];
    let mut r = route(&[("team", "ops")], &["ops"], false);
    r.escalate_after = Some(Duration::from_secs(8));
    r.escalate_to = vec!["lead".into()];
    s.route = vec![r];
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    let t = now();
    push(&running, &format!("test.acked 5 {t}\ntest.unacked 5 {t}\n"));

    // The alert mail carries a signed acknowledge link.
    let raw = wait(30, "the alert mail of Acked", || {
        sink.messages().into_iter().find(|raw| {
            MessageParser::default()
                .parse(raw)
                .and_then(|m| m.subject().map(|s| s.starts_with("[CRIT] Acked:")))
                .unwrap_or(false)
        })
    });
    let msg = MessageParser::default().parse(&raw).unwrap();
    let text = msg.body_text(0).unwrap().to_string();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("Acknowledge:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| panic!("no acknowledge link in {text}"));
    assert!(
        link.starts_with("http://carbonhound.test:8080/ack/"),
        "{link}"
    );
    let path = link.trim_start_matches("http://carbonhound.test:8080");

    // A tampered link is refused; the real one shows a form, and its POST acknowledges.
    let mut bad = path.to_string();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _, _) = common::http_get(running.addrs.http, &bad);
    assert_eq!(status, 403, "a tampered link");
    let (status, _, page) = common::http_get(running.addrs.http, path);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("id=\"ack-form\""));
    let (status, _, page) = common::http_post_form(
        running.addrs.http,
        path,
        &[("author", "ann"), ("comment", "on it")],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&page));
    assert!(String::from_utf8_lossy(&page).contains("Acknowledged by ann"));

    // The systems are told; the board says who.
    let hooks = wait(30, "the acknowledged webhook", || {
        let h = rx.got("webhook");
        h.iter().any(|h| h["event"] == "acknowledged").then_some(h)
    });
    let ack = hooks.iter().find(|h| h["event"] == "acknowledged").unwrap();
    assert_eq!(ack["rule"]["name"], "Acked");
    assert_eq!(ack["acknowledged"]["by"], "ann");
    let pd = wait(30, "the PagerDuty acknowledge", || {
        let v = rx.got("pagerduty");
        v.iter()
            .any(|e| e["event_action"] == "acknowledge")
            .then_some(v)
    });
    let trigger = pd
        .iter()
        .find(|e| e["event_action"] == "trigger" && e["payload"]["class"] == "Acked")
        .unwrap();
    let acked = pd
        .iter()
        .find(|e| e["event_action"] == "acknowledge")
        .unwrap();
    assert_eq!(acked["dedup_key"], trigger["dedup_key"]);
    let (_, _, body) = common::http_get(running.addrs.http, "/api/alerts");
    let j: Value = serde_json::from_slice(&body).unwrap();
    let rule = j["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Acked")
        .unwrap();
    assert_eq!(rule["acknowledged"]["by"], "ann", "{rule}");
    assert_eq!(rule["acknowledged"]["comment"], "on it");

    // Unacknowledged after escalate_after (8 s): the lead is told, once. The acknowledged
    // incident neither reminds (+5 s, +10 s) nor escalates.
    let escalated = wait(40, "the escalation of Unacked", || {
        let m = mails(&sink);
        m.iter()
            .find(|(to, s)| to.contains("lead@") && s.starts_with("[ESCALATED] [CRIT] Unacked:"))
            .cloned()
    });
    assert_eq!(
        escalated.1,
        "[ESCALATED] [CRIT] Unacked: test.unacked 5 (crit 0)"
    );
    std::thread::sleep(Duration::from_secs(6));
    let m = mails(&sink);
    let of = |rule: &str| -> Vec<&(String, String)> {
        m.iter()
            .filter(|(_, s)| s.contains(&format!("] {rule}: ")))
            .collect()
    };
    assert_eq!(
        of("Acked").len(),
        1,
        "after the acknowledgement: no reminder, no escalation: {m:?}"
    );
    assert_eq!(
        of("Unacked")
            .iter()
            .filter(|(to, _)| to.contains("lead@"))
            .count(),
        1,
        "escalated once: {m:?}"
    );
    assert!(rx.invalid().is_empty(), "{:?}", rx.invalid());
    rt.block_on(running.shutdown());
}

/// `n` rules `"{title} NN"` on `test.{metric}NN` (crit 0, notify `ops`) that all fire in
/// one check: their points are pushed and stored first, the rule file written after.
fn fire_together(
    running: &Running,
    rules_dir: &std::path::Path,
    title: &str,
    metric: &str,
    n: usize,
) {
    let mut rules = String::new();
    let mut points = String::new();
    let t = now();
    for i in 0..n {
        rules.push_str(&format!(
            "[[alert]]\nname = \"{title} {i:02}\"\ntarget = \"test.{metric}{i:02}\"\ndirection = \"above\"\ncrit = 0\nnotify = [\"ops\"]\n\n"
        ));
        points.push_str(&format!("test.{metric}{i:02} 1 {t}\n"));
    }
    push(running, &points);
    let render = format!("/render?target=test.{metric}*&from=-5min&format=json");
    wait(30, "the points", || {
        let (_, _, body) = common::http_get(running.addrs.http, &render);
        let v: Value = serde_json::from_slice(&body).ok()?;
        (v.as_array()?.len() == n).then_some(())
    });
    std::fs::write(rules_dir.join("rules.toml"), rules).unwrap();
}

#[test]
fn many_incidents_at_once_are_one_summary_per_contact() {
    let sink = Sink::start();
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), sink.port, "");
    s.alerting.throttle = 10;
    let mut ops = contact("ops", &["ops@test.example"]);
    ops.webhook = rx.url("/hook");
    s.contact = vec![ops];
    let rules_dir = s.alerting.rules_dir.clone();
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    fire_together(&running, &rules_dir, "Host", "host", 12);
    wait(30, "the summary mail", || {
        (!mails(&sink).is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let m = mails(&sink);
    assert_eq!(m.len(), 1, "one summary, not twelve mails: {m:?}");
    assert!(
        m[0].1
            .starts_with("[ALERTS] 12 incidents started: Host 00, "),
        "{m:?}"
    );
    let hooks = rx.got("webhook");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["event"], "summary");
    assert_eq!(hooks[0]["notifications"].as_array().unwrap().len(), 12);
    // Each incident is open and announced: the next change or recovery is mailed as usual.
    push(&running, &format!("test.host03 -1 {}\n", now()));
    let m = wait(30, "a recovery", || {
        let m = mails(&sink);
        (m.len() >= 2).then_some(m)
    });
    assert_eq!(m[1].1, "[RECOVERED] Host 03: test.host03 back below 0: -1");
    assert!(rx.invalid().is_empty(), "{:?}", rx.invalid());
    rt.block_on(running.shutdown());
}

/// SIGKILL while the outbox is sending to a slow receiver, then a restart: every notification
/// arrives; the only repeat possible is the one in flight at the kill (accepted by the
/// receiver, not yet recorded), and it carries the same id, for the receiver to drop.
#[test]
fn sigkill_while_sending_loses_nothing() {
    let rx = Receiver::start();
    std::fs::write(rx.dir.path().join("delay"), "0.3").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::new();
    let mut points = String::new();
    let t = now();
    for i in 0..20 {
        rules.push_str(&format!(
            "[[alert]]\nname = \"Svc {i:02}\"\ntarget = \"test.svc{i:02}\"\ndirection = \"above\"\ncrit = 0\nnotify = [\"ops\"]\n\n"
        ));
        points.push_str(&format!("test.svc{i:02} 1 {t}\n"));
    }
    std::fs::create_dir_all(dir.path().join("alerts.d")).unwrap();
    std::fs::write(dir.path().join("alerts.d/rules.toml"), rules).unwrap();
    let config = dir.path().join("carbonhound.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\ninterval = \"1s\"\nthrottle = 0\nbase_url = \"http://carbonhound.test\"\n\n[[contact]]\nname = \"ops\"\nwebhook = \"{}\"\n",
            rx.url("/hook")
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let env = [("CARBONHOUND_CARBON__STATS_INTERVAL", "0s")];
    let mut server = common::Server::start_with_args(dir.path(), &args, &env);
    server.send_tcp(&points);
    // A few delivered (0.3 s each), then SIGKILL in the middle of the others.
    wait(60, "the first deliveries", || {
        (rx.got("webhook").len() >= 3).then_some(())
    });
    let pid = server.child.as_ref().unwrap().id();
    common::unsafe_kill(pid, libc::SIGKILL);
    let _ = server.child.take().unwrap().wait();
    let before = rx.got("webhook").len();
    assert!(before < 20, "killed before the end ({before} delivered)");
    std::fs::remove_file(rx.dir.path().join("delay")).unwrap();

    let _server = common::Server::start_with_args(dir.path(), &args, &env);
    wait(60, "every notification after the restart", || {
        let h = rx.got("webhook");
        let mut rules: Vec<String> = h
            .iter()
            .map(|x| x["rule"]["name"].as_str().unwrap().to_string())
            .collect();
        rules.sort();
        rules.dedup();
        (rules.len() == 20).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let hooks = rx.got("webhook");
    assert!(
        hooks.iter().all(|h| h["event"] == "fire"),
        "nothing but the 20 alerts"
    );
    let mut ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    ids.sort();
    let total = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every alert, by its id");
    assert!(
        total - ids.len() <= 1,
        "at most the one in flight repeated ({total} for 20)"
    );
}

/// Headless Chromium opens the acknowledge link of a mail and presses its button (a script
/// in a user template fills the form and submits it on load, as a person would).
#[test]
fn acknowledged_from_a_browser() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(
        dir.path(),
        sink.port,
        "[[alert]]\nname = \"Clicked\"\ntarget = \"test.clicked\"\ndirection = \"above\"\ncrit = 0\n",
    );
    s.alerting.base_url = String::new();
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let builtin = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates/ack.html"),
    )
    .unwrap();
    let script = "<script>window.addEventListener('load', () => { const f = document.getElementById('ack-form'); if (f) { f.author.value = 'chromium'; f.comment.value = 'clicked'; document.getElementById('ack-button').click(); } });</script>\n{% endblock %}";
    let at = builtin.rfind("{% endblock %}").unwrap();
    std::fs::write(
        templates.join("ack.html"),
        format!("{}{script}", &builtin[..at]),
    )
    .unwrap();
    s.alerting.templates_dir = templates;
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    push(&running, &format!("test.clicked 5 {}\n", now()));
    let raw = wait(30, "the alert mail", || sink.messages().into_iter().next());
    let text = MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("Acknowledge:"))
        .map(|l| l.trim().to_string())
        .unwrap();
    assert!(
        link.starts_with(&format!("http://{}/ack/", running.addrs.http)),
        "{link}"
    );
    let out = common::chromium(
        &["--virtual-time-budget=5000", "--dump-dom", &link],
        &dir.path().join("chromium-profile"),
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("Acknowledged by chromium"), "{dom}");
    let acked = wait(30, "the acknowledgement to be applied", || {
        let (_, _, body) = common::http_get(running.addrs.http, "/api/alerts");
        let j: Value = serde_json::from_slice(&body).unwrap();
        let r = j["rules"][0]["acknowledged"].clone();
        (!r.is_null()).then_some(r)
    });
    assert_eq!(acked["by"], "chromium");
    assert_eq!(acked["comment"], "clicked");
    let (_, _, board) = common::http_get(running.addrs.http, "/");
    assert!(
        String::from_utf8_lossy(&board).contains("acknowledged by chromium"),
        "the board says who is on it"
    );
    rt.block_on(running.shutdown());
}

#[test]
fn max_per_hour_bundles_the_rest_of_the_hour() {
    let rx = Receiver::start();
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), sink.port, "");
    s.alerting.throttle = 0;
    let mut ops = contact("ops", &[]);
    ops.webhook = rx.url("/hook");
    ops.max_per_hour = 2;
    s.contact = vec![ops];
    let rules_dir = s.alerting.rules_dir.clone();
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    fire_together(&running, &rules_dir, "Job", "job", 5);
    // Two messages this hour at most; every notification is in one of them or waits.
    wait(30, "two messages", || {
        (rx.got("webhook").len() >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let hooks = rx.got("webhook");
    assert_eq!(hooks.len(), 2, "max_per_hour = 2: {hooks:?}");
    let delivered: usize = hooks
        .iter()
        .map(|x| x["notifications"].as_array().map(|a| a.len()).unwrap_or(1))
        .sum();
    let ob = outbox(&running);
    let waiting = ob.iter().filter(|n| n["status"] == "pending").count();
    assert_eq!(ob.len(), 5);
    assert_eq!(delivered + waiting, 5, "nothing lost: {ob:?}");
    // A round's five are planned together: one alone, the other four as one bundle.
    let bundle = hooks
        .iter()
        .find(|h| h["event"] == "bundle")
        .expect("a bundle");
    let inside = bundle["notifications"].as_array().unwrap();
    assert!(inside
        .iter()
        .all(|n| n["event"] == "fire" && n["version"] == 1));
    assert_eq!(waiting, 0);
    assert!(rx.invalid().is_empty(), "{:?}", rx.invalid());
    rt.block_on(running.shutdown());
}

/// With `[http] auth_tokens`, acknowledging through the API or the rule page's form needs a
/// token; the signed link needs none (it is its own credential).
#[test]
fn acknowledging_by_api_needs_the_token_but_the_link_does_not() {
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(
        dir.path(),
        sink.port,
        "[[alert]]\nname = \"Guarded\"\ntarget = \"test.guarded\"\ndirection = \"above\"\ncrit = 0\n",
    );
    s.http.auth_tokens = vec![TOKEN.into()];
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    push(&running, &format!("test.guarded 5 {}\n", now()));
    wait(30, "the alert mail", || sink.messages().into_iter().next());
    // The rule by its name (its slug, `guarded`, works too).
    let url = format!("http://{}/api/alerts/Guarded/ack", running.addrs.http);
    let body = r#"{"author": "ann", "comment": "on it"}"#;
    let status = |r: Result<ureq::Response, ureq::Error>| match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(c, _)) => c,
        Err(e) => panic!("{e}"),
    };
    let no_token = status(
        ureq::post(&url)
            .set("Content-Type", "application/json")
            .send_string(body),
    );
    assert_eq!(no_token, 401, "no token");
    let form = status(
        ureq::post(&format!("http://{}/alerts/guarded/ack", running.addrs.http))
            .send_form(&[("author", "ann")]),
    );
    assert_eq!(form, 401, "the rule page's form without credentials");
    let with = status(
        ureq::post(&url)
            .set("Content-Type", "application/json")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_string(body),
    );
    assert_eq!(with, 202);
    let acked = wait(30, "the acknowledgement", || {
        let (_, _, body) = common::http_get(running.addrs.http, "/api/alerts");
        let j: Value = serde_json::from_slice(&body).unwrap();
        let a = j["rules"][0]["acknowledged"].clone();
        (!a.is_null()).then_some(a)
    });
    assert_eq!(acked["by"], "ann");
    rt.block_on(running.shutdown());
}
