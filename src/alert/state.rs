//! The state machine of one rule. Each series of the rule's target has its own state
//! (OK, PENDING, WARN, CRIT, NODATA); the rule shows its worst, or ERROR when its targets
//! cannot be evaluated. An *incident* runs from the first failing series to the recovery
//! mail; it is one mail thread. Pure functions of (rule, previous state, check outcome,
//! now): no clock, no I/O, so every transition is unit-tested with made-up times.
//!
//! Mails an incident sends, each answered only once delivered ([`delivered`]), so a mail
//! that could not be sent is asked for again at the next check and nothing is marked sent
//! that was not:
//! - **Fire**: the first failing series (`[CRIT] name: web1 97.2 (crit 95)`).
//! - **Change**: a series joins the failing ones or changes level (WARN→CRIT, CRIT→WARN,
//!   →NODATA); a series that recovers while others still fail is recorded, not mailed.
//! - **Reminder n**: on the rule's `repeat` ladder from the incident's start while nothing
//!   changes (`[REMINDER 2] [CRIT] …`).
//! - **Recovery**: every series back to OK (`[RECOVERED] …`); when the recovery came from an
//!   edit of the rule, it says so ("rule changed: crit 0 → 1000").
//!
//! A rule that cannot be evaluated (ERROR) keeps its series states and its incident as they
//! were; it has an incident of its own for the administrator (`[ERROR] …`, reminded on
//! Hound's ladder, `[RECOVERED] …` when it evaluates again).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check::{Outcome, Reading};
use super::rule::{Level, NoData, Rule, HOUND_LADDER};
use super::silence::SilencedBy;

/// Most failing series listed in a mail; the rest are counted.
pub const MAX_LISTED: usize = 20;
/// Seconds a series that the target no longer gives at all is remembered (as NODATA, or
/// what `no_data` makes it) before it is forgotten: a decommissioned host stops alerting
/// after a day.
pub const FORGET_AFTER: i64 = 86_400;

/// A state of a series or a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Within the levels.
    Ok,
    /// Past a level, but not yet for the rule's `for`.
    Pending,
    /// Past `warn`.
    Warn,
    /// Past `crit`.
    Crit,
    /// No point within `no_data_after` (with `no_data = "alert"`).
    NoData,
    /// The rule's targets cannot be evaluated (rule-wide only).
    Error,
}

impl State {
    /// `ok`, `pending`, `warn`, `crit`, `nodata`, `error`: the JSON value and CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Warn => "warn",
            State::Crit => "crit",
            State::NoData => "nodata",
            State::Error => "error",
        }
    }

    /// `OK`, `PENDING`, `WARN`, `CRIT`, `NO DATA`, `ERROR`: as subjects and pages say it.
    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Pending => "PENDING",
            State::Warn => "WARN",
            State::Crit => "CRIT",
            State::NoData => "NO DATA",
            State::Error => "ERROR",
        }
    }

    /// Severity, for "the rule shows its worst": ERROR > CRIT > NODATA > WARN > PENDING > OK.
    pub fn rank(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Pending => 1,
            State::Warn => 2,
            State::NoData => 3,
            State::Crit => 4,
            State::Error => 5,
        }
    }

    /// WARN, CRIT or NODATA: a state that is announced.
    pub fn is_failing(self) -> bool {
        matches!(self, State::Warn | State::Crit | State::NoData)
    }

    fn of(level: Level) -> State {
        match level {
            Level::Warn => State::Warn,
            Level::Crit => State::Crit,
        }
    }
}

/// One series of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    /// Its state.
    pub state: State,
    /// When it entered this state (epoch seconds).
    pub since: i64,
    /// When it began to fail continuously (for `for`), while it fails.
    pub failing_since: Option<i64>,
    /// The level it is past, while PENDING or failing.
    pub level: Option<Level>,
    /// Its last reduced value.
    pub value: Option<f64>,
    /// Its last point's time (epoch seconds).
    pub last_seen: Option<i64>,
    /// Expression rules: every variable's value.
    pub detail: String,
    /// Since when the target no longer gives this series at all.
    pub absent_since: Option<i64>,
    /// Left out of mail at the last check: a silence or maintenance window covered it
    /// ([`step`]'s `silenced`). Its state is kept and shown all the same.
    #[serde(default)]
    pub silenced: bool,
    /// What silenced it, for the board and `/api/alerts` (filled in by the scheduler).
    #[serde(default)]
    pub silenced_by: Option<SilencedBy>,
}

/// Which mail an incident calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "n")]
pub enum MailKind {
    /// The first mail of an incident.
    Fire,
    /// A series joined or changed level.
    Change,
    /// Reminder `n` (1-based) while nothing changes.
    Reminder(u32),
    /// Every series back to OK.
    Recovery,
    /// The rule cannot be evaluated (to the administrator).
    Error,
    /// Reminder `n` of an evaluation error.
    ErrorReminder(u32),
    /// The rule evaluates again (to the administrator).
    ErrorRecovery,
    /// Someone acknowledged the incident (webhooks, Slack and PagerDuty are told).
    Ack,
    /// Nobody acknowledged within route `n`'s `escalate_after`: its `escalate_to` are told.
    Escalation(u32),
}

