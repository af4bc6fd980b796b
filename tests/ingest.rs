//! Ingest, end to end: real servers (in-process `carbonhound::server::start` on port 0, or the
//! built `carbonhound` binary where a real signal is needed), real clients (std sockets, and
//! CPython's own `pickle` for pickle frames), whisper files checked with whisper 1.1's Python
//! module and tagged paths with graphite-web 1.1's `TaggedSeries` (tests/support/*.py, run by
//! /usr/bin/python3). A missing Python part fails the test.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carbonhound::config::Settings;
use carbonhound::server::Running;
use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

fn support(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script)
}

/// Runs a support script; its stdout. Panics (the test fails) when Python or the reference
/// module is missing or the script fails.
fn python(script: &str, args: &[String]) -> Vec<u8> {
    let out = Command::new(PYTHON)
        .arg(support(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {PYTHON} (the reference implementation is required): {e}")
        });
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// whisper.fetch + whisper.info of each file, by whisper 1.1 itself.
fn whisper_read(from: i64, until: i64, files: &[PathBuf]) -> Vec<Value> {
    let mut args = vec![from.to_string(), until.to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = String::from_utf8(python("whisper_read.py", &args)).unwrap();
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `(timestamp, value)` pairs whisper returns for a file (nulls left out).
fn whisper_points(read: &Value) -> Vec<(i64, f64)> {
    assert!(
        read.get("missing").is_none(),
        "file missing: {}",
        read["path"]
    );
    let f = &read["fetch"];
    let (from, step) = (f["from"].as_i64().unwrap(), f["step"].as_i64().unwrap());
    f["values"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_f64().map(|v| (from + i as i64 * step, v)))
        .collect()
}

/// A pickle frame (length prefix included) made by CPython's pickle; `json` is the script's
/// argument as JSON text (Python's json also reads `NaN`).
fn pickle_frame(protocol: u8, kind: &str, json: Option<String>) -> Vec<u8> {
    let mut args = vec![protocol.to_string(), kind.to_string()];
    args.extend(json);
    python("carbon_pickle.py", &args)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The file of a plain metric under the whisper directory.
fn metric_file(whisper: &Path, name: &str) -> PathBuf {
    whisper.join(format!("{}.wsp", name.replace('.', "/")))
}

/// Every file below `dir`, relative to it.
fn all_files(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// Settings a test server runs with; everything listens on port 0.
struct Opts {
    schemas: &'static str,
    stats_interval: &'static str,
    max_line_length: usize,
    max_pickle_frame: usize,
    max_size: usize,
    writers: usize,
    max_creates_per_second: u32,
    write_interval: &'static str,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            schemas: "[all]\npattern = .*\nretentions = 1s:6h,1m:7d\n",
            stats_interval: "0s",
            max_line_length: 4096,
            max_pickle_frame: 1 << 20,
            max_size: 1_000_000,
            writers: 2,
            max_creates_per_second: 0,
            write_interval: "0s",
        }
    }
}

/// Writes `carbonhound.toml` and `storage-schemas.conf` into `dir`; the config's path.
fn write_config(dir: &Path, o: &Opts) -> PathBuf {
    let schemas = dir.join("storage-schemas.conf");
    std::fs::write(&schemas, o.schemas).unwrap();
    let config = dir.join("carbonhound.toml");
    let text = format!(
        "data_dir = {data:?}\n\
         [carbon]\nplaintext_tcp = \"127.0.0.1:0\"\nplaintext_udp = \"127.0.0.1:0\"\npickle_tcp = \"127.0.0.1:0\"\n\
         schemas = {schemas:?}\nmax_line_length = {mll}\nmax_pickle_frame = {mpf}\nstats_interval = {si:?}\n\
         [cache]\nmax_size = {ms}\nwriters = {w}\nmax_creates_per_second = {mc}\nwrite_interval = {wi:?}\nindex_rescan_interval = \"0s\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n",
        data = dir.join("data").display().to_string(),
        schemas = schemas.display().to_string(),
        mll = o.max_line_length,
        mpf = o.max_pickle_frame,
        si = o.stats_interval,
        ms = o.max_size,
        w = o.writers,
        mc = o.max_creates_per_second,
        wi = o.write_interval,
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn http_get(http: &str, path_and_query: &str) -> Value {
    let body = ureq::get(&format!("http://{http}{path_and_query}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {body}"))
}

fn render_points(http: &str, target: &str, from: i64, until: i64) -> Vec<(i64, f64)> {
    let target: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let j = http_get(
        http,
        &format!("/render?target={target}&from={from}&until={until}&format=json"),
    );
    j.as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["datapoints"].as_array().unwrap().clone())
        .filter_map(|p| p[0].as_f64().map(|v| (p[1].as_i64().unwrap(), v)))
        .collect()
}

fn counter(h: &Value, path: &[&str]) -> u64 {
    let mut v = h;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("no counter {path:?} in {h}"))
}

/// An in-process server on a tokio runtime of its own.
struct TestServer {
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    dir: tempfile::TempDir,
    http: String,
    tcp: SocketAddr,
    udp: SocketAddr,
    pickle: SocketAddr,
}

impl TestServer {
    fn start(o: &Opts) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), o);
        let settings = Settings::load_with_env(Some(&config), false).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(carbonhound::server::start(settings)).unwrap();
        let a = running.addrs;
        TestServer {
            http: a.http.to_string(),
            tcp: a.carbon.plaintext_tcp.unwrap(),
            udp: a.carbon.plaintext_udp.unwrap(),
            pickle: a.carbon.pickle_tcp.unwrap(),
            running: Some(running),
            rt,
            dir,
        }
    }

    fn whisper(&self) -> PathBuf {
        self.dir.path().join("data/whisper")
    }

    fn health(&self) -> Value {
        http_get(&self.http, "/health")
    }

    fn received(&self) -> u64 {
        counter(&self.health(), &["store", "metricsReceived"])
    }

    fn send_tcp(&self, bytes: &[u8]) {
        let mut s = TcpStream::connect(self.tcp).unwrap();
        s.write_all(bytes).unwrap();
    }

    fn send_pickle(&self, frames: &[Vec<u8>]) {
        let mut s = TcpStream::connect(self.pickle).unwrap();
        for f in frames {
            s.write_all(f).unwrap();
        }
    }

    /// Waits until `metricsReceived` reaches `n`.
    fn wait_received(&self, n: u64) {
        wait_for(
            &format!("metricsReceived >= {n}"),
            Duration::from_secs(20),
            || self.received() >= n,
        );
    }

    /// Clean shutdown (as SIGTERM): every accepted point on disk. Keeps the directory.
    fn shutdown(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[test]
fn plaintext_tcp_udp_and_pickle_protocols_0_2_4_are_stored() {
    let mut srv = TestServer::start(&Opts::default());
    let t = now() - 100;
    let mut expected: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
    let mut tcp = String::new();
    for i in 0..50 {
        tcp.push_str(&format!("proto.tcp.m{} {}.25 {}\n", i % 5, i, t + i));
        expected
            .entry(format!("proto.tcp.m{}", i % 5))
            .or_default()
            .push((t + i, i as f64 + 0.25));
    }
    srv.send_tcp(tcp.as_bytes());
    // UDP: several lines per datagram, the last without '\n'.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in 0..5 {
        let msg = format!(
            "proto.udp.a {d} {}\nproto.udp.b {} {}",
            t + d,
            d * 10,
            t + d
        );
        udp.send_to(msg.as_bytes(), srv.udp).unwrap();
        expected
            .entry("proto.udp.a".into())
            .or_default()
            .push((t + d, d as f64));
        expected
            .entry("proto.udp.b".into())
            .or_default()
            .push((t + d, (d * 10) as f64));
    }
    // Pickle frames made by CPython at protocols 0, 2 and 4; ints, floats and a string value.
    let mut frames = Vec::new();
    for proto in [0u8, 2, 4] {
        let name = format!("proto.pickle.p{proto}");
        let pts = serde_json::json!([[name, t, 1], [name, t + 1, 2.5], [name, t + 2, "3.75"]]);
        frames.push(pickle_frame(proto, "points", Some(pts.to_string())));
        expected.insert(name, vec![(t, 1.0), (t + 1, 2.5), (t + 2, 3.75)]);
    }
    srv.send_pickle(&frames);
    let total: u64 = expected.values().map(|v| v.len() as u64).sum();
    srv.wait_received(total);
    // Readable through /render at once (cache, or disk if already written).
    for (name, pts) in &expected {
        let mut got = render_points(&srv.http, name, t - 10, t + 60);
        got.sort_by_key(|p| p.0);
        let mut want = pts.clone();
        want.sort_by_key(|p| p.0);
        assert_eq!(got, want, "{name} via /render");
    }
    let h = srv.health();
    assert_eq!(counter(&h, &["listeners", "plaintext_tcp", "errors"]), 0);
    assert_eq!(counter(&h, &["listeners", "pickle_tcp", "points"]), 9);
    assert_eq!(counter(&h, &["listeners", "plaintext_udp", "points"]), 10);
    srv.shutdown();
    let names: Vec<&String> = expected.keys().collect();
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| metric_file(&srv.whisper(), n))
        .collect();
    for (name, read) in names.iter().zip(whisper_read(t - 10, t + 60, &files)) {
        let mut want = expected[*name].clone();
        want.sort_by_key(|p| p.0);
        assert_eq!(
            whisper_points(&read),
            want,
            "{name} on disk (read by whisper.py)"
        );
    }
}

