//! `/functions` and `/functions/<name>`: the registry as graphite-web's JSON (what Grafana's
//! function editor reads). Defaults of infinity are written `1e9999`, which is valid JSON,
//! where graphite-web 1.1.8 writes a bare `Infinity`.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Map, Value};

use super::params::Params;
use super::{json_text, respond_json, ApiError, AppState};
use crate::query::functions;

fn encode(value: &Value, params: &Params) -> Response {
    let text = json_text(params, value)
        .replace("\"default\":\"inf\"", "\"default\":1e9999")
        .replace("\"default\": \"inf\"", "\"default\": 1e9999");
    respond_json(params, text)
}

/// `/functions[?grouped=1][&group=Name]`.
pub async fn list(State(_): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let grouped = params
        .get("grouped")
        .is_some_and(|g| matches!(g.to_ascii_lowercase().as_str(), "1" | "true"));
    let group = params.get("group");
    let mut out = Map::new();
    for f in functions::all() {
        if group.is_some_and(|g| g != f.group) {
            continue;
        }
        if grouped {
            let entry = out
                .entry(f.group.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(f.name.to_string(), f.to_json());
            }
        } else {
            out.insert(f.name.to_string(), f.to_json());
        }
    }
    Ok(encode(&Value::Object(out), &params))
}

/// `/functions/<name>`: one function, 404 when unknown.
pub async fn one(
    State(_): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    match functions::lookup(&name) {
        Some(f) => Ok(encode(&f.to_json(), &params)),
        None => Err(ApiError::not_found(format!("Function not found: {name}"))),
    }
}
