-- Every email the signup form sends (a confirmation link, or "you are already subscribed"),
-- so the limits per address and for the whole service hold across all web worker processes.
-- Only the SHA-256 of the address is kept (as in suppressions): the log outlives forgotten
-- readers. Rows older than a day are deleted as new signups come in.
CREATE TABLE signup_mail (
    id          INTEGER PRIMARY KEY,
    email_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL,                     -- 'confirm' | 'already'
    sent_at     TEXT NOT NULL
);
CREATE INDEX signup_mail_address ON signup_mail (email_hash, sent_at);
CREATE INDEX signup_mail_sent ON signup_mail (sent_at);