#[test]
fn tagged_series_are_normalized_stored_under_tagged_and_indexed() {
    let mut srv = TestServer::start(&Opts::default());
    let t = now() - 50;
    let raw = [
        "cpu.load;host=web1;dc=east",
        "cpu.load;dc=east;host=web1",
        "~disk.used;mount=var;host=db.2",
        "net.if;name=ignored;if=eth0",
    ];
    let mut lines = String::new();
    for (i, r) in raw.iter().enumerate() {
        lines.push_str(&format!("{r} {} {}\n", i + 1, t + i as i64));
    }
    srv.send_tcp(lines.as_bytes());
    srv.wait_received(raw.len() as u64);
    // graphite-web's own normalization and file layout.
    let args: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
    let reference: Vec<Value> = String::from_utf8(python("tagged_path.py", &args))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let store = srv.running.as_ref().unwrap().store.clone();
    for r in &reference {
        let path = r["path"].as_str().unwrap();
        assert!(
            store.tags.contains(path),
            "tag index lacks {path}: {:?}",
            store.tags.all_series()
        );
        assert!(
            !render_points(&srv.http, path, t - 10, t + 60).is_empty(),
            "{path} not readable"
        );
    }
    let distinct: BTreeSet<&str> = reference
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        store.tags.len(),
        distinct.len(),
        "two spellings of one series are one series"
    );
    assert_eq!(store.tags.values("dc"), vec![("east".to_string(), 1)]);
    srv.shutdown();
    let files: Vec<PathBuf> = distinct
        .iter()
        .map(|p| {
            let r = reference.iter().find(|r| r["path"] == *p).unwrap();
            srv.whisper().join(r["file"].as_str().unwrap())
        })
        .collect();
    for read in whisper_read(t - 10, t + 60, &files) {
        assert!(!whisper_points(&read).is_empty(), "{}", read["path"]);
    }
    // The same series sent in two tag orders landed in one file with both points.
    let cpu = reference.iter().find(|r| r["name"] == raw[0]).unwrap();
    let read = &whisper_read(
        t - 10,
        t + 60,
        &[srv.whisper().join(cpu["file"].as_str().unwrap())],
    )[0];
    assert_eq!(whisper_points(read), vec![(t, 1.0), (t + 1, 2.0)]);
    // Nothing but _tagged/ was written.
    for f in all_files(&srv.whisper()) {
        assert!(f.starts_with("_tagged"), "unexpected file {}", f.display());
    }
}

