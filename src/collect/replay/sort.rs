//! Sorting replayed records by event time in bounded memory: an external merge sort.
//!
//! Records are collected into runs of at most [`RUN_BYTES`]; each full run is sorted
//! (stably) and written to an anonymous temporary file. At the end the runs are merged with
//! a heap, ties going to the earlier run, so records of one instant keep file order exactly
//! as a stable in-memory sort would. A file that fits in one run is never written to disk.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use chrono::{DateTime, Utc};

use crate::domain::{ChannelId, Handle};
use crate::ingest::{ChannelSeen, MemberSample, Mention, MentionKind, PostSample, Record};

/// Approximate bytes of records held in memory before a run is spilled (32 MiB).
pub(crate) const RUN_BYTES: usize = 32 << 20;

/// Event time: `observed_at` for member samples, `published_at` for post samples and for
/// mentions (the time of the post that forwards, mentions or links), `seen_at` for names.
pub(crate) fn event_time(r: &Record) -> DateTime<Utc> {
    match r {
        Record::Member(m) => m.observed_at,
        Record::Post(p) => p.published_at,
        Record::Channel(c) => c.seen_at,
        Record::Mention(m) => m.published_at,
    }
}

fn approx_size(r: &Record) -> usize {
    std::mem::size_of::<Record>()
        + match r {
            Record::Channel(c) => {
                c.handle.as_ref().map_or(0, |h| h.as_str().len())
                    + c.title.as_ref().map_or(0, String::len)
            }
            Record::Mention(m) => m.source_name.as_ref().map_or(0, String::len),
            Record::Member(_) | Record::Post(_) => 0,
        }
}

/// Collects records, spilling sorted runs to temporary files.
#[derive(Debug)]
pub(crate) struct Sorter {
    run: Vec<Record>,
    run_bytes: usize,
    limit: usize,
    runs: Vec<File>,
}

impl Sorter {
    /// A sorter spilling a run once it holds about `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            run: Vec::new(),
            run_bytes: 0,
            limit,
            runs: Vec::new(),
        }
    }

    /// Adds a record.
    ///
    /// errors: a full run cannot be written to a temporary file.
    pub(crate) fn push(&mut self, r: Record) -> io::Result<()> {
        self.run_bytes += approx_size(&r);
        self.run.push(r);
        if self.run_bytes >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.run.sort_by_key(event_time);
        let mut w = BufWriter::new(tempfile::tempfile()?);
        for r in self.run.drain(..) {
            encode(&r, &mut w)?;
        }
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.run_bytes = 0;
        Ok(())
    }

    /// Number of runs written to disk so far.
    pub(crate) fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// All records in event-time order (stable).
    ///
    /// errors: the last run cannot be written.
    pub(crate) fn finish(mut self) -> io::Result<Merged> {
        if self.runs.is_empty() {
            self.run.sort_by_key(event_time);
            return Ok(Merged::Memory(std::mem::take(&mut self.run).into_iter()));
        }
        if !self.run.is_empty() {
            self.spill()?;
        }
        let mut readers: Vec<BufReader<File>> = self.runs.into_iter().map(BufReader::new).collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (i, rd) in readers.iter_mut().enumerate() {
            if let Some(rec) = decode(rd)? {
                heap.push(Head { run: i, rec });
            }
        }
        Ok(Merged::Runs { readers, heap })
    }
}

/// The next record of one run; the heap's smallest is the earliest, then the earliest run.
pub(crate) struct Head {
    run: usize,
    rec: Record,
}

impl Head {
    fn key(&self) -> (DateTime<Utc>, usize) {
        (event_time(&self.rec), self.run)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse for the smallest first.
        other.key().cmp(&self.key())
    }
}

/// The sorted records, from memory or merged from the runs on disk.
pub(crate) enum Merged {
    /// Everything fit in one run.
    Memory(std::vec::IntoIter<Record>),
    /// A k-way merge of spilled runs.
    Runs {
        readers: Vec<BufReader<File>>,
        heap: BinaryHeap<Head>,
    },
}

impl std::fmt::Debug for Merged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(it) => write!(f, "Merged::Memory({} left)", it.len()),
            Self::Runs { readers, .. } => write!(f, "Merged::Runs({} runs)", readers.len()),
        }
    }
}

impl Iterator for Merged {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Memory(it) => it.next().map(Ok),
            Self::Runs { readers, heap } => {
                let Head { run, rec } = heap.pop()?;
                match decode(&mut readers[run]) {
                    Ok(Some(next)) => heap.push(Head { run, rec: next }),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                Some(Ok(rec))
            }
        }
    }
}

