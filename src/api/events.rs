//! graphite-web's events endpoints (its `graphite/events` views), for deploy markers and
//! Grafana's Graphite annotations:
//!
//! - `POST /events/` (or `/events`): a JSON object `{"what", "tags", "when", "data"}` → 200 with
//!   an empty body; 400 `{"error": …}` for a body that is not one, bad tags (graphite-web's
//!   message), a missing `what` or a bad `when`; 400/413 beyond the limits of
//!   [`crate::events`]; 507 when the store holds `[events].max_events` already. Who may post
//!   is decided before this handler runs (`api::auth`).
//! - `GET /events/get_data?from=&until=&tags=a b&set=union|intersection[&jsonp=cb]`: the
//!   matching events as graphite-web's JSON list, oldest first.
//! - `GET /events/<id>` with `Accept: application/json`: the event as graphite-web's
//!   `model_to_dict` JSON; 404 `{"error": "Event matching query does not exist"}`. Without
//!   that Accept, a small HTML page.
//! - `GET /events/`: the events of the same query parameters as an HTML table (graphite-web's
//!   events page), or the `get_data` JSON when `Accept` asks for `application/json`.
//!
//! `from`/`until` are read by `parse_at_time` in `query.timezone` (graphite-web's
//! `settings.TIME_ZONE`), from the query string only as graphite-web does; `from` defaults to
//! the epoch and `until` to now. Database work runs on the blocking pool. Errors are JSON
//! `{"error": …}` with 400, 404, 413, 500, 507, or 503 when no event store is open.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::TimeZone;
use chrono_tz::Tz;

use super::params::Params;
use super::{respond, AppState};
use crate::events::now_micros;
use crate::events::{
    Event, EventError, EventStore, NewEvent, SetOperation, MAX_ANSWER_BYTES, MAX_EVENTS_PER_ANSWER,
};
use crate::python::json_push_str as push_py_json_str;
use crate::query::parse_at_time;

/// A JSON error answer `{"error": message}`, as graphite-web's `_jsonError`.
fn json_error(status: StatusCode, message: &str) -> Response {
    json_error_as(status, message, false)
}

/// [`json_error`], indented by two with `pretty` (graphite-web's `jsonResponse`).
fn json_error_as(status: StatusCode, message: &str, pretty: bool) -> Response {
    let mut body = String::from(if pretty {
        "{\n  \"error\": "
    } else {
        "{\"error\": "
    });
    push_py_json_str(&mut body, message);
    body.push_str(if pretty { "\n}" } else { "}" });
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(e: EventError) -> Response {
    let status = match e {
        EventError::BadRequest(_) => StatusCode::BAD_REQUEST,
        EventError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        EventError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
        EventError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("{e}");
    }
    json_error(status, &e.to_string())
}

/// Runs `f` on the blocking pool with the open event store.
async fn with_store(
    state: &AppState,
    f: impl FnOnce(&EventStore) -> Result<Response, EventError> + Send + 'static,
) -> Response {
    let Some(store) = state.events.clone() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event store is not open",
        );
    };
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(e),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("event task failed: {e}"),
        ),
    }
}

/// The query of `get_data` and the events page: the time range in microseconds (both ends
/// included) and the tags with their set operation.
struct EventQuery {
    from_us: i64,
    until_us: i64,
    tags: Option<Vec<String>>,
    op: SetOperation,
}

impl EventQuery {
    /// Reads graphite-web's `fetch(request)` parameters from the query string.
    fn parse(query: Option<&str>, tz: Tz) -> Result<EventQuery, EventError> {
        let get = Params::from_request(query, &HeaderMap::new(), b"");
        let now_us = now_micros();
        let now = now_us.div_euclid(1_000_000);
        // graphite-web's `parseATTime` keeps the microseconds of "now" in times relative to
        // it (`now`, `-1h`): a time that moves with `now` gets them too.
        let sub_second = now_us.rem_euclid(1_000_000);
        let time = |key: &str| -> Result<Option<i64>, EventError> {
            get.get(key)
                .map(|v| {
                    let bad = |e| EventError::BadRequest(format!("invalid {key} '{v}': {e}"));
                    let t = parse_at_time(v, &tz, now).map_err(bad)?;
                    let relative = parse_at_time(v, &tz, now + 1).map_err(bad)? == t + 1;
                    let us = t.saturating_mul(1_000_000);
                    Ok(if relative {
                        us.saturating_add(sub_second)
                    } else {
                        us
                    })
                })
                .transpose()
        };
        Ok(EventQuery {
            from_us: time("from")?.unwrap_or(0),
            until_us: time("until")?.unwrap_or(now_us),
            // graphite-web: `request.GET.get('tags').split(' ')`.
            tags: get
                .get("tags")
                .map(|t| t.split(' ').map(str::to_string).collect()),
            op: SetOperation::from_param(get.get("set")),
        })
    }

