//! The admin bot's state in PostgreSQL (migration `0005_bot.sql`): viewer roles, what each
//! inline button does, and conversations waiting for the user's next message. Kept out of the
//! bot module so that the bot holds no SQL; everything here survives a restart. Button expiry
//! is checked against the instant the caller passes in (the service clock), never SQL `now()`.

pub mod export_quota;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::domain::{ChannelId, Days};
use crate::i18n::Lang;

/// Errors of the bot's state; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No pooled database connection.
    #[error("failed to get a database connection")]
    Connect(#[from] deadpool_postgres::PoolError),
    /// Reading the viewer role failed.
    #[error("failed to read the viewer role of user {user}")]
    ReadRole {
        /// Telegram user id.
        user: i64,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Granting or revoking the viewer role failed.
    #[error("failed to change the viewer role of user {user}")]
    ChangeRole {
        /// Telegram user id.
        user: i64,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Reading or storing a user's language failed.
    #[error("failed to read or store the language of user {user}")]
    Language {
        /// Telegram user id.
        user: i64,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Listing the viewers failed.
    #[error("failed to list the viewers")]
    ListViewers(#[source] tokio_postgres::Error),
    /// Storing the actions of a message's buttons failed.
    #[error("failed to store {count} button actions")]
    StoreActions {
        /// Buttons in the message.
        count: usize,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Reading (and for one-shot buttons, using up) a button's action failed.
    #[error("failed to take a button action")]
    TakeAction(#[source] tokio_postgres::Error),
    /// Storing what a conversation waits for failed.
    #[error("failed to store the conversation state")]
    StoreDialogue(#[source] tokio_postgres::Error),
    /// Reading what a conversation waits for failed.
    #[error("failed to take the conversation state")]
    TakeDialogue(#[source] tokio_postgres::Error),
    /// A stored action or conversation state does not decode (a row written by another
    /// version).
    #[error("stored {what} does not decode")]
    Decode {
        /// `button action` or `conversation state`.
        what: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    v: serde_json::Value,
) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|source| Error::Decode { what, source })
}

fn encode(v: &impl Serialize) -> serde_json::Value {
    // Actions and states are plain enums of numbers: serialising them cannot fail.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

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
    /// The views chart of a channel (the "Views" button under `/stats`).
    Views {
        /// Channel id.
        channel: i64,
        /// Window in local days.
        days: u32,
    },
    /// The best-time heatmap of a channel (the "Best time" button under `/stats`).
    BestTime {
        /// Channel id.
        channel: i64,
        /// Window in local days.
        days: u32,
    },
    /// The top posts of a channel by reach and engagement (the "Top posts" button).
    TopPosts {
        /// Channel id.
        channel: i64,
        /// Window in local days.
        days: u32,
    },
    /// Mutes a channel's alert notifications (the button under an alert; admins).
    Mute {
        /// Channel id.
        channel: i64,
        /// For how many days.
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
            | Self::Export { channel, days }
            | Self::Views { channel, days }
            | Self::BestTime { channel, days }
            | Self::TopPosts { channel, days } => {
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
/// errors: `Error::ReadRole`, `Error::Connect`.
pub async fn is_viewer(db: &Db, user: i64) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt("SELECT 1 FROM bot_viewers WHERE user_id = $1", &[&user])
        .await
        .map_err(|source| Error::ReadRole { user, source })?;
    Ok(row.is_some())
}

/// A user's language: the one chosen with `/lang`, else the one of the `language_code`
/// Telegram sent with the update (`code`), which is remembered for the messages the bot sends
/// on its own. One statement; it writes only when the code changed.
///
/// errors: `Error::Language`, `Error::Connect`.
pub async fn language(db: &Db, user: i64, code: Option<&str>) -> Result<Lang, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "WITH seen AS (
                 INSERT INTO bot_languages (user_id, telegram_code) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE
                     SET telegram_code = EXCLUDED.telegram_code, updated_at = now()
                     WHERE bot_languages.telegram_code IS DISTINCT FROM EXCLUDED.telegram_code
                 RETURNING chosen)
             SELECT chosen FROM seen
             UNION ALL SELECT chosen FROM bot_languages WHERE user_id = $1
             LIMIT 1",
            &[&user, &code],
        )
        .await
        .map_err(|source| Error::Language { user, source })?;
    let chosen: Option<String> = row.and_then(|r| r.get(0));
    Ok(Lang::of_user(chosen.as_deref(), code))
}

/// The language of the messages the bot sends to `user` on its own (alerts, reports): the
/// chosen one, else the one of the last `language_code` seen, else English.
///
/// errors: `Error::Language`, `Error::Connect`.
pub async fn language_of(db: &Db, user: i64) -> Result<Lang, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT chosen, telegram_code FROM bot_languages WHERE user_id = $1",
            &[&user],
        )
        .await
        .map_err(|source| Error::Language { user, source })?;
    Ok(match row {
        Some(r) => {
            let (chosen, code): (Option<String>, Option<String>) = (r.get(0), r.get(1));
            Lang::of_user(chosen.as_deref(), code.as_deref())
        }
        None => Lang::En,
    })
}

/// Stores the language `user` chose with `/lang` (`None`: follow Telegram's again).
///
/// errors: `Error::Language`, `Error::Connect`.
pub async fn choose_language(db: &Db, user: i64, lang: Option<Lang>) -> Result<(), Error> {
    let client = db.pool.get().await?;
    client
        .execute(
            "INSERT INTO bot_languages (user_id, chosen) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET chosen = EXCLUDED.chosen, updated_at = now()",
            &[&user, &lang.map(Lang::code)],
        )
        .await
        .map_err(|source| Error::Language { user, source })?;
    Ok(())
}

/// Grants the read-only viewer role. Returns whether it is new.
///
/// errors: `Error::ChangeRole`, `Error::Connect`.
pub async fn grant_viewer(db: &Db, user: i64, by: i64) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let n = client
        .execute(
            "INSERT INTO bot_viewers (user_id, granted_by) VALUES ($1, $2)
             ON CONFLICT (user_id) DO NOTHING",
            &[&user, &by],
        )
        .await
        .map_err(|source| Error::ChangeRole { user, source })?;
    Ok(n > 0)
}

/// Revokes the viewer role. Returns whether the user had it.
///
/// errors: `Error::ChangeRole`, `Error::Connect`.
pub async fn revoke_viewer(db: &Db, user: i64) -> Result<bool, Error> {
    let client = db.pool.get().await?;
    let n = client
        .execute("DELETE FROM bot_viewers WHERE user_id = $1", &[&user])
        .await
        .map_err(|source| Error::ChangeRole { user, source })?;
    Ok(n > 0)
}

/// The viewers: (user id, granted by, granted at), oldest first.
///
/// errors: `Error::ListViewers`, `Error::Connect`.
pub async fn viewers(db: &Db) -> Result<Vec<(i64, i64, DateTime<Utc>)>, Error> {
    let client = db.pool.get().await?;
    let rows = client
        .query(
            "SELECT user_id, granted_by, granted_at FROM bot_viewers ORDER BY granted_at",
            &[],
        )
        .await
        .map_err(Error::ListViewers)?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Stores what the buttons of one message do, in one statement, and returns their tokens
/// (16 random hex digits each, in the order of `actions`). With `one_shot`, the buttons form
/// a group whose actions are used up together (the Yes and Cancel of one confirmation).
/// Buttons work for [`ACTION_TTL`] after `now`; actions expired at `now` are deleted on the way.
///
/// errors: `Error::StoreActions`, `Error::Connect`.
pub async fn put_actions(
    db: &Db,
    chat_id: i64,
    user_id: i64,
    actions: &[Action],
    one_shot: bool,
    now: DateTime<Utc>,
) -> Result<Vec<String>, Error> {
    let tokens: Vec<String> = actions.iter().map(|_| new_token()).collect();
    let json: Vec<serde_json::Value> = actions.iter().map(encode).collect();
    let group = one_shot.then(new_token);
    let expires_at = now + ACTION_TTL;
    let client = db.pool.get().await?;
    client
        .execute(
            "WITH gone AS (DELETE FROM bot_actions WHERE expires_at < $1::timestamptz)
             INSERT INTO bot_actions (token, chat_id, user_id, action, one_shot, grp, expires_at)
             SELECT b.token, $2::bigint, $3::bigint, b.action, $4::boolean, $5::text, $6::timestamptz
             FROM unnest($7::text[], $8::jsonb[]) AS b(token, action)",
            &[
                &now,
                &chat_id,
                &user_id,
                &one_shot,
                &group,
                &expires_at,
                &tokens,
                &json,
            ],
        )
        .await
        .map_err(|source| Error::StoreActions {
            count: actions.len(),
            source,
        })?;
    Ok(tokens)
}

/// A fresh random token: 16 hex digits.
pub fn new_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The action behind a button token pressed by `user_id` in `chat_id`; `None` for unknown,
/// expired (at `now`) or used-up tokens, and for tokens shown to someone else (which stay usable by
/// their owner).
///
/// A one-shot action is deleted as it is read, together with the other one-shot actions of
/// its group, in one statement: however often and from however many bot processes a
/// confirmation is pressed, exactly one caller gets it, and its Cancel stops working too.
///
/// errors: `Error::TakeAction`, `Error::Decode`, `Error::Connect`.
pub async fn take_action(
    db: &Db,
    token: &str,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Action>, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "WITH used AS (
                 DELETE FROM bot_actions
                 WHERE token = $1 AND chat_id = $2 AND user_id = $3 AND one_shot
                   AND expires_at >= $4
                 RETURNING action, grp
             ), siblings AS (
                 DELETE FROM bot_actions b USING used
                 WHERE b.grp = used.grp AND b.token <> $1
             )
             SELECT action FROM used
             UNION ALL
             SELECT action FROM bot_actions
             WHERE token = $1 AND chat_id = $2 AND user_id = $3 AND NOT one_shot
               AND expires_at >= $4",
            &[&token, &chat_id, &user_id, &now],
        )
        .await
        .map_err(Error::TakeAction)?;
    row.map(|r| decode("button action", r.get(0))).transpose()
}

/// How long a conversation waits for the user's next message. After it, the next message is
/// read as if nothing waited, so an old "Compare with…" cannot capture an unrelated message.
pub const DIALOGUE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Makes the conversation in `chat_id` with `user_id` wait for `state`, from `now` (the bot's
/// clock) for [`DIALOGUE_TTL`].
///
/// errors: `Error::StoreDialogue`, `Error::Connect`.
pub async fn set_awaiting(
    db: &Db,
    chat_id: i64,
    user_id: i64,
    state: &Awaiting,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let json = encode(state);
    let client = db.pool.get().await?;
    client
        .execute(
            "INSERT INTO bot_dialogues (chat_id, user_id, state, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (chat_id, user_id) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
            &[&chat_id, &user_id, &json, &now],
        )
        .await
        .map_err(Error::StoreDialogue)?;
    Ok(())
}

/// Takes (reads and clears) what the conversation waits for, if anything; a state older than
/// [`DIALOGUE_TTL`] at `now` is cleared and not returned.
///
/// errors: `Error::TakeDialogue`, `Error::Decode`, `Error::Connect`.
pub async fn take_awaiting(
    db: &Db,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Awaiting>, Error> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt(
            "DELETE FROM bot_dialogues WHERE chat_id = $1 AND user_id = $2
             RETURNING state, updated_at",
            &[&chat_id, &user_id],
        )
        .await
        .map_err(Error::TakeDialogue)?;
    let Some(row) = row else { return Ok(None) };
    let since: DateTime<Utc> = row.get(1);
    if now - since > DIALOGUE_TTL {
        return Ok(None);
    }
    decode("conversation state", row.get(0)).map(Some)
}
