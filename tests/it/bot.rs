//! The admin bot against the fake Bot API on loopback (tests/it/fake_telegram.rs), with the
//! real top-30 subscriber file behind the stats. Assertions are on what a user would see:
//! texts, PNG charts, Parquet files.

use std::time::{Duration, Instant};

mod analytics;
mod export;

use tgpulse::bot;
use tgpulse::catalog;
use tgpulse::clock::SystemClock;
use tgpulse::collect::{self, SourceConfig};
use tgpulse::config::{BotConfig, Secret};
use tgpulse::render::thousands;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::collect::fast_limits;
use super::fake_telegram::{Call, FakeTelegram, TOKEN};
use crate::common::{TestDb, animals, scratch, sigterm_and_wait};

pub(crate) const ADMIN: i64 = 9001;
const STRANGER: i64 = 666;
pub(crate) const BIRB: i64 = 1_363_895_234;
/// What a stranger reads (English: the fake's users send no `language_code`).
pub(crate) const REFUSAL: &str = "Sorry, this is a private bot.";

pub(crate) struct RunningBot {
    stop: CancellationToken,
    task: JoinHandle<Result<(), bot::Error>>,
}

impl RunningBot {
    pub(crate) fn new(stop: CancellationToken, task: JoinHandle<Result<(), bot::Error>>) -> Self {
        Self { stop, task }
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the bot stops within 30 s")
            .unwrap()
            .expect("the bot ran without error");
    }
}

pub(crate) fn bot_config(tg: &FakeTelegram, admins: &[i64], dir: &str) -> BotConfig {
    BotConfig {
        token: Some(Secret::new(TOKEN)),
        api_url: tg.url.parse().unwrap(),
        admin_ids: admins.iter().map(|a| *a as u64).collect(),
        work_dir: Some(scratch(dir)),
        ..BotConfig::default()
    }
}

pub(crate) async fn start(t: &TestDb, tg: &FakeTelegram, cfg: BotConfig) -> RunningBot {
    let resolver = collect::build(
        "botapi",
        &SourceConfig {
            api_url: Some(tg.url.clone()),
            token: Some(Secret::new(TOKEN)),
            limits: fast_limits(),
            ..SourceConfig::default()
        },
    )
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let db = t.db.clone();
    let task = tokio::spawn({
        let stop = stop.clone();
        let resolver = Some(collect::resolver(resolver));
        async move { bot::run(db.clone(), db, &cfg, resolver, SystemClock::shared(), stop).await }
    });
    // Started once the command menu is published.
    tg.wait(1, Duration::from_secs(30), |c| c.method == "setmycommands")
        .await;
    RunningBot { stop, task }
}

pub(crate) async fn with_top30() -> TestDb {
    let t = TestDb::plain().await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    t
}

/// Asserts a PNG signature, the IHDR size and a closing IEND chunk.
pub(crate) fn assert_png(bytes: &[u8], size: (u32, u32)) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), size, "chart size");
    assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
    assert!(bytes.len() > 20_000, "a drawn chart, not a blank image");
}

pub(crate) fn parquet_rows(bytes: &[u8]) -> Vec<arrow::array::RecordBatch> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::copy_from_slice(bytes),
    )
    .unwrap()
    .build()
    .unwrap();
    reader.map(Result::unwrap).collect()
}

pub(crate) async fn last_members(t: &TestDb, id: i64) -> i64 {
    t.count(&format!(
        "SELECT members FROM members_daily WHERE channel_id = {id} ORDER BY bucket DESC LIMIT 1"
    ))
    .await
}

