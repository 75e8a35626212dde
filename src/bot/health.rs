//! `/health`: storage, each source's last success and lag, recent samples (the catalog's
//! picture, as `tgpulse health` shows it).

use std::sync::Arc;

use teloxide::prelude::*;

use super::access::Member;
use super::reply;
use super::send::say;
use super::{Ctx, HandlerResult, TgBot};
use crate::catalog;
use crate::i18n::Lang;

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
    say(&bot, msg.chat.id, reply::health(&h, now, lang)).await
}
