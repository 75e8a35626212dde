//! Writing one batch of samples into the sample tables, idempotently.
//!
//! Fast path: de-duplicate the batch in memory, ask PostgreSQL which keys already exist
//! (one indexed join against the batch's keys), and binary-COPY only the new rows straight
//! into `member_samples`, `posts` and `post_samples`. COPY uses PostgreSQL's multi-row insert
//! and is about twice as fast as `INSERT .. SELECT`.
//!
//! Fallback, under a savepoint: if a concurrent writer inserted one of the keys between the
//! check and the COPY (unique violation), the batch goes through staging tables and
//! `INSERT .. ON CONFLICT DO NOTHING` instead. Either way re-sending a batch adds 0 rows.
//!
//! Mentions (forwards, @mentions, links between channels) follow the samples in the same
//! transaction, one `INSERT .. SELECT FROM unnest(..) ON CONFLICT DO NOTHING` per batch.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::merge::{DailyPartials, set_merged};
use super::{Error, MemberSample, PostSample, write_err};

mod mentions;

pub(super) use mentions::write_mentions;

/// Temp staging tables for the fallback path, created once per writer connection.
pub(super) const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS stage_member_samples (
    channel_id bigint NOT NULL, observed_at timestamptz NOT NULL, members bigint NOT NULL,
    post_count bigint, source text NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stage_post_samples (
    channel_id bigint NOT NULL, post_id bigint NOT NULL, published_at timestamptz NOT NULL,
    observed_at timestamptz NOT NULL, views bigint, forwards bigint, replies bigint, reactions bigint,
    source text NOT NULL);
TRUNCATE stage_member_samples, stage_post_samples;";

/// Column types of [`copy_member_rows`]: channel_id, observed_at, members, post_count, source.
const MEMBER_TYPES: [Type; 5] = [
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
];
const POST_TYPES: [Type; 9] = [
    Type::INT8,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
];

/// Binary-COPYs member samples into `table` (`member_samples` or its staging twin), with
/// their post counts (NULL where the source gave none). Returns the rows copied.
async fn copy_member_rows<'a>(
    client: &Object,
    table: &'static str,
    rows: impl IntoIterator<Item = &'a MemberSample>,
    source: &str,
) -> Result<u64, Error> {
    let sql = format!(
        "COPY {table} (channel_id, observed_at, members, post_count, source) \
         FROM STDIN (FORMAT binary)"
    );
    let sink = client
        .copy_in(sql.as_str())
        .await
        .map_err(write_err("start COPY of member samples"))?;
    let writer = BinaryCopyInWriter::new(sink, &MEMBER_TYPES);
    pin_mut!(writer);
    for m in rows {
        let id = m.channel_id.get();
        writer
            .as_mut()
            .write(&[
                &id as &(dyn ToSql + Sync),
                &m.observed_at,
                &m.members,
                &m.post_count,
                &source,
            ])
            .await
            .map_err(write_err("copy member samples"))?;
    }
    writer
        .finish()
        .await
        .map_err(write_err("finish COPY of member samples"))
}

/// Binary-COPYs post samples into `table` (`post_samples` or its staging twin).
async fn copy_post_rows<'a>(
    client: &Object,
    table: &'static str,
    rows: impl IntoIterator<Item = &'a PostSample>,
    source: &str,
) -> Result<u64, Error> {
    let sql = format!(
        "COPY {table} (channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, source) \
         FROM STDIN (FORMAT binary)"
    );
    let sink = client
        .copy_in(sql.as_str())
        .await
        .map_err(write_err("start COPY of post samples"))?;
    let writer = BinaryCopyInWriter::new(sink, &POST_TYPES);
    pin_mut!(writer);
    for p in rows {
        let id = p.channel_id.get();
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
                &source,
            ])
            .await
            .map_err(write_err("copy post samples"))?;
    }
    writer
        .finish()
        .await
        .map_err(write_err("finish COPY of post samples"))
}

/// Rows inserted by one batch.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Inserted {
    pub(super) members: u64,
    pub(super) posts: u64,
    /// Stored readings replaced by a higher reading of the same key, or given the post count
    /// they lacked (see [`upgrade_members`]).
    pub(super) upgraded: u64,
    /// New rows of `mentions` (see [`write_mentions`]).
    pub(super) mentions: u64,
    /// Daily rows written by merging partials (set by the writer).
    pub(super) merged: u64,
}

