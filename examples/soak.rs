//! The soak of issue #10 (item 8): a release server under steady mixed load for a long time,
//! watched for growth. Defaults: 30 minutes; 200,000 points/s over 20,000 metrics
//! (`soak.h000.m00` … `soak.h999.m19`, 10 points per metric and second, timestamps of the
//! current second, schema `10s:6h,1m:7d`) over 4 connections; 50 renders/s over 4 clients
//! (one series, `sumSeries` of 200, a 20-series glob with `movingAverage`, and `find`, in
//! turn); 1,000 alert rules (one series each, never firing) checked every 10 s.
//!
//! Every 10 s it samples the server's resident size (`VmRSS`), open files (`/proc/<pid>/fd`),
//! `/health` counters and the board's last check. At the end it prints the figures and
//! checks the issue's criteria: RSS at the end within 10 % of RSS at minute 5, no errors
//! (store errors, dropped points, WAL errors, render answers other than 200, rules in ERROR),
//! no growth of open files, every point sent counted as received; exit status 1 otherwise.
//!
//! ```text
//! cargo build --release --examples && target/release/examples/soak             # 30 min
//! target/release/examples/soak --minutes 6 --warmup-minutes 1                   # a short try
//! ```

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use server::{free_port, Server};

#[path = "support/server.rs"]
mod server;

