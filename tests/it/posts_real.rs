//! Post analytics on the real posts file (`posts_meta.parquet`, 2.74M posts), against counts
//! made independently with DataFusion straight over the file and chrono-tz in this test: the
//! forward network between channels, pair by pair, and the best-time heatmap of 3 channels
//! in Europe/Berlin across the 2021 spring daylight-saving change.

use std::collections::HashMap;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use chrono_tz::Tz;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tgpulse::config::StorageMode;
use tgpulse::domain::{ChannelRef, DayWindow, Days};
use tgpulse::query::{self, Engine};

use crate::common::{TestDb, posts_file};

/// SQL over the posts file as table `p`; every column cast to BIGINT.
async fn over_file(sql: &str) -> Vec<Vec<i64>> {
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "p",
        posts_file().to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for b in batches {
        let cols: Vec<_> = (0..b.num_columns())
            .map(|i| arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Int64).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| {
                        let c = c.as_primitive::<Int64Type>();
                        assert!(c.is_valid(r), "{sql}: NULL in row {r}");
                        c.value(r)
                    })
                    .collect(),
            );
        }
    }
    rows
}

/// Forwards between channels in the file: a post marked as a forward whose original sender
/// is a channel (`PeerChannel`) with an id; each (channel, post) once.
const FILE_FORWARDS: &str = "
    SELECT channel_id, src, count(*) AS n FROM (
        SELECT DISTINCT channel_id, msg_id,
               CAST(CAST(forward_msg_from_peer_id AS DOUBLE) AS BIGINT) AS src
        FROM p
        WHERE is_forward = 1 AND forward_msg_from_peer_type = 'PeerChannel'
          AND forward_msg_from_peer_id IS NOT NULL
    ) GROUP BY channel_id, src";

fn berlin() -> Tz {
    "Europe/Berlin".parse().unwrap()
}

