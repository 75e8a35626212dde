//! Messages: access check, rate check, then the command (or the awaited reply).

use std::sync::Arc;

use chrono::Utc;
use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ParseMode, User,
};
use teloxide::utils::command::{BotCommands, ParseError};

use super::args::{self, USAGE_REMOVE};
use super::reply::{self, CAPTION_LIMIT, esc, visible_len};
use super::{BoxError, Command, Ctx, HandlerResult, Rate, Role, TgBot};
use crate::collect::{SourceError, status, watch};
use crate::domain::{ChannelRef, Days};
use crate::query::{self, Channel};
use crate::state::{self, Action, Awaiting};

/// Sends an HTML message.
pub(super) async fn say(bot: &TgBot, chat: ChatId, html: impl Into<String>) -> HandlerResult {
    bot.send_message(chat, html)
        .parse_mode(ParseMode::Html)
        .await?;
    Ok(())
}

/// Whether a user may go on.
pub(super) enum Gate {
    /// Authorised and within the rate limit.
    Allowed(Role),
    /// No role (or not a private chat): refuse; `notify` is false when the refusals to this
    /// user are themselves over the rate limit.
    Refused { notify: bool },
    /// Over the rate limit: say so once (`Some(wait)`), then stay silent (`None`).
    Limited(Option<std::time::Duration>),
}

/// Checks the role and the per-user rate; refusals are logged.
pub(super) async fn admit(
    ctx: &Ctx,
    private: bool,
    user: &User,
    what: &str,
) -> Result<Gate, crate::db::Error> {
    // The rate check comes first: past the one notice, a flood from anyone costs no database
    // lookup and no log line.
    let rate = ctx.rate(user.id.0);
    if matches!(rate, Rate::Silent) {
        return Ok(Gate::Limited(None));
    }
    let role = if private {
        ctx.role(user.id.0).await?
    } else {
        None
    };
    let Some(role) = role else {
        let what: String = what.chars().take(64).collect();
        tracing::warn!(user_id = user.id.0, username = ?user.username, private, %what, "refused a user without a role");
        return Ok(Gate::Refused {
            notify: matches!(rate, Rate::Ok),
        });
    };
    Ok(match rate {
        Rate::Ok => Gate::Allowed(role),
        Rate::Warn(wait) => Gate::Limited(Some(wait)),
        Rate::Silent => Gate::Limited(None),
    })
}

/// The notice for a user over the rate limit.
pub(super) fn too_many(wait: std::time::Duration) -> String {
    format!(
        "Too many requests; please wait {} s. (Each user may send a few commands per minute.)",
        wait.as_secs().max(1)
    )
}

