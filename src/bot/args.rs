//! Command arguments parsed into domain types. Every error is a reply the user can act on:
//! what was wrong and the right form.

use crate::domain::{ChannelRef, Days, Handle};
use crate::export::ExportFormat;
use crate::i18n::Msg;
use crate::msg;

/// Window of `/stats` and `/compare` without a days argument.
pub const DEFAULT_DAYS: u32 = 30;
/// Most channels in one `/compare`.
pub const MAX_COMPARE: usize = 10;

/// Usage lines shown with argument errors: the keys of their messages in `locales/`.
pub(super) const USAGE_STATS: &str = "usage-stats";
pub(super) const USAGE_COMPARE: &str = "usage-compare";
pub(super) const USAGE_EXPORT: &str = "usage-export";
pub(super) const USAGE_ADD: &str = "usage-add";
pub(super) const USAGE_REMOVE: &str = "usage-remove";
pub(super) const USAGE_GRANT: &str = "usage-grant";
pub(super) const USAGE_MENTIONS: &str = "usage-mentions";

/// `/stats` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsArgs {
    /// The channel.
    pub channel: ChannelRef,
    /// Window in local days.
    pub days: Days,
}

/// `/compare` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareArgs {
    /// 2..=10 distinct channels, in the order given.
    pub channels: Vec<ChannelRef>,
    /// Window in local days.
    pub days: Days,
}

/// What `/export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportWhat {
    /// `members_daily`: one row per local day.
    Members,
    /// `views_daily`: posts and views by publication day.
    Views,
    /// `post_reach`: one row per post.
    Posts,
    /// `member_samples`: every raw subscriber sample.
    Samples,
}

impl ExportWhat {
    /// The relation exported.
    pub fn relation(self) -> &'static str {
        match self {
            Self::Members => "members_daily",
            Self::Views => "views_daily",
            Self::Posts => "post_reach",
            Self::Samples => "member_samples",
        }
    }
}

/// `/export` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportArgs {
    /// The channel.
    pub channel: ChannelRef,
    /// Parquet unless `csv` is given.
    pub format: ExportFormat,
    /// The last `days` local days with data; `None` for everything.
    pub days: Option<Days>,
    /// Which relation.
    pub what: ExportWhat,
}

fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect()
}

/// A channel as the bot accepts it: `@handle`, `handle`, `t.me/handle` or a numeric id.
///
/// errors: a reply naming the bad word and the right form (`usage`: the key of the usage line).
pub fn channel(word: &str, usage: &'static str) -> Result<ChannelRef, Msg> {
    let w = word.trim();
    let w = w.strip_prefix("t.me/").unwrap_or(w);
    w.parse::<ChannelRef>()
        .map_err(|_| msg!("arg-not-a-channel", word = clip(word)).with_usage(usage))
}

/// A handle only (for `/add`, which resolves through a source).
///
/// errors: a reply naming the bad word and the right form.
pub fn handle(args: &str) -> Result<Handle, Msg> {
    match words(args).as_slice() {
        [one] => one
            .parse::<Handle>()
            .map_err(|_| msg!("arg-not-a-handle", word = clip(one)).with_usage(USAGE_ADD)),
        [] => Err(msg!("arg-which-channel").with_usage(USAGE_ADD)),
        _ => Err(msg!("arg-one-channel").with_usage(USAGE_ADD)),
    }
}

fn days(word: &str, usage: &'static str) -> Result<Days, Msg> {
    let w = word.trim_end_matches(['d', 'D']);
    w.parse::<Days>()
        .map_err(|_| msg!("arg-not-days", word = clip(word)).with_usage(usage))
}

fn default_days() -> Days {
    Days::new(DEFAULT_DAYS).expect("DEFAULT_DAYS is in 1..=3650")
}

fn looks_numeric(w: &str) -> bool {
    w.trim_end_matches(['d', 'D'])
        .chars()
        .all(|c| c.is_ascii_digit())
        && !w.is_empty()
}

/// `@channel [days]` (`/stats`).
///
/// errors: a reply with the usage.
pub fn stats(args: &str) -> Result<StatsArgs, Msg> {
    channel_and_days(args, USAGE_STATS)
}

/// `@channel [days]` (`/mentions`), [`DEFAULT_DAYS`] without days.
///
/// errors: a reply with the usage of `/mentions`.
pub fn mentions(args: &str) -> Result<StatsArgs, Msg> {
    channel_and_days(args, USAGE_MENTIONS)
}

/// `@channel [days]`, errors followed by the usage line `usage`.
fn channel_and_days(args: &str, usage: &'static str) -> Result<StatsArgs, Msg> {
    let w = words(args);
    let (ch, d) = match w.as_slice() {
        [] => return Err(msg!("arg-which-channel").with_usage(usage)),
        [c] => (*c, None),
        [c, d] => (*c, Some(*d)),
        _ => return Err(msg!("arg-too-many").with_usage(usage)),
    };
    Ok(StatsArgs {
        channel: channel(ch, usage)?,
        days: match d {
            Some(d) => days(d, usage)?,
            None => default_days(),
        },
    })
}

