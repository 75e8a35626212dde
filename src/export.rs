//! Streaming export of a relation to Parquet (zstd) or CSV (RFC 4180, header row), to a
//! file, stdout, or (for the bot) a series of size-limited files ([`parts`]).
//!
//! Batches stream from PostgreSQL through DataFusion into the writer through a bounded
//! channel, so memory stays bounded by a few batches plus one Parquet row group whatever
//! the row count. The reader ends the stream with an explicit "done" message: a stream that
//! stops without it (a failed read, or the export future dropped half-way) is incomplete,
//! and its file is deleted instead of being put in place.
//!
//! A file is written to a fresh temporary file in the destination's folder (created with a
//! random name and `O_EXCL`, so no planted file or symlink is followed), synced to disk, and
//! then renamed onto the destination: without [`Destination::Replace`] the rename refuses an
//! existing path (a symlink there counts as existing); with it, whatever is at the path
//! (a symlink too) is replaced, never written through.

mod parts;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{col, lit};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::sync::mpsc::{Receiver, Sender, channel};

pub use parts::{Part, PartsSummary, export_parts, parquet_reserve};

use crate::domain::ChannelId;
use crate::query::{Engine, RelationDef};

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
    /// Creating or writing the output failed.
    #[error("failed to write {0}")]
    Io(String, #[source] std::io::Error),
    /// Encoding Parquet failed.
    #[error("failed to encode Parquet")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Encoding CSV failed.
    #[error("failed to encode CSV")]
    Csv(#[source] arrow::error::ArrowError),
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
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Apache Parquet, zstd-compressed, with column statistics.
    Parquet,
    /// CSV with a header row (RFC 4180), timestamps in RFC 3339 UTC.
    Csv,
}

impl ExportFormat {
    /// `parquet` or `csv`: the file extension and the `format` label of the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
        }
    }
}

/// Where the export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A new file: refused with [`Error::Exists`] if anything (a symlink too) is at the path.
    File(PathBuf),
    /// A file that replaces whatever is at the path; a symlink there is replaced itself,
    /// never written through (`tgpulse export --force`).
    Replace(PathBuf),
    /// Standard output.
    Stdout,
}

impl Destination {
    fn path(&self) -> Option<&Path> {
        match self {
            Self::File(p) | Self::Replace(p) => Some(p),
            Self::Stdout => None,
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
    /// The file, or `None` for stdout.
    pub path: Option<PathBuf>,
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

fn ts(t: DateTime<Utc>) -> datafusion::prelude::Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(t.timestamp_micros()),
        Some("UTC".into()),
    ))
}

/// Plans the request: the schema and the stream of its rows.
async fn plan(
    engine: &Engine,
    req: &ExportRequest,
) -> Result<(SchemaRef, SendableRecordBatchStream), Error> {
    let relation = req.relation.name;
    let read = |source| Error::Read { relation, source };
    let ctx = engine.session();
    let mut df = ctx.table(relation).await.map_err(read)?;
    let time = req.relation.time_column;
    if let Some(id) = req.channel {
        df = df
            .filter(col("channel_id").eq(lit(id.get())))
            .map_err(read)?;
    }
    if let Some(from) = req.from {
        df = df.filter(col(time).gt_eq(ts(from))).map_err(read)?;
    }
    if let Some(to) = req.to {
        df = df.filter(col(time).lt(ts(to))).map_err(read)?;
    }
    let schema: SchemaRef = df.schema().inner().clone();
    let stream = df.execute_stream().await.map_err(read)?;
    Ok((schema, stream))
}

