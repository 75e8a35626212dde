//! Post analytics: each new named query's output on a small fixture whose values are worked
//! out by hand in the comments (golden outputs), the Rust readers over them, and the CLI.

use datafusion::assert_batches_eq;
use datafusion::common::ScalarValue;
use tgpulse::domain::{ChannelRef, DayWindow, Days};
use tgpulse::query::{self, Engine, FrequencyBasis, ReachBasis};

use crate::common::{TestDb, scratch};

/// Members of 101 (alpha_ch): 1000, 1200, 1100 on 07-01..07-03; 202 (beta_ch) has a post
/// counter: 100 posts on 07-01, 110 on 07-03.
const MEMBERS: &str = "handle,channel_id,observed_at,subscriber_count,post_count\n\
alpha_ch,101,2021-07-01 12:00:00+00:00,1000,\n\
alpha_ch,101,2021-07-02 12:00:00+00:00,1200,\n\
alpha_ch,101,2021-07-03 12:00:00+00:00,1100,\n\
beta_ch,202,2021-07-01 12:00:00+00:00,500,100\n\
beta_ch,202,2021-07-03 12:00:00+00:00,520,110\n";

/// `(channel, post, published, observed, views, forwards, replies, reactions)`.
type Sample = (
    i64,
    i64,
    &'static str,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// `(channel, post, published, kind, source channel, source post, source name)`.
type MentionRow = (
    i64,
    i64,
    &'static str,
    &'static str,
    Option<i64>,
    Option<i64>,
    Option<&'static str>,
);

/// Post samples `(channel, post, published, observed, views, forwards, replies, reactions)`.
///
/// 101/1, published 07-01 10:00: samples at +6 h (60), +18 h (180), +30 h (300), +50 h (400).
///   reach 12 h = 60 + (180 - 60) * 6/12 = 120; 24 h = 180 + 120 * 6/12 = 240;
///   48 h = 300 + 100 * 18/20 = 390.
/// 101/2, published 07-01 11:00: +12 h exactly (100), +20 h (150): 12 h = 100, 24/48 h n/a.
/// 101/3, published 07-03 11:00: one sample a week later (500): no reach at any mark.
/// 202/7, published 07-02 10:00: one sample (70).
/// 303/d, published 2021-08-0d 09:00 for d = 1..10 except 9: one sample on 08-20, 100 * d views.
/// 404: Monday 08-02 09:00 (300), Monday 08-09 09:30 (600), Monday 08-16 09:10 (900),
///   Tuesday 08-03 14:00 (100); one sample each on 09-01.
fn samples() -> Vec<Sample> {
    let mut v = vec![
        (
            101,
            1,
            "2021-07-01 10:00Z",
            "2021-07-01 16:00Z".into(),
            60,
            None,
            None,
            None,
        ),
        (
            101,
            1,
            "2021-07-01 10:00Z",
            "2021-07-02 04:00Z".into(),
            180,
            None,
            None,
            None,
        ),
        (
            101,
            1,
            "2021-07-01 10:00Z",
            "2021-07-02 16:00Z".into(),
            300,
            None,
            None,
            None,
        ),
        (
            101,
            1,
            "2021-07-01 10:00Z",
            "2021-07-03 12:00Z".into(),
            400,
            Some(4),
            Some(2),
            Some(10),
        ),
        (
            101,
            2,
            "2021-07-01 11:00Z",
            "2021-07-01 23:00Z".into(),
            100,
            Some(0),
            None,
            None,
        ),
        (
            101,
            2,
            "2021-07-01 11:00Z",
            "2021-07-02 07:00Z".into(),
            150,
            Some(0),
            None,
            None,
        ),
        (
            101,
            3,
            "2021-07-03 11:00Z",
            "2021-07-10 11:00Z".into(),
            500,
            Some(10),
            Some(5),
            None,
        ),
        (
            202,
            7,
            "2021-07-02 10:00Z",
            "2021-07-02 20:00Z".into(),
            70,
            None,
            None,
            None,
        ),
    ];
    const DAYS: [&str; 9] = [
        "2021-08-01 09:00Z",
        "2021-08-02 09:00Z",
        "2021-08-03 09:00Z",
        "2021-08-04 09:00Z",
        "2021-08-05 09:00Z",
        "2021-08-06 09:00Z",
        "2021-08-07 09:00Z",
        "2021-08-08 09:00Z",
        "2021-08-10 09:00Z",
    ];
    for (i, p) in DAYS.iter().enumerate() {
        let d = if i == 8 { 10 } else { i as i64 + 1 };
        v.push((
            303,
            d,
            p,
            "2021-08-20 00:00Z".into(),
            100 * d,
            None,
            None,
            None,
        ));
    }
    for (post, published, views) in [
        (1, "2021-08-02 09:00Z", 300),
        (2, "2021-08-09 09:30Z", 600),
        (3, "2021-08-16 09:10Z", 900),
        (4, "2021-08-03 14:00Z", 100),
    ] {
        v.push((
            404,
            post,
            published,
            "2021-09-01 00:00Z".into(),
            views,
            None,
            None,
            None,
        ));
    }
    v
}

/// Mentions `(channel, post, published, kind, source channel, source post, source name)`.
const MENTIONS: &[MentionRow] = &[
    // Incoming for 101: 202 forwards it and mentions @alpha_ch by name; 303 links it.
    (
        202,
        7,
        "2021-07-02 10:00Z",
        "forward",
        Some(101),
        Some(1),
        None,
    ),
    (
        202,
        8,
        "2021-07-02 12:00Z",
        "mention",
        None,
        None,
        Some("alpha_ch"),
    ),
    (
        303,
        5,
        "2021-07-02 15:00Z",
        "link",
        Some(101),
        Some(2),
        Some("alpha_ch"),
    ),
    // Outgoing from 101: it forwards 202 (post 1) and mentions @someone (posts 1 and 2).
    (
        101,
        1,
        "2021-07-01 10:00Z",
        "forward",
        Some(202),
        Some(3),
        Some("beta"),
    ),
    (
        101,
        1,
        "2021-07-01 10:00Z",
        "mention",
        None,
        None,
        Some("someone"),
    ),
    (
        101,
        2,
        "2021-07-01 11:00Z",
        "mention",
        None,
        None,
        Some("someone"),
    ),
    // 101 mentions @beta_ch (202's current handle) in post 3: the same peer as the forward;
    // and its own @alpha_ch, which is left out.
    (
        101,
        3,
        "2021-07-03 11:00Z",
        "mention",
        None,
        None,
        Some("beta_ch"),
    ),
    (
        101,
        3,
        "2021-07-03 11:00Z",
        "mention",
        None,
        None,
        Some("alpha_ch"),
    ),
];

async fn fixture(t: &TestDb) {
    let dir = scratch(&format!("posts-{}", t.name));
    let m = dir.join("m.csv");
    std::fs::write(&m, MEMBERS).unwrap();
    t.import(&m).await;
    let c = t.client().await;
    for (ch, post, published, observed, views, f, r, x) in samples() {
        let published = published.to_owned();
        c.execute(
            "INSERT INTO posts VALUES ($1, $2, $3::text::timestamptz) ON CONFLICT DO NOTHING",
            &[&ch, &post, &published],
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO post_samples (channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, source)
             VALUES ($1, $2, $3::text::timestamptz, $4::text::timestamptz, $5, $6, $7, $8, 'test')",
            &[&ch, &post, &published, &observed, &views, &f, &r, &x],
        )
        .await
        .unwrap();
    }
    for (ch, post, published, kind, sid, spost, sname) in MENTIONS {
        c.execute(
            "INSERT INTO mentions (channel_id, post_id, published_at, kind, source_channel_id, source_post_id, source_name, source)
             VALUES ($1, $2, $3::text::timestamptz, $4, $5, $6, $7, 'test')",
            &[ch, post, published, kind, sid, spost, sname],
        )
        .await
        .unwrap();
    }
    c.execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .unwrap();
    c.batch_execute(
        "INSERT INTO channels (channel_id, handle) VALUES (303, 'gamma_ch'), (404, 'delta_ch')",
    )
    .await
    .unwrap();
}

fn ts(s: &str) -> ScalarValue {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_micros();
    ScalarValue::TimestampMicrosecond(Some(t), Some("UTC".into()))
}

/// 101 over 07-01 .. 07-03 (UTC days).
fn july(id: i64) -> Vec<ScalarValue> {
    vec![
        ScalarValue::Int64(Some(id)),
        ts("2021-07-01T00:00:00Z"),
        ts("2021-07-04T00:00:00Z"),
    ]
}

async fn run(
    e: &Engine,
    q: query::NamedQuery,
    params: Vec<ScalarValue>,
) -> Vec<arrow::array::RecordBatch> {
    e.run(q, params)
        .await
        .unwrap_or_else(|err| panic!("{}: {err:?}", q.name))
}

#[tokio::test]
async fn post_reach_hours_interpolates_at_each_mark_and_leaves_the_rest_na() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let ctx = e.session().await.unwrap();
    let b = ctx
        .sql(
            "SELECT post_id, samples, views, reach_12h, reach_12h_from, reach_12h_to, reach_24h, reach_48h
             FROM post_reach_hours WHERE channel_id = 101 ORDER BY post_id",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_batches_eq!(
        [
            "+---------+---------+-------+-----------+----------------------+----------------------+-----------+-----------+",
            "| post_id | samples | views | reach_12h | reach_12h_from       | reach_12h_to         | reach_24h | reach_48h |",
            "+---------+---------+-------+-----------+----------------------+----------------------+-----------+-----------+",
            "| 1       | 4       | 400   | 120.0     | 2021-07-01T16:00:00Z | 2021-07-02T04:00:00Z | 240.0     | 390.0     |",
            "| 2       | 2       | 150   | 100.0     | 2021-07-01T23:00:00Z | 2021-07-01T23:00:00Z |           |           |",
            "| 3       | 1       | 500   |           |                      |                      |           |           |",
            "+---------+---------+-------+-----------+----------------------+----------------------+-----------+-----------+",
        ],
        &b
    );
}

