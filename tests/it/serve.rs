//! The supervised service: a panicking source is restarted and shown on /health and
//! /metrics; collection resumes by itself after a database outage while /readyz follows;
//! SIGTERM during an outage ends the real binary within the final-flush deadline with the
//! unstored samples counted; a simulated day on the manual clock runs exactly the scheduled
//! jobs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::collect::{ingest_cfg, watch_channel};
use super::collect_robust::botapi_every_second;
use crate::common::{Proxy, TestDb, sigterm_and_wait, through};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tgpulse::app::{App, AppConfig};
use tgpulse::clock::{ManualClock, SharedClock, SystemClock};
use tgpulse::collect::{
    ChannelInfo, Collector, Error, Poll, Polled, RunContext, RunReport, Schedule, Shard,
    SourceError, Target,
};
use tgpulse::db::Db;
use tgpulse::domain::Handle;
use tgpulse::ingest::{self, CommitPolicy, MemberSample, Record};
use tokio_util::sync::CancellationToken;

/// A polled source that answers every members request at once and counts them per channel;
/// while `failing` is set it answers with an outage instead.
#[derive(Debug, Clone)]
pub(crate) struct Counting {
    calls: Arc<Mutex<HashMap<i64, u32>>>,
    clock: SharedClock,
    pub(crate) failing: Arc<AtomicBool>,
}

impl Counting {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            calls: Arc::default(),
            clock,
            failing: Arc::default(),
        }
    }

    pub(crate) fn calls(&self, channel: i64) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .get(&channel)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl Poll for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn reads_posts(&self) -> bool {
        false
    }

    async fn resolve(&self, _: &Handle) -> Result<ChannelInfo, SourceError> {
        Err(SourceError::Unsupported("test source"))
    }

    async fn members(&self, target: &Target) -> Result<Vec<Record>, SourceError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(target.channel_id.get()).or_default();
            *n += 1;
            *n
        };
        if self.failing.load(Ordering::SeqCst) {
            return Err(SourceError::Unavailable("the fake source is down".into()));
        }
        Ok(vec![Record::Member(MemberSample {
            channel_id: target.channel_id,
            observed_at: self.clock.now(),
            members: 1000 + i64::from(n),
            post_count: None,
        })])
    }

    async fn posts(&self, _: &Target, _: DateTime<Utc>) -> Result<Vec<Record>, SourceError> {
        Err(SourceError::Unsupported("test source"))
    }
}

/// Waits (in real time, bounded) until `cond` holds.
async fn until(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn task<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name} in {health:#}"))
}

