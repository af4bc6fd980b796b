//! Slow and idle clients (issue #10, item 4), against the real binary: at
//! `carbon.max_connections` the longest-idle carbon connection is closed to admit a new
//! sender; a carbon connection idle past `carbon.idle_timeout` is closed while an active one
//! is not; an HTTP client that sends its request head slowly is cut after
//! `http.header_timeout`; a stalled request body fails after `http.body_timeout`; a
//! keep-alive client works across requests and is closed once idle past
//! `http.keepalive_timeout`. 127.0.0.1 only; every wait is bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{now, wait_for, Server};

/// How long a carbon connection must have been quiet before it is closed for a newcomer
/// (`EVICT_AFTER_IDLE` in src/carbon/registry.rs).
const EVICT_AFTER_IDLE: Duration = Duration::from_secs(5);

fn listener_counter(server: &Server, listener: &str, counter: &str) -> u64 {
    server.get_json("/health")["listeners"][listener][counter]
        .as_u64()
        .unwrap_or_else(|| panic!("no {listener}.{counter} in /health"))
}

/// Whether the server closed `s` within `within`: a read returns end of stream (or the
/// connection was reset). Data, if any arrives, is read past.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn metric_found(server: &Server, name: &str) -> bool {
    server
        .get_json(&format!("/metrics/find?query={name}"))
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

#[test]
fn at_max_connections_the_longest_idle_is_closed_for_a_new_sender() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_CARBON__MAX_CONNECTIONS", "50")]);
    // 50 idle connections, plaintext and pickle together (the limit is shared); the first
    // one a second before the others, so that it is the longest idle.
    let first = TcpStream::connect(server.tcp).unwrap();
    wait_for(10, "the first connection served", || {
        (listener_counter(&server, "plaintext_tcp", "connections") == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut idle: Vec<TcpStream> = std::iter::once(first)
        .chain((0..39).map(|_| TcpStream::connect(server.tcp).unwrap()))
        .chain((0..10).map(|_| TcpStream::connect(server.pickle).unwrap()))
        .collect();
    wait_for(10, "all 50 connections served", || {
        (listener_counter(&server, "plaintext_tcp", "connections") == 40
            && listener_counter(&server, "pickle_tcp", "connections") == 10)
            .then_some(())
    });
    std::thread::sleep(EVICT_AFTER_IDLE + Duration::from_millis(500));
    let t = now() - 5;
    let mut newcomer = TcpStream::connect(server.tcp).unwrap();
    newcomer
        .write_all(format!("slow.newcomer 7 {t}\n").as_bytes())
        .unwrap();
    wait_for(10, "the new sender's line stored", || {
        metric_found(&server, "slow.newcomer").then_some(())
    });
    // The first connection opened was idle longest: it is the one closed.
    assert!(
        closed_by_server(&mut idle[0], Duration::from_secs(5)),
        "the longest-idle connection is closed"
    );
    wait_for(5, "the eviction counted", || {
        (listener_counter(&server, "plaintext_tcp", "evicted") == 1).then_some(())
    });
    for (i, s) in idle.iter_mut().enumerate().skip(1) {
        assert!(
            !closed_by_server(s, Duration::from_millis(20)),
            "only one connection is closed for one newcomer, not #{i}"
        );
    }
    drop(newcomer);
    idle.clear();
}

/// The probe of issue #10 at the default `max_connections` (1024): 1,200 idle connections
/// (the ones beyond the limit wait in the accept queue) do not lock a new sender out.
#[test]
fn twelve_hundred_idle_connections_do_not_lock_a_new_sender_out() {
    // This test process needs 1,200+ descriptors: raise its soft limit to the hard one.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert!(
        lim.rlim_max >= 1400,
        "the hard open-file limit is {}",
        lim.rlim_max
    );
    lim.rlim_cur = lim.rlim_max;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let idle: Vec<TcpStream> = (0..1200)
        .map(|_| TcpStream::connect(server.tcp).expect("connect an idle client"))
        .collect();
    let t = now() - 5;
    let mut sender = TcpStream::connect(server.tcp).unwrap();
    sender
        .write_all(format!("crowd.newcomer 42 {t}\n").as_bytes())
        .unwrap();
    wait_for(15, "the new sender's point stored", || {
        metric_found(&server, "crowd.newcomer").then_some(())
    });
    wait_for(10, "an idle connection counted as evicted", || {
        (listener_counter(&server, "plaintext_tcp", "evicted") >= 1).then_some(())
    });
    drop(idle);
}

#[test]
fn a_connection_idle_past_idle_timeout_is_closed_and_an_active_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_CARBON__IDLE_TIMEOUT", "1s")]);
    let mut quiet = TcpStream::connect(server.tcp).unwrap();
    let mut active = TcpStream::connect(server.tcp).unwrap();
    let started = Instant::now();
    let t = now() - 5;
    // The active sender writes a line every 300 ms for 2.4 s: never idle for 1 s.
    for i in 0..8 {
        active
            .write_all(format!("slow.active.n{i} {i} {t}\n").as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closed_by_server(&mut quiet, Duration::from_secs(3)),
        "the quiet connection is closed"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before idle_timeout"
    );
    assert!(
        !closed_by_server(&mut active, Duration::from_millis(200)),
        "the active connection stays open"
    );
    active
        .write_all(format!("slow.active.last 9 {t}\n").as_bytes())
        .unwrap();
    wait_for(10, "the active sender's last line stored", || {
        metric_found(&server, "slow.active.last").then_some(())
    });
    assert_eq!(listener_counter(&server, "plaintext_tcp", "idle_closed"), 1);
}

/// Reads one HTTP/1.1 response with a Content-Length body; its status, or `None` when the
/// connection closed first.
fn read_response(s: &mut TcpStream) -> Option<u16> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(status)
}

