//! graphite-web's tag API (`/tags/*`), served from the store's tag index: what Grafana's tag
//! editor and autocompletion call, and what carbon's `TAGDB` registration calls.
//!
//! Answers match graphite-web 1.1's `LocalDatabaseTagDB`: lists sorted, `limit` applied after
//! sorting (autocomplete defaults to 100, `TAGDB_AUTOCOMPLETE_LIMIT`), `filter`/prefix regexes
//! anchored at the start. The `id` fields graphite-web takes from its database are 1-based
//! positions in the sorted list here. Errors are `{"error": "..."}` with status 400.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::params::Params;
use super::{json_text, respond_json, AppState};
use crate::carbon::normalize;
use crate::query::functions::py_regex;
use crate::store::{parse_tagged, TagExpr};

/// graphite-web's `TAGDB_AUTOCOMPLETE_LIMIT`.
const AUTOCOMPLETE_LIMIT: usize = 100;

fn json_ok(params: &Params, v: &Value) -> Response {
    respond_json(params, json_text(params, v))
}

/// A tag API error: graphite-web's `{"error": "..."}` with a status.
struct TagError(StatusCode, String);

impl IntoResponse for TagError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json!({"error": self.1}).to_string(),
        )
            .into_response()
    }
}

fn json_error(status: StatusCode, msg: impl Into<String>) -> TagError {
    TagError(status, msg.into())
}

fn limit_of(params: &Params, default: Option<usize>) -> Result<Option<usize>, TagError> {
    match params.get("limit").filter(|l| !l.is_empty()) {
        None => Ok(default),
        Some(l) => l.parse::<usize>().map(Some).map_err(|_| {
            json_error(
                StatusCode::BAD_REQUEST,
                format!("invalid literal for int() with base 10: '{l}'"),
            )
        }),
    }
}

/// An anchored filter regex as graphite-web builds it: `^(filter)` unless it starts with `^`.
fn anchored(filter: &str) -> Result<crate::python::Regex, TagError> {
    let pattern = if filter.starts_with('^') {
        filter.to_string()
    } else {
        format!("^({filter})")
    };
    py_regex(&pattern, "tags").map_err(|e| json_error(StatusCode::BAD_REQUEST, e.to_string()))
}

/// The items whose text the filter matches (all without a filter); a match the regex engine
/// gave up on is a 400.
fn filtered<T>(
    items: Vec<T>,
    filter: Option<&crate::python::Regex>,
    text: impl Fn(&T) -> &str,
) -> Result<Vec<T>, TagError> {
    let Some(re) = filter else { return Ok(items) };
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        let hit = re
            .is_match(text(&item))
            .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.to_string()))?;
        if hit {
            kept.push(item);
        }
    }
    Ok(kept)
}

fn exprs(params: &Params) -> Vec<String> {
    let e = params.all("expr");
    let e = if e.is_empty() {
        params.all("expr[]")
    } else {
        e
    };
    e.into_iter().map(str::to_string).collect()
}

fn find(state: &AppState, exprs: &[String]) -> Result<Vec<String>, TagError> {
    let parsed: Vec<TagExpr> = exprs
        .iter()
        .map(|e| TagExpr::parse(e))
        .collect::<Result<_, _>>()
        .map_err(|e| json_error(StatusCode::BAD_REQUEST, e))?;
    let regex = |p: &str| py_regex(p, "seriesByTag").map_err(|e| e.to_string());
    let mut found = state
        .store
        .tags
        .find_series(&parsed, &regex)
        .map_err(|e| json_error(StatusCode::BAD_REQUEST, e))?;
    found.sort();
    Ok(found)
}

