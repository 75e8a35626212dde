//! Migration runner: applies `sql/NNNN_name[.mode].sql` in order and records each one.
//!
//! A file named `NNNN_name.sql` applies in both storage modes; `NNNN_name.plain.sql` and
//! `NNNN_name.timescale.sql` only in theirs. Each file runs in one transaction, unless its
//! first line is `-- tgpulse:no-transaction` (TimescaleDB refreshes cannot run in one).
//! Re-running applies nothing new. A session advisory lock serialises concurrent runners.
//!
//! Applied files are immutable: each is recorded with a checksum, and a start whose file no
//! longer matches the record is refused with `Error::MigrationChanged`.

use chrono_tz::Tz;
use deadpool_postgres::{Object, Pool};

use super::detect::{self, Timescale};
use super::{Db, Error, Storage, analyst, policies};
use crate::config::{StorageConfig, StorageMode};

/// The migration files, embedded at build time, in application order.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core.sql", include_str!("../../sql/0001_core.sql")),
    (
        "0002_daily.plain.sql",
        include_str!("../../sql/0002_daily.plain.sql"),
    ),
    (
        "0002_daily.timescale.sql",
        include_str!("../../sql/0002_daily.timescale.sql"),
    ),
    (
        "0003_analyst_role.sql",
        include_str!("../../sql/0003_analyst_role.sql"),
    ),
    (
        "0004_collect.sql",
        include_str!("../../sql/0004_collect.sql"),
    ),
    ("0005_bot.sql", include_str!("../../sql/0005_bot.sql")),
    (
        "0006_export_quota.sql",
        include_str!("../../sql/0006_export_quota.sql"),
    ),
    (
        "0007_analyst_hardening.sql",
        include_str!("../../sql/0007_analyst_hardening.sql"),
    ),
    ("0008_alerts.sql", include_str!("../../sql/0008_alerts.sql")),
    (
        "0009_reports.sql",
        include_str!("../../sql/0009_reports.sql"),
    ),
    (
        "0010_bot_language.sql",
        include_str!("../../sql/0010_bot_language.sql"),
    ),
    (
        "0011_export_lake.sql",
        include_str!("../../sql/0011_export_lake.sql"),
    ),
    (
        "0012_post_analytics.sql",
        include_str!("../../sql/0012_post_analytics.sql"),
    ),
    (
        "0013_daily_merge.plain.sql",
        include_str!("../../sql/0013_daily_merge.plain.sql"),
    ),
];

const LOCK_KEY: i64 = 0x7467_7075_6c73; // "tgpuls"

const BOOTSTRAP: &str = "
CREATE TABLE IF NOT EXISTS tgpulse_migrations (
    file        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tgpulse_settings (
    key    text PRIMARY KEY,
    value  text NOT NULL
);";

/// Applies every pending migration for the database's storage mode and (TimescaleDB) brings
/// its policies in line with `cfg`, then returns the migrated database handle.
///
/// At the first migration with `--storage auto`, a server where TimescaleDB is installed but
/// unusable (not in `shared_preload_libraries`, the Apache-only build) gets plain storage and a
/// warning that says how to enable TimescaleDB.
///
/// errors: `Error::Settings` if the database was created with another time zone or mode;
/// `Error::TimescaleMissing` / `Error::TimescaleUnusable` if `--storage timescale` is asked of
/// a server without a usable TimescaleDB (the latter says how to enable it);
/// `Error::MigrationChanged` naming an applied file that was edited since;
/// `Error::Migrate` naming the file that failed (that file is rolled back whole).
pub async fn migrate(pool: &Pool, cfg: &StorageConfig) -> Result<Db, Error> {
    // What the detection found, kept across the retry below.
    let mut detected = None;
    loop {
        let mut client = pool.get().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(Error::query("take the migration lock"))?;
        let probing = detected.is_none();
        let result = migrate_locked(&mut client, pool, cfg, &mut detected).await;
        let refused = matches!(
            detected,
            Some(Timescale::Unusable { .. } | Timescale::NotPreloaded { .. })
        );
        if result.is_err() && client.is_closed() && probing && refused {
            // The server ended the session while TimescaleDB was being created (a FATAL, which
            // the preload check normally avoids). The lock went with it; start over on a
            // fresh connection with the detection's answer. The closed connection is not
            // recycled into the pool.
            tracing::debug!("the detection of TimescaleDB closed the session; retrying");
            continue;
        }
        let unlock = client
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await
            .map_err(Error::query("release the migration lock"));
        let db = result?;
        unlock?;
        return Ok(db);
    }
}

/// The database handle of an already migrated database, without migrating: for read-only
/// roles such as `tgpulse_analyst`, which may not run DDL (`tgpulse sql`).
///
/// errors: `Error::Settings` if the database was never migrated or a migration is missing
/// (run `tgpulse migrate` as its owner); `Error::Query`/`Error::Pool` if PostgreSQL fails.
pub async fn attach(pool: &Pool) -> Result<Db, Error> {
    let client = pool.get().await?;
    let not_migrated = || {
        Error::Settings(
            "this database is not migrated by this version of tgpulse; run `tgpulse migrate` as its owner first"
                .to_owned(),
        )
    };
    let rows = client
        .query(
            "SELECT key, value FROM tgpulse_settings
             UNION ALL SELECT 'migrations', count(*)::text FROM tgpulse_migrations",
            &[],
        )
        .await
        .map_err(|_| not_migrated())?;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.get::<_, &str>(0) == k)
            .map(|r| r.get::<_, String>(1))
    };
    let (Some(mode), Some(tz), Some(applied)) =
        (get("storage"), get("timezone"), get("migrations"))
    else {
        return Err(not_migrated());
    };
    let storage = if mode == "timescale" {
        Storage::Timescale
    } else {
        Storage::Plain
    };
    let expected = MIGRATIONS
        .iter()
        .filter(|(f, _)| applies_to(f, storage))
        .count();
    if applied.parse::<usize>().ok() != Some(expected) {
        return Err(not_migrated());
    }
    let timezone: Tz = tz
        .parse()
        .map_err(|_| Error::Settings(format!("recorded time zone `{tz}` is unknown")))?;
    Ok(Db {
        pool: pool.clone(),
        storage,
        timezone,
    })
}

