//! `carbonhound serve`: wires the parts together in data-path order — store and persisters,
//! the event store, alerting, carbon listeners, the HTTP API (graphite-web's routes,
//! `/health`, the status pages), the periodic index rescan and the self metrics — and takes
//! them down in a fixed order on SIGTERM/SIGINT so that every accepted point reaches disk.
//!
//! Owns start-up wiring and the shutdown sequence only: settings are parsed by
//! [`crate::config`], handlers live in [`crate::api`], alerting in [`crate::alert`]. Nothing
//! imports this module but `main.rs` (and the integration tests).
//!
//! SIGHUP reloads the storage rules and the alert rules; a bad file is refused (with its
//! path and line) and the old rules stay. Good storage rules start a new retention scan
//! (`store::RetentionScanner`: files whose archives differ from the new rules are counted for
//! `/health` and, with `[cache] migrate_retentions`, migrated online).
//!
//! # Shutdown sequence
//!
//! One mechanism: a [`CancellationToken`] every task watches. When it fires (signal, or
//! [`Running::shutdown`]), at once and together: the carbon listeners stop accepting, the
//! HTTP server stops accepting, the alert scheduler stops starting rounds, the index rescan
//! and the self-metrics recorder stop. Then, in this order, each awaited before the next:
//!
//! 1. **Self metrics**: the recorder task ends (it writes through the cache, so before the
//!    flush). Immediate: it only waits on its timer.
//! 2. **Carbon listeners**: connections the kernel already accepted are served and every
//!    open connection ingests what it already read; new connections are refused after at
//!    most 5 s of draining (`DRAIN_MAX` in `carbon::listener`). After this no point enters
//!    the cache.
//! 3. **HTTP**: hyper's graceful shutdown (in the accept loop of `server/http.rs`) closes idle
//!    connections and lets in-flight requests finish; a render is bounded by
//!    `[query].request_timeout`, and nothing else here bounds it.
//! 4. **Alerting**: a round in progress finishes its checks, sends at most the mail it is
//!    sending (bounded by 4 × `[smtp].timeout`), records the outcomes, and the state
//!    database (sled) is flushed and closed.
//! 5. **Event store** flushed (sled), the **retention scan** stopped after its current file
//!    (a migration under way finishes and releases its metric), then the **cache flushed to
//!    disk**: the persister
//!    threads write every cached point (throttled creations forced through) and stop. No
//!    time bound: this is as long as the disk takes, because dropping points is worse.
//! 6. **Write-ahead log** removed (`data_dir/wal`): every point it holds is in whisper. It is
//!    kept, to be replayed at the next start, if some point is not (a full disk).
//!
//! At start the write-ahead log is replayed into the cache right after the store opens,
//! before alerting, the persisters and the listeners start.
//!
//! A start-up that fails half-way (a listener or `[http].listen` cannot bind) stops
//! alerting, and the carbon listeners if they were up, before returning the error; the
//! persister threads are not flushed on that path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::alert::AlertError;
use crate::alert::RuleErrors;
use crate::api::{self, ApiConfig, AppState};
use crate::carbon::BoundAddrs;
use crate::carbon::{hostname, SelfMetrics};
use crate::carbon::{CarbonStats, Ingest, Listeners};
use crate::config::SchemaError;
use crate::config::{ConfigError, Settings};
use crate::store::Persisters;
use crate::store::Store;
use crate::store::{
    aggregation_mismatch_of, mismatch_of, retentions_string, walk_whisper_files, RetentionScanner,
};

mod http;

