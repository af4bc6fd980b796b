//! The HTTP API: graphite-web's endpoints (`/render`, `/metrics/*`, `/functions`, `/tags/*`,
//! `/events/*`, `/version`) on axum, so Grafana's Graphite data source works unchanged.
//!
//! Handlers parse parameters as graphite-web does, run evaluation on the blocking pool
//! (whisper reads are plain file I/O), and map errors to statuses: 400 for a bad request
//! (saying what and where), 401/403 from `auth` ([`Access`]), 404, 413 for limits, 503 for
//! timeouts. Writes to the store only through the lifecycle routes (`lifecycle`: delete,
//! rename, stale), which the store carries out; `POST /events/` writes only the event store,
//! [`crate::events`].
//!
//! The write routes (`POST /events/`, `/tags/tagSeries`, `/tags/tagMultiSeries`,
//! `/tags/delSeries`, `POST /metrics/delete`, `/metrics/rename`, `/metrics/stale`; and in
//! `silences`, `POST /api/silences`, `DELETE /api/silences/{id}` and the rule page's silence
//! forms) are declared apart, under `auth::guard_writes`; a route that changes anything must
//! be added there, never among the reads.

mod ack;
mod auth;
mod events;
mod formats;
mod functions;
mod health;
mod lifecycle;
mod metrics;
mod msgpack;
mod params;
mod pickle;
mod render;
mod silences;
mod state_chart;
mod status;
mod stream;
mod tags;

pub use ack::{link_router as ack_link_router, write_router as ack_write_router, AckState};
pub use auth::{hash_password, Access};
pub use health::router as health_router;
pub use params::Params;
pub use silences::{router as silences_router, SilencesState};
pub use status::{router as status_router, StatusState};

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono_tz::Tz;

use crate::config::Settings;
use crate::events::EventStore;
use crate::query::{Cluster, ClusterSource, LocalSource};
use crate::query::{EvalError, MemoryBudget, QueryLimits};
use crate::store::Store;

/// What the API needs beyond the store.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Time zone when a request gives none.
    pub tz: Tz,
    /// Evaluation limits.
    pub limits: QueryLimits,
    /// Longest a request may take.
    pub timeout: Duration,
    /// Most targets per request.
    pub max_targets: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// The render memory budget, bytes (`query.max_memory`).
    pub max_memory: usize,
    /// Who may write, and read (`[http]` credentials, loopback rule).
    pub access: Arc<Access>,
    /// `[query] graph_templates`, read (the server loads it at start; `None`: glyph.py's
    /// built-in defaults for every `template`).
    pub graph_templates: Option<Arc<crate::graph::GraphTemplates>>,
}

impl ApiConfig {
    /// The API settings of `[query]`: zone, limits, timeout, targets and body size.
    pub fn from_settings(settings: &Settings) -> ApiConfig {
        let q = &settings.query;
        ApiConfig {
            tz: q.timezone,
            limits: QueryLimits::from_settings(q),
            timeout: q.request_timeout,
            max_targets: q.max_targets,
            max_body_bytes: q.max_body_bytes,
            max_memory: q.memory_budget(),
            access: Arc::new(Access::from_settings(&settings.http)),
            graph_templates: None,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tz: Tz::UTC,
            limits: QueryLimits::default(),
            timeout: Duration::from_secs(60),
            max_targets: 100,
            max_body_bytes: 1 << 20,
            max_memory: 512 << 20,
            access: Arc::new(Access::open()),
            graph_templates: None,
        }
    }
}

/// How long a render waits for room in the memory budget before it gets a 503.
pub const MEMORY_WAIT: Duration = Duration::from_secs(5);

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The store (read only here).
    pub store: Arc<Store>,
    /// The event store, for `/events` and `events()`; `None` where none was opened (then
    /// `/events` answers 503 and `events()` refuses).
    pub events: Option<Arc<EventStore>>,
    /// Settings.
    pub config: Arc<ApiConfig>,
    /// Renders evaluated at once (4 per core): more wait their turn (within the request
    /// timeout), so a burst of heavy requests cannot take memory without bound.
    pub renders: Arc<tokio::sync::Semaphore>,
    /// What all renders together may hold in series data (`query.max_memory`).
    pub memory: Arc<MemoryBudget>,
    /// The other servers of `[cluster]`, which finds and renders also ask unless the request
    /// says `local=1`; `None` without federation.
    pub cluster: Option<Arc<Cluster>>,
}

