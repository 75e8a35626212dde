//! The channels a post refers to: forwards (`fwd_from`), `@mentions` and `t.me` links in its
//! entities, as `Record::Mention`s (see [`mentions`]).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{AnyMessage, Message, MessageEntity, Peer, publication_time};
use crate::collect::SourceError;
use crate::domain::{ChannelId, Handle};
use crate::ingest::{Mention, MentionKind, Record};

/// Maps a page of history to the channels its posts refer to: one `Record::Mention` per post
/// published at or after `since` and other channel (service and empty messages are skipped):
///
/// - `Forward` when `fwd_from.from_id` is a channel (`source_channel_id`, and `source_post_id`
///   from `channel_post`). Forwards from users or groups give nothing, and the entities of any
///   forwarded post are not read: that text was written by the original sender.
/// - `Mention` for each distinct `@handle` (`messageEntityMention`; `source_name` lower-case,
///   without `@`). A mention may name a user, a bot or a group just as well: without a lookup
///   per name they cannot be told apart, so every well-formed handle is kept.
/// - `Link` for each `t.me` / `telegram.me` / `telegram.dog` address (`messageEntityUrl`,
///   `messageEntityTextUrl`) naming a public handle (`t.me/name`, `t.me/s/name`,
///   `name.t.me`; `source_post_id` from `t.me/name/123`) or a private channel
///   (`t.me/c/<id>/<post>`: `source_channel_id`). Invite, sticker, share, proxy and other
///   service addresses give nothing.
///
/// `channel` itself (its id, or `own` as a handle) is never recorded as the other channel.
/// One record per post, kind and other channel (the key of the `mentions` table): the first
/// post number seen is kept. Entity ranges outside the text, or splitting a UTF-16 surrogate
/// pair, are skipped.
///
/// errors: `SourceError::Malformed` for a date out of range.
pub fn mentions(
    channel: ChannelId,
    own: Option<&Handle>,
    messages: &[AnyMessage],
    since: DateTime<Utc>,
) -> Result<Vec<Record>, SourceError> {
    let mut out = Vec::new();
    for m in messages {
        let AnyMessage::Message(m) = m else { continue };
        let published_at = publication_time(m)?;
        if published_at < since {
            continue;
        }
        let mut seen = HashSet::new();
        for r in references(m) {
            let (id, name) = match &r.to {
                OtherChannel::Id(id) if *id == channel => continue,
                OtherChannel::Name(h) if Some(h) == own => continue,
                OtherChannel::Id(id) => (Some(*id), None),
                OtherChannel::Name(h) => (None, Some(h.as_str().to_owned())),
            };
            if !seen.insert((r.kind, id, name.clone())) {
                continue;
            }
            out.push(Record::Mention(Mention {
                channel_id: channel,
                post_id: i64::from(m.id),
                published_at,
                kind: r.kind,
                source_channel_id: id,
                source_post_id: r.post,
                source_name: name,
            }));
        }
    }
    Ok(out)
}

/// The other channel of a reference: its id or its handle.
#[derive(Debug, Clone, PartialEq)]
enum OtherChannel {
    Id(ChannelId),
    Name(Handle),
}

/// One reference of a post to another channel, before de-duplication.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    kind: MentionKind,
    to: OtherChannel,
    post: Option<i64>,
}

