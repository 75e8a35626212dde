-- purpose: rule no_posts. For each watched channel and evaluation instant: the hours since its
--          last post published before the instant, and the channel's cadence: the median gap
--          between consecutive posts published in the 30 days up to that last post (the
--          items of an album, published at one instant, are one post).
-- session tables: watched(channel_id), evaluations(day_no, at).
-- parameters:
--   $1  read_start  TIMESTAMP(us, UTC)  earliest publication time read (inclusive)
--   $2  read_end    TIMESTAMP(us, UTC)  latest publication time read (exclusive)
-- output:
--   channel_id  BIGINT  bare Telegram channel id
--   day_no      BIGINT  evaluated local day (days since 1970-01-01)
--   value       DOUBLE  hours since the last post at the evaluation instant
--   baseline    DOUBLE  median gap between posts, in hours (30 days up to the last post)
--   change_pct  DOUBLE  value / baseline * 100
--   gaps        BIGINT  number of gaps behind the median
WITH post AS (
    -- One row per publication instant: the items of an album share it, and count once.
    SELECT DISTINCT s.channel_id, s.published_at
    FROM post_samples s
    JOIN watched w ON w.channel_id = s.channel_id
    WHERE s.published_at >= $1 AND s.published_at < $2
), ordered AS (
    SELECT channel_id,
           to_unixtime(published_at) AS pub_s,
           row_number() OVER (PARTITION BY channel_id ORDER BY published_at) AS seq,
           to_unixtime(published_at)
             - to_unixtime(lag(published_at) OVER (PARTITION BY channel_id ORDER BY published_at)) AS gap_s
    FROM post
), cadence AS (
    SELECT channel_id, pub_s, seq,
           median(CAST(gap_s AS DOUBLE)) OVER (
               PARTITION BY channel_id ORDER BY pub_s
               RANGE BETWEEN 2592000 PRECEDING AND CURRENT ROW) AS median_gap_s,
           count(gap_s) OVER (
               PARTITION BY channel_id ORDER BY pub_s
               RANGE BETWEEN 2592000 PRECEDING AND CURRENT ROW) AS gaps
    FROM ordered
), moments AS (
    SELECT channel_id, pub_s AS t, 0 AS kind, seq, CAST(NULL AS BIGINT) AS day_no
    FROM ordered
    UNION ALL
    SELECT w.channel_id, to_unixtime(e.at) AS t, 1 AS kind, CAST(NULL AS BIGINT) AS seq, e.day_no
    FROM watched w CROSS JOIN evaluations e
), carried AS (
    SELECT channel_id, t, day_no,
           max(seq) OVER (
               PARTITION BY channel_id ORDER BY t, kind
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_seq
    FROM moments
)
SELECT k.channel_id,
       k.day_no,
       CAST(k.t - c.pub_s AS DOUBLE) / 3600.0 AS value,
       c.median_gap_s / 3600.0 AS baseline,
       CASE WHEN c.median_gap_s > 0
            THEN CAST(k.t - c.pub_s AS DOUBLE) * 100.0 / c.median_gap_s END AS change_pct,
       c.gaps
FROM carried k
JOIN cadence c ON c.channel_id = k.channel_id AND c.seq = k.last_seq
WHERE k.day_no IS NOT NULL
