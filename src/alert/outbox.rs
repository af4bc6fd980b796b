//! The durable outbox: every notification (one per contact and channel) is written to sled
//! (tree `outbox` of the alert state database) before anything is sent, then delivered by
//! [`run`] with retries until it is delivered or older than `[alerting].give_up_after`.
//!
//! - **Order**: entries are numbered in the order they were queued; an entry is not sent
//!   while an earlier one of the same rule, contact and channel is still pending, so a
//!   recovery never overtakes its alert.
//! - **Retries**: exponential backoff from 5 s, doubling, at most 10 min between tries (the
//!   `backon` crate's schedule), counted from each failure; a delivery error is kept as
//!   `last_error` and shown on the rule page and `/api/outbox`.
//! - **Once**: an entry is marked sent right after the receiver accepted it (SMTP 250, HTTP
//!   2xx). A crash between those two moments sends it again after the restart; every
//!   notification carries a stable id (its Message-ID, the webhook's `id`, PagerDuty's
//!   `dedup_key`) by which a receiver can drop the repeat.
//! - **Bounds**: delivered and given-up entries are kept 7 days for the pages, then dropped;
//!   at most [`MAX_PENDING`] pending entries (beyond, the oldest pending are given up, loudly).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::notify::Channel;
use super::scheduler::Clock;
use super::smtp::Mailer;
use super::state::MailKind;
use super::statedb::StateDbError;

/// Most pending notifications kept.
pub const MAX_PENDING: usize = 100_000;
/// Delivered and given-up notifications are kept this long (seconds) for the pages.
pub const KEEP_DONE: i64 = 7 * 86_400;
/// Time allowed for one HTTP delivery.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest HTTP answer read (the body is only kept as the error text).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Waiting for its first or next try.
    Pending,
    /// Accepted by the receiver.
    Sent,
    /// Older than `give_up_after` and still not delivered.
    GivenUp,
}

/// What is sent. Stored apart from the notification (tree `outbox_bodies`), read only to
/// send it, and dropped once it is delivered or given up: the notifications themselves stay
/// small however many the pages keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Body {
    /// Not loaded (a notification read from the `outbox` tree, before it is sent).
    #[default]
    Unloaded,
    /// A whole RFC 5322 message (base64 in the store) for these envelope recipients.
    Mail {
        /// Envelope sender.
        from: String,
        /// Envelope recipients.
        to: Vec<String>,
        /// The message, base64.
        eml: String,
    },
    /// A JSON POST.
    Http {
        /// Where to.
        url: String,
        /// The JSON body.
        json: String,
    },
}

/// One notification to one contact by one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Its number: queue order, and its stable id.
    pub id: u64,
    /// The rule's name.
    pub rule: String,
    /// Which notification of the incident.
    pub kind: MailKind,
    /// The contact's name.
    pub contact: String,
    /// The channel.
    pub channel: Channel,
    /// Where, for people: addresses, or the URL's scheme and host (never a secret).
    pub destination: String,
    /// The subject (the mail's).
    pub subject: String,
    /// When it was queued (epoch seconds).
    pub created: i64,
    /// Tries so far.
    pub attempts: u32,
    /// When the next try is due (epoch seconds).
    pub next_try: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Where it stands.
    pub status: Delivery,
    /// When it was delivered or given up.
    pub done_at: Option<i64>,
    /// What is sent ([`Body::Unloaded`] until [`Outbox::load_body`]).
    #[serde(skip)]
    pub body: Body,
}

/// [`Outbox::due`] over notifications already read (oldest first).
fn due_of(all: &[Notification], now: i64) -> Vec<Notification> {
    let mut blocked = std::collections::HashSet::new();
    let mut out = Vec::new();
    for n in all {
        if n.status != Delivery::Pending {
            continue;
        }
        if !blocked.insert((n.rule.as_str(), n.contact.as_str(), n.channel)) {
            continue;
        }
        if n.next_try <= now {
            out.push(n.clone());
        }
    }
    out
}

