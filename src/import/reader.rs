//! Row readers for CSV (plain or gzip) and Parquet, behind one cell-level view.
//!
//! Readers are synchronous (they run on a blocking thread) and hand each row to a visitor
//! with its position: the 1-based line where the record starts for CSV (multi-line quoted
//! fields count their lines), or the 0-based row index for Parquet.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::buffer::NullBuffer;
use arrow::compute::CastOptions;
use arrow::datatypes::{DataType, Field as ArrowField, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use super::{Error, ImportLimits};
use csv_guard::{csv_reader, guard_error};

mod csv_guard;

/// One cell as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Field<'a> {
    /// Empty CSV cell or Parquet null.
    Null,
    /// Integer column.
    Int(i64),
    /// Floating-point column.
    Float(f64),
    /// Text (CSV cells are always text).
    Text(&'a str),
}

/// Where a row sits in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowPos {
    /// 1-based line of a CSV record's start (the header is line 1).
    Line(u64),
    /// 0-based row index in a Parquet file.
    Row(u64),
}

impl fmt::Display for RowPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// Cell access to the current row by file column index.
pub(crate) trait RowView {
    fn get(&self, col: usize) -> Field<'_>;
    /// The row as text, for reject files.
    fn raw(&self) -> Vec<String>;
}

/// Kind of input file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputKind {
    Csv { gzip: bool },
    Parquet,
}

/// An opened input: its kind, column names and size for progress.
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) kind: InputKind,
    pub(crate) columns: Vec<String>,
    /// Rows (Parquet) or bytes (CSV) to go, for the progress bar.
    pub(crate) total: u64,
    path: std::path::PathBuf,
    limits: ImportLimits,
}

/// Bytes read so far from the underlying file (compressed bytes for gzip).
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(pub(crate) Arc<AtomicU64>);

struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
    /// A second counter (the gzip ratio check's).
    also: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        self.also.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Open {
        path: path.to_owned(),
        source,
    }
}

