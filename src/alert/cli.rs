//! `carbonhound alerts check` and `carbonhound alerts preview`: the rule tools of the
//! command line. They read settings, rule files and whisper files; `preview` writes only the
//! files it is asked for, into the folder it is given, and sends nothing.

use std::fmt::Write as _;
use std::path::Path;

use super::{preview as compose_preview, AlertConfig, AlertError, MailKind};
use crate::config::Settings;
use crate::store::{unix_now, Store};
use crate::whisper::Preallocation;

/// Reads every rule file of `[alerting].rules_dir`. Returns one line per rule and a summary,
/// or every problem as `path:line:column: message`.
pub fn check(config: Option<&Path>) -> Result<String, AlertError> {
    let settings = Settings::load(config)?;
    super::check_mail_settings(&settings)?;
    let cfg = AlertConfig::from_settings(&settings);
    let set = cfg.load_rules().map_err(|errors| AlertError::RulesIn {
        dir: cfg.rules_dir.clone(),
        errors,
    })?;
    let mut out = String::new();
    for r in &set.rules {
        let _ = writeln!(
            out,
            "{}: {} ({} {} {}, {})",
            r.source,
            r.name,
            r.target,
            r.direction.as_str(),
            r.threshold,
            r.rule_type.as_str()
        );
    }
    let _ = write!(
        out,
        "{} alert rules in {} files OK ({})",
        set.rules.len(),
        set.files.len(),
        cfg.rules_dir.display()
    );
    Ok(out)
}

/// Writes the mail rule `name` (or its slug) would send now into `out` as `<slug>.txt`,
/// `<slug>.html` (its image pointing at the PNG beside it), `<slug>.png` and `<slug>.eml`.
/// `kind` is `alert` or `recovery`; by default the rule's current state decides.
pub fn preview(
    config: Option<&Path>,
    name: &str,
    out: &Path,
    kind: Option<&str>,
) -> Result<String, AlertError> {
    let settings = Settings::load(config)?;
    let rules = settings.storage_rules()?;
    let whisper = settings.whisper_dir();
    let store = Store::open(
        &whisper,
        rules,
        settings.cache.max_size,
        Preallocation::Sparse,
        0,
    )
    .map_err(|source| AlertError::DataDir {
        path: whisper.clone(),
        source,
    })?;
    let kind = match kind {
        None => None,
        Some("alert") => Some(MailKind::Alert),
        Some("recovery") => Some(MailKind::Recovery),
        Some(k) => return Err(AlertError::Kind(k.to_string())),
    };
    let p = compose_preview(&settings, &store, name, kind, unix_now())?;
    std::fs::create_dir_all(out).map_err(|source| AlertError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let png_name = format!("{}.png", p.rule.slug);
    // The mail names its graph by Content-ID; the file on disk points at the PNG beside it.
    let html = p
        .mail
        .html
        .replace(&format!("cid:{}", p.mail.cid), &png_name);
    let mut report = String::new();
    let files = [
        ("txt", p.mail.text.into_bytes()),
        ("html", html.into_bytes()),
        ("png", p.mail.png),
        ("eml", p.eml),
    ];
    for (ext, bytes) in files {
        let path = out.join(format!("{}.{ext}", p.rule.slug));
        std::fs::write(&path, bytes).map_err(|source| AlertError::Write {
            path: path.clone(),
            source,
        })?;
        let _ = writeln!(report, "wrote {}", path.display());
    }
    let what = if p.kind == MailKind::Recovery {
        "recovery"
    } else {
        "alert"
    };
    let _ = write!(
        report,
        "\"{}\" is {} now; this is its {what} mail, subject \"{}\"",
        p.rule.name,
        p.status.as_str(),
        p.mail.subject
    );
    Ok(report)
}
