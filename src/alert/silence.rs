//! Silences and maintenance windows: who said which rules or series should send no mail,
//! until when and why. A silenced series is still checked and keeps its state (the board
//! shows it, marked); the state machine only leaves it out of what mails (see `state`).
//!
//! Silences are one-off (`POST /api/silences`, `carbonhound silence add`), stored in the
//! state database's `silences` tree (big-endian id → JSON [`Silence`]); maintenance windows
//! are weekly, from the settings (`[[maintenance]]`, [`MaintenanceWindow`]). Once per round
//! the scheduler takes a [`SilenceMatcher`]: the silences and windows open at that moment.
//! Never sends anything and never touches rule state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rule::Rule;
use crate::config::MaintenanceWindow;
use crate::store::PathGlob;

/// Most silences stored (active and recently ended together); a new one beyond is refused.
pub const MAX_SILENCES: usize = 10_000;
/// Longest silence, in seconds (90 days).
pub const MAX_SILENCE_SECS: i64 = 90 * 86_400;
/// Ended silences are listed (and kept) this long, in seconds (7 days).
pub const ENDED_KEPT_SECS: i64 = 7 * 86_400;
/// Longest `author`, in characters.
pub const MAX_AUTHOR_CHARS: usize = 100;
/// Longest `comment`, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Longest `rule`, `series` glob, label key or value, in characters.
pub const MAX_MATCHER_CHARS: usize = 1000;
/// Most `labels` of one silence.
pub const MAX_SILENCE_LABELS: usize = 20;

/// One silence: rules and series that send no mail from `starts` to `ends`. Every matcher
/// given must match (at least one is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its number, unique in this database.
    pub id: u64,
    /// A rule's name or slug; `None`: any rule.
    pub rule: Option<String>,
    /// A Graphite glob over the series name (`web.*.cpu`, `**.disk`); `None`: any series.
    pub series: Option<String>,
    /// Labels the rule must all have, with these values.
    pub labels: BTreeMap<String, String>,
    /// From (epoch seconds).
    pub starts: i64,
    /// Until (epoch seconds, exclusive); set to the time of an expiry.
    pub ends: i64,
    /// Why.
    pub comment: String,
    /// Who.
    pub author: String,
    /// When it was added (epoch seconds).
    pub created: i64,
}

impl Silence {
    /// Whether it is in force at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.starts <= now && now < self.ends
    }

    /// Whether it covers `rule` at all (rule and labels; the series glob aside).
    pub fn covers_rule(&self, rule: &Rule) -> bool {
        self.rule
            .as_deref()
            .is_none_or(|r| r == rule.name || r == rule.slug)
            && self
                .labels
                .iter()
                .all(|(k, v)| rule.labels.get(k) == Some(v))
    }
}

/// A silence to add, as the API and the CLI give it (the id and times are the store's).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct NewSilence {
    /// See [`Silence::rule`]; empty is none.
    #[serde(default)]
    pub rule: Option<String>,
    /// See [`Silence::series`]; empty is none.
    #[serde(default)]
    pub series: Option<String>,
    /// See [`Silence::labels`].
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Epoch seconds it ends at.
    pub ends: i64,
    /// Why (1 to 1000 characters).
    pub comment: String,
    /// Who (1 to 100 characters).
    pub author: String,
}

/// Why a silence was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// A field of the request is wrong (HTTP 400).
    #[error("{field}: {reason}")]
    Invalid {
        /// The request's field: `rule`, `series`, `labels`, `duration`, `until`, `comment`,
        /// `author`.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// [`MAX_SILENCES`] are stored (HTTP 507).
    #[error("{MAX_SILENCES} silences are stored already: expire some first")]
    Full,
    /// No silence has this id (HTTP 404).
    #[error("no silence {0}")]
    NotFound(u64),
    /// The database failed (HTTP 500).
    #[error("cannot store silences: {0}")]
    Db(#[from] sled::Error),
}

fn text(field: &'static str, s: &str, max: usize, required: bool) -> Result<(), SilenceError> {
    let invalid = |reason: String| SilenceError::Invalid { field, reason };
    if required && s.trim().is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if s.chars().count() > max {
        return Err(invalid(format!("at most {max} characters")));
    }
    let allowed = |c: char| field == "comment" && c == '\n';
    if s.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(invalid("control characters are not allowed".into()));
    }
    Ok(())
}

