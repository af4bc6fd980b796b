//! Alert status pages:
//! - `/`, the board: one small square per rule, worst first, coloured by state (WARN amber,
//!   CRIT red, NODATA grey, ERROR purple, OK green, PENDING a light square outlined in the
//!   colour of the level it waits on, not yet checked light grey); a notice is a circle where
//!   an alert is a square. Name, state and value on hover, a click opens the rule. Query
//!   parameters (also set by the page's form, so it works without script): `group=<label>`
//!   (a heading per value of that label, "(none)" for rules without it), `q=` (name or target
//!   contains, any case), `state=crit,warn` (only those states; `state` may repeat). Counts per
//!   state on top; below, how many rules were WARN/CRIT/NODATA/ERROR over 24 h and 7 d as
//!   inline SVG from the board's samples. Refreshes itself, keeping its query string.
//! - `/alerts/<slug>`: the rule's state, facts, every series (worst first), a 24 h state
//!   timeline drawn from its history, the history itself, and 1 h / 24 h / 7 d graphs served
//!   by our own `/render` with the levels drawn.
//! - `/alerts.json` and `/api/alerts`: every rule's state, for scripts.
//!
//! Reads the board the alert scheduler publishes, and the silences (the rule page lists
//! those in force); never writes the state database, never touches the store. Silences are
//! added and expired by `silences`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono_tz::Tz;
use serde::Serialize;

use super::respond;
use super::state_chart;
use crate::alert::State as AlertState;
use crate::alert::Templates;
use crate::alert::{format, short_name, Check, Level, Rule, RuleState, SeriesState};
use crate::alert::{Board, RuleView, SilencedBy, Silences};
use crate::config::Settings;
use crate::store::unix_now;

/// What the status pages need.
#[derive(Clone)]
pub struct StatusState {
    /// The alert scheduler's board.
    pub board: Arc<Board>,
    /// Page templates (`status.html`, `rule.html`, `page.html`).
    pub templates: Templates,
    /// Zone shown next to UTC.
    pub tz: Tz,
    /// `[alerting].interval`: pages refresh about this often (10 s to 5 min).
    pub interval: Duration,
    /// `[alerting].rules_dir`, shown in the footer.
    pub rules_dir: String,
    /// `[alerting].email_to`: recipients of rules that name none.
    pub default_to: Vec<String>,
    /// The silences, listed on the rule page; `None` where alerting has no database.
    pub silences: Option<Silences>,
    /// Where the rule pages' graphs are drawn: `""` (this server's `/render`), or in remote
    /// mode the remote Graphite's base URL (without credentials), whose `/render` has the data.
    pub graphs_from: String,
}

impl StatusState {
    /// From the server's settings and the running alerting's board.
    pub fn new(settings: &Settings, board: Arc<Board>) -> StatusState {
        StatusState {
            board,
            templates: Templates::new(&settings.alerting.templates_dir),
            tz: settings.query.timezone,
            interval: settings.alerting.interval,
            rules_dir: settings.alerting.rules_dir.display().to_string(),
            default_to: settings.alerting.email_to.clone(),
            silences: None,
            graphs_from: settings
                .alerting
                .graphite_url
                .as_ref()
                .map(|u| u.public())
                .unwrap_or_default(),
        }
    }

    /// The same state listing `silences` on the rule pages.
    pub fn with_silences(self, silences: Silences) -> StatusState {
        StatusState {
            silences: Some(silences),
            ..self
        }
    }

    fn refresh_secs(&self) -> u64 {
        self.interval.as_secs().clamp(10, 300)
    }
}

/// The routes `/`, `/alerts`, `/alerts/{slug}` and `/alerts.json`.
pub fn router(state: StatusState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/alerts", get(index))
        .route("/alerts/", get(index))
        .route("/alerts.json", get(alerts_json))
        .route("/api/alerts", get(alerts_json))
        .route("/api/outbox", get(outbox_json))
        .route("/alerts/{slug}", get(rule_page))
        .with_state(state)
}

