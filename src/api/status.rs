//! Alert status pages: `/` (one square per rule: green OK, red failed, grey no data, amber
//! error; auto-refreshing), `/alerts/<slug>` (the rule, its state and since when, recent
//! history, 24 h and 7 d graphs served by our own `/render` with the threshold drawn), and
//! `/alerts.json` (every rule's state, for scripts).
//!
//! Reads the board the alert scheduler publishes; never touches the state database or the
//! store.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono_tz::Tz;
use serde::Serialize;

use super::respond;
use crate::alert::Templates;
use crate::alert::{format, Status};
use crate::alert::{Board, RuleView};
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
        .route("/alerts/{slug}", get(rule_page))
        .with_state(state)
}

#[derive(Serialize)]
struct SeriesRow {
    series: String,
    value: String,
    excess: String,
    percent: Option<String>,
    at_utc: String,
}

/// A rule as the pages show it: formatted for people.
#[derive(Serialize)]
struct RuleRow {
    name: String,
    slug: String,
    target: String,
    threshold: String,
    direction: &'static str,
    #[serde(rename = "type")]
    rule_type: &'static str,
    recipients: Vec<String>,
    runbook: Option<String>,
    source: String,
    /// CSS class suffix: ok, failed, nodata, error or unchecked.
    status: &'static str,
    status_text: &'static str,
    value: Option<String>,
    summary: String,
    since_utc: String,
    since_local: Option<String>,
    since_for: String,
    failing_since_utc: Option<String>,
    failing_since_local: Option<String>,
    checked_utc: String,
    message: String,
    mail_error: Option<String>,
    series_checked: usize,
    series_total: usize,
    failing: Vec<SeriesRow>,
    failing_total: usize,
    failing_more: usize,
}

fn status_text(s: Option<Status>) -> (&'static str, &'static str) {
    match s {
        None => ("unchecked", "NOT CHECKED YET"),
        Some(Status::Ok) => ("ok", "OK"),
        Some(Status::Failed) => ("failed", "FAILED"),
        Some(Status::NoData) => ("nodata", "NO DATA"),
        Some(Status::Error) => ("error", "ERROR"),
    }
}

