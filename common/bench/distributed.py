"""What Ray buys on this machine: a recommendation system's two-tower (the video world's by default)
trained in this process, on one Ray Train worker and on N, and its catalogue embedded in one call and by
Ray Data; wall-clock seconds of each (Ray's start of the workers included, as a training pays it) and the
speed-up against this process, in one run. The recall of each model is printed beside its time: a faster
training that learns less is no speed-up.

    python -m common.bench.distributed [--system video] [--scale default] [--workers 2]
    make bench-distributed
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from common.app.config import load_config
from common.app.logs import quiet_libraries
from common.app.paths import REPO_ROOT
from common.app.readme import replace_block
from common.app.registry import get_system
from common.data.periods import Periods
from common.evaluation.retrieval import exact_search_recall
from common.funnel.ranking_features import embed_items
from common.models.distributed import ray_cluster
from common.retrieval.tower_training import RECENT_ENGAGEMENTS, fit_two_tower, recent_engagements
from common.retrieval.two_tower import TwoTowerModel

K = 100


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def held_out_recall(model: TwoTowerModel, data, cutoff: pd.Timestamp) -> float:
    """Recall@K over the catalogue of the positives of the week after the two-tower's training period."""
    later = data.events[
        (data.events["event_timestamp"] >= cutoff)
        & (data.events["event_timestamp"] < cutoff + pd.Timedelta(days=7))
        & (data.events["positive"] == 1)
    ]
    items = data.items.assign(**{RECENT_ENGAGEMENTS: np.log1p(recent_engagements(data, cutoff, 7))})
    users = data.users.assign(history_groups=[[] for _ in range(len(data.users))])
    return exact_search_recall(model, users, items, later[["user_id", "item_id"]], K)


def run(system: str, scale: str, workers: int) -> str:
    load_dataset = get_system(system).load_dataset
    if load_dataset is None:
        raise SystemExit(f"{system} is not a recommendation system with a two-tower: try video or game")
    config = load_config(system, scale)
    data = load_dataset(config)
    periods = Periods.from_config(data.start, data.n_days, config["periods"], 1)
    cutoff = periods.start("train")
    window = config["features"]["activity_window_days"]

    def train(workers: int | None, epochs: int) -> TwoTowerModel:
        retrieval = {**config["retrieval"], "two_tower": {**config["retrieval"]["two_tower"], "epochs": epochs}}
        return fit_two_tower(data, cutoff, retrieval, window, config["seed"], workers)[0]

    rows = []
    configured = config["retrieval"]["two_tower"]["epochs"]
    with ray_cluster():
        # The configured epochs, then eight times as many: Ray's fixed cost (starting the workers) against a
        # fit long enough for the split of each batch to show.
        for epochs in (configured, 8 * configured):
            job = f"two-tower fit, {epochs} epochs"
            local, seconds = timed(lambda epochs=epochs: train(None, epochs))
            rows.append((job, "this process", seconds, held_out_recall(local, data, cutoff)))
            for n in sorted({1, workers}):
                model, seconds = timed(lambda n=n, epochs=epochs: train(n, epochs))
                rows.append((job, f"Ray Train, {n} worker(s)", seconds, held_out_recall(model, data, cutoff)))
        items = data.items.assign(**{RECENT_ENGAGEMENTS: 0.0})
        _, seconds = timed(lambda: embed_items(local, items))
        rows.append(("catalogue embedding", "this process", seconds, float("nan")))
        _, seconds = timed(lambda: embed_items(local, items, workers))
        rows.append(("catalogue embedding", f"Ray Data, {workers} tasks", seconds, float("nan")))
    return report(rows, system, scale, len(data.items))


def report(rows: list[tuple[str, str, float, float]], system: str, scale: str, n_items: int) -> str:
    baseline = {job: seconds for job, where, seconds, _ in rows if where == "this process"}
    lines = [
        f"distributed: the {system} world at scale {scale} ({n_items} items); wall-clock seconds, Ray's start of the"
        " workers included; speed-up: this process's seconds over the row's",
        "",
        "| job | where | seconds | speed-up | recall@100 of the next week |",
        "|---|---|---|---|---|",
    ]
    for job, where, seconds, recall in rows:
        shown = "" if np.isnan(recall) else f"{recall:.4f}"
        lines.append(f"| {job} | {where} | {seconds:.1f} | {baseline[job] / seconds:.2f} | {shown} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", default="video", help="a recommendation system (its two-tower and catalogue)")
    parser.add_argument("--scale", default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-readme", action="store_true", help="also put the table in the root README")
    arguments = parser.parse_args()
    quiet_libraries()
    table = run(arguments.system, arguments.scale, arguments.workers)
    print(table)
    if arguments.write_readme:
        replace_block(REPO_ROOT / "README.md", "distributed", table)


if __name__ == "__main__":
    main()
