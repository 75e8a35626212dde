//! The writer task: batching, commit policy, channel names, daily refresh. The rows
//! themselves (samples, then mentions) are written by [`super::sink`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::merge::DailyPartials;
use super::refresher::Refresher;
use super::sink::{self, STAGING};
use super::{
    ChannelSeen, CommitPolicy, Error, MemberSample, Mention, Message, PostSample, Record, write_err,
};
use crate::config::IngestConfig;
use crate::db::{Db, Storage, TimeSpan};

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
    /// Stored readings replaced by a higher reading of the same key, or given the post count
    /// they lacked (see `sink`).
    pub samples_upgraded: u64,
    /// Mentions (forwards, @mentions, links to other channels) received from the source,
    /// repeats included. Not samples: [`IngestReport::duplicates`] and
    /// [`IngestReport::inserted`] leave them out.
    pub mentions_received: u64,
    /// Mentions that were new and inserted into `mentions` (repeats within the input, ones
    /// already stored, and ones naming no other channel are not).
    pub mentions_inserted: u64,
    /// Batches written.
    pub batches: u64,
    /// Plain PostgreSQL: daily rows (`members_daily`, `post_reach`) written by merging the
    /// partials of inserted samples rather than by a recompute from the samples.
    pub daily_rows_merged: u64,
    /// When the last batch was committed (per-batch policy) or written (atomic).
    pub last_write: Option<Instant>,
}

impl IngestReport {
    /// Samples received that were already stored (or repeated in the input); mentions are
    /// not counted.
    pub fn duplicates(&self) -> u64 {
        (self.member_samples_received - self.member_samples_inserted)
            + (self.post_samples_received - self.post_samples_inserted)
    }

    /// All samples inserted (member and post; not mentions).
    pub fn inserted(&self) -> u64 {
        self.member_samples_inserted + self.post_samples_inserted
    }
}

/// Handle of the running writer task; [`Writer::finish`] waits for it.
#[derive(Debug)]
pub struct Writer {
    handle: JoinHandle<Result<IngestReport, Error>>,
}

/// The receiving end of the queue, with the room its samples hold.
#[derive(Debug)]
pub(super) struct Queue {
    pub(super) rx: mpsc::Receiver<Message>,
    pub(super) room: Arc<Semaphore>,
    pub(super) capacity: usize,
}

impl Queue {
    /// Closes the queue and counts the samples still in it: accepted from a source, never
    /// stored.
    fn close_and_count(&mut self) -> u64 {
        // Sources waiting for room learn at once that the writer is gone.
        self.room.close();
        self.rx.close();
        let mut n = 0;
        while let Ok(m) = self.rx.try_recv() {
            if let Message::Records(records, _, _) = m {
                n += records.iter().filter(|r| r.is_sample()).count() as u64;
            }
        }
        n
    }
}

