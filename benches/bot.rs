//! Bot reply latency and memory (not criterion: one long run, printed as a table).
//!
//! The real `tgpulse bot` binary runs as a child process against the fake Bot API of the
//! tests (tests/it/fake_telegram.rs) on loopback, over the full real subscriber file
//! (426 channels, imported once into the database `tgpulse_bench_bot`).
//!
//! - Latency of `/stats @channel 365` with its chart, measured at the fake server from the
//!   moment `getUpdates` hands the update out to the moment `sendPhoto` arrives: 1 user
//!   (sequential requests, 1.2 s apart so Telegram's 1 message/s per chat never queues them)
//!   and 50 users at once (3 rounds).
//! - The child's resident memory (VmRSS from /proc) when idle, and its peak under load.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (TGPULSE_BENCH_SERVER_URL) and ../shared/data.
//! Run: `cargo bench --profile dev --bench bot`.

#[path = "../tests/it/fake_telegram.rs"]
mod fake_telegram;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fake_telegram::{FakeTelegram, TOKEN};
use tgpulse::config::{IngestConfig, StorageConfig};
use tgpulse::db::{self, DatabaseTarget};
use tgpulse::import::{self, ImportOptions};

const DB: &str = "tgpulse_bench_bot";
const USERS: i64 = 50;

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
        .env("TGPULSE_LOG", "warn")
        .env("TGPULSE_SOURCES", "/nonexistent/tgpulse.toml")
        .spawn()
        .expect("start tgpulse bot")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Sends `/stats @h 365` from each user at once and returns each reply's latency.
async fn round(
    tg: &FakeTelegram,
    handles: &[String],
    users: i64,
    pid: u32,
    peak: &mut u64,
) -> Vec<Duration> {
    let before = tg
        .calls()
        .iter()
        .filter(|c| c.method == "sendphoto")
        .count();
    let ids: Vec<(i64, i64)> = (1..=users)
        .map(|u| {
            (
                u,
                tg.message(
                    u,
                    &format!("/stats @{} 365", handles[(u - 1) as usize % handles.len()]),
                ),
            )
        })
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

#[tokio::main]
async fn main() {
    let handles = prepare().await;
    let tg = FakeTelegram::start().await;
    let mut child = spawn_bot(&tg);
    let pid = child.id();
    tg.wait(1, Duration::from_secs(60), |c| c.method == "setmycommands")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_kib(pid, "VmRSS:");
    let mut peak = idle;

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
    let idle_after_warm = rss_kib(pid, "VmRSS:");
    let mut fifty = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await; // per-chat limit between rounds
        fifty.extend(round(&tg, &handles, USERS, pid, &mut peak).await);
    }
    let idle_end = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");
    one.sort();
    fifty.sort();
    println!("| users | requests | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, v) in [("1", &one), ("50 at once", &fifty)] {
        println!(
            "| {name} | {} | {} ms | {} ms | {} ms |",
            v.len(),
            pct(v, 0.5).as_millis(),
            pct(v, 0.99).as_millis(),
            v[v.len() - 1].as_millis()
        );
    }
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
