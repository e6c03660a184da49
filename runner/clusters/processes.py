"""What the throwaway TCP clusters share: free loopback ports, processes run as the server's OS
user when we are root, and bounded polling (never a bare sleep for synchronisation)."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from runner.clusters.embedded import ClusterError, _server_account

T = TypeVar("T")
POLL_SECONDS = 0.1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the kernel's choice, never a fixed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def account() -> pwd.struct_passwd | None:
    """The OS user the servers run as: None for ourselves, the `postgres` system user as root."""
    return _server_account()


def as_account(who: pwd.struct_passwd | None, cwd: Path) -> dict[str, Any]:
    if who is None:
        return {"cwd": str(cwd)}
    return {"user": who.pw_uid, "group": who.pw_gid, "extra_groups": [], "cwd": str(cwd)}


def give(path: Path, who: pwd.struct_passwd | None) -> None:
    """Hand a file or directory we created to the server's account (0700 for a directory)."""
    if who is not None:
        os.chown(path, who.pw_uid, who.pw_gid)
    if path.is_dir():
        path.chmod(0o700)


def start(command: list[str], log: Path, who: pwd.struct_passwd | None, cwd: Path,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A long-running process, its output appended to `log`, in a session of its own (a Ctrl-C at
    the terminal reaches us, and we stop it)."""
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, **as_account(who, cwd))


def stop(process: subprocess.Popen[bytes] | None, seconds: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `seconds` (at once for 0); a process already gone is fine."""
    if process is None or process.poll() is not None:
        return
    if seconds == 0:
        process.kill()
        process.wait(10)
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def wait_for(what: str, probe: Callable[[], T | None], seconds: float, *,
              log: Callable[[], str] = lambda: "") -> T:
    """Polls `probe` until it returns something other than None (or False), at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {seconds:g} s waiting for {what}\n{log()}")
        time.sleep(POLL_SECONDS)  # polling an outside process's state with a bound, not ordering threads


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def kill_orphans(datadir: Path) -> list[int]:
    """SIGKILL what a killed postmaster left running of its server (a backend or walsender that has
    not noticed yet, one a proof stopped with SIGSTOP): every process whose working directory is
    `datadir`, as a server's processes' is. Returns their pids."""
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != datadir:
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            killed.append(int(entry.name))
        except OSError:
            continue
    return killed
