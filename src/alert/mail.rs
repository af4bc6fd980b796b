//! Composing alert mail: subject (`[ALERT] name`, `[NOTICE] name`, `[RECOVERED] name`), a
//! text/plain body and an HTML body from the templates, and a PNG of the target over the
//! last 24 hours with the threshold drawn as a red dashed line, built into one
//! multipart/alternative message (text/plain | multipart/related(text/html, image/png
//! inline by Content-ID)).
//!
//! Written for the person on call at 3 a.m.: what crossed what, by how much, since when,
//! and where to look next. Composes only; sending is [`super::smtp`].

use chrono_tz::Tz;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde::Serialize;

use super::backoff;
use super::format;
use super::rule::{Direction, Rule, RuleType};
use super::state::{MailKind, RuleState, Status};
use super::templates::{TemplateError, Templates};
use crate::graph::parse_color;
use crate::graph::{render_png, GraphError, GraphParams};
use crate::query::Series;

/// Why a mail could not be composed. It is then not sent; the scheduler logs it and records
/// it as the rule's mail error, so the text names the setting or recipient to fix.
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

/// Most series drawn in the mail's graph (failing ones first).
pub const MAX_GRAPHED: usize = 8;
/// Span of the mail's graph, in seconds.
pub const GRAPH_SPAN: i64 = 86_400;

/// What mail needs beyond the rule and its state.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Sender (`[alerting].email_from`).
    pub from: String,
    /// Recipients of rules that name none (`[alerting].email_to`).
    pub default_to: Vec<String>,
    /// Base URL of the status pages (`[alerting].base_url`), no trailing slash needed.
    pub base_url: String,
    /// Zone shown next to UTC (`[query].timezone`).
    pub tz: Tz,
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
    /// text/html body; its `<img src="cid:…">` names [`Composed::cid`].
    pub html: String,
    /// The graph.
    pub png: Vec<u8>,
    /// Content-ID of the graph (without angle brackets).
    pub cid: String,
}

#[derive(Serialize)]
struct RuleCtx<'a> {
    name: &'a str,
    slug: &'a str,
    target: &'a str,
    threshold: String,
    direction: &'static str,
    opposite: &'static str,
    #[serde(rename = "type")]
    rule_type: &'static str,
    runbook: Option<&'a str>,
    recipients: Vec<String>,
    source: &'a str,
}

#[derive(Serialize)]
struct SeriesCtx {
    series: String,
    value: String,
    excess: String,
    percent: Option<String>,
    at_utc: String,
}

/// The variables every alert template sees (`alert.txt`, `alert.html`).
#[derive(Serialize)]
struct MailCtx<'a> {
    /// `alert`, `reminder` or `recovery`.
    kind: &'static str,
    /// `ALERT`, `NOTICE` or `RECOVERED`.
    label: &'static str,
    subject: String,
    reminder: Option<u32>,
    rule: RuleCtx<'a>,
    rule_url: String,
    status: &'static str,
    headline: String,
    value: Option<String>,
    failing: Vec<SeriesCtx>,
    failing_total: usize,
    failing_more: usize,
    series_checked: usize,
    series_total: usize,
    since_utc: String,
    since_local: Option<String>,
    failing_for: String,
    now_utc: String,
    now_local: Option<String>,
    tz: String,
    next_reminder: Option<String>,
    message: &'a str,
    cid: &'a str,
}

fn label(rule: &Rule, kind: MailKind) -> &'static str {
    match (kind, rule.rule_type) {
        (MailKind::Recovery, _) => "RECOVERED",
        (_, RuleType::Alert) => "ALERT",
        (_, RuleType::Notice) => "NOTICE",
    }
}

/// The subject of `kind` for `rule`: `[ALERT] name`, `[NOTICE] name` or `[RECOVERED] name`
/// (Hound's subjects; reminders repeat the alert's subject).
pub fn subject(rule: &Rule, kind: MailKind) -> String {
    format!("[{}] {}", label(rule, kind), rule.name)
}