#[tokio::test]
async fn channel_post_reach_averages_each_mark_and_err24_divides_by_the_days_members() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    // 12 h: (120 + 100) / 2 = 110 over 2 posts; 24 h: 240 (1 post); 48 h: 390 (1 post).
    // ERR 24 h: post 1's 240 / 1000 members on 07-01 * 100 = 24 %.
    let b = run(&e, query::CHANNEL_POST_REACH, july(101)).await;
    assert_batches_eq!(
        [
            "+-------+---------+-----------+---------+-----------+---------+-----------+-----------+-------------+",
            "| posts | avg_12h | posts_12h | avg_24h | posts_24h | avg_48h | posts_48h | err24_pct | err24_posts |",
            "+-------+---------+-----------+---------+-----------+---------+-----------+-----------+-------------+",
            "| 3     | 110.0   | 2         | 240.0   | 1         | 390.0   | 1         | 24.0      | 1           |",
            "+-------+---------+-----------+---------+-----------+---------+-----------+-----------+-------------+",
        ],
        &b
    );
}

#[tokio::test]
async fn posting_frequency_counts_publication_instants_and_the_median_gap() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    // 10:00, 11:00 on 07-01 and 11:00 on 07-03: gaps of 1 h and 48 h, median 24.5 h.
    let b = run(&e, query::POSTING_FREQUENCY, july(101)).await;
    assert_batches_eq!(
        [
            "+-------+------------------+",
            "| posts | median_gap_hours |",
            "+-------+------------------+",
            "| 3     | 24.5             |",
            "+-------+------------------+",
        ],
        &b
    );
    // 202's counter: 100 on 07-01 12:00, 110 on 07-03 12:00.
    let b = run(&e, query::POST_COUNT_FREQUENCY, july(202)).await;
    assert_batches_eq!(
        [
            "+-------------+------------+----------------------+----------------------+",
            "| first_count | last_count | first_at             | last_at              |",
            "+-------------+------------+----------------------+----------------------+",
            "| 100         | 110        | 2021-07-01T12:00:00Z | 2021-07-03T12:00:00Z |",
            "+-------------+------------+----------------------+----------------------+",
        ],
        &b
    );
}

