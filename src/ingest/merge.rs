//! Plain PostgreSQL: keeping the daily relations up to date from the samples tgpulse itself
//! inserts, without reading them back.
//!
//! `members_daily` is a mergeable aggregate per (channel, local day): the last value by
//! observation time, min, max, count and the newest observation time; `post_reach` per
//! (channel, post, local publication day): the highest counters, count and newest
//! observation time. The writer adds every sample it inserts to [`DailyPartials`] (in
//! memory, one entry per channel and day, or per post), and [`DailyPartials::merge`] folds
//! them into the stored rows with one `INSERT … ON CONFLICT DO UPDATE` per relation; then
//! `views_daily` is recomputed from `post_reach` for the (channel, day)s the posts touched.
//! That replaces recomputing the touched buckets from the sample tables, which cost as much
//! as inserting the samples.
//!
//! The inserts it merges are not logged for `tgpulse_refresh_daily()`: the writer sets the
//! transaction-local settings `tgpulse.members_merged` / `tgpulse.posts_merged` around its
//! COPY, and the invalidation triggers skip inserts made under them
//! (`sql/0013_daily_merge.plain.sql`). Everything else is still logged and recomputed from
//! the samples: readings tgpulse replaces (updates), the rows of the staging fallback, and
//! writes made outside tgpulse.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use deadpool_postgres::Object;
use tokio_postgres::error::SqlState;

use super::{Error, MemberSample, PostSample, write_err};

/// Runs the upsert `plain` (one row per key by construction) with `params`; on a
/// cardinality violation (two partials in one bucket, see [`DailyPartials::merge`]) rolls it
/// back and runs `grouped`. Evaluates to the rows written. (A macro, not a function: a
/// parameter slice of `&dyn ToSql` passed into an async fn makes the writer's future lose
/// `Send`.)
macro_rules! upsert {
    ($client:expr, $relation:expr, $plain:expr, $grouped:expr, $params:expr) => {{
        let client: &Object = $client;
        client
            .batch_execute("SAVEPOINT tgpulse_merge")
            .await
            .map_err(write_err("set a savepoint"))?;
        let merged = match client.execute($plain, $params).await {
            Ok(rows) => rows,
            Err(e) if e.code() == Some(&SqlState::CARDINALITY_VIOLATION) => {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT tgpulse_merge")
                    .await
                    .map_err(write_err("roll back to a savepoint"))?;
                tracing::warn!(
                    relation = $relation,
                    "the server's time zone rules group some days differently; merging them on the server"
                );
                client
                    .execute($grouped, $params)
                    .await
                    .map_err(write_err("merge into the daily relations"))?
            }
            Err(e) => return Err(write_err("merge into the daily relations")(e)),
        };
        client
            .batch_execute("RELEASE SAVEPOINT tgpulse_merge")
            .await
            .map_err(write_err("release a savepoint"))?;
        merged
    }};
}

/// One (channel, local day) of inserted member samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Partial {
    /// Newest observation time, and the members read then.
    last_at: DateTime<Utc>,
    last: i64,
    min: i64,
    max: i64,
    samples: i64,
}

impl Partial {
    fn of(m: &MemberSample) -> Self {
        Self {
            last_at: m.observed_at,
            last: m.members,
            min: m.members,
            max: m.members,
            samples: 1,
        }
    }

    fn absorb(&mut self, o: &Self) {
        if o.last_at > self.last_at {
            self.last_at = o.last_at;
            self.last = o.last;
        }
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.samples += o.samples;
    }
}

/// One post's inserted samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PostPartial {
    published_at: DateTime<Utc>,
    views: Option<i64>,
    forwards: Option<i64>,
    replies: Option<i64>,
    reactions: Option<i64>,
    samples: i64,
    last_at: DateTime<Utc>,
}

impl PostPartial {
    fn of(p: &PostSample) -> Self {
        Self {
            published_at: p.published_at,
            views: p.views,
            forwards: p.forwards,
            replies: p.replies,
            reactions: p.reactions,
            samples: 1,
            last_at: p.observed_at,
        }
    }

    /// Highest counters (an absent one does not count, as `max()` in SQL), summed samples.
    fn absorb(&mut self, o: &Self) {
        let hi = |a: Option<i64>, b: Option<i64>| a.max(b);
        self.views = hi(self.views, o.views);
        self.forwards = hi(self.forwards, o.forwards);
        self.replies = hi(self.replies, o.replies);
        self.reactions = hi(self.reactions, o.reactions);
        self.samples += o.samples;
        self.last_at = self.last_at.max(o.last_at);
    }
}

