//! Rows without a `channel_id`, kept in an anonymous temporary file until the end of the
//! file resolves their handles.

use chrono::DateTime;

use super::Animals;
use crate::domain::{ChannelId, Handle};
use crate::import::RowPos;
use crate::ingest::MemberSample;

/// A row without channel id, waiting for its handle to be resolved.
pub(super) struct Deferred {
    pub(super) pos: RowPos,
    pub(super) handle: Handle,
    pub(super) sample: MemberSample,
    pub(super) title: Option<String>,
    pub(super) raw: Vec<String>,
}

impl Deferred {
    /// As a CSV record of the spill file: position kind and number, handle, observed_at
    /// (Unix microseconds), members, post count (empty when unknown), title flag, title, the
    /// raw cells.
    pub(super) fn write(&self, w: &mut csv::Writer<impl std::io::Write>) -> csv::Result<()> {
        let (kind, n) = match self.pos {
            RowPos::Line(n) => ("L", n),
            RowPos::Row(n) => ("R", n),
        };
        let mut rec = vec![
            kind.to_owned(),
            n.to_string(),
            self.handle.as_str().to_owned(),
            self.sample.observed_at.timestamp_micros().to_string(),
            self.sample.members.to_string(),
            self.sample
                .post_count
                .map(|count| count.to_string())
                .unwrap_or_default(),
            if self.title.is_some() { "1" } else { "0" }.to_owned(),
            self.title.clone().unwrap_or_default(),
        ];
        rec.extend(self.raw.iter().cloned());
        w.write_record(&rec)
    }

    /// Back from a spill file record; `None` if it is not one.
    pub(super) fn read(r: &csv::StringRecord) -> Option<Self> {
        let n: u64 = r.get(1)?.parse().ok()?;
        let pos = match r.get(0)? {
            "L" => RowPos::Line(n),
            _ => RowPos::Row(n),
        };
        Some(Self {
            pos,
            handle: r.get(2)?.parse().ok()?,
            sample: MemberSample {
                channel_id: ChannelId::new(1).ok()?,
                observed_at: DateTime::from_timestamp_micros(r.get(3)?.parse().ok()?)?,
                members: r.get(4)?.parse().ok()?,
                post_count: match r.get(5)? {
                    "" => None,
                    count => Some(count.parse().ok()?),
                },
            },
            title: (r.get(6)? == "1").then(|| r.get(7).unwrap_or_default().to_owned()),
            raw: r.iter().skip(8).map(str::to_owned).collect(),
        })
    }
}

pub(super) fn corrupt_spill() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the temporary file of rows without channel_id reads back malformed",
    )
}

impl Animals {
    /// Appends a row without channel id to the spill file, creating it on first use.
    pub(super) fn spill(&mut self, d: &Deferred) -> std::io::Result<()> {
        if self.deferred.is_none() {
            self.deferred = Some(
                csv::WriterBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_writer(std::io::BufWriter::new(tempfile::tempfile()?)),
            );
        }
        let w = self.deferred.as_mut().expect("just set");
        d.write(w).map_err(|e| std::io::Error::other(e.to_string()))
    }
}
