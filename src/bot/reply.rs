//! What the bot says: Telegram HTML (only `<b>`, `<i>`, `<pre>`, `<code>`), every piece of
//! user or channel text escaped. Presentation only; the numbers come from the service layer.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::catalog::{Health, Storage, WatchedChannel};
use crate::query::{ChannelStats, Comparison};
use crate::render::{age, metric_rows, signed, thousands};

/// Telegram's limit on a photo or document caption, in characters after entity parsing.
pub const CAPTION_LIMIT: usize = 1024;
/// Channels per `/list` page.
pub const LIST_PAGE: usize = 15;

pub use crate::render::esc;

/// Characters the user sees of an HTML text (tags dropped, entities counted as one).
pub fn visible_len(html: &str) -> usize {
    let mut n = 0;
    let mut in_tag = false;
    let mut in_entity = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            '&' if !in_tag => {
                in_entity = true;
                n += 1;
            }
            ';' if in_entity => in_entity = false,
            _ if in_tag || in_entity => {}
            _ => n += 1,
        }
    }
    n
}

fn title_line(label: &str, title: Option<&str>) -> String {
    match title {
        Some(t) if !t.is_empty() => format!("<b>{}</b> · {}", esc(label), esc(t)),
        _ => format!("<b>{}</b>", esc(label)),
    }
}

/// The `/stats` caption: title, window, and the CLI's metric rows in a `<pre>` block.
pub fn stats_caption(s: &ChannelStats, now: DateTime<Utc>) -> String {
    let mut out = title_line(&s.channel.label(), s.channel.title.as_deref());
    let _ = write!(
        out,
        "\n{} … {} ({} days, {})",
        s.first_day,
        s.last_day,
        s.window_days(),
        esc(&s.timezone)
    );
    out.push_str("\n<pre>");
    for (k, v) in metric_rows(s) {
        let _ = writeln!(out, "{k:<18} {}", esc(&v));
    }
    let last = s
        .last_observed_at
        .map_or_else(|| "never".to_owned(), |t| age(now - t));
    let _ = write!(out, "{:<18} {last}</pre>", "last sample");
    out
}

/// The `/compare` caption: one row per channel (members, change, growth, ERR, index at end).
pub fn compare_caption(c: &Comparison) -> String {
    let Some(first) = c.channels.first() else {
        return String::new();
    };
    let mut out = format!(
        "<b>Comparison</b> {} … {} ({} days, {})\n<pre>",
        first.first_day,
        first.last_day,
        first.window_days(),
        esc(&first.timezone)
    );
    let width = c
        .channels
        .iter()
        .map(|s| s.channel.label().chars().count())
        .max()
        .unwrap_or(8)
        .clamp(7, 24);
    let _ = writeln!(
        out,
        "{:<width$} {:>11} {:>9} {:>7} {:>6} {:>6}",
        "channel", "members", "change", "growth", "ERR", "index"
    );
    let na = || "n/a".to_owned();
    for s in &c.channels {
        let label: String = s.channel.label().chars().take(width).collect();
        let _ = writeln!(
            out,
            "{:<width$} {:>11} {:>9} {:>7} {:>6} {:>6}",
            esc(&label),
            s.members.map_or_else(na, thousands),
            s.delta.map_or_else(na, signed),
            s.growth_pct.map_or_else(na, |g| format!("{g:+.1}%")),
            s.err_pct.map_or_else(na, |e| format!("{e:.1}%")),
            s.series
                .last()
                .and_then(|p| p.index)
                .map_or_else(na, |i| format!("{i:.1}")),
        );
    }
    out.push_str("</pre>index: members ÷ members at the window start × 100");
    out
}

