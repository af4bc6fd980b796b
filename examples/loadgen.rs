//! The ingest benchmark: starts a carbonhound server (a release build, as its own process),
//! sends it the issue #3 workload over the plaintext protocol and measures what BENCHMARKS.md
//! reports.
//!
//! Workload (defaults): 20,000 metrics `bench.h000.m00` … `bench.h999.m19`, schema
//! `10s:6h,1m:7d` (a storage-schemas.conf written here), 360 points each at 10 s steps
//! ending at the current time (7.2 M points), sent in time order over 4 TCP connections.
//! Phase A sends each metric's first point (so it creates every file), phase B the other 359.
//! All lines are formatted before the clock starts, so the generator is not the bottleneck.
//!
//! Measured, from the server's `/health` counters and `/proc/<pid>`:
//! - accepted points/s: until the generator has written everything *and* the server's
//!   `metricsReceived` has counted it;
//! - persisted points/s: until `committedPoints` has counted every point (each metric's last
//!   point on disk), checked on a sample of files read back with the whisper module;
//! - file creations/s in phase A (until `creates` reaches the number of metrics);
//! - peak RSS of the server (`VmHWM`) and its CPU seconds (utime + stime) per million points.
//!
//! ```text
//! cargo build --release && cargo run --release --example loadgen -- --runs 3
//! ```
//! `--help` lists the knobs (connections, writers, sizes, preallocation, server binary).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use server::{free_port, Server};

#[path = "support/server.rs"]
mod server;

#[path = "support/ingest_large.rs"]
mod ingest_large;

/// Bytes this process holds from the allocator (for `--micro index`).
static ALLOCATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The system allocator, counting what is held.
struct Counting;

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        ALLOCATED.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The ingest benchmark of issue #3.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server binary (a release build).
    #[arg(long, default_value = "target/release/carbonhound")]
    server: PathBuf,
    /// Hosts (`bench.hNNN`).
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Metrics per host (`mNN`).
    #[arg(long, default_value_t = 20)]
    metrics_per_host: usize,
    /// Points per metric (phase A sends the first, phase B the rest).
    #[arg(long, default_value_t = 360)]
    points: usize,
    /// Seconds between points.
    #[arg(long, default_value_t = 10)]
    step: i64,
    /// TCP connections sending at once.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Persister threads of the server (cache.writers).
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// The server's cache.max_size (points).
    #[arg(long, default_value_t = 4_000_000)]
    cache_max_size: usize,
    /// The server's cache.write_interval (e.g. "1s", "0s").
    #[arg(long, default_value = "1s")]
    write_interval: String,
    /// The server's cache.preallocation: fallocate | zero | sparse.
    #[arg(long, default_value = "fallocate")]
    preallocation: String,
    /// Whisper files the writers may keep open between writes (`[cache] open_files`, for
    /// `--micro persist` and the server of `--large`); "auto" sizes it from the open-file
    /// limit.
    #[arg(long, default_value = "auto")]
    open_files: String,
    /// The server's cache.wal: log every read before the cache (true | false).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    wal: bool,
    /// The server's cache.wal_sync (a duration, or "always").
    #[arg(long, default_value = "1s")]
    wal_sync: String,
    /// Whole runs (fresh data directory each); medians are reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Parent of the data directories (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the data directory and server log after the run.
    #[arg(long)]
    keep: bool,
    /// Stop after phase A (file creation only).
    #[arg(long)]
    phase_a_only: bool,
    /// In-process micro benchmark instead of the server run, for profilers (`perf record`,
    /// `valgrind --tool=callgrind`): `ingest` parses the phase B lines and inserts them into
    /// a store's cache (no sockets, no persister); `persist` fills the cache with the phase B
    /// points of already-created files and times the persisters draining it; `index` counts
    /// the bytes the metric index takes for `--large-metrics` names.
    #[arg(long)]
    micro: Option<String>,
    /// Workload W-ingest L (issue #13) instead of the burst: `--large-metrics` metrics, one
    /// point each every 10 s for `--large-minutes` (see examples/support/ingest_large.rs).
    #[arg(long)]
    large: bool,
    /// W-ingest L: metrics `big.hNNNNN.mNN` (a multiple of 20 up to 2,000,000, 20 a host;
    /// above, 100,000 hosts of more each: 2,200,000 is 22 a host).
    #[arg(long, default_value_t = 1_000_000)]
    large_metrics: usize,
    /// W-ingest L: the retentions of `big.*`.
    #[arg(long, default_value = "10s:2h,1m:1d")]
    large_retentions: String,
    /// W-ingest L: minutes of sustained sending.
    #[arg(long, default_value_t = 10)]
    large_minutes: usize,
    /// W-ingest L: TCP connections.
    #[arg(long, default_value_t = 8)]
    large_connections: usize,
}

