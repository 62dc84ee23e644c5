-- PostgreSQL twin of 0005_donations_forget.sql: a trigger runs a function there.
CREATE FUNCTION donations_forget_payer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE donations SET payer_email = NULL
    WHERE payer_email IS NOT NULL AND lower(payer_email) = lower(OLD.email);
    RETURN OLD;
END;
$$;
CREATE TRIGGER donations_forget_payer AFTER DELETE ON subscribers
FOR EACH ROW EXECUTE FUNCTION donations_forget_payer();