/// Entry point for every message.
pub(super) async fn on_message(bot: TgBot, msg: Message, ctx: Arc<Ctx>) -> HandlerResult {
    let Some(user) = msg.from.clone() else {
        return Ok(()); // channel posts and service messages carry no user
    };
    let chat = msg.chat.id;
    let text = msg.text().unwrap_or("");
    let role = match admit(&ctx, msg.chat.is_private(), &user, text).await? {
        Gate::Allowed(role) => role,
        Gate::Refused { notify: true } => return say(&bot, chat, reply::REFUSAL).await,
        Gate::Limited(Some(wait)) => return say(&bot, chat, too_many(wait)).await,
        Gate::Refused { notify: false } | Gate::Limited(None) => return Ok(()),
    };
    let uid = user.id.0 as i64;
    if !text.starts_with('/') {
        return match state::take_awaiting(&ctx.db, chat.0, uid).await? {
            Some(Awaiting::CompareWith { channel, days }) => {
                let first = ChannelRef::Id(crate::domain::ChannelId::new(channel)?);
                match args::compare_with(&first, text, Days::new(days)?) {
                    Ok(a) => compare(&bot, &ctx, chat, &a.channels, a.days).await,
                    Err(e) => {
                        // Keep waiting: the user can correct the list.
                        state::set_awaiting(
                            &ctx.db,
                            chat.0,
                            uid,
                            &Awaiting::CompareWith { channel, days },
                        )
                        .await?;
                        say(&bot, chat, esc(&e)).await
                    }
                }
            }
            None => {
                say(
                    &bot,
                    chat,
                    "Send a command, e.g. /stats @channel 30. /help lists them all.",
                )
                .await
            }
        };
    }
    // A new command ends any conversation waiting for a reply.
    state::take_awaiting(&ctx.db, chat.0, uid).await?;
    let me = bot.get_me().await?;
    let cmd = match Command::parse(text, me.username()) {
        Ok(c) => c,
        Err(e) => return say(&bot, chat, parse_error(&e, role)).await,
    };
    let admin_only = matches!(
        cmd,
        Command::Add(_)
            | Command::Remove(_)
            | Command::Grant(_)
            | Command::Revoke(_)
            | Command::Viewers
    );
    if admin_only && role != Role::Admin {
        return say(
            &bot,
            chat,
            "That command is for admins; you have the read-only viewer role.",
        )
        .await;
    }
    let uid = user.id.0;
    match cmd {
        Command::Start | Command::Help => {
            say(
                &bot,
                chat,
                reply::help(&Command::descriptions().to_string(), role == Role::Admin),
            )
            .await
        }
        Command::Add(a) => match args::handle(&a) {
            Ok(h) => add(&bot, &ctx, chat, uid, &h).await,
            Err(e) => say(&bot, chat, esc(&e)).await,
        },
        Command::Remove(a) => remove(&bot, &ctx, chat, uid, &a).await,
        Command::List => list(&bot, &ctx, chat, uid).await,
        Command::Stats(a) => match args::stats(&a) {
            Ok(a) => match known(&bot, &ctx, chat, &a.channel).await? {
                Some(c) => stats(&bot, &ctx, chat, uid, &c, a.days).await,
                None => Ok(()),
            },
            Err(e) => say(&bot, chat, esc(&e)).await,
        },
        Command::Compare(a) => match args::compare(&a) {
            Ok(a) => compare(&bot, &ctx, chat, &a.channels, a.days).await,
            Err(e) => say(&bot, chat, esc(&e)).await,
        },
        Command::Export(a) => match args::export(&a) {
            Ok(a) => match known(&bot, &ctx, chat, &a.channel).await? {
                Some(c) => super::export::run(&bot, &ctx, chat, &c, &a).await,
                None => Ok(()),
            },
            Err(e) => say(&bot, chat, esc(&e)).await,
        },
        Command::Health => {
            let h = status::health(&ctx.db).await?;
            say(&bot, chat, reply::health(&h, Utc::now())).await
        }
        Command::Grant(a) => set_viewer(&bot, &ctx, chat, uid, &a, true).await,
        Command::Revoke(a) => set_viewer(&bot, &ctx, chat, uid, &a, false).await,
        Command::Viewers => {
            let v = state::viewers(&ctx.db).await?;
            let mut out = format!("<b>Viewers</b>: {}", v.len());
            for (user, by, at) in v {
                out.push_str(&format!(
                    "\n{user} (granted by {by}, {})",
                    at.format("%Y-%m-%d")
                ));
            }
            say(&bot, chat, out).await
        }
    }
}

/// `/grant` (`grant`) or `/revoke` of the viewer role, by `admin`.
async fn set_viewer(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    admin: u64,
    a: &str,
    grant: bool,
) -> HandlerResult {
    let who = match args::user_id(a) {
        Ok(who) => who as i64,
        Err(e) => return say(bot, chat, esc(&e)).await,
    };
    let text = if grant {
        let new = state::grant_viewer(&ctx.db, who, admin as i64).await?;
        tracing::info!(admin, viewer = who, "granted the viewer role");
        if new {
            format!("{who} is now a viewer (read-only).")
        } else {
            format!("{who} was already a viewer.")
        }
    } else {
        let had = state::revoke_viewer(&ctx.db, who).await?;
        tracing::info!(admin, viewer = who, "revoked the viewer role");
        if had {
            format!("{who} is no longer a viewer.")
        } else {
            format!("{who} was not a viewer.")
        }
    };
    say(bot, chat, text).await
}

fn parse_error(e: &ParseError, role: Role) -> String {
    let help = reply::help(&Command::descriptions().to_string(), role == Role::Admin);
    match e {
        ParseError::UnknownCommand(c) => format!("I don't know {}.\n\n{help}", esc(c)),
        _ => format!("I couldn't read that command.\n\n{help}"),
    }
}

