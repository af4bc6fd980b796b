//! A metric's end of life: delete (files, cached points, index and tag entries, open
//! readers), rename (one metric or a whole branch, with `rename(2)`, the cached points moving
//! along) and the stale list (metrics whose last update is older than a cut-off), the cron
//! job every Graphite shop writes by hand, done by the server so that everything that
//! remembers a metric follows at once.
//!
//! Each delete or rename runs under the store's lifecycle lock held exclusively: no insert
//! batch, persister write or rescan runs meanwhile, so no point is in flight (the persister
//! cannot re-create a deleted file from points it took before) and the tombstone logged in
//! the write-ahead log ([`super::Tombstone`]) sits between the points before and after it. A
//! point arriving after the delete recreates the metric as any new one.
//!
//! Never touches anything outside the whisper directory: every name is checked by
//! [`super::layout::relative_path`] (no empty node, `.`, `..`, `/` or NUL), a path whose
//! directories below the whisper root include a symbolic link is refused (a link is never
//! followed out of the data directory; a `.wsp` that is itself a link is removed or moved as
//! the link), and emptied directories are removed up to, never including, the whisper root.

use std::path::{Path, PathBuf};

use super::layout::relative_path;
use super::{Store, Tombstone};

/// Why a delete or rename was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A name that is not a storable metric path (HTTP 400).
    #[error("{param}: {reason}")]
    BadName {
        /// The parameter (`query`, `from`, `to`).
        param: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Nothing matches (HTTP 404).
    #[error("{param}: no metric {name:?}")]
    NotFound {
        /// The parameter.
        param: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The new name is taken (HTTP 409).
    #[error(
        "to: {name:?} exists already (a metric or a branch); delete it first or pick another name"
    )]
    Exists {
        /// The taken name.
        name: String,
    },
    /// A directory on the way is a symbolic link, which is never followed (HTTP 400).
    #[error("{path}: a symbolic link inside the whisper directory is not followed; nothing was done for {name}")]
    Symlink {
        /// The link.
        path: PathBuf,
        /// The metric.
        name: String,
    },
    /// The write-ahead log could not record the operation, so nothing was done (HTTP 500).
    #[error("the write-ahead log could not record it ({0}); nothing was changed")]
    Wal(std::io::Error),
    /// The file system refused (HTTP 500).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// One metric moved by [`Store::rename`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    /// The old name.
    pub from: String,
    /// The new name.
    pub to: String,
}

/// Characters of Graphite's glob syntax, which a rename's names may not hold.
const GLOB_CHARS: &[char] = &['*', '?', '[', ']', '{', '}'];

