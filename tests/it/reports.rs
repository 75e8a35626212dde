//! Scheduled reports: the weekly run at Monday 04:00 local time across a daylight-saving
//! change (manual clock), a run missed while the service was down sent at start, no resend
//! after a restart, retries and the give-up, and `tgpulse report` on the real data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tgpulse::clock::{ManualClock, SharedClock};
use tgpulse::config::StorageMode;
use tgpulse::query::Engine;
use tgpulse::report::ReportConfig;
use tgpulse::report::queue::{self, Outcome};
use tgpulse::report::schedule;
use tokio_util::sync::CancellationToken;

use super::bot::{ADMIN, assert_png, bot_config, start, with_top30};
use super::collect::watch_channel;
use super::fake_telegram::FakeTelegram;
use crate::common::{TestDb, scratch};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Two watched channels with a sample a day through March 2026.
pub(crate) async fn two_channels(t: &TestDb) {
    let c = t.client().await;
    for (id, handle, base) in [
        (9101_i64, "alpha_news", 50_000_i64),
        (9102, "beta_news", 20_000),
    ] {
        watch_channel(t, id, handle).await;
        c.execute(
            "INSERT INTO member_samples (channel_id, observed_at, members, source)
             SELECT $1, t, $2 + 100 * row_number() OVER (ORDER BY t), 'test'
             FROM generate_series('2026-02-20 12:00Z'::timestamptz, '2026-04-10 12:00Z', '1 day') AS t",
            &[&id, &base],
        )
        .await
        .unwrap();
    }
    c.execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .unwrap();
}

async fn queued(t: &TestDb, period_start: &str) -> i64 {
    t.count(&format!(
        "SELECT count(*) FROM reports_queue WHERE kind = 'weekly' AND period_start = '{period_start}'"
    ))
    .await
}

