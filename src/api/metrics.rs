//! `/metrics/find`, `/metrics/expand`, `/metrics/index.json`: the metric tree as graphite-web
//! serves it (the shapes Grafana's Graphite data source reads, and the `pickle` and `msgpack`
//! finds a graphite-web front sends the nodes of its `CLUSTER_SERVERS`).

use std::borrow::Cow;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use chrono_tz::Tz;
use serde::Serialize;

use super::params::Params;
use super::{mark_partial, msgpack, pickle, respond, respond_json, ApiError, AppState};
use crate::python::json_dumps;
use crate::query::{parse_at_time, MetricSource};
use crate::store::{unix_now, FoundNode, Interval, Store};

/// Most nodes one find may return; a query matching more is a 413 rather than a silently
/// partial answer (graphite-web's `METRICS_FIND_FAILURE_THRESHOLD`, unlimited by default).
const FIND_LIMIT: usize = 100_000;

/// `find_view` and `expand_view` also send `Pragma: no-cache` (beside `Cache-Control`).
fn no_cache(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An answer as graphite-web's `json_response_for` writes it: `json.dumps` text (indented
/// with a non-empty `pretty`), `jsonp`-wrapped when asked.
fn python_json(params: &Params, value: &(impl Serialize + ?Sized)) -> Result<Response, ApiError> {
    let pretty = params.get("pretty").is_some_and(|p| !p.is_empty());
    let text = json_dumps(value, pretty).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(respond_json(params, text))
}

/// The matches of one query in `source` (this server's index, or the cluster's merged),
/// at most [`FIND_LIMIT`].
fn find_nodes(
    source: &dyn MetricSource,
    query: &str,
    leaves_only: bool,
) -> Result<Vec<FoundNode>, ApiError> {
    let nodes = source.find(query, leaves_only, FIND_LIMIT + 1);
    if nodes.len() > FIND_LIMIT {
        return Err(ApiError::too_large(format!(
            "query {query:?} matches more than {FIND_LIMIT} nodes"
        )));
    }
    Ok(nodes)
}

/// One node of graphite-web's treejson, its keys in graphite-web's order.
#[derive(Debug, Serialize)]
struct TreeNode<'a> {
    text: Cow<'a, str>,
    id: Joined<'a>,
    #[serde(rename = "allowChildren")]
    allow_children: u8,
    expandable: u8,
    leaf: u8,
}

impl<'a> TreeNode<'a> {
    fn new(name: &'a str, base_path: &'a str, leaf: bool) -> TreeNode<'a> {
        TreeNode {
            text: unquote_plus(name),
            id: Joined(base_path, name),
            allow_children: u8::from(!leaf),
            expandable: u8::from(!leaf),
            leaf: u8::from(leaf),
        }
    }
}

/// Two strings serialized as one (a treejson `id`: base path and name) without building it.
#[derive(Debug)]
struct Joined<'a>(&'a str, &'a str);

impl std::fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)?;
        f.write_str(self.1)
    }
}

impl Serialize for Joined<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// graphite-web's `tree_json` over nodes sorted by name: branches then leaves, each name once
/// (the first node of the name: `servers.web[1-2].cpu.*` lists `idle` once), and a `*` node
/// first when `wildcards` is asked and more than one node matched (a branch if any node is);
/// `text` is the name `unquote_plus`'d, `id` the base path and the raw name.
fn tree_json<'a>(nodes: &'a [FoundNode], base_path: &'a str, wildcards: bool) -> Vec<TreeNode<'a>> {
    let mut out = Vec::with_capacity(nodes.len() + 1);
    if nodes.len() > 1 && wildcards {
        let any_branch = nodes.iter().any(|n| !n.is_leaf);
        out.push(TreeNode::new("*", base_path, !any_branch));
    }
    // `nodes` is sorted by name, so every node of one name comes in a row: the first (by path,
    // a branch before the leaf of its path) stands for them all, as `found` in graphite-web.
    let mut leaves = Vec::new();
    let mut previous: Option<&str> = None;
    for n in nodes {
        let name = n.name();
        if previous == Some(name) {
            continue;
        }
        previous = Some(name);
        if n.is_leaf {
            leaves.push(TreeNode::new(name, base_path, true));
        } else {
            out.push(TreeNode::new(name, base_path, false));
        }
    }
    out.extend(leaves);
    out
}

