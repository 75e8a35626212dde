//! Post analytics over a window of local days: reach at 12/24/48 h, ERR at 24 h, posting
//! frequency, the views trend, the best time to post, and top posts. The forward/mention
//! network is in [`super::mentions`].
//!
//! Formulas (see README "Post metrics"):
//! - reach at h: a post's views at publication + h hours, linearly interpolated between the
//!   sample just before and the sample just after that mark (`queries/post_reach_hours.sql`);
//!   n/a without a sample on each side (or one exactly at the mark): never extrapolated;
//! - average reach at h: mean of the posts that have it, with their count;
//! - ERR at 24 h (our definition): mean over posts of reach at 24 h ÷ members on the post's
//!   local day × 100;
//! - posting frequency: posts (publication instants; an album is one) ÷ days of the window,
//!   and the median gap between consecutive posts;
//! - views trend: `views_daily` with the 7-day moving average (Σ views of the 7 local days
//!   ending that day ÷ 7, days without posts count 0);
//! - best time: per local weekday × hour, posts and their median reach (24 h reach, or the
//!   latest views of a post first read after it was 24 h old), indexed to the channel's
//!   median (1.0 = typical); fewer than 3 posts: empty;
//! - top posts: by post reach (highest views seen) and by engagement
//!   ((forwards + replies + reactions) ÷ views).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::Channel;

/// Hours after publication at which reach is reported.
pub const REACH_HOURS: [u32; 3] = [12, 24, 48];

/// Posts per cell under which a heatmap cell is shown empty.
pub const HEATMAP_MIN_POSTS: i64 = 3;

/// Average reach at one mark over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReachAt {
    /// Hours after publication (12, 24 or 48).
    pub hours: u32,
    /// Mean views at that mark over the posts that have it; `None` if none has.
    pub avg: Option<f64>,
    /// Posts with a value at that mark.
    pub posts: i64,
}

/// Post metrics of one channel over a window, for `stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostMetrics {
    /// Reach at 12, 24 and 48 h, in that order.
    pub reach: Vec<ReachAt>,
    /// ERR at 24 h in percent (our definition, not TGStat's `err24_percent`).
    pub err24_pct: Option<f64>,
    /// Posts that entered ERR at 24 h (a 24 h reach and members on their day).
    pub err24_posts: i64,
    /// Posting frequency.
    pub frequency: Frequency,
}

impl PostMetrics {
    /// No post data: every reach n/a over 0 posts, no ERR, no frequency.
    pub fn none() -> Self {
        Self {
            reach: REACH_HOURS
                .iter()
                .map(|&hours| ReachAt {
                    hours,
                    avg: None,
                    posts: 0,
                })
                .collect(),
            err24_pct: None,
            err24_posts: 0,
            frequency: Frequency {
                basis: None,
                posts: None,
                per_day: None,
                median_gap_hours: None,
            },
        }
    }
}

/// Where a posting frequency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrequencyBasis {
    /// Publication times of the posts tgpulse sampled.
    Posts,
    /// The channel's own post counter read with the members (`member_samples.post_count`).
    PostCount,
}

/// Posting frequency over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frequency {
    /// What it was computed from; `None` when neither is available.
    pub basis: Option<FrequencyBasis>,
    /// Posts in the window (an album is one post); for `PostCount`, the counter's increase.
    pub posts: Option<i64>,
    /// Posts per day: posts ÷ days covered.
    pub per_day: Option<f64>,
    /// Median hours between consecutive posts (`Posts` basis only).
    pub median_gap_hours: Option<f64>,
}

/// One local day of the views trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewsDay {
    /// Local day (reporting time zone).
    pub day: NaiveDate,
    /// Posts published that day (with a sample).
    pub posts: i64,
    /// Σ post reach of those posts (views); `None` if no post reported views.
    pub views: Option<i64>,
    /// 7-day moving average: Σ views of the 7 local days ending this day ÷ 7.
    pub avg7: Option<f64>,
}

