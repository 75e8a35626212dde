//! Measuring the rules: one DataFusion plan per rule over all watched channels, for a set of
//! evaluations (one instant for the service, every day of a range for the backtest).
//!
//! Each plan runs in a session with the relations of [`crate::query::RELATIONS`] and four
//! small in-memory tables: `watched(channel_id)`, `calendar(day_no, day_start)` (the local
//! days read, so that a daily bucket gets its local day number by an equality join, exact
//! across daylight-saving changes), `evaluations(day_no, at)` and `offsets(k)` (1..35).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit};
use chrono::{DateTime, Days as ChronoDays, NaiveDate, Utc};
use chrono_tz::Tz;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::Rule;
use crate::domain::{ChannelId, DayWindow};
use crate::query::{
    ALERT_MEMBERS_CHANGE, ALERT_NO_POSTS, ALERT_UNUSUAL_CHANGE, ALERT_VIEWS_DROP, Engine, Error,
    NamedQuery, run_in, ts_param,
};

/// Local days read before the first evaluation by the member rules (28 trailing deltas, and
/// slack for missing days).
pub const MEMBER_LOOKBACK_DAYS: u64 = 35;
/// Publication times read before the first evaluation by no_posts: a channel silent for
/// longer has no cadence left in the window, so its alert resolves.
pub const POST_LOOKBACK_DAYS: i64 = 120;
/// Publication times read before the first evaluation by views_drop: 5 weeks and the 24 h.
pub const REACH_LOOKBACK_DAYS: i64 = 37;

/// One evaluation: a local day and the instant the rules are evaluated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// The local day evaluated (the member rules read that day's row of `members_daily`).
    pub day: NaiveDate,
    /// The instant (no_posts measures the silence up to it; views_drop's weeks end 24 h
    /// before it).
    pub at: DateTime<Utc>,
}

/// One rule measured for one channel at one evaluation, before any threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The channel.
    pub channel: ChannelId,
    /// The rule.
    pub rule: Rule,
    /// The evaluation's local day.
    pub day: NaiveDate,
    /// See [`super::Observation::value`].
    pub value: Option<f64>,
    /// See [`super::Observation::baseline`].
    pub baseline: Option<f64>,
    /// Percent change against the baseline.
    pub change_pct: Option<f64>,
    /// unusual_change: the MAD of the trailing deltas; views_drop: weeks behind the baseline.
    pub aux: Option<f64>,
    /// How much is behind the figure: trailing deltas (unusual_change), gaps (no_posts),
    /// posts of the week (views_drop); 1 for members_change.
    pub support: i64,
}

/// Days since 1970-01-01 of a local date.
pub fn day_no(d: NaiveDate) -> i64 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days()
}