/// Writes a batch; the caller owns the surrounding transaction.
///
/// errors: `Error::Write` naming the failed step.
///
/// `optimistic` (live collection, whose keys are new by construction): COPY everything at once
/// without looking up stored rows; only if a key turns out to be stored already (a replay)
/// does the batch go the careful way below. Looking up stored post samples by publication
/// range would re-read every earlier reading of the re-sampled posts on each batch.
///
/// `partials` (plain PostgreSQL): the member samples inserted by COPY are added to them
/// for [`DailyPartials::merge`] instead of being logged for a recompute; `None` logs them.
pub(super) async fn write_batch(
    client: &Object,
    members: &mut Vec<MemberSample>,
    posts: &mut Vec<PostSample>,
    source: &str,
    optimistic: bool,
    partials: Option<&mut DailyPartials>,
) -> Result<Inserted, Error> {
    dedupe_members(members);
    dedupe_posts(posts);
    // Each attempt collects its own partials: a rolled-back attempt's rows were not inserted.
    let mut attempt_partials = partials.as_deref().map(DailyPartials::empty_like);
    if optimistic {
        let attempt = optimistic_path(client, members, posts, source, attempt_partials.as_mut());
        if let Some(n) = under_savepoint(client, "tgpulse_optimistic", attempt).await? {
            absorb(partials, attempt_partials);
            return Ok(n);
        }
        tracing::debug!("some keys are stored already; checking the batch against them");
        attempt_partials = partials.as_deref().map(DailyPartials::empty_like);
    }
    let attempt = fast_path(client, members, posts, source, attempt_partials.as_mut());
    match under_savepoint(client, "tgpulse_fast", attempt).await? {
        Some(n) => {
            absorb(partials, attempt_partials);
            Ok(n)
        }
        None => {
            tracing::debug!("concurrent writer inserted some keys; merging through staging");
            merge_via_staging(client, members, posts, source).await
        }
    }
}

/// Samples per daily row from which merging their partials beats recomputing the rows from
/// the samples. Measured on this project's machine: an upsert of a partial costs about 4.8 µs,
/// a recomputed row about 2.9 µs plus the reading of its samples; for a file of one reading
/// per channel and day (the animals file) merging made the import 1.5 times slower.
const MERGE_DENSITY: usize = 2;

/// Whether `rows` samples falling into `partials` daily rows are worth merging (otherwise
/// they are logged and recomputed).
fn dense(rows: usize, partials: usize) -> bool {
    rows >= MERGE_DENSITY * partials.max(1)
}

fn absorb(into: Option<&mut DailyPartials>, attempt: Option<DailyPartials>) {
    if let (Some(into), Some(attempt)) = (into, attempt) {
        into.absorb(attempt);
    }
}

/// COPYs fresh member rows; with `partials`, under `tgpulse.members_merged` (not logged for a
/// recompute) and added to the partials.
/// (A failed attempt's partials are dropped with it.)
async fn copy_fresh_members(
    client: &Object,
    rows: Vec<&MemberSample>,
    source: &str,
    partials: Option<&mut DailyPartials>,
) -> Result<u64, Error> {
    let mut batch = partials.as_ref().map(|p| p.empty_like());
    if let Some(b) = batch.as_mut() {
        b.add_members(rows.iter().copied());
    }
    let (Some(partials), Some(batch)) = (partials, batch.filter(|b| dense(rows.len(), b.len())))
    else {
        return copy_member_rows(client, "member_samples", rows, source).await;
    };
    set_merged(client, "members", true).await?;
    let n = copy_member_rows(client, "member_samples", rows, source).await?;
    set_merged(client, "members", false).await?;
    partials.absorb(batch);
    Ok(n)
}

