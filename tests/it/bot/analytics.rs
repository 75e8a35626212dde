//! Post analytics in the bot, against the fake Bot API and a real PostgreSQL database:
//! `/mentions` over a small forward/mention network written with SQL, and the "Views",
//! "Best time" and "Top posts" buttons under a `/stats` reply.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveDate, NaiveTime, Utc};
use tgpulse::i18n::{self, Lang};

use super::{ADMIN, bot_config, start};
use crate::common::TestDb;
use crate::fake_telegram::FakeTelegram;

const POSTSY: i64 = 1_700_000_001;
const ALPHA: i64 = 1_700_000_002;
const BETA: i64 = 1_700_000_003;
const GAMMA: i64 = 1_700_000_004;

/// The UTC day `ago` days before today (the test database buckets days in UTC).
fn day(ago: i64) -> NaiveDate {
    Utc::now().date_naive() - Span::days(ago)
}

/// `hour`:00 UTC on the day `ago` days before today.
fn at(ago: i64, hour: i64) -> DateTime<Utc> {
    day(ago).and_time(NaiveTime::MIN).and_utc() + Span::hours(hour)
}

/// @postsy and its network, all in the last 9 days:
/// - members read at noon every day from 9 days to 1 day ago, +5 a day, but +50 on the day
///   after its busiest mention day (6 days ago);
/// - its posts 1–4 published at 10:00, 7, 6, 5 and 4 days ago (the last one ends the default
///   window), read 1, 13, 25 and 49 h later, ending at 1,000, 2,000, 9,000 and 3,000 views;
///   post 4 has the most engagement (10 %) among the posts with at least the median reach;
/// - @alpha_chan forwards it 3 times (6 days ago) and mentions it once (4 days ago), each of
///   those posts read once at 500 views;
/// - @beta_chan links to it twice (5 and 4 days ago), each read at 500 views;
/// - @postsy forwards @gamma_chan once and mentions @delta_chan, which tgpulse does not
///   know, twice.
async fn network() -> TestDb {
    let t = TestDb::plain().await;
    let c = t.client().await;
    c.batch_execute(&format!(
        "INSERT INTO channels (channel_id, handle, title) VALUES
             ({POSTSY}, 'postsy', 'Posts Channel'),
             ({ALPHA}, 'alpha_chan', NULL),
             ({BETA}, 'beta_chan', NULL),
             ({GAMMA}, 'gamma_chan', NULL)"
    ))
    .await
    .unwrap();
    for ago in 1..=9_i64 {
        let members: i64 = 10_000 + 5 * (9 - ago) + if ago <= 5 { 45 } else { 0 };
        c.execute(
            "INSERT INTO member_samples (channel_id, observed_at, members, source)
             VALUES ($1, $2, $3, 'test')",
            &[&POSTSY, &at(ago, 12), &members],
        )
        .await
        .unwrap();
    }
    let sample = "INSERT INTO post_samples
                      (channel_id, post_id, published_at, observed_at, views, forwards, replies,
                       reactions, source)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'test')";
    // (post, final views, final forwards, replies, reactions)
    let posts: [(i64, i64, i64, i64, i64); 4] = [
        (1, 1000, 5, 0, 5),
        (2, 2000, 10, 5, 5),
        (3, 9000, 9, 0, 9),
        (4, 3000, 150, 60, 90),
    ];
    for (post, views, fw, re, rx) in posts {
        let published = at(8 - post, 10);
        for (after, tenths) in [(1_i64, 2_i64), (13, 6), (25, 8), (49, 10)] {
            let part = |v: i64| v * tenths / 10;
            c.execute(
                sample,
                &[
                    &POSTSY,
                    &post,
                    &published,
                    &(published + Span::hours(after)),
                    &part(views),
                    &part(fw),
                    &part(re),
                    &part(rx),
                ],
            )
            .await
            .unwrap();
        }
    }
    let mention = "INSERT INTO mentions
                       (channel_id, post_id, published_at, kind, source_channel_id,
                        source_post_id, source_name, source)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 'test')";
    let postsy = Some(POSTSY);
    let name = |n: &'static str| Some(n.to_owned());
    // (channel, post, published, kind, other channel, other post, other name)
    let rows = [
        (
            ALPHA,
            101_i64,
            at(6, 9),
            "forward",
            postsy,
            Some(1_i64),
            name("postsy"),
        ),
        (
            ALPHA,
            102,
            at(6, 11),
            "forward",
            postsy,
            Some(2),
            name("postsy"),
        ),
        (
            ALPHA,
            103,
            at(6, 15),
            "forward",
            postsy,
            Some(2),
            name("postsy"),
        ),
        (
            ALPHA,
            104,
            at(4, 12),
            "mention",
            postsy,
            None,
            name("postsy"),
        ),
        (
            BETA,
            201,
            at(4, 13),
            "link",
            postsy,
            Some(3),
            name("postsy"),
        ),
        (BETA, 202, at(5, 13), "link", postsy, None, name("postsy")),
        (
            POSTSY,
            1,
            at(7, 10),
            "forward",
            Some(GAMMA),
            Some(55),
            name("gamma_chan"),
        ),
        (
            POSTSY,
            2,
            at(6, 10),
            "mention",
            None,
            None,
            name("delta_chan"),
        ),
        (
            POSTSY,
            3,
            at(5, 10),
            "mention",
            None,
            None,
            name("delta_chan"),
        ),
    ];
    for (channel, post, published, kind, other, other_post, other_name) in &rows {
        c.execute(
            mention,
            &[
                channel, post, published, kind, other, other_post, other_name,
            ],
        )
        .await
        .unwrap();
        // The other channels' posts are sampled once, at 500 views.
        if *channel != POSTSY {
            c.execute(
                sample,
                &[
                    channel,
                    post,
                    published,
                    &(*published + Span::hours(30)),
                    &500_i64,
                    &0_i64,
                    &0_i64,
                    &0_i64,
                ],
            )
            .await
            .unwrap();
        }
    }
    c.execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .unwrap();
    drop(c);
    t
}

