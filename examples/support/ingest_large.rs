//! `loadgen --large`: workload W-ingest L of issue #13 — many metrics, one point each every
//! 10 s, sustained, as real installations send (so the bound is whisper updates per second,
//! index memory and restart time, not points per update). Included by `loadgen.rs`.
//!
//! Metrics `big.h00000.m00` … (20 per host). The server keeps `big.*` at `--large-retentions`
//! (default `10s:2h,1m:1d`). Phases:
//! 1. creation: one point per metric (round 0), sent as fast as the connections take it; timed
//!    until every file is created and the point is on disk;
//! 2. sustained, `--large-minutes`: every 10 s one point per metric (round r has value r),
//!    each connection spreading its share evenly over 9 s of the 10, as many collectd
//!    daemons with different phases do. Every second `/health` gives the cache's size; every
//!    2 s a fixed sample of metrics is read from disk (this process opens the whisper files):
//!    a sampled metric's *oldest unpersisted point* is the first round it was sent but is not
//!    on disk yet, its age the time since it was sent. Reported: p50/p99/max of those ages
//!    (also over the second half alone, after the backlog a creation leaves is worked off,
//!    and the largest age in each minute),
//!    the cache's peak and its size in the last minute against the first (a growing backlog
//!    shows there), server CPU (cores used), peak RSS;
//! 3. drain and check: 1,000 metrics read back with python3-whisper (`/usr/bin/python3`) hold
//!    every point sent;
//! 4. queries at that size, ingest stopped: p50 of 20 runs of `find big.*`, `find
//!    big.h01234.*`, `expand big.h1*.m01` and `sumSeries(big.h1*.m01)`;
//! 5. restart with the files in place: one more round is sent, then the server is killed
//!    (SIGKILL with the write-ahead log on; SIGTERM with it off, as its points would be lost
//!    otherwise) and started again: times to listening, to the first correct render of that
//!    round, to a complete `find big.*` (every host listed: read from the directory while
//!    the index scan runs), to the index scan's end (`/health` `index.scan`) and to the log
//!    drained (the replayed points on disk: cache empty, one segment left).
//!
//! ```text
//! cargo build --release --bin carbonhound --example loadgen
//! target/release/examples/loadgen --large --large-metrics 1000000 --work-dir /var/tmp
//! target/release/examples/loadgen --large --large-metrics 2000000 --large-retentions 10s:1h,1m:12h
//! target/release/examples/loadgen --micro index --large-metrics 1000000
//! ```

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::server::{self, free_port, Server};
use super::{counter, cpu_seconds, health, median, peak_rss_mib, wait_until, Args};

/// Metrics per host (`mNN`): 20, as the issue's names have it, up to 2,000,000 metrics; above
/// that the 100,000 hosts the 5-digit names allow take more each (2,200,000: 22), set once by
/// [`run`].
static PER_HOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(20);

fn per_host() -> usize {
    PER_HOST.load(std::sync::atomic::Ordering::Relaxed)
}
/// Seconds between two points of a metric.
const STEP: i64 = 10;
/// Seconds of each 10-second round over which a connection spreads its lines.
const SPREAD: f64 = 9.0;
/// Bytes of one line: `big.h00000.m00 000000 1733160000\n`.
const LINE: usize = 33;
/// Where the value's 6 digits start in a line.
const VALUE_AT: usize = 15;
/// Where the timestamp's 10 digits start in a line.
const TS_AT: usize = 22;
/// Metrics read from disk every 2 s for the age of their oldest unpersisted point.
const SAMPLE: usize = 200;
/// Metrics read back with python3-whisper at the end.
const VERIFY: usize = 1000;

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn name(m: usize) -> String {
    format!("big.h{:05}.m{:02}", m / per_host(), m % per_host())
}

fn file_of(whisper: &Path, m: usize) -> PathBuf {
    whisper.join(format!(
        "big/h{:05}/m{:02}.wsp",
        m / per_host(),
        m % per_host()
    ))
}

/// The lines of one connection (metrics `c, c + conns, …`), value and timestamp patched per
/// round by [`patch`].
fn template(metrics: usize, c: usize, conns: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(metrics / conns * LINE + LINE);
    for m in (c..metrics).step_by(conns) {
        writeln!(buf, "{} 000000 0000000000", name(m)).unwrap();
    }
    debug_assert_eq!(buf.len() % LINE, 0);
    buf
}

