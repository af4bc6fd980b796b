//! Composing alert mail: the subject (`[CRIT] Root fs filling: web1 97.2 (crit 95)`,
//! `[WARN] …`, `[NO DATA] …`, `[RECOVERED] …`, `[ERROR] …`, `[REMINDER 2] [CRIT] …`), a
//! text/plain body and an HTML body from the templates, and two PNG graphs (the last hour and
//! the last 24 hours) drawn at 2× pixel density so they read on a 375 px wide phone, with
//! the warn and crit levels as dashed lines, the failing span shaded and the incident's start
//! marked. Built into one multipart/alternative message (text/plain | multipart/related(
//! text/html, image/png ×2 inline by Content-ID)). Every mail of an incident carries
//! In-Reply-To and References to its first mail, so a mail client shows one thread.
//!
//! Written for the person on call at 3 a.m.: what crossed what, by how much, since when,
//! and where to look next. Composes only; sending is [`super::smtp`].

use chrono_tz::Tz;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde::Serialize;

use super::format;
use super::rule::{Direction, Level, Rule, RuleType};
use super::state::{Incident, MailKind, RuleState, SeriesState, State, MAX_LISTED};
use super::templates::{TemplateError, Templates};
use crate::graph::parse_color;
use crate::graph::{render_png, GraphError, GraphParams};
use crate::query::Series;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// No template (override or built-in) rendered.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The graph could not be drawn.
    #[error("{0}")]
    Graph(#[from] GraphError),
    /// `[alerting].email_from` is not an address.
    #[error("email_from '{value}' is not an e-mail address: {source}")]
    Sender {
        /// The setting's value.
        value: String,
        /// lettre's reason.
        source: lettre::address::AddressError,
    },
    /// Neither the rule nor `[alerting].email_to` names anyone.
    #[error("no recipients (set email_to in the rule or [alerting].email_to)")]
    NoRecipients,
    /// A rule's or the default `email_to` entry is not an address.
    #[error("recipient '{value}' is not an e-mail address: {source}")]
    Recipient {
        /// The entry.
        value: String,
        /// lettre's reason.
        source: lettre::address::AddressError,
    },
    /// The image part's content type (not expected to happen).
    #[error("{0}")]
    ContentType(#[from] lettre::message::header::ContentTypeErr),
    /// lettre refused to assemble the message.
    #[error("cannot build the message: {0}")]
    Build(#[source] lettre::error::Error),
}

/// Most series drawn in a mail's graph (failing ones first).
pub const MAX_GRAPHED: usize = 8;
/// Span of the mail's long graph, in seconds (24 h).
pub const GRAPH_SPAN: i64 = 86_400;
/// Span of the mail's short graph, in seconds (the last hour).
pub const SHORT_SPAN: i64 = 3_600;
/// Width of a mail graph in CSS pixels (a phone's width); the PNG has twice as many.
pub const GRAPH_CSS_WIDTH: u32 = 375;
/// Height of a mail graph in CSS pixels.
pub const GRAPH_CSS_HEIGHT: u32 = 220;
/// Longest error message put in an `[ERROR]` subject, in characters.
const SUBJECT_MESSAGE_CHARS: usize = 120;

/// What mail needs beyond the rule and its state.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Sender (`[alerting].email_from`).
    pub from: String,
    /// Recipients of rules that name none (`[alerting].email_to`).
    pub default_to: Vec<String>,
    /// Recipients of `[ERROR]` mail (`[alerting].admin_email`; `email_to` when empty).
    pub admin: Vec<String>,
    /// Base URL of the status pages, no trailing slash needed.
    pub base_url: String,
    /// Zone shown next to UTC (`[query].timezone`).
    pub tz: Tz,
    /// The signed acknowledge link of this mail's incident, when it calls for action (set
    /// per mail by the scheduler).
    pub ack_url: Option<String>,
}

impl MailSettings {
    /// Who gets mail `kind` of `rule`.
    pub fn recipients(&self, rule: &Rule, kind: MailKind) -> Vec<String> {
        if kind.is_admin() {
            if self.admin.is_empty() {
                self.default_to.clone()
            } else {
                self.admin.clone()
            }
        } else {
            rule.recipients(&self.default_to).to_vec()
        }
    }
}

/// One inline image of a mail.
#[derive(Debug, Clone)]
pub struct Image {
    /// Content-ID (without angle brackets), named by the HTML's `<img src="cid:…">`.
    pub cid: String,
    /// File name shown by mail clients.
    pub name: String,
    /// The PNG.
    pub png: Vec<u8>,
}

/// A composed mail, before it becomes MIME.
#[derive(Debug, Clone)]
pub struct Composed {
    /// Subject line.
    pub subject: String,
    /// Recipients.
    pub to: Vec<String>,
    /// text/plain body.
    pub text: String,
    /// text/html body.
    pub html: String,
    /// The graphs: the last hour, then the last 24 hours.
    pub images: Vec<Image>,
    /// This mail's Message-ID (without angle brackets).
    pub message_id: String,
    /// The Message-ID of the incident's first mail, when this one replies to it.
    pub in_reply_to: Option<String>,
}

#[derive(Serialize)]
struct RuleCtx<'a> {
    name: &'a str,
    slug: &'a str,
    target: String,
    warn: Option<String>,
    crit: Option<String>,
    direction: Option<&'static str>,
    opposite: Option<&'static str>,
    #[serde(rename = "type")]
    rule_type: &'static str,
    reduce: String,
    window: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    runbook: Option<&'a str>,
    recipients: Vec<String>,
    source: &'a str,
    labels: Vec<(String, String)>,
}

