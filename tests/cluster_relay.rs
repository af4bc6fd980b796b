//! Ingest sharding: the real carbon-c-relay (Debian's carbon-c-relay) in front of three real
//! carbonhound nodes on 127.0.0.1. A few hundred metrics go to the relay; each node's whisper
//! files then say where every metric landed.
//!
//! For `carbon_ch` the expected placement is carbon's own: `tests/support/carbon_ring.py` runs
//! carbon's `ConsistentHashingRouter` (Debian's graphite-carbon) with the nodes as carbon.conf
//! `DESTINATIONS` `127.0.0.1:<port>:<instance>`, the carbon-c-relay members being
//! `127.0.0.1:<port>=<instance>`. Both hash the key `('127.0.0.1', '<instance>')`; the port is
//! not part of it. `jump_fnv1a_ch` has no carbon counterpart: there every metric must be on
//! exactly two nodes, the two the relay's own test mode (`-t`) names.
//!
//! The example configs of `examples/cluster/` are checked too: carbon-c-relay accepts them,
//! carbonhound loads each node's settings, and the relay's members are the nodes' listeners.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{now, wait_for, Server};

const RELAY: &str = "/usr/bin/carbon-c-relay";
const PYTHON: &str = "/usr/bin/python3";
/// Metrics sent per run.
const METRICS: usize = 300;

/// A carbonhound node and the instance name the relay (and carbon) give it.
struct Node {
    server: Server,
    instance: String,
    _dir: tempfile::TempDir,
}

impl Node {
    /// The metrics under `prefix` this node has a whisper file for.
    fn stored(&self, prefix: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let root = self.server.whisper_dir();
        collect_wsp(&root.join(prefix.replace('.', "/")), &root, &mut found);
        found
    }
}

fn collect_wsp(dir: &Path, root: &Path, found: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_wsp(&path, root, found);
        } else if path.extension().is_some_and(|x| x == "wsp") {
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            found.insert(rel.to_str().unwrap().replace('/', "."));
        }
    }
}

/// Three nodes named `instances`, without self metrics (only the relayed ones are stored).
fn start_nodes(instances: [&str; 3]) -> Vec<Node> {
    instances
        .iter()
        .map(|instance| {
            let dir = tempfile::tempdir().unwrap();
            let server =
                Server::start_in(dir.path(), &[("CARBONHOUND_CARBON__STATS_INTERVAL", "0s")]);
            Node {
                server,
                instance: instance.to_string(),
                _dir: dir,
            }
        })
        .collect()
}

