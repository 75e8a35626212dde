//! When reports run: cron expressions (croner, POSIX 5 fields) in the reporting time zone,
//! and the supervised task of `serve` that generates each due report once.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::queue;
use crate::clock::SharedClock;
use crate::domain::DayWindow;
use crate::query::Engine;

/// Weekly or monthly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// The 7 days before the run.
    Weekly,
    /// The calendar month before the run.
    Monthly,
}

impl ReportKind {
    /// As stored in `reports_queue.kind`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }
}

/// When the reports run (`tgpulse serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct ReportConfig {
    /// Cron expression (minute hour day-of-month month day-of-week) of the weekly report, in
    /// the reporting time zone.
    #[arg(
        long = "report-weekly",
        env = "TGPULSE_REPORT_WEEKLY",
        default_value = "0 4 * * MON"
    )]
    pub weekly: String,
    /// Cron expression of the monthly report, in the reporting time zone.
    #[arg(
        long = "report-monthly",
        env = "TGPULSE_REPORT_MONTHLY",
        default_value = "0 5 1 * *"
    )]
    pub monthly: String,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            weekly: "0 4 * * MON".into(),
            monthly: "0 5 1 * *".into(),
        }
    }
}

impl ReportConfig {
    /// Both schedules, parsed.
    ///
    /// errors: the flag and croner's reason.
    pub fn parse(&self) -> Result<Vec<(ReportKind, Cron)>, String> {
        let one = |flag: &str, s: &str| {
            Cron::from_str(s).map_err(|e| format!("{flag} \"{s}\" is not a cron expression: {e}"))
        };
        Ok(vec![
            (ReportKind::Weekly, one("--report-weekly", &self.weekly)?),
            (ReportKind::Monthly, one("--report-monthly", &self.monthly)?),
        ])
    }
}

/// The latest run of `cron` at or before `now`, in `tz` (as UTC); `None` if it never ran in
/// the 400 days before.
pub fn latest_run(cron: &Cron, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&tz);
    let t = cron
        .find_previous_occurrence(&local, true)
        .ok()?
        .with_timezone(&Utc);
    (now.signed_duration_since(t) <= chrono::Duration::days(400)).then_some(t)
}

/// The next run of `cron` strictly after `now`.
pub fn next_run(cron: &Cron, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&tz);
    cron.find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Longest sleep between two looks at the schedules (a clock jump or a new subscriber is
/// seen within it).
const LOOK_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// The body of `serve`'s `reports` task: at start and at every run time, the latest due run
/// of each kind is generated and queued for every subscriber who has no row for its period
/// yet, so a run missed while the service was down is sent when it starts, and a restart
/// never queues one twice.
pub fn task(
    engine: Engine,
    schedules: Vec<(ReportKind, Cron)>,
    clock: SharedClock,
) -> impl FnMut(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send {
    move |token| {
        let (engine, schedules, clock) = (engine.clone(), schedules.clone(), Arc::clone(&clock));
        Box::pin(async move {
            let tz = engine.db().timezone;
            loop {
                let now = clock.now();
                for (kind, cron) in &schedules {
                    let Some(run) = latest_run(cron, tz, now) else {
                        continue;
                    };
                    let run_day = DayWindow::local_day(tz, run);
                    match queue::generate(&engine, *kind, run_day, now).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(kind = kind.name(), %run_day, recipients = n, "report queued")
                        }
                        Err(e) => {
                            tracing::warn!(kind = kind.name(), error = %format!("{e:#}"), "cannot generate a report")
                        }
                    }
                }
                let next = schedules
                    .iter()
                    .filter_map(|(_, c)| next_run(c, tz, now))
                    .min()
                    .unwrap_or(now + LOOK_EVERY)
                    .min(now + LOOK_EVERY);
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = clock.sleep_until(next) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn monday_four_oclock_follows_daylight_saving_in_berlin() {
        let cfg = ReportConfig::default().parse().unwrap();
        let weekly = &cfg[0].1;
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // Winter time: 04:00 CET is 03:00 UTC.
        assert_eq!(
            next_run(weekly, tz, utc("2026-03-20T00:00:00Z")),
            Some(utc("2026-03-23T03:00:00Z"))
        );
        // The clocks went forward on Sunday 29 March: 04:00 CEST is 02:00 UTC.
        assert_eq!(
            next_run(weekly, tz, utc("2026-03-27T00:00:00Z")),
            Some(utc("2026-03-30T02:00:00Z"))
        );
        assert_eq!(
            latest_run(weekly, tz, utc("2026-03-30T01:59:59Z")),
            Some(utc("2026-03-23T03:00:00Z"))
        );
        assert_eq!(
            latest_run(weekly, tz, utc("2026-03-30T02:00:00Z")),
            Some(utc("2026-03-30T02:00:00Z"))
        );
        let monthly = &cfg[1].1;
        assert_eq!(
            next_run(monthly, tz, utc("2026-03-30T00:00:00Z")),
            Some(utc("2026-04-01T03:00:00Z"))
        );
        assert!(
            ReportConfig {
                weekly: "every monday".into(),
                ..ReportConfig::default()
            }
            .parse()
            .unwrap_err()
            .contains("--report-weekly")
        );
    }
}
