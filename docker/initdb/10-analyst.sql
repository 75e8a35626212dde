-- A login for analysts (psql, Grafana). `tgpulse migrate` grants the group role
-- tgpulse_analyst SELECT on every tgpulse relation; this creates the group early and a
-- login that belongs to it. Change the password before exposing the port.
CREATE ROLE tgpulse_analyst NOLOGIN;
CREATE ROLE analyst LOGIN PASSWORD 'analyst' IN ROLE tgpulse_analyst;
