//! Telegram user API (MTProto): the mapping from MTProto objects to samples.
//!
//! The live client (grammers; cargo feature `mtproto`, module `live`) reads
//! `channels.getFullChannel` and `messages.getHistory` and converts the answers into the
//! recorded forms below, which keep the TL constructor and field names. The mapping to
//! samples (and to the forwards, @mentions and t.me links of each post) is plain code over
//! those forms, tested with recorded objects (`tests/fixtures/sources/mtproto/`), because the
//! protocol cannot be served locally.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SourceError;
use crate::domain::ChannelId;
use crate::ingest::{MemberSample, PostSample, Record};

#[cfg(feature = "mtproto")]
pub(crate) mod live;
mod refs;

pub use refs::mentions;

/// `channelFull` (from `messages.chatFull.full_chat`), the fields tgpulse reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelFull {
    /// Bare channel id.
    pub id: i64,
    /// Subscribers; absent when the channel hides it from this account.
    #[serde(default)]
    pub participants_count: Option<i32>,
}

/// `messageReplies`: comment count of a post with a linked discussion group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageReplies {
    /// Comments.
    pub replies: i32,
}

/// `reactionCount`: one reaction type and its count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionCount {
    /// Users who reacted so (paid reactions included).
    pub count: i32,
}

/// `messageReactions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageReactions {
    /// Per reaction type.
    pub results: Vec<ReactionCount>,
}

/// `Peer`: a user, a basic group or a channel (supergroups are channels too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "_")]
pub enum Peer {
    /// `peerChannel`.
    #[serde(rename = "peerChannel")]
    Channel {
        /// Bare channel id.
        channel_id: i64,
    },
    /// `peerUser`.
    #[serde(rename = "peerUser")]
    User {
        /// User id.
        user_id: i64,
    },
    /// `peerChat`.
    #[serde(rename = "peerChat")]
    Chat {
        /// Basic group id.
        chat_id: i64,
    },
}

/// `messageFwdHeader`: where a forwarded post came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFwdHeader {
    /// The original sender; absent when a user hid their account (then `from_name` is set).
    #[serde(default)]
    pub from_id: Option<Peer>,
    /// Name of a sender who hid their account.
    #[serde(default)]
    pub from_name: Option<String>,
    /// Publication time of the original, unix seconds.
    #[serde(default)]
    pub date: i32,
    /// Message number of the original post, when it came from a channel.
    #[serde(default)]
    pub channel_post: Option<i32>,
}

/// A `MessageEntity` of the kinds tgpulse reads; offsets and lengths count **UTF-16 code
/// units** of the message text (core.telegram.org/api/entities). Every other kind
/// (formatting, `messageEntityMentionName`, which names a user by id) is `Other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "_")]
pub enum MessageEntity {
    /// `messageEntityMention`: an `@username` in the text.
    #[serde(rename = "messageEntityMention")]
    Mention {
        /// Start, UTF-16 code units.
        offset: i32,
        /// Length, UTF-16 code units.
        length: i32,
    },
    /// `messageEntityUrl`: a URL written out in the text.
    #[serde(rename = "messageEntityUrl")]
    Url {
        /// Start, UTF-16 code units.
        offset: i32,
        /// Length, UTF-16 code units.
        length: i32,
    },
    /// `messageEntityTextUrl`: text linking to `url`.
    #[serde(rename = "messageEntityTextUrl")]
    TextUrl {
        /// Start, UTF-16 code units.
        offset: i32,
        /// Length, UTF-16 code units.
        length: i32,
        /// The link target.
        url: String,
    },
    /// Any other entity.
    #[serde(other)]
    Other,
}

/// A channel post (`message`), the fields tgpulse reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Message number inside the channel.
    pub id: i32,
    /// Publication time, unix seconds.
    pub date: i32,
    /// Views at read time; absent for posts without view counting.
    #[serde(default)]
    pub views: Option<i32>,
    /// Forwards at read time.
    #[serde(default)]
    pub forwards: Option<i32>,
    /// Comments, when the channel has a discussion group.
    #[serde(default)]
    pub replies: Option<MessageReplies>,
    /// Reactions, when enabled.
    #[serde(default)]
    pub reactions: Option<MessageReactions>,
    /// Text (the caption of a media post); entities index into it.
    #[serde(default)]
    pub message: String,
    /// Set when the post is a forward.
    #[serde(default)]
    pub fwd_from: Option<MessageFwdHeader>,
    /// Entities of `message` (only the kinds above are kept).
    #[serde(default)]
    pub entities: Vec<MessageEntity>,
}

/// One element of `messages.channelMessages.messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "_")]
pub enum AnyMessage {
    /// A post.
    #[serde(rename = "message")]
    Message(Message),
    /// Service messages (pins, title changes) carry no counters.
    #[serde(rename = "messageService")]
    Service {
        /// Message number.
        id: i32,
    },
    /// A deleted message.
    #[serde(rename = "messageEmpty")]
    Empty {
        /// Message number.
        id: i32,
    },
}

/// Maps `channelFull` to a member sample observed at `observed_at`.
///
/// errors: `SourceError::Malformed` when `participants_count` is absent (hidden for this account).
pub fn member_sample(
    channel: ChannelId,
    full: &ChannelFull,
    observed_at: DateTime<Utc>,
) -> Result<Record, SourceError> {
    let members = full.participants_count.ok_or_else(|| {
        SourceError::Malformed(format!(
            "channels.getFullChannel: channel {} has no participants_count",
            full.id
        ))
    })?;
    Ok(Record::Member(MemberSample {
        channel_id: channel,
        observed_at,
        members: i64::from(members),
        post_count: None,
    }))
}

