//! [`ConfigError`]: why the settings could not be read. Owns the wording an operator sees
//! when `carbonhound serve` or `check-config` refuses a configuration; never logs or exits
//! itself (the caller prints the message).

use std::path::PathBuf;

/// A setting that could not be read, with the source or key it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config FILE` names a file that is not there.
    #[error("config file {} does not exist", path.display())]
    MissingFile {
        /// The path given.
        path: PathBuf,
    },
    /// The `config` crate could not merge or deserialize the layers: TOML syntax, a wrong
    /// type, or a value refused by its parser (the message names the key and the value).
    #[error("reading settings: {0}")]
    Read(#[from] config::ConfigError),
    /// A key no setting has: a file's (with its line) or a `CARBONHOUND_*` variable's.
    #[error("{origin}: unknown setting `{key}`{hint}")]
    UnknownKey {
        /// `path:line` of the file, or `environment variable NAME`.
        origin: String,
        /// The dotted key as given, e.g. `smtp.hots`.
        key: String,
        /// `; did you mean `host`?`, or the list of valid keys.
        hint: String,
    },
    /// A value that parses but is out of range, e.g. `cache.writers = 0`.
    #[error("{key} {reason}")]
    Invalid {
        /// The dotted key, e.g. `cache.writers`.
        key: &'static str,
        /// What is wrong and what is accepted, e.g. `must be at least 1`.
        reason: String,
    },
}
