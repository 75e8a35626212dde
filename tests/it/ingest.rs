//! Idempotency under concurrency, and the rule for two readings of one sample key.

use tgpulse::config::IngestConfig;
use tgpulse::import::{self, ImportOptions};

use crate::common::{TestDb, animals, scratch};

#[tokio::test]
async fn two_concurrent_imports_of_one_file_store_each_sample_once() {
    let t = TestDb::plain().await;
    let file = animals("subscriber_observations_top30.csv");
    let cfg = IngestConfig {
        batch_size: 5_000,
        ..IngestConfig::default()
    };
    let opts = ImportOptions::default();
    // The second import's COPY waits on the first one's uncommitted keys, then hits unique
    // violations and falls back to INSERT .. ON CONFLICT DO NOTHING under a savepoint.
    let (a, b) = tokio::join!(
        import::import(&t.db, &file, &opts, &cfg),
        import::import(&t.db, &file, &opts, &cfg)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.inserted + b.inserted, 60_053, "{a}\n{b}");
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 60_053);
    assert_eq!(
        t.count("SELECT count(*) FROM members_daily").await,
        t.count("SELECT count(DISTINCT (channel_id, date_trunc('day', observed_at, 'UTC'))) FROM member_samples").await
    );
}

#[tokio::test]
async fn a_higher_reading_of_the_same_key_replaces_a_lower_one_and_replays_change_nothing() {
    let t = TestDb::plain().await;
    let dir = scratch("upgrade");
    let header = "channel_id,channel_name,msg_id,date,views,number_replies,number_forwards\n";
    let write = |name: &str, views: i64| {
        let f = dir.join(name);
        std::fs::write(
            &f,
            format!("{header}101,alpha_ch,7,2024-05-01 10:00:00+00:00,{views},0,0\n"),
        )
        .unwrap();
        f
    };
    let at = Some(
        chrono::DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z")
            .unwrap()
            .to_utc(),
    );
    let opts = ImportOptions {
        observed_at: at,
        ..ImportOptions::default()
    };
    let cfg = IngestConfig::default();
    let first = import::import(&t.db, &write("a.csv", 100), &opts, &cfg)
        .await
        .unwrap();
    assert_eq!(first.inserted, 1);
    let higher = import::import(&t.db, &write("b.csv", 120), &opts, &cfg)
        .await
        .unwrap();
    assert_eq!((higher.inserted, higher.replaced), (0, 1));
    let lower = import::import(&t.db, &write("c.csv", 90), &opts, &cfg)
        .await
        .unwrap();
    assert_eq!((lower.inserted, lower.replaced), (0, 0));
    assert_eq!(t.count("SELECT views FROM post_samples").await, 120);
    assert_eq!(
        t.count("SELECT views FROM views_daily").await,
        120,
        "the daily relation follows the update"
    );
    assert_eq!(t.count("SELECT count(*) FROM post_samples").await, 1);
}

#[tokio::test]
async fn a_per_batch_writer_commits_each_batch_and_refreshes_the_daily_relation() {
    use tgpulse::domain::ChannelId;
    use tgpulse::ingest::{self, CommitPolicy, MemberSample, Record};
    let t = TestDb::plain().await;
    let cfg = IngestConfig {
        batch_size: 100,
        queue_capacity: 120,
        batch_max_age_ms: 60_000,
        ..IngestConfig::default()
    };
    let (tx, writer) = ingest::start(&t.db, CommitPolicy::PerBatch, &cfg, "test");
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let records: Vec<Record> = (0..250)
        .map(|i| {
            Record::Member(MemberSample {
                channel_id: ChannelId::new(42).unwrap(),
                observed_at: start + chrono::Duration::hours(i),
                members: 1000 + i,
                post_count: None,
            })
        })
        .collect();
    for chunk in records.chunks(50) {
        tx.send(chunk.to_vec()).await.unwrap();
    }
    // A replayed chunk adds nothing.
    tx.send(records[..50].to_vec()).await.unwrap();
    drop(tx);
    let report = writer.finish().await.unwrap();
    assert_eq!(report.member_samples_received, 300);
    assert_eq!(report.member_samples_inserted, 250);
    assert_eq!(report.batches, 3);
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 250);
    // 250 hourly samples span 11 UTC days; the last one of each day is the daily value.
    assert_eq!(t.count("SELECT count(*) FROM members_daily").await, 11);
    assert_eq!(
        t.count("SELECT members FROM members_daily ORDER BY bucket DESC LIMIT 1")
            .await,
        1249
    );
}

#[tokio::test]
async fn live_batches_reach_the_daily_relation_after_the_deferred_refresh() {
    use tgpulse::domain::ChannelId;
    use tgpulse::ingest::{self, CommitPolicy, MemberSample, Record};
    let t = TestDb::plain().await;
    let cfg = IngestConfig {
        batch_size: 10,
        batch_max_age_ms: 60_000,
        daily_refresh_ms: 300,
        ..IngestConfig::default()
    };
    let (tx, writer) = ingest::start(&t.db, CommitPolicy::PerBatch, &cfg, "test");
    let day = chrono::DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
        .unwrap()
        .to_utc();
    let records: Vec<Record> = (0..10)
        .map(|i| {
            Record::Member(MemberSample {
                channel_id: ChannelId::new(7).unwrap(),
                observed_at: day + chrono::Duration::minutes(i),
                members: 500 + i,
                post_count: None,
            })
        })
        .collect();
    tx.send(records).await.unwrap();
    // The batch commits at once; the daily row follows within the refresh interval, with the
    // writer still running and no further input.
    let mut waited = 0;
    while t.count("SELECT count(*) FROM members_daily").await == 0 {
        assert!(waited < 100, "members_daily never caught up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 10);
    assert_eq!(t.count("SELECT members FROM members_daily").await, 509);
    assert_eq!(
        t.count("SELECT count(*) FROM daily_invalidations").await,
        0,
        "the invalidation log was consumed"
    );
    drop(tx);
    writer.finish().await.unwrap();
}

#[tokio::test]
async fn a_partial_batch_is_committed_once_it_is_old_enough() {
    use tgpulse::domain::ChannelId;
    use tgpulse::ingest::{self, CommitPolicy, MemberSample, Record};
    let t = TestDb::plain().await;
    let cfg = IngestConfig {
        batch_size: 10_000,
        queue_capacity: 1_000,
        batch_max_age_ms: 50,
        ..IngestConfig::default()
    };
    let (tx, writer) = ingest::start(&t.db, CommitPolicy::PerBatch, &cfg, "test");
    let sample = MemberSample {
        channel_id: ChannelId::new(7).unwrap(),
        observed_at: chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .to_utc(),
        members: 5,
        post_count: None,
    };
    tx.send(vec![Record::Member(sample)]).await.unwrap();
    // The sender is still open: only the age limit can have flushed it.
    let mut stored = 0;
    for _ in 0..100 {
        stored = t.count("SELECT count(*) FROM member_samples").await;
        if stored == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stored, 1, "the partial batch was not committed by age");
    drop(tx);
    assert_eq!(writer.finish().await.unwrap().member_samples_inserted, 1);
}
