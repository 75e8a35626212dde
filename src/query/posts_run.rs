//! Running the post analytics' named queries and reading their results into
//! [`super::posts`] and [`super::mentions`] types.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::common::ScalarValue;

use super::mentions::{MentionDay, MentionReport, Peer};
use super::posts::{
    Frequency, FrequencyBasis, HEATMAP_MIN_POSTS, HeatCell, Heatmap, PostMetrics, ReachBasis,
    TopPost, TopPosts, ViewsDay, ViewsTrend,
};
use super::{
    CHANNEL_LAST_POST_DAY, CHANNEL_POST_REACH, Channel, Engine, Error, MENTION_DAYS,
    MENTIONS_INCOMING, MENTIONS_OUTGOING, NamedQuery, POST_COUNT_FREQUENCY, POST_HEATMAP,
    POSTING_FREQUENCY, TOP_POSTS, VIEWS_TREND, ts_param,
};
use crate::domain::{ChannelId, DayWindow, Days};

/// Column readers over one result batch; a missing column or another type is
/// `Error::Shape` naming the query (a bug in `queries/`).
struct Cols<'a> {
    b: &'a RecordBatch,
    q: NamedQuery,
}

impl<'a> Cols<'a> {
    fn col(&self, name: &str) -> Result<&'a dyn Array, Error> {
        self.b
            .column_by_name(name)
            .map(|a| a.as_ref())
            .ok_or(Error::Shape(self.q.name))
    }

    fn i64(&self, name: &str, i: usize) -> Result<Option<i64>, Error> {
        let a = self
            .col(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or(Error::Shape(self.q.name))?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    }

    fn f64(&self, name: &str, i: usize) -> Result<Option<f64>, Error> {
        let a = self
            .col(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or(Error::Shape(self.q.name))?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    }

    /// Microseconds of a timestamp column (with or without zone).
    fn micros(&self, name: &str, i: usize) -> Result<Option<i64>, Error> {
        let a = self
            .col(name)?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or(Error::Shape(self.q.name))?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    }

    fn instant(&self, name: &str, i: usize) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(self
            .micros(name, i)?
            .and_then(DateTime::from_timestamp_micros))
    }

    fn text(&self, name: &str, i: usize) -> Result<Option<String>, Error> {
        let a = self.col(name)?;
        let s = match a.data_type() {
            arrow::datatypes::DataType::Utf8 => a.as_string::<i32>().value(i).to_owned(),
            arrow::datatypes::DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_owned(),
            arrow::datatypes::DataType::Utf8View => a.as_string_view().value(i).to_owned(),
            _ => return Err(Error::Shape(self.q.name)),
        };
        Ok(a.is_valid(i).then_some(s))
    }
}

/// Every row of a result, as `(columns, row index)`.
fn rows(batches: &[RecordBatch], q: NamedQuery) -> impl Iterator<Item = (Cols<'_>, usize)> {
    batches
        .iter()
        .flat_map(move |b| (0..b.num_rows()).map(move |i| (Cols { b, q }, i)))
}

fn window_params(id: ChannelId, w: DayWindow) -> Vec<ScalarValue> {
    vec![
        ScalarValue::Int64(Some(id.get())),
        ts_param(w.start()),
        ts_param(w.end()),
    ]
}

/// The window of `days` local days ending with `until`, by default the channel's last day
/// with a post sample.
///
/// errors: `Error::NoData` if the channel has no post samples and no `until` was given.
async fn post_window(
    engine: &Engine,
    channel: &Channel,
    days: Days,
    until: Option<NaiveDate>,
) -> Result<DayWindow, Error> {
    let tz = engine.db().timezone;
    let end = match until {
        Some(d) => d,
        None => {
            let q = CHANNEL_LAST_POST_DAY;
            let b = engine
                .run(q, vec![ScalarValue::Int64(Some(channel.id.get()))])
                .await?;
            rows(&b, q)
                .next()
                .map(|(c, i)| c.instant("last_bucket", i))
                .transpose()?
                .flatten()
                .map(|t| DayWindow::local_day(tz, t))
                .ok_or_else(|| Error::NoData(channel.label()))?
        }
    };
    Ok(DayWindow::ending(end, days, tz))
}

