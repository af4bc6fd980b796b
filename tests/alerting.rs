//! Alerting against real parts: the server started in-process with a 1-second alert
//! interval, points pushed over the carbon plaintext port, a real SMTP server (Python's
//! aiosmtpd, `tests/support/smtp_sink.py`) receiving the mail, mail-parser reading the MIME
//! tree, the png crate decoding the graph, and headless Chromium (Debian's `chromium`)
//! loading the status pages. A missing aiosmtpd or chromium FAILS these tests.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbonhound::config::Settings;
use carbonhound::server::{self, Running};
use common::Sink;
use mail_parser::{MessageParser, MimeHeaders, PartType};

const CHROMIUM: &str = "/usr/bin/chromium";

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
    let mut s = Settings::defaults();
    s.data_dir = dir.path().join("data");
    s.carbon.plaintext_tcp = "127.0.0.1:0".into();
    s.carbon.plaintext_udp = String::new();
    s.carbon.pickle_tcp = String::new();
    s.carbon.stats_interval = Duration::ZERO;
    s.http.listen = "127.0.0.1:0".into();
    s.alerting.rules_dir = dir.path().join("alerts.d");
    s.alerting.templates_dir = dir.path().join("no-templates-here");
    s.alerting.interval = Duration::from_secs(1);
    s.alerting.email_from = "carbonhound@test.example".into();
    s.alerting.email_to = vec!["oncall@test.example".into()];
    s.alerting.base_url = "http://carbonhound.test:8080".into();
    s.smtp.host = "127.0.0.1".into();
    s.smtp.port = sink.port;
    s.smtp.tls = carbonhound::config::SmtpTls::None;
    s.smtp.timeout = Duration::from_secs(5);
    std::fs::create_dir_all(&s.alerting.rules_dir).unwrap();
    std::fs::write(s.alerting.rules_dir.join("test.toml"), rules).unwrap();
    Setup { dir, settings: s }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn push(running: &Running, lines: &str) {
    let addr = running
        .addrs
        .carbon
        .plaintext_tcp
        .expect("plaintext listener");
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(lines.as_bytes()).unwrap();
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
    let msg = MessageParser::default()
        .parse(&msgs[0])
        .expect("a parsable message");
    assert_eq!(msg.subject(), Some("[ALERT] Test load high"));
    assert_eq!(
        mime_tree(&msg, 0),
        "multipart/alternative(text/plain,multipart/related(text/html,image/png))",
        "{}",
        String::from_utf8_lossy(&msgs[0])
    );
    let text = msg.body_text(0).unwrap();
    assert!(
        text.contains("test.alert.load is 5, above the threshold of 0"),
        "{text}"
    );
    assert!(text.contains("https://wiki.test.example/load"), "{text}");
    assert!(
        text.contains("http://carbonhound.test:8080/alerts/test-load-high"),
        "{text}"
    );
    // minijinja escapes '/' in HTML as &#x2f;, which every HTML reader decodes.
    let html = msg.body_html(0).unwrap().replace("&#x2f;", "/");
    let png_part = msg
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
        })
        .unwrap();
    let cid = png_part.content_id().expect("the image has a Content-ID");
    assert!(
        html.contains(&format!("<img src=\"cid:{cid}\"")),
        "the HTML shows the inline image {cid}: {html}"
    );
    assert!(
        png_part
            .content_disposition()
            .is_some_and(|d| d.ctype() == "inline"),
        "inline image"
    );
    assert!(
        html.contains("https://wiki.test.example/load") && html.contains("/alerts/test-load-high")
    );
    let (w, h) = decode_png(png_part.contents());
    assert_eq!((w, h), (640, 280));

    // No reminder within the first five minutes.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sink.messages().len(),
        1,
        "no second mail while failing before +5 min"
    );
    assert_eq!(rule_state(&running, "test-load-high")["state"], "failed");

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
    assert_eq!(st["state"], "failed");
    assert!(
        st["failing_since"].as_i64().unwrap() >= t - 1
            && st["failing_since"].as_i64().unwrap() <= t + 30,
        "{st}"
    );

    // Recovery: a newer value below the threshold is the last non-null value.
    push(&running, &format!("test.alert.load -1 {}\n", now()));
    let msgs = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(msgs.len(), 2, "a recovery mail");
    let rec = MessageParser::default().parse(&msgs[1]).unwrap();
    assert_eq!(rec.subject(), Some("[RECOVERED] Test load high"));
    assert_eq!(
        mime_tree(&rec, 0),
        "multipart/alternative(text/plain,multipart/related(text/html,image/png))"
    );
    assert!(
        rec.body_text(0)
            .unwrap()
            .contains("is back below 0: now -1"),
        "{}",
        rec.body_text(0).unwrap()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 2, "nothing more after the recovery");
    assert_eq!(rule_state(&running, "test-load-high")["state"], "ok");
    rt.block_on(running.shutdown());

    // `alerts preview` writes the alert mail as files, from the whisper files on disk; its
    // HTML, opened in Chromium, shows the red header and the graph.
    preview_after_shutdown(&settings, &dir);
}

