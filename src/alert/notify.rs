//! Who is told, and what each channel receives: contacts (`[[contact]]`), routes
//! (`[[route]]`), and the payloads of the four channels — mail (the composed message), a
//! JSON webhook (carbonhound's schema, below), a Slack incoming webhook, and PagerDuty's
//! Events API v2. Pure functions of the rule, its state and the mail kind; the outbox
//! (`outbox.rs`) stores and delivers what is built here.
//!
//! ## Who is told
//! 1. A rule's `notify = [...]` names contacts directly (and its `email_to`, if any, is mailed
//!    too);
//! 2. otherwise a rule's `email_to` (Hound's key) is mailed;
//! 3. otherwise the `[[route]]`s in order: a route matches when every `match` pair equals the
//!    rule's label (`severity` compares with the notification's level: `crit`, `warn`,
//!    `nodata`, `error`); the first match wins unless it says `continue = true`;
//! 4. otherwise `[alerting].email_to`.
//!
//! Errors of a rule that cannot be evaluated (`[ERROR]`) go to `[alerting].admin_email` only.
//!
//! ## The webhook schema (version 1), one POST per notification
//! ```json
//! {"version": 1, "id": "…", "event": "fire|change|reminder|recovery|error|error-reminder|error-recovery|acknowledged|escalation",
//!  "subject": "[CRIT] Disk: web1 97 (crit 95)", "state": "crit", "level": "crit",
//!  "rule": {"name": "…", "slug": "…", "type": "alert", "labels": {…}, "runbook": "…", "url": "…"},
//!  "incident": {"id": "…", "started": 1700000000}, "since": 1700000000, "time": 1700000060,
//!  "series": [{"series": "…", "state": "crit", "value": 97.0, "level": "crit 95", "since": …}],
//!  "graph_url": "http://…/render?…&format=png", "text": "the mail's text body",
//!  "ack_url": "http://…/ack/<token>" | null, "acknowledged": {"by", "comment", "at"} | null}
//! ```
//! `id` is the notification's own id (stable across retries: a receiver can drop repeats);
//! `incident.id` is the same for every notification of one incident.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::format;
use super::mail::Composed;
use super::rule::{Level, Rule};
use super::state::{MailKind, RuleState, State};
use crate::config::{ContactSettings, RouteSettings};

/// Most series listed in a webhook, Slack or PagerDuty payload.
pub const MAX_SERIES_SENT: usize = 50;

/// A way of reaching a contact.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// SMTP mail.
    Email,
    /// carbonhound's JSON webhook.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
}

impl Channel {
    /// `email`, `webhook`, `slack`, `pagerduty`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Slack => "slack",
            Channel::Pagerduty => "pagerduty",
        }
    }
}

/// One destination of a notification: a contact's channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The contact's name (`default` for `[alerting].email_to`, `admin` for `admin_email`,
    /// `email_to` for a rule's own addresses).
    pub contact: String,
    /// The channel.
    pub channel: Channel,
    /// Mail addresses (email), or the URL (the others).
    pub to: Vec<String>,
    /// PagerDuty's routing key (empty for the others).
    pub key: String,
}

/// The level a notification is about, for `severity` in routes: the worst failing series'
/// state (`crit`, `warn`, `nodata`), `error`, or for a recovery the incident's worst.
pub fn severity(state: &RuleState, kind: MailKind) -> &'static str {
    if kind.is_admin() {
        return "error";
    }
    let worst = match kind {
        MailKind::Recovery => state.incident.as_ref().map(|i| i.worst),
        _ => state
            .series
            .values()
            .map(|s| s.state)
            .filter(|s| s.is_failing())
            .max_by_key(|s| s.rank()),
    };
    match worst {
        Some(State::Warn) => "warn",
        Some(State::NoData) => "nodata",
        _ => "crit",
    }
}

fn contact_targets(c: &ContactSettings) -> Vec<Target> {
    let mut out = Vec::new();
    let t = |channel, to: Vec<String>, key: &str| Target {
        contact: c.name.clone(),
        channel,
        to,
        key: key.to_string(),
    };
    if !c.email.is_empty() {
        out.push(t(Channel::Email, c.email.clone(), ""));
    }
    if !c.webhook.is_empty() {
        out.push(t(Channel::Webhook, vec![c.webhook.clone()], ""));
    }
    if !c.slack_webhook.is_empty() {
        out.push(t(Channel::Slack, vec![c.slack_webhook.clone()], ""));
    }
    if !c.pagerduty_routing_key.is_empty() {
        out.push(t(
            Channel::Pagerduty,
            vec![c.pagerduty_url.clone()],
            &c.pagerduty_routing_key,
        ));
    }
    out
}

