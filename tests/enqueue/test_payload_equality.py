"""Payload equality is jsonb equality (issue 12, finding 5), on generated payloads.

Each example enqueues a generated payload under a new key and dispatches the item, so that only
its stored hash is left to compare with; then it repeats the key with the same payload written
otherwise (numbers with other trailing zeros or in exponent notation, keys in another order), which
must return the item, and with a second generated payload, which must return the item exactly
when PostgreSQL says the two are equal as jsonb, and raise PO001 otherwise.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.client import Client, Role
from tests.conftest import Database
from tests.helpers import api
from tests.helpers.support import ProofRecord, role_connection, sqlstate_of

pytestmark = pytest.mark.proof

# The payload goes as JSON text written by hand (other trailing zeros, exponents, key orders): the
# text itself is the point, so this call is SQL, not the client (which would write its own JSON).
ENQUEUE = "SELECT outbox_id FROM payment_outbox.enqueue_payment_outbox(%s, 'bank-eq', %s, 'sepa', %s::jsonb)"

numbers = st.one_of(st.integers(-10**6, 10**6).map(Decimal),
                    st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False, allow_infinity=False))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(["1.0", "1.00", "EUR", "x", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "amount", "1.0"]), inner, max_size=3)),
    max_leaves=8)
payloads = st.dictionaries(st.sampled_from(["amount", "fee", "lines", "note", "n"]), values, min_size=1, max_size=4)


def render(value: Any, draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """JSON text of `value`, every number written one of several equal ways, keys shuffled."""
    if isinstance(value, Decimal):
        plain = format(value, "f")
        zeros = "0" * draw(st.integers(0, 3))
        written = draw(st.sampled_from([
            plain,
            plain + ("" if "." in plain else ".") + zeros if zeros else plain,
            f"{value.scaleb(-2)}e2" if value != 0 else "0e5",
        ]))
        return written
    if isinstance(value, dict):
        keys = draw(st.permutations(list(value)))
        return "{" + ", ".join(f"{json.dumps(k)}: {render(value[k], draw)}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v, draw) for v in value) + "]"
    return json.dumps(value)


def enqueue(conn: psycopg.Connection, key: str, text: str) -> str | None:
    """The item's id, or None when refused with PO001 (any other error fails the test)."""
    try:
        return str(conn.execute(ENQUEUE, (f"instr-{key}", key, text)).fetchone()[0])
    except psycopg.Error as exc:
        assert exc.sqlstate == "PO001", f"{text}: SQLSTATE {exc.sqlstate} {exc}"
        return None


def test_payloads_equal_as_jsonb_are_one_payment(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    seen = {"examples": 0, "equal_second_payloads": 0, "refused": 0}
    with role_connection(url, "outbox_ingest", name="eq-ingest") as ingest, \
            Client.connect(url, Role.EXECUTOR, name="eq-worker") as worker:

        @settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(st.data(), payloads, payloads)
        def example(data: st.DataObject, first: dict[str, Any], second: dict[str, Any]) -> None:
            key = uuid.uuid4().hex
            first_text = render(first, data.draw)
            outbox_id = enqueue(ingest, key, first_text)
            assert outbox_id is not None
            (claimed,) = worker.claim("eq", 1)
            worker.complete(claimed.outbox_id, claimed.attempt_no, "DISPATCHED", worker_id="eq")
            again = render(first, data.draw)
            assert enqueue(ingest, key, again) == outbox_id, f"{first_text} then {again}: not one payment"
            second_text = render(second, data.draw)
            equal = ingest.execute("SELECT %s::jsonb = %s::jsonb", (first_text, second_text)).fetchone()[0]
            got = enqueue(ingest, key, second_text)
            assert got == (outbox_id if equal else None), f"{first_text} then {second_text}: jsonb equal {equal}"
            seen["examples"] += 1
            seen["equal_second_payloads"] += int(equal)
            seen["refused"] += int(got is None)

        example()
    proof.observe(**seen)
    proof.check("every example ran", want=True, have=seen["examples"] >= 150)
    proof.check("check_invariants() is empty", want=[], have=api.violations(url))
    proof.check("a key of another payment stays refused", want="PO001", have=sqlstate_of(
        lambda: api.enqueue_once(url, "instr-x", "bank-eq", "key-x", payload={"amount": 1}) and
        api.enqueue_once(url, "instr-x", "bank-eq", "key-x", payload={"amount": 2})))
