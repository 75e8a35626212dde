-- The admin bot's state. Admins come from configuration (TGPULSE_ADMIN_IDS); everything
-- else the bot must remember across restarts lives here.

-- Read-only users granted by an admin with /grant.
CREATE TABLE bot_viewers (
    user_id     bigint PRIMARY KEY,         -- Telegram user id
    granted_by  bigint NOT NULL,            -- admin who granted the role
    granted_at  timestamptz NOT NULL DEFAULT now()
);

-- What an inline button does. A button's callback data is only "a:<token>"; the action
-- (confirm a removal, show page 3 of /list, stats over 90 days, ...) is stored here, so
-- buttons keep working after a restart and a client cannot forge parameters.
CREATE TABLE bot_actions (
    token       text PRIMARY KEY,           -- 16 random hex digits
    chat_id     bigint NOT NULL,
    user_id     bigint NOT NULL,            -- who the button was shown to
    action      jsonb NOT NULL,             -- tgpulse::state::Action, serialised
    one_shot    boolean NOT NULL,           -- deleted when used (confirmations)
    grp         text,                       -- one-shot buttons of one message (Yes/Cancel): using one deletes all
    expires_at  timestamptz NOT NULL
);
CREATE INDEX bot_actions_expires ON bot_actions (expires_at);

-- A conversation waiting for the user's next message (e.g. "compare with…" waits for the
-- channels to compare with). One per chat and user; a command clears it.
CREATE TABLE bot_dialogues (
    chat_id     bigint NOT NULL,
    user_id     bigint NOT NULL,
    state       jsonb NOT NULL,             -- tgpulse::state::Awaiting, serialised
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, user_id)
);
