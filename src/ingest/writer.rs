//! The writer task: batching, binary COPY into staging, idempotent merge, daily refresh.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use futures::pin_mut;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{ChannelSeen, CommitPolicy, Error, MemberSample, Message, PostSample, Record};
use crate::db::{Db, Storage, TimeSpan};

/// How long a partial batch may wait before a per-batch writer flushes it.
const MAX_BATCH_AGE: Duration = Duration::from_secs(1);

const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS stage_member_samples (
    channel_id bigint NOT NULL, observed_at timestamptz NOT NULL, members bigint NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stage_post_samples (
    channel_id bigint NOT NULL, post_id bigint NOT NULL, published_at timestamptz NOT NULL,
    observed_at timestamptz NOT NULL, views bigint, forwards bigint, replies bigint, reactions bigint);
TRUNCATE stage_member_samples, stage_post_samples;";

/// Counts of one pipeline run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Member samples received from the source.
    pub member_samples_received: u64,
    /// Member samples that were new and inserted.
    pub member_samples_inserted: u64,
    /// Post samples received from the source.
    pub post_samples_received: u64,
    /// Post samples that were new and inserted.
    pub post_samples_inserted: u64,
    /// Batches written.
    pub batches: u64,
}

impl IngestReport {
    /// Samples received that were already stored (or repeated in the input).
    pub fn duplicates(&self) -> u64 {
        (self.member_samples_received - self.member_samples_inserted)
            + (self.post_samples_received - self.post_samples_inserted)
    }

    /// All samples inserted.
    pub fn inserted(&self) -> u64 {
        self.member_samples_inserted + self.post_samples_inserted
    }
}

/// Handle of the running writer task; [`Writer::finish`] waits for it.
#[derive(Debug)]
pub struct Writer {
    handle: JoinHandle<Result<IngestReport, Error>>,
}

impl Writer {
    pub(super) fn spawn(
        db: Db,
        rx: mpsc::Receiver<Message>,
        policy: CommitPolicy,
        batch_size: usize,
        source: String,
    ) -> Self {
        let state = State {
            db,
            policy,
            batch_size,
            source,
            batch: Batch::default(),
            report: IngestReport::default(),
            members_span: None,
            posts_span: None,
        };
        Self {
            handle: tokio::spawn(state.run(rx)),
        }
    }

    /// Waits until every sender is dropped and the last batch is written (and, for an atomic
    /// import, committed).
    ///
    /// errors: the writer's own `Error`, or `Error::WriterTask` if it panicked.
    pub async fn finish(self) -> Result<IngestReport, Error> {
        self.handle.await.map_err(Error::WriterTask)?
    }
}

/// (channel id, handle or "", title or "") → (first seen, last seen).
type Names = HashMap<(i64, String, String), (DateTime<Utc>, DateTime<Utc>)>;

#[derive(Debug, Default)]
struct Batch {
    members: Vec<MemberSample>,
    posts: Vec<PostSample>,
    names: Names,
}

impl Batch {
    fn samples(&self) -> usize {
        self.members.len() + self.posts.len()
    }

    fn push(&mut self, r: Record) {
        match r {
            Record::Member(m) => self.members.push(m),
            Record::Post(p) => self.posts.push(p),
            Record::Channel(c) => self.note_channel(c),
        }
    }

    fn note_channel(&mut self, c: ChannelSeen) {
        let key = (
            c.channel_id.get(),
            c.handle.map(|h| h.as_str().to_owned()).unwrap_or_default(),
            c.title.unwrap_or_default(),
        );
        let e = self.names.entry(key).or_insert((c.seen_at, c.seen_at));
        e.0 = e.0.min(c.seen_at);
        e.1 = e.1.max(c.seen_at);
    }
}

#[derive(Debug)]
struct State {
    db: Db,
    policy: CommitPolicy,
    batch_size: usize,
    source: String,
    batch: Batch,
    report: IngestReport,
    members_span: Option<TimeSpan>,
    posts_span: Option<TimeSpan>,
}

fn widen(span: &mut Option<TimeSpan>, t: DateTime<Utc>) {
    *span = Some(match span.take() {
        None => TimeSpan { start: t, end: t },
        Some(s) => TimeSpan {
            start: s.start.min(t),
            end: s.end.max(t),
        },
    });
}

