//! The state machine of one rule, as Hound runs it: OK → Failed sends the alert, each rung
//! of the backoff ladder while it stays Failed sends a reminder, Failed → OK sends the
//! recovery. Pure functions of (previous state, check outcome, now): no clock, no I/O, so
//! every transition is unit-tested with made-up times.
//!
//! Mail is confirmed separately ([`delivered`]): a mail that could not be sent leaves the
//! state wanting it, so the next check tries again, and nothing is marked sent that was not.
//!
//! Missing data is its own status, `nodata` (Hound calls it an error and mails nothing);
//! an evaluation error (say, a target that no longer evaluates) is `error`. Neither sends
//! mail. A failure that turns into `nodata` or `error` keeps its episode open: reminders
//! pause, and when data returns the rule either continues the same failure (no second
//! alert) or recovers (a recovery mail, as Hound sends after an error).

use serde::{Deserialize, Serialize};

use super::backoff;
use super::check::{Outcome, Reading, WINDOW};
use super::rule::Rule;

/// Most failing series kept in the state and listed in a mail; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// What the last check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No series crosses the threshold.
    Ok,
    /// At least one series crosses it.
    Failed,
    /// No series had a value in the check window.
    NoData,
    /// The target could not be evaluated.
    Error,
}

impl Status {
    /// `ok`, `failed`, `nodata` or `error` (the CSS class and JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::NoData => "nodata",
            Status::Error => "error",
        }
    }
}

/// One failure, from its first failing check to the recovery mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// First failing check (epoch seconds); reminders count from here.
    pub started: i64,
    /// When the alert mail was delivered; `None` until it was.
    pub alert_sent: Option<i64>,
    /// Reminder slots of the backoff ladder used up (sent, or skipped while down).
    pub reminders_sent: u32,
    /// When the last mail of this episode was delivered.
    pub last_mail: Option<i64>,
}

/// Everything known about a rule, persisted after every check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Status of the last check.
    pub status: Status,
    /// When the rule entered this status (epoch seconds).
    pub since: i64,
    /// When it was last checked.
    pub checked_at: i64,
    /// The headline value: the worst reading (furthest on the failing side), if any.
    pub value: Option<f64>,
    /// Series that had a value.
    pub series_checked: usize,
    /// Series the target gave.
    pub series_total: usize,
    /// Failing readings, worst first, at most `MAX_LISTED` (20).
    pub failing: Vec<Reading>,
    /// How many series fail in all.
    pub failing_total: usize,
    /// Why the status is `error` or `nodata`.
    pub message: String,
    /// The open failure, if any.
    pub episode: Option<Episode>,
    /// The last mail delivery error, cleared by a delivery.
    pub mail_error: Option<String>,
}

/// A mail the state machine wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MailKind {
    /// The first mail of a failure: `[ALERT] name` or `[NOTICE] name`.
    Alert,
    /// Reminder `n` (1-based) while the failure lasts; same subject as the alert.
    Reminder(u32),
    /// `[RECOVERED] name`.
    Recovery,
}

fn classify(
    rule: &Rule,
    outcome: Outcome,
) -> (
    Status,
    Option<f64>,
    usize,
    usize,
    Vec<Reading>,
    usize,
    String,
) {
    match outcome {
        Outcome::Error(m) => (Status::Error, None, 0, 0, Vec::new(), 0, m),
        Outcome::Checked { readings, series } => {
            if readings.is_empty() {
                let m = if series == 0 {
                    "the target matches no series".to_string()
                } else {
                    format!(
                        "none of {series} series had a value in the last {} minutes",
                        WINDOW / 60
                    )
                };
                return (Status::NoData, None, 0, series, Vec::new(), 0, m);
            }
            let d = rule.direction;
            let worst = readings
                .iter()
                .map(|r| r.value)
                .fold(readings[0].value, |a, b| d.worse(a, b));
            let mut failing: Vec<Reading> = readings
                .iter()
                .filter(|r| d.crossed(r.value, rule.threshold))
                .cloned()
                .collect();
            let failing_total = failing.len();
            failing.sort_by(|a, b| {
                let (x, y) = (a.value, b.value);
                let ord = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                if d == super::rule::Direction::Above {
                    ord.reverse()
                } else {
                    ord
                }
            });
            failing.truncate(MAX_LISTED);
            let status = if failing_total > 0 {
                Status::Failed
            } else {
                Status::Ok
            };
            (
                status,
                Some(worst),
                readings.len(),
                series,
                failing,
                failing_total,
                String::new(),
            )
        }
    }
}