// The run format: a tag byte, then fixed-width little-endian fields; times as seconds and
// nanoseconds (exact), options as a presence byte and the value, strings as u32 length and
// UTF-8 bytes. Tags: 0 member sample, 1 post sample, 2 channel name, 3 mention (its kind as
// one byte: 0 forward, 1 mention, 2 link). Runs live only as long as one replay, so the
// format carries no version.

fn put_i64(w: &mut impl Write, v: i64) -> io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn put_time(w: &mut impl Write, t: DateTime<Utc>) -> io::Result<()> {
    put_i64(w, t.timestamp())?;
    w.write_all(&t.timestamp_subsec_nanos().to_le_bytes())
}

fn put_opt(w: &mut impl Write, v: Option<i64>) -> io::Result<()> {
    match v {
        Some(v) => {
            w.write_all(&[1])?;
            put_i64(w, v)
        }
        None => w.write_all(&[0]),
    }
}

fn put_str(w: &mut impl Write, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => {
            let len = u32::try_from(s.len()).map_err(|_| bad("string too long"))?;
            w.write_all(&[1])?;
            w.write_all(&len.to_le_bytes())?;
            w.write_all(s.as_bytes())
        }
        None => w.write_all(&[0]),
    }
}

fn encode(r: &Record, w: &mut impl Write) -> io::Result<()> {
    match r {
        Record::Member(m) => {
            w.write_all(&[0])?;
            put_i64(w, m.channel_id.get())?;
            put_time(w, m.observed_at)?;
            put_i64(w, m.members)?;
            put_opt(w, m.post_count)
        }
        Record::Post(p) => {
            w.write_all(&[1])?;
            put_i64(w, p.channel_id.get())?;
            put_i64(w, p.post_id)?;
            put_time(w, p.published_at)?;
            put_time(w, p.observed_at)?;
            for v in [p.views, p.forwards, p.replies, p.reactions] {
                put_opt(w, v)?;
            }
            Ok(())
        }
        Record::Channel(c) => {
            w.write_all(&[2])?;
            put_i64(w, c.channel_id.get())?;
            put_time(w, c.seen_at)?;
            put_str(w, c.handle.as_ref().map(Handle::as_str))?;
            put_str(w, c.title.as_deref())
        }
        Record::Mention(m) => {
            w.write_all(&[3])?;
            put_i64(w, m.channel_id.get())?;
            put_i64(w, m.post_id)?;
            put_time(w, m.published_at)?;
            w.write_all(&[kind_tag(m.kind)])?;
            put_opt(w, m.source_channel_id.map(ChannelId::get))?;
            put_opt(w, m.source_post_id)?;
            put_str(w, m.source_name.as_deref())
        }
    }
}

fn kind_tag(k: MentionKind) -> u8 {
    match k {
        MentionKind::Forward => 0,
        MentionKind::Mention => 1,
        MentionKind::Link => 2,
    }
}

fn get_kind(r: &mut impl Read) -> io::Result<MentionKind> {
    match get::<1>(r)?[0] {
        0 => Ok(MentionKind::Forward),
        1 => Ok(MentionKind::Mention),
        2 => Ok(MentionKind::Link),
        _ => Err(bad("mention kind")),
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("replay sort run: {what}"),
    )
}

fn get<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn get_i64(r: &mut impl Read) -> io::Result<i64> {
    Ok(i64::from_le_bytes(get(r)?))
}

fn get_id(r: &mut impl Read) -> io::Result<ChannelId> {
    ChannelId::new(get_i64(r)?).map_err(|_| bad("channel id"))
}

fn get_time(r: &mut impl Read) -> io::Result<DateTime<Utc>> {
    let secs = get_i64(r)?;
    let nanos = u32::from_le_bytes(get(r)?);
    DateTime::from_timestamp(secs, nanos).ok_or_else(|| bad("time"))
}

fn get_opt(r: &mut impl Read) -> io::Result<Option<i64>> {
    match get::<1>(r)?[0] {
        0 => Ok(None),
        _ => get_i64(r).map(Some),
    }
}

fn get_opt_id(r: &mut impl Read) -> io::Result<Option<ChannelId>> {
    get_opt(r)?
        .map(|v| ChannelId::new(v).map_err(|_| bad("channel id")))
        .transpose()
}

