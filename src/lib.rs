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
//! collectd, Monit, StatsD ─plaintext/pickle/UDP─▶ carbon ─points─▶ store::cache ─batches─▶ store::persister ─update_many─▶ *.wsp
//!                                                                       ▲                                                 │
//! Grafana, browsers ─HTTP─▶ api ─▶ query::parse ─▶ query::eval ─▶ store::fetch (cache ∪ whisper) ◀──────────────────────────┘
//!                                                      └──▶ api::formats (json/csv/raw/pickle) or graph (PNG/SVG)
//! alert scheduler ─every interval─▶ query::evaluate ─▶ alert state (sled) ─▶ mail (templates + graph PNG + SMTP)
//! ```
//!
//! - [`carbon`]: the protocols. Pure parsers (plaintext lines with nom, a safe pickle subset),
//!   metric-name and tag rules, and the TCP/UDP listeners that hand points to the store.
//! - [`store`]: the write-back cache (queryable at once), the persister threads that drain it
//!   into whisper files, the metric and tag indexes, and `fetch` merging cache and file.
//! - [`whisper`]: the file format, exactly as whisper.py: create, `update_many`, `fetch`,
//!   propagation with the aggregation method and xFilesFactor. Synchronous, knows nothing else.
//! - [`config`]: settings (embedded defaults ← TOML file ← `CARBONHOUND_*` environment) and
//!   carbon's `storage-schemas.conf` / `storage-aggregation.conf`.
//! - [`python`]: CPython's semantics where graphite-web's output shows them (`repr`, `%`
//!   formatting, `round`, slicing, and the one translator of Python `re` patterns).
//! - [`query`]: the target language — nom parser, `from`/`until` (attime), `Series`, the
//!   evaluator, and the function registry (one file per family under `query::functions`).
//! - [`graph`]: PNG and SVG graphs with plotters and an embedded font.
//! - [`api`]: graphite-web's HTTP endpoints on axum, plus the alert status pages.
//! - [`events`]: graphite-web's event store (deploy markers, `events()`), sled in `data_dir/events`.
//! - [`alert`]: Hound-style threshold rules, their state (sled), reminders and mail (lettre),
//!   evaluated in-process through [`query`] and drawn through [`graph`].
//! - [`cli`]: command-line tools (`carbonhound whisper …`).
//! - [`server`]: wires it all, and takes it down cleanly (listeners, then a full flush).
//!
//! Everything flows one way: ingest never calls query; query never writes; alerting is a
//! client of query and graph, as Hound is of graphite-web, without the HTTP hop.

pub mod alert;
pub mod api;
pub mod carbon;
pub mod cli;
pub mod config;
pub mod events;
pub mod graph;
pub mod python;
pub mod query;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod whisper;
