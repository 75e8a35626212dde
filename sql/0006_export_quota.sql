-- The bot's daily export allowance per viewer (--bot-export-quota): the bytes of the files
-- /export sent to each user on each UTC day. Kept here so the allowance survives restarts.
-- Rows of past days are only read for today's total; nothing depends on keeping them.
CREATE TABLE bot_export_usage (
    user_id     bigint NOT NULL,            -- Telegram user id
    day         date NOT NULL,              -- UTC day of the service clock
    bytes       bigint NOT NULL,            -- bytes of the files sent that day
    PRIMARY KEY (user_id, day)
);
-- Like the rest of the bot's state, not for analysts (the default privileges of
-- 0003_analyst_role.sql would grant it).
REVOKE ALL ON bot_export_usage FROM tgpulse_analyst;
