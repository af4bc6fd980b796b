//! The event database in sled (`data_dir/events`): what graphite-web keeps in its `events_event`
//! table and django-tagging's tag tables, surviving restarts.
//!
//! Three trees:
//! - `by_when`: sortable `when` (8 bytes, big-endian, sign bit flipped) + id (8 bytes,
//!   big-endian) → the JSON [`Event`]. Range scans give graphite-web's `order_by("when")`,
//!   ties in id order.
//! - `ids`: id (8 bytes, big-endian) → its `by_when` key, for `/events/<id>`.
//! - `tags`: every tag name any event ever had (django-tagging's tag table, which is what a tag
//!   query is looked up in: see [`TagQuery`]).
//!
//! An event's three writes are one sled transaction, flushed to disk before `add` returns.
//! Ids are 1, 2, 3, … (the last id + 1, under a lock), as a database's auto-increment key.
//! Writes nothing outside its directory; never reads or writes whisper files.

use std::ops::ControlFlow;
use std::path::Path;

use parking_lot::Mutex;
use sled::Transactional;

use super::event::{Event, NewEvent};
use super::tags::{parse_tag_input, SetOperation, TagQuery};
use super::{EventError, DEFAULT_MAX_EVENTS};

/// sled's page cache, in bytes (its default is 1 GiB; events are small and rare).
const CACHE_BYTES: u64 = 8 << 20;

/// The open event database. One process at a time (sled locks the directory).
pub struct EventStore {
    db: sled::Db,
    by_when: sled::Tree,
    ids: sled::Tree,
    tags: sled::Tree,
    /// The next id to give; held while an event is written so ids follow posting order.
    next_id: Mutex<u64>,
    /// `[events].max_events`: `add` refuses beyond it.
    max_events: usize,
}

/// `when` (microseconds, signed) as 8 bytes that sort as the numbers do.
fn when_key(when_us: i64) -> [u8; 8] {
    ((when_us as u64) ^ (1 << 63)).to_be_bytes()
}

fn event_key(when_us: i64, id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&when_key(when_us));
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

fn storage(e: impl std::fmt::Display) -> EventError {
    EventError::Storage(format!("event store: {e}"))
}

