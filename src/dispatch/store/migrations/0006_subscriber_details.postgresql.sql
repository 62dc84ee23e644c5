-- PostgreSQL twin of 0006_subscriber_details.sql (PostgreSQL has no UPDATE OR IGNORE: an
-- address whose lower-cased form is taken keeps its case, as SQLite's OR IGNORE does).
ALTER TABLE subscribers ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN consent_at TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN consent_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN consent_source TEXT NOT NULL DEFAULT '';
UPDATE subscribers s SET email = lower(s.email)
WHERE s.email <> lower(s.email)
  AND NOT EXISTS (SELECT 1 FROM subscribers t WHERE t.email = lower(s.email));