/// carbon-c-relay routing everything to one cluster of `nodes`; killed when dropped.
struct Relay {
    child: Child,
    config: PathBuf,
    log: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// A cluster of type `cluster` (e.g. `carbon_ch replication 2`) whose members are
    /// `127.0.0.1:<plaintext port>=<instance>`, the relay listening on 127.0.0.1 only.
    fn start(cluster: &str, nodes: &[Node]) -> Relay {
        assert!(
            Path::new(RELAY).exists(),
            "{RELAY} is missing: install Debian's carbon-c-relay (apt-get install carbon-c-relay)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let members: String = nodes
            .iter()
            .map(|n| format!("        127.0.0.1:{}={}\n", n.server.tcp.port(), n.instance))
            .collect();
        let config = dir.path().join("relay.conf");
        std::fs::write(
            &config,
            format!(
                "listen\n    type linemode\n        127.0.0.1:{port} proto tcp\n    ;\n\n\
                 cluster nodes\n    {cluster}\n{members}    ;\n\n\
                 match *\n    send to nodes\n    stop\n    ;\n"
            ),
        )
        .unwrap();
        relay_check(&config);
        let log = dir.path().join("relay.log");
        let mut child = Command::new(RELAY)
            .arg("-f")
            .arg(&config)
            .arg("-l")
            .arg(&log)
            .args(["-w", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start carbon-c-relay");
        wait_for(20, "carbon-c-relay to listen", || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "carbon-c-relay exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Relay {
            child,
            config,
            log,
            port,
            _dir: dir,
        }
    }

    /// Sends plaintext lines over one connection.
    fn send(&self, text: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the relay");
        s.write_all(text.as_bytes()).expect("send to the relay");
    }

    /// `carbon-c-relay -t` on this relay's config: the members (`127.0.0.1:<port>`) it would
    /// send each metric to, in its order.
    fn test_mode(&self, metrics: &[String]) -> BTreeMap<String, Vec<String>> {
        let input: String = metrics.iter().map(|m| format!("{m} 1 1\n")).collect();
        let out = relay_run(&["-t", "-f", self.config.to_str().unwrap()], &input);
        let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current = None;
        for line in out.lines().map(str::trim) {
            if let Some((_, metric)) = line.split_once(" -> ") {
                current = Some(metric.to_string());
                routes.entry(metric.to_string()).or_default();
            } else if let Some(metric) = &current {
                if line.starts_with("127.0.0.1:") && !line.contains(' ') {
                    routes.get_mut(metric).unwrap().push(line.to_string());
                }
            }
        }
        routes
    }

    /// The cluster's hash ring as `carbon-c-relay -t -d` prints it: (position, instance).
    fn ring(&self) -> Vec<(u32, String)> {
        let out = relay_run(&["-t", "-d", "-f", self.config.to_str().unwrap()], "");
        let start = out
            .find("# hash ring for nodes follows")
            .unwrap_or_else(|| panic!("no hash ring in carbon-c-relay -t -d: {out}"));
        out[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .flat_map(str::split_whitespace)
            .map(|entry| {
                let (pos, member) = entry.split_once('@').expect("pos@member");
                let (_, instance) = member.split_once('=').expect("member=instance");
                (pos.parse().unwrap(), instance.to_string())
            })
            .collect()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (the relay binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs carbon-c-relay with `input` on stdin; stdout and stderr together.
fn relay_run(args: &[&str], input: &str) -> String {
    let mut child = Command::new(RELAY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run carbon-c-relay");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "carbon-c-relay {args:?}: {text}");
    text
}

/// `carbon-c-relay -t -t`: the config is valid (or the test fails with the relay's message).
fn relay_check(config: &Path) {
    relay_run(&["-t", "-t", "-f", config.to_str().unwrap()], "");
}

/// What carbon's own ring says (tests/support/carbon_ring.py).
struct CarbonRing {
    /// (position, instance) in ring order.
    ring: Vec<(u32, String)>,
    /// Entries carbon moved off a collision.
    shifted: usize,
    /// Each metric's instances, in carbon's order.
    placement: BTreeMap<String, Vec<String>>,
}

fn carbon_ring(replication: usize, nodes: &[Node], metrics: &[String]) -> CarbonRing {
    let destinations: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}:{}", n.server.tcp.port(), n.instance))
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/carbon_ring.py");
    let out = Command::new(PYTHON)
        .args(["-W", "ignore"])
        .arg(&script)
        .arg(replication.to_string())
        .arg(destinations.join(","))
        .args(metrics)
        .output()
        .expect("/usr/bin/python3 is required (apt-get install graphite-carbon)");
    assert!(
        out.status.success(),
        "carbon_ring.py failed (is graphite-carbon installed? apt-get install graphite-carbon): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ring = CarbonRing {
        ring: Vec::new(),
        shifted: 0,
        placement: BTreeMap::new(),
    };
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut words = line.split(' ');
        match words.next() {
            Some("ring") => ring.ring.push((
                words.next().unwrap().parse().unwrap(),
                words.next().unwrap().to_string(),
            )),
            Some("shifted") => ring.shifted = words.next().unwrap().parse().unwrap(),
            Some("metric") => {
                let name = words.next().unwrap().to_string();
                ring.placement
                    .insert(name, words.map(str::to_string).collect());
            }
            _ => panic!("carbon_ring.py printed {line:?}"),
        }
    }
    ring
}

/// `METRICS` names under `prefix`, several per branch as a real tree has.
fn metric_names(prefix: &str) -> Vec<String> {
    let leaves = [
        "cpu.user",
        "cpu.system",
        "memory.used",
        "load.shortterm",
        "df.root",
    ];
    (0..METRICS)
        .map(|i| format!("{prefix}.host{:02}.{}_{}", i / 5, leaves[i % 5], i % 7))
        .collect()
}

/// Sends every metric once to the relay, then waits until the nodes hold `copies` files per
/// metric in all (or 60 s pass); returns each node's metrics under `prefix`.
fn send_and_collect(
    relay: &Relay,
    nodes: &[Node],
    prefix: &str,
    metrics: &[String],
    copies: usize,
) -> Vec<BTreeSet<String>> {
    let ts = now();
    let lines: String = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{m} {i} {ts}\n"))
        .collect();
    relay.send(&lines);
    let want = metrics.len() * copies;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stored: Vec<BTreeSet<String>> = nodes.iter().map(|n| n.stored(prefix)).collect();
        let total: usize = stored.iter().map(BTreeSet::len).sum();
        if total >= want {
            // Anything still in flight would be an extra copy: give it a moment to show.
            std::thread::sleep(std::time::Duration::from_secs(2));
            return nodes.iter().map(|n| n.stored(prefix)).collect();
        }
        if std::time::Instant::now() > deadline {
            eprintln!(
                "relay log:\n{}",
                std::fs::read_to_string(&relay.log).unwrap_or_default()
            );
            return stored;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// carbon_ch with `replication`: carbon-c-relay's ring is carbon's, and every metric is on
/// exactly the nodes carbon's router names for it, and on no other.
fn carbon_ch_lands_where_carbon_says(replication: usize, prefix: &str) {
    let nodes = start_nodes(["a", "b", "c"]);
    let relay = Relay::start(&format!("carbon_ch replication {replication}"), &nodes);
    let metrics = metric_names(prefix);
    let carbon = carbon_ring(replication, &nodes, &metrics);

    // carbon moves a colliding ring entry to the next free position and carbon-c-relay does
    // not, so with a collision the two rings differ near it. Instances a, b, c on 127.0.0.1
    // have none; the rings must then be the same, entry for entry.
    assert_eq!(
        carbon.shifted, 0,
        "carbon's ring has collisions for these nodes"
    );
    assert_eq!(
        relay.ring(),
        carbon.ring,
        "carbon-c-relay's ring is not carbon's"
    );

    let stored = send_and_collect(&relay, &nodes, prefix, &metrics, replication);
    let mut wrong = Vec::new();
    for metric in &metrics {
        let expected = &carbon.placement[metric];
        assert_eq!(
            expected.len(),
            replication,
            "carbon's placement of {metric}"
        );
        let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        let landed: BTreeSet<&str> = nodes
            .iter()
            .zip(&stored)
            .filter(|(_, s)| s.contains(metric))
            .map(|(n, _)| n.instance.as_str())
            .collect();
        if landed != expected {
            wrong.push(format!(
                "{metric}: carbon {expected:?}, landed on {landed:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} metrics are not where carbon's ring puts them:\n{}",
        wrong.len(),
        metrics.len(),
        wrong.join("\n")
    );
    // Every node got its share (the ring is not degenerate).
    for (node, s) in nodes.iter().zip(&stored) {
        assert!(!s.is_empty(), "node {} received nothing", node.instance);
    }
}

#[test]
fn carbon_ch_replication_1_each_metric_on_carbons_node_only() {
    carbon_ch_lands_where_carbon_says(1, "relaytest.ch1");
}

#[test]
fn carbon_ch_replication_2_each_metric_on_carbons_first_two_nodes() {
    carbon_ch_lands_where_carbon_says(2, "relaytest.ch2");
}

#[test]
fn jump_fnv1a_ch_replication_2_each_metric_on_two_nodes() {
    let prefix = "relaytest.jump2";
    let nodes = start_nodes(["1", "2", "3"]);
    let relay = Relay::start("jump_fnv1a_ch replication 2", &nodes);
    let metrics = metric_names(prefix);
    let routes = relay.test_mode(&metrics);
    let stored = send_and_collect(&relay, &nodes, prefix, &metrics, 2);

    for metric in &metrics {
        let landed: BTreeSet<String> = nodes
            .iter()
            .zip(&stored)
            .filter(|(_, s)| s.contains(metric))
            .map(|(n, _)| format!("127.0.0.1:{}", n.server.tcp.port()))
            .collect();
        assert_eq!(landed.len(), 2, "{metric} landed on {landed:?}");
        let routed: BTreeSet<String> = routes[metric].iter().cloned().collect();
        assert_eq!(
            landed, routed,
            "{metric}: carbon-c-relay -t routes it elsewhere"
        );
    }
    for (node, s) in nodes.iter().zip(&stored) {
        assert!(!s.is_empty(), "node {} received nothing", node.instance);
        assert!(s.is_subset(&metrics.iter().cloned().collect()));
    }
}

/// The shipped example: both relay configs pass `carbon-c-relay -t -t`, each node's settings
/// load, and the relay's members are exactly the nodes' plaintext listeners, with the
/// instances the README documents.
#[test]
fn examples_cluster_configs_are_valid_and_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster");
    let mut listeners = Vec::new();
    let mut data_dirs = BTreeSet::new();
    for n in 1..=3 {
        let path = dir.join(format!("node{n}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let settings = carbonhound::config::Settings::from_toml(&text, &path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        listeners.push(settings.carbon.plaintext_tcp.clone());
        data_dirs.insert(settings.data_dir.clone());
    }
    assert_eq!(data_dirs.len(), 3, "each node needs its own data_dir");
    for (file, instances) in [
        ("carbon_ch.conf", ["a", "b", "c"]),
        ("jump_fnv1a_ch.conf", ["1", "2", "3"]),
    ] {
        let path = dir.join(file);
        relay_check(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let members: Vec<String> = text
            .lines()
            .map(|l| l.split('#').next().unwrap().trim())
            .filter(|l| l.contains('=') && !l.contains(' '))
            .map(str::to_string)
            .collect();
        let expected: Vec<String> = listeners
            .iter()
            .zip(instances)
            .map(|(addr, i)| format!("{addr}={i}"))
            .collect();
        assert_eq!(members, expected, "{file}'s members");
        assert!(text.contains("replication 2"), "{file}: replication 2");
    }
}
