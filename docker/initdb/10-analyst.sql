-- A read-only role for analysts (psql, Grafana). tgpulse creates the relations on first run;
-- default privileges make them readable by `analyst` as they appear.
CREATE ROLE analyst LOGIN PASSWORD 'analyst';
GRANT CONNECT ON DATABASE tgpulse TO analyst;
GRANT USAGE ON SCHEMA public TO analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO analyst;