/// `@a @b .. [days]`: the last word is the window when it is a number of days. Numeric
/// channel ids are long negative or positive numbers; days are at most 4 digits, so a
/// trailing `-100…` id is never taken for days.
///
/// errors: a reply with the usage.
pub fn compare(args: &str) -> Result<CompareArgs, Msg> {
    let mut w = words(args);
    let mut d = default_days();
    if let Some(last) = w.last()
        && looks_numeric(last)
        && last.trim_end_matches(['d', 'D']).len() <= 4
    {
        d = days(last, USAGE_COMPARE)?;
        w.pop();
    }
    let mut channels: Vec<ChannelRef> = Vec::with_capacity(w.len());
    for word in w {
        let c = channel(word, USAGE_COMPARE)?;
        if !channels.contains(&c) {
            channels.push(c);
        }
    }
    if channels.len() < 2 {
        return Err(msg!("arg-compare-too-few").with_usage(USAGE_COMPARE));
    }
    if channels.len() > MAX_COMPARE {
        return Err(msg!(
            "arg-compare-too-many",
            most = MAX_COMPARE,
            given = channels.len()
        )
        .with_usage(USAGE_COMPARE));
    }
    Ok(CompareArgs { channels, days: d })
}

/// The reply to "Compare with…": `@b @c .. [days]`, compared with `first` over `days` unless
/// the reply names another window.
///
/// errors: a reply with the usage.
pub fn compare_with(first: &ChannelRef, text: &str, days: Days) -> Result<CompareArgs, Msg> {
    let names_days = words(text)
        .last()
        .is_some_and(|w| looks_numeric(w) && w.trim_end_matches(['d', 'D']).len() <= 4);
    let mut a = compare(&format!("{first} {text}"))?;
    if !names_days {
        a.days = days;
    }
    Ok(a)
}

/// `@channel [parquet|csv] [days] [members|views|posts|samples]`, options in any order.
///
/// errors: a reply with the usage.
pub fn export(args: &str) -> Result<ExportArgs, Msg> {
    let w = words(args);
    let Some((first, rest)) = w.split_first() else {
        return Err(msg!("arg-which-channel").with_usage(USAGE_EXPORT));
    };
    let mut out = ExportArgs {
        channel: channel(first, USAGE_EXPORT)?,
        format: ExportFormat::Parquet,
        days: None,
        what: ExportWhat::Members,
    };
    for word in rest {
        match word.to_ascii_lowercase().as_str() {
            "parquet" => out.format = ExportFormat::Parquet,
            "csv" => out.format = ExportFormat::Csv,
            "members" => out.what = ExportWhat::Members,
            "views" => out.what = ExportWhat::Views,
            "posts" => out.what = ExportWhat::Posts,
            "samples" => out.what = ExportWhat::Samples,
            "all" => out.days = None,
            w if looks_numeric(w) => out.days = Some(days(w, USAGE_EXPORT)?),
            _ => {
                return Err(msg!("arg-unknown-word", word = clip(word)).with_usage(USAGE_EXPORT));
            }
        }
    }
    Ok(out)
}

/// A Telegram user id for `/grant` and `/revoke`.
///
/// errors: a reply with the usage.
pub fn user_id(args: &str) -> Result<u64, Msg> {
    match words(args).as_slice() {
        [one] => one
            .parse::<u64>()
            .ok()
            .filter(|&id| id > 0 && i64::try_from(id).is_ok())
            .ok_or_else(|| msg!("arg-not-a-user", word = clip(one)).with_usage(USAGE_GRANT)),
        _ => Err(msg!("arg-none").with_usage(USAGE_GRANT)),
    }
}

