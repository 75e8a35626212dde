//! Alerts: the rules on the real data and on synthetic channels, the life of an alert in
//! PostgreSQL, source_stale on a failing source under the manual clock, and the notifications
//! through the fake Bot API (once per event across evaluations and a restart, muted channels,
//! the digest, who may change rules).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tgpulse::alert::backtest::backtest;
use tgpulse::alert::task::{AlertSetup, Service, evaluate, evaluate_and_apply};
use tgpulse::alert::{AlertConfig, Rule, Settings, store};
use tgpulse::clock::{ManualClock, SharedClock};
use tgpulse::collect::{Collector, Polled, RunContext, Schedule, Shard};
use tgpulse::domain::ChannelId;
use tgpulse::ingest::{self, CommitPolicy};
use tgpulse::query::Engine;
use tokio_util::sync::CancellationToken;

use super::bot::{ADMIN, bot_config, start, with_top30};
use super::collect::{ingest_cfg, watch_channel};
use super::fake_telegram::FakeTelegram;
use super::serve::Counting;
use crate::common::TestDb;

const BIRDS: i64 = 1_483_991_707;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn id(n: i64) -> ChannelId {
    ChannelId::new(n).unwrap()
}

/// Stores member samples and brings the daily relations up to date.
async fn members(t: &TestDb, id: i64, samples: &[(DateTime<Utc>, i64)]) {
    let c = t.client().await;
    let (times, counts): (Vec<DateTime<Utc>>, Vec<i64>) = samples.iter().copied().unzip();
    c.execute(
        "INSERT INTO member_samples (channel_id, observed_at, members, source)
         SELECT $1, t, m, 'test' FROM unnest($2::timestamptz[], $3::bigint[]) AS s(t, m)",
        &[&id, &times, &counts],
    )
    .await
    .unwrap();
    c.execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .unwrap();
}

/// Stores posts, each with view samples at publication + 1 h (30 % of `views`) and + 25 h.
async fn posts(t: &TestDb, id: i64, published: &[(DateTime<Utc>, i64)]) {
    let c = t.client().await;
    for (n, (p, views)) in published.iter().enumerate() {
        for (after, v) in [(1, views * 3 / 10), (25, *views)] {
            c.execute(
                "INSERT INTO post_samples (channel_id, post_id, published_at, observed_at, views, source)
                 VALUES ($1, $2, $3, $4, $5, 'test')",
                &[&id, &(n as i64 + 1), p, &(*p + chrono::Duration::hours(after)), &v],
            )
            .await
            .unwrap();
        }
    }
    c.execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .unwrap();
}

/// A deterministic pseudo-random wobble in -1..1 (no randomness in tests).
fn wobble(i: i64) -> f64 {
    ((i as f64 * 12.9898).sin() * 43_758.545_3).fract()
}

#[tokio::test]
async fn the_real_birds_jump_opens_members_change_once_and_not_again_while_the_level_holds() {
    let t = with_top30().await;
    let engine = Engine::new(t.db.clone());
    let alerts = backtest(
        &engine,
        &Settings::default(),
        &[id(BIRDS)],
        &Rule::CHANNEL_RULES,
        day("2021-07-01"),
        day("2021-07-31"),
    )
    .await
    .unwrap();
    let jumps: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule == Rule::MembersChange)
        .collect();
    assert_eq!(jumps.len(), 1, "{alerts:#?}");
    let j = jumps[0];
    assert_eq!(j.day, day("2021-07-06"));
    assert_eq!((j.baseline, j.value), (Some(222_884.0), Some(335_041.0)));
    assert!((j.change_pct.unwrap() - 50.32).abs() < 0.01, "{j:?}");
    assert_eq!(
        j.resolved,
        Some(day("2021-07-08")),
        "clear on the 7th and 8th"
    );
    // The same jump is also far outside the channel's usual daily change.
    assert!(
        alerts
            .iter()
            .any(|a| a.rule == Rule::UnusualChange && a.day == day("2021-07-06")),
        "{alerts:#?}"
    );
}

