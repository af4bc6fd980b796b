//! Metric delete, rename and stale against the real binary, with `[http] auth_tokens` set:
//! the HTTP endpoints (`POST /metrics/delete`, `/metrics/rename`, `GET|POST /metrics/stale`)
//! and the `carbonhound metrics` CLI. After each operation find, expand, render, `/tags` and
//! `seriesByTag` answer at once, the files are checked on disk (and read with
//! /usr/bin/python3's whisper module), a SIGKILL and WAL replay do not bring a deleted metric
//! back, and hostile names are refused with 400, nothing outside the whisper directory
//! changing.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{enc, now, python, unsafe_kill, wait_for, Server};

const TOKEN: &str = "lifecycle-token-0123456789";

/// A form POST with optional bearer token; (status, body).
fn post(server: &Server, path: &str, form: &[(&str, &str)], token: Option<&str>) -> (u16, String) {
    let url = format!("http://{}{path}", server.http);
    let mut req = ureq::post(&url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.send_form(form) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

/// An authorized POST that must answer 200; its JSON.
fn admin(server: &Server, path: &str, form: &[(&str, &str)]) -> serde_json::Value {
    let (status, body) = post(server, path, form, Some(TOKEN));
    assert_eq!(status, 200, "POST {path} {form:?}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// `/metrics/find` paths (treejson's `id`s), sorted, each once.
fn find(server: &Server, query: &str) -> Vec<String> {
    let v = server.get_json(&format!("/metrics/find?query={}", enc(query)));
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Now minus `ago` seconds, on a minute (so on every archive's step).
fn minute_ago(ago: i64) -> i64 {
    let t = now() - ago;
    t - t.rem_euclid(60)
}

fn expand(server: &Server, query: &str) -> Vec<String> {
    strings(
        &server.get_json(&format!(
            "/metrics/expand?query={}&leavesOnly=1",
            enc(query)
        ))["results"],
    )
}

/// `/render` JSON: target → known (timestamp, value) pairs.
fn render(server: &Server, target: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let v = server.get_json(&format!(
        "/render?target={}&from=-10min&until=now&format=json",
        enc(target)
    ));
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["datapoints"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| Some((p[1].as_i64()?, p[0].as_f64()?)))
                .collect();
            (s["target"].as_str().unwrap().to_string(), points)
        })
        .collect()
}

/// Every file and directory under `dir` (relative), sorted; `skip` left out.
fn tree(dir: &Path, skip: &Path) -> Vec<PathBuf> {
    fn rec(d: &Path, root: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p == skip {
                continue;
            }
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                rec(&p, root, skip, out);
            }
        }
    }
    let mut out = Vec::new();
    rec(dir, dir, skip, &mut out);
    out.sort();
    out
}

fn health_u64(server: &Server, section: &str, key: &str) -> u64 {
    server.get_json("/health")[section][key].as_u64().unwrap()
}

/// Settings of a server whose one writer, after its first pass, waits an hour: points sent
/// after that pass stay in the cache (and the WAL) until shutdown.
const SLOW: [(&str, &str); 5] = [
    ("CARBONHOUND_HTTP__AUTH_TOKENS", TOKEN),
    ("CARBONHOUND_CACHE__WRITERS", "1"),
    ("CARBONHOUND_CACHE__WRITE_INTERVAL", "1h"),
    ("CARBONHOUND_CACHE__WAL_SYNC", "100ms"),
    ("CARBONHOUND_CARBON__STATS_INTERVAL", "0s"),
];

/// A server in `dir` whose whisper files hold `lines` (`points` points), and whose points
/// sent from now on stay in the cache: a first server (writing at once) takes `lines` and
/// stops cleanly (every point on disk); then a [`SLOW`] one starts, and its writer's first
/// pass writes one `warm.up` point (a pass of one line cannot take part of a read), after
/// which it waits an hour. `metricsReceived` is then 1.
fn with_files(dir: &Path, lines: &str, points: u64) -> Server {
    let mut first = Server::start_in(dir, &[SLOW[0], SLOW[4]]);
    first.send_tcp(lines);
    wait_for(20, "the points written", || {
        (health_u64(&first, "store", "committedPoints") == points).then_some(())
    });
    assert!(first.terminate().success());
    let server = Server::start_in(dir, &SLOW);
    server.send_tcp(&format!("warm.up 1 {}\n", minute_ago(60)));
    wait_for(20, "the first pass to write warm.up", || {
        (health_u64(&server, "store", "committedPoints") == 1).then_some(())
    });
    server
}

/// Sends `lines` and waits until `total` points were received.
fn cached(server: &Server, lines: &str, total: u64) {
    server.send_tcp(lines);
    wait_for(20, "the points received", || {
        (health_u64(server, "store", "metricsReceived") == total).then_some(())
    });
}

fn carbonhound(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbonhound"));
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run carbonhound")
}

#[test]
fn delete_needs_the_token_and_everything_follows_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = minute_ago(120);
    let server = with_files(
        dir.path(),
        &format!(
            "life.a.x 1 {t}\nlife.a.y 2 {t}\nlife.b.z 3 {t}\ncpu;host=web1;dc=par 4 {t}\ncpu;host=web2 5 {t}\n"
        ),
        5,
    );
    let w = server.whisper_dir();
    assert!(w.join("life/a/x.wsp").exists());
    // Unpersisted points too: delete discards them.
    cached(&server, &format!("life.a.x 10 {}\n", t + 60), 2);

    // Refused without the token, or with a wrong one: nothing changes.
    assert_eq!(
        post(&server, "/metrics/delete", &[("query", "life.a.*")], None).0,
        401
    );
    assert_eq!(
        post(
            &server,
            "/metrics/delete",
            &[("query", "life.a.*")],
            Some("wrong-token-0000000000")
        )
        .0,
        401
    );
    assert_eq!(
        post(
            &server,
            "/metrics/rename",
            &[("from", "life.a"), ("to", "q")],
            None
        )
        .0,
        401
    );
    assert_eq!(
        post(
            &server,
            "/metrics/stale?olderThan=1d&delete=true",
            &[],
            None
        )
        .0,
        401
    );
    // A cross-site browser post is refused even with the token.
    let cross = ureq::post(&format!("http://{}/metrics/delete", server.http))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .set("Origin", "http://evil.example")
        .send_form(&[("query", "life.a.*")]);
    assert!(
        matches!(cross, Err(ureq::Error::Status(403, _))),
        "{cross:?}"
    );
    assert!(w.join("life/a/x.wsp").exists());

    // A dry run lists, deletes nothing.
    let v = admin(
        &server,
        "/metrics/delete",
        &[("query", "life.a.*"), ("dryRun", "true")],
    );
    assert_eq!(strings(&v["matched"]), vec!["life.a.x", "life.a.y"]);
    assert_eq!(v["count"], 2);
    assert!(w.join("life/a/x.wsp").exists());

    let v = admin(&server, "/metrics/delete", &[("query", "life.a.*")]);
    assert_eq!(strings(&v["deleted"]), vec!["life.a.x", "life.a.y"]);
    assert_eq!(v["count"], 2);
    // Right after: find, expand, render and the disk agree.
    assert_eq!(find(&server, "life.*"), vec!["life.b"]);
    assert!(find(&server, "life.a.*").is_empty());
    assert!(expand(&server, "life.a.*").is_empty());
    assert!(render(&server, "life.a.*").is_empty());
    assert!(render(&server, "life.a.x").is_empty());
    assert!(!w.join("life/a/x.wsp").exists() && !w.join("life/a").exists());
    assert!(w.join("life/b/z.wsp").exists());
    assert_eq!(render(&server, "life.b.z")["life.b.z"], vec![(t, 3.0)]);
    // Nothing matches any more: 404 naming the parameter.
    let (status, body) = post(
        &server,
        "/metrics/delete",
        &[("query", "life.a.*")],
        Some(TOKEN),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("query"), "{body}");

    // A tagged series, by its name (tags in any order): /tags and seriesByTag follow.
    let tagged = "cpu;dc=par;host=web1";
    let file = w.join(
        Command::new("/usr/bin/python3")
            .args(["-c", "import hashlib,sys; h=hashlib.sha256(sys.argv[1].encode()).hexdigest(); print(f'_tagged/{h[:3]}/{h[3:6]}/'+sys.argv[1].replace('.','_DOT_')+'.wsp')", tagged])
            .output()
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string())
            .unwrap(),
    );
    assert!(file.exists(), "{}", file.display());
    assert_eq!(render(&server, "seriesByTag('host=~web.*')").len(), 2);
    let v = admin(
        &server,
        "/metrics/delete",
        &[("query", "cpu;host=web1;dc=par")],
    );
    assert_eq!(strings(&v["deleted"]), vec![tagged]);
    assert!(!file.exists());
    let series = render(&server, "seriesByTag('host=~web.*')");
    assert_eq!(series.keys().collect::<Vec<_>>(), vec!["cpu;host=web2"]);
    let tags = server.get_json("/tags");
    assert!(
        tags.as_array().unwrap().iter().all(|t| t["tag"] != "dc"),
        "dc was only web1's tag: {tags}"
    );
    assert!(
        strings(&server.get_json(&format!("/tags/findSeries?expr={}", enc("dc=par")))).is_empty()
    );

    // A point after the delete recreates the metric: findable and rendered at once, its file
    // made from the storage rules at shutdown's flush.
    cached(&server, &format!("life.a.x 7 {}\n", t + 60), 3);
    assert_eq!(find(&server, "life.a.*"), vec!["life.a.x"]);
    assert_eq!(render(&server, "life.a.x")["life.a.x"], vec![(t + 60, 7.0)]);
    let mut server = server;
    assert!(server.terminate().success());
    let out = python(
        "import sys, whisper\n(t0, _, step), vals = whisper.fetch(sys.argv[1], int(sys.argv[2]))\nprint([v for v in vals if v is not None])",
        &[w.join("life/a/x.wsp").to_str().unwrap(), &(t - 600).to_string()],
    );
    assert_eq!(out.trim(), "[7.0]", "only the point sent after the delete");
}

