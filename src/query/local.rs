//! The local [`MetricSource`]: this process's metric store (cache ∪ whisper) answering query
//! evaluation, and [`LocalSource`], which carries the event store beside it for `events()`.
//!
//! Owns no data: it only forwards to [`Store`] and [`EventStore`]. Never writes either. It
//! lives in `query`, not `store`, so the arrows run one way: query reads the store, the store
//! knows nothing of query.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::source::{points_in_layout, BatchVisitor, MetricSource, SourceError};
use crate::events::{Event, EventStore, SetOperation};
use crate::store::{FetchedSeries, FoundNode, Interval, Store};
use crate::store::{RegexBuilderFn, TagExpr};

/// The metric store alone: no events (`events()` refuses, as in `carbonhound alerts check`).
impl MetricSource for Store {
    fn find(&self, pattern: &str, leaves_only: bool, limit: usize) -> Vec<FoundNode> {
        Store::find(self, pattern, leaves_only, limit)
    }

    /// Read in parallel for a large batch ([`Store::fetch_each`]), in order.
    fn fetch_batch(
        &self,
        _expression: &str,
        names: &[&str],
        from: i64,
        until: i64,
        now: i64,
        visit: &mut BatchVisitor<'_>,
    ) {
        self.fetch_each(names, from, until, now, &mut |name, result| {
            visit(name, result.map_err(SourceError::from))
        });
    }

    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        Ok(Store::fetch(self, name, from, until, now)?)
    }

    fn points_hint(&self, name: &str, from: i64, until: i64, now: i64) -> usize {
        points_in_layout(&self.rules().plan(name).retentions, from, until, now)
    }

    fn intervals(&self, name: &str) -> Vec<Interval> {
        Store::intervals(self, name)
    }

    fn find_tagged(
        &self,
        exprs: &[TagExpr],
        regex: RegexBuilderFn<'_>,
    ) -> Result<Vec<String>, String> {
        self.tags.find_series(exprs, regex)
    }
}

/// What `carbonhound serve` evaluates against: the metric store and, when it opened one, the
/// event store. Cheap to clone (two `Arc`s).
#[derive(Clone)]
pub struct LocalSource {
    /// The metric store.
    pub metrics: Arc<Store>,
    /// The event store, `None` where the process opened none.
    pub events: Option<Arc<EventStore>>,
}

impl MetricSource for LocalSource {
    fn find(&self, pattern: &str, leaves_only: bool, limit: usize) -> Vec<FoundNode> {
        self.metrics.find(pattern, leaves_only, limit)
    }

    fn fetch_batch(
        &self,
        expression: &str,
        names: &[&str],
        from: i64,
        until: i64,
        now: i64,
        visit: &mut BatchVisitor<'_>,
    ) {
        MetricSource::fetch_batch(&*self.metrics, expression, names, from, until, now, visit);
    }

    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        Ok(self.metrics.fetch(name, from, until, now)?)
    }

    fn points_hint(&self, name: &str, from: i64, until: i64, now: i64) -> usize {
        MetricSource::points_hint(&*self.metrics, name, from, until, now)
    }

    fn intervals(&self, name: &str) -> Vec<Interval> {
        self.metrics.intervals(name)
    }

    fn find_tagged(
        &self,
        exprs: &[TagExpr],
        regex: RegexBuilderFn<'_>,
    ) -> Result<Vec<String>, String> {
        self.metrics.tags.find_series(exprs, regex)
    }

    fn events(
        &self,
        from_us: i64,
        until_us: i64,
        tags: Option<Vec<String>>,
        visit: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let Some(store) = &self.events else {
            return Err(crate::query::source::NO_EVENT_STORE.into());
        };
        let query = tags.map(|t| store.tag_query(t, SetOperation::All));
        store.scan(from_us, until_us, query.as_ref(), visit)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_schemas, StorageRules};
    use crate::events::NewEvent;
    use crate::query::source::NO_EVENT_STORE;
    use crate::whisper::Preallocation;

    #[test]
    fn events_come_from_the_event_store_beside_the_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let rules = StorageRules::new(
            parse_schemas("[all]\npattern = .*\nretentions = 10s:1d\n", "t").unwrap(),
            vec![],
        );
        let metrics = Arc::new(
            Store::open(
                &dir.path().join("whisper"),
                rules,
                1000,
                Preallocation::Sparse,
                0,
            )
            .unwrap(),
        );
        let events = Arc::new(EventStore::open(&dir.path().join("events")).unwrap());
        for (when_us, tags) in [
            (2_000_000, "deploy web"),
            (1_000_000, "db"),
            (3_000_000, "deploy"),
        ] {
            events
                .add(NewEvent {
                    when_us: Some(when_us),
                    what: "x".into(),
                    data: String::new(),
                    tags: tags.into(),
                })
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut collect = |e: Event| {
            seen.push(e.when_us);
            ControlFlow::Continue(())
        };
        let err = MetricSource::events(&*metrics, 0, i64::MAX, None, &mut collect).unwrap_err();
        assert_eq!(err.to_string(), NO_EVENT_STORE);
        let local = LocalSource {
            metrics: metrics.clone(),
            events: None,
        };
        assert!(local.events(0, i64::MAX, None, &mut collect).is_err());
        let local = LocalSource {
            metrics,
            events: Some(events),
        };
        local.events(0, 2_999_999, None, &mut collect).unwrap();
        local
            .events(
                0,
                i64::MAX,
                Some(vec!["deploy".into(), "nosuch".into()]),
                &mut collect,
            )
            .unwrap();
        assert_eq!(seen, vec![1_000_000, 2_000_000, 2_000_000, 3_000_000]);
    }
}
