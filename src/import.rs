//! `tgpulse import`: reads CSV (plain or gzip) or Parquet files into the sample tables through
//! the ingest pipeline, as one transaction.
//!
//! By default any malformed row refuses the whole import and nothing changes; with
//! `skip_bad_rows` the valid rows are imported and the rejected ones written to a reject file.
//! Re-importing the same file adds 0 rows.

mod formats;
mod parse;
mod reader;
mod rejects;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};
use tempfile::NamedTempFile;

pub use formats::RowError;
pub use parse::TimeFormat;
pub use reader::RowPos;

use crate::config::IngestConfig;
use crate::db::Db;
use crate::domain::ChannelId;
use crate::ingest::{self, CommitPolicy, Record};
use formats::{Animals, Generic, Mapper, Posts, Sink};
use reader::{Input, Progress};
use rejects::{clip, keep_rejects, write_reject};

/// Errors of an import. Except `Write`, none of them changed the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be opened.
    #[error("cannot open {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not in a supported format, or breaks mid-way.
    #[error("{0}")]
    Format(String),
    /// Malformed rows; the import was refused whole and nothing changed.
    #[error("{}", refused_message(.total, .errors))]
    Refused {
        /// Total malformed rows.
        total: u64,
        /// The first of them (at most [`MAX_REPORTED_ERRORS`]).
        errors: Vec<RowError>,
    },
    /// The ingest pipeline failed; the transaction was rolled back.
    #[error("failed to write the import")]
    Write(#[from] ingest::Error),
    /// Reading the known handles failed.
    #[error("failed to read known channels")]
    Db(#[from] crate::db::Error),
    /// The reject file cannot be written.
    #[error("cannot write the reject file {path}")]
    RejectFile {
        /// The reject file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: csv::Error,
    },
    /// The reader thread panicked.
    #[error("the reader thread stopped unexpectedly")]
    ReaderTask(#[source] tokio::task::JoinError),
    /// Rows held back until the end of the file could not be kept in a temporary file.
    #[error("cannot keep rows in a temporary file")]
    Spill(#[source] std::io::Error),
}

/// Bounds that keep an import's memory and time finite on any input (README, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Longest CSV record, in bytes after gzip decoding, header included. A longer record is
    /// a malformed row (reported with its line, skipped unread under `skip_bad_rows`); a
    /// longer header refuses the file. Default 1 MiB.
    pub max_record_bytes: u64,
    /// Most a gzip file may expand: decoded bytes over compressed bytes read so far, checked
    /// once 16 MiB are decoded. Past it the import fails as a decompression bomb. Default 100
    /// (real CSV exports compress 3-10×).
    pub max_gzip_ratio: u64,
    /// Largest decoded Parquet batch (1024 rows of the columns read), in bytes; past it the
    /// import fails naming the rows. Default 64 MiB.
    pub max_batch_bytes: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_record_bytes: 1 << 20,
            max_gzip_ratio: 100,
            max_batch_bytes: 64 << 20,
        }
    }
}

/// Longest reason kept in a [`RowError`], in bytes (reasons quote the cell).
const MAX_REASON_BYTES: usize = 1024;
/// Longest cell kept in a [`RowError`] and written to the reject file, in bytes.
pub const MAX_REJECT_CELL_BYTES: usize = 4096;

/// At most this many malformed rows are listed in an error.
pub const MAX_REPORTED_ERRORS: usize = 20;

fn refused_message(total: &u64, errors: &[RowError]) -> String {
    let mut s = format!("import refused: {total} malformed row(s); nothing was imported\n");
    for e in errors {
        s.push_str(&format!("  {e}\n"));
    }
    if *total as usize > errors.len() {
        s.push_str(&format!(
            "  … and {} more\n",
            *total as usize - errors.len()
        ));
    }
    s.push_str("hint: fix the rows, or pass --skip-bad-rows to import the valid rows and write the rejected ones to a reject file");
    s
}

