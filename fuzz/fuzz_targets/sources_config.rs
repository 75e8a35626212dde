//! The sources file, parsed and then built into sources: no panic, and the canary token never
//! appears in an error (`tgpulse::checks::sources_config`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tgpulse::checks::sources_config(&String::from_utf8_lossy(data));
});
