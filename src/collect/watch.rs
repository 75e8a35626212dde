//! The watched channels (`watched_channels`) and per-source health (`source_status`): the only
//! state collectors read or write besides samples. The CLI and the bot call these functions.

use chrono::{DateTime, Utc};

use super::{ChannelInfo, Shard, Target};
use crate::db::{Db, Error};
use crate::domain::{ChannelId, Handle};

/// Starts watching a resolved channel (records its id, handle and title too). Adding a
/// channel that is already watched only refreshes its handle. Returns whether it is new.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn add(db: &Db, info: &ChannelInfo, added_by: Option<i64>) -> Result<bool, Error> {
    let mut client = db.pool.get().await?;
    let tx = client
        .transaction()
        .await
        .map_err(Error::query("begin adding a channel"))?;
    let id = info.channel_id.get();
    let handle = info.handle.as_ref().map(Handle::as_str);
    tx.execute(
        "INSERT INTO channels (channel_id, handle, title) VALUES ($1, $2, $3)
         ON CONFLICT (channel_id) DO UPDATE
         SET handle = coalesce(EXCLUDED.handle, channels.handle),
             title = coalesce(EXCLUDED.title, channels.title)",
        &[&id, &handle, &info.title],
    )
    .await
    .map_err(Error::query("record the channel"))?;
    tx.execute(
        "INSERT INTO channel_names (channel_id, handle, title, first_seen, last_seen)
         VALUES ($1, coalesce($2, ''), coalesce($3, ''), now(), now())
         ON CONFLICT (channel_id, handle, title) DO UPDATE SET last_seen = now()",
        &[&id, &handle, &info.title],
    )
    .await
    .map_err(Error::query("record the channel name"))?;
    let inserted: bool = tx
        .query_one(
            "INSERT INTO watched_channels (channel_id, handle, added_by) VALUES ($1, $2, $3)
             ON CONFLICT (channel_id) DO UPDATE SET handle = coalesce(EXCLUDED.handle, watched_channels.handle)
             RETURNING (xmax = 0)",
            &[&id, &handle, &added_by],
        )
        .await
        .map_err(Error::query("watch the channel"))?
        .get(0);
    tx.commit()
        .await
        .map_err(Error::query("commit adding a channel"))?;
    Ok(inserted)
}

/// Whether a channel is watched.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn is_watched(db: &Db, channel: ChannelId) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT 1 FROM watched_channels WHERE channel_id = $1",
            &[&channel.get()],
        )
        .await
        .map_err(Error::query("look up a watched channel"))?;
    Ok(row.is_some())
}

/// Stops watching a channel; its samples stay. Returns whether it was watched.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn remove(db: &Db, channel: ChannelId) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let n = client
        .execute(
            "DELETE FROM watched_channels WHERE channel_id = $1",
            &[&channel.get()],
        )
        .await
        .map_err(Error::query("stop watching a channel"))?;
    Ok(n > 0)
}

/// The watched channels this shard collects, in id order.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn targets(db: &Db, shard: Shard) -> Result<Vec<Target>, Error> {
    let client = db.pool.get().await?;
    let rows = client
        .query(
            "SELECT w.channel_id, coalesce(w.handle, c.handle)
             FROM watched_channels w JOIN channels c USING (channel_id)
             WHERE mod(w.channel_id, $1::bigint) = $2::bigint
             ORDER BY w.channel_id",
            &[&i64::from(shard.count), &i64::from(shard.index)],
        )
        .await
        .map_err(Error::query("read the watched channels"))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let id = ChannelId::new(r.get(0)).ok()?;
            let handle: Option<String> = r.get(1);
            Some(Target {
                channel_id: id,
                handle: handle.and_then(|h| h.parse().ok()),
            })
        })
        .collect())
}

/// Adds a collector run's counters to its source's row in `source_status`.
///
/// `counts` is `[jobs_ok, jobs_failed, samples]` since the last call.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
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
        .map_err(Error::query("record the source status"))?;
    Ok(())
}
