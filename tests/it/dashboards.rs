//! The Grafana dashboards shipped in docker/grafana/dashboards: every SQL panel runs under the
//! read-only analyst role on the real data and returns rows, every panel uses a provisioned data
//! source, and the collector-health dashboard uses only metrics the service exports.
//!
//! Grafana macros and variables are expanded the way Grafana's PostgreSQL data source expands
//! them (see [`grafana_expand`]):
//!
//! | in the dashboard | becomes |
//! |---|---|
//! | `$__timeFilter(col)` | `col BETWEEN '<from>' AND '<to>'` |
//! | `$__timeFrom()` / `$__timeTo()` | `'<from>'` / `'<to>'` |
//! | `$channel` / `${channel}` | the channel id, unquoted (a single-value variable) |
//!
//! `<from>`..`<to>` (RFC 3339, UTC, as Grafana sends them) covers every daily bucket in the
//! database: the first bucket to the day after the last one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde_json::Value;

use crate::common::{TestDb, animals, posts_file, scratch};

/// The metrics the service exports (src/telemetry.rs), by name as Prometheus sees them;
/// histograms by their base name (their series are `_bucket`, `_sum` and `_count`).
const DOCUMENTED_METRICS: &[&str] = &[
    "tgpulse_samples_accepted_total",
    "tgpulse_samples_stored_total",
    "tgpulse_samples_duplicate_total",
    "tgpulse_batch_commit_seconds",
    "tgpulse_ingest_queue_depth",
    "tgpulse_source_requests_total",
    "tgpulse_source_breaker_open",
    "tgpulse_source_last_success_timestamp_seconds",
    "tgpulse_daily_refresh_seconds",
    "tgpulse_bot_updates_total",
    "tgpulse_bot_reply_seconds",
    "tgpulse_export_rows_total",
    "tgpulse_export_bytes_total",
    "tgpulse_task_restarts_total",
    "tgpulse_task_running",
    "tgpulse_watched_channels",
];

/// The documented histograms.
const HISTOGRAMS: &[&str] = &[
    "tgpulse_batch_commit_seconds",
    "tgpulse_daily_refresh_seconds",
    "tgpulse_bot_reply_seconds",
];

/// UIDs of the data sources in docker/grafana/provisioning/datasources/tgpulse.yml.
const POSTGRES_UID: &str = "tgpulse-postgres";
const PROMETHEUS_UID: &str = "tgpulse-prometheus";

/// A channel of the real posts file (15,374 posts, 2019-11 .. 2024-12). The two real datasets
/// share no channel (419 channel ids with subscriber counts, 481 with posts, none in common),
/// so no real channel has an ERR; see the test for how this one gets members.
const POSTS_CHANNEL: i64 = 1_214_069_794;

/// The dashboard files (`*.json` under docker/grafana/dashboards), sorted.
pub(crate) fn dashboard_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker/grafana/dashboards"
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in {}", dir.display());
    files
}

/// Every SQL query of the dashboards as (panel title, rawSql): the targets of the panels (rows'
/// nested panels included) that carry `rawSql`, and the PostgreSQL template variables' queries
/// (titled `variable <name>`).
pub(crate) fn dashboard_sql() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in dashboard_files() {
        let d = load(&file);
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if source_type(&v["datasource"]).contains("postgres") {
                let name = v["name"].as_str().unwrap_or("?");
                let q = v["query"]
                    .as_str()
                    .or_else(|| v["query"]["rawSql"].as_str())
                    .unwrap_or_else(|| panic!("{}: variable {name} has no query", file.display()));
                out.push((format!("variable {name}"), q.to_owned()));
            }
        }
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(sql) = t["rawSql"].as_str() {
                    let title = p["title"].as_str().unwrap_or("(untitled)");
                    out.push((title.to_owned(), sql.to_owned()));
                }
            }
        }
    }
    out
}

