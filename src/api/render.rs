//! `/render`: graphite-web's render API. Targets from the query string and a POST form,
//! `from`/`until`/`now`/`tz`, `format` (`json`, `csv`, `raw`, `pickle`, `msgpack`, `png`,
//! `svg`; PNG when absent), `maxDataPoints`, `noNullPoints`, `jsonp`, `xFilesFactor`,
//! `template[…]`, and the graph parameters.
//!
//! With `[cluster] servers` the targets are evaluated over the whole cluster
//! ([`crate::query::ClusterSource`]) unless the request has `local=1` (another server
//! asking); an answer missing a server's share carries [`super::PARTIAL_HEADER`].

use std::fmt::Write;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use chrono_tz::Tz;

use super::formats::{self, Format, Writer};
use super::params::Params;
use super::stream;
use super::{respond, ApiError, AppState};
use crate::graph::{render_png, render_svg, GraphError, GraphParams, GraphType};
use crate::query::parse_at_time;
use crate::query::{
    evaluate_within, series_bytes, MetricSource, QueryError, Request, Reservation, Series,
};
use crate::store::unix_now;

/// The time range and zone of a request, as graphite-web's `parseOptions` reads them: `tz`,
/// `now`, `until` (default `now`), `from` (default `-1d`); start and end are the smaller and
/// larger of from/until (so `until` before `from` swaps them, as graphite-web does), and an
/// empty range is a 400 (graphite-web's "Invalid empty time range" assertion, a 500 there).
///
/// Where graphite-web quietly falls back to its default zone for an unknown `tz`, this is a
/// 400 naming the zone: a typo would otherwise shift every time reference of the request
/// without a word. An empty `tz` means the default, as graphite-web's `default` values do.
pub fn time_range(params: &Params, default_tz: Tz) -> Result<(i64, i64, i64, Tz), ApiError> {
    let tz = match params.get("tz").filter(|t| !t.is_empty()) {
        None => default_tz,
        Some(t) => t.parse::<Tz>().map_err(|_| {
            ApiError::bad_request(format!(
                "unknown time zone tz={:?}: give an IANA zone name such as UTC or Europe/Paris",
                t.chars().take(80).collect::<String>()
            ))
        })?,
    };
    let real_now = unix_now();
    let bad = |what: &str, v: &str, e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!("invalid {what} '{v}': {e}"))
    };
    let now = match params.get("now") {
        Some(v) => parse_at_time(v, &tz, real_now).map_err(|e| bad("now", v, &e))?,
        None => real_now,
    };
    let until = match params.get("until") {
        Some(v) if !v.is_empty() => parse_at_time(v, &tz, now).map_err(|e| bad("until", v, &e))?,
        _ => now,
    };
    let from = match params.get("from") {
        Some(v) if !v.is_empty() => parse_at_time(v, &tz, now).map_err(|e| bad("from", v, &e))?,
        _ => now - 86400,
    };
    let (start, end) = (from.min(until), from.max(until));
    if start == end {
        return Err(ApiError::bad_request("Invalid empty time range".into()));
    }
    Ok((start, end, now, tz))
}

/// Builds the evaluation request of a `/render` call.
pub fn build_request(params: &Params, state: &AppState) -> Result<Request, ApiError> {
    let mut targets: Vec<String> = params
        .all("target")
        .into_iter()
        .map(str::to_string)
        .collect();
    if targets.is_empty() {
        targets = params
            .all("target[]")
            .into_iter()
            .map(str::to_string)
            .collect();
    }
    if targets.len() > state.config.max_targets {
        return Err(ApiError::bad_request(format!(
            "{} targets in one request; at most {} allowed (query.max_targets)",
            targets.len(),
            state.config.max_targets
        )));
    }
    let (start, end, now, tz) = time_range(params, state.config.tz)?;
    let x_files_factor = match params.get("xFilesFactor") {
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| ApiError::bad_request(format!("invalid xFilesFactor '{v}'")))?,
        None => 0.0,
    };
    let max_data_points = max_data_points(params)?;
    let template = params
        .pairs()
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("template[")
                .and_then(|r| r.strip_suffix(']'))
                .map(|n| (n.to_string(), v.clone()))
        })
        .collect();
    Ok(Request {
        targets,
        start,
        end,
        now,
        tz,
        x_files_factor,
        max_data_points,
        template,
        timeout: state.config.timeout,
    })
}

