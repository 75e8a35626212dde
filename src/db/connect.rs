//! Connecting: URL resolution, default database creation, pool construction.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::Error;
use crate::config::{DEFAULT_DATABASE, DEFAULT_SERVER_URL, DbConfig, PoolOptions};

/// Where tgpulse connects: an explicit URL, or the default local server with database `tgpulse`.
#[derive(Debug, Clone)]
pub struct DatabaseTarget {
    config: tokio_postgres::Config,
    create_if_missing: bool,
}

impl DatabaseTarget {
    /// Resolves the configured URL; without one, the default server and database `tgpulse`,
    /// which is created if missing.
    ///
    /// errors: `Error::InvalidUrl` if the URL does not parse.
    pub fn from_config(cfg: &DbConfig) -> Result<Self, Error> {
        match &cfg.url {
            Some(url) => Ok(Self {
                config: url.expose().parse().map_err(Error::InvalidUrl)?,
                create_if_missing: false,
            }),
            None => {
                let mut config: tokio_postgres::Config =
                    DEFAULT_SERVER_URL.parse().map_err(Error::InvalidUrl)?;
                config.dbname(DEFAULT_DATABASE);
                Ok(Self {
                    config,
                    create_if_missing: true,
                })
            }
        }
    }

    /// A target for an explicit URL (tests, tools).
    ///
    /// errors: `Error::InvalidUrl` if the URL does not parse.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Ok(Self {
            config: url.parse().map_err(Error::InvalidUrl)?,
            create_if_missing: false,
        })
    }

    /// `host:port/dbname`, safe to print (no credentials).
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or("postgres");
        format!("{host}:{port}/{db}")
    }

    fn connect_error(&self, e: &tokio_postgres::Error) -> Error {
        let mut reason = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            src = s.source();
        }
        Error::ConnectServer {
            target: self.describe(),
            reason,
        }
    }

    async fn ensure_database(&self) -> Result<(), Error> {
        let name = self
            .config
            .get_dbname()
            .unwrap_or(DEFAULT_DATABASE)
            .to_owned();
        let mut admin = self.config.clone();
        admin.dbname("postgres");
        admin.connect_timeout(Duration::from_secs(5));
        let (client, conn) = admin
            .connect(NoTls)
            .await
            .map_err(|e| self.connect_error(&e))?;
        let driver = tokio::spawn(conn);
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(Error::query("look up the database"))?
            .is_some();
        if !exists {
            // Identifiers cannot be bound; the name is ours (a constant), quoted anyway.
            let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
            if let Err(source) = client.batch_execute(&sql).await {
                // Lost a race with a concurrent start: fine if it exists now.
                let code = source.code().cloned();
                if code != Some(tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                    return Err(Error::CreateDatabase { name, source });
                }
            } else {
                tracing::info!(database = %name, "created database");
            }
        }
        drop(client);
        let _ = driver.await;
        Ok(())
    }
}

/// Opens a pool of `pool_size` connections with the default timeouts
/// ([`PoolOptions::sized`]) and checks that the server answers.
///
/// errors: as [`connect_with`].
pub async fn connect(target: &DatabaseTarget, pool_size: usize) -> Result<Pool, Error> {
    connect_with(target, PoolOptions::sized(pool_size)).await
}

/// Timeout of establishing one connection (also the pool's create timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of the pool's check of a returned connection.
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a pool to the target and checks that the server answers. Waiting for a free
/// connection, making one and recycling one are bounded in time, so a hung server gives
/// errors instead of hanging callers. With `options.statement_timeout`, every session of the
/// pool runs under that `statement_timeout` (interactive queries).
///
/// errors: `Error::ConnectServer` with a hint on how to start or configure a server;
/// `Error::CreateDatabase` if the default database cannot be created.
pub async fn connect_with(target: &DatabaseTarget, options: PoolOptions) -> Result<Pool, Error> {
    if target.create_if_missing {
        target.ensure_database().await?;
    }
    let mut config = target.config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    if config.get_application_name().is_none() {
        config.application_name("tgpulse");
    }
    if let Some(t) = options.statement_timeout {
        let existing = config.get_options().unwrap_or_default().to_owned();
        config.options(format!("{existing} -c statement_timeout={}", t.as_millis()).trim());
    }
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.size.max(1))
        .wait_timeout(Some(options.wait))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(RECYCLE_TIMEOUT))
        .runtime(Runtime::Tokio1)
        .build()
        .expect("a pool with a runtime always builds");
    match pool.get().await {
        Ok(_) => Ok(pool),
        Err(deadpool_postgres::PoolError::Backend(e)) => Err(target.connect_error(&e)),
        Err(e) => Err(Error::Pool(e)),
    }
}