/// Whether `route` matches `rule` at `severity` (every pair holds).
pub fn route_matches(route: &RouteSettings, rule: &Rule, severity: &str) -> bool {
    route.matches.iter().all(|(k, v)| match k.as_str() {
        "severity" => v == severity,
        _ => rule.labels.get(k) == Some(v),
    })
}

/// The contact names the routes give `rule` at `severity` (first match wins, `continue`
/// goes on), in order, without repeats.
pub fn routed(routes: &[RouteSettings], rule: &Rule, severity: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in routes {
        if route_matches(r, rule, severity) {
            for c in &r.contacts {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
            if !r.continue_ {
                break;
            }
        }
    }
    out
}

/// Everything routing needs from the settings.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// `[[contact]]`.
    pub contacts: Vec<ContactSettings>,
    /// `[[route]]`.
    pub routes: Vec<RouteSettings>,
    /// `[alerting].email_to`.
    pub default_to: Vec<String>,
    /// `[alerting].admin_email` (`email_to` when empty).
    pub admin: Vec<String>,
}

impl Routing {
    /// Where notification `kind` of `rule` in `state` goes, one [`Target`] per contact and
    /// channel (see the module's "Who is told").
    pub fn targets(&self, rule: &Rule, state: &RuleState, kind: MailKind) -> Vec<Target> {
        let email = |contact: &str, to: Vec<String>| Target {
            contact: contact.to_string(),
            channel: Channel::Email,
            to,
            key: String::new(),
        };
        if kind == MailKind::Ack {
            // People who acknowledged know; the systems (webhooks, Slack, PagerDuty) are told.
            let mut t = self.targets(rule, state, MailKind::Fire);
            t.retain(|t| t.channel != Channel::Email);
            return t;
        }
        if let MailKind::Escalation(i) = kind {
            return self
                .routes
                .get(i as usize)
                .map(|r| self.contact_targets(&r.escalate_to))
                .unwrap_or_default();
        }
        if kind.is_admin() {
            let to = if self.admin.is_empty() {
                self.default_to.clone()
            } else {
                self.admin.clone()
            };
            return if to.is_empty() {
                Vec::new()
            } else {
                vec![email("admin", to)]
            };
        }
        let mut out = Vec::new();
        let by_name = |n: &str| self.contacts.iter().find(|c| c.name == n);
        if !rule.notify.is_empty() {
            for n in &rule.notify {
                if let Some(c) = by_name(n) {
                    out.extend(contact_targets(c));
                }
            }
            if !rule.email_to.is_empty() {
                out.push(email("email_to", rule.email_to.clone()));
            }
            return out;
        }
        if !rule.email_to.is_empty() {
            return vec![email("email_to", rule.email_to.clone())];
        }
        let names = routed(&self.routes, rule, severity(state, kind));
        if !names.is_empty() {
            for n in names {
                if let Some(c) = by_name(&n) {
                    out.extend(contact_targets(c));
                }
            }
            return out;
        }
        if self.default_to.is_empty() {
            Vec::new()
        } else {
            vec![email("default", self.default_to.clone())]
        }
    }

    /// The escalations that apply to `rule` at `severity`: (route index, seconds after the
    /// incident began, the contacts told), from the routes that match it (first match wins,
    /// `continue` goes on), as routing picks them.
    pub fn escalations(&self, rule: &Rule, severity: &str) -> Vec<(u32, i64, Vec<String>)> {
        let mut out = Vec::new();
        if !rule.notify.is_empty() || !rule.email_to.is_empty() {
            return out;
        }
        for (i, r) in self.routes.iter().enumerate() {
            if route_matches(r, rule, severity) {
                if let Some(after) = r.escalate_after {
                    out.push((i as u32, after.as_secs() as i64, r.escalate_to.clone()));
                }
                if !r.continue_ {
                    break;
                }
            }
        }
        out
    }

