-- Forgetting a subscriber (their row is deleted) also erases their address from the gifts they
-- paid: amounts stay for the books, the payer's address does not.
CREATE TRIGGER donations_forget_payer AFTER DELETE ON subscribers
BEGIN
    UPDATE donations SET payer_email = NULL
    WHERE payer_email IS NOT NULL AND lower(payer_email) = lower(OLD.email);
END;
