//! The scheduler: every tick it re-reads the rule files if they changed, checks every rule
//! that is due (its own `interval`, or `[alerting].interval`), steps its state machine,
//! stores state and history in sled, and sends the mail that calls for; then publishes the
//! board for the status pages and writes alerting's self metrics.
//!
//! Time comes from an injected [`Clock`], so tests drive days of reminders without sleeping.
//! Checking and storing are blocking work (whisper reads, sled) done by
//! [`Scheduler::check_all`] and [`Scheduler::settle`]; only sending is async. A mail is
//! marked sent only after the SMTP server took it; otherwise the next check sends it again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use lettre::Message;
use tokio_util::sync::CancellationToken;

use super::ack::AckDesk;
use super::board::{Board, RuleView, Snapshot, HISTORY_SHOWN};
use super::check::{self, Backend, QueryContext};
use super::mail::{self, Image, MailError, MailSettings, GRAPH_SPAN, SHORT_SPAN};
use super::notify::{self, Channel, Facts, Routing, Target};
use super::outbox::{self, Body, Delivery, Notification, Outbox};
use super::remote::RemoteGraphite;
use super::rule::{self, Rule, RuleSet};
use super::state::{self, MailKind, RuleState, State};
use super::statedb::{BoardSample, HistoryEvent, StateDb};
use super::templates::Templates;
use crate::config::Settings;
use crate::query::MetricSource;
use crate::store::Store;

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
    /// `[alerting].interval`: how often rules without their own `interval` are checked.
    pub interval: Duration,
    /// Mail settings. An empty `base_url` is filled in by the server once the HTTP listener
    /// has bound (see [`Board::set_base_url`]).
    pub mail: MailSettings,
    /// How targets are evaluated.
    pub query: QueryContext,
    /// `[query].max_expression_depth`, checked when rules are read.
    pub max_depth: usize,
    /// Templates.
    pub templates: Templates,
    /// Self-metric names start with this (`carbon.agents.<host>.alerting.`).
    pub metrics_prefix: String,
    /// Remote mode (`[alerting].graphite_url`): rules are evaluated there, not in-process.
    pub remote: Option<Arc<RemoteGraphite>>,
    /// Contacts and routes: who is told.
    pub routing: Routing,
    /// `[alerting].give_up_after`.
    pub give_up_after: Duration,
    /// `[alerting].throttle`: more incidents than this starting in one check are announced
    /// as one summary per contact (0: never).
    pub throttle: usize,
    /// `[[maintenance]]` windows.
    pub maintenance: Vec<crate::config::MaintenanceWindow>,
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
                admin: s.alerting.admin_email.clone(),
                base_url: s.alerting.base_url.trim_end_matches('/').to_string(),
                tz: s.query.timezone,
                ack_url: None,
            },
            query: QueryContext::from_settings(&s.query),
            max_depth: s.query.max_expression_depth,
            templates: Templates::new(&s.alerting.templates_dir),
            metrics_prefix: format!(
                "{}.{}.alerting.",
                s.carbon.stats_prefix,
                crate::carbon::hostname()
            ),
            remote: RemoteGraphite::from_settings(s).map(Arc::new),
            routing: Routing {
                contacts: s.contact.clone(),
                routes: s.route.clone(),
                default_to: s.alerting.email_to.clone(),
                admin: s.alerting.admin_email.clone(),
            },
            give_up_after: s.alerting.give_up_after,
            throttle: s.alerting.throttle,
            maintenance: s.maintenance.clone(),
        }
    }

    /// Where rules are evaluated: the remote Graphite in remote mode, else `source`.
    pub fn backend(&self, source: Arc<dyn MetricSource>) -> Backend {
        match &self.remote {
            Some(r) => Backend::Remote(r.clone()),
            None => Backend::Local {
                source,
                ctx: self.query.clone(),
            },
        }
    }

    /// Reads the rules directory; each rule must reach someone (its `notify` naming
    /// contacts that exist).
    pub fn load_rules(&self) -> Result<RuleSet, rule::RuleErrors> {
        rule::load_dir_with(&self.rules_dir, self.max_depth, &|r| {
            self.routing.check_rule(r)
        })
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
    /// The message to the rule's own recipients, or why it could not be composed.
    pub message: Result<Message, MailError>,
    /// The composed parts, from which each contact's notification is built.
    pub composed: Option<mail::Composed>,
    /// Who gets it: one per contact and channel.
    pub targets: Vec<Target>,
    /// When it was composed (epoch seconds).
    pub at: i64,
}

