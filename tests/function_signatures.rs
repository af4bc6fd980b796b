//! Every function's signature against graphite-web 1.1.8's own declarations.
//!
//! `tests/support/graphite_signatures.py` loads graphite-web (Debian's package) and dumps, for
//! every function its `/functions` lists, the `params` (graphite-web's `Param.toJSON`: name,
//! type, required, default, multiple, options), the group, and the Python function's own
//! parameters with their defaults (`inspect.signature`). This test compares that, name by name
//! and parameter by parameter, with carbonhound's registry (`query::functions::all`, which is
//! what `/functions` prints):
//!
//! - the same functions, in the same groups;
//! - the same `params`, in order: names, types, required, defaults, multiple, options;
//! - the `function` field as graphite-web would format it from the Python signature
//!   (`lowest(seriesList, n=1, func='average')`);
//! - each Python default is what a call without the argument gets: a parameter with a
//!   Python default may be left out (even where graphite-web's `Param` says `required`, as
//!   `lowest`'s `n`: graphite-web's default, non-strict validation lets the call through to
//!   the Python default), and the default carbonhound applies is the same value.
//!
//! It fails listing every difference. Differences kept on purpose are in [`ALLOWED`], each
//! with its reason. Needs /usr/bin/python3 with graphite-web 1.1.8: it fails when missing.

use std::collections::BTreeMap;
use std::process::Command;

use carbonhound::query::functions;
use carbonhound::query::{FunctionDef, ParamDefault};
use serde_json::{json, Value as Json};

/// Differences kept on purpose: (function, what the difference line starts with, why).
const ALLOWED: &[(&str, &str, &str)] = &[];

fn graphite_web() -> BTreeMap<String, Json> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/graphite_signatures.py"
    );
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .output()
        .expect("/usr/bin/python3 must exist (graphite-web 1.1.8 is the reference)");
    assert!(
        out.status.success(),
        "graphite_signatures.py failed (is Debian's graphite-web installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Json = serde_json::from_slice(&out.stdout).expect("graphite_signatures.py JSON");
    doc["functions"]
        .as_object()
        .expect("functions")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// graphite-web's `function` field, as `inspect.formatargspec` writes it from the Python
/// signature (without `requestContext`).
fn python_signature(name: &str, python: &Json) -> String {
    let mut parts = Vec::new();
    for a in python.as_array().unwrap() {
        let arg = a["name"].as_str().unwrap();
        if arg == "requestContext" {
            continue;
        }
        if a["kind"] == "var_positional" {
            parts.push(format!("*{arg}"));
            continue;
        }
        match a.get("default") {
            None => parts.push(arg.to_string()),
            Some(d) => parts.push(format!("{arg}={}", python_repr(d))),
        }
    }
    format!("{name}({})", parts.join(", "))
}

fn python_repr(v: &Json) -> String {
    match v {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::String(s) if s == "inf" => "inf".into(),
        Json::String(s) => format!("'{s}'"),
        Json::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap();
                if f.fract() == 0.0 {
                    format!("{f:.1}")
                } else {
                    format!("{f}")
                }
            } else {
                n.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// A carbonhound default as the dump writes Python's (`None` as null, infinity as "inf").
fn default_json(d: Option<ParamDefault>) -> Json {
    match d {
        None => Json::Null,
        Some(ParamDefault::Int(i)) => json!(i),
        Some(ParamDefault::Float(f)) if f.is_infinite() => {
            json!(if f > 0.0 { "inf" } else { "-inf" })
        }
        Some(ParamDefault::Float(f)) => json!(f),
        Some(ParamDefault::Str(s)) => json!(s),
        Some(ParamDefault::Bool(b)) => json!(b),
    }
}

/// Whether a call may leave each argument out, and what it then gets, against the Python
/// signature (what graphite-web's function receives).
fn binding_differences(def: &FunctionDef, python: &Json, diffs: &mut Vec<String>) {
    let args: Vec<&Json> = python
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] != "requestContext")
        .collect();
    for (p, a) in def.params.iter().zip(&args) {
        let name = def.name;
        if a["kind"] == "var_positional" {
            if !p.multiple {
                diffs.push(format!(
                    "{name}: binding {}: not multiple (Python *{})",
                    p.name, a["name"]
                ));
            }
            continue;
        }
        let py_default = a.get("default");
        if p.may_omit() != py_default.is_some() {
            diffs.push(format!(
                "{name}: binding {}: may be omitted: {} (Python: {})",
                p.name,
                p.may_omit(),
                py_default.is_some()
            ));
        }
        if let Some(d) = py_default {
            let ours = default_json(p.call_default());
            if !same_value(&ours, d) {
                diffs.push(format!(
                    "{name}: binding {}: an omitted argument gets {ours} (Python default {d})",
                    p.name
                ));
            }
        }
    }
    if def.params.len() != args.len() {
        diffs.push(format!(
            "{}: binding: {} params for {} Python arguments",
            def.name,
            def.params.len(),
            args.len()
        ));
    }
}

fn same_value(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (x, y) => x == y,
    }
}