#[test]
fn malformed_plaintext_is_counted_and_good_lines_on_the_same_connection_are_kept() {
    let mut srv = TestServer::start(&Opts {
        max_line_length: 200,
        ..Opts::default()
    });
    let t = now() - 30;
    let long_name = "x".repeat(300);
    let huge = "y".repeat(100_000);
    // (line, refusal counter or None for a good line)
    let cases: Vec<(String, Option<&str>)> = vec![
        (format!("good.a 1 {t}"), None),
        ("garbage".into(), Some("malformed")),
        (format!("only.two {t}"), Some("malformed")),
        (format!("too.many 1 {t} 4"), Some("malformed")),
        (format!("val.nan nan {t}"), Some("nan_dropped")),
        (format!("val.nan2 NaN {t}"), Some("nan_dropped")),
        (format!("val.inf inf {t}"), Some("nan_dropped")),
        (format!("val.ninf -Infinity {t}"), Some("nan_dropped")),
        (format!("val.word abc {t}"), Some("bad_value")),
        ("ts.word 1 yesterday".into(), Some("bad_timestamp")),
        ("ts.zero 1 0".into(), Some("bad_timestamp")),
        ("ts.big 1 99999999999".into(), Some("bad_timestamp")),
        ("ts.nan 1 nan".into(), Some("bad_timestamp")),
        (format!("a..b 1 {t}"), Some("bad_name")),
        (format!(".lead 1 {t}"), Some("bad_name")),
        (format!("trail. 1 {t}"), Some("bad_name")),
        (format!(".. 1 {t}"), Some("bad_name")),
        (format!("../../../../tmp/escape 1 {t}"), Some("bad_name")),
        (format!("a/b 1 {t}"), Some("bad_name")),
        (format!("..;x=y 1 {t}"), Some("bad_name")),
        (format!("tag.slash;x=../../../tmp 1 {t}"), Some("bad_name")),
        (format!("ctl\u{1}name 1 {t}"), Some("bad_name")),
        (format!("nul\u{0}name 1 {t}"), Some("bad_name")),
        (format!("bad;tag 1 {t}"), Some("bad_name")),
        (format!("{long_name} 1 {t}"), Some("too_long")),
        (format!("{huge} 1 {t}"), Some("too_long")),
        (format!("good.b 2 {t}\r"), None),
        (format!("good.c 3.5 {t}"), None),
    ];
    let mut stream = TcpStream::connect(srv.tcp).unwrap();
    stream.set_nodelay(true).unwrap();
    for (line, _) in &cases {
        stream.write_all(line.as_bytes()).unwrap();
        stream.write_all(b"\n").unwrap();
    }
    // Not UTF-8.
    stream.write_all(b"\xff\xfe.bad 1 1700000000\n").unwrap();
    // A line split across TCP reads.
    stream.write_all(b"good.split 4").unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    stream.write_all(format!("2 {t}\n").as_bytes()).unwrap();
    // Blank lines are not errors; the last line has no '\n' and counts at end of stream.
    stream
        .write_all(format!("\n   \ngood.last 5 {t}").as_bytes())
        .unwrap();
    drop(stream);
    srv.wait_received(5);
    let h = srv.health();
    let l = &h["listeners"]["plaintext_tcp"];
    let mut want: HashMap<&str, u64> = HashMap::new();
    for (_, c) in &cases {
        if let Some(c) = c {
            *want.entry(c).or_default() += 1;
        }
    }
    *want.entry("not_utf8").or_default() += 1;
    for (k, v) in &want {
        assert_eq!(l[*k].as_u64(), Some(*v), "counter {k} in {l}");
    }
    // NaN and infinite values are dropped, as carbon drops them: not errors.
    let errors: u64 = want
        .iter()
        .filter(|(k, _)| **k != "nan_dropped")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(want["nan_dropped"], 4);
    assert_eq!(l["errors"].as_u64(), Some(errors), "{l}");
    assert_eq!(l["points"].as_u64(), Some(5));
    srv.shutdown();
    let goods = [
        ("good.a", 1.0),
        ("good.b", 2.0),
        ("good.c", 3.5),
        ("good.split", 42.0),
        ("good.last", 5.0),
    ];
    let files: Vec<PathBuf> = goods
        .iter()
        .map(|(n, _)| metric_file(&srv.whisper(), n))
        .collect();
    for ((name, v), read) in goods.iter().zip(whisper_read(t - 5, t + 5, &files)) {
        assert_eq!(whisper_points(&read), vec![(t, *v)], "{name}");
    }
    // Only the good metrics' files exist, all under data/whisper; nothing escaped. (The alert
    // state under data/state and the event store under data/events are the server's own.)
    let everything: BTreeSet<PathBuf> = all_files(srv.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("data/state") && !p.starts_with("data/events"))
        .collect();
    let expected: BTreeSet<PathBuf> =
        ["carbonhound.toml", "storage-schemas.conf"]
            .iter()
            .map(PathBuf::from)
            .chain(goods.iter().map(|(n, _)| {
                Path::new("data/whisper").join(format!("{}.wsp", n.replace('.', "/")))
            }))
            .collect();
    assert_eq!(everything, expected);
    assert!(!Path::new("/tmp/escape.wsp").exists());
}