fn patch(buf: &mut [u8], value: usize, ts: i64) {
    let v = format!("{value:06}");
    let t = format!("{ts:010}");
    for line in buf.chunks_exact_mut(LINE) {
        line[VALUE_AT..VALUE_AT + 6].copy_from_slice(v.as_bytes());
        line[TS_AT..TS_AT + 10].copy_from_slice(t.as_bytes());
    }
}

/// When each connection really sent each round: `(first byte, last byte)` wall-clock
/// seconds, so a metric's send time is interpolated by its place in the buffer.
type SendTimes = Arc<Mutex<Vec<Vec<Option<(f64, f64)>>>>>;

/// The server of the run and how to start it again on the same ports and data.
struct Node {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    http_port: u16,
    carbon_port: u16,
    server: Server,
}

impl Node {
    fn start(args: &Args, dir: &Path) -> Node {
        let schemas = dir.join("storage-schemas.conf");
        std::fs::write(
            &schemas,
            format!(
                "[big]\npattern = ^big\\.\nretentions = {}\n\n[default]\npattern = .*\nretentions = 60s:1d\n",
                args.large_retentions
            ),
        )
        .unwrap();
        let (carbon_port, http_port) = (free_port(), free_port());
        // No alert rules: the repository's alerts.d is not the benchmark's.
        let rules = dir.join("alerts.d");
        std::fs::create_dir_all(&rules).unwrap();
        let config = dir.join("carbonhound.toml");
        let toml = format!(
            "data_dir = {data:?}\n\n[carbon]\nplaintext_tcp = \"127.0.0.1:{carbon_port}\"\nplaintext_udp = \"\"\npickle_tcp = \"\"\nschemas = {schemas:?}\nstats_interval = \"0s\"\n\n[cache]\nwriters = {w}\nmax_size = {max}\npreallocation = {pre:?}\nwrite_interval = {wi:?}\nindex_rescan_interval = \"0s\"\nwal = {wal}\nwal_sync = {ws:?}\nopen_files = {of}\n\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\n[alerting]\nrules_dir = {rules:?}\n",
            rules = rules.display().to_string(),
            data = dir.join("data").display().to_string(),
            schemas = schemas.display().to_string(),
            w = args.writers,
            max = args.large_metrics.max(args.cache_max_size) * 4,
            pre = args.preallocation,
            wi = args.write_interval,
            wal = args.wal,
            ws = args.wal_sync,
            of = match args.open_files.as_str() {
                "auto" => "\"auto\"".to_string(),
                n => n.to_string(),
            },
        );
        std::fs::write(&config, toml).unwrap();
        let log = dir.join("server.log");
        let server = server::spawn(&args.server, &config, &log, http_port, carbon_port);
        wait_until(
            &server.http,
            "the server to start",
            Duration::from_secs(600),
            |_| true,
        );
        Node {
            bin: args.server.clone(),
            config,
            log,
            http_port,
            carbon_port,
            server,
        }
    }

    fn pid(&self) -> u32 {
        self.server.child.id()
    }

    /// Stops the process (`signal`) and starts it again; returns when it was spawned.
    fn restart(&mut self, signal: i32) -> Instant {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.pid() as i32, signal) };
        let _ = self.server.child.wait();
        let started = Instant::now();
        self.server = server::spawn(
            &self.bin,
            &self.config,
            &self.log,
            self.http_port,
            self.carbon_port,
        );
        started
    }
}

fn connect(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(&server.carbon).expect("connect to the plaintext listener"))
        .collect()
}

/// Percentile `p` (0..=100) of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Every round's timestamp: round 0 (creation) at `ts0`, rounds 1.. from `ts1` on, 10 s
/// apart.
#[derive(Clone, Copy)]
struct Clock {
    ts0: i64,
    ts1: i64,
}

impl Clock {
    fn ts(&self, round: usize) -> i64 {
        if round == 0 {
            self.ts0
        } else {
            self.ts1 + (round as i64 - 1) * STEP
        }
    }
}

