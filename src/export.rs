//! Streaming export of a relation to Parquet (zstd) or CSV (RFC 4180, header row), to a
//! file or stdout.
//!
//! Batches stream from PostgreSQL through DataFusion into the writer through a bounded
//! channel, so memory stays bounded by a few batches plus one Parquet row group whatever
//! the row count. A file is written under a temporary name and renamed when complete, so a
//! failed export never leaves a truncated file behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::prelude::{col, lit};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::sync::mpsc::{Receiver, channel};

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
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Apache Parquet, zstd-compressed, with column statistics.
    Parquet,
    /// CSV with a header row (RFC 4180), timestamps in RFC 3339 UTC.
    Csv,
}

/// Where the export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A file path (written via a temporary file and renamed).
    File(PathBuf),
    /// Standard output.
    Stdout,
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
    /// The file, or `None` for stdout.
    pub path: Option<PathBuf>,
}

fn ts(t: DateTime<Utc>) -> datafusion::prelude::Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(t.timestamp_micros()),
        Some("UTC".into()),
    ))
}

/// Streams the requested rows to `dest` in the order PostgreSQL returns them (no sort, so
/// memory stays bounded).
///
/// errors: `Error::Read` if the query fails; `Error::Io`/`Error::Parquet`/`Error::Csv` if
/// writing fails. Either way a file destination is left untouched (stdout may hold a
/// partial stream).
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
    let mut stream = df.execute_stream().await.map_err(read)?;

    // A bounded hand-off: the reader waits when the writer is behind. A read error travels
    // to the writer too, so a file is only renamed into place after a complete stream.
    let (tx, rx) = channel::<Result<RecordBatch, Error>>(4);
    let format = req.format;
    let dest2 = dest.clone();
    let writer = tokio::task::spawn_blocking(move || write_all(rx, schema, format, &dest2));
    let mut read_rows = 0u64;
    while let Some(batch) = stream.next().await {
        let failed = batch.is_err();
        if let Ok(b) = &batch {
            read_rows += b.num_rows() as u64;
            progress(read_rows);
        }
        if tx.send(batch.map_err(read)).await.is_err() || failed {
            break; // the writer stopped (its error is returned below) or was given ours
        }
    }
    drop(tx);
    let written = writer.await.map_err(Error::WriterTask)?;
    let (rows, batches) = written?;
    let format = match req.format {
        ExportFormat::Parquet => "parquet",
        ExportFormat::Csv => "csv",
    };
    metrics::counter!("tgpulse_export_rows_total", "relation" => relation, "format" => format)
        .increment(rows);
    if let Destination::File(p) = dest
        && let Ok(meta) = tokio::fs::metadata(p).await
    {
        metrics::counter!("tgpulse_export_bytes_total", "relation" => relation, "format" => format)
            .increment(meta.len());
    }
    Ok(ExportSummary {
        rows,
        batches,
        path: match dest {
            Destination::File(p) => Some(p.clone()),
            Destination::Stdout => None,
        },
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

fn tmp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

fn write_all(
    rx: Receiver<Result<RecordBatch, Error>>,
    schema: SchemaRef,
    format: ExportFormat,
    dest: &Destination,
) -> Result<(u64, u64), Error> {
    match dest {
        Destination::Stdout => {
            let out = BufWriter::with_capacity(1 << 20, std::io::stdout());
            encode(rx, schema, format, out, "stdout")
        }
        Destination::File(path) => {
            let tmp = tmp_path(path);
            let name = path.display().to_string();
            let file = File::create(&tmp).map_err(|e| Error::Io(name.clone(), e))?;
            let result = encode(
                rx,
                schema,
                format,
                BufWriter::with_capacity(1 << 20, file),
                &name,
            );
            match result {
                Ok(counts) => {
                    std::fs::rename(&tmp, path).map_err(|e| Error::Io(name, e))?;
                    Ok(counts)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
    }
}

fn encode<W: Write + Send>(
    mut rx: Receiver<Result<RecordBatch, Error>>,
    schema: SchemaRef,
    format: ExportFormat,
    out: W,
    name: &str,
) -> Result<(u64, u64), Error> {
    let (mut rows, mut batches) = (0u64, 0u64);
    match format {
        ExportFormat::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .set_statistics_enabled(EnabledStatistics::Page)
                .set_created_by(format!("tgpulse {}", env!("CARGO_PKG_VERSION")))
                .build();
            let mut w = ArrowWriter::try_new(out, schema, Some(props))?;
            while let Some(b) = rx.blocking_recv() {
                let b = b?;
                rows += b.num_rows() as u64;
                batches += 1;
                w.write(&b)?;
            }
            let mut inner = w.into_inner()?;
            inner.flush().map_err(|e| Error::Io(name.to_owned(), e))?;
        }
        ExportFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%S%.6fZ".to_owned())
                .build(out);
            while let Some(b) = rx.blocking_recv() {
                let b = b?;
                rows += b.num_rows() as u64;
                batches += 1;
                w.write(&b).map_err(Error::Csv)?;
            }
            let mut inner = w.into_inner();
            inner.flush().map_err(|e| Error::Io(name.to_owned(), e))?;
        }
    }
    Ok((rows, batches))
}