/// COPYs fresh post samples into `post_samples`; with `partials`, under
/// `tgpulse.posts_merged` (not logged for a recompute) and added to the partials.
async fn copy_fresh_posts(
    client: &Object,
    rows: Vec<&PostSample>,
    source: &str,
    partials: Option<&mut DailyPartials>,
) -> Result<u64, Error> {
    let mut batch = partials.as_ref().map(|p| p.empty_like());
    if let Some(b) = batch.as_mut() {
        b.add_posts(rows.iter().copied());
    }
    let (Some(partials), Some(batch)) = (partials, batch.filter(|b| dense(rows.len(), b.len())))
    else {
        return copy_post_rows(client, "post_samples", rows, source).await;
    };
    set_merged(client, "posts", true).await?;
    let n = copy_post_rows(client, "post_samples", rows, source).await?;
    set_merged(client, "posts", false).await?;
    partials.absorb(batch);
    Ok(n)
}

/// Runs `attempt` under the savepoint `name`. A unique violation rolls back to the savepoint
/// and gives `Ok(None)`, so the caller can take a more careful path in the same transaction.
///
/// errors: any other error of `attempt`, or of the savepoint commands.
async fn under_savepoint(
    client: &Object,
    name: &str,
    attempt: impl Future<Output = Result<Inserted, Error>>,
) -> Result<Option<Inserted>, Error> {
    client
        .batch_execute(&format!("SAVEPOINT {name}"))
        .await
        .map_err(write_err("set a savepoint"))?;
    match attempt.await {
        Ok(n) => {
            client
                .batch_execute(&format!("RELEASE SAVEPOINT {name}"))
                .await
                .map_err(write_err("release a savepoint"))?;
            Ok(Some(n))
        }
        Err(Error::Write { source: e, .. }) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            client
                .batch_execute(&format!("ROLLBACK TO SAVEPOINT {name}"))
                .await
                .map_err(write_err("roll back to a savepoint"))?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Plain PostgreSQL: recomputes the daily buckets that written samples invalidated (a no-op
/// function on TimescaleDB, where continuous aggregates do this). Imports and per-batch
/// writers call it inside their transaction; the live refresher calls it on its own.
///
/// errors: `Error::Write`.
pub(super) async fn refresh_daily(client: &Object) -> Result<(), Error> {
    let started = std::time::Instant::now();
    client
        .execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .map_err(write_err("refresh the daily relations"))?;
    metrics::histogram!("tgpulse_daily_refresh_seconds").record(started.elapsed());
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "refreshed daily relations"
    );
    Ok(())
}

/// COPY of every sample, assuming no key is stored yet (a stored one raises a unique
/// violation and the caller takes the careful path).
async fn optimistic_path(
    client: &Object,
    members: &[MemberSample],
    posts: &[PostSample],
    source: &str,
    mut partials: Option<&mut DailyPartials>,
) -> Result<Inserted, Error> {
    ensure_channels(
        client,
        members
            .iter()
            .map(|m| m.channel_id.get())
            .chain(posts.iter().map(|p| p.channel_id.get())),
    )
    .await?;
    let mut n = Inserted::default();
    if !members.is_empty() {
        let rows: Vec<&MemberSample> = members.iter().collect();
        n.members = copy_fresh_members(client, rows, source, partials.as_deref_mut()).await?;
    }
    if !posts.is_empty() {
        record_new_posts(client, posts).await?;
        let rows: Vec<&PostSample> = posts.iter().collect();
        n.posts = copy_fresh_posts(client, rows, source, partials).await?;
    }
    Ok(n)
}

/// Sorts by key and keeps one reading per key: the highest count (counters only grow), and
/// among equal counts one with a post count (the highest).
fn dedupe_members(rows: &mut Vec<MemberSample>) {
    let key = |m: &MemberSample| {
        (
            m.channel_id,
            m.observed_at,
            std::cmp::Reverse(m.members),
            std::cmp::Reverse(m.post_count),
        )
    };
    rows.sort_by_key(key);
    rows.dedup_by(|b, a| a.channel_id == b.channel_id && a.observed_at == b.observed_at);
}

fn dedupe_posts(rows: &mut Vec<PostSample>) {
    let key = |p: &PostSample| (p.channel_id, p.post_id, p.published_at, p.observed_at);
    rows.sort_by(|a, b| key(a).cmp(&key(b)).then(b.views.cmp(&a.views)));
    rows.dedup_by(|b, a| key(a) == key(b));
}

async fn fast_path(
    client: &Object,
    members: &[MemberSample],
    posts: &[PostSample],
    source: &str,
    mut partials: Option<&mut DailyPartials>,
) -> Result<Inserted, Error> {
    let mut n = Inserted::default();
    if !members.is_empty() {
        let (ids, lo, hi) = ranges(members.iter().map(|m| (m.channel_id.get(), m.observed_at)));
        let existing: HashMap<(i64, DateTime<Utc>), StoredMember> = client
            .query(
                "SELECT m.channel_id, m.observed_at, m.members, m.post_count
                 FROM unnest($1::int8[], $2::timestamptz[], $3::timestamptz[]) AS r(c, lo, hi)
                 JOIN member_samples m ON m.channel_id = r.c AND m.observed_at BETWEEN r.lo AND r.hi",
                &[&ids, &lo, &hi],
            )
            .await
            .map_err(write_err("look up stored member samples"))?
            .iter()
            .map(|r| {
                let stored = StoredMember {
                    members: r.get(2),
                    post_count: r.get(3),
                };
                ((r.get(0), r.get(1)), stored)
            })
            .collect();
        n.upgraded += upgrade_members(client, members, &existing).await?;
        let fresh: Vec<&MemberSample> = members
            .iter()
            .filter(|m| !existing.contains_key(&(m.channel_id.get(), m.observed_at)))
            .collect();
        ensure_channels(client, fresh.iter().map(|m| m.channel_id.get())).await?;
        n.members = copy_fresh_members(client, fresh, source, partials.as_deref_mut()).await?;
    }
    if !posts.is_empty() {
        let (inserted, upgraded) = fast_posts(client, posts, source, partials).await?;
        n.posts = inserted;
        n.upgraded += upgraded;
    }
    Ok(n)
}

/// Returns (inserted, upgraded).
async fn fast_posts(
    client: &Object,
    posts: &[PostSample],
    source: &str,
    partials: Option<&mut DailyPartials>,
) -> Result<(u64, u64), Error> {
    let (ids, lo, hi) = ranges(posts.iter().map(|p| (p.channel_id.get(), p.published_at)));
    let stored: HashMap<PostKey, Option<i64>> = client
        .query(
            "SELECT s.channel_id, s.post_id, s.published_at, s.observed_at, s.views
             FROM unnest($1::int8[], $2::timestamptz[], $3::timestamptz[]) AS r(c, lo, hi)
             JOIN post_samples s ON s.channel_id = r.c AND s.published_at BETWEEN r.lo AND r.hi",
            &[&ids, &lo, &hi],
        )
        .await
        .map_err(write_err("look up stored post samples"))?
        .iter()
        .map(|r| ((r.get(0), r.get(1), r.get(2), r.get(3)), r.get(4)))
        .collect();
    let upgraded = upgrade_posts(client, posts, &stored).await?;
    ensure_channels(client, posts.iter().map(|p| p.channel_id.get())).await?;

    record_new_posts(client, posts).await?;
    let fresh: Vec<&PostSample> = posts
        .iter()
        .filter(|p| {
            !stored.contains_key(&(p.channel_id.get(), p.post_id, p.published_at, p.observed_at))
        })
        .collect();
    let inserted = copy_fresh_posts(client, fresh, source, partials).await?;
    Ok((inserted, upgraded))
}

/// Records the first reading of each (channel, post) not yet in `posts` (one index range scan
/// per channel over post ids, bounded by the batch's posts, then COPY).
async fn record_new_posts(client: &Object, posts: &[PostSample]) -> Result<(), Error> {
    let (ids, lo, hi) = ranges(posts.iter().map(|p| (p.channel_id.get(), p.post_id)));
    let known_posts: HashSet<(i64, i64)> = client
        .query(
            "SELECT x.channel_id, x.post_id
             FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS r(c, lo, hi)
             JOIN posts x ON x.channel_id = r.c AND x.post_id BETWEEN r.lo AND r.hi",
            &[&ids, &lo, &hi],
        )
        .await
        .map_err(write_err("look up stored posts"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let sink = client
        .copy_in("COPY posts (channel_id, post_id, published_at) FROM STDIN (FORMAT binary)")
        .await
        .map_err(write_err("start COPY into posts"))?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::TIMESTAMPTZ]);
    pin_mut!(writer);
    let mut seen: HashSet<(i64, i64)> = HashSet::new();
    for p in posts {
        let key = (p.channel_id.get(), p.post_id);
        if known_posts.contains(&key) || !seen.insert(key) {
            continue;
        }
        writer
            .as_mut()
            .write(&[&key.0 as &(dyn ToSql + Sync), &key.1, &p.published_at])
            .await
            .map_err(write_err("copy posts"))?;
    }
    writer
        .finish()
        .await
        .map_err(write_err("finish COPY into posts"))?;

    Ok(())
}

/// (channel, post, published_at, observed_at)
type PostKey = (i64, i64, DateTime<Utc>, DateTime<Utc>);

/// The stored reading of a member sample key, as far as [`upgrade_members`] compares it.
#[derive(Debug, Clone, Copy)]
struct StoredMember {
    members: i64,
    post_count: Option<i64>,
}

/// A stored reading with a lower count than a new reading of the same key is replaced: the
/// two readings were taken at one recorded time, and counters only grow, so the higher one
/// is the later (its post count wins too, unless it has none). A stored reading without a
/// post count takes the new reading's (samples stored before `member_samples.post_count`
/// existed get it when their file is imported again). Replaying the same input changes
/// nothing. A changed reading counts as stored anew (`stored_at`), so incremental exports
/// take it again. Returns the rows changed.
async fn upgrade_members(
    client: &Object,
    members: &[MemberSample],
    existing: &HashMap<(i64, DateTime<Utc>), StoredMember>,
) -> Result<u64, Error> {
    let better: Vec<&MemberSample> = members
        .iter()
        .filter(|m| {
            existing
                .get(&(m.channel_id.get(), m.observed_at))
                .is_some_and(|s| {
                    m.members > s.members || (s.post_count.is_none() && m.post_count.is_some())
                })
        })
        .collect();
    if better.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = better.iter().map(|m| m.channel_id.get()).collect();
    let times: Vec<DateTime<Utc>> = better.iter().map(|m| m.observed_at).collect();
    let values: Vec<i64> = better.iter().map(|m| m.members).collect();
    let post_counts: Vec<Option<i64>> = better.iter().map(|m| m.post_count).collect();
    // SET expressions see the row as it was before the update.
    client
        .execute(
            "UPDATE member_samples m SET
                 members = greatest(m.members, u.v),
                 post_count = CASE WHEN u.v > m.members THEN coalesce(u.p, m.post_count)
                                   ELSE coalesce(m.post_count, u.p) END,
                 stored_at = now()
             FROM unnest($1::int8[], $2::timestamptz[], $3::int8[], $4::int8[]) AS u(c, t, v, p)
             WHERE m.channel_id = u.c AND m.observed_at = u.t
               AND (m.members < u.v OR (m.post_count IS NULL AND u.p IS NOT NULL))",
            &[&ids, &times, &values, &post_counts],
        )
        .await
        .map_err(write_err("replace lower member readings"))
}

async fn upgrade_posts(
    client: &Object,
    posts: &[PostSample],
    stored: &HashMap<PostKey, Option<i64>>,
) -> Result<u64, Error> {
    let higher: Vec<&PostSample> = posts
        .iter()
        .filter(|p| {
            stored
                .get(&(p.channel_id.get(), p.post_id, p.published_at, p.observed_at))
                .is_some_and(|s| p.views > *s)
        })
        .collect();
    if higher.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&PostSample) -> Option<i64>| {
        higher.iter().map(|p| f(p)).collect::<Vec<Option<i64>>>()
    };
    let ids: Vec<i64> = higher.iter().map(|p| p.channel_id.get()).collect();
    let post_ids: Vec<i64> = higher.iter().map(|p| p.post_id).collect();
    let published: Vec<DateTime<Utc>> = higher.iter().map(|p| p.published_at).collect();
    let observed: Vec<DateTime<Utc>> = higher.iter().map(|p| p.observed_at).collect();
    client
        .execute(
            "UPDATE post_samples s SET views = u.v, forwards = u.f, replies = u.r, reactions = u.x,
                 stored_at = now()
             FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::timestamptz[],
                         $5::int8[], $6::int8[], $7::int8[], $8::int8[]) AS u(c, p, pub, obs, v, f, r, x)
             WHERE s.channel_id = u.c AND s.post_id = u.p AND s.published_at = u.pub AND s.observed_at = u.obs
               AND s.views IS DISTINCT FROM u.v",
            &[
                &ids,
                &post_ids,
                &published,
                &observed,
                &col(|p| p.views),
                &col(|p| p.forwards),
                &col(|p| p.replies),
                &col(|p| p.reactions),
            ],
        )
        .await
        .map_err(write_err("replace lower post readings"))
}

