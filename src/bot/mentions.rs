//! `/mentions @channel [days]`: the forward/mention network around a channel. Who forwards,
//! mentions or links it (incoming) and whom it forwards, mentions or links (outgoing), ten
//! of each with the counts by kind and the reach of those posts, and the days with the most
//! incoming mentions next to the members change on the following day, labelled as a
//! correlation, not a cause. Viewers and admins, like `/stats`.

use std::sync::Arc;

use teloxide::prelude::*;

use super::access::Member;
use super::args;
use super::reply::{TEXT_LIMIT, clip_chars, esc, title_line, visible_len, window};
use super::send::{known, say};
use super::stats::query_only;
use super::{Ctx, HandlerResult, TgBot};
use crate::i18n::{self, Lang};
use crate::query::{self, MentionDay, MentionReport, Peer};
use crate::t;

/// Channels listed on each side.
const TOP_PEERS: usize = 10;
/// Days listed with the members change on the next day.
const TOP_DAYS: usize = 5;
/// Characters of a channel's name shown (handles are at most 32).
const NAME_CHARS: usize = 32;
/// Characters of the channel's own title shown.
const TITLE_CHARS: usize = 64;

/// `/mentions`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    _: Member,
    args: String,
    lang: Lang,
) -> HandlerResult {
    let chat = msg.chat.id;
    let a = match args::mentions(&args) {
        Ok(a) => a,
        Err(e) => return say(&bot, chat, esc(&e.render(lang))).await,
    };
    let Some(c) = known(&bot, &ctx, chat, &a.channel, lang).await? else {
        return Ok(());
    };
    let compute = query::mentions(&ctx.engine, &c, a.days, None, TOP_PEERS);
    let Some(report) = query_only(&bot, &ctx, (chat, lang), compute).await? else {
        return Ok(());
    };
    say(&bot, chat, text(&report, lang)).await
}

/// "3 forwards, 1 mention": the kinds with at least one post, in that order.
fn kinds(p: &Peer, lang: Lang) -> String {
    let mut parts = Vec::with_capacity(3);
    if p.forwards > 0 {
        parts.push(t!(lang, "mentions-forwards", count = p.forwards));
    }
    if p.mentions > 0 {
        parts.push(t!(lang, "mentions-mentions", count = p.mentions));
    }
    if p.links > 0 {
        parts.push(t!(lang, "mentions-links", count = p.links));
    }
    parts.join(", ")
}

/// "1. @alpha — 4 posts: 3 forwards, 1 mention · reach 12,345".
fn peer_line(lang: Lang, n: usize, p: &Peer) -> String {
    let mut line = t!(
        lang,
        "mentions-peer",
        n = n,
        peer = esc(&clip_chars(&p.label(), NAME_CHARS)),
        posts = p.posts,
        kinds = kinds(p, lang)
    );
    if let Some(r) = p.reach {
        line.push_str(" · ");
        line.push_str(&t!(lang, "mentions-reach", reach = i18n::int(lang, r)));
    }
    line
}

/// "12 Mar 2026: 3 posts mentioning it, reach 5,000 → members the next day +120".
fn day_line(lang: Lang, d: &MentionDay) -> String {
    let na = || t!(lang, "not-available");
    t!(
        lang,
        "mentions-day",
        day = i18n::date(lang, d.day),
        posts = d.posts,
        reach = d.reach.map_or_else(na, |r| i18n::int(lang, r)),
        change = d
            .members_change_next_day
            .map_or_else(na, |c| i18n::signed(lang, c))
    )
}

/// The days with the most incoming posts (most first, then the earlier day), at most `n`.
fn busiest_days(days: &[MentionDay], n: usize) -> Vec<&MentionDay> {
    let mut out: Vec<&MentionDay> = days.iter().filter(|d| d.posts > 0).collect();
    out.sort_by(|a, b| b.posts.cmp(&a.posts).then(a.day.cmp(&b.day)));
    out.truncate(n);
    out
}

fn text_with(r: &MentionReport, lang: Lang, top: usize) -> String {
    let channel = esc(&r.channel.label());
    let title = r
        .channel
        .title
        .as_deref()
        .map(|t| clip_chars(t, TITLE_CHARS));
    let days = (r.last_day - r.first_day).num_days() + 1;
    let mut out = format!(
        "{}\n{}",
        title_line(&r.channel.label(), title.as_deref()),
        t!(
            lang,
            "mentions-title",
            window = window(lang, r.first_day, r.last_day, days, &r.timezone)
        )
    );
    let sides = [
        (
            t!(
                lang,
                "mentions-incoming",
                channel = channel.clone(),
                top = top
            ),
            &r.incoming,
        ),
        (
            t!(
                lang,
                "mentions-outgoing",
                channel = channel.clone(),
                top = top
            ),
            &r.outgoing,
        ),
    ];
    for (head, peers) in sides {
        out.push_str("\n\n");
        out.push_str(&head);
        if peers.is_empty() {
            out.push('\n');
            out.push_str(&t!(lang, "mentions-none"));
        }
        for (i, p) in peers.iter().take(top).enumerate() {
            out.push('\n');
            out.push_str(&peer_line(lang, i + 1, p));
        }
    }
    out.push_str("\n\n");
    out.push_str(&t!(lang, "mentions-days"));
    let busiest = busiest_days(&r.days, TOP_DAYS);
    if busiest.is_empty() {
        out.push('\n');
        out.push_str(&t!(lang, "mentions-none"));
    }
    for d in busiest {
        out.push('\n');
        out.push_str(&day_line(lang, d));
    }
    if r.incoming.is_empty() && r.outgoing.is_empty() {
        out.push_str("\n\n");
        out.push_str(&t!(lang, "mentions-empty-hint"));
    }
    out
}

