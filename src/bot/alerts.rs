//! Alerts in the bot: `/alerts` (the open and recently resolved alerts, and its forms), the
//! "Mute 7 days" button, and the delivery loop that sends what the alert evaluations queued
//! (`bot_alert_deliveries`) through the bot's own throttle.
//!
//! Only admins change rules and mutes; anyone with a role turns their own notifications on
//! or off.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId, UserId};

use super::access::{Member, Role};
use super::args;
use super::button::{Pressed, keyboard};
use super::reply::esc;
use super::send::{known, say, say_all, send_chart};
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::alert::store::{self, Event};
use crate::alert::{Rule, check_threshold, wording};
use crate::domain::{ChannelId, ChannelRef, Days};
use crate::i18n::{self, Lang, Msg};
use crate::query;
use crate::state::{self, Action};
use crate::{msg, t};

/// How to use `/alerts`: the key of its message.
pub(super) const USAGE: &str = "usage-alerts";

/// More alerts than this for one person in one round arrive as one digest.
pub const DIGEST_OVER: usize = 5;
/// How often the delivery loop looks for queued alerts.
pub const DELIVERY_EVERY: Duration = Duration::from_secs(2);
/// Longest mute.
const MAX_MUTE_DAYS: u32 = 365;

/// A parsed `/alerts` command.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertsArgs {
    /// `/alerts`: the list.
    List,
    /// `/alerts on|off`: the caller's own notifications.
    Notify(bool),
    /// `/alerts set @c rule N`.
    Set(ChannelRef, Rule, f64),
    /// `/alerts mute @c 7d`.
    Mute(ChannelRef, u32),
    /// `/alerts on|off @c rule`.
    Enable(ChannelRef, Rule, bool),
}

impl AlertsArgs {
    /// Whether this form changes rules (admins only).
    pub fn changes_rules(&self) -> bool {
        !matches!(self, Self::List | Self::Notify(_))
    }
}

fn rule(word: &str) -> Result<Rule, Msg> {
    let r: Rule = word
        .parse()
        .map_err(|_| msg!("alerts-unknown-rule", word = args::clip(word)).with_usage(USAGE))?;
    if r == Rule::SourceStale {
        return Err(msg!("alerts-stale-not-per-channel").with_usage(USAGE));
    }
    Ok(r)
}

/// Parses the words after `/alerts`.
///
/// errors: a reply saying what is wrong, with the usage.
pub fn parse(text: &str) -> Result<AlertsArgs, Msg> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(AlertsArgs::List),
        ["on"] => Ok(AlertsArgs::Notify(true)),
        ["off"] => Ok(AlertsArgs::Notify(false)),
        ["set", c, r, n] => {
            let r = rule(r)?;
            let t: f64 = n
                .trim_end_matches('%')
                .replace(',', ".")
                .parse()
                .map_err(|_| msg!("alerts-not-a-number", word = args::clip(n)).with_usage(USAGE))?;
            check_threshold(r, t)
                .map_err(|_| msg!("alerts-bad-threshold", rule = r.name()).with_usage(USAGE))?;
            Ok(AlertsArgs::Set(args::channel(c, USAGE)?, r, t))
        }
        ["mute", c, d] => {
            let n: u32 = d
                .strip_suffix('d')
                .unwrap_or(d)
                .parse()
                .ok()
                .filter(|n| (1..=MAX_MUTE_DAYS).contains(n))
                .ok_or_else(|| msg!("alerts-bad-mute", most = MAX_MUTE_DAYS).with_usage(USAGE))?;
            Ok(AlertsArgs::Mute(args::channel(c, USAGE)?, n))
        }
        [on @ ("on" | "off"), c, r] => Ok(AlertsArgs::Enable(
            args::channel(c, USAGE)?,
            rule(r)?,
            *on == "on",
        )),
        _ => Err(msg!("alerts-not-understood").with_usage(USAGE)),
    }
}

