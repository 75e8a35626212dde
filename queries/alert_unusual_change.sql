-- purpose: rule unusual_change. For each watched channel and evaluation day with a daily
--          member delta (members - members of the calendar day before, both days with data):
--          the median and the median absolute deviation (MAD) of the deltas of the 28 days
--          before it. The robust z-score, (delta - median) / (1.4826 * MAD), and the
--          thresholds are applied by crate::alert.
-- session tables: watched(channel_id), calendar(day_no, day_start), evaluations(day_no, at),
--          offsets(k): 1..35.
-- parameters:
--   $1  read_start  TIMESTAMP(us, UTC)  local midnight of the first calendar day (inclusive)
--   $2  read_end    TIMESTAMP(us, UTC)  local midnight after the last calendar day (exclusive)
-- output:
--   channel_id  BIGINT  bare Telegram channel id
--   day_no      BIGINT  evaluated local day (days since 1970-01-01)
--   value       DOUBLE  the day's member delta
--   baseline    DOUBLE  median delta of the trailing 28 days
--   change_pct  DOUBLE  delta / members of the day before * 100
--   mad         DOUBLE  median absolute deviation of the trailing deltas from their median
--   history     BIGINT  number of trailing deltas (days with data on both sides)
WITH days AS (
    SELECT m.channel_id, c.day_no, m.members
    FROM members_daily m
    JOIN watched w ON w.channel_id = m.channel_id
    JOIN calendar c ON c.day_start = m.bucket
    WHERE m.bucket >= $1 AND m.bucket < $2
), steps AS (
    SELECT channel_id, day_no,
           members - lag(members) OVER (PARTITION BY channel_id ORDER BY day_no) AS delta,
           lag(members) OVER (PARTITION BY channel_id ORDER BY day_no) AS prev_members,
           day_no - lag(day_no) OVER (PARTITION BY channel_id ORDER BY day_no) AS gap
    FROM days
), daily AS (
    SELECT channel_id, day_no, CAST(delta AS DOUBLE) AS delta, prev_members
    FROM steps
    WHERE gap = 1
), target AS (
    SELECT d.channel_id, d.day_no, d.delta, d.prev_members
    FROM daily d
    JOIN evaluations e ON e.day_no = d.day_no
), wanted AS (
    -- The 28 days before each evaluated day, as plain columns, so that the next join is an
    -- equijoin on (channel_id, day_no) and cannot be planned as a join on the channel alone.
    SELECT t.channel_id, t.day_no, t.day_no - o.k AS past_day
    FROM target t
    CROSS JOIN offsets o
    WHERE o.k <= 28
), past AS (
    SELECT w.channel_id, w.day_no, h.delta AS past_delta
    FROM wanted w
    JOIN daily h ON h.channel_id = w.channel_id AND h.day_no = w.past_day
), centre AS (
    SELECT channel_id, day_no, median(past_delta) AS med, count(*) AS history
    FROM past
    GROUP BY channel_id, day_no
), spread AS (
    SELECT p.channel_id, p.day_no, median(abs(p.past_delta - c.med)) AS mad
    FROM past p
    JOIN centre c ON c.channel_id = p.channel_id AND c.day_no = p.day_no
    GROUP BY p.channel_id, p.day_no
)
SELECT t.channel_id,
       t.day_no,
       t.delta AS value,
       c.med AS baseline,
       CASE WHEN t.prev_members > 0 THEN t.delta * 100.0 / CAST(t.prev_members AS DOUBLE) END AS change_pct,
       s.mad,
       c.history
FROM target t
JOIN centre c ON c.channel_id = t.channel_id AND c.day_no = t.day_no
JOIN spread s ON s.channel_id = t.channel_id AND s.day_no = t.day_no
