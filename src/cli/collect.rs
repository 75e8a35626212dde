//! `tgpulse collect`, `serve`, `watch` and `login`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio_util::sync::CancellationToken;

use super::{Cli, open};
use crate::catalog::{self, Resolver, Shard};
use crate::clock::SystemClock;
use crate::collect::{self, Collector, SourceConfig, SourcesConfig};
use crate::config::BotConfig;
use crate::domain::{ChannelRef, Handle};
use crate::render::age;

/// Where the sources file is.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct SourcesArgs {
    /// Sources file (TOML, one table per source; see README "Live collection").
    #[arg(
        long = "sources",
        env = "TGPULSE_SOURCES",
        default_value = "tgpulse.toml"
    )]
    pub(super) sources: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(super) struct CollectArgs {
    #[command(flatten)]
    pub(super) sources: SourcesArgs,
    /// Collect every watched channel once, then exit.
    #[arg(long)]
    pub(super) once: bool,
    /// Run only these sources (repeatable). Default: every source in the sources file.
    #[arg(long = "source")]
    only: Vec<String>,
    /// Collect the watched channels whose id modulo N is i (for N instances).
    #[arg(long, default_value = "0/1")]
    pub(super) shard: Shard,
    /// Replay: the file to stream (implies --source replay when no source is named).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Replay speed: 1x, 3600x, ... or max.
    #[arg(long)]
    speed: Option<String>,
}

/// `tgpulse bot`.
#[derive(Debug, clap::Args)]
pub(super) struct BotArgs {
    #[command(flatten)]
    sources: SourcesArgs,
    #[command(flatten)]
    bot: BotConfig,
}

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

/// Cancelled on SIGTERM or Ctrl-C.
pub(super) fn shutdown_signal() -> Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let t = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutdown requested: finishing jobs in flight and flushing the last batch");
        t.cancel();
    });
    Ok(token)
}

