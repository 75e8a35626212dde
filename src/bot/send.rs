//! Sending: say, edit, send a chart, and the reply for a channel the database does not know.
//! A leaf: every feature's handlers use it, and it uses none of them.
//!
//! [`EngineTime`] is the bot's own time on a reply, recorded when the send call is issued.

use std::time::{Duration, Instant};

use bytes::Bytes;
use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardMarkup, InputFile, LinkPreviewOptions, MessageId, ParseMode,
};

use super::reply::{CAPTION_LIMIT, esc, visible_len};
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::domain::ChannelRef;
use crate::i18n::Lang;
use crate::query::{self, Channel};
use crate::t;

/// Sends an HTML message.
pub(super) async fn say(bot: &TgBot, chat: ChatId, html: impl Into<String>) -> HandlerResult {
    bot.send_message(chat, html)
        .parse_mode(ParseMode::Html)
        .await?;
    Ok(())
}

/// Sends an HTML message without a link preview (a list of `t.me` links, where a preview of
/// the first would only push the list up).
pub(super) async fn say_without_preview(
    bot: &TgBot,
    chat: ChatId,
    html: impl Into<String>,
) -> HandlerResult {
    let no_preview = LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    };
    bot.send_message(chat, html)
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview)
        .await?;
    Ok(())
}

/// Sends HTML messages in order (a long text split by `render::split_messages`); returns how
/// many were sent.
pub(super) async fn say_all(
    bot: &TgBot,
    chat: ChatId,
    messages: Vec<String>,
) -> Result<usize, BoxError> {
    let n = messages.len();
    for m in messages {
        say(bot, chat, m).await?;
    }
    Ok(n)
}

/// Sends an HTML message with buttons (none when `markup` is `None`).
pub(super) async fn say_with(
    bot: &TgBot,
    chat: ChatId,
    html: String,
    markup: Option<InlineKeyboardMarkup>,
) -> HandlerResult {
    let mut req = bot.send_message(chat, html).parse_mode(ParseMode::Html);
    if let Some(m) = markup {
        req = req.reply_markup(m);
    }
    req.await?;
    Ok(())
}

