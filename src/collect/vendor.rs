//! TGStat and Telemetr: two analytics vendors with the same JSON envelope
//! (`{"status":"ok","response":..}`) and near-identical methods.
//!
//! - TGStat (`https://api.tgstat.ru`, `token` query parameter): `channels/get` (resolve),
//!   `channels/stat` (`participants_count`), `channels/posts` (views, `shares_count`,
//!   `comments_count`, `reactions_count`; post ids are TGStat's, the message number is in
//!   `link`), `posts/stat` (a post's current counters) and `usage/stat` (quota; tgpulse stops
//!   `quota_reserve` requests before the plan runs out). Once a day per channel, the posts job
//!   also reads `channels/mentions` and `channels/forwards` (other channels' posts that mention
//!   or forward it) and records them as mentions, together with the channel's own reposts.
//! - Telemetr (`https://api.telemetr.me`, `Authorization: Bearer`): `channels/get`,
//!   `channels/stat`, `channels/posts` (ids are message numbers). Its response bodies are not
//!   publicly documented; the field names follow TGStat's (see tests/fixtures/sources/README.md).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

mod incoming;

use super::http::{self, Answer};
use super::{ChannelInfo, Limits, Poll, SourceError, Target};
use crate::config::Secret;
use crate::domain::{ChannelId, Handle};
use crate::ingest::{ChannelSeen, MemberSample, Mention, MentionKind, PostSample, Record};

/// Which vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    Tgstat,
    Telemetr,
}

impl Flavor {
    pub(super) fn default_url(self) -> &'static str {
        match self {
            Flavor::Tgstat => "https://api.tgstat.ru",
            Flavor::Telemetr => "https://api.telemetr.me",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flavor::Tgstat => "tgstat",
            Flavor::Telemetr => "telemetr",
        }
    }
}

/// Posts per page of `channels/posts` (TGStat's maximum).
const PAGE: usize = 50;
/// Pages read per job at most (2,000 posts).
const MAX_PAGES: usize = 40;
/// How often the remaining quota is re-read while it looks sufficient.
const QUOTA_RECHECK: Duration = Duration::from_secs(3600);
/// How often it is re-read once tgpulse has stopped for lack of quota.
const QUOTA_RECHECK_EXHAUSTED: Duration = Duration::from_secs(600);
/// TGStat: how often a channel's incoming mentions and forwards are read (two requests, one
/// more per further page of 50).
const MENTIONS_EVERY: Duration = Duration::from_secs(24 * 3600);
/// TGStat: pages of `channels/mentions` and of `channels/forwards` read per channel at most
/// (200 items each).
const INCOMING_PAGES: usize = 4;

#[derive(Debug, Default)]
struct Quota {
    /// Requests left on the plan, as last read and counted down since.
    remaining: Option<i64>,
    checked: Option<Instant>,
}

/// A TGStat or Telemetr source.
#[derive(Debug)]
pub(super) struct Vendor {
    flavor: Flavor,
    client: reqwest::Client,
    base: String,
    token: Secret,
    limits: Arc<Limits>,
    /// TGStat: requests kept in reserve; 0 disables the quota check.
    quota_reserve: i64,
    /// TGStat: read each fresh post's counters with `posts/stat` (one request per post).
    post_details: Option<Duration>,
    quota: Mutex<Quota>,
    /// TGStat: read `channels/mentions` and `channels/forwards` of a channel at most this
    /// often; `None` never (Telemetr).
    mentions_every: Option<Duration>,
    /// When each channel's (by id) incoming mentions were last read, in this process.
    mentions_read: StdMutex<HashMap<i64, Instant>>,
    /// TGStat channel id → Telegram id and handle, from the channel lists of
    /// `channels/mentions` and `channels/forwards` (to name the source of a repost).
    known: StdMutex<HashMap<i64, Named>>,
}

/// A channel as TGStat named it: Telegram id and/or handle.
type Named = (Option<ChannelId>, Option<Handle>);

#[derive(Deserialize)]
struct ChannelObj {
    tg_id: Option<i64>,
    username: Option<String>,
    title: Option<String>,
    participants_count: Option<i64>,
}