fn from_day_no(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(n)
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn table(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<Arc<MemTable>, Error> {
    let schema = Arc::new(Schema::new(fields));
    let err = |source| Error::Query {
        name: "alert session tables",
        source,
    };
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| {
        err(datafusion::error::DataFusionError::ArrowError(
            Box::new(e),
            None,
        ))
    })?;
    Ok(Arc::new(
        MemTable::try_new(schema, vec![vec![batch]]).map_err(err)?,
    ))
}

/// A session with the relations and the alert tables registered.
async fn session(
    engine: &Engine,
    channels: &[ChannelId],
    evals: &[Evaluation],
    first_day: NaiveDate,
    last_day: NaiveDate,
    tz: Tz,
) -> Result<SessionContext, Error> {
    let ctx = engine.session().await?;
    let mut day_nos = Vec::new();
    let mut starts = Vec::new();
    let mut d = first_day;
    while d <= last_day {
        day_nos.push(day_no(d));
        starts.push(DayWindow::midnight(tz, d).timestamp_micros());
        d = d.succ_opt().expect("a calendar day has a successor");
    }
    let calendar = table(
        vec![
            Field::new("day_no", DataType::Int64, false),
            Field::new("day_start", ts_type(), false),
        ],
        vec![
            Arc::new(Int64Array::from(day_nos)),
            Arc::new(TimestampMicrosecondArray::from(starts).with_timezone("UTC")),
        ],
    )?;
    let evaluations = table(
        vec![
            Field::new("day_no", DataType::Int64, false),
            Field::new("at", ts_type(), false),
        ],
        vec![
            Arc::new(Int64Array::from(
                evals.iter().map(|e| day_no(e.day)).collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(
                    evals
                        .iter()
                        .map(|e| e.at.timestamp_micros())
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ],
    )?;
    let watched = table(
        vec![Field::new("channel_id", DataType::Int64, false)],
        vec![Arc::new(Int64Array::from(
            channels.iter().map(|c| c.get()).collect::<Vec<_>>(),
        ))],
    )?;
    let offsets = table(
        vec![Field::new("k", DataType::Int64, false)],
        vec![Arc::new(Int64Array::from((1..=35).collect::<Vec<i64>>()))],
    )?;
    for (name, t) in [
        ("calendar", calendar),
        ("evaluations", evaluations),
        ("watched", watched),
        ("offsets", offsets),
    ] {
        ctx.register_table(name, t).map_err(|source| Error::Query {
            name: "alert session tables",
            source,
        })?;
    }
    Ok(ctx)
}

/// The named query of a channel rule.
pub fn query_of(rule: Rule) -> Option<NamedQuery> {
    match rule {
        Rule::MembersChange => Some(ALERT_MEMBERS_CHANGE),
        Rule::UnusualChange => Some(ALERT_UNUSUAL_CHANGE),
        Rule::NoPosts => Some(ALERT_NO_POSTS),
        Rule::ViewsDrop => Some(ALERT_VIEWS_DROP),
        Rule::SourceStale => None,
    }
}

/// Measures `rules` for `channels` at every evaluation of `evals` (sorted by day), one plan
/// per rule, the plans running concurrently.
///
/// errors: `Error::Query` naming the rule's query if it fails; `Error::Shape` if it returns
/// columns of another type.
pub async fn measure(
    engine: &Engine,
    channels: &[ChannelId],
    evals: &[Evaluation],
    rules: &[Rule],
) -> Result<Vec<Metric>, Error> {
    let (Some(first), Some(last)) = (evals.first(), evals.last()) else {
        return Ok(Vec::new());
    };
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let tz = engine.db().timezone;
    let first_day = first
        .day
        .checked_sub_days(ChronoDays::new(MEMBER_LOOKBACK_DAYS))
        .unwrap_or(first.day);
    let ctx = session(engine, channels, evals, first_day, last.day, tz).await?;
    let day_range = vec![
        ts_param(DayWindow::midnight(tz, first_day)),
        ts_param(DayWindow::midnight(
            tz,
            last.day.succ_opt().unwrap_or(last.day),
        )),
    ];
    let latest_at = evals.iter().map(|e| e.at).max().unwrap_or(last.at);
    let earliest_at = evals.iter().map(|e| e.at).min().unwrap_or(first.at);
    let posts_range = |days: i64| {
        vec![
            ts_param(earliest_at - chrono::Duration::days(days)),
            ts_param(latest_at),
        ]
    };
    let runs = rules.iter().filter_map(|&rule| {
        let q = query_of(rule)?;
        let params = match rule {
            Rule::MembersChange | Rule::UnusualChange => day_range.clone(),
            Rule::NoPosts => posts_range(POST_LOOKBACK_DAYS),
            _ => posts_range(REACH_LOOKBACK_DAYS),
        };
        let ctx = ctx.clone();
        Some(async move {
            let batches = run_in(&ctx, q, params).await?;
            read(rule, q, &batches)
        })
    });
    let all = futures::future::try_join_all(runs).await?;
    Ok(all.into_iter().flatten().collect())
}

fn read(rule: Rule, q: NamedQuery, batches: &[RecordBatch]) -> Result<Vec<Metric>, Error> {
    let shape = || Error::Shape(q.name);
    let mut out = Vec::new();
    for b in batches {
        let int = |name: &str| -> Result<Option<&Int64Array>, Error> {
            match b.column_by_name(name) {
                None => Ok(None),
                Some(c) => c
                    .as_primitive_opt::<Int64Type>()
                    .map(Some)
                    .ok_or_else(shape),
            }
        };
        let float = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Float64Type>())
                .ok_or_else(shape)
        };
        let channel = int("channel_id")?.ok_or_else(shape)?;
        let day = int("day_no")?.ok_or_else(shape)?;
        let (value, baseline, pct) = (float("value")?, float("baseline")?, float("change_pct")?);
        let aux = match rule {
            Rule::UnusualChange => Some(float("mad")?),
            _ => None,
        };
        let weeks = int("weeks")?;
        let support = match rule {
            Rule::UnusualChange => int("history")?,
            Rule::NoPosts => int("gaps")?,
            Rule::ViewsDrop => int("posts")?,
            _ => None,
        };
        let opt = |a: &arrow::array::Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        for i in 0..b.num_rows() {
            let Ok(id) = ChannelId::new(channel.value(i)) else {
                continue;
            };
            out.push(Metric {
                channel: id,
                rule,
                day: from_day_no(day.value(i)),
                value: opt(value, i),
                baseline: opt(baseline, i),
                change_pct: opt(pct, i),
                aux: match (aux, weeks) {
                    (Some(a), _) => opt(a, i),
                    (None, Some(w)) => w.is_valid(i).then(|| w.value(i) as f64),
                    _ => None,
                },
                support: support.map_or(1, |s| if s.is_valid(i) { s.value(i) } else { 0 }),
            });
        }
    }
    Ok(out)
}

/// Keeps, per (channel, rule), the measurement of the latest day: the service evaluates
/// yesterday and today, and today wins where it has data.
pub fn latest(metrics: Vec<Metric>) -> Vec<Metric> {
    let mut best: HashMap<(ChannelId, Rule), Metric> = HashMap::new();
    for m in metrics {
        match best.get(&(m.channel, m.rule)) {
            Some(b) if b.day >= m.day => {}
            _ => {
                best.insert((m.channel, m.rule), m);
            }
        }
    }
    let mut out: Vec<Metric> = best.into_values().collect();
    out.sort_by_key(|m| (m.channel, m.rule));
    out
}