/// Figures of one run.
#[derive(Debug, Clone, Default)]
struct RunResult {
    creates_per_s: f64,
    phase_a_accepted_per_s: f64,
    accepted_per_s: f64,
    persisted_per_s: f64,
    written_s: f64,
    accepted_s: f64,
    persisted_s: f64,
    peak_rss_mib: f64,
    cpu_s: f64,
    cpu_s_per_million: f64,
    phase_a_cpu_s: f64,
    phase_b_cpu_s: f64,
}

fn health(http: &str) -> Option<serde_json::Value> {
    let body = ureq::get(&format!("http://{http}/health"))
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    serde_json::from_str(&body).ok()
}

fn counter(h: &serde_json::Value, section: &str, key: &str) -> u64 {
    h[section][key].as_u64().unwrap_or(0)
}

/// Polls `/health` every 5 ms until `done` says yes; returns when that was first seen.
fn wait_until(
    http: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Instant {
    let start = Instant::now();
    loop {
        if let Some(h) = health(http) {
            if done(&h) {
                return Instant::now();
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; last /health: {h}");
            }
        } else if start.elapsed() > timeout {
            panic!("timed out waiting for {what}; /health does not answer");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// VmHWM of a process in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn metric_name(args: &Args, m: usize) -> String {
    format!(
        "bench.h{:03}.m{:02}",
        m / args.metrics_per_host,
        m % args.metrics_per_host
    )
}

/// A value that looks like a gauge, with decimals (the slow path of value parsing).
fn value(m: usize, i: usize) -> (u64, u64) {
    let x = (m as u64)
        .wrapping_mul(7919)
        .wrapping_add(i as u64 * 104_729)
        % 1_000_000;
    (x / 1000, x % 1000)
}

/// Per connection, the bytes of phase A and of phase B.
fn build_buffers(args: &Args, end: i64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let metrics = args.hosts * args.metrics_per_host;
    let names: Vec<String> = (0..metrics).map(|m| metric_name(args, m)).collect();
    let ts = |i: usize| end - (args.points as i64 - 1 - i as i64) * args.step;
    let mut a = Vec::new();
    let mut b = Vec::new();
    for c in 0..args.connections {
        let mine: Vec<usize> = (c..metrics).step_by(args.connections).collect();
        let mut buf_a = Vec::with_capacity(mine.len() * 40);
        for &m in &mine {
            let (v, f) = value(m, 0);
            writeln!(buf_a, "{} {v}.{f:03} {}", names[m], ts(0)).unwrap();
        }
        let mut buf_b = Vec::with_capacity(mine.len() * args.points * 40);
        for i in 1..args.points {
            for &m in &mine {
                let (v, f) = value(m, i);
                writeln!(buf_b, "{} {v}.{f:03} {}", names[m], ts(i)).unwrap();
            }
        }
        a.push(buf_a);
        b.push(buf_b);
    }
    (a, b)
}

/// Writes each buffer over its own connection, all at once; returns when all are written.
fn send(conns: &mut [TcpStream], bufs: &[Vec<u8>]) {
    std::thread::scope(|s| {
        for (conn, buf) in conns.iter_mut().zip(bufs) {
            s.spawn(move || conn.write_all(buf).expect("send to the server"));
        }
    });
}

fn start_server(args: &Args, dir: &Path) -> Server {
    let schemas = dir.join("storage-schemas.conf");
    std::fs::write(&schemas, "[bench]\npattern = ^bench\\.\nretentions = 10s:6h,1m:7d\n\n[default]\npattern = .*\nretentions = 60s:1d\n").unwrap();
    let (carbon_port, http_port) = (free_port(), free_port());
    let config = dir.join("carbonhound.toml");
    let toml = format!(
        "data_dir = {data:?}\n\n[carbon]\nplaintext_tcp = \"127.0.0.1:{carbon_port}\"\nplaintext_udp = \"\"\npickle_tcp = \"\"\nschemas = {schemas:?}\nstats_interval = \"0s\"\n\n[cache]\nwriters = {w}\nmax_size = {max}\npreallocation = {pre:?}\nwrite_interval = {wi:?}\nindex_rescan_interval = \"0s\"\nwal = {wal}\nwal_sync = {ws:?}\n\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n",
        data = dir.join("data").display().to_string(),
        schemas = schemas.display().to_string(),
        w = args.writers,
        max = args.cache_max_size,
        pre = args.preallocation,
        wi = args.write_interval,
        wal = args.wal,
        ws = args.wal_sync,
    );
    std::fs::write(&config, toml).unwrap();
    let server = server::spawn(
        &args.server,
        &config,
        &dir.join("server.log"),
        http_port,
        carbon_port,
    );
    wait_until(
        &server.http,
        "the server to start",
        Duration::from_secs(30),
        |_| true,
    );
    server
}

fn connect(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(&server.carbon).expect("connect to the plaintext listener"))
        .collect()
}

/// One run in a fresh directory. The directory is returned, not deleted: ext4 allocates
/// inodes slowly just after many were freed (its `recently_deleted` check), so deleting one
/// run's 20,000 files before the next run's phase A would slow that phase down.
fn run_once(args: &Args, run: usize) -> (RunResult, tempfile::TempDir) {
    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("carbonhound-bench-")
        .tempdir_in(&parent)
        .expect("a work directory");
    let metrics = args.hosts * args.metrics_per_host;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let end = now - now.rem_euclid(args.step);
    let built = Instant::now();
    let (buf_a, buf_b) = build_buffers(args, end);
    let bytes: usize = buf_a.iter().chain(buf_b.iter()).map(Vec::len).sum();
    eprintln!(
        "run {run}: {metrics} metrics × {} points = {} points, {:.0} MiB of lines, built in {:.1} s",
        args.points,
        metrics * args.points,
        bytes as f64 / 1048576.0,
        built.elapsed().as_secs_f64()
    );
    let server = start_server(args, dir.path());
    let pid = server.child.id();
    let cpu0 = cpu_seconds(pid);

    // Phase A: one point per metric, every file created.
    let mut conns = connect(&server, args.connections);
    let t0 = Instant::now();
    send(&mut conns, &buf_a);
    let a_accepted = wait_until(
        &server.http,
        "phase A metricsReceived",
        Duration::from_secs(600),
        |h| counter(h, "store", "metricsReceived") >= metrics as u64,
    );
    let a_created = wait_until(
        &server.http,
        "phase A creates",
        Duration::from_secs(600),
        |h| counter(h, "store", "creates") >= metrics as u64,
    );
    wait_until(
        &server.http,
        "phase A committedPoints",
        Duration::from_secs(600),
        |h| counter(h, "store", "committedPoints") >= metrics as u64,
    );
    let cpu_a = cpu_seconds(pid);
    let mut r = RunResult {
        creates_per_s: metrics as f64 / (a_created - t0).as_secs_f64(),
        phase_a_accepted_per_s: metrics as f64 / (a_accepted - t0).as_secs_f64(),
        phase_a_cpu_s: cpu_a - cpu0,
        ..RunResult::default()
    };
    eprintln!(
        "  phase A: {:.0} creates/s, cpu {:.2} s",
        r.creates_per_s, r.phase_a_cpu_s
    );
    if args.phase_a_only {
        r.peak_rss_mib = peak_rss_mib(pid);
        drop(conns);
        drop(server);
        return (r, dir);
    }

    // Phase B: the other points, in time order.
    let total = (metrics * args.points) as u64;
    let b_points = (metrics * (args.points - 1)) as f64;
    let t1 = Instant::now();
    send(&mut conns, &buf_b);
    let written = Instant::now();
    let accepted = wait_until(
        &server.http,
        "phase B metricsReceived",
        Duration::from_secs(600),
        |h| counter(h, "store", "metricsReceived") >= total,
    );
    let persisted = wait_until(
        &server.http,
        "phase B committedPoints",
        Duration::from_secs(1800),
        |h| counter(h, "store", "committedPoints") >= total && counter(h, "cache", "size") == 0,
    );
    let cpu_b = cpu_seconds(pid);
    r.written_s = (written - t1).as_secs_f64();
    r.accepted_s = (accepted - t1).as_secs_f64();
    r.persisted_s = (persisted - t1).as_secs_f64();
    r.accepted_per_s = b_points / r.accepted_s;
    r.persisted_per_s = b_points / r.persisted_s;
    r.phase_b_cpu_s = cpu_b - cpu_a;
    r.cpu_s = cpu_b - cpu0;
    r.cpu_s_per_million = r.cpu_s / (total as f64 / 1e6);
    r.peak_rss_mib = peak_rss_mib(pid);
    let h = health(&server.http).unwrap_or_default();
    eprintln!(
        "  phase B: written {:.2} s, accepted {:.2} s ({:.2} M/s), persisted {:.2} s ({:.2} M/s); cpu {:.2} s; peak RSS {:.0} MiB; updateOperations {}",
        r.written_s,
        r.accepted_s,
        r.accepted_per_s / 1e6,
        r.persisted_s,
        r.persisted_per_s / 1e6,
        r.phase_b_cpu_s,
        r.peak_rss_mib,
        counter(&h, "store", "updateOperations"),
    );
    drop(conns);
    drop(server);
    verify_sample(args, &dir.path().join("data/whisper"), end);
    (r, dir)
}

/// Reads back every 997th metric's file and checks its newest point.
fn verify_sample(args: &Args, whisper_dir: &Path, end: i64) {
    let metrics = args.hosts * args.metrics_per_host;
    for m in (0..metrics).step_by(997) {
        let name = metric_name(args, m);
        let path = whisper_dir.join(format!("{}.wsp", name.replace('.', "/")));
        let f = carbonhound::whisper::WhisperFile::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let got = f
            .fetch(end - args.step, Some(end + 1), now, None)
            .unwrap()
            .unwrap();
        let (v, frac) = value(m, args.points - 1);
        let want = format!("{v}.{frac:03}").parse::<f64>().unwrap();
        assert!(
            got.values.contains(&Some(want)),
            "{name}: last point {want} not on disk ({:?})",
            got.values
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn bench_store(args: &Args, dir: &Path) -> std::sync::Arc<carbonhound::store::Store> {
    use carbonhound::config::{parse_schemas, StorageRules};
    let rules = StorageRules::new(
        parse_schemas(
            "[bench]\npattern = .*\nretentions = 10s:6h,1m:7d\n",
            "bench",
        )
        .unwrap(),
        vec![],
    );
    let prealloc = match args.preallocation.as_str() {
        "zero" => carbonhound::whisper::Preallocation::Zero,
        "sparse" => carbonhound::whisper::Preallocation::Sparse,
        _ => carbonhound::whisper::Preallocation::Fallocate,
    };
    std::sync::Arc::new(
        carbonhound::store::Store::open(dir, rules, usize::MAX / 2, prealloc, 0).unwrap(),
    )
}

/// `--micro ingest`: parse + cache insert of the phase B lines, in this process.
fn micro_ingest(args: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let store = bench_store(args, dir.path());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (_, bufs) = build_buffers(args, now - now.rem_euclid(args.step));
    let started = Instant::now();
    let n = ingest_lines(&store, &bufs, now);
    let s = started.elapsed().as_secs_f64();
    println!(
        "micro ingest: {n} points in {s:.3} s = {:.0} ns/point ({:.2} M points/s on one thread)",
        s * 1e9 / n as f64,
        n as f64 / s / 1e6
    );
}

/// The measured part of `--micro ingest` (callgrind: `--toggle-collect='*ingest_lines*'`).
#[inline(never)]
fn ingest_lines(store: &carbonhound::store::Store, bufs: &[Vec<u8>], now: i64) -> u64 {
    let mut n = 0u64;
    for buf in bufs {
        for chunk in buf.chunks(64 * 1024) {
            // Lines cut at the chunk edge are skipped: good enough for a profile.
            let mut batch = carbonhound::store::Points::new();
            carbonhound::carbon::for_each_line(chunk, |line| {
                if let Ok(l) = carbonhound::carbon::parse_line(line) {
                    batch.push(&l.name, l.timestamp.unwrap_or(now), l.value);
                }
            });
            n += batch.len();
            store.insert_points(&mut batch);
        }
    }
    n
}

/// `--micro persist`: creates the files (phase A), fills the cache with phase B, and times
/// `writers` persister threads draining it.
fn micro_persist(args: &Args) {
    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("carbonhound-micro-")
        .tempdir_in(&parent)
        .unwrap();
    let store = bench_store(args, dir.path());
    let metrics = args.hosts * args.metrics_per_host;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let end = now - now.rem_euclid(args.step);
    let ts = |i: usize| end - (args.points as i64 - 1 - i as i64) * args.step;
    let names: Vec<String> = (0..metrics).map(|m| metric_name(args, m)).collect();
    for name in &names {
        store.insert(name, ts(0), 1.0);
    }
    let started = Instant::now();
    carbonhound::store::Persisters::start(store.clone(), args.writers, Duration::ZERO)
        .flush_and_stop();
    let a = started.elapsed().as_secs_f64();
    println!(
        "micro persist: phase A {metrics} creates in {a:.3} s = {:.0} files/s",
        metrics as f64 / a
    );
    // Phase B: one point per metric per round, each round drained by the same writers (so a
    // file kept open after one round's write is used by the next).
    let open_files = match args.open_files.as_str() {
        "auto" => None,
        n => Some(
            n.parse::<usize>()
                .expect("--open-files takes auto or a number"),
        ),
    };
    let kept = store.size_open_files(open_files, 1024);
    let ops = |s: &carbonhound::store::Store| {
        s.stats
            .update_operations
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let persisters =
        carbonhound::store::Persisters::start(store.clone(), args.writers, Duration::ZERO);
    let mut per_update = Vec::new();
    for i in 1..args.points {
        let before = ops(&store);
        for (m, name) in names.iter().enumerate() {
            let (v, f) = value(m, i);
            store.insert(name, ts(i), v as f64 + f as f64 / 1000.0);
        }
        // Timed from the round's first write to its last, so the writers' idle sleep
        // before the round does not count.
        while ops(&store) == before {
            std::hint::spin_loop();
        }
        let started = Instant::now();
        let first = ops(&store);
        while ops(&store) < before + metrics as u64 {
            std::thread::sleep(Duration::from_micros(100));
        }
        let b = started.elapsed().as_secs_f64();
        let us = b * 1e6 / (before + metrics as u64 - first).max(1) as f64 * args.writers as f64;
        println!(
            "micro persist: phase B round {i}: {metrics} one-point updates in {b:.3} s, {us:.1} µs/update a writer"
        );
        per_update.push(us);
    }
    persisters.flush_and_stop();
    let reused = store
        .stats
        .kept_open_writes
        .load(std::sync::atomic::Ordering::Relaxed);
    per_update.sort_by(f64::total_cmp);
    if let Some(median) = per_update.get(per_update.len() / 2) {
        println!(
            "micro persist: phase B median {median:.1} µs/update a writer over {} rounds; \
             {reused} writes through a kept file (open_files {kept})",
            per_update.len()
        );
    }
}

fn main() {
    let args = Args::parse();
    match args.micro.as_deref() {
        Some("ingest") => return micro_ingest(&args),
        Some("persist") => return micro_persist(&args),
        Some("index") => return ingest_large::micro_index(&args),
        Some(other) => panic!("--micro takes ingest, persist or index, not {other:?}"),
        None => {}
    }
    if args.large {
        return ingest_large::run(&args);
    }
    let (results, dirs): (Vec<RunResult>, Vec<tempfile::TempDir>) =
        (1..=args.runs).map(|i| run_once(&args, i)).unzip();
    if args.keep {
        for d in dirs {
            eprintln!("kept {}", d.keep().display());
        }
    } else {
        eprintln!("removing the data directories (wait five minutes before measuring phase A again: see BENCHMARKS.md)");
        drop(dirs);
    }
    let m = |f: fn(&RunResult) -> f64| median(results.iter().map(f).collect());
    println!("median of {} run(s):", results.len());
    println!(
        "  file creations (phase A)      {:>12.0} files/s",
        m(|r| r.creates_per_s)
    );
    println!(
        "  accepted (phase A)            {:>12.0} points/s",
        m(|r| r.phase_a_accepted_per_s)
    );
    if !args.phase_a_only {
        println!(
            "  accepted (phase B)            {:>12.0} points/s",
            m(|r| r.accepted_per_s)
        );
        println!(
            "  persisted (phase B)           {:>12.0} points/s",
            m(|r| r.persisted_per_s)
        );
        println!(
            "  generator write time (B)      {:>12.2} s",
            m(|r| r.written_s)
        );
        println!(
            "  server CPU per million points {:>12.2} s",
            m(|r| r.cpu_s_per_million)
        );
        println!(
            "  server CPU phase A / B        {:>5.2} s / {:.2} s",
            m(|r| r.phase_a_cpu_s),
            m(|r| r.phase_b_cpu_s)
        );
    }
    println!(
        "  server peak RSS (VmHWM)       {:>12.0} MiB",
        m(|r| r.peak_rss_mib)
    );
}
