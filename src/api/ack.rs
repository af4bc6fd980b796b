//! Acknowledging incidents over HTTP:
//! - `GET /ack/<token>`: the page a notification's signed link opens (the rule, its state, a
//!   form); `POST /ack/<token>` (form `author`, `comment`) acknowledges. The token is the
//!   credential (HMAC-signed, expiring: `alert::AckKey`), so these work from a phone without
//!   logging in, even with `[http] protect_reads`; a tampered or expired token gets 403.
//! - `POST /api/alerts/<rule>/ack` (the rule's page slug or its name; JSON `{"author",
//!   "comment", "series"}`) → 202, and the
//!   rule page's form `POST /alerts/<slug>/ack` → 303 back to the page: writes, under the
//!   write authentication of [`super::auth`].
//!
//! Nothing here touches rule state: a request is recorded for the scheduler, which applies it
//! at the rule's next check (asked for at once).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::{self, Access};
use super::respond;
use crate::alert::{clean_text, format, AckRequest, Board, Templates};
use crate::store::unix_now;

/// What the acknowledge routes need.
#[derive(Clone)]
pub struct AckState {
    /// The alert board (rules, state, the acknowledgement desk).
    pub board: Arc<Board>,
    /// Page templates (`ack.html`).
    pub templates: Templates,
}

#[derive(Serialize, Default)]
struct AckPage {
    name: String,
    slug: String,
    state: &'static str,
    state_text: &'static str,
    since: Option<String>,
    error: Option<String>,
    done: bool,
    by: String,
    refresh: u64,
}

fn page(st: &AckState, status: StatusCode, ctx: &AckPage) -> Response {
    match st.templates.render("ack.html", ctx) {
        Ok(html) => {
            let mut r = respond("text/html; charset=utf-8", html);
            *r.status_mut() = status;
            r
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template ack.html: {e}\n"),
        )
            .into_response(),
    }
}

/// The rule a token names, with the page's facts; or the page saying why not.
fn claim(st: &AckState, token: &str) -> Result<(String, String, AckPage), Box<Response>> {
    let refused = |message: String| {
        Box::new(page(
            st,
            StatusCode::FORBIDDEN,
            &AckPage {
                error: Some(message),
                name: "acknowledge".into(),
                ..AckPage::default()
            },
        ))
    };
    let Some(desk) = st.board.acks() else {
        return Err(refused("alerting is not running".into()));
    };
    let c = desk
        .key()
        .verify(token, unix_now())
        .map_err(|e| refused(e.to_string()))?;
    let snap = st.board.snapshot();
    let Some(v) = snap.rules.iter().find(|v| v.rule.slug == c.slug) else {
        return Err(refused(format!("no rule at /alerts/{} any more", c.slug)));
    };
    let s = v.state.as_ref();
    let inc = s
        .and_then(|s| s.incident.as_ref())
        .filter(|i| i.thread == c.incident);
    let Some(inc) = inc else {
        return Err(refused(format!(
            "the incident this link is for is over; {} is {} now",
            v.rule.name,
            s.map(|s| s.state.label()).unwrap_or("not checked")
        )));
    };
    let state = s.map(|s| s.state).unwrap_or(crate::alert::State::Ok);
    Ok((
        v.rule.name.clone(),
        c.incident.clone(),
        AckPage {
            name: v.rule.name.clone(),
            slug: v.rule.slug.clone(),
            state: state.as_str(),
            state_text: state.label(),
            since: Some(format::utc(inc.started)),
            ..AckPage::default()
        },
    ))
}

async fn show(State(st): State<AckState>, Path(token): Path<String>) -> Response {
    match claim(&st, &token) {
        Ok((_, _, ctx)) => page(&st, StatusCode::OK, &ctx),
        Err(r) => *r,
    }
}

