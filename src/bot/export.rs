//! `/export`: streams the relation into files in the work folder with
//! [`crate::export::export_parts`], shows progress by editing one status message, and sends
//! each file as a document as soon as it is closed. An export bigger than the upload limit
//! comes in several files, each a complete Parquet or CSV file under the limit; at most one
//! of them is on disk at a time.
//!
//! Limits: one export at a time per user (a second one is refused while the first runs), and
//! viewers may receive at most `--bot-export-quota` bytes per UTC day (admins have no limit);
//! the bytes are counted in PostgreSQL ([`crate::state::export_quota`]) before each file is
//! sent, and an export stops at the file that would pass the allowance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId, InputFile, MessageId, ParseMode};

use super::access::{Member, Role};
use super::args::{self, ExportArgs, ExportWhat};
use super::button::{Pressed, expired_text};
use super::reply::esc;
use super::send::{edit, known, say};
use super::stats::channel_of;
use super::{Ctx, HandlerResult, TgBot};
use crate::domain::{ChannelRef, DayWindow};
use crate::export::{self, ExportFormat, ExportRequest, Part};
use crate::i18n::Lang;
use crate::query::{self, Channel};
use crate::state::{Action, export_quota};
use crate::t;

/// How often the status message is edited while rows stream.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The one export a user may run at a time; the user is free again when it drops.
struct Running {
    ctx: Arc<Ctx>,
    user: u64,
}

impl Running {
    /// Marks `user` as exporting, or `None` if an export of theirs already runs.
    fn claim(ctx: &Arc<Ctx>, user: u64) -> Option<Self> {
        let mut set = ctx.exporting.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(user).then(|| Self {
            ctx: Arc::clone(ctx),
            user,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut set = self.ctx.exporting.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.user);
    }
}

/// `/export @channel [parquet|csv] [days] [members|views|posts|samples]`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    who: Member,
    args: String,
    lang: Lang,
) -> HandlerResult {
    let chat = msg.chat.id;
    let a = match args::export(&args) {
        Ok(a) => a,
        Err(e) => return say(&bot, chat, esc(&e.render(lang))).await,
    };
    match known(&bot, &ctx, chat, &a.channel, lang).await? {
        Some(c) => run(&bot, &ctx, (chat, lang), who, &c, &a).await,
        None => Ok(()),
    }
}

/// "Export" under a `/stats` reply: the window's daily members as Parquet.
pub(super) async fn pressed(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    who: Member,
    action: Action,
    lang: Lang,
) -> HandlerResult {
    bot.answer_callback_query(q.id)
        .text(t!(lang, "export-pressed"))
        .await?;
    let Some((c, days)) = channel_of(&ctx, &action).await? else {
        return say(&bot, pressed.chat, expired_text(lang)).await;
    };
    let a = ExportArgs {
        channel: ChannelRef::Id(c.id),
        format: ExportFormat::Parquet,
        days: Some(days),
        what: ExportWhat::Members,
    };
    run(&bot, &ctx, (pressed.chat, lang), who, &c, &a).await
}