/// What one round did, for the self metrics and the logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundStats {
    /// Rules checked in this round.
    pub checked: usize,
    /// Seconds spent evaluating and storing.
    pub evaluation_seconds: f64,
    /// Mails delivered, or with an outbox queued for it to deliver.
    pub mails_sent: usize,
    /// Mails that could not be delivered (or composed), or queued.
    pub mails_failed: usize,
}

/// The alert loop's state: rules, database, clock.
pub struct Scheduler {
    cfg: AlertConfig,
    backend: Backend,
    db: StateDb,
    rules: RuleSet,
    fingerprint: Option<Vec<u8>>,
    rules_error: Option<String>,
    clock: Clock,
    board: Arc<Board>,
    /// Where notifications are queued (the server's); none in tools and unit tests.
    outbox: Option<Outbox>,
    /// Acknowledgement requests and the link key.
    acks: Option<AckDesk>,
    /// Where self metrics go (the server's store) and how often; none in tools and tests.
    metrics: Option<(Arc<Store>, Duration)>,
    /// What the rounds since the last self-metrics write did, and when that was.
    since_metrics: (RoundStats, i64),
    /// The outbox's deliveries since the self metrics were last written.
    delivered: outbox::Delivered,
    /// When each rule was last checked (by name), for per-rule intervals.
    last_checked: BTreeMap<String, i64>,
    round: RoundStats,
}

/// A history line for a rule whose state changed: `CRIT: web1 97.2 (crit 95)`.
fn describe(rule: &Rule, s: &RuleState, now: i64) -> String {
    match s.state {
        State::Ok => format!("OK ({} series)", s.series.len()),
        State::Error => format!("ERROR: {}", s.message),
        st => {
            let subject = mail::subject(rule, s, MailKind::Fire, now);
            let what = subject.split_once(": ").map(|x| x.1).unwrap_or("");
            format!("{}: {what}", st.label())
        }
    }
}

impl Scheduler {
    /// A scheduler over `db`, reading rules at once (a bad rules directory is logged and
    /// leaves no rules running until it is fixed). Rules are evaluated on `source`, or in
    /// remote mode by `[alerting] graphite_url`.
    pub fn new(
        cfg: AlertConfig,
        source: Arc<dyn MetricSource>,
        db: StateDb,
        clock: Clock,
        board: Arc<Board>,
    ) -> Scheduler {
        let backend = cfg.backend(source);
        Scheduler::with_backend(cfg, backend, db, clock, board)
    }

    /// A scheduler evaluating rules on `backend`.
    pub fn with_backend(
        cfg: AlertConfig,
        backend: Backend,
        db: StateDb,
        clock: Clock,
        board: Arc<Board>,
    ) -> Scheduler {
        let mut s = Scheduler {
            cfg,
            backend,
            db,
            rules: RuleSet::default(),
            fingerprint: None,
            rules_error: None,
            clock,
            board,
            outbox: None,
            acks: None,
            metrics: None,
            since_metrics: (RoundStats::default(), 0),
            delivered: outbox::Delivered::default(),
            last_checked: BTreeMap::new(),
            round: RoundStats::default(),
        };
        s.reload_rules(true);
        s
    }