/// A URL shown without its path and query (Slack's and webhooks' secrets live there).
pub fn public_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".into(),
    }
}

/// The outbox tree.
#[derive(Clone)]
pub struct Outbox {
    db: sled::Db,
    tree: sled::Tree,
    bodies: sled::Tree,
    wake: Arc<Notify>,
    counts: Arc<DeliveryCounts>,
}

/// Deliveries tried since the counts were last taken ([`Outbox::take_counts`]): what the
/// receivers answered, not what was queued, so `mailsFailed` rises while the SMTP server is
/// down. Every failed try counts (a notification retried five times fails five times).
#[derive(Debug, Default)]
struct DeliveryCounts {
    mail_sent: AtomicU64,
    mail_failed: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
}

/// [`Outbox::take_counts`]: deliveries since the last take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Mails the SMTP server accepted.
    pub mail_sent: u64,
    /// Tries to send a mail that failed (each retry counts).
    pub mail_failed: u64,
    /// Notifications of every channel (mail, webhook, Slack, PagerDuty) accepted.
    pub sent: u64,
    /// Failed tries of every channel.
    pub failed: u64,
}

fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The delay before try `attempts + 1` after `attempts` failures: 5 s doubling to 10 min.
pub fn retry_delay(attempts: u32) -> Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(5))
        .with_max_delay(Duration::from_secs(600))
        .with_factor(2.0)
        .with_max_times(usize::MAX)
        .build()
        .nth(attempts.saturating_sub(1) as usize)
        .unwrap_or(Duration::from_secs(600))
}

impl Outbox {
    /// The outbox in `db` (tree `outbox`).
    pub fn open(db: &sled::Db) -> Result<Outbox, StateDbError> {
        Ok(Outbox {
            db: db.clone(),
            tree: db.open_tree("outbox")?,
            bodies: db.open_tree("outbox_bodies")?,
            wake: Arc::new(Notify::new()),
            counts: Arc::default(),
        })
    }

    /// The deliveries since the last call (the counts start again from zero).
    pub fn take_counts(&self) -> Delivered {
        let c = &self.counts;
        Delivered {
            mail_sent: c.mail_sent.swap(0, Ordering::Relaxed),
            mail_failed: c.mail_failed.swap(0, Ordering::Relaxed),
            sent: c.sent.swap(0, Ordering::Relaxed),
            failed: c.failed.swap(0, Ordering::Relaxed),
        }
    }

    /// Queues a notification (its `id` is assigned here) and flushes it to disk before
    /// returning: once this is `Ok`, a crash does not lose it. The delivery loop finds it
    /// within a second, or at once after [`Outbox::wake`] (called once per round, so a
    /// round's notifications are planned together).
    pub fn enqueue(&self, mut n: Notification) -> Result<u64, StateDbError> {
        n.id = self.db.generate_id()?;
        self.bodies
            .insert(key(n.id), serde_json::to_vec(&n.body)?)
            .map_err(StateDbError::State)?;
        self.tree
            .insert(key(n.id), serde_json::to_vec(&n)?)
            .map_err(StateDbError::State)?;
        self.tree.flush().map_err(StateDbError::State)?;
        Ok(n.id)
    }

    fn put(&self, n: &Notification) {
        match serde_json::to_vec(n) {
            Ok(v) => {
                if let Err(e) = self
                    .tree
                    .insert(key(n.id), v)
                    .and_then(|_| self.tree.flush().map(|_| ()))
                {
                    tracing::error!("outbox: cannot record notification {}: {e}", n.id);
                }
            }
            Err(e) => tracing::error!("outbox: {e}"),
        }
    }

