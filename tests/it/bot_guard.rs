//! The bot under hostile or unlucky input: a handler that panics, an id that overflows, a
//! conversation left open for too long, a stranger in a group. Against the fake Bot API.

use std::time::Duration;

use serde_json::json;
use teloxide::prelude::*;
use tgpulse::bot;
use tgpulse::clock::{ManualClock, SharedClock};
use tokio_util::sync::CancellationToken;

use super::bot::{ADMIN, REFUSAL, RunningBot, bot_config, with_top30};
use super::fake_telegram::FakeTelegram;
use crate::common::TestDb;

const STRANGER: i64 = 666;
const INTERNAL_ERROR: &str =
    "Sorry, that request failed on our side. It has been logged; please try again or ask an admin.";

/// Starts the bot on `clock`, with `first` tried before its own handlers.
async fn start_with(
    t: &TestDb,
    tg: &FakeTelegram,
    dir: &str,
    clock: SharedClock,
    first: Option<teloxide::dispatching::UpdateHandler<bot::BoxError>>,
) -> RunningBot {
    let stop = CancellationToken::new();
    let db = t.db.clone();
    let cfg = bot_config(tg, &[ADMIN], dir);
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { bot::run_with_first(db.clone(), db, &cfg, None, clock, stop, first).await }
    });
    tg.wait(1, Duration::from_secs(30), |c| c.method == "setmycommands")
        .await;
    RunningBot::new(stop, task)
}

#[tokio::test]
async fn a_panicking_handler_costs_one_update_not_the_bot() {
    let t = TestDb::plain().await;
    let tg = FakeTelegram::start().await;
    let boom = Update::filter_message()
        .filter(|m: Message| m.text() == Some("/boom"))
        .endpoint(|| async move {
            if std::hint::black_box(true) {
                panic!("a bug in a handler");
            }
            Ok(())
        });
    let clock = tgpulse::clock::SystemClock::shared();
    let b = start_with(&t, &tg, "bot-panic", clock, Some(boom)).await;
    // Twice from the same chat: before the guard, the first panic killed the chat's worker
    // and the second update panicked the dispatcher itself.
    tg.message(ADMIN, "/boom");
    tg.message(ADMIN, "/boom");
    tg.message(ADMIN, "/help");
    let replies = tg.wait_chat("sendmessage", ADMIN, 3).await;
    assert_eq!(replies[0].text(), INTERNAL_ERROR);
    assert_eq!(replies[1].text(), INTERNAL_ERROR);
    assert!(
        replies[2].text().starts_with("tgpulse: channel statistics"),
        "the bot still answers: {}",
        replies[2].text()
    );
    b.stop().await;
}

#[tokio::test]
async fn an_id_past_i64_gets_a_clear_reply() {
    let t = TestDb::plain().await;
    let tg = FakeTelegram::start().await;
    let clock = tgpulse::clock::SystemClock::shared();
    let b = start_with(&t, &tg, "bot-min", clock, None).await;
    tg.message(ADMIN, "/stats -9223372036854775808");
    tg.message(ADMIN, "/stats -9223372036854775809");
    let replies = tg.wait_chat("sendmessage", ADMIN, 2).await;
    for r in &replies {
        assert!(r.text().contains("is not a channel."), "{}", r.text());
    }
    b.stop().await;
}

#[tokio::test]
async fn a_compare_with_left_open_for_ten_minutes_does_not_capture_the_next_message() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let shared: SharedClock = clock.clone();
    let b = start_with(&t, &tg, "bot-dialogue", shared, None).await;
    tg.message(ADMIN, "/stats @birblife");
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    tg.press(
        ADMIN,
        photo.message_id.unwrap(),
        &photo.button("Compare with"),
    );
    let ask = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0);
    assert!(ask.text().contains("with which channels"), "{}", ask.text());
    clock.advance(Duration::from_secs(10 * 60 + 1));
    tg.message(ADMIN, "@cats_cats");
    let hint = tg.wait_chat("sendmessage", ADMIN, 2).await.remove(1);
    assert!(
        hint.text().starts_with("Send a command"),
        "an expired conversation reads the message as plain text: {}",
        hint.text()
    );
    assert_eq!(tg.to_chat("sendphoto", ADMIN).len(), 1, "no comparison");
    assert_eq!(
        t.count("SELECT count(*) FROM bot_dialogues").await,
        0,
        "the expired state is gone"
    );
    b.stop().await;
}

#[tokio::test]
async fn a_stranger_in_a_group_is_ignored_and_refused_only_in_private() {
    let t = TestDb::plain().await;
    let tg = FakeTelegram::start().await;
    let clock = tgpulse::clock::SystemClock::shared();
    let b = start_with(&t, &tg, "bot-group", clock, None).await;
    const GROUP: i64 = -4_000_123;
    tg.push(json!({"message": {
        "message_id": 77, "date": chrono::Utc::now().timestamp(),
        "chat": {"id": GROUP, "type": "group", "title": "some group"},
        "from": {"id": STRANGER, "is_bot": false, "first_name": "s"},
        "text": "/stats@tgpulse_bot @birblife",
        "entities": [{"type": "bot_command", "offset": 0, "length": 18}],
    }}));
    tg.message(STRANGER, "hello");
    let refusal = tg.wait_chat("sendmessage", STRANGER, 1).await;
    assert_eq!(refusal[0].text(), REFUSAL);
    // The group message came first; give it the same time to have been answered, if it were.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        tg.calls().iter().all(|c| c.chat() != Some(GROUP)),
        "nothing is posted to the group"
    );
    b.stop().await;
}
