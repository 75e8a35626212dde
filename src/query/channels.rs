//! Channel lookup: `@handle` or id to the channel identity, through the handle history.

use super::Error;
use crate::db::Db;
use crate::domain::{ChannelId, ChannelRef};

/// A known channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Channel {
    /// Channel identity.
    #[serde(serialize_with = "ser_id")]
    pub id: ChannelId,
    /// Current handle without `@`, if any.
    pub handle: Option<String>,
    /// Current title, if any.
    pub title: Option<String>,
}

fn ser_id<S: serde::Serializer>(id: &ChannelId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(id.get())
}

impl Channel {
    /// `@handle` when known, else the id.
    pub fn label(&self) -> String {
        match &self.handle {
            Some(h) => format!("@{h}"),
            None => self.id.to_string(),
        }
    }
}

/// Resolves a channel reference. A handle matches the channel's current handle first, then
/// any handle it had (renames); a handle that belonged to several channels is ambiguous.
///
/// errors: `Error::NotFound` if the channel was never added; `Error::Ambiguous` for a
/// handle shared by several channel ids.
pub async fn resolve(db: &Db, r: &ChannelRef) -> Result<Channel, Error> {
    let client = db.pool.get().await?;
    let db_err = |step| move |source| Error::Db { step, source };
    let ids: Vec<i64> = match r {
        ChannelRef::Id(id) => vec![id.get()],
        ChannelRef::Handle(h) => {
            let current: Vec<i64> = client
                .query(
                    "SELECT channel_id FROM channels WHERE handle = $1",
                    &[&h.as_str()],
                )
                .await
                .map_err(db_err("look up a handle"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if current.is_empty() {
                client
                    .query(
                        "SELECT channel_id, max(last_seen) AS seen FROM channel_names WHERE handle = $1
                         GROUP BY channel_id ORDER BY seen DESC",
                        &[&h.as_str()],
                    )
                    .await
                    .map_err(db_err("look up a former handle"))?
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            } else {
                current
            }
        }
    };
    if ids.len() > 1 {
        return Err(Error::Ambiguous {
            handle: r.to_string(),
            ids: ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let Some(&id) = ids.first() else {
        return Err(Error::NotFound(r.to_string()));
    };
    let row = client
        .query_opt(
            "SELECT channel_id, handle, title FROM channels WHERE channel_id = $1",
            &[&id],
        )
        .await
        .map_err(db_err("read a channel"))?
        .ok_or_else(|| Error::NotFound(r.to_string()))?;
    Ok(Channel {
        id: ChannelId::new(row.get(0)).map_err(|_| Error::NotFound(r.to_string()))?,
        handle: row.get(1),
        title: row.get(2),
    })
}
