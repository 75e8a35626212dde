//! The query layer: each named query's output on known input, pushdown correctness whatever
//! the session time zone, and stats/compare on the real data.

use chrono::NaiveDate;
use chrono_tz::Tz;
use datafusion::assert_batches_eq;
use datafusion::common::ScalarValue;
use tgpulse::config::StorageMode;
use tgpulse::domain::{ChannelRef, Days};
use tgpulse::query::{self, Engine};

use crate::common::{TestDb, animals, scratch};

const FIXTURE: &str = "handle,channel_id,observed_at,subscriber_count\n\
alpha_ch,101,2021-06-29T12:00:00Z,1000\n\
alpha_ch,101,2021-07-01T08:00:00Z,1100\n\
alpha_ch,101,2021-07-01T18:00:00Z,1150\n\
alpha_ch,101,2021-07-03T09:00:00Z,1050\n\
beta_ch,202,2021-07-01T09:00:00Z,500\n\
beta_ch,202,2021-07-02T09:00:00Z,600\n";

const POSTS: &str = "channel_id,channel_name,msg_id,date,views,number_replies,number_forwards\n\
101,alpha_ch,1,2021-07-01 10:00:00+00:00,300,1,2\n\
101,alpha_ch,2,2021-07-01 11:00:00+00:00,500,0,1\n\
101,alpha_ch,3,2021-07-03 11:00:00+00:00,400,0,0\n";

async fn fixture(t: &TestDb) {
    let dir = scratch(&format!("q-{}", t.name));
    let m = dir.join("m.csv");
    let p = dir.join("p.csv");
    std::fs::write(&m, FIXTURE).unwrap();
    std::fs::write(&p, POSTS).unwrap();
    t.import(&m).await;
    t.import(&p).await;
}

fn ts(s: &str) -> ScalarValue {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_micros();
    ScalarValue::TimestampMicrosecond(Some(t), Some("UTC".into()))
}

fn window_params(id: i64) -> Vec<ScalarValue> {
    vec![
        ScalarValue::Int64(Some(id)),
        ts("2021-07-01T00:00:00Z"),
        ts("2021-07-04T00:00:00Z"),
    ]
}

#[tokio::test]
async fn channel_days_returns_the_baseline_and_deltas_against_the_previous_day_with_data() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let b = e
        .run(query::CHANNEL_DAYS, window_params(101))
        .await
        .unwrap();
    assert_batches_eq!(
        [
            "+----------------------+---------+-------+-----------+",
            "| bucket               | members | delta | in_window |",
            "+----------------------+---------+-------+-----------+",
            "| 2021-06-29T00:00:00Z | 1000    |       | false     |",
            "| 2021-07-01T00:00:00Z | 1150    | 150   | true      |",
            "| 2021-07-03T00:00:00Z | 1050    | -100  | true      |",
            "+----------------------+---------+-------+-----------+",
        ],
        &b
    );
}

#[tokio::test]
async fn channel_reach_sums_posts_and_views_of_the_window() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let b = e
        .run(query::CHANNEL_REACH, window_params(101))
        .await
        .unwrap();
    assert_batches_eq!(
        [
            "+-------+-------+-----------------+",
            "| posts | views | days_with_posts |",
            "+-------+-------+-----------------+",
            "| 3     | 1200  | 2               |",
            "+-------+-------+-----------------+",
        ],
        &b
    );
    let none = e
        .run(query::CHANNEL_REACH, window_params(202))
        .await
        .unwrap();
    assert_batches_eq!(
        [
            "+-------+-------+-----------------+",
            "| posts | views | days_with_posts |",
            "+-------+-------+-----------------+",
            "|       |       | 0               |",
            "+-------+-------+-----------------+",
        ],
        &none
    );
}

#[tokio::test]
async fn channel_last_day_and_largest_channels_rank_by_the_last_day() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let (day, observed) = query::last_day(&e, tgpulse::domain::ChannelId::new(202).unwrap())
        .await
        .unwrap();
    assert_eq!(day.unwrap().to_string(), "2021-07-02");
    assert_eq!(observed.unwrap().to_rfc3339(), "2021-07-02T09:00:00+00:00");
    let none = query::last_day(&e, tgpulse::domain::ChannelId::new(999).unwrap())
        .await
        .unwrap();
    assert_eq!(none, (None, None));
    let b = e.run(query::LARGEST_CHANNELS, vec![]).await.unwrap();
    assert_batches_eq!(
        [
            "+------------+---------+----------------------+",
            "| channel_id | members | bucket               |",
            "+------------+---------+----------------------+",
            "| 101        | 1050    | 2021-07-03T00:00:00Z |",
            "| 202        | 600     | 2021-07-02T00:00:00Z |",
            "+------------+---------+----------------------+",
        ],
        &b
    );
}

