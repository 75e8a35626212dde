//! Presentation shared by the CLI, the bot and the charts: number and age formats, and the
//! text, JSON and CSV rendering of statistics and comparisons.

use std::fmt::Write as _;

use anyhow::Result;
use chrono::{NaiveDate, Utc};

use crate::query::{ChannelStats, Comparison, FrequencyBasis, PostMetrics};

mod posts;

pub use posts::{heatmap, mentions, posts};

/// Output format of stats and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text.
    Table,
    /// Pretty JSON of the whole structure.
    Json,
    /// One CSV row per channel with a header.
    Csv,
}

/// Escapes `<`, `>` and `&` for Telegram HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Telegram's limit on one message is 4096 characters; messages are cut well below it.
pub const MESSAGE_LIMIT: usize = 3800;

/// Joins lines into messages of at most [`MESSAGE_LIMIT`] bytes each, never splitting a
/// line (a longer line is a message of its own).
pub fn split_messages(lines: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = vec![String::new()];
    for l in lines {
        let cur = out.last_mut().expect("never empty");
        if !cur.is_empty() && cur.len() + l.len() + 1 > MESSAGE_LIMIT {
            out.push(String::new());
        }
        let cur = out.last_mut().expect("never empty");
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(&l);
    }
    out
}

/// `1234567` → `1,234,567`.
pub fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// "3 s ago", "3 min ago", "2 h ago", "5 d ago".
pub fn age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

const NA: &str = "n/a";

/// `+1,234`, `-5`, `0`.
pub fn signed(v: i64) -> String {
    if v > 0 {
        format!("+{}", thousands(v))
    } else {
        thousands(v)
    }
}

/// `f(v)`, or `n/a` for a missing value (missing data stays missing, never 0).
pub fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| NA.to_owned())
}

fn runs(r: &[(NaiveDate, NaiveDate)]) -> String {
    if r.is_empty() {
        return "none".to_owned();
    }
    let shown: Vec<String> = r
        .iter()
        .take(8)
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..{b}")
            }
        })
        .collect();
    let more = if r.len() > 8 {
        format!(", … ({} more runs)", r.len() - 8)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// The metric rows shown for one channel: (label, value), as the CLI table and the bot show them.
pub fn metric_rows(s: &ChannelStats) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("members", opt(s.members, thousands)),
        (
            "delta",
            match (s.delta, s.growth_pct) {
                (Some(d), Some(g)) => format!("{} ({g:+.2} %)", signed(d)),
                (Some(d), None) => signed(d),
                _ => NA.to_owned(),
            },
        ),
        (
            "baseline",
            opt(s.baseline, |(d, m)| format!("{} on {d}", thousands(m))),
        ),
        (
            "mean daily growth",
            opt(s.mean_daily_growth, |g| format!("{g:+.1} /day")),
        ),
        (
            "best day",
            opt(s.best_day, |(d, v)| format!("{d} {}", signed(v))),
        ),
        (
            "worst day",
            opt(s.worst_day, |(d, v)| format!("{d} {}", signed(v))),
        ),
        ("posts", opt(s.posts, thousands)),
        (
            "avg post reach",
            opt(s.avg_post_reach, |r| thousands(r.round() as i64)),
        ),
        ("ERR", opt(s.err_pct, |e| format!("{e:.1} %"))),
    ];
    rows.extend(post_rows(&s.post));
    rows.extend([
        (
            "index at end",
            opt(s.series.last().and_then(|p| p.index), |i| format!("{i:.1}")),
        ),
        (
            "days with members",
            format!(
                "{} of {}",
                s.days_with_data,
                s.days_with_data + s.missing_day_count()
            ),
        ),
    ]);
    rows
}

/// The post metric rows (label, value) of `stats` and `posts`: reach at 12/24/48 h, ERR at
/// 24 h and the posting frequency.
pub fn post_rows(p: &PostMetrics) -> Vec<(&'static str, String)> {
    vec![
        ("reach 12h", reach_at(p, 12)),
        ("reach 24h", reach_at(p, 24)),
        ("reach 48h", reach_at(p, 48)),
        (
            "ERR 24h (ours)",
            opt(p.err24_pct, |e| {
                format!("{e:.1} % ({} posts)", thousands(p.err24_posts))
            }),
        ),
        ("posting frequency", frequency(p)),
    ]
}

/// Average reach at `hours` and the posts that had it: `1,234 (56 posts)`, or `n/a`.
fn reach_at(p: &PostMetrics, hours: u32) -> String {
    p.reach
        .iter()
        .find(|r| r.hours == hours)
        .and_then(|r| {
            r.avg.map(|a| {
                format!(
                    "{} ({} posts)",
                    thousands(a.round() as i64),
                    thousands(r.posts)
                )
            })
        })
        .unwrap_or_else(|| NA.to_owned())
}

/// Posts per day and the median gap: `3.2 /day, median gap 5.1 h`, or from the counter.
fn frequency(p: &PostMetrics) -> String {
    let f = &p.frequency;
    match (f.basis, f.per_day) {
        (Some(FrequencyBasis::Posts), Some(d)) => match f.median_gap_hours {
            Some(g) => format!("{d:.1} /day, median gap {g:.1} h"),
            None => format!("{d:.1} /day"),
        },
        (Some(FrequencyBasis::PostCount), Some(d)) => format!("{d:.1} /day (post counter)"),
        _ => NA.to_owned(),
    }
}

