//! Replay: streams a recorded file (the real datasets in `../shared/data`, or any file
//! `tgpulse import` reads) through the live path, in time order, as if it were arriving now.
//!
//! Event time is `observed_at` for member samples and `published_at` for post samples. At
//! speed `k`x, an event `d` after the first one is sent `d / k` after the start; `max` sends
//! as fast as the pipeline takes them. The samples keep their recorded times, so a replay
//! stores exactly what a direct import of the same file stores.
//!
//! The file need not be in time order (the real raw snapshots are not): it is sorted in
//! bounded memory first ([`sort`]), spilling sorted runs to temporary files when it does
//! not fit in one run of 32 MiB, so the first record is sent once the whole file is read.

mod sort;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{ChannelInfo, Collector, Error, RunContext, RunReport, SourceError};
use crate::domain::Handle;
use crate::import::{self, Format, ImportOptions};
use crate::ingest::Record;
use sort::{Sorter, event_time};

/// Replay speed: a factor on recorded time, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// `k` recorded seconds per wall-clock second (`1x`, `3600x`).
    Factor(f64),
    /// No pacing.
    Max,
}

impl Speed {
    /// Slowest factor: 1 recorded second per 1000 s.
    pub const MIN_FACTOR: f64 = 0.001;
    /// Fastest factor before `max`.
    pub const MAX_FACTOR: f64 = 1e9;
}

impl FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        if t == "max" {
            return Ok(Self::Max);
        }
        let n = t.strip_suffix('x').unwrap_or(&t);
        match n.parse::<f64>() {
            // Bounded so that every paced delay (`d / k`) stays in range.
            Ok(k) if (Self::MIN_FACTOR..=Self::MAX_FACTOR).contains(&k) => Ok(Self::Factor(k)),
            _ => Err(format!(
                "invalid speed {s:?}: expected a factor from 0.001x to 1000000000x such as 1x \
                 or 3600x, or max"
            )),
        }
    }
}

/// Records per send when several are due at once.
const CHUNK: usize = 4096;

/// The replay source.
#[derive(Debug, Clone)]
pub struct Replay {
    file: PathBuf,
    speed: Speed,
}

impl Replay {
    /// Replays `file` at `speed`.
    pub fn new(file: PathBuf, speed: Speed) -> Self {
        Self { file, speed }
    }
}

#[async_trait]
impl Collector for Replay {
    fn name(&self) -> &str {
        "replay"
    }

    async fn resolve(&self, _handle: &Handle) -> Result<ChannelInfo, SourceError> {
        Err(SourceError::Unsupported(
            "resolving handles (replay reads recorded files)",
        ))
    }

    /// errors: `Error::Replay` if the file cannot be read or sorted, or has malformed rows
    /// (nothing is sent then); `Error::WriterStopped` if the pipeline stops.
    async fn run(&self, ctx: RunContext) -> Result<RunReport, Error> {
        let file = self.file.clone();
        let opts = ImportOptions {
            format: Format::Auto,
            ..ImportOptions::default()
        };
        // The blocking side reads and sorts the whole file, then hands the sorted records
        // over in chunks through a small queue: memory stays bounded whatever the file.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Record>>(2);
        let cancel = ctx.shutdown.clone();
        let producer = tokio::task::spawn_blocking(move || -> Result<u64, import::Error> {
            let mut sorter = Sorter::new(sort::RUN_BYTES);
            let mut spill_error = None;
            let rows = import::stream_records(&file, &opts, &mut |chunk| {
                for r in chunk {
                    if let Err(e) = sorter.push(r) {
                        spill_error = Some(e);
                        return false;
                    }
                }
                !cancel.is_cancelled()
            })?;
            if let Some(e) = spill_error {
                return Err(import::Error::Spill(e));
            }
            if cancel.is_cancelled() {
                return Ok(rows);
            }
            let runs = sorter.spilled_runs();
            tracing::info!(file = %file.display(), rows, runs, "replay file read and sorted");
            let mut chunk = Vec::with_capacity(CHUNK);
            for r in sorter.finish().map_err(import::Error::Spill)? {
                chunk.push(r.map_err(import::Error::Spill)?);
                if chunk.len() == CHUNK
                    && tx
                        .blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                        .is_err()
                {
                    return Ok(rows);
                }
            }
            if !chunk.is_empty() {
                let _ = tx.blocking_send(chunk);
            }
            Ok(rows)
        });
        tracing::info!(file = %self.file.display(), speed = ?self.speed, "replaying");
        let mut report = RunReport::default();
        let mut pending: VecDeque<Record> = VecDeque::new();
        // The first record's event time and when it was due: the pacing origin.
        let mut origin = None;
        loop {
            if ctx.shutdown.is_cancelled() {
                break;
            }
            if pending.is_empty() {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    next = rx.recv() => match next {
                        Some(chunk) => pending.extend(chunk),
                        None => break,
                    },
                }
                continue;
            }
            let (first, start) =
                *origin.get_or_insert_with(|| (event_time(&pending[0]), Instant::now()));
            let due = |r: &Record| match self.speed {
                Speed::Max => start,
                Speed::Factor(k) => {
                    let d = (event_time(r) - first).to_std().unwrap_or_default();
                    start + d.div_f64(k)
                }
            };
            let next_due = due(&pending[0]);
            if next_due > Instant::now() {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep_until(next_due.min(Instant::now() + Duration::from_secs(60))) => continue,
                }
            }
            let now = Instant::now();
            let mut chunk = Vec::with_capacity(CHUNK.min(pending.len()));
            while chunk.len() < CHUNK && pending.front().is_some_and(|r| due(r) <= now) {
                chunk.extend(pending.pop_front());
            }
            let samples = chunk.iter().filter(|r| r.is_sample()).count() as u64;
            // A full queue (database away) must not hold shutdown up: records not yet
            // accepted are simply not replayed.
            tokio::select! {
                sent = ctx.sender.send(chunk) => sent.map_err(|_| Error::WriterStopped)?,
                _ = ctx.shutdown.cancelled() => break,
            }
            metrics::counter!("tgpulse_samples_accepted_total", "source" => "replay")
                .increment(samples);
            metrics::gauge!("tgpulse_source_last_success_timestamp_seconds", "source" => "replay")
                .set(ctx.clock.now().timestamp() as f64);
            report.samples_sent += samples;
            report.jobs_ok += 1;
        }
        // Closing the queue stops the blocking side at its next chunk.
        drop(rx);
        producer
            .await
            .map_err(|e| Error::Replay(import::Error::ReaderTask(e)))??;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse() {
        assert_eq!("3600x".parse::<Speed>(), Ok(Speed::Factor(3600.0)));
        assert_eq!("1".parse::<Speed>(), Ok(Speed::Factor(1.0)));
        assert_eq!("MAX".parse::<Speed>(), Ok(Speed::Max));
        assert!("0x".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
    }
}