/// Which mapping to apply to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Recognise telegram-animals (a `subscriber_count` column) or telegram-posts (`msg_id`
    /// and `views`) by their columns.
    Auto,
    /// Any (entity, time, count) series into `member_samples`.
    Generic {
        /// Column with a channel id or a known handle.
        entity: String,
        /// Column with the observation time.
        time: String,
        /// Column with the subscriber count.
        value: String,
        /// How the time column is written.
        time_format: TimeFormat,
    },
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Mapping.
    pub format: Format,
    /// Import valid rows and write rejected ones to `reject_file` instead of refusing.
    pub skip_bad_rows: bool,
    /// Reject file; default `<input name>.rejects.csv` in the working directory.
    pub reject_file: Option<PathBuf>,
    /// Zone for timestamps written without one; `None` rejects such rows.
    pub naive_tz: Option<Tz>,
    /// Observation time for post files that carry none; default: the newest publication
    /// time in the file (the views cannot have been read before it).
    pub observed_at: Option<DateTime<Utc>>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Size bounds on the input.
    pub limits: ImportLimits,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            format: Format::Auto,
            skip_bad_rows: false,
            reject_file: None,
            naive_tz: None,
            observed_at: None,
            progress: false,
            limits: ImportLimits::default(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// The input file.
    pub path: PathBuf,
    /// Data rows read.
    pub rows_read: u64,
    /// Samples inserted (member + post).
    pub inserted: u64,
    /// Member samples inserted.
    pub member_samples_inserted: u64,
    /// Post samples inserted.
    pub post_samples_inserted: u64,
    /// Valid samples already stored or repeated in the file.
    pub duplicates: u64,
    /// Of the duplicates, stored readings replaced by a higher count for the same key (or
    /// given the post count they lacked).
    pub replaced: u64,
    /// Mentions read from the file (in a telegram-posts file, its forwards from channels),
    /// repeats included; not samples, so not in `inserted` or `duplicates`.
    pub mentions_read: u64,
    /// Of those, mentions new to the `mentions` table.
    pub mentions_inserted: u64,
    /// Malformed rows skipped (only with `skip_bad_rows`).
    pub rejected: u64,
    /// Where rejected rows were written, if any: the requested reject file, or
    /// `<stem>.N.<ext>` beside it when that file already exists (never overwritten).
    pub reject_file: Option<PathBuf>,
    /// Observation time used for post samples, when the file had none.
    pub observed_at: Option<DateTime<Utc>>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl ImportSummary {
    /// Rows read per second of wall time.
    pub fn rows_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.rows_read as f64 / self.seconds
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "imported {}", self.path.display())?;
        writeln!(f, "  rows read     {:>12}", self.rows_read)?;
        writeln!(
            f,
            "  inserted      {:>12}  (member samples {}, post samples {})",
            self.inserted, self.member_samples_inserted, self.post_samples_inserted
        )?;
        writeln!(
            f,
            "  duplicates    {:>12}  ({} replaced a lower count for the same key)",
            self.duplicates, self.replaced
        )?;
        if self.mentions_read > 0 {
            writeln!(
                f,
                "  mentions      {:>12}  new of {} read",
                self.mentions_inserted, self.mentions_read
            )?;
        }
        writeln!(f, "  rejected      {:>12}", self.rejected)?;
        if let Some(p) = &self.reject_file {
            writeln!(f, "  reject file   {}", p.display())?;
        }
        if let Some(t) = self.observed_at {
            writeln!(
                f,
                "  posts observed_at {} (newest post in the file; override with --observed-at)",
                t.to_rfc3339()
            )?;
        }
        write!(
            f,
            "  seconds       {:>12.2}  ({:.0} rows/s)",
            self.seconds,
            self.rows_per_sec()
        )
    }
}

struct ScanOutcome {
    rows_read: u64,
    rejected: u64,
    errors: Vec<RowError>,
    /// The rejected rows, in a temporary file beside the reject file until the import
    /// succeeds ([`keep_rejects`]); dropping it removes it.
    rejects: Option<csv::Writer<NamedTempFile>>,
}

/// Records per message to the writer.
const CHUNK: usize = 4096;

