//! The watermark of a named incremental export (`export_watermarks`).
//!
//! A run exports the rows whose `stored_at` lies in `[previous watermark, bound)`. `stored_at`
//! is the storing transaction's start time (`now()`), so a transaction still running holds
//! rows that will carry its start time once they become visible. The bound is therefore the
//! earlier of the clock and the start of the oldest transaction open in this database: every
//! row stored before the bound is already committed (or never will be), and a row committed
//! later carries a `stored_at` at or after the bound, for the next run. Late samples (an old
//! `observed_at` stored today) are taken by the run after they were stored.
//!
//! A session advisory lock per name keeps two runs of one export apart. The watermark is
//! written only after the run's files are complete; a run that fails leaves it where it was,
//! so the next run exports the same rows again.

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;

use super::Error;
use crate::db::Db;

/// An incremental run holding its export's lock.
pub(crate) struct Watermark {
    client: Option<Object>,
    name: String,
    relation: &'static str,
    /// Rows stored at or after this instant are new; `None` for the first run.
    pub(crate) from: Option<DateTime<Utc>>,
    /// Rows stored before this instant are exported by this run.
    pub(crate) to: DateTime<Utc>,
    /// Runs that wrote files before this one.
    pub(crate) runs: i64,
}

fn db(step: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |source| Error::Db { step, source }
}

const LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('tgpulse.export:' || $1, 0))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended('tgpulse.export:' || $1, 0))";

/// Checks an incremental export name: 1 to 64 of `[A-Za-z0-9_.-]`, not starting with `.`.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_owned()))
    }
}

impl Watermark {
    /// Starts a run of export `name` over `relation`: takes its lock, reads its watermark and
    /// fixes this run's bound.
    ///
    /// errors: `Error::BadName`; `Error::Busy` if another run holds the lock;
    /// `Error::OtherRelation` if the name exports another relation;
    /// `Error::CannotSeeWriters` if the role cannot see other sessions' transactions;
    /// `Error::Db`/`Error::Pool` if PostgreSQL fails.
    pub(crate) async fn begin(db: &Db, name: &str, relation: &'static str) -> Result<Self, Error> {
        check_name(name)?;
        let client = db.pool.get().await?;
        let locked: bool = client
            .query_one(LOCK, &[&name])
            .await
            .map_err(self::db("lock the export's watermark"))?
            .get(0);
        if !locked {
            return Err(Error::Busy(name.to_owned()));
        }
        let mut w = Self {
            client: Some(client),
            name: name.to_owned(),
            relation,
            from: None,
            to: Utc::now(),
            runs: 0,
        };
        let c = w.client.as_ref().expect("held");
        if let Some(row) = c
            .query_opt(
                "SELECT relation, stored_until, runs FROM export_watermarks WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(self::db("read the export's watermark"))?
        {
            let was: String = row.get(0);
            if was != relation {
                return Err(Error::OtherRelation {
                    name: name.to_owned(),
                    was,
                    asked: relation,
                });
            }
            w.from = Some(row.get(1));
            w.runs = row.get(2);
        }
        // Sessions another role cannot see show NULL in every column but a few (their
        // backend_type and state too), so they are counted as hidden, not filtered out.
        let row = c
            .query_one(
                "SELECT least(clock_timestamp(), min(xact_start)),
                        count(*) FILTER (WHERE state IS NULL OR state = 'disabled')
                 FROM pg_stat_activity
                 WHERE pid <> pg_backend_pid() AND datname = current_database()
                   AND (backend_type IS NULL
                        OR backend_type IN ('client backend', 'background worker'))",
                &[],
            )
            .await
            .map_err(self::db("find the oldest open transaction"))?;
        let hidden: i64 = row.get(1);
        if hidden > 0 {
            return Err(Error::CannotSeeWriters);
        }
        w.to = row.get(0);
        // A clock that went back must not move the watermark back.
        if let Some(from) = w.from
            && w.to < from
        {
            w.to = from;
        }
        Ok(w)
    }

    /// Records a completed run: the watermark moves to this run's bound, and the run counts
    /// when it wrote files. Then releases the lock.
    ///
    /// errors: `Error::Db` if the update fails (the watermark stays; the next run exports
    /// this run's rows again).
    pub(crate) async fn commit(mut self, rows: u64, wrote: bool) -> Result<(), Error> {
        let c = self.client.as_ref().expect("held until commit");
        let runs = self.runs + i64::from(wrote);
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        c.execute(
            "INSERT INTO export_watermarks (name, relation, stored_until, runs, last_rows)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET stored_until = excluded.stored_until,
                 runs = excluded.runs, last_rows = excluded.last_rows, updated_at = now()",
            &[&self.name, &self.relation, &self.to, &runs, &rows],
        )
        .await
        .map_err(self::db("advance the export's watermark"))?;
        let _ = c.query_one(UNLOCK, &[&self.name]).await;
        self.client = None;
        Ok(())
    }

    /// Ends a run that did not complete: the watermark stays, the lock is released.
    pub(crate) async fn release(mut self) {
        if let Some(c) = &self.client {
            let _ = c.query_one(UNLOCK, &[&self.name]).await;
        }
        self.client = None;
    }
}

impl Drop for Watermark {
    /// A run dropped half-way closes its connection instead of returning it to the pool, so
    /// that the session's lock goes with it.
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            drop(Object::take(c));
        }
    }
}
