//! carbonhound: one binary doing the job of carbon-cache, graphite-web and Hound.
//!
//! Collectd, Monit and anything else that speaks carbon push points in; the points are kept
//! in Whisper 1.1 files (readable by every Graphite tool); graphite-web's render API serves
//! them to Grafana and to our own pages; threshold rules mail on-call with a graph of what
//! went wrong.
//!
//! # Layout, in the order data moves
//!
//! ```text
//! collectd, Monit, StatsD ─plaintext/pickle/UDP─▶ carbon ─points─▶ store (cache) ─batches─▶ store (persister) ─update_many─▶ *.wsp
//!                                                                      ▲                                                     │
//! Grafana, browsers ─HTTP─▶ api ─▶ query::parse ─▶ query::eval ─▶ MetricSource ─ LocalSource: store (cache ∪ whisper) ◀──────┘
//!                                                      │            (trait)       + events
//!                                                      │              └─ ClusterSource: + [cluster] servers (HTTP, local=1), merged
//!                                                      └──▶ api formats (json/csv/raw/pickle) or graph (PNG/SVG)
//! alert scheduler ─every interval─▶ query::evaluate ─▶ alert state (sled) ─▶ mail (templates + graph PNG + SMTP)
//! ```
//!
//! - [`carbon`]: the protocols. Pure parsers (plaintext lines with nom, a safe pickle subset),
//!   metric-name and tag rules, the ingest path a connection feeds (`ingest`), the TCP/UDP
//!   listeners, and the self metrics.
//! - [`store`]: the write-ahead log (`data_dir/wal`, replayed at start), the write-back cache
//!   (queryable at once), the persister threads that drain it into whisper files, the metric and
//!   tag indexes, open readers, and `fetch` merging cache and file. Knows nothing of query or HTTP.
//! - [`whisper`]: the file format, exactly as whisper.py: create, `update_many`, `fetch`,
//!   propagation with the aggregation method and xFilesFactor. Synchronous, knows nothing else.
//! - [`config`]: settings (embedded defaults ← TOML file ← `CARBONHOUND_*` environment), parsed
//!   once into types, unknown keys refused; carbon's `storage-schemas.conf` /
//!   `storage-aggregation.conf`.
//! - [`python`]: the one place that emulates CPython where graphite-web's answers depend on it
//!   (`re` on fancy-regex, `%`-formatting, `repr`, `json.dumps`, `str` methods, rounding).
//! - [`events`]: graphite-web's event store (deploy markers), sled in `data_dir/events`.
//! - [`query`]: the target language — nom parser, `from`/`until` (attime), `Series`, the
//!   evaluator, the [`query::MetricSource`] trait it reads through (the local store, an
//!   in-memory source for tests, and [`query::ClusterSource`]: the local store merged with
//!   the `[cluster] servers`, asked with `local=1`), and the functions (each `FunctionDef` beside its
//!   code, one file per family under `query::functions`).
//! - [`graph`]: PNG and SVG graphs drawn in glyph.py's steps (title, legend, axes, grid, lines),
//!   each taking its room off the plot area; an embedded font.
//! - [`api`]: graphite-web's HTTP endpoints on axum, `/health`, and the alert status pages.
//! - [`alert`]: Hound-style threshold rules, their state (sled), reminders and mail (lettre),
//!   evaluated in-process through [`query`] and drawn through [`graph`].
//! - [`cli`]: command-line tools (`carbonhound whisper …`; `carbonhound metrics …`, a client of
//!   the running server's lifecycle routes).
//! - [`server`]: wires it all, and takes it down cleanly (listeners, then a full flush).
//!
//! Everything flows one way: ingest never calls query; query never writes; alerting is a
//! client of query and graph, as Hound is of graphite-web, without the HTTP hop. Which module
//! may use which is written in `ARCHITECTURE.md` and checked by `tests/architecture.rs`.

pub mod alert;
pub mod api;
pub mod carbon;
pub mod cli;
pub mod config;
pub mod events;
pub mod graph;
pub mod malloc;
pub mod python;
pub mod query;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod whisper;
