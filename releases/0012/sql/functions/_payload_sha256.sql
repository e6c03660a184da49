-- The sha256 of a payload's canonical text: two payloads equal as jsonb have the same hash.
CREATE OR REPLACE FUNCTION payment_outbox._payload_sha256(p_payload jsonb)
RETURNS bytea
LANGUAGE sql
-- STABLE, as convert_to() is: a SQL function more volatile than its body is not inlined, and a
-- call that is not inlined costs an executor start-up on every enqueue.
STABLE
PARALLEL SAFE
AS $$
    -- jsonb already drops white space, orders keys and
    -- keeps the last of duplicate keys; its text differs between equal values only in the scale
    -- of numbers (1.0 = 1.00 as jsonb). So the canonical text is the jsonb text with every
    -- number's trailing fractional zeros removed (trim_scale), numbers inside strings untouched:
    -- the first alternative matches a whole string and puts it back as it is. That rewrite is
    -- costly, so it runs only when a number could end in a fractional zero: one followed by
    -- ',', '}' or ']' (a string inside may also match; the rewrite then changes nothing).
    SELECT sha256(convert_to(
        CASE
            WHEN strpos(p_payload::text, '.') > 0 AND p_payload::text ~ '[0-9]\.[0-9]*0[],}]'
                THEN regexp_replace(
                    p_payload::text,
                    '("(?:[^"\\]|\\.)*")|(-?[0-9]+)(?:(\.[0-9]*[1-9])0+|\.0+)(?![0-9])',
                    '\1\2\3',
                    'g'
                )
            ELSE p_payload::text
        END,
        'UTF8'
    ))
$$;

COMMENT ON FUNCTION payment_outbox._payload_sha256(jsonb) IS
'sha256 of a payload''s canonical text: its jsonb text with trailing fractional '
'zeros of numbers removed, so that payloads equal as jsonb (1.0 and 1.00) hash alike.';

REVOKE ALL ON FUNCTION payment_outbox._payload_sha256(jsonb) FROM PUBLIC;