/// Per channel, the smallest and largest key of the batch: the stored rows that could
/// collide are found with one index range scan per channel, which costs almost nothing when
/// the range is new (the usual case) and returns exactly the batch's keys on a replay.
fn ranges<K: Copy + Ord>(keys: impl Iterator<Item = (i64, K)>) -> (Vec<i64>, Vec<K>, Vec<K>) {
    let mut by_channel: std::collections::BTreeMap<i64, (K, K)> = std::collections::BTreeMap::new();
    for (c, k) in keys {
        by_channel
            .entry(c)
            .and_modify(|r| {
                r.0 = r.0.min(k);
                r.1 = r.1.max(k);
            })
            .or_insert((k, k));
    }
    let mut ids = Vec::with_capacity(by_channel.len());
    let mut lo = Vec::with_capacity(by_channel.len());
    let mut hi = Vec::with_capacity(by_channel.len());
    for (c, (a, b)) in by_channel {
        ids.push(c);
        lo.push(a);
        hi.push(b);
    }
    (ids, lo, hi)
}

async fn ensure_channels(client: &Object, ids: impl Iterator<Item = i64>) -> Result<(), Error> {
    let mut ids: Vec<i64> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "INSERT INTO channels (channel_id) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
            &[&ids],
        )
        .await
        .map_err(write_err("insert channels"))?;
    Ok(())
}

