//! `/export` in the bot: exports over the upload limit arrive as parts that each read on
//! their own, with at most one part on disk at any moment; one export per user at a time;
//! the viewers' daily byte allowance.

use std::time::Duration;

use super::{ADMIN, BIRB, bot_config, parquet_rows, start, with_top30};
use crate::common::TestDb;
use crate::fake_telegram::{Call, FakeTelegram};

const VIEWER: i64 = 4242;

async fn samples_of_birb(t: &TestDb) -> i64 {
    t.count(&format!(
        "SELECT count(*) FROM member_samples WHERE channel_id = {BIRB}"
    ))
    .await
}

/// Waits for the "Done:" message that closes an export of several parts.
async fn done(tg: &FakeTelegram, user: i64) -> Call {
    tg.wait(1, Duration::from_secs(90), |c| {
        c.method == "sendmessage" && c.chat() == Some(user) && c.text().starts_with("Done:")
    })
    .await
    .remove(0)
}

/// Every upload happened with exactly one file (the part being sent) in the work folder.
fn one_part_on_disk_at_each_upload(docs: &[Call]) {
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d.dir_entries, Some(1), "files on disk at upload {}", i + 1);
    }
}

#[tokio::test]
async fn a_csv_export_over_the_upload_limit_comes_in_parts_each_with_a_header_and_under_it() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-split-csv");
    let work = cfg.work_dir.clone().unwrap();
    cfg.max_upload = 20_000;
    tg.watch_dir(&work);
    let b = start(&t, &tg, cfg).await;
    tg.message(ADMIN, "/export @birblife samples csv");
    let end = done(&tg, ADMIN).await;
    let docs = tg.to_chat("senddocument", ADMIN);
    assert!(docs.len() >= 2, "split into {} files", docs.len());
    one_part_on_disk_at_each_upload(&docs);
    let expected = samples_of_birb(&t).await;
    let mut times = std::collections::BTreeSet::new();
    let mut rows = 0;
    for (i, d) in docs.iter().enumerate() {
        assert!(
            d.file().len() as u64 <= 20_000,
            "part {} is {} bytes",
            i + 1,
            d.file().len()
        );
        assert!(
            d.text().starts_with(&format!("part {}", i + 1)),
            "{}",
            d.text()
        );
        assert!(d.files[0].1.ends_with(&format!("_part{}.csv", i + 1)));
        let mut r = csv::Reader::from_reader(d.file());
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>()[..3],
            ["channel_id", "observed_at", "members"],
            "part {} has its own header",
            i + 1
        );
        for rec in r.records() {
            let rec = rec.unwrap();
            assert_eq!(rec.get(0), Some(BIRB.to_string().as_str()));
            times.insert(rec.get(1).unwrap().to_owned());
            rows += 1;
        }
    }
    assert_eq!(rows, expected, "every sample once");
    assert_eq!(times.len() as i64, expected, "no sample in two parts");
    assert!(end.text().contains(&format!("in {} files", docs.len())));
    let said = tg.to_chat("editmessagetext", ADMIN);
    assert!(
        said.iter().any(|c| c.text().contains("several files")),
        "the split is explained"
    );
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "the work folder is cleaned up: {left:?}");
    b.stop().await;
}

#[tokio::test]
async fn a_parquet_export_over_the_upload_limit_comes_in_parts_each_a_parquet_file_of_its_own() {
    let t = with_top30().await;
    // Fifty thousand more samples of @birblife, one a minute in 2030: a few hundred KB.
    t.client()
        .await
        .execute(
            "INSERT INTO member_samples (channel_id, observed_at, members, source)
             SELECT $1, timestamptz '2030-01-01 00:00Z' + i * interval '1 minute', i, 'import'
             FROM generate_series(1, 50000) i",
            &[&BIRB],
        )
        .await
        .unwrap();
    let tg = FakeTelegram::start().await;
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-split-parquet");
    let work = cfg.work_dir.clone().unwrap();
    cfg.max_upload = 200_000;
    tg.watch_dir(&work);
    let b = start(&t, &tg, cfg).await;
    tg.message(ADMIN, "/export @birblife samples parquet");
    done(&tg, ADMIN).await;
    let docs = tg.to_chat("senddocument", ADMIN);
    assert!(docs.len() >= 2, "split into {} files", docs.len());
    one_part_on_disk_at_each_upload(&docs);
    let mut rows = 0i64;
    for (i, d) in docs.iter().enumerate() {
        assert!(
            d.file().len() as u64 <= 200_000,
            "part {} is too big",
            i + 1
        );
        // Read by the parquet crate's reader, each part alone.
        let batches = parquet_rows(d.file());
        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(n > 0, "part {} is empty", i + 1);
        rows += n as i64;
    }
    assert_eq!(rows, samples_of_birb(&t).await, "every sample once");
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "the work folder is cleaned up: {left:?}");
    b.stop().await;
}

