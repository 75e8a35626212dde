-- Plain PostgreSQL: tgpulse's writer keeps members_daily and post_reach up to date itself
-- from the samples it inserts (partials per channel and local day, or per post, merged with
-- one upsert each; views_daily then recomputed from post_reach for the touched days; see
-- src/ingest/merge.rs), so those inserts need no recompute from the sample tables. It marks
-- them with the transaction-local settings tgpulse.members_merged / tgpulse.posts_merged =
-- 'on' around its COPY; the triggers then log nothing for them. Every other write (updates,
-- deletes, the writer's staging fallback, writes made outside tgpulse) is logged as before
-- and recomputed by tgpulse_refresh_daily().

CREATE OR REPLACE FUNCTION tgpulse_log_member_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND current_setting('tgpulse.members_merged', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO daily_invalidations (relation, channel_id, lo, hi)
    SELECT 'member_samples', channel_id, min(observed_at), max(observed_at)
    FROM changed GROUP BY channel_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION tgpulse_log_post_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND current_setting('tgpulse.posts_merged', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO daily_invalidations (relation, channel_id, lo, hi)
    SELECT 'post_samples', channel_id, min(published_at), max(published_at)
    FROM changed GROUP BY channel_id;
    RETURN NULL;
END $$;
