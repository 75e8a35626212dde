-- purpose: the top posts of a window of local days by post reach (highest views seen) and by
--          engagement: (forwards + replies + reactions) / views * 100, counters a source did
--          not report counting 0, ranked among the posts with at least the window's median
--          post reach (so that a post seen by a handful of readers does not top the list).
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
--   $4  k             BIGINT               posts per list
-- output (posts in either top k, by reach rank):
--   post_id          BIGINT              message id
--   published_at     TIMESTAMP(us, UTC)  publication time
--   views            BIGINT              post reach
--   reach_24h        DOUBLE              reach at 24 h (NULL: n/a)
--   forwards         BIGINT              highest forwards seen
--   replies          BIGINT              highest replies seen
--   reactions        BIGINT              highest reactions seen
--   engagement_pct   DOUBLE              engagement in percent (NULL: no views or no counters)
--   reach_rank       BIGINT              1 = highest reach
--   engagement_rank  BIGINT              1 = highest engagement among eligible posts (NULL: not eligible)
--   posts            BIGINT              posts of the window
WITH r AS (
    SELECT post_id, published_at, views, reach_24h, forwards, replies, reactions,
           CASE WHEN views > 0 AND (forwards IS NOT NULL OR replies IS NOT NULL OR reactions IS NOT NULL)
                THEN CAST(coalesce(forwards, 0) + coalesce(replies, 0) + coalesce(reactions, 0) AS DOUBLE)
                     * 100.0 / CAST(views AS DOUBLE)
           END AS engagement_pct
    FROM post_reach_hours
    WHERE channel_id = $1 AND published_at >= $2 AND published_at < $3
), typical AS (
    SELECT median(CAST(views AS DOUBLE)) AS median_views, count(*) AS posts FROM r
), eligible AS (
    SELECT r.*, t.posts,
           r.engagement_pct IS NOT NULL AND CAST(r.views AS DOUBLE) >= t.median_views AS ranked_by_engagement
    FROM r CROSS JOIN typical t
), ranked AS (
    SELECT *,
           CAST(row_number() OVER (ORDER BY views DESC NULLS LAST, post_id) AS BIGINT) AS reach_rank,
           CAST(row_number() OVER (PARTITION BY ranked_by_engagement
                                   ORDER BY engagement_pct DESC, post_id) AS BIGINT) AS engagement_place
    FROM eligible
)
SELECT post_id, published_at, views, reach_24h, forwards, replies, reactions, engagement_pct,
       reach_rank,
       CASE WHEN ranked_by_engagement THEN engagement_place END AS engagement_rank,
       posts
FROM ranked
WHERE reach_rank <= $4 OR (ranked_by_engagement AND engagement_place <= $4)
ORDER BY reach_rank