impl Input {
    /// Opens `path` and reads its header or schema.
    ///
    /// errors: `Error::Open` if unreadable; `Error::Format` for an unknown extension or a
    /// file that is not valid CSV/Parquet, or a CSV header over `limits.max_record_bytes`.
    pub(crate) fn open(path: &Path, limits: ImportLimits) -> Result<Self, Error> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let kind = if name.ends_with(".parquet") {
            InputKind::Parquet
        } else if name.ends_with(".csv.gz") || name.ends_with(".gz") {
            InputKind::Csv { gzip: true }
        } else if name.ends_with(".csv") {
            InputKind::Csv { gzip: false }
        } else {
            return Err(Error::Format(format!(
                "{}: unknown file type; expected .csv, .csv.gz or .parquet",
                path.display()
            )));
        };
        let file = File::open(path).map_err(io_err(path))?;
        match kind {
            InputKind::Parquet => {
                let builder =
                    ParquetRecordBatchReaderBuilder::try_new_with_options(file, parquet_options())
                        .map_err(|e| {
                            Error::Format(format!("{}: not a Parquet file: {e}", path.display()))
                        })?;
                let columns = builder
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
                Ok(Self {
                    kind,
                    columns,
                    total,
                    path: path.to_owned(),
                    limits,
                })
            }
            InputKind::Csv { gzip } => {
                let total = file.metadata().map_err(io_err(path))?.len();
                let mut reader = csv_reader(Box::new(file), gzip, &limits, &Progress::default());
                let headers = match reader.headers() {
                    Ok(h) => h.clone(),
                    Err(e) => {
                        let reason = guard_error(&reader, &limits).unwrap_or_else(|| e.to_string());
                        return Err(Error::Format(format!(
                            "{}: cannot read the CSV header: {reason}",
                            path.display()
                        )));
                    }
                };
                let columns = headers
                    .iter()
                    .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
                    .collect();
                Ok(Self {
                    kind,
                    columns,
                    total,
                    path: path.to_owned(),
                    limits,
                })
            }
        }
    }

    /// The bounds this input is read with.
    pub(crate) fn limits(&self) -> &ImportLimits {
        &self.limits
    }

    /// Index of a column by name.
    pub(crate) fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Calls `visit` for every row, reading only `needed` columns where the format allows.
    /// `visit` returns `false` to stop early. A CSV record longer than
    /// `limits.max_record_bytes` is skipped without being held in memory and visited as
    /// `None` with the line it starts on; the rows after it are read as usual.
    ///
    /// errors: `Error::Format` if the file breaks mid-way (bad gzip, unreadable record, a
    /// gzip stream expanding more than `limits.max_gzip_ratio` times, a Parquet column of a
    /// type that cannot be imported, a Parquet batch decoding to more than
    /// `limits.max_batch_bytes`).
    pub(crate) fn scan(
        &self,
        needed: &[usize],
        progress: &Progress,
        mut visit: impl FnMut(Option<&dyn RowView>, RowPos) -> bool,
    ) -> Result<(), Error> {
        let file = File::open(&self.path).map_err(io_err(&self.path))?;
        match self.kind {
            InputKind::Csv { gzip } => {
                let mut reader = csv_reader(Box::new(file), gzip, &self.limits, progress);
                let mut record = csv::StringRecord::new();
                // Lines before the current reader's first line (a reader is rebuilt after an
                // over-long record, counting lines from 1 again).
                let mut line_offset = 0u64;
                loop {
                    match reader.read_record(&mut record) {
                        Ok(false) => return Ok(()),
                        Ok(true) => {
                            let line = record.position().map_or(0, |p| p.line()) + line_offset;
                            if !visit(Some(&CsvRow(&record)), RowPos::Line(line)) {
                                return Ok(());
                            }
                        }
                        Err(e) => {
                            if let Some(line) = reader.get_ref().over {
                                if !visit(None, RowPos::Line(line)) {
                                    return Ok(());
                                }
                                let mut guard = reader.into_inner();
                                guard.skip_record().map_err(|e| {
                                    let reason = guard
                                        .bomb_reason(&self.limits)
                                        .unwrap_or_else(|| e.to_string());
                                    Error::Format(format!("{}: {reason}", self.path.display()))
                                })?;
                                line_offset = guard.line - 1;
                                reader = csv::ReaderBuilder::new()
                                    .flexible(true)
                                    .has_headers(false)
                                    .from_reader(guard);
                                continue;
                            }
                            let reason =
                                guard_error(&reader, &self.limits).unwrap_or_else(|| e.to_string());
                            return Err(Error::Format(format!(
                                "{}: {reason}",
                                self.path.display()
                            )));
                        }
                    }
                }
            }
            InputKind::Parquet => self.scan_parquet(file, needed, progress, visit),
        }
    }

    fn scan_parquet(
        &self,
        file: File,
        needed: &[usize],
        progress: &Progress,
        mut visit: impl FnMut(Option<&dyn RowView>, RowPos) -> bool,
    ) -> Result<(), Error> {
        let fail = |e: &dyn fmt::Display| Error::Format(format!("{}: {e}", self.path.display()));
        let meta = ArrowReaderMetadata::load(&file, parquet_options()).map_err(|e| fail(&e))?;
        // Text columns are read as dictionaries: a dictionary-encoded column (one long value
        // repeated on every row) then stays as small decoded as it is in the file.
        let schema = dictionary_schema(meta.schema());
        let meta = ArrowReaderMetadata::try_new(
            meta.metadata().clone(),
            parquet_options().with_schema(Arc::new(schema)),
        )
        .map_err(|e| fail(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
        let mut roots: Vec<usize> = needed.to_vec();
        roots.sort_unstable();
        roots.dedup();
        for &c in &roots {
            let field = builder.schema().field(c);
            if !importable(field.data_type()) {
                return Err(fail(&format!(
                    "column `{}` has type {}, which cannot be imported (expected integers, \
                     floats, text or timestamps)",
                    field.name(),
                    field.data_type()
                )));
            }
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(PARQUET_BATCH_ROWS)
            .build()
            .map_err(|e| fail(&e))?;
        let mut index = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| fail(&format!("row {index} and after: {e}")))?;
            let bytes = batch.get_array_memory_size();
            if bytes > self.limits.max_batch_bytes {
                return Err(fail(&format!(
                    "rows {index}..{} decode to {} MiB, over the limit of {} MiB for {} rows \
                     (--max-batch-bytes)",
                    index + batch.num_rows() as u64,
                    bytes >> 20,
                    self.limits.max_batch_bytes >> 20,
                    batch.num_rows()
                )));
            }
            let cols = ParquetCols::new(&batch, &roots, self.columns.len())
                .map_err(|e| fail(&format!("rows {index} and after: {e}")))?;
            for r in 0..batch.num_rows() {
                let row = ParquetRow {
                    cols: &cols,
                    row: r,
                };
                if !visit(Some(&row), RowPos::Row(index)) {
                    return Ok(());
                }
                index += 1;
            }
            progress
                .0
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// How every Parquet file is opened: the Arrow schema a writer may embed (`ARROW:schema`, an
/// IPC flatbuffer in the footer) is ignored and the columns' Arrow types are derived from the
/// Parquet schema alone. That embedded copy only refines types we read as text or numbers
/// anyway, and arrow-ipc panics on an unknown type id in it (`not implemented: Type <UNKNOWN
/// 37>`) instead of returning an error, which a single changed byte of a hostile file reaches.
fn parquet_options() -> ArrowReaderOptions {
    ArrowReaderOptions::new().with_skip_arrow_metadata(true)
}

/// Rows per decoded Parquet batch: small, so that wide rows stay well inside the batch limit.
const PARQUET_BATCH_ROWS: usize = 1024;

/// The file's Arrow schema with its top-level text and binary columns as dictionaries.
fn dictionary_schema(schema: &Schema) -> Schema {
    let fields: Vec<ArrowField> = schema
        .fields()
        .iter()
        .map(|f| {
            let dt = match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(DataType::Utf8),
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                    Some(DataType::Binary)
                }
                _ => None,
            };
            match dt {
                Some(v) => f
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Dictionary(Box::new(DataType::Int32), Box::new(v))),
                None => f.as_ref().clone(),
            }
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// Whether a column of this type can be read as cells.
fn importable(dt: &DataType) -> bool {
    match dt {
        DataType::Dictionary(_, v) => importable(v) && !matches!(**v, DataType::Dictionary(..)),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => false,
        DataType::Null | DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 => true,
        DataType::Utf8View => true,
        dt => {
            dt.is_integer()
                || dt.is_floating()
                || dt.is_temporal()
                || matches!(
                    dt,
                    DataType::Decimal32(..)
                        | DataType::Decimal64(..)
                        | DataType::Decimal128(..)
                        | DataType::Decimal256(..)
                )
        }
    }
}

struct CsvRow<'a>(&'a csv::StringRecord);

impl RowView for CsvRow<'_> {
    fn get(&self, col: usize) -> Field<'_> {
        match self.0.get(col) {
            None | Some("") => Field::Null,
            Some(s) => Field::Text(s),
        }
    }
    fn raw(&self) -> Vec<String> {
        self.0.iter().map(str::to_owned).collect()
    }
}

