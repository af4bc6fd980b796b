//! Alerting against real parts: the server started in-process with a 1-second alert
//! interval, points pushed over the carbon plaintext port, a real SMTP server (Python's
//! aiosmtpd, `tests/support/smtp_sink.py`) receiving the mail, mail-parser reading the MIME
//! tree, the png crate decoding the graph, and headless Chromium (Debian's `chromium`)
//! loading the mail as a phone would. A missing aiosmtpd or chromium FAILS these tests.
//! (The board and rule pages in Chromium: tests/alert_board.rs.)

mod common;

use common::chromium;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbonhound::config::Settings;
use carbonhound::server::{self, Running};
use common::{push, runtime, Sink};
use mail_parser::{MessageParser, MimeHeaders, PartType};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A test server's folders and settings.
struct Setup {
    dir: tempfile::TempDir,
    settings: Settings,
}

fn setup(sink: &Sink, rules: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut s = common::alert_settings(dir.path(), sink.port, "test.toml", rules);
    s.alerting.templates_dir = dir.path().join("no-templates-here");
    s.alerting.admin_email = vec!["admin@test.example".into()];
    // One-second points, so no-data spans of a few seconds can be tested.
    let schemas = dir.path().join("storage-schemas.conf");
    std::fs::write(&schemas, "[all]\npattern = .*\nretentions = 1s:2h,60s:2d\n").unwrap();
    s.carbon.schemas = Some(schemas);
    Setup { dir, settings: s }
}

fn get(running: &Running, path: &str) -> (u16, String, Vec<u8>) {
    let url = format!("http://{}{}", running.addrs.http, path);
    let r = match ureq::get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = r.status();
    let ct = r.content_type().to_string();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    (status, ct, body)
}

fn alerts_json(running: &Running) -> serde_json::Value {
    let (status, _, body) = get(running, "/alerts.json");
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

/// The state of rule `slug` in /alerts.json.
fn rule_state(running: &Running, slug: &str) -> serde_json::Value {
    let j = alerts_json(running);
    j["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["slug"] == slug)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The MIME tree of a parsed message as `type/subtype(child,child)`.
fn mime_tree(msg: &mail_parser::Message, id: u32) -> String {
    let part = msg.part(id).unwrap();
    let ct = part
        .content_type()
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
        .unwrap_or_else(|| "text/plain".into());
    match &part.body {
        PartType::Multipart(children) => {
            let inner: Vec<String> = children.iter().map(|c| mime_tree(msg, *c)).collect();
            format!("{ct}({})", inner.join(","))
        }
        _ => ct,
    }
}

fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let mut reader = png::Decoder::new(bytes).read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG image data");
    (info.width, info.height)
}

const RULE: &str = r#"
[[alert]]
name = "Test load high"
target = "test.alert.load"
threshold = 0
direction = "above"
type = "alert"
runbook = "https://wiki.test.example/load"
"#;

const TREE: &str =
    "multipart/alternative(text/plain,multipart/related(text/html,image/png,image/png))";

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(raw)
        .expect("a parsable message")
}

fn header(msg: &mail_parser::Message, name: &str) -> String {
    msg.header_raw(name).unwrap_or("").trim().to_string()
}

fn pngs<'a>(msg: &'a mail_parser::Message<'a>) -> Vec<&'a mail_parser::MessagePart<'a>> {
    msg.parts
        .iter()
        .filter(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
        })
        .collect()
}