fn app_config(sources: Vec<Arc<dyn Collector>>, clock: SharedClock) -> AppConfig {
    AppConfig {
        sources,
        shard: Shard::default(),
        ingest: ingest_cfg(),
        ops_listen: Some(([127, 0, 0, 1], 0).into()),
        clock,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_day_on_a_manual_clock_runs_exactly_24_member_jobs_per_channel() {
    let t = TestDb::plain().await;
    watch_channel(&t, 1001, "alpha").await;
    watch_channel(&t, 1002, "beta").await;
    let start = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let clock = ManualClock::new(start);
    let shared: SharedClock = clock.clone();
    let source = Counting::new(Arc::clone(&shared));
    let polled = Polled::new(
        source.clone(),
        Schedule {
            members_every: Duration::from_secs(3600),
            jitter: 0.0,
            ..Schedule::default()
        },
    );
    let (sender, writer) = ingest::start(&t.db, CommitPolicy::PerBatch, &ingest_cfg(), "test");
    let stop = CancellationToken::new();
    let ctx = RunContext {
        db: t.db.clone(),
        sender,
        shard: Shard::default(),
        once: false,
        shutdown: stop.clone(),
        clock: shared,
    };
    let run = tokio::spawn(async move { polled.run(ctx).await });
    for hour in 0..24u32 {
        clock.set(start + chrono::Duration::hours(i64::from(hour)));
        until(
            &format!("hour {hour} is collected"),
            Duration::from_secs(20),
            async || source.calls(1001) > hour && source.calls(1002) > hour,
        )
        .await;
    }
    // The rest of the day: due times at 24:00 are not reached.
    clock.set(start + chrono::Duration::minutes(24 * 60 - 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let report = run.await.unwrap().unwrap();
    assert_eq!((source.calls(1001), source.calls(1002)), (24, 24));
    assert_eq!(report.jobs_ok, 48);
    assert_eq!(report.samples_sent, 48);
    let stored = writer.finish().await.unwrap();
    assert_eq!(stored.member_samples_inserted, 48);
    assert_eq!(
        t.count(
            "SELECT count(*) FROM member_samples
             WHERE observed_at >= '2026-03-01T00:00:00Z' AND observed_at < '2026-03-02T00:00:00Z'"
        )
        .await,
        48,
        "every sample carries the manual clock's time"
    );
}

/// A source whose first run panics; later runs wait for shutdown.
#[derive(Debug, Default)]
struct PanicsOnce {
    runs: AtomicU32,
}

#[async_trait]
impl Collector for PanicsOnce {
    fn name(&self) -> &str {
        "flaky"
    }

    async fn resolve(&self, _: &Handle) -> Result<ChannelInfo, SourceError> {
        Err(SourceError::Unsupported("test source"))
    }

    fn members_every(&self) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, Error> {
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("the flaky source hit a bug");
        }
        ctx.shutdown.cancelled().await;
        Ok(RunReport {
            jobs_ok: 1,
            ..RunReport::default()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_source_is_restarted_and_health_and_metrics_show_it() {
    let t = TestDb::plain().await;
    let source = Arc::new(PanicsOnce::default());
    let stop = CancellationToken::new();
    let app = App::build(
        t.db.clone(),
        app_config(vec![source.clone()], SystemClock::shared()),
        stop.clone(),
    )
    .await
    .unwrap();
    let addr = app.ops_addr().unwrap();
    let running = tokio::spawn(app.run());
    until(
        "the source ran again",
        Duration::from_secs(20),
        async || source.runs.load(Ordering::SeqCst) >= 2,
    )
    .await;
    let (code, body) = get(addr, "/health").await;
    assert_eq!(code, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    let flaky = task(&health, "source:flaky");
    assert_eq!(flaky["restarts"], 1, "{health:#}");
    assert_eq!(flaky["phase"], "running");
    assert!(
        flaky["last_error"]
            .as_str()
            .unwrap()
            .contains("the flaky source hit a bug"),
        "{flaky}"
    );
    assert_eq!(task(&health, "writer")["restarts"], 0);
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tgpulse_task_restarts_total{task=\"source:flaky\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "tgpulse_task_running{task=\"source:flaky\"} 1"),
        "{metrics}"
    );
    let (code, _) = get(addr, "/readyz").await;
    assert_eq!(code, 200, "running again, so ready");
    stop.cancel();
    let summary = running.await.unwrap();
    assert_eq!(
        summary.sources,
        vec![(
            "flaky".to_owned(),
            RunReport {
                jobs_ok: 1,
                ..RunReport::default()
            }
        )]
    );
    let flaky = summary
        .tasks
        .iter()
        .find(|t| t.name == "source:flaky")
        .unwrap();
    assert_eq!(flaky.restarts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_resumes_by_itself_after_a_database_outage_and_readyz_follows() {
    let t = TestDb::plain().await;
    watch_channel(&t, 3001, "gamma").await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let db: Db = through(&t, &proxy).await;
    let clock = SystemClock::shared();
    let source = Counting::new(Arc::clone(&clock));
    let fast = Schedule {
        members_every: Duration::from_millis(500),
        reload_every: Duration::from_secs(1),
        jitter: 0.0,
        ..Schedule::default()
    };
    let polled: Arc<dyn Collector> = Arc::new(Polled::new(source.clone(), fast));
    let stop = CancellationToken::new();
    let app = App::build(db, app_config(vec![polled], clock), stop.clone())
        .await
        .unwrap();
    let addr = app.ops_addr().unwrap();
    let board = app.board();
    let running = tokio::spawn(app.run());
    until("samples are stored", Duration::from_secs(20), async || {
        t.count("SELECT count(*) FROM member_samples").await > 0
    })
    .await;
    assert_eq!(get(addr, "/readyz").await.0, 200);

    proxy.cut().await;
    until(
        "/readyz reports the outage",
        Duration::from_secs(20),
        async || get(addr, "/readyz").await.0 == 503,
    )
    .await;
    let (_, body) = get(addr, "/readyz").await;
    let status: Value = serde_json::from_str(&body).unwrap();
    assert!(
        status["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("database:"),
        "{status:#}"
    );
    // Several reloads fail while the database is away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = t.count("SELECT count(*) FROM member_samples").await;
    watch_channel(&t, 3002, "delta").await;
    proxy.restore();

    until(
        "/readyz is ready again",
        Duration::from_secs(30),
        async || get(addr, "/readyz").await.0 == 200,
    )
    .await;
    until(
        "the channel added during the outage is collected",
        Duration::from_secs(30),
        async || source.calls(3002) > 0,
    )
    .await;
    until(
        "the held samples land",
        Duration::from_secs(30),
        async || t.count("SELECT count(*) FROM member_samples").await > before,
    )
    .await;
    let tasks = board.snapshot();
    assert!(
        tasks.iter().all(|t| t.restarts == 0),
        "resumed without a restart: {tasks:?}"
    );
    stop.cancel();
    let summary = running.await.unwrap();
    assert_eq!(summary.writer.unstored, 0);
    assert!(
        summary.writer.errors.is_empty(),
        "{:?}",
        summary.writer.errors
    );
}

fn number_before(text: &str, marker: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker:?} in {text:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let first = marker.split_whitespace().next().unwrap();
    let i = words.iter().position(|w| *w == first).unwrap();
    words[i - 1].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_outage_ends_the_binary_within_the_final_flush_deadline() {
    let t = TestDb::plain().await;
    let (_server, sources) = botapi_every_second(&t, 40_000, 20, "serve-outage").await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = format!("postgres://postgres@{}/{}", proxy.addr, t.name);
    let final_flush = 3;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .args(["serve", "--sources"])
        .arg(&sources)
        .args(["--database-url", &url, "--batch-max-age-ms", "200"])
        .args(["--final-flush-secs", &final_flush.to_string()])
        .args(["--ops-listen", "127.0.0.1:0", "--log", "warn"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    until("samples are stored", Duration::from_secs(30), async || {
        t.count("SELECT count(*) FROM member_samples").await >= 20
    })
    .await;
    proxy.cut().await;
    // Jobs go on: their samples are accepted and held while the database is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped = Instant::now();
    let out = sigterm_and_wait(child).await;
    let took = stopped.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        took < Duration::from_secs(final_flush + 5),
        "exit took {took:?}\n{stdout}\n{stderr}"
    );
    assert!(!out.status.success(), "unstored samples fail the run");
    let accepted = number_before(&stdout, "samples accepted");
    let unstored = number_before(&stderr, "accepted samples could not be stored");
    assert!(unstored > 0, "{stderr}");
    let stored = t.count("SELECT count(*) FROM member_samples").await as u64;
    assert_eq!(
        stored + unstored,
        accepted,
        "every accepted sample is stored or counted\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn the_interactive_pool_stops_a_query_at_the_statement_timeout_and_it_is_recognised() {
    let t = TestDb::plain().await;
    let options = tgpulse::config::PoolOptions {
        statement_timeout: Some(Duration::from_millis(200)),
        ..tgpulse::config::PoolOptions::sized(2)
    };
    let target = tgpulse::db::DatabaseTarget::from_url(&t.url).unwrap();
    let pool = tgpulse::db::connect_with(&target, options).await.unwrap();
    let client = pool.get().await.unwrap();
    let started = Instant::now();
    let cancelled = client
        .query_one("SELECT pg_sleep(5)", &[])
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the sleep was cut short"
    );
    let direct = tgpulse::query::Error::Db {
        step: "sleep",
        source: cancelled,
    };
    assert!(direct.is_timeout(), "{direct:?}");
    // The same cause, carried by DataFusion as a query's external error.
    let again = client
        .query_one("SELECT pg_sleep(5)", &[])
        .await
        .unwrap_err();
    let through_datafusion = tgpulse::query::Error::Query {
        name: "members_daily",
        source: datafusion::error::DataFusionError::External(Box::new(again)),
    };
    assert!(through_datafusion.is_timeout());
    // Other failures are not timeouts, and the import pool has no limit.
    let other = client.query_one("SELECT 1/0", &[]).await.unwrap_err();
    assert!(
        !tgpulse::query::Error::Db {
            step: "divide",
            source: other
        }
        .is_timeout()
    );
    let unlimited = t.client().await;
    let row = unlimited
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "0");
    let row = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "200ms");
}