#[derive(Serialize)]
struct SeriesRow {
    series: String,
    short: String,
    state: &'static str,
    label: &'static str,
    value: Option<String>,
    level: Option<String>,
    excess: Option<String>,
    percent: Option<String>,
    since_utc: String,
    since_for: String,
    last_seen_utc: Option<String>,
    detail: String,
    /// Who silenced it, why and until when, while silenced.
    silenced: Option<String>,
}

/// A rule as the pages show it: formatted for people.
#[derive(Serialize)]
struct RuleRow {
    name: String,
    slug: String,
    target: String,
    levels: String,
    direction: Option<&'static str>,
    #[serde(rename = "type")]
    rule_type: &'static str,
    labels: Vec<(String, String)>,
    recipients: Vec<String>,
    runbook: Option<String>,
    source: String,
    /// CSS class suffix: ok, pending, warn, crit, nodata, error or unchecked.
    status: &'static str,
    status_text: &'static str,
    value: Option<String>,
    summary: String,
    since_utc: String,
    since_local: Option<String>,
    since_for: String,
    incident_since_utc: Option<String>,
    incident_since_local: Option<String>,
    /// Whether an announced incident is open (it can be acknowledged).
    incident_open: bool,
    /// Who acknowledged the open incident, when, and what they said.
    acked: Option<(String, String, String)>,
    checked_utc: String,
    message: String,
    mail_error: Option<String>,
    series_total: usize,
    /// Every series, worst first.
    series: Vec<SeriesRow>,
    failing_total: usize,
    /// Sort key: the state's rank (ERROR highest), -1 before the first check.
    rank: i32,
    /// While PENDING: the level it waits on (`warn` or `crit`), which colours its outline.
    pending_level: Option<&'static str>,
    /// `reduce`, `window`, `for` (`None` when 0) and `no_data`, as the rule file spells them.
    reduce: String,
    window: String,
    for_text: Option<String>,
    no_data: &'static str,
    /// While every failing series (or every series) is silenced: by whom, why, until when.
    silenced: Option<String>,
}

fn status_text(s: Option<AlertState>) -> (&'static str, &'static str) {
    match s {
        None => ("unchecked", "NOT CHECKED YET"),
        Some(s) => (s.as_str(), s.label()),
    }
}

fn levels_text(r: &Rule) -> String {
    let mut parts = Vec::new();
    for l in [Level::Warn, Level::Crit] {
        let has = match &r.check {
            Check::Threshold { warn, crit, .. } => match l {
                Level::Warn => warn.is_some(),
                Level::Crit => crit.is_some(),
            },
            Check::Expression { warn, crit, .. } => match l {
                Level::Warn => warn.is_some(),
                Level::Crit => crit.is_some(),
            },
        };
        if has {
            parts.push(r.level_text(l));
        }
    }
    let mut s = parts.join(", ");
    if let Some(d) = r.direction() {
        s.push_str(&format!(" ({})", d.as_str()));
    }
    s
}

/// The series of a state, worst first (failing by severity, then the others by name).
fn ordered<'a>(r: &Rule, st: &'a RuleState) -> Vec<(&'a str, &'a SeriesState)> {
    let mut v = st.failing(r);
    let mut rest: Vec<(&str, &SeriesState)> = st
        .series
        .iter()
        .filter(|(_, s)| !s.state.is_failing())
        .map(|(n, s)| (n.as_str(), s))
        .collect();
    rest.sort_by_key(|(n, s)| (std::cmp::Reverse(s.state.rank()), *n));
    v.extend(rest);
    v
}

fn series_row(r: &Rule, name: &str, s: &SeriesState, now: i64) -> SeriesRow {
    let (excess, percent) = crate::alert::excess_of(r, s);
    let target = r
        .targets()
        .first()
        .map(|t| t.1.to_string())
        .unwrap_or_default();
    SeriesRow {
        series: if name.is_empty() {
            r.target_text()
        } else {
            name.to_string()
        },
        short: short_name(&target, name),
        state: s.state.as_str(),
        label: s.state.label(),
        value: s.value.map(format::value),
        level: s.level.map(|l| r.level_text(l)),
        excess,
        percent,
        since_utc: format::utc(s.since),
        since_for: format::duration(now - s.since),
        last_seen_utc: s.last_seen.map(format::utc),
        detail: s.detail.clone(),
        silenced: s.silenced_by.as_ref().map(silenced_text),
    }
}

