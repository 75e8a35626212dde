//! An export split into files of at most a given size while it streams (the bot's uploads,
//! which Telegram limits to 50 MB a file).
//!
//! A part is closed as soon as the next rows would not fit, handed to the caller, and
//! deleted when the caller is done with it; only then does the next part start, so at most
//! one part is on disk at any moment. Each part is a complete file on its own: a Parquet
//! file with its own footer, or a CSV file with its own header row.
//!
//! Sizes: CSV rows are encoded before they are written, so a CSV part is exactly within the
//! limit. A Parquet part's size is estimated while it is written (the bytes flushed plus the
//! writer's estimate of the row group in progress, whose open pages count uncompressed) and
//! the part is closed [`parquet_reserve`] bytes before the limit, which leaves room for the
//! footer and page indexes; a part that still comes out over the limit is an error, never
//! delivered.

use std::fs::File;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use tempfile::TempPath;
use tokio::sync::mpsc::{Sender, channel};
use tokio::sync::oneshot;

use super::{
    Batches, Engine, Error, ExportFormat, ExportRequest, Msg, count_metrics, csv_writer,
    jsonl_writer, parquet_props, plan, pump,
};

/// One closed part, handed to the caller of [`export_parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 1-based number of the part.
    pub index: u32,
    /// The file, in the folder given to [`export_parts`] under a random name; deleted as soon
    /// as the delivery returns.
    pub path: PathBuf,
    /// Rows in this part.
    pub rows: u64,
    /// Size of the file in bytes, at most the limit.
    pub bytes: u64,
    /// Whether this is the last part of the export.
    pub last: bool,
}

/// Result of [`export_parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartsSummary {
    /// Rows in all parts.
    pub rows: u64,
    /// Bytes of all parts.
    pub bytes: u64,
    /// Parts delivered; 0 when there were no rows.
    pub parts: u32,
}

/// Bytes kept free in a Parquet part for its footer (schema, row-group metadata, statistics,
/// page indexes): 4 KiB or 5% of the limit, whichever is more.
pub fn parquet_reserve(max_bytes: u64) -> u64 {
    (max_bytes / 20).max(4096)
}

/// A closed part on its way to the caller; `tmp` deletes the file when dropped, `ack` lets
/// the writer start the next part.
struct Ready {
    part: Part,
    tmp: TempPath,
    ack: oneshot::Sender<()>,
}

/// Streams the requested rows into files of at most `max_bytes` bytes each in `dir`, and
/// calls `deliver` with each part as soon as it is closed. The part's file is deleted when
/// `deliver` returns, before the next part is started: at most one part is on disk. Rows
/// keep PostgreSQL's order; no row is in two parts. While `deliver` runs, reading waits (the
/// query stays open).
///
/// errors: `Error::Read` if the query fails; `Error::Io`/`Error::Parquet`/`Error::Csv` if
/// writing a part fails; `Error::RowTooLarge` if one CSV row (with the header) is over
/// `max_bytes`; `Error::PartTooLarge` if a Parquet part came out over it; `Error::Deliver`
/// with `deliver`'s own error, after which nothing more is written. On any error, and when
/// the future is dropped, the part being written is deleted. The metrics count every part
/// closed.
pub async fn export_parts<F, Fut>(
    engine: &Engine,
    req: &ExportRequest,
    dir: &Path,
    max_bytes: u64,
    progress: &(dyn Fn(u64) + Sync),
    mut deliver: F,
) -> Result<PartsSummary, Error>
where
    F: FnMut(Part) -> Fut,
    Fut: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    let (schema, stream) = plan(engine, req, Vec::new()).await?;
    let (tx, rx) = channel::<Msg>(4);
    let (ready_tx, mut ready_rx) = channel::<Ready>(1);
    let splitter = Splitter::new(req, schema, dir.to_path_buf(), max_bytes, ready_tx)?;
    let writer = tokio::task::spawn_blocking(move || splitter.run(Batches(rx)));
    let delivery = async move {
        while let Some(Ready { part, tmp, ack }) = ready_rx.recv().await {
            let index = part.index;
            deliver(part)
                .await
                .map_err(|source| Error::Deliver { index, source })?;
            drop(tmp);
            let _ = ack.send(());
        }
        Ok::<(), Error>(())
    };
    let mut never = std::future::pending::<()>();
    let ((), delivered) = tokio::join!(
        pump(req.relation.name, stream, tx, progress, &mut never),
        delivery
    );
    let written = writer.await.map_err(Error::WriterTask)?;
    delivered?;
    written
}

