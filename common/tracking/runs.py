"""MLflow: one experiment per system, a run per trained model, the served model chosen by a
registry alias (`models:/<system>-ranker@champion`), never by "the latest run".

The tracking store defaults to SQLite in the data dir (the file store is deprecated);
artifacts go next to it, by absolute path, so runs do not depend on the working directory. With
MLFLOW_TRACKING_URI pointing at a tracking server (docker-compose.yml), the server keeps both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from common.app.paths import data_dir, system_dir, tracking_uri
from common.data.atomic import write_text_atomically

log = logging.getLogger(__name__)
CHAMPION = "champion"
# A registered version's tags: the config scale it was trained at, and the public data it learnt from (no tag:
# the world). What the online simulator checks before it stands the world's users in front of the model.
SCALE_TAG, DATA_TAG = "trained_at_scale", "trained_on_data"
# Inferring requirements imports and inspects the model for seconds; we know what it needs.
_REQUIREMENTS = ["numpy", "pandas", "scikit-learn", "lightgbm", "torch"]


class ChampionMissing(RuntimeError):
    """No model carries the champion alias yet: nothing to serve."""


class ProbabilityModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of any classifier with predict_proba; serving unwraps it and calls the
    classifier directly, other consumers get P(positive) from `predict`."""

    def __init__(self, classifier):
        self.classifier = classifier

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.classifier.predict_proba(model_input)[:, 1]


def uses_tracking_server() -> bool:
    """Whether MLflow is a tracking server (the scale path) rather than a database file of this machine."""
    return tracking_uri().startswith(("http://", "https://"))