#[tokio::test]
async fn the_backtest_command_prints_the_event_as_csv() {
    let t = with_top30().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .env_remove("TGPULSE_DATABASE_URL")
        .env("TGPULSE_LOG", "error")
        .args(["alerts", "backtest", "--database-url", &t.url])
        .args(["--from", "2021-07-01", "--to", "2021-07-31"])
        .args(["--channel", &BIRDS.to_string(), "--rule", "members_change"])
        .args(["--format", "csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("channel_id,rule,day,value,baseline,change_pct"),
        "{csv}"
    );
    assert_eq!(
        lines.collect::<Vec<_>>(),
        vec!["1483991707,members_change,2021-07-06,335041.00,222884.00,50.32,,20,2021-07-08"]
    );
    assert!(
        stderr.contains("members_change") && stderr.contains("per channel per month"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_channel_with_steady_growth_and_steady_posting_opens_nothing_over_a_year() {
    let t = TestDb::plain().await;
    watch_channel(&t, 5001, "steady").await;
    let start = at("2025-01-01T12:00:00Z");
    let samples: Vec<_> = (0..430)
        .map(|d| {
            let m = 20_000 + 150 * d + (60.0 * wobble(d)) as i64;
            (start + chrono::Duration::days(d), m)
        })
        .collect();
    members(&t, 5001, &samples).await;
    let published: Vec<_> = (0..430)
        .map(|d| {
            let p = start + chrono::Duration::days(d) - chrono::Duration::hours(2);
            (p, 4_000 + (400.0 * wobble(d + 11)) as i64)
        })
        .collect();
    posts(&t, 5001, &published).await;
    let engine = Engine::new(t.db.clone());
    // The year from 15 February 2025, every channel rule.
    let year = async || {
        backtest(
            &engine,
            &Settings::default(),
            &[id(5001)],
            &Rule::CHANNEL_RULES,
            day("2025-02-15"),
            day("2026-02-14"),
        )
        .await
        .unwrap()
    };
    let alerts = year().await;
    assert!(alerts.is_empty(), "{alerts:#?}");
    // Not quiet because nothing was measured: the same year with a purge of 30 % on one day.
    let c = t.client().await;
    c.execute(
        "UPDATE member_samples SET members = members * 7 / 10
         WHERE channel_id = 5001 AND observed_at >= '2025-09-01'",
        &[],
    )
    .await
    .unwrap();
    c.execute("SELECT tgpulse_refresh_daily()", &[])
        .await
        .unwrap();
    let alerts = year().await;
    let rules: Vec<(Rule, NaiveDate)> = alerts.iter().map(|a| (a.rule, a.day)).collect();
    assert_eq!(
        rules,
        vec![
            (Rule::MembersChange, day("2025-09-01")),
            (Rule::UnusualChange, day("2025-09-01"))
        ]
    );
}

#[tokio::test]
async fn no_posts_follows_each_channels_own_cadence() {
    let t = TestDb::plain().await;
    watch_channel(&t, 6001, "daily_poster").await;
    watch_channel(&t, 6002, "weekly_poster").await;
    let last = at("2026-03-01T09:00:00Z");
    let daily: Vec<_> = (0..40)
        .map(|d| (last - chrono::Duration::days(39 - d), 1_000))
        .collect();
    let weekly: Vec<_> = (0..10)
        .map(|w| (last - chrono::Duration::weeks(9 - w), 1_000))
        .collect();
    posts(&t, 6001, &daily).await;
    posts(&t, 6002, &weekly).await;
    let engine = Engine::new(t.db.clone());
    let cfg = AlertConfig::default();
    let firing = async |when: DateTime<Utc>| -> Vec<i64> {
        let e = evaluate(&engine, &cfg, &[id(6001), id(6002)], when)
            .await
            .unwrap();
        let mut ids: Vec<i64> = e
            .firing()
            .filter(|o| o.rule == Rule::NoPosts)
            .map(|o| o.subject.channel().unwrap().get())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        firing(last + chrono::Duration::hours(47)).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        firing(last + chrono::Duration::hours(73)).await,
        vec![6001],
        "3 days of silence is 3 gaps for the daily poster, not for the weekly one"
    );
    assert_eq!(
        firing(last + chrono::Duration::days(22)).await,
        vec![6001, 6002],
        "3 weeks is 3 gaps for the weekly poster"
    );
}

#[tokio::test]
async fn views_drop_compares_the_last_weeks_24_hour_reach_with_the_four_weeks_before() {
    let t = TestDb::plain().await;
    watch_channel(&t, 6101, "fading").await;
    let last = at("2026-04-30T10:00:00Z");
    // Six weeks of a post a day: about 4,000 views, then 2,000 in the last week.
    let daily: Vec<_> = (0..42)
        .map(|d| {
            let views = if d >= 35 {
                2_000
            } else {
                4_000 + (200.0 * wobble(d)) as i64
            };
            (last - chrono::Duration::days(41 - d), views)
        })
        .collect();
    posts(&t, 6101, &daily).await;
    let engine = Engine::new(t.db.clone());
    let cfg = AlertConfig::default();
    // The last post has had its 24 h one hour later.
    let e = evaluate(
        &engine,
        &cfg,
        &[id(6101)],
        last + chrono::Duration::hours(25),
    )
    .await
    .unwrap();
    let drop = e
        .observations
        .iter()
        .find(|o| o.rule == Rule::ViewsDrop)
        .expect("views_drop is measured");
    assert!(drop.fired, "{drop:?}");
    // 24 h reach = the views at +1 h (30 %) and +25 h (100 %) interpolated at +24 h: 97.08 %.
    assert!(
        (drop.value.unwrap() - 2_000.0 * 0.970_833).abs() < 0.5,
        "{drop:?}"
    );
    assert!((drop.change_pct.unwrap() + 50.0).abs() < 3.0, "{drop:?}");
    // A week earlier, before the drop, it is measured and quiet.
    let before = evaluate(&engine, &cfg, &[id(6101)], last - chrono::Duration::days(6))
        .await
        .unwrap();
    let quiet = before
        .observations
        .iter()
        .find(|o| o.rule == Rule::ViewsDrop)
        .expect("views_drop is measured");
    assert!(!quiet.fired, "{quiet:?}");
}

/// Members steady at 10,000 for 40 days up to yesterday, then `today` members today.
/// unusual_change is turned off for the channel, so that the jump is one event.
pub(crate) async fn jump_today(t: &TestDb, id: i64, today_at: DateTime<Utc>, today: i64) {
    store::set_rule(
        &t.db,
        ChannelId::new(id).unwrap(),
        Rule::UnusualChange,
        None,
        false,
        None,
    )
    .await
    .unwrap();
    let mut samples: Vec<_> = (1..=40)
        .map(|d| (today_at - chrono::Duration::days(d), 10_000 + (d % 3)))
        .collect();
    samples.push((today_at, today));
    members(t, id, &samples).await;
}

/// As `serve` sets it up: evaluations sooner than 15 minutes after the last are skipped.
pub(crate) fn setup() -> AlertSetup {
    AlertSetup {
        cfg: AlertConfig::default(),
        admins: vec![ADMIN as u64],
        min_gap: Duration::from_secs(15 * 60),
    }
}

#[tokio::test]
async fn an_event_notifies_each_admin_once_across_ten_evaluations_and_a_restart() {
    let t = TestDb::plain().await;
    watch_channel(&t, 7001, "jumper").await;
    let now = at("2026-05-10T12:00:00Z");
    jump_today(&t, 7001, now - chrono::Duration::hours(1), 14_000).await;
    let engine = Engine::new(t.db.clone());
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "alerts-once")).await;
    for i in 0..10 {
        let (e, _) = evaluate_and_apply(
            &engine,
            &setup(),
            now + chrono::Duration::minutes(30 * i),
            None,
        )
        .await
        .unwrap();
        assert!(e.firing().any(|o| o.rule == Rule::MembersChange));
    }
    // A second process evaluating at the same moment is skipped: each evaluation counts once.
    let (_, twin) = evaluate_and_apply(
        &engine,
        &setup(),
        now + chrono::Duration::minutes(275),
        None,
    )
    .await
    .unwrap();
    assert!(twin.skipped && twin.opened.is_empty(), "{twin:?}");
    let photos = tg.wait_chat("sendphoto", ADMIN, 1).await;
    let caption = photos[0].text();
    assert!(
        caption.contains("@jumper")
            && caption.contains("members_change")
            && caption.contains("+40.0 %"),
        "{caption}"
    );
    assert!(
        caption.contains("before 10,001 · after 14,000 · change +40.0 % · threshold 20 %"),
        "{caption}"
    );
    let buttons: Vec<String> = photos[0].buttons().into_iter().map(|(t, _)| t).collect();
    assert_eq!(buttons, vec!["Mute 7 days", "Stats", "Compare"]);
    super::bot::assert_png(photos[0].file(), tgpulse::chart::SIZE);
    b.stop().await;
    // A restarted bot, and the evaluation of another process.
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "alerts-once")).await;
    evaluate_and_apply(&engine, &setup(), now + chrono::Duration::hours(6), None)
        .await
        .unwrap();
    tg.message(ADMIN, "/alerts");
    let list = tg.wait_chat("sendmessage", ADMIN, 1).await;
    assert!(
        list[0].text().contains("Open alerts (1)"),
        "{}",
        list[0].text()
    );
    tokio::time::sleep(tgpulse::bot::alerts::DELIVERY_EVERY * 2).await;
    assert_eq!(tg.to_chat("sendphoto", ADMIN).len(), 1, "told once");
    assert_eq!(
        t.count("SELECT count(*) FROM alert_events").await,
        1,
        "one event, however often it was evaluated"
    );
    b.stop().await;
}