#[tokio::test]
async fn stats_reply_is_a_summary_with_a_png_chart_and_buttons_that_work() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-stats")).await;

    tg.message(ADMIN, "/stats @BirbLife 365");
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    let caption = photo.text();
    assert!(
        caption.contains("<b>@birblife</b> · Birb Life"),
        "{caption}"
    );
    assert!(caption.contains("(365 days, UTC)"), "{caption}");
    let members = thousands(last_members(&t, BIRB).await);
    assert!(
        caption.contains(&format!("members            {members}")),
        "{caption}"
    );
    assert!(
        caption.contains("ERR") && caption.contains("days with members"),
        "{caption}"
    );
    assert_png(photo.file(), tgpulse::chart::SIZE);
    let labels: Vec<String> = photo.buttons().into_iter().map(|b| b.0).collect();
    assert_eq!(
        labels,
        [
            "7 days",
            "30 days",
            "90 days",
            "Compare with…",
            "Export",
            "Views",
            "Best time",
            "Top posts"
        ]
    );

    // Another window: a new chart for 90 days.
    tg.press(ADMIN, photo.message_id.unwrap(), &photo.button("90 days"));
    let second = tg.wait_chat("sendphoto", ADMIN, 2).await.remove(1);
    assert!(
        second.text().contains("(90 days, UTC)"),
        "{}",
        second.text()
    );
    assert_png(second.file(), tgpulse::chart::SIZE);

    // Compare with…: the bot asks, the next message names the other channel.
    tg.press(
        ADMIN,
        photo.message_id.unwrap(),
        &photo.button("Compare with"),
    );
    let ask = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    assert!(
        ask.text()
            .contains("Compare <b>@birblife</b> with which channels"),
        "{}",
        ask.text()
    );
    tg.message(ADMIN, "@cats_cats");
    let cmp = tg.wait_chat("sendphoto", ADMIN, 3).await.remove(2);
    assert!(cmp.text().contains("<b>Comparison</b>"), "{}", cmp.text());
    assert!(cmp.text().contains("@birblife") && cmp.text().contains("@cats_cats"));
    assert_png(cmp.file(), tgpulse::chart::SIZE);
    // Every press was answered (the client's spinner stops).
    assert_eq!(answers(&tg).len(), 2);
    b.stop().await;
}

#[tokio::test]
async fn compare_sends_a_table_and_an_indexed_growth_chart() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-compare")).await;
    tg.message(ADMIN, "/compare @birblife @cats_cats @dogpics 90");
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    let text = photo.text();
    assert!(text.contains("(90 days, UTC)"), "{text}");
    for h in ["@birblife", "@cats_cats", "@dogpics"] {
        assert!(text.contains(h), "{h} in {text}");
    }
    assert!(
        text.contains(&thousands(last_members(&t, BIRB).await)),
        "{text}"
    );
    assert_png(photo.file(), tgpulse::chart::SIZE);
    b.stop().await;
}

#[tokio::test]
async fn export_sends_a_parquet_file_with_exactly_the_channels_daily_rows() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-export")).await;
    tg.message(ADMIN, "/export @birblife");
    let doc = tg.wait_chat("senddocument", ADMIN, 1).await.remove(0);
    let batches = parquet_rows(doc.file());
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let expected = t
        .count(&format!(
            "SELECT count(*) FROM members_daily WHERE channel_id = {BIRB}"
        ))
        .await;
    assert_eq!(rows as i64, expected);
    assert!(expected > 1000, "five years of days");
    for b in &batches {
        let ids = b
            .column_by_name("channel_id")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        assert!(ids.iter().all(|v| v == Some(BIRB)));
    }
    assert!(
        doc.files[0].1.starts_with("birblife_members_daily_")
            && doc.files[0].1.ends_with(".parquet")
    );
    // The one status message ends as "Done".
    let edits = tg
        .wait(1, Duration::from_secs(10), |c| {
            c.method == "editmessagetext" && c.text().starts_with("Done:")
        })
        .await;
    assert!(
        edits[0]
            .text()
            .contains(&format!("{} rows", thousands(expected)))
    );
    // The one status message ("Exporting…") is what was edited.
    let status = &tg.to_chat("sendmessage", ADMIN)[0];
    assert!(
        status
            .text()
            .starts_with("Exporting members_daily of <b>@birblife</b>")
    );
    assert_eq!(edits[0].params["message_id"], status.message_id.unwrap());
    b.stop().await;
}

#[tokio::test]
async fn a_stranger_gets_one_short_refusal_and_never_data_buttons_or_files() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-stranger")).await;
    // A real button of the admin's, pressed by the stranger.
    tg.message(ADMIN, "/stats @birblife");
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    for text in [
        "/stats @birblife",
        "/list",
        "/export @birblife",
        "/health",
        "hello",
    ] {
        tg.message(STRANGER, text);
    }
    tg.press(STRANGER, photo.message_id.unwrap(), &photo.button("Export"));
    tg.wait(5, Duration::from_secs(30), |c| c.chat() == Some(STRANGER))
        .await;
    let answered = tg
        .wait(1, Duration::from_secs(10), |c| {
            c.method == "answercallbackquery"
        })
        .await;
    assert_eq!(answered[0].params["text"], REFUSAL);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to_stranger: Vec<Call> = tg
        .calls()
        .into_iter()
        .filter(|c| c.chat() == Some(STRANGER))
        .collect();
    assert!(
        to_stranger.iter().all(|c| c.method == "sendmessage"),
        "only messages"
    );
    assert!(
        to_stranger
            .iter()
            .all(|c| c.text() == REFUSAL && c.buttons().is_empty())
    );
    assert_eq!(to_stranger.len(), 5, "one refusal per message");
    // The admin's export button did not run for the stranger, in either chat.
    assert!(tg.calls().iter().all(|c| c.method != "senddocument"));
    b.stop().await;
}

