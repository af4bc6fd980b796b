//! Events: graphite-web's event store — deploy markers and other annotations that ops teams
//! post (`POST /events/`) and that Grafana's Graphite annotations ("Graphite events" query,
//! `/events/get_data`) and the render function `events()` read.
//!
//! Owns the event database under `data_dir/events` ([`EventStore`], sled), the model of one
//! event and its JSON ([`Event`], [`NewEvent`]), and django-tagging's tag semantics
//! ([`TagQuery`], [`SetOperation`]). graphite-web 1.1.8's `graphite/events` app is the spec (models.py, views.py).
//! Never touches whisper files or the metric store; the HTTP side lives in `api::events`,
//! the render function in `query::functions::events`.
//!
//! `carbonhound serve` opens the store, hands it to whoever needs it — the API's state
//! (`/events`), and the [`crate::query::LocalSource`] that `/render` and the alert scheduler
//! evaluate against (`events()`) — and flushes it at shutdown. A process that opens none (`carbonhound alerts check`, tests that
//! evaluate in-process) has no events: `events()` then refuses with a clear error.
//!
//! # Limits (answers with HTTP 400/413 beyond them, nothing stored)
//! - `what`: at most [`MAX_WHAT_CHARS`] characters (400), graphite-web's column size.
//! - `tags`: at most [`MAX_TAGS_CHARS`] characters once joined with spaces (400), graphite-web's
//!   column size.
//! - `data`: at most [`MAX_DATA_BYTES`] bytes (413); the request body is also bounded by
//!   `query.max_body_bytes`.
//! - The store holds at most `[events].max_events` events in all ([`DEFAULT_MAX_EVENTS`]
//!   unless set); a post beyond it is refused (507, naming the setting), nothing evicted.
//! - One answer of `/events/get_data` or `/events/` lists at most [`MAX_EVENTS_PER_ANSWER`]
//!   events and [`MAX_ANSWER_BYTES`] bytes of event text; a query matching more is refused
//!   whole (413, "narrow from/until or the tags"), never cut short silently.

mod db;
mod event;
mod tags;

use std::path::{Path, PathBuf};

pub use db::{now_micros, EventStore};
pub use event::{Event, NewEvent};
pub use tags::{parse_tag_input, SetOperation, TagQuery};

/// Longest `what`, in characters (graphite-web's `CharField(max_length=255)`).
pub const MAX_WHAT_CHARS: usize = 255;
/// Longest tag string, in characters (graphite-web's `TagField(max_length=255)`).
pub const MAX_TAGS_CHARS: usize = 255;
/// Largest `data`, in bytes of UTF-8.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Most events stored when `[events].max_events` is not set (the embedded default).
pub const DEFAULT_MAX_EVENTS: usize = 1_000_000;
/// Most events in one `/events/get_data` or `/events/` answer.
pub const MAX_EVENTS_PER_ANSWER: usize = 10_000;
/// Most bytes of event text (`what` + `data` + `tags`) in one answer.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Why an event could not be stored or read.
#[derive(Debug, Clone, PartialEq)]
pub enum EventError {
    /// The request is wrong (not a JSON object, bad tags, …): HTTP 400.
    BadRequest(String),
    /// Over a documented limit: HTTP 413.
    TooLarge(String),
    /// The store holds `[events].max_events` events already: HTTP 507 (Insufficient
    /// Storage), the message naming the setting.
    Full(String),
    /// The database failed: HTTP 500.
    Storage(String),
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::BadRequest(m)
            | EventError::TooLarge(m)
            | EventError::Full(m)
            | EventError::Storage(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EventError {}

/// Where the event database lives: `data_dir/events`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("events")
}