    /// Reads `n`'s body from the store (to send it); `Err` when it is gone or unreadable.
    pub fn load_body(&self, n: &mut Notification) -> Result<(), String> {
        let v = self
            .bodies
            .get(key(n.id))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("notification #{} has no stored body", n.id))?;
        n.body = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn drop_body(&self, id: u64) {
        let _ = self.bodies.remove(key(id));
    }

    /// Every notification, oldest first.
    pub fn all(&self) -> Vec<Notification> {
        self.tree
            .iter()
            .values()
            .filter_map(|v| v.ok())
            .filter_map(|v| serde_json::from_slice(&v).ok())
            .collect()
    }

    /// The notifications of rule `name`, newest first, at most `limit`.
    pub fn of_rule(&self, name: &str, limit: usize) -> Vec<Notification> {
        let mut v: Vec<Notification> = self
            .tree
            .iter()
            .rev()
            .filter_map(|kv| kv.ok())
            .filter_map(|(_, v)| serde_json::from_slice::<Notification>(&v).ok())
            .filter(|n| n.rule == name)
            .take(limit)
            .collect();
        v.truncate(limit);
        v
    }

    /// The pending notifications due at `now`, oldest first, leaving out any that has an
    /// earlier pending one of the same rule, contact and channel.
    pub fn due(&self, now: i64) -> Vec<Notification> {
        due_of(&self.all(), now)
    }

    /// Records a delivery.
    pub fn sent(&self, mut n: Notification, now: i64) {
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        if n.channel == Channel::Email {
            self.counts.mail_sent.fetch_add(1, Ordering::Relaxed);
        }
        n.attempts += 1;
        n.status = Delivery::Sent;
        n.done_at = Some(now);
        n.last_error = None;
        self.put(&n);
        self.drop_body(n.id);
    }

    /// Records a failed try: the next is due after [`retry_delay`], or the notification is
    /// given up once it is older than `give_up_after`. Returns whether it was given up.
    pub fn failed(
        &self,
        mut n: Notification,
        error: String,
        now: i64,
        give_up_after: Duration,
    ) -> bool {
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        if n.channel == Channel::Email {
            self.counts.mail_failed.fetch_add(1, Ordering::Relaxed);
        }
        n.attempts += 1;
        n.last_error = Some(error);
        let given_up = now - n.created >= give_up_after.as_secs() as i64;
        if given_up {
            n.status = Delivery::GivenUp;
            n.done_at = Some(now);
            self.drop_body(n.id);
        } else {
            n.next_try = now + retry_delay(n.attempts).as_secs() as i64;
        }
        self.put(&n);
        given_up
    }

    /// Drops delivered and given-up notifications older than [`KEEP_DONE`], and gives up the
    /// oldest pending beyond [`MAX_PENDING`].
    pub fn prune(&self, now: i64) {
        let mut pending = 0usize;
        let all = self.all();
        let total_pending = all.iter().filter(|n| n.status == Delivery::Pending).count();
        for mut n in all {
            match n.status {
                Delivery::Pending => {
                    pending += 1;
                    if total_pending > MAX_PENDING && pending <= total_pending - MAX_PENDING {
                        tracing::error!(
                            "outbox: more than {MAX_PENDING} notifications pending; giving up #{} \"{}\" to {}",
                            n.id, n.subject, n.contact
                        );
                        n.status = Delivery::GivenUp;
                        n.done_at = Some(now);
                        n.last_error = Some("given up: too many notifications pending".into());
                        self.put(&n);
                        self.drop_body(n.id);
                    }
                }
                _ => {
                    if n.done_at.is_some_and(|t| now - t > KEEP_DONE) {
                        let _ = self.tree.remove(key(n.id));
                        self.drop_body(n.id);
                    }
                }
            }
        }
    }

