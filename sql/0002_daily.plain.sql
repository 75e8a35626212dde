-- Plain PostgreSQL: daily relations are tables with the same names and columns as the
-- TimescaleDB continuous aggregates. Statement triggers log the time range each write
-- touches (like TimescaleDB's invalidation log); tgpulse_refresh_daily() recomputes
-- exactly those buckets. tgpulse calls it inside every ingest transaction.

CREATE INDEX member_samples_observed_brin ON member_samples USING brin (observed_at);
CREATE INDEX post_samples_published_brin ON post_samples USING brin (published_at);

CREATE TABLE members_daily (
    channel_id        bigint NOT NULL,
    bucket            timestamptz NOT NULL,  -- local midnight of the day in the reporting time zone
    members           bigint NOT NULL,       -- last sample of the local day
    members_min       bigint NOT NULL,
    members_max       bigint NOT NULL,
    samples           bigint NOT NULL,
    last_observed_at  timestamptz NOT NULL,
    PRIMARY KEY (channel_id, bucket)
);

CREATE TABLE post_reach (
    channel_id        bigint NOT NULL,
    post_id           bigint NOT NULL,
    bucket            timestamptz NOT NULL,  -- local publication day
    views             bigint,                -- highest view count seen
    forwards          bigint,
    replies           bigint,
    reactions         bigint,
    samples           bigint NOT NULL,
    last_observed_at  timestamptz NOT NULL,
    PRIMARY KEY (channel_id, post_id, bucket)
);

CREATE TABLE views_daily (
    channel_id        bigint NOT NULL,
    bucket            timestamptz NOT NULL,  -- local publication day
    posts             bigint NOT NULL,       -- posts published that day with at least one sample
    views             bigint,                -- sum of post reach (views) of those posts
    forwards          bigint,
    replies           bigint,
    reactions         bigint,
    last_observed_at  timestamptz NOT NULL,
    PRIMARY KEY (channel_id, bucket)
);

CREATE TABLE daily_invalidations (
    relation    text NOT NULL,               -- member_samples | post_samples
    channel_id  bigint NOT NULL,
    lo          timestamptz NOT NULL,        -- earliest time-column value touched
    hi          timestamptz NOT NULL         -- latest time-column value touched
);

CREATE FUNCTION tgpulse_log_member_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO daily_invalidations (relation, channel_id, lo, hi)
    SELECT 'member_samples', channel_id, min(observed_at), max(observed_at)
    FROM changed GROUP BY channel_id;
    RETURN NULL;
END $$;

CREATE FUNCTION tgpulse_log_post_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO daily_invalidations (relation, channel_id, lo, hi)
    SELECT 'post_samples', channel_id, min(published_at), max(published_at)
    FROM changed GROUP BY channel_id;
    RETURN NULL;
END $$;

CREATE TRIGGER member_samples_ins AFTER INSERT ON member_samples
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tgpulse_log_member_invalidation();
CREATE TRIGGER member_samples_del AFTER DELETE ON member_samples
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tgpulse_log_member_invalidation();
CREATE TRIGGER member_samples_upd_new AFTER UPDATE ON member_samples
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tgpulse_log_member_invalidation();
CREATE TRIGGER post_samples_ins AFTER INSERT ON post_samples
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tgpulse_log_post_invalidation();
CREATE TRIGGER post_samples_del AFTER DELETE ON post_samples
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tgpulse_log_post_invalidation();
CREATE TRIGGER post_samples_upd_new AFTER UPDATE ON post_samples
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION tgpulse_log_post_invalidation();

-- Recomputes every daily bucket named in daily_invalidations, then empties the log.
-- Buckets are local days of the time zone recorded in tgpulse_settings.
-- Returns the number of (channel, range) invalidations processed.
CREATE FUNCTION tgpulse_refresh_daily() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    tz text := (SELECT value FROM tgpulse_settings WHERE key = 'timezone');
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tgpulse_refresh_daily'));

    CREATE TEMP TABLE IF NOT EXISTS _inv (relation text, channel_id bigint, b_lo timestamptz, b_hi timestamptz)
        ON COMMIT DROP;
    TRUNCATE _inv;
    WITH d AS (DELETE FROM daily_invalidations RETURNING relation, channel_id, lo, hi)
    INSERT INTO _inv
    SELECT relation, channel_id, date_trunc('day', min(lo), tz), date_trunc('day', max(hi), tz)
    FROM d GROUP BY relation, channel_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN 0;
    END IF;

    -- members_daily
    DELETE FROM members_daily d USING _inv i
    WHERE i.relation = 'member_samples' AND d.channel_id = i.channel_id
      AND d.bucket BETWEEN i.b_lo AND i.b_hi;
    INSERT INTO members_daily
    SELECT s.channel_id, date_trunc('day', s.observed_at, tz) AS bucket,
           (array_agg(s.members ORDER BY s.observed_at DESC))[1],
           min(s.members), max(s.members), count(*), max(s.observed_at)
    FROM member_samples s JOIN _inv i ON i.relation = 'member_samples' AND i.channel_id = s.channel_id
    WHERE s.observed_at >= i.b_lo AND s.observed_at < i.b_hi + interval '2 days'
      AND date_trunc('day', s.observed_at, tz) <= i.b_hi
    GROUP BY 1, 2;

    -- post_reach, then views_daily from it
    DELETE FROM post_reach d USING _inv i
    WHERE i.relation = 'post_samples' AND d.channel_id = i.channel_id
      AND d.bucket BETWEEN i.b_lo AND i.b_hi;
    INSERT INTO post_reach
    SELECT s.channel_id, s.post_id, date_trunc('day', s.published_at, tz) AS bucket,
           max(s.views), max(s.forwards), max(s.replies), max(s.reactions),
           count(*), max(s.observed_at)
    FROM post_samples s JOIN _inv i ON i.relation = 'post_samples' AND i.channel_id = s.channel_id
    WHERE s.published_at >= i.b_lo AND s.published_at < i.b_hi + interval '2 days'
      AND date_trunc('day', s.published_at, tz) <= i.b_hi
    GROUP BY 1, 2, 3;

    DELETE FROM views_daily d USING _inv i
    WHERE i.relation = 'post_samples' AND d.channel_id = i.channel_id
      AND d.bucket BETWEEN i.b_lo AND i.b_hi;
    INSERT INTO views_daily
    SELECT r.channel_id, r.bucket, count(*), sum(r.views)::bigint, sum(r.forwards)::bigint,
           sum(r.replies)::bigint, sum(r.reactions)::bigint, max(r.last_observed_at)
    FROM post_reach r JOIN _inv i ON i.relation = 'post_samples' AND i.channel_id = r.channel_id
    WHERE r.bucket BETWEEN i.b_lo AND i.b_hi
    GROUP BY 1, 2;

    RETURN n;
END $$;
