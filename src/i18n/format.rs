//! Numbers, dates and ages as each language writes them. The separators and month names are
//! glibc's locale data (`pure-rust-locales`: `en_US`, `ru_RU`), through chrono's
//! `format_localized` for dates.

use chrono::{Locale, NaiveDate};
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::fluent_bundle::memoizer::MemoizerKind;
use pure_rust_locales::{en_US, ru_RU};

use super::Lang;

/// The minus sign: English keeps the CLI's ASCII hyphen-minus; Russian typesets U+2212.
fn minus(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "-",
        Lang::Ru => "\u{2212}",
    }
}

fn separators(lang: Lang) -> (&'static str, &'static str) {
    match lang {
        Lang::En => (
            en_US::LC_NUMERIC::DECIMAL_POINT,
            en_US::LC_NUMERIC::THOUSANDS_SEP,
        ),
        Lang::Ru => (
            ru_RU::LC_NUMERIC::DECIMAL_POINT,
            ru_RU::LC_NUMERIC::THOUSANDS_SEP,
        ),
    }
}

/// Digits grouped by three with the language's separator.
fn grouped(lang: Lang, digits: &str) -> String {
    let sep = separators(lang).1;
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

/// An integer: "82,781" / "82 781", negative with the language's minus.
pub fn int(lang: Lang, v: i64) -> String {
    let body = grouped(lang, &v.unsigned_abs().to_string());
    if v < 0 {
        format!("{}{body}", minus(lang))
    } else {
        body
    }
}

/// An integer with its sign: "+1,234", "-5", "0".
pub fn signed(lang: Lang, v: i64) -> String {
    if v > 0 {
        format!("+{}", int(lang, v))
    } else {
        int(lang, v)
    }
}

/// A decimal with `digits` fraction digits: "1,234.5" / "1 234,5".
pub fn dec(lang: Lang, v: f64, digits: usize) -> String {
    let text = format!("{:.digits$}", v.abs());
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (point, _) = separators(lang);
    let mut out = String::new();
    // "-0.0" stays "0.0": the sign belongs to the rounded value.
    if v < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push_str(minus(lang));
    }
    out.push_str(&grouped(lang, whole));
    if !frac.is_empty() {
        out.push_str(point);
        out.push_str(frac);
    }
    out
}

/// A decimal with a sign: "+1.5" / "+1,5", "−0,3".
pub fn signed_dec(lang: Lang, v: f64, digits: usize) -> String {
    let body = dec(lang, v, digits);
    if v > 0.0 && body.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("+{body}")
    } else {
        body
    }
}

/// The space before `%`: English keeps the CLI's plain space, Russian a no-break space.
fn percent_space(lang: Lang) -> &'static str {
    match lang {
        Lang::En => " ",
        Lang::Ru => "\u{a0}",
    }
}

/// A percentage (the value is already in percent): "12.5 %" / "12,5 %".
pub fn pct(lang: Lang, v: f64, digits: usize) -> String {
    format!("{}{}%", dec(lang, v, digits), percent_space(lang))
}

/// A signed percentage: "+12.5 %", "-5.99 %" / "−5,99 %".
pub fn signed_pct(lang: Lang, v: f64, digits: usize) -> String {
    format!("{}{}%", signed_dec(lang, v, digits), percent_space(lang))
}

fn locale(lang: Lang) -> Locale {
    match lang {
        Lang::En => Locale::en_US,
        Lang::Ru => Locale::ru_RU,
    }
}

/// A day: "22 Aug 2026" / "22 авг 2026": glibc's abbreviated month names (CLDR, which ICU
/// follows, writes "22 авг. 2026"; glibc's tables are the ones chrono carries).
pub fn date(lang: Lang, d: NaiveDate) -> String {
    d.format_localized("%-d %b %Y", locale(lang)).to_string()
}

/// How long ago: "3 min ago" / "3 мин назад".
pub fn age(lang: Lang, d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (n, key) = match s {
        0..60 => (s, "age-seconds"),
        60..3600 => (s / 60, "age-minutes"),
        3600..86_400 => (s / 3600, "age-hours"),
        _ => (s / 86_400, "age-days"),
    };
    super::tr_args(lang, key, &[("n", FluentValue::from(n))])
}

fn fluent_number(lang: Lang, v: &FluentValue) -> Option<String> {
    match v {
        FluentValue::Number(n) if n.value.fract() == 0.0 && n.value.abs() < 9.0e15 => {
            Some(int(lang, n.value as i64))
        }
        FluentValue::Number(n) => {
            let digits = n.options.maximum_fraction_digits.unwrap_or(1);
            Some(dec(lang, n.value, digits))
        }
        _ => None,
    }
}

/// The English bundle's number formatter.
pub(super) fn fluent_en<M: MemoizerKind>(v: &FluentValue, _: &M) -> Option<String> {
    fluent_number(Lang::En, v)
}

/// The Russian bundle's number formatter.
pub(super) fn fluent_ru<M: MemoizerKind>(v: &FluentValue, _: &M) -> Option<String> {
    fluent_number(Lang::Ru, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_language() {
        assert_eq!(int(Lang::En, 82_781), "82,781");
        assert_eq!(int(Lang::Ru, 82_781), "82\u{202f}781");
        assert_eq!(int(Lang::En, -1_234_567), "-1,234,567");
        assert_eq!(int(Lang::Ru, -1_234_567), "\u{2212}1\u{202f}234\u{202f}567");
        assert_eq!(signed(Lang::En, 5), "+5");
        assert_eq!(signed_pct(Lang::En, -5.99, 2), "-5.99 %");
        assert_eq!(signed_pct(Lang::Ru, -5.99, 2), "\u{2212}5,99\u{a0}%");
        assert_eq!(signed_pct(Lang::Ru, 12.345, 1), "+12,3\u{a0}%");
        assert_eq!(dec(Lang::Ru, 1234.56, 1), "1\u{202f}234,6");
        assert_eq!(dec(Lang::En, -0.04, 1), "0.0");
        assert_eq!(signed_dec(Lang::En, 0.04, 1), "0.0");
    }

    #[test]
    fn dates_use_the_locale_month_names() {
        let d = NaiveDate::from_ymd_opt(2026, 8, 22).unwrap();
        assert_eq!(date(Lang::En, d), "22 Aug 2026");
        assert_eq!(date(Lang::Ru, d), "22 авг 2026");
    }
}
