-- purpose: view post_reach_hours: one row per post with its reach at 12, 24 and 48 h after
--          publication. Reach at h is the post's views at publication + h, linearly
--          interpolated between the last sample at or before that mark and the first sample
--          at or after it; NULL (n/a) without a sample on each side (a sample exactly at the
--          mark is taken as is). Never extrapolated, never 0 for missing. Registered in every
--          session as a view; filters on channel_id and published_at reach PostgreSQL.
-- parameters: none (a view).
-- output:
--   channel_id         BIGINT              bare Telegram channel id
--   post_id            BIGINT              message id inside the channel
--   published_at       TIMESTAMP(us, UTC)  publication time
--   samples            BIGINT              samples of the post that carry views
--   first_observed_at  TIMESTAMP(us, UTC)  first of them
--   last_observed_at   TIMESTAMP(us, UTC)  last of them
--   views              BIGINT              post reach: highest views seen
--   forwards           BIGINT              highest forwards seen (NULL if never reported)
--   replies            BIGINT              highest replies seen
--   reactions          BIGINT              highest reactions seen
--   reach_12h          DOUBLE              views at publication + 12 h (NULL: n/a)
--   reach_12h_from     TIMESTAMP(us, UTC)  observation time of the sample before the mark
--   reach_12h_to       TIMESTAMP(us, UTC)  observation time of the sample after the mark
--   reach_24h, reach_24h_from, reach_24h_to, reach_48h, reach_48h_from, reach_48h_to: the same at 24 and 48 h
WITH s AS (
    SELECT channel_id, post_id, published_at, observed_at,
           to_unixtime(published_at) AS pub_s,
           to_unixtime(observed_at) AS obs_s,
           CAST(views AS DOUBLE) AS v,
           views, forwards, replies, reactions
    FROM post_samples
    WHERE views IS NOT NULL
), around AS (
    SELECT channel_id, post_id, published_at, pub_s,
           count(*) AS samples,
           min(observed_at) AS first_observed_at,
           max(observed_at) AS last_observed_at,
           max(views) AS views,
           max(forwards) AS forwards,
           max(replies) AS replies,
           max(reactions) AS reactions,
           max(obs_s) FILTER (WHERE obs_s <= pub_s + 43200) AS t0_12,
           last_value(v ORDER BY obs_s) FILTER (WHERE obs_s <= pub_s + 43200) AS v0_12,
           max(observed_at) FILTER (WHERE obs_s <= pub_s + 43200) AS at0_12,
           min(obs_s) FILTER (WHERE obs_s >= pub_s + 43200) AS t1_12,
           first_value(v ORDER BY obs_s) FILTER (WHERE obs_s >= pub_s + 43200) AS v1_12,
           min(observed_at) FILTER (WHERE obs_s >= pub_s + 43200) AS at1_12,
           max(obs_s) FILTER (WHERE obs_s <= pub_s + 86400) AS t0_24,
           last_value(v ORDER BY obs_s) FILTER (WHERE obs_s <= pub_s + 86400) AS v0_24,
           max(observed_at) FILTER (WHERE obs_s <= pub_s + 86400) AS at0_24,
           min(obs_s) FILTER (WHERE obs_s >= pub_s + 86400) AS t1_24,
           first_value(v ORDER BY obs_s) FILTER (WHERE obs_s >= pub_s + 86400) AS v1_24,
           min(observed_at) FILTER (WHERE obs_s >= pub_s + 86400) AS at1_24,
           max(obs_s) FILTER (WHERE obs_s <= pub_s + 172800) AS t0_48,
           last_value(v ORDER BY obs_s) FILTER (WHERE obs_s <= pub_s + 172800) AS v0_48,
           max(observed_at) FILTER (WHERE obs_s <= pub_s + 172800) AS at0_48,
           min(obs_s) FILTER (WHERE obs_s >= pub_s + 172800) AS t1_48,
           first_value(v ORDER BY obs_s) FILTER (WHERE obs_s >= pub_s + 172800) AS v1_48,
           min(observed_at) FILTER (WHERE obs_s >= pub_s + 172800) AS at1_48
    FROM s
    GROUP BY channel_id, post_id, published_at, pub_s
)
SELECT channel_id, post_id, published_at, samples, first_observed_at, last_observed_at,
       views, forwards, replies, reactions,
       CASE WHEN t1_12 = pub_s + 43200 THEN v1_12
            WHEN t0_12 IS NOT NULL AND t1_12 IS NOT NULL
            THEN v0_12 + (v1_12 - v0_12) * CAST(pub_s + 43200 - t0_12 AS DOUBLE) / CAST(t1_12 - t0_12 AS DOUBLE)
       END AS reach_12h,
       CASE WHEN t1_12 = pub_s + 43200 THEN at1_12 WHEN t1_12 IS NOT NULL THEN at0_12 END AS reach_12h_from,
       CASE WHEN t1_12 = pub_s + 43200 OR t0_12 IS NOT NULL THEN at1_12 END AS reach_12h_to,
       CASE WHEN t1_24 = pub_s + 86400 THEN v1_24
            WHEN t0_24 IS NOT NULL AND t1_24 IS NOT NULL
            THEN v0_24 + (v1_24 - v0_24) * CAST(pub_s + 86400 - t0_24 AS DOUBLE) / CAST(t1_24 - t0_24 AS DOUBLE)
       END AS reach_24h,
       CASE WHEN t1_24 = pub_s + 86400 THEN at1_24 WHEN t1_24 IS NOT NULL THEN at0_24 END AS reach_24h_from,
       CASE WHEN t1_24 = pub_s + 86400 OR t0_24 IS NOT NULL THEN at1_24 END AS reach_24h_to,
       CASE WHEN t1_48 = pub_s + 172800 THEN v1_48
            WHEN t0_48 IS NOT NULL AND t1_48 IS NOT NULL
            THEN v0_48 + (v1_48 - v0_48) * CAST(pub_s + 172800 - t0_48 AS DOUBLE) / CAST(t1_48 - t0_48 AS DOUBLE)
       END AS reach_48h,
       CASE WHEN t1_48 = pub_s + 172800 THEN at1_48 WHEN t1_48 IS NOT NULL THEN at0_48 END AS reach_48h_from,
       CASE WHEN t1_48 = pub_s + 172800 OR t0_48 IS NOT NULL THEN at1_48 END AS reach_48h_to
FROM around
