//! `/export`: streams the relation to a file in the work folder with [`crate::export`],
//! shows progress by editing one status message, and sends the file as a document. A file
//! over the upload limit is exported again in periods, each under the limit, and the reply
//! says so.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, ChatId, InputFile, MessageId, ParseMode};

use super::access::Member;
use super::args::{self, ExportArgs, ExportWhat};
use super::button::{EXPIRED, Pressed};
use super::reply::esc;
use super::send::{edit, known, say};
use super::stats::channel_of;
use super::{BoxError, Ctx, HandlerResult, TgBot};
use crate::domain::{ChannelRef, DayWindow};
use crate::export::{self, Destination, ExportFormat, ExportRequest};
use crate::query::{self, Channel};
use crate::render::thousands;
use crate::state::Action;

/// How often the status message is edited while rows stream.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// One exported file.
struct Part {
    /// File name shown to the user.
    name: String,
    /// Where it is in the work folder (`tgpulse-export-<random>-<name>`).
    path: PathBuf,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rows: u64,
    bytes: u64,
}

fn ext(f: ExportFormat) -> &'static str {
    match f {
        ExportFormat::Parquet => "parquet",
        ExportFormat::Csv => "csv",
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Files of one export; whatever is still listed when it drops is deleted (error paths,
/// cancellation at shutdown).
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `/export @channel [parquet|csv] [days] [members|views|posts|samples]`.
pub(super) async fn command(
    bot: TgBot,
    ctx: Arc<Ctx>,
    msg: Message,
    _: Member,
    args: String,
) -> HandlerResult {
    let chat = msg.chat.id;
    let a = match args::export(&args) {
        Ok(a) => a,
        Err(e) => return say(&bot, chat, esc(&e)).await,
    };
    match known(&bot, &ctx, chat, &a.channel).await? {
        Some(c) => run(&bot, &ctx, chat, &c, &a).await,
        None => Ok(()),
    }
}

/// "Export" under a `/stats` reply: the window's daily members as Parquet.
pub(super) async fn pressed(
    bot: TgBot,
    ctx: Arc<Ctx>,
    q: CallbackQuery,
    pressed: Pressed,
    _: Member,
    action: Action,
) -> HandlerResult {
    bot.answer_callback_query(q.id).text("Exporting…").await?;
    let Some((c, days)) = channel_of(&ctx, &action).await? else {
        return say(&bot, pressed.chat, EXPIRED).await;
    };
    let a = ExportArgs {
        channel: ChannelRef::Id(c.id),
        format: ExportFormat::Parquet,
        days: Some(days),
        what: ExportWhat::Members,
    };
    run(&bot, &ctx, pressed.chat, &c, &a).await
}

/// Runs one export. A failure is shown in the status message as well as logged.
async fn run(bot: &TgBot, ctx: &Ctx, chat: ChatId, c: &Channel, a: &ExportArgs) -> HandlerResult {
    let relation = query::relation(a.what.relation()).ok_or("unknown relation")?;
    let scope = match a.days {
        Some(d) => format!("the last {} days with data", d.get()),
        None => "all data".to_owned(),
    };
    let status = bot
        .send_message(
            chat,
            format!(
                "Exporting {} of <b>{}</b> ({scope}) as {}…",
                relation.name,
                esc(&c.label()),
                ext(a.format)
            ),
        )
        .parse_mode(ParseMode::Html)
        .await?;
    let mut files = TempFiles(Vec::new());
    let result = export_and_send(bot, ctx, chat, status.id, c, a, relation, &mut files).await;
    if let Err(e) = &result {
        let text = format!(
            "The export of {} for {} failed: {}. Nothing partial was sent as complete; try again, or use the CLI.",
            relation.name,
            esc(&c.label()),
            esc(&e.to_string())
        );
        let _ = edit(bot, chat, status.id, text, None).await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn export_and_send(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    status: MessageId,
    c: &Channel,
    a: &ExportArgs,
    relation: &'static query::RelationDef,
    files: &mut TempFiles,
) -> HandlerResult {
    let label = c.label();
    let permit = ctx.queries.acquire().await?;
    // The span: the window's days, or the relation's first to last row.
    let tz = ctx.engine.db().timezone;
    let span = match a.days {
        Some(days) => query::last_day(&ctx.engine, c.id).await?.0.map(|last| {
            let w = DayWindow::ending(last, days, tz);
            (w.start(), w.end())
        }),
        None => export::time_span(&ctx.engine, relation, Some(c.id))
            .await?
            .map(|(a, b)| (a, b + chrono::Duration::microseconds(1))),
    };
    let Some((from, to)) = span else {
        drop(permit);
        let text = format!(
            "{} has no rows in {}; nothing to export.",
            esc(&label),
            relation.name
        );
        return edit(bot, chat, status, text, None).await;
    };
    let stem = format!("{}_{}", label.trim_start_matches('@'), relation.name);
    let mut parts = Vec::new();
    let mut todo = vec![(from, to)];
    let mut split = false;
    while let Some((f, t)) = todo.pop() {
        let part = export_part(bot, ctx, chat, status, relation, c, a.format, &stem, f, t).await?;
        files.0.push(part.path.clone());
        if part.bytes <= ctx.max_upload {
            parts.push(part);
            continue;
        }
        if t - f <= chrono::Duration::days(1) {
            drop(permit);
            let text = format!(
                "One day of {} is {} bytes, over the {} byte upload limit; use the CLI: tgpulse export --relation {} --channel {}",
                relation.name,
                thousands(part.bytes as i64),
                thousands(ctx.max_upload as i64),
                relation.name,
                esc(&label)
            );
            return edit(bot, chat, status, text, None).await;
        }
        // Split into as many equal periods as the size asks for (at least 2); the periods
        // share their bounds ([from, to) each), so no row is lost or sent twice.
        split = true;
        let n = part.bytes.div_ceil((ctx.max_upload * 9 / 10).max(1)).max(2) as i32;
        let step = (t - f) / n;
        let mut bounds: Vec<DateTime<Utc>> = (0..n).map(|i| f + step * i).collect();
        bounds.push(t);
        for w in bounds.windows(2).rev() {
            todo.push((w[0], w[1]));
        }
    }
    drop(permit); // uploading does not hold a query slot
    parts.retain(|p| p.rows > 0 || !split); // periods without data send no empty file
    parts.sort_by_key(|p| p.from);
    let total: u64 = parts.iter().map(|p| p.rows).sum();
    let n = parts.len();
    if split {
        let text = format!(
            "{} rows of {} for <b>{}</b> exceed Telegram's {} MB upload limit as one file, so they come in {n} files by period.",
            thousands(total as i64),
            relation.name,
            esc(&label),
            ctx.max_upload / 1_000_000
        );
        edit(bot, chat, status, text, None).await?;
    }
    for (i, p) in parts.iter().enumerate() {
        let name = p.name.clone();
        let caption = if n > 1 {
            format!(
                "part {} of {n}: {} … {}, {} rows",
                i + 1,
                p.from.format("%Y-%m-%d"),
                (p.to - chrono::Duration::microseconds(1)).format("%Y-%m-%d"),
                thousands(p.rows as i64)
            )
        } else {
            format!(
                "{} rows of {} for {}",
                thousands(p.rows as i64),
                relation.name,
                label
            )
        };
        bot.send_document(chat, InputFile::file(p.path.clone()).file_name(name))
            .caption(caption)
            .await?;
    }
    let done = format!(
        "Done: {} rows of {} for <b>{}</b> in {n} file{}.",
        thousands(total as i64),
        relation.name,
        esc(&label),
        if n == 1 { "" } else { "s" }
    );
    if split {
        say(bot, chat, done).await
    } else {
        edit(bot, chat, status, done, None).await
    }
}

/// Exports `[from, to)` to a file, editing the status message with the rows read every 2 s.
#[allow(clippy::too_many_arguments)]
async fn export_part(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    status: MessageId,
    relation: &'static query::RelationDef,
    c: &Channel,
    format: ExportFormat,
    stem: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Part, BoxError> {
    let name = format!(
        "{stem}_{}_{}.{}",
        from.format("%Y%m%d"),
        (to - chrono::Duration::microseconds(1)).format("%Y%m%d"),
        ext(format)
    );
    let path = ctx.work_dir.join(format!(
        "tgpulse-export-{:08x}-{name}",
        rand::random::<u32>()
    ));
    let req = ExportRequest {
        relation,
        channel: Some(c.id),
        from: Some(from),
        to: Some(to),
        format,
    };
    let rows = Arc::new(AtomicU64::new(0));
    // Aborted when this function returns or is cancelled.
    let _ticker = AbortOnDrop(tokio::spawn({
        let (bot, rows, label) = (bot.clone(), Arc::clone(&rows), c.label());
        async move {
            let mut shown = 0;
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let n = rows.load(Ordering::Relaxed);
                if n != shown {
                    shown = n;
                    let text = format!(
                        "Exporting {} of <b>{}</b>: {} rows read…",
                        relation.name,
                        esc(&label),
                        thousands(n as i64)
                    );
                    let _ = edit(&bot, chat, status, text, None).await;
                }
            }
        }
    }));
    let progress = {
        let rows = Arc::clone(&rows);
        move |n: u64| rows.store(n, Ordering::Relaxed)
    };
    let result = export::export_with_progress(
        &ctx.engine,
        &req,
        &Destination::File(path.clone()),
        &progress,
    )
    .await;
    let summary = result?;
    let bytes = std::fs::metadata(&path)?.len();
    Ok(Part {
        name,
        path,
        from,
        to,
        rows: summary.rows,
        bytes,
    })
}
