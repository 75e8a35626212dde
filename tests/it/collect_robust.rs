//! The streaming path under stress: a 60 s database outage through a loopback TCP proxy that
//! the test cuts and restores, backpressure while the database is away, SIGTERM flushing the
//! held batch of the real binary, and replay of a real file ending with exactly the rows of a
//! direct import.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tgpulse::collect::{self, Replay, Shard, Speed};
use tgpulse::config::IngestConfig;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::collect::{BOT, collect_once, source, watch_channel};
use crate::common::{Proxy, TestDb, animals, scratch, sigterm_and_wait, through};

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60s_database_outage_loses_no_accepted_sample_and_backpressure_holds() {
    let t = TestDb::plain().await;
    let server = MockServer::start().await;
    Mock::given(path(format!("{BOT}/getChatMemberCount")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": 1000})))
        .mount(&server)
        .await;
    const CHANNELS: i64 = 100;
    for i in 0..CHANNELS {
        watch_channel(&t, 10_000 + i, &format!("chan_{i}")).await;
    }
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let db = through(&t, &proxy).await;
    let mut cfg = source(&server.uri(), "123:abc");
    cfg.schedule.members_every = Duration::from_secs(1);
    cfg.schedule.jitter = 0.0;
    cfg.schedule.concurrency = 8;
    let src = collect::build("botapi", &cfg).await.unwrap();
    let ingest = IngestConfig {
        batch_size: 500,
        queue_capacity: 1000,
        batch_max_age_ms: 200,
        final_flush_secs: 120,
        daily_refresh_ms: 2000,
    };
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { collect::collect(&db, vec![src], &ingest, Shard::default(), false, stop).await }
    });

    tokio::time::sleep(Duration::from_secs(5)).await;
    let stored_before = t.count("SELECT count(*) FROM member_samples").await;
    assert!(stored_before > 0, "samples flow before the outage");
    proxy.cut().await;
    let at_cut = requests(&server).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let during = requests(&server).await - at_cut;
    proxy.restore();
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.cancel();
    let summary = run.await.unwrap().expect("the writer survives the outage");

    let sent = summary.samples_sent();
    let stored = t.count("SELECT count(*) FROM member_samples").await as u64;
    assert!(sent > stored_before as u64);
    assert_eq!(stored, sent, "every accepted sample landed: loss must be 0");
    assert_eq!(summary.ingest.member_samples_inserted, sent);
    // Unbounded buffering would have read 100 channels/s for 60 s (6,000 requests). With the
    // database away, the queue (1,000) and the held batch (500) fill, and the sources wait.
    assert!(
        during <= 1000 + 500 + 8 + 50,
        "{during} requests while the database was away: backpressure did not hold"
    );
    assert!(during > 0);
    // The daily relation caught up with every stored sample.
    let daily: i64 = t
        .count("SELECT count(DISTINCT channel_id) FROM members_daily")
        .await;
    assert_eq!(daily, CHANNELS);
}

