//! `tgpulse watch add|remove|list`: the watched channels.

use anyhow::{Context, Result};

use super::collect::SourcesArgs;
use super::{Cli, open};
use crate::catalog;
use crate::collect::{self, SourcesConfig};
use crate::domain::{ChannelRef, Handle};
use crate::render::age;

#[derive(Debug, clap::Subcommand)]
pub(super) enum WatchCommand {
    /// Resolve handles through a source and start collecting them.
    Add {
        /// @handles to watch.
        #[arg(required = true)]
        handles: Vec<Handle>,
        /// Source that resolves the handles (botapi, mtproto, tgstat).
        #[arg(long, default_value = "botapi")]
        via: String,
        #[command(flatten)]
        sources: SourcesArgs,
    },
    /// Stop collecting a channel (its samples stay).
    Remove {
        /// @handle or id.
        channel: ChannelRef,
    },
    /// List the watched channels.
    List,
}

pub(super) async fn watch_cmd(cli: &Cli, cmd: &WatchCommand) -> Result<()> {
    let db = open(cli).await?;
    match cmd {
        WatchCommand::Add {
            handles,
            via,
            sources,
        } => {
            let cfg = SourcesConfig::load(&sources.sources)?;
            let c = cfg.sources.get(via).cloned().unwrap_or_default();
            let source = collect::resolver(
                collect::build(via, &c)
                    .await
                    .with_context(|| format!("cannot start source {via}"))?,
            );
            for h in handles {
                let info = source
                    .resolve(h)
                    .await
                    .with_context(|| format!("cannot resolve {h} through {via}"))?;
                let new = catalog::add(&db, &info, None).await?;
                println!(
                    "{} {h} (id {}{})",
                    if new { "watching" } else { "already watching" },
                    info.channel_id,
                    info.title
                        .as_deref()
                        .map(|t| format!(", {t:?}"))
                        .unwrap_or_default()
                );
            }
        }
        WatchCommand::Remove { channel } => {
            let ch = crate::query::resolve(&db, channel).await?;
            if catalog::remove(&db, ch.id).await? {
                println!("stopped watching {}", ch.label());
            } else {
                println!("{} was not watched", ch.label());
            }
        }
        WatchCommand::List => {
            let now = chrono::Utc::now();
            let list = catalog::watched(&db).await?;
            println!(
                "{:<34} {:>12} {:>10} {:>14}",
                "channel", "members", "day delta", "last sample"
            );
            for w in &list {
                let name = match &w.handle {
                    Some(h) => format!("@{h}"),
                    None => w.channel_id.to_string(),
                };
                let opt = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
                println!(
                    "{name:<34} {:>12} {:>10} {:>14}",
                    opt(w.members),
                    w.day_delta
                        .map_or_else(|| "-".to_owned(), |d| format!("{d:+}")),
                    w.last_sample_at
                        .map_or_else(|| "never".to_owned(), |t| age(now - t)),
                );
            }
            println!("{} watched channel(s)", list.len());
        }
    }
    Ok(())
}
