//! The post analytics under a `/stats` reply: "Views" (the views chart with a caption),
//! "Best time" (the weekday × hour heatmap with its three best hours) and "Top posts" (a text
//! of the top posts by reach and by engagement). They run in the same query slots as `/stats`
//! and answer a channel without post samples, or a query past the time limit, as it does.

use std::sync::Arc;

use chrono_tz::Tz;
use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId};

use super::access::Member;
use super::button::{Pressed, expired_text};
use super::reply::{TEXT_LIMIT, clip_chars, esc, rows_block, title_line, visible_len, window};
use super::send::{say, say_without_preview, send_chart};
use super::stats::{channel_of, chart_failed, query_and_chart_with, query_only};
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::domain::Days;
use crate::i18n::{self, Lang};
use crate::query::posts::HEATMAP_MIN_POSTS;
use crate::query::{self, Channel, Heatmap, ReachBasis, TopPost, TopPosts, ViewsTrend};
use crate::state::Action;
use crate::t;

/// Posts in each list of "Top posts".
const TOP_POSTS: usize = 5;
/// Best hours named under the heatmap.
const BEST_SLOTS: usize = 3;
/// Characters of a channel title shown in these replies.
const TITLE_CHARS: usize = 64;

/// "Views", "Best time" or "Top posts" under a `/stats` reply: that reply for the button's
/// channel and window. Viewers and admins (a `Member`), like the `/stats` buttons.
pub(super) async fn pressed(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    _: Member,
    action: Action,
    lang: Lang,
) -> HandlerResult {
    bot.answer_callback_query(q.id).await?;
    let Some((c, days)) = channel_of(&ctx, &action).await? else {
        return say(&bot, pressed.chat, expired_text(lang)).await;
    };
    let to = (pressed.chat, lang);
    match action {
        Action::Views { .. } => views(&bot, &ctx, to, &c, days).await,
        Action::BestTime { .. } => best_time(&bot, &ctx, to, &c, days).await,
        Action::TopPosts { .. } => top_posts(&bot, &ctx, to, &c, days).await,
        _ => say(&bot, pressed.chat, expired_text(lang)).await,
    }
}

/// The views chart with its caption.
async fn views(
    bot: &TgBot,
    ctx: &Ctx,
    to: (ChatId, Lang),
    c: &Channel,
    days: Days,
) -> HandlerResult {
    let compute = query::views_trend(&ctx.engine, c, days, None);
    let draw = crate::chart::views_png;
    chart_reply(bot, ctx, to, compute, draw, ("views.png", views_caption)).await
}

/// The best-time heatmap with its caption.
async fn best_time(
    bot: &TgBot,
    ctx: &Ctx,
    to: (ChatId, Lang),
    c: &Channel,
    days: Days,
) -> HandlerResult {
    let compute = query::heatmap(&ctx.engine, c, days, None);
    let draw = crate::chart::heatmap_png;
    chart_reply(
        bot,
        ctx,
        to,
        compute,
        draw,
        ("best_time.png", best_time_caption),
    )
    .await
}

/// Computes `T`, draws its chart and sends it as `file` with its caption.
async fn chart_reply<T: Clone + Send + 'static>(
    bot: &TgBot,
    ctx: &Ctx,
    (chat, lang): (ChatId, Lang),
    compute: impl std::future::Future<Output = Result<T, query::Error>>,
    draw: fn(&T, Lang) -> Result<Vec<u8>, crate::chart::Error>,
    (file, caption): (&'static str, fn(&T, Lang) -> String),
) -> HandlerResult {
    let Some((data, png)) =
        query_and_chart_with(bot, ctx, (chat, lang), compute, draw, no_chart).await?
    else {
        return Ok(());
    };
    send_chart(bot, chat, png, file, caption(&data, lang), None).await
}

/// Why a views chart or heatmap is missing: no posts to draw, or the drawing's own error.
fn no_chart(lang: Lang, e: &crate::chart::Error) -> BoxError {
    match e {
        crate::chart::Error::Empty(c) => {
            BoxError::from(t!(lang, "posts-chart-empty", channel = c.clone()))
        }
        e => chart_failed(lang, e),
    }
}

