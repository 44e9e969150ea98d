"""Continual training of an event classifier (common/pipelines/classifier.py: ads' click model) on the
simulator's logs: the Learner common/online/continual.py drives.

  retrain   the champion's model family fitted again on a sliding window of the logs so far (the newest
            day held out, the day before it for early stopping and calibration), the features from Feast
            as of each event, as the full training reads them
  gate      NCE on the newest day: the retrained model against the serving champion, on the same rows
  promote   a run holding the model, registered, the champion alias moved to it
  monitor   the frozen model's day: its inputs (as served, from Feast as of each event) and its scores
            against the first simulated day's, and the probabilities it served against the outcomes
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
from mlflow import MlflowClient

from common.data.dataset import Dataset
from common.data.periods import Periods
from common.evaluation.classification import classification_metrics
from common.features.store import FeatureRepo
from common.models.calibration import PlattCalibrated
from common.online.continual import Candidate
from common.online.monitoring import DayReport, monitor_day
from common.pipelines.classifier import ClassifierTask, fit_models, split_rows
from common.tracking import runs as tracking
from common.tracking.runs import Champion

log = logging.getLogger(__name__)
GATE_METRIC = "test_nce"


@dataclass
class ClassifierLearner:
    system: str
    config: dict
    task: ClassifierTask
    logs: Callable[[], Dataset]  # the world's logs so far: they grow by a day each simulated day
    monitored: list[str]  # the main features whose drift is watched
    served_score: str  # the column the policies log their served probability in
    served_context: dict  # the context the served probability is for (ads: the top slot): rows scored so
    window_days: int = 14
    family: str = ""  # the champion's model family (lightgbm, deepfm...): what retrains
    _frozen: object = field(default=None, repr=False)
    _reference: tuple[pd.DataFrame, object] | None = field(default=None, repr=False)  # day one's rows and scores

    def champion(self) -> Champion:
        """The registered champion, which the frozen arm keeps serving and monitoring watches."""
        champion = tracking.load_champion(self.system)
        self.family = MlflowClient().get_run(champion.run_id).info.run_name
        self._frozen = champion.classifier
        return champion

    def retrain(self, champion: Champion) -> Candidate:
        dataset = self.logs()
        n_days = dataset.n_days
        if self.window_days < 3 or self.window_days > n_days:
            raise ValueError(f"window_days must be in [3, {n_days}], got {self.window_days}")
        window = replace(
            dataset,
            events=dataset.events[dataset.events["event_timestamp"] >= dataset.day_start(n_days - self.window_days)],
        )
        periods = Periods.from_config(
            dataset.start,
            n_days,
            {"warmup_days": n_days - self.window_days, "days": {"train": None, "validation": 1, "test": 1}},
        )
        splits = split_rows(self.task.training_rows(window, FeatureRepo(self.system)), window, self.task.label, periods)
        base_rate = float(splits["train"].y.mean())
        model = self.task.build_models(self.config)[self.family]
        fitted = fit_models({self.family: model}, splits, base_rate)[self.family]
        validation, test = splits["validation"], splits["test"]
        calibrated = PlattCalibrated(fitted.model).fit(validation.X, validation.y)
        value = self._nce(test.y, calibrated.predict_proba(test.X)[:, 1], base_rate)
        champion_value = self._nce(test.y, champion.classifier.predict_proba(test.X)[:, 1], base_rate)
        log.info(
            "retrained %s on %d rows: newest-day NCE %.4f, champion's %.4f",
            self.family,
            len(splits["train"].y),
            value,
            champion_value,
        )
        run = {"input_sample": test.X[self.task.model_inputs].head(100)}
        return Candidate(Champion(calibrated, self.family, "candidate", ""), GATE_METRIC, value, champion_value, run)

    def promote(self, candidate: Candidate, day: int) -> str:
        tracking.use_experiment(self.system)
        params = {"model": self.family, "continual_day": day, "window_days": self.window_days}
        metrics = {GATE_METRIC: candidate.value, f"champion_{GATE_METRIC}": candidate.champion_value}
        uri = tracking.log_model_run(
            self.family,
            params,
            metrics,
            {},
            candidate.model.classifier,
            candidate.run["input_sample"],
            {"continual": "true"},
        )
        return tracking.promote(self.system, uri, config=self.config)

    def monitor(self, day: int, events: pd.DataFrame) -> DayReport:
        """`events`: the frozen arm's impressions of the day, with the probability served for each."""
        dataset = self.logs()
        rows = self.task.training_rows(
            replace(dataset, events=events[dataset.events.columns]), FeatureRepo(self.system)
        )
        scores = self._scores(self._frozen, rows)
        # The reference is the first simulated day's traffic, not the training logs: those were shown by another
        # policy (the world's logging policy), against which every input of the served ads shifts on day one.
        if self._reference is None:
            self._reference = (rows, scores)
        reference_rows, reference_scores = self._reference
        served = events.loc[(events[list(self.served_context)] == pd.Series(self.served_context)).all(axis=1)]
        return monitor_day(
            day,
            reference_rows[self.monitored],
            rows[self.monitored],
            reference_scores,
            scores,
            served[self.task.label].to_numpy(),
            served[self.served_score].to_numpy(),
        )

    def _scores(self, model, rows: pd.DataFrame):
        """The model's probabilities for the rows in the served context (ads: as if in the top slot)."""
        return model.predict_proba(rows.assign(**self.served_context))[:, 1]

    @staticmethod
    def _nce(y, p, base_rate: float) -> float:
        return classification_metrics(y, p, base_rate, "test")[GATE_METRIC]