#[derive(Deserialize)]
struct PostsPage {
    total_count: Option<i64>,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: i64,
    /// Publication time, unix seconds.
    date: i64,
    views: Option<i64>,
    shares_count: Option<i64>,
    comments_count: Option<i64>,
    reactions_count: Option<i64>,
    link: Option<String>,
    #[serde(default)]
    is_deleted: Value,
    /// TGStat: TGStat's id of the channel a repost comes from; `null` for other posts.
    #[serde(default)]
    forwarded_from: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostStat {
    views_count: i64,
    shares_count: Option<i64>,
    comments_count: Option<i64>,
    reactions_count: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    #[serde(default)]
    service_key: String,
    spent_requests: Option<String>,
}

impl Vendor {
    pub(super) fn new(
        flavor: Flavor,
        base: Option<&str>,
        token: Secret,
        limits: Arc<Limits>,
        quota_reserve: i64,
        post_details: Option<Duration>,
    ) -> Self {
        Self {
            flavor,
            client: http::client(),
            base: base
                .unwrap_or(flavor.default_url())
                .trim_end_matches('/')
                .to_owned(),
            token,
            limits,
            quota_reserve: if flavor == Flavor::Tgstat {
                quota_reserve
            } else {
                0
            },
            post_details,
            quota: Mutex::default(),
            mentions_every: (flavor == Flavor::Tgstat).then_some(MENTIONS_EVERY),
            mentions_read: StdMutex::default(),
            known: StdMutex::default(),
        }
    }

    /// The `channelId` parameter: `@name` for TGStat, `name` for Telemetr.
    fn channel_param(&self, h: &Handle) -> String {
        match self.flavor {
            Flavor::Tgstat => format!("@{}", h.as_str()),
            Flavor::Telemetr => h.as_str().to_owned(),
        }
    }

    /// A counted request: spends one request of the quota first.
    async fn get(
        &self,
        method: &'static str,
        query: &[(&str, String)],
    ) -> Result<Value, SourceError> {
        self.spend_quota().await?;
        self.request(method, query).await
    }

    async fn request(
        &self,
        method: &'static str,
        query: &[(&str, String)],
    ) -> Result<Value, SourceError> {
        self.limits
            .call(method, || async {
                let url = format!("{}/{method}", self.base);
                let mut req = self.client.get(url).query(query);
                req = match self.flavor {
                    Flavor::Tgstat => req.query(&[("token", self.token.expose())]),
                    Flavor::Telemetr => req.bearer_auth(self.token.expose()),
                };
                let a = http::send(req).await?;
                http::vendor_envelope(&a, method)
            })
            .await
    }

    /// Counts one request against the plan; refuses when only the reserve is left.
    async fn spend_quota(&self) -> Result<(), SourceError> {
        if self.quota_reserve <= 0 {
            return Ok(());
        }
        let mut q = self.quota.lock().await;
        let stale = |after: Duration| q.checked.is_none_or(|t| t.elapsed() >= after);
        let low = q.remaining.is_some_and(|r| r <= self.quota_reserve);
        if q.remaining.is_none() || stale(QUOTA_RECHECK) || (low && stale(QUOTA_RECHECK_EXHAUSTED))
        {
            q.remaining = Some(self.read_quota().await?);
            q.checked = Some(Instant::now());
        }
        let left = q.remaining.unwrap_or(0);
        if left <= self.quota_reserve {
            return Err(SourceError::QuotaExhausted(format!(
                "{left} requests left on the plan, {} kept in reserve",
                self.quota_reserve
            )));
        }
        q.remaining = Some(left - 1);
        Ok(())
    }

    /// Requests left on the Stat API plan, from `usage/stat` (`spentRequests: "spent/limit"`).
    async fn read_quota(&self) -> Result<i64, SourceError> {
        let v = self.request("usage/stat", &[]).await?;
        let plans: Vec<Usage> = http::payload(v, "usage/stat")?;
        let plan = plans
            .iter()
            .find(|u| u.service_key.starts_with("api_stat"))
            .or_else(|| plans.iter().find(|u| u.spent_requests.is_some()))
            .ok_or_else(|| SourceError::Malformed("usage/stat: no plan with requests".into()))?;
        parse_spent(plan.spent_requests.as_deref().unwrap_or(""))
    }