/// A channel known to the database, or a helpful reply and `None`.
pub(super) async fn known(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    r: &ChannelRef,
) -> Result<Option<Channel>, BoxError> {
    match query::resolve(&ctx.db, r).await {
        Ok(c) => Ok(Some(c)),
        Err(e @ (query::Error::NotFound(_) | query::Error::Ambiguous { .. })) => {
            let hint = match r {
                ChannelRef::Handle(h) => {
                    format!("\nCheck the spelling, or start collecting it with /add {h}.")
                }
                ChannelRef::Id(_) => String::new(),
            };
            say(bot, chat, format!("{}{}", esc(&e.to_string()), esc(&hint))).await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn button(text: &str, token: String) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text.to_owned(), format!("a:{token}"))
}

/// Stores the actions and returns one keyboard row of buttons for them.
pub(super) async fn buttons(
    ctx: &Ctx,
    chat: ChatId,
    user: u64,
    items: Vec<(&str, Action)>,
    one_shot: bool,
) -> Result<Vec<InlineKeyboardButton>, crate::db::Error> {
    // One-shot buttons of one row form a group: using one uses up the others (Yes/Cancel).
    let group = one_shot.then(state::new_token);
    let mut row = Vec::with_capacity(items.len());
    for (text, action) in items {
        let token =
            state::put_action(&ctx.db, chat.0, user as i64, &action, group.as_deref()).await?;
        row.push(button(text, token));
    }
    Ok(row)
}

async fn add(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    user: u64,
    h: &crate::domain::Handle,
) -> HandlerResult {
    let Some(source) = &ctx.resolver else {
        return say(
            bot,
            chat,
            format!(
                "No source can resolve handles: configure [{}] in the sources file.",
                esc(&ctx.resolver_name)
            ),
        )
        .await;
    };
    let info = match source.resolve(h).await {
        Ok(i) => i,
        Err(SourceError::NotFound(_)) => {
            return say(bot, chat, format!("{} can't find {h}. Check the spelling; a private channel needs the bot (or account) as a member.", esc(&ctx.resolver_name))).await;
        }
        Err(e) => {
            tracing::warn!(handle = %h, error = %crate::error_chain(&e), "resolving for /add failed");
            return say(
                bot,
                chat,
                format!(
                    "Could not resolve {h} through {} right now: {}. Try again later.",
                    esc(&ctx.resolver_name),
                    esc(&e.to_string())
                ),
            )
            .await;
        }
    };
    let new = watch::add(&ctx.db, &info, Some(user as i64)).await?;
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
    say(bot, chat, text).await
}

async fn remove(bot: &TgBot, ctx: &Ctx, chat: ChatId, user: u64, a: &str) -> HandlerResult {
    let words: Vec<&str> = a.split_whitespace().collect();
    let [word] = words.as_slice() else {
        return say(bot, chat, format!("Which channel?\nUsage: {USAGE_REMOVE}")).await;
    };
    let r = match args::channel(word, USAGE_REMOVE) {
        Ok(r) => r,
        Err(e) => return say(bot, chat, esc(&e)).await,
    };
    let Some(c) = known(bot, ctx, chat, &r).await? else {
        return Ok(());
    };
    if !watch::is_watched(&ctx.db, c.id).await? {
        return say(
            bot,
            chat,
            format!("{} is not collected; nothing to remove.", esc(&c.label())),
        )
        .await;
    }
    let row = buttons(
        ctx,
        chat,
        user,
        vec![
            (
                "Yes, stop collecting",
                Action::Remove {
                    channel: c.id.get(),
                },
            ),
            ("Cancel", Action::Cancel),
        ],
        true,
    )
    .await?;
    bot.send_message(
        chat,
        format!(
            "Stop collecting <b>{}</b>? Its samples stay in the database.",
            esc(&c.label())
        ),
    )
    .parse_mode(ParseMode::Html)
    .reply_markup(InlineKeyboardMarkup::new(vec![row]))
    .await?;
    Ok(())
}

/// `/list`, page 0, as a new message.
async fn list(bot: &TgBot, ctx: &Ctx, chat: ChatId, user: u64) -> HandlerResult {
    let (text, markup) = list_page(ctx, chat, user, 0).await?;
    let mut req = bot.send_message(chat, text).parse_mode(ParseMode::Html);
    if let Some(m) = markup {
        req = req.reply_markup(m);
    }
    req.await?;
    Ok(())
}

/// One `/list` page and its ‹ › buttons (none when everything fits on one page).
pub(super) async fn list_page(
    ctx: &Ctx,
    chat: ChatId,
    user: u64,
    page: u32,
) -> Result<(String, Option<InlineKeyboardMarkup>), BoxError> {
    let all = status::watched(&ctx.db).await?;
    let (text, pages) = reply::list_page(&all, page as usize, Utc::now());
    if pages <= 1 {
        return Ok((text, None));
    }
    let page = page.min(pages as u32 - 1);
    let mut items = Vec::new();
    if page > 0 {
        items.push(("‹ previous", Action::ListPage { page: page - 1 }));
    }
    if page + 1 < pages as u32 {
        items.push(("next ›", Action::ListPage { page: page + 1 }));
    }
    let row = buttons(ctx, chat, user, items, false).await?;
    Ok((text, Some(InlineKeyboardMarkup::new(vec![row]))))
}

/// A chart PNG, drawn on a blocking thread into the work folder, read back, the file removed.
async fn chart_png<T: Send + 'static>(
    ctx: &Ctx,
    data: T,
    draw: fn(&T, &std::path::Path) -> Result<(), crate::chart::Error>,
) -> Result<Vec<u8>, BoxError> {
    let path = ctx
        .work_dir
        .join(format!("tgpulse-chart-{:016x}.png", rand::random::<u64>()));
    tokio::task::spawn_blocking(move || {
        let drawn = draw(&data, &path);
        let bytes = drawn
            .map_err(Into::into)
            .and_then(|()| std::fs::read(&path).map_err(Into::into));
        let _ = std::fs::remove_file(&path);
        bytes
    })
    .await?
}