/// Every reference of `m`: a forward gives its `Forward` only, any other post its entities'
/// mentions and links in text order.
fn references(m: &Message) -> Vec<Reference> {
    if let Some(fwd) = &m.fwd_from {
        let from = match &fwd.from_id {
            Some(Peer::Channel { channel_id }) => ChannelId::new(*channel_id).ok(),
            _ => None,
        };
        return from
            .map(|id| Reference {
                kind: MentionKind::Forward,
                to: OtherChannel::Id(id),
                post: fwd.channel_post.map(i64::from).filter(|&p| p > 0),
            })
            .into_iter()
            .collect();
    }
    if m.entities.is_empty() {
        return Vec::new();
    }
    let utf16: Vec<u16> = m.message.encode_utf16().collect();
    // TL offsets and lengths count UTF-16 code units, not bytes or chars.
    let text = |offset: i32, length: i32| -> Option<String> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(length).ok()?)?;
        String::from_utf16(utf16.get(start..end)?).ok()
    };
    let link = |url: &str| {
        tme_link(url).map(|(to, post)| Reference {
            kind: MentionKind::Link,
            to,
            post,
        })
    };
    m.entities
        .iter()
        .filter_map(|e| match e {
            MessageEntity::Mention { offset, length } => {
                let t = text(*offset, *length)?;
                let handle: Handle = t.strip_prefix('@')?.parse().ok()?;
                Some(Reference {
                    kind: MentionKind::Mention,
                    to: OtherChannel::Name(handle),
                    post: None,
                })
            }
            MessageEntity::Url { offset, length } => link(text(*offset, *length)?.as_str()),
            MessageEntity::TextUrl { url, .. } => link(url.as_str()),
            MessageEntity::Other => None,
        })
        .collect()
}

/// First path segments of `t.me` addresses that are not channel handles (invites, stickers,
/// themes, folders, sharing, proxies, logins, payments, boosts, gift codes).
const NOT_HANDLES: [&str; 15] = [
    "joinchat",
    "addstickers",
    "addemoji",
    "addtheme",
    "addlist",
    "setlanguage",
    "share",
    "proxy",
    "socks",
    "login",
    "invoice",
    "confirmphone",
    "contact",
    "boost",
    "giftcode",
];