#[tokio::test]
async fn stats_carry_the_post_metrics_and_fall_back_to_the_post_counter() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let until = chrono::NaiveDate::from_ymd_opt(2021, 7, 3);
    let alpha = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(101).unwrap()),
    )
    .await
    .unwrap();
    let s = query::stats(&e, &alpha, Days::new(3).unwrap(), until)
        .await
        .unwrap();
    let reach: Vec<(u32, Option<f64>, i64)> = s
        .post
        .reach
        .iter()
        .map(|r| (r.hours, r.avg, r.posts))
        .collect();
    assert_eq!(
        reach,
        vec![
            (12, Some(110.0), 2),
            (24, Some(240.0), 1),
            (48, Some(390.0), 1)
        ]
    );
    assert_eq!((s.post.err24_pct, s.post.err24_posts), (Some(24.0), 1));
    let f = &s.post.frequency;
    assert_eq!(f.basis, Some(FrequencyBasis::Posts));
    assert_eq!(
        (f.posts, f.per_day, f.median_gap_hours),
        (Some(3), Some(1.0), Some(24.5))
    );

    // 202 has no sampled posts of its own in the window: its counter gives 10 posts in 2 days.
    let beta = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(202).unwrap()),
    )
    .await
    .unwrap();
    let s = query::stats(&e, &beta, Days::new(3).unwrap(), until)
        .await
        .unwrap();
    let f = &s.post.frequency;
    assert_eq!(
        f.basis,
        Some(FrequencyBasis::Posts),
        "202/7 is a sampled post"
    );
    let w = DayWindow::ending(
        chrono::NaiveDate::from_ymd_opt(2021, 7, 3).unwrap(),
        Days::new(3).unwrap(),
        chrono_tz::Tz::UTC,
    );
    t.client()
        .await
        .batch_execute("DELETE FROM posts WHERE channel_id = 202")
        .await
        .unwrap();
    let m = query::post_metrics(&e, &beta, w).await.unwrap();
    assert_eq!(m.frequency.basis, Some(FrequencyBasis::PostCount));
    assert_eq!(
        (m.frequency.posts, m.frequency.per_day),
        (Some(10), Some(5.0))
    );
    assert_eq!(m.frequency.median_gap_hours, None);
    assert!(m.reach.iter().all(|r| r.posts == 0 || r.avg.is_some()));
}

