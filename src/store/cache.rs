//! The write-back cache: per-metric queues of points waiting for the persister, queryable at
//! every moment (a point is visible from the instant it is accepted until it is on disk).
//!
//! Sharded hash tables, each behind its own mutex, keyed by metric name with the hash
//! computed once per point. A queue taken by the persister stays visible as "in flight" until
//! its write is done. The total number of queued points is bounded: at `max_size` listeners
//! wait on [`Cache::wait_for_room`] instead of reading more (TCP backpressure), so memory is
//! bounded and nothing is dropped. The limit is checked between reads, so it can be passed by
//! at most one read's worth of points per connection (64 KiB of lines, about 2,000 points).
//!
//! Hot-path choices (measured in BENCHMARKS.md): each shard sits on its own cache lines; the
//! size counter is bumped once per listener read, not per point ([`Cache::insert_deferred`]);
//! a taken queue is replaced by one with room for the same number of points, so a busy
//! metric's queue does not regrow from nothing after every write.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use hashbrown::HashTable;
use parking_lot::Mutex;
use smallvec::SmallVec;

use super::wal::NO_SEGMENT;

/// A cached point: `(timestamp in epoch seconds, value)`.
pub type CachedPoint = (i64, f64);

const SHARDS: usize = 256;
/// Most points a queue keeps room for after the persister took it (see [`Cache::take`]).
const MAX_KEPT_CAPACITY: usize = 1024;

/// One metric's entry, kept small (80 bytes, and no allocation for a name up to 24 bytes or
/// for the one point a metric reporting every 10 s has queued): at a million metrics each
/// byte here is a megabyte. The hash is not kept (the table recomputes it when it grows).
struct Entry {
    name: Name,
    queue: Queue,
    inflight: Option<Arc<Vec<CachedPoint>>>,
    /// The lowest write-ahead-log segment of the queued points ([`NO_SEGMENT32`]: none).
    queue_segment: u32,
    /// The lowest segment of the in-flight points.
    inflight_segment: u32,
    /// Held by [`Cache::hold`] (a file being migrated): the persister does not take it.
    held: bool,
    /// What the persister remembers of the metric's file ([`Memo`]), kept here so it costs
    /// 16 bytes per metric and no second table; split into fields so the entry stays 80.
    memo_file: u32,
    memo_bases: [u32; 2],
    memo_layout: u8,
    memo_read_at: u16,
}

/// What the persister remembers of a metric's whisper file between two writes, so the next
/// write need not read the header or the first two archive bases (see
/// [`crate::whisper::Known`]). The meaning of the numbers is the persister's: `layout`
/// indexes its table of the headers seen (0 = nothing remembered), `file` is the file's
/// [`crate::whisper::file_id`], `read_at` when the header was read (epoch seconds, mod 2^16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memo {
    /// Index + 1 into the persister's header table; 0: nothing remembered.
    pub layout: u8,
    /// The file's [`crate::whisper::file_id`].
    pub file: u32,
    /// Base intervals of archives 0 and 1 (epoch seconds; 0 = unknown).
    pub bases: [u32; 2],
    /// When the header was read (epoch seconds mod 2^16).
    pub read_at: u16,
}

/// A metric's name as the cache keeps it: inline up to 24 bytes (a `big.h01234.m01` costs no
/// allocation; an `Arc<str>` took a 48-byte one), cloned into the persister's lists.
pub type Name = compact_str::CompactString;

/// A metric's queued points: one inline, more on the heap.
type Queue = SmallVec<[CachedPoint; 1]>;

/// [`NO_SEGMENT`] in an entry's 32-bit segment fields.
const NO_SEGMENT32: u32 = u32::MAX;

/// A write-ahead-log segment number as an entry keeps it. A real segment past `u32::MAX - 1`
/// (four billion segments: never, in practice) is kept as `u32::MAX - 1`, lower than it is,
/// which only keeps log segments longer, never deletes one too early.
fn segment32(segment: u64) -> u32 {
    if segment == NO_SEGMENT {
        NO_SEGMENT32
    } else {
        segment.min(u64::from(NO_SEGMENT32 - 1)) as u32
    }
}

/// The inverse of [`segment32`].
fn segment64(segment: u32) -> u64 {
    if segment == NO_SEGMENT32 {
        NO_SEGMENT
    } else {
        u64::from(segment)
    }
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    /// Entries with points queued or in flight ([`Entry::busy`]), kept as they change so
    /// [`Cache::queues`] does not walk every entry (a million of them, under the shard
    /// locks the listeners need, at every `/health`).
    busy: usize,
}

