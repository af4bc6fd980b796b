//! Settings: embedded defaults ← `--config FILE` (TOML) ← `CARBONHOUND_<SECTION>__<KEY>`
//! environment variables, read with the `config` crate; and carbon's own
//! `storage-schemas.conf` / `storage-aggregation.conf` (see [`StorageRules`]).
//!
//! This module knows nothing of the rest of the server (it imports only the whisper types it
//! parses into): it turns text into typed settings once, at load, and says clearly, with the
//! file, line or key, what it could not read. Nothing downstream re-parses a setting.

mod error;
mod ini;
mod keys;
mod maintenance;
mod schemas;
mod value;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

pub use error::ConfigError;
pub use maintenance::{MaintenanceWindow, Weekly, MAX_WINDOWS};
pub use schemas::{
    parse_aggregation, parse_schemas, AggregationRule, SchemaError, SchemaRule, StoragePlan,
    StorageRules,
};
pub use value::{parse_duration, ClusterServer, GraphiteUrl, SmtpTls, ValueError, WalSync};

use crate::whisper::Preallocation;

/// The defaults compiled into the binary; `examples/carbonhound.toml` documents every key.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Shortest `[http].auth_tokens` entry, in characters.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Every setting of a carbonhound server.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Root of everything carbonhound writes: whisper files under `whisper/`, alert state
    /// under `state/`.
    pub data_dir: PathBuf,
    /// Added to the port of every listener address whose port is not 0 (applied once, at
    /// load: the addresses below already carry it), so that a second instance on one machine
    /// moves all four listeners with one setting.
    pub port_offset: u16,
    /// Carbon listeners and storage rules.
    pub carbon: CarbonSettings,
    /// The write-back cache and persister.
    pub cache: CacheSettings,
    /// The HTTP API.
    pub http: HttpSettings,
    /// The event store.
    pub events: EventSettings,
    /// The render API's defaults and limits.
    pub query: QuerySettings,
    /// Federation: the other servers this one answers for.
    pub cluster: ClusterSettings,
    /// The alert evaluator.
    pub alerting: AlertingSettings,
    /// Where alert mail goes out.
    pub smtp: SmtpSettings,
    /// `[[contact]]`: who is told of alerts, and by which channels.
    #[serde(default)]
    pub contact: Vec<ContactSettings>,
    /// `[[route]]`: which contacts a rule's notifications go to, by its labels and level.
    #[serde(default)]
    pub route: Vec<RouteSettings>,
    /// `[[maintenance]]`: weekly windows in which matching rules send no mail.
    #[serde(default, deserialize_with = "maintenance::windows")]
    pub maintenance: Vec<MaintenanceWindow>,
}

/// One `[[contact]]`: a person or team and the channels that reach them. Every channel is
/// optional; a contact needs at least one.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContactSettings {
    /// Unique name, used by `notify = [...]` in rules and `contacts = [...]` in routes.
    pub name: String,
    /// Mail addresses (checked as addresses when alerting starts).
    #[serde(default)]
    pub email: Vec<String>,
    /// A URL that gets one JSON POST per notification (carbonhound's webhook schema, README).
    #[serde(default)]
    pub webhook: String,
    /// A Slack (or Mattermost) incoming-webhook URL.
    #[serde(default)]
    pub slack_webhook: String,
    /// A PagerDuty Events API v2 routing (integration) key.
    #[serde(default)]
    pub pagerduty_routing_key: String,
    /// Where PagerDuty events are posted.
    #[serde(default = "default_pagerduty_url")]
    pub pagerduty_url: String,
    /// At most this many notifications per hour and channel; the rest of the hour's come as
    /// one bundle (Moira's). 0: `[alerting].max_per_hour`. PagerDuty is never bundled.
    #[serde(default)]
    pub max_per_hour: u32,
}

fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_string()
}

/// One `[[route]]`: rules whose labels (and level, as `severity`) match go to `contacts`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// Label = value pairs that must all hold; `severity` matches the notification's level
    /// (`crit`, `warn`, `nodata`, `error`). Empty: every rule.
    #[serde(rename = "match", default)]
    pub matches: std::collections::BTreeMap<String, String>,
    /// Contact names.
    pub contacts: Vec<String>,
    /// Whether a match goes on to the next route (otherwise the first match wins).
    #[serde(rename = "continue", default)]
    pub continue_: bool,
    /// Still unacknowledged this long after the incident began: `escalate_to` are told too.
    #[serde(default, deserialize_with = "value::optional_duration")]
    pub escalate_after: Option<Duration>,
    /// Contacts told when the incident escalates.
    #[serde(default)]
    pub escalate_to: Vec<String>,
}

