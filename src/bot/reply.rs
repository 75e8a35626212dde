//! What the bot says: Telegram HTML (only `<b>`, `<i>`, `<pre>`, `<code>`), every piece of
//! user or channel text escaped. Presentation only; the numbers come from the service layer.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::catalog::{Health, Storage, WatchedChannel};
use crate::i18n::{self, Lang};
use crate::query::{ChannelStats, Comparison, FrequencyBasis, PostMetrics};
use crate::t;

/// Telegram's limit on a photo or document caption, in characters after entity parsing.
pub const CAPTION_LIMIT: usize = 1024;
/// Telegram's limit on one text message, in characters after entity parsing.
pub const TEXT_LIMIT: usize = 4096;
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

/// "<b>@handle</b> · Title" (the title only when there is one), escaped.
pub(super) fn title_line(label: &str, title: Option<&str>) -> String {
    match title {
        Some(t) if !t.is_empty() => format!("<b>{}</b> · {}", esc(label), esc(t)),
        _ => format!("<b>{}</b>", esc(label)),
    }
}

/// At most `n` characters of `s`, with "…" in place of the rest.
pub(super) fn clip_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// (label, value) rows as an aligned `<pre>` block, labels padded to the longest (at least
/// 18 characters), everything escaped.
pub(super) fn rows_block(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(18)
        .max(18);
    let mut out = String::from("<pre>");
    for (i, (k, v)) in rows.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let pad = width - k.chars().count();
        let _ = write!(out, "{}{} {}", esc(k), " ".repeat(pad), esc(v));
    }
    out.push_str("</pre>");
    out
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
    ]
    .into_iter()
    .chain(reach_rows(&s.post, lang))
    .chain([
        (
            t!(lang, "row-err"),
            opt(s.err_pct.map(|e| i18n::pct(lang, e, 1))),
        ),
        (
            t!(lang, "row-err24"),
            opt(s.post.err24_pct.map(|e| i18n::pct(lang, e, 1))),
        ),
        (t!(lang, "row-frequency"), frequency(&s.post, lang)),
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
    ])
    .collect()
}

/// Reach at 12, 24 and 48 h: "1,234 (56 posts)", n/a where no post has a value at that mark.
fn reach_rows(p: &PostMetrics, lang: Lang) -> Vec<(String, String)> {
    p.reach
        .iter()
        .map(|r| {
            let value = match r.avg {
                Some(avg) if r.posts > 0 => t!(
                    lang,
                    "value-of-posts",
                    value = i18n::int(lang, avg.round() as i64),
                    posts = r.posts
                ),
                _ => t!(lang, "not-available"),
            };
            (t!(lang, "row-reach-at", hours = r.hours), value)
        })
        .collect()
}

/// Posts a day and the median gap between posts; from the channel's post counter, said so.
fn frequency(p: &PostMetrics, lang: Lang) -> String {
    let f = &p.frequency;
    let Some(per_day) = f.per_day else {
        return t!(lang, "not-available");
    };
    let mut out = t!(lang, "per-day", value = i18n::dec(lang, per_day, 1));
    if let Some(gap) = f.median_gap_hours {
        out.push_str(", ");
        out.push_str(&t!(lang, "frequency-gap", hours = i18n::dec(lang, gap, 1)));
    }
    if f.basis == Some(FrequencyBasis::PostCount) {
        out.push(' ');
        out.push_str(&t!(lang, "frequency-from-counter"));
    }
    out
}