/// The soak of issue #10.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server binary (a release build).
    #[arg(long, default_value = "target/release/carbonhound")]
    server: PathBuf,
    /// Length of the run, minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// When the reference RSS is taken, minutes after the start (the issue's minute 5).
    #[arg(long, default_value_t = 5.0)]
    warmup_minutes: f64,
    /// Points per second sent, all metrics together.
    #[arg(long, default_value_t = 200_000)]
    points_per_second: u64,
    /// Metrics (`soak.hNNN.mNN`, 20 per host).
    #[arg(long, default_value_t = 20_000)]
    metrics: usize,
    /// Renders per second, all clients together.
    #[arg(long, default_value_t = 50)]
    renders_per_second: u64,
    /// Alert rules (each on one series, checked every 10 s).
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Parent of the data directory (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn metric(m: usize) -> String {
    format!("soak.h{:03}.m{:02}", m / 20, m % 20)
}

fn get_json(http: &str, path: &str) -> Option<serde_json::Value> {
    let body = ureq::get(&format!("http://{http}{path}"))
        .timeout(Duration::from_secs(10))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    serde_json::from_str(&body).ok()
}

/// (VmRSS MiB, open files) of a process.
fn rss_and_fds(pid: u32) -> (f64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

fn start_server(args: &Args, dir: &Path) -> Server {
    let schemas = dir.join("storage-schemas.conf");
    std::fs::write(
        &schemas,
        "[soak]\npattern = ^soak\\.\nretentions = 10s:6h,1m:7d\n\n[default]\npattern = .*\nretentions = 60s:1d\n",
    )
    .unwrap();
    let rules = dir.join("alerts.d");
    std::fs::create_dir_all(&rules).unwrap();
    let mut text = String::new();
    for r in 0..args.rules {
        let m = r * args.metrics / args.rules.max(1);
        text.push_str(&format!(
            "[[alert]]\nname = \"soak rule {r}\"\ntarget = \"{}\"\ncrit = 1e15\nwarn = 1e14\nwindow = \"1m\"\ninterval = \"10s\"\n\n",
            metric(m)
        ));
    }
    std::fs::write(rules.join("soak.toml"), text).unwrap();
    let (carbon_port, http_port) = (free_port(), free_port());
    let config = dir.join("carbonhound.toml");
    let toml = format!(
        "data_dir = {data:?}\n\n[carbon]\nplaintext_tcp = \"127.0.0.1:{carbon_port}\"\nplaintext_udp = \"\"\npickle_tcp = \"\"\nschemas = {schemas:?}\nstats_interval = \"10s\"\n\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\n[alerting]\nrules_dir = {rules:?}\ninterval = \"10s\"\n",
        data = dir.join("data").display().to_string(),
        schemas = schemas.display().to_string(),
        rules = rules.display().to_string(),
    );
    std::fs::write(&config, toml).unwrap();
    let server = server::spawn(
        &args.server,
        &config,
        &dir.join("server.log"),
        http_port,
        carbon_port,
    );
    let start = Instant::now();
    while get_json(&server.http, "/health").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Sends `rate` points/s over `conns` connections in 100 ms slices until `stop`; counts sent.
fn ingest(args: &Args, carbon: &str, stop: &AtomicBool, sent: &AtomicU64) {
    let conns = 4;
    let per_slice = (args.points_per_second / 10 / conns as u64) as usize;
    std::thread::scope(|s| {
        for c in 0..conns {
            s.spawn(move || {
                let mut stream = TcpStream::connect(carbon).expect("connect carbon");
                let mut next = Instant::now();
                let mut m = c;
                let mut buf = Vec::with_capacity(per_slice * 40);
                while !stop.load(Relaxed) {
                    buf.clear();
                    let t = unix_now();
                    for i in 0..per_slice {
                        let _ = writeln!(buf, "{} {} {t}", metric(m), (m + i) % 1000);
                        m = (m + conns) % args.metrics;
                    }
                    stream.write_all(&buf).expect("send to carbon");
                    sent.fetch_add(per_slice as u64, Relaxed);
                    next += Duration::from_millis(100);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            });
        }
    });
}

/// Renders at `rate`/s over 4 clients until `stop`; latencies (ms) and non-200 answers.
fn render(args: &Args, http: &str, stop: &AtomicBool, lat: &Mutex<Vec<f64>>, bad: &AtomicU64) {
    let clients = 4u64;
    let every = Duration::from_secs_f64(clients as f64 / args.renders_per_second.max(1) as f64);
    let paths = [
        "/render?target=soak.h001.m01&from=-1h&format=json".to_string(),
        "/render?target=sumSeries(soak.h00*.m*)&from=-1h&format=json".to_string(),
        "/render?target=movingAverage(soak.h002.*,'1min')&from=-1h&format=json".to_string(),
        "/metrics/find?query=soak.h01*.*".to_string(),
    ];
    std::thread::scope(|s| {
        for c in 0..clients {
            let paths = &paths;
            s.spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                let mut next = Instant::now();
                let mut i = c as usize;
                while !stop.load(Relaxed) {
                    let t = Instant::now();
                    let ok = agent
                        .get(&format!("http://{http}{}", paths[i % paths.len()]))
                        .call()
                        .ok()
                        .and_then(|r| (r.status() == 200).then(|| r.into_string().ok()))
                        .flatten()
                        .is_some();
                    lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                    if !ok {
                        bad.fetch_add(1, Relaxed);
                    }
                    i += 1;
                    next += every;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            });
        }
    });
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = Args::parse();
    let dir = match &args.work_dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .unwrap();
    let server = start_server(&args, dir.path());
    let pid = server.child.id();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let bad = AtomicU64::new(0);
    let lat = Mutex::new(Vec::new());
    let begin = Instant::now();
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let warmup = Duration::from_secs_f64(args.warmup_minutes * 60.0);
    let samples = Arc::new(Mutex::new(Vec::<(f64, f64, usize)>::new()));
    let mut reference: Option<(f64, usize)> = None;
    let mut last_board = 0i64;
    let mut board_stalls = 0;
    std::thread::scope(|s| {
        s.spawn(|| ingest(&args, &server.carbon, &stop, &sent));
        s.spawn(|| render(&args, &server.http, &stop, &lat, &bad));
        println!("minute   RSS MiB  open files  received M  cache  rules checked at");
        while begin.elapsed() < total {
            std::thread::sleep(Duration::from_secs(10));
            let (rss, fds) = rss_and_fds(pid);
            let at = begin.elapsed().as_secs_f64() / 60.0;
            samples.lock().unwrap().push((at, rss, fds));
            if reference.is_none() && begin.elapsed() >= warmup {
                reference = Some((rss, fds));
            }
            let h = get_json(&server.http, "/health").unwrap_or_default();
            let board = get_json(&server.http, "/api/alerts").unwrap_or_default();
            let updated = board["updated"].as_i64().unwrap_or(0);
            if updated == last_board {
                board_stalls += 1;
            }
            last_board = updated;
            if (at * 6.0).round() as i64 % 6 == 0 {
                println!(
                    "{at:6.1}  {rss:8.1}  {fds:10}  {:10.1}  {:5}  {updated}",
                    h["store"]["metricsReceived"].as_f64().unwrap_or(0.0) / 1e6,
                    h["cache"]["size"],
                );
            }
        }
        stop.store(true, Relaxed);
    });
    // Let the server count the last points.
    std::thread::sleep(Duration::from_secs(3));
    let (end_rss, end_fds) = rss_and_fds(pid);
    let h = get_json(&server.http, "/health").unwrap_or_default();
    let board = get_json(&server.http, "/api/alerts").unwrap_or_default();
    let rules = board["rules"].as_array().cloned().unwrap_or_default();
    let in_error = rules
        .iter()
        .filter(|r| r["state"].as_str() == Some("ERROR"))
        .count();
    let (ref_rss, ref_fds) = reference.unwrap_or((end_rss, end_fds));
    let mut lat = lat.into_inner().unwrap();
    let renders = lat.len();
    let received = h["store"]["metricsReceived"].as_u64().unwrap_or(0);
    let sent = sent.load(Relaxed);
    let elapsed = begin.elapsed().as_secs_f64();
    let errors = h["store"]["errors"].as_u64().unwrap_or(0)
        + h["store"]["droppedPoints"].as_u64().unwrap_or(0)
        + h["wal"]["errors"].as_u64().unwrap_or(0);
    let bad = bad.load(Relaxed);
    println!();
    println!(
        "{:.1} min: {sent} points sent ({:.0}/s), {received} received; {renders} renders ({:.1}/s), p50 {:.2} ms, p99 {:.2} ms, {bad} not 200; {} rules, {in_error} in ERROR, {board_stalls} samples without a new check",
        elapsed / 60.0,
        sent as f64 / elapsed,
        renders as f64 / elapsed,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        rules.len(),
    );
    let growth = (end_rss - ref_rss) / ref_rss * 100.0;
    println!(
        "RSS at minute {:.0}: {ref_rss:.1} MiB, at the end: {end_rss:.1} MiB ({growth:+.1} %); open files {ref_fds} → {end_fds}; store/WAL errors and drops: {errors}",
        args.warmup_minutes
    );
    let mut failed = Vec::new();
    if growth.abs() > 10.0 {
        failed.push("RSS moved more than 10 % after the warm-up");
    }
    if end_fds > ref_fds {
        failed.push("open files grew");
    }
    if errors > 0 || bad > 0 || in_error > 0 {
        failed.push("errors");
    }
    if received < sent {
        failed.push("points sent were not all received");
    }
    if rules.len() != args.rules || board_stalls > 1 {
        failed.push("the rules were not all checked every cycle");
    }
    if failed.is_empty() {
        println!("PASS");
    } else {
        println!("FAIL: {}", failed.join("; "));
        std::process::exit(1);
    }
}
