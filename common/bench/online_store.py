"""Feast's online read from Redis (the scale path) beside SQLite (the default), in one run.

    python -m common.bench.online_store [--keys 20000] [--reads 500] [--batches 1 100 1000] [--seed 0]

One synthetic activity view (a user's counts, rates, country, device and id lists, as the systems' user_activity
views hold) is published twice by FeatureRepo.publish: into a SQLite-backed repo and into a Redis-backed one,
each in a data dir of its own. Redis is the one MLSD_FEAST_REDIS names when it is set (the benchmark's keys are
removed from it after), else a private redis-server on a free loopback port.

Then both answer the same reads, FeatureRepo.online (get_online_features) of every feature of the view for
1, 100 or 1000 random keys, one read at a time on one thread, as one request does. Before any timing, every key
is read back from both stores and compared with the source table: a fast store that answers wrongly (or from an
empty database) would be measuring nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import feast
import numpy as np
import pandas as pd
import pyarrow as pa

from common.app.logs import quiet_libraries
from common.app.paths import REPO_ROOT
from common.app.readme import replace_block
from common.features.store import REDIS_SETTING, REGISTRY_SETTING, FeatureRepo
from common.features.views import View
from common.services.local import redis_server

SYSTEM = "online_store_bench"  # the Feast project: its own keys in a shared Redis
VIEW = View("user_activity", "user_id")
KEY = VIEW.key
STAMP = pd.Timestamp("2026-01-05", tz="UTC")  # every row's event time: one snapshot, the one served
STORES = ("sqlite", "redis")  # the first is the baseline of the ratio column
BATCHES = (1, 100, 1000)
WARMUP_READS = 20  # untimed reads per store and batch size: connections, registry cache, SQLite pages
CHECK_CHUNK = 1000  # keys per read when every key is checked against the source
N_CATEGORIES = 12
COUNTRIES = ["de", "fr", "gb", "us", "br", "in", "jp", "es", "it", "pl"]
DEVICES = ["mobile", "desktop", "tablet"]


# --- the synthetic view -----------------------------------------------------------------------


def _id_lists(rng: np.random.Generator, n: int, max_length: int, n_ids: int) -> pa.ListArray:
    """n lists of 0..max_length ids (recently shown ads: most users saw a few, some none)."""
    lengths = rng.integers(0, max_length + 1, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(offsets, rng.integers(0, n_ids, int(lengths.sum())))


def _fixed_lists(values: np.ndarray) -> pa.ListArray:
    """Each row of a 2-D array as one list (per-category counts, indexed by category)."""
    offsets = np.arange(0, values.size + 1, values.shape[1], dtype=np.int32)
    return pa.ListArray.from_arrays(offsets, values.ravel())


def synthetic_activity(n_keys: int, rng: np.random.Generator) -> pa.Table:
    """One row per user, 20 features: 8 counts, 7 rates and amounts, 2 strings, 3 id or count lists."""
    columns: dict[str, object] = {KEY: np.arange(n_keys, dtype=np.int64)}
    for window in (1, 7, 28):
        impressions = rng.poisson(5 * window, n_keys)
        clicks = rng.binomial(impressions, 0.05)
        columns |= {f"impressions_{window}d": impressions, f"clicks_{window}d": clicks}
        columns[f"ctr_{window}d"] = (clicks + 0.5) / (impressions + 10.0)  # smoothed: never NaN
    columns |= {"hides_7d": rng.poisson(0.2, n_keys), "sessions_7d": rng.poisson(4, n_keys)}
    columns |= {
        "dwell_mean_s": rng.gamma(2.0, 15.0, n_keys),
        "spend_28d": rng.exponential(20.0, n_keys).round(2),
        "creative_score_mean": rng.random(n_keys),
        "recency_days": rng.exponential(3.0, n_keys),
    }
    columns |= {"country": rng.choice(COUNTRIES, n_keys), "device": rng.choice(DEVICES, n_keys)}
    columns |= {
        "category_impressions_14d": _fixed_lists(rng.poisson(3, (n_keys, N_CATEGORIES))),
        "recent_ad_ids_7d": _id_lists(rng, n_keys, 30, 50_000),
        "hidden_ad_ids": _id_lists(rng, n_keys, 3, 50_000),
    }
    columns["event_timestamp"] = pa.array(np.full(n_keys, STAMP.as_unit("us")), pa.timestamp("us", "UTC"))
    return pa.table(columns)


# --- the two repos --------------------------------------------------------------------------


@contextmanager
def environment(settings: Mapping[str, str | None]) -> Iterator[None]:
    """These variables set (None: unset) while the block runs, and as they were after."""
    saved = {name: os.environ.get(name) for name in settings}

    def apply(values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(settings)
    try:
        yield
    finally:
        apply(saved)


@contextmanager
def redis_address(workdir: Path) -> Iterator[tuple[str, str]]:
    """Feast's connection string and where it came from (never the string itself: it may hold a password)."""
    configured = os.environ.get(REDIS_SETTING)
    if configured:
        yield configured, REDIS_SETTING
        return
    with redis_server(workdir) as address:
        yield address, "a private redis-server on loopback"


