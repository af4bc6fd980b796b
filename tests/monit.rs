//! The Monit recipe (examples/monit/): the real Monit daemon checks a passing and a failing
//! program and a TCP port; `monit-to-carbon.sh` turns `monit status` into carbon lines sent to
//! carbonhound, where they appear as `monit.<node>.<service>.<field>`.

mod common;

use std::process::{Child, Command, Stdio};

use common::{wait_for, Server};

struct Monit(Child);

impl Drop for Monit {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn monit_results_arrive_as_metrics() {
    let monit_bin = ["/usr/bin/monit", "/usr/sbin/monit"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the Monit daemon is required for this test: apt-get install monit");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let d = dir.path().display();
    let port = free_port();
    let rc = dir.path().join("monitrc");
    std::fs::write(
        &rc,
        format!(
            "set daemon 1\nset pidfile {d}/monit.pid\nset idfile {d}/monit.id\nset statefile {d}/monit.state\n\
             set httpd port {port} and use address 127.0.0.1\n    allow 127.0.0.1\n\
             check program ok-prog with path \"/bin/true\"\n  if status != 0 then alert\n\
             check program failing-prog with path \"/bin/false\"\n  if status != 0 then alert\n\
             check host localweb with address 127.0.0.1\n  if failed port {port} protocol http then alert\n"
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&rc).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&rc, perms).unwrap();
    let _monit = Monit(
        Command::new(monit_bin)
            .arg("-c")
            .arg(&rc)
            .arg("-I")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start monit"),
    );
    let monit_cmd = format!("{monit_bin} -c {}", rc.display());
    wait_for(30, "monit to report every service", || {
        let out = Command::new(monit_bin)
            .arg("-c")
            .arg(&rc)
            .arg("status")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (text.contains("Status failed") && text.contains("port response time")).then_some(())
    });

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/monit/monit-to-carbon.sh"
    );
    let status = Command::new("sh")
        .arg(script)
        .arg(server.tcp.ip().to_string())
        .arg(server.tcp.port().to_string())
        .env("MONIT", &monit_cmd)
        .env("MONIT_NODE", "box1.example")
        .status()
        .expect("run monit-to-carbon.sh");
    assert!(status.success());

    let value = |target: &str| -> Option<f64> {
        let v = server.get_json(&format!("/render?target={target}&from=-5min&format=json"));
        v.as_array()?.first()?["datapoints"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|p| p[0].as_f64())
    };
    wait_for(10, "monit metrics", || {
        value("monit.box1_example.failing-prog.status")
    });
    assert_eq!(value("monit.box1_example.failing-prog.status"), Some(1.0));
    assert_eq!(value("monit.box1_example.ok-prog.status"), Some(0.0));
    assert_eq!(value("monit.box1_example.ok-prog.monitored"), Some(1.0));
    let rt = value("monit.box1_example.localweb.response_time").expect("a response time");
    assert!(rt > 0.0 && rt < 5.0, "seconds: {rt}");
}
