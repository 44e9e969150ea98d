"""Tests for common.bench.online_store: a tiny run against a private Redis, and the value check it reports."""

import os

import numpy as np
import pytest
import redis

from common.bench.online_store import Run, differing_keys, format_report, measure
from common.features.store import REDIS_SETTING
from common.services.local import redis_server


@pytest.fixture
def private_redis(tmp_path, monkeypatch):
    """A Redis of the test's own, named the way the scale path names one (so the run does not start another)."""
    with redis_server(tmp_path / "redis") as address:
        monkeypatch.setenv(REDIS_SETTING, address)
        yield address


def _table_rows(report: str) -> set[tuple[str, str]]:
    """(store, rows per read) of each line of the latency table."""
    return {tuple(line.split()[:2]) for line in report.splitlines() if line.split()[:1] in (["sqlite"], ["redis"])}


def test_a_tiny_run_reads_the_same_values_from_both_stores_and_reports_both(private_redis):
    environment = dict(os.environ)
    run = measure(n_keys=200, n_reads=20, batches=(1, 100))
    report = format_report(run)

    # Every key read back from each store equals the source: a Redis left empty would answer None for all 200.
    assert run.differing == {"sqlite": 0, "redis": 0, "between": 0} and run.values_agree
    assert "values: both stores return the source's values for all 200 keys x 20 features" in report
    assert _table_rows(report) == {(store, batch) for store in ("sqlite", "redis") for batch in ("1", "100")}
    assert f"Redis ({REDIS_SETTING})" in report  # the configured server was the one measured
    assert all(len(ms) == 20 and (ms > 0).all() for by_store in run.latency.values() for ms in by_store.values())

    assert dict(os.environ) == environment  # MLSD_DATA_DIR and the store settings restored
    host, port = private_redis.split(":")
    assert redis.Redis(host=host, port=int(port)).dbsize() == 0  # a shared Redis is left as it was found


def test_a_store_that_wrote_nothing_differs_on_every_key_and_the_report_says_so():
    truth = {"user_id": [0, 1, 2], "clicks_7d": [3, 0, 5], "recent_ad_ids_7d": [[1, 2], [], [7]], "event_timestamp": 0}
    empty = {"user_id": [0, 1, 2], "clicks_7d": [None] * 3, "recent_ad_ids_7d": [None] * 3}
    assert differing_keys(truth, truth) == 0
    assert differing_keys(empty, truth) == 3
    assert differing_keys({**truth, "recent_ad_ids_7d": [[1, 2], [], [8]]}, truth) == 1

    latency = {1: {"sqlite": np.array([1.0, 2.0]), "redis": np.array([2.0, 4.0])}}
    report = format_report(Run(3, 2, 2, "test", latency, {"sqlite": 0, "redis": 3, "between": 3}))
    assert "values: MISMATCH" in report and "redis 3" in report


def test_a_batch_larger_than_the_keys_is_refused():
    with pytest.raises(ValueError, match="distinct keys"):
        measure(n_keys=10, n_reads=1, batches=(100,))