/// The daily partials of the samples a writer inserted and has not merged yet: per channel
/// and local day for `members_daily`, per post and local publication day for
/// `post_reach`, in the reporting time zone.
#[derive(Debug, Clone)]
pub(crate) struct DailyPartials {
    tz: Tz,
    members: HashMap<(i64, NaiveDate), Partial>,
    posts: HashMap<(i64, i64, NaiveDate), PostPartial>,
}

impl DailyPartials {
    /// Empty partials for buckets in `tz` (the database's reporting time zone).
    pub(crate) fn new(tz: Tz) -> Self {
        Self {
            tz,
            members: HashMap::new(),
            posts: HashMap::new(),
        }
    }

    /// Empty partials in the same time zone.
    pub(crate) fn empty_like(&self) -> Self {
        Self::new(self.tz)
    }

    /// Adds inserted member samples (each one new: its key was not stored).
    pub(crate) fn add_members<'a>(&mut self, rows: impl IntoIterator<Item = &'a MemberSample>) {
        for m in rows {
            let day = m.observed_at.with_timezone(&self.tz).date_naive();
            let p = Partial::of(m);
            self.members
                .entry((m.channel_id.get(), day))
                .and_modify(|q| q.absorb(&p))
                .or_insert(p);
        }
    }

    /// Adds inserted post samples (each one new).
    pub(crate) fn add_posts<'a>(&mut self, rows: impl IntoIterator<Item = &'a PostSample>) {
        for s in rows {
            let day = s.published_at.with_timezone(&self.tz).date_naive();
            let p = PostPartial::of(s);
            self.posts
                .entry((s.channel_id.get(), s.post_id, day))
                .and_modify(|q| q.absorb(&p))
                .or_insert(p);
        }
    }

    /// Adds another writer attempt's partials.
    pub(crate) fn absorb(&mut self, other: Self) {
        for (k, p) in other.members {
            self.members
                .entry(k)
                .and_modify(|q| q.absorb(&p))
                .or_insert(p);
        }
        for (k, p) in other.posts {
            self.posts
                .entry(k)
                .and_modify(|q| q.absorb(&p))
                .or_insert(p);
        }
    }

    /// Channel-days and posts waiting to be merged.
    pub(crate) fn len(&self) -> usize {
        self.members.len() + self.posts.len()
    }

    /// Folds the partials into `members_daily` and `post_reach`, recomputes `views_daily`
    /// for the days of the merged posts, inside the caller's transaction, and empties the
    /// partials. Takes the daily relations' lock (the one `tgpulse_refresh_daily()` takes)
    /// until the transaction ends, so a concurrent recompute of the same buckets waits for
    /// it. Returns the daily rows inserted or updated.
    ///
    /// The bucket is computed by PostgreSQL from a time of each partial (`date_trunc('day',
    /// t, timezone)`), exactly as the recompute does. Should the server's time zone rules
    /// put two of tgpulse's local days in one bucket, the partials are combined on the server
    /// instead (a slower statement, same result).
    ///
    /// errors: `Error::Write` naming the failed step.
    pub(crate) async fn merge(&mut self, client: &Object) -> Result<u64, Error> {
        if self.members.is_empty() && self.posts.is_empty() {
            return Ok(0);
        }
        client
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext('tgpulse_refresh_daily'))",
                &[],
            )
            .await
            .map_err(write_err("lock the daily relations"))?;
        let mut merged = 0;
        if !self.members.is_empty() {
            merged += self.merge_members(client).await?;
        }
        if !self.posts.is_empty() {
            merged += self.merge_posts(client).await?;
        }
        Ok(merged)
    }

    async fn merge_members(&mut self, client: &Object) -> Result<u64, Error> {
        let n = self.members.len();
        let mut ids = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        let mut last = Vec::with_capacity(n);
        let mut lo = Vec::with_capacity(n);
        let mut hi = Vec::with_capacity(n);
        let mut count = Vec::with_capacity(n);
        for ((id, _), p) in self.members.drain() {
            ids.push(id);
            at.push(p.last_at);
            last.push(p.last);
            lo.push(p.min);
            hi.push(p.max);
            count.push(p.samples);
        }
        Ok(upsert!(
            client,
            "members_daily",
            MERGE_MEMBERS,
            MERGE_MEMBERS_GROUPED,
            &[&ids, &at, &last, &lo, &hi, &count]
        ))
    }

    async fn merge_posts(&mut self, client: &Object) -> Result<u64, Error> {
        let n = self.posts.len();
        let mut ids = Vec::with_capacity(n);
        let mut posts = Vec::with_capacity(n);
        let mut published = Vec::with_capacity(n);
        let (mut views, mut forwards) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut replies, mut reactions) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut count, mut last) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for ((id, post, _), p) in self.posts.drain() {
            ids.push(id);
            posts.push(post);
            published.push(p.published_at);
            views.push(p.views);
            forwards.push(p.forwards);
            replies.push(p.replies);
            reactions.push(p.reactions);
            count.push(p.samples);
            last.push(p.last_at);
        }
        let merged = upsert!(
            client,
            "post_reach",
            MERGE_POSTS,
            MERGE_POSTS_GROUPED,
            &[
                &ids, &posts, &published, &views, &forwards, &replies, &reactions, &count, &last,
            ]
        );
        client
            .execute(RECOMPUTE_VIEWS_DAILY, &[&ids, &published])
            .await
            .map_err(write_err("recompute views_daily"))?;
        Ok(merged)
    }
}

