-- Recurring gifts (issue 11): subscriptions, their invoices (the first payment and every
-- renewal), failed charges, and disputes with the balance transactions Stripe booked for them.
-- Keyed by Stripe ids so sync, webhook and reruns record each object once; events may arrive
-- out of order, so nothing here has a foreign key to another Stripe object: rows are joined
-- at read time. Amounts are integers in the currency's minor unit; currencies never add up.

-- Where a subscription came from: the delivery token that started it (subscription metadata
-- from the donation page, or the Checkout Session of a monthly Payment Link), resolved to the
-- reader and issue when first seen.
CREATE TABLE subscription_origins (
    subscription_id TEXT PRIMARY KEY,              -- sub_...
    session_id      TEXT,                          -- cs_... that started it, when known
    token           TEXT,
    delivery_id     INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    issue_id        TEXT,
    subscriber_id   INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX subscription_origins_issue ON subscription_origins (issue_id);

-- Each subscription as Stripe last reported it (status never guessed from the clock).
CREATE TABLE subscriptions (
    id              TEXT PRIMARY KEY,              -- sub_...
    livemode        INTEGER NOT NULL,
    customer        TEXT,                          -- cus_...: the portal session is opened for it
    status          TEXT NOT NULL,                 -- Stripe's: active, past_due, canceled, ...
    amount_minor    INTEGER NOT NULL,              -- per interval
    currency        TEXT NOT NULL,
    billing_interval TEXT NOT NULL,                -- month | year | week | day
    started_at      TEXT NOT NULL,                 -- Stripe start_date
    canceled_at     TEXT,
    ended_at        TEXT,
    cancel_reason   TEXT,                          -- cancellation_details.reason
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
    latest_invoice  TEXT,                          -- in_...: orders copies of the same state
    first_seen_at   TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX subscriptions_status ON subscriptions (status);

-- Invoices of those subscriptions: billing_reason 'subscription_create' is the first payment,
-- every later paid one a renewal. Status moves forward only (open -> paid | void | uncollectible).
CREATE TABLE subscription_invoices (
    id              TEXT PRIMARY KEY,              -- in_...
    subscription_id TEXT NOT NULL,
    livemode        INTEGER NOT NULL,
    billing_reason  TEXT NOT NULL,
    status          TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL,              -- amount_paid once paid, else amount_due
    currency        TEXT NOT NULL,
    payment_intent  TEXT,                          -- pi_... of the paying attempt, when known
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    paid_at         TEXT,
    first_seen_at   TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX subscription_invoices_sub ON subscription_invoices (subscription_id, status);
CREATE INDEX subscription_invoices_intent ON subscription_invoices (payment_intent);

-- Which PaymentIntent paid an invoice (invoice_payment.paid may come before the invoice).
CREATE TABLE invoice_intents (
    invoice_id      TEXT PRIMARY KEY,
    payment_intent  TEXT NOT NULL
);

-- Every failed charge of an invoice, one row per attempt (dated by the invoice: Stripe's
-- attempt_count says how many failed, not when).
CREATE TABLE invoice_failures (
    invoice_id      TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    subscription_id TEXT NOT NULL,
    failed_at       TEXT NOT NULL,
    PRIMARY KEY (invoice_id, attempt)
);

CREATE TABLE disputes (
    id              TEXT PRIMARY KEY,              -- dp_...
    livemode        INTEGER NOT NULL,
    payment_intent  TEXT,
    charge          TEXT,
    amount_minor    INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,                 -- Stripe's: needs_response, won, lost, ...
    reason          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX disputes_intent ON disputes (payment_intent);

-- What a dispute moved in the balance (withdrawal with Stripe's fee; reinstatement when won),
-- in the currency Stripe booked it in.
CREATE TABLE dispute_transactions (
    id              TEXT PRIMARY KEY,              -- txn_...
    dispute_id      TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL,
    fee_minor       INTEGER NOT NULL,
    net_minor       INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX dispute_transactions_dispute ON dispute_transactions (dispute_id);

-- A monthly gift's Checkout Session has no PaymentIntent: its first payment is its
-- subscription's first invoice. Refunds of that payment net the gift too, so donation_totals
-- (0003) matches refunds on the first invoice's PaymentIntent when the session has none, and
-- counted_gifts (0012, unchanged) is made again on top of it.
DROP VIEW counted_gifts;
DROP VIEW donation_totals;
CREATE VIEW donation_totals AS
SELECT d.*,
       COALESCE((SELECT SUM(r.amount_minor) FROM refunds r
                 WHERE r.payment_intent = COALESCE(d.payment_intent, (
                           SELECT i.payment_intent FROM subscription_origins o
                           JOIN subscription_invoices i
                             ON i.subscription_id = o.subscription_id
                            AND i.billing_reason = 'subscription_create'
                           WHERE o.session_id = d.session_id))
                   AND r.currency = d.currency
                   AND r.status IN ('pending', 'requires_action', 'succeeded')), 0)
           AS refunded_minor
FROM donations d;
CREATE VIEW counted_gifts AS
SELECT t.*,
       t.amount_minor - t.refunded_minor AS net_minor,
       COALESCE(t.paid_at, t.session_created_at) AS given_at
FROM donation_totals t
WHERE t.status = 'paid' AND t.refunded_minor < t.amount_minor;
