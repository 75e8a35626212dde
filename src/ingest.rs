//! Ingest pipeline shared by every source: samples flow through a bounded channel to one
//! writer task that batches them and writes each batch with binary COPY into staging tables,
//! then merges with `INSERT .. ON CONFLICT DO NOTHING` (replaying input adds 0 rows).
//!
//! Two commit policies: [`CommitPolicy::PerBatch`] for live collection (each batch commits on
//! its own) and [`CommitPolicy::Atomic`] for imports (one transaction for the whole input, so
//! an import is applied whole or not at all).

mod merge;
mod refresher;
mod sink;
mod writer;

use chrono::{DateTime, Utc};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::IngestConfig;
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
    /// Shutdown: the last batch could not be written before the final-flush deadline because
    /// the database stayed unavailable.
    #[error("{samples} samples could not be written before the shutdown deadline")]
    Unwritten {
        /// Samples in the batch that was held.
        samples: u64,
        /// The last write error.
        #[source]
        source: Box<Error>,
    },
    /// Shutdown: the database gave no answer before the final-flush deadline.
    #[error("no answer from the database before the shutdown deadline")]
    Deadline,
    /// The writer task panicked or was cancelled.
    #[error("the writer task stopped unexpectedly")]
    WriterTask(#[source] tokio::task::JoinError),
}

impl Error {
    /// True when the failure is the database's availability (connection lost or refused,
    /// server shutting down, too many connections, serialization conflict), so the same batch
    /// may succeed later; false for errors that a retry would repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Write { source, .. } => pg_transient(source),
            Self::Pool(deadpool_postgres::PoolError::Backend(e)) => pg_transient(e),
            Self::Pool(_) | Self::Deadline => true,
            _ => false,
        }
    }

    /// The sending side found the writer gone; the writer's own error comes from
    /// [`Writer::finish`].
    pub fn writer_stopped() -> Self {
        Self::Aborted("the writer stopped".into())
    }
}

fn pg_transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // No SQL state: the connection itself failed (refused, reset, closed, timed out).
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08") // connection exception
                || c.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
                || c == "53300" // too many connections
                || c == "40001" // serialization failure
                || c == "40P01" // deadlock detected
        }
    }
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
    /// Posts the channel had published at observation time, where the source gives it (the
    /// animals file's `post_count`); stored in `member_samples.post_count`.
    pub post_count: Option<i64>,
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

/// How a post refers to another channel (`mentions.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MentionKind {
    /// The post is a forward of the other channel's post.
    Forward,
    /// The post's text mentions the other channel's @handle.
    Mention,
    /// The post links to the other channel (`t.me/handle[/post]`).
    Link,
}

impl MentionKind {
    /// The value stored in `mentions.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Mention => "mention",
            Self::Link => "link",
        }
    }

    /// Parses a stored `mentions.kind`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "forward" => Some(Self::Forward),
            "mention" => Some(Self::Mention),
            "link" => Some(Self::Link),
            _ => None,
        }
    }
}

/// One post of a tgpulse channel forwarding, mentioning or linking another channel (a row of
/// `mentions`). At least one of `source_channel_id` and `source_name` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    /// The channel whose post it is.
    pub channel_id: ChannelId,
    /// Message id of that post.
    pub post_id: i64,
    /// Publication time of that post (UTC).
    pub published_at: DateTime<Utc>,
    /// Forward, mention or link.
    pub kind: MentionKind,
    /// The other channel's id, when the source gives it.
    pub source_channel_id: Option<ChannelId>,
    /// The other channel's message id, when the source gives it.
    pub source_post_id: Option<i64>,
    /// The other channel's handle (lower-case, no `@`) or title, when the source gives it.
    pub source_name: Option<String>,
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
    /// A forward, mention or link between channels for `mentions`.
    Mention(Mention),
}

