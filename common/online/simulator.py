"""The online simulator: a system's world stands in for its live users (the chapters' sections 8 and 9).

Simulated days follow the logs the models trained on. Each day the world draws its requests (who, when, in
what context), users are split between the arms of the experiment by a hash of their id, each request goes
through its arm's policy (the served funnel with the champion, a challenger, a baseline, or the world's
truth in place of the model: the oracle), and the world draws the user's reactions to what was shown from
its true model, position bias included. The reactions are logged in the training logs' own schema, so a
next training can read them; at the end of each day the world's daily jobs run (the logs become features).

    result = simulate(AdsOnline(...), {"champion": ..., "oracle": ...}, days=2, experiment="ads-online")
    result.table()          # each arm's online metrics, with the arms' share of users
    result.compare("champion", "oracle", "revenue_per_request")  # difference with its confidence interval

A system supplies an OnlineWorld; its policies are plain functions of one request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.online.abtest import Comparison, assign_arms, compare_ratio, sample_ratio_mismatch

log = logging.getLogger(__name__)

# A policy: one request (a row of the day's arrivals, as a dict) -> the item ids it shows, best first; or a dict
# with those ids under "items" and columns logged beside each shown item, named "served_<what>" (the score the
# model served, which monitoring compares with the outcomes).
Policy = Callable[[dict], np.ndarray | dict[str, np.ndarray]]
ARM = "arm"


@dataclass(frozen=True)
class Metric:
    """An online metric as the ratio of two per-user sums (CTR: clicks / impressions; revenue per request)."""

    numerator: str
    denominator: str
    description: str
    lower_is_better: bool = False  # prevalence of harmful content: the reports say so, and rank models by it


class OnlineWorld(Protocol):
    """What a system adds to the simulator: how its users arrive and react, and what its chapter measures."""

    unit: str  # the column of the arrivals that users are split by ("user_id")
    metrics: Mapping[str, Metric]  # the chapter's online metrics, the first one the primary
    days_offset: int  # the index of the first simulated day, counted from the world's start

    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        """The requests of one simulated day in time order, one row each, with `unit` among the columns."""

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The logged events of one request (a column each, one row per event in the training logs'
        schema), drawn from the world's truth; the world's state (exposures, hides) moves on."""

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        """Per user (indexed by `unit`): the sums every metric's numerator and denominator name."""

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The daily jobs after a simulated day: its logs become features."""


@dataclass(frozen=True)
class OnlineSystem:
    """A system on the simulator: its world (with its state: one per simulation) and its policies."""

    world: OnlineWorld
    # names -> policies, built afresh each time: they read the features the daily jobs have just refreshed
    policies: Callable[[Sequence[str]], dict[str, Policy]]
    names: tuple[str, ...]  # the policies one can name: champion, each model of the latest training, ..., oracle
    baseline: str  # the simple policy every online table shows beside the champion and the oracle
    # a model (a Champion: the registered one, a retrained one) -> the served funnel ranking with it, built afresh
    serve_model: Callable[[object], Policy] | None = None
    # -> how its models retrain on the simulator's logs (common.online.continual.Learner); None: no continual training
    learner: Callable[[], object] | None = None
    # (metric, "min" or "max"): the offline metric the champion was chosen by, as the model runs logged it
    offline_metric: tuple[str, str] | None = None


@dataclass(frozen=True)
class OnlineResult:
    """What a simulation logged: its requests (with their arm and day) and the events they produced."""

    world: OnlineWorld
    requests: pd.DataFrame
    events: pd.DataFrame
    arms: tuple[str, ...]

    def totals(self, arm: str, days: tuple[int, ...] | None = None) -> pd.DataFrame:
        """Per-user sums of one arm (optionally of some days only); users who came but saw nothing count."""
        requests = self.requests[self.requests[ARM] == arm]
        events = self.events[self.events[ARM] == arm]
        if days is not None:
            requests, events = requests[requests["day"].isin(days)], events[events["day"].isin(days)]
        return self.world.unit_totals(requests, events)

    def value(self, arm: str, metric: str, days: tuple[int, ...] | None = None) -> float:
        totals, m = self.totals(arm, days), self.world.metrics[metric]
        denominator = totals[m.denominator].sum()
        return float(totals[m.numerator].sum() / denominator) if denominator else float("nan")

    def compare(self, control: str, treatment: str, metric: str, confidence: float = 0.95) -> Comparison:
        m = self.world.metrics[metric]
        arms = [self.totals(arm) for arm in (control, treatment)]
        return compare_ratio(*[(t[m.numerator], t[m.denominator]) for t in arms], confidence=confidence)

    def users(self, arm: str) -> int:
        return int(self.requests.loc[self.requests[ARM] == arm, self.world.unit].nunique())

    def split_check(self, control: str, treatment: str) -> float:
        """The p-value of the two arms' user counts under an even split (sample ratio mismatch)."""
        return sample_ratio_mismatch(self.users(control), self.users(treatment))

    def table(self) -> pd.DataFrame:
        """A row per arm: its users, requests and every metric."""
        rows = []
        for arm in self.arms:
            row = {"arm": arm, "users": self.users(arm), "requests": int((self.requests[ARM] == arm).sum())}
            rows.append(row | {metric: self.value(arm, metric) for metric in self.world.metrics})
        return pd.DataFrame(rows)


