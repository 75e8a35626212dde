//! TGStat's incoming mentions and forwards (`channels/mentions`, `channels/forwards`): other
//! channels' posts that mention or forward a watched channel, read at most once a day per
//! channel, and the watched channel's own reposts (`forwarded_from`) as forwards.

use super::*;

/// A Channel object in the `channels` list of an `extended=1` answer.
#[derive(Deserialize)]
struct Listed {
    /// TGStat's channel id.
    id: i64,
    /// Telegram channel id; newer answers only.
    tg_id: Option<i64>,
    /// `@name`.
    username: Option<String>,
}

/// `channels/mentions` or `channels/forwards` with `extended=1`.
#[derive(Deserialize)]
pub(super) struct IncomingPage {
    #[serde(default)]
    items: Vec<IncomingItem>,
    #[serde(default)]
    channels: Vec<Listed>,
}

/// One item of `channels/mentions` (`mentionId`, `mentionType` `channel`|`post`, ..) or
/// `channels/forwards` (`forwardId`, `sourcePostId`, ..): another channel's post.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingItem {
    /// `channels/forwards`: TGStat's id of the forwarded post of the watched channel.
    #[serde(default)]
    source_post_id: Value,
    /// `https://t.me/<name>/<n>` or `https://t.me/c/<tg_id>/<n>`.
    post_link: Option<String>,
    /// Publication time, unix seconds.
    post_date: i64,
    /// TGStat's id of the other channel.
    channel_id: i64,
}

impl Vendor {
    /// Whether `channel`'s incoming mentions are due (at most once per `mentions_every`); a
    /// `true` marks them read now, so that concurrent jobs of the channel do not read twice.
    pub(super) fn mentions_due(&self, channel: ChannelId) -> bool {
        let Some(every) = self.mentions_every else {
            return false;
        };
        let mut read = self
            .mentions_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if read
            .get(&channel.get())
            .is_some_and(|last| now.duration_since(*last) < every)
        {
            return false;
        }
        read.insert(channel.get(), now);
        true
    }

    /// TGStat: other channels' posts since `since` that mention `t`'s channel
    /// (`channels/mentions`: `@name` or a `t.me/name[/post]` link; kind `Mention`) or forward
    /// its posts (`channels/forwards`; kind `Forward`, `source_post_id` when the forwarded post
    /// is among `ours`, TGStat post id → message number). Read with `extended=1` (the answer
    /// then lists the channels, whose `tg_id` gives the other channel's Telegram id), in pages
    /// of 50, at most [`INCOMING_PAGES`] per method, and at most once per `mentions_every` per
    /// channel; each page is one request of the quota. Items whose channel has no Telegram id
    /// (older answers lack `tg_id`; a private `t.me/c/<id>/<n>` link carries it) are skipped
    /// and counted in the log. A failure is logged and ends that method's reading: the
    /// mentions are an extra of the posts job, which goes on.
    pub(super) async fn incoming(
        &self,
        t: &Target,
        h: &Handle,
        since: DateTime<Utc>,
        ours: &HashMap<i64, i64>,
    ) -> Vec<Record> {
        if !self.mentions_due(t.channel_id) {
            return Vec::new();
        }
        let (mut out, mut skipped) = (Vec::new(), 0);
        let methods = [
            ("channels/mentions", MentionKind::Mention),
            ("channels/forwards", MentionKind::Forward),
        ];
        for (method, kind) in methods {
            for page_no in 0..INCOMING_PAGES {
                let q = [
                    ("channelId", self.channel_param(h)),
                    ("startDate", since.timestamp().to_string()),
                    ("limit", PAGE.to_string()),
                    ("offset", (page_no * PAGE).to_string()),
                    ("extended", "1".to_owned()),
                ];
                let read = self.get(method, &q).await;
                let page: IncomingPage = match read.and_then(|v| http::payload(v, method)) {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(source = self.flavor.name(), channel = %t, method, error = %e,
                            "cannot read the posts that mention or forward this channel; its posts are kept");
                        break;
                    }
                };
                self.remember(&page.channels);
                let (records, unnamed) = incoming_records(t, kind, &page, ours);
                out.extend(records);
                skipped += unnamed;
                if page.items.len() < PAGE {
                    break;
                }
            }
        }
        if skipped > 0 {
            tracing::info!(source = self.flavor.name(), channel = %t, skipped,
                "posts mentioning or forwarding this channel were skipped: TGStat gave no Telegram id or message number for them");
        }
        out
    }

    /// Keeps the Telegram id and handle of listed channels by their TGStat id.
    fn remember(&self, channels: &[Listed]) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        for c in channels {
            let id = c.tg_id.and_then(|i| ChannelId::new(i).ok());
            let name: Option<Handle> = c.username.as_deref().and_then(|u| u.parse().ok());
            if id.is_some() || name.is_some() {
                known.insert(c.id, (id, name));
            }
        }
    }

    /// TGStat: a `Forward` mention for each repost of `t`'s channel, `(message number,
    /// publication time, TGStat id of the source channel)`, whose source channel is known by
    /// its Telegram id or handle from a `channels/mentions` or `channels/forwards` answer.
    /// Other reposts are skipped: `forwarded_from` is TGStat's own id, and looking it up with
    /// `channels/get` would spend a request and, for a channel new in the plan's period, one
    /// of the plan's channels.
    pub(super) fn reposts(&self, t: &Target, reposts: &[(i64, DateTime<Utc>, i64)]) -> Vec<Record> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let out: Vec<Record> = reposts
            .iter()
            .filter_map(|&(post_id, published_at, from)| {
                let (id, name) = known.get(&from)?;
                (*id != Some(t.channel_id)).then(|| {
                    Record::Mention(Mention {
                        channel_id: t.channel_id,
                        post_id,
                        published_at,
                        kind: MentionKind::Forward,
                        source_channel_id: *id,
                        source_post_id: None,
                        source_name: name.as_ref().map(|h| h.as_str().to_owned()),
                    })
                })
            })
            .collect();
        if out.len() < reposts.len() {
            tracing::debug!(source = self.flavor.name(), channel = %t, unknown = reposts.len() - out.len(),
                "reposts from channels TGStat has not named yet were not recorded");
        }
        out
    }
}

