//! The real datasets import completely, idempotently, and the daily relations agree with an
//! independent computation straight over the Parquet files (DataFusion, not PostgreSQL).

use std::collections::HashMap;

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::common::{TestDb, animals, posts_file};

/// Runs SQL over one registered Parquet file and returns the first column of every row as i64.
async fn df_i64(table: &str, path: &std::path::Path, sql: &str) -> Vec<i64> {
    let ctx = SessionContext::new();
    ctx.register_parquet(table, path.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64).unwrap();
        let c = c.as_primitive::<Int64Type>();
        out.extend((0..c.len()).map(|i| c.value(i)));
    }
    out
}

#[tokio::test]
async fn the_full_observations_file_imports_idempotently_and_members_daily_matches_datafusion() {
    let t = TestDb::plain().await;
    let path = animals("subscriber_observations.parquet");

    let distinct = df_i64(
        "obs",
        &path,
        "SELECT count(*) FROM (SELECT DISTINCT channel_id, observed_at FROM obs)",
    )
    .await[0];
    let first = t.import(&path).await;
    assert_eq!(first.rows_read, 618_930);
    assert_eq!(first.rejected, 0);
    assert_eq!(first.member_samples_inserted as i64, distinct);
    assert_eq!(
        t.count("SELECT count(*) FROM member_samples").await,
        distinct
    );
    assert_eq!(t.count("SELECT count(*) FROM channels").await, 419);

    let again = t.import(&path).await;
    assert_eq!(again.inserted, 0, "re-import must add nothing");
    assert_eq!(again.duplicates, 618_930);
    assert_eq!(
        t.count("SELECT count(*) FROM member_samples").await,
        distinct
    );

    // Independent route: last observation of each UTC day, computed by DataFusion over the file.
    let ctx = SessionContext::new();
    ctx.register_parquet("obs", path.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let expected = ctx
        .sql(
            "SELECT channel_id, day, subscriber_count FROM (
               SELECT channel_id, subscriber_count,
                      date_trunc('day', to_timestamp_micros(observed_at)) AS day,
                      row_number() OVER (PARTITION BY channel_id, date_trunc('day', to_timestamp_micros(observed_at))
                                         ORDER BY to_timestamp_micros(observed_at) DESC) AS rn
               FROM obs) WHERE rn = 1",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut want: HashMap<(i64, i64), i64> = HashMap::new();
    for b in &expected {
        let ids = b.column(0).as_primitive::<Int64Type>();
        let day = arrow::compute::cast(
            b.column(1),
            &arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
        )
        .unwrap();
        let day = day.as_primitive::<TimestampMicrosecondType>();
        let m = b.column(2).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            want.insert((ids.value(i), day.value(i) / 1_000_000), m.value(i));
        }
    }
    let rows = t
        .client()
        .await
        .query(
            "SELECT channel_id, extract(epoch FROM bucket)::bigint, members FROM members_daily",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        want.len(),
        "one members_daily row per (channel, sampled UTC day)"
    );
    let mut mismatches = 0;
    for r in &rows {
        let key: (i64, i64) = (r.get(0), r.get(1));
        if want.get(&key) != Some(&r.get::<_, i64>(2)) {
            mismatches += 1;
        }
    }
    assert_eq!(
        mismatches, 0,
        "members_daily differs from the DataFusion computation"
    );

    // The `birds` channel lost about a third of its subscribers in July 2021.
    let july: Vec<(i64, i64)> = t
        .client()
        .await
        .query(
            "SELECT d.members, d.members - lag(d.members) OVER (ORDER BY d.bucket)
             FROM members_daily d JOIN channels c USING (channel_id)
             WHERE c.handle = 'birds' AND d.bucket >= '2021-07-06' AND d.bucket < '2021-08-01'
             ORDER BY d.bucket",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get::<_, Option<i64>>(1).unwrap_or(0)))
        .collect();
    let peak = july.iter().map(|r| r.0).max().unwrap();
    let end = july.last().unwrap().0;
    assert!(peak - end > 100_000, "birds fell from {peak} to {end}");
    let big_drops = july.iter().filter(|r| r.1 <= -4_000).count();
    assert!(
        big_drops >= 10,
        "only {big_drops} days with a drop of 4,000+"
    );
}

#[tokio::test]
async fn raw_snapshots_with_stale_repeats_and_renames_give_the_same_rows_as_the_clean_file() {
    let t = TestDb::plain().await;
    let raw = t.import(&animals("snapshots_raw.csv.gz")).await;
    assert_eq!(raw.rows_read, 832_939);
    assert_eq!(raw.rejected, 0);
    // Stale repeats collapse to one sample per (channel, observed_at): exactly the rows of the
    // de-duplicated Parquet file, including the 69 first-day rows without a channel id.
    assert_eq!(raw.member_samples_inserted, 618_930);
    let clean = t.import(&animals("subscriber_observations.parquet")).await;
    assert_eq!(
        clean.inserted, 0,
        "the clean file adds nothing to the raw import"
    );

    // Renames keep one identity with a handle history; one handle points to two channels.
    assert_eq!(t.count("SELECT count(*) FROM channels").await, 419);
    assert_eq!(
        t.count("SELECT count(DISTINCT handle) FROM channel_names WHERE channel_id = 1152696623")
            .await,
        2
    );
    assert_eq!(
        t.count(
            "SELECT count(*) FROM channels WHERE channel_id = 1152696623 AND handle = 'truefoxnews'"
        )
        .await,
        1,
        "the current handle is the latest one"
    );
    assert_eq!(
        t.count("SELECT count(DISTINCT channel_id) FROM channel_names WHERE handle = 'monkegif'")
            .await,
        2
    );
}

#[tokio::test]
async fn the_posts_file_imports_every_distinct_post_and_views_daily_matches_datafusion() {
    let t = TestDb::plain().await;
    let path = posts_file();
    let distinct = df_i64(
        "p",
        &path,
        "SELECT count(*) FROM (SELECT DISTINCT channel_id, msg_id FROM p)",
    )
    .await[0];
    let s = t.import(&path).await;
    assert_eq!(s.rows_read, 2_739_938);
    assert_eq!(s.rejected, 0);
    assert_eq!(
        s.post_samples_inserted as i64, distinct,
        "one sample per distinct post"
    );
    assert_eq!(t.count("SELECT count(*) FROM posts").await, distinct);
    assert_eq!(
        s.observed_at.map(|t| t.to_rfc3339()),
        Some("2025-01-09T15:40:59+00:00".to_owned()),
        "observed_at is the newest post in the file"
    );

    let again = t.import(&path).await;
    assert_eq!(again.inserted, 0);

    // views_daily: per channel and UTC publication day, the sum of each post's highest views.
    let want = df_i64(
        "p",
        &path,
        "SELECT sum(v) FROM (SELECT channel_id, msg_id, max(views) AS v FROM p GROUP BY channel_id, msg_id)",
    )
    .await[0];
    let got = t.count("SELECT sum(views)::bigint FROM views_daily").await;
    assert_eq!(got, want);
    let days_want = df_i64(
        "p",
        &path,
        "SELECT count(*) FROM (SELECT DISTINCT channel_id, date_trunc('day', to_timestamp(date)) FROM p)",
    )
    .await[0];
    assert_eq!(t.count("SELECT count(*) FROM views_daily").await, days_want);
    assert_eq!(
        t.count("SELECT sum(posts)::bigint FROM views_daily").await,
        distinct
    );
}