#[tokio::test]
async fn views_trend_averages_seven_local_days_counting_empty_days_as_zero() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    // 303: 100 * d views on 08-0d, none on 08-09. avg7 needs 7 days since the first post day:
    // 08-07: (100 + .. + 700) / 7 = 400; 08-08: 3500 / 7 = 500;
    // 08-10: (400 + 500 + 600 + 700 + 800 + 0 + 1000) / 7 = 571.43.
    let b = run(
        &e,
        query::VIEWS_TREND,
        vec![
            ScalarValue::Int64(Some(303)),
            ts("2021-07-27T00:00:00Z"),
            ts("2021-08-11T00:00:00Z"),
            ts("2021-08-02T00:00:00Z"),
        ],
    )
    .await;
    assert_batches_eq!(
        [
            "+----------------------+-------+-------+-------------------+",
            "| bucket               | posts | views | avg7              |",
            "+----------------------+-------+-------+-------------------+",
            "| 2021-08-02T00:00:00Z | 1     | 200   |                   |",
            "| 2021-08-03T00:00:00Z | 1     | 300   |                   |",
            "| 2021-08-04T00:00:00Z | 1     | 400   |                   |",
            "| 2021-08-05T00:00:00Z | 1     | 500   |                   |",
            "| 2021-08-06T00:00:00Z | 1     | 600   |                   |",
            "| 2021-08-07T00:00:00Z | 1     | 700   | 400.0             |",
            "| 2021-08-08T00:00:00Z | 1     | 800   | 500.0             |",
            "| 2021-08-10T00:00:00Z | 1     | 1000  | 571.4285714285714 |",
            "+----------------------+-------+-------+-------------------+",
        ],
        &b
    );
    let ch = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(303).unwrap()),
    )
    .await
    .unwrap();
    let v = query::views_trend(&e, &ch, Days::new(10).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        v.last_day.to_string(),
        "2021-08-10",
        "ends on the last day with posts"
    );
    assert_eq!(v.days.len(), 9);
    let change = v.change_pct.unwrap();
    assert!(
        (change - (4000.0 / 7.0 - 400.0) / 400.0 * 100.0).abs() < 1e-9,
        "{change}"
    );
}