impl Record {
    /// A member or post sample (not channel naming metadata).
    pub fn is_sample(&self) -> bool {
        matches!(self, Record::Member(_) | Record::Post(_))
    }
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

/// Sending side of the pipeline. Cloneable. Backpressure: at most `queue_capacity` samples
/// wait between the sources and the writer; a send waits until the writer has taken enough.
#[derive(Debug, Clone)]
pub struct Sender {
    tx: mpsc::Sender<Message>,
    room: Arc<Semaphore>,
    capacity: u32,
    /// Stored in the `source` column of every sample sent through this handle.
    source: Arc<str>,
}

#[derive(Debug)]
pub(crate) enum Message {
    /// Records, the queue room they hold until the writer has taken them, and the name of the
    /// source that read them.
    Records(Vec<Record>, OwnedSemaphorePermit, Arc<str>),
    Abort(String),
}

impl Sender {
    /// The same queue, with samples stored under `source` (a collector's name: `botapi`,
    /// `tgstat`, `telemetr`, `mtproto`, `replay`), so that two sources reading the same channel
    /// can be told apart.
    pub fn tagged(&self, source: &str) -> Self {
        Self {
            source: source.into(),
            ..self.clone()
        }
    }

    fn permits(&self, records: &[Record]) -> u32 {
        u32::try_from(records.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity)
    }

    /// Sends records; waits while the queue is full (backpressure).
    ///
    /// errors: `Error::Aborted` if the writer has stopped (its own error is returned by
    /// [`Writer::finish`]).
    pub async fn send(&self, records: Vec<Record>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let permit = self
            .room
            .clone()
            .acquire_many_owned(self.permits(&records))
            .await
            .map_err(|_| Error::writer_stopped())?;
        self.tx
            .send(Message::Records(records, permit, Arc::clone(&self.source)))
            .await
            .map_err(|_| Error::writer_stopped())
    }

    /// Blocking variant of [`Sender::send`] for reader threads (never call it from async code).
    ///
    /// errors: `Error::Aborted` if the writer has stopped.
    pub fn blocking_send(&self, records: Vec<Record>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let permit = futures::executor::block_on(
            self.room.clone().acquire_many_owned(self.permits(&records)),
        )
        .map_err(|_| Error::writer_stopped())?;
        self.tx
            .blocking_send(Message::Records(records, permit, Arc::clone(&self.source)))
            .map_err(|_| Error::writer_stopped())
    }

    /// Tells an atomic writer to roll back everything instead of committing.
    pub async fn abort(&self, reason: impl Into<String>) {
        let _ = self.tx.send(Message::Abort(reason.into())).await;
    }
}

/// Starts a writer task on `db` and returns the sender and the writer handle.
///
/// `cfg` gives the batch size (samples per COPY), the queue capacity (samples waiting) and
/// the longest time a partial batch waits under [`CommitPolicy::PerBatch`].
pub fn start(db: &Db, policy: CommitPolicy, cfg: &IngestConfig, source: &str) -> (Sender, Writer) {
    spawn(db, policy, cfg, source, CancellationToken::new())
}

/// Starts a per-batch writer for live collection. Once `shutdown` is cancelled, a batch held
/// through a database outage keeps retrying for at most `cfg.final_flush_secs`, then the
/// writer returns `Error::Unwritten` with every accepted sample it could not store (the held
/// batch and what still waits in the queue).
pub fn start_live(
    db: &Db,
    cfg: &IngestConfig,
    source: &str,
    shutdown: CancellationToken,
) -> (Sender, Writer) {
    spawn(db, CommitPolicy::PerBatch, cfg, source, shutdown)
}

fn spawn(
    db: &Db,
    policy: CommitPolicy,
    cfg: &IngestConfig,
    source: &str,
    shutdown: CancellationToken,
) -> (Sender, Writer) {
    let capacity = u32::try_from(cfg.queue_capacity.max(1)).unwrap_or(u32::MAX);
    // The semaphore bounds samples; the channel only needs room for the messages they form.
    let (tx, rx) = mpsc::channel(cfg.queue_capacity.clamp(1, 1 << 16));
    let room = Arc::new(Semaphore::new(capacity as usize));
    let queue = writer::Queue {
        rx,
        room: Arc::clone(&room),
        capacity: capacity as usize,
    };
    let writer = Writer::spawn(db.clone(), queue, policy, cfg, source.to_owned(), shutdown);
    let sender = Sender {
        tx,
        room,
        capacity,
        source: source.into(),
    };
    (sender, writer)
}

/// The `Error::Write` of a failed step, for `map_err`.
fn write_err(step: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Write { step, source }
}
