//! Alert state and history in sled (`data_dir/state`), so a restart knows what was sent:
//! the status of each rule, when its failure began, which mails went out.
//!
//! Trees: `rules` (rule name → JSON [`RuleState`]), `history` (rule name, NUL,
//! big-endian time, big-endian id → JSON [`HistoryEvent`]), the history capped at
//! [`MAX_HISTORY`] events per rule, `board` (the board's samples) and `silences` (see
//! `silence`). The scheduler holds it; the HTTP API holds a clone for the silences only;
//! status pages read the snapshot the scheduler publishes. Writes nothing outside its
//! directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::silence::Silences;
use super::state::RuleState;

/// Events kept per rule; older ones are dropped.
pub const MAX_HISTORY: usize = 500;
/// sled's page cache, in bytes (its default is 1 GiB; alert state is tiny).
const CACHE_BYTES: u64 = 8 << 20;

/// Something that happened to a rule: a status change or a mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// When (epoch seconds).
    pub at: i64,
    /// `ok`, `failed`, `nodata`, `error` (status changes), `mail` or `mail-error`.
    pub kind: String,
    /// What, in words.
    pub text: String,
}

/// The open sled database. A clone shares it (sled's handles are reference-counted): the
/// scheduler holds one, the HTTP API the [`Silences`] of another.
#[derive(Clone)]
pub struct StateDb {
    db: sled::Db,
    rules: sled::Tree,
    history: sled::Tree,
    board: sled::Tree,
    silences: sled::Tree,
}

/// How many rules were in each state at one moment: a point of the board's 24 h and 7 d
/// graphs. One sample is kept per [`SAMPLE_SECS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardSample {
    /// When (epoch seconds, the start of its bucket).
    pub at: i64,
    /// Rules OK.
    pub ok: u32,
    /// Rules PENDING.
    pub pending: u32,
    /// Rules WARN.
    pub warn: u32,
    /// Rules CRIT.
    pub crit: u32,
    /// Rules NODATA.
    pub nodata: u32,
    /// Rules ERROR.
    pub error: u32,
}

/// Seconds per board sample (5 minutes: 2,016 samples for 7 days).
pub const SAMPLE_SECS: i64 = 300;
/// Board samples older than this are dropped (8 days, in seconds).
const SAMPLES_KEPT: i64 = 8 * 86_400;

fn history_prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k
}