/// Starts one export in the background, unless the user already runs one or a viewer has
/// used up the day's allowance. The chat stays free meanwhile (teloxide handles one update
/// per chat at a time), so a second `/export` gets an answer instead of waiting. The task is
/// tracked by the bot and stopped at shutdown; a failure is shown in the status message and
/// logged there.
async fn run(
    bot: &TgBot,
    ctx: &Arc<Ctx>,
    (chat, lang): (ChatId, Lang),
    who: Member,
    c: &Channel,
    a: &ExportArgs,
) -> HandlerResult {
    let relation = query::relation(a.what.relation()).ok_or("unknown relation")?;
    let Some(running) = Running::claim(ctx, who.user.0) else {
        return say(bot, chat, t!(lang, "export-still-running")).await;
    };
    let quota = (who.role != Role::Admin).then_some(ctx.export_quota);
    if let Some(quota) = quota {
        let used = export_quota::used(&ctx.db, who.user.0 as i64, ctx.now().date_naive()).await?;
        if used >= quota {
            return say(bot, chat, allowance_used(lang, used, quota)).await;
        }
    }
    let scope = match a.days {
        Some(d) => t!(lang, "export-scope-days", days = d.get()),
        None => t!(lang, "export-scope-all"),
    };
    let status = bot
        .send_message(
            chat,
            t!(
                lang,
                "export-started",
                relation = relation.name,
                channel = esc(&c.label()),
                scope = scope,
                format = a.format.name()
            ),
        )
        .parse_mode(ParseMode::Html)
        .await?
        .id;
    let tasks = &ctx.tasks;
    let (bot, ctx, c, a) = (bot.clone(), Arc::clone(ctx), c.clone(), a.clone());
    let stop = ctx.stop.clone();
    tasks.spawn(async move {
        let _running = running;
        let job = Job {
            bot: &bot,
            ctx: &ctx,
            chat,
            lang,
            status,
            user: who.user.0 as i64,
            quota,
            c: &c,
            relation,
        };
        let result = tokio::select! {
            r = job.export_and_send(&a) => r,
            () = stop.cancelled() => {
                let text = t!(lang, "export-shutdown");
                let _ = edit(&bot, chat, status, text, None).await;
                return;
            }
        };
        let Err(e) = result else { return };
        let over = match e.downcast_ref::<export::Error>() {
            Some(export::Error::Deliver { source, .. }) => source.downcast_ref::<OverAllowance>(),
            _ => None,
        };
        if let Some(over) = over {
            // A refusal, not a failure.
            let _ = edit(&bot, chat, status, over.render(lang), None).await;
            return;
        }
        let chain = crate::error_chain(e.as_ref());
        tracing::warn!(user = who.user.0, relation = relation.name, error = %chain, "an export failed");
        let text = t!(
            lang,
            "export-failed",
            relation = relation.name,
            channel = esc(&c.label()),
            error = esc(&chain)
        );
        let _ = edit(&bot, chat, status, text, None).await;
    });
    Ok(())
}

fn allowance_used(lang: Lang, used: u64, quota: u64) -> String {
    t!(
        lang,
        "export-allowance-used",
        used = used.min(i64::MAX as u64),
        quota = quota.min(i64::MAX as u64)
    )
}

/// The next file would take a viewer past the day's allowance.
#[derive(Debug, thiserror::Error)]
#[error("the next file ({bytes} bytes) would pass the export allowance of {quota} bytes")]
struct OverAllowance {
    sent: u32,
    bytes: u64,
    quota: u64,
}

impl OverAllowance {
    /// What the user reads.
    fn render(&self, lang: Lang) -> String {
        t!(
            lang,
            "export-over-allowance",
            sent = self.sent,
            bytes = self.bytes.min(i64::MAX as u64),
            quota = self.quota.min(i64::MAX as u64)
        )
    }
}

/// One export's context.
struct Job<'a> {
    bot: &'a TgBot,
    ctx: &'a Ctx,
    chat: ChatId,
    lang: Lang,
    status: MessageId,
    user: i64,
    /// The user's daily allowance in bytes; `None` for admins.
    quota: Option<u64>,
    c: &'a Channel,
    relation: &'static query::RelationDef,
}

