//! The service (`tgpulse serve`). [`App::build`] wires the ingest writer, the sources, the
//! ops server and any further tasks (the bot); [`App::run`] owns every long-running task by
//! name under one [`Supervisor`] until shutdown, then lets the last batch land within the
//! final-flush deadline and reports what happened.
//!
//! Tasks and their names: `writer` (the ingest writer; restarted with a new queue if it
//! fails), `source:<name>` per source, `ops` (HTTP), `metrics` (upkeep of the Prometheus
//! recorder and the watched-channel gauge), and those added with [`App::add_task`] (`bot`).

pub mod ops;
pub mod supervisor;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::clock::SharedClock;
use crate::collect::{Collector, RunContext, RunReport, Shard};
use crate::config::IngestConfig;
use crate::db::Db;
use crate::ingest::{self, IngestReport};
pub use supervisor::{Restart, Supervisor, TaskBoard, TaskPhase, TaskStatus};

/// What `serve` runs.
#[derive(Debug)]
pub struct AppConfig {
    /// The sources to run (each a supervised task).
    pub sources: Vec<Arc<dyn Collector>>,
    /// Which watched channels this instance collects.
    pub shard: Shard,
    /// Batching, queue and final-flush settings of the writer.
    pub ingest: IngestConfig,
    /// Where the ops server listens (`/healthz`, `/readyz`, `/health`, `/metrics`); `None`
    /// runs without it.
    pub ops_listen: Option<SocketAddr>,
    /// The clock of every schedule.
    pub clock: SharedClock,
}

/// A task body: called again at every (re)start with the shutdown token.
pub type TaskFn =
    Box<dyn FnMut(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// What the writer stored over the service's life (summed over restarts).
#[derive(Debug, Default)]
pub struct WriterOutcome {
    /// Samples stored and batches written.
    pub report: IngestReport,
    /// Accepted samples that could not be stored: the writer failed, or the database stayed
    /// away past the final-flush deadline at shutdown.
    pub unstored: u64,
    /// The writer's failures, as error chains.
    pub errors: Vec<String>,
}

/// What `serve` did, for the summary printed at exit.
#[derive(Debug)]
pub struct ServeSummary {
    /// Per source: its name and what its runs did (summed over restarts).
    pub sources: Vec<(String, RunReport)>,
    /// The writer's outcome.
    pub writer: WriterOutcome,
    /// Every task at exit, with restart counts and last errors.
    pub tasks: Vec<TaskStatus>,
}

type SenderSlot = Arc<Mutex<Option<ingest::Sender>>>;

/// The wired service.
#[derive(Debug)]
pub struct App {
    supervisor: Supervisor,
    reports: Vec<(String, Arc<Mutex<RunReport>>)>,
    writer: Arc<Mutex<WriterOutcome>>,
    ops_addr: Option<SocketAddr>,
}

impl App {
    /// Wires and starts the service's tasks: the writer, one task per source, the ops server
    /// and the metrics upkeep. `shutdown` stops them all.
    ///
    /// errors: the ops listener cannot bind its address.
    pub async fn build(
        db: Db,
        cfg: AppConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let prometheus = crate::telemetry::prometheus();
        let supervisor = Supervisor::new(shutdown);
        let slot: SenderSlot = Arc::default();
        let writer = Arc::new(Mutex::new(WriterOutcome::default()));
        spawn_writer(&supervisor, &db, &cfg.ingest, &slot, &writer);
        let mut reports = Vec::with_capacity(cfg.sources.len());
        for source in &cfg.sources {
            crate::telemetry::zero_source(source.name());
            let report = Arc::new(Mutex::new(RunReport::default()));
            reports.push((source.name().to_owned(), Arc::clone(&report)));
            spawn_source(&supervisor, &db, &cfg, source, &slot, report);
        }
        let ops_addr = match cfg.ops_listen {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("the ops server cannot listen on {addr}"))?;
                let bound = listener.local_addr().context("ops listener address")?;
                let state = ops::OpsState {
                    db: db.clone(),
                    board: supervisor.board(),
                    sources: cfg.sources.clone(),
                    started_at: cfg.clock.now(),
                    clock: Arc::clone(&cfg.clock),
                    prometheus: prometheus.clone(),
                };
                spawn_ops(&supervisor, listener, state);
                tracing::info!(address = %bound, "ops server: /healthz /readyz /health /metrics");
                Some(bound)
            }
        };
        spawn_metrics_upkeep(&supervisor, &db, prometheus);
        Ok(Self {
            supervisor,
            reports,
            writer,
            ops_addr,
        })
    }

    /// The ops server's address (with the port the system chose for port 0).
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops_addr
    }

    /// The supervised tasks' status board.
    pub fn board(&self) -> Arc<TaskBoard> {
        self.supervisor.board()
    }

    /// Adds a supervised task (the bot): `body` is called at every start.
    pub fn add_task(&self, name: &str, restart: Restart, body: TaskFn) {
        self.supervisor.spawn(name, restart, body);
    }

    /// Runs until the shutdown token is cancelled, then stops every task (jobs in flight
    /// finish, the last batch gets the final-flush deadline) and returns the summary.
    pub async fn run(self) -> ServeSummary {
        self.supervisor.shutdown_token().cancelled().await;
        self.supervisor.shutdown().await;
        let sources = self
            .reports
            .iter()
            .map(|(name, r)| (name.clone(), r.lock().expect("report lock").clone()))
            .collect();
        let writer = std::mem::take(&mut *self.writer.lock().expect("writer outcome lock"));
        ServeSummary {
            sources,
            writer,
            tasks: self.supervisor.board().snapshot(),
        }
    }
}