/// `[carbon]`: the listeners and carbon's storage rule files.
#[derive(Debug, Clone, Deserialize)]
pub struct CarbonSettings {
    /// Plaintext protocol over TCP (`host:port`, "" disables; the form is checked at load,
    /// the host resolved when the listener binds).
    pub plaintext_tcp: String,
    /// Plaintext protocol over UDP, one or more lines per datagram ("" disables).
    pub plaintext_udp: String,
    /// Pickle protocol over TCP ("" disables).
    pub pickle_tcp: String,
    /// Path of a carbon `storage-schemas.conf`; `None` (`""` in the file) for the embedded
    /// default.
    #[serde(default, deserialize_with = "value::optional_path")]
    pub schemas: Option<PathBuf>,
    /// Path of a carbon `storage-aggregation.conf`; `None` (`""`) for the embedded default.
    #[serde(default, deserialize_with = "value::optional_path")]
    pub aggregation: Option<PathBuf>,
    /// Longest plaintext line, in bytes.
    pub max_line_length: usize,
    /// Largest pickle frame, in bytes.
    pub max_pickle_frame: usize,
    /// TCP connections served at once (plaintext and pickle together). At the limit the
    /// longest-idle connection (quiet for 1 s at least) is closed to admit a new one; when
    /// all are busier, new ones wait in the accept queue.
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed, as carbon closes idle
    /// connections (its default is 2 minutes too); zero never closes one.
    #[serde(deserialize_with = "value::duration")]
    pub idle_timeout: Duration,
    /// Interval of the self metrics; zero disables them.
    #[serde(deserialize_with = "value::duration")]
    pub stats_interval: Duration,
    /// Prefix of the self metrics (`carbon.agents`), followed by the host name.
    pub stats_prefix: String,
}

/// `[cache]`: the write-back cache and persister.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    /// Most points held in memory; at the limit listeners pause reading.
    pub max_size: usize,
    /// Persister threads.
    pub writers: usize,
    /// New files per second at most; 0 = unlimited.
    pub max_creates_per_second: u32,
    /// Shortest time between the starts of two passes of one persister thread; zero writes
    /// continuously.
    #[serde(deserialize_with = "value::duration")]
    pub write_interval: Duration,
    /// How new files reserve their space: `fallocate`, `zero` or `sparse`.
    #[serde(deserialize_with = "value::preallocation")]
    pub preallocation: Preallocation,
    /// How often the metric index rescans the data directory.
    #[serde(deserialize_with = "value::duration")]
    pub index_rescan_interval: Duration,
    /// Whether accepted points are logged to `data_dir/wal` before they enter the cache, so a
    /// crash (SIGKILL, power loss) loses at most the last `wal_sync` of them.
    pub wal: bool,
    /// How often the write-ahead log is synced to disk: a duration, or `always` (before a
    /// point counts as received).
    #[serde(deserialize_with = "value::wal_sync")]
    pub wal_sync: WalSync,
    /// Whether whisper files whose archives differ from their storage-schemas rule are
    /// rewritten to the rule's archives in the background (`store::RetentionScanner`).
    pub migrate_retentions: bool,
    /// Most files migrated per second (at least 1).
    pub migrate_per_second: u32,
    /// Whisper files the writers keep open between writes, all writers together, so a
    /// metric's next update need not open its file again; `None` (`"auto"`, the default):
    /// three quarters of what the open-file limit leaves after the readers and
    /// `carbon.max_connections` (`store::Store::size_open_files`); 0 keeps none.
    #[serde(deserialize_with = "value::count_or_auto")]
    pub open_files: Option<usize>,
}

/// `[http]`: where the API listens and who may write (see README "Security").
#[derive(Clone, Deserialize)]
pub struct HttpSettings {
    /// `host:port` of the HTTP API; port 0 picks a free port. Also decides whether writes
    /// are open without credentials: only when every address it names is loopback.
    pub listen: String,
    /// Longest time a client may take to send a complete request line and headers, counted
    /// from the connection's start or, on a keep-alive connection, from the first byte of the
    /// next request; the connection is closed beyond it (slow-header clients). Zero: no limit.
    #[serde(deserialize_with = "value::duration")]
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body (not the whole body); the request
    /// fails beyond it. Zero: no limit.
    #[serde(deserialize_with = "value::duration")]
    pub body_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests before it is closed.
    /// Zero: no limit.
    #[serde(deserialize_with = "value::duration")]
    pub keepalive_timeout: Duration,
    /// Bearer tokens (`Authorization: Bearer <token>`) any of which allows writes; at least
    /// 16 characters each (checked at load). Empty: no token auth.
    pub auth_tokens: Vec<String>,
    /// Whether reads (render, find, tags, events, status pages, `/health`) need credentials
    /// too; graphite-web leaves them open, so `false` is the default.
    pub protect_reads: bool,
    /// `[[http.users]]`: basic-auth users, each with an argon2 PHC hash
    /// (`carbonhound hash-password` prints one). Empty: no basic auth.
    pub users: Vec<HttpUser>,
}

