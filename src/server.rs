//! `carbonhound serve`: wires the parts together in data-path order — store and persisters,
//! the event store, carbon listeners, the HTTP API, the periodic index rescan — and takes them
//! down in the reverse order on SIGTERM/SIGINT so that every accepted point reaches disk.
//!
//! Shutdown is one mechanism: a [`CancellationToken`] every task watches. SIGHUP reloads
//! the storage rules and the alert rules; a bad file is refused (with its path and line) and
//! the old rules stay.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiConfig, AppState};
use crate::carbon::listener::BoundAddrs;
use crate::carbon::self_metrics::{hostname, SelfMetrics};
use crate::carbon::{CarbonStats, Ingest, Listeners};
use crate::config::schemas::StorageRules;
use crate::config::Settings;
use crate::query::QueryLimits;
use crate::store::persister::Persisters;
use crate::store::Store;
use crate::whisper::Preallocation;

/// Where a running server listens (ports resolved).
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// HTTP API.
    pub http: SocketAddr,
    /// Carbon listeners.
    pub carbon: BoundAddrs,
}

fn optional_path(s: &str) -> Option<PathBuf> {
    (!s.trim().is_empty()).then(|| PathBuf::from(s))
}

/// Reads the storage rules the settings name (embedded defaults for empty paths).
pub fn load_rules(settings: &Settings) -> Result<StorageRules, String> {
    StorageRules::load(
        optional_path(&settings.carbon.schemas).as_deref(),
        optional_path(&settings.carbon.aggregation).as_deref(),
    )
    .map_err(|e| e.to_string())
}

fn preallocation(s: &str) -> Preallocation {
    match s {
        "zero" => Preallocation::Zero,
        "sparse" => Preallocation::Sparse,
        _ => Preallocation::Fallocate,
    }
}

/// The API settings of `settings`.
pub fn api_config(settings: &Settings) -> ApiConfig {
    ApiConfig {
        tz: settings
            .query
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Tz::UTC),
        limits: QueryLimits {
            max_series_per_target: settings.query.max_series_per_target,
            max_points: settings.query.max_points_per_response,
            max_depth: settings.query.max_expression_depth,
        },
        timeout: settings.query.request_timeout,
        max_targets: settings.query.max_targets,
        max_body_bytes: settings.query.max_body_bytes,
    }
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
    cancel: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Asks the server to shut down (as SIGTERM does) and waits until every point is on disk.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.done.await;
    }
}

/// Starts everything; returns once all listeners are bound.
pub async fn start(settings: Settings) -> Result<Running, String> {
    let rules = load_rules(&settings)?;
    let whisper_dir = settings.whisper_dir();
    let store = Arc::new(
        Store::open(
            &whisper_dir,
            rules,
            settings.cache.max_size,
            preallocation(&settings.cache.preallocation),
            settings.cache.max_creates_per_second,
        )
        .map_err(|e| format!("cannot open data directory {}: {e}", whisper_dir.display()))?,
    );
    tracing::info!(
        "data directory {}: {} metrics, {} tagged series",
        whisper_dir.display(),
        store.index.len(),
        store.tags.len()
    );
    // Opened before anything that may read it (the alert scheduler, /render, /events).
    let events = Arc::new(crate::events::EventStore::open(&crate::events::dir(
        &settings.data_dir,
    ))?);
    tracing::info!("event store: {} events", events.len());
    // What the alert rules evaluate against: the metric store with the event store (the
    // API's state carries both too, for /render and /events).
    let source = crate::store::LocalSource {
        metrics: store.clone(),
        events: Some(events.clone()),
    };
    let cancel = CancellationToken::new();
    let alerting = crate::alert::start(&settings, Arc::new(source), cancel.clone()).await?;
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
            return Err(e);
        }
    };

    let state = AppState::new(store.clone(), api_config(&settings)).with_events(events.clone());
    let app = api::router(state)
        .merge(health_router(store.clone(), stats.clone()))
        .merge(api::status::router(api::status::StatusState::new(
            &settings,
            alerting.board.clone(),
        )));
    let http = match tokio::net::TcpListener::bind(&settings.http.listen).await {
        Ok(l) => l,
        Err(e) => {
            cancel.cancel();
            alerting.stopped().await;
            listeners.shutdown().await;
            return Err(format!(
                "cannot listen on {} (http.listen): {e}",
                settings.http.listen
            ));
        }
    };
    let http_addr = http.local_addr().map_err(|e| e.to_string())?;

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
    let http_task = tokio::spawn(async move {
        let r = axum::serve(http, app)
            .with_graceful_shutdown(async move { http_cancel.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::error!("http server: {e}");
        }
    });

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
        let _ = tokio::task::spawn_blocking(move || {
            events.flush();
            persisters.flush_and_stop()
        })
        .await;
        tracing::info!("shutdown complete");
    });

    Ok(Running {
        addrs,
        store,
        alerts: board,
        carbon_stats: stats,
        cancel,
        done,
    })
}