pub(super) async fn build_sources(
    a: &CollectArgs,
    cfg: &SourcesConfig,
) -> Result<Vec<Arc<dyn Collector>>> {
    let mut wanted: Vec<(String, SourceConfig)> = if a.only.is_empty() {
        cfg.enabled()
            .map(|(n, c)| (n.to_owned(), c.clone()))
            .collect()
    } else {
        a.only
            .iter()
            .map(|n| (n.clone(), cfg.sources.get(n).cloned().unwrap_or_default()))
            .collect()
    };
    if a.file.is_some() && !wanted.iter().any(|(n, _)| n == "replay") {
        if a.only.is_empty() {
            wanted.clear();
        }
        wanted.push((
            "replay".into(),
            cfg.sources.get("replay").cloned().unwrap_or_default(),
        ));
    }
    if wanted.is_empty() {
        bail!(
            "no sources configured: add a table per source to the sources file (see README, \
             \"Live collection\"), or replay a file with --file PATH"
        );
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (name, mut c) in wanted {
        if name == "replay" {
            c.file = a.file.clone().or(c.file);
            c.speed = a.speed.clone().or(c.speed);
        }
        out.push(
            collect::build(&name, &c)
                .await
                .with_context(|| format!("cannot start source {name}"))?,
        );
    }
    Ok(out)
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
    let db = super::open_interactive(cli).await?;
    let cfg = SourcesConfig::load(&a.sources.sources)?;
    let resolver = resolver(&cfg, &a.bot).await;
    crate::bot::run(
        db,
        &a.bot,
        resolver,
        SystemClock::shared(),
        shutdown_signal()?,
    )
    .await
    .context("the bot stopped")?;
    Ok(())
}

/// `tgpulse collect`: the sources into one writer until each returns (`--once`) or SIGTERM.
pub(super) async fn collect_cmd(cli: &Cli, a: &CollectArgs) -> Result<()> {
    let db = open(cli).await?;
    let cfg = SourcesConfig::load(&a.sources.sources)?;
    let sources = build_sources(a, &cfg).await?;
    let shutdown = shutdown_signal()?;
    let summary = collect::collect(&db, sources, &cli.ingest, a.shard, a.once, shutdown)
        .await
        .context("the ingest writer failed")?;
    for (name, r) in &summary.sources {
        match r {
            Ok(r) => print_source(name, r),
            Err(e) => println!("{name}: stopped: {}", crate::error_chain(e)),
        }
    }
    print_ingest(&summary.ingest);
    if summary.sources.iter().any(|(_, r)| r.is_err()) {
        bail!("a source stopped with an error");
    }
    Ok(())
}

/// One source's line of the summary printed at exit.
pub(super) fn print_source(name: &str, r: &collect::RunReport) {
    println!(
        "{name}: {} jobs ok, {} failed, {} samples accepted",
        r.jobs_ok, r.jobs_failed, r.samples_sent
    );
}

/// The writer's line of the summary printed at exit.
pub(super) fn print_ingest(i: &crate::ingest::IngestReport) {
    println!(
        "stored {} new samples ({} member, {} post), {} already stored, {} batches",
        i.inserted(),
        i.member_samples_inserted,
        i.post_samples_inserted,
        i.duplicates(),
        i.batches
    );
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

/// `tgpulse login`: signs the MTProto account in and writes the session file (mode 0600).
#[cfg(feature = "mtproto")]
pub(super) async fn login_cmd(a: &LoginArgs) -> Result<()> {
    use std::io::{BufRead, Write};
    let cfg = SourcesConfig::load(&a.sources.sources)?;
    let c = cfg.sources.get("mtproto").cloned().unwrap_or_default();
    let (Some(api_id), Some(api_hash)) = (c.api_id, c.api_hash.as_ref()) else {
        bail!("the [mtproto] table needs api_id and api_hash (from my.telegram.org)");
    };
    let session = c.session.unwrap_or_else(|| "tgpulse.session".into());
    let ask = |prompt: &str| {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line.trim().to_owned()
    };
    let phone = match &a.phone {
        Some(p) => p.clone(),
        None => ask("phone number (international format): "),
    };
    crate::collect::mtproto::live::login(
        &session,
        api_id,
        api_hash,
        &phone,
        || ask("login code: "),
        |hint| {
            let prompt = match hint {
                Some(h) => format!("2FA password (hint: {h}): "),
                None => "2FA password: ".to_owned(),
            };
            rpassword::prompt_password(prompt).unwrap_or_default()
        },
    )
    .await?;
    println!("logged in; session saved (mode 0600)");
    Ok(())
}

/// Arguments of `tgpulse login`.
#[cfg(feature = "mtproto")]
#[derive(Debug, clap::Args)]
pub(super) struct LoginArgs {
    #[command(flatten)]
    sources: SourcesArgs,
    /// Phone number of the account (asked for when absent).
    #[arg(long)]
    phone: Option<String>,
}

/// `tgpulse health`: storage mode, each source's last success and lag, recent sample counts.
pub(super) async fn health_cmd(cli: &Cli) -> Result<()> {
    let db = open(cli).await?;
    let now = chrono::Utc::now();
    let h = catalog::health(&db, now).await?;
    println!(
        "storage: {} | watched channels: {} | samples in the last hour: {}, last day: {}",
        match h.storage {
            crate::db::Storage::Timescale => "TimescaleDB",
            crate::db::Storage::Plain => "plain PostgreSQL",
        },
        h.watched,
        h.samples_last_hour,
        h.samples_last_day
    );
    if h.sources.is_empty() {
        println!("no source has run yet");
    }
    for s in &h.sources {
        println!(
            "{:<10} last success {:<12} jobs ok {:>8} failed {:>6}{}",
            s.source,
            s.last_success
                .map_or_else(|| "never".to_owned(), |t| age(now - t)),
            s.jobs_ok,
            s.jobs_failed,
            s.last_error
                .as_ref()
                .map(|(t, e)| format!(" | last error {}: {e}", age(now - *t)))
                .unwrap_or_default()
        );
    }
    Ok(())
}