fn write_err(step: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Write { step, source }
}

impl State {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) -> Result<IngestReport, Error> {
        let client = self.db.pool.get().await?;
        client
            .batch_execute(STAGING)
            .await
            .map_err(write_err("create staging tables"))?;
        if self.policy == CommitPolicy::Atomic {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(write_err("begin the import"))?;
        }
        let result = self.drain(&client, &mut rx).await;
        match result {
            Ok(()) => {
                if self.policy == CommitPolicy::Atomic {
                    self.merge(&client).await?;
                    client
                        .batch_execute("COMMIT")
                        .await
                        .map_err(write_err("commit the import"))?;
                }
                drop(client);
                if self.db.storage == Storage::Timescale {
                    self.db
                        .refresh_daily(self.members_span, self.posts_span)
                        .await
                        .map_err(|e| Error::Aborted(format!("{e:#}")))?;
                }
                Ok(self.report)
            }
            Err(e) => {
                // Best effort: the connection is discarded if this fails too.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn drain(
        &mut self,
        client: &Object,
        rx: &mut mpsc::Receiver<Message>,
    ) -> Result<(), Error> {
        let mut oldest: Option<Instant> = None;
        loop {
            let age_deadline = oldest.map(|t| tokio::time::Instant::from_std(t + MAX_BATCH_AGE));
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = async { tokio::time::sleep_until(age_deadline.expect("guarded")).await },
                    if age_deadline.is_some() && self.policy == CommitPolicy::PerBatch => {
                    self.flush(client).await?;
                    oldest = None;
                    continue;
                }
            };
            match msg {
                Some(Message::Records(records)) => {
                    for r in records {
                        self.batch.push(r);
                    }
                    oldest.get_or_insert_with(Instant::now);
                    if self.batch.samples() >= self.batch_size {
                        self.flush(client).await?;
                        oldest = None;
                    }
                }
                Some(Message::Abort(reason)) => return Err(Error::Aborted(reason)),
                None => break,
            }
        }
        self.flush(client).await
    }

