//! Retention mismatches reported and migrated online, with the real server binary, real
//! carbon plaintext over TCP and whisper 1.1's own Python module reading every file back.
//!
//! A server starts with storage-schemas A (`60s:1d`) and gets a few hundred metrics with
//! points spread over the past hours; a sender keeps writing new (past) points every 100 ms.
//! The rules change to B (`60s:7d,10m:30d`, which keeps A's resolution, so every point must
//! survive exactly) and the server gets SIGHUP: with `migrate_retentions = false` `/health`
//! and `check-config --data` (exit 1) report every file and nothing changes on disk. Restarted
//! with `migrate_retentions = true` (and A, so nothing to do), then given B and SIGHUP again,
//! the server migrates every file while the sender goes on; then every file has B's archives
//! and every point ever sent (read by whisper's module and through `/render`), and
//! `check-config --data` exits 0.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{now, python, unsafe_kill, wait_for, Server};

const METRICS: usize = 300;
/// Initial points per metric, one every 10 minutes.
const INITIAL: i64 = 30;
/// Metrics the live sender writes to every 100 ms.
const PER_TICK: usize = 100;
const SCHEMAS_A: &str = "[all]\npattern = .*\nretentions = 60s:1d\n";
const SCHEMAS_B: &str = "[all]\npattern = .*\nretentions = 60s:7d,10m:30d\n";

fn metric(i: usize) -> String {
    format!("migrate.host{:02}.m{i:03}", i % 17)
}

/// A point sent: metric index, timestamp, value.
type Sent = (usize, i64, f64);

