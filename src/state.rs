//! The admin bot's state in PostgreSQL (migration `0005_bot.sql`): viewer roles, what each
//! inline button does, and conversations waiting for the user's next message. Kept out of the
//! bot module so that the bot holds no SQL; everything here survives a restart.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::db::{Db, Error};
use crate::domain::{ChannelId, Days};

/// What an inline button does when pressed. Stored as JSON in `bot_actions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Confirms `/remove`: stop watching the channel.
    Remove {
        /// The channel to stop watching.
        channel: i64,
    },
    /// Cancels a pending confirmation.
    Cancel,
    /// Shows one page of `/list` (0-based).
    ListPage {
        /// Page number, 0-based.
        page: u32,
    },
    /// `/stats` of a channel over another window.
    Stats {
        /// Channel id.
        channel: i64,
        /// Window in local days.
        days: u32,
    },
    /// Asks for channels to compare this one with (then waits for the reply).
    CompareWith {
        /// Channel id.
        channel: i64,
        /// Window in local days.
        days: u32,
    },
    /// Exports the channel's daily members as Parquet.
    Export {
        /// Channel id.
        channel: i64,
        /// Window in local days.
        days: u32,
    },
}

impl Action {
    /// The channel and window of a stats-like action, parsed back into domain types.
    ///
    /// errors: `None` if the stored values are out of range (a stale or corrupted row).
    pub fn channel_days(&self) -> Option<(ChannelId, Days)> {
        match *self {
            Self::Stats { channel, days }
            | Self::CompareWith { channel, days }
            | Self::Export { channel, days } => {
                Some((ChannelId::new(channel).ok()?, Days::new(days).ok()?))
            }
            _ => None,
        }
    }
}

/// What a conversation waits for. Stored as JSON in `bot_dialogues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Awaiting {
    /// The channels to compare `channel` with, as `@a @b ..`.
    CompareWith {
        /// The channel the user started from.
        channel: i64,
        /// Window in local days.
        days: u32,
    },
}

/// How long a button works: a week, like Telegram keeps a chat's recent keyboard useful.
pub const ACTION_TTL: Duration = Duration::days(7);

/// Whether `user` holds the viewer role.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn is_viewer(db: &Db, user: i64) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt("SELECT 1 FROM bot_viewers WHERE user_id = $1", &[&user])
        .await
        .map_err(Error::query("read the viewer role"))?;
    Ok(row.is_some())
}

/// Grants the read-only viewer role. Returns whether it is new.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn grant_viewer(db: &Db, user: i64, by: i64) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let n = client
        .execute(
            "INSERT INTO bot_viewers (user_id, granted_by) VALUES ($1, $2)
             ON CONFLICT (user_id) DO NOTHING",
            &[&user, &by],
        )
        .await
        .map_err(Error::query("grant the viewer role"))?;
    Ok(n > 0)
}

/// Revokes the viewer role. Returns whether the user had it.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn revoke_viewer(db: &Db, user: i64) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let n = client
        .execute("DELETE FROM bot_viewers WHERE user_id = $1", &[&user])
        .await
        .map_err(Error::query("revoke the viewer role"))?;
    Ok(n > 0)
}

/// The viewers: (user id, granted by, granted at), oldest first.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn viewers(db: &Db) -> Result<Vec<(i64, i64, DateTime<Utc>)>, Error> {
    let client = db.pool.get().await?;
    let rows = client
        .query(
            "SELECT user_id, granted_by, granted_at FROM bot_viewers ORDER BY granted_at",
            &[],
        )
        .await
        .map_err(Error::query("list the viewers"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Stores what a button does and returns its token (16 random hex digits). One-shot actions
/// stored with the same `group` (the Yes and Cancel of one confirmation) are used up together.
/// Expired actions are deleted on the way.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn put_action(
    db: &Db,
    chat_id: i64,
    user_id: i64,
    action: &Action,
    one_shot: Option<&str>,
) -> Result<String, Error> {
    let token = new_token();
    let json = serde_json::to_value(action).map_err(|e| Error::Corrupt(e.to_string()))?;
    let client = db.pool.get().await?;
    client
        .execute(
            "WITH gone AS (DELETE FROM bot_actions WHERE expires_at < now())
             INSERT INTO bot_actions (token, chat_id, user_id, action, one_shot, grp, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7))",
            &[
                &token,
                &chat_id,
                &user_id,
                &json,
                &one_shot.is_some(),
                &one_shot,
                &(ACTION_TTL.num_days() as i32),
            ],
        )
        .await
        .map_err(Error::query("store a button action"))?;
    Ok(token)
}

/// A fresh random token: 16 hex digits.
pub fn new_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The action behind a button token pressed by `user_id` in `chat_id`; `None` for unknown,
/// expired or used-up tokens, and for tokens shown to someone else (which stay usable by
/// their owner).
///
/// A one-shot action is deleted as it is read, together with the other one-shot actions of
/// its group, in one statement: however often and from however many bot processes a
/// confirmation is pressed, exactly one caller gets it, and its Cancel stops working too.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn take_action(
    db: &Db,
    token: &str,
    chat_id: i64,
    user_id: i64,
) -> Result<Option<Action>, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "WITH used AS (
                 DELETE FROM bot_actions
                 WHERE token = $1 AND chat_id = $2 AND user_id = $3 AND one_shot
                   AND expires_at >= now()
                 RETURNING action, grp
             ), siblings AS (
                 DELETE FROM bot_actions b USING used
                 WHERE b.grp = used.grp AND b.token <> $1
             )
             SELECT action FROM used
             UNION ALL
             SELECT action FROM bot_actions
             WHERE token = $1 AND chat_id = $2 AND user_id = $3 AND NOT one_shot
               AND expires_at >= now()",
            &[&token, &chat_id, &user_id],
        )
        .await
        .map_err(Error::query("read a button action"))?;
    row.map(|r| {
        serde_json::from_value(r.get(0))
            .map_err(|e| Error::Corrupt(format!("stored button action: {e}")))
    })
    .transpose()
}

/// Makes the conversation in `chat_id` with `user_id` wait for `state`.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn set_awaiting(
    db: &Db,
    chat_id: i64,
    user_id: i64,
    state: &Awaiting,
) -> Result<(), Error> {
    let json = serde_json::to_value(state).map_err(|e| Error::Corrupt(e.to_string()))?;
    let client = db.pool.get().await?;
    client
        .execute(
            "INSERT INTO bot_dialogues (chat_id, user_id, state) VALUES ($1, $2, $3)
             ON CONFLICT (chat_id, user_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
            &[&chat_id, &user_id, &json],
        )
        .await
        .map_err(Error::query("store the conversation state"))?;
    Ok(())
}

/// Takes (reads and clears) what the conversation waits for, if anything.
///
/// errors: `Error::Query`/`Error::Pool` on database failure.
pub async fn take_awaiting(db: &Db, chat_id: i64, user_id: i64) -> Result<Option<Awaiting>, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "DELETE FROM bot_dialogues WHERE chat_id = $1 AND user_id = $2 RETURNING state",
            &[&chat_id, &user_id],
        )
        .await
        .map_err(Error::query("read the conversation state"))?;
    row.map(|r| {
        serde_json::from_value(r.get(0))
            .map_err(|e| Error::Corrupt(format!("stored conversation state: {e}")))
    })
    .transpose()
}
