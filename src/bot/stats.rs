//! `/stats @channel [days]` and its window buttons: the summary as a caption, the members
//! chart, and buttons for other windows, "compare with…", export, and the post analytics
//! ("Views", "Best time", "Top posts", handled in `posts.rs`).
//!
//! The members chart comes from the chart cache when someone asked for the same picture
//! before ([`members_chart`]). Each reply records its engine time (`send::EngineTime`) and
//! `tgpulse_bot_stats_query_seconds`, the query's share of it.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId, UserId};
use tokio::sync::SemaphorePermit;

use super::access::Member;
use super::args;
use super::button::{Pressed, expired_text, keyboard};
use super::reply::{self, esc};
use super::send::{EngineTime, known, say, send_chart_timed};
use super::timer::ReplyTimer;
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::chart::ChartTimes;
use crate::chart::cache::ChartKey;
use crate::domain::{ChannelRef, Days};
use crate::i18n::Lang;
use crate::query::{self, Channel, ChannelStats};
use crate::state::Action;
use crate::t;

/// `/stats`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    member: Member,
    args: String,
    lang: Lang,
    timer: ReplyTimer,
) -> HandlerResult {
    let chat = msg.chat.id;
    let a = match args::stats(&args) {
        Ok(a) => a,
        Err(e) => return say(&bot, chat, esc(&e.render(lang))).await,
    };
    match known(&bot, &ctx, chat, &a.channel, lang).await? {
        Some(c) => {
            let to = (chat, lang);
            send(&bot, &ctx, to, member.user, &c, a.days, timer.started()).await
        }
        None => Ok(()),
    }
}

/// A window button ("90 days") under a `/stats` reply: a new reply over that window.
#[allow(
    clippy::too_many_arguments,
    reason = "dptree injects each dependency as an argument"
)]
pub(super) async fn pressed(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    member: Member,
    action: Action,
    lang: Lang,
    timer: ReplyTimer,
) -> HandlerResult {
    bot.answer_callback_query(q.id).await?;
    let Some((c, days)) = channel_of(&ctx, &action).await? else {
        return say(&bot, pressed.chat, expired_text(lang)).await;
    };
    let to = (pressed.chat, lang);
    send(&bot, &ctx, to, member.user, &c, days, timer.started()).await
}

/// The channel and window of a stats-like button; `None` if the stored values no longer
/// parse (a stale row).
///
/// errors: the channel lookup's.
pub(super) async fn channel_of(ctx: &Ctx, a: &Action) -> Result<Option<(Channel, Days)>, BoxError> {
    let Some((id, days)) = a.channel_days() else {
        return Ok(None);
    };
    Ok(Some((
        query::resolve(&ctx.db, &ChannelRef::Id(id)).await?,
        days,
    )))
}

