-- The bot's language per user: `chosen` by /lang (en | ru), or none to follow the
-- `language_code` Telegram sends with the user's updates (kept here so that alerts and
-- reports, which are sent without an update, use the same language).
CREATE TABLE bot_languages (
    user_id         bigint PRIMARY KEY,         -- Telegram user id
    chosen          text CHECK (chosen IN ('en', 'ru')),
    telegram_code   text,                       -- the last language_code seen, e.g. ru, en-US
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- An alert's score (unusual_change: the robust z; no_posts: the limit in hours), so that the
-- bot can word the alert in each reader's language from numbers instead of the stored English
-- `detail`.
ALTER TABLE alert_events ADD COLUMN score double precision;

-- The language a queued report was written in (its body is generated once per language).
ALTER TABLE reports_queue ADD COLUMN lang text NOT NULL DEFAULT 'en';
