//! The forward columns of telegram-posts: a post forwarded from a channel becomes a
//! `forward` mention of that channel.

use chrono::{DateTime, Utc};

use super::{Col, Reject, optional, reject, title_cell};
use crate::domain::{ChannelId, Handle};
use crate::import::parse;
use crate::import::reader::{Input, RowView};
use crate::ingest::{Mention, MentionKind};

/// The forward columns of telegram-posts (Telethon's `Message.fwd_from`), all optional:
/// `is_forward` (`0`/`1` or `true`/`false`), `forward_msg_from_peer_type` (`PeerChannel`,
/// `PeerUser`, `PeerChat` in the real file; `channel`, `user`, `chat` are accepted too, in
/// any case), `forward_msg_from_peer_id` (the bare or `-100…` id, often written as a float
/// such as `1505034921.0`) and `forward_msg_from_peer_name` (the channel's username, or a
/// title). Read when the file has the peer type and the peer id or name.
///
/// A row gives a mention when `is_forward` is true (or the file has no `is_forward`) and the
/// peer type is a channel; forwards from users and chats, and forwards whose sender is
/// hidden (no peer type), give none. A channel forward without peer id and name gives none
/// either (there is no channel to record), but its post is imported. An unknown peer type,
/// an `is_forward` that is not a yes/no value, or a channel peer id that is not a channel id
/// rejects the row like any other malformed cell. `forward_msg_date` (the original post's
/// time, without a zone in the real file) is not read: a mention records the forwarding
/// post's time.
pub(super) struct ForwardCols {
    is_forward: Option<Col>,
    peer_type: Col,
    peer_id: Option<Col>,
    peer_name: Option<Col>,
}

impl ForwardCols {
    pub(super) fn detect(input: &Input) -> Option<Self> {
        let peer_type = optional(input, "forward_msg_from_peer_type")?;
        let peer_id = optional(input, "forward_msg_from_peer_id");
        let peer_name = optional(input, "forward_msg_from_peer_name");
        if peer_id.is_none() && peer_name.is_none() {
            return None;
        }
        Some(Self {
            is_forward: optional(input, "is_forward"),
            peer_type,
            peer_id,
            peer_name,
        })
    }

    /// Appends the columns read to `v`.
    pub(super) fn needed(&self, v: &mut Vec<usize>) {
        v.push(self.peer_type.idx);
        for c in [&self.is_forward, &self.peer_id, &self.peer_name]
            .into_iter()
            .flatten()
        {
            v.push(c.idx);
        }
    }

    /// The forward mention of the post `(channel_id, post_id, published_at)` in `row`, if
    /// the row is a forward from a channel.
    ///
    /// errors: the column and reason of a malformed forward cell (see [`ForwardCols`]).
    pub(super) fn mention(
        &self,
        row: &dyn RowView,
        channel_id: ChannelId,
        post_id: i64,
        published_at: DateTime<Utc>,
    ) -> Result<Option<Mention>, Reject> {
        if let Some(c) = &self.is_forward
            && !parse::flag(row.get(c.idx)).map_err(|e| reject(c.name, e))?
        {
            return Ok(None);
        }
        let Some(peer) = parse::text(row.get(self.peer_type.idx)) else {
            return Ok(None);
        };
        if !is_channel_peer(&peer).map_err(|e| reject(self.peer_type.name, e))? {
            return Ok(None);
        }
        let source_channel_id = match &self.peer_id {
            Some(c) => parse::channel_id(row.get(c.idx)).map_err(|e| reject(c.name, e))?,
            None => None,
        };
        let name = match &self.peer_name {
            Some(c) => title_cell(row.get(c.idx), c.name)?,
            None => None,
        };
        // A username is stored as a handle (lower-case, no `@`), anything else as a title.
        let source_name = name.map(|n| match n.parse::<Handle>() {
            Ok(h) => h.as_str().to_owned(),
            Err(_) => n,
        });
        if source_channel_id.is_none() && source_name.is_none() {
            return Ok(None);
        }
        Ok(Some(Mention {
            channel_id,
            post_id,
            published_at,
            kind: MentionKind::Forward,
            source_channel_id,
            source_post_id: None,
            source_name,
        }))
    }
}

/// Whether a forward peer type names a channel (Telethon's `PeerChannel`, or `channel`);
/// `false` for users and basic groups.
///
/// errors (as text): any other value.
fn is_channel_peer(peer: &str) -> Result<bool, String> {
    let lower = peer.trim().to_ascii_lowercase();
    match lower.strip_prefix("peer").unwrap_or(&lower) {
        "channel" => Ok(true),
        "user" | "chat" => Ok(false),
        _ => Err(format!(
            "unknown forward peer type `{peer}`: expected PeerChannel, PeerUser or PeerChat \
             (or channel, user, chat)"
        )),
    }
}