#[test]
fn malformed_pickle_frames_are_counted_and_never_executed() {
    let mut srv = TestServer::start(&Opts {
        max_pickle_frame: 4096,
        ..Opts::default()
    });
    let t = now() - 30;
    let good = |name: &str, v: f64| {
        pickle_frame(
            2,
            "points",
            Some(serde_json::json!([[name, t, v]]).to_string()),
        )
    };
    let mut frames = vec![
        good("pk.g1", 1.0),
        pickle_frame(2, "global", None),
        good("pk.g2", 2.0),
        pickle_frame(4, "global", None),
        pickle_frame(0, "reduce", None),
        pickle_frame(4, "reduce", None),
        good("pk.g3", 3.0),
        pickle_frame(2, "dict", None),
        // Decodes, but is not a list.
        pickle_frame(2, "tuple", None),
        // Over max_pickle_frame: skipped whole, the connection goes on.
        pickle_frame(2, "big", Some(format!("[\"pk.big\", {t}, 2000]"))),
        good("pk.g4", 4.0),
        // Bad entries inside a good frame are refused alone.
        pickle_frame(2, "points", Some(format!("[[\"pk.g5\", {t}, 5], [\"../../tmp/pk\", {t}, 1], [\"pk.nan\", {t}, NaN], [\"pk.badts\", \"x\", 1]]"))),
    ];
    // A frame whose pickle is cut short (the length prefix matches the shortened body).
    let mut cut = good("pk.cut", 9.0);
    cut.truncate(cut.len() - 6);
    let body = (cut.len() - 4) as u32;
    cut[..4].copy_from_slice(&body.to_be_bytes());
    frames.push(cut);
    frames.push(good("pk.g6", 6.0));
    // The connection ends inside a frame: counted too.
    let mut stream = TcpStream::connect(srv.pickle).unwrap();
    for f in &frames {
        stream.write_all(f).unwrap();
    }
    stream.write_all(&[0, 0, 1, 0, 0x80, 2]).unwrap();
    drop(stream);
    srv.wait_received(6);
    std::thread::sleep(Duration::from_millis(200));
    let h = srv.health();
    let l = &h["listeners"]["pickle_tcp"];
    assert_eq!(l["points"].as_u64(), Some(6), "{l}");
    // global ×2, reduce ×2, dict, tuple, cut, closed inside a frame
    assert_eq!(l["bad_pickle"].as_u64(), Some(8), "{l}");
    assert_eq!(l["too_long"].as_u64(), Some(1), "{l}");
    assert_eq!(l["bad_name"].as_u64(), Some(1), "{l}");
    assert_eq!(l["bad_value"].as_u64(), Some(0), "{l}");
    assert_eq!(
        l["nan_dropped"].as_u64(),
        Some(1),
        "NaN dropped as carbon does: {l}"
    );
    assert_eq!(l["bad_timestamp"].as_u64(), Some(1), "{l}");
    srv.shutdown();
    let names = ["pk.g1", "pk.g2", "pk.g3", "pk.g4", "pk.g5", "pk.g6"];
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| metric_file(&srv.whisper(), n))
        .collect();
    for (i, read) in whisper_read(t - 5, t + 5, &files).iter().enumerate() {
        assert_eq!(whisper_points(read), vec![(t, (i + 1) as f64)]);
    }
    let written = all_files(&srv.whisper());
    assert_eq!(written.len(), names.len(), "{written:?}");
}