/// One page of `/list` (0-based) and the number of pages.
pub fn list_page(list: &[WatchedChannel], page: usize, now: DateTime<Utc>) -> (String, usize) {
    let pages = list.len().div_ceil(LIST_PAGE).max(1);
    let page = page.min(pages - 1);
    if list.is_empty() {
        return (
            "No channels are watched yet. Add one with /add @channel.".to_owned(),
            1,
        );
    }
    let mut out = format!(
        "<b>Watched channels</b>: {} (page {} of {pages})\n<pre>",
        list.len(),
        page + 1
    );
    let _ = writeln!(
        out,
        "{:<22} {:>11} {:>8} {:>10}",
        "channel", "members", "day", "sampled"
    );
    for w in list.iter().skip(page * LIST_PAGE).take(LIST_PAGE) {
        let name = match &w.handle {
            Some(h) => format!("@{h}"),
            None => w.channel_id.to_string(),
        };
        let name: String = name.chars().take(22).collect();
        let _ = writeln!(
            out,
            "{:<22} {:>11} {:>8} {:>10}",
            esc(&name),
            w.members.map_or_else(|| "-".to_owned(), thousands),
            w.day_delta.map_or_else(|| "-".to_owned(), signed),
            w.last_sample_at
                .map_or_else(|| "never".to_owned(), |t| age(now - t)),
        );
    }
    out.push_str("</pre>");
    (out, pages)
}

/// `/health`.
pub fn health(h: &Health, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "<b>Health</b>\nstorage: {}\nwatched channels: {}\nsamples in the last hour: {}\nsamples in the last day: {}\n",
        match h.storage {
            Storage::Timescale => "TimescaleDB (hypertables, continuous aggregates)",
            Storage::Plain => "plain PostgreSQL",
        },
        thousands(h.watched),
        thousands(h.samples_last_hour),
        thousands(h.samples_last_day),
    );
    if h.sources.is_empty() {
        out.push_str("\nNo source has run yet (start collectors with tgpulse serve).");
    }
    for s in &h.sources {
        let _ = write!(
            out,
            "\n<b>{}</b>: last success {} (lag {}), jobs ok {}, failed {}",
            esc(&s.source),
            s.last_success.map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string()
            ),
            s.last_success
                .map_or_else(|| "n/a".to_owned(), |t| lag(now - t)),
            thousands(s.jobs_ok),
            thousands(s.jobs_failed)
        );
        if let Some((t, e)) = &s.last_error {
            let e: String = e.chars().take(200).collect();
            let _ = write!(out, "\n  last error {}: {}", age(now - *t), esc(&e));
        }
    }
    out
}

fn lag(d: chrono::Duration) -> String {
    age(d).trim_end_matches(" ago").to_owned()
}

/// The reply to an unauthorised user: short, and nothing about the bot's data.
pub const REFUSAL: &str = "Sorry, this is a private bot.";

/// The reply when handling a request failed on the bot's side (a bug, logged with the update).
pub const INTERNAL_ERROR: &str =
    "Sorry, that request failed on our side. It has been logged; please try again or ask an admin.";

/// Help: the command list (from the `BotCommands` doc comments) and the role's scope.
pub fn help(descriptions: &str, admin: bool) -> String {
    let mut out = format!(
        "tgpulse: channel statistics from your own database.\n\n{}",
        esc(descriptions)
    );
    if !admin {
        out.push_str("\n\nYou have the read-only viewer role: /add, /remove, /grant and /revoke are for admins.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_visible_length() {
        assert_eq!(esc("<b>&"), "&lt;b&gt;&amp;");
        assert_eq!(visible_len("<pre>a &amp; b</pre>"), 5);
        assert_eq!(visible_len("plain"), 5);
    }

    #[test]
    fn list_pages_are_bounded() {
        let now = Utc::now();
        let list: Vec<WatchedChannel> = (0..40)
            .map(|i| WatchedChannel {
                channel_id: crate::domain::ChannelId::new(1000 + i).unwrap(),
                handle: Some(format!("chan_{i:02}")),
                title: None,
                members: Some(i * 10),
                day_delta: Some(-3),
                last_sample_at: Some(now),
            })
            .collect();
        let (p0, pages) = list_page(&list, 0, now);
        assert_eq!(pages, 3);
        assert!(p0.contains("@chan_00") && p0.contains("@chan_14") && !p0.contains("@chan_15"));
        let (p2, _) = list_page(&list, 9, now);
        assert!(p2.contains("page 3 of 3") && p2.contains("@chan_39"));
    }
}