/// Why the server did not start, or `check-config` refused the configuration. Each names
/// the setting, file or address to fix; `main` prints it after `carbonhound: `.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The settings could not be read.
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// A storage rule file is bad (`path:line: message`).
    #[error(transparent)]
    StorageRules(#[from] SchemaError),
    /// `data_dir/whisper` could not be created or read.
    #[error("cannot open data directory {}: {source}", path.display())]
    DataDir {
        /// The whisper directory.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The event store could not be opened (its message names the folder).
    #[error("{0}")]
    Events(String),
    /// Alerting could not start (mail settings, state database).
    #[error(transparent)]
    Alerting(#[from] AlertError),
    /// An alert rule file is bad (`check-config`; `path:line:column: message`).
    #[error(transparent)]
    AlertRules(#[from] RuleErrors),
    /// A carbon listener could not bind (its message names the setting).
    #[error("{0}")]
    Listeners(String),
    /// `[query] graph_templates` names a file that cannot be read or is not a valid
    /// graphTemplates.conf (the message names its path and line).
    #[error("query.graph_templates: {0}")]
    GraphTemplates(crate::graph::TemplateError),
    /// `[http].listen` could not be bound.
    #[error("cannot listen on {addr} (http.listen): {source}")]
    HttpListen {
        /// The setting's value.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The bound HTTP socket has no local address, or a signal handler could not be
    /// installed (neither is expected).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where a running server listens (ports resolved).
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// HTTP API.
    pub http: SocketAddr,
    /// Carbon listeners.
    pub carbon: BoundAddrs,
}

/// A started server: its addresses, and the handle that stops it.
pub struct Running {
    /// Where it listens.
    pub addrs: Addresses,
    /// The store, for in-process callers.
    pub store: Arc<Store>,
    /// The alert board (state of every rule; [`crate::alert::Board::request_reload`] re-reads the rules).
    pub alerts: Arc<crate::alert::Board>,
    /// The listeners' counters, for in-process callers.
    pub carbon_stats: Arc<CarbonStats>,
    /// The retention scan ([`Running::reload_rules`] starts a new one).
    pub retention_scan: Arc<RetentionScanner>,
    cancel: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// SIGHUP: reloads the storage rules (see [`reload_rules`]) and, when they were good,
    /// starts a new retention scan against them.
    pub fn reload_rules(&self, settings: &Settings) -> Result<(), SchemaError> {
        reload_rules(settings, &self.store)?;
        self.retention_scan.rescan();
        Ok(())
    }

    /// Asks the server to shut down (as SIGTERM does) and waits until every point is on disk.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.done.await;
    }
}

/// Starts everything; returns once all listeners are bound.
pub async fn start(settings: Settings) -> Result<Running, ServerError> {
    let rules = settings.storage_rules()?;
    // Read before anything starts, so a bad file leaves nothing to stop.
    let graph_templates = match &settings.query.graph_templates {
        Some(path) => Some(Arc::new(
            crate::graph::GraphTemplates::load(path).map_err(ServerError::GraphTemplates)?,
        )),
        None => None,
    };
    let whisper_dir = settings.whisper_dir();
    // The metric index is filled in the background (below): at a million files the scan
    // takes seconds, and find reads the directory meanwhile.
    let mut store = Store::open_serving(
        &whisper_dir,
        rules,
        settings.cache.max_size,
        settings.cache.preallocation,
        settings.cache.max_creates_per_second,
    )
    .map_err(|source| ServerError::DataDir {
        path: whisper_dir.clone(),
        source,
    })?;
    if settings.cache.wal {
        // Replayed into the cache before anything inserts; the persisters write it out.
        let wal_dir = settings.wal_dir();
        let report = store
            .open_wal(&wal_dir, settings.cache.wal_sync)
            .map_err(|source| ServerError::DataDir {
                path: wal_dir.clone(),
                source,
            })?;
        tracing::info!(
            "write-ahead log {}: replayed {} points from {} segments ({} damaged records \
             skipped, {} torn bytes cut off)",
            wal_dir.display(),
            report.points,
            report.segments,
            report.skipped_records,
            report.truncated_bytes
        );
    }
    let store = Arc::new(store);
    tracing::info!(
        "data directory {}: {} tagged series; scanning for metrics in the background",
        whisper_dir.display(),
        store.tags.len()
    );
    {
        let store = store.clone();
        std::thread::Builder::new()
            .name("index-scan".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let n = store.load_index();
                tracing::info!(
                    "metric index complete: {n} metrics on disk, {} known, in {:.1} s",
                    store.index.len(),
                    started.elapsed().as_secs_f64()
                );
            })
            .map_err(|source| ServerError::DataDir {
                path: whisper_dir.clone(),
                source,
            })?;
    }
    // Opened before anything that may read it (the alert scheduler, /render, /events).
    let events = Arc::new(
        crate::events::EventStore::open(&crate::events::dir(&settings.data_dir))
            .map_err(ServerError::Events)?
            .with_max_events(settings.events.max_events),
    );
    tracing::info!("event store: {} events", events.len());
    // What the alert rules evaluate against: the metric store with the event store (the
    // API's state carries both too, for /render and /events), and with `[cluster] servers`
    // the other servers' data merged in, so that one server alerts for the cluster.
    let local = crate::query::LocalSource {
        metrics: store.clone(),
        events: Some(events.clone()),
    };
    let cluster = crate::query::Cluster::from_settings(&settings);
    let source: Arc<dyn crate::query::MetricSource> = match &cluster {
        Some(c) => {
            tracing::info!(
                "cluster: answering for this server and {}",
                c.servers().collect::<Vec<_>>().join(", ")
            );
            Arc::new(crate::query::ClusterSource::shared(
                Arc::new(local),
                c.clone(),
            ))
        }
        None => Arc::new(local),
    };
    let cancel = CancellationToken::new();
    let alerting = crate::alert::start(
        &settings,
        source,
        // Alerting's self metrics follow carbon's: off with `[carbon] stats_interval = 0`.
        (!settings.carbon.stats_interval.is_zero()).then(|| store.clone()),
        cancel.clone(),
    )
    .await?;
    let kept_open =
        store.size_open_files(settings.cache.open_files, settings.carbon.max_connections);
    tracing::info!("writers keep up to {kept_open} whisper files open between writes");
    let persisters = Persisters::start(
        store.clone(),
        settings.cache.writers,
        settings.cache.write_interval,
    );

    let stats = Arc::new(CarbonStats::default());
    let ingest = Ingest::new(
        store.clone(),
        stats.clone(),
        settings.carbon.max_line_length,
        settings.carbon.max_pickle_frame,
        settings.carbon.max_connections,
        settings.carbon.idle_timeout,
    );
    let listeners = match Listeners::start(
        ingest,
        &settings.carbon.plaintext_tcp,
        &settings.carbon.plaintext_udp,
        &settings.carbon.pickle_tcp,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            cancel.cancel();
            alerting.stopped().await;
            return Err(ServerError::Listeners(e));
        }
    };

    let mut api_config = ApiConfig::from_settings(&settings);
    api_config.graph_templates = graph_templates;
    let state = AppState::new(store.clone(), api_config)
        .with_events(events.clone())
        .with_cluster(cluster.clone());
    let access = state.config.access.clone();
    let app = api::router(state)
        .merge(api::health_router(store.clone(), stats.clone(), cluster))
        .merge(api::status_router(
            api::StatusState::new(&settings, alerting.board.clone())
                .with_silences(alerting.silences.clone()),
        ))
        .merge(api::silences_router(
            api::SilencesState {
                silences: alerting.silences.clone(),
                board: alerting.board.clone(),
            },
            access.clone(),
        ));
    let ack = api::AckState {
        board: alerting.board.clone(),
        templates: crate::alert::Templates::new(&settings.alerting.templates_dir),
    };
    let app = app.merge(api::ack_write_router(ack.clone(), access.clone()));
    // The signed acknowledge links carry their own credential: outside the read guard.
    let app = api::guard_reads(app, &access)
        .merge(api::ack_link_router(ack))
        .layer(api::catch_panic());
    // [http] body_timeout: the longest wait for the next piece of a request body.
    let app = if settings.http.body_timeout.is_zero() {
        app
    } else {
        app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            settings.http.body_timeout,
        ))
    };
    let limits = http::ClientLimits::new(
        settings.http.header_timeout,
        settings.http.keepalive_timeout,
    );
    let http = match tokio::net::TcpListener::bind(&settings.http.listen).await {
        Ok(l) => l,
        Err(source) => {
            cancel.cancel();
            alerting.stopped().await;
            listeners.shutdown().await;
            return Err(ServerError::HttpListen {
                addr: settings.http.listen.clone(),
                source,
            });
        }
    };
    let http_addr = http.local_addr()?;
    if settings.alerting.base_url.is_empty() {
        let url = crate::alert::default_base_url(http_addr);
        if http_addr.ip().is_loopback() || settings.http.listen.ends_with(":0") {
            tracing::warn!(
                "links in alert mail point to {url}: [http] listen is a loopback or port-0 \
                 address, so they will not work from other machines; set [alerting] base_url"
            );
        }
        alerting.board.set_base_url(url);
    }

    let addrs = Addresses {
        http: http_addr,
        carbon: listeners.addrs,
    };
    let show = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_else(|| "off".into());
    tracing::info!(
        "listening: http={} plaintext_tcp={} plaintext_udp={} pickle_tcp={}",
        http_addr,
        show(addrs.carbon.plaintext_tcp),
        show(addrs.carbon.plaintext_udp),
        show(addrs.carbon.pickle_tcp)
    );

    let http_cancel = cancel.clone();
    let http_task = tokio::spawn(http::serve(http, app, limits, http_cancel));

    // Background, once everything is up: temporary files of interrupted migrations removed, then every header
    // compared with the storage rules (and, with migrate_retentions, mismatches rewritten).
    let retention_scan = Arc::new(RetentionScanner::start(
        store.clone(),
        settings.cache.migrate_retentions,
        settings.cache.migrate_per_second,
    ));

    // Periodic rescan of the whisper directory, for files other tools add.
    let rescan_store = store.clone();
    let rescan_cancel = cancel.clone();
    let interval = settings.cache.index_rescan_interval;
    tokio::spawn(async move {
        if interval.is_zero() {
            return;
        }
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = rescan_cancel.cancelled() => return,
                _ = tick.tick() => {
                    let s = rescan_store.clone();
                    let _ = tokio::task::spawn_blocking(move || s.rescan()).await;
                }
            }
        }
    });

    let board = alerting.board.clone();
    // Self metrics (carbon.agents.<host>.*), written through the cache like any point.
    let self_metrics = (!settings.carbon.stats_interval.is_zero()).then(|| {
        let recorder = SelfMetrics::new(
            store.clone(),
            stats.clone(),
            &settings.carbon.stats_prefix,
            &hostname(),
        );
        tokio::spawn(recorder.run(settings.carbon.stats_interval, cancel.clone()))
    });

    let done_cancel = cancel.clone();
    let store_for_wal = store.clone();
    let scan_to_stop = retention_scan.clone();
    let done = tokio::spawn(async move {
        done_cancel.cancelled().await;
        tracing::info!("shutting down: stopping listeners");
        if let Some(task) = self_metrics {
            let _ = task.await;
        }
        listeners.shutdown().await;
        let _ = http_task.await;
        alerting.stopped().await;
        tracing::info!("closing the event store; flushing the cache to disk");
        let wal_store = store_for_wal;
        let _ = tokio::task::spawn_blocking(move || {
            events.flush();
            // A migration under way finishes and releases its metric, so the flush writes
            // every held point.
            scan_to_stop.stop();
            persisters.flush_and_stop();
            // Every logged point is in whisper now: nothing to replay.
            wal_store.close_wal();
        })
        .await;
        tracing::info!("shutdown complete");
    });

    Ok(Running {
        addrs,
        store,
        alerts: board,
        carbon_stats: stats,
        retention_scan,
        cancel,
        done,
    })
}