/// The channel (and post) a `t.me` address names: `[https://][www.]t.me/name[/post]`
/// (also `telegram.me`, `telegram.dog`, `t.me/s/name[/post]` and `name.t.me[/post]`) gives
/// the handle; `t.me/c/<id>[/<thread>]/<post>` the private channel's id. Query and fragment are
/// ignored. `None` for other hosts, invites (`joinchat`, `+…`) and other service paths.
fn tme_link(url: &str) -> Option<(OtherChannel, Option<i64>)> {
    let url = url.trim().to_ascii_lowercase();
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .unwrap_or(url.as_str());
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let rest = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let post = |s: Option<&str>| s.and_then(|p| p.parse::<i64>().ok()).filter(|&p| p > 0);
    let first = match host {
        "t.me" | "telegram.me" | "telegram.dog" => segments.next()?,
        _ => {
            let name = host.strip_suffix(".t.me")?;
            return Some((
                OtherChannel::Name(name.parse().ok()?),
                post(segments.next()),
            ));
        }
    };
    match first {
        "c" => {
            let id = ChannelId::new(segments.next()?.parse().ok()?).ok()?;
            Some((OtherChannel::Id(id), post(segments.next_back())))
        }
        "s" => {
            let name: Handle = segments.next()?.parse().ok()?;
            Some((OtherChannel::Name(name), post(segments.next())))
        }
        f if f.starts_with('+') || NOT_HANDLES.contains(&f) => None,
        f => Some((OtherChannel::Name(f.parse().ok()?), post(segments.next()))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fixture;
    use super::*;

    type Row = (i64, MentionKind, Option<i64>, Option<i64>, Option<String>);

    fn rows(records: Vec<Record>) -> Vec<Row> {
        records
            .into_iter()
            .map(|r| match r {
                Record::Mention(m) => (
                    m.post_id,
                    m.kind,
                    m.source_channel_id.map(ChannelId::get),
                    m.source_post_id,
                    m.source_name,
                ),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn recorded_history_maps_forwards_mentions_and_links_once_each() {
        use MentionKind::{Forward, Link, Mention};
        let page: Vec<AnyMessage> = fixture("history.json");
        let id = ChannelId::new(1_735_260_148).unwrap();
        let own: Handle = "pulse_news".parse().unwrap();
        let since = DateTime::from_timestamp(1_747_700_000, 0).unwrap();
        let records = mentions(id, Some(&own), &page, since).unwrap();
        let Some(Record::Mention(first)) = records.first() else {
            panic!("no mention")
        };
        assert_eq!(
            (first.channel_id, first.published_at.timestamp()),
            (id, 1_747_819_800)
        );
        let name = |n: &str| Some(n.to_owned());
        // 1877 forwards a channel's post (its own @mention is that channel's text); 1876
        // mentions @Media_Lab twice (one row) after Cyrillic and an emoji with a skin tone (4
        // UTF-16 units), links its post, a TGStat post through a text link, a t.me/s/ page
        // and a private channel's post; its @pulse_news, invite link and bold text give
        // nothing. 1875 forwards a user's message: nothing.
        assert_eq!(
            rows(records),
            vec![
                (1877, Forward, Some(1_006_543_210), Some(5521), None),
                (1876, Mention, None, None, name("media_lab")),
                (1876, Link, None, Some(2207), name("media_lab")),
                (1876, Mention, None, None, name("tgstat_ru")),
                (1876, Link, None, Some(1042), name("tgstat_ru")),
                (1876, Link, None, Some(100), name("durov")),
                (1876, Link, Some(1_690_237_415), Some(77), None),
            ]
        );
        // Without its handle known, the channel's mention of itself is kept.
        let unknown = rows(mentions(id, None, &page, since).unwrap());
        assert!(unknown.contains(&(1876, Mention, None, None, name("pulse_news"))));
        let later = DateTime::from_timestamp(1_747_819_000, 0).unwrap();
        assert_eq!(
            rows(mentions(id, Some(&own), &page, later).unwrap()).len(),
            1
        );
    }

    #[test]
    fn entity_ranges_count_utf16_units_and_bad_ranges_are_skipped() {
        let entity = |offset, length| MessageEntity::Mention { offset, length };
        let post = AnyMessage::Message(Message {
            id: 9,
            date: 1_747_800_000,
            views: None,
            forwards: None,
            replies: None,
            reactions: None,
            // 😀 is one char, 4 UTF-8 bytes and 2 UTF-16 units.
            message: "😀@chan_one и @chan_two".to_owned(),
            fwd_from: None,
            entities: vec![
                entity(2, 9),
                entity(1, 3), // splits the surrogate pair
                entity(14, 9),
                entity(14, 40), // past the end
                entity(-1, 3),
                entity(2, -9),
                MessageEntity::Other,
            ],
        });
        let id = ChannelId::new(1_735_260_148).unwrap();
        let since = DateTime::from_timestamp(0, 0).unwrap();
        let got = rows(mentions(id, None, &[post], since).unwrap());
        let names: Vec<_> = got.into_iter().map(|r| r.4.unwrap()).collect();
        assert_eq!(names, ["chan_one", "chan_two"]);
    }

    #[test]
    fn tme_addresses_name_public_and_private_channels_only() {
        let name = |n: &str| OtherChannel::Name(n.parse().unwrap());
        let private = OtherChannel::Id(ChannelId::new(1_690_237_415).unwrap());
        let cases = [
            ("https://t.me/durov", Some((name("durov"), None))),
            ("t.me/Durov/42", Some((name("durov"), Some(42)))),
            (
                "http://www.telegram.me/s/durov/7?before=9",
                Some((name("durov"), Some(7))),
            ),
            (
                "https://telegram.dog/durov#top",
                Some((name("durov"), None)),
            ),
            ("https://durov.t.me/5", Some((name("durov"), Some(5)))),
            ("https://t.me/durov/0", Some((name("durov"), None))),
            (
                "https://t.me/c/1690237415/12/77",
                Some((private.clone(), Some(77))),
            ),
            ("t.me/c/1690237415", Some((private, None))),
            ("https://t.me/c/abc/1", None),
            ("https://t.me/joinchat/AAAAAE0QnV3kLwH4", None),
            ("https://t.me/+AbCdEf123", None),
            ("https://t.me/addstickers/Animals", None),
            ("https://t.me/share/url?url=x", None),
            ("https://t.me/", None),
            ("https://t.me/ab", None),
            ("https://example.com/durov", None),
            ("tg://resolve?domain=durov", None),
        ];
        for (url, want) in cases {
            assert_eq!(tme_link(url), want, "{url}");
        }
    }
}
