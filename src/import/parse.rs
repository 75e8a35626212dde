//! Cell parsers shared by the import formats. Each returns a reason on failure; the caller
//! adds the row position and column name.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::reader::Field;
use crate::domain::ChannelId;

/// How a time column is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 / ISO 8601 with an offset, `T` or space between date and time.
    Auto,
    /// Unix seconds (integer or decimal).
    UnixSeconds,
    /// A chrono `strftime` pattern; without an offset in it, `naive_tz` must be given.
    Pattern(String),
}

/// Parses a non-negative count. Accepts integers, and floats or text with no fractional
/// part (`1505034921.0`), as real exports write ids and counts as floats.
pub(crate) fn count(f: Field<'_>) -> Result<Option<i64>, String> {
    let v = match f {
        Field::Null => return Ok(None),
        Field::Int(i) => i,
        Field::Float(x) => integral(x).ok_or_else(|| format!("not a whole number: {x}"))?,
        Field::Text(t) => {
            let t = t.trim();
            match t.parse::<i64>() {
                Ok(i) => i,
                Err(_) => t
                    .parse::<f64>()
                    .ok()
                    .and_then(integral)
                    .ok_or_else(|| format!("not a whole number: `{t}`"))?,
            }
        }
    };
    if v < 0 {
        return Err(format!("negative count: {v}"));
    }
    Ok(Some(v))
}

/// Unix seconds written as a float, to the microsecond.
///
/// errors (as text): NaN or infinite (a float cast would silently read them as 1970-01-01
/// or clamp them), or outside chrono's range.
fn unix_seconds(x: f64) -> Result<DateTime<Utc>, String> {
    if !x.is_finite() {
        return Err(format!("not unix seconds: {x}"));
    }
    let micros = (x * 1e6).round();
    // `as` saturates; anything at the edge of i64 is out of chrono's range anyway.
    if micros.abs() >= 9.2e18 {
        return Err(format!("unix time out of range: {x}"));
    }
    DateTime::from_timestamp_micros(micros as i64)
        .ok_or_else(|| format!("unix time out of range: {x}"))
}

fn integral(x: f64) -> Option<i64> {
    (x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64)
}

/// Parses a channel id (bare or Bot API `-100…` form, integer or float-written).
pub(crate) fn channel_id(f: Field<'_>) -> Result<Option<ChannelId>, String> {
    let raw = match f {
        Field::Null => return Ok(None),
        Field::Int(i) => i,
        Field::Float(x) => integral(x).ok_or_else(|| format!("not a channel id: {x}"))?,
        Field::Text(t) => {
            let t = t.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().and_then(integral))
                .ok_or_else(|| format!("not a channel id: `{t}`"))?
        }
    };
    ChannelId::new(raw).map(Some).map_err(|e| e.to_string())
}

/// Parses an instant.
///
/// errors (as text): unparseable value; a timestamp without a zone when no `naive_tz`.
pub(crate) fn instant(
    f: Field<'_>,
    fmt: &TimeFormat,
    naive_tz: Option<Tz>,
) -> Result<Option<DateTime<Utc>>, String> {
    let text = match f {
        Field::Null => return Ok(None),
        Field::Text(t) => t.trim(),
        Field::Int(i) if *fmt == TimeFormat::UnixSeconds => {
            return DateTime::from_timestamp(i, 0)
                .map(Some)
                .ok_or_else(|| format!("unix time out of range: {i}"));
        }
        Field::Float(x) if *fmt == TimeFormat::UnixSeconds => return unix_seconds(x).map(Some),
        Field::Int(i) => {
            return Err(format!(
                "expected a timestamp, found the number {i} (use --time-format unix)"
            ));
        }
        Field::Float(x) => {
            return Err(format!(
                "expected a timestamp, found the number {x} (use --time-format unix)"
            ));
        }
    };
    match fmt {
        TimeFormat::UnixSeconds => match text.parse::<i64>() {
            Ok(i) => DateTime::from_timestamp(i, 0)
                .map(Some)
                .ok_or_else(|| format!("unix time out of range: `{text}`")),
            Err(_) => {
                let x = text
                    .parse::<f64>()
                    .map_err(|_| format!("not unix seconds: `{text}`"))?;
                unix_seconds(x).map(Some)
            }
        },
        TimeFormat::Pattern(p) => {
            if let Ok(t) = DateTime::parse_from_str(text, p) {
                return Ok(Some(t.with_timezone(&Utc)));
            }
            let naive = NaiveDateTime::parse_from_str(text, p)
                .map_err(|e| format!("`{text}` does not match --time-format `{p}`: {e}"))?;
            localize(naive, naive_tz, text).map(Some)
        }
        TimeFormat::Auto => {
            if let Ok(t) = DateTime::parse_from_rfc3339(text) {
                return Ok(Some(t.with_timezone(&Utc)));
            }
            for p in [
                "%Y-%m-%d %H:%M:%S%.f%:z",
                "%Y-%m-%d %H:%M:%S%.f%#z",
                "%Y-%m-%dT%H:%M:%S%.f%#z",
            ] {
                if let Ok(t) = DateTime::parse_from_str(text, p) {
                    return Ok(Some(t.with_timezone(&Utc)));
                }
            }
            for p in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(naive) = NaiveDateTime::parse_from_str(text, p) {
                    return localize(naive, naive_tz, text).map(Some);
                }
            }
            Err(format!(
                "not a timestamp: `{text}` (expected e.g. 2021-03-17 01:17:20+00:00)"
            ))
        }
    }
}

