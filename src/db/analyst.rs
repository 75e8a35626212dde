//! The read-only group role `tgpulse_analyst` (psql, Grafana): the bot's tables stay private,
//! and analysts' queries are bounded in time.
//!
//! Default privileges grant the role `SELECT` on every new relation of the schema (so new
//! analytics relations need no grant of their own). The bot's relations are the exception,
//! recognised by name: every relation of `public` whose name starts with `bot_`. They are
//! revoked in the transaction of every migration ([`REVOKE_PRIVATE`]), so a bot table added by
//! a later migration is never readable, even for a moment.
//!
//! PostgreSQL does not pass a role's settings on to its members: `ALTER ROLE tgpulse_analyst
//! SET statement_timeout` (sql/0007) binds only sessions that log in as that role. So at every
//! start, each login in the group that has no `statement_timeout` of its own gets the group's
//! ([`limit_logins`]).

use deadpool_postgres::Object;

/// Revokes every privilege of `tgpulse_analyst` on the relations of `public` named `bot_*`.
/// A no-op before the role exists (the first migrations) and when nothing is granted.
pub(super) const REVOKE_PRIVATE: &str = r"
DO $tgpulse$
DECLARE
    rel regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tgpulse_analyst') THEN
        RETURN;
    END IF;
    FOR rel IN
        SELECT c.oid::regclass
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname LIKE 'bot\_%'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM tgpulse_analyst', rel);
    END LOOP;
END
$tgpulse$;";

/// `ALTER ROLE` statements giving each login member of `tgpulse_analyst` (direct or through
/// another role; not superusers, not the migrating user) that has no `statement_timeout` of
/// its own the group's `statement_timeout`. No rows when the group has none.
const MISSING_TIMEOUTS: &str = r"
WITH grp AS (
    SELECT substr(c, length('statement_timeout=') + 1) AS timeout
    FROM pg_roles r, unnest(r.rolconfig) c
    WHERE r.rolname = 'tgpulse_analyst' AND c LIKE 'statement\_timeout=%'
)
SELECT r.rolname::text,
       format('ALTER ROLE %I SET statement_timeout = %L', r.rolname, grp.timeout)
FROM pg_roles r, grp
WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolname <> current_user
  AND r.rolname <> 'tgpulse_analyst'
  AND pg_has_role(r.oid, 'tgpulse_analyst', 'MEMBER')
  AND NOT EXISTS (
      SELECT 1 FROM unnest(r.rolconfig) c WHERE c LIKE 'statement\_timeout=%'
  )";

/// Gives every analyst login without a `statement_timeout` of its own the group's (60 s as
/// set by sql/0007). Never fails the start: a login that cannot be altered (the migrating
/// user lacks `CREATEROLE`) is reported as a warning with the statement to run instead.
pub(super) async fn limit_logins(client: &Object) {
    let rows = match client.query(MISSING_TIMEOUTS, &[]).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look up the analyst logins' statement_timeout");
            return;
        }
    };
    for row in rows {
        let (login, alter): (String, String) = (row.get(0), row.get(1));
        match client.batch_execute(&alter).await {
            Ok(()) => tracing::info!(%login, "gave an analyst login the group's statement_timeout"),
            Err(e) => tracing::warn!(
                %login,
                error = %e,
                "cannot give an analyst login the group's statement_timeout; as a superuser run: {alter}"
            ),
        }
    }
}
