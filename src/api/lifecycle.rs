//! The metric lifecycle endpoints, for operators (carbonhound's own; graphite-web has none —
//! Graphite shops delete whisper files by hand or from cron):
//!
//! - `POST /metrics/delete` with `query=PATTERN` (graphite's glob syntax, as `/metrics/find`;
//!   a tagged series by its full name) deletes every metric it matches →
//!   `{"deleted": [names], "count": n}`; with `dryRun=true` nothing is deleted →
//!   `{"matched": [names], "count": n, "dryRun": true}`.
//! - `POST /metrics/rename` with `from=OLD&to=NEW` moves a metric, or a branch and every
//!   metric below it → `{"renamed": [{"from", "to"}], "count": n}`.
//! - `GET /metrics/stale?olderThan=30d` lists the metrics whose last update is older →
//!   `{"stale": [names], "count": n, "olderThan": "30d", "cutoff": epoch}`;
//!   `POST /metrics/stale?olderThan=30d&delete=true` deletes them → `{"deleted": …}` (a POST
//!   without `delete=true` only lists).
//!
//! Parameters come from the query string or a form body. Errors are JSON `{"error": message}`,
//! the message naming the parameter: 400 for a missing, empty, over-long or unsafe pattern or
//! name (`..`, `/`, NUL, an empty node) and for a body beyond `query.max_body_bytes`, 404 when
//! nothing matches, 409 when a rename's new name exists, 500 when the file system refuses.
//! The POST routes are write routes (`auth::guard_writes`); the GET is a read.
//!
//! These act on this server's store only: with `[cluster] servers`, run them on each server.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::params::Params;
use super::AppState;
use crate::query::parse_time_offset;
use crate::store::{LifecycleError, Store};

/// Longest pattern or name accepted, in bytes (Linux's `PATH_MAX`: a longer one could not
/// name a file).
pub const MAX_PATTERN_BYTES: usize = 4096;

/// A refused request: a status and a message naming the parameter, answered as JSON
/// `{"error": message}`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "error": self.message }).to_string(),
        )
            .into_response()
    }
}

impl From<LifecycleError> for Refusal {
    fn from(e: LifecycleError) -> Refusal {
        let status = match &e {
            LifecycleError::BadName { .. } | LifecycleError::Symlink { .. } => {
                StatusCode::BAD_REQUEST
            }
            LifecycleError::NotFound { .. } => StatusCode::NOT_FOUND,
            LifecycleError::Exists { .. } => StatusCode::CONFLICT,
            LifecycleError::Io { .. } | LifecycleError::Wal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refusal::new(status, e.to_string())
    }
}

/// The answer of a handler: its JSON, or the refusal.
fn answer(result: Result<serde_json::Value, Refusal>) -> Response {
    match result {
        Ok(v) => super::respond("application/json", v.to_string()),
        Err(r) => r.into_response(),
    }
}

/// The parameters' extractor refused the request: a body beyond `query.max_body_bytes`
/// becomes a 400 that says so (the pattern is what was too long); other refusals stand.
fn refused_params(refused: Response) -> Response {
    if refused.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refusal::bad("query: the request is larger than query.max_body_bytes allows")
            .into_response()
    } else {
        refused
    }
}

/// A required, non-empty parameter.
fn required<'a>(p: &'a Params, key: &str) -> Result<&'a str, Refusal> {
    match p.get(key) {
        None => Err(Refusal::bad(format!("{key}: missing"))),
        Some(v) if v.trim().is_empty() => Err(Refusal::bad(format!("{key}: empty"))),
        Some(v) => Ok(v),
    }
}

/// A boolean parameter: absent, `false`, `0` or empty → false; `true` or `1` → true.
fn flag(p: &Params, key: &str) -> Result<bool, Refusal> {
    match p.get(key).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(Refusal::bad(format!(
            "{key}: {other:?} is not true or false"
        ))),
    }
}

/// Checks a delete pattern: at most [`MAX_PATTERN_BYTES`], no `/`, NUL or control character,
/// no empty node (`a..b`, `.a`, `a.`, which could climb out of a directory); a tagged name is
/// normalized as carbon stores it.
pub fn check_pattern(param: &str, pattern: &str) -> Result<String, String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "{param}: longer than {MAX_PATTERN_BYTES} bytes ({} given)",
            pattern.len()
        ));
    }
    if let Some(c) = pattern.chars().find(|&c| c == '/' || c.is_control()) {
        return Err(format!(
            "{param}: forbidden character {c:?} in {pattern:?} (metric paths use '.', never '/')"
        ));
    }
    if pattern.contains(';') {
        return crate::carbon::normalize(pattern)
            .map(|n| n.into_owned())
            .map_err(|e| format!("{param}: {pattern:?}: {e}"));
    }
    if pattern.split('.').any(str::is_empty) {
        return Err(format!(
            "{param}: empty node in {pattern:?} ('..', or a leading or trailing '.')"
        ));
    }
    Ok(pattern.to_string())
}