fn row(v: &RuleView, tz: Tz, default_to: &[String], now: i64) -> RuleRow {
    let r = &v.rule;
    let st = v.state.as_ref();
    let (status, text) = status_text(st.map(|s| s.status));
    let show_local = tz != Tz::UTC;
    let th = format::value(r.threshold);
    let dir = r.direction.as_str();
    let summary = match st {
        Some(s) if s.status == Status::Failed && s.series_checked > 1 => format!(
            "{} of {} series {dir} {th}",
            s.failing_total, s.series_checked
        ),
        Some(s) if s.status == Status::NoData || s.status == Status::Error => s.message.clone(),
        _ => format!("fails {dir} {th}"),
    };
    let since = st.map(|s| s.since).unwrap_or(now);
    let failing_since = st.and_then(|s| s.episode.as_ref()).map(|e| e.started);
    RuleRow {
        name: r.name.clone(),
        slug: r.slug.clone(),
        target: r.target.clone(),
        threshold: th,
        direction: dir,
        rule_type: r.rule_type.as_str(),
        recipients: r.recipients(default_to).to_vec(),
        runbook: r.runbook.clone(),
        source: r.source.clone(),
        status,
        status_text: text,
        value: st.and_then(|s| s.value).map(format::value),
        summary,
        since_utc: format::utc(since),
        since_local: show_local.then(|| format::local(since, tz)),
        since_for: format::duration(now - since),
        failing_since_utc: failing_since.map(format::utc),
        failing_since_local: failing_since
            .filter(|_| show_local)
            .map(|t| format::local(t, tz)),
        checked_utc: st
            .map(|s| format::utc(s.checked_at))
            .unwrap_or_else(|| "not yet".into()),
        message: st.map(|s| s.message.clone()).unwrap_or_default(),
        mail_error: st.and_then(|s| s.mail_error.clone()),
        series_checked: st.map(|s| s.series_checked).unwrap_or(0),
        series_total: st.map(|s| s.series_total).unwrap_or(0),
        failing: st
            .map(|s| {
                s.failing
                    .iter()
                    .map(|f| {
                        let (excess, percent) = format::excess(f.value, r.threshold);
                        SeriesRow {
                            series: f.series.clone(),
                            value: format::value(f.value),
                            excess,
                            percent,
                            at_utc: format::utc(f.at),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        failing_total: st.map(|s| s.failing_total).unwrap_or(0),
        failing_more: st
            .map(|s| s.failing_total.saturating_sub(s.failing.len()))
            .unwrap_or(0),
    }
}

#[derive(Serialize, Default)]
struct Counts {
    ok: usize,
    failed: usize,
    nodata: usize,
    error: usize,
    unchecked: usize,
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

async fn index(State(st): State<StatusState>) -> Response {
    let snap = st.board.snapshot();
    let now = unix_now();
    let rules: Vec<RuleRow> = snap
        .rules
        .iter()
        .map(|v| row(v, st.tz, &st.default_to, now))
        .collect();
    let mut counts = Counts::default();
    for r in &rules {
        match r.status {
            "ok" => counts.ok += 1,
            "failed" => counts.failed += 1,
            "nodata" => counts.nodata += 1,
            "error" => counts.error += 1,
            _ => counts.unchecked += 1,
        }
    }
    #[derive(Serialize)]
    struct Ctx {
        rules: Vec<RuleRow>,
        counts: Counts,
        rules_error: Option<String>,
    }
    html(
        &st,
        "status.html",
        &page(
            &st,
            Ctx {
                rules,
                counts,
                rules_error: snap.rules_error.clone(),
            },
        ),
    )
}

#[derive(Serialize)]
struct HistoryRow {
    at_utc: String,
    kind: String,
    text: String,
}

/// `/render` URL of `target` with its threshold, over `from` (e.g. `-24h`).
fn graph_url(target: &str, threshold: f64, from: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("target", target);
    // A red dashed line, as in the mail, keeping its legend name (`dashed` renames).
    let label = format!("threshold {}", format::value(threshold).replace('\'', ""));
    let line = format!("alias(dashed(threshold({threshold:?},'{label}','red')),'{label}')");
    q.append_pair("target", &line);
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
    let r = row(v, st.tz, &st.default_to, now);
    let history: Vec<HistoryRow> = v
        .history
        .iter()
        .map(|e| HistoryRow {
            at_utc: format::utc(e.at),
            kind: e.kind.clone(),
            text: e.text.clone(),
        })
        .collect();
    #[derive(Serialize)]
    struct Ctx {
        r: RuleRow,
        history: Vec<HistoryRow>,
        graph_24h: String,
        graph_7d: String,
    }
    let ctx = Ctx {
        graph_24h: graph_url(&v.rule.target, v.rule.threshold, "-24h"),
        graph_7d: graph_url(&v.rule.target, v.rule.threshold, "-7d"),
        r,
        history,
    };
    html(&st, "rule.html", &page(&st, ctx))
}

#[derive(Serialize)]
struct JsonReading {
    series: String,
    value: f64,
    timestamp: i64,
}

#[derive(Serialize)]
struct JsonRule {
    name: String,
    slug: String,
    url: String,
    target: String,
    threshold: f64,
    direction: &'static str,
    #[serde(rename = "type")]
    rule_type: &'static str,
    /// ok, failed, nodata, error, or null before the first check.
    state: Option<&'static str>,
    since: Option<i64>,
    checked_at: Option<i64>,
    value: Option<f64>,
    failing_since: Option<i64>,
    failing: Vec<JsonReading>,
    failing_total: usize,
    message: Option<String>,
    mail_error: Option<String>,
}

async fn alerts_json(State(st): State<StatusState>) -> Response {
    let snap = st.board.snapshot();
    let rules: Vec<JsonRule> = snap
        .rules
        .iter()
        .map(|v| {
            let s = v.state.as_ref();
            JsonRule {
                name: v.rule.name.clone(),
                slug: v.rule.slug.clone(),
                url: format!("/alerts/{}", v.rule.slug),
                target: v.rule.target.clone(),
                threshold: v.rule.threshold,
                direction: v.rule.direction.as_str(),
                rule_type: v.rule.rule_type.as_str(),
                state: s.map(|s| s.status.as_str()),
                since: s.map(|s| s.since),
                checked_at: s.map(|s| s.checked_at),
                value: s.and_then(|s| s.value).filter(|v| v.is_finite()),
                failing_since: s.and_then(|s| s.episode.as_ref()).map(|e| e.started),
                failing: s
                    .map(|s| {
                        s.failing
                            .iter()
                            .filter(|r| r.value.is_finite())
                            .map(|r| JsonReading {
                                series: r.series.clone(),
                                value: r.value,
                                timestamp: r.at,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                failing_total: s.map(|s| s.failing_total).unwrap_or(0),
                message: s.map(|s| s.message.clone()).filter(|m| !m.is_empty()),
                mail_error: s.and_then(|s| s.mail_error.clone()),
            }
        })
        .collect();
    #[derive(Serialize)]
    struct Body {
        updated: i64,
        rules_error: Option<String>,
        rules: Vec<JsonRule>,
    }
    let body = Body {
        updated: snap.updated,
        rules_error: snap.rules_error.clone(),
        rules,
    };
    respond(
        "application/json",
        serde_json::to_string(&body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_urls_draw_the_threshold() {
        let u = graph_url("collectd.*.load.load.shortterm", 4.0, "-24h");
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(u.strip_prefix("/render?").unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            pairs[0],
            ("target".into(), "collectd.*.load.load.shortterm".into())
        );
        assert_eq!(pairs[1].0, "target");
        assert!(
            pairs[1].1.contains("threshold(4.0,'threshold 4','red')"),
            "{:?}",
            pairs[1]
        );
        assert!(pairs.contains(&("format".into(), "png".into())));
        assert!(pairs.contains(&("from".into(), "-24h".into())));
        let t = crate::query::parse_target(&pairs[1].1, 8).unwrap();
        assert!(matches!(t, crate::query::Expr::Call(_)));
    }
}