/// At most 40 characters of user input, for echoing it back.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    /// The errors as an English reader sees them.
    fn stats(a: &str) -> Result<StatsArgs, String> {
        super::stats(a).map_err(|e| e.render(Lang::En))
    }
    fn mentions(a: &str) -> Result<StatsArgs, String> {
        super::mentions(a).map_err(|e| e.render(Lang::En))
    }
    fn compare(a: &str) -> Result<CompareArgs, String> {
        super::compare(a).map_err(|e| e.render(Lang::En))
    }
    fn export(a: &str) -> Result<ExportArgs, String> {
        super::export(a).map_err(|e| e.render(Lang::En))
    }
    fn handle(a: &str) -> Result<Handle, String> {
        super::handle(a).map_err(|e| e.render(Lang::En))
    }
    fn user_id(a: &str) -> Result<u64, String> {
        super::user_id(a).map_err(|e| e.render(Lang::En))
    }
    fn compare_with(f: &ChannelRef, t: &str, d: Days) -> Result<CompareArgs, String> {
        super::compare_with(f, t, d).map_err(|e| e.render(Lang::En))
    }

    fn h(s: &str) -> ChannelRef {
        ChannelRef::Handle(s.parse().unwrap())
    }

    #[test]
    fn stats_takes_a_channel_and_optional_days() {
        let a = stats("@Durov 90").unwrap();
        assert_eq!(a.channel, h("durov"));
        assert_eq!(a.days.get(), 90);
        assert_eq!(stats("t.me/durov").unwrap().days.get(), DEFAULT_DAYS);
        assert_eq!(stats("@durov 7d").unwrap().days.get(), 7);
        assert_eq!(
            stats("-1001234567890").unwrap().channel.to_string(),
            "1234567890"
        );
    }

    #[test]
    fn stats_errors_say_what_is_wrong_and_show_the_form() {
        let e = stats("").unwrap_err();
        assert!(
            e.contains("Which channel") && e.contains("/stats @channel [days]"),
            "{e}"
        );
        let e = stats("@durov 0").unwrap_err();
        assert!(e.contains("“0” is not a number of days"), "{e}");
        let e = stats("@durov 99999").unwrap_err();
        assert!(e.contains("1 to 3650"), "{e}");
        let e = stats("@a;drop 30").unwrap_err();
        assert!(e.contains("“@a;drop” is not a channel"), "{e}");
        let e = stats("@durov 30 extra").unwrap_err();
        assert!(e.contains("Too many"), "{e}");
        let long = "x".repeat(500);
        assert!(
            stats(&long).unwrap_err().chars().count() < 300,
            "input is clipped"
        );
    }

    #[test]
    fn mentions_takes_a_channel_and_optional_days_and_shows_its_own_usage() {
        let a = mentions("@Durov").unwrap();
        assert_eq!((a.channel, a.days.get()), (h("durov"), DEFAULT_DAYS));
        assert_eq!(mentions("t.me/durov 7d").unwrap().days.get(), 7);
        let e = mentions("").unwrap_err();
        assert!(
            e.contains("Which channel") && e.contains("/mentions @channel [days]"),
            "{e}"
        );
        let e = mentions("@durov soon").unwrap_err();
        assert!(
            e.contains("“soon” is not a number of days") && e.contains("Usage: /mentions"),
            "{e}"
        );
        assert!(mentions("@a;b").unwrap_err().contains("is not a channel"));
        assert!(mentions("@durov 30 more").unwrap_err().contains("Too many"));
    }

    #[test]
    fn compare_needs_two_to_ten_distinct_channels() {
        let a = compare("@a_chan @b_chan, @c_chan 365").unwrap();
        assert_eq!(a.channels.len(), 3);
        assert_eq!(a.days.get(), 365);
        assert_eq!(compare("@a_chan @b_chan").unwrap().days.get(), DEFAULT_DAYS);
        // A trailing numeric id is a channel, not days.
        let a = compare("@a_chan -1001234567890").unwrap();
        assert_eq!(a.channels.len(), 2);
        assert!(
            compare("@a_chan @a_chan")
                .unwrap_err()
                .contains("at least 2")
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("@chan_{i}")).collect();
        assert!(
            compare(&eleven.join(" "))
                .unwrap_err()
                .contains("At most 10")
        );
        assert!(compare("@a_chan @b_chan 0").unwrap_err().contains("days"));
    }

    #[test]
    fn export_options_come_in_any_order() {
        let a = export("@durov csv 90 views").unwrap();
        assert_eq!(a.format, ExportFormat::Csv);
        assert_eq!(a.days.map(Days::get), Some(90));
        assert_eq!(a.what, ExportWhat::Views);
        let a = export("@durov").unwrap();
        assert_eq!(
            (a.format, a.days, a.what),
            (ExportFormat::Parquet, None, ExportWhat::Members)
        );
        assert!(export("@durov xlsx").unwrap_err().contains("“xlsx”"));
    }

    #[test]
    fn handles_and_user_ids() {
        assert_eq!(handle("@Durov").unwrap().as_str(), "durov");
        assert!(handle("@a b").unwrap_err().contains("One channel"));
        assert!(
            handle("12345")
                .unwrap_err()
                .contains("not a channel handle")
        );
        assert_eq!(user_id("123456789").unwrap(), 123_456_789);
        assert!(user_id("-5").is_err() && user_id("0").is_err() && user_id("").is_err());
        assert!(user_id("18446744073709551615").is_err(), "beyond i64");
    }

    #[test]
    fn a_compare_with_reply_keeps_the_window_unless_it_names_one() {
        let first = h("birblife");
        let d = Days::new(90).unwrap();
        let a = compare_with(&first, "@cats_cats", d).unwrap();
        assert_eq!((a.channels.len(), a.days.get()), (2, 90));
        assert_eq!(a.channels[0], first);
        let a = compare_with(&first, "@cats_cats @dogpics 7", d).unwrap();
        assert_eq!((a.channels.len(), a.days.get()), (3, 7));
        assert!(
            compare_with(&first, "", d)
                .unwrap_err()
                .contains("at least 2")
        );
    }
}
