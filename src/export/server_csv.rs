//! CSV of a stored relation formatted by PostgreSQL itself: `COPY (SELECT …) TO STDOUT
//! (FORMAT csv, HEADER)`, its bytes streamed straight into the [`Sink`]. Nothing is decoded
//! into Arrow and encoded again, which is what made a client-side CSV export slower than
//! `psql \copy`.
//!
//! COPY takes no bind parameters, so the request's channel and window travel as
//! transaction-local settings (`set_config('tgpulse.export_…', $1, true)`, themselves bound)
//! that the query reads back with `current_setting(…)`: no value is formatted into SQL, and
//! PostgreSQL still uses the indexes (`current_setting` is stable, evaluated once).
//!
//! Timestamps are written as PostgreSQL writes `timestamptz` with `TimeZone = 'UTC'` and
//! `DateStyle = 'ISO'`: `2021-07-14 10:00:00+00`, with fractional seconds only when there are
//! some (`10:00:00.25+00`). The client-side CSV writer uses the same form.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc::{Receiver, channel};

use super::sink::Sink;
use super::{Destination, Error, ExportRequest, ExportSummary, Stop, check_free, open_sink};
use crate::query::{Engine, RelationDef};

/// Bytes of CSV handed to the writer thread at a time.
const HAND_OFF_BYTES: usize = 256 * 1024;

/// What the reader hands the writer: chunks of CSV, then the end with the record count.
/// A hand-off that closes without `Done` means the export stopped early.
enum Chunk {
    Data(Bytes),
    Done(u64),
}

/// The COPY statement of a request, and the settings to set first (name, value as text).
fn copy_sql(req: &ExportRequest) -> (String, Vec<(&'static str, String)>) {
    let def: &RelationDef = req.relation;
    let cols = def
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.0))
        .collect::<Vec<_>>()
        .join(", ");
    let time = def.time_column;
    let mut clauses = Vec::new();
    let mut settings = Vec::new();
    if let Some(id) = req.channel {
        clauses.push("channel_id = current_setting('tgpulse.export_channel')::bigint".to_owned());
        settings.push(("tgpulse.export_channel", id.get().to_string()));
    }
    if let Some(from) = req.from {
        clauses.push(format!(
            "\"{time}\" >= current_setting('tgpulse.export_from')::timestamptz"
        ));
        settings.push(("tgpulse.export_from", from.to_rfc3339()));
    }
    if let Some(to) = req.to {
        clauses.push(format!(
            "\"{time}\" < current_setting('tgpulse.export_to')::timestamptz"
        ));
        settings.push(("tgpulse.export_to", to.to_rfc3339()));
    }
    let mut select = format!("SELECT {cols} FROM \"{}\"", def.name);
    if !clauses.is_empty() {
        select.push_str(" WHERE ");
        select.push_str(&clauses.join(" AND "));
    }
    (
        format!("COPY ({select}) TO STDOUT (FORMAT csv, HEADER)"),
        settings,
    )
}

/// Counts the records that end in `chunk`: line feeds outside quoted fields. `quoted`
/// carries the state across chunks (a doubled quote inside a field toggles it twice).
fn count_records(chunk: &[u8], quoted: &mut bool) -> u64 {
    let mut n = 0;
    for i in memchr::memchr2_iter(b'"', b'\n', chunk) {
        if chunk[i] == b'"' {
            *quoted = !*quoted;
        } else if !*quoted {
            n += 1;
        }
    }
    n
}

