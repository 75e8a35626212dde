//! What the bot says: Telegram HTML (only `<b>`, `<i>`, `<pre>`, `<code>`), every piece of
//! user or channel text escaped. Presentation only; the numbers come from the service layer.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::catalog::{Health, Storage, WatchedChannel};
use crate::i18n::{self, Lang};
use crate::query::{ChannelStats, Comparison};
use crate::t;

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

/// The metric rows of one channel as the bot shows them: (label, value) in `lang`. The CLI
/// keeps its own English table ([`crate::render::metric_rows`]).
pub fn metric_rows(s: &ChannelStats, lang: Lang) -> Vec<(String, String)> {
    let na = || t!(lang, "not-available");
    let opt = |v: Option<String>| v.unwrap_or_else(na);
    let day = |d: chrono::NaiveDate| i18n::date(lang, d);
    vec![
        (
            t!(lang, "row-members"),
            opt(s.members.map(|m| i18n::int(lang, m))),
        ),
        (
            t!(lang, "row-delta"),
            match (s.delta, s.growth_pct) {
                (Some(d), Some(g)) => format!(
                    "{} ({})",
                    i18n::signed(lang, d),
                    i18n::signed_pct(lang, g, 2)
                ),
                (Some(d), None) => i18n::signed(lang, d),
                _ => na(),
            },
        ),
        (
            t!(lang, "row-baseline"),
            opt(s.baseline.map(|(d, m)| {
                t!(
                    lang,
                    "value-on-day",
                    value = i18n::int(lang, m),
                    day = day(d)
                )
            })),
        ),
        (
            t!(lang, "row-mean-daily-growth"),
            opt(s
                .mean_daily_growth
                .map(|g| t!(lang, "per-day", value = i18n::signed_dec(lang, g, 1)))),
        ),
        (
            t!(lang, "row-best-day"),
            opt(s
                .best_day
                .map(|(d, v)| format!("{} {}", day(d), i18n::signed(lang, v)))),
        ),
        (
            t!(lang, "row-worst-day"),
            opt(s
                .worst_day
                .map(|(d, v)| format!("{} {}", day(d), i18n::signed(lang, v)))),
        ),
        (
            t!(lang, "row-posts"),
            opt(s.posts.map(|p| i18n::int(lang, p))),
        ),
        (
            t!(lang, "row-avg-post-reach"),
            opt(s.avg_post_reach.map(|r| i18n::int(lang, r.round() as i64))),
        ),
        (
            t!(lang, "row-err"),
            opt(s.err_pct.map(|e| i18n::pct(lang, e, 1))),
        ),
        (
            t!(lang, "row-index-at-end"),
            opt(s
                .series
                .last()
                .and_then(|p| p.index)
                .map(|i| i18n::dec(lang, i, 1))),
        ),
        (
            t!(lang, "row-days-with-members"),
            t!(
                lang,
                "n-of-m",
                n = s.days_with_data,
                m = s.days_with_data + s.missing_day_count()
            ),
        ),
    ]
}

/// "22 Aug 2026 … 20 Sep 2026 (30 days, UTC)".
fn window(
    lang: Lang,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    days: i64,
    zone: &str,
) -> String {
    t!(
        lang,
        "window",
        from = i18n::date(lang, from),
        to = i18n::date(lang, to),
        days = t!(lang, "n-days", count = days),
        zone = esc(zone)
    )
}

/// The `/stats` caption: title, window, and the metric rows in a `<pre>` block, in `lang`.
pub fn stats_caption(s: &ChannelStats, now: DateTime<Utc>, lang: Lang) -> String {
    let mut out = title_line(&s.channel.label(), s.channel.title.as_deref());
    out.push('\n');
    out.push_str(&window(
        lang,
        s.first_day,
        s.last_day,
        s.window_days(),
        &s.timezone,
    ));
    out.push_str("\n<pre>");
    let mut rows = metric_rows(s, lang);
    rows.push((
        t!(lang, "row-last-sample"),
        s.last_observed_at
            .map_or_else(|| t!(lang, "never"), |t| i18n::age(lang, now - t)),
    ));
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(18)
        .max(18);
    let last = rows.len() - 1;
    for (i, (k, v)) in rows.iter().enumerate() {
        let pad = width - k.chars().count();
        let _ = write!(out, "{}{} {}", esc(k), " ".repeat(pad), esc(v));
        if i < last {
            out.push('\n');
        }
    }
    out.push_str("</pre>");
    out
}