/// After the server stopped: the preview of the (now recovered) rule as an alert.
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
        stdout.contains("subject \"[ALERT] Test load high\""),
        "{stdout}"
    );
    let text = std::fs::read_to_string(out.join("test-load-high.txt")).unwrap();
    assert!(text.starts_with("[ALERT] Test load high\n"), "{text}");
    let html = std::fs::read_to_string(out.join("test-load-high.html")).unwrap();
    assert!(
        !html.contains("cid:") && html.contains("src=\"test-load-high.png\""),
        "{html}"
    );
    assert_eq!(
        decode_png(&std::fs::read(out.join("test-load-high.png")).unwrap()),
        (640, 280)
    );
    let eml = std::fs::read(out.join("test-load-high.eml")).unwrap();
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(
        mime_tree(&msg, 0),
        "multipart/alternative(text/plain,multipart/related(text/html,image/png))"
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alerting-mail.png");
    chromium(
        &[
            "--window-size=760,1000",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", out.join("test-load-high.html").display()),
        ],
        &dir.path().join("chromium-profile"),
    );
    let page = std::fs::read(&shot).unwrap();
    assert!(
        count_color(&page, (198, 40, 40)) > 10_000,
        "the red [ALERT] header ({})",
        shot.display()
    );
    assert!(
        count_color(&page, (255, 0, 0)) > 200,
        "the graph's red threshold line ({})",
        shot.display()
    );
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 alert rules in 2 files OK"));
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

fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
    );
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
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

