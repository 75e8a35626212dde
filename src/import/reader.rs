//! Row readers for CSV (plain or gzip) and Parquet, behind one cell-level view.
//!
//! Readers are synchronous (they run on a blocking thread) and hand each row to a visitor
//! with its position: the 1-based line where the record starts for CSV (multi-line quoted
//! fields count their lines), or the 0-based row index for Parquet.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Error;

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
}

/// Bytes read so far from the underlying file (compressed bytes for gzip).
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(pub(crate) Arc<AtomicU64>);

struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
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
    /// file that is not valid CSV/Parquet.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
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
                let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
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
                })
            }
            InputKind::Csv { gzip } => {
                let total = file.metadata().map_err(io_err(path))?.len();
                let mut reader = csv_reader(Box::new(file), gzip);
                let headers = reader.headers().map_err(|e| {
                    Error::Format(format!(
                        "{}: cannot read the CSV header: {e}",
                        path.display()
                    ))
                })?;
                let columns = headers
                    .iter()
                    .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
                    .collect();
                Ok(Self {
                    kind,
                    columns,
                    total,
                    path: path.to_owned(),
                })
            }
        }
    }

    /// Index of a column by name.
    pub(crate) fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Calls `visit` for every row, reading only `needed` columns where the format allows.
    /// `visit` returns `false` to stop early.
    ///
    /// errors: `Error::Format` if the file breaks mid-way (bad gzip, unreadable record).
    pub(crate) fn scan(
        &self,
        needed: &[usize],
        progress: &Progress,
        mut visit: impl FnMut(&dyn RowView, RowPos) -> bool,
    ) -> Result<(), Error> {
        let file = File::open(&self.path).map_err(io_err(&self.path))?;
        match self.kind {
            InputKind::Csv { gzip } => {
                let counted = Counting {
                    inner: file,
                    read: progress.0.clone(),
                };
                let mut reader = csv_reader(Box::new(counted), gzip);
                let mut record = csv::StringRecord::new();
                loop {
                    match reader.read_record(&mut record) {
                        Ok(false) => return Ok(()),
                        Ok(true) => {
                            let line = record.position().map_or(0, |p| p.line());
                            if !visit(&CsvRow(&record), RowPos::Line(line)) {
                                return Ok(());
                            }
                        }
                        Err(e) => {
                            return Err(Error::Format(format!("{}: {e}", self.path.display())));
                        }
                    }
                }
            }
            InputKind::Parquet => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| Error::Format(format!("{}: {e}", self.path.display())))?;
                let mut roots: Vec<usize> = needed.to_vec();
                roots.sort_unstable();
                roots.dedup();
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
                let reader = builder
                    .with_projection(mask)
                    .with_batch_size(8192)
                    .build()
                    .map_err(|e| Error::Format(format!("{}: {e}", self.path.display())))?;
                let mut index = 0u64;
                for batch in reader {
                    let batch = batch
                        .map_err(|e| Error::Format(format!("{}: {e}", self.path.display())))?;
                    let cols = ParquetCols::new(&batch, &roots, self.columns.len())?;
                    for r in 0..batch.num_rows() {
                        let row = ParquetRow {
                            cols: &cols,
                            row: r,
                        };
                        if !visit(&row, RowPos::Row(index)) {
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
    }
}

fn csv_reader(inner: Box<dyn Read + Send>, gzip: bool) -> csv::Reader<Box<dyn Read + Send>> {
    let inner: Box<dyn Read + Send> = if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            BufReader::new(inner),
        )))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, inner))
    };
    csv::ReaderBuilder::new().flexible(true).from_reader(inner)
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
    Int32(Int32Array),
    Float64(Float64Array),
    Float32(Float32Array),
    Utf8(StringArray),
    /// Anything else is rendered as text with arrow's formatter.
    Other(Vec<Option<String>>),
}

struct ParquetCols {
    /// Indexed by file column; `None` for columns not read.
    cols: Vec<Option<Col>>,
}

impl ParquetCols {
    fn new(batch: &RecordBatch, roots: &[usize], width: usize) -> Result<Self, Error> {
        let mut cols: Vec<Option<Col>> = (0..width).map(|_| None).collect();
        for (pos, &file_col) in roots.iter().enumerate() {
            let a: &ArrayRef = batch.column(pos);
            let col = match a.data_type() {
                DataType::Int64 => Col::Int64(a.as_primitive().clone()),
                DataType::Int32 => Col::Int32(a.as_primitive().clone()),
                DataType::Float64 => Col::Float64(a.as_primitive().clone()),
                DataType::Float32 => Col::Float32(a.as_primitive().clone()),
                DataType::Utf8 => Col::Utf8(a.as_string::<i32>().clone()),
                _ => {
                    let fmt = ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())
                        .map_err(|e| Error::Format(e.to_string()))?;
                    Col::Other(
                        (0..a.len())
                            .map(|i| a.is_valid(i).then(|| fmt.value(i).to_string()))
                            .collect(),
                    )
                }
            };
            cols[file_col] = Some(col);
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
        let r = self.row;
        match self.cols.cols.get(col).and_then(Option::as_ref) {
            None => Field::Null,
            Some(Col::Int64(a)) => {
                if a.is_valid(r) {
                    Field::Int(a.value(r))
                } else {
                    Field::Null
                }
            }
            Some(Col::Int32(a)) => {
                if a.is_valid(r) {
                    Field::Int(i64::from(a.value(r)))
                } else {
                    Field::Null
                }
            }
            Some(Col::Float64(a)) => {
                if a.is_valid(r) {
                    Field::Float(a.value(r))
                } else {
                    Field::Null
                }
            }
            Some(Col::Float32(a)) => {
                if a.is_valid(r) {
                    Field::Float(f64::from(a.value(r)))
                } else {
                    Field::Null
                }
            }
            Some(Col::Utf8(a)) => {
                if a.is_valid(r) {
                    Field::Text(a.value(r))
                } else {
                    Field::Null
                }
            }
            Some(Col::Other(v)) => v[r].as_deref().map_or(Field::Null, Field::Text),
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
