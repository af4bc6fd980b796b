//! `carbonhound alerts import-hound`: a Hound `config.json` read into an `alerts.d` rule file
//! and the `carbonhound.toml` settings to add. Pure: JSON text in, TOML text out; the command
//! in [`super::cli`] reads and writes the files.
//!
//! Hound's format, from its source (ccnmtl/hound, `config.go`, `hound.go`, `alert.go`): one
//! JSON object with `Alerts`, a list of `{Name, Metric, Type, Threshold, Direction, EmailTo,
//! RunBookLink}`, and in Hound 1 also `GraphiteBase` (its render URL, `…/render/`),
//! `EmailFrom`, `EmailTo`, `CheckInterval` (minutes, an integer), `GlobalThrottle` (most alert
//! mails per round, an integer), `CarbonBase`, `MetricBase`, `HttpPort`, `TemplateFile`. Hound
//! 2 reads those from `HOUND_*` environment variables instead; the settings output then says
//! which variable held each one. Keys match case-insensitively, as Go's `encoding/json` does.
//!
//! Where Hound would silently do something other than what the file seems to say, the
//! import refuses instead, naming the alert (`Alerts[2] ("Disk full")`) and the key: Hound
//! reads any `Direction` but exactly `above` as below, any `Type` but exactly `Alert` as a
//! notice, and a missing `Threshold` as 0; it ignores unknown (e.g. misspelt) keys. Two
//! alerts with one name (or one page address) are refused: carbonhound keys state by name.
//! Kept from Hound: whitespace is removed from `Metric` (Hound's `cleanMetric`), and
//! `EmailTo` may list several addresses separated by commas.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use super::rule::{parse_rules, slugify};
use crate::config::GraphiteUrl;

/// What an import produces.
#[derive(Debug, Clone, PartialEq)]
pub struct HoundImport {
    /// The rule file for `alerts.d/` (TOML, one `[[alert]]` per Hound alert, in Hound's
    /// order), accepted by the rule parser as it stands.
    pub rules_toml: String,
    /// The lines to add to `carbonhound.toml`: an `[alerting]` table with `email_from`,
    /// `email_to`, `interval`, `throttle` and `graphite_url` where Hound's file gave them,
    /// comments for the rest (what Hound 2 keeps in its environment, what has no equivalent).
    pub settings_toml: String,
    /// The rules' names, in order.
    pub names: Vec<String>,
}

/// Why a Hound configuration was not imported. Nothing is written then.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HoundError {
    /// The file is not JSON.
    #[error("{origin}:{line}:{column}: not valid JSON: {message}")]
    Json {
        /// The file, as named on the command line.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's reason.
        message: String,
    },
    /// JSON, but not a configuration carbonhound can take over; every problem found.
    #[error("{origin}: not imported, nothing written:\n{}", problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file, as named on the command line.
        origin: String,
        /// Each problem, starting with where it is: `Alerts[2] ("Disk full"): Direction: …`
        /// or the top-level key (`CheckInterval: …`).
        problems: Vec<String>,
    },
}

/// Top-level keys of Hound 1's `config.json` that have no carbonhound setting, and why.
const TOP_IGNORED: [(&str, &str); 4] = [
    (
        "CarbonBase",
        "Hound's own metrics; see [carbon] stats_prefix",
    ),
    (
        "MetricBase",
        "Hound's own metrics; see [carbon] stats_prefix",
    ),
    ("HttpPort", "Hound's status page; see [http] listen"),
    ("TemplateFile", "Hound's page; see [alerting] templates_dir"),
];
const TOP_KEYS: [&str; 6] = [
    "GraphiteBase",
    "EmailFrom",
    "EmailTo",
    "CheckInterval",
    "GlobalThrottle",
    "Alerts",
];
const ALERT_KEYS: [&str; 7] = [
    "Name",
    "Metric",
    "Type",
    "Threshold",
    "Direction",
    "EmailTo",
    "RunBookLink",
];

/// An object's keys looked up as Go's `encoding/json` does: case-insensitively. A key given
/// twice (in any case) and a key not in `known` are problems.
struct Fields<'a> {
    map: Vec<(&'static str, &'a Value)>,
}

