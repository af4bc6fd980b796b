//! Unknown keys are refused, not ignored: a misspelt `datadir` or `[smtps]` would otherwise
//! leave the setting at its default without a word. The known keys are those of the embedded
//! defaults (`defaults.toml` holds every key, as `examples/carbonhound.toml` documents), so a
//! new setting is known the moment it has a default. The refusal names the file and line (or
//! the environment variable), the key, and the nearest valid key.

use std::path::Path;

use super::ConfigError;

/// Checks every key of the TOML `text` read from `path` against the `known` table.
pub fn check_file(path: &Path, text: &str, known: &toml::Table) -> Result<(), ConfigError> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(()); // a syntax error: the config crate reports it with its line
    };
    for (key, value) in &table {
        let Some(expected) = known.get(key) else {
            return Err(unknown_in_file(path, text, None, key, known));
        };
        if let (Some(section), Some(expected)) = (value.as_table(), expected.as_table()) {
            for inner in section.keys() {
                if !expected.contains_key(inner) {
                    return Err(unknown_in_file(path, text, Some(key), inner, expected));
                }
            }
        }
    }
    Ok(())
}

/// Checks every `CARBONHOUND_<SECTION>__<KEY>` (or `CARBONHOUND_<KEY>`) variable in `vars`.
pub fn check_env<'a>(
    vars: impl Iterator<Item = (String, String)> + 'a,
    known: &toml::Table,
) -> Result<(), ConfigError> {
    for (name, _) in vars {
        let Some(rest) = name.strip_prefix("CARBONHOUND_") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let (section, key) = match lower.split_once("__") {
            Some((s, k)) => (Some(s), k),
            None => (None, lower.as_str()),
        };
        let (table, key) = match section {
            None => (known, key),
            Some(s) => match known.get(s).and_then(|v| v.as_table()) {
                Some(t) => (t, key),
                None => {
                    return Err(ConfigError::UnknownKey {
                        origin: format!("environment variable {name}"),
                        key: s.to_string(),
                        hint: hint(s, known),
                    })
                }
            },
        };
        if !table.contains_key(key) || (section.is_none() && table[key].is_table()) {
            let full = match section {
                Some(s) => format!("{s}.{key}"),
                None => key.to_string(),
            };
            return Err(ConfigError::UnknownKey {
                origin: format!("environment variable {name}"),
                key: full,
                hint: hint(key, table),
            });
        }
    }
    Ok(())
}

fn unknown_in_file(
    path: &Path,
    text: &str,
    section: Option<&str>,
    key: &str,
    candidates: &toml::Table,
) -> ConfigError {
    let line = line_of(text, section, key)
        .map(|n| format!(":{n}"))
        .unwrap_or_default();
    ConfigError::UnknownKey {
        origin: format!("{}{line}", path.display()),
        key: match section {
            Some(s) => format!("{s}.{key}"),
            None => key.to_string(),
        },
        hint: hint(key, candidates),
    }
}

/// The 1-based line where `key` is set (inside `[section]` when given), or where `[key]` opens.
fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            let name = name.trim().trim_matches('"').to_string();
            if section.is_none() && name == key {
                return Some(n + 1);
            }
            current = Some(name);
            continue;
        }
        let k = t.split('=').next().unwrap_or("").trim().trim_matches('"');
        if t.contains('=') && k == key && current.as_deref() == section {
            return Some(n + 1);
        }
    }
    None
}

/// ", did you mean `x`?" for the nearest candidate by edit distance, when one is close.
fn hint(key: &str, candidates: &toml::Table) -> String {
    let nearest = candidates
        .keys()
        .map(|c| (strsim::damerau_levenshtein(key, c), c))
        .min();
    match nearest {
        Some((d, c)) if d <= key.len().max(c.len()) / 2 + 1 => format!("; did you mean `{c}`?"),
        _ => {
            let all: Vec<&str> = candidates.keys().map(String::as_str).collect();
            format!("; valid keys here: {}", all.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> toml::Table {
        super::super::DEFAULTS_TOML.parse().unwrap()
    }

    fn file_error(text: &str) -> String {
        check_file(Path::new("/etc/c.toml"), text, &known())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_name_file_line_key_and_the_nearest_valid_key() {
        let e = file_error("# settings\ndatadir = \"/srv\"\n");
        assert!(e.contains("/etc/c.toml:2"), "{e}");
        assert!(e.contains("`datadir`") && e.contains("`data_dir`"), "{e}");
        let e = file_error("[smtps]\nport = 25\n");
        assert!(e.contains(":1") && e.contains("`smtp`"), "{e}");
        let e = file_error("[smtp]\nport = 25\nhots = \"mail\"\n");
        assert!(
            e.contains(":3") && e.contains("smtp.hots") && e.contains("`host`"),
            "{e}"
        );
        let e = file_error("zzzzzzzzzzzz = 1\n");
        assert!(
            e.contains("valid keys here: ") && e.contains("data_dir"),
            "{e}"
        );
        assert!(check_file(Path::new("x"), super::super::DEFAULTS_TOML, &known()).is_ok());
    }

    #[test]
    fn unknown_environment_variables_are_named() {
        let vars = |n: &str| vec![(n.to_string(), "1".to_string())].into_iter();
        assert!(check_env(vars("CARBONHOUND_SMTP__PORT"), &known()).is_ok());
        assert!(check_env(vars("CARBONHOUND_DATA_DIR"), &known()).is_ok());
        assert!(check_env(vars("OTHER_THING"), &known()).is_ok());
        let e = check_env(vars("CARBONHOUND_SMTP__HOTS"), &known())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CARBONHOUND_SMTP__HOTS") && e.contains("`host`"),
            "{e}"
        );
        let e = check_env(vars("CARBONHOUND_DATADIR"), &known())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`data_dir`"), "{e}");
        let e = check_env(vars("CARBONHOUND_SMPT__PORT"), &known())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`smtp`"), "{e}");
    }
}
