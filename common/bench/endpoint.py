"""Latency, throughput and memory of a system's endpoint, measured over loopback.

    python -m common.app.cli bench --system ads --url http://127.0.0.1:8000 [--requests 400] [--k 10]
    (or: make bench SYSTEM=ads)

If nothing answers at the URL, the bench starts the API itself (uvicorn, this system only,
the same MLSD_DATA_DIR / MLSD_SCALE as its own environment) and stops it at the end.

For each concurrency level it sends the same number of pre-generated, seeded requests and
reports p50 / p99 / mean of the client-side wall time and of each server-side stage (the
`stages` timings of the response), requests per second and errors, then the server's
resident memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import httpx
import numpy as np
import psutil

from common.app.config import load_config
from common.app.paths import REPO_ROOT
from common.app.registry import get_system

log = logging.getLogger(__name__)

WARMUP_REQUESTS = 20  # first requests pay for lazy imports, caches and connection setup
SERVER_WORKERS = 2  # as `make serve`: one process per core (the GIL serialises one)
STARTUP_TIMEOUT_S = 300.0  # loading a serving bundle (models, Feast, a 1M-item index per worker) takes a while
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0
CLIENT_ROW = "request (client)"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


@dataclass(frozen=True)
class Form:
    """A request body sent as a form instead of JSON (a system's sample_request may return one): text
    fields, and files as (filename, bytes, content type), which make it multipart."""

    fields: dict[str, str]
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)

    def data(self) -> aiohttp.FormData:
        form = aiohttp.FormData(self.fields)
        for name, (filename, content, content_type) in self.files.items():
            form.add_field(name, content, filename=filename, content_type=content_type)
        return form


def _body(body: dict | Form) -> dict:
    """aiohttp's keyword for the body: a fresh FormData each time (one is consumed by its request)."""
    return {"data": body.data()} if isinstance(body, Form) else {"json": body}


@dataclass
class LevelResult:
    """What one concurrency level measured. Latencies are in milliseconds, successes only."""

    concurrency: int
    n_requests: int
    elapsed_s: float = 0.0
    client_ms: list[float] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)  # in the order the server reports them
    # A response naming its serving path (PYMK: "precomputed" or "on demand"): the client time per path.
    path_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return self.n_requests / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def record_error(self, message: str) -> None:
        self.errors += 1
        # A few distinct causes are enough to act on.
        if len(self.error_samples) < 3 and message not in self.error_samples:
            self.error_samples.append(message)


# --- pure helpers: statistics and the report ------------------------------------------


def summarize(values_ms: Sequence[float]) -> dict[str, float]:
    """p50, p99 and mean of a list of milliseconds (NaN when empty, e.g. every request failed)."""
    if len(values_ms) == 0:
        return {"p50": float("nan"), "p99": float("nan"), "mean": float("nan")}
    values = np.asarray(values_ms, dtype=float)
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "mean": float(values.mean())}


def _ms(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.2f}"


def format_level(result: LevelResult) -> str:
    """One table: the client-side request time, then each server stage, then rps and errors."""
    rows = [(CLIENT_ROW, summarize(result.client_ms))]
    rows += [(f"  path: {path} ({len(values)})", summarize(values)) for path, values in result.path_ms.items()]
    rows += [(f"  {stage}", summarize(values)) for stage, values in result.stage_ms.items()]
    width = max(len(name) for name, _ in rows)
    lines = [
        f"concurrency {result.concurrency}: {result.n_requests} requests in {result.elapsed_s:.2f} s",
        f"{'':<{width}}  {'p50 ms':>9}  {'p99 ms':>9}  {'mean ms':>9}",
    ]
    lines += [f"{name:<{width}}  {_ms(s['p50']):>9}  {_ms(s['p99']):>9}  {_ms(s['mean']):>9}" for name, s in rows]
    lines.append(f"throughput: {result.requests_per_second:.1f} requests/s, errors: {result.errors}")
    lines += [f"  error: {sample}" for sample in result.error_samples]
    return "\n".join(lines)


def format_report(
    system: str,
    k: int,
    n_requests: int,
    url: str,
    started_server: bool,
    results: Sequence[LevelResult],
    rss_bytes: int | None,
    pss_bytes: int | None = None,
) -> str:
    setup = (
        f"bench: system={system} k={k} requests={n_requests} per level url={url} "
        f"server={'started by the bench' if started_server else 'already running'}; "
        "a new connection per request (client latency includes connecting)"
    )
    memory = (
        "server RSS: n/a (server not on this machine)"
        if rss_bytes is None
        else f"server RSS (all its processes): {rss_bytes / 2**20:.1f} MB"
    )
    if rss_bytes is not None and pss_bytes is not None:
        # RSS counts a page shared by the workers (a memory-mapped index, the page cache) once per worker;
        # PSS divides it among them: what the server costs the machine.
        memory += f"; PSS, shared pages counted once: {pss_bytes / 2**20:.1f} MB"
    return "\n\n".join([setup, *(format_level(result) for result in results), memory])