async fn migrate_locked(
    client: &mut Object,
    pool: &Pool,
    cfg: &StorageConfig,
    detected: &mut Option<Timescale>,
) -> Result<Db, Error> {
    client
        .batch_execute(BOOTSTRAP)
        .await
        .map_err(Error::query("create the migration bookkeeping tables"))?;
    let (storage, timezone) = settle_settings(client, cfg, detected).await?;

    let applied: Vec<(String, String)> = client
        .query("SELECT file, checksum FROM tgpulse_migrations", &[])
        .await
        .map_err(Error::query("read applied migrations"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut pending = Vec::new();
    for (file, body) in MIGRATIONS {
        if !applies_to(file, storage) {
            continue;
        }
        let sql = body.replace("{{timezone}}", &quote_literal(timezone.name()));
        let current = checksum(&sql);
        match applied.iter().find(|(f, _)| f == file) {
            Some((_, recorded)) if *recorded != current => {
                return Err(Error::MigrationChanged {
                    file: (*file).to_owned(),
                    recorded: recorded.clone(),
                    current,
                });
            }
            Some(_) => {}
            None => pending.push((*file, sql)),
        }
    }
    // Every file is checked before any is applied: a changed file refuses the start whole.
    for (file, sql) in pending {
        apply_one(client, file, &sql).await?;
        tracing::info!(%file, %storage, "applied migration");
    }
    if storage == Storage::Timescale {
        policies::apply(client, cfg).await?;
    }
    analyst::limit_logins(client).await;
    Ok(Db {
        pool: pool.clone(),
        storage,
        timezone,
    })
}

/// Applies one file and records it, in one transaction (unless the file opts out). The bot's
/// relations are revoked from the analyst role in the same transaction (see `analyst`).
async fn apply_one(client: &mut Object, file: &str, sql: &str) -> Result<(), Error> {
    let err = |source| Error::Migrate {
        file: file.to_owned(),
        source,
    };
    let checksum = checksum(sql);
    if sql.starts_with("-- tgpulse:no-transaction") {
        client.batch_execute(sql).await.map_err(err)?;
        client
            .batch_execute(analyst::REVOKE_PRIVATE)
            .await
            .map_err(err)?;
        client
            .execute(
                "INSERT INTO tgpulse_migrations (file, checksum) VALUES ($1, $2)",
                &[&file, &checksum],
            )
            .await
            .map_err(err)?;
        return Ok(());
    }
    let tx = client.transaction().await.map_err(err)?;
    tx.batch_execute(sql).await.map_err(err)?;
    tx.batch_execute(analyst::REVOKE_PRIVATE)
        .await
        .map_err(err)?;
    tx.execute(
        "INSERT INTO tgpulse_migrations (file, checksum) VALUES ($1, $2)",
        &[&file, &checksum],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)
}

/// Reads the recorded storage mode and time zone, or decides and records them on first run.
///
/// `detected` is the TimescaleDB detection of an earlier attempt, if any; a detection made
/// here is stored into it.
async fn settle_settings(
    client: &Object,
    cfg: &StorageConfig,
    detected: &mut Option<Timescale>,
) -> Result<(Storage, Tz), Error> {
    let rows = client
        .query("SELECT key, value FROM tgpulse_settings", &[])
        .await
        .map_err(Error::query("read tgpulse_settings"))?;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.get::<_, &str>(0) == k)
            .map(|r| r.get::<_, String>(1))
    };
    if let (Some(mode), Some(tz)) = (get("storage"), get("timezone")) {
        let storage = if mode == "timescale" {
            Storage::Timescale
        } else {
            Storage::Plain
        };
        let recorded: Tz = tz
            .parse()
            .map_err(|_| Error::Settings(format!("recorded time zone `{tz}` is unknown")))?;
        if recorded != cfg.timezone {
            return Err(Error::Settings(format!(
                "this database buckets days in {recorded}, but tgpulse was started with --timezone {}; \
                 start it with TGPULSE_TIMEZONE={recorded}, or use a new database for another time zone",
                cfg.timezone
            )));
        }
        let wanted = match cfg.mode {
            StorageMode::Auto => storage,
            StorageMode::Timescale => Storage::Timescale,
            StorageMode::Plain => Storage::Plain,
        };
        if wanted != storage {
            return Err(Error::Settings(format!(
                "this database was created with --storage {storage}; it cannot switch to {wanted}"
            )));
        }
        return Ok((storage, recorded));
    }

    let storage = match cfg.mode {
        StorageMode::Plain => Storage::Plain,
        StorageMode::Timescale | StorageMode::Auto => {
            let found = match detected.clone() {
                Some(found) => found,
                None => {
                    let found = detect::timescale(client).await?;
                    *detected = Some(found.clone());
                    found
                }
            };
            match (found, cfg.mode) {
                (Timescale::Ready, _) => Storage::Timescale,
                (Timescale::Missing, StorageMode::Timescale) => {
                    return Err(Error::TimescaleMissing);
                }
                (Timescale::Missing, _) => Storage::Plain,
                (unusable, StorageMode::Timescale) => {
                    return Err(Error::TimescaleUnusable {
                        reason: unusable.explain().unwrap_or_default(),
                    });
                }
                (unusable, _) => {
                    let why = unusable.explain().unwrap_or_default();
                    tracing::warn!("using plain PostgreSQL storage: {why}");
                    Storage::Plain
                }
            }
        }
    };
    client
        .execute(
            "INSERT INTO tgpulse_settings (key, value) VALUES ('storage', $1), ('timezone', $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&storage.to_string(), &cfg.timezone.name()],
        )
        .await
        .map_err(Error::query("record storage settings"))?;
    tracing::info!(%storage, timezone = %cfg.timezone, "storage mode chosen");
    Ok((storage, cfg.timezone))
}

fn applies_to(file: &str, storage: Storage) -> bool {
    if file.ends_with(".plain.sql") {
        storage == Storage::Plain
    } else if file.ends_with(".timescale.sql") {
        storage == Storage::Timescale
    } else {
        true
    }
}

/// SQL string literal for a value we validated ourselves (a time-zone name).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The recorded checksum of a migration's SQL (after `{{timezone}}` is filled in): FNV-1a 64,
/// 16 lower-case hex digits.
fn checksum(sql: &str) -> String {
    format!("{:016x}", fnv1a(sql.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_suffixes_select_files() {
        assert!(applies_to("0001_core.sql", Storage::Plain));
        assert!(applies_to("0002_daily.plain.sql", Storage::Plain));
        assert!(!applies_to("0002_daily.plain.sql", Storage::Timescale));
        assert!(applies_to("0002_daily.timescale.sql", Storage::Timescale));
    }

    #[test]
    fn every_sql_file_is_listed_in_order() {
        let files = crate::test_support::sql_files("sql");
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("Europe/Moscow"), "'Europe/Moscow'");
        assert_eq!(quote_literal("a'b"), "'a''b'");
    }
}
