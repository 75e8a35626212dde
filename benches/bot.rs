//! Bot reply latency, the bot engine's own time, and memory (not criterion: one long run,
//! printed as a table).
//!
//! The real `tgpulse bot` binary runs as a child process against the fake Bot API of the
//! tests (tests/it/fake_telegram.rs) on loopback, over the full real subscriber file
//! (426 channels, imported once into the database `tgpulse_bench_bot`).
//!
//! - Reply latency of `/stats @channel N` with its chart, measured at the fake server from the
//!   moment `getUpdates` hands the update out to the moment `sendPhoto` arrives. This includes
//!   teloxide's throttle queue, i.e. Telegram's send limits (30 messages/s overall).
//! - The engine's own time on each of those replies: from the update reaching the bot's
//!   handler tree to the `sendPhoto` call being issued, before the throttle queue, with its
//!   parts (query, drawing, PNG encoding, chart cache hit or not). `tgpulse bot` serves no
//!   Prometheus endpoint (only `serve` has `/metrics`, where this is
//!   `tgpulse_bot_engine_seconds`), so the bench reads the bot's debug line per reply
//!   (`TGPULSE_LOG=warn,tgpulse::bot::engine=debug`, target `tgpulse::bot::engine`) from the
//!   child's stderr.
//! - Scenarios: 1 user (sequential requests for 20 channels, 1.2 s apart so Telegram's
//!   1 message/s per chat never queues them); 50 users at once asking about 50 different
//!   channels (3 rounds, each round a window not asked before, 364/363/362 days, so every
//!   chart is drawn); 50 users at once asking about the same channel (3 rounds, a fresh window
//!   each, 361/360/359 days: the chart cache at work).
//! - The child's resident memory (VmRSS from /proc) when idle, and its peak under load.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (TGPULSE_BENCH_SERVER_URL) and ../shared/data.
//! Run: `cargo bench --profile dev --bench bot`.

#[path = "../tests/it/fake_telegram.rs"]
mod fake_telegram;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_telegram::{FakeTelegram, TOKEN};
use tgpulse::config::{IngestConfig, StorageConfig};
use tgpulse::db::{self, DatabaseTarget};
use tgpulse::import::{self, ImportOptions};

const DB: &str = "tgpulse_bench_bot";
const USERS: i64 = 50;
/// Telegram's limit on a bot's messages overall, per second.
const TELEGRAM_PER_SECOND: f64 = 30.0;
/// The bot's log filter: warnings, and the engine's line per reply.
const LOG: &str = "warn,tgpulse::bot::engine=debug";

fn server() -> String {
    std::env::var("TGPULSE_BENCH_SERVER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn prepare() -> Vec<String> {
    let (admin, conn) =
        tokio_postgres::connect(&format!("{}/postgres", server()), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(conn);
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DB])
        .await
        .unwrap()
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("CREATE DATABASE {DB}"))
            .await
            .unwrap();
    }
    let pool = db::connect(
        &DatabaseTarget::from_url(&format!("{}/{DB}", server())).unwrap(),
        8,
    )
    .await
    .unwrap();
    let db = db::migrate(&pool, &StorageConfig::default()).await.unwrap();
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/telegram-animals/subscriber_observations.parquet"
    );
    let t = Instant::now();
    let s = import::import(
        &db,
        std::path::Path::new(data),
        &ImportOptions::default(),
        &IngestConfig::default(),
    )
    .await
    .expect("import the real subscriber file (see README, Real data)");
    eprintln!(
        "data: {} new samples in {:.1?} (re-runs add nothing)",
        s.inserted,
        t.elapsed()
    );
    // The 50 largest channels with a handle: each user asks about another one.
    let c = db.pool.get().await.unwrap();
    c.query(
        "SELECT c.handle FROM channels c JOIN LATERAL (
             SELECT members FROM members_daily m WHERE m.channel_id = c.channel_id
             ORDER BY bucket DESC LIMIT 1) last ON true
         WHERE c.handle IS NOT NULL ORDER BY last.members DESC LIMIT 50",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn spawn_bot(tg: &FakeTelegram) -> Child {
    let admins: Vec<String> = (1..=USERS + 1).map(|i| i.to_string()).collect();
    Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .arg("bot")
        .env("TGPULSE_DATABASE_URL", format!("{}/{DB}", server()))
        .env("TGPULSE_BOT_TOKEN", TOKEN)
        .env("TGPULSE_BOT_API_URL", &tg.url)
        .env("TGPULSE_ADMIN_IDS", admins.join(","))
        .env("TGPULSE_BOT_USER_PER_MINUTE", "600")
        .env("TGPULSE_LOG", LOG)
        .env("TGPULSE_LOG_FORMAT", "text")
        .env("TGPULSE_SOURCES", "/nonexistent/tgpulse.toml")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tgpulse bot")
}

