-- Subscribers, suppression, issues and their articles. Times are ISO-8601 UTC text.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE subscribers (
    id                INTEGER PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,        -- normalised; compared case-insensitively
    name              TEXT NOT NULL DEFAULT '',
    tags              TEXT NOT NULL DEFAULT '[]',  -- JSON list of strings
    status            TEXT NOT NULL CHECK (status IN
                          ('active', 'unsubscribed', 'bounced', 'complained', 'pending')),
    unsub_token       TEXT NOT NULL UNIQUE,        -- random; the unsubscribe credential
    source            TEXT NOT NULL DEFAULT '',    -- 'import:<file>', 'signup', ...
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    status_changed_at TEXT
);
CREATE INDEX subscribers_status ON subscribers (status, id);

-- Addresses forgotten on request: only a one-way hash remains, so no import mails them again.
CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE issues (
    id           TEXT PRIMARY KEY,                 -- '2026-W48', or 'appeal-...' etc.
    kind         TEXT NOT NULL DEFAULT 'digest' CHECK (kind IN ('digest', 'appeal', 'thanks')),
    status       TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'sending', 'sent')),
    subject      TEXT NOT NULL,
    preheader    TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',         -- editor's note (plain text / light markdown)
    window_start TEXT,
    window_end   TEXT,
    created_at   TEXT NOT NULL,
    send_started_at TEXT,
    sent_at      TEXT
);

CREATE TABLE issue_articles (
    id            INTEGER PRIMARY KEY,
    issue_id      TEXT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    pinned        INTEGER NOT NULL DEFAULT 0,
    dropped       INTEGER NOT NULL DEFAULT 0,
    guid          TEXT NOT NULL,
    url           TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    title         TEXT NOT NULL,
    published     TEXT,
    source        TEXT NOT NULL,
    excerpt       TEXT NOT NULL DEFAULT '',
    body_html     TEXT NOT NULL DEFAULT '',
    image_url     TEXT,
    image_alt     TEXT NOT NULL DEFAULT '',
    UNIQUE (issue_id, guid)
);
CREATE INDEX issue_articles_canonical ON issue_articles (canonical_url);
CREATE INDEX issue_articles_guid ON issue_articles (guid);

-- Rendered, CSS-inlined variants (one per persona) with per-recipient placeholders left in.
CREATE TABLE issue_variants (
    issue_id TEXT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    variant  TEXT NOT NULL,
    subject  TEXT NOT NULL,
    html     TEXT NOT NULL,
    text     TEXT NOT NULL,
    rendered_at TEXT NOT NULL,
    PRIMARY KEY (issue_id, variant)
);
