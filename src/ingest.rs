//! Ingest pipeline shared by every source: samples flow through a bounded channel to one
//! writer task that batches them and writes each batch with binary COPY into staging tables,
//! then merges with `INSERT .. ON CONFLICT DO NOTHING` (replaying input adds 0 rows).
//!
//! Two commit policies: [`CommitPolicy::PerBatch`] for live collection (each batch commits on
//! its own) and [`CommitPolicy::Atomic`] for imports (one transaction for the whole input, so
//! an import is applied whole or not at all).

mod sink;
mod writer;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::db::Db;
use crate::domain::{ChannelId, Handle};

pub use writer::{IngestReport, Writer};

/// Errors of the ingest pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database step of the writer failed; the batch (or the whole atomic import) was
    /// rolled back.
    #[error("failed to {step}")]
    Write {
        /// What was being done, lower-case.
        step: &'static str,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No pooled connection.
    #[error("failed to get a database connection for the writer")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The source side aborted the import; nothing was committed.
    #[error("import aborted: {0}")]
    Aborted(String),
    /// TimescaleDB: the samples were committed, but materialising the continuous aggregates
    /// afterwards failed. Queries still see the data (real-time aggregation) and the refresh
    /// policy catches up.
    #[error(
        "samples were committed, but refreshing the continuous aggregates failed (queries still see \
         the data through real-time aggregation; the refresh policy catches up)"
    )]
    Refresh(#[source] crate::db::Error),
    /// The writer task panicked or was cancelled.
    #[error("the writer task stopped unexpectedly")]
    WriterTask(#[source] tokio::task::JoinError),
}

/// One subscriber-count sample.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSample {
    /// Channel identity.
    pub channel_id: ChannelId,
    /// When the count was read (UTC).
    pub observed_at: DateTime<Utc>,
    /// Subscribers at observation time.
    pub members: i64,
}

/// One reading of a post's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct PostSample {
    /// Channel identity.
    pub channel_id: ChannelId,
    /// Message id inside the channel.
    pub post_id: i64,
    /// Publication time of the post (UTC).
    pub published_at: DateTime<Utc>,
    /// When the counters were read (UTC).
    pub observed_at: DateTime<Utc>,
    /// Views at observation time; `None` if the source did not report them.
    pub views: Option<i64>,
    /// Forwards at observation time.
    pub forwards: Option<i64>,
    /// Replies (comments) at observation time.
    pub replies: Option<i64>,
    /// Reactions of all kinds at observation time.
    pub reactions: Option<i64>,
}

/// A channel seen under a handle and/or title at some time (kept in `channel_names`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSeen {
    /// Channel identity.
    pub channel_id: ChannelId,
    /// Handle at that time, if the source gave one.
    pub handle: Option<Handle>,
    /// Title at that time, if the source gave one.
    pub title: Option<String>,
    /// When it was seen so.
    pub seen_at: DateTime<Utc>,
}

/// What a source sends to the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A subscriber-count sample for `member_samples`.
    Member(MemberSample),
    /// A post counter sample for `post_samples` (and `posts`).
    Post(PostSample),
    /// Channel naming metadata for `channels` / `channel_names`.
    Channel(ChannelSeen),
}

/// When batches become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPolicy {
    /// Every batch commits on its own (live collection).
    PerBatch,
    /// One transaction for everything; nothing is committed unless [`Sender::finish`] is
    /// called with success (imports).
    Atomic,
}

/// Sending side of the pipeline. Cloneable; the bounded channel applies backpressure.
#[derive(Debug, Clone)]
pub struct Sender {
    tx: mpsc::Sender<Message>,
}

#[derive(Debug)]
pub(crate) enum Message {
    Records(Vec<Record>),
    Abort(String),
}

impl Sender {
    /// Sends records; waits while the writer is behind (backpressure).
    ///
    /// errors: `Error::Aborted` if the writer has stopped (its own error is returned by
    /// [`Writer::finish`]).
    pub async fn send(&self, records: Vec<Record>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Message::Records(records))
            .await
            .map_err(|_| Error::Aborted("the writer stopped".into()))
    }

    /// Blocking variant of [`Sender::send`] for reader threads (not for async code).
    ///
    /// errors: `Error::Aborted` if the writer has stopped.
    pub fn blocking_send(&self, records: Vec<Record>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        self.tx
            .blocking_send(Message::Records(records))
            .map_err(|_| Error::Aborted("the writer stopped".into()))
    }

    /// Tells an atomic writer to roll back everything instead of committing.
    pub async fn abort(&self, reason: impl Into<String>) {
        let _ = self.tx.send(Message::Abort(reason.into())).await;
    }
}

/// Starts a writer task on `db` and returns the sender and the writer handle.
///
/// `capacity` is the channel capacity in messages (each message holds up to a few thousand
/// records); `batch_size` is the number of samples per COPY.
pub fn start(
    db: &Db,
    policy: CommitPolicy,
    capacity: usize,
    batch_size: usize,
    source: &str,
) -> (Sender, Writer) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let writer = Writer::spawn(db.clone(), rx, policy, batch_size.max(1), source.to_owned());
    (Sender { tx }, writer)
}
