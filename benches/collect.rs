//! Collection measurements (not criterion: each is one long run, printed as a table).
//!
//! 1. Pipeline throughput: a fake in-process source of 10,000 channels with no latency
//!    (members plus 20 posts per channel), `collect --once` into a fresh database, in
//!    samples/s, and the ratio to `psql \copy` binary of the same rows into empty copies of
//!    the same tables.
//! 2. Rate-bound collection: 1,000 channels from a fake Bot API on loopback answering after
//!    50 ms, under a limit of 30 requests/s.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (TGPULSE_BENCH_SERVER_URL) and `psql` on PATH.
//! Run: `cargo bench --profile dev --bench collect`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tgpulse::collect::{
    self, ChannelInfo, Collector, LimitsConfig, Poll, Polled, Schedule, Shard, SourceConfig,
    SourceError, Target,
};
use tgpulse::config::{IngestConfig, Secret, StorageConfig, StorageMode};
use tgpulse::db::{self, DatabaseTarget, Db};
use tgpulse::domain::Handle;
use tgpulse::ingest::{IngestReport, MemberSample, PostSample, Record};
use tokio_util::sync::CancellationToken;

const CHANNELS: i64 = 10_000;
const POSTS_PER_CHANNEL: i64 = 20;

fn server() -> String {
    std::env::var("TGPULSE_BENCH_SERVER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn fresh_db(name: &str) -> Db {
    let (admin, conn) =
        tokio_postgres::connect(&format!("{}/postgres", server()), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let pool = db::connect(
        &DatabaseTarget::from_url(&format!("{}/{name}", server())).unwrap(),
        8,
    )
    .await
    .unwrap();
    let cfg = StorageConfig {
        mode: StorageMode::Plain,
        ..StorageConfig::default()
    };
    db::migrate(&pool, &cfg).await.unwrap()
}

async fn watch_many(db: &Db, n: i64) {
    let client = db.pool.get().await.unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO channels (channel_id, handle) SELECT i, 'chan_' || i FROM generate_series(1, {n}) i;
             INSERT INTO watched_channels (channel_id, handle) SELECT i, 'chan_' || i FROM generate_series(1, {n}) i;"
        ))
        .await
        .unwrap();
}

/// A source with no latency: every channel has 20 posts published over the last 20 hours.
#[derive(Debug)]
struct Instant0;

#[async_trait]
impl Poll for Instant0 {
    fn name(&self) -> &str {
        "synthetic"
    }
    fn reads_posts(&self) -> bool {
        true
    }
    async fn resolve(&self, _h: &Handle) -> Result<ChannelInfo, SourceError> {
        Err(SourceError::Unsupported("resolve"))
    }
    async fn members(&self, t: &Target) -> Result<Vec<Record>, SourceError> {
        Ok(vec![Record::Member(MemberSample {
            channel_id: t.channel_id,
            observed_at: Utc::now(),
            members: 1000 + t.channel_id.get(),
            post_count: None,
        })])
    }
    async fn posts(&self, t: &Target, _since: DateTime<Utc>) -> Result<Vec<Record>, SourceError> {
        let now = Utc::now();
        Ok((0..POSTS_PER_CHANNEL)
            .map(|i| {
                Record::Post(PostSample {
                    channel_id: t.channel_id,
                    post_id: 1000 + i,
                    published_at: now - chrono::Duration::hours(i + 1),
                    observed_at: now,
                    views: Some(500 * i),
                    forwards: Some(i),
                    replies: Some(2 * i),
                    reactions: Some(3 * i),
                })
            })
            .collect())
    }
}

