//! Streaming export of a relation to Parquet (zstd), CSV (RFC 4180, header row) or JSON
//! Lines: to a file, stdout or an object in S3 ([`Destination`]), to a Hive-style dataset
//! partitioned by month, day or channel and exported incrementally ([`dataset`]), or (for the
//! bot) to a series of size-limited files ([`parts`]).
//!
//! Batches stream from PostgreSQL through DataFusion into the writer through a bounded
//! channel, so memory stays bounded by a few batches plus one Parquet row group (and, for
//! objects, the parts being uploaded) whatever the row count. The reader ends the stream
//! with an explicit "done" message: a stream that stops without it (a failed read, or the
//! export future dropped half-way) is incomplete, and its output is never put in place.
//!
//! A file is written to a fresh temporary file in the destination's folder (created with a
//! random name and `O_EXCL`, so no planted file or symlink is followed), synced to disk, and
//! then renamed onto the destination: without [`Destination::Replace`] the rename refuses an
//! existing path (a symlink there counts as existing); with it, whatever is at the path
//! (a symlink too) is replaced, never written through. An object appears only when its
//! upload completes; a failed upload is aborted ([`sink`]).

pub mod dataset;
mod encode;
mod parts;
pub mod schema;
mod server_csv;
mod sink;
mod watermark;

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{Expr, col, lit};
use futures::StreamExt;
use tokio::sync::mpsc::{Receiver, Sender, channel};

pub use dataset::{DatasetRequest, DatasetSummary, PartitionBy, export_dataset};
pub(crate) use encode::{csv_writer, jsonl_writer, parquet_props};
pub use parts::{Part, PartsSummary, export_parts, parquet_reserve};
pub use sink::{PART_BYTES, PARTS_IN_FLIGHT};

use crate::domain::ChannelId;
use crate::lake::{Location, ObjectLocation, S3Options};
use crate::query::{Engine, RelationDef};
use encode::FileWriter;
use schema::FileMeta;
use sink::Sink;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Errors of an export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Planning or streaming the relation failed.
    #[error("failed to read {relation}")]
    Read {
        /// Relation name.
        relation: &'static str,
        /// Cause.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// The destination exists and [`Destination::Replace`] was not asked for.
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// The object exists and replacing it was not asked for.
    #[error("{0} already exists; pass --force to replace it")]
    ObjectExists(String),
    /// A dataset's folder or prefix already holds files (a partitioned export starts empty).
    #[error(
        "{0} is not empty; a partitioned export writes into an empty folder or prefix (or use --since-last to add to it)"
    )]
    NotEmpty(String),
    /// Creating or writing the output failed.
    #[error("failed to write {0}")]
    Io(String, #[source] std::io::Error),
    /// The object store refused a request or could not be reached (the upload was aborted).
    #[error("the object store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Encoding Parquet failed.
    #[error("failed to encode Parquet")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Encoding CSV failed.
    #[error("failed to encode CSV")]
    Csv(#[source] arrow::error::ArrowError),
    /// Encoding JSON failed.
    #[error("failed to encode JSON")]
    Json(#[source] arrow::error::ArrowError),
    /// The writer thread panicked.
    #[error("the export writer stopped unexpectedly")]
    WriterTask(#[source] tokio::task::JoinError),
    /// The stream of rows stopped without its end (the export was cancelled); nothing was
    /// put in place.
    #[error("the export stopped before its last row")]
    Incomplete,
    /// One row does not fit in a part of the size asked for ([`export_parts`]).
    #[error(
        "one row of {relation} takes {bytes} bytes, more than the {max_bytes} byte limit per file"
    )]
    RowTooLarge {
        /// Relation name.
        relation: &'static str,
        /// Bytes the row takes (with the CSV header).
        bytes: u64,
        /// The limit per file.
        max_bytes: u64,
    },
    /// A closed part came out bigger than the limit (the Parquet size estimate was wrong);
    /// it was not delivered.
    #[error("a Parquet part came out at {bytes} bytes, over the {max_bytes} byte limit per file")]
    PartTooLarge {
        /// Size of the part.
        bytes: u64,
        /// The limit per file.
        max_bytes: u64,
    },
    /// The caller's delivery of a part failed ([`export_parts`]); the export stopped there.
    #[error("failed to deliver part {index}")]
    Deliver {
        /// 1-based part number.
        index: u32,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An incremental export of a relation without a `stored_at` column.
    #[error(
        "--since-last needs a relation that records when rows were stored (member_samples or post_samples), not {0}"
    )]
    NotIncremental(&'static str),
    /// An incremental export name outside `[A-Za-z0-9_.-]{1,64}`.
    #[error("invalid export name {0:?}: use 1 to 64 letters, digits, '_', '-' or '.'")]
    BadName(String),
    /// An incremental export asked for one channel or a window: its watermark would pass
    /// the rows left out, which no later run would export.
    #[error(
        "--since-last exports every row stored since the last run; it cannot be combined with --channel, --from or --to (filter when you read the dataset)"
    )]
    FilteredIncremental,
    /// The name was used for another relation.
    #[error("the export {name} exports {was}, not {asked}; choose another name")]
    OtherRelation {
        /// Export name.
        name: String,
        /// Its relation.
        was: String,
        /// The relation asked for now.
        asked: &'static str,
    },
    /// Another run of the same incremental export holds its lock.
    #[error("an export named {0} is running; try again when it has finished")]
    Busy(String),
    /// The role cannot see other sessions' transactions, so rows being written now could be
    /// skipped.
    #[error(
        "this database role cannot see other sessions' transactions (pg_stat_activity), so an incremental export could miss rows being stored now; run it as the database owner or grant pg_read_all_stats"
    )]
    CannotSeeWriters,
    /// A watermark query failed.
    #[error("failed to {step}")]
    Db {
        /// What was being done.
        step: &'static str,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No pooled connection.
    #[error("failed to get a database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Apache Parquet, zstd-compressed, with column statistics and the documented schema in
    /// its key-value metadata.
    Parquet,
    /// CSV with a header row (RFC 4180), timestamps in RFC 3339 UTC.
    Csv,
    /// JSON Lines: one object per row with every column (null when empty), timestamps in
    /// RFC 3339 UTC.
    Jsonl,
}