impl Writer {
    pub(super) fn spawn(
        db: Db,
        queue: Queue,
        policy: CommitPolicy,
        cfg: &IngestConfig,
        source: String,
        shutdown: CancellationToken,
    ) -> Self {
        let refresh_every = Duration::from_millis(cfg.daily_refresh_ms);
        let state = State {
            final_flush: Duration::from_secs(cfg.final_flush_secs),
            refresher: (policy == CommitPolicy::PerBatch && !refresh_every.is_zero())
                .then(|| Refresher::spawn(db.clone(), refresh_every)),
            db,
            policy,
            batch_size: cfg.batch_size.max(1),
            max_age: Duration::from_millis(cfg.batch_max_age_ms.max(1)),
            source,
            batch: Batch::default(),
            report: IngestReport::default(),
            members_span: None,
            posts_span: None,
            shutdown,
            final_deadline: None,
            partials: None,
        };
        Self {
            handle: tokio::spawn(state.run(queue)),
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

/// Samples and mentions of one source in a batch: they are stored with its name in the
/// `source` column.
#[derive(Debug, Default, Clone)]
struct Part {
    members: Vec<MemberSample>,
    posts: Vec<PostSample>,
    mentions: Vec<Mention>,
}

#[derive(Debug, Default)]
struct Batch {
    /// By source name (`botapi`, `tgstat`, `replay`, `import`, ...).
    parts: BTreeMap<Arc<str>, Part>,
    names: Names,
}

impl Batch {
    fn samples(&self) -> usize {
        let (members, posts) = self.counts();
        members + posts
    }

    /// (member samples, post samples).
    fn counts(&self) -> (usize, usize) {
        self.parts.values().fold((0, 0), |(m, p), part| {
            (m + part.members.len(), p + part.posts.len())
        })
    }

    /// Mentions held, repeats included.
    fn mentions(&self) -> usize {
        self.parts.values().map(|part| part.mentions.len()).sum()
    }

    /// Samples and mentions: what the batch size bounds (names are few and not counted).
    fn rows(&self) -> usize {
        self.samples() + self.mentions()
    }

    fn push(&mut self, r: Record, source: &Arc<str>) {
        match r {
            Record::Member(m) => self.part(source).members.push(m),
            Record::Post(p) => self.part(source).posts.push(p),
            Record::Channel(c) => self.note_channel(c),
            Record::Mention(m) => self.part(source).mentions.push(m),
        }
    }

    fn part(&mut self, source: &Arc<str>) -> &mut Part {
        self.parts.entry(Arc::clone(source)).or_default()
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
    /// Longest wait of a partial batch (per-batch policy).
    max_age: Duration,
    source: String,
    batch: Batch,
    report: IngestReport,
    members_span: Option<TimeSpan>,
    posts_span: Option<TimeSpan>,
    /// How long the last batch may keep retrying after every sender is gone.
    final_flush: Duration,
    /// Per-batch policy: refreshes the daily relations in a task of its own (`None`: inside
    /// every batch's transaction).
    refresher: Option<Refresher>,
    /// Cancelled when the service shuts down: a held batch then gets `final_flush` more.
    shutdown: CancellationToken,
    /// Set at the first retry after shutdown: when a held batch gives up.
    final_deadline: Option<Instant>,
    /// Atomic import on plain PostgreSQL: the `members_daily` partials of every member
    /// sample inserted so far, merged once before the commit.
    partials: Option<DailyPartials>,
}

/// Pending partials (channel-days and posts) past which an import merges them before its
/// end: about 100 bytes each in memory.
const MERGE_AT: usize = 200_000;

/// Merges the partials into the daily relations, timed like the refresh. Returns the daily
/// rows written.
async fn merge_partials(p: &mut DailyPartials, client: &Object) -> Result<u64, Error> {
    let started = Instant::now();
    let days = p.len();
    if days == 0 {
        return Ok(0);
    }
    let rows = p.merge(client).await?;
    metrics::histogram!("tgpulse_daily_refresh_seconds").record(started.elapsed());
    tracing::debug!(
        days,
        rows,
        ms = started.elapsed().as_millis() as u64,
        "merged the daily relations"
    );
    Ok(rows)
}

/// Longest pause between two attempts to write a held batch.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

fn widen(span: &mut Option<TimeSpan>, t: DateTime<Utc>) {
    *span = Some(match span.take() {
        None => TimeSpan { start: t, end: t },
        Some(s) => TimeSpan {
            start: s.start.min(t),
            end: s.end.max(t),
        },
    });
}

impl State {
    async fn run(mut self, mut queue: Queue) -> Result<IngestReport, Error> {
        if self.policy == CommitPolicy::Atomic {
            return self.run_atomic(queue).await;
        }
        let mut conn = None;
        let drained = self.drain(&mut conn, &mut queue).await;
        drop(conn);
        if let Some(r) = self.refresher.take() {
            let deadline = match &drained {
                // The database is away: no refresh can succeed, the next run catches up.
                Err(_) => Instant::now(),
                Ok(()) => self.flush_deadline(),
            };
            r.finish(tokio::time::Instant::from_std(deadline)).await;
        }
        drained.map_err(|e| match e {
            Error::Unwritten { samples, source } => Error::Unwritten {
                samples: samples + queue.close_and_count(),
                source,
            },
            e => e,
        })?;
        self.db
            .refresh_aggregates(self.members_span, self.posts_span)
            .await
            .map_err(Error::Refresh)?;
        Ok(self.report)
    }

    /// One transaction around the whole input: no retries, any failure rolls everything back.
    async fn run_atomic(mut self, mut queue: Queue) -> Result<IngestReport, Error> {
        self.partials = self.merged_partials();
        let client = self.connect().await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(write_err("begin the import"))?;
        let mut conn = Some(client);
        let result = async {
            self.drain(&mut conn, &mut queue).await?;
            let client = conn.as_ref().expect("atomic writers keep their connection");
            if let Some(p) = self.partials.as_mut() {
                self.report.daily_rows_merged += merge_partials(p, client).await?;
            }
            sink::refresh_daily(client).await?;
            client
                .batch_execute("COMMIT")
                .await
                .map_err(write_err("commit the import"))?;
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = result {
            // Never hand a connection with an open or aborted transaction back to the pool.
            if let Some(client) = conn.take()
                && client.batch_execute("ROLLBACK").await.is_err()
            {
                drop(Object::take(client));
            }
            return Err(e);
        }
        drop(conn);
        self.db
            .refresh_aggregates(self.members_span, self.posts_span)
            .await
            .map_err(Error::Refresh)?;
        Ok(self.report)
    }

    /// Empty `members_daily` partials on plain PostgreSQL (the writer merges what it
    /// inserts); `None` on TimescaleDB, whose continuous aggregate refreshes itself.
    fn merged_partials(&self) -> Option<DailyPartials> {
        (self.db.storage == Storage::Plain).then(|| DailyPartials::new(self.db.timezone))
    }

    async fn connect(&self) -> Result<Object, Error> {
        let client = self.db.pool.get().await?;
        client
            .batch_execute(STAGING)
            .await
            .map_err(write_err("create staging tables"))?;
        Ok(client)
    }

    /// When the last batch gives up: the shutdown deadline once shutdown is requested, else
    /// `final_flush` from now (every sender gone without a shutdown, e.g. `collect --once`).
    fn flush_deadline(&mut self) -> Instant {
        self.shutdown_deadline()
            .unwrap_or_else(|| Instant::now() + self.final_flush)
    }

    /// `final_flush` after the first time it is asked once shutdown was requested.
    fn shutdown_deadline(&mut self) -> Option<Instant> {
        if !self.shutdown.is_cancelled() {
            return None;
        }
        let final_flush = self.final_flush;
        Some(
            *self
                .final_deadline
                .get_or_insert_with(|| Instant::now() + final_flush),
        )
    }

    async fn drain(&mut self, conn: &mut Option<Object>, queue: &mut Queue) -> Result<(), Error> {
        let rx = &mut queue.rx;
        let mut oldest: Option<Instant> = None;
        loop {
            let age_deadline = oldest.map(|t| tokio::time::Instant::from_std(t + self.max_age));
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = async { tokio::time::sleep_until(age_deadline.expect("guarded")).await },
                    if age_deadline.is_some() && self.policy == CommitPolicy::PerBatch => {
                    self.flush(conn, None).await?;
                    oldest = None;
                    continue;
                }
            };
            match msg {
                Some(Message::Records(records, room, source)) => {
                    for r in records {
                        self.batch.push(r, &source);
                    }
                    // The records left the queue: give their room back to the sources.
                    drop(room);
                    metrics::gauge!("tgpulse_ingest_queue_depth").set(
                        queue
                            .capacity
                            .saturating_sub(queue.room.available_permits())
                            as f64,
                    );
                    oldest.get_or_insert_with(Instant::now);
                    if self.batch.rows() >= self.batch_size {
                        self.flush(conn, None).await?;
                        oldest = None;
                    }
                }
                Some(Message::Abort(reason)) => return Err(Error::Aborted(reason)),
                None => break,
            }
        }
        // Every sender is gone (shutdown): the last batch gets a bounded time to land.
        let deadline = self.flush_deadline();
        self.flush(conn, Some(deadline)).await
    }

    /// Writes the current batch. A per-batch writer also refreshes and commits it, and holds
    /// it through database outages: it retries on a new connection (exponential backoff with
    /// jitter, capped at [`MAX_RETRY_DELAY`]) until the write succeeds, or until `deadline`
    /// passes (or, once shutdown is requested, the shutdown deadline). While it waits, the
    /// bounded queue fills and the sources slow down. Past a deadline, even an attempt that
    /// hangs on the network is abandoned.
    async fn flush(
        &mut self,
        conn: &mut Option<Object>,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        if self.batch.rows() == 0 && self.batch.names.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        // Counted as received, before the sink de-duplicates.
        let received = batch.counts();
        let mentions_received = batch.mentions() as u64;
        for part in batch.parts.values() {
            for m in &part.members {
                widen(&mut self.members_span, m.observed_at);
            }
            for p in &part.posts {
                widen(&mut self.posts_span, p.published_at);
            }
        }
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        let mut failures = 0u32;
        let inserted = loop {
            let deadline = deadline.or_else(|| self.shutdown_deadline());
            let attempt_started = Instant::now();
            let attempt = if self.policy == CommitPolicy::PerBatch {
                let write = self.write_committed(conn, &batch);
                match deadline {
                    None => write.await,
                    Some(d) => tokio::time::timeout_at(tokio::time::Instant::from_std(d), write)
                        .await
                        .unwrap_or(Err(Error::Deadline)),
                }
            } else {
                // Never retried: the import's transaction owns the batch, no copy needed.
                let client = conn.as_ref().expect("atomic writers keep their connection");
                let Batch { parts, names } = &mut batch;
                let mut partials = self.partials.take();
                let mut written = self
                    .write_rows(client, parts, names, false, partials.as_mut())
                    .await;
                // Memory stays bounded: past MERGE_AT pending partials they are merged now,
                // inside the import's transaction (merging is incremental).
                if let (Ok(n), Some(p)) = (&mut written, partials.as_mut())
                    && p.len() >= MERGE_AT
                {
                    match merge_partials(p, client).await {
                        Ok(rows) => n.merged += rows,
                        Err(e) => written = Err(e),
                    }
                }
                self.partials = partials;
                written
            };
            match attempt {
                Ok(n) => {
                    metrics::histogram!("tgpulse_batch_commit_seconds")
                        .record(attempt_started.elapsed());
                    break n;
                }
                Err(e) if self.policy == CommitPolicy::PerBatch && e.is_transient() => {
                    if let Some(client) = conn.take() {
                        drop(Object::take(client));
                    }
                    if deadline.is_some_and(|d| Instant::now() + delay > d) {
                        return Err(Error::Unwritten {
                            samples: batch.samples() as u64,
                            source: Box::new(e),
                        });
                    }
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(source = %self.source, samples = batch.samples(), error = %crate::error_chain(&e),
                            "database unavailable; holding the batch and retrying");
                    }
                    let jitter = rand::random_range(0.5..1.0);
                    tokio::select! {
                        _ = tokio::time::sleep(delay.mul_f64(jitter)) => {}
                        // Shutdown while holding: retry at once, now under the shutdown deadline.
                        _ = self.shutdown.cancelled(), if deadline.is_none() => {}
                    }
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
                Err(e) => return Err(e),
            }
        };
        if failures > 0 {
            tracing::info!(source = %self.source, failures, waited_ms = started.elapsed().as_millis() as u64,
                "database back; the held batch is written");
        }
        if let Some(r) = &self.refresher {
            r.mark();
        }
        self.report.member_samples_received += received.0 as u64;
        self.report.post_samples_received += received.1 as u64;
        self.report.member_samples_inserted += inserted.members;
        self.report.post_samples_inserted += inserted.posts;
        self.report.samples_upgraded += inserted.upgraded;
        self.report.daily_rows_merged += inserted.merged;
        self.report.mentions_received += mentions_received;
        self.report.mentions_inserted += inserted.mentions;
        for (kind, received, inserted) in [
            ("member", received.0 as u64, inserted.members),
            ("post", received.1 as u64, inserted.posts),
        ] {
            metrics::counter!("tgpulse_samples_stored_total", "kind" => kind).increment(inserted);
            metrics::counter!("tgpulse_samples_duplicate_total", "kind" => kind)
                .increment(received.saturating_sub(inserted));
        }
        self.report.batches += 1;
        self.report.last_write = Some(Instant::now());
        tracing::debug!(
            members = received.0,
            posts = received.1,
            inserted_members = inserted.members,
            inserted_posts = inserted.posts,
            mentions = mentions_received,
            inserted_mentions = inserted.mentions,
            ms = started.elapsed().as_millis() as u64,
            "wrote a batch"
        );
        Ok(())
    }

    /// One attempt at writing and committing a batch in its own transaction.
    async fn write_committed(
        &self,
        conn: &mut Option<Object>,
        batch: &Batch,
    ) -> Result<sink::Inserted, Error> {
        if conn.is_none() {
            *conn = Some(self.connect().await?);
        }
        let client = conn.as_ref().expect("just connected");
        client
            .batch_execute("BEGIN")
            .await
            .map_err(write_err("begin a batch"))?;
        // The sink de-duplicates in place; a retry starts again from the batch as received.
        let mut parts = batch.parts.clone();
        let mut partials = self.merged_partials();
        let result = async {
            let mut n = self
                .write_rows(client, &mut parts, &batch.names, true, partials.as_mut())
                .await?;
            if let Some(p) = partials.as_mut() {
                n.merged = merge_partials(p, client).await?;
            }
            if self.refresher.is_none() {
                sink::refresh_daily(client).await?;
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(write_err("commit a batch"))?;
            Ok::<_, Error>(n)
        }
        .await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result
    }

    /// The batch's samples, each source's with its name, then its mentions (one statement for
    /// all sources), then the channel names, inside the caller's transaction.
    async fn write_rows(
        &self,
        client: &Object,
        parts: &mut BTreeMap<Arc<str>, Part>,
        names: &Names,
        optimistic: bool,
        mut partials: Option<&mut DailyPartials>,
    ) -> Result<sink::Inserted, Error> {
        let mut n = sink::Inserted::default();
        for (source, part) in parts.iter_mut() {
            if part.members.is_empty() && part.posts.is_empty() {
                // Only mentions from this source: no sample statements (and savepoints).
                continue;
            }
            let more = sink::write_batch(
                client,
                &mut part.members,
                &mut part.posts,
                source,
                optimistic,
                partials.as_deref_mut(),
            )
            .await?;
            n.members += more.members;
            n.posts += more.posts;
            n.upgraded += more.upgraded;
        }
        let mut mentions: Vec<(&str, &Mention)> = Vec::new();
        for (source, part) in parts.iter() {
            mentions.extend(part.mentions.iter().map(|m| (&**source, m)));
        }
        n.mentions = sink::write_mentions(client, mentions).await?;
        self.upsert_names(client, names).await?;
        Ok(n)
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
}
