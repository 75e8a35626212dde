//! The ops server (axum): `/healthz` (the process answers), `/readyz` (database, tasks and
//! sources are fine, else 503 with the reasons), `/health` (the whole status as JSON) and
//! `/metrics` (Prometheus text format).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use super::supervisor::{TaskBoard, TaskPhase, TaskStatus};
use crate::clock::{SharedClock, chrono_duration};
use crate::collect::Collector;
use crate::db::Db;

/// Longest wait for the database's answer in `/readyz`.
pub const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// A source is stale when its last success (or, before the first, the service's start) is
/// older than this many members intervals.
pub const STALE_INTERVALS: u32 = 3;

/// What the ops endpoints read.
#[derive(Debug, Clone)]
pub struct OpsState {
    /// The service's database.
    pub db: Db,
    /// The supervised tasks.
    pub board: Arc<TaskBoard>,
    /// The running sources (for their last success and schedule).
    pub sources: Vec<Arc<dyn Collector>>,
    /// When the service started (the grace before a source's first success).
    pub started_at: DateTime<Utc>,
    /// The service's clock.
    pub clock: SharedClock,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
}

/// One source in `/health` and `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    /// Registered name.
    pub name: String,
    /// Last job whose samples were accepted (this process).
    pub last_success: Option<DateTime<Utc>>,
    /// Members interval in seconds; `None` for sources without a schedule (replay).
    pub members_every_secs: Option<u64>,
    /// Whether the last success is recent enough (always true without a schedule).
    pub fresh: bool,
}

/// The body of `/health` and `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// True when the service is ready for traffic.
    pub ready: bool,
    /// Why it is not ready; empty when it is.
    pub reasons: Vec<String>,
    /// `ok`, or why the database check failed.
    pub database: String,
    /// Every supervised task.
    pub tasks: Vec<TaskStatus>,
    /// Every running source.
    pub sources: Vec<SourceHealth>,
    /// Scheduled reports generated in the last 7 days whose sending was given up after 24 h
    /// of retries (`reports_queue`); `None` when the database did not answer.
    pub reports_given_up: Option<i64>,
    /// When this status was taken.
    pub checked_at: DateTime<Utc>,
}

async fn check_db(db: &Db) -> Result<(), String> {
    let probe = async {
        let client = db.pool.get().await.map_err(|e| e.to_string())?;
        client
            .query_one("SELECT 1", &[])
            .await
            .map_err(|e| crate::error_chain(&e))?;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(DB_CHECK_TIMEOUT, probe).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {DB_CHECK_TIMEOUT:?}")),
    }
}

impl OpsState {
    /// Checks the database (within [`DB_CHECK_TIMEOUT`]), the tasks and the sources.
    pub async fn status(&self) -> Status {
        let now = self.clock.now();
        let mut reasons = Vec::new();
        let database = match check_db(&self.db).await {
            Ok(()) => "ok".to_owned(),
            Err(e) => {
                reasons.push(format!("database: {e}"));
                e
            }
        };
        let tasks = self.board.snapshot();
        for t in &tasks {
            if matches!(t.phase, TaskPhase::Restarting | TaskPhase::Stopped) {
                reasons.push(format!(
                    "task {} is {}: {}",
                    t.name,
                    if t.phase == TaskPhase::Stopped {
                        "stopped"
                    } else {
                        "restarting"
                    },
                    t.last_error.as_deref().unwrap_or("no error recorded")
                ));
            }
        }
        let sources = self
            .sources
            .iter()
            .map(|s| {
                let last_success = s.last_success();
                let every = s.members_every();
                let fresh = every.is_none_or(|every| {
                    let since = last_success.unwrap_or(self.started_at);
                    now - since <= chrono_duration(every * STALE_INTERVALS)
                });
                if !fresh {
                    reasons.push(format!(
                        "source {}: no success since {}",
                        s.name(),
                        last_success.map_or_else(
                            || format!("the start at {}", self.started_at.to_rfc3339()),
                            |t| t.to_rfc3339()
                        )
                    ));
                }
                SourceHealth {
                    name: s.name().to_owned(),
                    last_success,
                    members_every_secs: every.map(|d| d.as_secs()),
                    fresh,
                }
            })
            .collect();
        let since = now - chrono::Duration::days(7);
        let reports_given_up = tokio::time::timeout(
            DB_CHECK_TIMEOUT,
            crate::catalog::reports_given_up(&self.db, since),
        )
        .await
        .ok()
        .and_then(Result::ok);
        Status {
            ready: reasons.is_empty(),
            reasons,
            database,
            tasks,
            sources,
            reports_given_up,
            checked_at: now,
        }
    }
}

/// The router of the ops endpoints.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn json(code: StatusCode, body: &impl Serialize) -> Response {
    let text =
        serde_json::to_string_pretty(body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    (code, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let s = state.status().await;
    let code = if s.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, &s)
}

async fn health(State(state): State<OpsState>) -> Response {
    json(StatusCode::OK, &state.status().await)
}

async fn metrics(State(state): State<OpsState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
        .into_response()
}