impl NewSilence {
    /// Checks it at `now`: at least one matcher, an end after `now` at most 90 days on, and
    /// author, comment and matchers within their lengths, without control characters (a
    /// comment may hold line breaks). Empty `rule`/`series` become `None`.
    pub fn validate(mut self, now: i64) -> Result<NewSilence, SilenceError> {
        self.rule = self.rule.filter(|r| !r.trim().is_empty());
        self.series = self.series.filter(|r| !r.trim().is_empty());
        if let Some(r) = &self.rule {
            text("rule", r, MAX_MATCHER_CHARS, true)?;
        }
        if let Some(s) = &self.series {
            text("series", s, MAX_MATCHER_CHARS, true)?;
        }
        if self.labels.len() > MAX_SILENCE_LABELS {
            return Err(SilenceError::Invalid {
                field: "labels",
                reason: format!("at most {MAX_SILENCE_LABELS} labels"),
            });
        }
        for (k, v) in &self.labels {
            text("labels", k, MAX_MATCHER_CHARS, true)?;
            text("labels", v, MAX_MATCHER_CHARS, false)?;
        }
        if self.rule.is_none() && self.series.is_none() && self.labels.is_empty() {
            return Err(SilenceError::Invalid {
                field: "rule",
                reason: "give at least one of rule, series or labels (a silence of everything \
                         is refused)"
                    .into(),
            });
        }
        if self.ends <= now {
            return Err(SilenceError::Invalid {
                field: "duration",
                reason: "the silence must end in the future".into(),
            });
        }
        if self.ends - now > MAX_SILENCE_SECS {
            return Err(SilenceError::Invalid {
                field: "duration",
                reason: "at most 90 days".into(),
            });
        }
        text("comment", &self.comment, MAX_COMMENT_CHARS, true)?;
        text("author", &self.author, MAX_AUTHOR_CHARS, true)?;
        Ok(self)
    }
}

/// What silenced a series, for the board, the API and the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilencedBy {
    /// `silence 12` or `maintenance backups`.
    pub by: String,
    /// The silence's id; `None` for a maintenance window.
    pub id: Option<u64>,
    /// Who (a maintenance window: `maintenance`).
    pub author: String,
    /// Why (a maintenance window: its weekly schedule).
    pub comment: String,
    /// Until when (epoch seconds).
    pub until: i64,
}

/// The silences of the state database: a cheap clone of its tree, held by the HTTP API
/// (which adds and expires) and the scheduler (which reads).
#[derive(Clone)]
pub struct Silences {
    db: sled::Db,
    tree: sled::Tree,
}

impl Silences {
    pub(super) fn new(db: sled::Db, tree: sled::Tree) -> Silences {
        Silences { db, tree }
    }