/// Every metric name (`tgpulse_[a-z0-9_]+`) in the dashboards' PromQL: each `expr` anywhere in
/// a dashboard, and the Prometheus template variables' queries. A histogram's `_bucket`, `_sum`
/// and `_count` series count as the histogram (a documented histogram, or a name also used
/// with `_bucket`).
pub(crate) fn dashboard_metrics() -> BTreeSet<String> {
    let mut raw = BTreeSet::new();
    for file in dashboard_files() {
        let d = load(&file);
        let mut exprs = Vec::new();
        exprs_in(&d, &mut exprs);
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if source_type(&v["datasource"]) == "prometheus" {
                exprs.extend(v["definition"].as_str());
                exprs.extend(v["query"].as_str());
                exprs.extend(v["query"]["query"].as_str());
            }
        }
        for e in exprs {
            raw.extend(metric_names(e));
        }
    }
    let histograms: BTreeSet<String> = raw
        .iter()
        .filter_map(|n| n.strip_suffix("_bucket"))
        .map(str::to_owned)
        .chain(HISTOGRAMS.iter().map(|h| (*h).to_owned()))
        .collect();
    raw.into_iter()
        .map(|name| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| histograms.contains(*b)))
                .map_or_else(|| name.clone(), str::to_owned)
        })
        .collect()
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A panel's or variable's data source type (`""` when it names none).
fn source_type(ds: &Value) -> &str {
    ds["type"].as_str().unwrap_or("")
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

/// Every string under an `expr` key, anywhere in the document.
fn exprs_in<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match x.as_str() {
                    Some(s) if k == "expr" => out.push(s),
                    _ => exprs_in(x, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| exprs_in(x, out)),
        _ => {}
    }
}

/// The `tgpulse_…` identifiers of a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    const PREFIX: &str = "tgpulse_";
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = expr[i..].find(PREFIX) {
        let start = i + off;
        let mut end = start + PREFIX.len();
        while end < b.len() && ident(b[end]) {
            end += 1;
        }
        let starts_word =
            start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b"_:".contains(&b[start - 1]));
        if starts_word && end > start + PREFIX.len() {
            out.push(expr[start..end].to_owned());
        }
        i = end;
    }
    out
}

/// Expands the Grafana macros and the `channel` variable (see the module docs).
fn grafana_expand(sql: &str, from: &str, to: &str, channel: i64) -> String {
    const TIME_FILTER: &str = "$__timeFilter(";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find(TIME_FILTER) {
        out.push_str(&rest[..i]);
        let args = &rest[i + TIME_FILTER.len()..];
        let close = args
            .find(')')
            .unwrap_or_else(|| panic!("unclosed $__timeFilter( in\n{sql}"));
        let col = args[..close].trim();
        out.push_str(&format!("{col} BETWEEN '{from}' AND '{to}'"));
        rest = &args[close + 1..];
    }
    out.push_str(rest);
    out.replace("$__timeFrom()", &format!("'{from}'"))
        .replace("$__timeTo()", &format!("'{to}'"))
        .replace("${channel}", &channel.to_string())
        .replace("$channel", &channel.to_string())
}

