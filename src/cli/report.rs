//! `tgpulse report weekly|monthly`: the scheduled report written offline, without the bot.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{Datelike, NaiveDate, Utc};

use super::{Cli, open_interactive};
use crate::domain::DayWindow;
use crate::i18n::Lang;
use crate::query::Engine;
use crate::report::schedule::latest_run;
use crate::report::{self, ReportConfig, ReportKind};

#[derive(Debug, clap::Args)]
pub(super) struct ReportArgs {
    /// weekly (Monday to Sunday) or monthly (a calendar month).
    kind: ReportKind,
    /// A day inside the period to report. Default: the period of the latest scheduled run
    /// (what `serve` sent last).
    #[arg(long)]
    period: Option<NaiveDate>,
    /// FILE.md for the report as Markdown, FILE.png for its chart (indexed growth of the 10
    /// largest channels). Default: the Markdown on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    schedule: ReportConfig,
}

/// The day a report of the period holding `day` runs: the Monday after its week, or the 1st
/// of the next month.
fn run_day(kind: ReportKind, day: NaiveDate) -> NaiveDate {
    match kind {
        ReportKind::Weekly => {
            day + chrono::Duration::days(7 - i64::from(day.weekday().num_days_from_monday()))
        }
        ReportKind::Monthly => {
            let (y, m) = if day.month() == 12 {
                (day.year() + 1, 1)
            } else {
                (day.year(), day.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(day)
        }
    }
}

pub(super) async fn report_cmd(cli: &Cli, a: &ReportArgs) -> Result<()> {
    let schedules = a.schedule.parse().map_err(anyhow::Error::msg)?;
    let db = open_interactive(cli).await?;
    let tz = db.timezone;
    let run = match a.period {
        Some(day) => run_day(a.kind, day),
        None => {
            let cron = &schedules
                .iter()
                .find(|(k, _)| *k == a.kind)
                .context("no schedule for this kind")?
                .1;
            let t = latest_run(cron, tz, Utc::now()).context("the schedule never ran")?;
            DayWindow::local_day(tz, t)
        }
    };
    let (first, last) = report::period(a.kind, run);
    let engine = Engine::new(db);
    let r = report::build(&engine, a.kind, first, last).await?;
    match &a.out {
        None => print!("{}", report::markdown(&r)),
        Some(p) if p.extension().is_some_and(|e| e == "png") => {
            let Some(png) = report::chart(&engine, &r, Lang::En).await? else {
                bail!("the chart needs at least 2 watched channels with data");
            };
            std::fs::write(p, png).with_context(|| format!("cannot write {}", p.display()))?;
            println!("wrote {}", p.display());
        }
        Some(p) => {
            std::fs::write(p, report::markdown(&r))
                .with_context(|| format!("cannot write {}", p.display()))?;
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_names_its_week_and_month() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            run_day(ReportKind::Weekly, d("2026-03-25")),
            d("2026-03-30")
        );
        assert_eq!(
            run_day(ReportKind::Weekly, d("2026-03-29")),
            d("2026-03-30")
        );
        assert_eq!(
            run_day(ReportKind::Weekly, d("2026-03-30")),
            d("2026-04-06")
        );
        assert_eq!(
            run_day(ReportKind::Monthly, d("2025-12-31")),
            d("2026-01-01")
        );
    }
}
