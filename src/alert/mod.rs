//! Alerting, grown from Hound's in-process: rules from `alerts.d/*.toml` with warn and crit
//! levels (or conditions over several targets), checked per series, mailed with graphs when
//! they fail, reminded on a ladder while they stay failed, and mailed again on recovery.
//! A client of [`crate::query`] and [`crate::graph`]; never writes to the metric store
//! (except its own self metrics, through the cache like any point).
//!
//! Layout, following one check:
//! - `rule`: reading and validating rule files (errors as `path:line:column: message`).
//! - `check`: evaluating a rule's targets over its window and reducing each series;
//!   `remote`: remote mode (`[alerting].graphite_url`), targets evaluated by another
//!   Graphite's `/render`.
//! - `state`: the per-series and per-rule state machine (OK, PENDING, WARN, CRIT, NODATA,
//!   ERROR), incidents and which mails they have had.
//! - `statedb`: state, history and the board's samples in sled under `data_dir/state`.
//! - `mail` + `templates` + [`format`](mod@format): composing the mail (text, HTML, two
//!   PNG graphs); `smtp`: sending it with lettre.
//! - `scheduler`: the loop tying these together; `board`: what it publishes for the
//!   status pages (the HTTP API's `status` module); [`cli`]: `carbonhound alerts
//!   check|preview|import-hound`; `hound`: reading a Hound `config.json` into rules.
//!
//! Behaviour (README "Alerting" has the user's version):
//! - **Value checked**: each series of the target reduced over `window` (default the last
//!   non-null value within 10 minutes, Hound's `keepLastValue(target)&from=-10mins`). A
//!   series with no point within `no_data_after` (default: `window`) has no data.
//! - **Levels**: inclusive, as Hound: `above` fails at `value >= level`. `crit` is checked
//!   before `warn`. Hound's `threshold` is `crit`.
//! - **Per series**: each series of a glob has its own state; the rule shows its worst
//!   (ERROR > CRIT > NODATA > WARN > PENDING > OK). A series that appears later joins; one
//!   that stops reporting becomes NODATA (`no_data = "alert"`, the default), OK or keeps its
//!   state; one the target no longer gives at all is forgotten after a day.
//! - **Mail**: see `state` for which mails an incident sends and `mail` for their subjects.
//!   One incident is one thread (Message-ID, In-Reply-To, References).
//! - **Delivery**: a mail is marked sent only when the SMTP server accepted it; a failed
//!   send is logged and retried at the next check. State is in sled, so a restart neither
//!   re-sends nor forgets; after a long downtime one reminder is sent, not a burst.
//! - **Reload**: rule files are re-read when they change (checked every tick) and on
//!   SIGHUP. A directory with any bad file is refused whole, logged with `path:line`, shown
//!   on the status page, and the previous rules keep running. At start-up a bad directory
//!   leaves no rules running (the server still starts: ingest must not stop for a typo).
//! - State of rules removed from the files stays in sled (so a rule put back resumes where
//!   it was) but is not shown.

mod ack;
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
mod notify;
mod outbox;
mod remote;
mod rule;
mod scheduler;
mod silence;
mod smtp;
mod state;
mod statedb;
mod templates;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use ack::{clean_text, AckClaim, AckDesk, AckError, AckKey, AckRequest, LINK_LIFETIME};
pub use board::{Board, RuleView, Snapshot};
pub use check::{Backend, Outcome, QueryContext, Reading};
pub use error::AlertError;
pub use hound::{import_hound, HoundError, HoundImport};
pub use mail::{excess_of, graph_url, short_name, Composed, Image, MailError, MailSettings};
pub use notify::{Channel, Routing, Target};
pub use outbox::{Body, Delivery, Notification, Outbox};
pub use remote::{parse_render_json, RemoteError, RemoteGraphite, MAX_RESPONSE_BYTES};
pub use rule::{
    parse_rules, Check, Condition, Direction, Level, NoData, Reduce, Rule, RuleError, RuleErrors,
    RuleSet, RuleType,
};
pub use scheduler::{AlertConfig, Clock, Pending, RoundStats, Scheduler};
pub use silence::{
    NewSilence, Silence, SilenceError, SilenceMatcher, SilencedBy, Silences, MAX_SILENCES,
    MAX_SILENCE_SECS,
};
pub use smtp::SmtpError;
pub use state::{Acked, Incident, MailKind, RuleState, SeriesState, State};
pub use statedb::{BoardSample, HistoryEvent, StateDb, StateDbError, SAMPLE_SECS};
pub use templates::{TemplateError, Templates};

