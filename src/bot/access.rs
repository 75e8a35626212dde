//! Who may do what. Every update passes the same steps of the schema before any feature sees
//! it: the per-user rate check ([`rate`]), then the role ([`role`]). Strangers end in
//! [`refuse_message`]/[`refuse_button`]; members go on as a [`Member`], and admins also as an
//! [`Admin`]. Those two types are made only here, from a role, and the handlers that read
//! take a `Member`, those that change something an `Admin`: dptree checks at start-up that
//! every handler's inputs are produced on its path, so a handler placed outside its filter
//! stops the bot from starting instead of serving the wrong user.
//!
//! Also the admins' own commands: `/grant`, `/revoke`, `/viewers`.

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId, UserId};

use super::args;
use super::reply::{self, esc};
use super::send::say;
use super::{Ctx, HandlerResult, TgBot};
use crate::i18n::{self, Lang};
use crate::state;
use crate::t;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including `/add`, `/remove`, `/grant`, `/revoke`.
    Admin,
    /// Read-only: list, stats, compare, export, health.
    Viewer,
    /// Neither (or not in a private chat): a short refusal, nothing else.
    Stranger,
}

impl Role {
    /// Whether the user has no role here.
    pub fn is_stranger(&self) -> bool {
        *self == Self::Stranger
    }
}

/// Who sent an update, and where.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    user: UserId,
    chat: ChatId,
    private: bool,
    /// Telegram's `language_code` of the user, if it sent one.
    code: Option<String>,
}

impl Caller {
    /// The sender of a message; `None` for messages without one (channel posts).
    pub(super) fn of_message(msg: Message) -> Option<Self> {
        let user = msg.from.as_ref()?;
        Some(Self {
            user: user.id,
            chat: msg.chat.id,
            private: msg.chat.is_private(),
            code: user.language_code.clone(),
        })
    }

    /// The presser of a button. A press whose message is too old to be sent along is taken
    /// as from the user's private chat: the role decides, and the button then says it expired.
    pub(super) fn of_button(q: CallbackQuery) -> Option<Self> {
        let (chat, private) = match &q.message {
            Some(m) => (m.chat().id, m.chat().is_private()),
            None => (ChatId(q.from.id.0 as i64), true),
        };
        Some(Self {
            user: q.from.id,
            chat,
            private,
            code: q.from.language_code.clone(),
        })
    }

    /// Logs the stranger's user id only: what a stranger writes is not ours to keep, and an
    /// admin who wants to let them in needs nothing more than the id for `/grant`.
    fn log_refusal(&self) {
        tracing::warn!(
            user_id = self.user.0,
            private = self.private,
            "refused a user without a role"
        );
    }
}

/// Someone with a role (admin or viewer). Read-only handlers take one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    /// The user.
    pub(super) user: UserId,
    /// Admin or viewer.
    pub(super) role: Role,
}

impl Member {
    /// The caller as a member, unless a stranger.
    pub(super) fn of(role: Role, caller: Caller) -> Option<Self> {
        (!role.is_stranger()).then_some(Self {
            user: caller.user,
            role,
        })
    }
}

/// An admin. Handlers that change something (watched channels, roles) take one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Admin {
    /// The admin's user id.
    pub(super) user: UserId,
}

impl Admin {
    /// The member as an admin, if an admin.
    pub(super) fn of(member: Member) -> Option<Self> {
        (member.role == Role::Admin).then_some(Self { user: member.user })
    }
}

/// Outcome of the per-user rate check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rate {
    /// Within the limit.
    Ok,
    /// Over the limit, first time in this cool-down: say so once.
    Warn(Duration),
    /// Over the limit and already told: stay silent.
    Silent,
}

/// The per-user token bucket. It comes before any lookup: past the one notice, a flood from
/// anyone costs no database query and no log line.
pub(super) fn rate(ctx: Arc<Ctx>, caller: Caller) -> Rate {
    let user = caller.user.0;
    if ctx.limiter.len() > 10_000 {
        ctx.limiter.retain_recent(); // forget users whose bucket is full again
    }
    match ctx.limiter.check_key(&user) {
        Ok(()) => Rate::Ok,
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let mut warned = ctx.warned.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            warned.retain(|_, until| *until > now);
            match warned.entry(user) {
                Entry::Occupied(_) => Rate::Silent,
                Entry::Vacant(v) => {
                    v.insert(now + wait.max(Duration::from_secs(5)));
                    Rate::Warn(wait)
                }
            }
        }
    }
}

/// The caller's role: admins from configuration, then the viewer table; strangers outside
/// private chats whatever their role. `None` (the update is dropped, the failure logged) when
/// the viewer table cannot be read.
pub(super) async fn role(ctx: Arc<Ctx>, caller: Caller) -> Option<Role> {
    if !caller.private {
        return Some(Role::Stranger);
    }
    if ctx.admins.contains(&caller.user.0) {
        return Some(Role::Admin);
    }
    match state::is_viewer(&ctx.db, caller.user.0 as i64).await {
        Ok(true) => Some(Role::Viewer),
        Ok(false) => Some(Role::Stranger),
        Err(e) => {
            tracing::error!(user_id = caller.user.0, error = %crate::error_chain(&e), "cannot check a user's role; the update is dropped");
            None
        }
    }
}