/// The part being written.
struct OpenPart {
    tmp: TempPath,
    enc: Encoder,
    rows: u64,
}

enum Encoder {
    Parquet(Box<ArrowWriter<BufWriter<File>>>),
    /// CSV or JSON Lines: the file and the bytes written to it.
    Text(BufWriter<File>, u64),
}

/// The blocking side of [`export_parts`]: cuts the stream into parts.
struct Splitter {
    relation: &'static str,
    req: ExportRequest,
    schema: SchemaRef,
    dir: PathBuf,
    max_bytes: u64,
    /// The CSV header row, written at the start of every CSV part (empty for JSON Lines).
    header: Vec<u8>,
    ready: Sender<Ready>,
    cur: Option<OpenPart>,
    /// Bytes a row took in the last slice written (learned as it goes).
    per_row: u64,
    /// A slice of CSV rows, encoded before it is written.
    scratch: Vec<u8>,
    summary: PartsSummary,
}

impl Splitter {
    fn new(
        req: &ExportRequest,
        schema: SchemaRef,
        dir: PathBuf,
        max_bytes: u64,
        ready: Sender<Ready>,
    ) -> Result<Self, Error> {
        let mut header = Vec::new();
        if req.format == ExportFormat::Csv {
            let mut w = csv_writer(&mut header, true);
            w.write(&RecordBatch::new_empty(schema.clone()))
                .map_err(Error::Csv)?;
        }
        Ok(Self {
            relation: req.relation.name,
            req: req.clone(),
            schema,
            dir,
            max_bytes,
            header,
            ready,
            cur: None,
            per_row: 0,
            scratch: Vec::new(),
            summary: PartsSummary {
                rows: 0,
                bytes: 0,
                parts: 0,
            },
        })
    }

    fn run(mut self, mut rx: Batches) -> Result<PartsSummary, Error> {
        while let Some(b) = rx.next()? {
            if self.per_row == 0 && b.num_rows() > 0 {
                // A pessimistic start: the batch's in-memory size per row.
                self.per_row = (b.get_array_memory_size() / b.num_rows()).max(1) as u64;
            }
            match self.req.format {
                ExportFormat::Parquet => self.write_parquet(&b)?,
                ExportFormat::Csv | ExportFormat::Jsonl => self.write_text(&b)?,
            }
        }
        self.close(true)?;
        Ok(self.summary)
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io(format!("a part in {}", self.dir.display()), e)
    }

    /// Opens the next part unless one is open.
    fn open(&mut self) -> Result<(), Error> {
        if self.cur.is_some() {
            return Ok(());
        }
        let (file, tmp) = tempfile::Builder::new()
            .prefix(".tgpulse-export-")
            .suffix(&format!(".{}", self.req.format.name()))
            .tempfile_in(&self.dir)
            .map_err(|e| self.io(e))?
            .into_parts();
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let enc = match self.req.format {
            ExportFormat::Parquet => Encoder::Parquet(Box::new(ArrowWriter::try_new(
                out,
                self.schema.clone(),
                Some(parquet_props()?),
            )?)),
            ExportFormat::Csv | ExportFormat::Jsonl => {
                out.write_all(&self.header).map_err(|e| self.io(e))?;
                Encoder::Text(out, self.header.len() as u64)
            }
        };
        self.cur = Some(OpenPart { tmp, enc, rows: 0 });
        Ok(())
    }