/// Replaces a message's text (and its buttons: `None` removes them).
pub(super) async fn edit(
    bot: &TgBot,
    chat: ChatId,
    message_id: MessageId,
    text: String,
    markup: Option<InlineKeyboardMarkup>,
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

/// The bot engine's own time on one reply, apart from Telegram's send limits: from the
/// update reaching the handler tree (`schema::ReplyTimer`) to the reply's send call being
/// issued, before teloxide's throttle queue can hold it. With the parts a `/stats` reply
/// spends it on. [`EngineTime::issued`] records it.
#[derive(Debug, Clone, Copy)]
pub(super) struct EngineTime {
    /// The `command` label (`stats`).
    pub(super) command: &'static str,
    /// When the handler tree received the update.
    pub(super) started: Instant,
    /// Waiting for a query slot (`--bot-max-queries`).
    pub(super) wait: Duration,
    /// Running the query.
    pub(super) query: Duration,
    /// Drawing the chart's pixels (zero when the chart came from the cache).
    pub(super) draw: Duration,
    /// Encoding the chart as PNG (zero when it came from the cache).
    pub(super) encode: Duration,
    /// `Some(true)` when the chart came from the chart cache, `Some(false)` when it was
    /// drawn, `None` without a chart.
    pub(super) cached: Option<bool>,
}

impl EngineTime {
    /// A reply to `command` whose update arrived at `started`; the parts are zero.
    pub(super) fn new(command: &'static str, started: Instant) -> Self {
        Self {
            command,
            started,
            wait: Duration::ZERO,
            query: Duration::ZERO,
            draw: Duration::ZERO,
            encode: Duration::ZERO,
            cached: None,
        }
    }

    /// The send call is being issued now: records `tgpulse_bot_engine_seconds{command}` and
    /// logs one line at debug level under the target `tgpulse::bot::engine` with the fields
    /// `command`, `engine_ms`, `wait_ms`, `query_ms`, `draw_ms`, `encode_ms` (milliseconds)
    /// and `cache` (`hit`, `miss` or `none`); `benches/bot.rs` reads those lines
    /// (`TGPULSE_LOG=warn,tgpulse::bot::engine=debug`).
    pub(super) fn issued(&self) {
        let engine = self.started.elapsed();
        metrics::histogram!("tgpulse_bot_engine_seconds", "command" => self.command)
            .record(engine.as_secs_f64());
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let cache = match self.cached {
            Some(true) => "hit",
            Some(false) => "miss",
            None => "none",
        };
        tracing::debug!(
            target: "tgpulse::bot::engine",
            command = self.command,
            engine_ms = ms(engine),
            wait_ms = ms(self.wait),
            query_ms = ms(self.query),
            draw_ms = ms(self.draw),
            encode_ms = ms(self.encode),
            cache,
            "reply issued"
        );
    }
}

/// Sends a chart (PNG bytes) with an HTML caption; a caption over Telegram's limit goes as its
/// own message. Without a chart (drawing failed) the caption goes as text with the reason.
pub(super) async fn send_chart(
    bot: &TgBot,
    chat: ChatId,
    png: Result<impl Into<Bytes>, BoxError>,
    name: &'static str,
    caption: String,
    markup: Option<InlineKeyboardMarkup>,
) -> HandlerResult {
    send_chart_timed(bot, chat, png, name, caption, markup, None).await
}

/// [`send_chart`], recording `engine` ([`EngineTime::issued`]) just before the first send
/// call (the photo, or the text in its place) is issued.
pub(super) async fn send_chart_timed(
    bot: &TgBot,
    chat: ChatId,
    png: Result<impl Into<Bytes>, BoxError>,
    name: &'static str,
    caption: String,
    markup: Option<InlineKeyboardMarkup>,
    engine: Option<EngineTime>,
) -> HandlerResult {
    let png = match png {
        Ok(png) => png,
        Err(e) => {
            if let Some(t) = engine {
                t.issued();
            }
            return say(bot, chat, format!("{caption}\n\n{}", esc(&e.to_string()))).await;
        }
    };
    let fits = visible_len(&caption) <= CAPTION_LIMIT;
    let mut req = bot.send_photo(chat, InputFile::memory(png).file_name(name));
    if fits {
        req = req.caption(caption.clone()).parse_mode(ParseMode::Html);
    }
    if let Some(m) = markup.clone().filter(|_| fits) {
        req = req.reply_markup(m);
    }
    if let Some(t) = engine {
        t.issued();
    }
    req.await?;
    if !fits {
        say_with(bot, chat, caption, markup).await?;
    }
    Ok(())
}

/// A channel known to the database, or a helpful reply and `None`.
///
/// errors: lookups that fail for another reason than an unknown or ambiguous channel.
pub(super) async fn known(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    r: &ChannelRef,
    lang: Lang,
) -> Result<Option<Channel>, BoxError> {
    let text = match query::resolve(&ctx.db, r).await {
        Ok(c) => return Ok(Some(c)),
        Err(query::Error::NotFound(c)) => {
            let mut text = t!(lang, "channel-unknown", channel = esc(&c));
            if let ChannelRef::Handle(h) = r {
                text.push('\n');
                text.push_str(&t!(
                    lang,
                    "channel-unknown-hint",
                    handle = esc(&h.to_string())
                ));
            }
            text
        }
        Err(query::Error::Ambiguous { handle, ids }) => t!(
            lang,
            "channel-ambiguous",
            handle = esc(&handle),
            ids = esc(&ids)
        ),
        Err(e) => return Err(e.into()),
    };
    say(bot, chat, text).await?;
    Ok(None)
}
