"""Checks every system's online-simulator tests share (tests/systems/<name>/test_online.py)."""

from __future__ import annotations

import mlflow
import numpy as np
from typer.testing import CliRunner

from common.app.cli import app
from common.online.simulator import OnlineResult


def assert_oracle_beats_random_and_champion_between(result: OnlineResult, primary: str, second: str) -> None:
    """The oracle's choices beat random ones significantly on the primary metric and on `second`; the champion
    beats random on the primary, and lies below the oracle."""
    assert next(iter(result.world.metrics)) == primary
    for metric in (primary, second):
        oracle_vs_random = result.compare("random", "oracle", metric)
        assert oracle_vs_random.significant and oracle_vs_random.difference > 0, metric
    champion_vs_random = result.compare("random", "champion", primary)
    assert champion_vs_random.significant and champion_vs_random.difference > 0
    values = {arm: result.value(arm, primary) for arm in result.arms}
    assert values["random"] < values["champion"] < values["oracle"]


def run_abtest_command(system: str, b: str, metrics: tuple[str, ...]) -> CliRunner:
    """`abtest --a champion --b <b>` over one tiny simulated day: it plans, prints each metric's row, checks the
    split, and logs one MLflow run (tagged kind=abtest) with the intervals. Returns the runner."""
    runner = CliRunner()
    args = ["abtest", "--system", system, "--scale", "tiny", "--days", "1", "--a", "champion", "--b", b]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "users per arm" in result.output and "sample ratio mismatch" in result.output
    assert all(f"| {metric} |" in result.output for metric in metrics)
    runs = mlflow.search_runs(experiment_names=[system], filter_string="tags.kind = 'abtest'")
    assert len(runs) == 1 and runs["params.b"].iloc[0] == b
    assert np.isfinite(runs[f"metrics.{metrics[0]}_ci_low"].iloc[0])
    return runner
