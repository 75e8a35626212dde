-- purpose: best time to post: the posts of a window of local days by local weekday x hour
--          (reporting time zone, DST-aware through to_local), each cell with its posts and
--          their median reach, indexed to the median reach of all the window's posts
--          (1.0 = typical). A post's reach is its reach at 24 h; a post first read after it
--          was 24 h old (an import) counts with its latest views; a young post with neither
--          is left out. Cells with fewer than 3 posts have no median or index (empty, not 0).
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (cells with at least one post, by weekday and hour):
--   weekday       BIGINT  0 = Sunday .. 6 = Saturday (date_part('dow'))
--   hour          BIGINT  local hour 0..23
--   posts         BIGINT  posts placed in the cell
--   median_reach  DOUBLE  median reach of those posts, views (NULL under 3 posts)
--   reach_index   DOUBLE  median_reach / typical (NULL under 3 posts)
--   posts_24h     BIGINT  posts whose reach is their reach at 24 h (the rest: latest views)
--   typical       DOUBLE  median reach of all placed posts of the window
WITH r AS (
    SELECT to_local(published_at) AS local_at,
           CASE WHEN reach_24h IS NOT NULL THEN reach_24h
                WHEN first_observed_at >= published_at + INTERVAL '24 hours' THEN CAST(views AS DOUBLE)
           END AS reach,
           reach_24h IS NOT NULL AS is_24h
    FROM post_reach_hours
    WHERE channel_id = $1 AND published_at >= $2 AND published_at < $3
), placed AS (
    SELECT CAST(date_part('dow', local_at) AS BIGINT) AS weekday,
           CAST(date_part('hour', local_at) AS BIGINT) AS hour,
           reach, is_24h
    FROM r
    WHERE reach IS NOT NULL
), overall AS (
    SELECT median(reach) AS typical FROM placed
)
SELECT p.weekday, p.hour,
       count(*) AS posts,
       CASE WHEN count(*) >= 3 THEN median(p.reach) END AS median_reach,
       CASE WHEN count(*) >= 3 AND o.typical > 0 THEN median(p.reach) / o.typical END AS reach_index,
       sum(CASE WHEN p.is_24h THEN 1 ELSE 0 END) AS posts_24h,
       o.typical
FROM placed p CROSS JOIN overall o
GROUP BY p.weekday, p.hour, o.typical
ORDER BY p.weekday, p.hour
