-- TimescaleDB: raw samples are hypertables and the daily relations are real-time
-- continuous aggregates. {{timezone}} is replaced by the validated reporting time zone as
-- a string literal (DDL takes no bind parameters; a continuous aggregate needs a constant).
-- Created WITH NO DATA so this file runs inside a transaction; tgpulse refreshes afterwards.

SELECT create_hypertable('member_samples', by_range('observed_at', INTERVAL '30 days'));
SELECT create_hypertable('post_samples', by_range('published_at', INTERVAL '30 days'));

CREATE MATERIALIZED VIEW members_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT channel_id,
       time_bucket(INTERVAL '1 day', observed_at, {{timezone}}) AS bucket,
       last(members, observed_at) AS members,
       min(members) AS members_min,
       max(members) AS members_max,
       count(*) AS samples,
       max(observed_at) AS last_observed_at
FROM member_samples
GROUP BY channel_id, bucket
WITH NO DATA;

CREATE MATERIALIZED VIEW post_reach
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT channel_id,
       post_id,
       time_bucket(INTERVAL '1 day', published_at, {{timezone}}) AS bucket,
       max(views) AS views,
       max(forwards) AS forwards,
       max(replies) AS replies,
       max(reactions) AS reactions,
       count(*) AS samples,
       max(observed_at) AS last_observed_at
FROM post_samples
GROUP BY channel_id, post_id, bucket
WITH NO DATA;

CREATE MATERIALIZED VIEW views_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT channel_id,
       time_bucket(INTERVAL '1 day', bucket, {{timezone}}) AS bucket,
       count(*) AS posts,
       sum(views)::bigint AS views,
       sum(forwards)::bigint AS forwards,
       sum(replies)::bigint AS replies,
       sum(reactions)::bigint AS reactions,
       max(last_observed_at) AS last_observed_at
FROM post_reach
GROUP BY channel_id, time_bucket(INTERVAL '1 day', bucket, {{timezone}})
WITH NO DATA;

-- Same no-op entry point as the plain path, so callers need not branch.
CREATE FUNCTION tgpulse_refresh_daily() RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