/// Reloads the storage rules into `store` (SIGHUP). Returns the error, old rules kept, when
/// a file is bad.
pub fn reload_rules(settings: &Settings, store: &Store) -> Result<(), SchemaError> {
    let rules = settings.storage_rules()?;
    store.set_rules(rules);
    Ok(())
}

/// Runs the server until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn serve(settings: Settings) -> Result<(), ServerError> {
    // The handlers are installed before anything starts: a SIGTERM that arrives while the
    // listeners come up (systemd stopping a unit that is still starting, a test that stops a
    // server at once) must take the clean path, not the default action that exits without
    // flushing the points already accepted.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let running = start(settings.clone()).await?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match running.reload_rules(&settings) {
                    Ok(()) => tracing::info!("SIGHUP: storage rules reloaded"),
                    Err(e) => tracing::error!("SIGHUP: storage rules NOT reloaded, old rules kept: {e}"),
                }
                running.alerts.request_reload();
            }
        }
    }
    running.shutdown().await;
    Ok(())
}

/// Checks settings and rule files without starting anything (`carbonhound check-config`).
pub fn check_config(config: Option<&Path>) -> Result<String, ServerError> {
    let settings = Settings::load(config)?;
    settings.storage_rules()?;
    if let Some(path) = &settings.query.graph_templates {
        crate::graph::GraphTemplates::load(path).map_err(ServerError::GraphTemplates)?;
    }
    let alerts = crate::alert::AlertConfig::from_settings(&settings).load_rules()?;
    Ok(format!(
        "settings, storage rules{} and {} alert rules OK (data in {})",
        if settings.query.graph_templates.is_some() {
            ", graph templates"
        } else {
            ""
        },
        alerts.rules.len(),
        settings.data_dir.display()
    ))
}

