//! Telegram Bot API source: `getChat` resolves a handle, `getChatMemberCount` reads members.
//! Bots cannot read post views; this source collects members only.
//!
//! Calls are `GET {api_url}/bot{token}/{method}?chat_id=..`; answers are
//! `{"ok":true,"result":..}` or `{"ok":false,"error_code":N,"description":..,
//! "parameters":{"retry_after":S}}`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::http::{self, Answer};
use super::{ChannelInfo, Limits, Poll, SourceError, Target};
use crate::config::Secret;
use crate::domain::{ChannelId, Handle};
use crate::ingest::{ChannelSeen, MemberSample, Record};

/// Default Bot API server.
pub(super) const DEFAULT_URL: &str = "https://api.telegram.org";

/// The Bot API source.
#[derive(Debug)]
pub(super) struct BotApi {
    client: reqwest::Client,
    base: String,
    token: Secret,
    limits: Arc<Limits>,
}

#[derive(Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ReplyParameters>,
}

#[derive(Deserialize)]
struct ReplyParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

impl BotApi {
    pub(super) fn new(base: Option<&str>, token: Secret, limits: Arc<Limits>) -> Self {
        Self {
            client: http::client(),
            base: base.unwrap_or(DEFAULT_URL).trim_end_matches('/').to_owned(),
            token,
            limits,
        }
    }

    /// `@handle` when known (works for public channels), else the `-100…` id.
    fn chat_id(t: &Target) -> String {
        match &t.handle {
            Some(h) => format!("@{}", h.as_str()),
            None => (-1_000_000_000_000 - t.channel_id.get()).to_string(),
        }
    }

    async fn call(&self, method: &'static str, chat_id: &str) -> Result<Value, SourceError> {
        self.limits
            .call(method, || async {
                let url = format!("{}/bot{}/{method}", self.base, self.token.expose());
                let a = http::send(self.client.get(url).query(&[("chat_id", chat_id)])).await?;
                classify(&a, method)
            })
            .await
    }
}

/// Maps a Bot API answer to its `result` or a `SourceError`.
fn classify(a: &Answer, method: &str) -> Result<Value, SourceError> {
    if a.status.is_redirection() {
        return Err(http::status_error(a)
            .unwrap_or_else(|| SourceError::Rejected(format!("{method}: HTTP {}", a.status))));
    }
    let reply: Reply = match http::json(&a.body, method) {
        Ok(r) => r,
        // A proxy's HTML error page: judge by the status alone.
        Err(e) => return Err(http::status_error(a).unwrap_or(e)),
    };
    if reply.ok {
        return reply
            .result
            .ok_or_else(|| SourceError::Malformed(format!("{method}: ok without result")));
    }
    let code = reply.error_code.unwrap_or(a.status.as_u16());
    let desc = reply.description.unwrap_or_default();
    let retry_after = reply.parameters.and_then(|p| p.retry_after);
    Err(match code {
        429 => SourceError::RateLimited(Duration::from_secs(retry_after.unwrap_or(5))),
        401 | 403 if !desc.contains("chat not found") => SourceError::Unauthorized(desc),
        400 | 403 if desc.contains("chat not found") || desc.contains("not a member") => {
            SourceError::NotFound(desc)
        }
        c if c >= 500 => SourceError::Unavailable(format!("{code} {desc}")),
        _ => SourceError::Rejected(format!("{code} {desc}")),
    })
}

/// Reads an answer to `method` the way the source does: the envelope, then the payload
/// (`getChat`: a channel; otherwise a member count). For property tests and fuzzing.
///
/// errors: every failure as a classified `SourceError`.
pub(super) fn read_answer(a: &Answer, method: &str) -> Result<(), SourceError> {
    let v = classify(a, method)?;
    if method == "getChat" {
        return parse_chat(v, Utc::now()).map(|_| ());
    }
    member_count(&v).map(|_| ())
}

fn member_count(v: &Value) -> Result<i64, SourceError> {
    v.as_i64().ok_or_else(|| {
        SourceError::Malformed(format!("getChatMemberCount: result {v} is not an integer"))
    })
}

fn parse_chat(v: Value, now: DateTime<Utc>) -> Result<(ChannelInfo, ChannelSeen), SourceError> {
    let chat: Chat = http::payload(v, "getChat result")?;
    if chat.kind != "channel" {
        return Err(SourceError::NotFound(format!(
            "chat {} is a {}, not a channel",
            chat.id, chat.kind
        )));
    }
    let id = ChannelId::new(chat.id)
        .map_err(|_| SourceError::Malformed(format!("getChat: channel id {}", chat.id)))?;
    let handle: Option<Handle> = chat.username.and_then(|u| u.parse().ok());
    let info = ChannelInfo {
        channel_id: id,
        handle: handle.clone(),
        title: chat.title.clone(),
    };
    let seen = ChannelSeen {
        channel_id: id,
        handle,
        title: chat.title,
        seen_at: now,
    };
    Ok((info, seen))
}

#[async_trait]
impl Poll for BotApi {
    fn name(&self) -> &str {
        "botapi"
    }

    fn reads_posts(&self) -> bool {
        false
    }

    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError> {
        let v = self
            .call("getChat", &format!("@{}", handle.as_str()))
            .await?;
        Ok(parse_chat(v, Utc::now())?.0)
    }

    async fn members(&self, t: &Target) -> Result<Vec<Record>, SourceError> {
        let v = self.call("getChatMemberCount", &Self::chat_id(t)).await?;
        let observed_at = Utc::now();
        let members = member_count(&v)?;
        Ok(vec![Record::Member(MemberSample {
            channel_id: t.channel_id,
            observed_at,
            members,
            post_count: None,
        })])
    }

    async fn posts(&self, _t: &Target, _since: DateTime<Utc>) -> Result<Vec<Record>, SourceError> {
        Err(SourceError::Unsupported(
            "post counters (bots cannot read views; use mtproto, tgstat or telemetr)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Answer {
        let path = format!(
            "{}/tests/fixtures/sources/botapi/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(path).unwrap();
        let status: u16 = match name {
            "error_429.json" => 429,
            "error_chat_not_found.json" => 400,
            _ => 200,
        };
        Answer {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: body.into(),
        }
    }

    #[test]
    fn recorded_answers_map_to_channels_and_errors() {
        let v = classify(&fixture("getChat.json"), "getChat").unwrap();
        let (info, _) = parse_chat(v, Utc::now()).unwrap();
        assert_eq!(info.channel_id.get(), 1_735_260_148);
        assert_eq!(info.handle.unwrap().as_str(), "pulse_news");
        assert_eq!(info.title.as_deref(), Some("Pulse News"));
        let e = classify(&fixture("error_429.json"), "getChatMemberCount").unwrap_err();
        assert_eq!(e, SourceError::RateLimited(Duration::from_secs(3)));
        let e = classify(&fixture("error_chat_not_found.json"), "getChat").unwrap_err();
        assert!(matches!(e, SourceError::NotFound(_)), "{e:?}");
    }
}
