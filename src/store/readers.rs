//! Whisper files kept open for reading, so a render that reads hundreds of series does not
//! open, stat, read the header of and close each file every time.
//!
//! An entry holds an open [`WhisperFile`] (its header parsed, its archive bases remembered).
//! It is trusted for one second; after that the next read checks the path still names the
//! same file (device and inode — `whisper-resize.py` and friends replace files by renaming
//! a new one over the old) and that its metadata block is unchanged (an in-place
//! `set-aggregation`), and reopens it otherwise. A deleted file is forgotten. Reads only:
//! the persister keeps its own descriptors for writing, checked before every write
//! (`persister::OpenFiles`).
//!
//! The number of files kept is bounded by a quarter of the process's open-file limit (at
//! most 4096), so cached readers can never starve the listeners of descriptors.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::whisper::{WhisperError, WhisperFile};

/// How long an entry is used without checking the path again.
const TRUST_FOR: Duration = Duration::from_secs(1);

struct Entry {
    file: Arc<WhisperFile>,
    dev: u64,
    ino: u64,
    checked: Instant,
    used: Instant,
}

/// The open-reader cache (all methods take `&self`).
pub struct Readers {
    entries: Mutex<HashMap<Box<str>, Entry>>,
    capacity: usize,
}

/// Raises the soft open-file limit to the hard limit (as servers commonly do) and returns
/// the soft limit in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // `None` is RLIM_INFINITY.
    let lim = getrlimit(Resource::Nofile);
    let (current, maximum) = (
        lim.current.unwrap_or(u64::MAX),
        lim.maximum.unwrap_or(u64::MAX),
    );
    if current < maximum {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return maximum;
        }
    }
    current
}

impl Readers {
    /// A cache of at most `capacity` open files (0 disables it).
    pub fn new(capacity: usize) -> Readers {
        Readers {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// A cache sized from the open-file limit: a quarter of it, at most 4096.
    pub fn sized_for_this_process() -> Readers {
        let limit = raise_nofile_limit();
        Readers::new(((limit / 4) as usize).min(4096))
    }

    /// Most files this cache keeps open.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of files open in the cache.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether no file is open in the cache.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open file for metric `name`, whose path `path` gives (`None`: a name that cannot
    /// be stored, read as a missing file; only computed when the cache cannot answer): from
    /// the cache when still valid, else opened (and cached). Errors as [`WhisperFile::open`]
    /// (`Io` NotFound for a missing file).
    pub fn get(
        &self,
        name: &str,
        path: impl FnOnce() -> Option<PathBuf>,
    ) -> Result<Arc<WhisperFile>, WhisperError> {
        let path = || {
            path().ok_or_else(|| WhisperError::Io {
                path: PathBuf::from(name),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a storable metric name",
                ),
            })
        };
        if self.capacity == 0 {
            return WhisperFile::open(&path()?).map(Arc::new);
        }
        let now = Instant::now();
        let stale = {
            let mut entries = self.entries.lock();
            match entries.get_mut(name) {
                Some(e) if now.duration_since(e.checked) < TRUST_FOR => {
                    e.used = now;
                    return Ok(e.file.clone());
                }
                Some(e) => Some((e.file.clone(), e.dev, e.ino)),
                None => None,
            }
        };
        let path = path()?;
        let path = path.as_path();
        if let Some((file, dev, ino)) = stale {
            // Still the same file, with the same metadata block?
            let same_file = std::fs::metadata(path)
                .map(|m| m.dev() == dev && m.ino() == ino)
                .unwrap_or(false);
            if same_file && file.metadata_unchanged() {
                if let Some(e) = self.entries.lock().get_mut(name) {
                    e.checked = now;
                    e.used = now;
                }
                return Ok(file);
            }
            self.entries.lock().remove(name);
        }
        let file = Arc::new(WhisperFile::open(path)?);
        let (dev, ino) = file.identity().map_err(|e| WhisperError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity {
            // Drop the least recently used quarter.
            let mut by_use: Vec<(Instant, Box<str>)> =
                entries.iter().map(|(k, e)| (e.used, k.clone())).collect();
            by_use.sort_unstable_by_key(|(t, _)| *t);
            for (_, k) in by_use.into_iter().take((self.capacity / 4).max(1)) {
                entries.remove(&k);
            }
        }
        entries.insert(
            name.into(),
            Entry {
                file: file.clone(),
                dev,
                ino,
                checked: now,
                used: now,
            },
        );
        Ok(file)
    }

    /// Forgets `name` (after a read error, so the next read reopens it).
    pub fn evict(&self, name: &str) {
        self.entries.lock().remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whisper::{create, parse_retentions, AggregationMethod, CreateOptions};

    #[test]
    fn replaced_and_changed_files_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wsp");
        let opts = CreateOptions::default();
        create(&path, &parse_retentions("10:100").unwrap(), opts).unwrap();
        let readers = Readers::new(8);
        let a = readers.get("m", || Some(path.clone())).unwrap();
        assert!(
            Arc::ptr_eq(&a, &readers.get("m", || Some(path.clone())).unwrap()),
            "cached"
        );

        // Replaced by a new file (as whisper-resize.py does): reopened after the trust period.
        let tmp = dir.path().join("m.tmp");
        create(&tmp, &parse_retentions("10:200").unwrap(), opts).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        std::thread::sleep(TRUST_FOR + Duration::from_millis(50));
        let b = readers.get("m", || Some(path.clone())).unwrap();
        assert_eq!(b.header().archives[0].points, 200);

        // Aggregation changed in place: reopened too.
        WhisperFile::open_rw(&path)
            .unwrap()
            .set_aggregation(Some(AggregationMethod::Max), None)
            .unwrap();
        std::thread::sleep(TRUST_FOR + Duration::from_millis(50));
        assert_eq!(
            readers
                .get("m", || Some(path.clone()))
                .unwrap()
                .header()
                .aggregation_method,
            AggregationMethod::Max
        );

        // Deleted: the error shows once the entry is stale.
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(TRUST_FOR + Duration::from_millis(50));
        assert!(readers.get("m", || Some(path.clone())).is_err());
        assert!(readers.is_empty());
    }

    #[test]
    fn capacity_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::new(4);
        for i in 0..20 {
            let path = dir.path().join(format!("m{i}.wsp"));
            create(
                &path,
                &parse_retentions("10:100").unwrap(),
                CreateOptions::default(),
            )
            .unwrap();
            readers
                .get(&format!("m{i}"), || Some(path.clone()))
                .unwrap();
            assert!(readers.len() <= 4);
        }
    }
}