#[test]
fn accepted_points_are_readable_at_once_and_reach_disk() {
    // A throttled persister (1 file per second, burst 1) keeps most metrics in the cache.
    let mut srv = TestServer::start(&Opts {
        max_creates_per_second: 1,
        writers: 1,
        ..Opts::default()
    });
    let t = now() - 20;
    let names: Vec<String> = (0..5).map(|i| format!("visible.m{i}")).collect();
    let lines: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n} {} {t}\n", i * 7))
        .collect();
    srv.send_tcp(lines.as_bytes());
    srv.wait_received(5);
    // Accepted means queryable, whether or not its file exists yet.
    let mut without_file = 0;
    for (i, n) in names.iter().enumerate() {
        if !metric_file(&srv.whisper(), n).exists() {
            without_file += 1;
        }
        assert_eq!(
            render_points(&srv.http, n, t - 10, t + 10),
            vec![(t, (i * 7) as f64)],
            "{n}"
        );
    }
    assert!(
        without_file >= 2,
        "the create limit should have kept some metrics in the cache"
    );
    // And it reaches disk by itself (no shutdown needed).
    wait_for("every file written", Duration::from_secs(20), || {
        counter(&srv.health(), &["store", "committedPoints"]) >= 5
    });
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| metric_file(&srv.whisper(), n))
        .collect();
    for (i, read) in whisper_read(t - 10, t + 10, &files).iter().enumerate() {
        assert_eq!(whisper_points(read), vec![(t, (i * 7) as f64)]);
    }
    assert_eq!(counter(&srv.health(), &["cache", "size"]), 0);
    srv.shutdown();
}