impl ExportFormat {
    /// `parquet`, `csv` or `jsonl`: the file extension and the `format` label of the
    /// metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// Where the export goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A new file: refused with [`Error::Exists`] if anything (a symlink too) is at the path.
    File(PathBuf),
    /// A file that replaces whatever is at the path; a symlink there is replaced itself,
    /// never written through (`tgpulse export --force`).
    Replace(PathBuf),
    /// Standard output.
    Stdout,
    /// An object (`s3://bucket/key`): refused with [`Error::ObjectExists`] if one is there,
    /// unless `replace`.
    Object {
        /// The object's store and key.
        location: ObjectLocation,
        /// Replace an existing object.
        replace: bool,
    },
}

impl Destination {
    /// The destination of `--out` (`-` is stdout) and `--force`: a new file or object, or
    /// one that replaces what is there.
    ///
    /// errors: as [`Location::parse`].
    pub fn from_out(out: &str, force: bool, s3: &S3Options) -> Result<Self, crate::lake::Error> {
        if out == "-" {
            return Ok(Self::Stdout);
        }
        Ok(match Location::parse(out, s3)? {
            Location::Local(p) if force => Self::Replace(p),
            Location::Local(p) => Self::File(p),
            Location::Object(location) => Self::Object {
                location,
                replace: force,
            },
        })
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Self::File(p) | Self::Replace(p) => Some(p),
            Self::Stdout | Self::Object { .. } => None,
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The relation.
    pub relation: &'static RelationDef,
    /// Only this channel.
    pub channel: Option<ChannelId>,
    /// Time column ≥ this instant.
    pub from: Option<DateTime<Utc>>,
    /// Time column < this instant.
    pub to: Option<DateTime<Utc>>,
    /// Output format.
    pub format: ExportFormat,
}

/// Result of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Record batches written.
    pub batches: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The file, or `None` for stdout and objects.
    pub path: Option<PathBuf>,
    /// The object's URL (`s3://bucket/key`), for object destinations.
    pub url: Option<String>,
}

impl ExportSummary {
    fn of(dest: &Destination, rows: u64, batches: u64, bytes: u64) -> Self {
        Self {
            rows,
            batches,
            bytes,
            path: dest.path().map(Path::to_path_buf),
            url: match dest {
                Destination::Object { location, .. } => Some(location.url()),
                _ => None,
            },
        }
    }
}