#[tokio::test]
async fn a_muted_channel_notifies_nobody_and_six_events_arrive_as_one_digest() {
    let t = TestDb::plain().await;
    let now = at("2026-05-10T12:00:00Z");
    for n in 0..7 {
        watch_channel(&t, 7100 + n, &format!("jumper_{n}")).await;
        jump_today(&t, 7100 + n, now - chrono::Duration::hours(1), 13_000).await;
    }
    store::mute(&t.db, id(7106), now + chrono::Duration::days(7), None)
        .await
        .unwrap();
    let engine = Engine::new(t.db.clone());
    let (_, applied) = evaluate_and_apply(&engine, &setup(), now, None)
        .await
        .unwrap();
    assert_eq!(applied.opened.len(), 7);
    assert_eq!(
        t.count("SELECT count(*) FROM bot_alert_deliveries WHERE state = 'muted'")
            .await,
        1
    );
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "alerts-digest")).await;
    let digest = tg.wait_chat("sendmessage", ADMIN, 1).await;
    let text = digest[0].text();
    assert!(text.contains("6 new alerts"), "{text}");
    for n in 0..6 {
        assert!(text.contains(&format!("@jumper_{n}")), "{text}");
    }
    assert!(
        !text.contains("@jumper_6"),
        "the muted channel is not told: {text}"
    );
    tokio::time::sleep(tgpulse::bot::alerts::DELIVERY_EVERY * 2).await;
    assert_eq!(
        tg.to_chat("sendmessage", ADMIN).len(),
        1,
        "one digest, no single alerts"
    );
    assert!(tg.to_chat("sendphoto", ADMIN).is_empty());
    b.stop().await;
}

