//! `tgpulse serve`: the service, supervised (see [`crate::app`]).

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use futures::FutureExt;

use super::bot::resolver;
use super::collect::{CollectArgs, build_sources, print_ingest, print_source, shutdown_signal};
use super::{Cli, interactive, open};
use crate::alert::AlertConfig;
use crate::alert::task::{AlertSetup, task as alert_task};
use crate::app::{App, AppConfig, Restart};
use crate::clock::SystemClock;
use crate::collect::SourcesConfig;
use crate::config::BotConfig;
use crate::query::Engine;
use crate::report::ReportConfig;

/// `tgpulse serve`: the collectors' arguments, the bot's and the ops server's.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    collect: CollectArgs,
    #[command(flatten)]
    bot: BotConfig,
    #[command(flatten)]
    alerts: AlertConfig,
    #[command(flatten)]
    reports: ReportConfig,
    /// Address of the ops server: /healthz, /readyz, /health (JSON) and /metrics
    /// (Prometheus). Port 0 picks a free port (logged at start).
    #[arg(
        long = "ops-listen",
        env = "TGPULSE_OPS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    ops_listen: SocketAddr,
}

/// Runs the service until SIGTERM or Ctrl-C, then prints what each source and the writer did.
///
/// errors: start-up failures (database, sources file, bot settings, ops address); at exit,
/// accepted samples that could not be stored.
pub(super) async fn serve_cmd(cli: &Cli, a: &ServeArgs) -> Result<()> {
    a.alerts.check().map_err(anyhow::Error::msg)?;
    let schedules = a.reports.parse().map_err(anyhow::Error::msg)?;
    let db = open(cli).await?;
    let cfg = SourcesConfig::load(&a.collect.sources.sources)?;
    let sources = build_sources(&a.collect, &cfg).await?;
    let bot = match &a.bot.token {
        Some(_) => {
            a.bot.check().map_err(anyhow::Error::msg)?;
            let interactive = interactive(cli, &db).await?;
            Some((interactive, db.clone(), resolver(&cfg, &a.bot).await))
        }
        None => {
            tracing::info!("no bot token (TGPULSE_BOT_TOKEN): running without the bot");
            None
        }
    };
    let clock = SystemClock::shared();
    let queries = Engine::new(interactive(cli, &db).await?);
    let reports = crate::report::schedule::task(queries.clone(), schedules, clock.clone());
    let alerts = alert_task(
        queries,
        AlertSetup {
            cfg: a.alerts.clone(),
            admins: a.bot.admin_ids.clone(),
            min_gap: a.alerts.every / 2,
        },
        sources.clone(),
        clock.now(),
        clock.clone(),
    );
    let app = App::build(
        db,
        AppConfig {
            sources,
            shard: a.collect.shard,
            ingest: cli.ingest.clone(),
            ops_listen: Some(a.ops_listen),
            clock,
        },
        shutdown_signal()?,
    )
    .await?;
    app.add_task("alerts", Restart::Always, Box::new(alerts));
    app.add_task("reports", Restart::Always, Box::new(reports));
    if let Some((db, exports, resolver)) = bot {
        let cfg = a.bot.clone();
        app.add_task(
            "bot",
            Restart::Always,
            Box::new(move |token| {
                let (db, exports, cfg, resolver) =
                    (db.clone(), exports.clone(), cfg.clone(), resolver.clone());
                async move {
                    crate::bot::run(db, exports, &cfg, resolver, SystemClock::shared(), token)
                        .await
                        .context("the bot stopped")
                }
                .boxed()
            }),
        );
    }
    let summary = app.run().await;
    for (name, r) in &summary.sources {
        print_source(name, r);
    }
    print_ingest(&summary.writer.report);
    for t in summary.tasks.iter().filter(|t| t.restarts > 0) {
        println!(
            "task {} restarted {} time(s); last error: {}",
            t.name,
            t.restarts,
            t.last_error.as_deref().unwrap_or("-")
        );
    }
    if summary.writer.unstored > 0 {
        bail!(
            "{} accepted samples could not be stored (the database stayed unavailable past \
             --final-flush-secs); they were not written",
            summary.writer.unstored
        );
    }
    Ok(())
}
