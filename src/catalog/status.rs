//! How the watched channels and the sources are doing: what collectors report
//! ([`record_status`]) and the data behind `tgpulse watch list`, `tgpulse health` and the
//! bot's `/list` and `/health`. The reading queries are named files in `queries/`
//! ([`crate::query::CATALOG_QUERIES`]), run by PostgreSQL with bound parameters.

use chrono::{DateTime, Utc};

use super::{Error, Storage};
use crate::db::Db;
use crate::domain::ChannelId;
use crate::query::{RECENT_SAMPLES, SOURCE_HEALTH, WATCHED_CHANNELS};

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
    /// Samples (member + post) observed in the hour and the 24 hours before `now`.
    pub samples_last_hour: i64,
    /// See `samples_last_hour`.
    pub samples_last_day: i64,
    /// Channels watched.
    pub watched: i64,
}

/// The watched channels with members, the day's delta and the last sample's time, ordered by
/// handle (then id). `queries/watched_channels.sql`.
///
/// errors: `Error::ReadWatched`, `Error::Connect`.
pub async fn watched(db: &Db) -> Result<Vec<WatchedChannel>, Error> {
    let client = db.pool.get().await?;
    let rows = client
        .query(WATCHED_CHANNELS.sql, &[])
        .await
        .map_err(Error::ReadWatched)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(WatchedChannel {
                channel_id: ChannelId::new(r.get("channel_id")).ok()?,
                handle: r.get("handle"),
                title: r.get("title"),
                members: r.get("members"),
                last_sample_at: r.get("last_sample_at"),
                day_delta: r.get("day_delta"),
            })
        })
        .collect())
}

/// Storage mode, each source's last success and error, and the samples observed in the hour
/// and the day before `now` (`queries/source_health.sql`, `queries/recent_samples.sql`).
///
/// errors: `Error::ReadSourceHealth`, `Error::CountRecentSamples`, `Error::Connect`.
pub async fn health(db: &Db, now: DateTime<Utc>) -> Result<Health, Error> {
    let client = db.pool.get().await?;
    let sources = client
        .query(SOURCE_HEALTH.sql, &[])
        .await
        .map_err(Error::ReadSourceHealth)?
        .iter()
        .map(|r| SourceHealth {
            source: r.get("source"),
            last_success: r.get("last_success"),
            last_error: r.get::<_, Option<DateTime<Utc>>>("last_error_at").map(|t| {
                (
                    t,
                    r.get::<_, Option<String>>("last_error").unwrap_or_default(),
                )
            }),
            jobs_ok: r.get("jobs_ok"),
            jobs_failed: r.get("jobs_failed"),
        })
        .collect();
    let counts = client
        .query_one(RECENT_SAMPLES.sql, &[&now])
        .await
        .map_err(Error::CountRecentSamples)?;
    Ok(Health {
        storage: db.storage,
        sources,
        samples_last_hour: counts.get("samples_last_hour"),
        samples_last_day: counts.get("samples_last_day"),
        watched: counts.get("watched"),
    })
}

/// Adds a collector run's counters to its source's row in `source_status`.
///
/// `counts` is `[jobs_ok, jobs_failed, samples]` since the last call.
///
/// errors: `Error::RecordStatus`, `Error::Connect`.
pub async fn record_status(
    db: &Db,
    source: &str,
    last_success: Option<DateTime<Utc>>,
    last_error_at: Option<DateTime<Utc>>,
    last_error: Option<&str>,
    counts: [i64; 3],
) -> Result<(), Error> {
    let client = db.pool.get().await?;
    client
        .execute(
            "INSERT INTO source_status AS s
               (source, last_success, last_error_at, last_error, jobs_ok, jobs_failed, samples, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             ON CONFLICT (source) DO UPDATE SET
               last_success = greatest(s.last_success, EXCLUDED.last_success),
               last_error_at = coalesce(EXCLUDED.last_error_at, s.last_error_at),
               last_error = coalesce(EXCLUDED.last_error, s.last_error),
               jobs_ok = s.jobs_ok + EXCLUDED.jobs_ok,
               jobs_failed = s.jobs_failed + EXCLUDED.jobs_failed,
               samples = s.samples + EXCLUDED.samples,
               updated_at = now()",
            &[
                &source,
                &last_success,
                &last_error_at,
                &last_error,
                &counts[0],
                &counts[1],
                &counts[2],
            ],
        )
        .await
        .map_err(|e| Error::RecordStatus {
            source_name: source.to_owned(),
            source: e,
        })?;
    Ok(())
}

/// Scheduled reports generated since `since` whose sending was given up after a day of
/// retries (`reports_queue`), for `/health`.
///
/// errors: `Error::CountGivenUpReports`, `Error::Connect`.
pub async fn reports_given_up(db: &Db, since: DateTime<Utc>) -> Result<i64, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_one(
            "SELECT count(*) FROM reports_queue WHERE state = 'given_up' AND created_at >= $1",
            &[&since],
        )
        .await
        .map_err(Error::CountGivenUpReports)?;
    Ok(row.get(0))
}
