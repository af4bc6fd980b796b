//! `GET /health`: a liveness answer with the store's, the cache's and the listeners'
//! counters, for monitoring (monit, load balancers). Reads counters only; never blocks on
//! the store or the disk.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use axum::routing::get;
use axum::Router;

use super::respond;
use crate::carbon::CarbonStats;
use crate::carbon::ListenerStats;
use crate::query::Cluster;
use crate::store::{retentions_string, RetentionStatus, Store};

/// The `/health` route: `{"status": "ok", "uptime_seconds", "store": {metricsReceived,
/// committedPoints, updateOperations, creates, errors, droppedPoints, droppedOutOfRetention,
/// corruptReads, diskFullRefusals,
/// descriptorRefusals, keptOpenWrites (updates through a descriptor kept from the file's
/// previous write), prefetchedWrites (updates put off while their pages were read)},
/// "disk_full": bool (the last write found no space; the
/// points wait in the cache), "corrupt_files": [{metric, reason}] (the last 100 files that failed to
/// read),
/// "cache": {size, queues, max_size}, "wal": {enabled, segments, bytes, errors} (the
/// write-ahead log under `data_dir/wal`), "retentions": {checked, mismatched, examples: [up
/// to 10 of {metric, file_retentions, rule, rule_retentions}], aggregation_mismatched (files
/// whose aggregationMethod or xFilesFactor differs from storage-aggregation.conf's; reported,
/// never migrated), migrate, migrated, failed,
/// scan: "running" | "done"} (whisper files whose archives differ from their
/// storage-schemas.conf rule, found by the scan at start and after SIGHUP, and their online
/// migration; see [`retentions`]), "index": {scan: "running" | "done"} (the metric index's
/// start scan: while it runs, find reads the whisper directory too), "listeners": {plaintext_tcp: {points, connections,
/// errors, malformed, …}, plaintext_udp: …, pickle_tcp: …}, "cluster": {servers: [{server,
/// url, state ("up", "down" while not asked after a failure, "unknown" before the first
/// call), calls, failures, last_error, retry_in_seconds}], partial_answers,
/// remote_timeout_seconds, retry_delay_seconds} (see [`Cluster::health`]; `null` without
/// `[cluster] servers`)}`. Counters count since start (the self metrics give per-interval
/// values); sizes are now. Uptime counts from this call.
pub fn router(
    store: Arc<Store>,
    carbon: Arc<CarbonStats>,
    cluster: Option<Arc<Cluster>>,
) -> Router {
    let started = Instant::now();
    let handler = move || {
        let store = store.clone();
        let carbon = carbon.clone();
        let cluster = cluster.clone();
        async move {
            let mut body = report(&store, &carbon, started);
            body["cluster"] = cluster
                .map(|c| c.health())
                .unwrap_or(serde_json::Value::Null);
            respond("application/json", body.to_string())
        }
    };
    Router::new().route("/health", get(handler))
}

fn listener(l: &ListenerStats) -> serde_json::Value {
    serde_json::Value::Object(
        l.snapshot()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect(),
    )
}

/// `/health`'s `retentions` object. Retentions read as storage-schemas.conf writes them
/// (`1m:1d,10m:30d`); `rule` is the storage-schemas section, `(carbon default)` when none
/// matches. Counts are the last scan's (a SIGHUP starts a new one from zero).
pub fn retentions(status: &RetentionStatus) -> serde_json::Value {
    let examples: Vec<serde_json::Value> = status
        .examples
        .lock()
        .iter()
        .map(|m| {
            serde_json::json!({
                "metric": m.metric,
                "file_retentions": retentions_string(&m.file_retentions),
                "rule": m.rule_name(),
                "rule_retentions": retentions_string(&m.rule_retentions),
            })
        })
        .collect();
    serde_json::json!({
        "checked": status.checked.load(Relaxed),
        "mismatched": status.mismatched.load(Relaxed),
        "examples": examples,
        "aggregation_mismatched": status.aggregation_mismatched.load(Relaxed),
        "migrate": status.migrate.load(Relaxed),
        "migrated": status.migrated.load(Relaxed),
        "failed": status.failed.load(Relaxed),
        "scan": if status.running.load(Relaxed) { "running" } else { "done" },
    })
}

fn report(store: &Store, carbon: &CarbonStats, started: Instant) -> serde_json::Value {
    let s = &store.stats;
    serde_json::json!({
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
            "corruptReads": s.corrupt_reads.load(Relaxed),
            "diskFullRefusals": s.disk_full_refusals.load(Relaxed),
            "descriptorRefusals": s.descriptor_refusals.load(Relaxed),
            "keptOpenWrites": s.kept_open_writes.load(Relaxed),
            "prefetchedWrites": s.prefetched_writes.load(Relaxed),
        },
        "disk_full": s.disk_full.load(Relaxed),
        "corrupt_files": s
            .corrupt_files
            .lock()
            .iter()
            .map(|(metric, reason)| serde_json::json!({"metric": metric, "reason": reason}))
            .collect::<Vec<_>>(),
        "cache": {
            "size": store.cache.size(),
            "queues": store.cache.queues(),
            "max_size": store.cache.max_size(),
        },
        "wal": match store.wal_info() {
            Some(w) => serde_json::json!({
                "enabled": true,
                "segments": w.segments,
                "bytes": w.bytes,
                "errors": w.errors,
            }),
            None => serde_json::json!({"enabled": false, "segments": 0, "bytes": 0, "errors": 0}),
        },
        "retentions": retentions(&store.retentions),
        "index": {
            "scan": if store.index_loading() { "running" } else { "done" },
        },
        "listeners": {
            "plaintext_tcp": listener(&carbon.plaintext_tcp),
            "plaintext_udp": listener(&carbon.plaintext_udp),
            "pickle_tcp": listener(&carbon.pickle_tcp),
        },
    })
}