/// One node of the completer's `metrics`, or its `*` entry.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Completion<'a> {
    Node {
        /// A branch's path ends in `.`.
        path: String,
        name: &'a str,
        /// `"1"` or `"0"`: graphite-web's `str(int(node.is_leaf))`.
        is_leaf: &'static str,
    },
    Wildcard {
        name: &'static str,
    },
}

/// One node of a `pickle` or `msgpack` find, as graphite-web's `pickle_nodes` and
/// `msgpack_nodes` build it from a node: `intervals` (the leaf's
/// [`Store::intervals`]) for a leaf, `None` for a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo<'a> {
    /// The node's full path (`servers.web1.cpu`).
    pub path: &'a str,
    /// Whether it is a metric (a leaf) rather than a branch.
    pub is_leaf: bool,
    /// The leaf's time spans; `None` for a branch.
    pub intervals: Option<Vec<Interval>>,
}

/// The nodes of a cluster find with their intervals, in `nodes`' order (graphite-web's
/// `pickle_nodes` and `msgpack_nodes` keep the view's order, by name). Reads each leaf's
/// header and file time.
fn node_infos<'a>(store: &Store, nodes: &'a [FoundNode]) -> Vec<NodeInfo<'a>> {
    nodes
        .iter()
        .map(|n| NodeInfo {
            path: &n.path,
            is_leaf: n.is_leaf,
            intervals: n.is_leaf.then(|| store.intervals(&n.path)),
        })
        .collect()
}

/// The find formats of the cluster protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClusterFormat {
    /// `format=pickle`, graphite-web's `pickle_nodes`.
    Pickle,
    /// `format=msgpack`, graphite-web's `msgpack_nodes`.
    Msgpack,
}

impl ClusterFormat {
    fn parse(format: &str) -> Option<ClusterFormat> {
        match format {
            "pickle" => Some(ClusterFormat::Pickle),
            "msgpack" => Some(ClusterFormat::Msgpack),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ClusterFormat::Pickle => pickle::CONTENT_TYPE,
            ClusterFormat::Msgpack => msgpack::CONTENT_TYPE,
        }
    }

    fn write(self, nodes: &[NodeInfo]) -> Vec<u8> {
        match self {
            ClusterFormat::Pickle => pickle::nodes(nodes),
            ClusterFormat::Msgpack => msgpack::nodes(nodes),
        }
    }
}

/// One node of `format=json`, as graphite-web's `json_nodes`: `path`, `is_leaf` and, for a
/// leaf only, `intervals` as `[{"start": s, "end": e}]` (float epoch seconds, from
/// [`Store::intervals`]).
#[derive(Debug, Serialize)]
struct JsonNode<'a> {
    path: &'a str,
    is_leaf: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    intervals: Option<Vec<JsonInterval>>,
}

/// One interval of a [`JsonNode`] (graphite-web's `{'start': i.start, 'end': i.end}`).
#[derive(Debug, Serialize)]
struct JsonInterval {
    start: f64,
    end: f64,
}

/// Python's `unquote_plus`, which `tree_json` applies to a node's `text` (not its `id`): `+`
/// is a space and `%XX` the byte XX, the bytes read as UTF-8 (an invalid sequence becomes
/// U+FFFD); a `%` not followed by two hex digits stays as it is.
fn unquote_plus(s: &str) -> Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return Cow::Borrowed(s);
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
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
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