/// The engine's time on one reply and its parts, in milliseconds: one
/// `tgpulse::bot::engine` log line of the bot.
#[derive(Debug, Clone, Copy)]
struct EngineLine {
    engine: f64,
    query: f64,
    draw: f64,
    encode: f64,
    hit: bool,
}

impl EngineLine {
    /// A text-format line such as `… DEBUG tgpulse::bot::engine: reply issued
    /// command="stats" engine_ms=12.3 wait_ms=0.01 query_ms=9.8 draw_ms=0 encode_ms=0
    /// cache="hit"`; `None` for any other line.
    fn parse(line: &str) -> Option<Self> {
        if !line.contains("tgpulse::bot::engine") {
            return None;
        }
        let fields: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        let ms = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok());
        Some(Self {
            engine: ms("engine_ms")?,
            query: ms("query_ms").unwrap_or(0.0),
            draw: ms("draw_ms").unwrap_or(0.0),
            encode: ms("encode_ms").unwrap_or(0.0),
            hit: fields.get("cache").copied() == Some("hit"),
        })
    }
}

/// Reads the child's stderr on a thread: engine lines are collected (in order), every other
/// line is passed on to ours.
fn engine_log(child: &mut Child) -> Arc<Mutex<Vec<EngineLine>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("stderr is piped");
    let out = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            match EngineLine::parse(&line) {
                Some(l) => out.lock().unwrap().push(l),
                None => eprintln!("{line}"),
            }
        }
    });
    lines
}

/// The engine lines from index `from` on, once there are `n` of them (or after 5 s: a reply
/// whose line is missing shows as a smaller count in the table).
async fn engine_since(log: &Mutex<Vec<EngineLine>>, from: usize, n: usize) -> Vec<EngineLine> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        {
            let lines = log.lock().unwrap();
            if lines.len() >= from + n || Instant::now() > deadline {
                return lines[from..].to_vec();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The `p` quantile of `v` (nearest rank), in ms; `None` when empty.
fn pct_ms(v: impl Iterator<Item = f64>, p: f64) -> Option<f64> {
    let mut v: Vec<f64> = v.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() as f64 - 1.0) * p).round() as usize])
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"))
}

/// One scenario's measurements.
struct Scenario {
    name: &'static str,
    /// Update handed out → `sendPhoto` arrived, per reply.
    latency: Vec<Duration>,
    /// The engine's lines of those replies.
    engine: Vec<EngineLine>,
}

impl Scenario {
    fn row(&mut self) -> String {
        self.latency.sort();
        let v = &self.latency;
        let e = &self.engine;
        let drawn = move || e.iter().filter(|l| !l.hit);
        format!(
            "| {} | {} | {} ms | {} ms | {} ms | {} | {} | {} | {} | {} | {} | {} of {} |",
            self.name,
            v.len(),
            pct(v, 0.5).as_millis(),
            pct(v, 0.99).as_millis(),
            v[v.len() - 1].as_millis(),
            ms(pct_ms(e.iter().map(|l| l.engine), 0.5)),
            ms(pct_ms(e.iter().map(|l| l.engine), 0.99)),
            ms(pct_ms(e.iter().map(|l| l.engine), 1.0)),
            ms(pct_ms(e.iter().map(|l| l.query), 0.5)),
            ms(pct_ms(drawn().map(|l| l.draw), 0.5)),
            ms(pct_ms(drawn().map(|l| l.encode), 0.5)),
            e.iter().filter(|l| l.hit).count(),
            e.len(),
        )
    }
}

