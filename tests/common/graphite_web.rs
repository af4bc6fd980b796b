//! graphite-web 1.1.8 (Debian's `graphite-web`) as a real HTTP server for the tests: a
//! remote Graphite for alerting's remote mode, and a cluster front over carbonhound nodes
//! ([`GraphiteWeb::start_front`]).
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

/// How a graphite-web cluster front reaches its nodes: the settings of graphite-web's
/// `finders/remote.py` that [`GraphiteWeb::start_front`] sets.
#[derive(Debug, Clone)]
pub struct ClusterFront {
    /// `CLUSTER_SERVERS`, each `host:port`, optionally with `?format=msgpack` (the remote
    /// finder's and reader's wire format; pickle without it). The same server may be listed
    /// twice: graphite-web then has two finders holding the same nodes, and merges them.
    pub servers: Vec<String>,
    /// `REMOTE_STORE_USE_POST`: finds and renders are sent as `multipart/form-data` POSTs
    /// (GETs otherwise).
    pub use_post: bool,
}

/// A running graphite-web.
pub struct GraphiteWeb {
    child: Option<Child>,
    _storage: tempfile::TempDir,
    /// The empty whisper folder of a cluster front.
    _whisper: Option<tempfile::TempDir>,
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
        GraphiteWeb::launch(whisper_dir, &[])
    }

    /// Starts graphite-web as a cluster front with no data of its own: every find and
    /// render goes to `front.servers` (see [`ClusterFront`]). Panics as [`GraphiteWeb::start`].
    pub fn start_front(front: &ClusterFront) -> GraphiteWeb {
        let whisper = tempfile::tempdir().expect("a temporary folder");
        let mut args = Vec::new();
        for server in &front.servers {
            args.push("--cluster-server".to_string());
            args.push(server.clone());
        }
        if front.use_post {
            args.push("--remote-use-post".into());
        }
        let mut gw = GraphiteWeb::launch(whisper.path(), &args);
        gw._whisper = Some(whisper);
        gw
    }

    fn launch(whisper_dir: &Path, args: &[String]) -> GraphiteWeb {
        let storage = tempfile::tempdir().expect("a temporary folder");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/graphite_web.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(storage.path())
            .arg(whisper_dir)
            .args(args)
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
            _whisper: None,
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

    /// GETs `path_and_query`; (status, content type, body), whatever the status.
    pub fn get(&self, path_and_query: &str) -> (u16, String, Vec<u8>) {
        super::http_get(
            std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            path_and_query,
        )
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