/// `/alerts`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    member: Member,
    args: String,
    lang: Lang,
) -> HandlerResult {
    let chat = msg.chat.id;
    let a = match parse(&args) {
        Ok(a) => a,
        Err(e) => return say(&bot, chat, esc(&e.render(lang))).await,
    };
    if a.changes_rules() && member.role != Role::Admin {
        return say(&bot, chat, t!(lang, "alerts-admins-only")).await;
    }
    let by = Some(member.user.0 as i64);
    let text = match a {
        AlertsArgs::List => {
            say_all(&bot, chat, list_messages(&ctx, lang).await?).await?;
            return Ok(());
        }
        AlertsArgs::Notify(on) => {
            store::subscribe(&ctx.db, member.user.0 as i64, on).await?;
            if on {
                t!(lang, "alerts-notify-on")
            } else {
                t!(lang, "alerts-notify-off")
            }
        }
        AlertsArgs::Set(c, rule, t) => {
            let Some(c) = known(&bot, &ctx, chat, &c, lang).await? else {
                return Ok(());
            };
            store::set_rule(&ctx.db, c.id, rule, Some(t), true, by).await?;
            t!(
                lang,
                "alerts-threshold-set",
                rule = rule.name(),
                channel = esc(&c.label()),
                threshold = wording::threshold(lang, rule, t)
            )
        }
        AlertsArgs::Mute(c, days) => {
            let Some(c) = known(&bot, &ctx, chat, &c, lang).await? else {
                return Ok(());
            };
            mute_text(&ctx, (c.id, &c.label()), days, by, lang).await?
        }
        AlertsArgs::Enable(c, rule, on) => {
            let Some(c) = known(&bot, &ctx, chat, &c, lang).await? else {
                return Ok(());
            };
            store::set_rule(&ctx.db, c.id, rule, None, on, by).await?;
            let rule = rule.name();
            let channel = esc(&c.label());
            if on {
                t!(lang, "alerts-rule-on", rule = rule, channel = channel)
            } else {
                t!(lang, "alerts-rule-off", rule = rule, channel = channel)
            }
        }
    };
    say(&bot, chat, text).await
}

async fn mute_text(
    ctx: &Ctx,
    (channel, label): (ChannelId, &str),
    days: u32,
    by: Option<i64>,
    lang: Lang,
) -> Result<String, BoxError> {
    let until = ctx.now() + chrono::Duration::days(i64::from(days));
    store::mute(&ctx.db, channel, until, by).await?;
    Ok(t!(
        lang,
        "alerts-muted",
        channel = esc(label),
        until = format!(
            "{} {}",
            i18n::date(lang, until.date_naive()),
            until.format("%H:%M")
        )
    ))
}

/// The "Mute 7 days" button under an alert (admins; a viewer is told it is for admins).
pub(super) async fn mute_pressed(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    member: Member,
    action: Action,
    lang: Lang,
) -> HandlerResult {
    bot.answer_callback_query(q.id).await?;
    let Action::Mute { channel, days } = action else {
        return Ok(());
    };
    if member.role != Role::Admin {
        return say(&bot, pressed.chat, t!(lang, "alerts-mute-admins-only")).await;
    }
    let Ok(id) = ChannelId::new(channel) else {
        return say(&bot, pressed.chat, super::button::expired_text(lang)).await;
    };
    let label = match query::resolve(&ctx.db, &ChannelRef::Id(id)).await {
        Ok(c) => c.label(),
        Err(_) => id.to_string(),
    };
    let by = Some(member.user.0 as i64);
    let text = mute_text(&ctx, (id, &label), days, by, lang).await?;
    say(&bot, pressed.chat, text).await
}

async fn list_messages(ctx: &Ctx, lang: Lang) -> Result<Vec<String>, BoxError> {
    let (open, resolved) = store::list(&ctx.db, 10).await?;
    let mut lines = Vec::new();
    if open.is_empty() {
        lines.push(t!(lang, "alerts-none-open"));
    } else {
        lines.push(t!(lang, "alerts-open-title", count = open.len()));
        for e in &open {
            lines.push(t!(
                lang,
                "alerts-open-line",
                channel = esc(&e.label()),
                rule = e.rule.clone(),
                day = i18n::date(lang, e.day),
                detail = esc(&wording::detail(e, lang))
            ));
        }
    }
    if !resolved.is_empty() {
        lines.push(format!("\n{}", t!(lang, "alerts-resolved-title")));
        for e in &resolved {
            lines.push(format!(
                "• {} {} {} → {}",
                esc(&e.label()),
                e.rule,
                i18n::date(lang, e.day),
                e.resolved_at
                    .map(|t| i18n::date(lang, t.date_naive()))
                    .unwrap_or_default()
            ));
        }
    }
    lines.push(format!("\n{}", t!(lang, "alerts-list-footer")));
    Ok(crate::render::split_messages(lines))
}