#[test]
fn hostile_names_are_refused_and_nothing_outside_changes() {
    let dir = tempfile::tempdir().unwrap();
    // Files beside the data directory that a path escape would reach.
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("x.wsp"), b"keep").unwrap();
    std::fs::write(dir.path().join("outside/m.wsp"), b"keep").unwrap();
    let t = minute_ago(120);
    let server = with_files(dir.path(), &format!("safe.m 1 {t}\n"), 1);
    let w = server.whisper_dir();
    // A symbolic link inside the whisper directory to the outside one.
    std::os::unix::fs::symlink(dir.path().join("outside"), w.join("link")).unwrap();
    let data = dir.path().join("data");
    let before_outside = tree(dir.path(), &data);
    let before_whisper = tree(&w, Path::new("/nonexistent"));

    let long = "a.".repeat(3000) + "b";
    for (path, form) in [
        ("/metrics/delete", vec![("query", "../x")]),
        ("/metrics/delete", vec![("query", "a/b")]),
        ("/metrics/delete", vec![("query", "..")]),
        ("/metrics/delete", vec![("query", "safe..m")]),
        ("/metrics/delete", vec![("query", "")]),
        ("/metrics/delete", vec![("query", "  ")]),
        ("/metrics/delete", vec![]),
        ("/metrics/delete", vec![("query", "a\0b")]),
        ("/metrics/delete", vec![("query", long.as_str())]),
        (
            "/metrics/delete",
            vec![("query", "safe.m"), ("dryRun", "maybe")],
        ),
        ("/metrics/rename", vec![("from", "safe.m"), ("to", "../x")]),
        ("/metrics/rename", vec![("from", "safe.m"), ("to", "a/b")]),
        ("/metrics/rename", vec![("from", "../safe"), ("to", "x")]),
        ("/metrics/rename", vec![("from", "safe.m"), ("to", "")]),
        ("/metrics/rename", vec![("from", "safe.m"), ("to", "x.*")]),
        ("/metrics/rename", vec![("from", "safe.m"), ("to", "x;t=v")]),
        (
            "/metrics/rename",
            vec![("from", "safe"), ("to", "safe.m.x")],
        ),
        ("/metrics/rename", vec![("from", "safe.m")]),
        ("/metrics/stale", vec![("olderThan", "-1d")]),
        ("/metrics/stale", vec![("olderThan", "soon")]),
        ("/metrics/stale", vec![]),
    ] {
        let (status, body) = post(&server, path, &form, Some(TOKEN));
        let shown: Vec<(&str, String)> = form
            .iter()
            .map(|(k, v)| (*k, v.chars().take(40).collect()))
            .collect();
        assert_eq!(status, 400, "{path} {shown:?}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        let msg = v["error"].as_str().unwrap();
        let param = form.first().map_or("query", |f| f.0);
        assert!(
            ["query", "from", "to", "dryRun", "olderThan"]
                .iter()
                .any(|p| msg.starts_with(p)),
            "{path} {shown:?}: the message names the parameter ({param}): {msg}"
        );
        assert!(body.len() < 2000, "the refused text is not echoed whole");
    }
    // A 10 MB query (past query.max_body_bytes): 400, refused once the limit is passed (the
    // rest of the body need not be read, so it is sent from another thread).
    let mut conn = std::net::TcpStream::connect(server.http).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let size = 10 << 20;
    let mut writer = conn.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let head = format!(
            "POST /metrics/delete HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\
             Connection: close\r\n\r\nquery="
        );
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&vec![b'a'; size - 6]);
    });
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut answer);
    let _ = sending.join();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("query: the request is larger"), "{answer}");

    // The link is never followed: deleting or renaming through it is refused.
    let (status, body) = post(
        &server,
        "/metrics/rename",
        &[("from", "safe.m"), ("to", "link.m2")],
        Some(TOKEN),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("symbolic link"), "{body}");
    // Renaming to an existing name: 409; from a missing one: 404.
    let (status, body) = post(
        &server,
        "/metrics/rename",
        &[("from", "safe.m"), ("to", "safe")],
        Some(TOKEN),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("to:"), "{body}");
    let (status, body) = post(
        &server,
        "/metrics/rename",
        &[("from", "nope"), ("to", "x")],
        Some(TOKEN),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("from:"), "{body}");
    // GET lists only.
    let (status, _, _) = server.get("/metrics/stale?olderThan=1d&delete=true");
    assert_eq!(status, 405);

    assert_eq!(
        tree(dir.path(), &data),
        before_outside,
        "nothing outside the data dir changed"
    );
    assert_eq!(tree(&w, Path::new("/nonexistent")), before_whisper);
    assert_eq!(std::fs::read(dir.path().join("x.wsp")).unwrap(), b"keep");
    assert_eq!(
        std::fs::read(dir.path().join("outside/m.wsp")).unwrap(),
        b"keep"
    );
    assert_eq!(find(&server, "safe.*"), vec!["safe.m"]);
}