/// Why the alert state database could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StateDbError {
    /// sled refused the directory: most often another carbonhound holds it.
    #[error("cannot open alert state in {}: {source}", dir.display())]
    Open {
        /// `data_dir/state`.
        dir: PathBuf,
        /// sled's reason.
        source: sled::Error,
    },
    /// Writing a rule's state failed (disk full, I/O error).
    #[error("cannot store alert state: {0}")]
    State(#[source] sled::Error),
    /// Writing a history event failed.
    #[error("cannot store alert history: {0}")]
    History(#[source] sled::Error),
    /// Any other sled failure (opening a tree, generating an id).
    #[error("{0}")]
    Sled(#[from] sled::Error),
    /// A state or event that cannot be encoded as JSON (not expected to happen).
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
}

impl StateDb {
    /// Opens (creating) the database in `dir`. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<StateDb, StateDbError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|source| StateDbError::Open {
                dir: dir.to_path_buf(),
                source,
            })?;
        let rules = db.open_tree("rules")?;
        let history = db.open_tree("history")?;
        let board = db.open_tree("board")?;
        let silences = db.open_tree("silences")?;
        Ok(StateDb {
            db,
            rules,
            history,
            board,
            silences,
        })
    }

    /// The stored state of rule `name`; `None` if there is none or it cannot be read (then
    /// logged: the rule starts afresh rather than the server refusing to run).
    pub fn load(&self, name: &str) -> Option<RuleState> {
        let bytes = match self.rules.get(name.as_bytes()) {
            Ok(b) => b?,
            Err(e) => {
                tracing::error!("alert state of '{name}' unreadable: {e}");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("alert state of '{name}' is not valid, starting afresh: {e}");
                None
            }
        }
    }

    /// Stores the state of rule `name`.
    pub fn save(&self, name: &str, state: &RuleState) -> Result<(), StateDbError> {
        let json = serde_json::to_vec(state)?;
        self.rules
            .insert(name.as_bytes(), json)
            .map_err(StateDbError::State)?;
        Ok(())
    }

    /// Appends an event to rule `name`'s history, dropping the oldest beyond `MAX_HISTORY` (500).
    pub fn record(&self, name: &str, event: &HistoryEvent) -> Result<(), StateDbError> {
        let id = self.db.generate_id()?;
        let mut key = history_prefix(name);
        key.extend_from_slice(&(event.at.max(0) as u64).to_be_bytes());
        key.extend_from_slice(&id.to_be_bytes());
        let json = serde_json::to_vec(event)?;
        self.history
            .insert(key, json)
            .map_err(StateDbError::History)?;
        let prefix = history_prefix(name);
        let count = self.history.scan_prefix(&prefix).keys().count();
        if count > MAX_HISTORY {
            let old: Vec<sled::IVec> = self
                .history
                .scan_prefix(&prefix)
                .keys()
                .take(count - MAX_HISTORY)
                .filter_map(|k| k.ok())
                .collect();
            for k in old {
                let _ = self.history.remove(k);
            }
        }
        Ok(())
    }

    /// The last `limit` events of rule `name`, newest first.
    pub fn history(&self, name: &str, limit: usize) -> Vec<HistoryEvent> {
        self.history
            .scan_prefix(history_prefix(name))
            .values()
            .rev()
            .filter_map(|v| v.ok())
            .filter_map(|v| serde_json::from_slice(&v).ok())
            .take(limit)
            .collect()
    }

    /// Stores the counts of one moment as the sample of its [`SAMPLE_SECS`] bucket (a later
    /// sample of the same bucket replaces it) and drops samples older than 8 days.
    pub fn record_sample(&self, mut sample: BoardSample) -> Result<(), StateDbError> {
        sample.at = sample.at.div_euclid(SAMPLE_SECS) * SAMPLE_SECS;
        let key = (sample.at.max(0) as u64).to_be_bytes();
        self.board
            .insert(key, serde_json::to_vec(&sample)?)
            .map_err(StateDbError::History)?;
        let cutoff = ((sample.at - SAMPLES_KEPT).max(0) as u64).to_be_bytes();
        let old: Vec<sled::IVec> = self
            .board
            .range(..cutoff)
            .keys()
            .filter_map(|k| k.ok())
            .collect();
        for k in old {
            let _ = self.board.remove(k);
        }
        Ok(())
    }

    /// The board samples from `from` to `to` (epoch seconds), oldest first.
    pub fn samples(&self, from: i64, to: i64) -> Vec<BoardSample> {
        let a = (from.max(0) as u64).to_be_bytes();
        let b = (to.max(0) as u64).to_be_bytes();
        self.board
            .range(a..=b)
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| serde_json::from_slice(&v).ok())
            .collect()
    }

    /// The sled database itself, for the other trees of alerting's state (the outbox).
    pub fn sled(&self) -> &sled::Db {
        &self.db
    }

    /// The silences (`silences` tree), to add, list and expire them, or match at a moment.
    pub fn silences(&self) -> Silences {
        Silences::new(self.db.clone(), self.silences.clone())
    }

    /// Writes everything to disk (after mail went out, and at shutdown).
    pub fn flush(&self) {
        if let Err(e) = self.db.flush() {
            tracing::error!("cannot flush alert state: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::check::{Outcome, Reading};
    use crate::alert::rule::tests::rule;
    use crate::alert::rule::{Direction, Level};
    use crate::alert::state::step;

    #[test]
    fn state_and_history_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let r = rule(1.0, Direction::Above);
        let (s, _) = step(
            &r,
            None,
            Outcome::Checked(vec![Reading {
                series: "a".into(),
                value: Some(2.0),
                level: Some(Level::Crit),
                last_seen: Some(5),
                detail: String::new(),
            }]),
            100,
            &|_| false,
        );
        {
            let db = StateDb::open(dir.path()).unwrap();
            db.save("Load high", &s).unwrap();
            for i in 0..(MAX_HISTORY + 5) {
                db.record(
                    "Load high",
                    &HistoryEvent {
                        at: i as i64,
                        kind: "mail".into(),
                        text: format!("{i}"),
                    },
                )
                .unwrap();
            }
            db.record(
                "Load",
                &HistoryEvent {
                    at: 1,
                    kind: "ok".into(),
                    text: "other rule".into(),
                },
            )
            .unwrap();
            db.flush();
        }
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.load("Load high"), Some(s));
        assert_eq!(db.load("nope"), None);
        let sample = |at: i64, crit: u32| BoardSample {
            at,
            crit,
            ..BoardSample::default()
        };
        let got = |db: &StateDb| -> Vec<(i64, u32)> {
            db.samples(0, i64::MAX / 2)
                .iter()
                .map(|s| (s.at, s.crit))
                .collect()
        };
        db.record_sample(sample(1_000_000, 1)).unwrap();
        db.record_sample(sample(1_000_100, 2)).unwrap();
        db.record_sample(sample(1_000_400, 3)).unwrap();
        assert_eq!(
            got(&db),
            vec![(999_900, 2), (1_000_200, 3)],
            "one per 5-minute bucket, the last wins"
        );
        db.record_sample(sample(1_000_000 + 9 * 86_400, 4)).unwrap();
        assert_eq!(got(&db), vec![(1_777_500, 4)], "older than 8 days: dropped");
        let h = db.history("Load high", 1000);
        assert_eq!(h.len(), MAX_HISTORY);
        assert_eq!(h[0].text, format!("{}", MAX_HISTORY + 4), "newest first");
        assert_eq!(
            db.history("Load", 10).len(),
            1,
            "a name that prefixes another keeps its own history"
        );
    }
}
