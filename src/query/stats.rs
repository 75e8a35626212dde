//! Channel statistics and comparisons over a window of local days.
//!
//! Formulas (see README "Metrics"):
//! - members: last sample of the local day (`members_daily.members`);
//! - delta of a day: members − members of the previous day with data;
//! - window delta: members on the last day with data in the window − baseline, where the
//!   baseline is the last day with data before the window (else the first day in it);
//! - growth %: window delta / baseline × 100;
//! - mean daily growth: window delta / days between the baseline day and the last day;
//! - average post reach: Σ views / Σ posts of the posts published in the window;
//! - ERR %: average post reach / members × 100 (TGStat's definition);
//! - indexed growth: members / baseline × 100 (100 at the window start).

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use datafusion::common::ScalarValue;
use futures::future::try_join_all;
use serde::Serialize;

use super::{
    CHANNEL_DAYS, CHANNEL_LAST_DAY, CHANNEL_REACH, Channel, Engine, Error, LARGEST_CHANNELS,
    NamedQuery, ts_param,
};
use crate::domain::{ChannelId, DayWindow, Days};

/// One local day of a channel's series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayPoint {
    /// Local day in the reporting time zone.
    pub day: NaiveDate,
    /// Subscribers: last sample of the day.
    pub members: i64,
    /// Members − members of the previous day with data; `None` without an earlier day.
    pub delta: Option<i64>,
    /// members / baseline × 100.
    pub index: Option<f64>,
}

/// Statistics of one channel over a window. Missing data is `None`, never 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelStats {
    /// The channel.
    pub channel: Channel,
    /// First local day of the window.
    pub first_day: NaiveDate,
    /// Last local day of the window.
    pub last_day: NaiveDate,
    /// Reporting time zone.
    pub timezone: String,
    /// Subscribers on the last day with data in the window.
    pub members: Option<i64>,
    /// Baseline day and its members (last day with data before the window, else first in it).
    pub baseline: Option<(NaiveDate, i64)>,
    /// members − baseline members.
    pub delta: Option<i64>,
    /// delta / baseline × 100, percent.
    pub growth_pct: Option<f64>,
    /// delta / days between baseline and last day with data, subscribers per day.
    pub mean_daily_growth: Option<f64>,
    /// Day with the largest delta, and the delta.
    pub best_day: Option<(NaiveDate, i64)>,
    /// Day with the smallest delta, and the delta.
    pub worst_day: Option<(NaiveDate, i64)>,
    /// Days in the window with a member sample.
    pub days_with_data: i64,
    /// Runs of days without a member sample, `(first, last)` inclusive.
    pub missing_days: Vec<(NaiveDate, NaiveDate)>,
    /// Posts published in the window (with a view sample).
    pub posts: Option<i64>,
    /// Mean views of those posts (post reach).
    pub avg_post_reach: Option<f64>,
    /// ERR, percent: avg_post_reach / members × 100 (TGStat's definition).
    pub err_pct: Option<f64>,
    /// Reach at 12/24/48 h, ERR at 24 h and posting frequency over the window.
    pub post: super::PostMetrics,
    /// Newest sample time of the channel.
    pub last_observed_at: Option<DateTime<Utc>>,
    /// The days in the window with data.
    pub series: Vec<DayPoint>,
}

impl ChannelStats {
    /// Local days in the window, both ends included.
    pub fn window_days(&self) -> i64 {
        (self.last_day - self.first_day).num_days() + 1
    }

    /// Total missing days in the window.
    pub fn missing_day_count(&self) -> i64 {
        self.missing_days
            .iter()
            .map(|(a, b)| (*b - *a).num_days() + 1)
            .sum()
    }
}

/// Several channels over one common window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Per channel, in the order asked.
    pub channels: Vec<ChannelStats>,
}

