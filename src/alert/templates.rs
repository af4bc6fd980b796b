//! The minijinja templates of alert mail and status pages. The files of the repository's
//! `templates/` folder are compiled in; a file of the same name in `[alerting].templates_dir`
//! overrides its built-in twin, read afresh at every use so edits apply without a restart.
//! An override that does not compile or render is logged and the built-in one used instead,
//! so a template typo never stops an alert from going out.
//!
//! `.html` templates are auto-escaped; `.txt` templates are not.

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

/// The built-in templates: (name, source).
pub const BUILTIN: &[(&str, &str)] = &[
    ("alert.txt", include_str!("../../templates/alert.txt")),
    ("alert.html", include_str!("../../templates/alert.html")),
    ("page.html", include_str!("../../templates/page.html")),
    ("status.html", include_str!("../../templates/status.html")),
    ("rule.html", include_str!("../../templates/rule.html")),
    ("ack.html", include_str!("../../templates/ack.html")),
];

/// Largest template file read from the templates folder, in bytes.
const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// Where templates come from: the built-ins, overridden by files in `dir`.
#[derive(Debug, Clone)]
pub struct Templates {
    dir: PathBuf,
}

fn new_env<'a>() -> Environment<'a> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env
}

/// Why no template rendered: a built-in one is broken (a bug of ours), or the built-in set
/// failed to render with this context.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A compiled-in template does not compile.
    #[error("built-in template {name}: {source}")]
    Builtin {
        /// The template's file name.
        name: String,
        /// minijinja's reason.
        source: minijinja::Error,
    },
    /// Rendering the built-in template failed.
    #[error("template {name}: {source:#}")]
    Render {
        /// The template's file name.
        name: String,
        /// minijinja's reason, with its chain.
        source: minijinja::Error,
    },
}

fn builtin(name: &str) -> impl FnOnce(minijinja::Error) -> TemplateError + '_ {
    move |source| TemplateError::Builtin {
        name: name.to_string(),
        source,
    }
}

fn builtin_env<'a>() -> Result<Environment<'a>, TemplateError> {
    let mut env = new_env();
    for (name, src) in BUILTIN {
        env.add_template(name, src).map_err(builtin(name))?;
    }
    Ok(env)
}

impl Templates {
    /// Templates overridable from `dir` (which need not exist).
    pub fn new(dir: &Path) -> Templates {
        Templates {
            dir: dir.to_path_buf(),
        }
    }

    fn override_of(&self, name: &str) -> Option<String> {
        let path = self.dir.join(name);
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_TEMPLATE_BYTES {
            return None;
        }
        match std::fs::read_to_string(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(
                    "template {} unreadable, using the built-in one: {e}",
                    path.display()
                );
                None
            }
        }
    }

    /// Renders template `name` with `ctx`. Each override from the templates folder that
    /// compiles replaces its built-in twin (one that does not is logged and skipped); if the
    /// result fails to render, the built-in set renders instead (and the problem is logged).
    pub fn render<S: Serialize>(&self, name: &str, ctx: &S) -> Result<String, TemplateError> {
        let mut env = new_env();
        let mut overridden = false;
        for (n, builtin) in BUILTIN {
            if let Some(src) = self.override_of(n) {
                match env.add_template_owned(*n, src) {
                    Ok(()) => {
                        overridden = true;
                        continue;
                    }
                    Err(e) => tracing::error!(
                        "template {} does not compile, using the built-in one: {e:#}",
                        self.dir.join(n).display()
                    ),
                }
            }
            env.add_template(n, builtin).map_err(self::builtin(n))?;
        }
        if overridden {
            match env.get_template(name).and_then(|t| t.render(ctx)) {
                Ok(s) => return Ok(s),
                Err(e) => tracing::error!(
                    "templates in {} failed, using the built-in {name}: {e:#}",
                    self.dir.display()
                ),
            }
        }
        let env = builtin_env()?;
        env.get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| TemplateError::Render {
                name: name.to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let t = Templates::new(&dir.path().join("missing"));
        let ctx = serde_json::json!({"x": "<b>"});
        std::fs::write(dir.path().join("alert.txt"), "custom {{ x }}").unwrap();
        let t2 = Templates::new(dir.path());
        assert_eq!(t2.render("alert.txt", &ctx).unwrap(), "custom <b>");
        // A broken override falls back to the built-in template.
        std::fs::write(dir.path().join("alert.txt"), "broken {{ x ").unwrap();
        let fallback = t2.render("alert.txt", &ctx);
        let text = |r: Result<String, TemplateError>| r.map_err(|e| e.to_string());
        assert_eq!(text(fallback), text(t.render("alert.txt", &ctx)));
        // html is escaped.
        std::fs::write(dir.path().join("page.html"), "{{ x }}").unwrap();
        std::fs::write(dir.path().join("status.html"), "{% extends 'page.html' %}").unwrap();
        assert_eq!(t2.render("status.html", &ctx).unwrap(), "&lt;b&gt;");
    }
}
