-- Assertion helpers for the SQL proofs, in pgTAP's spirit; installed only in scratch databases.
CREATE SCHEMA IF NOT EXISTS payment_outbox_proof;

COMMENT ON SCHEMA payment_outbox_proof IS
'Assertion helpers for sql/tests proofs. Test databases only; never part of the package.';

CREATE OR REPLACE FUNCTION payment_outbox_proof.ok(p_condition boolean, p_description text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_condition IS NOT TRUE THEN
        RAISE EXCEPTION 'not ok: %', p_description USING ERRCODE = 'PT001';
    END IF;
    RAISE NOTICE 'ok: %', p_description;
END;
$$;

COMMENT ON FUNCTION payment_outbox_proof.ok(boolean, text) IS
'Passes when p_condition is true; raises PT001 naming the proof otherwise.';

CREATE OR REPLACE FUNCTION payment_outbox_proof.is(p_have anyelement, p_want anyelement, p_description text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_have IS DISTINCT FROM p_want THEN
        RAISE EXCEPTION 'not ok: %: have %, want %', p_description, p_have, p_want USING ERRCODE = 'PT001';
    END IF;
    RAISE NOTICE 'ok: % (%)', p_description, p_have;
END;
$$;

COMMENT ON FUNCTION payment_outbox_proof.is(anyelement, anyelement, text) IS
'Passes when p_have is not distinct from p_want; the failure names both.';

CREATE OR REPLACE FUNCTION payment_outbox_proof.throws_ok(p_sql text, p_sqlstate text, p_description text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    BEGIN
        EXECUTE p_sql;
    EXCEPTION WHEN OTHERS THEN
        IF sqlstate = p_sqlstate THEN
            RAISE NOTICE 'ok: % (SQLSTATE %: %)', p_description, sqlstate, sqlerrm;
            RETURN;
        END IF;
        RAISE EXCEPTION 'not ok: %: have SQLSTATE % (%), want SQLSTATE %',
            p_description, sqlstate, sqlerrm, p_sqlstate USING ERRCODE = 'PT001';
    END;
    RAISE EXCEPTION 'not ok: %: have success, want SQLSTATE %', p_description, p_sqlstate
        USING ERRCODE = 'PT001';
END;
$$;

COMMENT ON FUNCTION payment_outbox_proof.throws_ok(text, text, text) IS
'Passes when p_sql raises p_sqlstate; the statement''s effects are rolled back either way.';

CREATE OR REPLACE FUNCTION payment_outbox_proof.row_counts()
RETURNS text
LANGUAGE sql
SECURITY DEFINER
AS $$
    SELECT format(
        'pending=%s attempts=%s allocators=%s next_ids=%s',
        (SELECT count(*) FROM payment_outbox.payment_outbox_pending),
        (SELECT count(*) FROM payment_outbox.payment_outbox_attempts),
        (SELECT count(*) FROM payment_outbox.participant_outbox_sequences),
        (SELECT coalesce(sum(next_sequence_id), 0) FROM payment_outbox.participant_outbox_sequences)
    )
$$;

COMMENT ON FUNCTION payment_outbox_proof.row_counts() IS
'A fingerprint of the package tables, to prove that a refused call wrote nothing.';

CREATE OR REPLACE FUNCTION payment_outbox_proof.error_message(p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE p_sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN sqlerrm;
END;
$$;

COMMENT ON FUNCTION payment_outbox_proof.error_message(text) IS
'The message of the error p_sql raises, NULL when it succeeds; its effects are rolled back either way.';

CREATE OR REPLACE FUNCTION payment_outbox_proof.raises(p_sql text)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT payment_outbox_proof.error_message(p_sql) IS NOT NULL
$$;

COMMENT ON FUNCTION payment_outbox_proof.raises(text) IS
'True when p_sql raises an error; its effects are rolled back either way.';

CREATE OR REPLACE FUNCTION payment_outbox_proof.plan(p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_line text;
    v_plan text := '';
BEGIN
    FOR v_line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || p_sql LOOP
        v_plan := v_plan || v_line || E'\n';
    END LOOP;
    RETURN v_plan;
END;
$$;

COMMENT ON FUNCTION payment_outbox_proof.plan(text) IS
'The text of EXPLAIN (VERBOSE, COSTS OFF) p_sql: the plan the server would run, not run.';

GRANT USAGE ON SCHEMA payment_outbox_proof TO public;
