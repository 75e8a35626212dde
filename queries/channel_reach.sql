-- purpose: posts published in a window of local days and their summed post reach, for
--          average post reach (views / posts) and ERR.
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (one row; NULLs when the channel has no post samples in the window):
--   posts            BIGINT  posts published in the window with at least one view sample
--   views            BIGINT  sum over those posts of their highest view count (post reach)
--   days_with_posts  BIGINT  local days in the window with at least one post
SELECT sum(posts) AS posts,
       sum(views) AS views,
       count(bucket) AS days_with_posts
FROM views_daily
WHERE channel_id = $1 AND bucket >= $2 AND bucket < $3
