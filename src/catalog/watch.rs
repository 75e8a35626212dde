//! The watched channels (`watched_channels`): what collectors collect. The CLI and the bot
//! add and remove channels; collectors read their shard's targets.

use super::{ChannelInfo, Error, Shard, Target};
use crate::db::Db;
use crate::domain::{ChannelId, Handle};

/// Starts watching a resolved channel (records its id, handle and title too). Adding a
/// channel that is already watched only refreshes its handle. Returns whether it is new.
///
/// errors: `Error::AddChannel`, `Error::Connect`.
pub async fn add(db: &Db, info: &ChannelInfo, added_by: Option<i64>) -> Result<bool, Error> {
    let mut client = db.pool.get().await?;
    let step = |source| Error::AddChannel {
        channel: info.channel_id,
        source,
    };
    let tx = client.transaction().await.map_err(step)?;
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
    .map_err(step)?;
    tx.execute(
        "INSERT INTO channel_names (channel_id, handle, title, first_seen, last_seen)
         VALUES ($1, coalesce($2, ''), coalesce($3, ''), now(), now())
         ON CONFLICT (channel_id, handle, title) DO UPDATE SET last_seen = now()",
        &[&id, &handle, &info.title],
    )
    .await
    .map_err(step)?;
    let inserted: bool = tx
        .query_one(
            "INSERT INTO watched_channels (channel_id, handle, added_by) VALUES ($1, $2, $3)
             ON CONFLICT (channel_id) DO UPDATE SET handle = coalesce(EXCLUDED.handle, watched_channels.handle)
             RETURNING (xmax = 0)",
            &[&id, &handle, &added_by],
        )
        .await
        .map_err(step)?
        .get(0);
    tx.commit().await.map_err(step)?;
    Ok(inserted)
}

/// Whether a channel is watched.
///
/// errors: `Error::LookUpWatched`, `Error::Connect`.
pub async fn is_watched(db: &Db, channel: ChannelId) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT 1 FROM watched_channels WHERE channel_id = $1",
            &[&channel.get()],
        )
        .await
        .map_err(|source| Error::LookUpWatched { channel, source })?;
    Ok(row.is_some())
}

/// Stops watching a channel; its samples stay. Returns whether it was watched.
///
/// errors: `Error::RemoveChannel`, `Error::Connect`.
pub async fn remove(db: &Db, channel: ChannelId) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let n = client
        .execute(
            "DELETE FROM watched_channels WHERE channel_id = $1",
            &[&channel.get()],
        )
        .await
        .map_err(|source| Error::RemoveChannel { channel, source })?;
    Ok(n > 0)
}

/// The watched channels this shard collects, in id order.
///
/// errors: `Error::ReadTargets`, `Error::Connect`.
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
        .map_err(|source| Error::ReadTargets { shard, source })?;
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
