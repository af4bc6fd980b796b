//! `/metrics/find`, `/metrics/expand`, `/metrics/index.json`: the metric tree as graphite-web
//! serves it (the shapes Grafana's Graphite data source reads).

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use super::formats::json_string;
use super::params::Params;
use super::{json_text, respond_json, ApiError, AppState};
use crate::store::FoundNode;

/// Most nodes one find may return.
const FIND_LIMIT: usize = 100_000;

fn json_response(params: &Params, value: &Value) -> Response {
    respond_json(params, json_text(params, value))
}

/// graphite-web's `tree_json`: branches then leaves, each name once (the first of a name
/// that is both, which is the branch), and a `*` node first when `wildcards` is asked and more
/// than one node matched. Written straight to JSON text: a find over thousands of nodes is a
/// hot path of Grafana's metric browser.
fn tree_json(nodes: &[FoundNode], base_path: &str, wildcards: bool) -> String {
    fn node(out: &mut String, text: &str, base_path: &str, leaf: bool) {
        let branch = u8::from(!leaf);
        out.push_str("{\"text\": ");
        json_string(out, text);
        out.push_str(", \"id\": ");
        json_string(out, &format!("{base_path}{text}"));
        out.push_str(&format!(
            ", \"allowChildren\": {branch}, \"expandable\": {branch}, \"leaf\": {}}}",
            u8::from(leaf)
        ));
    }
    let mut out = String::with_capacity(64 + nodes.len() * (80 + 2 * base_path.len()));
    out.push('[');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push_str(", ");
        }
        first = false;
    };
    if nodes.len() > 1 && wildcards {
        let any_branch = nodes.iter().any(|n| !n.is_leaf);
        sep(&mut out);
        node(&mut out, "*", base_path, !any_branch);
    }
    // `nodes` is sorted by path, so a name that is both branch and leaf comes twice in a row.
    let mut leaves: Vec<&str> = Vec::new();
    let mut previous: Option<&str> = None;
    for n in nodes {
        let name = n.name();
        if previous == Some(name) {
            continue;
        }
        previous = Some(name);
        if n.is_leaf {
            leaves.push(name);
        } else {
            sep(&mut out);
            node(&mut out, name, base_path, false);
        }
    }
    for name in leaves {
        sep(&mut out);
        node(&mut out, name, base_path, true);
    }
    out.push(']');
    out
}

fn flag(params: &Params, key: &str) -> Result<bool, ApiError> {
    match params.get(key) {
        None => Ok(false),
        Some(v) => v
            .parse::<i64>()
            .map(|n| n != 0)
            .map_err(|_| ApiError::bad_request(format!("Invalid int value '{v}' for param {key}"))),
    }
}