# --- the server ------------------------------------------------------------------------


def _health(url: str) -> dict | None:
    """The /healthz answer, or None when nothing listens at the URL."""
    try:
        response = httpx.get(f"{url}/healthz", timeout=5.0)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        return None
    if response.status_code != 200:
        raise RuntimeError(f"{url}/healthz answered {response.status_code}: is this the ML system designs API?")
    return response.json()


def _log_tail(path: Path, n_lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n_lines:])


@contextmanager
def server_at(system: str, url: str, extra_env: dict[str, str] | None = None) -> Iterator[tuple[dict, bool]]:
    """Yields (healthz answer, whether the bench started the server). A server the bench
    starts is always stopped on exit, whatever happens in between. With `extra_env` the
    bench must start the server itself (a running one was not started with it)."""
    health = _health(url)
    if health is not None:
        if extra_env:
            raise RuntimeError(f"something already answers at {url}; the bench needs that port for its own server")
        yield health, False
        return

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    if host not in LOOPBACK_HOSTS:
        raise RuntimeError(f"nothing answers at {url}, and the bench only starts servers on this machine")
    # Inheriting os.environ passes MLSD_DATA_DIR / MLSD_SCALE / MLFLOW_TRACKING_URI through.
    env = {**os.environ, "MLSD_SYSTEMS": system, **(extra_env or {})}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "common.serving.app:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(SERVER_WORKERS),
        "--log-level",
        "warning",
    ]
    # Server output goes to a file rather than a pipe: an unread pipe can fill and block it.
    with tempfile.NamedTemporaryFile("w+", prefix=f"bench-{system}-", suffix=".log", delete=False) as server_log:
        log_path = Path(server_log.name)
        log.info("nothing answers at %s: starting a server (log: %s)", url, log_path)
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        yield _wait_until_healthy(url, process, log_path), True
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)


def _wait_until_healthy(url: str, process: subprocess.Popen, log_path: Path) -> dict:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}:\n{_log_tail(log_path)}")
        health = _health(url)
        if health is not None:
            return health
        time.sleep(0.5)
    raise RuntimeError(
        f"the server did not answer {url}/healthz within {STARTUP_TIMEOUT_S:.0f} s:\n{_log_tail(log_path)}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    log.info("stopping the server (pid %d)", process.pid)
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def check_ready(system: str, health: dict) -> None:
    status = health.get("systems", {}).get(system)
    if status is None:
        raise RuntimeError(f"the server does not serve {system!r} (it serves {sorted(health.get('systems', {}))})")
    if status != "ready":
        raise RuntimeError(f"{system} cannot serve ({status}). Run: make train SYSTEM={system}")


def server_memory(url: str, pid: int | None) -> tuple[int | None, int | None]:
    """(RSS, PSS) of the whole server: the worker that answered /healthz, and when it is one of
    several uvicorn workers, its supervisor and every sibling. None when the server is not a
    process on this machine (PSS: or the system does not report it)."""
    if pid is None or urlsplit(url).hostname not in LOOPBACK_HOSTS:
        return None, None
    try:
        worker = psutil.Process(pid)
        parent = worker.parent()
        command = " ".join(parent.cmdline()) if parent is not None else ""
        serving = "uvicorn" in command or "common.app.cli serve" in command  # a supervisor, not the bench
        root = parent if serving else worker
        processes = [root, *root.children(recursive=True)]
        rss = sum(process.memory_info().rss for process in processes)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None, None
    try:
        pss = sum(getattr(process.memory_full_info(), "pss", 0) for process in processes) or None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pss = None
    return rss, pss


# --- the load --------------------------------------------------------------------------


def sample_requests(
    system: str, n: int, k: int, rng: np.random.Generator, workload: str | None = None
) -> list[tuple[str, dict]]:
    # The scale the server runs at (MLSD_SCALE), so sampled user ids exist in its world.
    config = load_config(system, os.environ.get("MLSD_SCALE") or None)
    if workload is not None:
        config["bench_workload"] = workload  # the system's sample_request draws only that kind
    sample = get_system(system).sample_request
    return [sample(config, rng, k) for _ in range(n)]


async def send_one(client: aiohttp.ClientSession, path: str, body: dict | Form, result: LevelResult) -> None:
    """One request; its wall time and stage timings into `result`, or its error."""
    started = time.perf_counter()
    try:
        async with client.post(path, **_body(body)) as response:
            status, text = response.status, await response.text()
    except (TimeoutError, aiohttp.ClientError) as error:
        result.record_error(f"{type(error).__name__}: {error}")
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    if status != 200:
        result.record_error(f"HTTP {status}: {text[:200]}")
        return
    result.client_ms.append(elapsed_ms)
    answer = json.loads(text)
    if "path" in answer:
        result.path_ms.setdefault(answer["path"], []).append(elapsed_ms)
    for stage, timing in answer.get("stages", {}).items():
        result.stage_ms.setdefault(stage, []).append(timing["milliseconds"])


def client_session(url: str, concurrency: int) -> aiohttp.ClientSession:
    # A new connection per request, as many independent clients would open: 8 pinned
    # keep-alive connections split unevenly over the server's worker processes (6 + 2 is as
    # likely as 4 + 4), and the bench would measure that split rather than the server. A
    # fresh connection goes to whichever worker is free. aiohttp rather than httpx: the
    # client shares the server's cores, and it costs less per request.
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    return aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout)


