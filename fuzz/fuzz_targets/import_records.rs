//! Any bytes as an import file (`.csv`, `.csv.gz` or `.parquet`), with the automatic mapping or
//! a generic one over arbitrary column names: no panic, bounded memory
//! (`tgpulse::checks::import_file`; run with `-rss_limit_mb=256`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    kind: u8,
    mapping: Option<(String, String, String, bool)>,
    data: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mapping = input
        .mapping
        .as_ref()
        .map(|(e, t, v, unix)| (e.as_str(), t.as_str(), v.as_str(), *unix));
    tgpulse::checks::import_file(usize::from(input.kind), &input.data, mapping);
});
