//! The write-ahead log against the real binary: points accepted over plaintext TCP and only in
//! the cache survive a SIGKILL (replayed at the next start, then on disk as whisper.py reads
//! it), and a SIGTERM leaves no segment behind.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{now, python, unsafe_kill, wait_for, Server};

const METRICS: usize = 30;
const POINTS: usize = 10;

fn health_u64(server: &Server, section: &str, key: &str) -> u64 {
    server.get_json("/health")[section][key]
        .as_u64()
        .unwrap_or_else(|| panic!("/health {section}.{key}"))
}

fn segments(data: &Path) -> Vec<String> {
    match std::fs::read_dir(data.join("wal")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".wal"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Every known `(metric, timestamp) → value` of the `wal.*` files, read with whisper.py.
fn on_disk(whisper_dir: &Path, from: i64) -> BTreeMap<(String, i64), f64> {
    let script = r#"
import os, sys, whisper
root, start = sys.argv[1], int(sys.argv[2])
for d, _, files in os.walk(os.path.join(root, "wal")):
    for f in files:
        path = os.path.join(d, f)
        name = os.path.relpath(path, root)[:-4].replace(os.sep, ".")
        (t0, _, step), values = whisper.fetch(path, start)
        for i, v in enumerate(values):
            if v is not None:
                print(name, t0 + i * step, repr(v))
"#;
    let out = python(script, &[whisper_dir.to_str().unwrap(), &from.to_string()]);
    out.lines()
        .map(|l| {
            let mut p = l.split(' ');
            let name = p.next().unwrap().to_string();
            let ts: i64 = p.next().unwrap().parse().unwrap();
            let v: f64 = p.next().unwrap().parse().unwrap();
            ((name, ts), v)
        })
        .collect()
}

#[test]
fn points_survive_sigkill_and_sigterm_leaves_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One writer that, after its first pass, waits an hour: the points below stay in the cache
    // (and the log) until the kill.
    let slow = [
        ("CARBONHOUND_CACHE__WRITERS", "1"),
        ("CARBONHOUND_CACHE__WRITE_INTERVAL", "1h"),
        ("CARBONHOUND_CACHE__WAL_SYNC", "200ms"),
        ("CARBONHOUND_CARBON__STATS_INTERVAL", "0s"),
    ];
    let mut server = Server::start_in(dir.path(), &slow);
    let t_end = now() - now().rem_euclid(60);
    let from = t_end - 3600;
    server.send_tcp(&format!("warm.up 1 {}\n", t_end - 60));
    wait_for(15, "the first pass to write warm.up", || {
        (health_u64(&server, "store", "committedPoints") == 1).then_some(())
    });

    let mut sent = BTreeMap::new();
    let mut text = String::new();
    for m in 0..METRICS {
        for i in 0..POINTS {
            let ts = t_end - 60 * (POINTS - i) as i64;
            let v = (m * 100 + i) as f64 + 0.25;
            text.push_str(&format!("wal.m{m:02} {v} {ts}\n"));
            sent.insert((format!("wal.m{m:02}"), ts), v);
        }
    }
    server.send_tcp(&text);
    wait_for(15, "every point received", || {
        (health_u64(&server, "store", "metricsReceived") == 1 + sent.len() as u64).then_some(())
    });
    let h = server.get_json("/health");
    assert_eq!(h["wal"]["enabled"], true, "{h}");
    assert!(h["wal"]["bytes"].as_u64().unwrap() > 0, "{h}");
    assert_eq!(
        h["store"]["committedPoints"], 1,
        "still only in the cache: {h}"
    );
    // More than wal_sync: the log is on disk.
    std::thread::sleep(Duration::from_millis(600));
    let pid = server.child.as_ref().unwrap().id();
    unsafe_kill(pid, libc::SIGKILL);
    let _ = server.child.take().unwrap().wait();
    assert!(!segments(&data).is_empty(), "SIGKILL leaves the log");
    assert!(
        on_disk(&server.whisper_dir(), from).is_empty(),
        "nothing was written"
    );

    let quiet = [("CARBONHOUND_CARBON__STATS_INTERVAL", "0s")];
    let mut server = Server::start_in(dir.path(), &quiet);
    // warm.up was written before the kill, and is written again: replay is idempotent.
    let logged = sent.len() as u64 + 1;
    let replayed = server
        .log_lines()
        .iter()
        .find(|l| l.contains("write-ahead log") && l.contains("replayed"))
        .cloned()
        .expect("the replay is logged");
    assert!(
        replayed.contains(&format!("replayed {logged} points")),
        "{replayed}"
    );
    wait_for(30, "the replayed points written", || {
        (health_u64(&server, "store", "committedPoints") == logged
            && health_u64(&server, "cache", "size") == 0)
            .then_some(())
    });
    assert_eq!(on_disk(&server.whisper_dir(), from), sent);
    // Persisted: the replayed segments are deleted while the server runs.
    wait_for(15, "the replayed segments deleted", || {
        (health_u64(&server, "wal", "segments") == 1).then_some(())
    });

    assert!(server.terminate().success());
    assert_eq!(
        segments(&data),
        Vec::<String>::new(),
        "SIGTERM removes the log"
    );
    let server = Server::start_in(dir.path(), &quiet);
    assert_eq!(health_u64(&server, "cache", "size"), 0, "nothing replayed");
}
