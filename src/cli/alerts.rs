//! `tgpulse alerts check|backtest`: one evaluation now (or at `--at`), and the rules replayed
//! day by day over the stored history.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};

use super::{Cli, open, resolve_all};
use crate::alert::backtest::{BacktestAlert, backtest};
use crate::alert::task::{AlertSetup, evaluate, evaluate_and_apply, watched_ids};
use crate::alert::{AlertConfig, Rule, store};
use crate::domain::{ChannelId, ChannelRef};
use crate::query::Engine;
use crate::render::OutputFormat;

/// `tgpulse alerts`.
#[derive(Debug, clap::Subcommand)]
pub(super) enum AlertsCommand {
    /// Evaluate the rules once over the watched channels and print what fires and what is
    /// open. Nothing is recorded or sent unless --notify is given.
    Check(CheckArgs),
    /// Replay the rules day by day over the stored history and print every alert that would
    /// have opened (with the service's open/resolve logic).
    Backtest(BacktestArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    #[command(flatten)]
    alerts: AlertConfig,
    /// Evaluate at this instant (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    /// Record the evaluation (open and resolve alerts) and queue their notifications for the
    /// bot of `tgpulse serve` or `tgpulse bot`, which sends them within seconds.
    #[arg(long)]
    notify: bool,
    /// Telegram user ids of the admins to notify (as for the bot).
    #[arg(long = "admin-ids", env = "TGPULSE_ADMIN_IDS", value_delimiter = ',')]
    admin_ids: Vec<u64>,
}

#[derive(Debug, clap::Args)]
pub(super) struct BacktestArgs {
    #[command(flatten)]
    alerts: AlertConfig,
    /// First local day (YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last local day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    to: NaiveDate,
    /// Only these channels (@handle or id; repeat). Default: every channel in the database.
    #[arg(long = "channel")]
    channels: Vec<ChannelRef>,
    /// Only these rules (repeat). Default: all four channel rules.
    #[arg(long = "rule")]
    rules: Vec<Rule>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

pub(super) async fn alerts_cmd(cli: &Cli, cmd: &AlertsCommand) -> Result<()> {
    match cmd {
        AlertsCommand::Check(a) => check(cli, a).await,
        AlertsCommand::Backtest(a) => backtest_cmd(cli, a).await,
    }
}

async fn check(cli: &Cli, a: &CheckArgs) -> Result<()> {
    a.alerts.check().map_err(anyhow::Error::msg)?;
    let db = open(cli).await?;
    let engine = Engine::new(db.clone());
    let at = a.at.unwrap_or_else(Utc::now);
    let started = std::time::Instant::now();
    let evaluated = if a.notify {
        let setup = AlertSetup {
            cfg: a.alerts.clone(),
            admins: a.admin_ids.clone(),
            min_gap: std::time::Duration::ZERO,
        };
        let (e, applied) = evaluate_and_apply(&engine, &setup, at, None).await?;
        eprintln!(
            "recorded: {} opened, {} resolved, {} still open; {} notifications queued",
            applied.opened.len(),
            applied.resolved,
            applied.held,
            applied.queued
        );
        e
    } else {
        let channels = watched_ids(&db).await?;
        evaluate(&engine, &a.alerts, &channels, at).await?
    };
    eprintln!(
        "evaluated {} observations at {} in {} ms",
        evaluated.observations.len(),
        at.to_rfc3339(),
        started.elapsed().as_millis()
    );
    let mut out = String::from("firing now:\n");
    let mut any = false;
    for o in evaluated.firing() {
        any = true;
        writeln!(
            out,
            "  {} {} {}: {}",
            o.subject.key(),
            o.rule,
            o.day,
            o.detail
        )?;
    }
    if !any {
        out.push_str("  nothing\n");
    }
    let (open_events, _) = store::list(&db, 0).await?;
    writeln!(out, "open alerts (recorded): {}", open_events.len())?;
    for e in &open_events {
        writeln!(
            out,
            "  {} {} since {}: {}",
            e.label(),
            e.rule,
            e.day,
            e.detail
        )?;
    }
    print!("{out}");
    Ok(())
}

async fn backtest_cmd(cli: &Cli, a: &BacktestArgs) -> Result<()> {
    a.alerts.check().map_err(anyhow::Error::msg)?;
    if a.to < a.from {
        bail!("--to {} is before --from {}", a.to, a.from);
    }
    let db = open(cli).await?;
    let channels: Vec<ChannelId> = if a.channels.is_empty() {
        all_channels(&db).await?
    } else {
        resolve_all(&db, &a.channels)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    let rules = if a.rules.is_empty() {
        Rule::CHANNEL_RULES.to_vec()
    } else {
        a.rules.clone()
    };
    if rules.contains(&Rule::SourceStale) {
        bail!("source_stale depends on the running service and cannot be backtested");
    }
    let engine = Engine::new(db.clone());
    let settings = store::settings(&db, &a.alerts).await?;
    let started = std::time::Instant::now();
    let alerts = backtest(&engine, &settings, &channels, &rules, a.from, a.to)
        .await
        .context("the backtest failed")?;
    eprint!(
        "{}",
        summary(
            &alerts,
            &rules,
            channels.len(),
            a.from,
            a.to,
            started.elapsed()
        )
    );
    print!("{}", render(&alerts, a.format)?);
    Ok(())
}

async fn all_channels(db: &crate::db::Db) -> Result<Vec<ChannelId>> {
    let client = db.pool.get().await?;
    let rows = client
        .query("SELECT channel_id FROM channels ORDER BY channel_id", &[])
        .await
        .context("failed to read the channels")?;
    Ok(rows
        .iter()
        .filter_map(|r| ChannelId::new(r.get(0)).ok())
        .collect())
}

/// Per rule: alerts, and alerts per channel per month (30.44 days).
fn summary(
    alerts: &[BacktestAlert],
    rules: &[Rule],
    channels: usize,
    from: NaiveDate,
    to: NaiveDate,
    took: std::time::Duration,
) -> String {
    let months = ((to - from).num_days() + 1) as f64 / 30.44;
    let mut per_rule: BTreeMap<Rule, usize> = rules.iter().map(|r| (*r, 0)).collect();
    for a in alerts {
        *per_rule.entry(a.rule).or_default() += 1;
    }
    let rate = |n: usize| n as f64 / (channels.max(1) as f64 * months);
    let mut out = format!(
        "backtest {from}..{to}: {channels} channels, {months:.1} months, {} alerts in {:.1} s\n",
        alerts.len(),
        took.as_secs_f64()
    );
    for (rule, n) in &per_rule {
        out.push_str(&format!(
            "  {:<15} {n:>6} alerts  {:.3} per channel per month\n",
            rule.name(),
            rate(*n)
        ));
    }
    out.push_str(&format!(
        "  {:<15} {:>6} alerts  {:.3} per channel per month\n",
        "all",
        alerts.len(),
        rate(alerts.len())
    ));
    out
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(String::new, |v| format!("{v:.digits$}"))
}

fn render(alerts: &[BacktestAlert], format: OutputFormat) -> Result<String> {
    Ok(match format {
        OutputFormat::Json => serde_json::to_string_pretty(alerts)? + "\n",
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "channel_id",
                "rule",
                "day",
                "value",
                "baseline",
                "change_pct",
                "score",
                "threshold",
                "resolved",
            ])?;
            for a in alerts {
                w.write_record([
                    a.channel_id.to_string(),
                    a.rule.to_string(),
                    a.day.to_string(),
                    opt(a.value, 2),
                    opt(a.baseline, 2),
                    opt(a.change_pct, 2),
                    opt(a.score, 2),
                    a.threshold.to_string(),
                    a.resolved.map(|d| d.to_string()).unwrap_or_default(),
                ])?;
            }
            String::from_utf8(w.into_inner()?)?
        }
        OutputFormat::Table => {
            let mut out = format!(
                "{:>12}  {:<15} {:<10} {:>14} {:>14} {:>9} {:>8}  {}\n",
                "channel_id", "rule", "day", "value", "baseline", "change%", "score", "resolved"
            );
            for a in alerts {
                writeln!(
                    out,
                    "{:>12}  {:<15} {:<10} {:>14} {:>14} {:>9} {:>8}  {}",
                    a.channel_id,
                    a.rule.name(),
                    a.day,
                    opt(a.value, 1),
                    opt(a.baseline, 1),
                    opt(a.change_pct, 1),
                    opt(a.score, 1),
                    a.resolved
                        .map_or_else(|| "open".to_owned(), |d| d.to_string())
                )?;
            }
            out
        }
    })
}