fn differences() -> Vec<String> {
    let reference = graphite_web();
    assert!(
        reference.len() > 100,
        "graphite-web lists {} functions",
        reference.len()
    );
    let defs: BTreeMap<&str, &FunctionDef> =
        functions::all().into_iter().map(|f| (f.name, f)).collect();
    let ours: BTreeMap<&str, Json> = defs.iter().map(|(n, f)| (*n, f.to_json())).collect();
    let mut diffs = Vec::new();
    for name in ours.keys() {
        if !reference.contains_key(*name) {
            diffs.push(format!("{name}: not a graphite-web 1.1.8 function"));
        }
    }
    for (name, gw) in &reference {
        let Some(ch) = ours.get(name.as_str()) else {
            diffs.push(format!("{name}: missing"));
            continue;
        };
        if ch["group"] != gw["group"] {
            diffs.push(format!(
                "{name}: group {} (graphite-web {})",
                ch["group"], gw["group"]
            ));
        }
        let gp = gw["params"].as_array().unwrap();
        let cp = ch["params"].as_array().unwrap();
        if gp.len() != cp.len() {
            diffs.push(format!(
                "{name}: {} params (graphite-web {}): {} vs {}",
                cp.len(),
                gp.len(),
                names(cp),
                names(gp)
            ));
        }
        for (i, (c, g)) in cp.iter().zip(gp).enumerate() {
            if !same_param(c, g) {
                diffs.push(format!("{name}: param {i} {c} (graphite-web {g})"));
            }
        }
        binding_differences(defs[name.as_str()], &gw["python"], &mut diffs);
        let want = python_signature(name, &gw["python"]);
        if ch["function"] != json!(want) {
            diffs.push(format!(
                "{name}: function {} (graphite-web {want})",
                ch["function"]
            ));
        }
    }
    diffs
}

fn names(params: &[Json]) -> String {
    let v: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    v.join(",")
}

/// Param JSON equality, numbers compared as numbers (graphite-web's `0` and `0.0` differ in
/// JSON text only).
fn same_param(a: &Json, b: &Json) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return false;
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| match (v, b.get(k)) {
            (x, Some(y)) => same_value(x, y),
            (_, None) => false,
        })
}

#[test]
fn every_signature_is_graphite_webs() {
    let all = differences();
    for (f, start, why) in ALLOWED {
        assert!(
            all.iter().any(|d| d.starts_with(&format!("{f}: {start}"))),
            "ALLOWED lists {f}: {start} ({why}), which no longer differs: remove it"
        );
    }
    let diffs: Vec<String> = all
        .into_iter()
        .filter(|d| {
            !ALLOWED
                .iter()
                .any(|(f, start, _)| d.starts_with(&format!("{f}: {start}")))
        })
        .collect();
    assert!(
        diffs.is_empty(),
        "{} differences from graphite-web 1.1.8:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
