//! The path a new user walks first: the real collectd daemon pushes to carbonhound's carbon
//! listener, metrics appear in `/metrics/find`, `/render` returns their recent values, and
//! Python's whisper module reads the same values from the `.wsp` files. Also: bad carbon lines
//! are refused and counted while good lines on the same connection are stored, and PNG graphs
//! come out at the requested size.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{enc, now, python, wait_for, Server};

struct Collectd(Child);

impl Drop for Collectd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_collectd(dir: &std::path::Path, port: u16) -> Collectd {
    let conf = dir.join("collectd.conf");
    std::fs::write(
        &conf,
        format!(
            r#"Hostname "e2e-host"
FQDNLookup false
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin load
LoadPlugin memory
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "carbonhound">
    Host "127.0.0.1"
    Port "{port}"
    Protocol "tcp"
    Prefix "collectd."
    StoreRates true
  </Node>
</Plugin>
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    let bin = ["/usr/sbin/collectd", "/usr/bin/collectd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the collectd daemon is required for this test: apt-get install collectd-core");
    let child = Command::new(bin)
        .arg("-f")
        .arg("-C")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start collectd");
    Collectd(child)
}

fn datapoints(v: &serde_json::Value) -> Vec<(Option<f64>, i64)> {
    v["datapoints"]
        .as_array()
        .expect("datapoints")
        .iter()
        .map(|p| (p[0].as_f64(), p[1].as_i64().expect("timestamp")))
        .collect()
}

#[test]
fn collectd_metrics_reach_render_and_whisper_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let _collectd = start_collectd(dir.path(), server.tcp.port());

    // Within 15 s, /metrics/find lists collectd's host node.
    let found = wait_for(15, "collectd.* in /metrics/find", || {
        let v = server.get_json("/metrics/find?query=collectd.*");
        let nodes = v.as_array()?.clone();
        nodes
            .iter()
            .any(|n| n["text"] == "e2e-host" && n["leaf"] == 0)
            .then_some(nodes)
    });
    assert_eq!(found[0]["id"], "collectd.e2e-host");
    assert_eq!(found[0]["expandable"], 1);

    let load = "collectd.e2e-host.load.load.shortterm";
    let leaves = server.get_json("/metrics/find?query=collectd.e2e-host.load.load.*");
    let names: Vec<&str> = leaves
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["longterm", "midterm", "shortterm"]);

    // /render returns non-null recent values.
    let series = wait_for(15, "non-null recent load values", || {
        let v = server.get_json(&format!("/render?target={load}&from=-5min&format=json"));
        let s = v.as_array()?.first()?.clone();
        let recent_known = datapoints(&s)
            .iter()
            .rev()
            .take(3)
            .any(|(v, _)| v.is_some());
        recent_known.then_some(s)
    });
    assert_eq!(series["target"], load);
    let points = datapoints(&series);
    assert_eq!(points.len(), 30, "5 minutes at the default 10 s precision");
    assert!(points.windows(2).all(|w| w[1].1 - w[0].1 == 10));
    let last_ts = points.last().unwrap().1;
    assert!((now() - last_ts).abs() <= 20, "last point is recent");