/// Writes `carbonhound.toml` (self metrics off, so only our metrics have files) with
/// `migrate` as `[cache] migrate_retentions`; the config's path.
fn write_config(dir: &Path, migrate: bool) -> PathBuf {
    let config = dir.join("carbonhound.toml");
    let text = format!(
        "data_dir = {data:?}\n\
         [carbon]\nplaintext_tcp = \"127.0.0.1:0\"\nplaintext_udp = \"127.0.0.1:0\"\n\
         pickle_tcp = \"127.0.0.1:0\"\nschemas = {schemas:?}\nstats_interval = \"0s\"\n\
         [cache]\nindex_rescan_interval = \"0s\"\nwrite_interval = \"0s\"\n\
         migrate_retentions = {migrate}\n\
         migrate_per_second = 40\n\
         [http]\nlisten = \"127.0.0.1:0\"\n",
        data = dir.join("data").display().to_string(),
        schemas = dir.join("storage-schemas.conf").display().to_string(),
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// The live sender: every 100 ms, one new point for each of the next [`PER_TICK`] metrics
/// (round robin), at that metric's next unused minute from `live_base` (all in the past,
/// distinct). Busy enough that a persister write landing in the old file while it is being
/// migrated (a point lost) is all but certain if the metric were not held.
struct Sender {
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<Sent>>>,
    handle: std::thread::JoinHandle<Vec<i64>>,
}

impl Sender {
    fn start(tcp: SocketAddr, live_base: i64, mut next: Vec<i64>) -> Sender {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (s, log) = (stop.clone(), sent.clone());
        let handle = std::thread::spawn(move || {
            let mut conn = TcpStream::connect(tcp).expect("connect carbon");
            let mut turn = 0usize;
            while !s.load(Ordering::Relaxed) {
                let mut text = String::new();
                let mut batch = Vec::new();
                for _ in 0..PER_TICK {
                    let m = turn % METRICS;
                    turn += 1;
                    let k = next[m];
                    next[m] += 1;
                    let ts = live_base + 60 * k;
                    let value = (m * 100_000 + 50_000) as f64 + k as f64 + 0.25;
                    text.push_str(&format!("{} {value} {ts}\n", metric(m)));
                    batch.push((m, ts, value));
                }
                conn.write_all(text.as_bytes()).expect("send live points");
                log.lock().unwrap().extend(batch);
                std::thread::sleep(Duration::from_millis(100));
            }
            conn.flush().unwrap();
            let _ = conn.shutdown(std::net::Shutdown::Write);
            next
        });
        Sender { stop, sent, handle }
    }

    fn sent_so_far(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// Stops it; (every point sent, each metric's next minute).
    fn stop(self) -> (Vec<Sent>, Vec<i64>) {
        self.stop.store(true, Ordering::Relaxed);
        let next = self.handle.join().unwrap();
        let sent = std::mem::take(&mut *self.sent.lock().unwrap());
        (sent, next)
    }
}

/// `carbonhound check-config --config F --data`: (exit code, stdout).
fn check_data(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(["check-config", "--data", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn retentions(server: &Server) -> serde_json::Value {
    server.get_json("/health")["retentions"].clone()
}

/// Every file read with whisper's own module over `from..until`: path → JSON (info, fetch).
fn read_all(whisper_dir: &Path, from: i64, until: i64) -> Vec<serde_json::Value> {
    let script = std::fs::read_to_string("tests/support/whisper_read.py").unwrap();
    let mut args = vec![from.to_string(), until.to_string()];
    args.extend((0..METRICS).map(|i| file_of(whisper_dir, i).display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(&script, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn file_of(whisper_dir: &Path, i: usize) -> PathBuf {
    whisper_dir.join(format!("{}.wsp", metric(i).replace('.', "/")))
}

fn archives(read: &serde_json::Value) -> Vec<(u64, u64)> {
    read["info"]["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["secondsPerPoint"].as_u64().unwrap(),
                a["points"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(temp_files(&e.path()));
        } else if e.file_name().to_string_lossy().ends_with(".migrating") {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn mismatches_are_reported_then_migrated_under_ingest_without_losing_a_point() {
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("storage-schemas.conf");
    std::fs::write(&schemas, SCHEMAS_A).unwrap();
    let config = write_config(dir.path(), false);
    let config_arg = config.display().to_string();
    let mut server = Server::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    let whisper_dir = server.whisper_dir();

    let start = now();
    let aligned = start - start % 60;
    // Initial points: every 10 minutes from 6 h to 1 h ago.
    let initial_base = aligned - 6 * 3600;
    let mut sent: Vec<Sent> = Vec::new();
    let mut text = String::new();
    for m in 0..METRICS {
        for j in 0..INITIAL {
            let ts = initial_base + 600 * j;
            let value = (m * 100_000) as f64 + j as f64;
            text.push_str(&format!("{} {value} {ts}\n", metric(m)));
            sent.push((m, ts, value));
        }
    }
    server.send_tcp(&text);
    let total = (METRICS as i64 * INITIAL) as u64;
    wait_for(60, "initial points on disk", || {
        let h = server.get_json("/health");
        (h["store"]["committedPoints"].as_u64() >= Some(total)).then_some(())
    });
    // The start-up scan (of an empty directory) found nothing to do.
    let r = wait_for(30, "start-up scan", || {
        let r = retentions(&server);
        (r["scan"] == "done").then_some(r)
    });
    assert_eq!(r["mismatched"], 0, "{r}");

    // Live points: each metric's minutes from 20 hours ago on, never reused (about three a
    // second per metric; the test takes far less than the 14 hours before the initial ones).
    let live_base = aligned - 20 * 3600;
    let sender = Sender::start(server.tcp, live_base, vec![0; METRICS]);
    std::thread::sleep(Duration::from_secs(1));

    // --- Rules changed to B, SIGHUP, migrate_retentions = false: reported, nothing changes.
    std::fs::write(&schemas, SCHEMAS_B).unwrap();
    unsafe_kill(server.child.as_ref().unwrap().id(), 1);
    let r = wait_for(60, "the SIGHUP scan to report every file", || {
        let r = retentions(&server);
        (r["scan"] == "done" && r["mismatched"] == METRICS).then_some(r)
    });
    assert_eq!(r["checked"], METRICS, "{r}");
    assert_eq!(r["migrate"], false);
    assert_eq!(
        r["aggregation_mismatched"], 0,
        "the aggregation rules did not change"
    );
    assert_eq!(r["migrated"], 0);
    assert_eq!(r["failed"], 0);
    let examples = r["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 10, "{r}");
    for e in examples {
        assert!(e["metric"].as_str().unwrap().starts_with("migrate.host"));
        assert_eq!(e["file_retentions"], "1m:1d");
        assert_eq!(e["rule"], "all");
        assert_eq!(e["rule_retentions"], "1m:7d,10m:30d");
    }
    wait_for(10, "the WARN naming the key", || {
        server
            .log_lines()
            .iter()
            .any(|l| {
                l.contains("WARN")
                    && l.contains("300 of 300")
                    && l.contains("migrate_retentions = true")
            })
            .then_some(())
    });
    let (code, out) = check_data(&config);
    assert_eq!(code, 1, "{out}");
    let listed: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": file 1m:1d, rule all wants 1m:7d,10m:30d"))
        .collect();
    assert_eq!(listed.len(), METRICS, "{out}");
    for i in 0..METRICS {
        let path = file_of(&whisper_dir, i).display().to_string();
        assert!(
            listed
                .iter()
                .any(|l| l.starts_with(&format!("{} ({path})", metric(i)))),
            "{} not listed",
            metric(i)
        );
    }
    assert!(out.contains("300 of 300 whisper files"), "{out}");
    assert!(out.contains("migrate_retentions = true"), "{out}");
    assert!(!out.contains("aggregation:"), "{out}");
    std::thread::sleep(Duration::from_secs(2));
    let before = read_all(&whisper_dir, aligned - 3600, now());
    assert_eq!(before.len(), METRICS);
    for f in &before {
        assert_eq!(archives(f), vec![(60, 1440)], "unchanged: {}", f["path"]);
    }
    assert!(temp_files(&whisper_dir).is_empty());

    // --- Restarted with migrate_retentions = true and the old rules (nothing to do), then
    // B again with SIGHUP: migrated online, under ingest.
    let (phase1, next) = sender.stop();
    sent.extend(phase1);
    assert!(server.terminate().success());
    write_config(dir.path(), true);
    std::fs::write(&schemas, SCHEMAS_A).unwrap();
    let server = Server::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    let r = wait_for(60, "the start-up scan", || {
        let r = retentions(&server);
        (r["scan"] == "done").then_some(r)
    });
    assert_eq!(
        (r["checked"].as_u64(), r["mismatched"].as_u64()),
        (Some(METRICS as u64), Some(0))
    );
    let sender = Sender::start(server.tcp, live_base, next);
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&schemas, SCHEMAS_B).unwrap();
    unsafe_kill(server.child.as_ref().unwrap().id(), 1);
    let r = wait_for(120, "every file migrated", || {
        let r = retentions(&server);
        assert_eq!(r["failed"], 0, "{r}");
        (r["migrated"] == METRICS).then_some(r)
    });
    let during = sender.sent_so_far();
    assert!(
        during >= 50,
        "the sender ran during the migration ({during} points)"
    );
    assert_eq!(r["migrate"], true);
    assert_eq!(r["mismatched"], METRICS);
    std::thread::sleep(Duration::from_secs(1));
    let (phase2, _) = sender.stop();
    sent.extend(phase2);
    wait_for(60, "the cache flushed", || {
        let h = server.get_json("/health");
        (h["cache"]["size"] == 0).then_some(())
    });
    let r = retentions(&server);
    assert_eq!(
        (r["scan"].as_str(), r["failed"].as_u64()),
        (Some("done"), Some(0))
    );
    assert!(temp_files(&whisper_dir).is_empty());

    // Every file: B's archives, every point ever sent with its value.
    let from = live_base.min(initial_base) - 60;
    let after = read_all(&whisper_dir, from, now());
    assert_eq!(after.len(), METRICS);
    let mut checked = 0;
    for (i, f) in after.iter().enumerate() {
        assert_eq!(archives(f), vec![(60, 10080), (600, 4320)], "{}", f["path"]);
        let fetch = &f["fetch"];
        assert_eq!(fetch["step"], 60);
        let first = fetch["from"].as_i64().unwrap();
        let values = fetch["values"].as_array().unwrap();
        for &(m, ts, value) in sent.iter().filter(|p| p.0 == i) {
            let at = ((ts - first) / 60) as usize;
            assert_eq!(
                values[at].as_f64(),
                Some(value),
                "{} at {ts}: point lost or changed",
                metric(m)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, sent.len());
    // The server reads the new files too (its open readers forgot the old ones).
    let until = now();
    let rendered = server.get_json(&format!(
        "/render?target=migrate.*.*&format=json&from={from}&until={until}"
    ));
    let rendered = rendered.as_array().unwrap();
    assert_eq!(rendered.len(), METRICS);
    for series in rendered {
        let name = series["target"].as_str().unwrap();
        let i: usize = name.rsplit_once(".m").unwrap().1.parse().unwrap();
        let points: std::collections::HashMap<i64, f64> = series["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| Some((p[1].as_i64()?, p[0].as_f64()?)))
            .collect();
        for &(_, ts, value) in sent.iter().filter(|p| p.0 == i) {
            assert_eq!(points.get(&ts), Some(&value), "/render {name} at {ts}");
        }
    }
    let live = sent.iter().filter(|p| p.1 >= live_base).count();
    assert!(live > 500, "{live} live points sent");
    let (code, out) = check_data(&config);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all 300 whisper files"), "{out}");
}