fn psql(sql: &str, db: &str) -> Duration {
    let started = Instant::now();
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{}/{db}", server()))
        .args(["-c", sql])
        .output()
        .expect("psql on PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// One `collect --once` of the synthetic source: the report, the time until the last batch
/// committed, and the time until the daily relations caught up.
async fn one_round(db: &Db, cfg: &IngestConfig) -> (IngestReport, Duration, Duration) {
    let schedule = Schedule {
        concurrency: 16,
        ..Schedule::default()
    };
    let src: Arc<dyn Collector> = Arc::new(Polled::new(Instant0, schedule));
    let started = Instant::now();
    let s = collect::collect(
        db,
        vec![src],
        cfg,
        Shard::default(),
        true,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let committed = s.ingest.last_write.expect("batches were written") - started;
    (s.ingest, committed, started.elapsed())
}

async fn throughput(batch_size: usize) {
    let name = "tgpulse_bench_collect";
    let db = fresh_db(name).await;
    watch_many(&db, CHANNELS).await;
    let cfg = IngestConfig {
        batch_size,
        queue_capacity: 2 * batch_size,
        ..IngestConfig::default()
    };
    let (report, ours, total) = one_round(&db, &cfg).await;
    let samples = report.inserted();
    assert_eq!(samples, (CHANNELS * (1 + POSTS_PER_CHANNEL)) as u64);

    // The anchor: psql \copy binary of the same rows into empty copies of the same tables.
    let dir = std::env::temp_dir();
    let (m, p) = (dir.join("bench_members.bin"), dir.join("bench_posts.bin"));
    psql(
        &format!(
            "\\copy member_samples TO '{}' WITH (FORMAT binary)",
            m.display()
        ),
        name,
    );
    psql(
        &format!(
            "\\copy post_samples TO '{}' WITH (FORMAT binary)",
            p.display()
        ),
        name,
    );
    psql(
        "CREATE TABLE m2 (LIKE member_samples INCLUDING ALL); CREATE TABLE p2 (LIKE post_samples INCLUDING ALL)",
        name,
    );
    let anchor = psql(
        &format!("\\copy m2 FROM '{}' WITH (FORMAT binary)", m.display()),
        name,
    ) + psql(
        &format!("\\copy p2 FROM '{}' WITH (FORMAT binary)", p.display()),
        name,
    );
    // tgpulse also writes one `posts` row per post; the same rows through psql, for reference.
    let posts_file = dir.join("bench_post_ids.bin");
    psql(
        &format!(
            "\\copy posts TO '{}' WITH (FORMAT binary)",
            posts_file.display()
        ),
        name,
    );
    psql("CREATE TABLE posts2 (LIKE posts INCLUDING ALL)", name);
    let posts_copy = psql(
        &format!(
            "\\copy posts2 FROM '{}' WITH (FORMAT binary)",
            posts_file.display()
        ),
        name,
    );
    println!(
        "          with the posts rows too, psql takes {:.2} s: ratio {:.2}",
        (anchor + posts_copy).as_secs_f64(),
        (anchor + posts_copy).as_secs_f64() / ours.as_secs_f64()
    );
    let ours_rate = samples as f64 / ours.as_secs_f64();
    let anchor_rate = samples as f64 / anchor.as_secs_f64();
    println!(
        "pipeline  batch {batch_size:>6}: {samples} samples committed in {:.2} s = {:>8.0} samples/s (daily relations refreshed by {:.2} s); psql \\copy binary {:.2} s = {:>8.0} samples/s; ratio {:.2} ({} batches)",
        ours.as_secs_f64(),
        ours_rate,
        total.as_secs_f64(),
        anchor.as_secs_f64(),
        anchor_rate,
        ours_rate / anchor_rate,
        report.batches
    );
    // A second round over the same channels: every post is re-sampled, as live collection
    // does every 15 minutes; it must not get slower as readings accumulate.
    let (again, second, _) = one_round(&db, &cfg).await;
    println!(
        "          second round (posts re-sampled): {} samples committed in {:.2} s",
        again.inserted(),
        second.as_secs_f64()
    );
}

async fn rate_bound() {
    use wiremock::matchers::path_regex;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(path_regex("/bot[^/]+/getChatMemberCount"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"ok": true, "result": 1234}))
                .set_delay(Duration::from_millis(50)),
        )
        .mount(&server)
        .await;
    let db = fresh_db("tgpulse_bench_rate").await;
    watch_many(&db, 1000).await;
    let cfg = SourceConfig {
        api_url: Some(server.uri()),
        token: Some(Secret::new("1:x")),
        limits: LimitsConfig {
            requests_per_second: 30.0,
            burst: 1,
            ..LimitsConfig::default()
        },
        ..SourceConfig::default()
    };
    let src = collect::build("botapi", &cfg).await.unwrap();
    let started = Instant::now();
    let s = collect::collect(
        &db,
        vec![src],
        &IngestConfig::default(),
        Shard::default(),
        true,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let took = started.elapsed();
    let ideal = 999.0 / 30.0;
    println!(
        "rate-bound: 1000 channels, 50 ms latency, 30 req/s: {:.1} s ({:.1} ms/channel); the limit alone allows {:.1} s; {} samples stored",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / 1000.0,
        ideal,
        s.ingest.inserted()
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list here
    }
    if let Ok(filter) = std::env::var("TGPULSE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let only_pipeline = std::env::args().any(|a| a == "pipeline");
    for batch in [5_000, 50_000] {
        throughput(batch).await;
    }
    if !only_pipeline {
        rate_bound().await;
    }
}
