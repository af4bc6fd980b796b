//! Running out of file descriptors loses nothing. The server runs with an open-file limit of
//! 4,000 (so its writers keep about 1,400 whisper files open, `[cache] open_files = "auto"`);
//! the test then lowers the running process's soft limit with `prlimit(2)`, as an operator's
//! `prlimit --pid` would or as other descriptors filling the table do:
//! - just above what is open: new files need descriptors the kept ones hold, so the writers
//!   close their kept files and every point is still written;
//! - to 3: no open can succeed; the points wait in the cache (an ERROR says why) and are all
//!   written once the limit is raised again.
//!
//! Every point is then read back with Python's whisper module.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{python, wait_for, Server};

const LIMIT: u64 = 4000;
const FIRST: usize = 1200;
const ALL: usize = 1600;

/// Sets the soft open-file limit of process `pid` (the hard one stays [`LIMIT`]).
fn set_soft_limit(pid: u32, soft: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: LIMIT,
    };
    // SAFETY: plain system call on a valid rlimit; no old limit asked for.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Lines `fd.mNNNN VALUE TIME` for metrics `from..to` at `t0 + 10 k`, valued `m + 10000 k`.
fn round(from: usize, to: usize, t0: i64, k: i64) -> String {
    (from..to)
        .map(|m| format!("fd.m{m:04} {} {}\n", m as i64 + 10_000 * k, t0 + 10 * k))
        .collect()
}

fn committed(server: &Server) -> u64 {
    server.get_json("/health")["store"]["committedPoints"]
        .as_u64()
        .unwrap()
}

#[test]
fn out_of_descriptors_the_writers_shed_their_kept_files_and_no_point_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schemas.conf"),
        "[all]\npattern = .*\nretentions = 10s:1h\n",
    )
    .unwrap();
    let schemas = dir.path().join("schemas.conf").display().to_string();
    let mut server = Server::start_with_nofile(
        dir.path(),
        &[
            ("CARBONHOUND_CARBON__SCHEMAS", schemas.as_str()),
            ("CARBONHOUND_CARBON__STATS_INTERVAL", "0s"),
            ("CARBONHOUND_CARBON__MAX_CONNECTIONS", "100"),
        ],
        LIMIT,
    );
    let pid = server.child.as_ref().unwrap().id();
    let t0 = (common::now() / 10) * 10 - 300;
    // One connection for the whole test: with the limit at 3 no new one could be accepted.
    let mut conn = TcpStream::connect(server.tcp).unwrap();

    // 1. The writers keep what they write open: (4000 − 1000 readers − 100 − 1024) × 3/4.
    conn.write_all(round(0, FIRST, t0, 0).as_bytes()).unwrap();
    wait_for(60, "the first round on disk", || {
        (committed(&server) == FIRST as u64).then_some(())
    });
    let open = open_descriptors(pid);
    assert!(
        open > FIRST && open < LIMIT as usize,
        "{open} descriptors: the {FIRST} files kept open"
    );

    // 2. Room for 100 more: the new files' opens fail until the kept ones are closed.
    set_soft_limit(pid, open as u64 + 100);
    let mut text = round(0, FIRST, t0, 1);
    text += &round(FIRST, ALL, t0, 0);
    text += &round(FIRST, ALL, t0, 1);
    conn.write_all(text.as_bytes()).unwrap();
    let want = (FIRST + FIRST + 2 * (ALL - FIRST)) as u64;
    wait_for(60, "the second round and the new files on disk", || {
        (committed(&server) == want).then_some(())
    });
    let h = server.get_json("/health");
    assert!(
        h["store"]["descriptorRefusals"].as_u64().unwrap() > 0,
        "the limit was met: {h}"
    );
    assert_eq!(h["store"]["droppedPoints"], 0, "{h}");
    assert_eq!(h["store"]["errors"], 0, "{h}");
    assert!(
        server
            .log_lines()
            .iter()
            .any(|l| l.contains("out of file descriptors with")),
        "the shedding is logged"
    );

    // 3. No descriptor at all: the points wait in the cache, an ERROR says why.
    set_soft_limit(pid, 3);
    conn.write_all(round(0, ALL, t0, 2).as_bytes()).unwrap();
    conn.flush().unwrap();
    wait_for(
        30,
        "an ERROR saying the writers are out of descriptors",
        || {
            server
                .log_lines()
                .iter()
                .any(|l| l.contains("out of file descriptors under") && l.contains("ERROR"))
                .then_some(())
        },
    );
    set_soft_limit(pid, LIMIT);
    let want = want + ALL as u64;
    wait_for(
        60,
        "the third round on disk once the limit is raised",
        || (committed(&server) == want).then_some(()),
    );
    let h = server.get_json("/health");
    assert_eq!(h["store"]["droppedPoints"], 0, "{h}");
    assert_eq!(h["store"]["errors"], 0, "{h}");
    assert_eq!(h["cache"]["size"], 0, "{h}");

    // Every point of every file, read back with whisper.py.
    let base = server.whisper_dir().join("fd").display().to_string();
    let out = python(
        "import sys, whisper\n\
         base, t0, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n\
         bad = []\n\
         for m in range(total):\n\
         \x20   (start, end, step), values = whisper.fetch('%s/m%04d.wsp' % (base, m), t0 - 1, t0 + 30)\n\
         \x20   got = {start + i * step: v for i, v in enumerate(values) if v is not None}\n\
         \x20   want = {t0 + 10 * k: float(m + 10000 * k) for k in range(3)}\n\
         \x20   if got != want: bad.append((m, got))\n\
         print(len(bad), bad[:3])\n",
        &[&base, &t0.to_string(), &ALL.to_string()],
    );
    assert_eq!(out.trim(), "0 []", "metrics whose file lacks points");
    drop(conn);
    assert!(server.terminate().success());
}