/// The state after a check: `prev` is the stored state (`None` for a new rule), `outcome`
/// what the check found, `now` its time (epoch seconds). Returns the new state and the mail
/// it calls for, if any; the caller sends it and then calls [`delivered`].
pub fn step(
    rule: &Rule,
    prev: Option<&RuleState>,
    outcome: Outcome,
    now: i64,
) -> (RuleState, Option<MailKind>) {
    let (status, value, series_checked, series_total, failing, failing_total, message) =
        classify(rule, outcome);
    let since = match prev {
        Some(p) if p.status == status => p.since,
        _ => now,
    };
    let mut episode = prev.and_then(|p| p.episode.clone());
    let mail = match status {
        Status::Failed => {
            let ep = episode.get_or_insert(Episode {
                started: now,
                alert_sent: None,
                reminders_sent: 0,
                last_mail: None,
            });
            if ep.alert_sent.is_none() {
                Some(MailKind::Alert)
            } else if backoff::slots_due(now - ep.started) > ep.reminders_sent {
                Some(MailKind::Reminder(ep.reminders_sent + 1))
            } else {
                None
            }
        }
        Status::Ok => match &episode {
            Some(ep) if ep.alert_sent.is_some() => Some(MailKind::Recovery),
            // The alert never got out (mail was failing the whole time): nothing to recover.
            Some(_) => {
                episode = None;
                None
            }
            None => None,
        },
        Status::NoData | Status::Error => None,
    };
    let state = RuleState {
        status,
        since,
        checked_at: now,
        value,
        series_checked,
        series_total,
        failing,
        failing_total,
        message,
        episode,
        mail_error: prev.and_then(|p| p.mail_error.clone()),
    };
    (state, mail)
}

