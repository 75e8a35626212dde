//! `/compare @a @b .. [days]`, and "Compare with…" under a `/stats` reply, which asks for the
//! other channels and takes them from the user's next message (the one conversation the bot
//! keeps, in [`crate::state`]).

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId};

use super::access::Member;
use super::args;
use super::button::{Pressed, expired_text};
use super::reply::{self, esc};
use super::send::{known, say, send_chart};
use super::stats::{channel_of, query_and_chart};
use super::{Ctx, HandlerResult, TgBot};
use crate::domain::{ChannelId, ChannelRef, Days};
use crate::i18n::Lang;
use crate::query;
use crate::state::{self, Action, Awaiting};
use crate::t;

/// `/compare`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    _: Member,
    args: String,
    lang: Lang,
) -> HandlerResult {
    match args::compare(&args) {
        Ok(a) => send(&bot, &ctx, (msg.chat.id, lang), &a.channels, a.days).await,
        Err(e) => say(&bot, msg.chat.id, esc(&e.render(lang))).await,
    }
}

/// "Compare with…": asks for the channels and waits for the user's next message.
pub(super) async fn pressed(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    member: Member,
    action: Action,
    lang: Lang,
) -> HandlerResult {
    bot.answer_callback_query(q.id).await?;
    let chat = pressed.chat;
    let Some((c, days)) = channel_of(&ctx, &action).await? else {
        return say(&bot, chat, expired_text(lang)).await;
    };
    let waiting = Awaiting::CompareWith {
        channel: c.id.get(),
        days: days.get(),
    };
    state::set_awaiting(&ctx.db, chat.0, member.user.0 as i64, &waiting, ctx.now()).await?;
    let text = t!(lang, "compare-with-ask", channel = esc(&c.label()));
    say(&bot, chat, text).await
}

/// A member's message that is not a command: the channels a "Compare with…" waits for, or a
/// hint to send a command.
pub(super) async fn on_text(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    member: Member,
    lang: Lang,
) -> HandlerResult {
    let chat = msg.chat.id;
    let uid = member.user.0 as i64;
    let Some(Awaiting::CompareWith { channel, days }) =
        state::take_awaiting(&ctx.db, chat.0, uid, ctx.now()).await?
    else {
        return say(&bot, chat, t!(lang, "send-a-command")).await;
    };
    let first = ChannelRef::Id(ChannelId::new(channel)?);
    match args::compare_with(&first, msg.text().unwrap_or(""), Days::new(days)?) {
        Ok(a) => send(&bot, &ctx, (chat, lang), &a.channels, a.days).await,
        Err(e) => {
            // Keep waiting: the user can correct the list.
            let waiting = Awaiting::CompareWith { channel, days };
            state::set_awaiting(&ctx.db, chat.0, uid, &waiting, ctx.now()).await?;
            say(&bot, chat, esc(&e.render(lang))).await
        }
    }
}

/// The comparison: the table as the caption and the indexed-growth chart.
async fn send(
    bot: &TgBot,
    ctx: &Ctx,
    (chat, lang): (ChatId, Lang),
    refs: &[ChannelRef],
    days: Days,
) -> HandlerResult {
    let mut channels = Vec::with_capacity(refs.len());
    for r in refs {
        match known(bot, ctx, chat, r, lang).await? {
            Some(c) => channels.push(c),
            None => return Ok(()),
        }
    }
    let compute = query::compare(&ctx.engine, &channels, days, None);
    let Some((cmp, png)) =
        query_and_chart(bot, ctx, (chat, lang), compute, crate::chart::compare_png).await?
    else {
        return Ok(());
    };
    let caption = reply::compare_caption(&cmp, lang);
    send_chart(bot, chat, png, "compare.png", caption, None).await
}
