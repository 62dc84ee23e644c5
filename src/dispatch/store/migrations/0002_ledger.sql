-- The send ledger: one row per (issue, subscriber), fixed when a send starts.
-- pending -> sending (handed to SMTP) -> sent | failed; a row left in 'sending' by a crash
-- becomes 'uncertain' on the next run and is resolved only on purpose (resend or skip).

CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    issue_id      TEXT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    email         TEXT,                            -- address when fixed; erased by 'forget'
    token         TEXT NOT NULL UNIQUE,            -- random donation token (client_reference_id)
    variant       TEXT NOT NULL,                   -- persona the copy was rendered for
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                      ('pending', 'sending', 'sent', 'failed', 'uncertain', 'skipped')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_reply    TEXT,                            -- the server's last reply (code and text)
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    sent_at       TEXT,
    UNIQUE (issue_id, subscriber_id)
);
CREATE INDEX deliveries_issue_state ON deliveries (issue_id, state, id);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

-- Donation-link clicks counted by the web service's /d/<token> redirect.
CREATE TABLE clicks (
    id         INTEGER PRIMARY KEY,
    token      TEXT NOT NULL,                      -- deliveries.token
    clicked_at TEXT NOT NULL
);
CREATE INDEX clicks_token ON clicks (token);

-- Delivery status notifications read back from the bounce mailbox.
CREATE TABLE bounces (
    id            INTEGER PRIMARY KEY,
    message_key   TEXT NOT NULL UNIQUE,            -- DSN Message-ID (or hash), so reprocessing is idempotent
    delivery_id   INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    issue_id      TEXT,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('hard', 'soft')),
    diagnostic    TEXT NOT NULL DEFAULT '',
    received_at   TEXT NOT NULL
);
CREATE INDEX bounces_issue ON bounces (issue_id);