    // Python's whisper module reads the same values from the file, once it is on disk.
    let wsp = server
        .whisper_dir()
        .join("collectd/e2e-host/load/load/shortterm.wsp");
    wait_for(15, "the load metric's whisper file", || {
        wsp.exists().then_some(())
    });
    let script = r#"
import json, sys, time, whisper
info = whisper.info(sys.argv[1])
(start, end, step), values = whisper.fetch(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
print(json.dumps({"step": step, "start": start, "values": values, "archives": len(info["archives"]), "agg": info["aggregationMethod"]}))
"#;
    // Three 10 s intervals of collectd's points must be written: up to a minute on a loaded
    // machine (the wait ends as soon as they are).
    let (py, from, until): (serde_json::Value, i64, i64) = wait_for(60, "points on disk", || {
        let (from, until) = (now() - 300, now());
        let out: serde_json::Value = serde_json::from_str(&python(
            script,
            &[wsp.to_str().unwrap(), &from.to_string(), &until.to_string()],
        ))
        .unwrap();
        let known = out["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| !v.is_null())
            .count();
        (known >= 3).then_some((out, from, until))
    });
    assert_eq!(py["step"], 10);
    assert_eq!(py["archives"], 3, "embedded schema 10s:6h,1m:7d,10m:1y");
    assert_eq!(py["agg"], "average");
    let v = server.get_json(&format!(
        "/render?target={load}&from={from}&until={until}&format=json"
    ));
    let ours = datapoints(&v[0]);
    let py_start = py["start"].as_i64().unwrap();
    let mut compared = 0;
    for (i, pv) in py["values"].as_array().unwrap().iter().enumerate() {
        let ts = py_start + 10 * i as i64;
        // Intervals still receiving points may hold a newer cached value than the file.
        if ts > until - 20 {
            continue;
        }
        if let Some(pv) = pv.as_f64() {
            let ov = ours.iter().find(|(_, t)| *t == ts).and_then(|(v, _)| *v);
            assert_eq!(ov, Some(pv), "value at {ts}: ours vs whisper.py");
            compared += 1;
        }
    }
    assert!(compared >= 1, "compared at least one settled interval");
}

#[test]
fn bad_carbon_lines_are_refused_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let t = now() - 5;
    let bad = [
        "garbage".to_string(),
        format!("bad.nan nan {t}"),
        format!("bad.inf inf {t}"),
        format!("bad.word abc {t}"),
        format!("bad..empty 1 {t}"),
        format!(".bad.leading 1 {t}"),
        format!("../../escape 1 {t}"),
        format!("bad/slash 1 {t}"),
        "bad.ts 1 yesterday".to_string(),
        format!("{} 1 {t}", "x".repeat(5000)),
    ];
    let mut text = String::new();
    for (i, b) in bad.iter().enumerate() {
        text.push_str(&format!("good.before.m{i} {i} {t}\n"));
        text.push_str(b);
        text.push('\n');
    }
    text.push_str(&format!("good.after 42 {t}\n"));
    server.send_tcp(&text);

    // Every good line is stored; no bad name exists anywhere.
    wait_for(10, "good.after stored", || {
        let v = server.get_json("/render?target=good.after&from=-1min&format=json");
        v.as_array()?.first()?["datapoints"]
            .as_array()?
            .iter()
            .any(|p| p[0] == 42.0)
            .then_some(())
    });
    let befores = server.get_json("/metrics/find?query=good.before.*");
    assert_eq!(befores.as_array().unwrap().len(), bad.len());
    let v = server.get_json("/render?target=good.before.m3&from=-1min&format=json");
    assert!(v[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p[0] == 3.0));
    let all = server.get_json("/metrics/index.json");
    let all: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        all.iter().all(|n| n.starts_with("good.")),
        "only good metrics exist: {all:?}"
    );

    // Nothing was written outside the whisper directory.
    wait_for(10, "good files on disk", || {
        server
            .whisper_dir()
            .join("good/after.wsp")
            .exists()
            .then_some(())
    });
    let mut outside = Vec::new();
    for entry in walk(dir.path()) {
        if entry.extension().is_some_and(|e| e == "wsp") && !entry.starts_with(server.whisper_dir())
        {
            outside.push(entry);
        }
    }
    assert!(
        outside.is_empty(),
        "whisper files outside the data dir: {outside:?}"
    );
    assert!(!dir.path().join("escape.wsp").exists());