fn get_str(r: &mut impl Read) -> io::Result<Option<String>> {
    if get::<1>(r)?[0] == 0 {
        return Ok(None);
    }
    let len = u32::from_le_bytes(get(r)?) as usize;
    let mut b = vec![0; len];
    r.read_exact(&mut b)?;
    String::from_utf8(b).map(Some).map_err(|_| bad("text"))
}

/// The next record of a run; `None` at its end.
fn decode(r: &mut impl Read) -> io::Result<Option<Record>> {
    let mut tag = [0u8; 1];
    if r.read(&mut tag)? == 0 {
        return Ok(None);
    }
    Ok(Some(match tag[0] {
        0 => Record::Member(MemberSample {
            channel_id: get_id(r)?,
            observed_at: get_time(r)?,
            members: get_i64(r)?,
            post_count: get_opt(r)?,
        }),
        1 => Record::Post(PostSample {
            channel_id: get_id(r)?,
            post_id: get_i64(r)?,
            published_at: get_time(r)?,
            observed_at: get_time(r)?,
            views: get_opt(r)?,
            forwards: get_opt(r)?,
            replies: get_opt(r)?,
            reactions: get_opt(r)?,
        }),
        2 => Record::Channel(ChannelSeen {
            channel_id: get_id(r)?,
            seen_at: get_time(r)?,
            handle: get_str(r)?
                .map(|h| h.parse::<Handle>().map_err(|_| bad("handle")))
                .transpose()?,
            title: get_str(r)?,
        }),
        3 => Record::Mention(Mention {
            channel_id: get_id(r)?,
            post_id: get_i64(r)?,
            published_at: get_time(r)?,
            kind: get_kind(r)?,
            source_channel_id: get_opt_id(r)?,
            source_post_id: get_opt(r)?,
            source_name: get_str(r)?,
        }),
        _ => return Err(bad("unknown tag")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: i64, secs: i64, members: i64) -> Record {
        Record::Member(MemberSample {
            channel_id: ChannelId::new(id).unwrap(),
            observed_at: DateTime::from_timestamp(secs, 123_456_789).unwrap(),
            members,
            // Every other sample carries a post count, so both encodings are exercised.
            post_count: (members % 2 == 0).then_some(members * 10),
        })
    }

    #[test]
    fn spilled_runs_merge_in_time_order_and_keep_file_order_within_an_instant() {
        // Tiny runs: every few records go to disk.
        let mut s = Sorter::new(std::mem::size_of::<Record>() * 3);
        let mut input = Vec::new();
        for i in 0..100i64 {
            // Times going back and forth, with many ties; `members` numbers the file order.
            input.push(member(1 + i % 3, (i * 7919) % 13, i));
        }
        input.push(Record::Channel(ChannelSeen {
            channel_id: ChannelId::new(5).unwrap(),
            handle: Some("birblife".parse().unwrap()),
            title: Some("Birb Life ✓".into()),
            seen_at: DateTime::from_timestamp(4, 1).unwrap(),
        }));
        input.push(Record::Post(PostSample {
            channel_id: ChannelId::new(5).unwrap(),
            post_id: 9,
            published_at: DateTime::from_timestamp(2, 0).unwrap(),
            observed_at: DateTime::from_timestamp(20, 0).unwrap(),
            views: Some(10),
            forwards: None,
            replies: Some(0),
            reactions: None,
        }));
        input.push(Record::Mention(Mention {
            channel_id: ChannelId::new(5).unwrap(),
            post_id: 9,
            published_at: DateTime::from_timestamp(3, 7).unwrap(),
            kind: MentionKind::Forward,
            source_channel_id: Some(ChannelId::new(1_505_034_921).unwrap()),
            source_post_id: None,
            source_name: Some("nightclubronin".into()),
        }));
        input.push(Record::Mention(Mention {
            channel_id: ChannelId::new(6).unwrap(),
            post_id: 10,
            published_at: DateTime::from_timestamp(11, 0).unwrap(),
            kind: MentionKind::Link,
            source_channel_id: None,
            source_post_id: Some(4061),
            source_name: Some("speckzo".into()),
        }));
        for r in input.clone() {
            s.push(r).unwrap();
        }
        assert!(s.spilled_runs() > 10);
        let merged: Vec<Record> = s.finish().unwrap().map(Result::unwrap).collect();
        let mut expected = input;
        expected.sort_by_key(event_time);
        assert_eq!(merged, expected);
    }
}
