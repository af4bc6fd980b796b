//! What the benchmark examples share: a release `carbonhound serve` started as its own
//! process on free loopback ports, stopped with SIGTERM when dropped. Included with
//! `#[path = "support/server.rs"] mod server;` (not an example of its own).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server: its process and its HTTP and carbon plaintext addresses (`host:port`).
pub struct Server {
    pub child: Child,
    pub http: String,
    pub carbon: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `bin serve --config config` (RUST_LOG=warn, or `$BENCH_RUST_LOG`; stderr appended
/// to `log`, so a restarted server's log follows the first's), whose settings listen on
/// `http_port` and `carbon_port`; does not wait for it to answer.
pub fn spawn(bin: &Path, config: &Path, log: &Path, http_port: u16, carbon_port: u16) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let level = std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into());
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", level)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it with `cargo build --release`)",
                bin.display()
            )
        });
    Server {
        child,
        http: format!("127.0.0.1:{http_port}"),
        carbon: format!("127.0.0.1:{carbon_port}"),
    }
}