#[tokio::test]
async fn the_heatmap_places_posts_by_local_weekday_and_hour_and_leaves_thin_cells_empty() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    // 404: Monday 09 h holds 300, 600, 900 (median 600); Tuesday 14 h holds 100. The typical
    // reach is the median of all four, (300 + 600) / 2 = 450, so Monday 09 h indexes 1.33.
    let b = run(
        &e,
        query::POST_HEATMAP,
        vec![
            ScalarValue::Int64(Some(404)),
            ts("2021-08-01T00:00:00Z"),
            ts("2021-08-20T00:00:00Z"),
        ],
    )
    .await;
    assert_batches_eq!(
        [
            "+---------+------+-------+--------------+--------------------+-----------+---------+",
            "| weekday | hour | posts | median_reach | reach_index        | posts_24h | typical |",
            "+---------+------+-------+--------------+--------------------+-----------+---------+",
            "| 1       | 9    | 3     | 600.0        | 1.3333333333333333 | 0         | 450.0   |",
            "| 2       | 14   | 1     |              |                    | 0         | 450.0   |",
            "+---------+------+-------+--------------+--------------------+-----------+---------+",
        ],
        &b
    );
    // 101: post 1 has a 24 h reach (240, Thursday 10 h); post 2 is younger than 24 h at its
    // last sample and has none, so it is left out; post 3 was first read a week after
    // publication and counts with its latest views (500, Saturday 11 h).
    let b = run(&e, query::POST_HEATMAP, july(101)).await;
    assert_batches_eq!(
        [
            "+---------+------+-------+--------------+-------------+-----------+---------+",
            "| weekday | hour | posts | median_reach | reach_index | posts_24h | typical |",
            "+---------+------+-------+--------------+-------------+-----------+---------+",
            "| 4       | 10   | 1     |              |             | 1         | 370.0   |",
            "| 6       | 11   | 1     |              |             | 0         | 370.0   |",
            "+---------+------+-------+--------------+-------------+-----------+---------+",
        ],
        &b
    );
    let ch = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(404).unwrap()),
    )
    .await
    .unwrap();
    let h = query::heatmap(&e, &ch, Days::new(30).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(h.posts, 4);
    assert_eq!(h.basis, Some(ReachBasis::LatestViews));
    // Rows start on Monday.
    assert_eq!(h.cells[0][9].posts, 3);
    assert_eq!(h.cells[0][9].median_reach, Some(600.0));
    assert_eq!(h.cells[1][14].posts, 1);
    assert_eq!(h.cells[1][14].index, None, "under 3 posts: empty, not 0");
    assert_eq!(h.best(3).len(), 1);
}