fn micros_to_utc(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn shape(q: NamedQuery) -> Error {
    Error::Shape(q.name)
}

/// The last local day with member data of a channel (reporting time zone) and its newest
/// member sample time; `(None, None)` without samples. PostgreSQL runs the lookup itself
/// (`queries/channel_last_day.sql`, two index lookups).
///
/// errors: `Error::Db` if the lookup fails; `Error::Pool` without a connection.
pub async fn last_day(
    engine: &Engine,
    id: ChannelId,
) -> Result<(Option<NaiveDate>, Option<DateTime<Utc>>), Error> {
    let tz = engine.db().timezone;
    let db = |source| Error::Db {
        step: "find the channel's last day with data",
        source,
    };
    let client = engine.db().pool.get().await?;
    let statement = client
        .prepare_cached(CHANNEL_LAST_DAY.sql)
        .await
        .map_err(db)?;
    let row = client
        .query_one(&statement, &[&id.get()])
        .await
        .map_err(db)?;
    let bucket: Option<DateTime<Utc>> = row.get(0);
    let observed: Option<DateTime<Utc>> = row.get(1);
    Ok((bucket.map(|t| DayWindow::local_day(tz, t)), observed))
}

/// Statistics of one channel over `days` local days ending with `until` (default: the
/// channel's last day with data, so historical data gives a useful answer).
///
/// errors: `Error::NoData` if the channel has no samples; `Error::Query` if a query fails.
pub async fn stats(
    engine: &Engine,
    channel: &Channel,
    days: Days,
    until: Option<NaiveDate>,
) -> Result<ChannelStats, Error> {
    let (last, last_observed_at) = last_day(engine, channel.id).await?;
    let end = until
        .or(last)
        .ok_or_else(|| Error::NoData(channel.label()))?;
    let window = DayWindow::ending(end, days, engine.db().timezone);
    let mut s = stats_in(engine, channel, window).await?;
    s.last_observed_at = last_observed_at;
    Ok(s)
}

async fn stats_in(
    engine: &Engine,
    channel: &Channel,
    window: DayWindow,
) -> Result<ChannelStats, Error> {
    let tz = window.tz;
    let params = || {
        vec![
            ScalarValue::Int64(Some(channel.id.get())),
            ts_param(window.start()),
            ts_param(window.end()),
        ]
    };
    let (days, reach, counter) = futures::try_join!(
        engine.run(CHANNEL_DAYS, params()),
        engine.run(CHANNEL_REACH, params()),
        engine.run(super::POST_COUNT_FREQUENCY, params()),
    )?;

    let mut baseline: Option<(NaiveDate, i64)> = None;
    let mut series: Vec<DayPoint> = Vec::new();
    for b in &days {
        read_days(b, tz, &mut baseline, &mut series)?;
    }
    if baseline.is_none() {
        baseline = series.first().map(|p| (p.day, p.members));
    }
    for p in &mut series {
        p.index = baseline.and_then(|(_, m)| (m != 0).then(|| p.members as f64 / m as f64 * 100.0));
    }
    let now = series.last().map(|p| (p.day, p.members));
    let delta = match (now, baseline) {
        (Some((_, m)), Some((_, b))) => Some(m - b),
        _ => None,
    };
    let growth_pct = match (delta, baseline) {
        (Some(d), Some((_, b))) if b != 0 => Some(d as f64 / b as f64 * 100.0),
        _ => None,
    };
    let mean_daily_growth = match (delta, now, baseline) {
        (Some(d), Some((nd, _)), Some((bd, _))) if nd > bd => {
            Some(d as f64 / (nd - bd).num_days() as f64)
        }
        _ => None,
    };
    let with_delta = series.iter().filter_map(|p| p.delta.map(|d| (p.day, d)));
    let best_day = with_delta
        .clone()
        .max_by_key(|(day, d)| (*d, std::cmp::Reverse(*day)));
    let worst_day = with_delta.min_by_key(|(day, d)| (*d, *day));

    let (posts, views) = read_reach(&reach)?;
    // The post queries run only for a window with sampled posts.
    let sampled = posts.is_some_and(|p| p > 0);
    let post =
        super::posts_run::post_metrics_given(engine, channel, window, sampled, &counter).await?;
    let avg_post_reach = match (posts, views) {
        (Some(p), Some(v)) if p > 0 => Some(v as f64 / p as f64),
        _ => None,
    };
    let members = now.map(|(_, m)| m);
    let err_pct = match (avg_post_reach, members) {
        (Some(r), Some(m)) if m > 0 => Some(r / m as f64 * 100.0),
        _ => None,
    };
    Ok(ChannelStats {
        channel: channel.clone(),
        first_day: window.first,
        last_day: window.last,
        timezone: tz.name().to_owned(),
        members,
        baseline,
        delta,
        growth_pct,
        mean_daily_growth,
        best_day,
        worst_day,
        days_with_data: series.len() as i64,
        missing_days: missing_runs(window, &series),
        posts: posts.filter(|p| *p > 0),
        avg_post_reach,
        err_pct,
        post,
        last_observed_at: None,
        series,
    })
}

fn read_days(
    b: &RecordBatch,
    tz: Tz,
    baseline: &mut Option<(NaiveDate, i64)>,
    series: &mut Vec<DayPoint>,
) -> Result<(), Error> {
    let err = || shape(CHANNEL_DAYS);
    let bucket = b
        .column(0)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(err)?;
    let members = b
        .column(1)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(err)?;
    let delta = b
        .column(2)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(err)?;
    let inside: &BooleanArray = b.column(3).as_boolean_opt().ok_or_else(err)?;
    for i in 0..b.num_rows() {
        let day = DayWindow::local_day(tz, micros_to_utc(bucket.value(i)));
        if !inside.value(i) {
            *baseline = Some((day, members.value(i)));
            continue;
        }
        series.push(DayPoint {
            day,
            members: members.value(i),
            delta: delta.is_valid(i).then(|| delta.value(i)),
            index: None,
        });
    }
    Ok(())
}

fn read_reach(batches: &[RecordBatch]) -> Result<(Option<i64>, Option<i64>), Error> {
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok((None, None));
    };
    let col = |i: usize| -> Result<Option<i64>, Error> {
        let a = b
            .column(i)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| shape(CHANNEL_REACH))?;
        Ok(a.is_valid(0).then(|| a.value(0)))
    };
    Ok((col(0)?, col(1)?))
}

