"""runner/ by concern, and the wheel's share of it: every subpackage is either in the wheel
(pyproject.toml lists packages one by one) or a tool of a checkout, and nothing the wheel carries
imports a checkout tool when it loads (cli.py imports them inside their commands).
tests/migrations/test_wheel.py builds and installs the wheel and checks the same from outside."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The tools of a checkout: throwaway clusters, the proof harness and release points, evidence,
# bench, linters. They need the repository (tests/, releases/, .squawk.toml, git) or a server to throw away.
CHECKOUT_ONLY = ("runner.clusters", "runner.harness", "runner.evidence", "runner.bench", "runner.lint")


def wheel_packages() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_runner_subpackage_is_in_the_wheel_or_a_checkout_tool() -> None:
    found = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "runner").rglob("__init__.py")}
    listed = wheel_packages()
    assert found - listed - set(CHECKOUT_ONLY) == set(), "a subpackage neither in the wheel nor a checkout tool"
    assert listed & set(CHECKOUT_ONLY) == set()
    assert set(CHECKOUT_ONLY) <= found, "a checkout tool named here that runner/ no longer has"


def load_time_imports(module: Path) -> set[str]:
    """The runner modules `module` imports at its top level (function bodies are imported when called)."""
    names: set[str] = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update({node.module} | {f"{node.module}.{alias.name}" for alias in node.names})
    return {name for name in names if name.startswith("runner")}


def test_no_module_of_the_wheel_imports_a_checkout_tool_when_it_loads() -> None:
    modules = [module for package in wheel_packages() - {"runner.package_sql"}
               for module in (REPO / package.replace(".", "/")).glob("*.py")]
    assert len(modules) > 20
    offending = {str(module.relative_to(REPO)): sorted(name for name in load_time_imports(module)
                                                       if name.startswith(CHECKOUT_ONLY))
                 for module in modules}
    assert {module: names for module, names in offending.items() if names} == {}


def test_the_public_worker_import_still_works() -> None:
    """README's minimal worker: `from runner.worker import Worker, RailOutcome` (a rail's types too)."""
    from runner.worker import ClaimedItem, Rail, RailError, RailOutcome, Worker
    from runner.worker.reference import Worker as ReferenceWorker

    assert Worker is ReferenceWorker
    assert all(callable(name) or name is Rail for name in (ClaimedItem, RailError, RailOutcome))
