//! The scheduler: every `[alerting].interval` it re-reads the rule files if they changed,
//! checks every rule, steps its state machine, stores state and history in sled, and sends
//! the mail that calls for; then publishes the board for the status pages.
//!
//! Time comes from an injected [`Clock`], so tests drive days of backoff without sleeping.
//! Checking and storing are blocking work (whisper reads, sled) done by
//! [`Scheduler::check_all`] and [`Scheduler::settle`]; only sending is async. A mail is
//! marked sent only after the SMTP server took it; otherwise the next check sends it again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use tokio_util::sync::CancellationToken;

use super::board::{Board, RuleView, Snapshot, HISTORY_SHOWN};
use super::check::{self, QueryContext};
use super::format;
use super::mail::{self, MailError, MailSettings, GRAPH_SPAN};
use super::remote::{Evaluator, RemoteGraphite};
use super::rule::{self, Rule, RuleSet};
use super::smtp::Mailer;
use super::state::{self, MailKind, RuleState, Status};
use super::statedb::{HistoryEvent, StateDb};
use super::templates::Templates;
use crate::config::Settings;
use crate::query::MetricSource;

/// The source of "now" (epoch seconds).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::store::unix_now)
}

/// Everything alerting reads from the settings.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// `[alerting].rules_dir`.
    pub rules_dir: PathBuf,
    /// `[alerting].interval`.
    pub interval: Duration,
    /// Mail settings.
    pub mail: MailSettings,
    /// How targets are evaluated.
    pub query: QueryContext,
    /// `[query].max_expression_depth`, checked when rules are read.
    pub max_depth: usize,
    /// Templates.
    pub templates: Templates,
    /// Remote mode (`[alerting].graphite_url`): rules are evaluated there, not in-process.
    pub remote: Option<RemoteGraphite>,
}

impl AlertConfig {
    /// From the server's settings.
    pub fn from_settings(s: &Settings) -> AlertConfig {
        AlertConfig {
            rules_dir: s.alerting.rules_dir.clone(),
            interval: s.alerting.interval,
            mail: MailSettings {
                from: s.alerting.email_from.clone(),
                default_to: s.alerting.email_to.clone(),
                base_url: s.alerting.base_url.clone(),
                tz: s.query.timezone,
            },
            query: QueryContext::from_settings(&s.query),
            max_depth: s.query.max_expression_depth,
            templates: Templates::new(&s.alerting.templates_dir),
            remote: RemoteGraphite::from_settings(s),
        }
    }

    /// Reads the rules directory.
    pub fn load_rules(&self) -> Result<RuleSet, rule::RuleErrors> {
        rule::load_dir(&self.rules_dir, self.max_depth, &self.mail.default_to)
    }
}

/// A mail a check called for, ready to send.
pub struct Pending {
    /// The rule.
    pub rule: Rule,
    /// Its state after the check (already stored).
    pub state: RuleState,
    /// Which mail.
    pub kind: MailKind,
    /// Subject, for logs and history.
    pub subject: String,
    /// Recipients, for logs and history.
    pub to: Vec<String>,
    /// The message, or why it could not be composed.
    pub message: Result<Message, MailError>,
}

/// The alert loop's state: rules, database, clock.
pub struct Scheduler {
    cfg: AlertConfig,
    /// What rules are checked against (the metric store, with the event store for `events()`).
    source: Arc<dyn MetricSource>,
    db: StateDb,
    rules: RuleSet,
    fingerprint: Option<Vec<u8>>,
    rules_error: Option<String>,
    clock: Clock,
    board: Arc<Board>,
}

fn describe(rule: &Rule, s: &RuleState) -> String {
    let th = format::value(rule.threshold);
    match s.status {
        Status::Ok => match s.value {
            Some(v) => format!(
                "OK: {} (fails {} {th})",
                format::value(v),
                rule.direction.as_str()
            ),
            None => "OK".into(),
        },
        Status::Failed => match s.failing.first() {
            Some(r) if s.failing_total > 1 => format!(
                "FAILED: {} series {} {th}; worst {} = {}",
                s.failing_total,
                rule.direction.as_str(),
                r.series,
                format::value(r.value)
            ),
            Some(r) => format!(
                "FAILED: {} = {}, {} {th}",
                r.series,
                format::value(r.value),
                rule.direction.as_str()
            ),
            None => "FAILED".into(),
        },
        Status::NoData => format!("NO DATA: {}", s.message),
        Status::Error => format!("ERROR: {}", s.message),
    }
}

impl Scheduler {
    /// A scheduler over `db`, reading rules at once (a bad rules directory is logged and
    /// leaves no rules running until it is fixed).
    pub fn new(
        cfg: AlertConfig,
        source: Arc<dyn MetricSource>,
        db: StateDb,
        clock: Clock,
        board: Arc<Board>,
    ) -> Scheduler {
        let mut s = Scheduler {
            cfg,
            source,
            db,
            rules: RuleSet::default(),
            fingerprint: None,
            rules_error: None,
            clock,
            board,
        };
        s.reload_rules(true);
        s
    }

