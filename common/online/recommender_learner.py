"""Continual training of a recommender's ranker (common/pipelines/recommender.py: video, and any recommender
whose config has `online.continual`) on the simulator's logs: the Learner common/online/continual.py drives.

  retrain   the champion ranker's family (its registered run's name: lightgbm, multitask) trained again on a
            sliding window of the logs so far (config `online.continual.window_days`): the newest day held out
            for the gate, the day before it for early stopping (trees, best epoch), the examples built as the
            training builds them (the logged impressions, features from Feast as of each event, the champion
            two-tower's scores and embeddings). LightGBM is refitted from scratch; the multi-task network is
            fine-tuned from the champion's weights (MultiHeadNetwork.fine_tune: its input encoding kept), as
            the chapters do with neural rankers. Only the ranker retrains: the retrieval two-tower, its ANN
            index and the candidate lists stay the champion's (`<system>-retrieval@champion`), and the
            ranker's two-tower features (tower_score, history_similarity) keep reading that tower
  gate      the log loss of P(positive) (the chapter's label: what the rankers learn and the funnel serves
            with `combine: probability`) on the newest day's logged impressions, the retrained ranker's
            against the serving champion's on the same rows: `test_logloss_positive`, lower is better, as
            the training reports it. Not the training's champion metric (the served funnel's nDCG@k against
            the oracle's top items): the oracle's lists are the logs' tastes, and after the logs the tastes
            drift, which the logged outcomes show and the oracle's lists do not
  promote   a run holding the ranker, logged as the training logs its rankers (so `load_champion` and the
            served funnel take it), tagged continual=true, registered, `<system>-ranker@champion` moved to it
  monitor   the frozen ranker's day: its main inputs as served (the ranking features of each impression as of
            its time, built as the training builds them) and the scores it served, against the first
            simulated day's; calibration of the score it served (`served_score`: the scorer's P(positive),
            which the freshness step never changes: it moves the ordering keys only) against the positives
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from mlflow import MlflowClient

from common.data.dataset import Dataset
from common.data.periods import Periods
from common.features.store import FeatureRepo
from common.funnel.examples import catalog_from_data, period_events, training_examples
from common.funnel.ranking_features import build_rankers
from common.online.continual import Candidate
from common.online.monitoring import DayReport, monitor_day
from common.pipelines.recommender import activity_as_of, fit_ranker, positive_metrics, split_examples
from common.tracking import runs as tracking
from common.tracking.runs import Champion

if TYPE_CHECKING:
    from common.online.recommender import RecommenderOnline

log = logging.getLogger(__name__)
GATE_METRIC = "test_logloss_positive"
# The inputs monitoring watches: the two-tower's score and the history's similarity (which the frozen tower
# computes for tastes that drift), the share of the user's recent positives in the item's genre, the item's
# recent engagement and positive rates, its age, the user's activity.
MONITORED = [
    "tower_score",
    "history_similarity",
    "group_share",
    "item_engage_rate_window",
    "item_positive_rate",
    "item_age_days",
    "user_events_total",
]
SERVED_SCORE = "served_score"  # the column the recommenders' policies log the scorer's score in
LABEL = "positive"


@dataclass
class RecommenderLearner:
    world: RecommenderOnline  # its `dataset`: the logs so far, a day longer each simulated day
    window_days: int = 7
    monitored: list[str] = field(default_factory=lambda: list(MONITORED))
    family: str = ""  # the champion ranker's family (lightgbm, multitask): what retrains
    _frozen: Champion | None = field(default=None, repr=False)
    _tower: object = field(default=None, repr=False)  # the champion two-tower, which never retrains here
    _reference: tuple[pd.DataFrame, object] | None = field(default=None, repr=False)  # day one's rows, scores

    @property
    def system(self) -> str:
        return self.world.system

    @property
    def config(self) -> dict:
        return self.world.config

    def champion(self) -> Champion:
        """The registered champion ranker, which the frozen arm keeps serving and monitoring watches; the
        registered two-tower, whose embeddings every ranker here reads."""
        champion = tracking.load_champion(self.system)
        self.family = MlflowClient().get_run(champion.run_id).info.run_name
        self._tower = tracking.load_champion(self.system, "retrieval").classifier.tower
        self._frozen = champion
        return champion

    def retrain(self, champion: Champion) -> Candidate:
        dataset = self.world.dataset
        n_days = dataset.n_days
        if self.window_days < 3 or self.window_days > n_days:
            raise ValueError(f"window_days must be in [3, {n_days}], got {self.window_days}")
        periods = Periods.from_config(
            dataset.start,
            n_days,
            {"warmup_days": n_days - self.window_days, "days": {"train": None, "validation": 1, "test": 1}},
            self.config["features"]["snapshot_every_days"],
        )
        events = period_events(
            dataset, periods.start("train"), self.config["ranking"]["negatives_per_event"], self.config["seed"]
        )
        X, targets, timestamps = self.examples(dataset, events, periods.start("train"))
        splits = split_examples(X, targets, timestamps, periods)
        fine_tune = hasattr(champion.classifier, "fine_tune")
        if fine_tune:  # a torch ranker trains on from the serving champion's weights (a copy: it keeps serving)
            model = copy.deepcopy(champion.classifier)
        else:
            model = build_rankers(dataset.schema, self.config, self.config["seed"])[self.family]
        fitted, metrics = fit_ranker(self.family, model, splits, fine_tune=fine_tune)
        test = splits["test"]
        champion_value = positive_metrics(champion.classifier, *test, "test")[GATE_METRIC]
        run = {
            "input_sample": test[0].head(100),
            "metrics": metrics,
            "params": {"fine_tuned": fine_tune, "window_start": str(periods.start("train").date())},
        }
        log.info(
            "%s %s on %d rows: newest-day log loss of P(positive) %.4f, the champion's %.4f",
            "fine-tuned" if fine_tune else "refitted",
            self.family,
            len(splits["train"][0]),
            metrics[GATE_METRIC],
            champion_value,
        )
        candidate = Champion(fitted, self.family, "candidate", "")
        return Candidate(candidate, GATE_METRIC, metrics[GATE_METRIC], champion_value, run)

    def promote(self, candidate: Candidate, day: int) -> str:
        trained = candidate.run
        tracking.use_experiment(self.system)
        params = {
            "model": self.family,
            "continual_day": day,
            "window_days": self.window_days,
            **trained["params"],
            **self.config["models"].get(self.family, {}),
        }
        metrics = {**trained["metrics"], f"champion_{GATE_METRIC}": candidate.champion_value}
        uri = tracking.log_model_run(
            self.family,
            params,
            metrics,
            {},
            candidate.model.classifier,
            trained["input_sample"],
            {"continual": "true"},
        )
        return tracking.promote(self.system, uri, config=self.config)

    def monitor(self, day: int, events: pd.DataFrame) -> DayReport:
        """`events`: the frozen arm's impressions of the day, with the score served for each."""
        dataset = self.world.dataset
        served = events[events[SERVED_SCORE].notna()]
        logged = self.world.to_events(served)
        day_start = dataset.day_start(self.world.days_offset + day)
        rows = self.examples(dataset, logged, day_start)[0]
        scores = served[SERVED_SCORE].to_numpy(float)
        # The reference is the first simulated day's traffic, not the training logs: those were shown by another
        # policy (the world's logging policy), against which every input of the served items shifts on day one.
        if self._reference is None:
            self._reference = (rows, scores)
        reference_rows, reference_scores = self._reference
        return monitor_day(
            day,
            reference_rows[self.monitored],
            rows[self.monitored],
            reference_scores,
            scores,
            logged[LABEL].to_numpy(),
            scores,
        )

    def examples(self, dataset: Dataset, events: pd.DataFrame, catalog_as_of: pd.Timestamp):
        """(ranker inputs, targets, timestamps) of logged events, as the training builds them: features from
        Feast as of each event, the champion two-tower's catalogue as of `catalog_as_of`."""
        store = FeatureRepo(self.system).store
        catalog = catalog_from_data(dataset, self._tower, activity_as_of(store, dataset, catalog_as_of))
        every = self.config["features"]["snapshot_every_days"]
        return training_examples(dataset, store, events, self._tower, catalog, every)
