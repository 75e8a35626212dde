//! `tgpulse bot`: the admin bot alone, and the resolver of `/add` that `serve` shares.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::Cli;
use super::collect::{SourcesArgs, shutdown_signal};
use crate::catalog::Resolver;
use crate::clock::SystemClock;
use crate::collect::{self, SourceConfig, SourcesConfig};
use crate::config::BotConfig;

/// `tgpulse bot`.
#[derive(Debug, clap::Args)]
pub(super) struct BotArgs {
    #[command(flatten)]
    sources: SourcesArgs,
    #[command(flatten)]
    bot: BotConfig,
}

/// The source that resolves the bot's `/add`: its table in the sources file, or for botapi
/// without one, the bot's own token and API URL. `None` when it cannot be built.
pub(super) async fn resolver(cfg: &SourcesConfig, bot: &BotConfig) -> Option<Arc<dyn Resolver>> {
    let via = bot.resolve_via.as_str();
    let c = match cfg.sources.get(via) {
        Some(c) => c.clone(),
        None if via == "botapi" => SourceConfig {
            api_url: Some(bot.api_url.as_str().trim_end_matches('/').to_owned()),
            token: bot.token.clone(),
            ..SourceConfig::default()
        },
        None => SourceConfig::default(),
    };
    match collect::build(via, &c).await {
        Ok(s) => Some(collect::resolver(s)),
        Err(e) => {
            tracing::warn!(source = via, error = %crate::error_chain(&e), "/add cannot resolve handles");
            None
        }
    }
}

/// `tgpulse bot`.
pub(super) async fn bot_cmd(cli: &Cli, a: &BotArgs) -> Result<()> {
    let exports = super::open(cli).await?;
    let db = super::interactive(cli, &exports).await?;
    let cfg = SourcesConfig::load(&a.sources.sources)?;
    let resolver = resolver(&cfg, &a.bot).await;
    crate::bot::run(
        db,
        exports,
        &a.bot,
        resolver,
        SystemClock::shared(),
        shutdown_signal()?,
    )
    .await
    .context("the bot stopped")?;
    Ok(())
}
