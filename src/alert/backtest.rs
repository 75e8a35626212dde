//! `tgpulse alerts backtest`: the rules replayed day by day over the stored history, with the
//! service's open/resolve logic ([`super::lifecycle`]), to tune thresholds and to check the
//! rules on real data. Day D is evaluated at the end of D (local midnight after it); the
//! measurements of every day come from one plan per rule.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use super::lifecycle::{Step, step};
use super::rules::{Evaluation, measure};
use super::{Rule, Settings, judge};
use crate::domain::{ChannelId, DayWindow};
use crate::query::{Engine, Error};

/// Longest backtest range, in days.
pub const MAX_DAYS: i64 = 3660;
/// Days measured by one set of plans.
const CHUNK_DAYS: usize = 366;

/// An alert the backtest opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestAlert {
    /// The channel.
    pub channel_id: i64,
    /// The rule.
    pub rule: Rule,
    /// Local day it opened.
    pub day: NaiveDate,
    /// The measured value (see [`super::Observation::value`]).
    pub value: Option<f64>,
    /// What it was compared with.
    pub baseline: Option<f64>,
    /// Percent change against the baseline.
    pub change_pct: Option<f64>,
    /// Robust z (unusual_change) or silence limit in hours (no_posts).
    pub score: Option<f64>,
    /// Threshold applied.
    pub threshold: f64,
    /// Local day it resolved (after 2 clear days); `None` if still open at the end.
    pub resolved: Option<NaiveDate>,
}

/// The alerts that would have opened between `from` and `to` (inclusive local days) for
/// `channels`, with `rules`, in order of day, channel and rule.
///
/// errors: `Error::Query` if a rule's plan fails; a range over [`MAX_DAYS`] or reversed is
/// refused as `Error::Shape("backtest range")`.
pub async fn backtest(
    engine: &Engine,
    settings: &Settings,
    channels: &[ChannelId],
    rules: &[Rule],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<BacktestAlert>, Error> {
    let days = (to - from).num_days();
    if !(0..MAX_DAYS).contains(&days) {
        return Err(Error::Shape("backtest range"));
    }
    let tz = engine.db().timezone;
    let evals: Vec<Evaluation> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|day| Evaluation {
            day,
            at: DayWindow::midnight(tz, day.succ_opt().unwrap_or(day)),
        })
        .collect();
    // A year of evaluations per set of plans bounds the memory of unusual_change's 28-day
    // expansion (about 2.7 GB for the real file's 5.5 years in one go).
    let mut metrics = Vec::new();
    for chunk in evals.chunks(CHUNK_DAYS) {
        metrics.extend(measure(engine, channels, chunk, rules).await?);
    }
    // Per (channel, rule): the day's observation.
    let mut by_key: BTreeMap<(ChannelId, Rule), HashMap<NaiveDate, super::Observation>> =
        BTreeMap::new();
    for m in &metrics {
        if let Some(o) = judge(m, settings) {
            by_key
                .entry((m.channel, m.rule))
                .or_default()
                .insert(m.day, o);
        }
    }
    let mut out = Vec::new();
    for ((channel, rule), days) in by_key {
        let mut open: Option<(u32, usize)> = None;
        for e in &evals {
            let o = days.get(&e.day);
            let fired = o.is_some_and(|o| o.fired);
            match step(open.map(|(c, _)| c), fired) {
                Step::Open => {
                    let o = o.expect("fired implies an observation");
                    out.push(BacktestAlert {
                        channel_id: channel.get(),
                        rule,
                        day: e.day,
                        value: o.value,
                        baseline: o.baseline,
                        change_pct: o.change_pct,
                        score: o.score,
                        threshold: o.threshold,
                        resolved: None,
                    });
                    open = Some((0, out.len() - 1));
                }
                Step::Hold => open = open.map(|(_, i)| (0, i)),
                Step::Clearing(c) => open = open.map(|(_, i)| (c, i)),
                Step::Resolve => {
                    if let Some((_, i)) = open.take() {
                        out[i].resolved = Some(e.day);
                    }
                }
                Step::Quiet => {}
            }
        }
    }
    out.sort_by_key(|a| (a.day, a.channel_id, a.rule));
    Ok(out)
}
