//! The module rules of ARCHITECTURE.md, checked against the code: every `crate::<module>` that a
//! file under `src/` names must be one its module may use. Data flows one way (carbon → store →
//! whisper; api → query → store; alert → query, graph), so a forbidden arrow — `query` or
//! `whisper` reaching for `api`, `alert` for `server` — fails here with the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which top-level modules each module may name. `server` wires everything and `main.rs` is
/// the binary; nobody else may use `server` or `cli`. Comments (doc links) are not imports.
const RULES: &[(&str, &[&str])] = &[
    ("whisper", &[]),
    ("ratelimit", &[]),
    ("malloc", &[]),
    ("python", &[]),
    ("config", &["whisper"]),
    ("events", &["python", "ratelimit"]),
    ("store", &["whisper", "config", "python", "ratelimit"]),
    ("carbon", &["store", "config", "whisper", "ratelimit"]),
    (
        "query",
        &[
            "store",
            "events",
            "config",
            "whisper",
            "python",
            "ratelimit",
            "malloc",
        ],
    ),
    ("graph", &["query", "config", "python"]),
    ("cli", &["whisper", "config", "python"]),
    (
        "alert",
        &[
            "query",
            "graph",
            "store",
            "events",
            "config",
            "whisper",
            "python",
            "ratelimit",
            "carbon",
        ],
    ),
    (
        "api",
        &[
            "query",
            "graph",
            "alert",
            "store",
            "events",
            "carbon",
            "config",
            "whisper",
            "python",
            "ratelimit",
            "malloc",
        ],
    ),
    (
        "server",
        &[
            "api",
            "alert",
            "query",
            "graph",
            "store",
            "events",
            "carbon",
            "config",
            "whisper",
            "python",
            "ratelimit",
            "cli",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/query/eval.rs` → `query`, `src/server.rs` →
/// `server`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every module named after `crate::` on a code line (including `use crate::{a, b::c}`).
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
        rest = after;
    }
    out
}

#[test]
fn modules_use_only_what_their_rules_allow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(allowed) = rules.get(module.as_str()) else {
            problems.push(format!(
                "{}: module `{module}` has no entry in tests/architecture.rs RULES (and \
                 ARCHITECTURE.md): say what it may use",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let code = code.split("//").next().unwrap_or("");
            for used in named_modules(code) {
                if used == module || used == "self" || used == "super" {
                    continue;
                }
                if !allowed.contains(&used.as_str()) {
                    problems.push(format!(
                        "{}:{}: `{module}` uses `crate::{used}`, which ARCHITECTURE.md forbids \
                         (it may use: {})",
                        file.display(),
                        n + 1,
                        if allowed.is_empty() {
                            "nothing of ours".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: a forbidden import is caught, in both `use` forms.
#[test]
fn the_checker_sees_plain_and_grouped_imports() {
    assert_eq!(named_modules("use crate::server::api_config;"), ["server"]);
    assert_eq!(
        named_modules("use crate::{api::AppState, store::Store};"),
        ["api", "store"]
    );
    assert_eq!(
        named_modules("let x = crate::query::evaluate(&s, crate::graph::draw());"),
        ["query", "graph"]
    );
    assert!(named_modules("let crate_name = 1;").is_empty());
}