fn parse_accepted(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("botapi:"))
        .unwrap_or_else(|| panic!("no summary line in {stdout:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "samples").unwrap();
    words[i - 1].parse().unwrap()
}

/// A fake Bot API answering 77 members for every channel, `n` watched channels from `first`,
/// and a sources file reading them every second; returns the server and the file.
pub(crate) async fn botapi_every_second(
    t: &TestDb,
    first: i64,
    n: i64,
    name: &str,
) -> (MockServer, std::path::PathBuf) {
    let server = MockServer::start().await;
    Mock::given(path(format!("{BOT}/getChatMemberCount")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": 77})))
        .mount(&server)
        .await;
    for i in 0..n {
        watch_channel(t, first + i, &format!("chan_{i}")).await;
    }
    let sources = scratch(name).join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[botapi]\napi_url = \"{}\"\ntoken = \"123:abc\"\n[botapi.limits]\nrequests_per_second = 1000\nburst = 100\n[botapi.schedule]\nmembers_every = \"1s\"\njitter = 0.0\n",
            server.uri()
        ),
    )
    .unwrap();
    (server, sources)
}

#[tokio::test]
async fn sigterm_flushes_the_held_batch_of_the_binary() {
    let t = TestDb::plain().await;
    let (server, sources) = botapi_every_second(&t, 20_000, 30, "sigterm").await;
    // Batches only flush at 1M samples or after 10 minutes: everything accepted is held in
    // the writer until shutdown.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .args(["collect", "--sources"])
        .arg(&sources)
        .args(["--database-url", &t.url, "--batch-size", "1000000"])
        .args(["--batch-max-age-ms", "600000", "--log", "warn"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(requests(&server).await >= 30, "the collector is running");
    assert_eq!(
        t.count("SELECT count(*) FROM member_samples").await,
        0,
        "nothing flushed yet: the batch is held"
    );
    let out = sigterm_and_wait(child).await;
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let accepted = parse_accepted(&stdout);
    assert!(accepted >= 30, "{stdout}");
    assert_eq!(
        t.count("SELECT count(*) FROM member_samples").await as u64,
        accepted,
        "every accepted sample was flushed on SIGTERM"
    );
}

/// Count and order-independent checksums of a relation's rows.
async fn fingerprint(t: &TestDb, relation: &str, cols: &str) -> (i64, i64) {
    let sql = format!(
        "SELECT count(*), coalesce(sum(hashtext(concat_ws('|', {cols}))::bigint), 0)::bigint FROM {relation}"
    );
    let r = t.client().await.query_one(&sql, &[]).await.unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_raw_animals_file_stores_exactly_what_a_direct_import_stores() {
    let file = animals("snapshots_raw.csv.gz");
    let direct = TestDb::plain().await;
    direct.import(&file).await;

    let replayed = TestDb::plain().await;
    let src = Arc::new(Replay::new(file, Speed::Max));
    let summary = collect_once(&replayed.db, src, &IngestConfig::default()).await;
    assert!(summary.sources[0].1.is_ok());
    for (relation, cols) in [
        ("member_samples", "channel_id, observed_at, members"),
        (
            "members_daily",
            "channel_id, bucket, members, members_min, members_max, samples",
        ),
        (
            "channel_names",
            "channel_id, handle, title, first_seen, last_seen",
        ),
    ] {
        let a = fingerprint(&direct, relation, cols).await;
        let b = fingerprint(&replayed, relation, cols).await;
        assert_eq!(a, b, "{relation}: direct import vs replay");
        assert!(a.0 > 0);
    }
    assert_eq!(
        fingerprint(&replayed, "member_samples", "channel_id")
            .await
            .0,
        618_930
    );
}

#[tokio::test]
async fn replay_paces_samples_by_recorded_time() {
    let t = TestDb::plain().await;
    let dir = scratch("pace");
    let file = dir.join("pace.csv");
    let header = "handle,channel_id,observed_at,subscriber_count,post_count,gif_count,pic_count,video_count,latest_post,title";
    let rows = [
        "pace_chan,1234567,2024-01-01 00:00:00+00:00,100,,,,,,Pace",
        "pace_chan,1234567,2024-01-01 01:00:00+00:00,110,,,,,,Pace",
        "pace_chan,1234567,2024-01-01 02:00:00+00:00,120,,,,,,Pace",
    ];
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    // 3600x: two recorded hours take two seconds.
    let src = Arc::new(Replay::new(file, Speed::Factor(3600.0)));
    let started = std::time::Instant::now();
    collect_once(&t.db, src, &super::collect::ingest_cfg()).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "the last sample was sent {:?} after the first",
        started.elapsed()
    );
    assert_eq!(
        t.count("SELECT sum(members)::bigint FROM member_samples WHERE channel_id = 1234567")
            .await,
        330
    );
}
