//! The TimescaleDB path: hypertables, real-time continuous aggregates and policies, and the
//! same daily results as the plain-PostgreSQL path on the same input. Runs only where the
//! server has the community extension preloaded; otherwise it says SKIPPED and why.
//! `storage_detection` runs the binary against a server where the extension is installed but
//! not preloaded; it needs only the extension's files.

mod storage_detection;

use chrono_tz::Tz;
use tgpulse::config::StorageMode;
use tgpulse::db::Storage;
use tgpulse::domain::{ChannelId, ChannelRef, DayWindow, Days};
use tgpulse::query::{self, Engine};

use crate::common::{TestDb, animals, posts_file, scratch, timescale_unavailable};

macro_rules! require_timescale {
    () => {
        if let Some(why) = timescale_unavailable().await {
            eprintln!("SKIPPED: {why}; the plain-PostgreSQL path was tested instead");
            return;
        }
    };
}

/// A small real posts sample: the first 60,000 rows of the posts file, as CSV.
async fn posts_sample(dir: &std::path::Path) -> std::path::PathBuf {
    use datafusion::dataframe::DataFrameWriteOptions;
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "p",
        posts_file().to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let out = dir.join("posts_sample");
    ctx.sql("SELECT channel_id, channel_name, msg_id, date, views, number_replies, number_forwards, is_forward, forward_msg_from_peer_type, forward_msg_from_peer_id, forward_msg_from_peer_name FROM p LIMIT 60000")
        .await
        .unwrap()
        .write_csv(out.to_str().unwrap(), DataFrameWriteOptions::new().with_single_file_output(true), None)
        .await
        .unwrap();
    let csv = dir.join("posts_sample.csv");
    std::fs::rename(&out, &csv).unwrap();
    csv
}

async fn rows(t: &TestDb, sql: &str) -> Vec<String> {
    t.client()
        .await
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

#[tokio::test]
async fn timescale_and_plain_postgres_give_identical_daily_relations() {
    require_timescale!();
    // A zone with daylight-saving changes: 23- and 25-hour days must bucket alike.
    let tz: Tz = "America/New_York".parse().unwrap();
    let ts = TestDb::new(StorageMode::Timescale, tz, "").await;
    let plain = TestDb::new(StorageMode::Plain, tz, "").await;
    assert_eq!(ts.db.storage, Storage::Timescale);
    let dir = scratch("ts-compare");
    let posts = posts_sample(&dir).await;
    for t in [&ts, &plain] {
        t.import(&animals("subscriber_observations_top30.csv"))
            .await;
        t.import(&posts).await;
    }
    assert_eq!(
        ts.count("SELECT count(*) FROM timescaledb_information.hypertables")
            .await,
        2
    );
    assert_eq!(
        ts.count("SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE NOT materialized_only").await,
        3
    );
    for sql in [
        "SELECT format('%s|%s|%s|%s|%s|%s|%s', channel_id, bucket, members, members_min, members_max, samples, last_observed_at)
         FROM members_daily ORDER BY channel_id, bucket",
        "SELECT format('%s|%s|%s|%s|%s|%s|%s', channel_id, bucket, posts, views, forwards, replies, last_observed_at)
         FROM views_daily ORDER BY channel_id, bucket",
    ] {
        let a = rows(&ts, sql).await;
        let b = rows(&plain, sql).await;
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len(), "{sql}");
        assert!(a == b, "TimescaleDB and plain PostgreSQL differ for {sql}");
    }
}

