-- Spam complaints read back from feedback-loop reports (ARF, JMRP). One row per report, so
-- reading the same mailbox twice changes nothing. No address is stored: the subscriber row
-- (or, once forgotten, nothing) says who complained.
CREATE TABLE complaints (
    id            INTEGER PRIMARY KEY,
    message_key   TEXT NOT NULL UNIQUE,            -- the report's Message-ID (or a hash)
    delivery_id   INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    issue_id      TEXT,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    feedback_type TEXT NOT NULL DEFAULT 'abuse',
    reporter      TEXT NOT NULL DEFAULT '',        -- the report's User-Agent, e.g. Yahoo!-Mail-Feedback/2.0
    received_at   TEXT NOT NULL
);
CREATE INDEX complaints_issue ON complaints (issue_id);