/// What the reader hands the writer. The stream ends with `Done`; a channel that closes
/// without it means the reader was dropped (cancelled) and the output is incomplete.
enum Msg {
    Batch(RecordBatch),
    Failed(Error),
    Done,
}

/// The writer's side of the hand-off.
struct Batches(Receiver<Msg>);

impl Batches {
    /// The next batch; `None` after `Done`.
    ///
    /// errors: the reader's error, or `Error::Incomplete` if the reader went away.
    fn next(&mut self) -> Result<Option<RecordBatch>, Error> {
        match self.0.blocking_recv() {
            Some(Msg::Batch(b)) => Ok(Some(b)),
            Some(Msg::Done) => Ok(None),
            Some(Msg::Failed(e)) => Err(e),
            None => Err(Error::Incomplete),
        }
    }
}

fn ts(t: DateTime<Utc>) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(t.timestamp_micros()),
        Some("UTC".into()),
    ))
}

/// The filters of the request's channel and window.
fn request_filters(req: &ExportRequest) -> Vec<Expr> {
    let time = req.relation.time_column;
    let mut filters = Vec::new();
    if let Some(id) = req.channel {
        filters.push(col("channel_id").eq(lit(id.get())));
    }
    if let Some(from) = req.from {
        filters.push(col(time).gt_eq(ts(from)));
    }
    if let Some(to) = req.to {
        filters.push(col(time).lt(ts(to)));
    }
    filters
}

/// Plans the request: the schema and the stream of its rows. `extra` filters are added to
/// the request's own (the incremental `stored_at` range); all of them are pushed down to
/// PostgreSQL.
async fn plan(
    engine: &Engine,
    req: &ExportRequest,
    extra: Vec<Expr>,
) -> Result<(SchemaRef, SendableRecordBatchStream), Error> {
    let relation = req.relation.name;
    let ctx = engine
        .session_parallel(READERS)
        .await
        .map_err(|e| session_error(relation, e))?;
    plan_in(&ctx, req, extra).await
}

/// Connections a whole-relation export reads a large table through at once.
pub const READERS: usize = 2;

fn session_error(relation: &'static str, e: crate::query::Error) -> Error {
    match e {
        crate::query::Error::Query { source, .. } => Error::Read { relation, source },
        other => Error::Read {
            relation,
            source: datafusion::error::DataFusionError::External(Box::new(other)),
        },
    }
}

/// A session over the engine's database, its failure reported against `relation`.
///
/// errors: `Error::Read` if a computed relation fails to plan.
pub(crate) async fn session(
    engine: &Engine,
    relation: &'static str,
) -> Result<datafusion::prelude::SessionContext, Error> {
    engine
        .session()
        .await
        .map_err(|e| session_error(relation, e))
}

/// [`plan`] in a given session (one whose relation returns sorted rows).
async fn plan_in(
    ctx: &datafusion::prelude::SessionContext,
    req: &ExportRequest,
    extra: Vec<Expr>,
) -> Result<(SchemaRef, SendableRecordBatchStream), Error> {
    let relation = req.relation.name;
    let read = |source| Error::Read { relation, source };
    let mut df = ctx.table(relation).await.map_err(read)?;
    let mut filters = extra;
    filters.extend(request_filters(req));
    for f in filters {
        df = df.filter(f).map_err(read)?;
    }
    let schema: SchemaRef = df.schema().inner().clone();
    let stream = df.execute_stream().await.map_err(read)?;
    Ok((schema, stream))
}

/// A signal that stops an export early (Ctrl-C in the CLI). The export then cleans up as
/// after a failure (the temporary file deleted, the upload aborted, a dataset's completed
/// files deleted) and returns `Error::Incomplete`.
pub type Stop<'a> = &'a mut (dyn Future<Output = ()> + Unpin + Send);

/// Feeds the stream to the writer: every batch, then `Done`, or the read error. Stops
/// early when the writer has gone (its error is what the export returns), or when `stop`
/// fires (the writer sees the hand-off close without `Done`).
async fn pump(
    relation: &'static str,
    mut stream: SendableRecordBatchStream,
    tx: Sender<Msg>,
    progress: &(dyn Fn(u64) + Sync),
    stop: Stop<'_>,
) {
    let mut read_rows = 0u64;
    loop {
        let batch = tokio::select! {
            biased;
            () = &mut *stop => return,
            b = stream.next() => b,
        };
        let Some(batch) = batch else { break };
        let msg = match batch {
            Ok(b) => {
                read_rows += b.num_rows() as u64;
                progress(read_rows);
                Msg::Batch(b)
            }
            Err(source) => Msg::Failed(Error::Read { relation, source }),
        };
        let failed = matches!(msg, Msg::Failed(_));
        let sent = tokio::select! {
            biased;
            () = &mut *stop => return,
            sent = tx.send(msg) => sent,
        };
        if sent.is_err() || failed {
            return;
        }
    }
    let _ = tx.send(Msg::Done).await;
}