#[tokio::test]
async fn timescale_and_plain_postgres_give_identical_post_analytics() {
    require_timescale!();
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let ts = TestDb::new(StorageMode::Timescale, tz, "").await;
    let plain = TestDb::new(StorageMode::Plain, tz, "").await;
    let posts = posts_sample(&scratch("ts-posts")).await;
    for t in [&ts, &plain] {
        t.import(&posts).await;
    }
    let busiest: Vec<i64> = plain
        .client()
        .await
        .query(
            "SELECT channel_id FROM posts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(busiest.len(), 3);
    assert!(plain.count("SELECT count(*) FROM mentions").await > 0);
    let days = Days::new(365).unwrap();
    for id in busiest {
        let mut outputs = Vec::new();
        for t in [&ts, &plain] {
            let e = Engine::new(t.db.clone());
            let ch = query::resolve(&t.db, &ChannelRef::Id(ChannelId::new(id).unwrap()))
                .await
                .unwrap();
            let v = query::views_trend(&e, &ch, days, None).await.unwrap();
            let w = DayWindow {
                first: v.first_day,
                last: v.last_day,
                tz,
            };
            outputs.push(serde_json::json!({
                "views": v,
                "heatmap": query::heatmap(&e, &ch, days, None).await.unwrap(),
                "top": query::top_posts(&e, &ch, days, None, 10).await.unwrap(),
                "mentions": query::mentions(&e, &ch, days, None, 20).await.unwrap(),
                "metrics": query::post_metrics(&e, &ch, w).await.unwrap(),
            }));
        }
        assert!(
            outputs[0] == outputs[1],
            "channel {id}: TimescaleDB and plain PostgreSQL differ"
        );
        assert!(!outputs[0]["views"]["days"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn timescale_real_time_aggregates_see_samples_before_any_refresh() {
    require_timescale!();
    let t = TestDb::new(StorageMode::Timescale, Tz::UTC, "").await;
    let c = t.client().await;
    c.batch_execute(
        "INSERT INTO member_samples VALUES (1, '2026-01-01T10:00:00Z', 5, 'test'), (1, '2026-01-01T11:00:00Z', 7, 'test')",
    )
    .await
    .unwrap();
    assert_eq!(
        t.count("SELECT members FROM members_daily WHERE channel_id = 1")
            .await,
        7
    );
}

#[tokio::test]
async fn retention_inside_the_refresh_window_is_refused() {
    require_timescale!();
    let t = TestDb::new(StorageMode::Timescale, Tz::UTC, "").await;
    let cfg = tgpulse::config::StorageConfig {
        retention_days: 10,
        refresh_window_days: 30,
        ..Default::default()
    };
    let err = tgpulse::db::migrate(&t.db.pool, &cfg).await.unwrap_err();
    assert!(err.to_string().contains("refresh window"), "{err}");
    let ok = tgpulse::config::StorageConfig {
        retention_days: 400,
        ..Default::default()
    };
    tgpulse::db::migrate(&t.db.pool, &ok).await.unwrap();
    assert_eq!(
        t.count(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
        )
        .await,
        2
    );
    assert_eq!(t.count("SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'").await, 3);
}

/// The bot on TimescaleDB: `/health` names it, and `/stats` reads the continuous aggregate.
#[tokio::test]
async fn the_bot_reports_timescaledb_and_answers_stats_from_the_continuous_aggregate() {
    use super::bot::{ADMIN, assert_png, bot_config, last_members, start};
    use super::fake_telegram::FakeTelegram;
    require_timescale!();
    let t = TestDb::new(StorageMode::Timescale, Tz::UTC, "").await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-timescale")).await;
    tg.message(ADMIN, "/health");
    let health = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    assert!(
        health.text().contains("storage: TimescaleDB"),
        "{}",
        health.text()
    );
    tg.message(ADMIN, "/stats @birblife 365");
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    let members = last_members(&t, 1_363_895_234).await;
    assert!(
        photo.text().contains(&tgpulse::render::thousands(members)),
        "{}",
        photo.text()
    );
    assert_png(photo.file(), tgpulse::chart::SIZE);
    b.stop().await;
}

/// The installed policy jobs as `relation|kind|job id|schedule|config`, sorted.
async fn policy_jobs(t: &TestDb) -> Vec<String> {
    rows(
        t,
        "SELECT format('%s|%s|%s|%s|%s', coalesce(ca.view_name, j.hypertable_name), j.proc_name,
                j.job_id, j.schedule_interval, j.config - 'hypertable_id' - 'mat_hypertable_id')
         FROM timescaledb_information.jobs j
         LEFT JOIN timescaledb_information.continuous_aggregates ca
           ON ca.materialization_hypertable_name = j.hypertable_name
         WHERE j.proc_name LIKE 'policy_%' AND j.hypertable_name IS NOT NULL
         ORDER BY 1",
    )
    .await
}

#[tokio::test]
async fn timescale_policies_change_only_when_the_configuration_does() {
    require_timescale!();
    let t = TestDb::new(StorageMode::Timescale, Tz::UTC, "").await;
    let cfg = tgpulse::config::StorageConfig {
        mode: StorageMode::Timescale,
        ..Default::default()
    };
    let first = policy_jobs(&t).await;
    // 3 refresh policies, 2 compression policies, retention off.
    assert_eq!(first.len(), 5, "{first:#?}");
    tgpulse::db::migrate(&t.db.pool, &cfg).await.unwrap();
    tgpulse::db::migrate(&t.db.pool, &cfg).await.unwrap();
    assert_eq!(
        policy_jobs(&t).await,
        first,
        "an unchanged start replaced policies"
    );

    // Another refresh schedule replaces the three refresh jobs and nothing else.
    let faster = tgpulse::config::StorageConfig {
        refresh_every_minutes: 15,
        ..cfg.clone()
    };
    tgpulse::db::migrate(&t.db.pool, &faster).await.unwrap();
    let second = policy_jobs(&t).await;
    assert_eq!(second.len(), 5, "{second:#?}");
    for (a, b) in first.iter().zip(&second) {
        if a.contains("policy_refresh_continuous_aggregate") {
            assert_ne!(a, b, "the refresh job was kept");
            assert!(b.contains("|00:15:00|"), "{b}");
        } else {
            assert_eq!(a, b, "a compression job changed");
        }
    }
    tgpulse::db::migrate(&t.db.pool, &faster).await.unwrap();
    assert_eq!(policy_jobs(&t).await, second);

    // Retention on, compression off: retention jobs appear, compression jobs go.
    let other = tgpulse::config::StorageConfig {
        compress_after_days: 0,
        retention_days: 400,
        ..faster
    };
    tgpulse::db::migrate(&t.db.pool, &other).await.unwrap();
    let third = policy_jobs(&t).await;
    assert_eq!(
        third
            .iter()
            .filter(|j| j.contains("policy_retention"))
            .count(),
        2,
        "{third:#?}"
    );
    assert!(
        !third.iter().any(|j| j.contains("policy_compression")),
        "{third:#?}"
    );
    assert_eq!(
        third
            .iter()
            .filter(|j| j.contains("policy_refresh"))
            .collect::<Vec<_>>(),
        second
            .iter()
            .filter(|j| j.contains("policy_refresh"))
            .collect::<Vec<_>>()
    );
}

/// The alert rules read `members_daily` through a calendar of local midnights; on TimescaleDB
/// that relation is a continuous aggregate. The backtest of the real top-30 file gives the same
/// alerts on both paths, in a zone with daylight saving.
#[tokio::test]
async fn timescale_and_plain_postgres_open_the_same_alerts() {
    require_timescale!();
    use tgpulse::alert::backtest::backtest;
    use tgpulse::alert::{Rule, Settings};
    let tz: Tz = "America/New_York".parse().unwrap();
    let mut found = Vec::new();
    for mode in [StorageMode::Timescale, StorageMode::Plain] {
        let t = TestDb::new(mode, tz, "").await;
        t.import(&animals("subscriber_observations_top30.csv"))
            .await;
        let channels: Vec<tgpulse::domain::ChannelId> = t
            .client()
            .await
            .query("SELECT channel_id FROM channels", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| tgpulse::domain::ChannelId::new(r.get(0)).unwrap())
            .collect();
        let engine = tgpulse::query::Engine::new(t.db.clone());
        let alerts = backtest(
            &engine,
            &Settings::default(),
            &channels,
            &Rule::CHANNEL_RULES,
            "2021-03-01".parse().unwrap(),
            "2021-12-31".parse().unwrap(),
        )
        .await
        .unwrap();
        found.push(alerts);
    }
    assert!(
        found[0]
            .iter()
            .any(|a| a.channel_id == 1_483_991_707 && a.rule == Rule::MembersChange),
        "{:#?}",
        found[0]
    );
    assert_eq!(found[0], found[1]);
}