    /// Writes `b` in slices, each sized to half the room the estimate leaves, so the estimate
    /// approaches the target without passing it; a part closes when not one more row fits.
    fn write_parquet(&mut self, b: &RecordBatch) -> Result<(), Error> {
        let target = self
            .max_bytes
            .saturating_sub(parquet_reserve(self.max_bytes))
            .max(1);
        let mut off = 0;
        while off < b.num_rows() {
            self.open()?;
            let Some(OpenPart {
                enc: Encoder::Parquet(w),
                rows,
                ..
            }) = &mut self.cur
            else {
                unreachable!("a Parquet export opens Parquet parts")
            };
            let before = (w.bytes_written() + w.in_progress_size()) as u64;
            let room = target.saturating_sub(before);
            let mut take = ((room / self.per_row.max(1) / 2) as usize).min(b.num_rows() - off);
            if take == 0 {
                if *rows > 0 {
                    self.close(false)?;
                    continue;
                }
                take = 1; // one row per part at least
            }
            w.write(&b.slice(off, take))?;
            *rows += take as u64;
            let after = (w.bytes_written() + w.in_progress_size()) as u64;
            if after > before {
                self.per_row = ((after - before) / take as u64).max(1);
            }
            off += take;
        }
        Ok(())
    }

    /// Encodes `rows` of CSV (without header) or JSON Lines into the scratch buffer.
    fn encode_text(&mut self, rows: &RecordBatch) -> Result<(), Error> {
        self.scratch.clear();
        if self.req.format == ExportFormat::Jsonl {
            let mut w = jsonl_writer(&mut self.scratch);
            w.write(rows).map_err(Error::Json)?;
            w.finish().map_err(Error::Json)
        } else {
            csv_writer(&mut self.scratch, false)
                .write(rows)
                .map_err(Error::Csv)
        }
    }

    /// Encodes slices of `b` and appends each that fits; CSV and JSON Lines parts are
    /// exactly within the limit.
    fn write_text(&mut self, b: &RecordBatch) -> Result<(), Error> {
        let mut off = 0;
        while off < b.num_rows() {
            self.open()?;
            let Some(OpenPart {
                enc: Encoder::Text(_, bytes),
                ..
            }) = &self.cur
            else {
                unreachable!("a CSV or JSON export opens text parts")
            };
            let room = self.max_bytes.saturating_sub(*bytes);
            let mut take = ((room / self.per_row.max(1)) as usize).clamp(1, b.num_rows() - off);
            loop {
                self.encode_text(&b.slice(off, take))?;
                let len = self.scratch.len() as u64;
                if len <= room || take == 1 {
                    break;
                }
                take = ((take as u64 * room / len) as usize).clamp(1, take - 1);
            }
            let len = self.scratch.len() as u64;
            let Some(OpenPart {
                enc: Encoder::Text(out, bytes),
                rows,
                ..
            }) = &mut self.cur
            else {
                unreachable!("a CSV or JSON export opens text parts")
            };
            if len > room {
                if *rows > 0 {
                    self.close(false)?;
                    continue;
                }
                return Err(Error::RowTooLarge {
                    relation: self.relation,
                    bytes: len + self.header.len() as u64,
                    max_bytes: self.max_bytes,
                });
            }
            if let Err(e) = out.write_all(&self.scratch) {
                return Err(Error::Io(format!("a part in {}", self.dir.display()), e));
            }
            *bytes += len;
            *rows += take as u64;
            self.per_row = (len / take as u64).max(1);
            off += take;
        }
        Ok(())
    }

    /// Closes the open part (if any), hands it to the caller and waits until it was
    /// delivered and deleted.
    fn close(&mut self, last: bool) -> Result<(), Error> {
        let Some(OpenPart { tmp, enc, rows }) = self.cur.take() else {
            return Ok(());
        };
        let out = match enc {
            Encoder::Parquet(w) => w.into_inner()?,
            Encoder::Text(out, _) => out,
        };
        let file = out.into_inner().map_err(|e| self.io(e.into_error()))?;
        let bytes = file.metadata().map_err(|e| self.io(e))?.len();
        drop(file);
        if bytes > self.max_bytes {
            return Err(Error::PartTooLarge {
                bytes,
                max_bytes: self.max_bytes,
            });
        }
        self.summary.parts += 1;
        self.summary.rows += rows;
        self.summary.bytes += bytes;
        count_metrics(&self.req, rows, bytes);
        let (ack, done) = oneshot::channel();
        let part = Part {
            index: self.summary.parts,
            path: tmp.to_path_buf(),
            rows,
            bytes,
            last,
        };
        self.ready
            .blocking_send(Ready { part, tmp, ack })
            .map_err(|_| Error::Incomplete)?;
        done.blocking_recv().map_err(|_| Error::Incomplete)
    }
}