/// Checks a literal plain metric path (a rename's `from` or `to`).
fn check_plain(param: &'static str, name: &str) -> Result<(), LifecycleError> {
    let bad = |reason: &str| {
        Err(LifecycleError::BadName {
            param,
            reason: format!("{name:?}: {reason}"),
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.contains(';') {
        return bad(
            "a tagged series cannot be renamed (its tags decide its file); delete it and send \
             its points under the new name",
        );
    }
    if name.contains(GLOB_CHARS) {
        return bad("a name, not a pattern, is expected (no * ? [ ] { })");
    }
    if name.contains(char::is_whitespace) || name.contains(char::is_control) {
        return bad("spaces and control characters are not allowed");
    }
    if relative_path(name).is_none() {
        return bad(
            "not a valid metric path (no empty node, '..', '/', NUL; nodes up to 250 bytes)",
        );
    }
    Ok(())
}

/// Refuses `path` when a directory between `root` and the file (the file itself is not
/// checked) is a symbolic link, or when it is not under `root` at all; `Err` names it.
fn no_symlink_dirs(root: &Path, path: &Path, name: &str) -> Result<(), LifecycleError> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Err(LifecycleError::Symlink {
            path: path.to_path_buf(),
            name: name.to_string(),
        });
    };
    let mut at = root.to_path_buf();
    let mut parts = rel.components().peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            break; // the file itself
        }
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LifecycleError::Symlink {
                    path: at,
                    name: name.to_string(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Metrics one hold of the lifecycle lock deletes at most (see [`Store::delete`]).
pub const DELETE_CHUNK: usize = 1000;

impl Store {
    /// The metrics (leaves, plain or tagged) a `find` pattern matches, sorted: what
    /// `POST /metrics/delete?query=` deletes. A tagged name matches only itself.
    pub fn matching(&self, pattern: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .find(pattern, true, usize::MAX)
            .into_iter()
            .map(|n| n.path)
            .collect();
        names.dedup();
        names
    }

    /// Deletes `names` (each a plain or tagged metric): logs a tombstone, then for each drops
    /// its cached points (unpersisted points are discarded: that is what delete means),
    /// removes its whisper file and the directories this leaves empty, forgets its open
    /// reader and its index or tag-index entry. Returns the names deleted (those known to the
    /// index, the cache or the disk), in the order given.
    ///
    /// `Err` when a name cannot be stored, a directory on its path is a symbolic link, the
    /// tombstone cannot be written (nothing is deleted then), or a removal fails (the others
    /// are done).
    ///
    /// Names are deleted [`DELETE_CHUNK`] at a time, each chunk under the lifecycle lock on its
    /// own, so a delete of a whole tree holds up ingest (which waits for the lock) for one
    /// chunk's file removals at a time, not for all of them.
    pub fn delete(&self, names: &[String]) -> Result<Vec<String>, LifecycleError> {
        let mut deleted = Vec::with_capacity(names.len());
        for chunk in names.chunks(DELETE_CHUNK) {
            let _exclusive = self.lifecycle.write();
            deleted.extend(self.delete_locked(chunk)?);
        }
        Ok(deleted)
    }

    fn delete_locked(&self, names: &[String]) -> Result<Vec<String>, LifecycleError> {
        let mut plan = Vec::with_capacity(names.len());
        for name in names {
            let path = self.path_of(name).ok_or_else(|| LifecycleError::BadName {
                param: "query",
                reason: format!("{name:?} is not a storable metric path"),
            })?;
            no_symlink_dirs(&self.whisper_dir, &path, name)?;
            let known = self.index.contains(name)
                || self.tags.contains(name)
                || self.cache.contains(name)
                || std::fs::symlink_metadata(&path).is_ok();
            if known {
                plan.push((name.clone(), path));
            }
        }
        if let Some(wal) = &self.wal {
            let entries: Vec<Tombstone> = plan
                .iter()
                .map(|(n, _)| Tombstone::Delete(n.clone()))
                .collect();
            wal.append_tombstones(&entries)
                .map_err(LifecycleError::Wal)?;
        }
        let mut failed = None;
        let mut parents = Vec::new();
        for (name, path) in &plan {
            self.cache.remove(name);
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!("delete {name}: {}: {e}", path.display());
                    failed.get_or_insert(LifecycleError::Io {
                        path: path.clone(),
                        source: e,
                    });
                }
            }
            self.readers.evict(name);
            if name.contains(';') {
                self.tags.remove(name);
            } else {
                self.index.remove(name);
            }
            if let Some(p) = path.parent() {
                parents.push(p.to_path_buf());
            }
        }
        parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        parents.dedup();
        for p in parents {
            self.prune_up(&p);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(plan.into_iter().map(|(n, _)| n).collect()),
        }
    }

    /// Removes `dir` and its parents while they are empty, up to (never including) the
    /// whisper root; the index forgets each directory removed.
    fn prune_up(&self, dir: &Path) {
        let mut at = dir.to_path_buf();
        while at != self.whisper_dir && at.starts_with(&self.whisper_dir) {
            if std::fs::remove_dir(&at).is_err() {
                return; // not empty (or gone)
            }
            self.forget_dir(&at);
            if !at.pop() {
                return;
            }
        }
    }

    /// The index forgets the directory `dir` (under the whisper root; `_tagged` is not in it).
    fn forget_dir(&self, dir: &Path) {
        let Ok(rel) = dir.strip_prefix(&self.whisper_dir) else {
            return;
        };
        let dotted: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
        if !dotted.is_empty() && dotted[0] != "_tagged" {
            self.index.forget_dir(&dotted.join("."));
        }
    }

    /// Removes every empty directory in `dir` and below (bottom-up, links not followed),
    /// then `dir`'s emptied parents ([`Store::prune_up`]).
    fn prune_tree(&self, dir: &Path) {
        fn rec(store: &Store, dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        rec(store, &e.path());
                    }
                }
            }
            if std::fs::remove_dir(dir).is_ok() {
                store.forget_dir(dir);
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(dir) {
            if m.is_dir() {
                rec(self, dir);
            }
        }
        if let Some(parent) = dir.parent() {
            self.prune_up(parent);
        }
    }

    /// Renames `from` (a plain metric, or a branch: every metric below it) to `to`, keeping
    /// the rest of each path: each file is moved with `rename(2)` inside the whisper
    /// directory, its cached points move to the new name, the index and open readers follow,
    /// a tombstone records it in the write-ahead log, and the emptied old directories go.
    /// Returns each metric moved, sorted by old name.
    ///
    /// Refused: a name that is not a literal plain metric path (tagged series are refused,
    /// their file is named by the hash of name and tags), `to` inside `from` or equal to it ([`LifecycleError::BadName`]);
    /// `from` naming no metric ([`LifecycleError::NotFound`]); `to`, or any new file, that
    /// exists ([`LifecycleError::Exists`]).
    pub fn rename(&self, from: &str, to: &str) -> Result<Vec<Renamed>, LifecycleError> {
        check_plain("from", from)?;
        check_plain("to", to)?;
        if to == from || to.starts_with(&format!("{from}.")) {
            return Err(LifecycleError::BadName {
                param: "to",
                reason: format!("{to:?} is {from:?} or inside it"),
            });
        }
        // Every file below `from` must be known (the start scan may still be filling the
        // index); waited for before the lock, which would hold up inserts.
        self.wait_for_index(None);
        let _exclusive = self.lifecycle.write();
        let olds = self.index.subtree(from);
        if olds.is_empty() {
            return Err(LifecycleError::NotFound {
                param: "from",
                name: from.to_string(),
            });
        }
        let to_path = self.path_of(to).ok_or_else(|| LifecycleError::BadName {
            param: "to",
            reason: format!("{to:?} is not a storable metric path"),
        })?;
        let to_dir = to_path.with_extension("");
        if self.index.exists(to)
            || std::fs::symlink_metadata(&to_path).is_ok()
            || std::fs::symlink_metadata(&to_dir).is_ok()
        {
            return Err(LifecycleError::Exists {
                name: to.to_string(),
            });
        }
        let mut plan = Vec::with_capacity(olds.len());
        for old in olds {
            let new = format!("{to}{}", &old[from.len()..]);
            let (Some(old_path), Some(new_path)) = (self.path_of(&old), self.path_of(&new)) else {
                return Err(LifecycleError::BadName {
                    param: "to",
                    reason: format!("{new:?} (for {old:?}) is not a storable metric path"),
                });
            };
            no_symlink_dirs(&self.whisper_dir, &old_path, &old)?;
            no_symlink_dirs(&self.whisper_dir, &new_path, &new)?;
            plan.push((old, new, old_path, new_path));
        }
        if let Some(wal) = &self.wal {
            let entries: Vec<Tombstone> = plan
                .iter()
                .map(|(old, new, _, _)| Tombstone::Rename {
                    from: old.clone(),
                    to: new.clone(),
                })
                .collect();
            wal.append_tombstones(&entries)
                .map_err(LifecycleError::Wal)?;
        }
        let mut done = Vec::with_capacity(plan.len());
        let mut failed = None;
        for (old, new, old_path, new_path) in plan {
            if std::fs::symlink_metadata(&old_path).is_ok() {
                let moved = new_path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::rename(&old_path, &new_path));
                if let Err(e) = moved {
                    tracing::warn!("rename {old} to {new}: {e}");
                    failed.get_or_insert(LifecycleError::Io {
                        path: old_path,
                        source: e,
                    });
                    continue;
                }
            }
            self.cache.rename(&old, &new);
            self.readers.evict(&old);
            self.readers.evict(&new);
            self.index.remove(&old);
            self.index.insert(&new);
            done.push(Renamed { from: old, to: new });
        }
        if let Some(from_path) = self.path_of(from) {
            // `a/b/` (the branch's directory), then `a/` and up while emptied.
            self.prune_tree(&from_path.with_extension(""));
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// When `name` was last updated (epoch seconds): the newest of its whisper file's mtime
    /// (a `.wsp` that is a link: its target's, only read) and its cached points' timestamps;
    /// `None` when it has neither.
    pub fn last_update(&self, name: &str) -> Option<i64> {
        let cached = self.cache.get(name).iter().map(|p| p.0).max();
        let file = self
            .path_of(name)
            .and_then(|p| {
                std::fs::metadata(&p)
                    .or_else(|_| std::fs::symlink_metadata(&p))
                    .ok()
            })
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        cached.max(file)
    }

    /// The metrics (plain and tagged, sorted) whose last update is before `cutoff` (epoch
    /// seconds): their file's mtime is older and no point of theirs waits in the cache (a
    /// metric with unpersisted points is never stale). Metrics with neither are left out.
    pub fn stale(&self, cutoff: i64) -> Vec<String> {
        self.wait_for_index(None);
        let mut names = self.index.all();
        names.extend(self.tags.all_series());
        names.sort();
        names.retain(|n| {
            self.cache.get(n).is_empty() && self.last_update(n).is_some_and(|t| t < cutoff)
        });
        names
    }

    /// Deletes the metrics [`Store::stale`] lists for `cutoff`, chosen again under the
    /// lifecycle lock so a point arriving meanwhile keeps its metric; returns them.
    ///
    /// The candidates are listed without the lock (a `stat` of every file: seconds at a
    /// million metrics, which ingest must not wait for), then each chunk is checked again
    /// under it before it is deleted.
    pub fn delete_stale(&self, cutoff: i64) -> Result<Vec<String>, LifecycleError> {
        let candidates = self.stale(cutoff);
        let mut deleted = Vec::with_capacity(candidates.len());
        for chunk in candidates.chunks(DELETE_CHUNK) {
            let _exclusive = self.lifecycle.write();
            let still: Vec<String> = chunk
                .iter()
                .filter(|n| {
                    self.cache.get(n).is_empty() && self.last_update(n).is_some_and(|t| t < cutoff)
                })
                .cloned()
                .collect();
            deleted.extend(self.delete_locked(&still)?);
        }
        Ok(deleted)
    }

    /// Applies a tombstone met while replaying the write-ahead log at start: the points of
    /// the name replayed so far are dropped or moved; the index follows unless the file is
    /// on disk.
    pub(super) fn replay_tombstone(&self, tombstone: &Tombstone) {
        let on_disk = |name: &str| {
            self.path_of(name)
                .is_some_and(|p| std::fs::symlink_metadata(p).is_ok())
        };
        match tombstone {
            Tombstone::Delete(name) => {
                self.cache.remove(name);
                if !on_disk(name) {
                    if name.contains(';') {
                        self.tags.remove(name);
                    } else {
                        self.index.remove(name);
                    }
                }
            }
            Tombstone::Rename { from, to } => {
                if self.cache.rename(from, to) > 0 {
                    self.index.insert(to);
                }
                if !on_disk(from) {
                    self.index.remove(from);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::store;
    use super::super::{unix_now, Persisters};
    use super::*;
    use crate::config::WalSync;
    use std::sync::Arc;
    use std::time::Duration;

    fn persist(s: &Arc<Store>) {
        Persisters::start(s.clone(), 1, Duration::ZERO).flush_and_stop();
    }

    #[test]
    fn delete_removes_file_cache_index_and_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        let now = unix_now();
        s.insert("a.b.c", now - 20, 1.0);
        s.insert("a.x", now - 20, 1.0);
        s.insert("t;k=v", now - 20, 1.0);
        persist(&s);
        s.insert("a.b.c", now - 10, 2.0); // only in the cache
        assert!(dir.path().join("a/b/c.wsp").exists());
        let names = s.matching("a.b.*");
        assert_eq!(names, vec!["a.b.c"]);
        assert_eq!(s.delete(&names).unwrap(), vec!["a.b.c"]);
        assert!(
            !dir.path().join("a/b").exists(),
            "emptied directory removed"
        );
        assert!(dir.path().join("a/x.wsp").exists());
        assert!(s.find("a.*", false, 10).iter().all(|n| n.path == "a.x"));
        assert!(s.cache.get("a.b.c").is_empty());
        assert!(s.fetch("a.b.c", now - 60, now, now).unwrap().is_none());
        assert_eq!(s.delete(&["t;k=v".to_string()]).unwrap(), vec!["t;k=v"]);
        assert!(!s.tags.contains("t;k=v"));
        assert!(!dir.path().join("_tagged").exists());
        assert!(dir.path().exists(), "the root stays");
        // A point after the delete recreates the metric.
        s.insert("a.b.c", now - 5, 3.0);
        assert_eq!(s.matching("a.b.c"), vec!["a.b.c"]);
        persist(&s);
        assert!(dir.path().join("a/b/c.wsp").exists());
    }

    #[test]
    fn a_write_in_flight_never_recreates_a_deleted_file() {
        // The persister runs flat out while the metric is deleted: whatever point it had
        // taken before the delete, the file is gone afterwards and stays gone.
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        let now = unix_now();
        for round in 0..30 {
            for i in 0..200 {
                s.insert("race.m", now - 3000 + i, round as f64);
            }
            let p = Persisters::start(s.clone(), 2, Duration::ZERO);
            std::thread::sleep(Duration::from_micros(200 * (round % 5)));
            s.delete(&["race.m".to_string()]).unwrap();
            p.flush_and_stop();
            assert!(!dir.path().join("race/m.wsp").exists(), "round {round}");
            assert!(s.cache.get("race.m").is_empty() && !s.index.contains("race.m"));
            assert_eq!(s.cache.size(), 0, "round {round}");
        }
    }

    #[test]
    fn rename_moves_a_subtree_with_its_cached_points() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        let now = unix_now();
        s.insert("old.m1", now - 30, 1.0);
        s.insert("old.sub.m2", now - 30, 2.0);
        persist(&s);
        s.insert("old.m1", now - 10, 5.0);
        let done = s.rename("old", "new.place").unwrap();
        assert_eq!(
            done.iter().map(|r| r.to.as_str()).collect::<Vec<_>>(),
            vec!["new.place.m1", "new.place.sub.m2"]
        );
        assert!(!dir.path().join("old").exists());
        assert!(dir.path().join("new/place/sub/m2.wsp").exists());
        assert!(s.find("old", false, 10).is_empty());
        let f = s
            .fetch("new.place.m1", now - 60, now, now)
            .unwrap()
            .unwrap();
        let known: Vec<f64> = f.values.iter().flatten().copied().collect();
        assert_eq!(known, vec![1.0, 5.0], "persisted and cached points");
        assert!(matches!(
            s.rename("new", "new.place.x"),
            Err(LifecycleError::BadName { param: "to", .. })
        ));
        assert!(matches!(
            s.rename("nope", "x"),
            Err(LifecycleError::NotFound { .. })
        ));
        s.insert("other", now, 1.0);
        assert!(matches!(
            s.rename("other", "new"),
            Err(LifecycleError::Exists { .. })
        ));
        for bad in ["a..b", "a/b", "../x", "a.*", "x;t=v", ""] {
            assert!(
                matches!(s.rename("other", bad), Err(LifecycleError::BadName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stale_skips_cached_and_recent_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        let now = unix_now();
        s.insert("old", now - 20, 1.0);
        s.insert("fresh", now - 20, 1.0);
        persist(&s);
        s.insert("fresh", now - 10, 1.0);
        s.insert("cached.only", now - 10, 1.0);
        // Every file is "older" than a cut-off in the future; cached points keep a metric.
        assert_eq!(s.stale(now + 3600), vec!["old"]);
        assert!(s.stale(now - 3600).is_empty());
        assert_eq!(s.delete_stale(now + 3600).unwrap(), vec!["old"]);
        assert!(!dir.path().join("old.wsp").exists());
    }

    #[test]
    fn a_symlinked_directory_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("m.wsp"), b"keep").unwrap();
        let root = dir.path().join("w");
        let s = store(&root);
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        s.index.insert("link.m");
        assert!(matches!(
            s.delete(&["link.m".to_string()]),
            Err(LifecycleError::Symlink { .. })
        ));
        assert!(matches!(
            s.rename("link", "moved"),
            Err(LifecycleError::Symlink { .. })
        ));
        assert_eq!(
            std::fs::read(outside.path().join("m.wsp")).unwrap(),
            b"keep"
        );
    }

    #[test]
    fn replay_does_not_resurrect_deleted_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        let now = unix_now();
        {
            let mut s = store(&dir.path().join("whisper"));
            s.open_wal(&wal_dir, WalSync::Always).unwrap();
            s.insert("gone", now - 20, 1.0);
            s.insert("moved", now - 20, 2.0);
            s.delete(&["gone".to_string()]).unwrap();
            s.rename("moved", "here").unwrap();
        } // as a crash: nothing persisted, the log kept
        let mut s = store(&dir.path().join("whisper"));
        let report = s.open_wal(&wal_dir, WalSync::Always).unwrap();
        assert_eq!(report.tombstones, 2);
        assert!(s.matching("*").contains(&"here".to_string()));
        assert!(!s.index.contains("gone") && !s.index.contains("moved"));
        assert_eq!(s.cache.get("here"), vec![(now - 20, 2.0)]);
        assert_eq!(s.cache.size(), 1);
    }
}