#[tokio::test]
async fn mentions_lists_who_forwards_and_mentions_a_channel_with_counts_by_kind() {
    let t = network().await;
    let tg = FakeTelegram::start().await;
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-mentions");
    cfg.user_burst = 20;
    let b = start(&t, &tg, cfg).await;

    tg.message(ADMIN, "/mentions @postsy");
    let text = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0).text();
    let line = |what: &str| -> String {
        text.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line with {what:?} in:\n{text}"))
            .to_owned()
    };
    assert!(
        text.starts_with("<b>@postsy</b> · Posts Channel\n<b>Forwards and mentions</b>"),
        "{text}"
    );
    assert!(
        text.contains("(30 days, UTC)"),
        "the default window: {text}"
    );
    // Incoming, most posts first, with the reach of the posts tgpulse sampled.
    assert_eq!(
        line("@alpha_chan"),
        "1. @alpha_chan — 4 posts: 3 forwards, 1 mention · reach 2,000"
    );
    assert_eq!(
        line("@beta_chan"),
        "2. @beta_chan — 2 posts: 2 links · reach 1,000"
    );
    // Outgoing: a channel tgpulse knows, and one it only saw named.
    assert!(
        line("@delta_chan").starts_with("1. @delta_chan — 2 posts: 2 mentions"),
        "{text}"
    );
    assert!(
        line("@gamma_chan").starts_with("2. @gamma_chan — 1 post: 1 forward"),
        "{text}"
    );
    let incoming = text.find("(incoming").expect("an incoming section");
    let outgoing = text.find("(outgoing").expect("an outgoing section");
    assert!(incoming < text.find("@alpha_chan").unwrap());
    assert!(text.find("@beta_chan").unwrap() < outgoing);
    assert!(outgoing < text.find("@delta_chan").unwrap());
    // The busiest day first, next to the members change of the following day, labelled as
    // a correlation.
    let busiest = i18n::date(Lang::En, day(6));
    assert_eq!(
        line(&format!("{busiest}: ")),
        format!("{busiest}: 3 posts, reach 1,500 → members the next day +50")
    );
    assert!(
        text.find(&format!("{busiest}: ")).unwrap()
            < text
                .find(&format!("{}: ", i18n::date(Lang::En, day(4))))
                .unwrap(),
        "busiest first: {text}"
    );
    assert!(text.contains("A correlation, not a cause"), "{text}");
    assert!(text.chars().count() <= 4096);

    // Bad input gets what was wrong and the right form.
    let cases: &[(&str, &[&str])] = &[
        (
            "/mentions",
            &["Which channel?", "Usage: /mentions @channel [days]"],
        ),
        (
            "/mentions @postsy lots",
            &["“lots” is not a number of days", "Usage: /mentions"],
        ),
        (
            "/mentions @postsy 0",
            &["“0” is not a number of days", "1 to 3650"],
        ),
        (
            "/mentions @postsy 30 more",
            &["Too many arguments", "Usage: /mentions"],
        ),
        (
            "/mentions @nosuchchannel",
            &["unknown channel @nosuchchannel", "/add @nosuchchannel"],
        ),
    ];
    for (i, (sent, want)) in cases.iter().enumerate() {
        tg.message(ADMIN, sent);
        let got = tg
            .wait_chat("sendmessage", ADMIN, i + 2)
            .await
            .remove(i + 1);
        for w in *want {
            assert!(
                got.text().contains(w),
                "{sent:?} → {:?} should contain {w:?}",
                got.text()
            );
        }
    }
    b.stop().await;
}