#[tokio::test]
async fn viewers_read_but_cannot_change_and_lose_access_when_revoked() {
    const VIEWER: i64 = 4242;
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-viewer")).await;
    tg.message(ADMIN, &format!("/grant {VIEWER}"));
    let m = tg.wait_chat("sendmessage", ADMIN, 1).await;
    assert_eq!(
        m[0].text(),
        format!("{VIEWER} is now a viewer (read-only).")
    );
    tg.message(VIEWER, "/stats @birblife 7");
    tg.wait_chat("sendphoto", VIEWER, 1).await;
    tg.message(VIEWER, "/add @birblife");
    let m = tg.wait_chat("sendmessage", VIEWER, 1).await;
    assert!(m[0].text().contains("for admins"), "{}", m[0].text());
    tg.message(ADMIN, &format!("/revoke {VIEWER}"));
    tg.wait_chat("sendmessage", ADMIN, 2).await;
    tg.message(VIEWER, "/stats @birblife 7");
    let m = tg.wait_chat("sendmessage", VIEWER, 2).await;
    assert_eq!(m[1].text(), REFUSAL);
    assert_eq!(tg.to_chat("sendphoto", VIEWER).len(), 1);
    b.stop().await;
}

#[tokio::test]
async fn malformed_commands_get_help_showing_the_right_form() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-bad-input");
    cfg.user_burst = 20;
    let b = start(&t, &tg, cfg).await;
    let cases: &[(&str, &[&str])] = &[
        (
            "/stats",
            &["Which channel?", "Usage: /stats @channel [days]"],
        ),
        (
            "/stats @birblife 0",
            &["“0” is not a number of days", "1 to 3650"],
        ),
        ("/stats @birblife lots", &["“lots” is not a number of days"]),
        (
            "/stats @@@ 30",
            &["“@@@” is not a channel", "Usage: /stats"],
        ),
        (
            "/stats @nosuchchannel",
            &["unknown channel @nosuchchannel", "/add @nosuchchannel"],
        ),
        (
            "/compare @birblife",
            &["at least 2 different channels", "Usage: /compare"],
        ),
        (
            "/export @birblife xlsx",
            &["I don't understand “xlsx”", "Usage: /export"],
        ),
        (
            "/frobnicate",
            &["I don't know /frobnicate", "/stats — @channel [days]"],
        ),
        (
            "/stats@some_other_bot @birblife",
            &["I couldn't read that command", "/compare"],
        ),
        (
            "/grant someone",
            &["“someone” is not a user id", "Usage: /grant"],
        ),
        ("just text", &["Send a command, e.g. /stats @channel 30"]),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        tg.message(ADMIN, text);
        let got = tg.wait_chat("sendmessage", ADMIN, i + 1).await.remove(i);
        for w in *want {
            assert!(
                got.text().contains(w),
                "{text:?} → {:?} should contain {w:?}",
                got.text()
            );
        }
    }
    assert!(tg.to_chat("sendphoto", ADMIN).is_empty(), "nothing ran");
    b.stop().await;
}

