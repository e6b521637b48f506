"""A child process run as a service: its own session, its output relayed, its whole tree stopped.

A server such as ``mlflow server`` starts children of its own (uvicorn, workers). Started in a
new session, the tree gets no signal from the terminal (so no tracebacks from children on
Ctrl-C); ``stop`` sends SIGTERM to the session's process group and to every descendant seen,
waits, then kills stragglers. psutil does the process bookkeeping; Python has no library that
stops a process tree, so this part is written by hand.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

import psutil

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to the child when the parent dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class OutputRelay(threading.Thread):
    """Copies a child's output to ``sink`` line by line; holds it back until ``release``.

    Holding back lets the caller replace a server's start-up noise with one clear line when the
    start fails, and show it unchanged when the start succeeds.
    """

    def __init__(
        self, stream: IO[bytes], sink: IO[bytes], drop: Callable[[bytes], bool] = lambda line: False
    ) -> None:
        super().__init__(name="output-relay", daemon=True)
        self._stream = stream
        self._sink = sink
        self._drop = drop
        self._held: list[bytes] | None = []
        self._lock = threading.Lock()
        self.lines: list[bytes] = []  # everything read while held, for error messages

    def run(self) -> None:
        for line in iter(self._stream.readline, b""):
            if self._drop(line):
                continue
            with self._lock:
                if self._held is not None:
                    self._held.append(line)
                    self.lines.append(line)
                    continue
            self._write(line)

    def release(self) -> None:
        """Write what was held back, then pass output straight through."""
        with self._lock:
            held, self._held = self._held or [], None
            for line in held:
                self._write(line)

    def _write(self, line: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._sink.write(line)
            self._sink.flush()


class ProcessTree:
    """A command started in a new session, with every process it starts.

    Args:
        cmd: the command line.
        env: its environment.
        sink: where its stdout and stderr go (merged, held back until ``relay.release()``).
        drop: which of its output lines not to relay.
    """

    def __init__(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str],
        sink: IO[bytes],
        drop: Callable[[bytes], bool] = lambda line: False,
    ) -> None:
        self.proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: the terminal's Ctrl-C does not reach it
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._root = psutil.Process(self.proc.pid)
        assert self.proc.stdout is not None
        self.relay = OutputRelay(self.proc.stdout, sink, drop)
        self.relay.start()
        self._seen: dict[int, psutil.Process] = {}
        self.refresh()

    @property
    def pid(self) -> int:
        """The root process's id (also its process group's id)."""
        return self.proc.pid

    def poll(self) -> int | None:
        """The root's exit status, or None while it runs."""
        return self.proc.poll()

    def refresh(self) -> list[psutil.Process]:
        """Record the root's current descendants (a child whose parent died is no longer one)."""
        try:
            current = self._root.children(recursive=True) if _running(self._root) else []
        except psutil.Error:
            current = []
        for p in current:
            self._seen.setdefault(p.pid, p)
        return current

    def alive(self) -> list[psutil.Process]:
        """Every process of the tree seen so far that still runs (not counting zombies)."""
        return [p for p in (self._root, *self._seen.values()) if _running(p)]

    def listens_on(self, port: int) -> bool:
        """Whether a process of the tree has a listening TCP socket on ``port``."""
        for p in self.alive():
            with contextlib.suppress(psutil.Error):
                for conn in p.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                        return True
        return False

    def stop(self, grace: float = 10.0, hurry: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM to the process group and every descendant; after ``grace`` s (or once
        ``hurry()`` is true) SIGKILL to those still running. Returns when all are gone."""
        self.refresh()
        procs = self.alive()
        self._signal_all(procs, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not hurry():
            procs = [p for p in procs if _running(p)]
            if not procs:
                break
            self.proc.poll()  # reap the root, so that it does not linger as a zombie
            time.sleep(0.1)
        stragglers = [p for p in procs if _running(p)]
        self._signal_all(stragglers, signal.SIGKILL)
        psutil.wait_procs(stragglers, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.relay.join(timeout=5)

    def _signal_all(self, procs: list[psutil.Process], signum: int) -> None:
        # The group id is the root's pid; it cannot be reused while a member of the group lives.
        if any(_pgid(p) == self.pid for p in procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signum)


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pgid(p: psutil.Process) -> int | None:
    try:
        return os.getpgid(p.pid)
    except OSError:
        return None
