-- SQLite's randomblob(), hex() and julianday(), which the store's SQL uses, for PostgreSQL.
-- randomblob's bytes come from gen_random_uuid() (the server's strong random source: 122
-- random bits per 16 bytes), not from random().
CREATE FUNCTION randomblob(n integer) RETURNS bytea LANGUAGE sql VOLATILE AS $$
    SELECT substring(string_agg(decode(replace(gen_random_uuid()::text, '-', ''), 'hex'), ''::bytea)
                     FROM 1 FOR n)
    FROM generate_series(1, (n + 15) / 16)
$$;
CREATE FUNCTION hex(value bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT upper(encode(value, 'hex'))
$$;
CREATE FUNCTION julianday(value text) RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT extract(epoch FROM value::timestamptz) / 86400.0 + 2440587.5
$$;
