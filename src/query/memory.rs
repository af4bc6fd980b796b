//! [`MemorySource`]: a [`MetricSource`] held wholly in memory, for tests of evaluation and of
//! its clients: series given as points, read exactly as the store reads points that are still
//! only in carbon's cache (the storage rules' layout, `merge_with_cache`), names found by the
//! store's own indexes, and events kept in a list.
//!
//! Never touches the disk; not meant for production data (every point is kept).

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::source::{
    FetchedSeries, FoundNode, MetricSource, RegexBuilderFn, SourceError, TagExpr, NO_EVENT_STORE,
};
use crate::config::{parse_schemas, StorageRules};
use crate::events::parse_tag_input;
use crate::events::{Event, NewEvent, SetOperation, TagQuery};
use crate::store::{fetch_unwritten, find_in, MetricIndex, TagIndex};

/// The storage schema of [`MemorySource::new`]: 10-second steps kept for a day.
pub const DEFAULT_SCHEMA: &str = "[all]\npattern = .*\nretentions = 10s:1d\n";

/// Series and events in memory (see the module doc).
pub struct MemorySource {
    rules: StorageRules,
    /// Each series' points in arrival order (later arrivals win within a step).
    points: HashMap<String, Vec<(i64, f64)>>,
    index: MetricIndex,
    tags: TagIndex,
    /// `None` until events are enabled; kept ordered by `when`, then id.
    events: Option<Vec<Event>>,
}

impl Default for MemorySource {
    fn default() -> Self {
        MemorySource::new()
    }
}

impl MemorySource {
    /// An empty source whose series all read as `DEFAULT_SCHEMA` (`10s:1d` for all) lays them out, with no
    /// event store (`events()` refuses, as without `carbonhound serve`).
    pub fn new() -> MemorySource {
        let rules = StorageRules::new(
            parse_schemas(DEFAULT_SCHEMA, "memory").expect("the default schema parses"),
            vec![],
        );
        MemorySource {
            rules,
            points: HashMap::new(),
            index: MetricIndex::new(),
            tags: TagIndex::new(),
            events: None,
        }
    }

    /// A source holding `points` (name, epoch seconds, value), in that order.
    pub fn with_points(points: &[(&str, i64, f64)]) -> MemorySource {
        let mut source = MemorySource::new();
        for (name, t, v) in points {
            source.insert(name, *t, *v);
        }
        source
    }

    /// Adds one point (a normalized name; `;` makes it a tagged series).
    pub fn insert(&mut self, name: &str, timestamp: i64, value: f64) {
        let queue = self.points.entry(name.to_string()).or_default();
        if queue.is_empty() {
            if name.contains(';') {
                self.tags.insert(name);
            } else {
                self.index.insert(name);
            }
        }
        queue.push((timestamp, value));
    }

    /// Gives the source an (empty) event store, as `carbonhound serve` opens one.
    pub fn with_events(mut self) -> MemorySource {
        self.events.get_or_insert_with(Vec::new);
        self
    }

    /// Stores an event as [`crate::events::EventStore::add`] does (the next id; `now` when it
    /// has no `when`), enabling events if they were not.
    pub fn add_event(&mut self, new: NewEvent) -> Event {
        let events = self.events.get_or_insert_with(Vec::new);
        let event = Event {
            id: events.len() as u64 + 1,
            when_us: new.when_us.unwrap_or_else(crate::events::now_micros),
            what: new.what,
            data: new.data,
            tags: new.tags,
        };
        let at = events.partition_point(|e| (e.when_us, e.id) <= (event.when_us, event.id));
        events.insert(at, event.clone());
        event
    }
}

