//! Migration runner: applies `sql/NNNN_name[.mode].sql` in order and records each one.
//!
//! A file named `NNNN_name.sql` applies in both storage modes; `NNNN_name.plain.sql` and
//! `NNNN_name.timescale.sql` only in theirs. Each file runs in one transaction, unless its
//! first line is `-- tgpulse:no-transaction` (TimescaleDB refreshes cannot run in one).
//! Re-running applies nothing new. A session advisory lock serialises concurrent runners.

use chrono_tz::Tz;
use deadpool_postgres::{Object, Pool};

use super::{Db, Error, Storage, policies};
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

/// Applies every pending migration for the database's storage mode and (TimescaleDB) its
/// policies from `cfg`, then returns the migrated database handle.
///
/// errors: `Error::Settings` if the database was created with another time zone or mode;
/// `Error::TimescaleMissing` if `--storage timescale` is asked of a server without it;
/// `Error::Migrate` naming the file that failed (that file is rolled back whole).
pub async fn migrate(pool: &Pool, cfg: &StorageConfig) -> Result<Db, Error> {
    let mut client = pool.get().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(Error::query("take the migration lock"))?;
    let result = migrate_locked(&mut client, pool, cfg).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await
        .map_err(Error::query("release the migration lock"));
    let db = result?;
    unlock?;
    Ok(db)
}

async fn migrate_locked(
    client: &mut Object,
    pool: &Pool,
    cfg: &StorageConfig,
) -> Result<Db, Error> {
    client
        .batch_execute(BOOTSTRAP)
        .await
        .map_err(Error::query("create the migration bookkeeping tables"))?;
    let (storage, timezone) = settle_settings(client, cfg).await?;

    let applied: Vec<String> = client
        .query("SELECT file FROM tgpulse_migrations", &[])
        .await
        .map_err(Error::query("read applied migrations"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (file, body) in MIGRATIONS {
        if !applies_to(file, storage) || applied.iter().any(|a| a == file) {
            continue;
        }
        let sql = body.replace("{{timezone}}", &quote_literal(timezone.name()));
        apply_one(client, file, &sql).await?;
        tracing::info!(%file, %storage, "applied migration");
    }
    if storage == Storage::Timescale {
        policies::apply(client, cfg).await?;
    }
    Ok(Db {
        pool: pool.clone(),
        storage,
        timezone,
    })
}

async fn apply_one(client: &mut Object, file: &str, sql: &str) -> Result<(), Error> {
    let err = |source| Error::Migrate {
        file: file.to_owned(),
        source,
    };
    let checksum = format!("{:016x}", fnv1a(sql.as_bytes()));
    if sql.starts_with("-- tgpulse:no-transaction") {
        client.batch_execute(sql).await.map_err(err)?;
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
    tx.execute(
        "INSERT INTO tgpulse_migrations (file, checksum) VALUES ($1, $2)",
        &[&file, &checksum],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)
}

/// Reads the recorded storage mode and time zone, or decides and records them on first run.
async fn settle_settings(client: &Object, cfg: &StorageConfig) -> Result<(Storage, Tz), Error> {
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
        StorageMode::Timescale => {
            if enable_timescale(client).await? {
                Storage::Timescale
            } else {
                return Err(Error::TimescaleMissing);
            }
        }
        StorageMode::Auto => {
            if enable_timescale(client).await? {
                Storage::Timescale
            } else {
                Storage::Plain
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

/// True when the community TimescaleDB extension is (made) available in this database.
///
/// Checks `pg_available_extensions`, creates the extension, and requires
/// `timescaledb.license = 'timescale'` (the Apache-only build refuses continuous aggregates).
pub(crate) async fn enable_timescale(client: &Object) -> Result<bool, Error> {
    let available = client
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'",
            &[],
        )
        .await
        .map_err(Error::query("look up available extensions"))?
        .is_some();
    if !available {
        return Ok(false);
    }
    if let Err(e) = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        .await
    {
        // Typically: not in shared_preload_libraries.
        tracing::warn!(error = %e, "timescaledb is installed but cannot be created; using plain PostgreSQL");
        return Ok(false);
    }
    let license: String = client
        .query_one("SELECT current_setting('timescaledb.license')", &[])
        .await
        .map_err(Error::query("read timescaledb.license"))?
        .get(0);
    if license != "timescale" {
        tracing::warn!(%license, "timescaledb is the Apache-only build; using plain PostgreSQL");
        return Ok(false);
    }
    Ok(true)
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
