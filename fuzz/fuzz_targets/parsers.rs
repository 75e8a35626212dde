//! The bot's argument parsers and the domain types' `FromStr`: no panic, and `Display` then
//! parse gives back the same value (`tgpulse::checks::parsers`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tgpulse::checks::parsers(&String::from_utf8_lossy(data));
});