/// Imports one file as a single transaction.
///
/// errors: `Error::Refused` listing malformed rows (line/row, column, reason) when any row
/// is malformed and `skip_bad_rows` is off; `Error::Format`/`Error::Open` for unreadable
/// input; `Error::Write` if the database write fails. In every error case nothing changed.
pub async fn import(
    db: &Db,
    path: &Path,
    opts: &ImportOptions,
    ingest_cfg: &IngestConfig,
) -> Result<ImportSummary, Error> {
    let started = Instant::now();
    let path = path.to_owned();
    let known = match opts.format {
        Format::Generic { .. } => known_handles(db).await?,
        Format::Auto => HashMap::new(),
    };
    let opts2 = opts.clone();
    let path2 = path.clone();
    let (input, mut mapper, observed_at) =
        tokio::task::spawn_blocking(move || prepare(&path2, &opts2, known))
            .await
            .map_err(Error::ReaderTask)??;

    let (sender, writer) = ingest::start(db, CommitPolicy::Atomic, ingest_cfg, "import");
    let skip = opts.skip_bad_rows;
    let reject_path = opts
        .reject_file
        .clone()
        .unwrap_or_else(|| default_reject_path(&path));
    let bar = progress_bar(opts.progress, &input);
    let progress = Progress::default();
    let watcher = spawn_progress(bar.clone(), progress.clone());
    let tx = sender.clone();
    let reject_path2 = reject_path.clone();
    let scan = tokio::task::spawn_blocking(move || {
        let mut emit = |b: Vec<Record>| tx.blocking_send(b).is_ok();
        scan_file(
            &input,
            mapper.as_mut(),
            &progress,
            skip,
            &reject_path2,
            &mut emit,
        )
    });
    let outcome = scan.await.map_err(Error::ReaderTask);
    watcher.abort();
    let _ = watcher.await;
    bar.finish_and_clear();
    let outcome = match outcome.and_then(|r| r) {
        Ok(o) => o,
        Err(e) => {
            sender.abort(e.to_string()).await;
            drop(sender);
            let _ = writer.finish().await;
            return Err(e);
        }
    };
    if outcome.rejected > 0 && !skip {
        sender.abort("malformed rows").await;
        drop(sender);
        let _ = writer.finish().await;
        return Err(Error::Refused {
            total: outcome.rejected,
            errors: outcome.errors,
        });
    }
    // The reject file is put in place before the commit and removed if the commit fails:
    // the import, rejects included, happens whole or not at all.
    let kept = match outcome.rejects.map(|w| keep_rejects(w, &reject_path)) {
        Some(Err(e)) => {
            sender.abort(e.to_string()).await;
            drop(sender);
            let _ = writer.finish().await;
            return Err(e);
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    drop(sender);
    let report = match writer.finish().await {
        Ok(r) => r,
        Err(e) => {
            if let Some(p) = &kept {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.into());
        }
    };
    Ok(ImportSummary {
        path,
        rows_read: outcome.rows_read,
        inserted: report.inserted(),
        member_samples_inserted: report.member_samples_inserted,
        post_samples_inserted: report.post_samples_inserted,
        duplicates: report.duplicates(),
        replaced: report.samples_upgraded,
        mentions_read: report.mentions_received,
        mentions_inserted: report.mentions_inserted,
        rejected: outcome.rejected,
        reject_file: kept,
        observed_at,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads a whole file into records with the same mapping as [`import`] (blocking).
/// Returns the records in file order and the number of rows read. Generic mappings resolve
/// only numeric ids here. Holds every record in memory: for large files use
/// [`stream_records`].
///
/// errors: as [`stream_records`].
pub fn read_records(path: &Path, opts: &ImportOptions) -> Result<(Vec<Record>, u64), Error> {
    let mut all = Vec::new();
    let rows = stream_records(path, opts, &mut |b| {
        all.extend(b);
        true
    })?;
    Ok((all, rows))
}

/// Reads a file with the same mapping as [`import`] (blocking; for replay) and hands its
/// records to `emit` in file order, in chunks of about 4096; `emit` returns `false` to stop.
/// Memory stays bounded whatever the file (see [`ImportLimits`]). Returns the rows read.
/// Generic mappings resolve only numeric ids here.
///
/// errors: as [`import`], except `Write`: `Error::Refused` for malformed rows unless
/// `opts.skip_bad_rows` (records before the first malformed row may have been emitted).
pub fn stream_records(
    path: &Path,
    opts: &ImportOptions,
    emit: &mut dyn FnMut(Vec<Record>) -> bool,
) -> Result<u64, Error> {
    let (input, mut mapper, _) = prepare(path, opts, HashMap::new())?;
    let reject_path = opts
        .reject_file
        .clone()
        .unwrap_or_else(|| default_reject_path(path));
    let outcome = scan_file(
        &input,
        mapper.as_mut(),
        &Progress::default(),
        opts.skip_bad_rows,
        &reject_path,
        emit,
    )?;
    if outcome.rejected > 0 && !opts.skip_bad_rows {
        return Err(Error::Refused {
            total: outcome.rejected,
            errors: outcome.errors,
        });
    }
    if let Some(w) = outcome.rejects {
        keep_rejects(w, &reject_path)?;
    }
    Ok(outcome.rows_read)
}

type Prepared = (Input, Box<dyn Mapper>, Option<DateTime<Utc>>);

fn prepare(
    path: &Path,
    opts: &ImportOptions,
    known: HashMap<String, ChannelId>,
) -> Result<Prepared, Error> {
    let input = Input::open(path, opts.limits)?;
    let fmt_err = |e: String| Error::Format(format!("{}: {e}", path.display()));
    match &opts.format {
        Format::Generic {
            entity,
            time,
            value,
            time_format,
        } => {
            let m = Generic::new(
                &input,
                entity,
                time,
                value,
                time_format.clone(),
                opts.naive_tz,
                known,
            )
            .map_err(fmt_err)?;
            Ok((input, Box::new(m), None))
        }
        Format::Auto => {
            if let Some(m) = Animals::detect(&input) {
                return Ok((input, Box::new(m.map_err(fmt_err)?), None));
            }
            if let Some(m) = Posts::detect(&input) {
                let mut m = m.map_err(fmt_err)?;
                let observed_at = match opts.observed_at {
                    Some(t) => t,
                    None => newest(&input, m.date_col())?,
                };
                m.set_observed_at(observed_at);
                return Ok((input, Box::new(m), Some(observed_at)));
            }
            Err(Error::Format(format!(
                "{}: unknown layout (columns: {}); for an (entity, time, count) series pass \
                 --entity-col, --time-col and --value-col",
                path.display(),
                input.columns.join(", ")
            )))
        }
    }
}

/// The newest parseable timestamp in a column (pre-pass for the posts' observation time).
fn newest(input: &Input, col: usize) -> Result<DateTime<Utc>, Error> {
    let mut max: Option<DateTime<Utc>> = None;
    input.scan(&[col], &Progress::default(), |row, _| {
        if let Some(row) = row
            && let Ok(Some(t)) = parse::instant(row.get(col), &TimeFormat::Auto, None)
        {
            max = Some(max.map_or(t, |m| m.max(t)));
        }
        true
    })?;
    max.ok_or_else(|| Error::Format("the file has no valid publication date".into()))
}

/// The state of one pass over a file: counts, the pending chunk, the reject file.
struct Scan<'a> {
    columns: &'a [String],
    skip: bool,
    reject_path: &'a Path,
    out: ScanOutcome,
    buf: Vec<Record>,
    emit: &'a mut dyn FnMut(Vec<Record>) -> bool,
    send_failed: bool,
    fail: Option<Error>,
}

impl Scan<'_> {
    /// Records go to the writer while the import can still succeed: with `skip`, or until
    /// the first bad row (after it the scan only reports).
    fn sending(&self) -> bool {
        self.skip || self.out.rejected == 0
    }

    /// Sends the pending chunk once it is full; `false` when the writer stopped.
    fn flush_full(&mut self) -> bool {
        if !self.sending() {
            self.buf.clear();
        }
        if self.buf.len() >= CHUNK && !(self.emit)(std::mem::take(&mut self.buf)) {
            self.send_failed = true;
            return false;
        }
        true
    }
}

impl Sink for Scan<'_> {
    fn record(&mut self, r: Record) {
        if self.sending() {
            self.buf.push(r);
            self.flush_full();
        }
    }

    fn reject(&mut self, mut e: RowError) {
        self.out.rejected += 1;
        clip(&mut e.reason, MAX_REASON_BYTES);
        for cell in &mut e.raw {
            clip(cell, MAX_REJECT_CELL_BYTES);
        }
        if self.skip
            && self.fail.is_none()
            && let Err(source) =
                write_reject(&mut self.out.rejects, self.reject_path, self.columns, &e)
        {
            self.fail = Some(Error::RejectFile {
                path: self.reject_path.to_owned(),
                source,
            });
        }
        if self.out.errors.len() < MAX_REPORTED_ERRORS {
            self.out.errors.push(e);
        }
    }
}

fn scan_file(
    input: &Input,
    mapper: &mut dyn Mapper,
    progress: &Progress,
    skip: bool,
    reject_path: &Path,
    emit: &mut dyn FnMut(Vec<Record>) -> bool,
) -> Result<ScanOutcome, Error> {
    let mut scan = Scan {
        columns: &input.columns,
        skip,
        reject_path,
        out: ScanOutcome {
            rows_read: 0,
            rejected: 0,
            errors: Vec::new(),
            rejects: None,
        },
        buf: Vec::with_capacity(CHUNK + 8),
        emit,
        send_failed: false,
        fail: None,
    };
    let needed = mapper.needed();
    let max_record = input.limits().max_record_bytes;
    input.scan(&needed, progress, |row, pos| {
        scan.out.rows_read += 1;
        let Some(row) = row else {
            scan.reject(RowError {
                pos,
                column: "(record)".into(),
                reason: format!(
                    "record longer than {max_record} bytes (--max-record-bytes); skipped unread"
                ),
                raw: vec![String::new(); scan.columns.len()],
            });
            return scan.flush_full() && scan.fail.is_none();
        };
        let before = scan.buf.len();
        if let Err((column, reason)) = mapper.map(row, pos, &mut scan.buf) {
            scan.buf.truncate(before);
            scan.reject(RowError {
                pos,
                column,
                reason,
                raw: row.raw(),
            });
        }
        scan.flush_full() && scan.fail.is_none()
    })?;
    if !scan.send_failed && scan.fail.is_none() {
        mapper.finish(&mut scan).map_err(Error::Spill)?;
    }
    if let Some(e) = scan.fail {
        return Err(e);
    }
    if scan.sending() && !scan.send_failed && !scan.buf.is_empty() {
        let rest = std::mem::take(&mut scan.buf);
        if !(scan.emit)(rest) {
            scan.send_failed = true;
        }
    }
    if scan.send_failed {
        // The writer stopped; its own error is reported by `Writer::finish`.
        return Err(Error::Write(ingest::Error::writer_stopped()));
    }
    Ok(scan.out)
}

fn default_reject_path(input: &Path) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    PathBuf::from(format!("{name}.rejects.csv"))
}

async fn known_handles(db: &Db) -> Result<HashMap<String, ChannelId>, Error> {
    let client = db.pool.get().await.map_err(crate::db::Error::from)?;
    // A handle that ever pointed to several channels is left out: it is ambiguous.
    let rows = client
        .query(
            "SELECT handle, min(channel_id) FROM channel_names WHERE handle <> ''
             GROUP BY handle HAVING count(DISTINCT channel_id) = 1",
            &[],
        )
        .await
        .map_err(crate::db::Error::query("read known handles"))?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get::<_, String>(0), ChannelId::new(r.get(1)).ok()?)))
        .collect())
}

fn progress_bar(show: bool, input: &Input) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(input.total);
    let unit = match input.kind {
        reader::InputKind::Parquet => "{pos}/{len} rows",
        reader::InputKind::Csv { .. } => "{bytes}/{total_bytes}",
    };
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} importing [{{bar:30}}] {unit} {{per_sec}} eta {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Copies the reader's counter into the bar ten times a second; aborted when the scan ends.
fn spawn_progress(bar: ProgressBar, progress: Progress) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            bar.set_position(progress.0.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}