    fn all(&self) -> Vec<Silence> {
        self.tree
            .iter()
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| serde_json::from_slice(&v).ok())
            .collect()
    }

    /// Stores `new` (validated at `now`, see [`NewSilence::validate`]), starting at `now`;
    /// silences ended more than 7 days ago are dropped first. Errors: a bad field, the
    /// [`MAX_SILENCES`] limit, the database.
    pub fn add(&self, new: NewSilence, now: i64) -> Result<Silence, SilenceError> {
        let new = new.validate(now)?;
        self.prune(now);
        if self.tree.len() >= MAX_SILENCES {
            return Err(SilenceError::Full);
        }
        let s = Silence {
            id: self.db.generate_id()? + 1,
            rule: new.rule,
            series: new.series,
            labels: new.labels,
            starts: now,
            ends: new.ends,
            comment: new.comment,
            author: new.author,
            created: now,
        };
        self.store(&s)?;
        tracing::info!(
            "silence {} added by {} until {}: {}",
            s.id,
            s.author,
            super::format::utc(s.ends),
            s.comment
        );
        Ok(s)
    }

    fn store(&self, s: &Silence) -> Result<(), SilenceError> {
        let json = serde_json::to_vec(s).map_err(|e| SilenceError::Invalid {
            field: "comment",
            reason: e.to_string(),
        })?;
        self.tree.insert(s.id.to_be_bytes(), json)?;
        self.tree.flush()?;
        Ok(())
    }

    fn prune(&self, now: i64) {
        for s in self.all() {
            if s.ends <= now - ENDED_KEPT_SECS {
                let _ = self.tree.remove(s.id.to_be_bytes());
            }
        }
    }

    /// The active silences (soonest ending first), then those ended in the last 7 days
    /// (latest ended first).
    pub fn list(&self, now: i64) -> Vec<Silence> {
        let (mut active, mut ended): (Vec<Silence>, Vec<Silence>) = self
            .all()
            .into_iter()
            .filter(|s| s.ends > now - ENDED_KEPT_SECS)
            .partition(|s| s.ends > now);
        active.sort_by_key(|s| (s.ends, s.id));
        ended.sort_by_key(|s| std::cmp::Reverse((s.ends, s.id)));
        active.extend(ended);
        active
    }

    /// Ends silence `id` at `now` (one already ended stays as it was). Errors: no such
    /// silence, the database.
    pub fn expire(&self, id: u64, now: i64) -> Result<Silence, SilenceError> {
        let bytes = self
            .tree
            .get(id.to_be_bytes())?
            .ok_or(SilenceError::NotFound(id))?;
        let mut s: Silence =
            serde_json::from_slice(&bytes).map_err(|_| SilenceError::NotFound(id))?;
        if s.ends > now {
            s.ends = now.max(s.starts);
            self.store(&s)?;
            tracing::info!("silence {id} expired");
        }
        Ok(s)
    }

    /// The silences open at `now` and the maintenance `windows` open then.
    pub fn matcher(&self, windows: &[MaintenanceWindow], now: i64) -> SilenceMatcher {
        SilenceMatcher::new(
            self.all().into_iter().filter(|s| s.active(now)).collect(),
            windows,
            now,
        )
    }
}

/// The silences and maintenance windows in force at one moment, globs compiled.
#[derive(Default)]
pub struct SilenceMatcher {
    silences: Vec<(Silence, Option<PathGlob>)>,
    windows: Vec<(MaintenanceWindow, i64)>,
}

impl SilenceMatcher {
    /// From `silences` (those active at `now` are kept) and `windows` (those open at `now`).
    pub fn new(silences: Vec<Silence>, windows: &[MaintenanceWindow], now: i64) -> SilenceMatcher {
        SilenceMatcher {
            silences: silences
                .into_iter()
                .filter(|s| s.active(now))
                .map(|s| {
                    let g = s.series.as_deref().map(PathGlob::compile);
                    (s, g)
                })
                .collect(),
            windows: windows
                .iter()
                .filter_map(|w| w.open_until(now).map(|u| (w.clone(), u)))
                .collect(),
        }
    }

    /// Whether nothing is in force (the common case: the state machine's hook is then free).
    pub fn is_empty(&self) -> bool {
        self.silences.is_empty() && self.windows.is_empty()
    }

