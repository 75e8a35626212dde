//! TimescaleDB policies from configuration: continuous-aggregate refresh, compression,
//! retention. Checked at every migrate; a policy is replaced only when the configuration
//! differs from what is installed, and all changes are made in one transaction, so a crash
//! never leaves a table without its policies and a start with unchanged settings runs no DDL
//! beside live ingest.

use deadpool_postgres::{Object, Transaction};

use super::Error;
use crate::config::StorageConfig;

const HYPERTABLES: [(&str, &str, &str); 2] = [
    ("member_samples", "channel_id", "observed_at"),
    (
        "post_samples",
        "channel_id, post_id",
        "published_at, observed_at",
    ),
];
const AGGREGATES: [&str; 3] = ["members_daily", "post_reach", "views_daily"];

/// The policy kinds, as TimescaleDB names their jobs (`timescaledb_information.jobs.proc_name`).
const REFRESH: &str = "policy_refresh_continuous_aggregate";
const COMPRESSION: &str = "policy_compression";
const RETENTION: &str = "policy_retention";

/// Each installed policy job of the relations above: the relation (the continuous aggregate's
/// view name for refresh jobs), the kind, the job id, and whether its settings equal
/// `$1` refresh window (days), `$2` schedule (minutes), `$3` compress-after (days), `$4`
/// drop-after (days). Intervals are compared as intervals, not as text.
const INSTALLED: &str = "
SELECT coalesce(ca.view_name, j.hypertable_name)::text AS rel, j.proc_name::text, j.job_id,
       coalesce(CASE j.proc_name
           WHEN 'policy_refresh_continuous_aggregate' THEN
               (j.config->>'start_offset')::interval = make_interval(days => $1)
               AND j.config->>'end_offset' IS NULL
               AND j.schedule_interval = make_interval(mins => $2)
           WHEN 'policy_compression' THEN
               (j.config->>'compress_after')::interval = make_interval(days => $3)
           WHEN 'policy_retention' THEN
               (j.config->>'drop_after')::interval = make_interval(days => $4)
       END, false) AS current
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.continuous_aggregates ca
    ON ca.materialization_hypertable_schema = j.hypertable_schema
   AND ca.materialization_hypertable_name = j.hypertable_name
WHERE j.proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression', 'policy_retention')
  AND coalesce(ca.view_schema, j.hypertable_schema) = 'public'";

/// One installed policy job.
#[derive(Debug)]
struct Job {
    rel: String,
    kind: String,
    id: i32,
    current: bool,
}