#[derive(Serialize)]
struct SeriesCtx {
    series: String,
    short: String,
    state: &'static str,
    label: &'static str,
    value: Option<String>,
    level: Option<String>,
    excess: Option<String>,
    percent: Option<String>,
    since_utc: String,
    last_seen_utc: Option<String>,
    detail: String,
}

/// The variables every alert template sees (`alert.txt`, `alert.html`).
#[derive(Serialize)]
struct MailCtx<'a> {
    /// `fire`, `change`, `reminder`, `recovery`, `error`, `error-reminder`, `error-recovery`.
    kind: &'static str,
    /// `CRIT`, `WARN`, `NO DATA`, `RECOVERED`, `ERROR` (or `NOTICE` for a notice).
    label: &'static str,
    /// `crit`, `warn`, `nodata`, `ok`, `error`: the colour of the mail.
    state: &'static str,
    subject: String,
    reminder: Option<u32>,
    rule: RuleCtx<'a>,
    rule_url: String,
    headline: String,
    failing: Vec<SeriesCtx>,
    failing_total: usize,
    failing_more: usize,
    series_total: usize,
    since_utc: String,
    since_local: Option<String>,
    failing_for: String,
    now_utc: String,
    now_local: Option<String>,
    tz: String,
    next_reminder: Option<String>,
    change: Option<String>,
    message: &'a str,
    ack_url: Option<&'a str>,
    cid_short: Option<&'a str>,
    cid_long: Option<&'a str>,
    graph_width: u32,
    graph_height: u32,
}

/// The part of a series name that differs between the series of a glob target: the nodes
/// matched by wildcards (`collectd.*.df-root.percent_bytes-used` and
/// `collectd.web1.df-root.percent_bytes-used` give `web1`). The whole name for targets
/// with functions or without wildcards; the rule's name for `""` (no series at all).
pub fn short_name(target: &str, series: &str) -> String {
    if series.is_empty() {
        return "(no series)".into();
    }
    let plain = !target.contains('(') && !target.contains(';');
    if plain {
        let t: Vec<&str> = target.split('.').collect();
        let s: Vec<&str> = series.split('.').collect();
        if t.len() == s.len() {
            let picked: Vec<&str> = t
                .iter()
                .zip(&s)
                .filter(|(t, _)| t.contains(['*', '?', '[', '{']))
                .map(|(_, s)| *s)
                .collect();
            if !picked.is_empty() {
                return picked.join(".");
            }
        }
    }
    series.to_string()
}

fn series_target(rule: &Rule) -> &str {
    rule.targets().first().map(|t| t.1).unwrap_or("")
}

/// How one failing series reads in a subject: `web1 97.2 (crit 95)`,
/// `web3 (no data for 15 min)`, or an expression's `errors = 7, total = 100 (crit: …)`.
fn series_words(rule: &Rule, name: &str, s: &SeriesState, now: i64) -> String {
    let short = short_name(series_target(rule), name);
    match s.state {
        State::NoData => {
            let quiet = s
                .last_seen
                .map(|t| format!("no data for {}", format::duration(now - t)))
                .unwrap_or_else(|| "no data".into());
            if name.is_empty() {
                format!("{quiet}: the target matches no series")
            } else {
                format!("{short} ({quiet})")
            }
        }
        _ => {
            let level = s.level.map(|l| rule.level_text(l)).unwrap_or_default();
            let value = if s.detail.is_empty() {
                s.value.map(format::value).unwrap_or_default()
            } else {
                s.detail.clone()
            };
            if name.is_empty() || !s.detail.is_empty() && !series_target(rule).contains('*') {
                format!("{value} ({level})")
            } else {
                format!("{short} {value} ({level})")
            }
        }
    }
}