#[tokio::test]
async fn the_top_posts_button_under_stats_lists_the_top_posts_with_their_links() {
    let t = network().await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-top-posts")).await;

    tg.message(ADMIN, "/stats @postsy");
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    let caption = photo.text();
    for row in [
        "reach at 12h",
        "reach at 24h",
        "reach at 48h",
        "ERR 24h (ours)",
        "posting frequency",
    ] {
        assert!(caption.contains(row), "{row:?} in {caption}");
    }
    let labels: Vec<String> = photo.buttons().into_iter().map(|b| b.0).collect();
    assert_eq!(
        labels[labels.len() - 3..],
        ["Views", "Best time", "Top posts"]
    );
    let under = photo.message_id.unwrap();

    tg.press(ADMIN, under, &photo.button("Top posts"));
    let m = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    let text = m.text();
    let first_after = |head: &str| -> String {
        let at = text
            .find(head)
            .unwrap_or_else(|| panic!("no {head:?} in {text}"));
        text[at..].lines().nth(1).unwrap_or("").to_owned()
    };
    let top = first_after("<b>By reach</b>");
    assert!(
        top.starts_with("1. ")
            && top.contains("views 9,000")
            && top.ends_with("https://t.me/postsy/3"),
        "{top}"
    );
    let engaging = first_after("<b>By engagement</b>");
    assert!(
        engaging.contains("engagement 10.0 %") && engaging.ends_with("https://t.me/postsy/4"),
        "{engaging}"
    );
    // All four posts make the top five by reach.
    assert!(text.contains("https://t.me/postsy/1"), "{text}");
    assert!(text.contains("4 posts in the window"), "{text}");
    assert_eq!(
        m.params["link_preview_options"]["is_disabled"], true,
        "no preview of the first link"
    );

    // The other two buttons answer with their caption (over a chart, or alone if the chart
    // could not be drawn).
    tg.press(ADMIN, under, &photo.button("Views"));
    tg.wait(1, Duration::from_secs(60), |c| {
        c.chat() == Some(ADMIN) && c.text().contains("days with posts")
    })
    .await;
    tg.press(ADMIN, under, &photo.button("Best time"));
    let best = tg
        .wait(1, Duration::from_secs(60), |c| {
            c.chat() == Some(ADMIN) && c.text().contains("<b>Best time to post</b>")
        })
        .await
        .remove(0);
    // One post per weekday hour: no hour has the 3 posts a slot needs.
    assert!(
        best.text().contains("No weekday hour has 3 posts or more")
            && best.text().contains("fewer than 3 posts are left empty"),
        "{}",
        best.text()
    );
    // Every press was answered.
    assert_eq!(
        tg.calls()
            .iter()
            .filter(|c| c.method == "answercallbackquery")
            .count(),
        3
    );
    b.stop().await;
}