/// `GET /tags[?filter=re][&limit=n]`: `[{"id": n, "tag": "dc"}, …]`.
pub async fn list(State(state): State<AppState>, params: Params) -> Response {
    let run = || -> Result<Value, TagError> {
        let limit = limit_of(&params, None)?;
        let filter = params
            .get("filter")
            .filter(|f| !f.is_empty())
            .map(anchored)
            .transpose()?;
        let tags: Vec<Value> = filtered(state.store.tags.tags(), filter.as_ref(), |t| t)?
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .enumerate()
            .map(|(i, t)| json!({"id": i + 1, "tag": t}))
            .collect();
        Ok(Value::Array(tags))
    };
    run()
        .map(|v| json_ok(&params, &v))
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /tags/<tag>[?filter=re][&limit=n]`: the tag and its values with series counts, or
/// `null` for an unknown tag.
pub async fn details(
    State(state): State<AppState>,
    Path(tag): Path<String>,
    params: Params,
) -> Response {
    let run = || -> Result<Value, TagError> {
        let limit = limit_of(&params, None)?;
        let filter = params
            .get("filter")
            .filter(|f| !f.is_empty())
            .map(anchored)
            .transpose()?;
        let Some(pos) = state.store.tags.tags().iter().position(|t| *t == tag) else {
            return Ok(Value::Null);
        };
        let values: Vec<Value> =
            filtered(state.store.tags.values(&tag), filter.as_ref(), |v| &v.0)?
                .into_iter()
                .take(limit.unwrap_or(usize::MAX))
                .enumerate()
                .map(|(i, (v, count))| json!({"id": i + 1, "value": v, "count": count}))
                .collect();
        Ok(json!({"id": pos + 1, "tag": tag, "values": values}))
    };
    run()
        .map(|v| json_ok(&params, &v))
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET|POST /tags/findSeries?expr=…[&expr=…]`: matching series, sorted.
pub async fn find_series(State(state): State<AppState>, params: Params) -> Response {
    let e = exprs(&params);
    if e.is_empty() {
        return json_error(StatusCode::BAD_REQUEST, "no tag expressions specified").into_response();
    }
    match find(&state, &e) {
        Ok(found) => json_ok(&params, &json!(found)),
        Err(r) => r.into_response(),
    }
}

/// `GET|POST /tags/autoComplete/tags?[expr=…][&tagPrefix=p][&limit=n]`: tag names that series
/// matching the expressions carry (besides the ones searched), sorted.
pub async fn autocomplete_tags(State(state): State<AppState>, params: Params) -> Response {
    let run = || -> Result<Value, TagError> {
        let limit = limit_of(&params, Some(AUTOCOMPLETE_LIMIT))?.unwrap_or(AUTOCOMPLETE_LIMIT);
        let prefix = params.get("tagPrefix").unwrap_or("");
        let e = exprs(&params);
        let mut out: Vec<String> = if e.is_empty() {
            state
                .store
                .tags
                .tags()
                .into_iter()
                .filter(|t| t.starts_with(prefix))
                .collect()
        } else {
            let searched: Vec<String> = e
                .iter()
                .filter_map(|x| TagExpr::parse(x).ok())
                .map(|x| x.tag)
                .collect();
            let mut set = std::collections::BTreeSet::new();
            for s in find(&state, &e)? {
                if let Some(tags) = parse_tagged(&s) {
                    set.extend(
                        tags.into_keys()
                            .filter(|t| !searched.contains(t) && t.starts_with(prefix)),
                    );
                }
            }
            set.into_iter().collect()
        };
        out.truncate(limit);
        Ok(json!(out))
    };
    run()
        .map(|v| json_ok(&params, &v))
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET|POST /tags/autoComplete/values?tag=t[&expr=…][&valuePrefix=p][&limit=n]`: values of
/// `tag` among series matching the expressions, sorted.
pub async fn autocomplete_values(State(state): State<AppState>, params: Params) -> Response {
    let run = || -> Result<Value, TagError> {
        let Some(tag) = params
            .get("tag")
            .filter(|t| !t.is_empty())
            .map(str::to_string)
        else {
            return Err(json_error(StatusCode::BAD_REQUEST, "no tag specified"));
        };
        let limit = limit_of(&params, Some(AUTOCOMPLETE_LIMIT))?.unwrap_or(AUTOCOMPLETE_LIMIT);
        let prefix = params.get("valuePrefix").unwrap_or("");
        let e = exprs(&params);
        let mut out: Vec<String> = if e.is_empty() {
            state
                .store
                .tags
                .values(&tag)
                .into_iter()
                .map(|(v, _)| v)
                .filter(|v| v.starts_with(prefix))
                .collect()
        } else {
            let mut with_tag = e.clone();
            with_tag.push(format!("{tag}!="));
            let mut set = std::collections::BTreeSet::new();
            for s in find(&state, &with_tag)? {
                if let Some(v) = parse_tagged(&s).and_then(|t| t.get(&tag).cloned()) {
                    if v.starts_with(prefix) {
                        set.insert(v);
                    }
                }
            }
            set.into_iter().collect()
        };
        out.truncate(limit);
        Ok(json!(out))
    };
    run()
        .map(|v| json_ok(&params, &v))
        .unwrap_or_else(IntoResponse::into_response)
}

fn paths(params: &Params) -> Vec<String> {
    let p = params.all("path");
    let p = if p.is_empty() {
        params.all("path[]")
    } else {
        p
    };
    p.into_iter().map(str::to_string).collect()
}

fn register(state: &AppState, path: &str) -> Result<String, TagError> {
    let n =
        normalize(path).map_err(|e| json_error(StatusCode::BAD_REQUEST, format!("{path}: {e}")))?;
    if !n.contains(';') {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            format!("{path}: not a tagged series (name;tag=value)"),
        ));
    }
    state.store.tags.insert(&n);
    Ok(n.into_owned())
}

/// `POST /tags/tagSeries?path=name;tag=value`: registers a series; answers its normalized path.
pub async fn tag_series(State(state): State<AppState>, params: Params) -> Response {
    let Some(path) = params.get("path").filter(|p| !p.is_empty()) else {
        return json_error(StatusCode::BAD_REQUEST, "no path specified").into_response();
    };
    match register(&state, path) {
        Ok(n) => json_ok(&params, &json!(n)),
        Err(r) => r.into_response(),
    }
}

/// `POST /tags/tagMultiSeries?path=…&path=…`: registers several; answers their paths.
pub async fn tag_multi_series(State(state): State<AppState>, params: Params) -> Response {
    let list = paths(&params);
    if list.is_empty() {
        return json_error(StatusCode::BAD_REQUEST, "no paths specified").into_response();
    }
    let mut out = Vec::new();
    for p in &list {
        match register(&state, p) {
            Ok(n) => out.push(n),
            Err(r) => return r.into_response(),
        }
    }
    json_ok(&params, &json!(out))
}

/// `POST /tags/delSeries?path=…`: forgets series in the tag index (their files stay); `true`.
pub async fn del_series(State(state): State<AppState>, params: Params) -> Response {
    let list = paths(&params);
    if list.is_empty() {
        return json_error(StatusCode::BAD_REQUEST, "no path specified").into_response();
    }
    for p in &list {
        if let Ok(n) = normalize(p) {
            state.store.tags.remove(&n);
        }
    }
    json_ok(&params, &json!(true))
}
