//! The bot in its users' languages, against the fake Bot API: a user whose Telegram is in
//! Russian gets `/stats` in Russian (caption, numbers, buttons, and a chart drawn with Russian
//! labels), `/lang en` switches them to English across a restart, the command menu is
//! published per language, and alerts and weekly reports arrive in each recipient's language.

use chrono::Duration as Span;
use tgpulse::alert::task::evaluate_and_apply;
use tgpulse::domain::{ChannelRef, Days};
use tgpulse::i18n::{self, Lang};
use tgpulse::query::{self, Engine};
use tgpulse::report::ReportKind;
use tgpulse::report::queue;

use super::alerts::{at, jump_today, setup};
use super::bot::{ADMIN, BIRB, assert_png, bot_config, last_members, start, with_top30};
use super::collect::watch_channel;
use super::fake_telegram::FakeTelegram;
use super::reports::two_channels;
use crate::common::{TestDb, scratch};

const OTHER_ADMIN: i64 = 9002;

/// The chart the bot must have drawn for `/stats @birblife 30`, in `lang`.
async fn birb_chart(t: &TestDb, lang: Lang) -> Vec<u8> {
    let engine = Engine::new(t.db.clone());
    let c = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(BIRB).unwrap()),
    )
    .await
    .unwrap();
    let s = query::stats(&engine, &c, Days::new(30).unwrap(), None)
        .await
        .unwrap();
    tgpulse::chart::members_png(&s, lang).unwrap()
}