/// Computes `T` and draws its chart while holding one of the query slots, released before
/// anything is sent. `None` when there is no data (the user was told why).
async fn query_and_chart<T: Clone + Send + 'static>(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    compute: impl std::future::Future<Output = Result<T, query::Error>>,
    draw: fn(&T, &std::path::Path) -> Result<(), crate::chart::Error>,
) -> Result<Option<(T, Result<Vec<u8>, BoxError>)>, BoxError> {
    let permit = ctx.queries.acquire().await?;
    let data = match compute.await {
        Ok(d) => d,
        Err(e) => {
            drop(permit);
            say(bot, chat, query_error(e)?).await?;
            return Ok(None);
        }
    };
    let png = chart_png(ctx, data.clone(), draw).await;
    drop(permit);
    Ok(Some((data, png)))
}

/// Sends the chart with an HTML caption; a caption over Telegram's limit goes as its own
/// message. Without a chart (drawing failed) the caption goes as text with the reason.
async fn send_chart(
    bot: &TgBot,
    chat: ChatId,
    png: Result<Vec<u8>, BoxError>,
    name: &'static str,
    caption: String,
    markup: Option<InlineKeyboardMarkup>,
) -> HandlerResult {
    let png = match png {
        Ok(png) => png,
        Err(e) => return say(bot, chat, format!("{caption}\n\n{}", esc(&e.to_string()))).await,
    };
    let fits = visible_len(&caption) <= CAPTION_LIMIT;
    let mut req = bot.send_photo(chat, InputFile::memory(png).file_name(name));
    if fits {
        req = req.caption(caption.clone()).parse_mode(ParseMode::Html);
    }
    if let Some(m) = markup.clone().filter(|_| fits) {
        req = req.reply_markup(m);
    }
    req.await?;
    if !fits {
        let mut req = bot.send_message(chat, caption).parse_mode(ParseMode::Html);
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        req.await?;
    }
    Ok(())
}

fn query_error(e: query::Error) -> Result<String, BoxError> {
    match e {
        query::Error::NoData(c) => Ok(format!(
            "{} has no samples yet; collectors fill it within the hour.",
            esc(&c)
        )),
        e => Err(e.into()),
    }
}

/// `/stats`: the caption, the members chart, and buttons for other windows, compare, export.
pub(super) async fn stats(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    user: u64,
    c: &Channel,
    days: Days,
) -> HandlerResult {
    let compute = query::stats(&ctx.engine, c, days, None);
    let Some((s, png)) =
        query_and_chart(bot, ctx, chat, compute, crate::chart::members_chart).await?
    else {
        return Ok(());
    };
    let caption = reply::stats_caption(&s, Utc::now());
    if png.is_err() {
        return send_chart(bot, chat, png, "stats.png", caption, None).await;
    }
    let id = c.id.get();
    let mut windows = Vec::new();
    for (d, label) in [
        (7u32, "7 days"),
        (30, "30 days"),
        (90, "90 days"),
        (365, "365 days"),
    ] {
        if d != days.get() {
            windows.push((
                label,
                Action::Stats {
                    channel: id,
                    days: d,
                },
            ));
        }
    }
    let row1 = buttons(ctx, chat, user, windows, false).await?;
    let row2 = buttons(
        ctx,
        chat,
        user,
        vec![
            (
                "Compare with…",
                Action::CompareWith {
                    channel: id,
                    days: days.get(),
                },
            ),
            (
                "Export",
                Action::Export {
                    channel: id,
                    days: days.get(),
                },
            ),
        ],
        false,
    )
    .await?;
    let markup = InlineKeyboardMarkup::new(vec![row1, row2]);
    send_chart(bot, chat, png, "stats.png", caption, Some(markup)).await
}

/// `/compare` (and the reply to "compare with…"): the table and the indexed-growth chart.
pub(super) async fn compare(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    refs: &[ChannelRef],
    days: Days,
) -> HandlerResult {
    let mut channels = Vec::with_capacity(refs.len());
    for r in refs {
        match known(bot, ctx, chat, r).await? {
            Some(c) => channels.push(c),
            None => return Ok(()),
        }
    }
    let compute = query::compare(&ctx.engine, &channels, days, None);
    let Some((cmp, png)) =
        query_and_chart(bot, ctx, chat, compute, crate::chart::compare_chart).await?
    else {
        return Ok(());
    };
    send_chart(
        bot,
        chat,
        png,
        "compare.png",
        reply::compare_caption(&cmp),
        None,
    )
    .await
}