/// `silenced by silence 3 (ops: deploy) until 2024-06-02 04:00 UTC`.
fn silenced_text(b: &SilencedBy) -> String {
    format!(
        "silenced by {} ({}: {}) until {}",
        b.by,
        b.author,
        b.comment,
        format::utc(b.until)
    )
}

/// The rule's silence, for the board: when every failing series is silenced (or, with none
/// failing, every series), what silences the first.
fn rule_silenced(r: &Rule, st: &RuleState) -> Option<String> {
    let failing = st.failing(r);
    let all: Vec<&SeriesState> = if failing.is_empty() {
        st.series.values().collect()
    } else {
        failing.iter().map(|f| f.1).collect()
    };
    if all.is_empty() || all.iter().any(|s| s.silenced_by.is_none()) {
        return None;
    }
    all.first()
        .and_then(|s| s.silenced_by.as_ref())
        .map(silenced_text)
}

/// Most series listed per rule on its page.
const SERIES_SHOWN: usize = 500;

fn row(v: &RuleView, tz: Tz, default_to: &[String], now: i64, all_series: bool) -> RuleRow {
    let r = &v.rule;
    let st = v.state.as_ref();
    let (status, text) = status_text(st.map(|s| s.state));
    let show_local = tz != Tz::UTC;
    let levels = levels_text(r);
    let failing = st.map(|s| s.failing(r)).unwrap_or_default();
    let summary = match (st, failing.first()) {
        (Some(s), _) if s.state == AlertState::Error => s.message.clone(),
        (Some(s), Some((n, f))) => {
            let target = r
                .targets()
                .first()
                .map(|t| t.1.to_string())
                .unwrap_or_default();
            let what = match f.state {
                AlertState::NoData => format!("{} no data", short_name(&target, n)),
                _ => format!(
                    "{} {}",
                    short_name(&target, n),
                    f.value.map(format::value).unwrap_or_default()
                ),
            };
            if failing.len() > 1 {
                format!(
                    "{what} and {} more of {}",
                    failing.len() - 1,
                    s.series.len()
                )
            } else {
                what
            }
        }
        (Some(s), None) => format!("{} series · {levels}", s.series.len()),
        (None, _) => levels.clone(),
    };
    // Who is on it, for the square's tooltip and the page's header.
    let summary = match st
        .and_then(|s| s.incident.as_ref())
        .and_then(|i| i.acked.as_ref())
    {
        Some(a) => format!("{summary} · acknowledged by {}", a.by),
        None => summary,
    };
    let since = st.map(|s| s.since).unwrap_or(now);
    let incident_since = st.and_then(|s| s.incident.as_ref()).map(|e| e.started);
    let series: Vec<SeriesRow> = st
        .map(|s| {
            ordered(r, s)
                .into_iter()
                .take(if all_series { SERIES_SHOWN } else { 0 })
                .map(|(n, x)| series_row(r, n, x, now))
                .collect()
        })
        .unwrap_or_default();
    RuleRow {
        name: r.name.clone(),
        slug: r.slug.clone(),
        target: r.target_text(),
        levels,
        direction: r.direction().map(|d| d.as_str()),
        rule_type: r.rule_type.as_str(),
        labels: r
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        recipients: r.recipients(default_to).to_vec(),
        runbook: r.runbook.clone(),
        source: r.source.clone(),
        status,
        status_text: text,
        value: failing
            .first()
            .and_then(|f| f.1.value)
            .or_else(|| st.and_then(|s| s.series.values().find_map(|x| x.value)))
            .map(format::value),
        summary,
        since_utc: format::utc(since),
        since_local: show_local.then(|| format::local(since, tz)),
        since_for: format::duration(now - since),
        incident_since_utc: incident_since.map(format::utc),
        incident_since_local: incident_since
            .filter(|_| show_local)
            .map(|t| format::local(t, tz)),
        incident_open: st
            .and_then(|s| s.incident.as_ref())
            .is_some_and(|i| i.announced.is_some()),
        acked: st
            .and_then(|s| s.incident.as_ref())
            .and_then(|i| i.acked.as_ref())
            .map(|a| (a.by.clone(), format::utc(a.at), a.comment.clone())),
        checked_utc: st
            .map(|s| format::utc(s.checked_at))
            .unwrap_or_else(|| "not yet".into()),
        message: st.map(|s| s.message.clone()).unwrap_or_default(),
        mail_error: st.and_then(|s| s.mail_error.clone()),
        series_total: st.map(|s| s.series.len()).unwrap_or(0),
        series,
        failing_total: failing.len(),
        rank: st.map(|s| i32::from(s.state.rank())).unwrap_or(-1),
        pending_level: st
            .filter(|s| s.state == AlertState::Pending)
            .and_then(|s| {
                s.series
                    .values()
                    .filter(|x| x.state == AlertState::Pending)
                    .filter_map(|x| x.level)
                    .max()
            })
            .map(|l| l.as_str()),
        reduce: r.reduce.to_string(),
        window: format::duration(r.window),
        for_text: (r.for_secs > 0).then(|| format::duration(r.for_secs)),
        no_data: r.no_data.as_str(),
        silenced: st.and_then(|s| rule_silenced(r, s)),
    }
}

