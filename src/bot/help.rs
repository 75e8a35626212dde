//! `/start`, `/help`, and the replies to commands the bot cannot read: the command list from
//! the `BotCommands` doc comments, with the member's scope.

use teloxide::prelude::*;
use teloxide::utils::command::BotCommands;

use super::access::{Member, Role};
use super::reply::{self, esc};
use super::send::say;
use super::{Command, HandlerResult, TgBot};
use crate::i18n::Lang;
use crate::t;

/// A message that starts with `/`, parsed.
#[derive(Debug, Clone)]
pub(super) enum Parsed {
    /// One of [`Command`].
    Command(Command),
    /// `/name` that is no command of this bot.
    Unknown(String),
    /// A command the parser could not read (addressed to another bot, bad arguments).
    Unreadable,
}

impl Parsed {
    /// Parses a command addressed to this bot (`/stats` or `/stats@this_bot`).
    pub(super) fn of(msg: Message, me: teloxide::types::Me) -> Self {
        use teloxide::utils::command::ParseError;
        match Command::parse(msg.text().unwrap_or(""), me.username()) {
            Ok(c) => Self::Command(c),
            Err(ParseError::UnknownCommand(name)) => Self::Unknown(name),
            Err(_) => Self::Unreadable,
        }
    }

    /// The command, if it is one.
    pub(super) fn command(self) -> Option<Command> {
        match self {
            Self::Command(c) => Some(c),
            _ => None,
        }
    }
}

fn text(member: Member, lang: Lang) -> String {
    reply::help(lang, member.role == Role::Admin)
}

/// `/start` and `/help`.
pub(super) async fn help(bot: TgBot, msg: Message, member: Member, lang: Lang) -> HandlerResult {
    say(&bot, msg.chat.id, text(member, lang)).await
}

/// A command the bot does not know or cannot read: what went wrong, and the help.
pub(super) async fn not_a_command(
    bot: TgBot,
    msg: Message,
    member: Member,
    parsed: Parsed,
    lang: Lang,
) -> HandlerResult {
    let head = match parsed {
        Parsed::Unknown(c) => t!(lang, "unknown-command", command = esc(&c)),
        _ => t!(lang, "unreadable-command"),
    };
    say(
        &bot,
        msg.chat.id,
        format!("{head}\n\n{}", text(member, lang)),
    )
    .await
}