/// `/metrics/find?query=…[&format=…][&wildcards=1][&leavesOnly=1]`, `format` one of
/// `treejson` (the default), `completer`, `nodelist`, `json`, `pickle`, `msgpack`, as
/// graphite-web's `find_view`: the matches sorted by name (ties by path, a branch before
/// the leaf of the same path), then shaped by `format`. `from`/`until` are checked and do not
/// filter (see [`check_find_times`]). With `[cluster] servers` the matches are the cluster's,
/// merged ([`crate::query::ClusterSource`]), unless `local=1` (another server asking, as a
/// graphite-web node answers from its own store only) or the format is `pickle` or
/// `msgpack` (the cluster protocol's, answered for this server alone); an answer missing a
/// server's share carries [`super::PARTIAL_HEADER`].
///
/// `pickle` (`application/pickle`) and `msgpack` (`application/x-msgpack`) are what a
/// graphite-web front's remote finder asks its `CLUSTER_SERVERS` for (`local=1&format=pickle`
/// unless the server's URL says `format=msgpack`): see [`pickle::nodes`] and
/// [`msgpack::nodes`].
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
    let cluster = ClusterFormat::parse(&format);
    // The cluster protocol's own formats answer for this server only: they carry each
    // leaf's intervals, which only the server holding the file knows.
    let federated = match cluster {
        Some(_) => None,
        None => state.cluster_source(&params),
    };
    let json_format = format.clone();
    let (nodes, body, federated, intervals) = tokio::task::spawn_blocking(move || {
        let format = json_format;
        let source: &dyn MetricSource = match &federated {
            Some(c) => c,
            None => &*store,
        };
        let mut nodes = find_nodes(source, &q, leaves_only)?;
        // Stable: `find` answers in path order, so ties stay by path, branch first. Nodes
        // under one parent (`a.b.*`, the usual query) are in name order already.
        if !nodes.is_sorted_by(|a, b| a.name() <= b.name()) {
            nodes.sort_by(|a, b| a.name().cmp(b.name()));
        }
        // Their intervals read headers and file times: here, on the blocking pool.
        let body = cluster.map(|f| f.write(&node_infos(&store, &nodes)));
        // `format=json` gives each leaf its intervals too (a federating node's: the union of
        // every server's copy).
        let intervals: Vec<Option<Vec<Interval>>> = if format == "json" {
            nodes
                .iter()
                .map(|n| n.is_leaf.then(|| source.intervals(&n.path)))
                .collect()
        } else {
            Vec::new()
        };
        Ok::<_, ApiError>((nodes, body, federated, intervals))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    if let (Some(f), Some(body)) = (cluster, body) {
        return Ok(no_cache(respond(f.content_type(), body)));
    }
    let response = match format.as_str() {
        "treejson" => python_json(&params, &tree_json(&nodes, &base_path, wildcards)),
        "completer" => {
            let mut metrics: Vec<Completion> = nodes
                .iter()
                .map(|n| Completion::Node {
                    path: if n.is_leaf {
                        n.path.clone()
                    } else {
                        format!("{}.", n.path)
                    },
                    name: n.name(),
                    is_leaf: if n.is_leaf { "1" } else { "0" },
                })
                .collect();
            if metrics.len() > 1 && wildcards {
                metrics.push(Completion::Wildcard { name: "*" });
            }
            #[derive(Serialize)]
            struct Metrics<'a> {
                metrics: Vec<Completion<'a>>,
            }
            python_json(&params, &Metrics { metrics })
        }
        "nodelist" => {
            #[derive(Serialize)]
            struct Nodes {
                nodes: Vec<String>,
            }
            let nodes = nodes_by_position(&nodes, position)?;
            python_json(&params, &Nodes { nodes })
        }
        "json" => {
            // graphite-web's `json_nodes` re-sorts by path (stable, so a branch stays before
            // the leaf of its path).
            let mut out: Vec<JsonNode> = nodes
                .iter()
                .zip(intervals)
                .map(|(n, intervals)| JsonNode {
                    path: &n.path,
                    is_leaf: n.is_leaf,
                    intervals: intervals.map(|list| {
                        list.iter()
                            .map(|i| JsonInterval {
                                start: i.start,
                                end: i.end,
                            })
                            .collect()
                    }),
                })
                .collect();
            out.sort_by(|a, b| a.path.cmp(b.path));
            python_json(&params, &out)
        }
        _ => Err(ApiError::bad_request(
            "Invalid value for 'format' parameter".into(),
        )),
    };
    response.map(|mut r| {
        mark_partial(&mut r, federated.as_ref());
        no_cache(r)
    })
}

