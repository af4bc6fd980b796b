//! Alerting, as Hound does it for graphite-web but in-process: threshold rules from
//! `alerts.d/*.toml`, checked every `[alerting].interval`, mailed with a graph when they fail,
//! reminded on Hound's backoff ladder while they stay failed, and mailed again on recovery.
//! A client of [`crate::query`] and [`crate::graph`]; never writes to the metric store.
//!
//! Layout, following one check:
//! - `rule`: reading and validating rule files (errors as `path:line:column: message`).
//! - `check`: evaluating a rule's target over the last ten minutes; `remote`: remote mode
//!   (`[alerting].graphite_url`), the target evaluated by another Graphite's `/render`.
//! - `state`: the per-rule state machine (OK / Failed / NoData / Error, the failure
//!   episode and which mails it has had); `backoff`: the reminder ladder.
//! - `statedb`: state and history in sled under `data_dir/state`.
//! - `mail` + `templates` + [`format`](mod@format): composing the mail (text, HTML, PNG graph);
//!   `smtp`: sending it with lettre.
//! - `scheduler`: the loop tying these together; `board`: what it publishes for the
//!   status pages (the HTTP API's `status` module); [`cli`]: `carbonhound alerts
//!   check|preview|import-hound`; `hound`: reading a Hound `config.json` into rules.
//!
//! Behaviour, and where it differs from Hound:
//! - **Value checked**: the last non-null value of each series of the target within the
//!   last 10 minutes (Hound: `keepLastValue(target)` over `-10mins`). A target giving
//!   several series (globs) fails when ANY series crosses; the mail lists each failing
//!   series with its value, worst first (at most 20, the rest counted). Series with no value
//!   in the window are ignored.
//! - **Threshold**: inclusive, as Hound: `above` fails at `value >= threshold`, `below` at
//!   `value <= threshold`.
//! - **No data**: when no series has a value in the window (or the target matches nothing)
//!   the rule is `nodata` (grey on the status page) and no mail is sent. Hound counts this as
//!   an error and mails nothing either. An evaluation error is `error` (amber), no mail.
//!   A failure that goes `nodata` stays open: when data returns still failing there is no
//!   second alert; when it returns OK, the recovery mail goes out.
//! - **Mail**: `[ALERT] name` (type alert) or `[NOTICE] name` (type notice) on failure;
//!   reminders with the same subject at +5 min, +30 min, +1 h, +2 h, +4 h, +8 h and then
//!   every 24 h, counted from the first failing check (Hound's README words the ladder as
//!   gaps between mails); `[RECOVERED] name` when it passes again. A failure whose alert
//!   never got out (SMTP down throughout) ends silently.
//! - **Delivery**: a mail is marked sent only when the SMTP server accepted it; a failed
//!   send is logged and retried at the next check. State is in sled, so a restart neither
//!   re-sends nor forgets; after a long downtime one reminder is sent, not a burst.
//! - **Reload**: rule files are re-read when they change (checked every interval) and on
//!   SIGHUP. A directory with any bad file is refused whole, logged with `path:line`, shown
//!   on the status page, and the previous rules keep running. At start-up a bad directory
//!   leaves no rules running (the server still starts: ingest must not stop for a typo).
//! - State of rules removed from the files stays in sled (so a rule put back resumes where
//!   it was) but is not shown.

mod backoff;
mod board;
mod check;
// A namespace: the `carbonhound alerts` subcommands, whose names (`cli::check`,
// `cli::preview`) would collide with the rule checker and the mail preview here.
pub mod cli;
mod error;
// A namespace, not a noun: the mails' and pages' wording of numbers and times reads as
// `format::value`, `format::utc`, `format::duration`.
pub mod format;
mod hound;
mod mail;
mod remote;
mod rule;
mod scheduler;
mod smtp;
mod state;
mod statedb;
mod templates;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use board::{Board, RuleView, Snapshot};
pub use check::{QueryContext, Reading};
pub use error::AlertError;
pub use hound::{import_hound, HoundError, HoundImport};
pub use mail::{Composed, MailError, MailSettings};
pub use remote::{
    parse_render_json, Evaluator, EvaluatorError, RemoteError, RemoteGraphite, MAX_RESPONSE_BYTES,
};
pub use rule::{parse_rules, Direction, Rule, RuleError, RuleErrors, RuleSet, RuleType};
pub use scheduler::{AlertConfig, Clock, Pending, Scheduler};
pub use smtp::SmtpError;
pub use state::{Episode, MailKind, RuleState, Status};
pub use statedb::{HistoryEvent, StateDb, StateDbError};
pub use templates::{TemplateError, Templates};

use crate::config::Settings;
use crate::query::MetricSource;