fn count_metrics(req: &ExportRequest, rows: u64, bytes: u64) {
    let (relation, format) = (req.relation.name, req.format.name());
    metrics::counter!("tgpulse_export_rows_total", "relation" => relation, "format" => format)
        .increment(rows);
    metrics::counter!("tgpulse_export_bytes_total", "relation" => relation, "format" => format)
        .increment(bytes);
}

/// The metadata every file of `req` carries.
fn file_meta(engine: &Engine, req: &ExportRequest) -> FileMeta {
    FileMeta {
        relation: req.relation.name,
        timezone: engine.db().timezone.name().to_owned(),
        window: (req.from, req.to),
        stored: None,
        partition: None,
    }
}

/// Streams the requested rows to `dest` in the order PostgreSQL returns them (no sort, so
/// memory stays bounded).
///
/// errors: `Error::Exists` if `dest` is a [`Destination::File`] whose path exists (checked
/// before the query and again, atomically, at the rename); `Error::ObjectExists` if an
/// object is at the key and `replace` is off (checked before the query); `Error::Read` if
/// the query fails; `Error::Io`/`Error::Parquet`/`Error::Csv`/`Error::Json`/`Error::Store`
/// if writing fails. On any error, and when the returned future is dropped before it
/// completes, the destination is left untouched: the temporary file is deleted, the upload
/// aborted (stdout may hold a partial stream).
pub async fn export(
    engine: &Engine,
    req: &ExportRequest,
    dest: &Destination,
) -> Result<ExportSummary, Error> {
    export_with_progress(engine, req, dest, &|_| {}).await
}