    /// Wakes [`run`] at once (a notification was queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Sends one HTTP notification (blocking), with an `Idempotency-Key` header naming it:
/// `Ok` on a 2xx answer.
fn post_json(url: &str, json: &str, id: u64) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new().timeout(HTTP_TIMEOUT).build();
    match agent
        .post(url)
        .set("Content-Type", "application/json")
        // The same on every try of this notification: a receiver can drop a repeat.
        .set("Idempotency-Key", &format!("carbonhound-{id}"))
        .set(
            "User-Agent",
            concat!("carbonhound/", env!("CARGO_PKG_VERSION")),
        )
        .send_string(json)
    {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(
                &mut std::io::Read::take(r.into_reader(), MAX_ANSWER_BYTES),
                &mut body,
            );
            let body: String = body.chars().take(200).collect();
            Err(format!("{}: HTTP {code}: {}", public_url(url), body.trim()))
        }
        Err(ureq::Error::Transport(t)) => Err(format!("{}: {}", public_url(url), t.kind())),
    }
}

/// One delivery attempt of `n`.
async fn deliver(n: &Notification, mailer: &Mailer) -> Result<(), String> {
    match &n.body {
        Body::Mail { from, to, eml } => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(eml)
                .map_err(|e| format!("stored message unreadable: {e}"))?;
            mailer
                .send_raw(from, to, &bytes)
                .await
                .map_err(|e| e.to_string())
        }
        Body::Http { url, json } => {
            let (url, json, id) = (url.clone(), json.clone(), n.id);
            tokio::task::spawn_blocking(move || post_json(&url, &json, id))
                .await
                .map_err(|e| e.to_string())?
        }
        Body::Unloaded => Err("the notification's body was not loaded".into()),
    }
}

/// How many notifications each contact may receive per hour and channel: its own
/// `max_per_hour` (of `[[contact]]`), else `[alerting].max_per_hour`; 0: no limit.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// `[alerting].max_per_hour`: every contact's, unless it sets its own.
    pub default: u32,
    /// Contacts with their own `max_per_hour`.
    pub contacts: std::collections::HashMap<String, u32>,
}

impl Limits {
    /// The hourly limit of `contact` (0: none).
    pub fn of(&self, contact: &str) -> u32 {
        self.contacts.get(contact).copied().unwrap_or(self.default)
    }

    /// Whether no contact is limited.
    pub fn is_empty(&self) -> bool {
        self.default == 0 && self.contacts.values().all(|&l| l == 0)
    }
}

/// What one pass of the loop sends: single notifications, and bundles (the rest of a contact's
/// hour when its `max_per_hour` is nearly used up).
#[derive(Debug)]
pub enum Send {
    /// One notification.
    One(Box<Notification>),
    /// Several notifications for one contact and channel, sent as one message.
    Bundle(Vec<Notification>),
}

/// Plans a pass: `due` (from [`Outbox::due`]) against each contact's hourly limit, given what
/// was sent in the hour before `now`. A contact with `r` sends left this hour and `k > r`
/// notifications due gets `r - 1` of them singly and the rest as one bundle (Moira's);
/// with none left, they wait. PagerDuty is never bundled (each event names its incident).
pub fn plan(due: Vec<Notification>, all: &[Notification], limits: &Limits, now: i64) -> Vec<Send> {
    let mut sent: std::collections::HashMap<(String, Channel), u32> = Default::default();
    for n in all {
        if n.status == Delivery::Sent && n.done_at.is_some_and(|t| now - t < 3600) {
            *sent.entry((n.contact.clone(), n.channel)).or_default() += 1;
        }
    }
    let mut lanes: std::collections::BTreeMap<(String, Channel), Vec<Notification>> =
        Default::default();
    let mut out = Vec::new();
    for n in due {
        let limit = limits.of(&n.contact);
        if limit == 0 || n.channel == Channel::Pagerduty {
            out.push(Send::One(Box::new(n)));
        } else {
            lanes
                .entry((n.contact.clone(), n.channel))
                .or_default()
                .push(n);
        }
    }
    for (key, mut ns) in lanes {
        let limit = limits.of(&key.0);
        let left = limit.saturating_sub(sent.get(&key).copied().unwrap_or(0)) as usize;
        if left == 0 {
            continue; // wait for the hour to pass
        }
        if ns.len() <= left {
            out.extend(ns.into_iter().map(|n| Send::One(Box::new(n))));
        } else {
            let rest = ns.split_off(left - 1);
            out.extend(ns.into_iter().map(|n| Send::One(Box::new(n))));
            out.push(Send::Bundle(rest));
        }
    }
    out
}

