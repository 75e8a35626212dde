//! One exported file: Parquet (zstd, with the documented schema in its metadata), CSV
//! (RFC 4180, header row) or JSON Lines, encoded into a [`Sink`].

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::schema::{FileMeta, key_values};
use super::sink::Sink;
use super::{Error, ExportFormat, ROW_GROUP_ROWS};
use crate::query::RelationDef;

/// The Parquet settings of every export: zstd level 3, [`ROW_GROUP_ROWS`] rows per row group,
/// page statistics.
pub(crate) fn parquet_props() -> Result<WriterProperties, Error> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("tgpulse {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// The CSV writer of every export: UTC timestamps as PostgreSQL writes them with
/// `DateStyle = 'ISO'` (`2021-07-14 10:00:00+00`, fractional seconds only when non-zero), the
/// form of the server-formatted CSV exports; with or without the header row.
pub(crate) fn csv_writer<W: Write>(out: W, header: bool) -> arrow::csv::Writer<W> {
    arrow::csv::WriterBuilder::new()
        .with_header(header)
        .with_timestamp_tz_format("%Y-%m-%d %H:%M:%S%.f+00".to_owned())
        .build(out)
}

type JsonLines<W> = arrow::json::Writer<W, arrow::json::writer::LineDelimited>;

/// The JSON Lines writer: one object per row, every key present (null when empty),
/// RFC 3339 UTC timestamps.
pub(crate) fn jsonl_writer<W: Write>(out: W) -> JsonLines<W> {
    arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%S%.6fZ".to_owned())
        .build(out)
}

/// Whether an encoder's error came from the object store under the sink.
pub(super) fn caused_by_store(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<object_store::Error>() {
            return true;
        }
        // An io::Error made from another error hides it from `source()`.
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| caused_by_store(inner))
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A Parquet error, or a store error when the sink's store failed.
fn from_parquet(e: parquet::errors::ParquetError) -> Error {
    if caused_by_store(&e)
        || matches!(&e, parquet::errors::ParquetError::External(b) if caused_by_store(b.as_ref()))
    {
        Error::Store(Box::new(e))
    } else {
        Error::Parquet(e)
    }
}

/// A CSV or JSON error (`kind`), or a store error when the sink's store failed.
fn from_arrow(e: arrow::error::ArrowError, kind: fn(arrow::error::ArrowError) -> Error) -> Error {
    let store = match &e {
        arrow::error::ArrowError::IoError(_, io) => caused_by_store(io),
        arrow::error::ArrowError::ExternalError(b) => caused_by_store(b.as_ref()),
        _ => false,
    };
    if store {
        Error::Store(Box::new(e))
    } else {
        kind(e)
    }
}

/// `e` as a store error when the sink's store failed (and it is not one already).
pub(super) fn store_or(e: Error, failed: Option<&AtomicBool>) -> Error {
    match e {
        Error::Store(_) => e,
        e if failed.is_some_and(|f| f.load(Ordering::SeqCst)) => Error::Store(Box::new(e)),
        e => e,
    }
}

enum Enc {
    Parquet(Box<ArrowWriter<Sink>>),
    Csv(Box<arrow::csv::Writer<Sink>>),
    Jsonl(Box<JsonLines<Sink>>),
}

/// A file being encoded.
pub(crate) struct FileWriter {
    enc: Enc,
    /// Index of the relation's time column in the file's schema, if it is there.
    time: Option<usize>,
    rows: u64,
    batches: u64,
    span: Option<(i64, i64)>,
    /// For an object sink: set when its store failed.
    store_failed: Option<Arc<AtomicBool>>,
}

impl FileWriter {
    /// Starts a file of `format` with `schema` on `sink`; `time` names the column whose span
    /// goes into the Parquet metadata.
    ///
    /// errors: `Error::Parquet` if the Parquet writer rejects the schema.
    pub(crate) fn new(
        format: ExportFormat,
        schema: SchemaRef,
        sink: Sink,
        time: Option<&str>,
    ) -> Result<Self, Error> {
        let time = time.and_then(|t| schema.index_of(t).ok());
        let store_failed = sink.store_failed();
        let enc = match format {
            ExportFormat::Parquet => Enc::Parquet(Box::new(ArrowWriter::try_new(
                sink,
                schema,
                Some(parquet_props()?),
            )?)),
            ExportFormat::Csv => Enc::Csv(Box::new(csv_writer(sink, true))),
            ExportFormat::Jsonl => Enc::Jsonl(Box::new(jsonl_writer(sink))),
        };
        Ok(Self {
            enc,
            time,
            rows: 0,
            batches: 0,
            span: None,
            store_failed,
        })
    }

    /// Encodes one batch.
    ///
    /// errors: `Error::Parquet`/`Error::Csv` (CSV and JSON) if encoding or writing fails.
    pub(crate) fn write(&mut self, b: &RecordBatch) -> Result<(), Error> {
        if let Some(t) = self
            .time
            .and_then(|i| b.column(i).as_primitive_opt::<TimestampMicrosecondType>())
            && t.null_count() < t.len()
        {
            let lo = arrow::compute::min(t).expect("a value");
            let hi = arrow::compute::max(t).expect("a value");
            self.span = Some(match self.span {
                Some((a, z)) => (a.min(lo), z.max(hi)),
                None => (lo, hi),
            });
        }
        let written = match &mut self.enc {
            Enc::Parquet(w) => w.write(b).map_err(from_parquet),
            Enc::Csv(w) => w.write(b).map_err(|e| from_arrow(e, Error::Csv)),
            Enc::Jsonl(w) => w.write(b).map_err(|e| from_arrow(e, Error::Json)),
        };
        written.map_err(|e| store_or(e, self.store_failed.as_deref()))?;
        self.rows += b.num_rows() as u64;
        self.batches += 1;
        Ok(())
    }

    /// Closes the file (Parquet: with the metadata of `def` and `meta`) and puts it in place.
    /// Returns rows, batches and bytes.
    ///
    /// errors: as [`FileWriter::write`], and [`Sink::finish`]'s.
    pub(crate) fn finish(
        self,
        def: &RelationDef,
        meta: &FileMeta,
    ) -> Result<(u64, u64, u64), Error> {
        let span = self.span.and_then(|(a, z)| {
            DateTime::<Utc>::from_timestamp_micros(a).zip(DateTime::<Utc>::from_timestamp_micros(z))
        });
        let kv = key_values(def, meta, span);
        self.finish_with(kv)
    }

    /// Closes the file with the given Parquet key-value metadata (ignored by CSV and JSON)
    /// and puts it in place. Returns rows, batches and bytes.
    ///
    /// errors: as [`FileWriter::finish`].
    pub(crate) fn finish_with(self, kv: Vec<KeyValue>) -> Result<(u64, u64, u64), Error> {
        let failed = self.store_failed.clone();
        let failed = failed.as_deref();
        let sink = match self.enc {
            Enc::Parquet(mut w) => {
                for kv in kv {
                    w.append_key_value_metadata(kv);
                }
                w.into_inner()
                    .map_err(|e| store_or(from_parquet(e), failed))?
            }
            Enc::Csv(w) => (*w).into_inner(),
            Enc::Jsonl(mut w) => {
                w.finish()
                    .map_err(|e| store_or(from_arrow(e, Error::Json), failed))?;
                w.into_inner()
            }
        };
        let bytes = sink.finish()?;
        Ok((self.rows, self.batches, bytes))
    }
}