impl MailKind {
    /// `fire`, `change`, `reminder`, `recovery`, `error`, `error-reminder`, `error-recovery`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Fire => "fire",
            MailKind::Change => "change",
            MailKind::Reminder(_) => "reminder",
            MailKind::Recovery => "recovery",
            MailKind::Error => "error",
            MailKind::ErrorReminder(_) => "error-reminder",
            MailKind::ErrorRecovery => "error-recovery",
            MailKind::Ack => "acknowledged",
            MailKind::Escalation(_) => "escalation",
        }
    }

    /// Whether it goes to the administrator rather than the rule's recipients.
    pub fn is_admin(self) -> bool {
        matches!(
            self,
            MailKind::Error | MailKind::ErrorReminder(_) | MailKind::ErrorRecovery
        )
    }
}

/// One incident: from the first failing series to the recovery mail. One mail thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// When it began (epoch seconds); reminders count from here.
    pub started: i64,
    /// The Message-ID of its first mail (without angle brackets): every later mail of the
    /// incident replies to it (In-Reply-To, References).
    pub thread: String,
    /// When the first mail was delivered; `None` until it was.
    pub announced: Option<i64>,
    /// The failing series and states the last delivered mail told of.
    pub told: BTreeMap<String, State>,
    /// Reminder slots used up (sent, or skipped while down).
    pub reminders_sent: u32,
    /// When the last mail of this incident was delivered.
    pub last_mail: Option<i64>,
    /// The worst state it reached.
    pub worst: State,
    /// Who acknowledged it; cleared when it changes level (then it reminds and escalates
    /// again).
    #[serde(default)]
    pub acked: Option<Acked>,
    /// The routes (by index in `[[route]]`) whose escalation has gone out.
    #[serde(default)]
    pub escalated: Vec<u32>,
}

/// An acknowledgement of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acked {
    /// Who.
    pub by: String,
    /// What they said.
    pub comment: String,
    /// When (epoch seconds).
    pub at: i64,
    /// The series it was about, if one.
    pub series: Option<String>,
}

/// Everything known about a rule, persisted after every check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// The worst state of its series, or ERROR.
    pub state: State,
    /// When the rule entered this state (epoch seconds).
    pub since: i64,
    /// When it was last checked.
    pub checked_at: i64,
    /// Each series, by name (`""`: the target gave no series at all).
    pub series: BTreeMap<String, SeriesState>,
    /// Why the rule is ERROR, or NODATA for a target with no series.
    pub message: String,
    /// The rule as it was checked ([`Rule::definition`]), to tell an edit from a recovery.
    pub definition: Vec<(String, String)>,
    /// When the definition last changed while an incident was open: (time, wording).
    pub changed: Option<(i64, String)>,
    /// The open incident.
    pub incident: Option<Incident>,
    /// The open evaluation-error incident (the administrator's).
    pub error_incident: Option<Incident>,
    /// The last mail delivery error, cleared by a delivery.
    pub mail_error: Option<String>,
}

impl RuleState {
    /// The failing series (WARN, CRIT, NODATA), worst first (then furthest past the level,
    /// then by name).
    pub fn failing(&self, rule: &Rule) -> Vec<(&str, &SeriesState)> {
        let mut f: Vec<(&str, &SeriesState)> = self
            .series
            .iter()
            .filter(|(_, s)| s.state.is_failing())
            .map(|(n, s)| (n.as_str(), s))
            .collect();
        let dir = rule.direction();
        f.sort_by(|a, b| {
            b.1.state.rank().cmp(&a.1.state.rank()).then_with(|| {
                let (x, y) = (a.1.value.unwrap_or(0.0), b.1.value.unwrap_or(0.0));
                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                match dir {
                    Some(super::rule::Direction::Below) => o,
                    _ => o.reverse(),
                }
            })
        });
        f
    }

    /// This state as mail tells it: failing series that are silenced left out (the mail is
    /// about the others).
    pub fn mailable(&self) -> RuleState {
        let mut st = self.clone();
        st.series
            .retain(|_, s| !(s.silenced && s.state.is_failing()));
        st
    }

    /// How many series are in `state`.
    pub fn count(&self, state: State) -> usize {
        self.series.values().filter(|s| s.state == state).count()
    }
}

fn new_incident(rule: &Rule, now: i64, worst: State, admin: bool) -> Incident {
    let kind = if admin { "error" } else { "incident" };
    Incident {
        started: now,
        thread: format!("{kind}.{}.{now}@carbonhound", rule.slug),
        announced: None,
        told: BTreeMap::new(),
        reminders_sent: 0,
        last_mail: None,
        worst,
        acked: None,
        escalated: Vec::new(),
    }
}

