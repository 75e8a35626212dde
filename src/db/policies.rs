//! TimescaleDB policies from configuration: continuous-aggregate refresh, compression,
//! retention. Re-applied on every migrate so that configuration changes take effect.

use deadpool_postgres::Object;

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

/// Applies refresh, compression and retention policies.
///
/// Retention never drops raw chunks inside a refresh window: `--retention-days` must exceed
/// `--refresh-window-days`, otherwise this fails with `Error::Settings`.
///
/// errors: `Error::Settings` for an unsafe retention; `Error::Query` if a policy call fails.
pub(super) async fn apply(client: &Object, cfg: &StorageConfig) -> Result<(), Error> {
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
    for view in AGGREGATES {
        client
            .execute(
                "SELECT remove_continuous_aggregate_policy($1::text::regclass, if_exists => true)",
                &[&view],
            )
            .await
            .map_err(Error::query("remove a refresh policy"))?;
        client
            .execute(
                "SELECT add_continuous_aggregate_policy($1::text::regclass,
                    start_offset => make_interval(days => $2),
                    end_offset => NULL,
                    schedule_interval => make_interval(mins => $3))",
                &[&view, &window, &every],
            )
            .await
            .map_err(Error::query("add a refresh policy"))?;
    }
    for (table, segment_by, order_by) in HYPERTABLES {
        client
            .execute(
                "SELECT remove_compression_policy($1::text::regclass, if_exists => true)",
                &[&table],
            )
            .await
            .map_err(Error::query("remove a compression policy"))?;
        client
            .execute(
                "SELECT remove_retention_policy($1::text::regclass, if_exists => true)",
                &[&table],
            )
            .await
            .map_err(Error::query("remove a retention policy"))?;
        if cfg.compress_after_days != 0 {
            // Identifiers come from the constant table above, not from input.
            let alter = format!(
                "ALTER TABLE {table} SET (timescaledb.compress, \
                 timescaledb.compress_segmentby = '{segment_by}', \
                 timescaledb.compress_orderby = '{order_by}')"
            );
            client
                .batch_execute(&alter)
                .await
                .map_err(Error::query("enable compression"))?;
            let after = i32::try_from(cfg.compress_after_days).unwrap_or(i32::MAX);
            client
                .execute(
                    "SELECT add_compression_policy($1::text::regclass, make_interval(days => $2))",
                    &[&table, &after],
                )
                .await
                .map_err(Error::query("add a compression policy"))?;
        }
        if cfg.retention_days != 0 {
            let days = i32::try_from(cfg.retention_days).unwrap_or(i32::MAX);
            client
                .execute(
                    "SELECT add_retention_policy($1::text::regclass, make_interval(days => $2))",
                    &[&table, &days],
                )
                .await
                .map_err(Error::query("add a retention policy"))?;
        }
    }
    Ok(())
}
