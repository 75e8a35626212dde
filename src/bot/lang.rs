//! `/lang en|ru|auto`: the language the bot answers a user in, stored in PostgreSQL
//! ([`crate::state::choose_language`]), with the command menu of the user's chat pinned to it.
//! Without a choice it follows the `language_code` of the user's Telegram
//! ([`crate::i18n::Lang::from_telegram`]).

use std::sync::Arc;

use teloxide::prelude::*;

use super::access::Member;
use super::send::say;
use super::{Ctx, HandlerResult, TgBot};
use crate::i18n::Lang;
use crate::{state, t};

/// `/lang`: with `en`, `ru` or `auto` sets the language (the reply is in the new one); without
/// an argument says which is in use; anything else gets the usage.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    member: Member,
    args: String,
    lang: Lang,
) -> HandlerResult {
    let chat = msg.chat.id;
    let user = member.user.0 as i64;
    let word = args.trim().to_ascii_lowercase();
    let code = msg.from.as_ref().and_then(|u| u.language_code.as_deref());
    let (chosen, now) = match word.as_str() {
        "" => return say(&bot, chat, t!(lang, "lang-current")).await,
        "auto" => (None, Lang::from_telegram(code)),
        w => match Lang::parse(w) {
            Some(l) => (Some(l), l),
            None => return say(&bot, chat, t!(lang, "lang-usage")).await,
        },
    };
    state::choose_language(&ctx.db, user, chosen).await?;
    super::pin_menu(&bot, chat, chosen).await;
    let text = match chosen {
        Some(_) => t!(now, "lang-set"),
        None => t!(now, "lang-auto"),
    };
    say(&bot, chat, text).await
}

#[cfg(test)]
mod tests {
    use teloxide::utils::command::BotCommands;

    use super::super::{Command, menu};
    use super::*;

    #[test]
    fn the_menu_lists_every_command_in_every_language() {
        let names: Vec<String> = Command::bot_commands()
            .into_iter()
            .map(|c| c.command.trim_start_matches('/').to_owned())
            .collect();
        for lang in Lang::ALL {
            let menu: Vec<String> = menu(lang).into_iter().map(|(n, _)| n.to_owned()).collect();
            assert_eq!(menu, names, "{lang:?}");
        }
        assert_ne!(menu(Lang::En)[5].1, menu(Lang::Ru)[5].1, "translated");
    }
}
