//! `/metrics/find`, `/metrics/expand`, `/metrics/index.json`: the metric tree as graphite-web
//! serves it (the shapes Grafana's Graphite data source reads).

use axum::extract::State;
use axum::response::Response;
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::formats::json_string;
use super::params::Params;
use super::{json_text, respond_json, ApiError, AppState};
use crate::query::attime::parse_at_time;
use crate::store::{unix_now, FoundNode};

/// Most nodes one find may return.
const FIND_LIMIT: usize = 100_000;

fn json_response(params: &Params, value: &Value) -> Response {
    respond_json(params, json_text(params, value))
}

/// graphite-web's `tree_json` over nodes sorted by name: branches then leaves, each name once
/// (the first node of the name: `servers.web[1-2].cpu.*` lists `idle` once), and a `*` node first when `wildcards` is asked and more
/// than one node matched. Written straight to JSON text: a find over thousands of nodes is a
/// hot path of Grafana's metric browser.
fn tree_json(nodes: &[FoundNode], base_path: &str, wildcards: bool) -> String {
    fn node(out: &mut String, text: &str, base_path: &str, leaf: bool) {
        let branch = u8::from(!leaf);
        out.push_str("{\"text\": ");
        json_string(out, &unquote_plus(text));
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
    // `nodes` is sorted by name, so every node of one name comes in a row: the first (by path,
    // a branch before the leaf of its path) stands for them all, as `found` in graphite-web.
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

/// graphite-web's `queryParamAsInt`: absent is `default`, anything but an integer a 400.
/// Python's `unquote_plus`, which `tree_json` applies to a node's `text` (not its `id`): `+`
/// is a space and `%XX` the byte XX, the bytes read as UTF-8 (an invalid sequence becomes
/// U+FFFD); a `%` not followed by two hex digits stays as it is.
fn unquote_plus(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn int_param(params: &Params, key: &str, default: i64) -> Result<i64, ApiError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("Invalid int value '{v}' for param {key}"))),
    }
}

fn flag(params: &Params, key: &str) -> Result<bool, ApiError> {
    int_param(params, key, 0).map(|n| n != 0)
}

/// `find_view`'s time parameters: `tz` (an unknown zone falls back to UTC, as graphite-web
/// falls back to its `TIME_ZONE`), `now`, and `from`/`until` unless `-1`, each a 400 when it
/// is not a time reference. The standard finder does not filter by them (whisper files have
/// no interval to match), so they are only checked.
fn check_find_times(params: &Params) -> Result<(), ApiError> {
    let tz: Tz = params
        .get("tz")
        .and_then(|t| t.parse().ok())
        .unwrap_or(Tz::UTC);
    let bad = |key: &str, v: &str, e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!("Invalid value '{v}' for param {key}: {e}"))
    };
    let real_now = unix_now();
    let now = match params.get("now") {
        Some(v) => parse_at_time(v, &tz, real_now).map_err(|e| bad("now", v, &e))?,
        None => real_now,
    };
    for key in ["from", "until"] {
        if let Some(v) = params.get(key).filter(|v| *v != "-1") {
            parse_at_time(v, &tz, now).map_err(|e| bad(key, v, &e))?;
        }
    }
    Ok(())
}

/// The completer's query as `find_view` rewrites it: `..` is `*.`, a `*` is appended, and with
/// `automatic_variants` a node with a comma but no brace becomes a `{…}` group.
fn completer_query(query: &str, automatic_variants: bool) -> String {
    let mut q = query.replace("..", "*.");
    if !q.ends_with('*') {
        q.push('*');
    }
    if automatic_variants {
        q = q
            .split('.')
            .map(|part| {
                if part.contains(',') && !part.contains('{') {
                    format!("{{{part}}}")
                } else {
                    part.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(".");
    }
    q
}

/// graphite-web's `nodes_by_position`: the distinct nodes at `position` (Python indexing: a
/// negative position counts from the end), sorted; a path too short for it is a 400 (an
/// `IndexError`, a 500, in graphite-web).
fn nodes_by_position(nodes: &[FoundNode], position: i64) -> Result<Vec<String>, ApiError> {
    let mut found = std::collections::BTreeSet::new();
    for n in nodes {
        let parts: Vec<&str> = n.path.split('.').collect();
        let i = if position < 0 {
            parts.len() as i64 + position
        } else {
            position
        };
        let part = usize::try_from(i)
            .ok()
            .and_then(|i| parts.get(i))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "position {position} is outside the path {}",
                    n.path
                ))
            })?;
        found.insert(part.to_string());
    }
    Ok(found.into_iter().collect())
}