enum Col {
    Int64(Int64Array),
    Float64(Float64Array),
    Utf8(StringArray),
    /// A dictionary column: each row's index into `values`, and which rows are null.
    Dict {
        keys: Vec<usize>,
        nulls: Option<NullBuffer>,
        values: Box<Col>,
    },
}

impl Col {
    /// Converts a decoded column: integers to i64, floats to f64, dictionaries kept as
    /// such, everything else importable (timestamps, dates, decimals) cast to text.
    fn new(a: &ArrayRef) -> Result<Self, arrow::error::ArrowError> {
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let cast = |to: &DataType| arrow::compute::cast_with_options(a, to, &strict);
        Ok(match a.data_type() {
            DataType::Int64 => Self::Int64(a.as_primitive().clone()),
            DataType::Float64 => Self::Float64(a.as_primitive().clone()),
            DataType::Utf8 => Self::Utf8(a.as_string::<i32>().clone()),
            DataType::Dictionary(..) => {
                let d = a.as_any_dictionary();
                Self::Dict {
                    keys: d.normalized_keys(),
                    nulls: a.logical_nulls(),
                    values: Box::new(Self::new(d.values())?),
                }
            }
            dt if dt.is_integer() => Self::Int64(cast(&DataType::Int64)?.as_primitive().clone()),
            dt if dt.is_floating() => {
                Self::Float64(cast(&DataType::Float64)?.as_primitive().clone())
            }
            _ => Self::Utf8(cast(&DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    fn get(&self, r: usize) -> Field<'_> {
        match self {
            Self::Int64(a) => {
                if a.is_valid(r) {
                    Field::Int(a.value(r))
                } else {
                    Field::Null
                }
            }
            Self::Float64(a) => {
                if a.is_valid(r) {
                    Field::Float(a.value(r))
                } else {
                    Field::Null
                }
            }
            Self::Utf8(a) => {
                if a.is_valid(r) {
                    Field::Text(a.value(r))
                } else {
                    Field::Null
                }
            }
            Self::Dict {
                keys,
                nulls,
                values,
            } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(r)) {
                    Field::Null
                } else {
                    keys.get(r).map_or(Field::Null, |&k| values.get(k))
                }
            }
        }
    }
}

struct ParquetCols {
    /// Indexed by file column; `None` for columns not read.
    cols: Vec<Option<Col>>,
}

impl ParquetCols {
    fn new(
        batch: &RecordBatch,
        roots: &[usize],
        width: usize,
    ) -> Result<Self, arrow::error::ArrowError> {
        let mut cols: Vec<Option<Col>> = (0..width).map(|_| None).collect();
        for (pos, &file_col) in roots.iter().enumerate() {
            cols[file_col] = Some(Col::new(batch.column(pos))?);
        }
        Ok(Self { cols })
    }
}

struct ParquetRow<'a> {
    cols: &'a ParquetCols,
    row: usize,
}

impl RowView for ParquetRow<'_> {
    fn get(&self, col: usize) -> Field<'_> {
        match self.cols.cols.get(col).and_then(Option::as_ref) {
            None => Field::Null,
            Some(c) => c.get(self.row),
        }
    }
    fn raw(&self) -> Vec<String> {
        (0..self.cols.cols.len())
            .map(|c| match self.get(c) {
                Field::Null => String::new(),
                Field::Int(i) => i.to_string(),
                Field::Float(f) => f.to_string(),
                Field::Text(t) => t.to_owned(),
            })
            .collect()
    }
}
