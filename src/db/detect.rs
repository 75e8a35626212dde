//! TimescaleDB detection at the first migration: is the community extension installed,
//! preloaded and usable in this database?
//!
//! The order matters. On a server where the package is installed but
//! `shared_preload_libraries` does not name it yet, `CREATE EXTENSION timescaledb` does not
//! fail with an ERROR but with a FATAL ("must be preloaded"), and the server closes the
//! session. So the preload is checked first, without touching the extension; the creation is
//! only attempted when the library is loaded.

use deadpool_postgres::Object;

use super::Error;

/// What the server offers, as far as tgpulse's TimescaleDB storage is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Timescale {
    /// The community extension exists in this database (created now or before).
    Ready,
    /// Not in `pg_available_extensions`.
    Missing,
    /// Installed, but `shared_preload_libraries` does not name it.
    NotPreloaded {
        /// The server's `config_file` when this user may read it.
        config_file: Option<String>,
    },
    /// Installed, but unusable here: the Apache-only build, or `CREATE EXTENSION` failed.
    Unusable {
        /// What went wrong, lower-case.
        reason: String,
    },
}

impl Timescale {
    /// Why TimescaleDB is not used and how to change that; `None` for `Ready` and `Missing`.
    pub(super) fn explain(&self) -> Option<String> {
        match self {
            Self::Ready | Self::Missing => None,
            Self::NotPreloaded { config_file } => Some(format!(
                "the timescaledb extension is not preloaded on this server (it is installed); to \
                 use TimescaleDB, set shared_preload_libraries = 'timescaledb' in {} (keep any libraries \
                 already listed there), restart PostgreSQL and migrate a new database (the storage of \
                 an existing one is fixed at its first migration); or start tgpulse with \
                 --storage plain to use plain PostgreSQL without this message",
                config_file.as_deref().unwrap_or("postgresql.conf")
            )),
            Self::Unusable { reason } => Some(format!(
                "{reason}; start tgpulse with --storage plain to use plain PostgreSQL without this \
                 message"
            )),
        }
    }
}

/// Checks whether the community TimescaleDB extension can be used in this database and, when
/// it can, creates it (`CREATE EXTENSION IF NOT EXISTS timescaledb`).
///
/// Steps: `pg_available_extensions`; whether the library is preloaded (see
/// [`library_preloaded`]); the creation; `timescaledb.license = 'timescale'` (the Apache-only
/// build has no continuous aggregates). A failed creation is reported as `Unusable`; if the
/// server closed the session in doing so, the caller must not use `client` again
/// (`client.is_closed()`).
///
/// errors: `Error::Query` if one of the lookups fails.
pub(super) async fn timescale(client: &Object) -> Result<Timescale, Error> {
    let available = client
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'",
            &[],
        )
        .await
        .map_err(Error::query("look up available extensions"))?
        .is_some();
    if !available {
        return Ok(Timescale::Missing);
    }
    if !library_preloaded(client).await? {
        let config_file = client
            .query_one("SELECT current_setting('config_file')", &[])
            .await
            .ok()
            .map(|r| r.get::<_, String>(0));
        return Ok(Timescale::NotPreloaded { config_file });
    }
    if let Err(e) = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        .await
    {
        let reason = match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => e.to_string(),
        };
        if reason.contains("must be preloaded") {
            // The preload check could not tell (an unusual library path): the same advice.
            return Ok(Timescale::NotPreloaded { config_file: None });
        }
        return Ok(Timescale::Unusable {
            reason: format!(
                "the timescaledb extension cannot be created in this database: {reason}"
            ),
        });
    }
    let license: String = client
        .query_one("SELECT current_setting('timescaledb.license')", &[])
        .await
        .map_err(Error::query("read timescaledb.license"))?
        .get(0);
    if license != "timescale" {
        return Ok(Timescale::Unusable {
            reason: format!(
                "this server has the Apache-only build of TimescaleDB (timescaledb.license = \
                 '{license}'), which has no continuous aggregates; install the community build"
            ),
        });
    }
    Ok(Timescale::Ready)
}

/// True when the server loaded the TimescaleDB library at start.
///
/// Reads `shared_preload_libraries`. That setting is readable only by superusers and members
/// of `pg_read_all_settings`; for other users the presence of a setting that only the
/// preloaded loader defines (`timescaledb.max_background_workers`) answers instead. Neither
/// read can end the session.
///
/// errors: `Error::Query` if the fallback lookup fails.
async fn library_preloaded(client: &Object) -> Result<bool, Error> {
    match client
        .query_one("SELECT current_setting('shared_preload_libraries')", &[])
        .await
    {
        Ok(row) => Ok(names_timescaledb(&row.get::<_, String>(0))),
        Err(_) => Ok(client
            .query_one(
                "SELECT current_setting('timescaledb.max_background_workers', true) IS NOT NULL",
                &[],
            )
            .await
            .map_err(Error::query("look up the timescaledb loader"))?
            .get(0)),
    }
}

/// Whether a `shared_preload_libraries` value (comma-separated, entries optionally quoted,
/// with a path like `$libdir/timescaledb` or a `.so` suffix) names the timescaledb library.
fn names_timescaledb(list: &str) -> bool {
    list.split(',').any(|entry| {
        let entry = entry.trim().trim_matches('"').trim();
        let file = entry.rsplit('/').next().unwrap_or(entry);
        file.strip_suffix(".so").unwrap_or(file) == "timescaledb"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_lists_are_read_like_the_server_reads_them() {
        assert!(names_timescaledb("timescaledb"));
        assert!(names_timescaledb("pg_stat_statements, timescaledb"));
        assert!(names_timescaledb("\"timescaledb\",auto_explain"));
        assert!(names_timescaledb("$libdir/timescaledb.so"));
        assert!(!names_timescaledb(""));
        assert!(!names_timescaledb("pg_stat_statements"));
        assert!(!names_timescaledb("timescaledb_toolkit"));
    }

    #[test]
    fn the_not_preloaded_explanation_says_how_to_enable_timescaledb() {
        let text = Timescale::NotPreloaded {
            config_file: Some("/etc/postgresql/15/main/postgresql.conf".into()),
        }
        .explain()
        .unwrap();
        assert!(
            text.contains("shared_preload_libraries = 'timescaledb'"),
            "{text}"
        );
        assert!(
            text.contains("/etc/postgresql/15/main/postgresql.conf"),
            "{text}"
        );
        assert!(text.contains("restart"), "{text}");
        assert!(text.contains("--storage plain"), "{text}");
        assert_eq!(Timescale::Ready.explain(), None);
    }
}