/// The text of one alert in `lang`: the rule, the numbers and the threshold.
pub fn alert_text(e: &Event, lang: Lang) -> String {
    let threshold = match e.rule.parse::<Rule>() {
        Ok(r) => wording::threshold(lang, r, e.threshold),
        Err(_) => i18n::dec(lang, e.threshold, 1),
    };
    t!(
        lang,
        "alert",
        channel = esc(&e.label()),
        rule = e.rule.clone(),
        day = i18n::date(lang, e.day),
        detail = esc(&wording::detail(e, lang)),
        before = wording::num(lang, e.baseline),
        after = wording::num(lang, e.value),
        change = e.change_pct.map_or_else(
            || t!(lang, "not-available"),
            |p| i18n::signed_pct(lang, p, 1)
        ),
        threshold = threshold
    )
}

/// The digest of many alerts for one person in `lang`, in as many messages as it takes.
pub fn digest_messages(events: &[Event], lang: Lang) -> Vec<String> {
    let mut lines = vec![t!(lang, "alerts-digest-title", count = events.len())];
    for e in events {
        lines.push(format!(
            "• {} <b>{}</b> {}: {}",
            esc(&e.label()),
            e.rule,
            i18n::date(lang, e.day),
            esc(&wording::detail(e, lang))
        ));
    }
    lines.push(format!("\n{}", t!(lang, "alerts-digest-footer")));
    crate::render::split_messages(lines)
}

/// Sends one alert: the 30-day members chart around it for a channel, with the buttons.
async fn send_one(bot: &TgBot, ctx: &Ctx, (user, lang): (i64, Lang), e: &Event) -> HandlerResult {
    let chat = ChatId(user);
    let text = alert_text(e, lang);
    let Some(channel) = e.channel_id.and_then(|c| ChannelId::new(c).ok()) else {
        return say(bot, chat, text).await;
    };
    let c = query::resolve(&ctx.db, &ChannelRef::Id(channel)).await?;
    let until = e.day + chrono::Duration::days(15);
    let days = Days::new(30).expect("30 is a valid window");
    let stats = query::stats(&ctx.engine, &c, days, Some(until)).await;
    // One alert goes to every recipient: the chart is drawn once per language (cached).
    let png = match stats {
        Ok(s) => super::stats::members_chart(ctx, &s, lang)
            .await
            .map(|(png, _times)| png),
        // Plain text: `send_chart` escapes the reason as a whole.
        Err(query::Error::NoData(c)) => {
            Err(BoxError::from(t!(lang, "no-samples-yet", channel = c)))
        }
        Err(err) => Err(BoxError::from(err)),
    };
    let id = channel.get();
    let rows = vec![vec![
        (
            t!(lang, "button-mute-7"),
            Action::Mute {
                channel: id,
                days: 7,
            },
        ),
        (
            t!(lang, "button-stats"),
            Action::Stats {
                channel: id,
                days: 30,
            },
        ),
        (
            t!(lang, "button-compare"),
            Action::CompareWith {
                channel: id,
                days: 30,
            },
        ),
    ]];
    let markup = keyboard(ctx, chat, UserId(user as u64), rows, false).await?;
    send_chart(bot, chat, png, "alert.png", text, Some(markup)).await
}