/// Sends `texts[u - 1]` from each user `u` at once and returns each reply's latency.
async fn round(tg: &FakeTelegram, texts: &[String], pid: u32, peak: &mut u64) -> Vec<Duration> {
    let users = texts.len() as i64;
    let before = tg
        .calls()
        .iter()
        .filter(|c| c.method == "sendphoto")
        .count();
    let ids: Vec<(i64, i64)> = (1..=users)
        .map(|u| (u, tg.message(u, &texts[(u - 1) as usize])))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        *peak = (*peak).max(rss_kib(pid, "VmRSS:"));
        let n = tg
            .calls()
            .iter()
            .filter(|c| c.method == "sendphoto")
            .count();
        if n >= before + users as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replies missing: {} of {users}",
            n - before
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ids.iter()
        .map(|(user, update)| {
            let photo = tg.to_chat("sendphoto", *user).pop().expect("a photo");
            photo.at - tg.handed_at(*update).expect("handed out")
        })
        .collect()
}

/// 3 rounds of `USERS` users at once; `text(round, user)` is what user `user` (0-based)
/// sends in round `round`.
async fn rounds(
    tg: &FakeTelegram,
    pid: u32,
    peak: &mut u64,
    text: impl Fn(u32, usize) -> String,
) -> Vec<Duration> {
    let mut latency = Vec::new();
    for r in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await; // per-chat limit between rounds
        let texts: Vec<String> = (0..USERS as usize).map(|u| text(r, u)).collect();
        latency.extend(round(tg, &texts, pid, peak).await);
    }
    latency
}

#[tokio::main]
async fn main() {
    let handles = prepare().await;
    let tg = FakeTelegram::start().await;
    let mut child = spawn_bot(&tg);
    let log = engine_log(&mut child);
    let pid = child.id();
    tg.wait(1, Duration::from_secs(60), |c| c.method == "setmycommands")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_kib(pid, "VmRSS:");
    let mut peak = idle;
    let mark = || log.lock().unwrap().len();

    let from = mark();
    let mut one = Vec::new();
    for i in 0..20 {
        let h = &handles[i % handles.len()];
        let update = tg.message(1, &format!("/stats @{h} 365"));
        let n = tg.to_chat("sendphoto", 1).len();
        tg.wait(n + 1, Duration::from_secs(60), |c| {
            c.method == "sendphoto" && c.chat() == Some(1)
        })
        .await;
        let photo = tg.to_chat("sendphoto", 1).pop().unwrap();
        one.push(photo.at - tg.handed_at(update).unwrap());
        peak = peak.max(rss_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let one_engine = engine_since(&log, from, one.len()).await;
    let idle_after_warm = rss_kib(pid, "VmRSS:");

    // Every round a window not asked before, so nothing comes from the chart cache.
    let from = mark();
    let different = rounds(&tg, pid, &mut peak, |r, u| {
        format!("/stats @{} {}", handles[u % handles.len()], 364 - r)
    })
    .await;
    let different_engine = engine_since(&log, from, different.len()).await;

    // One channel for everybody, a fresh window each round: the first few replies of a round
    // draw the chart (as many as there are query slots), the rest find it cached.
    let from = mark();
    let same = rounds(&tg, pid, &mut peak, |r, _| {
        format!("/stats @{} {}", handles[0], 361 - r)
    })
    .await;
    let same_engine = engine_since(&log, from, same.len()).await;

    let idle_end = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");
    let mut scenarios = [
        Scenario {
            name: "1 user, 20 channels in turn",
            latency: one,
            engine: one_engine,
        },
        Scenario {
            name: "50 users, 50 different channels",
            latency: different,
            engine: different_engine,
        },
        Scenario {
            name: "50 users, same channel",
            latency: same,
            engine: same_engine,
        },
    ];
    println!(
        "| scenario | requests | reply p50 | reply p99 | reply max | engine p50 | engine p99 | \
         engine max | query p50 | draw p50 | encode p50 | chart cache hits |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &mut scenarios {
        println!("{}", s.row());
    }
    println!(
        "reply: update handed out by getUpdates → sendPhoto received (includes teloxide's \
         throttle queue); engine: update in the handler tree → sendPhoto issued; draw and \
         encode over the replies that drew their chart"
    );
    println!(
        "Telegram's own limit: {USERS} photos at {TELEGRAM_PER_SECOND} messages/s take {:.2} s \
         by themselves",
        USERS as f64 / TELEGRAM_PER_SECOND
    );
    println!(
        "memory (VmRSS): idle at start {} MiB, idle after the 1-user run {} MiB, peak under 50 users {} MiB (VmHWM {} MiB), after {} MiB",
        idle / 1024,
        idle_after_warm / 1024,
        peak / 1024,
        hwm / 1024,
        idle_end / 1024
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
}
