//! [`MetricSource`]: everything query evaluation reads, and the only way it reads. The local
//! store (cache ∪ whisper, [`crate::store::Store`], with the event store beside it in
//! [`crate::query::LocalSource`]) implements it; so do the cluster of `[cluster] servers`
//! merged with it ([`crate::query::ClusterSource`]) and the in-memory
//! [`super::MemorySource`] of the tests. `query` never knows whether a series came from disk
//! or from a peer.
//!
//! A source only answers: it never evaluates a target, and nothing query asks of it writes.

use std::ops::ControlFlow;

use crate::events::Event;
pub use crate::store::{FetchedSeries, FoundNode, Interval};
pub use crate::store::{RegexBuilderFn, TagExpr};

/// Why a source could not answer one question (a corrupt whisper file, an unreachable peer,
/// a failing event database): only ever shown, to the log or in a 400 answer.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// What `events()` says when the source holds no event store.
pub const NO_EVENT_STORE: &str =
    "events() needs the event store, which only `carbonhound serve` opens";

/// What [`MetricSource::fetch_batch`] calls with each name and its series (`Ok(None)`: no
/// such series over the range); [`ControlFlow::Break`] stops the batch.
pub type BatchVisitor<'a> =
    dyn FnMut(&str, Result<Option<FetchedSeries>, SourceError>) -> ControlFlow<()> + 'a;

/// Metrics, tagged series and events, as query evaluation needs them.
pub trait MetricSource: Send + Sync {
    /// Names matching a path expression (graphite-web's `STORE.find`): dot-separated globs
    /// (`*`, `?`, `[…]`, `{a,b}`) per node, as [`crate::store::MetricIndex::find`] reads them;
    /// a tagged name (with `;`) finds itself when the series is known. Branches are listed
    /// too unless `leaves_only`; at most `limit` nodes (ask for one more than allowed to tell
    /// "too many"). Order is the source's; the evaluator sorts.
    fn find(&self, pattern: &str, leaves_only: bool, limit: usize) -> Vec<FoundNode>;

    /// One series over `[from, until)` (epoch seconds) as graphite-web's `fetch` reads it
    /// relative to `now` (epoch seconds), which picks the archive: `start` aligned down to
    /// the archive's step, `end` one step past the last slot, `step` in seconds, one value
    /// per step, `None` where unknown. Points not yet on disk are merged in (carbon's cache
    /// as `merge_with_cache` does). `Ok(None)` for an unknown name or a range outside the
    /// series' retention; `Err` when this one series cannot be read (the request goes on).
    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError>;

    /// Every series of `names` over `[from, until)` relative to `now`, each as [`Self::fetch`]
    /// reads it: `visit` is called once per name, in `names`' order, with the name and its
    /// result, until it breaks. `expression` is what the names were found by — the path
    /// expression (`servers.*.cpu`) or the `seriesByTag(…)` call as written — so that a
    /// source reading other servers asks each of them once for the expression, rather than
    /// once per series, as graphite-web 1.1.8's `Store.fetch` hands each finder the pattern
    /// list and `RemoteReader.fetch_multi` sends the patterns as `target`s.
    ///
    /// The default reads each name with [`Self::fetch`], one after the other, so `visit` may
    /// stop early (a limit reached) before the rest are read.
    fn fetch_batch(
        &self,
        expression: &str,
        names: &[&str],
        from: i64,
        until: i64,
        now: i64,
        visit: &mut BatchVisitor<'_>,
    ) {
        let _ = expression;
        for name in names {
            if visit(name, self.fetch(name, from, until, now)).is_break() {
                return;
            }
        }
    }

    /// About how many datapoints [`Self::fetch`] of `name` over `[from, until)` relative to
    /// `now` would return, without reading it: the render memory budget's estimate (an
    /// estimate only: fetches charge what they really read). The default assumes one-minute
    /// steps; the local store answers from its storage schemas.
    fn points_hint(&self, name: &str, from: i64, until: i64, now: i64) -> usize {
        let _ = (name, now);
        ((until - from).max(0) / 60 + 1) as usize
    }

    /// The time spans the leaf `name` holds data for, as graphite-web's `node.intervals`
    /// that `format=json` finds list: the local store's from its file
    /// ([`crate::store::Store::intervals`]), a cluster's the union of every server's copy
    /// seen by this source's finds (graphite-web's `IntervalSet` of a merged leaf). Empty
    /// when unknown (the default).
    fn intervals(&self, name: &str) -> Vec<Interval> {
        let _ = name;
        Vec::new()
    }

    /// The tagged series (`name;tag=value;…`) matching every expression, sorted by name, as
    /// graphite-web's `TagDB.find_series` (see [`crate::store::TagIndex::find_series`]);
    /// `regex` compiles the patterns of `=~`/`!=~`. Errors (a bad regex, no expression
    /// needing a non-empty value) are the message of a 400.
    fn find_tagged(
        &self,
        exprs: &[TagExpr],
        regex: RegexBuilderFn<'_>,
    ) -> Result<Vec<String>, String>;

    /// Calls `visit` with every event whose `when` lies in `[from_us, until_us]`
    /// (microseconds since the epoch, both ends included) having all of `tags`
    /// (graphite-web's `find_events` without `set`: names no event has are dropped; `None`
    /// for every event), ordered by `when` then id, until `visit` breaks.
    /// Errors: no event store ([`NO_EVENT_STORE`], the default), or the store failed.
    fn events(
        &self,
        from_us: i64,
        until_us: i64,
        tags: Option<Vec<String>>,
        visit: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let _ = (from_us, until_us, tags, visit);
        Err(NO_EVENT_STORE.into())
    }
}

/// [`MetricSource::points_hint`] for a series laid out as `retentions` (finest first): the
/// archive whisper's `fetch` would pick (the first covering `now - from`, else the coarsest)
/// and the points it holds over the range, clipped to that archive's history.
pub fn points_in_layout(
    retentions: &[crate::whisper::Retention],
    from: i64,
    until: i64,
    now: i64,
) -> usize {
    let Some(last) = retentions.last() else {
        return 0;
    };
    let age = now.saturating_sub(from).max(0) as u64;
    let archive = retentions
        .iter()
        .find(|r| r.retention() >= age)
        .unwrap_or(last);
    let oldest = now.saturating_sub(archive.retention() as i64);
    let from = from.max(oldest);
    let step = i64::from(archive.seconds_per_point.max(1));
    ((until - from).max(0) / step + 1) as usize
}