/// `/metrics/find?query=…[&format=treejson|completer|nodelist|json][&wildcards=1][&leavesOnly=1]`.
/// `from`/`until` are accepted and not used to filter: the index holds no time intervals.
pub async fn find(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let format = params.get("format").unwrap_or("treejson").to_string();
    let leaves_only = flag(&params, "leavesOnly")?;
    let wildcards = flag(&params, "wildcards")?;
    let mut q = match params.get("query") {
        None => {
            return Err(ApiError::bad_request(
                "Missing required parameter 'query'".into(),
            ))
        }
        Some("") => {
            return Err(ApiError::bad_request(
                "Required parameter 'query' is empty".into(),
            ))
        }
        Some(q) => q.to_string(),
    };
    let base_path = match q.rfind('.') {
        Some(i) => q[..=i].to_string(),
        None => String::new(),
    };
    if format == "completer" {
        q = q.replace("..", "*.");
        if !q.ends_with('*') {
            q.push('*');
        }
    }
    let store = state.store.clone();
    let qq = q.clone();
    let nodes = tokio::task::spawn_blocking(move || store.find(&qq, leaves_only, FIND_LIMIT))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if format == "treejson" && params.get("pretty").is_none_or(|p| p.is_empty()) {
        return Ok(respond_json(
            &params,
            tree_json(&nodes, &base_path, wildcards),
        ));
    }
    let value = match format.as_str() {
        "treejson" => {
            serde_json::from_str(&tree_json(&nodes, &base_path, wildcards)).unwrap_or_default()
        }
        "completer" => {
            let mut metrics: Vec<Value> = nodes
                .iter()
                .map(|n| json!({"path": if n.is_leaf { n.path.clone() } else { format!("{}.", n.path) }, "name": n.name(), "is_leaf": if n.is_leaf { "1" } else { "0" }}))
                .collect();
            if metrics.len() > 1 && wildcards {
                metrics.push(json!({"name": "*"}));
            }
            json!({ "metrics": metrics })
        }
        "nodelist" => {
            let position: i64 = params
                .get("position")
                .and_then(|p| p.parse().ok())
                .unwrap_or(-1);
            let mut found: Vec<String> = nodes
                .iter()
                .filter_map(|n| {
                    let parts: Vec<&str> = n.path.split('.').collect();
                    let i = if position < 0 {
                        parts.len() as i64 + position
                    } else {
                        position
                    };
                    parts.get(usize::try_from(i).ok()?).map(|s| s.to_string())
                })
                .collect();
            found.sort();
            found.dedup();
            json!({ "nodes": found })
        }
        "json" => Value::Array(
            nodes
                .iter()
                .map(|n| json!({"path": n.path, "is_leaf": n.is_leaf}))
                .collect(),
        ),
        _ => {
            return Err(ApiError::bad_request(
                "Invalid value for 'format' parameter".into(),
            ))
        }
    };
    Ok(json_response(&params, &value))
}

/// `/metrics/expand?query=…[&leavesOnly=1][&groupByExpr=1]`: matching paths, sorted.
pub async fn expand(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let leaves_only = flag(&params, "leavesOnly")?;
    let group = flag(&params, "groupByExpr")?;
    let queries: Vec<String> = params
        .all("query")
        .into_iter()
        .map(str::to_string)
        .collect();
    let store = state.store.clone();
    let results = tokio::task::spawn_blocking(move || {
        queries
            .iter()
            .map(|q| {
                let mut paths: Vec<String> = store
                    .find(q, leaves_only, FIND_LIMIT)
                    .into_iter()
                    .map(|n| n.path)
                    .collect();
                paths.sort();
                paths.dedup();
                (q.clone(), paths)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let value = if group {
        let map: serde_json::Map<String, Value> =
            results.into_iter().map(|(q, p)| (q, json!(p))).collect();
        json!({ "results": map })
    } else {
        let mut all: Vec<String> = results.into_iter().flat_map(|(_, p)| p).collect();
        all.sort();
        all.dedup();
        json!({ "results": all })
    };
    Ok(json_response(&params, &value))
}

/// `/metrics/index.json`: every metric name, sorted.
pub async fn index_json(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let all = tokio::task::spawn_blocking(move || store.index.all())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(&params, &json!(all)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_json_shape() {
        let nodes = vec![
            FoundNode {
                path: "a.b".into(),
                is_leaf: false,
            },
            FoundNode {
                path: "a.b".into(),
                is_leaf: true,
            },
            FoundNode {
                path: "a.c".into(),
                is_leaf: true,
            },
        ];
        let v: Value = serde_json::from_str(&tree_json(&nodes, "a.", false)).unwrap();
        assert_eq!(
            v[0],
            json!({"text": "b", "id": "a.b", "allowChildren": 1, "expandable": 1, "leaf": 0})
        );
        assert_eq!(
            v[1],
            json!({"text": "c", "id": "a.c", "allowChildren": 0, "expandable": 0, "leaf": 1})
        );
        assert_eq!(v.as_array().unwrap().len(), 2);
        let v: Value = serde_json::from_str(&tree_json(&nodes, "a.", true)).unwrap();
        assert_eq!(v[0]["text"], "*");
    }
}