#[test]
fn a_slow_header_client_is_cut_after_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_HTTP__HEADER_TIMEOUT", "1s")]);
    let mut slow = TcpStream::connect(server.http).unwrap();
    let started = Instant::now();
    let request =
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut cut = false;
    // One byte every 100 ms: the head would take 7 s and is never finished.
    for b in request.iter() {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        if closed_by_server(&mut slow, Duration::from_millis(100)) {
            cut = true;
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still served");
    }
    assert!(cut, "the slow client is disconnected");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "cut after about header_timeout, took {took:?}"
    );
    // A client that connects and sends nothing is cut too.
    let mut silent = TcpStream::connect(server.http).unwrap();
    assert!(closed_by_server(&mut silent, Duration::from_secs(4)));
    // Others are served meanwhile.
    assert_eq!(server.get("/health").0, 200);
}

#[test]
fn a_stalled_request_body_fails_after_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("CARBONHOUND_HTTP__BODY_TIMEOUT", "1s")]);
    let mut s = TcpStream::connect(server.http).unwrap();
    let started = Instant::now();
    s.write_all(
        b"POST /render HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntarget=a",
    )
    .unwrap();
    let status = read_response(&mut s);
    let took = started.elapsed();
    assert!(
        status.is_none_or(|st| st >= 400),
        "the stalled request fails, got {status:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "after about body_timeout, took {took:?}"
    );
}

#[test]
fn a_keep_alive_client_works_and_is_closed_once_idle() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[
            ("CARBONHOUND_HTTP__HEADER_TIMEOUT", "1s"),
            ("CARBONHOUND_HTTP__KEEPALIVE_TIMEOUT", "3s"),
        ],
    );
    let mut s = TcpStream::connect(server.http).unwrap();
    let get = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    s.write_all(get).unwrap();
    assert_eq!(read_response(&mut s), Some(200));
    // Idle longer than header_timeout, within keepalive_timeout: still open.
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(get).unwrap();
    assert_eq!(
        read_response(&mut s),
        Some(200),
        "the keep-alive connection serves again"
    );
    s.write_all(get).unwrap();
    assert_eq!(read_response(&mut s), Some(200));
    let idle_from = Instant::now();
    assert!(
        closed_by_server(&mut s, Duration::from_secs(6)),
        "closed once idle past keepalive_timeout"
    );
    assert!(idle_from.elapsed() >= Duration::from_millis(2800));
}
