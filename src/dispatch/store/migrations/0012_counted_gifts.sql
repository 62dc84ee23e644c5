-- The counted-gift rule, written once (issue 10). A gift counts when its payment succeeded
-- (status 'paid': a pending delayed payment or a failed one does not) and it was not refunded
-- in full; a partly refunded gift counts with its net amount. Both one-off and monthly
-- (checkout_mode 'subscription') gifts count. Test and live gifts never meet: a database holds
-- one Stripe mode (store.donations claims it). Reports, donor personas, campaign progress and
-- thank-you emails all read this view; nothing else restates the rule.
-- given_at: when the gift was paid (the session's time for one paid at checkout).
CREATE VIEW counted_gifts AS
SELECT t.*,
       t.amount_minor - t.refunded_minor AS net_minor,
       COALESCE(t.paid_at, t.session_created_at) AS given_at
FROM donation_totals t
WHERE t.status = 'paid' AND t.refunded_minor < t.amount_minor;