#[derive(Serialize)]
struct Page<T: Serialize> {
    #[serde(flatten)]
    body: T,
    refresh: u64,
    version: &'static str,
    rules_dir: String,
    interval: String,
    now_utc: String,
}

fn page<T: Serialize>(st: &StatusState, body: T) -> Page<T> {
    Page {
        body,
        refresh: st.refresh_secs(),
        version: env!("CARGO_PKG_VERSION"),
        rules_dir: st.rules_dir.clone(),
        interval: humantime::format_duration(st.interval).to_string(),
        now_utc: format::utc(unix_now()),
    }
}

fn html(st: &StatusState, name: &str, ctx: &impl Serialize) -> Response {
    match st.templates.render(name, ctx) {
        Ok(s) => respond("text/html; charset=utf-8", s),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template {name} failed: {e}\n"),
        )
            .into_response(),
    }
}

/// The board's query: `group`, `q`, `state` (comma-separated, may repeat).
#[derive(Debug, Default, PartialEq)]
struct Filter {
    group: String,
    q: String,
    states: Vec<String>,
}

impl Filter {
    fn parse(raw: Option<&str>) -> Filter {
        let mut f = Filter::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match &*k {
                "group" => f.group = v.trim().to_string(),
                "q" => f.q = v.trim().to_string(),
                "state" => f.states.extend(
                    v.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty()),
                ),
                _ => {}
            }
        }
        f.states.sort();
        f.states.dedup();
        f
    }

    fn matches(&self, r: &RuleRow) -> bool {
        let q = self.q.to_lowercase();
        (q.is_empty() || r.name.to_lowercase().contains(&q) || r.target.to_lowercase().contains(&q))
            && (self.states.is_empty() || self.states.iter().any(|s| s == r.status))
    }
}

/// Squares under one heading (one value of the chosen label; a single unnamed group when
/// the board is not grouped).
#[derive(Serialize)]
struct Group {
    /// The label's value, `(none)` for rules without the label; `None` when not grouped.
    name: Option<String>,
    counts: Counts,
    rules: Vec<RuleRow>,
}

#[derive(Serialize, Default)]
struct Counts {
    ok: usize,
    pending: usize,
    warn: usize,
    crit: usize,
    nodata: usize,
    error: usize,
    unchecked: usize,
    failing: usize,
    total: usize,
}

impl Counts {
    fn of<'a>(rules: impl IntoIterator<Item = &'a RuleRow>) -> Counts {
        let mut c = Counts::default();
        for r in rules {
            c.total += 1;
            match r.status {
                "ok" => c.ok += 1,
                "pending" => c.pending += 1,
                "warn" => c.warn += 1,
                "crit" => c.crit += 1,
                "nodata" => c.nodata += 1,
                "error" => c.error += 1,
                _ => c.unchecked += 1,
            }
        }
        c.failing = c.warn + c.crit + c.nodata + c.error;
        c
    }
}