    /// The targets of named contacts (escalation).
    pub fn contact_targets(&self, names: &[String]) -> Vec<Target> {
        names
            .iter()
            .filter_map(|n| self.contacts.iter().find(|c| &c.name == n))
            .flat_map(contact_targets)
            .collect()
    }

    /// Whether a rule's notifications can reach anyone at all, and its `notify` names
    /// contacts that exist: the check made when rules are read.
    pub fn check_rule(&self, rule: &Rule) -> Result<(), String> {
        for n in &rule.notify {
            if !self.contacts.iter().any(|c| &c.name == n) {
                let names: Vec<&str> = self.contacts.iter().map(|c| c.name.as_str()).collect();
                return Err(format!(
                    "rule '{}': notify names {n:?}, but no [[contact]] has that name (contacts: {})",
                    rule.name,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ));
            }
        }
        let routed_somewhere = ["crit", "warn", "nodata"]
            .iter()
            .any(|s| !routed(&self.routes, rule, s).is_empty());
        if rule.notify.is_empty()
            && rule.email_to.is_empty()
            && !routed_somewhere
            && self.default_to.is_empty()
        {
            return Err(format!(
                "rule '{}' reaches nobody: it has no notify or email_to, no [[route]] matches it, and [alerting].email_to is empty",
                rule.name
            ));
        }
        Ok(())
    }
}

/// What the webhook, Slack and PagerDuty payloads are built from.
pub struct Facts<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// Its state after the check.
    pub state: &'a RuleState,
    /// Which notification.
    pub kind: MailKind,
    /// The composed mail (subject and text are reused).
    pub mail: &'a Composed,
    /// The rule's page.
    pub rule_url: String,
    /// A PNG of the rule's targets over 24 h, served by carbonhound's `/render`.
    pub graph_url: String,
    /// When (epoch seconds).
    pub now: i64,
    /// The notification's id, stable across retries.
    pub id: String,
    /// The signed link that acknowledges the incident, on notifications that call for action.
    pub ack_url: Option<String>,
}

fn series_json(f: &Facts<'_>) -> Vec<Value> {
    let mut failing = f.state.failing(f.rule);
    if failing.is_empty() {
        failing = f
            .state
            .series
            .iter()
            .map(|(n, s)| (n.as_str(), s))
            .collect();
    }
    failing
        .into_iter()
        .take(MAX_SERIES_SENT)
        .map(|(n, s)| {
            json!({
                "series": n,
                "state": s.state.as_str(),
                "value": s.value.filter(|v| v.is_finite()),
                "level": s.level.map(|l| f.rule.level_text(l)),
                "since": s.since,
            })
        })
        .collect()
}

fn incident<'a>(f: &'a Facts<'_>) -> Option<&'a super::state::Incident> {
    if f.kind.is_admin() {
        f.state.error_incident.as_ref()
    } else {
        f.state.incident.as_ref()
    }
}

fn state_of(f: &Facts<'_>) -> &'static str {
    match f.kind {
        MailKind::Recovery | MailKind::ErrorRecovery => "ok",
        MailKind::Error | MailKind::ErrorReminder(_) => "error",
        _ => severity(f.state, f.kind),
    }
}

/// carbonhound's webhook body (schema in the module docs).
pub fn webhook(f: &Facts<'_>) -> Value {
    let inc = incident(f);
    json!({
        "version": 1,
        "id": f.id,
        "event": f.kind.as_str(),
        "subject": f.mail.subject,
        "state": state_of(f),
        "level": severity(f.state, f.kind),
        "rule": {
            "name": f.rule.name,
            "slug": f.rule.slug,
            "type": f.rule.rule_type.as_str(),
            "labels": f.rule.labels,
            "runbook": f.rule.runbook,
            "url": f.rule_url,
            "target": f.rule.target_text(),
        },
        "incident": inc.map(|i| json!({"id": i.thread, "started": i.started})),
        "since": inc.map(|i| i.started).unwrap_or(f.state.since),
        "time": f.now,
        "series": series_json(f),
        "message": (!f.state.message.is_empty()).then_some(&f.state.message),
        "ack_url": f.ack_url,
        "acknowledged": inc.and_then(|i| i.acked.as_ref()).map(|a| json!({"by": a.by, "comment": a.comment, "at": a.at})),
        "graph_url": f.graph_url,
        "text": f.mail.text,
    })
}

fn color(state: &str) -> &'static str {
    match state {
        "ok" => "#2e7d32",
        "warn" => "#ef6c00",
        "nodata" => "#616161",
        "error" => "#6a1b9a",
        _ => "#c62828",
    }
}