/// `expand_view`'s `{"results": {query: [paths]}}` with the queries in request order (a
/// repeated one at its first place), as Python's dict keeps them; a `serde_json::Value` map
/// would sort them.
struct GroupedResults<'a>(&'a [(String, Vec<String>)]);

impl serde::Serialize for GroupedResults<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (query, paths) in self.0 {
            map.serialize_entry(query, paths)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Grouped<'a> {
    results: GroupedResults<'a>,
}

#[derive(Serialize)]
struct Union {
    results: Vec<String>,
}

/// `/metrics/expand?query=…[&query=…][&leavesOnly=1][&groupByExpr=1]`, as graphite-web's
/// `expand_view`: the paths each query matches (branches too, unless `leavesOnly`), sorted;
/// with `groupByExpr` per query, otherwise one sorted union. No query is an empty answer.
pub async fn expand(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let leaves_only = flag(&params, "leavesOnly")?;
    let group = flag(&params, "groupByExpr")?;
    let mut queries: Vec<String> = Vec::new();
    for q in params.all("query") {
        if !queries.iter().any(|seen| seen == q) {
            queries.push(q.to_string());
        }
    }
    let store = state.store.clone();
    let federated = state.cluster_source(&params);
    let (results, federated) = tokio::task::spawn_blocking(move || {
        let source: &dyn MetricSource = match &federated {
            Some(c) => c,
            None => &*store,
        };
        let results = queries
            .into_iter()
            .map(|q| {
                let mut paths: Vec<String> = find_nodes(source, &q, leaves_only)?
                    .into_iter()
                    .map(|n| n.path)
                    .collect();
                paths.sort();
                paths.dedup();
                Ok((q, paths))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok::<_, ApiError>((results, federated))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let response = if group {
        let results = GroupedResults(&results);
        python_json(&params, &Grouped { results })
    } else {
        let mut all: Vec<String> = results.into_iter().flat_map(|(_, p)| p).collect();
        all.sort();
        all.dedup();
        python_json(&params, &Union { results: all })
    };
    response.map(|mut r| {
        mark_partial(&mut r, federated.as_ref());
        no_cache(r)
    })
}

/// `/metrics/index.json`: every metric name, sorted; over the cluster unless `local=1`
/// (graphite-web's `Store.get_index` over its finders).
pub async fn index_json(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let federated = state.cluster_source(&params);
    let (all, federated) = tokio::task::spawn_blocking(move || {
        store.wait_for_index(None);
        let all = store.index.all();
        let all = match &federated {
            Some(c) => c.index(all),
            None => all,
        };
        (all, federated)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    python_json(&params, &all).map(|mut r| {
        mark_partial(&mut r, federated.as_ref());
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn tree(nodes: &[FoundNode], base_path: &str, wildcards: bool) -> String {
        json_dumps(&tree_json(nodes, base_path, wildcards), false).unwrap()
    }

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
        let v: Value = serde_json::from_str(&tree(&nodes, "s.*.", false)).unwrap();
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
    fn grouped_results_keep_query_order() {
        let results = vec![
            ("z.*".to_string(), vec!["z.a".to_string()]),
            ("a.*".to_string(), vec![]),
        ];
        let text = serde_json::to_string(&Grouped {
            results: GroupedResults(&results),
        })
        .unwrap();
        assert_eq!(text, r#"{"results":{"z.*":["z.a"],"a.*":[]}}"#);
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
        let text = tree(&nodes, "a.", false);
        assert!(text.starts_with(
            r#"[{"text": "b", "id": "a.b", "allowChildren": 1, "expandable": 1, "leaf": 0}, "#
        ));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v[0],
            json!({"text": "b", "id": "a.b", "allowChildren": 1, "expandable": 1, "leaf": 0})
        );
        assert_eq!(
            v[1],
            json!({"text": "c", "id": "a.c", "allowChildren": 0, "expandable": 0, "leaf": 1})
        );
        assert_eq!(v.as_array().unwrap().len(), 2);
        let v: Value = serde_json::from_str(&tree(&nodes, "a.", true)).unwrap();
        assert_eq!(v[0]["text"], "*");
    }
}
