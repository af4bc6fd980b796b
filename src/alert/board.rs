//! The board: what the status pages show, published by the scheduler after every check
//! (rules, their state, recent history, the last rules-file error). Pages read a snapshot
//! and never touch sled, so the scheduler alone owns the database.
//!
//! Also the doorbell for "reload the rules now" (SIGHUP).

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::rule::Rule;
use super::state::RuleState;
use super::statedb::{BoardSample, HistoryEvent};

/// Events of each rule carried in a snapshot (newest first).
pub const HISTORY_SHOWN: usize = 50;

/// One rule as the pages show it.
#[derive(Debug, Clone)]
pub struct RuleView {
    /// The rule.
    pub rule: Rule,
    /// Its state; `None` until first checked.
    pub state: Option<RuleState>,
    /// Its last events, newest first.
    pub history: Vec<HistoryEvent>,
}

/// Everything the pages show, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Rules in file order.
    pub rules: Vec<RuleView>,
    /// Why the rule files were last refused (old rules kept), if they were.
    pub rules_error: Option<String>,
    /// When this snapshot was made (epoch seconds; 0 before the first).
    pub updated: i64,
    /// How many rules were in each state, every 5 minutes of the last 7 days, oldest first.
    pub samples: Vec<BoardSample>,
}

/// Shared between the scheduler (writer) and the status pages (readers).
#[derive(Default)]
pub struct Board {
    snapshot: ArcSwap<Snapshot>,
    reload: Notify,
    base_url: ArcSwap<Option<String>>,
    outbox: std::sync::OnceLock<super::outbox::Outbox>,
    acks: std::sync::OnceLock<super::ack::AckDesk>,
}

impl Board {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the snapshot.
    pub fn publish(&self, s: Snapshot) {
        self.snapshot.store(Arc::new(s));
    }

    /// Where the status pages are reached (`http://host:port`), told by the server once the
    /// HTTP listener has bound; links in mail use it when `[alerting].base_url` is empty.
    pub fn set_base_url(&self, url: String) {
        self.base_url.store(Arc::new(Some(url)));
    }

    /// The address told by [`Board::set_base_url`], if it was.
    pub fn base_url(&self) -> Option<String> {
        (**self.base_url.load()).clone()
    }

    /// Hands the pages the outbox (once, when alerting starts), for `/api/outbox` and the
    /// rule page's notifications.
    pub fn set_outbox(&self, outbox: super::outbox::Outbox) {
        let _ = self.outbox.set(outbox);
    }

    /// Hands the pages the acknowledgement desk (once, when alerting starts).
    pub fn set_acks(&self, desk: super::ack::AckDesk) {
        let _ = self.acks.set(desk);
    }

    /// Where acknowledgements are asked for, once alerting has started.
    pub fn acks(&self) -> Option<&super::ack::AckDesk> {
        self.acks.get()
    }

    /// The outbox, once alerting has started.
    pub fn outbox(&self) -> Option<&super::outbox::Outbox> {
        self.outbox.get()
    }

    /// Asks the scheduler to re-read the rule files and check at once (SIGHUP).
    pub fn request_reload(&self) {
        self.reload.notify_one();
    }

    /// Waits for [`Board::request_reload`].
    pub async fn reload_requested(&self) {
        self.reload.notified().await;
    }
}