/// A Slack incoming-webhook body (`text` plus one attachment with colour, fields, the rule's
/// link and the graph), which Mattermost accepts too.
pub fn slack(f: &Facts<'_>) -> Value {
    let state = state_of(f);
    let mut fields = Vec::new();
    for (n, s) in f.state.failing(f.rule).into_iter().take(10) {
        let value = if s.detail.is_empty() {
            s.value
                .map(format::value)
                .unwrap_or_else(|| "no data".into())
        } else {
            s.detail.clone()
        };
        fields.push(json!({
            "title": if n.is_empty() { f.rule.target_text() } else { n.to_string() },
            "value": format!("{} {value}{}", s.state.label(), s.level.map(|l| format!(" ({})", f.rule.level_text(l))).unwrap_or_default()),
            "short": false,
        }));
    }
    if let Some(r) = &f.rule.runbook {
        fields.push(json!({"title": "Runbook", "value": r, "short": false}));
    }
    if let Some(a) = &f.ack_url {
        fields.push(json!({"title": "Acknowledge", "value": a, "short": false}));
    }
    let since = incident(f).map(|i| i.started).unwrap_or(f.state.since);
    json!({
        "text": f.mail.subject,
        "attachments": [{
            "fallback": f.mail.subject,
            "color": color(state),
            "title": f.rule.name,
            "title_link": f.rule_url,
            "text": format!("{} since {}", state.to_uppercase(), format::utc(since)),
            "fields": fields,
            "image_url": f.graph_url,
            "footer": "carbonhound",
            "ts": f.now,
        }],
    })
}

/// A PagerDuty Events API v2 body: `trigger` for a failure (and its changes and reminders),
/// `resolve` for a recovery; the incident's id as `dedup_key`, so PagerDuty keeps one incident.
pub fn pagerduty(f: &Facts<'_>, routing_key: &str) -> Value {
    let dedup = incident(f)
        .map(|i| i.thread.clone())
        .unwrap_or_else(|| f.id.clone());
    let action = match f.kind {
        MailKind::Recovery | MailKind::ErrorRecovery => "resolve",
        MailKind::Ack => "acknowledge",
        _ => "trigger",
    };
    if action != "trigger" {
        return json!({"routing_key": routing_key, "event_action": action, "dedup_key": dedup});
    }
    let severity = match state_of(f) {
        "warn" => "warning",
        "error" => "error",
        "nodata" => "error",
        _ => "critical",
    };
    let source = f
        .state
        .failing(f.rule)
        .first()
        .map(|(n, _)| n.to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| f.rule.target_text());
    let summary: String = f.mail.subject.chars().take(1024).collect();
    let timestamp = chrono::DateTime::<chrono::Utc>::from_timestamp(f.now, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default();
    let mut details: BTreeMap<&str, Value> = BTreeMap::new();
    details.insert("rule", json!(f.rule.name));
    details.insert("target", json!(f.rule.target_text()));
    details.insert("series", json!(series_json(f)));
    for l in [Level::Warn, Level::Crit] {
        let t = f.rule.level_text(l);
        if t != l.as_str() {
            details.insert(l.as_str(), json!(t));
        }
    }
    if let Some(r) = &f.rule.runbook {
        details.insert("runbook", json!(r));
    }
    let mut links = vec![json!({"href": f.rule_url, "text": "carbonhound rule page"})];
    if let Some(a) = &f.ack_url {
        links.push(json!({"href": a, "text": "Acknowledge in carbonhound"}));
    }
    if let Some(r) = &f.rule.runbook {
        links.push(json!({"href": r, "text": "Runbook"}));
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity,
            "timestamp": timestamp,
            "component": f.rule.target_text(),
            "group": f.rule.labels.get("team"),
            "class": f.rule.name,
            "custom_details": details,
        },
        "links": links,
        "images": [{"src": f.graph_url, "alt": format!("{} over the last 24 hours", f.rule.target_text())}],
        "client": "carbonhound",
        "client_url": f.rule_url,
    })
}