/// Reach at 12/24/48 h, ERR at 24 h and posting frequency of one channel over a window (the
/// post part of `stats`). Missing data is `None`, never 0.
///
/// errors: `Error::Query` if a query fails; `Error::Shape` on an unexpected result.
pub async fn post_metrics(
    engine: &Engine,
    channel: &Channel,
    window: DayWindow,
) -> Result<PostMetrics, Error> {
    let (counter, mut out) = futures::try_join!(
        engine.run(POST_COUNT_FREQUENCY, window_params(channel.id, window)),
        sampled_post_metrics(engine, channel, window),
    )?;
    if out.frequency.basis.is_none() {
        out.frequency = counter_frequency(&counter)?;
    }
    Ok(out)
}

/// [`post_metrics`] for `stats`, which has read whether the window has post samples
/// (`sampled`) and the post counter (`counter`, `queries/post_count_frequency.sql`) already:
/// the post queries run only for a channel with sampled posts.
///
/// errors: as [`post_metrics`].
pub(crate) async fn post_metrics_given(
    engine: &Engine,
    channel: &Channel,
    window: DayWindow,
    sampled: bool,
    counter: &[RecordBatch],
) -> Result<PostMetrics, Error> {
    let mut out = if sampled {
        sampled_post_metrics(engine, channel, window).await?
    } else {
        PostMetrics::none()
    };
    if out.frequency.basis.is_none() {
        out.frequency = counter_frequency(counter)?;
    }
    Ok(out)
}

/// Reach, ERR at 24 h and the posting frequency from the sampled posts (no frequency
/// without posts).
async fn sampled_post_metrics(
    engine: &Engine,
    channel: &Channel,
    window: DayWindow,
) -> Result<PostMetrics, Error> {
    let params = || window_params(channel.id, window);
    let (reach, freq) = futures::try_join!(
        engine.run(CHANNEL_POST_REACH, params()),
        engine.run(POSTING_FREQUENCY, params()),
    )?;
    let mut out = PostMetrics::none();
    if let Some((c, i)) = rows(&reach, CHANNEL_POST_REACH).next() {
        for r in &mut out.reach {
            r.avg = c.f64(&format!("avg_{}h", r.hours), i)?;
            r.posts = c.i64(&format!("posts_{}h", r.hours), i)?.unwrap_or(0);
        }
        out.err24_pct = c.f64("err24_pct", i)?;
        out.err24_posts = c.i64("err24_posts", i)?.unwrap_or(0);
    }
    let days = window.len_days() as f64;
    if let Some((c, i)) = rows(&freq, POSTING_FREQUENCY).next()
        && let Some(posts) = c.i64("posts", i)?.filter(|p| *p > 0)
    {
        out.frequency = Frequency {
            basis: Some(FrequencyBasis::Posts),
            posts: Some(posts),
            per_day: Some(posts as f64 / days),
            median_gap_hours: c.f64("median_gap_hours", i)?,
        };
    }
    Ok(out)
}

/// The posting frequency from the channel's post counter (`post_count_frequency.sql`'s
/// result): its increase per day between the first and the last reading; none for a counter
/// read once, within one day, or going down (posts deleted).
fn counter_frequency(counter: &[RecordBatch]) -> Result<Frequency, Error> {
    let none = Frequency {
        basis: None,
        posts: None,
        per_day: None,
        median_gap_hours: None,
    };
    let Some((c, i)) = rows(counter, POST_COUNT_FREQUENCY).next() else {
        return Ok(none);
    };
    let (first, last) = (c.i64("first_count", i)?, c.i64("last_count", i)?);
    let (from, to) = (c.instant("first_at", i)?, c.instant("last_at", i)?);
    let (Some(first), Some(last), Some(from), Some(to)) = (first, last, from, to) else {
        return Ok(none);
    };
    let span_days = (to - from).num_seconds() as f64 / 86_400.0;
    if span_days < 1.0 || last < first {
        return Ok(none);
    }
    Ok(Frequency {
        basis: Some(FrequencyBasis::PostCount),
        posts: Some(last - first),
        per_day: Some((last - first) as f64 / span_days),
        median_gap_hours: None,
    })
}

