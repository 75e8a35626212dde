//! Alerts in words, in each reader's language: the detail line from an event's numbers and
//! the threshold with its unit. The stored `detail` (English) stays for SQL readers and as the
//! fallback when a number is missing.

use super::Rule;
use super::store::Event;
use crate::i18n::{self, Lang};
use crate::t;

/// A threshold with its unit: "20 %", "3 × the median gap".
pub fn threshold(lang: Lang, rule: Rule, t: f64) -> String {
    let digits = if t.fract() == 0.0 { 0 } else { 1 };
    let pct = i18n::pct(lang, t, digits);
    let t = i18n::dec(lang, t, digits);
    match rule {
        Rule::MembersChange | Rule::ViewsDrop => pct,
        Rule::NoPosts => t!(lang, "unit-median-gap", value = t),
        Rule::UnusualChange => t!(lang, "unit-robust-z", value = t),
        Rule::SourceStale => t!(lang, "unit-members-interval", value = t),
    }
}

/// A measured figure: whole with separators from 100 on, one decimal below.
pub fn num(lang: Lang, v: Option<f64>) -> String {
    v.map_or_else(
        || t!(lang, "not-available"),
        |v| {
            if v.abs() >= 100.0 {
                i18n::int(lang, v.round() as i64)
            } else {
                i18n::dec(lang, v, 1)
            }
        },
    )
}

/// The alert's one line for people in `lang`, worded from its numbers; the stored English
/// `detail` when a number it needs is missing.
pub fn detail(e: &Event, lang: Lang) -> String {
    let whole = |v: f64| i18n::int(lang, v.round() as i64);
    let worded = match (e.rule.parse::<Rule>(), e.value, e.baseline) {
        (Ok(Rule::MembersChange), Some(v), Some(b)) => e.change_pct.map(|p| {
            t!(
                lang,
                "detail-members_change",
                before = whole(b),
                after = whole(v),
                change = i18n::signed_pct(lang, p, 1)
            )
        }),
        (Ok(Rule::UnusualChange), Some(v), Some(b)) => e.score.map(|z| {
            t!(
                lang,
                "detail-unusual_change",
                delta = i18n::signed(lang, v as i64),
                typical = i18n::signed(lang, b as i64),
                z = i18n::signed_dec(lang, z, 1)
            )
        }),
        (Ok(Rule::NoPosts), Some(v), Some(b)) => e.score.map(|limit| {
            t!(
                lang,
                "detail-no_posts",
                silent = i18n::dec(lang, v, 0),
                gap = i18n::dec(lang, b, 1),
                limit = i18n::dec(lang, limit, 0)
            )
        }),
        (Ok(Rule::ViewsDrop), Some(v), Some(b)) => e.change_pct.map(|p| {
            t!(
                lang,
                "detail-views_drop",
                reach = whole(v),
                before = whole(b),
                change = i18n::signed_pct(lang, p, 1)
            )
        }),
        (Ok(Rule::SourceStale), Some(v), Some(b)) => Some(t!(
            lang,
            "detail-source_stale",
            source = e.subject.trim_start_matches("source:").to_owned(),
            hours = i18n::dec(lang, v, 1),
            limit = i18n::dec(lang, b, 1),
            intervals = e.threshold as i64
        )),
        _ => None,
    };
    worded.unwrap_or_else(|| e.detail.clone())
}