#[tokio::test]
async fn top_posts_rank_by_reach_and_by_engagement_among_posts_with_median_reach() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    // Views 400, 150, 500. Engagement: post 1 (4 + 2 + 10) / 400 = 4 %, post 2 0 / 150 = 0 %,
    // post 3 (10 + 5) / 500 = 3 %. The median reach is 400, so post 2 is not ranked by
    // engagement. Top 2 by reach: 3, 1; by engagement: 1, 3.
    let mut p = july(101);
    p.push(ScalarValue::Int64(Some(2)));
    let b = run(&e, query::TOP_POSTS, p).await;
    assert_batches_eq!(
        [
            "+---------+----------------------+-------+-----------+----------+---------+-----------+----------------+------------+-----------------+-------+",
            "| post_id | published_at         | views | reach_24h | forwards | replies | reactions | engagement_pct | reach_rank | engagement_rank | posts |",
            "+---------+----------------------+-------+-----------+----------+---------+-----------+----------------+------------+-----------------+-------+",
            "| 3       | 2021-07-03T11:00:00Z | 500   |           | 10       | 5       |           | 3.0            | 1          | 2               | 3     |",
            "| 1       | 2021-07-01T10:00:00Z | 400   | 240.0     | 4        | 2       | 10        | 4.0            | 2          | 1               | 3     |",
            "+---------+----------------------+-------+-----------+----------+---------+-----------+----------------+------------+-----------------+-------+",
        ],
        &b
    );
    let ch = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(101).unwrap()),
    )
    .await
    .unwrap();
    let top = query::top_posts(&e, &ch, Days::new(3).unwrap(), None, 2)
        .await
        .unwrap();
    let ids = |v: &[query::TopPost]| v.iter().map(|p| p.post_id).collect::<Vec<_>>();
    assert_eq!(ids(&top.by_reach), vec![3, 1]);
    assert_eq!(ids(&top.by_engagement), vec![1, 3]);
    assert_eq!(
        top.by_reach[0].link.as_deref(),
        Some("https://t.me/alpha_ch/3")
    );
}

#[tokio::test]
async fn mentions_in_both_directions_with_reach_and_the_next_days_members_change() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let with_handle = || {
        vec![
            ScalarValue::Int64(Some(101)),
            ScalarValue::Utf8(Some("alpha_ch".into())),
            ts("2021-07-01T00:00:00Z"),
            ts("2021-07-04T00:00:00Z"),
        ]
    };
    // 202 forwards 101 (its post 7, 70 views) and mentions @alpha_ch (post 8, not sampled);
    // 303 links it (post 5, not sampled).
    let b = run(&e, query::MENTIONS_INCOMING, with_handle()).await;
    assert_batches_eq!(
        [
            "+---------+----------+----------+-------+-------+-------+",
            "| peer_id | forwards | mentions | links | posts | reach |",
            "+---------+----------+----------+-------+-------+-------+",
            "| 202     | 1        | 1        | 0     | 2     | 70    |",
            "| 303     | 0        | 0        | 1     | 1     |       |",
            "+---------+----------+----------+-------+-------+-------+",
        ],
        &b
    );
    // 101 mentions @someone in posts 1 (400 views) and 2 (150); it forwards 202 in post 1 and
    // mentions @beta_ch, 202's handle, in post 3 (500): one peer with 2 posts, 900 views.
    // Its own @alpha_ch is left out.
    let mut outgoing = july(101);
    outgoing.push(ScalarValue::Utf8(Some("alpha_ch".into())));
    let b = run(&e, query::MENTIONS_OUTGOING, outgoing.clone()).await;
    assert_batches_eq!(
        [
            "+---------+-----------+----------+----------+-------+-------+-------+",
            "| peer_id | peer_name | forwards | mentions | links | posts | reach |",
            "+---------+-----------+----------+----------+-------+-------+-------+",
            "| 202     | beta_ch   | 1        | 1        | 0     | 2     | 900   |",
            "|         | someone   | 0        | 2        | 0     | 2     | 550   |",
            "+---------+-----------+----------+----------+-------+-------+-------+",
        ],
        &b
    );
    // Three incoming posts on 07-02 (70 views sampled); members 1200 on 07-02, 1100 on 07-03.
    let b = run(&e, query::MENTION_DAYS, with_handle()).await;
    assert_batches_eq!(
        [
            "+---------------------+-------+-------+-------------------------+",
            "| day                 | posts | reach | members_change_next_day |",
            "+---------------------+-------+-------+-------------------------+",
            "| 2021-07-02T00:00:00 | 3     | 70    | -100                    |",
            "+---------------------+-------+-------+-------------------------+",
        ],
        &b
    );
    let ch = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(101).unwrap()),
    )
    .await
    .unwrap();
    let m = query::mentions(&e, &ch, Days::new(3).unwrap(), None, 10)
        .await
        .unwrap();
    // Known channels are named from `channels`: 202 is beta_ch there.
    let labels: Vec<String> = m.outgoing.iter().map(|p| p.label()).collect();
    assert_eq!(labels, vec!["@beta_ch", "@someone"]);
    assert_eq!(m.incoming[0].label(), "@beta_ch");
    assert_eq!(m.days.len(), 1);
    assert_eq!(m.days[0].members_change_next_day, Some(-100));
}

