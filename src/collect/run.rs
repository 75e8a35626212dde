//! Running several sources into one ingest pipeline, until done or shut down.

use std::sync::Arc;

use super::{Collector, Error, RunContext, RunReport, Shard};
use crate::config::IngestConfig;
use crate::db::Db;
use crate::ingest::{self, IngestReport};
use tokio_util::sync::CancellationToken;

/// Outcome of [`collect`].
#[derive(Debug, Default)]
pub struct CollectSummary {
    /// Per source: its name and run report (or the error that ended it).
    pub sources: Vec<(String, Result<RunReport, Error>)>,
    /// What the writer stored.
    pub ingest: IngestReport,
}

impl CollectSummary {
    /// Samples accepted from all sources.
    pub fn samples_sent(&self) -> u64 {
        self.sources
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|r| r.samples_sent)
            .sum()
    }
}

/// Runs `sources` concurrently into one per-batch pipeline until each returns (with `once`)
/// or `shutdown` is cancelled, then flushes the last batch.
///
/// errors: the writer's error (`crate::ingest::Error`), e.g. `Unwritten` when the database
/// stayed away past the final-flush deadline. Source errors are in the summary.
pub async fn collect(
    db: &Db,
    sources: Vec<Arc<dyn Collector>>,
    ingest_cfg: &IngestConfig,
    shard: Shard,
    once: bool,
    shutdown: CancellationToken,
) -> Result<CollectSummary, ingest::Error> {
    let (sender, writer) = ingest::start_live(db, ingest_cfg, "collect", shutdown.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let ctx = RunContext {
            db: db.clone(),
            sender: sender.tagged(source.name()),
            shard,
            once,
            shutdown: shutdown.clone(),
            clock: crate::clock::SystemClock::shared(),
        };
        tasks.spawn(async move {
            let name = source.name().to_owned();
            let r = source.run(ctx).await;
            (name, r)
        });
    }
    // The writer ends once every sender is gone: the sources' contexts and this one.
    drop(sender);
    let mut summary = CollectSummary::default();
    // In the order they end, so a source that stops early is logged when it stops.
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((name, r)) => {
                if let Err(e) = &r {
                    tracing::error!(source = %name, error = %crate::error_chain(e), "source stopped");
                }
                summary.sources.push((name, r));
            }
            Err(e) => tracing::error!(error = %e, "a source task panicked"),
        }
    }
    summary.ingest = writer.finish().await?;
    Ok(summary)
}
