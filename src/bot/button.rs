//! Inline buttons. Callback data is only `a:<token>`; the action behind it lives in
//! PostgreSQL ([`crate::state`]), so buttons survive restarts and carry nothing forgeable.
//! A leaf like `send.rs`: the features build keyboards here, the schema takes presses here.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{
    CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, UserId,
};

use super::access::Member;
use super::{Ctx, HandlerResult, TgBot};
use crate::i18n::Lang;
use crate::state::{self, Action};
use crate::t;

/// The answer to a press whose action is gone (unknown, expired, used up, someone else's).
pub(super) fn expired_text(lang: Lang) -> String {
    t!(lang, "button-expired")
}

/// Stores what every button of one message does, in one statement, and returns the
/// keyboard, row by row. With `one_shot`, using one button uses up all of them (Yes/Cancel).
///
/// errors: the state's, when the actions cannot be stored.
pub(super) async fn keyboard<S: Into<String>>(
    ctx: &Ctx,
    chat: ChatId,
    user: UserId,
    rows: Vec<Vec<(S, Action)>>,
    one_shot: bool,
) -> Result<InlineKeyboardMarkup, state::Error> {
    let actions: Vec<Action> = rows.iter().flatten().map(|(_, a)| a.clone()).collect();
    let tokens = state::put_actions(
        &ctx.db,
        chat.0,
        user.0 as i64,
        &actions,
        one_shot,
        ctx.now(),
    )
    .await?;
    let mut tokens = tokens.into_iter();
    let rows = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(tokens.by_ref())
                .map(|((text, _), token)| {
                    InlineKeyboardButton::callback(text.into(), format!("a:{token}"))
                })
                .collect()
        })
        .collect::<Vec<Vec<_>>>();
    Ok(InlineKeyboardMarkup::new(rows))
}

/// Where a button was pressed: its chat and message.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pressed {
    /// The chat.
    pub(super) chat: ChatId,
    /// The message the button belongs to.
    pub(super) message: MessageId,
}

impl Pressed {
    /// `None` when Telegram did not send the message along (it is too old).
    pub(super) fn of(q: CallbackQuery) -> Option<Self> {
        let m = q.message.as_ref()?;
        Some(Self {
            chat: m.chat().id,
            message: m.id(),
        })
    }
}

/// What a press found.
#[derive(Debug, Clone)]
pub(super) enum Press {
    /// The action stored for the button (one-shot actions are now used up).
    Action(Action),
    /// No action for this token, this user and this chat, or it expired.
    Expired,
    /// The state could not be read (logged).
    Failed,
}

/// Takes the action behind a press. Only the member the button was shown to gets it: a
/// token pressed by anyone else finds nothing (and stays usable by its owner).
pub(super) async fn take(
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    member: Member,
) -> Press {
    let token = q
        .data
        .as_deref()
        .and_then(|d| d.strip_prefix("a:"))
        .filter(|t| t.len() == 16 && t.chars().all(|c| c.is_ascii_hexdigit()));
    let Some(token) = token else {
        return Press::Expired;
    };
    let user = member.user.0 as i64;
    match state::take_action(&ctx.db, token, pressed.chat.0, user, ctx.now()).await {
        Ok(Some(a)) => Press::Action(a),
        Ok(None) => Press::Expired,
        Err(e) => {
            tracing::error!(user_id = user, error = %crate::error_chain(&e), "cannot read a button's action");
            Press::Failed
        }
    }
}

/// Answers a press whose action is gone.
pub(super) async fn expired(bot: TgBot, q: CallbackQuery, lang: Lang) -> HandlerResult {
    bot.answer_callback_query(q.id)
        .text(expired_text(lang))
        .await?;
    Ok(())
}

/// Answers a press whose action could not be read.
pub(super) async fn failed(bot: TgBot, q: CallbackQuery, lang: Lang) -> HandlerResult {
    bot.answer_callback_query(q.id)
        .text(t!(lang, "button-failed"))
        .await?;
    Ok(())
}
