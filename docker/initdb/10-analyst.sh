#!/usr/bin/env bash
# Runs once, when the TimescaleDB container initialises an empty data volume: creates the
# analysts' group role tgpulse_analyst (NOLOGIN) and the login `analyst` in it, for psql and
# Grafana, with the password from ANALYST_PASSWORD (docker/.env).
#
# `tgpulse migrate` grants tgpulse_analyst SELECT on every tgpulse relation, now and later
# (sql/0003_analyst_role.sql, which tolerates the role existing already), so the login can read
# everything and write nothing.
#
# A volume initialised earlier keeps its password; change it with
#   docker compose -f docker/compose.yml exec timescaledb psql -U postgres -c "ALTER ROLE analyst PASSWORD '…'"
#
# The postgres entrypoint executes this file (or sources it if the executable bit got lost):
# no `set` here, and `exit 1` only to fail the initialisation.

if [ -z "${ANALYST_PASSWORD:-}" ]; then
    echo "10-analyst.sh: ANALYST_PASSWORD is empty; set it in docker/.env" >&2
    exit 1
fi

# The password travels as a psql variable and is quoted by psql (:'name'), never spliced into SQL.
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
     --set=analyst_password="$ANALYST_PASSWORD" <<'SQL'
DO $$
BEGIN
    CREATE ROLE tgpulse_analyst NOLOGIN;
EXCEPTION
    WHEN duplicate_object THEN NULL;
END $$;
CREATE ROLE analyst LOGIN PASSWORD :'analyst_password' IN ROLE tgpulse_analyst;
SQL
