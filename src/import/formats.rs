//! The input formats: telegram-animals channel observations, telegram-posts posts (and the
//! channel forwards among them), and a generic (entity, time, count) mapping. Each maps rows
//! to pipeline records.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::parse::{self, TimeFormat};
use super::reader::{Field, Input, RowPos, RowView};
use crate::domain::{ChannelId, Handle};
use crate::ingest::{ChannelSeen, MemberSample, PostSample, Record};
use deferred::{Deferred, corrupt_spill};
use forward::ForwardCols;

mod deferred;
mod forward;
#[cfg(test)]
mod tests;

/// A rejected row: where, which column, why, and the row as read.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// Line (CSV) or row index (Parquet).
    pub pos: RowPos,
    /// Column name the reason refers to.
    pub column: String,
    /// Why the row was rejected.
    pub reason: String,
    /// The row's cells as text.
    pub raw: Vec<String>,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, column {}: {}", self.pos, self.column, self.reason)
    }
}

/// Column name and reason of a row that does not map.
pub(crate) type Reject = (String, String);

fn reject(col: &str, reason: impl Into<String>) -> Reject {
    (col.to_owned(), reason.into())
}

/// Collapses consecutive sightings of one (channel, handle, title) into one run: files list
/// a channel's rows together, so this sends two name records per run instead of one per row.
#[derive(Debug, Default)]
pub(crate) struct NameRuns {
    /// First sighting of the current run and the time of its last.
    run: Option<(ChannelSeen, DateTime<Utc>)>,
}

impl NameRuns {
    /// Records a sighting; returns the previous run when this one starts a new run.
    fn see(&mut self, seen: ChannelSeen) -> Option<(ChannelSeen, DateTime<Utc>)> {
        if let Some((first, last)) = &mut self.run
            && first.channel_id == seen.channel_id
            && first.handle == seen.handle
            && first.title == seen.title
        {
            first.seen_at = first.seen_at.min(seen.seen_at);
            *last = (*last).max(seen.seen_at);
            return None;
        }
        let t = seen.seen_at;
        self.run.replace((seen, t))
    }

    /// Ends the current run.
    fn take(&mut self) -> Option<(ChannelSeen, DateTime<Utc>)> {
        self.run.take()
    }

    /// The name records of a finished run: first and last sighting.
    fn emit((first, last): (ChannelSeen, DateTime<Utc>), out: &mut Vec<Record>) {
        let mut end = first.clone();
        end.seen_at = last;
        out.push(Record::Channel(first));
        out.push(Record::Channel(end));
    }
}

/// Where [`Mapper::finish`] sends what it held back, one at a time.
pub(crate) trait Sink {
    /// A record to write.
    fn record(&mut self, r: Record);
    /// A held-back row that turned out malformed.
    fn reject(&mut self, e: RowError);
}

/// Maps rows of one format to records.
pub(crate) trait Mapper: Send {
    /// File columns this format reads.
    fn needed(&self) -> Vec<usize>;
    /// Appends the records of one row to `out`.
    fn map(&mut self, row: &dyn RowView, pos: RowPos, out: &mut Vec<Record>) -> Result<(), Reject>;
    /// Emits the rows held back until the whole file was seen.
    ///
    /// errors: the temporary file holding them cannot be written or read back.
    fn finish(&mut self, _sink: &mut dyn Sink) -> std::io::Result<()> {
        Ok(())
    }
}

/// Longest title or channel name accepted, in bytes. Telegram allows 128 characters; a
/// longer cell is a malformed row, so that no record carries an unbounded string.
pub(crate) const MAX_TITLE_BYTES: usize = 1024;

/// A title-like text cell: `None` when empty.
fn title_cell(f: Field<'_>, col: &str) -> Result<Option<String>, Reject> {
    if let Field::Text(t) = f
        && t.trim().len() > MAX_TITLE_BYTES
    {
        return Err(reject(
            col,
            format!(
                "longer than {MAX_TITLE_BYTES} bytes ({} bytes)",
                t.trim().len()
            ),
        ));
    }
    Ok(parse::text(f))
}