    /// Writes the current batch into staging; a per-batch writer also merges and commits it.
    async fn flush(&mut self, client: &Object) -> Result<(), Error> {
        if self.batch.samples() == 0 && self.batch.names.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let per_batch = self.policy == CommitPolicy::PerBatch;
        if per_batch {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(write_err("begin a batch"))?;
        }
        let result = async {
            self.copy_members(client, &batch.members).await?;
            self.copy_posts(client, &batch.posts).await?;
            self.upsert_names(client, &batch.names).await?;
            if per_batch {
                self.merge(client).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        if per_batch {
            match result {
                Ok(()) => client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(write_err("commit a batch"))?,
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(e);
                }
            }
        } else {
            result?;
        }
        self.report.batches += 1;
        Ok(())
    }

    async fn copy_members(&mut self, client: &Object, rows: &[MemberSample]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let sink = client
            .copy_in("COPY stage_member_samples (channel_id, observed_at, members) FROM STDIN (FORMAT binary)")
            .await
            .map_err(write_err("start COPY into stage_member_samples"))?;
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TIMESTAMPTZ, Type::INT8]);
        pin_mut!(writer);
        for m in rows {
            let id = m.channel_id.get();
            widen(&mut self.members_span, m.observed_at);
            writer
                .as_mut()
                .write(&[&id as &(dyn ToSql + Sync), &m.observed_at, &m.members])
                .await
                .map_err(write_err("copy member samples"))?;
        }
        writer
            .finish()
            .await
            .map_err(write_err("finish COPY of member samples"))?;
        self.report.member_samples_received += rows.len() as u64;
        Ok(())
    }

    async fn copy_posts(&mut self, client: &Object, rows: &[PostSample]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let sink = client
            .copy_in(
                "COPY stage_post_samples (channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions) \
                 FROM STDIN (FORMAT binary)",
            )
            .await
            .map_err(write_err("start COPY into stage_post_samples"))?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for p in rows {
            let id = p.channel_id.get();
            widen(&mut self.posts_span, p.published_at);
            writer
                .as_mut()
                .write(&[
                    &id as &(dyn ToSql + Sync),
                    &p.post_id,
                    &p.published_at,
                    &p.observed_at,
                    &p.views,
                    &p.forwards,
                    &p.replies,
                    &p.reactions,
                ])
                .await
                .map_err(write_err("copy post samples"))?;
        }
        writer
            .finish()
            .await
            .map_err(write_err("finish COPY of post samples"))?;
        self.report.post_samples_received += rows.len() as u64;
        Ok(())
    }

    async fn upsert_names(&self, client: &Object, names: &Names) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(names.len());
        let mut handles = Vec::with_capacity(names.len());
        let mut titles = Vec::with_capacity(names.len());
        let mut firsts = Vec::with_capacity(names.len());
        let mut lasts = Vec::with_capacity(names.len());
        for ((id, handle, title), (first, last)) in names {
            ids.push(*id);
            handles.push(handle.as_str());
            titles.push(title.as_str());
            firsts.push(*first);
            lasts.push(*last);
        }
        client
            .execute(
                "INSERT INTO channels (channel_id) SELECT DISTINCT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
                &[&ids],
            )
            .await
            .map_err(write_err("insert channels"))?;
        client
            .execute(
                "INSERT INTO channel_names AS n (channel_id, handle, title, first_seen, last_seen)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
                 ON CONFLICT (channel_id, handle, title) DO UPDATE
                 SET first_seen = least(n.first_seen, EXCLUDED.first_seen),
                     last_seen = greatest(n.last_seen, EXCLUDED.last_seen)",
                &[&ids, &handles, &titles, &firsts, &lasts],
            )
            .await
            .map_err(write_err("record channel names"))?;
        client
            .execute(
                "UPDATE channels c SET
                   handle = (SELECT n.handle FROM channel_names n WHERE n.channel_id = c.channel_id AND n.handle <> ''
                             ORDER BY n.last_seen DESC LIMIT 1),
                   title = (SELECT n.title FROM channel_names n WHERE n.channel_id = c.channel_id AND n.title <> ''
                            ORDER BY n.last_seen DESC LIMIT 1)
                 WHERE c.channel_id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(write_err("update current channel names"))?;
        Ok(())
    }

    /// Moves staged samples into the sample tables, skipping what is already stored, then
    /// refreshes the plain-PostgreSQL daily relations in the same transaction.
    async fn merge(&mut self, client: &Object) -> Result<(), Error> {
        let source = &self.source;
        client
            .batch_execute(
                "INSERT INTO channels (channel_id)
                 SELECT DISTINCT channel_id FROM stage_member_samples
                 UNION SELECT DISTINCT channel_id FROM stage_post_samples
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(write_err("insert channels of staged samples"))?;
        // Two readings of one sample key keep the highest count: counters only grow, so the
        // larger one is the later reading.
        let members = client
            .execute(
                "INSERT INTO member_samples (channel_id, observed_at, members, source)
                 SELECT DISTINCT ON (channel_id, observed_at) channel_id, observed_at, members, $1
                 FROM stage_member_samples
                 ORDER BY channel_id, observed_at, members DESC
                 ON CONFLICT DO NOTHING",
                &[source],
            )
            .await
            .map_err(write_err("merge member samples"))?;
        client
            .batch_execute(
                "INSERT INTO posts (channel_id, post_id, published_at)
                 SELECT DISTINCT ON (channel_id, post_id) channel_id, post_id, published_at
                 FROM stage_post_samples ORDER BY channel_id, post_id, observed_at
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(write_err("merge posts"))?;
        let posts = client
            .execute(
                "INSERT INTO post_samples (channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, source)
                 SELECT DISTINCT ON (channel_id, post_id, published_at, observed_at)
                        channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, $1
                 FROM stage_post_samples
                 ORDER BY channel_id, post_id, published_at, observed_at, views DESC NULLS LAST
                 ON CONFLICT DO NOTHING",
                &[source],
            )
            .await
            .map_err(write_err("merge post samples"))?;
        client
            .batch_execute("TRUNCATE stage_member_samples, stage_post_samples")
            .await
            .map_err(write_err("empty staging tables"))?;
        if self.db.storage == Storage::Plain {
            client
                .execute("SELECT tgpulse_refresh_daily()", &[])
                .await
                .map_err(write_err("refresh the daily relations"))?;
        }
        self.report.member_samples_inserted += members;
        self.report.post_samples_inserted += posts;
        Ok(())
    }
}