/// The caller's language: a member's from PostgreSQL (chosen with `/lang`, else Telegram's
/// `language_code`, which is remembered), a stranger's from the update alone (nothing about a
/// stranger is stored). A failed lookup is logged and falls back to the update's code.
pub(super) async fn language(ctx: Arc<Ctx>, caller: Caller, role: Role) -> Lang {
    let code = caller.code.as_deref();
    if role.is_stranger() {
        return Lang::from_telegram(code);
    }
    match state::language(&ctx.db, caller.user.0 as i64, code).await {
        Ok(lang) => lang,
        Err(e) => {
            tracing::warn!(user_id = caller.user.0, error = %crate::error_chain(&e), "cannot read a user's language");
            Lang::from_telegram(code)
        }
    }
}

/// The role of a user outside any update (a private chat is assumed): for the messages the
/// bot sends on its own (reports).
///
/// errors: the viewer lookup's.
pub(super) async fn role_of(ctx: &Ctx, user: u64) -> Result<Role, state::Error> {
    if ctx.admins.contains(&user) {
        return Ok(Role::Admin);
    }
    Ok(if state::is_viewer(&ctx.db, user as i64).await? {
        Role::Viewer
    } else {
        Role::Stranger
    })
}

/// A message over the rate limit, already told: nothing.
pub(super) async fn ignore() -> HandlerResult {
    Ok(())
}

/// A stranger's message: one short refusal (unless the refusals are over the rate limit
/// themselves), and a log line.
///
/// In a group the message is ignored (logged, never answered): a refusal there would be posted
/// for the whole group to read, once per stranger's message.
pub(super) async fn refuse_message(
    bot: TgBot,
    caller: Caller,
    rate: Rate,
    lang: Lang,
) -> HandlerResult {
    caller.log_refusal();
    if rate == Rate::Ok && caller.private {
        say(&bot, caller.chat, reply::refusal(lang)).await?;
    }
    Ok(())
}

/// A stranger's button press: the refusal closes the client's spinner.
pub(super) async fn refuse_button(
    bot: TgBot,
    q: CallbackQuery,
    caller: Caller,
    lang: Lang,
) -> HandlerResult {
    caller.log_refusal();
    bot.answer_callback_query(q.id)
        .text(reply::refusal(lang))
        .await?;
    Ok(())
}

/// The notice for a user over the rate limit.
fn too_many(lang: Lang, wait: Duration) -> String {
    t!(lang, "too-many-requests", seconds = wait.as_secs().max(1))
}

/// A member's message over the rate limit: the notice, once per cool-down.
pub(super) async fn slow_down(
    bot: TgBot,
    caller: Caller,
    wait: Duration,
    lang: Lang,
) -> HandlerResult {
    say(&bot, caller.chat, too_many(lang, wait)).await
}

/// A button pressed over the rate limit and already told: only the spinner is closed.
pub(super) async fn quiet_button(bot: TgBot, q: CallbackQuery) -> HandlerResult {
    bot.answer_callback_query(q.id).await?;
    Ok(())
}

/// A button pressed over the rate limit, the first time in the cool-down: the notice.
pub(super) async fn slow_down_button(
    bot: TgBot,
    q: CallbackQuery,
    wait: Duration,
    lang: Lang,
) -> HandlerResult {
    bot.answer_callback_query(q.id)
        .text(too_many(lang, wait))
        .await?;
    Ok(())
}

/// An admin command from a viewer.
pub(super) async fn admins_only(bot: TgBot, msg: Message, lang: Lang) -> HandlerResult {
    say(&bot, msg.chat.id, t!(lang, "admins-only")).await
}

/// `/grant user_id`: the read-only viewer role.
pub(super) async fn grant(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    admin: Admin,
    args: String,
    lang: Lang,
) -> HandlerResult {
    set_viewer(&bot, &ctx, &msg, (admin, lang), &args, true).await
}

/// `/revoke user_id`: takes the viewer role back.
pub(super) async fn revoke(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    admin: Admin,
    args: String,
    lang: Lang,
) -> HandlerResult {
    set_viewer(&bot, &ctx, &msg, (admin, lang), &args, false).await
}

/// `/grant` (`grant`) or `/revoke`: parses the user id once, changes the role, says what
/// changed.
async fn set_viewer(
    bot: &TgBot,
    ctx: &Ctx,
    msg: &Message,
    (admin, lang): (Admin, Lang),
    args: &str,
    grant: bool,
) -> HandlerResult {
    let who = match args::user_id(args) {
        Ok(who) => who as i64,
        Err(e) => return say(bot, msg.chat.id, esc(&e.render(lang))).await,
    };
    let changed = if grant {
        state::grant_viewer(&ctx.db, who, admin.user.0 as i64).await?
    } else {
        state::revoke_viewer(&ctx.db, who).await?
    };
    tracing::info!(
        admin = admin.user.0,
        viewer = who,
        grant,
        "{} the viewer role",
        if grant { "granted" } else { "revoked" }
    );
    let who = who.to_string();
    let text = match (grant, changed) {
        (true, true) => t!(lang, "viewer-granted", user = who),
        (true, false) => t!(lang, "viewer-already", user = who),
        (false, true) => t!(lang, "viewer-revoked", user = who),
        (false, false) => t!(lang, "viewer-was-not", user = who),
    };
    say(bot, msg.chat.id, text).await
}

/// `/viewers`: who has the viewer role, and who granted it when.
pub(super) async fn viewers(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    _: Admin,
    lang: Lang,
) -> HandlerResult {
    let v = state::viewers(&ctx.db).await?;
    let mut out = t!(lang, "viewers-title", count = v.len());
    for (user, by, at) in v {
        out.push('\n');
        out.push_str(&t!(
            lang,
            "viewers-line",
            user = user.to_string(),
            by = by.to_string(),
            date = i18n::date(lang, at.date_naive())
        ));
    }
    say(&bot, msg.chat.id, out).await
}