/// `maxDataPoints` as graphite-web reads it: a string of digits is the limit, anything else
/// that is not a number is ignored (graphite-web's `isdigit()` check). A number that is not a
/// positive integer (`0`, `-5`, `1.5`) is a 400: graphite-web fails on 0 with a division by zero.
fn max_data_points(params: &Params) -> Result<Option<usize>, ApiError> {
    let Some(v) = params.get("maxDataPoints").map(str::trim) else {
        return Ok(None);
    };
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return match v.parse::<usize>() {
            Ok(0) | Err(_) => Err(ApiError::bad_request(format!(
                "maxDataPoints={v} is not a positive integer"
            ))),
            Ok(n) => Ok(Some(n)),
        };
    }
    if v.parse::<f64>().is_ok() {
        return Err(ApiError::bad_request(format!(
            "maxDataPoints={v} is not a positive integer"
        )));
    }
    Ok(None)
}

fn output_format(params: &Params) -> String {
    let mut format = String::new();
    if params.has("pickle") {
        format = "pickle".into();
    }
    if params.has("rawData") {
        format = "raw".into();
    }
    if let Some(f) = params.get("format") {
        format = f.to_string();
    }
    format
}

fn render_blocking(state: &AppState, params: &Params) -> Result<Response, ApiError> {
    let format = output_format(params);
    if !matches!(
        format.as_str(),
        "" | "json" | "csv" | "raw" | "pickle" | "msgpack" | "png" | "svg"
    ) {
        return Err(ApiError::bad_request(format!(
            "unknown format '{format}' (json, csv, raw, pickle, msgpack, png or svg)"
        )));
    }
    let graph = if matches!(format.as_str(), "" | "png" | "svg") {
        Some(
            GraphParams::from_query_with(params.pairs(), state.config.graph_templates.as_deref())
                .map_err(ApiError::bad_request)?,
        )
    } else {
        None
    };
    let mut req = build_request(params, state)?;
    let slices = match &graph {
        Some(g) if g.graph_type == GraphType::Pie => pie_literals(&mut req)?,
        _ => Vec::new(),
    };
    let local = state.source();
    let cluster = state.cluster_source(params);
    let source: &dyn MetricSource = match &cluster {
        Some(c) => c,
        None => &local,
    };
    let (mut series, failures, reservation) =
        evaluate_within(source, &state.config.limits, &req, &state.memory).map_err(
            |e| match e {
                QueryError::Parse(p) => ApiError::bad_request(p.to_string()),
                QueryError::Eval(e) => ApiError::from(e),
            },
        )?;
    if !slices.is_empty() {
        series.splice(0..0, slices);
    }
    let mut response = answer(params, &req, graph, &format, &mut series, reservation)?;
    super::mark_partial(&mut response, cluster.as_ref());
    if !failures.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&unreadable_warning(&failures)) {
            response.headers_mut().insert(WARNING_HEADER, v);
        }
    }
    Ok(response)
}

/// A graph that cannot be drawn: the request's fault (400) for its axes, ours otherwise.
fn graph_error(e: GraphError) -> ApiError {
    match e {
        GraphError::Axis(m) => ApiError::bad_request(m),
        GraphError::Drawing(m) => ApiError::internal(m),
    }
}

/// A pie's literal slices: graphite-web's views read a target holding `:` as `name:value`
/// (a slice of that value) rather than evaluating it. They are taken out of `req` and drawn
/// as one-value series; graphite-web keeps them in target order among the evaluated ones,
/// carbonhound puts them first.
fn pie_literals(req: &mut Request) -> Result<Vec<Series>, ApiError> {
    let mut slices = Vec::new();
    let mut rest = Vec::new();
    for t in std::mem::take(&mut req.targets) {
        match t.split_once(':') {
            Some((name, value)) => {
                let v: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("Invalid target '{t}'")))?;
                let step = (req.end - req.start).max(1);
                slices.push(Series::new(
                    name,
                    req.start,
                    req.start + step,
                    step,
                    vec![Some(v)],
                    0.0,
                ));
            }
            None => rest.push(t),
        }
    }
    req.targets = rest;
    Ok(slices)
}

/// The header a render answer carries when some series were left out because their files
/// could not be read: `X-Carbonhound-Warning: 2 series unreadable, left out: a.b (…); c.d (…)`.
pub const WARNING_HEADER: &str = "x-carbonhound-warning";