fn localize(naive: NaiveDateTime, tz: Option<Tz>, text: &str) -> Result<DateTime<Utc>, String> {
    let tz = tz.ok_or_else(|| {
        format!("timestamp `{text}` has no time zone; pass --naive-tz ZONE to say which it is in")
    })?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("`{text}` does not exist in {tz} (DST gap)"))
}

/// Parses a yes/no cell: `1`/`0` (also written as floats), `true`/`false`, `t`/`f`,
/// `yes`/`no`, in any case. An empty cell is no.
///
/// errors (as text): any other value.
pub(crate) fn flag(f: Field<'_>) -> Result<bool, String> {
    match f {
        Field::Null | Field::Int(0) => Ok(false),
        Field::Int(1) => Ok(true),
        Field::Int(i) => Err(format!("not a yes/no value: {i}")),
        Field::Float(x) => match integral(x) {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(format!("not a yes/no value: {x}")),
        },
        Field::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "0.0" | "false" | "f" | "no" => Ok(false),
            "1" | "1.0" | "true" | "t" | "yes" => Ok(true),
            _ => Err(format!("not a yes/no value: `{}`", t.trim())),
        },
    }
}

/// Non-empty trimmed text.
pub(crate) fn text(f: Field<'_>) -> Option<String> {
    match f {
        Field::Text(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
        Field::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_float_written_integers_and_refuse_fractions() {
        assert_eq!(count(Field::Text("1505034921.0")), Ok(Some(1505034921)));
        assert_eq!(count(Field::Float(12.0)), Ok(Some(12)));
        assert_eq!(count(Field::Null), Ok(None));
        assert!(count(Field::Text("12.5")).is_err());
        assert!(count(Field::Text("-3")).is_err());
        assert!(count(Field::Text("abc")).is_err());
    }

    #[test]
    fn timestamps_need_a_zone_unless_one_is_given() {
        let t = instant(
            Field::Text("2021-03-17 01:17:20.354178+00:00"),
            &TimeFormat::Auto,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.to_rfc3339(), "2021-03-17T01:17:20.354178+00:00");
        let naive = Field::Text("2021-03-17 01:17:20");
        let err = instant(naive, &TimeFormat::Auto, None).unwrap_err();
        assert!(err.contains("no time zone"), "{err}");
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        let t = instant(naive, &TimeFormat::Auto, Some(moscow))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2021-03-16T22:17:20+00:00");
        let u = instant(Field::Int(1_600_000_000), &TimeFormat::UnixSeconds, None)
            .unwrap()
            .unwrap();
        assert_eq!(u.timestamp(), 1_600_000_000);
    }

    #[test]
    fn unix_time_refuses_nan_and_infinity_instead_of_reading_1970() {
        for cell in [
            Field::Float(f64::NAN),
            Field::Float(f64::INFINITY),
            Field::Float(f64::NEG_INFINITY),
            Field::Float(1e300),
            Field::Text("NaN"),
            Field::Text("nan"),
            Field::Text("inf"),
            Field::Text("-infinity"),
        ] {
            let got = instant(cell, &TimeFormat::UnixSeconds, None);
            assert!(got.is_err(), "{cell:?} gave {got:?}");
        }
        let t = instant(Field::Text("1616030000.5"), &TimeFormat::UnixSeconds, None)
            .unwrap()
            .unwrap();
        assert_eq!(t.timestamp_micros(), 1_616_030_000_500_000);
        let t = instant(Field::Text("1616030000"), &TimeFormat::UnixSeconds, None)
            .unwrap()
            .unwrap();
        assert_eq!(t.timestamp(), 1_616_030_000);
    }

    #[test]
    fn flags_accept_numbers_and_words_and_refuse_anything_else() {
        for yes in [
            Field::Int(1),
            Field::Float(1.0),
            Field::Text("1"),
            Field::Text(" True "),
            Field::Text("t"),
        ] {
            assert_eq!(flag(yes), Ok(true), "{yes:?}");
        }
        for no in [
            Field::Null,
            Field::Int(0),
            Field::Text("0"),
            Field::Text("false"),
            Field::Text(""),
        ] {
            assert_eq!(flag(no), Ok(false), "{no:?}");
        }
        for bad in [Field::Int(2), Field::Float(0.5), Field::Text("maybe")] {
            assert!(flag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn channel_ids_accept_bot_api_and_float_forms() {
        assert_eq!(
            channel_id(Field::Text("-1001363895234"))
                .unwrap()
                .unwrap()
                .get(),
            1363895234
        );
        assert_eq!(
            channel_id(Field::Text("1505034921.0"))
                .unwrap()
                .unwrap()
                .get(),
            1505034921
        );
        assert_eq!(
            channel_id(Field::Text("-1001505034921.0"))
                .unwrap()
                .unwrap()
                .get(),
            1505034921
        );
        assert_eq!(
            channel_id(Field::Float(1505034921.0))
                .unwrap()
                .unwrap()
                .get(),
            1505034921
        );
        assert!(channel_id(Field::Text("0")).is_err());
        assert!(channel_id(Field::Text("1505034921.5")).is_err());
    }
}