    /// What silences series `series` of `rule` now, if anything: of several, the one that
    /// lasts longest.
    pub fn silenced(&self, rule: &Rule, series: &str) -> Option<SilencedBy> {
        let by_silence = self
            .silences
            .iter()
            .filter(|(s, g)| s.covers_rule(rule) && g.as_ref().is_none_or(|g| g.matches(series)))
            .map(|(s, _)| SilencedBy {
                by: format!("silence {}", s.id),
                id: Some(s.id),
                author: s.author.clone(),
                comment: s.comment.clone(),
                until: s.ends,
            });
        let by_window = self
            .windows
            .iter()
            .filter(|(w, _)| w.covers(&rule.name, &rule.slug, &rule.labels))
            .map(|(w, until)| SilencedBy {
                by: format!("maintenance {}", w.name),
                id: None,
                author: "maintenance".into(),
                comment: w.weekly.text.clone(),
                until: *until,
            });
        by_silence.chain(by_window).max_by_key(|s| s.until)
    }

    /// Fills in [`SeriesState::silenced_by`](super::state::SeriesState) of every series the
    /// state machine found silenced.
    pub fn annotate(&self, rule: &Rule, state: &mut super::state::RuleState) {
        for (name, s) in state.series.iter_mut() {
            s.silenced_by = if s.silenced {
                self.silenced(rule, name)
            } else {
                None
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::tests::parse;

    fn new(rule: Option<&str>, series: Option<&str>, ends: i64) -> NewSilence {
        NewSilence {
            rule: rule.map(String::from),
            series: series.map(String::from),
            labels: BTreeMap::new(),
            ends,
            comment: "deploy".into(),
            author: "ops".into(),
        }
    }

    #[test]
    fn add_list_expire_and_match() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::StateDb::open(dir.path()).unwrap();
        let s = db.silences();
        let rule = parse("[[alert]]\nname = \"Disk\"\ntarget = \"d.*\"\ndirection = \"above\"\ncrit = 1\nlabels = { team = \"web\" }\n")
            .unwrap()
            .remove(0);
        let a = s
            .add(new(Some("Disk"), Some("d.{a,b}"), 2000), 1000)
            .unwrap();
        let b = s.add(new(None, Some("other.*"), 1500), 1000).unwrap();
        let mut by_label = new(None, None, 3000);
        by_label.labels.insert("team".into(), "web".into());
        let c = s.add(by_label, 1000).unwrap();
        assert_eq!(
            s.list(1100).iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![b.id, a.id, c.id],
            "soonest ending first"
        );
        let m = s.matcher(&[], 1100);
        assert_eq!(
            m.silenced(&rule, "d.a").unwrap().until,
            3000,
            "the longest wins"
        );
        s.expire(c.id, 1200).unwrap();
        let m = s.matcher(&[], 1200);
        assert_eq!(m.silenced(&rule, "d.a").unwrap().id, Some(a.id));
        assert!(m.silenced(&rule, "d.c").is_none());
        assert_eq!(
            s.list(1600).iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![a.id, b.id, c.id]
        );
        assert!(matches!(
            s.expire(999_999, 1),
            Err(SilenceError::NotFound(_))
        ));
        assert!(s.list(2000 + ENDED_KEPT_SECS + 1).is_empty());
    }

    #[test]
    fn bad_silences_name_the_field() {
        let field = |n: NewSilence| match n.validate(1000) {
            Err(SilenceError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(new(None, None, 2000)), "rule");
        assert_eq!(field(new(Some("x"), None, 1000)), "duration");
        assert_eq!(
            field(new(Some("x"), None, 1000 + MAX_SILENCE_SECS + 1)),
            "duration"
        );
        let mut n = new(Some("x"), None, 2000);
        n.author = "a\u{7}b".into();
        assert_eq!(field(n), "author");
        let mut n = new(Some("x"), None, 2000);
        n.comment = "x".repeat(MAX_COMMENT_CHARS + 1);
        assert_eq!(field(n), "comment");
        let mut n = new(Some("x"), None, 2000);
        n.comment = "two\nlines".into();
        assert!(n.validate(1000).is_ok());
        assert_eq!(field(new(Some("x\u{0}"), None, 2000)), "rule");
    }
}
