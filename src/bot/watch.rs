//! The watched channels: `/add` (resolved through the catalog's resolver), `/remove` with a
//! Yes/Cancel confirmation that survives restarts, and `/list`, paginated with buttons.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId, InlineKeyboardMarkup, UserId};

use super::access::{Admin, Member};
use super::args::{self, USAGE_REMOVE};
use super::button::{Pressed, keyboard};
use super::reply::{self, esc};
use super::send::{edit, known, say, say_with};
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::catalog::{self, SourceError};
use crate::domain::{ChannelId, ChannelRef};
use crate::i18n::Lang;
use crate::query;
use crate::state::Action;
use crate::{msg, t};

/// `/add @channel`: resolves the handle and starts collecting the channel.
pub(super) async fn add(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    admin: Admin,
    args: String,
    lang: Lang,
) -> HandlerResult {
    let chat = msg.chat.id;
    let h = match args::handle(&args) {
        Ok(h) => h,
        Err(e) => return say(&bot, chat, esc(&e.render(lang))).await,
    };
    let via = esc(&ctx.resolver_name);
    let Some(resolver) = &ctx.resolver else {
        return say(&bot, chat, t!(lang, "add-no-resolver", via = via)).await;
    };
    let handle = h.to_string();
    let info = match resolver.resolve(&h).await {
        Ok(i) => i,
        Err(SourceError::NotFound(_)) => {
            let text = t!(lang, "add-not-found", via = via, handle = handle);
            return say(&bot, chat, text).await;
        }
        Err(e) => {
            tracing::warn!(handle = %h, error = %crate::error_chain(&e), "resolving for /add failed");
            let text = t!(
                lang,
                "add-failed",
                handle = handle,
                via = via,
                error = esc(&e.to_string())
            );
            return say(&bot, chat, text).await;
        }
    };
    let new = catalog::add(&ctx.db, &info, Some(admin.user.0 as i64)).await?;
    let title = info
        .title
        .as_deref()
        .map(|t| format!(" · {}", esc(t)))
        .unwrap_or_default();
    let id = info.channel_id.to_string();
    let text = if new {
        t!(lang, "add-done", handle = handle, id = id, title = title)
    } else {
        t!(lang, "add-already", handle = handle, id = id, title = title)
    };
    say(&bot, chat, text).await
}

/// `/remove @channel`: asks for confirmation with Yes/Cancel buttons (used up together).
pub(super) async fn remove(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    admin: Admin,
    args: String,
    lang: Lang,
) -> HandlerResult {
    let chat = msg.chat.id;
    let words: Vec<&str> = args.split_whitespace().collect();
    let [word] = words.as_slice() else {
        let e = msg!("arg-which-channel").with_usage(USAGE_REMOVE);
        return say(&bot, chat, esc(&e.render(lang))).await;
    };
    let r = match args::channel(word, USAGE_REMOVE) {
        Ok(r) => r,
        Err(e) => return say(&bot, chat, esc(&e.render(lang))).await,
    };
    let Some(c) = known(&bot, &ctx, chat, &r, lang).await? else {
        return Ok(());
    };
    if !catalog::is_watched(&ctx.db, c.id).await? {
        let text = t!(lang, "remove-not-watched", channel = esc(&c.label()));
        return say(&bot, chat, text).await;
    }
    let row = vec![
        (
            t!(lang, "button-remove-yes"),
            Action::Remove {
                channel: c.id.get(),
            },
        ),
        (t!(lang, "button-cancel"), Action::Cancel),
    ];
    let markup = keyboard(&ctx, chat, admin.user, vec![row], true).await?;
    let text = t!(lang, "remove-ask", channel = esc(&c.label()));
    say_with(&bot, chat, text, Some(markup)).await
}

/// "Yes, stop collecting", pressed by an admin.
pub(super) async fn confirm_remove(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    admin: Admin,
    channel: i64,
    lang: Lang,
) -> HandlerResult {
    let id = ChannelId::new(channel)?;
    let label = query::resolve(&ctx.db, &ChannelRef::Id(id))
        .await
        .map(|c| c.label())
        .unwrap_or_else(|_| id.to_string());
    let was = catalog::remove(&ctx.db, id).await?;
    tracing::info!(admin = admin.user.0, channel, "stopped watching a channel");
    bot.answer_callback_query(q.id)
        .text(t!(lang, "remove-stopped-short"))
        .await?;
    let text = if was {
        t!(lang, "remove-stopped", channel = esc(&label))
    } else {
        t!(lang, "remove-was-not", channel = esc(&label))
    };
    edit(&bot, pressed.chat, pressed.message, text, None).await
}

/// "Yes, stop collecting", pressed by someone who is not an admin (any more).
pub(super) async fn remove_refused(bot: TgBot, q: CallbackQuery, lang: Lang) -> HandlerResult {
    bot.answer_callback_query(q.id)
        .text(t!(lang, "remove-admins-only"))
        .await?;
    Ok(())
}

/// "Cancel" under a confirmation.
pub(super) async fn cancel(
    bot: TgBot,
    q: CallbackQuery,
    pressed: Pressed,
    lang: Lang,
) -> HandlerResult {
    bot.answer_callback_query(q.id)
        .text(t!(lang, "cancelled-short"))
        .await?;
    let text = t!(lang, "cancelled");
    edit(&bot, pressed.chat, pressed.message, text, None).await
}

/// `/list`, page 1, as a new message.
pub(super) async fn list(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    member: Member,
    lang: Lang,
) -> HandlerResult {
    let (text, markup) = page(&ctx, (msg.chat.id, lang), member.user, 0).await?;
    say_with(&bot, msg.chat.id, text, markup).await
}

/// ‹ previous / next › under `/list`: the message shows the other page.
pub(super) async fn list_pressed(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    member: Member,
    page_no: u32,
    lang: Lang,
) -> HandlerResult {
    bot.answer_callback_query(q.id).await?;
    let (text, markup) = page(&ctx, (pressed.chat, lang), member.user, page_no).await?;
    edit(&bot, pressed.chat, pressed.message, text, markup).await
}

/// One `/list` page (0-based) and its ‹ › buttons (none when everything fits on one page).
async fn page(
    ctx: &Ctx,
    (chat, lang): (ChatId, Lang),
    user: UserId,
    page: u32,
) -> Result<(String, Option<InlineKeyboardMarkup>), BoxError> {
    let all = catalog::watched(&ctx.db).await?;
    let (text, pages) = reply::list_page(&all, page as usize, ctx.now(), lang);
    if pages <= 1 {
        return Ok((text, None));
    }
    let page = page.min(pages as u32 - 1);
    let mut row = Vec::new();
    if page > 0 {
        row.push((
            t!(lang, "button-previous"),
            Action::ListPage { page: page - 1 },
        ));
    }
    if page + 1 < pages as u32 {
        row.push((t!(lang, "button-next"), Action::ListPage { page: page + 1 }));
    }
    let markup = keyboard(ctx, chat, user, vec![row], false).await?;
    Ok((text, Some(markup)))
}
