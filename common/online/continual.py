"""Continual training on the online simulator (the chapters' section 9), against a frozen model.

Users are split for the whole run, by a hash of their id, into three arms of equal size:
  frozen      the champion as it was when the run began: never retrained (a long-running holdout)
  champion    the continual line's current champion
  challenger  the model retrained last night, when it passed the offline gate; else the champion again
Each simulated day:
  1. the day is served to the three arms; the world logs the reactions, the daily job makes them features
  2. the A/B test: where a challenger served, its primary metric against the champion's decides. It is
     promoted (the registry alias moves: a running server picks it up) unless it is significantly worse
  3. monitoring of the frozen model: drift of its inputs and predictions from the first simulated day,
     calibration of the probabilities it served, alerts (common/online/monitoring.py)
  4. retraining on the logs so far (a sliding window); the offline gate: the new model's metric on the
     newest day against the champion's on the same rows; a better one is tomorrow's challenger
The continual line's daily metric (champion and challenger arms together) against the frozen arm's is the
plot in MLflow.

A system supplies a Learner: how its model retrains, is compared offline, is promoted, and is monitored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from common.evaluation.classification import markdown_table
from common.online.abtest import Comparison
from common.online.monitoring import DayReport, calibration_figure, drift_figure
from common.online.simulator import Metric, OnlineSystem, simulate
from common.tracking import runs as tracking

log = logging.getLogger(__name__)
ARMS = ("frozen", "champion", "challenger")
CONTINUAL = "continual"  # the champion and challenger arms together: the continual line's users


@dataclass(frozen=True)
class Candidate:
    """A model retrained on the logs so far, and the offline gate's verdict on the newest day's logs."""

    model: object  # what OnlineSystem.serve_model serves
    metric: str  # the gate's metric, lower is better (NCE)
    value: float  # the candidate's on the newest day
    champion_value: float  # the serving champion's on the same rows
    # What its run logs when it is promoted: "input_sample" (the signature's rows), "metrics", "params"
    run: dict = field(default_factory=dict, repr=False)

    @property
    def passes(self) -> bool:
        return self.value < self.champion_value


class Learner(Protocol):
    def champion(self) -> object:
        """The registered champion, loaded: what the frozen arm keeps serving."""

    def retrain(self, champion: object) -> Candidate:
        """A new model on the world's logs so far, gated against `champion` on the newest day."""

    def promote(self, candidate: Candidate, day: int) -> str:
        """Register the candidate and move the champion alias to it; returns its version."""

    def monitor(self, day: int, events: pd.DataFrame) -> DayReport:
        """The day's drift and calibration report of what the frozen model served (`events` of its arm)."""


@dataclass(frozen=True)
class ContinualResult:
    daily: pd.DataFrame  # a row per day: each arm's primary metric, the continual line's, the decisions
    reports: list[DayReport]
    text: str


def run_continual(
    system: str, online: OnlineSystem, learner: Learner, days: int, seed: int, experiment: str
) -> ContinualResult:
    """`days` simulated days of continual training against the frozen champion; logged to MLflow."""
    if online.serve_model is None:
        raise ValueError(f"{system} cannot put a retrained model behind its funnel (OnlineSystem.serve_model)")
    world, primary = online.world, next(iter(online.world.metrics))
    frozen = champion = learner.champion()
    challenger: Candidate | None = None
    rows, reports = [], []
    for day in range(days):
        served = {"frozen": frozen, "champion": champion, "challenger": challenger.model if challenger else champion}
        # Built each morning: the funnels read the features last night's job refreshed.
        policies = {arm: online.serve_model(model) for arm, model in served.items()}
        result = simulate(world, policies, 1, experiment, seed, first_day=day)
        row = {"day": day, **{arm: result.value(arm, primary) for arm in ARMS}}
        row[CONTINUAL] = _pooled(result, primary)
        if challenger is not None:
            ab = result.compare("champion", "challenger", primary)
            row.update(ab_difference=ab.difference, ab_low=ab.low, ab_high=ab.high)
            # Promoted unless significantly worse: it already beat the champion offline.
            if not significantly_worse(ab, world.metrics[primary]):
                row["promoted_version"] = learner.promote(challenger, day)
                champion = challenger.model
        reports.append(learner.monitor(day, result.events[result.events["arm"] == "frozen"]))
        row["alerts"] = len(reports[-1].alerts())
        challenger = learner.retrain(champion)
        gate_metric = challenger.metric
        row.update(
            gate_candidate=challenger.value, gate_champion=challenger.champion_value, gate_passed=challenger.passes
        )
        challenger = challenger if challenger.passes else None
        rows.append(row)
        log.info("continual day %d: %s", day, {k: v for k, v in row.items() if k != "day"})
    daily = pd.DataFrame(rows)
    text = _summary(daily, primary, reports, gate_metric)
    _log_run(system, daily, reports, primary, text, {"days": days, "seed": seed})
    return ContinualResult(daily, reports, text)


