-- The web service: double opt-in confirmations. Webhook event ids live in stripe_events (0003);
-- the signup rate limit is kept in memory by each web worker.

-- One row per confirmation email sent by /subscribe. Only the SHA-256 of the emailed token is
-- kept, so a copy of the database cannot confirm anyone. A token is single-use (used_at) and
-- expires (expires_at); the address waits here, not in subscribers, when the person had been
-- forgotten, so nothing about them is stored as a subscriber before they confirm.
CREATE TABLE confirmations (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,                     -- normalised, lower-cased
    name        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX confirmations_email ON confirmations (email, created_at);
CREATE INDEX confirmations_expiry ON confirmations (expires_at);