#[test]
fn rename_moves_persisted_and_cached_points_of_a_metric_and_a_subtree() {
    let dir = tempfile::tempdir().unwrap();
    let t1 = minute_ago(180);
    let t2 = t1 + 60;
    let mut server = with_files(
        dir.path(),
        &format!("ren.one 1 {t1}\nren.tree.a 2 {t1}\nren.tree.sub.b 3 {t1}\n"),
        3,
    );
    // Second points: in the cache only at rename time.
    cached(
        &server,
        &format!("ren.one 11 {t2}\nren.tree.a 12 {t2}\nren.tree.sub.b 13 {t2}\n"),
        4,
    );
    let w = server.whisper_dir();

    let v = admin(
        &server,
        "/metrics/rename",
        &[("from", "ren.one"), ("to", "ren.uno")],
    );
    assert_eq!(
        v["renamed"],
        serde_json::json!([{"from": "ren.one", "to": "ren.uno"}])
    );
    let v = admin(
        &server,
        "/metrics/rename",
        &[("from", "ren.tree"), ("to", "ren.forest.big")],
    );
    assert_eq!(v["count"], 2);
    assert_eq!(
        v["renamed"],
        serde_json::json!([
            {"from": "ren.tree.a", "to": "ren.forest.big.a"},
            {"from": "ren.tree.sub.b", "to": "ren.forest.big.sub.b"}
        ])
    );
    // At once: the old names are gone, the new ones render old and cached points.
    assert_eq!(find(&server, "ren.*"), vec!["ren.forest", "ren.uno"]);
    assert!(render(&server, "ren.one").is_empty());
    assert!(render(&server, "ren.tree.*").is_empty());
    assert_eq!(
        render(&server, "ren.uno")["ren.uno"],
        vec![(t1, 1.0), (t2, 11.0)]
    );
    let r = render(&server, "ren.forest.big.**");
    assert_eq!(r["ren.forest.big.a"], vec![(t1, 2.0), (t2, 12.0)]);
    assert_eq!(r["ren.forest.big.sub.b"], vec![(t1, 3.0), (t2, 13.0)]);
    assert_eq!(
        expand(&server, "ren.forest.big.*"),
        vec!["ren.forest.big.a"]
    );
    // On disk: moved (renamed, not copied), the old directories gone.
    assert!(!w.join("ren/one.wsp").exists() && !w.join("ren/tree").exists());
    let read = |rel: &str| {
        python(
            "import sys, whisper\n(t0, _, step), vals = whisper.fetch(sys.argv[1], int(sys.argv[2]))\nprint([(t0 + i * step, v) for i, v in enumerate(vals) if v is not None])",
            &[w.join(rel).to_str().unwrap(), &(t1 - 600).to_string()],
        )
        .trim()
        .to_string()
    };
    assert_eq!(
        read("ren/uno.wsp"),
        format!("[({t1}, 1.0)]"),
        "persisted point, read by whisper.py"
    );
    assert_eq!(read("ren/forest/big/sub/b.wsp"), format!("[({t1}, 3.0)]"));
    // The cached points reach the new files at shutdown's flush.
    assert!(server.terminate().success());
    assert_eq!(read("ren/uno.wsp"), format!("[({t1}, 1.0), ({t2}, 11.0)]"));
    assert_eq!(
        read("ren/forest/big/a.wsp"),
        format!("[({t1}, 2.0), ({t2}, 12.0)]")
    );
    assert!(
        !w.join("ren/one.wsp").exists(),
        "never re-created under the old name"
    );
}