    /// Where targets are evaluated: the remote Graphite in remote mode, else `source`.
    fn evaluator(&self) -> Evaluator<'_> {
        Evaluator::choose(&*self.source, &self.cfg.query, self.cfg.remote.as_ref())
    }

    /// The rules running now.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Why the rule files were last refused, if they were.
    pub fn rules_error(&self) -> Option<&str> {
        self.rules_error.as_deref()
    }

    /// The stored state of rule `name`.
    pub fn state(&self, name: &str) -> Option<RuleState> {
        self.db.load(name)
    }

    /// Re-reads the rule files if they changed since the last read (or always, with
    /// `force`). A bad directory is refused whole: the error is logged with path:line and
    /// the old rules keep running. Returns whether the rules were replaced.
    pub fn reload_rules(&mut self, force: bool) -> bool {
        let fp = rule::fingerprint(&self.cfg.rules_dir);
        if !force && self.fingerprint.as_ref() == Some(&fp) {
            return false;
        }
        self.fingerprint = Some(fp);
        match self.cfg.load_rules() {
            Ok(set) => {
                tracing::info!(
                    "alert rules: {} rules from {} files in {}",
                    set.rules.len(),
                    set.files.len(),
                    self.cfg.rules_dir.display()
                );
                self.rules = set;
                self.rules_error = None;
                true
            }
            Err(e) => {
                tracing::error!(
                    "alert rules NOT reloaded, the previous {} rules keep running:\n{e}",
                    self.rules.rules.len()
                );
                self.rules_error = Some(e.to_string());
                false
            }
        }
    }

    fn record(&self, rule: &str, kind: &str, text: String, at: i64) {
        if let Err(e) = self.db.record(
            rule,
            &HistoryEvent {
                at,
                kind: kind.into(),
                text,
            },
        ) {
            tracing::error!("{e}");
        }
    }

    /// Checks every rule once at the clock's now: steps its state, stores it (with a history
    /// event when the status changed) and returns the mail due. Blocking.
    pub fn check_all(&mut self) -> Vec<Pending> {
        let mut pending = Vec::new();
        for rule in self.rules.rules.clone() {
            let now = (self.clock)();
            let prev = self.db.load(&rule.name);
            let outcome = check::check(&self.evaluator(), &rule, now);
            let (state, kind) = state::step(&rule, prev.as_ref(), outcome, now);
            if prev.as_ref().map(|p| p.status) != Some(state.status) {
                let text = describe(&rule, &state);
                match state.status {
                    Status::Failed => tracing::warn!("alert '{}': {text}", rule.name),
                    _ => tracing::info!("alert '{}': {text}", rule.name),
                }
                self.record(&rule.name, state.status.as_str(), text, now);
            }
            if let Err(e) = self.db.save(&rule.name, &state) {
                tracing::error!("{e}");
            }
            if let Some(kind) = kind {
                pending.push(self.compose(rule, state, kind, now));
            }
        }
        pending
    }

    /// The mail `kind` for `rule` in `state`, with its graph.
    pub fn compose(&self, rule: Rule, state: RuleState, kind: MailKind, now: i64) -> Pending {
        let series = check::history(&self.evaluator(), &rule, now, GRAPH_SPAN);
        let png = mail::graph(
            &rule,
            &state,
            series,
            now - GRAPH_SPAN,
            now,
            self.cfg.mail.tz,
        )
        .or_else(|e| {
            tracing::error!(
                "alert '{}': graph failed, sending an empty one: {e}",
                rule.name
            );
            mail::graph(
                &rule,
                &state,
                Vec::new(),
                now - GRAPH_SPAN,
                now,
                self.cfg.mail.tz,
            )
        });
        let composed = png.and_then(|png| {
            mail::compose(
                &rule,
                &state,
                kind,
                now,
                &self.cfg.mail,
                &self.cfg.templates,
                png,
            )
        });
        let subject = mail::subject(&rule, kind);
        let to = rule.recipients(&self.cfg.mail.default_to).to_vec();
        let message = composed.and_then(|c| mail::to_message(&c, &self.cfg.mail.from, now));
        Pending {
            rule,
            state,
            kind,
            subject,
            to,
            message,
        }
    }

    /// Records the outcome of sending each pending mail: a delivered mail moves the state
    /// on (`state::delivered`); a failed one is logged and left due for the next check.
    /// Then flushes the database. Blocking. A failure comes as its text (a [`MailError`] or
    /// [`SmtpError`](super::SmtpError) shown): that text is what the state keeps as `mail_error`
    /// and compares, so one error repeated is recorded once.
    pub fn settle(&mut self, results: Vec<(Pending, Result<(), String>)>) {
        for (p, result) in results {
            let now = (self.clock)();
            let mut st = p.state;
            match result {
                Ok(()) => {
                    state::delivered(&mut st, p.kind, now);
                    tracing::info!(
                        "alert '{}': sent \"{}\" to {}",
                        p.rule.name,
                        p.subject,
                        p.to.join(", ")
                    );
                    self.record(
                        &p.rule.name,
                        "mail",
                        format!("sent \"{}\" to {}", p.subject, p.to.join(", ")),
                        now,
                    );
                }
                Err(e) => {
                    tracing::error!(
                        "alert '{}': \"{}\" NOT sent, retrying at the next check: {e}",
                        p.rule.name,
                        p.subject
                    );
                    if st.mail_error.as_deref() != Some(e.as_str()) {
                        self.record(
                            &p.rule.name,
                            "mail-error",
                            format!("\"{}\" not sent: {e}", p.subject),
                            now,
                        );
                    }
                    st.mail_error = Some(e);
                }
            }
            if let Err(e) = self.db.save(&p.rule.name, &st) {
                tracing::error!("{e}");
            }
        }
        self.db.flush();
    }

    /// Publishes the rules and their state to the board.
    pub fn publish(&self) {
        let rules = self
            .rules
            .rules
            .iter()
            .map(|r| RuleView {
                rule: r.clone(),
                state: self.db.load(&r.name),
                history: self.db.history(&r.name, HISTORY_SHOWN),
            })
            .collect();
        self.board.publish(Snapshot {
            rules,
            rules_error: self.rules_error.clone(),
            updated: (self.clock)(),
        });
    }

    /// One full round, for callers that are not the async loop (tests, tools): check, then
    /// hand each mail to `send`, then settle and publish.
    pub fn round_with(
        &mut self,
        mut send: impl FnMut(&Pending) -> Result<(), String>,
    ) -> Vec<(String, MailKind)> {
        self.reload_rules(false);
        let pending = self.check_all();
        let mut sent = Vec::new();
        let results = pending
            .into_iter()
            .map(|p| {
                let r = match &p.message {
                    Ok(_) => send(&p),
                    Err(e) => Err(e.to_string()),
                };
                if r.is_ok() {
                    sent.push((p.subject.clone(), p.kind));
                }
                (p, r)
            })
            .collect();
        self.settle(results);
        self.publish();
        sent
    }
}

