//! graphite-web 1.1.8 (Debian's `graphite-web`) as a real HTTP server for the tests: a
//! remote Graphite for alerting's remote mode, and a cluster front later.
//!
//! [`GraphiteWeb::start`] runs `tests/support/graphite_web.py` with `/usr/bin/python3` (the
//! interpreter that sees the Debian packages): it writes graphite-web's settings and sqlite
//! database into a temporary folder, serves graphite-web's own WSGI application on
//! 127.0.0.1 at a free port, and reads whisper files from the folder it is given, on every
//! request. A missing graphite-web FAILS the test that asked for it (with the package to
//! install), never skips it. The server stops when the value is dropped or [`GraphiteWeb::stop`]
//! is called.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running graphite-web.
pub struct GraphiteWeb {
    child: Option<Child>,
    _storage: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its base URL, `http://127.0.0.1:<port>` (what `[alerting].graphite_url` takes).
    pub url: String,
    /// Everything it wrote on stderr so far (its request log, tracebacks).
    pub log: Arc<Mutex<String>>,
}

impl GraphiteWeb {
    /// Starts graphite-web serving the whisper files under `whisper_dir` (which must exist).
    /// Panics, failing the test, when it does not start within 60 s or graphite-web is not
    /// installed.
    pub fn start(whisper_dir: &Path) -> GraphiteWeb {
        let storage = tempfile::tempdir().expect("a temporary folder");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/graphite_web.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(storage.path())
            .arg(whisper_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 is required to run graphite-web (apt-get install python3)");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                eprint!("{text}");
                sink.lock().unwrap().push_str(&text);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse::<u16>().ok())
        else {
            let _ = child.kill();
            let status = child.wait();
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "graphite-web did not start ({status:?}; is Debian's graphite-web installed? \
                 apt-get install graphite-web python3-whisper): {}",
                log.lock().unwrap()
            );
        };
        GraphiteWeb {
            child: Some(child),
            _storage: storage,
            port,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// GETs `path_and_query` (e.g. `/render?target=a.b&format=json`) and parses the JSON
    /// answer, panicking (with graphite-web's log) on another status or bad JSON.
    pub fn get_json(&self, path_and_query: &str) -> serde_json::Value {
        let url = format!("{}{path_and_query}", self.url);
        let response = match ureq::get(&url).call() {
            Ok(r) => r,
            Err(e) => panic!("GET {url}: {e}\n{}", self.log.lock().unwrap()),
        };
        let mut body = Vec::new();
        response
            .into_reader()
            .read_to_end(&mut body)
            .expect("read graphite-web's answer");
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "GET {url}: not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// Stops the server (closing its stdin; killed after 10 s) and waits for it to exit, so
    /// its port refuses connections afterwards.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        drop(child.stdin.take());
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

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        self.stop();
    }
}