/// The `/mentions` reply (Telegram HTML): incoming and outgoing, [`TOP_PEERS`] channels each
/// with their posts by kind and reach, then up to 5 days with the most incoming posts and the
/// members change of the next day, as a correlation. Within Telegram's [`TEXT_LIMIT`]: fewer
/// channels per side if it would not fit.
pub(super) fn text(r: &MentionReport, lang: Lang) -> String {
    let mut top = TOP_PEERS;
    loop {
        let text = text_with(r, lang, top);
        if top <= 1 || visible_len(&text) <= TEXT_LIMIT {
            return text;
        }
        top -= 1;
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::ChannelId;
    use crate::query::Channel;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn peer(i: i64, name: String) -> Peer {
        Peer {
            channel_id: Some(ChannelId::new(1_000_000_000 + i).unwrap()),
            name: Some(name),
            forwards: 12_345,
            mentions: 12_345,
            links: 12_345,
            posts: 37_035,
            reach: Some(123_456_789_012),
        }
    }

    fn report(incoming: Vec<Peer>, outgoing: Vec<Peer>, days: Vec<MentionDay>) -> MentionReport {
        MentionReport {
            channel: Channel {
                id: ChannelId::new(1_700_000_001).unwrap(),
                handle: Some(format!("a{}", "x".repeat(31))),
                title: Some("Ж&<".repeat(43)),
            },
            first_day: day(1),
            last_day: day(30),
            timezone: "America/Argentina/ComodRivadavia".into(),
            incoming,
            outgoing,
            days,
        }
    }

    #[test]
    fn ten_peers_a_side_with_long_names_and_big_counts_fit_one_message() {
        // Titles of 128 characters that need escaping, and handles of 32.
        let long = |i: i64| peer(i, format!("{i} {}", "Я<&>".repeat(32)));
        let handle = |i: i64| peer(i, format!("h{i:02}{}", "x".repeat(29)));
        let days: Vec<MentionDay> = (1..=30)
            .map(|d| MentionDay {
                day: day(d),
                posts: 10_000 + i64::from(d),
                reach: Some(123_456_789_012),
                members_change_next_day: Some(-123_456),
            })
            .collect();
        let r = report(
            (0..10).map(long).collect(),
            (10..20).map(handle).collect(),
            days,
        );
        for lang in Lang::ALL {
            let t = text(&r, lang);
            assert!(
                visible_len(&t) <= TEXT_LIMIT,
                "{lang:?}: {}",
                visible_len(&t)
            );
            assert!(t.contains("@h19"), "{lang:?}: all ten outgoing shown: {t}");
            // The busiest five days, busiest first (30 March is also the window's end).
            let d30 = t
                .rfind(&i18n::date(lang, day(30)))
                .expect("the busiest day");
            let d26 = t.find(&i18n::date(lang, day(26))).expect("the fifth");
            assert!(d30 < d26, "{t}");
            assert!(!t.contains(&i18n::date(lang, day(25))), "only five days");
        }
        let en = text(&r, Lang::En);
        assert!(en.contains("correlation, not a cause"), "{en}");
        assert!(en.contains("12,345 forwards"), "{en}");
    }

    #[test]
    fn counts_by_kind_skip_kinds_without_posts_and_plurals_follow_the_language() {
        let p = Peer {
            channel_id: None,
            name: Some("alpha_chan".into()),
            forwards: 3,
            mentions: 1,
            links: 0,
            posts: 4,
            reach: None,
        };
        let r = report(vec![p.clone()], vec![], vec![]);
        let line = |t: &str| -> String {
            t.lines()
                .find(|l| l.starts_with("1. @alpha_chan"))
                .unwrap_or_default()
                .to_owned()
        };
        let en = text(&r, Lang::En);
        assert_eq!(line(&en), "1. @alpha_chan — 4 posts: 3 forwards, 1 mention");
        assert!(en.contains("none"), "no outgoing: {en}");
        let ru = text(&r, Lang::Ru);
        assert_eq!(
            line(&ru),
            "1. @alpha_chan — 4 поста: 3 репоста, 1 упоминание"
        );
        let none = text(&report(vec![], vec![], vec![]), Lang::En);
        assert!(none.contains("tgpulse records"), "{none}");
    }
}