/// The message a bundle is sent as: a mail listing the notifications with each one attached
/// whole (message/rfc822), or a webhook `{"version": 1, "event": "bundle", "id", "subject",
/// "notifications": [each one's own body]}`, or a Slack text listing the subjects.
fn bundle_body(ns: &[Notification]) -> Result<Body, String> {
    let subject = format!(
        "[BUNDLE] {} notifications for {} (max_per_hour reached)",
        ns.len(),
        ns.first().map(|n| n.contact.as_str()).unwrap_or("")
    );
    let list: Vec<String> = ns.iter().map(|n| format!("- {}", n.subject)).collect();
    match ns.first().map(|n| &n.body) {
        Some(Body::Mail { from, to, .. }) => {
            use lettre::message::{header::ContentType, Attachment, MultiPart, SinglePart};
            let mut b = lettre::Message::builder()
                .from(from.parse().map_err(|e| format!("{from}: {e}"))?)
                .subject(subject.clone());
            for a in to {
                b = b.to(a.parse().map_err(|e| format!("{a}: {e}"))?);
            }
            let mut mp = MultiPart::mixed().singlepart(SinglePart::plain(format!(
                "This contact's max_per_hour is reached; the rest of the hour's notifications come together:\n\n{}\n\nEach is attached whole.\n",
                list.join("\n")
            )));
            let rfc822 = ContentType::parse("message/rfc822").map_err(|e| e.to_string())?;
            for n in ns {
                if let Body::Mail { eml, .. } = &n.body {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(eml)
                        .map_err(|e| e.to_string())?;
                    mp = mp.singlepart(
                        Attachment::new(format!("notification-{}.eml", n.id))
                            .body(bytes, rfc822.clone()),
                    );
                }
            }
            let msg = b.multipart(mp).map_err(|e| e.to_string())?;
            Ok(Body::Mail {
                from: from.clone(),
                to: to.clone(),
                eml: base64::engine::general_purpose::STANDARD.encode(msg.formatted()),
            })
        }
        Some(Body::Http { url, .. }) => {
            let slack = ns.first().is_some_and(|n| n.channel == Channel::Slack);
            let json = if slack {
                serde_json::json!({"text": format!("{subject}\n{}", list.join("\n"))})
            } else {
                let bodies: Vec<serde_json::Value> = ns
                    .iter()
                    .filter_map(|n| match &n.body {
                        Body::Http { json, .. } => serde_json::from_str(json).ok(),
                        _ => None,
                    })
                    .collect();
                serde_json::json!({
                    "version": 1,
                    "event": "bundle",
                    "id": format!("bundle.{}", ns.iter().map(|n| n.id.to_string()).collect::<Vec<_>>().join("-")),
                    "subject": subject,
                    "notifications": bodies,
                })
            };
            Ok(Body::Http {
                url: url.clone(),
                json: json.to_string(),
            })
        }
        Some(Body::Unloaded) | None => Err("an empty bundle".into()),
    }
}

