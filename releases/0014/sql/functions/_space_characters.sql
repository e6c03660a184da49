-- The characters a text argument may not consist of alone: Unicode White_Space and the zero-width ones.
CREATE OR REPLACE FUNCTION payment_outbox._space_characters()
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- Spelt out rather than a regular expression class, whose meaning for non-ASCII characters
    -- depends on the database's locale.
    SELECT
        E'\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680\u180e\u2000\u2001\u2002\u2003\u2004'
        || E'\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff'
$$;

COMMENT ON FUNCTION payment_outbox._space_characters() IS
'Unicode White_Space (U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029, '
'U+202F, U+205F, U+3000) and the zero-width characters U+180E, U+200B-200D, U+2060, U+FEFF: a '
'required text argument made only of these is blank.';

REVOKE ALL ON FUNCTION payment_outbox._space_characters() FROM PUBLIC;
