//! One live evaluation ([`evaluate`], used by `tgpulse alerts check` and by `serve`) and the
//! supervised task of `serve` that runs it every `--alert-every` on the service's clock.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::rules::{Evaluation, latest, measure};
use super::store::{self, Applied};
use super::{AlertConfig, Observation, Rule, Subject, judge};
use crate::clock::{SharedClock, chrono_duration};
use crate::collect::Collector;
use crate::db::Db;
use crate::domain::{ChannelId, DayWindow};
use crate::query::Engine;

/// Who and what the service's alert task serves.
#[derive(Debug, Clone)]
pub struct AlertSetup {
    /// Default thresholds and the evaluation interval.
    pub cfg: AlertConfig,
    /// The bot's admins (told of every event unless they turned alerts off).
    pub admins: Vec<u64>,
    /// An evaluation sooner than this after the last one applied by any process is skipped
    /// (half of `cfg.every` in `serve`, so two processes do not count twice; zero for
    /// `tgpulse alerts check --notify`).
    pub min_gap: std::time::Duration,
}

/// One evaluation's observations, fired or not.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluated {
    /// When.
    pub at: DateTime<Utc>,
    /// Every rule judged for every subject.
    pub observations: Vec<Observation>,
    /// The rules evaluated.
    pub rules: Vec<Rule>,
}

impl Evaluated {
    /// The observations whose condition holds.
    pub fn firing(&self) -> impl Iterator<Item = &Observation> {
        self.observations.iter().filter(|o| o.fired)
    }
}

/// The watched channels' ids (every shard's: the alert task is not sharded).
///
/// errors: the catalog's.
pub async fn watched_ids(db: &Db) -> anyhow::Result<Vec<ChannelId>> {
    let targets = crate::catalog::targets(db, crate::catalog::Shard::default())
        .await
        .context("failed to read the watched channels")?;
    Ok(targets.into_iter().map(|t| t.channel_id).collect())
}

/// Measures and judges the channel rules for `channels` at `at`: members rules on the latest
/// local day with data among yesterday and today, no_posts and views_drop at the instant.
///
/// errors: a rule's query failing, or `alert_rules` unreadable.
pub async fn evaluate(
    engine: &Engine,
    cfg: &AlertConfig,
    channels: &[ChannelId],
    at: DateTime<Utc>,
) -> anyhow::Result<Evaluated> {
    let settings = store::settings(engine.db(), cfg).await?;
    let today = DayWindow::local_day(engine.db().timezone, at);
    let evals: Vec<Evaluation> = [today.pred_opt().unwrap_or(today), today]
        .into_iter()
        .map(|day| Evaluation { day, at })
        .collect();
    let metrics = measure(engine, channels, &evals, &Rule::CHANNEL_RULES)
        .await
        .context("failed to measure the alert rules")?;
    let observations = latest(metrics)
        .iter()
        .filter_map(|m| judge(m, &settings))
        .collect();
    Ok(Evaluated {
        at,
        observations,
        rules: Rule::CHANNEL_RULES.to_vec(),
    })
}

/// source_stale for each running source with a schedule: fired when its last success (the
/// later of this process's and the one stored in `source_status`; before any, the service's
/// start) is older than 3 members intervals. An open circuit
/// breaker means no success, so it shows here too. The writer's failures are the database's,
/// and alerts live in that database: an outage is for `/readyz` and the metrics.
pub fn stale_sources(
    sources: &[Arc<dyn Collector>],
    stored: &HashMap<String, DateTime<Utc>>,
    started_at: DateTime<Utc>,
    at: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Vec<Observation> {
    let intervals = crate::app::ops::STALE_INTERVALS;
    sources
        .iter()
        .filter_map(|s| {
            let every = s.members_every()?;
            // The last success any process recorded survives a restart; before any, the
            // service's start.
            let since = s
                .last_success()
                .max(stored.get(s.name()).copied())
                .unwrap_or(started_at);
            let limit = chrono_duration(every * intervals);
            let silent = at - since;
            let hours = silent.num_seconds() as f64 / 3600.0;
            let limit_h = limit.num_seconds() as f64 / 3600.0;
            Some(Observation {
                subject: Subject::Service(format!("source:{}", s.name())),
                rule: Rule::SourceStale,
                day: DayWindow::local_day(tz, at),
                value: Some(hours),
                baseline: Some(limit_h),
                change_pct: None,
                score: None,
                threshold: f64::from(intervals),
                fired: silent > limit,
                detail: format!(
                    "source {} has not succeeded for {hours:.1} h (limit {limit_h:.1} h: {intervals} × its members interval)",
                    s.name()
                ),
            })
        })
        .collect()
}

/// The running service, for source_stale: its sources and when it started.
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    /// The running sources.
    pub sources: &'a [Arc<dyn Collector>],
    /// When the service started (the grace before a source's first success).
    pub started_at: DateTime<Utc>,
}