#[tokio::test]
async fn a_remove_confirmation_still_works_after_the_bot_restarts() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    tg.add_chat("newchannel", 1_555_000_111, "New Channel", 4321);
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-restart")).await;
    tg.message(ADMIN, "/add @NewChannel");
    let m = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    assert!(
        m.text()
            .starts_with("Now collecting <b>@newchannel</b> (id 1555000111) · New Channel"),
        "{}",
        m.text()
    );
    assert_eq!(
        t.count("SELECT count(*) FROM watched_channels WHERE channel_id = 1555000111")
            .await,
        1
    );
    tg.message(ADMIN, "/remove @newchannel");
    let ask = tg.wait_chat("sendmessage", ADMIN, 2).await.remove(1);
    assert!(
        ask.text().contains("Stop collecting <b>@newchannel</b>?"),
        "{}",
        ask.text()
    );
    let yes = ask.button("Yes");

    b.stop().await;
    assert_eq!(
        tg.pending(),
        0,
        "the stopped bot confirmed every update it handled"
    );
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-restart")).await;
    tg.press(ADMIN, ask.message_id.unwrap(), &yes);
    let edit = tg.wait_chat("editmessagetext", ADMIN, 1).await.remove(0);
    assert_eq!(
        edit.text(),
        "Stopped collecting <b>@newchannel</b>; running collectors drop it within 5 minutes. Its samples stay in the database."
    );
    assert_eq!(edit.params["message_id"], ask.message_id.unwrap());
    assert_eq!(
        t.count("SELECT count(*) FROM watched_channels WHERE channel_id = 1555000111")
            .await,
        0
    );
    // The confirmation runs once: pressing again says the button expired.
    tg.press(ADMIN, ask.message_id.unwrap(), &yes);
    tg.wait(2, Duration::from_secs(10), |c| {
        c.method == "answercallbackquery"
    })
    .await;
    assert_eq!(
        answers(&tg),
        [
            "Stopped.",
            "This button has expired; send the command again."
        ]
    );
    b.stop().await;
}

#[tokio::test]
async fn list_is_paginated_with_buttons_that_edit_the_message() {
    let t = with_top30().await;
    for id in t
        .client()
        .await
        .query(
            "SELECT channel_id, handle FROM channels ORDER BY handle",
            &[],
        )
        .await
        .unwrap()
    {
        super::collect::watch_channel(&t, id.get(0), id.get::<_, String>(1).as_str()).await;
    }
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-list")).await;
    tg.message(ADMIN, "/list");
    let first = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    assert!(
        first
            .text()
            .contains("<b>Watched channels</b>: 30 (page 1 of 2)"),
        "{}",
        first.text()
    );
    assert!(first.text().contains("@birblife"), "{}", first.text());
    assert_eq!(first.buttons().len(), 1, "only ‘next’ on the first page");
    tg.press(ADMIN, first.message_id.unwrap(), &first.button("next"));
    let second = tg.wait_chat("editmessagetext", ADMIN, 1).await.remove(0);
    assert!(second.text().contains("(page 2 of 2)"), "{}", second.text());
    assert_eq!(second.buttons()[0].0, "‹ previous");
    b.stop().await;
}

#[tokio::test]
async fn health_shows_storage_sources_and_recent_samples() {
    let t = with_top30().await;
    catalog::record_status(
        &t.db,
        "botapi",
        Some(chrono::Utc::now()),
        None,
        None,
        [5, 1, 5],
    )
    .await
    .unwrap();
    // A report whose sending was given up this week.
    t.client()
        .await
        .execute(
            "INSERT INTO reports_queue (kind, period_start, period_end, recipient, state, body,
                                        next_attempt_at, created_at)
             VALUES ('weekly', '2026-03-23', '2026-03-29', $1, 'given_up', 'x', now(), now())",
            &[&ADMIN],
        )
        .await
        .unwrap();
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-health")).await;
    tg.message(ADMIN, "/health");
    let m = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    let text = m.text();
    assert!(text.contains("storage: plain PostgreSQL"), "{text}");
    assert!(
        text.contains("<b>botapi</b>: last success") && text.contains("(lag 0 s)"),
        "{text}"
    );
    assert!(text.contains("jobs ok 5, failed 1"), "{text}");
    assert!(
        text.contains("Reports given up in the last 7 days (sending failed for a day): 1."),
        "{text}"
    );
    b.stop().await;
}

#[tokio::test]
async fn each_user_is_rate_limited_with_one_notice() {
    let t = TestDb::plain().await;
    let tg = FakeTelegram::start().await;
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-rate");
    cfg.user_burst = 3;
    cfg.user_per_minute = 1;
    let b = start(&t, &tg, cfg).await;
    for _ in 0..10 {
        tg.message(ADMIN, "/help");
    }
    tg.wait_chat("sendmessage", ADMIN, 4).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts: Vec<String> = tg
        .to_chat("sendmessage", ADMIN)
        .iter()
        .map(Call::text)
        .collect();
    assert_eq!(texts.len(), 4, "3 answers and one notice: {texts:?}");
    assert!(
        texts[..3]
            .iter()
            .all(|t| t.starts_with("tgpulse: channel statistics"))
    );
    assert!(
        texts[3].starts_with("Too many requests; please wait"),
        "{}",
        texts[3]
    );
    b.stop().await;
}