#[tokio::test]
async fn the_forward_network_and_the_heatmap_match_independent_counts_over_the_file() {
    let t = TestDb::new(StorageMode::Plain, berlin(), "").await;
    let path = posts_file();
    let s = t.import(&path).await;
    assert_eq!(s.rejected, 0);

    // Every pair's forward count.
    let want: HashMap<(i64, i64), i64> = over_file(FILE_FORWARDS)
        .await
        .into_iter()
        .map(|r| ((r[0], r[1]), r[2]))
        .collect();
    assert!(
        want.len() > 1000,
        "the file has {} forwarding pairs",
        want.len()
    );
    let rows = t
        .client()
        .await
        .query(
            "SELECT channel_id, source_channel_id, count(*) FROM mentions
             WHERE kind = 'forward' AND source_channel_id IS NOT NULL GROUP BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let got: HashMap<(i64, i64), i64> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let mut diff: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .map(|(k, v)| (*k, *v, got.get(k).copied()))
        .collect();
    diff.sort();
    assert!(
        diff.is_empty(),
        "{} pairs differ, e.g. {:?}",
        diff.len(),
        &diff[..diff.len().min(5)]
    );
    assert_eq!(got.len(), want.len(), "pairs only tgpulse has");

    // The top 10 sources of forwards.
    let top_file: Vec<Vec<i64>> = over_file(&format!(
        "SELECT src, sum(n) AS total FROM ({FILE_FORWARDS}) GROUP BY src ORDER BY total DESC, src LIMIT 10"
    ))
    .await;
    let top_db: Vec<Vec<i64>> = t
        .client()
        .await
        .query(
            "SELECT source_channel_id, count(*) AS total FROM mentions
             WHERE kind = 'forward' AND source_channel_id IS NOT NULL
             GROUP BY 1 ORDER BY total DESC, 1 LIMIT 10",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| vec![r.get::<_, i64>(0), r.get::<_, i64>(1)])
        .collect();
    assert_eq!(top_db, top_file);

    // The query path: the channel that forwards most, over its whole history, names the same
    // sources with the same counts (its top 20).
    let e = Engine::new(t.db.clone());
    let (forwarder, _) = want
        .iter()
        .fold(HashMap::<i64, i64>::new(), |mut m, ((c, _), n)| {
            *m.entry(*c).or_default() += n;
            m
        })
        .into_iter()
        .max_by_key(|(c, n)| (*n, -c))
        .unwrap();
    let ch = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(forwarder).unwrap()),
    )
    .await
    .unwrap();
    let m = query::mentions(&e, &ch, Days::new(3650).unwrap(), None, 20)
        .await
        .unwrap();
    assert_eq!(m.outgoing.len(), 20);
    for p in &m.outgoing {
        let id = p.channel_id.unwrap().get();
        assert_eq!(
            Some(&p.forwards),
            want.get(&(forwarder, id)),
            "{forwarder} -> {id}"
        );
    }

    // The heatmap of the 3 channels with the most posts in the 8 weeks around 2021-03-28.
    let tz = berlin();
    let window = DayWindow::ending(
        NaiveDate::from_ymd_opt(2021, 4, 25).unwrap(),
        Days::new(56).unwrap(),
        tz,
    );
    let (lo, hi) = (
        window.start().timestamp_micros(),
        window.end().timestamp_micros(),
    );
    let posts_of_file = "SELECT channel_id, msg_id, max(CAST(to_timestamp_micros(date) AS BIGINT)) AS t, max(views) AS v
         FROM p WHERE views IS NOT NULL GROUP BY channel_id, msg_id";
    let busiest = over_file(&format!(
        "SELECT channel_id, count(*) AS n FROM ({posts_of_file}) WHERE t >= {lo} AND t < {hi}
         GROUP BY channel_id ORDER BY n DESC, channel_id LIMIT 3"
    ))
    .await;
    assert_eq!(busiest.len(), 3);
    for row in busiest {
        let id = row[0];
        let posts = over_file(&format!(
            "SELECT t, v FROM ({posts_of_file}) WHERE channel_id = {id} AND t >= {lo} AND t < {hi}"
        ))
        .await;
        let mut cells: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
        let mut dst_hours = std::collections::HashSet::new();
        for p in &posts {
            let at = DateTime::from_timestamp_micros(p[0])
                .unwrap()
                .with_timezone(&tz);
            dst_hours.insert(at.offset().to_string());
            let key = (
                at.weekday().num_days_from_monday() as usize,
                at.hour() as usize,
            );
            cells.entry(key).or_default().push(p[1] as f64);
        }
        assert_eq!(
            dst_hours.len(),
            2,
            "channel {id}'s posts straddle the DST change"
        );
        let ch = query::resolve(
            &t.db,
            &ChannelRef::Id(tgpulse::domain::ChannelId::new(id).unwrap()),
        )
        .await
        .unwrap();
        let started = Instant::now();
        let h = query::heatmap(&e, &ch, Days::new(56).unwrap(), Some(window.last))
            .await
            .unwrap();
        eprintln!(
            "heatmap of {id} ({} posts): {:?}",
            posts.len(),
            started.elapsed()
        );
        assert_eq!(h.posts, posts.len() as i64, "channel {id}");
        for (d, row) in h.cells.iter().enumerate() {
            for (hour, cell) in row.iter().enumerate() {
                let mut v = cells.remove(&(d, hour)).unwrap_or_default();
                assert_eq!(
                    cell.posts,
                    v.len() as i64,
                    "channel {id} day {d} hour {hour}"
                );
                let median = (v.len() >= 3).then(|| {
                    v.sort_by(f64::total_cmp);
                    let n = v.len();
                    if n % 2 == 1 {
                        v[n / 2]
                    } else {
                        (v[n / 2 - 1] + v[n / 2]) / 2.0
                    }
                });
                assert_eq!(
                    cell.median_reach, median,
                    "channel {id} day {d} hour {hour}"
                );
            }
        }
        assert!(cells.is_empty());
    }
}