fn step_series(rule: &Rule, prev: Option<&SeriesState>, r: &Reading, now: i64) -> SeriesState {
    let keep = |p: &SeriesState| SeriesState {
        value: r.value.or(p.value),
        last_seen: r.last_seen.or(p.last_seen),
        absent_since: None,
        ..p.clone()
    };
    let (state, level, failing_since) = match (r.value, r.level) {
        (None, _) => match rule.no_data {
            NoData::Alert => (State::NoData, None, None),
            NoData::Ok => (State::Ok, None, None),
            NoData::Keep => match prev {
                Some(p) => return keep(p),
                None => (State::Ok, None, None),
            },
        },
        (Some(_), None) => (State::Ok, None, None),
        (Some(_), Some(level)) => {
            let was_firing = prev.is_some_and(|p| matches!(p.state, State::Warn | State::Crit));
            let failing_since = prev.and_then(|p| p.failing_since).unwrap_or(now);
            if was_firing || now - failing_since >= rule.for_secs {
                (State::of(level), Some(level), Some(failing_since))
            } else {
                (State::Pending, Some(level), Some(failing_since))
            }
        }
    };
    let since = match prev {
        Some(p) if p.state == state => p.since,
        _ => now,
    };
    SeriesState {
        state,
        since,
        failing_since,
        level,
        value: r.value,
        // A series gone quiet keeps the time of its last point: "no data for 20 min".
        last_seen: r.last_seen.or(prev.and_then(|p| p.last_seen)),
        detail: r.detail.clone(),
        absent_since: None,
        silenced: false,
        silenced_by: None,
    }
}

/// The worst state of `series` (OK when there are none).
fn worst(series: &BTreeMap<String, SeriesState>) -> State {
    series
        .values()
        .map(|s| s.state)
        .max_by_key(|s| s.rank())
        .unwrap_or(State::Ok)
}

/// The state after a check: `prev` is the stored state (`None` for a new rule), `outcome`
/// what the check found, `now` its time (epoch seconds), `silenced` whether a series (by
/// name; `""` for a target with no series) is silenced now. Returns the new state and the
/// mails it calls for (at most one for the rule's recipients and one for the administrator);
/// the caller sends them and then calls [`delivered`] for each that went out.
///
/// A silenced series is checked and keeps its state, but is left out of what mails: it opens
/// no incident and causes no Fire or Change; while every failing series is silenced there are
/// no reminders, and an open incident stays open (no Recovery until its series are really
/// OK). When its silence ends while it still fails it is mailed as any new failure (Fire, or
/// Change in an open incident). Evaluation errors (the administrator's) are not silenced.
pub fn step(
    rule: &Rule,
    prev: Option<&RuleState>,
    outcome: Outcome,
    now: i64,
    silenced: &dyn Fn(&str) -> bool,
) -> (RuleState, Vec<MailKind>) {
    let definition = rule.definition();
    let mut changed = prev.and_then(|p| p.changed.clone());
    let mut edited_now = false;
    if let Some(p) = prev {
        if !p.definition.is_empty() && p.definition != definition {
            let words = super::rule::definition_change(&p.definition, &definition);
            if !words.is_empty() {
                changed = Some((now, words));
                edited_now = true;
            }
        }
    }
    let mut series = prev.map(|p| p.series.clone()).unwrap_or_default();
    let mut incident = prev.and_then(|p| p.incident.clone());
    let mut error_incident = prev.and_then(|p| p.error_incident.clone());
    let mut mails = Vec::new();
    let mut message = String::new();
    let state;
    match outcome {
        Outcome::Error(m) => {
            message = m;
            state = State::Error;
            let ei =
                error_incident.get_or_insert_with(|| new_incident(rule, now, State::Error, true));
            if ei.announced.is_none() {
                mails.push(MailKind::Error);
            } else {
                let due = reminders_due(&HOUND_LADDER, now - ei.started);
                if due > ei.reminders_sent {
                    mails.push(MailKind::ErrorReminder(ei.reminders_sent + 1));
                }
            }
        }
        Outcome::Checked(readings) => {
            match &error_incident {
                Some(ei) if ei.announced.is_some() => mails.push(MailKind::ErrorRecovery),
                Some(_) => error_incident = None,
                None => {}
            }
            let mut seen = std::collections::HashSet::with_capacity(readings.len());
            let empty = readings.is_empty();
            for r in &readings {
                seen.insert(r.series.as_str());
                let next = step_series(rule, series.get(&r.series), r, now);
                series.insert(r.series.clone(), next);
            }
            if empty {
                // No series at all: no data once `no_data_after` has passed since the
                // target was first seen empty (a fresh server is given time to fill).
                message = "the target matches no series".into();
                let first = series.get("").and_then(|s| s.absent_since).unwrap_or(now);
                let r = Reading {
                    series: String::new(),
                    value: None,
                    level: None,
                    last_seen: None,
                    detail: String::new(),
                };
                seen.insert("");
                let mut next = if now - first >= rule.no_data_after {
                    step_series(rule, series.get(""), &r, now)
                } else {
                    SeriesState {
                        state: State::Ok,
                        since: now,
                        failing_since: None,
                        level: None,
                        value: None,
                        last_seen: None,
                        detail: String::new(),
                        absent_since: None,
                        silenced: false,
                        silenced_by: None,
                    }
                };
                next.absent_since = Some(first);
                series.insert(String::new(), next);
            } else {
                series.remove("");
            }
            // Series the target no longer gives: no data, then forgotten.
            series.retain(|name, s| {
                if seen.contains(name.as_str()) {
                    return true;
                }
                let absent = *s.absent_since.get_or_insert(now);
                now - absent < FORGET_AFTER.max(rule.no_data_after)
            });
            for (name, s) in series.iter_mut() {
                if seen.contains(name.as_str()) {
                    continue;
                }
                let absent_since = s.absent_since;
                let r = Reading {
                    series: name.clone(),
                    value: None,
                    level: None,
                    last_seen: s.last_seen,
                    detail: String::new(),
                };
                // Gone from the target: no data once no_data_after has passed.
                if s.last_seen.is_some_and(|t| now - t < rule.no_data_after) {
                    continue;
                }
                *s = step_series(rule, Some(s), &r, now);
                s.absent_since = absent_since;
            }
            for (name, s) in series.iter_mut() {
                s.silenced = silenced(name);
            }
            state = worst(&series);
            // What mails: the failing series no silence covers.
            let failing: BTreeMap<String, State> = series
                .iter()
                .filter(|(_, s)| s.state.is_failing() && !s.silenced)
                .map(|(n, s)| (n.clone(), s.state))
                .collect();
            let held = series.values().any(|s| s.state.is_failing() && s.silenced);
            if !failing.is_empty() {
                let state = failing
                    .values()
                    .copied()
                    .max_by_key(|s| s.rank())
                    .unwrap_or(state);
                if !edited_now {
                    // Still failing after an edit: a later recovery is a real one.
                    changed = None;
                }
                let inc = incident.get_or_insert_with(|| new_incident(rule, now, state, false));
                if state.rank() > inc.worst.rank() {
                    inc.worst = state;
                }
                if inc.announced.is_none() {
                    mails.push(MailKind::Fire);
                } else if failing.iter().any(|(n, s)| inc.told.get(n) != Some(s)) {
                    // A change of level ends an acknowledgement: it reminds and escalates again.
                    inc.acked = None;
                    mails.push(MailKind::Change);
                } else if inc.acked.is_none()
                    && rule.reminders_due(now - inc.started) > inc.reminders_sent
                {
                    mails.push(MailKind::Reminder(inc.reminders_sent + 1));
                }
            } else if held {
                // Every failing series is silenced: no mail, and the incident stays open.
            } else {
                match &incident {
                    Some(inc) if inc.announced.is_some() => mails.push(MailKind::Recovery),
                    // Never announced (mail failing throughout, or PENDING only): silent.
                    Some(_) => {
                        incident = None;
                        changed = None;
                    }
                    None => changed = None,
                }
            }
        }
    }
    let since = match prev {
        Some(p) if p.state == state => p.since,
        _ => now,
    };
    let st = RuleState {
        state,
        since,
        checked_at: now,
        series,
        message,
        definition,
        changed,
        incident,
        error_incident,
        mail_error: prev.and_then(|p| p.mail_error.clone()),
    };
    (st, mails)
}