impl Entry {
    /// Whether the entry has points queued or in flight.
    fn busy(&self) -> bool {
        !self.queue.is_empty() || self.inflight.is_some()
    }
}

/// A shard's lock on its own cache line pair, so listeners and persisters working on
/// neighbouring shards do not slow each other down (false sharing).
#[derive(Default)]
#[repr(align(128))]
struct PaddedShard(Mutex<Shard>);

/// A metric's queue handed to the persister by [`Cache::take`].
pub struct Taken {
    /// The metric.
    pub name: Name,
    hash: u64,
    /// Its points in arrival order (not yet sorted or deduplicated).
    pub points: Arc<Vec<CachedPoint>>,
    /// The memo the entry had when taken; what [`Cache::finish`] stores back.
    pub memo: Memo,
}

/// One line of [`Cache::backlog`]: a metric with queued points.
pub struct Backlog {
    /// Points queued.
    pub len: usize,
    /// The metric.
    pub name: Name,
    hash: u64,
}

/// The cache. All methods take `&self`; share it in an `Arc`.
pub struct Cache {
    shards: Box<[PaddedShard]>,
    hasher: foldhash::fast::FixedState,
    /// Points queued or in flight. Signed: listeners add a read's worth after inserting it
    /// ([`Cache::insert_deferred`]), so a fast persister may subtract first.
    size: AtomicI64,
    max_size: usize,
    room: tokio::sync::Notify,
}

