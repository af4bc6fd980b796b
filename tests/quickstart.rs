//! What a new user copies from the checkout works as shipped: the real collectd, run with
//! `examples/collectd.conf` (only its address and interval changed), produces every metric the
//! example rules in `alerts.d/` read, so none of them sits at "no data" forever.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{enc, wait_for, Server};

struct Collectd(Child);

impl Drop for Collectd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `examples/collectd.conf` as shipped, pointed at `port`, every second instead of every ten,
/// with the host name the example rules use (`web1`).
fn shipped_collectd(dir: &Path, port: u16) -> Collectd {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/collectd.conf"
    ))
    .unwrap();
    assert!(shipped.contains("Port \"2003\"") && shipped.contains("\nInterval 10\n"));
    let conf = format!(
        "Hostname \"web1\"\nFQDNLookup false\nBaseDir \"{dir}\"\nPIDFile \"{dir}/collectd.pid\"\n\
         TypesDB \"/usr/share/collectd/types.db\"\n{body}",
        dir = dir.display(),
        body = shipped
            .replace("Port \"2003\"", &format!("Port \"{port}\""))
            .replace("\nInterval 10\n", "\nInterval 1\n"),
    );
    let path = dir.join("collectd.conf");
    std::fs::write(&path, conf).unwrap();
    let bin = ["/usr/sbin/collectd", "/usr/bin/collectd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the collectd daemon is required for this test: apt-get install collectd-core");
    Collectd(
        Command::new(bin)
            .arg("-f")
            .arg("-C")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start collectd"),
    )
}

/// The `target` of every `[[alert]]` in the shipped `alerts.d/*.toml`.
fn shipped_rule_targets() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.d");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        for rule in doc["alert"].as_array().expect("[[alert]] tables") {
            let name = rule["name"].as_str().unwrap().to_string();
            match (rule.get("target"), rule.get("targets")) {
                (Some(t), _) => out.push((name, t.as_str().unwrap().to_string())),
                (None, Some(targets)) => {
                    // An expression rule: every one of its targets must have data.
                    for (var, t) in targets.as_table().expect("targets = { name = target }") {
                        out.push((format!("{name} ({var})"), t.as_str().unwrap().to_string()));
                    }
                }
                (None, None) => panic!("rule {name} has neither target nor targets"),
            }
        }
    }
    assert!(out.len() >= 4, "shipped rules: {out:?}");
    out
}

/// Whether `/` is a mount point this process can see. In a chroot it is not (the real root
/// lies outside), so collectd's df plugin reports no `df-root`; the df rules are then checked on
/// whatever file systems it does report (`df-*`), which still needs `ValuesPercentage`.
fn root_is_a_visible_mount() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some("/")))
        .unwrap_or(true)
}

#[test]
fn shipped_collectd_conf_feeds_every_shipped_rule() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    // On the embedded defaults (no base_url) links in alert mail point at the bound
    // listener, and since that is loopback, a start-up WARN says they work only here.
    let warn = format!("links in alert mail point to http://{}", server.http);
    assert!(
        server
            .seen_log
            .iter()
            .any(|l| l.contains("WARN") && l.contains(&warn) && l.contains("loopback")),
        "{:#?}",
        server.seen_log
    );
    let _collectd = shipped_collectd(dir.path(), server.tcp.port());
    let root_visible = root_is_a_visible_mount();
    for (name, mut target) in shipped_rule_targets() {
        if !root_visible {
            target = target.replace(".df-root.", ".df-*.");
        }
        wait_for(30, &format!("a value for rule {name:?} ({target})"), || {
            let v = server.get_json(&format!(
                "/render?target={}&from=-2min&format=json",
                enc(&target)
            ));
            let has_value = v.as_array()?.iter().any(|s| {
                s["datapoints"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|p| p[0].is_number()))
            });
            has_value.then_some(())
        });
    }
}

/// The unit file is valid for systemd (`systemd-analyze verify`, with `ExecStart` pointed at the
/// binary under test), and the settings file it installs passes `check-config`.
#[test]
fn systemd_unit_and_its_settings_are_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = env!("CARGO_BIN_EXE_carbonhound");
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(format!("{root}/systemd/carbonhound.service")).unwrap();
    assert!(unit.contains("DynamicUser=yes") && unit.contains("StateDirectory=carbonhound"));
    let unit_path = dir.path().join("carbonhound.service");
    std::fs::write(&unit_path, unit.replace("/usr/local/bin/carbonhound", bin)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()
        .expect("systemd-analyze is required for this test: apt-get install systemd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("carbonhound.service:"),
        "systemd-analyze verify: {stderr}"
    );

    let out = Command::new(bin)
        .args(["check-config", "--config"])
        .arg(format!("{root}/systemd/carbonhound.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check-config systemd/carbonhound.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("/var/lib/carbonhound"));
}

/// A misspelt key is refused by `check-config` and `serve`, naming the file, line, key and the
/// nearest valid key; a misspelt `CARBONHOUND_*` variable likewise.
#[test]
fn unknown_settings_are_refused_with_the_nearest_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[smtp]\nport = 2525\nhots = \"mail\"\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_carbonhound");
    for cmd in ["check-config", "serve"] {
        let out = Command::new(bin)
            .args([cmd, "--config"])
            .arg(&path)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd}: {err}");
        assert!(
            err.contains(&format!("{}:3", path.display()))
                && err.contains("smtp.hots")
                && err.contains("did you mean `host`"),
            "{cmd}: {err}"
        );
    }
    let out = Command::new(bin)
        .arg("check-config")
        .env("CARBONHOUND_DATADIR", "/tmp/x")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("CARBONHOUND_DATADIR") && err.contains("`data_dir`"),
        "{err}"
    );
}
