//! What a channel is to the service: the watched channels (`watched_channels`), resolving a
//! handle to a channel ([`Resolver`]), and how the sources are doing (`source_status`).
//!
//! The bot and the CLI add, remove and list channels here; collectors read their [`Target`]s
//! from here and report their health here. Nothing in this module talks to a source: a
//! [`Resolver`] is handed in (the CLI builds one from a collector's source).

mod status;
mod watch;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{ChannelId, Handle};

pub use crate::db::Storage;
pub use status::{
    Health, SourceHealth, WatchedChannel, health, record_status, reports_given_up, watched,
};
pub use watch::{add, is_watched, remove, targets};

/// Errors of the catalog; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No pooled database connection.
    #[error("failed to get a database connection")]
    Connect(#[from] deadpool_postgres::PoolError),
    /// Recording a channel and watching it failed (nothing of it was kept).
    #[error("failed to add channel {channel} to the watched channels")]
    AddChannel {
        /// The channel.
        channel: ChannelId,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Looking up whether a channel is watched failed.
    #[error("failed to look up whether channel {channel} is watched")]
    LookUpWatched {
        /// The channel.
        channel: ChannelId,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Removing a channel from the watched channels failed.
    #[error("failed to stop watching channel {channel}")]
    RemoveChannel {
        /// The channel.
        channel: ChannelId,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Reading a shard's targets failed.
    #[error("failed to read the watched channels of shard {shard}")]
    ReadTargets {
        /// The shard, `i/N`.
        shard: Shard,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Adding a run's counters to `source_status` failed.
    #[error("failed to record the status of source {source_name}")]
    RecordStatus {
        /// Registered source name.
        source_name: String,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Reading the watched channels with their latest numbers failed.
    #[error("failed to read the watched channels with their latest numbers")]
    ReadWatched(#[source] tokio_postgres::Error),
    /// Reading `source_status` failed.
    #[error("failed to read the source status")]
    ReadSourceHealth(#[source] tokio_postgres::Error),
    /// Counting recent samples failed.
    #[error("failed to count recent samples")]
    CountRecentSamples(#[source] tokio_postgres::Error),
    /// Counting the reports given up failed.
    #[error("failed to count the reports given up")]
    CountGivenUpReports(#[source] tokio_postgres::Error),
}

/// What went wrong with one request to a source (resolving a handle, reading members or
/// posts). Collectors count and log these per job; `/add` shows them to the admin.
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

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
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

/// Resolves a public handle to the channel behind it (`/add`, `tgpulse watch add`).
#[async_trait]
pub trait Resolver: Send + Sync + fmt::Debug {
    /// The channel's id, current handle and title.
    ///
    /// errors: `SourceError::NotFound` for an unknown handle; `SourceError::Unsupported` if
    /// the source behind it cannot resolve; others as the source reports.
    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError>;
}