impl<'a> Fields<'a> {
    fn read(
        obj: &'a Map<String, Value>,
        known: &[&'static str],
        ignored: &[&'static str],
        problem: &mut dyn FnMut(String),
    ) -> Fields<'a> {
        let mut map: Vec<(&'static str, &'a Value)> = Vec::new();
        for (key, value) in obj {
            let Some(&k) = known
                .iter()
                .chain(ignored)
                .find(|k| k.eq_ignore_ascii_case(key))
            else {
                let nearest = known
                    .iter()
                    .chain(ignored)
                    .map(|k| {
                        (
                            strsim::levenshtein(&key.to_lowercase(), &k.to_lowercase()),
                            k,
                        )
                    })
                    .min();
                let hint = match nearest {
                    Some((d, k)) if d <= 3 => format!("; did you mean {k}?"),
                    _ => format!("; Hound's keys here are {}", known.join(", ")),
                };
                problem(format!("{key}: not a key of Hound's configuration{hint}"));
                continue;
            };
            if map.iter().any(|(m, _)| *m == k) {
                problem(format!("{k}: given twice"));
                continue;
            }
            map.push((k, value));
        }
        Fields { map }
    }

    /// The value of `key`; JSON `null` counts as absent (Go leaves the field empty).
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }

    fn has(&self, key: &str) -> bool {
        self.map.iter().any(|(k, _)| *k == key)
    }
}

/// JSON's name for the type of `v`, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The string at `key`, or a problem when it is another type.
fn string<'a>(f: &Fields<'a>, key: &str, problem: &mut dyn FnMut(String)) -> Option<&'a str> {
    match f.get(key)? {
        Value::String(s) => Some(s.as_str()),
        other => {
            problem(format!("{key}: must be a string, not {}", kind(other)));
            None
        }
    }
}

/// A TOML basic string of `s`.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML list of strings.
fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Hound's comma-separated `EmailTo` as a list, each address checked.
fn addresses(text: &str, key: &str, problem: &mut dyn FnMut(String)) -> Vec<String> {
    let mut out = Vec::new();
    for a in text.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match a.parse::<lettre::message::Mailbox>() {
            Ok(_) => out.push(a.to_string()),
            Err(e) => problem(format!("{key}: '{a}' is not an e-mail address ({e})")),
        }
    }
    out
}