impl Cache {
    /// A cache holding at most `max_size` points before listeners must wait.
    pub fn new(max_size: usize) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| PaddedShard::default()).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x6361_7262_6f6e),
            size: AtomicI64::new(0),
            max_size,
            room: tokio::sync::Notify::new(),
        }
    }

    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash >> 56) as usize % SHARDS].0
    }

    /// Points queued or in flight, all metrics together.
    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed).max(0) as usize
    }

    /// Counts `n` points inserted with [`Cache::insert_deferred`].
    pub fn add_size(&self, n: usize) {
        self.size.fetch_add(n as i64, Ordering::Relaxed);
    }

    /// The configured limit.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Whether the cache is at its limit (listeners should wait before reading more).
    pub fn is_full(&self) -> bool {
        self.size() >= self.max_size
    }

    /// Waits until the cache is below its limit.
    pub async fn wait_for_room(&self) {
        while self.is_full() {
            let notified = self.room.notified();
            if !self.is_full() {
                break;
            }
            // A timeout guards against a notification lost between the check and the wait.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), notified).await;
        }
    }

    /// Number of metrics with points queued or in flight (carbon's `cache.queues`,
    /// `len(MetricCache)`). Walks every entry: for the self metrics and `/health`, not for
    /// hot paths.
    pub fn queues(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().busy).sum()
    }

    /// Queues one point; returns `true` when the metric had no entry yet (a new metric for
    /// the caller to index). Does not wait: callers check [`Cache::is_full`] between reads.
    pub fn insert(&self, name: &str, timestamp: i64, value: f64) -> bool {
        let new = self.insert_deferred(name, timestamp, value);
        self.add_size(1);
        new
    }

    /// As [`Cache::insert`], but the point is not yet counted in [`Cache::size`]: the caller
    /// counts a whole read's worth with one [`Cache::add_size`] (one contended atomic add per
    /// read instead of per point).
    pub fn insert_deferred(&self, name: &str, timestamp: i64, value: f64) -> bool {
        self.insert_logged(name, timestamp, value, NO_SEGMENT)
    }

    /// As [`Cache::insert_deferred`], for a point logged in write-ahead-log `segment`: the
    /// entry remembers the lowest segment its points come from ([`Cache::oldest_segment`]).
    pub fn insert_logged(&self, name: &str, timestamp: i64, value: f64, segment: u64) -> bool {
        let hash = self.hash(name);
        let segment = segment32(segment);
        let mut guard = self.shard(hash).lock();
        let shard = &mut *guard;
        match shard.table.find_mut(hash, |e| &*e.name == name) {
            Some(e) => {
                if !e.busy() {
                    shard.busy += 1;
                }
                e.queue.push((timestamp, value));
                e.queue_segment = e.queue_segment.min(segment);
                false
            }
            None => {
                shard.busy += 1;
                let mut queue = Queue::new();
                queue.push((timestamp, value));
                shard.table.insert_unique(
                    hash,
                    Entry {
                        name: Name::from(name),
                        queue,
                        inflight: None,
                        queue_segment: segment,
                        inflight_segment: NO_SEGMENT32,
                        held: false,
                        memo_file: 0,
                        memo_bases: [0; 2],
                        memo_layout: 0,
                        memo_read_at: 0,
                    },
                    |e| self.hash(&e.name),
                );
                true
            }
        }
    }

    /// The metric's cached points (in flight first, then queued), in arrival order; empty if
    /// none.
    pub fn get(&self, name: &str) -> Vec<CachedPoint> {
        let hash = self.hash(name);
        let shard = self.shard(hash).lock();
        match shard.table.find(hash, |e| &*e.name == name) {
            Some(e) => {
                let mut out =
                    Vec::with_capacity(e.queue.len() + e.inflight.as_ref().map_or(0, |v| v.len()));
                if let Some(f) = &e.inflight {
                    out.extend_from_slice(f);
                }
                out.extend_from_slice(&e.queue);
                out
            }
            None => Vec::new(),
        }
    }

    /// Whether the cache has an entry for the metric.
    pub fn contains(&self, name: &str) -> bool {
        let hash = self.hash(name);
        self.shard(hash)
            .lock()
            .table
            .find(hash, |e| &*e.name == name)
            .is_some()
    }

    /// Drops the metric's entry and its points, queued and in flight (a delete: unpersisted
    /// points are discarded); returns how many points went. The caller makes sure no
    /// persister holds them in flight (`Store`'s lifecycle lock), so none is written later.
    pub fn remove(&self, name: &str) -> usize {
        let n = self
            .remove_entry(name)
            .map_or(0, |(points, _)| points.len());
        if n > 0 {
            self.release_size(n);
        }
        n
    }

    /// Moves the metric's cached points (in arrival order, with their write-ahead-log
    /// segment) to `to`, after any `to` already holds (a rename); returns how many moved.
    /// The size is unchanged. Same precondition as [`Cache::remove`].
    pub fn rename(&self, from: &str, to: &str) -> usize {
        let Some((points, segment)) = self.remove_entry(from) else {
            return 0;
        };
        for &(ts, v) in &points {
            self.insert_logged(to, ts, v, segment);
        }
        points.len()
    }

    /// Takes the metric's entry out: its points (in flight first, then queued) and the lowest
    /// segment they were logged in.
    fn remove_entry(&self, name: &str) -> Option<(Vec<CachedPoint>, u64)> {
        let hash = self.hash(name);
        let mut shard = self.shard(hash).lock();
        let entry = shard.table.find_entry(hash, |e| &*e.name == name).ok()?;
        let (e, _) = entry.remove();
        if e.busy() {
            shard.busy -= 1;
        }
        let mut points = e.inflight.map(|f| (*f).clone()).unwrap_or_default();
        points.extend_from_slice(&e.queue);
        Some((points, segment64(e.queue_segment.min(e.inflight_segment))))
    }

    /// `n` points left the cache: the size drops and waiting listeners are woken when it
    /// falls below the limit.
    fn release_size(&self, n: usize) {
        let before = self.size.fetch_sub(n as i64, Ordering::Relaxed);
        let max = self.max_size as i64;
        if before >= max && before - (n as i64) < max {
            self.room.notify_waiters();
        }
    }

    /// Metrics with queued points in the shards `filter` accepts (shard index → bool), for a
    /// persister to order by size.
    pub fn backlog(&self, filter: impl Fn(usize) -> bool) -> Vec<Backlog> {
        let mut out = Vec::new();
        for (i, shard) in self.shards.iter().enumerate() {
            if !filter(i) {
                continue;
            }
            let shard = shard.0.lock();
            for e in shard.table.iter() {
                if !e.queue.is_empty() && e.inflight.is_none() && !e.held {
                    out.push(Backlog {
                        len: e.queue.len(),
                        name: e.name.clone(),
                        hash: self.hash(&e.name),
                    });
                }
            }
        }
        out
    }

    /// Number of shards (for splitting work between persisters).
    pub fn shard_count(&self) -> usize {
        SHARDS
    }

    /// Moves a metric's queue to "in flight" and hands it to the persister. `None` if it has
    /// nothing queued or is already in flight.
    pub fn take(&self, item: &Backlog) -> Option<Taken> {
        let mut shard = self.shard(item.hash).lock();
        let e = shard.table.find_mut(item.hash, |e| e.name == item.name)?;
        if e.queue.is_empty() || e.inflight.is_some() || e.held {
            return None;
        }
        // Room for as many points as this pass took, so a busy metric's queue does not grow
        // from nothing (several reallocations) after every write.
        let room = e.queue.len().min(MAX_KEPT_CAPACITY);
        let points =
            Arc::new(std::mem::replace(&mut e.queue, Queue::with_capacity(room)).into_vec());
        e.inflight = Some(points.clone());
        e.inflight_segment = std::mem::replace(&mut e.queue_segment, NO_SEGMENT32);
        Some(Taken {
            name: e.name.clone(),
            hash: item.hash,
            points,
            memo: Memo {
                layout: e.memo_layout,
                file: e.memo_file,
                bases: e.memo_bases,
                read_at: e.memo_read_at,
            },
        })
    }

    /// The persister is done with `taken` (written, or dropped after a counted error): its
    /// points leave the cache, and the entry keeps `taken.memo`.
    pub fn finish(&self, taken: Taken) {
        let n = taken.points.len();
        {
            let mut guard = self.shard(taken.hash).lock();
            let shard = &mut *guard;
            if let Some(e) = shard.table.find_mut(taken.hash, |e| e.name == taken.name) {
                if e.inflight
                    .as_ref()
                    .is_some_and(|f| Arc::ptr_eq(f, &taken.points))
                {
                    e.memo_layout = taken.memo.layout;
                    e.memo_file = taken.memo.file;
                    e.memo_bases = taken.memo.bases;
                    e.memo_read_at = taken.memo.read_at;
                    e.inflight = None;
                    e.inflight_segment = NO_SEGMENT32;
                    if !e.busy() {
                        shard.busy -= 1;
                    }
                }
            }
        }
        self.release_size(n);
    }

    /// The persister could not write `taken` now (file creation throttled): its points go
    /// back in front of the queue, to be taken again later.
    pub fn requeue(&self, taken: Taken) {
        let mut guard = self.shard(taken.hash).lock();
        let shard = &mut *guard;
        if let Some(e) = shard.table.find_mut(taken.hash, |e| e.name == taken.name) {
            let was = e.busy();
            // Drop the entry's in-flight reference first, so the points move back uncopied.
            e.inflight = None;
            e.queue_segment = e
                .queue_segment
                .min(std::mem::replace(&mut e.inflight_segment, NO_SEGMENT32));
            let mut points = Arc::try_unwrap(taken.points).unwrap_or_else(|a| (*a).clone());
            points.extend_from_slice(&e.queue);
            e.queue = Queue::from_vec(points);
            if was && !e.busy() {
                shard.busy -= 1;
            }
        }
    }

    /// Holds metric `name` off the persister (creating its entry if needed): from now on
    /// [`Cache::take`] refuses it and [`Cache::backlog`] leaves it out, so its points stay
    /// queued (and readable) until [`Cache::release`]. Returns whether a write taken before
    /// the hold is still in flight; the holder waits until [`Cache::in_flight`] says no
    /// before touching the file. For the retention migration (`store::migrate`).
    pub fn hold(&self, name: &str) -> bool {
        let hash = self.hash(name);
        let mut shard = self.shard(hash).lock();
        match shard.table.find_mut(hash, |e| &*e.name == name) {
            Some(e) => {
                e.held = true;
                e.inflight.is_some()
            }
            None => {
                shard.table.insert_unique(
                    hash,
                    Entry {
                        name: Name::from(name),
                        queue: Queue::new(),
                        inflight: None,
                        queue_segment: NO_SEGMENT32,
                        inflight_segment: NO_SEGMENT32,
                        held: true,
                        memo_file: 0,
                        memo_bases: [0; 2],
                        memo_layout: 0,
                        memo_read_at: 0,
                    },
                    |e| self.hash(&e.name),
                );
                false
            }
        }
    }

    /// Whether a write of `name` taken by the persister is still in flight.
    pub fn in_flight(&self, name: &str) -> bool {
        let hash = self.hash(name);
        self.shard(hash)
            .lock()
            .table
            .find(hash, |e| &*e.name == name)
            .is_some_and(|e| e.inflight.is_some())
    }

    /// Ends a [`Cache::hold`]: the persister writes the queued points at its next pass.
    pub fn release(&self, name: &str) {
        let hash = self.hash(name);
        if let Some(e) = self
            .shard(hash)
            .lock()
            .table
            .find_mut(hash, |e| &*e.name == name)
        {
            e.held = false;
        }
    }

    /// The lowest write-ahead-log segment any cached point (queued or in flight) was logged
    /// in; [`NO_SEGMENT`] when none. Walks every entry (about once a second, for
    /// `Wal::collect`).
    pub fn oldest_segment(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                s.0.lock()
                    .table
                    .iter()
                    .map(|e| e.queue_segment.min(e.inflight_segment))
                    .min()
                    .map_or(NO_SEGMENT, segment64)
            })
            .min()
            .unwrap_or(NO_SEGMENT)
    }

    /// Drops entries with nothing queued or in flight (their names stay in the index), so a
    /// metric that stopped reporting costs no memory here. Returns how many were dropped.
    pub fn evict_idle(&self) -> usize {
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            let before = shard.table.len();
            shard
                .table
                .retain(|e| !e.queue.is_empty() || e.inflight.is_some() || e.held);
            dropped += before - shard.table.len();
            if shard.table.capacity() > 4 * shard.table.len().max(16) {
                shard.table.shrink_to_fit(|e| self.hash(&e.name));
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `queues` counts, walked the slow way.
    fn walked(c: &Cache) -> usize {
        c.shards
            .iter()
            .map(|s| s.0.lock().table.iter().filter(|e| e.busy()).count())
            .sum()
    }

    /// The entry's size is what a million metrics cost in the cache: keep it in view.
    #[test]
    fn an_entry_is_80_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 80);
        assert_eq!(segment64(segment32(NO_SEGMENT)), NO_SEGMENT);
        assert_eq!(segment64(segment32(7)), 7);
        assert_eq!(
            segment32(u64::MAX - 1),
            u32::MAX - 1,
            "kept lower, never dropped"
        );
    }

    #[test]
    fn queues_follow_every_change() {
        let c = Cache::new(1000);
        let check = |c: &Cache, want: usize| {
            assert_eq!(c.queues(), want);
            assert_eq!(walked(c), want);
        };
        check(&c, 0);
        for m in 0..50 {
            c.insert(&format!("m{m}"), 1, 1.0);
            c.insert(&format!("m{m}"), 2, 2.0);
        }
        check(&c, 50);
        assert!(!c.hold("m0"), "nothing in flight");
        assert!(!c.hold("held.new"));
        check(&c, 50);
        let mut taken: Vec<Taken> = c
            .backlog(|_| true)
            .iter()
            .filter_map(|b| c.take(b))
            .collect();
        assert_eq!(taken.len(), 49, "m0 is held");
        check(&c, 50);
        c.insert("m1", 3, 3.0);
        let t = taken.remove(0);
        let name = t.name.clone();
        c.finish(t);
        check(&c, if &*name == "m1" { 50 } else { 49 });
        let t = taken.remove(0);
        c.requeue(t);
        let busy_now = c.queues();
        check(&c, busy_now);
        for t in taken.drain(..) {
            c.finish(t);
        }
        let left = walked(&c);
        check(&c, left);
        c.remove("m0");
        c.rename("m1", "renamed.m1");
        check(&c, walked(&c));
        assert!(c.queues() >= 1);
        c.evict_idle();
        check(&c, walked(&c));
        while let Some(b) = c.backlog(|_| true).first() {
            let t = c.take(b).unwrap();
            c.finish(t);
        }
        check(&c, 0);
    }

    #[test]
    fn points_stay_visible_until_finished() {
        let c = Cache::new(10);
        assert!(c.insert("a.b", 10, 1.0));
        assert!(!c.insert("a.b", 20, 2.0));
        assert_eq!(c.size(), 2);
        let backlog = c.backlog(|_| true);
        assert_eq!(backlog.len(), 1);
        let t = c.take(&backlog[0]).unwrap();
        assert!(c.take(&backlog[0]).is_none(), "in flight already");
        c.insert("a.b", 30, 3.0);
        assert_eq!(c.get("a.b"), vec![(10, 1.0), (20, 2.0), (30, 3.0)]);
        c.finish(t);
        assert_eq!(c.get("a.b"), vec![(30, 3.0)]);
        assert_eq!(c.size(), 1);
    }

    /// The persister's memo of a file rides with the entry from one write to the next.
    #[test]
    fn an_entry_keeps_the_memo_its_last_write_left() {
        let c = Cache::new(10);
        c.insert("m", 1, 1.0);
        let mut t = c.take(&c.backlog(|_| true)[0]).unwrap();
        assert_eq!(t.memo, Memo::default());
        let memo = Memo {
            layout: 3,
            file: 0xdead_beef,
            bases: [10, 60],
            read_at: 7,
        };
        t.memo = memo;
        c.finish(t);
        c.insert("m", 2, 2.0);
        let t = c.take(&c.backlog(|_| true)[0]).unwrap();
        assert_eq!(t.memo, memo);
        // A write put back (throttled, disk full) leaves the memo as it was.
        let mut back = t;
        back.memo = Memo::default();
        c.requeue(back);
        assert_eq!(c.take(&c.backlog(|_| true)[0]).unwrap().memo, memo);
    }

    #[test]
    fn requeue_puts_points_back_in_front() {
        let c = Cache::new(10);
        c.insert("m", 1, 1.0);
        let b = c.backlog(|_| true);
        let t = c.take(&b[0]).unwrap();
        c.insert("m", 2, 2.0);
        c.requeue(t);
        assert_eq!(c.get("m"), vec![(1, 1.0), (2, 2.0)]);
        assert_eq!(c.size(), 2);
    }

    #[test]
    fn entries_remember_their_oldest_segment_until_written() {
        let c = Cache::new(10);
        assert_eq!(c.oldest_segment(), NO_SEGMENT);
        c.insert_logged("m", 1, 1.0, 3);
        c.insert_logged("m", 2, 1.0, 4);
        c.insert_logged("n", 2, 1.0, 5);
        c.insert("self", 2, 1.0);
        assert_eq!(c.oldest_segment(), 3);
        let b: Vec<_> = c
            .backlog(|_| true)
            .into_iter()
            .filter(|b| &*b.name == "m")
            .collect();
        let t = c.take(&b[0]).unwrap();
        assert_eq!(c.oldest_segment(), 3, "in flight still counts");
        c.insert_logged("m", 3, 1.0, 6);
        c.requeue(t);
        assert_eq!(c.oldest_segment(), 3, "requeued keeps its segment");
        let b: Vec<_> = c
            .backlog(|_| true)
            .into_iter()
            .filter(|b| &*b.name == "m")
            .collect();
        let t = c.take(&b[0]).unwrap();
        c.finish(t);
        assert_eq!(c.oldest_segment(), 5);
    }

    #[test]
    fn remove_and_rename_move_every_point() {
        let c = Cache::new(10);
        c.insert_logged("a", 1, 1.0, 4);
        c.insert_logged("a", 2, 2.0, 5);
        c.add_size(2);
        c.insert("b", 1, 9.0);
        assert_eq!(c.rename("a", "b"), 2);
        assert!(!c.contains("a"));
        assert_eq!(c.get("b"), vec![(1, 9.0), (1, 1.0), (2, 2.0)]);
        assert_eq!(c.oldest_segment(), 4, "moved points keep their segment");
        assert_eq!(c.size(), 3);
        assert_eq!(c.rename("nope", "x"), 0);
        assert_eq!(c.remove("b"), 3);
        assert_eq!(c.size(), 0);
        assert!(c.get("b").is_empty());
        assert_eq!(c.oldest_segment(), NO_SEGMENT);
        assert_eq!(c.remove("b"), 0);
    }

    #[test]
    fn a_held_metric_is_not_taken_until_released() {
        let c = Cache::new(10);
        c.insert("m", 1, 1.0);
        let b = c.backlog(|_| true);
        let t = c.take(&b[0]).unwrap();
        assert!(c.hold("m"), "a write is in flight");
        c.insert("m", 2, 2.0);
        c.finish(t);
        assert!(!c.in_flight("m"));
        assert!(c.backlog(|_| true).is_empty(), "held: not in the backlog");
        assert_eq!(c.get("m"), vec![(2, 2.0)], "held points stay readable");
        c.evict_idle();
        assert!(!c.hold("new"), "a hold makes the entry");
        c.insert("new", 1, 1.0);
        assert_eq!(c.backlog(|_| true).len(), 0);
        c.release("m");
        c.release("new");
        assert_eq!(c.backlog(|_| true).len(), 2);
    }

    #[test]
    fn full_and_room() {
        let c = Cache::new(2);
        c.insert("m", 1, 1.0);
        assert!(!c.is_full());
        c.insert("n", 1, 1.0);
        assert!(c.is_full());
        let b = c.backlog(|_| true);
        let t = c.take(&b[0]).unwrap();
        c.finish(t);
        assert!(!c.is_full());
        assert_eq!(c.queues(), 1, "the finished metric has no queue");
        assert_eq!(c.evict_idle(), 1);
        assert_eq!(c.queues(), 1);
    }
}
