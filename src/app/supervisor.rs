//! Supervision: every long-running task of the service runs under a name in one
//! [`TaskTracker`]. A task that fails or panics is logged with its name, counted
//! (`tgpulse_task_restarts_total`), shown on the [`TaskBoard`] and restarted with exponential
//! backoff (backon). Nothing stops silently; shutdown cancels one token and waits for all.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a task's normal return means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// The task runs until shutdown; returning before it is a failure and it is restarted.
    Always,
    /// The task may finish (a replay that reached the end of its file); only errors and
    /// panics restart it.
    OnFailure,
}

/// Where a supervised task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskPhase {
    /// Running.
    Running,
    /// Failed; waiting for its backoff pause before the next start.
    Restarting,
    /// Finished normally (a [`Restart::OnFailure`] task).
    Finished,
    /// Stopped by shutdown.
    Stopped,
}

/// One supervised task as `/health`, `/readyz` and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskStatus {
    /// The task's name (`writer`, `source:botapi`, `bot`, `ops`, ...).
    pub name: String,
    /// Where it is.
    pub phase: TaskPhase,
    /// Restarts after a failure or panic since the service started.
    pub restarts: u64,
    /// The last failure: its error chain or panic message.
    pub last_error: Option<String>,
    /// When the last failure happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The status of every supervised task, shared with the ops server.
#[derive(Debug, Default)]
pub struct TaskBoard {
    tasks: Mutex<BTreeMap<String, TaskStatus>>,
}

impl TaskBoard {
    /// Every task, by name.
    pub fn snapshot(&self) -> Vec<TaskStatus> {
        self.tasks
            .lock()
            .expect("task board lock")
            .values()
            .cloned()
            .collect()
    }

    fn set_phase(&self, name: &str, phase: TaskPhase) {
        let mut tasks = self.tasks.lock().expect("task board lock");
        let t = tasks.entry(name.to_owned()).or_insert_with(|| TaskStatus {
            name: name.to_owned(),
            phase,
            restarts: 0,
            last_error: None,
            last_error_at: None,
        });
        t.phase = phase;
        metrics::gauge!("tgpulse_task_running", "task" => name.to_owned()).set(
            if phase == TaskPhase::Running {
                1.0
            } else {
                0.0
            },
        );
    }

    fn failed(&self, name: &str, error: String, at: DateTime<Utc>) {
        self.set_phase(name, TaskPhase::Restarting);
        let mut tasks = self.tasks.lock().expect("task board lock");
        if let Some(t) = tasks.get_mut(name) {
            t.restarts += 1;
            t.last_error = Some(error);
            t.last_error_at = Some(at);
        }
        metrics::counter!("tgpulse_task_restarts_total", "task" => name.to_owned()).increment(1);
    }
}

/// First pause before a restart; it doubles (with jitter) up to [`MAX_PAUSE`].
const MIN_PAUSE: Duration = Duration::from_millis(200);
/// Longest pause between restarts.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// A task that ran this long before failing starts its backoff again from [`MIN_PAUSE`].
const STABLE_AFTER: Duration = Duration::from_secs(120);

fn backoff() -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::default()
        .with_min_delay(MIN_PAUSE)
        .with_max_delay(MAX_PAUSE)
        .with_jitter()
        .without_max_times()
        .build()
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&'static str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_else(|_| "a panic without a message".to_owned()),
    }
}

/// Owner of the service's tasks: spawns them by name, restarts failures, stops them all.
#[derive(Debug, Clone)]
pub struct Supervisor {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    board: Arc<TaskBoard>,
}

impl Supervisor {
    /// A supervisor whose tasks stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            tracker: TaskTracker::new(),
            shutdown,
            board: Arc::default(),
        }
    }

    /// The status board of every task.
    pub fn board(&self) -> Arc<TaskBoard> {
        Arc::clone(&self.board)
    }

    /// The token that stops every task.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs `make(token)` as the task `name` until shutdown. Each start calls `make` again, so
    /// a restarted task starts fresh; `token` is cancelled at shutdown, and the task should
    /// then finish what it has in flight and return.
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, restart: Restart, mut make: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        let (tracker, token, board) = (
            self.tracker.clone(),
            self.shutdown.clone(),
            Arc::clone(&self.board),
        );
        board.set_phase(&name, TaskPhase::Running);
        // Counted from zero, so a dashboard sees the series before the first restart.
        metrics::counter!("tgpulse_task_restarts_total", "task" => name.clone()).absolute(0);
        self.tracker.spawn(async move {
            let mut pauses = backoff();
            loop {
                let started = Instant::now();
                // A task of its own, so a panic ends only this run of it.
                let outcome = tracker.spawn(make(token.clone())).await;
                let failure = match outcome {
                    Ok(Ok(())) if token.is_cancelled() || restart == Restart::OnFailure => {
                        let phase = if token.is_cancelled() {
                            TaskPhase::Stopped
                        } else {
                            TaskPhase::Finished
                        };
                        tracing::info!(task = %name, ?phase, "task ended");
                        board.set_phase(&name, phase);
                        return;
                    }
                    Ok(Ok(())) => "returned before shutdown".to_owned(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) if e.is_panic() => {
                        format!("panicked: {}", panic_message(e.into_panic()))
                    }
                    Err(e) => e.to_string(),
                };
                if token.is_cancelled() {
                    tracing::error!(task = %name, error = %failure, "task failed during shutdown");
                    board.failed(&name, failure, Utc::now());
                    board.set_phase(&name, TaskPhase::Stopped);
                    return;
                }
                if started.elapsed() >= STABLE_AFTER {
                    pauses = backoff();
                }
                let pause = pauses.next().unwrap_or(MAX_PAUSE);
                tracing::error!(task = %name, error = %failure, pause_ms = pause.as_millis() as u64,
                    "task failed; restarting after a pause");
                board.failed(&name, failure, Utc::now());
                tokio::select! {
                    _ = tokio::time::sleep(pause) => board.set_phase(&name, TaskPhase::Running),
                    _ = token.cancelled() => {
                        board.set_phase(&name, TaskPhase::Stopped);
                        return;
                    }
                }
            }
        });
    }

    /// Cancels every task and waits until all have returned.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