#[test]
fn alert_once_survive_a_restart_then_recover() {
    let sink = Sink::start();
    let Setup { dir, settings } = setup(&sink, RULE);
    let rt = runtime();
    let running = rt.block_on(server::start(settings.clone())).unwrap();
    let t = now();
    push(&running, &format!("test.alert.load 5 {t}\n"));

    // Exactly one alert arrives.
    let msgs = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(msgs.len(), 1, "one alert mail");
    let msg = parse(&msgs[0]);
    assert_eq!(
        msg.subject(),
        Some("[CRIT] Test load high: test.alert.load 5 (crit 0)")
    );
    assert_eq!(
        mime_tree(&msg, 0),
        TREE,
        "{}",
        String::from_utf8_lossy(&msgs[0])
    );
    let first_id = msg.message_id().expect("a Message-ID").to_string();
    let text = msg.body_text(0).unwrap();
    assert!(
        text.contains("test.alert.load is 5, above crit 0 by 5"),
        "{text}"
    );
    assert!(text.contains("https://wiki.test.example/load"), "{text}");
    assert!(
        text.contains("http://carbonhound.test:8080/alerts/test-load-high"),
        "{text}"
    );
    // minijinja escapes '/' in HTML as &#x2f;, which every HTML reader decodes.
    let html = msg.body_html(0).unwrap().replace("&#x2f;", "/");
    let images = pngs(&msg);
    assert_eq!(images.len(), 2, "the last hour and the last 24 hours");
    for img in &images {
        let cid = img.content_id().expect("the image has a Content-ID");
        assert!(
            html.contains(&format!("<img src=\"cid:{cid}\"")),
            "the HTML shows the inline image {cid}: {html}"
        );
        assert!(img
            .content_disposition()
            .is_some_and(|d| d.ctype() == "inline"));
        assert_eq!(decode_png(img.contents()), (750, 440), "2x a 375 px phone");
    }
    assert!(
        html.contains("https://wiki.test.example/load") && html.contains("/alerts/test-load-high")
    );

    // No reminder within the first five minutes.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.messages().len(), 1, "no second mail before +5 min");
    assert_eq!(rule_state(&running, "test-load-high")["state"], "crit");

    // A restart does not send the alert again.
    let before = rule_state(&running, "test-load-high")["checked_at"]
        .as_i64()
        .unwrap();
    rt.block_on(running.shutdown());
    std::thread::sleep(Duration::from_millis(1100));
    let running = rt.block_on(server::start(settings.clone())).unwrap();
    wait_until(
        Duration::from_secs(20),
        "the restarted server to check",
        || {
            rule_state(&running, "test-load-high")["checked_at"]
                .as_i64()
                .unwrap_or(0)
                > before
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.messages().len(), 1, "the restart re-sent nothing");
    let st = rule_state(&running, "test-load-high");
    assert_eq!(st["state"], "crit");
    let since = st["incident_since"].as_i64().unwrap();
    assert!(since >= t - 1 && since <= t + 30, "{st}");
    assert_eq!(st["series"][0]["series"], "test.alert.load");
    assert_eq!(st["series"][0]["state"], "crit");
    assert_eq!(st["series"][0]["value"], 5.0);

    // Recovery: a newer value below the level is the last non-null value; in the same thread.
    push(&running, &format!("test.alert.load -1 {}\n", now()));
    let msgs = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(msgs.len(), 2, "a recovery mail");
    let rec = parse(&msgs[1]);
    assert_eq!(
        rec.subject(),
        Some("[RECOVERED] Test load high: test.alert.load back below 0: -1")
    );
    assert_eq!(mime_tree(&rec, 0), TREE);
    assert_eq!(header(&rec, "In-Reply-To"), format!("<{first_id}>"));
    assert_eq!(header(&rec, "References"), format!("<{first_id}>"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 2, "nothing more after the recovery");
    assert_eq!(rule_state(&running, "test-load-high")["state"], "ok");
    rt.block_on(running.shutdown());

    // `alerts preview` writes the alert mail as files, from the whisper files on disk; its
    // HTML, opened in Chromium at a phone's width, shows the header and the graphs.
    preview_after_shutdown(&settings, &dir);
}

/// After the server stopped: the preview of the (now recovered) rule as an alert, looked at
/// in Chromium at 375 px, a phone's width.
fn preview_after_shutdown(settings: &Settings, dir: &tempfile::TempDir) {
    let config = settings_file(settings);
    let out = dir.path().join("preview");
    let run = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args([
            "alerts",
            "preview",
            "Test load high",
            "--kind",
            "alert",
            "--out",
        ])
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("subject \"[CRIT] Test load high"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(out.join("test-load-high.txt")).unwrap();
    assert!(text.starts_with("[CRIT] Test load high"), "{text}");
    let html = std::fs::read_to_string(out.join("test-load-high.html")).unwrap();
    assert!(
        !html.contains("cid:") && html.contains("src=\"test-load-high-last-hour.png\""),
        "{html}"
    );
    for f in [
        "test-load-high-last-hour.png",
        "test-load-high-last-24h.png",
    ] {
        assert_eq!(decode_png(&std::fs::read(out.join(f)).unwrap()), (750, 440));
    }
    let eml = std::fs::read(out.join("test-load-high.eml")).unwrap();
    assert_eq!(mime_tree(&parse(&eml), 0), TREE);
    phone_screenshot(&out.join("test-load-high.html"), dir);
}

/// Opens a mail's HTML in Chromium laid out 375 CSS px wide (a phone's width; headless
/// Chromium's window cannot be narrower than 500 px, so the page's root is held at 375 px):
/// the graphs fit the phone's width, the header is red (CRIT) and the crit level's red dashed
/// line is drawn.
fn phone_screenshot(html_file: &Path, dir: &tempfile::TempDir) {
    let html = std::fs::read_to_string(html_file).unwrap().replace(
        "</head>",
        "<style>html{width:375px;overflow:hidden}</style></head>",
    );
    let phone = html_file.with_extension("phone.html");
    std::fs::write(&phone, &html).unwrap();
    // A copy that writes each image's laid-out size into the DOM, for --dump-dom.
    let probe = html_file.with_extension("probe.html");
    let script = "<script>window.addEventListener('load',()=>{document.body.setAttribute('data-images',[...document.images].map(i=>i.getBoundingClientRect().width+'x'+i.getBoundingClientRect().height+'@'+i.naturalWidth).join(' '));});</script></body>";
    std::fs::write(&probe, html.replace("</body>", script)).unwrap();
    let profile = dir.path().join("chromium-profile");
    let dom = chromium(
        &[
            "--window-size=375,1600",
            "--virtual-time-budget=3000",
            "--dump-dom",
            &format!("file://{}", probe.display()),
        ],
        &profile,
    );
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let sizes = dom
        .split("data-images=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no data-images in {dom}"))
        .to_string();
    let sizes: Vec<(f64, f64, u32)> = sizes
        .split_whitespace()
        .map(|x| {
            let (wh, natural) = x.split_once('@').unwrap();
            let (w, h) = wh.split_once('x').unwrap();
            (
                w.parse().unwrap(),
                h.parse().unwrap(),
                natural.parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(sizes.len(), 2, "two graphs: {sizes:?}");
    for (w, h, natural) in &sizes {
        assert_eq!(*natural, 750, "a 2x image");
        assert!(
            *w >= 300.0 && *w <= 375.0,
            "laid out within the phone: {sizes:?}"
        );
        assert!(
            (h / w - 440.0 / 750.0).abs() < 0.02,
            "aspect kept: {sizes:?}"
        );
    }
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alerting-mail-phone.png");
    chromium(
        &[
            "--window-size=375,1600",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", phone.display()),
        ],
        &profile,
    );
    let page = std::fs::read(&shot).unwrap();
    assert!(
        count_color(&page, (198, 40, 40)) > 5_000,
        "the red CRIT header ({})",
        shot.display()
    );
    assert!(
        count_color(&page, (213, 0, 0)) > 100,
        "the graphs' red crit line ({})",
        shot.display()
    );
}

const LEVELS: &str = r#"
[[alert]]
name = "Disk"
target = "test.disk.*.used"
direction = "above"
warn = 85
crit = 95
for = "2s"

[[alert]]
name = "Heartbeat"
target = "test.hb.*"
direction = "below"
crit = 0
window = "3s"
no_data_after = "3s"

[[alert]]
name = "Ratio"
targets = { errors = "test.ng.err", total = "test.ng.req" }
crit = "errors / total > 0.05 && total > 10"
warn = "errors / total > 0.01 && total > 10"

[[alert]]
name = "Fleet"
target = "test.fleet.*"
direction = "above"
crit = 100
window = "3s"
no_data_after = "3s"
repeat = ["2s"]

[[alert]]
name = "Edit me"
target = "test.edit"
direction = "above"
crit = 0

[[alert]]
name = "Broken"
target = "divideSeries(test.broken.*, test.broken.*)"
direction = "above"
crit = 0
"#;

/// The mails whose subject names `rule`, parsed, in arrival order.
fn mails_of(sink: &Sink, rule: &str) -> Vec<(String, String, String, String)> {
    sink.messages()
        .iter()
        .map(|raw| {
            let m = parse(raw);
            (
                m.subject().unwrap_or("").to_string(),
                m.message_id().unwrap_or("").to_string(),
                header(&m, "In-Reply-To"),
                header(&m, "To"),
            )
        })
        .filter(|m| m.0.contains(&format!("] {rule}: ")))
        .collect()
}

fn wait_mails(sink: &Sink, rule: &str, n: usize) -> Vec<(String, String, String, String)> {
    let t0 = Instant::now();
    loop {
        let m = mails_of(sink, rule);
        if m.len() >= n {
            return m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "waited for {n} mails of {rule}, got {m:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn levels_pending_no_data_expressions_edits_and_errors() {
    let sink = Sink::start();
    let Setup {
        dir: _dir,
        mut settings,
    } = setup(&sink, LEVELS);
    // Alerting's self metrics are written when carbon's are on, every stats_interval.
    settings.carbon.stats_interval = Duration::from_secs(1);
    // No base_url: links point where the HTTP listener bound.
    settings.alerting.base_url = String::new();
    let rt = runtime();
    let running = rt.block_on(server::start(settings.clone())).unwrap();
    let t = now();
    push(
        &running,
        &format!(
            "test.disk.web1.used 90 {t}\ntest.disk.web2.used 10 {t}\ntest.hb.a 1 {t}\ntest.ng.err 7 {t}\ntest.ng.req 100 {t}\ntest.edit 5 {t}\ntest.broken.x 1 {t}\ntest.broken.y 1 {t}\ntest.fleet.a 1 {t}\n"
        ),
    );

    // A glob: a series that appears later joins with its own state (and its incident's
    // reminders reply to the first mail); one that stops reporting while the others go on
    // becomes NO DATA on its own.
    let carbon = running.addrs.carbon.plaintext_tcp.unwrap();
    let fleet_b = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pusher = {
        let (fleet_b, stop) = (fleet_b.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write as _;
            use std::sync::atomic::Ordering::SeqCst;
            while !stop.load(SeqCst) {
                let t = now();
                let mut lines = format!("test.fleet.a 1 {t}\n");
                if fleet_b.load(SeqCst) {
                    lines.push_str(&format!("test.fleet.b 500 {t}\n"));
                }
                if let Ok(mut c) = std::net::TcpStream::connect(carbon) {
                    let _ = c.write_all(lines.as_bytes());
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    // for = 2s: PENDING first, then WARN.
    wait_until(Duration::from_secs(20), "Disk to be pending", || {
        rule_state(&running, "disk")["state"] == "pending"
    });
    assert!(
        mails_of(&sink, "Disk").is_empty(),
        "nothing mailed while pending"
    );
    let disk = wait_mails(&sink, "Disk", 1);
    assert_eq!(disk[0].0, "[WARN] Disk: web1 90 (warn 85)");
    let thread = disk[0].1.clone();
    assert_eq!(disk[0].2, "", "the first mail starts the thread");
    let first = sink
        .messages()
        .into_iter()
        .find(|raw| parse(raw).subject().is_some_and(|x| x.contains("] Disk: ")))
        .unwrap();
    let body = parse(&first).body_text(0).unwrap().to_string();
    assert!(
        body.contains(&format!("http://{}/alerts/disk", running.addrs.http)),
        "the link points at the bound listener: {body}"
    );

    // WARN → CRIT, a second series joins, CRIT → WARN, recovery: one thread.
    push(&running, &format!("test.disk.web1.used 97 {}\n", now()));
    let disk = wait_mails(&sink, "Disk", 2);
    assert_eq!(disk[1].0, "[CRIT] Disk: web1 97 (crit 95)");
    push(&running, &format!("test.disk.web2.used 99 {}\n", now()));
    let disk = wait_mails(&sink, "Disk", 3);
    assert_eq!(disk[2].0, "[CRIT] Disk: web2 99 (crit 95) and 1 more");
    push(
        &running,
        &format!(
            "test.disk.web1.used 50 {0}\ntest.disk.web2.used 88 {0}\n",
            now()
        ),
    );
    let disk = wait_mails(&sink, "Disk", 4);
    assert_eq!(disk[3].0, "[WARN] Disk: web2 88 (warn 85)");
    push(&running, &format!("test.disk.web2.used 10 {}\n", now()));
    let disk = wait_mails(&sink, "Disk", 5);
    assert_eq!(disk[4].0, "[RECOVERED] Disk: web2 back below 85: 10");
    for m in &disk[1..] {
        assert_eq!(
            m.2,
            format!("<{thread}>"),
            "{} replies to the first mail",
            m.0
        );
    }

    // Expressions over several targets.
    let ratio = wait_mails(&sink, "Ratio", 1);
    assert_eq!(
        ratio[0].0,
        "[CRIT] Ratio: errors = 7, total = 100 (crit: errors / total > 0.05 && total > 10)"
    );
    push(&running, &format!("test.ng.err 2 {}\n", now()));
    let ratio = wait_mails(&sink, "Ratio", 2);
    assert_eq!(
        ratio[1].0,
        "[WARN] Ratio: errors = 2, total = 100 (warn: errors / total > 0.01 && total > 10)"
    );

    // A series that stops reporting: NO DATA after no_data_after (3 s).
    let hb = wait_mails(&sink, "Heartbeat", 1);
    assert!(
        hb[0].0.starts_with("[NO DATA] Heartbeat: a (no data for "),
        "{hb:?}"
    );
    let st = rule_state(&running, "heartbeat");
    assert_eq!(st["state"], "nodata", "{st}");
    push(&running, &format!("test.hb.a 1 {}\n", now()));
    let hb = wait_mails(&sink, "Heartbeat", 2);
    assert_eq!(hb[1].0, "[RECOVERED] Heartbeat: a OK again: 1");

    let fleet_series = |running: &Running| -> Vec<(String, String)> {
        let st = rule_state(running, "fleet");
        st["series"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|s| {
                        (
                            s["series"].as_str().unwrap_or("").to_string(),
                            s["state"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // Fleet's series a has been kept fresh since the start (the pusher above).
    wait_until(Duration::from_secs(20), "Fleet's one series ok", || {
        rule_state(&running, "fleet")["state"] == "ok"
    });
    assert_eq!(
        fleet_series(&running),
        [("test.fleet.a".to_string(), "ok".to_string())]
    );
    assert!(mails_of(&sink, "Fleet").is_empty());
    let joined = now();
    fleet_b.store(true, std::sync::atomic::Ordering::SeqCst);
    let fleet = wait_mails(&sink, "Fleet", 1);
    assert_eq!(fleet[0].0, "[CRIT] Fleet: b 500 (crit 100)");
    let fleet_thread = fleet[0].1.clone();
    let mut series = fleet_series(&running);
    series.sort();
    assert_eq!(
        series,
        [
            ("test.fleet.a".to_string(), "ok".to_string()),
            ("test.fleet.b".to_string(), "crit".to_string())
        ],
        "b joined with its own state"
    );
    let st = rule_state(&running, "fleet");
    let b = st["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["series"] == "test.fleet.b")
        .unwrap();
    assert!(b["since"].as_i64().unwrap() >= joined, "{b}");
    assert_eq!(b["value"].as_f64(), Some(500.0), "{b}");
    let reminders = wait_mails(&sink, "Fleet", 2);
    assert_eq!(
        reminders[1].0, "[REMINDER 1] [CRIT] Fleet: b 500 (crit 100)",
        "{reminders:#?}"
    );
    let raw = sink
        .messages()
        .into_iter()
        .find(|raw| parse(raw).subject() == Some(reminders[1].0.as_str()))
        .unwrap();
    let reminder = parse(&raw);
    assert_eq!(
        header(&reminder, "In-Reply-To"),
        format!("<{fleet_thread}>")
    );
    assert!(
        header(&reminder, "References").contains(&fleet_thread),
        "{}",
        header(&reminder, "References")
    );
    fleet_b.store(false, std::sync::atomic::Ordering::SeqCst);
    let t0 = Instant::now();
    let gone = loop {
        let m = mails_of(&sink, "Fleet");
        if let Some(x) = m.iter().find(|m| m.0.starts_with("[NO DATA] Fleet: b")) {
            break x.clone();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{m:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(gone.2, format!("<{fleet_thread}>"), "the same incident");
    let mut series = fleet_series(&running);
    series.sort();
    assert_eq!(
        series,
        [
            ("test.fleet.a".to_string(), "ok".to_string()),
            ("test.fleet.b".to_string(), "nodata".to_string())
        ],
        "only b stopped reporting"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    pusher.join().unwrap();

    // A recovery that comes from editing the rule says so.
    let edit = wait_mails(&sink, "Edit me", 1);
    assert_eq!(edit[0].0, "[CRIT] Edit me: test.edit 5 (crit 0)");
    let rules = settings.alerting.rules_dir.join("test.toml");
    std::fs::write(
        &rules,
        LEVELS.replace(
            "target = \"test.edit\"\ndirection = \"above\"\ncrit = 0",
            "target = \"test.edit\"\ndirection = \"above\"\ncrit = 1000",
        ),
    )
    .unwrap();
    let edit = wait_mails(&sink, "Edit me", 2);
    assert_eq!(
        edit[1].0,
        "[RECOVERED] Edit me: rule changed: crit 0 → 1000"
    );

    // A rule that cannot be evaluated: ERROR, mailed to the administrator, shown as such.
    let broken = wait_mails(&sink, "Broken", 1);
    assert!(broken[0].0.starts_with("[ERROR] Broken: "), "{broken:?}");
    assert!(broken[0].3.contains("admin@test.example"), "{broken:?}");
    let st = rule_state(&running, "broken");
    assert_eq!(st["state"], "error");
    assert!(
        st["message"].as_str().unwrap().contains("divideSeries"),
        "{st}"
    );

    // Alerting's self metrics, under carbon.agents.<host>.alerting.
    let host = carbonhound::carbon::hostname();
    let metric = format!("carbon.agents.{host}.alerting.rules");
    wait_until(Duration::from_secs(20), "alerting self metrics", || {
        let (status, _, body) = get(
            &running,
            &format!("/render?target={metric}&from=-5min&format=json"),
        );
        status == 200 && String::from_utf8_lossy(&body).contains("6.0")
    });
    let (_, _, body) = get(
        &running,
        &format!("/metrics/find?query=carbon.agents.{host}.alerting.*"),
    );
    let found = String::from_utf8_lossy(&body).to_string();
    for leaf in [
        "crit",
        "warn",
        "nodata",
        "error",
        "evaluationSeconds",
        "mailsSent",
        "mailsFailed",
    ] {
        assert!(found.contains(&format!("\"{leaf}\"")), "{leaf} in {found}");
    }
    // mailsSent counts what the SMTP server accepted (the outbox's deliveries), and the
    // sink accepted every mail: none failed.
    let total = |leaf: &str| -> f64 {
        let (_, _, body) = get(
            &running,
            &format!("/render?target=carbon.agents.{host}.alerting.{leaf}&from=-30min&format=json"),
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p[0].as_f64())
            .sum()
    };
    wait_until(Duration::from_secs(20), "mailsSent", || {
        total("mailsSent") >= 5.0
    });
    assert!(total("mailsSent") <= sink.messages().len() as f64);
    assert_eq!(total("mailsFailed"), 0.0);
    rt.block_on(running.shutdown());
}

#[test]
fn a_bad_rule_file_is_refused_with_its_line_and_the_old_rules_keep_running() {
    let sink = Sink::start();
    let Setup {
        dir: _dir,
        settings,
    } = setup(&sink, RULE);
    let rt = runtime();
    let running = rt.block_on(server::start(settings.clone())).unwrap();
    push(
        &running,
        &format!("test.alert.load -1 {0}\na.b 0 {0}\n", now()),
    );
    // `alerts check` reads the whisper files: wait until both are written.
    let whisper = settings.whisper_dir();
    wait_until(Duration::from_secs(20), "the whisper files", || {
        whisper.join("a/b.wsp").exists() && whisper.join("test/alert/load.wsp").exists()
    });
    wait_until(Duration::from_secs(20), "a first check", || {
        !rule_state(&running, "test-load-high")["state"].is_null()
    });

    let bad = settings.alerting.rules_dir.join("zz-bad.toml");
    std::fs::write(
        &bad,
        "[[alert]]\nname = \"Other\"\ntarget = \"a.b\"\nthreshold = 1\ndirection = \"upwards\"\n",
    )
    .unwrap();
    wait_until(Duration::from_secs(20), "the reload to be refused", || {
        !alerts_json(&running)["rules_error"].is_null()
    });
    let j = alerts_json(&running);
    let err = j["rules_error"].as_str().unwrap();
    assert!(
        err.contains(&format!("{}:5:", bad.display())),
        "path:line in {err}"
    );
    assert!(err.contains("upwards"), "{err}");
    assert_eq!(
        j["rules"].as_array().unwrap().len(),
        1,
        "the old rule is still there"
    );
    let checked = rule_state(&running, "test-load-high")["checked_at"]
        .as_i64()
        .unwrap();
    wait_until(
        Duration::from_secs(20),
        "the old rule to be checked again",
        || {
            rule_state(&running, "test-load-high")["checked_at"]
                .as_i64()
                .unwrap()
                > checked
        },
    );
    let (_, _, page) = get(&running, "/");
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("id=\"rules-error\"") && page.contains("zz-bad.toml:5:"),
        "the status page shows the refusal"
    );

    // The same error from the command line, with the exit status.
    let config = settings_file(&settings);
    let out = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(["alerts", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:5:", bad.display())),
        "{stderr}"
    );

    // Fixed: the new rules replace the old.
    std::fs::write(
        &bad,
        "[[alert]]\nname = \"Other\"\ntarget = \"a.b\"\nthreshold = 1\ndirection = \"above\"\n",
    )
    .unwrap();
    wait_until(Duration::from_secs(20), "the fixed rules", || {
        alerts_json(&running)["rules"].as_array().unwrap().len() == 2
    });
    assert!(alerts_json(&running)["rules_error"].is_null());
    let out = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(["alerts", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 alert rules in 2 files read"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // `[alert]` for `[[alert]]`: refused at its line, saying what to write.
    std::fs::write(
        &bad,
        "# one rule\n[alert]\nname = \"Other\"\ntarget = \"a.b\"\nthreshold = 1\ndirection = \"above\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(["alerts", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:1:", bad.display())) && stderr.contains("use [[alert]]"),
        "{stderr}"
    );
    // A rule that reads well but can never fire (its target matches nothing, or cannot be
    // evaluated) fails the check, naming file:line.
    std::fs::write(
        &bad,
        "[[alert]]\nname = \"Typo\"\ntarget = \"test.alert.lod\"\ncrit = 1\ndirection = \"above\"\n\n[[alert]]\nname = \"Broken\"\ntarget = \"divideSeries(a.b, group(a.b, test.alert.load))\"\ncrit = 1\ndirection = \"above\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(["alerts", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:1: rule 'Typo'", bad.display()))
            && stderr.contains("matches no series"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:7: rule 'Broken'", bad.display()))
            && stderr.contains("cannot be evaluated"),
        "{stderr}"
    );
    // `alerts preview` writes the mail a check would send: NO DATA for the rule that matches
    // nothing, ERROR for the one that cannot be evaluated.
    for (rule, want) in [
        (
            "Typo",
            "[NO DATA] Typo: no data: the target matches no series",
        ),
        ("Broken", "[ERROR] Broken: "),
    ] {
        let out_dir = settings
            .data_dir
            .parent()
            .unwrap()
            .join(format!("preview-{rule}"));
        let run = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
            .args(["alerts", "preview", rule, "--out"])
            .arg(&out_dir)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            stdout.contains(&format!("subject \"{want}")),
            "{rule}: {stdout}"
        );
    }
    rt.block_on(running.shutdown());
}

/// The parts of `s` the CLI needs, as a TOML settings file beside the data.
fn settings_file(s: &Settings) -> PathBuf {
    let path = s.data_dir.parent().unwrap().join("carbonhound.toml");
    let text = format!(
        "data_dir = {:?}\n[alerting]\nrules_dir = {:?}\ntemplates_dir = {:?}\nemail_to = [\"oncall@test.example\"]\n",
        s.data_dir.display().to_string(),
        s.alerting.rules_dir.display().to_string(),
        s.alerting.templates_dir.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Pixels of `png` within 4 of `rgb` in every channel.
fn count_color(png_bytes: &[u8], rgb: (u8, u8, u8)) -> usize {
    let mut reader = png::Decoder::new(png_bytes).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| {
            px[0].abs_diff(rgb.0) <= 4 && px[1].abs_diff(rgb.1) <= 4 && px[2].abs_diff(rgb.2) <= 4
        })
        .count()
}