/// "22 Aug 2026 … 20 Sep 2026 (30 days, UTC)".
pub(super) fn window(
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
/// Within [`CAPTION_LIMIT`] visible characters: a title too long for it (Telegram allows 128
/// characters) is shortened with "…"; the handle, window and rows are always whole.
pub fn stats_caption(s: &ChannelStats, now: DateTime<Utc>, lang: Lang) -> String {
    let mut rows = metric_rows(s, lang);
    rows.push((
        t!(lang, "row-last-sample"),
        s.last_observed_at
            .map_or_else(|| t!(lang, "never"), |t| i18n::age(lang, now - t)),
    ));
    let body = format!(
        "{}\n{}",
        window(lang, s.first_day, s.last_day, s.window_days(), &s.timezone),
        rows_block(&rows)
    );
    let label = s.channel.label();
    let caption = |title: Option<&str>| format!("{}\n{body}", title_line(&label, title));
    let full = caption(s.channel.title.as_deref());
    let over = visible_len(&full).saturating_sub(CAPTION_LIMIT);
    match s.channel.title.as_deref() {
        Some(title) if over > 0 => {
            let keep = title.chars().count().saturating_sub(over);
            if keep >= 2 {
                caption(Some(&clip_chars(title, keep)))
            } else {
                caption(None)
            }
        }
        _ => full,
    }
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

    /// A channel with every row at its widest: a 32-character handle, a 128-character title
    /// that needs escaping, a long time zone, ten-digit counts, every post metric present.
    fn widest_stats(basis: FrequencyBasis) -> ChannelStats {
        use crate::query::{Channel, DayPoint, Frequency, ReachAt};
        let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 8, d).unwrap();
        ChannelStats {
            channel: Channel {
                id: crate::domain::ChannelId::new(1_234_567_890).unwrap(),
                handle: Some(format!("a{}", "x".repeat(31))),
                title: Some("Ж&<>".repeat(32)),
            },
            first_day: day(1) - chrono::Duration::days(3649),
            last_day: day(1),
            timezone: "America/Argentina/ComodRivadavia".into(),
            members: Some(-1_234_567_890),
            baseline: Some((day(2), -1_234_567_890)),
            delta: Some(-1_234_567_890),
            growth_pct: Some(-12_345.678),
            mean_daily_growth: Some(-123_456.7),
            best_day: Some((day(22), -1_234_567_890)),
            worst_day: Some((day(23), -1_234_567_890)),
            days_with_data: 3650,
            missing_days: vec![],
            posts: Some(1_234_567_890),
            avg_post_reach: Some(1_234_567_890.0),
            err_pct: Some(12_345.67),
            last_observed_at: Some(Utc::now() - chrono::Duration::days(3650)),
            series: vec![DayPoint {
                day: day(1),
                members: 1_234_567_890,
                delta: Some(-1_234_567_890),
                index: Some(-12_345.6),
            }],
            post: PostMetrics {
                reach: [12, 24, 48]
                    .into_iter()
                    .map(|hours| ReachAt {
                        hours,
                        avg: Some(1_234_567_890.0),
                        posts: 1_234_567,
                    })
                    .collect(),
                err24_pct: Some(12_345.67),
                err24_posts: 1_234_567,
                frequency: Frequency {
                    basis: Some(basis),
                    posts: Some(1_234_567),
                    per_day: Some(12_345.6),
                    median_gap_hours: (basis == FrequencyBasis::Posts).then_some(12_345.6),
                },
            },
        }
    }

    #[test]
    fn the_stats_caption_fits_a_photo_caption_in_every_language() {
        let now = Utc::now();
        for basis in [FrequencyBasis::Posts, FrequencyBasis::PostCount] {
            let s = widest_stats(basis);
            for lang in Lang::ALL {
                let c = stats_caption(&s, now, lang);
                assert!(
                    visible_len(&c) <= CAPTION_LIMIT,
                    "{lang:?} {basis:?}: {} characters\n{c}",
                    visible_len(&c)
                );
                // The handle and every row are whole; only the title may be shortened.
                assert!(
                    c.starts_with(&format!("<b>@a{}</b>", "x".repeat(31))),
                    "{c}"
                );
                let rows = metric_rows(&s, lang).len() + 1;
                assert_eq!(c.matches('\n').count(), 2 + rows - 1, "{c}");
                assert!(c.contains(&t!(lang, "row-err24")), "{c}");
            }
        }
        // A short title is never shortened.
        let mut s = widest_stats(FrequencyBasis::Posts);
        s.channel.title = Some("Birb Life".into());
        assert!(stats_caption(&s, now, Lang::Ru).contains("</b> · Birb Life\n"));
    }

    #[test]
    fn post_rows_say_how_many_posts_and_where_the_frequency_comes_from() {
        let mut s = widest_stats(FrequencyBasis::PostCount);
        s.post.reach[0].avg = None;
        s.post.reach[0].posts = 0;
        s.post.reach[1].avg = Some(1234.4);
        s.post.reach[1].posts = 1;
        let rows = metric_rows(&s, Lang::En);
        let row = |label: &str| {
            rows.iter()
                .find(|(k, _)| k == label)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no row {label}: {rows:?}"))
        };
        assert_eq!(row("reach at 12h"), "n/a");
        assert_eq!(row("reach at 24h"), "1,234 (1 post)");
        assert_eq!(row("reach at 48h"), "1,234,567,890 (1,234,567 posts)");
        assert_eq!(row("ERR 24h (ours)"), "12,345.7 %");
        assert_eq!(
            row("posting frequency"),
            "12,345.6 /day (from the post counter)"
        );
        let ru = metric_rows(&widest_stats(FrequencyBasis::Posts), Lang::Ru);
        assert!(
            ru.iter().any(|(_, v)| v.contains("медианный интервал")),
            "{ru:?}"
        );
        for (k, _) in metric_rows(&s, Lang::En) {
            assert!(
                k.chars().count() <= 18,
                "{k:?} would widen the English table"
            );
        }
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