#[test]
fn wal_replay_after_sigkill_does_not_resurrect_deleted_or_renamed_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let t = minute_ago(120);
    let mut server = with_files(dir.path(), &format!("dead.m1 1 {t}\n"), 1);
    // Logged in the WAL and only in the cache when deleted or renamed.
    cached(
        &server,
        &format!("dead.m1 2 {}\ndead.m2 3 {t}\nmoved.old 4 {t}\n", t + 60),
        4,
    );
    let v = admin(&server, "/metrics/delete", &[("query", "dead.*")]);
    assert_eq!(strings(&v["deleted"]), vec!["dead.m1", "dead.m2"]);
    admin(
        &server,
        "/metrics/rename",
        &[("from", "moved.old"), ("to", "moved.new")],
    );
    // Recreated after the delete: this one must come back.
    cached(&server, &format!("dead.m2 9 {}\n", t + 60), 5);
    std::thread::sleep(std::time::Duration::from_millis(400)); // > wal_sync
    unsafe_kill(server.child.as_ref().unwrap().id(), libc::SIGKILL);
    let _ = server.child.take().unwrap().wait();
    assert!(!server.whisper_dir().join("dead").exists());

    let server = Server::start_in(dir.path(), &SLOW);
    assert_eq!(find(&server, "dead.*"), vec!["dead.m2"]);
    assert!(render(&server, "dead.m1").is_empty());
    assert_eq!(render(&server, "dead.m2")["dead.m2"], vec![(t + 60, 9.0)]);
    assert_eq!(find(&server, "moved.*"), vec!["moved.new"]);
    assert_eq!(render(&server, "moved.new")["moved.new"], vec![(t, 4.0)]);
    assert!(render(&server, "moved.old").is_empty());
    let mut server = server;
    assert!(server.terminate().success());
    let w = server.whisper_dir();
    assert!(
        !w.join("dead/m1.wsp").exists(),
        "the deleted metric stays deleted"
    );
    assert!(!w.join("moved/old.wsp").exists());
    assert!(w.join("moved/new.wsp").exists() && w.join("dead/m2.wsp").exists());
}

