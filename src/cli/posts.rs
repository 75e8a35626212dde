//! `tgpulse posts`, `tgpulse heatmap` and `tgpulse mentions`: the post analytics of one
//! channel over a window of local days.

use std::path::PathBuf;

use anyhow::Result;

use super::{Cli, WindowArgs, open_interactive, write_png};
use crate::domain::ChannelRef;
use crate::query::{self, Engine};
use crate::render::{self, OutputFormat};

/// `tgpulse posts @channel [--days N] [--top K]`: reach at 12/24/48 h, ERR at 24 h,
/// posting frequency and the top posts.
#[derive(Debug, clap::Args)]
pub(super) struct PostsArgs {
    /// `@handle` or channel id.
    channel: ChannelRef,
    #[command(flatten)]
    window: WindowArgs,
    /// Posts in each top list.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    top: u32,
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// `tgpulse heatmap @channel [--days N] --out F.png`: the best time to post.
#[derive(Debug, clap::Args)]
pub(super) struct HeatmapArgs {
    /// `@handle` or channel id.
    channel: ChannelRef,
    #[command(flatten)]
    window: WindowArgs,
    /// PNG file to write; without it only the table is printed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format of the printed table (table or json).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// `tgpulse mentions @channel [--days N]`: the forward/mention network.
#[derive(Debug, clap::Args)]
pub(super) struct MentionsArgs {
    /// `@handle` or channel id.
    channel: ChannelRef,
    #[command(flatten)]
    window: WindowArgs,
    /// Channels listed on each side.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    top: u32,
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// The engine over the database (interactive pool) and the channel `r` names.
///
/// errors: the database's, or `query::Error::NotFound` for an unknown channel.
async fn open_channel(cli: &Cli, r: &ChannelRef) -> Result<(Engine, query::Channel)> {
    let db = open_interactive(cli).await?;
    let channel = query::resolve(&db, r).await?;
    Ok((Engine::new(db), channel))
}

pub(super) async fn posts_cmd(cli: &Cli, a: &PostsArgs) -> Result<()> {
    let (engine, channel) = open_channel(cli, &a.channel).await?;
    let top = query::top_posts(
        &engine,
        &channel,
        a.window.days,
        a.window.until,
        a.top as usize,
    )
    .await?;
    let window = crate::domain::DayWindow {
        first: top.first_day,
        last: top.last_day,
        tz: engine.db().timezone,
    };
    let metrics = query::post_metrics(&engine, &channel, window).await?;
    print!("{}", render::posts(&top, &metrics, a.format)?);
    Ok(())
}

pub(super) async fn heatmap_cmd(cli: &Cli, a: &HeatmapArgs) -> Result<()> {
    let (engine, channel) = open_channel(cli, &a.channel).await?;
    let h = query::heatmap(&engine, &channel, a.window.days, a.window.until).await?;
    print!("{}", render::heatmap(&h, a.format)?);
    if let Some(out) = &a.out {
        write_png(out, &crate::chart::heatmap_png(&h, crate::i18n::Lang::En)?)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

pub(super) async fn mentions_cmd(cli: &Cli, a: &MentionsArgs) -> Result<()> {
    let (engine, channel) = open_channel(cli, &a.channel).await?;
    let m = query::mentions(
        &engine,
        &channel,
        a.window.days,
        a.window.until,
        a.top as usize,
    )
    .await?;
    print!("{}", render::mentions(&m, a.format)?);
    Ok(())
}