impl HttpSettings {
    /// Whether any credentials are configured (tokens or users).
    pub fn has_credentials(&self) -> bool {
        !self.auth_tokens.is_empty() || !self.users.is_empty()
    }

    /// The URL a command-line tool on this machine reaches the server at:
    /// `http://<listen>`, a wildcard host (`0.0.0.0`, `[::]`, none) read as loopback.
    pub fn local_url(&self) -> String {
        let listen = match self.listen.rsplit_once(':') {
            Some(("0.0.0.0", port)) | Some(("", port)) => format!("127.0.0.1:{port}"),
            Some(("[::]", port)) => format!("[::1]:{port}"),
            _ => self.listen.clone(),
        };
        format!("http://{listen}")
    }
}

/// Not derived: the tokens are secrets and settings may be printed; the count is shown.
impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("listen", &self.listen)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field(
                "auth_tokens",
                &format_args!("[{} hidden]", self.auth_tokens.len()),
            )
            .field("protect_reads", &self.protect_reads)
            .field("users", &self.users)
            .finish()
    }
}

/// One `[[http.users]]` table: `{ name, password_hash }`. Other keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpUser {
    /// The basic-auth user name (no `:`, as RFC 7617 requires).
    pub name: String,
    /// An argon2 hash in PHC string form (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), checked
    /// as such at load; never the password itself.
    pub password_hash: String,
}

/// `[events]`: the event store (`POST /events/`).
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Most events stored, all together; a post beyond it is refused (HTTP 507) naming this
    /// setting, so a runaway script cannot fill the disk.
    pub max_events: usize,
}

/// `[query]`: render defaults and limits.
#[derive(Debug, Clone, Deserialize)]
pub struct QuerySettings {
    /// Time zone used when a request has no `tz` (an IANA name in the file, as
    /// graphite-web's `TIME_ZONE`).
    #[serde(deserialize_with = "value::time_zone")]
    pub timezone: Tz,
    /// Most `target`s in one request (HTTP 400 beyond).
    pub max_targets: usize,
    /// Most series one path expression may match (HTTP 400 beyond).
    pub max_series_per_target: usize,
    /// Most datapoints in one response, all series together (HTTP 413 beyond).
    pub max_points_per_response: usize,
    /// Deepest nesting of function calls in a target (HTTP 400 beyond).
    pub max_expression_depth: usize,
    /// Longest time a request may take (HTTP 503 beyond).
    #[serde(deserialize_with = "value::duration")]
    pub request_timeout: Duration,
    /// Largest POST body, in bytes (HTTP 413 beyond).
    pub max_body_bytes: usize,
    /// Bytes every render together may hold in series data (see
    /// [`crate::query::MemoryBudget`]); `None` (`"auto"`, the default): a quarter of the
    /// machine's RAM, at most 512 MiB ([`QuerySettings::memory_budget`]).
    #[serde(deserialize_with = "value::byte_size")]
    pub max_memory: Option<usize>,
    /// Path of a graphite-web `graphTemplates.conf` (its GRAPHTEMPLATES_CONF), read at start,
    /// for the render parameter `template`; `None` (`""`) for glyph.py's built-in defaults.
    #[serde(default, deserialize_with = "value::optional_path")]
    pub graph_templates: Option<PathBuf>,
}