fn opposite(d: Direction) -> Direction {
    match d {
        Direction::Above => Direction::Below,
        Direction::Below => Direction::Above,
    }
}

/// The URL of `rule`'s status page under `base_url`.
pub fn rule_url(base_url: &str, rule: &Rule) -> String {
    format!("{}/alerts/{}", base_url.trim_end_matches('/'), rule.slug)
}

fn headline(rule: &Rule, state: &RuleState, kind: MailKind) -> String {
    let th = format::value(rule.threshold);
    let dir = rule.direction.as_str();
    if kind == MailKind::Recovery {
        return match state.value {
            Some(v) => format!(
                "{} is back {} {}: now {}.",
                rule.target,
                opposite(rule.direction).as_str(),
                th,
                format::value(v)
            ),
            None => format!(
                "{} is back {} {}.",
                rule.target,
                opposite(rule.direction).as_str(),
                th
            ),
        };
    }
    match (state.failing.first(), state.failing_total) {
        (Some(r), 1) => {
            let (by, pct) = format::excess(r.value, rule.threshold);
            let pct = pct.map(|p| format!(" ({p})")).unwrap_or_default();
            format!(
                "{} is {}, {} the threshold of {} by {}{}.",
                r.series,
                format::value(r.value),
                dir,
                th,
                by,
                pct
            )
        }
        (Some(r), n) => {
            let (by, pct) = format::excess(r.value, rule.threshold);
            let pct = pct.map(|p| format!(" ({p})")).unwrap_or_default();
            format!(
                "{n} series are {dir} the threshold of {th}; the worst, {}, is {}: {by} {dir}{pct}.",
                r.series,
                format::value(r.value)
            )
        }
        (None, _) => match state.status {
            Status::NoData => format!("{} has no data right now ({}).", rule.target, state.message),
            Status::Error => format!("{} could not be evaluated: {}", rule.target, state.message),
            _ => format!("{} is not {} {} right now.", rule.target, dir, th),
        },
    }
}

/// Fills the template variables and renders both bodies. `now` is the send time (epoch
/// seconds). The state is the one the check produced, before [`super::state::delivered`].
pub fn compose(
    rule: &Rule,
    state: &RuleState,
    kind: MailKind,
    now: i64,
    settings: &MailSettings,
    templates: &Templates,
    png: Vec<u8>,
) -> Result<Composed, MailError> {
    let tz = settings.tz;
    let show_local = tz != Tz::UTC;
    let started = state
        .episode
        .as_ref()
        .map(|e| e.started)
        .unwrap_or(state.since);
    let cid = format!("graph-{}-{}@carbonhound", rule.slug, now);
    let next_reminder = match (kind, &state.episode) {
        (MailKind::Recovery, _) | (_, None) => None,
        (_, Some(ep)) => {
            let next = backoff::slots_due(now - ep.started)
                .max(ep.reminders_sent + u32::from(kind != MailKind::Alert));
            let at = ep.started + backoff::offset(next);
            Some(format!(
                "{} from now ({}), if it is still failing",
                format::duration(at - now),
                format::utc(at)
            ))
        }
    };
    let subject = subject(rule, kind);
    let ctx = MailCtx {
        kind: match kind {
            MailKind::Alert => "alert",
            MailKind::Reminder(_) => "reminder",
            MailKind::Recovery => "recovery",
        },
        label: label(rule, kind),
        subject: subject.clone(),
        reminder: match kind {
            MailKind::Reminder(n) => Some(n),
            _ => None,
        },
        rule: RuleCtx {
            name: &rule.name,
            slug: &rule.slug,
            target: &rule.target,
            threshold: format::value(rule.threshold),
            direction: rule.direction.as_str(),
            opposite: opposite(rule.direction).as_str(),
            rule_type: rule.rule_type.as_str(),
            runbook: rule.runbook.as_deref(),
            recipients: rule.recipients(&settings.default_to).to_vec(),
            source: &rule.source,
        },
        rule_url: rule_url(&settings.base_url, rule),
        status: state.status.as_str(),
        headline: headline(rule, state, kind),
        value: state.value.map(format::value),
        failing: state
            .failing
            .iter()
            .map(|r| {
                let (excess, percent) = format::excess(r.value, rule.threshold);
                SeriesCtx {
                    series: r.series.clone(),
                    value: format::value(r.value),
                    excess,
                    percent,
                    at_utc: format::utc(r.at),
                }
            })
            .collect(),
        failing_total: state.failing_total,
        failing_more: state.failing_total.saturating_sub(state.failing.len()),
        series_checked: state.series_checked,
        series_total: state.series_total,
        since_utc: format::utc(started),
        since_local: show_local.then(|| format::local(started, tz)),
        failing_for: format::duration(now - started),
        now_utc: format::utc(now),
        now_local: show_local.then(|| format::local(now, tz)),
        tz: tz.name().to_string(),
        next_reminder,
        message: &state.message,
        cid: &cid,
    };
    Ok(Composed {
        subject,
        to: rule.recipients(&settings.default_to).to_vec(),
        text: templates.render("alert.txt", &ctx)?,
        html: templates.render("alert.html", &ctx)?,
        png,
        cid,
    })
}