async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn run_task(
    t: &TestDb,
    clock: &Arc<ManualClock>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let shared: SharedClock = clock.clone();
    let mut body = schedule::task(
        Engine::new(t.db.clone()),
        ReportConfig::default().parse().unwrap(),
        shared,
    );
    let stop = CancellationToken::new();
    let handle = tokio::spawn(body(stop.clone()));
    (stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_report_runs_at_monday_four_local_time_across_the_daylight_saving_change() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let t = TestDb::new(StorageMode::Plain, berlin, "").await;
    two_channels(&t).await;
    queue::subscribe(&t.db, ADMIN, true).await.unwrap();
    // Sunday 29 March 2026: the clocks went forward at 02:00. Monday 04:00 CEST = 02:00 UTC.
    let clock = ManualClock::new(utc("2026-03-30T01:00:00Z"));
    let (stop, task) = run_task(&t, &clock);
    // At start, the latest run that already passed (23 March) is generated.
    eventually("the missed run of 23 March is queued", async || {
        queued(&t, "2026-03-16").await == 1
    })
    .await;
    clock.set(utc("2026-03-30T01:59:00Z"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        queued(&t, "2026-03-23").await,
        0,
        "03:59 local is too early"
    );
    clock.set(utc("2026-03-30T02:00:00Z"));
    eventually("the week of 23 March is queued at 04:00 CEST", async || {
        queued(&t, "2026-03-23").await == 1
    })
    .await;
    let body: String = t
        .client()
        .await
        .query_one(
            "SELECT body FROM reports_queue WHERE period_start = '2026-03-23'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        body.contains("Weekly report, 23 Mar 2026 – 29 Mar 2026 (Europe/Berlin)"),
        "{body}"
    );
    // alpha_news: 50,000 + 100 a day; on 29 March it is the 38th sample.
    assert!(
        body.contains("@alpha_news: <b>53,800</b> (+700, +1.32 %)"),
        "{body}"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_missed_while_down_is_sent_at_start_and_a_restart_does_not_resend_it() {
    let t = TestDb::plain().await;
    two_channels(&t).await;
    queue::subscribe(&t.db, ADMIN, true).await.unwrap();
    // The service was down through Monday 30 March 04:00 and starts at 09:00.
    let clock = ManualClock::new(utc("2026-03-30T09:00:00Z"));
    let (stop, task) = run_task(&t, &clock);
    eventually("the missed report is queued", async || {
        queued(&t, "2026-03-23").await == 1
    })
    .await;
    // The monthly report of February is due too (1 March 05:00 passed while down).
    eventually("the monthly report is queued", async || {
        t.count("SELECT count(*) FROM reports_queue WHERE kind = 'monthly' AND period_start = '2026-02-01'")
            .await
            == 1
    })
    .await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "reports-once")).await;
    let photos = tg.wait_chat("sendphoto", ADMIN, 2).await;
    for p in &photos {
        assert_png(p.file(), tgpulse::chart::SIZE);
    }
    let texts: Vec<String> = tg
        .to_chat("sendmessage", ADMIN)
        .iter()
        .map(|m| m.text())
        .collect();
    for title in [
        "Weekly report, 23 Mar 2026 – 29 Mar 2026",
        "Monthly report, 1 Feb 2026 – 28 Feb 2026",
    ] {
        assert_eq!(
            texts.iter().filter(|t| t.contains(title)).count(),
            1,
            "{title}: {texts:#?}"
        );
    }
    assert!(
        texts.iter().all(|t| t.contains("Top growers")),
        "{texts:#?}"
    );
    b.stop().await;
    stop.cancel();
    task.await.unwrap().unwrap();
    // Both restart: the report task looks again, the bot looks for due rows.
    let (stop, task) = run_task(&t, &clock);
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "reports-once")).await;
    // The bot has started (it answers) and has looked for due rows twice: nothing is resent.
    tg.message(ADMIN, "/help");
    tg.wait_chat("sendmessage", ADMIN, 3).await;
    tokio::time::sleep(tgpulse::bot::alerts::DELIVERY_EVERY * 2).await;
    assert_eq!(
        tg.to_chat("sendphoto", ADMIN).len(),
        2,
        "each report sent once"
    );
    assert_eq!(
        tg.to_chat("sendmessage", ADMIN).len(),
        3,
        "no report message again"
    );
    assert_eq!(
        t.count("SELECT count(*) FROM reports_queue WHERE state = 'sent'")
            .await,
        2
    );
    tg.message(ADMIN, "/reports off");
    let r = tg.wait_chat("sendmessage", ADMIN, 4).await;
    assert!(r[3].text().contains("No more reports"), "{}", r[3].text());
    b.stop().await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failed_send_is_retried_with_backoff_and_given_up_after_a_day() {
    let t = TestDb::plain().await;
    two_channels(&t).await;
    queue::subscribe(&t.db, ADMIN, true).await.unwrap();
    let engine = Engine::new(t.db.clone());
    let made = utc("2026-03-30T02:00:00Z");
    let n = queue::generate(
        &engine,
        tgpulse::report::ReportKind::Weekly,
        "2026-03-30".parse().unwrap(),
        made,
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let q = queue::claim_due(&t.db, made).await.unwrap().pop().unwrap();
    assert!(
        !queue::finish(&t.db, &q, Outcome::Failed, Some("network"), made)
            .await
            .unwrap()
    );
    assert!(
        queue::claim_due(&t.db, made).await.unwrap().is_empty(),
        "not before the pause"
    );
    let later = made + chrono::Duration::minutes(2);
    let q = queue::claim_due(&t.db, later)
        .await
        .unwrap()
        .pop()
        .expect("due after the pause");
    assert_eq!(q.attempts, 1);
    let a_day_later = made + chrono::Duration::hours(24);
    assert!(
        queue::finish(&t.db, &q, Outcome::Failed, Some("network"), a_day_later)
            .await
            .unwrap()
    );
    assert!(
        queue::claim_due(&t.db, a_day_later + chrono::Duration::days(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        tgpulse::catalog::reports_given_up(&t.db, made - chrono::Duration::days(7))
            .await
            .unwrap(),
        1
    );
    // Generating the same period again queues nothing.
    let n = queue::generate(
        &engine,
        tgpulse::report::ReportKind::Weekly,
        "2026-03-30".parse().unwrap(),
        later,
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_offline_report_on_the_real_data_names_the_week_and_its_channels() {
    let t = with_top30().await;
    t.client()
        .await
        .execute(
            "INSERT INTO watched_channels (channel_id, handle) SELECT channel_id, handle FROM channels",
            &[],
        )
        .await
        .unwrap();
    let dir = scratch("report-offline");
    let md = dir.join("week.md");
    let png = dir.join("week.png");
    for out in [&md, &png] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"))
            .env_remove("TGPULSE_DATABASE_URL")
            .env("TGPULSE_LOG", "error")
            .args([
                "report",
                "weekly",
                "--period",
                "2021-07-06",
                "--database-url",
                &t.url,
            ])
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.starts_with("# Weekly report, 5 Jul 2021 – 11 Jul 2021 (UTC)"),
        "{text}"
    );
    assert!(
        text.contains("## Top growers") && text.contains("## Top losers"),
        "{text}"
    );
    // birds: 222,884 on 4 July (the day before the week)... 318,387 on 9 July and later.
    let birds = text
        .lines()
        .find(|l| l.starts_with("| @birds "))
        .expect("a line for birds");
    assert!(birds.contains("+"), "{birds}");
    assert_png(&std::fs::read(&png).unwrap(), tgpulse::chart::SIZE);
}