impl QuerySettings {
    /// The render memory budget in bytes: `max_memory`, or for `"auto"` a quarter of the
    /// RAM `/proc/meminfo` reports, at most 512 MiB (512 MiB when it cannot be read).
    pub fn memory_budget(&self) -> usize {
        const CAP: usize = 512 << 20;
        self.max_memory.unwrap_or_else(|| {
            let total = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| {
                    m.lines()
                        .find_map(|l| l.strip_prefix("MemTotal:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
                })
                .map(|kib| kib * 1024);
            total.map_or(CAP, |t| (t / 4).min(CAP))
        })
    }
}

/// `[cluster]`: federation, as graphite-web's `CLUSTER_SERVERS` with
/// `REMOTE_STORE_MERGE_RESULTS = True` (see [`crate::query::Cluster`]).
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterSettings {
    /// The other servers finds, renders and alert rules also ask (graphite-web's
    /// `CLUSTER_SERVERS`); empty: this server's own data only.
    #[serde(deserialize_with = "value::cluster_servers")]
    pub servers: Vec<ClusterServer>,
    /// Bound on each call to a server, connecting and reading the whole answer together
    /// (graphite-web's `REMOTE_FIND_TIMEOUT` / `REMOTE_FETCH_TIMEOUT`, 3 s and 6 s there);
    /// never zero.
    #[serde(deserialize_with = "value::duration")]
    pub remote_timeout: Duration,
    /// How long a server that failed is not asked again (graphite-web's
    /// `REMOTE_RETRY_DELAY`, 60 s); zero asks it every time.
    #[serde(deserialize_with = "value::duration")]
    pub retry_delay: Duration,
}

/// `[alerting]`.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertingSettings {
    /// Folder of `*.toml` rule files.
    pub rules_dir: PathBuf,
    /// Folder of user-editable templates; built-in templates fill any gap.
    pub templates_dir: PathBuf,
    /// How often every rule is evaluated.
    #[serde(deserialize_with = "value::duration")]
    pub interval: Duration,
    /// Sender address of alert mail.
    pub email_from: String,
    /// Default recipients, for rules that name none.
    pub email_to: Vec<String>,
    /// Recipients of `[ERROR]` mail (a rule that cannot be evaluated); empty: `email_to`.
    pub admin_email: Vec<String>,
    /// More incidents than this starting in one check are announced as one summary per
    /// contact and channel (Hound's GlobalThrottle); 0 turns it off.
    pub throttle: usize,
    /// At most this many notifications per contact, hour and channel, the rest as one bundle
    /// (Moira's); a contact's own `max_per_hour` overrides it. 0: no limit.
    pub max_per_hour: u32,
    /// How long an undeliverable notification is retried before it is given up.
    #[serde(deserialize_with = "value::duration")]
    pub give_up_after: Duration,
    /// Base URL of this server as mail readers reach it, for links; empty: the address the
    /// HTTP listener bound (a WARN at start-up when that is a loopback address).
    pub base_url: String,
    /// Remote mode: the Graphite render API (graphite-web, carbonapi, another carbonhound)
    /// whose `/render?format=json` rules are evaluated against and mail graphs drawn from;
    /// `None` (`""` in the file, the default) evaluates rules in-process on this server's
    /// own store.
    #[serde(default, deserialize_with = "value::graphite_url")]
    pub graphite_url: Option<GraphiteUrl>,
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    /// SMTP server host.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: SmtpTls,
    /// Login name; `None` (`""` in the file) for no authentication.
    #[serde(default, deserialize_with = "value::non_empty")]
    pub username: Option<String>,
    /// Password for `username`.
    #[serde(default)]
    pub password: String,
    /// Connection and command timeout; never zero (`"0s"` in the file reads as lettre's
    /// usual 30 s).
    #[serde(deserialize_with = "value::smtp_timeout")]
    pub timeout: Duration,
}

