//! HTTP plumbing shared by the HTTP sources: one reqwest client, GET with query parameters,
//! classification of transport failures and status codes, and the vendor JSON envelopes.
//!
//! Tokens can sit in URLs (Bot API paths, TGStat's `token` parameter), so no URL is ever put
//! into an error or a log line.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::SourceError;

/// A raw HTTP answer.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: bytes::Bytes,
}

/// One client per source: connection pool, user agent, and no redirects at all: the APIs never
/// redirect, and following one would send the token (in the path or query) to wherever the
/// `Location` points.
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("tgpulse/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("a client with rustls builds")
}

/// Sends `req` and reads the whole body. Transport failures become `Unavailable` or
/// `Timeout`, without the URL.
pub(super) async fn send(req: reqwest::RequestBuilder) -> Result<Answer, SourceError> {
    let transport = |e: reqwest::Error| {
        let e = e.without_url();
        if e.is_timeout() {
            SourceError::Timeout(Duration::ZERO)
        } else {
            SourceError::Unavailable(crate::error_chain(&e))
        }
    };
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(transport)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// `Retry-After: N` (seconds) if present.
pub(super) fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Parses JSON, naming what was expected on failure.
pub(super) fn json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, SourceError> {
    serde_json::from_slice(body).map_err(|e| SourceError::Malformed(format!("{what}: {e}")))
}

/// Deserialises the payload of an envelope, naming the payload on failure.
pub(super) fn payload<T: DeserializeOwned>(v: Value, what: &str) -> Result<T, SourceError> {
    serde_json::from_value(v).map_err(|e| SourceError::Malformed(format!("{what}: {e}")))
}

/// Classifies a status that carries no usable body (5xx, 429 without envelope).
pub(super) fn status_error(a: &Answer) -> Option<SourceError> {
    let s = a.status;
    if s == StatusCode::TOO_MANY_REQUESTS {
        return Some(SourceError::RateLimited(
            retry_after_header(&a.headers).unwrap_or(Duration::from_secs(10)),
        ));
    }
    if s.is_server_error() {
        return Some(SourceError::Unavailable(format!("HTTP {s}")));
    }
    if s.is_redirection() {
        // Not followed (see `client`); the Location is not shown: it may carry the token.
        return Some(SourceError::Rejected(format!(
            "HTTP {s}: the API answered with a redirect, which is not followed; check api_url"
        )));
    }
    None
}

/// TGStat/Telemetr envelope: `{"status":"ok","response":..}` or
/// `{"status":"error","error":"code"}`; errors may come with HTTP 200.
///
/// errors: `RateLimited` for `flood_control_N` (N seconds) and HTTP 429; `QuotaExhausted` for
/// `quota_*`; `Unauthorized` for token errors; `NotFound` for unknown channels and posts;
/// `Unavailable` for 5xx and `pending`; `Malformed` for anything that is not an envelope.
pub(super) fn vendor_envelope(a: &Answer, what: &str) -> Result<Value, SourceError> {
    if let Some(e) = status_error(a) {
        return Err(e);
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        status: String,
        #[serde(default)]
        response: Option<Value>,
        #[serde(default)]
        error: Option<String>,
    }
    let env: Envelope = json(&a.body, what)?;
    match env.status.as_str() {
        "ok" => env
            .response
            .ok_or_else(|| SourceError::Malformed(format!("{what}: status ok without response"))),
        "pending" => Err(SourceError::Unavailable(format!(
            "{what}: statistics are being prepared"
        ))),
        "error" => Err(vendor_error(env.error.as_deref().unwrap_or(""), a.status)),
        other => Err(SourceError::Malformed(format!(
            "{what}: unknown status {other:?}"
        ))),
    }
}

fn vendor_error(code: &str, status: StatusCode) -> SourceError {
    if let Some(secs) = code.strip_prefix("flood_control") {
        let secs = secs.trim_start_matches('_').parse().unwrap_or(10);
        return SourceError::RateLimited(Duration::from_secs(secs));
    }
    if code.starts_with("quota_") {
        return SourceError::QuotaExhausted(code.to_owned());
    }
    if code.starts_with("token_")
        || code.contains("unauthorized")
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
    {
        return SourceError::Unauthorized(code.to_owned());
    }
    if code.contains("not_found")
        || code.contains("wrong_channel")
        || status == StatusCode::NOT_FOUND
    {
        return SourceError::NotFound(code.to_owned());
    }
    SourceError::Rejected(if code.is_empty() {
        format!("HTTP {status}")
    } else {
        code.to_owned()
    })
}

/// The Telegram message number from a post link such as `t.me/name/123` or
/// `https://t.me/c/123456/789`.
pub(super) fn message_number(link: &str) -> Option<i64> {
    link.trim_end_matches('/').rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn envelope_errors_are_classified() {
        let e = |s, b| vendor_envelope(&answer(s, b), "x").unwrap_err();
        assert_eq!(
            e(200, r#"{"status":"error","error":"flood_control_60"}"#),
            SourceError::RateLimited(Duration::from_secs(60))
        );
        assert!(matches!(
            e(
                200,
                r#"{"status":"error","error":"quota_requests_reached"}"#
            ),
            SourceError::QuotaExhausted(_)
        ));
        assert!(matches!(
            e(200, r#"{"status":"error","error":"token_invalid"}"#),
            SourceError::Unauthorized(_)
        ));
        assert!(matches!(
            e(200, r#"{"status":"error","error":"channel_not_found"}"#),
            SourceError::NotFound(_)
        ));
        assert!(matches!(e(502, "<html>"), SourceError::Unavailable(_)));
        assert!(matches!(e(200, "{\"status\":"), SourceError::Malformed(_)));
    }

    #[test]
    fn message_numbers_come_from_links() {
        assert_eq!(message_number("t.me/pulse_news/1874"), Some(1874));
        assert_eq!(message_number("https://t.me/c/123/45/"), Some(45));
        assert_eq!(message_number("t.me/pulse_news"), None);
    }
}