/// The newest round of metric `m` on disk, reading its file's newest minutes.
fn newest_on_disk(whisper: &Path, m: usize, clock: Clock, last_sent: usize) -> Option<usize> {
    let f = carbonhound::whisper::WhisperFile::open(&file_of(whisper, m)).ok()?;
    let now = now_f64() as i64;
    let until = clock.ts(last_sent) + 1;
    let from = until - 600;
    let got = f.fetch(from, Some(until), now, Some(STEP as u32)).ok()??;
    let mut newest = None;
    for (i, v) in got.values.iter().enumerate() {
        let ts = got.from + i as i64 * got.step;
        if let Some(v) = v {
            let r = *v as usize;
            if clock.ts(r) == ts {
                newest = Some(newest.map_or(r, |n: usize| n.max(r)));
            }
        }
    }
    newest
}

/// What the sustained phase measured.
#[derive(Default)]
struct Sustained {
    ages: Vec<f64>,
    /// The ages sampled in the second half of the sustained phase (sorted): the backlog a
    /// creation leaves is worked off by then, so this is the steady state.
    late_ages: Vec<f64>,
    /// The largest age sampled in each minute of the sustained phase.
    max_age_by_minute: Vec<f64>,
    cache_peak: u64,
    cache_first_minute: u64,
    cache_last_minute: u64,
    cpu_cores: f64,
    rounds: usize,
    behind: usize,
}

/// Sends rounds `1..=rounds` paced, while sampling; returns the figures.
fn sustain(
    args: &Args,
    node: &Node,
    conns: Vec<TcpStream>,
    templates: Vec<Vec<u8>>,
    clock: Clock,
    rounds: usize,
) -> (Sustained, Vec<TcpStream>, Vec<Vec<u8>>) {
    let metrics = args.large_metrics;
    let nconn = conns.len();
    let times: SendTimes = Arc::new(Mutex::new(vec![vec![None; rounds + 2]; nconn]));
    let sent_round = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let behind = Arc::new(AtomicU64::new(0));
    let whisper = node.config.parent().unwrap().join("data/whisper");
    let t0 = Instant::now() + Duration::from_millis(200);
    let cpu0 = cpu_seconds(node.pid());
    let wall0 = Instant::now();

    let sampler = {
        let (times, sent_round, done) = (times.clone(), sent_round.clone(), done.clone());
        let http = node.server.http.clone();
        let whisper = whisper.clone();
        std::thread::spawn(move || {
            let mut ages = Vec::new();
            let mut cache: Vec<(f64, u64)> = Vec::new();
            let sample: Vec<usize> = (0..SAMPLE)
                .map(|i| (i * metrics / SAMPLE + 7) % metrics)
                .collect();
            let started = Instant::now();
            let mut tick = 0u64;
            while !done.load(Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                tick += 1;
                if let Some(h) = health(&http) {
                    cache.push((
                        started.elapsed().as_secs_f64(),
                        counter(&h, "cache", "size"),
                    ));
                }
                if tick % 2 != 0 {
                    continue;
                }
                let last = sent_round.load(Relaxed) as usize;
                if last == 0 {
                    continue;
                }
                for &m in &sample {
                    let c = m % nconn;
                    let place = (m / nconn) as f64 / (metrics / nconn).max(1) as f64;
                    let newest = newest_on_disk(&whisper, m, clock, last + 1).unwrap_or(0);
                    let now = now_f64();
                    let first_unpersisted = newest + 1;
                    let t = times.lock().unwrap();
                    let sent_at = t[c]
                        .get(first_unpersisted)
                        .copied()
                        .flatten()
                        .map(|(a, b)| a + (b - a) * place);
                    drop(t);
                    match sent_at {
                        Some(at) if at <= now => {
                            ages.push((started.elapsed().as_secs_f64(), now - at))
                        }
                        _ => ages.push((started.elapsed().as_secs_f64(), 0.0)),
                    }
                }
            }
            (ages, cache)
        })
    };

    let senders: Vec<_> = conns
        .into_iter()
        .zip(templates)
        .enumerate()
        .map(|(c, (mut conn, mut buf))| {
            let (times, sent_round, behind) = (times.clone(), sent_round.clone(), behind.clone());
            std::thread::spawn(move || {
                let lines = buf.len() / LINE;
                let chunks = 90usize.min(lines.max(1));
                for r in 1..=rounds {
                    let round_start = t0 + Duration::from_secs(STEP as u64 * (r as u64 - 1));
                    if let Some(wait) = round_start.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    } else {
                        behind.fetch_add(1, Relaxed);
                    }
                    patch(&mut buf, r, clock.ts(r));
                    let first = now_f64();
                    // The plan until the round is sent (a line is due at its place in the
                    // spread), then what really happened.
                    times.lock().unwrap()[c][r] = Some((first, first + SPREAD));
                    for k in 0..chunks {
                        let at = round_start
                            + Duration::from_secs_f64(SPREAD * k as f64 / chunks as f64);
                        if let Some(wait) = at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let (a, b) = (k * lines / chunks, (k + 1) * lines / chunks);
                        conn.write_all(&buf[a * LINE..b * LINE])
                            .expect("send to the server");
                    }
                    times.lock().unwrap()[c][r] = Some((first, now_f64()));
                    if c == 0 {
                        sent_round.store(r as u64, Relaxed);
                    }
                }
                (conn, buf)
            })
        })
        .collect();
    let mut conns = Vec::new();
    let mut bufs = Vec::new();
    for s in senders {
        let (c, b) = s.join().unwrap();
        conns.push(c);
        bufs.push(b);
    }
    let cpu = cpu_seconds(node.pid()) - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    done.store(true, Relaxed);
    let (timed_ages, cache) = sampler.join().unwrap();
    let half = wall / 2.0;
    let mut max_age_by_minute = vec![0.0f64; (wall / 60.0).ceil().max(1.0) as usize];
    for &(t, a) in &timed_ages {
        let m = ((t / 60.0) as usize).min(max_age_by_minute.len() - 1);
        max_age_by_minute[m] = max_age_by_minute[m].max(a);
    }
    let mut late_ages: Vec<f64> = timed_ages
        .iter()
        .filter(|(t, _)| *t >= half)
        .map(|(_, a)| *a)
        .collect();
    late_ages.sort_by(f64::total_cmp);
    let mut ages: Vec<f64> = timed_ages.iter().map(|(_, a)| *a).collect();
    ages.sort_by(f64::total_cmp);
    let minute = |from: f64, to: f64| {
        cache
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(0)
    };
    let end = cache.last().map_or(0.0, |(t, _)| *t);
    let figures = Sustained {
        cache_peak: cache.iter().map(|(_, s)| *s).max().unwrap_or(0),
        cache_first_minute: minute(60.0, 120.0),
        cache_last_minute: minute(end - 60.0, end + 1.0),
        ages,
        late_ages,
        max_age_by_minute,
        cpu_cores: cpu / wall,
        rounds,
        behind: behind.load(Relaxed) as usize,
    };
    (figures, conns, bufs)
}

