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
use crate::query;
use crate::state::Action;

/// `/add @channel`: resolves the handle and starts collecting the channel.
pub(super) async fn add(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    admin: Admin,
    args: String,
) -> HandlerResult {
    let chat = msg.chat.id;
    let h = match args::handle(&args) {
        Ok(h) => h,
        Err(e) => return say(&bot, chat, esc(&e)).await,
    };
    let via = esc(&ctx.resolver_name);
    let Some(resolver) = &ctx.resolver else {
        let text = format!("No source can resolve handles: configure [{via}] in the sources file.");
        return say(&bot, chat, text).await;
    };
    let info = match resolver.resolve(&h).await {
        Ok(i) => i,
        Err(SourceError::NotFound(_)) => {
            let text = format!(
                "{via} can't find {h}. Check the spelling; a private channel needs the bot (or account) as a member."
            );
            return say(&bot, chat, text).await;
        }
        Err(e) => {
            tracing::warn!(handle = %h, error = %crate::error_chain(&e), "resolving for /add failed");
            let text = format!(
                "Could not resolve {h} through {via} right now: {}. Try again later.",
                esc(&e.to_string())
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
    let text = if new {
        format!(
            "Now collecting <b>{h}</b> (id {}){title}. Running collectors pick it up within 5 minutes; members are read hourly.",
            info.channel_id
        )
    } else {
        format!(
            "<b>{h}</b> (id {}){title} is already collected.",
            info.channel_id
        )
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
) -> HandlerResult {
    let chat = msg.chat.id;
    let words: Vec<&str> = args.split_whitespace().collect();
    let [word] = words.as_slice() else {
        return say(&bot, chat, format!("Which channel?\nUsage: {USAGE_REMOVE}")).await;
    };
    let r = match args::channel(word, USAGE_REMOVE) {
        Ok(r) => r,
        Err(e) => return say(&bot, chat, esc(&e)).await,
    };
    let Some(c) = known(&bot, &ctx, chat, &r).await? else {
        return Ok(());
    };
    if !catalog::is_watched(&ctx.db, c.id).await? {
        let text = format!("{} is not collected; nothing to remove.", esc(&c.label()));
        return say(&bot, chat, text).await;
    }
    let row = vec![
        (
            "Yes, stop collecting",
            Action::Remove {
                channel: c.id.get(),
            },
        ),
        ("Cancel", Action::Cancel),
    ];
    let markup = keyboard(&ctx, chat, admin.user, vec![row], true).await?;
    let text = format!(
        "Stop collecting <b>{}</b>? Its samples stay in the database.",
        esc(&c.label())
    );
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
) -> HandlerResult {
    let id = ChannelId::new(channel)?;
    let label = query::resolve(&ctx.db, &ChannelRef::Id(id))
        .await
        .map(|c| c.label())
        .unwrap_or_else(|_| id.to_string());
    let was = catalog::remove(&ctx.db, id).await?;
    tracing::info!(admin = admin.user.0, channel, "stopped watching a channel");
    bot.answer_callback_query(q.id).text("Stopped.").await?;
    let text = if was {
        format!(
            "Stopped collecting <b>{}</b>; running collectors drop it within 5 minutes. Its samples stay in the database.",
            esc(&label)
        )
    } else {
        format!("<b>{}</b> was no longer collected.", esc(&label))
    };
    edit(&bot, pressed.chat, pressed.message, text, None).await
}

/// "Yes, stop collecting", pressed by someone who is not an admin (any more).
pub(super) async fn remove_refused(bot: TgBot, q: CallbackQuery) -> HandlerResult {
    bot.answer_callback_query(q.id)
        .text("Only admins may remove channels.")
        .await?;
    Ok(())
}

/// "Cancel" under a confirmation.
pub(super) async fn cancel(bot: TgBot, q: CallbackQuery, pressed: Pressed) -> HandlerResult {
    bot.answer_callback_query(q.id).text("Cancelled.").await?;
    let text = "Cancelled; nothing changed.".to_owned();
    edit(&bot, pressed.chat, pressed.message, text, None).await
}

/// `/list`, page 1, as a new message.
pub(super) async fn list(bot: TgBot, ctx: Arc<Ctx>, msg: Message, member: Member) -> HandlerResult {
    let (text, markup) = page(&ctx, msg.chat.id, member.user, 0).await?;
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
) -> HandlerResult {
    bot.answer_callback_query(q.id).await?;
    let (text, markup) = page(&ctx, pressed.chat, member.user, page_no).await?;
    edit(&bot, pressed.chat, pressed.message, text, markup).await
}

/// One `/list` page (0-based) and its ‹ › buttons (none when everything fits on one page).
async fn page(
    ctx: &Ctx,
    chat: ChatId,
    user: UserId,
    page: u32,
) -> Result<(String, Option<InlineKeyboardMarkup>), BoxError> {
    let all = catalog::watched(&ctx.db).await?;
    let (text, pages) = reply::list_page(&all, page as usize, ctx.now());
    if pages <= 1 {
        return Ok((text, None));
    }
    let page = page.min(pages as u32 - 1);
    let mut row = Vec::new();
    if page > 0 {
        row.push(("‹ previous", Action::ListPage { page: page - 1 }));
    }
    if page + 1 < pages as u32 {
        row.push(("next ›", Action::ListPage { page: page + 1 }));
    }
    let markup = keyboard(ctx, chat, user, vec![row], false).await?;
    Ok((text, Some(markup)))
}