/// One Hound alert, checked, as the lines of its `[[alert]]` table with the Hound key each
/// line came from.
struct AlertBlock {
    name: String,
    lines: Vec<(&'static str, String)>,
}

impl AlertBlock {
    fn text(&self) -> String {
        let mut t = String::from("[[alert]]\n");
        for (_, line) in &self.lines {
            t.push_str(line);
            t.push('\n');
        }
        t
    }
}

fn read_alert(v: &Value, problem: &mut dyn FnMut(String)) -> Option<AlertBlock> {
    let Value::Object(obj) = v else {
        problem(format!(
            "must be an object {{\"Name\": …}}, not {}",
            kind(v)
        ));
        return None;
    };
    let before_problems = std::cell::Cell::new(0usize);
    let mut count = |p: String| {
        before_problems.set(before_problems.get() + 1);
        problem(p)
    };
    let f = Fields::read(obj, &ALERT_KEYS, &[], &mut count);
    let name = string(&f, "Name", &mut count).map(str::trim);
    if name.is_none_or(str::is_empty) {
        count("Name: missing (every alert needs a name, unique in the file)".into());
    }
    // Hound's cleanMetric: every run of spaces, tabs and newlines removed.
    let metric: Option<String> = string(&f, "Metric", &mut count).map(|m| {
        m.chars()
            .filter(|c| !matches!(c, ' ' | '\n' | '\t' | '\r'))
            .collect()
    });
    if metric.as_deref().is_none_or(str::is_empty) {
        count("Metric: missing (the Graphite target to check)".into());
    }
    let threshold = match f.get("Threshold") {
        None => {
            count(
                "Threshold: missing (Hound would check against 0; write \"Threshold\": 0 to mean that)"
                    .into(),
            );
            None
        }
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => {
            count(format!(
                "Threshold: must be a number, not the string \"{s}\" (Hound refuses it too)"
            ));
            None
        }
        Some(other) => {
            count(format!("Threshold: must be a number, not {}", kind(other)));
            None
        }
    };
    let direction = match string(&f, "Direction", &mut count) {
        Some(d @ ("above" | "below")) => Some(d),
        Some(d) => {
            count(format!(
                "Direction: unknown direction \"{d}\": write \"above\" or \"below\" (Hound reads \
                 anything but exactly \"above\" as below)"
            ));
            None
        }
        None => {
            if f.get("Direction").is_none() {
                count(
                    "Direction: missing: write \"above\" or \"below\" (Hound reads a missing one as below)"
                        .into(),
                );
            }
            None
        }
    };
    let rule_type = match string(&f, "Type", &mut count) {
        None | Some("") | Some("Alert") => "alert",
        Some("Notice") => "notice",
        Some(t) => {
            count(format!(
                "Type: unknown type \"{t}\": write \"Alert\" or \"Notice\" (Hound mails anything \
                 but exactly \"Alert\" as a notice)"
            ));
            "alert"
        }
    };
    let email_to = string(&f, "EmailTo", &mut count)
        .map(|s| addresses(s, "EmailTo", &mut count))
        .unwrap_or_default();
    let runbook = string(&f, "RunBookLink", &mut count)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if before_problems.get() > 0 {
        return None;
    }
    let (Some(name), Some(metric), Some(threshold), Some(direction)) =
        (name, metric, threshold, direction)
    else {
        return None;
    };
    let mut lines = vec![
        ("Name", format!("name = {}", toml_str(name))),
        ("Metric", format!("target = {}", toml_str(&metric))),
        (
            "Threshold",
            format!("threshold = {}", toml::Value::Float(threshold)),
        ),
        ("Direction", format!("direction = {}", toml_str(direction))),
        ("Type", format!("type = {}", toml_str(rule_type))),
    ];
    if !email_to.is_empty() {
        lines.push(("EmailTo", format!("email_to = {}", toml_list(&email_to))));
    }
    if let Some(r) = runbook {
        lines.push(("RunBookLink", format!("runbook = {}", toml_str(r))));
    }
    Some(AlertBlock {
        name: name.to_string(),
        lines,
    })
}

/// Where alert `i` is, for messages: `Alerts[2] ("Disk full")`.
fn alert_label(i: usize, v: &Value) -> String {
    let name = v.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Name"))
            .and_then(|(_, n)| n.as_str())
    });
    match name {
        Some(n) => format!("Alerts[{i}] ({})", serde_json::Value::from(n.trim())),
        None => format!("Alerts[{i}]"),
    }
}

/// Settings read from the top level of the file.
#[derive(Default)]
struct Top {
    /// `GraphiteBase` as given (checked: less `/render` it is a [`GraphiteUrl`]).
    graphite: Option<String>,
    email_from: Option<String>,
    email_to: Option<Vec<String>>,
    interval_minutes: Option<u64>,
    throttle: Option<u64>,
    ignored: Vec<(&'static str, &'static str)>,
}

fn read_top(f: &Fields<'_>, problem: &mut dyn FnMut(String)) -> Top {
    let mut top = Top::default();
    if let Some(base) = string(f, "GraphiteBase", problem).filter(|s| !s.trim().is_empty()) {
        // Hound appends "?target=…" to GraphiteBase: it is the render URL itself.
        let trimmed = base.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/render").unwrap_or(trimmed);
        match GraphiteUrl::parse(trimmed) {
            Ok(_) => top.graphite = Some(base.trim().to_string()),
            Err(e) => problem(format!("GraphiteBase: {e}")),
        }
    }
    if let Some(from) = string(f, "EmailFrom", problem).map(str::trim) {
        match from.parse::<lettre::message::Mailbox>() {
            Ok(_) => top.email_from = Some(from.to_string()),
            Err(e) => problem(format!(
                "EmailFrom: '{from}' is not an e-mail address ({e})"
            )),
        }
    }
    if let Some(to) = string(f, "EmailTo", problem) {
        let list = addresses(to, "EmailTo", problem);
        if !list.is_empty() {
            top.email_to = Some(list);
        }
    }
    let integer = |key: &str, min: u64, problem: &mut dyn FnMut(String)| match f.get(key) {
        None => None,
        Some(Value::Number(n)) => match n.as_u64().filter(|&v| v >= min) {
            Some(v) => Some(v),
            None => {
                problem(format!(
                    "{key}: must be a whole number of at least {min}, not {n}"
                ));
                None
            }
        },
        Some(other) => {
            problem(format!(
                "{key}: must be a whole number, not {}",
                kind(other)
            ));
            None
        }
    };
    top.interval_minutes = integer("CheckInterval", 1, problem);
    top.throttle = integer("GlobalThrottle", 0, problem);
    top.ignored = TOP_IGNORED
        .iter()
        .copied()
        .filter(|(k, _)| f.has(k))
        .collect();
    top
}

