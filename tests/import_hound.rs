//! `carbonhound alerts import-hound` run as the built binary on a Hound 1 `config.json` (the
//! shape of Hound's own example: GraphiteBase, EmailFrom, EmailTo, CheckInterval,
//! GlobalThrottle, Alerts), then `carbonhound alerts check` loading the rule file it wrote
//! with the settings it printed; an existing output refused without `--force`; a bad
//! configuration refused, naming the alert and the key, with nothing written.

use std::path::Path;
use std::process::{Command, Output};

const HOUND_CONFIG: &str = r#"{
"GraphiteBase": "http://graphite.example.com/render/",
"CarbonBase": "graphite.example.com:2003",
"MetricBase": "ops.hound.",
"EmailFrom": "hound@example.com",
"EmailTo": "ops@example.com",
"CheckInterval": 5,
"GlobalThrottle": 7,
"HttpPort": "9998",
"TemplateFile": "index.html",
"Alerts": [
  {
    "Name": "Smoketests failed",
    "Metric": "app.smoketest.shop.failed",
    "Threshold": 0.5,
    "Direction": "above",
    "EmailTo": "shop-team@example.com",
    "RunBookLink": "https://wiki.example.com/runbooks/smoketests"
  },
  {
    "Name": "Smoketests passed",
    "Metric": "app.smoketest.shop.passed",
    "Threshold": 5.5,
    "Direction": "below"
  },
  {
    "Name": "Highstate failures",
    "Type": "Notice",
    "Metric": "summarize(server.cement.highstate.failed, '1h', 'min')",
    "Threshold": 0.5,
    "Direction": "above"
  },
  {
    "Name": "Load high on web1",
    "Type": "Alert",
    "Metric": "collectd.web1.load.load.shortterm",
    "Threshold": 4,
    "Direction": "above"
  }
]
}
"#;