/// Maps a page of `channels/mentions` or `channels/forwards` to `Record::Mention`s of kind
/// `kind`: the other channel's post (Telegram id from the page's channel list or a
/// `t.me/c/<id>/` link, message number from `postLink`, `postDate`) refers to `t`'s channel
/// (`source_channel_id`, `source_name` its handle; `source_post_id` the message number of
/// `sourcePostId` when `ours` has it). Returns the records and the number of items skipped
/// for want of a Telegram id, a message number or a valid date; posts of `t`'s channel itself
/// are left out.
pub(super) fn incoming_records(
    t: &Target,
    kind: MentionKind,
    page: &IncomingPage,
    ours: &HashMap<i64, i64>,
) -> (Vec<Record>, usize) {
    let tg_ids: HashMap<i64, i64> = page
        .channels
        .iter()
        .filter_map(|c| Some((c.id, c.tg_id?)))
        .collect();
    let own_name = t.handle.as_ref().map(|h| h.as_str().to_owned());
    let (mut out, mut skipped) = (Vec::new(), 0);
    for item in &page.items {
        let link = item.post_link.as_deref().unwrap_or("");
        let other = tg_ids
            .get(&item.channel_id)
            .copied()
            .or_else(|| private_channel(link))
            .and_then(|id| ChannelId::new(id).ok());
        let (Some(channel_id), Some(post_id), Some(published_at)) = (
            other,
            http::message_number(link),
            DateTime::from_timestamp(item.post_date, 0),
        ) else {
            skipped += 1;
            continue;
        };
        if channel_id == t.channel_id {
            continue;
        }
        out.push(Record::Mention(Mention {
            channel_id,
            post_id,
            published_at,
            kind,
            source_channel_id: Some(t.channel_id),
            source_post_id: int(&item.source_post_id).and_then(|p| ours.get(&p).copied()),
            source_name: own_name.clone(),
        }));
    }
    (out, skipped)
}

/// The Telegram channel id in a private post link, `[https://]t.me/c/<id>/<n>`.
fn private_channel(link: &str) -> Option<i64> {
    let (_, rest) = link.split_once("t.me/c/")?;
    rest.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> IncomingPage {
        let path = format!(
            "{}/tests/fixtures/sources/tgstat/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        http::payload(v["response"].clone(), name).unwrap()
    }

    #[test]
    fn incoming_items_name_the_other_channel_by_telegram_id_or_are_skipped() {
        let t = Target {
            channel_id: ChannelId::new(1_735_260_148).unwrap(),
            handle: Some("pulse_news".parse().unwrap()),
        };
        let row = |r: &Record| match r {
            Record::Mention(m) => (m.channel_id.get(), m.post_id, m.source_post_id),
            other => panic!("unexpected {other:?}"),
        };
        let (mentions, skipped) = incoming_records(
            &t,
            MentionKind::Mention,
            &page("channels_mentions.json"),
            &HashMap::new(),
        );
        let rows: Vec<_> = mentions.iter().map(row).collect();
        assert_eq!(
            rows,
            [(1_502_283_344, 2211, None), (1_113_419_476, 3310, None)]
        );
        assert_eq!(skipped, 1, "@adtech_digest has no tg_id");
        let ours = HashMap::from([(61_834_519_327, 1874)]);
        let (forwards, skipped) = incoming_records(
            &t,
            MentionKind::Forward,
            &page("channels_forwards.json"),
            &ours,
        );
        let rows: Vec<_> = forwards.iter().map(row).collect();
        assert_eq!(
            rows,
            [
                (1_502_283_344, 2212, Some(1874)),
                (1_844_021_173, 318, None)
            ]
        );
        assert_eq!(
            skipped, 0,
            "the private channel's id is in its t.me/c/ link"
        );
        let Record::Mention(m) = &forwards[0] else {
            unreachable!()
        };
        assert_eq!(
            (m.kind, m.source_channel_id, m.source_name.as_deref()),
            (MentionKind::Forward, Some(t.channel_id), Some("pulse_news"))
        );
        assert_eq!(int(&Value::from("61834519327")), Some(61_834_519_327));
    }
}