impl AppState {
    /// State over `store` with `config`.
    pub fn new(store: Arc<Store>, config: ApiConfig) -> AppState {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        AppState {
            store,
            events: None,
            renders: Arc::new(tokio::sync::Semaphore::new(4 * cores)),
            memory: MemoryBudget::new(config.max_memory, MEMORY_WAIT),
            config: Arc::new(config),
            cluster: None,
        }
    }

    /// The same state answering for the cluster `cluster` (finds and renders without
    /// `local=1` ask its servers too).
    pub fn with_cluster(self, cluster: Option<Arc<Cluster>>) -> AppState {
        AppState { cluster, ..self }
    }

    /// The same state with the event store `events`.
    pub fn with_events(self, events: Arc<EventStore>) -> AppState {
        AppState {
            events: Some(events),
            ..self
        }
    }

    /// What `/render` evaluates against on this server alone: the metric store and the
    /// event store.
    pub fn source(&self) -> LocalSource {
        LocalSource {
            metrics: self.store.clone(),
            events: self.events.clone(),
        }
    }

    /// The source of one request over the whole cluster, or `None` when this server answers
    /// alone: without `[cluster] servers`, or when the request has `local=1` (another server
    /// asking, as graphite-web's `localOnly`: its answer must hold this server's data only,
    /// so that nobody asks further).
    pub fn cluster_source(&self, params: &Params) -> Option<ClusterSource> {
        if params.get("local") == Some("1") {
            return None;
        }
        let cluster = self.cluster.clone()?;
        Some(ClusterSource::for_request(Arc::new(self.source()), cluster))
    }
}

/// The header of an answer that lacks some server's share:
/// `X-Carbonhound-Partial: 10.0.0.2:8080: connection refused; 10.0.0.3:8080: no complete
/// answer within 5s`.
pub const PARTIAL_HEADER: &str = "x-carbonhound-partial";

/// Marks `response` partial when `source` missed a server's share: the
/// [`PARTIAL_HEADER`] (`server: reason` each, `; `-separated, printable ASCII, at most
/// 1,000 characters) and one more partial answer counted in `/health`.
pub fn mark_partial(response: &mut Response, source: Option<&ClusterSource>) {
    let Some(source) = source else {
        return;
    };
    let missing = source.partial();
    if missing.is_empty() {
        return;
    }
    source.cluster().count_partial();
    let mut text = String::new();
    for (i, (server, reason)) in missing.iter().enumerate() {
        let item = format!("{server}: {reason}");
        if !text.is_empty() && text.len() + item.len() > 1000 {
            text.push_str(&format!("; … and {} more", missing.len() - i));
            break;
        }
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&item);
    }
    let text: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if let Ok(v) = header::HeaderValue::from_str(&text) {
        response.headers_mut().insert(PARTIAL_HEADER, v);
    }
}

/// An error response: a status and a plain-text message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the person who sent the request.
    pub message: String,
}

impl ApiError {
    /// HTTP 400.
    pub fn bad_request(message: String) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
    /// HTTP 404.
    pub fn not_found(message: String) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message,
        }
    }
    /// HTTP 413.
    pub fn too_large(message: String) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message,
        }
    }
    /// HTTP 503.
    pub fn unavailable(message: String) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message,
        }
    }
    /// HTTP 500.
    pub fn internal(message: String) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message,
        }
    }
}