/// The `/compare` caption: one row per channel (members, change, growth, ERR, index at end).
pub fn compare_caption(c: &Comparison, lang: Lang) -> String {
    let Some(first) = c.channels.first() else {
        return String::new();
    };
    let mut out = format!(
        "<b>{}</b> {}\n<pre>",
        t!(lang, "compare-title"),
        window(
            lang,
            first.first_day,
            first.last_day,
            first.window_days(),
            &first.timezone
        )
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
        t!(lang, "col-channel"),
        t!(lang, "col-members"),
        t!(lang, "col-change"),
        t!(lang, "col-growth"),
        t!(lang, "col-err"),
        t!(lang, "col-index")
    );
    let na = || t!(lang, "not-available");
    for s in &c.channels {
        let label: String = s.channel.label().chars().take(width).collect();
        let _ = writeln!(
            out,
            "{:<width$} {:>11} {:>9} {:>7} {:>6} {:>6}",
            esc(&label),
            s.members.map_or_else(na, |m| i18n::int(lang, m)),
            s.delta.map_or_else(na, |d| i18n::signed(lang, d)),
            s.growth_pct
                .map_or_else(na, |g| i18n::signed_pct(lang, g, 1)
                    .replace([' ', '\u{a0}'], "")),
            s.err_pct
                .map_or_else(na, |e| i18n::pct(lang, e, 1).replace([' ', '\u{a0}'], "")),
            s.series
                .last()
                .and_then(|p| p.index)
                .map_or_else(na, |i| i18n::dec(lang, i, 1)),
        );
    }
    out.push_str("</pre>");
    out.push_str(&t!(lang, "compare-index-note"));
    out
}

/// One page of `/list` (0-based) and the number of pages.
pub fn list_page(
    list: &[WatchedChannel],
    page: usize,
    now: DateTime<Utc>,
    lang: Lang,
) -> (String, usize) {
    let pages = list.len().div_ceil(LIST_PAGE).max(1);
    let page = page.min(pages - 1);
    if list.is_empty() {
        return (t!(lang, "list-empty"), 1);
    }
    let mut out = t!(
        lang,
        "list-title",
        count = list.len(),
        page = page + 1,
        pages = pages
    );
    out.push_str("\n<pre>");
    let _ = writeln!(
        out,
        "{:<22} {:>11} {:>8} {:>10}",
        t!(lang, "col-channel"),
        t!(lang, "col-members"),
        t!(lang, "col-day"),
        t!(lang, "col-sampled")
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
            w.members
                .map_or_else(|| "-".to_owned(), |m| i18n::int(lang, m)),
            w.day_delta
                .map_or_else(|| "-".to_owned(), |d| i18n::signed(lang, d)),
            w.last_sample_at
                .map_or_else(|| t!(lang, "never"), |t| i18n::age(lang, now - t)),
        );
    }
    out.push_str("</pre>");
    (out, pages)
}

/// `/health`.
pub fn health(h: &Health, now: DateTime<Utc>, lang: Lang) -> String {
    let storage = match h.storage {
        Storage::Timescale => t!(lang, "storage-timescale"),
        Storage::Plain => t!(lang, "storage-plain"),
    };
    let mut out = t!(
        lang,
        "health",
        storage = storage,
        watched = h.watched,
        last_hour = h.samples_last_hour,
        last_day = h.samples_last_day
    );
    if h.sources.is_empty() {
        out.push_str("\n\n");
        out.push_str(&t!(lang, "health-no-source"));
    }
    for s in &h.sources {
        out.push_str("\n\n");
        out.push_str(&t!(
            lang,
            "health-source",
            source = esc(&s.source),
            last = s.last_success.map_or_else(
                || t!(lang, "never"),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string()
            ),
            lag = s
                .last_success
                .map_or_else(|| t!(lang, "not-available"), |t| lag(lang, now - t)),
            ok = s.jobs_ok,
            failed = s.jobs_failed
        ));
        if let Some((t, e)) = &s.last_error {
            let e: String = e.chars().take(200).collect();
            out.push('\n');
            out.push_str(&t!(
                lang,
                "health-last-error",
                age = i18n::age(lang, now - *t),
                error = esc(&e)
            ));
        }
    }
    out
}

/// An age without its "ago": "5 min" / "5 мин".
fn lag(lang: Lang, d: chrono::Duration) -> String {
    let age = i18n::age(lang, d);
    let ago = t!(lang, "ago-suffix");
    age.strip_suffix(ago.as_str())
        .unwrap_or(&age)
        .trim_end()
        .to_owned()
}

/// The reply to an unauthorised user: short, and nothing about the bot's data.
pub fn refusal(lang: Lang) -> String {
    t!(lang, "refusal")
}

/// The reply when handling a request failed on the bot's side (a bug, logged with the update).
pub fn internal_error(lang: Lang) -> String {
    t!(lang, "internal-error")
}

/// Help: the command list and the role's scope, in `lang`.
pub fn help(lang: Lang, admin: bool) -> String {
    let mut out = t!(lang, "help-intro");
    out.push_str("\n\n");
    for (name, description) in super::menu(lang) {
        let _ = writeln!(out, "/{name} — {}", esc(&description));
    }
    if !admin {
        out.push('\n');
        out.push_str(&t!(lang, "help-viewer"));
    }
    out.trim_end().to_owned()
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
        let (p0, pages) = list_page(&list, 0, now, Lang::En);
        assert_eq!(pages, 3);
        assert!(p0.contains("@chan_00") && p0.contains("@chan_14") && !p0.contains("@chan_15"));
        let (p2, _) = list_page(&list, 9, now, Lang::En);
        assert!(p2.contains("page 3 of 3") && p2.contains("@chan_39"));
    }
}
