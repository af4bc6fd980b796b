//! Shared helpers of the integration tests: the real `carbonhound` binary started on free
//! ports in a temporary directory, small HTTP/carbon clients, the SMTP sink, and
//! graphite-web as an HTTP server ([`graphite_web`]).
#![allow(dead_code)]

pub mod graphite_web;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `carbonhound serve`, killed (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    pub pickle: SocketAddr,
    /// Every stderr line the server printed so far is sent here.
    pub log: mpsc::Receiver<String>,
    pub seen_log: Vec<String>,
}

fn parse_addr(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    let end = rest.find(' ').unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

impl Server {
    /// Starts the binary in `dir` (its working directory, so `./data` lands there) with every
    /// port 0 and extra `CARBONHOUND_*` variables.
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with_args(dir, &[], env)
    }

    /// As [`Server::start_in`], with extra arguments after `serve` (e.g. `--config FILE`).
    pub fn start_with_args(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbonhound"));
        cmd.arg("serve").args(args);
        Self::start_command(cmd, dir, env)
    }

    /// As [`Server::start_in`], with the open-file limit (`RLIMIT_NOFILE`, soft and hard) set
    /// to `nofile` before the binary runs, as `LimitNOFILE=` or `ulimit -n` would.
    pub fn start_with_nofile(dir: &Path, env: &[(&str, &str)], nofile: u64) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbonhound"));
        cmd.arg("serve");
        // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent's.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Self::start_command(cmd, dir, env)
    }

    /// As [`Server::start_in`], the binary started by `sh -c SCRIPT` in its own mount
    /// namespace, so SCRIPT may mount a tmpfs: `unshare -m` as root, `unshare -Urm` (a user
    /// namespace too) otherwise — root skips the user namespace, which a chroot forbids.
    /// SCRIPT ends with `exec "$0" serve`, `$0` being the binary.
    pub fn start_in_namespace(dir: &Path, env: &[(&str, &str)], script: &str) -> Server {
        let mut cmd = Command::new("unshare");
        let root = unsafe { libc::geteuid() } == 0;
        cmd.args([
            if root { "-m" } else { "-Urm" },
            "sh",
            "-c",
            script,
            env!("CARGO_BIN_EXE_carbonhound"),
        ]);
        Self::start_command(cmd, dir, env)
    }

    fn start_command(mut cmd: Command, dir: &Path, env: &[(&str, &str)]) -> Server {
        cmd.current_dir(dir)
            .env("CARBONHOUND_HTTP__LISTEN", "127.0.0.1:0")
            .env("CARBONHOUND_CARBON__PLAINTEXT_TCP", "127.0.0.1:0")
            .env("CARBONHOUND_CARBON__PLAINTEXT_UDP", "127.0.0.1:0")
            .env("CARBONHOUND_CARBON__PICKLE_TCP", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start carbonhound");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not report its addresses; log so far: {seen:#?}");
            };
            seen.push(line.clone());
            if line.contains("listening:") {
                let get = |k| parse_addr(&line, k).unwrap_or_else(|| panic!("no {k} in {line}"));
                return Server {
                    child: Some(child),
                    dir: dir.to_path_buf(),
                    http: get("http"),
                    tcp: get("plaintext_tcp"),
                    udp: get("plaintext_udp"),
                    pickle: get("pickle_tcp"),
                    log: rx,
                    seen_log: seen,
                };
            }
        }
    }

    /// Sends SIGTERM and waits for a clean exit (panics after 60 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        unsafe_kill(child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Log lines so far (drains the channel).
    pub fn log_lines(&mut self) -> &[String] {
        while let Ok(l) = self.log.try_recv() {
            self.seen_log.push(l);
        }
        &self.seen_log
    }

    /// GET `path_and_query` over HTTP; (status, content type, body).
    pub fn get(&self, path_and_query: &str) -> (u16, String, Vec<u8>) {
        http_get(self.http, path_and_query)
    }

    /// GET and parse JSON (panics on a non-200 answer).
    pub fn get_json(&self, path_and_query: &str) -> serde_json::Value {
        let (status, _, body) = self.get(path_and_query);
        assert_eq!(
            status,
            200,
            "GET {path_and_query}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "GET {path_and_query}: bad JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// Sends plaintext carbon lines over one TCP connection and closes it.
    pub fn send_tcp(&self, text: &str) {
        let mut s = TcpStream::connect(self.tcp).expect("connect carbon");
        s.write_all(text.as_bytes()).expect("send");
    }

    /// The whisper directory.
    pub fn whisper_dir(&self) -> PathBuf {
        self.dir.join("data").join("whisper")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            unsafe_kill(child.id(), 15);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal with the `kill` command (no libc in tests).
pub fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A plain HTTP/1.1 GET; (status, content type, body).
pub fn http_get(addr: SocketAddr, path_and_query: &str) -> (u16, String, Vec<u8>) {
    let url = format!("http://{addr}{path_and_query}");
    match ureq::get(&url).call() {
        Ok(r) => response_parts(r),
        Err(ureq::Error::Status(_, r)) => response_parts(r),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// A form POST; (status, content type, body).
pub fn http_post_form(
    addr: SocketAddr,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let url = format!("http://{addr}{path}");
    match ureq::post(&url).send_form(form) {
        Ok(r) => response_parts(r),
        Err(ureq::Error::Status(_, r)) => response_parts(r),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

fn response_parts(r: ureq::Response) -> (u16, String, Vec<u8>) {
    let status = r.status();
    let ct = r.content_type().to_string();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).expect("read body");
    (status, ct, body)
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Polls `f` every 200 ms until it returns `Some`, panicking with `what` after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs /usr/bin/python3 with a script and arguments; returns stdout. Panics with a hint to
/// install the Debian package when the interpreter or module is missing.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("/usr/bin/python3 is required (apt-get install python3)");
    assert!(
        out.status.success(),
        "python failed (is python3-whisper installed? apt-get install python3-whisper): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// The SMTP sink: aiosmtpd saving each message to a folder.
pub struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    /// The SMTP port on 127.0.0.1.
    pub port: u16,
}

impl Sink {
    /// Starts aiosmtpd (fails the test when python3-aiosmtpd is missing).
    pub fn start() -> Sink {
        Sink::start_on(0)
    }

    /// Starts aiosmtpd on `port` (0: any free port), e.g. one a server was already told
    /// to use while nothing listened there (an SMTP server that was down).
    pub fn start_on(port: u16) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(dir.path())
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 must exist to run the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the SMTP sink (aiosmtpd, Debian python3-aiosmtpd) did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        Sink { child, dir, port }
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// Waits until at least `n` messages arrived (at most `limit`).
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Vec<u8>> {
        let t0 = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n || t0.elapsed() > limit {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless Chromium with a profile of its own and `args` (e.g. `--dump-dom URL`,
/// `--screenshot=F --window-size=W,H URL`); fails the test when Chromium is missing or fails.
pub fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
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
            "--force-device-scale-factor=1",
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

/// Settings of an in-process test server with alerting, under `dir`: every listener on
/// 127.0.0.1 port 0 (UDP and pickle off), no self metrics, rules in `dir/alerts.d` (written
/// as `file` with `rules`) checked every second, user templates in `dir/templates` (absent
/// unless a test writes one), links to `http://carbonhound.test:8080`, mail from
/// `carbonhound@test.example` to `oncall@test.example` through 127.0.0.1:`smtp_port` without
/// TLS.
pub fn alert_settings(
    dir: &Path,
    smtp_port: u16,
    file: &str,
    rules: &str,
) -> carbonhound::config::Settings {
    let mut s = carbonhound::config::Settings::defaults();
    s.data_dir = dir.join("data");
    s.carbon.plaintext_tcp = "127.0.0.1:0".into();
    s.carbon.plaintext_udp = String::new();
    s.carbon.pickle_tcp = String::new();
    s.carbon.stats_interval = Duration::ZERO;
    s.http.listen = "127.0.0.1:0".into();
    s.alerting.rules_dir = dir.join("alerts.d");
    s.alerting.templates_dir = dir.join("templates");
    s.alerting.interval = Duration::from_secs(1);
    s.alerting.email_from = "carbonhound@test.example".into();
    s.alerting.email_to = vec!["oncall@test.example".into()];
    s.alerting.base_url = "http://carbonhound.test:8080".into();
    s.smtp.host = "127.0.0.1".into();
    s.smtp.port = smtp_port;
    s.smtp.tls = carbonhound::config::SmtpTls::None;
    s.smtp.timeout = Duration::from_secs(5);
    std::fs::create_dir_all(&s.alerting.rules_dir).unwrap();
    if !rules.is_empty() {
        std::fs::write(s.alerting.rules_dir.join(file), rules).unwrap();
    }
    s
}

/// A two-worker tokio runtime for an in-process server.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends plaintext `lines` to an in-process server's carbon listener.
pub fn push(running: &carbonhound::server::Running, lines: &str) {
    let addr = running
        .addrs
        .carbon
        .plaintext_tcp
        .expect("plaintext listener");
    std::net::TcpStream::connect(addr)
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
}