fn send_all(conns: &mut [TcpStream], bufs: &[Vec<u8>]) {
    std::thread::scope(|s| {
        for (conn, buf) in conns.iter_mut().zip(bufs) {
            s.spawn(move || conn.write_all(buf).expect("send to the server"));
        }
    });
}

/// p50 (ms) of 20 timed GETs after one warm-up; `check` validates each body.
fn timed(http: &str, path: &str, check: impl Fn(&str) -> Result<(), String>) -> f64 {
    let url = format!("http://{http}{path}");
    let get = || {
        ureq::get(&url)
            .timeout(Duration::from_secs(120))
            .call()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .into_string()
            .unwrap()
    };
    let body = get();
    if let Err(e) = check(&body) {
        panic!("{path}: {e}");
    }
    let mut ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = get();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(ms)
}

fn json_len(body: &str, key: Option<&str>) -> Result<usize, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let list = match key {
        Some(k) => v[k].clone(),
        None => v,
    };
    list.as_array()
        .map(Vec::len)
        .ok_or_else(|| format!("not a list: {body:.200}"))
}

/// Reads `VERIFY` metrics with python3-whisper and checks every round is there.
fn verify(whisper: &Path, metrics: usize, clock: Clock, rounds: usize) -> bool {
    let mut list = String::new();
    for i in 0..VERIFY.min(metrics) {
        let m = i * metrics / VERIFY.min(metrics);
        list.push_str(&format!("{}\n", file_of(whisper, m).display()));
    }
    let expected: Vec<String> = (0..=rounds)
        .map(|r| format!("{}:{}", clock.ts(r), r))
        .collect();
    let script = r#"
import sys, whisper
want = dict((int(a), float(b)) for a, b in (x.split(':') for x in sys.argv[1].split(',')))
lo, hi = min(want), max(want)
bad = 0
files = [l.strip() for l in sys.stdin if l.strip()]
for path in files:
    (start, end, step), values = whisper.fetch(path, lo - 1, hi + 1)
    got = dict((start + i * step, v) for i, v in enumerate(values))
    missing = [t for t, v in want.items() if got.get(t) != v]
    if missing:
        bad += 1
        if bad <= 5:
            print('%s: %d of %d points missing or wrong, e.g. %s' % (path, len(missing), len(want), missing[:3]))
print('checked %d files, %d bad' % (len(files), bad))
sys.exit(1 if bad else 0)
"#;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, &expected.join(",")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with python3-whisper (apt-get install python3-whisper)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    if !status.success() {
        println!(
            "  VERIFY FAILED: python3-whisper found points missing (rounds: {})",
            expected.join(",")
        );
    }
    status.success()
}