fn settings_text(origin: &str, top: &Top, rules_without_email: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# carbonhound.toml settings from Hound's {origin} (`carbonhound alerts import-hound`)."
    );
    let _ = writeln!(
        s,
        "# Add them to carbonhound.toml, into its [alerting] table if it has one."
    );
    s.push_str("[alerting]\n");
    match &top.email_from {
        Some(from) => {
            let _ = writeln!(s, "email_from = {}", toml_str(from));
        }
        None => s.push_str(
            "# email_from: not in the file (Hound 2 reads HOUND_EMAIL_FROM); the default is\n\
             # carbonhound@localhost.\n",
        ),
    }
    match &top.email_to {
        Some(to) => {
            let _ = writeln!(s, "email_to = {}", toml_list(to));
        }
        None => {
            let _ = writeln!(
                s,
                "# email_to: not in the file (Hound 2 reads HOUND_EMAIL_TO). Rules without an EmailTo\n\
                 # of their own ({rules_without_email} here) go to [alerting].email_to (default root@localhost)."
            );
        }
    }
    match top.interval_minutes {
        Some(m) => {
            let _ = writeln!(s, "# Hound's CheckInterval: {m} minutes between checks.");
            let _ = writeln!(s, "interval = \"{m}m\"");
        }
        None => s.push_str(
            "# interval: CheckInterval is not in the file (Hound 2 reads HOUND_CHECK_INTERVAL,\n\
             # in minutes).\n",
        ),
    }
    match top.throttle {
        Some(t) => {
            let _ = writeln!(
                s,
                "# Hound's GlobalThrottle: more than {t} alerts starting in one check are mailed as\n\
                 # one summary (0: never)."
            );
            let _ = writeln!(s, "throttle = {t}");
        }
        None => s.push_str(
            "# throttle: GlobalThrottle is not in the file (Hound 2 reads HOUND_GLOBAL_THROTTLE);\n\
             # carbonhound's default applies (see [alerting].throttle in the README).\n",
        ),
    }
    match &top.graphite {
        Some(base) => {
            let _ = writeln!(
                s,
                "# Hound's GraphiteBase, {base}: remote mode, the rules are evaluated by\n\
                 # that Graphite while the metrics stay there. Remove this line once carbonhound\n\
                 # receives the metrics itself."
            );
            // The URL exactly as Hound had it (credentials included), less "/render".
            let raw = base.trim_end_matches('/');
            let raw = raw.strip_suffix("/render").unwrap_or(raw);
            let _ = writeln!(s, "graphite_url = {}", toml_str(raw));
        }
        None => s.push_str(
            "# graphite_url: GraphiteBase is not in the file (Hound 2 reads HOUND_GRAPHITE_BASE, the\n\
             # render URL; graphite_url is that URL without /render). Unset, rules are evaluated here.\n",
        ),
    }
    for (key, why) in &top.ignored {
        let _ = writeln!(s, "# Hound's {key} is not carried over ({why}).");
    }
    s
}

