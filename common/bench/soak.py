"""A soak: a system's endpoint held at concurrency 8 for a while, its errors counted and the server's resident
memory sampled throughout, to see whether it grows (a leak) or settles.

    python -m common.app.cli bench --system ads --soak 600     (or: make bench SYSTEM=ads SOAK=600)

The requests are the bench's (common/bench/endpoint.py), a seeded pool sent round and round. Memory is the
whole server's RSS (every worker), sampled every few seconds after a warm-up; growth is the median of the
last quarter of the samples against the median of the first quarter, and the slope of a line through them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass

import numpy as np

from common.bench.endpoint import (
    WARMUP_REQUESTS,
    LevelResult,
    check_ready,
    client_session,
    format_level,
    sample_requests,
    send_one,
    server_at,
    server_memory,
)

log = logging.getLogger(__name__)

CONCURRENCY = 8
POOL_REQUESTS = 2_000  # distinct requests, sent round and round
SAMPLE_EVERY_S = 5.0
# Growth that counts as growing: more than both of these (RSS moves by a few MB as allocators settle).
GROWTH_SHARE = 0.05
GROWTH_MB = 20.0


@dataclass(frozen=True)
class MemoryTrend:
    first_mb: float  # median of the first quarter of the samples
    last_mb: float  # median of the last quarter
    slope_mb_per_min: float
    grew: bool

    def describe(self) -> str:
        change = self.last_mb - self.first_mb
        verdict = "GREW" if self.grew else "flat"
        return (
            f"server RSS: {self.first_mb:.1f} MB (first quarter) -> {self.last_mb:.1f} MB (last quarter), "
            f"{change:+.1f} MB, slope {self.slope_mb_per_min:+.2f} MB/min: {verdict}"
        )


def memory_trend(seconds: np.ndarray, rss_bytes: np.ndarray) -> MemoryTrend:
    """The trend of (time, RSS) samples; at least 4 are needed."""
    if len(rss_bytes) < 4:
        raise ValueError(f"need at least 4 memory samples, got {len(rss_bytes)}: soak longer")
    mb = np.asarray(rss_bytes, dtype=float) / 2**20
    quarter = len(mb) // 4
    first, last = float(np.median(mb[:quarter])), float(np.median(mb[-quarter:]))
    slope = float(np.polyfit(np.asarray(seconds, dtype=float) / 60, mb, 1)[0])
    grew = last - first > max(GROWTH_SHARE * first, GROWTH_MB)
    return MemoryTrend(first, last, slope, grew)


def run_soak(system: str, url: str, seconds: float, k: int = 10, seed: int = 0) -> str:
    """Hold `system` at `url` (started when nothing answers) at concurrency 8 for `seconds`; the report."""
    url = url.rstrip("/")
    rng = np.random.default_rng(seed)
    warmup = sample_requests(system, WARMUP_REQUESTS, k, rng)
    pool = sample_requests(system, POOL_REQUESTS, k, rng)
    with server_at(system, url) as (health, started_server):
        check_ready(system, health)
        log.info("soaking %s at %s for %.0f s (server pid %s)", system, url, seconds, health.get("pid"))
        result, times, rss = asyncio.run(_soak(url, warmup, pool, seconds, health.get("pid")))
    if not rss:
        memory = "server RSS: n/a (server not on this machine)"
    elif len(rss) < 4:
        memory = f"server RSS: {len(rss)} samples, too few for a trend (soak {4 * SAMPLE_EVERY_S:.0f} s or more)"
    else:
        memory = memory_trend(np.asarray(times), np.asarray(rss)).describe()
    server = "started by the soak" if started_server else "already running"
    header = f"soak: system={system} k={k} concurrency={CONCURRENCY} for {seconds:.0f} s url={url} server={server}"
    return "\n\n".join([header, format_level(result), memory])


async def _soak(url: str, warmup, pool, seconds: float, pid: int | None):
    result = LevelResult(concurrency=CONCURRENCY, n_requests=0)
    times: list[float] = []
    rss: list[int] = []
    async with client_session(url, CONCURRENCY) as client:
        for path, body in warmup:
            await send_one(client, path, body, LevelResult(concurrency=1, n_requests=1))
        requests = itertools.cycle(pool)  # one event loop thread: next() between awaits needs no lock
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await send_one(client, *next(requests), result)
                result.n_requests += 1

        async def sampler() -> None:
            while time.perf_counter() < deadline:
                memory, _ = server_memory(url, pid)
                if memory is not None:
                    times.append(time.perf_counter() - started)
                    rss.append(memory)
                await asyncio.sleep(SAMPLE_EVERY_S)

        await asyncio.gather(sampler(), *(worker() for _ in range(CONCURRENCY)))
        result.elapsed_s = time.perf_counter() - started
    return result, times, rss
