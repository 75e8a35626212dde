//! `/health`: storage, each source's last success and lag, recent samples (the catalog's
//! picture, as `tgpulse health` shows it), and the scheduled reports given up in the last 7
//! days, as the ops `/health` counts them.

use std::sync::Arc;

use teloxide::prelude::*;

use super::access::Member;
use super::reply;
use super::send::say;
use super::{Ctx, HandlerResult, TgBot};
use crate::catalog;
use crate::i18n::Lang;
use crate::t;

/// `/health`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    _: Member,
    lang: Lang,
) -> HandlerResult {
    let now = ctx.now();
    let h = catalog::health(&ctx.db, now).await?;
    let given_up = catalog::reports_given_up(&ctx.db, now - chrono::Duration::days(7)).await?;
    let mut text = reply::health(&h, now, lang);
    if given_up > 0 {
        text.push_str("\n\n");
        text.push_str(&t!(lang, "health-reports-given-up", count = given_up));
    }
    say(&bot, msg.chat.id, text).await
}