#[tokio::test]
async fn a_russian_user_gets_stats_in_russian_and_lang_en_survives_a_restart() {
    let t = with_top30().await;
    let tg = FakeTelegram::start().await;
    let cfg = bot_config(&tg, &[ADMIN], "lang-stats");
    let b = start(&t, &tg, cfg.clone()).await;

    // The menu: once for everybody (English), and in Russian for each Telegram language that
    // gets Russian replies.
    let menus = tg
        .wait(5, std::time::Duration::from_secs(30), |c| {
            c.method == "setmycommands"
        })
        .await;
    let codes: Vec<&str> = menus
        .iter()
        .filter_map(|c| c.params["language_code"].as_str())
        .collect();
    assert_eq!(codes, ["ru", "uk", "be", "kk"]);
    let default = menus
        .iter()
        .find(|c| c.params.get("language_code").is_none_or(|v| v.is_null()))
        .expect("a default menu");
    let ru = menus
        .iter()
        .find(|c| c.params["language_code"] == "ru")
        .expect("a Russian menu");
    let described = |c: &super::fake_telegram::Call, name: &str| -> String {
        c.params["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["command"] == name)
            .map(|x| x["description"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        described(default, "stats"),
        "@channel [days]: summary and chart (default 30 days)"
    );
    assert_eq!(
        described(ru, "stats"),
        "@канал [дней]: сводка и график (по умолчанию 30 дней)"
    );
    assert_eq!(
        described(ru, "lang"),
        "en|ru: язык бота (auto: как в Telegram)"
    );

    tg.message_in(ADMIN, "/stats @birblife 30", Some("ru"));
    let photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    let caption = photo.text();
    let members = i18n::int(Lang::Ru, last_members(&t, BIRB).await);
    assert!(
        members.contains('\u{202f}'),
        "grouped with a narrow no-break space: {members}"
    );
    for part in [
        "<b>@birblife</b> · Birb Life".to_owned(),
        "(30 дней, UTC)".to_owned(),
        "дней с данными".to_owned(),
        "последний замер".to_owned(),
    ] {
        assert!(caption.contains(&part), "{part:?} in {caption}");
    }
    let row = caption
        .lines()
        .find(|l| l.contains("подписчики"))
        .expect("a members row");
    assert!(row.ends_with(&format!(" {members}")), "{row:?}");
    assert!(
        !caption.contains("members"),
        "no English row left: {caption}"
    );
    let labels: Vec<String> = photo.buttons().into_iter().map(|b| b.0).collect();
    assert_eq!(
        labels,
        [
            "7 дней",
            "90 дней",
            "365 дней",
            "Сравнить с…",
            "Экспорт",
            "Просмотры",
            "Лучшее время",
            "Топ постов"
        ]
    );
    // The chart is exactly the one drawn with Russian labels, not the English one.
    assert_png(photo.file(), tgpulse::chart::SIZE);
    let (ru_png, en_png) = (
        birb_chart(&t, Lang::Ru).await,
        birb_chart(&t, Lang::En).await,
    );
    assert_ne!(ru_png, en_png, "the languages draw different charts");
    assert!(
        photo.file() == ru_png.as_slice(),
        "the bot sent the Russian chart"
    );
    // Kept for a look (the closing note shows both).
    let dir = scratch("lang-charts");
    std::fs::write(dir.join("stats_ru.png"), &ru_png).unwrap();
    std::fs::write(dir.join("stats_en.png"), &en_png).unwrap();
    std::fs::write(dir.join("caption_ru.html"), &caption).unwrap();

    // A bad argument gets its error and usage in Russian.
    tg.message_in(ADMIN, "/stats @birblife 0", Some("ru"));
    let bad = tg.wait_chat("sendmessage", ADMIN, 1).await.remove(0).text();
    assert!(
        bad.contains("«0» — не число дней") && bad.contains("Как писать: /stats @канал [дней]"),
        "{bad}"
    );

    // /lang en: the choice beats Telegram's language, and a restarted bot keeps it.
    tg.message_in(ADMIN, "/lang en", Some("ru"));
    let set = tg.wait_chat("sendmessage", ADMIN, 2).await.remove(1).text();
    assert_eq!(set, "From now on I answer you in English.");
    // The user's chat gets the English menu, whatever their Telegram's language.
    let pinned = tg
        .wait(1, std::time::Duration::from_secs(10), |c| {
            c.method == "setmycommands" && c.params["scope"]["type"] == "chat"
        })
        .await
        .remove(0);
    assert_eq!(pinned.params["scope"]["chat_id"], ADMIN);
    assert_eq!(
        described(&pinned, "stats"),
        "@channel [days]: summary and chart (default 30 days)"
    );
    b.stop().await;
    let b = start(&t, &tg, cfg).await;
    tg.message_in(ADMIN, "/stats @birblife 30", Some("ru"));
    let photo = tg.wait_chat("sendphoto", ADMIN, 2).await.remove(1);
    let caption = photo.text();
    std::fs::write(dir.join("caption_en.html"), &caption).unwrap();
    let members = i18n::int(Lang::En, last_members(&t, BIRB).await);
    assert!(
        caption.contains("(30 days, UTC)")
            && caption.contains(&format!("members            {members}")),
        "{caption}"
    );
    assert!(photo.file() == en_png.as_slice(), "the English chart");

    // /lang auto: back to the language of the user's Telegram.
    tg.message_in(ADMIN, "/lang auto", Some("uk"));
    let auto = tg.wait_chat("sendmessage", ADMIN, 3).await.remove(2).text();
    assert_eq!(auto, "Снова говорю на языке вашего Telegram.");
    b.stop().await;
}

#[tokio::test]
async fn an_alert_reaches_each_admin_in_their_own_language() {
    let t = TestDb::plain().await;
    watch_channel(&t, 7201, "jumper").await;
    let now = at("2026-05-10T12:00:00Z");
    jump_today(&t, 7201, now - Span::hours(1), 14_000).await;
    // One admin chose Russian; the other's Telegram is English (never seen: the default).
    tgpulse::state::choose_language(&t.db, ADMIN, Some(Lang::Ru))
        .await
        .unwrap();
    let tg = FakeTelegram::start().await;
    let b = start(
        &t,
        &tg,
        bot_config(&tg, &[ADMIN, OTHER_ADMIN], "lang-alert"),
    )
    .await;
    let mut s = setup();
    s.admins = vec![ADMIN as u64, OTHER_ADMIN as u64];
    evaluate_and_apply(&Engine::new(t.db.clone()), &s, now, None)
        .await
        .unwrap();
    let ru = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    let en = tg.wait_chat("sendphoto", OTHER_ADMIN, 1).await.remove(0);
    let (ru_text, en_text) = (ru.text(), en.text());
    assert!(
        ru_text.contains("<b>@jumper</b>: members_change, 10 мая 2026"),
        "{ru_text}"
    );
    assert!(
        ru_text.contains("подписчики 10\u{202f}001 → 14\u{202f}000 (+40,0\u{a0}%)"),
        "{ru_text}"
    );
    assert!(
        ru_text.contains(
            "до 10\u{202f}001 · после 14\u{202f}000 · изменение +40,0\u{a0}% · порог 20\u{a0}%"
        ),
        "{ru_text}"
    );
    let ru_buttons: Vec<String> = ru.buttons().into_iter().map(|b| b.0).collect();
    assert_eq!(ru_buttons, ["Тишина 7 дней", "Статистика", "Сравнить"]);
    assert!(
        en_text.contains("before 10,001 · after 14,000 · change +40.0 % · threshold 20 %"),
        "{en_text}"
    );
    assert!(
        en_text.contains("members 10,001 → 14,000 (+40.0 %)"),
        "{en_text}"
    );
    std::fs::write(scratch("lang-charts").join("alert_ru.html"), &ru_text).unwrap();
    b.stop().await;
}

#[tokio::test]
async fn one_weekly_run_writes_the_report_in_each_recipients_language() {
    let t = TestDb::plain().await;
    two_channels(&t).await;
    queue::subscribe(&t.db, ADMIN, true).await.unwrap();
    queue::subscribe(&t.db, OTHER_ADMIN, true).await.unwrap();
    // ADMIN's Telegram is in Russian (seen on an earlier update); OTHER_ADMIN never said.
    tgpulse::state::language(&t.db, ADMIN, Some("ru"))
        .await
        .unwrap();
    let engine = Engine::new(t.db.clone());
    let run = "2026-03-30".parse().unwrap();
    let n = queue::generate(&engine, ReportKind::Weekly, run, at("2026-03-30T04:00:00Z"))
        .await
        .unwrap();
    assert_eq!(n, 2, "one row per recipient");
    let tg = FakeTelegram::start().await;
    let b = start(
        &t,
        &tg,
        bot_config(&tg, &[ADMIN, OTHER_ADMIN], "lang-report"),
    )
    .await;
    let ru_photo = tg.wait_chat("sendphoto", ADMIN, 1).await.remove(0);
    let en_photo = tg.wait_chat("sendphoto", OTHER_ADMIN, 1).await.remove(0);
    let ru: String = tg
        .to_chat("sendmessage", ADMIN)
        .iter()
        .map(|m| m.text())
        .collect();
    let en: String = tg
        .to_chat("sendmessage", OTHER_ADMIN)
        .iter()
        .map(|m| m.text())
        .collect();
    for part in [
        "Еженедельный отчёт, 23 мар 2026 – 29 мар 2026 (UTC)",
        "@alpha_news: <b>53\u{202f}800</b> (+700, +1,32\u{a0}%) · посты",
        "Лидеры роста",
    ] {
        assert!(ru.contains(part), "{part:?} in {ru}");
    }
    for part in [
        "Weekly report, 23 Mar 2026 – 29 Mar 2026 (UTC)",
        "@alpha_news: <b>53,800</b> (+700, +1.32 %) · posts",
        "Top growers",
    ] {
        assert!(en.contains(part), "{part:?} in {en}");
    }
    assert_eq!(
        ru_photo.text(),
        "Индекс роста 10 крупнейших каналов (100 = начало периода)"
    );
    assert_png(ru_photo.file(), tgpulse::chart::SIZE);
    assert_ne!(
        ru_photo.file(),
        en_photo.file(),
        "the chart is drawn per language"
    );
    std::fs::write(scratch("lang-charts").join("report_ru.html"), &ru).unwrap();
    b.stop().await;
}
