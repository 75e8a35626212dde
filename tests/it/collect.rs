//! Collectors against local fake HTTP servers (wiremock on 127.0.0.1) answering with the
//! documented response shapes (tests/fixtures/sources): happy paths, 429/FLOOD, 5xx,
//! timeouts, malformed bodies, unknown channels, quota.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tgpulse::catalog::{self, ChannelInfo, Shard, SourceError};
use tgpulse::collect::{self, CollectSummary, Collector, LimitsConfig, SourceConfig};
use tgpulse::config::{IngestConfig, Secret};
use tgpulse::domain::ChannelId;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::TestDb;

pub(crate) const BOT: &str = "/bot123:abc";

pub(crate) fn fixture(rel: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/sources/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Limits that make failure tests quick: short timeout, short backoff, a 3 s deadline.
pub(crate) fn fast_limits() -> LimitsConfig {
    LimitsConfig {
        requests_per_second: 1000.0,
        burst: 100,
        timeout: Duration::from_millis(500),
        retry_deadline: Duration::from_secs(3),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        breaker_failures: 50,
        breaker_cooldown: Duration::from_secs(60),
    }
}

pub(crate) fn source(url: &str, token: &str) -> SourceConfig {
    SourceConfig {
        api_url: Some(url.to_owned()),
        token: Some(Secret::new(token)),
        limits: fast_limits(),
        quota_reserve: 0,
        ..SourceConfig::default()
    }
}

pub(crate) async fn watch_channel(t: &TestDb, id: i64, handle: &str) {
    let info = ChannelInfo {
        channel_id: ChannelId::new(id).unwrap(),
        handle: Some(handle.parse().unwrap()),
        title: None,
    };
    catalog::add(&t.db, &info, None).await.unwrap();
}

pub(crate) fn ingest_cfg() -> IngestConfig {
    IngestConfig {
        batch_max_age_ms: 50,
        ..IngestConfig::default()
    }
}

async fn run_once(t: &TestDb, s: Arc<dyn Collector>) -> CollectSummary {
    collect_once(&t.db, s, &ingest_cfg()).await
}

/// Runs one source once into `db` and returns the summary.
pub(crate) async fn collect_once(
    db: &tgpulse::db::Db,
    s: Arc<dyn Collector>,
    cfg: &IngestConfig,
) -> CollectSummary {
    collect::collect(
        db,
        vec![s],
        cfg,
        Shard::default(),
        true,
        CancellationToken::new(),
    )
    .await
    .expect("collect")
}

fn report(s: &CollectSummary) -> &collect::RunReport {
    s.sources[0].1.as_ref().expect("source ran")
}

async fn members_of(t: &TestDb, id: i64) -> Vec<i64> {
    t.client()
        .await
        .query(
            "SELECT members FROM member_samples WHERE channel_id = $1 ORDER BY observed_at",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn bot_ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": result}))
}

#[tokio::test]
async fn botapi_resolves_a_handle_and_collects_members() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BOT}/getChat")))
        .and(query_param("chat_id", "@pulse_news"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("botapi/getChat.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BOT}/getChatMemberCount")))
        .and(query_param("chat_id", "@pulse_news"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("botapi/getChatMemberCount.json")),
        )
        .mount(&server)
        .await;
    let src = collect::build("botapi", &source(&server.uri(), "123:abc"))
        .await
        .unwrap();
    let info = src.resolve(&"@Pulse_News".parse().unwrap()).await.unwrap();
    assert_eq!(info.channel_id.get(), 1_735_260_148);
    assert_eq!(info.title.as_deref(), Some("Pulse News"));
    assert!(catalog::add(&t.db, &info, Some(42)).await.unwrap());
    assert!(
        !catalog::add(&t.db, &info, Some(42)).await.unwrap(),
        "second add is a no-op"
    );

    let s = run_once(&t, src).await;
    assert_eq!(report(&s).jobs_ok, 1);
    assert_eq!(members_of(&t, 1_735_260_148).await, vec![12345]);
    assert_eq!(
        t.count(
            "SELECT count(*) FROM members_daily WHERE channel_id = 1735260148 AND members = 12345"
        )
        .await,
        1,
        "the daily relation is refreshed in the batch"
    );
    let status: (i64, i64) = {
        let r = t
            .client()
            .await
            .query_one(
                "SELECT jobs_ok, samples FROM source_status WHERE source = 'botapi'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, (1, 1));

    // An unknown handle is a clear NotFound.
    Mock::given(path(format!("{BOT}/getChat")))
        .and(query_param("chat_id", "@nosuchchan"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(fixture("botapi/error_chat_not_found.json")),
        )
        .mount(&server)
        .await;
    let src = collect::build("botapi", &source(&server.uri(), "123:abc"))
        .await
        .unwrap();
    let e = src
        .resolve(&"nosuchchan".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn botapi_honours_429_retry_after() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    let url = format!("{BOT}/getChatMemberCount");
    Mock::given(path(&url))
        .respond_with(ResponseTemplate::new(429).set_body_json(fixture("botapi/error_429.json")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(&url))
        .respond_with(bot_ok(json!(777)))
        .with_priority(2)
        .mount(&server)
        .await;
    watch_channel(&t, 1001, "chan_one").await;
    let mut cfg = source(&server.uri(), "123:abc");
    cfg.limits.retry_deadline = Duration::from_secs(10);
    let src = collect::build("botapi", &cfg).await.unwrap();
    let started = Instant::now();
    let s = run_once(&t, src).await;
    let waited = started.elapsed();
    assert_eq!(report(&s).jobs_ok, 1);
    assert_eq!(members_of(&t, 1001).await, vec![777]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert!(
        waited >= Duration::from_secs(3),
        "retry_after 3 s was honoured, waited {waited:?}"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_gives_up_at_once() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    Mock::given(path(format!("{BOT}/getChatMemberCount")))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "ok": false, "error_code": 429,
            "description": "Too Many Requests: retry after 3600",
            "parameters": {"retry_after": 3600}})))
        .mount(&server)
        .await;
    watch_channel(&t, 1001, "chan_one").await;
    let src = collect::build("botapi", &source(&server.uri(), "123:abc"))
        .await
        .unwrap();
    let s = run_once(&t, src).await;
    assert_eq!(report(&s).jobs_failed, 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn botapi_5xx_opens_the_circuit_breaker() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    Mock::given(path(format!("{BOT}/getChatMemberCount")))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .mount(&server)
        .await;
    for i in 0..6 {
        watch_channel(&t, 2000 + i, &format!("chan_{i}")).await;
    }
    let mut cfg = source(&server.uri(), "123:abc");
    cfg.limits.breaker_failures = 3;
    cfg.schedule.concurrency = 1;
    let src = collect::build("botapi", &cfg).await.unwrap();
    let s = run_once(&t, src).await;
    assert_eq!(report(&s).jobs_failed, 6);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        3,
        "after 3 failures the breaker refuses every further call"
    );
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 0);
    let err: String = t
        .client()
        .await
        .query_one(
            "SELECT last_error FROM source_status WHERE source = 'botapi'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(err.contains("circuit open") || err.contains("502"), "{err}");
}

#[tokio::test]
async fn a_timeout_or_malformed_body_skips_only_that_channel() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    let url = format!("{BOT}/getChatMemberCount");
    Mock::given(path(&url))
        .and(query_param("chat_id", "@slow_chan"))
        .respond_with(bot_ok(json!(1)).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(path(&url))
        .and(query_param("chat_id", "@broken_chan"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"ok\":true,\"result\":"))
        .mount(&server)
        .await;
    Mock::given(path(&url))
        .and(query_param("chat_id", "@wrong_type"))
        .respond_with(bot_ok(json!("many")))
        .mount(&server)
        .await;
    Mock::given(path(&url))
        .and(query_param("chat_id", "@good_chan"))
        .respond_with(bot_ok(json!(4242)))
        .mount(&server)
        .await;
    watch_channel(&t, 3001, "slow_chan").await;
    watch_channel(&t, 3002, "broken_chan").await;
    watch_channel(&t, 3003, "wrong_type").await;
    watch_channel(&t, 3004, "good_chan").await;
    let mut cfg = source(&server.uri(), "123:abc");
    cfg.limits.timeout = Duration::from_millis(200);
    cfg.limits.retry_deadline = Duration::from_millis(600);
    let src = collect::build("botapi", &cfg).await.unwrap();
    let s = run_once(&t, src).await;
    let r = report(&s);
    assert_eq!((r.jobs_ok, r.jobs_failed), (1, 3));
    assert_eq!(members_of(&t, 3004).await, vec![4242]);
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 1);
}

/// Fixture posts re-dated to `ages_h` hours before now (the fixtures carry 2025 dates).
fn redated(rel: &str, ages_h: &[i64]) -> Value {
    let mut v = fixture(rel);
    let items = v["response"]["items"].as_array_mut().unwrap();
    for (item, age) in items.iter_mut().zip(ages_h) {
        item["date"] = json!(Utc::now().timestamp() - age * 3600);
    }
    v
}

async fn post_rows(t: &TestDb) -> Vec<(i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>)> {
    t.client()
        .await
        .query(
            "SELECT post_id, views, forwards, replies, reactions FROM post_samples ORDER BY post_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

#[tokio::test]
async fn tgstat_collects_members_and_posts_and_honours_flood_control() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    let tok = || query_param("token", "tg-secret");
    Mock::given(path("/channels/get"))
        .and(tok())
        .and(query_param("channelId", "@pulse_news"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("tgstat/channels_get.json")))
        .mount(&server)
        .await;
    Mock::given(path("/channels/stat"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("tgstat/error_flood_control.json")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/channels/stat"))
        .and(tok())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("tgstat/channels_stat.json")),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path("/channels/posts"))
        .and(tok())
        .and(query_param("limit", "50"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(redated("tgstat/channels_posts.json", &[2, 30, 50])),
        )
        .mount(&server)
        .await;
    Mock::given(path("/posts/stat"))
        .and(query_param("postId", "61834519327"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("tgstat/posts_stat.json")))
        .mount(&server)
        .await;
    Mock::given(path("/usage/stat"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("tgstat/usage_stat.json")))
        .mount(&server)
        .await;

    let mut cfg = source(&server.uri(), "tg-secret");
    cfg.quota_reserve = 100;
    cfg.post_details = true;
    cfg.schedule.fresh_for = Duration::from_secs(24 * 3600);
    // The first stat call is refused with flood_control_60, a pause beyond this deadline.
    cfg.limits.retry_deadline = Duration::from_secs(5);
    let src = collect::build("tgstat", &cfg).await.unwrap();
    let info = src.resolve(&"pulse_news".parse().unwrap()).await.unwrap();
    assert_eq!(
        info.channel_id.get(),
        1_735_260_148,
        "tg_id, not TGStat's own id"
    );
    catalog::add(&t.db, &info, None).await.unwrap();

    let s = run_once(&t, src).await;
    let r = report(&s);
    // members: flood_control_60 exceeds the 5 s deadline, so that job gives up at once and
    // is retried at its next due time; posts go on.
    assert_eq!((r.jobs_ok, r.jobs_failed), (1, 1));
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 0);
    // Post 1872 is deleted and skipped; 1874 is fresh and read with posts/stat.
    assert_eq!(
        post_rows(&t).await,
        vec![
            (1873, Some(4987), Some(37), Some(22), Some(148)),
            (1874, Some(5012), Some(38), Some(22), Some(151)),
        ]
    );
    let usage = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/usage/stat")
        .count();
    assert_eq!(
        usage, 1,
        "the quota is read once, then counted down locally"
    );

    // Second round: the flood window has passed (the mock answers normally now).
    let src = collect::build("tgstat", &cfg).await.unwrap();
    let s = run_once(&t, src).await;
    assert_eq!(report(&s).jobs_ok, 2);
    assert_eq!(members_of(&t, 1_735_260_148).await, vec![12310]);
}

#[tokio::test]
async fn tgstat_stops_before_the_quota_runs_out() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    let mut usage = fixture("tgstat/usage_stat.json");
    usage["response"][0]["spentRequests"] = json!("4997/5000");
    Mock::given(path("/usage/stat"))
        .respond_with(ResponseTemplate::new(200).set_body_json(usage))
        .mount(&server)
        .await;
    Mock::given(path("/channels/stat"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("tgstat/channels_stat.json")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/channels/posts"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(redated("tgstat/channels_posts.json", &[2, 30, 50])),
        )
        .mount(&server)
        .await;
    for i in 0..3 {
        watch_channel(&t, 4000 + i, &format!("chan_{i}")).await;
    }
    let mut cfg = source(&server.uri(), "tok");
    cfg.quota_reserve = 1;
    cfg.schedule.concurrency = 1;
    let src = collect::build("tgstat", &cfg).await.unwrap();
    let s = run_once(&t, src).await;
    let r = report(&s);
    let counted = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() != "/usage/stat")
        .count();
    assert_eq!(counted, 2, "3 requests left, 1 kept in reserve");
    assert_eq!((r.jobs_ok, r.jobs_failed), (2, 4));
}

type MentionRow = (
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
);

async fn mention_rows(t: &TestDb) -> Vec<MentionRow> {
    t.client()
        .await
        .query(
            "SELECT channel_id, post_id, kind, source_channel_id, source_post_id, source_name, source
             FROM mentions ORDER BY channel_id, post_id, kind",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
        .collect()
}

/// TGStat's `channels/mentions` and `channels/forwards` (other channels' posts naming the
/// watched one) are read once a day with the posts and stored in `mentions`, as is the
/// channel's own repost once TGStat has named its source channel.
#[tokio::test]
async fn tgstat_records_who_mentions_and_forwards_a_channel_once_a_day() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    let tok = || query_param("token", "tg-secret");
    Mock::given(path("/channels/stat"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("tgstat/channels_stat.json")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/channels/posts"))
        .and(tok())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(redated("tgstat/channels_posts.json", &[2, 30, 50])),
        )
        .mount(&server)
        .await;
    for method in ["mentions", "forwards"] {
        Mock::given(path(format!("/channels/{method}")))
            .and(tok())
            .and(query_param("channelId", "@pulse_news"))
            .and(query_param("extended", "1"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(fixture(&format!("tgstat/channels_{method}.json"))),
            )
            .mount(&server)
            .await;
    }
    watch_channel(&t, 1_735_260_148, "pulse_news").await;
    let src = collect::build("tgstat", &source(&server.uri(), "tg-secret"))
        .await
        .unwrap();
    let s = run_once(&t, Arc::clone(&src)).await;
    assert_eq!((report(&s).jobs_ok, report(&s).jobs_failed), (2, 0));

    let us = Some(1_735_260_148);
    let name = |n: &str| Some(n.to_owned());
    let row = |channel, post, kind: &str, other, other_post, other_name| {
        let source = "tgstat".to_owned();
        (
            channel,
            post,
            kind.to_owned(),
            other,
            other_post,
            other_name,
            source,
        )
    };
    let expected: Vec<MentionRow> = vec![
        // @tg_analytics's post 3310 mentions @pulse_news.
        row(1_113_419_476, 3310, "mention", us, None, name("pulse_news")),
        row(1_502_283_344, 2211, "mention", us, None, name("pulse_news")),
        // @media_lab forwards post 1874 (TGStat's post id 61834519327).
        row(
            1_502_283_344,
            2212,
            "forward",
            us,
            Some(1874),
            name("pulse_news"),
        ),
        // Post 1873 reposts TGStat channel 53248, named @tg_analytics by the mentions answer.
        row(
            1_735_260_148,
            1873,
            "forward",
            Some(1_113_419_476),
            None,
            name("tg_analytics"),
        ),
        // A private channel: its id comes from the t.me/c/ link; the forwarded post is older
        // than the posts read, so its number is unknown.
        row(1_844_021_173, 318, "forward", us, None, name("pulse_news")),
    ];
    // @adtech_digest is listed without tg_id: that mention is skipped.
    assert_eq!(mention_rows(&t).await, expected);
    let published: chrono::DateTime<Utc> = t
        .client()
        .await
        .query_one(
            "SELECT published_at FROM mentions WHERE post_id = 2211",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(published.timestamp(), 1_747_823_400);

    // The next round within the day reads the posts again, but not who mentions them.
    let s = run_once(&t, src).await;
    assert_eq!(report(&s).jobs_ok, 2);
    let calls = |p: &'static str| {
        let server = &server;
        async move {
            let requests = server.received_requests().await.unwrap();
            requests.iter().filter(|r| r.url.path() == p).count()
        }
    };
    assert_eq!(calls("/channels/posts").await, 2);
    assert_eq!(calls("/channels/mentions").await, 1);
    assert_eq!(calls("/channels/forwards").await, 1);
    assert_eq!(mention_rows(&t).await, expected, "nothing is stored twice");
}

#[tokio::test]
async fn telemetr_uses_bearer_auth_and_skips_unknown_channels() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    let auth = || header("authorization", "Bearer tm-secret");
    Mock::given(path("/channels/stat"))
        .and(auth())
        .and(query_param("channelId", "pulse_news"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("telemetr/channels_stat.json")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/channels/posts"))
        .and(auth())
        .and(query_param("channelId", "pulse_news"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(redated("telemetr/channels_posts.json", &[1, 20, 40])),
        )
        .mount(&server)
        .await;
    Mock::given(query_param("channelId", "gone_chan"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("telemetr/error.json")))
        .mount(&server)
        .await;
    watch_channel(&t, 1_735_260_148, "pulse_news").await;
    watch_channel(&t, 5001, "gone_chan").await;
    let src = collect::build("telemetr", &source(&server.uri(), "tm-secret"))
        .await
        .unwrap();
    let s = run_once(&t, src).await;
    let r = report(&s);
    assert_eq!((r.jobs_ok, r.jobs_failed), (2, 2));
    assert_eq!(members_of(&t, 1_735_260_148).await, vec![12338]);
    assert_eq!(
        post_rows(&t).await,
        vec![
            (1873, Some(4991), Some(37), Some(22), Some(149)),
            (1874, Some(2160), Some(14), Some(9), Some(61)),
        ]
    );
}

/// One failure, answered first (or always, for `always`), then the normal answer.
struct Failure {
    name: &'static str,
    first: ResponseTemplate,
    always: bool,
    stored: i64,
}

fn failures(source: &str) -> Vec<Failure> {
    let throttled = match source {
        "botapi" => ResponseTemplate::new(429).set_body_json(json!({
            "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1}})),
        "tgstat" => ResponseTemplate::new(200)
            .set_body_json(json!({"status": "error", "error": "flood_control_1"})),
        _ => ResponseTemplate::new(429).insert_header("Retry-After", "1"),
    };
    vec![
        Failure {
            name: "429/flood",
            first: throttled,
            always: false,
            stored: 1,
        },
        Failure {
            name: "5xx",
            first: ResponseTemplate::new(503).set_body_string("<html>503</html>"),
            always: false,
            stored: 1,
        },
        Failure {
            name: "timeout",
            first: ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
            always: false,
            stored: 1,
        },
        Failure {
            name: "malformed",
            first: ResponseTemplate::new(200).set_body_string("{\"status\":\"ok\",\"response\":{"),
            always: true,
            stored: 0,
        },
    ]
}

/// Every HTTP source through 429/flood control, 5xx, a timeout and a malformed body on its
/// members call: the first three are retried and the sample lands; the last skips the job.
#[tokio::test]
async fn every_http_source_survives_throttling_5xx_timeouts_and_malformed_bodies() {
    for source_name in ["botapi", "tgstat", "telemetr"] {
        for f in failures(source_name) {
            let t = TestDb::plain().await;
            let server = MockServer::start().await;
            let (members_path, ok) = match source_name {
                "botapi" => (format!("{BOT}/getChatMemberCount"), bot_ok(json!(555))),
                "tgstat" => (
                    "/channels/stat".to_owned(),
                    ResponseTemplate::new(200).set_body_json(fixture("tgstat/channels_stat.json")),
                ),
                _ => (
                    "/channels/stat".to_owned(),
                    ResponseTemplate::new(200)
                        .set_body_json(fixture("telemetr/channels_stat.json")),
                ),
            };
            let first = Mock::given(path(&members_path))
                .respond_with(f.first)
                .with_priority(1);
            let first = if f.always {
                first
            } else {
                first.up_to_n_times(1)
            };
            first.mount(&server).await;
            Mock::given(path(&members_path))
                .respond_with(ok)
                .with_priority(2)
                .mount(&server)
                .await;
            Mock::given(path("/channels/posts"))
                .respond_with(ResponseTemplate::new(200).set_body_json(
                    json!({"status": "ok", "response": {"count": 0, "total_count": 0, "items": []}}),
                ))
                .mount(&server)
                .await;
            watch_channel(&t, 7007, "pulse_news").await;
            let mut cfg = source(&server.uri(), "123:abc");
            cfg.limits.timeout = Duration::from_millis(300);
            cfg.limits.retry_deadline = Duration::from_secs(5);
            let src = collect::build(source_name, &cfg).await.unwrap();
            let s = run_once(&t, src).await;
            let r = report(&s);
            let label = format!("{source_name}, {}", f.name);
            assert_eq!(
                t.count("SELECT count(*) FROM member_samples").await,
                f.stored,
                "{label}"
            );
            let members_jobs_failed = u64::from(f.stored == 0);
            assert_eq!(r.jobs_failed, members_jobs_failed, "{label}");
            let calls = server
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|q| q.url.path() == members_path)
                .count();
            assert!(
                calls >= 2 || f.always,
                "{label}: the call was retried ({calls})"
            );
        }
    }
}

/// `watch list` / `health` data (and the bot's `/list` / `/health` later): latest members, the
/// day's delta, the last sample's time, and per-source status with recent sample counts.
#[tokio::test]
async fn status_shows_watched_channels_and_source_health() {
    use tgpulse::ingest::{self, CommitPolicy, MemberSample, Record};
    let t = TestDb::plain().await;
    watch_channel(&t, 9001, "alpha_chan").await;
    watch_channel(&t, 9002, "beta_chan").await;
    let now = Utc::now();
    let (tx, writer) = ingest::start(&t.db, CommitPolicy::Atomic, &IngestConfig::default(), "t");
    let sample = |minutes_ago: i64, members: i64| {
        Record::Member(MemberSample {
            channel_id: ChannelId::new(9001).unwrap(),
            observed_at: now - chrono::Duration::minutes(minutes_ago),
            members,
            post_count: None,
        })
    };
    tx.send(vec![sample(2 * 24 * 60, 100), sample(20, 130)])
        .await
        .unwrap();
    drop(tx);
    writer.finish().await.unwrap();
    catalog::record_status(
        &t.db,
        "botapi",
        Some(now - chrono::Duration::seconds(60)),
        Some(now - chrono::Duration::seconds(10)),
        Some("@beta_chan (9002): unknown channel: chat not found"),
        [5, 1, 5],
    )
    .await
    .unwrap();

    let list = catalog::watched(&t.db).await.unwrap();
    assert_eq!(list.len(), 2);
    let a = &list[0];
    assert_eq!(a.handle.as_deref(), Some("alpha_chan"));
    assert_eq!((a.members, a.day_delta), (Some(130), Some(30)));
    let age = now - a.last_sample_at.unwrap();
    assert_eq!(age.num_minutes(), 20);
    let b = &list[1];
    assert_eq!(
        (b.members, b.day_delta, b.last_sample_at),
        (None, None, None)
    );

    let h = catalog::health(&t.db, Utc::now()).await.unwrap();
    assert_eq!(h.storage, tgpulse::db::Storage::Plain);
    assert_eq!(
        (h.watched, h.samples_last_hour, h.samples_last_day),
        (2, 1, 1)
    );
    assert_eq!(h.sources.len(), 1);
    assert_eq!((h.sources[0].jobs_ok, h.sources[0].jobs_failed), (5, 1));
    assert!(
        h.sources[0]
            .last_error
            .as_ref()
            .unwrap()
            .1
            .contains("chat not found")
    );

    // The CLI prints the same.
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"))
            .args(args)
            .args(["--database-url", &t.url, "--log", "warn"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = run(&["watch", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("@alpha_chan") && l.contains(" 130 ") && l.contains("+30")),
        "{list}"
    );
    assert!(list.contains("2 watched channel(s)"), "{list}");
    let health = run(&["health"]);
    assert!(health.contains("storage: plain PostgreSQL"), "{health}");
    assert!(health.contains("samples in the last hour: 1"), "{health}");
    assert!(
        health.contains("botapi") && health.contains("chat not found"),
        "{health}"
    );
}

/// A channel removed from the watched list while `serve` runs stops being collected at the
/// next reload of the list; the other channel goes on.
#[tokio::test]
async fn a_channel_removed_while_running_stops_being_collected() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    Mock::given(path(format!("{BOT}/getChatMemberCount")))
        .respond_with(bot_ok(json!(500)))
        .mount(&server)
        .await;
    watch_channel(&t, 7001, "kept_chan").await;
    watch_channel(&t, 7002, "gone_chan").await;
    let mut cfg = source(&server.uri(), "123:abc");
    cfg.schedule.members_every = Duration::from_millis(200);
    cfg.schedule.reload_every = Duration::from_millis(300);
    cfg.schedule.jitter = 0.0;
    let src = collect::build("botapi", &cfg).await.unwrap();
    let stop = CancellationToken::new();
    let db = t.db.clone();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move {
            collect::collect(&db, vec![src], &ingest_cfg(), Shard::default(), false, stop).await
        }
    });
    let asked = |handle: &'static str| {
        let server = &server;
        async move {
            server
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.query().unwrap_or("").contains(handle))
                .count()
        }
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(asked("gone_chan").await >= 3, "collected while watched");
    assert!(
        catalog::remove(&t.db, ChannelId::new(7002).unwrap())
            .await
            .unwrap()
    );
    // One reload (300 ms) plus one job in flight may still ask for it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let gone_after_reload = asked("gone_chan").await;
    let kept_after_reload = asked("kept_chan").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(
        asked("gone_chan").await,
        gone_after_reload,
        "no request after removal"
    );
    assert!(
        asked("kept_chan").await >= kept_after_reload + 4,
        "the watched channel goes on"
    );
}

/// Lineage: two sources reading the same channel store their samples under their own names,
/// so their differing values can be told apart (and exported with the `source` column).
#[tokio::test]
async fn each_sample_is_stored_under_the_name_of_the_source_that_read_it() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    Mock::given(path(format!("{BOT}/getChatMemberCount")))
        .respond_with(bot_ok(json!(12_000)))
        .mount(&server)
        .await;
    Mock::given(path("/channels/stat"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("tgstat/channels_stat.json")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/channels/posts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "ok", "response": {"count": 0, "total_count": 0, "items": []}
        })))
        .mount(&server)
        .await;
    watch_channel(&t, 1_735_260_148, "pulse_news").await;
    let bot = collect::build("botapi", &source(&server.uri(), "123:abc"))
        .await
        .unwrap();
    let tgstat = collect::build("tgstat", &source(&server.uri(), "tg-secret"))
        .await
        .unwrap();
    let s = collect::collect(
        &t.db,
        vec![bot, tgstat],
        &ingest_cfg(),
        Shard::default(),
        true,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(s.sources.iter().all(|(_, r)| r.is_ok()), "{s:?}");
    let rows: Vec<(String, i64)> = t
        .client()
        .await
        .query(
            "SELECT source, members FROM member_samples ORDER BY source",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let tgstat_members = fixture("tgstat/channels_stat.json")["response"]["participants_count"]
        .as_i64()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("botapi".to_owned(), 12_000),
            ("tgstat".to_owned(), tgstat_members)
        ]
    );
}