    // Each refusal was logged with its reason.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log_lines().join("\n");
    for reason in [
        "expected 'path value timestamp'",
        "value is not a number",
        "empty path component",
        "forbidden character '/'",
        "timestamp is not a number",
        "longer than carbon.max_line_length",
    ] {
        assert!(
            log.contains(reason),
            "log should mention {reason:?}:\n{log}"
        );
    }
    // NaN and infinite values are dropped as carbon drops them: not logged as refusals.
    assert!(
        !log.contains("bad.nan") && !log.contains("bad.inf"),
        "NaN/inf lines are dropped silently:\n{log}"
    );
    let h = server.get_json("/health");
    assert_eq!(h["listeners"]["plaintext_tcp"]["nan_dropped"], 2, "{h}");
    assert!(server.terminate().success());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn png_graphs_have_the_requested_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let t = now();
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!(
            "web.load {} {}\n",
            (i % 7) as f64 * 0.5,
            t - 300 + i * 10
        ));
    }
    server.send_tcp(&text);
    wait_for(10, "web.load visible", || {
        let v = server.get_json("/render?target=web.load&from=-10min&format=json");
        (!v.as_array()?.is_empty()).then_some(())
    });
    for (w, h) in [(640, 480), (330, 250), (1200, 300)] {
        let q = format!("/render?target={}&from=-10min&width={w}&height={h}&format=png&title=Load&bgcolor=FFFFFF&fgcolor=000000", enc("alias(web.load,'load')"));
        let (status, ct, body) = server.get(&q);
        assert_eq!(status, 200);
        assert_eq!(ct, "image/png");
        let decoder = png::Decoder::new(&body[..]);
        let reader = decoder.read_info().expect("a valid PNG");
        assert_eq!((reader.info().width, reader.info().height), (w, h));
    }
    // No data still answers with a picture.
    let (status, ct, body) =
        server.get("/render?target=nothing.here&format=png&width=200&height=100");
    assert_eq!((status, ct.as_str()), (200, "image/png"));
    assert!(png::Decoder::new(&body[..]).read_info().is_ok());
    // A bad target is a 400 that says where.
    let (status, _, body) = server.get(&format!(
        "/render?target={}&format=json",
        enc("sumSeries(web.load")
    ));
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("at character 18"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// The whole path of issue #2: collectd's load metric, a rule with threshold 0 above on it,
/// a real SMTP server (aiosmtpd) receiving one alert whose MIME tree holds text/plain,
/// text/html with an inline `cid:` image and a decodable PNG; a restart does not send it
/// again; once the condition clears (the rule's threshold is raised) a recovery mail arrives.
#[test]
fn collectd_load_alert_mail_restart_and_recovery() {
    use mail_parser::{MessageParser, MimeHeaders};

    let sink = common::Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("alerts.d");
    std::fs::create_dir(&rules).unwrap();
    let rule = |threshold: &str| {
        format!("[[alert]]\nname = \"Load on e2e-host\"\ntarget = \"collectd.e2e-host.load.load.shortterm\"\nthreshold = {threshold}\ndirection = \"above\"\nrunbook = \"https://wiki.example.com/load\"\n")
    };
    std::fs::write(rules.join("load.toml"), rule("0")).unwrap();
    let port = sink.port.to_string();
    let env = [
        ("CARBONHOUND_ALERTING__INTERVAL", "1s"),
        ("CARBONHOUND_ALERTING__EMAIL_TO", "oncall@example.com"),
        ("CARBONHOUND_SMTP__HOST", "127.0.0.1"),
        ("CARBONHOUND_SMTP__PORT", port.as_str()),
    ];
    let mut server = Server::start_in(dir.path(), &env);
    let collectd = start_collectd(dir.path(), server.tcp.port());

    let msgs = sink.wait_for(1, Duration::from_secs(60));
    assert_eq!(msgs.len(), 1, "one alert mail");
    let msg = MessageParser::default()
        .parse(&msgs[0])
        .expect("a MIME message");
    let subject = msg.subject().unwrap_or("");
    assert!(
        subject.starts_with("[CRIT] Load on e2e-host: collectd.e2e-host.load.load.shortterm ")
            && subject.ends_with(" (crit 0)"),
        "{subject}"
    );
    let mut kinds = Vec::new();
    let mut cid_in_html = None;
    let mut png_cids = Vec::new();
    for part in msg.parts.iter() {
        let ct = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .unwrap_or_default();
        match ct.as_str() {
            "text/html" => {
                // minijinja escapes '/' as &#x2f; (valid HTML; browsers decode it in href).
                let html = part
                    .text_contents()
                    .unwrap_or_default()
                    .replace("&#x2f;", "/");
                assert!(
                    html.contains("collectd.e2e-host.load.load.shortterm"),
                    "the target is named"
                );
                assert!(
                    html.contains("https://wiki.example.com/load"),
                    "the runbook is linked"
                );
                let at = html.find("src=\"cid:").expect("an inline image");
                let rest = &html[at + 9..];
                cid_in_html = Some(rest[..rest.find('"').unwrap()].to_string());
            }
            "image/png" => {
                png_cids.extend(
                    part.content_id()
                        .map(|c| c.trim_matches(['<', '>']).to_string()),
                );
                let reader = png::Decoder::new(part.contents())
                    .read_info()
                    .expect("a valid PNG");
                assert!(reader.info().width >= 300 && reader.info().height >= 150);
            }
            _ => {}
        }
        kinds.push(ct);
    }
    for want in ["text/plain", "text/html", "image/png", "multipart/related"] {
        assert!(kinds.iter().any(|k| k == want), "{want} in {kinds:?}");
    }
    assert_eq!(
        png_cids.len(),
        2,
        "graphs of the last hour and the last 24 hours"
    );
    assert!(
        cid_in_html.is_some_and(|c| png_cids.contains(&c)),
        "the HTML shows the attached PNGs"
    );

    // A restart does not send the alert again.
    assert!(server.terminate().success());
    let server2 = Server::start_in(dir.path(), &env);
    drop(collectd);
    let _collectd = start_collectd(dir.path(), server2.tcp.port());
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(sink.messages().len(), 1, "no second alert after a restart");

    // The condition clears: a recovery mail.
    std::fs::write(rules.join("load.toml"), rule("1000")).unwrap();
    let msgs = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(msgs.len(), 2, "a recovery mail");
    let msg = MessageParser::default().parse(&msgs[1]).unwrap();
    assert_eq!(
        msg.subject(),
        Some("[RECOVERED] Load on e2e-host: rule changed: crit 0 → 1000"),
        "a recovery caused by the edit says so"
    );
}

/// `carbon.max_connections` bounds the connections served at once: a connection beyond the
/// limit waits while the others are busy (they sent within the last second), and once they go
/// quiet the longest-idle one is closed (drained, counted as `evicted`) to admit it; nothing
/// sent is lost.
#[test]
fn connections_beyond_the_limit_wait_while_busy_then_evict_the_longest_idle() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_CARBON__MAX_CONNECTIONS", "2")]);
    let t = now() - 5;
    let mut first = std::net::TcpStream::connect(server.tcp).unwrap();
    let mut second = std::net::TcpStream::connect(server.tcp).unwrap();
    first
        .write_all(format!("limit.first 1 {t}\n").as_bytes())
        .unwrap();
    second
        .write_all(format!("limit.second 2 {t}\n").as_bytes())
        .unwrap();
    wait_for(10, "both served", || {
        (server
            .get_json("/metrics/find?query=limit.*")
            .as_array()?
            .len()
            == 2)
            .then_some(())
    });
    let mut third = std::net::TcpStream::connect(server.tcp).unwrap();
    third
        .write_all(format!("limit.third 3 {t}\n").as_bytes())
        .unwrap();
    // Both served connections stay busy for 1.5 s: the third waits.
    for i in 0..15 {
        first
            .write_all(format!("limit.busy1 {i} {}\n", t - 10 * (15 - i)).as_bytes())
            .unwrap();
        second
            .write_all(format!("limit.busy2 {i} {}\n", t - 10 * (15 - i)).as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        server
            .get_json("/metrics/find?query=limit.third")
            .as_array()
            .unwrap()
            .is_empty(),
        "the third waits while the others are busy"
    );
    // They go quiet: the longest-idle is closed and the third gets in.
    wait_for(10, "the third served once a connection is idle", || {
        (server
            .get_json("/metrics/find?query=limit.third")
            .as_array()?
            .len()
            == 1)
            .then_some(())
    });
    wait_for(10, "one connection counted as evicted", || {
        let h = server.get_json("/health");
        (h["listeners"]["plaintext_tcp"]["evicted"] == 1).then_some(())
    });
    // Nothing the busy connections sent was lost.
    for m in ["limit.busy1", "limit.busy2"] {
        let v = server.get_json(&format!("/render?target={m}&from=-5min&format=json"));
        let known = v[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0].is_number())
            .count();
        assert_eq!(known, 15, "{m}: {v}");
    }
    drop(first);
    drop(second);
    drop(third);
}