impl Settings {
    /// Loads settings: the embedded defaults, then `file` if given (TOML), then environment
    /// variables `CARBONHOUND_<SECTION>__<KEY>` (e.g. `CARBONHOUND_SMTP__PORT=2525`,
    /// `CARBONHOUND_DATA_DIR=/var/lib/carbonhound`; lists comma-separated).
    ///
    /// Every value is parsed here, once: errors name the file or variable and the key that
    /// failed, and nothing later falls back to a default.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, true)
    }

    /// As [`Settings::load`], with or without the environment layer (tests use `false`).
    pub fn load_with_env(file: Option<&Path>, env: bool) -> Result<Settings, ConfigError> {
        use config::{Config, Environment, File, FileFormat};
        let known: toml::Table = DEFAULTS_TOML.parse().expect("embedded defaults are TOML");
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile {
                    path: path.to_path_buf(),
                });
            }
            if let Ok(text) = std::fs::read_to_string(path) {
                keys::check_file(path, &text, &known)?;
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        if env {
            keys::check_env(std::env::vars(), &known)?;
            builder = builder.add_source(
                Environment::with_prefix("CARBONHOUND")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("alerting.email_to")
                    .with_list_parse_key("alerting.admin_email")
                    .with_list_parse_key("http.auth_tokens")
                    .with_list_parse_key("cluster.servers")
                    .try_parsing(true),
            );
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        settings.apply_port_offset()?;
        Ok(settings)
    }

    /// Settings from TOML `text` over the embedded defaults, with no file and no environment,
    /// checked exactly as a `--config` file is (unknown keys, types, ranges); `origin` names
    /// the text in errors. For tools and the fuzz target of the settings parser.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Settings, ConfigError> {
        use config::{Config, File, FileFormat};
        let known: toml::Table = DEFAULTS_TOML.parse().expect("embedded defaults are TOML");
        keys::check_file(origin, text, &known)?;
        let builder = Config::builder()
            .add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml))
            .add_source(File::from_str(text, FileFormat::Toml));
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        settings.apply_port_offset()?;
        Ok(settings)
    }

    /// The embedded defaults alone.
    pub fn defaults() -> Settings {
        Self::load_with_env(None, false).expect("embedded defaults are valid")
    }

    /// The checks that span more than one value's syntax: ranges and listen addresses.
    /// Contacts have unique names and at least one channel with http(s) URLs; routes name
    /// contacts that exist.
    fn check_contacts(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.contact.iter().enumerate() {
            let at = format!("[[contact]] #{} ({:?})", i + 1, c.name);
            if c.name.trim().is_empty() || c.name.chars().any(char::is_control) {
                return Err(invalid("contact.name", format!("{at}: needs a name")));
            }
            if !names.insert(c.name.as_str()) {
                return Err(invalid(
                    "contact.name",
                    format!("{at}: the name is used twice"),
                ));
            }
            if c.email.is_empty()
                && c.webhook.is_empty()
                && c.slack_webhook.is_empty()
                && c.pagerduty_routing_key.is_empty()
            {
                return Err(invalid(
                    "contact",
                    format!("{at}: give at least one of email, webhook, slack_webhook, pagerduty_routing_key"),
                ));
            }
            for (key, url) in [
                ("contact.webhook", &c.webhook),
                ("contact.slack_webhook", &c.slack_webhook),
                ("contact.pagerduty_url", &c.pagerduty_url),
            ] {
                if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(
                        key,
                        format!("{at}: '{url}' is not an http:// or https:// URL"),
                    ));
                }
            }
        }
        for (i, r) in self.route.iter().enumerate() {
            if r.contacts.is_empty() {
                return Err(invalid(
                    "route.contacts",
                    format!("[[route]] #{}: names no contact", i + 1),
                ));
            }
            if r.escalate_after.is_some() == r.escalate_to.is_empty() {
                return Err(invalid(
                    "route.escalate_after",
                    format!(
                        "[[route]] #{}: escalate_after and escalate_to go together",
                        i + 1
                    ),
                ));
            }
            for c in r.contacts.iter().chain(&r.escalate_to) {
                if !names.contains(c.as_str()) {
                    return Err(invalid(
                        "route.contacts",
                        format!("[[route]] #{}: no [[contact]] is named {c:?}", i + 1),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_string(),
        };
        if self.cache.writers == 0 {
            return Err(invalid("cache.writers", "must be at least 1"));
        }
        if self.cache.migrate_per_second == 0 {
            return Err(invalid("cache.migrate_per_second", "must be at least 1"));
        }
        if self.cache.max_size == 0 {
            return Err(invalid("cache.max_size", "must be at least 1"));
        }
        if self.alerting.interval.is_zero() {
            return Err(invalid("alerting.interval", "must be more than 0s"));
        }
        if self.cluster.remote_timeout.is_zero() {
            return Err(invalid("cluster.remote_timeout", "must be more than 0s"));
        }
        if self.events.max_events == 0 {
            return Err(invalid("events.max_events", "must be at least 1"));
        }
        self.check_contacts()?;
        self.check_credentials()?;
        if self.http.protect_reads && !self.http.has_credentials() {
            return Err(invalid(
                "http.protect_reads",
                "needs http.auth_tokens or [[http.users]] (nobody could read otherwise)",
            ));
        }
        let listeners = [
            ("carbon.plaintext_tcp", &self.carbon.plaintext_tcp, true),
            ("carbon.plaintext_udp", &self.carbon.plaintext_udp, true),
            ("carbon.pickle_tcp", &self.carbon.pickle_tcp, true),
            ("http.listen", &self.http.listen, false),
        ];
        for (key, value, may_be_off) in listeners {
            value::check_listen(value, may_be_off).map_err(|reason| invalid(key, &reason))?;
        }
        Ok(())
    }

    /// `[http]` tokens and users: tokens long enough to resist guessing, user names basic
    /// auth can carry, no name twice, and hashes that are argon2 PHC strings (so a pasted
    /// plain password is refused at load, not at the first login).
    fn check_credentials(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
        for (n, token) in self.http.auth_tokens.iter().enumerate() {
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(invalid(
                    "http.auth_tokens",
                    format!(
                        "entry {} is shorter than {MIN_TOKEN_CHARS} characters",
                        n + 1
                    ),
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for user in &self.http.users {
            if user.name.is_empty() || user.name.contains(':') {
                return Err(invalid(
                    "http.users",
                    format!("name '{}' must be non-empty and without ':'", user.name),
                ));
            }
            if !names.insert(user.name.as_str()) {
                return Err(invalid(
                    "http.users",
                    format!("name '{}' appears twice", user.name),
                ));
            }
            let hash = password_hash::PasswordHash::new(&user.password_hash).map_err(|e| {
                invalid(
                    "http.users",
                    format!(
                        "password_hash of '{}' is not a PHC string ({e}); \
                         `carbonhound hash-password` prints one",
                        user.name
                    ),
                )
            })?;
            if !hash.algorithm.as_str().starts_with("argon2") {
                return Err(invalid(
                    "http.users",
                    format!(
                        "password_hash of '{}' uses {}, not argon2",
                        user.name, hash.algorithm
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Adds `port_offset` to every listener address with a non-zero port (addresses were
    /// checked as `host:port` already). An offset that would pass port 65535 is refused,
    /// naming the listener.
    fn apply_port_offset(&mut self) -> Result<(), ConfigError> {
        if self.port_offset == 0 {
            return Ok(());
        }
        let offset = self.port_offset;
        let listeners = [
            ("carbon.plaintext_tcp", &mut self.carbon.plaintext_tcp),
            ("carbon.plaintext_udp", &mut self.carbon.plaintext_udp),
            ("carbon.pickle_tcp", &mut self.carbon.pickle_tcp),
            ("http.listen", &mut self.http.listen),
        ];
        for (key, addr) in listeners {
            let Some((host, port)) = addr.rsplit_once(':') else {
                continue; // "" (disabled)
            };
            let port: u16 = port.parse().expect("checked as host:port");
            if port == 0 {
                continue;
            }
            let moved = port
                .checked_add(offset)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "port_offset",
                    reason: format!("{key} port {port} + {offset} is past 65535"),
                })?;
            *addr = format!("{host}:{moved}");
        }
        Ok(())
    }

    /// Reads the storage rule files `[carbon].schemas` and `[carbon].aggregation` name (the
    /// embedded carbon defaults where they are unset). Errors name the file and line.
    pub fn storage_rules(&self) -> Result<StorageRules, SchemaError> {
        StorageRules::load(
            self.carbon.schemas.as_deref(),
            self.carbon.aggregation.as_deref(),
        )
    }

    /// Where whisper files live: `data_dir/whisper`.
    pub fn whisper_dir(&self) -> PathBuf {
        self.data_dir.join("whisper")
    }

    /// Where the write-ahead log's segments live: `data_dir/wal`.
    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("wal")
    }

    /// Where alert state (sled) lives: `data_dir/state`.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_match_the_documented_ones() {
        let s = Settings::defaults();
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.carbon.plaintext_tcp, "127.0.0.1:2003");
        assert_eq!(s.http.listen, "127.0.0.1:8080");
        assert_eq!(s.alerting.rules_dir, PathBuf::from("./alerts.d"));
        assert_eq!(s.alerting.interval, Duration::from_secs(60));
        assert_eq!(s.smtp.host, "localhost");
        assert_eq!(s.smtp.port, 25);
        assert_eq!(s.smtp.tls, SmtpTls::None);
        assert_eq!(s.alerting.email_to, vec!["root@localhost".to_string()]);
        assert_eq!(s.cache.preallocation, Preallocation::Fallocate);
        assert!(s.cache.wal);
        assert_eq!(s.cache.wal_sync, WalSync::Every(Duration::from_secs(1)));
        assert_eq!(s.query.timezone, Tz::UTC);
        assert_eq!(s.carbon.schemas, None, "\"\" is the embedded default");
        assert_eq!(s.smtp.username, None, "\"\" is no login");
        assert!(
            !s.cache.migrate_retentions,
            "migration is asked for, never assumed"
        );
        assert_eq!(s.cache.migrate_per_second, 20);
    }

    #[test]
    fn migrate_per_second_must_be_at_least_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[cache]\nmigrate_retentions = true\nmigrate_per_second = 0\n",
        )
        .unwrap();
        let e = Settings::load_with_env(Some(&path), false)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("cache.migrate_per_second"), "{e}");
    }

    #[test]
    fn typed_values_parse_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[carbon]\nschemas = \"/etc/carbon/storage-schemas.conf\"\nplaintext_udp = \"\"\n\
             [cache]\npreallocation = \"sparse\"\n[query]\ntimezone = \"Europe/Berlin\"\n\
             [smtp]\ntls = \"tls\"\nusername = \"ops\"\ntimeout = \"0s\"\n[http]\nlisten = \"localhost:0\"\n",
        )
        .unwrap();
        let s = Settings::load_with_env(Some(&path), false).unwrap();
        assert_eq!(
            s.carbon.schemas.as_deref(),
            Some(Path::new("/etc/carbon/storage-schemas.conf"))
        );
        assert_eq!(s.carbon.plaintext_udp, "");
        assert_eq!(s.cache.preallocation, Preallocation::Sparse);
        assert_eq!(s.query.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(s.smtp.tls, SmtpTls::Tls);
        assert_eq!(s.smtp.username.as_deref(), Some("ops"));
        assert_eq!(s.smtp.timeout, Duration::from_secs(30), "0s reads as 30s");
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        // examples/carbonhound.toml documents every key with its default value.
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/carbonhound.toml");
        let from_example = Settings::load_with_env(Some(&example), false).unwrap();
        assert_eq!(
            format!("{from_example:?}"),
            format!("{:?}", Settings::defaults())
        );
        let text = std::fs::read_to_string(&example).unwrap();
        let documented: toml::Table = toml::from_str(&text).unwrap();
        let defaults: toml::Table = toml::from_str(DEFAULTS_TOML).unwrap();
        for (section, value) in &defaults {
            match value.as_table() {
                Some(keys) => {
                    for key in keys.keys() {
                        assert!(
                            documented.get(section).and_then(|s| s.get(key)).is_some(),
                            "examples/carbonhound.toml lacks [{section}] {key}"
                        );
                    }
                }
                None => assert!(
                    documented.contains_key(section),
                    "examples/carbonhound.toml lacks {section}"
                ),
            }
        }
    }

    #[test]
    fn http_users_are_tables_with_argon2_hashes_and_tokens_are_long() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$6sFlzZ+VeN0A/FQfHqozFg$\
                    jDq9JTQu5+9DZXAcfj7BxTGdvwAuC3mLRUJEk/dn6GM";
        let load = |text: String| {
            std::fs::write(&path, text).unwrap();
            Settings::load_with_env(Some(&path), false).map_err(|e| e.to_string())
        };
        let s = load(format!(
            "[http]\nauth_tokens = [\"0123456789abcdef\"]\nprotect_reads = true\n\
             [[http.users]]\nname = \"deploy\"\npassword_hash = \"{hash}\"\n\
             [[http.users]]\nname = \"grafana\"\npassword_hash = \"{hash}\"\n"
        ))
        .unwrap();
        assert_eq!(s.http.users.len(), 2);
        assert_eq!(s.http.users[1].name, "grafana");
        assert!(s.http.protect_reads && s.http.has_credentials());
        assert!(
            !format!("{s:?}").contains("0123456789abcdef"),
            "tokens not shown"
        );
        let e = load("[http]\nauth_tokens = [\"short\"]\n".into()).unwrap_err();
        assert!(e.contains("http.auth_tokens") && e.contains("16"), "{e}");
        let e = load("[[http.users]]\nname = \"a\"\npassword_hash = \"plain password\"\n".into())
            .unwrap_err();
        assert!(
            e.contains("http.users") && e.contains("hash-password"),
            "{e}"
        );
        let e = load(format!(
            "[[http.users]]\nname = \"a\"\npassword = \"x\"\npassword_hash = \"{hash}\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("password"), "{e}");
        let e = load("[http]\nprotect_reads = true\n".into()).unwrap_err();
        assert!(e.contains("http.protect_reads"), "{e}");
        let e = load("[events]\nmax_events = 0\n".into()).unwrap_err();
        assert!(e.contains("events.max_events"), "{e}");
    }

    #[test]
    fn a_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\n[smtp]\nport = 2525\ntls = \"starttls\"\n",
        )
        .unwrap();
        let s = Settings::load_with_env(Some(&path), false).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.smtp.port, 2525);
        assert_eq!(s.smtp.tls, SmtpTls::StartTls);
        assert_eq!(s.http.listen, "127.0.0.1:8080");
    }

    #[test]
    fn port_offset_moves_every_listener_but_port_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "port_offset = 100\n[carbon]\nplaintext_udp = \"\"\npickle_tcp = \"[::1]:0\"\n",
        )
        .unwrap();
        let s = Settings::load_with_env(Some(&path), false).unwrap();
        assert_eq!(s.carbon.plaintext_tcp, "127.0.0.1:2103");
        assert_eq!(s.carbon.plaintext_udp, "", "a disabled listener stays off");
        assert_eq!(
            s.carbon.pickle_tcp, "[::1]:0",
            "port 0 still picks a free port"
        );
        assert_eq!(s.http.listen, "127.0.0.1:8180");
        std::fs::write(&path, "port_offset = 65000\n").unwrap();
        let e = Settings::load_with_env(Some(&path), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("port_offset") && e.contains("carbon.plaintext_tcp port 2003"),
            "{e}"
        );
    }

    #[test]
    fn graphite_url_is_a_checked_base_url_whose_password_is_never_shown() {
        assert_eq!(
            Settings::defaults().alerting.graphite_url,
            None,
            "\"\" is in-process"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let load = |v: &str| {
            std::fs::write(&path, format!("[alerting]\ngraphite_url = {v:?}\n")).unwrap();
            Settings::load_with_env(Some(&path), false).map_err(|e| e.to_string())
        };
        let s = load("https://ops:s%40cret@graphite.example.com/gw/").unwrap();
        let url = s.alerting.graphite_url.clone().unwrap();
        assert_eq!(url.public(), "https://graphite.example.com/gw");
        assert_eq!(
            url.credentials(),
            Some(("ops".to_string(), "s@cret".to_string()))
        );
        assert!(
            !format!("{s:?}").contains("cret"),
            "Debug hides the password"
        );
        assert_eq!(
            load("http://127.0.0.1:8080")
                .unwrap()
                .alerting
                .graphite_url
                .unwrap()
                .to_string(),
            "http://127.0.0.1:8080"
        );
        for (bad, why) in [
            ("graphite:8080", "http"),
            ("ftp://graphite", "http"),
            ("http://graphite/render/", "without /render"),
            ("http://graphite/?target=x", "query"),
        ] {
            let e = load(bad).unwrap_err();
            assert!(
                e.contains("alerting.graphite_url") && e.contains(why),
                "{bad}: {e}"
            );
        }
        let e = load("http://ops:hunter2@graph ite/").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("***@"), "{e}");
    }

    #[test]
    fn cluster_servers_are_host_port_or_base_urls() {
        let s = Settings::defaults();
        assert!(s.cluster.servers.is_empty(), "no federation by default");
        assert_eq!(s.cluster.remote_timeout, Duration::from_secs(5));
        assert_eq!(s.cluster.retry_delay, Duration::from_secs(60));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Settings::load_with_env(Some(&path), false).map_err(|e| e.to_string())
        };
        let s = load(
            "[cluster]\nservers = [\"10.0.0.2:8080\", \"http://b.example/gw/\", \" \", \
             \"https://c.example\"]\nremote_timeout = \"1500ms\"\nretry_delay = \"0s\"\n",
        )
        .unwrap();
        let urls: Vec<(&str, &str)> = s
            .cluster
            .servers
            .iter()
            .map(|c| (c.name(), c.base_url()))
            .collect();
        assert_eq!(
            urls,
            vec![
                ("10.0.0.2:8080", "http://10.0.0.2:8080"),
                ("http://b.example/gw", "http://b.example/gw"),
                ("https://c.example", "https://c.example"),
            ]
        );
        assert_eq!(s.cluster.remote_timeout, Duration::from_millis(1500));
        assert!(s.cluster.retry_delay.is_zero());
        for (bad, why) in [
            ("[cluster]\nservers = [\"ftp://a\"]\n", "http://"),
            ("[cluster]\nservers = [\"a:1?format=pickle\"]\n", "query"),
            ("[cluster]\nservers = [\"u:pw@a:1\"]\n", "password"),
            ("[cluster]\nservers = [\"a:1\", \"http://a:1/\"]\n", "twice"),
            (
                "[cluster]\nremote_timeout = \"0s\"\n",
                "cluster.remote_timeout",
            ),
            ("[cluster]\nserver = []\n", "servers"),
        ] {
            let e = load(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = load("[cluster]\nservers = [\"u:hunter2@a:1\"]\n").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn wal_sync_is_a_duration_or_always() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for (text, want) in [
            ("always", WalSync::Always),
            ("200ms", WalSync::Every(Duration::from_millis(200))),
        ] {
            std::fs::write(
                &path,
                format!("[cache]\nwal = false\nwal_sync = \"{text}\"\n"),
            )
            .unwrap();
            let s = Settings::load_with_env(Some(&path), false).unwrap();
            assert_eq!(s.cache.wal_sync, want);
            assert!(!s.cache.wal);
        }
        std::fs::write(&path, "[cache]\nwal_sync = \"0s\"\n").unwrap();
        let e = Settings::load_with_env(Some(&path), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cache.wal_sync") && e.contains("always"), "{e}");
    }

    /// `[cache] open_files`: "auto" (the default) or a whole number, given as a TOML integer
    /// or string; anything else is refused with the key.
    #[test]
    fn open_files_is_auto_or_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        assert_eq!(Settings::defaults().cache.open_files, None);
        for (text, want) in [
            ("\"auto\"", None),
            ("0", Some(0)),
            ("5000", Some(5000)),
            ("\"12\"", Some(12)),
        ] {
            std::fs::write(&path, format!("[cache]\nopen_files = {text}\n")).unwrap();
            let s = Settings::load_with_env(Some(&path), false).unwrap();
            assert_eq!(s.cache.open_files, want, "{text}");
        }
        for bad in ["\"lots\"", "-1"] {
            std::fs::write(&path, format!("[cache]\nopen_files = {bad}\n")).unwrap();
            let e = Settings::load_with_env(Some(&path), false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("cache.open_files"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[smtp]\ntls = \"ssl\"\n").unwrap();
        let e = Settings::load_with_env(Some(&path), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("smtp.tls"), "{e}");
        std::fs::write(&path, "[alerting]\ninterval = \"soon\"\n").unwrap();
        let e = Settings::load_with_env(Some(&path), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("soon"), "{e}");
        for (text, key) in [
            ("[query]\ntimezone = \"Mars/Olympus\"\n", "query.timezone"),
            ("[cache]\npreallocation = \"lazy\"\n", "cache.preallocation"),
            ("[cache]\nwal_sync = \"sometimes\"\n", "cache.wal_sync"),
            ("[http]\nlisten = \"8080\"\n", "http.listen"),
            (
                "[carbon]\npickle_tcp = \"localhost\"\n",
                "carbon.pickle_tcp",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Settings::load_with_env(Some(&path), false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
        let e = Settings::load_with_env(Some(&dir.path().join("missing.toml")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
    }
}
