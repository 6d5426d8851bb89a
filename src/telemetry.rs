//! The Prometheus metrics: the recorder, every family's name and help text in one place,
//! and the gauges read at scrape time. `docs/operations.md` lists them with alert rules.
//!
//! Layers count their own events with the `metrics` macros and the names below; state
//! that is cheaper to read than to track (cache sizes, pool usage, queue depth) is read
//! when `/metrics` is scraped.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Requests by group (`v2`, `v1`, `admission`, `auth`, `operations`), operation (Notary's
/// name for `/v2`, `METHOD /route` otherwise) and status.
pub const HTTP_REQUESTS: &str = "notarius_http_requests_total";
pub const HTTP_DURATION: &str = "notarius_http_request_duration_seconds";
/// Publishes by outcome (`accepted`, `unchanged`, `refused`).
pub const UPDATES: &str = "notarius_updates_total";
/// Policy decisions by outcome (`allowed`, `denied`), deciding rule and whether cached.
pub const POLICY_DECISIONS: &str = "notarius_policy_decisions_total";
pub const POLICY_DECISION_DURATION: &str = "notarius_policy_decision_duration_seconds";
/// Admission reviews by webhook (`validate`, `mutate`) and outcome (`allowed`, `denied`).
pub const ADMISSION_REVIEWS: &str = "notarius_admission_reviews_total";
/// Policy file reloads by outcome (`loaded`, `refused`).
pub const POLICY_RELOADS: &str = "notarius_policy_reloads_total";
pub const POLICY_VERSION: &str = "notarius_policy_version";
pub const DECISION_LOG_QUEUE: &str = "notarius_decision_log_queue_depth";
pub const DECISION_LOG_WRITE_DURATION: &str = "notarius_decision_log_write_duration_seconds";
pub const DECISION_LOG_WRITE_FAILURES: &str = "notarius_decision_log_write_failures_total";
/// Cache lookups by cache and result (`hit`, `miss`), counted by the caches themselves.
pub const CACHE_HITS: &str = "notarius_cache_hits_total";
pub const CACHE_MISSES: &str = "notarius_cache_misses_total";
pub const CACHE_ENTRIES: &str = "notarius_cache_entries";
pub const CACHE_WEIGHT: &str = "notarius_cache_weight_bytes";
/// Database calls by operation and outcome (`ok`, `error`), and their latency.
pub const DB_QUERIES: &str = "notarius_db_queries_total";
pub const DB_QUERY_DURATION: &str = "notarius_db_query_duration_seconds";
pub const DB_POOL_CONNECTIONS: &str = "notarius_db_pool_connections";
pub const DB_POOL_IDLE: &str = "notarius_db_pool_idle_connections";
pub const DB_POOL_MAX: &str = "notarius_db_pool_max_connections";
/// Server-managed key operations by operation (`create`, `sign`, `reseal`) and role.
pub const KEY_OPERATIONS: &str = "notarius_key_operations_total";
/// Server-signed timestamps and snapshots renewed on read, by role.
pub const RENEWALS: &str = "notarius_metadata_renewals_total";
/// Renewals on read that failed (`snapshot_expired`: a client-held snapshot key the
/// server cannot use; `keystore`; `store`): clients are served an error.
pub const RENEWAL_FAILURES: &str = "notarius_metadata_renewal_failures_total";
/// Failed logins by credential (`password`, `token`, `registry_token`) and reason
/// (`invalid`, or `limited` by the failed-login limiter).
pub const LOGIN_FAILURES: &str = "notarius_login_failures_total";
pub const BUILD_INFO: &str = "notarius_build_info";