#[test]
fn full_cache_stops_reading_instead_of_dropping_and_creates_are_rate_limited() {
    let opts = Opts {
        max_size: 2000,
        max_creates_per_second: 2,
        writers: 1,
        schemas: "[all]\npattern = .*\nretentions = 1s:2d\n",
        ..Opts::default()
    };
    let mut srv = TestServer::start(&opts);
    let metrics = 10usize;
    let per_metric = 100_000usize;
    let t0 = now() - per_metric as i64 - 10;
    // 1,000,000 lines (about 25 MiB, far more than the socket buffers hold), round-robin over
    // the metrics, so the throttled ones fill the cache at once.
    let mut payload = Vec::with_capacity(metrics * per_metric * 26);
    for i in 0..per_metric {
        for m in 0..metrics {
            writeln!(payload, "bp.m{m} {} {}", i % 1000, t0 + i as i64).unwrap();
        }
    }
    let total = (metrics * per_metric) as u64;
    let addr = srv.tcp;
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&payload).unwrap();
        Instant::now()
    });
    // Watch the server while the sender is held back.
    let mut max_size = 0u64;
    let mut saw_backpressure = false;
    let mut saw_cached_without_file = false;
    let mut creates_seen: Vec<(f64, u64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        let h = srv.health();
        let size = counter(&h, &["cache", "size"]);
        let received = counter(&h, &["store", "metricsReceived"]);
        max_size = max_size.max(size);
        creates_seen.push((
            started.elapsed().as_secs_f64(),
            counter(&h, &["store", "creates"]),
        ));
        if !sender.is_finished() && received < total && size + 2 * 64 * 1024 / 10 >= 2000 {
            saw_backpressure = true;
        }
        if !saw_cached_without_file {
            for m in 0..metrics {
                let name = format!("bp.m{m}");
                if store_has_cached(&srv, &name) && !metric_file(&srv.whisper(), &name).exists() {
                    // Throttled: no file yet, still queryable.
                    assert!(
                        !render_points(&srv.http, &name, t0 - 1, t0 + per_metric as i64).is_empty(),
                        "{name}"
                    );
                    saw_cached_without_file = true;
                    break;
                }
            }
        }
        if counter(&h, &["store", "committedPoints"]) >= total {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let finished_sending = sender.join().unwrap();
    let h = srv.health();
    assert_eq!(counter(&h, &["store", "metricsReceived"]), total, "{h}");
    assert_eq!(counter(&h, &["store", "committedPoints"]), total, "{h}");
    assert_eq!(counter(&h, &["store", "errors"]), 0);
    assert_eq!(counter(&h, &["store", "creates"]), metrics as u64);
    assert!(
        saw_backpressure,
        "the cache never reached its limit while the sender was blocked"
    );
    assert!(
        saw_cached_without_file,
        "no throttled metric was seen in the cache"
    );
    // Bounded: the limit plus at most one read (64 KiB of lines) per connection.
    assert!(
        max_size <= 2000 + 64 * 1024 / 10,
        "cache grew to {max_size}"
    );
    // 10 creations at 2/s (burst 2) take at least 4 s.
    let all_created = creates_seen
        .iter()
        .find(|(_, c)| *c >= metrics as u64)
        .map(|(t, _)| *t)
        .unwrap();
    assert!(
        all_created >= 3.5,
        "10 files created in {all_created:.1} s despite max_creates_per_second = 2"
    );
    assert!(
        finished_sending.duration_since(started) >= Duration::from_secs(3),
        "the sender was never held back"
    );
    srv.shutdown();
    let files: Vec<PathBuf> = (0..metrics)
        .map(|m| metric_file(&srv.whisper(), &format!("bp.m{m}")))
        .collect();
    for read in whisper_read(t0 - 1, t0 + per_metric as i64, &files) {
        let pts = whisper_points(&read);
        assert_eq!(pts.len(), per_metric, "{}", read["path"]);
        assert!(pts
            .iter()
            .enumerate()
            .all(|(i, p)| *p == (t0 + i as i64, (i % 1000) as f64)));
    }
}

fn store_has_cached(srv: &TestServer, name: &str) -> bool {
    !srv.running
        .as_ref()
        .unwrap()
        .store
        .cache
        .get(name)
        .is_empty()
}

#[test]
fn self_metrics_are_written_and_queryable() {
    let mut srv = TestServer::start(&Opts {
        stats_interval: "1s",
        ..Opts::default()
    });
    let host = gethostname::gethostname()
        .to_string_lossy()
        .replace('.', "_");
    let prefix = format!("carbon.agents.{host}");
    let t = now() - 1000;
    let started = Instant::now();
    let mut sent = 0u64;
    // Keep sending for a few intervals so every counter has something to say; every point
    // has its own timestamp (points of one timestamp are one point on disk).
    while started.elapsed() < Duration::from_millis(3500) {
        let lines: String = (sent..sent + 100)
            .map(|k| format!("sm.m{} {k} {}\n", k % 10, t + (k / 10) as i64))
            .collect();
        srv.send_tcp(format!("{lines}garbage\n").as_bytes());
        sent += 100;
        std::thread::sleep(Duration::from_millis(100));
    }
    srv.wait_received(sent);
    std::thread::sleep(Duration::from_millis(1200));
    let from = t - 60;
    let until = now() + 5;
    let received: f64 = render_points(&srv.http, &format!("{prefix}.metricsReceived"), from, until)
        .iter()
        .map(|p| p.1)
        .sum();
    assert_eq!(
        received, sent as f64,
        "metricsReceived per interval adds up to what was sent"
    );
    let errors: f64 = render_points(
        &srv.http,
        &format!("{prefix}.listeners.plaintext_tcp.malformed"),
        from,
        until,
    )
    .iter()
    .map(|p| p.1)
    .sum();
    assert!(errors >= 30.0, "listener counters: {errors}");
    let found = http_get(&srv.http, &format!("/metrics/find?query={prefix}.*"));
    let leaves: BTreeSet<String> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_string())
        .collect();
    for name in [
        "metricsReceived",
        "committedPoints",
        "pointsPerUpdate",
        "updateOperations",
        "creates",
        "errors",
        "cache",
        "cpuUsage",
        "memUsage",
        "avgUpdateTime",
    ] {
        assert!(leaves.contains(name), "{name} missing from {leaves:?}");
    }
    srv.shutdown();
    // Stored through the normal path: whisper files read by whisper.py.
    let names = [
        "metricsReceived",
        "committedPoints",
        "pointsPerUpdate",
        "updateOperations",
        "creates",
        "errors",
        "cache.size",
        "cache.queues",
    ];
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| metric_file(&srv.whisper(), &format!("{prefix}.{n}")))
        .collect();
    let reads = whisper_read(from, until, &files);
    for (n, read) in names.iter().zip(&reads) {
        assert!(!whisper_points(read).is_empty(), "{n}");
    }
    // Every interval's committedPoints, until the last record before shutdown.
    let committed: f64 = whisper_points(&reads[1]).iter().map(|p| p.1).sum();
    assert!(
        committed >= sent as f64,
        "committedPoints {committed} of {sent}"
    );
}