/// Turns the skipping of logged inserts into `member_samples` (`relation` "members") or
/// `post_samples` ("posts") on or off for the rest of the transaction.
///
/// errors: `Error::Write`.
pub(super) async fn set_merged(client: &Object, relation: &str, on: bool) -> Result<(), Error> {
    client
        .execute(
            "SELECT set_config('tgpulse.' || $1 || '_merged', $2, true)",
            &[&relation, &if on { "on" } else { "off" }],
        )
        .await
        .map_err(write_err("mark the merged inserts"))?;
    Ok(())
}

/// How a partial combines with the stored `members_daily` row of its bucket: the members of
/// the newer last reading, the lower minimum, the higher maximum, the summed samples.
macro_rules! members_merged {
    () => {
        "ON CONFLICT (channel_id, bucket) DO UPDATE SET
    members = CASE WHEN EXCLUDED.last_observed_at > d.last_observed_at
                   THEN EXCLUDED.members ELSE d.members END,
    members_min = least(d.members_min, EXCLUDED.members_min),
    members_max = greatest(d.members_max, EXCLUDED.members_max),
    samples = d.samples + EXCLUDED.samples,
    last_observed_at = greatest(d.last_observed_at, EXCLUDED.last_observed_at)"
    };
}

/// How a partial combines with the stored `post_reach` row of its post: the highest counters
/// (`greatest` ignores NULL, as `max()` does), the summed samples.
macro_rules! posts_merged {
    () => {
        "ON CONFLICT (channel_id, post_id, bucket) DO UPDATE SET
    views = greatest(d.views, EXCLUDED.views),
    forwards = greatest(d.forwards, EXCLUDED.forwards),
    replies = greatest(d.replies, EXCLUDED.replies),
    reactions = greatest(d.reactions, EXCLUDED.reactions),
    samples = d.samples + EXCLUDED.samples,
    last_observed_at = greatest(d.last_observed_at, EXCLUDED.last_observed_at)"
    };
}

/// One partial per (channel, bucket); the upsert combines it with the stored day.
const MERGE_MEMBERS: &str = concat!(
    "
WITH tz AS (SELECT value AS tz FROM tgpulse_settings WHERE key = 'timezone')
INSERT INTO members_daily AS d
    (channel_id, bucket, members, members_min, members_max, samples, last_observed_at)
SELECT u.c, date_trunc('day', u.t, tz.tz), u.m, u.lo, u.hi, u.n, u.t
FROM unnest($1::int8[], $2::timestamptz[], $3::int8[], $4::int8[], $5::int8[], $6::int8[])
         AS u(c, t, m, lo, hi, n), tz
",
    members_merged!()
);

/// [`MERGE_MEMBERS`] with the partials first combined per bucket on the server.
const MERGE_MEMBERS_GROUPED: &str = concat!(
    "
WITH tz AS (SELECT value AS tz FROM tgpulse_settings WHERE key = 'timezone'),
g AS (
    SELECT u.c, date_trunc('day', u.t, tz.tz) AS bucket,
           (array_agg(u.m ORDER BY u.t DESC))[1] AS m, min(u.lo) AS lo, max(u.hi) AS hi,
           sum(u.n)::bigint AS n, max(u.t) AS t
    FROM unnest($1::int8[], $2::timestamptz[], $3::int8[], $4::int8[], $5::int8[], $6::int8[])
             AS u(c, t, m, lo, hi, n), tz
    GROUP BY 1, 2
)
INSERT INTO members_daily AS d
    (channel_id, bucket, members, members_min, members_max, samples, last_observed_at)
SELECT c, bucket, m, lo, hi, n, t FROM g
",
    members_merged!()
);

