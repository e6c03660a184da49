"""The `outbox` command: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from runner import db
from runner.client import Role
from runner.operator import metrics, quarantine, rail, repair, show, threshold
from runner.schema import citus as citus_schema
from runner.schema import ledger_conversion, lockwait, migrate, package, retention
from runner.worker import process as worker_process

# Commands that need a session of their own, and why: they refuse a URL through a connection
# pooler (runner/db.py require_direct; docs/operations.md "High availability").
SESSION_COMMANDS = {
    "migrate": "holds a session advisory lock for the whole run and sets lock_timeout for its session",
    "convert-ledger": "holds a session advisory lock and session settings across its transactions",
    "retention": "sets lock_timeout for its session and detaches partitions over several transactions",
}

# Tools of a checkout, not in the wheel (pyproject.toml): imported only when their command runs, so
# an installed wheel says they need a checkout instead of failing to import at start.
CHECKOUT_COMMANDS = ("evidence", "releases", "lint", "bench")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option of `outbox` (the deploy/ examples are checked against it)."""
    parser = argparse.ArgumentParser(prog="outbox", description="payment-outbox runner")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser("migrate", help="apply sql/ to DATABASE_URL")
    migrate_cmd.add_argument("--dry-run", action="store_true", help="list what would be applied; change nothing")
    migrate_cmd.add_argument("--no-convert-ledger", action="store_true",
                             help="leave the ledger unpartitioned for now; `outbox convert-ledger` partitions it later")
    migrate_cmd.add_argument(
        "--citus", action="store_true",
        help="on a Citus coordinator: distribute the package by participant_id (docs/scale-out.md)")
    migrate_cmd.add_argument(
        "--lock-timeout", type=float, default=None, metavar="SECONDS",
        help=f"longest wait for any one lock (lock_timeout); default ${lockwait.TIMEOUT_VARIABLE}, "
             f"else {lockwait.DEFAULT_TIMEOUT_SECONDS:g}")
    migrate_cmd.add_argument(
        "--lock-retries", type=int, default=None, metavar="N",
        help=f"runs again after a lock timeout, with backoff 1 s, 2 s, 4 s, ... (at most 30 s); "
             f"default ${lockwait.RETRIES_VARIABLE}, else {lockwait.DEFAULT_RETRIES}")

    evidence_cmd = commands.add_parser(
        "evidence", help="run the guardrails and the proofs; write reports/<UTC time>-<sha>/ (DATABASE_URL optional)")
    evidence_cmd.add_argument("--pytest-args", default=None,
                              help='replace the test selection, e.g. --pytest-args="tests/sql -k sql_proof"')
    evidence_cmd.add_argument("--reports-dir", type=Path, default=None, 
                              help="where the bundle goes (default: reports/)")
    evidence_sub = evidence_cmd.add_subparsers(dest="evidence_command")
    verify_cmd = evidence_sub.add_parser("verify", help="check a bundle against its MANIFEST.sha256")
    verify_cmd.add_argument("bundle", type=Path)

    releases_cmd = commands.add_parser("releases", help="the release points of sql/ the upgrade proofs start from")
    releases_sub = releases_cmd.add_subparsers(dest="releases_command", required=True)
    releases_sub.add_parser("verify", help="check every snapshot in releases/ against releases/releases.toml")
    add_cmd = releases_sub.add_parser("add", help="snapshot sql/ of COMMIT as releases/NAME/sql/; print its entry")
    add_cmd.add_argument("name", help="the number of the point's last versioned file, e.g. 0009")
    add_cmd.add_argument("commit", help="the last commit of main with exactly those versioned files")

    _add_repair_commands(commands)
    _add_worker_command(commands)
    _add_quarantine_command(commands)
    _add_rail_command(commands)
    show_cmd = commands.add_parser(
        "show", help="an item's history as a timeline: outbox show OUTBOX_ID | INSTRUCTION_ID IDEMPOTENCY_KEY "
                     "(DATABASE_URL)")
    show_cmd.add_argument("item", nargs="+", metavar="ID", help="the outbox_id, or the instruction id and the key")
    show_cmd.add_argument("--json", action="store_true", help="one JSON object per state change, one per line")
    show_cmd.add_argument("--role", choices=("outbox_readonly", "outbox_auditor"), default="outbox_readonly",
                          help="the runtime role to act as")
    bench_cmd = commands.add_parser(
        "bench", help="measure enqueue, dispatch and repair against a baseline INSERT (DATABASE_URL optional)")
    bench_cmd.add_argument("--quick", action="store_true", help="CI smoke: short runs, 10k/100k ledger only")
    bench_cmd.add_argument("--seconds", type=int, default=None, help="length of each timed run (10; quick: 1)")
    bench_cmd.add_argument("--output-dir", type=Path, default=None,
                           help="where bench.json/.txt/.png and plans.txt go "
                                "(default: reports/bench/<UTC time>-<sha>/)")

    _add_ledger_commands(commands)

    lint_cmd = commands.add_parser(
        "lint", help="plpgsql: plpgsql_check over every plpgsql function (DATABASE_URL optional; needs the "
                     "extension); migrations: squawk over sql/tables/ with the warnings accepted in .squawk.toml")
    lint_cmd.add_argument("linter", choices=("plpgsql", "migrations"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in SESSION_COMMANDS:
            db.require_direct(db.database_url(), args.command, SESSION_COMMANDS[args.command])
        if args.command == "migrate":
            policy = lockwait.resolve(args.lock_timeout, args.lock_retries)
            migrate.migrate(db.database_url(), dry_run=args.dry_run, policy=policy,
                            convert_ledger=not args.no_convert_ledger)
            if not args.dry_run:
                citus_schema.install(db.database_url(), required=args.citus)
            return 0
        if args.command == "convert-ledger":
            policy = lockwait.resolve(args.lock_timeout, args.lock_retries)
            ledger_conversion.convert(db.database_url(), policy=policy, ahead=args.ahead)
            return 0
        if args.command == "retention":
            policy = lockwait.resolve(args.lock_timeout, args.lock_retries)
            return retention.run(db.database_url(), retention.Options(
                window=args.window, export_dir=args.export, dry_run=args.dry_run, ahead=args.ahead), policy=policy)
        if args.command in CHECKOUT_COMMANDS:
            return _checkout_command(args)
        if args.command == "repair":
            return _repair(args)
        if args.command == "metrics":
            return _metrics(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "show":
            return _show(args)
        if args.command == "quarantine":
            return _quarantine(args)
        if args.command == "rail":
            return _rail(args)
    except lockwait.GaveUp as exc:  # outbox migrate, convert-ledger, retention: nothing more was changed
        print(f"outbox {args.command}: {exc}", file=sys.stderr)
        return 3
    except (db.ConfigurationError, migrate.MigrationError, citus_schema.CitusInstallError,
            threshold.ThresholdError, package.PackageError,
            lockwait.PolicyError, retention.RetentionRefused) as exc:
        print(f"outbox {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command needs, unreadable or gone
        print(f"outbox {args.command}: {exc}", file=sys.stderr)
        return 2
    except db.ServerUnreachable as exc:  # every host down, or read-only where the URL wants read-write
        print(f"outbox {args.command}: {exc}", file=sys.stderr)
        return 2
    except db.psycopg.Error as exc:
        print(f"outbox {args.command}: SQLSTATE {db.sqlstate(exc)}: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


def _checkout_command(args: argparse.Namespace) -> int:
    """evidence, releases, lint, bench: run from a checkout; from the wheel, exit 2 saying so."""
    try:
        from runner.clusters.embedded import ClusterError
        from runner.harness.releases import ReleaseError
        from runner.lint.plpgsql import LintError as PlpgsqlLintError
        from runner.lint.squawk import LintError as SquawkLintError
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("runner."):
            raise
        print(f"outbox {args.command}: needs a checkout of payment-outbox: the installed wheel carries what a DBA, "
              f"a worker and an operator run, not the proof, evidence, bench and lint tools ({exc.name} is "
              f"missing); run it in a clone of the repository (README.md, Layout)",
              file=sys.stderr)
        return 2
    try:
        if args.command == "evidence":
            return _evidence(args)
        if args.command == "releases":
            return _releases(args)
        if args.command == "lint":
            return _lint(args)
        return _bench(args)
    except (ClusterError, ReleaseError, PlpgsqlLintError, SquawkLintError) as exc:
        print(f"outbox {args.command}: {exc}", file=sys.stderr)
        return 2


def _lint(args: argparse.Namespace) -> int:
    from runner.lint import plpgsql, squawk

    return plpgsql.main() if args.linter == "plpgsql" else squawk.main()


def _bench(args: argparse.Namespace) -> int:
    from runner.bench import run as bench

    return bench.main(quick=args.quick, seconds=args.seconds, output_dir=args.output_dir)


def _evidence(args: argparse.Namespace) -> int:
    from runner.evidence import bundle as evidence

    if args.evidence_command == "verify":
        result = evidence.verify(args.bundle)
        for line in result.lines():
            print(f"outbox evidence verify: {line}", file=sys.stderr)
        print(f"outbox evidence verify: {'OK' if result.ok else 'FAILED'}: {args.bundle}")
        return 0 if result.ok else 1
    selection = shlex.split(args.pytest_args) if args.pytest_args is not None else None
    _, passed = evidence.build(pytest_args=selection, reports_root=args.reports_dir or evidence.REPO / "reports")
    return 0 if passed else 1


def _releases(args: argparse.Namespace) -> int:
    from runner.harness import releases

    if args.releases_command == "add":
        print(releases.snapshot(args.name, args.commit), end="")
        print(f"# add the entry above to {releases.MANIFEST.relative_to(releases.REPO)}", file=sys.stderr)
        return 0
    problems = [problem for point in releases.points() for problem in releases.verify(point)]
    for problem in problems:
        print(f"outbox releases verify: {problem}", file=sys.stderr)
    print(f"outbox releases verify: {'FAILED' if problems else 'OK'}: {len(releases.points())} release point(s)")
    return 1 if problems else 0


# --- repair and metrics: parsing here, the work in runner/operator/repair.py and metrics.py ---

def _threshold_argument(text: str) -> int:
    try:
        return threshold.parse(text, source="--threshold-seconds")
    except threshold.ThresholdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535 (0: any free port), got {text!r}")
    return int(text)


def _add_ledger_commands(commands: argparse._SubParsersAction) -> None:
    convert_cmd = commands.add_parser(
        "convert-ledger", help="as the package owner: partition the ledger online (outbox migrate runs it too), "
                               "then create its monthly partitions ahead")
    retention_cmd = commands.add_parser(
        "retention", help="as the package owner: detach and drop (or export, then drop) every ledger partition "
                          "older than the window whose items are all terminal; name the items that keep the others")
    retention_cmd.add_argument("--window", required=True,
                               help="keep partitions younger than this PostgreSQL interval, "
                                    "e.g. '13 months' (at least 1 day)")
    retention_cmd.add_argument("--export", type=Path, default=None, metavar="DIR",
                               help="write each partition's rows to DIR/<partition>.csv before dropping it")
    retention_cmd.add_argument("--dry-run", action="store_true",
                               help="say what would be retired and what is kept; change nothing "
                                    "(outbox_operator may run it)")
    for cmd in (convert_cmd, retention_cmd):
        cmd.add_argument("--ahead", default=ledger_conversion.DEFAULT_AHEAD,
                         help="create the ledger's monthly partitions this far ahead (default: 3 months)")
        cmd.add_argument("--lock-timeout", type=float, default=None,
                         help=f"seconds a statement may wait for a lock (default {lockwait.DEFAULT_TIMEOUT_SECONDS:g}, "
                              f"or {lockwait.TIMEOUT_VARIABLE})")
        cmd.add_argument("--lock-retries", type=int, default=None,
                         help=f"retries after a lock timeout (default {lockwait.DEFAULT_RETRIES}, "
                              f"or {lockwait.RETRIES_VARIABLE})")


def _add_repair_commands(commands: argparse._SubParsersAction) -> None:
    threshold_help = (f"seconds a DISPATCHING claim may last before it counts as a zombie; default "
                      f"${threshold.ENVIRONMENT_VARIABLE} (read at the start of every cycle), else "
                      f"{threshold.DEFAULT_SECONDS}")
    repair_cmd = commands.add_parser(
        "repair", help="requeue zombie claims as outbox_repair (DATABASE_URL); JSON log lines on stdout")
    repair_cmd.add_argument("--threshold-seconds", type=_threshold_argument, default=None, help=threshold_help)
    repair_cmd.add_argument("--batch-size", type=_positive, default=repair.DEFAULT_BATCH_SIZE,
                            help="items per repair transaction; a cycle repeats batches until one is short")
    repair_cmd.add_argument("--loop", action="store_true",
                            help="repeat cycles until SIGTERM or SIGINT (the cycle in progress finishes)")
    repair_cmd.add_argument("--interval-seconds", type=float, default=30.0, help="pause between cycles with --loop")
    repair_cmd.add_argument("--metrics-port", type=_port, default=None,
                            help="with --loop, serve Prometheus metrics on this port (/metrics)")
    repair_cmd.add_argument("--metrics-addr", default="0.0.0.0", help="address for --metrics-port")

    metrics_cmd = commands.add_parser(
        "metrics", help="print the queue, growth (sizes per partition, vacuum horizon) and repair metrics in "
                        "Prometheus text format (DATABASE_URL)")
    metrics_cmd.add_argument("--threshold-seconds", type=_threshold_argument, default=None, help=threshold_help)
    metrics_cmd.add_argument("--role", choices=("outbox_readonly", "outbox_repair"), default="outbox_readonly",
                             help="the runtime role to act as")


def _repair(args: argparse.Namespace) -> int:
    if args.metrics_port is not None and not args.loop:
        print("outbox repair: --metrics-port needs --loop (one cycle ends before a scrape)", file=sys.stderr)
        return 2
    if not math.isfinite(args.interval_seconds) or args.interval_seconds < 0:
        print("outbox repair: --interval-seconds must be a finite number of seconds, not negative", file=sys.stderr)
        return 2
    options = repair.Options(threshold_override=args.threshold_seconds, batch_size=args.batch_size, loop=args.loop,
                             interval_seconds=args.interval_seconds, metrics_port=args.metrics_port,
                             metrics_addr=args.metrics_addr)
    code = repair.run(db.database_url(), options)
    if code != 0:
        print(f"outbox repair: failed (exit {code}); the repair_failed log line names the cause", file=sys.stderr)
    return code


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, not negative, got {text!r}")
    return value


def _add_worker_command(commands: argparse._SubParsersAction) -> None:
    worker_cmd = commands.add_parser(
        "worker", help="claim, dispatch to a rail and complete until SIGTERM/SIGINT, then drain (DATABASE_URL); "
                       "JSON log lines on stdout")
    worker_cmd.add_argument("--rail", required=True, metavar="MODULE:CALLABLE",
                            help="the rail: a callable taking a ClaimedItem and returning a RailOutcome "
                                 "(runner/worker/reference.py); imported with the working directory on the path")
    worker_cmd.add_argument("--batch-size", type=_positive, default=10, help="items per claim")
    worker_cmd.add_argument("--concurrency", type=_positive, default=1,
                            help="worker threads, each with its own connection and worker id")
    worker_cmd.add_argument("--poll-interval-seconds", type=_seconds, default=1.0,
                            help="wait after a claim that found nothing")
    worker_cmd.add_argument("--listen", action="store_true",
                            help="also LISTEN for enqueue notifications, which end a wait at once (the operator "
                                 "setting notify_on_enqueue sends them); polling goes on regardless. Behind "
                                 "PgBouncer in transaction pooling, give --listen-url")
    worker_cmd.add_argument("--listen-url", default=None, metavar="URL",
                            help="with --listen: a direct URL of the primary for the LISTEN connection (LISTEN "
                                 "cannot pass a transaction pooler); default DATABASE_URL")
    worker_cmd.add_argument("--worker-id", default=None,
                            help="prefix of the worker ids (default: host-pid); thread n is <prefix>-<n>")
    worker_cmd.add_argument("--metrics-port", type=_port, default=None,
                            help="serve Prometheus metrics on this port (/metrics)")
    worker_cmd.add_argument("--metrics-addr", default="0.0.0.0", help="address for --metrics-port")
    worker_cmd.add_argument("--buckets", type=_buckets, default=None, metavar="all|N,N,...",
                            help="on Citus: claim bucket by bucket from these buckets of outbox_buckets() "
                                 "(log in as a member of outbox_executor; docs/scale-out.md)")


def _buckets(value: str) -> tuple[int, ...]:
    """--buckets: 'all' (an empty tuple) or bucket numbers separated by commas."""
    if value.strip() == "all":
        return ()
    try:
        numbers = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"want 'all' or bucket numbers like 0,1,2, got {value!r}") from None
    if any(n < 0 for n in numbers):
        raise argparse.ArgumentTypeError(f"bucket numbers are 0 or more, got {value!r}")
    return numbers


def _worker(args: argparse.Namespace) -> int:
    options = worker_process.Options(rail=args.rail, batch_size=args.batch_size, concurrency=args.concurrency,
                                     poll_interval_seconds=args.poll_interval_seconds,
                                     metrics_port=args.metrics_port, metrics_addr=args.metrics_addr,
                                     worker_id=args.worker_id, listen=args.listen, listen_url=args.listen_url,
                                     buckets=args.buckets)
    return worker_process.run(db.database_url(), options)


def _add_rail_command(commands: argparse._SubParsersAction) -> None:
    rail_cmd = commands.add_parser(
        "rail", help="pause or resume a rail's claims, or list the paused rails (DATABASE_URL); "
                     "pause and resume act as outbox_operator and are recorded in payment_outbox_rail_history")
    rail_sub = rail_cmd.add_subparsers(dest="rail_command", required=True)
    pause_cmd = rail_sub.add_parser("pause", help="claims take none of the rail's items until it is resumed; "
                                                  "items in flight finish")
    pause_cmd.add_argument("rail_type", help="the rail, as items carry it in rail_type")
    pause_cmd.add_argument("--reason", required=True, help="why (kept in the rail history)")
    pause_cmd.add_argument("--actor", required=True, help="who asks for it: a person or a ticket (kept in the history)")
    resume_cmd = rail_sub.add_parser("resume", help="the rail's items are claimable again, in their due order")
    resume_cmd.add_argument("rail_type", help="the rail, as items carry it in rail_type")
    resume_cmd.add_argument("--actor", required=True, help="who asks for it (kept in the history)")
    list_cmd = rail_sub.add_parser("list", help="the rails paused now, with reason, actor, waiting and due items")
    list_cmd.add_argument("--json", action="store_true", help="one JSON object per paused rail, one per line")
    list_cmd.add_argument("--role", choices=("outbox_readonly", "outbox_repair", "outbox_operator"),
                          default="outbox_readonly", help="the runtime role to act as")


def _rail(args: argparse.Namespace) -> int:
    url = db.database_url()
    if args.rail_command == "pause":
        sys.stdout.write(rail.change_line(rail.pause(url, args.rail_type, args.reason, args.actor), "paused"))
        return 0
    if args.rail_command == "resume":
        sys.stdout.write(rail.change_line(rail.resume(url, args.rail_type, args.actor), "resumed"))
        return 0
    rails = rail.paused(url, Role(args.role))
    sys.stdout.write(rail.as_json(rails) if args.json else rail.table(rails))
    return 0


def _show(args: argparse.Namespace) -> int:
    if len(args.item) > 2:
        print("outbox show: give an outbox_id, or an instruction id and an idempotency key", file=sys.stderr)
        return 2
    try:
        rows = show.history(db.database_url(), args.item, Role(args.role))
    except ValueError as exc:
        print(f"outbox show: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(show.as_json(rows) if args.json else show.timeline(rows))
    return 0


def _add_quarantine_command(commands: argparse._SubParsersAction) -> None:
    quarantine_cmd = commands.add_parser(
        "quarantine", help="items QUARANTINED (retries exhausted, or a zombie's unknown outcome): list them, "
                           "release or fail one, as outbox_operator (DATABASE_URL)")
    sub = quarantine_cmd.add_subparsers(dest="quarantine_command", required=True)
    list_cmd = sub.add_parser("list", help="every quarantined item, oldest first, with when and why")
    list_cmd.add_argument("--json", action="store_true", help="one JSON object per item, one per line")
    for name, text in (("release", "make the item due again now, same idempotency key, fresh attempt budget"),
                       ("fail", "record the item FAILED (terminal)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("item", metavar="ID", help="the outbox_id")
        cmd.add_argument("--reason", required=True, help="why, kept in the ledger (e.g. what the rail said)")
        cmd.add_argument("--actor", required=True, help="who decides, kept in the ledger")


def _quarantine(args: argparse.Namespace) -> int:
    url = db.database_url()
    if args.quarantine_command == "list":
        rows = quarantine.items(url)
        sys.stdout.write(quarantine.as_json(rows) if args.json else quarantine.table(rows))
        return 0
    decide = quarantine.release if args.quarantine_command == "release" else quarantine.fail
    try:
        row = decide(url, args.item, reason=args.reason, actor=args.actor)
    except ValueError as exc:
        print(f"outbox quarantine: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(quarantine.decision(row))
    return 0


def _metrics(args: argparse.Namespace) -> int:
    seconds = threshold.resolve(args.threshold_seconds)
    registry = metrics.RepairMetrics()
    with db.connection(db.database_url(), application_name="outbox metrics", role=args.role) as conn:
        registry.record_gauges(metrics.read_queue_gauges(conn, seconds), seconds)
        registry.record_growth(metrics.read_growth(conn))
    sys.stdout.write(registry.exposition())
    return 0


if __name__ == "__main__":
    sys.exit(main())