    /// graphite-web's `fetch`: the matching events, oldest first, within the answer limits.
    fn fetch(self, store: &EventStore) -> Result<Vec<Event>, EventError> {
        let tags = self.tags.map(|t| store.tag_query(t, self.op));
        store.find_events(
            self.from_us,
            self.until_us,
            tags.as_ref(),
            MAX_EVENTS_PER_ANSWER,
            MAX_ANSWER_BYTES,
        )
    }
}

/// graphite-web's `json.dumps(fetch(request), cls=EventEncoder)`.
fn events_json(events: &[Event]) -> String {
    let mut out = String::from("[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        e.push_as_dict_json(&mut out);
    }
    out.push(']');
    out
}

/// `GET|POST /events/get_data`: the matching events as JSON, or `callback(…)` as
/// `text/javascript` when the request has a `jsonp` parameter (query string or form).
pub async fn get_data(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let all = Params::from_request(query.as_deref(), &headers, &body);
    let jsonp = all
        .has("jsonp")
        .then(|| all.get("jsonp").unwrap_or("").to_string());
    let tz = state.config.tz;
    with_store(&state, move |store| {
        let events = EventQuery::parse(query.as_deref(), tz)?.fetch(store)?;
        let json = events_json(&events);
        Ok(match jsonp {
            Some(cb) => respond("text/javascript", format!("{cb}({json})")),
            None => respond("application/json", json),
        })
    })
    .await
}

/// `POST /events/`: stores a posted event (see [`NewEvent::from_json`]); 200, empty body.
pub async fn post(State(state): State<AppState>, body: Bytes) -> Response {
    let new = match NewEvent::from_json(&body) {
        Ok(n) => n,
        Err(e) => return error_response(e),
    };
    with_store(&state, move |store| {
        let event = store.add(new)?;
        tracing::debug!("event {} stored: {}", event.id, event.what);
        Ok(StatusCode::OK.into_response())
    })
    .await
}

/// Whether the request asks for JSON: its first `Accept` media type is `application/json`
/// (graphite-web checks for exactly that header value).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|first| first.split(';').next().unwrap_or("").trim())
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
}

/// `GET /events/<id>`: the event as JSON (with `Accept: application/json`; `pretty` indents
/// it) or as an HTML page; 404 for an unknown id.
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    const MISSING: &str = "Event matching query does not exist";
    let json = wants_json(&headers);
    let pretty = Params::from_request(query.as_deref(), &HeaderMap::new(), b"")
        .get("pretty")
        .is_some_and(|p| !p.is_empty());
    // graphite-web's route takes digits only.
    let id = match id.parse::<u64>() {
        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return json_error_as(StatusCode::NOT_FOUND, MISSING, pretty),
    };
    let tz = state.config.tz;
    with_store(&state, move |store| {
        let Some(event) = store.get(id)? else {
            return Ok(if json {
                json_error_as(StatusCode::NOT_FOUND, MISSING, pretty)
            } else {
                (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    page(MISSING, &format!("<p>{MISSING}</p>")),
                )
                    .into_response()
            });
        };
        Ok(if json {
            respond("application/json", event.model_to_dict_json(pretty))
        } else {
            let body = format!(
                "<table><tr><td>when</td><td>{}</td></tr><tr><td>tags</td><td>{}</td></tr>\
                 <tr><td>data</td><td>{}</td></tr></table>",
                escape(&local_time(&event, tz)),
                escape(&event.tags),
                escape(&event.data)
            );
            respond("text/html; charset=utf-8", page(&event.what, &body))
        })
    })
    .await
}

/// `GET /events/`: the events of `from`/`until`/`tags`/`set` (all of them by default, within
/// the answer limits) as an HTML table, or as `get_data`'s JSON for `Accept: application/json`.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&headers);
    let tz = state.config.tz;
    with_store(&state, move |store| {
        let events = EventQuery::parse(query.as_deref(), tz)?.fetch(store)?;
        if json {
            return Ok(respond("application/json", events_json(&events)));
        }
        let mut body = String::new();
        if events.is_empty() {
            body.push_str(
                "<p>No events. Add events by posting, e.g.<br><code>curl -X POST \
                 http://HOST/events/ -d '{\"what\": \"Something Interesting\", \
                 \"tags\": \"tag1\"}'</code></p>",
            );
        } else {
            body.push_str("<table><tr><th>when</th><th>what</th><th>tags</th></tr>");
            for e in &events {
                body.push_str(&format!(
                    "<tr><td>{}</td><td><a href=\"/events/{}\">{}</a></td><td>{}</td></tr>",
                    escape(&local_time(e, tz)),
                    e.id,
                    escape(&e.what),
                    escape(&e.listed_tags().join(" "))
                ));
            }
            body.push_str("</table>");
        }
        Ok(respond("text/html; charset=utf-8", page("Events", &body)))
    })
    .await
}

/// An event's time as graphite-web's pages show it (`H:i:s D d M Y` in the server's zone).
fn local_time(e: &Event, tz: Tz) -> String {
    match tz.timestamp_opt(e.when_seconds(), 0).single() {
        Some(t) => t.format("%H:%M:%S %a %d %b %Y").to_string(),
        None => e.when_seconds().to_string(),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:sans-serif;margin:50px;max-width:1200px}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         </style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}