fn label(rule: &Rule, state: &RuleState, kind: MailKind) -> &'static str {
    match kind {
        MailKind::Recovery | MailKind::ErrorRecovery => "RECOVERED",
        MailKind::Error | MailKind::ErrorReminder(_) => "ERROR",
        _ if rule.rule_type == RuleType::Notice => "NOTICE",
        _ => {
            let worst = state
                .failing(rule)
                .first()
                .map(|f| f.1.state)
                .unwrap_or(state.state);
            match worst {
                State::Crit | State::Warn | State::NoData => worst.label(),
                _ => "CRIT",
            }
        }
    }
}

fn truncate(s: &str, chars: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= chars {
        one_line
    } else {
        let mut t: String = one_line.chars().take(chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The subject of mail `kind` for `rule` in `state` at `now`.
pub fn subject(rule: &Rule, state: &RuleState, kind: MailKind, now: i64) -> String {
    let name = &rule.name;
    match kind {
        MailKind::Fire | MailKind::Change | MailKind::Reminder(_) => {
            let failing = state.failing(rule);
            let what = match failing.first() {
                Some((n, s)) => {
                    let w = series_words(rule, n, s, now);
                    if failing.len() > 1 {
                        format!("{w} and {} more", failing.len() - 1)
                    } else {
                        w
                    }
                }
                None => "failing".into(),
            };
            let base = format!("[{}] {name}: {what}", label(rule, state, kind));
            match kind {
                MailKind::Reminder(n) => format!("[REMINDER {n}] {base}"),
                _ => base,
            }
        }
        MailKind::Recovery => {
            let reason = recovery_reason(rule, state, now);
            format!("[RECOVERED] {name}: {reason}")
        }
        MailKind::Error => format!(
            "[ERROR] {name}: {}",
            truncate(&state.message, SUBJECT_MESSAGE_CHARS)
        ),
        MailKind::ErrorReminder(n) => format!(
            "[REMINDER {n}] [ERROR] {name}: {}",
            truncate(&state.message, SUBJECT_MESSAGE_CHARS)
        ),
        MailKind::ErrorRecovery => format!("[RECOVERED] {name}: evaluates again"),
        MailKind::Ack => match state.incident.as_ref().and_then(|i| i.acked.as_ref()) {
            Some(a) if a.comment.is_empty() => format!("[ACK] {name}: acknowledged by {}", a.by),
            Some(a) => format!("[ACK] {name}: acknowledged by {}: {}", a.by, a.comment),
            None => format!("[ACK] {name}: acknowledged"),
        },
        MailKind::Escalation(_) => {
            format!("[ESCALATED] {}", subject(rule, state, MailKind::Fire, now))
        }
    }
}

/// Why a rule recovered, in words: the edit that caused it (`rule changed: crit 0 → 1000`),
/// the one series that was failing and its value now (`web1 back below 95: 62`), or how
/// many series are back.
fn recovery_reason(rule: &Rule, state: &RuleState, _now: i64) -> String {
    if let Some((_, words)) = &state.changed {
        return format!("rule changed: {words}");
    }
    let told: Vec<&String> = state
        .incident
        .as_ref()
        .map(|i| i.told.keys().collect())
        .unwrap_or_default();
    if let [one] = told.as_slice() {
        let short = short_name(series_target(rule), one);
        let now = state.series.get(*one);
        let value = now.and_then(|s| s.value).map(format::value);
        let level = state
            .incident
            .as_ref()
            .and_then(|i| i.told.get(*one))
            .and_then(|st| match st {
                State::Crit => rule.level_value(Level::Crit),
                State::Warn => rule.level_value(Level::Warn),
                _ => None,
            });
        let prefix = if one.is_empty() {
            String::new()
        } else {
            format!("{short} ")
        };
        return match (rule.direction(), level, value) {
            (Some(d), Some(l), Some(v)) => format!(
                "{prefix}back {} {}: {v}",
                d.opposite().as_str(),
                format::value(l)
            ),
            (_, _, Some(v)) => format!("{prefix}OK again: {v}"),
            _ => format!("{prefix}OK again"),
        };
    }
    format!("{} series back to OK", told.len().max(1))
}

/// `/render` URL of the rule's targets with its levels drawn (warn amber, crit red, dashed),
/// over `from` (e.g. `-24h`): the path and query, for the rule page and the link to a PNG in
/// webhook, Slack and PagerDuty notifications.
pub fn graph_url(rule: &Rule, from: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (_, t) in rule.targets() {
        q.append_pair("target", t);
    }
    for (level, color) in [(Level::Warn, "orange"), (Level::Crit, "red")] {
        if let Some(v) = rule.level_value(level) {
            // A dashed line, as in the mail, keeping its legend name (`dashed` renames).
            let label = format!("{} {}", level.as_str(), format::value(v).replace('\'', ""));
            let line = format!("alias(dashed(threshold({v:?},'{label}','{color}')),'{label}')");
            q.append_pair("target", &line);
        }
    }
    for (k, v) in [
        ("from", from),
        ("width", "900"),
        ("height", "300"),
        ("bgcolor", "white"),
        ("fgcolor", "333333"),
        ("majorGridLineColor", "dddddd"),
        ("minorGridLineColor", "f0f0f0"),
        (
            "colorList",
            "1f5fa8,e07b00,2e8b57,8e44ad,8b5a2b,00838f,c2185b,546e7a",
        ),
        ("lineWidth", "2"),
        ("format", "png"),
    ] {
        q.append_pair(k, v);
    }
    format!("/render?{}", q.finish())
}

/// The URL of `rule`'s status page under `base_url`.
pub fn rule_url(base_url: &str, rule: &Rule) -> String {
    format!("{}/alerts/{}", base_url.trim_end_matches('/'), rule.slug)
}

fn headline(rule: &Rule, state: &RuleState, kind: MailKind, now: i64) -> String {
    match kind {
        MailKind::Recovery => match &state.changed {
            Some((_, words)) => format!(
                "Recovered because the rule was edited ({words}), not because the data changed."
            ),
            None => format!(
                "{} is OK again: {}.",
                rule.name,
                recovery_reason(rule, state, now)
            ),
        },
        MailKind::Error | MailKind::ErrorReminder(_) => format!(
            "The rule cannot be evaluated, so it sees nothing: {}",
            state.message
        ),
        MailKind::ErrorRecovery => "The rule evaluates again.".to_string(),
        MailKind::Ack => match state.incident.as_ref().and_then(|i| i.acked.as_ref()) {
            Some(a) => format!(
                "{} acknowledged this incident at {}{}: reminders and escalation stop until it changes level or recovers.",
                a.by,
                format::utc(a.at),
                if a.comment.is_empty() { String::new() } else { format!(" (\"{}\")", a.comment) }
            ),
            None => "Acknowledged.".to_string(),
        },
        _ => {
            let failing = state.failing(rule);
            let crit = failing.iter().filter(|f| f.1.state == State::Crit).count();
            let warn = failing.iter().filter(|f| f.1.state == State::Warn).count();
            let nodata = failing
                .iter()
                .filter(|f| f.1.state == State::NoData)
                .count();
            let mut parts = Vec::new();
            if crit > 0 {
                parts.push(format!("{crit} CRIT"));
            }
            if warn > 0 {
                parts.push(format!("{warn} WARN"));
            }
            if nodata > 0 {
                parts.push(format!("{nodata} NO DATA"));
            }
            match failing.first() {
                Some((n, s)) if failing.len() == 1 => {
                    format!("{}.", sentence(rule, n, s, now))
                }
                Some((n, s)) => format!(
                    "{} of {} series failing ({}); the worst: {}.",
                    failing.len(),
                    state.series.len(),
                    parts.join(", "),
                    sentence(rule, n, s, now)
                ),
                None => format!("{} is failing.", rule.name),
            }
        }
    }
}

/// One series' failure as a sentence: `web1 is 97.2, above crit 95 by 2.2 (2.3%)`.
fn sentence(rule: &Rule, name: &str, s: &SeriesState, now: i64) -> String {
    let short = if name.is_empty() {
        rule.target_text()
    } else {
        name.to_string()
    };
    match s.state {
        State::NoData => match s.last_seen {
            Some(t) => format!(
                "{short} has sent no data for {} (last point {})",
                format::duration(now - t),
                format::utc(t)
            ),
            None if name.is_empty() => format!("{short} matches no series"),
            None => format!("{short} has no data"),
        },
        _ => {
            let (Some(level), Some(v)) = (s.level, s.value) else {
                return format!("{short} is {}", s.state.label());
            };
            if !s.detail.is_empty() {
                return format!("{short}: {} ({})", s.detail, rule.level_text(level));
            }
            match (rule.direction(), rule.level_value(level)) {
                (Some(d), Some(l)) => {
                    let (by, pct) = format::excess(v, l);
                    let pct = pct.map(|p| format!(" ({p})")).unwrap_or_default();
                    format!(
                        "{short} is {}, {} {} {} by {by}{pct}",
                        format::value(v),
                        d.as_str(),
                        level.as_str(),
                        format::value(l)
                    )
                }
                _ => format!("{short} is {}", format::value(v)),
            }
        }
    }
}

/// How far series `s` of `rule` is past the level it crosses, and by what percentage of it
/// (`("2.2", Some("2.3%"))`); nothing without a value, a numeric level, or for an expression.
pub fn excess_of(rule: &Rule, s: &SeriesState) -> (Option<String>, Option<String>) {
    let limit = s.level.and_then(|l| rule.level_value(l));
    match (s.value, limit, s.detail.is_empty()) {
        (Some(v), Some(l), true) => {
            let (e, p) = format::excess(v, l);
            (Some(e), p)
        }
        _ => (None, None),
    }
}

fn series_ctx(rule: &Rule, name: &str, s: &SeriesState) -> SeriesCtx {
    let (excess, percent) = excess_of(rule, s);
    SeriesCtx {
        series: if name.is_empty() {
            rule.target_text()
        } else {
            name.to_string()
        },
        short: short_name(series_target(rule), name),
        state: s.state.as_str(),
        label: s.state.label(),
        value: s.value.map(format::value),
        level: s.level.map(|l| rule.level_text(l)),
        excess,
        percent,
        since_utc: format::utc(s.since),
        last_seen_utc: s.last_seen.map(format::utc),
        detail: s.detail.clone(),
    }
}

fn incident_of(state: &RuleState, kind: MailKind) -> Option<&Incident> {
    if kind.is_admin() {
        state.error_incident.as_ref()
    } else {
        state.incident.as_ref()
    }
}

/// Fills the template variables and renders both bodies. `now` is the send time (epoch
/// seconds); `graphs` are the short and long PNGs (either may be missing). The state is the
/// one the check produced, before [`super::state::delivered`].
pub fn compose(
    rule: &Rule,
    state: &RuleState,
    kind: MailKind,
    now: i64,
    settings: &MailSettings,
    templates: &Templates,
    graphs: Vec<Image>,
) -> Result<Composed, MailError> {
    let tz = settings.tz;
    let show_local = tz != Tz::UTC;
    let incident = incident_of(state, kind);
    let started = incident.map(|e| e.started).unwrap_or(state.since);
    let next_reminder = match (kind, incident) {
        (MailKind::Fire | MailKind::Change | MailKind::Reminder(_), Some(inc)) => {
            let next = rule
                .reminders_due(now - inc.started)
                .max(inc.reminders_sent + u32::from(matches!(kind, MailKind::Reminder(_))));
            rule.reminder_offset(next).map(|o| {
                let at = inc.started + o;
                format!(
                    "{} from now ({}), if nothing changes",
                    format::duration(at - now),
                    format::utc(at)
                )
            })
        }
        _ => None,
    };
    let subject = subject(rule, state, kind, now);
    let failing_all = state.failing(rule);
    let failing: Vec<SeriesCtx> = failing_all
        .iter()
        .take(MAX_LISTED)
        .map(|(n, s)| series_ctx(rule, n, s))
        .collect();
    let cid_short = graphs.first().map(|g| g.cid.as_str());
    let cid_long = graphs.get(1).map(|g| g.cid.as_str());
    let dir = rule.direction();
    let ctx = MailCtx {
        kind: kind.as_str(),
        label: label(rule, state, kind),
        state: match kind {
            MailKind::Recovery | MailKind::ErrorRecovery => "ok",
            MailKind::Error | MailKind::ErrorReminder(_) => "error",
            _ => failing_all
                .first()
                .map(|f| f.1.state.as_str())
                .unwrap_or("crit"),
        },
        subject: subject.clone(),
        reminder: match kind {
            MailKind::Reminder(n) | MailKind::ErrorReminder(n) => Some(n),
            _ => None,
        },
        rule: RuleCtx {
            name: &rule.name,
            slug: &rule.slug,
            target: rule.target_text(),
            warn: rule
                .level_value(Level::Warn)
                .map(format::value)
                .or_else(|| has_condition(rule, Level::Warn).then(|| rule.level_text(Level::Warn))),
            crit: rule
                .level_value(Level::Crit)
                .map(format::value)
                .or_else(|| has_condition(rule, Level::Crit).then(|| rule.level_text(Level::Crit))),
            direction: dir.map(Direction::as_str),
            opposite: dir.map(|d| d.opposite().as_str()),
            rule_type: rule.rule_type.as_str(),
            reduce: rule.reduce.to_string(),
            window: format::duration(rule.window),
            for_: (rule.for_secs > 0).then(|| format::duration(rule.for_secs)),
            runbook: rule.runbook.as_deref(),
            recipients: settings.recipients(rule, kind),
            source: &rule.source,
            labels: rule
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        rule_url: rule_url(&settings.base_url, rule),
        headline: headline(rule, state, kind, now),
        failing_total: failing_all.len(),
        failing_more: failing_all.len().saturating_sub(failing.len()),
        failing,
        series_total: state.series.len(),
        since_utc: format::utc(started),
        since_local: show_local.then(|| format::local(started, tz)),
        failing_for: format::duration(now - started),
        now_utc: format::utc(now),
        now_local: show_local.then(|| format::local(now, tz)),
        tz: tz.name().to_string(),
        next_reminder,
        change: state.changed.as_ref().map(|c| c.1.clone()),
        message: &state.message,
        ack_url: settings.ack_url.as_deref(),
        cid_short,
        cid_long,
        graph_width: GRAPH_CSS_WIDTH,
        graph_height: GRAPH_CSS_HEIGHT,
    };
    let text = templates.render("alert.txt", &ctx)?;
    let html = templates.render("alert.html", &ctx)?;
    let thread = incident.map(|i| i.thread.clone());
    let first = matches!(kind, MailKind::Fire | MailKind::Error);
    let message_id = match (&thread, first) {
        (Some(t), true) => t.clone(),
        _ => format!("{}.{}.{}@carbonhound", kind.as_str(), rule.slug, now),
    };
    Ok(Composed {
        subject,
        to: settings.recipients(rule, kind),
        text,
        html,
        images: graphs,
        message_id,
        in_reply_to: if first { None } else { thread },
    })
}

fn has_condition(rule: &Rule, level: Level) -> bool {
    match &rule.check {
        super::rule::Check::Expression { warn, crit, .. } => match level {
            Level::Warn => warn.is_some(),
            Level::Crit => crit.is_some(),
        },
        _ => false,
    }
}

/// A constant line over `[start, end]`, for the levels.
fn level_line(name: String, value: f64, start: i64, end: i64, color: &str) -> Series {
    let step = ((end - start) / 2).max(1);
    let mut line = Series::new(name, start, end, step, vec![Some(value); 3], 0.0);
    line.hints.color = Some(color.into());
    line.hints.dashed = Some(6.0);
    line.hints.line_width = Some(2.0);
    line
}

/// The graph of a mail over `[start, end]`: `series` on white, failing series in strong
/// colours over the others in grey (at most [`MAX_GRAPHED`], failing ones first), the warn
/// (amber) and crit (red) levels dashed, the span since the incident began shaded, and its
/// start marked by a vertical line. Drawn at 2× [`GRAPH_CSS_WIDTH`] × [`GRAPH_CSS_HEIGHT`]
/// with type large enough to read at that size.
pub fn graph(
    rule: &Rule,
    state: &RuleState,
    series: Vec<Series>,
    start: i64,
    end: i64,
    tz: Tz,
) -> Result<Vec<u8>, MailError> {
    let is_failing = |s: &Series| {
        state
            .series
            .get(&s.name)
            .is_some_and(|x| x.state.is_failing())
    };
    let (failing, others): (Vec<Series>, Vec<Series>) =
        series.into_iter().partition(|s| is_failing(s));
    let mut drawn: Vec<Series> = Vec::new();
    let width = GRAPH_CSS_WIDTH * 2;
    let height = GRAPH_CSS_HEIGHT * 2;
    // The incident's span, shaded: one vertical line per pixel column from its start.
    let incident_start = state.incident.as_ref().map(|i| i.started);
    if let Some(t0) = incident_start.filter(|t| *t < end) {
        let from = t0.max(start);
        let step = ((end - start) / i64::from(width)).max(1);
        let n = ((end - from) / step).max(1) as usize;
        let mut shade = Series::new(
            "failing",
            from,
            from + step * n as i64,
            step,
            vec![Some(1.0); n],
            0.0,
        );
        shade.hints.draw_as_infinite = true;
        shade.hints.color = Some("#ffcdd2".into());
        shade.hints.line_width = Some(1.0);
        drawn.push(shade);
        if t0 >= start {
            let mut mark = Series::new(
                format!("incident start {}", format::local(t0, tz)),
                t0,
                t0 + step,
                step,
                vec![Some(1.0)],
                0.0,
            );
            mark.hints.draw_as_infinite = true;
            mark.hints.color = Some("#b71c1c".into());
            mark.hints.line_width = Some(3.0);
            drawn.push(mark);
        }
    }
    let room_for_others = MAX_GRAPHED.saturating_sub(failing.len().min(MAX_GRAPHED));
    let muted = !failing.is_empty();
    for mut s in others.into_iter().take(room_for_others) {
        if muted {
            s.hints.color = Some("#9aa7b4".into());
            s.hints.line_width = Some(2.0);
        }
        drawn.push(s);
    }
    let strong = [
        "#1f5fa8", "#e07b00", "#8e44ad", "#2e8b57", "#8b5a2b", "#00838f", "#c2185b", "#546e7a",
    ];
    for (i, mut s) in failing.into_iter().take(MAX_GRAPHED).enumerate() {
        s.hints.color = Some(strong[i % strong.len()].into());
        s.hints.line_width = Some(4.0);
        drawn.push(s);
    }
    for (level, color) in [(Level::Warn, "#ff8f00"), (Level::Crit, "#d50000")] {
        if let Some(v) = rule.level_value(level) {
            let name = format!("{} {}", level.as_str(), format::value(v));
            drawn.push(level_line(name, v, start, end, color));
        }
    }
    let params = GraphParams {
        width,
        height,
        bgcolor: parse_color("white").expect("a color"),
        fgcolor: parse_color("#333333").expect("a color"),
        major_grid_color: parse_color("#dddddd").expect("a color"),
        minor_grid_color: parse_color("#f0f0f0").expect("a color"),
        color_list: strong.iter().filter_map(|c| parse_color(c)).collect(),
        line_width: 3.0,
        font_size: 20.0,
        hide_legend: Some(false),
        ..GraphParams::default()
    };
    Ok(render_png(&drawn, &params, tz)?)
}

/// Builds the MIME message: multipart/alternative of text/plain and multipart/related
/// (text/html + the inline images named by Content-ID), with its Message-ID and, for a
/// reply within an incident, In-Reply-To and References. `now` dates it.
pub fn to_message(c: &Composed, from: &str, now: i64) -> Result<Message, MailError> {
    let from: Mailbox = from.parse().map_err(|source| MailError::Sender {
        value: from.to_string(),
        source,
    })?;
    let mut b = Message::builder().from(from).subject(c.subject.clone());
    if c.to.is_empty() {
        return Err(MailError::NoRecipients);
    }
    for to in &c.to {
        let mb: Mailbox = to.parse().map_err(|source| MailError::Recipient {
            value: to.clone(),
            source,
        })?;
        b = b.to(mb);
    }
    if let Some(t) = &c.in_reply_to {
        b = b.in_reply_to(format!("<{t}>")).references(format!("<{t}>"));
    }
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64);
    let png_type = ContentType::parse("image/png")?;
    let mut related = MultiPart::related().singlepart(SinglePart::html(c.html.clone()));
    for img in &c.images {
        related = related.singlepart(
            Attachment::new_inline_with_name(img.cid.clone(), img.name.clone())
                .body(img.png.clone(), png_type.clone()),
        );
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(c.text.clone()))
        .multipart(related);
    b.date(date)
        .message_id(Some(format!("<{}>", c.message_id)))
        .multipart(body)
        .map_err(MailError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::check::{Outcome, Reading};
    use crate::alert::rule::tests::parse;
    use crate::alert::state::{delivered, step};

    fn settings() -> MailSettings {
        MailSettings {
            from: "carbonhound@example.com".into(),
            default_to: vec!["oncall@example.com".into()],
            admin: vec!["admin@example.com".into()],
            base_url: "http://graphs.example.com/".into(),
            tz: "Europe/Berlin".parse().unwrap(),
            ack_url: None,
        }
    }

    fn readings(rule: &Rule, v: &[(&str, Option<f64>)], at: i64) -> Outcome {
        let d = rule.direction().unwrap();
        Outcome::Checked(
            v.iter()
                .map(|(h, x)| Reading {
                    series: format!("collectd.{h}.df-root.percent_bytes-used"),
                    value: *x,
                    level: x.and_then(|x| {
                        if d.crossed(x, rule.level_value(Level::Crit).unwrap()) {
                            Some(Level::Crit)
                        } else if d.crossed(x, rule.level_value(Level::Warn).unwrap()) {
                            Some(Level::Warn)
                        } else {
                            None
                        }
                    }),
                    last_seen: Some(at - 1200),
                    detail: String::new(),
                })
                .collect(),
        )
    }

    const RULE: &str = "[[alert]]\nname = \"Root fs filling\"\ntarget = \"collectd.*.df-root.percent_bytes-used\"\ndirection = \"above\"\nwarn = 85\ncrit = 95\n";

    #[test]
    fn subjects_name_the_worst_series_and_its_level() {
        let r = parse(RULE).unwrap().remove(0);
        let t = 1_700_000_000;
        let o = readings(
            &r,
            &[
                ("web1", Some(97.2)),
                ("web2", Some(10.0)),
                ("db1", Some(90.0)),
                ("db2", None),
            ],
            t,
        );
        let (st, kinds) = step(&r, None, o, t, &|_| false);
        assert_eq!(kinds, vec![MailKind::Fire]);
        assert_eq!(
            subject(&r, &st, MailKind::Fire, t),
            "[CRIT] Root fs filling: web1 97.2 (crit 95) and 2 more"
        );
        assert_eq!(
            subject(&r, &st, MailKind::Reminder(2), t),
            "[REMINDER 2] [CRIT] Root fs filling: web1 97.2 (crit 95) and 2 more"
        );
        let one = readings(&r, &[("web3", None)], t);
        let (nd, _) = step(&r, None, one, t, &|_| false);
        assert_eq!(
            subject(&r, &nd, MailKind::Fire, t),
            "[NO DATA] Root fs filling: web3 (no data for 20 min)"
        );
        let mut notice = r.clone();
        notice.rule_type = RuleType::Notice;
        let warn = readings(&r, &[("web1", Some(90.0))], t);
        let (w, _) = step(&notice, None, warn, t, &|_| false);
        assert_eq!(
            subject(&notice, &w, MailKind::Fire, t),
            "[NOTICE] Root fs filling: web1 90 (warn 85)"
        );
        let mut e = st.clone();
        e.message = "divideSeries second argument must reference exactly 1 series".into();
        assert_eq!(
            subject(&r, &e, MailKind::Error, t),
            "[ERROR] Root fs filling: divideSeries second argument must reference exactly 1 series"
        );
        assert_eq!(short_name("a.*.c.{x,y}", "a.b.c.x"), "b.x");
        assert_eq!(
            short_name("sumSeries(a.*)", "sumSeries(a.*)"),
            "sumSeries(a.*)"
        );
    }

    #[test]
    fn every_mail_of_an_incident_is_one_thread() {
        let r = parse(RULE).unwrap().remove(0);
        let dir = tempfile::tempdir().unwrap();
        let templates = Templates::new(dir.path());
        let t = 1_700_000_000;
        let (mut st, _) = step(
            &r,
            None,
            readings(&r, &[("web1", Some(97.2))], t),
            t,
            &|_| false,
        );
        let first = compose(&r, &st, MailKind::Fire, t, &settings(), &templates, vec![]).unwrap();
        assert_eq!(first.in_reply_to, None);
        assert_eq!(first.to, vec!["oncall@example.com"]);
        assert!(
            first.text.contains("web1") && first.text.contains("97.2"),
            "{}",
            first.text
        );
        assert!(
            first.text.contains("2.2 past crit 95"),
            "every failing series with how far past: {}",
            first.text
        );
        assert!(
            first.text.contains("CET"),
            "the configured zone: {}",
            first.text
        );
        assert!(first
            .text
            .contains("http://graphs.example.com/alerts/root-fs-filling"));
        delivered(&r, &mut st, MailKind::Fire, t);
        let (st2, kinds) = step(
            &r,
            Some(&st),
            readings(&r, &[("web1", Some(10.0))], t + 60),
            t + 60,
            &|_| false,
        );
        assert_eq!(kinds, vec![MailKind::Recovery]);
        let rec = compose(
            &r,
            &st2,
            MailKind::Recovery,
            t + 60,
            &settings(),
            &templates,
            vec![],
        )
        .unwrap();
        assert_eq!(
            rec.subject,
            "[RECOVERED] Root fs filling: web1 back below 95: 10"
        );
        assert_eq!(rec.in_reply_to.as_deref(), Some(first.message_id.as_str()));
        let eml = String::from_utf8(
            to_message(&rec, "carbonhound@example.com", t + 60)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(
            eml.contains(&format!("In-Reply-To: <{}>", first.message_id)),
            "{eml}"
        );
        assert!(
            eml.contains(&format!("References: <{}>", first.message_id)),
            "{eml}"
        );
        let err = compose(
            &r,
            &st2,
            MailKind::Error,
            t,
            &settings(),
            &templates,
            vec![],
        )
        .unwrap();
        assert_eq!(
            err.to,
            vec!["admin@example.com"],
            "errors go to admin_email"
        );
    }

    #[test]
    fn the_graph_is_drawn_at_twice_a_phones_width_with_the_levels() {
        let r = parse(RULE).unwrap().remove(0);
        let t = 1_700_000_000;
        let (mut st, _) = step(
            &r,
            None,
            readings(&r, &[("web1", Some(97.2))], t),
            t,
            &|_| false,
        );
        st.incident.as_mut().unwrap().started = t - 1800;
        let s = Series::new(
            "collectd.web1.df-root.percent_bytes-used",
            t - 3600,
            t,
            60,
            (0..60).map(|i| Some(80.0 + i as f64 / 3.0)).collect(),
            0.0,
        );
        let png = graph(&r, &st, vec![s], t - 3600, t, Tz::UTC).unwrap();
        let mut reader = png::Decoder::new(&png[..]).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width, info.height),
            (GRAPH_CSS_WIDTH * 2, GRAPH_CSS_HEIGHT * 2)
        );
        let ch = info.color_type.samples();
        let count = |rgb: (u8, u8, u8)| {
            buf[..info.buffer_size()]
                .chunks(ch)
                .filter(|p| {
                    p[0].abs_diff(rgb.0) < 8 && p[1].abs_diff(rgb.1) < 8 && p[2].abs_diff(rgb.2) < 8
                })
                .count()
        };
        assert!(count((0xd5, 0, 0)) > 200, "the crit line");
        assert!(count((0xff, 0x8f, 0)) > 200, "the warn line");
        assert!(
            count((0xff, 0xcd, 0xd2)) > 10_000,
            "the failing span shaded"
        );
        assert!(
            count((0xb7, 0x1c, 0x1c)) > 100,
            "the incident's start marked"
        );
    }
}