fn header(s: &ChannelStats) -> String {
    let mut out = String::new();
    let title = s.channel.title.as_deref().unwrap_or("");
    let _ = writeln!(out, "{} (id {}) {title}", s.channel.label(), s.channel.id);
    let _ = write!(
        out,
        "window {} .. {} ({} days, {})",
        s.first_day,
        s.last_day,
        s.window_days(),
        s.timezone
    );
    if let Some(t) = s.last_observed_at {
        let _ = write!(
            out,
            "; last sample {} ({} days ago)",
            t.format("%Y-%m-%d %H:%M UTC"),
            (Utc::now() - t).num_days()
        );
    }
    out.push('\n');
    out
}

/// Renders one channel's statistics.
///
/// errors: JSON or CSV encoding failures.
pub fn stats(s: &ChannelStats, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Json => Ok(serde_json::to_string_pretty(s)? + "\n"),
        OutputFormat::Csv => csv_rows(std::slice::from_ref(s)),
        OutputFormat::Table => {
            let mut out = header(s);
            for (k, v) in metric_rows(s) {
                let _ = writeln!(out, "  {k:<18} {v}");
            }
            let _ = writeln!(
                out,
                "  {:<18} {}",
                "days w/o members",
                runs(&s.missing_days)
            );
            Ok(out)
        }
    }
}

/// Renders a comparison: metrics as rows, channels as columns.
///
/// errors: JSON or CSV encoding failures.
pub fn comparison(c: &Comparison, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Json => Ok(serde_json::to_string_pretty(c)? + "\n"),
        OutputFormat::Csv => csv_rows(&c.channels),
        OutputFormat::Table => {
            let Some(first) = c.channels.first() else {
                return Ok(String::new());
            };
            let mut out = format!(
                "window {} .. {} ({})\n",
                first.first_day, first.last_day, first.timezone
            );
            let cols: Vec<Vec<(&str, String)>> = c.channels.iter().map(metric_rows).collect();
            let labels: Vec<String> = c.channels.iter().map(|s| s.channel.label()).collect();
            let width = |i: usize| {
                cols[i]
                    .iter()
                    .map(|(_, v)| v.chars().count())
                    .chain([labels[i].chars().count()])
                    .max()
                    .unwrap_or(8)
            };
            let _ = write!(out, "  {:<18}", "");
            for (i, l) in labels.iter().enumerate() {
                let _ = write!(out, " {:>w$}", l, w = width(i));
            }
            out.push('\n');
            for row in 0..cols[0].len() {
                let _ = write!(out, "  {:<18}", cols[0][row].0);
                for (i, col) in cols.iter().enumerate() {
                    let _ = write!(out, " {:>w$}", col[row].1, w = width(i));
                }
                out.push('\n');
            }
            Ok(out)
        }
    }
}

fn csv_rows(all: &[ChannelStats]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "channel_id",
        "handle",
        "first_day",
        "last_day",
        "timezone",
        "members",
        "delta",
        "growth_pct",
        "mean_daily_growth",
        "best_day",
        "best_delta",
        "worst_day",
        "worst_delta",
        "posts",
        "avg_post_reach",
        "err_pct",
        "index_end",
        "days_with_data",
        "missing_days",
        "reach_12h",
        "reach_24h",
        "reach_48h",
        "err24_pct",
        "posts_per_day",
        "median_gap_hours",
    ])?;
    let o = |v: Option<String>| v.unwrap_or_default();
    for s in all {
        w.write_record([
            s.channel.id.to_string(),
            s.channel.handle.clone().unwrap_or_default(),
            s.first_day.to_string(),
            s.last_day.to_string(),
            s.timezone.clone(),
            o(s.members.map(|v| v.to_string())),
            o(s.delta.map(|v| v.to_string())),
            o(s.growth_pct.map(|v| format!("{v:.4}"))),
            o(s.mean_daily_growth.map(|v| format!("{v:.4}"))),
            o(s.best_day.map(|d| d.0.to_string())),
            o(s.best_day.map(|d| d.1.to_string())),
            o(s.worst_day.map(|d| d.0.to_string())),
            o(s.worst_day.map(|d| d.1.to_string())),
            o(s.posts.map(|v| v.to_string())),
            o(s.avg_post_reach.map(|v| format!("{v:.2}"))),
            o(s.err_pct.map(|v| format!("{v:.4}"))),
            o(s.series
                .last()
                .and_then(|p| p.index)
                .map(|v| format!("{v:.4}"))),
            s.days_with_data.to_string(),
            s.missing_day_count().to_string(),
            o(s.post
                .reach
                .first()
                .and_then(|r| r.avg)
                .map(|v| format!("{v:.2}"))),
            o(s.post
                .reach
                .get(1)
                .and_then(|r| r.avg)
                .map(|v| format!("{v:.2}"))),
            o(s.post
                .reach
                .get(2)
                .and_then(|r| r.avg)
                .map(|v| format!("{v:.2}"))),
            o(s.post.err24_pct.map(|v| format!("{v:.4}"))),
            o(s.post.frequency.per_day.map(|v| format!("{v:.4}"))),
            o(s.post.frequency.median_gap_hours.map(|v| format!("{v:.2}"))),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::{signed, thousands};

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
        assert_eq!(signed(1234), "+1,234");
    }
}