/// The graph of a mail: `series` (the target over the last 24 h) on white, failing series in
/// strong colours over the others in grey (at most [`MAX_GRAPHED`], failing ones first), and
/// the threshold as a red dashed line.
pub fn graph(
    rule: &Rule,
    state: &RuleState,
    series: Vec<Series>,
    start: i64,
    end: i64,
    tz: Tz,
) -> Result<Vec<u8>, MailError> {
    // Failing series in strong colours on top; the others muted grey behind them.
    let is_failing = |s: &Series| state.failing.iter().any(|r| r.series == s.name);
    let (failing, others): (Vec<Series>, Vec<Series>) =
        series.into_iter().partition(|s| is_failing(s));
    let mut drawn: Vec<Series> = Vec::new();
    let room_for_others = MAX_GRAPHED.saturating_sub(failing.len().min(MAX_GRAPHED));
    let muted = !failing.is_empty();
    for mut s in others.into_iter().take(room_for_others) {
        if muted {
            s.hints.color = Some("#9aa7b4".into());
            s.hints.line_width = Some(1.0);
        }
        drawn.push(s);
    }
    let strong = [
        "#1f5fa8", "#e07b00", "#8e44ad", "#2e8b57", "#8b5a2b", "#00838f", "#c2185b", "#546e7a",
    ];
    for (i, mut s) in failing.into_iter().take(MAX_GRAPHED).enumerate() {
        s.hints.color = Some(strong[i % strong.len()].into());
        s.hints.line_width = Some(2.5);
        drawn.push(s);
    }
    let step = ((end - start) / 2).max(1);
    let mut line = Series::new(
        format!(
            "threshold {} ({})",
            format::value(rule.threshold),
            rule.direction.as_str()
        ),
        start,
        end,
        step,
        vec![Some(rule.threshold); 3],
        0.0,
    );
    line.hints.color = Some("red".into());
    line.hints.dashed = Some(5.0);
    line.hints.line_width = Some(2.0);
    drawn.push(line);
    let params = GraphParams {
        width: 640,
        height: 280,
        bgcolor: parse_color("white").expect("a color"),
        fgcolor: parse_color("#333333").expect("a color"),
        major_grid_color: parse_color("#dddddd").expect("a color"),
        minor_grid_color: parse_color("#f0f0f0").expect("a color"),
        color_list: strong.iter().filter_map(|c| parse_color(c)).collect(),
        line_width: 2.0,
        font_size: 9.0,
        hide_legend: Some(false),
        ..GraphParams::default()
    };
    Ok(render_png(&drawn, &params, tz)?)
}