fn settle_one(
    ob: &Outbox,
    n: Notification,
    result: Result<(), String>,
    now: i64,
    give_up_after: Duration,
) {
    match result {
        Ok(()) => {
            tracing::info!(
                "notified {} by {} ({}): \"{}\"",
                n.contact,
                n.channel.as_str(),
                n.destination,
                n.subject
            );
            ob.sent(n, now);
        }
        Err(e) => {
            let (id, contact, channel, subject) =
                (n.id, n.contact.clone(), n.channel, n.subject.clone());
            if ob.failed(n, e.clone(), now, give_up_after) {
                tracing::error!(
                    "GAVE UP notifying {contact} by {} of \"{subject}\" (#{id}) after {}: {e}",
                    channel.as_str(),
                    humantime::format_duration(give_up_after)
                );
            } else {
                tracing::warn!(
                    "notifying {contact} by {} of \"{subject}\" (#{id}) failed, will retry: {e}",
                    channel.as_str()
                );
            }
        }
    }
}

/// The delivery loop: every second (and at once when a notification is queued) it sends
/// what is due, in order and within each contact's `max_per_hour` ([`plan`]), until
/// `cancel`. A delivery in progress finishes first.
pub async fn run(
    outbox: Outbox,
    mailer: Mailer,
    clock: Clock,
    give_up_after: Duration,
    limits: Limits,
    cancel: CancellationToken,
) {
    let mut last_prune = 0i64;
    let limits = Arc::new(limits);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = outbox.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let now = clock();
        let ob = outbox.clone();
        let lim = limits.clone();
        let sends = match tokio::task::spawn_blocking(move || {
            // One read of the tree per pass, for what is due and for the hourly counts.
            let all = ob.all();
            let due = due_of(&all, now);
            let mut sends: Vec<Send> = if lim.is_empty() {
                due.into_iter().map(|n| Send::One(Box::new(n))).collect()
            } else {
                plan(due, &all, &lim, now)
            };
            // Bodies are read only now, for what is sent in this pass.
            for s in sends.iter_mut() {
                let ns: Vec<&mut Notification> = match s {
                    Send::One(n) => vec![&mut **n],
                    Send::Bundle(v) => v.iter_mut().collect(),
                };
                for n in ns {
                    if let Err(e) = ob.load_body(n) {
                        tracing::error!("outbox: {e}");
                    }
                }
            }
            sends
        })
        .await
        {
            Ok(d) => d,
            Err(_) => continue,
        };
        for send in sends {
            if cancel.is_cancelled() {
                return;
            }
            match send {
                Send::One(n) => {
                    let n = *n;
                    let result = deliver(&n, &mailer).await;
                    let now = clock();
                    let ob = outbox.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        settle_one(&ob, n, result, now, give_up_after)
                    })
                    .await;
                }
                Send::Bundle(ns) => {
                    let result = match bundle_body(&ns) {
                        Ok(body) => {
                            let mut b = ns[0].clone();
                            b.body = body;
                            deliver(&b, &mailer).await
                        }
                        Err(e) => Err(e),
                    };
                    let now = clock();
                    let ob = outbox.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        for n in ns {
                            settle_one(&ob, n, result.clone(), now, give_up_after);
                        }
                    })
                    .await;
                }
            }
        }
        if now - last_prune > 3600 {
            last_prune = now;
            let ob = outbox.clone();
            let _ = tokio::task::spawn_blocking(move || ob.prune(now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(rule: &str, contact: &str, created: i64) -> Notification {
        Notification {
            id: 0,
            rule: rule.into(),
            kind: MailKind::Fire,
            contact: contact.into(),
            channel: Channel::Webhook,
            destination: "http://x/…".into(),
            subject: format!("[CRIT] {rule}"),
            created,
            attempts: 0,
            next_try: created,
            last_error: None,
            status: Delivery::Pending,
            done_at: None,
            body: Body::Http {
                url: "http://127.0.0.1:1/hook".into(),
                json: "{}".into(),
            },
        }
    }

    #[test]
    fn queued_in_order_retried_with_backoff_and_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let ob = Outbox::open(&db).unwrap();
        let a1 = ob.enqueue(note("A", "web", 100)).unwrap();
        let a2 = ob.enqueue(note("A", "web", 101)).unwrap();
        let b1 = ob.enqueue(note("B", "web", 101)).unwrap();
        assert!(a1 < a2 && a2 < b1);
        let due: Vec<u64> = ob.due(200).iter().map(|n| n.id).collect();
        assert_eq!(due, vec![a1, b1], "A's second waits for its first");
        let first = ob.due(200).remove(0);
        assert!(!ob.failed(first, "refused".into(), 200, Duration::from_secs(86_400)));
        assert_eq!(
            ob.due(204).iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![b1],
            "A waits 5 s"
        );
        assert_eq!(ob.due(205)[0].id, a1);
        let again = ob.due(205).remove(0);
        ob.failed(again, "refused".into(), 205, Duration::from_secs(86_400));
        assert_eq!(ob.due(214).len(), 1, "then 10 s");
        assert_eq!(ob.due(215).len(), 2);
        let n = ob.due(215).remove(0);
        ob.sent(n, 215);
        assert_eq!(
            ob.due(215).iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![a2, b1]
        );
        // Past give_up_after: given up, the lane opens.
        let b = ob.due(215).into_iter().find(|n| n.id == b1).unwrap();
        assert!(ob.failed(b, "down".into(), 101 + 86_400, Duration::from_secs(86_400)));
        let given = ob.all().into_iter().find(|n| n.id == b1).unwrap();
        assert_eq!(given.status, Delivery::GivenUp);
        assert_eq!(given.last_error.as_deref(), Some("down"));
        assert_eq!(
            ob.take_counts(),
            Delivered {
                mail_sent: 0,
                mail_failed: 0,
                sent: 1,
                failed: 3
            },
            "webhooks: every try counted, none as mail"
        );
        let mut mail = note("M", "ops", 300);
        mail.channel = Channel::Email;
        let m = ob.enqueue(mail).unwrap();
        let mut mail = ob.all().into_iter().find(|n| n.id == m).unwrap();
        ob.failed(mail.clone(), "421".into(), 300, Duration::from_secs(86_400));
        mail.attempts = 1;
        ob.sent(mail, 305);
        assert_eq!(
            ob.take_counts(),
            Delivered {
                mail_sent: 1,
                mail_failed: 1,
                sent: 1,
                failed: 1
            },
            "taken: counted again from zero"
        );
        assert!(ob.tree.remove(key(m)).unwrap().is_some());
        let _ = ob.bodies.remove(key(m));
        assert_eq!(ob.of_rule("A", 10).len(), 2);
        assert_eq!(ob.bodies.len(), 1, "bodies kept only while pending");
        let mut pending = ob.due(300).remove(0);
        assert_eq!(pending.body, Body::Unloaded, "read without its body");
        ob.load_body(&mut pending).unwrap();
        assert!(matches!(pending.body, Body::Http { .. }));
        // Reopened (a restart): everything is still there.
        drop(ob);
        let ob = Outbox::open(&db).unwrap();
        assert_eq!(ob.all().len(), 3);
        ob.prune(215 + KEEP_DONE + 90_000);
        assert_eq!(
            ob.all().len(),
            1,
            "only the pending one is kept after 7 days"
        );
    }

    #[test]
    fn max_per_hour_sends_singly_then_bundles_then_waits() {
        let mut all = Vec::new();
        let mut due = Vec::new();
        for i in 0..5 {
            let mut n = note(&format!("R{i}"), "web", 1000);
            n.id = i;
            due.push(n);
        }
        let mut limits = Limits::default();
        limits.contacts.insert("web".into(), 3);
        let p = plan(due.clone(), &all, &limits, 1000);
        let shape: Vec<usize> = p
            .iter()
            .map(|s| match s {
                Send::One(_) => 1,
                Send::Bundle(v) => v.len(),
            })
            .collect();
        assert_eq!(
            shape,
            vec![1, 1, 3],
            "3 left: 2 singly, the rest as one bundle"
        );
        // Three sent in the last hour: nothing more until it passes.
        for i in 10..13 {
            let mut n = note("X", "web", 900);
            n.id = i;
            n.status = Delivery::Sent;
            n.done_at = Some(950);
            all.push(n);
        }
        assert!(plan(due.clone(), &all, &limits, 1000).is_empty());
        assert_eq!(plan(due.clone(), &all, &limits, 950 + 3600).len(), 3);
        assert_eq!(
            plan(due.clone(), &all, &Limits::default(), 1000).len(),
            5,
            "no limit"
        );
        // [alerting].max_per_hour holds for contacts without their own.
        let global = Limits {
            default: 3,
            contacts: Default::default(),
        };
        assert!(
            plan(due, &all, &global, 1000).is_empty(),
            "3 sent this hour already"
        );
        let body = bundle_body(&[note("A", "web", 1), note("B", "web", 1)]).unwrap();
        let Body::Http { json, .. } = body else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["event"], "bundle");
        assert_eq!(v["notifications"].as_array().unwrap().len(), 2);
    }

    /// A receiver on 127.0.0.1 that answers 503 while `down`, else 200, recording the
    /// bodies it accepted.
    fn receiver(
        down: Arc<std::sync::atomic::AtomicBool>,
    ) -> (u16, Arc<parking_lot::Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let answer = if down.load(std::sync::atomic::Ordering::SeqCst) {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"
                } else {
                    g.lock().push(String::from_utf8_lossy(&body).into_owned());
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                };
                let _ = c.write_all(answer.as_bytes());
            }
        });
        (port, got)
    }

    /// Ten minutes of injected time with the receiver down, then up: every notification
    /// arrives once, in order, after retries on the backoff schedule.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_minutes_down_then_everything_once_in_order() {
        use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let ob = Outbox::open(&db).unwrap();
        let down = Arc::new(AtomicBool::new(true));
        let (port, got) = receiver(down.clone());
        let t0 = 1_700_000_000;
        let now = Arc::new(AtomicI64::new(t0));
        for i in 0..3 {
            let mut n = note("Flappy", "ops", t0);
            n.body = Body::Http {
                url: format!("http://127.0.0.1:{port}/hook"),
                json: format!("{{\"n\": {i}}}"),
            };
            ob.enqueue(n).unwrap();
        }
        let c = now.clone();
        let clock: Clock = Arc::new(move || c.load(Ordering::SeqCst));
        let mailer = Mailer::new(&crate::config::Settings::defaults().smtp).unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            ob.clone(),
            mailer,
            clock,
            Duration::from_secs(86_400),
            Limits::default(),
            cancel.clone(),
        ));
        // Ten minutes, ten seconds at a time.
        for _ in 0..60 {
            now.fetch_add(10, Ordering::SeqCst);
            ob.wake();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        assert!(got.lock().is_empty(), "down: nothing accepted");
        let first = ob.all().into_iter().next().unwrap();
        assert!(
            first.attempts >= 6,
            "retried on the backoff schedule: {} tries",
            first.attempts
        );
        assert!(first
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("503")));
        assert!(ob.all().iter().all(|n| n.status == Delivery::Pending));
        down.store(false, Ordering::SeqCst);
        for _ in 0..120 {
            now.fetch_add(10, Ordering::SeqCst);
            ob.wake();
            tokio::time::sleep(Duration::from_millis(40)).await;
            if got.lock().len() == 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            *got.lock(),
            vec!["{\"n\": 0}", "{\"n\": 1}", "{\"n\": 2}"],
            "once each, in order"
        );
        assert!(ob.all().iter().all(|n| n.status == Delivery::Sent));
        cancel.cancel();
        let _ = task.await;
    }

    #[test]
    fn delays_and_public_urls() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(30), Duration::from_secs(600));
        assert_eq!(
            public_url("https://hooks.slack.com/services/T/B/X"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            public_url("http://u:p@127.0.0.1:9/hook?k=1"),
            "http://127.0.0.1:9/…"
        );
    }
}