/// The views trend of one channel: `views_daily` over `days` local days ending with `until`
/// (default: its last day with a post sample), with the 7-day moving average.
///
/// errors: `Error::NoData` if the channel has no post samples; `Error::Query` if a query
/// fails.
pub async fn views_trend(
    engine: &Engine,
    channel: &Channel,
    days: Days,
    until: Option<NaiveDate>,
) -> Result<ViewsTrend, Error> {
    let w = post_window(engine, channel, days, until).await?;
    let read_from = w
        .first
        .checked_sub_days(chrono::Days::new(6))
        .unwrap_or(w.first);
    let q = VIEWS_TREND;
    let b = engine
        .run(
            q,
            vec![
                ScalarValue::Int64(Some(channel.id.get())),
                ts_param(DayWindow::midnight(w.tz, read_from)),
                ts_param(w.end()),
                ts_param(w.start()),
            ],
        )
        .await?;
    let mut out = Vec::new();
    for (c, i) in rows(&b, q) {
        let Some(bucket) = c.instant("bucket", i)? else {
            return Err(Error::Shape(q.name));
        };
        out.push(ViewsDay {
            day: DayWindow::local_day(w.tz, bucket),
            posts: c.i64("posts", i)?.unwrap_or(0),
            views: c.i64("views", i)?,
            avg7: c.f64("avg7", i)?,
        });
    }
    let first = out.iter().find_map(|d| d.avg7);
    let last = out.iter().rev().find_map(|d| d.avg7);
    let change_pct = match (first, last) {
        (Some(a), Some(b)) if a > 0.0 => Some((b - a) / a * 100.0),
        _ => None,
    };
    Ok(ViewsTrend {
        channel: channel.clone(),
        first_day: w.first,
        last_day: w.last,
        timezone: w.tz.name().to_owned(),
        days: out,
        change_pct,
    })
}

/// The best-time heatmap of one channel over `days` local days ending with `until`
/// (default: its last day with a post sample).
///
/// errors: `Error::NoData` if the channel has no post samples; `Error::Query` if a query
/// fails.
pub async fn heatmap(
    engine: &Engine,
    channel: &Channel,
    days: Days,
    until: Option<NaiveDate>,
) -> Result<Heatmap, Error> {
    let w = post_window(engine, channel, days, until).await?;
    let q = POST_HEATMAP;
    let b = engine.run(q, window_params(channel.id, w)).await?;
    let empty = HeatCell {
        posts: 0,
        median_reach: None,
        index: None,
    };
    let mut cells = vec![vec![empty; 24]; 7];
    let (mut posts, mut posts_24h, mut typical) = (0, 0, None);
    for (c, i) in rows(&b, q) {
        let (Some(dow), Some(hour)) = (c.i64("weekday", i)?, c.i64("hour", i)?) else {
            return Err(Error::Shape(q.name));
        };
        // date_part('dow') counts from Sunday = 0; the heatmap's rows start on Monday.
        let (Ok(row), Ok(hour)) = (usize::try_from((dow + 6) % 7), usize::try_from(hour)) else {
            return Err(Error::Shape(q.name));
        };
        let n = c.i64("posts", i)?.unwrap_or(0);
        let Some(cell) = cells.get_mut(row).and_then(|r| r.get_mut(hour)) else {
            return Err(Error::Shape(q.name));
        };
        *cell = HeatCell {
            posts: n,
            median_reach: c.f64("median_reach", i)?.filter(|_| n >= HEATMAP_MIN_POSTS),
            index: c.f64("reach_index", i)?.filter(|_| n >= HEATMAP_MIN_POSTS),
        };
        posts += n;
        posts_24h += c.i64("posts_24h", i)?.unwrap_or(0);
        typical = typical.or(c.f64("typical", i)?);
    }
    let basis = match (posts, posts_24h) {
        (0, _) => None,
        (p, r) if p == r => Some(ReachBasis::Reach24h),
        (_, 0) => Some(ReachBasis::LatestViews),
        _ => Some(ReachBasis::Mixed),
    };
    Ok(Heatmap {
        channel: channel.clone(),
        first_day: w.first,
        last_day: w.last,
        timezone: w.tz.name().to_owned(),
        cells,
        median_reach: typical,
        posts,
        basis,
    })
}