/// A state filter button: (value of `state`, label, rules in that state, selected).
#[derive(Serialize)]
struct StateOption {
    value: &'static str,
    label: &'static str,
    count: usize,
    selected: bool,
}

/// Label shown for rules that lack the grouping label.
const NO_LABEL: &str = "(none)";

async fn index(State(st): State<StatusState>, RawQuery(raw): RawQuery) -> Response {
    let snap = st.board.snapshot();
    let now = unix_now();
    let filter = Filter::parse(raw.as_deref());
    let mut all: Vec<(RuleRow, Option<String>)> = snap
        .rules
        .iter()
        .map(|v| {
            let label = v.rule.labels.get(&filter.group).cloned();
            (row(v, st.tz, &st.default_to, now, false), label)
        })
        .collect();
    all.sort_by(|a, b| {
        b.0.rank
            .cmp(&a.0.rank)
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    let counts = Counts::of(all.iter().map(|(r, _)| r));
    let mut label_keys: Vec<String> = snap
        .rules
        .iter()
        .flat_map(|v| v.rule.labels.keys().cloned())
        .collect();
    label_keys.sort();
    label_keys.dedup();
    let states = [
        ("crit", "CRIT", counts.crit),
        ("error", "ERROR", counts.error),
        ("nodata", "NODATA", counts.nodata),
        ("warn", "WARN", counts.warn),
        ("pending", "PENDING", counts.pending),
        ("ok", "OK", counts.ok),
        ("unchecked", "not checked", counts.unchecked),
    ]
    .into_iter()
    .map(|(value, label, count)| StateOption {
        value,
        label,
        count,
        selected: filter.states.iter().any(|s| s == value),
    })
    .collect();

    let shown: Vec<(RuleRow, Option<String>)> =
        all.into_iter().filter(|(r, _)| filter.matches(r)).collect();
    let shown_total = shown.len();
    let groups = if filter.group.is_empty() {
        vec![Group {
            name: None,
            counts: Counts::of(shown.iter().map(|(r, _)| r)),
            rules: shown.into_iter().map(|(r, _)| r).collect(),
        }]
    } else {
        let mut by: std::collections::BTreeMap<(bool, String), Vec<RuleRow>> = Default::default();
        for (r, label) in shown {
            let key = match label {
                Some(l) => (false, l),
                None => (true, NO_LABEL.to_string()),
            };
            by.entry(key).or_default().push(r);
        }
        by.into_iter()
            .map(|((_, name), rules)| Group {
                name: Some(name),
                counts: Counts::of(&rules),
                rules,
            })
            .collect()
    };
    #[derive(Serialize)]
    struct Ctx {
        groups: Vec<Group>,
        counts: Counts,
        shown: usize,
        states: Vec<StateOption>,
        label_keys: Vec<String>,
        group: String,
        q: String,
        filtered: bool,
        rules_error: Option<String>,
        chart_24h: String,
        chart_7d: String,
        tz: String,
    }
    let what = |span: &str| format!("rules WARN, CRIT, NODATA and ERROR over the last {span}");
    let ctx = Ctx {
        groups,
        shown: shown_total,
        states,
        label_keys,
        filtered: !filter.q.is_empty() || !filter.states.is_empty(),
        group: filter.group,
        q: filter.q,
        rules_error: snap.rules_error.clone(),
        chart_24h: state_chart::board_chart(&snap.samples, now, 86_400, st.tz, &what("24 hours")),
        chart_7d: state_chart::board_chart(&snap.samples, now, 7 * 86_400, st.tz, &what("7 days")),
        tz: st.tz.name().to_string(),
        counts,
    };
    html(&st, "status.html", &page(&st, ctx))
}

#[derive(Serialize)]
struct HistoryRow {
    at_utc: String,
    kind: String,
    text: String,
}

/// History kinds that are changes of the rule's state (the others: `series`, `mail`,
/// `mail-error`, `edit`).
const STATE_KINDS: [&str; 6] = ["ok", "pending", "warn", "crit", "nodata", "error"];

async fn rule_page(State(st): State<StatusState>, Path(slug): Path<String>) -> Response {
    let snap = st.board.snapshot();
    let Some(v) = snap.rules.iter().find(|v| v.rule.slug == slug) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no alert rule at /alerts/{slug}\n"),
        )
            .into_response();
    };
    let now = unix_now();
    let r = row(v, st.tz, &st.default_to, now, true);
    let history: Vec<HistoryRow> = v
        .history
        .iter()
        .map(|e| HistoryRow {
            at_utc: format::utc(e.at),
            kind: e.kind.clone(),
            text: e.text.clone(),
        })
        .collect();
    // The rule's state changes, oldest first, for the timeline.
    let changes: Vec<(i64, String)> = v
        .history
        .iter()
        .rev()
        .filter(|e| STATE_KINDS.contains(&e.kind.as_str()))
        .map(|e| (e.at, e.kind.clone()))
        .collect();
    let silences: Vec<SilenceRow> = match &st.silences {
        Some(all) => {
            let all = all.clone();
            let rule = v.rule.clone();
            tokio::task::spawn_blocking(move || {
                all.list(now)
                    .into_iter()
                    .filter(|s| s.active(now) && s.covers_rule(&rule))
                    .take(SERIES_SHOWN)
                    .map(|s| SilenceRow {
                        id: s.id,
                        series: s.series.unwrap_or_else(|| "(every series)".into()),
                        labels: s
                            .labels
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        until_utc: format::utc(s.ends),
                        author: s.author,
                        comment: s.comment,
                    })
                    .collect()
            })
            .await
            .unwrap_or_default()
        }
        None => Vec::new(),
    };
    #[derive(Serialize)]
    struct SilenceRow {
        id: u64,
        series: String,
        labels: String,
        until_utc: String,
        author: String,
        comment: String,
    }
    #[derive(Serialize)]
    struct Ctx {
        r: RuleRow,
        silences: Vec<SilenceRow>,
        silences_on: bool,
        history: Vec<HistoryRow>,
        timeline: String,
        graph_1h: String,
        graph_24h: String,
        graph_7d: String,
        tz: String,
        notifications: Vec<NotificationRow>,
    }
    let name = v.rule.name.clone();
    let board = st.board.clone();
    let notifications = tokio::task::spawn_blocking(move || {
        board
            .outbox()
            .map(|ob| {
                ob.of_rule(&name, 50)
                    .into_iter()
                    .map(notification_row)
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let ctx = Ctx {
        notifications,
        timeline: state_chart::timeline(&changes, r.status, now, st.tz),
        tz: st.tz.name().to_string(),
        graph_1h: format!(
            "{}{}",
            st.graphs_from,
            crate::alert::graph_url(&v.rule, "-1h")
        ),
        graph_24h: format!(
            "{}{}",
            st.graphs_from,
            crate::alert::graph_url(&v.rule, "-24h")
        ),
        graph_7d: format!(
            "{}{}",
            st.graphs_from,
            crate::alert::graph_url(&v.rule, "-7d")
        ),
        r,
        silences_on: st.silences.is_some(),
        silences,
        history,
    };
    html(&st, "rule.html", &page(&st, ctx))
}

/// One series in `/api/alerts`.
#[derive(Serialize)]
struct JsonSeries<'a> {
    series: &'a str,
    state: &'static str,
    since: i64,
    /// The reduced value; null without data (and for non-finite values).
    value: Option<f64>,
    /// `warn` or `crit` while past a level (also while PENDING).
    level: Option<&'static str>,
    last_seen: Option<i64>,
    #[serde(skip_serializing_if = "str::is_empty")]
    detail: &'a str,
    /// `{by, id, author, comment, until}` while a silence or maintenance window covers it.
    silenced: Option<&'a SilencedBy>,
}

/// One rule in `/api/alerts`: the shape other tools read (keys are only ever added).
#[derive(Serialize)]
struct JsonRule<'a> {
    name: &'a str,
    slug: &'a str,
    url: String,
    /// The target (threshold rules) or `name = target; …` (expression rules).
    target: String,
    /// Named targets of an expression rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    targets: Vec<(&'a str, &'a str)>,
    /// Numeric levels of a threshold rule; the conditions' text of an expression rule.
    warn: Option<serde_json::Value>,
    crit: Option<serde_json::Value>,
    direction: Option<&'static str>,
    #[serde(rename = "type")]
    rule_type: &'static str,
    labels: &'a std::collections::BTreeMap<String, String>,
    runbook: Option<&'a str>,
    source: &'a str,
    /// ok, pending, warn, crit, nodata, error, or null before the first check.
    state: Option<&'static str>,
    since: Option<i64>,
    checked_at: Option<i64>,
    /// The worst failing series' value (else the first series with a value).
    value: Option<f64>,
    /// When the open incident began.
    incident_since: Option<i64>,
    /// Who acknowledged the open incident: `{"by", "at", "comment"}`, or null.
    acknowledged: Option<serde_json::Value>,
    /// Counts of series per state.
    counts: std::collections::BTreeMap<&'static str, usize>,
    /// Every series, worst first.
    series: Vec<JsonSeries<'a>>,
    message: Option<&'a str>,
    mail_error: Option<&'a str>,
}

fn json_rule<'a>(v: &'a RuleView) -> JsonRule<'a> {
    let r = &v.rule;
    let s = v.state.as_ref();
    let (warn, crit) = match &r.check {
        Check::Threshold { warn, crit, .. } => (
            warn.map(serde_json::Value::from),
            crit.map(serde_json::Value::from),
        ),
        Check::Expression { warn, crit, .. } => (
            warn.as_ref()
                .map(|c| serde_json::Value::from(c.text.clone())),
            crit.as_ref()
                .map(|c| serde_json::Value::from(c.text.clone())),
        ),
    };
    let series: Vec<JsonSeries> = s
        .map(|st| {
            ordered(r, st)
                .into_iter()
                .map(|(n, x)| JsonSeries {
                    series: n,
                    state: x.state.as_str(),
                    since: x.since,
                    value: x.value.filter(|v| v.is_finite()),
                    level: x.level.map(|l| l.as_str()),
                    last_seen: x.last_seen,
                    detail: &x.detail,
                    silenced: x.silenced_by.as_ref(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut counts = std::collections::BTreeMap::new();
    for x in &series {
        *counts.entry(x.state).or_insert(0) += 1;
    }
    JsonRule {
        name: &r.name,
        slug: &r.slug,
        url: format!("/alerts/{}", r.slug),
        target: r.target_text(),
        targets: match &r.check {
            Check::Expression { targets, .. } => targets
                .iter()
                .map(|(n, t)| (n.as_str(), t.as_str()))
                .collect(),
            _ => Vec::new(),
        },
        warn,
        crit,
        direction: r.direction().map(|d| d.as_str()),
        rule_type: r.rule_type.as_str(),
        labels: &r.labels,
        runbook: r.runbook.as_deref(),
        source: &r.source,
        state: s.map(|s| s.state.as_str()),
        since: s.map(|s| s.since),
        checked_at: s.map(|s| s.checked_at),
        value: series
            .iter()
            .find(|x| x.value.is_some())
            .and_then(|x| x.value),
        incident_since: s.and_then(|s| s.incident.as_ref()).map(|e| e.started),
        acknowledged: s
            .and_then(|s| s.incident.as_ref())
            .and_then(|i| i.acked.as_ref())
            .map(|a| serde_json::json!({"by": a.by, "at": a.at, "comment": a.comment})),
        counts,
        series,
        message: s.map(|s| s.message.as_str()).filter(|m| !m.is_empty()),
        mail_error: s.and_then(|s| s.mail_error.as_deref()),
    }
}

/// `/api/alerts` and `/alerts.json`: every rule and series with state, value, since and
/// labels, plus the board's samples (how many rules were in each state, every 5 minutes of
/// the last 7 days).
async fn alerts_json(State(st): State<StatusState>) -> Response {
    let snap = st.board.snapshot();
    let rules: Vec<JsonRule> = snap.rules.iter().map(json_rule).collect();
    #[derive(Serialize)]
    struct Body<'a> {
        updated: i64,
        rules_error: Option<&'a str>,
        rules: Vec<JsonRule<'a>>,
        samples: &'a [crate::alert::BoardSample],
    }
    let body = Body {
        updated: snap.updated,
        rules_error: snap.rules_error.as_deref(),
        rules,
        samples: &snap.samples,
    };
    respond(
        "application/json",
        serde_json::to_string(&body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    )
}

/// A notification as `/api/outbox` and the rule page show it: everything but its body
/// (which holds webhook URLs, and the whole mail).
#[derive(Serialize)]
struct NotificationRow {
    id: u64,
    rule: String,
    event: &'static str,
    contact: String,
    channel: &'static str,
    destination: String,
    subject: String,
    created: i64,
    created_utc: String,
    status: crate::alert::Delivery,
    attempts: u32,
    next_try: Option<i64>,
    next_try_utc: Option<String>,
    last_error: Option<String>,
    done_at: Option<i64>,
    done_utc: Option<String>,
}

fn notification_row(n: crate::alert::Notification) -> NotificationRow {
    let pending = n.status == crate::alert::Delivery::Pending;
    NotificationRow {
        id: n.id,
        rule: n.rule,
        event: n.kind.as_str(),
        contact: n.contact,
        channel: n.channel.as_str(),
        destination: n.destination,
        subject: n.subject,
        created: n.created,
        created_utc: format::utc(n.created),
        status: n.status,
        attempts: n.attempts,
        next_try: pending.then_some(n.next_try),
        next_try_utc: pending.then(|| format::utc(n.next_try)),
        last_error: n.last_error,
        done_at: n.done_at,
        done_utc: n.done_at.map(format::utc),
    }
}

/// Most notifications `/api/outbox` lists (newest first).
const OUTBOX_SHOWN: usize = 1000;

#[derive(serde::Deserialize)]
struct OutboxQuery {
    rule: Option<String>,
}

/// `/api/outbox[?rule=NAME]`: the newest notifications (at most 1,000) with their delivery:
/// `pending` (with the next try and the last error), `sent` or `given_up`.
async fn outbox_json(
    State(st): State<StatusState>,
    axum::extract::Query(q): axum::extract::Query<OutboxQuery>,
) -> Response {
    let board = st.board.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let Some(ob) = board.outbox() else {
            return Vec::new();
        };
        let mut all = ob.all();
        all.reverse();
        all.into_iter()
            .filter(|n| q.rule.as_ref().is_none_or(|r| &n.rule == r))
            .take(OUTBOX_SHOWN)
            .map(notification_row)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    respond(
        "application/json",
        serde_json::to_string(&serde_json::json!({ "notifications": rows }))
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_query_takes_comma_lists_and_repeats() {
        let f = Filter::parse(Some("state=crit,WARN&state=crit&q=+Disk+&group=team&x=1"));
        assert_eq!(
            f,
            Filter {
                group: "team".into(),
                q: "Disk".into(),
                states: vec!["crit".into(), "warn".into()],
            }
        );
        assert_eq!(Filter::parse(None), Filter::default());
    }

    #[test]
    fn graph_urls_draw_the_levels() {
        let rule = crate::alert::parse_rules(
            std::path::Path::new("t.toml"),
            "[[alert]]\nname = \"x\"\ntarget = \"collectd.*.load.load.shortterm\"\nwarn = 2\ncrit = 4\n",
            8,
        )
        .unwrap()
        .remove(0);
        let u = crate::alert::graph_url(&rule, "-24h");
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(u.strip_prefix("/render?").unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            pairs[0],
            ("target".into(), "collectd.*.load.load.shortterm".into())
        );
        assert!(
            pairs[1].1.contains("threshold(2.0,'warn 2','orange')"),
            "{:?}",
            pairs[1]
        );
        assert!(
            pairs[2].1.contains("threshold(4.0,'crit 4','red')"),
            "{:?}",
            pairs[2]
        );
        assert!(pairs.contains(&("format".into(), "png".into())));
        assert!(pairs.contains(&("from".into(), "-24h".into())));
        let t = crate::query::parse_target(&pairs[2].1, 8).unwrap();
        assert!(matches!(t, crate::query::Expr::Call(_)));
    }
}
