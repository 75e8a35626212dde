//! Inline buttons. Callback data is only `a:<token>`; the action behind it comes from
//! PostgreSQL ([`crate::state`]), so buttons survive restarts and carry nothing forgeable.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId, MessageId, ParseMode};

use super::handlers::{self, Gate, say};
use super::reply::{REFUSAL, esc};
use super::{BoxError, Ctx, HandlerResult, Role, TgBot};
use crate::collect::watch;
use crate::domain::{ChannelId, ChannelRef, Days};
use crate::query;
use crate::state::{self, Action, Awaiting};

const EXPIRED: &str = "This button has expired; send the command again.";

/// Entry point for every button press.
pub(super) async fn on_callback(bot: TgBot, q: CallbackQuery, ctx: Arc<Ctx>) -> HandlerResult {
    let Some(msg) = &q.message else {
        bot.answer_callback_query(q.id.clone())
            .text(EXPIRED)
            .await?;
        return Ok(());
    };
    let chat = msg.chat().id;
    let message_id = msg.id();
    let private = msg.chat().is_private();
    let what = q.data.clone().unwrap_or_default();
    // Refused or rate-limited: close the client's spinner with a short text, nothing else.
    let role = match handlers::admit(&ctx, private, &q.from, &what).await? {
        Gate::Allowed(role) => role,
        Gate::Refused { .. } => {
            bot.answer_callback_query(q.id.clone())
                .text(REFUSAL)
                .await?;
            return Ok(());
        }
        Gate::Limited(wait) => {
            let mut req = bot.answer_callback_query(q.id.clone());
            if let Some(w) = wait {
                req = req.text(handlers::too_many(w));
            }
            req.await?;
            return Ok(());
        }
    };
    let token = what
        .strip_prefix("a:")
        .filter(|t| t.len() == 16 && t.chars().all(|c| c.is_ascii_hexdigit()));
    let action = match token {
        Some(t) => state::take_action(&ctx.db, t, chat.0, q.from.id.0 as i64).await?,
        None => None,
    };
    let Some(action) = action else {
        bot.answer_callback_query(q.id.clone())
            .text(EXPIRED)
            .await?;
        return Ok(());
    };
    let user = q.from.id.0;
    match action {
        Action::Remove { channel } => {
            if role != Role::Admin {
                bot.answer_callback_query(q.id.clone())
                    .text("Only admins may remove channels.")
                    .await?;
                return Ok(());
            }
            let id = ChannelId::new(channel)?;
            let label = query::resolve(&ctx.db, &ChannelRef::Id(id))
                .await
                .map(|c| c.label())
                .unwrap_or_else(|_| id.to_string());
            let was = watch::remove(&ctx.db, id).await?;
            tracing::info!(admin = user, channel, "stopped watching a channel");
            bot.answer_callback_query(q.id.clone())
                .text("Stopped.")
                .await?;
            let text = if was {
                format!(
                    "Stopped collecting <b>{}</b>; running collectors drop it within 5 minutes. Its samples stay in the database.",
                    esc(&label)
                )
            } else {
                format!("<b>{}</b> was no longer collected.", esc(&label))
            };
            edit(&bot, chat, message_id, text, None).await
        }
        Action::Cancel => {
            bot.answer_callback_query(q.id.clone())
                .text("Cancelled.")
                .await?;
            edit(
                &bot,
                chat,
                message_id,
                "Cancelled; nothing changed.".into(),
                None,
            )
            .await
        }
        Action::ListPage { page } => {
            bot.answer_callback_query(q.id.clone()).await?;
            let (text, markup) = handlers::list_page(&ctx, chat, user, page).await?;
            edit(&bot, chat, message_id, text, markup).await
        }
        ref a @ Action::Stats { .. } => {
            bot.answer_callback_query(q.id.clone()).await?;
            let Some((c, days)) = channel_of(&ctx, a).await? else {
                return say(&bot, chat, EXPIRED).await;
            };
            handlers::stats(&bot, &ctx, chat, user, &c, days).await
        }
        ref a @ Action::CompareWith { channel, days } => {
            bot.answer_callback_query(q.id.clone()).await?;
            let Some((c, _)) = channel_of(&ctx, a).await? else {
                return say(&bot, chat, EXPIRED).await;
            };
            state::set_awaiting(
                &ctx.db,
                chat.0,
                user as i64,
                &Awaiting::CompareWith { channel, days },
            )
            .await?;
            say(
                &bot,
                chat,
                format!(
                    "Compare <b>{}</b> with which channels? Send 1 to 9 @handles, e.g. <code>@durov @telegram</code>.",
                    esc(&c.label())
                ),
            )
            .await
        }
        ref a @ Action::Export { .. } => {
            bot.answer_callback_query(q.id.clone())
                .text("Exporting…")
                .await?;
            let Some((c, days)) = channel_of(&ctx, a).await? else {
                return say(&bot, chat, EXPIRED).await;
            };
            let args = super::args::ExportArgs {
                channel: ChannelRef::Id(c.id),
                format: crate::export::ExportFormat::Parquet,
                days: Some(days),
                what: super::args::ExportWhat::Members,
            };
            super::export::run(&bot, &ctx, chat, &c, &args).await
        }
    }
}

/// The channel and window of a stats-like action; `None` if the stored values no longer
/// parse (a stale row).
///
/// errors: the channel lookup's.
async fn channel_of(ctx: &Ctx, a: &Action) -> Result<Option<(query::Channel, Days)>, BoxError> {
    let Some((id, days)) = a.channel_days() else {
        return Ok(None);
    };
    Ok(Some((
        query::resolve(&ctx.db, &ChannelRef::Id(id)).await?,
        days,
    )))
}

/// Replaces a message's text (and its buttons: `None` removes them).
pub(super) async fn edit(
    bot: &TgBot,
    chat: ChatId,
    message_id: MessageId,
    text: String,
    markup: Option<teloxide::types::InlineKeyboardMarkup>,
) -> HandlerResult {
    let mut req = bot
        .edit_message_text(chat, message_id, text)
        .parse_mode(ParseMode::Html);
    if let Some(m) = markup {
        req = req.reply_markup(m);
    }
    req.await?;
    Ok(())
}