#[tokio::test]
async fn fifty_admins_asking_at_once_each_get_their_own_answer() {
    let t = with_top30().await;
    let handles: Vec<String> = t
        .client()
        .await
        .query("SELECT handle FROM channels ORDER BY handle", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let admins: Vec<i64> = (0..50).map(|i| 100_000 + i).collect();
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &admins, "bot-fifty")).await;
    let mut asked = Vec::new();
    for (i, a) in admins.iter().enumerate() {
        let h = &handles[i % handles.len()];
        let days = 300 + i;
        asked.push((
            tg.message(*a, &format!("/stats @{h} {days}")),
            *a,
            h.clone(),
            days,
        ));
    }
    let started = Instant::now();
    tg.wait(50, Duration::from_secs(120), |c| c.method == "sendphoto")
        .await;
    let mut latencies = Vec::new();
    for (update, admin, h, days) in &asked {
        let photos = tg.to_chat("sendphoto", *admin);
        assert_eq!(photos.len(), 1, "admin {admin} gets one chart");
        let text = photos[0].text();
        assert!(
            text.contains(&format!("<b>@{h}</b>")),
            "admin {admin} asked for @{h}: {text}"
        );
        assert!(text.contains(&format!("({days} days, UTC)")), "{text}");
        assert_png(photos[0].file(), tgpulse::chart::SIZE);
        latencies.push(photos[0].at - tg.handed_at(*update).unwrap());
    }
    latencies.sort();
    eprintln!(
        "50 concurrent /stats: all answered in {:?}; p50 {:?}, p99 {:?}",
        started.elapsed(),
        latencies[24],
        latencies[49]
    );
    b.stop().await;
}

#[tokio::test]
async fn webhook_mode_takes_updates_over_http_and_checks_the_secret() {
    let t = TestDb::plain().await;
    let tg = FakeTelegram::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-webhook");
    cfg.webhook_url = Some("https://bot.example.org:8443/tg/hook".parse().unwrap());
    cfg.webhook_listen = ([127, 0, 0, 1], port).into();
    cfg.webhook_secret = Some(Secret::new("s3cret-token"));
    let b = start(&t, &tg, cfg).await;
    let set = tg
        .wait(1, Duration::from_secs(10), |c| c.method == "setwebhook")
        .await;
    assert_eq!(set[0].params["url"], "https://bot.example.org:8443/tg/hook");
    assert_eq!(set[0].params["secret_token"], "s3cret-token");
    let update = serde_json::json!({"update_id": 1, "message": {
        "message_id": 5, "date": 0,
        "chat": {"id": ADMIN, "type": "private", "first_name": "a"},
        "from": {"id": ADMIN, "is_bot": false, "first_name": "a"},
        "text": "/help"}});
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/tg/hook");
    let forged = http.post(&url).json(&update).send().await.unwrap();
    assert_eq!(forged.status(), 401, "no secret, no entry");
    let real = http
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "s3cret-token")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert!(real.status().is_success());
    let m = tg.wait_chat("sendmessage", ADMIN, 1).await;
    assert!(m[0].text().starts_with("tgpulse: channel statistics"));
    assert_eq!(
        tg.to_chat("sendmessage", ADMIN).len(),
        1,
        "the forged update was dropped"
    );
    b.stop().await;
}

