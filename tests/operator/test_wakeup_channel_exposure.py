"""What holds of the wake-up channel (issue 25, item 10).

- A repeat of a known key sends no notification: it inserts nothing, and the enqueue's INSERT
  does not run (the docs said it did and sent one).
- PostgreSQL has no privilege on LISTEN or NOTIFY: any login, without a package role, can listen
  on the channel (it learns when enqueues commit, nothing else: the payload is empty) and can
  notify on it (a worker then claims early and finds what a poll would have found).
- A listener that stays in a transaction holds the server's notification queue; full, every
  NOTIFY fails and, with wake-up on, every enqueue. payment_outbox_queue_metrics exports
  notification_queue_usage (pg_notification_queue_usage()) so an alert fires first.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from runner.client import Client, Role
from runner.operator import metrics
from tests.conftest import Database
from tests.helpers.support import ProofRecord
from tests.operator.test_wakeup import CHANNEL, _notified

pytestmark = pytest.mark.proof

OUTSIDER = "outbox_i25_listener"


def test_what_the_channel_tells_and_to_whom(clean_database: Database, proof: ProofRecord) -> None:
    url = clean_database.url
    with psycopg.connect(url, autocommit=True) as owner:  # setup: a login with no package role
        if owner.execute("SELECT FROM pg_roles WHERE rolname = %s", (OUTSIDER,)).fetchone() is None:
            owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(OUTSIDER)))
    with Client.connect(url, Role.OPERATOR, name="operator") as operator:
        operator.set_settings(notify_on_enqueue=True)
    try:
        with Client.connect(url, Role.INGEST, name="ingest") as client, \
                psycopg.connect(psycopg.conninfo.make_conninfo(url, user=OUTSIDER), autocommit=True) as outsider:
            client.conn.execute(f"LISTEN {CHANNEL}")
            outsider.execute(f"LISTEN {CHANNEL}")
            client.enqueue("w-1", "bank-w", "w/1", "sepa", {})
            proof.check("a repeat of a known key: no notification", want=[],
                        have=_notified(client.conn, lambda: client.enqueue("w-1", "bank-w", "w/1", "sepa", {})))
            seen = _notified(outsider, lambda: outsider.execute(f"NOTIFY {CHANNEL}"))
            proof.check("a login without a package role listens and notifies on the channel (no privilege exists)",
                        want=[(CHANNEL, ""), (CHANNEL, "")], have=sorted(seen))
        with Client.connect(url, Role.READONLY, name="metrics") as reader:
            gauges = metrics.read_queue_gauges(reader.conn, 60)
        proof.check("notification_queue_usage is read, a fraction", want=True,
                    have=0.0 <= gauges.notification_queue_usage <= 1.0)
    finally:
        with Client.connect(url, Role.OPERATOR, name="operator") as operator:
            operator.set_settings(notify_on_enqueue=False)
