//! The CSV reader's guards: a record-length bound the csv crate lacks, and a gzip expansion
//! bound. Both stop at a limit instead of allocating, and say which line they reached.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Counting, Progress};
use crate::import::ImportLimits;

/// How gzip input is bounded: the ratio is only checked past this many decoded bytes, so
/// small, very repetitive files are not refused.
const GZIP_RATIO_GRACE: u64 = 16 << 20;

/// A csv reader over `file` (gzip-decoded if `gzip`) behind both guards; compressed bytes
/// read are added to `progress`.
pub(super) fn csv_reader(
    file: Box<dyn Read + Send>,
    gzip: bool,
    limits: &ImportLimits,
    progress: &Progress,
) -> csv::Reader<Bounded> {
    let compressed = Arc::new(AtomicU64::new(0));
    let counted = Counting {
        inner: file,
        read: progress.0.clone(),
        also: compressed.clone(),
    };
    let inner: Box<dyn Read + Send> = if gzip {
        Box::new(Ratio {
            inner: flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted)),
            compressed,
            decoded: 0,
            max_ratio: limits.max_gzip_ratio,
        })
    } else {
        Box::new(counted)
    };
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(Bounded::new(inner, limits.max_record_bytes))
}

/// The clear reason of a reader error caused by a limit, if it was one.
pub(super) fn guard_error(reader: &csv::Reader<Bounded>, limits: &ImportLimits) -> Option<String> {
    let g = reader.get_ref();
    if let Some(line) = g.over {
        return Some(format!(
            "the record at line {line} is longer than {} bytes (--max-record-bytes)",
            limits.max_record_bytes
        ));
    }
    g.bomb_reason(limits)
}

/// Decoded gzip bytes, failing once they exceed `max_ratio` times the compressed bytes read.
struct Ratio<R> {
    inner: R,
    compressed: Arc<AtomicU64>,
    decoded: u64,
    max_ratio: u64,
}

/// The marker error of [`Ratio`].
#[derive(Debug, thiserror::Error)]
#[error("gzip data expands {decoded} bytes from {compressed}")]
struct GzipBomb {
    decoded: u64,
    compressed: u64,
}

impl<R: Read> Read for Ratio<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.decoded += n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        if self.decoded > GZIP_RATIO_GRACE && self.decoded / compressed >= self.max_ratio.max(1) {
            return Err(std::io::Error::other(GzipBomb {
                decoded: self.decoded,
                compressed,
            }));
        }
        Ok(n)
    }
}

/// Where the byte stream is in CSV terms, mirroring the csv crate's defaults (`"` quotes,
/// doubled to escape; `,`; CR, LF or CRLF ends a record; blank lines are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// Sits between the decoded bytes and the csv reader, tracking record boundaries, and stops
/// a record at `max` bytes: the csv crate itself would grow its buffer without limit.
pub(super) struct Bounded {
    inner: Box<dyn Read + Send>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    lex: Lex,
    record_len: u64,
    /// 1-based line of the next byte.
    pub(super) line: u64,
    record_line: u64,
    max: u64,
    /// The line of a record that went over `max`, until it is skipped.
    pub(super) over: Option<u64>,
    /// Decoded and compressed bytes when the gzip ratio check failed.
    bomb: Option<(u64, u64)>,
}

impl Bounded {
    fn new(inner: Box<dyn Read + Send>, max: u64) -> Self {
        Self {
            inner,
            buf: vec![0; 1 << 16].into_boxed_slice(),
            pos: 0,
            end: 0,
            lex: Lex::StartRecord,
            record_len: 0,
            line: 1,
            record_line: 1,
            max,
            over: None,
            bomb: None,
        }
    }

    /// The reason of a failed gzip ratio check, if that is what failed.
    pub(super) fn bomb_reason(&self, limits: &ImportLimits) -> Option<String> {
        self.bomb.map(|(decoded, compressed)| {
            format!(
                "gzip data expands more than {}× ({} MiB from {} KiB) around line {}; refusing \
                 a possible decompression bomb (--max-gzip-ratio raises the limit)",
                limits.max_gzip_ratio,
                decoded >> 20,
                compressed >> 10,
                self.line
            )
        })
    }

    fn fill(&mut self) -> std::io::Result<bool> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            let n = self.inner.read(&mut self.buf).inspect_err(|e| {
                if let Some(b) = e.get_ref().and_then(|e| e.downcast_ref::<GzipBomb>()) {
                    self.bomb = Some((b.decoded, b.compressed));
                }
            })?;
            self.end = n;
        }
        Ok(self.pos < self.end)
    }

    /// Advances the lexer by one byte; returns whether it ended a record.
    fn step(&mut self, b: u8) -> bool {
        use Lex::*;
        if b == b'\n' {
            self.line += 1;
        }
        let (next, ends) = match (self.lex, b) {
            (StartRecord, b'\n' | b'\r') => (StartRecord, false),
            (StartField | InField | QuoteInQuoted, b'\n' | b'\r') => (StartRecord, true),
            (StartRecord | StartField, b'"') => (InQuoted, false),
            (StartRecord | StartField | InField | QuoteInQuoted, b',') => (StartField, false),
            (StartRecord | StartField | InField, _) => (InField, false),
            (InQuoted, b'"') => (QuoteInQuoted, false),
            (InQuoted, _) => (InQuoted, false),
            (QuoteInQuoted, b'"') => (InQuoted, false),
            (QuoteInQuoted, _) => (InField, false),
        };
        if self.lex == StartRecord && next != StartRecord {
            self.record_line = self.line;
            self.record_len = 0;
        }
        self.lex = next;
        if ends {
            self.record_len = 0;
        } else if next != StartRecord {
            self.record_len += 1;
        }
        ends
    }

    /// Reads past the rest of the record that went over the limit.
    pub(super) fn skip_record(&mut self) -> std::io::Result<()> {
        'outer: while self.fill()? {
            while self.pos < self.end {
                let b = self.buf[self.pos];
                self.pos += 1;
                if self.step(b) {
                    break 'outer;
                }
            }
        }
        self.over = None;
        self.record_len = 0;
        Ok(())
    }
}

impl Read for Bounded {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.over.is_some() || !self.fill()? {
            return if self.over.is_some() {
                Err(std::io::Error::other("record too long"))
            } else {
                Ok(0)
            };
        }
        let n = (self.end - self.pos).min(out.len());
        let mut i = 0;
        while i < n {
            self.step(self.buf[self.pos + i]);
            if self.record_len > self.max {
                self.over = Some(self.record_line);
                break;
            }
            i += 1;
        }
        out[..i].copy_from_slice(&self.buf[self.pos..self.pos + i]);
        // The byte that went over is consumed (the lexer has seen it) but not passed on.
        self.pos += if self.over.is_some() { i + 1 } else { i };
        if i == 0 {
            return Err(std::io::Error::other("record too long"));
        }
        Ok(i)
    }
}