/// Maps a page of history to post samples: posts published at or after `since`, read at
/// `observed_at`. Service and empty messages are skipped. Reactions are summed over types.
///
/// errors: `SourceError::Malformed` for a date out of range.
pub fn post_samples(
    channel: ChannelId,
    messages: &[AnyMessage],
    since: DateTime<Utc>,
    observed_at: DateTime<Utc>,
) -> Result<Vec<Record>, SourceError> {
    let mut out = Vec::new();
    for m in messages {
        let AnyMessage::Message(m) = m else { continue };
        let published_at = publication_time(m)?;
        if published_at < since {
            continue;
        }
        out.push(Record::Post(PostSample {
            channel_id: channel,
            post_id: i64::from(m.id),
            published_at,
            observed_at,
            views: m.views.map(i64::from),
            forwards: m.forwards.map(i64::from),
            replies: m.replies.as_ref().map(|r| i64::from(r.replies)),
            reactions: m
                .reactions
                .as_ref()
                .map(|r| r.results.iter().map(|c| i64::from(c.count)).sum()),
        }));
    }
    Ok(out)
}

/// Publication time of `m`.
///
/// errors: `SourceError::Malformed` for a date out of range.
fn publication_time(m: &Message) -> Result<DateTime<Utc>, SourceError> {
    DateTime::from_timestamp(i64::from(m.date), 0).ok_or_else(|| {
        SourceError::Malformed(format!("message {}: date {} out of range", m.id, m.date))
    })
}

/// Oldest publication time in a page (history pages go newest first), to know when to stop.
pub fn oldest_date(messages: &[AnyMessage]) -> Option<i32> {
    messages
        .iter()
        .filter_map(|m| match m {
            AnyMessage::Message(m) => Some(m.date),
            _ => None,
        })
        .min()
}

/// `FLOOD_WAIT_X` (and `SLOWMODE_WAIT_X`, `FLOOD_PREMIUM_WAIT_X`) as a rate-limit error.
pub fn flood_wait(error_name: &str, seconds: Option<u32>) -> Option<SourceError> {
    let waits = ["FLOOD_WAIT", "FLOOD_PREMIUM_WAIT", "SLOWMODE_WAIT"];
    waits.iter().any(|w| error_name.starts_with(w)).then(|| {
        let secs = seconds.or_else(|| error_name.rsplit('_').next().and_then(|n| n.parse().ok()));
        SourceError::RateLimited(std::time::Duration::from_secs(u64::from(secs.unwrap_or(5))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!(
            "{}/tests/fixtures/sources/mtproto/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn recorded_channel_full_maps_to_a_member_sample() {
        let full: ChannelFull = fixture("channel_full.json");
        let id = ChannelId::new(full.id).unwrap();
        let t = DateTime::from_timestamp(1_747_820_000, 0).unwrap();
        let Record::Member(m) = member_sample(id, &full, t).unwrap() else {
            panic!("not a member sample")
        };
        assert_eq!(
            (m.channel_id.get(), m.members, m.observed_at),
            (1_735_260_148, 12_351, t)
        );
        let hidden = ChannelFull {
            id: full.id,
            participants_count: None,
        };
        assert!(matches!(
            member_sample(id, &hidden, t),
            Err(SourceError::Malformed(_))
        ));
    }

    #[test]
    fn recorded_history_maps_posts_and_skips_service_empty_and_old() {
        let page: Vec<AnyMessage> = fixture("history.json");
        let id = ChannelId::new(1_735_260_148).unwrap();
        let since = DateTime::from_timestamp(1_747_700_000, 0).unwrap();
        let now = DateTime::from_timestamp(1_747_820_000, 0).unwrap();
        let posts: Vec<PostSample> = post_samples(id, &page, since, now)
            .unwrap()
            .into_iter()
            .map(|r| match r {
                Record::Post(p) => p,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let ids: Vec<i64> = posts.iter().map(|p| p.post_id).collect();
        assert_eq!(
            ids,
            [1877, 1876, 1875, 1874, 1872],
            "service, empty and old messages are skipped"
        );
        let p = &posts[3];
        assert_eq!(
            (p.post_id, p.views, p.forwards),
            (1874, Some(2171), Some(14))
        );
        assert_eq!(p.replies, Some(9));
        assert_eq!(p.reactions, Some(62), "40 + 17 + 5 paid");
        assert_eq!(p.published_at.timestamp(), 1_747_814_700);
        assert_eq!(p.observed_at, now);
        let q = &posts[4];
        assert_eq!(
            (q.post_id, q.views, q.replies, q.reactions),
            (1872, Some(4995), None, None)
        );
        assert_eq!(oldest_date(&page), Some(1_747_000_000));
    }

    #[test]
    fn flood_waits_become_rate_limits() {
        let d = |s| SourceError::RateLimited(std::time::Duration::from_secs(s));
        assert_eq!(flood_wait("FLOOD_WAIT", Some(31)), Some(d(31)));
        assert_eq!(flood_wait("FLOOD_WAIT_12", None), Some(d(12)));
        assert_eq!(flood_wait("SLOWMODE_WAIT", Some(3)), Some(d(3)));
        assert_eq!(flood_wait("CHANNEL_PRIVATE", None), None);
    }
}
