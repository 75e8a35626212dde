//! Telemetry: logs (text or JSON lines, through tracing-subscriber) and metrics (the `metrics`
//! facade, rendered in the Prometheus text format by metrics-exporter-prometheus on the ops
//! server's `/metrics`).
//!
//! Metric names follow Prometheus conventions: counters end in `_total`, durations are
//! histograms in `_seconds`. The list with labels is in the README ("Prometheus metrics").

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the current span's fields (source, channel, command).
    Json,
}

/// Installs the global log subscriber (once per process).
///
/// `filter` is tracing's EnvFilter syntax (`info`, `warn,tgpulse=debug`); an invalid filter
/// falls back to `info`.
pub fn init_logs(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Histogram buckets of every `_seconds` metric: 5 ms to 60 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The Prometheus recorder's handle; the first call installs it as the process's global
/// `metrics` recorder. If another recorder was installed first, the handle renders nothing
/// recorded elsewhere (logged once).
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
            }
            describe();
            zero();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        "tgpulse_samples_accepted_total",
        Unit::Count,
        "Samples a source handed to the ingest queue, by source"
    );
    describe_counter!(
        "tgpulse_samples_stored_total",
        Unit::Count,
        "New samples stored, by kind (member, post)"
    );
    describe_counter!(
        "tgpulse_samples_duplicate_total",
        Unit::Count,
        "Samples received that were already stored, by kind"
    );
    describe_histogram!(
        "tgpulse_batch_commit_seconds",
        Unit::Seconds,
        "Time to write and commit one batch (the successful attempt)"
    );
    describe_gauge!(
        "tgpulse_ingest_queue_depth",
        Unit::Count,
        "Samples waiting between the sources and the writer"
    );
    describe_counter!(
        "tgpulse_source_requests_total",
        Unit::Count,
        "Requests to a source, by source and outcome (ok, rate_limited, error, timeout)"
    );
    describe_gauge!(
        "tgpulse_source_breaker_open",
        "1 while a source's circuit breaker refuses calls"
    );
    describe_gauge!(
        "tgpulse_source_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of a source's last job whose samples were accepted"
    );
    describe_histogram!(
        "tgpulse_daily_refresh_seconds",
        Unit::Seconds,
        "Time to bring the daily relations (members_daily, views_daily, post_reach) up to date: a recompute of logged buckets, or a merge of the partials of inserted samples"
    );
    describe_counter!(
        "tgpulse_bot_updates_total",
        Unit::Count,
        "Telegram updates the bot received, by kind (message, callback)"
    );
    describe_counter!(
        "tgpulse_bot_panics_total",
        Unit::Count,
        "Bot updates whose handler panicked (caught; the bot went on)"
    );
    describe_histogram!(
        "tgpulse_bot_reply_seconds",
        Unit::Seconds,
        "Time from an update to the bot's reply, by command"
    );
    describe_counter!(
        "tgpulse_export_rows_total",
        Unit::Count,
        "Rows exported, by relation and format"
    );
    describe_counter!(
        "tgpulse_export_bytes_total",
        Unit::Bytes,
        "Bytes exported, by relation and format"
    );
    describe_counter!(
        "tgpulse_task_restarts_total",
        Unit::Count,
        "Restarts of a supervised task after a failure or panic, by task"
    );
    describe_gauge!(
        "tgpulse_task_running",
        "1 while a supervised task runs, by task"
    );
    describe_gauge!(
        "tgpulse_watched_channels",
        Unit::Count,
        "Channels in the watched list"
    );
}

/// Series whose labels are known up front start at zero, so dashboards and alerts see them
/// before the first event (Prometheus' advice for known label values).
fn zero() {
    for kind in ["member", "post"] {
        metrics::counter!("tgpulse_samples_stored_total", "kind" => kind).absolute(0);
        metrics::counter!("tgpulse_samples_duplicate_total", "kind" => kind).absolute(0);
    }
    metrics::gauge!("tgpulse_ingest_queue_depth").set(0.0);
    for kind in ["message", "callback"] {
        metrics::counter!("tgpulse_bot_updates_total", "kind" => kind).absolute(0);
    }
    metrics::counter!("tgpulse_bot_panics_total").absolute(0);
    for relation in crate::query::RELATIONS {
        for format in ["parquet", "csv"] {
            metrics::counter!("tgpulse_export_rows_total", "relation" => relation.name, "format" => format)
                .absolute(0);
            metrics::counter!("tgpulse_export_bytes_total", "relation" => relation.name, "format" => format)
                .absolute(0);
        }
    }
}

/// Starts a source's series at zero: requests by outcome, breaker state, accepted samples.
pub fn zero_source(source: &str) {
    for outcome in ["ok", "rate_limited", "error", "timeout"] {
        metrics::counter!("tgpulse_source_requests_total", "source" => source.to_owned(), "outcome" => outcome)
            .absolute(0);
    }
    metrics::gauge!("tgpulse_source_breaker_open", "source" => source.to_owned()).set(0.0);
    metrics::counter!("tgpulse_samples_accepted_total", "source" => source.to_owned()).absolute(0);
}