#[tokio::test]
async fn a_second_export_while_one_runs_is_refused_with_a_reason() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-one-export");
    cfg.max_upload = 20_000;
    let b = start(&t, &tg, cfg).await;
    tg.message(ADMIN, "/export @birblife samples csv");
    // The first part is out, more are coming: the export runs.
    tg.wait_chat("senddocument", ADMIN, 1).await;
    tg.message(ADMIN, "/export @birblife");
    let refused = tg
        .wait(1, Duration::from_secs(30), |c| {
            c.method == "sendmessage" && c.text().contains("still running")
        })
        .await;
    assert_eq!(refused[0].chat(), Some(ADMIN));
    let end = done(&tg, ADMIN).await;
    assert!(
        refused[0].at < end.at,
        "refused while the first export ran, not after"
    );
    let started = |tg: &FakeTelegram| {
        tg.to_chat("sendmessage", ADMIN)
            .iter()
            .filter(|c| c.text().starts_with("Exporting"))
            .count()
    };
    assert_eq!(started(&tg), 1, "the second export did not start");
    // Once the first is done, the next one runs.
    let before = tg.to_chat("senddocument", ADMIN).len();
    tg.message(ADMIN, "/export @birblife");
    tg.wait_chat("senddocument", ADMIN, before + 1).await;
    assert_eq!(started(&tg), 2);
    b.stop().await;
}

#[tokio::test]
async fn a_viewers_daily_allowance_stops_exports_and_survives_a_restart_but_admins_have_none() {
    let t = with_top30().await;
    t.client()
        .await
        .execute(
            "INSERT INTO bot_viewers (user_id, granted_by) VALUES ($1, $2)",
            &[&VIEWER, &ADMIN],
        )
        .await
        .unwrap();
    let tg = FakeTelegram::start().await;
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-quota");
    cfg.max_upload = 20_000;
    cfg.export_quota = 30_000;
    let b = start(&t, &tg, cfg.clone()).await;

    // The first part fits in the allowance, the second would pass it.
    tg.message(VIEWER, "/export @birblife samples csv");
    let stopped = tg
        .wait(1, Duration::from_secs(60), |c| {
            c.chat() == Some(VIEWER) && c.text().contains("allowance")
        })
        .await;
    assert!(
        stopped[0]
            .text()
            .starts_with("The export stopped after 1 file(s)"),
        "{}",
        stopped[0].text()
    );
    let docs = tg.to_chat("senddocument", VIEWER);
    assert_eq!(docs.len(), 1);
    let used = t
        .count(&format!(
            "SELECT bytes FROM bot_export_usage WHERE user_id = {VIEWER}"
        ))
        .await;
    assert_eq!(
        used,
        docs[0].file().len() as i64,
        "the bytes sent are counted"
    );

    // The admin is not limited.
    tg.message(ADMIN, "/export @birblife samples csv");
    done(&tg, ADMIN).await;
    assert!(tg.to_chat("senddocument", ADMIN).len() >= 2);

    // The count is in PostgreSQL: after a restart the next file still does not fit.
    b.stop().await;
    let b = start(&t, &tg, cfg).await;
    tg.message(VIEWER, "/export @birblife samples csv");
    tg.wait(2, Duration::from_secs(60), |c| {
        c.chat() == Some(VIEWER) && c.text().contains("allowance")
    })
    .await;
    assert_eq!(
        tg.to_chat("senddocument", VIEWER).len(),
        1,
        "nothing more sent"
    );

    // Used up: /export says so at once, without starting.
    t.client()
        .await
        .execute(
            "UPDATE bot_export_usage SET bytes = 30000 WHERE user_id = $1",
            &[&VIEWER],
        )
        .await
        .unwrap();
    tg.message(VIEWER, "/export @birblife");
    let m = tg
        .wait(1, Duration::from_secs(30), |c| {
            c.chat() == Some(VIEWER) && c.text().starts_with("You have used your export allowance")
        })
        .await;
    assert!(
        m[0].text().contains("30,000 of 30,000 bytes"),
        "{}",
        m[0].text()
    );
    let started = tg
        .to_chat("sendmessage", VIEWER)
        .iter()
        .filter(|c| c.text().starts_with("Exporting"))
        .count();
    assert_eq!(started, 2, "the refused export did not start");
    b.stop().await;
}
