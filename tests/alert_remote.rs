//! Remote mode of alerting (`[alerting].graphite_url`) against real parts: whisper files
//! written by Python's `whisper` module (Debian's python3-whisper), served by the real
//! graphite-web 1.1.8 (Debian's graphite-web, started as an HTTP server by
//! `tests/common/graphite_web.rs`), carbonhound started in-process, and the real SMTP server
//! of `tests/support/smtp_sink.py` (aiosmtpd) receiving the mail. A missing graphite-web,
//! whisper module or aiosmtpd FAILS these tests.
//!
//! - `render_matches_graphite_web_and_local_evaluation`: `RemoteGraphite::render` of a plain
//!   metric, a glob, `sumSeries(...)` and a series with nulls gives the names, tags,
//!   timestamps and values of graphite-web's own JSON, of carbonhound's in-process evaluation
//!   of the same files, and of another carbonhound's `/render`.
//! - `a_rule_fails_on_remote_data_and_mails_a_graph_of_it`: a server whose own store is
//!   empty mails the alert with the value and a graph drawn from graphite-web's series.
//! - `graphite_web_down_puts_the_rule_in_error_naming_the_url`: the rule goes from ok to
//!   error, its message naming the render URL, and one `[ERROR]` mail goes to the administrator.

mod common;

use std::path::Path;
use std::time::Duration;

use carbonhound::alert::RemoteGraphite;
use carbonhound::config::{GraphiteUrl, Settings, StorageRules};
use carbonhound::query::{evaluate, QueryLimits, Request, Series};
use carbonhound::server::{self, Running};
use carbonhound::store::Store;
use carbonhound::whisper::Preallocation;
use common::graphite_web::GraphiteWeb;
use common::{now, runtime, wait_for, Sink};
use mail_parser::{MessageParser, MimeHeaders};

/// Writes the test's whisper files under argv[1], points on the minute up to argv[2]:
/// `remote.web1.load` ending at 7.25, `remote.web2.load`, and `remote.gappy.count` with every
/// third minute missing (nulls). Retention 60s:1d, as carbon's default schema for these.
const WRITE_WHISPER: &str = r#"
import os, sys, whisper
root, end = sys.argv[1], int(sys.argv[2])
def write(name, points):
    path = os.path.join(root, *name.split('.')) + '.wsp'
    os.makedirs(os.path.dirname(path), exist_ok=True)
    whisper.create(path, [(60, 1440)], xFilesFactor=0.5, aggregationMethod='average')
    whisper.update_many(path, points)
minutes = range(40, -1, -1)
write('remote.web1.load', [(end - 60 * k, 7.25 - 0.125 * k) for k in minutes])
write('remote.web2.load', [(end - 60 * k, 1.5 + (k % 4)) for k in minutes])
write('remote.gappy.count', [(end - 60 * k, float(k)) for k in minutes if k % 3 != 1])
"#;

/// The last minute boundary, the end of the data written.
fn data_end() -> i64 {
    let t = now();
    t - t % 60
}

fn write_whisper(dir: &Path, end: i64) {
    std::fs::create_dir_all(dir).unwrap();
    common::python(WRITE_WHISPER, &[dir.to_str().unwrap(), &end.to_string()]);
}

/// (value, timestamp) pairs of a series, NaN as None (so pairs compare with ==).
fn points(s: &Series) -> Vec<(Option<f64>, i64)> {
    s.datapoints()
        .into_iter()
        .map(|(v, t)| (v.filter(|v| !v.is_nan()), t))
        .collect()
}

/// graphite-web's JSON series as (target, tags, points).
type JsonSeries = (String, serde_json::Value, Vec<(Option<f64>, i64)>);

