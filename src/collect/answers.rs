//! How each HTTP source reads one answer (status, headers, body), without the network: the
//! entry point of the property tests and fuzz targets that check that no answer an upstream
//! can send panics a source, and that every failure is a classified [`SourceError`].

use std::sync::{Arc, OnceLock};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::botapi;
use super::http::Answer;
use super::vendor::{Flavor, Vendor};
use super::{Limits, LimitsConfig, SourceError};
use crate::config::Secret;

/// The endpoints each HTTP source reads, by source name.
pub const ENDPOINTS: &[(&str, &[&str])] = &[
    ("botapi", &["getChat", "getChatMemberCount"]),
    (
        "tgstat",
        &[
            "channels/get",
            "channels/stat",
            "channels/posts",
            "posts/stat",
            "usage/stat",
            "channels/mentions",
            "channels/forwards",
        ],
    ),
    (
        "telemetr",
        &["channels/get", "channels/stat", "channels/posts"],
    ),
];

/// Reads one answer of `source` (`botapi`, `tgstat`, `telemetr`) from `endpoint` as the
/// source does when it collects. A status outside 100-999 reads as 500; headers that are not
/// valid HTTP are left out, as a client would never see them.
///
/// errors: every failure as a `SourceError`; `SourceError::Rejected` for an unknown source.
pub fn read(
    source: &str,
    endpoint: &str,
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) -> Result<(), SourceError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            map.append(k, v);
        }
    }
    let answer = Answer {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers: map,
        body: bytes::Bytes::copy_from_slice(body),
    };
    match source {
        "botapi" => botapi::read_answer(&answer, endpoint),
        "tgstat" => vendors().0.read_answer(&answer, endpoint),
        "telemetr" => vendors().1.read_answer(&answer, endpoint),
        other => Err(SourceError::Rejected(format!("no HTTP source {other}"))),
    }
}

/// One TGStat and one Telemetr reader, built once (each holds an HTTP client it never uses).
fn vendors() -> &'static (Vendor, Vendor) {
    static VENDORS: OnceLock<(Vendor, Vendor)> = OnceLock::new();
    VENDORS.get_or_init(|| {
        let vendor = |flavor| {
            let limits = Arc::new(Limits::new("answers", &LimitsConfig::default()));
            Vendor::new(flavor, None, Secret::new("t"), limits, 0, None)
        };
        (vendor(Flavor::Tgstat), vendor(Flavor::Telemetr))
    })
}