/// What `carbonhound check-config --data` found under the whisper directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataCheck {
    /// Whisper headers read.
    pub checked: u64,
    /// Files whose archives differ from their storage-schemas rule's.
    pub mismatched: u64,
    /// Files whose header could not be read (each named on the output).
    pub unreadable: u64,
    /// Files whose aggregationMethod or xFilesFactor differs from storage-aggregation.conf's
    /// (listed, but not counted as mismatches: the exit status is about retentions).
    pub aggregation_mismatched: u64,
}

/// `carbonhound check-config --data`: reads the header of every whisper file under
/// `data_dir/whisper` (read-only, so the server may be running) and writes to `out` one line
/// per file whose archives differ from what its storage-schemas.conf rule would create now —
/// `METRIC (PATH): file RETENTIONS, rule NAME wants RETENTIONS` — one per unreadable file, and
/// a summary naming `[cache] migrate_retentions`. The caller exits 1 when `mismatched > 0`.
/// Errors: bad settings or rule files (as `check-config`), or `out` failing.
pub fn check_data(
    config: Option<&Path>,
    out: &mut dyn std::io::Write,
) -> Result<DataCheck, ServerError> {
    use std::ops::ControlFlow;
    let settings = Settings::load(config)?;
    let rules = settings.storage_rules()?;
    let dir = settings.whisper_dir();
    let mut check = DataCheck {
        checked: 0,
        mismatched: 0,
        unreadable: 0,
        aggregation_mismatched: 0,
    };
    let mut failed: Option<std::io::Error> = None;
    let _ = walk_whisper_files(&dir, &mut |metric, path| {
        let line = match crate::whisper::WhisperFile::open(path) {
            Err(e) => {
                check.unreadable += 1;
                Some(format!("{metric} ({}): unreadable: {e}", path.display()))
            }
            Ok(file) => {
                check.checked += 1;
                let retentions = mismatch_of(metric, path, file.header(), &rules).map(|m| {
                    check.mismatched += 1;
                    format!(
                        "{metric} ({}): file {}, rule {} wants {}",
                        path.display(),
                        retentions_string(&m.file_retentions),
                        m.rule_name(),
                        retentions_string(&m.rule_retentions)
                    )
                });
                let aggregation = aggregation_mismatch_of(metric, file.header(), &rules).map(|a| {
                    check.aggregation_mismatched += 1;
                    format!(
                        "{metric} ({}): aggregation {} xFilesFactor {}, \
                         storage-aggregation.conf gives {} xFilesFactor {}",
                        path.display(),
                        a.file.0.name(),
                        a.file.1,
                        a.rule.0.name(),
                        a.rule.1
                    )
                });
                match (retentions, aggregation) {
                    (Some(r), Some(a)) => Some(format!("{r}\n{a}")),
                    (r, a) => r.or(a),
                }
            }
        };
        match line.map(|l| writeln!(out, "{l}")) {
            Some(Err(e)) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    });
    if let Some(e) = failed {
        return Err(ServerError::Io(e));
    }
    let summary = if !dir.is_dir() {
        format!(
            "retentions: no whisper directory at {} yet: nothing to check",
            dir.display()
        )
    } else if check.mismatched == 0 {
        format!(
            "retentions: all {} whisper files under {} match storage-schemas.conf",
            check.checked,
            dir.display()
        )
    } else {
        format!(
            "retentions: {} of {} whisper files under {} differ from storage-schemas.conf; \
             set [cache] migrate_retentions = true to migrate them online, or resize them \
             with `carbonhound whisper resize`",
            check.mismatched,
            check.checked,
            dir.display()
        )
    };
    writeln!(out, "{summary}")?;
    if check.aggregation_mismatched > 0 {
        writeln!(
            out,
            "aggregation: {} whisper files have an aggregationMethod or xFilesFactor other \
             than storage-aggregation.conf gives them (`carbonhound whisper set-aggregation` \
             changes them; not counted in the exit status)",
            check.aggregation_mismatched
        )?;
    }
    if check.unreadable > 0 {
        writeln!(out, "{} whisper files could not be read", check.unreadable)?;
    }
    Ok(check)
}

/// Waits `d`, for tests and examples.
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}