/// The process's recorder, installed once; a second server in the same process (tests)
/// shares it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = match PrometheusBuilder::new()
                .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .and_then(|builder| builder.install_recorder())
            {
                Ok(handle) => handle,
                // Another recorder is installed (an embedding program): render ours unused.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            // Histogram samples pile up until they are folded into their buckets, which a
            // scrape does; when nothing scrapes, this thread does, so memory stays bounded.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread: histograms are folded only when scraped");
            }
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route group, operation and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency by route group and operation");
    describe_counter!(UPDATES, "Publishes (POST /v2/{gun}/_trust/tuf/) by outcome");
    describe_counter!(POLICY_DECISIONS, "Policy decisions by outcome, deciding rule and cache use");
    describe_histogram!(POLICY_DECISION_DURATION, Unit::Seconds, "Time to decide one image, by cache use");
    describe_counter!(ADMISSION_REVIEWS, "Kubernetes admission reviews by webhook and outcome");
    describe_counter!(POLICY_RELOADS, "Policy folder reloads by outcome; a refused reload keeps the old policies");
    describe_gauge!(POLICY_VERSION, "Version of the policies in force (1 at start, +1 per reload that changed them)");
    describe_gauge!(DECISION_LOG_QUEUE, "Decision records queued, not yet written");
    describe_histogram!(DECISION_LOG_WRITE_DURATION, Unit::Seconds, "Time to write one batch of decision records");
    describe_counter!(DECISION_LOG_WRITE_FAILURES, "Failed decision-log writes (retried, never dropped)");
    describe_counter!(CACHE_HITS, "Cache lookups answered from memory, by cache");
    describe_counter!(CACHE_MISSES, "Cache lookups that went to the source, by cache");
    describe_gauge!(CACHE_ENTRIES, "Entries held, by cache");
    describe_gauge!(CACHE_WEIGHT, Unit::Bytes, "Memory held (estimated), by cache");
    describe_counter!(DB_QUERIES, "Database calls by operation and outcome");
    describe_histogram!(DB_QUERY_DURATION, Unit::Seconds, "Database call latency by operation");
    describe_gauge!(DB_POOL_CONNECTIONS, "Open database connections, by pool");
    describe_gauge!(DB_POOL_IDLE, "Idle database connections, by pool");
    describe_gauge!(DB_POOL_MAX, "Most connections a pool opens");
    describe_counter!(KEY_OPERATIONS, "Server-managed key operations by operation and role");
    describe_counter!(RENEWALS, "Server-signed files renewed on read, by role");
    describe_counter!(RENEWAL_FAILURES, "Renewals on read that failed, by reason; the read fails too");
    describe_counter!(LOGIN_FAILURES, "Failed logins by credential and reason (invalid, limited)");
    describe_gauge!(BUILD_INFO, "1, labelled with the version of this build");
}

/// A cache's state, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    pub entries: u64,
    /// Bytes for caches bounded by size; entries otherwise.
    pub weight: u64,
    pub hits: u64,
    pub misses: u64,
}

impl CacheStats {
    /// The counters and gauges of a `quick_cache` cache.
    pub fn of<K, V, We, B, L>(cache: &quick_cache::sync::Cache<K, V, We, B, L>) -> CacheStats
    where
        K: Eq + std::hash::Hash,
        V: Clone,
        We: quick_cache::Weighter<K, V> + Clone,
        B: std::hash::BuildHasher + Clone,
        L: quick_cache::Lifecycle<K, V> + Clone,
    {
        CacheStats { entries: cache.len() as u64, weight: cache.weight(), hits: cache.hits(), misses: cache.misses() }
    }

    /// Publishes this cache's state under `name`.
    pub fn record(self, name: &'static str) {
        metrics::gauge!(CACHE_ENTRIES, "cache" => name).set(self.entries as f64);
        metrics::gauge!(CACHE_WEIGHT, "cache" => name).set(self.weight as f64);
        metrics::counter!(CACHE_HITS, "cache" => name).absolute(self.hits);
        metrics::counter!(CACHE_MISSES, "cache" => name).absolute(self.misses);
    }
}

/// A database pool's state, read at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub name: &'static str,
    pub connections: u32,
    pub idle: usize,
    pub max: u32,
}

impl PoolStats {
    pub fn record(self) {
        metrics::gauge!(DB_POOL_CONNECTIONS, "pool" => self.name).set(self.connections as f64);
        metrics::gauge!(DB_POOL_IDLE, "pool" => self.name).set(self.idle as f64);
        metrics::gauge!(DB_POOL_MAX, "pool" => self.name).set(self.max as f64);
    }
}
