"""What `make online` and `make abtest` print, put in a README and log to MLflow.

online   the champion, the system's simple baseline and the oracle policy on the same simulated days (users
         split evenly between them), each online metric of each, and how much of the way from the baseline
         to the oracle the champion goes on the primary metric
abtest   a planned test of two named policies: the users per arm the minimum detectable effect needs (from
         the variance of the metric in the logs before the test), the test on the simulator, each metric's
         difference with its confidence interval, and the sample ratio check
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import pandas as pd
from scipy import stats

from common.evaluation.classification import markdown_table
from common.online.abtest import SRM_ALPHA, Comparison, ratio_per_user_sd, sample_size_per_arm
from common.online.simulator import OnlineResult, OnlineSystem, simulate
from common.tracking import runs as tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    text: str  # markdown: what the command prints and the README holds
    metrics: dict[str, float]  # what MLflow holds
    result: OnlineResult


def online_report(system: str, online: OnlineSystem, days: int, seed: int) -> Report:
    """The champion, the baseline and the oracle on the simulator, over `days` days."""
    arms = ("champion", online.baseline, "oracle")
    result = simulate(online.world, lambda day: online.policies(arms), days, f"{system}-online", seed)
    metrics = online.world.metrics
    primary = next(iter(metrics))
    table = result.table()
    values = table.set_index("arm")[primary]
    gap = values["oracle"] - values[online.baseline]
    table["oracle_gap_closed"] = (values - values[online.baseline]).to_numpy() / gap if gap else float("nan")
    rows = table.to_dict("records")
    rows[0]["arm"] = "champion (the registered model)"
    columns = ["arm", "users", "requests", *metrics, "oracle_gap_closed"]
    lines = [
        f"Simulated days: {days} after the logs; users split evenly between the three policies.",
        "",
        markdown_table(rows, columns).rstrip(),
        "",
        f"`oracle_gap_closed`: how far {primary} goes from the baseline ({online.baseline}, 0) to the oracle (1).",
        "",
        _comparison_line(
            result.compare(online.baseline, "champion", primary), f"champion - {online.baseline}", primary
        ),
        _comparison_line(result.compare("oracle", "champion", primary), "champion - oracle", primary),
    ]
    if note := _lower_is_better(metrics):
        lines += ["", note]
    logged = {f"{row['arm'].split(' ')[0]}_{m}": float(row[m]) for row in rows for m in [*metrics, "oracle_gap_closed"]}
    return Report("\n".join(lines), logged, result)


def abtest_report(system: str, online: OnlineSystem, a: str, b: str, days: int, seed: int, plan: dict) -> Report:
    """A (control) against B (treatment): planned on the logs, run on the simulator, every metric compared."""
    for name in (a, b):
        if name not in online.names:
            raise ValueError(f"no policy {name!r} for {system}; choose from: {', '.join(online.names)}")
    if a == b:
        raise ValueError("A and B are the same policy: an A/A test needs no simulator")
    world, metric = online.world, plan["metric"]
    # Before the test, `days` days of the control alone: the metric's variance per user as the test will see it.
    before = simulate(world, lambda day: online.policies((a,)), days, f"{system}-abtest-plan", seed).totals(a)
    numerator, denominator = world.metrics[metric].numerator, world.metrics[metric].denominator
    value, sd = ratio_per_user_sd(before[numerator], before[denominator])
    mde = plan["relative_mde"] * value
    needed = sample_size_per_arm(sd, mde)
    experiment = f"{system}-abtest-{a}-vs-{b}"
    result = simulate(world, lambda day: online.policies((a, b)), days, experiment, seed, first_day=days)
    srm = result.split_check(a, b)
    rows, logged = [], {"users_needed_per_arm": float(needed), "srm_p_value": srm}
    for name in world.metrics:
        c = result.compare(a, b, name)
        rows.append(_comparison_row(name, c))
        parts = {"a": c.control_mean, "b": c.treatment_mean, "difference": c.difference, "ci_low": c.low}
        logged.update(
            {f"{name}_{key}": float(v) for key, v in (parts | {"ci_high": c.high, "p_value": c.p_value}).items()}
        )
    users = (result.users(a), result.users(b))
    lines = [
        f"A = {a} (control), B = {b} (treatment); {days} simulated days, users split evenly by a hash of their id.",
        "",
        f"Plan (before the test, from {days} simulated days of A alone): {metric} is {value:.4g} with a per-user sd of"
        f" {sd:.4g}; a {plan['relative_mde']:.0%} change ({mde:.4g}) needs {needed:,} users per arm"
        " (two-sided, alpha 0.05, power 0.8).",
        f"Users: {users[0]:,} in A, {users[1]:,} in B"
        + (
            ""
            if min(users) >= needed
            else f": fewer than planned, so a {plan['relative_mde']:.0%} change can go unseen"
        )
        + ".",
        f"Split check: sample ratio mismatch p = {srm:.3f}"
        + (" (below 0.001: the split is broken, do not trust the result)." if srm < SRM_ALPHA else " (balanced)."),
        "",
        markdown_table(rows, list(rows[0]), floatfmt=".4g"),
    ]
    if note := _lower_is_better(world.metrics):
        lines.append(note)  # the table ends with a blank line
    return Report("\n".join(lines), logged, result)


def offline_vs_online_report(system: str, online: OnlineSystem, days: int, seed: int) -> Report:
    """Every model of the latest training online at once (users split evenly between them): does the offline
    metric the champion was chosen by order them as the online metric does?"""
    if online.offline_metric is None:
        raise ValueError(f"{system} names no offline metric to compare with")
    metric, goal = online.offline_metric
    # The models the metric was measured for (a recommender's retrieval run has none).
    offline = {
        name: values[metric] for name, values in tracking.trained_model_metrics(system).items() if metric in values
    }
    models = [name for name in online.names if name in offline]
    result = simulate(online.world, lambda day: online.policies(models), days, f"{system}-offline-vs-online", seed)
    primary = next(iter(online.world.metrics))
    online_value = {name: result.value(name, primary) for name in models}
    sign = -1 if goal == "min" else 1  # offline "better" as larger
    online_sign = -1 if online.world.metrics[primary].lower_is_better else 1  # and online
    best_offline = max(models, key=lambda name: sign * offline[name])
    best_online = max(models, key=lambda name: online_sign * online_value[name])
    tau = stats.kendalltau(
        [sign * offline[name] for name in models], [online_sign * online_value[name] for name in models]
    )
    versus = {name: result.compare(best_offline, name, primary) for name in models if name != best_offline}
    rows = [
        {
            "model": name + (" (offline best)" if name == best_offline else ""),
            metric: offline[name],
            primary: online_value[name],
            "online, minus the offline best's (95% CI)": (
                f"{versus[name].difference:+.4g} [{versus[name].low:+.4g}, {versus[name].high:+.4g}]"
                if name in versus
                else ""
            ),
        }
        for name in models
    ]
    separated = sum(c.significant for c in versus.values())
    lines = [
        f"Every model of the latest training online: {days} simulated day(s), users split evenly between them.",
        "",
        markdown_table(rows, list(rows[0])).rstrip(),
        "",
        f"Kendall's tau between the offline order ({metric}) and the online one ({primary}): {tau.statistic:+.2f}.",
        f"Offline best: {best_offline}; online best: {best_online}"
        + (" (the same model)." if best_offline == best_online else " (they disagree)."),
        f"Online, {separated} of the {len(versus)} other models differ significantly from the offline best.",
    ]
    logged = {f"{name}_{primary}": value for name, value in online_value.items()} | {"kendall_tau": tau.statistic}
    return Report("\n".join(lines), logged, result)


def log_report(system: str, kind: str, report: Report, params: dict) -> str:
    """One MLflow run in the system's experiment holding the report's metrics and its text; returns its id."""
    tracking.use_experiment(system)
    run_name = f"{system}-{kind}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    with mlflow.start_run(run_name=run_name, tags={"kind": kind}) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(report.metrics)
        mlflow.log_text(report.text, f"{kind}.md")
    log.info("logged %s to MLflow run %s", kind, run_name)
    return run.info.run_id


def _lower_is_better(metrics: dict) -> str | None:
    """A sentence naming the metrics where lower is better (None: higher is better for all)."""
    lower = [name for name, m in metrics.items() if m.lower_is_better]
    if not lower:
        return None
    others = "; higher for the others." if len(lower) < len(metrics) else "."
    return f"Lower is better for {', '.join(lower)}{others}"


def _comparison_row(metric: str, c: Comparison) -> dict:
    return {
        "metric": metric,
        "A": c.control_mean,
        "B": c.treatment_mean,
        "B - A": c.difference,
        "95% CI low": c.low,
        "95% CI high": c.high,
        "relative": c.relative,
        "p_value": c.p_value,
    }


def _comparison_line(c: Comparison, label: str, metric: str) -> str:
    verdict = "significant" if c.significant else "not significant"
    interval = f"95% CI {c.low:+.4g} .. {c.high:+.4g}, p = {c.p_value:.3g}"
    return f"- {label}, {metric}: {c.difference:+.4g} ({interval}, {verdict})"