def simulate(
    world: OnlineWorld,
    arms: Mapping[str, Policy] | Callable[[int], Mapping[str, Policy]],
    days: int,
    experiment: str,
    seed: int = 0,
    first_day: int = 0,
) -> OnlineResult:
    """Run `days` simulated days from `first_day` (a simulation that goes on from an earlier one on the same
    world starts where it stopped). `arms` maps each arm's name to its policy, or is a function of the day
    returning them (policies that read features the daily jobs refresh, or models retrained each day).
    Users fall into the arms in equal shares by a hash of their id and the experiment's name."""
    arrival_rng, reaction_rng = (np.random.default_rng([seed, first_day, stream]) for stream in (0, 1))
    names: tuple[str, ...] | None = None
    requests_log, events_log = [], []
    for day in range(first_day, first_day + days):
        policies = arms(day) if callable(arms) else arms
        names = names or tuple(policies)
        if tuple(policies) != names:
            raise ValueError(f"the arms changed on day {day}: {tuple(policies)} after {names}")
        requests = world.arrivals(day, arrival_rng)
        requests[ARM] = np.asarray(names)[assign_arms(requests[world.unit].to_numpy(), experiment, len(names))]
        requests["day"] = day
        events = _serve_day(world, policies, requests, reaction_rng, day)
        world.end_of_day(day, events.drop(columns=[ARM, "day"]))
        requests_log.append(requests)
        events_log.append(events)
    return OnlineResult(
        world, pd.concat(requests_log, ignore_index=True), pd.concat(events_log, ignore_index=True), names
    )


def _serve_day(
    world: OnlineWorld, policies: Mapping[str, Policy], requests: pd.DataFrame, rng: np.random.Generator, day: int
) -> pd.DataFrame:
    """Each request through its arm's policy, in time order, and the world's reactions to what it showed."""
    logged: list[tuple[int, dict]] = []  # per request: how many events, and their columns
    arms: list[np.ndarray] = []
    for request in tqdm(requests.to_dict("records"), desc=f"simulated day {day}", leave=False, unit="request"):
        answer = policies[request[ARM]](request)
        served = dict(answer) if isinstance(answer, dict) else {"items": answer}
        shown = np.asarray(served.pop("items"))
        events = world.react(request, shown, rng)
        logged.append((len(shown), events | served) if events else (0, {}))
        arms.append(np.full(len(shown) if events else 0, request[ARM], dtype=object))
    names = list(dict.fromkeys(name for _, columns in logged for name in columns))
    if not names:
        raise ValueError(f"simulated day {day} showed nothing: no policy returned an item")
    # A column some policies did not log (the oracle serves no model score) is NaN on their events.
    events = pd.DataFrame(
        {name: np.concatenate([c.get(name, np.full(n, np.nan)) for n, c in logged]) for name in names}
    )
    log.info("simulated day %d: %d requests, %d events", day, len(requests), len(events))
    return events.assign(**{ARM: np.concatenate(arms), "day": day})
