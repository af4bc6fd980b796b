//! Silences over HTTP: `GET /api/silences` (active first, then those ended in the last 7
//! days), `POST /api/silences` (JSON) and `DELETE /api/silences/{id}` for scripts and
//! `carbonhound silence`, and the rule page's forms (`POST /alerts/{slug}/silence`,
//! `POST /alerts/{slug}/silences/{id}/expire`, each answered with a redirect back to the
//! page). Every route that changes something is under `auth::guard_writes`, as
//! `POST /events/` is. Answers 400 naming the field, 404, 413 (body), 507 (too many
//! silences). Writes only the state database's `silences` tree.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Value};

use super::auth::{self, Access};
use super::{respond, ApiError};
use crate::alert::{Board, NewSilence, SilenceError, Silences};
use crate::store::unix_now;

/// Largest request body of these routes, in bytes.
const MAX_BODY: usize = 64 << 10;

/// What the silence routes need.
#[derive(Clone)]
pub struct SilencesState {
    /// The state database's silences.
    pub silences: Silences,
    /// The rules (to turn a page's slug into a rule name).
    pub board: Arc<Board>,
}

/// `GET /api/silences`; `POST /api/silences`, `DELETE /api/silences/{id}` and the rule page's
/// form posts under `access`'s write guard.
pub fn router(state: SilencesState, access: Arc<Access>) -> Router {
    let writes = Router::new()
        .route("/api/silences", post(add))
        .route("/api/silences/{id}", delete(expire))
        .route("/alerts/{slug}/silence", post(form_add))
        .route("/alerts/{slug}/silences/{id}/expire", post(form_expire))
        .route_layer(axum::middleware::from_fn_with_state(
            access,
            auth::guard_writes,
        ));
    Router::new()
        .route("/api/silences", get(list))
        .merge(writes)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn error(e: SilenceError) -> Response {
    let status = match &e {
        SilenceError::Invalid { .. } => StatusCode::BAD_REQUEST,
        SilenceError::Full => StatusCode::INSUFFICIENT_STORAGE,
        SilenceError::NotFound(_) => StatusCode::NOT_FOUND,
        SilenceError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError {
        status,
        message: e.to_string(),
    }
    .into_response()
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SilenceError {
    SilenceError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Runs sled work on the blocking pool; a panicked task is a 500.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SilenceError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(error),
        Err(_) => Err(ApiError::internal("silence task failed".into()).into_response()),
    }
}

async fn list(State(st): State<SilencesState>) -> Response {
    let silences = st.silences.clone();
    match blocking(move || Ok(silences.list(unix_now()))).await {
        Ok(list) => {
            let now = unix_now();
            let items: Vec<Value> = list
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("active".into(), Value::Bool(s.active(now)));
                    }
                    v
                })
                .collect();
            respond(
                "application/json",
                serde_json::to_string(&items).unwrap_or_default(),
            )
        }
        Err(r) => r,
    }
}

fn string(body: &Value, field: &'static str) -> Result<Option<String>, SilenceError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

/// When a silence given `duration` (humantime: `2h`, `30m`) or `until` (epoch seconds)
/// ends, from `now`.
fn ends(duration: Option<&str>, until: Option<i64>, now: i64) -> Result<i64, SilenceError> {
    match (duration, until) {
        (Some(_), Some(_)) => Err(invalid("duration", "give duration or until, not both")),
        (None, None) => Err(invalid(
            "duration",
            "give duration (e.g. \"2h\") or until (epoch seconds)",
        )),
        (None, Some(u)) => Ok(u),
        (Some(d), None) => {
            let d =
                crate::config::parse_duration(d).map_err(|e| invalid("duration", e.to_string()))?;
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            Ok(now.saturating_add(secs))
        }
    }
}

/// Reads the JSON body of `POST /api/silences`, naming the field that is wrong.
fn parse_new(body: &[u8], now: i64) -> Result<NewSilence, SilenceError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| invalid("body", format!("not JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(invalid("body", "must be a JSON object"));
    };
    const KNOWN: [&str; 7] = [
        "rule", "series", "labels", "duration", "until", "comment", "author",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(SilenceError::Invalid {
            field: "body",
            reason: format!("unknown field `{k}` (known: {})", KNOWN.join(", ")),
        });
    }
    let mut labels = BTreeMap::new();
    match v.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, val) in m {
                let Value::String(s) = val else {
                    return Err(invalid(
                        "labels",
                        format!("value of `{k}` must be a string"),
                    ));
                };
                labels.insert(k.clone(), s.clone());
            }
        }
        Some(_) => return Err(invalid("labels", "must be an object of strings")),
    }
    let until = match v.get("until") {
        None | Some(Value::Null) => None,
        Some(u) => Some(
            u.as_i64()
                .ok_or_else(|| invalid("until", "must be an integer (epoch seconds)"))?,
        ),
    };
    let duration = string(&v, "duration")?;
    Ok(NewSilence {
        rule: string(&v, "rule")?,
        series: string(&v, "series")?,
        labels,
        ends: ends(duration.as_deref(), until, now)?,
        comment: string(&v, "comment")?.unwrap_or_default(),
        author: string(&v, "author")?.unwrap_or_default(),
    })
}