def significantly_worse(treatment_minus_control: Comparison, metric: Metric) -> bool:
    """Whether the treatment is worse than the control beyond the interval, in the metric's direction."""
    if metric.lower_is_better:
        return treatment_minus_control.low > 0
    return treatment_minus_control.high < 0


def _pooled(result, metric: str) -> float:
    """The metric over the champion and challenger arms' users together."""
    m = result.world.metrics[metric]
    totals = pd.concat([result.totals("champion"), result.totals("challenger")])
    return float(totals[m.numerator].sum() / totals[m.denominator].sum())


def _summary(daily: pd.DataFrame, primary: str, reports: list[DayReport], gate_metric: str) -> str:
    columns = ["day", "frozen", CONTINUAL, "gate_candidate", "gate_champion", "gate_passed", "alerts"]
    if "promoted_version" in daily:
        columns.insert(6, "promoted_version")
    rows = daily.assign(promoted_version=daily.get("promoted_version", pd.Series(dtype=object)).fillna("")).to_dict(
        "records"
    )
    gain = daily[CONTINUAL].mean() - daily["frozen"].mean()
    alerts = [f"- day {r.day}: " + "; ".join(r.alerts()) for r in reports if r.alerts()]
    return "\n".join(
        [
            f"{primary} per day: the frozen champion's users against the continual line's (champion and challenger"
            f" arms). Gate: {gate_metric} on the newest day's logs, the retrained model's against the champion's"
            " (lower is better).",
            "",
            markdown_table(rows, columns).rstrip(),
            "",
            f"Mean over the days: frozen {daily['frozen'].mean():.4g}, continual {daily[CONTINUAL].mean():.4g}"
            f" ({gain:+.4g}, {gain / daily['frozen'].mean():+.1%}).",
            "",
            "Monitoring alerts on the frozen model's traffic:" if alerts else "Monitoring: no alert on any day.",
            *alerts,
        ]
    )


def _daily_figure(daily: pd.DataFrame, primary: str):
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(daily["day"], daily["frozen"], marker="o", label="frozen champion")
    axis.plot(daily["day"], daily[CONTINUAL], marker="o", label="continual training")
    axis.set(xlabel="simulated day", ylabel=primary, title=f"{primary}: continual training against a frozen model")
    axis.legend()
    plt.close(figure)
    return figure


def _log_run(system: str, daily: pd.DataFrame, reports, primary: str, text: str, params: dict) -> None:
    tracking.use_experiment(system)
    with mlflow.start_run(
        run_name=f"{system}-continual-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}", tags={"kind": "continual"}
    ):
        mlflow.log_params(params)
        for row, report in zip(daily.to_dict("records"), reports, strict=True):
            numbers = {k: float(v) for k, v in row.items() if k not in ("day", "promoted_version") and pd.notna(v)}
            mlflow.log_metrics(
                {f"{primary}_{k}" if k in (*ARMS, CONTINUAL) else k: v for k, v in numbers.items()}, step=row["day"]
            )
            mlflow.log_metrics({f"frozen_{k}": v for k, v in report.metrics().items()}, step=row["day"])
        mlflow.log_figure(_daily_figure(daily, primary), "continual_vs_frozen.png")
        mlflow.log_figure(drift_figure(reports), "drift.png")
        mlflow.log_figure(calibration_figure(reports), "calibration.png")
        mlflow.log_text(text, "continual.md")
