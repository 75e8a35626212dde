//! Text and JSON rendering of the post analytics: top posts, the best-time heatmap and the
//! forward/mention network, as `tgpulse posts`, `heatmap` and `mentions` print them.

use std::fmt::Write as _;

use anyhow::Result;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{NA, OutputFormat, opt, signed, thousands};
use crate::query::{
    Channel, Heatmap, MentionReport, Peer, PostMetrics, ReachBasis, TopPost, TopPosts,
};

/// Short English weekday names, Monday first (the heatmap's row order).
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn title(
    c: &Channel,
    what: &str,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
    tz: &str,
) -> String {
    let days = (last - first).num_days() + 1;
    format!(
        "{} (id {}) {what}, {first} .. {last} ({days} days, {tz})\n",
        c.label(),
        c.id
    )
}

fn local(t: DateTime<Utc>, tz: &str) -> String {
    match tz.parse::<Tz>() {
        Ok(z) => t.with_timezone(&z).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn post_row(out: &mut String, rank: usize, p: &TopPost, tz: &str) {
    let _ = writeln!(
        out,
        "  {rank:>3}  {:<16}  {:>10}  {:>10}  {:>10}  {}",
        local(p.published_at, tz),
        opt(p.views, thousands),
        opt(p.reach_24h, |r| thousands(r.round() as i64)),
        opt(p.engagement_pct, |e| format!("{e:.2} %")),
        p.link
            .clone()
            .unwrap_or_else(|| format!("post {}", p.post_id)),
    );
}

/// Renders `tgpulse posts`: the window's post metrics, then the top posts by reach and by
/// engagement (times in the reporting time zone); JSON is `{"metrics": …, "top": …}`.
///
/// errors: JSON encoding failures; `--format csv`, which only stats and compare offer.
pub fn posts(t: &TopPosts, metrics: &PostMetrics, format: OutputFormat) -> Result<String> {
    if format == OutputFormat::Csv {
        anyhow::bail!(
            "--format csv is offered by stats and compare; use table or json here, or export the relation"
        );
    }
    if format == OutputFormat::Json {
        let both = serde_json::json!({ "metrics": metrics, "top": t });
        return Ok(serde_json::to_string_pretty(&both)? + "\n");
    }
    let mut out = title(&t.channel, "posts", t.first_day, t.last_day, &t.timezone);
    for (k, v) in super::post_rows(metrics) {
        let _ = writeln!(out, "  {k:<18} {v}");
    }
    let _ = writeln!(out, "  {} posts in the window", thousands(t.posts));
    let head = format!(
        "  {:>3}  {:<16}  {:>10}  {:>10}  {:>10}  link",
        "#", "published", "views", "reach 24h", "engagement"
    );
    let _ = writeln!(
        out,
        "top {} by reach (highest views seen)",
        t.by_reach.len()
    );
    let _ = writeln!(out, "{head}");
    for (i, p) in t.by_reach.iter().enumerate() {
        post_row(&mut out, i + 1, p, &t.timezone);
    }
    let _ = writeln!(
        out,
        "top {} by engagement ((forwards + replies + reactions) / views, posts with at least the median reach)",
        t.by_engagement.len()
    );
    let _ = writeln!(out, "{head}");
    for (i, p) in t.by_engagement.iter().enumerate() {
        post_row(&mut out, i + 1, p, &t.timezone);
    }
    Ok(out)
}

/// What a heatmap's reach is, in words.
fn basis(b: Option<ReachBasis>) -> &'static str {
    match b {
        Some(ReachBasis::Reach24h) => "reach at 24 h",
        Some(ReachBasis::LatestViews) => "latest views (posts first read after 24 h)",
        Some(ReachBasis::Mixed) => "reach at 24 h, or latest views for posts first read after 24 h",
        None => NA,
    }
}

/// Renders the best-time heatmap: one row per local weekday, one column per local hour,
/// each cell the median reach indexed to the channel's median (`·` = fewer than 3 posts),
/// then the best slots.
///
/// errors: JSON encoding failures.
pub fn heatmap(h: &Heatmap, format: OutputFormat) -> Result<String> {
    if format == OutputFormat::Csv {
        anyhow::bail!(
            "--format csv is offered by stats and compare; use table or json here, or export the relation"
        );
    }
    if format == OutputFormat::Json {
        return Ok(serde_json::to_string_pretty(h)? + "\n");
    }
    let mut out = title(
        &h.channel,
        "best time to post",
        h.first_day,
        h.last_day,
        &h.timezone,
    );
    let _ = writeln!(
        out,
        "  {} posts; reach = {}; median {}; 1.0 = typical, · = fewer than 3 posts",
        thousands(h.posts),
        basis(h.basis),
        opt(h.median_reach, |m| thousands(m.round() as i64)),
    );
    let _ = write!(out, "  {:<4}", "");
    for hour in 0..24 {
        let _ = write!(out, "{hour:>5}");
    }
    out.push('\n');
    for (d, row) in h.cells.iter().enumerate() {
        let _ = write!(out, "  {:<4}", WEEKDAYS.get(d).copied().unwrap_or("?"));
        for c in row {
            let cell = c
                .index
                .map_or_else(|| "·".to_owned(), |i| format!("{i:.2}"));
            let _ = write!(out, "{cell:>5}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "best slots:");
    let best = h.best(5);
    if best.is_empty() {
        let _ = writeln!(out, "  none with 3 posts or more");
    }
    for (d, hour, c) in best {
        let _ = writeln!(
            out,
            "  {} {hour:02}:00  index {:.2}  median reach {}  ({} posts)",
            WEEKDAYS.get(d).copied().unwrap_or("?"),
            c.index.unwrap_or_default(),
            opt(c.median_reach, |m| thousands(m.round() as i64)),
            c.posts
        );
    }
    Ok(out)
}

fn peer_rows(out: &mut String, peers: &[Peer]) {
    if peers.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    let _ = writeln!(
        out,
        "  {:<32} {:>8} {:>8} {:>8} {:>12}",
        "channel", "forwards", "mentions", "links", "reach"
    );
    for p in peers {
        let _ = writeln!(
            out,
            "  {:<32} {:>8} {:>8} {:>8} {:>12}",
            p.label(),
            thousands(p.forwards),
            thousands(p.mentions),
            thousands(p.links),
            opt(p.reach, thousands)
        );
    }
}

/// Renders the forward/mention network and the members change on the day after each day
/// with incoming mentions (labelled as correlation, not cause).
///
/// errors: JSON encoding failures.
pub fn mentions(m: &MentionReport, format: OutputFormat) -> Result<String> {
    if format == OutputFormat::Csv {
        anyhow::bail!(
            "--format csv is offered by stats and compare; use table or json here, or export the relation"
        );
    }
    if format == OutputFormat::Json {
        return Ok(serde_json::to_string_pretty(m)? + "\n");
    }
    let mut out = title(
        &m.channel,
        "forwards and mentions",
        m.first_day,
        m.last_day,
        &m.timezone,
    );
    let _ = writeln!(
        out,
        "who forwards, mentions or links it (their posts; reach = views of those posts):"
    );
    peer_rows(&mut out, &m.incoming);
    let _ = writeln!(out, "whom it forwards, mentions or links (its posts):");
    peer_rows(&mut out, &m.outgoing);
    let _ = writeln!(
        out,
        "days with incoming posts and the members change on the next day (correlation, not cause):"
    );
    if m.days.is_empty() {
        let _ = writeln!(out, "  none");
    } else {
        let _ = writeln!(
            out,
            "  {:<10} {:>6} {:>12} {:>16}",
            "day", "posts", "reach", "members next day"
        );
        for d in &m.days {
            let _ = writeln!(
                out,
                "  {:<10} {:>6} {:>12} {:>16}",
                d.day.to_string(),
                thousands(d.posts),
                opt(d.reach, thousands),
                opt(d.members_change_next_day, signed)
            );
        }
    }
    Ok(out)
}
