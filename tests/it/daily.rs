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

/// Rows of members_daily that differ from a recompute from member_samples (both ways).
const DIFFERS_FROM_RECOMPUTE: &str = "
WITH tz AS (SELECT value AS tz FROM tgpulse_settings WHERE key = 'timezone'),
r AS (
    SELECT channel_id, date_trunc('day', observed_at, tz.tz) AS bucket,
           (array_agg(members ORDER BY observed_at DESC))[1] AS members, min(members),
           max(members), count(*), max(observed_at)
    FROM member_samples, tz GROUP BY 1, 2)
SELECT count(*) FROM (
    (SELECT * FROM r EXCEPT SELECT * FROM members_daily)
    UNION ALL
    (SELECT * FROM members_daily EXCEPT SELECT * FROM r)) AS x";

#[tokio::test]
async fn merged_daily_rows_equal_a_recompute_after_new_days_replaced_readings_and_outside_writes() {
    let t = TestDb::new(StorageMode::Plain, "Europe/Moscow".parse().unwrap(), "").await;
    let dir = scratch("merge");
    let f = dir.join("a.csv");
    std::fs::write(&f, SAMPLES).unwrap();
    t.import(&f).await;
    assert_eq!(t.count(DIFFERS_FROM_RECOMPUTE).await, 0);
    // New days, an earlier and a later reading on stored days, another channel, and a
    // higher reading at a stored key (replaced, so its day is recomputed from the samples).
    let g = dir.join("b.csv");
    std::fs::write(
        &g,
        "handle,channel_id,observed_at,subscriber_count\n\
         birblife,1363895234,2021-07-01T05:00:00Z,95\n\
         birblife,1363895234,2021-07-01T20:59:00Z,111\n\
         birblife,1363895234,2021-07-04T12:00:00Z,93\n\
         birblife,1363895234,2021-07-09T12:00:00Z,80\n\
         catlife,1363895235,2021-07-01T12:00:00Z,7\n\
         catlife,1363895235,2021-07-01T13:00:00Z,9\n",
    )
    .unwrap();
    let s = t.import(&g).await;
    assert_eq!((s.inserted, s.replaced), (5, 1));
    assert_eq!(t.count(DIFFERS_FROM_RECOMPUTE).await, 0);
    assert_eq!(
        t.count(
            "SELECT samples FROM members_daily WHERE channel_id = 1363895234 AND members = 111"
        )
        .await,
        3,
        "05:00, the replaced 20:59 and 10:00 on 07-01 (Moscow)"
    );
    // A write made outside tgpulse is logged and recomputed by the refresh.
    let c = t.client().await;
    c.batch_execute(
        "INSERT INTO member_samples (channel_id, observed_at, members, source)
         VALUES (1363895235, '2021-07-01T14:00:00Z', 11, 'manual');
         DELETE FROM member_samples WHERE channel_id = 1363895234 AND observed_at = '2021-07-09T12:00:00Z';",
    )
    .await
    .unwrap();
    assert_eq!(t.count("SELECT count(*) FROM daily_invalidations").await, 2);
    c.execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .unwrap();
    assert_eq!(t.count(DIFFERS_FROM_RECOMPUTE).await, 0);
    assert_eq!(
        t.count("SELECT count(*) FROM members_daily WHERE bucket >= '2021-07-08'")
            .await,
        0
    );
}

/// Rows of post_reach and views_daily that differ from a recompute from post_samples.
const POSTS_DIFFER_FROM_RECOMPUTE: &str = "
WITH tz AS (SELECT value AS tz FROM tgpulse_settings WHERE key = 'timezone'),
r AS (
    SELECT channel_id, post_id, date_trunc('day', published_at, tz.tz) AS bucket,
           max(views) AS views, max(forwards) AS forwards, max(replies) AS replies,
           max(reactions) AS reactions, count(*) AS samples, max(observed_at) AS last
    FROM post_samples, tz GROUP BY 1, 2, 3),
