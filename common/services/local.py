"""The scale path's services, run natively on loopback: what docker-compose.yml runs in containers, from
the machine's own packages (Debian's redis-server and postgresql, and `mlflow server` from this venv). The
tests and the online-store benchmark start private instances on free ports in a temporary directory and
stop them after, so they touch no server the machine already runs.

    with redis_server(tmp) as redis:            # Feast's connection string, "127.0.0.1:6391"
    with postgres_server(tmp) as database:       # "postgresql+psycopg://mlsd@127.0.0.1:5433/mlsd"
    with mlflow_server(database, tmp) as uri:    # "http://127.0.0.1:5001"
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT = 60.0  # seconds; an MLflow server's first start creates its tables
DATABASE = "mlsd"


class ServiceNotStarted(RuntimeError):
    """A service's program is not installed, or it did not come up."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_program(name: str, package: str) -> str:
    """The program on PATH, or in PostgreSQL's versioned bin directory (Debian keeps initdb off PATH)."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise ServiceNotStarted(f"{name} is not installed: apt-get install {package}")
    return found


def wait_until(ready: Callable[[], bool], process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceNotStarted(f"{what} exited with code {process.returncode}: {log.read_text()[-2000:]}")
        if ready():
            return
        time.sleep(0.2)
    process.terminate()
    raise ServiceNotStarted(f"{what} did not answer within {START_TIMEOUT:.0f} s: {log.read_text()[-2000:]}")


def answers_tcp(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return ready


@contextmanager
def running(
    command: list[str],
    log: Path,
    ready: Callable[[], bool],
    what: str,
    stop_signal: int = signal.SIGTERM,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """The command in a process group of its own, until the block ends: then the whole group is stopped
    (an MLflow server's workers, the postgres behind runuser). `env`: variables set for the command on top of
    this process's environment."""
    environment = {**os.environ, **env} if env else None
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=environment
        )
    try:
        wait_until(ready, process, what, log)
        yield process
    finally:
        _stop_group(process, stop_signal)


def _stop_group(process: subprocess.Popen, stop_signal: int) -> None:
    try:
        os.killpg(process.pid, stop_signal)
        process.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A Redis server without persistence (Feast's online store is rebuilt by materialisation)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    command = [find_program("redis-server", "redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    with running(command, workdir / "redis.log", answers_tcp(port), "redis-server"):
        yield f"127.0.0.1:{port}"


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the postgres account."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster with one database; yields its SQLAlchemy URL (psycopg 3). Its directory
    is made outside pytest's temporary tree, whose parents the postgres account cannot enter."""
    initdb, postgres = find_program("initdb", "postgresql"), find_program("postgres", "postgresql")
    createdb = find_program("createdb", "postgresql")
    root = Path(tempfile.mkdtemp(prefix="mlsd-postgres-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    as_postgres = _as_postgres_user()
    port = free_port()
    try:
        subprocess.run(
            [*as_postgres, initdb, "-D", str(data), "-U", DATABASE, "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        command = [*as_postgres, postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(root)]
        # SIGINT is PostgreSQL's fast shutdown: SIGTERM would wait for pooled client connections to close.
        with running(command, root / "postgres.log", answers_tcp(port), "postgres", signal.SIGINT):
            _create_database(createdb, port, root)
            yield f"postgresql+psycopg://{DATABASE}@127.0.0.1:{port}/{DATABASE}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _create_database(createdb: str, port: int, root: Path) -> None:
    """The port answers before the server accepts logins: retry until createdb gets through."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        done = subprocess.run(
            [createdb, "-h", "127.0.0.1", "-p", str(port), "-U", DATABASE, DATABASE], capture_output=True, text=True
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise ServiceNotStarted(f"createdb failed: {done.stderr} {(root / 'postgres.log').read_text()[-2000:]}")
        time.sleep(0.3)


@contextmanager
def mlflow_server(backend_store_uri: str, artifacts_dir: Path) -> Iterator[str]:
    """`mlflow server` over that backend store, serving artifacts it keeps under `artifacts_dir` (compose
    points it at an S3 bucket instead); yields its tracking URI. Without the server's job execution (huey
    consumers for online scoring and trace archival, which nothing here uses): they competed for the CPU
    with the training the server tracks, and outlived a SIGTERM by the full 20 s _stop_group waits."""
    port = free_port()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow, "server", "--backend-store-uri", backend_store_uri, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--artifacts-destination", artifacts_dir.resolve().as_uri(), "--serve-artifacts", "--workers", "1"]
    uri = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{uri}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    no_jobs = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with running(command, artifacts_dir.parent / "mlflow-server.log", ready, "mlflow server", env=no_jobs):
        yield uri
