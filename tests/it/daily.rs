//! Daily buckets follow the configured time zone, days without data stay absent, and the
//! plain-PostgreSQL refresh recomputes exactly what a write touched.

use chrono_tz::Tz;
use tgpulse::config::StorageMode;

use crate::common::{TestDb, scratch};

const SAMPLES: &str = "handle,channel_id,observed_at,subscriber_count\n\
birblife,1363895234,2021-07-01T10:00:00Z,100\n\
birblife,1363895234,2021-07-01T20:59:00Z,110\n\
birblife,1363895234,2021-07-01T21:30:00Z,120\n\
birblife,1363895234,2021-07-04T09:00:00Z,90\n";

#[tokio::test]
async fn daily_buckets_are_local_days_of_the_configured_zone_and_gaps_stay_absent() {
    let moscow: Tz = "Europe/Moscow".parse().unwrap();
    let t = TestDb::new(StorageMode::Plain, moscow, "").await;
    let dir = scratch("tz");
    let f = dir.join("s.csv");
    std::fs::write(&f, SAMPLES).unwrap();
    t.import(&f).await;
    let rows: Vec<(String, i64, i64)> = t
        .client()
        .await
        .query(
            "SELECT to_char(bucket AT TIME ZONE 'Europe/Moscow', 'YYYY-MM-DD HH24:MI'), members, samples
             FROM members_daily ORDER BY bucket",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // 21:30 UTC is 00:30 the next day in Moscow (UTC+3); 07-03 has no sample and no row.
    assert_eq!(
        rows,
        vec![
            ("2021-07-01 00:00".to_owned(), 110, 2),
            ("2021-07-02 00:00".to_owned(), 120, 1),
            ("2021-07-04 00:00".to_owned(), 90, 1),
        ]
    );
}

#[tokio::test]
async fn a_late_sample_recomputes_only_its_day() {
    let t = TestDb::plain().await;
    let dir = scratch("late");
    let f = dir.join("s.csv");
    std::fs::write(&f, SAMPLES).unwrap();
    t.import(&f).await;
    assert_eq!(
        t.count("SELECT members FROM members_daily WHERE bucket = '2021-07-01T00:00:00Z'")
            .await,
        120
    );
    let late = dir.join("late.csv");
    std::fs::write(
        &late,
        "handle,channel_id,observed_at,subscriber_count\nbirblife,1363895234,2021-07-01T23:59:00Z,125\n",
    )
    .unwrap();
    let s = t.import(&late).await;
    assert_eq!(s.inserted, 1);
    assert_eq!(
        t.count("SELECT members FROM members_daily WHERE bucket = '2021-07-01T00:00:00Z'")
            .await,
        125
    );
    assert_eq!(
        t.count("SELECT samples FROM members_daily WHERE bucket = '2021-07-01T00:00:00Z'")
            .await,
        4
    );
    assert_eq!(t.count("SELECT count(*) FROM members_daily").await, 2);
    assert_eq!(
        t.count("SELECT count(*) FROM daily_invalidations").await,
        0,
        "the log is consumed"
    );
}

#[tokio::test]
async fn migrating_twice_applies_nothing_and_a_different_zone_is_refused() {
    let t = TestDb::plain().await;
    let applied = t.count("SELECT count(*) FROM tgpulse_migrations").await;
    let cfg = tgpulse::config::StorageConfig::default();
    let again = tgpulse::db::migrate(&t.db.pool, &cfg).await.unwrap();
    assert_eq!(again.storage, tgpulse::db::Storage::Plain);
    assert_eq!(
        t.count("SELECT count(*) FROM tgpulse_migrations").await,
        applied
    );
    let other = tgpulse::config::StorageConfig {
        timezone: "Asia/Tokyo".parse().unwrap(),
        ..cfg
    };
    let err = tgpulse::db::migrate(&t.db.pool, &other).await.unwrap_err();
    assert!(err.to_string().contains("TGPULSE_TIMEZONE=UTC"), "{err}");
}

#[tokio::test]
async fn the_analyst_role_reads_every_relation_and_writes_none() {
    let t = TestDb::plain().await;
    let dir = scratch("analyst");
    let f = dir.join("s.csv");
    std::fs::write(&f, SAMPLES).unwrap();
    t.import(&f).await;
    let c = t.client().await;
    c.batch_execute("SET ROLE tgpulse_analyst").await.unwrap();
    for rel in [
        "channels",
        "channel_names",
        "posts",
        "member_samples",
        "post_samples",
        "members_daily",
        "post_reach",
        "views_daily",
    ] {
        c.query_one(&format!("SELECT count(*) FROM {rel}"), &[])
            .await
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
    let err = c
        .batch_execute("INSERT INTO member_samples VALUES (1, now(), 1, 'x')")
        .await
        .expect_err("analysts cannot write");
    assert!(
        err.to_string().contains("permission denied")
            || format!("{err:?}").contains("permission denied"),
        "{err:?}"
    );
    c.batch_execute("RESET ROLE").await.unwrap();
}