/// The `carbonhound` binary as a child process, its stderr collected line by line.
struct Binary {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    http: String,
    tcp: String,
    pickle: String,
}

impl Binary {
    fn start(config: &Path) -> Binary {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbonhound"));
        cmd.args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("CARBONHOUND_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut b = Binary {
            child,
            log,
            http: String::new(),
            tcp: String::new(),
            pickle: String::new(),
        };
        let line = b.wait_log("listening:", Duration::from_secs(30));
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_string()
        };
        b.http = field("http");
        b.tcp = field("plaintext_tcp");
        b.pickle = field("pickle_tcp");
        b
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "no log line with {needle:?}; log: {:#?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < timeout, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn sigterm_right_after_sending_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &Opts {
            write_interval: "1s",
            ..Opts::default()
        },
    );
    let mut server = Binary::start(&config);
    let t = now() - 3000;
    // About 6 MiB of lines: more than the server reads before the signal arrives.
    let metrics = 2000usize;
    let per_metric = 100usize;
    // Four plaintext connections and one pickle connection, all sending at once.
    let mut threads = Vec::new();
    for c in 0..4 {
        let addr = server.tcp.clone();
        threads.push(std::thread::spawn(move || {
            let mut buf = Vec::new();
            for i in 0..per_metric {
                for m in (c..metrics).step_by(4) {
                    writeln!(buf, "term.m{m:03} {} {}", m * 1000 + i, t + i as i64).unwrap();
                }
            }
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&buf).unwrap();
        }));
    }
    let pts: Vec<Value> = (0..per_metric)
        .map(|i| serde_json::json!(["term.pickle", t + i as i64, i]))
        .collect();
    let frame = pickle_frame(2, "points", Some(Value::Array(pts).to_string()));
    let mut pickle = TcpStream::connect(&server.pickle).unwrap();
    pickle.write_all(&frame).unwrap();
    for th in threads {
        th.join().unwrap();
    }
    // Every byte is written: SIGTERM at once, without waiting for the server to read it.
    server.signal(libc::SIGTERM);
    drop(pickle);
    let status = server.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "exit status {status}");
    server.wait_log("shutdown complete", Duration::from_secs(1));
    let whisper = dir.path().join("data/whisper");
    let mut files: Vec<PathBuf> = (0..metrics)
        .map(|m| metric_file(&whisper, &format!("term.m{m:03}")))
        .collect();
    files.push(metric_file(&whisper, "term.pickle"));
    let reads = whisper_read(t - 1, t + per_metric as i64, &files);
    for (m, read) in reads.iter().enumerate().take(metrics) {
        let want: Vec<(i64, f64)> = (0..per_metric)
            .map(|i| (t + i as i64, (m * 1000 + i) as f64))
            .collect();
        assert_eq!(whisper_points(read), want, "{}", read["path"]);
    }
    let want: Vec<(i64, f64)> = (0..per_metric).map(|i| (t + i as i64, i as f64)).collect();
    assert_eq!(whisper_points(&reads[metrics]), want);
}