/// The `k` top posts of one channel by reach and by engagement over `days` local days
/// ending with `until` (default: its last day with a post sample).
///
/// errors: `Error::NoData` if the channel has no post samples; `Error::Query` if a query
/// fails.
pub async fn top_posts(
    engine: &Engine,
    channel: &Channel,
    days: Days,
    until: Option<NaiveDate>,
    k: usize,
) -> Result<TopPosts, Error> {
    let w = post_window(engine, channel, days, until).await?;
    let q = TOP_POSTS;
    let mut params = window_params(channel.id, w);
    params.push(ScalarValue::Int64(Some(k as i64)));
    let b = engine.run(q, params).await?;
    let mut by_reach = Vec::new();
    let mut by_engagement = Vec::new();
    let mut posts = 0;
    for (c, i) in rows(&b, q) {
        let (Some(post_id), Some(published_at)) =
            (c.i64("post_id", i)?, c.instant("published_at", i)?)
        else {
            return Err(Error::Shape(q.name));
        };
        posts = c.i64("posts", i)?.unwrap_or(posts);
        let p = TopPost {
            post_id,
            published_at,
            views: c.i64("views", i)?,
            reach_24h: c.f64("reach_24h", i)?,
            forwards: c.i64("forwards", i)?,
            replies: c.i64("replies", i)?,
            reactions: c.i64("reactions", i)?,
            engagement_pct: c.f64("engagement_pct", i)?,
            link: channel
                .handle
                .as_ref()
                .map(|h| format!("https://t.me/{h}/{post_id}")),
        };
        let k = k as i64;
        if let Some(r) = c.i64("engagement_rank", i)?.filter(|r| *r <= k) {
            by_engagement.push((r, p.clone()));
        }
        if let Some(r) = c.i64("reach_rank", i)?.filter(|r| *r <= k) {
            by_reach.push((r, p));
        }
    }
    by_reach.sort_by_key(|(r, _)| *r);
    by_engagement.sort_by_key(|(r, _)| *r);
    Ok(TopPosts {
        channel: channel.clone(),
        first_day: w.first,
        last_day: w.last,
        timezone: w.tz.name().to_owned(),
        posts,
        by_reach: by_reach.into_iter().map(|(_, p)| p).collect(),
        by_engagement: by_engagement.into_iter().map(|(_, p)| p).collect(),
    })
}