/// The top posts as a text (links without a preview).
async fn top_posts(
    bot: &TgBot,
    ctx: &Ctx,
    (chat, lang): (ChatId, Lang),
    c: &Channel,
    days: Days,
) -> HandlerResult {
    let compute = query::top_posts(&ctx.engine, c, days, None, TOP_POSTS);
    let Some(top) = query_only(bot, ctx, (chat, lang), compute).await? else {
        return Ok(());
    };
    say_without_preview(bot, chat, top_posts_text(&top, lang)).await
}

/// "<b>@handle</b> · Title", the title cut to [`TITLE_CHARS`].
fn heading(c: &Channel) -> String {
    let title = c.title.as_deref().map(|t| clip_chars(t, TITLE_CHARS));
    title_line(&c.label(), title.as_deref())
}

fn window_days(first: chrono::NaiveDate, last: chrono::NaiveDate) -> i64 {
    (last - first).num_days() + 1
}

/// The caption of the views chart: days with posts, Σ views, the 7-day average at the end
/// of the window (views a day, with its day) and the change of that average over the window.
/// About 500 visible characters at most, well within Telegram's caption limit.
pub(super) fn views_caption(v: &ViewsTrend, lang: Lang) -> String {
    let na = || t!(lang, "not-available");
    let days = window_days(v.first_day, v.last_day);
    let with_posts = v.days.iter().filter(|d| d.posts > 0).count() as i64;
    let views = v.days.iter().filter_map(|d| d.views).reduce(|a, b| a + b);
    let end = v.days.iter().rev().find_map(|d| d.avg7.map(|a| (d.day, a)));
    let rows = vec![
        (
            t!(lang, "views-row-days"),
            t!(lang, "n-of-m", n = with_posts, m = days),
        ),
        (
            t!(lang, "views-row-total"),
            views.map_or_else(na, |v| i18n::int(lang, v)),
        ),
        (
            t!(lang, "views-row-avg7"),
            end.map_or_else(na, |(day, avg)| {
                t!(
                    lang,
                    "value-on-day",
                    value = t!(lang, "per-day", value = i18n::int(lang, avg.round() as i64)),
                    day = i18n::date(lang, day)
                )
            }),
        ),
        (
            t!(lang, "views-row-change"),
            v.change_pct
                .map_or_else(na, |c| i18n::signed_pct(lang, c, 1)),
        ),
    ];
    format!(
        "{}\n{}\n{}\n{}",
        heading(&v.channel),
        t!(
            lang,
            "views-title",
            window = window(lang, v.first_day, v.last_day, days, &v.timezone)
        ),
        rows_block(&rows),
        t!(lang, "views-note")
    )
}

/// A weekday, 0 = Monday, in `lang`: "Tuesday" / "вторник".
fn weekday(lang: Lang, day: usize) -> String {
    t!(lang, "weekday", day = day.min(6))
}

/// The caption of the heatmap: the [`BEST_SLOTS`] best weekday hours (`Heatmap::best`) with
/// their median reach, index and posts, what the reach is, and that thin cells are empty.
/// About 800 visible characters at most (a long title is cut), within the caption limit.
pub(super) fn best_time_caption(h: &Heatmap, lang: Lang) -> String {
    let days = window_days(h.first_day, h.last_day);
    let mut out = format!(
        "{}\n{}\n",
        heading(&h.channel),
        t!(
            lang,
            "best-time-title",
            window = window(lang, h.first_day, h.last_day, days, &h.timezone)
        )
    );
    let best = h.best(BEST_SLOTS);
    if best.is_empty() {
        out.push_str(&t!(lang, "best-time-none", min = HEATMAP_MIN_POSTS));
    } else {
        out.push_str(&t!(lang, "best-time-top"));
        for (i, (day, hour, cell)) in best.iter().enumerate() {
            out.push('\n');
            out.push_str(&t!(
                lang,
                "best-time-slot",
                n = i + 1,
                weekday = weekday(lang, *day),
                from = format!("{:02}:00", hour % 24),
                to = format!("{:02}:00", (hour + 1) % 24),
                reach = cell.median_reach.map_or_else(
                    || t!(lang, "not-available"),
                    |r| { i18n::int(lang, r.round() as i64) }
                ),
                index = cell
                    .index
                    .map_or_else(|| t!(lang, "not-available"), |x| i18n::dec(lang, x, 1)),
                posts = cell.posts
            ));
        }
    }
    let basis = match h.basis {
        Some(ReachBasis::Reach24h) => Some(t!(lang, "best-time-basis-reach24")),
        Some(ReachBasis::LatestViews) => Some(t!(lang, "best-time-basis-latest")),
        Some(ReachBasis::Mixed) => Some(t!(lang, "best-time-basis-mixed")),
        None => None,
    };
    if let Some(b) = basis {
        out.push_str("\n\n");
        out.push_str(&b);
    }
    out.push('\n');
    out.push_str(&t!(
        lang,
        "best-time-empty-cells",
        min = HEATMAP_MIN_POSTS,
        zone = esc(&h.timezone)
    ));
    out
}