/// Records that mail `kind` was delivered at `now`. An alert or reminder uses up every
/// reminder slot already due (a server that was down for hours sends one reminder, not a
/// burst); a recovery closes the episode.
pub fn delivered(state: &mut RuleState, kind: MailKind, now: i64) {
    state.mail_error = None;
    match kind {
        MailKind::Recovery => state.episode = None,
        MailKind::Alert | MailKind::Reminder(_) => {
            if let Some(ep) = state.episode.as_mut() {
                if kind == MailKind::Alert {
                    ep.alert_sent = Some(now);
                }
                ep.reminders_sent = backoff::slots_due(now - ep.started)
                    .max(ep.reminders_sent + u32::from(kind != MailKind::Alert));
                ep.last_mail = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::Direction;

    use crate::alert::rule::tests::rule;

    fn values(v: &[f64]) -> Outcome {
        Outcome::Checked {
            readings: v
                .iter()
                .enumerate()
                .map(|(i, &value)| Reading {
                    series: format!("s{i}"),
                    value,
                    at: 0,
                })
                .collect(),
            series: v.len(),
        }
    }

    /// Runs checks every `every` seconds from `t0` for `span` seconds with `outcome`,
    /// delivering every mail; returns (seconds since t0, mail) of each mail.
    fn run(
        r: &Rule,
        state: &mut Option<RuleState>,
        t0: i64,
        every: i64,
        span: i64,
        outcome: &Outcome,
    ) -> Vec<(i64, MailKind)> {
        let mut sent = Vec::new();
        let mut t = t0;
        while t <= t0 + span {
            let (mut s, mail) = step(r, state.as_ref(), outcome.clone(), t);
            if let Some(m) = mail {
                delivered(&mut s, m, t);
                sent.push((t - t0, m));
            }
            *state = Some(s);
            t += every;
        }
        sent
    }

    #[test]
    fn alert_reminders_on_the_ladder_and_recovery() {
        let r = rule(4.0, Direction::Above);
        let mut st = None;
        let t0 = 1_700_000_000;
        let sent = run(&r, &mut st, t0, 60, 3 * 86400 + 3600, &values(&[5.0]));
        let want: Vec<(i64, MailKind)> = vec![
            (0, MailKind::Alert),
            (300, MailKind::Reminder(1)),
            (1800, MailKind::Reminder(2)),
            (3600, MailKind::Reminder(3)),
            (7200, MailKind::Reminder(4)),
            (14400, MailKind::Reminder(5)),
            (28800, MailKind::Reminder(6)),
            (86400, MailKind::Reminder(7)),
            (172800, MailKind::Reminder(8)),
            (259200, MailKind::Reminder(9)),
        ];
        assert_eq!(sent, want);
        let s = st.clone().unwrap();
        assert_eq!((s.status, s.since), (Status::Failed, t0));
        let (s2, mail) = step(&r, Some(&s), values(&[3.0]), t0 + 300_000);
        assert_eq!(mail, Some(MailKind::Recovery));
        assert_eq!(s2.status, Status::Ok);
        assert_eq!(s2.since, t0 + 300_000);
    }

    #[test]
    fn undelivered_mail_is_asked_for_again() {
        let r = rule(0.0, Direction::Above);
        let (s, mail) = step(&r, None, values(&[1.0]), 1000);
        assert_eq!(mail, Some(MailKind::Alert));
        // Not delivered: the next check wants the alert again, the failure start is kept.
        let (mut s, mail) = step(&r, Some(&s), values(&[1.0]), 1060);
        assert_eq!(mail, Some(MailKind::Alert));
        assert_eq!(s.episode.as_ref().unwrap().started, 1000);
        // Delivered late (at +20 min): the +5 min reminder is used up, +30 min comes next.
        delivered(&mut s, MailKind::Alert, 2200);
        let (s, mail) = step(&r, Some(&s), values(&[1.0]), 2260);
        assert_eq!(mail, None);
        let (mut s, mail) = step(&r, Some(&s), values(&[1.0]), 1000 + 1800);
        assert_eq!(mail, Some(MailKind::Reminder(2)));
        delivered(&mut s, MailKind::Reminder(2), 2800);
        // Recovery not delivered: asked for again.
        let (s, mail) = step(&r, Some(&s), values(&[-1.0]), 3000);
        assert_eq!(mail, Some(MailKind::Recovery));
        let (mut s, mail) = step(&r, Some(&s), values(&[-1.0]), 3060);
        assert_eq!(mail, Some(MailKind::Recovery));
        delivered(&mut s, MailKind::Recovery, 3060);
        let (_, mail) = step(&r, Some(&s), values(&[-1.0]), 3120);
        assert_eq!(mail, None);
    }

    #[test]
    fn a_failure_never_announced_recovers_silently() {
        let r = rule(0.0, Direction::Above);
        let (s, _) = step(&r, None, values(&[1.0]), 1000);
        let (s, mail) = step(&r, Some(&s), values(&[-1.0]), 1060);
        assert_eq!(mail, None);
        assert_eq!(s.episode, None);
    }

    #[test]
    fn nodata_and_errors_send_nothing_and_keep_the_failure() {
        let r = rule(10.0, Direction::Below);
        let (s, mail) = step(&r, None, values(&[]), 1000);
        assert_eq!((s.status, mail), (Status::NoData, None));
        let (s, mail) = step(
            &r,
            Some(&s),
            Outcome::Checked {
                readings: vec![],
                series: 0,
            },
            1060,
        );
        assert_eq!((s.status, s.since, mail), (Status::NoData, 1000, None));
        assert!(s.message.contains("no series"), "{}", s.message);
        let (mut s, mail) = step(&r, Some(&s), values(&[3.0]), 1120);
        assert_eq!((s.status, mail), (Status::Failed, Some(MailKind::Alert)));
        delivered(&mut s, MailKind::Alert, 1120);
        let (s, mail) = step(&r, Some(&s), Outcome::Error("boom".into()), 1180);
        assert_eq!((s.status, mail), (Status::Error, None));
        assert!(s.episode.is_some());
        // Still failing long after: the same failure goes on (a reminder, no second alert).
        let (s, mail) = step(&r, Some(&s), values(&[3.0]), 1120 + 400);
        assert_eq!(mail, Some(MailKind::Reminder(1)));
        let (_, mail) = step(&r, Some(&s), values(&[30.0]), 1120 + 500);
        assert_eq!(mail, Some(MailKind::Recovery));
    }

    #[test]
    fn any_failing_series_fails_the_rule() {
        let r = rule(4.0, Direction::Above);
        let (s, _) = step(&r, None, values(&[1.0, 7.0, 4.0, 2.0]), 1000);
        assert_eq!(s.status, Status::Failed);
        assert_eq!(s.failing_total, 2);
        assert_eq!(
            s.failing.iter().map(|r| r.value).collect::<Vec<_>>(),
            vec![7.0, 4.0],
            "worst first"
        );
        assert_eq!(s.value, Some(7.0));
        assert_eq!((s.series_checked, s.series_total), (4, 4));
        let r = rule(4.0, Direction::Below);
        let (s, _) = step(&r, None, values(&[5.0, 6.0]), 1000);
        assert_eq!(
            (s.status, s.value),
            (Status::Ok, Some(5.0)),
            "the headline is the value nearest to failing"
        );
    }
}
