//! Domain types parsed at the edge: channel identity, handles, day windows.
//!
//! Everything that crosses a layer boundary is one of these types, never a bare
//! `i64` or `String`, so that a value reaching SQL has already been validated.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days as ChronoDays, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Error for a value that does not parse into a domain type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The text is not a Telegram channel id.
    #[error(
        "`{0}` is not a channel id: expected a positive integer such as 1363895234 or the Bot API form -1001363895234"
    )]
    ChannelId(String),
    /// The text is not a public channel handle.
    #[error(
        "`{0}` is not a channel handle: expected @name with 4-32 letters, digits or underscores, starting with a letter"
    )]
    Handle(String),
    /// The text is not a day count in range.
    #[error("`{0}` is not a number of days: expected an integer from 1 to 3650")]
    Days(String),
    /// The text is not an IANA time zone.
    #[error("`{0}` is not an IANA time zone name such as UTC or Europe/Moscow")]
    TimeZone(String),
}

/// Telegram channel identity: the bare positive channel id of MTProto
/// (the Bot API's `-100…` form is normalised to it). Handles and titles change; this does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ChannelId(i64);

impl ChannelId {
    /// Builds an id from an integer; `-100XXXXXXXXXX` (Bot API form) becomes `XXXXXXXXXX`.
    ///
    /// errors: `ParseError::ChannelId` for zero or other negative values.
    pub fn new(raw: i64) -> Result<Self, ParseError> {
        if raw > 0 {
            return Ok(Self(raw));
        }
        // Bot API: channel ids are -(10^12 + id).
        const BOT_API_OFFSET: i64 = 1_000_000_000_000;
        // Checked: `i64::MIN` has no positive counterpart and must be refused, not wrapped.
        if raw < -BOT_API_OFFSET
            && let Some(id) = raw
                .checked_neg()
                .and_then(|n| n.checked_sub(BOT_API_OFFSET))
        {
            return Ok(Self(id));
        }
        Err(ParseError::ChannelId(raw.to_string()))
    }

    /// The bare id, as stored in every relation's `channel_id` column.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ChannelId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw: i64 = s
            .trim()
            .parse()
            .map_err(|_| ParseError::ChannelId(s.to_owned()))?;
        Self::new(raw).map_err(|_| ParseError::ChannelId(s.to_owned()))
    }
}

/// A public channel handle (username), stored lower-case without the `@`.
///
/// Telegram usernames are 5-32 characters; a few old ones have 4, so 4 is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// The handle without `@`, lower-case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl FromStr for Handle {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let t = t.strip_prefix("https://t.me/").unwrap_or(t);
        let name = t.strip_prefix('@').unwrap_or(t);
        let ok = (4..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(Self(name.to_ascii_lowercase()))
        } else {
            Err(ParseError::Handle(s.to_owned()))
        }
    }
}

/// How a user names a channel: `@handle` or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelRef {
    /// A numeric channel id.
    Id(ChannelId),
    /// A handle; resolved through the handle history in `channel_names`.
    Handle(Handle),
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Handle(h) => write!(f, "{h}"),
        }
    }
}

impl FromStr for ChannelRef {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            return t.parse().map(Self::Id);
        }
        t.parse().map(Self::Handle)
    }
}

/// A window length in whole local days, 1..=3650.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(u32);

impl Days {
    /// errors: `ParseError::Days` outside 1..=3650.
    pub fn new(n: u32) -> Result<Self, ParseError> {
        if (1..=3650).contains(&n) {
            Ok(Self(n))
        } else {
            Err(ParseError::Days(n.to_string()))
        }
    }

    /// Number of days.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Days {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| ParseError::Days(s.to_owned()))?;
        Self::new(n).map_err(|_| ParseError::Days(s.to_owned()))
    }
}

/// Parses an IANA zone name (`UTC`, `Europe/Moscow`).
///
/// errors: `ParseError::TimeZone` for unknown names.
pub fn parse_tz(s: &str) -> Result<Tz, ParseError> {
    s.parse::<Tz>()
        .map_err(|_| ParseError::TimeZone(s.to_owned()))
}

/// A window of whole local days `[first, last]` in the reporting time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    /// First local day, inclusive.
    pub first: NaiveDate,
    /// Last local day, inclusive.
    pub last: NaiveDate,
    /// Reporting time zone the days are local to.
    pub tz: Tz,
}

impl DayWindow {
    /// The `days` local days ending with `last` (inclusive).
    pub fn ending(last: NaiveDate, days: Days, tz: Tz) -> Self {
        let first = last
            .checked_sub_days(ChronoDays::new(u64::from(days.get()) - 1))
            .unwrap_or(last);
        Self { first, last, tz }
    }

    /// Instant of local midnight starting `day` (the bucket start in `members_daily`).
    pub fn midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
        let naive = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        // A zone that skips midnight (DST at 00:00) starts the day at the first valid instant.
        match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => tz
                .from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
        }
    }

    /// Start instant, inclusive.
    pub fn start(&self) -> DateTime<Utc> {
        Self::midnight(self.tz, self.first)
    }

    /// End instant, exclusive: midnight after the last day.
    pub fn end(&self) -> DateTime<Utc> {
        Self::midnight(self.tz, self.last.succ_opt().unwrap_or(self.last))
    }

    /// Number of days in the window.
    pub fn len_days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }

    /// The local day an instant falls on.
    pub fn local_day(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&tz).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_api_channel_ids_are_normalised() {
        assert_eq!(ChannelId::new(-1001363895234).unwrap().get(), 1363895234);
        assert_eq!("1363895234".parse::<ChannelId>().unwrap().get(), 1363895234);
        assert!("-5".parse::<ChannelId>().is_err());
        // i64::MIN has no positive counterpart: refused, never wrapped or panicking.
        assert!(ChannelId::new(i64::MIN).is_err());
        assert!("-9223372036854775808".parse::<ChannelId>().is_err());
        assert_eq!(
            ChannelId::new(i64::MIN + 1).unwrap().get(),
            i64::MAX - 1_000_000_000_000
        );
        assert!("abc".parse::<ChannelId>().is_err());
    }

    #[test]
    fn handles_are_validated_and_lowercased() {
        assert_eq!("@Birds".parse::<Handle>().unwrap().as_str(), "birds");
        assert_eq!(
            "https://t.me/birdgifs".parse::<Handle>().unwrap().as_str(),
            "birdgifs"
        );
        assert!("@1abc".parse::<Handle>().is_err());
        assert!("@a-b-c".parse::<Handle>().is_err());
        assert!("@abc".parse::<Handle>().is_err());
    }

    #[test]
    fn channel_refs_accept_ids_and_handles() {
        assert!(matches!(
            "1152696623".parse::<ChannelRef>(),
            Ok(ChannelRef::Id(_))
        ));
        assert!(matches!(
            "@birds".parse::<ChannelRef>(),
            Ok(ChannelRef::Handle(_))
        ));
    }

    #[test]
    fn windows_cover_whole_local_days() {
        let tz = parse_tz("Europe/Moscow").unwrap();
        let last = NaiveDate::from_ymd_opt(2021, 7, 31).unwrap();
        let w = DayWindow::ending(last, Days::new(31).unwrap(), tz);
        assert_eq!(w.first, NaiveDate::from_ymd_opt(2021, 7, 1).unwrap());
        assert_eq!(w.len_days(), 31);
        assert_eq!(w.start().to_rfc3339(), "2021-06-30T21:00:00+00:00");
        assert_eq!(w.end().to_rfc3339(), "2021-07-31T21:00:00+00:00");
        assert!(Days::new(0).is_err());
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
