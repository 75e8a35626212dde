//! Replay: streams a recorded file (the real datasets in `../shared/data`, or any file
//! `tgpulse import` reads) through the live path, in time order, as if it were arriving now.
//!
//! Event time is `observed_at` for member samples and `published_at` for post samples. At
//! speed `k`x, an event `d` after the first one is sent `d / k` after the start; `max` sends
//! as fast as the pipeline takes them. The samples keep their recorded times, so a replay
//! stores exactly what a direct import of the same file stores.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{ChannelInfo, Collector, Error, RunContext, RunReport, SourceError};
use crate::domain::Handle;
use crate::import::{self, Format, ImportOptions};
use crate::ingest::Record;

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

fn event_time(r: &Record) -> DateTime<Utc> {
    match r {
        Record::Member(m) => m.observed_at,
        Record::Post(p) => p.published_at,
        Record::Channel(c) => c.seen_at,
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

    /// errors: `Error::Replay` if the file cannot be read or has malformed rows (nothing is
    /// sent then); `Error::WriterStopped` if the pipeline stops.
    async fn run(&self, ctx: RunContext) -> Result<RunReport, Error> {
        let file = self.file.clone();
        let opts = ImportOptions {
            format: Format::Auto,
            ..ImportOptions::default()
        };
        let (mut records, rows) =
            tokio::task::spawn_blocking(move || import::read_records(&file, &opts))
                .await
                .map_err(|e| Error::Replay(import::Error::ReaderTask(e)))??;
        // Stable: records of one instant keep file order (channel names before samples).
        records.sort_by_key(event_time);
        tracing::info!(file = %self.file.display(), rows, records = records.len(), speed = ?self.speed, "replaying");
        let mut report = RunReport::default();
        let Some(first) = records.first().map(event_time) else {
            return Ok(report);
        };
        let start = Instant::now();
        let mut iter = records.into_iter().peekable();
        while iter.peek().is_some() {
            if ctx.shutdown.is_cancelled() {
                break;
            }
            let mut chunk = Vec::with_capacity(CHUNK);
            let due = |r: &Record| match self.speed {
                Speed::Max => start,
                Speed::Factor(k) => {
                    let d = (event_time(r) - first).to_std().unwrap_or_default();
                    start + d.div_f64(k)
                }
            };
            let next_due = due(iter.peek().expect("peeked"));
            if next_due > Instant::now() {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep_until(next_due.min(Instant::now() + Duration::from_secs(60))) => continue,
                }
            }
            let now = Instant::now();
            while chunk.len() < CHUNK && iter.peek().is_some_and(|r| due(r) <= now) {
                chunk.push(iter.next().expect("peeked"));
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