/// Builds the MIME message: multipart/alternative of text/plain and multipart/related
/// (text/html + the inline image/png named by Content-ID). `now` dates it.
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
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64);
    let png_type = ContentType::parse("image/png")?;
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(c.text.clone()))
        .multipart(
            MultiPart::related()
                .singlepart(SinglePart::html(c.html.clone()))
                .singlepart(
                    Attachment::new_inline_with_name(c.cid.clone(), "graph.png".into())
                        .body(c.png.clone(), png_type),
                ),
        );
    b.date(date)
        .message_id(None)
        .multipart(body)
        .map_err(MailError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::check::{Outcome, Reading};
    use crate::alert::rule::tests::rule;
    use crate::alert::state::step;

    fn settings() -> MailSettings {
        MailSettings {
            from: "carbonhound@example.com".into(),
            default_to: vec!["oncall@example.com".into()],
            base_url: "http://graphs.example.com/".into(),
            tz: "Europe/Berlin".parse().unwrap(),
        }
    }

    #[test]
    fn every_failing_series_is_listed_worst_first() {
        let mut r = rule(4.0, Direction::Above);
        r.target = "collectd.*.load.load.shortterm".into();
        let readings = [("web1", 5.0), ("web2", 1.0), ("db1", 8.0)]
            .iter()
            .map(|(h, v)| Reading {
                series: format!("collectd.{h}.load.load.shortterm"),
                value: *v,
                at: 1_700_000_000,
            })
            .collect();
        let (st, kind) = step(
            &r,
            None,
            Outcome::Checked {
                readings,
                series: 3,
            },
            1_700_000_060,
        );
        let kind = kind.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = compose(
            &r,
            &st,
            kind,
            1_700_000_060,
            &settings(),
            &Templates::new(dir.path()),
            vec![],
        )
        .unwrap();
        assert_eq!(c.subject, "[ALERT] Load high");
        assert_eq!(c.to, vec!["oncall@example.com"]);
        assert!(c.text.contains("2 series are above the threshold of 4; the worst, collectd.db1.load.load.shortterm, is 8: 4 above (100%)."), "{}", c.text);
        let db1 = c
            .text
            .find("collectd.db1.load.load.shortterm = 8")
            .expect("db1 listed");
        let web1 = c
            .text
            .find("collectd.web1.load.load.shortterm = 5")
            .expect("web1 listed");
        assert!(db1 < web1, "worst first");
        assert!(
            !c.text.contains("web2.load.load.shortterm ="),
            "a passing series is not listed"
        );
        assert!(
            c.text.contains("CET"),
            "the configured zone is shown: {}",
            c.text
        );
        assert!(c
            .text
            .contains("http://graphs.example.com/alerts/load-high"));
        assert!(c.html.contains(&format!("src=\"cid:{}\"", c.cid)));
        let eml = String::from_utf8(
            to_message(&c, "carbonhound@example.com", 1_700_000_060)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(eml.contains("Subject: [ALERT] Load high"));
        assert!(eml.contains("multipart/alternative") && eml.contains("multipart/related"));
        assert!(eml.contains(&format!("Content-ID: <{}>", c.cid)));
    }

    #[test]
    fn recovery_and_notice_subjects() {
        let mut r = rule(10.0, Direction::Below);
        assert_eq!(subject(&r, MailKind::Recovery), "[RECOVERED] Load high");
        r.rule_type = RuleType::Notice;
        assert_eq!(subject(&r, MailKind::Alert), "[NOTICE] Load high");
        assert_eq!(subject(&r, MailKind::Reminder(3)), "[NOTICE] Load high");
        let mut c = Composed {
            subject: "s".into(),
            to: vec![],
            text: String::new(),
            html: String::new(),
            png: vec![],
            cid: "x".into(),
        };
        assert!(to_message(&c, "a@b.c", 0)
            .unwrap_err()
            .to_string()
            .contains("no recipients"));
        c.to = vec!["not an address".into()];
        assert!(to_message(&c, "a@b.c", 0).is_err());
    }
}