fn carbonhound(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carbonhound"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run carbonhound")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_hound_config_becomes_rules_that_load_and_settings_that_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("config.json"), HOUND_CONFIG).unwrap();
    let out = carbonhound(
        &[
            "alerts",
            "import-hound",
            "config.json",
            "--out",
            "alerts.d/hound.toml",
        ],
        d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let settings = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("wrote alerts.d/hound.toml: 4 rules"),
        "{stderr}"
    );

    // The rule file parses with the server's own rule parser.
    let rules_path = d.join("alerts.d/hound.toml");
    let rules_text = std::fs::read_to_string(&rules_path).unwrap();
    let rules = carbonhound::alert::parse_rules(&rules_path, &rules_text, 64)
        .unwrap_or_else(|e| panic!("{e}\n{rules_text}"));
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Smoketests failed",
            "Smoketests passed",
            "Highstate failures",
            "Load high on web1"
        ]
    );
    assert_eq!(
        rules[2].target_text(),
        "summarize(server.cement.highstate.failed,'1h','min')",
        "whitespace removed from Metric, as Hound does"
    );
    assert_eq!(rules[2].rule_type, carbonhound::alert::RuleType::Notice);
    assert_eq!(
        rules[1].direction(),
        Some(carbonhound::alert::Direction::Below)
    );
    assert_eq!(rules[0].email_to, ["shop-team@example.com"]);
    assert_eq!(
        rules[0].runbook.as_deref(),
        Some("https://wiki.example.com/runbooks/smoketests")
    );

    // The printed settings, with the folders of this test, load as a settings file and the
    // rules check out against them.
    let config = d.join("carbonhound.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n{settings}rules_dir = {:?}\ntemplates_dir = {:?}\n",
            d.join("data").display().to_string(),
            d.join("alerts.d").display().to_string(),
            d.join("templates").display().to_string()
        ),
    )
    .unwrap();
    // `alerts check` reads the rules and evaluates each once, here in remote mode against
    // GraphiteBase — which does not exist on this machine: every rule is named as unable to
    // evaluate, at its file:line, with the render URL it tried (so the settings did apply).
    let check = carbonhound(
        &["alerts", "check", "--config", config.to_str().unwrap()],
        d,
    );
    let report = text(&check.stderr);
    assert!(!check.status.success(), "{report}");
    assert!(report.contains("4 alert rules in 1 files read"), "{report}");
    assert!(
        report.contains("remote mode: evaluated by http://graphite.example.com/render"),
        "{report}"
    );
    assert!(
        report.contains("Highstate failures [summarize(server.cement.highstate.failed,'1h','min'), crit 0.5, above, notice]"),
        "{report}"
    );
    assert!(
        report.contains("4 alert rules do not work")
            && report.contains("rule 'Load high on web1': cannot be evaluated: graphite at http://graphite.example.com/render"),
        "{report}"
    );
    let s = carbonhound::config::Settings::load_with_env(Some(&config), false).unwrap();
    assert_eq!(s.alerting.email_from, "hound@example.com");
    assert_eq!(s.alerting.email_to, ["ops@example.com"]);
    assert_eq!(s.alerting.interval, std::time::Duration::from_secs(300));
    assert_eq!(
        s.alerting.graphite_url.map(|u| u.public()).as_deref(),
        Some("http://graphite.example.com"),
        "GraphiteBase without /render/: remote mode"
    );
    assert!(settings.contains("\nthrottle = 7\n"), "{settings}");
    assert_eq!(
        s.alerting.throttle, 7,
        "GlobalThrottle becomes [alerting].throttle"
    );

    // An existing file is not overwritten without --force.
    std::fs::write(&rules_path, "# edited by hand\n").unwrap();
    let again = carbonhound(
        &[
            "alerts",
            "import-hound",
            "config.json",
            "--out",
            "alerts.d/hound.toml",
        ],
        d,
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("alerts.d/hound.toml exists")
            && text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&rules_path).unwrap(),
        "# edited by hand\n"
    );
    let forced = carbonhound(
        &[
            "alerts",
            "import-hound",
            "config.json",
            "--out",
            "alerts.d/hound.toml",
            "--force",
        ],
        d,
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_eq!(std::fs::read_to_string(&rules_path).unwrap(), rules_text);
}

#[test]
fn a_bad_hound_config_is_refused_naming_alert_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = HOUND_CONFIG
        .replace("\"Direction\": \"below\"", "\"Direction\": \"down\"")
        .replace("\"Threshold\": 4,", "\"Threshold\": \"4\",")
        .replace(
            "\"Name\": \"Smoketests passed\"",
            "\"Name\": \"Smoketests failed\"",
        );
    std::fs::write(d.join("config.json"), bad).unwrap();
    let out = carbonhound(&["alerts", "import-hound", "config.json"], d);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    for want in [
        "config.json: not imported, nothing written",
        "Alerts[1] (\"Smoketests failed\"): Direction: unknown direction \"down\"",
        "Alerts[3] (\"Load high on web1\"): Threshold: must be a number, not the string \"4\"",
    ] {
        assert!(e.contains(want), "{want} in:\n{e}");
    }
    assert!(
        !d.join("alerts.d").exists(),
        "nothing written (the default --out is alerts.d/hound.toml)"
    );
    // Once the direction is fixed, the duplicate name is what remains of alert 1.
    let dup = HOUND_CONFIG.replace(
        "\"Name\": \"Smoketests passed\"",
        "\"Name\": \"Smoketests failed\"",
    );
    std::fs::write(d.join("config.json"), dup).unwrap();
    let out = carbonhound(&["alerts", "import-hound", "config.json"], d);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Alerts[1] (\"Smoketests failed\"): Name: \"Smoketests failed\" is already the name of Alerts[0]"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(d.join("config.json"), "{\"Alerts\": [}").unwrap();
    let out = carbonhound(&["alerts", "import-hound", "config.json"], d);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("config.json:1:"),
        "{}",
        text(&out.stderr)
    );
}
