-- Read-only access for analysts (psql, Grafana): the cluster-wide role tgpulse_analyst gets
-- SELECT on every tgpulse relation in this database, now and in later migrations.
-- Give a person access with:  CREATE ROLE alice LOGIN PASSWORD '…' IN ROLE tgpulse_analyst;
DO $$
BEGIN
    CREATE ROLE tgpulse_analyst NOLOGIN;
EXCEPTION
    -- Another database on this server created it already (possibly at the same moment).
    WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

GRANT USAGE ON SCHEMA public TO tgpulse_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO tgpulse_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO tgpulse_analyst;