/// Microseconds since the epoch, now (Django's `timezone.now()`).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl EventStore {
    /// Opens (creating) the database in `dir`. Fails if another process holds it or the
    /// directory cannot be written.
    pub fn open(dir: &Path) -> Result<EventStore, String> {
        let fail = |e: &dyn std::fmt::Display| {
            format!("cannot open the event store in {}: {e}", dir.display())
        };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| fail(&e))?;
        let by_when = db.open_tree("by_when").map_err(|e| fail(&e))?;
        let ids = db.open_tree("ids").map_err(|e| fail(&e))?;
        let tags = db.open_tree("tags").map_err(|e| fail(&e))?;
        let last = ids
            .last()
            .map_err(|e| fail(&e))?
            .and_then(|(k, _)| <[u8; 8]>::try_from(k.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Ok(EventStore {
            db,
            by_when,
            ids,
            tags,
            next_id: Mutex::new(last + 1),
            max_events: DEFAULT_MAX_EVENTS,
        })
    }

    /// The same store holding at most `max_events` events (`[events].max_events`). Events
    /// already stored beyond it stay; only new posts are refused.
    pub fn with_max_events(self, max_events: usize) -> EventStore {
        EventStore { max_events, ..self }
    }

    /// Stores a posted event (at "now" when it has no `when`) under the next id, and has it
    /// on disk before returning it.
    ///
    /// Refused with [`EventError::Full`] when `max_events` are stored already (checked under
    /// the id lock, so concurrent posts cannot pass it together).
    pub fn add(&self, new: NewEvent) -> Result<Event, EventError> {
        let mut next = self.next_id.lock();
        if self.ids.len() >= self.max_events {
            return Err(EventError::Full(format!(
                "the event store is full: it holds {} events and events.max_events is {}; \
                 raise events.max_events to store more",
                self.ids.len(),
                self.max_events
            )));
        }
        let event = Event {
            id: *next,
            when_us: new.when_us.unwrap_or_else(now_micros),
            what: new.what,
            data: new.data,
            tags: new.tags,
        };
        let key = event_key(event.when_us, event.id);
        let json = serde_json::to_vec(&event).map_err(storage)?;
        let names = parse_tag_input(&event.tags);
        (&self.by_when, &self.ids, &self.tags)
            .transaction(|(w, i, t)| {
                w.insert(&key[..], json.as_slice())?;
                i.insert(&event.id.to_be_bytes()[..], &key[..])?;
                for name in &names {
                    t.insert(name.as_bytes(), &[][..])?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| storage(format!("{e:?}")))?;
        self.db.flush().map_err(storage)?;
        *next += 1;
        Ok(event)
    }

    /// The event with id `id`, if there is one.
    pub fn get(&self, id: u64) -> Result<Option<Event>, EventError> {
        let Some(key) = self.ids.get(id.to_be_bytes()).map_err(storage)? else {
            return Ok(None);
        };
        let Some(json) = self.by_when.get(key).map_err(storage)? else {
            return Ok(None);
        };
        serde_json::from_slice(&json).map(Some).map_err(storage)
    }

    /// How many events are stored.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A tag query for `tags` combined by `op`, against the tag names stored events have.
    pub fn tag_query(&self, tags: Vec<String>, op: SetOperation) -> TagQuery {
        TagQuery::new(tags, op, |name| {
            self.tags.contains_key(name.as_bytes()).unwrap_or(false)
        })
    }

    /// Calls `visit` with every event whose `when` lies in `[from_us, until_us]`
    /// (microseconds, both ends included, as graphite-web's `when__gte`/`when__lte`) and that
    /// `tags` matches (all events when `None`), ordered by `when` then id, until `visit`
    /// breaks. Reads one event at a time. A record that cannot be read is logged and skipped.
    pub fn scan<B>(
        &self,
        from_us: i64,
        until_us: i64,
        tags: Option<&TagQuery>,
        mut visit: impl FnMut(Event) -> ControlFlow<B>,
    ) -> Result<Option<B>, EventError> {
        if from_us > until_us {
            return Ok(None);
        }
        let lo = event_key(from_us, 0);
        let hi = event_key(until_us, u64::MAX);
        for item in self.by_when.range(lo..=hi) {
            let (key, json) = item.map_err(storage)?;
            let event: Event = match serde_json::from_slice(&json) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("event record {key:?} unreadable, skipped: {e}");
                    continue;
                }
            };
            if tags.is_some_and(|q| !q.matches(&event.tags)) {
                continue;
            }
            if let ControlFlow::Break(b) = visit(event) {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// graphite-web's `Event.find_events`: the events of [`EventStore::scan`] as a list, at
    /// most `max_events` of them and at most `max_bytes` of text (`what`, `data` and `tags`
    /// together). Beyond either: [`EventError::TooLarge`], saying to narrow the query.
    pub fn find_events(
        &self,
        from_us: i64,
        until_us: i64,
        tags: Option<&TagQuery>,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<Event>, EventError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let over = self.scan(from_us, until_us, tags, |e| {
            bytes += e.what.len() + e.data.len() + e.tags.len();
            if out.len() >= max_events || bytes > max_bytes {
                return ControlFlow::Break(());
            }
            out.push(e);
            ControlFlow::Continue(())
        })?;
        if over.is_some() {
            return Err(EventError::TooLarge(format!(
                "more than {max_events} events or {max_bytes} bytes of events match; \
                 narrow from/until or the tags"
            )));
        }
        Ok(out)
    }

    /// Writes everything to disk (each `add` already did; for shutdown).
    pub fn flush(&self) {
        if let Err(e) = self.db.flush() {
            tracing::error!("cannot flush the event store: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(when: i64, what: &str, tags: &str) -> NewEvent {
        NewEvent {
            when_us: Some(when * 1_000_000),
            what: what.into(),
            data: String::new(),
            tags: tags.into(),
        }
    }

    #[test]
    fn a_full_store_refuses_new_events_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let db = EventStore::open(dir.path()).unwrap().with_max_events(2);
        db.add(new(1, "a", "")).unwrap();
        db.add(new(2, "b", "")).unwrap();
        let e = db.add(new(3, "c", "")).unwrap_err();
        assert!(
            matches!(&e, EventError::Full(m) if m.contains("events.max_events is 2")),
            "{e:?}"
        );
        assert_eq!(db.len(), 2, "nothing stored, nothing evicted");
        assert_eq!(db.add(new(3, "c", "")).map(|e| e.id).ok(), None);
        let db = db.with_max_events(3);
        assert_eq!(db.add(new(3, "c", "")).unwrap().id, 3, "ids carry on");
    }

    #[test]
    fn events_survive_reopening_in_when_order_with_increasing_ids() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = EventStore::open(dir.path()).unwrap();
            assert_eq!(db.add(new(200, "b", "deploy web")).unwrap().id, 1);
            assert_eq!(db.add(new(100, "a", "deploy")).unwrap().id, 2);
            assert_eq!(db.add(new(-50, "old", "")).unwrap().id, 3);
            db.add(new(100, "a2", "db")).unwrap();
        }
        let db = EventStore::open(dir.path()).unwrap();
        assert_eq!(db.len(), 4);
        assert_eq!(db.add(new(300, "c", "deploy")).unwrap().id, 5);
        let all = db
            .find_events(i64::MIN, i64::MAX, None, 100, 1 << 20)
            .unwrap();
        let order: Vec<(u64, &str)> = all.iter().map(|e| (e.id, e.what.as_str())).collect();
        assert_eq!(
            order,
            vec![(3, "old"), (2, "a"), (4, "a2"), (1, "b"), (5, "c")]
        );
        assert_eq!(db.get(4).unwrap().unwrap().what, "a2");
        assert_eq!(db.get(99).unwrap(), None);
        // Both ends included.
        let q = db.tag_query(vec!["deploy".into()], SetOperation::All);
        let some = db
            .find_events(100_000_000, 200_000_000, Some(&q), 100, 1 << 20)
            .unwrap();
        assert_eq!(
            some.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![2, 1],
            "{some:?}"
        );
        assert!(matches!(
            db.find_events(i64::MIN, i64::MAX, None, 4, 1 << 20),
            Err(EventError::TooLarge(_))
        ));
        assert!(matches!(
            db.find_events(i64::MIN, i64::MAX, None, 100, 3),
            Err(EventError::TooLarge(_))
        ));
    }
}