/// The writer: a new queue at every start, handed to the sources through `slot`. At shutdown
/// the slot is emptied, so the writer finishes once the sources have dropped their senders.
fn spawn_writer(
    supervisor: &Supervisor,
    db: &Db,
    cfg: &IngestConfig,
    slot: &SenderSlot,
    outcome: &Arc<Mutex<WriterOutcome>>,
) {
    let (db, cfg, slot, outcome) = (
        db.clone(),
        cfg.clone(),
        Arc::clone(slot),
        Arc::clone(outcome),
    );
    // The first queue exists before any source starts; a restart makes a new one.
    let (sender, writer) = ingest::start_live(&db, &cfg, "collect", supervisor.shutdown_token());
    *slot.lock().expect("sender slot lock") = Some(sender);
    let mut first = Some(writer);
    supervisor.spawn("writer", Restart::Always, move |token| {
        let writer = first.take().unwrap_or_else(|| {
            let (sender, writer) = ingest::start_live(&db, &cfg, "collect", token.clone());
            *slot.lock().expect("sender slot lock") = Some(sender);
            writer
        });
        let (slot, outcome) = (Arc::clone(&slot), Arc::clone(&outcome));
        Box::pin(async move {
            let finished = writer.finish();
            tokio::pin!(finished);
            let result = tokio::select! {
                r = &mut finished => r,
                _ = token.cancelled() => {
                    slot.lock().expect("sender slot lock").take();
                    finished.await
                }
            };
            slot.lock().expect("sender slot lock").take();
            let mut o = outcome.lock().expect("writer outcome lock");
            match result {
                Ok(r) => {
                    add_ingest(&mut o.report, &r);
                    Ok(())
                }
                Err(e) => {
                    if let ingest::Error::Unwritten { samples, .. } = &e {
                        o.unstored += samples;
                    }
                    o.errors.push(crate::error_chain(&e));
                    Err(anyhow::Error::new(e).context("the ingest writer stopped"))
                }
            }
        }) as BoxFuture<'static, anyhow::Result<()>>
    });
}

fn add_ingest(total: &mut IngestReport, r: &IngestReport) {
    total.member_samples_received += r.member_samples_received;
    total.member_samples_inserted += r.member_samples_inserted;
    total.post_samples_received += r.post_samples_received;
    total.post_samples_inserted += r.post_samples_inserted;
    total.samples_upgraded += r.samples_upgraded;
    total.mentions_received += r.mentions_received;
    total.mentions_inserted += r.mentions_inserted;
    total.batches += r.batches;
    total.last_write = total.last_write.max(r.last_write);
}

fn spawn_source(
    supervisor: &Supervisor,
    db: &Db,
    cfg: &AppConfig,
    source: &Arc<dyn Collector>,
    slot: &SenderSlot,
    report: Arc<Mutex<RunReport>>,
) {
    // A polled source runs until shutdown; a replay may reach the end of its file.
    let restart = if source.members_every().is_some() {
        Restart::Always
    } else {
        Restart::OnFailure
    };
    let (db, shard, clock, slot, source) = (
        db.clone(),
        cfg.shard,
        Arc::clone(&cfg.clock),
        Arc::clone(slot),
        Arc::clone(source),
    );
    let name = format!("source:{}", source.name());
    supervisor.spawn(name, restart, move |token| {
        let sender = slot.lock().expect("sender slot lock").clone();
        let (db, clock, source, report) = (
            db.clone(),
            Arc::clone(&clock),
            Arc::clone(&source),
            Arc::clone(&report),
        );
        let span = tracing::info_span!("source", source = source.name());
        Box::pin(
            async move {
                let sender = sender
                    .context("the ingest writer is not running")?
                    .tagged(source.name());
                let ctx = RunContext {
                    db,
                    sender,
                    shard,
                    once: false,
                    shutdown: token,
                    clock,
                };
                let r = source.run(ctx).await?;
                let mut total = report.lock().expect("report lock");
                total.jobs_ok += r.jobs_ok;
                total.jobs_failed += r.jobs_failed;
                total.samples_sent += r.samples_sent;
                Ok(())
            }
            .instrument(span),
        ) as BoxFuture<'static, anyhow::Result<()>>
    });
}

fn spawn_ops(supervisor: &Supervisor, listener: tokio::net::TcpListener, state: ops::OpsState) {
    let addr = listener.local_addr().ok();
    let mut first = Some(listener);
    supervisor.spawn("ops", Restart::Always, move |token| {
        let listener = first.take();
        let router = ops::router(state.clone());
        Box::pin(async move {
            let listener = match listener {
                Some(l) => l,
                None => {
                    let addr = addr.context("the ops listener had no address")?;
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("the ops server cannot listen on {addr}"))?
                }
            };
            axum::serve(listener, router)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
                .context("the ops server failed")
        }) as BoxFuture<'static, anyhow::Result<()>>
    });
}

/// How often histograms are folded and the watched-channel gauge is refreshed.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

fn spawn_metrics_upkeep(
    supervisor: &Supervisor,
    db: &Db,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
) {
    let db = db.clone();
    supervisor.spawn("metrics", Restart::Always, move |token| {
        let (db, prometheus) = (db.clone(), prometheus.clone());
        Box::pin(async move {
            loop {
                prometheus.run_upkeep();
                if let Ok(Ok(n)) = tokio::time::timeout(ops::DB_CHECK_TIMEOUT, watched(&db)).await {
                    metrics::gauge!("tgpulse_watched_channels").set(n as f64);
                }
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(UPKEEP_EVERY) => {}
                }
            }
        }) as BoxFuture<'static, anyhow::Result<()>>
    });
}

async fn watched(db: &Db) -> anyhow::Result<i64> {
    let client = db.pool.get().await?;
    let row = client
        .query_one("SELECT count(*) FROM watched_channels", &[])
        .await?;
    Ok(row.get(0))
}
