//! Live collection: sources that read subscriber counts and post counters and stream them as
//! samples into the ingest pipeline (per-batch commits, see [`crate::ingest`]).
//!
//! Every source implements [`Collector`]. Polled sources (Bot API, MTProto, TGStat, Telemetr)
//! implement the smaller [`Poll`] trait and run under [`Polled`], which schedules jobs per
//! watched channel (members hourly; fresh posts every 15 minutes, then daily until a week old;
//! all with jitter), spreads them over `concurrency` tasks and splits channels by shard.
//! Each outgoing request goes through the source's [`Limits`]: token bucket, timeout,
//! exponential backoff with jitter and a deadline, `retry_after`/`FLOOD_WAIT` honoured, and a
//! circuit breaker. The replay source streams a real file as if it were live.
//!
//! Collectors are stateless: what to collect comes from the [`crate::catalog`] (the watched
//! channels of this shard), and every reading is stored with its observation time. Source
//! health goes back to the catalog too.

#[doc(hidden)]
pub mod answers;
mod botapi;
mod http;
mod limits;
pub mod mtproto;
mod polled;
mod registry;
mod replay;
mod run;
mod sources_config;
mod vendor;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::db::Db;
use crate::domain::Handle;
use crate::ingest::{self, Record};

pub use crate::catalog::{ChannelInfo, Shard, SourceError, Target};
pub use limits::{Breaker, Limits, LimitsConfig};
pub use polled::{Polled, Schedule};
pub use registry::{SOURCE_NAMES, build};
pub use replay::{Replay, Speed};
pub use run::{CollectSummary, collect};
pub use sources_config::{SourceConfig, SourcesConfig};

/// Errors that stop a collector run (per-request failures are [`SourceError`]s and only skip
/// the job they hit).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sources file is missing, unreadable or invalid.
    #[error("sources configuration: {0}")]
    Config(String),
    /// A source name that is not registered.
    #[error("unknown source {0:?}; known sources: {known}", known = SOURCE_NAMES.join(", "))]
    UnknownSource(String),
    /// The ingest writer stopped; its own error is returned by `Writer::finish`.
    #[error("the ingest writer stopped")]
    WriterStopped,
    /// A database step failed.
    #[error("database: {0}")]
    Db(#[from] crate::db::Error),
    /// Reading the watched channels failed.
    #[error("catalog: {0}")]
    Catalog(#[from] crate::catalog::Error),
    /// The replay file could not be read.
    #[error("replay: {0}")]
    Replay(#[from] crate::import::Error),
    /// A source failed in a way that ends the run (for example, resolving a handle).
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Everything a running collector needs.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Database: the watched channels are read from it, health is written to it.
    pub db: Db,
    /// Where samples go (bounded: a full queue makes sources wait).
    pub sender: ingest::Sender,
    /// Which watched channels this instance collects.
    pub shard: Shard,
    /// Collect every channel once, then return.
    pub once: bool,
    /// Cancelled on SIGTERM/Ctrl-C: stop starting work, finish what is in flight.
    pub shutdown: CancellationToken,
    /// The time schedules follow (the system clock, or a manual one in tests).
    pub clock: SharedClock,
}

/// What one collector run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Jobs (one channel, one kind) completed.
    pub jobs_ok: u64,
    /// Jobs that failed (logged; the channel is retried at its next due time).
    pub jobs_failed: u64,
    /// Samples accepted by the ingest pipeline (member + post samples; each one is stored or
    /// was already stored once the writer finishes).
    pub samples_sent: u64,
}

/// One source of samples. Registered by name in [`build`].
#[async_trait]
pub trait Collector: Send + Sync + fmt::Debug {
    /// Registered name (`botapi`, `mtproto`, `tgstat`, `telemetr`, `replay`).
    fn name(&self) -> &str;

    /// Resolves a handle to the channel's id and title.
    ///
    /// errors: `SourceError::NotFound` for an unknown handle; `SourceError::Unsupported`
    /// if the source cannot resolve (replay).
    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError>;

    /// When a job of this source last had its samples accepted, in this process; `None`
    /// before the first, and for sources that do not poll (replay).
    fn last_success(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// How often the source reads members; readiness expects a success within 3× this.
    /// `None` for sources without a schedule (replay).
    fn members_every(&self) -> Option<Duration> {
        None
    }

    /// Runs until `ctx.shutdown` is cancelled (or, with `ctx.once`, until every channel was
    /// collected once), sending samples to `ctx.sender`.
    ///
    /// errors: `Error::WriterStopped` if the pipeline is gone; source failures only skip jobs.
    async fn run(&self, ctx: RunContext) -> Result<RunReport, Error>;
}

/// A collector's source as the catalog's [`Resolver`](crate::catalog::Resolver), for `/add`
/// and `tgpulse watch add`.
pub fn resolver(source: Arc<dyn Collector>) -> Arc<dyn crate::catalog::Resolver> {
    Arc::new(ResolveVia(source))
}

#[derive(Debug)]
struct ResolveVia(Arc<dyn Collector>);

#[async_trait]
impl crate::catalog::Resolver for ResolveVia {
    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError> {
        self.0.resolve(handle).await
    }
}

/// A source read by polling, one request (or a few) per channel and job.
#[async_trait]
pub trait Poll: Send + Sync + fmt::Debug + 'static {
    /// Registered name.
    fn name(&self) -> &str;

    /// Whether the source can read post counters (the Bot API cannot).
    fn reads_posts(&self) -> bool;

    /// Resolves a handle.
    ///
    /// errors: `SourceError::NotFound` for an unknown handle, others as the source reports.
    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError>;

    /// Members of `target` now: a `Record::Member` (observed at the response time) and
    /// optionally a `Record::Channel` with the current handle/title.
    ///
    /// errors: as the source reports; `SourceError::NotFound` for an unknown channel.
    async fn members(&self, target: &Target) -> Result<Vec<Record>, SourceError>;

    /// Counters of the posts published at or after `since`, read now: one `Record::Post` per
    /// post (views, forwards, replies, reactions at observation time; `None` where the source
    /// does not report a counter).
    ///
    /// errors: as the source reports; `SourceError::Unsupported` if `reads_posts()` is false.
    async fn posts(
        &self,
        target: &Target,
        since: DateTime<Utc>,
    ) -> Result<Vec<Record>, SourceError>;
}
