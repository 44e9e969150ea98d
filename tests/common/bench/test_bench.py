"""Tests for the pure helpers of common.bench.endpoint: statistics and the report (no server)."""

import math

from common.bench.endpoint import CLIENT_ROW, LevelResult, format_level, format_report, summarize


def test_summarize_gives_percentiles_and_mean():
    stats = summarize([float(v) for v in range(1, 101)])
    assert math.isclose(stats["p50"], 50.5)
    assert math.isclose(stats["p99"], 99.01)
    assert math.isclose(stats["mean"], 50.5)


def test_summarize_of_nothing_is_nan_not_an_error():
    assert all(math.isnan(v) for v in summarize([]).values())


def test_level_table_lists_client_then_stages_in_server_order_with_rps_and_errors():
    result = LevelResult(
        concurrency=8,
        n_requests=4,
        elapsed_s=2.0,
        client_ms=[10.0, 12.0, 14.0],
        stage_ms={"user_features": [1.0, 1.0, 1.0], "ranking": [5.0, 6.0, 7.0]},
    )
    result.record_error("HTTP 503: not trained")
    result.record_error("HTTP 503: not trained")
    text = format_level(result)
    lines = text.splitlines()
    assert lines[0] == "concurrency 8: 4 requests in 2.00 s"
    assert lines[2].startswith(CLIENT_ROW) and "12.00" in lines[2]
    assert "user_features" in lines[3] and "ranking" in lines[4]
    assert "throughput: 2.0 requests/s, errors: 2" in text
    assert text.count("HTTP 503") == 1  # the same cause is shown once


def test_level_summarises_each_serving_path_apart():
    result = LevelResult(concurrency=8, n_requests=3, elapsed_s=1.0, client_ms=[2.0, 40.0, 60.0])
    result.path_ms = {"precomputed": [2.0], "on demand": [40.0, 60.0]}
    lines = format_level(result).splitlines()
    assert lines[3].strip().startswith("path: precomputed (1)") and "2.00" in lines[3]
    assert lines[4].strip().startswith("path: on demand (2)") and "50.00" in lines[4]


def test_report_has_setup_tables_and_memory():
    result = LevelResult(concurrency=1, n_requests=0)
    report = format_report("ads", 10, 0, "http://127.0.0.1:8765", True, [result], 300 * 2**20)
    assert report.startswith(
        "bench: system=ads k=10 requests=0 per level url=http://127.0.0.1:8765 server=started by the bench"
    )
    assert "concurrency 1:" in report
    assert report.endswith("server RSS (all its processes): 300.0 MB")
    shared = format_report("ads", 10, 0, "http://127.0.0.1:8765", True, [result], 300 * 2**20, 200 * 2**20)
    assert shared.endswith("server RSS (all its processes): 300.0 MB; PSS, shared pages counted once: 200.0 MB")
    assert format_report("ads", 10, 0, "http://h", False, [result], None).endswith("n/a (server not on this machine)")
