-- What imports from other tools bring besides the address: the first name (to greet by), the
-- reader's language, and consent as consent (when and from where they opted in, and how),
-- never as tags. Addresses are stored lower-cased (subscribers.normalize_address), so lookups
-- compare with '=' on the UNIQUE index rather than COLLATE NOCASE, which scans the table.

ALTER TABLE subscribers ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN consent_at TEXT NOT NULL DEFAULT '';      -- opt-in time, as the tool gave it
ALTER TABLE subscribers ADD COLUMN consent_ip TEXT NOT NULL DEFAULT '';      -- opt-in IP
ALTER TABLE subscribers ADD COLUMN consent_source TEXT NOT NULL DEFAULT '';  -- e.g. 'mailchimp export'
UPDATE OR IGNORE subscribers SET email = lower(email) WHERE email <> lower(email);
