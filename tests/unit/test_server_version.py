"""outbox migrate refuses a server older than PostgreSQL 14, before it changes anything (the
refusal on a real server: tests/migrations/test_migrate.py)."""

from __future__ import annotations

import pytest

from runner import db


@pytest.mark.parametrize(("version_num", "readable"), [(130012, "13.12"), (90624, "9.6.24"), (139999, "13.9999")])
def test_a_server_older_than_14_is_refused_with_its_version(version_num: int, readable: str) -> None:
    with pytest.raises(db.UnsupportedServerError) as error:
        db.check_server_version(version_num)
    message = str(error.value)
    assert f"PostgreSQL {readable};" in message and "PostgreSQL 14 or later" in message, message
    assert "Nothing was changed" in message, message


@pytest.mark.parametrize("version_num", [140000, 140023, 150019, 180006, 190000])
def test_14_and_later_are_accepted(version_num: int) -> None:
    refused: db.UnsupportedServerError | None = None
    try:
        db.check_server_version(version_num)
    except db.UnsupportedServerError as exc:
        refused = exc
    assert refused is None, f"server_version_num {version_num} was refused: {refused}"
    assert version_num >= db.MINIMUM_SERVER_VERSION == 140000, db.MINIMUM_SERVER_VERSION


def test_the_refusal_is_a_configuration_error_the_cli_reports() -> None:
    assert issubclass(db.UnsupportedServerError, db.ConfigurationError)
