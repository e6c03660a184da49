"""The `outbox` command: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from runner import bench, db, evidence, migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="outbox", description="payment-outbox runner")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser("migrate", help="apply sql/ to DATABASE_URL")
    migrate_cmd.add_argument("--dry-run", action="store_true", help="list what would be applied; change nothing")

    evidence_cmd = commands.add_parser(
        "evidence", help="run the guardrails and the proofs; write reports/<UTC time>-<sha>/ (DATABASE_URL optional)")
    evidence_cmd.add_argument("--pytest-args", default=None,
                              help='replace the test selection, e.g. --pytest-args="tests/proofs -k sql_proof"')
    evidence_cmd.add_argument("--reports-dir", type=Path, default=None, help="where the bundle goes (default: reports/)")
    evidence_sub = evidence_cmd.add_subparsers(dest="evidence_command")
    verify_cmd = evidence_sub.add_parser("verify", help="check a bundle against its MANIFEST.sha256")
    verify_cmd.add_argument("bundle", type=Path)

    bench_cmd = commands.add_parser(
        "bench", help="measure enqueue, dispatch and repair against a baseline INSERT (DATABASE_URL optional)")
    bench_cmd.add_argument("--quick", action="store_true", help="CI smoke: short runs, 10k/100k ledger only")
    bench_cmd.add_argument("--seconds", type=int, default=None, help="length of each timed run (10; quick: 1)")
    bench_cmd.add_argument("--output-dir", type=Path, default=None,
                           help="where bench.json/.txt/.png and plans.txt go (default: reports/bench/<UTC time>-<sha>/)")

    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            migrate.migrate(db.database_url(), dry_run=args.dry_run)
            return 0
        if args.command == "evidence":
            return _evidence(args)
        if args.command == "bench":
            return bench.main(quick=args.quick, seconds=args.seconds, output_dir=args.output_dir)
    except (db.ConfigurationError, migrate.MigrationError) as exc:
        print(f"outbox {args.command}: {exc}", file=sys.stderr)
        return 2
    except db.psycopg.Error as exc:
        print(f"outbox {args.command}: SQLSTATE {db.sqlstate(exc)}: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


def _evidence(args: argparse.Namespace) -> int:
    if args.evidence_command == "verify":
        result = evidence.verify(args.bundle)
        for line in result.lines():
            print(f"outbox evidence verify: {line}", file=sys.stderr)
        print(f"outbox evidence verify: {'OK' if result.ok else 'FAILED'}: {args.bundle}")
        return 0 if result.ok else 1
    selection = shlex.split(args.pytest_args) if args.pytest_args is not None else None
    _, passed = evidence.build(pytest_args=selection, reports_root=args.reports_dir or evidence.REPO / "reports")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