#[tokio::test]
async fn stats_follow_the_documented_formulas() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let ch = query::resolve(&t.db, &"@alpha_ch".parse().unwrap())
        .await
        .unwrap();
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let s = query::stats(&e, &ch, Days::new(3).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        (s.first_day, s.last_day),
        (d("2021-07-01"), d("2021-07-03"))
    );
    assert_eq!(s.members, Some(1050));
    assert_eq!(s.baseline, Some((d("2021-06-29"), 1000)));
    assert_eq!(s.delta, Some(50));
    assert_eq!(s.growth_pct, Some(5.0));
    assert_eq!(s.mean_daily_growth, Some(50.0 / 4.0));
    assert_eq!(s.best_day, Some((d("2021-07-01"), 150)));
    assert_eq!(s.worst_day, Some((d("2021-07-03"), -100)));
    assert_eq!(s.missing_days, vec![(d("2021-07-02"), d("2021-07-02"))]);
    assert_eq!(s.posts, Some(3));
    assert_eq!(s.avg_post_reach, Some(400.0));
    // ERR = avg post reach / members × 100 = 400 / 1050 × 100
    assert!((s.err_pct.unwrap() - 400.0 / 1050.0 * 100.0).abs() < 1e-9);
    assert_eq!(s.series.last().unwrap().index, Some(105.0));

    let beta = query::resolve(&t.db, &"202".parse().unwrap())
        .await
        .unwrap();
    let sb = query::stats(&e, &beta, Days::new(3).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(sb.posts, None, "no posts is unknown, not 0");
    assert_eq!(sb.err_pct, None);
    let err = query::resolve(&t.db, &"@nobody_here".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, query::Error::NotFound(_)));
}

#[tokio::test]
async fn pushdown_results_do_not_depend_on_the_session_time_zone() {
    // The connection's TimeZone is New York; filters bind instants, so nothing shifts.
    let ny = TestDb::new(
        StorageMode::Plain,
        Tz::UTC,
        "?options=-c%20TimeZone%3DAmerica%2FNew_York",
    )
    .await;
    fixture(&ny).await;
    let tz: String = ny
        .client()
        .await
        .query_one("SHOW TimeZone", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tz, "America/New_York");
    let e = Engine::new(ny.db.clone());
    let b = e
        .run(query::CHANNEL_DAYS, window_params(101))
        .await
        .unwrap();
    let rows: usize = b.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    let ctx = e.session().await.unwrap();
    let df = ctx
        .sql(
            "SELECT count(*) AS n FROM member_samples WHERE observed_at >= $1 AND observed_at < $2",
        )
        .await
        .unwrap()
        .with_param_values(vec![ts("2021-07-01T00:00:00Z"), ts("2021-07-01T12:00:00Z")])
        .unwrap();
    // `full_filters` = the provider applies them exactly in SQL; DataFusion adds no FilterExec.
    let plan = df
        .clone()
        .into_optimized_plan()
        .unwrap()
        .display_indent()
        .to_string();
    assert!(
        plan.contains("full_filters=[member_samples.observed_at >= TimestampMicrosecond("),
        "{plan}"
    );
    assert!(!plan.contains("Filter:"), "{plan}");
    let b = df.collect().await.unwrap();
    assert_batches_eq!(["+---+", "| n |", "+---+", "| 2 |", "+---+"], &b);
}

#[tokio::test]
async fn stats_and_compare_work_on_the_real_top30_file() {
    let t = TestDb::plain().await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    let e = Engine::new(t.db.clone());
    let top = query::largest_channels(&e, 5).await.unwrap();
    assert_eq!(top.len(), 5);
    assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
    let largest = query::resolve(&t.db, &ChannelRef::Id(top[0].0))
        .await
        .unwrap();
    let s = query::stats(&e, &largest, Days::new(90).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(s.members, Some(top[0].1));
    assert!(s.days_with_data > 60, "{} days", s.days_with_data);
    assert_eq!(s.days_with_data + s.missing_day_count(), 90);

    let mut chans = Vec::new();
    for (id, _) in &top {
        chans.push(query::resolve(&t.db, &ChannelRef::Id(*id)).await.unwrap());
    }
    let c = query::compare(&e, &chans, Days::new(90).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(c.channels.len(), 5);
    for s in &c.channels {
        let first = s.series.first().expect("each of the 5 has data");
        let base = s.baseline.unwrap().1 as f64;
        assert!((first.index.unwrap() - first.members as f64 / base * 100.0).abs() < 1e-9);
    }

    // The birds drop of July 2021 shows in a stats window over it.
    let birds = query::resolve(&t.db, &"@birds".parse().unwrap())
        .await
        .unwrap();
    let july = query::stats(
        &e,
        &birds,
        Days::new(25).unwrap(),
        NaiveDate::from_ymd_opt(2021, 7, 31),
    )
    .await
    .unwrap();
    assert!(july.delta.unwrap() < -100_000, "{:?}", july.delta);
    assert!(july.worst_day.unwrap().1 < -8_000);
}