/// The alert loop: a round every interval (and at once on a reload request) until
/// `cancel`. A round in progress finishes its current mail before the loop stops.
pub async fn run(sched: Scheduler, mailer: Mailer, cancel: CancellationToken) {
    let interval = sched.cfg.interval;
    let board = sched.board.clone();
    let mut sched = Some(sched);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut force = false;
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
            _ = board.reload_requested() => force = true,
        }
        let Some(mut s) = sched.take() else { break };
        let checked = tokio::task::spawn_blocking(move || {
            s.reload_rules(force);
            let p = s.check_all();
            (s, p)
        })
        .await;
        let (s, pending) = match checked {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("alert scheduler stopped: {e}");
                return;
            }
        };
        let mut results = Vec::with_capacity(pending.len());
        for p in pending {
            let r = match &p.message {
                Ok(m) => mailer.send(m.clone()).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            results.push((p, r));
            if cancel.is_cancelled() {
                break;
            }
        }
        let mut s = s;
        let settled = tokio::task::spawn_blocking(move || {
            s.settle(results);
            s.publish();
            s
        })
        .await;
        match settled {
            Ok(s) => sched = Some(s),
            Err(e) => {
                tracing::error!("alert scheduler stopped: {e}");
                return;
            }
        }
    }
    if let Some(s) = sched {
        s.db.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageRules;
    use crate::store::Store;
    use crate::whisper::Preallocation;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct Fixture {
        _dir: tempfile::TempDir,
        cfg: AlertConfig,
        store: Arc<Store>,
        state_dir: PathBuf,
        now: Arc<AtomicI64>,
    }

    fn fixture(rules: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults();
        settings.data_dir = dir.path().to_path_buf();
        settings.alerting.rules_dir = dir.path().join("alerts.d");
        settings.alerting.templates_dir = dir.path().join("templates");
        std::fs::create_dir_all(&settings.alerting.rules_dir).unwrap();
        std::fs::write(settings.alerting.rules_dir.join("r.toml"), rules).unwrap();
        let store = Arc::new(
            Store::open(
                &settings.whisper_dir(),
                StorageRules::embedded(),
                10_000,
                Preallocation::Sparse,
                0,
            )
            .unwrap(),
        );
        Fixture {
            cfg: AlertConfig::from_settings(&settings),
            store,
            state_dir: settings.state_dir(),
            now: Arc::new(AtomicI64::new(1_700_000_000)),
            _dir: dir,
        }
    }

    fn scheduler(f: &Fixture) -> Scheduler {
        let now = f.now.clone();
        let clock: Clock = Arc::new(move || now.load(Ordering::SeqCst));
        Scheduler::new(
            f.cfg.clone(),
            f.store.clone(),
            StateDb::open(&f.state_dir).unwrap(),
            clock,
            Arc::new(Board::default()),
        )
    }

    const ALWAYS_FAILING: &str = "[[alert]]\nname = \"Always\"\ntarget = \"constantLine(5)\"\nthreshold = 4\ndirection = \"above\"\n";

    #[test]
    fn backoff_with_an_injected_clock_across_a_restart() {
        let f = fixture(ALWAYS_FAILING);
        let t0 = f.now.load(Ordering::SeqCst);
        let mut sent: Vec<(i64, String, MailKind)> = Vec::new();
        let mut sched = Some(scheduler(&f));
        // Every minute for three days and an hour; the scheduler is dropped and re-opened
        // (a restart) at +3 min and +40 h.
        for minute in 0..=(3 * 24 * 60 + 60) {
            let t = t0 + minute * 60;
            f.now.store(t, Ordering::SeqCst);
            if minute == 3 || minute == 40 * 60 {
                drop(sched.take());
                sched = Some(scheduler(&f));
            }
            let s = sched.as_mut().unwrap();
            for (subject, kind) in
                s.round_with(|p| p.message.as_ref().map(|_| ()).map_err(|e| e.to_string()))
            {
                sent.push((t - t0, subject, kind));
            }
        }
        let offsets: Vec<i64> = sent.iter().map(|s| s.0).collect();
        assert_eq!(
            offsets,
            vec![0, 300, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200]
        );
        assert!(sent.iter().all(|s| s.1 == "[ALERT] Always"), "{sent:?}");
        assert_eq!(sent[0].2, MailKind::Alert);
        assert_eq!(sent[9].2, MailKind::Reminder(9));
        let s = sched.unwrap();
        let st = s.state("Always").unwrap();
        assert_eq!(st.episode.as_ref().unwrap().started, t0);
        assert_eq!(
            s.board.snapshot().rules[0]
                .history
                .iter()
                .filter(|e| e.kind == "mail")
                .count(),
            10
        );
    }

    #[test]
    fn a_failed_send_is_retried_and_not_marked_sent() {
        let f = fixture(ALWAYS_FAILING);
        let mut s = scheduler(&f);
        let t0 = f.now.load(Ordering::SeqCst);
        assert!(s
            .round_with(|_| Err("connection refused".into()))
            .is_empty());
        assert_eq!(
            s.state("Always").unwrap().mail_error.as_deref(),
            Some("connection refused")
        );
        f.now.store(t0 + 60, Ordering::SeqCst);
        assert!(s
            .round_with(|_| Err("connection refused".into()))
            .is_empty());
        let errors =
            s.db.history("Always", 10)
                .iter()
                .filter(|e| e.kind == "mail-error")
                .count();
        assert_eq!(errors, 1, "the same error is recorded once");
        f.now.store(t0 + 120, Ordering::SeqCst);
        let sent = s.round_with(|_| Ok(()));
        assert_eq!(sent, vec![("[ALERT] Always".to_string(), MailKind::Alert)]);
        assert_eq!(s.state("Always").unwrap().mail_error, None);
        f.now.store(t0 + 180, Ordering::SeqCst);
        assert!(s.round_with(|_| Ok(())).is_empty());
    }

    #[test]
    fn a_bad_rules_file_keeps_the_old_rules_running() {
        let f = fixture(ALWAYS_FAILING);
        let mut s = scheduler(&f);
        assert_eq!(s.rules().rules.len(), 1);
        std::fs::write(f.cfg.rules_dir.join("r.toml"), "[[alert]]\nname = \"Always\"\ntarget = \"constantLine(5)\"\nthreshold = \"high\"\ndirection = \"above\"\n").unwrap();
        assert!(!s.reload_rules(false));
        let e = s.rules_error().unwrap().to_string();
        assert!(e.contains("r.toml:4"), "{e}");
        assert_eq!(s.rules().rules.len(), 1, "old rules kept");
        assert_eq!(s.round_with(|_| Ok(())).len(), 1, "and still checked");
        assert_eq!(s.board.snapshot().rules_error.as_deref(), Some(e.as_str()));
        std::fs::write(
            f.cfg.rules_dir.join("r.toml"),
            ALWAYS_FAILING.replace("Always", "Renamed"),
        )
        .unwrap();
        assert!(s.reload_rules(false));
        assert_eq!(s.rules().rules[0].name, "Renamed");
        assert_eq!(s.rules_error(), None);
    }
}
