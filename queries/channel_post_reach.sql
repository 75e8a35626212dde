-- purpose: average reach at 12, 24 and 48 h of the posts published in a window of local
--          days, how many posts had each, and ERR at 24 h (our definition: the mean over
--          posts of reach at 24 h / members on the post's local day * 100; posts whose day
--          has no member sample are left out of it).
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (one row):
--   posts        BIGINT  posts published in the window with a view sample
--   avg_12h      DOUBLE  mean reach at 12 h over the posts that have it (NULL: none has)
--   posts_12h    BIGINT  posts with a reach at 12 h
--   avg_24h      DOUBLE  the same at 24 h
--   posts_24h    BIGINT
--   avg_48h      DOUBLE  the same at 48 h
--   posts_48h    BIGINT
--   err24_pct    DOUBLE  ERR at 24 h, percent (NULL: no post has both)
--   err24_posts  BIGINT  posts in it
WITH r AS (
    SELECT reach_12h, reach_24h, reach_48h,
           date_trunc('day', to_local(published_at)) AS local_day
    FROM post_reach_hours
    WHERE channel_id = $1 AND published_at >= $2 AND published_at < $3
), m AS (
    SELECT date_trunc('day', to_local(bucket)) AS local_day, members
    FROM members_daily
    WHERE channel_id = $1 AND bucket >= $2 AND bucket < $3
), joined AS (
    SELECT r.reach_12h, r.reach_24h, r.reach_48h,
           CASE WHEN m.members > 0 THEN r.reach_24h * 100.0 / CAST(m.members AS DOUBLE) END AS err24
    FROM r LEFT JOIN m ON m.local_day = r.local_day
)
SELECT count(*) AS posts,
       avg(reach_12h) AS avg_12h, count(reach_12h) AS posts_12h,
       avg(reach_24h) AS avg_24h, count(reach_24h) AS posts_24h,
       avg(reach_48h) AS avg_48h, count(reach_48h) AS posts_48h,
       avg(err24) AS err24_pct, count(err24) AS err24_posts
FROM joined