fn reminders_due(ladder: &[i64], elapsed: i64) -> u32 {
    let Some(&last) = ladder.last() else {
        return 0;
    };
    if elapsed < 0 {
        return 0;
    }
    match ladder.iter().position(|&o| elapsed < o) {
        Some(k) => k as u32,
        None => (ladder.len() as i64 + (elapsed - last) / last.max(1)).min(1 << 30) as u32,
    }
}

/// Applies an acknowledgement to the open incident it names (`incident`: its thread id, or
/// `None` for whichever is open). Only an announced incident can be acknowledged. Returns
/// whether it was applied.
pub fn acknowledge(state: &mut RuleState, incident: Option<&str>, ack: Acked) -> bool {
    match state.incident.as_mut() {
        Some(inc) if inc.announced.is_some() && incident.is_none_or(|t| t == inc.thread) => {
            inc.acked = Some(ack);
            true
        }
        _ => false,
    }
}

/// Records that mail `kind` was delivered at `now`. The first mail opens the thread; every
/// mail of an incident records the failing series it told of; a reminder (or the first
/// mail, sent late) uses up every reminder slot already due, so a server that was down for
/// hours sends one reminder, not a burst; a recovery closes the incident.
pub fn delivered(rule: &Rule, state: &mut RuleState, kind: MailKind, now: i64) {
    state.mail_error = None;
    let failing: BTreeMap<String, State> = state
        .series
        .iter()
        .filter(|(_, s)| s.state.is_failing() && !s.silenced)
        .map(|(n, s)| (n.clone(), s.state))
        .collect();
    match kind {
        MailKind::Recovery => {
            state.incident = None;
            state.changed = None;
        }
        MailKind::ErrorRecovery => state.error_incident = None,
        MailKind::Ack => {}
        MailKind::Escalation(route) => {
            if let Some(inc) = state.incident.as_mut() {
                if !inc.escalated.contains(&route) {
                    inc.escalated.push(route);
                }
                inc.last_mail = Some(now);
            }
        }
        MailKind::Fire | MailKind::Change | MailKind::Reminder(_) => {
            if let Some(inc) = state.incident.as_mut() {
                if kind == MailKind::Fire {
                    inc.announced = Some(now);
                }
                let due = rule.reminders_due(now - inc.started);
                inc.reminders_sent = match kind {
                    MailKind::Reminder(n) => due.max(n),
                    MailKind::Fire => due,
                    _ => inc.reminders_sent,
                };
                inc.told = failing;
                inc.last_mail = Some(now);
            }
        }
        MailKind::Error | MailKind::ErrorReminder(_) => {
            if let Some(inc) = state.error_incident.as_mut() {
                if kind == MailKind::Error {
                    inc.announced = Some(now);
                }
                let due = reminders_due(&HOUND_LADDER, now - inc.started);
                inc.reminders_sent = match kind {
                    MailKind::ErrorReminder(n) => due.max(n),
                    _ => due,
                };
                inc.last_mail = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::tests::parse;

    fn reading(series: &str, value: Option<f64>, level: Option<Level>, at: i64) -> Reading {
        Reading {
            series: series.into(),
            value,
            level,
            last_seen: value.map(|_| at),
            detail: String::new(),
        }
    }

    /// A check outcome from (series, value) pairs, levelled as `rule` would level them.
    fn values(rule: &Rule, v: &[(&str, Option<f64>)], now: i64) -> Outcome {
        let d = rule.direction().unwrap();
        Outcome::Checked(
            v.iter()
                .map(|(s, x)| {
                    let level = x.and_then(|x| {
                        if rule
                            .level_value(Level::Crit)
                            .is_some_and(|c| d.crossed(x, c))
                        {
                            Some(Level::Crit)
                        } else if rule
                            .level_value(Level::Warn)
                            .is_some_and(|w| d.crossed(x, w))
                        {
                            Some(Level::Warn)
                        } else {
                            None
                        }
                    });
                    reading(s, *x, level, now)
                })
                .collect(),
        )
    }

    struct Run {
        rule: Rule,
        state: Option<RuleState>,
        mails: Vec<(i64, MailKind)>,
        /// Series silenced at the next checks.
        silenced: Vec<String>,
    }

    impl Run {
        fn new(text: &str) -> Run {
            Run {
                rule: parse(text).unwrap().remove(0),
                state: None,
                mails: Vec::new(),
                silenced: Vec::new(),
            }
        }
        /// One check at `t` with `v`, every mail delivered; returns its mails.
        fn at(&mut self, t: i64, v: &[(&str, Option<f64>)]) -> Vec<MailKind> {
            let o = values(&self.rule, v, t);
            self.outcome(t, o)
        }
        fn outcome(&mut self, t: i64, o: Outcome) -> Vec<MailKind> {
            let silenced = self.silenced.clone();
            let (mut s, mails) = step(&self.rule, self.state.as_ref(), o, t, &|n| {
                silenced.iter().any(|x| x == n)
            });
            for m in &mails {
                delivered(&self.rule, &mut s, *m, t);
                self.mails.push((t, *m));
            }
            self.state = Some(s);
            mails
        }
        fn state(&self) -> State {
            self.state.as_ref().unwrap().state
        }
        fn series(&self, name: &str) -> State {
            self.state.as_ref().unwrap().series[name].state
        }
    }

    const LEVELS: &str = "[[alert]]\nname = \"Disk\"\ntarget = \"d.*\"\ndirection = \"above\"\nwarn = 85\ncrit = 95\n";

    #[test]
    fn warn_crit_warn_ok_in_one_thread() {
        let mut r = Run::new(LEVELS);
        assert!(r.at(0, &[("d.a", Some(50.0))]).is_empty());
        assert_eq!(r.state(), State::Ok);
        assert_eq!(r.at(60, &[("d.a", Some(90.0))]), vec![MailKind::Fire]);
        assert_eq!(r.state(), State::Warn);
        let thread = r
            .state
            .as_ref()
            .unwrap()
            .incident
            .as_ref()
            .unwrap()
            .thread
            .clone();
        assert!(r.at(120, &[("d.a", Some(91.0))]).is_empty(), "nothing new");
        assert_eq!(r.at(180, &[("d.a", Some(97.0))]), vec![MailKind::Change]);
        assert_eq!(r.state(), State::Crit);
        assert_eq!(
            r.at(240, &[("d.a", Some(88.0))]),
            vec![MailKind::Change],
            "CRIT→WARN is mailed"
        );
        assert_eq!(
            r.state.as_ref().unwrap().incident.as_ref().unwrap().thread,
            thread,
            "one thread"
        );
        assert_eq!(
            r.state.as_ref().unwrap().incident.as_ref().unwrap().worst,
            State::Crit
        );
        assert_eq!(r.at(300, &[("d.a", Some(10.0))]), vec![MailKind::Recovery]);
        assert_eq!(r.state(), State::Ok);
        assert!(r.state.as_ref().unwrap().incident.is_none());
        assert!(
            r.at(360, &[("d.a", Some(90.0))]) == vec![MailKind::Fire],
            "a new incident"
        );
        assert_ne!(
            r.state.as_ref().unwrap().incident.as_ref().unwrap().thread,
            thread
        );
    }

    #[test]
    fn reminders_follow_the_ladder_from_the_start() {
        let mut r = Run::new(LEVELS);
        let mut t = 0;
        while t <= 3 * 86_400 + 3600 {
            r.at(t, &[("d.a", Some(99.0))]);
            t += 60;
        }
        let got: Vec<(i64, MailKind)> = r.mails.clone();
        let mut want = vec![(0, MailKind::Fire)];
        for (i, o) in [300, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200]
            .iter()
            .enumerate()
        {
            want.push((*o, MailKind::Reminder(i as u32 + 1)));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn for_holds_a_failure_pending() {
        let mut r = Run::new(&format!("{LEVELS}for = \"5m\"\n"));
        assert!(r.at(0, &[("d.a", Some(99.0))]).is_empty());
        assert_eq!(r.state(), State::Pending);
        assert!(r.at(240, &[("d.a", Some(99.0))]).is_empty());
        assert!(
            r.at(250, &[("d.a", Some(10.0))]).is_empty(),
            "a pending that clears is silent"
        );
        assert_eq!(r.state(), State::Ok);
        assert!(r.at(300, &[("d.a", Some(99.0))]).is_empty());
        assert!(
            r.at(599, &[("d.a", Some(90.0))]).is_empty(),
            "warn or crit: still failing"
        );
        assert_eq!(r.at(600, &[("d.a", Some(99.0))]), vec![MailKind::Fire]);
        assert_eq!(r.state(), State::Crit);
        assert_eq!(
            r.state.as_ref().unwrap().series["d.a"].failing_since,
            Some(300)
        );
    }

    #[test]
    fn glob_series_join_and_leave() {
        let mut r = Run::new(LEVELS);
        r.at(0, &[("d.a", Some(10.0)), ("d.b", Some(10.0))]);
        assert_eq!(
            r.at(60, &[("d.a", Some(99.0)), ("d.b", Some(10.0))]),
            vec![MailKind::Fire]
        );
        // A new series joins failing: mailed in the thread.
        assert_eq!(
            r.at(
                120,
                &[
                    ("d.a", Some(99.0)),
                    ("d.b", Some(10.0)),
                    ("d.c", Some(90.0))
                ]
            ),
            vec![MailKind::Change]
        );
        assert_eq!(r.series("d.c"), State::Warn);
        // One recovers while another fails: recorded, not mailed.
        assert!(r
            .at(
                180,
                &[
                    ("d.a", Some(10.0)),
                    ("d.b", Some(10.0)),
                    ("d.c", Some(90.0))
                ]
            )
            .is_empty());
        assert_eq!(r.state(), State::Warn);
        assert_eq!(
            r.at(
                240,
                &[
                    ("d.a", Some(10.0)),
                    ("d.b", Some(10.0)),
                    ("d.c", Some(10.0))
                ]
            ),
            vec![MailKind::Recovery]
        );
    }

    #[test]
    fn a_series_that_stops_reporting_is_no_data() {
        let mut r = Run::new(LEVELS);
        r.at(0, &[("d.a", Some(10.0)), ("d.b", Some(10.0))]);
        // d.b's file is still there, its values are null: the check says no value.
        assert_eq!(
            r.at(60, &[("d.a", Some(10.0)), ("d.b", None)]),
            vec![MailKind::Fire]
        );
        assert_eq!((r.state(), r.series("d.b")), (State::NoData, State::NoData));
        assert_eq!(
            r.at(120, &[("d.a", Some(10.0)), ("d.b", Some(10.0))]),
            vec![MailKind::Recovery]
        );
        // Gone from the target altogether: no data after no_data_after, forgotten after a day.
        r.at(200, &[("d.a", Some(10.0))]);
        assert_eq!(r.series("d.b"), State::Ok, "last seen 80 s ago: not yet");
        assert_eq!(r.at(800, &[("d.a", Some(10.0))]), vec![MailKind::Fire]);
        assert_eq!(r.series("d.b"), State::NoData);
        assert_eq!(
            r.at(800 + FORGET_AFTER, &[("d.a", Some(10.0))]),
            vec![MailKind::Recovery]
        );
        assert!(!r.state.as_ref().unwrap().series.contains_key("d.b"));
    }

    #[test]
    fn no_data_policies() {
        let mut ok = Run::new(&format!("{LEVELS}no_data = \"ok\"\n"));
        assert!(ok.at(0, &[("d.a", None)]).is_empty());
        assert_eq!(ok.state(), State::Ok);
        let mut keep = Run::new(&format!("{LEVELS}no_data = \"keep\"\n"));
        assert_eq!(keep.at(0, &[("d.a", Some(99.0))]), vec![MailKind::Fire]);
        assert!(keep.at(60, &[("d.a", None)]).is_empty());
        assert_eq!(keep.state(), State::Crit, "keeps its state");
        let mut none = Run::new(LEVELS);
        assert!(
            none.outcome(0, Outcome::Checked(vec![])).is_empty(),
            "given no_data_after to fill"
        );
        assert!(none.outcome(599, Outcome::Checked(vec![])).is_empty());
        assert_eq!(
            none.outcome(600, Outcome::Checked(vec![])),
            vec![MailKind::Fire]
        );
        assert_eq!(none.state(), State::NoData);
        assert!(none.state.as_ref().unwrap().message.contains("no series"));
    }

    #[test]
    fn errors_have_their_own_incident_and_keep_the_failure() {
        let mut r = Run::new(LEVELS);
        assert_eq!(r.at(0, &[("d.a", Some(99.0))]), vec![MailKind::Fire]);
        assert_eq!(
            r.outcome(60, Outcome::Error("boom".into())),
            vec![MailKind::Error]
        );
        assert_eq!(r.state(), State::Error);
        assert_eq!(r.series("d.a"), State::Crit, "series states are kept");
        assert!(r.outcome(120, Outcome::Error("boom".into())).is_empty());
        assert_eq!(
            r.outcome(60 + 300, Outcome::Error("boom".into())),
            vec![MailKind::ErrorReminder(1)]
        );
        // Evaluates again, still failing: the error recovers, the failure goes on.
        assert_eq!(
            r.at(400, &[("d.a", Some(99.0))]),
            vec![MailKind::ErrorRecovery, MailKind::Reminder(1)]
        );
        assert!(r.state.as_ref().unwrap().error_incident.is_none());
    }

    #[test]
    fn undelivered_mail_is_asked_for_again() {
        let rule = parse(LEVELS).unwrap().remove(0);
        let o = |v: f64, t: i64| values(&rule, &[("d.a", Some(v))], t);
        let (s, m) = step(&rule, None, o(99.0, 1000), 1000, &|_| false);
        assert_eq!(m, vec![MailKind::Fire]);
        let (mut s, m) = step(&rule, Some(&s), o(99.0, 1060), 1060, &|_| false);
        assert_eq!(m, vec![MailKind::Fire], "not delivered: asked again");
        assert_eq!(s.incident.as_ref().unwrap().started, 1000);
        // Delivered late (at +20 min): the +5 min reminder is used up, +30 min comes next.
        delivered(&rule, &mut s, MailKind::Fire, 2200);
        let (s, m) = step(&rule, Some(&s), o(99.0, 2260), 2260, &|_| false);
        assert!(m.is_empty());
        let (mut s, m) = step(&rule, Some(&s), o(99.0, 2800), 2800, &|_| false);
        assert_eq!(m, vec![MailKind::Reminder(2)]);
        delivered(&rule, &mut s, MailKind::Reminder(2), 2800);
        let (s, m) = step(&rule, Some(&s), o(1.0, 3000), 3000, &|_| false);
        assert_eq!(m, vec![MailKind::Recovery]);
        let (mut s, m) = step(&rule, Some(&s), o(1.0, 3060), 3060, &|_| false);
        assert_eq!(m, vec![MailKind::Recovery]);
        delivered(&rule, &mut s, MailKind::Recovery, 3060);
        let (_, m) = step(&rule, Some(&s), o(1.0, 3120), 3120, &|_| false);
        assert!(m.is_empty());
    }

    #[test]
    fn a_recovery_from_an_edit_says_so() {
        let mut r = Run::new(
            "[[alert]]\nname = \"x\"\ntarget = \"d.a\"\ndirection = \"above\"\ncrit = 0\n",
        );
        assert_eq!(r.at(0, &[("d.a", Some(50.0))]), vec![MailKind::Fire]);
        r.rule = parse(
            "[[alert]]\nname = \"x\"\ntarget = \"d.a\"\ndirection = \"above\"\ncrit = 1000\n",
        )
        .unwrap()
        .remove(0);
        let o = values(&r.rule, &[("d.a", Some(50.0))], 60);
        let (s, m) = step(&r.rule, r.state.as_ref(), o, 60, &|_| false);
        assert_eq!(m, vec![MailKind::Recovery]);
        assert_eq!(
            s.changed.as_ref().map(|c| c.1.as_str()),
            Some("crit 0 → 1000")
        );
        // An edit while it keeps failing, then a real recovery later: not "rule changed".
        let mut r = Run::new(LEVELS);
        r.at(0, &[("d.a", Some(99.0))]);
        r.rule = parse(&LEVELS.replace("95", "96")).unwrap().remove(0);
        r.at(60, &[("d.a", Some(99.0))]);
        r.at(120, &[("d.a", Some(99.0))]);
        let o = values(&r.rule, &[("d.a", Some(1.0))], 180);
        let (s, m) = step(&r.rule, r.state.as_ref(), o, 180, &|_| false);
        assert_eq!(m, vec![MailKind::Recovery]);
        assert_eq!(s.changed, None);
    }

    #[test]
    fn a_silenced_failing_series_sends_no_mail_and_is_mailed_when_the_silence_ends() {
        let mut r = Run::new(LEVELS);
        r.silenced = vec!["d.a".into()];
        assert!(r.at(0, &[("d.a", Some(99.0))]).is_empty(), "no Fire");
        assert_eq!(r.state(), State::Crit, "still checked, state kept");
        let st = r.state.as_ref().unwrap();
        assert!(st.series["d.a"].silenced);
        assert!(st.incident.is_none(), "no incident opened");
        // An hour of checks: no reminders either.
        for t in (60..3600).step_by(60) {
            assert!(r.at(t, &[("d.a", Some(97.0))]).is_empty());
        }
        r.silenced.clear();
        assert_eq!(
            r.at(3600, &[("d.a", Some(99.0))]),
            vec![MailKind::Fire],
            "the silence ended while failing: a new failure"
        );
        assert!(!r.state.as_ref().unwrap().series["d.a"].silenced);
    }

    #[test]
    fn a_silence_on_an_open_incident_holds_it_without_reminders_or_recovery() {
        let mut r = Run::new(LEVELS);
        assert_eq!(r.at(0, &[("d.a", Some(99.0))]), vec![MailKind::Fire]);
        r.silenced = vec!["d.a".into()];
        for t in (60..7200).step_by(60) {
            assert!(r.at(t, &[("d.a", Some(99.0))]).is_empty(), "at {t}");
        }
        assert!(
            r.state.as_ref().unwrap().incident.is_some(),
            "not recovered by the silence"
        );
        assert_eq!(
            r.at(7200, &[("d.a", Some(1.0))]),
            vec![MailKind::Recovery],
            "recovered when really OK"
        );
        // Silenced, fails again, recovers: nothing at all.
        assert!(r.at(7260, &[("d.a", Some(99.0))]).is_empty());
        assert!(r.at(7320, &[("d.a", Some(1.0))]).is_empty());
        assert!(r.state.as_ref().unwrap().incident.is_none());
    }

    #[test]
    fn a_silence_ending_within_an_open_incident_is_a_change() {
        let mut r = Run::new(LEVELS);
        r.silenced = vec!["d.b".into()];
        assert_eq!(
            r.at(0, &[("d.a", Some(99.0)), ("d.b", Some(99.0))]),
            vec![MailKind::Fire]
        );
        let told = &r.state.as_ref().unwrap().incident.as_ref().unwrap().told;
        assert_eq!(told.keys().collect::<Vec<_>>(), vec!["d.a"], "d.b left out");
        assert!(r
            .at(60, &[("d.a", Some(99.0)), ("d.b", Some(99.0))])
            .is_empty());
        r.silenced.clear();
        assert_eq!(
            r.at(120, &[("d.a", Some(99.0)), ("d.b", Some(99.0))]),
            vec![MailKind::Change]
        );
    }

    #[test]
    fn a_partial_silence_leaves_the_other_series_mailing() {
        let mut r = Run::new(LEVELS);
        r.silenced = vec!["d.a".into()];
        r.at(0, &[("d.a", Some(10.0)), ("d.b", Some(10.0))]);
        assert!(r
            .at(60, &[("d.a", Some(99.0)), ("d.b", Some(10.0))])
            .is_empty());
        assert_eq!(
            r.at(120, &[("d.a", Some(99.0)), ("d.b", Some(90.0))]),
            vec![MailKind::Fire],
            "d.b is not silenced"
        );
        assert_eq!(
            r.state.as_ref().unwrap().incident.as_ref().unwrap().worst,
            State::Warn,
            "the incident is d.b's WARN"
        );
        assert_eq!(
            r.state(),
            State::Crit,
            "the rule shows its worst, silenced or not"
        );
        assert_eq!(
            r.at(420, &[("d.a", Some(99.0)), ("d.b", Some(90.0))]),
            vec![MailKind::Reminder(1)],
            "d.b keeps being reminded"
        );
        // d.b recovers while d.a still fails silenced: the incident stays open, silent.
        assert!(r
            .at(480, &[("d.a", Some(99.0)), ("d.b", Some(1.0))])
            .is_empty());
        assert!(r.state.as_ref().unwrap().incident.is_some());
    }

    #[test]
    fn the_worst_state_and_its_order() {
        assert!(State::Error.rank() > State::Crit.rank());
        assert!(State::Crit.rank() > State::NoData.rank());
        assert!(State::NoData.rank() > State::Warn.rank());
        assert!(State::Warn.rank() > State::Pending.rank());
        let mut r = Run::new(LEVELS);
        r.at(
            0,
            &[
                ("d.a", Some(90.0)),
                ("d.b", Some(99.0)),
                ("d.c", Some(97.0)),
                ("d.d", None),
            ],
        );
        let s = r.state.as_ref().unwrap();
        let order: Vec<&str> = s.failing(&r.rule).iter().map(|f| f.0).collect();
        assert_eq!(order, vec!["d.b", "d.c", "d.d", "d.a"]);
        assert_eq!(s.state, State::Crit);
    }
}
