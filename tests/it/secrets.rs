//! Secrets stay secret: a canary value in every secret setting (database password, each
//! source's token, the bot token, the webhook secret), every error path provoked (bad TOML,
//! 401, 5xx, a timeout, a redirect), and the canary must appear in no output, no log line (at
//! debug level, text and JSON) and no `source_status` row.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::collect::watch_channel;
use crate::common::{TestDb, scratch};

const CANARY: &str = "CANARY7f3a9";

/// A fake upstream that answers every request the same way.
async fn upstream(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    server
}

fn tgpulse(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("tgpulse runs")
}

fn assert_clean(what: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "{what}: the canary leaked\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// The database URL with the canary as its password (trust auth ignores it).
fn url_with_canary(t: &TestDb) -> String {
    t.url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{CANARY}@"),
        1,
    )
}

fn sources(dir: &Path, name: &str, bot: &str, tgstat: &str, telemetr: &str) -> String {
    let file = dir.join(name);
    let limits = "[LIMITS]\nrequests_per_second = 1000\ntimeout = \"300ms\"\nretry_deadline = \"1s\"\nbackoff_min = \"10ms\"\nbackoff_max = \"50ms\"\n";
    let mut text = String::new();
    for (source, url, token) in [
        ("botapi", bot, format!("123456:{CANARY}")),
        ("tgstat", tgstat, format!("{CANARY}tg")),
        ("telemetr", telemetr, format!("{CANARY}tm")),
    ] {
        text +=
            &format!("[{source}]\napi_url = \"{url}\"\ntoken = \"{token}\"\nquota_reserve = 0\n");
        text += &limits.replace("LIMITS", &format!("{source}.limits"));
    }
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

#[tokio::test]
async fn a_canary_in_every_secret_appears_in_no_output_log_or_status_row() {
    let t = TestDb::plain().await;
    watch_channel(&t, 1_363_895_234, "birblife").await;
    let db = url_with_canary(&t);
    let dir = scratch("secrets");

    let unauthorized = upstream(ResponseTemplate::new(401).set_body_json(json!({
        "ok": false, "error_code": 401, "description": "Unauthorized",
        "status": "error", "error": "token_invalid"
    })))
    .await;
    let broken =
        upstream(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>")).await;
    let slow = upstream(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).await;
    // A redirect that would carry the token on to another host, as a hijacked endpoint would.
    let redirect = upstream(ResponseTemplate::new(302).insert_header(
        "Location",
        format!("http://127.0.0.1:9/steal?token={CANARY}").as_str(),
    ))
    .await;

    let runs = [
        sources(
            &dir,
            "a.toml",
            &unauthorized.uri(),
            &broken.uri(),
            &slow.uri(),
        ),
        sources(
            &dir,
            "b.toml",
            &redirect.uri(),
            &redirect.uri(),
            &unauthorized.uri(),
        ),
        sources(
            &dir,
            "c.toml",
            &slow.uri(),
            &unauthorized.uri(),
            &broken.uri(),
        ),
    ];
    for (i, file) in runs.iter().enumerate() {
        let format = if i % 2 == 0 { "text" } else { "json" };
        let out = tgpulse(
            &[
                "collect",
                "--once",
                "--sources",
                file,
                "--log",
                "debug",
                "--log-format",
                format,
            ],
            &[("TGPULSE_DATABASE_URL", db.clone())],
        );
        assert_clean(&format!("collect with {file}"), &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.len() > 200,
            "the run logged its errors at debug level: {stderr}"
        );
    }
    // The redirect was answered, and not followed.
    assert!(!redirect.received_requests().await.unwrap().is_empty());
    assert_eq!(
        t.count(&format!(
            "SELECT count(*) FROM source_status WHERE row_to_json(source_status)::text LIKE '%{CANARY}%'"
        ))
        .await,
        0,
        "no source_status row holds the canary"
    );
    assert!(
        t.count("SELECT count(*) FROM source_status WHERE last_error IS NOT NULL")
            .await
            >= 3,
        "the errors were recorded (without the canary)"
    );

    // Bad TOML on a token line, and a bad value right after one.
    for (name, text) in [
        ("bad1.toml", format!("[tgstat]\ntoken = \"{CANARY}\n")),
        ("bad2.toml", format!("[botapi]\ntoken = {CANARY}\n")),
        (
            "bad3.toml",
            format!("[botapi]\ntoken = \"1:{CANARY}\"\nburst = \"many\"\n"),
        ),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let out = tgpulse(
            &["collect", "--once", "--sources", file.to_str().unwrap()],
            &[("TGPULSE_DATABASE_URL", db.clone())],
        );
        assert!(!out.status.success(), "{name} is refused");
        assert_clean(name, &out);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("line "),
            "{name} names the line"
        );
    }

    // --help with every secret in the environment.
    let env = [
        ("TGPULSE_DATABASE_URL", db.clone()),
        ("TGPULSE_BOT_TOKEN", format!("1:{CANARY}")),
        ("TGPULSE_BOT_WEBHOOK_SECRET", CANARY.to_owned()),
        ("TGPULSE_TGSTAT_TOKEN", CANARY.to_owned()),
    ];
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["bot", "--help"],
        &["collect", "--help"],
    ] {
        let out = tgpulse(args, &env);
        assert!(out.status.success());
        assert_clean(&format!("{args:?}"), &out);
    }

    // The bot, with its token refused by the Bot API.
    let api = unauthorized.uri();
    let bot = ["bot", "--bot-api-url", api.as_str(), "--admin-ids", "1"];
    let out = tgpulse(&[&bot[..], &["--log", "debug"]].concat(), &env);
    assert!(!out.status.success());
    assert_clean("bot with a refused token", &out);
    // A webhook secret Telegram would refuse is refused at start, without echoing it.
    let mut bad_secret = env.to_vec();
    bad_secret[2].1 = format!("{CANARY} with spaces");
    let webhook = ["--bot-webhook-url", "https://example.org/hook"];
    let out = tgpulse(&[&bot[..], &webhook[..]].concat(), &bad_secret);
    assert!(!out.status.success());
    assert_clean("bot with a bad webhook secret", &out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--bot-webhook-secret"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
