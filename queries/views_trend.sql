-- purpose: the views trend of a channel: views_daily over a window of local days with the
--          7-day moving average (the views of the posts published in the 7 local days ending
--          that day, divided by 7; days without posts count 0). The average is NULL while the
--          7 days reach back before the channel's first day with posts.
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  read_start    TIMESTAMP(us, UTC)   local midnight 6 days before the first day
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
--   $4  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
-- output (days of the window with posts, in order):
--   bucket  TIMESTAMP(us, UTC)  local midnight of the day
--   posts   BIGINT              posts published that day with a sample
--   views   BIGINT              their summed post reach (NULL if none reported views)
--   avg7    DOUBLE              7-day moving average of views (NULL: not 7 days of data yet)
WITH first_day AS (
    SELECT min(bucket) AS first_bucket
    FROM views_daily
    WHERE channel_id = $1
), d AS (
    SELECT bucket, posts, views,
           CAST(to_unixtime(date_trunc('day', to_local(bucket))) / 86400 AS BIGINT) AS day_no
    FROM views_daily
    WHERE channel_id = $1 AND bucket >= $2 AND bucket < $3
), w AS (
    SELECT bucket, posts, views, day_no,
           sum(views) OVER (ORDER BY day_no RANGE BETWEEN 6 PRECEDING AND CURRENT ROW) AS views7
    FROM d
)
SELECT w.bucket, w.posts, w.views,
       CASE WHEN w.day_no - 6 >= CAST(to_unixtime(date_trunc('day', to_local(f.first_bucket))) / 86400 AS BIGINT)
            THEN CAST(w.views7 AS DOUBLE) / 7.0
       END AS avg7
FROM w CROSS JOIN first_day f
WHERE w.bucket >= $4
ORDER BY w.bucket
