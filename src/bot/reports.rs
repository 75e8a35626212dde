//! `/reports on|off` and the sending of queued reports (`reports_queue`, see
//! [`crate::report`]): the report's messages, then its chart.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{ChatId, InputFile, ParseMode};

use super::access::{Member, Role};
use super::send::say;
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::report::queue::{self, Outcome, Queued};

/// How to use `/reports`.
pub(super) const USAGE: &str = "/reports on — the weekly (Monday) and monthly (1st) reports of every watched channel\n/reports off — no more reports";

/// `/reports on|off`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    member: Member,
    args: String,
) -> HandlerResult {
    let on = match args.trim() {
        "on" => true,
        "off" => false,
        _ => return say(&bot, msg.chat.id, USAGE).await,
    };
    queue::subscribe(&ctx.db, member.user.0 as i64, on)
        .await
        .map_err(BoxError::from)?;
    let text = if on {
        "You will get the weekly and monthly reports. /reports off to stop."
    } else {
        "No more reports. /reports on to start again."
    };
    say(&bot, msg.chat.id, text).await
}

async fn send(bot: &TgBot, q: &Queued) -> HandlerResult {
    let chat = ChatId(q.recipient);
    for m in &q.messages {
        bot.send_message(chat, m.clone())
            .parse_mode(ParseMode::Html)
            .await?;
    }
    if let Some(png) = &q.chart {
        bot.send_photo(chat, InputFile::memory(png.clone()).file_name("report.png"))
            .caption("Indexed growth of the 10 largest channels (100 = the period's start)")
            .await?;
    }
    Ok(())
}

/// Sends every report due on the bot's clock; a recipient without a role any more is dropped.
///
/// errors: the queue's.
pub(super) async fn deliver(bot: &TgBot, ctx: &Ctx) -> Result<usize, BoxError> {
    let now = ctx.now();
    let mut sent = 0;
    for q in queue::claim_due(&ctx.db, now)
        .await
        .map_err(BoxError::from)?
    {
        let role = super::access::role_of(ctx, q.recipient as u64).await?;
        let (outcome, error) = if role == Role::Stranger {
            (Outcome::Dropped, None)
        } else {
            match send(bot, &q).await {
                Ok(()) => {
                    sent += 1;
                    (Outcome::Sent, None)
                }
                Err(e) => (Outcome::Failed, Some(e.to_string())),
            }
        };
        let given_up = queue::finish(&ctx.db, &q, outcome, error.as_deref(), ctx.now())
            .await
            .map_err(BoxError::from)?;
        if let Some(e) = error {
            tracing::warn!(user_id = q.recipient, kind = %q.kind, given_up, error = %e, "cannot send a report");
        }
    }
    Ok(sent)
}