impl From<EvalError> for ApiError {
    fn from(e: EvalError) -> Self {
        match e {
            EvalError::BadRequest(m) => ApiError::bad_request(m),
            EvalError::TooLarge(m) => ApiError::too_large(m),
            EvalError::Timeout(m) => ApiError::unavailable(m),
            EvalError::Unreadable(m) => ApiError::internal(m),
            EvalError::Busy(m) => ApiError::unavailable(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response()
    }
}

/// A 200 response with a content type.
pub fn respond(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body.into())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The layer every route runs under: a panic in a handler is logged (with its message) and
/// answered with a generic 500, the connection and the server living on. Handlers that run
/// blocking work (`/render`) also turn a panicked task into that 500 themselves.
pub fn catch_panic(
) -> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send + 'static>) -> Response>
{
    fn answer(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        tracing::error!("request handler panicked: {what}");
        ApiError::internal("internal error (logged on the server)".into()).into_response()
    }
    tower_http::catch_panic::CatchPanicLayer::custom(answer as fn(_) -> Response)
}

/// A JSON answer as graphite-web gives it: `application/json`, or with a `jsonp` parameter
/// `callback(body)` as `text/javascript`.
pub fn respond_json(params: &params::Params, body: String) -> Response {
    match params.get("jsonp").filter(|j| !j.is_empty()) {
        Some(cb) => respond("text/javascript", format!("{cb}({body})")),
        None => respond("application/json", body),
    }
}

/// JSON text of `value`, indented when the request has a non-empty `pretty` parameter.
pub fn json_text(params: &params::Params, value: &serde_json::Value) -> String {
    let pretty = params.get("pretty").is_some_and(|p| !p.is_empty());
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    text.unwrap_or_default()
}

async fn version() -> Response {
    respond("text/plain", "1.1.8")
}

/// `app` (these routes merged with `/health` and the status pages) under the layer that,
/// with `[http].protect_reads`, asks every request for credentials; without it, a no-op.
pub fn guard_reads(app: Router, access: &Arc<Access>) -> Router {
    app.layer(axum::middleware::from_fn_with_state(
        access.clone(),
        auth::guard_reads,
    ))
}

/// The routes that change something, each under [`auth::guard_writes`].
fn write_routes(access: Arc<Access>) -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route("/events", post(events::post))
        .route("/events/", post(events::post))
        .route("/tags/tagSeries", post(tags::tag_series))
        .route("/tags/tagMultiSeries", post(tags::tag_multi_series))
        .route("/tags/delSeries", post(tags::del_series))
        .route("/metrics/delete", post(lifecycle::delete))
        .route("/metrics/rename", post(lifecycle::rename))
        .route("/metrics/stale", post(lifecycle::stale_post))
        .route_layer(axum::middleware::from_fn_with_state(
            access,
            auth::guard_writes,
        ))
}

/// The graphite-web routes.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/render", get(render::render).post(render::render))
        .route("/render/", get(render::render).post(render::render))
        .route("/metrics", get(metrics::find).post(metrics::find))
        .route("/metrics/", get(metrics::find).post(metrics::find))
        .route("/metrics/find", get(metrics::find).post(metrics::find))
        .route("/metrics/find/", get(metrics::find).post(metrics::find))
        .route(
            "/metrics/expand",
            get(metrics::expand).post(metrics::expand),
        )
        .route(
            "/metrics/expand/",
            get(metrics::expand).post(metrics::expand),
        )
        .route(
            "/metrics/index.json",
            get(metrics::index_json).post(metrics::index_json),
        )
        .route("/metrics/stale", get(lifecycle::stale))
        .route("/functions", get(functions::list))
        .route("/functions/", get(functions::list))
        .route("/functions/{name}", get(functions::one))
        .route("/tags", get(tags::list))
        .route("/tags/", get(tags::list))
        .route(
            "/tags/findSeries",
            get(tags::find_series).post(tags::find_series),
        )
        .route(
            "/tags/autoComplete/tags",
            get(tags::autocomplete_tags).post(tags::autocomplete_tags),
        )
        .route(
            "/tags/autoComplete/values",
            get(tags::autocomplete_values).post(tags::autocomplete_values),
        )
        .route("/tags/{tag}", get(tags::details))
        .route("/events", get(events::list))
        .route("/events/", get(events::list))
        .route(
            "/events/get_data",
            get(events::get_data).post(events::get_data),
        )
        .route("/events/{id}", get(events::detail))
        .route("/events/{id}/", get(events::detail))
        .route("/version", get(version))
        .route("/version/", get(version))
        .merge(write_routes(state.config.access.clone()))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
