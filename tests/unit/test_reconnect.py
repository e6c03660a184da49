"""Which errors make a long-running part reconnect, its backoff, its log lines, and how a URL's
hosts are named: without a database (the reconnections themselves are proven on the HA cluster,
tests/ha/)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from runner import db, reconnect


class _Stale(psycopg.DatabaseError):
    """The package's own SQLSTATE (PO002: a stale completion), as psycopg raises it."""

    sqlstate = "PO002"


@pytest.mark.parametrize(("error", "want"), [
    (errors.lookup("57P01")("terminating connection due to administrator command"), "shutdown"),
    (errors.lookup("57P02")("terminating connection because of crash of another server process"), "crash_shutdown"),
    (errors.lookup("57P03")("the database system is starting up"), "cannot_connect_now"),
    (errors.lookup("08006")("connection failure"), "connection_lost"),
    (errors.lookup("08000")("connection exception"), "connection_lost"),
    (errors.lookup("08003")("connection does not exist"), "connection_lost"),
    (errors.lookup("08001")("could not connect"), "connection_lost"),
    (errors.lookup("25006")("cannot execute INSERT in a read-only transaction"), "read_only"),
    (psycopg.OperationalError("server closed the connection unexpectedly"), "connection_lost"),
    (psycopg.OperationalError("consuming input failed: EOF detected"), "connection_lost"),
    (psycopg.InterfaceError("the connection is closed"), "connection_lost"),
    (db.ServerUnreachable("could not reach a writable server: tried 127.0.0.1:1, 127.0.0.1:2"), "connection_lost"),
    # The statement's own errors: the connection is fine, reconnecting would not help.
    (_Stale("attempt 1 of item ... is not the current claim"), None),
    (errors.lookup("40001")("could not serialize access"), None),
    (errors.lookup("42501")("permission denied for function repair_zombie_claims"), None),
    (errors.lookup("3F000")("schema payment_outbox does not exist"), None),
    (errors.lookup("28P01")("password authentication failed"), None),
    (ValueError("not a database error"), None),
], ids=lambda v: v if isinstance(v, str) or v is None else f"{type(v).__name__}-{db.sqlstate(v)}")
def test_cause_classifies_errors(error: BaseException, want: str | None) -> None:
    assert reconnect.cause(error) == want
    assert reconnect.is_reconnectable(error) is (want is not None)


def test_backoff_doubles_to_its_cap_and_starts_again_after_a_connection() -> None:
    backoff = reconnect.Backoff(first=0.2, cap=5.0)
    assert [backoff.next() for _ in range(8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.2
    many = reconnect.Backoff(first=0.2, cap=5.0, attempt=10_000)
    assert many.next() == 5.0  # no overflow after a long outage


class _Info:
    host, port, backend_pid = "127.0.0.1", 5433, 4242


class _Conn:
    info = _Info()


def test_one_line_per_attempt_then_where_it_landed() -> None:
    lines: list[dict[str, Any]] = []
    url = "host=127.0.0.1,127.0.0.1 port=5432,5433 dbname=x target_session_attrs=read-write"
    again = reconnect.Reconnect("worker", url, lines.append, extra={"worker_id": "w-1"})
    again.connected(_Conn())  # type: ignore[arg-type]  # a first connection says nothing
    waits = [again.failed(errors.lookup("57P01")("terminating")),
             again.failed(psycopg.OperationalError("connection refused"), "worker_error")]
    again.connected(_Conn())  # type: ignore[arg-type]
    assert waits == [0.2, 0.4]
    assert [(line["event"], line["attempt"], line["cause"], line["sqlstate"]) for line in lines[:2]] == [
        ("reconnecting", 1, "shutdown", "57P01"), ("worker_error", 2, "connection_lost", None)]
    assert all(line["hosts"] == ["127.0.0.1:5432", "127.0.0.1:5433"] and line["worker_id"] == "w-1"
               for line in lines[:2])
    assert lines[2] == {"event": "reconnected", "component": "worker", "attempts": 2, "host": "127.0.0.1",
                        "port": 5433, "pid": 4242, "worker_id": "w-1"}
    assert again.attempts == 0


@pytest.mark.parametrize(("url", "want"), [
    ("host=127.0.0.1,127.0.0.1 port=5432,5433 dbname=x", ["127.0.0.1:5432", "127.0.0.1:5433"]),
    ("postgresql://u@db1:5432,db2:5433/x?target_session_attrs=read-write", ["db1:5432", "db2:5433"]),
    ("host=a,b port=6432 dbname=x", ["a:6432", "b:6432"]),
    ("postgresql://u@/x?host=/tmp/socketdir&port=5432", ["local:5432"]),
])
def test_hosts_of_a_url(url: str, want: list[str]) -> None:
    assert db.hosts(url) == want


def test_unreachable_names_every_host_tried_and_what_the_url_wants() -> None:
    url = "host=127.0.0.1,127.0.0.1 port=1,2 dbname=x target_session_attrs=read-write"
    error = db.unreachable(url, psycopg.OperationalError("connection failed: session is read-only\nsecond line"))
    assert str(error).startswith("could not reach a writable server: tried 127.0.0.1:1, 127.0.0.1:2 ")
    assert "session is read-only second line" in str(error)
    assert isinstance(error, psycopg.OperationalError)  # a long-running part retries it like any lost connection


def test_connect_to_hosts_that_are_all_down_names_them() -> None:
    """Two closed ports on loopback (the kernel refuses at once): the error names both."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    url = f"host=127.0.0.1,127.0.0.1 port={ports[0]},{ports[1]} dbname=x connect_timeout=2"
    with pytest.raises(db.ServerUnreachable) as raised:
        db.connect(url)
    assert f"127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]}" in str(raised.value)