/// Brings the refresh, compression and retention policies in line with `cfg`.
///
/// For each relation and kind, the installed job is kept when it has the configured settings;
/// otherwise it is removed and the configured one added (or only removed, when the setting is
/// 0 = off). Nothing is written when everything matches; all changes commit together.
///
/// Retention never drops raw chunks inside a refresh window: `--retention-days` must exceed
/// `--refresh-window-days`, otherwise this fails with `Error::Settings`; the same holds for
/// `--compress-after-days`.
///
/// errors: `Error::Settings` for an unsafe retention or compression; `Error::Query` if reading
/// the jobs or a policy call fails (then nothing was changed).
pub(super) async fn apply(client: &mut Object, cfg: &StorageConfig) -> Result<(), Error> {
    let window = i32::try_from(cfg.refresh_window_days).unwrap_or(i32::MAX);
    if cfg.retention_days != 0 && cfg.retention_days <= cfg.refresh_window_days {
        return Err(Error::Settings(format!(
            "--retention-days {} would drop raw samples inside the {}-day refresh window and \
             silently delete daily history; use more than {} days or 0 (off)",
            cfg.retention_days, cfg.refresh_window_days, cfg.refresh_window_days
        )));
    }
    if cfg.compress_after_days != 0 && cfg.compress_after_days <= cfg.refresh_window_days {
        return Err(Error::Settings(format!(
            "--compress-after-days {} must exceed the {}-day refresh window",
            cfg.compress_after_days, cfg.refresh_window_days
        )));
    }
    let every = i32::try_from(cfg.refresh_every_minutes.max(1)).unwrap_or(i32::MAX);
    let compress = i32::try_from(cfg.compress_after_days).unwrap_or(i32::MAX);
    let retention = i32::try_from(cfg.retention_days).unwrap_or(i32::MAX);
    let installed: Vec<Job> = client
        .query(INSTALLED, &[&window, &every, &compress, &retention])
        .await
        .map_err(Error::query("read the installed TimescaleDB policies"))?
        .iter()
        .map(|r| Job {
            rel: r.get(0),
            kind: r.get(1),
            id: r.get(2),
            current: r.get(3),
        })
        .collect();
    // (relation, kind, wanted): what the configuration asks for.
    let mut wanted: Vec<(&str, &str, bool)> = Vec::new();
    for view in AGGREGATES {
        wanted.push((view, REFRESH, true));
    }
    for (table, _, _) in HYPERTABLES {
        wanted.push((table, COMPRESSION, cfg.compress_after_days != 0));
        wanted.push((table, RETENTION, cfg.retention_days != 0));
    }
    let stale: Vec<_> = wanted
        .into_iter()
        .filter(|&(rel, kind, on)| {
            let jobs: Vec<&Job> = installed
                .iter()
                .filter(|j| j.rel == rel && j.kind == kind)
                .collect();
            if on {
                !(jobs.len() == 1 && jobs[0].current)
            } else {
                !jobs.is_empty()
            }
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }

    let tx = client
        .transaction()
        .await
        .map_err(Error::query("begin the policy change"))?;
    for &(rel, kind, on) in &stale {
        for job in installed.iter().filter(|j| j.rel == rel && j.kind == kind) {
            tx.execute("SELECT delete_job($1)", &[&job.id])
                .await
                .map_err(Error::query("remove an outdated policy"))?;
        }
        if !on {
            tracing::info!(relation = rel, policy = kind, "removed a policy");
            continue;
        }
        match kind {
            REFRESH => add_refresh(&tx, rel, window, every).await?,
            COMPRESSION => add_compression(&tx, rel, compress).await?,
            _ => add_retention(&tx, rel, retention).await?,
        }
        tracing::info!(
            relation = rel,
            policy = kind,
            "set a policy from the configuration"
        );
    }
    tx.commit()
        .await
        .map_err(Error::query("commit the policy change"))
}

async fn add_refresh(
    tx: &Transaction<'_>,
    view: &str,
    window: i32,
    every: i32,
) -> Result<(), Error> {
    tx.execute(
        "SELECT add_continuous_aggregate_policy($1::text::regclass,
            start_offset => make_interval(days => $2),
            end_offset => NULL,
            schedule_interval => make_interval(mins => $3))",
        &[&view, &window, &every],
    )
    .await
    .map_err(Error::query("add a refresh policy"))?;
    Ok(())
}

/// Enables compression on the hypertable (segmented by channel) if it is not yet, then adds
/// the policy.
async fn add_compression(tx: &Transaction<'_>, table: &str, after: i32) -> Result<(), Error> {
    let (_, segment_by, order_by) = HYPERTABLES
        .into_iter()
        .find(|h| h.0 == table)
        .expect("compression is only asked for the hypertables above");
    let enabled: bool = tx
        .query_one(
            "SELECT compression_enabled FROM timescaledb_information.hypertables
             WHERE hypertable_schema = 'public' AND hypertable_name = $1",
            &[&table],
        )
        .await
        .map_err(Error::query("read whether compression is enabled"))?
        .get(0);
    if !enabled {
        // Identifiers come from the constant table above, not from input.
        let alter = format!(
            "ALTER TABLE {table} SET (timescaledb.compress, \
             timescaledb.compress_segmentby = '{segment_by}', \
             timescaledb.compress_orderby = '{order_by}')"
        );
        tx.batch_execute(&alter)
            .await
            .map_err(Error::query("enable compression"))?;
    }
    tx.execute(
        "SELECT add_compression_policy($1::text::regclass, make_interval(days => $2))",
        &[&table, &after],
    )
    .await
    .map_err(Error::query("add a compression policy"))?;
    Ok(())
}

async fn add_retention(tx: &Transaction<'_>, table: &str, days: i32) -> Result<(), Error> {
    tx.execute(
        "SELECT add_retention_policy($1::text::regclass, make_interval(days => $2))",
        &[&table, &days],
    )
    .await
    .map_err(Error::query("add a retention policy"))?;
    Ok(())
}
