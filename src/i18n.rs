//! The bot's languages, English and Russian, through Project Fluent (`fluent-templates`): the
//! messages live in `locales/{en,ru}/*.ftl`, compiled into the binary, and Fluent's plural
//! rules (CLDR) give Russian its three forms ("1 канал", "2 канала", "5 каналов").
//!
//! Numbers and dates follow the language, from glibc's locale data (`pure-rust-locales`, the
//! tables behind chrono's `unstable-locales`): English "82,781", "-5.99 %", "22 Aug 2026";
//! Russian "82 781" (U+202F, a narrow no-break space), "−5,99 %", "22 авг 2026". English keeps
//! the CLI's own formats, so a text shared by both reads the same.
//!
//! The CLI stays English, and no JSON or CSV output goes through here.

mod format;

use std::borrow::Cow;
use std::collections::HashMap;

pub use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid, static_loader};

pub use format::{age, date, dec, int, pct, signed, signed_dec, signed_pct};

static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        customise: |bundle| {
            bundle.set_use_isolating(false);
            let ru = bundle.locales.first().is_some_and(|l| l.language.as_str() == "ru");
            bundle.set_formatter(Some(if ru { format::fluent_ru } else { format::fluent_en }));
        },
    };
}

static EN: LanguageIdentifier = langid!("en");
static RU: LanguageIdentifier = langid!("ru");

/// A language the bot speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English: the default, and the CLI's language.
    #[default]
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    /// The language for a Telegram `language_code` (an IETF tag such as `ru`, `en-US`,
    /// `uk`): Russian for `ru` and for the languages whose speakers usually read Russian
    /// interfaces (`uk`, `be`, `kk`); English for anything else and without a code.
    pub fn from_telegram(code: Option<&str>) -> Self {
        let primary = code
            .unwrap_or("")
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if Self::Ru.telegram_codes().contains(&primary.as_str()) {
            Self::Ru
        } else {
            Self::En
        }
    }

    /// The Telegram `language_code`s that get this language ([`Lang::from_telegram`]); none
    /// for English, the default for every other code.
    pub fn telegram_codes(self) -> &'static [&'static str] {
        match self {
            Self::En => &[],
            Self::Ru => &["ru", "uk", "be", "kk"],
        }
    }

    /// A user's language from what `bot_languages` holds: the one `chosen` with `/lang` (`en`,
    /// `ru`), else the one of Telegram's `language_code`.
    pub fn of_user(chosen: Option<&str>, code: Option<&str>) -> Self {
        chosen
            .and_then(Self::parse)
            .unwrap_or_else(|| Self::from_telegram(code))
    }

    /// `en` or `ru`: what `/lang` takes and what PostgreSQL stores.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ru => "ru",
        }
    }

    /// The language for `en` or `ru` (any case); `None` otherwise.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(code.trim()))
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Self::En => &EN,
            Self::Ru => &RU,
        }
    }
}

/// The message `key` in `lang`. A key missing from the `.ftl` files shows as the key itself
/// (the test over the files and the code keeps that from happening).
pub fn tr(lang: Lang, key: &str) -> String {
    LOCALES.lookup(lang.id(), key)
}

/// The message `key` in `lang` with its placeables. Integers are formatted for the language
/// (grouped) and select plural forms; pass other numbers already formatted ([`dec`], [`pct`]).
pub fn tr_args(lang: Lang, key: &str, args: &[(&'static str, FluentValue<'static>)]) -> String {
    let args: HashMap<Cow<'static, str>, FluentValue<'static>> = args
        .iter()
        .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
        .collect();
    LOCALES.lookup_with_args(lang.id(), key, &args)
}

/// A message to be shown later in the reader's language: a key, its placeables, and the key
/// of a usage line to follow it (argument errors). Made with [`msg!`](crate::msg).
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    key: &'static str,
    args: Vec<(&'static str, FluentValue<'static>)>,
    usage: Option<&'static str>,
}

impl Msg {
    /// The message `key` with `args` (use [`msg!`](crate::msg)).
    pub fn new(key: &'static str, args: Vec<(&'static str, FluentValue<'static>)>) -> Self {
        Self {
            key,
            args,
            usage: None,
        }
    }

    /// The same message followed by "Usage: …" with the message `usage`.
    pub fn with_usage(mut self, usage: &'static str) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The message's key.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The text in `lang` (plain text, not HTML-escaped).
    pub fn render(&self, lang: Lang) -> String {
        let mut out = tr_args(lang, self.key, &self.args);
        if let Some(usage) = self.usage {
            let usage = tr(lang, usage);
            if out.is_empty() {
                out = tr_args(lang, "usage", &[("usage", FluentValue::from(usage))]);
            } else {
                out.push('\n');
                out.push_str(&tr_args(
                    lang,
                    "usage",
                    &[("usage", FluentValue::from(usage))],
                ));
            }
        }
        out
    }
}

/// A [`Msg`]: `msg!("key")` or `msg!("key", name = value, ...)`.
#[macro_export]
macro_rules! msg {
    ($key:literal $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::i18n::Msg::new(
            $key,
            vec![$((stringify!($name), $crate::i18n::FluentValue::from($value))),*],
        )
    };
}

/// A localised message: `t!(lang, "key")` or `t!(lang, "key", name = value, ...)`. Keys are
/// literals, so the test over `locales/` can find every key the code uses.
#[macro_export]
macro_rules! t {
    ($lang:expr, $key:literal) => {
        $crate::i18n::tr($lang, $key)
    };
    ($lang:expr, $key:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::tr_args(
            $lang,
            $key,
            &[$((stringify!($name), $crate::i18n::FluentValue::from($value))),+],
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_codes_map_to_the_two_languages() {
        for (code, lang) in [
            (Some("ru"), Lang::Ru),
            (Some("ru-RU"), Lang::Ru),
            (Some("uk"), Lang::Ru),
            (Some("be"), Lang::Ru),
            (Some("kk"), Lang::Ru),
            (Some("en"), Lang::En),
            (Some("en-US"), Lang::En),
            (Some("de"), Lang::En),
            (Some(""), Lang::En),
            (None, Lang::En),
        ] {
            assert_eq!(Lang::from_telegram(code), lang, "{code:?}");
        }
        assert_eq!(Lang::parse("RU"), Some(Lang::Ru));
        assert_eq!(Lang::parse("fr"), None);
    }

    #[test]
    fn russian_plurals_have_three_forms() {
        let channels = |n: i64| t!(Lang::Ru, "n-channels", count = n);
        let days = |n: i64| t!(Lang::Ru, "n-days", count = n);
        assert_eq!(channels(1), "1 канал");
        assert_eq!(channels(2), "2 канала");
        assert_eq!(channels(5), "5 каналов");
        assert_eq!(channels(11), "11 каналов");
        assert_eq!(channels(21), "21 канал");
        assert_eq!(channels(22), "22 канала");
        assert_eq!(days(1), "1 день");
        assert_eq!(days(2), "2 дня");
        assert_eq!(days(5), "5 дней");
        assert_eq!(days(11), "11 дней");
        assert_eq!(days(21), "21 день");
        assert_eq!(days(22), "22 дня");
        assert_eq!(t!(Lang::En, "n-channels", count = 1), "1 channel");
        assert_eq!(t!(Lang::En, "n-days", count = 21), "21 days");
        // Integers in placeables are grouped for the language.
        assert_eq!(
            t!(Lang::Ru, "n-channels", count = 82_781),
            "82\u{202f}781 канал"
        );
        assert_eq!(
            t!(Lang::En, "n-channels", count = 82_781),
            "82,781 channels"
        );
    }
}