/// Sleeps until the wall clock reaches `ts` (epoch seconds).
fn wait_for_wall_clock(ts: i64) {
    let ahead = ts as f64 - now_f64();
    if ahead > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(ahead + 0.01));
    }
}

/// Polls `f` every 10 ms until it says yes; the time since `from`, seconds.
fn until(from: Instant, what: &str, f: impl Fn() -> bool) -> f64 {
    loop {
        if f() {
            return from.elapsed().as_secs_f64();
        }
        if from.elapsed() > Duration::from_secs(1800) {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The whole W-ingest L run.
pub fn run(args: &Args) {
    let metrics = args.large_metrics;
    let per = if metrics <= 2_000_000 {
        20
    } else {
        metrics.div_ceil(100_000)
    };
    assert!(
        metrics % per == 0 && metrics / per <= 100_000 && per < 100,
        "--large-metrics: a multiple of 20 up to 2,000,000, of 100,000 hosts above"
    );
    PER_HOST.store(per, std::sync::atomic::Ordering::Relaxed);
    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("carbonhound-large-")
        .tempdir_in(&parent)
        .expect("a work directory");
    let conns_n = args.large_connections;
    let mut templates: Vec<Vec<u8>> = (0..conns_n)
        .map(|c| template(metrics, c, conns_n))
        .collect();
    let mut node = Node::start(args, dir.path());
    let whisper = dir.path().join("data/whisper");
    eprintln!(
        "W-ingest L: {metrics} metrics, {} over {conns_n} connections, {} min",
        args.large_retentions, args.large_minutes
    );

    // 1. creation
    let now = now_f64() as i64;
    let ts0 = now - now.rem_euclid(STEP);
    for t in &mut templates {
        patch(t, 0, ts0);
    }
    let mut conns = connect(&node.server, conns_n);
    let cpu0 = cpu_seconds(node.pid());
    let t0 = Instant::now();
    send_all(&mut conns, &templates);
    let created = wait_until(
        &node.server.http,
        "creates",
        Duration::from_secs(3600),
        |h| counter(h, "store", "creates") >= metrics as u64,
    );
    wait_until(
        &node.server.http,
        "round 0 on disk",
        Duration::from_secs(3600),
        |h| counter(h, "store", "committedPoints") >= metrics as u64,
    );
    let creation_s = (created - t0).as_secs_f64();
    let rss_created = peak_rss_mib(node.pid());
    eprintln!(
        "  creation: {creation_s:.1} s ({:.0} files/s), cpu {:.1} s, VmHWM {rss_created:.0} MiB",
        metrics as f64 / creation_s,
        cpu_seconds(node.pid()) - cpu0
    );

    // 2. sustained, over new connections: the creation's have been idle since they sent
    // round 0, and the server closes a connection idle longer than `[carbon] idle_timeout`
    // (2 min), as carbon's clients expect it to; collectd reconnects the same way.
    drop(conns);
    let conns = connect(&node.server, conns_n);
    // Every round's timestamp is at or before the moment it is sent (whisper takes no point
    // from the future): round 1 is the current 10 s slot, or the one after round 0's, waited
    // for.
    let now = now_f64() as i64;
    let clock = Clock {
        ts0,
        ts1: (now - now.rem_euclid(STEP)).max(ts0 + STEP),
    };
    wait_for_wall_clock(clock.ts1);
    let rounds = (args.large_minutes * 60 / STEP as usize).max(1);
    let (s, conns, mut templates) = sustain(args, &node, conns, templates, clock, rounds);
    let drain_from = Instant::now();
    let total = (metrics * (rounds + 1)) as u64;
    wait_until(&node.server.http, "drain", Duration::from_secs(3600), |h| {
        counter(h, "store", "committedPoints") >= total && counter(h, "cache", "size") == 0
    });
    let drain_s = drain_from.elapsed().as_secs_f64();
    let rss = peak_rss_mib(node.pid());
    let h = health(&node.server.http).unwrap_or_default();
    println!("W-ingest L: {metrics} metrics on {}, {} rounds of 10 s over {conns_n} connections ({} started late), WAL {}",
        args.large_retentions, s.rounds, s.behind, if args.wal { "on" } else { "off" });
    println!(
        "  creation                         {creation_s:>9.1} s  ({:.0} files/s)",
        metrics as f64 / creation_s
    );
    println!("  oldest unpersisted point (sampled {SAMPLE} metrics every 2 s, {} samples): p50 {:.1} s, p99 {:.1} s, max {:.1} s",
        s.ages.len(), pct(&s.ages, 50.0), pct(&s.ages, 99.0), pct(&s.ages, 100.0));
    println!("    second half only ({} samples): p50 {:.1} s, p99 {:.1} s, max {:.1} s; max by minute: {}",
        s.late_ages.len(), pct(&s.late_ages, 50.0), pct(&s.late_ages, 99.0), pct(&s.late_ages, 100.0),
        s.max_age_by_minute.iter().map(|a| format!("{a:.0}")).collect::<Vec<_>>().join(" "));
    println!(
        "  cache peak {} points; peak in minute 2 {}, in the last minute {}",
        s.cache_peak, s.cache_first_minute, s.cache_last_minute
    );
    println!(
        "  server CPU while sustained       {:>9.2} cores",
        s.cpu_cores
    );
    println!("  drain after the last round       {drain_s:>9.1} s");
    println!("  peak RSS (VmHWM)                 {rss:>9.0} MiB  (after creation {rss_created:.0} MiB), {:.0} bytes per metric", rss * 1048576.0 / metrics as f64);
    println!(
        "  errors {}, dropped {}",
        counter(&h, "store", "errors"),
        counter(&h, "store", "droppedPoints")
    );

    // 3. every point of a sample, with python3-whisper
    let verified = verify(&whisper, metrics, clock, rounds);

    // 4. queries at that size
    let http = node.server.http.clone();
    let hosts = metrics / per_host();
    // `big.h1*` as the issue asks (10,000 hosts at 1 M metrics); a run too small to have
    // any takes `big.h0*`.
    let lead = if hosts > 10_000 { '1' } else { '0' };
    let h1 = (0..hosts)
        .filter(|h| format!("{h:05}").starts_with(lead))
        .count();
    let find_all = timed(&http, "/metrics/find?query=big.*", |b| {
        let n = json_len(b, None)?;
        (n == hosts)
            .then_some(())
            .ok_or(format!("{n} nodes, not {hosts}"))
    });
    // `big.h01234` as the issue asks; a smaller run takes its last host.
    let one = format!("big.h{:05}", 1234.min(hosts - 1));
    let find_one = timed(&http, &format!("/metrics/find?query={one}.*"), |b| {
        let n = json_len(b, None)?;
        (n == per_host()).then_some(()).ok_or(format!("{n} nodes"))
    });
    let expand = timed(
        &http,
        &format!("/metrics/expand?query=big.h{lead}*.m01&leavesOnly=1"),
        |b| {
            let n = json_len(b, Some("results"))?;
            (n == h1)
                .then_some(())
                .ok_or(format!("{n} paths, not {h1}"))
        },
    );
    let last = clock.ts(rounds);
    let sum = timed(
        &http,
        &format!(
            "/render?target=sumSeries(big.h{lead}*.m01)&from={}&until={}&format=json",
            last - 300,
            last + 1
        ),
        |b| {
            let v: serde_json::Value = serde_json::from_str(b).map_err(|e| e.to_string())?;
            let points = v[0]["datapoints"].as_array().ok_or("no series")?;
            let want = (h1 * rounds) as f64;
            points
                .iter()
                .any(|p| p[0].as_f64() == Some(want) && p[1].as_i64() == Some(last))
                .then_some(())
                .ok_or(format!("no point {want} at {last}"))
        },
    );
    println!("  find big.* ({hosts} nodes)       {find_all:>9.2} ms p50");
    println!("  find {one}.*                {find_one:>9.2} ms p50");
    println!("  expand big.h{lead}*.m01 ({h1})      {expand:>9.2} ms p50");
    println!("  sumSeries(big.h{lead}*.m01) ({h1})  {sum:>9.2} ms p50");

    // 5. restart
    let r = rounds + 1;
    let ts = clock.ts(r);
    wait_for_wall_clock(ts);
    for t in &mut templates {
        patch(t, r, ts);
    }
    // New connections again: these sat idle through the drain, the check and the queries.
    drop(conns);
    let mut conns = connect(&node.server, conns_n);
    send_all(&mut conns, &templates);
    wait_until(
        &http,
        "the last round accepted",
        Duration::from_secs(600),
        |h| counter(h, "store", "metricsReceived") >= (metrics * (rounds + 2)) as u64,
    );
    drop(conns);
    let signal = if args.wal {
        libc::SIGKILL
    } else {
        libc::SIGTERM
    };
    let started = node.restart(signal);
    let probe = name(metrics / 2 + 3);
    eprintln!("  restarted at {:.3} (epoch s)", now_f64());
    // An HTTP answer, not a TCP connect: a connect to a free port of the ephemeral range
    // can connect to itself (TCP simultaneous open) while nothing listens.
    let listening = until(started, "listening", || {
        ureq::get(&format!("http://{http}/version"))
            .timeout(Duration::from_secs(5))
            .call()
            .is_ok()
    });
    let render = until(started, "a correct render", || {
        ureq::get(&format!(
            "http://{http}/render?target={probe}&from={}&until={}&format=json",
            ts - 60,
            ts + 1
        ))
        .timeout(Duration::from_secs(5))
        .call()
        .ok()
        .and_then(|b| b.into_string().ok())
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .is_some_and(|v| {
            v[0]["datapoints"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p[0].as_f64() == Some(r as f64) && p[1].as_i64() == Some(ts))
            })
        })
    });
    let find = until(started, "a complete find", || {
        ureq::get(&format!("http://{http}/metrics/find?query=big.*"))
            .timeout(Duration::from_secs(30))
            .call()
            .ok()
            .and_then(|b| b.into_string().ok())
            .is_some_and(|b| json_len(&b, None) == Ok(hosts))
    });
    let index = until(started, "the index scan", || {
        health(&http).is_some_and(|h| h["index"]["scan"] == "done")
    });
    let drained = until(started, "the log drained", || {
        health(&http).is_some_and(|h| {
            counter(&h, "cache", "size") == 0 && h["wal"]["segments"].as_u64().unwrap_or(0) <= 1
        })
    });
    println!("  restart ({}): listening {listening:.2} s, first correct render {render:.2} s, complete find big.* {find:.2} s, index scan done {index:.2} s, log drained {drained:.2} s",
        if args.wal { "SIGKILL, WAL replayed" } else { "SIGTERM" });
    drop(node);
    if args.keep || !verified {
        eprintln!("kept {}", dir.keep().display());
    }
    if !verified {
        std::process::exit(1);
    }
}

/// `--micro index`: bytes the metric index takes per metric for `--large-metrics` names, as
/// counted by this process's allocator (the index alone: no cache, no files).
pub fn micro_index(args: &Args) {
    let before = super::ALLOCATED.load(Relaxed);
    let t = Instant::now();
    let index = carbonhound::store::MetricIndex::new();
    for m in 0..args.large_metrics {
        index.insert(&name(m));
    }
    let took = t.elapsed().as_secs_f64();
    let bytes = super::ALLOCATED.load(Relaxed) - before;
    let t = Instant::now();
    let found = index.find("big.*", false, usize::MAX).len();
    let find_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "index of {} metrics: {:.1} MiB, {:.0} bytes per metric; built in {took:.2} s; find big.* ({found}) {find_ms:.1} ms",
        args.large_metrics,
        bytes as f64 / 1048576.0,
        bytes as f64 / args.large_metrics as f64
    );
    drop(index);
}