def use_experiment(system: str) -> str:
    """Point MLflow at the tracking store and the system's experiment; returns its id."""
    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.get_experiment_by_name(system)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    elif uses_tracking_server():
        # The server stores artifacts where it was told to (an object store), and serves them to every client.
        experiment_id = mlflow.create_experiment(system)
    else:
        artifacts = (data_dir() / "mlartifacts" / system).resolve()
        experiment_id = mlflow.create_experiment(system, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    log.info("tracking the runs in experiment %s of %s", system, tracking_uri())
    return experiment_id


def registered_name(system: str, kind: str = "ranker") -> str:
    """`<system>-ranker` (what the endpoint ranks with) or `<system>-retrieval` (its candidate generation)."""
    return f"{system}-{kind}"


class ObjectModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of a serving bundle that is not a classifier (e.g. a retrieval bundle with
    its towers and precomputed candidate lists); `predict` calls the bundle's own `predict`."""

    def __init__(self, bundle):
        self.bundle = bundle

    def predict(self, context, model_input: pd.DataFrame, params=None):
        return self.bundle.predict(model_input)


def log_object_run(
    run_name: str, params: dict, metrics: dict, bundle, texts: dict, tags: dict, figures: dict | None = None
) -> str:
    """A run holding a non-classifier bundle as a pyfunc (and its texts and plots); returns the model URI."""
    with mlflow.start_run(run_name=run_name, tags=tags):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for filename, figure in (figures or {}).items():
            mlflow.log_figure(figure, filename)
        for filename, text in texts.items():
            mlflow.log_text(text, filename)
        pins = [f"{package}=={version(package)}" for package in _REQUIREMENTS]
        info = mlflow.pyfunc.log_model(name="model", python_model=ObjectModel(bundle), pip_requirements=pins)
    return info.model_uri


def log_model_run(
    run_name: str,
    params: dict,
    metrics: dict,
    figures: dict,
    classifier,
    input_sample: pd.DataFrame,
    tags: dict | None = None,
) -> str:
    """One run: params, metrics, plots and the model as a pyfunc, with the signature of
    `input_sample` (the model's input columns). Returns the model URI."""
    with mlflow.start_run(run_name=run_name, tags=tags or {}):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for filename, figure in figures.items():
            mlflow.log_figure(figure, filename)
        pins = [f"{package}=={version(package)}" for package in _REQUIREMENTS]
        signature = infer_signature(input_sample, classifier.predict_proba(input_sample)[:, 1])
        info = mlflow.pyfunc.log_model(
            name="model", python_model=ProbabilityModel(classifier), pip_requirements=pins, signature=signature
        )
    return info.model_uri


def choose_champion(metrics: dict[str, dict[str, float]], champion_config: dict, **names) -> str:
    """The model with the best value of the metric the config names, lowest or highest as its `goal`
    says. A metric name may hold fields in braces that `names` fill in: the recommenders' config names
    "validation_ndcg_at_{k}", which k=10 turns into validation_ndcg_at_10."""
    metric = champion_config["metric"].format(**names)
    sign = {"min": 1, "max": -1}[champion_config["goal"]]
    return min(metrics, key=lambda name: sign * metrics[name][metric])


def promote(system: str, model_uri: str, kind: str = "ranker", config: dict | None = None) -> str:
    """Register the model and move the champion alias to it; returns the version. `config`: the one it was
    trained with, whose scale and public data path (`make train DATA=...`) the version's tags keep."""
    name = registered_name(system, kind)
    log.info("registering %s from %s", name, model_uri)
    registered = mlflow.register_model(model_uri, name)
    client = MlflowClient()
    for tag, value in ((SCALE_TAG, (config or {}).get("scale")), (DATA_TAG, (config or {}).get("data"))):
        if value is not None:
            client.set_model_version_tag(name, registered.version, tag, str(value))
    client.set_registered_model_alias(name, CHAMPION, registered.version)
    log.info("registered %s version %s as @%s", name, registered.version, CHAMPION)
    return str(registered.version)


@dataclass(frozen=True)
class Champion:
    classifier: object
    name: str
    version: str
    run_id: str


def load_champion(system: str, kind: str = "ranker") -> Champion:
    """The model behind `<system>-<kind>@champion` (`classifier`: the unwrapped classifier or bundle)."""
    mlflow.set_tracking_uri(tracking_uri())
    name = registered_name(system, kind)
    try:
        version_info = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException as error:
        raise ChampionMissing(f"no {name}@{CHAMPION} in {tracking_uri()}") from error
    wrapper = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model()
    inner = wrapper.classifier if isinstance(wrapper, ProbabilityModel) else wrapper.bundle
    return Champion(inner, name, str(version_info.version), version_info.run_id or "")


def champion_trained_on(system: str, kind: str = "ranker") -> dict[str, str]:
    """What the champion was trained on, as its version's tags keep it: `scale` (absent for a version
    registered without its config) and `data`, the public data's path (absent: the world). Empty when there
    is no champion."""
    mlflow.set_tracking_uri(tracking_uri())
    try:
        version_info = MlflowClient().get_model_version_by_alias(registered_name(system, kind), CHAMPION)
    except MlflowException:
        return {}
    tags = {"scale": version_info.tags.get(SCALE_TAG), "data": version_info.tags.get(DATA_TAG)}
    return {key: value for key, value in tags.items() if value is not None}


def champion_versions(system: str) -> dict[str, str]:
    """Which version each of the system's registered models (`<system>-ranker`, `<system>-retrieval`...)
    has as champion: one registry query, what a server polls to see a training promote a new model."""
    client = MlflowClient(tracking_uri())
    models = client.search_registered_models(filter_string=f"name LIKE '{system}-%'")
    return {model.name: str(model.aliases[CHAMPION]) for model in models if CHAMPION in model.aliases}


def champion_exists(system: str) -> bool:
    mlflow.set_tracking_uri(tracking_uri())
    try:
        MlflowClient().get_model_version_by_alias(registered_name(system), CHAMPION)
    except MlflowException:
        return False
    return True


def log_summary_run(run_name: str, params: dict, figures: dict, texts: dict, tags: dict) -> None:
    """A run that holds what compares the models of one pipeline run (tables, joint plots)."""
    with mlflow.start_run(run_name=run_name, tags=tags):
        mlflow.log_params(params)
        for filename, figure in figures.items():
            mlflow.log_figure(figure, filename)
        for filename, text in texts.items():
            mlflow.log_text(text, filename)


def record_pipeline(
    system: str,
    config: dict,
    champion: str,
    names,
    data_params: dict,
    table: str,
    log_model: Callable[[str, dict, dict], str],
    figures: dict | None = None,
) -> str:
    """What one training leaves behind: a run per model (`log_model(name, params, tags)` logs it and
    returns its URI; params are the data's and the model's config section), the champion registered as
    `<system>-ranker@champion`, the results table in data/<system>/results.md and a summary run holding
    the table and the joint plots. Returns the registered version."""
    use_experiment(system)
    pipeline_run = f"{system}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    uris = {}
    for name in names:
        params = {**data_params, "model": name, **config["models"].get(name, {})}
        uris[name] = log_model(name, params, {"pipeline_run": pipeline_run, "champion": str(name == champion)})
    version = promote(system, uris[champion], config=config)
    write_text_atomically(system_dir(system) / "results.md", table)
    log_summary_run(
        f"{pipeline_run}-summary",
        {"champion": champion, "champion_version": version, **data_params},
        figures=figures or {},
        texts={"results.md": table},
        tags={"pipeline_run": pipeline_run},
    )
    return version


def latest_results_table(system: str) -> str:
    """The results table of the system's most recent training (its summary run)."""
    return mlflow.artifacts.load_text(f"{_latest_summary_run(system).info.artifact_uri}/results.md")


def trained_model_names(system: str) -> list[str]:
    """The models of the system's most recent training, champion or not, in the order they were logged."""
    return [run.info.run_name for run in reversed(_latest_model_runs(system))]


def trained_model_metrics(system: str) -> dict[str, dict[str, float]]:
    """Each model of the system's most recent training and the metrics its run logged."""
    return {run.info.run_name: dict(run.data.metrics) for run in reversed(_latest_model_runs(system))}


def load_trained_model(system: str, name: str) -> Champion:
    """A model of the system's most recent training by its name (`lightgbm`), whether or not it is the champion:
    an A/B test's challenger, or the offline baseline put online."""
    runs = [run for run in _latest_model_runs(system) if run.info.run_name == name]
    if not runs or not runs[0].outputs.model_outputs:
        known = ", ".join(trained_model_names(system))
        raise ChampionMissing(f"the latest {system} training has no model {name!r}; it has: {known}")
    model_id = runs[0].outputs.model_outputs[0].model_id
    wrapper = mlflow.pyfunc.load_model(f"models:/{model_id}").unwrap_python_model()
    inner = wrapper.classifier if isinstance(wrapper, ProbabilityModel) else wrapper.bundle
    return Champion(inner, name, f"run {runs[0].info.run_id[:8]}", runs[0].info.run_id)


def _latest_summary_run(system: str):
    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.get_experiment_by_name(system)
    if experiment is None:
        raise ChampionMissing(f"no {system} experiment yet: run make train SYSTEM={system}")
    runs = MlflowClient().search_runs(
        [experiment.experiment_id],
        filter_string="attributes.run_name LIKE '%-summary'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise ChampionMissing(f"no finished {system} training yet: run make train SYSTEM={system}")
    return runs[0]


def _latest_model_runs(system: str) -> list:
    """The runs of the latest training's models (newest first), by the pipeline tag its summary run holds."""
    summary = _latest_summary_run(system)
    pipeline_run = summary.data.tags["pipeline_run"]
    runs = MlflowClient().search_runs(
        [summary.info.experiment_id],
        filter_string=f"tags.pipeline_run = '{pipeline_run}' and attributes.run_name != '{summary.info.run_name}'",
        order_by=["attributes.start_time DESC"],
    )
    return list(runs)


def record_bundles(
    system: str,
    config: dict,
    champion: str,
    bundles: dict,
    metrics: dict[str, dict],
    data_params: dict,
    table: str,
    figures: dict | None = None,
) -> str:
    """record_pipeline for serving bundles that are not classifiers: a run per bundle holding it (a pyfunc),
    its metrics and params; the champion registered. Returns the registered version."""

    def log_model(name: str, params: dict, tags: dict) -> str:
        return log_object_run(name, params, metrics[name], bundles[name], {}, tags)

    return record_pipeline(system, config, champion, bundles, data_params, table, log_model, figures)
