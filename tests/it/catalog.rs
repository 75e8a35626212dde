//! The catalog's named queries (`queries/watched_channels.sql`, `source_health.sql`,
//! `recent_samples.sql`), run by PostgreSQL as the catalog runs them, on known input: each
//! one's expected output, column names included.

use chrono::{DateTime, Utc};
use tgpulse::catalog::{self, ChannelInfo};
use tgpulse::config::IngestConfig;
use tgpulse::domain::ChannelId;
use tgpulse::ingest::{self, CommitPolicy, MemberSample, PostSample, Record};
use tgpulse::query::{self, NamedQuery};
use tokio_postgres::types::{ToSql, Type};

use crate::common::TestDb;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// The query's output as lines: the column names, then one line per row, cells joined by
/// ` | ` (NULL as an empty cell, instants in RFC 3339 UTC).
async fn table(t: &TestDb, q: NamedQuery, params: &[&(dyn ToSql + Sync)]) -> Vec<String> {
    let rows = t.client().await.query(q.sql, params).await.unwrap();
    let mut out = Vec::new();
    if let Some(first) = rows.first() {
        let names: Vec<&str> = first.columns().iter().map(|c| c.name()).collect();
        out.push(names.join(" | "));
    }
    for r in &rows {
        let cells: Vec<String> = (0..r.len())
            .map(|i| match *r.columns()[i].type_() {
                Type::INT8 => r.get::<_, Option<i64>>(i).map(|v| v.to_string()),
                Type::TEXT => r.get::<_, Option<String>>(i),
                Type::TIMESTAMPTZ => r
                    .get::<_, Option<DateTime<Utc>>>(i)
                    .map(|v| v.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                ref other => panic!("column {i} of {}: unexpected type {other}", q.name),
            })
            .map(Option::unwrap_or_default)
            .collect();
        out.push(cells.join(" | ").trim_end().to_owned());
    }
    out
}

/// Four watched channels: two with member samples, one without, one without a handle; and
/// post samples of @alpha_ch around 2021-07-03T09:30Z.
async fn fixture(t: &TestDb) {
    for (id, handle, title) in [
        (101, Some("alpha_ch"), Some("Alpha")),
        (202, Some("beta_ch"), None),
        (303, Some("gamma_ch"), Some("Gamma")),
        (404, None, Some("No handle")),
    ] {
        let info = ChannelInfo {
            channel_id: ChannelId::new(id).unwrap(),
            handle: handle.map(|h| h.parse().unwrap()),
            title: title.map(str::to_owned),
        };
        catalog::add(&t.db, &info, None).await.unwrap();
    }
    let member = |id: i64, when: &str, members: i64| {
        Record::Member(MemberSample {
            channel_id: ChannelId::new(id).unwrap(),
            observed_at: at(when),
            members,
            post_count: None,
        })
    };
    let post = |post_id: i64, published: &str, observed: &str| {
        Record::Post(PostSample {
            channel_id: ChannelId::new(101).unwrap(),
            post_id,
            published_at: at(published),
            observed_at: at(observed),
            views: Some(10),
            forwards: None,
            replies: None,
            reactions: None,
        })
    };
    let (tx, writer) = ingest::start(&t.db, CommitPolicy::Atomic, &IngestConfig::default(), "t");
    tx.send(vec![
        member(101, "2021-06-29T12:00:00Z", 1000),
        member(101, "2021-07-01T08:00:00Z", 1100),
        member(101, "2021-07-01T18:00:00Z", 1150),
        member(101, "2021-07-03T09:00:00Z", 1050),
        member(202, "2021-07-01T09:00:00Z", 500),
        member(202, "2021-07-02T09:00:00Z", 600),
        // in the last hour before 09:30
        post(1, "2021-07-03T08:00:00Z", "2021-07-03T09:10:00Z"),
        // after `now`: not counted
        post(1, "2021-07-03T08:00:00Z", "2021-07-03T10:00:00Z"),
        // in the last day, not the last hour
        post(3, "2021-07-02T10:00:00Z", "2021-07-02T11:00:00Z"),
        // re-read recently, but published more than 8 days before: not counted
        post(2, "2021-06-20T10:00:00Z", "2021-07-03T09:20:00Z"),
    ])
    .await
    .unwrap();
    drop(tx);
    writer.finish().await.unwrap();
}

#[tokio::test]
async fn watched_channels_lists_the_latest_sample_and_the_last_days_change() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    assert_eq!(
        table(&t, query::WATCHED_CHANNELS, &[]).await,
        [
            "channel_id | handle | title | members | last_sample_at | day_delta",
            "101 | alpha_ch | Alpha | 1050 | 2021-07-03T09:00:00Z | -100",
            "202 | beta_ch |  | 600 | 2021-07-02T09:00:00Z | 100",
            "303 | gamma_ch | Gamma |  |  |",
            "404 |  | No handle |  |  |",
        ]
    );
}

#[tokio::test]
async fn source_health_sums_the_runs_of_each_source() {
    let t = TestDb::plain().await;
    catalog::record_status(
        &t.db,
        "tgstat",
        Some(at("2021-07-03T09:00:00Z")),
        Some(at("2021-07-03T09:05:00Z")),
        Some("@beta_ch (202): unknown channel"),
        [3, 1, 30],
    )
    .await
    .unwrap();
    for (success, counts) in [
        ("2021-07-03T09:10:00Z", [2, 0, 2]),
        ("2021-07-03T09:00:00Z", [1, 0, 1]),
    ] {
        catalog::record_status(&t.db, "botapi", Some(at(success)), None, None, counts)
            .await
            .unwrap();
    }
    assert_eq!(
        table(&t, query::SOURCE_HEALTH, &[]).await,
        [
            "source | last_success | last_error_at | last_error | jobs_ok | jobs_failed",
            "botapi | 2021-07-03T09:10:00Z |  |  | 3 | 0",
            "tgstat | 2021-07-03T09:00:00Z | 2021-07-03T09:05:00Z | @beta_ch (202): unknown channel | 3 | 1",
        ]
    );
}

#[tokio::test]
async fn recent_samples_counts_the_hour_and_the_day_before_now() {
    let t = TestDb::plain().await;
    fixture(&t).await;
    let now = at("2021-07-03T09:30:00Z");
    assert_eq!(
        table(&t, query::RECENT_SAMPLES, &[&now]).await,
        [
            "samples_last_hour | samples_last_day | watched",
            "2 | 3 | 4",
        ]
    );
    // The catalog reads the same numbers.
    let h = catalog::health(&t.db, now).await.unwrap();
    assert_eq!(
        (h.samples_last_hour, h.samples_last_day, h.watched),
        (2, 3, 4)
    );
}
