"""The deploy/ examples run commands the runner accepts: an option renamed in runner/cli.py fails here."""
import argparse
import configparser
import shlex
from pathlib import Path

import pytest
import yaml

from runner import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _outbox_arguments(command: list[str]) -> list[str]:
    assert Path(command[0]).name == "outbox", command
    return command[1:]


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for child in action.choices.values():
            found += [child, *_subparsers(child)]
    return found


def _parses(arguments: list[str]) -> None:
    parser = cli.build_parser()
    # An example must spell options out: an abbreviation would stop parsing once an option is added.
    for command_parser in [parser, *_subparsers(parser)]:
        command_parser.allow_abbrev = False
    try:
        parser.parse_args(arguments)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"outbox {' '.join(arguments)}: refused by the runner's parser (exit {exc.code})")


@pytest.mark.parametrize("unit", sorted(DEPLOY.glob("systemd/*.service")), ids=lambda p: p.name)
def test_systemd_unit_runs_a_valid_outbox_command(unit: Path) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(unit)
    _parses(_outbox_arguments(shlex.split(parser["Service"]["ExecStart"])))


@pytest.mark.parametrize("manifest", sorted(DEPLOY.glob("kubernetes/*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifest_runs_a_valid_outbox_command(manifest: Path) -> None:
    document = yaml.safe_load(manifest.read_text())
    containers = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    for container in containers:
        _parses(_outbox_arguments(container["command"]))