/// [`export`], calling `progress` with the rows read so far after every record batch (for a
/// progress display; it must return quickly).
///
/// errors: as [`export`].
pub async fn export_with_progress(
    engine: &Engine,
    req: &ExportRequest,
    dest: &Destination,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ExportSummary, Error> {
    export_until(
        engine,
        req,
        dest,
        progress,
        &mut std::future::pending::<()>(),
    )
    .await
}

/// [`export_with_progress`] that stops when `stop` fires: it then waits until the writer
/// cleaned up (nothing is put in place) and returns `Error::Incomplete`.
///
/// errors: as [`export`].
pub async fn export_until(
    engine: &Engine,
    req: &ExportRequest,
    dest: &Destination,
    progress: &(dyn Fn(u64) + Sync),
    stop: Stop<'_>,
) -> Result<ExportSummary, Error> {
    if req.format == ExportFormat::Csv && !crate::query::is_view(req.relation.name) {
        // PostgreSQL formats CSV of a stored relation itself, faster than decoding and
        // encoding it here.
        return server_csv::export(engine, req, dest, progress, stop).await;
    }
    check_free(dest).await?;
    let (schema, stream) = plan(engine, req, Vec::new()).await?;
    // A bounded hand-off: the reader waits when the writer is behind.
    let (tx, rx) = channel::<Msg>(4);
    let format = req.format;
    let def = req.relation;
    let meta = file_meta(engine, req);
    let dest2 = dest.clone();
    let rt = tokio::runtime::Handle::current();
    let writer = tokio::task::spawn_blocking(move || {
        let sink = open_sink(&dest2, rt)?;
        write_all(
            Batches(rx),
            FileWriter::new(format, schema, sink, Some(def.time_column))?,
            def,
            &meta,
        )
    });
    pump(req.relation.name, stream, tx, progress, stop).await;
    let (rows, batches, bytes) = writer.await.map_err(Error::WriterTask)??;
    count_metrics(req, rows, bytes);
    Ok(ExportSummary::of(dest, rows, batches, bytes))
}

/// Refuses a new file or object whose path is taken (checked again, atomically, when a
/// file is renamed into place).
async fn check_free(dest: &Destination) -> Result<(), Error> {
    match dest {
        Destination::File(p) if std::fs::symlink_metadata(p).is_ok() => {
            Err(Error::Exists(p.clone()))
        }
        Destination::Object {
            location,
            replace: false,
        } => {
            use object_store::ObjectStoreExt;
            match location.store.head(&location.path).await {
                Ok(_) => Err(Error::ObjectExists(location.url())),
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(Error::Store(Box::new(e))),
            }
        }
        _ => Ok(()),
    }
}

/// The sink of a destination; on a blocking thread of runtime `rt`.
fn open_sink(dest: &Destination, rt: tokio::runtime::Handle) -> Result<Sink, Error> {
    Ok(match dest {
        Destination::Stdout => Sink::stdout(),
        Destination::File(p) => Sink::local(p, false)?,
        Destination::Replace(p) => Sink::local(p, true)?,
        Destination::Object { location, .. } => {
            Sink::object(rt, location.store.clone(), location.path.clone())
        }
    })
}

/// Writes every batch, then finishes the file. On an error the writer is dropped, which
/// deletes the temporary file or aborts the upload.
fn write_all(
    mut rx: Batches,
    mut w: FileWriter,
    def: &RelationDef,
    meta: &FileMeta,
) -> Result<(u64, u64, u64), Error> {
    while let Some(b) = rx.next()? {
        w.write(&b)?;
    }
    w.finish(def, meta)
}

/// Streams the result of a query (`tgpulse sql`) to `dest` through the export writers, with
/// `metadata` as the Parquet file's key-value metadata, until `stop` fires. Rows keep the
/// query's order.
///
/// errors: as [`export`], with `Error::Read` naming `query` when the query fails while it
/// streams.
pub async fn write_query(
    stream: SendableRecordBatchStream,
    format: ExportFormat,
    dest: &Destination,
    metadata: Vec<parquet::file::metadata::KeyValue>,
    stop: Stop<'_>,
) -> Result<ExportSummary, Error> {
    check_free(dest).await?;
    let schema = stream.schema();
    let (tx, rx) = channel::<Msg>(4);
    let dest2 = dest.clone();
    let rt = tokio::runtime::Handle::current();
    let writer = tokio::task::spawn_blocking(move || {
        let sink = open_sink(&dest2, rt)?;
        let mut w = FileWriter::new(format, schema, sink, None)?;
        let mut rx = Batches(rx);
        while let Some(b) = rx.next()? {
            w.write(&b)?;
        }
        w.finish_with(metadata)
    });
    pump("query", stream, tx, &|_| {}, stop).await;
    let (rows, batches, bytes) = writer.await.map_err(Error::WriterTask)??;
    Ok(ExportSummary::of(dest, rows, batches, bytes))
}

/// The first and last value of the relation's time column, for one channel or all: the span
/// an export covers when no window is given. `None` when there are no rows.
///
/// errors: `Error::Read` if the query fails.
pub async fn time_span(
    engine: &Engine,
    relation: &'static RelationDef,
    channel: Option<ChannelId>,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, Error> {
    let read = |source| Error::Read {
        relation: relation.name,
        source,
    };
    let mut df = session(engine, relation.name)
        .await?
        .table(relation.name)
        .await
        .map_err(read)?;
    if let Some(id) = channel {
        df = df
            .filter(col("channel_id").eq(lit(id.get())))
            .map_err(read)?;
    }
    let span = span_of(df, relation).await?;
    Ok(span.and_then(|(a, z)| {
        DateTime::from_timestamp_micros(a).zip(DateTime::from_timestamp_micros(z))
    }))
}

/// The first and last value (micros) of the relation's time column among `df`'s rows.
pub(crate) async fn span_of(
    df: datafusion::dataframe::DataFrame,
    relation: &'static RelationDef,
) -> Result<Option<(i64, i64)>, Error> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampMicrosecondType;
    use datafusion::functions_aggregate::expr_fn::{max, min};
    let read = |source| Error::Read {
        relation: relation.name,
        source,
    };
    let time = relation.time_column;
    let batches = df
        .aggregate(vec![], vec![min(col(time)), max(col(time))])
        .map_err(read)?
        .collect()
        .await
        .map_err(read)?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let get = |i: usize| {
        b.column(i)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .filter(|a| a.is_valid(0))
            .map(|a| a.value(0))
    };
    Ok(get(0).zip(get(1)))
}
