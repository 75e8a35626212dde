-- purpose: rule views_drop. For each watched channel and evaluation instant `at`: the average
--          24 h reach of the posts of the current week against the median of the 4 weekly
--          averages before it. Week 0 holds the posts published in the 7 days ending 24 h
--          before `at` (so each has had its 24 h); week w the 7 days before week w-1.
--          A post's 24 h reach is its views at publication + 24 h, linearly interpolated
--          between the samples just before and just after that mark; a post without a sample
--          on each side (or exactly at the mark) has none and is left out.
-- session tables: watched(channel_id), evaluations(day_no, at).
-- parameters:
--   $1  read_start  TIMESTAMP(us, UTC)  earliest publication time read (inclusive)
--   $2  read_end    TIMESTAMP(us, UTC)  latest publication time read (exclusive)
-- output:
--   channel_id  BIGINT  bare Telegram channel id
--   day_no      BIGINT  evaluated local day (days since 1970-01-01)
--   value       DOUBLE  average 24 h reach of week 0 (views per post)
--   baseline    DOUBLE  median of the weekly averages of weeks 1..4 that have posts
--   change_pct  DOUBLE  (value - baseline) / baseline * 100
--   posts       BIGINT  posts with a 24 h reach in week 0
--   weeks       BIGINT  weeks of 1..4 with at least one such post
WITH s AS (
    SELECT s.channel_id, s.post_id,
           to_unixtime(s.published_at) AS pub_s,
           to_unixtime(s.observed_at) AS obs_s,
           to_unixtime(s.published_at) + 86400 AS mark_s,
           CAST(s.views AS DOUBLE) AS views
    FROM post_samples s
    JOIN watched w ON w.channel_id = s.channel_id
    WHERE s.published_at >= $1 AND s.published_at < $2 AND s.views IS NOT NULL
), around AS (
    SELECT channel_id, post_id, pub_s, mark_s,
           max(obs_s) FILTER (WHERE obs_s <= mark_s) AS t0,
           last_value(views ORDER BY obs_s) FILTER (WHERE obs_s <= mark_s) AS v0,
           min(obs_s) FILTER (WHERE obs_s >= mark_s) AS t1,
           first_value(views ORDER BY obs_s) FILTER (WHERE obs_s >= mark_s) AS v1
    FROM s
    GROUP BY channel_id, post_id, pub_s, mark_s
), reach AS (
    SELECT channel_id, pub_s,
           CASE WHEN t1 = mark_s THEN v1
                ELSE v0 + (v1 - v0) * CAST(mark_s - t0 AS DOUBLE) / CAST(t1 - t0 AS DOUBLE)
           END AS reach24
    FROM around
    WHERE t1 IS NOT NULL AND (t1 = mark_s OR t0 IS NOT NULL)
), placed AS (
    SELECT r.channel_id, e.day_no, r.reach24,
           CAST(floor(CAST(to_unixtime(e.at) - 86400 - r.pub_s - 1 AS DOUBLE) / 604800.0) AS BIGINT) AS week
    FROM reach r
    CROSS JOIN evaluations e
    WHERE r.pub_s < to_unixtime(e.at) - 86400
      AND r.pub_s >= to_unixtime(e.at) - 86400 - 5 * 604800
), weekly AS (
    SELECT channel_id, day_no, week, avg(reach24) AS avg_reach, count(*) AS posts
    FROM placed
    GROUP BY channel_id, day_no, week
), before AS (
    SELECT channel_id, day_no, median(avg_reach) AS baseline, count(*) AS weeks
    FROM weekly
    WHERE week BETWEEN 1 AND 4
    GROUP BY channel_id, day_no
)
SELECT cur.channel_id,
       cur.day_no,
       cur.avg_reach AS value,
       b.baseline,
       CASE WHEN b.baseline > 0 THEN (cur.avg_reach - b.baseline) * 100.0 / b.baseline END AS change_pct,
       cur.posts,
       b.weeks
FROM weekly cur
JOIN before b ON b.channel_id = cur.channel_id AND b.day_no = cur.day_no
WHERE cur.week = 0
