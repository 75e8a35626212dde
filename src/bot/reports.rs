//! `/reports on|off` and the sending of queued reports (`reports_queue`, see
//! [`crate::report`]): the report's messages, then its chart.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{ChatId, InputFile, ParseMode};

use super::access::{Member, Role};
use super::send::say;
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::i18n::Lang;
use crate::report::queue::{self, Outcome, Queued};
use crate::t;

/// `/reports on|off`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    member: Member,
    args: String,
    lang: Lang,
) -> HandlerResult {
    let on = match args.trim() {
        "on" => true,
        "off" => false,
        _ => return say(&bot, msg.chat.id, t!(lang, "usage-reports")).await,
    };
    queue::subscribe(&ctx.db, member.user.0 as i64, on)
        .await
        .map_err(BoxError::from)?;
    let text = if on {
        t!(lang, "reports-on")
    } else {
        t!(lang, "reports-off")
    };
    say(&bot, msg.chat.id, text).await
}

/// Sends the parts of a report not sent yet, recording each as it goes, so a retry resumes
/// where the failure was instead of repeating what the user already has.
async fn send(bot: &TgBot, ctx: &Ctx, q: &Queued) -> HandlerResult {
    let chat = ChatId(q.recipient);
    for (i, m) in q.messages.iter().enumerate().skip(q.parts_sent) {
        bot.send_message(chat, m.clone())
            .parse_mode(ParseMode::Html)
            .await?;
        queue::part_sent(&ctx.db, q, i + 1)
            .await
            .map_err(BoxError::from)?;
    }
    if let Some(png) = q
        .chart
        .as_ref()
        .filter(|_| q.parts_sent <= q.messages.len())
    {
        bot.send_photo(chat, InputFile::memory(png.clone()).file_name("report.png"))
            .caption(t!(q.lang, "report-chart-caption"))
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
        // One row's trouble never holds up the others; a row left in `sending` is taken up
        // again after the lease.
        let role = match super::access::role_of(ctx, q.recipient as u64).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(user_id = q.recipient, error = %crate::error_chain(&e), "cannot check a report recipient's role");
                continue;
            }
        };
        let (outcome, error) = if role == Role::Stranger {
            (Outcome::Dropped, None)
        } else {
            match send(bot, ctx, &q).await {
                Ok(()) => {
                    sent += 1;
                    (Outcome::Sent, None)
                }
                Err(e) => (Outcome::Failed, Some(e.to_string())),
            }
        };
        match queue::finish(&ctx.db, &q, outcome, error.as_deref(), ctx.now()).await {
            Ok(given_up) => {
                if let Some(e) = error {
                    tracing::warn!(user_id = q.recipient, kind = %q.kind, given_up, error = %e, "cannot send a report");
                }
            }
            Err(e) => {
                tracing::warn!(user_id = q.recipient, error = %format!("{e:#}"), "cannot record a report delivery")
            }
        }
    }
    Ok(sent)
}