@contextmanager
def published(table: pa.Table, data_dir: Path, redis: str | None) -> Iterator[FeatureRepo]:
    """The view published into a repo under `data_dir`: Redis-backed when `redis` is given, else SQLite; the
    registry a file in both (a registry server is not what is compared). The store reads the settings when it
    opens, so the repo keeps them after the environment is restored; its online data is torn down at the end."""
    settings = {"MLSD_DATA_DIR": str(data_dir), REDIS_SETTING: redis, REGISTRY_SETTING: None}
    with environment(settings):
        repo = FeatureRepo(SYSTEM)
        repo.publish({VIEW.name: table}, [VIEW], {}, STAMP - timedelta(days=1), STAMP)
    try:
        yield repo
    finally:
        repo.store.teardown()  # leaves a shared Redis as it was found


# --- the measurements -------------------------------------------------------------------------


def entity_rows(keys: np.ndarray) -> list[dict]:
    return [{KEY: int(key)} for key in keys]


def read_all(repo: FeatureRepo, refs: list[str], keys: np.ndarray) -> dict[str, list]:
    """Every feature of every key, in the keys' order, CHECK_CHUNK keys per read."""
    answer: dict[str, list] = {}
    for lo in range(0, len(keys), CHECK_CHUNK):
        for name, values in repo.online(refs, entity_rows(keys[lo : lo + CHECK_CHUNK])).items():
            answer.setdefault(name, []).extend(values)
    return answer


def differing_keys(answer: Mapping[str, list], reference: Mapping[str, list]) -> int:
    """How many rows of the answer differ from the reference's in any of its features (a feature missing from
    the answer raises: a store may not drop one). A store that wrote nothing answers None: every row differs."""
    features = [name for name in reference if name not in (KEY, "event_timestamp")]
    rows = range(len(reference[KEY]))
    return sum(any(answer[name][row] != reference[name][row] for name in features) for row in rows)


def check_values(repos: Mapping[str, FeatureRepo], refs: list[str], truth: Mapping[str, list]) -> dict[str, int]:
    """Per store, how many keys read back other values than the source has, and "between" them, how many keys
    the two stores answer differently. The source's keys are its row numbers, so rows line up."""
    keys = np.asarray(truth[KEY], dtype=np.int64)
    answers = {store: read_all(repo, refs, keys) for store, repo in repos.items()}
    counts = {store: differing_keys(answer, truth) for store, answer in answers.items()}
    baseline, other = (answers[store] for store in repos)
    counts["between"] = differing_keys(other, baseline)
    return counts