use crate::config::Settings;
use crate::query::MetricSource;
use crate::store::Store;

/// Running alerting: the board the status pages read, and the scheduler task.
pub struct Alerting {
    /// What the status pages show; also takes reload requests.
    pub board: Arc<Board>,
    /// The silences of the state database, for the HTTP API (which adds and expires them).
    pub silences: Silences,
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
    for to in settings
        .alerting
        .email_to
        .iter()
        .chain(&settings.alerting.admin_email)
    {
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
/// `cancel`; its self metrics go into `store` (given when carbon's self metrics are on,
/// `[carbon] stats_interval` > 0). When `[alerting].base_url` is empty the first
/// round waits until the server tells the board its address ([`Board::set_base_url`]).
/// Errors: an `email_from` that is not an address, bad TLS settings, or a state database that
/// cannot be opened (e.g. held by another process).
pub async fn start(
    settings: &Settings,
    source: Arc<dyn MetricSource>,
    store: Option<Arc<Store>>,
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
    let stats_interval = settings.carbon.stats_interval;
    let board = Arc::new(Board::default());
    let b = board.clone();
    let give_up_after = settings.alerting.give_up_after;
    let limits = outbox::Limits {
        default: settings.alerting.max_per_hour,
        contacts: settings
            .contact
            .iter()
            .filter(|c| c.max_per_hour > 0)
            .map(|c| (c.name.clone(), c.max_per_hour))
            .collect(),
    };
    let (sched, outbox, silences) =
        tokio::task::spawn_blocking(move || -> Result<_, AlertError> {
            std::fs::create_dir_all(&state_dir).map_err(|source| AlertError::StateDir {
                path: state_dir.clone(),
                source,
            })?;
            let db = statedb::StateDb::open(&state_dir)?;
            let outbox = Outbox::open(db.sled())?;
            let key = AckKey::load_or_create(&state_dir).map_err(AlertError::Ack)?;
            let desk = AckDesk::open(db.sled(), key)?;
            let silences = db.silences();
            let mut s = Scheduler::new(cfg, source, db, scheduler::system_clock(), b.clone());
            s.use_outbox(outbox.clone());
            s.use_acks(desk.clone());
            b.set_acks(desk);
            if let Some(store) = store {
                s.record_metrics_in(store, stats_interval);
            }
            s.publish();
            Ok((s, outbox, silences))
        })
        .await??;
    board.set_outbox(outbox.clone());
    let delivery = tokio::spawn(outbox::run(
        outbox,
        mailer,
        scheduler::system_clock(),
        give_up_after,
        limits,
        cancel.clone(),
    ));
    let task = tokio::spawn(async move {
        scheduler::run(sched, cancel).await;
        let _ = delivery.await;
    });
    Ok(Alerting {
        board,
        silences,
        task,
    })
}

/// What `carbonhound alerts preview` writes.
pub struct Preview {
    /// The rule.
    pub rule: Rule,
    /// Its state right now.
    pub state: State,
    /// Which mail was composed.
    pub kind: MailKind,
    /// The composed parts.
    pub mail: mail::Composed,
    /// The whole message as sent (RFC 5322).
    pub eml: Vec<u8>,
}

/// The address links in mail point to when `[alerting].base_url` is empty: the HTTP
/// listener's address, with a wildcard host (`0.0.0.0`, `[::]`) replaced by this machine's
/// name.
pub fn default_base_url(bound: std::net::SocketAddr) -> String {
    let host = if bound.ip().is_unspecified() {
        gethostname::gethostname().to_string_lossy().into_owned()
    } else if bound.is_ipv6() {
        format!("[{}]", bound.ip())
    } else {
        bound.ip().to_string()
    };
    format!("http://{host}:{}", bound.port())
}

/// Composes the mail rule `key` (name or slug) would send now, without sending it or
/// touching the state database: the mail a first check would call for — the alert of a
/// failing or no-data rule (`[CRIT] …`, `[NO DATA] …`), the error mail of a rule that cannot
/// evaluate, and for a passing rule the recovery from a failure an hour ago. `kind`
/// overrides (`Recovery` shows the recovery of a rule that fails now, as if it had passed).
/// Reads `source` (for a store opened by this process: whisper files; points still in
/// another process's cache are not seen), or in remote mode (`[alerting].graphite_url`) the
/// remote render API. Blocking.
pub fn preview(
    settings: &Settings,
    source: Arc<dyn MetricSource>,
    key: &str,
    kind: Option<MailKind>,
    now: i64,
) -> Result<Preview, AlertError> {
    let mut cfg = AlertConfig::from_settings(settings);
    if cfg.mail.base_url.is_empty() {
        if let Ok(addr) = settings.http.listen.parse::<std::net::SocketAddr>() {
            cfg.mail.base_url = default_base_url(addr);
        }
    }
    let rules = cfg.load_rules()?;
    let Some(rule) = rules.find(key).cloned() else {
        return Err(AlertError::NoSuchRule {
            key: key.to_string(),
            dir: cfg.rules_dir.clone(),
            names: rules.rules.iter().map(|r| r.name.clone()).collect(),
        });
    };
    let backend = cfg.backend(source);
    let outcome = check::check(&backend, &rule, now);
    // Bypass `for`: a preview shows the mail the rule would send once it fires.
    let mut firing = rule.clone();
    firing.for_secs = 0;
    let no_series = matches!(&outcome, Outcome::Checked(r) if r.is_empty());
    let prev = no_series.then(|| {
        // A target with no series is NODATA once no_data_after has passed: preview that mail.
        state::step(
            &firing,
            None,
            outcome.clone(),
            now - firing.no_data_after,
            &|_| false,
        )
        .0
    });
    let (mut st, kinds) = state::step(&firing, prev.as_ref(), outcome, now, &|_| false);
    let natural = kinds.first().copied();
    let kind = match (kind, natural) {
        (Some(k), _) => k,
        (None, Some(k)) => k,
        (None, None) => MailKind::Recovery,
    };
    if kind == MailKind::Recovery {
        // Show a recovery from a failure that began an hour ago, of the series there are.
        let mut inc = state::Incident {
            started: now - 3600,
            thread: format!("incident.{}.{}@carbonhound", rule.slug, now - 3600),
            announced: Some(now - 3600),
            told: Default::default(),
            reminders_sent: 0,
            last_mail: None,
            worst: State::Crit,
            acked: None,
            escalated: Vec::new(),
        };
        for (name, s) in st.series.iter_mut() {
            inc.told.insert(name.clone(), State::Crit);
            s.state = State::Ok;
        }
        st.state = State::Ok;
        st.incident = Some(inc);
    }
    let images = if kind.is_admin() {
        Vec::new()
    } else {
        scheduler::graphs(&backend, &rule, &st, now, cfg.mail.tz)
    };
    let composed = mail::compose(&rule, &st, kind, now, &cfg.mail, &cfg.templates, images)?;
    let eml = mail::to_message(&composed, &cfg.mail.from, now)?.formatted();
    Ok(Preview {
        rule,
        state: st.state,
        kind,
        mail: composed,
        eml,
    })
}
