//! `carbonhound alerts check`, `preview` and `import-hound`: the rule tools of the command
//! line. They read settings, rule files and whisper files (or a Hound `config.json`);
//! `preview` and `import-hound` write only the files they are asked for, and send nothing.

use std::fmt::Write as _;
use std::path::Path;

use super::{
    import_hound as read_hound, preview as compose_preview, AlertConfig, AlertError, MailKind,
};
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
    if let Some(r) = &cfg.remote {
        let _ = write!(out, "\nremote mode: evaluated by {}", r.render_url());
    }
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

/// Largest Hound configuration read, in bytes.
const MAX_HOUND_FILE_BYTES: u64 = 16 << 20;

/// What `alerts import-hound` did: the settings to print on stdout, and the report line
/// (which file it wrote, how many rules) for stderr.
pub struct Imported {
    /// The `carbonhound.toml` lines to add (TOML with comments).
    pub settings: String,
    /// `wrote FILE: N rules (…)`.
    pub report: String,
}

/// Reads Hound's `config.json` at `hound` and writes the equivalent rule file to `out`
/// (its folder created if missing). An existing `out` is replaced only with `force`;
/// nothing is written when the configuration has any problem (see
/// [`import_hound`](super::import_hound) for what is refused and why). Targets are checked
/// with the default `[query].max_expression_depth`.
pub fn import_hound(hound: &Path, out: &Path, force: bool) -> Result<Imported, AlertError> {
    let read_error = |source| AlertError::ReadFile {
        path: hound.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(hound).map_err(read_error)?.len();
    if len > MAX_HOUND_FILE_BYTES {
        return Err(read_error(std::io::Error::other(format!(
            "{len} bytes; a Hound configuration is at most {MAX_HOUND_FILE_BYTES}"
        ))));
    }
    let bytes = std::fs::read(hound).map_err(read_error)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text (JSON is UTF-8)",
        ))
    })?;
    let max_depth = Settings::defaults().query.max_expression_depth;
    let imported = read_hound(&text, &hound.display().to_string(), max_depth)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| AlertError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // Atomic: a file appearing between a check and the write is not overwritten either.
        options.create_new(true);
    }
    let write_error = |source| AlertError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut file = options.open(out).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            AlertError::Exists {
                path: out.to_path_buf(),
            }
        } else {
            write_error(e)
        }
    })?;
    std::io::Write::write_all(&mut file, imported.rules_toml.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(Imported {
        settings: imported.settings_toml,
        report: format!(
            "wrote {}: {} rule{} ({}); the settings to add to carbonhound.toml are on stdout",
            out.display(),
            imported.names.len(),
            if imported.names.len() == 1 { "" } else { "s" },
            imported.names.join(", ")
        ),
    })
}