/// The cut-off of `olderThan` (graphite's offset syntax: `30d`, `12h`, `90min`), epoch
/// seconds: now minus the offset; with the text given.
fn cutoff(p: &Params) -> Result<(String, i64), Refusal> {
    let text = required(p, "olderThan")?.trim().to_string();
    let secs = parse_time_offset(&text).map_err(|e| Refusal::bad(format!("olderThan: {e}")))?;
    if secs <= 0 || text.starts_with(['-', '+']) {
        return Err(Refusal::bad(format!(
            "olderThan: {text:?} must be a positive duration such as 30d, 12h or 90min"
        )));
    }
    Ok((text, crate::store::unix_now() - secs))
}

/// Runs `f` on the blocking pool (file removals, the store's lifecycle lock).
async fn blocking<T: Send + 'static>(
    store: &std::sync::Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error (logged on the server)",
            )
        })?
}

/// `POST /metrics/delete`: `query=PATTERN[&dryRun=true]`.
pub async fn delete(State(state): State<AppState>, p: Result<Params, Response>) -> Response {
    match p {
        Ok(p) => answer(delete_answer(&state, &p).await),
        Err(refused) => refused_params(refused),
    }
}

async fn delete_answer(state: &AppState, p: &Params) -> Result<serde_json::Value, Refusal> {
    let query = required(p, "query")?;
    let dry_run = flag(p, "dryRun")?;
    let pattern = check_pattern("query", query).map_err(Refusal::bad)?;
    blocking(&state.store, move |store| {
        let names = store.matching(&pattern);
        if names.is_empty() {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("query: no metric matches {pattern:?}"),
            ));
        }
        if dry_run {
            return Ok(json!({"matched": names, "count": names.len(), "dryRun": true}));
        }
        let deleted = store.delete(&names)?;
        tracing::info!("deleted {} metrics matching {pattern:?}", deleted.len());
        Ok(json!({"deleted": deleted, "count": deleted.len()}))
    })
    .await
}

/// `POST /metrics/rename`: `from=OLD&to=NEW`.
pub async fn rename(State(state): State<AppState>, p: Result<Params, Response>) -> Response {
    match p {
        Ok(p) => answer(rename_answer(&state, &p).await),
        Err(refused) => refused_params(refused),
    }
}

async fn rename_answer(state: &AppState, p: &Params) -> Result<serde_json::Value, Refusal> {
    let from = required(p, "from")?.to_string();
    let to = required(p, "to")?.to_string();
    for (key, v) in [("from", &from), ("to", &to)] {
        if v.len() > MAX_PATTERN_BYTES {
            return Err(Refusal::bad(format!(
                "{key}: longer than {MAX_PATTERN_BYTES} bytes"
            )));
        }
    }
    let moved = blocking(&state.store, move |store| Ok(store.rename(&from, &to)?)).await?;
    tracing::info!("renamed {} metrics", moved.len());
    let list: Vec<serde_json::Value> = moved
        .iter()
        .map(|r| json!({"from": r.from, "to": r.to}))
        .collect();
    Ok(json!({"renamed": list, "count": list.len()}))
}

/// `GET /metrics/stale?olderThan=…`: lists (`delete=true` is refused with 405: a GET
/// changes nothing).
pub async fn stale(State(state): State<AppState>, p: Result<Params, Response>) -> Response {
    match p {
        Ok(p) => answer(stale_answer(&state, &p, false).await),
        Err(refused) => refused_params(refused),
    }
}

/// `POST /metrics/stale?olderThan=…[&delete=true]`: deletes with `delete=true`, else lists.
pub async fn stale_post(State(state): State<AppState>, p: Result<Params, Response>) -> Response {
    match p {
        Ok(p) => answer(stale_answer(&state, &p, true).await),
        Err(refused) => refused_params(refused),
    }
}

async fn stale_answer(
    state: &AppState,
    p: &Params,
    may_delete: bool,
) -> Result<serde_json::Value, Refusal> {
    let (text, cutoff) = cutoff(p)?;
    let delete = flag(p, "delete")?;
    if delete && !may_delete {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "delete: deleting needs POST /metrics/stale",
        ));
    }
    blocking(&state.store, move |store| {
        if delete {
            let deleted = store.delete_stale(cutoff)?;
            tracing::info!("deleted {} metrics not updated for {text}", deleted.len());
            Ok(json!({"deleted": deleted, "count": deleted.len(), "olderThan": text, "cutoff": cutoff}))
        } else {
            let names = store.stale(cutoff);
            Ok(json!({"stale": names, "count": names.len(), "olderThan": text, "cutoff": cutoff}))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_checked() {
        assert_eq!(check_pattern("query", "a.*.b").unwrap(), "a.*.b");
        assert_eq!(check_pattern("query", "*").unwrap(), "*");
        assert_eq!(
            check_pattern("query", "cpu;z=1;a=2").unwrap(),
            "cpu;a=2;z=1"
        );
        for bad in ["../x", "a/b", "a..b", ".a", "a.", "a\0b", "x;t=a/b"] {
            let e = check_pattern("query", bad).unwrap_err();
            assert!(e.starts_with("query: "), "{bad:?}: {e}");
        }
        assert!(check_pattern("query", &"a".repeat(MAX_PATTERN_BYTES + 1)).is_err());
    }
}
