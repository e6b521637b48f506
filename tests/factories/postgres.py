"""A throwaway PostgreSQL cluster and an ``mlflow server`` on it, as docs/scaling.md sets them up.

PostgreSQL comes from the system (Debian's ``postgresql``: ``make system-deps`` installs it as
root). It refuses to run as root, so as root the cluster runs as the ``postgres`` user that the
package creates, in a folder that user owns. Both servers listen on loopback only, on free ports,
and are stopped when their ``with`` block ends, however it ends (a failing test included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.factories.processes import free_port, wait_http

PG_BINS = "/usr/lib/postgresql/*/bin"
# The unprivileged user that runs the cluster when the tests run as root.
PG_USER = "postgres"
# MLflow's server jobs (GenAI judges, trace rollups: unused by satcnn) start seven worker processes
# when the store is a database; docs/scaling.md turns them off the same way.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
MISSING = (
    "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin): "
    "run `make system-deps` as root (apt-get install postgresql)"
)


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's ``bin`` folder; AssertionError (never a skip) when none."""
    found = [p for p in Path("/").glob(PG_BINS.lstrip("/")) if (p / "initdb").is_file()]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise AssertionError(MISSING)
    return found[-1]


def _as_owner() -> list[str]:
    """The command prefix that runs a PostgreSQL server program as a non-root user."""
    return ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=300, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {done.returncode}:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class Postgres:
    """A running cluster.

    Attributes:
        host: Address it listens on (loopback).
        port: Its TCP port.
        user: Its superuser (trust authentication: loopback only, throwaway).
        bin: The PostgreSQL ``bin`` folder.
        log: The server's log file.
    """

    host: str
    port: int
    user: str
    bin: Path
    log: Path

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` through psycopg2 (MLflow's ``--backend-store-uri``)."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its URL."""
        cmd = [str(self.bin / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name]
        _run(cmd, self.log.with_suffix(".client.log"))
        return self.url(name)


@contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """``initdb`` a cluster in a fresh folder, start it with ``pg_ctl``, stop and remove it after."""
    bin_dir = postgres_bin()
    # Not under pytest's tmp_path (nor $TMPDIR) as root: root-only folders are closed to the postgres user.
    base = Path(tempfile.mkdtemp(prefix="satcnn-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    data, log, port = base / "data", base / "postgres.log", free_port()
    try:
        if os.geteuid() == 0:
            shutil.chown(base, PG_USER, PG_USER)
        owner = _as_owner()
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "satcnn", "--auth=trust", "-E", "UTF8"]
        _run([*owner, *initdb, "--no-sync", "--no-instructions"], base / "initdb.log")
        # the socket goes beside the data, not into /var/run/postgresql (absent without the service)
        opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
        pg_ctl = [str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "240"]
        try:  # stopped even when the start fails half-way (a timeout, say)
            _run([*owner, *pg_ctl, "-o", opts], base / "pg_ctl.log")
            yield Postgres("127.0.0.1", port, "satcnn", bin_dir, log)
        finally:
            _stop(owner, bin_dir, data, base / "pg_ctl.log")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _stop(owner: list[str], bin_dir: Path, data: Path, log: Path) -> None:
    """``pg_ctl stop`` (fast: no waiting for clients), then immediate, then SIGKILL the postmaster."""
    for mode in ("fast", "immediate"):
        stop = [*owner, str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", mode, "-w", "-t", "30"]
        with log.open("a") as out:
            if (
                subprocess.run(stop, stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False).returncode
                == 0
            ):
                return
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


@dataclass(frozen=True)
class TrackingServer:
    """A running ``mlflow server``.

    Attributes:
        uri: Its URL (``MLFLOW_TRACKING_URI``).
        command: The command that started it (docs/scaling.md shows the same).
        artifacts: Its ``--artifacts-destination`` folder.
        log: Its stdout and stderr.
    """

    uri: str
    command: list[str]
    artifacts: Path
    log: Path


@contextmanager
def mlflow_server(backend_store_uri: str, workdir: Path) -> Iterator[TrackingServer]:
    """``mlflow server`` on ``backend_store_uri``, serving artifacts from ``workdir/artifacts``.

    It runs in its own process group, which is stopped (SIGTERM, then SIGKILL) when the block ends.
    """
    port, artifacts, log = free_port(), workdir / "artifacts", workdir / "mlflow-server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri]
    cmd += ["--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "2"]
    env = {**os.environ, **SERVER_ENV}
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(f"{uri}/health", proc, timeout=120)
        except AssertionError as err:
            raise AssertionError(f"{err}:\n{log.read_text()[-3000:]}") from None
        yield TrackingServer(uri, cmd, artifacts, log)
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc`` and every process of its group (server workers)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # workers that outlived the server's main process
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
