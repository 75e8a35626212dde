-- purpose: posting frequency of a channel in a window of local days, from the publication
--          times of the posts tgpulse sampled: the posts (the items of an album, published
--          at one instant, are one post) and the median gap between consecutive posts.
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (one row):
--   posts             BIGINT  distinct publication instants in the window
--   median_gap_hours  DOUBLE  median hours between consecutive ones (NULL under 2 posts)
WITH p AS (
    SELECT DISTINCT published_at
    FROM posts
    WHERE channel_id = $1 AND published_at >= $2 AND published_at < $3
), g AS (
    SELECT CAST(to_unixtime(published_at) - lag(to_unixtime(published_at)) OVER (ORDER BY published_at) AS DOUBLE) AS gap_s
    FROM p
)
SELECT count(*) AS posts,
       median(gap_s) / 3600.0 AS median_gap_hours
FROM g