/// One line of a top list: rank, local day, views, engagement and the post's link.
fn top_post_line(lang: Lang, tz: Tz, n: usize, p: &TopPost) -> String {
    let na = || t!(lang, "not-available");
    t!(
        lang,
        "top-post-line",
        n = n,
        date = i18n::date(lang, p.published_at.with_timezone(&tz).date_naive()),
        views = p.views.map_or_else(na, |v| i18n::int(lang, v)),
        engagement = p.engagement_pct.map_or_else(na, |e| i18n::pct(lang, e, 1)),
        link = match &p.link {
            Some(l) => esc(l),
            None => t!(lang, "top-post-no-link", id = p.post_id.to_string()),
        }
    )
}

fn top_posts_with(t: &TopPosts, lang: Lang, k: usize) -> String {
    let tz: Tz = t.timezone.parse().unwrap_or(Tz::UTC);
    let days = window_days(t.first_day, t.last_day);
    let mut out = format!(
        "{}\n{}\n{}",
        t!(lang, "top-posts-title", channel = heading(&t.channel)),
        window(lang, t.first_day, t.last_day, days, &t.timezone),
        t!(lang, "top-posts-count", count = t.posts)
    );
    for (head, list) in [
        (t!(lang, "top-by-reach"), &t.by_reach),
        (t!(lang, "top-by-engagement"), &t.by_engagement),
    ] {
        out.push_str("\n\n");
        out.push_str(&head);
        if list.is_empty() {
            out.push('\n');
            out.push_str(&t!(lang, "top-none"));
        }
        for (i, p) in list.iter().take(k).enumerate() {
            out.push('\n');
            out.push_str(&top_post_line(lang, tz, i + 1, p));
        }
    }
    out
}