def key_batches(n_keys: int, batch: int, n_reads: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n_reads draws of `batch` distinct random keys (one request's users or candidate items)."""
    return [rng.choice(n_keys, size=batch, replace=False) for _ in range(n_reads)]


def time_reads(repos: Mapping[str, FeatureRepo], refs: list[str], batches: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Milliseconds of each read, per store. The stores take turns read by read, on the same keys: a burst of
    the machine's other work falls on both alike. Building the entity rows is left out of the time."""
    latency = {store: np.empty(len(batches)) for store in repos}
    for i, keys in enumerate(batches):
        rows = entity_rows(keys)
        for store, repo in repos.items():
            started = time.perf_counter()
            repo.online(refs, rows)
            latency[store][i] = (time.perf_counter() - started) * 1000
    return latency


@dataclass
class Run:
    n_keys: int
    n_features: int
    n_reads: int
    redis_source: str
    latency: dict[int, dict[str, np.ndarray]]  # rows per read -> store -> ms per read
    differing: dict[str, int]  # check_values

    @property
    def values_agree(self) -> bool:
        return not any(self.differing.values())


def measure(n_keys: int, n_reads: int, batches: Sequence[int] = BATCHES, seed: int = 0) -> Run:
    if min(n_keys, n_reads, *batches) < 1:
        raise ValueError("keys, reads and batch sizes must be positive")
    if max(batches) > n_keys:
        raise ValueError(f"a read of {max(batches)} distinct keys needs at least as many keys, not {n_keys}")
    data_rng, key_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    table = synthetic_activity(n_keys, data_rng)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-online-store-")))
        redis, redis_source = stack.enter_context(redis_address(workdir / "redis-server"))
        repos = {
            "sqlite": stack.enter_context(published(table, workdir / "sqlite", None)),
            "redis": stack.enter_context(published(table, workdir / "redis", redis)),
        }
        refs = repos["sqlite"].refs((VIEW.name,))
        differing = check_values(repos, refs, table.to_pydict())
        latency = {}
        for batch in batches:
            time_reads(repos, refs, key_batches(n_keys, batch, WARMUP_READS, key_rng))
            latency[batch] = time_reads(repos, refs, key_batches(n_keys, batch, n_reads, key_rng))
    return Run(n_keys, len(refs), n_reads, redis_source, latency, differing)


# --- the report -------------------------------------------------------------------------------


def _row(store: str, batch: int, ms: np.ndarray, baseline_p50: float) -> tuple[str, ...]:
    p50 = float(np.percentile(ms, 50))
    return (
        store,
        str(batch),
        f"{p50:.2f}",
        f"{np.percentile(ms, 99):.2f}",
        f"{1000 / ms.mean():.0f}",
        f"{p50 / baseline_p50:.2f}",
    )


def _values_line(differing: Mapping[str, int], n_keys: int, n_features: int) -> str:
    if not any(differing.values()):
        return f"values: both stores return the source's values for all {n_keys} keys x {n_features} features"
    stores = ", ".join(f"{store} {count}" for store, count in differing.items() if store != "between")
    return (
        f"values: MISMATCH, keys differing from the source: {stores}; between the stores: {differing['between']} "
        f"of {n_keys} (the latencies below time wrong answers)"
    )


def _aligned(row: Sequence[str], widths: Sequence[int]) -> list[str]:
    """The store name left-aligned, the numbers right-aligned."""
    return [cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]


def format_report(run: Run) -> str:
    baseline = STORES[0]
    header = ("store", "rows/read", "p50 ms", "p99 ms", "reads/s", f"p50 / {baseline}")
    rows = [
        _row(store, batch, by_store[store], float(np.percentile(by_store[baseline], 50)))
        for batch, by_store in run.latency.items()
        for store in STORES
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    table = ["  ".join(_aligned(row, widths)) for row in [header, *rows]]
    return "\n".join(
        [
            f"online_store: Feast {feast.__version__} get_online_features of one view ({run.n_keys} keys, "
            f"{run.n_features} features: ints, floats, strings, int lists); SQLite file vs Redis "
            f"({run.redis_source})",
            _values_line(run.differing, run.n_keys, run.n_features),
            "",
            *table,
            "",
            f"{run.n_reads} reads per store and batch size after {WARMUP_READS} untimed ones, random distinct keys, "
            "one read at a time on one thread, the two stores taking turns on the same keys",
            "reads/s: 1000 / mean ms (one client, sequential); "
            f"p50 / {baseline}: the store's p50 over {baseline}'s p50 in this run",
        ]
    )


def report(keys: int = 20_000, reads: int = 500, batches: Sequence[int] = BATCHES, seed: int = 0) -> str:
    """The table text of one run (measure, then format_report)."""
    return format_report(measure(keys, reads, batches, seed))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000, help="entity keys in the view")
    parser.add_argument("--reads", type=int, default=500, help="timed reads per store and batch size")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES), help="entity rows per read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-readme", action="store_true", help="also put the report in the root README")
    args = parser.parse_args(argv)
    quiet_libraries()
    run = measure(args.keys, args.reads, args.batches, args.seed)
    print(format_report(run))
    if not run.values_agree:
        sys.exit(1)  # a make target (or CI) must not pass on a store that answers wrongly
    if args.write_readme:
        replace_block(REPO_ROOT / "README.md", "online-store", f"```\n{format_report(run)}\n```")


if __name__ == "__main__":
    main()