/// Computes `T` in one of the query slots and returns it with the slot still held (drop it
/// before sending anything). `None` when there is no data or the query timed out: the slot is
/// released and the user told why, as `/stats` tells it.
///
/// errors: the query's other errors, and a closed semaphore.
async fn in_query_slot<'c, T>(
    bot: &TgBot,
    ctx: &'c Ctx,
    (chat, lang): (ChatId, Lang),
    compute: impl Future<Output = Result<T, query::Error>>,
) -> Result<Option<(T, SemaphorePermit<'c>)>, BoxError> {
    let permit = ctx.queries.acquire().await?;
    match compute.await {
        Ok(d) => Ok(Some((d, permit))),
        Err(query::Error::NoData(c)) => {
            drop(permit);
            say(bot, chat, t!(lang, "no-samples-yet", channel = esc(&c))).await?;
            Ok(None)
        }
        Err(e) if e.is_timeout() => {
            drop(permit);
            say(bot, chat, t!(lang, "query-timeout")).await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Computes `T` while holding one of the query slots, released before anything is sent.
/// `None` when there is no data or the query timed out (the user was told why). For the
/// replies without a chart (top posts, mentions).
///
/// errors: the query's other errors.
pub(super) async fn query_only<T>(
    bot: &TgBot,
    ctx: &Ctx,
    to: (ChatId, Lang),
    compute: impl Future<Output = Result<T, query::Error>>,
) -> Result<Option<T>, BoxError> {
    Ok(in_query_slot(bot, ctx, to, compute)
        .await?
        .map(|(data, _permit)| data))
}

/// Computes `T` and draws its chart while holding one of the query slots, released before
/// anything is sent. `None` when there is no data (the user was told why). The chart is drawn
/// on a blocking thread, off the runtime.
pub(super) async fn query_and_chart<T: Clone + Send + 'static>(
    bot: &TgBot,
    ctx: &Ctx,
    to: (ChatId, Lang),
    compute: impl Future<Output = Result<T, query::Error>>,
    draw: fn(&T, Lang) -> Result<Vec<u8>, crate::chart::Error>,
) -> Result<Option<(T, Result<Vec<u8>, BoxError>)>, BoxError> {
    query_and_chart_with(bot, ctx, to, compute, draw, chart_failed).await
}

/// [`query_and_chart`], with `failed` saying why there is no chart.
pub(super) async fn query_and_chart_with<T: Clone + Send + 'static>(
    bot: &TgBot,
    ctx: &Ctx,
    (chat, lang): (ChatId, Lang),
    compute: impl Future<Output = Result<T, query::Error>>,
    draw: fn(&T, Lang) -> Result<Vec<u8>, crate::chart::Error>,
    failed: fn(Lang, &crate::chart::Error) -> BoxError,
) -> Result<Option<(T, Result<Vec<u8>, BoxError>)>, BoxError> {
    let Some((data, permit)) = in_query_slot(bot, ctx, (chat, lang), compute).await? else {
        return Ok(None);
    };
    let drawn = data.clone();
    let png = tokio::task::spawn_blocking(move || draw(&drawn, lang))
        .await
        .map_err(BoxError::from)
        .and_then(|png| png.map_err(|e| failed(lang, &e)));
    drop(permit);
    Ok(Some((data, png)))
}

/// Why there is no chart, in the reader's language (sent in place of the picture).
pub(super) fn chart_failed(lang: Lang, e: &crate::chart::Error) -> BoxError {
    let text = match e {
        crate::chart::Error::Empty(c) => t!(lang, "chart-empty", channel = c.clone()),
        e => t!(lang, "chart-failed", error = e.to_string()),
    };
    BoxError::from(text)
}

/// The members chart of `s` in `lang` as PNG bytes, with how long drawing and encoding it
/// took: from the chart cache (`Ctx::charts`, times `None`) when the same picture was drawn
/// before, else drawn on a blocking thread (off the runtime) and cached.
///
/// errors: why there is no chart, in the reader's language ([`chart_failed`]), or the
/// drawing thread's panic.
pub(super) async fn members_chart(
    ctx: &Ctx,
    s: &ChannelStats,
    lang: Lang,
) -> Result<(Bytes, Option<ChartTimes>), BoxError> {
    let key = ChartKey::members(s, lang);
    if let Some(png) = ctx.charts.get(&key) {
        return Ok((png, None));
    }
    let drawn = s.clone();
    let (png, times) = tokio::task::spawn_blocking(move || {
        let png = crate::chart::members_png(&drawn, lang);
        (png, crate::chart::take_times())
    })
    .await?;
    let png = Bytes::from(png.map_err(|e| chart_failed(lang, &e))?);
    ctx.charts.insert(key, png.clone());
    Ok((png, times))
}

/// The `/stats` reply: the caption, the members chart, and buttons for other windows,
/// compare and export, and a row for the post analytics (views, best time, top posts).
/// `started` is when the update arrived (for `tgpulse_bot_engine_seconds{command="stats"}`).
pub(super) async fn send(
    bot: &TgBot,
    ctx: &Ctx,
    (chat, lang): (ChatId, Lang),
    user: UserId,
    c: &Channel,
    days: Days,
    started: Instant,
) -> HandlerResult {
    let mut took = EngineTime::new("stats", started);
    let asked = Instant::now();
    // Times itself: it starts when `in_query_slot` has a slot for it.
    let compute = async {
        let began = Instant::now();
        let s = query::stats(&ctx.engine, c, days, None).await?;
        Ok::<_, query::Error>((s, began.duration_since(asked), began.elapsed()))
    };
    let Some(((s, wait, query_time), permit)) =
        in_query_slot(bot, ctx, (chat, lang), compute).await?
    else {
        return Ok(());
    };
    (took.wait, took.query) = (wait, query_time);
    metrics::histogram!("tgpulse_bot_stats_query_seconds").record(query_time.as_secs_f64());
    // The slot is held while drawing, as for every chart; not for a cached one.
    let png = members_chart(ctx, &s, lang).await.map(|(png, times)| {
        took.cached = Some(times.is_none());
        if let Some(t) = times {
            (took.draw, took.encode) = (t.draw, t.encode);
        }
        png
    });
    drop(permit);
    let caption = reply::stats_caption(&s, ctx.now(), lang);
    if png.is_err() {
        let engine = Some(took);
        return send_chart_timed(bot, chat, png, "stats.png", caption, None, engine).await;
    }
    let (channel, d) = (c.id.get(), days.get());
    let windows = [7, 30, 90, 365]
        .into_iter()
        .filter(|w| *w != d)
        .map(|days| {
            let label = t!(lang, "n-days", count = days);
            (label, Action::Stats { channel, days })
        })
        .collect();
    let more = vec![
        (
            t!(lang, "button-compare-with"),
            Action::CompareWith { channel, days: d },
        ),
        (
            t!(lang, "button-export"),
            Action::Export { channel, days: d },
        ),
    ];
    let posts = vec![
        (t!(lang, "button-views"), Action::Views { channel, days: d }),
        (
            t!(lang, "button-best-time"),
            Action::BestTime { channel, days: d },
        ),
        (
            t!(lang, "button-top-posts"),
            Action::TopPosts { channel, days: d },
        ),
    ];
    let markup = keyboard(ctx, chat, user, vec![windows, more, posts], false).await?;
    let engine = Some(took);
    send_chart_timed(bot, chat, png, "stats.png", caption, Some(markup), engine).await
}