#[tokio::test]
async fn only_admins_change_alert_rules_and_anyone_with_a_role_turns_their_own_alerts_off() {
    let t = with_top30().await;
    const VIEWER: i64 = 4242;
    tgpulse::state::grant_viewer(&t.db, VIEWER, ADMIN)
        .await
        .unwrap();
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "alerts-access")).await;
    tg.message(VIEWER, "/alerts set @birblife members_change 15");
    let r = tg.wait_chat("sendmessage", VIEWER, 1).await;
    assert!(
        r[0].text().contains("Only admins change alert rules"),
        "{}",
        r[0].text()
    );
    assert_eq!(t.count("SELECT count(*) FROM alert_rules").await, 0);
    tg.message(VIEWER, "/alerts on");
    let r = tg.wait_chat("sendmessage", VIEWER, 2).await;
    assert!(r[1].text().contains("You will be told"), "{}", r[1].text());
    tg.message(ADMIN, "/alerts set @birblife members_change 15");
    let r = tg.wait_chat("sendmessage", ADMIN, 1).await;
    assert!(r[0].text().contains("threshold 15"), "{}", r[0].text());
    tg.message(ADMIN, "/alerts set @birblife members_change lots");
    let r = tg.wait_chat("sendmessage", ADMIN, 2).await;
    assert!(
        r[1].text().contains("is not a number") && r[1].text().contains("/alerts mute"),
        "{}",
        r[1].text()
    );
    tg.message(ADMIN, "/alerts off");
    tg.wait_chat("sendmessage", ADMIN, 3).await;
    b.stop().await;
    let birb = super::bot::BIRB;
    assert_eq!(
        t.count(&format!(
            "SELECT count(*) FROM alert_rules WHERE channel_id = {birb} AND threshold = 15"
        ))
        .await,
        1
    );
    assert_eq!(
        store::recipients(&t.db, &[ADMIN as u64]).await.unwrap(),
        vec![VIEWER],
        "the admin turned alerts off, the viewer on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_stale_fires_when_the_source_fails_and_resolves_when_it_recovers() {
    let t = TestDb::plain().await;
    watch_channel(&t, 8001, "collected").await;
    let begin = at("2026-03-01T00:00:00Z");
    let clock = ManualClock::new(begin);
    let shared: SharedClock = clock.clone();
    let switch = Counting::new(Arc::clone(&shared));
    let source: Arc<dyn Collector> = Arc::new(Polled::new(
        switch.clone(),
        Schedule {
            members_every: Duration::from_secs(3600),
            jitter: 0.0,
            ..Schedule::default()
        },
    ));
    let (sender, writer) = ingest::start(&t.db, CommitPolicy::PerBatch, &ingest_cfg(), "test");
    let stop = CancellationToken::new();
    let ctx = RunContext {
        db: t.db.clone(),
        sender,
        shard: Shard::default(),
        once: false,
        shutdown: stop.clone(),
        clock: Arc::clone(&shared),
    };
    let run = tokio::spawn({
        let source = Arc::clone(&source);
        async move { source.run(ctx).await }
    });
    let engine = Engine::new(t.db.clone());
    let mut opened_at = None;
    let mut resolved_at = None;
    for hour in 0..12i64 {
        // Down from 02:00 to 06:00.
        switch
            .failing
            .store((2..=6).contains(&hour), Ordering::SeqCst);
        let now = begin + chrono::Duration::hours(hour);
        clock.set(now);
        let want = hour as u32 + 1;
        let waited = std::time::Instant::now();
        while switch.calls(8001) < want {
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "hour {hour} not collected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        evaluate_and_apply(
            &engine,
            &setup(),
            now,
            Some(Service {
                sources: std::slice::from_ref(&source),
                started_at: begin,
            }),
        )
        .await
        .unwrap();
        let open = t
            .count("SELECT count(*) FROM alert_events WHERE rule = 'source_stale' AND resolved_at IS NULL")
            .await;
        if open == 1 && opened_at.is_none() {
            opened_at = Some(hour);
            // Another process, which runs no source, evaluates 20 minutes later: it leaves
            // this process's source_stale alert alone instead of counting it clear.
            for _ in 0..3 {
                evaluate_and_apply(&engine, &setup(), now + chrono::Duration::minutes(20), None)
                    .await
                    .unwrap();
            }
            assert_eq!(
                t.count("SELECT count(*) FROM alert_events WHERE rule = 'source_stale' AND resolved_at IS NULL")
                    .await,
                1
            );
        }
        if open == 0 && opened_at.is_some() && resolved_at.is_none() {
            resolved_at = Some(hour);
        }
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    writer.finish().await.unwrap();
    // Last success at 01:00; 3 intervals later (04:00) is the limit; 05:00 is past it.
    assert_eq!(opened_at, Some(5));
    // Success again at 07:00: clear at 07:00 and 08:00.
    assert_eq!(resolved_at, Some(8));
    assert_eq!(
        t.count("SELECT count(*) FROM alert_events WHERE subject = 'source:counting'")
            .await,
        1
    );
}

#[test]
fn rule_names_round_trip() {
    for r in Rule::CHANNEL_RULES.into_iter().chain([Rule::SourceStale]) {
        assert_eq!(r.name().parse::<Rule>().unwrap(), r);
    }
    assert!("members".parse::<Rule>().is_err());
}