async fn add(State(st): State<SilencesState>, body: Bytes) -> Response {
    let silences = st.silences.clone();
    let r = blocking(move || {
        let now = unix_now();
        silences.add(parse_new(&body, now)?, now)
    })
    .await;
    match r {
        Ok(s) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "id": s.id, "starts": s.starts, "ends": s.ends }).to_string(),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn expire(State(st): State<SilencesState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(SilenceError::Invalid {
            field: "id",
            reason: format!("'{id}' is not a silence number"),
        });
    };
    let silences = st.silences.clone();
    match blocking(move || silences.expire(id, unix_now())).await {
        Ok(s) => respond(
            "application/json",
            serde_json::to_string(&s).unwrap_or_default(),
        ),
        Err(r) => r,
    }
}

fn back_to(slug: &str) -> Response {
    let slug: String = form_urlencoded::byte_serialize(slug.as_bytes()).collect();
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/alerts/{slug}"))],
    )
        .into_response()
}

/// The rule page's form: `series` (optional, one series' exact name), `duration` (`2h`),
/// `comment`, `author`.
async fn form_add(
    State(st): State<SilencesState>,
    Path(slug): Path<String>,
    body: Bytes,
) -> Response {
    let snap = st.board.snapshot();
    let Some(rule) = snap.rules.iter().find(|v| v.rule.slug == slug) else {
        return ApiError::not_found(format!("no alert rule at /alerts/{slug}")).into_response();
    };
    let name = rule.rule.name.clone();
    let silences = st.silences.clone();
    let r = blocking(move || {
        let now = unix_now();
        let mut f: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        let field = |f: &mut BTreeMap<String, String>, k: &str| f.remove(k).unwrap_or_default();
        let duration = field(&mut f, "duration");
        let new = NewSilence {
            rule: Some(name),
            series: Some(field(&mut f, "series")),
            labels: BTreeMap::new(),
            ends: ends(Some(&duration), None, now)?,
            comment: field(&mut f, "comment"),
            author: field(&mut f, "author"),
        };
        silences.add(new, now)
    })
    .await;
    match r {
        Ok(_) => back_to(&slug),
        Err(r) => r,
    }
}

async fn form_expire(
    State(st): State<SilencesState>,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(invalid("id", format!("'{id}' is not a silence number")));
    };
    let silences = st.silences.clone();
    match blocking(move || silences.expire(id, unix_now())).await {
        Ok(_) => back_to(&slug),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bodies_name_the_field() {
        let field = |b: &str| match parse_new(b.as_bytes(), 1000) {
            Err(SilenceError::Invalid { field, .. }) => field,
            other => panic!("{b}: {other:?}"),
        };
        assert_eq!(field("[1]"), "body");
        assert_eq!(field(r#"{"rule":"x","durration":"2h"}"#), "body");
        assert_eq!(field(r#"{"rule":5,"duration":"2h"}"#), "rule");
        assert_eq!(field(r#"{"rule":"x","duration":"soon"}"#), "duration");
        assert_eq!(
            field(r#"{"rule":"x","duration":"2h","until":5}"#),
            "duration"
        );
        assert_eq!(field(r#"{"rule":"x","until":"5"}"#), "until");
        assert_eq!(field(r#"{"labels":{"a":1},"until":5}"#), "labels");
        let n = parse_new(
            br#"{"rule":"x","series":"a.*","labels":{"team":"web"},"duration":"2h","comment":"c","author":"a"}"#,
            1000,
        )
        .unwrap();
        assert_eq!(n.ends, 1000 + 7200);
        assert_eq!(n.labels.get("team").map(String::as_str), Some("web"));
    }
}