/// The form of the acknowledge page and of the rule page.
#[derive(Deserialize)]
pub struct AckForm {
    /// Who.
    #[serde(default)]
    pub author: String,
    /// What they say.
    #[serde(default)]
    pub comment: String,
    /// A series, when the acknowledgement is about one.
    #[serde(default)]
    pub series: Option<String>,
}

fn request(
    st: &AckState,
    rule: &str,
    incident: Option<String>,
    f: &AckForm,
) -> Result<String, (StatusCode, String)> {
    let by = clean_text(&f.author);
    if by.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "author: say who acknowledges\n".into(),
        ));
    }
    let desk = st.board.acks().ok_or((
        StatusCode::SERVICE_UNAVAILABLE,
        "alerting is not running\n".to_string(),
    ))?;
    let req = AckRequest {
        incident,
        by: by.clone(),
        comment: clean_text(&f.comment),
        at: unix_now(),
        series: f
            .series
            .as_deref()
            .map(clean_text)
            .filter(|s| !s.is_empty()),
    };
    desk.request(rule, &req)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))?;
    st.board.request_reload();
    Ok(by)
}

async fn acknowledge(
    State(st): State<AckState>,
    Path(token): Path<String>,
    Form(f): Form<AckForm>,
) -> Response {
    let (rule, incident, mut ctx) = match claim(&st, &token) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match request(&st, &rule, Some(incident), &f) {
        Ok(by) => {
            ctx.done = true;
            ctx.by = by;
            page(&st, StatusCode::OK, &ctx)
        }
        Err((code, message)) => {
            ctx.error = Some(message);
            page(&st, code, &ctx)
        }
    }
}

fn rule_name(st: &AckState, slug: &str) -> Result<String, (StatusCode, String)> {
    let snap = st.board.snapshot();
    // The rule by its page slug, or by its name.
    let v = snap
        .rules
        .iter()
        .find(|v| v.rule.slug == slug)
        .or_else(|| snap.rules.iter().find(|v| v.rule.name == slug))
        .ok_or((
            StatusCode::NOT_FOUND,
            format!("no alert rule named {slug:?} or at /alerts/{slug}\n"),
        ))?;
    let open = v
        .state
        .as_ref()
        .and_then(|s| s.incident.as_ref())
        .is_some_and(|i| i.announced.is_some());
    if !open {
        return Err((
            StatusCode::CONFLICT,
            format!("{} has no open incident to acknowledge\n", v.rule.name),
        ));
    }
    Ok(v.rule.name.clone())
}

async fn api_ack(
    State(st): State<AckState>,
    Path(slug): Path<String>,
    Json(f): Json<AckForm>,
) -> Response {
    let r = rule_name(&st, &slug).and_then(|name| request(&st, &name, None, &f));
    match r {
        Ok(by) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"status": "requested", "rule": slug, "by": by}).to_string(),
        )
            .into_response(),
        Err((code, message)) => (code, message).into_response(),
    }
}

async fn form_ack(
    State(st): State<AckState>,
    Path(slug): Path<String>,
    Form(f): Form<AckForm>,
) -> Response {
    match rule_name(&st, &slug).and_then(|name| request(&st, &name, None, &f)) {
        Ok(_) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/alerts/{slug}"))],
        )
            .into_response(),
        Err((code, message)) => (code, message).into_response(),
    }
}

/// `/ack/{token}`: open to anyone holding a valid token (mount it outside the read guard).
pub fn link_router(state: AckState) -> Router {
    Router::new()
        .route("/ack/{token}", axum::routing::get(show).post(acknowledge))
        .with_state(state)
}

/// `POST /api/alerts/{slug}/ack` and `POST /alerts/{slug}/ack`, under the write guard.
pub fn write_router(state: AckState, access: Arc<Access>) -> Router {
    Router::new()
        .route("/api/alerts/{slug}/ack", post(api_ack))
        .route("/alerts/{slug}/ack", post(form_ack))
        .route_layer(axum::middleware::from_fn_with_state(
            access,
            auth::guard_writes,
        ))
        .with_state(state)
}
