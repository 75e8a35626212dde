//! What the watched channels and the sources look like now: the data behind `tgpulse watch
//! list`, `tgpulse health` and the bot's `/list` and `/health`.

use chrono::{DateTime, Utc};

use crate::db::{Db, Error, Storage};
use crate::domain::ChannelId;

/// One watched channel with its latest numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedChannel {
    /// Channel identity.
    pub channel_id: ChannelId,
    /// Handle it is watched under (lower-case, no `@`), if any.
    pub handle: Option<String>,
    /// Current title, if known.
    pub title: Option<String>,
    /// Subscribers at the latest sample; `None` before the first sample.
    pub members: Option<i64>,
    /// Members of the latest local day with data minus the previous day with data
    /// (`members_daily`); `None` with fewer than two days.
    pub day_delta: Option<i64>,
    /// When the latest member sample was read.
    pub last_sample_at: Option<DateTime<Utc>>,
}

/// One source's health, from `source_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    /// Registered name.
    pub source: String,
    /// Last job whose samples were accepted.
    pub last_success: Option<DateTime<Utc>>,
    /// Last failure: when, and channel and reason.
    pub last_error: Option<(DateTime<Utc>, String)>,
    /// Totals since the source first ran.
    pub jobs_ok: i64,
    /// Failed jobs in total.
    pub jobs_failed: i64,
}

/// The whole picture for `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Storage layout (TimescaleDB or plain PostgreSQL).
    pub storage: Storage,
    /// Per source, by name.
    pub sources: Vec<SourceHealth>,
    /// Samples (member + post) observed in the last hour and the last 24 hours.
    pub samples_last_hour: i64,
    /// See `samples_last_hour`.
    pub samples_last_day: i64,
    /// Channels watched.
    pub watched: i64,
}

/// The watched channels with members, the day's delta and the last sample's time, ordered by
/// handle (then id).
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn watched(db: &Db) -> Result<Vec<WatchedChannel>, Error> {
    let client = db.pool.get().await?;
    let rows = client
        .query(
            "SELECT w.channel_id, coalesce(w.handle, c.handle), c.title, last.members, last.observed_at,
                    (SELECT d.members - d.prev FROM (
                        SELECT members, lag(members) OVER (ORDER BY bucket) AS prev, bucket
                        FROM (SELECT members, bucket FROM members_daily md
                              WHERE md.channel_id = w.channel_id ORDER BY bucket DESC LIMIT 2) two
                     ) d ORDER BY d.bucket DESC LIMIT 1)
             FROM watched_channels w
             JOIN channels c USING (channel_id)
             LEFT JOIN LATERAL (
                 SELECT m.members, m.observed_at FROM member_samples m
                 WHERE m.channel_id = w.channel_id ORDER BY m.observed_at DESC LIMIT 1
             ) last ON true
             ORDER BY coalesce(w.handle, c.handle) NULLS LAST, w.channel_id",
            &[],
        )
        .await
        .map_err(Error::query("read the watched channels"))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(WatchedChannel {
                channel_id: ChannelId::new(r.get(0)).ok()?,
                handle: r.get(1),
                title: r.get(2),
                members: r.get(3),
                last_sample_at: r.get(4),
                day_delta: r.get(5),
            })
        })
        .collect())
}

/// Storage mode, each source's last success and error, and recent sample counts. Post samples
/// are counted among posts published in the last 8 days (collectors re-read posts for 7).
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn health(db: &Db) -> Result<Health, Error> {
    let client = db.pool.get().await?;
    let sources = client
        .query(
            "SELECT source, last_success, last_error_at, last_error, jobs_ok, jobs_failed
             FROM source_status ORDER BY source",
            &[],
        )
        .await
        .map_err(Error::query("read the source status"))?
        .iter()
        .map(|r| SourceHealth {
            source: r.get(0),
            last_success: r.get(1),
            last_error: r
                .get::<_, Option<DateTime<Utc>>>(2)
                .map(|t| (t, r.get::<_, Option<String>>(3).unwrap_or_default())),
            jobs_ok: r.get(4),
            jobs_failed: r.get(5),
        })
        .collect();
    let counts = client
        .query_one(
            "SELECT
               (SELECT count(*) FROM member_samples WHERE observed_at > now() - interval '1 hour')
             + (SELECT count(*) FROM post_samples WHERE published_at > now() - interval '8 days'
                                                 AND observed_at > now() - interval '1 hour'),
               (SELECT count(*) FROM member_samples WHERE observed_at > now() - interval '1 day')
             + (SELECT count(*) FROM post_samples WHERE published_at > now() - interval '8 days'
                                                 AND observed_at > now() - interval '1 day'),
               (SELECT count(*) FROM watched_channels)",
            &[],
        )
        .await
        .map_err(Error::query("count recent samples"))?;
    Ok(Health {
        storage: db.storage,
        sources,
        samples_last_hour: counts.get(0),
        samples_last_day: counts.get(1),
        watched: counts.get(2),
    })
}