/// Sends every queued delivery once: more than [`DIGEST_OVER`] for one person become one
/// digest. Returns the messages sent.
///
/// errors: the store's; a failed send is recorded as `failed` and logged, not returned.
pub(super) async fn deliver(bot: &TgBot, ctx: &Ctx) -> Result<usize, BoxError> {
    let mut sent = 0;
    for (user, events) in store::claim(&ctx.db).await? {
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let lang = state::language_of(&ctx.db, user).await.unwrap_or_else(|e| {
            tracing::warn!(user_id = user, error = %crate::error_chain(&e), "cannot read a user's language");
            Lang::default()
        });
        let result = if events.len() > DIGEST_OVER {
            say_all(bot, ChatId(user), digest_messages(&events, lang)).await
        } else {
            let mut n = 0;
            let mut r = Ok(());
            for e in &events {
                r = send_one(bot, ctx, (user, lang), e).await;
                if r.is_err() {
                    break;
                }
                n += 1;
            }
            r.map(|()| n)
        };
        let ok = match result {
            Ok(n) => {
                sent += n;
                true
            }
            Err(e) => {
                tracing::warn!(user_id = user, error = %e, "cannot send an alert");
                false
            }
        };
        if let Err(e) = store::finish(&ctx.db, user, &ids, ok, ctx.now()).await {
            tracing::warn!(user_id = user, error = %crate::error_chain(&e), "cannot record an alert delivery");
        }
        metrics::counter!("tgpulse_alert_messages_total", "outcome" => if ok { "sent" } else { "failed" })
            .increment(1);
    }
    Ok(sent)
}

/// The delivery loop: [`deliver`] and the due reports every [`DELIVERY_EVERY`] until the bot
/// stops.
pub(super) async fn delivery_loop(bot: TgBot, ctx: Arc<Ctx>) {
    loop {
        if let Err(e) = deliver(&bot, &ctx).await {
            tracing::warn!(error = %e, "alert delivery failed");
        }
        if let Err(e) = super::reports::deliver(&bot, &ctx).await {
            tracing::warn!(error = %e, "report delivery failed");
        }
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(DELIVERY_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_digest_comes_in_messages_under_telegrams_limit() {
        let e = Event {
            id: 1,
            subject: "1".into(),
            channel_id: Some(1),
            handle: Some("some_channel".into()),
            title: None,
            rule: "no_posts".into(),
            day: "2026-01-01".parse().unwrap(),
            opened_at: chrono::Utc::now(),
            value: Some(100.0),
            baseline: Some(24.0),
            change_pct: None,
            threshold: 3.0,
            score: Some(72.0),
            detail: "no post for 100 h; it usually posts every 24.0 h (limit 72 h)".into(),
            resolved_at: None,
        };
        let msgs = digest_messages(&vec![e; 400], Lang::En);
        assert!(msgs.len() > 1);
        assert!(msgs.iter().all(|m| m.chars().count() < 4096));
        assert!(msgs[0].starts_with("🔔 <b>400 new alerts</b>"));
        assert_eq!(msgs.join("\n").matches("@some_channel").count(), 400);
    }

    #[test]
    fn alerts_forms_parse_and_bad_ones_get_the_usage() {
        assert_eq!(parse("").unwrap(), AlertsArgs::List);
        assert_eq!(parse("on").unwrap(), AlertsArgs::Notify(true));
        assert!(matches!(
            parse("set @birblife members_change 15").unwrap(),
            AlertsArgs::Set(_, Rule::MembersChange, t) if t == 15.0
        ));
        assert!(matches!(
            parse("mute @birblife 7d").unwrap(),
            AlertsArgs::Mute(_, 7)
        ));
        assert!(matches!(
            parse("off @birblife no_posts").unwrap(),
            AlertsArgs::Enable(_, Rule::NoPosts, false)
        ));
        for bad in [
            "set @birblife members_change lots",
            "set @birblife views_drop 150",
            "set @birblife nonsense 5",
            "mute @birblife forever",
            "mute @birblife 0d",
            "frobnicate",
        ] {
            let e = parse(bad).unwrap_err().render(Lang::En);
            assert!(e.contains("/alerts mute"), "{bad}: {e}");
        }
        assert!(!AlertsArgs::Notify(false).changes_rules());
        assert!(AlertsArgs::Mute(ChannelRef::Id(ChannelId::new(1).unwrap()), 7).changes_rules());
    }
}
