//! `carbonhound alerts check`, `preview` and `import-hound`: the rule tools of the command
//! line. They read settings, rule files and whisper files (or a Hound `config.json`);
//! `preview` and `import-hound` write only the files they are asked for, and send nothing.
//! [`silence`]: `carbonhound silence add|list|expire`, through a running server's HTTP API.

// A namespace: `silence::add`, `silence::list`, `silence::expire`.
pub mod silence;

use std::fmt::Write as _;
use std::path::Path;

use std::sync::Arc;

use super::{check, state};
use super::{
    import_hound as read_hound, preview as compose_preview, AlertConfig, AlertError, Level,
    MailKind, Outcome,
};
use crate::config::Settings;
use crate::store::{unix_now, Store};
use crate::whisper::Preallocation;

fn open_store(settings: &Settings) -> Result<Store, AlertError> {
    let rules = settings.storage_rules()?;
    let whisper = settings.whisper_dir();
    Store::open(
        &whisper,
        rules,
        settings.cache.max_size,
        Preallocation::Sparse,
        0,
    )
    .map_err(|source| AlertError::DataDir {
        path: whisper.clone(),
        source,
    })
}

/// Reads every rule file of `[alerting].rules_dir` and evaluates every rule once against the
/// whisper files of `data_dir` at `now`. Returns one line per rule (its state now) and a
/// summary; fails with every problem as `path:line:column: message` for files that do not
/// read, and with `path:line: rule 'name': why` for rules that cannot be evaluated or whose
/// targets match no series (they would never fire).
pub fn check(config: Option<&Path>) -> Result<String, AlertError> {
    let settings = Settings::load(config)?;
    super::check_mail_settings(&settings)?;
    let cfg = AlertConfig::from_settings(&settings);
    let set = cfg.load_rules().map_err(|errors| AlertError::RulesIn {
        dir: cfg.rules_dir.clone(),
        errors,
    })?;
    let store = open_store(&settings)?;
    let backend = cfg.backend(Arc::new(store));
    let now = unix_now();
    let mut out = String::new();
    let mut problems = Vec::new();
    for r in &set.rules {
        let outcome = check::check(&backend, r, now);
        let state = match &outcome {
            Outcome::Error(e) => {
                problems.push(format!(
                    "{}: rule '{}': cannot be evaluated: {e}",
                    r.source, r.name
                ));
                "ERROR".to_string()
            }
            Outcome::Checked(readings) if readings.is_empty() => {
                problems.push(format!(
                    "{}: rule '{}': {} matches no series, so it can never fire",
                    r.source,
                    r.name,
                    r.target_text()
                ));
                "NO SERIES".to_string()
            }
            Outcome::Checked(readings) => {
                let mut firing = r.clone();
                firing.for_secs = 0;
                let (st, _) = state::step(&firing, None, outcome.clone(), now, &|_| false);
                format!("{} ({} series)", st.state.label(), readings.len())
            }
        };
        let _ = writeln!(
            out,
            "{}: {} [{}, {}] {}",
            r.source,
            r.name,
            r.target_text(),
            describe_levels(r),
            state
        );
    }
    let _ = write!(
        out,
        "{} alert rules in {} files read ({})",
        set.rules.len(),
        set.files.len(),
        cfg.rules_dir.display()
    );
    if let Some(r) = &cfg.remote {
        let _ = write!(out, "\nremote mode: evaluated by {}", r.render_url());
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(AlertError::RulesDoNotWork {
            report: out,
            problems,
        })
    }
}

fn describe_levels(r: &super::Rule) -> String {
    let mut parts = Vec::new();
    for l in [Level::Warn, Level::Crit] {
        let t = r.level_text(l);
        if t != l.as_str() {
            parts.push(t);
        }
    }
    if let Some(d) = r.direction() {
        parts.push(d.as_str().to_string());
    }
    parts.push(r.rule_type.as_str().to_string());
    parts.join(", ")
}

/// Writes the mail rule `name` (or its slug) would send now into `out` as `<slug>.txt`,
/// `<slug>.html` (its images pointing at the PNGs beside it), `<slug>-last-hour.png`,
/// `<slug>-last-24h.png` and `<slug>.eml`. `kind` is `alert`, `recovery` or `error`; by
/// default the mail a check would send now (the NO DATA mail for a rule without data).
pub fn preview(
    config: Option<&Path>,
    name: &str,
    out: &Path,
    kind: Option<&str>,
) -> Result<String, AlertError> {
    let settings = Settings::load(config)?;
    let store = open_store(&settings)?;
    let kind = match kind {
        None => None,
        Some("alert") => Some(MailKind::Fire),
        Some("recovery") => Some(MailKind::Recovery),
        Some("error") => Some(MailKind::Error),
        Some(k) => return Err(AlertError::Kind(k.to_string())),
    };
    let p = compose_preview(&settings, Arc::new(store), name, kind, unix_now())?;
    std::fs::create_dir_all(out).map_err(|source| AlertError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    // The mail names its graphs by Content-ID; the file on disk points at the PNGs beside it.
    let mut html = p.mail.html.clone();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for img in &p.mail.images {
        html = html.replace(&format!("cid:{}", img.cid), &img.name);
        files.push((img.name.clone(), img.png.clone()));
    }
    files.push((
        format!("{}.txt", p.rule.slug),
        p.mail.text.clone().into_bytes(),
    ));
    files.push((format!("{}.html", p.rule.slug), html.into_bytes()));
    files.push((format!("{}.eml", p.rule.slug), p.eml));
    let mut report = String::new();
    for (file, bytes) in files {
        let path = out.join(file);
        std::fs::write(&path, bytes).map_err(|source| AlertError::Write {
            path: path.clone(),
            source,
        })?;
        let _ = writeln!(report, "wrote {}", path.display());
    }
    let _ = write!(
        report,
        "\"{}\" is {} now; this is its {} mail, subject \"{}\"",
        p.rule.name,
        p.state.label(),
        p.kind.as_str(),
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