/// Fallback: COPY into staging, then `INSERT .. ON CONFLICT DO NOTHING`.
async fn merge_via_staging(
    client: &Object,
    members: &[MemberSample],
    posts: &[PostSample],
    source: &str,
) -> Result<Inserted, Error> {
    client
        .batch_execute("TRUNCATE stage_member_samples, stage_post_samples")
        .await
        .map_err(write_err("empty staging tables"))?;
    copy_member_rows(client, "stage_member_samples", members, source).await?;
    copy_post_rows(client, "stage_post_samples", posts, source).await?;

    client
        .batch_execute(
            "INSERT INTO channels (channel_id)
             SELECT DISTINCT channel_id FROM stage_member_samples
             UNION SELECT DISTINCT channel_id FROM stage_post_samples
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(write_err("insert channels of staged samples"))?;
    // Named columns: member_samples has more of them than the staging table (stored_at
    // takes its default), in another order.
    let members = client
        .execute(
            "INSERT INTO member_samples (channel_id, observed_at, members, post_count, source)
             SELECT channel_id, observed_at, members, post_count, source FROM stage_member_samples
             ON CONFLICT DO NOTHING",
            &[],
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
            "INSERT INTO post_samples
                 (channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, source)
             SELECT channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, source
             FROM stage_post_samples
             ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .map_err(write_err("merge post samples"))?;
    Ok(Inserted {
        members,
        posts,
        upgraded: 0,
        mentions: 0,
        merged: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelId;

    fn m(id: i64, secs: i64, members: i64) -> MemberSample {
        MemberSample {
            channel_id: ChannelId::new(id).unwrap(),
            observed_at: DateTime::from_timestamp(secs, 0).unwrap(),
            members,
            post_count: None,
        }
    }

    #[test]
    fn duplicate_readings_keep_the_highest_count() {
        let mut rows = vec![m(2, 10, 5), m(1, 10, 7), m(1, 10, 9), m(1, 5, 1)];
        dedupe_members(&mut rows);
        assert_eq!(rows, vec![m(1, 5, 1), m(1, 10, 9), m(2, 10, 5)]);
    }

    #[test]
    fn among_equal_counts_the_reading_with_a_post_count_is_kept() {
        let with_posts = MemberSample {
            post_count: Some(1517),
            ..m(1, 10, 9)
        };
        let mut rows = vec![m(1, 10, 9), with_posts.clone(), m(1, 10, 8)];
        dedupe_members(&mut rows);
        assert_eq!(rows, vec![with_posts]);
    }
}