fn json_series(v: &serde_json::Value) -> Vec<JsonSeries> {
    v.as_array()
        .expect("a list of series")
        .iter()
        .map(|s| {
            let pts = s["datapoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64(), p[1].as_i64().unwrap()))
                .collect();
            (
                s["target"].as_str().unwrap().to_string(),
                s["tags"].clone(),
                pts,
            )
        })
        .collect()
}

fn tags_json(s: &Series) -> serde_json::Value {
    serde_json::to_value(&s.tags).unwrap()
}

const TARGETS: [&str; 4] = [
    "remote.web1.load",
    "remote.*.load",
    "sumSeries(remote.*.load)",
    "remote.gappy.count",
];

/// Settings of an in-process test server under `dir`: free ports, 1-second alert interval,
/// mail to `sink`, links to the address the listener binds.
fn settings(dir: &Path, sink_port: u16) -> Settings {
    let mut s = common::alert_settings(dir, sink_port, "", "");
    s.alerting.base_url = String::new();
    s.query.request_timeout = Duration::from_secs(10);
    s
}

fn render_with(remote: &RemoteGraphite, from: i64, until: i64) -> Vec<Series> {
    let targets: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
    remote
        .render(&targets, from, until)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn render_matches_graphite_web_and_local_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    // The files are both graphite-web's WHISPER_DIR and a carbonhound server's data_dir/whisper.
    let whisper = dir.path().join("data").join("whisper");
    let end = data_end();
    write_whisper(&whisper, end);
    let gw = GraphiteWeb::start(&whisper);
    let (from, until) = (end - 1800, end);

    // graphite-web's own answer to the same one request.
    let query: String = TARGETS
        .iter()
        .map(|t| format!("target={}&", common::enc(t)))
        .collect();
    let reference = json_series(&gw.get_json(&format!(
        "/render?{query}format=json&from={from}&until={until}"
    )));
    let names: Vec<&str> = reference.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "remote.web1.load",
            "remote.web1.load",
            "remote.web2.load",
            "sumSeries(remote.*.load)",
            "remote.gappy.count"
        ]
    );
    assert_eq!(reference[0].2.len(), 30, "30 minutes after `from`");
    assert_eq!(reference[0].2.last(), Some(&(Some(7.25), end)));
    assert!(
        reference[4].2.iter().any(|p| p.0.is_none()),
        "the gappy series has nulls"
    );

    let remote = RemoteGraphite::new(
        GraphiteUrl::parse(&gw.url).unwrap(),
        Duration::from_secs(10),
    );
    let got = render_with(&remote, from, until);
    assert_eq!(got.len(), reference.len());
    for (s, r) in got.iter().zip(&reference) {
        assert_eq!(s.name, r.0);
        assert_eq!(tags_json(s), r.1, "{}: tags", s.name);
        assert_eq!(points(s), r.2, "{}: points", s.name);
        assert_eq!(s.step, 60, "{}", s.name);
        assert_eq!(s.end, end + 60, "{}: last timestamp + step", s.name);
    }

    // carbonhound's in-process evaluation of the same files.
    let store = Store::open(
        &whisper,
        StorageRules::embedded(),
        10_000,
        Preallocation::Sparse,
        0,
    )
    .unwrap();
    let local = evaluate(
        &store,
        &QueryLimits::default(),
        &Request {
            targets: TARGETS.iter().map(|t| t.to_string()).collect(),
            start: from,
            end: until,
            now: until,
            tz: chrono_tz::Tz::UTC,
            x_files_factor: 0.0,
            max_data_points: None,
            template: Vec::new(),
            timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    assert_eq!(local.len(), got.len());
    for (l, s) in local.iter().zip(&got) {
        assert_eq!(l.name, s.name);
        assert_eq!(tags_json(l), tags_json(s), "{}: tags", l.name);
        assert_eq!(points(l), points(s), "{}: points", l.name);
    }
    drop(store);

    // Another carbonhound as the remote: its /render over the same files.
    let sink = Sink::start();
    let rt = runtime();
    let running: Running = rt
        .block_on(server::start(settings(dir.path(), sink.port)))
        .unwrap();
    let other = RemoteGraphite::new(
        GraphiteUrl::parse(&format!("http://{}", running.addrs.http)).unwrap(),
        Duration::from_secs(10),
    );
    let from_carbonhound = render_with(&other, from, until);
    assert_eq!(from_carbonhound.len(), got.len());
    for (c, s) in from_carbonhound.iter().zip(&got) {
        assert_eq!(c.name, s.name);
        assert_eq!(tags_json(c), tags_json(s), "{}: tags", c.name);
        assert_eq!(points(c), points(s), "{}: points", c.name);
    }
    rt.block_on(running.shutdown());
}

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>, usize) {
    let mut reader = png::Decoder::new(bytes).read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG image data");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf, info.color_type.samples())
}