/// `GET /health`: `{"status": "ok", "uptime_seconds", "store": {metricsReceived,
/// committedPoints, updateOperations, creates, errors, droppedPoints, droppedOutOfRetention},
/// "cache": {size, queues, max_size}, "listeners": {plaintext_tcp: {points, connections,
/// errors, malformed, …}, plaintext_udp: …, pickle_tcp: …}}`. Counters count since start
/// (the self metrics give per-interval values); sizes are now.
fn health_router(store: Arc<Store>, carbon: Arc<CarbonStats>) -> axum::Router {
    use axum::routing::get;
    let started = std::time::Instant::now();
    let handler = move || {
        let store = store.clone();
        let carbon = carbon.clone();
        async move {
            use std::sync::atomic::Ordering::Relaxed;
            let s = &store.stats;
            let listener = |l: &crate::carbon::stats::ListenerStats| {
                serde_json::Value::Object(
                    l.snapshot()
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.into()))
                        .collect(),
                )
            };
            let body = serde_json::json!({
                "status": "ok",
                "uptime_seconds": started.elapsed().as_secs_f64(),
                "store": {
                    "metricsReceived": s.metrics_received.load(Relaxed),
                    "committedPoints": s.committed_points.load(Relaxed),
                    "updateOperations": s.update_operations.load(Relaxed),
                    "creates": s.creates.load(Relaxed),
                    "errors": s.errors.load(Relaxed),
                    "droppedPoints": s.dropped_points.load(Relaxed),
                    "droppedOutOfRetention": s.dropped_out_of_retention.load(Relaxed),
                },
                "cache": {
                    "size": store.cache.size(),
                    "queues": store.cache.queues(),
                    "max_size": store.cache.max_size(),
                },
                "listeners": {
                    "plaintext_tcp": listener(&carbon.plaintext_tcp),
                    "plaintext_udp": listener(&carbon.plaintext_udp),
                    "pickle_tcp": listener(&carbon.pickle_tcp),
                },
            });
            api::respond("application/json", body.to_string())
        }
    };
    axum::Router::new().route("/health", get(handler))
}

/// Reloads the storage rules into `store` (SIGHUP). Returns the error, old rules kept, when
/// a file is bad.
pub fn reload_rules(settings: &Settings, store: &Store) -> Result<(), String> {
    let rules = load_rules(settings)?;
    store.set_rules(rules);
    Ok(())
}

/// Runs the server until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn serve(settings: Settings) -> Result<(), String> {
    let running = start(settings.clone()).await?;
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match reload_rules(&settings, &running.store) {
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
pub fn check_config(config: Option<&Path>) -> Result<String, String> {
    let settings = Settings::load(config).map_err(|e| e.to_string())?;
    load_rules(&settings)?;
    let alerts = crate::alert::AlertConfig::from_settings(&settings)
        .load_rules()
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "settings, storage rules and {} alert rules OK (data in {})",
        alerts.rules.len(),
        settings.data_dir.display()
    ))
}

/// Waits `d`, for tests and examples.
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}