/// `tgpulse serve` runs the collectors (here a replay of the real top-30 file) and the bot in
/// one process; the bot answers from what the collectors stored, and SIGTERM stops both.
#[tokio::test]
async fn serve_runs_the_bot_beside_the_collectors_and_stops_on_sigterm() {
    let t = TestDb::plain().await;
    let tg = FakeTelegram::start().await;
    let ops = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .args(["serve", "--ops-listen", &ops.to_string()])
        .args(["--sources", "/nonexistent/tgpulse.toml", "--speed", "max"])
        .arg("--file")
        .arg(animals("subscriber_observations_top30.csv"))
        .args(["--database-url", &t.url, "--log", "warn"])
        .env("TGPULSE_BOT_TOKEN", TOKEN)
        .env("TGPULSE_BOT_API_URL", &tg.url)
        .env("TGPULSE_ADMIN_IDS", ADMIN.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tg.wait(1, Duration::from_secs(60), |c| c.method == "setmycommands")
        .await;
    let all = t.count("SELECT count(*) FROM channels").await.max(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while t
        .count("SELECT count(DISTINCT channel_id) FROM members_daily")
        .await
        < 30
    {
        assert!(
            Instant::now() < deadline,
            "the replay stores all 30 channels ({all} seen)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tg.message(ADMIN, "/stats @birblife 30");
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    assert!(
        photo.text().contains("<b>@birblife</b>"),
        "{}",
        photo.text()
    );
    assert_png(photo.file(), tgpulse::chart::SIZE);
    // Every metric the provisioned dashboards use is exported by the running service.
    let metrics = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let used = crate::dashboards::dashboard_metrics();
    assert!(used.len() >= 8, "{used:?}");
    for name in &used {
        assert!(
            exported.contains(name.as_str())
                || exported.contains(format!("{name}_bucket").as_str()),
            "{name} is used by a dashboard but not exported:\n{metrics}"
        );
    }
    let out = sigterm_and_wait(child).await;
    assert!(out.status.success(), "serve exits 0 on SIGTERM");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("replay: ") && stdout.contains("samples accepted"),
        "{stdout}"
    );
}

/// `tgpulse bot` without admins refuses to start and says how to configure them.
#[tokio::test]
async fn the_bot_refuses_to_start_without_admins() {
    let t = TestDb::plain().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .args(["bot", "--database-url", &t.url, "--log", "error"])
        .env("TGPULSE_BOT_TOKEN", TOKEN)
        .env_remove("TGPULSE_ADMIN_IDS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no admins: set TGPULSE_ADMIN_IDS"), "{err}");
}

#[tokio::test]
async fn cancel_keeps_the_channel_and_uses_up_the_yes_button() {
    let t = with_top30().await;
    super::collect::watch_channel(&t, BIRB, "birblife").await;
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-cancel")).await;
    tg.message(ADMIN, "/remove @birblife");
    let ask = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    tg.press(ADMIN, ask.message_id.unwrap(), &ask.button("Cancel"));
    let edit = tg.wait_chat("editmessagetext", ADMIN, 1).await.remove(0);
    assert_eq!(edit.text(), "Cancelled; nothing changed.");
    assert!(edit.buttons().is_empty(), "the buttons are gone");
    // A Yes pressed after Cancel (a stale client) does nothing.
    tg.press(ADMIN, ask.message_id.unwrap(), &ask.button("Yes"));
    tg.wait(2, Duration::from_secs(10), |c| {
        c.method == "answercallbackquery"
    })
    .await;
    assert_eq!(
        answers(&tg),
        [
            "Cancelled.",
            "This button has expired; send the command again."
        ]
    );
    let watched = format!("SELECT count(*) FROM watched_channels WHERE channel_id = {BIRB}");
    assert_eq!(t.count(&watched).await, 1, "still collected");
    b.stop().await;
}

fn answers(tg: &FakeTelegram) -> Vec<String> {
    tg.calls()
        .iter()
        .filter(|c| c.method == "answercallbackquery")
        .map(|c| c.params["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_viewer_cannot_use_an_admins_button_nor_use_it_up() {
    const VIEWER: i64 = 4343;
    let t = with_top30().await;
    super::collect::watch_channel(&t, BIRB, "birblife").await;
    tgpulse::state::grant_viewer(&t.db, VIEWER, ADMIN)
        .await
        .unwrap();
    let tg = FakeTelegram::start().await;
    let b = start(&t, &tg, bot_config(&tg, &[ADMIN], "bot-viewer-button")).await;
    tg.message(ADMIN, "/remove @birblife");
    let ask = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    // The viewer got hold of the token (a forwarded message, a modified client).
    tg.press(VIEWER, ask.message_id.unwrap(), &ask.button("Yes"));
    tg.wait(1, Duration::from_secs(10), |c| {
        c.method == "answercallbackquery"
    })
    .await;
    let watched = format!("SELECT count(*) FROM watched_channels WHERE channel_id = {BIRB}");
    assert_eq!(t.count(&watched).await, 1, "nothing removed");
    assert!(tg.to_chat("editmessagetext", VIEWER).is_empty());
    // The admin's own press still works.
    tg.press(ADMIN, ask.message_id.unwrap(), &ask.button("Yes"));
    tg.wait_chat("editmessagetext", ADMIN, 1).await;
    assert_eq!(
        answers(&tg),
        [
            "This button has expired; send the command again.",
            "Stopped."
        ]
    );
    assert_eq!(t.count(&watched).await, 0, "removed by the admin");
    b.stop().await;
}

/// Who got through with one command or button press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    /// The feature answered.
    Through,
    /// The viewer's answer to an admin-only command or button.
    AdminsOnly,
    /// The stranger's refusal.
    Refused,
}

/// Whether a call is the feature's answer (and not a refusal).
type IsAnswer = fn(&Call) -> bool;

const ADMINS_ONLY: &str = "That command is for admins; you have the read-only viewer role.";
const ONLY_ADMINS_REMOVE: &str = "Only admins may remove channels.";

/// Waits until the calls after `before` satisfy `done`, and returns them.
async fn calls_after(
    tg: &FakeTelegram,
    before: usize,
    what: &str,
    done: impl Fn(&[Call]) -> bool,
) -> Vec<Call> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let new = tg.calls().split_off(before);
        if done(&new) {
            return new;
        }
        let seen: Vec<(String, String)> =
            new.iter().map(|c| (c.method.clone(), c.text())).collect();
        assert!(Instant::now() < deadline, "{what}: no answer; got {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The answer of a post-analytics button: a chart, or a text (the subscriber file has no posts,
/// so usually "has no samples yet").
fn post_answer(c: &Call) -> bool {
    c.method == "sendphoto" || (c.method == "sendmessage" && c.text() != REFUSAL)
}

/// Access by construction: every command and every button kind, sent as an admin, a viewer
/// and a stranger. A stranger gets a refusal line and nothing else, a viewer the read-only
/// features, an admin everything.
#[tokio::test]
async fn every_command_and_button_reaches_exactly_the_roles_allowed_to_use_it() {
    use tgpulse::state::{self, Action};
    const VIEWER: i64 = 4444;
    let t = with_top30().await;
    let all = t
        .client()
        .await
        .query("SELECT channel_id, handle FROM channels", &[])
        .await
        .unwrap();
    for row in all {
        super::collect::watch_channel(&t, row.get(0), row.get::<_, String>(1).as_str()).await;
    }
    state::grant_viewer(&t.db, VIEWER, ADMIN).await.unwrap();
    let tg = FakeTelegram::start().await;
    tg.add_chat("newchannel", 1_555_000_222, "New Channel", 10);
    let mut cfg = bot_config(&tg, &[ADMIN], "bot-access");
    (cfg.user_burst, cfg.user_per_minute) = (200, 600);
    let b = start(&t, &tg, cfg).await;

    // Each command with what its feature's answer looks like.
    let commands: &[(&str, IsAnswer)] = &[
        ("/start", |c| {
            c.text().starts_with("tgpulse: channel statistics")
        }),
        ("/help", |c| {
            c.text().starts_with("tgpulse: channel statistics")
        }),
        ("/list", |c| c.text().contains("<b>Watched channels</b>")),
        ("/stats @birblife 7", |c| c.method == "sendphoto"),
        ("/compare @birblife @cats_cats 7", |c| {
            c.method == "sendphoto"
        }),
        // The subscriber file has no posts: an empty network over the members' window.
        ("/mentions @birblife 7", |c| {
            c.text().contains("has no samples yet")
                || c.text().contains("<b>Forwards and mentions</b>")
        }),
        ("/export @birblife 7", |c| c.text().starts_with("Done:")),
        ("/health", |c| c.text().starts_with("<b>Health</b>")),
        ("/add @newchannel", |c| {
            c.text().starts_with("Now collecting")
        }),
        ("/remove @birblife", |c| {
            c.text().starts_with("Stop collecting")
        }),
        ("/grant 777", |c| {
            c.text() == "777 is now a viewer (read-only)."
        }),
        ("/revoke 777", |c| c.text() == "777 is no longer a viewer."),
        ("/viewers", |c| c.text().starts_with("<b>Viewers</b>")),
    ];
    let admin_only = ["/add", "/remove", "/grant", "/revoke", "/viewers"];
    // Each button kind with what its feature's answer looks like (after the spinner closes).
    let buttons: &[(&str, Action, IsAnswer)] = &[
        ("list page", Action::ListPage { page: 1 }, |c| {
            c.method == "editmessagetext" && c.text().contains("(page 2 of")
        }),
        (
            "stats window",
            Action::Stats {
                channel: BIRB,
                days: 30,
            },
            |c| c.method == "sendphoto",
        ),
        (
            "compare with",
            Action::CompareWith {
                channel: BIRB,
                days: 30,
            },
            |c| c.text().contains("with which channels"),
        ),
        (
            "export",
            Action::Export {
                channel: BIRB,
                days: 7,
            },
            |c| c.text().starts_with("Done:"),
        ),
        (
            "views",
            Action::Views {
                channel: BIRB,
                days: 30,
            },
            post_answer,
        ),
        (
            "best time",
            Action::BestTime {
                channel: BIRB,
                days: 30,
            },
            post_answer,
        ),
        (
            "top posts",
            Action::TopPosts {
                channel: BIRB,
                days: 30,
            },
            post_answer,
        ),
        ("cancel", Action::Cancel, |c| {
            c.text() == "Cancelled; nothing changed."
        }),
        ("remove", Action::Remove { channel: BIRB }, |c| {
            c.text().starts_with("Stopped collecting")
        }),
    ];
    let users = [("stranger", STRANGER), ("viewer", VIEWER), ("admin", ADMIN)];
    let mut got = Vec::new();
    let mut want = Vec::new();
    for (who, user) in users {
        for (text, through) in commands {
            let before = tg.calls().len();
            tg.message(user, text);
            let new = calls_after(&tg, before, text, |new| {
                new.iter().any(|c| {
                    c.chat() == Some(user)
                        && (c.text() == REFUSAL || c.text() == ADMINS_ONLY || through(c))
                })
            })
            .await;
            let mine: Vec<&Call> = new.iter().filter(|c| c.chat() == Some(user)).collect();
            let outcome = if mine.iter().any(|c| c.text() == REFUSAL) {
                Got::Refused
            } else if mine.iter().any(|c| c.text() == ADMINS_ONLY) {
                Got::AdminsOnly
            } else {
                Got::Through
            };
            got.push((who, *text, outcome));
            let name = text.split_whitespace().next().unwrap();
            want.push((
                who,
                *text,
                match who {
                    "stranger" => Got::Refused,
                    "viewer" if admin_only.contains(&name) => Got::AdminsOnly,
                    _ => Got::Through,
                },
            ));
        }
        for (kind, action, through) in buttons {
            // A real token of this user's, as the bot would have stored it under one of its
            // messages: the stranger holds valid tokens too, and is refused all the same.
            let token = state::put_actions(
                &t.db,
                user,
                user,
                std::slice::from_ref(action),
                matches!(action, Action::Remove { .. } | Action::Cancel),
                chrono::Utc::now(),
            )
            .await
            .unwrap()
            .remove(0);
            let before = tg.calls().len();
            tg.press(user, 1, &format!("a:{token}"));
            let new = calls_after(&tg, before, kind, |new| {
                new.iter().any(|c| {
                    c.method == "answercallbackquery"
                        && [REFUSAL, ONLY_ADMINS_REMOVE]
                            .contains(&c.params["text"].as_str().unwrap_or(""))
                }) || new.iter().any(|c| c.chat() == Some(user) && through(c))
            })
            .await;
            let answer = new
                .iter()
                .find(|c| c.method == "answercallbackquery")
                .map(|c| c.params["text"].as_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            let outcome = if answer == REFUSAL {
                Got::Refused
            } else if answer == ONLY_ADMINS_REMOVE {
                Got::AdminsOnly
            } else {
                Got::Through
            };
            got.push((who, *kind, outcome));
            want.push((
                who,
                *kind,
                match (who, action) {
                    ("stranger", _) => Got::Refused,
                    ("viewer", Action::Remove { .. }) => Got::AdminsOnly,
                    _ => Got::Through,
                },
            ));
            if who == "viewer" && matches!(action, Action::Remove { .. }) {
                let watched =
                    format!("SELECT count(*) FROM watched_channels WHERE channel_id = {BIRB}");
                assert_eq!(t.count(&watched).await, 1, "the viewer removed nothing");
            }
        }
    }
    assert_eq!(got, want);
    // The stranger saw one refusal line per message and nothing else: no data, no buttons,
    // no files, and every press was answered with the refusal.
    let to_stranger: Vec<Call> = tg
        .calls()
        .into_iter()
        .filter(|c| c.chat() == Some(STRANGER))
        .collect();
    assert_eq!(to_stranger.len(), commands.len());
    assert!(
        to_stranger
            .iter()
            .all(|c| c.method == "sendmessage" && c.text() == REFUSAL && c.buttons().is_empty())
    );
    assert_eq!(
        answers(&tg)
            .iter()
            .filter(|a| a.as_str() == REFUSAL)
            .count(),
        buttons.len()
    );
    let watched = format!("SELECT count(*) FROM watched_channels WHERE channel_id = {BIRB}");
    assert_eq!(
        t.count(&watched).await,
        0,
        "the admin's confirmation removed it"
    );
    b.stop().await;
}

/// A free loopback port (bound once and released) for a child process's listener.
fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
