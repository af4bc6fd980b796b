//! A full disk loses nothing: the data directory is a 2 MiB tmpfs (in the server's own mount
//! namespace, `unshare -Urm`, so no root is needed) nearly filled before the server starts; a
//! burst of new metrics fills it mid-way; the points stay in the cache (readable), `/health` says
//! `disk_full`, and once space is freed every point is written — read back from the files
//! with Python's whisper module through the server's `/proc/<pid>/root`. The write-ahead log
//! lives on the same file system: its appends fail too while it is full (logged, the points
//! kept in the cache), and once space is back it needs room beside the 120 files (a page each
//! on tmpfs), hence 2 MiB.

mod common;

use std::time::Duration;

use common::{enc, now, python, wait_for, Server};

const METRICS: usize = 120;
const POINTS: usize = 30;

#[test]
fn points_wait_in_the_cache_while_the_disk_is_full_and_all_reach_it_after() {
    // A mount namespace of our own needs `/` to be a mount point, which it is not in a chroot.
    let root_is_a_mount = std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some("/")))
        .unwrap_or(false);
    assert!(
        root_is_a_mount,
        "this test mounts a tmpfs in its own mount namespace (unshare), which needs `/` to be a \
         mount point: run it on a machine or container, not in a chroot"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    // Small files (10 s : 1 h = 4.3 KiB each, fully written), so 120 of them fill what the
    // filler leaves.
    std::fs::write(
        dir.path().join("schemas.conf"),
        "[all]\npattern = .*\nretentions = 10s:1h\n",
    )
    .unwrap();
    // The mount and the filler finish before the server starts (only the waiter runs in the
    // background): otherwise the server may create `data/wal` beneath the mount point.
    let script = format!(
        "mount -t tmpfs -o size=2m tmpfs '{d}/data' && \
         head -c 1900000 /dev/zero > '{d}/data/filler' || exit 1; \
         ( while [ ! -e '{d}/free-space' ]; do sleep 0.1; done; rm -f '{d}/data/filler' ) & \
         exec \"$0\" serve"
    );
    let schemas = format!("{d}/schemas.conf");
    let server = Server::start_in_namespace(
        dir.path(),
        &[
            ("CARBONHOUND_CARBON__SCHEMAS", schemas.as_str()),
            ("CARBONHOUND_CARBON__STATS_INTERVAL", "0s"),
            ("CARBONHOUND_CACHE__PREALLOCATION", "zero"),
        ],
        &script,
    );
    let pid = server.child.as_ref().unwrap().id();
    let t0 = (now() / 10) * 10 - 10 * POINTS as i64;
    let mut text = String::new();
    for m in 0..METRICS {
        for i in 0..POINTS {
            text.push_str(&format!(
                "full.m{m:03} {} {}\n",
                m * 1000 + i,
                t0 + 10 * i as i64
            ));
        }
    }
    server.send_tcp(&text);

    // The disk fills: reported, nothing dropped, every point still readable from the cache.
    let h = wait_for(30, "/health to report disk_full", || {
        let h = server.get_json("/health");
        (h["disk_full"] == true).then_some(h)
    });
    assert_eq!(h["store"]["droppedPoints"], 0, "{h}");
    assert_eq!(h["store"]["errors"], 0, "{h}");
    assert!(h["store"]["diskFullRefusals"].as_u64().unwrap() > 0, "{h}");
    assert!(h["cache"]["size"].as_u64().unwrap() > 0, "{h}");
    let last = format!("full.m{:03}", METRICS - 1);
    let v = server.get_json(&format!(
        "/render?target={}&from={}&until={}&format=json",
        enc(&last),
        t0 - 1,
        t0 + 10 * POINTS as i64
    ));
    let known = v[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0].is_number())
        .count();
    assert_eq!(
        known, POINTS,
        "the unwritten metric reads from the cache: {v}"
    );

    // Space comes back: everything is written, the flag clears.
    std::fs::write(dir.path().join("free-space"), "").unwrap();
    wait_for(60, "every point on disk after space is freed", || {
        let h = server.get_json("/health");
        (h["disk_full"] == false
            && h["cache"]["size"] == 0
            && h["store"]["committedPoints"] == (METRICS * POINTS) as u64)
            .then_some(())
    });
    let h = server.get_json("/health");
    assert_eq!(h["store"]["droppedPoints"], 0, "{h}");

    // Read every file back with whisper.py, through the server's mount namespace.
    let whisper = format!("/proc/{pid}/root{d}/data/whisper/full");
    let out = python(
        "import sys, whisper\n\
         base, t0, metrics, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])\n\
         bad = []\n\
         for m in range(metrics):\n\
         \x20   (start, end, step), values = whisper.fetch('%s/m%03d.wsp' % (base, m), t0 - 1, t0 + 10 * points)\n\
         \x20   got = {start + i * step: v for i, v in enumerate(values) if v is not None}\n\
         \x20   want = {t0 + 10 * i: float(m * 1000 + i) for i in range(points)}\n\
         \x20   if got != want: bad.append(m)\n\
         print(len(bad))\n",
        &[
            &whisper,
            &t0.to_string(),
            &METRICS.to_string(),
            &POINTS.to_string(),
        ],
    );
    assert_eq!(out.trim(), "0", "metrics whose file lacks points");
    std::thread::sleep(Duration::from_millis(100));
}