impl MetricSource for MemorySource {
    fn find(&self, pattern: &str, leaves_only: bool, limit: usize) -> Vec<FoundNode> {
        find_in(&self.index, &self.tags, pattern, leaves_only, limit)
    }

    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        let cached = self.points.get(name).cloned().unwrap_or_default();
        Ok(fetch_unwritten(
            name,
            cached,
            &self.rules,
            from,
            until,
            now,
        )?)
    }

    fn points_hint(&self, name: &str, from: i64, until: i64, now: i64) -> usize {
        super::source::points_in_layout(&self.rules.plan(name).retentions, from, until, now)
    }

    fn find_tagged(
        &self,
        exprs: &[TagExpr],
        regex: RegexBuilderFn<'_>,
    ) -> Result<Vec<String>, String> {
        self.tags.find_series(exprs, regex)
    }

    fn events(
        &self,
        from_us: i64,
        until_us: i64,
        tags: Option<Vec<String>>,
        visit: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let Some(events) = &self.events else {
            return Err(NO_EVENT_STORE.into());
        };
        let query = tags.map(|t| {
            TagQuery::new(t, SetOperation::All, |name| {
                events
                    .iter()
                    .any(|e| parse_tag_input(&e.tags).iter().any(|n| n == name))
            })
        });
        for e in events
            .iter()
            .filter(|e| (from_us..=until_us).contains(&e.when_us))
        {
            if query.as_ref().is_some_and(|q| !q.matches(&e.tags)) {
                continue;
            }
            if visit(e.clone()).is_break() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::events::EventStore;
    use crate::query::LocalSource;
    use crate::store::Store;
    use crate::whisper::Preallocation;

    /// The memory source answers as the local store does for the same points and events.
    #[test]
    fn answers_as_the_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let rules = StorageRules::new(parse_schemas(DEFAULT_SCHEMA, "t").unwrap(), vec![]);
        let store = Store::open(
            &dir.path().join("whisper"),
            rules,
            1000,
            Preallocation::Sparse,
            0,
        )
        .unwrap();
        let local = LocalSource {
            metrics: Arc::new(store),
            events: Some(Arc::new(
                EventStore::open(&dir.path().join("events")).unwrap(),
            )),
        };
        let now = 1_700_000_000;
        let points = [
            ("a.b", now - 25, 1.0),
            ("a.b", now - 21, 2.0),
            ("a.c", now - 5, 3.0),
            ("cpu;dc=a", now - 5, 4.0),
        ];
        let mut memory = MemorySource::with_points(&points);
        for (n, t, v) in points {
            local.metrics.insert(n, t, v);
        }
        for (when_us, tags) in [(2, "deploy web"), (1, "db"), (3, "deploy")] {
            let new = NewEvent {
                when_us: Some(when_us),
                what: "x".into(),
                data: String::new(),
                tags: tags.into(),
            };
            local.events.as_ref().unwrap().add(new.clone()).unwrap();
            memory.add_event(new);
        }
        let sources: [&dyn MetricSource; 2] = [&local, &memory];
        let answers: Vec<_> = sources
            .iter()
            .map(|s| {
                let mut found: Vec<_> = s
                    .find("a.*", false, 10)
                    .into_iter()
                    .map(|n| (n.path, n.is_leaf))
                    .collect();
                found.sort();
                let fetched: Vec<_> = ["a.b", "a.c", "cpu;dc=a", "nope"]
                    .iter()
                    .map(|n| s.fetch(n, now - 60, now, now).unwrap())
                    .collect();
                let tagged = s
                    .find_tagged(&[TagExpr::parse("dc=a").unwrap()], &|p| {
                        crate::python::Regex::new(p).map_err(|e| e.to_string())
                    })
                    .unwrap();
                let mut events = Vec::new();
                for tags in [None, Some(vec!["deploy".into(), "nosuch".into()])] {
                    s.events(0, 2, tags, &mut |e| {
                        events.push(e.id);
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                }
                (found, fetched, tagged, events)
            })
            .collect();
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[1].0.len(), 2);
        assert!(answers[1].1[0].is_some() && answers[1].1[3].is_none());
        assert_eq!(answers[1].2, vec!["cpu;dc=a".to_string()]);
        assert_eq!(answers[1].3, vec![2, 1, 1]);
    }
}