/// One partial per (post, bucket); the highest counters and summed samples with the stored
/// row (`greatest` ignores NULL, as `max()` does).
const MERGE_POSTS: &str = concat!(
    "
WITH tz AS (SELECT value AS tz FROM tgpulse_settings WHERE key = 'timezone')
INSERT INTO post_reach AS d
    (channel_id, post_id, bucket, views, forwards, replies, reactions, samples, last_observed_at)
SELECT u.c, u.p, date_trunc('day', u.pub, tz.tz), u.v, u.f, u.r, u.x, u.n, u.t
FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::int8[], $5::int8[], $6::int8[],
            $7::int8[], $8::int8[], $9::timestamptz[]) AS u(c, p, pub, v, f, r, x, n, t), tz
",
    posts_merged!()
);

/// [`MERGE_POSTS`] with the partials first combined per bucket on the server.
const MERGE_POSTS_GROUPED: &str = concat!(
    "
WITH tz AS (SELECT value AS tz FROM tgpulse_settings WHERE key = 'timezone'),
g AS (
    SELECT u.c, u.p, date_trunc('day', u.pub, tz.tz) AS bucket, max(u.v) AS v, max(u.f) AS f,
           max(u.r) AS r, max(u.x) AS x, sum(u.n)::bigint AS n, max(u.t) AS t
    FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::int8[], $5::int8[], $6::int8[],
                $7::int8[], $8::int8[], $9::timestamptz[]) AS u(c, p, pub, v, f, r, x, n, t), tz
    GROUP BY 1, 2, 3
)
INSERT INTO post_reach AS d
    (channel_id, post_id, bucket, views, forwards, replies, reactions, samples, last_observed_at)
SELECT c, p, bucket, v, f, r, x, n, t FROM g
",
    posts_merged!()
);

/// `views_daily` of the (channel, publication day)s of the merged posts, recomputed from
/// `post_reach` (a day's sum of reach is not mergeable: a post's reach replaces its old one).
/// Days only gain posts here, so every touched day has a row to write.
const RECOMPUTE_VIEWS_DAILY: &str = "
WITH tz AS (SELECT value AS tz FROM tgpulse_settings WHERE key = 'timezone'),
t AS (
    SELECT DISTINCT u.c, date_trunc('day', u.pub, tz.tz) AS bucket
    FROM unnest($1::int8[], $2::timestamptz[]) AS u(c, pub), tz
)
INSERT INTO views_daily AS d
    (channel_id, bucket, posts, views, forwards, replies, reactions, last_observed_at)
SELECT r.channel_id, r.bucket, count(*), sum(r.views)::bigint, sum(r.forwards)::bigint,
       sum(r.replies)::bigint, sum(r.reactions)::bigint, max(r.last_observed_at)
FROM post_reach r JOIN t ON r.channel_id = t.c AND r.bucket = t.bucket
GROUP BY 1, 2
ON CONFLICT (channel_id, bucket) DO UPDATE SET
    posts = EXCLUDED.posts, views = EXCLUDED.views, forwards = EXCLUDED.forwards,
    replies = EXCLUDED.replies, reactions = EXCLUDED.reactions,
    last_observed_at = EXCLUDED.last_observed_at";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelId;

    fn m(id: i64, at: &str, members: i64) -> MemberSample {
        MemberSample {
            channel_id: ChannelId::new(id).unwrap(),
            observed_at: DateTime::parse_from_rfc3339(at).unwrap().to_utc(),
            members,
            post_count: None,
        }
    }

    #[test]
    fn partials_are_per_channel_and_local_day_with_the_last_reading_by_time() {
        let mut p = DailyPartials::new(chrono_tz::Europe::Berlin);
        // 23:30 UTC on the 1st is 01:30 on the 2nd in Berlin (summer time).
        p.add_members(&[
            m(1, "2021-07-01T10:00:00Z", 100),
            m(1, "2021-07-01T20:00:00Z", 90),
            m(1, "2021-07-01T23:30:00Z", 120),
            m(2, "2021-07-01T10:00:00Z", 7),
        ]);
        let mut other = p.empty_like();
        other.add_members(&[m(1, "2021-07-01T05:00:00Z", 80)]);
        p.absorb(other);
        assert_eq!(p.len(), 3);
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let first = p.members[&(1, day("2021-07-01"))];
        assert_eq!(
            (first.last, first.min, first.max, first.samples),
            (90, 80, 100, 3)
        );
        assert_eq!(p.members[&(1, day("2021-07-02"))].last, 120);
        assert_eq!(p.members[&(2, day("2021-07-01"))].samples, 1);
    }
}
