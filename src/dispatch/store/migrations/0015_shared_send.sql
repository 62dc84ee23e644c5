-- Several senders on one ledger (issue 15, PostgreSQL): each `dispatch send` that takes part
-- in an issue's send is a row here, alive while its lease lasts (renewed every second from the
-- database server's clock) and while it holds the session advisory lock (1, id) on its own
-- connection (the server drops that lock the moment the process dies). A ledger row in a
-- sender's hands names it in deliveries.sender: claimed (still 'pending') or going out
-- ('sending', written before the message's data). A sender found dead is taken over: its
-- 'sending' rows become uncertain and its 'pending' ones go back to the common pool.
-- SQLite keeps one sender per database (a lock file) and leaves these empty.

ALTER TABLE deliveries ADD COLUMN sender INTEGER;
CREATE INDEX deliveries_sender ON deliveries (sender) WHERE sender IS NOT NULL;

CREATE TABLE send_senders (
    id          INTEGER PRIMARY KEY,               -- chosen at random by the sender
    issue_id    TEXT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    host        TEXT NOT NULL,                     -- where it runs (its journal is there)
    pid         INTEGER NOT NULL,
    journal     TEXT NOT NULL,                     -- its journal folder on that host
    relay       TEXT NOT NULL,                     -- host:port: senders of one relay share its quota
    state       TEXT NOT NULL DEFAULT 'running' CHECK (state IN
                    ('running', 'finished', 'stopped', 'taken_over')),
    lease_until DOUBLE PRECISION NOT NULL,         -- epoch seconds, the database server's clock
    began       DOUBLE PRECISION NOT NULL,         -- when it joined, on the same clock
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    sent        INTEGER NOT NULL DEFAULT 0,        -- messages it sent (its share)
    learnt      DOUBLE PRECISION NOT NULL DEFAULT 0  -- the relay's pace it found (messages/s)
);
CREATE INDEX send_senders_issue ON send_senders (issue_id, state);