fn missing_runs(window: DayWindow, series: &[DayPoint]) -> Vec<(NaiveDate, NaiveDate)> {
    let mut runs = Vec::new();
    let mut expected = window.first;
    let mut push_gap = |from: NaiveDate, to: NaiveDate| {
        if from <= to {
            runs.push((from, to));
        }
    };
    for p in series {
        if p.day > expected {
            push_gap(expected, p.day.pred_opt().unwrap_or(p.day));
        }
        expected = p.day.succ_opt().unwrap_or(p.day);
    }
    if expected <= window.last {
        push_gap(expected, window.last);
    }
    runs
}

/// The same statistics for several channels over one common window ending with `until`
/// (default: the latest last-day-with-data among them), with indexed growth.
///
/// errors: as [`stats`]; `Error::NoData` if none of the channels has data.
pub async fn compare(
    engine: &Engine,
    channels: &[Channel],
    days: Days,
    until: Option<NaiveDate>,
) -> Result<Comparison, Error> {
    // Channels are independent: their queries run concurrently on the pool.
    let lasts = try_join_all(channels.iter().map(|c| last_day(engine, c.id))).await?;
    let end = until
        .or_else(|| lasts.iter().filter_map(|l| l.0).max())
        .ok_or_else(|| {
            Error::NoData(
                channels
                    .iter()
                    .map(Channel::label)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let window = DayWindow::ending(end, days, engine.db().timezone);
    let out = try_join_all(
        channels
            .iter()
            .zip(lasts)
            .map(|(c, (_, observed))| async move {
                let mut s = stats_in(engine, c, window).await?;
                s.last_observed_at = observed;
                Ok::<_, Error>(s)
            }),
    )
    .await?;
    Ok(Comparison { channels: out })
}

/// Channel ids ranked by members on their last day with data, largest first, at most `n`.
///
/// errors: `Error::Query` if the query fails.
pub async fn largest_channels(engine: &Engine, n: usize) -> Result<Vec<(ChannelId, i64)>, Error> {
    let batches = engine.run(LARGEST_CHANNELS, vec![]).await?;
    let mut out = Vec::new();
    for b in &batches {
        let ids = b
            .column(0)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| shape(LARGEST_CHANNELS))?;
        let members = b
            .column(1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| shape(LARGEST_CHANNELS))?;
        for i in 0..b.num_rows() {
            if let Ok(id) = ChannelId::new(ids.value(i)) {
                out.push((id, members.value(i)));
            }
        }
    }
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_days_are_reported_as_runs() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let w = DayWindow {
            first: d("2021-07-01"),
            last: d("2021-07-10"),
            tz: Tz::UTC,
        };
        let p = |s: &str| DayPoint {
            day: d(s),
            members: 1,
            delta: None,
            index: None,
        };
        let series = vec![p("2021-07-02"), p("2021-07-03"), p("2021-07-07")];
        assert_eq!(
            missing_runs(w, &series),
            vec![
                (d("2021-07-01"), d("2021-07-01")),
                (d("2021-07-04"), d("2021-07-06")),
                (d("2021-07-08"), d("2021-07-10"))
            ]
        );
        assert_eq!(
            missing_runs(w, &[]),
            vec![(d("2021-07-01"), d("2021-07-10"))]
        );
    }
}
