//! How graphite-web names series: the path expressions of a name (`formatPathExpressions`,
//! `_getFirstPathExpression`), nodes and tags of a name (`getNodeOrTag`, `aggKey`), `str()` of
//! an argument in a name, and glyph's `format_units` for legends. Reads names; never values.

use crate::python::repr_f64;
use crate::query::ast::Expr;
use crate::query::eval::{EvalError, Value};
use crate::query::series::Series;

/// graphite-web's `formatPathExpressions`: the distinct path expressions in order, joined by
/// commas.
pub fn format_path_expressions(series: &[Series]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in series {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

/// graphite-web's `_getFirstPathExpression`: the first path expression in a series name that
/// is itself a target (`sumSeries(a.b.*)` → `a.b.*`), following each call's first argument.
/// `None` when the name does not parse as a target or leads to no path.
pub fn first_path_expression(name: &str) -> Option<String> {
    let mut expr = crate::query::parse::parse_target(name, 256).ok()?;
    loop {
        match expr {
            Expr::Path(p) => return Some(p),
            Expr::Call(c) => expr = c.args.into_iter().next()?,
            Expr::Template(t) => expr = t.expr,
            _ => return None,
        }
    }
}

/// graphite-web's `getNodeOrTag`: for an integer `n`, node `n` (Python indexing) of the name
/// (or of `path_expression` when given) without its tags; otherwise — or when that node does
/// not exist — the value of tag `str(n)`, or `""`.
pub fn node_or_tag(series: &Series, n: &Value, path_expression: Option<&str>) -> String {
    if let Value::Int(i) = n {
        let base = path_expression.unwrap_or(&series.name);
        let untagged = base.split(';').next().unwrap_or("");
        let nodes: Vec<&str> = untagged.split('.').collect();
        if let Some(node) = crate::python::index(&nodes, *i) {
            return node.to_string();
        }
    }
    let key = match n {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
        Value::Float(f) => repr_f64(*f),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".to_string(),
        Value::Series(_) => String::new(),
    };
    series.tags.get(&key).cloned().unwrap_or_default()
}

/// graphite-web's `aggKey`: the nodes/tags `nodes` of a series joined by `.`; for a name that
/// ends in `)` (a function's output) the nodes come from its first path expression.
pub fn agg_key(series: &Series, nodes: &[Value]) -> String {
    let first = if series.name.ends_with(')') {
        first_path_expression(&series.name)
    } else {
        None
    };
    nodes
        .iter()
        .map(|n| node_or_tag(series, n, first.as_deref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Python's `str()` of an evaluated argument, as graphite-web puts arguments in tags and
/// names (`weightedAverage(…, 0,1)`): ints plain, floats as `repr`, `True`/`False`/`None`.
pub fn py_str_value(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => repr_f64(*f),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".to_string(),
        Value::Series(_) => "[…]".to_string(),
    }
}

/// The same function under the name `combine` uses (there were two identical copies).
pub use self::py_str_value as py_str;

/// glyph's `format_units(v, system=…)`: `v` scaled to the largest prefix of `system` (`si`:
/// k, M, G, T, P by 1000; `binary`: Ki … Pi by 1024) it reaches, and the prefix (with `units`
/// appended when given).
pub fn format_units(v: f64, system: &str, units: Option<&str>) -> (f64, String) {
    const SI: [(&str, f64); 5] = [("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)];
    const BINARY: [(&str, f64); 5] = [
        ("Pi", 1125899906842624.0),
        ("Ti", 1099511627776.0),
        ("Gi", 1073741824.0),
        ("Mi", 1048576.0),
        ("Ki", 1024.0),
    ];
    let table: &[(&str, f64)] = match system {
        "si" => &SI,
        "binary" => &BINARY,
        _ => &[],
    };
    for (prefix, size) in table {
        if v.abs() >= *size {
            let mut v2 = v / size;
            if v2 - v2.floor() < 0.00000000001 && v > 1.0 {
                v2 = v2.floor();
            }
            let prefix = match units {
                Some(u) => format!("{prefix}{u}"),
                None => prefix.to_string(),
            };
            return (v2, prefix);
        }
    }
    let mut v = v;
    if v - v.floor() < 0.00000000001 && v > 1.0 {
        v = v.floor();
    }
    (v, units.unwrap_or("").to_string())
}

/// graphite-web's `_getFirstPathExpression`: the first path expression of a name that is a
/// function call (following each call's first argument). `None` when the first argument is not
/// a path. Like graphite-web's grammar (pyparsing's `parseString`, which matches a prefix), a
/// name that parses only up to some point is read up to there (`a.b (avg: 1.0)` reads as
/// `a.b`); a name with no parsable start is an error (graphite-web fails then too).
pub fn first_path_expression_checked(name: &str) -> Result<Option<String>, EvalError> {
    use crate::query::ast::Expr;
    let mut text = name;
    let expr = loop {
        match crate::query::parse::parse_target(text, 256) {
            Ok(e) => break e,
            Err(e) => {
                let cut = text
                    .char_indices()
                    .nth(e.position)
                    .map_or(text.len(), |(i, _)| i);
                if e.position == 0 || cut == text.len() {
                    // No call parses: pyparsing falls back to the leading path expression.
                    let path: &str = name
                        .split(['(', ')', ',', ' ', '\'', '"', '='])
                        .next()
                        .unwrap_or("");
                    if path.is_empty() {
                        return Err(EvalError::BadRequest(format!(
                            "series name '{name}' does not parse: {e}"
                        )));
                    }
                    return Ok(Some(path.to_string()));
                }
                text = &text[..cut];
            }
        }
    };
    let mut cur = &expr;
    loop {
        match cur {
            Expr::Path(p) => return Ok(Some(p.clone())),
            Expr::Call(c) => match c.args.first() {
                Some(a) => cur = a,
                None => return Ok(None),
            },
            Expr::Template(t) => cur = &t.expr,
            _ => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_first_path_expressions() {
        assert_eq!(
            format_units(1536.0, "binary", None),
            (1.5, "Ki".to_string())
        );
        assert_eq!(
            format_units(2_000_000.0, "si", Some("b")),
            (2.0, "Mb".to_string())
        );
        assert_eq!(
            first_path_expression_checked("sumSeries(scale(a.b,2),c)")
                .unwrap()
                .as_deref(),
            Some("a.b")
        );
        assert_eq!(
            first_path_expression_checked("constantLine(1)").unwrap(),
            None
        );
        assert_eq!(
            first_path_expression_checked("a.b (avg: 1.0)")
                .unwrap()
                .as_deref(),
            Some("a.b")
        );
        assert!(first_path_expression_checked("(z)").is_err());
        assert_eq!(
            first_path_expression_checked("sumSeries(a.b c)")
                .unwrap()
                .as_deref(),
            Some("sumSeries")
        );
    }

    #[test]
    fn first_path_expression_follows_first_arguments() {
        assert_eq!(
            first_path_expression("sumSeries(a.b.*,c)").as_deref(),
            Some("a.b.*")
        );
        assert_eq!(first_path_expression("a.b").as_deref(), Some("a.b"));
        assert_eq!(first_path_expression("f("), None);
    }
}
