-- Donations (one per Stripe Checkout Session), refunds, the outlet's Payment Links, campaigns,
-- sync cursors and the ids of Stripe events already handled. Amounts are integers in the
-- currency's minor unit (cents; yen for JPY); currencies are never added together.
-- The Stripe mode (test/live) of this database is kept in meta ('stripe.mode').

CREATE TABLE payment_links (
    id         TEXT PRIMARY KEY,                   -- plink_...
    url        TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('custom', 'fixed', 'monthly', 'adopted')),
    amount_minor INTEGER,                          -- fixed and monthly links
    currency   TEXT NOT NULL DEFAULT '',
    product_id TEXT,
    price_id   TEXT,
    livemode   INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX payment_links_url ON payment_links (url);

CREATE TABLE donations (
    id                 INTEGER PRIMARY KEY,
    session_id         TEXT NOT NULL UNIQUE,       -- cs_...: one donation per Checkout Session
    livemode           INTEGER NOT NULL,
    payment_link       TEXT,
    payment_intent     TEXT,                       -- pi_...: refunds are matched on it
    checkout_mode      TEXT NOT NULL DEFAULT 'payment',   -- 'payment' or 'subscription'
    status             TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    amount_minor       INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    token              TEXT,                       -- client_reference_id as received
    delivery_id        INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    issue_id           TEXT,                       -- the issue whose link was used
    subscriber_id      INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    payer_email        TEXT,                       -- customer_details.email; erased by forget
    possibly_forwarded INTEGER NOT NULL DEFAULT 0, -- payer differs from the link's recipient
    session_created_at TEXT NOT NULL,              -- Checkout Session 'created'
    paid_at            TEXT,                       -- when it was first known paid
    source             TEXT NOT NULL,              -- 'sync' or 'webhook' (first seen by)
    first_seen_at      TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX donations_issue ON donations (issue_id, status);
CREATE INDEX donations_subscriber ON donations (subscriber_id);
CREATE INDEX donations_intent ON donations (payment_intent);
CREATE INDEX donations_status ON donations (status, session_created_at);

-- Every refund seen, matched to donations through the PaymentIntent at read time, so a refund
-- that arrives before its session still nets out once the session is recorded.
CREATE TABLE refunds (
    id             TEXT PRIMARY KEY,               -- re_...
    payment_intent TEXT,
    charge         TEXT,
    amount_minor   INTEGER NOT NULL,
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL,                  -- pending/requires_action/succeeded/failed/canceled
    livemode       INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX refunds_intent ON refunds (payment_intent);

-- Donations with the refunded part netted out. Pending and succeeded refunds are deducted
-- (the money is on its way back); failed and canceled ones are not.
CREATE VIEW donation_totals AS
SELECT d.*,
       COALESCE((SELECT SUM(r.amount_minor) FROM refunds r
                 WHERE r.payment_intent = d.payment_intent
                   AND r.currency = d.currency
                   AND r.status IN ('pending', 'requires_action', 'succeeded')), 0)
           AS refunded_minor
FROM donations d;

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    goal_minor  INTEGER NOT NULL CHECK (goal_minor > 0),
    currency    TEXT NOT NULL,
    starts_on   TEXT NOT NULL,                     -- ISO date, inclusive (UTC)
    ends_on     TEXT NOT NULL,                     -- ISO date, inclusive (UTC)
    created_at  TEXT NOT NULL,
    CHECK (ends_on >= starts_on)
);

-- Where each incremental listing got to: the newest 'created' seen (Unix seconds).
CREATE TABLE sync_cursors (
    name       TEXT PRIMARY KEY,                   -- 'sessions:<plink id>', 'refunds'
    value      INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

-- Stripe event ids already handled by the webhook, so a redelivered event counts once.
CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY,                  -- evt_...
    type        TEXT NOT NULL,
    received_at TEXT NOT NULL
);

-- Thank-you emails: one row per paid donation, fixed before anything is sent, with the same
-- pending -> sending -> sent | failed discipline as deliveries (a crash leaves 'sending', which
-- the next run turns into 'uncertain' and never resends by itself).
CREATE TABLE donation_thanks (
    donation_id INTEGER PRIMARY KEY REFERENCES donations (id) ON DELETE CASCADE,
    issue_id    TEXT REFERENCES issues (id) ON DELETE SET NULL,   -- the 'thanks' issue that sent it
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                    ('pending', 'sending', 'sent', 'failed', 'uncertain', 'skipped')),
    last_reply  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