    /// Writes alerting's self metrics into `store` every `interval` (carbon's
    /// `stats_interval`): the counts of rules per state then, and what the rounds since the
    /// last write did (checks, evaluation seconds, mails sent and failed), as carbon's
    /// counters are "during the last interval".
    pub fn record_metrics_in(&mut self, store: Arc<Store>, interval: Duration) {
        self.since_metrics = (RoundStats::default(), (self.clock)());
        self.metrics = Some((store, interval));
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

    /// How often the loop must wake: the shortest interval of any rule, or
    /// `[alerting].interval`.
    pub fn tick(&self) -> Duration {
        let own = self
            .rules
            .rules
            .iter()
            .filter_map(|r| r.interval)
            .min()
            .map(|s| Duration::from_secs(s.max(1) as u64));
        match own {
            Some(o) => o.min(self.cfg.interval),
            None => self.cfg.interval,
        }
        .max(Duration::from_millis(100))
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
                // Edited rules are checked at once.
                self.last_checked.clear();
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

    fn due(&self, rule: &Rule, now: i64) -> bool {
        let every = rule
            .interval
            .unwrap_or(self.cfg.interval.as_secs() as i64)
            .max(1);
        match self.last_checked.get(&rule.name) {
            None => true,
            // Half a tick of slack, so a rule checked every tick is not skipped by jitter.
            Some(&t) => now - t + (self.tick().as_secs() as i64 / 2).max(0) >= every,
        }
    }

    /// Checks every rule that is due at the clock's now: steps its state, stores it (with
    /// history events when the rule's or a series' state changed) and returns the mail due.
    /// Blocking.
    pub fn check_all(&mut self) -> Vec<Pending> {
        let started = Instant::now();
        self.round = RoundStats::default();
        let mut pending = Vec::new();
        let rules = self.rules.rules.clone();
        let silences = self
            .db
            .silences()
            .matcher(&self.cfg.maintenance, (self.clock)());
        for rule in rules {
            let now = (self.clock)();
            if !self.due(&rule, now) {
                continue;
            }
            self.last_checked.insert(rule.name.clone(), now);
            self.round.checked += 1;
            let mut prev = self.db.load(&rule.name);
            let mut acked = false;
            if let Some(req) = self.acks.as_ref().and_then(|d| d.take(&rule.name)) {
                if let Some(p) = prev.as_mut() {
                    let ack = state::Acked {
                        by: req.by.clone(),
                        comment: req.comment.clone(),
                        at: req.at,
                        series: req.series.clone(),
                    };
                    acked = state::acknowledge(p, req.incident.as_deref(), ack);
                }
                let text = if acked {
                    format!(
                        "acknowledged by {}{}",
                        req.by,
                        if req.comment.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", req.comment)
                        }
                    )
                } else {
                    format!(
                        "acknowledgement by {} dropped: that incident is over",
                        req.by
                    )
                };
                self.record(&rule.name, "ack", text, now);
            }
            let outcome = check::check(&self.backend, &rule, now);
            let silenced = |series: &str| silences.silenced(&rule, series).is_some();
            let (mut state, mut kinds) = state::step(&rule, prev.as_ref(), outcome, now, &silenced);
            silences.annotate(&rule, &mut state);
            if acked && state.incident.as_ref().is_some_and(|i| i.acked.is_some()) {
                kinds.push(MailKind::Ack);
            }
            kinds.extend(self.escalations_due(&rule, &state, now));
            self.record_changes(&rule, prev.as_ref(), &state, now);
            if let Err(e) = self.db.save(&rule.name, &state) {
                tracing::error!("{e}");
            }
            for kind in kinds {
                pending.push(self.compose(rule.clone(), state.clone(), kind, now));
            }
        }
        self.round.evaluation_seconds = started.elapsed().as_secs_f64();
        pending
    }

    /// The escalations due for `rule` in `state` at `now`: its incident is announced, not
    /// acknowledged, older than a matching route's `escalate_after`, and that route's
    /// escalation has not gone out.
    fn escalations_due(&self, rule: &Rule, state: &RuleState, now: i64) -> Vec<MailKind> {
        let Some(inc) = state.incident.as_ref() else {
            return Vec::new();
        };
        if inc.announced.is_none() || inc.acked.is_some() || !state.state.is_failing() {
            return Vec::new();
        }
        self.cfg
            .routing
            .escalations(rule, notify::severity(state, MailKind::Fire))
            .into_iter()
            .filter(|(i, after, _)| now - inc.started >= *after && !inc.escalated.contains(i))
            .map(|(i, _, _)| MailKind::Escalation(i))
            .collect()
    }

    fn record_changes(&self, rule: &Rule, prev: Option<&RuleState>, st: &RuleState, now: i64) {
        let prev_state = prev.map(|p| p.state);
        if prev_state != Some(st.state) {
            let text = describe(rule, st, now);
            match st.state {
                State::Error => tracing::warn!(
                    "alert '{}' ({}) cannot be evaluated: {}",
                    rule.name,
                    rule.source,
                    st.message
                ),
                State::Crit | State::Warn | State::NoData => {
                    tracing::warn!("alert '{}': {text}", rule.name)
                }
                _ => tracing::info!("alert '{}': {text}", rule.name),
            }
            self.record(&rule.name, st.state.as_str(), text, now);
        }
        if let (Some(p), Some((_, words))) = (prev, &st.changed) {
            if p.changed.as_ref().map(|c| &c.1) != Some(words) {
                self.record(&rule.name, "edit", format!("rule changed: {words}"), now);
            }
        }
        for (name, s) in &st.series {
            let before = prev.and_then(|p| p.series.get(name)).map(|x| x.state);
            if before != Some(s.state) && (before.is_some() || s.state != State::Ok) {
                let value = s
                    .value
                    .map(super::format::value)
                    .unwrap_or_else(|| "no data".into());
                self.record(
                    &rule.name,
                    "series",
                    format!(
                        "{} {} → {}: {value}",
                        if name.is_empty() { "(target)" } else { name },
                        before.map(|b| b.label()).unwrap_or("new"),
                        s.state.label()
                    ),
                    now,
                );
            }
        }
        if let Some(p) = prev {
            for name in p.series.keys() {
                // "" stood for "no series yet"; real series replacing it is not forgetting.
                if !name.is_empty() && !st.series.contains_key(name) {
                    self.record(
                        &rule.name,
                        "series",
                        format!("{name} forgotten (no longer given by the target)"),
                        now,
                    );
                }
            }
        }
    }

    fn base_url(&self) -> String {
        if self.cfg.mail.base_url.is_empty() {
            self.board.base_url().unwrap_or_default()
        } else {
            self.cfg.mail.base_url.clone()
        }
    }

    /// The two graphs of a mail (last hour, last 24 hours) of `rule` in `state` at `now`.
    pub fn graphs(&self, rule: &Rule, state: &RuleState, now: i64) -> Vec<Image> {
        graphs(&self.backend, rule, state, now, self.cfg.mail.tz)
    }

    /// The mail `kind` for `rule` in `state`, with its graphs.
    pub fn compose(&self, rule: Rule, state: RuleState, kind: MailKind, now: i64) -> Pending {
        // The mail leaves silenced failing series out; the state kept is the whole one.
        let told = state.mailable();
        let images = if kind.is_admin() {
            Vec::new()
        } else {
            self.graphs(&rule, &told, now)
        };
        let mut settings = self.cfg.mail.clone();
        settings.base_url = self.base_url();
        settings.ack_url = self.ack_link(&rule, &state, kind, now);
        let composed = mail::compose(
            &rule,
            &told,
            kind,
            now,
            &settings,
            &self.cfg.templates,
            images,
        );
        let subject = mail::subject(&rule, &told, kind, now);
        let targets = self.cfg.routing.targets(&rule, &state, kind);
        let to: Vec<String> = targets
            .iter()
            .map(|t| match t.channel {
                Channel::Email => format!("{} ({})", t.contact, t.to.join(", ")),
                c => format!("{} ({})", t.contact, c.as_str()),
            })
            .collect();
        let (message, composed) = match composed {
            Ok(c) => (mail::to_message(&c, &self.cfg.mail.from, now), Some(c)),
            Err(e) => (Err(e), None),
        };
        Pending {
            rule,
            state,
            kind,
            subject,
            to,
            message,
            composed,
            targets,
            at: now,
        }
    }

    /// The outbox entries of `p`, one per target: the mail (re-addressed to each contact's
    /// addresses) or the webhook, Slack or PagerDuty body. `Err` says why there are none.
    pub fn notifications(&self, p: &Pending) -> Result<Vec<Notification>, String> {
        let composed = match (&p.composed, &p.message) {
            (Some(c), _) => c,
            (None, Err(e)) => return Err(e.to_string()),
            (None, Ok(_)) => return Err("no composed mail".into()),
        };
        if p.targets.is_empty() {
            return Err(format!(
                "rule '{}' reaches nobody (no notify, email_to, matching [[route]] or [alerting].email_to)",
                p.rule.name
            ));
        }
        let base = self.base_url();
        let ack_url = self.ack_link(&p.rule, &p.state, p.kind, p.at);
        // As the mail: silenced failing series are left out.
        let told = p.state.mailable();
        let facts = |id: String| Facts {
            ack_url: ack_url.clone(),
            rule: &p.rule,
            state: &told,
            kind: p.kind,
            mail: composed,
            rule_url: mail::rule_url(&base, &p.rule),
            // In remote mode the data is there: link its render API (without credentials).
            graph_url: format!(
                "{}{}",
                self.cfg
                    .remote
                    .as_ref()
                    .map(|r| r.url().public())
                    .unwrap_or_else(|| base.clone()),
                mail::graph_url(&p.rule, "-24h")
            ),
            now: p.at,
            id,
        };
        let mut out = Vec::with_capacity(p.targets.len());
        for t in &p.targets {
            // The id the receiver sees: stable for this notification, whatever the retries.
            let id = format!("{}.{}.{}.{}", p.rule.slug, p.kind.as_str(), p.at, t.contact);
            let (destination, body) = match t.channel {
                Channel::Email => {
                    let mut c = composed.clone();
                    c.to = t.to.clone();
                    let msg = mail::to_message(&c, &self.cfg.mail.from, p.at)
                        .map_err(|e| e.to_string())?;
                    (
                        t.to.join(", "),
                        Body::Mail {
                            from: self.cfg.mail.from.clone(),
                            to: t.to.clone(),
                            eml: base64::engine::general_purpose::STANDARD.encode(msg.formatted()),
                        },
                    )
                }
                Channel::Webhook | Channel::Slack | Channel::Pagerduty => {
                    let f = facts(id);
                    let json = match t.channel {
                        Channel::Webhook => notify::webhook(&f),
                        Channel::Slack => notify::slack(&f),
                        _ => notify::pagerduty(&f, &t.key),
                    };
                    let url = t.to.first().cloned().unwrap_or_default();
                    (
                        outbox::public_url(&url),
                        Body::Http {
                            url,
                            json: json.to_string(),
                        },
                    )
                }
            };
            out.push(Notification {
                id: 0,
                rule: p.rule.name.clone(),
                kind: p.kind,
                contact: t.contact.clone(),
                channel: t.channel,
                destination,
                subject: p.subject.clone(),
                created: p.at,
                attempts: 0,
                next_try: p.at,
                last_error: None,
                status: Delivery::Pending,
                done_at: None,
                body,
            });
        }
        Ok(out)
    }

    /// Writes every pending notification to the outbox (which delivers them, with retries);
    /// a notification queued counts as sent for the state machine. One that cannot be built
    /// or stored is left due, and tried again at the next check. Then stores the states.
    /// Blocking. Without an outbox (tools), nothing is queued and nothing is marked sent.
    pub fn enqueue(&mut self, pending: Vec<Pending>) {
        let throttle = self.cfg.throttle;
        let starting = pending.iter().filter(|p| p.kind == MailKind::Fire).count();
        let mut results = Vec::with_capacity(pending.len());
        let mut summarized: Vec<Pending> = Vec::new();
        for p in pending {
            if throttle > 0 && starting > throttle && p.kind == MailKind::Fire {
                summarized.push(p);
                continue;
            }
            let r = self.queue(&p);
            results.push((p, r));
        }
        if !summarized.is_empty() {
            let r = self.queue_summary(&summarized);
            tracing::warn!(
                "{} incidents started in one check: each contact gets one summary ([alerting] throttle = {throttle})",
                summarized.len()
            );
            for p in summarized {
                results.push((p, r.clone()));
            }
        }
        self.settle(results);
        if let Some(ob) = &self.outbox {
            ob.wake();
        }
    }

    fn queue(&self, p: &Pending) -> Result<(), String> {
        match &self.outbox {
            None => Err("no outbox".to_string()),
            Some(ob) => self.notifications(p).and_then(|ns| {
                for n in ns {
                    ob.enqueue(n).map_err(|e| e.to_string())?;
                }
                Ok(())
            }),
        }
    }

    /// Hound's global throttle: the first mails of many incidents started in one check, as one
    /// summary per contact and channel (mail, webhook, Slack) listing them all; PagerDuty
    /// still gets one trigger per incident (each needs its own to be resolved).
    fn queue_summary(&self, ps: &[Pending]) -> Result<(), String> {
        let Some(ob) = &self.outbox else {
            return Err("no outbox".to_string());
        };
        let base = self.base_url();
        // (contact, channel) → its target and the incidents it is told of.
        let mut groups: BTreeMap<(String, Channel), (Target, Vec<&Pending>)> = BTreeMap::new();
        for p in ps {
            for t in &p.targets {
                if t.channel == Channel::Pagerduty {
                    continue;
                }
                groups
                    .entry((t.contact.clone(), t.channel))
                    .or_insert_with(|| (t.clone(), Vec::new()))
                    .1
                    .push(p);
            }
            // PagerDuty: one event per incident, as without the throttle.
            let pd: Vec<Target> = p
                .targets
                .iter()
                .filter(|t| t.channel == Channel::Pagerduty)
                .cloned()
                .collect();
            if !pd.is_empty() {
                let mut one = Pending {
                    rule: p.rule.clone(),
                    state: p.state.clone(),
                    kind: p.kind,
                    subject: p.subject.clone(),
                    to: Vec::new(),
                    message: Err(MailError::NoRecipients),
                    composed: p.composed.clone(),
                    targets: pd,
                    at: p.at,
                };
                one.to = one.targets.iter().map(|t| t.contact.clone()).collect();
                self.queue(&one)?;
            }
        }
        let now = ps.first().map(|p| p.at).unwrap_or(0);
        for ((contact, channel), (target, items)) in groups {
            let subject = format!(
                "[ALERTS] {} incidents started: {}",
                items.len(),
                items
                    .iter()
                    .take(5)
                    .map(|p| p.rule.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if items.len() > 5 { ", …" } else { "" }
            );
            let lines: Vec<String> = items
                .iter()
                .map(|p| format!("{}\n    {}", p.subject, mail::rule_url(&base, &p.rule)))
                .collect();
            let text = format!(
                "{} incidents started in one check, more than [alerting] throttle allows one mail each:\n\n{}\n\nBoard: {}/\n",
                items.len(),
                lines.join("\n"),
                base
            );
            let body = match channel {
                Channel::Email => {
                    let mut b = lettre::Message::builder()
                        .from(
                            self.cfg
                                .mail
                                .from
                                .parse()
                                .map_err(|e| format!("email_from: {e}"))?,
                        )
                        .subject(subject.clone())
                        .date(std::time::UNIX_EPOCH + Duration::from_secs(now.max(0) as u64));
                    for a in &target.to {
                        b = b.to(a.parse().map_err(|e| format!("{a}: {e}"))?);
                    }
                    let msg = b
                        .message_id(Some(format!("<summary.{now}.{contact}@carbonhound>")))
                        .body(text.clone())
                        .map_err(|e| e.to_string())?;
                    Body::Mail {
                        from: self.cfg.mail.from.clone(),
                        to: target.to.clone(),
                        eml: base64::engine::general_purpose::STANDARD.encode(msg.formatted()),
                    }
                }
                Channel::Webhook | Channel::Slack => {
                    let json = if channel == Channel::Webhook {
                        serde_json::json!({
                            "version": 1,
                            "id": format!("summary.{now}.{contact}"),
                            "event": "summary",
                            "subject": subject,
                            "time": now,
                            "notifications": items.iter().map(|p| serde_json::json!({
                                "rule": p.rule.name,
                                "subject": p.subject,
                                "url": mail::rule_url(&base, &p.rule),
                            })).collect::<Vec<_>>(),
                            "text": text,
                        })
                    } else {
                        serde_json::json!({"text": format!("{subject}\n{}", lines.join("\n"))})
                    };
                    Body::Http {
                        url: target.to.first().cloned().unwrap_or_default(),
                        json: json.to_string(),
                    }
                }
                Channel::Pagerduty => continue,
            };
            ob.enqueue(Notification {
                id: 0,
                rule: format!("(summary of {} rules)", items.len()),
                kind: MailKind::Fire,
                contact,
                channel,
                destination: match channel {
                    Channel::Email => target.to.join(", "),
                    _ => outbox::public_url(target.to.first().map(String::as_str).unwrap_or("")),
                },
                subject,
                created: now,
                attempts: 0,
                next_try: now,
                last_error: None,
                status: Delivery::Pending,
                done_at: None,
                body,
            })
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The signed acknowledge link of `rule`'s open incident, for the notifications that call
    /// for action (fire, change, reminder, escalation).
    pub fn ack_link(
        &self,
        rule: &Rule,
        state: &RuleState,
        kind: MailKind,
        now: i64,
    ) -> Option<String> {
        let desk = self.acks.as_ref()?;
        let inc = state.incident.as_ref()?;
        matches!(
            kind,
            MailKind::Fire | MailKind::Change | MailKind::Reminder(_) | MailKind::Escalation(_)
        )
        .then(|| desk.link(&self.base_url(), &rule.slug, &inc.thread, now))
    }

    /// Takes acknowledgements from `desk` at each check, and signs links with its key.
    pub fn use_acks(&mut self, desk: AckDesk) {
        self.acks = Some(desk);
    }

    /// Sends notifications through `outbox` from now on ([`Scheduler::enqueue`]).
    pub fn use_outbox(&mut self, outbox: Outbox) {
        self.outbox = Some(outbox);
    }

    /// Records the outcome of sending each pending mail: a delivered mail moves the state
    /// on (`state::delivered`); a failed one is logged and left due for the next check.
    /// Then flushes the database. Blocking. A failure comes as its text: that text is what
    /// the state keeps as `mail_error` and compares, so one error repeated is recorded once.
    pub fn settle(&mut self, results: Vec<(Pending, Result<(), String>)>) {
        // Several mails of one rule (an error recovery and a reminder) settle on one state.
        let mut states: BTreeMap<String, RuleState> = BTreeMap::new();
        for (p, result) in results {
            let now = (self.clock)();
            let st = states
                .entry(p.rule.name.clone())
                .or_insert_with(|| p.state.clone());
            match result {
                Ok(()) => {
                    self.round.mails_sent += 1;
                    state::delivered(&p.rule, st, p.kind, now);
                    tracing::info!(
                        "alert '{}': queued \"{}\" for {}",
                        p.rule.name,
                        p.subject,
                        p.to.join(", ")
                    );
                    self.record(
                        &p.rule.name,
                        "mail",
                        format!("queued \"{}\" for {}", p.subject, p.to.join(", ")),
                        now,
                    );
                }
                Err(e) => {
                    self.round.mails_failed += 1;
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
                    // Not sent: check again at the next tick.
                    self.last_checked.remove(&p.rule.name);
                }
            }
        }
        for (name, st) in states {
            if let Err(e) = self.db.save(&name, &st) {
                tracing::error!("{e}");
            }
        }
        self.db.flush();
    }

    /// Publishes the rules and their state to the board, and writes the self metrics.
    pub fn publish(&mut self) {
        let now = (self.clock)();
        let rules: Vec<RuleView> = self
            .rules
            .rules
            .iter()
            .map(|r| RuleView {
                rule: r.clone(),
                state: self.db.load(&r.name),
                history: self.db.history(&r.name, HISTORY_SHOWN),
            })
            .collect();
        let count = |s: State| {
            rules
                .iter()
                .filter(|v| v.state.as_ref().map(|x| x.state) == Some(s))
                .count() as u32
        };
        let sample = BoardSample {
            at: now,
            ok: count(State::Ok),
            pending: count(State::Pending),
            warn: count(State::Warn),
            crit: count(State::Crit),
            nodata: count(State::NoData),
            error: count(State::Error),
        };
        if !rules.is_empty() {
            if let Err(e) = self.db.record_sample(sample) {
                tracing::error!("{e}");
            }
        }
        if let Some(ob) = &self.outbox {
            let d = ob.take_counts();
            let acc = &mut self.delivered;
            acc.mail_sent += d.mail_sent;
            acc.mail_failed += d.mail_failed;
            acc.sent += d.sent;
            acc.failed += d.failed;
        }
        if let Some((store, interval)) = &self.metrics {
            let (acc, last) = (self.since_metrics.0.clone(), self.since_metrics.1);
            let (checked, seconds, sent, failed) = (
                acc.checked + self.round.checked,
                acc.evaluation_seconds + self.round.evaluation_seconds,
                acc.mails_sent + self.round.mails_sent,
                acc.mails_failed + self.round.mails_failed,
            );
            if now - last >= interval.as_secs().max(1) as i64 {
                let p = &self.cfg.metrics_prefix;
                let count = |s: State| f64::from(count(s));
                let mut points = vec![
                    ("rules", rules.len() as f64),
                    ("ok", count(State::Ok)),
                    ("pending", count(State::Pending)),
                    ("warn", count(State::Warn)),
                    ("crit", count(State::Crit)),
                    ("nodata", count(State::NoData)),
                    ("error", count(State::Error)),
                    ("checked", checked as f64),
                    ("evaluationSeconds", seconds),
                ];
                if self.outbox.is_some() {
                    // What the receivers answered; the rounds only queued.
                    let d = std::mem::take(&mut self.delivered);
                    points.extend([
                        ("mailsSent", d.mail_sent as f64),
                        ("mailsFailed", d.mail_failed as f64),
                        ("notificationsSent", d.sent as f64),
                        ("notificationsFailed", d.failed as f64),
                        ("notificationsQueued", sent as f64),
                    ]);
                } else {
                    points.extend([("mailsSent", sent as f64), ("mailsFailed", failed as f64)]);
                }
                for (k, v) in points {
                    // Not counted as received, as carbon's own self metrics are not.
                    store.insert_uncounted(&format!("{p}{k}"), now, v);
                }
                self.since_metrics = (RoundStats::default(), now);
            } else {
                self.since_metrics = (
                    RoundStats {
                        checked,
                        evaluation_seconds: seconds,
                        mails_sent: sent,
                        mails_failed: failed,
                    },
                    last,
                );
            }
        }
        self.board.publish(Snapshot {
            rules,
            rules_error: self.rules_error.clone(),
            updated: now,
            samples: self.db.samples(now - 7 * 86_400, now),
        });
    }

    /// What the last round did.
    pub fn round_stats(&self) -> &RoundStats {
        &self.round
    }

    /// One full round, for callers that are not the async loop (tests, tools): check, then
    /// hand each mail to `send`, then settle and publish. Returns (subject, kind) of each
    /// mail delivered.
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

/// The two graphs of a mail (last hour, last 24 hours), each a PNG; a graph that fails to
/// draw is logged and left out, so the mail still goes.
pub fn graphs(
    backend: &Backend,
    rule: &Rule,
    state: &RuleState,
    now: i64,
    tz: chrono_tz::Tz,
) -> Vec<Image> {
    let long = check::history(backend, rule, now, GRAPH_SPAN);
    let mut out = Vec::new();
    for (span, name) in [(SHORT_SPAN, "last-hour"), (GRAPH_SPAN, "last-24h")] {
        let from = now - span;
        let series: Vec<crate::query::Series> = if span == GRAPH_SPAN {
            long.clone()
        } else {
            long.iter().map(|s| slice(s, from)).collect()
        };
        match mail::graph(rule, state, series, from, now, tz) {
            Ok(png) => out.push(Image {
                cid: format!("{name}-{}-{now}@carbonhound", rule.slug),
                name: format!("{}-{name}.png", rule.slug),
                png,
            }),
            Err(e) => tracing::error!("alert '{}': {name} graph failed: {e}", rule.name),
        }
    }
    out
}

/// The part of `s` from `from` on (the last hour of the 24-hour fetch: one read, two graphs).
fn slice(s: &crate::query::Series, from: i64) -> crate::query::Series {
    let skip = if from > s.start {
        (((from - s.start) + s.step - 1) / s.step.max(1)) as usize
    } else {
        0
    };
    let skip = skip.min(s.values.len());
    let mut out = s.derive(s.name.clone(), s.values[skip..].to_vec());
    out.start = s.start + skip as i64 * s.step;
    out
}

/// The alert loop: a round every tick (and at once on a reload request) until `cancel`;
/// what a round calls for is queued in the outbox, which `outbox::run` delivers.
/// Waits first until the server has told the board its address (when `base_url` is not
/// set), so links in the first mails point where the server listens. A round in progress
/// finishes its current mail before the loop stops.
pub async fn run(sched: Scheduler, cancel: CancellationToken) {
    let board = sched.board.clone();
    if sched.cfg.mail.base_url.is_empty() {
        while board.base_url().is_none() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }
    let mut sched = Some(sched);
    let mut tick_len = sched
        .as_ref()
        .map(|s| s.tick())
        .unwrap_or(Duration::from_secs(60));
    let mut tick = tokio::time::interval(tick_len);
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
        let mut s = s;
        let settled = tokio::task::spawn_blocking(move || {
            s.enqueue(pending);
            s.publish();
            s
        })
        .await;
        match settled {
            Ok(s) => {
                let t = s.tick();
                if t != tick_len {
                    tick_len = t;
                    tick = tokio::time::interval_at(tokio::time::Instant::now() + t, t);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                sched = Some(s)
            }
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
        settings.alerting.base_url = "http://alerts.example".into();
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
        let mut s = Scheduler::new(
            f.cfg.clone(),
            f.store.clone(),
            StateDb::open(&f.state_dir).unwrap(),
            clock,
            Arc::new(Board::default()),
        );
        s.record_metrics_in(f.store.clone(), Duration::from_secs(60));
        s
    }

    const ALWAYS_FAILING: &str = "[[alert]]\nname = \"Always\"\ntarget = \"constantLine(5)\"\nthreshold = 4\ndirection = \"above\"\n";

    #[test]
    fn reminders_with_an_injected_clock_across_a_restart() {
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
        assert_eq!(sent[0].1, "[CRIT] Always: 5.0 5 (crit 4)");
        assert_eq!(sent[0].2, MailKind::Fire);
        assert_eq!(sent[9].1, "[REMINDER 9] [CRIT] Always: 5.0 5 (crit 4)");
        let s = sched.unwrap();
        let st = s.state("Always").unwrap();
        assert_eq!(st.incident.as_ref().unwrap().started, t0);
        let snap = s.board.snapshot();
        assert_eq!(
            snap.rules[0]
                .history
                .iter()
                .filter(|e| e.kind == "mail")
                .count(),
            10
        );
        assert!(
            snap.samples.iter().all(|x| x.crit == 1),
            "{:?}",
            snap.samples.first()
        );
        assert!(
            snap.samples.len() > 3 * 24 * 12 - 5,
            "a 5-minute sample for each of the 3 days"
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
        assert_eq!(s.round_stats().mails_failed, 1);
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
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1, MailKind::Fire);
        assert_eq!(s.state("Always").unwrap().mail_error, None);
        f.now.store(t0 + 180, Ordering::SeqCst);
        assert!(s.round_with(|_| Ok(())).is_empty());
        // Self metrics went into the store.
        let host = crate::carbon::hostname();
        assert!(f
            .store
            .find(&format!("carbon.agents.{host}.alerting.*"), true, 100)
            .iter()
            .any(|n| n.path.ends_with(".mailsSent")));
    }

    #[test]
    fn per_rule_intervals() {
        let f = fixture("[[alert]]\nname = \"Fast\"\ntarget = \"constantLine(1)\"\ncrit = 5\ndirection = \"above\"\ninterval = \"10s\"\n\n[[alert]]\nname = \"Slow\"\ntarget = \"constantLine(1)\"\ncrit = 5\ndirection = \"above\"\n");
        let mut s = scheduler(&f);
        assert_eq!(s.tick(), Duration::from_secs(10));
        let t0 = f.now.load(Ordering::SeqCst);
        let mut checks = (0, 0);
        for i in 0..12 {
            f.now.store(t0 + i * 10, Ordering::SeqCst);
            s.round_with(|_| Ok(()));
            let fast = s.state("Fast").unwrap().checked_at;
            let slow = s.state("Slow").unwrap().checked_at;
            checks.0 += i64::from(fast == t0 + i * 10);
            checks.1 += i64::from(slow == t0 + i * 10);
        }
        assert_eq!(checks, (12, 2), "every 10 s, and every 60 s");
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
