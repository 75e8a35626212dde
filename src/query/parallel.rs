//! Parallel scans of a large table: its blocks cut into ranges, each read through its own
//! connection with a TID range scan (`ctid >= '(lo,0)' AND ctid < '(hi,0)'`), all in one
//! snapshot, as DuckDB's postgres scanner reads a table.
//!
//! The snapshot: a first connection opens a `REPEATABLE READ` transaction and exports its
//! snapshot (`pg_export_snapshot()`); every range's connection starts its own transaction
//! with `SET TRANSACTION SNAPSHOT`, so the ranges together see exactly the rows one query
//! would have seen, whatever is written meanwhile. The first connection's transaction stays
//! open until every range has ended.

use std::sync::{Arc, Mutex};

use datafusion::common::{DataFusionError, Result};
use deadpool_postgres::{Object, Pool};

use super::pg_table::external;

/// Tables smaller than this (in 8 KiB blocks, 64 MiB) are read by one query: more
/// connections cost more than they save.
pub(super) const MIN_BLOCKS: i64 = 8192;

/// The exported snapshot and the connection whose transaction keeps it valid.
#[derive(Debug)]
pub(super) struct Snapshot {
    id: String,
    holder: Mutex<Option<Object>>,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let Some(c) = self.holder.lock().ok().and_then(|mut h| h.take()) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            // Ends the read-only transaction, then the connection goes back to the pool.
            Ok(rt) => {
                rt.spawn(async move {
                    if c.batch_execute("COMMIT").await.is_err() {
                        drop(Object::take(c));
                    }
                });
            }
            Err(_) => drop(Object::take(c)),
        }
    }
}

/// A parallel scan of one table: its size and snapshot.
#[derive(Debug)]
pub(super) struct Plan {
    snapshot: Arc<Snapshot>,
    blocks: i64,
    n: usize,
}

/// One range of blocks, `[lo, hi)` (`hi` open for the last range), in the scan's snapshot.
#[derive(Debug, Clone)]
pub(super) struct Range {
    /// First block, and the block after the last (`None`: to the end of the table).
    pub(super) blocks: (i64, Option<i64>),
    snapshot: Arc<Snapshot>,
}

/// Plans a scan of `relation` in `n` ranges, or `None` when one query is better: a small
/// table, or a TimescaleDB hypertable (its parent table holds no rows).
///
/// errors: a failed connection or query, as `DataFusionError::External`.
pub(super) async fn plan(pool: &Pool, relation: &str, n: usize) -> Result<Option<Plan>> {
    let c = pool.get().await.map_err(external)?;
    let blocks: i64 = c
        .query_one(
            "SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::bigint",
            &[&relation],
        )
        .await
        .map_err(external)?
        .get(0);
    if blocks < MIN_BLOCKS || n < 2 {
        return Ok(None);
    }
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(external)?;
    let id: String = match c.query_one("SELECT pg_export_snapshot()", &[]).await {
        Ok(row) => row.get(0),
        Err(e) => {
            drop(Object::take(c));
            return Err(external(e));
        }
    };
    // A server-made token (`00000003-0000001B-1`); SET TRANSACTION SNAPSHOT takes no
    // parameter, so it is checked before it goes into the statement.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        drop(Object::take(c));
        return Err(DataFusionError::Execution(format!(
            "unexpected snapshot identifier {id:?}"
        )));
    }
    Ok(Some(Plan {
        snapshot: Arc::new(Snapshot {
            id,
            holder: Mutex::new(Some(c)),
        }),
        blocks,
        n,
    }))
}

impl Plan {
    /// The ranges, of equal block counts; the last one open-ended.
    pub(super) fn ranges(&self) -> Vec<Range> {
        let n = self.n as i64;
        let step = (self.blocks + n - 1) / n;
        (0..n)
            .map(|i| Range {
                blocks: (i * step, (i + 1 < n).then(|| (i + 1) * step)),
                snapshot: Arc::clone(&self.snapshot),
            })
            .collect()
    }
}

/// `sql` (a `SELECT … FROM t [WHERE …]` of [`super::PgTable`] with `bound` parameters)
/// restricted to a block range, and the range's bounds: the values of the parameters it adds.
pub(super) fn restrict(
    sql: &str,
    bound: usize,
    (lo, hi): (i64, Option<i64>),
) -> (String, Vec<i64>) {
    let mut values = vec![lo];
    let mut cond = format!("ctid >= format('(%s,0)', ${}::int8)::tid", bound + 1);
    if let Some(hi) = hi {
        values.push(hi);
        cond.push_str(&format!(
            " AND ctid < format('(%s,0)', ${}::int8)::tid",
            bound + 2
        ));
    }
    let sql = if sql.contains(" WHERE ") {
        format!("{sql} AND {cond}")
    } else {
        format!("{sql} WHERE {cond}")
    };
    (sql, values)
}

/// A scan's connection: plain, or inside a range's transaction, which it ends after the
/// last row ([`Conn::done`]). Dropped before that (the stream dropped half-way), the
/// connection is closed rather than returned to the pool inside a transaction.
#[derive(Debug)]
pub(super) struct Conn {
    client: Option<Object>,
    in_transaction: bool,
    snapshot: Option<Arc<Snapshot>>,
}

impl Conn {
    /// A connection for a one-query scan.
    pub(super) fn plain(client: Object) -> Self {
        Self {
            client: Some(client),
            in_transaction: false,
            snapshot: None,
        }
    }

    /// A connection reading `range`: a read-only transaction in the range's snapshot.
    ///
    /// errors: the server refused the transaction or the snapshot.
    pub(super) async fn enter(client: Object, range: &Range) -> Result<Self> {
        let id = &range.snapshot.id;
        let conn = Self {
            client: Some(client),
            in_transaction: true,
            snapshot: Some(Arc::clone(&range.snapshot)),
        };
        conn.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
        ))
        .await
        .map_err(external)?;
        Ok(conn)
    }

    /// After the last row: ends the range's transaction and lets the snapshot go.
    ///
    /// errors: the `COMMIT` failed.
    pub(super) async fn done(&mut self) -> Result<()> {
        if self.in_transaction {
            self.batch_execute("COMMIT").await.map_err(external)?;
            self.in_transaction = false;
        }
        self.snapshot = None;
        Ok(())
    }
}

impl std::ops::Deref for Conn {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.client.as_ref().expect("present until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take()
            && self.in_transaction
        {
            drop(Object::take(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_adds_its_bounds_as_parameters_to_the_scan() {
        let (sql, values) = restrict(
            "SELECT \"a\" FROM \"t\" WHERE \"a\" = $1",
            1,
            (100, Some(200)),
        );
        assert_eq!(
            sql,
            "SELECT \"a\" FROM \"t\" WHERE \"a\" = $1 AND ctid >= format('(%s,0)', $2::int8)::tid AND ctid < format('(%s,0)', $3::int8)::tid"
        );
        assert_eq!(values, vec![100, 200]);
        let (sql, values) = restrict("SELECT \"a\" FROM \"t\"", 0, (300, None));
        assert_eq!(
            sql,
            "SELECT \"a\" FROM \"t\" WHERE ctid >= format('(%s,0)', $1::int8)::tid"
        );
        assert_eq!(values, vec![300]);
    }
}