#[test]
fn status_pages_in_headless_chromium() {
    let sink = Sink::start();
    let rules = r#"
[[alert]]
name = "Disk full"
target = "test.disk.used"
threshold = 90
direction = "above"
runbook = "https://wiki.test.example/disk"

[[alert]]
name = "Load fine"
target = "test.load"
threshold = 4
direction = "above"
type = "notice"

[[alert]]
name = "Gone quiet"
target = "test.missing.*"
threshold = 1
direction = "below"
"#;
    let Setup { dir, settings } = setup(&sink, rules);
    let rt = runtime();
    let running = rt.block_on(server::start(settings)).unwrap();
    let t = now();
    let mut lines = String::new();
    // An hour of 10-second points (the default schema's finest archive), so that the 24 h
    // graphs, read from the 1-minute archive, have data (whisper propagates a minute only when
    // half its 10-second slots are known: xFilesFactor 0.5).
    for i in (0..360).rev() {
        lines.push_str(&format!(
            "test.disk.used {} {}\n",
            95.0 - i as f64 * 0.05,
            t - i * 10
        ));
        lines.push_str(&format!(
            "test.load {} {}\n",
            1.0 + (i % 7) as f64 * 0.1,
            t - i * 10
        ));
    }
    push(&running, &lines);
    wait_until(Duration::from_secs(30), "all three states", || {
        let j = alerts_json(&running);
        let states: Vec<String> = j["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["state"].as_str().unwrap_or("").to_string())
            .collect();
        // …and the failing rule was evaluated after the last point arrived (its value is the
        // newest, 95), not during the burst.
        let latest = j["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "failed" && r["value"] == 95.0);
        states == ["failed", "ok", "nodata"] && latest
    });

    let profile = dir.path().join("chromium-profile");
    let base = format!("http://{}", running.addrs.http);
    let dom =
        String::from_utf8(chromium(&["--dump-dom", &format!("{base}/")], &profile).stdout).unwrap();
    for (slug, class, name) in [
        ("disk-full", "state-failed", "Disk full"),
        ("load-fine", "state-ok", "Load fine"),
        ("gone-quiet", "state-nodata", "Gone quiet"),
    ] {
        let want = format!("<a class=\"rule {class}\" id=\"rule-{slug}\" href=\"/alerts/{slug}\"");
        assert!(dom.contains(&want), "{want} in\n{dom}");
        assert!(
            dom.contains(&format!("<div class=\"name\">{name}</div>")),
            "{name}"
        );
    }
    assert!(
        dom.contains("<div class=\"value\">95</div>"),
        "the failing value is shown: {dom}"
    );
    assert!(dom.contains("http-equiv=\"refresh\""), "auto-refresh");

    // The squares are painted in their colours: red, green and grey as the stylesheet says.
    let shot = dir.path().join("status.png");
    chromium(
        &[
            "--window-size=1000,700",
            &format!("--screenshot={}", shot.display()),
            &format!("{base}/"),
        ],
        &profile,
    );
    let png_bytes = std::fs::read(&shot).unwrap();
    let artifact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alerting-status.png");
    std::fs::write(&artifact, &png_bytes).unwrap();
    let square = 150 * 150;
    for (what, rgb) in [
        ("failed red #c62828", (198, 40, 40)),
        ("ok green #2e7d32", (46, 125, 50)),
        ("no-data grey #9e9e9e", (158, 158, 158)),
    ] {
        let n = count_color(&png_bytes, rgb);
        assert!(
            n > square,
            "{what}: {n} pixels in the screenshot {}",
            artifact.display()
        );
    }

    // The rule page: its facts, state, history and both graphs from our own /render.
    let dom = String::from_utf8(
        chromium(
            &["--dump-dom", &format!("{base}/alerts/disk-full")],
            &profile,
        )
        .stdout,
    )
    .unwrap();
    assert!(
        dom.contains("<span class=\"badge state-failed\" id=\"state\">FAILED</span>"),
        "{dom}"
    );
    assert!(dom.contains("<td id=\"target\">test.disk.used</td>"));
    assert!(dom.contains("value above 90 (threshold included)"));
    assert!(dom.contains("https://wiki.test.example/disk"));
    assert!(dom.contains("oncall@test.example"));
    assert!(
        dom.contains("FAILED: test.disk.used = 95, above 90"),
        "history: {dom}"
    );
    let re = regex::Regex::new(r#"<img id="graph-(24h|7d)"[^>]* src="([^"]+)""#).unwrap();
    let srcs: Vec<(String, String)> = re
        .captures_iter(&dom)
        .map(|c| (c[1].to_string(), c[2].replace("&amp;", "&")))
        .collect();
    assert_eq!(
        srcs.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        vec!["24h", "7d"]
    );
    for (_, src) in &srcs {
        assert!(
            src.starts_with("/render?target=test.disk.used&target="),
            "{src}"
        );
        assert!(
            src.contains("threshold%2890.0"),
            "the threshold is drawn: {src}"
        );
        let (status, ct, body) = get(&running, src);
        assert_eq!(
            (status, ct.as_str()),
            (200, "image/png"),
            "{src}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(decode_png(&body), (900, 300));
    }
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alerting-rule.png");
    chromium(
        &[
            "--window-size=1000,1400",
            &format!("--screenshot={}", shot.display()),
            &format!("{base}/alerts/disk-full"),
        ],
        &profile,
    );
    let rule_png = std::fs::read(&shot).unwrap();
    assert!(
        count_color(&rule_png, (255, 0, 0)) > 500,
        "the red threshold line shows in the page's graphs ({})",
        shot.display()
    );
    assert!(
        count_color(&rule_png, (0x1f, 0x5f, 0xa8)) > 300,
        "the series is drawn in the page's graphs ({})",
        shot.display()
    );

    let (status, _, _) = get(&running, "/alerts/no-such-rule");
    assert_eq!(status, 404);
    rt.block_on(running.shutdown());
}