    fn to_post(
        &self,
        t: &Target,
        item: &Item,
        now: DateTime<Utc>,
    ) -> Result<PostSample, SourceError> {
        let post_id = match self.flavor {
            Flavor::Telemetr => item.id,
            // TGStat's `id` is its own; the message number is in the link.
            Flavor::Tgstat => item
                .link
                .as_deref()
                .and_then(http::message_number)
                .ok_or_else(|| {
                    SourceError::Malformed(format!(
                        "channels/posts: item {} has no t.me link with a message number",
                        item.id
                    ))
                })?,
        };
        let published_at = DateTime::from_timestamp(item.date, 0).ok_or_else(|| {
            SourceError::Malformed(format!("channels/posts: date {} out of range", item.date))
        })?;
        Ok(PostSample {
            channel_id: t.channel_id,
            post_id,
            published_at,
            observed_at: now,
            views: item.views,
            forwards: item.shares_count,
            replies: item.comments_count,
            reactions: item.reactions_count,
        })
    }

    /// Reads an answer from `endpoint` the way the source does: the envelope, then the
    /// payload's shape and values. For property tests and fuzzing.
    ///
    /// errors: every failure as a classified `SourceError`.
    pub(super) fn read_answer(&self, a: &Answer, endpoint: &str) -> Result<(), SourceError> {
        let v = http::vendor_envelope(a, endpoint)?;
        let now = Utc::now();
        let target = Target {
            channel_id: ChannelId::new(1).expect("a positive id"),
            handle: None,
        };
        match endpoint {
            "channels/get" | "channels/stat" => {
                let c: ChannelObj = http::payload(v, endpoint)?;
                if let Some(id) = c.tg_id {
                    ChannelId::new(id)
                        .map_err(|_| SourceError::Malformed(format!("tg_id {id}")))?;
                }
            }
            "channels/posts" => {
                let page: PostsPage = http::payload(v, endpoint)?;
                for item in &page.items {
                    self.to_post(&target, item, now)?;
                }
            }
            "posts/stat" => {
                let _: PostStat = http::payload(v, endpoint)?;
            }
            "channels/mentions" | "channels/forwards" => {
                let page: incoming::IncomingPage = http::payload(v, endpoint)?;
                incoming::incoming_records(&target, MentionKind::Mention, &page, &HashMap::new());
            }
            _ => {
                let plans: Vec<Usage> = http::payload(v, "usage/stat")?;
                for p in &plans {
                    if let Some(spent) = &p.spent_requests {
                        parse_spent(spent)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// TGStat `posts/stat`: the post's counters now.
    async fn post_stat(
        &self,
        tgstat_post_id: i64,
        sample: &mut PostSample,
    ) -> Result<(), SourceError> {
        let v = self
            .get("posts/stat", &[("postId", tgstat_post_id.to_string())])
            .await?;
        let s: PostStat = http::payload(v, "posts/stat")?;
        sample.observed_at = Utc::now();
        sample.views = Some(s.views_count);
        sample.forwards = s.shares_count.or(sample.forwards);
        sample.replies = s.comments_count.or(sample.replies);
        sample.reactions = s.reactions_count.or(sample.reactions);
        Ok(())
    }
}

/// An integer sent as a JSON number or a numeric string (TGStat sends ids both ways).
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Requests left from `spentRequests: "spent/limit"` (checked: an upstream may send any
/// integers).
///
/// errors: `SourceError::Malformed` unless two integers whose difference fits.
fn parse_spent(spent: &str) -> Result<i64, SourceError> {
    let parse = || -> Option<i64> {
        let (s, l) = spent.split_once('/')?;
        l.trim()
            .parse::<i64>()
            .ok()?
            .checked_sub(s.trim().parse::<i64>().ok()?)
    };
    parse().ok_or_else(|| {
        SourceError::Malformed(format!(
            "usage/stat: spentRequests {spent:?} is not spent/limit"
        ))
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() != Some(0),
        _ => false,
    }
}

#[async_trait]
impl Poll for Vendor {
    fn name(&self) -> &str {
        self.flavor.name()
    }

    fn reads_posts(&self) -> bool {
        true
    }

    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError> {
        let v = self
            .get("channels/get", &[("channelId", self.channel_param(handle))])
            .await?;
        let c: ChannelObj = http::payload(v, "channels/get")?;
        let id = c.tg_id.ok_or(SourceError::Unsupported(
            "resolving: this answer carries no Telegram channel id (tg_id); add the channel through botapi or mtproto",
        ))?;
        let channel_id = ChannelId::new(id)
            .map_err(|_| SourceError::Malformed(format!("channels/get: tg_id {id}")))?;
        Ok(ChannelInfo {
            channel_id,
            handle: c
                .username
                .and_then(|u| u.parse().ok())
                .or_else(|| Some(handle.clone())),
            title: c.title,
        })
    }

    async fn members(&self, t: &Target) -> Result<Vec<Record>, SourceError> {
        let h = t.require_handle()?;
        let v = self
            .get("channels/stat", &[("channelId", self.channel_param(h))])
            .await?;
        let observed_at = Utc::now();
        let c: ChannelObj = http::payload(v, "channels/stat")?;
        let members = c
            .participants_count
            .ok_or_else(|| SourceError::Malformed("channels/stat: no participants_count".into()))?;
        let mut out = vec![Record::Member(MemberSample {
            channel_id: t.channel_id,
            observed_at,
            members,
            post_count: None,
        })];
        if c.title.is_some() {
            out.push(Record::Channel(ChannelSeen {
                channel_id: t.channel_id,
                handle: c.username.and_then(|u| u.parse().ok()),
                title: c.title,
                seen_at: observed_at,
            }));
        }
        Ok(out)
    }

    async fn posts(&self, t: &Target, since: DateTime<Utc>) -> Result<Vec<Record>, SourceError> {
        let h = t.require_handle()?;
        let mut out = Vec::new();
        let mut offset = 0usize;
        let mut seen = HashSet::new();
        // TGStat: post id → message number of the posts listed, and the reposts among them
        // (message number, publication time, TGStat id of the source channel).
        let mut ours: HashMap<i64, i64> = HashMap::new();
        let mut reposts = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut q = vec![
                ("channelId", self.channel_param(h)),
                ("limit", PAGE.to_string()),
                ("offset", offset.to_string()),
            ];
            if self.flavor == Flavor::Tgstat {
                q.push(("startTime", since.timestamp().to_string()));
            }
            let v = self.get("channels/posts", &q).await?;
            let now = Utc::now();
            let page: PostsPage = http::payload(v, "channels/posts")?;
            let n = page.items.len();
            let mut older = false;
            let before = seen.len();
            seen.extend(page.items.iter().map(|i| i.id));
            // A server that ignores `offset` would repeat the page forever.
            if n > 0 && seen.len() == before {
                break;
            }
            for item in &page.items {
                if let Some(number) = item.link.as_deref().and_then(http::message_number) {
                    ours.insert(item.id, number);
                }
                if item.date < since.timestamp() {
                    older = true;
                    continue;
                }
                if truthy(&item.is_deleted) {
                    continue;
                }
                let mut sample = self.to_post(t, item, now)?;
                if let Some(fresh) = self.post_details
                    && self.flavor == Flavor::Tgstat
                    && (now - sample.published_at)
                        .to_std()
                        .is_ok_and(|age| age < fresh)
                {
                    self.post_stat(item.id, &mut sample).await?;
                }
                if let Some(from) = int(&item.forwarded_from) {
                    reposts.push((sample.post_id, sample.published_at, from));
                }
                out.push(Record::Post(sample));
            }
            offset += n;
            let total = page.total_count.map_or(i64::MAX, |t| t);
            // TGStat honours `limit`: a short page is the last one.
            let last = self.flavor == Flavor::Tgstat && n < PAGE;
            if n == 0 || older || last || offset as i64 >= total {
                break;
            }
        }
        if self.flavor == Flavor::Tgstat {
            out.extend(self.incoming(t, h, since, &ours).await);
            out.extend(self.reposts(t, &reposts));
        }
        Ok(out)
    }
}
