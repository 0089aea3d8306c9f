"""Child processes of the local cluster: start, probe, stop in order, never leak.

Each child leads its own session, so a Ctrl-C in the terminal reaches only the parent,
which then stops the children in its own order. On Linux each child also gets SIGTERM if
the parent dies, even by SIGKILL, so nothing outlives a crashed `runcluster`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


class StartError(Exception):
    """A child exited or did not become ready during start-up; the message shows its log."""


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn: the child gets SIGTERM when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Child:
    """One process we started, in its own session, with its output in `log_path`."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    reported_exit: bool = False
    _log: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def spawn(
        cls, name: str, cmd: Sequence[str], *, cwd: Path, env: dict[str, str] | None, log_path: Path
    ) -> Child:
        log = log_path.open("wb")
        try:
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        except BaseException:
            log.close()
            raise
        return cls(name=name, proc=proc, log_path=log_path, _log=log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals, *, group: bool = False) -> None:
        """Signal the process, or its whole group; never a pid that was already reaped."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status code of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_until(ready: Callable[[], bool], *, what: str, children: Sequence[Child], timeout: float) -> None:
    """Poll `ready` until it holds; fail at once if one of `children` exits, or after `timeout`."""
    deadline = time.monotonic() + timeout
    while not ready():
        for child in children:
            if not child.alive():
                raise StartError(
                    f"{child.name} exited during start-up (exit code {child.proc.returncode}); "
                    f"log: {child.log_path}\n{child.log_tail()}"
                )
        if time.monotonic() > deadline:
            logs = ", ".join(str(c.log_path) for c in children)
            raise StartError(f"{what} not ready after {timeout:g} s; logs: {logs}")
        time.sleep(POLL_S)


def terminate(children: Sequence[Child], *, timeout: float, say: Callable[[str], None]) -> None:
    """SIGTERM all at once (they stop in parallel), then SIGKILL each group still there at `timeout`."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} (pid {child.pid}) did not stop in {timeout:g} s; killing it")
            kill(child)
        child.close_log()


def kill(child: Child) -> None:
    """SIGKILL the child's whole process group (nginx's workers too) and reap it."""
    child.signal(signal.SIGKILL, group=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.proc.wait(5)
    child.close_log()