/// The warning text for `failures` (`name: reason` each): the count, then as many as fit in
/// 1,000 characters, as printable ASCII (a header value may hold nothing else).
fn unreadable_warning(failures: &[String]) -> String {
    let mut text = format!("{} series unreadable, left out:", failures.len());
    for (i, f) in failures.iter().enumerate() {
        if text.len() + f.len() > 1000 {
            text.push_str(&format!(" … and {} more", failures.len() - i));
            break;
        }
        text.push_str(if i == 0 { " " } else { "; " });
        text.push_str(f);
    }
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Answers with more datapoints than this are streamed (see [`super::stream`]); smaller ones
/// are built whole, which is quicker for the common small request.
const STREAM_ABOVE_POINTS: usize = 64 * 1024;

/// The answer of one render in its format. `reservation` covers `series` in the render
/// memory budget: it is held until they are written, and a streamed answer gives each
/// series' share back as it is written.
fn answer(
    params: &Params,
    req: &Request,
    graph: Option<GraphParams>,
    format: &str,
    series: &mut Vec<Series>,
    mut reservation: Reservation,
) -> Result<Response, ApiError> {
    let mut series = std::mem::take(series);
    let jsonp = params.get("jsonp").filter(|j| !j.is_empty());
    let (kind, content_type) = match format {
        "json" => {
            if let Some(mdp) = req.max_data_points {
                formats::apply_max_data_points(&mut series, mdp);
            }
            let no_null_points = params.has("noNullPoints");
            let ct = if jsonp.is_some() {
                "text/javascript"
            } else {
                "application/json"
            };
            (Format::Json { no_null_points }, ct)
        }
        "csv" => (Format::Csv, "text/csv"),
        "raw" => (Format::Raw, "text/plain"),
        "pickle" => (Format::Pickle, "application/pickle"),
        // The cluster protocol's other wire format: built whole (a front reads it whole too).
        "msgpack" => {
            return Ok(respond(
                super::msgpack::CONTENT_TYPE,
                super::msgpack::series(&series),
            ))
        }
        "svg" => {
            let svg = render_svg(&series, graph.as_ref().expect("graph params"), req.tz)
                .map_err(graph_error)?;
            return Ok(match jsonp {
                Some(cb) => respond(
                    "text/javascript",
                    format!("{cb}({})", serde_json::to_string(&svg).unwrap_or_default()),
                ),
                None => respond("image/svg+xml", svg),
            });
        }
        _ => {
            let png = render_png(&series, graph.as_ref().expect("graph params"), req.tz)
                .map_err(graph_error)?;
            return Ok(respond("image/png", png));
        }
    };
    // The JSONP wrapper only ever goes around JSON (graphite-web's `jsonp` parameter).
    let wrap = matches!(kind, Format::Json { .. }).then(|| jsonp.map(str::to_string));
    let wrap = wrap.flatten();
    let points: usize = series.iter().map(|s| s.values.len()).sum();
    if points <= STREAM_ABOVE_POINTS {
        let body = formats::whole(kind, &series, &req.tz);
        let body = match wrap {
            Some(cb) => [cb.as_bytes(), b"(", &body, b")"].concat(),
            None => body,
        };
        return Ok(respond(content_type, body));
    }
    let tz = req.tz;
    Ok(stream::streamed(content_type, move |out| {
        if let Some(cb) = &wrap {
            let _ = write!(out, "{cb}(");
        }
        let mut w = Writer::new(kind, tz);
        w.start(out);
        for s in series {
            w.series(out, &s)?;
            let bytes = series_bytes(s.values.len());
            drop(s);
            reservation.release(bytes);
        }
        w.end(out);
        if wrap.is_some() {
            let _ = write!(out, ")");
        }
        Ok(())
    }))
}

/// The `/render` handler (GET and POST).
pub async fn render(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let timeout = state.config.timeout + Duration::from_secs(1);
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.pairs().iter().take(50))
        .finish()
        .chars()
        .take(2000)
        .collect();
    let run = async move {
        let _turn = state.renders.clone().acquire_owned().await;
        tokio::task::spawn_blocking(move || render_blocking(&state, &params)).await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            // A panic in the render task: logged here with what was asked, never shown.
            tracing::error!("render task failed ({e}); request: {query}");
            Err(ApiError::internal(
                "internal error while rendering (logged on the server)".into(),
            ))
        }
        Err(_) => Err(ApiError::unavailable(
            "request took longer than query.request_timeout".into(),
        )),
    }
}