#[test]
fn sighup_reloads_storage_rules_and_keeps_them_when_the_file_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let schemas_v1 = "[hup]\npattern = ^hup\\.\nretentions = 10s:1h\n\n[default]\npattern = .*\nretentions = 1m:1d\n";
    let config = write_config(
        dir.path(),
        &Opts {
            schemas: schemas_v1,
            ..Opts::default()
        },
    );
    let schemas = dir.path().join("storage-schemas.conf");
    let server = Binary::start(&config);
    let whisper = dir.path().join("data/whisper");
    let t = now() - 60;
    let send = |name: &str| {
        let mut s = TcpStream::connect(&server.tcp).unwrap();
        writeln!(s, "{name} 1 {t}").unwrap();
        drop(s);
        let f = metric_file(&whisper, name);
        wait_for(
            &format!("{} created", f.display()),
            Duration::from_secs(20),
            || f.exists(),
        );
    };
    let retentions = |name: &str| -> Vec<(u64, u64)> {
        // Let the writer finish the file before reading it.
        std::thread::sleep(Duration::from_millis(100));
        let read = &whisper_read(t - 10, t + 10, &[metric_file(&whisper, name)])[0];
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
    };
    send("hup.a");
    assert_eq!(retentions("hup.a"), vec![(10, 360)]);

    // A broken file: a bad regular expression on line 2. Refused with path:line, rules kept.
    std::fs::write(&schemas, "[hup]\npattern = ^hup(\nretentions = 60s:2h\n").unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_log("NOT reloaded", Duration::from_secs(10));
    assert!(line.contains(&format!("{}:2", schemas.display())), "{line}");
    send("hup.b");
    assert_eq!(
        retentions("hup.b"),
        vec![(10, 360)],
        "old rules stay after a bad reload"
    );

    // A good file: the new rules apply to files created from now on.
    std::fs::write(&schemas, "[hup]\npattern = ^hup\\.\nretentions = 60s:2h\n").unwrap();
    server.signal(libc::SIGHUP);
    server.wait_log("storage rules reloaded", Duration::from_secs(10));
    send("hup.c");
    assert_eq!(retentions("hup.c"), vec![(60, 120)]);
    assert_eq!(
        retentions("hup.a"),
        vec![(10, 360)],
        "existing files keep their layout"
    );
}

#[test]
fn refusals_are_logged_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &Opts::default());
    let mut server = Binary::start(&config);
    let mut s = TcpStream::connect(&server.tcp).unwrap();
    for i in 0..500 {
        writeln!(s, "bad..name{i} 1 1700000000").unwrap();
    }
    writeln!(s, "good.one 1 {}", now()).unwrap();
    drop(s);
    let first = server.wait_log("refused input", Duration::from_secs(10));
    assert!(
        first.contains("plaintext_tcp") && first.contains("bad..name0"),
        "{first}"
    );
    // The good line after them was stored.
    let f = metric_file(&dir.path().join("data/whisper"), "good.one");
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    assert!(f.exists());
    let log = server.log.lock().unwrap().clone();
    let refused = log.iter().filter(|l| l.contains("refused input")).count();
    assert!(
        (1..=10).contains(&refused),
        "{refused} refusal lines logged for 500 bad lines"
    );
}