/// `views_daily` of one channel over a window with its 7-day moving average.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewsTrend {
    /// The channel.
    pub channel: Channel,
    /// First local day of the window.
    pub first_day: NaiveDate,
    /// Last local day of the window.
    pub last_day: NaiveDate,
    /// Reporting time zone.
    pub timezone: String,
    /// Days of the window with posts, in order.
    pub days: Vec<ViewsDay>,
    /// Change of the moving average over the window in percent: (avg7 of the last day −
    /// avg7 of the first day) ÷ avg7 of the first day × 100.
    pub change_pct: Option<f64>,
}

/// What the reach of a heatmap cell's posts is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReachBasis {
    /// Every post's reach at 24 h.
    Reach24h,
    /// Every post's latest views (posts first read after they were 24 h old, e.g. imports).
    LatestViews,
    /// Some of each.
    Mixed,
}

/// One weekday × hour cell of the best-time heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeatCell {
    /// Posts published in that local hour of that weekday, with a reach.
    pub posts: i64,
    /// Their median reach (views); `None` under [`HEATMAP_MIN_POSTS`] posts.
    pub median_reach: Option<f64>,
    /// median_reach ÷ the channel's median reach (1.0 = typical); `None` when empty.
    pub index: Option<f64>,
}

/// Best time to post: a weekday × hour heatmap in the reporting time zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heatmap {
    /// The channel.
    pub channel: Channel,
    /// First local day of the window.
    pub first_day: NaiveDate,
    /// Last local day of the window.
    pub last_day: NaiveDate,
    /// Reporting time zone the weekdays and hours are local to.
    pub timezone: String,
    /// `cells[weekday][hour]`, weekday 0 = Monday … 6 = Sunday, hour 0–23.
    pub cells: Vec<Vec<HeatCell>>,
    /// Median reach of all the channel's posts in the window (the index's 1.0).
    pub median_reach: Option<f64>,
    /// Posts placed.
    pub posts: i64,
    /// What the reach is.
    pub basis: Option<ReachBasis>,
}

impl Heatmap {
    /// The cells with at least [`HEATMAP_MIN_POSTS`] posts, best index first, at most `n`:
    /// `(weekday 0 = Monday, hour, cell)`.
    pub fn best(&self, n: usize) -> Vec<(usize, usize, HeatCell)> {
        let mut all: Vec<(usize, usize, HeatCell)> = self
            .cells
            .iter()
            .enumerate()
            .flat_map(|(d, row)| row.iter().enumerate().map(move |(h, c)| (d, h, *c)))
            .filter(|(_, _, c)| c.index.is_some())
            .collect();
        all.sort_by(|a, b| {
            b.2.index
                .partial_cmp(&a.2.index)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.2.posts.cmp(&a.2.posts))
        });
        all.truncate(n);
        all
    }
}

/// One post of a top list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPost {
    /// Message id.
    pub post_id: i64,
    /// Publication time (UTC).
    pub published_at: DateTime<Utc>,
    /// Post reach: highest views seen.
    pub views: Option<i64>,
    /// Reach at 24 h, when it has one.
    pub reach_24h: Option<f64>,
    /// Forwards, replies and reactions at the highest reading.
    pub forwards: Option<i64>,
    /// Replies (comments).
    pub replies: Option<i64>,
    /// Reactions of all kinds.
    pub reactions: Option<i64>,
    /// (forwards + replies + reactions) ÷ views, percent; `None` without views or counters.
    pub engagement_pct: Option<f64>,
    /// `https://t.me/<handle>/<post_id>` when the channel has a handle.
    pub link: Option<String>,
}

/// The top posts of a window by reach and by engagement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPosts {
    /// The channel.
    pub channel: Channel,
    /// First local day of the window.
    pub first_day: NaiveDate,
    /// Last local day of the window.
    pub last_day: NaiveDate,
    /// Reporting time zone.
    pub timezone: String,
    /// Posts published in the window with a sample.
    pub posts: i64,
    /// Highest post reach first.
    pub by_reach: Vec<TopPost>,
    /// Highest engagement first (posts with views only).
    pub by_engagement: Vec<TopPost>,
}