/// Most distinct handles remembered to resolve rows without a `channel_id`; past it,
/// such rows whose handle was not remembered are rejected with that reason.
pub(crate) const MAX_HANDLES: usize = 250_000;

struct Col {
    idx: usize,
    name: &'static str,
}

fn required(input: &Input, names: &[&'static str]) -> Result<Col, String> {
    names
        .iter()
        .find_map(|n| input.col(n).map(|idx| Col { idx, name: n }))
        .ok_or_else(|| format!("missing column {}", names.join(" or ")))
}

fn optional(input: &Input, name: &'static str) -> Option<Col> {
    input.col(name).map(|idx| Col { idx, name })
}

/// telegram-animals: `handle, channel_id, observed_at|date_checked, subscriber_count,
/// title[, post_count]`. `post_count` (optional; empty before 2022-05 in the real files) is
/// the posts the channel had published at observation time, stored with the sample; a
/// non-numeric or negative value rejects the row.
///
/// Rows without `channel_id` (the raw snapshots' first day) are resolved at the end of the
/// file through the handle: to the channel id that handle had nearest in time. They wait in
/// an anonymous temporary file, not in memory.
pub(crate) struct Animals {
    id: Col,
    handle: Col,
    time: Col,
    members: Col,
    title: Option<Col>,
    post_count: Option<Col>,
    /// handle -> the channels seen with it in this file (at most [`MAX_HANDLES`] handles).
    handle_ids: HashMap<String, Vec<HandleSpan>>,
    /// Some handles were not remembered because of [`MAX_HANDLES`].
    handles_dropped: bool,
    deferred: Option<csv::Writer<std::io::BufWriter<std::fs::File>>>,
    /// The first error writing `deferred`, reported by `finish`.
    spill_error: Option<std::io::Error>,
    names: NameRuns,
}

/// A channel id seen with a handle, from `first` to `last`.
#[derive(Debug, Clone, Copy)]
struct HandleSpan {
    id: ChannelId,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl HandleSpan {
    /// Time from `t` to the span; zero inside it.
    fn distance(&self, t: DateTime<Utc>) -> chrono::Duration {
        if t < self.first {
            self.first - t
        } else if t > self.last {
            t - self.last
        } else {
            chrono::Duration::zero()
        }
    }
}

impl Animals {
    pub(crate) fn detect(input: &Input) -> Option<Result<Self, String>> {
        input.col("subscriber_count")?;
        Some((|| {
            Ok(Self {
                id: required(input, &["channel_id"])?,
                handle: required(input, &["handle"])?,
                time: required(input, &["observed_at", "date_checked"])?,
                members: required(input, &["subscriber_count"])?,
                title: optional(input, "title"),
                post_count: optional(input, "post_count"),
                handle_ids: HashMap::new(),
                handles_dropped: false,
                deferred: None,
                spill_error: None,
                names: NameRuns::default(),
            })
        })())
    }

    /// Emits a finished name run and remembers which channel its handle meant, and when.
    fn end_run(&mut self, run: (ChannelSeen, DateTime<Utc>), out: &mut Vec<Record>) {
        if let Some(h) = run.0.handle.clone() {
            self.note_handle(&h, run.0.channel_id, run.0.seen_at);
            self.note_handle(&h, run.0.channel_id, run.1);
        }
        NameRuns::emit(run, out);
    }

    fn note_handle(&mut self, handle: &Handle, id: ChannelId, t: DateTime<Utc>) {
        if self.handle_ids.len() >= MAX_HANDLES && !self.handle_ids.contains_key(handle.as_str()) {
            self.handles_dropped = true;
            return;
        }
        let spans = self
            .handle_ids
            .entry(handle.as_str().to_owned())
            .or_default();
        match spans.iter_mut().find(|s| s.id == id) {
            Some(s) => {
                s.first = s.first.min(t);
                s.last = s.last.max(t);
            }
            None => spans.push(HandleSpan {
                id,
                first: t,
                last: t,
            }),
        }
    }
}

impl Mapper for Animals {
    fn needed(&self) -> Vec<usize> {
        let mut v = vec![
            self.id.idx,
            self.handle.idx,
            self.time.idx,
            self.members.idx,
        ];
        v.extend(self.title.as_ref().map(|c| c.idx));
        v.extend(self.post_count.as_ref().map(|c| c.idx));
        v
    }

    fn map(&mut self, row: &dyn RowView, pos: RowPos, out: &mut Vec<Record>) -> Result<(), Reject> {
        let id = parse::channel_id(row.get(self.id.idx)).map_err(|e| reject(self.id.name, e))?;
        let observed_at = parse::instant(row.get(self.time.idx), &TimeFormat::Auto, None)
            .map_err(|e| reject(self.time.name, e))?
            .ok_or_else(|| reject(self.time.name, "missing observation time"))?;
        let members = parse::count(row.get(self.members.idx))
            .map_err(|e| reject(self.members.name, e))?
            .ok_or_else(|| reject(self.members.name, "missing subscriber count"))?;
        let post_count = match &self.post_count {
            Some(c) => parse::count(row.get(c.idx)).map_err(|e| reject(c.name, e))?,
            None => None,
        };
        let handle = match parse::text(row.get(self.handle.idx)) {
            None => None,
            Some(h) => Some(
                h.parse::<Handle>()
                    .map_err(|e| reject(self.handle.name, e.to_string()))?,
            ),
        };
        let title = match &self.title {
            Some(c) => title_cell(row.get(c.idx), c.name)?,
            None => None,
        };
        let Some(channel_id) = id else {
            let handle = handle
                .ok_or_else(|| reject(self.id.name, "channel_id and handle are both missing"))?;
            // Placeholder id; replaced when the handle is resolved in `finish`.
            let sample = MemberSample {
                channel_id: ChannelId::new(1).expect("positive"),
                observed_at,
                members,
                post_count,
            };
            let d = Deferred {
                pos,
                handle,
                sample,
                title,
                raw: row.raw(),
            };
            if self.spill_error.is_none()
                && let Err(e) = self.spill(&d)
            {
                self.spill_error = Some(e);
            }
            return Ok(());
        };
        out.push(Record::Member(MemberSample {
            channel_id,
            observed_at,
            members,
            post_count,
        }));
        let seen = ChannelSeen {
            channel_id,
            handle,
            title,
            seen_at: observed_at,
        };
        if let Some(run) = self.names.see(seen) {
            self.end_run(run, out);
        }
        Ok(())
    }

    fn finish(&mut self, sink: &mut dyn Sink) -> std::io::Result<()> {
        if let Some(run) = self.names.take() {
            let mut out = Vec::with_capacity(2);
            self.end_run(run, &mut out);
            out.into_iter().for_each(|r| sink.record(r));
        }
        if let Some(e) = self.spill_error.take() {
            return Err(e);
        }
        let Some(w) = self.deferred.take() else {
            return Ok(());
        };
        let mut file = w
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(std::io::BufReader::new(file));
        let mut rec = csv::StringRecord::new();
        while reader
            .read_record(&mut rec)
            .map_err(|e| std::io::Error::other(e.to_string()))?
        {
            let d = Deferred::read(&rec).ok_or_else(corrupt_spill)?;
            let Deferred {
                pos,
                handle,
                mut sample,
                title,
                raw,
            } = d;
            let t = sample.observed_at;
            let mut candidates = self
                .handle_ids
                .get(handle.as_str())
                .cloned()
                .unwrap_or_default();
            candidates.sort_by_key(|s| s.distance(t));
            let resolved = match candidates.as_slice() {
                [] if self.handles_dropped => Err(format!(
                    "channel_id missing and {handle} cannot be resolved: the file has more \
                     than {MAX_HANDLES} handles"
                )),
                [] => Err(format!(
                    "channel_id missing and {handle} never appears with an id in this file"
                )),
                [one] => Ok(one.id),
                [a, b, ..] if a.distance(t) < b.distance(t) => Ok(a.id),
                _ => Err(format!(
                    "channel_id missing and {handle} belongs to several channels at that time"
                )),
            };
            match resolved {
                Ok(id) => {
                    sample.channel_id = id;
                    sink.record(Record::Member(sample));
                    sink.record(Record::Channel(ChannelSeen {
                        channel_id: id,
                        handle: Some(handle),
                        title,
                        seen_at: t,
                    }));
                }
                Err(reason) => sink.reject(RowError {
                    pos,
                    column: self.id.name.to_owned(),
                    reason,
                    raw,
                }),
            }
        }
        Ok(())
    }
}

/// telegram-posts: `channel_id, channel_name, msg_id, date, views, number_replies,
/// number_forwards[, reactions]`. Each row is one reading of a post's counters taken at
/// `observed_at`, which the file does not carry: the caller supplies it.
///
/// With the forward columns (see [`ForwardCols`]), a post that is a forward of a channel's
/// post also gives a `forward` mention of that channel.
pub(crate) struct Posts {
    id: Col,
    msg: Col,
    date: Col,
    views: Col,
    replies: Option<Col>,
    forwards: Option<Col>,
    reactions: Option<Col>,
    name: Option<Col>,
    forward: Option<ForwardCols>,
    observed_at: DateTime<Utc>,
    names: NameRuns,
}

impl Posts {
    pub(crate) fn detect(input: &Input) -> Option<Result<Self, String>> {
        input.col("msg_id")?;
        input.col("views")?;
        Some((|| {
            Ok(Self {
                id: required(input, &["channel_id"])?,
                msg: required(input, &["msg_id"])?,
                date: required(input, &["date"])?,
                views: required(input, &["views"])?,
                replies: optional(input, "number_replies"),
                forwards: optional(input, "number_forwards"),
                reactions: optional(input, "reactions"),
                name: optional(input, "channel_name"),
                forward: ForwardCols::detect(input),
                observed_at: DateTime::<Utc>::MIN_UTC,
                names: NameRuns::default(),
            })
        })())
    }

    /// Column holding the publication time, for the observation-time pre-pass.
    pub(crate) fn date_col(&self) -> usize {
        self.date.idx
    }

    pub(crate) fn set_observed_at(&mut self, t: DateTime<Utc>) {
        self.observed_at = t;
    }
}

impl Mapper for Posts {
    fn needed(&self) -> Vec<usize> {
        let mut v = vec![self.id.idx, self.msg.idx, self.date.idx, self.views.idx];
        for c in [&self.replies, &self.forwards, &self.reactions, &self.name]
            .into_iter()
            .flatten()
        {
            v.push(c.idx);
        }
        if let Some(f) = &self.forward {
            f.needed(&mut v);
        }
        v
    }

    fn map(
        &mut self,
        row: &dyn RowView,
        _pos: RowPos,
        out: &mut Vec<Record>,
    ) -> Result<(), Reject> {
        let channel_id = parse::channel_id(row.get(self.id.idx))
            .map_err(|e| reject(self.id.name, e))?
            .ok_or_else(|| reject(self.id.name, "missing channel id"))?;
        let post_id = parse::count(row.get(self.msg.idx))
            .map_err(|e| reject(self.msg.name, e))?
            .ok_or_else(|| reject(self.msg.name, "missing message id"))?;
        let published_at = parse::instant(row.get(self.date.idx), &TimeFormat::Auto, None)
            .map_err(|e| reject(self.date.name, e))?
            .ok_or_else(|| reject(self.date.name, "missing publication date"))?;
        let opt = |c: &Option<Col>| -> Result<Option<i64>, Reject> {
            match c {
                None => Ok(None),
                Some(c) => parse::count(row.get(c.idx)).map_err(|e| reject(c.name, e)),
            }
        };
        let views =
            parse::count(row.get(self.views.idx)).map_err(|e| reject(self.views.name, e))?;
        let sample = PostSample {
            channel_id,
            post_id,
            published_at,
            observed_at: self.observed_at.max(published_at),
            views,
            forwards: opt(&self.forwards)?,
            replies: opt(&self.replies)?,
            reactions: opt(&self.reactions)?,
        };
        let forward = match &self.forward {
            Some(f) => f.mention(row, channel_id, post_id, published_at)?,
            None => None,
        };
        out.push(Record::Post(sample));
        out.extend(forward.map(Record::Mention));
        let name = match &self.name {
            Some(c) => title_cell(row.get(c.idx), c.name)?,
            None => None,
        };
        if let Some(name) = name {
            // channel_name is a username when it is shaped like one, a title otherwise.
            let (handle, title) = match name.parse::<Handle>() {
                Ok(h) => (Some(h), None),
                Err(_) => (None, Some(name)),
            };
            let seen = ChannelSeen {
                channel_id,
                handle,
                title,
                seen_at: published_at,
            };
            if let Some(run) = self.names.see(seen) {
                NameRuns::emit(run, out);
            }
        }
        Ok(())
    }

    fn finish(&mut self, sink: &mut dyn Sink) -> std::io::Result<()> {
        if let Some(run) = self.names.take() {
            let mut out = Vec::with_capacity(2);
            NameRuns::emit(run, &mut out);
            out.into_iter().for_each(|r| sink.record(r));
        }
        Ok(())
    }
}

/// Generic (entity, time, count) series into `member_samples`. The entity is a channel id,
/// or a handle already known to tgpulse.
pub(crate) struct Generic {
    entity: (usize, String),
    time: (usize, String),
    value: (usize, String),
    format: TimeFormat,
    naive_tz: Option<Tz>,
    known: HashMap<String, ChannelId>,
}

impl Generic {
    pub(crate) fn new(
        input: &Input,
        entity: &str,
        time: &str,
        value: &str,
        format: TimeFormat,
        naive_tz: Option<Tz>,
        known: HashMap<String, ChannelId>,
    ) -> Result<Self, String> {
        let find = |n: &str| {
            input.col(n).map(|i| (i, n.to_owned())).ok_or_else(|| {
                format!(
                    "column `{n}` not found; the file has: {}",
                    input.columns.join(", ")
                )
            })
        };
        Ok(Self {
            entity: find(entity)?,
            time: find(time)?,
            value: find(value)?,
            format,
            naive_tz,
            known,
        })
    }
}

impl Mapper for Generic {
    fn needed(&self) -> Vec<usize> {
        vec![self.entity.0, self.time.0, self.value.0]
    }

    fn map(
        &mut self,
        row: &dyn RowView,
        _pos: RowPos,
        out: &mut Vec<Record>,
    ) -> Result<(), Reject> {
        let ent = parse::text(row.get(self.entity.0))
            .ok_or_else(|| reject(&self.entity.1, "missing entity"))?;
        let channel_id = match parse::channel_id(row.get(self.entity.0)) {
            Ok(Some(id)) => id,
            _ => {
                let h: Handle = ent.parse().map_err(|e: crate::domain::ParseError| {
                    reject(&self.entity.1, e.to_string())
                })?;
                *self.known.get(h.as_str()).ok_or_else(|| {
                    reject(
                        &self.entity.1,
                        format!(
                            "unknown channel {h}: import its observations first or use numeric ids"
                        ),
                    )
                })?
            }
        };
        let observed_at = parse::instant(row.get(self.time.0), &self.format, self.naive_tz)
            .map_err(|e| reject(&self.time.1, e))?
            .ok_or_else(|| reject(&self.time.1, "missing time"))?;
        let members = parse::count(row.get(self.value.0))
            .map_err(|e| reject(&self.value.1, e))?
            .ok_or_else(|| reject(&self.value.1, "missing value"))?;
        out.push(Record::Member(MemberSample {
            channel_id,
            observed_at,
            members,
            post_count: None,
        }));
        Ok(())
    }
}