/// Writes the posts of one channel of a posts Parquet file to `out` (a smaller real file: the
/// import of all 2.7M posts takes half a minute).
async fn write_channel_posts(src: &Path, channel: i64, out: &Path) {
    let ctx = SessionContext::new();
    ctx.register_parquet("p", src.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    ctx.sql(&format!(
        "SELECT channel_id, channel_name, msg_id, date, views, number_replies, number_forwards
         FROM p WHERE channel_id = {channel}"
    ))
    .await
    .unwrap()
    .write_parquet(
        out.to_str().unwrap(),
        DataFrameWriteOptions::new().with_single_file_output(true),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_sql_panel_of_the_dashboards_returns_rows_on_the_real_data() {
    let queries = dashboard_sql();
    assert!(
        queries
            .iter()
            .any(|(title, _)| !title.starts_with("variable ")),
        "no SQL panel in {:?}",
        dashboard_files()
    );

    let t = TestDb::plain().await;
    // Members: the real top-30 subscriber file.
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    // Posts: the real posts of one channel, cut out of the posts file.
    let dir = scratch(&format!("dashboards-{}", t.name));
    let posts = dir.join("posts_one_channel.parquet");
    write_channel_posts(&posts_file(), POSTS_CHANNEL, &posts).await;
    let s = t.import(&posts).await;
    assert_eq!(s.rejected, 0);
    assert!(s.post_samples_inserted > 15_000, "{s:?}");

    // SYNTHETIC members for that channel: the datasets share no channel, and ERR needs members
    // and views of the same channel on the same day. One sample at noon UTC of every day with
    // posts, growing by 10 a day; every other number in this test is real.
    let c = t.client().await;
    let handle: Option<String> = c
        .query_one(
            "SELECT handle FROM channels WHERE channel_id = $1",
            &[&POSTS_CHANNEL],
        )
        .await
        .unwrap()
        .get(0);
    let days: Vec<String> = c
        .query(
            "SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM views_daily
             WHERE channel_id = $1 ORDER BY bucket",
            &[&POSTS_CHANNEL],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(days.len() > 1_000, "{} days with posts", days.len());
    let mut csv = String::from("handle,channel_id,observed_at,subscriber_count\n");
    for (i, day) in days.iter().enumerate() {
        csv.push_str(&format!(
            "{},{POSTS_CHANNEL},{day}T12:00:00Z,{}\n",
            handle.as_deref().unwrap_or(""),
            20_000 + 10 * i
        ));
    }
    let bridge = dir.join("synthetic_members.csv");
    std::fs::write(&bridge, csv).unwrap();
    assert_eq!(
        t.import(&bridge).await.member_samples_inserted,
        days.len() as u64
    );

    // `$channel`: a channel with both members and views.
    let channel = t
        .count(
            "SELECT channel_id FROM members_daily INTERSECT SELECT channel_id FROM views_daily
             ORDER BY 1 LIMIT 1",
        )
        .await;
    assert_eq!(channel, POSTS_CHANNEL);
    // The time range: every daily bucket.
    let range = c
        .query_one(
            r#"SELECT to_char(min(b) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                      to_char((max(b) + interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
               FROM (SELECT bucket AS b FROM members_daily UNION ALL SELECT bucket FROM views_daily) x"#,
            &[],
        )
        .await
        .unwrap();
    let (from, to): (String, String) = (range.get(0), range.get(1));
    drop(c);

    // The analyst role: SELECT only, exactly what the Grafana data source's login has.
    let (analyst, conn) = tokio_postgres::connect(&t.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    analyst
        .batch_execute("SET ROLE tgpulse_analyst")
        .await
        .unwrap();
    let mut failures = Vec::new();
    for (title, raw) in &queries {
        let sql = grafana_expand(raw, &from, &to, channel);
        assert!(
            !sql.contains('$'),
            "{title}: a macro or variable is left unsubstituted:\n{sql}"
        );
        match analyst.query(sql.as_str(), &[]).await {
            Ok(rows) if rows.is_empty() => failures.push(format!("{title}: no rows\n{sql}")),
            Ok(_) => {}
            Err(e) => failures.push(format!(
                "{title}: {}\n{sql}",
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned())
            )),
        }
    }
    drop(analyst);
    let _ = conn.await;
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed (range {from} .. {to}, channel {channel}):\n\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_collector_health_dashboard_uses_only_documented_metrics() {
    assert_eq!(
        metric_names(r#"sum(rate(tgpulse_a_bucket{x="y"}[5m])) / up + xtgpulse_b"#),
        vec!["tgpulse_a_bucket".to_owned()]
    );
    let used = dashboard_metrics();
    let undocumented: Vec<&String> = used
        .iter()
        .filter(|m| !DOCUMENTED_METRICS.contains(&m.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "metrics the service does not export: {undocumented:?} (used: {used:?})"
    );
    assert!(
        used.len() >= 8,
        "only {} distinct metrics used: {used:?}",
        used.len()
    );
}

#[test]
fn every_panel_and_variable_uses_a_provisioned_data_source() {
    let provisioned = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker/grafana/provisioning/datasources/tgpulse.yml"
    ))
    .unwrap();
    for uid in [POSTGRES_UID, PROMETHEUS_UID] {
        assert!(
            provisioned.contains(&format!("uid: {uid}\n")),
            "{uid} is not provisioned"
        );
    }
    for file in dashboard_files() {
        let d = load(&file);
        let mut users: Vec<(String, &Value)> = Vec::new();
        for p in panels(&d).into_iter().filter(|p| p["type"] != "row") {
            let title = p["title"].as_str().unwrap_or("(untitled)");
            users.push((format!("panel {title}"), &p["datasource"]));
            for t in p["targets"].as_array().into_iter().flatten() {
                users.push((format!("panel {title}, target"), &t["datasource"]));
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap_or("?");
            users.push((format!("variable {name}"), &v["datasource"]));
        }
        for (what, ds) in users {
            let uid = ds["uid"].as_str().unwrap_or("");
            assert!(
                uid == POSTGRES_UID || uid == PROMETHEUS_UID,
                "{}: {what} uses data source {ds}",
                file.display()
            );
        }
    }
}