/// `/metrics/find?query=…[&format=treejson|completer|nodelist|json][&wildcards=1][&leavesOnly=1]`,
/// as graphite-web's `find_view`: the matches sorted by name (ties by path, a branch before
/// the leaf of the same path), then shaped by `format`. `from`/`until` are checked and do not
/// filter (see [`check_find_times`]); `local` is checked and ignored (there is no cluster).
pub async fn find(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let format = params.get("format").unwrap_or("treejson").to_string();
    let leaves_only = flag(&params, "leavesOnly")?;
    flag(&params, "local")?;
    let wildcards = flag(&params, "wildcards")?;
    check_find_times(&params)?;
    let position = int_param(&params, "position", -1)?;
    let automatic_variants = flag(&params, "automatic_variants")?;
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
        q = completer_query(&q, automatic_variants);
    }
    let store = state.store.clone();
    let mut nodes = tokio::task::spawn_blocking(move || {
        let mut nodes = store.find(&q, leaves_only, FIND_LIMIT);
        // Stable: `find` answers in path order, so ties stay by path, branch first.
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
        nodes
    })
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
        "nodelist" => json!({ "nodes": nodes_by_position(&nodes, position)? }),
        "json" => {
            // graphite-web's `json_nodes` re-sorts by path (stable, so a branch stays before
            // the leaf of its path). Its leaves also carry `intervals`, which the index does
            // not hold.
            nodes.sort_by(|a, b| a.path.cmp(&b.path));
            Value::Array(
                nodes
                    .iter()
                    .map(|n| json!({"path": n.path, "is_leaf": n.is_leaf}))
                    .collect(),
            )
        }
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

    fn node(path: &str, is_leaf: bool) -> FoundNode {
        FoundNode {
            path: path.into(),
            is_leaf,
        }
    }

    #[test]
    fn tree_json_lists_a_name_once_over_several_parents() {
        // As `find` sorts them for the view: by name, ties by path.
        let nodes = vec![
            node("s.db1.load", false),
            node("s.web2.load", true),
            node("s.web1.cpu.idle", true),
            node("s.web2.cpu.idle", true),
        ];
        let v: Value = serde_json::from_str(&tree_json(&nodes, "s.*.", false)).unwrap();
        let texts: Vec<(&str, i64)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["text"].as_str().unwrap(), n["leaf"].as_i64().unwrap()))
            .collect();
        assert_eq!(texts, vec![("load", 0), ("idle", 1)]);
    }

    #[test]
    fn text_is_unquoted_as_python_unquote_plus() {
        assert_eq!(unquote_plus("a+b"), "a b");
        assert_eq!(unquote_plus("x%41y"), "xAy");
        assert_eq!(unquote_plus("caf%C3%A9"), "café");
        assert_eq!(unquote_plus("100%"), "100%");
        assert_eq!(unquote_plus("%4"), "%4");
        assert_eq!(unquote_plus("%zz%41"), "%zzA");
        assert_eq!(unquote_plus("%FF"), "\u{FFFD}");
        assert_eq!(unquote_plus("plain"), "plain");
    }

    #[test]
    fn completer_query_and_positions() {
        assert_eq!(completer_query("a..b", false), "a*.b*");
        assert_eq!(completer_query("a.b*", false), "a.b*");
        assert_eq!(completer_query("a.x,y.c", true), "a.{x,y}.c*");
        assert_eq!(completer_query("a.{x,y}.c", true), "a.{x,y}.c*");
        let nodes = vec![node("a.b.c", true), node("a.d.c", true)];
        assert_eq!(nodes_by_position(&nodes, -1).unwrap(), vec!["c"]);
        assert_eq!(nodes_by_position(&nodes, 1).unwrap(), vec!["b", "d"]);
        assert_eq!(nodes_by_position(&nodes, -3).unwrap(), vec!["a"]);
        assert!(nodes_by_position(&nodes, 3).is_err());
        assert!(nodes_by_position(&nodes, -4).is_err());
    }

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
