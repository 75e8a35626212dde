//! The bot's daily export allowance per viewer (migration `0006_export_quota.sql`): the bytes
//! of the files `/export` sent to each user on each UTC day, so the allowance survives
//! restarts. The day is the caller's (the service clock), never SQL `now()`.

use chrono::NaiveDate;

use crate::db::Db;

/// Errors of the export allowance; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No pooled database connection.
    #[error("failed to get a database connection")]
    Connect(#[from] deadpool_postgres::PoolError),
    /// Reading a user's bytes of the day failed.
    #[error("failed to read the export bytes of user {user}")]
    Read {
        /// Telegram user id.
        user: i64,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Adding to a user's bytes of the day failed.
    #[error("failed to count {bytes} export bytes for user {user}")]
    Charge {
        /// Telegram user id.
        user: i64,
        /// Bytes to add.
        bytes: u64,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
}

fn sql_bytes(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Bytes of the files sent to `user` on `day` (UTC), 0 if none.
///
/// errors: `Error::Read`, `Error::Connect`.
pub async fn used(db: &Db, user: i64, day: NaiveDate) -> Result<u64, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT bytes FROM bot_export_usage WHERE user_id = $1 AND day = $2",
            &[&user, &day],
        )
        .await
        .map_err(|source| Error::Read { user, source })?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}

/// Adds `bytes` to `user`'s bytes of `day` if the total stays within `quota` bytes, in one
/// statement (two exports of one user cannot both pass). Returns whether it was added.
///
/// errors: `Error::Charge`, `Error::Connect`.
pub async fn charge(
    db: &Db,
    user: i64,
    day: NaiveDate,
    bytes: u64,
    quota: u64,
) -> Result<bool, Error> {
    if bytes > quota {
        return Ok(false);
    }
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "INSERT INTO bot_export_usage AS u (user_id, day, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, day) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes
             WHERE u.bytes + EXCLUDED.bytes <= $4
             RETURNING bytes",
            &[&user, &day, &sql_bytes(bytes), &sql_bytes(quota)],
        )
        .await
        .map_err(|source| Error::Charge {
            user,
            bytes,
            source,
        })?;
    Ok(row.is_some())
}
