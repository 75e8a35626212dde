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
//! Collectors are stateless: what to collect comes from `watched_channels`, and every reading
//! is stored with its observation time.

mod botapi;
mod http;
mod limits;
pub mod mtproto;
mod polled;
mod registry;
mod replay;
mod run;
mod sources_config;
pub mod status;
mod vendor;
pub mod watch;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::db::Db;
use crate::domain::{ChannelId, Handle};
use crate::ingest::{self, Record};

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
    /// Reading the watched channels or another database step failed.
    #[error("database: {0}")]
    Db(#[from] crate::db::Error),
    /// The replay file could not be read.
    #[error("replay: {0}")]
    Replay(#[from] crate::import::Error),
    /// A source failed in a way that ends the run (for example, resolving a handle).
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// What went wrong with one request to a source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// HTTP 429 `retry_after`, Telegram `FLOOD_WAIT_X`, TGStat `flood_control_N`.
    #[error("rate limited by the source; retry after {0:?}")]
    RateLimited(Duration),
    /// 5xx, connection refused or reset, a response cut short.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// No answer within the per-call timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Invalid JSON or a missing/mistyped field.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The source does not know the channel.
    #[error("unknown channel: {0}")]
    NotFound(String),
    /// Token rejected.
    #[error("credentials rejected: {0}")]
    Unauthorized(String),
    /// The plan's request quota is (nearly) spent; the source stops before it runs out.
    #[error("request quota exhausted: {0}")]
    QuotaExhausted(String),
    /// Any other refusal (4xx) that a retry would repeat.
    #[error("request refused: {0}")]
    Rejected(String),
    /// The source cannot do this (e.g. the Bot API cannot read post views).
    #[error("not supported by this source: {0}")]
    Unsupported(&'static str),
    /// The circuit breaker is open after repeated failures.
    #[error("circuit open after repeated failures; next try in {0:?}")]
    CircuitOpen(Duration),
}

impl SourceError {
    /// Worth retrying the same request after a pause.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited(_) | Self::Unavailable(_) | Self::Timeout(_)
        )
    }

    /// The pause the source asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(d) => Some(*d),
            _ => None,
        }
    }

    /// Counts towards opening the circuit breaker: the source itself is failing, as opposed
    /// to a problem with one channel or a deliberate throttle.
    pub fn is_source_failure(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Timeout(_) | Self::Unauthorized(_)
        )
    }

    /// Short stable name of the kind, for logs and `source_status`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Timeout(_) => "timeout",
            Self::Malformed(_) => "malformed",
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::QuotaExhausted(_) => "quota_exhausted",
            Self::Rejected(_) => "rejected",
            Self::Unsupported(_) => "unsupported",
            Self::CircuitOpen(_) => "circuit_open",
        }
    }
}

/// A channel as a source identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Telegram channel id (bare, without the Bot API's -100 prefix).
    pub channel_id: ChannelId,
    /// Public handle, if the channel has one.
    pub handle: Option<Handle>,
    /// Title at resolution time.
    pub title: Option<String>,
}

/// A watched channel, as handed to a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Telegram channel id.
    pub channel_id: ChannelId,
    /// Handle to address the channel by (TGStat and Telemetr need it; the Bot API and MTProto
    /// use it when present).
    pub handle: Option<Handle>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.handle {
            Some(h) => write!(f, "@{} ({})", h.as_str(), self.channel_id.get()),
            None => write!(f, "{}", self.channel_id.get()),
        }
    }
}

impl Target {
    /// The handle.
    ///
    /// errors: `SourceError::NotFound` when there is none (for sources that can only address
    /// channels by handle).
    pub fn require_handle(&self) -> Result<&Handle, SourceError> {
        self.handle.as_ref().ok_or_else(|| {
            SourceError::NotFound(format!(
                "channel {} has no handle; this source addresses channels by handle",
                self.channel_id.get()
            ))
        })
    }
}

/// `i/N`: this instance collects the channels whose id modulo N is i.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This instance, 0-based.
    pub index: u32,
    /// Instances in total.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether this shard collects `channel`.
    pub fn owns(&self, channel: ChannelId) -> bool {
        channel.get().rem_euclid(i64::from(self.count)) == i64::from(self.index)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("invalid shard {s:?}: expected i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(err)?;
        let index: u32 = i.trim().parse().map_err(|_| err())?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Self { index, count })
    }
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