/// Feeds the stream to the writer: every batch, then `Done`, or the read error. Stops
/// early when the writer has gone (its error is what the export returns).
async fn pump(
    relation: &'static str,
    mut stream: SendableRecordBatchStream,
    tx: Sender<Msg>,
    progress: &(dyn Fn(u64) + Sync),
) {
    let mut read_rows = 0u64;
    while let Some(batch) = stream.next().await {
        let msg = match batch {
            Ok(b) => {
                read_rows += b.num_rows() as u64;
                progress(read_rows);
                Msg::Batch(b)
            }
            Err(source) => Msg::Failed(Error::Read { relation, source }),
        };
        let failed = matches!(msg, Msg::Failed(_));
        if tx.send(msg).await.is_err() || failed {
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

/// Streams the requested rows to `dest` in the order PostgreSQL returns them (no sort, so
/// memory stays bounded).
///
/// errors: `Error::Exists` if `dest` is a [`Destination::File`] whose path exists (checked
/// before the query and again, atomically, at the rename); `Error::Read` if the query fails;
/// `Error::Io`/`Error::Parquet`/`Error::Csv` if writing fails. On any error, and when the
/// returned future is dropped before it completes, the destination is left untouched and
/// the temporary file is deleted (stdout may hold a partial stream).
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
    if let Destination::File(p) = dest
        && std::fs::symlink_metadata(p).is_ok()
    {
        return Err(Error::Exists(p.clone()));
    }
    let (schema, stream) = plan(engine, req).await?;
    // A bounded hand-off: the reader waits when the writer is behind.
    let (tx, rx) = channel::<Msg>(4);
    let format = req.format;
    let dest2 = dest.clone();
    let writer =
        tokio::task::spawn_blocking(move || write_all(Batches(rx), schema, format, &dest2));
    pump(req.relation.name, stream, tx, progress).await;
    let (rows, batches, bytes) = writer.await.map_err(Error::WriterTask)??;
    count_metrics(req, rows, bytes);
    Ok(ExportSummary {
        rows,
        batches,
        bytes,
        path: dest.path().map(Path::to_path_buf),
    })
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
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampMicrosecondType;
    use datafusion::functions_aggregate::expr_fn::{max, min};
    let read = |source| Error::Read {
        relation: relation.name,
        source,
    };
    let mut df = engine.session().table(relation.name).await.map_err(read)?;
    if let Some(id) = channel {
        df = df
            .filter(col("channel_id").eq(lit(id.get())))
            .map_err(read)?;
    }
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
            .and_then(|a| DateTime::from_timestamp_micros(a.value(0)))
    };
    Ok(get(0).zip(get(1)))
}

/// The folder a file destination's temporary file goes in: the destination's own, so the
/// final rename stays on one file system.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn write_all(
    rx: Batches,
    schema: SchemaRef,
    format: ExportFormat,
    dest: &Destination,
) -> Result<(u64, u64, u64), Error> {
    let Some(path) = dest.path() else {
        let out = Counting::new(BufWriter::with_capacity(1 << 20, std::io::stdout()));
        let (rows, batches, out) = encode(rx, schema, format, out, "stdout")?;
        return Ok((rows, batches, out.bytes));
    };
    let name = path.display().to_string();
    let io = |e| Error::Io(name.clone(), e);
    // Deleted when dropped: on every error, and when the stream is incomplete.
    let (file, tmp) = tempfile::Builder::new()
        .prefix(".tgpulse-export-")
        .suffix(".tmp")
        .tempfile_in(folder_of(path))
        .map_err(io)?
        .into_parts();
    let (rows, batches, out) = encode(
        rx,
        schema,
        format,
        BufWriter::with_capacity(1 << 20, file),
        &name,
    )?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    let bytes = file.metadata().map_err(io)?.len();
    drop(file);
    match dest {
        Destination::Replace(_) => tmp.persist(path).map_err(|e| io(e.error))?,
        _ => tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists(path.to_path_buf())
            } else {
                io(e.error)
            }
        })?,
    }
    // The rename itself is durable once the folder is synced.
    if let Ok(dir) = File::open(folder_of(path)) {
        let _ = dir.sync_all();
    }
    Ok((rows, batches, bytes))
}

/// The Parquet settings of every export: zstd level 3, [`ROW_GROUP_ROWS`] rows per row group,
/// page statistics.
fn parquet_props() -> Result<WriterProperties, Error> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("tgpulse {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// The CSV writer of every export: RFC 3339 UTC timestamps, with or without the header row.
fn csv_writer<W: Write>(out: W, header: bool) -> arrow::csv::Writer<W> {
    arrow::csv::WriterBuilder::new()
        .with_header(header)
        .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%S%.6fZ".to_owned())
        .build(out)
}

/// Encodes every batch into `out`, flushes it, and returns rows, batches and `out`.
fn encode<W: Write + Send>(
    mut rx: Batches,
    schema: SchemaRef,
    format: ExportFormat,
    out: W,
    name: &str,
) -> Result<(u64, u64, W), Error> {
    let (mut rows, mut batches) = (0u64, 0u64);
    let mut inner = match format {
        ExportFormat::Parquet => {
            let mut w = ArrowWriter::try_new(out, schema, Some(parquet_props()?))?;
            while let Some(b) = rx.next()? {
                rows += b.num_rows() as u64;
                batches += 1;
                w.write(&b)?;
            }
            w.into_inner()?
        }
        ExportFormat::Csv => {
            let mut w = csv_writer(out, true);
            while let Some(b) = rx.next()? {
                rows += b.num_rows() as u64;
                batches += 1;
                w.write(&b).map_err(Error::Csv)?;
            }
            w.into_inner()
        }
    };
    inner.flush().map_err(|e| Error::Io(name.to_owned(), e))?;
    Ok((rows, batches, inner))
}

/// A writer that counts the bytes written through it.
#[derive(Debug)]
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W> Counting<W> {
    fn new(inner: W) -> Self {
        Self { inner, bytes: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