#[test]
fn stale_lists_exactly_the_old_ones_and_the_cli_drives_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let t = minute_ago(120);
    let server = with_files(
        dir.path(),
        &format!("st.old1 1 {t}\nst.old2 1 {t}\nst.fresh 1 {t}\nst.sub.old3 1 {t}\n"),
        4,
    );
    let w = server.whisper_dir();
    for f in ["st/old1.wsp", "st/old2.wsp", "st/sub/old3.wsp"] {
        let ok = Command::new("touch")
            .args(["-m", "-d", "40 days ago"])
            .arg(w.join(f))
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    // old2's file is old, but a point of it waits in the cache: not stale.
    cached(&server, &format!("st.old2 5 {}\n", t + 60), 2);

    let v = server.get_json("/metrics/stale?olderThan=30d");
    assert_eq!(strings(&v["stale"]), vec!["st.old1", "st.sub.old3"]);
    assert_eq!(v["count"], 2);
    assert!(strings(&server.get_json("/metrics/stale?olderThan=41d")["stale"]).is_empty());
    // A POST without delete=true only lists.
    let v = admin(&server, "/metrics/stale?olderThan=30d", &[]);
    assert_eq!(strings(&v["stale"]), vec!["st.old1", "st.sub.old3"]);

    let url = format!("http://{}", server.http);
    let cli = |args: &[&str]| {
        let mut all = vec!["metrics", "--url", url.as_str(), "--token", TOKEN];
        all.extend_from_slice(args);
        carbonhound(&all, &[])
    };
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();

    let out = cli(&["stale", "--older-than", "30d"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), "stale st.old1\nstale st.sub.old3");
    let out = cli(&["stale", "--older-than", "30d", "--delete", "--dry-run"]);
    assert_eq!(text(&out), "stale st.old1\nstale st.sub.old3");
    assert!(w.join("st/old1.wsp").exists());
    let out = cli(&["stale", "--older-than", "30d", "--delete"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), "deleted st.old1\ndeleted st.sub.old3");
    assert!(!w.join("st/old1.wsp").exists() && !w.join("st/sub").exists());
    assert!(w.join("st/old2.wsp").exists() && w.join("st/fresh.wsp").exists());
    assert_eq!(find(&server, "st.*"), vec!["st.fresh", "st.old2"]);

    // rename and delete, a dry run, --quiet.
    let out = cli(&["rename", "st.fresh", "st.renamed"]);
    assert_eq!(text(&out), "renamed st.fresh -> st.renamed", "{out:?}");
    assert!(w.join("st/renamed.wsp").exists());
    let out = cli(&["delete", "st.*", "--dry-run"]);
    assert_eq!(text(&out), "would delete st.old2\nwould delete st.renamed");
    assert_eq!(find(&server, "st.*").len(), 2);
    let out = cli(&["--quiet", "delete", "st.*"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), "deleted 2 metrics");
    assert!(find(&server, "st.*").is_empty());
    assert!(!w.join("st").exists());

    // The server's refusal, exit 1: nothing matches (404), bad input (400), no token (401).
    let out = cli(&["delete", "st.*"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 404") && err.contains("query: no metric matches"),
        "{err}"
    );
    let out = cli(&["delete", "../etc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 400"));
    let out = carbonhound(&["metrics", "--url", &url, "delete", "x"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
    // The token and address from the settings ([http] auth_tokens, listen).
    server.send_tcp(&format!("cli.env 1 {t}\n"));
    wait_for(10, "cli.env indexed", || {
        (!find(&server, "cli.*").is_empty()).then_some(())
    });
    let out = carbonhound(
        &["metrics", "delete", "cli.env"],
        &[
            ("CARBONHOUND_HTTP__AUTH_TOKENS", TOKEN),
            ("CARBONHOUND_HTTP__LISTEN", &server.http.to_string()),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), "deleted cli.env");
    // An unreachable server is said so.
    let out = carbonhound(
        &[
            "metrics",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            TOKEN,
            "delete",
            "x",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the server"));
}