async def _run_level(client: aiohttp.ClientSession, requests: list[tuple[str, dict]], concurrency: int) -> LevelResult:
    """`concurrency` workers drain a shared queue; each records its requests' wall time."""
    result = LevelResult(concurrency=concurrency, n_requests=len(requests))
    queue = deque(requests)  # one event loop thread: popleft between awaits needs no lock

    async def worker() -> None:
        while queue:
            await send_one(client, *queue.popleft(), result)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result


async def _drive(
    url: str, warmup: list[tuple[str, dict]], levels: list[tuple[int, list[tuple[str, dict]]]]
) -> list[LevelResult]:
    max_concurrency = max(concurrency for concurrency, _ in levels)
    async with client_session(url, max_concurrency) as client:
        # Warm up at the highest level: every worker loads its caches before timing starts.
        warm = await _run_level(client, warmup, max_concurrency)
        if warm.errors:
            log.warning("warm-up: %d of %d requests failed (%s)", warm.errors, len(warmup), warm.error_samples[0])
        results = []
        for concurrency, requests in levels:
            log.info("concurrency %d: %d requests", concurrency, len(requests))
            results.append(await _run_level(client, requests, concurrency))
        return results


def run_benchmark(
    system: str, url: str, n_requests: int = 400, k: int = 10, concurrency_levels: Sequence[int] = (1, 8), seed: int = 0
) -> str:
    """Benchmark `system` at `url` (starting a server when none answers) and return the report."""
    url = url.rstrip("/")
    rng = np.random.default_rng(seed)
    # Generated before the clock starts, so sampling costs nothing in the measurements.
    warmup = sample_requests(system, WARMUP_REQUESTS, k, rng)
    levels = [(concurrency, sample_requests(system, n_requests, k, rng)) for concurrency in concurrency_levels]
    workloads = {
        name: [(concurrency, sample_requests(system, n_requests, k, rng, name)) for concurrency in concurrency_levels]
        for name in get_system(system).bench_workloads
    }
    with server_at(system, url) as (health, started_server):
        check_ready(system, health)
        log.info("benchmarking %s at %s (server pid %s)", system, url, health.get("pid"))
        results = asyncio.run(_drive(url, warmup, levels))
        rss, pss = server_memory(url, health.get("pid"))
        alone = {name: asyncio.run(_drive(url, warmup, load)) for name, load in workloads.items()}
    reports = [format_report(system, k, n_requests, url, started_server, results, rss, pss)]
    reports += [
        f"=== {name} requests alone ===\n\n" + "\n\n".join(format_level(result) for result in results)
        for name, results in alone.items()
    ]
    reports += [
        _grown_catalog_report(system, size, url, warmup, levels, k, n_requests)
        for size in get_system(system).bench_catalog_sizes
    ]
    return "\n\n".join(reports)


def _grown_catalog_report(system, size, url, warmup, levels, k, n_requests) -> str:
    """The same requests against a server whose catalogue is grown to `size` items with synthetic
    ones, on the next port, and the ANN measurements of that index in this process."""
    from common.bench.catalog import catalog_ann_report
    from common.bench.padding import CATALOG_SIZE_ENV

    log.info("%s: ANN over a %d-item catalogue", system, size)
    ann = catalog_ann_report(system, size)
    parts = urlsplit(url)
    grown_url = f"{parts.scheme}://{parts.hostname}:{(parts.port or 80) + 1}"
    with server_at(system, grown_url, {CATALOG_SIZE_ENV: str(size)}) as (health, _):
        check_ready(system, health)
        log.info("benchmarking %s with a %d-item catalogue at %s", system, size, grown_url)
        results = asyncio.run(_drive(grown_url, warmup, levels))
        rss, pss = server_memory(grown_url, health.get("pid"))
    served = format_report(system, k, n_requests, grown_url, True, results, rss, pss)
    return f"=== catalogue grown to {size} items (common.bench.padding) ===\n\n{ann}\n\n{served}"