/// "Top posts": the [`TOP_POSTS`] posts with the highest reach and the [`TOP_POSTS`] with the
/// highest engagement, each with its day, views, engagement and `t.me` link (else its id).
/// Within Telegram's [`TEXT_LIMIT`]: fewer posts per list if it would not fit.
pub(super) fn top_posts_text(t: &TopPosts, lang: Lang) -> String {
    let mut k = TOP_POSTS;
    loop {
        let text = top_posts_with(t, lang, k);
        if k <= 1 || visible_len(&text) <= TEXT_LIMIT {
            return text;
        }
        k -= 1;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::domain::ChannelId;
    use crate::query::{HeatCell, ViewsDay};

    fn channel() -> Channel {
        Channel {
            id: ChannelId::new(1_700_000_001).unwrap(),
            handle: Some(format!("a{}", "x".repeat(31))),
            title: Some("Ж&<".repeat(43)),
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn post(id: i64, views: i64) -> TopPost {
        TopPost {
            post_id: id,
            published_at: Utc.with_ymd_and_hms(2026, 3, 2, 23, 30, 0).unwrap(),
            views: Some(views),
            reach_24h: Some(views as f64 * 0.8),
            forwards: Some(1_234_567),
            replies: Some(1_234_567),
            reactions: Some(1_234_567),
            engagement_pct: Some(123.45),
            link: Some(format!("https://t.me/a{}/{id}", "x".repeat(31))),
        }
    }

    #[test]
    fn top_posts_list_links_in_order_and_fit_a_message() {
        let by_reach: Vec<TopPost> = (0..5)
            .map(|i| post(9_999_999_990 + i, 1_999_999_999 - i))
            .collect();
        let mut by_engagement = by_reach.clone();
        by_engagement[4].link = None;
        let top = TopPosts {
            channel: channel(),
            first_day: day(1),
            last_day: day(30),
            timezone: "America/Argentina/ComodRivadavia".into(),
            posts: 1_234_567,
            by_reach,
            by_engagement,
        };
        for lang in Lang::ALL {
            let text = top_posts_text(&top, lang);
            assert!(visible_len(&text) <= TEXT_LIMIT, "{lang:?}: {text}");
            let first = text.find("/9999999990").expect("the top post's link");
            assert!(first < text.find("/9999999991").unwrap(), "{text}");
            assert!(
                text.contains("9999999994"),
                "a post without a link by its id"
            );
        }
        let en = top_posts_text(&top, Lang::En);
        assert!(en.contains("1,999,999,999"), "{en}");
        // Published 23:30 UTC on 2 March: 2 March in Buenos Aires too.
        assert!(en.contains("2 Mar 2026"), "{en}");
        let empty = TopPosts {
            by_reach: vec![],
            by_engagement: vec![],
            posts: 0,
            ..top
        };
        assert!(top_posts_text(&empty, Lang::En).contains("none"));
    }

    #[test]
    fn the_heatmap_caption_names_three_slots_in_the_readers_language() {
        let empty = HeatCell {
            posts: 1,
            median_reach: None,
            index: None,
        };
        let mut cells = vec![vec![empty; 24]; 7];
        let cell = |posts, reach: f64, index| HeatCell {
            posts,
            median_reach: Some(reach),
            index: Some(index),
        };
        cells[1][18] = cell(5, 1800.0, 1.8);
        cells[4][9] = cell(3, 1500.0, 1.5);
        cells[6][23] = cell(4, 1200.0, 1.2);
        cells[0][0] = cell(7, 500.0, 0.5);
        let h = Heatmap {
            channel: channel(),
            first_day: day(1),
            last_day: day(30),
            timezone: "Europe/Moscow".into(),
            cells,
            median_reach: Some(1000.0),
            posts: 19,
            basis: Some(ReachBasis::Mixed),
        };
        let en = best_time_caption(&h, Lang::En);
        assert!(en.contains("1. Tuesday, 18:00–19:00"), "{en}");
        assert!(en.contains("3. Sunday, 23:00–00:00"), "{en}");
        assert!(!en.contains("Monday"), "the weak slot is not named: {en}");
        assert!(en.contains("fewer than 3 posts"), "{en}");
        let ru = best_time_caption(&h, Lang::Ru);
        assert!(ru.contains("вторник") && ru.contains("пятница"), "{ru}");
        for text in [en, ru] {
            assert!(visible_len(&text) <= super::super::reply::CAPTION_LIMIT);
        }
    }

    #[test]
    fn the_views_caption_sums_views_and_reads_the_last_average() {
        let v = ViewsTrend {
            channel: channel(),
            first_day: day(1),
            last_day: day(30),
            timezone: "UTC".into(),
            days: vec![
                ViewsDay {
                    day: day(3),
                    posts: 2,
                    views: Some(1000),
                    avg7: Some(142.857),
                },
                ViewsDay {
                    day: day(20),
                    posts: 1,
                    views: Some(2500),
                    avg7: Some(357.14),
                },
            ],
            change_pct: Some(150.0),
        };
        let en = views_caption(&v, Lang::En);
        assert!(en.contains("2 of 30"), "{en}");
        assert!(en.contains("3,500"), "{en}");
        assert!(en.contains("357 /day on 20 Mar 2026"), "{en}");
        assert!(en.contains("+150.0 %"), "{en}");
        for text in [en, views_caption(&v, Lang::Ru)] {
            assert!(visible_len(&text) <= super::super::reply::CAPTION_LIMIT);
        }
    }
}