/// The forward/mention network of one channel over `days` local days ending with `until`
/// (default: its last day with a post sample, else its last day with member data): at most
/// `top` channels on each side, and every day with incoming posts beside the next day's
/// members change.
///
/// errors: `Error::NoData` if the channel has neither post samples nor member samples;
/// `Error::Query` if a query fails; `Error::Db` if the peers' names cannot be read.
pub async fn mentions(
    engine: &Engine,
    channel: &Channel,
    days: Days,
    until: Option<NaiveDate>,
    top: usize,
) -> Result<MentionReport, Error> {
    let w = match post_window(engine, channel, days, until).await {
        Ok(w) => w,
        Err(Error::NoData(label)) => {
            let (last, _) = super::last_day(engine, channel.id).await?;
            let end = last.ok_or(Error::NoData(label))?;
            DayWindow::ending(end, days, engine.db().timezone)
        }
        Err(e) => return Err(e),
    };
    let handle = ScalarValue::Utf8(Some(channel.handle.clone().unwrap_or_default()));
    let with_handle = || {
        vec![
            ScalarValue::Int64(Some(channel.id.get())),
            handle.clone(),
            ts_param(w.start()),
            ts_param(w.end()),
        ]
    };
    let (inc, out, per_day) = futures::try_join!(
        engine.run(MENTIONS_INCOMING, with_handle()),
        engine.run(MENTIONS_OUTGOING, {
            let mut p = window_params(channel.id, w);
            p.push(handle.clone());
            p
        }),
        engine.run(MENTION_DAYS, with_handle()),
    )?;
    let mut incoming = Vec::new();
    for (c, i) in rows(&inc, MENTIONS_INCOMING) {
        incoming.push(peer(&c, i, c.i64("peer_id", i)?, None)?);
    }
    let mut outgoing = Vec::new();
    for (c, i) in rows(&out, MENTIONS_OUTGOING) {
        outgoing.push(peer(&c, i, c.i64("peer_id", i)?, c.text("peer_name", i)?)?);
    }
    incoming.truncate(top);
    outgoing.truncate(top);
    name_peers(engine, incoming.iter_mut().chain(outgoing.iter_mut())).await?;
    let mut days_out = Vec::new();
    for (c, i) in rows(&per_day, MENTION_DAYS) {
        let Some(day) = c
            .micros("day", i)?
            .and_then(DateTime::from_timestamp_micros)
        else {
            return Err(Error::Shape(MENTION_DAYS.name));
        };
        days_out.push(MentionDay {
            // A zone-less local midnight: its date is the local day.
            day: day.date_naive(),
            posts: c.i64("posts", i)?.unwrap_or(0),
            reach: c.i64("reach", i)?,
            members_change_next_day: c.i64("members_change_next_day", i)?,
        });
    }
    Ok(MentionReport {
        channel: channel.clone(),
        first_day: w.first,
        last_day: w.last,
        timezone: w.tz.name().to_owned(),
        incoming,
        outgoing,
        days: days_out,
    })
}

fn peer(c: &Cols<'_>, i: usize, id: Option<i64>, name: Option<String>) -> Result<Peer, Error> {
    Ok(Peer {
        channel_id: id.and_then(|id| ChannelId::new(id).ok()),
        name,
        forwards: c.i64("forwards", i)?.unwrap_or(0),
        mentions: c.i64("mentions", i)?.unwrap_or(0),
        links: c.i64("links", i)?.unwrap_or(0),
        posts: c.i64("posts", i)?.unwrap_or(0),
        reach: c.i64("reach", i)?,
    })
}

/// Fills each peer's name from `channels` (current handle, else title) where tgpulse knows
/// the channel; the name the source gave stays otherwise.
async fn name_peers<'a>(
    engine: &Engine,
    peers: impl Iterator<Item = &'a mut Peer>,
) -> Result<(), Error> {
    let peers: Vec<&mut Peer> = peers.collect();
    let ids: Vec<i64> = peers
        .iter()
        .filter_map(|p| p.channel_id.map(ChannelId::get))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let client = engine.db().pool.get().await?;
    let found = client
        .query(
            "SELECT channel_id, coalesce(handle, title) FROM channels WHERE channel_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(|source| Error::Db {
            step: "read the names of mentioned channels",
            source,
        })?;
    let names: HashMap<i64, Option<String>> = found.iter().map(|r| (r.get(0), r.get(1))).collect();
    for p in peers {
        if let Some(Some(name)) = p.channel_id.and_then(|id| names.get(&id.get())) {
            p.name = Some(name.clone());
        }
    }
    Ok(())
}