/// Running alerting: the board the status pages read, and the scheduler task.
pub struct Alerting {
    /// What the status pages show; also takes reload requests.
    pub board: Arc<Board>,
    task: tokio::task::JoinHandle<()>,
}

impl Alerting {
    /// Waits until the scheduler has stopped (after the cancellation token fired) and its
    /// database is closed.
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Checks that `[alerting].email_from` and every `[alerting].email_to` are e-mail
/// addresses (`a@b` or `Name <a@b>`); the error names the setting.
pub fn check_mail_settings(settings: &Settings) -> Result<(), AlertError> {
    let from = &settings.alerting.email_from;
    from.parse::<lettre::message::Mailbox>()
        .map_err(|source| AlertError::EmailFrom {
            value: from.clone(),
            source,
        })?;
    for to in &settings.alerting.email_to {
        to.parse::<lettre::message::Mailbox>()
            .map_err(|source| AlertError::EmailTo {
                value: to.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Starts alerting for a server: checks the mail settings, opens the state database in
/// `settings.state_dir()`, reads the rules, and spawns the scheduler, which runs until
/// `cancel`. Errors: an `email_from` that is not an address, bad TLS settings, or a state
/// database that cannot be opened (e.g. held by another process).
pub async fn start(
    settings: &Settings,
    source: Arc<dyn MetricSource>,
    cancel: CancellationToken,
) -> Result<Alerting, AlertError> {
    let cfg = AlertConfig::from_settings(settings);
    check_mail_settings(settings)?;
    if let Some(r) = &cfg.remote {
        tracing::info!(
            "alerting: remote mode, rules are evaluated by {}",
            r.render_url()
        );
    }
    let mailer = smtp::Mailer::new(&settings.smtp)?;
    let state_dir = settings.state_dir();
    let board = Arc::new(Board::default());
    let b = board.clone();
    let sched = tokio::task::spawn_blocking(move || -> Result<Scheduler, AlertError> {
        std::fs::create_dir_all(&state_dir).map_err(|source| AlertError::StateDir {
            path: state_dir.clone(),
            source,
        })?;
        let db = statedb::StateDb::open(&state_dir)?;
        let s = Scheduler::new(cfg, source, db, scheduler::system_clock(), b);
        s.publish();
        Ok(s)
    })
    .await??;
    let task = tokio::spawn(scheduler::run(sched, mailer, cancel));
    Ok(Alerting { board, task })
}

/// What `carbonhound alerts preview` writes: the mail a rule would send now.
pub struct Preview {
    /// The rule.
    pub rule: Rule,
    /// Its status right now.
    pub status: Status,
    /// Which mail was composed.
    pub kind: MailKind,
    /// The composed parts.
    pub mail: mail::Composed,
    /// The whole message as sent (RFC 5322).
    pub eml: Vec<u8>,
}

/// Composes the mail rule `key` (name or slug) would send now, without sending it or
/// touching the state database: the alert when it fails or has no data, the recovery when it
/// passes (`kind` overrides). Reads `source` (for a store opened by this process: whisper
/// files; points still in another process's cache are not seen), or in remote mode
/// (`[alerting].graphite_url`) the remote render API. Blocking.
pub fn preview(
    settings: &Settings,
    source: &dyn MetricSource,
    key: &str,
    kind: Option<MailKind>,
    now: i64,
) -> Result<Preview, AlertError> {
    let cfg = AlertConfig::from_settings(settings);
    let rules = cfg.load_rules()?;
    let Some(rule) = rules.find(key).cloned() else {
        return Err(AlertError::NoSuchRule {
            key: key.to_string(),
            dir: cfg.rules_dir.clone(),
            names: rules.rules.iter().map(|r| r.name.clone()).collect(),
        });
    };
    let eval = Evaluator::choose(source, &cfg.query, cfg.remote.as_ref());
    let outcome = check::check(&eval, &rule, now);
    let (mut st, _) = state::step(&rule, None, outcome, now);
    let kind = kind.unwrap_or(if st.status == Status::Ok {
        MailKind::Recovery
    } else {
        MailKind::Alert
    });
    if kind == MailKind::Recovery && st.episode.is_none() {
        // Show a recovery from a failure that began an hour ago.
        st.episode = Some(state::Episode {
            started: now - 3600,
            alert_sent: Some(now - 3600),
            reminders_sent: 0,
            last_mail: None,
        });
    }
    let series = check::history(&eval, &rule, now, mail::GRAPH_SPAN);
    let png = mail::graph(&rule, &st, series, now - mail::GRAPH_SPAN, now, cfg.mail.tz)?;
    let composed = mail::compose(&rule, &st, kind, now, &cfg.mail, &cfg.templates, png)?;
    let eml = mail::to_message(&composed, &cfg.mail.from, now)?.formatted();
    Ok(Preview {
        rule,
        status: st.status,
        kind,
        mail: composed,
        eml,
    })
}