#[tokio::test]
async fn post_reach_hours_exports_through_the_streaming_export_and_reads_back() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let e = Engine::new(t.db.clone());
    let dir = scratch(&format!("posts-export-{}", t.name));
    for name in ["post_reach_hours", "mentions"] {
        let path = dir.join(format!("{name}.parquet"));
        let req = tgpulse::export::ExportRequest {
            relation: query::relation(name).unwrap(),
            channel: Some(tgpulse::domain::ChannelId::new(101).unwrap()),
            from: None,
            to: None,
            format: tgpulse::export::ExportFormat::Parquet,
        };
        let s =
            tgpulse::export::export(&e, &req, &tgpulse::export::Destination::File(path.clone()))
                .await
                .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows as u64, s.rows, "{name}");
        // 101 has 3 posts, and 5 mention rows of its own posts.
        let want = if name == "mentions" { 5 } else { 3 };
        assert_eq!(rows, want, "{name}");
    }
}

#[tokio::test]
async fn a_forward_read_without_and_then_with_the_peers_name_is_one_row_with_the_name() {
    use tgpulse::domain::ChannelId;
    use tgpulse::ingest::{self, CommitPolicy, Mention, MentionKind, Record};
    let t = TestDb::plain().await;
    let forward = |name: Option<&str>| {
        Record::Mention(Mention {
            channel_id: ChannelId::new(101).unwrap(),
            post_id: 9,
            published_at: chrono::DateTime::parse_from_rfc3339("2021-07-01T10:00:00Z")
                .unwrap()
                .to_utc(),
            kind: MentionKind::Forward,
            source_channel_id: Some(ChannelId::new(202).unwrap()),
            source_post_id: Some(3),
            source_name: name.map(str::to_owned),
        })
    };
    // Within one batch, and then across batches (a stored row without the name).
    for batches in [
        vec![vec![forward(None), forward(Some("beta"))]],
        vec![vec![forward(None)], vec![forward(Some("beta"))]],
    ] {
        t.client()
            .await
            .batch_execute("DELETE FROM mentions")
            .await
            .unwrap();
        for batch in batches {
            let (tx, writer) = ingest::start(
                &t.db,
                CommitPolicy::Atomic,
                &tgpulse::config::IngestConfig::default(),
                "test",
            );
            tx.send(batch).await.unwrap();
            drop(tx);
            writer.finish().await.unwrap();
        }
        let rows = t
            .client()
            .await
            .query("SELECT source_name FROM mentions", &[])
            .await
            .unwrap();
        let names: Vec<Option<String>> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(names, vec![Some("beta".to_owned())]);
    }
}