impl Job<'_> {
    async fn export_and_send(&self, a: &ExportArgs) -> HandlerResult {
        let (bot, ctx, chat, status, relation) =
            (self.bot, self.ctx, self.chat, self.status, self.relation);
        let label = self.c.label();
        // Held to the end: while a part is sent the query waits, its connection open.
        let _permit = ctx.queries.acquire().await?;
        // The span: the window's days, or the relation's first to last row.
        let tz = ctx.engine.db().timezone;
        let span = match a.days {
            Some(days) => query::last_day(&ctx.engine, self.c.id)
                .await?
                .0
                .map(|last| {
                    let w = DayWindow::ending(last, days, tz);
                    (w.start(), w.end())
                }),
            None => export::time_span(&ctx.engine, relation, Some(self.c.id))
                .await?
                .map(|(a, b)| (a, b + chrono::Duration::microseconds(1))),
        };
        let lang = self.lang;
        let nothing = t!(
            lang,
            "export-nothing",
            channel = esc(&label),
            relation = relation.name
        );
        let Some((from, to)) = span else {
            return edit(bot, chat, status, nothing, None).await;
        };
        let name = format!(
            "{}_{}_{}_{}",
            label.trim_start_matches('@'),
            relation.name,
            from.format("%Y%m%d"),
            (to - chrono::Duration::microseconds(1)).format("%Y%m%d"),
        );
        let req = ExportRequest {
            relation,
            channel: Some(self.c.id),
            from: Some(from),
            to: Some(to),
            format: a.format,
        };
        let rows = Arc::new(AtomicU64::new(0));
        let _ticker = self.ticker(Arc::clone(&rows));
        let progress = move |n: u64| rows.store(n, Ordering::Relaxed);
        let ext = a.format.name();
        let job = self;
        let deliver = move |p: Part| {
            let file = match (p.index, p.last) {
                (1, true) => format!("{name}.{ext}"),
                (i, _) => format!("{name}_part{i}.{ext}"),
            };
            job.send_part(p, file)
        };
        let s = export::export_parts(
            &ctx.export_engine,
            &req,
            &ctx.work_dir,
            ctx.max_upload,
            &progress,
            deliver,
        )
        .await?;
        if s.parts == 0 {
            return edit(bot, chat, status, nothing, None).await;
        }
        let done = t!(
            lang,
            "export-done",
            rows = s.rows,
            relation = relation.name,
            channel = esc(&label),
            files = s.parts
        );
        if s.parts == 1 {
            edit(bot, chat, status, done, None).await
        } else {
            say(bot, chat, done).await
        }
    }

    /// Sends one closed part, after counting its bytes against a viewer's allowance.
    async fn send_part(&self, p: Part, name: String) -> HandlerResult {
        let (bot, chat) = (self.bot, self.chat);
        if let Some(quota) = self.quota {
            let day = self.ctx.now().date_naive();
            if !export_quota::charge(&self.ctx.db, self.user, day, p.bytes, quota).await? {
                return Err(OverAllowance {
                    sent: p.index - 1,
                    bytes: p.bytes,
                    quota,
                }
                .into());
            }
        }
        let (lang, rows) = (self.lang, p.rows);
        let caption = match (p.index, p.last) {
            (1, true) => t!(
                lang,
                "export-file-caption",
                rows = rows,
                relation = self.relation.name,
                channel = self.c.label()
            ),
            (i, true) => t!(lang, "export-part-last", part = i, rows = rows),
            (i, false) => t!(lang, "export-part", part = i, rows = rows),
        };
        if p.index == 1 && !p.last {
            let text = t!(
                lang,
                "export-in-parts",
                relation = self.relation.name,
                channel = esc(&self.c.label()),
                mb = self.ctx.max_upload / 1_000_000
            );
            let _ = edit(bot, chat, self.status, text, None).await;
        }
        bot.send_document(chat, InputFile::file(p.path).file_name(name))
            .caption(caption)
            .await?;
        Ok(())
    }

    /// Edits the status message with the rows read every 2 s until dropped.
    fn ticker(&self, rows: Arc<AtomicU64>) -> AbortOnDrop {
        let (bot, chat, status, relation) =
            (self.bot.clone(), self.chat, self.status, self.relation);
        let (label, lang) = (self.c.label(), self.lang);
        AbortOnDrop(tokio::spawn(async move {
            let mut shown = 0;
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let n = rows.load(Ordering::Relaxed);
                if n != shown {
                    shown = n;
                    let text = t!(
                        lang,
                        "export-progress",
                        relation = relation.name,
                        channel = esc(&label),
                        rows = n
                    );
                    let _ = edit(&bot, chat, status, text, None).await;
                }
            }
        }))
    }
}
