-- The analyst role reads analytics, not the admin bot's private state, and its queries are
-- bounded in time.
--
-- 1. The bot's tables (bot_viewers: who may use the bot; bot_actions: pending buttons;
--    bot_dialogues: half-finished conversations) were readable through 0003's grant and
--    default privileges. Every relation of public named bot_* is private to tgpulse: this
--    revokes the existing ones, and tgpulse revokes them again in the transaction of every
--    later migration, so a bot table added later never becomes readable through the default
--    privileges (src/db/analyst.rs).
REVOKE ALL ON bot_viewers, bot_actions, bot_dialogues FROM tgpulse_analyst;

-- 2. At most 60 s per statement, so one heavy ad-hoc query or dashboard panel cannot hold the
--    server's resources for long. PostgreSQL applies a role's settings only to sessions that
--    log in as that role, not to its members: at every start tgpulse copies this value to each
--    login in tgpulse_analyst that has no statement_timeout of its own. Give a login another
--    limit with ALTER ROLE alice SET statement_timeout = '5min' (tgpulse leaves it alone).
--    The role is cluster-wide: every database on the server migrates it. The value is set only
--    where the role has no statement_timeout yet, so an operator's own value is kept and a
--    second database changes nothing. Two databases migrating at the same moment update the
--    same catalog row; the loser ("tuple concurrently updated") keeps the winner's value.
DO $tgpulse$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_roles r, unnest(r.rolconfig) c
        WHERE r.rolname = 'tgpulse_analyst' AND c LIKE 'statement\_timeout=%'
    ) THEN
        ALTER ROLE tgpulse_analyst SET statement_timeout = '60s';
    END IF;
EXCEPTION
    WHEN internal_error THEN NULL;
END
$tgpulse$;