/// Streams the request's rows as CSV formatted by PostgreSQL to `dest`. Same contract as
/// [`super::export_until`]: nothing is put in place unless every row arrived.
///
/// errors: as [`super::export`]; a failed COPY is `Error::Db`.
pub(super) async fn export(
    engine: &Engine,
    req: &ExportRequest,
    dest: &Destination,
    progress: &(dyn Fn(u64) + Sync),
    stop: Stop<'_>,
) -> Result<ExportSummary, Error> {
    check_free(dest).await?;
    let (sql, settings) = copy_sql(req);
    let mut conn = Unfinished(Some(engine.db().pool.get().await?));
    let client = conn.0.as_ref().expect("just taken");
    let (tx, rx) = channel::<Chunk>(16);
    let dest2 = dest.clone();
    let rt = tokio::runtime::Handle::current();
    let writer = tokio::task::spawn_blocking(move || write_chunks(open_sink(&dest2, rt)?, rx));
    let read = async {
        let db = |step| move |source| Error::Db { step, source };
        client
            .batch_execute(
                "BEGIN READ ONLY; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'",
            )
            .await
            .map_err(db("start the CSV export"))?;
        for (name, value) in &settings {
            client
                .execute("SELECT set_config($1, $2, true)", &[name, value])
                .await
                .map_err(db("set the export's filters"))?;
        }
        let stream = client
            .copy_out(sql.as_str())
            .await
            .map_err(db("start COPY of the CSV export"))?;
        futures::pin_mut!(stream);
        // Records end at line feeds outside quotes; the first one is the header.
        let (mut ends, mut quoted) = (0u64, false);
        // PostgreSQL sends one message per row: they are gathered into blocks of
        // HAND_OFF_BYTES before going to the writer thread.
        let mut block = bytes::BytesMut::with_capacity(HAND_OFF_BYTES);
        loop {
            let chunk = tokio::select! {
                biased;
                () = &mut *stop => return Ok(None),
                c = stream.next() => c,
            };
            let last = chunk.is_none();
            if let Some(chunk) = chunk {
                let chunk = chunk.map_err(db("read the CSV export"))?;
                ends += count_records(&chunk, &mut quoted);
                block.extend_from_slice(&chunk);
            }
            if block.len() >= HAND_OFF_BYTES || (last && !block.is_empty()) {
                progress(ends.saturating_sub(1));
                let full = block.split().freeze();
                if tx.send(Chunk::Data(full)).await.is_err() {
                    return Ok(None); // the writer failed; its error is the export's
                }
                block.reserve(HAND_OFF_BYTES);
            }
            if last {
                break;
            }
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(db("end the CSV export"))?;
        Ok::<_, Error>(Some(ends.saturating_sub(1)))
    };
    let outcome = read.await;
    let failed = match outcome {
        Ok(Some(rows)) => {
            let _ = tx.send(Chunk::Done(rows)).await;
            conn.finished();
            None
        }
        Ok(None) => Some(Error::Incomplete),
        Err(e) => Some(e),
    };
    drop(conn);
    drop(tx);
    let written = writer.await.map_err(Error::WriterTask)?;
    if let Some(e) = failed {
        // The writer saw the hand-off close without its end and left nothing in place; an
        // error of the writer's own (the disk, the store) is the cause to report.
        return Err(match written {
            Err(w) if !matches!(w, Error::Incomplete) => w,
            _ => e,
        });
    }
    let (rows, bytes) = written?;
    super::count_metrics(req, rows, bytes);
    Ok(ExportSummary::of(dest, rows, 1, bytes))
}

/// The export's connection. It goes back to the pool only after its transaction ended;
/// dropped earlier (a failure, a stop, the export future dropped half-way) it is closed,
/// since it may be inside an unfinished COPY or transaction.
struct Unfinished(Option<deadpool_postgres::Object>);

impl Unfinished {
    fn finished(&mut self) {
        drop(self.0.take());
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            drop(deadpool_postgres::Object::take(c));
        }
    }
}

/// Writes every chunk into the sink, then puts it in place. Returns the records (without
/// the header) and the bytes.
fn write_chunks(mut sink: Sink, mut rx: Receiver<Chunk>) -> Result<(u64, u64), Error> {
    use std::io::Write;
    let store_failed = sink.store_failed();
    // A failed write of an object sink is the store's failure, as for the other encoders.
    let failed = |e: std::io::Error| {
        let e = if super::encode::caused_by_store(&e) {
            Error::Store(Box::new(e))
        } else {
            Error::Io("the CSV export".into(), e)
        };
        super::encode::store_or(e, store_failed.as_deref())
    };
    loop {
        match rx.blocking_recv() {
            Some(Chunk::Data(b)) => sink.write_all(&b).map_err(failed)?,
            Some(Chunk::Done(rows)) => {
                let bytes = sink
                    .finish()
                    .map_err(|e| super::encode::store_or(e, store_failed.as_deref()))?;
                return Ok((rows, bytes));
            }
            None => return Err(Error::Incomplete),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_line_feeds_outside_quotes_across_chunks() {
        let mut q = false;
        let a = b"channel_id,title\n1,\"two\nlines\"\n2,\"say \"\"hi";
        let b = b"\"\"\"\n3,plain\n";
        assert_eq!(count_records(a, &mut q), 2);
        assert!(q, "the chunk ends inside a quoted field");
        assert_eq!(count_records(b, &mut q), 2);
        assert!(!q);
    }

    #[test]
    fn filters_travel_as_settings_not_as_sql() {
        let req = ExportRequest {
            relation: crate::query::relation("post_samples").unwrap(),
            channel: Some(crate::domain::ChannelId::new(42).unwrap()),
            from: Some(chrono::DateTime::from_timestamp(1_600_000_000, 0).unwrap()),
            to: None,
            format: super::super::ExportFormat::Csv,
        };
        let (sql, settings) = copy_sql(&req);
        assert!(
            sql.starts_with("COPY (SELECT \"channel_id\", \"post_id\""),
            "{sql}"
        );
        assert!(sql.ends_with("TO STDOUT (FORMAT csv, HEADER)"), "{sql}");
        assert!(!sql.contains("42") && !sql.contains("2020"), "{sql}");
        assert_eq!(
            settings,
            vec![
                ("tgpulse.export_channel", "42".to_owned()),
                (
                    "tgpulse.export_from",
                    "2020-09-13T12:26:40+00:00".to_owned()
                )
            ]
        );
    }
}
