//! Every HTTP source's answers (status, headers, body) read as the source reads them: no
//! panic, and every error classified (`tgpulse::checks::http_answer`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tgpulse::collect::answers::ENDPOINTS;

#[derive(Debug, Arbitrary)]
struct Input {
    endpoint: u8,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let pairs: Vec<(&str, &str)> = ENDPOINTS
        .iter()
        .flat_map(|(s, eps)| eps.iter().map(move |e| (*s, *e)))
        .collect();
    let (source, endpoint) = pairs[usize::from(input.endpoint) % pairs.len()];
    tgpulse::checks::http_answer(source, endpoint, input.status, &input.headers, &input.body);
});