/// Reads Hound's configuration `json` (the file's text; `origin` names it in messages and
/// comments) into a rule file and settings. `max_depth` is `[query].max_expression_depth`,
/// which every target must respect. Errors: not JSON (with line and column), or every
/// problem found (see the module's documentation); never panics.
pub fn import_hound(json: &str, origin: &str, max_depth: usize) -> Result<HoundImport, HoundError> {
    let root: Value = serde_json::from_str(json).map_err(|e| HoundError::Json {
        origin: origin.to_string(),
        line: e.line(),
        column: e.column(),
        // serde_json's message ends with the location, which the error already leads with.
        message: e
            .to_string()
            .trim_end_matches(&format!(" at line {} column {}", e.line(), e.column()))
            .to_string(),
    })?;
    let mut problems: Vec<String> = Vec::new();
    let Value::Object(obj) = &root else {
        return Err(HoundError::Invalid {
            origin: origin.into(),
            problems: vec![format!(
                "must be an object {{\"Alerts\": […]}}, not {}",
                kind(&root)
            )],
        });
    };
    let ignored: Vec<&'static str> = TOP_IGNORED.iter().map(|(k, _)| *k).collect();
    let top_fields = Fields::read(obj, &TOP_KEYS, &ignored, &mut |p| problems.push(p));
    let top = read_top(&top_fields, &mut |p| problems.push(p));
    let alerts: &[Value] = match top_fields.get("Alerts") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) | None => {
            problems.push("Alerts: no alerts in the file, nothing to import".into());
            &[]
        }
        Some(other) => {
            problems.push(format!("Alerts: must be a list, not {}", kind(other)));
            &[]
        }
    };
    let mut blocks: Vec<AlertBlock> = Vec::new();
    let mut seen: Vec<(String, String, String)> = Vec::new(); // (name, slug, label)
    for (i, v) in alerts.iter().enumerate() {
        let label = alert_label(i, v);
        let Some(block) = read_alert(v, &mut |p| problems.push(format!("{label}: {p}"))) else {
            continue;
        };
        // The rule parser's own checks (target syntax and functions, name, addresses,
        // runbook), located back to the Hound key by the line they point at.
        let text = block.text();
        if let Err(errors) = parse_rules(Path::new(origin), &text, max_depth) {
            for e in errors.0 {
                let key =
                    e.at.and_then(|(line, _)| line.checked_sub(2))
                        .and_then(|n| block.lines.get(n))
                        .map(|(k, _)| format!("{k}: "))
                        .unwrap_or_default();
                problems.push(format!("{label}: {key}{}", e.message));
            }
            continue;
        }
        let slug = slugify(&block.name);
        if let Some((_, _, first)) = seen.iter().find(|(n, _, _)| *n == block.name) {
            problems.push(format!(
                "{label}: Name: \"{}\" is already the name of {first} (names must be unique)",
                block.name
            ));
            continue;
        }
        if let Some((n, _, first)) = seen.iter().find(|(_, s, _)| *s == slug) {
            problems.push(format!(
                "{label}: Name: \"{}\" gives the same page address /alerts/{slug} as \"{n}\" ({first})",
                block.name
            ));
            continue;
        }
        seen.push((block.name.clone(), slug, label));
        blocks.push(block);
    }
    if !problems.is_empty() {
        return Err(HoundError::Invalid {
            origin: origin.into(),
            problems,
        });
    }
    let mut rules = String::new();
    let _ = writeln!(
        rules,
        "# Alert rules imported from Hound's {origin} by `carbonhound alerts import-hound`,\n\
         # one [[alert]] per entry of its Alerts, in order. As in Hound, a rule fails when the last\n\
         # value of its target in the last 10 minutes is >= threshold (above) or <= threshold (below)."
    );
    for (i, b) in blocks.iter().enumerate() {
        let _ = write!(rules, "\n# Hound's Alerts[{i}]\n{}", b.text());
    }
    // The file as a whole must load as the server will read it.
    if let Err(e) = parse_rules(Path::new(origin), &rules, max_depth) {
        return Err(HoundError::Invalid {
            origin: origin.into(),
            problems: vec![format!("the rule file made from it does not parse: {e}")],
        });
    }
    let without_email = blocks
        .iter()
        .filter(|b| !b.lines.iter().any(|(k, _)| *k == "EmailTo"))
        .count();
    Ok(HoundImport {
        settings_toml: settings_text(origin, &top, without_email),
        rules_toml: rules,
        names: blocks.into_iter().map(|b| b.name).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::{Direction, Level, RuleType};

    const HOUND1: &str = r#"{
        "GraphiteBase": "http://graphite.example.com/render/",
        "EmailFrom": "hound@example.com",
        "EmailTo": "ops@example.com, oncall@example.com",
        "CheckInterval": 5,
        "GlobalThrottle": 10,
        "CarbonBase": "graphite.example.com:2003",
        "Alerts": [
            {"Name": "Capsim Smoketests Failed", "Metric": "app.smoketest.capsim.failed",
             "Threshold": 0.5, "Direction": "above", "EmailTo": "anders@example.com"},
            {"Name": "Capsim Smoketests Passed Notice", "Type": "Notice",
             "Metric": "app.smoketest.capsim.passed", "Threshold": 5, "Direction": "below"},
            {"name": "cement highstate failed", "type": "Alert",
             "metric": "summarize(server.cement.highstate.failed, '1h', 'min')",
             "threshold": 0.5, "direction": "above",
             "RunBookLink": "https://wiki.example.com/cement"}
        ]
    }"#;

    fn problems(json: &str) -> Vec<String> {
        match import_hound(json, "config.json", 64) {
            Err(HoundError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn a_hound_1_config_becomes_rules_and_settings() {
        let out = import_hound(HOUND1, "config.json", 64).unwrap();
        let rules = parse_rules(Path::new("hound.toml"), &out.rules_toml, 64).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].name, "Capsim Smoketests Failed");
        assert_eq!(rules[0].target_text(), "app.smoketest.capsim.failed");
        assert_eq!(rules[0].level_value(Level::Crit), Some(0.5));
        assert_eq!(rules[0].direction(), Some(Direction::Above));
        assert_eq!(rules[0].rule_type, RuleType::Alert);
        assert_eq!(rules[0].email_to, vec!["anders@example.com"]);
        assert_eq!(rules[1].rule_type, RuleType::Notice);
        assert_eq!(rules[1].direction(), Some(Direction::Below));
        assert_eq!(rules[1].level_value(Level::Crit), Some(5.0));
        assert!(rules[1].email_to.is_empty(), "the default recipients");
        assert_eq!(
            rules[2].target_text(),
            "summarize(server.cement.highstate.failed,'1h','min')",
            "whitespace removed, as Hound's cleanMetric; lower-case keys read as Go does"
        );
        assert_eq!(
            rules[2].runbook.as_deref(),
            Some("https://wiki.example.com/cement")
        );
        assert_eq!(out.names.len(), 3);

        let settings: toml::Table = toml::from_str(&out.settings_toml).unwrap();
        let a = settings["alerting"].as_table().unwrap();
        assert_eq!(a["email_from"].as_str(), Some("hound@example.com"));
        assert_eq!(
            a["email_to"].as_array().unwrap().len(),
            2,
            "Hound's comma-separated EmailTo"
        );
        assert_eq!(
            a["interval"].as_str(),
            Some("5m"),
            "CheckInterval is minutes"
        );
        assert_eq!(
            a["graphite_url"].as_str(),
            Some("http://graphite.example.com")
        );
        assert_eq!(
            a["throttle"].as_integer(),
            Some(10),
            "GlobalThrottle is [alerting].throttle"
        );
        assert!(out.settings_toml.contains("CarbonBase is not carried over"));
        // The settings load as carbonhound's own.
        let s =
            crate::config::Settings::from_toml(&out.settings_toml, Path::new("x.toml")).unwrap();
        assert_eq!(s.alerting.interval, std::time::Duration::from_secs(300));
        assert_eq!(
            s.alerting.graphite_url.unwrap().public(),
            "http://graphite.example.com"
        );
    }

    #[test]
    fn a_hound_2_config_has_only_alerts() {
        let out = import_hound(
            r#"{"Alerts": [{"Name": "a", "Metric": "x.y", "Threshold": 1, "Direction": "above"}]}"#,
            "config.json",
            64,
        )
        .unwrap();
        for var in [
            "HOUND_EMAIL_FROM",
            "HOUND_EMAIL_TO",
            "HOUND_CHECK_INTERVAL",
            "HOUND_GRAPHITE_BASE",
        ] {
            assert!(
                out.settings_toml.contains(var),
                "{var}: {}",
                out.settings_toml
            );
        }
        let s =
            crate::config::Settings::from_toml(&out.settings_toml, Path::new("x.toml")).unwrap();
        assert_eq!(s.alerting.graphite_url, None);
    }

    #[test]
    fn bad_input_is_refused_naming_the_alert_and_key() {
        let p = problems(
            r#"{"CheckInterval": 2.5, "GlobalThrottle": "ten", "EmailForm": "x@y.z",
                "Alerts": [
                {"Name": "Up", "Metric": "a.b", "Threshold": 1, "Direction": "upwards"},
                {"Name": "No metric", "Threshold": 1, "Direction": "above"},
                {"Name": "Text", "Metric": "a.b", "Threshold": "0.5", "Direction": "above"},
                {"Name": "Dup", "Metric": "a.b", "Threshold": 1, "Direction": "above"},
                {"Name": "Dup", "Metric": "a.c", "Threshold": 1, "Direction": "above"},
                {"Name": "Typo", "Metric": "a.b", "Treshold": 1, "Direction": "above"},
                {"Name": "Kind", "Metric": "a.b", "Threshold": 1, "Direction": "above", "Type": "Warning"},
                {"Name": "Func", "Metric": "noSuchFunction(a.b)", "Threshold": 1, "Direction": "above"},
                {"Name": "Link", "Metric": "a.b", "Threshold": 1, "Direction": "above", "RunBookLink": "wiki/x"},
                {"Name": "Mail", "Metric": "a.b", "Threshold": 1, "Direction": "above", "EmailTo": "not an address"},
                {"Name": "dup", "Metric": "a.b", "Threshold": 1, "Direction": "above"},
                "not an object"
            ]}"#,
        );
        let all = p.join("\n");
        for want in [
            "CheckInterval: must be a whole number of at least 1, not 2.5",
            "GlobalThrottle: must be a whole number, not a string",
            "EmailForm: not a key of Hound's configuration; did you mean EmailFrom?",
            "Alerts[0] (\"Up\"): Direction: unknown direction \"upwards\"",
            "Alerts[1] (\"No metric\"): Metric: missing",
            "Alerts[2] (\"Text\"): Threshold: must be a number, not the string \"0.5\"",
            "Alerts[4] (\"Dup\"): Name: \"Dup\" is already the name of Alerts[3] (\"Dup\")",
            "Alerts[5] (\"Typo\"): Treshold: not a key of Hound's configuration; did you mean Threshold?",
            "Alerts[5] (\"Typo\"): Threshold: missing",
            "Alerts[6] (\"Kind\"): Type: unknown type \"Warning\"",
            "Alerts[7] (\"Func\"): Metric: unknown function 'noSuchFunction'",
            "Alerts[8] (\"Link\"): RunBookLink: runbook must be an http:// or https:// link",
            "Alerts[9] (\"Mail\"): EmailTo: 'not an address' is not an e-mail address",
            "Alerts[10] (\"dup\"): Name: \"dup\" gives the same page address /alerts/dup",
            "Alerts[11]: must be an object",
        ] {
            assert!(all.contains(want), "{want}\n--- in ---\n{all}");
        }
        assert_eq!(p.len(), 15, "{all}");
    }

    #[test]
    fn not_json_or_not_a_config() {
        let e = import_hound("{\n  \"Alerts\": [,]\n}", "c.json", 64).unwrap_err();
        assert!(e.to_string().starts_with("c.json:2:"), "{e}");
        assert_eq!(
            problems("[]"),
            vec!["must be an object {\"Alerts\": […]}, not a list"]
        );
        assert_eq!(
            problems("{}"),
            vec!["Alerts: no alerts in the file, nothing to import"]
        );
        assert!(
            problems(r#"{"GraphiteBase": "graphite:80", "Alerts": []}"#)[0]
                .starts_with("GraphiteBase: invalid graphite URL")
        );
        let e = import_hound(r#"{"Alerts": {}}"#, "c.json", 64)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.json: not imported, nothing written:\n  Alerts: must be a list"),
            "{e}"
        );
    }

    #[test]
    fn names_and_targets_needing_escapes_survive() {
        let out = import_hound(
            r#"{"Alerts": [{"Name": "Disk \"/\" full \\ 95%", "Metric": "alias(a.b,'x\"y')", "Threshold": -1.25e3, "Direction": "below"}]}"#,
            "c.json",
            64,
        )
        .unwrap();
        let r = parse_rules(Path::new("h.toml"), &out.rules_toml, 64).unwrap();
        assert_eq!(r[0].name, "Disk \"/\" full \\ 95%");
        assert_eq!(r[0].target_text(), "alias(a.b,'x\"y')");
        assert_eq!(r[0].level_value(Level::Crit).unwrap(), -1250.0);
    }
}
