//! The binary end to end: actionable errors and charts a person can look at.

use std::process::Command;

use crate::common::{TestDb, data_dir, scratch};

fn tgpulse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tgpulse"));
    c.env_remove("TGPULSE_DATABASE_URL")
        .env("TGPULSE_LOG", "error");
    c
}

#[test]
fn no_server_gives_an_actionable_error() {
    let out = tgpulse()
        .args([
            "migrate",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/tgpulse",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1:1/tgpulse"),
        "{err}"
    );
    assert!(
        err.contains("docker compose -f docker/compose.yml up -d"),
        "{err}"
    );
    assert!(err.contains("TGPULSE_DATABASE_URL"), "{err}");
}

#[test]
fn demo_without_the_data_says_where_to_get_it() {
    let out = tgpulse()
        .args(["demo", "--data", "/nonexistent/data"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("real data set is not at /nonexistent/data"),
        "{err}"
    );
    assert!(err.contains("README"), "{err}");
}

#[test]
fn a_bad_channel_argument_is_refused_with_the_right_form() {
    let out = tgpulse().args(["stats", "@x!"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected @name"), "{err}");
}

/// PNG width and height from the IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[tokio::test]
async fn the_demo_runs_on_real_data_and_writes_charts_and_a_parquet_export() {
    let t = TestDb::plain().await;
    let dir = scratch("demo");
    let out = tokio::task::spawn_blocking({
        let url = t.url.clone();
        let dir = dir.clone();
        move || {
            tgpulse()
                .args([
                    "demo",
                    "--database-url",
                    &url,
                    "--out-dir",
                    dir.to_str().unwrap(),
                ])
                .arg("--data")
                .arg(data_dir())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rows read            60053"), "{stdout}");
    assert!(
        stdout.contains("== stats of the largest channel"),
        "{stdout}"
    );
    assert!(stdout.contains("ERR"), "{stdout}");
    let charts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(charts.len(), 2);
    for c in charts {
        let bytes = std::fs::read(&c).unwrap();
        assert_eq!(png_size(&bytes), tgpulse::chart::SIZE);
        assert!(
            bytes.len() > 20_000,
            "{} looks empty ({} bytes)",
            c.display(),
            bytes.len()
        );
    }
    let parquet = dir.join("members_daily.parquet");
    let file = std::fs::File::open(&parquet).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let rows = parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .num_rows();
    assert_eq!(rows, t.count("SELECT count(*) FROM members_daily").await);
}
