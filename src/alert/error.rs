//! [`AlertError`]: why alerting could not start, or an alert tool (`carbonhound alerts
//! check|preview|import-hound`) could not do its job. Messages name the setting, file or
//! rule to fix.
//! Errors of a running check or send are not here: they are logged and shown on the status
//! page (see [`super::scheduler`]), never fatal.

use std::path::PathBuf;

use super::hound::HoundError;
use super::mail::MailError;
use super::rule::RuleErrors;
use super::smtp::SmtpError;
use super::statedb::StateDbError;
use crate::config::ConfigError;
use crate::config::SchemaError;

/// Why alerting or an alert tool stopped.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The settings could not be read.
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// `[alerting].email_from` is not an address (`a@b` or `Name <a@b>`).
    #[error("alerting.email_from '{value}' is not an e-mail address: {source}")]
    EmailFrom {
        /// The setting's value.
        value: String,
        /// lettre's reason.
        source: lettre::address::AddressError,
    },
    /// An `[alerting].email_to` entry is not an address.
    #[error("alerting.email_to: '{value}' is not an e-mail address: {source}")]
    EmailTo {
        /// The entry.
        value: String,
        /// lettre's reason.
        source: lettre::address::AddressError,
    },
    /// The SMTP client could not be built (TLS set-up).
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    /// `data_dir/state` could not be created.
    #[error("cannot create {}: {source}", path.display())]
    StateDir {
        /// The folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The state database could not be opened (often: another process holds it).
    #[error(transparent)]
    StateDb(#[from] StateDbError),
    /// The acknowledge-link key could not be read or created.
    #[error(transparent)]
    Ack(#[from] super::ack::AckError),
    /// The start-up task panicked or was cancelled.
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
    /// Rule files with problems, each as `path:line:column: message`.
    #[error(transparent)]
    Rules(#[from] RuleErrors),
    /// As [`AlertError::Rules`], for `alerts check`, which says which folder it read.
    #[error("alert rules in {} have problems:\n{errors}", dir.display())]
    RulesIn {
        /// `[alerting].rules_dir`.
        dir: PathBuf,
        /// The problems.
        errors: RuleErrors,
    },
    /// `alerts check`: rules that read well but cannot be evaluated or match no series, each
    /// as `path:line: rule 'name': why`, after the report of the rules that are fine.
    #[error("{report}\n{} alert rules do not work:\n{}", problems.len(), problems.join("\n"))]
    RulesDoNotWork {
        /// One line per rule checked.
        report: String,
        /// One line per rule that does not work.
        problems: Vec<String>,
    },
    /// `alerts preview NAME` names no rule.
    #[error("no rule named '{key}' in {} (rules: {})", dir.display(), names.join(", "))]
    NoSuchRule {
        /// The name or slug asked for.
        key: String,
        /// `[alerting].rules_dir`.
        dir: PathBuf,
        /// The names there are.
        names: Vec<String>,
    },
    /// The storage rule files (needed to open the store) are bad.
    #[error(transparent)]
    StorageRules(#[from] SchemaError),
    /// The whisper directory could not be opened.
    #[error("cannot open data directory {}: {source}", path.display())]
    DataDir {
        /// `data_dir/whisper`.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The mail could not be composed.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// `alerts preview --kind` other than `alert`, `recovery` or `error`.
    #[error("--kind must be alert, recovery or error, not '{0}'")]
    Kind(String),
    /// The preview folder could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `alerts import-hound`: the Hound configuration could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `alerts import-hound`: the Hound configuration is not one carbonhound can take over.
    #[error(transparent)]
    Hound(#[from] HoundError),
    /// `alerts import-hound`: the output file exists and `--force` was not given.
    #[error("{} exists; not overwriting it (use --force to replace it)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A preview file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}