/// Each source's last success as stored by the collectors (`source_status`).
async fn stored_successes(db: &Db) -> anyhow::Result<HashMap<String, DateTime<Utc>>> {
    let client = db.pool.get().await?;
    let rows = client
        .query(
            "SELECT source, last_success FROM source_status WHERE last_success IS NOT NULL",
            &[],
        )
        .await
        .context("failed to read the sources' last successes")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Evaluates the watched channels (and the sources, when given) at `at` and applies the
/// result to `alert_events`, queuing deliveries for the recipients.
///
/// errors: a rule's query or the store failing; nothing is applied then.
pub async fn evaluate_and_apply(
    engine: &Engine,
    setup: &AlertSetup,
    at: DateTime<Utc>,
    service: Option<Service<'_>>,
) -> anyhow::Result<(Evaluated, Applied)> {
    let db = engine.db();
    let channels = watched_ids(db).await?;
    let mut evaluated = evaluate(engine, &setup.cfg, &channels, at).await?;
    let mut sources = Vec::new();
    if let Some(s) = service {
        let stored = stored_successes(db).await?;
        evaluated.observations.extend(stale_sources(
            s.sources,
            &stored,
            s.started_at,
            at,
            db.timezone,
        ));
        evaluated.rules.push(Rule::SourceStale);
        sources = s
            .sources
            .iter()
            .map(|s| format!("source:{}", s.name()))
            .collect();
    }
    let recipients = store::recipients(db, &setup.admins).await?;
    let round = store::Round {
        at,
        rules: &evaluated.rules,
        recipients: &recipients,
        min_gap: chrono_duration(setup.min_gap),
        sources: &sources,
    };
    let applied = store::apply(db, &evaluated.observations, round)
        .await
        .context("failed to store the alert evaluation")?;
    metrics::counter!("tgpulse_alert_evaluations_total").increment(1);
    metrics::counter!("tgpulse_alerts_opened_total").increment(applied.opened.len() as u64);
    Ok((evaluated, applied))
}

/// The body of `serve`'s `alerts` task: evaluate at once, then every `setup.cfg.every` on
/// `clock`, until `token` is cancelled. A failed evaluation is logged and retried at the next
/// tick (the task itself never fails on one).
pub fn task(
    engine: Engine,
    setup: AlertSetup,
    sources: Vec<Arc<dyn Collector>>,
    started_at: DateTime<Utc>,
    clock: SharedClock,
) -> impl FnMut(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send {
    move |token| {
        let (engine, setup, sources, clock) = (
            engine.clone(),
            setup.clone(),
            sources.clone(),
            Arc::clone(&clock),
        );
        Box::pin(async move {
            loop {
                let at = clock.now();
                let started = std::time::Instant::now();
                match evaluate_and_apply(
                    &engine,
                    &setup,
                    at,
                    Some(Service {
                        sources: &sources,
                        started_at,
                    }),
                )
                .await
                {
                    Ok((e, a)) => tracing::info!(
                        observations = e.observations.len(),
                        firing = e.firing().count(),
                        opened = a.opened.len(),
                        resolved = a.resolved,
                        ms = started.elapsed().as_millis() as u64,
                        "alert evaluation"
                    ),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "alert evaluation failed"),
                }
                let next = at + chrono_duration(setup.cfg.every);
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = clock.sleep_until(next) => {}
                }
            }
        })
    }
}