v AS (
    SELECT channel_id, bucket, count(*), sum(views)::bigint, sum(forwards)::bigint,
           sum(replies)::bigint, sum(reactions)::bigint, max(last)
    FROM r GROUP BY 1, 2)
SELECT (SELECT count(*) FROM ((SELECT * FROM r EXCEPT SELECT * FROM post_reach)
                              UNION ALL (SELECT * FROM post_reach EXCEPT SELECT * FROM r)) a)
     + (SELECT count(*) FROM ((SELECT * FROM v EXCEPT SELECT * FROM views_daily)
                              UNION ALL (SELECT * FROM views_daily EXCEPT SELECT * FROM v)) b)";

#[tokio::test]
async fn live_batches_merge_posts_and_members_into_the_daily_relations_as_a_recompute_would() {
    use tgpulse::config::IngestConfig;
    use tgpulse::domain::ChannelId;
    use tgpulse::ingest::{self, CommitPolicy, MemberSample, PostSample, Record};
    let t = TestDb::new(StorageMode::Plain, "Europe/Berlin".parse().unwrap(), "").await;
    let cfg = IngestConfig {
        batch_size: 36,
        batch_max_age_ms: 60_000,
        ..IngestConfig::default()
    };
    let (tx, writer) = ingest::start(&t.db, CommitPolicy::PerBatch, &cfg, "test");
    let at = |h: i64| {
        chrono::DateTime::parse_from_rfc3339("2025-03-29T20:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::Duration::hours(h)
    };
    // Posts published around the spring DST change, each read every 3 hours for a day with
    // growing counters (some readings without views); members every hour.
    let mut records = Vec::new();
    for round in 0..8 {
        for post in 1..=6i64 {
            let published = at(post * 2);
            records.push(Record::Post(PostSample {
                channel_id: ChannelId::new(7).unwrap(),
                post_id: post,
                published_at: published,
                observed_at: published + chrono::Duration::hours(3 * round + 1),
                views: (round % 3 != 2).then_some(100 * post + 10 * round),
                forwards: Some(round),
                replies: None,
                reactions: (round > 4).then_some(post),
            }));
        }
        for h in 0..3 {
            records.push(Record::Member(MemberSample {
                channel_id: ChannelId::new(7).unwrap(),
                observed_at: at(round * 3 + h),
                members: 500 + (round * 3 + h) % 7,
                post_count: None,
            }));
        }
    }
    // Batches of 4 rounds: 4 readings of each post, 12 of the members over 2 local days,
    // dense enough to be merged rather than recomputed.
    for chunk in records.chunks(36) {
        tx.send(chunk.to_vec()).await.unwrap();
    }
    tx.send(records[..30].to_vec()).await.unwrap(); // a replay adds nothing
    drop(tx);
    let report = writer.finish().await.unwrap();
    assert_eq!(report.post_samples_inserted, 48);
    assert_eq!(report.member_samples_inserted, 24);
    assert!(report.batches >= 2, "several batches: {}", report.batches);
    // Each batch merged its partials: 6 posts and the members' local days in Berlin (the
    // first batch 21:00 on the 29th to 08:00 on the 30th: 2 days; the second, 10:00 to 21:00
    // summer time on the 30th: 1 day).
    assert_eq!(report.daily_rows_merged, (6 + 2) + (6 + 1));
    assert_eq!(t.count(DIFFERS_FROM_RECOMPUTE).await, 0);
    assert_eq!(t.count(POSTS_DIFFER_FROM_RECOMPUTE).await, 0);
    assert_eq!(t.count("SELECT count(*) FROM post_reach").await, 6);
    assert_eq!(
        t.count("SELECT max(views) FROM post_reach WHERE post_id = 6")
            .await,
        670
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
async fn a_migration_changed_after_it_was_applied_is_refused_and_named() {
    let t = TestDb::plain().await;
    let c = t.client().await;
    let recorded: String = c
        .query_one(
            "SELECT checksum FROM tgpulse_migrations WHERE file = '0004_collect.sql'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Equivalent to the file having changed since it was applied.
    c.batch_execute(
        "UPDATE tgpulse_migrations SET checksum = '00000000deadbeef' WHERE file = '0004_collect.sql'",
    )
    .await
    .unwrap();
    let cfg = tgpulse::config::StorageConfig::default();
    let err = tgpulse::db::migrate(&t.db.pool, &cfg)
        .await
        .expect_err("a changed migration must refuse the start");
    let msg = err.to_string();
    assert!(
        matches!(err, tgpulse::db::Error::MigrationChanged { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("migration 0004_collect.sql was changed"),
        "{msg}"
    );
    assert!(msg.contains("recorded checksum 00000000deadbeef"), "{msg}");
    assert!(
        msg.contains(&format!("the file now gives {recorded}")),
        "{msg}"
    );
    assert!(msg.contains("new sql/NNNN_name.sql"), "{msg}");
    // The refused start changed nothing; the right checksum starts again.
    c.execute(
        "UPDATE tgpulse_migrations SET checksum = $1 WHERE file = '0004_collect.sql'",
        &[&recorded],
    )
    .await
    .unwrap();
    tgpulse::db::migrate(&t.db.pool, &cfg).await.unwrap();
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
    for rel in BOT_TABLES {
        denied(&c, rel).await;
    }
    c.batch_execute("RESET ROLE").await.unwrap();
    // Whatever bot tables later migrations add: none is readable.
    assert_eq!(
        t.count(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relname LIKE 'bot\\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND has_table_privilege('tgpulse_analyst', c.oid, 'SELECT, INSERT, UPDATE, DELETE')"
        )
        .await,
        0
    );
    // A bot table created by a later migration would get SELECT through the default
    // privileges; the revoke that runs with every migration takes it away.
    assert!(
        t.count(
            "SELECT count(*) FROM pg_default_acl WHERE defaclobjtype = 'r'
               AND array_to_string(defaclacl, ',') LIKE '%tgpulse_analyst=r/%'"
        )
        .await
            > 0,
        "default privileges still grant new analytics relations"
    );
}

/// The admin bot's private state: never readable by analysts.
const BOT_TABLES: [&str; 3] = ["bot_viewers", "bot_actions", "bot_dialogues"];

async fn denied(c: &tokio_postgres::Client, rel: &str) {
    let err = c
        .query_one(&format!("SELECT count(*) FROM {rel}"), &[])
        .await
        .expect_err(&format!("analysts must not read {rel}"));
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{rel}: {err:?}"
    );
}

/// A login in the analyst role, dropped (with its settings) when the value is dropped.
struct Login(String);

impl Drop for Login {
    fn drop(&mut self) {
        crate::common::admin_on_drop(format!("DROP ROLE IF EXISTS {}", self.0));
    }
}

#[tokio::test]
async fn an_analyst_login_gets_a_statement_timeout_and_cannot_read_the_bot_tables() {
    let t = TestDb::plain().await;
    let login = Login(format!(
        "tgpulse_it_alice_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    ));
    let bob = Login(format!("{}_bob", login.0));
    {
        let c = t.client().await;
        c.batch_execute(&format!(
            "CREATE ROLE {0} LOGIN IN ROLE tgpulse_analyst;
             CREATE ROLE {1} LOGIN IN ROLE tgpulse_analyst;
             ALTER ROLE {1} SET statement_timeout = '5min'",
            login.0, bob.0
        ))
        .await
        .unwrap();
    }
    // The next start gives logins without a limit of their own the group's.
    let cfg = tgpulse::config::StorageConfig::default();
    tgpulse::db::migrate(&t.db.pool, &cfg).await.unwrap();
    for (who, timeout) in [(&login.0, "1min"), (&bob.0, "5min")] {
        let url = t
            .url
            .replacen("postgres://postgres@", &format!("postgres://{who}@"), 1);
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let shown: String = c
            .query_one("SHOW statement_timeout", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(shown, timeout, "{who}");
        c.query_one("SELECT count(*) FROM members_daily", &[])
            .await
            .unwrap();
        for rel in BOT_TABLES {
            denied(&c, rel).await;
        }
        drop(c);
        let _ = driver.await;
    }
}
