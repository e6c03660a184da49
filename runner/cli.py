"""The `outbox` command: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import sys

from runner import db, migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="outbox", description="payment-outbox runner")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser("migrate", help="apply sql/ to DATABASE_URL")
    migrate_cmd.add_argument("--dry-run", action="store_true", help="list what would be applied; change nothing")

    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            migrate.migrate(db.database_url(), dry_run=args.dry_run)
            return 0
    except (db.ConfigurationError, migrate.MigrationError) as exc:
        print(f"outbox {args.command}: {exc}", file=sys.stderr)
        return 2
    except db.psycopg.Error as exc:
        print(f"outbox {args.command}: SQLSTATE {db.sqlstate(exc)}: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