fn rule_state(running: &Running, slug: &str) -> serde_json::Value {
    let (status, _, body) = common::http_get(running.addrs.http, "/alerts.json");
    assert_eq!(status, 200);
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    j["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["slug"] == slug)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

const RULE: &str = r#"
[[alert]]
name = "Remote load high"
target = "remote.web1.load"
threshold = 5
direction = "above"
"#;

#[test]
fn a_rule_fails_on_remote_data_and_mails_a_graph_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let whisper = dir.path().join("graphite-whisper");
    write_whisper(&whisper, data_end());
    let gw = GraphiteWeb::start(&whisper);
    let sink = Sink::start();
    let mut s = settings(dir.path(), sink.port);
    s.alerting.graphite_url = Some(GraphiteUrl::parse(&gw.url).unwrap());
    std::fs::write(s.alerting.rules_dir.join("remote.toml"), RULE).unwrap();
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();

    let msgs = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(msgs.len(), 1, "one alert mail");
    let msg = MessageParser::default().parse(&msgs[0]).unwrap();
    let subject = msg.subject().unwrap_or_default().to_string();
    assert_eq!(
        subject, "[CRIT] Remote load high: remote.web1.load 7.25 (crit 5)",
        "the failing value, from graphite-web, is in the subject"
    );
    let text = msg.body_text(0).unwrap().to_string();
    assert!(text.contains("remote.web1.load"), "{text}");

    // The graph: a PNG with the failing series drawn in its strong colour (#1f5fa8),
    // which only graphite-web's series can have given: this server's store is empty.
    let png_part = msg
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
        })
        .expect("an image/png part");
    let artifact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alert-remote-mail.png");
    std::fs::write(&artifact, png_part.contents()).unwrap();
    let (w, h, pixels, channels) = decode_png(png_part.contents());
    assert_eq!((w, h), (750, 440), "2x a 375 px phone");
    let drawn = pixels
        .chunks(channels)
        .filter(|p| {
            p[0].abs_diff(0x1f) <= 4 && p[1].abs_diff(0x5f) <= 4 && p[2].abs_diff(0xa8) <= 4
        })
        .count();
    assert!(
        drawn > 100,
        "the series is drawn: {drawn} pixels in {}",
        artifact.display()
    );
    let (_, _, own) = common::http_get(
        running.addrs.http,
        "/render?target=remote.web1.load&format=json&from=-1h",
    );
    assert_eq!(own, b"[]", "carbonhound's own store has no such metric");

    let st = rule_state(&running, "remote-load-high");
    assert_eq!(st["state"], "crit", "{st}");
    assert_eq!(st["value"], 7.25, "{st}");
    assert_eq!(st["series"][0]["series"], "remote.web1.load", "{st}");
    assert!(
        gw.log.lock().unwrap().contains("GET /render?"),
        "graphite-web was asked"
    );
    // The rule page's graphs are drawn by graphite-web, which has the data.
    let (_, _, page) = common::http_get(running.addrs.http, "/alerts/remote-load-high");
    let page = String::from_utf8(page).unwrap();
    let img = page
        .split("id=\"graph-24h\"")
        .nth(1)
        .and_then(|rest| rest.split("src=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the 24 h graph")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'");
    assert!(img.starts_with(&format!("{}/render?", gw.url)), "{img}");
    let r = ureq::get(&img).call().expect("graphite-web draws it");
    assert_eq!(r.content_type(), "image/png");
    rt.block_on(running.shutdown());
}

#[test]
fn graphite_web_down_puts_the_rule_in_error_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let whisper = dir.path().join("graphite-whisper");
    write_whisper(&whisper, data_end());
    let mut gw = GraphiteWeb::start(&whisper);
    let sink = Sink::start();
    let mut s = settings(dir.path(), sink.port);
    s.alerting.graphite_url = Some(GraphiteUrl::parse(&gw.url).unwrap());
    // Passing while graphite-web is up: 7.25 is below 100.
    std::fs::write(
        s.alerting.rules_dir.join("remote.toml"),
        RULE.replace("threshold = 5", "threshold = 100"),
    )
    .unwrap();
    let rt = runtime();
    let running = rt.block_on(server::start(s)).unwrap();
    wait_for(30, "the rule to be ok", || {
        (rule_state(&running, "remote-load-high")["state"] == "ok").then_some(())
    });

    gw.stop();
    let st = wait_for(30, "the rule to be in error", || {
        let st = rule_state(&running, "remote-load-high");
        (st["state"] == "error").then_some(st)
    });
    let message = st["message"].as_str().unwrap_or_default();
    let render_url = format!("{}/render", gw.url);
    assert!(
        message.contains(&render_url) && message.contains("connection refused"),
        "the message names the URL: {st}"
    );
    // The administrator (here [alerting].email_to, admin_email being empty) is told.
    let msgs = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(msgs.len(), 1, "one [ERROR] mail");
    let msg = MessageParser::default().parse(&msgs[0]).unwrap();
    let subject = msg.subject().unwrap_or_default();
    assert!(
        subject.starts_with("[ERROR] Remote load high: ") && subject.contains(&render_url),
        "{subject}"
    );
    rt.block_on(running.shutdown());
}
