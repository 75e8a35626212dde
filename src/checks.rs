//! Properties that must hold for any input reaching tgpulse from outside, written once and run
//! twice: by the property tests of the normal suite (proptest, small budget) and by the fuzz
//! targets under `fuzz/` (long runs). Each function panics when its property is violated, and
//! a panic inside the code under test fails it the same way.

use std::path::Path;

use crate::bot::args;
use crate::catalog::SourceError;
use crate::collect::{self, SourcesConfig, answers};
use crate::domain::{ChannelId, ChannelRef, Days, Handle};

/// A value that must never appear in an error: put in every secret setting.
pub const CANARY: &str = "CANARY7f3a9";

/// The bot's argument parsers and the domain types' `FromStr` on any text: no panic, and for
/// every value that parses, `Display` then parse gives back the same value.
pub fn parsers(text: &str) {
    fn round_trip<T>(text: &str)
    where
        T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
    {
        if let Ok(v) = text.parse::<T>() {
            let shown = v.to_string();
            let again = shown.parse::<T>();
            assert!(
                again.as_ref().is_ok_and(|a| *a == v),
                "{text:?} parsed as {v:?}, shown as {shown:?}, which parses as {:?}",
                again.map_err(|_| "an error")
            );
        }
    }
    round_trip::<ChannelId>(text);
    round_trip::<Handle>(text);
    round_trip::<ChannelRef>(text);
    round_trip::<Days>(text);
    // Every error renders in every language (a placeable missing from a translation would
    // show as an error marker, caught by the .ftl test; here: no panic).
    let show = |e: crate::i18n::Msg| {
        for lang in crate::i18n::Lang::ALL {
            let _ = e.render(lang);
        }
    };
    let _ = args::stats(text).map_err(show);
    let _ = args::compare(text).map_err(show);
    let _ = args::export(text).map_err(show);
    let _ = args::user_id(text).map_err(show);
    let _ = args::handle(text).map_err(show);
    let _ = args::channel(text, "usage-stats").map_err(show);
    if let Ok(first) = "@durov".parse::<ChannelRef>() {
        let _ = args::compare_with(&first, text, Days::new(30).expect("in range")).map_err(show);
    }
}

/// A sources file: parsing it, then building each enabled source (except `mtproto`, which
/// would open a session file), never panics, and [`CANARY`] (the value of every token in the
/// file and in the environment) never appears in an error.
pub fn sources_config(text: &str) {
    let env = |_: &str| Some(CANARY.to_owned());
    let parsed = SourcesConfig::parse(text, Path::new("sources.toml"), env);
    let config = match parsed {
        Ok(c) => c,
        Err(e) => {
            assert_no_canary(&e.to_string(), text);
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for (name, cfg) in config.enabled() {
        if name == "mtproto" {
            continue;
        }
        if let Err(e) = runtime.block_on(collect::build(name, cfg)) {
            assert_no_canary(&e.to_string(), text);
        }
    }
}

fn assert_no_canary(shown: &str, input: &str) {
    assert!(
        !shown.contains(CANARY),
        "an error shows the secret: {shown:?} (input {input:?})"
    );
}

/// One answer of an HTTP source: reading it never panics, and where the status decides the
/// class, the error has it: a 3xx is rejected (never followed); for TGStat and Telemetr, whose
/// envelope comes after the status, a 429 is rate limited and a 5xx unavailable.
pub fn http_answer(
    source: &str,
    endpoint: &str,
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) {
    let Err(e) = answers::read(source, endpoint, status, headers, body) else {
        return;
    };
    let vendor = source != "botapi";
    match status {
        300..=399 => assert!(matches!(e, SourceError::Rejected(_)), "{status}: {e:?}"),
        429 if vendor => assert!(matches!(e, SourceError::RateLimited(_)), "{status}: {e:?}"),
        500..=599 if vendor => {
            assert!(matches!(e, SourceError::Unavailable(_)), "{status}: {e:?}")
        }
        _ => {}
    }
}

/// How [`import_file`] names the file it reads, which decides how it is decoded.
pub const IMPORT_KINDS: &[&str] = &["csv", "csv.gz", "parquet"];

/// Any bytes as an import file (`kind` picks `.csv`, `.csv.gz` or `.parquet` from
/// [`IMPORT_KINDS`]), with the automatic mapping or a generic one over the columns `mapping`
/// names: reading it never panics, whatever the bytes; malformed input is an error naming where.
pub fn import_file(kind: usize, data: &[u8], mapping: Option<(&str, &str, &str, bool)>) {
    use crate::import::{self, Format, ImportOptions, TimeFormat};
    let dir = tempfile::tempdir().expect("a temporary folder");
    let ext = IMPORT_KINDS[kind % IMPORT_KINDS.len()];
    let path = dir.path().join(format!("input.{ext}"));
    std::fs::write(&path, data).expect("write the input");
    let format = match mapping {
        None => Format::Auto,
        Some((entity, time, value, unix)) => Format::Generic {
            entity: entity.to_owned(),
            time: time.to_owned(),
            value: value.to_owned(),
            time_format: if unix {
                TimeFormat::UnixSeconds
            } else {
                TimeFormat::Auto
            },
        },
    };
    let opts = ImportOptions {
        format,
        skip_bad_rows: kind.is_multiple_of(2),
        reject_file: Some(dir.path().join("rejects.csv")),
        ..ImportOptions::default()
    };
    let _ = import::read_records(&path, &opts);
}
